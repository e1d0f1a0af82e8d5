//! The measured phases of a load run over registered [`Client`]s: no-op calls, durable sends
//! alone, durable sends with delivery through subscriptions, and a deep queue.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::FutureExt as _;
use tigress_benches::stats::Summary;
use tigress_proto::relay::v1::mailbox_client::MailboxClient;
use tigress_proto::relay::v1::subscribe_response::Event;
use tigress_proto::relay::v1::{
    AcknowledgeEnvelopesRequest, EnvelopeType, SendEnvelopeRequest, SubscribeRequest,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::StreamExt as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;

use crate::clients::{Client, authorized};
use crate::progress::Progress;

/// The smallest envelope a load run sends: a send timestamp and a sequence number.
pub(crate) const MIN_ENVELOPE_SIZE: usize = 16;
/// How long deliveries may trail the last send before the run fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Most envelope ids in one acknowledgement, the relay's limit.
const ACKNOWLEDGE_BATCH: usize = 256;

/// Calls per second and the latency of each call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Throughput {
    /// Calls that succeeded.
    pub(crate) calls: u64,
    /// Wall time from the first call to the last response.
    pub(crate) elapsed: Duration,
    /// Latency of one call.
    pub(crate) latency: Summary,
}

impl Throughput {
    /// Returns calls per second.
    pub(crate) fn per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// The result of the delivery phase.
pub(crate) struct SendResult {
    /// The sends.
    pub(crate) sends: Throughput,
    /// Time from the start of a send to the envelope's arrival on the receiver's subscription.
    pub(crate) delivery: Summary,
}

/// Runs `calls` health checks from every client at once: the same server stack serving a call
/// that does no work.
pub(crate) async fn noop(clients: &[Client], calls: u64) -> anyhow::Result<Throughput> {
    let workers = clients.iter().map(|client| client.health.clone()).collect();
    measure("no-op", workers, calls, |mut health, _| async move {
        health
            .check(HealthCheckRequest::default())
            .await
            .context("health check failed")?;
        Ok(health)
    })
    .await
}

/// Sends `messages` envelopes of `size` bytes from every client to the next, and no client
/// reads its mailbox: the rate of durable sends alone, like for like with the no-op calls.
pub(crate) async fn send(
    clients: &[Client],
    messages: u64,
    size: usize,
) -> anyhow::Result<Throughput> {
    let epoch = Instant::now();
    measure(
        "send",
        senders(clients, size),
        messages,
        move |sender, sequence| sender.send(epoch, sequence),
    )
    .await
}

/// Opens a subscription on every client, which first drains what earlier phases queued, then
/// sends `messages` envelopes from every client to the next and times each from its send to
/// its arrival on the subscription.
pub(crate) async fn deliver(
    clients: &[Client],
    messages: u64,
    size: usize,
) -> anyhow::Result<SendResult> {
    let epoch = Instant::now();
    let (ready, mut subscribed) = mpsc::channel(clients.len());
    let mut subscribers = JoinSet::new();
    for client in clients {
        let subscriber = Subscriber {
            mailbox: client.mailbox.clone(),
            authorization: client.authorization(),
            address: client.address.clone(),
        };
        subscribers.spawn(subscriber.drain(messages, epoch, ready.clone()));
    }
    for _ in clients {
        subscribed
            .recv()
            .await
            .context("a subscription ended before it was open")?;
    }

    let sends = measure(
        "deliver",
        senders(clients, size),
        messages,
        move |sender, sequence| sender.send(epoch, sequence),
    )
    .await?;

    let mut delivery = tokio::time::timeout(DELIVERY_TIMEOUT, join_latencies(subscribers))
        .await
        .with_context(|| {
            format!("envelopes were still undelivered {DELIVERY_TIMEOUT:?} after the last send")
        })??;
    Ok(SendResult {
        sends,
        delivery: Summary::of(&mut delivery),
    })
}

/// Queues `total` envelopes of `size` bytes, spread over the clients' mailboxes, and fetches
/// none of them.
pub(crate) async fn queue(
    clients: &[Client],
    total: u64,
    size: usize,
) -> anyhow::Result<Throughput> {
    let per_client = total.div_ceil(clients.len() as u64);
    let epoch = Instant::now();
    measure(
        "queue",
        senders(clients, size),
        per_client,
        move |sender, sequence| sender.send(epoch, sequence),
    )
    .await
}

/// Runs `call` `calls` times on every worker at once, each worker on a task of its own, and
/// records the latency of every call. A call takes its worker and gives it back.
async fn measure<W, F, Fut>(
    label: &'static str,
    workers: Vec<W>,
    calls: u64,
    call: F,
) -> anyhow::Result<Throughput>
where
    W: Send + 'static,
    F: Fn(W, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<W>> + Send,
{
    let progress = Progress::start(label, calls * workers.len() as u64);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for mut worker in workers {
        let call = call.clone();
        let done = progress.counter();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(usize::try_from(calls).unwrap_or(0));
            for sequence in 0..calls {
                let begun = Instant::now();
                worker = call(worker, sequence).await?;
                latencies.push(begun.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = join_latencies(tasks).await?;
    let elapsed = started.elapsed();
    progress.finish();
    Ok(Throughput {
        calls: latencies.len() as u64,
        elapsed,
        latency: Summary::of(&mut latencies),
    })
}

/// Waits for every task and gathers their latencies; the first failure fails the phase.
async fn join_latencies(
    mut tasks: JoinSet<anyhow::Result<Vec<Duration>>>,
) -> anyhow::Result<Vec<Duration>> {
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined.context("a load task panicked")??);
    }
    Ok(all)
}

/// One client sending to the next client's mailbox.
struct Sender {
    mailbox: MailboxClient<Channel>,
    authorization: MetadataValue<Ascii>,
    destination: String,
    size: usize,
}

/// Makes a sender for every client, each sending to the client after it.
fn senders(clients: &[Client], size: usize) -> Vec<Sender> {
    clients
        .iter()
        .enumerate()
        .map(|(index, client)| Sender {
            mailbox: client.mailbox.clone(),
            authorization: client.authorization(),
            destination: clients[(index + 1) % clients.len()].address.clone(),
            size,
        })
        .collect()
}

impl Sender {
    /// Sends one envelope stamped with the time since `epoch` and waits for the relay's durable
    /// acknowledgement.
    async fn send(mut self, epoch: Instant, sequence: u64) -> anyhow::Result<Self> {
        let request = SendEnvelopeRequest {
            destination: self.destination.clone(),
            client_message_id: uuid::Uuid::new_v4().into_bytes().to_vec(),
            r#type: EnvelopeType::SignalMessage.into(),
            content: content(epoch, sequence, self.size),
        };
        self.mailbox
            .send_envelope(authorized(&self.authorization, request))
            .await
            .context("SendEnvelope failed")?;
        Ok(self)
    }
}

/// A client reading its own mailbox through a subscription.
struct Subscriber {
    mailbox: MailboxClient<Channel>,
    authorization: MetadataValue<Ascii>,
    address: String,
}

impl Subscriber {
    /// Drains the backlog, then receives `expected` envelopes, acknowledging every envelope in
    /// batches, and returns the time each new one took from the start of its send. Reports on
    /// `ready` once the backlog is drained.
    async fn drain(
        mut self,
        expected: u64,
        epoch: Instant,
        ready: mpsc::Sender<()>,
    ) -> anyhow::Result<Vec<Duration>> {
        let request = SubscribeRequest {
            address: self.address.clone(),
        };
        let mut stream = self
            .mailbox
            .subscribe(authorized(&self.authorization, request))
            .await
            .context("Subscribe failed")?
            .into_inner();

        let mut latencies = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        let mut received = Vec::with_capacity(ACKNOWLEDGE_BATCH);
        let mut caught_up = false;
        while (latencies.len() as u64) < expected {
            let Some(first) = stream.next().await else {
                bail!(
                    "subscription ended after {} of {expected} envelopes",
                    latencies.len()
                );
            };
            let mut next = Some(first);
            while let Some(item) = next {
                match item.context("subscription failed")?.event {
                    Some(Event::Envelope(envelope)) => {
                        if caught_up {
                            let sent = sent_at(&envelope.content);
                            latencies.push(epoch.elapsed().saturating_sub(sent));
                        }
                        received.push(envelope.id);
                    }
                    Some(Event::QueueEmpty(_)) => {
                        caught_up = true;
                        let _ = ready.send(()).await;
                    }
                    None => {}
                }
                // Take whatever else has arrived, so that one acknowledgement covers it.
                next = if received.len() < ACKNOWLEDGE_BATCH {
                    stream.next().now_or_never().flatten()
                } else {
                    None
                };
            }
            self.acknowledge(&mut received).await?;
        }
        Ok(latencies)
    }

    async fn acknowledge(&mut self, received: &mut Vec<u64>) -> anyhow::Result<()> {
        if received.is_empty() {
            return Ok(());
        }
        let request = AcknowledgeEnvelopesRequest {
            address: self.address.clone(),
            envelope_ids: std::mem::take(received),
        };
        self.mailbox
            .acknowledge_envelopes(authorized(&self.authorization, request))
            .await
            .context("AcknowledgeEnvelopes failed")?;
        Ok(())
    }
}

/// Builds envelope content of `size` bytes: the nanoseconds since `epoch`, the sequence number,
/// then zeros.
fn content(epoch: Instant, sequence: u64, size: usize) -> Vec<u8> {
    let nanos = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut content = Vec::with_capacity(size.max(MIN_ENVELOPE_SIZE));
    content.extend_from_slice(&nanos.to_le_bytes());
    content.extend_from_slice(&sequence.to_le_bytes());
    content.resize(size.max(MIN_ENVELOPE_SIZE), 0);
    content
}

/// Reads the send time that [`content`] wrote.
fn sent_at(content: &[u8]) -> Duration {
    let nanos = content
        .get(..8)
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map_or(0, u64::from_le_bytes);
    Duration::from_nanos(nanos)
}
