//! The lifecycle scenarios of the end-to-end run, beyond the stateless transfers: a stateful
//! share with an X.509 certificate, link shares (claimed once and refused for a second device,
//! and refused when the pinned identity does not match), a cancel, and an expired offer.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::Value;

use super::certificate;
use super::process::{Cli, Progress};

/// The devices of the run: a sender with an owner CA, a receiver, and a second receiver.
pub(crate) struct Devices {
    pub(crate) sender: Cli,
    pub(crate) receiver: Cli,
    pub(crate) second: Cli,
    pub(crate) receiver_address: String,
}

/// Runs every scenario; returns how many ran and the name of the certificate verifier used.
pub(crate) fn run_all(
    progress: &Progress,
    devices: &Devices,
    credential: &Path,
    work: &Path,
) -> anyhow::Result<(usize, &'static str)> {
    progress.step("stateful share: owner CA, key signing request, approval, certificate");
    let verifier = stateful_share(devices, work)?;
    progress.step(&format!(
        "stateful share completed; certificate checked with {verifier}"
    ));

    progress.step("link share: claimed by one device, refused for a second");
    link_share(devices, credential, work)?;
    progress.step("link share completed; the second claim was refused");

    progress.step("link share whose pinned identity hash does not match");
    tampered_link(devices, credential)?;
    progress.step("tampered link refused before anything was sent");

    progress.step("cancel before and after the receiver fetched the offer");
    cancel(devices, credential)?;
    progress.step("unfetched offer retracted; fetched offer cancelled on the receiver");

    progress.step("offer that expires before it is accepted");
    expired_offer(devices, credential)?;
    progress.step("expired offer refused by the receiver and marked expired by the sender");
    Ok((5, verifier))
}

fn stateful_share(devices: &Devices, work: &Path) -> anyhow::Result<&'static str> {
    let Devices {
        sender,
        receiver,
        receiver_address,
        ..
    } = devices;
    sender.run(&["owner", "init", "--name", "e2e owner CA"])?;
    let offer = sender.run(&[
        "share",
        "--to",
        receiver_address,
        "--stateful",
        "x509",
        "--title",
        "Front door",
        "--valid-for",
        "7d",
    ])?;
    let share_id = field(&offer, "share_id")?;

    let events = receiver.run(&["sync"])?;
    let offered = event(&events, "offer_received", &share_id)?;
    ensure!(
        offered["mode"] == "stateful",
        "offer of share {share_id} is not stateful: {offered}"
    );
    let accepted = receiver.run(&["accept", &share_id])?;
    ensure!(
        accepted["state"] == "signing-requested",
        "accepting a stateful share gave {accepted}"
    );

    event(
        &sender.run(&["sync"])?,
        "signing_request_received",
        &share_id,
    )?;
    sender.run(&["approve", &share_id])?;
    event(
        &receiver.run(&["sync"])?,
        "credential_provisioned",
        &share_id,
    )?;

    let folder = work.join("front-door");
    receiver.run(&["export", &share_id, "--out", &folder.to_string_lossy()])?;
    let verifier = certificate::check(&folder)?;
    event(&sender.run(&["sync"])?, "share_completed", &share_id)?;
    Ok(verifier)
}

