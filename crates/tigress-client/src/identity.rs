//! Identity verification: safety numbers of this device and a peer, and trusting a peer's new
//! identity key after it changed.
//!
//! Trust is trust-on-first-use: the first identity key seen for an address is trusted. A
//! different key later stops every share to and from that address with
//! [`ClientError::IdentityChanged`] until [`Device::trust`] accepts the new key, which the
//! person should do only after comparing safety numbers out of band.

use std::time::SystemTime;

use tigress_core::{DeviceAddress, Durability};

use crate::device::{Device, safety_number};
use crate::error::{ClientError, Result};

impl Device {
    /// Returns the safety number of this device and `peer`: 60 digits in twelve groups of five,
    /// the same on both devices. Without a known identity key for `peer`, fetches its bundle
    /// and opens a session with it, which the next share to it then uses.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotRegistered`], [`ClientError::UnknownAddress`],
    /// [`ClientError::IdentityChanged`], or a relay error.
    pub async fn verify(&self, peer: &DeviceAddress) -> Result<String> {
        let own = self.address()?;
        self.ensure_session(peer).await?;
        let txn = self.store.transaction();
        let own_key = *txn.local_identity()?.identity_key();
        let peer_key = txn
            .peer_identity(&peer.to_protocol_address())?
            .ok_or_else(|| ClientError::UnknownAddress {
                address: peer.to_string(),
            })?;
        safety_number(&own, &own_key, peer, &peer_key)
    }

    /// Accepts the identity key the relay now serves for `peer` in place of the one trusted
    /// before, drops the old session, opens a new one, and returns the new safety number.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotRegistered`], [`ClientError::UnknownAddress`], or a relay error.
    pub async fn trust(&self, peer: &DeviceAddress) -> Result<String> {
        let own = self.address()?;
        let bundle = self.relay().await?.bundle(peer).await?;
        let new_key = *bundle
            .identity_key()
            .map_err(|source| tigress_core::Error::Key {
                op: "read the bundle's identity key",
                source,
            })?;

        let txn = self.store.transaction();
        let protocol_address = peer.to_protocol_address();
        let previous = txn.peer_identity(&protocol_address)?;
        txn.remove_session(&protocol_address);
        txn.trust_peer_identity(&protocol_address, &new_key);
        txn.start_session(peer, &bundle, SystemTime::now(), &mut rand::rng())?;
        let own_key = *txn.local_identity()?.identity_key();
        txn.commit(Durability::Flushed)?;

        let changed = previous.is_some_and(|previous| previous != new_key);
        tracing::info!(peer = %peer, changed, "peer identity key trusted");
        safety_number(&own, &own_key, peer, &new_key)
    }
}
