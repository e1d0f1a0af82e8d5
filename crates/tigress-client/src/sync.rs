//! Sync: expire overdue offers, send what waits in the outbox, then fetch, decrypt, apply and
//! acknowledge every envelope, in the home's mailbox and in the throwaway mailbox of each open
//! link share.
//!
//! Each envelope is processed exactly once. Its decryption, its effect on the share, any reply
//! and a "processed" marker for its client message id commit in one transaction, and the SDK
//! acknowledges it to the relay only after that commit is on disk.

use std::time::{Duration, SystemTime};

use tigress_core::link::verify_claim;
use tigress_core::share::state::{Channel, Role, ShareInput, ShareState};
use tigress_core::share::{
    ShareBody, ShareErrorCode, ShareId, ShareMessage, ShareMode, ShareOffer, X509Policy,
};
use tigress_core::x509::{CertificateAuthority, check_request, verify_certificate};
use tigress_core::{Ciphertext, CiphertextKind, DeviceAddress, Durability, Transaction};
use tigress_proto::relay::v1::{Envelope, EnvelopeType};

use crate::device::Device;
use crate::error::{ClientError, Result};
use crate::event::Event;
use crate::outbox::encrypt_to_outbox;
use crate::records::{
    self, OutboxPurpose, RECEIVED_SHARE, SENT_SHARE, ShareRecord, StoredDisplay, X509Record,
};
use crate::shares::{
    OfferContent, agree, is_expired, issue_certificate, message, send_offer, set_state, transition,
    transition_with_mode, wipe_secrets, write_share,
};

/// How long the processed marker of an envelope stays after the relay acknowledged it: a day.
/// A copy can still arrive after the acknowledgement, for example from a fetch that read the
/// mailbox before the acknowledgement reached the relay, or from a relay whose storage lost a
/// recent acknowledgement in a crash. After a day the marker would only grow the store.
const MARKER_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// The decision on an envelope after trying to process it.
enum Outcome {
    /// Processed or dropped: acknowledge it, and report its events.
    Done(Vec<Event>),
    /// Cannot be processed yet: leave it on the relay.
    Keep(Event),
}

/// What processing a message needs besides the transaction.
struct Context<'c> {
    /// The sender of the envelope.
    source: DeviceAddress,
    /// The home's owner CA, for stateful shares approved automatically.
    owner_ca: Option<&'c CertificateAuthority>,
    /// The time by the device's clock.
    now: SystemTime,
}

impl Device {
    /// Expires overdue offers, sends pending outbox messages, then processes every envelope
    /// waiting on the relay for this device and its open link shares, and returns what
    /// happened.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotRegistered`] when the home has neither a registration nor a link
    /// share, or a relay error. Envelopes that cannot be decrypted or decoded are not errors:
    /// they are dropped and reported as [`Event::EnvelopeRejected`].
    pub async fn sync(&self) -> Result<Vec<Event>> {
        let links: Vec<_> = self
            .link_records()?
            .into_iter()
            .filter(|link| !link.closed)
            .collect();
        let registered = self.is_registered()?;
        if !registered && links.is_empty() {
            return Err(ClientError::NotRegistered {
                home: self.home.clone(),
            });
        }
        let owner_ca = match self.owner_ca() {
            Ok(ca) => Some(ca),
            Err(ClientError::NoOwnerCa { .. }) => None,
            Err(error) => return Err(error),
        };

        let mut events = Vec::new();
        if registered {
            events.extend(self.sync_mailbox(owner_ca.as_ref()).await?);
        }
        for link in links {
            events.extend(
                self.open_link(&link)?
                    .sync_mailbox(owner_ca.as_ref())
                    .await?,
            );
        }
        if registered {
            if let Err(error) = self.maintain_prekeys().await {
                tracing::warn!(%error, "prekey upkeep failed; retrying on the next sync");
            }
        }
        self.close_ended_links().await?;
        Ok(events)
    }

