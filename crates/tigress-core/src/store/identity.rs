//! The device's own identity and the identity keys it trusts for its peers.
//!
//! Trust is trust-on-first-use: the first identity key seen for an address is trusted, and a
//! different key for the same address is rejected, in both directions, until the application
//! trusts it explicitly with [`Transaction::trust_peer_identity`].

use async_trait::async_trait;
use libsignal_protocol::{
    Direction, IdentityChange, IdentityKey, IdentityKeyPair, IdentityKeyStore, ProtocolAddress,
};
use rand::{CryptoRng, Rng};

use super::namespace::{self, LOCAL_IDENTITY, LOCAL_REGISTRATION_ID, PEER_IDENTITY};
use super::{ProtocolView, Transaction};
use crate::error::{Error, Result, StoreCallbackError};
use crate::keys::MAX_REGISTRATION_ID;

impl Transaction<'_> {
    /// Creates the device's identity key pair and registration id.
    ///
    /// # Errors
    ///
    /// [`Error::IdentityExists`] when the store already has an identity.
    pub fn create_identity<R: Rng + CryptoRng>(&self, rng: &mut R) -> Result<IdentityKeyPair> {
        if self.get(LOCAL_IDENTITY)?.is_some() {
            return Err(Error::IdentityExists);
        }
        let identity = IdentityKeyPair::generate(rng);
        let registration_id = rng.random_range(1..=MAX_REGISTRATION_ID);
        self.insert(LOCAL_IDENTITY.to_vec(), identity.serialize().to_vec());
        self.insert(
            LOCAL_REGISTRATION_ID.to_vec(),
            registration_id.to_be_bytes().to_vec(),
        );
        Ok(identity)
    }

    /// Checks whether the device has an identity key pair.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when sled fails to read.
    pub fn has_identity(&self) -> Result<bool> {
        Ok(self.get(LOCAL_IDENTITY)?.is_some())
    }

    /// Reads the device's identity key pair.
    ///
    /// # Errors
    ///
    /// [`Error::NoIdentity`] before [`create_identity`](Self::create_identity), or
    /// [`Error::CorruptRecord`].
    pub fn local_identity(&self) -> Result<IdentityKeyPair> {
        self.get_decoded(LOCAL_IDENTITY, |bytes| IdentityKeyPair::try_from(bytes))?
            .ok_or(Error::NoIdentity)
    }

    /// Reads the device's registration id.
    ///
    /// # Errors
    ///
    /// [`Error::NoIdentity`] before [`create_identity`](Self::create_identity), or
    /// [`Error::CorruptRecord`].
    pub fn local_registration_id(&self) -> Result<u32> {
        self.get_decoded(LOCAL_REGISTRATION_ID, decode_u32)?
            .ok_or(Error::NoIdentity)
    }

    /// Reads the identity key trusted for `address`, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::CorruptRecord`].
    pub fn peer_identity(&self, address: &ProtocolAddress) -> Result<Option<IdentityKey>> {
        self.get_decoded(&peer_identity_key(address), IdentityKey::decode)
    }

    /// Trusts `identity` for `address`, replacing any key trusted before.
    pub fn trust_peer_identity(&self, address: &ProtocolAddress, identity: &IdentityKey) {
        self.insert(peer_identity_key(address), identity.serialize().to_vec());
    }
}

fn peer_identity_key(address: &ProtocolAddress) -> Vec<u8> {
    namespace::with_bytes(PEER_IDENTITY, address.to_string().as_bytes())
}

/// Decodes a big-endian `u32` record.
pub(crate) fn decode_u32(bytes: &[u8]) -> std::result::Result<u32, String> {
    let array: [u8; 4] = bytes
        .try_into()
        .map_err(|_| format!("expected 4 bytes, found {}", bytes.len()))?;
    Ok(u32::from_be_bytes(array))
}

#[async_trait(?Send)]
impl IdentityKeyStore for ProtocolView<'_, '_> {
    async fn get_identity_key_pair(&self) -> libsignal_protocol::error::Result<IdentityKeyPair> {
        self.0
            .local_identity()
            .map_err(|error| StoreCallbackError::wrap("get_identity_key_pair", error))
    }

    async fn get_local_registration_id(&self) -> libsignal_protocol::error::Result<u32> {
        self.0
            .local_registration_id()
            .map_err(|error| StoreCallbackError::wrap("get_local_registration_id", error))
    }

    async fn save_identity(
        &mut self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
    ) -> libsignal_protocol::error::Result<IdentityChange> {
        let known = self
            .0
            .peer_identity(address)
            .map_err(|error| StoreCallbackError::wrap("save_identity", error))?;
        if known.as_ref() == Some(identity) {
            return Ok(IdentityChange::NewOrUnchanged);
        }
        self.0.trust_peer_identity(address, identity);
        Ok(IdentityChange::from_changed(known.is_some()))
    }

    async fn is_trusted_identity(
        &self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
        _direction: Direction,
    ) -> libsignal_protocol::error::Result<bool> {
        let known = self
            .0
            .peer_identity(address)
            .map_err(|error| StoreCallbackError::wrap("is_trusted_identity", error))?;
        Ok(known.is_none_or(|known| &known == identity))
    }

    async fn get_identity(
        &self,
        address: &ProtocolAddress,
    ) -> libsignal_protocol::error::Result<Option<IdentityKey>> {
        self.0
            .peer_identity(address)
            .map_err(|error| StoreCallbackError::wrap("get_identity", error))
    }
}
