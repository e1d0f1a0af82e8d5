//! The X.509 profile of stateful shares: a P-256 certificate authority owned by the sender, a
//! PKCS#10 certificate signing request as the receiver's key signing request, and an X.509
//! certificate as the sender's key import request.
//!
//! Every certificate and request uses ECDSA with SHA-256 over P-256 (RFC 5758). The receiver's
//! request must name exactly the policy's subject common name, and must not ask for a longer
//! validity than the policy allows. The certificate it gets back must be signed by the CA
//! carried in the offer, be valid now, and certify the receiver's own key. OpenSSL accepts the
//! result (`openssl verify -CAfile ca.pem cert.pem`).

use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519::CN;
use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, ID_EC_PUBLIC_KEY, SECP_256_R_1};
use der::asn1::{SetOfVec, Utf8StringRef};
use der::{Decode, Encode, EncodePem};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use x509_cert::Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::{Builder, CertificateBuilder, Profile, RequestBuilder};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::CertReq;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use zeroize::Zeroizing;

use crate::share::X509Policy;

/// How long an owner CA certificate is valid: ten years.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How far in the future a certificate's validity may start and still pass
/// [`verify_certificate`]: a day. The sender's device stamps the start by its own clock, which
/// may run hours ahead of the receiver's. The end of validity gets no such slack.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(24 * 3600);

