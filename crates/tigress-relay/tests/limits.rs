//! Limits over loopback: rate limits, mailbox quotas and the sweeper's time to live. A
//! rejected request stores nothing.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::{TestDevice, TestRelay};
use tigress_proto::relay::v1::{
    CreateChallengeRequest, EnvelopeType, FetchEnvelopesRequest, SendEnvelopeRequest,
};
use tigress_relay::{Limits, RateLimit};
use tonic::Code;

fn envelope_to(destination: &str, client_message_id: u8) -> SendEnvelopeRequest {
    SendEnvelopeRequest {
        destination: destination.to_owned(),
        client_message_id: vec![client_message_id; 16],
        r#type: EnvelopeType::SignalMessage.into(),
        content: vec![client_message_id; 32],
    }
}

async fn queued(relay: &TestRelay, device: &TestDevice) -> usize {
    let request = device.request(FetchEnvelopesRequest {
        address: device.address.clone(),
        limit: 0,
    });
    relay
        .mailbox()
        .await
        .fetch_envelopes(request)
        .await
        .unwrap()
        .into_inner()
        .envelopes
        .len()
}

#[tokio::test]
async fn send_rate_limit_names_the_limit() {
    let folder = tempfile::tempdir().unwrap();
    let limits = Limits {
        send_rate: RateLimit {
            burst: 2,
            per_minute: 1,
        },
        ..Limits::without_rate_limits()
    };
    let relay = TestRelay::start_with(folder.path(), limits, |relay| relay).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 0).await,
    );
    let mut mailbox = relay.mailbox().await;

    for i in 0..2 {
        mailbox
            .send_envelope(alice.request(envelope_to(&bob.address, i)))
            .await
            .unwrap();
    }
    let status = mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 9)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().starts_with("rate_limits.send rate limit exceeded: at most 2 at once and 1 per minute per sending device; retry in"), "{}", status.message());
    assert_eq!(queued(&relay, &bob).await, 2, "a rejected send was stored");

    let other = mailbox
        .send_envelope(bob.request(envelope_to(&alice.address, 1)))
        .await;
    assert!(other.is_ok(), "another device was limited too");
    relay.stop().await;
}

#[tokio::test]
async fn full_mailbox_rejects_sends() {
    let folder = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_queued_envelopes: 2,
        ..Limits::without_rate_limits()
    };
    let relay = TestRelay::start_with(folder.path(), limits, |relay| relay).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 0).await,
    );
    let mut mailbox = relay.mailbox().await;

    for i in 0..2 {
        mailbox
            .send_envelope(alice.request(envelope_to(&bob.address, i)))
            .await
            .unwrap();
    }
    let status = mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 9)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status
            .message()
            .contains("exceeds the limit of 2 (max_queued_envelopes)"),
        "{}",
        status.message()
    );
    let retry = mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 1)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        retry.duplicate,
        "a retry of a stored envelope counts against the quota"
    );
    assert_eq!(queued(&relay, &bob).await, 2);
    relay.stop().await;
}

#[tokio::test]
async fn registration_rate_limit_applies_per_address() {
    let folder = tempfile::tempdir().unwrap();
    let limits = Limits {
        registration_rate: RateLimit {
            burst: 1,
            per_minute: 1,
        },
        ..Limits::without_rate_limits()
    };
    let relay = TestRelay::start_with(folder.path(), limits, |relay| relay).await;
    let mut registration = relay.registration().await;
    registration
        .create_challenge(CreateChallengeRequest {})
        .await
        .unwrap();
    let status = registration
        .create_challenge(CreateChallengeRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("rate_limits.registration"),
        "{}",
        status.message()
    );
    relay.stop().await;
}

#[tokio::test]
async fn sweeper_deletes_expired_envelopes() {
    let folder = tempfile::tempdir().unwrap();
    let limits = Limits {
        envelope_ttl: Duration::from_secs(1),
        sweep_interval: Duration::from_secs(1),
        ..Limits::without_rate_limits()
    };
    let relay = TestRelay::start_with(folder.path(), limits, |relay| relay).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 0).await,
    );
    relay
        .mailbox()
        .await
        .send_envelope(alice.request(envelope_to(&bob.address, 1)))
        .await
        .unwrap();
    assert_eq!(queued(&relay, &bob).await, 1);

    let mut waited = Duration::ZERO;
    while queued(&relay, &bob).await > 0 {
        assert!(
            waited < Duration::from_secs(20),
            "the sweeper never deleted the expired envelope"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        waited += Duration::from_millis(250);
    }
    relay.stop().await;
}
