//! Link shares: a share offered through a link instead of to an address, with a throwaway
//! identity and mailbox on each side (see [`tigress_core::link`] for the link format).
//!
//! Each side's throwaway identity is a device of its own, in a folder under the home's
//! `links` folder, and the share's record lives in that device's store. The home's store keeps
//! a [`LinkRecord`] per link share so that [`Device::sync`] also works the throwaway mailboxes.
//! Nothing the relay sees connects a throwaway identity to the home's long-lived one. When a
//! link share ends, each side deletes its throwaway mailbox from the relay.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use tigress_core::Durability;
use tigress_core::link::{ShareLink, claim_proof, identity_hash, share_id_for_secret};
use tigress_core::share::state::{Channel, Role, ShareState};
use tigress_core::share::{
    DisplayInformation, MAX_PROVISIONING_INFORMATION_LEN, ShareBody, ShareId,
};

use crate::device::Device;
use crate::error::{ClientError, Result};
use crate::outbox::encrypt_to_outbox;
use crate::records::{self, LinkRecord, OutboxPurpose, ShareRecord, X509Record};
use crate::shares::{check_display, expires_at, message, new_share_record, set_state, write_share};

/// One-time prekeys of each kind a throwaway device registers with: a link share needs one
/// session, and a few more let second claimants reach it to be told the link is taken.
const LINK_PREKEYS: usize = 4;

/// What a link share offers.
#[derive(Clone)]
pub enum LinkContent {
    /// A credential document (a stateless share).
    Document(Vec<u8>),
    /// A key to certify with the owner certificate authority (a stateful share).
    Certificate {
        /// The longest validity the certificate may have.
        valid_for: Duration,
        /// Issue the certificate as soon as a valid signing request arrives.
        auto_approve: bool,
    },
}

impl std::fmt::Debug for LinkContent {
    /// Leaves out the document.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Document(document) => {
                write!(f, "LinkContent::Document(<{} bytes>)", document.len())
            }
            Self::Certificate {
                valid_for,
                auto_approve,
            } => f
                .debug_struct("LinkContent::Certificate")
                .field("valid_for", valid_for)
                .field("auto_approve", auto_approve)
                .finish(),
        }
    }
}

/// A link share just created.
pub struct Invitation {
    /// The share's id, the same on both sides.
    pub share_id: ShareId,
    /// The link to pass on. Whoever holds it can claim the share.
    pub link: String,
}

impl std::fmt::Debug for Invitation {
    /// Leaves out the link, which holds the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation")
            .field("share_id", &self.share_id)
            .finish_non_exhaustive()
    }
}

/// A device holding a share: the home device itself, or a link share's throwaway device.
pub(crate) enum DeviceRef<'a> {
    Home(&'a Device),
    Link(Arc<Device>),
}

impl Deref for DeviceRef<'_> {
    type Target = Device;

    fn deref(&self) -> &Device {
        match self {
            Self::Home(device) => device,
            Self::Link(device) => device,
        }
    }
}

impl Device {
    /// Creates a link share: a throwaway mailbox on this device's relay that only the holder of
    /// the returned link can claim. The first valid claim gets the offer; later claims get an
    /// error.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotRegistered`], [`ClientError::NoOwnerCa`] for a certificate without an
    /// owner CA, credential and display errors as [`share`](Self::share), and relay errors.
    pub async fn invite(
        &self,
        mut display: DisplayInformation,
        content: LinkContent,
        expires_in: Duration,
    ) -> Result<Invitation> {
        let profile = self.profile()?;
        let (relay_url, ca) = (profile.relay_url.clone(), profile.ca().map(str::to_owned));
        let mut record_content = ShareRecord::default();
        match &content {
            LinkContent::Document(document) => {
                if document.is_empty() {
                    return Err(ClientError::EmptyCredential);
                }
                if document.len() > MAX_PROVISIONING_INFORMATION_LEN {
                    return Err(ClientError::CredentialTooLarge {
                        size: document.len(),
                        max: MAX_PROVISIONING_INFORMATION_LEN,
                    });
                }
                display.size_bytes = document.len() as u64;
                record_content.mode = tigress_core::share::ShareMode::Stateless.name().to_owned();
                record_content.provisioning_information = document.clone();
            }
            LinkContent::Certificate {
                valid_for,
                auto_approve,
            } => {
                display.size_bytes = 0;
                let policy = self.x509_policy(&display.title, *valid_for)?;
                record_content.mode = tigress_core::share::ShareMode::Stateful.name().to_owned();
                record_content.x509 = Some(X509Record {
                    ca_certificate: policy.ca_certificate,
                    subject_common_name: policy.subject_common_name,
                    max_validity_seconds: policy.max_validity_seconds,
                    auto_approve: *auto_approve,
                    ..X509Record::default()
                });
            }
        }
        check_display(&display)?;

        let secret: [u8; 32] = rand::random();
        let share_id = share_id_for_secret(&secret);
        let folder = format!("{}-sent", hex::encode(share_id.as_bytes()));
        let link_device = self.open_link(&LinkRecord {
            share_id: share_id.as_bytes().to_vec(),
            folder: folder.clone(),
            closed: false,
        })?;
        let address = link_device
            .register_with(&relay_url, ca.as_deref(), LINK_PREKEYS)
            .await?;
        let identity_key = link_device.identity_key()?;

        let now = self.clock.now();
        let mut record = new_share_record(
            share_id,
            Channel::Link,
            &display,
            expires_at(now, expires_in),
            now,
        );
        record.mode = record_content.mode;
        record.provisioning_information = record_content.provisioning_information;
        record.x509 = record_content.x509;
        record.link_secret = secret.to_vec();
        let txn = link_device.store.transaction();
        write_share(&txn, Role::Sender, &record);
        txn.commit(Durability::Flushed)?;
        self.remember_link(share_id, folder)?;

        let link = ShareLink {
            relay_url,
            to: address,
            secret,
            identity_hash: identity_hash(&identity_key),
        };
        tracing::info!(share = %share_id, "link share created");
        Ok(Invitation {
            share_id,
            link: link.dangerous_to_text(),
        })
    }

