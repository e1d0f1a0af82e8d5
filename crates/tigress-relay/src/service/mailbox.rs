//! The Mailbox service: send, fetch and acknowledge envelopes.

use std::sync::Arc;

use tigress_proto::relay::v1::mailbox_server::Mailbox;
use tigress_proto::relay::v1::{
    AcknowledgeEnvelopesRequest, AcknowledgeEnvelopesResponse, DeleteMailboxRequest,
    DeleteMailboxResponse, Envelope, EnvelopeType, FetchEnvelopesRequest, FetchEnvelopesResponse,
    RetractEnvelopeRequest, RetractEnvelopeResponse, SendEnvelopeRequest, SendEnvelopeResponse,
};
use tonic::{Request, Response, Status};
use tracing::{Span, field, instrument};

use super::now_ms;
use crate::auth::{Caller, authenticate, parse_address};
use crate::config::{
    DEFAULT_FETCH_LIMIT, MAX_ACKNOWLEDGE_IDS, MAX_FETCH_LIMIT, MAX_FETCH_RESPONSE_BYTES,
    RelayConfig,
};
use crate::error::{RelayError, reject};
use crate::storage::Storage;

/// Length of a client message id, in bytes.
const CLIENT_MESSAGE_ID_LEN: usize = 16;

/// Serves the Mailbox service.
pub(crate) struct MailboxService {
    storage: Arc<dyn Storage>,
    config: Arc<RelayConfig>,
}

impl MailboxService {
    pub(crate) fn new(storage: Arc<dyn Storage>, config: Arc<RelayConfig>) -> Self {
        Self { storage, config }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, RelayError> {
        let caller = authenticate(self.storage.as_ref(), request.metadata()).await?;
        Span::current().record("device", field::display(caller.address()));
        Ok(caller)
    }

    async fn retract(
        &self,
        request: Request<RetractEnvelopeRequest>,
    ) -> Result<RetractEnvelopeResponse, RelayError> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let destination = parse_address("destination", &request.destination)?;
        check_client_message_id(&request.client_message_id)?;
        let retracted = self
            .storage
            .retract(caller.uuid, destination.uuid(), &request.client_message_id)
            .await?;
        tracing::debug!(retracted, "envelope retraction");
        Ok(RetractEnvelopeResponse { retracted })
    }

    async fn delete(
        &self,
        request: Request<DeleteMailboxRequest>,
    ) -> Result<DeleteMailboxResponse, RelayError> {
        let caller = self.caller(&request).await?;
        caller.check_own("address", &request.get_ref().address)?;
        let envelopes_deleted = self.storage.delete_device(caller.uuid).await?;
        tracing::info!(envelopes_deleted, "mailbox deleted");
        Ok(DeleteMailboxResponse { envelopes_deleted })
    }

    async fn send(
        &self,
        request: Request<SendEnvelopeRequest>,
    ) -> Result<SendEnvelopeResponse, RelayError> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let destination = parse_address("destination", &request.destination)?;
        check_client_message_id(&request.client_message_id)?;
        let envelope_type = match EnvelopeType::try_from(request.r#type) {
            Ok(EnvelopeType::PrekeyMessage | EnvelopeType::SignalMessage) => request.r#type,
            _ => {
                return Err(RelayError::invalid(
                    "type",
                    format!(
                        "{} is not PREKEY_MESSAGE (1) or SIGNAL_MESSAGE (2)",
                        request.r#type
                    ),
                ));
            }
        };
        if request.content.is_empty() {
            return Err(RelayError::invalid("content", "is empty"));
        }
        if request.content.len() > self.config.max_envelope_bytes {
            return Err(RelayError::LimitExceeded {
                subject: format!("content of {} bytes", request.content.len()),
                limit: self.config.max_envelope_bytes as u64,
                name: "max_envelope_bytes",
            });
        }
        if self.storage.device(destination.uuid()).await?.is_none() {
            return Err(RelayError::UnknownAddress {
                field: "destination",
                address: destination.to_string(),
            });
        }

