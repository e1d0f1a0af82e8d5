//! The envelope target: a device decrypting an envelope from the relay and decoding the share
//! message inside, as the SDK does for every envelope it fetches.
//!
//! Bob's store has a session with Alice, and Carol has a fresh session from Bob's bundle
//! whose first message Bob has not seen. The first byte of an input picks how Bob reads the
//! rest: bit 0 a PreKey message (set) or a Signal message, bit 1 from Carol (set) or from
//! Alice. Bob decrypts in a transaction that is never committed, so every input meets the same
//! session state and a run is repeatable.

use std::cell::RefCell;
use std::time::SystemTime;

use anyhow::Context as _;
use tempfile::TempDir;
use tigress_core::keys::BundleParts;
use tigress_core::share::ShareMessage;
use tigress_core::{Ciphertext, CiphertextKind, DeviceAddress, Durability, Store};

/// A device's store in a temporary folder of its own.
pub(crate) struct Device {
    pub(crate) store: Store,
    pub(crate) address: DeviceAddress,
    _folder: TempDir,
}

/// Bob, who reads the inputs, and the two peers he may read them from.
pub(crate) struct Fixture {
    pub(crate) alice: Device,
    pub(crate) bob: Device,
    pub(crate) carol: Device,
}

thread_local! {
    /// The fixture, or why it could not be built, once the first input has needed it.
    static FIXTURE: RefCell<Option<Result<Fixture, String>>> = const { RefCell::new(None) };
}

/// Decrypts `data` as an envelope to Bob, and decodes the share message when it decrypts.
pub fn envelope(data: &[u8]) {
    let _ = open_envelope(data);
}

/// Returns the share message in `data` when Bob can decrypt and decode it.
pub fn open_envelope(data: &[u8]) -> Option<ShareMessage> {
    let (&selector, bytes) = data.split_first()?;
    let kind = if selector & 1 == 1 {
        CiphertextKind::PreKey
    } else {
        CiphertextKind::Whisper
    };
    let ciphertext = Ciphertext {
        kind,
        bytes: bytes.to_vec(),
    };
    with_fixture(|fixture| {
        let source = if selector & 2 == 2 {
            &fixture.carol.address
        } else {
            &fixture.alice.address
        };
        // Dropped without a commit: nothing an input does reaches the store.
        let txn = fixture.bob.store.transaction();
        let plaintext = txn.decrypt(source, &ciphertext, &mut rand::rng()).ok()?;
        ShareMessage::decode_padded(&plaintext).ok()
    })
    .ok()
    .flatten()
}

/// Runs `f` on this thread's fixture, building it on first use.
///
/// # Errors
///
/// When the fixture cannot be built: a broken temporary folder or store, never an input.
pub(crate) fn with_fixture<T>(f: impl FnOnce(&Fixture) -> T) -> anyhow::Result<T> {
    FIXTURE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let built =
            slot.get_or_insert_with(|| Fixture::build().map_err(|error| format!("{error:#}")));
        match built {
            Ok(fixture) => Ok(f(fixture)),
            Err(message) => anyhow::bail!("failed to build the envelope fixture: {message}"),
        }
    })
}

impl Fixture {
    fn build() -> anyhow::Result<Self> {
        let alice = Device::new(1)?;
        let bob = Device::new(2)?;
        let carol = Device::new(3)?;

        alice.start_session(&bob)?;
        let hello = alice.encrypt(&bob.address, b"hello")?;
        commit_decrypt(&bob, &alice.address, &hello)?;
        let reply = bob.encrypt(&alice.address, b"hello")?;
        commit_decrypt(&alice, &bob.address, &reply)?;

        carol.start_session(&bob)?;
        Ok(Self { alice, bob, carol })
    }
}

impl Device {
    fn new(index: u8) -> anyhow::Result<Self> {
        let folder = tempfile::tempdir().context("failed to create a store folder")?;
        let store = Store::open(folder.path())?;
        let mut rng = rand::rng();
        let txn = store.transaction();
        txn.create_identity(&mut rng)?;
        txn.generate_signed_prekey(SystemTime::now(), &mut rng)?;
        txn.generate_last_resort_kyber_prekey(SystemTime::now(), &mut rng)?;
        txn.commit(Durability::Buffered)?;

        let address = format!("00000000-0000-4000-8000-0000000000{index:02x}.1").parse()?;
        Ok(Self {
            store,
            address,
            _folder: folder,
        })
    }

    /// Opens a session with `peer` from a bundle with one-time prekeys of each kind.
    fn start_session(&self, peer: &Device) -> anyhow::Result<()> {
        let mut rng = rand::rng();
        let now = SystemTime::now();
        let txn = peer.store.transaction();
        let signed = txn.generate_signed_prekey(now, &mut rng)?;
        let prekey = txn.generate_one_time_prekeys(1, &mut rng)?.pop();
        let kyber = txn.generate_one_time_kyber_prekeys(1, now, &mut rng)?.pop();
        let parts = BundleParts {
            registration_id: txn.local_registration_id()?,
            identity_key: txn.local_identity()?.identity_key().serialize().to_vec(),
            signed_prekey: (signed.id, signed.public_key, signed.signature),
            one_time_prekey: prekey.map(|prekey| (prekey.id, prekey.public_key)),
            kyber_prekey: kyber
                .map(|kyber| (kyber.id, kyber.public_key, kyber.signature))
                .context("no Kyber prekey was generated")?,
        };
        txn.commit(Durability::Buffered)?;

        let bundle = parts.into_bundle(&peer.address)?;
        let txn = self.store.transaction();
        txn.start_session(&peer.address, &bundle, now, &mut rng)?;
        txn.commit(Durability::Buffered)?;
        Ok(())
    }

    /// Encrypts `plaintext` to `peer` and commits the step of the session.
    pub(crate) fn encrypt(
        &self,
        peer: &DeviceAddress,
        plaintext: &[u8],
    ) -> anyhow::Result<Ciphertext> {
        let txn = self.store.transaction();
        let ciphertext = txn.encrypt(peer, plaintext, SystemTime::now(), &mut rand::rng())?;
        txn.commit(Durability::Buffered)?;
        Ok(ciphertext)
    }
}

fn commit_decrypt(
    device: &Device,
    source: &DeviceAddress,
    ciphertext: &Ciphertext,
) -> anyhow::Result<()> {
    let txn = device.store.transaction();
    txn.decrypt(source, ciphertext, &mut rand::rng())?;
    txn.commit(Durability::Buffered)?;
    Ok(())
}
