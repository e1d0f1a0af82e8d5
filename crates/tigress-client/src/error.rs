//! The SDK's error type.

use std::path::PathBuf;

use tigress_core::share::ShareId;

/// A result with the SDK's [`ClientError`].
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Everything an SDK call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The device store or another part of the protocol core failed.
    #[error(transparent)]
    Core(tigress_core::Error),

    /// The home folder has no registered device yet.
    #[error("no device in {}: run `tigress init --relay URL` first", home.display())]
    NotRegistered {
        /// The home folder.
        home: PathBuf,
    },

    /// The home folder already contains a registered device.
    #[error("{} already holds device {address}; use another --home for a second device", home.display())]
    AlreadyRegistered {
        /// The home folder.
        home: PathBuf,
        /// The device's address.
        address: String,
    },

    /// The relay URL is not usable.
    #[error("invalid relay URL {url:?}: {rule}")]
    InvalidRelayUrl {
        /// The URL given.
        url: String,
        /// The rule it breaks.
        rule: &'static str,
    },

    /// The relay could not be reached.
    #[error("relay unreachable at {url}: {reason}")]
    RelayUnreachable {
        /// The relay URL.
        url: String,
        /// The transport error message.
        reason: String,
    },

    /// The relay does not know this device's bearer credential.
    #[error(
        "relay at {url} does not know this device: its data was reset or the device was deleted; \
         register a new home with `tigress init --relay URL`"
    )]
    UnknownToRelay {
        /// The relay URL.
        url: String,
    },

    /// The home path exists but is not a folder.
    #[error("{} is a file, not a home folder: choose another --home", home.display())]
    HomeNotFolder {
        /// The path given.
        home: PathBuf,
    },

    /// A device cannot share with itself.
    #[error("{address} is this device's own address: share with another device")]
    ShareToSelf {
        /// The address.
        address: String,
    },

    /// The relay rejected a call.
    #[error("relay rejected {call}: {message} ({code:?})")]
    Relay {
        /// The gRPC method.
        call: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The relay's message.
        message: String,
    },

    /// The address is not registered on the relay.
    #[error("unknown address {address}: it is not registered on the relay")]
    UnknownAddress {
        /// The address.
        address: String,
    },

    /// The relay returned a response the SDK cannot use.
    #[error("relay sent an invalid {what}: {reason}")]
    InvalidRelayResponse {
        /// The kind of response.
        what: &'static str,
        /// The rule it breaks.
        reason: String,
    },

    /// No share with this id is known to the device.
    #[error(
        "share {share_id} is unknown on this device: `tigress inbox` and `tigress shares` list the shares it has"
    )]
    UnknownShare {
        /// The share id.
        share_id: ShareId,
    },

    /// The credential is too large to share.
    #[error("credential of {size} bytes exceeds the maximum of {max} bytes")]
    CredentialTooLarge {
        /// Its size.
        size: usize,
        /// The maximum.
        max: usize,
    },

    /// The credential is empty.
    #[error("credential is empty")]
    EmptyCredential,

    /// Display information breaks a rule.
    #[error("invalid {field}: {rule}")]
    InvalidDisplayInformation {
        /// The field.
        field: &'static str,
        /// The rule.
        rule: String,
    },

    /// The share's credential is not on the device.
    #[error("share {share_id} is {state}: {next}")]
    NotProvisioned {
        /// The share id.
        share_id: ShareId,
        /// Its state.
        state: &'static str,
        /// The step that brings the credential, or the reason none will come.
        next: &'static str,
    },

    /// The share was stored and encrypted, but the relay did not take it yet.
    #[error(
        "share {share_id} is saved but not yet delivered: {source}{}",
        retry_hint(source)
    )]
    NotDelivered {
        /// The share id.
        share_id: ShareId,
        /// The send's error.
        #[source]
        source: Box<ClientError>,
    },

    /// libsignal could not compute a safety number.
    #[error("failed to compute the safety number: {reason}")]
    SafetyNumber {
        /// The libsignal error message.
        reason: String,
    },

    /// The device has no owner certificate authority for stateful shares.
    #[error("no owner certificate authority in {}: run `tigress owner init` first", home.display())]
    NoOwnerCa {
        /// The home folder.
        home: PathBuf,
    },

    /// The device already has an owner certificate authority.
    #[error("{} already has an owner certificate authority", home.display())]
    OwnerCaExists {
        /// The home folder.
        home: PathBuf,
    },

    /// The X.509 profile rejected a request or certificate, or could not build one.
    #[error(transparent)]
    X509(#[from] tigress_core::x509::X509Error),

    /// The share's offer expired.
    #[error("share {share_id} expired at {expired_at}: ask the sender to share it again")]
    ShareExpired {
        /// The share id.
        share_id: ShareId,
        /// When, as RFC 3339 UTC.
        expired_at: String,
    },

    /// The action belongs to the other side of the share.
    #[error("share {share_id} was {side} this device: only its {owner} can {action} it")]
    WrongSide {
        /// The share id.
        share_id: ShareId,
        /// "offered by" or "offered to".
        side: &'static str,
        /// "sender" or "receiver".
        owner: &'static str,
        /// The action attempted.
        action: &'static str,
    },

    /// The action needs a stateful share.
    #[error("share {share_id} is stateless: {action} applies to stateful shares only")]
    NotStateful {
        /// The share id.
        share_id: ShareId,
        /// The action attempted.
        action: &'static str,
    },

    /// A share link does not parse.
    #[error(transparent)]
    InvalidLink(#[from] tigress_core::link::LinkError),

    /// The relay served a bundle whose identity key is not the one the link pins.
    #[error(
        "the relay served a prekey bundle for {address} whose identity key does not match the link: \
         the link was altered or the relay is not to be trusted; nothing was sent"
    )]
    LinkIdentityMismatch {
        /// The link's address.
        address: String,
    },

    /// The link's mailbox is gone from the relay.
    #[error("share link is no longer valid: its share was completed, cancelled or expired")]
    LinkGone,

    /// The link was already accepted on this device.
    #[error("share link of share {share_id} was already accepted on this device")]
    LinkAlreadyAccepted {
        /// The share id.
        share_id: ShareId,
    },

    /// The peer's identity key changed since it was first trusted.
    #[error(
        "identity key of {address} changed: check the safety number with `tigress verify {address}`, then accept the new key with `tigress trust {address}`"
    )]
    IdentityChanged {
        /// The peer's address.
        address: String,
    },

    /// A file could not be read or written.
    #[error("failed to {op} {}: {source}", path.display())]
    File {
        /// The attempted operation.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl From<tigress_core::Error> for ClientError {
    /// Turns an identity change into the SDK's variant, whose message says how to resolve it.
    fn from(error: tigress_core::Error) -> Self {
        match error {
            tigress_core::Error::IdentityChanged { address } => Self::IdentityChanged { address },
            other => Self::Core(other),
        }
    }
}

impl ClientError {
    /// Converts a gRPC status from `call` to an error.
    pub(crate) fn from_status(call: &'static str, url: &str, status: tonic::Status) -> Self {
        match status.code() {
            tonic::Code::Unauthenticated => Self::UnknownToRelay {
                url: url.to_owned(),
            },
            tonic::Code::Unavailable => Self::RelayUnreachable {
                url: url.to_owned(),
                reason: status.message().to_owned(),
            },
            code => Self::Relay {
                call,
                code,
                message: status.message().to_owned(),
            },
        }
    }
}

/// Says how a share that was not delivered gets delivered, when a later sync can do it.
fn retry_hint(source: &ClientError) -> &'static str {
    match source {
        ClientError::RelayUnreachable { .. } => {
            "; `tigress sync` sends it once the relay is reachable"
        }
        _ => "",
    }
}
