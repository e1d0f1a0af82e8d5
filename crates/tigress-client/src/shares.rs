//! Share operations: offer a credential (stateless or stateful) to a known address, and the
//! steps each side takes on a share afterwards: accept, decline, approve, cancel, and reading
//! the provisioned credential.
//!
//! Each operation checks the step with the share state machine, moves the share's state and
//! stores the message for the peer in one transaction, then sends the message (see
//! [`crate::outbox`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tigress_core::share::state::{Channel, Role, ShareInput, ShareKind, ShareState, next_state};
use tigress_core::share::{
    DisplayInformation, MAX_PROVISIONING_INFORMATION_LEN, ShareBody, ShareId, ShareMessage,
    ShareMode, ShareOffer, X509Policy,
};
use tigress_core::x509::{KeyRequest, certificate_pem, check_request, dangerous_private_key_pem};
use tigress_core::{DeviceAddress, Durability, Transaction};
use zeroize::Zeroizing;

use crate::device::Device;
use crate::error::{ClientError, Result};
use crate::outbox::encrypt_to_outbox;
use crate::records::{
    self, OutboxPurpose, OutboxRecord, RECEIVED_SHARE, SENT_SHARE, ShareRecord, StoredDisplay,
    X509Record,
};

/// How long an offer stays valid when the caller sets nothing: 24 hours.
pub const DEFAULT_OFFER_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a certificate of a stateful share may be valid when the caller sets nothing: 30
/// days.
pub const DEFAULT_CERTIFICATE_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);

/// A credential document to offer to another device (a stateless share).
#[derive(Clone)]
pub struct NewShare {
    /// The receiving device.
    pub to: DeviceAddress,
    /// The credential document.
    pub credential: Vec<u8>,
    /// The description the receiver reads before accepting. `size_bytes` is set from the
    /// credential.
    pub display: DisplayInformation,
    /// How long the offer stays valid.
    pub expires_in: Duration,
}

impl std::fmt::Debug for NewShare {
    /// Leaves out the credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewShare")
            .field("to", &self.to)
            .field(
                "credential",
                &format_args!("<{} bytes>", self.credential.len()),
            )
            .field("display", &self.display)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// A key to certify for another device (a stateful share with the X.509 profile).
#[derive(Clone, Debug)]
pub struct NewStatefulShare {
    /// The receiving device.
    pub to: DeviceAddress,
    /// The description the receiver reads before accepting. The title is also the subject
    /// common name the receiver's certificate gets.
    pub display: DisplayInformation,
    /// The longest validity the certificate may have.
    pub valid_for: Duration,
    /// How long the offer stays valid.
    pub expires_in: Duration,
    /// Issue the certificate as soon as a valid signing request arrives, without
    /// [`Device::approve`].
    pub auto_approve: bool,
}

/// What the offer of a share holds, shared by contact shares and link shares.
pub(crate) enum OfferContent {
    /// A credential document.
    Document(Vec<u8>),
    /// A key to certify.
    Certificate {
        policy: X509Policy,
        auto_approve: bool,
    },
}

/// A provisioned credential, as [`Device::credential`] returns it.
pub enum Credential {
    /// The document of a stateless share.
    Document(Vec<u8>),
    /// The key and certificate of a stateful share, as PEM.
    Certificate {
        /// The certificate for this device's key.
        certificate_pem: String,
        /// This device's private key, PKCS#8.
        private_key_pem: Zeroizing<String>,
        /// The sender's certificate authority.
        ca_certificate_pem: String,
    },
}

impl std::fmt::Debug for Credential {
    /// Leaves out the document and the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Document(document) => {
                write!(f, "Credential::Document(<{} bytes>)", document.len())
            }
            Self::Certificate { .. } => f.write_str("Credential::Certificate(..)"),
        }
    }
}