        let envelope = Envelope {
            id: 0,
            source: caller.address().to_string(),
            client_message_id: request.client_message_id,
            r#type: envelope_type,
            content: request.content,
            server_timestamp_ms: now_ms(),
        };
        let size = envelope.content.len();
        let enqueued = self
            .storage
            .enqueue(destination.uuid(), caller.uuid, envelope)
            .await?;
        tracing::debug!(
            envelope_id = enqueued.envelope_id,
            size,
            duplicate = enqueued.duplicate,
            "envelope queued"
        );
        Ok(SendEnvelopeResponse {
            envelope_id: enqueued.envelope_id,
            duplicate: enqueued.duplicate,
        })
    }

    async fn fetch(
        &self,
        request: Request<FetchEnvelopesRequest>,
    ) -> Result<FetchEnvelopesResponse, RelayError> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        caller.check_own("address", &request.address)?;
        let limit = match request.limit {
            0 => DEFAULT_FETCH_LIMIT,
            limit if limit > MAX_FETCH_LIMIT => {
                return Err(RelayError::invalid(
                    "limit",
                    format!("{limit} is more than the maximum of {MAX_FETCH_LIMIT}"),
                ));
            }
            limit => limit,
        };
        let fetched = self
            .storage
            .fetch(caller.uuid, limit as usize, MAX_FETCH_RESPONSE_BYTES)
            .await?;
        tracing::debug!(
            envelopes = fetched.envelopes.len(),
            more = fetched.more,
            "mailbox fetched"
        );
        Ok(FetchEnvelopesResponse {
            envelopes: fetched.envelopes,
            more: fetched.more,
        })
    }

    async fn acknowledge(
        &self,
        request: Request<AcknowledgeEnvelopesRequest>,
    ) -> Result<AcknowledgeEnvelopesResponse, RelayError> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        caller.check_own("address", &request.address)?;
        if request.envelope_ids.len() > MAX_ACKNOWLEDGE_IDS {
            let rule = format!(
                "has {} ids, more than the maximum of {MAX_ACKNOWLEDGE_IDS}",
                request.envelope_ids.len()
            );
            return Err(RelayError::invalid("envelope_ids", rule));
        }
        let removed = self
            .storage
            .acknowledge(caller.uuid, &request.envelope_ids)
            .await?;
        tracing::debug!(
            requested = request.envelope_ids.len(),
            removed,
            "envelopes acknowledged"
        );
        Ok(AcknowledgeEnvelopesResponse { removed })
    }
}

fn check_client_message_id(client_message_id: &[u8]) -> Result<(), RelayError> {
    if client_message_id.len() != CLIENT_MESSAGE_ID_LEN {
        let rule = format!(
            "must be {CLIENT_MESSAGE_ID_LEN} bytes, got {}",
            client_message_id.len()
        );
        return Err(RelayError::invalid("client_message_id", rule));
    }
    Ok(())
}

#[tonic::async_trait]
impl Mailbox for MailboxService {
    #[instrument(skip_all, fields(device = field::Empty))]
    async fn send_envelope(
        &self,
        request: Request<SendEnvelopeRequest>,
    ) -> Result<Response<SendEnvelopeResponse>, Status> {
        self.send(request)
            .await
            .map(Response::new)
            .map_err(|error| reject("SendEnvelope", error))
    }

    #[instrument(skip_all, fields(device = field::Empty))]
    async fn fetch_envelopes(
        &self,
        request: Request<FetchEnvelopesRequest>,
    ) -> Result<Response<FetchEnvelopesResponse>, Status> {
        self.fetch(request)
            .await
            .map(Response::new)
            .map_err(|error| reject("FetchEnvelopes", error))
    }

    #[instrument(skip_all, fields(device = field::Empty))]
    async fn acknowledge_envelopes(
        &self,
        request: Request<AcknowledgeEnvelopesRequest>,
    ) -> Result<Response<AcknowledgeEnvelopesResponse>, Status> {
        self.acknowledge(request)
            .await
            .map(Response::new)
            .map_err(|error| reject("AcknowledgeEnvelopes", error))
    }

    #[instrument(skip_all, fields(device = field::Empty))]
    async fn retract_envelope(
        &self,
        request: Request<RetractEnvelopeRequest>,
    ) -> Result<Response<RetractEnvelopeResponse>, Status> {
        self.retract(request)
            .await
            .map(Response::new)
            .map_err(|error| reject("RetractEnvelope", error))
    }

    #[instrument(skip_all, fields(device = field::Empty))]
    async fn delete_mailbox(
        &self,
        request: Request<DeleteMailboxRequest>,
    ) -> Result<Response<DeleteMailboxResponse>, Status> {
        self.delete(request)
            .await
            .map(Response::new)
            .map_err(|error| reject("DeleteMailbox", error))
    }
}
