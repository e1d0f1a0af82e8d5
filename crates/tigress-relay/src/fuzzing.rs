//! An in-process entry into the relay's request handling, for the fuzz target of its request
//! validation. Built only with the `fuzzing` feature.
//!
//! [`FuzzRelay`] serves the three services over a sled folder of its own, without a network,
//! with one registered device. Each input picks a call, decodes the rest as that call's
//! request, and makes the call with or without the device's credential, as the gRPC layer
//! would after decoding a request from the wire.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use prost::Message;
use tigress_core::{Durability, Store};
use tigress_proto::relay::v1::keys_server::Keys;
use tigress_proto::relay::v1::mailbox_server::Mailbox;
use tigress_proto::relay::v1::registration_server::Registration;
use tigress_proto::relay::v1::{
    AcknowledgeEnvelopesRequest, CreateChallengeRequest, DeleteMailboxRequest,
    FetchEnvelopesRequest, GetPreKeyBundleRequest, GetPreKeyCountRequest, RegisterDeviceRequest,
    RetractEnvelopeRequest, SendEnvelopeRequest, SubscribeRequest, UploadPreKeysRequest,
};
use tokio::sync::watch;
pub use tonic::Code;
use tonic::{Request, Response, Status};

use crate::config::Limits;
use crate::metrics::Metrics;
use crate::service::Shared;
use crate::service::keys::KeysService;
use crate::service::mailbox::MailboxService;
use crate::service::registration::RegistrationService;
use crate::storage::SledStorage;

/// Calls an input can pick, by its first byte modulo their number.
const CALLS: u8 = 11;

/// The relay's services in one process, with one registered device.
pub struct FuzzRelay {
    runtime: tokio::runtime::Runtime,
    registration: RegistrationService,
    keys: KeysService,
    mailbox: MailboxService,
    credential: String,
    address: String,
    _stop: watch::Sender<bool>,
    _folders: [tempfile::TempDir; 2],
}

impl FuzzRelay {
    /// Opens a relay in a temporary folder and registers a device with real keys.
    ///
    /// # Errors
    ///
    /// When a folder, the storage, the runtime or the registration fails.
    pub fn new() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("failed to start a runtime")?;
        let data = tempfile::tempdir().context("failed to create the relay's folder")?;
        let storage = SledStorage::open(data.path())?;
        let metrics = Arc::new(Metrics::new(storage.flush_latency()));
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared::new(
            Arc::new(storage),
            Limits::without_rate_limits(),
            metrics,
            stopped,
        ));
        let registration = RegistrationService::new(shared.clone());
        let device = tempfile::tempdir().context("failed to create the device's folder")?;
        let request = runtime.block_on(registration_request(
            &registration,
            &Store::open(device.path())?,
        ))?;
        let response = runtime
            .block_on(registration.register_device(Request::new(request)))
            .map_err(|status| anyhow::anyhow!("registration failed: {}", status.message()))?
            .into_inner();
        Ok(Self {
            keys: KeysService::new(shared.clone()),
            mailbox: MailboxService::new(shared),
            registration,
            credential: response.credential,
            address: response.address,
            runtime,
            _stop: stop,
            _folders: [data, device],
        })
    }

    /// Returns the registered device's address, `UUID.1`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Makes the call that `data` describes. The low seven bits of its first byte pick the
    /// call, modulo the number of calls, and bit 7 adds the registered device's credential.
    /// The rest is the request. Returns the call's status code, or `None` when the rest does not
    /// decode as the request, which the gRPC layer would reject before any service saw it.
    pub fn call(&self, data: &[u8]) -> Option<Code> {
        let (&selector, body) = data.split_first()?;
        let auth = selector & 0x80 != 0;
        self.runtime.block_on(async {
            let code = match (selector & 0x7f) % CALLS {
                0 => {
                    let request = Request::new(CreateChallengeRequest {});
                    code(self.registration.create_challenge(request).await)
                }
                1 => {
                    let request = self.request(RegisterDeviceRequest::decode(body).ok()?, auth);
                    code(self.registration.register_device(request).await)
                }
                2 => {
                    let request = self.request(UploadPreKeysRequest::decode(body).ok()?, auth);
                    code(self.keys.upload_pre_keys(request).await)
                }
                3 => {
                    let request = self.request(GetPreKeyCountRequest::decode(body).ok()?, auth);
                    code(self.keys.get_pre_key_count(request).await)
                }
                4 => {
                    let request = self.request(GetPreKeyBundleRequest::decode(body).ok()?, auth);
                    code(self.keys.get_pre_key_bundle(request).await)
                }
                5 => {
                    let request = self.request(SendEnvelopeRequest::decode(body).ok()?, auth);
                    code(self.mailbox.send_envelope(request).await)
                }
                6 => {
                    let request = self.request(FetchEnvelopesRequest::decode(body).ok()?, auth);
                    code(self.mailbox.fetch_envelopes(request).await)
                }
                7 => {
                    let message = AcknowledgeEnvelopesRequest::decode(body).ok()?;
                    code(
                        self.mailbox
                            .acknowledge_envelopes(self.request(message, auth))
                            .await,
                    )
                }
                8 => {
                    // Dropping the stream at once ends the subscription.
                    let request = self.request(SubscribeRequest::decode(body).ok()?, auth);
                    code(self.mailbox.subscribe(request).await)
                }
                9 => {
                    let request = self.request(RetractEnvelopeRequest::decode(body).ok()?, auth);
                    code(self.mailbox.retract_envelope(request).await)
                }
                _ => {
                    let request = self.request(DeleteMailboxRequest::decode(body).ok()?, auth);
                    code(self.mailbox.delete_mailbox(request).await)
                }
            };
            Some(code)
        })
    }

    fn request<T>(&self, message: T, authenticated: bool) -> Request<T> {
        let mut request = Request::new(message);
        if authenticated {
            if let Ok(value) = format!("Bearer {}", self.credential).parse() {
                request.metadata_mut().insert("authorization", value);
            }
        }
        request
    }
}

/// Returns the status code of a call's outcome.
fn code<T>(outcome: Result<Response<T>, Status>) -> Code {
    outcome.map_or_else(|status| status.code(), |_| Code::Ok)
}

/// Builds a registration request with a new identity and prekeys in `store`, signing a fresh
/// challenge from `registration`.
async fn registration_request(
    registration: &RegistrationService,
    store: &Store,
) -> anyhow::Result<RegisterDeviceRequest> {
    let challenge = registration
        .create_challenge(Request::new(CreateChallengeRequest {}))
        .await
        .map_err(|status| anyhow::anyhow!("no challenge: {}", status.message()))?
        .into_inner()
        .challenge;

    let mut rng = rand::rng();
    let txn = store.transaction();
    let mut request = txn.create_registration(0, SystemTime::now(), &mut rng)?;
    request.challenge_signature = txn.sign_registration(&challenge, &mut rng)?;
    request.challenge = challenge;
    txn.commit(Durability::Buffered)?;
    Ok(request)
}
