//! Checks an exported certificate of a stateful share: `cert.pem` must be signed by `ca.pem`,
//! be valid now, and certify the key in `key.pem`. OpenSSL does the check when it is on the
//! machine; otherwise a Rust verifier does the same checks.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context as _, ensure};
use der::{DecodePem, Encode};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::DecodePrivateKey;
use x509_cert::Certificate;

/// Checks the three files in `folder` and returns the name of the verifier used.
pub(crate) fn check(folder: &Path) -> anyhow::Result<&'static str> {
    let (cert, key, ca) = (
        folder.join("cert.pem"),
        folder.join("key.pem"),
        folder.join("ca.pem"),
    );
    if openssl_available() {
        check_with_openssl(&cert, &key, &ca)?;
        Ok("openssl verify")
    } else {
        check_in_rust(&cert, &key, &ca)?;
        Ok("the Rust verifier (openssl is not on this machine)")
    }
}

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|output| output.status.success())
}

fn check_with_openssl(cert: &Path, key: &Path, ca: &Path) -> anyhow::Result<()> {
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca)
        .arg(cert)
        .output()
        .context("failed to run openssl verify")?;
    let text = String::from_utf8_lossy(&verify.stdout);
    ensure!(
        verify.status.success() && text.trim_end().ends_with(": OK"),
        "openssl verify rejected {}: {}{}",
        cert.display(),
        text,
        String::from_utf8_lossy(&verify.stderr)
    );

    let certificate_key = openssl(&["x509", "-noout", "-pubkey", "-in"], cert)?;
    let private_key = openssl(&["pkey", "-pubout", "-in"], key)?;
    ensure!(
        certificate_key == private_key,
        "{} certifies another key than the one in {}",
        cert.display(),
        key.display()
    );
    Ok(())
}

fn openssl(arguments: &[&str], file: &Path) -> anyhow::Result<Vec<u8>> {
    let output = Command::new("openssl")
        .args(arguments)
        .arg(file)
        .output()
        .context("failed to run openssl")?;
    ensure!(
        output.status.success(),
        "openssl {} {} failed: {}",
        arguments.join(" "),
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output.stdout)
}

fn check_in_rust(cert: &Path, key: &Path, ca: &Path) -> anyhow::Result<()> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))
    };
    let certificate =
        Certificate::from_pem(read(cert)?).context("cert.pem is not a PEM certificate")?;
    let authority = Certificate::from_pem(read(ca)?).context("ca.pem is not a PEM certificate")?;
    let key_text = String::from_utf8(read(key)?).context("key.pem is not text")?;
    let private_key =
        SigningKey::from_pkcs8_pem(&key_text).context("key.pem is not a P-256 PKCS#8 key")?;

    let tbs = &certificate.tbs_certificate;
    ensure!(
        tbs.issuer == authority.tbs_certificate.subject,
        "cert.pem is not issued by the CA in ca.pem"
    );
    let ca_key = VerifyingKey::from_sec1_bytes(
        authority
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    )
    .context("ca.pem has no P-256 key")?;
    let signature = DerSignature::from_bytes(certificate.signature.raw_bytes())
        .context("cert.pem has no ECDSA signature")?;
    ca_key
        .verify(&tbs.to_der()?, &signature)
        .context("the CA's signature on cert.pem does not verify")?;

    let now = SystemTime::now();
    ensure!(
        tbs.validity.not_before.to_system_time() <= now
            && now <= tbs.validity.not_after.to_system_time(),
        "cert.pem is not valid now"
    );
    let certified =
        VerifyingKey::from_sec1_bytes(tbs.subject_public_key_info.subject_public_key.raw_bytes())
            .context("cert.pem has no P-256 key")?;
    ensure!(
        certified == *private_key.verifying_key(),
        "cert.pem certifies another key than the one in key.pem"
    );
    Ok(())
}