/// A share as [`Device::sent_shares`] and [`Device::received_shares`] list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareInfo {
    /// The share.
    pub share_id: ShareId,
    /// This device's side.
    pub role: Role,
    /// Stateless or stateful; `None` while a claimed link waits for its offer.
    pub mode: Option<ShareMode>,
    /// Contact or link.
    pub channel: Channel,
    /// The other device's address; empty for a link that nobody claimed yet.
    pub peer: String,
    /// The share's progress.
    pub state: ShareState,
    /// The description of the credential.
    pub display: DisplayInformation,
    /// When the offer expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: Option<u64>,
    /// When the share was offered or received, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Why the share failed, when it did.
    pub failure: Option<String>,
}

impl Device {
    /// Offers a credential document to another device and returns the share's id.
    ///
    /// Fetches the receiver's prekey bundle first when there is no session with it.
    ///
    /// # Errors
    ///
    /// [`ClientError::EmptyCredential`], [`ClientError::CredentialTooLarge`],
    /// [`ClientError::InvalidDisplayInformation`], [`ClientError::UnknownAddress`],
    /// [`ClientError::IdentityChanged`], [`ClientError::RelayUnreachable`], or
    /// [`ClientError::NotDelivered`] when the share was stored but the relay did not take it.
    pub async fn share(&self, request: NewShare) -> Result<ShareId> {
        let NewShare {
            to,
            credential,
            mut display,
            expires_in,
        } = request;
        check_credential(&credential)?;
        display.size_bytes = credential.len() as u64;
        check_display(&display)?;
        self.offer_to_contact(to, display, OfferContent::Document(credential), expires_in)
            .await
    }

    /// Offers to certify a key for another device, with this device's owner certificate
    /// authority, and returns the share's id.
    ///
    /// # Errors
    ///
    /// [`ClientError::NoOwnerCa`], and the errors of [`share`](Self::share).
    pub async fn share_stateful(&self, request: NewStatefulShare) -> Result<ShareId> {
        let NewStatefulShare {
            to,
            mut display,
            valid_for,
            expires_in,
            auto_approve,
        } = request;
        display.size_bytes = 0;
        check_display(&display)?;
        let policy = self.x509_policy(&display.title, valid_for)?;
        self.offer_to_contact(
            to,
            display,
            OfferContent::Certificate {
                policy,
                auto_approve,
            },
            expires_in,
        )
        .await
    }

    /// Builds the X.509 policy of a new stateful share from the owner CA.
    pub(crate) fn x509_policy(&self, common_name: &str, valid_for: Duration) -> Result<X509Policy> {
        let policy = X509Policy {
            ca_certificate: self.owner_ca()?.certificate_der()?,
            subject_common_name: common_name.to_owned(),
            max_validity_seconds: valid_for.as_secs(),
        };
        policy
            .validate()
            .map_err(|error| ClientError::InvalidDisplayInformation {
                field: "stateful policy",
                rule: error.to_string(),
            })?;
        Ok(policy)
    }

    async fn offer_to_contact(
        &self,
        to: DeviceAddress,
        display: DisplayInformation,
        content: OfferContent,
        expires_in: Duration,
    ) -> Result<ShareId> {
        let now = self.clock.now();
        if to == self.address()? {
            return Err(ClientError::ShareToSelf {
                address: to.to_string(),
            });
        }
        self.ensure_session(&to).await?;

        let (share_id, outbox) = {
            let txn = self.store.transaction();
            let share_id = ShareId::random(&mut rand::rng());
            let mut record = new_share_record(
                share_id,
                Channel::Contact,
                &display,
                expires_at(now, expires_in),
                now,
            );
            let outbox = send_offer(&txn, &to, &mut record, content)?;
            records::write(&txn, records::share_key(Role::Sender, &share_id), &record);
            txn.commit(Durability::Flushed)?;
            (share_id, outbox)
        };

        tracing::info!(share = %share_id, peer = %to, "share offered");
        self.deliver(outbox)
            .await
            .map_err(|source| ClientError::NotDelivered {
                share_id,
                source: Box::new(source),
            })?;
        Ok(share_id)
    }

