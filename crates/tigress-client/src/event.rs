//! Events: what a sync found, one per processed message or outcome.

use std::fmt;

use tigress_core::share::{DisplayInformation, ShareId, ShareMode};

/// Something that happened to this device's shares.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer offered a credential; accept it with [`Device::accept`](crate::Device::accept).
    OfferReceived {
        /// The share.
        share_id: ShareId,
        /// The sender.
        from: String,
        /// Stateless or stateful.
        mode: ShareMode,
        /// The sender's description of the credential.
        display: DisplayInformation,
        /// When the offer expires, in milliseconds since the Unix epoch.
        expires_at_ms: Option<u64>,
    },
    /// A receiver asked for its key to be certified; approve it with
    /// [`Device::approve`](crate::Device::approve).
    SigningRequestReceived {
        /// The share.
        share_id: ShareId,
        /// The receiver.
        peer: String,
    },
    /// The certificate for a receiver's key was issued and sent.
    ImportIssued {
        /// The share.
        share_id: ShareId,
        /// The receiver.
        peer: String,
    },
    /// The credential of a share is now on this device.
    CredentialProvisioned {
        /// The share.
        share_id: ShareId,
        /// The sender.
        peer: String,
    },
    /// The receiver of a share provisioned the credential.
    ShareCompleted {
        /// The share.
        share_id: ShareId,
        /// The receiver.
        peer: String,
    },
    /// The receiver declined a share.
    ShareDeclined {
        /// The share.
        share_id: ShareId,
        /// The receiver.
        peer: String,
    },
    /// The sender withdrew a share.
    ShareCancelled {
        /// The share.
        share_id: ShareId,
        /// The sender.
        peer: String,
    },
    /// A share's offer expired.
    ShareExpired {
        /// The share.
        share_id: ShareId,
    },
    /// A share failed, on this side or the peer's.
    ShareFailed {
        /// The share.
        share_id: ShareId,
        /// Why.
        reason: String,
    },
    /// A device claimed a link share, and the offer went to it.
    LinkClaimed {
        /// The share.
        share_id: ShareId,
        /// The claimant's throwaway address.
        by: String,
    },
    /// A claim of a link share was rejected, and the claimant told why.
    ClaimRejected {
        /// The share.
        share_id: ShareId,
        /// The claimant's throwaway address.
        by: String,
        /// Why.
        reason: String,
    },
    /// A message that was stored but not yet on the relay has now been sent.
    MessageDelivered {
        /// The share it is about.
        share_id: ShareId,
        /// The recipient.
        to: String,
    },
    /// A peer's identity key changed; its messages wait on the relay until the new key is
    /// trusted with [`Device::trust`](crate::Device::trust).
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
            Self::SigningRequestReceived { .. } => "signing_request_received",
            Self::ImportIssued { .. } => "import_issued",
            Self::CredentialProvisioned { .. } => "credential_provisioned",
            Self::ShareCompleted { .. } => "share_completed",
            Self::ShareDeclined { .. } => "share_declined",
            Self::ShareCancelled { .. } => "share_cancelled",
            Self::ShareExpired { .. } => "share_expired",
            Self::ShareFailed { .. } => "share_failed",
            Self::LinkClaimed { .. } => "link_claimed",
            Self::ClaimRejected { .. } => "claim_rejected",
            Self::MessageDelivered { .. } => "message_delivered",
            Self::IdentityChanged { .. } => "identity_changed",
            Self::EnvelopeRejected { .. } => "envelope_rejected",
        }
    }

    /// Returns the share the event is about, if any.
    pub fn share_id(&self) -> Option<ShareId> {
        match self {
            Self::OfferReceived { share_id, .. }
            | Self::SigningRequestReceived { share_id, .. }
            | Self::ImportIssued { share_id, .. }
            | Self::CredentialProvisioned { share_id, .. }
            | Self::ShareCompleted { share_id, .. }
            | Self::ShareDeclined { share_id, .. }
            | Self::ShareCancelled { share_id, .. }
            | Self::ShareExpired { share_id }
            | Self::ShareFailed { share_id, .. }
            | Self::LinkClaimed { share_id, .. }
            | Self::ClaimRejected { share_id, .. }
            | Self::MessageDelivered { share_id, .. } => Some(*share_id),
            Self::IdentityChanged { .. } | Self::EnvelopeRejected { .. } => None,
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
                mode,
                display,
                expires_at_ms,
            } => {
                write!(
                    f,
                    "offer received share={share_id} from={from} mode={} title={:?}",
                    mode.name(),
                    display.title
                )?;
                if !display.credential_type.is_empty() {
                    write!(f, " type={:?}", display.credential_type)?;
                }
                if !display.issuer.is_empty() {
                    write!(f, " issuer={:?}", display.issuer)?;
                }
                if let Some(expiry) = display.credential_expires_at_ms {
                    write!(f, " credential_expires={}", crate::shares::rfc3339(expiry))?;
                }
                write!(f, " size={}", display.size_bytes)?;
                if let Some(expiry) = expires_at_ms {
                    write!(f, " offer_expires={}", crate::shares::rfc3339(*expiry))?;
                }
                Ok(())
            }
            Self::SigningRequestReceived { share_id, peer } => {
                write!(
                    f,
                    "signing request received share={share_id} peer={peer}: approve it with `tigress approve {share_id}`"
                )
            }
            Self::ImportIssued { share_id, peer } => {
                write!(f, "certificate issued share={share_id} peer={peer}")
            }
            Self::CredentialProvisioned { share_id, peer } => {
                write!(f, "credential provisioned share={share_id} peer={peer}")
            }
            Self::ShareCompleted { share_id, peer } => {
                write!(f, "share completed share={share_id} peer={peer}")
            }
            Self::ShareDeclined { share_id, peer } => {
                write!(f, "share declined share={share_id} peer={peer}")
            }
            Self::ShareCancelled { share_id, peer } => {
                write!(f, "share cancelled share={share_id} peer={peer}")
            }
            Self::ShareExpired { share_id } => write!(f, "share expired share={share_id}"),
            Self::ShareFailed { share_id, reason } => {
                write!(f, "share failed share={share_id} reason={reason:?}")
            }
            Self::LinkClaimed { share_id, by } => {
                write!(f, "link claimed share={share_id} by={by}")
            }
            Self::ClaimRejected {
                share_id,
                by,
                reason,
            } => {
                write!(
                    f,
                    "claim rejected share={share_id} by={by} reason={reason:?}"
                )
            }
            Self::MessageDelivered { share_id, to } => {
                write!(f, "message delivered share={share_id} to={to}")
            }
            Self::IdentityChanged { address } => write!(
                f,
                "identity changed address={address}: its messages wait until `tigress trust {address}` accepts the new key"
            ),
            Self::EnvelopeRejected { source, reason } => {
                write!(f, "envelope rejected source={source} reason={reason:?}")
            }
        }
    }
}
