//! Devices with real sled stores in temporary folders, for the core's integration tests.

#![allow(dead_code)]

use std::time::SystemTime;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tempfile::TempDir;
use tigress_core::keys::BundleParts;
use tigress_core::libsignal_protocol::PreKeyBundle;
use tigress_core::prekeys::{PublicPreKey, PublicSignedKey};
use tigress_core::{Ciphertext, DeviceAddress, Durability, Store};

/// A device with a store, an address and the public halves of its prekeys, standing in for
/// what the relay would hold.
pub(crate) struct TestDevice {
    pub(crate) folder: TempDir,
    pub(crate) store: Option<Store>,
    pub(crate) address: DeviceAddress,
    pub(crate) signed_prekey: PublicSignedKey,
    pub(crate) last_resort: PublicSignedKey,
    pub(crate) one_time_prekeys: Vec<PublicPreKey>,
    pub(crate) one_time_kyber_prekeys: Vec<PublicSignedKey>,
    pub(crate) rng: ChaCha20Rng,
}

impl TestDevice {
    /// Creates a device whose keys come from `seed`, with three one-time prekeys of each kind.
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let folder = tempfile::tempdir().unwrap();
        let store = Store::open(folder.path()).unwrap();
        let address = DeviceAddress::primary(
            uuid::Builder::from_random_bytes(rand::Rng::random(&mut rng)).into_uuid(),
        );
        let now = SystemTime::now();

        let txn = store.transaction();
        txn.create_identity(&mut rng).unwrap();
        let signed_prekey = txn.generate_signed_prekey(now, &mut rng).unwrap();
        let last_resort = txn
            .generate_last_resort_kyber_prekey(now, &mut rng)
            .unwrap();
        let one_time_prekeys = txn.generate_one_time_prekeys(3, &mut rng).unwrap();
        let one_time_kyber_prekeys = txn
            .generate_one_time_kyber_prekeys(3, now, &mut rng)
            .unwrap();
        txn.commit(Durability::Flushed).unwrap();

        Self {
            folder,
            store: Some(store),
            address,
            signed_prekey,
            last_resort,
            one_time_prekeys,
            one_time_kyber_prekeys,
            rng,
        }
    }

    pub(crate) fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    /// Closes the store and opens it again from its folder.
    pub(crate) fn reopen(&mut self) {
        self.store = None;
        self.store = Some(Store::open(self.folder.path()).unwrap());
    }

    /// Takes a bundle as the relay would serve it: one one-time key of each kind while they
    /// last, then the last-resort Kyber key and no one-time EC key.
    pub(crate) fn take_bundle(&mut self) -> PreKeyBundle {
        let one_time_prekey = self
            .one_time_prekeys
            .pop()
            .map(|key| (key.id, key.public_key));
        let kyber = self
            .one_time_kyber_prekeys
            .pop()
            .unwrap_or_else(|| self.last_resort.clone());
        let txn = self.store().transaction();
        let parts = BundleParts {
            registration_id: txn.local_registration_id().unwrap(),
            identity_key: txn
                .local_identity()
                .unwrap()
                .identity_key()
                .serialize()
                .to_vec(),
            signed_prekey: (
                self.signed_prekey.id,
                self.signed_prekey.public_key.clone(),
                self.signed_prekey.signature.clone(),
            ),
            one_time_prekey,
            kyber_prekey: (kyber.id, kyber.public_key, kyber.signature),
        };
        parts.into_bundle(&self.address).unwrap()
    }

    /// Opens a session with `peer` from one of its bundles.
    pub(crate) fn start_session_with(&mut self, peer: &mut TestDevice) {
        let bundle = peer.take_bundle();
        let txn = self.store.as_ref().unwrap().transaction();
        txn.start_session(&peer.address, &bundle, SystemTime::now(), &mut self.rng)
            .unwrap();
        txn.commit(Durability::Flushed).unwrap();
    }

    /// Encrypts `plaintext` for `to` and commits the session.
    pub(crate) fn encrypt_for(&mut self, to: &DeviceAddress, plaintext: &[u8]) -> Ciphertext {
        let txn = self.store.as_ref().unwrap().transaction();
        let ciphertext = txn
            .encrypt(to, plaintext, SystemTime::now(), &mut self.rng)
            .unwrap();
        txn.commit(Durability::Flushed).unwrap();
        ciphertext
    }

    /// Decrypts a message from `from`, committing only on success.
    pub(crate) fn decrypt_from(
        &mut self,
        from: &DeviceAddress,
        ciphertext: &Ciphertext,
    ) -> tigress_core::Result<Vec<u8>> {
        let txn = self.store.as_ref().unwrap().transaction();
        let plaintext = txn.decrypt(from, ciphertext, &mut self.rng)?;
        txn.commit(Durability::Flushed)?;
        Ok(plaintext)
    }
}
