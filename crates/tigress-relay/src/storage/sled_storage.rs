//! The embedded storage backend on sled.
//!
//! Trees and their keys (UUIDs as 16 bytes, numbers big-endian so that keys sort by them):
//!
//! | tree         | key                                          | value                      |
//! | ------------ | -------------------------------------------- | -------------------------- |
//! | `meta`       | `format-version`                             | `u32`                      |
//! | `devices`    | device UUID                                  | [`DeviceRecord`]           |
//! | `prekeys`    | device UUID, kind (1 EC, 2 Kyber), key id    | `EcPreKey` / `KyberPreKey` |
//! | `queue`      | destination UUID, envelope id                | `Envelope`                 |
//! | `sent`       | source UUID, destination UUID, client id     | envelope id                |
//! | `challenges` | challenge                                    | expiry in ms               |
//!
//! A write is on disk before its call returns success, through a group commit: every caller
//! that needs a flush queues a request, and one flusher thread serves all requests queued during
//! the previous flush with a single `fsync`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::Instant;

use async_trait::async_trait;
use prost::Message;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use tigress_proto::relay::v1::{EcPreKey, Envelope, KyberPreKey};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{
    DeviceRecord, Enqueued, Fetched, NewDevice, PreKeyCounts, PreKeyUpdate, Storage, StorageResult,
    TakenBundle,
};
use crate::error::RelayError;

/// The layout version this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_VERSION_KEY: &[u8] = b"format-version";

const KIND_EC: u8 = 1;
const KIND_KYBER: u8 = 2;

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
    /// The flusher thread could not start.
    #[error("failed to start the flusher thread: {0}")]
    Flusher(#[source] std::io::Error),
}

/// Storage in a sled database folder.
#[derive(Debug)]
pub struct SledStorage {
    db: sled::Db,
    devices: sled::Tree,
    prekeys: sled::Tree,
    queue: sled::Tree,
    sent: sled::Tree,
    challenges: sled::Tree,
    device_locks: Vec<Mutex<()>>,
    flusher: GroupFlusher,
}

impl SledStorage {
    /// Opens or creates the storage in `path`.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when the folder is locked, damaged or of another format version.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
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
        let db = sled::Config::new().path(path).open().map_err(sled_error)?;
        check_format_version(&db, path).map_err(|error| match error {
            FormatCheck::Sled(source) => sled_error(source),
            FormatCheck::Open(error) => error,
        })?;

        let tree = |name: &str| db.open_tree(name).map_err(sled_error);
        Ok(Self {
            devices: tree("devices")?,
            prekeys: tree("prekeys")?,
            queue: tree("queue")?,
            sent: tree("sent")?,
            challenges: tree("challenges")?,
            device_locks: (0..DEVICE_LOCKS).map(|_| Mutex::new(())).collect(),
            flusher: GroupFlusher::start(db.clone()).map_err(OpenError::Flusher)?,
            db,
        })
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

    fn count_prekeys(&self, uuid: Uuid) -> StorageResult<PreKeyCounts> {
        let count = |kind| -> StorageResult<u32> {
            let mut count = 0u32;
            for entry in self.prekeys.scan_prefix(prekey_prefix(uuid, kind)) {
                entry.map_err(storage_error("count prekeys"))?;
                count += 1;
            }
            Ok(count)
        };
        Ok(PreKeyCounts {
            one_time_prekeys: count(KIND_EC)?,
            one_time_kyber_prekeys: count(KIND_KYBER)?,
        })
    }

    fn first_prekey(
        &self,
        uuid: Uuid,
        kind: u8,
    ) -> StorageResult<Option<(sled::IVec, sled::IVec)>> {
        self.prekeys
            .scan_prefix(prekey_prefix(uuid, kind))
            .next()
            .transpose()
            .map_err(storage_error("read a prekey"))
    }

    fn read_device(&self, uuid: Uuid) -> StorageResult<Option<DeviceRecord>> {
        let Some(bytes) = self
            .devices
            .get(uuid.as_bytes())
            .map_err(storage_error("read a device"))?
        else {
            return Ok(None);
        };
        decode(&format!("devices/{uuid}"), &bytes).map(Some)
    }

    fn replace_prekeys(
        &self,
        uuid: Uuid,
        update: &PreKeyUpdate,
        mut record: DeviceRecord,
    ) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        if !update.one_time_prekeys.is_empty() {
            self.remove_all(uuid, KIND_EC, &mut batch)?;
            for key in &update.one_time_prekeys {
                batch.insert(prekey_key(uuid, KIND_EC, key.key_id), key.encode_to_vec());
            }
        }
        if !update.one_time_kyber_prekeys.is_empty() {
            self.remove_all(uuid, KIND_KYBER, &mut batch)?;
            for key in &update.one_time_kyber_prekeys {
                batch.insert(
                    prekey_key(uuid, KIND_KYBER, key.key_id),
                    key.encode_to_vec(),
                );
            }
        }
        if let Some(signed) = &update.signed_prekey {
            record.signed_prekey = Some(signed.clone());
        }
        if let Some(last_resort) = &update.kyber_last_resort_prekey {
            record.kyber_last_resort_prekey = Some(last_resort.clone());
        }

