//! Kyber prekeys. A one-time Kyber prekey is deleted once a PQXDH message uses it. The
//! last-resort Kyber prekey stays, so it records every base key used with it and rejects a
//! repeat, which can only be a replayed PQXDH message.

use async_trait::async_trait;
use libsignal_protocol::{
    CiphertextMessageType, GenericSignedPreKey, KyberPreKeyId, KyberPreKeyRecord, KyberPreKeyStore,
    PublicKey, SignalProtocolError, SignedPreKeyId,
};

use super::namespace::{self, KYBER_BASE_KEY, KYBER_LAST_RESORT, KYBER_PREKEY};
use super::{ProtocolView, Transaction};
use crate::error::{Result, StoreCallbackError};

impl Transaction<'_> {
    /// Reads the Kyber prekey with `id`, if the device still has it.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) or [`Error::CorruptRecord`](crate::Error::CorruptRecord).
    pub fn kyber_prekey(&self, id: KyberPreKeyId) -> Result<Option<KyberPreKeyRecord>> {
        self.get_decoded(&kyber_prekey_key(id), KyberPreKeyRecord::deserialize)
    }

    /// Stores a one-time Kyber prekey, or with `last_resort` the last-resort Kyber prekey.
    ///
    /// # Errors
    ///
    /// [`Error::Key`](crate::Error::Key) when the record cannot be serialized.
    pub fn save_kyber_prekey(&self, record: &KyberPreKeyRecord, last_resort: bool) -> Result<()> {
        let id = record
            .id()
            .map_err(crate::Error::key("read a Kyber prekey id"))?;
        let bytes = record
            .serialize()
            .map_err(crate::Error::key("serialize a Kyber prekey"))?;
        self.insert(kyber_prekey_key(id), bytes);
        if last_resort {
            self.insert(namespace::with_id(KYBER_LAST_RESORT, id.into()), Vec::new());
        }
        Ok(())
    }

    /// Checks whether the Kyber prekey with `id` is a last-resort key.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when sled fails to read.
    pub fn is_last_resort_kyber_prekey(&self, id: KyberPreKeyId) -> Result<bool> {
        Ok(self
            .get(&namespace::with_id(KYBER_LAST_RESORT, id.into()))?
            .is_some())
    }

    fn mark_kyber_prekey_used(
        &self,
        kyber_prekey_id: KyberPreKeyId,
        signed_prekey_id: SignedPreKeyId,
        base_key: &PublicKey,
    ) -> std::result::Result<(), SignalProtocolError> {
        let last_resort = self
            .is_last_resort_kyber_prekey(kyber_prekey_id)
            .map_err(|error| StoreCallbackError::wrap("mark_kyber_pre_key_used", error))?;
        if !last_resort {
            self.remove(kyber_prekey_key(kyber_prekey_id));
            return Ok(());
        }

        let mut seen_key = namespace::with_id(KYBER_BASE_KEY, kyber_prekey_id.into());
        seen_key.extend_from_slice(&u32::from(signed_prekey_id).to_be_bytes());
        seen_key.extend_from_slice(&base_key.serialize());
        let seen = self
            .get(&seen_key)
            .map_err(|error| StoreCallbackError::wrap("mark_kyber_pre_key_used", error))?;
        if seen.is_some() {
            return Err(SignalProtocolError::InvalidMessage(
                CiphertextMessageType::PreKey,
                "reused base key",
            ));
        }
        self.insert(seen_key, Vec::new());
        Ok(())
    }
}

fn kyber_prekey_key(id: KyberPreKeyId) -> Vec<u8> {
    namespace::with_id(KYBER_PREKEY, id.into())
}

#[async_trait(?Send)]
impl KyberPreKeyStore for ProtocolView<'_, '_> {
    async fn get_kyber_pre_key(
        &self,
        kyber_prekey_id: KyberPreKeyId,
    ) -> libsignal_protocol::error::Result<KyberPreKeyRecord> {
        self.0
            .kyber_prekey(kyber_prekey_id)
            .map_err(|error| StoreCallbackError::wrap("get_kyber_pre_key", error))?
            .ok_or(SignalProtocolError::InvalidKyberPreKeyId)
    }

    async fn save_kyber_pre_key(
        &mut self,
        _kyber_prekey_id: KyberPreKeyId,
        record: &KyberPreKeyRecord,
    ) -> libsignal_protocol::error::Result<()> {
        self.0
            .save_kyber_prekey(record, false)
            .map_err(|error| StoreCallbackError::wrap("save_kyber_pre_key", error))
    }

    async fn mark_kyber_pre_key_used(
        &mut self,
        kyber_prekey_id: KyberPreKeyId,
        ec_prekey_id: SignedPreKeyId,
        base_key: &PublicKey,
    ) -> libsignal_protocol::error::Result<()> {
        self.0
            .mark_kyber_prekey_used(kyber_prekey_id, ec_prekey_id, base_key)
    }
}
