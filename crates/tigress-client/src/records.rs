//! The SDK's records in the device store, beside the protocol state, under the `app/` prefix.
//!
//! Records are protobuf-encoded so that fields can be added without a migration. Keys:
//!
//! | key                                   | record                                          |
//! | ------------------------------------- | ----------------------------------------------- |
//! | `app/profile`                         | [`Profile`]: relay, address, credential         |
//! | `app/registration-draft`              | keys prepared for a registration                |
//! | `app/owner-ca`                        | [`OwnerCaRecord`]: the certificate authority    |
//! | `app/prekey-upkeep`                   | when the signed prekey was last rotated         |
//! | `app/share/sent/ID`                   | [`ShareRecord`] of a share this device offered  |
//! | `app/share/received/ID`               | [`ShareRecord`] of a share offered to it        |
//! | `app/link/ID`                         | [`LinkRecord`]: a link share's own mailbox      |
//! | `app/outbox/CLIENT-MESSAGE-ID`        | [`OutboxRecord`]: encrypted, not yet sent       |
//! | `app/processed/CLIENT-MESSAGE-ID/SRC` | empty: an envelope already processed            |

use prost::Message;
use tigress_core::share::state::{Channel, Role, ShareKind, ShareState};
use tigress_core::share::{DisplayInformation, ShareId, ShareMode};
use tigress_core::store::namespace;
use tigress_core::{Store, Transaction};

use crate::error::Result;

pub(crate) const PROFILE: &[u8] = b"app/profile";
pub(crate) const REGISTRATION_DRAFT: &[u8] = b"app/registration-draft";
pub(crate) const OWNER_CA: &[u8] = b"app/owner-ca";
pub(crate) const UPKEEP: &[u8] = b"app/prekey-upkeep";
pub(crate) const SENT_SHARE: &[u8] = b"app/share/sent/";
pub(crate) const RECEIVED_SHARE: &[u8] = b"app/share/received/";
pub(crate) const LINK: &[u8] = b"app/link/";
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
    /// The CA certificate an `https://` relay's certificate chains to, PEM; empty for the
    /// Mozilla root certificates or a plain `http://` relay.
    #[prost(string, tag = "4")]
    pub(crate) ca_certificate_pem: String,
}

impl Profile {
    /// The relay's CA certificate, when one was given.
    pub(crate) fn ca(&self) -> Option<&str> {
        (!self.ca_certificate_pem.is_empty()).then_some(self.ca_certificate_pem.as_str())
    }
}

/// The owner certificate authority of stateful shares.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct OwnerCaRecord {
    /// The CA's private key, PKCS#8 DER. Secret.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) private_key_der: Vec<u8>,
    /// The CA's self-signed certificate, DER.
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) certificate_der: Vec<u8>,
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

/// The X.509 side of a stateful share.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct X509Record {
    /// The sender's CA certificate, DER.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) ca_certificate: Vec<u8>,
    /// The subject common name of the policy.
    #[prost(string, tag = "2")]
    pub(crate) subject_common_name: String,
    /// The longest validity the sender issues, in seconds.
    #[prost(uint64, tag = "3")]
    pub(crate) max_validity_seconds: u64,
    /// Sender: issue the certificate as soon as a valid request arrives.
    #[prost(bool, tag = "4")]
    pub(crate) auto_approve: bool,
    /// The receiver's certificate signing request, DER.
    #[prost(bytes = "vec", tag = "5")]
    pub(crate) request_der: Vec<u8>,
    /// The validity the request asks for, in seconds.
    #[prost(uint64, tag = "6")]
    pub(crate) requested_validity_seconds: u64,
    /// Receiver: its private key, PKCS#8 DER. Secret.
    #[prost(bytes = "vec", tag = "7")]
    pub(crate) private_key_der: Vec<u8>,
    /// The issued certificate, DER.
    #[prost(bytes = "vec", tag = "8")]
    pub(crate) certificate_der: Vec<u8>,
}

