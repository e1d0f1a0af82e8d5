//! Replays every saved fuzz input and every seed through its target, so that a crash once
//! found stays fixed, and checks that the seeds are inputs the targets accept.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use tigress_fuzz::{TARGETS, seeds, target};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn credentials() -> Vec<Vec<u8>> {
    let folder = repository().join("examples/credentials");
    let mut documents = Vec::new();
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|extension| extension == "cbor")
        {
            documents.push(std::fs::read(path).unwrap());
        }
    }
    assert!(
        !documents.is_empty(),
        "no credentials in {}",
        folder.display()
    );
    documents
}

#[test]
fn saved_inputs_replay_cleanly() {
    let folder = repository().join("fuzz/regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&folder).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let run = target(&name)
            .unwrap_or_else(|| panic!("{name} in {} is not a fuzz target", folder.display()));
        for input in std::fs::read_dir(entry.path()).unwrap() {
            let path = input.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            eprintln!("replaying {}", path.display());
            run(&data);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no saved inputs under {}", folder.display());
}

#[test]
fn seeds_replay_cleanly() {
    let credentials = credentials();
    for (name, run) in TARGETS {
        let inputs = seeds::seeds(name, &credentials).unwrap();
        assert!(!inputs.is_empty(), "{name} has no seeds");
        for input in &inputs {
            run(input);
            for cut in [0, 1, input.len() / 2, input.len().saturating_sub(1)] {
                run(&input[..cut]);
            }
        }
    }
}

#[test]
fn share_message_seeds_decode() {
    let inputs = seeds::seeds("share_message", &credentials()).unwrap();
    for input in inputs {
        assert!(
            tigress_core::share::ShareMessage::decode_padded(&input).is_ok(),
            "a seed share message does not decode"
        );
    }
}

#[test]
fn envelope_seeds_decrypt() {
    let inputs = seeds::seeds("envelope", &credentials()).unwrap();
    assert!(
        inputs.iter().any(|input| input[0] & 2 == 2),
        "no seed from a new session"
    );
    for input in inputs {
        assert!(
            tigress_fuzz::open_envelope(&input).is_some(),
            "a seed envelope with selector {} does not open",
            input[0]
        );
    }
}

#[test]
fn relay_seeds_are_accepted() {
    let inputs = seeds::seeds("relay_request", &credentials()).unwrap();
    assert_eq!(inputs.len(), 10);
    for input in &inputs {
        let code = tigress_fuzz::call_relay(input);
        // The delete seed names another device on purpose.
        let expected = if input[0] & 0x7f == 10 {
            tigress_relay::fuzzing::Code::PermissionDenied
        } else {
            tigress_relay::fuzzing::Code::Ok
        };
        assert_eq!(code, Some(expected), "seed for call {}", input[0] & 0x7f);
    }
    let unauthenticated = [&[5u8][..], &inputs[4][1..]].concat();
    assert_eq!(
        tigress_fuzz::call_relay(&unauthenticated),
        Some(tigress_relay::fuzzing::Code::Unauthenticated)
    );
}

#[test]
fn certificate_seed_verifies() {
    let authority = seeds::authority().unwrap();
    let verified = tigress_core::x509::verify_certificate(
        &authority.certificate_der,
        &authority.ca_der,
        &authority.request_der,
        std::time::SystemTime::now() + std::time::Duration::from_secs(60),
    );
    assert_eq!(verified, Ok(()));
}

#[test]
fn unknown_target_is_none() {
    assert!(target("no_such_target").is_none());
    assert!(seeds::seeds("no_such_target", &[]).is_err());
}
