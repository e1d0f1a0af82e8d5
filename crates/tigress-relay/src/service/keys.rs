//! The Keys service: prekey upload, counts and bundle fetch.

use std::sync::Arc;

use tigress_core::keys::decode_identity_key;
use tigress_proto::relay::v1::keys_server::Keys;
use tigress_proto::relay::v1::{
    GetPreKeyBundleRequest, GetPreKeyBundleResponse, GetPreKeyCountRequest, GetPreKeyCountResponse,
    UploadPreKeysRequest, UploadPreKeysResponse,
};
use tonic::{Request, Response, Status};
use tracing::{Span, field, instrument};

use super::{Shared, check_rate, validate};
use crate::auth::{Caller, authenticate, parse_address};
use crate::error::RelayError;
use crate::storage::PreKeyUpdate;

/// Serves the Keys service.
pub(crate) struct KeysService {
    shared: Arc<Shared>,
}

impl KeysService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, RelayError> {
        let caller = authenticate(self.shared.storage.as_ref(), request.metadata()).await?;
        Span::current().record("device", field::display(caller.address()));
        Ok(caller)
    }

    async fn upload(
        &self,
        request: Request<UploadPreKeysRequest>,
    ) -> Result<UploadPreKeysResponse, RelayError> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        caller.check_own("address", &request.address)?;

        // The stored identity key was checked at registration.
        let identity = decode_identity_key(&caller.record.identity_key).map_err(|error| {
            RelayError::CorruptRecord {
                key: format!("devices/{}", caller.uuid),
                message: format!("identity_key {error}"),
            }
        })?;
        let max = self.shared.limits.max_prekeys_per_upload;
        let signed_prekey = request
            .signed_prekey
            .as_ref()
            .map(|key| validate::signed_prekey("signed_prekey", Some(key), &identity))
            .transpose()?;
        let kyber_last_resort_prekey = request
            .kyber_last_resort_prekey
            .as_ref()
            .map(|key| validate::kyber_prekey("kyber_last_resort_prekey", Some(key), &identity))
            .transpose()?;
        validate::one_time_prekeys("one_time_prekeys", &request.one_time_prekeys, max)?;
        validate::one_time_kyber_prekeys(
            "one_time_kyber_prekeys",
            &request.one_time_kyber_prekeys,
            max,
            &identity,
        )?;

        let update = PreKeyUpdate {
            signed_prekey,
            kyber_last_resort_prekey,
            one_time_prekeys: request.one_time_prekeys,
            one_time_kyber_prekeys: request.one_time_kyber_prekeys,
        };
        let counts = self
            .shared
            .storage
            .update_prekeys(caller.uuid, update)
            .await?;
        tracing::debug!(
            one_time_prekeys = counts.one_time_prekeys,
            one_time_kyber_prekeys = counts.one_time_kyber_prekeys,
            "prekeys uploaded"
        );
        Ok(UploadPreKeysResponse {
            one_time_prekeys: counts.one_time_prekeys,
            one_time_kyber_prekeys: counts.one_time_kyber_prekeys,
        })
    }

    async fn count(
        &self,
        request: Request<GetPreKeyCountRequest>,
    ) -> Result<GetPreKeyCountResponse, RelayError> {
        let caller = self.caller(&request).await?;
        caller.check_own("address", &request.get_ref().address)?;
        let counts = self.shared.storage.prekey_counts(caller.uuid).await?;
        Ok(GetPreKeyCountResponse {
            one_time_prekeys: counts.one_time_prekeys,
            one_time_kyber_prekeys: counts.one_time_kyber_prekeys,
        })
    }

    async fn bundle(
        &self,
        request: Request<GetPreKeyBundleRequest>,
    ) -> Result<GetPreKeyBundleResponse, RelayError> {
        let caller = self.caller(&request).await?;
        check_rate(
            &self.shared.bundle_limiter,
            caller.uuid,
            "rate_limits.bundle_fetch",
            "per fetching device",
        )?;
        let address = parse_address("address", &request.get_ref().address)?;
        let unknown = || RelayError::UnknownAddress {
            field: "address",
            address: address.to_string(),
        };
        let bundle = self
            .shared
            .storage
            .take_bundle(address.uuid())
            .await?
            .ok_or_else(unknown)?;

        let record = bundle.record;
        let kyber_prekey_is_last_resort = bundle.one_time_kyber_prekey.is_none();
        let kyber_prekey = bundle
            .one_time_kyber_prekey
            .or(record.kyber_last_resort_prekey);
        tracing::debug!(
            peer = %address,
            one_time_prekey = bundle.one_time_prekey.is_some(),
            kyber_prekey_is_last_resort,
            "bundle served"
        );
        Ok(GetPreKeyBundleResponse {
            address: address.to_string(),
            registration_id: record.registration_id,
            identity_key: record.identity_key,
            signed_prekey: record.signed_prekey,
            one_time_prekey: bundle.one_time_prekey,
            kyber_prekey,
            kyber_prekey_is_last_resort,
        })
    }
}

#[tonic::async_trait]
impl Keys for KeysService {
    #[instrument(skip_all, fields(device = field::Empty))]
    async fn upload_pre_keys(
        &self,
        request: Request<UploadPreKeysRequest>,
    ) -> Result<Response<UploadPreKeysResponse>, Status> {
        let result = self.upload(request).await;
        self.shared.respond("UploadPreKeys", result)
    }

    #[instrument(skip_all, fields(device = field::Empty))]
    async fn get_pre_key_count(
        &self,
        request: Request<GetPreKeyCountRequest>,
    ) -> Result<Response<GetPreKeyCountResponse>, Status> {
        let result = self.count(request).await;
        self.shared.respond("GetPreKeyCount", result)
    }

    #[instrument(skip_all, fields(device = field::Empty))]
    async fn get_pre_key_bundle(
        &self,
        request: Request<GetPreKeyBundleRequest>,
    ) -> Result<Response<GetPreKeyBundleResponse>, Status> {
        let result = self.bundle(request).await;
        self.shared.respond("GetPreKeyBundle", result)
    }
}
