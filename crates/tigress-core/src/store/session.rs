//! Double Ratchet sessions with peers, one record per peer address.

use std::time::SystemTime;

use async_trait::async_trait;
use libsignal_protocol::{
    ProtocolAddress, SessionRecord, SessionStore, SessionUsabilityRequirements,
};

use super::namespace::{self, SESSION};
use super::{ProtocolView, Transaction};
use crate::error::{Result, StoreCallbackError};

impl Transaction<'_> {
    /// Reads the session with `address`, if there is one.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) or [`Error::CorruptRecord`](crate::Error::CorruptRecord).
    pub fn session(&self, address: &ProtocolAddress) -> Result<Option<SessionRecord>> {
        self.get_decoded(&session_key(address), SessionRecord::deserialize)
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

    fn save_session(&self, address: &ProtocolAddress, record: &SessionRecord) -> Result<()> {
        let bytes = record
            .serialize()
            .map_err(crate::Error::key("serialize a session"))?;
        self.insert(session_key(address), bytes);
        Ok(())
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
