//! Tests of the X.509 profile: a CA issues a certificate for a checked request, and every rule
//! of the request and certificate checks rejects what breaks it.

use std::time::{Duration, SystemTime};

use const_oid::db::rfc5912::{ECDSA_WITH_SHA_384, SECP_384_R_1};
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::request::CertReq;

use super::*;

fn policy(ca: &CertificateAuthority) -> X509Policy {
    X509Policy {
        ca_certificate: ca.certificate_der().unwrap(),
        subject_common_name: "Front door".to_owned(),
        max_validity_seconds: 86_400,
    }
}

#[test]
fn issued_certificate_verifies() {
    let ca = CertificateAuthority::generate("tigress owner CA").unwrap();
    let request = KeyRequest::generate("Front door").unwrap();
    let checked = check_request(&request.request_der, &policy(&ca), 3600).unwrap();
    let certificate = ca.issue(&checked, SystemTime::now(), 3600).unwrap();

    verify_certificate(
        &certificate,
        &ca.certificate_der().unwrap(),
        &request.request_der,
        SystemTime::now(),
    )
    .unwrap();
    assert!(
        certificate_pem(&certificate)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let key_pem = dangerous_private_key_pem(&request.dangerous_private_key_der().unwrap()).unwrap();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
}

#[test]
fn request_with_other_subject_is_rejected() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let request = KeyRequest::generate("Back door").unwrap();
    let error = check_request(&request.request_der, &policy(&ca), 60).unwrap_err();
    assert_eq!(
        error.to_string(),
        "subject must be CN=Front door, got CN=Back door"
    );
}

#[test]
fn request_beyond_policy_validity_is_rejected() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let request = KeyRequest::generate("Front door").unwrap();
    let error = check_request(&request.request_der, &policy(&ca), 86_401).unwrap_err();
    assert_eq!(
        error,
        X509Error::ValidityTooLong {
            requested: 86_401,
            max: 86_400
        }
    );
}

#[test]
fn request_with_bad_signature_is_rejected() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let request = KeyRequest::generate("Front door").unwrap();
    let mut parsed = CertReq::from_der(&request.request_der).unwrap();
    let other = KeyRequest::generate("Front door").unwrap();
    parsed.signature = CertReq::from_der(&other.request_der).unwrap().signature;
    let error = check_request(&parsed.to_der().unwrap(), &policy(&ca), 60).unwrap_err();
    assert_eq!(
        error,
        X509Error::Signature {
            what: "certificate signing request"
        }
    );
}

#[test]
fn request_with_wrong_key_type_is_rejected() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let request = KeyRequest::generate("Front door").unwrap();
    let mut parsed = CertReq::from_der(&request.request_der).unwrap();
    parsed.info.public_key.algorithm.parameters =
        Some(der::Any::encode_from(&SECP_384_R_1).unwrap());
    let error = check_request(&parsed.to_der().unwrap(), &policy(&ca), 60).unwrap_err();
    assert!(matches!(error, X509Error::KeyType { .. }), "{error}");
}

#[test]
fn request_with_other_algorithm_is_rejected() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let request = KeyRequest::generate("Front door").unwrap();
    let mut parsed = CertReq::from_der(&request.request_der).unwrap();
    parsed.algorithm.oid = ECDSA_WITH_SHA_384;
    let error = check_request(&parsed.to_der().unwrap(), &policy(&ca), 60).unwrap_err();
    assert!(
        matches!(error, X509Error::SignatureAlgorithm { .. }),
        "{error}"
    );
}

#[test]
fn garbage_request_is_malformed() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let error = check_request(&[0x30, 0x03, 0x01, 0x02], &policy(&ca), 60).unwrap_err();
    assert!(matches!(error, X509Error::Malformed { .. }), "{error}");
}

#[test]
fn certificate_from_another_ca_is_rejected() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let impostor = CertificateAuthority::generate("CA").unwrap();
    let stranger = CertificateAuthority::generate("Other CA").unwrap();
    let request = KeyRequest::generate("Front door").unwrap();
    let checked = check_request(&request.request_der, &policy(&ca), 60).unwrap();
    let ca_der = ca.certificate_der().unwrap();

    let forged = impostor.issue(&checked, SystemTime::now(), 60).unwrap();
    let error =
        verify_certificate(&forged, &ca_der, &request.request_der, SystemTime::now()).unwrap_err();
    assert_eq!(
        error,
        X509Error::Signature {
            what: "certificate"
        }
    );

    let foreign = stranger.issue(&checked, SystemTime::now(), 60).unwrap();
    let error =
        verify_certificate(&foreign, &ca_der, &request.request_der, SystemTime::now()).unwrap_err();
    assert!(matches!(error, X509Error::Issuer { .. }), "{error}");
}

