//! Mailboxes in the sled backend: queueing with quotas, fetching, acknowledging, retracting and
//! sweeping. Every change to a queue updates the mailbox's `usage` record in the same
//! transaction, so that quotas and metrics never drift from the queue.
//!
//! Sends are queued in batches ([`QueueTrees::enqueue_all`]): the group commit gathers the sends
//! that arrive while it flushes and queues them in one transaction, which costs sled far less
//! than one transaction per send. Acknowledgements are batched the same way
//! ([`QueueTrees::acknowledge_all`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// An envelope to queue, with the quota of its destination's mailbox.
#[derive(Debug)]
pub(super) struct NewEnvelope {
    pub(super) destination: Uuid,
    pub(super) source: Uuid,
    pub(super) envelope: Envelope,
    pub(super) quota: MailboxQuota,
    pub(super) now_ms: u64,
}

/// An envelope with its id assigned and its keys and value encoded, ready for the transaction.
struct Prepared {
    destination: Uuid,
    envelope_id: u64,
    queue_key: Vec<u8>,
    sent_key: Vec<u8>,
    sent_value: [u8; 16],
    encoded: Vec<u8>,
    quota: MailboxQuota,
}

/// Envelopes of one mailbox that its owner acknowledged.
#[derive(Debug)]
pub(super) struct Acknowledgement {
    pub(super) owner: Uuid,
    pub(super) envelope_ids: Vec<u64>,
}

/// The trees that queueing changes, shared by the storage and its group commit.
#[derive(Clone, Debug)]
pub(super) struct QueueTrees {
    pub(super) db: sled::Db,
    pub(super) queue: sled::Tree,
    pub(super) sent: sled::Tree,
    pub(super) usage: sled::Tree,
    /// The highest envelope id known to be on disk. Fetches show no envelope above it, so a
    /// device never receives an envelope that a crash could still take back.
    pub(super) durable: Arc<AtomicU64>,
}

impl QueueTrees {
    /// Queues every envelope of `batch` in one transaction, in order, and returns one outcome
    /// per envelope: a send over its quota fails alone, and a duplicate of an earlier send,
    /// also one in the same batch, returns that send's id.
    pub(super) fn enqueue_all(&self, batch: Vec<NewEnvelope>) -> Vec<StorageResult<Enqueued>> {
        if batch.is_empty() {
            return Vec::new();
        }
        let prepared: Vec<StorageResult<Prepared>> =
            batch.into_iter().map(|new| self.prepare(new)).collect();

        let outcomes =
            (&self.queue, &self.sent, &self.usage).transaction(|(queue, sent, usage)| {
                let mut outcomes = Vec::with_capacity(prepared.len());
                for item in &prepared {
                    let outcome = match item {
                        Ok(item) => enqueue_one(queue, sent, usage, item)?,
                        Err(_) => None,
                    };
                    outcomes.push(outcome);
                }
                Ok(outcomes)
            });

        match outcomes {
            Ok(outcomes) => prepared
                .into_iter()
                .zip(outcomes)
                .map(|(item, outcome)| match (item, outcome) {
                    (Err(error), _) => Err(error),
                    (Ok(_), Some(outcome)) => outcome,
                    (Ok(_), None) => Err(RelayError::Storage {
                        op: "queue an envelope",
                        message: "the transaction returned no outcome".to_owned(),
                    }),
                })
                .collect(),
            Err(error) => {
                let error = RelayError::from(error);
                tracing::error!(%error, envelopes = prepared.len(), "queueing a batch failed");
                prepared
                    .into_iter()
                    .map(|item| item.and(Err(batch_failed("queue an envelope", &error))))
                    .collect()
            }
        }
    }

    /// Removes the envelopes of every acknowledgement in `batch` in one transaction, and returns
    /// how many of each were still queued.
    pub(super) fn acknowledge_all(&self, batch: &[Acknowledgement]) -> Vec<StorageResult<u32>> {
        if batch.is_empty() {
            return Vec::new();
        }
        let removed = (&self.queue, &self.usage).transaction(|(queue, usage)| {
            batch
                .iter()
                .map(|acknowledgement| {
                    acknowledge_one(
                        queue,
                        usage,
                        acknowledgement.owner,
                        &acknowledgement.envelope_ids,
                    )
                })
                .collect::<TransactionResult<Vec<u32>>>()
        });

        match removed {
            Ok(removed) => removed.into_iter().map(Ok).collect(),
            Err(error) => {
                let error = RelayError::from(error);
                tracing::error!(
                    %error,
                    acknowledgements = batch.len(),
                    "removing acknowledged envelopes failed"
                );
                batch
                    .iter()
                    .map(|_| Err(batch_failed("remove acknowledged envelopes", &error)))
                    .collect()
            }
        }
    }

