//! Seed inputs for every target, made by the code that makes the real messages: share
//! messages carrying the sample credentials, a link, a signing request, a certificate from a
//! CA, and ciphertexts of real share messages. libFuzzer starts from these and mutates them,
//! which reaches far deeper than random bytes do.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context as _;
use tigress_core::CiphertextKind;
use tigress_core::link::{ShareLink, identity_hash};
use tigress_core::share::{
    DisplayInformation, ShareBody, ShareId, ShareMessage, ShareMode, ShareOffer, X509Policy,
};
use tigress_core::x509::{CertificateAuthority, KeyRequest, check_request};

use crate::POLICY_COMMON_NAME;
use crate::envelope::with_fixture;

/// A CA, a signing request and the certificate the CA issued for it, all DER.
pub struct Authority {
    /// The CA's self-signed certificate.
    pub ca_der: Vec<u8>,
    /// The receiver's PKCS#10 request.
    pub request_der: Vec<u8>,
    /// The certificate for the request's key, signed by the CA.
    pub certificate_der: Vec<u8>,
}

/// Returns a CA with one issued certificate, made once per process; `None` when making it
/// failed, which only a broken random source could cause.
pub fn authority() -> Option<&'static Authority> {
    static AUTHORITY: OnceLock<Option<Authority>> = OnceLock::new();
    AUTHORITY.get_or_init(|| make_authority().ok()).as_ref()
}

fn make_authority() -> anyhow::Result<Authority> {
    let ca = CertificateAuthority::generate("tigress fuzz owner")?;
    let request = KeyRequest::generate(POLICY_COMMON_NAME)?;
    let policy = X509Policy {
        ca_certificate: ca.certificate_der()?,
        subject_common_name: POLICY_COMMON_NAME.to_owned(),
        max_validity_seconds: 30 * 24 * 3600,
    };
    let checked = check_request(&request.request_der, &policy, 24 * 3600)?;
    Ok(Authority {
        certificate_der: ca.issue(&checked, std::time::SystemTime::now(), 24 * 3600)?,
        ca_der: policy.ca_certificate,
        request_der: request.request_der,
    })
}

/// Makes the seeds of the target called `target` from the credential documents given.
///
/// # Errors
///
/// An unknown target, or a failure to build a message, key or session.
pub fn seeds(target: &str, credentials: &[Vec<u8>]) -> anyhow::Result<Vec<Vec<u8>>> {
    let authority = authority().context("failed to make a CA and a certificate")?;
    match target {
        "share_message" => share_messages(credentials, authority)?
            .iter()
            .map(|message| Ok(message.encode_padded()?))
            .collect(),
        "share_link" => Ok(vec![link()?.into_bytes()]),
        "key_signing_request" => Ok(vec![authority.request_der.clone()]),
        "key_import_request" => Ok(vec![authority.certificate_der.clone()]),
        "envelope" => envelopes(&share_messages(credentials, authority)?),
        "relay_request" => crate::relay::seeds(),
        _ => anyhow::bail!("unknown fuzz target {target:?}"),
    }
}

/// Writes the seeds of every target into `out/TARGET/`, one file per seed, from the
/// credential documents in `credentials`.
///
/// # Errors
///
/// When a folder cannot be read or written, or a seed cannot be made.
pub fn write_all(out: &Path, credentials: &Path) -> anyhow::Result<()> {
    let mut documents = Vec::new();
    let entries = std::fs::read_dir(credentials)
        .with_context(|| format!("failed to read {}", credentials.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "cbor")
        {
            documents.push(
                std::fs::read(&path)
                    .with_context(|| format!("failed to read {}", path.display()))?,
            );
        }
    }

    for (target, _) in crate::TARGETS {
        let folder = out.join(target);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("failed to create {}", folder.display()))?;
        for (index, seed) in seeds(target, &documents)?.iter().enumerate() {
            let path = folder.join(format!("seed-{index:02}"));
            std::fs::write(&path, seed)
                .with_context(|| format!("failed to write {}", path.display()))?;
        }
    }
    Ok(())
}

/// Returns one share message of every kind, with an offer for each credential.
fn share_messages(
    credentials: &[Vec<u8>],
    authority: &Authority,
) -> anyhow::Result<Vec<ShareMessage>> {
    let share_id: ShareId = "000102030405060708090a0b0c0d0e0f".parse()?;
    let offer = |provisioning_information: Vec<u8>, x509_policy: Option<X509Policy>| {
        ShareBody::Offer(ShareOffer {
            mode: if x509_policy.is_some() {
                ShareMode::Stateful
            } else {
                ShareMode::Stateless
            },
            display: DisplayInformation {
                title: "Sample credential".to_owned(),
                size_bytes: provisioning_information.len() as u64,
                file_name: "credential.cbor".to_owned(),
                ..DisplayInformation::default()
            },
            provisioning_information,
            expires_at_ms: Some(1_900_000_000_000),
            x509_policy,
        })
    };
    let policy = X509Policy {
        ca_certificate: authority.ca_der.clone(),
        subject_common_name: POLICY_COMMON_NAME.to_owned(),
        max_validity_seconds: 30 * 24 * 3600,
    };

    let mut bodies: Vec<ShareBody> = credentials
        .iter()
        .map(|credential| offer(credential.clone(), None))
        .collect();
    bodies.extend([
        offer(Vec::new(), Some(policy)),
        ShareBody::KeySigningRequest {
            certificate_signing_request: authority.request_der.clone(),
            requested_validity_seconds: 24 * 3600,
        },
        ShareBody::KeyImportRequest {
            certificate: authority.certificate_der.clone(),
        },
        ShareBody::Completed,
        ShareBody::Declined,
        ShareBody::Cancelled,
    ]);
    Ok(bodies
        .into_iter()
        .map(|body| ShareMessage {
            share_id,
            sent_at_ms: 1_800_000_000_000,
            body,
        })
        .collect())
}

fn link() -> anyhow::Result<String> {
    let link = ShareLink {
        relay_url: "http://127.0.0.1:50051".to_owned(),
        to: "00000000-0000-4000-8000-000000000001.1".parse()?,
        secret: [7; 32],
        identity_hash: identity_hash(&[5; 33]),
    };
    Ok(link.dangerous_to_text())
}

/// Envelope inputs: each message encrypted by Alice in her session with Bob, and the first
/// message of Carol's new session, each behind the selector byte that picks its sender and
/// kind.
fn envelopes(messages: &[ShareMessage]) -> anyhow::Result<Vec<Vec<u8>>> {
    with_fixture(|fixture| {
        let mut inputs = Vec::new();
        for (message, from_carol) in messages
            .iter()
            .map(|message| (message, false))
            .chain(messages.first().map(|message| (message, true)))
        {
            let sender = if from_carol {
                &fixture.carol
            } else {
                &fixture.alice
            };
            let ciphertext = sender.encrypt(&fixture.bob.address, &message.encode_padded()?)?;
            let kind = u8::from(ciphertext.kind == CiphertextKind::PreKey);
            let selector = kind | (u8::from(from_carol) << 1);
            inputs.push([&[selector], ciphertext.bytes.as_slice()].concat());
        }
        Ok(inputs)
    })?
}
