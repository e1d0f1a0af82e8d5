//! The code under fuzzing: one function per fuzz target, each taking arbitrary bytes from
//! outside the device and required to return without panicking whatever they are.
//!
//! The cargo-fuzz package in `fuzz/` calls these functions from libFuzzer, and the tests of
//! this crate replay every saved input (`fuzz/regressions/`) and every seed ([`seeds`])
//! through them, so a crash once found stays fixed without a fuzzing toolchain.
//!
//! Each target also checks a property of the inputs it accepts, so the fuzzer finds wrong
//! results as well as panics. An accepted share message encodes back to the same padded bytes,
//! and an accepted link prints back to the same text.

#![deny(unsafe_code)]

mod envelope;
mod relay;
pub mod seeds;

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use tigress_core::link::ShareLink;
use tigress_core::share::{ShareMessage, X509Policy};
use tigress_core::x509::{certificate_pem, check_request, verify_certificate};

pub use envelope::{envelope, open_envelope};
pub use relay::{call_relay, relay_request};

/// The code of one fuzz target: takes any bytes, and panics only on a bug.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name: the name of the `fuzz/fuzz_targets/` file and of the folders of
/// its corpus and saved inputs.
pub const TARGETS: [(&str, Target); 6] = [
    ("share_message", share_message),
    ("share_link", share_link),
    ("key_signing_request", key_signing_request),
    ("key_import_request", key_import_request),
    ("envelope", envelope),
    ("relay_request", relay_request),
];

/// The subject common name that the key signing request target's policy expects.
pub const POLICY_COMMON_NAME: &str = "tigress fuzz receiver";

/// Returns the function of the target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .map(|&(_, run)| run)
}

/// Decodes a decrypted share message, as a device does with every plaintext from a session.
///
/// # Panics
///
/// When an accepted message does not encode back to the same padded bytes.
pub fn share_message(data: &[u8]) {
    let Ok(message) = ShareMessage::decode_padded(data) else {
        return;
    };
    if let Ok(encoded) = message.encode_padded() {
        assert_eq!(
            ShareMessage::decode_padded(&encoded).ok(),
            Some(message),
            "a decoded share message does not survive encoding again"
        );
    }
}

/// Parses an invitation link, as `tigress accept LINK` does.
///
/// # Panics
///
/// When an accepted link does not print back to a link that parses to the same text.
pub fn share_link(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(link) = ShareLink::from_str(text) else {
        return;
    };
    let printed = link.dangerous_to_text();
    let reparsed = ShareLink::from_str(&printed).map(|link| link.dangerous_to_text());
    assert_eq!(
        reparsed.as_deref(),
        Ok(printed.as_str()),
        "a parsed link does not print back to itself"
    );
}

/// Checks a key signing request against a policy, as the sender's device does before it
/// issues a certificate.
pub fn key_signing_request(data: &[u8]) {
    let policy = X509Policy {
        ca_certificate: Vec::new(),
        subject_common_name: POLICY_COMMON_NAME.to_owned(),
        max_validity_seconds: 30 * 24 * 3600,
    };
    let _ = check_request(data, &policy, 24 * 3600);
}

/// Verifies a key import request's certificate against a real CA and signing request, as the
/// receiver's device does, and encodes it as PEM, as `tigress export` does.
pub fn key_import_request(data: &[u8]) {
    let Some(authority) = seeds::authority() else {
        return;
    };
    let now = SystemTime::now() + Duration::from_secs(60);
    let _ = verify_certificate(data, &authority.ca_der, &authority.request_der, now);
    let _ = certificate_pem(data);
}
