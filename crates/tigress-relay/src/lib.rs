//! The tigress relay: a gRPC server that stores anonymous device mailboxes, their public prekeys
//! and the end-to-end encrypted envelopes sent to them. It never has a private key and never
//! decrypts.
//!
//! The API is `tigress.relay.v1` in `proto/tigress/relay/v1/relay.proto`, beside the standard
//! [gRPC health service] and [server reflection]:
//!
//! - `Registration` ([`service::registration`]): a device proves that it has its identity key by
//!   signing a challenge, and receives its address and a bearer credential;
//! - `Keys` ([`service::keys`]): prekey upload and counts, and bundle fetch, which consumes one
//!   one-time EC prekey and one one-time Kyber prekey atomically;
//! - `Mailbox` ([`service::mailbox`]): send (idempotent on the client message id, acknowledged
//!   only once on disk), fetch, acknowledge, subscribe (a stream that drains the queue and then
//!   pushes new envelopes), retract and delete.
//!
//! State lives behind the [`storage::Storage`] trait; [`storage::SledStorage`] is the embedded
//! backend. Limits and rate limits come from [`config`]; [`metrics`] serves Prometheus text on
//! a listener of its own.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tigress_relay::{Relay, RelayConfig};
//!
//! let relay = Relay::open(RelayConfig::new("./tigress-relay-data"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
//! relay.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```
//!
//! [gRPC health service]: https://github.com/grpc/grpc/blob/master/doc/health-checking.md
//! [server reflection]: https://github.com/grpc/grpc/blob/master/doc/server-reflection.md

#![deny(unsafe_code)]

mod auth;
pub mod config;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod metrics;
mod notify;
mod rate_limit;
pub mod service;
pub mod storage;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tigress_proto::relay::v1::keys_server::KeysServer;
use tigress_proto::relay::v1::mailbox_server::MailboxServer;
use tigress_proto::relay::v1::registration_server::RegistrationServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, ServerTlsConfig};

pub use config::{ConfigError, ConfigFile, Limits, RateLimit, RelayConfig};
pub use error::RelayError;
pub use storage::OpenError;

use metrics::Metrics;
use service::Shared;
use service::keys::KeysService;
use service::mailbox::MailboxService;
use service::registration::RegistrationService;
use storage::{SledStorage, Storage};

