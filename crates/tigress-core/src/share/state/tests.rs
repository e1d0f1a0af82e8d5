//! The state machine against an independent table of every allowed transition, checked for
//! every kind of share, state and input.

use super::*;

const SENDER: Role = Role::Sender;
const RECEIVER: Role = Role::Receiver;

fn kinds() -> Vec<ShareKind> {
    let mut kinds = Vec::new();
    for role in [SENDER, RECEIVER] {
        for mode in [ShareMode::Stateless, ShareMode::Stateful] {
            for channel in [Channel::Contact, Channel::Link] {
                kinds.push(ShareKind {
                    role,
                    mode,
                    channel,
                });
            }
        }
    }
    kinds
}

/// Every allowed transition of `kind`, written out by hand.
fn allowed(kind: ShareKind) -> Vec<(ShareState, ShareInput, ShareState)> {
    use ShareInput as I;
    use ShareState as S;

    let stateful = kind.mode == ShareMode::Stateful;
    let link = kind.channel == Channel::Link;
    let mut table = Vec::new();
    match kind.role {
        Role::Sender => {
            let waiting = if link {
                table.push((S::Offered, I::ClaimReceived, S::Accepted));
                S::Accepted
            } else {
                table.push((S::Offered, I::DeclineReceived, S::Declined));
                S::Offered
            };
            let mut open = vec![S::Offered];
            if link {
                open.push(S::Accepted);
            }
            if stateful {
                table.push((waiting, I::SigningRequestReceived, S::SigningRequested));
                table.push((S::SigningRequested, I::Approve, S::ImportIssued));
                table.push((S::ImportIssued, I::CompletionReceived, S::Completed));
                open.push(S::SigningRequested);
            } else {
                table.push((waiting, I::CompletionReceived, S::Completed));
            }
            for &from in &open {
                table.push((from, I::Expire, S::Expired));
            }
            if stateful {
                open.push(S::ImportIssued);
            }
            for &from in &open {
                table.push((from, I::Cancel, S::Cancelled));
                table.push((from, I::ErrorReceived, S::Failed));
                table.push((from, I::Fail, S::Failed));
            }
        }
        Role::Receiver => {
            let agreed = if stateful {
                S::SigningRequested
            } else {
                S::Provisioned
            };
            let first = if link {
                table.push((S::Accepted, I::OfferReceived, agreed));
                S::Accepted
            } else {
                table.push((S::Offered, I::Accept, agreed));
                table.push((S::Offered, I::Decline, S::Declined));
                S::Offered
            };
            let mut waiting = vec![first];
            if stateful {
                table.push((S::SigningRequested, I::ImportReceived, S::Provisioned));
                waiting.push(S::SigningRequested);
            }
            table.push((S::Provisioned, I::CompletionSent, S::Completed));
            for &from in &waiting {
                table.push((from, I::CancelReceived, S::Cancelled));
                table.push((from, I::Expire, S::Expired));
            }
            for from in waiting.into_iter().chain([S::Provisioned]) {
                table.push((from, I::ErrorReceived, S::Failed));
                table.push((from, I::Fail, S::Failed));
            }
        }
    }
    table
}

#[test]
fn state_machine_matches_table() {
    let mut checked = 0;
    for kind in kinds() {
        let table = allowed(kind);
        for state in ShareState::ALL {
            for input in ShareInput::ALL {
                let expected = table
                    .iter()
                    .find(|(from, on, _)| (*from, *on) == (state, input))
                    .map(|(_, _, to)| *to);
                let actual = next_state(kind, state, input);
                match expected {
                    Some(to) => assert_eq!(actual, Ok(to), "{kind:?} {state} {input:?}"),
                    None => assert_eq!(
                        actual,
                        Err(TransitionError { kind, state, input }),
                        "{kind:?} {state} {input:?} must be rejected"
                    ),
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 8 * 10 * 15);
}

#[test]
fn final_states_accept_nothing() {
    for kind in kinds() {
        for state in ShareState::ALL.into_iter().filter(|state| state.is_final()) {
            for input in ShareInput::ALL {
                assert!(
                    next_state(kind, state, input).is_err(),
                    "{kind:?} {state} {input:?}"
                );
            }
        }
    }
}

#[test]
fn every_path_ends_in_completed() {
    let kind = |role, mode, channel| ShareKind {
        role,
        mode,
        channel,
    };
    let paths: [(ShareKind, ShareState, &[ShareInput]); 8] = [
        (
            kind(SENDER, ShareMode::Stateless, Channel::Contact),
            ShareState::Offered,
            &[ShareInput::CompletionReceived],
        ),
        (
            kind(SENDER, ShareMode::Stateless, Channel::Link),
            ShareState::Offered,
            &[ShareInput::ClaimReceived, ShareInput::CompletionReceived],
        ),
        (
            kind(SENDER, ShareMode::Stateful, Channel::Contact),
            ShareState::Offered,
            &[
                ShareInput::SigningRequestReceived,
                ShareInput::Approve,
                ShareInput::CompletionReceived,
            ],
        ),
        (
            kind(SENDER, ShareMode::Stateful, Channel::Link),
            ShareState::Offered,
            &[
                ShareInput::ClaimReceived,
                ShareInput::SigningRequestReceived,
                ShareInput::Approve,
                ShareInput::CompletionReceived,
            ],
        ),
        (
            kind(RECEIVER, ShareMode::Stateless, Channel::Contact),
            ShareState::Offered,
            &[ShareInput::Accept, ShareInput::CompletionSent],
        ),
        (
            kind(RECEIVER, ShareMode::Stateless, Channel::Link),
            ShareState::Accepted,
            &[ShareInput::OfferReceived, ShareInput::CompletionSent],
        ),
        (
            kind(RECEIVER, ShareMode::Stateful, Channel::Contact),
            ShareState::Offered,
            &[
                ShareInput::Accept,
                ShareInput::ImportReceived,
                ShareInput::CompletionSent,
            ],
        ),
        (
            kind(RECEIVER, ShareMode::Stateful, Channel::Link),
            ShareState::Accepted,
            &[
                ShareInput::OfferReceived,
                ShareInput::ImportReceived,
                ShareInput::CompletionSent,
            ],
        ),
    ];
    for (kind, start, inputs) in paths {
        let end = inputs
            .iter()
            .try_fold(start, |state, &input| next_state(kind, state, input));
        assert_eq!(end, Ok(ShareState::Completed), "{kind:?}");
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
    let kind = ShareKind {
        role: RECEIVER,
        mode: ShareMode::Stateless,
        channel: Channel::Contact,
    };
    let error = next_state(kind, ShareState::Completed, ShareInput::Accept).unwrap_err();
    assert_eq!(
        error.to_string(),
        "share is completed: accept is not allowed now"
    );
}
