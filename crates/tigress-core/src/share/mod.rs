//! Shares: the end-to-end messages two devices exchange about one credential, their padded
//! encoding, and the state machine each side runs.
//!
//! The wire form is `tigress.share.v1.ShareMessage` from `proto/`. This module turns it into
//! checked types ([`ShareMessage`]), so that no code after [`ShareMessage::decode_padded`]
//! reads an unchecked field.

mod codec;
pub mod state;
mod wire;

use std::fmt;
use std::str::FromStr;

use rand::{CryptoRng, Rng};
use uuid::Uuid;

pub use codec::{MAX_PADDED_LEN, PADDING_BUCKETS};

use crate::error::{Error, Result};

/// The largest credential a stateless share carries, in bytes (60 KiB). Together with the
/// display information it fits the largest padding bucket, [`MAX_PADDED_LEN`].
pub const MAX_PROVISIONING_INFORMATION_LEN: usize = 60 * 1024;
/// Maximum length of a title, issuer or credential type, in bytes of UTF-8.
pub const MAX_DISPLAY_TEXT_LEN: usize = 200;
/// Maximum length of a file name, in bytes of UTF-8.
pub const MAX_FILE_NAME_LEN: usize = 255;

/// A share's id: 16 random bytes chosen by the sender, printed as a UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareId([u8; 16]);

impl ShareId {
    /// Draws a new random id.
    pub fn random<R: Rng + CryptoRng>(rng: &mut R) -> Self {
        Self(rng.random())
    }

    /// Builds an id from its 16 bytes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShareMessage`] when `bytes` is not 16 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let array = bytes.try_into().map_err(|_| Error::InvalidShareMessage {
            reason: format!("share_id must be 16 bytes, got {}", bytes.len()),
        })?;
        Ok(Self(array))
    }

    /// Builds an id from its 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Returns the id's 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for ShareId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Uuid::from_bytes(self.0).hyphenated().fmt(f)
    }
}

impl FromStr for ShareId {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        Uuid::try_parse(value)
            .map(|uuid| Self(uuid.into_bytes()))
            .map_err(|_| Error::InvalidShareId {
                value: value.chars().take(64).collect(),
            })
    }
}

/// The way the receiver gets the credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShareMode {
    /// The offer carries the credential itself.
    Stateless,
    /// The receiver sends a key signing request and gets a certificate for its own key back.
    Stateful,
}

impl ShareMode {
    /// Returns the mode's name as the CLI prints it and the store records it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stateless => "stateless",
            Self::Stateful => "stateful",
        }
    }

    /// Parses a name written by [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Stateless, Self::Stateful]
            .into_iter()
            .find(|mode| mode.name() == name)
    }
}

/// Maximum size of a certificate, certificate signing request or CA certificate in a share
/// message, in bytes. A P-256 certificate is well under 1 KiB.
pub const MAX_X509_DER_LEN: usize = 4096;
/// Maximum length of a subject common name, in bytes of UTF-8 (the X.520 upper bound).
pub const MAX_COMMON_NAME_LEN: usize = 64;
/// Shortest certificate validity a policy or a request may name, in seconds.
pub const MIN_VALIDITY_SECONDS: u64 = 60;
/// Longest certificate validity a policy or a request may name, in seconds: ten years.
pub const MAX_VALIDITY_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// What the sender of a stateful share certifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct X509Policy {
    /// The sender's certificate authority certificate, DER.
    pub ca_certificate: Vec<u8>,
    /// The subject common name the receiver's request must carry.
    pub subject_common_name: String,
    /// The longest certificate validity the sender issues, in seconds.
    pub max_validity_seconds: u64,
}

/// Why a share failed, as one side reports it to the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareErrorCode {
    /// A link share was already claimed by another device.
    AlreadyClaimed,
    /// The share expired before the message arrived.
    Expired,
    /// The share was cancelled before the message arrived.
    Cancelled,
    /// A key signing request broke the policy, or a claim's proof was wrong.
    Rejected,
    /// A key import request did not verify against the certificate authority.
    InvalidCertificate,
}

