//! The relay's settings and limits, with their defaults, and the optional TOML file that sets
//! them. Flags and environment variables of the binary override the file, which overrides the
//! defaults.
//!
//! ```toml
//! [limits]
//! max_envelope_bytes = 98304      # one envelope's content
//! max_queued_envelopes = 5000     # per mailbox
//! max_queued_bytes = 52428800     # per mailbox
//! max_prekeys_per_upload = 100    # per kind
//! envelope_ttl = "14d"            # queued envelopes older than this are deleted
//! sweep_interval = "1h"           # how often the sweeper runs
//! storage_cache_bytes = 268435456 # memory for sled's cache of the database
//! device_cache_records = 16384    # device records kept in memory; 0 turns the cache off
//!
//! [rate_limits]                   # token buckets: `burst` at once, refilled per minute
//! send = { burst = 60, per_minute = 600 }          # per sending device
//! bundle_fetch = { burst = 30, per_minute = 120 }  # per fetching device
//! registration = { burst = 30, per_minute = 30 }   # per client IP address
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Default largest envelope content, in bytes: 96 KiB, Signal's cap for one device message. A
/// share message is padded to at most 64 KiB before encryption, and a PreKey message adds under
/// 2 KiB of PQXDH material (the Kyber1024 ciphertext is 1568 bytes), so every share fits with
/// room to spare.
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 96 * 1024;

/// Default most one-time prekeys of each kind in one upload or registration, as in Signal's keys
/// API. A Kyber1024 prekey is 1.6 KiB, so a full upload stays under 200 KiB.
pub const DEFAULT_MAX_PREKEYS_PER_UPLOAD: usize = 100;

/// Default most envelopes queued for one mailbox. A device that shares credentials receives a
/// handful of messages per share; 5000 leaves room for a device that stays offline for weeks
/// while bounding what one mailbox can make the relay store.
pub const DEFAULT_MAX_QUEUED_ENVELOPES: u64 = 5000;

/// Default most bytes of envelope content queued for one mailbox: 50 MiB, about 500 of the
/// largest envelopes.
pub const DEFAULT_MAX_QUEUED_BYTES: u64 = 50 * 1024 * 1024;

/// Default time a queued envelope is kept: 14 days, well past the 24-hour default expiry of an
/// offer, so that a device offline for two weeks still gets its messages.
pub const DEFAULT_ENVELOPE_TTL: Duration = Duration::from_secs(14 * 24 * 3600);

/// Default interval of the sweeper that deletes expired envelopes, challenges and records.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Default memory for sled's cache of the database: 256 MiB. sled's own default is 1 GiB, and
/// the relay reads mostly what was written recently (queues drained soon after they fill), so a
/// quarter of that keeps the hot part of the queues cached while leaving a small host room.
pub const DEFAULT_STORAGE_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// Default number of device records the relay keeps in memory. A record is about 1.8 KiB, most
/// of it the Kyber last-resort prekey, so a full cache takes about 30 MiB.
pub const DEFAULT_DEVICE_CACHE_RECORDS: usize = 16_384;

/// Envelopes returned by one fetch when the request sets no limit.
pub const DEFAULT_FETCH_LIMIT: u32 = 100;

/// Maximum envelopes one fetch returns.
pub const MAX_FETCH_LIMIT: u32 = 256;

/// Maximum envelope ids one acknowledgement may carry.
pub const MAX_ACKNOWLEDGE_IDS: usize = 256;

/// Maximum bytes of envelope content in one fetch response, so that a response stays under the
/// 4 MiB message limit that gRPC clients apply by default.
pub const MAX_FETCH_RESPONSE_BYTES: usize = 3 * 1024 * 1024;

/// How long a registration challenge stays valid.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(300);

/// Envelopes a subscription sends before it waits for acknowledgements, as Signal's server
/// does.
pub const MAX_IN_FLIGHT_ENVELOPES: usize = 256;

/// A token bucket: up to `burst` requests at once, refilled at `per_minute`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed at once.
    pub burst: u32,
    /// Requests added back per minute.
    pub per_minute: u32,
}