    /// Claims a link share: creates a throwaway identity on the link's relay, checks that the
    /// relay serves the identity key the link pins, and sends the claim. The offer follows on a
    /// later [`sync`](Self::sync), which provisions the credential (or, for a certificate, sends
    /// the key signing request) without further consent, because claiming is the consent.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidLink`], [`ClientError::LinkAlreadyAccepted`],
    /// [`ClientError::LinkGone`] when the sender's mailbox is no longer on the relay,
    /// [`ClientError::LinkIdentityMismatch`] when the relay serves another identity key, and
    /// relay errors. Nothing stays on the relay or in the home when claiming fails.
    pub async fn accept_link(&self, text: &str) -> Result<ShareId> {
        self.accept_link_with_ca(text, None).await
    }

    /// Claims a link share as [`accept_link`](Self::accept_link) does, trusting
    /// `ca_certificate_pem` for an `https://` relay in the link. Without it, the home's own CA
    /// is trusted when the link names the home's relay, and the Mozilla roots otherwise.
    ///
    /// # Errors
    ///
    /// As [`accept_link`](Self::accept_link).
    pub async fn accept_link_with_ca(
        &self,
        text: &str,
        ca_certificate_pem: Option<&str>,
    ) -> Result<ShareId> {
        let link: ShareLink = text.trim().parse()?;
        let share_id = link.share_id();
        if self.find_link(&share_id)?.is_some() {
            return Err(ClientError::LinkAlreadyAccepted { share_id });
        }
        let folder = format!("{}-received", hex::encode(share_id.as_bytes()));
        let link_record = LinkRecord {
            share_id: share_id.as_bytes().to_vec(),
            folder: folder.clone(),
            closed: false,
        };
        let link_device = self.open_link(&link_record)?;

        let home_ca = match self.profile() {
            Ok(profile) if profile.relay_url == link.relay_url => profile.ca().map(str::to_owned),
            _ => None,
        };
        let ca = ca_certificate_pem.map(str::to_owned).or(home_ca);
        let claimed = link_device.claim(&link, ca.as_deref()).await;
        if let Err(error) = &claimed {
            tracing::info!(share = %share_id, %error, "claim failed; removing the throwaway identity");
            let link_folder = link_device.home.clone();
            link_device.discard().await;
            self.close_link(&folder);
            if let Err(error) = std::fs::remove_dir_all(&link_folder) {
                tracing::warn!(folder = %link_folder.display(), %error, "failed to remove the throwaway device's folder");
            }
            return claimed;
        }
        self.remember_link(share_id, folder)?;
        tracing::info!(share = %share_id, "link share claimed");
        Ok(share_id)
    }

    /// Registers this throwaway device, checks the pinned bundle and sends the claim.
    async fn claim(&self, link: &ShareLink, ca: Option<&str>) -> Result<ShareId> {
        let share_id = link.share_id();
        self.register_with(&link.relay_url, ca, LINK_PREKEYS)
            .await?;
        let bundle = match self.relay().await?.bundle(&link.to).await {
            Err(ClientError::UnknownAddress { .. }) => return Err(ClientError::LinkGone),
            other => other?,
        };
        let served_identity = bundle
            .identity_key()
            .map_err(|source| tigress_core::Error::Key {
                op: "read the bundle's identity key",
                source,
            })?;
        if !link.pins_identity(&served_identity.serialize()) {
            return Err(ClientError::LinkIdentityMismatch {
                address: link.to.to_string(),
            });
        }

        let outbox = {
            let txn = self.store.transaction();
            let now = self.clock.now();
            txn.start_session(&link.to, &bundle, now, &mut rand::rng())?;
            let own_identity = txn.local_identity()?.identity_key().serialize();
            let proof = claim_proof(&link.secret, &own_identity);
            let mut record = new_share_record(
                share_id,
                Channel::Link,
                &DisplayInformation::default(),
                0,
                now,
            );
            record.peer = link.to.to_string();
            set_state(&mut record, ShareState::Accepted);
            write_share(&txn, Role::Receiver, &record);
            let outbox = encrypt_to_outbox(
                &txn,
                &link.to,
                &message(share_id, ShareBody::Claim { proof }),
                OutboxPurpose::Plain,
            )?;
            txn.commit(Durability::Flushed)?;
            outbox
        };
        self.deliver(outbox).await.map_err(|error| match error {
            ClientError::UnknownAddress { .. } => ClientError::LinkGone,
            other => other,
        })?;
        Ok(share_id)
    }