fn link_share(devices: &Devices, credential: &Path, work: &Path) -> anyhow::Result<()> {
    let Devices {
        sender,
        receiver,
        second,
        ..
    } = devices;
    let invitation = sender.run(&[
        "invite",
        &credential.to_string_lossy(),
        "--title",
        "Guest key",
    ])?;
    let (link, share_id) = (field(&invitation, "link")?, field(&invitation, "share_id")?);
    ensure!(
        link.starts_with("tigress://share?"),
        "invite printed {link:?}, not a link"
    );

    receiver.run(&["accept", &link])?;
    event(&sender.run(&["sync"])?, "link_claimed", &share_id)?;
    second.run(&["accept", &link])?;
    event(&sender.run(&["sync"])?, "claim_rejected", &share_id)?;
    let second_events = second.run(&["sync"])?;
    let failed = event(&second_events, "share_failed", &share_id)?;
    ensure!(
        failed["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("already claimed")),
        "second claim failed for another reason: {failed}"
    );

    let events = receiver.run(&["sync"])?;
    event(&events, "credential_provisioned", &share_id)?;
    let exported = work.join("guest-key.cbor");
    receiver.run(&["export", &share_id, "--out", &exported.to_string_lossy()])?;
    let original = std::fs::read(credential)
        .with_context(|| format!("failed to read {}", credential.display()))?;
    ensure!(
        std::fs::read(&exported)? == original,
        "link share delivered other bytes than {}",
        credential.display()
    );
    event(&sender.run(&["sync"])?, "share_completed", &share_id)?;
    Ok(())
}

fn tampered_link(devices: &Devices, credential: &Path) -> anyhow::Result<()> {
    let Devices { sender, second, .. } = devices;
    let invitation = sender.run(&["invite", &credential.to_string_lossy()])?;
    let (link, share_id) = (field(&invitation, "link")?, field(&invitation, "share_id")?);
    let dot = link.rfind('.').context("link has no identity hash")?;
    let mut tampered = link.into_bytes();
    tampered[dot + 1] = if tampered[dot + 1] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let tampered = String::from_utf8(tampered)?;

    let error = second.run_failing(&["accept", &tampered])?;
    ensure!(
        error.contains("does not match the link"),
        "tampered link failed for another reason: {error}"
    );
    sender.run(&["cancel", &share_id])?;
    Ok(())
}

fn cancel(devices: &Devices, credential: &Path) -> anyhow::Result<()> {
    let Devices {
        sender,
        receiver,
        receiver_address,
        ..
    } = devices;
    let file = credential.to_string_lossy();
    let unfetched = field(
        &sender.run(&["share", "--to", receiver_address, &file])?,
        "share_id",
    )?;
    sender.run(&["cancel", &unfetched])?;
    let events = receiver.run(&["sync"])?;
    ensure!(
        event(&events, "offer_received", &unfetched).is_err(),
        "a retracted offer reached the receiver: {events}"
    );
    ensure!(
        share_state(sender, "shares", &unfetched)? == "cancelled",
        "cancelled share is not listed as cancelled"
    );

    let fetched = field(
        &sender.run(&["share", "--to", receiver_address, &file])?,
        "share_id",
    )?;
    event(&receiver.run(&["sync"])?, "offer_received", &fetched)?;
    sender.run(&["cancel", &fetched])?;
    event(&receiver.run(&["sync"])?, "share_cancelled", &fetched)?;
    let error = receiver.run_failing(&["accept", &fetched])?;
    ensure!(
        error.contains("is cancelled"),
        "accepting a cancelled share failed for another reason: {error}"
    );
    Ok(())
}

fn expired_offer(devices: &Devices, credential: &Path) -> anyhow::Result<()> {
    let Devices {
        sender,
        receiver,
        receiver_address,
        ..
    } = devices;
    let offer = sender.run(&[
        "share",
        "--to",
        receiver_address,
        &credential.to_string_lossy(),
        "--expires",
        "1s",
    ])?;
    let share_id = field(&offer, "share_id")?;
    std::thread::sleep(Duration::from_millis(1500));

    event(&receiver.run(&["sync"])?, "offer_received", &share_id)?;
    let error = receiver.run_failing(&["accept", &share_id])?;
    ensure!(
        error.contains("expired"),
        "accepting an expired share failed for another reason: {error}"
    );
    event(&sender.run(&["sync"])?, "share_expired", &share_id)?;
    Ok(())
}

/// Finds the event of `kind` for `share_id`.
fn event<'v>(events: &'v Value, kind: &str, share_id: &str) -> anyhow::Result<&'v Value> {
    events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|event| event["kind"] == kind && event["share_id"] == share_id)
        .with_context(|| format!("no {kind} event for share {share_id} in {events}"))
}

fn share_state(cli: &Cli, listing: &str, share_id: &str) -> anyhow::Result<String> {
    let shares = cli.run(&[listing])?;
    let share = shares["shares"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|share| share["share_id"] == share_id);
    share
        .and_then(|share| share["state"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("share {share_id} is not listed: {shares}"))
}

fn field(value: &Value, name: &str) -> anyhow::Result<String> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("output has no {name:?}: {value}"))
}
