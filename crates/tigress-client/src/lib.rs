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
//!    completion acknowledgement; [`Device::credential`] returns the credential's bytes;
//! 5. the sender's next [`Device::sync`] reports an [`Event::ShareCompleted`].
//!
//! Every async function returns a `Send` future, so a `Device` can be used from any tokio
//! task; store work happens in short synchronous steps between network calls.
//!
//! ```no_run
//! # async fn run() -> Result<(), tigress_client::ClientError> {
//! use tigress_client::{Device, Event, NewShare};
//! use tigress_core::share::DisplayInformation;
//!
//! let sender = Device::open("/tmp/sender")?;
//! sender.register("http://127.0.0.1:50051").await?;
//! let receiver = Device::open("/tmp/receiver")?;
//! let receiver_address = receiver.register("http://127.0.0.1:50051").await?;
//!
//! let display = DisplayInformation { title: "Front door".to_owned(), ..DisplayInformation::default() };
//! let share_id = sender.share(NewShare { to: receiver_address, credential: b"key".to_vec(), display }).await?;
//! for event in receiver.sync().await? {
//!     if let Event::OfferReceived { share_id, .. } = event {
//!         receiver.accept(share_id).await?;
//!     }
//! }
//! assert_eq!(receiver.credential(share_id)?, b"key");
//! # Ok(())
//! # }
//! ```

#![deny(unsafe_code)]

mod device;
mod error;
mod event;
mod records;
mod relay;
mod shares;
mod sync;

pub use device::{Device, DeviceInfo, ONE_TIME_PREKEY_BATCH};
pub use error::{ClientError, Result};
pub use event::Event;
pub use shares::{NewShare, ReceivedShare, SentShare};
pub use tigress_core::DeviceAddress;
pub use tigress_core::share::state::ShareState;
pub use tigress_core::share::{DisplayInformation, ShareId};