        let encoded = record.encode_to_vec();
        (&self.devices, &self.prekeys)
            .transaction(|(devices, prekeys)| {
                prekeys.apply_batch(&batch)?;
                devices.insert(uuid.as_bytes(), encoded.as_slice())?;
                Ok::<_, ConflictableTransactionError<RelayError>>(())
            })
            .map_err(RelayError::from)
    }

    fn keys_with_prefix(&self, tree: &sled::Tree, prefix: &[u8]) -> StorageResult<Vec<Vec<u8>>> {
        tree.scan_prefix(prefix)
            .keys()
            .map(|key| {
                key.map(|key| key.to_vec())
                    .map_err(storage_error("read keys to delete"))
            })
            .collect()
    }

    fn remove_all(&self, uuid: Uuid, kind: u8, batch: &mut sled::Batch) -> StorageResult<()> {
        for entry in self.prekeys.scan_prefix(prekey_prefix(uuid, kind)) {
            let (key, _) = entry.map_err(storage_error("read prekeys"))?;
            batch.remove(key);
        }
        Ok(())
    }
}

#[async_trait]
impl Storage for SledStorage {
    async fn insert_challenge(&self, challenge: [u8; 32], expires_at_ms: u64) -> StorageResult<()> {
        // TODO: sweep challenges that expire unused; until then each costs 40 bytes of disk.
        self.challenges
            .insert(challenge, &expires_at_ms.to_be_bytes())
            .map_err(storage_error("store a challenge"))?;
        Ok(())
    }

    async fn take_challenge(&self, challenge: &[u8], now_ms: u64) -> StorageResult<bool> {
        let Some(expiry) = self
            .challenges
            .remove(challenge)
            .map_err(storage_error("take a challenge"))?
        else {
            return Ok(false);
        };
        let expires_at_ms = decode_u64("challenges", &expiry)?;
        Ok(now_ms <= expires_at_ms)
    }

