//! A real relay on a loopback port with a sled folder, and devices with real keys, for the
//! relay's integration tests.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::SystemTime;

use tigress_core::keys::registration_message;
use tigress_core::{Durability, Store};
use tigress_proto::relay::v1::keys_client::KeysClient;
use tigress_proto::relay::v1::mailbox_client::MailboxClient;
use tigress_proto::relay::v1::registration_client::RegistrationClient;
use tigress_proto::relay::v1::{
    CreateChallengeRequest, EcPreKey, KyberPreKey, RegisterDeviceRequest, SignedPreKey,
};
use tigress_relay::{Relay, RelayConfig, ServeError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Request;
use tonic::transport::Channel;

/// A relay serving on 127.0.0.1 with a port of its own.
pub(crate) struct TestRelay {
    pub(crate) address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestRelay {
    /// Opens the relay on `data_dir` without rate limits and serves it on a free loopback port.
    pub(crate) async fn start(data_dir: &Path) -> Self {
        Self::start_with(
            data_dir,
            tigress_relay::Limits::without_rate_limits(),
            |relay| relay,
        )
        .await
    }

    /// Opens the relay on `data_dir` with `limits`, lets `prepare` add TLS or metrics, and
    /// serves it on a free loopback port.
    pub(crate) async fn start_with(
        data_dir: &Path,
        limits: tigress_relay::Limits,
        prepare: impl FnOnce(Relay) -> Relay,
    ) -> Self {
        let relay = prepare(
            Relay::open(RelayConfig {
                data_dir: data_dir.to_owned(),
                limits,
            })
            .unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            address,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Stops serving and waits until the storage is flushed and closed.
    pub(crate) async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub(crate) async fn registration(&self) -> RegistrationClient<Channel> {
        RegistrationClient::new(self.channel().await)
    }

    pub(crate) async fn keys(&self) -> KeysClient<Channel> {
        KeysClient::new(self.channel().await)
    }

    pub(crate) async fn mailbox(&self) -> MailboxClient<Channel> {
        MailboxClient::new(self.channel().await)
    }
}

/// Real key material from a tigress-core store, in the relay API's types.
pub(crate) struct DeviceKeys {
    pub(crate) folder: tempfile::TempDir,
    pub(crate) store: Store,
    pub(crate) identity_key: Vec<u8>,
    pub(crate) registration_id: u32,
    pub(crate) signed_prekey: SignedPreKey,
    pub(crate) kyber_last_resort_prekey: KyberPreKey,
    pub(crate) one_time_prekeys: Vec<EcPreKey>,
    pub(crate) one_time_kyber_prekeys: Vec<KyberPreKey>,
}

impl DeviceKeys {
    /// Generates an identity and prekeys, with `one_time` one-time prekeys of each kind.
    pub(crate) fn generate(one_time: usize) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let store = Store::open(folder.path()).unwrap();
        let mut rng = rand::rng();
        let now = SystemTime::now();
        let txn = store.transaction();
        let identity = txn.create_identity(&mut rng).unwrap();
        let registration_id = txn.local_registration_id().unwrap();
        let signed = txn.generate_signed_prekey(now, &mut rng).unwrap();
        let last_resort = txn
            .generate_last_resort_kyber_prekey(now, &mut rng)
            .unwrap();
        let one_time_prekeys = txn.generate_one_time_prekeys(one_time, &mut rng).unwrap();
        let one_time_kyber_prekeys = txn
            .generate_one_time_kyber_prekeys(one_time, now, &mut rng)
            .unwrap();
        txn.commit(Durability::Flushed).unwrap();

        Self {
            identity_key: identity.identity_key().serialize().to_vec(),
            registration_id,
            signed_prekey: signed.into(),
            kyber_last_resort_prekey: last_resort.into(),
            one_time_prekeys: one_time_prekeys.into_iter().map(Into::into).collect(),
            one_time_kyber_prekeys: one_time_kyber_prekeys.into_iter().map(Into::into).collect(),
            folder,
            store,
        }
    }

    /// Signs `message` with the identity key.
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        let identity = self.store.transaction().local_identity().unwrap();
        identity
            .private_key()
            .calculate_signature(message, &mut rand::rng())
            .unwrap()
            .to_vec()
    }

    /// Builds a complete registration request for `challenge`.
    pub(crate) fn registration_request(&self, challenge: Vec<u8>) -> RegisterDeviceRequest {
        let challenge_signature = self.sign(&registration_message(&challenge, &self.identity_key));
        RegisterDeviceRequest {
            identity_key: self.identity_key.clone(),
            registration_id: self.registration_id,
            challenge,
            challenge_signature,
            signed_prekey: Some(self.signed_prekey.clone()),
            kyber_last_resort_prekey: Some(self.kyber_last_resort_prekey.clone()),
            one_time_prekeys: self.one_time_prekeys.clone(),
            one_time_kyber_prekeys: self.one_time_kyber_prekeys.clone(),
        }
    }
}

/// A registered device: its keys, address and credential.
pub(crate) struct TestDevice {
    pub(crate) keys: DeviceKeys,
    pub(crate) address: String,
    pub(crate) credential: String,
}

impl TestDevice {
    /// Registers a new device with `one_time` one-time prekeys of each kind.
    pub(crate) async fn register(relay: &TestRelay, one_time: usize) -> Self {
        let keys = DeviceKeys::generate(one_time);
        let mut registration = relay.registration().await;
        let challenge = registration
            .create_challenge(CreateChallengeRequest {})
            .await
            .unwrap()
            .into_inner()
            .challenge;
        let response = registration
            .register_device(keys.registration_request(challenge))
            .await
            .unwrap()
            .into_inner();
        Self {
            keys,
            address: response.address,
            credential: response.credential,
        }
    }

    /// Wraps `message` in a request that carries this device's credential.
    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        with_credential(message, &self.credential)
    }
}

/// Wraps `message` in a request with `authorization: Bearer CREDENTIAL`.
pub(crate) fn with_credential<T>(message: T, credential: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {credential}").parse().unwrap(),
    );
    request
}