/// An error that ended serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listener's address could not be read.
    #[error("failed to read the listening address: {0}")]
    LocalAddress(#[source] std::io::Error),
    /// The gRPC server failed, or its TLS settings were rejected.
    #[error("gRPC server failed: {0}")]
    Transport(#[source] tonic::transport::Error),
    /// The server reflection service could not be built.
    #[error("failed to build the reflection service: {0}")]
    Reflection(String),
    /// The final flush on shutdown failed.
    #[error("failed to flush storage on shutdown: {0}")]
    Flush(#[source] RelayError),
}

/// A relay over its storage, ready to serve.
#[derive(Debug)]
pub struct Relay {
    storage: Arc<SledStorage>,
    config: RelayConfig,
    tls: Option<ServerTlsConfig>,
    metrics_listener: Option<TcpListener>,
}

impl Relay {
    /// Opens the relay's storage in `config.data_dir`.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when the folder is in use, damaged or of an unsupported format version.
    pub fn open(config: RelayConfig) -> Result<Self, OpenError> {
        let storage = SledStorage::open_with_cache(
            &config.data_dir,
            config.limits.storage_cache_bytes,
            config.limits.device_cache_records,
        )?;
        Ok(Self {
            storage: Arc::new(storage),
            config,
            tls: None,
            metrics_listener: None,
        })
    }

    /// Serves over TLS with a PEM certificate chain and its PEM private key.
    pub fn with_tls(mut self, certificate_pem: &[u8], private_key_pem: &[u8]) -> Self {
        self.tls = Some(
            ServerTlsConfig::new().identity(Identity::from_pem(certificate_pem, private_key_pem)),
        );
        self
    }

    /// Serves Prometheus metrics on `listener` beside the API.
    pub fn with_metrics(mut self, listener: TcpListener) -> Self {
        self.metrics_listener = Some(listener);
        self
    }

    /// Serves the API on `listener` until `shutdown` completes. Then it reports not serving,
    /// ends every subscription, finishes the calls in progress and flushes storage.
    ///
    /// # Errors
    ///
    /// [`ServeError`] when the server or the final flush fails.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let address = listener.local_addr().map_err(ServeError::LocalAddress)?;
        let storage: Arc<dyn Storage> = self.storage.clone();
        let metrics = Arc::new(Metrics::new(self.storage.flush_latency()));
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared::new(
            storage.clone(),
            self.config.limits.clone(),
            metrics.clone(),
            stopped.clone(),
        ));

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        set_serving(&health_reporter, true).await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tigress_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|error| ServeError::Reflection(error.to_string()))?;

        let sweeper = tokio::spawn(sweep_periodically(shared.clone(), stopped.clone()));
        let metrics_server = self.metrics_listener.map(|metrics_listener| {
            if let Ok(metrics_address) = metrics_listener.local_addr() {
                tracing::info!(address = %metrics_address, "metrics listening");
            }
            let mut stopped = stopped.clone();
            tokio::spawn(metrics::serve_metrics(
                metrics_listener,
                metrics.clone(),
                storage.clone(),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            ))
        });

        let mut builder = tonic::transport::Server::builder();
        let tls_enabled = self.tls.is_some();
        if let Some(tls) = self.tls {
            builder = builder.tls_config(tls).map_err(ServeError::Transport)?;
        }
        tracing::info!(%address, data_dir = %self.config.data_dir.display(), tls = tls_enabled, "relay listening");
        let result = builder
            .add_service(health_service)
            .add_service(reflection)
            .add_service(RegistrationServer::new(RegistrationService::new(
                shared.clone(),
            )))
            .add_service(KeysServer::new(KeysService::new(shared.clone())))
            .add_service(MailboxServer::new(MailboxService::new(shared.clone())))
            .serve_with_incoming_shutdown(incoming(listener), async {
                shutdown.await;
                tracing::info!(
                    "shutdown requested: ending subscriptions and finishing calls in progress"
                );
                set_serving(&health_reporter, false).await;
                let _ = stop.send(true);
            })
            .await
            .map_err(ServeError::Transport);

        let _ = stop.send(true);
        let _ = sweeper.await;
        if let Some(metrics_server) = metrics_server {
            let _ = metrics_server.await;
        }
        storage.flush().await.map_err(ServeError::Flush)?;
        drop((shared, storage));
        drop(self.storage);
        tracing::info!(%address, "relay stopped");
        result
    }
}

/// The names the health service reports: the whole server, then each API service.
const HEALTH_NAMES: [&str; 4] = [
    "",
    "tigress.relay.v1.Registration",
    "tigress.relay.v1.Keys",
    "tigress.relay.v1.Mailbox",
];

/// Accepts connections on `listener` with `TCP_NODELAY` set. Without it, a small frame that
/// follows another on the same connection, such as the next envelope on a subscription, waits
/// for the client's delayed acknowledgement of the first: 40 ms or more on Linux.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

async fn set_serving(reporter: &tonic_health::server::HealthReporter, serving: bool) {
    let status = if serving {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    for name in HEALTH_NAMES {
        reporter.set_service_status(name, status).await;
    }
}

/// Runs the sweeper every `sweep_interval` until the relay stops.
async fn sweep_periodically(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let interval = shared.limits.sweep_interval.max(Duration::from_secs(1));
    let ttl_ms = u64::try_from(shared.limits.envelope_ttl.as_millis()).unwrap_or(u64::MAX);
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(interval) => {}
        }
        match shared.storage.sweep(service::now_ms(), ttl_ms).await {
            Ok(report) => tracing::info!(
                envelopes = report.envelopes,
                send_records = report.send_records,
                challenges = report.challenges,
                "sweep finished"
            ),
            Err(error) => tracing::error!(%error, "sweep failed; retrying at the next interval"),
        }
        shared.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt as _;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut connections = incoming(listener);

        let _client = tokio::net::TcpStream::connect(address).await.unwrap();
        let accepted = connections.next().await.unwrap().unwrap();

        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is not set");
    }
}
