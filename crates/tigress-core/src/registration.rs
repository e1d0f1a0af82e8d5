//! The relay's registration request, built from a device store: the public halves of the keys
//! a new device presents, and the identity key's signature over the relay's challenge.

use std::time::SystemTime;

use rand::{CryptoRng, Rng};
use tigress_proto::relay::v1::{EcPreKey, KyberPreKey, RegisterDeviceRequest, SignedPreKey};

use crate::error::{Error, Result};
use crate::keys::registration_message;
use crate::prekeys::{PublicPreKey, PublicSignedKey};
use crate::store::Transaction;

impl From<PublicPreKey> for EcPreKey {
    fn from(key: PublicPreKey) -> Self {
        Self {
            key_id: key.id,
            public_key: key.public_key,
        }
    }
}

impl From<PublicSignedKey> for SignedPreKey {
    fn from(key: PublicSignedKey) -> Self {
        Self {
            key_id: key.id,
            public_key: key.public_key,
            signature: key.signature,
        }
    }
}

impl From<PublicSignedKey> for KyberPreKey {
    fn from(key: PublicSignedKey) -> Self {
        Self {
            key_id: key.id,
            public_key: key.public_key,
            signature: key.signature,
        }
    }
}

impl Transaction<'_> {
    /// Creates the identity, a signed prekey, the last-resort Kyber prekey and `one_time`
    /// one-time prekeys of each kind, and returns the registration request that presents
    /// them. Its challenge and signature stay empty until
    /// [`sign_registration`](Self::sign_registration).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Key`] when a key cannot be stored or signed.
    pub fn create_registration<R: Rng + CryptoRng>(
        &self,
        one_time: usize,
        now: SystemTime,
        rng: &mut R,
    ) -> Result<RegisterDeviceRequest> {
        let identity = self.create_identity(rng)?;
        let signed = self.generate_signed_prekey(now, rng)?;
        let last_resort = self.generate_last_resort_kyber_prekey(now, rng)?;
        let one_time_prekeys = self.generate_one_time_prekeys(one_time, rng)?;
        let one_time_kyber_prekeys = self.generate_one_time_kyber_prekeys(one_time, now, rng)?;

        Ok(RegisterDeviceRequest {
            identity_key: identity.identity_key().serialize().to_vec(),
            registration_id: self.local_registration_id()?,
            challenge: Vec::new(),
            challenge_signature: Vec::new(),
            signed_prekey: Some(signed.into()),
            kyber_last_resort_prekey: Some(last_resort.into()),
            one_time_prekeys: one_time_prekeys.into_iter().map(Into::into).collect(),
            one_time_kyber_prekeys: one_time_kyber_prekeys.into_iter().map(Into::into).collect(),
        })
    }

    /// Returns the identity key's signature over the registration message for `challenge`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] without an identity, or [`Error::Key`] when signing fails.
    pub fn sign_registration<R: Rng + CryptoRng>(
        &self,
        challenge: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        let identity = self.local_identity()?;
        let message = registration_message(challenge, &identity.identity_key().serialize());
        let signature = identity
            .private_key()
            .calculate_signature(&message, rng)
            .map_err(|source| Error::Key {
                op: "sign the registration challenge",
                source: source.into(),
            })?;
        Ok(signature.to_vec())
    }
}
