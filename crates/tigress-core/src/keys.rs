//! Decoding and checking of public key material that arrives from the network: identity keys,
//! prekeys, signatures and prekey bundles.
//!
//! The relay uses these checks on uploads, the client on bundles it fetches. None of them touch
//! a store or hold a secret.

use libsignal_protocol::{
    DeviceId, IdentityKey, KyberPreKeyId, PreKeyBundle, PreKeyId, PublicKey, SignedPreKeyId, kem,
};

use crate::address::DeviceAddress;
use crate::error::{Error, Result};
use crate::prekeys::{KYBER_KEY_TYPE, MAX_PREKEY_ID};

/// Length of a serialized identity key or EC public key: the type byte 0x05 and 32 key bytes.
pub const EC_PUBLIC_KEY_LEN: usize = 33;
/// Length of a serialized Kyber1024 public key: the type byte 0x08 and 1568 key bytes.
pub const KYBER_PUBLIC_KEY_LEN: usize = 1569;
/// Length of an XEdDSA signature.
pub const SIGNATURE_LEN: usize = 64;
/// The type byte of a Curve25519 key in libsignal's encoding.
const EC_KEY_TYPE_BYTE: u8 = 0x05;
/// The type byte of a Kyber1024 key in libsignal's encoding.
const KYBER_KEY_TYPE_BYTE: u8 = 0x08;

/// The largest registration id: libsignal clients draw it from 1 to 16380 (14 bits, less a few
/// values Signal reserves).
pub const MAX_REGISTRATION_ID: u32 = 16380;

/// The label a registering device signs before the challenge and its identity key, to prove
/// that it has the private identity key. The label keeps this signature from being valid anywhere
/// else the identity key signs.
pub const REGISTRATION_SIGNATURE_LABEL: &[u8] = b"tigress.relay.v1.register";

/// The reason a piece of key material was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Wrong length.
    #[error("must be {expected} bytes, got {actual}")]
    Length {
        /// The required length.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// Wrong key type byte.
    #[error("must start with key type byte {expected:#04x}, got {actual:#04x}")]
    KeyType {
        /// The required type byte.
        expected: u8,
        /// The type byte received.
        actual: u8,
    },
    /// The bytes do not decode as a key of the type.
    #[error("is not a valid {kind} public key")]
    Malformed {
        /// The kind of key, such as "Curve25519".
        kind: &'static str,
    },
    /// The signature does not verify with the identity key.
    #[error("signature does not verify with the identity key")]
    BadSignature,
    /// An id is out of range.
    #[error("{id} is out of range {min} to {max}")]
    IdOutOfRange {
        /// The id received.
        id: u32,
        /// The smallest valid id.
        min: u32,
        /// The largest valid id.
        max: u32,
    },
}

/// Decodes a serialized identity key.
///
/// # Errors
///
/// [`KeyError`] naming the broken rule.
pub fn decode_identity_key(bytes: &[u8]) -> Result<IdentityKey, KeyError> {
    decode_ec_public_key(bytes).map(IdentityKey::new)
}

/// Decodes a serialized Curve25519 public key.
///
/// # Errors
///
/// [`KeyError`] naming the broken rule.
pub fn decode_ec_public_key(bytes: &[u8]) -> Result<PublicKey, KeyError> {
    check_length(bytes, EC_PUBLIC_KEY_LEN)?;
    check_type_byte(bytes, EC_KEY_TYPE_BYTE)?;
    PublicKey::deserialize(bytes).map_err(|_| KeyError::Malformed { kind: "Curve25519" })
}

/// Decodes a serialized Kyber1024 public key.
///
/// # Errors
///
/// [`KeyError`] naming the broken rule.
pub fn decode_kyber_public_key(bytes: &[u8]) -> Result<kem::PublicKey, KeyError> {
    check_length(bytes, KYBER_PUBLIC_KEY_LEN)?;
    check_type_byte(bytes, KYBER_KEY_TYPE_BYTE)?;
    let key = kem::PublicKey::deserialize(bytes)
        .map_err(|_| KeyError::Malformed { kind: "Kyber1024" })?;
    if key.key_type() != KYBER_KEY_TYPE {
        return Err(KeyError::Malformed { kind: "Kyber1024" });
    }
    Ok(key)
}

/// Checks that `signature` is the identity key's XEdDSA signature over `message`.
///
/// # Errors
///
/// [`KeyError::Length`] for a signature of the wrong size, [`KeyError::BadSignature`] when it
/// does not verify.
pub fn verify_signature(
    identity: &IdentityKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), KeyError> {
    check_length(signature, SIGNATURE_LEN)?;
    if identity.public_key().verify_signature(message, signature) {
        Ok(())
    } else {
        Err(KeyError::BadSignature)
    }
}

/// Checks that a prekey id fits in 24 bits.
///
/// # Errors
///
/// [`KeyError::IdOutOfRange`] above [`MAX_PREKEY_ID`].
pub fn check_prekey_id(id: u32) -> Result<u32, KeyError> {
    if id > MAX_PREKEY_ID {
        return Err(KeyError::IdOutOfRange {
            id,
            min: 0,
            max: MAX_PREKEY_ID,
        });
    }
    Ok(id)
}