#[test]
fn certificate_for_another_key_is_rejected() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let mine = KeyRequest::generate("Front door").unwrap();
    let theirs = KeyRequest::generate("Front door").unwrap();
    let checked = check_request(&theirs.request_der, &policy(&ca), 60).unwrap();
    let certificate = ca.issue(&checked, SystemTime::now(), 60).unwrap();
    let error = verify_certificate(
        &certificate,
        &ca.certificate_der().unwrap(),
        &mine.request_der,
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(error, X509Error::KeyMismatch);
}

#[test]
fn expired_certificate_is_rejected() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let request = KeyRequest::generate("Front door").unwrap();
    let checked = check_request(&request.request_der, &policy(&ca), 60).unwrap();
    let certificate = ca.issue(&checked, SystemTime::now(), 60).unwrap();
    let later = SystemTime::now() + Duration::from_secs(3600);
    let error = verify_certificate(
        &certificate,
        &ca.certificate_der().unwrap(),
        &request.request_der,
        later,
    )
    .unwrap_err();
    assert!(matches!(error, X509Error::NotValidNow { .. }), "{error}");
}

/// Issues a 60-second certificate whose validity starts `ahead` after now, as a sender whose
/// clock runs ahead does, and verifies it now.
fn verify_issued_ahead(ahead: Duration) -> Result<(), X509Error> {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let request = KeyRequest::generate("Front door").unwrap();
    let checked = check_request(&request.request_der, &policy(&ca), 60).unwrap();
    let certificate = ca.issue(&checked, SystemTime::now() + ahead, 60).unwrap();
    verify_certificate(
        &certificate,
        &ca.certificate_der().unwrap(),
        &request.request_der,
        SystemTime::now(),
    )
}

#[test]
fn certificate_hours_ahead_is_accepted() {
    verify_issued_ahead(Duration::from_secs(5 * 3600)).unwrap();
}

#[test]
fn certificate_beyond_allowance_is_rejected() {
    let error = verify_issued_ahead(CLOCK_SKEW_ALLOWANCE + Duration::from_secs(3600)).unwrap_err();
    assert!(matches!(error, X509Error::NotValidNow { .. }), "{error}");
}

#[test]
fn out_of_range_validity_fails() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let request = KeyRequest::generate("Front door").unwrap();
    let checked = check_request(&request.request_der, &policy(&ca), 60).unwrap();
    let error = ca.issue(&checked, SystemTime::now(), u64::MAX).unwrap_err();
    assert!(
        matches!(
            error,
            X509Error::Build {
                what: "the validity",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn ca_restores_from_its_parts() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let key = ca.dangerous_private_key_der().unwrap();
    let certificate = ca.certificate_der().unwrap();
    let restored = CertificateAuthority::from_parts(&key, &certificate).unwrap();
    assert_eq!(restored.certificate_der().unwrap(), certificate);

    let other = CertificateAuthority::generate("CA").unwrap();
    let error =
        CertificateAuthority::from_parts(&other.dangerous_private_key_der().unwrap(), &certificate)
            .unwrap_err();
    assert_eq!(error, X509Error::KeyMismatch);
}

#[test]
fn debug_output_shows_no_key() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let key = ca.dangerous_private_key_der().unwrap();
    let printed = format!("{ca:?}");
    assert!(printed.contains("CN=CA"), "{printed}");
    assert!(
        !printed.contains(&format!("{:?}", &key[key.len() - 8..])),
        "{printed}"
    );
    let request = KeyRequest::generate("x").unwrap();
    assert!(!format!("{request:?}").contains("key:"));
}

#[test]
fn ca_certificate_is_a_ca() {
    let ca = CertificateAuthority::generate("CA").unwrap();
    let certificate = Certificate::from_der(&ca.certificate_der().unwrap()).unwrap();
    let constraints = certificate
        .tbs_certificate
        .extensions
        .unwrap()
        .into_iter()
        .find(|extension| extension.extn_id == const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .unwrap();
    let value = x509_cert::ext::pkix::BasicConstraints::from_der(constraints.extn_value.as_bytes())
        .unwrap();
    assert!(value.ca);
}
