//! A bounded in-memory copy of recently read device records.
//!
//! Every authenticated call reads the caller's device record, and every send reads the
//! destination's too. In sled each read walks the tree and decodes the record. While a group
//! commit runs its transaction, it also waits on sled's global transaction lock. The cache keeps
//! both out of the hot path.
//!
//! A record leaves the cache when its device changes. A reader that misses fills the cache only if
//! no device changed since it looked, so a record read just before a change (a deleted device, for
//! one) never outlives that change in the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use uuid::Uuid;

use crate::storage::DeviceRecord;

/// Recently read device records, at most `capacity` of them.
#[derive(Debug)]
pub(super) struct DeviceCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<Uuid, Arc<DeviceRecord>>,
    /// Counts device changes, so that a reader can tell whether one happened during its read.
    changes: u64,
}

/// The outcome of a cache lookup.
#[derive(Debug)]
pub(super) enum Lookup {
    /// The record was in the cache.
    Hit(Arc<DeviceRecord>),
    /// The record was not in the cache. Pass the stamp to [`DeviceCache::fill`] after reading it.
    Miss(ChangeStamp),
}

/// The number of device changes seen when a lookup missed.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChangeStamp(u64);

impl DeviceCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(super) fn lookup(&self, uuid: Uuid) -> Lookup {
        let inner = self.lock();
        match inner.records.get(&uuid) {
            Some(record) => Lookup::Hit(record.clone()),
            None => Lookup::Miss(ChangeStamp(inner.changes)),
        }
    }

    /// Keeps `record`, read from sled after a lookup returned `stamp`, unless a device changed
    /// since. A full cache first drops one record, which is in effect a random one because the
    /// map's hasher is randomly seeded.
    pub(super) fn fill(&self, uuid: Uuid, record: Arc<DeviceRecord>, stamp: ChangeStamp) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        if inner.changes != stamp.0 {
            return;
        }
        if inner.records.len() >= self.capacity && !inner.records.contains_key(&uuid) {
            let victim = inner.records.keys().next().copied();
            if let Some(victim) = victim {
                inner.records.remove(&victim);
            }
        }
        inner.records.insert(uuid, record);
    }

    /// Drops the device's record. Call it after every change to the record in sled.
    pub(super) fn forget(&self, uuid: Uuid) {
        let mut inner = self.lock();
        inner.changes = inner.changes.wrapping_add(1);
        inner.records.remove(&uuid);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while the lock is held, and the map is consistent between any two
        // calls, so a poisoned lock can be reused.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(registration_id: u32) -> Arc<DeviceRecord> {
        Arc::new(DeviceRecord {
            registration_id,
            ..DeviceRecord::default()
        })
    }

    fn hit(cache: &DeviceCache, uuid: Uuid) -> Option<u32> {
        match cache.lookup(uuid) {
            Lookup::Hit(record) => Some(record.registration_id),
            Lookup::Miss(_) => None,
        }
    }

    fn stamp(cache: &DeviceCache, uuid: Uuid) -> ChangeStamp {
        match cache.lookup(uuid) {
            Lookup::Hit(_) => panic!("{uuid} is already cached"),
            Lookup::Miss(stamp) => stamp,
        }
    }

    #[test]
    fn filled_record_is_hit() {
        let cache = DeviceCache::new(4);
        let uuid = Uuid::new_v4();
        let seen = stamp(&cache, uuid);

        cache.fill(uuid, record(7), seen);

        assert_eq!(hit(&cache, uuid), Some(7));
    }

    #[test]
    fn forgotten_record_is_missed() {
        let cache = DeviceCache::new(4);
        let uuid = Uuid::new_v4();
        cache.fill(uuid, record(7), stamp(&cache, uuid));

        cache.forget(uuid);

        assert_eq!(hit(&cache, uuid), None);
    }

    #[test]
    fn read_before_change_is_not_kept() {
        let cache = DeviceCache::new(4);
        let uuid = Uuid::new_v4();
        let seen = stamp(&cache, uuid);

        // The device changes between the reader's lookup and its fill.
        cache.forget(uuid);
        cache.fill(uuid, record(7), seen);

        assert_eq!(hit(&cache, uuid), None);
    }

    #[test]
    fn full_cache_stays_at_capacity() {
        let cache = DeviceCache::new(3);
        let uuids: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();

        for (index, uuid) in uuids.iter().enumerate() {
            let seen = stamp(&cache, *uuid);
            cache.fill(*uuid, record(index as u32), seen);
        }

        let cached = uuids
            .iter()
            .filter(|uuid| hit(&cache, **uuid).is_some())
            .count();
        assert_eq!(cached, 3);
        assert_eq!(hit(&cache, uuids[9]), Some(9), "the newest record is kept");
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let cache = DeviceCache::new(0);
        let uuid = Uuid::new_v4();

        cache.fill(uuid, record(7), stamp(&cache, uuid));

        assert_eq!(hit(&cache, uuid), None);
    }
}
