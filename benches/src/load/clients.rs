//! Load clients: devices registered with real keys, each with a gRPC connection of its own.

use std::time::SystemTime;

use anyhow::Context as _;
use tigress_core::{Durability, Store};
use tigress_proto::relay::v1::mailbox_client::MailboxClient;
use tigress_proto::relay::v1::registration_client::RegistrationClient;
use tigress_proto::relay::v1::{CreateChallengeRequest, RegisterDeviceRequest};
use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

/// A registered device with its own connection to the relay.
pub(crate) struct Client {
    /// The device's address, `UUID.1`.
    pub(crate) address: String,
    authorization: MetadataValue<Ascii>,
    /// The mailbox API on this client's connection.
    pub(crate) mailbox: MailboxClient<Channel>,
    /// The health API on the same connection: the no-op baseline.
    pub(crate) health: HealthClient<Channel>,
}

impl Client {
    /// Registers a new device on the relay at `url` over a new connection.
    pub(crate) async fn register(url: &str) -> anyhow::Result<Self> {
        let channel = Channel::from_shared(url.to_owned())
            .context("invalid relay URL")?
            .connect()
            .await
            .with_context(|| format!("failed to connect to {url}"))?;

        let mut registration = RegistrationClient::new(channel.clone());
        let challenge = registration
            .create_challenge(CreateChallengeRequest {})
            .await
            .context("CreateChallenge failed")?
            .into_inner()
            .challenge;
        let request = registration_request(challenge)?;
        let response = registration
            .register_device(request)
            .await
            .context("RegisterDevice failed")?
            .into_inner();

        let authorization = format!("Bearer {}", response.credential)
            .parse()
            .context("the relay returned a credential that is not valid metadata")?;
        Ok(Self {
            address: response.address,
            authorization,
            mailbox: MailboxClient::new(channel.clone()),
            health: HealthClient::new(channel),
        })
    }

    /// Returns the `authorization` metadata value that carries this device's credential.
    pub(crate) fn authorization(&self) -> MetadataValue<Ascii> {
        self.authorization.clone()
    }
}

/// Wraps `message` in a request with `authorization` metadata.
pub(crate) fn authorized<T>(authorization: &MetadataValue<Ascii>, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.clone());
    request
}

/// Builds a registration request with a new identity, signed prekeys and no one-time prekeys:
/// load clients never open sessions.
fn registration_request(challenge: Vec<u8>) -> anyhow::Result<RegisterDeviceRequest> {
    let folder = tempfile::tempdir().context("failed to create a key folder")?;
    let store = Store::open(folder.path())?;
    let mut rng = rand::rng();

    let txn = store.transaction();
    let mut request = txn.create_registration(0, SystemTime::now(), &mut rng)?;
    request.challenge_signature = txn.sign_registration(&challenge, &mut rng)?;
    request.challenge = challenge;
    txn.commit(Durability::Buffered)?;
    Ok(request)
}
