//! Two SDK devices transferring a real credential through an in-process relay on loopback.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use tigress_client::{
    ClientError, Device, DisplayInformation, Event, NewShare, ShareId, ShareState,
};
use tigress_relay::{Relay, RelayConfig};
use tokio::sync::oneshot;

/// A relay on 127.0.0.1 with a temporary data folder.
struct TestRelay {
    url: String,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tigress_relay::ServeError>>,
    _data: tempfile::TempDir,
}

impl TestRelay {
    async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let relay = Relay::open(RelayConfig::new(data.path())).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            url,
            shutdown,
            task,
            _data: data,
        }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.task.await.unwrap().unwrap();
    }
}

fn sample_credential() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/credentials/mdl-issuer-signed.cbor");
    std::fs::read(path).unwrap()
}

async fn registered_device(relay: &TestRelay, home: &tempfile::TempDir) -> Device {
    let device = Device::open(home.path()).unwrap();
    device.register(&relay.url).await.unwrap();
    device
}

fn display(title: &str) -> DisplayInformation {
    DisplayInformation {
        title: title.to_owned(),
        file_name: "mdl.cbor".to_owned(),
        ..DisplayInformation::default()
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::test]
async fn stateless_share_transfers_exact_bytes() {
    let relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = registered_device(&relay, &homes.0).await;
    let receiver = registered_device(&relay, &homes.1).await;
    let credential = sample_credential();

    let request = NewShare {
        to: receiver.address().unwrap(),
        credential: credential.clone(),
        display: display("Driving licence"),
    };
    let share_id = assert_send(sender.share(request)).await.unwrap();
    assert_eq!(sender.sent_shares().unwrap()[0].state, ShareState::Offered);

    let events = assert_send(receiver.sync()).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let Event::OfferReceived {
        share_id: offered,
        from,
        display,
    } = &events[0]
    else {
        panic!("expected an offer, got {events:?}");
    };
    assert_eq!(*offered, share_id);
    assert_eq!(*from, sender.address().unwrap());
    assert_eq!(display.title, "Driving licence");
    assert_eq!(display.size_bytes, credential.len() as u64);
    assert!(matches!(
        receiver.credential(share_id),
        Err(ClientError::NotProvisioned { .. })
    ));

    assert_send(receiver.accept(share_id)).await.unwrap();
    assert_eq!(receiver.credential(share_id).unwrap(), credential);
    assert_eq!(
        receiver.received_shares().unwrap()[0].state,
        ShareState::Completed
    );

    let events = sender.sync().await.unwrap();
    assert_eq!(
        events,
        vec![Event::ShareCompleted {
            share_id,
            peer: receiver.address().unwrap()
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
    let relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = registered_device(&relay, &homes.0).await;
    let receiver = registered_device(&relay, &homes.1).await;
    let to = receiver.address().unwrap();

    let first = sender
        .share(NewShare {
            to,
            credential: b"first".to_vec(),
            display: display("one"),
        })
        .await
        .unwrap();
    receiver.sync().await.unwrap();
    receiver.accept(first).await.unwrap();
    sender.sync().await.unwrap();
    let second = sender
        .share(NewShare {
            to,
            credential: b"second".to_vec(),
            display: display("two"),
        })
        .await
        .unwrap();

    let events = receiver.sync().await.unwrap();
    assert!(
        matches!(&events[..], [Event::OfferReceived { share_id, .. }] if *share_id == second),
        "{events:?}"
    );
    receiver.accept(second).await.unwrap();
    assert_eq!(receiver.credential(second).unwrap(), b"second");
    relay.stop().await;
}

#[tokio::test]
async fn state_survives_reopening_the_home() {
    let relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = registered_device(&relay, &homes.0).await;
    let receiver = registered_device(&relay, &homes.1).await;
    let share_id = sender
        .share(NewShare {
            to: receiver.address().unwrap(),
            credential: b"persisted".to_vec(),
            display: display("t"),
        })
        .await
        .unwrap();
    receiver.sync().await.unwrap();
    drop(receiver);

    let receiver = Device::open(homes.1.path()).unwrap();
    receiver.accept(share_id).await.unwrap();
    assert_eq!(receiver.credential(share_id).unwrap(), b"persisted");
    drop(sender);
    let sender = Device::open(homes.0.path()).unwrap();
    assert_eq!(sender.sync().await.unwrap().len(), 1);
    relay.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let relay = TestRelay::start().await;
    let home = tempfile::tempdir().unwrap();
    let device = registered_device(&relay, &home).await;
    let unknown = format!("{}.1", uuid::Uuid::new_v4()).parse().unwrap();

    let error = device
        .share(NewShare {
            to: unknown,
            credential: b"x".to_vec(),
            display: display("t"),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::UnknownAddress { .. }),
        "{error}"
    );

    let me = device.address().unwrap();
    let error = device
        .share(NewShare {
            to: me,
            credential: Vec::new(),
            display: display("t"),
        })
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "credential is empty");
    let error = device
        .share(NewShare {
            to: me,
            credential: vec![0; 61441],
            display: display("t"),
        })
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "credential of 61441 bytes exceeds the maximum of 61440 bytes"
    );

    let missing = ShareId::from_slice(&[3; 16]).unwrap();
    let error = device.accept(missing).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("share {missing} is unknown on this device")
    );

    let error = device.register(&relay.url).await.unwrap_err();
    assert!(
        matches!(error, ClientError::AlreadyRegistered { .. }),
        "{error}"
    );
    assert!(
        device.sent_shares().unwrap().is_empty(),
        "a rejected share was recorded"
    );
    relay.stop().await;
}

#[tokio::test]
async fn unreachable_relay_is_reported() {
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

    let error = device.register("ftp://127.0.0.1:1").await.unwrap_err();
    assert!(
        matches!(error, ClientError::InvalidRelayUrl { .. }),
        "{error}"
    );
}
