//! `tigress dev`: key material for developers who write relay clients in other languages.
//!
//! The relay checks every signature on registration and upload, so a client needs real keys. These
//! commands keep an identity in a folder of their own (`--home`, never registered) and print the
//! request messages of the relay API as JSON, with bytes in standard base64, ready to send.

use std::time::SystemTime;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tigress_core::keys::registration_message;
use tigress_core::prekeys::{PublicPreKey, PublicSignedKey};
use tigress_core::{Durability, Store};

/// Prints a complete RegisterDeviceRequest for `challenge` (hex), creating the identity and
/// `count` one-time prekeys of each kind on first use.
pub(crate) fn registration_request(
    store: &Store,
    challenge_hex: &str,
    count: usize,
) -> anyhow::Result<Value> {
    let challenge = hex::decode(challenge_hex)
        .context("--challenge must be hex, as CreateChallenge returns it in bytes")?;
    let mut rng = rand::rng();
    let now = SystemTime::now();
    let txn = store.transaction();
    if !txn.has_identity()? {
        txn.create_identity(&mut rng)?;
    }
    let identity = txn.local_identity()?;
    let identity_key = identity.identity_key().serialize().to_vec();
    let signature = identity
        .private_key()
        .calculate_signature(&registration_message(&challenge, &identity_key), &mut rng)
        .map_err(|error| anyhow::anyhow!("failed to sign the challenge: {error}"))?;
    let signed = txn.generate_signed_prekey(now, &mut rng)?;
    let last_resort = txn.generate_last_resort_kyber_prekey(now, &mut rng)?;
    let one_time = txn.generate_one_time_prekeys(count, &mut rng)?;
    let one_time_kyber = txn.generate_one_time_kyber_prekeys(count, now, &mut rng)?;
    let registration_id = txn.local_registration_id()?;
    txn.commit(Durability::Flushed)?;

    Ok(json!({
        "identity_key": STANDARD.encode(&identity_key),
        "registration_id": registration_id,
        "challenge": STANDARD.encode(&challenge),
        "challenge_signature": STANDARD.encode(&signature),
        "signed_prekey": signed_json(&signed),
        "kyber_last_resort_prekey": signed_json(&last_resort),
        "one_time_prekeys": one_time.iter().map(ec_json).collect::<Vec<_>>(),
        "one_time_kyber_prekeys": one_time_kyber.iter().map(signed_json).collect::<Vec<_>>(),
    }))
}

/// Prints the key fields of an UploadPreKeysRequest with `count` new one-time prekeys of each
/// kind, signed by the identity made by [`registration_request`].
pub(crate) fn prekey_upload(store: &Store, count: usize) -> anyhow::Result<Value> {
    let mut rng = rand::rng();
    let txn = store.transaction();
    if !txn.has_identity()? {
        anyhow::bail!("no identity in this home yet: run `tigress dev registration-request` first");
    }
    let one_time = txn.generate_one_time_prekeys(count, &mut rng)?;
    let one_time_kyber = txn.generate_one_time_kyber_prekeys(count, SystemTime::now(), &mut rng)?;
    txn.commit(Durability::Flushed)?;
    Ok(json!({
        "one_time_prekeys": one_time.iter().map(ec_json).collect::<Vec<_>>(),
        "one_time_kyber_prekeys": one_time_kyber.iter().map(signed_json).collect::<Vec<_>>(),
    }))
}

fn signed_json(key: &PublicSignedKey) -> Value {
    json!({ "key_id": key.id, "public_key": STANDARD.encode(&key.public_key), "signature": STANDARD.encode(&key.signature) })
}

fn ec_json(key: &PublicPreKey) -> Value {
    json!({ "key_id": key.id, "public_key": STANDARD.encode(&key.public_key) })
}
