//! The share state machine: which step may follow which, on each side of a share.
//!
//! Pure code with no store: the SDK reads a share's state, calls [`next_state`] to check an
//! input, and commits the new state in the same transaction as the input's other effects.
//! Everything not listed below is rejected with a [`TransitionError`], which covers duplicate,
//! out-of-order and late messages.
//!
//! The main paths, by the side's [`ShareKind`]:
//!
//! ```text
//! sender, stateless:   Offered -(claim, links only)-> Accepted -completion-> Completed
//! sender, stateful:    Offered -(claim, links only)-> Accepted -signing request-> SigningRequested
//!                      -approve-> ImportIssued -completion-> Completed
//! receiver, stateless: Offered -accept-> Provisioned -completion sent-> Completed
//! receiver, stateful:  Offered -accept-> SigningRequested -import-> Provisioned
//!                      -completion sent-> Completed
//! receiver, link:      Accepted (claim sent) -offer-> Provisioned or SigningRequested, then as above
//! ```
//!
//! Besides these paths, the receiver may decline an offer it has not accepted. The sender may
//! cancel until the share completes, and the cancel ends the receiver's side while it has not
//! provisioned. An offer expires while its credential has not been released. An error from the
//! peer or a local failure ends any share that has not ended.

use std::fmt;

use super::ShareMode;

/// The side of a share a device is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The device that offered the credential.
    Sender,
    /// The device the credential was offered to.
    Receiver,
}

/// How the receiver learned of the share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The sender knew the receiver's address and sent the offer to it.
    Contact,
    /// The sender published a link; the receiver claimed it, and the offer followed the claim.
    Link,
}

/// Everything about a share that decides which transitions it allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShareKind {
    /// The device's side.
    pub role: Role,
    /// Stateless or stateful.
    pub mode: ShareMode,
    /// Contact or link.
    pub channel: Channel,
}

/// The progress of a share, as one side records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShareState {
    /// The offer was sent (sender) or received (receiver); for a link, the link is out.
    Offered,
    /// A link share was claimed: the sender accepted the claim, or the receiver sent it.
    Accepted,
    /// A stateful share waits for the sender to certify the receiver's key.
    SigningRequested,
    /// The sender issued the certificate.
    ImportIssued,
    /// The receiver stored the credential and owes the sender a completion acknowledgement.
    Provisioned,
    /// The share is done: the receiver has the credential and the sender received the
    /// acknowledgement, or the receiver sent it.
    Completed,
    /// The receiver declined the offer.
    Declined,
    /// The sender withdrew the offer.
    Cancelled,
    /// The offer expired before the credential was released.
    Expired,
    /// The share failed: a check failed on either side.
    Failed,
}

impl ShareState {
    /// Every state, for exhaustive tests and listings.
    pub const ALL: [Self; 10] = [
        Self::Offered,
        Self::Accepted,
        Self::SigningRequested,
        Self::ImportIssued,
        Self::Provisioned,
        Self::Completed,
        Self::Declined,
        Self::Cancelled,
        Self::Expired,
        Self::Failed,
    ];

    /// Returns the state's name as the CLI prints it and the store records it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Offered => "offered",
            Self::Accepted => "accepted",
            Self::SigningRequested => "signing-requested",
            Self::ImportIssued => "import-issued",
            Self::Provisioned => "provisioned",
            Self::Completed => "completed",
            Self::Declined => "declined",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    /// Parses a name written by [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.name() == name)
    }

    /// Checks whether no input can change the state any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Declined | Self::Cancelled | Self::Expired | Self::Failed
        )
    }
}

impl fmt::Display for ShareState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something that happens to a share: a local action or a message from the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShareInput {
    /// Receiver: the person accepts the offer.
    Accept,
    /// Sender: the person approves a key signing request and the certificate is issued.
    Approve,
    /// Receiver: the person declines the offer.
    Decline,
    /// Sender: the person withdraws the offer.
    Cancel,
    /// Either side: the offer's expiry time passed.
    Expire,
    /// Either side: a local check failed (a request broke the policy, a certificate did not
    /// verify).
    Fail,
    /// Receiver: the completion acknowledgement reached the relay.
    CompletionSent,
    /// Receiver of a link: the offer arrived after the claim.
    OfferReceived,
    /// Sender of a link: a valid claim arrived.
    ClaimReceived,
    /// Sender of a stateful share: the key signing request arrived.
    SigningRequestReceived,
    /// Receiver of a stateful share: a verified key import request arrived.
    ImportReceived,
    /// Sender: the completion acknowledgement arrived.
    CompletionReceived,
    /// Sender: the receiver declined.
    DeclineReceived,
    /// Receiver: the sender cancelled.
    CancelReceived,
    /// Either side: the peer reported a failure.
    ErrorReceived,
}

