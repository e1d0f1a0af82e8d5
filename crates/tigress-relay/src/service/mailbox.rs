//! The Mailbox service: send, fetch, acknowledge, subscribe, retract and delete.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use tigress_proto::relay::v1::mailbox_server::Mailbox;
use tigress_proto::relay::v1::{
    AcknowledgeEnvelopesRequest, AcknowledgeEnvelopesResponse, DeleteMailboxRequest,
    DeleteMailboxResponse, Envelope, EnvelopeType, FetchEnvelopesRequest, FetchEnvelopesResponse,
    QueueEmpty, RetractEnvelopeRequest, RetractEnvelopeResponse, SendEnvelopeRequest,
    SendEnvelopeResponse, SubscribeRequest, SubscribeResponse, subscribe_response,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{Instrument as _, Span, field, instrument};
use uuid::Uuid;

use super::{Shared, check_rate, now_ms};
use crate::auth::{Caller, authenticate, parse_address};
use crate::config::{
    DEFAULT_FETCH_LIMIT, MAX_ACKNOWLEDGE_IDS, MAX_FETCH_LIMIT, MAX_FETCH_RESPONSE_BYTES,
    MAX_IN_FLIGHT_ENVELOPES,
};
use crate::error::{RelayError, reject};
use crate::storage::MailboxQuota;

/// Length of a client message id, in bytes.
const CLIENT_MESSAGE_ID_LEN: usize = 16;

/// Responses a subscription buffers before it waits for the client to read them.
const SUBSCRIPTION_BUFFER: usize = 32;

/// Serves the Mailbox service.
pub(crate) struct MailboxService {
    shared: Arc<Shared>,
}

impl MailboxService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, RelayError> {
        let caller = authenticate(self.shared.storage.as_ref(), request.metadata()).await?;
        Span::current().record("device", field::display(caller.address()));
        Ok(caller)
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
                let rule = format!(
                    "{} is not PREKEY_MESSAGE (1) or SIGNAL_MESSAGE (2)",
                    request.r#type
                );
                return Err(RelayError::invalid("type", rule));
            }
        };
        if request.content.is_empty() {
            return Err(RelayError::invalid("content", "is empty"));
        }
        let limits = &self.shared.limits;
        if request.content.len() > limits.max_envelope_bytes {
            return Err(RelayError::LimitExceeded {
                subject: format!("content of {} bytes", request.content.len()),
                limit: limits.max_envelope_bytes as u64,
                name: "max_envelope_bytes",
            });
        }
        check_rate(
            &self.shared.send_limiter,
            caller.uuid,
            "rate_limits.send",
            "per sending device",
        )?;
        if self
            .shared
            .storage
            .device(destination.uuid())
            .await?
            .is_none()
        {
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
        let quota = MailboxQuota {
            max_envelopes: limits.max_queued_envelopes,
            max_bytes: limits.max_queued_bytes,
        };
        let enqueued = self
            .shared
            .storage
            .enqueue(destination.uuid(), caller.uuid, envelope, quota)
            .await?;
        self.shared.notifier.notify(destination.uuid());
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
            .shared
            .storage
            .fetch(caller.uuid, 0, limit as usize, MAX_FETCH_RESPONSE_BYTES)
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
            .shared
            .storage
            .acknowledge(caller.uuid, &request.envelope_ids)
            .await?;
        // A subscription waiting for acknowledgements can send more now.
        self.shared.notifier.notify(caller.uuid);
        tracing::debug!(
            requested = request.envelope_ids.len(),
            removed,
            "envelopes acknowledged"
        );
        Ok(AcknowledgeEnvelopesResponse { removed })
    }

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<SubscriptionStream, RelayError> {
        let caller = self.caller(&request).await?;
        caller.check_own("address", &request.get_ref().address)?;
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let subscription = Subscription {
            shared: self.shared.clone(),
            owner: caller.uuid,
            sender,
        };
        tokio::spawn(subscription.run().instrument(Span::current()));
        Ok(Box::pin(ReceiverStream::new(receiver)))
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
            .shared
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
        let envelopes_deleted = self.shared.storage.delete_device(caller.uuid).await?;
        self.shared.notifier.notify(caller.uuid);
        tracing::info!(envelopes_deleted, "mailbox deleted");
        Ok(DeleteMailboxResponse { envelopes_deleted })
    }
}

type SubscriptionStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<SubscribeResponse, Status>> + Send>>;

/// One open subscription: sends the mailbox's envelopes as they come, with at most
/// [`MAX_IN_FLIGHT_ENVELOPES`] unacknowledged at a time.
struct Subscription {
    shared: Arc<Shared>,
    owner: Uuid,
    sender: mpsc::Sender<Result<SubscribeResponse, Status>>,
}

