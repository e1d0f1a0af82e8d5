//! The relay's storage, behind one narrow trait so that the services do not depend on sled.
//!
//! [`Storage`] is all the services ask of a backend: atomic prekey consumption, idempotent and
//! durable envelope queueing, and per-mailbox fetch and delete. [`SledStorage`] is the embedded
//! implementation; a backend on a distributed engine would implement the same trait so that
//! several stateless relay nodes can share it.

mod records;
mod sled;

use std::sync::Arc;

use async_trait::async_trait;
use tigress_proto::relay::v1::{EcPreKey, Envelope, KyberPreKey, SignedPreKey};
use uuid::Uuid;

pub use self::sled::{FORMAT_VERSION, OpenError, SledStorage};
pub use records::DeviceRecord;

use crate::error::RelayError;

/// A result with the relay's error.
pub type StorageResult<T> = Result<T, RelayError>;

/// A device to create, with its first prekeys.
#[derive(Clone, Debug)]
pub struct NewDevice {
    /// The relay-assigned UUID.
    pub uuid: Uuid,
    /// The device record.
    pub record: DeviceRecord,
    /// One-time EC prekeys.
    pub one_time_prekeys: Vec<EcPreKey>,
    /// One-time Kyber prekeys.
    pub one_time_kyber_prekeys: Vec<KyberPreKey>,
}

/// Prekeys to replace; `None` and empty lists leave the stored keys of that kind as they are.
#[derive(Clone, Debug, Default)]
pub struct PreKeyUpdate {
    /// A new signed EC prekey.
    pub signed_prekey: Option<SignedPreKey>,
    /// A new last-resort Kyber prekey.
    pub kyber_last_resort_prekey: Option<KyberPreKey>,
    /// New one-time EC prekeys, replacing all stored ones when not empty.
    pub one_time_prekeys: Vec<EcPreKey>,
    /// New one-time Kyber prekeys, replacing all stored ones when not empty.
    pub one_time_kyber_prekeys: Vec<KyberPreKey>,
}

/// How many one-time prekeys of each kind a device has left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PreKeyCounts {
    /// One-time EC prekeys.
    pub one_time_prekeys: u32,
    /// One-time Kyber prekeys.
    pub one_time_kyber_prekeys: u32,
}

/// The keys a bundle fetch took from storage.
#[derive(Clone, Debug)]
pub struct TakenBundle {
    /// The device's record, with its signed prekey and last-resort Kyber prekey.
    pub record: DeviceRecord,
    /// A one-time EC prekey, now removed; `None` when none were left.
    pub one_time_prekey: Option<EcPreKey>,
    /// A one-time Kyber prekey, now removed; `None` when none were left.
    pub one_time_kyber_prekey: Option<KyberPreKey>,
}

/// The outcome of queueing an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The envelope's id.
    pub envelope_id: u64,
    /// True when the same client message id was queued before, so nothing new was stored.
    pub duplicate: bool,
}

/// The most a mailbox may hold; a send beyond it is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailboxQuota {
    /// Most envelopes queued.
    pub max_envelopes: u64,
    /// Most bytes of envelope content queued.
    pub max_bytes: u64,
}

/// What a mailbox holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxUsage {
    /// Envelopes queued.
    pub envelopes: u64,
    /// Bytes of envelope content queued.
    pub bytes: u64,
}

/// What a sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Envelopes older than the time to live.
    pub envelopes: u64,
    /// Records of client message ids older than the time to live.
    pub send_records: u64,
    /// Expired registration challenges.
    pub challenges: u64,
}

/// A page of a mailbox.
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    /// Envelopes, oldest first.
    pub envelopes: Vec<Envelope>,
    /// Whether more envelopes follow.
    pub more: bool,
}

