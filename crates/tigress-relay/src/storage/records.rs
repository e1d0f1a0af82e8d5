//! Records the relay stores, encoded with protobuf so that fields can be added later without a
//! migration.

use tigress_proto::relay::v1::{KyberPreKey, SignedPreKey};

/// Everything the relay keeps about a device besides its one-time prekeys and its mailbox.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceRecord {
    /// The identity key, 33 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub identity_key: Vec<u8>,
    /// The registration id.
    #[prost(uint32, tag = "2")]
    pub registration_id: u32,
    /// SHA-256 of the bearer credential's secret.
    #[prost(bytes = "vec", tag = "3")]
    pub credential_hash: Vec<u8>,
    /// The current signed EC prekey.
    #[prost(message, optional, tag = "4")]
    pub signed_prekey: Option<SignedPreKey>,
    /// The last-resort Kyber prekey.
    #[prost(message, optional, tag = "5")]
    pub kyber_last_resort_prekey: Option<KyberPreKey>,
    /// When the device registered, in milliseconds since the Unix epoch.
    #[prost(uint64, tag = "6")]
    pub created_at_ms: u64,
}