    /// Opens a session with `to` from a fetched bundle unless one exists.
    pub(crate) async fn ensure_session(&self, to: &DeviceAddress) -> Result<()> {
        let now = self.clock.now();
        if self
            .store
            .transaction()
            .has_usable_session(&to.to_protocol_address(), now)?
        {
            return Ok(());
        }
        let bundle = self.relay().await?.bundle(to).await?;
        let txn = self.store.transaction();
        txn.start_session(to, &bundle, now, &mut rand::rng())?;
        txn.commit(Durability::Flushed)?;
        Ok(())
    }

    /// Accepts a share offered to this device and returns its new state: `completed` for a
    /// stateless share whose acknowledgement went out, `signing-requested` for a stateful share
    /// whose key signing request went out.
    ///
    /// # Errors
    ///
    /// [`ClientError::UnknownShare`], [`ClientError::WrongSide`], [`ClientError::ShareExpired`],
    /// [`tigress_core::Error::ShareOutOfOrder`] when the share is not waiting to be accepted, or
    /// [`ClientError::NotDelivered`] when the answer is stored but the relay did not take it.
    pub async fn accept(&self, share_id: ShareId) -> Result<ShareState> {
        let device = self.locate(&share_id, Role::Receiver, "accept")?;
        device.check_not_expired(&share_id, Role::Receiver)?;
        let outbox = {
            let txn = device.store.transaction();
            let mut record = read_share(&txn, Role::Receiver, &share_id)?;
            let next = transition(&record, Role::Receiver, ShareInput::Accept, &share_id)?;
            let outbox = agree(&txn, &mut record, next)?;
            write_share(&txn, Role::Receiver, &record);
            txn.commit(Durability::Flushed)?;
            outbox
        };
        tracing::info!(share = %share_id, "share accepted");
        device
            .deliver(outbox)
            .await
            .map_err(|source| ClientError::NotDelivered {
                share_id,
                source: Box::new(source),
            })?;
        device.share_state(&share_id, Role::Receiver)
    }

    /// Declines a share offered to this device and tells the sender.
    ///
    /// # Errors
    ///
    /// As [`accept`](Self::accept).
    pub async fn decline(&self, share_id: ShareId) -> Result<()> {
        let device = self.locate(&share_id, Role::Receiver, "decline")?;
        let outbox = {
            let txn = device.store.transaction();
            let mut record = read_share(&txn, Role::Receiver, &share_id)?;
            let next = transition(&record, Role::Receiver, ShareInput::Decline, &share_id)?;
            set_state(&mut record, next);
            wipe_secrets(&mut record);
            let peer = parse_peer(&record.peer)?;
            let outbox = encrypt_to_outbox(
                &txn,
                &peer,
                &message(share_id, ShareBody::Declined),
                OutboxPurpose::Plain,
            )?;
            write_share(&txn, Role::Receiver, &record);
            txn.commit(Durability::Flushed)?;
            outbox
        };
        tracing::info!(share = %share_id, "share declined");
        device
            .deliver(outbox)
            .await
            .map_err(|source| ClientError::NotDelivered {
                share_id,
                source: Box::new(source),
            })
    }

    /// Approves the key signing request of a stateful share: issues the certificate with the
    /// owner certificate authority and sends it.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotStateful`], [`ClientError::NoOwnerCa`], [`ClientError::X509`] when the
    /// request breaks the policy, and the errors of [`accept`](Self::accept).
    pub async fn approve(&self, share_id: ShareId) -> Result<()> {
        let device = self.locate(&share_id, Role::Sender, "approve")?;
        let ca = self.owner_ca()?;
        let outbox = {
            let txn = device.store.transaction();
            let mut record = read_share(&txn, Role::Sender, &share_id)?;
            let outbox = issue_certificate(&txn, &mut record, &ca, &share_id, self.clock.now())?;
            write_share(&txn, Role::Sender, &record);
            txn.commit(Durability::Flushed)?;
            outbox
        };
        tracing::info!(share = %share_id, "certificate issued");
        device
            .deliver(outbox)
            .await
            .map_err(|source| ClientError::NotDelivered {
                share_id,
                source: Box::new(source),
            })
    }

