//! The SDK against the relay's operational features: listening with subscriptions, and a relay
//! over TLS.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
#[path = "../../tigress-relay/tests/support/tls.rs"]
mod tls;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use support::{TestRelay, assert_send, device, offer};
use tigress_client::{ClientError, Device, Event};
use tigress_relay::{Limits, Relay, RelayConfig};

#[tokio::test]
async fn listen_reports_offers_as_they_arrive() {
    let mut relay = TestRelay::start().await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sender = device(&relay, &homes.0).await;
    let receiver = Arc::new(device(&relay, &homes.1).await);
    let first = sender
        .share(offer(&receiver, b"queued", "t"))
        .await
        .unwrap();

    let (events, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let listening = receiver.clone();
    let listener = tokio::spawn(async move {
        let mut offers = 0;
        let listen = listening.listen(|event| {
            offers += usize::from(matches!(event, Event::OfferReceived { .. }));
            let _ = events.send(event);
            if offers == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_send(listen).await.unwrap();
    });

    // The first offer comes from the sync that starts listening, so the second one, sent after
    // it, can only come through the subscription.
    let patience = Duration::from_secs(20);
    let event = tokio::time::timeout(patience, seen.recv())
        .await
        .expect("no event in time")
        .unwrap();
    assert_eq!(event.share_id(), Some(first));
    let second = sender
        .share(offer(&receiver, b"pushed", "t"))
        .await
        .unwrap();
    let event = tokio::time::timeout(patience, seen.recv())
        .await
        .expect("the pushed offer never came")
        .unwrap();
    assert_eq!(event.share_id(), Some(second));
    tokio::time::timeout(patience, listener)
        .await
        .expect("listen did not stop")
        .unwrap();

    assert!(
        receiver.sync().await.unwrap().is_empty(),
        "the listened envelope was not acknowledged"
    );
    relay.stop().await;
}

#[tokio::test]
async fn device_registers_and_shares_over_tls() {
    let data = tempfile::tempdir().unwrap();
    let tls = tls::test_tls();
    let relay = Relay::open(RelayConfig {
        data_dir: data.path().to_owned(),
        limits: Limits::without_rate_limits(),
    })
    .unwrap()
    .with_tls(
        tls.certificate_pem.as_bytes(),
        tls.private_key_pem.as_bytes(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(relay.serve(listener, async {
        let _ = stopped.await;
    }));

    let homes = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let untrusting = Device::open(homes.2.path()).unwrap();
    let error = untrusting.register(&url).await.unwrap_err();
    assert!(
        matches!(error, ClientError::RelayUnreachable { .. }),
        "{error}"
    );

    let sender = Device::open(homes.0.path()).unwrap();
    sender.register_with_ca(&url, &tls.ca_pem).await.unwrap();
    let receiver = Device::open(homes.1.path()).unwrap();
    receiver.register_with_ca(&url, &tls.ca_pem).await.unwrap();
    drop((sender, receiver));

    let sender = Device::open(homes.0.path()).unwrap();
    let receiver = Device::open(homes.1.path()).unwrap();
    let share_id = sender
        .share(offer(&receiver, b"over tls", "t"))
        .await
        .unwrap();
    assert_eq!(receiver.sync().await.unwrap()[0].share_id(), Some(share_id));

    let _ = stop.send(());
    served.await.unwrap().unwrap();
}