    /// Deletes a throwaway device that never got to work: its mailbox on the relay, if any,
    /// and its folder.
    async fn discard(self: Arc<Self>) {
        if let Ok(profile) = self.profile() {
            match self.relay().await {
                Ok(relay) => {
                    if let Err(error) = relay.delete_mailbox(&profile.address).await {
                        tracing::warn!(%error, "failed to delete the throwaway mailbox");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "failed to reach the relay to delete the throwaway mailbox")
                }
            }
        }
    }

    /// Returns this device's serialized identity key.
    pub(crate) fn identity_key(&self) -> Result<Vec<u8>> {
        Ok(self
            .store
            .transaction()
            .local_identity()?
            .identity_key()
            .serialize()
            .to_vec())
    }

    fn remember_link(&self, share_id: ShareId, folder: String) -> Result<()> {
        let txn = self.store.transaction();
        let record = LinkRecord {
            share_id: share_id.as_bytes().to_vec(),
            folder,
            closed: false,
        };
        records::write(&txn, records::link_key(&share_id), &record);
        txn.commit(Durability::Flushed)?;
        Ok(())
    }

    /// Finds the device holding the share and checks that this device is on `role`'s side.
    pub(crate) fn locate(
        &self,
        share_id: &ShareId,
        role: Role,
        action: &'static str,
    ) -> Result<DeviceRef<'_>> {
        let here = |device: &Device| -> Result<Option<Role>> {
            let txn = device.store.transaction();
            for side in [Role::Sender, Role::Receiver] {
                if txn.get(&records::share_key(side, share_id))?.is_some() {
                    return Ok(Some(side));
                }
            }
            Ok(None)
        };
        let (device, side) = match here(self)? {
            Some(side) => (DeviceRef::Home(self), side),
            None => {
                let link = self.find_link(share_id)?.ok_or(ClientError::UnknownShare {
                    share_id: *share_id,
                })?;
                let device = self.open_link(&link)?;
                let side = here(&device)?.ok_or(ClientError::UnknownShare {
                    share_id: *share_id,
                })?;
                (DeviceRef::Link(device), side)
            }
        };
        if side != role {
            let (side, owner) = match side {
                Role::Sender => ("offered by", "receiver"),
                Role::Receiver => ("offered to", "sender"),
            };
            return Err(ClientError::WrongSide {
                share_id: *share_id,
                side,
                owner,
                action,
            });
        }
        Ok(device)
    }

    /// Deletes the throwaway mailboxes of link shares that ended and have nothing left to send.
    /// Failures are logged and retried on the next call.
    pub(crate) async fn close_ended_links(&self) -> Result<()> {
        for link in self.link_records()? {
            if link.closed {
                continue;
            }
            let share_id = ShareId::from_slice(&link.share_id)?;
            let device = self.open_link(&link)?;
            if !device.link_share_ended(&share_id)? || device.has_pending_messages()? {
                continue;
            }
            let closed = match (device.profile(), device.relay().await) {
                (Ok(profile), Ok(relay)) => relay.delete_mailbox(&profile.address).await.map(drop),
                (Err(ClientError::NotRegistered { .. }), _) => Ok(()),
                (Err(error), _) | (_, Err(error)) => Err(error),
            };
            match closed {
                Ok(()) => {
                    let txn = self.store.transaction();
                    records::write(
                        &txn,
                        records::link_key(&share_id),
                        &LinkRecord {
                            closed: true,
                            ..link
                        },
                    );
                    txn.commit(Durability::Flushed)?;
                    tracing::info!(share = %share_id, "throwaway mailbox of the ended link share deleted");
                }
                Err(error) => {
                    tracing::warn!(share = %share_id, %error, "failed to delete a throwaway mailbox; retrying on the next sync")
                }
            }
        }
        Ok(())
    }

    /// Checks whether the share in this throwaway device has ended.
    fn link_share_ended(&self, share_id: &ShareId) -> Result<bool> {
        let txn = self.store.transaction();
        for role in [Role::Sender, Role::Receiver] {
            if let Some(record) =
                records::read::<ShareRecord>(&txn, &records::share_key(role, share_id))?
            {
                return Ok(record.state()?.is_final());
            }
        }
        Ok(false)
    }
}