/// One share, on either side.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ShareRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) share_id: Vec<u8>,
    /// The other device's address; for an unclaimed link, empty.
    #[prost(string, tag = "2")]
    pub(crate) peer: String,
    /// The state's name, as `ShareState::name` writes it.
    #[prost(string, tag = "3")]
    pub(crate) state: String,
    #[prost(message, optional, tag = "4")]
    pub(crate) display: Option<StoredDisplay>,
    /// Receiver: the credential of a stateless share. Sender of a link: the credential to send
    /// once the link is claimed. Secret.
    #[prost(bytes = "vec", tag = "5")]
    pub(crate) provisioning_information: Vec<u8>,
    /// When the offer expires, in ms since the Unix epoch; 0 for never.
    #[prost(uint64, tag = "6")]
    pub(crate) expires_at_ms: u64,
    #[prost(uint64, tag = "7")]
    pub(crate) created_at_ms: u64,
    #[prost(uint64, tag = "8")]
    pub(crate) updated_at_ms: u64,
    /// `stateless` or `stateful`; empty while a claimed link waits for its offer.
    #[prost(string, tag = "9")]
    pub(crate) mode: String,
    /// `contact` or `link`.
    #[prost(string, tag = "10")]
    pub(crate) channel: String,
    #[prost(message, optional, tag = "11")]
    pub(crate) x509: Option<X509Record>,
    /// Sender of a link: the link secret. Secret.
    #[prost(bytes = "vec", tag = "12")]
    pub(crate) link_secret: Vec<u8>,
    /// Sender: the client message id of the offer, for retraction on cancel.
    #[prost(bytes = "vec", tag = "13")]
    pub(crate) offer_client_message_id: Vec<u8>,
    /// Why the share failed, when it did.
    #[prost(string, tag = "14")]
    pub(crate) failure: String,
}

impl ShareRecord {
    /// The share's id.
    pub(crate) fn id(&self) -> tigress_core::Result<ShareId> {
        ShareId::from_slice(&self.share_id)
    }

    /// The share's state.
    pub(crate) fn state(&self) -> tigress_core::Result<ShareState> {
        ShareState::from_name(&self.state)
            .ok_or_else(|| self.corrupt(format!("unknown state {:?}", self.state)))
    }

    /// The share's mode, or `None` while a claimed link waits for its offer.
    pub(crate) fn mode(&self) -> tigress_core::Result<Option<ShareMode>> {
        if self.mode.is_empty() {
            return Ok(None);
        }
        ShareMode::from_name(&self.mode)
            .map(Some)
            .ok_or_else(|| self.corrupt(format!("unknown mode {:?}", self.mode)))
    }

    /// The share's channel.
    pub(crate) fn channel(&self) -> tigress_core::Result<Channel> {
        match self.channel.as_str() {
            "contact" => Ok(Channel::Contact),
            "link" => Ok(Channel::Link),
            other => Err(self.corrupt(format!("unknown channel {other:?}"))),
        }
    }

    /// The share's kind for the state machine; a link waiting for its offer counts as
    /// `fallback_mode`.
    pub(crate) fn kind(
        &self,
        role: Role,
        fallback_mode: ShareMode,
    ) -> tigress_core::Result<ShareKind> {
        Ok(ShareKind {
            role,
            mode: self.mode()?.unwrap_or(fallback_mode),
            channel: self.channel()?,
        })
    }

    fn corrupt(&self, reason: String) -> tigress_core::Error {
        let share = ShareId::from_slice(&self.share_id)
            .map_or_else(|_| "(invalid id)".to_owned(), |id| id.to_string());
        tigress_core::Error::CorruptRecord {
            key: format!("share {share}"),
            reason,
        }
    }
}

/// Returns the name a channel is stored under.
pub(crate) fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Contact => "contact",
        Channel::Link => "link",
    }
}

/// A link share's own mailbox: a throwaway device in a folder of the home.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct LinkRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) share_id: Vec<u8>,
    /// The throwaway device's folder, relative to the home's `links` folder.
    #[prost(string, tag = "2")]
    pub(crate) folder: String,
    /// True once the share ended and the mailbox was deleted from the relay.
    #[prost(bool, tag = "3")]
    pub(crate) closed: bool,
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
    /// A message whose sending changes nothing locally.
    Plain,
    /// A completion acknowledgement: the received share becomes completed once sent.
    Completion,
}

impl OutboxPurpose {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Completion => "completion",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [Self::Plain, Self::Completion]
            .into_iter()
            .find(|purpose| purpose.name() == name)
    }
}

/// Returns the key of a share record for `role`.
pub(crate) fn share_key(role: Role, share_id: &ShareId) -> Vec<u8> {
    let prefix = match role {
        Role::Sender => SENT_SHARE,
        Role::Receiver => RECEIVED_SHARE,
    };
    namespace::with_bytes(prefix, share_id.as_bytes())
}

pub(crate) fn link_key(share_id: &ShareId) -> Vec<u8> {
    namespace::with_bytes(LINK, share_id.as_bytes())
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
