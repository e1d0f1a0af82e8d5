//! The SDK's records in the device store, beside the protocol state, under the `app/` prefix.
//!
//! Records are protobuf-encoded so that fields can be added without a migration. Keys:
//!
//! | key                                   | record                                   |
//! | ------------------------------------- | ---------------------------------------- |
//! | `app/profile`                         | [`Profile`]: relay, address, credential  |
//! | `app/registration-draft`              | keys prepared for a registration         |
//! | `app/share/sent/ID`                   | [`SentShareRecord`]                      |
//! | `app/share/received/ID`               | [`ReceivedShareRecord`]                  |
//! | `app/outbox/CLIENT-MESSAGE-ID`        | [`OutboxRecord`]: encrypted, not yet sent |
//! | `app/processed/CLIENT-MESSAGE-ID/SRC` | empty: an envelope already processed     |

use prost::Message;
use tigress_core::share::{DisplayInformation, ShareId};
use tigress_core::store::namespace;
use tigress_core::{Store, Transaction};

use crate::error::Result;

pub(crate) const PROFILE: &[u8] = b"app/profile";
pub(crate) const REGISTRATION_DRAFT: &[u8] = b"app/registration-draft";
pub(crate) const SENT_SHARE: &[u8] = b"app/share/sent/";
pub(crate) const RECEIVED_SHARE: &[u8] = b"app/share/received/";
pub(crate) const OUTBOX: &[u8] = b"app/outbox/";
pub(crate) const PROCESSED: &[u8] = b"app/processed/";

/// The device's registration with its relay.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Profile {
    /// The relay's URL.
    #[prost(string, tag = "1")]
    pub(crate) relay_url: String,
    /// The device's address on the relay.
    #[prost(string, tag = "2")]
    pub(crate) address: String,
    /// The bearer credential. Secret.
    #[prost(string, tag = "3")]
    pub(crate) credential: String,
}

/// Display information as stored.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct StoredDisplay {
    #[prost(string, tag = "1")]
    pub(crate) title: String,
    #[prost(string, tag = "2")]
    pub(crate) issuer: String,
    #[prost(string, tag = "3")]
    pub(crate) credential_type: String,
    #[prost(uint64, tag = "4")]
    pub(crate) credential_expires_at_ms: u64,
    #[prost(uint64, tag = "5")]
    pub(crate) size_bytes: u64,
    #[prost(string, tag = "6")]
    pub(crate) file_name: String,
}

impl From<&DisplayInformation> for StoredDisplay {
    fn from(display: &DisplayInformation) -> Self {
        Self {
            title: display.title.clone(),
            issuer: display.issuer.clone(),
            credential_type: display.credential_type.clone(),
            credential_expires_at_ms: display.credential_expires_at_ms.unwrap_or(0),
            size_bytes: display.size_bytes,
            file_name: display.file_name.clone(),
        }
    }
}

impl From<&StoredDisplay> for DisplayInformation {
    fn from(display: &StoredDisplay) -> Self {
        Self {
            title: display.title.clone(),
            issuer: display.issuer.clone(),
            credential_type: display.credential_type.clone(),
            credential_expires_at_ms: (display.credential_expires_at_ms != 0)
                .then_some(display.credential_expires_at_ms),
            size_bytes: display.size_bytes,
            file_name: display.file_name.clone(),
        }
    }
}

/// A share this device offered.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct SentShareRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) share_id: Vec<u8>,
    /// The receiver's address.
    #[prost(string, tag = "2")]
    pub(crate) peer: String,
    /// The state's name, as `ShareState::name` writes it.
    #[prost(string, tag = "3")]
    pub(crate) state: String,
    #[prost(message, optional, tag = "4")]
    pub(crate) display: Option<StoredDisplay>,
    #[prost(uint64, tag = "5")]
    pub(crate) created_at_ms: u64,
    #[prost(uint64, tag = "6")]
    pub(crate) updated_at_ms: u64,
}

