//! Key prefixes of the device store.
//!
//! Each kind of record has its own prefix, ending in `/`, followed by the record's id: a
//! big-endian number, so that records sort by id, or an address in text. Applications built on
//! the core (the client SDK) keep their records in the same tree under prefixes that start with
//! `app/`, so that they commit in the same transaction as the protocol state.

/// The layout version of the store, a big-endian `u32`.
pub const FORMAT_VERSION: &[u8] = b"local/format-version";
/// The device's own identity key pair.
pub const LOCAL_IDENTITY: &[u8] = b"local/identity";
/// The device's registration id, a big-endian `u32`.
pub const LOCAL_REGISTRATION_ID: &[u8] = b"local/registration-id";
/// The next id to give a one-time EC prekey, a big-endian `u32`.
pub const NEXT_PREKEY_ID: &[u8] = b"local/next-prekey-id";
/// The next id to give a signed EC prekey, a big-endian `u32`.
pub const NEXT_SIGNED_PREKEY_ID: &[u8] = b"local/next-signed-prekey-id";
/// The next id to give a Kyber prekey, one-time or last-resort, a big-endian `u32`.
pub const NEXT_KYBER_PREKEY_ID: &[u8] = b"local/next-kyber-prekey-id";

/// Trusted identity keys of peers, by address.
pub const PEER_IDENTITY: &[u8] = b"peer-identity/";
/// Sessions with peers, by address.
pub const SESSION: &[u8] = b"session/";
/// One-time EC prekey records, by id.
pub const PREKEY: &[u8] = b"prekey/";
/// Signed EC prekey records, by id.
pub const SIGNED_PREKEY: &[u8] = b"signed-prekey/";
/// Kyber prekey records, one-time and last-resort, by id.
pub const KYBER_PREKEY: &[u8] = b"kyber-prekey/";
/// Markers of the Kyber prekeys that are last-resort keys, by id.
pub const KYBER_LAST_RESORT: &[u8] = b"kyber-last-resort/";
/// Base keys already used with a last-resort Kyber prekey, by Kyber prekey id, signed prekey
/// id and base key; a repeat is a replayed PQXDH message.
pub const KYBER_BASE_KEY: &[u8] = b"kyber-base-key/";

/// The prefix under which applications keep their own records.
pub const APP: &[u8] = b"app/";

/// Joins a prefix and a numeric id.
pub fn with_id(prefix: &[u8], id: u32) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Joins a prefix and any bytes.
pub fn with_bytes(prefix: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(bytes);
    key
}

/// Renders a key for error messages: printable ASCII as is, other bytes as `\xNN`.
pub fn printable(key: &[u8]) -> String {
    key.iter()
        .flat_map(|&byte| std::ascii::escape_default(byte))
        .map(char::from)
        .collect()
}
