//! The time a device decides expiry by.
//!
//! Every expiry decision of the SDK reads a device's [`Clock`]. It sets the expiry time stamped
//! on an offer or an invitation and the start of a certificate the sender issues. It decides
//! when the receiver rejects an acceptance, when the sender moves a share to `expired` or
//! rejects a late link claim, and whether the receiver's certificate is valid. By default it
//! is the system clock. An app whose platform has a more trusted time source (network time, a
//! secure element's clock) can give the device its offset from the system clock with
//! [`Device::with_clock`](crate::Device::with_clock).

use std::time::{Duration, SystemTime};

/// The system clock, shifted by a fixed offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    offset: Offset,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Offset {
    #[default]
    None,
    Ahead(Duration),
    Behind(Duration),
}

impl Clock {
    /// Returns the system clock without an offset.
    pub const fn system() -> Self {
        Self {
            offset: Offset::None,
        }
    }

    /// Returns a clock that runs `by` ahead of the system clock.
    pub const fn ahead(by: Duration) -> Self {
        Self {
            offset: Offset::Ahead(by),
        }
    }

    /// Returns a clock that runs `by` behind the system clock.
    pub const fn behind(by: Duration) -> Self {
        Self {
            offset: Offset::Behind(by),
        }
    }

    /// Returns the current time by this clock. An offset that would leave the range of
    /// [`SystemTime`] stops at the system clock's time.
    pub fn now(&self) -> SystemTime {
        let system = SystemTime::now();
        let shifted = match self.offset {
            Offset::None => Some(system),
            Offset::Ahead(by) => system.checked_add(by),
            Offset::Behind(by) => system.checked_sub(by),
        };
        shifted.unwrap_or(system)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_shift_the_system_clock() {
        let hour = Duration::from_secs(3600);
        let before = SystemTime::now();
        let ahead = Clock::ahead(hour).now();
        let behind = Clock::behind(hour).now();
        let system = Clock::system().now();
        let after = SystemTime::now();

        assert!(ahead >= before + hour);
        assert!(ahead <= after + hour);
        assert!(behind >= before - hour);
        assert!(behind <= after - hour);
        assert!(system >= before);
        assert!(system <= after);
    }

    #[test]
    fn clock_out_of_range_keeps_system_time() {
        let before = SystemTime::now();
        let now = Clock::ahead(Duration::MAX).now();
        assert!(now >= before);
        assert!(now <= SystemTime::now());
    }
}
