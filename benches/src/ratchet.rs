//! Two parties of a Signal session, in each of the stores the ratchet benchmark compares.
//!
//! Every implementation of [`Party`] does the same protocol work (publish a bundle with fresh
//! one-time prekeys, run PQXDH from a peer's bundle, encrypt, decrypt) so that the benchmark
//! measures only what each store adds around libsignal:
//!
//! - [`RawParty`]: libsignal's own `InMemSignalProtocolStore`, the baseline;
//! - [`CoreParty`]: `tigress-core`'s sled store, one transaction per operation, committed with
//!   [`Durability::Buffered`] as the SDK does between its flushes;
//! - [`ShareParty`]: a [`CoreParty`] whose payloads travel as padded share messages, as the SDK
//!   sends a credential.

use std::future::Future;
use std::time::SystemTime;

use futures_util::FutureExt as _;
use libsignal_protocol::{
    GenericSignedPreKey as _, IdentityKeyPair, InMemSignalProtocolStore, KeyPair, KyberPreKeyId,
    KyberPreKeyRecord, KyberPreKeyStore as _, PreKeyBundle, PreKeyId, PreKeyRecord,
    PreKeySignalMessage, PreKeyStore as _, SignalMessage, SignedPreKeyId, SignedPreKeyRecord,
    SignedPreKeyStore as _, Timestamp, kem, message_decrypt_prekey, message_decrypt_signal,
    message_encrypt, process_prekey_bundle,
};
use rand::rngs::ThreadRng;
use tempfile::TempDir;
use tigress_core::keys::BundleParts;
use tigress_core::share::{
    DisplayInformation, MAX_PROVISIONING_INFORMATION_LEN, ShareBody, ShareId, ShareMessage,
    ShareMode, ShareOffer,
};
use tigress_core::{Ciphertext, CiphertextKind, DeviceAddress, Durability, Store};
use uuid::Uuid;