/// Every limit of the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest envelope content accepted, in bytes.
    pub max_envelope_bytes: usize,
    /// Most one-time prekeys of each kind per upload.
    pub max_prekeys_per_upload: usize,
    /// Most envelopes queued per mailbox.
    pub max_queued_envelopes: u64,
    /// Most bytes of envelope content queued per mailbox.
    pub max_queued_bytes: u64,
    /// How long a queued envelope is kept.
    pub envelope_ttl: Duration,
    /// How often the sweeper runs.
    pub sweep_interval: Duration,
    /// Memory for the storage engine's cache, in bytes. sled evicts beyond it, so the relay's
    /// memory stays bounded however much is queued.
    pub storage_cache_bytes: u64,
    /// Device records kept in memory, so that authenticating a call does not read the storage
    /// engine. 0 turns the cache off.
    pub device_cache_records: usize,
    /// Sends per sending device.
    pub send_rate: RateLimit,
    /// Bundle fetches per fetching device.
    pub bundle_fetch_rate: RateLimit,
    /// Registrations, and registration challenges, per client IP address. Each link share
    /// registers a throwaway device on each side, and many users can share one address behind
    /// a NAT, so this is looser than it would be for long-lived devices alone.
    pub registration_rate: RateLimit,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_envelope_bytes: DEFAULT_MAX_ENVELOPE_BYTES,
            max_prekeys_per_upload: DEFAULT_MAX_PREKEYS_PER_UPLOAD,
            max_queued_envelopes: DEFAULT_MAX_QUEUED_ENVELOPES,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            envelope_ttl: DEFAULT_ENVELOPE_TTL,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            storage_cache_bytes: DEFAULT_STORAGE_CACHE_BYTES,
            device_cache_records: DEFAULT_DEVICE_CACHE_RECORDS,
            // A device sends a few messages per share; bursts cover a busy sync.
            send_rate: RateLimit {
                burst: 60,
                per_minute: 600,
            },
            // Each fetch consumes one-time prekeys of another device, so it is kept scarce.
            bundle_fetch_rate: RateLimit {
                burst: 30,
                per_minute: 120,
            },
            registration_rate: RateLimit {
                burst: 30,
                per_minute: 30,
            },
        }
    }
}

/// Settings of one relay.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Folder of the relay's sled database.
    pub data_dir: PathBuf,
    /// The limits.
    pub limits: Limits,
}

impl RelayConfig {
    /// Settings with every limit at its default, storing data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            limits: Limits::default(),
        }
    }
}

impl Limits {
    /// The defaults with rate limits too high to matter, for tests and benchmarks that register
    /// and send faster than any device would.
    pub fn without_rate_limits() -> Self {
        let unlimited = RateLimit {
            burst: 1_000_000,
            per_minute: 60_000_000,
        };
        Self {
            send_rate: unlimited,
            bundle_fetch_rate: unlimited,
            registration_rate: unlimited,
            ..Self::default()
        }
    }
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("invalid configuration file {}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key.
        reason: String,
    },
}

/// The shape of the TOML configuration file; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The `[limits]` table.
    #[serde(default)]
    pub limits: LimitsFile,
    /// The `[rate_limits]` table.
    #[serde(default)]
    pub rate_limits: RateLimitsFile,
}

/// The `[limits]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// See [`Limits::max_envelope_bytes`].
    pub max_envelope_bytes: Option<usize>,
    /// See [`Limits::max_prekeys_per_upload`].
    pub max_prekeys_per_upload: Option<usize>,
    /// See [`Limits::max_queued_envelopes`].
    pub max_queued_envelopes: Option<u64>,
    /// See [`Limits::max_queued_bytes`].
    pub max_queued_bytes: Option<u64>,
    /// See [`Limits::envelope_ttl`], as `14d`.
    #[serde(default, deserialize_with = "duration")]
    pub envelope_ttl: Option<Duration>,
    /// See [`Limits::sweep_interval`], as `1h`.
    #[serde(default, deserialize_with = "duration")]
    pub sweep_interval: Option<Duration>,
    /// See [`Limits::storage_cache_bytes`].
    pub storage_cache_bytes: Option<u64>,
    /// See [`Limits::device_cache_records`].
    pub device_cache_records: Option<usize>,
}

