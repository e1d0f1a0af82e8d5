//! Sessions between two devices with sled stores: PQXDH set-up, the Double Ratchet across
//! reopened stores, out-of-order and duplicate delivery (also in random orders across ratchet
//! steps), prekey consumption and identity changes.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;

use proptest::prelude::*;
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha20Rng;
use support::TestDevice;
use tigress_core::libsignal_protocol::{KyberPreKeyId, PreKeyId};
use tigress_core::{CiphertextKind, Error};

#[test]
fn first_message_is_prekey_then_whisper() {
    let (mut alice, mut bob) = (TestDevice::new(1), TestDevice::new(2));
    alice.start_session_with(&mut bob);

    let first = alice.encrypt_for(&bob.address, b"offer");
    assert_eq!(first.kind, CiphertextKind::PreKey);
    assert_eq!(bob.decrypt_from(&alice.address, &first).unwrap(), b"offer");

    let reply = bob.encrypt_for(&alice.address, b"completed");
    assert_eq!(reply.kind, CiphertextKind::Whisper);
    assert_eq!(
        alice.decrypt_from(&bob.address, &reply).unwrap(),
        b"completed"
    );

    let next = alice.encrypt_for(&bob.address, b"again");
    assert_eq!(
        next.kind,
        CiphertextKind::Whisper,
        "answered session still sends PreKey messages"
    );
    assert_eq!(bob.decrypt_from(&alice.address, &next).unwrap(), b"again");
}

#[test]
fn session_survives_reopening_both_stores() {
    let (mut alice, mut bob) = (TestDevice::new(3), TestDevice::new(4));
    alice.start_session_with(&mut bob);
    let first = alice.encrypt_for(&bob.address, b"one");
    bob.decrypt_from(&alice.address, &first).unwrap();

    alice.reopen();
    bob.reopen();

    let reply = bob.encrypt_for(&alice.address, b"two");
    assert_eq!(alice.decrypt_from(&bob.address, &reply).unwrap(), b"two");
    let next = alice.encrypt_for(&bob.address, b"three");
    assert_eq!(bob.decrypt_from(&alice.address, &next).unwrap(), b"three");
}

#[test]
fn out_of_order_messages_decrypt() {
    let (mut alice, mut bob) = (TestDevice::new(5), TestDevice::new(6));
    alice.start_session_with(&mut bob);
    let messages: Vec<_> = (0..5)
        .map(|i| alice.encrypt_for(&bob.address, format!("m{i}").as_bytes()))
        .collect();

    for i in [3, 0, 4, 1, 2] {
        let plaintext = bob.decrypt_from(&alice.address, &messages[i]).unwrap();
        assert_eq!(plaintext, format!("m{i}").as_bytes());
    }
}

#[test]
fn duplicate_message_is_reported() {
    let (mut alice, mut bob) = (TestDevice::new(7), TestDevice::new(8));
    alice.start_session_with(&mut bob);
    let first = alice.encrypt_for(&bob.address, b"one");
    bob.decrypt_from(&alice.address, &first).unwrap();
    let reply = bob.encrypt_for(&alice.address, b"ack");
    alice.decrypt_from(&bob.address, &reply).unwrap();

    let whisper = alice.encrypt_for(&bob.address, b"two");
    bob.decrypt_from(&alice.address, &whisper).unwrap();
    let error = bob.decrypt_from(&alice.address, &whisper).unwrap_err();
    assert!(matches!(error, Error::DuplicateMessage { .. }), "{error}");
}

#[test]
fn one_time_prekeys_are_removed_after_use() {
    let (mut alice, mut bob) = (TestDevice::new(9), TestDevice::new(10));
    let prekey_id = bob.one_time_prekeys.last().unwrap().id;
    let kyber_id = bob.one_time_kyber_prekeys.last().unwrap().id;
    alice.start_session_with(&mut bob);
    let first = alice.encrypt_for(&bob.address, b"one");
    bob.decrypt_from(&alice.address, &first).unwrap();

    let txn = bob.store().transaction();
    assert!(txn.prekey(PreKeyId::from(prekey_id)).unwrap().is_none());
    assert!(
        txn.kyber_prekey(KyberPreKeyId::from(kyber_id))
            .unwrap()
            .is_none()
    );
    assert_eq!(txn.prekey_count().unwrap(), 2);
}

#[test]
fn last_resort_replay_is_rejected() {
    let (mut alice, mut bob) = (TestDevice::new(11), TestDevice::new(12));
    bob.one_time_prekeys.clear();
    bob.one_time_kyber_prekeys.clear();
    alice.start_session_with(&mut bob);
    let first = alice.encrypt_for(&bob.address, b"one");
    bob.decrypt_from(&alice.address, &first).unwrap();

    let last_resort = KyberPreKeyId::from(bob.last_resort.id);
    assert!(
        bob.store()
            .transaction()
            .kyber_prekey(last_resort)
            .unwrap()
            .is_some(),
        "last-resort key deleted"
    );
    assert!(
        bob.decrypt_from(&alice.address, &first).is_err(),
        "replayed PreKey message accepted"
    );
}

