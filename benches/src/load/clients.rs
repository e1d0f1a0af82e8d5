//! Load clients: devices registered with real keys, each with a gRPC connection of its own.

use std::time::SystemTime;

use anyhow::Context as _;
use tigress_core::keys::registration_message;
use tigress_core::{Durability, Store};
use tigress_proto::relay::v1::mailbox_client::MailboxClient;
use tigress_proto::relay::v1::registration_client::RegistrationClient;
use tigress_proto::relay::v1::{
    CreateChallengeRequest, KyberPreKey, RegisterDeviceRequest, SignedPreKey,
};
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
    let now = SystemTime::now();

    let txn = store.transaction();
    let identity = txn.create_identity(&mut rng)?;
    let signed = txn.generate_signed_prekey(now, &mut rng)?;
    let last_resort = txn.generate_last_resort_kyber_prekey(now, &mut rng)?;
    let registration_id = txn.local_registration_id()?;
    txn.commit(Durability::Buffered)?;

    let identity_key = identity.identity_key().serialize().to_vec();
    let challenge_signature = identity
        .private_key()
        .calculate_signature(&registration_message(&challenge, &identity_key), &mut rng)
        .context("failed to sign the registration challenge")?
        .to_vec();
    Ok(RegisterDeviceRequest {
        identity_key,
        registration_id,
        challenge,
        challenge_signature,
        signed_prekey: Some(SignedPreKey {
            key_id: signed.id,
            public_key: signed.public_key,
            signature: signed.signature,
        }),
        kyber_last_resort_prekey: Some(KyberPreKey {
            key_id: last_resort.id,
            public_key: last_resort.public_key,
            signature: last_resort.signature,
        }),
        one_time_prekeys: Vec::new(),
        one_time_kyber_prekeys: Vec::new(),
    })
}
