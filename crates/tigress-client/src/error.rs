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
    Core(#[from] tigress_core::Error),

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
    #[error("share {share_id} is unknown on this device")]
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
    #[error("share {share_id} is {state}: accept it before exporting its credential")]
    NotProvisioned {
        /// The share id.
        share_id: ShareId,
        /// Its state.
        state: &'static str,
    },

    /// The share was stored and encrypted, but the relay did not take it yet.
    #[error(
        "share {share_id} is saved but not yet delivered ({source}); `tigress sync` sends it again"
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

impl ClientError {
    /// Converts a gRPC status from `call` to an error.
    pub(crate) fn from_status(call: &'static str, url: &str, status: tonic::Status) -> Self {
        match status.code() {
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