impl ShareInput {
    /// Every input, for exhaustive tests.
    pub const ALL: [Self; 15] = [
        Self::Accept,
        Self::Approve,
        Self::Decline,
        Self::Cancel,
        Self::Expire,
        Self::Fail,
        Self::CompletionSent,
        Self::OfferReceived,
        Self::ClaimReceived,
        Self::SigningRequestReceived,
        Self::ImportReceived,
        Self::CompletionReceived,
        Self::DeclineReceived,
        Self::CancelReceived,
        Self::ErrorReceived,
    ];

    /// Returns the input's name for errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Approve => "approve",
            Self::Decline => "decline",
            Self::Cancel => "cancel",
            Self::Expire => "expiry",
            Self::Fail => "a failed check",
            Self::CompletionSent => "sending the completion acknowledgement",
            Self::OfferReceived => "a share offer",
            Self::ClaimReceived => "a claim",
            Self::SigningRequestReceived => "a key signing request",
            Self::ImportReceived => "a key import request",
            Self::CompletionReceived => "a completion acknowledgement",
            Self::DeclineReceived => "a decline",
            Self::CancelReceived => "a cancellation",
            Self::ErrorReceived => "an error from the peer",
        }
    }
}

/// An input that the share's state does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("share is {state}: {} is not allowed now", input.name())]
pub struct TransitionError {
    /// The share's kind.
    pub kind: ShareKind,
    /// The share's state.
    pub state: ShareState,
    /// The rejected input.
    pub input: ShareInput,
}

/// Returns the state that `input` moves a share to, or the reason it is not allowed.
///
/// # Errors
///
/// [`TransitionError`] for every input the state does not allow, and for every input at all in
/// a state that the kind of share never reaches.
pub fn next_state(
    kind: ShareKind,
    state: ShareState,
    input: ShareInput,
) -> Result<ShareState, TransitionError> {
    let next = if is_reachable(kind, state) {
        match kind.role {
            Role::Sender => sender_next(kind, state, input),
            Role::Receiver => receiver_next(kind, state, input),
        }
    } else {
        None
    };
    next.ok_or(TransitionError { kind, state, input })
}

/// Checks whether a share of `kind` can ever be in `state`.
pub fn is_reachable(kind: ShareKind, state: ShareState) -> bool {
    use ShareState as S;

    let stateful = kind.mode == ShareMode::Stateful;
    let link = kind.channel == Channel::Link;
    match (kind.role, state) {
        (_, S::Accepted) => link,
        (Role::Sender, S::SigningRequested | S::ImportIssued) => stateful,
        (Role::Sender, S::Provisioned) => false,
        (Role::Receiver, S::Offered) => !link,
        (Role::Receiver, S::SigningRequested) => stateful,
        (Role::Receiver, S::ImportIssued) => false,
        _ => true,
    }
}

fn sender_next(kind: ShareKind, state: ShareState, input: ShareInput) -> Option<ShareState> {
    use ShareInput as I;
    use ShareState as S;

    // The state in which the sender waits for the receiver's first answer.
    let awaiting = if kind.channel == Channel::Link {
        S::Accepted
    } else {
        S::Offered
    };
    let stateful = kind.mode == ShareMode::Stateful;
    match (state, input) {
        (S::Offered, I::ClaimReceived) if kind.channel == Channel::Link => Some(S::Accepted),
        (S::Offered, I::DeclineReceived) if kind.channel == Channel::Contact => Some(S::Declined),
        (from, I::CompletionReceived) if from == awaiting && !stateful => Some(S::Completed),
        (from, I::SigningRequestReceived) if from == awaiting && stateful => {
            Some(S::SigningRequested)
        }
        (S::SigningRequested, I::Approve) => Some(S::ImportIssued),
        (S::ImportIssued, I::CompletionReceived) => Some(S::Completed),
        (S::Offered | S::Accepted | S::SigningRequested | S::ImportIssued, I::Cancel) => {
            Some(S::Cancelled)
        }
        (S::Offered | S::Accepted | S::SigningRequested, I::Expire) => Some(S::Expired),
        (from, I::ErrorReceived | I::Fail) if !from.is_final() => Some(S::Failed),
        _ => None,
    }
}

fn receiver_next(kind: ShareKind, state: ShareState, input: ShareInput) -> Option<ShareState> {
    use ShareInput as I;
    use ShareState as S;

    // What the receiver does once it has agreed to the share: store the credential, or ask for
    // a certificate.
    let agreed = if kind.mode == ShareMode::Stateful {
        S::SigningRequested
    } else {
        S::Provisioned
    };
    match (state, input) {
        (S::Offered, I::Accept) => Some(agreed),
        (S::Offered, I::Decline) => Some(S::Declined),
        (S::Accepted, I::OfferReceived) => Some(agreed),
        (S::SigningRequested, I::ImportReceived) => Some(S::Provisioned),
        (S::Provisioned, I::CompletionSent) => Some(S::Completed),
        (S::Offered | S::Accepted | S::SigningRequested, I::CancelReceived) => Some(S::Cancelled),
        (S::Offered | S::Accepted | S::SigningRequested, I::Expire) => Some(S::Expired),
        (from, I::ErrorReceived | I::Fail) if !from.is_final() => Some(S::Failed),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
