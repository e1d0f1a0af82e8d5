//! Prekey generation: the keys a device publishes on the relay so that others can open a PQXDH
//! session with it while it is offline.
//!
//! Each function stores the private half in the transaction and returns the public half to
//! upload. Key ids count up from 1 per kind and wrap at 2^24, as Signal's do.

use std::time::{SystemTime, UNIX_EPOCH};

use libsignal_protocol::{
    GenericSignedPreKey, KeyPair, KyberPreKeyId, KyberPreKeyRecord, PreKeyId, PreKeyRecord,
    SignedPreKeyId, SignedPreKeyRecord, Timestamp, kem,
};
use rand::{CryptoRng, Rng};

use crate::error::{Error, Result};
use crate::store::Transaction;
use crate::store::namespace::{NEXT_KYBER_PREKEY_ID, NEXT_PREKEY_ID, NEXT_SIGNED_PREKEY_ID};

/// The Kyber parameter set of every Kyber prekey, the one libsignal's PQXDH uses.
pub const KYBER_KEY_TYPE: kem::KeyType = kem::KeyType::Kyber1024;

/// The largest prekey id: ids are 24-bit numbers, as in Signal.
pub const MAX_PREKEY_ID: u32 = 0xFF_FFFF;

/// The public half of a one-time EC prekey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicPreKey {
    /// Key id.
    pub id: u32,
    /// Serialized public key, 33 bytes.
    pub public_key: Vec<u8>,
}

/// The public half of a signed EC prekey or of a Kyber prekey, with the identity key's
/// signature over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicSignedKey {
    /// Key id.
    pub id: u32,
    /// Serialized public key: 33 bytes for EC, 1569 bytes for Kyber1024.
    pub public_key: Vec<u8>,
    /// XEdDSA signature by the identity key over `public_key`, 64 bytes.
    pub signature: Vec<u8>,
}

impl Transaction<'_> {
    /// Generates a signed EC prekey and stores it.
    ///
    /// # Errors
    ///
    /// [`Error::NoIdentity`] without an identity, [`Error::Key`] when signing fails.
    pub fn generate_signed_prekey<R: Rng + CryptoRng>(
        &self,
        now: SystemTime,
        rng: &mut R,
    ) -> Result<PublicSignedKey> {
        let identity = self.local_identity()?;
        let id = self.next_id(NEXT_SIGNED_PREKEY_ID)?;
        let key_pair = KeyPair::generate(rng);
        let public_key = key_pair.public_key.serialize().to_vec();
        let signature = identity
            .private_key()
            .calculate_signature(&public_key, rng)
            .map_err(|source| Error::Key {
                op: "sign a signed prekey",
                source: source.into(),
            })?
            .to_vec();

        let record = SignedPreKeyRecord::new(
            SignedPreKeyId::from(id),
            timestamp(now),
            &key_pair,
            &signature,
        );
        self.save_signed_prekey(&record)?;
        Ok(PublicSignedKey {
            id,
            public_key,
            signature,
        })
    }

    /// Generates the last-resort Kyber prekey and stores it.
    ///
    /// # Errors
    ///
    /// [`Error::NoIdentity`] without an identity, [`Error::Key`] when signing fails.
    pub fn generate_last_resort_kyber_prekey<R: Rng + CryptoRng>(
        &self,
        now: SystemTime,
        rng: &mut R,
    ) -> Result<PublicSignedKey> {
        self.generate_kyber_prekey(true, now, rng)
    }

    /// Generates `count` one-time Kyber prekeys and stores them.
    ///
    /// # Errors
    ///
    /// [`Error::NoIdentity`] without an identity, [`Error::Key`] when signing fails.
    pub fn generate_one_time_kyber_prekeys<R: Rng + CryptoRng>(
        &self,
        count: usize,
        now: SystemTime,
        rng: &mut R,
    ) -> Result<Vec<PublicSignedKey>> {
        (0..count)
            .map(|_| self.generate_kyber_prekey(false, now, rng))
            .collect()
    }

    /// Generates `count` one-time EC prekeys and stores them.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the id counter cannot be read.
    pub fn generate_one_time_prekeys<R: Rng + CryptoRng>(
        &self,
        count: usize,
        rng: &mut R,
    ) -> Result<Vec<PublicPreKey>> {
        let mut keys = Vec::with_capacity(count);
        for _ in 0..count {
            let id = self.next_id(NEXT_PREKEY_ID)?;
            let key_pair = KeyPair::generate(rng);
            self.save_prekey(&PreKeyRecord::new(PreKeyId::from(id), &key_pair))?;
            keys.push(PublicPreKey {
                id,
                public_key: key_pair.public_key.serialize().to_vec(),
            });
        }
        Ok(keys)
    }

    fn generate_kyber_prekey<R: Rng + CryptoRng>(
        &self,
        last_resort: bool,
        now: SystemTime,
        rng: &mut R,
    ) -> Result<PublicSignedKey> {
        let identity = self.local_identity()?;
        let id = self.next_id(NEXT_KYBER_PREKEY_ID)?;
        let key_pair = kem::KeyPair::generate(KYBER_KEY_TYPE, rng);
        let public_key = key_pair.public_key.serialize().to_vec();
        let signature = identity
            .private_key()
            .calculate_signature(&public_key, rng)
            .map_err(|source| Error::Key {
                op: "sign a Kyber prekey",
                source: source.into(),
            })?
            .to_vec();

        let record = KyberPreKeyRecord::new(
            KyberPreKeyId::from(id),
            timestamp(now),
            &key_pair,
            &signature,
        );
        self.save_kyber_prekey(&record, last_resort)?;
        Ok(PublicSignedKey {
            id,
            public_key,
            signature,
        })
    }

    /// Takes the next id from the counter under `counter_key`, wrapping after
    /// [`MAX_PREKEY_ID`] back to 1.
    fn next_id(&self, counter_key: &[u8]) -> Result<u32> {
        let id = self
            .get_decoded(counter_key, crate::store::decode_u32)?
            .unwrap_or(1);
        let following = if id >= MAX_PREKEY_ID { 1 } else { id + 1 };
        self.insert(counter_key.to_vec(), following.to_be_bytes().to_vec());
        Ok(id)
    }
}

fn timestamp(now: SystemTime) -> Timestamp {
    let millis = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    Timestamp::from_epoch_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}
