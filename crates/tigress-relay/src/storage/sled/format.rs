//! The layout version of the data folder, and the migrations between versions.
//!
//! - Version 1: the first layout.
//! - Version 2: adds the `usage` tree (envelopes and bytes queued per mailbox, for quotas and
//!   metrics) and a storage time to each record of a client message id (for the sweeper).
//!
//! A migration runs when the folder is opened and writes the new version only at its end. A
//! migration cut short by a crash leaves the old version, and runs again from the start at the
//! next open; every step can run twice without harm.

use std::collections::HashMap;
use std::path::Path;

use uuid::Uuid;

use super::OpenError;
use super::keys::{sent_value, usage_value};
use crate::storage::MailboxUsage;

/// The layout version this code reads and writes.
pub const FORMAT_VERSION: u32 = 2;
const FORMAT_VERSION_KEY: &[u8] = b"format-version";

/// Writes the format version into a new folder, migrates an older one, or rejects one this code
/// cannot read.
pub(super) fn prepare(
    db: &sled::Db,
    path: &Path,
    existed: bool,
    now_ms: u64,
) -> Result<(), OpenError> {
    let sled_error = |source| OpenError::Sled {
        path: path.to_owned(),
        source,
    };
    let meta = db.open_tree("meta").map_err(sled_error)?;
    let stored = meta.get(FORMAT_VERSION_KEY).map_err(sled_error)?;
    let version = match stored.as_deref().map(<[u8; 4]>::try_from) {
        // Every folder records its version when it is made, so a database file without one
        // lost its records to sled's recovery of a truncated or overwritten file.
        None if existed => {
            return Err(OpenError::Damaged {
                path: path.to_owned(),
            });
        }
        None => {
            meta.insert(FORMAT_VERSION_KEY, &FORMAT_VERSION.to_be_bytes())
                .map_err(sled_error)?;
            return Ok(());
        }
        Some(Ok(bytes)) => u32::from_be_bytes(bytes),
        Some(Err(_)) => {
            return Err(OpenError::UnsupportedFormat {
                path: path.to_owned(),
                found: "(unreadable)".to_owned(),
                supported: FORMAT_VERSION,
            });
        }
    };
    match version {
        FORMAT_VERSION => Ok(()),
        1 => {
            tracing::info!(folder = %path.display(), "migrating the relay data folder from format 1 to 2");
            migrate_1_to_2(db, now_ms).map_err(sled_error)?;
            meta.insert(FORMAT_VERSION_KEY, &FORMAT_VERSION.to_be_bytes())
                .map_err(sled_error)?;
            db.flush().map_err(sled_error)?;
            tracing::info!(folder = %path.display(), "migration to format 2 finished");
            Ok(())
        }
        other => Err(OpenError::UnsupportedFormat {
            path: path.to_owned(),
            found: other.to_string(),
            supported: FORMAT_VERSION,
        }),
    }
}

/// Counts every mailbox's queue into the `usage` tree, and stamps records of client message ids
/// with `now_ms`, which starts their time to live at the migration.
fn migrate_1_to_2(db: &sled::Db, now_ms: u64) -> sled::Result<()> {
    let queue = db.open_tree("queue")?;
    let mut usage: HashMap<Uuid, MailboxUsage> = HashMap::new();
    for entry in queue.iter() {
        let (key, value) = entry?;
        let Some(owner) = key.get(..16).and_then(|bytes| Uuid::from_slice(bytes).ok()) else {
            continue;
        };
        let mailbox = usage.entry(owner).or_default();
        mailbox.envelopes += 1;
        mailbox.bytes += value.len() as u64;
    }
    let usage_tree = db.open_tree("usage")?;
    let mut batch = sled::Batch::default();
    for (owner, mailbox) in usage {
        batch.insert(owner.as_bytes().as_slice(), usage_value(mailbox).as_slice());
    }
    usage_tree.apply_batch(batch)?;

    let sent = db.open_tree("sent")?;
    let mut batch = sled::Batch::default();
    for entry in sent.iter() {
        let (key, value) = entry?;
        if let Ok(id) = <[u8; 8]>::try_from(value.as_ref()) {
            batch.insert(key, sent_value(u64::from_be_bytes(id), now_ms).as_slice());
        }
    }
    sent.apply_batch(batch)
}
