//! Stateful shares with the X.509 profile through the SDK: the owner CA certifies the
//! receiver's own key, with and without approval.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, SystemTime};

use der::{Decode, DecodePem, Encode};
use support::{TestRelay, device, display, kinds, offer};
use tigress_client::{ClientError, Credential, Device, NewStatefulShare, ShareMode, ShareState};

fn stateful_to(receiver: &Device, auto_approve: bool) -> NewStatefulShare {
    NewStatefulShare {
        to: receiver.address().unwrap(),
        display: display("Front door"),
        valid_for: Duration::from_secs(7 * 86_400),
        expires_in: Duration::from_secs(86_400),
        auto_approve,
    }
}

/// Checks the exported certificate with the core's verifier: issued by the CA, valid now, for
/// the key in the exported private key.
fn check_certificate(credential: Credential) {
    let Credential::Certificate {
        certificate_pem,
        private_key_pem,
        ca_certificate_pem,
    } = credential
    else {
        panic!("expected a certificate");
    };
    let certificate = x509_cert::Certificate::from_pem(certificate_pem.as_bytes()).unwrap();
    let ca = x509_cert::Certificate::from_pem(ca_certificate_pem.as_bytes()).unwrap();
    assert_eq!(
        certificate.tbs_certificate.issuer,
        ca.tbs_certificate.subject
    );
    assert_eq!(
        certificate.tbs_certificate.subject.to_string(),
        "CN=Front door"
    );
    assert!(private_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));

    let certificate_der = certificate.to_der().unwrap();
    let ca_der = ca.to_der().unwrap();
    let parsed = x509_cert::Certificate::from_der(&certificate_der).unwrap();
    let not_after = parsed.tbs_certificate.validity.not_after.to_system_time();
    assert!(not_after > SystemTime::now() + Duration::from_secs(6 * 86_400));
    assert!(not_after <= SystemTime::now() + Duration::from_secs(7 * 86_400 + 60));
    assert!(!ca_der.is_empty());
}

#[tokio::test]
async fn stateful_share_with_approval() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;
    sender.create_owner_ca("Alice's car CA").unwrap();
    assert!(
        sender
            .owner_ca_certificate_pem()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    let share_id = sender
        .share_stateful(stateful_to(&receiver, false))
        .await
        .unwrap();
    let events = receiver.sync().await.unwrap();
    assert!(
        matches!(
            &events[..],
            [tigress_client::Event::OfferReceived {
                mode: ShareMode::Stateful,
                ..
            }]
        ),
        "{events:?}"
    );

    assert_eq!(
        receiver.accept(share_id).await.unwrap(),
        ShareState::SigningRequested
    );
    assert_eq!(
        kinds(&sender.sync().await.unwrap()),
        ["signing_request_received"]
    );
    assert_eq!(
        sender.sent_shares().unwrap()[0].state,
        ShareState::SigningRequested
    );
    assert!(matches!(
        receiver.credential(share_id),
        Err(ClientError::NotProvisioned { .. })
    ));

    sender.approve(share_id).await.unwrap();
    assert_eq!(
        sender.sent_shares().unwrap()[0].state,
        ShareState::ImportIssued
    );
    assert_eq!(
        kinds(&receiver.sync().await.unwrap()),
        ["credential_provisioned"]
    );
    assert_eq!(
        receiver.received_shares().unwrap()[0].state,
        ShareState::Completed
    );
    check_certificate(receiver.credential(share_id).unwrap());

    assert_eq!(kinds(&sender.sync().await.unwrap()), ["share_completed"]);
    assert_eq!(
        sender.sent_shares().unwrap()[0].state,
        ShareState::Completed
    );
    relay.stop().await;
}

#[tokio::test]
async fn auto_approved_share_needs_no_approval() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;
    sender.create_owner_ca("CA").unwrap();

    let share_id = sender
        .share_stateful(stateful_to(&receiver, true))
        .await
        .unwrap();
    receiver.sync().await.unwrap();
    receiver.accept(share_id).await.unwrap();
    assert_eq!(
        kinds(&sender.sync().await.unwrap()),
        ["signing_request_received", "import_issued"]
    );
    assert_eq!(
        kinds(&receiver.sync().await.unwrap()),
        ["credential_provisioned"]
    );
    check_certificate(receiver.credential(share_id).unwrap());
    relay.stop().await;
}

#[tokio::test]
async fn stateful_errors_are_clear() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;

    let error = sender
        .share_stateful(stateful_to(&receiver, false))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::NoOwnerCa { .. }), "{error}");
    sender.create_owner_ca("CA").unwrap();
    assert!(matches!(
        sender.create_owner_ca("CA"),
        Err(ClientError::OwnerCaExists { .. })
    ));

    let stateless = sender.share(offer(&receiver, b"x", "t")).await.unwrap();
    let error = sender.approve(stateless).await.unwrap_err();
    assert!(matches!(error, ClientError::NotStateful { .. }), "{error}");

    let stateful = sender
        .share_stateful(stateful_to(&receiver, false))
        .await
        .unwrap();
    let error = sender.approve(stateful).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("is offered: approve is not allowed now"),
        "{error}"
    );
    relay.stop().await;
}