impl ShareErrorCode {
    /// Returns the code's name for logs and output.
    pub fn name(self) -> &'static str {
        match self {
            Self::AlreadyClaimed => "already claimed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Rejected => "rejected",
            Self::InvalidCertificate => "invalid certificate",
        }
    }
}

/// The description of a credential that a person reads before accepting it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DisplayInformation {
    /// A short title chosen by the sender.
    pub title: String,
    /// The credential's issuer, or empty when unknown.
    pub issuer: String,
    /// The kind of credential, such as an ISO 18013-5 docType; empty when unknown.
    pub credential_type: String,
    /// When the credential expires, in milliseconds since the Unix epoch.
    pub credential_expires_at_ms: Option<u64>,
    /// Size of the credential in bytes.
    pub size_bytes: u64,
    /// The sender's file name, without folders.
    pub file_name: String,
}

/// An offer of a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct ShareOffer {
    /// Stateless or stateful.
    pub mode: ShareMode,
    /// The description to show before accepting.
    pub display: DisplayInformation,
    /// The credential document, for stateless shares; empty for stateful ones.
    pub provisioning_information: Vec<u8>,
    /// When the offer stops being valid, in milliseconds since the Unix epoch.
    pub expires_at_ms: Option<u64>,
    /// What the sender certifies, for stateful shares.
    pub x509_policy: Option<X509Policy>,
}

impl fmt::Debug for ShareOffer {
    /// Leaves out the provisioning information, which is secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            mode,
            display,
            provisioning_information,
            expires_at_ms,
            x509_policy,
        } = self;
        f.debug_struct("ShareOffer")
            .field("mode", mode)
            .field("display", display)
            .field(
                "provisioning_information",
                &format_args!("<{} bytes>", provisioning_information.len()),
            )
            .field("expires_at_ms", expires_at_ms)
            .field("x509_policy", x509_policy)
            .finish()
    }
}

/// The body of a share message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShareBody {
    /// Sender to receiver: a credential is on offer.
    Offer(ShareOffer),
    /// Receiver to sender: the credential was provisioned.
    Completed,
    /// Receiver to sender, stateful shares: the receiver's key, to be certified.
    KeySigningRequest {
        /// A PKCS#10 certificate signing request, DER.
        certificate_signing_request: Vec<u8>,
        /// The validity asked for, in seconds.
        requested_validity_seconds: u64,
    },
    /// Sender to receiver, stateful shares: the certificate for the receiver's key.
    KeyImportRequest {
        /// An X.509 certificate, DER.
        certificate: Vec<u8>,
    },
    /// Receiver to sender: the offer is declined.
    Declined,
    /// Sender to receiver: the offer is withdrawn.
    Cancelled,
    /// Either side: the share failed.
    Error {
        /// The kind of failure.
        code: ShareErrorCode,
        /// A description for people.
        message: String,
    },
    /// Receiver to sender, link shares: proof that the receiver holds the link.
    Claim {
        /// HMAC-SHA256 keyed with the link secret, see [`crate::link`].
        proof: [u8; 32],
    },
}

impl ShareBody {
    /// Returns the message's name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Offer(_) => "share offer",
            Self::Completed => "completion acknowledgement",
            Self::KeySigningRequest { .. } => "key signing request",
            Self::KeyImportRequest { .. } => "key import request",
            Self::Declined => "decline",
            Self::Cancelled => "cancellation",
            Self::Error { .. } => "share error",
            Self::Claim { .. } => "claim",
        }
    }
}

/// One checked share message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareMessage {
    /// The share it is about.
    pub share_id: ShareId,
    /// When it was written, in milliseconds since the Unix epoch, by the writer's clock.
    pub sent_at_ms: u64,
    /// The message's content.
    pub body: ShareBody,
}
