//! Two SDK devices transferring a real credential through an in-process relay on loopback.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::{TestRelay, assert_send, device, document, kinds, offer, sample_credential};
use tigress_client::{ClientError, Device, Event, ShareId, ShareMode, ShareState};

#[tokio::test]
async fn stateless_share_transfers_exact_bytes() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;
    let credential = sample_credential();

    let share_id = assert_send(sender.share(offer(&receiver, &credential, "Driving licence")))
        .await
        .unwrap();
    assert_eq!(sender.sent_shares().unwrap()[0].state, ShareState::Offered);

    let events = assert_send(receiver.sync()).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let Event::OfferReceived {
        share_id: offered,
        from,
        mode,
        display,
        expires_at_ms,
    } = &events[0]
    else {
        panic!("expected an offer, got {events:?}");
    };
    assert_eq!(*offered, share_id);
    assert_eq!(*from, sender.address().unwrap().to_string());
    assert_eq!(*mode, ShareMode::Stateless);
    assert_eq!(display.title, "Driving licence");
    assert_eq!(display.size_bytes, credential.len() as u64);
    assert!(expires_at_ms.is_some());
    assert!(matches!(
        receiver.credential(share_id),
        Err(ClientError::NotProvisioned { .. })
    ));

    let state = assert_send(receiver.accept(share_id)).await.unwrap();
    assert_eq!(state, ShareState::Completed);
    assert_eq!(document(&receiver, share_id), credential);

    let events = sender.sync().await.unwrap();
    assert_eq!(
        events,
        vec![Event::ShareCompleted {
            share_id,
            peer: receiver.address().unwrap().to_string()
        }]
    );
    assert_eq!(
        sender.sent_shares().unwrap()[0].state,
        ShareState::Completed
    );

    assert!(
        receiver.sync().await.unwrap().is_empty(),
        "envelopes were not acknowledged"
    );
    relay.stop().await;
}

#[tokio::test]
async fn second_share_uses_the_existing_session() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;

    let first = sender
        .share(offer(&receiver, b"first", "one"))
        .await
        .unwrap();
    receiver.sync().await.unwrap();
    receiver.accept(first).await.unwrap();
    sender.sync().await.unwrap();
    let second = sender
        .share(offer(&receiver, b"second", "two"))
        .await
        .unwrap();

    let events = receiver.sync().await.unwrap();
    assert_eq!(kinds(&events), ["offer_received"]);
    assert_eq!(events[0].share_id(), Some(second));
    receiver.accept(second).await.unwrap();
    assert_eq!(document(&receiver, second), b"second");
    relay.stop().await;
}

#[tokio::test]
async fn state_survives_reopening_the_home() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;
    let share_id = sender
        .share(offer(&receiver, b"persisted", "t"))
        .await
        .unwrap();
    receiver.sync().await.unwrap();
    drop(receiver);

    let receiver = Device::open(homes.1.path()).unwrap();
    receiver.accept(share_id).await.unwrap();
    assert_eq!(document(&receiver, share_id), b"persisted");
    drop(sender);
    let sender = Device::open(homes.0.path()).unwrap();
    assert_eq!(kinds(&sender.sync().await.unwrap()), ["share_completed"]);
    relay.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;

    let mut unknown = offer(&receiver, b"x", "t");
    unknown.to = format!("{}.1", uuid::Uuid::new_v4()).parse().unwrap();
    let error = sender.share(unknown).await.unwrap_err();
    assert!(
        matches!(error, ClientError::UnknownAddress { .. }),
        "{error}"
    );

    let error = sender.share(offer(&receiver, b"", "t")).await.unwrap_err();
    assert_eq!(error.to_string(), "credential is empty");
    let error = sender
        .share(offer(&receiver, &vec![0; 61441], "t"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "credential of 61441 bytes exceeds the maximum of 61440 bytes"
    );
    let error = sender.share(offer(&sender, b"x", "t")).await.unwrap_err();
    assert!(matches!(error, ClientError::ShareToSelf { .. }), "{error}");
    let error = sender
        .share(offer(&receiver, b"x", "\u{1b}[2J"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid display information: title contains a control character"
    );

    let missing = ShareId::from_slice(&[3; 16]).unwrap();
    let error = sender.accept(missing).await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("share {missing} is unknown on this device")),
        "{error}"
    );

    let error = sender.register(&relay.url).await.unwrap_err();
    assert!(
        matches!(error, ClientError::AlreadyRegistered { .. }),
        "{error}"
    );
    assert!(
        sender.sent_shares().unwrap().is_empty(),
        "a rejected share was recorded"
    );

    let mut other_device = offer(&receiver, b"x", "t");
    other_device.to = format!("{}.2", receiver.address().unwrap().uuid())
        .parse()
        .unwrap();
    let error = sender.share(other_device).await.unwrap_err();
    assert!(
        error.to_string().contains("the device id must be 1"),
        "{error}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn sender_cannot_accept_and_receiver_cannot_cancel() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = device(&relay, &homes.1).await;
    let share_id = sender.share(offer(&receiver, b"x", "t")).await.unwrap();
    receiver.sync().await.unwrap();

    let error = sender.accept(share_id).await.unwrap_err();
    assert!(matches!(error, ClientError::WrongSide { .. }), "{error}");
    let error = receiver.cancel(share_id).await.unwrap_err();
    assert!(matches!(error, ClientError::WrongSide { .. }), "{error}");
    relay.stop().await;
}

#[tokio::test]
async fn unreachable_and_invalid_relays_are_reported() {
    let home = tempfile::tempdir().unwrap();
    let device = Device::open(home.path()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);

    let error = device.register(&closed).await.unwrap_err();
    assert!(
        matches!(error, ClientError::RelayUnreachable { .. }),
        "{error}"
    );
    assert!(!device.is_registered().unwrap());

    for url in [
        "ftp://127.0.0.1:1",
        "http://127.0.0.1:",
        "http://127.0.0.1:5005l",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:1/path",
        "http://127.0.0.1",
    ] {
        let error = device.register(url).await.unwrap_err();
        assert!(
            matches!(error, ClientError::InvalidRelayUrl { .. }),
            "{url}: {error}"
        );
    }
}

#[tokio::test]
async fn relay_that_lost_the_device_is_reported() {
    let mut relay = TestRelay::start().await;
    let home = tempfile::tempdir().unwrap();
    let device = device(&relay, &home).await;
    relay
        .restart_with(|data| {
            std::fs::remove_dir_all(data).unwrap();
            std::fs::create_dir(data).unwrap();
        })
        .await;

    let error = device.sync().await.unwrap_err();
    assert!(
        matches!(error, ClientError::UnknownToRelay { .. }),
        "{error}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn home_that_is_a_file_is_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("not-a-home");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(
        Device::open(&file),
        Err(ClientError::HomeNotFolder { .. })
    ));
    assert!(matches!(
        Device::open_existing(&file),
        Err(ClientError::HomeNotFolder { .. })
    ));
}

#[tokio::test]
async fn damaged_home_is_reported() {
    let mut relay = TestRelay::start().await;
    let home = tempfile::tempdir().unwrap();
    drop(device(&relay, &home).await);
    let database = home.path().join("store/db");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&database)
        .unwrap()
        .set_len(100)
        .unwrap();

    for opened in [
        Device::open(home.path()),
        Device::open_existing(home.path()),
    ] {
        let error = opened.unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::Core(tigress_core::Error::StoreDamaged { .. })
            ),
            "{error}"
        );
        assert!(
            error.to_string().contains("is damaged"),
            "the error does not say the store is damaged: {error}"
        );
    }
    relay.stop().await;
}