    /// Cancels a share this device offered, before it completes. An offer the receiver has not
    /// fetched is taken back from the relay, so it leaves no trace; otherwise the receiver is
    /// told.
    ///
    /// # Errors
    ///
    /// As [`accept`](Self::accept).
    pub async fn cancel(&self, share_id: ShareId) -> Result<()> {
        let device = self.locate(&share_id, Role::Sender, "cancel")?;
        let (record, offer_pending) = {
            let txn = device.store.transaction();
            let mut record = read_share(&txn, Role::Sender, &share_id)?;
            let next = transition(&record, Role::Sender, ShareInput::Cancel, &share_id)?;
            set_state(&mut record, next);
            wipe_secrets(&mut record);
            // An offer still in the outbox never reached the relay: dropping it is enough.
            let offer_key = records::outbox_key(&record.offer_client_message_id);
            let offer_pending =
                !record.offer_client_message_id.is_empty() && txn.get(&offer_key)?.is_some();
            if offer_pending {
                txn.remove(offer_key);
            }
            write_share(&txn, Role::Sender, &record);
            txn.commit(Durability::Flushed)?;
            (record, offer_pending)
        };
        tracing::info!(share = %share_id, "share cancelled");
        device.tell_cancelled(&record, offer_pending).await?;
        self.close_ended_links().await
    }

    /// Retracts the offer of a cancelled share from the relay, or tells the receiver.
    async fn tell_cancelled(&self, record: &ShareRecord, offer_pending: bool) -> Result<()> {
        if record.peer.is_empty() || offer_pending {
            return Ok(());
        }
        let share_id = record.id()?;
        if !record.offer_client_message_id.is_empty() {
            let retracted = self
                .relay()
                .await?
                .retract(&record.peer, &record.offer_client_message_id)
                .await?;
            if retracted {
                tracing::info!(share = %share_id, "unfetched offer retracted from the relay");
                return Ok(());
            }
        }
        let peer = parse_peer(&record.peer)?;
        let outbox = {
            let txn = self.store.transaction();
            let outbox = encrypt_to_outbox(
                &txn,
                &peer,
                &message(share_id, ShareBody::Cancelled),
                OutboxPurpose::Plain,
            )?;
            txn.commit(Durability::Flushed)?;
            outbox
        };
        self.deliver(outbox)
            .await
            .map_err(|source| ClientError::NotDelivered {
                share_id,
                source: Box::new(source),
            })
    }

    /// Returns the credential of a share this device provisioned.
    ///
    /// # Errors
    ///
    /// [`ClientError::UnknownShare`], or [`ClientError::NotProvisioned`] before the
    /// credential arrived.
    pub fn credential(&self, share_id: ShareId) -> Result<Credential> {
        let device = self.locate(&share_id, Role::Receiver, "export")?;
        let record = read_share(&device.store.transaction(), Role::Receiver, &share_id)?;
        let state = record.state()?;
        let next = match state {
            ShareState::Provisioned | ShareState::Completed => None,
            ShareState::Offered => Some("accept it before exporting its credential"),
            ShareState::Accepted | ShareState::SigningRequested | ShareState::ImportIssued => {
                Some("its credential arrives with the sender's reply; run `tigress sync`")
            }
            ShareState::Declined
            | ShareState::Cancelled
            | ShareState::Expired
            | ShareState::Failed => Some("it ended without a credential to export"),
        };
        if let Some(next) = next {
            return Err(ClientError::NotProvisioned {
                share_id,
                state: state.name(),
                next,
            });
        }
        match (record.mode()?, record.x509) {
            (Some(ShareMode::Stateful), Some(x509)) => Ok(Credential::Certificate {
                certificate_pem: certificate_pem(&x509.certificate_der)?,
                private_key_pem: dangerous_private_key_pem(&x509.private_key_der)?,
                ca_certificate_pem: certificate_pem(&x509.ca_certificate)?,
            }),
            _ => Ok(Credential::Document(record.provisioning_information)),
        }
    }

    /// Lists every share this device offered, oldest first, link shares included.
    ///
    /// # Errors
    ///
    /// [`ClientError::Core`] when a store cannot be read or a record is damaged.
    pub fn sent_shares(&self) -> Result<Vec<ShareInfo>> {
        self.list_shares(Role::Sender)
    }

