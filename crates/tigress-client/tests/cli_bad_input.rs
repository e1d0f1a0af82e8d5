//! The bad-input table of the `tigress` CLI. Every command runs as a separate process with a
//! malformed, unknown or missing argument, and each row asserts the exit status and the error
//! line. Some rows act on a share that was cancelled or that expired before the table. After
//! the table, neither device's shares may have changed, and no failed command may have left a
//! home or an exported file behind.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::time::Duration;

use support::TestRelay;
use tokio::process::Command;

/// Exit status of a command that failed.
const FAILED: i32 = 1;
/// Exit status of invalid arguments.
const INVALID_ARGUMENTS: i32 = 2;

/// Runs the CLI on `home` with `arguments` and returns its exit status, stdout and stderr.
async fn tigress(home: &Path, arguments: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tigress"))
        .arg("--home")
        .arg(home)
        .args(arguments)
        .env_remove("TIGRESS_HOME")
        .env_remove("TIGRESS_CA_FILE")
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    )
}

/// Runs a command that must succeed and returns its stdout.
async fn ok(home: &Path, arguments: &[&str]) -> String {
    let (status, stdout, stderr) = tigress(home, arguments).await;
    assert_eq!(status, 0, "tigress {arguments:?} failed: {stderr}");
    stdout
}

/// Lists what `home` shows of its shares, sent and received.
async fn shares(home: &Path) -> (String, String) {
    (
        ok(home, &["--json", "shares"]).await,
        ok(home, &["--json", "inbox"]).await,
    )
}

