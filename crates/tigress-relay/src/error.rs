//! The relay's error type and its one mapping to gRPC status codes.

use tigress_core::keys::KeyError;
use tonic::{Code, Status};

/// Everything a relay call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The call carries no `authorization` metadata.
    #[error("missing credential: send `authorization: Bearer CREDENTIAL` metadata")]
    MissingCredential,

    /// The `authorization` metadata is not `Bearer UUID:SECRET`.
    #[error("malformed credential: expected `Bearer UUID:SECRET` as returned by RegisterDevice")]
    MalformedCredential,

    /// The credential names no device, or the secret does not match.
    #[error("invalid credential")]
    InvalidCredential,

    /// The request names a mailbox or keys of another device.
    #[error("{field} {address} is not the caller's device")]
    NotOwnDevice {
        /// The request field.
        field: &'static str,
        /// The address in it.
        address: String,
    },

    /// A request field breaks a rule.
    #[error("{field} {rule}")]
    InvalidArgument {
        /// The request field, with its path for nested fields (`signed_prekey.signature`).
        field: String,
        /// The rule, phrased to follow the field name.
        rule: String,
    },

    /// The address is not registered on this relay.
    #[error("{field} {address} is not registered on this relay")]
    UnknownAddress {
        /// The request field.
        field: &'static str,
        /// The address in it.
        address: String,
    },

    /// A size or count limit was exceeded.
    #[error("{subject} exceeds the limit of {limit} ({name})")]
    LimitExceeded {
        /// The item that was too large, with its size.
        subject: String,
        /// The limit.
        limit: u64,
        /// The limit's configuration name.
        name: &'static str,
    },

    /// A rate limit was exceeded.
    #[error(
        "{name} rate limit exceeded: at most {} at once and {} per minute {per}; retry in {:.1} s",
        limit.burst,
        limit.per_minute,
        retry_after.as_secs_f64()
    )]
    RateLimited {
        /// The limit's configuration name, such as `rate_limits.send`.
        name: &'static str,
        /// The limit.
        limit: crate::config::RateLimit,
        /// What the limit applies to, such as "per device".
        per: &'static str,
        /// How long until a request is allowed.
        retry_after: std::time::Duration,
    },

    /// The registration challenge was never issued, was already used or has expired.
    #[error(
        "challenge is unknown, already used or expired: request a new one with CreateChallenge"
    )]
    ChallengeNotValid,

    /// Storage failed; the message is for the relay's log only.
    #[error("storage failed to {op}: {message}")]
    Storage {
        /// The operation.
        op: &'static str,
        /// The storage backend's error message.
        message: String,
    },

    /// A stored record could not be decoded.
    #[error("stored record {key} is damaged: {message}")]
    CorruptRecord {
        /// The record's key.
        key: String,
        /// The decoding error.
        message: String,
    },
}

impl RelayError {
    /// Builds an INVALID_ARGUMENT error for `field`.
    pub(crate) fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// Builds a converter from a failed key check to an INVALID_ARGUMENT error for `field`.
    pub(crate) fn invalid_key(field: impl Into<String>) -> impl FnOnce(KeyError) -> Self {
        let field = field.into();
        move |error| Self::invalid(field, error.to_string())
    }

    /// Returns the gRPC code for this error.
    pub fn code(&self) -> Code {
        match self {
            Self::MissingCredential | Self::MalformedCredential | Self::InvalidCredential => {
                Code::Unauthenticated
            }
            Self::NotOwnDevice { .. } => Code::PermissionDenied,
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::UnknownAddress { .. } => Code::NotFound,
            Self::LimitExceeded { .. } | Self::RateLimited { .. } => Code::ResourceExhausted,
            Self::ChallengeNotValid => Code::FailedPrecondition,
            Self::Storage { .. } | Self::CorruptRecord { .. } => Code::Internal,
        }
    }
}

impl From<RelayError> for Status {
    /// Keeps the relay's own faults out of the status message a client receives, because their
    /// detail belongs in the log.
    fn from(error: RelayError) -> Self {
        let code = error.code();
        match code {
            Code::Internal => Status::internal("internal relay error; the request may be retried"),
            _ => Status::new(code, error.to_string()),
        }
    }
}

/// Logs a rejected call at a level that fits its cause, then converts it to a status.
///
/// Client mistakes are logged at `info`, so that an operator can see them without a flood of
/// warnings; the relay's own faults at `error`.
pub(crate) fn reject(call: &'static str, error: RelayError) -> Status {
    let code = error.code();
    if code == Code::Internal {
        tracing::error!(call, code = ?code, %error, "call failed");
    } else {
        tracing::info!(call, code = ?code, %error, "call rejected");
    }
    error.into()
}

impl From<sled::transaction::TransactionError<RelayError>> for RelayError {
    fn from(error: sled::transaction::TransactionError<RelayError>) -> Self {
        match error {
            sled::transaction::TransactionError::Abort(error) => error,
            sled::transaction::TransactionError::Storage(error) => Self::Storage {
                op: "run a transaction",
                message: error.to_string(),
            },
        }
    }
}
