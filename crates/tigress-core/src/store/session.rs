//! Double Ratchet sessions with peers, one record per peer address.
//!
//! Every message reads and rewrites its session, so the store keeps each session decoded beside
//! its bytes: a message then costs one encoding of the record, not a decoding as well.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use async_trait::async_trait;
use libsignal_protocol::{
    ProtocolAddress, SessionRecord, SessionStore, SessionUsabilityRequirements,
};

use super::namespace::{self, SESSION};
use super::{ProtocolView, Store, Transaction};
use crate::error::{Result, StoreCallbackError};

impl Transaction<'_> {
    /// Reads the session with `address`, if there is one.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) or [`Error::CorruptRecord`](crate::Error::CorruptRecord).
    pub fn session(&self, address: &ProtocolAddress) -> Result<Option<SessionRecord>> {
        let key = session_key(address);
        if let Some(record) = self.sessions.borrow().get(&key) {
            return Ok(Some(record.clone()));
        }
        if self.writes.borrow().contains_key(&key) {
            return self.get_decoded(&key, SessionRecord::deserialize);
        }
        if let Some(record) = self.store.lock_sessions().get(&key) {
            return Ok(Some(record.clone()));
        }

        let record = self.get_decoded(&key, SessionRecord::deserialize)?;
        if let Some(record) = &record {
            self.store.lock_sessions().insert(key, record.clone());
        }
        Ok(record)
    }

    /// Checks whether there is a session with `address` that can encrypt: one set up with PQXDH
    /// and not stale.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) or [`Error::CorruptRecord`](crate::Error::CorruptRecord).
    pub fn has_usable_session(&self, address: &ProtocolAddress, now: SystemTime) -> Result<bool> {
        let Some(record) = self.session(address)? else {
            return Ok(false);
        };
        record
            .has_usable_sender_chain(
                now,
                SessionUsabilityRequirements::NotStale
                    | SessionUsabilityRequirements::EstablishedWithPqxdh,
            )
            .map_err(crate::Error::key("check a session"))
    }

    /// Removes the session with `address`, so that the next message needs a new bundle.
    pub fn remove_session(&self, address: &ProtocolAddress) {
        self.remove(session_key(address));
    }

    pub(crate) fn save_session(
        &self,
        address: &ProtocolAddress,
        record: &SessionRecord,
    ) -> Result<()> {
        let bytes = record
            .serialize()
            .map_err(crate::Error::key("serialize a session"))?;
        let key = session_key(address);
        self.insert(key.clone(), bytes);
        self.sessions.borrow_mut().insert(key, record.clone());
        Ok(())
    }
}

impl Store {
    /// Brings the decoded sessions in line with a commit's `writes`. `decoded` contains the
    /// records the transaction saved, and any other written session key leaves the cache.
    pub(super) fn update_session_cache(
        &self,
        writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
        mut decoded: HashMap<Vec<u8>, SessionRecord>,
    ) {
        let mut cache = self.lock_sessions();
        for key in writes.keys().filter(|key| key.starts_with(SESSION)) {
            match decoded.remove(key) {
                Some(record) => cache.insert(key.clone(), record),
                None => cache.remove(key),
            };
        }
    }
}

fn session_key(address: &ProtocolAddress) -> Vec<u8> {
    namespace::with_bytes(SESSION, address.to_string().as_bytes())
}

#[async_trait(?Send)]
impl SessionStore for ProtocolView<'_, '_> {
    async fn load_session(
        &self,
        address: &ProtocolAddress,
    ) -> libsignal_protocol::error::Result<Option<SessionRecord>> {
        self.0
            .session(address)
            .map_err(|error| StoreCallbackError::wrap("load_session", error))
    }

    async fn store_session(
        &mut self,
        address: &ProtocolAddress,
        record: &SessionRecord,
    ) -> libsignal_protocol::error::Result<()> {
        self.0
            .save_session(address, record)
            .map_err(|error| StoreCallbackError::wrap("store_session", error))
    }
}
