//! Share links: how a sender offers a credential to someone whose address it does not know,
//! without telling the relay who that is.
//!
//! The sender creates a throwaway mailbox for the share and sends, over any channel, a link
//!
//! ```text
//! tigress://share?relay=RELAY_URL&to=UUID.DEVICE#SECRET.IDENTITY_HASH
//! ```
//!
//! where RELAY_URL is percent-encoded, SECRET is 32 random bytes and IDENTITY_HASH is
//! [`identity_hash`] of the throwaway identity key, both in unpadded base64url. The fragment
//! never reaches a server when the link is opened in a browser. The receiver checks the
//! identity key of the bundle the relay serves against IDENTITY_HASH, so a relay that swaps in a
//! bundle of its own is detected, and proves that it holds the secret with [`claim_proof`],
//! which sends only an HMAC of the receiver's own identity key. Both sides derive the share id
//! from the secret ([`ShareLink::share_id`]).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::address::DeviceAddress;
use crate::share::ShareId;

/// The scheme and path every link starts with.
const PREFIX: &str = "tigress://share?";
/// Maximum length of a link, in bytes.
pub const MAX_LINK_LEN: usize = 1024;
/// Maximum length of the relay URL inside a link, percent-encoded as [`ShareLink`] prints it.
/// Measuring the printed form keeps every accepted link printable within [`MAX_LINK_LEN`]: the
/// other parts of a link take under 200 bytes.
const MAX_RELAY_URL_LEN: usize = 512;

const SHARE_ID_LABEL: &[u8] = b"tigress.share.v1.link-share-id";
const IDENTITY_HASH_LABEL: &[u8] = b"tigress.share.v1.link-identity";
const CLAIM_LABEL: &[u8] = b"tigress.share.v1.claim";

/// The reason a link was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid share link: {0}")]
pub struct LinkError(String);

/// A parsed share link.
#[derive(Clone, PartialEq, Eq)]
pub struct ShareLink {
    /// The relay holding the sender's throwaway mailbox.
    pub relay_url: String,
    /// The throwaway mailbox's address.
    pub to: DeviceAddress,
    /// The secret that authorises a claim.
    pub secret: [u8; 32],
    /// [`identity_hash`] of the throwaway identity key.
    pub identity_hash: [u8; 32],
}

impl fmt::Debug for ShareLink {
    /// Leaves out the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            relay_url,
            to,
            secret: _,
            identity_hash,
        } = self;
        f.debug_struct("ShareLink")
            .field("relay_url", relay_url)
            .field("to", to)
            .field("identity_hash", &URL_SAFE_NO_PAD.encode(identity_hash))
            .finish_non_exhaustive()
    }
}

impl ShareLink {
    /// Derives the share id both sides use, see [`share_id_for_secret`].
    pub fn share_id(&self) -> ShareId {
        share_id_for_secret(&self.secret)
    }

    /// Checks in constant time whether `identity_key` (serialized) is the one the link pins.
    pub fn pins_identity(&self, identity_key: &[u8]) -> bool {
        identity_hash(identity_key)
            .ct_eq(&self.identity_hash)
            .into()
    }

    /// Formats the link as text. The result contains the secret.
    pub fn dangerous_to_text(&self) -> String {
        format!(
            "{PREFIX}relay={}&to={}#{}.{}",
            percent_encode(&self.relay_url),
            self.to,
            URL_SAFE_NO_PAD.encode(self.secret),
            URL_SAFE_NO_PAD.encode(self.identity_hash)
        )
    }
}

impl FromStr for ShareLink {
    type Err = LinkError;

    /// Parses a link strictly: the exact prefix, exactly the `relay` and `to` parameters once
    /// each, and a fragment of two 32-byte base64url values.
    fn from_str(text: &str) -> Result<Self, LinkError> {
        let error = |reason: &str| LinkError(reason.to_owned());
        if text.len() > MAX_LINK_LEN {
            return Err(LinkError(format!("longer than {MAX_LINK_LEN} bytes")));
        }
        let rest = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| error("must start with tigress://share?"))?;
        let (query, fragment) = rest
            .split_once('#')
            .ok_or_else(|| error("the #SECRET.IDENTITY_HASH part is missing"))?;