    async fn create_device(&self, device: NewDevice) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        for key in &device.one_time_prekeys {
            batch.insert(
                prekey_key(device.uuid, KIND_EC, key.key_id),
                key.encode_to_vec(),
            );
        }
        for key in &device.one_time_kyber_prekeys {
            batch.insert(
                prekey_key(device.uuid, KIND_KYBER, key.key_id),
                key.encode_to_vec(),
            );
        }
        let encoded = device.record.encode_to_vec();
        (&self.devices, &self.prekeys)
            .transaction(|(devices, prekeys)| {
                prekeys.apply_batch(&batch)?;
                devices.insert(device.uuid.as_bytes(), encoded.as_slice())?;
                Ok::<_, ConflictableTransactionError<RelayError>>(())
            })
            .map_err(RelayError::from)?;
        self.flusher.flush().await
    }

    async fn device(&self, uuid: Uuid) -> StorageResult<Option<DeviceRecord>> {
        self.read_device(uuid)
    }

    async fn update_prekeys(
        &self,
        uuid: Uuid,
        update: PreKeyUpdate,
    ) -> StorageResult<PreKeyCounts> {
        let counts = {
            let _guard = self.lock_device(uuid);
            let record = self
                .read_device(uuid)?
                .ok_or_else(|| RelayError::UnknownAddress {
                    field: "address",
                    address: tigress_core::DeviceAddress::primary(uuid).to_string(),
                })?;
            self.replace_prekeys(uuid, &update, record)?;
            self.count_prekeys(uuid)?
        };
        self.flusher.flush().await?;
        Ok(counts)
    }

    async fn prekey_counts(&self, uuid: Uuid) -> StorageResult<PreKeyCounts> {
        self.count_prekeys(uuid)
    }

    async fn take_bundle(&self, uuid: Uuid) -> StorageResult<Option<TakenBundle>> {
        let bundle = {
            let _guard = self.lock_device(uuid);
            let Some(record) = self.read_device(uuid)? else {
                return Ok(None);
            };
            let ec = self.first_prekey(uuid, KIND_EC)?;
            let kyber = self.first_prekey(uuid, KIND_KYBER)?;

            let mut batch = sled::Batch::default();
            for (key, _) in ec.iter().chain(kyber.iter()) {
                batch.remove(key.clone());
            }
            self.prekeys
                .apply_batch(batch)
                .map_err(storage_error("consume prekeys"))?;

            let one_time_prekey = ec
                .map(|(key, value)| decode::<EcPreKey>(&printable(&key), &value))
                .transpose()?;
            let one_time_kyber_prekey = kyber
                .map(|(key, value)| decode::<KyberPreKey>(&printable(&key), &value))
                .transpose()?;
            TakenBundle {
                record,
                one_time_prekey,
                one_time_kyber_prekey,
            }
        };
        if bundle.one_time_prekey.is_some() || bundle.one_time_kyber_prekey.is_some() {
            self.flusher.flush().await?;
        }
        Ok(Some(bundle))
    }

    async fn enqueue(
        &self,
        destination: Uuid,
        source: Uuid,
        mut envelope: Envelope,
    ) -> StorageResult<Enqueued> {
        let envelope_id = self
            .db
            .generate_id()
            .map_err(storage_error("assign an envelope id"))?;
        envelope.id = envelope_id;
        let queue_key = queue_key(destination, envelope_id);
        let sent_key = [
            source.as_bytes().as_slice(),
            destination.as_bytes(),
            &envelope.client_message_id,
        ]
        .concat();
        let encoded = envelope.encode_to_vec();

        let enqueued = (&self.queue, &self.sent)
            .transaction(|(queue, sent)| {
                if let Some(existing) = sent.get(&sent_key)? {
                    let envelope_id = decode_u64("sent", &existing)
                        .map_err(ConflictableTransactionError::Abort)?;
                    return Ok(Enqueued {
                        envelope_id,
                        duplicate: true,
                    });
                }
                queue.insert(queue_key.as_slice(), encoded.as_slice())?;
                sent.insert(sent_key.as_slice(), &envelope_id.to_be_bytes())?;
                Ok(Enqueued {
                    envelope_id,
                    duplicate: false,
                })
            })
            .map_err(RelayError::from)?;

        // A duplicate is flushed too: the first copy may still be waiting for its own flush.
        self.flusher.flush().await?;
        Ok(enqueued)
    }

    async fn fetch(&self, owner: Uuid, limit: usize, max_bytes: usize) -> StorageResult<Fetched> {
        let mut fetched = Fetched::default();
        let mut bytes = 0usize;
        for entry in self.queue.scan_prefix(owner.as_bytes()) {
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

    async fn acknowledge(&self, owner: Uuid, envelope_ids: &[u64]) -> StorageResult<u32> {
        let mut removed = 0;
        for &envelope_id in envelope_ids {
            let previous = self
                .queue
                .remove(queue_key(owner, envelope_id))
                .map_err(storage_error("delete an envelope"))?;
            removed += u32::from(previous.is_some());
        }
        Ok(removed)
    }

    async fn retract(
        &self,
        source: Uuid,
        destination: Uuid,
        client_message_id: &[u8],
    ) -> StorageResult<bool> {
        let sent_key = sent_key(source, destination, client_message_id);
        let retracted = (&self.queue, &self.sent)
            .transaction(|(queue, sent)| {
                let Some(envelope_id) = sent.remove(sent_key.as_slice())? else {
                    return Ok(false);
                };
                let envelope_id = decode_u64("sent", &envelope_id)
                    .map_err(ConflictableTransactionError::Abort)?;
                Ok(queue.remove(queue_key(destination, envelope_id))?.is_some())
            })
            .map_err(RelayError::from)?;
        self.flusher.flush().await?;
        Ok(retracted)
    }

    async fn delete_device(&self, uuid: Uuid) -> StorageResult<u32> {
        let deleted = {
            let _guard = self.lock_device(uuid);
            let prekeys = self.keys_with_prefix(&self.prekeys, uuid.as_bytes())?;
            let queued = self.keys_with_prefix(&self.queue, uuid.as_bytes())?;
            let sent = self.keys_with_prefix(&self.sent, uuid.as_bytes())?;
            (&self.devices, &self.prekeys, &self.queue, &self.sent)
                .transaction(|(devices, prekeys_tree, queue, sent_tree)| {
                    devices.remove(uuid.as_bytes())?;
                    for key in &prekeys {
                        prekeys_tree.remove(key.as_slice())?;
                    }
                    for key in &queued {
                        queue.remove(key.as_slice())?;
                    }
                    for key in &sent {
                        sent_tree.remove(key.as_slice())?;
                    }
                    Ok::<_, ConflictableTransactionError<RelayError>>(())
                })
                .map_err(RelayError::from)?;
            u32::try_from(queued.len()).unwrap_or(u32::MAX)
        };
        self.flusher.flush().await?;
        Ok(deleted)
    }

    async fn flush(&self) -> StorageResult<()> {
        self.flusher.flush().await
    }
}

enum FormatCheck {
    Sled(sled::Error),
    Open(OpenError),
}

/// Writes the format version into a new folder, or checks the one already there.
fn check_format_version(db: &sled::Db, path: &Path) -> Result<(), FormatCheck> {
    let meta = db.open_tree("meta").map_err(FormatCheck::Sled)?;
    let current = FORMAT_VERSION.to_be_bytes();
    let previous = meta
        .compare_and_swap(
            FORMAT_VERSION_KEY,
            None as Option<&[u8]>,
            Some(current.as_slice()),
        )
        .map_err(FormatCheck::Sled)?;
    let Err(existing) = previous else {
        return Ok(());
    };
    match existing.current {
        Some(bytes) if bytes.as_ref() == current.as_slice() => Ok(()),
        other => Err(FormatCheck::Open(OpenError::UnsupportedFormat {
            path: path.to_owned(),
            found: describe_version(other.as_deref()),
            supported: FORMAT_VERSION,
        })),
    }
}

fn describe_version(bytes: Option<&[u8]>) -> String {
    match bytes.map(<[u8; 4]>::try_from) {
        Some(Ok(array)) => u32::from_be_bytes(array).to_string(),
        Some(Err(_)) => "(unreadable)".to_owned(),
        None => "(none)".to_owned(),
    }
}

/// Serves flush requests in groups on a thread of its own.
///
/// Dropping it stops the thread and waits for it, so that the database is closed (and its
/// folder can be opened again) once the storage is dropped.
#[derive(Debug)]
struct GroupFlusher {
    requests: Option<mpsc::Sender<FlushWaiter>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type FlushWaiter = oneshot::Sender<Result<(), String>>;

impl GroupFlusher {
    fn start(db: sled::Db) -> std::io::Result<Self> {
        let (requests, incoming) = mpsc::channel::<FlushWaiter>();
        let thread = std::thread::Builder::new()
            .name("tigress-flusher".to_owned())
            .spawn(move || {
                // The loop ends when the storage, and with it every sender, is dropped.
                while let Ok(first) = incoming.recv() {
                    let mut waiters = vec![first];
                    waiters.extend(incoming.try_iter());
                    let started = Instant::now();
                    let outcome = db.flush().map(drop).map_err(|error| error.to_string());
                    tracing::trace!(
                        waiters = waiters.len(),
                        elapsed_us = started.elapsed().as_micros() as u64,
                        "flushed"
                    );
                    if let Err(error) = &outcome {
                        tracing::error!(%error, waiters = waiters.len(), "flush to disk failed");
                    }
                    for waiter in waiters {
                        // A waiter whose call was cancelled has gone away; nothing to tell it.
                        let _ = waiter.send(outcome.clone());
                    }
                }
            })?;
        Ok(Self {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Waits until everything written before the call is on disk.
    async fn flush(&self) -> StorageResult<()> {
        let (done, wait) = oneshot::channel();
        let stopped = || RelayError::Storage {
            op: "flush to disk",
            message: "the flusher thread stopped".to_owned(),
        };
        let requests = self.requests.as_ref().ok_or_else(stopped)?;
        requests.send(done).map_err(|_| stopped())?;
        wait.await
            .map_err(|_| stopped())?
            .map_err(|message| RelayError::Storage {
                op: "flush to disk",
                message,
            })
    }
}

impl Drop for GroupFlusher {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("flusher thread panicked");
            }
        }
    }
}

fn prekey_prefix(uuid: Uuid, kind: u8) -> Vec<u8> {
    [uuid.as_bytes().as_slice(), &[kind]].concat()
}

fn prekey_key(uuid: Uuid, kind: u8, key_id: u32) -> Vec<u8> {
    [uuid.as_bytes().as_slice(), &[kind], &key_id.to_be_bytes()].concat()
}

fn sent_key(source: Uuid, destination: Uuid, client_message_id: &[u8]) -> Vec<u8> {
    [
        source.as_bytes().as_slice(),
        destination.as_bytes(),
        client_message_id,
    ]
    .concat()
}

fn queue_key(owner: Uuid, envelope_id: u64) -> Vec<u8> {
    [owner.as_bytes().as_slice(), &envelope_id.to_be_bytes()].concat()
}

fn decode<T: Message + Default>(key: &str, bytes: &[u8]) -> StorageResult<T> {
    T::decode(bytes).map_err(|error| RelayError::CorruptRecord {
        key: key.to_owned(),
        message: error.to_string(),
    })
}

fn decode_u64(tree: &str, bytes: &[u8]) -> StorageResult<u64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| RelayError::CorruptRecord {
        key: tree.to_owned(),
        message: format!("expected 8 bytes, found {}", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}

fn printable(key: &[u8]) -> String {
    tigress_core::store::namespace::printable(key)
}

fn storage_error(op: &'static str) -> impl Fn(sled::Error) -> RelayError {
    move |error| RelayError::Storage {
        op,
        message: error.to_string(),
    }
}
