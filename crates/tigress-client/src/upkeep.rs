//! Prekey upkeep: the home device keeps enough one-time prekeys on the relay, and rotates its
//! signed prekey and last-resort Kyber prekey on a schedule.
//!
//! - After registration and after every sync, the device reads its counts from the relay. When
//!   either kind of one-time prekey is below [`PREKEY_REFILL_THRESHOLD`], it uploads a new batch
//!   of [`ONE_TIME_PREKEY_BATCH`](crate::ONE_TIME_PREKEY_BATCH) of that kind, which replaces the
//!   ones on the relay (Signal's rule).
//! - Every [`SIGNED_PREKEY_ROTATION`], it uploads a new signed prekey and a new last-resort Kyber
//!   prekey.
//!
//! The private halves of replaced and rotated keys stay in the store, so that a PQXDH message
//! built from a bundle fetched before the change still decrypts. The throwaway devices of link
//! shares live for one share and skip upkeep.

use std::time::{Duration, SystemTime};

use prost::Message;
use tigress_core::Durability;
use tigress_proto::relay::v1::{EcPreKey, KyberPreKey, UploadPreKeysRequest};

use crate::device::{Device, ONE_TIME_PREKEY_BATCH};
use crate::error::Result;
use crate::records;
use crate::shares::millis;

/// Below this many one-time prekeys of a kind on the relay, a new batch is uploaded. Signal
/// refills at 10 too: enough for a few senders to start sessions before the next sync.
pub const PREKEY_REFILL_THRESHOLD: u32 = 10;

/// How often the signed prekey and the last-resort Kyber prekey are replaced: every 7 days,
/// which bounds how long a stolen signed prekey stays useful while costing one small upload a
/// week.
pub const SIGNED_PREKEY_ROTATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// When the signed prekey was last rotated.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct UpkeepRecord {
    /// In milliseconds since the Unix epoch.
    #[prost(uint64, tag = "1")]
    pub(crate) signed_prekey_rotated_at_ms: u64,
}

/// What one round of upkeep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpkeepReport {
    /// One-time EC prekeys uploaded.
    pub one_time_prekeys: usize,
    /// One-time Kyber prekeys uploaded.
    pub one_time_kyber_prekeys: usize,
    /// Whether the signed and last-resort prekeys were rotated.
    pub rotated: bool,
}

impl Device {
    /// Tops up one-time prekeys and rotates the signed prekeys when due.
    ///
    /// # Errors
    ///
    /// [`crate::ClientError::NotRegistered`], or a relay or store error.
    pub async fn maintain_prekeys(&self) -> Result<UpkeepReport> {
        let address = self.profile()?.address;
        let relay = self.relay().await?;
        let counts = relay.prekey_count(&address).await?;
        let now = SystemTime::now();
        // Registration writes the record; a home without one rotates at once.
        let record: UpkeepRecord =
            records::read_committed(&self.store, records::UPKEEP)?.unwrap_or_default();
        let since_rotation = millis(now).saturating_sub(record.signed_prekey_rotated_at_ms);

        let mut report = UpkeepReport::default();
        if counts.one_time_prekeys < PREKEY_REFILL_THRESHOLD {
            report.one_time_prekeys = ONE_TIME_PREKEY_BATCH;
        }
        if counts.one_time_kyber_prekeys < PREKEY_REFILL_THRESHOLD {
            report.one_time_kyber_prekeys = ONE_TIME_PREKEY_BATCH;
        }
        report.rotated = since_rotation >= millis_of(SIGNED_PREKEY_ROTATION);
        if report == UpkeepReport::default() {
            return Ok(report);
        }

        let request = self.prepare_upload(&address, report, now)?;
        let stored = relay.upload_prekeys(request).await?;
        if report.rotated {
            self.record_rotation(now)?;
        }
        tracing::info!(
            one_time_prekeys = stored.one_time_prekeys,
            one_time_kyber_prekeys = stored.one_time_kyber_prekeys,
            rotated = report.rotated,
            "prekeys uploaded"
        );
        Ok(report)
    }

