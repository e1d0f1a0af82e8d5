//! The durable device store: one sled tree holding a device's libsignal state (identity key,
//! prekeys, sessions, trusted peer identities) beside the application records that must change
//! atomically with it.
//!
//! Every change goes through a [`Transaction`]: reads see the committed state plus the
//! transaction's own writes, and [`Transaction::commit`] applies all writes atomically. A
//! decrypted message therefore advances the session, records the share and marks the envelope
//! processed together or not at all, which is what makes processing exactly once after a crash.
//! Only one transaction runs at a time per store; readers do not wait for it.
//!
//! A commit with [`Durability::Buffered`] stays in memory, merged with the other buffered
//! commits, until a commit with [`Durability::Flushed`] or [`Store::flush`] writes all of them
//! to sled in one atomic batch and waits for the disk. A session that sends or receives many
//! messages between two flushes is therefore written once, not once per message. A crash loses
//! only buffered commits, and always the newest ones first.
//!
//! Records are keyed by a namespace prefix (see [`namespace`]) followed by an id.

mod identity;
mod kyber_prekey;
pub mod namespace;
mod prekey;
mod session;
mod signed_prekey;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub(crate) use identity::decode_u32;

use libsignal_protocol::SessionRecord;

use crate::error::{Error, Result};

/// The sled tree that contains every record of the device.
const TREE_NAME: &[u8] = b"device";

/// How much of a commit must reach the disk before [`Transaction::commit`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Return once the commit is visible to every reader of the store. It reaches the disk with
    /// the next flushed commit or [`Store::flush`], when the store closes, or at a later commit
    /// once the buffered writes exceed [`MAX_BUFFERED_BYTES`] or [`MAX_BUFFERED_AGE`]. For
    /// state that can be rebuilt, such as a decrypted message that the relay will deliver again
    /// until it is acknowledged.
    Buffered,
    /// Return once this commit and every buffered one before it are on disk. For state that
    /// another party may act on, such as a session advanced by a message about to be sent.
    Flushed,
}

/// Buffered writes beyond which the next commit writes them out, in bytes of keys and values.
pub const MAX_BUFFERED_BYTES: usize = 4 * 1024 * 1024;

/// Age of the oldest buffered write beyond which the next commit writes them out. It matches
/// sled's own default flush interval.
pub const MAX_BUFFERED_AGE: Duration = Duration::from_millis(500);

/// A device's store in a folder of its own.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    writer: Mutex<()>,
    buffered: Mutex<Buffered>,
    /// Set when commits were written to sled and not yet flushed to disk.
    unflushed: AtomicBool,
    /// Decoded session records, by key, equal to their committed bytes. Only transactions read
    /// and change it, one at a time, so it never disagrees with the records.
    sessions: Mutex<HashMap<Vec<u8>, SessionRecord>>,
}

/// Commits made with [`Durability::Buffered`] and not yet written to sled: the newest value of
/// each key, or `None` for a removal.
#[derive(Debug, Default)]
struct Buffered {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
    oldest: Option<Instant>,
}