/// The reason a request or certificate was rejected, or could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum X509Error {
    /// The DER does not parse as the expected structure.
    #[error("{what} is not valid DER: {reason}")]
    Malformed {
        /// The structure, such as "certificate signing request".
        what: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// The signature algorithm is not ECDSA with SHA-256.
    #[error("{what} is signed with {oid}, expected ecdsa-with-SHA256 ({ECDSA_WITH_SHA_256})")]
    SignatureAlgorithm {
        /// The signed structure.
        what: &'static str,
        /// The algorithm found.
        oid: ObjectIdentifier,
    },
    /// The public key is not a P-256 key.
    #[error("{what} key is not a P-256 public key: {reason}")]
    KeyType {
        /// Whose key.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A signature does not verify.
    #[error("signature of the {what} does not verify")]
    Signature {
        /// The signed structure.
        what: &'static str,
    },
    /// The request's subject is not the policy's.
    #[error("subject must be CN={expected}, got {actual}")]
    Subject {
        /// The policy's common name.
        expected: String,
        /// The subject found.
        actual: String,
    },
    /// The requested validity is longer than the policy allows.
    #[error("requested validity of {requested} s exceeds the policy's maximum of {max} s")]
    ValidityTooLong {
        /// Seconds requested.
        requested: u64,
        /// The policy's maximum.
        max: u64,
    },
    /// The certificate was not issued by the CA.
    #[error("certificate issuer {issuer} is not the certificate authority {ca}")]
    Issuer {
        /// The certificate's issuer.
        issuer: String,
        /// The CA's subject.
        ca: String,
    },
    /// The certificate is not valid at the time of checking.
    #[error("certificate is valid from {not_before} to {not_after}, not now")]
    NotValidNow {
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
    },
    /// The certificate certifies another key than the receiver's.
    #[error("certificate is for another key than the one in the signing request")]
    KeyMismatch,
    /// Building a certificate, request or PEM failed.
    #[error("failed to build {what}: {reason}")]
    Build {
        /// The structure.
        what: &'static str,
        /// The builder's message.
        reason: String,
    },
}

/// A certificate authority: a P-256 signing key and its self-signed certificate.
pub struct CertificateAuthority {
    key: SigningKey,
    certificate: Certificate,
}

impl std::fmt::Debug for CertificateAuthority {
    /// Leaves out the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field(
                "subject",
                &self.certificate.tbs_certificate.subject.to_string(),
            )
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Creates a CA with a new key and a self-signed certificate for `CN=common_name`, valid
    /// for [`CA_VALIDITY`] from now.
    ///
    /// # Errors
    ///
    /// [`X509Error::Build`] when the name or the certificate cannot be encoded.
    pub fn generate(common_name: &str) -> Result<Self, X509Error> {
        let key = SigningKey::random(&mut rand_core_06::OsRng);
        let subject = common_name_to_name(common_name)?;
        let public_key = spki(key.verifying_key())?;
        let validity = Validity::from_now(CA_VALIDITY).map_err(build_error("the CA validity"))?;
        let certificate = CertificateBuilder::new(
            Profile::Root,
            random_serial()?,
            validity,
            subject,
            public_key,
            &key,
        )
        .map_err(build_error("the CA certificate"))?
        .build::<DerSignature>()
        .map_err(build_error("the CA certificate"))?;
        Ok(Self { key, certificate })
    }

    /// Restores a CA from its PKCS#8 private key and DER certificate.
    ///
    /// # Errors
    ///
    /// [`X509Error::Malformed`] when either does not parse, [`X509Error::KeyMismatch`] when they
    /// do not belong together.
    pub fn from_parts(private_key_der: &[u8], certificate_der: &[u8]) -> Result<Self, X509Error> {
        let key =
            SigningKey::from_pkcs8_der(private_key_der).map_err(malformed("CA private key"))?;
        let certificate =
            Certificate::from_der(certificate_der).map_err(malformed("CA certificate"))?;
        if verifying_key(&certificate.tbs_certificate.subject_public_key_info, "CA")?
            != *key.verifying_key()
        {
            return Err(X509Error::KeyMismatch);
        }
        Ok(Self { key, certificate })
    }

    /// Encodes the private key as PKCS#8 DER, for the device store.
    ///
    /// # Errors
    ///
    /// [`X509Error::Build`] when encoding fails.
    pub fn dangerous_private_key_der(&self) -> Result<Zeroizing<Vec<u8>>, X509Error> {
        let document = self
            .key
            .to_pkcs8_der()
            .map_err(build_error("the CA private key"))?;
        Ok(Zeroizing::new(document.as_bytes().to_vec()))
    }

    /// Encodes the CA certificate as DER.
    ///
    /// # Errors
    ///
    /// [`X509Error::Build`] when encoding fails.
    pub fn certificate_der(&self) -> Result<Vec<u8>, X509Error> {
        self.certificate
            .to_der()
            .map_err(build_error("the CA certificate"))
    }

    /// Issues a certificate for a checked request, valid from `now` for `validity_seconds`.
    ///
    /// # Errors
    ///
    /// [`X509Error::Build`] when the certificate cannot be built, for example when the
    /// validity ends past what an X.509 time can hold.
    pub fn issue(
        &self,
        request: &CheckedRequest,
        now: SystemTime,
        validity_seconds: u64,
    ) -> Result<Vec<u8>, X509Error> {
        let not_after = now
            .checked_add(Duration::from_secs(validity_seconds))
            .ok_or_else(|| X509Error::Build {
                what: "the validity",
                reason: format!("{validity_seconds} s from now is out of range"),
            })?;
        let validity = Validity {
            not_before: Time::try_from(now).map_err(build_error("the validity"))?,
            not_after: Time::try_from(not_after).map_err(build_error("the validity"))?,
        };
        let profile = Profile::Leaf {
            issuer: self.certificate.tbs_certificate.subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        };
        let certificate = CertificateBuilder::new(
            profile,
            random_serial()?,
            validity,
            request.subject.clone(),
            request.public_key.clone(),
            &self.key,
        )
        .map_err(build_error("the certificate"))?
        .build::<DerSignature>()
        .map_err(build_error("the certificate"))?;
        certificate.to_der().map_err(build_error("the certificate"))
    }
}

/// A key pair of the receiver and its certificate signing request.
pub struct KeyRequest {
    key: SigningKey,
    /// The PKCS#10 request, DER.
    pub request_der: Vec<u8>,
}

impl std::fmt::Debug for KeyRequest {
    /// Leaves out the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRequest")
            .field(
                "request_der",
                &format_args!("<{} bytes>", self.request_der.len()),
            )
            .finish_non_exhaustive()
    }
}

