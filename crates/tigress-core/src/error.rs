//! The error type of the protocol core.

use std::path::PathBuf;

use libsignal_protocol::SignalProtocolError;

/// A result with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Formats an error and its causes on one line, `outer: cause: root cause`, leaving out a cause
/// whose text the line already contains (errors of this project include their cause's text in
/// their own message, while context added by `anyhow` does not).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// Everything that can go wrong in the protocol core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The device store could not be opened.
    #[error("failed to open device store {}: {source}", path.display())]
    StoreOpen {
        /// The store's folder.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },

    /// Another process has the device store open.
    #[error("device store {} is in use by another process", path.display())]
    StoreLocked {
        /// The store's folder.
        path: PathBuf,
    },

    /// The store's database file exists, but sled recovered none of its records: the file was
    /// truncated or overwritten.
    #[error(
        "device store {} is damaged: its database file is there but no records could be recovered from it; restore the folder from a backup, or move it away and run `tigress init` for a new device",
        path.display()
    )]
    StoreDamaged {
        /// The store's folder.
        path: PathBuf,
    },

    /// The store was written in a layout this code does not read.
    #[error(
        "device store {} has format version {found}, but this version of tigress reads version {supported}",
        path.display()
    )]
    UnsupportedFormat {
        /// The store's folder.
        path: PathBuf,
        /// The version found.
        found: String,
        /// The version this code reads.
        supported: u32,
    },

    /// A read or write of the device store failed.
    #[error("device store failed to {op}: {source}")]
    Store {
        /// The operation that failed, for example "commit a transaction".
        op: &'static str,
        /// The sled error.
        #[source]
        source: sled::Error,
    },

    /// A read or write of the device store failed inside a libsignal operation, which carries
    /// only the message of the underlying error.
    #[error("device store failed during {op}: {message}")]
    StoreInProtocol {
        /// The libsignal store method that failed.
        op: &'static str,
        /// The underlying error's message.
        message: String,
    },

    /// A record in the device store could not be decoded.
    #[error("device store record {key} is damaged: {reason}")]
    CorruptRecord {
        /// The record's key, printed with non-ASCII bytes escaped.
        key: String,
        /// The decoding error.
        reason: String,
    },

    /// The store has no identity key pair yet.
    #[error("device has no identity key yet: create one before using sessions")]
    NoIdentity,

    /// The store already has an identity key pair.
    #[error("device already has an identity key")]
    IdentityExists,

    /// A peer's identity key differs from the one trusted for its address.
    #[error("identity key of {address} changed: shares with it stop until the new key is trusted")]
    IdentityChanged {
        /// The peer's address.
        address: String,
    },

    /// There is no session with the address, so a bundle must be fetched first.
    #[error("no session with {address}")]
    SessionNotFound {
        /// The peer's address.
        address: String,
    },

    /// The message was already decrypted once.
    #[error("duplicate message from {address}: it was already decrypted")]
    DuplicateMessage {
        /// The sender's address.
        address: String,
    },

    /// A prekey bundle or ciphertext was rejected by libsignal.
    #[error("signal protocol error with {address}: {source}")]
    Protocol {
        /// The peer's address.
        address: String,
        /// The libsignal error.
        #[source]
        source: SignalProtocolError,
    },

    /// Key generation or key decoding failed inside libsignal.
    #[error("failed to {op}: {source}")]
    Key {
        /// The operation that failed, for example "sign a Kyber prekey".
        op: &'static str,
        /// The libsignal error.
        #[source]
        source: SignalProtocolError,
    },

    /// A prekey bundle from the relay has an invalid key or signature.
    #[error("invalid prekey bundle for {address}: {field} {source}")]
    InvalidBundle {
        /// The bundle's address.
        address: String,
        /// The offending field.
        field: &'static str,
        /// The rule it breaks.
        #[source]
        source: crate::keys::KeyError,
    },

    /// An address string is not of the form `UUID.DEVICE`.
    #[error("invalid address {value:?}: {rule}")]
    InvalidAddress {
        /// The rejected text.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },

    /// A share id string is not a UUID.
    #[error(
        "invalid share id {value:?}: expected a UUID such as 0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c"
    )]
    InvalidShareId {
        /// The rejected text.
        value: String,
    },

    /// A decrypted share message is malformed.
    #[error("invalid share message: {reason}")]
    InvalidShareMessage {
        /// The rule it breaks.
        reason: String,
    },

    /// A share message is too large for the largest padding bucket.
    #[error("share message of {size} bytes exceeds the maximum of {max} bytes")]
    ShareMessageTooLarge {
        /// The encoded size.
        size: usize,
        /// The maximum.
        max: usize,
    },

    /// A share message arrived that the share's state does not allow.
    #[error("share {share_id} is {state}: {input} is not allowed now")]
    ShareOutOfOrder {
        /// The share.
        share_id: String,
        /// Its current state.
        state: &'static str,
        /// The attempted input.
        input: &'static str,
    },

    /// A libsignal store future did not finish at its first poll. The sled stores never wait, so
    /// this means a store was used that does.
    #[error("store operation {op} did not complete synchronously")]
    StorePending {
        /// The libsignal operation.
        op: &'static str,
    },

    /// libsignal panicked on a message or bundle, which only malformed input has been seen to
    /// cause. Do not commit the transaction that the call used.
    #[error("libsignal failed in {op} on malformed input")]
    ProtocolPanic {
        /// The libsignal operation.
        op: &'static str,
    },
}

