//! The Registration service: challenges and device registration.

use std::sync::Arc;

use rand::Rng;
use tigress_core::DeviceAddress;
use tigress_core::keys::{
    check_registration_id, decode_identity_key, registration_message, verify_signature,
};
use tigress_proto::relay::v1::registration_server::Registration;
use tigress_proto::relay::v1::{
    CreateChallengeRequest, CreateChallengeResponse, RegisterDeviceRequest, RegisterDeviceResponse,
};
use tonic::{Request, Response, Status};
use tracing::instrument;
use uuid::Uuid;

use super::{Shared, check_rate, now_ms, validate};
use crate::auth::issue_credential;
use crate::config::CHALLENGE_TTL;
use crate::error::RelayError;
use crate::storage::{DeviceRecord, NewDevice};

/// Length of a registration challenge, in bytes.
const CHALLENGE_LEN: usize = 32;

/// Serves the Registration service.
pub(crate) struct RegistrationService {
    shared: Arc<Shared>,
}

impl RegistrationService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Takes a registration token for the client's IP address.
    fn check_rate<T>(&self, request: &Request<T>) -> Result<(), RelayError> {
        match request.remote_addr() {
            Some(peer) => check_rate(
                &self.shared.registration_limiter,
                peer.ip(),
                "rate_limits.registration",
                "per client IP address",
            ),
            None => Ok(()),
        }
    }

    async fn issue_challenge(&self) -> Result<CreateChallengeResponse, RelayError> {
        let challenge: [u8; CHALLENGE_LEN] = rand::rng().random();
        let expires_at_ms = now_ms() + CHALLENGE_TTL.as_millis() as u64;
        self.shared
            .storage
            .insert_challenge(challenge, expires_at_ms)
            .await?;
        Ok(CreateChallengeResponse {
            challenge: challenge.to_vec(),
            expires_at_ms,
        })
    }

    async fn register(
        &self,
        request: RegisterDeviceRequest,
    ) -> Result<RegisterDeviceResponse, RelayError> {
        let identity = decode_identity_key(&request.identity_key)
            .map_err(RelayError::invalid_key("identity_key"))?;
        check_registration_id(request.registration_id)
            .map_err(RelayError::invalid_key("registration_id"))?;
        if request.challenge.len() != CHALLENGE_LEN {
            let rule = format!(
                "must be {CHALLENGE_LEN} bytes from CreateChallenge, got {}",
                request.challenge.len()
            );
            return Err(RelayError::invalid("challenge", rule));
        }
        let message = registration_message(&request.challenge, &request.identity_key);
        verify_signature(&identity, &message, &request.challenge_signature)
            .map_err(RelayError::invalid_key("challenge_signature"))?;

        let max = self.shared.limits.max_prekeys_per_upload;
        let signed_prekey =
            validate::signed_prekey("signed_prekey", request.signed_prekey.as_ref(), &identity)?;
        let last_resort = validate::kyber_prekey(
            "kyber_last_resort_prekey",
            request.kyber_last_resort_prekey.as_ref(),
            &identity,
        )?;
        validate::one_time_prekeys("one_time_prekeys", &request.one_time_prekeys, max)?;
        validate::one_time_kyber_prekeys(
            "one_time_kyber_prekeys",
            &request.one_time_kyber_prekeys,
            max,
            &identity,
        )?;

        if !self
            .shared
            .storage
            .take_challenge(&request.challenge, now_ms())
            .await?
        {
            return Err(RelayError::ChallengeNotValid);
        }

        let uuid = Uuid::new_v4();
        let credential = issue_credential(uuid);
        let record = DeviceRecord {
            identity_key: request.identity_key,
            registration_id: request.registration_id,
            credential_hash: credential.hash,
            signed_prekey: Some(signed_prekey),
            kyber_last_resort_prekey: Some(last_resort),
            created_at_ms: now_ms(),
        };
        let device = NewDevice {
            uuid,
            record,
            one_time_prekeys: request.one_time_prekeys,
            one_time_kyber_prekeys: request.one_time_kyber_prekeys,
        };
        self.shared.storage.create_device(device).await?;

        let address = DeviceAddress::primary(uuid).to_string();
        tracing::info!(device = %address, "device registered");
        Ok(RegisterDeviceResponse {
            address,
            credential: credential.text,
        })
    }
}

#[tonic::async_trait]
impl Registration for RegistrationService {
    #[instrument(skip_all)]
    async fn create_challenge(
        &self,
        request: Request<CreateChallengeRequest>,
    ) -> Result<Response<CreateChallengeResponse>, Status> {
        let result = match self.check_rate(&request) {
            Ok(()) => self.issue_challenge().await,
            Err(error) => Err(error),
        };
        self.shared.respond("CreateChallenge", result)
    }

    #[instrument(skip_all)]
    async fn register_device(
        &self,
        request: Request<RegisterDeviceRequest>,
    ) -> Result<Response<RegisterDeviceResponse>, Status> {
        let result = match self.check_rate(&request) {
            Ok(()) => self.register(request.into_inner()).await,
            Err(error) => Err(error),
        };
        self.shared.respond("RegisterDevice", result)
    }
}