#[test]
fn tampered_ciphertext_changes_nothing() {
    let (mut alice, mut bob) = (TestDevice::new(13), TestDevice::new(14));
    alice.start_session_with(&mut bob);
    let first = alice.encrypt_for(&bob.address, b"credential");
    let mut tampered = first.clone();
    let last = tampered.bytes.len() - 1;
    tampered.bytes[last] ^= 0x01;

    assert!(bob.decrypt_from(&alice.address, &tampered).is_err());
    assert_eq!(
        bob.store().transaction().prekey_count().unwrap(),
        3,
        "failed decrypt consumed a prekey"
    );
    assert_eq!(
        bob.decrypt_from(&alice.address, &first).unwrap(),
        b"credential"
    );
}

#[test]
fn changed_identity_blocks_new_session() {
    let (mut alice, mut bob) = (TestDevice::new(15), TestDevice::new(16));
    alice.start_session_with(&mut bob);
    let first = alice.encrypt_for(&bob.address, b"one");
    bob.decrypt_from(&alice.address, &first).unwrap();

    let mut impostor = TestDevice::new(17);
    impostor.address = bob.address;
    let bundle = impostor.take_bundle();
    let txn = alice.store().transaction();
    let error = txn
        .start_session(
            &bob.address,
            &bundle,
            std::time::SystemTime::now(),
            &mut rand::rng(),
        )
        .unwrap_err();
    assert!(
        matches!(&error, Error::IdentityChanged { address } if *address == bob.address.to_string()),
        "{error}"
    );
}

#[test]
fn whisper_without_session_is_session_not_found() {
    let (mut alice, mut bob) = (TestDevice::new(18), TestDevice::new(19));
    alice.start_session_with(&mut bob);
    let first = alice.encrypt_for(&bob.address, b"one");
    let as_whisper = tigress_core::Ciphertext {
        kind: CiphertextKind::Whisper,
        bytes: first.bytes,
    };
    assert!(bob.decrypt_from(&alice.address, &as_whisper).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_plaintexts_round_trip_proptest(
        seed in any::<u64>(),
        plaintexts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8192), 1..6),
    ) {
        let (mut alice, mut bob) = (TestDevice::new(seed), TestDevice::new(seed.wrapping_add(1)));
        alice.start_session_with(&mut bob);
        for (i, plaintext) in plaintexts.iter().enumerate() {
            let (sender, receiver) = if i % 2 == 0 { (&mut alice, &mut bob) } else { (&mut bob, &mut alice) };
            let ciphertext = sender.encrypt_for(&receiver.address, plaintext);
            prop_assert_eq!(&receiver.decrypt_from(&sender.address, &ciphertext).unwrap(), plaintext);
        }
    }

    /// Alice sends `batches` of messages, each batch on a new chain once Bob has replied to
    /// the one before. After each batch, random messages from every batch so far reach Bob in
    /// random order: some never, some twice. Each message decrypts the first time it arrives,
    /// and is reported as a duplicate after that.
    #[test]
    fn any_delivery_order_decrypts_each_message_once(
        seed in any::<u64>(),
        batches in proptest::collection::vec(1usize..6, 1..4),
    ) {
        let (mut alice, mut bob) = (TestDevice::new(seed), TestDevice::new(seed.wrapping_add(1)));
        let mut order = ChaCha20Rng::seed_from_u64(seed);
        alice.start_session_with(&mut bob);

        let mut pool = Vec::new();
        let mut delivered = HashSet::new();
        for (batch, size) in batches.into_iter().enumerate() {
            for index in 0..size {
                let plaintext = format!("batch {batch} message {index}").into_bytes();
                let ciphertext = alice.encrypt_for(&bob.address, &plaintext);
                pool.push((plaintext, ciphertext));
            }

            // Deliver a random selection of everything sent so far, with repeats.
            for _ in 0..pool.len() {
                let pick = order.random_range(0..pool.len());
                let (plaintext, ciphertext) = &pool[pick];
                let result = bob.decrypt_from(&alice.address, ciphertext);
                if delivered.insert(pick) {
                    prop_assert_eq!(&result.unwrap(), plaintext);
                } else {
                    prop_assert!(
                        matches!(result, Err(Error::DuplicateMessage { .. })),
                        "a repeat of message {} gave {:?}", pick, result
                    );
                }
            }

            // Bob's reply moves Alice to a new sending chain, once Bob has a session.
            if !delivered.is_empty() {
                let reply = bob.encrypt_for(&alice.address, b"reply");
                prop_assert_eq!(alice.decrypt_from(&bob.address, &reply).unwrap(), b"reply".to_vec());
            }
        }
    }
}
