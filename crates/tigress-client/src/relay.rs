//! The connection to the relay: tonic clients that add the bearer credential, and conversions
//! between the relay API's messages and the core's types.

use std::time::Duration;

use tigress_core::DeviceAddress;
use tigress_core::keys::BundleParts;
use tigress_core::libsignal_protocol::PreKeyBundle;
use tigress_proto::relay::v1::keys_client::KeysClient;
use tigress_proto::relay::v1::mailbox_client::MailboxClient;
use tigress_proto::relay::v1::registration_client::RegistrationClient;
use tigress_proto::relay::v1::{
    AcknowledgeEnvelopesRequest, CreateChallengeRequest, DeleteMailboxRequest,
    FetchEnvelopesRequest, FetchEnvelopesResponse, GetPreKeyBundleRequest, GetPreKeyCountRequest,
    GetPreKeyCountResponse, RegisterDeviceRequest, RegisterDeviceResponse, RetractEnvelopeRequest,
    SendEnvelopeRequest, SendEnvelopeResponse, SubscribeRequest, SubscribeResponse,
    UploadPreKeysRequest, UploadPreKeysResponse,
};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request};

use crate::error::{ClientError, Result};

/// How long to wait for a TCP connection to the relay.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for any one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to one relay, optionally authenticated as one device.
#[derive(Clone)]
pub(crate) struct RelayConnection {
    url: String,
    channel: Channel,
    authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl std::fmt::Debug for RelayConnection {
    /// Leaves out the credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConnection")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RelayConnection {
    /// Connects to the relay at `url`. An `https://` relay's certificate must chain to
    /// `ca_pem` when given, or else to the Mozilla root certificates.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidRelayUrl`] for a URL that is not `http(s)://HOST:PORT`,
    /// [`ClientError::RelayUnreachable`] when no connection can be made.
    pub(crate) async fn connect(url: &str, ca_pem: Option<&str>) -> Result<Self> {
        let endpoint = endpoint(url, ca_pem)?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|error| ClientError::RelayUnreachable {
                url: url.to_owned(),
                reason: transport_reason(&error),
            })?;
        tracing::debug!(relay = url, "connected");
        Ok(Self {
            url: url.to_owned(),
            channel,
            authorization: None,
        })
    }

    /// Sends `credential` as the bearer credential on every later call.
    pub(crate) fn authenticate(mut self, credential: &str) -> Result<Self> {
        let value = format!("Bearer {credential}").parse().map_err(|_| {
            ClientError::InvalidRelayResponse {
                what: "credential",
                reason: "it is not printable ASCII".to_owned(),
            }
        })?;
        self.authorization = Some(value);
        Ok(self)
    }