/// Checks that a registration id is in `1..=MAX_REGISTRATION_ID`.
///
/// # Errors
///
/// [`KeyError::IdOutOfRange`] otherwise.
pub fn check_registration_id(id: u32) -> Result<u32, KeyError> {
    if id == 0 || id > MAX_REGISTRATION_ID {
        return Err(KeyError::IdOutOfRange {
            id,
            min: 1,
            max: MAX_REGISTRATION_ID,
        });
    }
    Ok(id)
}

/// Builds the message a registering device signs: [`REGISTRATION_SIGNATURE_LABEL`], the relay's
/// challenge, then the serialized identity key.
pub fn registration_message(challenge: &[u8], identity_key: &[u8]) -> Vec<u8> {
    [REGISTRATION_SIGNATURE_LABEL, challenge, identity_key].concat()
}

fn check_length(bytes: &[u8], expected: usize) -> Result<(), KeyError> {
    if bytes.len() != expected {
        return Err(KeyError::Length {
            expected,
            actual: bytes.len(),
        });
    }
    Ok(())
}

fn check_type_byte(bytes: &[u8], expected: u8) -> Result<(), KeyError> {
    match bytes.first() {
        Some(&actual) if actual != expected => Err(KeyError::KeyType { expected, actual }),
        _ => Ok(()),
    }
}

/// A prekey bundle as fetched from the relay, before checking.
#[derive(Clone, Debug, Default)]
pub struct BundleParts {
    /// The peer's registration id.
    pub registration_id: u32,
    /// The peer's identity key.
    pub identity_key: Vec<u8>,
    /// Signed EC prekey id, public key and signature.
    pub signed_prekey: (u32, Vec<u8>, Vec<u8>),
    /// One-time EC prekey id and public key, when the relay had one left.
    pub one_time_prekey: Option<(u32, Vec<u8>)>,
    /// Kyber prekey id, public key and signature.
    pub kyber_prekey: (u32, Vec<u8>, Vec<u8>),
}

impl BundleParts {
    /// Decodes every key and checks both prekey signatures against the identity key.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBundle`] naming the field and the rule it breaks.
    pub fn into_bundle(self, address: &DeviceAddress) -> Result<PreKeyBundle> {
        let invalid = |field: &'static str| {
            let address = address.to_string();
            move |source: KeyError| Error::InvalidBundle {
                address,
                field,
                source,
            }
        };
        let identity = decode_identity_key(&self.identity_key).map_err(invalid("identity_key"))?;

        let (signed_id, signed_public, signed_signature) = self.signed_prekey;
        let signed_public_key =
            decode_ec_public_key(&signed_public).map_err(invalid("signed_prekey.public_key"))?;
        verify_signature(&identity, &signed_public, &signed_signature)
            .map_err(invalid("signed_prekey.signature"))?;

        let (kyber_id, kyber_public, kyber_signature) = self.kyber_prekey;
        let kyber_public_key =
            decode_kyber_public_key(&kyber_public).map_err(invalid("kyber_prekey.public_key"))?;
        verify_signature(&identity, &kyber_public, &kyber_signature)
            .map_err(invalid("kyber_prekey.signature"))?;

        let one_time = match self.one_time_prekey {
            Some((id, public)) => {
                let key =
                    decode_ec_public_key(&public).map_err(invalid("one_time_prekey.public_key"))?;
                Some((PreKeyId::from(id), key))
            }
            None => None,
        };

        let device_id: DeviceId = address.device_id();
        PreKeyBundle::new(
            self.registration_id,
            device_id,
            one_time,
            SignedPreKeyId::from(signed_id),
            signed_public_key,
            signed_signature,
            KyberPreKeyId::from(kyber_id),
            kyber_public_key,
            kyber_signature,
            identity,
        )
        .map_err(|source| Error::Protocol {
            address: address.to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_key_rejects_wrong_length_and_type() {
        assert_eq!(
            decode_ec_public_key(&[5; 12]).unwrap_err(),
            KeyError::Length {
                expected: 33,
                actual: 12
            }
        );
        let mut wrong_type = [0u8; 33];
        wrong_type[0] = 0x08;
        assert_eq!(
            decode_ec_public_key(&wrong_type).unwrap_err(),
            KeyError::KeyType {
                expected: 0x05,
                actual: 0x08
            }
        );
    }

    #[test]
    fn kyber_key_rejects_wrong_length() {
        assert_eq!(
            decode_kyber_public_key(&[8; 100]).err().unwrap(),
            KeyError::Length {
                expected: 1569,
                actual: 100
            }
        );
    }

    #[test]
    fn prekey_id_above_24_bits_is_rejected() {
        assert!(check_prekey_id(0xFF_FFFF).is_ok());
        assert_eq!(
            check_prekey_id(0x100_0000).unwrap_err(),
            KeyError::IdOutOfRange {
                id: 0x100_0000,
                min: 0,
                max: 0xFF_FFFF
            }
        );
    }
}