    /// Lists every share offered to this device, oldest first, link shares included.
    ///
    /// # Errors
    ///
    /// [`ClientError::Core`] when a store cannot be read or a record is damaged.
    pub fn received_shares(&self) -> Result<Vec<ShareInfo>> {
        self.list_shares(Role::Receiver)
    }

    fn list_shares(&self, role: Role) -> Result<Vec<ShareInfo>> {
        let mut shares = self.local_shares(role)?;
        for link in self.link_records()? {
            shares.extend(self.open_link(&link)?.local_shares(role)?);
        }
        shares.sort_by_key(|share| share.created_at_ms);
        Ok(shares)
    }

    /// Lists the shares of `role` in this device's own store.
    pub(crate) fn local_shares(&self, role: Role) -> Result<Vec<ShareInfo>> {
        let prefix = match role {
            Role::Sender => SENT_SHARE,
            Role::Receiver => RECEIVED_SHARE,
        };
        records::scan_committed::<ShareRecord>(&self.store, prefix)?
            .into_iter()
            .map(|record| share_info(role, record))
            .collect()
    }

    fn share_state(&self, share_id: &ShareId, role: Role) -> Result<ShareState> {
        Ok(read_share(&self.store.transaction(), role, share_id)?.state()?)
    }

    /// Marks the share expired and fails if its offer expired.
    fn check_not_expired(&self, share_id: &ShareId, role: Role) -> Result<()> {
        let txn = self.store.transaction();
        let mut record = read_share(&txn, role, share_id)?;
        if !is_expired(&record, self.clock.now()) {
            return Ok(());
        }
        let expired_at = rfc3339(record.expires_at_ms);
        if let Ok(next) = transition(&record, role, ShareInput::Expire, share_id) {
            set_state(&mut record, next);
            wipe_secrets(&mut record);
            write_share(&txn, role, &record);
            txn.commit(Durability::Flushed)?;
        }
        Err(ClientError::ShareExpired {
            share_id: *share_id,
            expired_at,
        })
    }
}

/// Creates the record of a new share this device offers.
pub(crate) fn new_share_record(
    share_id: ShareId,
    channel: Channel,
    display: &DisplayInformation,
    expires_at_ms: u64,
    now: SystemTime,
) -> ShareRecord {
    let now = millis(now);
    ShareRecord {
        share_id: share_id.as_bytes().to_vec(),
        state: ShareState::Offered.name().to_owned(),
        display: Some(StoredDisplay::from(display)),
        expires_at_ms,
        created_at_ms: now,
        updated_at_ms: now,
        channel: records::channel_name(channel).to_owned(),
        ..ShareRecord::default()
    }
}

/// Builds the offer of `record` with `content`, stores it in the outbox for `to`, and records
/// the mode, policy and the offer's client message id in `record`.
pub(crate) fn send_offer(
    txn: &Transaction<'_>,
    to: &DeviceAddress,
    record: &mut ShareRecord,
    content: OfferContent,
) -> Result<OutboxRecord> {
    let share_id = record.id()?;
    let display = record
        .display
        .as_ref()
        .map(DisplayInformation::from)
        .unwrap_or_default();
    let expires_at_ms = (record.expires_at_ms != 0).then_some(record.expires_at_ms);
    let offer = match content {
        OfferContent::Document(document) => {
            record.mode = ShareMode::Stateless.name().to_owned();
            ShareOffer {
                mode: ShareMode::Stateless,
                display,
                provisioning_information: document,
                expires_at_ms,
                x509_policy: None,
            }
        }
        OfferContent::Certificate {
            policy,
            auto_approve,
        } => {
            record.mode = ShareMode::Stateful.name().to_owned();
            record.x509 = Some(X509Record {
                ca_certificate: policy.ca_certificate.clone(),
                subject_common_name: policy.subject_common_name.clone(),
                max_validity_seconds: policy.max_validity_seconds,
                auto_approve,
                ..X509Record::default()
            });
            ShareOffer {
                mode: ShareMode::Stateful,
                display,
                provisioning_information: Vec::new(),
                expires_at_ms,
                x509_policy: Some(policy),
            }
        }
    };
    let outbox = encrypt_to_outbox(
        txn,
        to,
        &message(share_id, ShareBody::Offer(offer)),
        OutboxPurpose::Plain,
    )?;
    record.peer = to.to_string();
    record.offer_client_message_id = outbox.client_message_id.clone();
    Ok(outbox)
}