    /// Builds a unary call's request, with the credential and [`CALL_TIMEOUT`].
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = self.stream_request(message);
        request.set_timeout(CALL_TIMEOUT);
        request
    }

    /// Builds a streaming call's request, with the credential and no deadline.
    fn stream_request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        request
    }

    fn status(&self, call: &'static str) -> impl FnOnce(tonic::Status) -> ClientError + '_ {
        move |status| ClientError::from_status(call, &self.url, status)
    }

    /// Registers a device: requests a challenge, lets `sign` sign it, and sends `draft` with
    /// the challenge and signature filled in.
    pub(crate) async fn register(
        &self,
        mut draft: RegisterDeviceRequest,
        sign: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
    ) -> Result<RegisterDeviceResponse> {
        let mut client = RegistrationClient::new(self.channel.clone());
        let challenge = client
            .create_challenge(self.request(CreateChallengeRequest {}))
            .await
            .map_err(self.status("CreateChallenge"))?
            .into_inner()
            .challenge;
        draft.challenge_signature = sign(&challenge)?;
        draft.challenge = challenge;
        let response = client
            .register_device(self.request(draft))
            .await
            .map_err(self.status("RegisterDevice"))?;
        Ok(response.into_inner())
    }

    /// Fetches and checks a prekey bundle of `address`.
    pub(crate) async fn bundle(&self, address: &DeviceAddress) -> Result<PreKeyBundle> {
        let mut client = KeysClient::new(self.channel.clone());
        let response = client
            .get_pre_key_bundle(self.request(GetPreKeyBundleRequest {
                address: address.to_string(),
            }))
            .await
            .map_err(|status| match status.code() {
                Code::NotFound => ClientError::UnknownAddress {
                    address: address.to_string(),
                },
                _ => ClientError::from_status("GetPreKeyBundle", &self.url, status),
            })?
            .into_inner();

        let missing = |field: &str| ClientError::InvalidRelayResponse {
            what: "prekey bundle",
            reason: format!("{field} is missing"),
        };
        let signed = response
            .signed_prekey
            .ok_or_else(|| missing("signed_prekey"))?;
        let kyber = response
            .kyber_prekey
            .ok_or_else(|| missing("kyber_prekey"))?;
        let parts = BundleParts {
            registration_id: response.registration_id,
            identity_key: response.identity_key,
            signed_prekey: (signed.key_id, signed.public_key, signed.signature),
            one_time_prekey: response
                .one_time_prekey
                .map(|key| (key.key_id, key.public_key)),
            kyber_prekey: (kyber.key_id, kyber.public_key, kyber.signature),
        };
        Ok(parts.into_bundle(address)?)
    }

    /// Sends one envelope.
    pub(crate) async fn send(&self, request: SendEnvelopeRequest) -> Result<SendEnvelopeResponse> {
        let destination = request.destination.clone();
        let mut client = MailboxClient::new(self.channel.clone());
        let response = client
            .send_envelope(self.request(request))
            .await
            .map_err(|status| match status.code() {
                Code::NotFound => ClientError::UnknownAddress {
                    address: destination,
                },
                _ => ClientError::from_status("SendEnvelope", &self.url, status),
            })?;
        Ok(response.into_inner())
    }

    /// Fetches one page of the device's mailbox.
    pub(crate) async fn fetch(&self, address: &str) -> Result<FetchEnvelopesResponse> {
        let mut client = MailboxClient::new(self.channel.clone());
        let request = FetchEnvelopesRequest {
            address: address.to_owned(),
            limit: 0,
        };
        let response = client
            .fetch_envelopes(self.request(request))
            .await
            .map_err(self.status("FetchEnvelopes"))?;
        Ok(response.into_inner())
    }

    /// Deletes processed envelopes from the device's mailbox.
    pub(crate) async fn acknowledge(&self, address: &str, envelope_ids: Vec<u64>) -> Result<u32> {
        let mut client = MailboxClient::new(self.channel.clone());
        let request = AcknowledgeEnvelopesRequest {
            address: address.to_owned(),
            envelope_ids,
        };
        let response = client
            .acknowledge_envelopes(self.request(request))
            .await
            .map_err(self.status("AcknowledgeEnvelopes"))?;
        Ok(response.into_inner().removed)
    }

    /// Opens the subscription stream of the device's mailbox; it runs without a deadline.
    pub(crate) async fn subscribe(
        &self,
        address: &str,
    ) -> Result<tonic::Streaming<SubscribeResponse>> {
        let mut client = MailboxClient::new(self.channel.clone());
        let request = self.stream_request(SubscribeRequest {
            address: address.to_owned(),
        });
        let response = client
            .subscribe(request)
            .await
            .map_err(self.status("Subscribe"))?;
        Ok(response.into_inner())
    }

    /// Returns how many one-time prekeys of each kind the device has left on the relay.
    pub(crate) async fn prekey_count(&self, address: &str) -> Result<GetPreKeyCountResponse> {
        let mut client = KeysClient::new(self.channel.clone());
        let request = GetPreKeyCountRequest {
            address: address.to_owned(),
        };
        let response = client
            .get_pre_key_count(self.request(request))
            .await
            .map_err(self.status("GetPreKeyCount"))?;
        Ok(response.into_inner())
    }

    /// Uploads prekeys of the device.
    pub(crate) async fn upload_prekeys(
        &self,
        request: UploadPreKeysRequest,
    ) -> Result<UploadPreKeysResponse> {
        let mut client = KeysClient::new(self.channel.clone());
        let response = client
            .upload_pre_keys(self.request(request))
            .await
            .map_err(self.status("UploadPreKeys"))?;
        Ok(response.into_inner())
    }

    /// Takes back an envelope the device sent, if the receiver has not acknowledged it.
    pub(crate) async fn retract(
        &self,
        destination: &str,
        client_message_id: &[u8],
    ) -> Result<bool> {
        let mut client = MailboxClient::new(self.channel.clone());
        let request = RetractEnvelopeRequest {
            destination: destination.to_owned(),
            client_message_id: client_message_id.to_vec(),
        };
        let response = client
            .retract_envelope(self.request(request))
            .await
            .map_err(self.status("RetractEnvelope"))?;
        Ok(response.into_inner().retracted)
    }

    /// Deletes the device's own mailbox with its keys and credential.
    pub(crate) async fn delete_mailbox(&self, address: &str) -> Result<u32> {
        let mut client = MailboxClient::new(self.channel.clone());
        let request = DeleteMailboxRequest {
            address: address.to_owned(),
        };
        let response = client
            .delete_mailbox(self.request(request))
            .await
            .map_err(self.status("DeleteMailbox"))?;
        Ok(response.into_inner().envelopes_deleted)
    }
}

