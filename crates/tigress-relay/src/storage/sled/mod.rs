//! The embedded storage backend on sled.
//!
//! Trees and their keys (UUIDs as 16 bytes, numbers big-endian so that keys sort by them):
//!
//! | tree         | key                                          | value                            |
//! | ------------ | -------------------------------------------- | -------------------------------- |
//! | `meta`       | `format-version`                             | `u32`, see [`format`]            |
//! | `devices`    | device UUID                                  | [`DeviceRecord`]                 |
//! | `prekeys`    | device UUID, kind (1 EC, 2 Kyber), key id    | `EcPreKey` / `KyberPreKey`       |
//! | `queue`      | destination UUID, envelope id                | `Envelope`                       |
//! | `usage`      | destination UUID                             | envelopes and bytes queued       |
//! | `sent`       | source UUID, destination UUID, client id     | envelope id, storage time in ms  |
//! | `challenges` | challenge                                    | expiry in ms                     |
//!
//! A write is on disk before its call returns success, through a group commit ([`flusher`]).
//! Device records are read through a bounded cache ([`cache`]), because every call reads one.

mod cache;
mod devices;
mod flusher;
mod format;
mod keys;
mod mailbox;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tigress_proto::relay::v1::Envelope;
use uuid::Uuid;

pub use format::FORMAT_VERSION;

use super::{
    DeviceRecord, Enqueued, Fetched, MailboxQuota, MailboxUsage, NewDevice, PreKeyCounts,
    PreKeyUpdate, Storage, StorageResult, SweepReport, TakenBundle,
};
use crate::metrics::Histogram;
use cache::{DeviceCache, Lookup};
use flusher::GroupFlusher;
use mailbox::{Acknowledgement, NewEnvelope, QueueTrees};

/// How long opening waits for sled's file lock before it reports the folder in use. Dropping a
/// storage can return before sled's I/O thread pool drops its last handle to the database file,
/// which holds the lock, so reopening a folder in the same process can find it locked for a
/// moment.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Pause between two attempts to take sled's file lock.
const LOCK_RETRY_INTERVAL: Duration = Duration::from_millis(10);

/// How many locks serialise prekey changes; devices hash onto them.
const DEVICE_LOCKS: usize = 64;

/// A failure to open the storage folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process has the folder open.
    #[error("relay data folder {} is in use by another process", path.display())]
    Locked {
        /// The folder.
        path: PathBuf,
    },
    /// sled could not open or recover the folder.
    #[error("failed to open relay data folder {}: {source}", path.display())]
    Sled {
        /// The folder.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// The folder was written in a layout this relay does not read.
    #[error(
        "relay data folder {} has storage format version {found}, but this relay reads version {supported}",
        path.display()
    )]
    UnsupportedFormat {
        /// The folder.
        path: PathBuf,
        /// The version found.
        found: String,
        /// The version this relay reads.
        supported: u32,
    },
    /// The folder's database file exists, but sled recovered none of its records: the file was
    /// truncated or overwritten.
    #[error(
        "relay data folder {} is damaged: its database file is there but no records could be recovered from it; restore the folder from a backup, or move it away to start an empty relay",
        path.display()
    )]
    Damaged {
        /// The folder.
        path: PathBuf,
    },
    /// The flusher thread could not start.
    #[error("failed to start the flusher thread: {0}")]
    Flusher(#[source] std::io::Error),
}

/// Storage in a sled database folder.
#[derive(Debug)]
pub struct SledStorage {
    /// The database, with which tests queue envelopes without the group commit.
    #[cfg(test)]
    db: sled::Db,
    devices: sled::Tree,
    prekeys: sled::Tree,
    queue: sled::Tree,
    usage: sled::Tree,
    sent: sled::Tree,
    challenges: sled::Tree,
    /// See [`QueueTrees::durable`].
    durable: Arc<AtomicU64>,
    device_locks: Vec<Mutex<()>>,
    device_cache: DeviceCache,
    flush_latency: Arc<Histogram>,
    flusher: GroupFlusher,
}

