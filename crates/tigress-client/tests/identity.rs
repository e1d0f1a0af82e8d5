//! Identity verification through the SDK: safety numbers agree on both devices, and a changed
//! identity key stops a peer's messages until it is trusted.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::{TestRelay, device, kinds, offer};
use tigress_client::Event;
use tigress_relay::storage::{NewDevice, SledStorage, Storage};

#[tokio::test]
async fn safety_numbers_agree_on_both_devices() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = device(&relay, &homes.0).await;
    let bob = device(&relay, &homes.1).await;

    let on_alice = alice.verify(&bob.address().unwrap()).await.unwrap();
    let on_bob = bob.verify(&alice.address().unwrap()).await.unwrap();
    assert_eq!(on_alice, on_bob);
    let groups: Vec<&str> = on_alice.split(' ').collect();
    assert_eq!(groups.len(), 12);
    assert!(
        groups
            .iter()
            .all(|group| group.len() == 5 && group.bytes().all(|byte| byte.is_ascii_digit()))
    );

    let half = alice.info().unwrap().safety_number_half;
    assert!(on_alice.contains(&half), "{on_alice} lacks {half}");
    relay.stop().await;
}

/// A relay that forges: it delivers Mallory's message to Alice as if from Bob, and serves
/// Mallory's keys for Bob's address.
#[tokio::test]
async fn changed_identity_holds_messages_until_trusted() {
    let mut relay = TestRelay::start().await;
    let homes = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let alice = device(&relay, &homes.0).await;
    let bob = device(&relay, &homes.1).await;
    let mallory = device(&relay, &homes.2).await;
    let (alice_address, bob_address) = (alice.address().unwrap(), bob.address().unwrap());
    let before = alice.verify(&bob_address).await.unwrap();
    mallory
        .share(offer(&alice, b"fake key", "t"))
        .await
        .unwrap();

    relay.stop().await;
    {
        let storage = SledStorage::open(relay.data.path()).unwrap();
        let queued = storage
            .fetch(alice_address.uuid(), 0, 10, 1 << 20)
            .await
            .unwrap()
            .envelopes;
        let mut forged = queued[0].clone();
        storage
            .acknowledge(alice_address.uuid(), &[forged.id])
            .await
            .unwrap();
        forged.source = bob_address.to_string();
        forged.client_message_id = vec![9; 16];
        storage
            .enqueue(
                alice_address.uuid(),
                bob_address.uuid(),
                forged,
                tigress_relay::storage::MailboxQuota {
                    max_envelopes: 100,
                    max_bytes: 1 << 20,
                },
            )
            .await
            .unwrap();

        let mut record = std::sync::Arc::unwrap_or_clone(
            storage
                .device(mallory.address().unwrap().uuid())
                .await
                .unwrap()
                .unwrap(),
        );
        record.credential_hash = storage
            .device(bob_address.uuid())
            .await
            .unwrap()
            .unwrap()
            .credential_hash
            .clone();
        storage.delete_device(bob_address.uuid()).await.unwrap();
        let swapped = NewDevice {
            uuid: bob_address.uuid(),
            record,
            one_time_prekeys: Vec::new(),
            one_time_kyber_prekeys: Vec::new(),
        };
        storage.create_device(swapped).await.unwrap();
    }
    relay.resume().await;

    let events = alice.sync().await.unwrap();
    assert_eq!(
        events,
        vec![Event::IdentityChanged {
            address: bob_address.to_string()
        }]
    );
    assert_eq!(
        kinds(&alice.sync().await.unwrap()),
        ["identity_changed"],
        "the held message was dropped"
    );
    assert!(alice.received_shares().unwrap().is_empty());
    assert_eq!(
        alice.verify(&bob_address).await.unwrap(),
        before,
        "verify trusted the new key by itself"
    );

    let after = alice.trust(&bob_address).await.unwrap();
    assert_ne!(after, before);
    assert_eq!(kinds(&alice.sync().await.unwrap()), ["offer_received"]);
    relay.stop().await;
}