/// Checks that `url` is a relay URL the SDK can connect to, `http(s)://HOST:PORT`, without
/// connecting, so that a command can reject it before it touches a device's home.
///
/// # Errors
///
/// [`ClientError::InvalidRelayUrl`] naming the URL and the rule it breaks.
pub fn check_relay_url(url: &str) -> Result<()> {
    endpoint(url, None).map(drop)
}

/// Builds the endpoint for a relay URL.
fn endpoint(url: &str, ca_pem: Option<&str>) -> Result<Endpoint> {
    let invalid = |rule| ClientError::InvalidRelayUrl {
        url: url.to_owned(),
        rule,
    };
    let tls = url.starts_with("https://");
    if !tls && !url.starts_with("http://") {
        return Err(invalid(
            "must start with http:// or https://, for example http://127.0.0.1:50051",
        ));
    }
    check_authority(url).map_err(invalid)?;
    let endpoint =
        Endpoint::from_shared(url.to_owned()).map_err(|_| invalid("is not a valid URL"))?;
    let endpoint = endpoint.connect_timeout(CONNECT_TIMEOUT);
    if !tls {
        return Ok(endpoint);
    }
    let mut config = ClientTlsConfig::new().with_webpki_roots();
    if let Some(ca_pem) = ca_pem {
        config = config.ca_certificate(Certificate::from_pem(ca_pem));
    }
    endpoint
        .tls_config(config)
        .map_err(|error| ClientError::InvalidRelayUrl {
            url: url.to_owned(),
            rule: tls_rule(&error),
        })
}

/// Keeps a TLS configuration error's message as a static rule, since such errors only come
/// from a CA certificate that does not parse.
fn tls_rule(error: &tonic::transport::Error) -> &'static str {
    tracing::warn!(%error, "TLS configuration rejected");
    "its TLS settings were rejected: check the CA certificate file"
}

/// Checks that a URL is `http(s)://HOST:PORT` with a numeric port and no path.
fn check_authority(url: &str) -> std::result::Result<(), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err("must be http://HOST:PORT without a path, for example http://127.0.0.1:50051");
    }
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Err("must name a port, for example http://127.0.0.1:50051");
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err("must name a host, for example http://127.0.0.1:50051");
    }
    if port.parse::<u16>().map_or(true, |port| port == 0) {
        return Err("the port must be a number from 1 to 65535");
    }
    Ok(())
}

/// Returns the innermost cause of a transport error, which names the actual failure
/// (connection refused, timed out).
fn transport_reason(error: &tonic::transport::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