impl KeyRequest {
    /// Creates a P-256 key pair and a signing request for `CN=common_name` signed with it.
    ///
    /// # Errors
    ///
    /// [`X509Error::Build`] when the name or request cannot be encoded.
    pub fn generate(common_name: &str) -> Result<Self, X509Error> {
        let key = SigningKey::random(&mut rand_core_06::OsRng);
        let subject = common_name_to_name(common_name)?;
        let request = RequestBuilder::new(subject, &key)
            .map_err(build_error("the signing request"))?
            .build::<DerSignature>()
            .map_err(build_error("the signing request"))?;
        let request_der = request
            .to_der()
            .map_err(build_error("the signing request"))?;
        Ok(Self { key, request_der })
    }

    /// Encodes the private key as PKCS#8 DER, for the device store.
    ///
    /// # Errors
    ///
    /// [`X509Error::Build`] when encoding fails.
    pub fn dangerous_private_key_der(&self) -> Result<Zeroizing<Vec<u8>>, X509Error> {
        let document = self
            .key
            .to_pkcs8_der()
            .map_err(build_error("the private key"))?;
        Ok(Zeroizing::new(document.as_bytes().to_vec()))
    }
}

/// A certificate signing request that passed [`check_request`].
#[derive(Clone, Debug)]
pub struct CheckedRequest {
    subject: Name,
    public_key: SubjectPublicKeyInfoOwned,
}

/// Checks a receiver's certificate signing request against the policy: the DER parses, the
/// key is P-256, the signature is ECDSA with SHA-256 and verifies, the subject is exactly
/// `CN=<policy common name>`, and the requested validity is within the policy.
///
/// # Errors
///
/// The [`X509Error`] naming the first rule broken.
pub fn check_request(
    request_der: &[u8],
    policy: &X509Policy,
    requested_validity_seconds: u64,
) -> Result<CheckedRequest, X509Error> {
    let what = "certificate signing request";
    let request = CertReq::from_der(request_der).map_err(malformed(what))?;
    if request.algorithm.oid != ECDSA_WITH_SHA_256 {
        return Err(X509Error::SignatureAlgorithm {
            what,
            oid: request.algorithm.oid,
        });
    }
    let key = verifying_key(&request.info.public_key, "request")?;
    let signed = request.info.to_der().map_err(malformed(what))?;
    verify(&key, &signed, request.signature.raw_bytes(), what)?;

    let expected = common_name_to_name(&policy.subject_common_name)?;
    if request.info.subject != expected {
        return Err(X509Error::Subject {
            expected: policy.subject_common_name.clone(),
            actual: request.info.subject.to_string(),
        });
    }
    if requested_validity_seconds > policy.max_validity_seconds {
        return Err(X509Error::ValidityTooLong {
            requested: requested_validity_seconds,
            max: policy.max_validity_seconds,
        });
    }
    Ok(CheckedRequest {
        subject: request.info.subject,
        public_key: request.info.public_key,
    })
}

/// Verifies a certificate received in a key import request: issued and signed by the CA in
/// `ca_der`, valid at `now` (its start may lie up to [`CLOCK_SKEW_ALLOWANCE`] after `now`),
/// and for the public key of the request in `request_der`.
///
/// # Errors
///
/// The [`X509Error`] naming the first rule broken.
pub fn verify_certificate(
    certificate_der: &[u8],
    ca_der: &[u8],
    request_der: &[u8],
    now: SystemTime,
) -> Result<(), X509Error> {
    let certificate = Certificate::from_der(certificate_der).map_err(malformed("certificate"))?;
    let ca = Certificate::from_der(ca_der).map_err(malformed("CA certificate"))?;
    let request =
        CertReq::from_der(request_der).map_err(malformed("certificate signing request"))?;

    let tbs = &certificate.tbs_certificate;
    if tbs.issuer != ca.tbs_certificate.subject {
        return Err(X509Error::Issuer {
            issuer: tbs.issuer.to_string(),
            ca: ca.tbs_certificate.subject.to_string(),
        });
    }
    if certificate.signature_algorithm.oid != ECDSA_WITH_SHA_256 {
        return Err(X509Error::SignatureAlgorithm {
            what: "certificate",
            oid: certificate.signature_algorithm.oid,
        });
    }
    let ca_key = verifying_key(&ca.tbs_certificate.subject_public_key_info, "CA")?;
    let signed = tbs.to_der().map_err(malformed("certificate"))?;
    verify(
        &ca_key,
        &signed,
        certificate.signature.raw_bytes(),
        "certificate",
    )?;

    let not_before = tbs.validity.not_before.to_system_time();
    let not_after = tbs.validity.not_after.to_system_time();
    let starts_too_late = not_before
        .duration_since(now)
        .is_ok_and(|ahead| ahead > CLOCK_SKEW_ALLOWANCE);
    if starts_too_late || now > not_after {
        return Err(X509Error::NotValidNow {
            not_before: tbs.validity.not_before.to_string(),
            not_after: tbs.validity.not_after.to_string(),
        });
    }
    if tbs.subject_public_key_info != request.info.public_key {
        return Err(X509Error::KeyMismatch);
    }
    Ok(())
}