impl Error {
    /// Wraps a sled error with the operation that failed.
    pub(crate) fn store(op: &'static str) -> impl FnOnce(sled::Error) -> Self {
        move |source| Self::Store { op, source }
    }

    /// Wraps a libsignal error from key handling.
    pub(crate) fn key(op: &'static str) -> impl FnOnce(SignalProtocolError) -> Self {
        move |source| Self::Key { op, source }
    }

    /// Maps a libsignal error from a session operation with `address` to the most precise
    /// variant.
    pub(crate) fn from_protocol(address: &str, source: SignalProtocolError) -> Self {
        let address = address.to_owned();
        match source {
            SignalProtocolError::UntrustedIdentity(_) => Self::IdentityChanged { address },
            SignalProtocolError::SessionNotFound(_) => Self::SessionNotFound { address },
            SignalProtocolError::DuplicatedMessage(_, _) => Self::DuplicateMessage { address },
            SignalProtocolError::ApplicationCallbackError(_, ref inner) => {
                let inner: &(dyn std::error::Error + 'static) = inner.as_ref();
                match inner.downcast_ref::<StoreCallbackError>() {
                    Some(callback) => callback.to_error(),
                    None => Self::Protocol { address, source },
                }
            }
            source => Self::Protocol { address, source },
        }
    }
}

/// A store failure carried through libsignal's store traits, which accept only errors that are
/// `UnwindSafe` (sled's error is not).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct StoreCallbackError {
    method: &'static str,
    message: String,
    corrupt: Option<(String, String)>,
}

impl StoreCallbackError {
    /// Converts a core error raised inside a store trait method.
    pub(crate) fn wrap(method: &'static str, error: Error) -> SignalProtocolError {
        let corrupt = match &error {
            Error::CorruptRecord { key, reason } => Some((key.clone(), reason.clone())),
            _ => None,
        };
        let callback = Self {
            method,
            message: error.to_string(),
            corrupt,
        };
        SignalProtocolError::ApplicationCallbackError(method, Box::new(callback))
    }

    fn to_error(&self) -> Error {
        match &self.corrupt {
            Some((key, reason)) => Error::CorruptRecord {
                key: key.clone(),
                reason: reason.clone(),
            },
            None => Error::StoreInProtocol {
                op: self.method,
                message: self.message.clone(),
            },
        }
    }
}
