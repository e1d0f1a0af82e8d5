//! Shares: the end-to-end messages two devices exchange about one credential, their padded
//! encoding, and the state machine each side runs.
//!
//! The wire form is `tigress.share.v1.ShareMessage` from `proto/`. This module turns it into
//! checked types ([`ShareMessage`]), so that no code after [`ShareMessage::decode_padded`]
//! reads an unchecked field.

mod codec;
pub mod state;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareMode {
    /// The offer carries the credential itself.
    Stateless,
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
    /// The credential document, for stateless shares.
    pub provisioning_information: Vec<u8>,
    /// When the offer stops being valid, in milliseconds since the Unix epoch.
    pub expires_at_ms: Option<u64>,
}

impl fmt::Debug for ShareOffer {
    /// Leaves out the provisioning information, which is secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            mode,
            display,
            provisioning_information,
            expires_at_ms,
        } = self;
        f.debug_struct("ShareOffer")
            .field("mode", mode)
            .field("display", display)
            .field(
                "provisioning_information",
                &format_args!("<{} bytes>", provisioning_information.len()),
            )
            .field("expires_at_ms", expires_at_ms)
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
}

impl ShareBody {
    /// Returns the message's name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Offer(_) => "share offer",
            Self::Completed => "completion acknowledgement",
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