/// Returns the expiry time that `home`'s inbox shows for `share`, as RFC 3339.
async fn expiry_of(home: &Path, share: &str) -> String {
    let inbox: serde_json::Value =
        serde_json::from_str(&ok(home, &["--json", "inbox"]).await).unwrap();
    let entry = inbox["shares"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["share_id"] == share)
        .unwrap();
    tigress_client::format_time(entry["expires_at_ms"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_bad_input_table() {
    let mut relay = TestRelay::start().await;
    let folder = tempfile::tempdir().unwrap();
    let (alice_home, bob_home) = (folder.path().join("alice"), folder.path().join("bob"));
    let alice = ok(&alice_home, &["init", "--relay", &relay.url]).await;
    let bob = ok(&bob_home, &["init", "--relay", &relay.url]).await;
    let credential = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/credentials/mdl-device-response.cbor")
        .display()
        .to_string();
    let share = ok(&alice_home, &["share", "--to", &bob, &credential]).await;
    let cancelled = ok(&alice_home, &["share", "--to", &bob, &credential]).await;
    let expired = ok(
        &alice_home,
        &["share", "--to", &bob, &credential, "--expires", "1s"],
    )
    .await;
    ok(&bob_home, &["sync"]).await;
    ok(&alice_home, &["cancel", &cancelled]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ok(&bob_home, &["sync"]).await;
    ok(&alice_home, &["sync"]).await;
    let expired_at = expiry_of(&bob_home, &expired).await;
    let before = (shares(&alice_home).await, shares(&bob_home).await);

    let missing_file = folder.path().join("missing").display().to_string();
    let unknown_address = "00000000-0000-4000-8000-000000000009.1";
    let unknown_share = "00000000000000000000000000000000";
    let unknown_share_text = "share 00000000-0000-0000-0000-000000000000 is unknown on this device: `tigress inbox` and `tigress shares` list the shares it has";
    let out = folder.path().join("out").display().to_string();
    let new_home = folder.path().join("new");
    let (a, b, n) = (alice_home.as_path(), bob_home.as_path(), new_home.as_path());
    let rows: Vec<(&str, &Path, Vec<&str>, i32, String)> = vec![
        ("init: invalid relay URL", n, vec!["init", "--relay", "not-a-url"], FAILED, "invalid relay URL \"not-a-url\": must start with http:// or https://, for example http://127.0.0.1:50051".to_owned()),
        ("init: home already used", a, vec!["init", "--relay", &relay.url], FAILED, format!("{} already holds device {alice}; use another --home for a second device", a.display())),
        ("whoami: no device", n, vec!["whoami"], FAILED, format!("no device in {}: run `tigress init --relay URL` first", n.display())),
        ("share: malformed address", a, vec!["share", "--to", "not-an-address", &credential], INVALID_ARGUMENTS, "invalid value 'not-an-address' for '--to <ADDRESS>': invalid address \"not-an-address\": expected UUID.DEVICE, for example 0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1 (see `tigress --help`)".to_owned()),
        ("share: unknown address", a, vec!["share", "--to", unknown_address, &credential], FAILED, format!("unknown address {unknown_address}: it is not registered on the relay")),
        ("share: own address", a, vec!["share", "--to", &alice, &credential], FAILED, format!("{alice} is this device's own address: share with another device")),
        ("share: missing file", a, vec!["share", "--to", &bob, &missing_file], FAILED, format!("failed to read credential file {missing_file}: No such file or directory (os error 2)")),
        ("share: invalid expiry", a, vec!["share", "--to", &bob, &credential, "--expires", "soon"], INVALID_ARGUMENTS, "invalid value 'soon' for '--expires <DURATION>': invalid duration \"soon\": expected a number and a unit, such as 90s, 30m, 24h or 7d (see `tigress --help`)".to_owned()),
        ("share: zero validity", a, vec!["share", "--to", &bob, &credential, "--stateful", "x509", "--valid-for", "0s"], INVALID_ARGUMENTS, "invalid value '0s' for '--valid-for <DURATION>': invalid duration \"0s\": must be longer than zero (see `tigress --help`)".to_owned()),
        ("invite: missing file", a, vec!["invite", &missing_file], FAILED, format!("failed to read credential file {missing_file}: No such file or directory (os error 2)")),
        ("sync: invalid wait", a, vec!["sync", "--wait", "abc"], INVALID_ARGUMENTS, "invalid value 'abc' for '--wait <SECONDS>': invalid digit found in string (see `tigress --help`)".to_owned()),
        ("accept: unknown share", b, vec!["accept", unknown_share], FAILED, unknown_share_text.to_owned()),
        ("accept: neither id nor link", b, vec!["accept", "nonsense"], FAILED, "expected a share id or a tigress://share link: invalid share id \"nonsense\": expected a UUID such as 0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c".to_owned()),
        ("accept: malformed link", b, vec!["accept", "tigress://share?relay=http%3A%2F%2Fx&to=bob#a.b"], FAILED, "invalid share link: the to parameter is not an address UUID.DEVICE".to_owned()),
        ("export: unknown share", b, vec!["export", unknown_share, "--out", &out], FAILED, unknown_share_text.to_owned()),
        ("export: not accepted yet", b, vec!["export", &share, "--out", &out], FAILED, format!("share {share} is offered: accept it before exporting its credential")),
        ("export: cancelled share", b, vec!["export", &cancelled, "--out", &out], FAILED, format!("share {cancelled} is cancelled: it ended without a credential to export")),
        ("accept: cancelled share", b, vec!["accept", &cancelled], FAILED, format!("share {cancelled} is cancelled: accept is not allowed now")),
        ("accept: expired share", b, vec!["accept", &expired], FAILED, format!("share {expired} expired at {expired_at}: ask the sender to share it again")),
        ("decline: unknown share", b, vec!["decline", unknown_share], FAILED, unknown_share_text.to_owned()),
        ("decline: expired share", b, vec!["decline", &expired], FAILED, format!("share {expired} is expired: decline is not allowed now")),
        ("cancel: unknown share", a, vec!["cancel", unknown_share], FAILED, unknown_share_text.to_owned()),
        ("cancel: cancelled share", a, vec!["cancel", &cancelled], FAILED, format!("share {cancelled} is cancelled: cancel is not allowed now")),
        ("cancel: expired share", a, vec!["cancel", &expired], FAILED, format!("share {expired} is expired: cancel is not allowed now")),
        ("approve: unknown share", a, vec!["approve", unknown_share], FAILED, unknown_share_text.to_owned()),
        ("verify: malformed address", a, vec!["verify", "not-an-address"], INVALID_ARGUMENTS, "invalid value 'not-an-address' for '<ADDRESS>': invalid address \"not-an-address\": expected UUID.DEVICE, for example 0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1 (see `tigress --help`)".to_owned()),
        ("trust: unknown address", a, vec!["trust", unknown_address], FAILED, format!("unknown address {unknown_address}: it is not registered on the relay")),
        ("owner export: no CA", a, vec!["owner", "export", "--out", &out], FAILED, format!("no owner certificate authority in {}: run `tigress owner init` first", a.display())),
    ];

    let mut mismatches = Vec::new();
    for (name, home, arguments, status, message) in &rows {
        let (got_status, _, stderr) = tigress(home, arguments).await;
        let expected = format!("error: {message}");
        if got_status != *status || stderr != expected {
            mismatches.push(format!(
                "{name}: got {got_status} {stderr:?}, expected {status} {expected:?}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));

    assert!(!new_home.exists(), "a failed command left a home behind");
    assert!(!Path::new(&out).exists(), "a failed export wrote {out}");
    let after = (shares(&alice_home).await, shares(&bob_home).await);
    assert_eq!(after, before, "a failed command changed the shares");
    relay.stop().await;
}
