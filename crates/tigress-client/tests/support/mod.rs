//! A real relay on a loopback port and SDK devices in temporary homes, for the SDK's
//! integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tigress_client::{Credential, Device, DisplayInformation, Event, NewShare, ShareId};
use tigress_relay::{Relay, RelayConfig, ServeError};
use tokio::sync::oneshot;

/// A relay on 127.0.0.1 with a data folder that outlives restarts.
pub(crate) struct TestRelay {
    pub(crate) url: String,
    pub(crate) data: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ServeError>>>,
}

impl TestRelay {
    pub(crate) async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut relay = Self {
            url: String::new(),
            data,
            shutdown: None,
            task: None,
        };
        relay.serve(None).await;
        relay
    }

    /// Serves the data folder, on `address` or a free port.
    async fn serve(&mut self, address: Option<std::net::SocketAddr>) {
        let relay = Relay::open(RelayConfig {
            data_dir: self.data.path().to_owned(),
            limits: tigress_relay::Limits::without_rate_limits(),
        })
        .unwrap();
        let listener = tokio::net::TcpListener::bind(address.unwrap_or(([127, 0, 0, 1], 0).into()))
            .await
            .unwrap();
        self.url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stopped) = oneshot::channel::<()>();
        self.task = Some(tokio::spawn(relay.serve(listener, async {
            let _ = stopped.await;
        })));
        self.shutdown = Some(shutdown);
    }

    /// Stops serving and waits for the storage to close.
    pub(crate) async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// Stops, lets `change` work on the stopped relay's data folder, and serves again on the
    /// same port.
    pub(crate) async fn restart_with(&mut self, change: impl FnOnce(&Path)) {
        self.stop().await;
        change(self.data.path());
        self.resume().await;
    }

    /// Serves the data folder again on the port it had, after [`stop`](Self::stop).
    pub(crate) async fn resume(&mut self) {
        let address = self.url.trim_start_matches("http://").parse().unwrap();
        self.serve(Some(address)).await;
    }
}

/// A registered device in a temporary home.
pub(crate) async fn device(relay: &TestRelay, home: &tempfile::TempDir) -> Device {
    let device = Device::open(home.path()).unwrap();
    device.register(&relay.url).await.unwrap();
    device
}

/// The ISO 18013-5 sample mDL from `examples/credentials`.
pub(crate) fn sample_credential() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/credentials/mdl-issuer-signed.cbor");
    std::fs::read(path).unwrap()
}

/// A stateless share of `credential` to `to`, valid for a day.
pub(crate) fn offer(to: &Device, credential: &[u8], title: &str) -> NewShare {
    NewShare {
        to: to.address().unwrap(),
        credential: credential.to_vec(),
        display: display(title),
        expires_in: Duration::from_secs(86_400),
    }
}

pub(crate) fn display(title: &str) -> DisplayInformation {
    DisplayInformation {
        title: title.to_owned(),
        file_name: "mdl.cbor".to_owned(),
        ..DisplayInformation::default()
    }
}

/// The document of a provisioned stateless share.
pub(crate) fn document(device: &Device, share_id: ShareId) -> Vec<u8> {
    match device.credential(share_id).unwrap() {
        Credential::Document(document) => document,
        other => panic!("expected a document, got {other:?}"),
    }
}

/// The kinds of `events`, for compact assertions.
pub(crate) fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

/// Checks that the future of an SDK call is `Send`, as the SDK promises.
pub(crate) fn assert_send<T: Send>(value: T) -> T {
    value
}