/// Carries out the receiver's agreement to a share: for a stateless share, the credential in
/// the record is provisioned and the completion acknowledgement queued; for a stateful one, a
/// key pair is made and the key signing request queued.
pub(crate) fn agree(
    txn: &Transaction<'_>,
    record: &mut ShareRecord,
    next: ShareState,
) -> Result<OutboxRecord> {
    let share_id = record.id()?;
    let peer = parse_peer(&record.peer)?;
    set_state(record, next);
    match next {
        ShareState::Provisioned => {
            let body = message(share_id, ShareBody::Completed);
            encrypt_to_outbox(txn, &peer, &body, OutboxPurpose::Completion)
        }
        _ => {
            let x509 = record
                .x509
                .as_mut()
                .ok_or_else(|| corrupt(&share_id, "stateful share without its policy"))?;
            let request = KeyRequest::generate(&x509.subject_common_name)?;
            x509.private_key_der = request.dangerous_private_key_der()?.to_vec();
            x509.request_der = request.request_der.clone();
            x509.requested_validity_seconds = x509.max_validity_seconds;
            let body = ShareBody::KeySigningRequest {
                certificate_signing_request: request.request_der.clone(),
                requested_validity_seconds: x509.max_validity_seconds,
            };
            encrypt_to_outbox(txn, &peer, &message(share_id, body), OutboxPurpose::Plain)
        }
    }
}

/// Issues the certificate of a stateful share whose signing request waits for approval, and
/// queues the key import request.
pub(crate) fn issue_certificate(
    txn: &Transaction<'_>,
    record: &mut ShareRecord,
    ca: &tigress_core::x509::CertificateAuthority,
    share_id: &ShareId,
    now: SystemTime,
) -> Result<OutboxRecord> {
    if record.mode()? != Some(ShareMode::Stateful) {
        return Err(ClientError::NotStateful {
            share_id: *share_id,
            action: "approve",
        });
    }
    let next = transition(record, Role::Sender, ShareInput::Approve, share_id)?;
    let x509 = record
        .x509
        .as_mut()
        .ok_or_else(|| corrupt(share_id, "stateful share without its policy"))?;
    let policy = X509Policy {
        ca_certificate: x509.ca_certificate.clone(),
        subject_common_name: x509.subject_common_name.clone(),
        max_validity_seconds: x509.max_validity_seconds,
    };
    let checked = check_request(&x509.request_der, &policy, x509.requested_validity_seconds)?;
    x509.certificate_der = ca.issue(&checked, now, x509.requested_validity_seconds)?;
    let body = ShareBody::KeyImportRequest {
        certificate: x509.certificate_der.clone(),
    };
    let peer = parse_peer(&record.peer)?;
    set_state(record, next);
    encrypt_to_outbox(txn, &peer, &message(*share_id, body), OutboxPurpose::Plain)
}

/// Checks `input` against the share's state machine.
pub(crate) fn transition(
    record: &ShareRecord,
    role: Role,
    input: ShareInput,
    share_id: &ShareId,
) -> Result<ShareState> {
    transition_with_mode(record, role, input, share_id, ShareMode::Stateless)
}

/// Checks `input` against the share's state machine; a link waiting for its offer counts as
/// `fallback_mode`.
pub(crate) fn transition_with_mode(
    record: &ShareRecord,
    role: Role,
    input: ShareInput,
    share_id: &ShareId,
    fallback_mode: ShareMode,
) -> Result<ShareState> {
    let kind: ShareKind = record.kind(role, fallback_mode)?;
    next_state(kind, record.state()?, input).map_err(|error| out_of_order(share_id, error).into())
}

pub(crate) fn set_state(record: &mut ShareRecord, state: ShareState) {
    record.state = state.name().to_owned();
    record.updated_at_ms = millis(SystemTime::now());
}