/// Everything the relay's services need from a storage backend.
///
/// Every method that changes state must be atomic. The methods documented as durable must also
/// have their changes on disk before they return.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Records a registration challenge that expires at `expires_at_ms`.
    async fn insert_challenge(&self, challenge: [u8; 32], expires_at_ms: u64) -> StorageResult<()>;

    /// Removes a challenge and returns whether it existed and had not expired at `now_ms`.
    /// Two concurrent calls for one challenge never both return true.
    async fn take_challenge(&self, challenge: &[u8], now_ms: u64) -> StorageResult<bool>;

    /// Creates a device with its prekeys, durably.
    async fn create_device(&self, device: NewDevice) -> StorageResult<()>;

    /// Reads a device record. Every authenticated call reads one, so a backend may cache records,
    /// as long as a read that starts after a device changed or was deleted sees the change.
    async fn device(&self, uuid: Uuid) -> StorageResult<Option<Arc<DeviceRecord>>>;

    /// Replaces prekeys of a device and returns the counts afterwards, durably.
    async fn update_prekeys(&self, uuid: Uuid, update: PreKeyUpdate)
    -> StorageResult<PreKeyCounts>;

    /// Counts a device's one-time prekeys.
    async fn prekey_counts(&self, uuid: Uuid) -> StorageResult<PreKeyCounts>;

    /// Takes one one-time prekey of each kind from a device in one atomic, durable step.
    /// Returns `None` for an unknown device.
    async fn take_bundle(&self, uuid: Uuid) -> StorageResult<Option<TakenBundle>>;

    /// Queues an envelope for `destination`, durably, unless the mailbox would then hold more
    /// than `quota` allows ([`RelayError::LimitExceeded`]). A repeat of the same source,
    /// destination and client message id stores nothing and returns the first envelope's id.
    ///
    /// Envelopes become visible to [`Storage::fetch`] in the order of their ids: a reader who
    /// has seen id N never later finds a new envelope below N. Subscriptions rely on that to
    /// read only what is newer than what they sent. An envelope becomes visible only once it
    /// is on disk, so no device receives an envelope that a crash could take back.
    async fn enqueue(
        &self,
        destination: Uuid,
        source: Uuid,
        envelope: Envelope,
        quota: MailboxQuota,
    ) -> StorageResult<Enqueued>;

    /// Reads up to `limit` envelopes of a mailbox with ids above `after`, oldest first,
    /// stopping before `max_bytes` of content (but always returning at least one envelope when
    /// any is queued).
    async fn fetch(
        &self,
        owner: Uuid,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> StorageResult<Fetched>;

    /// Returns the ids among `envelope_ids` that are still queued in the mailbox.
    async fn still_queued(&self, owner: Uuid, envelope_ids: &[u64]) -> StorageResult<Vec<u64>>;

    /// Deletes envelopes of a mailbox, durably, and returns how many existed.
    async fn acknowledge(&self, owner: Uuid, envelope_ids: &[u64]) -> StorageResult<u32>;

    /// Returns what a mailbox holds.
    async fn usage(&self, owner: Uuid) -> StorageResult<MailboxUsage>;

    /// Returns what every mailbox holds together.
    async fn total_usage(&self) -> StorageResult<MailboxUsage>;

    /// Deletes queued envelopes and client message id records older than `ttl_ms` before
    /// `now_ms`, and challenges that expired before `now_ms`.
    async fn sweep(&self, now_ms: u64, ttl_ms: u64) -> StorageResult<SweepReport>;

    /// Deletes the envelope `source` sent to `destination` with `client_message_id`, and the
    /// record of that id, durably. Returns whether the envelope was still queued.
    async fn retract(
        &self,
        source: Uuid,
        destination: Uuid,
        client_message_id: &[u8],
    ) -> StorageResult<bool>;

    /// Deletes a device with its prekeys, its queued envelopes and the records of the client
    /// message ids it sent, in one atomic, durable step. Returns how many envelopes were queued.
    async fn delete_device(&self, uuid: Uuid) -> StorageResult<u32>;

    /// Writes everything to disk; called on shutdown.
    async fn flush(&self) -> StorageResult<()>;
}