/// Encodes a DER certificate as PEM.
///
/// # Errors
///
/// [`X509Error::Malformed`] when the DER is not a certificate.
pub fn certificate_pem(certificate_der: &[u8]) -> Result<String, X509Error> {
    let certificate = Certificate::from_der(certificate_der).map_err(malformed("certificate"))?;
    certificate
        .to_pem(LineEnding::LF)
        .map_err(build_error("the certificate PEM"))
}

/// Encodes a PKCS#8 DER private key as PEM.
///
/// # Errors
///
/// [`X509Error::Malformed`] when the DER is not a P-256 private key.
pub fn dangerous_private_key_pem(private_key_der: &[u8]) -> Result<Zeroizing<String>, X509Error> {
    let key = SigningKey::from_pkcs8_der(private_key_der).map_err(malformed("private key"))?;
    key.to_pkcs8_pem(LineEnding::LF)
        .map_err(build_error("the private key PEM"))
}

/// Builds the name `CN=common_name`, encoded as a UTF8String.
fn common_name_to_name(common_name: &str) -> Result<Name, X509Error> {
    let value = Utf8StringRef::new(common_name).map_err(build_error("the subject name"))?;
    let attribute = AttributeTypeAndValue {
        oid: CN,
        value: der::Any::encode_from(&value).map_err(build_error("the subject name"))?,
    };
    let rdn = SetOfVec::try_from(vec![attribute]).map_err(build_error("the subject name"))?;
    Ok(RdnSequence(vec![RelativeDistinguishedName(rdn)]))
}

/// Decodes a P-256 public key from a SubjectPublicKeyInfo, checking its algorithm and curve.
fn verifying_key(
    spki: &SubjectPublicKeyInfoOwned,
    what: &'static str,
) -> Result<VerifyingKey, X509Error> {
    let key_type = |reason: String| X509Error::KeyType { what, reason };
    if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
        return Err(key_type(format!(
            "algorithm is {}, expected id-ecPublicKey",
            spki.algorithm.oid
        )));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|parameters| parameters.decode_as::<ObjectIdentifier>().ok());
    if curve != Some(SECP_256_R_1) {
        return Err(key_type("curve is not P-256 (secp256r1)".to_owned()));
    }
    VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .map_err(|error| key_type(error.to_string()))
}

fn spki(key: &VerifyingKey) -> Result<SubjectPublicKeyInfoOwned, X509Error> {
    SubjectPublicKeyInfoOwned::from_key(*key).map_err(build_error("the public key"))
}

fn verify(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8],
    what: &'static str,
) -> Result<(), X509Error> {
    let signature =
        DerSignature::from_bytes(signature).map_err(|_| X509Error::Signature { what })?;
    key.verify(message, &signature)
        .map_err(|_| X509Error::Signature { what })
}

/// Draws a positive 16-byte serial number; RFC 5280 requires positive serials of at most 20
/// bytes.
fn random_serial() -> Result<SerialNumber, X509Error> {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7F;
    bytes[0] |= 0x01;
    SerialNumber::new(&bytes).map_err(build_error("a serial number"))
}

fn malformed<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> X509Error {
    move |error| X509Error::Malformed {
        what,
        reason: error.to_string(),
    }
}

fn build_error<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> X509Error {
    move |error| X509Error::Build {
        what,
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests;
