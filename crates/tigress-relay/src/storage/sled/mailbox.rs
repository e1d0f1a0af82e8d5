//! Mailboxes in the sled backend: queueing with quotas, fetching, acknowledging, retracting and
//! sweeping. Every change to a queue updates the mailbox's `usage` record in the same
//! transaction, so that quotas and metrics never drift from the queue.

use prost::Message;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use tigress_core::DeviceAddress;
use tigress_proto::relay::v1::Envelope;
use uuid::Uuid;

use super::SledStorage;
use super::keys::{
    decode, decode_sent_value, decode_u64, decode_usage, envelope_id_of, printable, queue_key,
    sent_key, sent_value, storage_error, usage_value,
};
use crate::error::RelayError;
use crate::storage::{Enqueued, Fetched, MailboxQuota, MailboxUsage, StorageResult, SweepReport};

type TransactionResult<T> = Result<T, ConflictableTransactionError<RelayError>>;

impl SledStorage {
    pub(super) fn enqueue_now(
        &self,
        destination: Uuid,
        source: Uuid,
        mut envelope: Envelope,
        quota: MailboxQuota,
        now_ms: u64,
    ) -> StorageResult<Enqueued> {
        let envelope_id = self
            .db
            .generate_id()
            .map_err(storage_error("assign an envelope id"))?
            // Ids start at 1, so that 0 can mean "before every envelope" and "no id" in protobuf.
            .saturating_add(1);
        envelope.id = envelope_id;
        let queue_key = queue_key(destination, envelope_id);
        let sent_key = sent_key(source, destination, &envelope.client_message_id);
        let encoded = envelope.encode_to_vec();

        (&self.queue, &self.sent, &self.usage)
            .transaction(|(queue, sent, usage)| {
                if let Some(existing) = sent.get(&sent_key)? {
                    let (envelope_id, _) = decode_sent_value(&existing)
                        .map_err(ConflictableTransactionError::Abort)?;
                    return Ok(Enqueued {
                        envelope_id,
                        duplicate: true,
                    });
                }
                let mut mailbox = read_usage(usage, destination)?;
                check_quota(&mailbox, encoded.len() as u64, quota, destination)?;
                mailbox.envelopes += 1;
                mailbox.bytes += encoded.len() as u64;

                queue.insert(queue_key.as_slice(), encoded.as_slice())?;
                sent.insert(
                    sent_key.as_slice(),
                    sent_value(envelope_id, now_ms).as_slice(),
                )?;
                usage.insert(
                    destination.as_bytes().as_slice(),
                    usage_value(mailbox).as_slice(),
                )?;
                Ok(Enqueued {
                    envelope_id,
                    duplicate: false,
                })
            })
            .map_err(RelayError::from)
    }

