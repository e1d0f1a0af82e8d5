//! The share lifecycle through the SDK: decline, cancel before and after the receiver fetched
//! the offer, and expiry.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::{TestRelay, device, kinds, offer};
use tigress_client::{ClientError, ShareState};

#[tokio::test]
async fn decline_reaches_the_sender() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;
    let share_id = sender.share(offer(&receiver, b"key", "t")).await.unwrap();
    receiver.sync().await.unwrap();

    receiver.decline(share_id).await.unwrap();
    assert_eq!(
        receiver.received_shares().unwrap()[0].state,
        ShareState::Declined
    );
    assert!(matches!(
        receiver.credential(share_id),
        Err(ClientError::NotProvisioned { .. })
    ));
    assert_eq!(kinds(&sender.sync().await.unwrap()), ["share_declined"]);
    assert_eq!(sender.sent_shares().unwrap()[0].state, ShareState::Declined);

    let error = receiver.accept(share_id).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("is declined: accept is not allowed now"),
        "{error}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn cancel_before_fetch_leaves_no_trace() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;
    let share_id = sender.share(offer(&receiver, b"key", "t")).await.unwrap();

    sender.cancel(share_id).await.unwrap();
    assert_eq!(
        sender.sent_shares().unwrap()[0].state,
        ShareState::Cancelled
    );
    let events = receiver.sync().await.unwrap();
    assert!(
        events.is_empty(),
        "the retracted offer still reached the receiver: {events:?}"
    );
    assert!(receiver.received_shares().unwrap().is_empty());
    relay.stop().await;
}

#[tokio::test]
async fn cancel_after_fetch_removes_the_credential() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;
    let share_id = sender.share(offer(&receiver, b"key", "t")).await.unwrap();
    receiver.sync().await.unwrap();

    sender.cancel(share_id).await.unwrap();
    assert_eq!(kinds(&receiver.sync().await.unwrap()), ["share_cancelled"]);
    assert_eq!(
        receiver.received_shares().unwrap()[0].state,
        ShareState::Cancelled
    );
    let error = receiver.accept(share_id).await.unwrap_err();
    assert!(error.to_string().contains("is cancelled"), "{error}");

    let error = sender.cancel(share_id).await.unwrap_err();
    assert!(error.to_string().contains("is cancelled"), "{error}");
    relay.stop().await;
}

#[tokio::test]
async fn expired_offer_cannot_be_accepted() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;
    let mut request = offer(&receiver, b"key", "t");
    request.expires_in = Duration::from_millis(1);
    let share_id = sender.share(request).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let events = receiver.sync().await.unwrap();
    assert_eq!(kinds(&events), ["offer_received"]);
    let error = receiver.accept(share_id).await.unwrap_err();
    assert!(matches!(error, ClientError::ShareExpired { .. }), "{error}");
    assert_eq!(
        receiver.received_shares().unwrap()[0].state,
        ShareState::Expired
    );
    assert!(matches!(
        receiver.credential(share_id),
        Err(ClientError::NotProvisioned { .. })
    ));

    assert_eq!(kinds(&sender.sync().await.unwrap()), ["share_expired"]);
    assert_eq!(sender.sent_shares().unwrap()[0].state, ShareState::Expired);
    relay.stop().await;
}
