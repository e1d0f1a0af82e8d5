//! A certificate authority and a server certificate for 127.0.0.1 and localhost, made at test
//! time, for TLS tests.

use std::str::FromStr;
use std::time::Duration;

use der::EncodePem;
use der::asn1::{Ia5String, OctetString};
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

/// PEM texts of a test CA and a server certificate signed by it.
pub(crate) struct TestTls {
    pub(crate) ca_pem: String,
    pub(crate) certificate_pem: String,
    pub(crate) private_key_pem: String,
}

pub(crate) fn test_tls() -> TestTls {
    let ca_key = SigningKey::random(&mut rand_core_06::OsRng);
    let ca_name = Name::from_str("CN=tigress test CA").unwrap();
    let validity = || Validity::from_now(Duration::from_secs(3600)).unwrap();
    let ca_spki = SubjectPublicKeyInfoOwned::from_key(*ca_key.verifying_key()).unwrap();
    let ca = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::from(1u32),
        validity(),
        ca_name.clone(),
        ca_spki,
        &ca_key,
    )
    .unwrap()
    .build::<DerSignature>()
    .unwrap();

    let key = SigningKey::random(&mut rand_core_06::OsRng);
    let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).unwrap();
    let profile = Profile::Leaf {
        issuer: ca_name,
        enable_key_agreement: false,
        enable_key_encipherment: false,
    };
    let mut builder = CertificateBuilder::new(
        profile,
        SerialNumber::from(2u32),
        validity(),
        Name::from_str("CN=localhost").unwrap(),
        spki,
        &ca_key,
    )
    .unwrap();
    let names = SubjectAltName(vec![
        GeneralName::DnsName(Ia5String::new("localhost").unwrap()),
        GeneralName::IpAddress(OctetString::new(vec![127, 0, 0, 1]).unwrap()),
    ]);
    builder.add_extension(&names).unwrap();
    builder
        .add_extension(&ExtendedKeyUsage(vec![
            const_oid::db::rfc5280::ID_KP_SERVER_AUTH,
        ]))
        .unwrap();
    let certificate = builder.build::<DerSignature>().unwrap();

    TestTls {
        ca_pem: ca.to_pem(LineEnding::LF).unwrap(),
        certificate_pem: certificate.to_pem(LineEnding::LF).unwrap(),
        private_key_pem: key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
    }
}