/// A failure of a fixture. Benchmarks stop on it: every operation here must succeed.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// libsignal rejected an operation on its in-memory store.
    #[error("libsignal: {0}")]
    Protocol(#[from] libsignal_protocol::SignalProtocolError),
    /// The protocol core rejected an operation.
    #[error("tigress-core: {0}")]
    Core(#[from] tigress_core::Error),
    /// A temporary folder for a sled store could not be made.
    #[error("temporary folder: {0}")]
    TempDir(#[from] std::io::Error),
    /// A decrypted share message carried something other than the offer that was sent.
    #[error("decrypted share message is not an offer")]
    NotAnOffer,
    /// The core generated fewer prekeys than a bundle needs.
    #[error("the core generated no {0}")]
    MissingPrekey(&'static str),
    /// A libsignal store future waited, which the in-memory store never does.
    #[error("libsignal's in-memory store did not complete {0} at once")]
    Pending(&'static str),
}

/// The result of a fixture operation.
pub type Result<T> = std::result::Result<T, FixtureError>;

/// One side of a Signal session.
pub trait Party {
    /// Returns a bundle with a fresh one-time EC prekey and a fresh one-time Kyber prekey, as
    /// the relay hands out for a new session.
    fn publish_bundle(&mut self, own_address: &DeviceAddress) -> Result<PreKeyBundle>;

    /// Runs the initiator's side of PQXDH with `peer`'s bundle.
    fn start_session(&mut self, peer: &DeviceAddress, bundle: &PreKeyBundle) -> Result<()>;

    /// Encrypts `payload` for `peer`.
    fn encrypt(&mut self, peer: &DeviceAddress, payload: &[u8]) -> Result<Ciphertext>;

    /// Decrypts a message from `peer` and returns its payload.
    fn decrypt(&mut self, peer: &DeviceAddress, ciphertext: &Ciphertext) -> Result<Vec<u8>>;
}

/// Returns the address of the `index`th peer of a benchmark, so that each new session has an
/// address that no earlier session used.
pub fn peer_address(index: u64) -> DeviceAddress {
    DeviceAddress::primary(Uuid::from_u64_pair(0x7469_6772_6573_7300, index))
}

/// Two parties with an established session in both directions: Alice opened it from Bob's
/// bundle and Bob has replied, so every further message is a plain Signal message.
pub struct Session<P> {
    /// The initiator.
    pub alice: P,
    /// The responder.
    pub bob: P,
    /// Alice's address in Bob's store.
    pub alice_address: DeviceAddress,
    /// Bob's address in Alice's store.
    pub bob_address: DeviceAddress,
}

impl<P: Party> Session<P> {
    /// Establishes a session between two new parties.
    ///
    /// # Errors
    ///
    /// Any failure of the underlying parties.
    pub fn establish(mut alice: P, mut bob: P) -> Result<Self> {
        let (alice_address, bob_address) = (peer_address(0), peer_address(1));

        let bundle = bob.publish_bundle(&bob_address)?;
        alice.start_session(&bob_address, &bundle)?;
        let first = alice.encrypt(&bob_address, b"hello")?;
        bob.decrypt(&alice_address, &first)?;
        let reply = bob.encrypt(&alice_address, b"hello")?;
        alice.decrypt(&bob_address, &reply)?;

        Ok(Self {
            alice,
            bob,
            alice_address,
            bob_address,
        })
    }

    /// Sends `payload` from Alice to Bob and back, which makes each side take a DH ratchet step.
    ///
    /// # Errors
    ///
    /// Any failure of the underlying parties.
    pub fn round_trip(&mut self, payload: &[u8]) -> Result<()> {
        let to_bob = self.alice.encrypt(&self.bob_address, payload)?;
        self.bob.decrypt(&self.alice_address, &to_bob)?;
        let to_alice = self.bob.encrypt(&self.alice_address, payload)?;
        self.alice.decrypt(&self.bob_address, &to_alice)?;
        Ok(())
    }
}

/// The baseline: libsignal with its in-memory reference store.
pub struct RawParty {
    store: InMemSignalProtocolStore,
    identity: IdentityKeyPair,
    next_prekey_id: u32,
    rng: ThreadRng,
}

impl RawParty {
    /// The id of the party's one signed prekey.
    const SIGNED_PREKEY_ID: u32 = 1;

    /// Creates a party with a new identity and a signed prekey.
    ///
    /// # Errors
    ///
    /// [`FixtureError::Protocol`] when libsignal fails to sign or store a key.
    pub fn new() -> Result<Self> {
        let mut rng = rand::rng();
        let identity = IdentityKeyPair::generate(&mut rng);
        let mut store = InMemSignalProtocolStore::new(identity, 1)?;

        let signed = KeyPair::generate(&mut rng);
        let signature = identity
            .private_key()
            .calculate_signature(&signed.public_key.serialize(), &mut rng)
            .map_err(libsignal_protocol::SignalProtocolError::from)?;
        let record = SignedPreKeyRecord::new(
            SignedPreKeyId::from(Self::SIGNED_PREKEY_ID),
            Timestamp::from_epoch_millis(0),
            &signed,
            &signature,
        );
        run_now(
            "save_signed_pre_key",
            store.save_signed_pre_key(SignedPreKeyId::from(Self::SIGNED_PREKEY_ID), &record),
        )??;

        Ok(Self {
            store,
            identity,
            next_prekey_id: 1,
            rng,
        })
    }
}

impl Party for RawParty {
    fn publish_bundle(&mut self, own_address: &DeviceAddress) -> Result<PreKeyBundle> {
        let id = self.next_prekey_id;
        self.next_prekey_id += 1;

        let prekey = KeyPair::generate(&mut self.rng);
        run_now(
            "save_pre_key",
            self.store.save_pre_key(
                PreKeyId::from(id),
                &PreKeyRecord::new(PreKeyId::from(id), &prekey),
            ),
        )??;
        let kyber = KyberPreKeyRecord::generate(
            kem::KeyType::Kyber1024,
            KyberPreKeyId::from(id),
            self.identity.private_key(),
        )?;
        run_now(
            "save_kyber_pre_key",
            self.store
                .save_kyber_pre_key(KyberPreKeyId::from(id), &kyber),
        )??;
        let signed = run_now(
            "get_signed_pre_key",
            self.store
                .get_signed_pre_key(SignedPreKeyId::from(Self::SIGNED_PREKEY_ID)),
        )??;

        Ok(PreKeyBundle::new(
            1,
            own_address.device_id(),
            Some((PreKeyId::from(id), prekey.public_key)),
            SignedPreKeyId::from(Self::SIGNED_PREKEY_ID),
            signed.public_key()?,
            signed.signature()?,
            KyberPreKeyId::from(id),
            kyber.public_key()?,
            kyber.signature()?,
            *self.identity.identity_key(),
        )?)
    }

    fn start_session(&mut self, peer: &DeviceAddress, bundle: &PreKeyBundle) -> Result<()> {
        let store = &mut self.store;
        run_now(
            "process_prekey_bundle",
            process_prekey_bundle(
                &peer.to_protocol_address(),
                &mut store.session_store,
                &mut store.identity_store,
                bundle,
                SystemTime::now(),
                &mut self.rng,
            ),
        )??;
        Ok(())
    }

    fn encrypt(&mut self, peer: &DeviceAddress, payload: &[u8]) -> Result<Ciphertext> {
        let store = &mut self.store;
        let message = run_now(
            "message_encrypt",
            message_encrypt(
                payload,
                &peer.to_protocol_address(),
                &mut store.session_store,
                &mut store.identity_store,
                SystemTime::now(),
                &mut self.rng,
            ),
        )??;
        Ok(Ciphertext {
            kind: CiphertextKind::from(&message),
            bytes: message.serialize().to_vec(),
        })
    }

    fn decrypt(&mut self, peer: &DeviceAddress, ciphertext: &Ciphertext) -> Result<Vec<u8>> {
        let address = peer.to_protocol_address();
        let store = &mut self.store;
        let plaintext = match ciphertext.kind {
            CiphertextKind::PreKey => {
                let message = PreKeySignalMessage::try_from(ciphertext.bytes.as_slice())?;
                run_now(
                    "message_decrypt_prekey",
                    message_decrypt_prekey(
                        &message,
                        &address,
                        &mut store.session_store,
                        &mut store.identity_store,
                        &mut store.pre_key_store,
                        &store.signed_pre_key_store,
                        &mut store.kyber_pre_key_store,
                        &mut self.rng,
                    ),
                )??
            }
            CiphertextKind::Whisper => {
                let message = SignalMessage::try_from(ciphertext.bytes.as_slice())?;
                run_now(
                    "message_decrypt_signal",
                    message_decrypt_signal(
                        &message,
                        &address,
                        &mut store.session_store,
                        &mut store.identity_store,
                        &mut self.rng,
                    ),
                )??
            }
        };
        Ok(plaintext)
    }
}

/// The protocol core over its durable sled store, in a temporary folder of its own.
pub struct CoreParty {
    store: Store,
    rng: ThreadRng,
    _folder: TempDir,
}

impl CoreParty {
    /// Creates a party with a new identity, a signed prekey and a last-resort Kyber prekey in
    /// a new store.
    ///
    /// # Errors
    ///
    /// [`FixtureError::TempDir`] or [`FixtureError::Core`].
    pub fn new() -> Result<Self> {
        let folder = tempfile::tempdir()?;
        let store = Store::open(folder.path())?;
        let mut rng = rand::rng();

        let txn = store.transaction();
        txn.create_identity(&mut rng)?;
        txn.generate_signed_prekey(SystemTime::now(), &mut rng)?;
        txn.generate_last_resort_kyber_prekey(SystemTime::now(), &mut rng)?;
        txn.commit(Durability::Flushed)?;

        Ok(Self {
            store,
            rng,
            _folder: folder,
        })
    }

    /// Writes every committed change to disk, as the SDK does once before it sends a batch of
    /// messages or acknowledges a batch of envelopes.
    ///
    /// # Errors
    ///
    /// [`FixtureError::Core`] when the flush fails.
    pub fn flush(&self) -> Result<()> {
        Ok(self.store.flush()?)
    }
}

impl Party for CoreParty {
    fn publish_bundle(&mut self, own_address: &DeviceAddress) -> Result<PreKeyBundle> {
        let now = SystemTime::now();
        let txn = self.store.transaction();
        let registration_id = txn.local_registration_id()?;
        let identity_key = txn.local_identity()?.identity_key().serialize().to_vec();
        let signed = txn.generate_signed_prekey(now, &mut self.rng)?;
        let mut prekeys = txn.generate_one_time_prekeys(1, &mut self.rng)?;
        let mut kyber = txn.generate_one_time_kyber_prekeys(1, now, &mut self.rng)?;
        txn.commit(Durability::Buffered)?;

        let prekey = prekeys
            .pop()
            .ok_or(FixtureError::MissingPrekey("one-time prekey"))?;
        let kyber = kyber
            .pop()
            .ok_or(FixtureError::MissingPrekey("Kyber prekey"))?;
        let parts = BundleParts {
            registration_id,
            identity_key,
            signed_prekey: (signed.id, signed.public_key, signed.signature),
            one_time_prekey: Some((prekey.id, prekey.public_key)),
            kyber_prekey: (kyber.id, kyber.public_key, kyber.signature),
        };
        Ok(parts.into_bundle(own_address)?)
    }

    fn start_session(&mut self, peer: &DeviceAddress, bundle: &PreKeyBundle) -> Result<()> {
        let txn = self.store.transaction();
        txn.start_session(peer, bundle, SystemTime::now(), &mut self.rng)?;
        txn.commit(Durability::Buffered)?;
        Ok(())
    }

    fn encrypt(&mut self, peer: &DeviceAddress, payload: &[u8]) -> Result<Ciphertext> {
        let txn = self.store.transaction();
        let ciphertext = txn.encrypt(peer, payload, SystemTime::now(), &mut self.rng)?;
        txn.commit(Durability::Buffered)?;
        Ok(ciphertext)
    }

    fn decrypt(&mut self, peer: &DeviceAddress, ciphertext: &Ciphertext) -> Result<Vec<u8>> {
        let txn = self.store.transaction();
        let plaintext = txn.decrypt(peer, ciphertext, &mut self.rng)?;
        txn.commit(Durability::Buffered)?;
        Ok(plaintext)
    }
}

/// A [`CoreParty`] whose payloads are credentials in stateless share offers: padded and encoded
/// before encryption, decoded and checked after decryption.
pub struct ShareParty {
    core: CoreParty,
    rng: ThreadRng,
}

impl ShareParty {
    /// Creates a party over a new [`CoreParty`].
    ///
    /// # Errors
    ///
    /// As [`CoreParty::new`].
    pub fn new() -> Result<Self> {
        Ok(Self {
            core: CoreParty::new()?,
            rng: rand::rng(),
        })
    }

    /// Returns the credential size a benchmark of `size` plaintext bytes sends: `size` itself,
    /// or the largest credential a share carries when `size` does not fit.
    pub fn credential_size(size: usize) -> usize {
        size.min(MAX_PROVISIONING_INFORMATION_LEN)
    }
}

impl Party for ShareParty {
    fn publish_bundle(&mut self, own_address: &DeviceAddress) -> Result<PreKeyBundle> {
        self.core.publish_bundle(own_address)
    }

    fn start_session(&mut self, peer: &DeviceAddress, bundle: &PreKeyBundle) -> Result<()> {
        self.core.start_session(peer, bundle)
    }

    fn encrypt(&mut self, peer: &DeviceAddress, payload: &[u8]) -> Result<Ciphertext> {
        let credential = &payload[..Self::credential_size(payload.len())];
        let message = ShareMessage {
            share_id: ShareId::random(&mut self.rng),
            sent_at_ms: 0,
            body: ShareBody::Offer(ShareOffer {
                mode: ShareMode::Stateless,
                display: DisplayInformation {
                    title: "Benchmark credential".to_owned(),
                    size_bytes: credential.len() as u64,
                    file_name: "credential.bin".to_owned(),
                    ..DisplayInformation::default()
                },
                provisioning_information: credential.to_vec(),
                expires_at_ms: None,
                x509_policy: None,
            }),
        };
        let plaintext = message.encode_padded()?;
        self.core.encrypt(peer, &plaintext)
    }

    fn decrypt(&mut self, peer: &DeviceAddress, ciphertext: &Ciphertext) -> Result<Vec<u8>> {
        let plaintext = self.core.decrypt(peer, ciphertext)?;
        match ShareMessage::decode_padded(&plaintext)?.body {
            ShareBody::Offer(offer) => Ok(offer.provisioning_information),
            _ => Err(FixtureError::NotAnOffer),
        }
    }
}

/// Completes a future of libsignal's in-memory store, which never waits, in one poll.
fn run_now<F: Future>(op: &'static str, future: F) -> Result<F::Output> {
    future.now_or_never().ok_or(FixtureError::Pending(op))
}
