//! A device: its home folder, its store, its registration with a relay.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tigress_core::libsignal_protocol::{Fingerprint, IdentityKey};
use tigress_core::share::ShareId;
use tigress_core::x509::{CertificateAuthority, certificate_pem};
use tigress_core::{DeviceAddress, Durability, Store};
use tigress_proto::relay::v1::RegisterDeviceRequest;
use tokio::sync::OnceCell;

use crate::clock::Clock;
use crate::error::{ClientError, Result};
use crate::records::{
    self, LINK, LinkRecord, OWNER_CA, OwnerCaRecord, PROFILE, Profile, REGISTRATION_DRAFT,
};
use crate::relay::RelayConnection;

/// One-time prekeys of each kind created at registration: the most the relay takes in one
/// upload, as in Signal.
pub const ONE_TIME_PREKEY_BATCH: usize = 100;

/// The folder inside a home that contains the device store.
const STORE_FOLDER: &str = "store";

/// The folder inside a home that contains the throwaway devices of link shares.
const LINKS_FOLDER: &str = "links";

/// Common name of the owner certificate authority made by [`Device::create_owner_ca`] when
/// none is given.
pub const DEFAULT_OWNER_CA_NAME: &str = "tigress owner CA";

/// Safety number parameters: version 2 and 5200 hash iterations, as Signal uses.
const FINGERPRINT_VERSION: u32 = 2;
const FINGERPRINT_ITERATIONS: u32 = 5200;

/// A device of the SDK: a home folder with its store, and the device's relay registration.
///
/// Operations on one device serialise their store transactions, so one `Device` may be shared
/// between tasks. Only one process may open a home at a time.
pub struct Device {
    pub(crate) home: PathBuf,
    pub(crate) store: Store,
    /// The time expiry decisions read.
    pub(crate) clock: Clock,
    relay: OnceCell<RelayConnection>,
    /// The throwaway devices of link shares opened so far, by folder, kept open so that one
    /// process never opens a store twice.
    links: Mutex<HashMap<String, Arc<Device>>>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

/// A device's public description of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device's address.
    pub address: DeviceAddress,
    /// The relay it is registered with.
    pub relay_url: String,
    /// The serialized identity key, 33 bytes.
    pub identity_key: Vec<u8>,
    /// The registration id.
    pub registration_id: u32,
    /// This device's half of every safety number it forms with a peer: 30 digits in six groups
    /// of five.
    pub safety_number_half: String,
}

impl Device {
    /// Opens the device in `home`, creating the folder and an empty store if needed.
    ///
    /// # Errors
    ///
    /// [`ClientError::File`] when the folder cannot be created, [`ClientError::Core`] when the
    /// store cannot be opened (for example because another process has it open).
    pub fn open(home: impl AsRef<Path>) -> Result<Self> {
        let home = home.as_ref().to_owned();
        if home.exists() && !home.is_dir() {
            return Err(ClientError::HomeNotFolder { home });
        }
        create_private_folder(&home)?;
        let store = Store::open(&home.join(STORE_FOLDER))?;
        Ok(Self {
            home,
            store,
            clock: Clock::system(),
            relay: OnceCell::new(),
            links: Mutex::new(HashMap::new()),
        })
    }

    /// Opens the device in `home`, which must exist.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotRegistered`] when the folder does not exist, or the errors of
    /// [`open`](Self::open).
    pub fn open_existing(home: impl AsRef<Path>) -> Result<Self> {
        let home = home.as_ref();
        if home.exists() && !home.is_dir() {
            return Err(ClientError::HomeNotFolder {
                home: home.to_owned(),
            });
        }
        if !home.join(STORE_FOLDER).is_dir() {
            return Err(ClientError::NotRegistered {
                home: home.to_owned(),
            });
        }
        Self::open(home)
    }

    /// Returns the home folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Makes the device decide expiry by `clock` instead of the system clock, together with
    /// the throwaway devices of its link shares. See [`Clock`] for the decisions it covers.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Returns the clock the device decides expiry by.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Checks whether the device is registered with a relay.
    ///
    /// # Errors
    ///
    /// [`ClientError::Core`] when the store cannot be read.
    pub fn is_registered(&self) -> Result<bool> {
        Ok(records::read_committed::<Profile>(&self.store, PROFILE)?.is_some())
    }

    /// Creates the device's keys and registers it with the relay at `relay_url`.
    ///
    /// The keys are stored before the relay is asked, so a failed registration can simply be
    /// retried and reuses them.
    ///
    /// # Errors
    ///
    /// [`ClientError::AlreadyRegistered`], [`ClientError::InvalidRelayUrl`],
    /// [`ClientError::RelayUnreachable`] or [`ClientError::Relay`].
    pub async fn register(&self, relay_url: &str) -> Result<DeviceAddress> {
        self.register_with(relay_url, None, ONE_TIME_PREKEY_BATCH)
            .await
    }

