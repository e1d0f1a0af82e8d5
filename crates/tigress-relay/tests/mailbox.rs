//! Mailboxes over loopback: send, fetch and acknowledge, idempotent retries, the error codes
//! and persistence across a restart.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::{TestDevice, TestRelay};
use tigress_proto::relay::v1::{
    AcknowledgeEnvelopesRequest, DeleteMailboxRequest, EnvelopeType, FetchEnvelopesRequest,
    GetPreKeyBundleRequest, GetPreKeyCountRequest, RetractEnvelopeRequest, SendEnvelopeRequest,
};
use tonic::Code;

fn envelope_to(destination: &str, client_message_id: u8, content: &[u8]) -> SendEnvelopeRequest {
    SendEnvelopeRequest {
        destination: destination.to_owned(),
        client_message_id: vec![client_message_id; 16],
        r#type: EnvelopeType::SignalMessage.into(),
        content: content.to_vec(),
    }
}

fn fetch(device: &TestDevice) -> tonic::Request<FetchEnvelopesRequest> {
    device.request(FetchEnvelopesRequest {
        address: device.address.clone(),
        limit: 0,
    })
}

#[tokio::test]
async fn envelopes_are_delivered_in_order_until_acknowledged() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 0).await,
    );
    let mut mailbox = relay.mailbox().await;

    for i in 1..=3u8 {
        mailbox
            .send_envelope(alice.request(envelope_to(&bob.address, i, &[i; 40])))
            .await
            .unwrap();
    }
    let fetched = mailbox
        .fetch_envelopes(fetch(&bob))
        .await
        .unwrap()
        .into_inner();
    assert!(!fetched.more);
    let contents: Vec<Vec<u8>> = fetched
        .envelopes
        .iter()
        .map(|envelope| envelope.content.clone())
        .collect();
    assert_eq!(contents, vec![vec![1; 40], vec![2; 40], vec![3; 40]]);
    assert!(
        fetched
            .envelopes
            .iter()
            .all(|envelope| envelope.source == alice.address)
    );

    let again = mailbox
        .fetch_envelopes(fetch(&bob))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.envelopes.len(), 3, "fetch removed envelopes");

    let ids = fetched
        .envelopes
        .iter()
        .take(2)
        .map(|envelope| envelope.id)
        .collect();
    let acknowledged = mailbox
        .acknowledge_envelopes(bob.request(AcknowledgeEnvelopesRequest {
            address: bob.address.clone(),
            envelope_ids: ids,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acknowledged.removed, 2);
    let rest = mailbox
        .fetch_envelopes(fetch(&bob))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.envelopes.len(), 1);
    assert_eq!(rest.envelopes[0].content, vec![3; 40]);
    relay.stop().await;
}

#[tokio::test]
async fn retried_send_is_stored_once() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 0).await,
    );
    let mut mailbox = relay.mailbox().await;

    let first = mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 7, b"once")))
        .await
        .unwrap()
        .into_inner();
    let retry = mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 7, b"once")))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.duplicate);
    assert!(retry.duplicate);
    assert_eq!(first.envelope_id, retry.envelope_id);
    assert_eq!(
        mailbox
            .fetch_envelopes(fetch(&bob))
            .await
            .unwrap()
            .into_inner()
            .envelopes
            .len(),
        1
    );
    relay.stop().await;
}

