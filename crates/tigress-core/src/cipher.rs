//! The synchronous session facade: PQXDH from a prekey bundle, then Double Ratchet encryption
//! and decryption, over a store [`Transaction`].
//!
//! libsignal's functions are `async` because its store traits are, and those futures are not
//! `Send`. The sled-backed stores never wait on anything, so each future completes at its first
//! poll; [`run_now`] polls it once and reports [`Error::StorePending`] if it ever does not. The
//! functions here are therefore plain blocking calls that an async caller can make between
//! `.await`s without its own future losing `Send`.
//!
//! [`run_now`] also turns a panic inside libsignal into [`Error::ProtocolPanic`]. With overflow
//! checks on (debug builds), a Signal message whose post-quantum ratchet part claims epoch 0
//! makes libsignal's SPQR code subtract below zero, and a message from the network must never
//! bring the device down.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::SystemTime;

use futures_util::FutureExt as _;
use libsignal_protocol::{
    CiphertextMessage, CiphertextMessageType, PreKeyBundle, PreKeySignalMessage, SignalMessage,
    message_decrypt_prekey, message_decrypt_signal, message_encrypt, process_prekey_bundle,
};
use rand::{CryptoRng, Rng};

use crate::address::DeviceAddress;
use crate::error::{Error, Result};
use crate::store::{ProtocolView, Transaction};

/// The kind of a ciphertext, which decides how it is decrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CiphertextKind {
    /// A PreKeySignalMessage: the first messages of a session, until the peer replies. It
    /// carries the keys the receiver needs to run PQXDH.
    PreKey,
    /// A SignalMessage within an established session.
    Whisper,
}

/// An encrypted message for one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ciphertext {
    /// How to decrypt it.
    pub kind: CiphertextKind,
    /// The serialized libsignal message.
    pub bytes: Vec<u8>,
}

impl Transaction<'_> {
    /// Opens a session with `address` from its prekey bundle (the PQXDH initiator's side).
    ///
    /// # Errors
    ///
    /// [`Error::IdentityChanged`] when the bundle's identity key differs from the one trusted
    /// for `address`; [`Error::Protocol`] when a prekey signature is invalid.
    pub fn start_session<R: Rng + CryptoRng>(
        &self,
        address: &DeviceAddress,
        bundle: &PreKeyBundle,
        now: SystemTime,
        rng: &mut R,
    ) -> Result<()> {
        let protocol_address = address.to_protocol_address();
        let (mut sessions, mut identities) = (ProtocolView(self), ProtocolView(self));
        let future = process_prekey_bundle(
            &protocol_address,
            &mut sessions,
            &mut identities,
            bundle,
            now,
            rng,
        );
        run_now("process_prekey_bundle", future)?
            .map_err(|source| Error::from_protocol(&address.to_string(), source))
    }

    /// Encrypts `plaintext` for `address` within the existing session.
    ///
    /// # Errors
    ///
    /// [`Error::SessionNotFound`] without a session, [`Error::IdentityChanged`] when the
    /// peer's identity key is no longer trusted.
    pub fn encrypt<R: Rng + CryptoRng>(
        &self,
        address: &DeviceAddress,
        plaintext: &[u8],
        now: SystemTime,
        rng: &mut R,
    ) -> Result<Ciphertext> {
        let protocol_address = address.to_protocol_address();
        let (mut sessions, mut identities) = (ProtocolView(self), ProtocolView(self));
        let future = message_encrypt(
            plaintext,
            &protocol_address,
            &mut sessions,
            &mut identities,
            now,
            rng,
        );
        let message = run_now("message_encrypt", future)?
            .map_err(|source| Error::from_protocol(&address.to_string(), source))?;

        let kind = match message.message_type() {
            CiphertextMessageType::PreKey => CiphertextKind::PreKey,
            _ => CiphertextKind::Whisper,
        };
        Ok(Ciphertext {
            kind,
            bytes: message.serialize().to_vec(),
        })
    }

    /// Decrypts a message from `address`, opening a session first if it is a PreKey message.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateMessage`] for a message already decrypted, [`Error::SessionNotFound`]
    /// for a Whisper message without a session, [`Error::IdentityChanged`] when the sender's
    /// identity key is not the trusted one, and [`Error::Protocol`] for anything malformed,
    /// forged or replayed.
    pub fn decrypt<R: Rng + CryptoRng>(
        &self,
        address: &DeviceAddress,
        ciphertext: &Ciphertext,
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        let protocol_address = address.to_protocol_address();
        let to_error = |source| Error::from_protocol(&address.to_string(), source);
        let views = [ProtocolView(self); 5];
        let [
            mut sessions,
            mut identities,
            mut prekeys,
            signed_prekeys,
            mut kyber_prekeys,
        ] = views;

        match ciphertext.kind {
            CiphertextKind::PreKey => {
                let message =
                    PreKeySignalMessage::try_from(ciphertext.bytes.as_slice()).map_err(to_error)?;
                let future = message_decrypt_prekey(
                    &message,
                    &protocol_address,
                    &mut sessions,
                    &mut identities,
                    &mut prekeys,
                    &signed_prekeys,
                    &mut kyber_prekeys,
                    rng,
                );
                run_now("message_decrypt_prekey", future)?.map_err(to_error)
            }
            CiphertextKind::Whisper => {
                let message =
                    SignalMessage::try_from(ciphertext.bytes.as_slice()).map_err(to_error)?;
                let future = message_decrypt_signal(
                    &message,
                    &protocol_address,
                    &mut sessions,
                    &mut identities,
                    rng,
                );
                run_now("message_decrypt_signal", future)?.map_err(to_error)
            }
        }
    }
}

impl From<&CiphertextMessage> for CiphertextKind {
    fn from(message: &CiphertextMessage) -> Self {
        match message.message_type() {
            CiphertextMessageType::PreKey => Self::PreKey,
            _ => Self::Whisper,
        }
    }
}

/// Completes a libsignal store future that never waits, in one poll, and reports a panic
/// inside it as an error.
fn run_now<F: Future>(op: &'static str, future: F) -> Result<F::Output> {
    // What the future wrote before a panic stays in the caller's transaction. The error's
    // documentation says not to commit it, and the SDK drops it.
    let polled = std::panic::catch_unwind(AssertUnwindSafe(|| future.now_or_never()));
    match polled {
        Ok(Some(output)) => Ok(output),
        Ok(None) => Err(Error::StorePending { op }),
        Err(_) => {
            tracing::warn!(
                op,
                "libsignal panicked on its input; the input was rejected"
            );
            Err(Error::ProtocolPanic { op })
        }
    }
}
