//! The outbox: every message is encrypted and stored in the same transaction that moves its
//! share's state, flushed, and only then sent. A message whose send fails stays in the outbox
//! and goes out on the next [`Device::sync`].

use std::time::SystemTime;

use tigress_core::share::state::{Role, ShareInput, next_state};
use tigress_core::share::{ShareId, ShareMessage};
use tigress_core::{Ciphertext, CiphertextKind, DeviceAddress, Durability, Transaction};
use tigress_proto::relay::v1::{EnvelopeType, SendEnvelopeRequest};

use crate::device::Device;
use crate::error::Result;
use crate::event::Event;
use crate::records::{self, OUTBOX, OutboxPurpose, OutboxRecord, ShareRecord};
use crate::shares::millis;

/// Pads, encrypts and stores `message` for `to` in the outbox of `txn`.
pub(crate) fn encrypt_to_outbox(
    txn: &Transaction<'_>,
    to: &DeviceAddress,
    message: &ShareMessage,
    purpose: OutboxPurpose,
) -> Result<OutboxRecord> {
    let mut rng = rand::rng();
    let plaintext = message.encode_padded()?;
    let Ciphertext { kind, bytes } = txn.encrypt(to, &plaintext, SystemTime::now(), &mut rng)?;
    let envelope_type = match kind {
        CiphertextKind::PreKey => EnvelopeType::PrekeyMessage,
        CiphertextKind::Whisper => EnvelopeType::SignalMessage,
    };
    let client_message_id: [u8; 16] = rand::Rng::random(&mut rng);
    let record = OutboxRecord {
        client_message_id: client_message_id.to_vec(),
        destination: to.to_string(),
        envelope_type: envelope_type.into(),
        content: bytes,
        share_id: message.share_id.as_bytes().to_vec(),
        purpose: purpose.name().to_owned(),
    };
    records::write(txn, records::outbox_key(&client_message_id), &record);
    Ok(record)
}

impl Device {
    /// Sends every message still in the outbox and returns one event per message sent.
    pub(crate) async fn flush_outbox(&self) -> Result<Vec<Event>> {
        let pending = records::scan_committed::<OutboxRecord>(&self.store, OUTBOX)?;
        let mut events = Vec::with_capacity(pending.len());
        for record in pending {
            let share_id = ShareId::from_slice(&record.share_id)?;
            let to = record.destination.clone();
            self.deliver(record).await?;
            events.push(Event::MessageDelivered { share_id, to });
        }
        Ok(events)
    }

    /// Checks whether messages wait in the outbox.
    pub(crate) fn has_pending_messages(&self) -> Result<bool> {
        Ok(!self.store.scan_prefix(OUTBOX)?.is_empty())
    }

    /// Sends one outbox message, then removes it and applies what its sending means for the
    /// share.
    pub(crate) async fn deliver(&self, record: OutboxRecord) -> Result<()> {
        let relay = self.relay().await?;
        let request = SendEnvelopeRequest {
            destination: record.destination.clone(),
            client_message_id: record.client_message_id.clone(),
            r#type: record.envelope_type,
            content: record.content.clone(),
        };
        let response = relay.send(request).await?;
        tracing::debug!(
            envelope_id = response.envelope_id,
            duplicate = response.duplicate,
            "message sent"
        );

        let txn = self.store.transaction();
        txn.remove(records::outbox_key(&record.client_message_id));
        if OutboxPurpose::from_name(&record.purpose) == Some(OutboxPurpose::Completion) {
            mark_completion_sent(&txn, &ShareId::from_slice(&record.share_id)?)?;
        }
        // Losing this commit in a crash only means sending again, which the relay ignores.
        txn.commit(Durability::Buffered)?;
        Ok(())
    }
}

/// Moves a received share from provisioned to completed once its acknowledgement is sent.
fn mark_completion_sent(txn: &Transaction<'_>, share_id: &ShareId) -> Result<()> {
    let key = records::share_key(Role::Receiver, share_id);
    let Some(mut record) = records::read::<ShareRecord>(txn, &key)? else {
        return Ok(());
    };
    let state = record.state()?;
    let kind = record.kind(Role::Receiver, tigress_core::share::ShareMode::Stateless)?;
    match next_state(kind, state, ShareInput::CompletionSent) {
        Ok(next) => {
            record.state = next.name().to_owned();
            record.updated_at_ms = millis(SystemTime::now());
            records::write(txn, key, &record);
        }
        Err(error) => {
            tracing::warn!(share = %share_id, %error, "completion sent for a share in an unexpected state")
        }
    }
    Ok(())
}