    /// Generates the keys of an upload and stores their private halves before anything is sent.
    /// Returns how many one-time EC and Kyber prekeys the device has left on the relay.
    ///
    /// # Errors
    ///
    /// [`crate::ClientError::NotRegistered`], or a relay error.
    pub async fn prekey_counts(&self) -> Result<(u32, u32)> {
        let address = self.profile()?.address;
        let counts = self.relay().await?.prekey_count(&address).await?;
        Ok((counts.one_time_prekeys, counts.one_time_kyber_prekeys))
    }

    /// Records that the signed prekeys were made or rotated at `now`.
    pub(crate) fn record_rotation(&self, now: SystemTime) -> Result<()> {
        let txn = self.store.transaction();
        let record = UpkeepRecord {
            signed_prekey_rotated_at_ms: millis(now),
        };
        records::write(&txn, records::UPKEEP.to_vec(), &record);
        txn.commit(Durability::Flushed)?;
        Ok(())
    }

    fn prepare_upload(
        &self,
        address: &str,
        report: UpkeepReport,
        now: SystemTime,
    ) -> Result<UploadPreKeysRequest> {
        let mut rng = rand::rng();
        let txn = self.store.transaction();
        let mut request = UploadPreKeysRequest {
            address: address.to_owned(),
            ..UploadPreKeysRequest::default()
        };
        request.one_time_prekeys = txn
            .generate_one_time_prekeys(report.one_time_prekeys, &mut rng)?
            .into_iter()
            .map(EcPreKey::from)
            .collect();
        request.one_time_kyber_prekeys = txn
            .generate_one_time_kyber_prekeys(report.one_time_kyber_prekeys, now, &mut rng)?
            .into_iter()
            .map(KyberPreKey::from)
            .collect();
        if report.rotated {
            let signed = txn.generate_signed_prekey(now, &mut rng)?;
            let last_resort = txn.generate_last_resort_kyber_prekey(now, &mut rng)?;
            request.signed_prekey = Some(signed.into());
            request.kyber_last_resort_prekey = Some(last_resort.into());
        }
        txn.commit(Durability::Flushed)?;
        Ok(request)
    }
}

fn millis_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::relay;

    #[tokio::test]
    async fn low_prekey_counts_are_topped_up() {
        let (_data, url, _stop) = relay().await;
        let home = tempfile::tempdir().unwrap();
        let device = Device::open(home.path()).unwrap();
        device.register_with(&url, None, 5).await.unwrap();

        let report = device.maintain_prekeys().await.unwrap();
        assert_eq!(
            report,
            UpkeepReport {
                one_time_prekeys: 100,
                one_time_kyber_prekeys: 100,
                rotated: false
            }
        );
        assert_eq!(device.prekey_counts().await.unwrap(), (100, 100));
        assert_eq!(
            device.maintain_prekeys().await.unwrap(),
            UpkeepReport::default(),
            "a full relay was topped up again"
        );
    }

    #[tokio::test]
    async fn signed_prekeys_rotate_when_due() {
        let (_data, url, _stop) = relay().await;
        let home = tempfile::tempdir().unwrap();
        let device = Device::open(home.path()).unwrap();
        device.register(&url).await.unwrap();
        let week_ago = SystemTime::now() - SIGNED_PREKEY_ROTATION - Duration::from_secs(60);
        device.record_rotation(week_ago).unwrap();

        let report = device.maintain_prekeys().await.unwrap();
        assert!(report.rotated);
        assert_eq!(
            (report.one_time_prekeys, report.one_time_kyber_prekeys),
            (0, 0)
        );
        let signed_prekeys = device
            .store
            .scan_prefix(tigress_core::store::namespace::SIGNED_PREKEY)
            .unwrap();
        assert_eq!(
            signed_prekeys.len(),
            2,
            "the previous signed prekey must stay for late messages"
        );
        assert!(!device.maintain_prekeys().await.unwrap().rotated);
    }
}