        let (mut relay_url, mut to) = (None, None);
        for parameter in query.split('&') {
            let (name, value) = parameter
                .split_once('=')
                .ok_or_else(|| error("a query parameter has no value"))?;
            let slot = match name {
                "relay" => &mut relay_url,
                "to" => &mut to,
                _ => return Err(LinkError(format!("unknown parameter {:?}", truncate(name)))),
            };
            if slot.replace(value).is_some() {
                return Err(LinkError(format!("parameter {name} appears twice")));
            }
        }
        let relay_url =
            percent_decode(relay_url.ok_or_else(|| error("the relay parameter is missing"))?)?;
        if !(relay_url.starts_with("http://") || relay_url.starts_with("https://")) {
            return Err(error("the relay must be an http:// or https:// URL"));
        }
        let to_text = to.ok_or_else(|| error("the to parameter is missing"))?;
        let to = to_text
            .parse::<DeviceAddress>()
            .map_err(|_| error("the to parameter is not an address UUID.DEVICE"))?;

        let (secret, hash) = fragment
            .split_once('.')
            .ok_or_else(|| error("the fragment must be SECRET.IDENTITY_HASH"))?;
        Ok(Self {
            relay_url,
            to,
            secret: decode_32("secret", secret)?,
            identity_hash: decode_32("identity hash", hash)?,
        })
    }
}

/// Derives the share id of a link from its secret: the first 16 bytes of SHA-256 over a label
/// and the secret.
pub fn share_id_for_secret(secret: &[u8; 32]) -> ShareId {
    let digest = Sha256::new()
        .chain_update(SHARE_ID_LABEL)
        .chain_update(secret)
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    ShareId::from_bytes(id)
}

/// Hashes a serialized identity key for a link: SHA-256 over a label and the key.
pub fn identity_hash(identity_key: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(IDENTITY_HASH_LABEL)
        .chain_update(identity_key)
        .finalize()
        .into()
}

/// Computes a claim's proof: HMAC-SHA256 keyed with the link secret over a label and the
/// claimant's serialized identity key.
pub fn claim_proof(secret: &[u8; 32], claimant_identity_key: &[u8]) -> [u8; 32] {
    claim_mac(secret, claimant_identity_key)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks a claim's proof in constant time.
pub fn verify_claim(secret: &[u8; 32], claimant_identity_key: &[u8], proof: &[u8; 32]) -> bool {
    claim_mac(secret, claimant_identity_key)
        .verify_slice(proof)
        .is_ok()
}

fn claim_mac(secret: &[u8; 32], claimant_identity_key: &[u8]) -> Hmac<Sha256> {
    // HMAC pads a key shorter than the hash's 64-byte block with zeros (RFC 2104), so the
    // padded key gives the same MAC as the 32-byte secret, through the infallible constructor.
    let mut key = hmac::digest::Key::<Hmac<Sha256>>::default();
    key[..secret.len()].copy_from_slice(secret);
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&key);
    mac.update(CLAIM_LABEL);
    mac.update(claimant_identity_key);
    mac
}

fn decode_32(what: &str, text: &str) -> Result<[u8; 32], LinkError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| LinkError(format!("the {what} is not unpadded base64url")))?;
    bytes.try_into().map_err(|bytes: Vec<u8>| {
        LinkError(format!("the {what} must be 32 bytes, got {}", bytes.len()))
    })
}

/// Percent-encodes every byte but the unreserved characters of RFC 3986.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn percent_decode(text: &str) -> Result<String, LinkError> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|pair| std::str::from_utf8(pair).ok());
            let value = hex
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| {
                    LinkError("the relay parameter has an invalid %-escape".to_owned())
                })?;
            decoded.push(value);
            index += 3;
        } else {
            decoded.push(byte);
            index += 1;
        }
    }
    let url = String::from_utf8(decoded)
        .map_err(|_| LinkError("the relay URL is not UTF-8".to_owned()))?;
    if percent_encode(&url).len() > MAX_RELAY_URL_LEN {
        return Err(LinkError(format!(
            "the relay URL is longer than {MAX_RELAY_URL_LEN} bytes once percent-encoded"
        )));
    }
    if url.chars().any(char::is_control) {
        return Err(LinkError(
            "the relay URL contains a control character".to_owned(),
        ));
    }
    Ok(url)
}

