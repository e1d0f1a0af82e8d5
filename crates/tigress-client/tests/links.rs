//! Link shares through the SDK: a claim by one device, the refusal of a second, a pinned
//! identity that does not match, a cancelled link, and the removal of both throwaway mailboxes.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::{TestRelay, device, display, document, kinds};
use tigress_client::{ClientError, Device, Event, LinkContent, Role, ShareState};
use tigress_core::link::ShareLink;

const DAY: Duration = Duration::from_secs(86_400);

/// Checks whether `address` still has a mailbox on the relay, by asking for its bundle.
async fn mailbox_exists(relay: &TestRelay, address: &str) -> bool {
    let home = tempfile::tempdir().unwrap();
    let probe = Device::open(home.path()).unwrap();
    probe.register(&relay.url).await.unwrap();
    let address = address.parse().unwrap();
    match probe.verify(&address).await {
        Ok(_) => true,
        Err(ClientError::UnknownAddress { .. }) => false,
        Err(error) => panic!("unexpected error: {error}"),
    }
}

#[tokio::test]
async fn link_share_completes_and_mailboxes_go() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver_home = Device::open(homes.1.path()).unwrap();

    let invitation = sender
        .invite(
            display("Hotel room"),
            LinkContent::Document(b"room key".to_vec()),
            DAY,
        )
        .await
        .unwrap();
    let link: ShareLink = invitation.link.parse().unwrap();
    assert_eq!(link.relay_url, relay.url);

    let share_id = receiver_home.accept_link(&invitation.link).await.unwrap();
    assert_eq!(share_id, invitation.share_id);
    assert_eq!(
        receiver_home.received_shares().unwrap()[0].state,
        ShareState::Accepted
    );

    let events = sender.sync().await.unwrap();
    assert_eq!(kinds(&events), ["link_claimed"]);
    let claimant = match &events[0] {
        Event::LinkClaimed { by, .. } => by.clone(),
        other => panic!("{other:?}"),
    };

    assert_eq!(
        kinds(&receiver_home.sync().await.unwrap()),
        ["offer_received", "credential_provisioned"]
    );
    assert_eq!(document(&receiver_home, share_id), b"room key");
    assert_eq!(
        receiver_home.received_shares().unwrap()[0].state,
        ShareState::Completed
    );

    assert_eq!(kinds(&sender.sync().await.unwrap()), ["share_completed"]);
    let sent = &sender.sent_shares().unwrap()[0];
    assert_eq!(
        (sent.state, sent.role),
        (ShareState::Completed, Role::Sender)
    );
    assert!(
        !sent
            .peer
            .contains(&receiver_home.home().display().to_string())
    );

    assert!(
        !mailbox_exists(&relay, &link.to.to_string()).await,
        "sender's throwaway mailbox is still there"
    );
    assert!(
        !mailbox_exists(&relay, &claimant).await,
        "receiver's throwaway mailbox is still there"
    );
    assert!(
        !receiver_home.is_registered().unwrap(),
        "claiming a link registered the long-lived home"
    );
    relay.stop().await;
}

#[tokio::test]
async fn second_claim_is_refused() {
    let mut relay = TestRelay::start().await;
    let homes = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let sender = device(&relay, &homes.0).await;
    let first = Device::open(homes.1.path()).unwrap();
    let second = Device::open(homes.2.path()).unwrap();

    let invitation = sender
        .invite(display("t"), LinkContent::Document(b"k".to_vec()), DAY)
        .await
        .unwrap();
    first.accept_link(&invitation.link).await.unwrap();
    assert_eq!(kinds(&sender.sync().await.unwrap()), ["link_claimed"]);

    second.accept_link(&invitation.link).await.unwrap();
    let events = sender.sync().await.unwrap();
    assert_eq!(kinds(&events), ["claim_rejected"]);
    let events = second.sync().await.unwrap();
    assert_eq!(kinds(&events), ["share_failed"]);
    assert!(
        events[0].to_string().contains("already claimed"),
        "{}",
        events[0]
    );
    assert_eq!(
        second.received_shares().unwrap()[0].state,
        ShareState::Failed
    );

    let error = first.accept_link(&invitation.link).await.unwrap_err();
    assert!(
        matches!(error, ClientError::LinkAlreadyAccepted { .. }),
        "{error}"
    );
    assert_eq!(
        kinds(&first.sync().await.unwrap()),
        ["offer_received", "credential_provisioned"]
    );
    relay.stop().await;
}

#[tokio::test]
async fn link_with_wrong_identity_hash_is_refused() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = Device::open(homes.1.path()).unwrap();

    let invitation = sender
        .invite(display("t"), LinkContent::Document(b"k".to_vec()), DAY)
        .await
        .unwrap();
    let mut link: ShareLink = invitation.link.parse().unwrap();
    link.identity_hash[0] ^= 1;
    let error = receiver
        .accept_link(&link.dangerous_to_text())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::LinkIdentityMismatch { .. }),
        "{error}"
    );
    assert!(receiver.received_shares().unwrap().is_empty());
    assert!(
        sender.sync().await.unwrap().is_empty(),
        "the claim was sent despite the mismatch"
    );

    let error = receiver
        .accept_link("tigress://share?relay=x")
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::InvalidLink(_)), "{error}");
    relay.stop().await;
}

#[tokio::test]
async fn cancelled_link_cannot_be_claimed() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = Device::open(homes.1.path()).unwrap();

    let invitation = sender
        .invite(display("t"), LinkContent::Document(b"k".to_vec()), DAY)
        .await
        .unwrap();
    sender.cancel(invitation.share_id).await.unwrap();
    assert_eq!(
        sender.sent_shares().unwrap()[0].state,
        ShareState::Cancelled
    );
    let error = receiver.accept_link(&invitation.link).await.unwrap_err();
    assert!(matches!(error, ClientError::LinkGone), "{error}");
    assert!(receiver.received_shares().unwrap().is_empty());
    relay.stop().await;
}

#[tokio::test]
async fn stateful_link_share_completes() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = Device::open(homes.1.path()).unwrap();
    sender.create_owner_ca("CA").unwrap();

    let content = LinkContent::Certificate {
        valid_for: DAY,
        auto_approve: true,
    };
    let invitation = sender
        .invite(display("Garage"), content, DAY)
        .await
        .unwrap();
    let share_id = receiver.accept_link(&invitation.link).await.unwrap();
    assert_eq!(kinds(&sender.sync().await.unwrap()), ["link_claimed"]);
    assert_eq!(kinds(&receiver.sync().await.unwrap()), ["offer_received"]);
    assert_eq!(
        kinds(&sender.sync().await.unwrap()),
        ["signing_request_received", "import_issued"]
    );
    assert_eq!(
        kinds(&receiver.sync().await.unwrap()),
        ["credential_provisioned"]
    );
    assert!(matches!(
        receiver.credential(share_id).unwrap(),
        tigress_client::Credential::Certificate { .. }
    ));
    assert_eq!(kinds(&sender.sync().await.unwrap()), ["share_completed"]);
    relay.stop().await;
}