    pub(super) fn fetch_now(
        &self,
        owner: Uuid,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> StorageResult<Fetched> {
        let start = queue_key(owner, after.saturating_add(1));
        let end = queue_key(owner, u64::MAX);
        let mut fetched = Fetched::default();
        let mut bytes = 0usize;
        for entry in self.queue.range(start..=end) {
            let (key, value) = entry.map_err(storage_error("read the mailbox"))?;
            let full = fetched.envelopes.len() >= limit;
            let too_large = !fetched.envelopes.is_empty() && bytes + value.len() > max_bytes;
            if full || too_large {
                fetched.more = true;
                break;
            }
            bytes += value.len();
            fetched.envelopes.push(decode(&printable(&key), &value)?);
        }
        Ok(fetched)
    }

    pub(super) fn still_queued_now(
        &self,
        owner: Uuid,
        envelope_ids: &[u64],
    ) -> StorageResult<Vec<u64>> {
        let mut queued = Vec::with_capacity(envelope_ids.len());
        for &envelope_id in envelope_ids {
            if self
                .queue
                .contains_key(queue_key(owner, envelope_id))
                .map_err(storage_error("read the mailbox"))?
            {
                queued.push(envelope_id);
            }
        }
        Ok(queued)
    }

    pub(super) fn acknowledge_now(&self, owner: Uuid, envelope_ids: &[u64]) -> StorageResult<u32> {
        (&self.queue, &self.usage)
            .transaction(|(queue, usage)| {
                let mut mailbox = read_usage(usage, owner)?;
                let mut removed = 0u32;
                for &envelope_id in envelope_ids {
                    if let Some(value) = queue.remove(queue_key(owner, envelope_id))? {
                        removed += 1;
                        forget(&mut mailbox, value.len());
                    }
                }
                usage.insert(owner.as_bytes().as_slice(), usage_value(mailbox).as_slice())?;
                Ok(removed)
            })
            .map_err(RelayError::from)
    }

    pub(super) fn retract_now(
        &self,
        source: Uuid,
        destination: Uuid,
        client_message_id: &[u8],
    ) -> StorageResult<bool> {
        let sent_key = sent_key(source, destination, client_message_id);
        (&self.queue, &self.sent, &self.usage)
            .transaction(|(queue, sent, usage)| {
                let Some(record) = sent.remove(sent_key.as_slice())? else {
                    return Ok(false);
                };
                let (envelope_id, _) =
                    decode_sent_value(&record).map_err(ConflictableTransactionError::Abort)?;
                let Some(value) = queue.remove(queue_key(destination, envelope_id))? else {
                    return Ok(false);
                };
                let mut mailbox = read_usage(usage, destination)?;
                forget(&mut mailbox, value.len());
                usage.insert(
                    destination.as_bytes().as_slice(),
                    usage_value(mailbox).as_slice(),
                )?;
                Ok(true)
            })
            .map_err(RelayError::from)
    }

    pub(super) fn usage_now(&self, owner: Uuid) -> StorageResult<MailboxUsage> {
        let value = self
            .usage
            .get(owner.as_bytes())
            .map_err(storage_error("read mailbox usage"))?;
        decode_usage(value.as_deref())
    }

    pub(super) fn total_usage_now(&self) -> StorageResult<MailboxUsage> {
        let mut total = MailboxUsage::default();
        for entry in self.usage.iter() {
            let (_, value) = entry.map_err(storage_error("read mailbox usage"))?;
            let mailbox = decode_usage(Some(&value))?;
            total.envelopes += mailbox.envelopes;
            total.bytes += mailbox.bytes;
        }
        Ok(total)
    }

    /// Deletes what outlived its time to live. Each deletion is its own transaction, so the
    /// sweep never blocks a mailbox for long.
    pub(super) fn sweep_now(&self, now_ms: u64, ttl_ms: u64) -> StorageResult<SweepReport> {
        let cutoff_ms = now_ms.saturating_sub(ttl_ms);
        let mut report = SweepReport::default();

        for entry in self.queue.iter() {
            let (key, value) = entry.map_err(storage_error("scan queues"))?;
            let envelope: Envelope = decode(&printable(&key), &value)?;
            if envelope.server_timestamp_ms >= cutoff_ms {
                continue;
            }
            let Some(owner) = key.get(..16).and_then(|bytes| Uuid::from_slice(bytes).ok()) else {
                continue;
            };
            if self.acknowledge_now(owner, &[envelope_id_of(&key)?])? > 0 {
                report.envelopes += 1;
            }
        }
        for entry in self.sent.iter() {
            let (key, value) = entry.map_err(storage_error("scan send records"))?;
            let (_, stored_at_ms) = decode_sent_value(&value)?;
            if stored_at_ms < cutoff_ms
                && self
                    .sent
                    .compare_and_swap(&key, Some(&value), None::<&[u8]>)
                    .map_err(storage_error("delete a send record"))?
                    .is_ok()
            {
                report.send_records += 1;
            }
        }
        for entry in self.challenges.iter() {
            let (key, value) = entry.map_err(storage_error("scan challenges"))?;
            if decode_u64("challenges", &value)? < now_ms
                && self
                    .challenges
                    .remove(&key)
                    .map_err(storage_error("delete a challenge"))?
                    .is_some()
            {
                report.challenges += 1;
            }
        }
        Ok(report)
    }
}

fn read_usage(usage: &TransactionalTree, owner: Uuid) -> TransactionResult<MailboxUsage> {
    let value = usage.get(owner.as_bytes())?;
    decode_usage(value.as_deref()).map_err(ConflictableTransactionError::Abort)
}

fn check_quota(
    mailbox: &MailboxUsage,
    bytes: u64,
    quota: MailboxQuota,
    destination: Uuid,
) -> TransactionResult<()> {
    let address = DeviceAddress::primary(destination);
    if mailbox.envelopes + 1 > quota.max_envelopes {
        return Err(ConflictableTransactionError::Abort(
            RelayError::LimitExceeded {
                subject: format!(
                    "one more envelope for {address}, which holds {}",
                    mailbox.envelopes
                ),
                limit: quota.max_envelopes,
                name: "max_queued_envelopes",
            },
        ));
    }
    if mailbox.bytes + bytes > quota.max_bytes {
        return Err(ConflictableTransactionError::Abort(
            RelayError::LimitExceeded {
                subject: format!(
                    "{} more bytes for {address}, which holds {} bytes",
                    bytes, mailbox.bytes
                ),
                limit: quota.max_bytes,
                name: "max_queued_bytes",
            },
        ));
    }
    Ok(())
}

fn forget(mailbox: &mut MailboxUsage, bytes: usize) {
    mailbox.envelopes = mailbox.envelopes.saturating_sub(1);
    mailbox.bytes = mailbox.bytes.saturating_sub(bytes as u64);
}
