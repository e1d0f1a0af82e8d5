//! The tigress relay: a gRPC server that stores anonymous device mailboxes, their public prekeys
//! and the end-to-end encrypted envelopes sent to them. It never has a private key and never
//! decrypts.
//!
//! The API is `tigress.relay.v1` in `proto/tigress/relay/v1/relay.proto`, with the standard
//! [gRPC health service] beside it:
//!
//! - `Registration` ([`service::registration`]): a device proves that it has its identity key by
//!   signing a challenge, and receives its address and a bearer credential ([`auth`]);
//! - `Keys` ([`service::keys`]): prekey upload and counts, and bundle fetch, which consumes one
//!   one-time EC prekey and one one-time Kyber prekey atomically;
//! - `Mailbox` ([`service::mailbox`]): send (idempotent on the client message id, acknowledged
//!   only once on disk), fetch and acknowledge.
//!
//! State lives behind the [`storage::Storage`] trait; [`storage::SledStorage`] is the embedded
//! backend.
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

#![deny(unsafe_code)]

mod auth;
pub mod config;
mod error;
pub mod service;
pub mod storage;

use std::future::Future;
use std::sync::Arc;

use tigress_proto::relay::v1::keys_server::KeysServer;
use tigress_proto::relay::v1::mailbox_server::MailboxServer;
use tigress_proto::relay::v1::registration_server::RegistrationServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

pub use config::RelayConfig;
pub use error::RelayError;
pub use storage::OpenError;

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
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[source] tonic::transport::Error),
    /// The final flush on shutdown failed.
    #[error("failed to flush storage on shutdown: {0}")]
    Flush(#[source] RelayError),
}

/// A relay over its storage, ready to serve.
#[derive(Debug)]
pub struct Relay {
    storage: Arc<SledStorage>,
    config: Arc<RelayConfig>,
}

impl Relay {
    /// Opens the relay's storage in `config.data_dir`.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when the folder is in use, damaged or of an unsupported format version.
    pub fn open(config: RelayConfig) -> Result<Self, OpenError> {
        let storage = SledStorage::open(&config.data_dir)?;
        Ok(Self {
            storage: Arc::new(storage),
            config: Arc::new(config),
        })
    }

    /// Serves the API on `listener` until `shutdown` completes, then finishes the calls in
    /// progress and flushes storage.
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
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<RegistrationServer<RegistrationService>>()
            .await;
        health_reporter
            .set_serving::<KeysServer<KeysService>>()
            .await;
        health_reporter
            .set_serving::<MailboxServer<MailboxService>>()
            .await;

        tracing::info!(%address, data_dir = %self.config.data_dir.display(), "relay listening");
        let result = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(RegistrationServer::new(RegistrationService::new(
                storage.clone(),
                self.config.clone(),
            )))
            .add_service(KeysServer::new(KeysService::new(
                storage.clone(),
                self.config.clone(),
            )))
            .add_service(MailboxServer::new(MailboxService::new(
                storage.clone(),
                self.config.clone(),
            )))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                shutdown.await;
                tracing::info!("shutdown requested: finishing calls in progress");
            })
            .await
            .map_err(ServeError::Transport);

        storage.flush().await.map_err(ServeError::Flush)?;
        drop(storage);
        drop(self.storage);
        tracing::info!(%address, "relay stopped");
        result
    }
}
