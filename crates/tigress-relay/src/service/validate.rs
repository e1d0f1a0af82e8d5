//! Checks of prekeys in registration and upload requests. Each failure names the request field,
//! with its index in a list, and the rule it breaks.

use std::collections::HashSet;

use tigress_core::keys::{
    check_prekey_id, decode_ec_public_key, decode_kyber_public_key, verify_signature,
};
use tigress_core::libsignal_protocol::IdentityKey;
use tigress_proto::relay::v1::{EcPreKey, KyberPreKey, SignedPreKey};

use crate::error::RelayError;

/// Checks a signed EC prekey and its signature by `identity`.
pub(crate) fn signed_prekey(
    field: &str,
    key: Option<&SignedPreKey>,
    identity: &IdentityKey,
) -> Result<SignedPreKey, RelayError> {
    let key = key.ok_or_else(|| RelayError::invalid(field, "is missing"))?;
    check_prekey_id(key.key_id).map_err(RelayError::invalid_key(format!("{field}.key_id")))?;
    decode_ec_public_key(&key.public_key)
        .map_err(RelayError::invalid_key(format!("{field}.public_key")))?;
    verify_signature(identity, &key.public_key, &key.signature)
        .map_err(RelayError::invalid_key(format!("{field}.signature")))?;
    Ok(key.clone())
}

/// Checks a Kyber prekey and its signature by `identity`.
pub(crate) fn kyber_prekey(
    field: &str,
    key: Option<&KyberPreKey>,
    identity: &IdentityKey,
) -> Result<KyberPreKey, RelayError> {
    let key = key.ok_or_else(|| RelayError::invalid(field, "is missing"))?;
    check_prekey_id(key.key_id).map_err(RelayError::invalid_key(format!("{field}.key_id")))?;
    decode_kyber_public_key(&key.public_key)
        .map_err(RelayError::invalid_key(format!("{field}.public_key")))?;
    verify_signature(identity, &key.public_key, &key.signature)
        .map_err(RelayError::invalid_key(format!("{field}.signature")))?;
    Ok(key.clone())
}

/// Checks a list of one-time EC prekeys: at most `max`, valid keys, no repeated id.
pub(crate) fn one_time_prekeys(
    field: &str,
    keys: &[EcPreKey],
    max: usize,
) -> Result<(), RelayError> {
    check_count(field, keys.len(), max)?;
    let mut ids = HashSet::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let item = format!("{field}[{index}]");
        check_prekey_id(key.key_id).map_err(RelayError::invalid_key(format!("{item}.key_id")))?;
        check_unique(&item, key.key_id, &mut ids)?;
        decode_ec_public_key(&key.public_key)
            .map_err(RelayError::invalid_key(format!("{item}.public_key")))?;
    }
    Ok(())
}

/// Checks a list of one-time Kyber prekeys: at most `max`, valid keys signed by `identity`, no
/// repeated id.
pub(crate) fn one_time_kyber_prekeys(
    field: &str,
    keys: &[KyberPreKey],
    max: usize,
    identity: &IdentityKey,
) -> Result<(), RelayError> {
    check_count(field, keys.len(), max)?;
    let mut ids = HashSet::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let item = format!("{field}[{index}]");
        check_unique(&item, key.key_id, &mut ids)?;
        kyber_prekey(&item, Some(key), identity)?;
    }
    Ok(())
}

fn check_count(field: &str, count: usize, max: usize) -> Result<(), RelayError> {
    if count > max {
        return Err(RelayError::LimitExceeded {
            subject: format!("{field} with {count} keys"),
            limit: max as u64,
            name: "max_prekeys_per_upload",
        });
    }
    Ok(())
}

fn check_unique(item: &str, key_id: u32, ids: &mut HashSet<u32>) -> Result<(), RelayError> {
    if !ids.insert(key_id) {
        return Err(RelayError::invalid(
            format!("{item}.key_id"),
            format!("{key_id} is repeated in the list"),
        ));
    }
    Ok(())
}
