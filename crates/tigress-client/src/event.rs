//! Events: what a sync found, one per processed envelope or outcome.

use std::fmt;

use tigress_core::DeviceAddress;
use tigress_core::share::{DisplayInformation, ShareId};

/// Something that happened to this device's shares.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer offered a credential; accept it with [`Device::accept`](crate::Device::accept).
    OfferReceived {
        /// The share.
        share_id: ShareId,
        /// The sender.
        from: DeviceAddress,
        /// The sender's description of the credential.
        display: DisplayInformation,
    },
    /// The receiver of a share provisioned the credential.
    ShareCompleted {
        /// The share.
        share_id: ShareId,
        /// The receiver.
        peer: DeviceAddress,
    },
    /// A message that was stored but not yet on the relay has now been sent.
    MessageDelivered {
        /// The share it is about.
        share_id: ShareId,
        /// The recipient.
        to: DeviceAddress,
    },
    /// A peer's identity key changed; its messages wait on the relay until the new key is
    /// trusted.
    IdentityChanged {
        /// The peer.
        address: String,
    },
    /// An envelope was dropped because it cannot be processed.
    EnvelopeRejected {
        /// The sender as the relay names it.
        source: String,
        /// Why.
        reason: String,
    },
}

impl Event {
    /// Returns the event's kind as a short name, as `--json` output names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OfferReceived { .. } => "offer_received",
            Self::ShareCompleted { .. } => "share_completed",
            Self::MessageDelivered { .. } => "message_delivered",
            Self::IdentityChanged { .. } => "identity_changed",
            Self::EnvelopeRejected { .. } => "envelope_rejected",
        }
    }
}

impl fmt::Display for Event {
    /// Formats the event as `tigress sync` prints it: its name, then `key=value` pairs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OfferReceived {
                share_id,
                from,
                display,
            } => write!(
                f,
                "offer received share={share_id} from={from} title={:?} size={}",
                display.title, display.size_bytes
            ),
            Self::ShareCompleted { share_id, peer } => {
                write!(f, "share completed share={share_id} peer={peer}")
            }
            Self::MessageDelivered { share_id, to } => {
                write!(f, "message delivered share={share_id} to={to}")
            }
            Self::IdentityChanged { address } => {
                write!(
                    f,
                    "identity changed address={address}: messages from it wait until its new key is trusted"
                )
            }
            Self::EnvelopeRejected { source, reason } => {
                write!(f, "envelope rejected source={source} reason={reason:?}")
            }
        }
    }
}
