//! The share state machine: which step may follow which, on each side of a share.
//!
//! Pure code with no store: the SDK reads a share's state, calls [`next_state`] to check an
//! input, and commits the new state in the same transaction as the input's other effects.
//!
//! A stateless share runs:
//!
//! ```text
//! sender:    Offered --completion received--> Completed
//! receiver:  Offered --accept--> Provisioned --completion sent--> Completed
//! ```

use std::fmt;

/// The side of a share a device is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The device that offered the credential.
    Sender,
    /// The device the credential was offered to.
    Receiver,
}

/// The progress of a share, as one side records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareState {
    /// The offer was sent (sender) or received (receiver).
    Offered,
    /// The receiver stored the credential and owes the sender a completion acknowledgement.
    Provisioned,
    /// The share is done: the receiver has the credential and the sender received the
    /// acknowledgement.
    Completed,
}

impl ShareState {
    /// Every state, for exhaustive tests and listings.
    pub const ALL: [Self; 3] = [Self::Offered, Self::Provisioned, Self::Completed];

    /// Returns the state's name as the CLI prints it and the store records it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Offered => "offered",
            Self::Provisioned => "provisioned",
            Self::Completed => "completed",
        }
    }

    /// Parses a name written by [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.name() == name)
    }

    /// Checks whether no input can change the state any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed)
    }
}

impl fmt::Display for ShareState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something that happens to a share: a local action or a message from the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareInput {
    /// Receiver: the person accepts the offer and the credential is stored.
    Accept,
    /// Receiver: the completion acknowledgement reached the relay.
    CompletionSent,
    /// Sender: the receiver's completion acknowledgement arrived.
    CompletionReceived,
    /// Either side: a second offer with the id of a known share arrived.
    OfferReceived,
}

impl ShareInput {
    /// Every input, for exhaustive tests.
    pub const ALL: [Self; 4] = [
        Self::Accept,
        Self::CompletionSent,
        Self::CompletionReceived,
        Self::OfferReceived,
    ];

    /// Returns the input's name for errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::CompletionSent => "sending the completion acknowledgement",
            Self::CompletionReceived => "a completion acknowledgement",
            Self::OfferReceived => "a repeated share offer",
        }
    }
}

/// An input that the share's state does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{role:?} share is {state}: {} is not allowed now", input.name())]
pub struct TransitionError {
    /// The side the device is on.
    pub role: Role,
    /// The share's state.
    pub state: ShareState,
    /// The rejected input.
    pub input: ShareInput,
}

/// Returns the state that `input` moves a share to, or the reason it is not allowed.
///
/// # Errors
///
/// [`TransitionError`] for every input the state does not allow, including duplicates (a
/// second completion) and messages for the other role.
pub fn next_state(
    role: Role,
    state: ShareState,
    input: ShareInput,
) -> Result<ShareState, TransitionError> {
    use ShareInput::{Accept, CompletionReceived, CompletionSent};
    use ShareState::{Completed, Offered, Provisioned};

    match (role, state, input) {
        (Role::Sender, Offered, CompletionReceived) => Ok(Completed),
        (Role::Receiver, Offered, Accept) => Ok(Provisioned),
        (Role::Receiver, Provisioned, CompletionSent) => Ok(Completed),
        _ => Err(TransitionError { role, state, input }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every allowed transition; everything else must be rejected.
    const ALLOWED: [(Role, ShareState, ShareInput, ShareState); 3] = [
        (
            Role::Sender,
            ShareState::Offered,
            ShareInput::CompletionReceived,
            ShareState::Completed,
        ),
        (
            Role::Receiver,
            ShareState::Offered,
            ShareInput::Accept,
            ShareState::Provisioned,
        ),
        (
            Role::Receiver,
            ShareState::Provisioned,
            ShareInput::CompletionSent,
            ShareState::Completed,
        ),
    ];

    #[test]
    fn state_machine_table_is_exhaustive() {
        for role in [Role::Sender, Role::Receiver] {
            for state in ShareState::ALL {
                for input in ShareInput::ALL {
                    let expected = ALLOWED
                        .iter()
                        .find(|(r, s, i, _)| (*r, *s, *i) == (role, state, input))
                        .map(|(_, _, _, to)| *to);
                    let actual = next_state(role, state, input);
                    match expected {
                        Some(to) => assert_eq!(actual, Ok(to), "{role:?} {state} {input:?}"),
                        None => assert_eq!(
                            actual,
                            Err(TransitionError { role, state, input }),
                            "{role:?} {state} {input:?} must be rejected"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn final_states_accept_nothing() {
        for role in [Role::Sender, Role::Receiver] {
            for state in ShareState::ALL.into_iter().filter(|state| state.is_final()) {
                for input in ShareInput::ALL {
                    assert!(
                        next_state(role, state, input).is_err(),
                        "{role:?} {state} {input:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn state_names_round_trip() {
        for state in ShareState::ALL {
            assert_eq!(ShareState::from_name(state.name()), Some(state));
        }
        assert_eq!(ShareState::from_name("unknown"), None);
    }

    #[test]
    fn rejection_names_state_and_input() {
        let error =
            next_state(Role::Receiver, ShareState::Completed, ShareInput::Accept).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Receiver share is completed: accept is not allowed now"
        );
    }
}