    /// Syncs this device's own mailbox.
    async fn sync_mailbox(&self, owner_ca: Option<&CertificateAuthority>) -> Result<Vec<Event>> {
        self.prune_processed()?;
        let mut events = self.expire_shares()?;
        events.extend(self.flush_outbox().await?);
        let address = self.profile()?.address;
        let relay = self.relay().await?;
        loop {
            let page = relay.fetch(&address).await?;
            let (found, kept_on_relay) = self.process_envelopes(&page.envelopes, owner_ca).await?;
            events.extend(found);
            // Envelopes kept on the relay come back on every fetch, so stop when a page held
            // nothing new.
            if !page.more || kept_on_relay > 0 {
                break;
            }
        }
        // Replies queued while processing go out now; they are not events of their own.
        self.flush_outbox().await?;
        Ok(events)
    }

    /// Processes envelopes of this device's mailbox, makes the results durable, and
    /// acknowledges every envelope that needs no second look. Returns the events and how many
    /// envelopes stay on the relay.
    pub(crate) async fn process_envelopes(
        &self,
        envelopes: &[Envelope],
        owner_ca: Option<&CertificateAuthority>,
    ) -> Result<(Vec<Event>, usize)> {
        let mut events = Vec::new();
        let mut acknowledged = Vec::with_capacity(envelopes.len());
        let mut markers = Vec::with_capacity(envelopes.len());
        let mut kept_on_relay = 0usize;
        for envelope in envelopes {
            match self.process(envelope, owner_ca)? {
                Outcome::Done(found) => {
                    acknowledged.push(envelope.id);
                    markers.push(records::processed_key(
                        &envelope.client_message_id,
                        &envelope.source,
                    ));
                    events.extend(found);
                }
                Outcome::Keep(event) => {
                    kept_on_relay += 1;
                    events.push(event);
                }
            }
        }
        if !acknowledged.is_empty() {
            // Everything processed is on disk before the relay may forget it.
            self.store.flush()?;
            let address = self.profile()?.address;
            self.relay()
                .await?
                .acknowledge(&address, acknowledged)
                .await?;
            self.stamp_acknowledged(markers)?;
        }
        Ok((events, kept_on_relay))
    }

    /// Records in the processed markers of acknowledged envelopes when the relay acknowledged
    /// them, so that [`prune_processed`](Self::prune_processed) can remove them later.
    fn stamp_acknowledged(&self, markers: Vec<Vec<u8>>) -> Result<()> {
        let acknowledged_at = crate::shares::millis(self.clock.now()).to_be_bytes();
        let txn = self.store.transaction();
        for marker in markers {
            txn.insert(marker, acknowledged_at.to_vec());
        }
        txn.commit(Durability::Buffered)?;
        Ok(())
    }

