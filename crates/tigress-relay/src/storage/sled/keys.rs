//! Key and value encodings of the sled trees, and their decoding helpers.

use prost::Message;
use uuid::Uuid;

use crate::error::RelayError;
use crate::storage::{MailboxUsage, StorageResult};

pub(super) const KIND_EC: u8 = 1;
pub(super) const KIND_KYBER: u8 = 2;

pub(super) fn prekey_prefix(uuid: Uuid, kind: u8) -> Vec<u8> {
    [uuid.as_bytes().as_slice(), &[kind]].concat()
}

pub(super) fn prekey_key(uuid: Uuid, kind: u8, key_id: u32) -> Vec<u8> {
    [uuid.as_bytes().as_slice(), &[kind], &key_id.to_be_bytes()].concat()
}

pub(super) fn sent_key(source: Uuid, destination: Uuid, client_message_id: &[u8]) -> Vec<u8> {
    [
        source.as_bytes().as_slice(),
        destination.as_bytes(),
        client_message_id,
    ]
    .concat()
}

/// A record of a client message id: the envelope id, then when it was stored, in ms.
pub(super) fn sent_value(envelope_id: u64, stored_at_ms: u64) -> [u8; 16] {
    let mut value = [0u8; 16];
    value[..8].copy_from_slice(&envelope_id.to_be_bytes());
    value[8..].copy_from_slice(&stored_at_ms.to_be_bytes());
    value
}

/// Decodes a record of a client message id into the envelope id and when it was stored.
pub(super) fn decode_sent_value(bytes: &[u8]) -> StorageResult<(u64, u64)> {
    let envelope_id = decode_u64("sent", bytes.get(..8).unwrap_or_default())?;
    let stored_at_ms = decode_u64("sent", bytes.get(8..).unwrap_or_default())?;
    Ok((envelope_id, stored_at_ms))
}

pub(super) fn queue_key(owner: Uuid, envelope_id: u64) -> Vec<u8> {
    [owner.as_bytes().as_slice(), &envelope_id.to_be_bytes()].concat()
}

/// The envelope id at the end of a queue key.
pub(super) fn envelope_id_of(queue_key: &[u8]) -> StorageResult<u64> {
    decode_u64("queue key", queue_key.get(16..).unwrap_or_default())
}

pub(super) fn usage_value(usage: MailboxUsage) -> [u8; 16] {
    let mut value = [0u8; 16];
    value[..8].copy_from_slice(&usage.envelopes.to_be_bytes());
    value[8..].copy_from_slice(&usage.bytes.to_be_bytes());
    value
}

pub(super) fn decode_usage(bytes: Option<&[u8]>) -> StorageResult<MailboxUsage> {
    let Some(bytes) = bytes else {
        return Ok(MailboxUsage::default());
    };
    Ok(MailboxUsage {
        envelopes: decode_u64("usage", bytes.get(..8).unwrap_or_default())?,
        bytes: decode_u64("usage", bytes.get(8..).unwrap_or_default())?,
    })
}

pub(super) fn decode<T: Message + Default>(key: &str, bytes: &[u8]) -> StorageResult<T> {
    T::decode(bytes).map_err(|error| RelayError::CorruptRecord {
        key: key.to_owned(),
        message: error.to_string(),
    })
}

pub(super) fn decode_u64(tree: &str, bytes: &[u8]) -> StorageResult<u64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| RelayError::CorruptRecord {
        key: tree.to_owned(),
        message: format!("expected 8 bytes, found {}", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}

pub(super) fn printable(key: &[u8]) -> String {
    tigress_core::store::namespace::printable(key)
}

pub(super) fn storage_error(op: &'static str) -> impl Fn(sled::Error) -> RelayError {
    move |error| RelayError::Storage {
        op,
        message: error.to_string(),
    }
}