    /// Registers as [`register`](Self::register) does, with an `https://` relay whose
    /// certificate chains to `ca_certificate_pem`. The CA is kept with the registration.
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register).
    pub async fn register_with_ca(
        &self,
        relay_url: &str,
        ca_certificate_pem: &str,
    ) -> Result<DeviceAddress> {
        self.register_with(relay_url, Some(ca_certificate_pem), ONE_TIME_PREKEY_BATCH)
            .await
    }

    /// Registers with `one_time_prekeys` one-time prekeys of each kind.
    pub(crate) async fn register_with(
        &self,
        relay_url: &str,
        ca_certificate_pem: Option<&str>,
        one_time_prekeys: usize,
    ) -> Result<DeviceAddress> {
        if let Some(profile) = records::read_committed::<Profile>(&self.store, PROFILE)? {
            return Err(ClientError::AlreadyRegistered {
                home: self.home.clone(),
                address: profile.address,
            });
        }
        let draft = self.registration_draft(one_time_prekeys)?;
        let connection = RelayConnection::connect(relay_url, ca_certificate_pem).await?;
        let response = connection
            .register(draft, |challenge| {
                let txn = self.store.transaction();
                Ok(txn.sign_registration(challenge, &mut rand::rng())?)
            })
            .await?;

        let address: DeviceAddress =
            response
                .address
                .parse()
                .map_err(
                    |error: tigress_core::Error| ClientError::InvalidRelayResponse {
                        what: "address",
                        reason: error.to_string(),
                    },
                )?;
        let profile = Profile {
            relay_url: relay_url.to_owned(),
            address: address.to_string(),
            credential: response.credential,
            ca_certificate_pem: ca_certificate_pem.unwrap_or_default().to_owned(),
        };
        let txn = self.store.transaction();
        records::write(&txn, PROFILE.to_vec(), &profile);
        txn.remove(REGISTRATION_DRAFT.to_vec());
        txn.commit(Durability::Flushed)?;

        self.record_rotation(std::time::SystemTime::now())?;
        tracing::info!(device = %address, relay = relay_url, "device registered");
        Ok(address)
    }

    /// Returns the device's address.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotRegistered`] before [`register`](Self::register).
    pub fn address(&self) -> Result<DeviceAddress> {
        let profile = self.profile()?;
        profile
            .address
            .parse()
            .map_err(|error: tigress_core::Error| {
                tigress_core::Error::CorruptRecord {
                    key: "app/profile".to_owned(),
                    reason: error.to_string(),
                }
                .into()
            })
    }

    /// Returns the device's address, relay, identity key and safety number half.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotRegistered`] before [`register`](Self::register).
    pub fn info(&self) -> Result<DeviceInfo> {
        let profile = self.profile()?;
        let address = self.address()?;
        let txn = self.store.transaction();
        let identity = *txn.local_identity()?.identity_key();
        let registration_id = txn.local_registration_id()?;
        drop(txn);

        let safety_number = safety_number(&address, &identity, &address, &identity)?;
        let safety_number_half = safety_number
            .split_whitespace()
            .take(6)
            .collect::<Vec<_>>()
            .join(" ");
        Ok(DeviceInfo {
            address,
            relay_url: profile.relay_url,
            identity_key: identity.serialize().to_vec(),
            registration_id,
            safety_number_half,
        })
    }

    /// Creates the owner certificate authority that signs the keys of stateful shares: a P-256
    /// key and a self-signed certificate for `CN=common_name`, valid for ten years.
    ///
    /// # Errors
    ///
    /// [`ClientError::OwnerCaExists`] when the device already has one.
    pub fn create_owner_ca(&self, common_name: &str) -> Result<()> {
        let txn = self.store.transaction();
        if txn.get(OWNER_CA)?.is_some() {
            return Err(ClientError::OwnerCaExists {
                home: self.home.clone(),
            });
        }
        let ca = CertificateAuthority::generate(common_name)?;
        let record = OwnerCaRecord {
            private_key_der: ca.dangerous_private_key_der()?.to_vec(),
            certificate_der: ca.certificate_der()?,
        };
        records::write(&txn, OWNER_CA.to_vec(), &record);
        txn.commit(Durability::Flushed)?;
        tracing::info!(common_name, "owner certificate authority created");
        Ok(())
    }

    /// Returns the owner certificate authority's certificate as PEM.
    ///
    /// # Errors
    ///
    /// [`ClientError::NoOwnerCa`] before [`create_owner_ca`](Self::create_owner_ca).
    pub fn owner_ca_certificate_pem(&self) -> Result<String> {
        let record = self.owner_ca_record()?;
        Ok(certificate_pem(&record.certificate_der)?)
    }

    /// Loads the owner certificate authority.
    pub(crate) fn owner_ca(&self) -> Result<CertificateAuthority> {
        let record = self.owner_ca_record()?;
        Ok(CertificateAuthority::from_parts(
            &record.private_key_der,
            &record.certificate_der,
        )?)
    }

    fn owner_ca_record(&self) -> Result<OwnerCaRecord> {
        records::read_committed(&self.store, OWNER_CA)?.ok_or_else(|| ClientError::NoOwnerCa {
            home: self.home.clone(),
        })
    }

    /// Lists the link shares' throwaway devices of this home.
    pub(crate) fn link_records(&self) -> Result<Vec<LinkRecord>> {
        records::scan_committed(&self.store, LINK)
    }

    /// Finds the throwaway device of a link share.
    pub(crate) fn find_link(&self, share_id: &ShareId) -> Result<Option<LinkRecord>> {
        records::read_committed(&self.store, &records::link_key(share_id))
    }

    /// Opens the throwaway device of a link share.
    pub(crate) fn open_link(&self, record: &LinkRecord) -> Result<Arc<Device>> {
        let plain = !record.folder.is_empty()
            && record
                .folder
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
        if !plain {
            let reason = format!("link folder {:?} is not a plain folder name", record.folder);
            return Err(tigress_core::Error::CorruptRecord {
                key: "app/link".to_owned(),
                reason,
            }
            .into());
        }
        let mut links = self
            .links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(device) = links.get(&record.folder) {
            return Ok(device.clone());
        }
        let device = Device::open(self.home.join(LINKS_FOLDER).join(&record.folder))?;
        let device = Arc::new(device.with_clock(self.clock));
        links.insert(record.folder.clone(), device.clone());
        Ok(device)
    }

    /// Closes a throwaway device opened by [`open_link`](Self::open_link), once no one else
    /// holds it.
    pub(crate) fn close_link(&self, folder: &str) {
        let mut links = self
            .links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        links.remove(folder);
    }

    pub(crate) fn profile(&self) -> Result<Profile> {
        records::read_committed(&self.store, PROFILE)?.ok_or_else(|| ClientError::NotRegistered {
            home: self.home.clone(),
        })
    }

    /// Returns the authenticated connection to the device's relay, connecting on first use.
    pub(crate) async fn relay(&self) -> Result<&RelayConnection> {
        let profile = self.profile()?;
        self.relay
            .get_or_try_init(|| async {
                RelayConnection::connect(&profile.relay_url, profile.ca())
                    .await?
                    .authenticate(&profile.credential)
            })
            .await
    }

    /// Signs `message` with the identity key.
    /// Returns the keys prepared for registration, creating the identity and prekeys first if
    /// the store has none.
    fn registration_draft(&self, one_time_prekeys: usize) -> Result<RegisterDeviceRequest> {
        let txn = self.store.transaction();
        if let Some(draft) = records::read::<RegisterDeviceRequest>(&txn, REGISTRATION_DRAFT)? {
            return Ok(draft);
        }

        let draft =
            txn.create_registration(one_time_prekeys, SystemTime::now(), &mut rand::rng())?;
        records::write(&txn, REGISTRATION_DRAFT.to_vec(), &draft);
        txn.commit(Durability::Flushed)?;
        Ok(draft)
    }
}

/// Computes the safety number of two devices: 60 digits in twelve groups of five, the same on
/// both devices.
pub(crate) fn safety_number(
    local: &DeviceAddress,
    local_key: &IdentityKey,
    remote: &DeviceAddress,
    remote_key: &IdentityKey,
) -> Result<String> {
    let fingerprint = Fingerprint::new(
        FINGERPRINT_VERSION,
        FINGERPRINT_ITERATIONS,
        local.uuid().as_bytes(),
        local_key,
        remote.uuid().as_bytes(),
        remote_key,
    )
    .and_then(|fingerprint| fingerprint.display_string())
    .map_err(|error| ClientError::SafetyNumber {
        reason: error.to_string(),
    })?;
    let digits: Vec<char> = fingerprint.chars().collect();
    Ok(digits
        .chunks(5)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" "))
}

/// Creates `path` and its parents; on Unix the home itself is readable by its owner only,
/// because it contains private keys and credentials.
fn create_private_folder(path: &Path) -> Result<()> {
    let file_error = |source| ClientError::File {
        op: "create folder",
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(path).map_err(file_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(file_error)?;
    }
    Ok(())
}