impl Subscription {
    async fn run(self) {
        let _open = self.shared.metrics.subscription_opened();
        tracing::debug!("subscription opened");
        let reason = match self.deliver().await {
            Ok(reason) => reason,
            Err(error) => {
                let status = reject("Subscribe", error);
                let _ = self.sender.send(Err(status)).await;
                "failed"
            }
        };
        tracing::debug!(reason, "subscription closed");
    }

    /// Sends envelopes until the client goes away or the relay shuts down, and returns which.
    async fn deliver(&self) -> Result<&'static str, RelayError> {
        let mut changes = self.shared.notifier.watch(self.owner);
        let mut shutdown = self.shared.shutdown.clone();
        // Envelopes sent and perhaps not yet acknowledged. Acknowledged ones leave the set only
        // when it is full, so that a busy mailbox is not checked once per new envelope.
        let mut in_flight: BTreeSet<u64> = BTreeSet::new();
        // The highest id sent. Envelopes become visible in id order, so newer ones are above it.
        let mut cursor = 0;
        let mut backlog_sent = false;
        loop {
            // Mark the current state seen before reading, so no change after the read is lost.
            changes.borrow_and_update();
            if *shutdown.borrow_and_update() {
                return Ok("relay shutting down");
            }
            if in_flight.len() >= MAX_IN_FLIGHT_ENVELOPES {
                let sent: Vec<u64> = in_flight.iter().copied().collect();
                in_flight = self
                    .shared
                    .storage
                    .still_queued(self.owner, &sent)
                    .await?
                    .into_iter()
                    .collect();
            }

            let room = MAX_IN_FLIGHT_ENVELOPES.saturating_sub(in_flight.len());
            // Whether every queued envelope has been sent; unknown while the window is full.
            let mut drained = false;
            if room > 0 {
                let page = self
                    .shared
                    .storage
                    .fetch(self.owner, cursor, room, MAX_FETCH_RESPONSE_BYTES)
                    .await?;
                drained = !page.more;
                for envelope in page.envelopes {
                    cursor = cursor.max(envelope.id);
                    in_flight.insert(envelope.id);
                    if !self
                        .send(subscribe_response::Event::Envelope(envelope))
                        .await
                    {
                        return Ok("client gone");
                    }
                }
            }
            if drained && !backlog_sent {
                backlog_sent = true;
                if !self
                    .send(subscribe_response::Event::QueueEmpty(QueueEmpty {}))
                    .await
                {
                    return Ok("client gone");
                }
            }
            if !drained && room > 0 {
                continue;
            }

            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok("notifier dropped");
                    }
                }
                _ = shutdown.changed() => return Ok("relay shutting down"),
                () = self.sender.closed() => return Ok("client gone"),
            }
        }
    }

    /// Sends one response; returns false when the client is gone.
    async fn send(&self, event: subscribe_response::Event) -> bool {
        self.sender
            .send(Ok(SubscribeResponse { event: Some(event) }))
            .await
            .is_ok()
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
    type SubscribeStream = SubscriptionStream;

    #[instrument(skip_all, fields(device = field::Empty))]
    async fn send_envelope(
        &self,
        request: Request<SendEnvelopeRequest>,
    ) -> Result<Response<SendEnvelopeResponse>, Status> {
        let result = self.send(request).await;
        self.shared.respond("SendEnvelope", result)
    }

    #[instrument(skip_all, fields(device = field::Empty))]
    async fn fetch_envelopes(
        &self,
        request: Request<FetchEnvelopesRequest>,
    ) -> Result<Response<FetchEnvelopesResponse>, Status> {
        let result = self.fetch(request).await;
        self.shared.respond("FetchEnvelopes", result)
    }

    #[instrument(skip_all, fields(device = field::Empty))]
    async fn acknowledge_envelopes(
        &self,
        request: Request<AcknowledgeEnvelopesRequest>,
    ) -> Result<Response<AcknowledgeEnvelopesResponse>, Status> {
        let result = self.acknowledge(request).await;
        self.shared.respond("AcknowledgeEnvelopes", result)
    }

    #[instrument(skip_all, fields(device = field::Empty))]
    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let result = self.subscribe(request).await;
        self.shared.respond("Subscribe", result)
    }

    #[instrument(skip_all, fields(device = field::Empty))]
    async fn retract_envelope(
        &self,
        request: Request<RetractEnvelopeRequest>,
    ) -> Result<Response<RetractEnvelopeResponse>, Status> {
        let result = self.retract(request).await;
        self.shared.respond("RetractEnvelope", result)
    }

    #[instrument(skip_all, fields(device = field::Empty))]
    async fn delete_mailbox(
        &self,
        request: Request<DeleteMailboxRequest>,
    ) -> Result<Response<DeleteMailboxResponse>, Status> {
        let result = self.delete(request).await;
        self.shared.respond("DeleteMailbox", result)
    }
}