impl SledStorage {
    /// Opens or creates the storage in `path`, migrating an older format.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when the folder is locked, damaged or of an unknown format version.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_with_cache(
            path,
            crate::config::DEFAULT_STORAGE_CACHE_BYTES,
            crate::config::DEFAULT_DEVICE_CACHE_RECORDS,
        )
    }

    /// Opens or creates the storage in `path` with a cache of at most `cache_bytes` for the
    /// database and one of at most `device_cache_records` device records.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when the folder is locked, damaged or of an unknown format version.
    pub fn open_with_cache(
        path: &Path,
        cache_bytes: u64,
        device_cache_records: usize,
    ) -> Result<Self, OpenError> {
        let sled_error = |source: sled::Error| {
            if source.to_string().contains("could not acquire lock") {
                OpenError::Locked {
                    path: path.to_owned(),
                }
            } else {
                OpenError::Sled {
                    path: path.to_owned(),
                    source,
                }
            }
        };
        let existed = std::fs::metadata(path.join("db")).is_ok_and(|metadata| metadata.len() > 0);
        let db = open_db(path, cache_bytes, &sled_error)?;
        format::prepare(&db, path, existed, now_ms())?;

        let tree = |name: &str| db.open_tree(name).map_err(sled_error);
        let flush_latency = Arc::new(Histogram::seconds());
        // Every id sled hands out from now on is above this one, and everything queued before
        // this open is on disk.
        let durable = Arc::new(AtomicU64::new(db.generate_id().map_err(sled_error)?));
        let queue_trees = QueueTrees {
            db: db.clone(),
            queue: tree("queue")?,
            sent: tree("sent")?,
            usage: tree("usage")?,
            durable: durable.clone(),
        };
        Ok(Self {
            devices: tree("devices")?,
            prekeys: tree("prekeys")?,
            queue: queue_trees.queue.clone(),
            usage: queue_trees.usage.clone(),
            sent: queue_trees.sent.clone(),
            challenges: tree("challenges")?,
            durable,
            device_locks: (0..DEVICE_LOCKS).map(|_| Mutex::new(())).collect(),
            device_cache: DeviceCache::new(device_cache_records),
            flusher: GroupFlusher::start(queue_trees, flush_latency.clone())
                .map_err(OpenError::Flusher)?,
            flush_latency,
            #[cfg(test)]
            db,
        })
    }

    /// The latency of the group commit's flushes, for metrics.
    pub fn flush_latency(&self) -> Arc<Histogram> {
        self.flush_latency.clone()
    }

    /// Serialises prekey changes of one device. Held only across synchronous sled calls.
    fn lock_device(&self, uuid: Uuid) -> MutexGuard<'_, ()> {
        let index = (uuid.as_u128() % DEVICE_LOCKS as u128) as usize;
        // A poisoned lock means a panic between two sled calls. Each sled call is atomic on its
        // own, so the data stays consistent and the lock can be reused.
        self.device_locks[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Storage for SledStorage {
    async fn insert_challenge(&self, challenge: [u8; 32], expires_at_ms: u64) -> StorageResult<()> {
        self.insert_challenge_now(challenge, expires_at_ms)
    }

    async fn take_challenge(&self, challenge: &[u8], now_ms: u64) -> StorageResult<bool> {
        self.take_challenge_now(challenge, now_ms)
    }

    async fn create_device(&self, device: NewDevice) -> StorageResult<()> {
        self.create_device_now(&device)?;
        self.flusher.flush().await
    }

    async fn device(&self, uuid: Uuid) -> StorageResult<Option<Arc<DeviceRecord>>> {
        let stamp = match self.device_cache.lookup(uuid) {
            Lookup::Hit(record) => return Ok(Some(record)),
            Lookup::Miss(stamp) => stamp,
        };
        let Some(record) = self.read_device(uuid)? else {
            return Ok(None);
        };
        let record = Arc::new(record);
        self.device_cache.fill(uuid, record.clone(), stamp);
        Ok(Some(record))
    }

    async fn update_prekeys(
        &self,
        uuid: Uuid,
        update: PreKeyUpdate,
    ) -> StorageResult<PreKeyCounts> {
        let counts = self.update_prekeys_now(uuid, &update)?;
        self.flusher.flush().await?;
        Ok(counts)
    }

    async fn prekey_counts(&self, uuid: Uuid) -> StorageResult<PreKeyCounts> {
        self.count_prekeys(uuid)
    }

    async fn take_bundle(&self, uuid: Uuid) -> StorageResult<Option<TakenBundle>> {
        let bundle = self.take_bundle_now(uuid)?;
        if bundle.as_ref().is_some_and(|bundle| {
            bundle.one_time_prekey.is_some() || bundle.one_time_kyber_prekey.is_some()
        }) {
            self.flusher.flush().await?;
        }
        Ok(bundle)
    }

    async fn enqueue(
        &self,
        destination: Uuid,
        source: Uuid,
        envelope: Envelope,
        quota: MailboxQuota,
    ) -> StorageResult<Enqueued> {
        // A duplicate waits for the flush too: the first copy may still be waiting for its own.
        let new = NewEnvelope {
            destination,
            source,
            envelope,
            quota,
            now_ms: now_ms(),
        };
        self.flusher.enqueue(new).await
    }

    async fn fetch(
        &self,
        owner: Uuid,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> StorageResult<Fetched> {
        self.fetch_now(owner, after, limit, max_bytes)
    }

    async fn still_queued(&self, owner: Uuid, envelope_ids: &[u64]) -> StorageResult<Vec<u64>> {
        self.still_queued_now(owner, envelope_ids)
    }

    async fn acknowledge(&self, owner: Uuid, envelope_ids: &[u64]) -> StorageResult<u32> {
        let acknowledgement = Acknowledgement {
            owner,
            envelope_ids: envelope_ids.to_vec(),
        };
        self.flusher.acknowledge(acknowledgement).await
    }

    async fn usage(&self, owner: Uuid) -> StorageResult<MailboxUsage> {
        self.usage_now(owner)
    }

    async fn total_usage(&self) -> StorageResult<MailboxUsage> {
        self.total_usage_now()
    }

    async fn sweep(&self, now_ms: u64, ttl_ms: u64) -> StorageResult<SweepReport> {
        let report = self.sweep_now(now_ms, ttl_ms)?;
        self.flusher.flush().await?;
        Ok(report)
    }

    async fn retract(
        &self,
        source: Uuid,
        destination: Uuid,
        client_message_id: &[u8],
    ) -> StorageResult<bool> {
        let retracted = self.retract_now(source, destination, client_message_id)?;
        self.flusher.flush().await?;
        Ok(retracted)
    }

    async fn delete_device(&self, uuid: Uuid) -> StorageResult<u32> {
        let deleted = self.delete_device_now(uuid)?;
        self.flusher.flush().await?;
        Ok(deleted)
    }

    async fn flush(&self) -> StorageResult<()> {
        self.flusher.flush().await
    }
}

/// Opens sled's database in `path`, waiting up to [`LOCK_WAIT`] for its file lock.
fn open_db(
    path: &Path,
    cache_bytes: u64,
    sled_error: &impl Fn(sled::Error) -> OpenError,
) -> Result<sled::Db, OpenError> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut logged = false;
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(sled_error);
        match opened {
            Err(OpenError::Locked { .. }) if Instant::now() < deadline => {
                if !logged {
                    tracing::info!(path = %path.display(), "data folder is locked; retrying");
                    logged = true;
                }
                std::thread::sleep(LOCK_RETRY_INTERVAL);
            }
            result => return result,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests;
