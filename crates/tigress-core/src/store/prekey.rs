//! One-time EC prekeys: the device keeps each private key until a PQXDH message uses it.

use async_trait::async_trait;
use libsignal_protocol::{PreKeyId, PreKeyRecord, PreKeyStore, SignalProtocolError};

use super::namespace::{self, PREKEY};
use super::{ProtocolView, Transaction};
use crate::error::{Result, StoreCallbackError};

impl Transaction<'_> {
    /// Reads the one-time EC prekey with `id`, if the device still has it.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) or [`Error::CorruptRecord`](crate::Error::CorruptRecord).
    pub fn prekey(&self, id: PreKeyId) -> Result<Option<PreKeyRecord>> {
        self.get_decoded(&prekey_key(id), PreKeyRecord::deserialize)
    }

    /// Stores a one-time EC prekey.
    ///
    /// # Errors
    ///
    /// [`Error::Key`](crate::Error::Key) when the record cannot be serialized.
    pub fn save_prekey(&self, record: &PreKeyRecord) -> Result<()> {
        let id = record.id().map_err(crate::Error::key("read a prekey id"))?;
        let bytes = record
            .serialize()
            .map_err(crate::Error::key("serialize a prekey"))?;
        self.insert(prekey_key(id), bytes);
        Ok(())
    }

    /// Counts the one-time EC prekeys the device has.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when sled fails to read.
    pub fn prekey_count(&self) -> Result<usize> {
        Ok(self.scan_prefix(PREKEY)?.len())
    }
}

fn prekey_key(id: PreKeyId) -> Vec<u8> {
    namespace::with_id(PREKEY, id.into())
}

#[async_trait(?Send)]
impl PreKeyStore for ProtocolView<'_, '_> {
    async fn get_pre_key(
        &self,
        prekey_id: PreKeyId,
    ) -> libsignal_protocol::error::Result<PreKeyRecord> {
        self.0
            .prekey(prekey_id)
            .map_err(|error| StoreCallbackError::wrap("get_pre_key", error))?
            .ok_or(SignalProtocolError::InvalidPreKeyId)
    }

    async fn save_pre_key(
        &mut self,
        _prekey_id: PreKeyId,
        record: &PreKeyRecord,
    ) -> libsignal_protocol::error::Result<()> {
        self.0
            .save_prekey(record)
            .map_err(|error| StoreCallbackError::wrap("save_pre_key", error))
    }

    async fn remove_pre_key(
        &mut self,
        prekey_id: PreKeyId,
    ) -> libsignal_protocol::error::Result<()> {
        self.0.remove(prekey_key(prekey_id));
        Ok(())
    }
}
