//! The tigress client SDK: share digital credentials between devices through a tigress relay,
//! end to end encrypted with the Signal protocol (PQXDH and the Double Ratchet).
//!
//! A [`Device`] lives in a home folder that contains its store: its identity key, prekeys,
//! sessions, shares and received credentials. The flow of a stateless share:
//!
//! 1. both devices [`Device::register`] with a relay and learn their addresses;
//! 2. the sender calls [`Device::share`] with the receiver's address and the credential;
//! 3. the receiver calls [`Device::sync`], which reports an [`Event::OfferReceived`];
//! 4. the receiver calls [`Device::accept`], which provisions the credential and sends the
//!    completion acknowledgement; [`Device::credential`] returns it;
//! 5. the sender's next [`Device::sync`] reports an [`Event::ShareCompleted`].
//!
//! Beyond that:
//!
//! - stateful shares ([`Device::share_stateful`]): the receiver sends a PKCS#10 key signing
//!   request and the sender's owner certificate authority ([`Device::create_owner_ca`])
//!   answers with an X.509 certificate, after [`Device::approve`] or automatically;
//! - link shares ([`Device::invite`], [`Device::accept_link`]): a link that whoever holds it can
//!   claim once, with a throwaway identity and mailbox on each side;
//! - [`Device::decline`], [`Device::cancel`] and expiry end a share early;
//! - [`Device::verify`] shows safety numbers and [`Device::trust`] accepts a changed identity
//!   key;
//! - [`Device::listen`] keeps subscriptions open and reports events as they happen, and every
//!   sync keeps enough prekeys on the relay ([`Device::maintain_prekeys`]).
//!
//! Every async function returns a `Send` future, so a `Device` can be used from any tokio
//! task; store work happens in short synchronous steps between network calls.
//!
//! ```no_run
//! # async fn run() -> Result<(), tigress_client::ClientError> {
//! use std::time::Duration;
//! use tigress_client::{Credential, Device, DisplayInformation, Event, NewShare};
//!
//! let sender = Device::open("/tmp/sender")?;
//! sender.register("http://127.0.0.1:50051").await?;
//! let receiver = Device::open("/tmp/receiver")?;
//! let receiver_address = receiver.register("http://127.0.0.1:50051").await?;
//!
//! let display = DisplayInformation { title: "Front door".to_owned(), ..DisplayInformation::default() };
//! let request = NewShare { to: receiver_address, credential: b"key".to_vec(), display, expires_in: Duration::from_secs(3600) };
//! let share_id = sender.share(request).await?;
//! for event in receiver.sync().await? {
//!     if let Event::OfferReceived { share_id, .. } = event {
//!         receiver.accept(share_id).await?;
//!     }
//! }
//! assert!(matches!(receiver.credential(share_id)?, Credential::Document(document) if document == b"key"));
//! # Ok(())
//! # }
//! ```

#![deny(unsafe_code)]

mod clock;
mod device;
mod error;
mod event;
mod identity;
mod links;
mod listen;
mod outbox;
mod records;
mod relay;
mod shares;
mod sync;
#[cfg(test)]
mod testing;
mod upkeep;

pub use clock::Clock;
pub use device::{DEFAULT_OWNER_CA_NAME, Device, DeviceInfo, ONE_TIME_PREKEY_BATCH};
pub use error::{ClientError, Result};
pub use event::Event;
pub use links::{Invitation, LinkContent};
pub use listen::{FIRST_RETRY, MAX_RETRY};
pub use relay::check_relay_url;
pub use shares::{
    Credential, DEFAULT_CERTIFICATE_VALIDITY, DEFAULT_OFFER_TTL, NewShare, NewStatefulShare,
    ShareInfo, rfc3339 as format_time,
};
pub use tigress_core::DeviceAddress;
pub use tigress_core::share::state::{Channel, Role, ShareState};
pub use tigress_core::share::{DisplayInformation, ShareId, ShareMode};
pub use upkeep::{PREKEY_REFILL_THRESHOLD, SIGNED_PREKEY_ROTATION, UpkeepReport};