    /// Removes the processed markers whose envelopes the relay acknowledged more than
    /// [`MARKER_RETENTION`] ago. Markers of envelopes not yet acknowledged stay.
    fn prune_processed(&self) -> Result<()> {
        let now = crate::shares::millis(self.clock.now());
        let retention = u64::try_from(MARKER_RETENTION.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now.saturating_sub(retention);
        let txn = self.store.transaction();
        let mut pruned = 0usize;
        for (key, value) in txn.scan_prefix(records::PROCESSED)? {
            let Ok(stamp) = <[u8; 8]>::try_from(value.as_slice()) else {
                continue;
            };
            if u64::from_be_bytes(stamp) < cutoff {
                txn.remove(key);
                pruned += 1;
            }
        }
        if pruned > 0 {
            txn.commit(Durability::Buffered)?;
            tracing::debug!(pruned, "old processed markers removed");
        }
        Ok(())
    }

    /// Moves every share whose offer expired to `expired`.
    fn expire_shares(&self) -> Result<Vec<Event>> {
        let now = self.clock.now();
        let txn = self.store.transaction();
        let mut events = Vec::new();
        for (role, prefix) in [(Role::Sender, SENT_SHARE), (Role::Receiver, RECEIVED_SHARE)] {
            for (_, bytes) in txn.scan_prefix(prefix)? {
                let mut record: ShareRecord =
                    prost::Message::decode(bytes.as_slice()).map_err(|error| {
                        tigress_core::Error::CorruptRecord {
                            key: "app/share".to_owned(),
                            reason: error.to_string(),
                        }
                    })?;
                let share_id = record.id()?;
                if !is_expired(&record, now) {
                    continue;
                }
                if let Ok(next) = transition(&record, role, ShareInput::Expire, &share_id) {
                    set_state(&mut record, next);
                    wipe_secrets(&mut record);
                    write_share(&txn, role, &record);
                    tracing::info!(share = %share_id, "share expired");
                    events.push(Event::ShareExpired { share_id });
                }
            }
        }
        txn.commit(Durability::Flushed)?;
        Ok(events)
    }

    /// Decrypts and applies one envelope.
    fn process(
        &self,
        envelope: &Envelope,
        owner_ca: Option<&CertificateAuthority>,
    ) -> Result<Outcome> {
        let rejected = |reason: String| {
            tracing::warn!(envelope_id = envelope.id, source = %envelope.source, %reason, "envelope rejected");
            Ok(Outcome::Done(vec![Event::EnvelopeRejected {
                source: envelope.source.clone(),
                reason,
            }]))
        };
        let source: DeviceAddress = match envelope.source.parse() {
            Ok(source) => source,
            Err(error) => return rejected(format!("invalid source address: {error}")),
        };
        let kind = match EnvelopeType::try_from(envelope.r#type) {
            Ok(EnvelopeType::PrekeyMessage) => CiphertextKind::PreKey,
            Ok(EnvelopeType::SignalMessage) => CiphertextKind::Whisper,
            _ => return rejected(format!("unknown envelope type {}", envelope.r#type)),
        };

        let processed_key = records::processed_key(&envelope.client_message_id, &envelope.source);
        let txn = self.store.transaction();
        if txn.get(&processed_key)?.is_some() {
            tracing::debug!(envelope_id = envelope.id, "envelope already processed");
            return Ok(Outcome::Done(Vec::new()));
        }

        let ciphertext = Ciphertext {
            kind,
            bytes: envelope.content.clone(),
        };
        let plaintext = match txn.decrypt(&source, &ciphertext, &mut rand::rng()) {
            Ok(plaintext) => plaintext,
            Err(tigress_core::Error::DuplicateMessage { .. }) => {
                tracing::debug!(envelope_id = envelope.id, "duplicate message");
                return Ok(Outcome::Done(Vec::new()));
            }
            Err(tigress_core::Error::IdentityChanged { address }) => {
                tracing::warn!(peer = %address, "message from a peer whose identity key changed");
                return Ok(Outcome::Keep(Event::IdentityChanged { address }));
            }
            Err(
                error @ (tigress_core::Error::Store { .. }
                | tigress_core::Error::StoreInProtocol { .. }),
            ) => {
                return Err(error.into());
            }
            Err(error) => return rejected(format!("cannot decrypt: {error}")),
        };

        // From here the session has advanced, so the transaction commits even when the
        // message inside is rejected.
        txn.insert(processed_key, Vec::new());
        let context = Context {
            source,
            owner_ca,
            now: self.clock.now(),
        };
        let applied = ShareMessage::decode_padded(&plaintext)
            .map_err(ClientError::from)
            .and_then(|message| apply(&txn, &context, message));
        let events = match applied {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(envelope_id = envelope.id, source = %context.source, %error, "share message rejected");
                vec![Event::EnvelopeRejected {
                    source: envelope.source.clone(),
                    reason: error.to_string(),
                }]
            }
        };
        txn.commit(Durability::Buffered)?;
        Ok(Outcome::Done(events))
    }
}

/// Applies a decrypted share message to the share records in `txn`.
fn apply(
    txn: &Transaction<'_>,
    context: &Context<'_>,
    message: ShareMessage,
) -> Result<Vec<Event>> {
    let share_id = message.share_id;
    let peer = context.source.to_string();
    match message.body {
        ShareBody::Offer(offer) => receive_offer(txn, context, share_id, offer),
        ShareBody::Claim { proof } => receive_claim(txn, context, share_id, &proof),
        ShareBody::KeySigningRequest {
            certificate_signing_request,
            requested_validity_seconds,
        } => receive_signing_request(
            txn,
            context,
            share_id,
            certificate_signing_request,
            requested_validity_seconds,
        ),
        ShareBody::KeyImportRequest { certificate } => {
            receive_import(txn, context, share_id, certificate)
        }
        ShareBody::Completed => {
            let _ = move_share(
                txn,
                context,
                Role::Sender,
                share_id,
                ShareInput::CompletionReceived,
            )?;
            tracing::info!(share = %share_id, %peer, "share completed");
            Ok(vec![Event::ShareCompleted { share_id, peer }])
        }
        ShareBody::Declined => {
            let _ = move_share(
                txn,
                context,
                Role::Sender,
                share_id,
                ShareInput::DeclineReceived,
            )?;
            tracing::info!(share = %share_id, %peer, "share declined");
            Ok(vec![Event::ShareDeclined { share_id, peer }])
        }
        ShareBody::Cancelled => {
            let _ = move_share(
                txn,
                context,
                Role::Receiver,
                share_id,
                ShareInput::CancelReceived,
            )?;
            tracing::info!(share = %share_id, %peer, "share cancelled by the sender");
            Ok(vec![Event::ShareCancelled { share_id, peer }])
        }
        ShareBody::Error { code, message } => receive_error(txn, context, share_id, code, &message),
    }
}

/// Reads the share `role` holds with the envelope's sender as its peer. A share of another peer
/// counts as unknown, so that no device can move someone else's share.
fn peer_share(
    txn: &Transaction<'_>,
    context: &Context<'_>,
    role: Role,
    share_id: ShareId,
) -> Result<ShareRecord> {
    let record: Option<ShareRecord> = records::read(txn, &records::share_key(role, &share_id))?;
    match record {
        Some(record) if record.peer == context.source.to_string() => Ok(record),
        _ => Err(tigress_core::Error::InvalidShareMessage {
            reason: format!("message for unknown share {share_id}"),
        }
        .into()),
    }
}

/// Moves a share by `input` and wipes its secrets when it ends without them.
fn move_share(
    txn: &Transaction<'_>,
    context: &Context<'_>,
    role: Role,
    share_id: ShareId,
    input: ShareInput,
) -> Result<ShareRecord> {
    let mut record = peer_share(txn, context, role, share_id)?;
    let next = transition(&record, role, input, &share_id)?;
    set_state(&mut record, next);
    if matches!(
        next,
        ShareState::Cancelled | ShareState::Declined | ShareState::Expired | ShareState::Failed
    ) {
        wipe_secrets(&mut record);
    }
    write_share(txn, role, &record);
    Ok(record)
}

fn receive_offer(
    txn: &Transaction<'_>,
    context: &Context<'_>,
    share_id: ShareId,
    offer: ShareOffer,
) -> Result<Vec<Event>> {
    let key = records::share_key(Role::Receiver, &share_id);
    let existing: Option<ShareRecord> = records::read(txn, &key)?;
    let from = context.source.to_string();
    let offered = Event::OfferReceived {
        share_id,
        from: from.clone(),
        mode: offer.mode,
        display: offer.display.clone(),
        expires_at_ms: offer.expires_at_ms,
    };

    let Some(mut record) = existing else {
        let record = new_received(share_id, &from, Channel::Contact, &offer, context.now);
        write_share(txn, Role::Receiver, &record);
        tracing::info!(share = %share_id, peer = %from, "share offer received");
        return Ok(vec![offered]);
    };

    // A link share the device claimed: the offer completes the claim.
    if record.peer != from || record.channel()? != Channel::Link {
        let error = tigress_core::Error::ShareOutOfOrder {
            share_id: share_id.to_string(),
            state: "known",
            input: "a repeated share offer",
        };
        return Err(error.into());
    }
    let next = transition_with_mode(
        &record,
        Role::Receiver,
        ShareInput::OfferReceived,
        &share_id,
        offer.mode,
    )?;
    let filled = new_received(share_id, &from, Channel::Link, &offer, context.now);
    record.mode = filled.mode;
    record.display = filled.display;
    record.provisioning_information = filled.provisioning_information;
    record.expires_at_ms = filled.expires_at_ms;
    record.x509 = filled.x509;
    let _ = agree(txn, &mut record, next)?;
    write_share(txn, Role::Receiver, &record);
    tracing::info!(share = %share_id, peer = %from, state = %next, "link share offer received");

    let mut events = vec![offered];
    if next == ShareState::Provisioned {
        events.push(Event::CredentialProvisioned {
            share_id,
            peer: from,
        });
    }
    Ok(events)
}

/// Builds the receiver's record of an offer.
fn new_received(
    share_id: ShareId,
    from: &str,
    channel: Channel,
    offer: &ShareOffer,
    now: SystemTime,
) -> ShareRecord {
    let now = crate::shares::millis(now);
    let x509 = offer.x509_policy.as_ref().map(|policy| X509Record {
        ca_certificate: policy.ca_certificate.clone(),
        subject_common_name: policy.subject_common_name.clone(),
        max_validity_seconds: policy.max_validity_seconds,
        ..X509Record::default()
    });
    ShareRecord {
        share_id: share_id.as_bytes().to_vec(),
        peer: from.to_owned(),
        state: ShareState::Offered.name().to_owned(),
        display: Some(StoredDisplay::from(&offer.display)),
        provisioning_information: offer.provisioning_information.clone(),
        expires_at_ms: offer.expires_at_ms.unwrap_or(0),
        created_at_ms: now,
        updated_at_ms: now,
        mode: offer.mode.name().to_owned(),
        channel: records::channel_name(channel).to_owned(),
        x509,
        ..ShareRecord::default()
    }
}

fn receive_claim(
    txn: &Transaction<'_>,
    context: &Context<'_>,
    share_id: ShareId,
    proof: &[u8; 32],
) -> Result<Vec<Event>> {
    let key = records::share_key(Role::Sender, &share_id);
    let unknown = || {
        ClientError::from(tigress_core::Error::InvalidShareMessage {
            reason: format!("claim for unknown share {share_id}"),
        })
    };
    let mut record: ShareRecord = records::read(txn, &key)?.ok_or_else(unknown)?;
    if record.channel()? != Channel::Link {
        return Err(unknown());
    }
    let by = context.source.to_string();
    let claimant_identity = txn
        .peer_identity(&context.source.to_protocol_address())?
        .ok_or_else(|| tigress_core::Error::SessionNotFound {
            address: by.clone(),
        })?;

    let refusal = match record.state()? {
        _ if is_expired(&record, context.now) => {
            Some((ShareErrorCode::Expired, "the link share expired"))
        }
        ShareState::Offered => {
            let secret: Option<[u8; 32]> = record.link_secret.as_slice().try_into().ok();
            let valid = secret
                .is_some_and(|secret| verify_claim(&secret, &claimant_identity.serialize(), proof));
            (!valid).then_some((
                ShareErrorCode::Rejected,
                "the claim's proof does not match the link",
            ))
        }
        ShareState::Cancelled => Some((ShareErrorCode::Cancelled, "the link share was cancelled")),
        ShareState::Expired => Some((ShareErrorCode::Expired, "the link share expired")),
        _ => Some((
            ShareErrorCode::AlreadyClaimed,
            "the link was already claimed by another device",
        )),
    };
    if let Some((code, reason)) = refusal {
        reply_error(txn, &context.source, share_id, code, reason)?;
        tracing::info!(share = %share_id, claimant = %by, reason, "claim rejected");
        return Ok(vec![Event::ClaimRejected {
            share_id,
            by,
            reason: reason.to_owned(),
        }]);
    }

    let next = transition(&record, Role::Sender, ShareInput::ClaimReceived, &share_id)?;
    let content = match record.mode()? {
        Some(ShareMode::Stateful) => {
            let x509 = record.x509.clone().unwrap_or_default();
            let policy = X509Policy {
                ca_certificate: x509.ca_certificate,
                subject_common_name: x509.subject_common_name,
                max_validity_seconds: x509.max_validity_seconds,
            };
            OfferContent::Certificate {
                policy,
                auto_approve: x509.auto_approve,
            }
        }
        _ => OfferContent::Document(std::mem::take(&mut record.provisioning_information)),
    };
    let _ = send_offer(txn, &context.source, &mut record, content)?;
    set_state(&mut record, next);
    record.link_secret.clear();
    write_share(txn, Role::Sender, &record);
    tracing::info!(share = %share_id, claimant = %by, "link share claimed");
    Ok(vec![Event::LinkClaimed { share_id, by }])
}

fn receive_signing_request(
    txn: &Transaction<'_>,
    context: &Context<'_>,
    share_id: ShareId,
    request_der: Vec<u8>,
    requested_validity_seconds: u64,
) -> Result<Vec<Event>> {
    let mut record = peer_share(txn, context, Role::Sender, share_id)?;
    let next = transition(
        &record,
        Role::Sender,
        ShareInput::SigningRequestReceived,
        &share_id,
    )?;
    let peer = context.source.to_string();
    let x509 = record
        .x509
        .as_mut()
        .ok_or_else(|| crate::shares::corrupt(&share_id, "stateful share without its policy"))?;
    let policy = X509Policy {
        ca_certificate: x509.ca_certificate.clone(),
        subject_common_name: x509.subject_common_name.clone(),
        max_validity_seconds: x509.max_validity_seconds,
    };
    if let Err(error) = check_request(&request_der, &policy, requested_validity_seconds) {
        return fail(
            txn,
            context,
            record,
            Role::Sender,
            ShareErrorCode::Rejected,
            &format!("key signing request rejected: {error}"),
        );
    }

    x509.request_der = request_der;
    x509.requested_validity_seconds = requested_validity_seconds;
    let auto_approve = x509.auto_approve;
    set_state(&mut record, next);
    let mut events = vec![Event::SigningRequestReceived {
        share_id,
        peer: peer.clone(),
    }];
    if let (true, Some(ca)) = (auto_approve, context.owner_ca) {
        let _ = issue_certificate(txn, &mut record, ca, &share_id, context.now)?;
        events.push(Event::ImportIssued { share_id, peer });
    }
    write_share(txn, Role::Sender, &record);
    tracing::info!(share = %share_id, auto_approve, "key signing request received");
    Ok(events)
}

fn receive_import(
    txn: &Transaction<'_>,
    context: &Context<'_>,
    share_id: ShareId,
    certificate: Vec<u8>,
) -> Result<Vec<Event>> {
    let mut record = peer_share(txn, context, Role::Receiver, share_id)?;
    let next = transition(
        &record,
        Role::Receiver,
        ShareInput::ImportReceived,
        &share_id,
    )?;
    let x509 = record
        .x509
        .as_mut()
        .ok_or_else(|| crate::shares::corrupt(&share_id, "stateful share without its policy"))?;
    if let Err(error) = verify_certificate(
        &certificate,
        &x509.ca_certificate,
        &x509.request_der,
        context.now,
    ) {
        let reason = format!("key import request rejected: {error}");
        return fail(
            txn,
            context,
            record,
            Role::Receiver,
            ShareErrorCode::InvalidCertificate,
            &reason,
        );
    }

    x509.certificate_der = certificate;
    set_state(&mut record, next);
    let completion = message(share_id, ShareBody::Completed);
    let _ = encrypt_to_outbox(txn, &context.source, &completion, OutboxPurpose::Completion)?;
    write_share(txn, Role::Receiver, &record);
    tracing::info!(share = %share_id, "certificate verified and provisioned");
    Ok(vec![Event::CredentialProvisioned {
        share_id,
        peer: context.source.to_string(),
    }])
}

fn receive_error(
    txn: &Transaction<'_>,
    context: &Context<'_>,
    share_id: ShareId,
    code: ShareErrorCode,
    text: &str,
) -> Result<Vec<Event>> {
    let role = [Role::Sender, Role::Receiver]
        .into_iter()
        .find(|role| peer_share(txn, context, *role, share_id).is_ok())
        .ok_or_else(|| tigress_core::Error::InvalidShareMessage {
            reason: format!("error for unknown share {share_id}"),
        })?;
    let mut record = move_share(txn, context, role, share_id, ShareInput::ErrorReceived)?;
    let reason = format!("{}: {text}", code.name());
    record.failure = reason.clone();
    write_share(txn, role, &record);
    tracing::info!(share = %share_id, %reason, "peer reported the share failed");
    Ok(vec![Event::ShareFailed { share_id, reason }])
}

/// Ends a share after a failed check on this side and tells the peer why.
fn fail(
    txn: &Transaction<'_>,
    context: &Context<'_>,
    mut record: ShareRecord,
    role: Role,
    code: ShareErrorCode,
    reason: &str,
) -> Result<Vec<Event>> {
    let share_id = record.id()?;
    let next = transition(&record, role, ShareInput::Fail, &share_id)?;
    set_state(&mut record, next);
    wipe_secrets(&mut record);
    record.failure = reason.to_owned();
    write_share(txn, role, &record);
    reply_error(txn, &context.source, share_id, code, reason)?;
    tracing::warn!(share = %share_id, reason, "share failed");
    Ok(vec![Event::ShareFailed {
        share_id,
        reason: reason.to_owned(),
    }])
}

fn reply_error(
    txn: &Transaction<'_>,
    to: &DeviceAddress,
    share_id: ShareId,
    code: ShareErrorCode,
    reason: &str,
) -> Result<()> {
    let mut text = String::new();
    for character in reason.chars().filter(|character| !character.is_control()) {
        if text.len() + character.len_utf8() > tigress_core::share::MAX_DISPLAY_TEXT_LEN {
            break;
        }
        text.push(character);
    }
    let body = ShareBody::Error {
        code,
        message: text,
    };
    let _ = encrypt_to_outbox(txn, to, &message(share_id, body), OutboxPurpose::Plain)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tigress_core::share::DisplayInformation;

    use super::*;
    use crate::clock::Clock;
    use crate::shares::NewShare;
    use crate::testing::relay;

    fn processed_markers(device: &Device) -> usize {
        device.store.scan_prefix(records::PROCESSED).unwrap().len()
    }

    /// Fetches what the relay holds for `device`, without processing it.
    async fn queued(device: &Device) -> Vec<Envelope> {
        let address = device.profile().unwrap().address;
        let relay = device.relay().await.unwrap();
        relay.fetch(&address).await.unwrap().envelopes
    }

    /// Registers a sender and a receiver on `url`, and sends the receiver one offer.
    async fn offered(
        url: &str,
        homes: &(tempfile::TempDir, tempfile::TempDir),
    ) -> (Device, Device) {
        let sender = Device::open(homes.0.path()).unwrap();
        sender.register(url).await.unwrap();
        let receiver = Device::open(homes.1.path()).unwrap();
        let to = receiver.register(url).await.unwrap();
        sender
            .share(NewShare {
                to,
                credential: b"key".to_vec(),
                display: DisplayInformation::default(),
                expires_in: Duration::from_secs(3600),
            })
            .await
            .unwrap();
        (sender, receiver)
    }

    #[tokio::test]
    async fn envelope_processed_before_a_crash_is_not_repeated() {
        let (_data, url, _stop) = relay().await;
        let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (_sender, receiver) = offered(&url, &homes).await;

        // The receiver decrypts and applies the offer and flushes, then stops before it
        // acknowledges: what a kill between the two leaves on disk.
        let envelopes = queued(&receiver).await;
        assert_eq!(envelopes.len(), 1);
        match receiver.process(&envelopes[0], None).unwrap() {
            Outcome::Done(events) => assert_eq!(events.len(), 1, "{events:?}"),
            Outcome::Keep(event) => panic!("the offer was kept: {event:?}"),
        }
        receiver.store.flush().unwrap();
        drop(receiver);

        let receiver = Device::open_existing(homes.1.path()).unwrap();
        let events = receiver.sync().await.unwrap();
        assert!(
            events.is_empty(),
            "the offer was processed again: {events:?}"
        );
        assert_eq!(receiver.received_shares().unwrap().len(), 1);
        assert!(
            queued(&receiver).await.is_empty(),
            "the offer stayed on the relay"
        );
    }

    #[tokio::test]
    async fn markers_go_a_day_after_acknowledgement() {
        let (_data, url, _stop) = relay().await;
        let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (_sender, receiver) = offered(&url, &homes).await;
        assert_eq!(receiver.sync().await.unwrap().len(), 1);
        assert_eq!(processed_markers(&receiver), 1);
        drop(receiver);

        let receiver = Device::open_existing(homes.1.path())
            .unwrap()
            .with_clock(Clock::ahead(MARKER_RETENTION - Duration::from_secs(3600)));
        receiver.sync().await.unwrap();
        assert_eq!(processed_markers(&receiver), 1, "a marker went too early");
        drop(receiver);

        let receiver = Device::open_existing(homes.1.path())
            .unwrap()
            .with_clock(Clock::ahead(MARKER_RETENTION + Duration::from_secs(3600)));
        receiver.sync().await.unwrap();
        assert_eq!(processed_markers(&receiver), 0);
    }
}
