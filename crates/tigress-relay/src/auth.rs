//! Bearer credentials: issued at registration, checked on every other call.
//!
//! A credential is `UUID:SECRET`, the device's UUID and 32 random bytes in unpadded base64url.
//! The relay stores only SHA-256 of the secret (a hash is enough because the secret is random,
//! so there is nothing to guess), and compares hashes in constant time. An unknown UUID is
//! compared against a fixed hash, so the time taken does not tell whether a device exists.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tigress_core::{DeviceAddress, PRIMARY_DEVICE_ID};
use tonic::metadata::MetadataMap;
use uuid::Uuid;

use crate::error::RelayError;
use crate::storage::{DeviceRecord, Storage};

/// Length of a credential's secret, in bytes.
const SECRET_LEN: usize = 32;

/// A freshly issued credential: the text for the device, and the hash for storage.
pub(crate) struct IssuedCredential {
    pub(crate) text: String,
    pub(crate) hash: Vec<u8>,
}

/// Draws a new credential for device `uuid`.
pub(crate) fn issue_credential(uuid: Uuid) -> IssuedCredential {
    let secret: [u8; SECRET_LEN] = rand::rng().random();
    IssuedCredential {
        text: format!("{}:{}", uuid.hyphenated(), URL_SAFE_NO_PAD.encode(secret)),
        hash: Sha256::digest(secret).to_vec(),
    }
}

/// The device a call was authenticated as.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) uuid: Uuid,
    pub(crate) record: Arc<DeviceRecord>,
}

impl Caller {
    /// Returns the caller's address, `UUID.1`.
    pub(crate) fn address(&self) -> DeviceAddress {
        DeviceAddress::primary(self.uuid)
    }

    /// Checks that the address in `field` is the caller's own.
    ///
    /// # Errors
    ///
    /// INVALID_ARGUMENT when it is malformed, PERMISSION_DENIED when it is another device's.
    pub(crate) fn check_own(&self, field: &'static str, address: &str) -> Result<(), RelayError> {
        let parsed = parse_address(field, address)?;
        if parsed != self.address() {
            return Err(RelayError::NotOwnDevice {
                field,
                address: parsed.to_string(),
            });
        }
        Ok(())
    }
}

/// Parses an address field.
///
/// # Errors
///
/// INVALID_ARGUMENT naming the field and the rule.
pub(crate) fn parse_address(
    field: &'static str,
    address: &str,
) -> Result<DeviceAddress, RelayError> {
    if address.is_empty() {
        return Err(RelayError::invalid(
            field,
            "is missing: expected UUID.DEVICE",
        ));
    }
    let parsed: DeviceAddress =
        address
            .parse()
            .map_err(|error: tigress_core::Error| match error {
                tigress_core::Error::InvalidAddress { rule, .. } => {
                    RelayError::invalid(field, format!("is invalid: {rule}"))
                }
                other => RelayError::invalid(field, other.to_string()),
            })?;
    if u8::from(parsed.device_id()) != PRIMARY_DEVICE_ID {
        let rule = format!(
            "is invalid: the device id must be {PRIMARY_DEVICE_ID}, the one device of every mailbox on this relay"
        );
        return Err(RelayError::invalid(field, rule));
    }
    Ok(parsed)
}

/// Authenticates a call from its `authorization` metadata.
///
/// # Errors
///
/// UNAUTHENTICATED when the credential is missing, malformed or wrong.
pub(crate) async fn authenticate(
    storage: &dyn Storage,
    metadata: &MetadataMap,
) -> Result<Caller, RelayError> {
    let header = metadata
        .get("authorization")
        .ok_or(RelayError::MissingCredential)?;
    let header = header
        .to_str()
        .map_err(|_| RelayError::MalformedCredential)?;
    let credential = header
        .strip_prefix("Bearer ")
        .ok_or(RelayError::MalformedCredential)?;
    let (uuid_text, secret_text) = credential
        .split_once(':')
        .ok_or(RelayError::MalformedCredential)?;
    let uuid = Uuid::try_parse(uuid_text).map_err(|_| RelayError::MalformedCredential)?;
    let secret = URL_SAFE_NO_PAD
        .decode(secret_text)
        .map_err(|_| RelayError::MalformedCredential)?;
    if secret.len() != SECRET_LEN {
        return Err(RelayError::MalformedCredential);
    }

    let presented = Sha256::digest(&secret);
    let record = storage.device(uuid).await?;
    let stored = record
        .as_ref()
        .map_or(&[0u8; 32][..], |record| record.credential_hash.as_slice());
    let matches: bool = presented.as_slice().ct_eq(stored).into();
    match record {
        Some(record) if matches => Ok(Caller { uuid, record }),
        _ => Err(RelayError::InvalidCredential),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_credential_hashes_its_secret() {
        let uuid = Uuid::new_v4();
        let credential = issue_credential(uuid);
        let (uuid_text, secret_text) = credential.text.split_once(':').unwrap();
        assert_eq!(uuid_text, uuid.hyphenated().to_string());
        let secret = URL_SAFE_NO_PAD.decode(secret_text).unwrap();
        assert_eq!(secret.len(), SECRET_LEN);
        assert_eq!(
            Sha256::digest(&secret).as_slice(),
            credential.hash.as_slice()
        );
    }

    #[test]
    fn address_field_errors_name_the_field() {
        let error = parse_address("destination", "").unwrap_err();
        assert_eq!(
            error.to_string(),
            "destination is missing: expected UUID.DEVICE"
        );
        let error = parse_address("destination", "nope").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("destination is invalid: expected UUID.DEVICE"),
            "{error}"
        );
    }
}
