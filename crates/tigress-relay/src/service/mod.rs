//! The gRPC services of the relay API, one file per service of `tigress.relay.v1`, and the
//! state they share.

pub(crate) mod keys;
pub(crate) mod mailbox;
pub(crate) mod registration;
mod validate;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tonic::{Response, Status};
use uuid::Uuid;

use crate::config::Limits;
use crate::error::{RelayError, reject};
use crate::metrics::Metrics;
use crate::notify::MailboxNotifier;
use crate::rate_limit::RateLimiter;
use crate::storage::Storage;

/// What every service of one relay shares.
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) limits: Limits,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) notifier: MailboxNotifier,
    pub(crate) send_limiter: RateLimiter<Uuid>,
    pub(crate) bundle_limiter: RateLimiter<Uuid>,
    pub(crate) registration_limiter: RateLimiter<IpAddr>,
    /// Becomes true when the relay shuts down, which ends every subscription.
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        limits: Limits,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            send_limiter: RateLimiter::new(limits.send_rate),
            bundle_limiter: RateLimiter::new(limits.bundle_fetch_rate),
            registration_limiter: RateLimiter::new(limits.registration_rate),
            notifier: MailboxNotifier::default(),
            storage,
            limits,
            metrics,
            shutdown,
        }
    }

    /// Counts a call and turns its result into a gRPC response, logging a rejection.
    pub(crate) fn respond<T>(
        &self,
        call: &'static str,
        result: Result<T, RelayError>,
    ) -> Result<Response<T>, Status> {
        match result {
            Ok(message) => {
                self.metrics.record_call(call, tonic::Code::Ok);
                Ok(Response::new(message))
            }
            Err(error) => {
                self.metrics.record_call(call, error.code());
                Err(reject(call, error))
            }
        }
    }

    /// Drops rate-limit buckets and notifiers that no one uses any more.
    pub(crate) fn forget_idle(&self) {
        let now = Instant::now();
        self.send_limiter.forget_full(now);
        self.bundle_limiter.forget_full(now);
        self.registration_limiter.forget_full(now);
        self.notifier.forget_unwatched();
    }
}

/// Takes a token from `limiter` for `key`.
pub(crate) fn check_rate<K: std::hash::Hash + Eq>(
    limiter: &RateLimiter<K>,
    key: K,
    name: &'static str,
    per: &'static str,
) -> Result<(), RelayError> {
    limiter
        .check(key, Instant::now())
        .map_err(|retry_after| RelayError::RateLimited {
            name,
            limit: limiter.limit(),
            per,
            retry_after,
        })
}

/// Returns the current time in milliseconds since the Unix epoch, or 0 if the clock is before 1970.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
