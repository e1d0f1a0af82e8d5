//! The protocol core of tigress: Signal sessions over a durable store, the end-to-end share
//! messages, and the share state machine. It does no networking; the client SDK moves its
//! output through the relay.
//!
//! A device's state lives in a [`Store`], one sled tree in a folder. Work happens in a
//! [`Transaction`], which commits atomically:
//!
//! - [`Transaction::create_identity`] and the `generate_*` functions of [`prekeys`] create the
//!   identity key, registration id, signed prekey, one-time EC and Kyber prekeys and the
//!   last-resort Kyber prekey;
//! - [`Transaction::start_session`] runs [PQXDH] against a peer's prekey bundle;
//! - [`Transaction::encrypt`] and [`Transaction::decrypt`] run the [Double Ratchet];
//! - [`share::ShareMessage`] pads and encodes what goes inside each ciphertext.
//!
//! The cryptography is libsignal's (`libsignal-protocol`); this crate implements its store
//! traits on sled and wraps its non-`Send` futures in blocking calls (see [`cipher`]).
//!
//! ```
//! use std::time::SystemTime;
//! use tigress_core::{DeviceAddress, Durability, Store, keys::BundleParts};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let folders = (tempfile::tempdir()?, tempfile::tempdir()?);
//! let (alice, bob) = (Store::open(folders.0.path())?, Store::open(folders.1.path())?);
//! let mut rng = rand::rng();
//! let now = SystemTime::now();
//! let alice_address: DeviceAddress = "11111111-1111-4111-8111-111111111111.1".parse()?;
//! let bob_address: DeviceAddress = "22222222-2222-4222-8222-222222222222.1".parse()?;
//!
//! // Bob publishes a bundle (normally through the relay).
//! let txn = bob.transaction();
//! txn.create_identity(&mut rng)?;
//! let signed = txn.generate_signed_prekey(now, &mut rng)?;
//! let kyber = txn.generate_last_resort_kyber_prekey(now, &mut rng)?;
//! let bundle = BundleParts {
//!     registration_id: txn.local_registration_id()?,
//!     identity_key: txn.local_identity()?.identity_key().serialize().to_vec(),
//!     signed_prekey: (signed.id, signed.public_key, signed.signature),
//!     one_time_prekey: None,
//!     kyber_prekey: (kyber.id, kyber.public_key, kyber.signature),
//! };
//! txn.commit(Durability::Flushed)?;
//!
//! // Alice opens a session from the bundle and encrypts.
//! let txn = alice.transaction();
//! txn.create_identity(&mut rng)?;
//! txn.start_session(&bob_address, &bundle.into_bundle(&bob_address)?, now, &mut rng)?;
//! let ciphertext = txn.encrypt(&bob_address, b"hello", now, &mut rng)?;
//! txn.commit(Durability::Flushed)?;
//!
//! // Bob decrypts.
//! let txn = bob.transaction();
//! assert_eq!(txn.decrypt(&alice_address, &ciphertext, &mut rng)?, b"hello");
//! txn.commit(Durability::Flushed)?;
//! # Ok(())
//! # }
//! ```
//!
//! [PQXDH]: https://signal.org/docs/specifications/pqxdh/
//! [Double Ratchet]: https://signal.org/docs/specifications/doubleratchet/

#![deny(unsafe_code)]

mod address;
pub mod cipher;
pub mod duration;
mod error;
pub mod keys;
pub mod link;
pub mod mdoc;
pub mod prekeys;
mod registration;
pub mod share;
pub mod store;
pub mod x509;

pub use address::{DeviceAddress, PRIMARY_DEVICE_ID};
pub use cipher::{Ciphertext, CiphertextKind};
pub use error::{Error, Result, error_chain};
pub use store::{Durability, Store, Transaction};

/// The libsignal protocol crate this core is built on, for callers that need its types (a
/// [`libsignal_protocol::IdentityKey`] to compare, a fingerprint to display).
pub use libsignal_protocol;
