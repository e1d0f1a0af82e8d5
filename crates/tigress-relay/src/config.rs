//! The relay's settings and limits, with their defaults.

use std::path::PathBuf;
use std::time::Duration;

/// Largest envelope content accepted, in bytes: 96 KiB, Signal's cap for one device message.
/// A share message is padded to at most 64 KiB before encryption, and a PreKey message adds
/// under 2 KiB of PQXDH material (the Kyber1024 ciphertext is 1568 bytes), so every share fits
/// with room to spare.
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 96 * 1024;

/// Most one-time prekeys of each kind in one upload or registration, as in Signal's keys API.
/// A Kyber1024 prekey is 1.6 KiB, so a full upload stays under 200 KiB.
pub const DEFAULT_MAX_PREKEYS_PER_UPLOAD: usize = 100;

/// Envelopes returned by one fetch when the request sets no limit.
pub const DEFAULT_FETCH_LIMIT: u32 = 100;

/// Maximum envelopes one fetch returns.
pub const MAX_FETCH_LIMIT: u32 = 256;

/// Most envelope ids one acknowledgement may carry.
pub const MAX_ACKNOWLEDGE_IDS: usize = 256;

/// Most bytes of envelope content in one fetch response, so that a response stays under the
/// 4 MiB message limit that gRPC clients apply by default.
pub const MAX_FETCH_RESPONSE_BYTES: usize = 3 * 1024 * 1024;

/// How long a registration challenge stays valid.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(300);

/// Settings of one relay.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Folder of the relay's sled database.
    pub data_dir: PathBuf,
    /// Largest envelope content accepted, in bytes.
    pub max_envelope_bytes: usize,
    /// Most one-time prekeys of each kind per upload.
    pub max_prekeys_per_upload: usize,
}

impl RelayConfig {
    /// Settings with every limit at its default, storing data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            max_envelope_bytes: DEFAULT_MAX_ENVELOPE_BYTES,
            max_prekeys_per_upload: DEFAULT_MAX_PREKEYS_PER_UPLOAD,
        }
    }
}