fn truncate(text: &str) -> String {
    text.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ShareLink {
        ShareLink {
            relay_url: "http://127.0.0.1:50051".to_owned(),
            to: "0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1".parse().unwrap(),
            secret: [7; 32],
            identity_hash: identity_hash(&[5; 33]),
        }
    }

    #[test]
    fn link_round_trips_through_text() {
        let link = sample();
        let text = link.dangerous_to_text();
        assert!(text.starts_with("tigress://share?relay=http%3A%2F%2F127.0.0.1%3A50051&to=0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1#"), "{text}");
        assert_eq!(text.parse::<ShareLink>().unwrap(), link);
    }

    #[test]
    fn both_sides_derive_the_same_share_id() {
        let link = sample();
        let parsed: ShareLink = link.dangerous_to_text().parse().unwrap();
        assert_eq!(parsed.share_id(), link.share_id());
        let mut other = link.clone();
        other.secret[0] ^= 1;
        assert_ne!(other.share_id(), link.share_id());
    }

    #[test]
    fn pinned_identity_is_checked() {
        let link = sample();
        assert!(link.pins_identity(&[5; 33]));
        assert!(!link.pins_identity(&[6; 33]));
    }

    #[test]
    fn claim_proof_binds_secret_and_claimant() {
        let proof = claim_proof(&[1; 32], b"alice");
        assert!(verify_claim(&[1; 32], b"alice", &proof));
        assert!(!verify_claim(&[2; 32], b"alice", &proof));
        assert!(!verify_claim(&[1; 32], b"mallory", &proof));
    }

    #[test]
    fn padded_key_gives_the_rfc_2104_mac() {
        let mut reference = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&[9; 32]).unwrap();
        reference.update(CLAIM_LABEL);
        reference.update(b"key");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(claim_proof(&[9; 32], b"key"), expected);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let printed = format!("{:?}", sample());
        assert!(
            !printed.contains(&URL_SAFE_NO_PAD.encode([7u8; 32])),
            "{printed}"
        );
        assert!(!printed.contains("secret"), "{printed}");
    }

    #[test]
    fn malformed_links_are_rejected() {
        let valid = sample().dangerous_to_text();
        let (query, fragment) = valid.split_once('#').unwrap();
        let cases = [
            ("https://share?relay=x", "must start with tigress://share?"),
            (query, "#SECRET.IDENTITY_HASH part is missing"),
            (&format!("{query}#abc"), "must be SECRET.IDENTITY_HASH"),
            (
                &format!("{query}#{}.AAAA", fragment.split_once('.').unwrap().0),
                "identity hash must be 32 bytes, got 3",
            ),
            (
                &format!("{query}#!!!.{}", fragment.split_once('.').unwrap().1),
                "secret is not unpadded base64url",
            ),
            (
                &format!("{query}&to=x#{fragment}"),
                "parameter to appears twice",
            ),
            (
                &format!("{query}&from=x#{fragment}"),
                "unknown parameter \"from\"",
            ),
            (
                &format!("tigress://share?to=0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1#{fragment}"),
                "relay parameter is missing",
            ),
            (
                &format!(
                    "tigress://share?relay=ftp%3A%2F%2Fx&to=0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1#{fragment}"
                ),
                "http:// or https://",
            ),
            (
                &format!(
                    "tigress://share?relay=http%3A%2F%2Fx%0A&to=0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1#{fragment}"
                ),
                "control character",
            ),
            (
                &format!(
                    "tigress://share?relay=http%3A%2F%2Fx%G1&to=0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1#{fragment}"
                ),
                "invalid %-escape",
            ),
            (
                &format!("tigress://share?relay=http%3A%2F%2Fx&to=bob#{fragment}"),
                "not an address",
            ),
            (&"x".repeat(2000), "longer than 1024 bytes"),
            (
                // 200 bytes as written, 600 once each `$` is printed as `%24`.
                &format!(
                    "tigress://share?relay=http://{}&to=0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1#{fragment}",
                    "$".repeat(193)
                ),
                "longer than 512 bytes once percent-encoded",
            ),
        ];
        for (text, expected) in cases {
            let error = text.parse::<ShareLink>().unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{text:?} gave {error:?}, expected {expected:?}"
            );
        }
    }
}
