//! Devices, their prekeys and registration challenges in the sled backend.

use prost::Message;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use tigress_proto::relay::v1::{EcPreKey, KyberPreKey};
use uuid::Uuid;

use super::SledStorage;
use super::keys::{
    KIND_EC, KIND_KYBER, decode, decode_u64, prekey_key, prekey_prefix, printable, storage_error,
};
use crate::error::RelayError;
use crate::storage::{
    DeviceRecord, NewDevice, PreKeyCounts, PreKeyUpdate, StorageResult, TakenBundle,
};

impl SledStorage {
    pub(super) fn insert_challenge_now(
        &self,
        challenge: [u8; 32],
        expires_at_ms: u64,
    ) -> StorageResult<()> {
        self.challenges
            .insert(challenge, &expires_at_ms.to_be_bytes())
            .map_err(storage_error("store a challenge"))?;
        Ok(())
    }

    pub(super) fn take_challenge_now(&self, challenge: &[u8], now_ms: u64) -> StorageResult<bool> {
        let Some(expiry) = self
            .challenges
            .remove(challenge)
            .map_err(storage_error("take a challenge"))?
        else {
            return Ok(false);
        };
        Ok(now_ms <= decode_u64("challenges", &expiry)?)
    }

    pub(super) fn create_device_now(&self, device: &NewDevice) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        for key in &device.one_time_prekeys {
            batch.insert(
                prekey_key(device.uuid, KIND_EC, key.key_id),
                key.encode_to_vec(),
            );
        }
        for key in &device.one_time_kyber_prekeys {
            batch.insert(
                prekey_key(device.uuid, KIND_KYBER, key.key_id),
                key.encode_to_vec(),
            );
        }
        let encoded = device.record.encode_to_vec();
        let created = (&self.devices, &self.prekeys)
            .transaction(|(devices, prekeys)| {
                prekeys.apply_batch(&batch)?;
                devices.insert(device.uuid.as_bytes(), encoded.as_slice())?;
                Ok::<_, ConflictableTransactionError<RelayError>>(())
            })
            .map_err(RelayError::from);
        self.device_cache.forget(device.uuid);
        created
    }

    pub(super) fn read_device(&self, uuid: Uuid) -> StorageResult<Option<DeviceRecord>> {
        let Some(bytes) = self
            .devices
            .get(uuid.as_bytes())
            .map_err(storage_error("read a device"))?
        else {
            return Ok(None);
        };
        decode(&format!("devices/{uuid}"), &bytes).map(Some)
    }

    pub(super) fn update_prekeys_now(
        &self,
        uuid: Uuid,
        update: &PreKeyUpdate,
    ) -> StorageResult<PreKeyCounts> {
        let _guard = self.lock_device(uuid);
        let record = self
            .read_device(uuid)?
            .ok_or_else(|| RelayError::UnknownAddress {
                field: "address",
                address: tigress_core::DeviceAddress::primary(uuid).to_string(),
            })?;
        let replaced = self.replace_prekeys(uuid, update, record);
        self.device_cache.forget(uuid);
        replaced?;
        self.count_prekeys(uuid)
    }

    pub(super) fn count_prekeys(&self, uuid: Uuid) -> StorageResult<PreKeyCounts> {
        let count = |kind| -> StorageResult<u32> {
            let mut count = 0u32;
            for entry in self.prekeys.scan_prefix(prekey_prefix(uuid, kind)) {
                entry.map_err(storage_error("count prekeys"))?;
                count += 1;
            }
            Ok(count)
        };
        Ok(PreKeyCounts {
            one_time_prekeys: count(KIND_EC)?,
            one_time_kyber_prekeys: count(KIND_KYBER)?,
        })
    }

    /// Takes the first one-time prekey of each kind under the device's lock, so that no two
    /// callers get the same key, and removes both in one batch.
    pub(super) fn take_bundle_now(&self, uuid: Uuid) -> StorageResult<Option<TakenBundle>> {
        let _guard = self.lock_device(uuid);
        let Some(record) = self.read_device(uuid)? else {
            return Ok(None);
        };
        let ec = self.first_prekey(uuid, KIND_EC)?;
        let kyber = self.first_prekey(uuid, KIND_KYBER)?;

        let mut batch = sled::Batch::default();
        for (key, _) in ec.iter().chain(kyber.iter()) {
            batch.remove(key.clone());
        }
        self.prekeys
            .apply_batch(batch)
            .map_err(storage_error("consume prekeys"))?;

        let one_time_prekey = ec
            .map(|(key, value)| decode::<EcPreKey>(&printable(&key), &value))
            .transpose()?;
        let one_time_kyber_prekey = kyber
            .map(|(key, value)| decode::<KyberPreKey>(&printable(&key), &value))
            .transpose()?;
        Ok(Some(TakenBundle {
            record,
            one_time_prekey,
            one_time_kyber_prekey,
        }))
    }

    /// Deletes a device, its prekeys, queue, usage and send records in one transaction.
    /// Returns how many envelopes were queued.
    pub(super) fn delete_device_now(&self, uuid: Uuid) -> StorageResult<u32> {
        let _guard = self.lock_device(uuid);
        let prekeys = self.keys_with_prefix(&self.prekeys, uuid.as_bytes())?;
        let queued = self.keys_with_prefix(&self.queue, uuid.as_bytes())?;
        let sent = self.keys_with_prefix(&self.sent, uuid.as_bytes())?;
        let deleted = (
            &self.devices,
            &self.prekeys,
            &self.queue,
            &self.sent,
            &self.usage,
        )
            .transaction(|(devices, prekeys_tree, queue, sent_tree, usage)| {
                devices.remove(uuid.as_bytes())?;
                usage.remove(uuid.as_bytes())?;
                for key in &prekeys {
                    prekeys_tree.remove(key.as_slice())?;
                }
                for key in &queued {
                    queue.remove(key.as_slice())?;
                }
                for key in &sent {
                    sent_tree.remove(key.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<RelayError>>(())
            })
            .map_err(RelayError::from);
        self.device_cache.forget(uuid);
        deleted?;
        Ok(u32::try_from(queued.len()).unwrap_or(u32::MAX))
    }

    fn first_prekey(
        &self,
        uuid: Uuid,
        kind: u8,
    ) -> StorageResult<Option<(sled::IVec, sled::IVec)>> {
        self.prekeys
            .scan_prefix(prekey_prefix(uuid, kind))
            .next()
            .transpose()
            .map_err(storage_error("read a prekey"))
    }

    fn replace_prekeys(
        &self,
        uuid: Uuid,
        update: &PreKeyUpdate,
        mut record: DeviceRecord,
    ) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        if !update.one_time_prekeys.is_empty() {
            self.remove_all(uuid, KIND_EC, &mut batch)?;
            for key in &update.one_time_prekeys {
                batch.insert(prekey_key(uuid, KIND_EC, key.key_id), key.encode_to_vec());
            }
        }
        if !update.one_time_kyber_prekeys.is_empty() {
            self.remove_all(uuid, KIND_KYBER, &mut batch)?;
            for key in &update.one_time_kyber_prekeys {
                batch.insert(
                    prekey_key(uuid, KIND_KYBER, key.key_id),
                    key.encode_to_vec(),
                );
            }
        }
        if let Some(signed) = &update.signed_prekey {
            record.signed_prekey = Some(signed.clone());
        }
        if let Some(last_resort) = &update.kyber_last_resort_prekey {
            record.kyber_last_resort_prekey = Some(last_resort.clone());
        }

        let encoded = record.encode_to_vec();
        (&self.devices, &self.prekeys)
            .transaction(|(devices, prekeys)| {
                prekeys.apply_batch(&batch)?;
                devices.insert(uuid.as_bytes(), encoded.as_slice())?;
                Ok::<_, ConflictableTransactionError<RelayError>>(())
            })
            .map_err(RelayError::from)
    }

    pub(super) fn keys_with_prefix(
        &self,
        tree: &sled::Tree,
        prefix: &[u8],
    ) -> StorageResult<Vec<Vec<u8>>> {
        tree.scan_prefix(prefix)
            .keys()
            .map(|key| {
                key.map(|key| key.to_vec())
                    .map_err(storage_error("read keys to delete"))
            })
            .collect()
    }

    fn remove_all(&self, uuid: Uuid, kind: u8, batch: &mut sled::Batch) -> StorageResult<()> {
        for entry in self.prekeys.scan_prefix(prekey_prefix(uuid, kind)) {
            let (key, _) = entry.map_err(storage_error("read prekeys"))?;
            batch.remove(key);
        }
        Ok(())
    }
}
