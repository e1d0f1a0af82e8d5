//! A real relay on a loopback port for the SDK's unit tests, which need the crate's private
//! parts and so cannot live in `tests/`.

// Test helpers fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used)]

use tigress_relay::{Limits, Relay, RelayConfig};

/// Serves a relay without rate limits on a free loopback port. Returns its data folder, its
/// URL and the sender that stops it; the relay stops when the sender is dropped too.
pub(crate) async fn relay() -> (tempfile::TempDir, String, tokio::sync::oneshot::Sender<()>) {
    let data = tempfile::tempdir().unwrap();
    let config = RelayConfig {
        data_dir: data.path().to_owned(),
        limits: Limits::without_rate_limits(),
    };
    let relay = Relay::open(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(relay.serve(listener, async {
        let _ = stopped.await;
    }));
    (data, url, stop)
}
