//! Signed EC prekeys: medium-term keys signed by the identity key. Old ones are kept so that a
//! PQXDH message built from a bundle fetched before a rotation still decrypts.

use async_trait::async_trait;
use libsignal_protocol::{
    GenericSignedPreKey, SignalProtocolError, SignedPreKeyId, SignedPreKeyRecord, SignedPreKeyStore,
};

use super::namespace::{self, SIGNED_PREKEY};
use super::{ProtocolView, Transaction};
use crate::error::{Result, StoreCallbackError};

impl Transaction<'_> {
    /// Reads the signed EC prekey with `id`, if the device still has it.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) or [`Error::CorruptRecord`](crate::Error::CorruptRecord).
    pub fn signed_prekey(&self, id: SignedPreKeyId) -> Result<Option<SignedPreKeyRecord>> {
        self.get_decoded(&signed_prekey_key(id), SignedPreKeyRecord::deserialize)
    }

    /// Stores a signed EC prekey.
    ///
    /// # Errors
    ///
    /// [`Error::Key`](crate::Error::Key) when the record cannot be serialized.
    pub fn save_signed_prekey(&self, record: &SignedPreKeyRecord) -> Result<()> {
        let id = record
            .id()
            .map_err(crate::Error::key("read a signed prekey id"))?;
        let bytes = record
            .serialize()
            .map_err(crate::Error::key("serialize a signed prekey"))?;
        self.insert(signed_prekey_key(id), bytes);
        Ok(())
    }
}

fn signed_prekey_key(id: SignedPreKeyId) -> Vec<u8> {
    namespace::with_id(SIGNED_PREKEY, id.into())
}

#[async_trait(?Send)]
impl SignedPreKeyStore for ProtocolView<'_, '_> {
    async fn get_signed_pre_key(
        &self,
        signed_prekey_id: SignedPreKeyId,
    ) -> libsignal_protocol::error::Result<SignedPreKeyRecord> {
        self.0
            .signed_prekey(signed_prekey_id)
            .map_err(|error| StoreCallbackError::wrap("get_signed_pre_key", error))?
            .ok_or(SignalProtocolError::InvalidSignedPreKeyId)
    }

    async fn save_signed_pre_key(
        &mut self,
        _signed_prekey_id: SignedPreKeyId,
        record: &SignedPreKeyRecord,
    ) -> libsignal_protocol::error::Result<()> {
        self.0
            .save_signed_prekey(record)
            .map_err(|error| StoreCallbackError::wrap("save_signed_pre_key", error))
    }
}