impl Buffered {
    fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.bytes += key.len() + value.as_ref().map_or(0, Vec::len);
        self.oldest.get_or_insert_with(Instant::now);
        self.writes.insert(key, value);
    }

    fn is_due(&self) -> bool {
        self.bytes > MAX_BUFFERED_BYTES
            || self
                .oldest
                .is_some_and(|oldest| oldest.elapsed() > MAX_BUFFERED_AGE)
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `path`, creating the folder if needed.
    ///
    /// # Errors
    ///
    /// [`Error::StoreLocked`] when another process has it open, [`Error::StoreOpen`] when sled
    /// cannot open or recover it.
    pub fn open(path: &Path) -> Result<Self> {
        let existed = database_file_exists(path);
        let db = open_db(path)?;
        let tree = db
            .open_tree(TREE_NAME)
            .map_err(|source| open_error(path, source))?;
        check_format_version(&tree, path, existed)?;
        Ok(Self {
            path: path.to_owned(),
            db,
            tree,
            writer: Mutex::new(()),
            buffered: Mutex::new(Buffered::default()),
            unflushed: AtomicBool::new(false),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// Returns the store's folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a transaction. It waits while another transaction of this store is open.
    pub fn transaction(&self) -> Transaction<'_> {
        // A poisoned lock only means another transaction panicked before committing: its writes
        // were never applied, so the store is consistent and the lock can be taken over.
        let guard = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Transaction {
            store: self,
            writes: RefCell::new(BTreeMap::new()),
            sessions: RefCell::new(HashMap::new()),
            _writer: guard,
        }
    }

    /// Reads one committed record.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when sled fails to read.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(buffered) = self.lock_buffered().writes.get(key) {
            return Ok(buffered.clone());
        }
        let value = self.tree.get(key).map_err(Error::store("read a record"))?;
        Ok(value.map(|bytes| bytes.to_vec()))
    }

    /// Reads every committed record whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when sled fails to read.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let buffered = self.lock_buffered();
        let stored = self
            .tree
            .scan_prefix(prefix)
            .map(|entry| {
                entry
                    .map(|(key, value)| (key.to_vec(), value.to_vec()))
                    .map_err(Error::store("scan records"))
            })
            .collect::<Result<BTreeMap<_, _>>>()?;
        Ok(overlay(stored, &buffered.writes, prefix))
    }

    /// Writes every committed change, buffered ones included, to disk.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when sled fails to apply the buffered commits or to flush.
    pub fn flush(&self) -> Result<()> {
        self.write_out(&mut self.lock_buffered())?;
        self.flush_written()
    }

    /// Waits until everything written to sled is on disk.
    fn flush_written(&self) -> Result<()> {
        if self.unflushed.swap(false, Ordering::AcqRel) {
            if let Err(error) = self.db.flush() {
                self.unflushed.store(true, Ordering::Release);
                return Err(Error::store("flush to disk")(error));
            }
        }
        Ok(())
    }

    /// Applies the buffered commits to sled in one atomic batch. The buffer is cleared only once
    /// sled has them, so that a failure never makes a reader see older state.
    fn write_out(&self, buffered: &mut Buffered) -> Result<()> {
        if buffered.writes.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (key, value) in &buffered.writes {
            match value {
                Some(value) => batch.insert(key.as_slice(), value.as_slice()),
                None => batch.remove(key.as_slice()),
            }
        }
        self.tree
            .apply_batch(batch)
            .map_err(Error::store("write buffered commits"))?;
        self.unflushed.store(true, Ordering::Release);
        *buffered = Buffered::default();
        Ok(())
    }

    fn lock_buffered(&self) -> MutexGuard<'_, Buffered> {
        // Every change to the buffer completes before its guard is dropped, so a poisoned lock
        // still guards a consistent buffer.
        self.buffered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_sessions(&self) -> MutexGuard<'_, HashMap<Vec<u8>, SessionRecord>> {
        // As for the buffer: no change to the cache can be left half done.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Store {
    /// Writes out the buffered commits; sled flushes them to disk as it closes.
    fn drop(&mut self) {
        let mut buffered = std::mem::take(&mut *self.lock_buffered());
        let pending = buffered.writes.len();
        if let Err(error) = self.write_out(&mut buffered) {
            tracing::error!(path = %self.path.display(), pending, %error, "buffered commits lost on close");
        }
    }
}

/// Applies `writes` (a value, or `None` for a removal) to the records of `base` whose key starts
/// with `prefix`, and returns them in key order.
fn overlay(
    mut base: BTreeMap<Vec<u8>, Vec<u8>>,
    writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    prefix: &[u8],
) -> Vec<(Vec<u8>, Vec<u8>)> {
    for (key, write) in writes.range(prefix.to_vec()..) {
        if !key.starts_with(prefix) {
            break;
        }
        match write {
            Some(value) => base.insert(key.clone(), value.clone()),
            None => base.remove(key),
        };
    }
    base.into_iter().collect()
}