    /// Assigns the envelope its id and encodes what the transaction writes.
    fn prepare(&self, new: NewEnvelope) -> StorageResult<Prepared> {
        let NewEnvelope {
            destination,
            source,
            mut envelope,
            quota,
            now_ms,
        } = new;
        let envelope_id = self
            .db
            .generate_id()
            .map_err(storage_error("assign an envelope id"))?
            // Ids start at 1, so that 0 can mean "before every envelope" and "no id" in protobuf.
            .saturating_add(1);
        envelope.id = envelope_id;

        Ok(Prepared {
            destination,
            envelope_id,
            queue_key: queue_key(destination, envelope_id),
            sent_key: sent_key(source, destination, &envelope.client_message_id),
            sent_value: sent_value(envelope_id, now_ms),
            encoded: envelope.encode_to_vec(),
            quota,
        })
    }
}

/// Queues one prepared envelope inside the batch's transaction.
///
/// The inner result is the send's own outcome: a duplicate or a quota error. The outer one
/// aborts or retries the whole transaction.
fn enqueue_one(
    queue: &TransactionalTree,
    sent: &TransactionalTree,
    usage: &TransactionalTree,
    item: &Prepared,
) -> TransactionResult<Option<StorageResult<Enqueued>>> {
    if let Some(existing) = sent.get(&item.sent_key)? {
        let (envelope_id, _) =
            decode_sent_value(&existing).map_err(ConflictableTransactionError::Abort)?;
        return Ok(Some(Ok(Enqueued {
            envelope_id,
            duplicate: true,
        })));
    }

    let mut mailbox = read_usage(usage, item.destination)?;
    let bytes = item.encoded.len() as u64;
    if let Err(error) = check_quota(&mailbox, bytes, item.quota, item.destination) {
        return Ok(Some(Err(error)));
    }
    mailbox.envelopes += 1;
    mailbox.bytes += bytes;

    queue.insert(item.queue_key.as_slice(), item.encoded.as_slice())?;
    sent.insert(item.sent_key.as_slice(), item.sent_value.as_slice())?;
    usage.insert(
        item.destination.as_bytes().as_slice(),
        usage_value(mailbox).as_slice(),
    )?;
    Ok(Some(Ok(Enqueued {
        envelope_id: item.envelope_id,
        duplicate: false,
    })))
}

impl SledStorage {
    /// Queues one envelope on its own, without waiting for the disk.
    #[cfg(test)]
    pub(super) fn enqueue_now(
        &self,
        destination: Uuid,
        source: Uuid,
        envelope: Envelope,
        quota: MailboxQuota,
        now_ms: u64,
    ) -> StorageResult<Enqueued> {
        let new = NewEnvelope {
            destination,
            source,
            envelope,
            quota,
            now_ms,
        };
        let trees = QueueTrees {
            db: self.db.clone(),
            queue: self.queue.clone(),
            sent: self.sent.clone(),
            usage: self.usage.clone(),
            durable: self.durable.clone(),
        };
        let outcome = trees.enqueue_all(vec![new]).pop().unwrap_or_else(|| {
            Err(RelayError::Storage {
                op: "queue an envelope",
                message: "the batch returned no outcome".to_owned(),
            })
        });
        // Tests read what they queued at once, as if it had been flushed.
        if let Ok(enqueued) = &outcome {
            self.durable
                .fetch_max(enqueued.envelope_id, Ordering::SeqCst);
        }
        outcome
    }

    pub(super) fn fetch_now(
        &self,
        owner: Uuid,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> StorageResult<Fetched> {
        let start = queue_key(owner, after.saturating_add(1));
        let end = queue_key(owner, self.durable.load(Ordering::SeqCst));
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

    /// Removes envelopes at once, without waiting for the disk.
    pub(super) fn acknowledge_now(&self, owner: Uuid, envelope_ids: &[u64]) -> StorageResult<u32> {
        (&self.queue, &self.usage)
            .transaction(|(queue, usage)| acknowledge_one(queue, usage, owner, envelope_ids))
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

/// Returns the error each job of a batch gets when the batch's transaction failed.
fn batch_failed(op: &'static str, error: &RelayError) -> RelayError {
    RelayError::Storage {
        op,
        message: error.to_string(),
    }
}

/// Removes acknowledged envelopes of one mailbox inside a transaction and returns how many were
/// still queued.
fn acknowledge_one(
    queue: &TransactionalTree,
    usage: &TransactionalTree,
    owner: Uuid,
    envelope_ids: &[u64],
) -> TransactionResult<u32> {
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
) -> StorageResult<()> {
    let address = DeviceAddress::primary(destination);
    if mailbox.envelopes + 1 > quota.max_envelopes {
        return Err(RelayError::LimitExceeded {
            subject: format!(
                "one more envelope for {address}, which holds {}",
                mailbox.envelopes
            ),
            limit: quota.max_envelopes,
            name: "max_queued_envelopes",
        });
    }
    if mailbox.bytes + bytes > quota.max_bytes {
        return Err(RelayError::LimitExceeded {
            subject: format!(
                "{} more bytes for {address}, which holds {} bytes",
                bytes, mailbox.bytes
            ),
            limit: quota.max_bytes,
            name: "max_queued_bytes",
        });
    }
    Ok(())
}

fn forget(mailbox: &mut MailboxUsage, bytes: usize) {
    mailbox.envelopes = mailbox.envelopes.saturating_sub(1);
    mailbox.bytes = mailbox.bytes.saturating_sub(bytes as u64);
}