/// The `[rate_limits]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsFile {
    /// See [`Limits::send_rate`].
    pub send: Option<RateLimit>,
    /// See [`Limits::bundle_fetch_rate`].
    pub bundle_fetch: Option<RateLimit>,
    /// See [`Limits::registration_rate`].
    pub registration: Option<RateLimit>,
}

impl ConfigFile {
    /// Reads and parses a configuration file.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file and, for invalid content, the key and the rule.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: Self = toml::from_str(&text).map_err(|error| ConfigError::Invalid {
            path: path.to_owned(),
            reason: error.message().to_owned()
                + &error
                    .span()
                    .map(|span| format!(" (at byte {})", span.start))
                    .unwrap_or_default(),
        })?;
        file.check().map_err(|reason| ConfigError::Invalid {
            path: path.to_owned(),
            reason,
        })?;
        Ok(file)
    }

    /// Applies the file's settings over `limits`.
    pub fn apply(&self, limits: &mut Limits) {
        let file = &self.limits;
        set(&mut limits.max_envelope_bytes, file.max_envelope_bytes);
        set(
            &mut limits.max_prekeys_per_upload,
            file.max_prekeys_per_upload,
        );
        set(&mut limits.max_queued_envelopes, file.max_queued_envelopes);
        set(&mut limits.max_queued_bytes, file.max_queued_bytes);
        set(&mut limits.envelope_ttl, file.envelope_ttl);
        set(&mut limits.sweep_interval, file.sweep_interval);
        set(&mut limits.storage_cache_bytes, file.storage_cache_bytes);
        set(&mut limits.device_cache_records, file.device_cache_records);
        set(&mut limits.send_rate, self.rate_limits.send);
        set(&mut limits.bundle_fetch_rate, self.rate_limits.bundle_fetch);
        set(&mut limits.registration_rate, self.rate_limits.registration);
    }

    fn check(&self) -> Result<(), String> {
        let rates = [
            ("rate_limits.send", self.rate_limits.send),
            ("rate_limits.bundle_fetch", self.rate_limits.bundle_fetch),
            ("rate_limits.registration", self.rate_limits.registration),
        ];
        for (name, rate) in rates {
            if let Some(rate) = rate {
                if rate.burst == 0 || rate.per_minute == 0 {
                    return Err(format!("{name} must have burst and per_minute above 0"));
                }
            }
        }
        if self.limits.max_envelope_bytes == Some(0) {
            return Err("limits.max_envelope_bytes must be above 0".to_owned());
        }
        Ok(())
    }
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    tigress_core::duration::parse_duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<ConfigFile, ConfigError> {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("relay.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile::read(&path)
    }

    #[test]
    fn file_overrides_defaults() {
        let file = read("[limits]\nmax_queued_envelopes = 7\nenvelope_ttl = \"2d\"\nstorage_cache_bytes = 1048576\ndevice_cache_records = 0\n[rate_limits]\nsend = { burst = 5, per_minute = 50 }\n").unwrap();
        let mut limits = Limits::default();
        file.apply(&mut limits);
        assert_eq!(limits.max_queued_envelopes, 7);
        assert_eq!(limits.storage_cache_bytes, 1_048_576);
        assert_eq!(limits.device_cache_records, 0);
        assert_eq!(limits.envelope_ttl, Duration::from_secs(2 * 86_400));
        assert_eq!(
            limits.send_rate,
            RateLimit {
                burst: 5,
                per_minute: 50
            }
        );
        assert_eq!(limits.max_envelope_bytes, DEFAULT_MAX_ENVELOPE_BYTES);
    }

    #[test]
    fn invalid_files_name_the_key() {
        let error = read("[limits]\nmax_queued_envelopez = 7\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("max_queued_envelopez"), "{error}");
        let error = read("[limits]\nenvelope_ttl = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("invalid duration \"soon\""), "{error}");
        let error = read("[rate_limits]\nsend = { burst = 0, per_minute = 1 }\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("rate_limits.send must have burst and per_minute above 0"),
            "{error}"
        );
    }
}
