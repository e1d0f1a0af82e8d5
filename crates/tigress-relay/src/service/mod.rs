//! The gRPC services of the relay API, one file per service of `tigress.relay.v1`.

pub(crate) mod keys;
pub(crate) mod mailbox;
pub(crate) mod registration;
mod validate;

use std::time::{SystemTime, UNIX_EPOCH};

/// Returns the current time in milliseconds since the Unix epoch, or 0 if the clock is before 1970.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
