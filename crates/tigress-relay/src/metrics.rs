//! Prometheus metrics: calls by method and status code, queued envelopes and bytes, open
//! subscriptions, and the latency of the group commit's flushes, served as text on
//! `GET /metrics` of a separate listener (`--metrics-listen`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::storage::Storage;

/// Upper bounds of the latency buckets, in seconds: 100 µs to 2.5 s.
const LATENCY_BOUNDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Longest HTTP request head the metrics listener reads.
const MAX_REQUEST_HEAD: usize = 8192;

/// How long the metrics listener waits for a request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A latency histogram with Prometheus buckets.
#[derive(Debug)]
pub struct Histogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// A histogram of durations in seconds, with buckets from 100 µs to 2.5 s.
    pub fn seconds() -> Self {
        Self {
            buckets: LATENCY_BOUNDS.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        for (bound, bucket) in LATENCY_BOUNDS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in LATENCY_BOUNDS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
        );
    }
}

/// The relay's counters.
#[derive(Debug)]
pub struct Metrics {
    calls: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    subscriptions: AtomicU64,
    flush_latency: std::sync::Arc<Histogram>,
}

impl Metrics {
    /// Counters that report the storage's flush latency.
    pub fn new(flush_latency: std::sync::Arc<Histogram>) -> Self {
        Self {
            calls: Mutex::new(BTreeMap::new()),
            subscriptions: AtomicU64::new(0),
            flush_latency,
        }
    }

    /// Counts one call of `method` that ended with `code`.
    pub fn record_call(&self, method: &'static str, code: tonic::Code) {
        let mut calls = self
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *calls.entry((method, code_name(code))).or_default() += 1;
    }

    /// Counts a subscription that opened, and returns a guard that counts it closed on drop.
    pub(crate) fn subscription_opened(&self) -> SubscriptionGuard<'_> {
        self.subscriptions.fetch_add(1, Ordering::Relaxed);
        SubscriptionGuard(self)
    }

    /// Renders every metric in the Prometheus text format.
    pub async fn render(&self, storage: &dyn Storage) -> String {
        let mut out = String::new();
        out.push_str("# HELP tigress_calls_total gRPC calls by method and status code.\n# TYPE tigress_calls_total counter\n");
        let calls = self
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for ((method, code), count) in calls {
            let _ = writeln!(
                out,
                "tigress_calls_total{{method=\"{method}\",code=\"{code}\"}} {count}"
            );
        }
        match storage.total_usage().await {
            Ok(usage) => {
                let _ = writeln!(
                    out,
                    "# HELP tigress_queued_envelopes Envelopes queued in all mailboxes.\n# TYPE tigress_queued_envelopes gauge\ntigress_queued_envelopes {}",
                    usage.envelopes
                );
                let _ = writeln!(
                    out,
                    "# HELP tigress_queued_bytes Bytes of queued envelopes in all mailboxes.\n# TYPE tigress_queued_bytes gauge\ntigress_queued_bytes {}",
                    usage.bytes
                );
            }
            Err(error) => tracing::error!(%error, "failed to read mailbox usage for metrics"),
        }
        let _ = writeln!(
            out,
            "# HELP tigress_subscriptions Open mailbox subscriptions.\n# TYPE tigress_subscriptions gauge\ntigress_subscriptions {}",
            self.subscriptions.load(Ordering::Relaxed)
        );
        self.flush_latency.render(
            "tigress_flush_seconds",
            "Latency of group-commit flushes to disk.",
            &mut out,
        );
        out
    }
}

/// Counts a subscription closed when dropped.
pub(crate) struct SubscriptionGuard<'m>(&'m Metrics);

impl Drop for SubscriptionGuard<'_> {
    fn drop(&mut self) {
        self.0.subscriptions.fetch_sub(1, Ordering::Relaxed);
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes. Every other request gets 404.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: std::sync::Arc<Metrics>,
    storage: std::sync::Arc<dyn Storage>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let (metrics, storage) = (metrics.clone(), storage.clone());
                tokio::spawn(async move {
                    if let Err(error) = answer(stream, &metrics, storage.as_ref()).await {
                        tracing::debug!(%peer, %error, "metrics request failed");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "failed to accept a metrics connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Answers one HTTP/1.1 request and closes the connection.
async fn answer(
    mut stream: TcpStream,
    metrics: &Metrics,
    storage: &dyn Storage,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let read_head = async {
        while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD
        {
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..read]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read_head)
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "request head timed out")
        })??;

    let request_line = head.split(|&byte| byte == b'\r').next().unwrap_or_default();
    let (status, body) = if request_line.starts_with(b"GET /metrics ") {
        ("200 OK", metrics.render(storage).await)
    } else {
        (
            "404 Not Found",
            "not found: metrics are at GET /metrics\n".to_owned(),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