/// Removes the credential, link secret and private key from a share that ended without them.
pub(crate) fn wipe_secrets(record: &mut ShareRecord) {
    record.provisioning_information.clear();
    record.link_secret.clear();
    if let Some(x509) = record.x509.as_mut() {
        x509.private_key_der.clear();
    }
}

pub(crate) fn message(share_id: ShareId, body: ShareBody) -> ShareMessage {
    ShareMessage {
        share_id,
        sent_at_ms: millis(SystemTime::now()),
        body,
    }
}

pub(crate) fn read_share(
    txn: &Transaction<'_>,
    role: Role,
    share_id: &ShareId,
) -> Result<ShareRecord> {
    records::read(txn, &records::share_key(role, share_id))?.ok_or(ClientError::UnknownShare {
        share_id: *share_id,
    })
}

pub(crate) fn write_share(txn: &Transaction<'_>, role: Role, record: &ShareRecord) {
    if let Ok(share_id) = record.id() {
        records::write(txn, records::share_key(role, &share_id), record);
    }
}

pub(crate) fn is_expired(record: &ShareRecord, now: SystemTime) -> bool {
    record.expires_at_ms != 0 && millis(now) > record.expires_at_ms
}

pub(crate) fn expires_at(now: SystemTime, expires_in: Duration) -> u64 {
    millis(now).saturating_add(u64::try_from(expires_in.as_millis()).unwrap_or(u64::MAX))
}

fn share_info(role: Role, record: ShareRecord) -> Result<ShareInfo> {
    Ok(ShareInfo {
        share_id: record.id()?,
        role,
        mode: record.mode()?,
        channel: record.channel()?,
        state: record.state()?,
        display: record
            .display
            .as_ref()
            .map(DisplayInformation::from)
            .unwrap_or_default(),
        expires_at_ms: (record.expires_at_ms != 0).then_some(record.expires_at_ms),
        created_at_ms: record.created_at_ms,
        failure: (!record.failure.is_empty()).then(|| record.failure.clone()),
        peer: record.peer,
    })
}

fn check_credential(credential: &[u8]) -> Result<()> {
    if credential.is_empty() {
        return Err(ClientError::EmptyCredential);
    }
    if credential.len() > MAX_PROVISIONING_INFORMATION_LEN {
        return Err(ClientError::CredentialTooLarge {
            size: credential.len(),
            max: MAX_PROVISIONING_INFORMATION_LEN,
        });
    }
    Ok(())
}

pub(crate) fn check_display(display: &DisplayInformation) -> Result<()> {
    display.validate().map_err(|error| match error {
        tigress_core::Error::InvalidShareMessage { reason } => {
            ClientError::InvalidDisplayInformation {
                field: "display information",
                rule: reason.replace("offer.display.", ""),
            }
        }
        other => other.into(),
    })
}

pub(crate) fn parse_peer(address: &str) -> Result<DeviceAddress> {
    Ok(address.parse()?)
}

pub(crate) fn out_of_order(
    share_id: &ShareId,
    error: tigress_core::share::state::TransitionError,
) -> tigress_core::Error {
    tigress_core::Error::ShareOutOfOrder {
        share_id: share_id.to_string(),
        state: error.state.name(),
        input: error.input.name(),
    }
}

pub(crate) fn corrupt(share_id: &ShareId, reason: &str) -> ClientError {
    tigress_core::Error::CorruptRecord {
        key: format!("share {share_id}"),
        reason: reason.to_owned(),
    }
    .into()
}

/// Converts a time to milliseconds since the Unix epoch.
pub(crate) fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    })
}

/// Formats milliseconds since the Unix epoch as an RFC 3339 UTC time, to the second.
pub fn rfc3339(millis: u64) -> String {
    let seconds = millis / 1000;
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// The calendar date `days` after 1970-01-01, by the era-based method of Howard Hinnant's
/// "chrono-Compatible Low-Level Date Algorithms".
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_868_800_000), "2000-03-01T00:00:00Z");
        assert_eq!(rfc3339(1_633_095_002_999), "2021-10-01T13:30:02Z");
    }
}