/// A share offered to this device.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ReceivedShareRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) share_id: Vec<u8>,
    /// The sender's address.
    #[prost(string, tag = "2")]
    pub(crate) peer: String,
    #[prost(string, tag = "3")]
    pub(crate) state: String,
    #[prost(message, optional, tag = "4")]
    pub(crate) display: Option<StoredDisplay>,
    /// The credential document. Secret.
    #[prost(bytes = "vec", tag = "5")]
    pub(crate) provisioning_information: Vec<u8>,
    /// When the offer expires, in ms since the Unix epoch; 0 for never.
    #[prost(uint64, tag = "6")]
    pub(crate) expires_at_ms: u64,
    #[prost(uint64, tag = "7")]
    pub(crate) received_at_ms: u64,
    #[prost(uint64, tag = "8")]
    pub(crate) updated_at_ms: u64,
}

/// An encrypted envelope stored before it is sent, so that a crash or an unreachable relay
/// cannot lose a message whose session state is already committed.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct OutboxRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) client_message_id: Vec<u8>,
    #[prost(string, tag = "2")]
    pub(crate) destination: String,
    /// `tigress.relay.v1.EnvelopeType` as a number.
    #[prost(int32, tag = "3")]
    pub(crate) envelope_type: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) content: Vec<u8>,
    /// The share the message is about.
    #[prost(bytes = "vec", tag = "5")]
    pub(crate) share_id: Vec<u8>,
    /// The message's purpose, as [`OutboxPurpose`] names it.
    #[prost(string, tag = "6")]
    pub(crate) purpose: String,
}

/// What an outbox message does, which decides what happens once the relay has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutboxPurpose {
    /// A share offer: nothing changes once sent.
    Offer,
    /// A completion acknowledgement: the received share becomes completed once sent.
    Completion,
}

impl OutboxPurpose {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Completion => "completion",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [Self::Offer, Self::Completion]
            .into_iter()
            .find(|purpose| purpose.name() == name)
    }
}

pub(crate) fn sent_share_key(share_id: &ShareId) -> Vec<u8> {
    namespace::with_bytes(SENT_SHARE, share_id.as_bytes())
}

pub(crate) fn received_share_key(share_id: &ShareId) -> Vec<u8> {
    namespace::with_bytes(RECEIVED_SHARE, share_id.as_bytes())
}

pub(crate) fn outbox_key(client_message_id: &[u8]) -> Vec<u8> {
    namespace::with_bytes(OUTBOX, client_message_id)
}

pub(crate) fn processed_key(client_message_id: &[u8], source: &str) -> Vec<u8> {
    let mut key = namespace::with_bytes(PROCESSED, client_message_id);
    key.push(b'/');
    key.extend_from_slice(source.as_bytes());
    key
}

/// Reads and decodes one record within a transaction.
pub(crate) fn read<T: Message + Default>(txn: &Transaction<'_>, key: &[u8]) -> Result<Option<T>> {
    Ok(txn.get_decoded(key, |bytes| T::decode(bytes))?)
}

/// Reads and decodes one committed record.
pub(crate) fn read_committed<T: Message + Default>(store: &Store, key: &[u8]) -> Result<Option<T>> {
    let Some(bytes) = store.get(key)? else {
        return Ok(None);
    };
    decode(key, &bytes).map(Some)
}

/// Reads and decodes every committed record under `prefix`.
pub(crate) fn scan_committed<T: Message + Default>(store: &Store, prefix: &[u8]) -> Result<Vec<T>> {
    store
        .scan_prefix(prefix)?
        .iter()
        .map(|(key, value)| decode(key, value))
        .collect()
}

/// Encodes `record` into the transaction under `key`.
pub(crate) fn write<T: Message>(txn: &Transaction<'_>, key: Vec<u8>, record: &T) {
    txn.insert(key, record.encode_to_vec());
}

fn decode<T: Message + Default>(key: &[u8], bytes: &[u8]) -> Result<T> {
    T::decode(bytes).map_err(|error| {
        tigress_core::Error::CorruptRecord {
            key: namespace::printable(key),
            reason: error.to_string(),
        }
        .into()
    })
}