/// Opens the sled database in `path`. A database closed a moment ago in this process can keep
/// its lock while sled's background threads finish, so a locked folder is tried again for up to
/// [`LOCK_WAIT`] before it counts as in use.
fn open_db(path: &Path) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(path)
            .open()
            .map_err(|source| open_error(path, source))
        {
            Err(Error::StoreLocked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// The layout version of the store this code reads and writes. A change to the layout of the
/// protocol records or of an application's records raises it, with a migration in
/// [`check_format_version`].
pub const FORMAT_VERSION: u32 = 1;

/// Writes the format version into a new store, or checks the one in an existing store.
/// Returns whether sled's database file is in `path` with some content, before it is opened.
fn database_file_exists(path: &Path) -> bool {
    std::fs::metadata(path.join("db")).is_ok_and(|metadata| metadata.len() > 0)
}

/// Checks the store's format version, recording it in a new store.
///
/// A store whose database file `existed` but contains no record at all is damaged: sled recovers
/// a truncated or overwritten file by dropping what it cannot read, which here was everything.
/// Treating it as new would make a device forget its identity without a word.
fn check_format_version(tree: &sled::Tree, path: &Path, existed: bool) -> Result<()> {
    let stored = tree
        .get(namespace::FORMAT_VERSION)
        .map_err(Error::store("read the format version"))?;
    let version = match stored.as_deref().map(<[u8; 4]>::try_from) {
        None if existed && tree.is_empty() => {
            return Err(Error::StoreDamaged {
                path: path.to_owned(),
            });
        }
        // Stores made before the version was recorded have the layout of version 1.
        None => {
            tree.insert(namespace::FORMAT_VERSION, &FORMAT_VERSION.to_be_bytes())
                .map_err(Error::store("write the format version"))?;
            return Ok(());
        }
        Some(Ok(bytes)) => u32::from_be_bytes(bytes),
        Some(Err(_)) => {
            return Err(Error::UnsupportedFormat {
                path: path.to_owned(),
                found: "(unreadable)".to_owned(),
                supported: FORMAT_VERSION,
            });
        }
    };
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedFormat {
            path: path.to_owned(),
            found: version.to_string(),
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

/// How long [`Store::open`] waits for a locked folder to become free.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

fn open_error(path: &Path, source: sled::Error) -> Error {
    let locked = matches!(&source, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock)
        || source.to_string().contains("could not acquire lock");
    if locked {
        Error::StoreLocked {
            path: path.to_owned(),
        }
    } else {
        Error::StoreOpen {
            path: path.to_owned(),
            source,
        }
    }
}

/// A set of reads and writes that commits atomically.
///
/// Dropping a transaction without [`commit`](Self::commit) discards its writes. The libsignal
/// store traits are implemented on `&Transaction` through interior mutability, because
/// libsignal's functions take the session store and the identity store as two separate mutable
/// references that here are one object.
pub struct Transaction<'s> {
    store: &'s Store,
    writes: RefCell<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    /// Decoded forms of the session records among `writes`.
    sessions: RefCell<HashMap<Vec<u8>, SessionRecord>>,
    _writer: MutexGuard<'s, ()>,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("store", &self.store.path)
            .field("pending_writes", &self.writes.borrow().len())
            .finish_non_exhaustive()
    }
}

impl Transaction<'_> {
    /// Reads a record, including this transaction's own writes.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when sled fails to read.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(pending) = self.writes.borrow().get(key) {
            return Ok(pending.clone());
        }
        self.store.get(key)
    }

    /// Writes a record when the transaction commits.
    pub fn insert(&self, key: Vec<u8>, value: Vec<u8>) {
        self.forget_decoded(&key);
        self.writes.borrow_mut().insert(key, Some(value));
    }

    /// Removes a record when the transaction commits.
    pub fn remove(&self, key: Vec<u8>) {
        self.forget_decoded(&key);
        self.writes.borrow_mut().insert(key, None);
    }

    /// Drops the decoded form of a session record that is about to be overwritten as bytes.
    fn forget_decoded(&self, key: &[u8]) {
        if key.starts_with(namespace::SESSION) {
            self.sessions.borrow_mut().remove(key);
        }
    }

    /// Reads every record whose key starts with `prefix`, including this transaction's own writes.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when sled fails to read.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let committed = self.store.scan_prefix(prefix)?.into_iter().collect();
        Ok(overlay(committed, &self.writes.borrow(), prefix))
    }

    /// Commits every write atomically, with the given durability.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when sled fails to apply or flush the commits. The commit is then visible
    /// to readers, as a buffered one is, but may be lost on a crash.
    pub fn commit(self, durability: Durability) -> Result<()> {
        let writes = self.writes.into_inner();
        self.store
            .update_session_cache(&writes, self.sessions.into_inner());

        let mut buffered = self.store.lock_buffered();
        for (key, value) in writes {
            buffered.insert(key, value);
        }
        if durability == Durability::Flushed || buffered.is_due() {
            self.store.write_out(&mut buffered)?;
        }
        drop(buffered);

        if durability == Durability::Flushed {
            self.store.flush_written()?;
        }
        Ok(())
    }

    /// Reads a record and decodes it with `decode`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when sled fails to read, [`Error::CorruptRecord`] naming the key when
    /// `decode` fails.
    pub fn get_decoded<T, E: std::fmt::Display>(
        &self,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> std::result::Result<T, E>,
    ) -> Result<Option<T>> {
        let Some(bytes) = self.get(key)? else {
            return Ok(None);
        };
        decode(&bytes)
            .map(Some)
            .map_err(|error| Error::CorruptRecord {
                key: namespace::printable(key),
                reason: error.to_string(),
            })
    }
}

/// A transaction seen through libsignal's store traits.
///
/// libsignal's functions take the session store, the identity store and the prekey stores as
/// separate `&mut` references. Several copies of this view of one transaction fill them.
#[derive(Clone, Copy)]
pub(crate) struct ProtocolView<'t, 's>(pub(crate) &'t Transaction<'s>);

#[cfg(test)]
mod tests;
