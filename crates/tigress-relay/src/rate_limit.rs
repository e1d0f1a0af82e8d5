//! Token-bucket rate limits, one bucket per key (a device, or a client IP address).
//!
//! A bucket holds up to `burst` tokens and regains `per_minute` tokens a minute; each request
//! takes one. Buckets live in memory, so a restart forgives everyone; a relay behind several
//! nodes limits per node.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// One limit over many keys.
#[derive(Debug)]
pub(crate) struct RateLimiter<K> {
    limit: RateLimit,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: Hash + Eq> RateLimiter<K> {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes a token for `key`, or returns how long until one is available.
    pub(crate) fn check(&self, key: K, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.limit.burst);
        let per_second = f64::from(self.limit.per_minute) / 60.0;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let refilled = now.saturating_duration_since(bucket.updated).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refilled).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
    }

    /// Drops the buckets that are full again, which behave like absent ones, so that memory
    /// stays bounded by the keys active within one refill time.
    pub(crate) fn forget_full(&self, now: Instant) -> usize {
        let burst = f64::from(self.limit.burst);
        let per_second = f64::from(self.limit.per_minute) / 60.0;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = buckets.len();
        buckets.retain(|_, bucket| {
            bucket.tokens + now.saturating_duration_since(bucket.updated).as_secs_f64() * per_second
                < burst
        });
        before - buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let limiter = RateLimiter::new(RateLimit {
            burst: 3,
            per_minute: 60,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("a", start).is_ok());
        }
        let wait = limiter.check("a", start).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(900),
            "{wait:?}"
        );
        assert!(limiter.check("b", start).is_ok(), "keys share a bucket");
        assert!(limiter.check("a", start + Duration::from_secs(1)).is_ok());
        assert!(limiter.check("a", start + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let limiter = RateLimiter::new(RateLimit {
            burst: 2,
            per_minute: 60,
        });
        let start = Instant::now();
        limiter.check(1, start).unwrap();
        limiter.check(2, start).unwrap();
        assert_eq!(limiter.forget_full(start), 0);
        assert_eq!(limiter.forget_full(start + Duration::from_secs(2)), 2);
    }
}
