//! Expiry with the sender's and the receiver's clocks hours apart. Each device decides by its
//! own clock. The receiver rejects an offer that expired by its clock. The sender expires a
//! share by its clock and keeps it expired when a late acceptance arrives. A certificate
//! stamped by a sender whose clock runs ahead is still accepted.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::{TestRelay, device, display, document, kinds, offer};
use tigress_client::{
    ClientError, Clock, Credential, Device, LinkContent, NewStatefulShare, ShareState,
};

const HOUR: Duration = Duration::from_secs(3600);

/// Opens the registered home in `home` again with `clock`, as after the device's clock was
/// corrected.
fn reopen(device: Device, clock: Clock) -> Device {
    let home = device.home().to_owned();
    drop(device);
    Device::open_existing(home).unwrap().with_clock(clock)
}

#[tokio::test]
async fn receiver_ahead_rejects_open_offer() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1)
        .await
        .with_clock(Clock::ahead(2 * HOUR));
    let mut request = offer(&receiver, b"key", "t");
    request.expires_in = HOUR;
    let share_id = sender.share(request).await.unwrap();

    assert_eq!(kinds(&receiver.sync().await.unwrap()), ["offer_received"]);
    let error = receiver.accept(share_id).await.unwrap_err();
    assert!(matches!(error, ClientError::ShareExpired { .. }), "{error}");
    assert_eq!(
        receiver.received_shares().unwrap()[0].state,
        ShareState::Expired
    );

    assert!(sender.sync().await.unwrap().is_empty());
    assert_eq!(sender.sent_shares().unwrap()[0].state, ShareState::Offered);
    relay.stop().await;
}

#[tokio::test]
async fn receiver_behind_accepts_expired_offer() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;
    let mut request = offer(&receiver, b"key", "t");
    request.expires_in = HOUR;
    let share_id = sender.share(request).await.unwrap();

    // The sender's clock jumps two hours ahead: by it, the offer has expired.
    let sender = reopen(sender, Clock::ahead(2 * HOUR));
    assert_eq!(kinds(&sender.sync().await.unwrap()), ["share_expired"]);

    // By the receiver's clock the offer is still open, so it accepts and gets the credential.
    assert_eq!(kinds(&receiver.sync().await.unwrap()), ["offer_received"]);
    assert_eq!(
        receiver.accept(share_id).await.unwrap(),
        ShareState::Completed
    );
    assert_eq!(document(&receiver, share_id), b"key");

    // The late completion acknowledgement changes nothing on the sender.
    assert_eq!(kinds(&sender.sync().await.unwrap()), ["envelope_rejected"]);
    assert_eq!(sender.sent_shares().unwrap()[0].state, ShareState::Expired);
    relay.stop().await;
}

#[tokio::test]
async fn certificate_from_sender_ahead_provisions() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0)
        .await
        .with_clock(Clock::ahead(5 * HOUR));
    let receiver = device(&relay, &homes.1).await;
    sender.create_owner_ca("CA").unwrap();

    let share_id = sender
        .share_stateful(NewStatefulShare {
            to: receiver.address().unwrap(),
            display: display("Front door"),
            valid_for: 24 * HOUR,
            expires_in: 24 * HOUR,
            auto_approve: true,
        })
        .await
        .unwrap();
    receiver.sync().await.unwrap();
    receiver.accept(share_id).await.unwrap();
    assert_eq!(
        kinds(&sender.sync().await.unwrap()),
        ["signing_request_received", "import_issued"]
    );

    // The certificate's validity starts five hours after the receiver's time.
    assert_eq!(
        kinds(&receiver.sync().await.unwrap()),
        ["credential_provisioned"]
    );
    assert!(matches!(
        receiver.credential(share_id).unwrap(),
        Credential::Certificate { .. }
    ));
    assert_eq!(kinds(&sender.sync().await.unwrap()), ["share_completed"]);
    relay.stop().await;
}

#[tokio::test]
async fn late_link_claim_is_rejected() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let claimant = Device::open(homes.1.path()).unwrap();
    let invitation = sender
        .invite(
            display("Hotel room"),
            LinkContent::Document(b"room key".to_vec()),
            HOUR,
        )
        .await
        .unwrap();

    let sender = reopen(sender, Clock::ahead(2 * HOUR));
    let share_id = claimant.accept_link(&invitation.link).await.unwrap();
    let events = sender.sync().await.unwrap();
    assert!(
        kinds(&events).contains(&"share_expired"),
        "the sender did not expire the link share: {events:?}"
    );
    assert_eq!(sender.sent_shares().unwrap()[0].state, ShareState::Expired);

    let events = claimant.sync().await.unwrap();
    assert_eq!(kinds(&events), ["share_failed"], "{events:?}");
    assert!(matches!(
        claimant.credential(share_id),
        Err(ClientError::NotProvisioned { .. })
    ));
    relay.stop().await;
}