#[tokio::test]
async fn invalid_sends_name_the_field_and_store_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 0).await,
    );
    let mut mailbox = relay.mailbox().await;
    let unknown = format!("{}.1", uuid::Uuid::new_v4());

    let cases = vec![
        ("empty", envelope_to(&bob.address, 1, b""), Code::InvalidArgument, "content is empty".to_owned()),
        ("too large", envelope_to(&bob.address, 1, &vec![0; 96 * 1024 + 1]), Code::ResourceExhausted, "content of 98305 bytes exceeds the limit of 98304 (max_envelope_bytes)".to_owned()),
        ("bad address", envelope_to("bob", 1, b"x"), Code::InvalidArgument, "destination is invalid: expected UUID.DEVICE, for example 0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1".to_owned()),
        ("unknown", envelope_to(&unknown, 1, b"x"), Code::NotFound, format!("destination {unknown} is not registered on this relay")),
        ("message id", SendEnvelopeRequest { client_message_id: vec![1; 3], ..envelope_to(&bob.address, 1, b"x") }, Code::InvalidArgument, "client_message_id must be 16 bytes, got 3".to_owned()),
        ("type", SendEnvelopeRequest { r#type: 0, ..envelope_to(&bob.address, 1, b"x") }, Code::InvalidArgument, "type 0 is not PREKEY_MESSAGE (1) or SIGNAL_MESSAGE (2)".to_owned()),
    ];
    for (name, request, code, expected) in cases {
        let status = mailbox
            .send_envelope(alice.request(request))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{name}: {}", status.message());
        assert_eq!(status.message(), expected, "{name}");
    }
    assert!(
        mailbox
            .fetch_envelopes(fetch(&bob))
            .await
            .unwrap()
            .into_inner()
            .envelopes
            .is_empty()
    );
    relay.stop().await;
}

#[tokio::test]
async fn another_devices_mailbox_is_off_limits() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 0).await,
    );
    let mut mailbox = relay.mailbox().await;
    mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 1, b"for bob")))
        .await
        .unwrap();

    let status = mailbox
        .fetch_envelopes(alice.request(FetchEnvelopesRequest {
            address: bob.address.clone(),
            limit: 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let status = mailbox
        .acknowledge_envelopes(alice.request(AcknowledgeEnvelopesRequest {
            address: bob.address.clone(),
            envelope_ids: vec![1],
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let unauthenticated = mailbox
        .fetch_envelopes(FetchEnvelopesRequest {
            address: bob.address.clone(),
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    assert_eq!(
        mailbox
            .fetch_envelopes(fetch(&bob))
            .await
            .unwrap()
            .into_inner()
            .envelopes
            .len(),
        1
    );
    relay.stop().await;
}

#[tokio::test]
async fn fetch_pages_by_limit() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 0).await,
    );
    let mut mailbox = relay.mailbox().await;
    for i in 0..5u8 {
        mailbox
            .send_envelope(alice.request(envelope_to(&bob.address, i, &[i])))
            .await
            .unwrap();
    }
    let page = mailbox
        .fetch_envelopes(bob.request(FetchEnvelopesRequest {
            address: bob.address.clone(),
            limit: 2,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.envelopes.len(), 2);
    assert!(page.more);

    let status = mailbox
        .fetch_envelopes(bob.request(FetchEnvelopesRequest {
            address: bob.address.clone(),
            limit: 257,
        }))
        .await
        .unwrap_err();
    assert_eq!(
        status.message(),
        "limit 257 is more than the maximum of 256"
    );
    relay.stop().await;
}

#[tokio::test]
async fn state_survives_a_restart() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 2).await,
    );
    let mut mailbox = relay.mailbox().await;
    let sent = mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 1, b"kept")))
        .await
        .unwrap()
        .into_inner();
    relay
        .keys()
        .await
        .get_pre_key_bundle(alice.request(GetPreKeyBundleRequest {
            address: bob.address.clone(),
        }))
        .await
        .unwrap();
    relay.stop().await;

    let relay = TestRelay::start(folder.path()).await;
    let mut mailbox = relay.mailbox().await;
    let fetched = mailbox
        .fetch_envelopes(fetch(&bob))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.envelopes.len(), 1);
    assert_eq!(fetched.envelopes[0].id, sent.envelope_id);
    assert_eq!(fetched.envelopes[0].content, b"kept");

    let retry = mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 1, b"kept")))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.duplicate, "idempotency record lost in the restart");

    let bundle = relay
        .keys()
        .await
        .get_pre_key_bundle(alice.request(GetPreKeyBundleRequest {
            address: bob.address.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let consumed_before_restart = bundle.one_time_prekey.unwrap().key_id;
    assert_eq!(
        consumed_before_restart, bob.keys.one_time_prekeys[1].key_id,
        "a consumed prekey came back"
    );
    relay.stop().await;
}

fn retraction(destination: &str, client_message_id: u8) -> RetractEnvelopeRequest {
    RetractEnvelopeRequest {
        destination: destination.to_owned(),
        client_message_id: vec![client_message_id; 16],
    }
}

#[tokio::test]
async fn sender_retracts_unfetched_envelope() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 0).await,
    );
    let carol = TestDevice::register(&relay, 0).await;
    let mut mailbox = relay.mailbox().await;
    mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 1, b"one")))
        .await
        .unwrap();
    mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 2, b"two")))
        .await
        .unwrap();

    let by_carol = mailbox
        .retract_envelope(carol.request(retraction(&bob.address, 1)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !by_carol.retracted,
        "another device retracted alice's envelope"
    );

    let by_alice = mailbox
        .retract_envelope(alice.request(retraction(&bob.address, 1)))
        .await
        .unwrap()
        .into_inner();
    assert!(by_alice.retracted);
    let again = mailbox
        .retract_envelope(alice.request(retraction(&bob.address, 1)))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.retracted);

    let left = mailbox
        .fetch_envelopes(fetch(&bob))
        .await
        .unwrap()
        .into_inner();
    let contents: Vec<&[u8]> = left
        .envelopes
        .iter()
        .map(|envelope| envelope.content.as_slice())
        .collect();
    assert_eq!(contents, vec![b"two".as_slice()]);

    let status = mailbox
        .retract_envelope(alice.request(retraction("bob", 1)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    relay.stop().await;
}

#[tokio::test]
async fn deleted_mailbox_leaves_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 3).await,
    );
    let mut mailbox = relay.mailbox().await;
    mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 1, b"queued")))
        .await
        .unwrap();
    mailbox
        .send_envelope(bob.request(envelope_to(&alice.address, 2, b"sent by bob")))
        .await
        .unwrap();

    let status = mailbox
        .delete_mailbox(alice.request(DeleteMailboxRequest {
            address: bob.address.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let deleted = mailbox
        .delete_mailbox(bob.request(DeleteMailboxRequest {
            address: bob.address.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.envelopes_deleted, 1);

    let status = mailbox.fetch_envelopes(fetch(&bob)).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "credential still works"
    );
    let status = relay
        .keys()
        .await
        .get_pre_key_bundle(alice.request(GetPreKeyBundleRequest {
            address: bob.address.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 3, b"late")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let status = relay
        .keys()
        .await
        .get_pre_key_count(bob.request(GetPreKeyCountRequest {
            address: bob.address.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        mailbox
            .fetch_envelopes(fetch(&alice))
            .await
            .unwrap()
            .into_inner()
            .envelopes
            .len(),
        1
    );
    relay.stop().await;
}
