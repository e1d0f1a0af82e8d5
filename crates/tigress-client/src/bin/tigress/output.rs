//! The CLI's output: text for people, or one JSON document per command with `--json`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tigress_client::{
    DeviceAddress, DeviceInfo, Event, Invitation, Role, ShareId, ShareInfo, ShareState,
};

/// Prints command results on stdout and errors on stderr.
pub(crate) struct Output {
    json: bool,
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    pub(crate) fn registered(&self, address: &DeviceAddress, relay: &str) {
        self.print(
            json!({ "address": address.to_string(), "relay": relay }),
            || address.to_string(),
        );
    }

    pub(crate) fn info(&self, info: &DeviceInfo) {
        let value = json!({
            "address": info.address.to_string(),
            "relay": info.relay_url,
            "identity_key": hex::encode(&info.identity_key),
            "registration_id": info.registration_id,
            "safety_number_half": info.safety_number_half,
        });
        self.print(value, || {
            format!(
                "address:            {}\nrelay:              {}\nidentity key:       {}\nregistration id:    {}\nsafety number half: {}",
                info.address,
                info.relay_url,
                grouped_hex(&info.identity_key),
                info.registration_id,
                info.safety_number_half
            )
        });
    }

    pub(crate) fn owner_created(&self, name: &str) {
        self.print(json!({ "owner_ca": name }), || {
            format!("created owner certificate authority CN={name}")
        });
    }

    pub(crate) fn wrote(&self, path: &Path) {
        self.print(json!({ "path": path.display().to_string() }), || {
            format!("wrote {}", path.display())
        });
    }

    pub(crate) fn shared(&self, share_id: ShareId) {
        self.print(json!({ "share_id": share_id.to_string() }), || {
            share_id.to_string()
        });
    }

    pub(crate) fn invited(&self, invitation: &Invitation) {
        let value = json!({ "share_id": invitation.share_id.to_string(), "link": invitation.link });
        self.print(value, || invitation.link.clone());
    }

    pub(crate) fn claimed(&self, share_id: ShareId) {
        self.print(json!({ "share_id": share_id.to_string(), "claimed": true }), || {
            format!("claimed share {share_id}: `tigress sync` receives it once the sender's device has answered")
        });
    }

    pub(crate) fn events(&self, events: &[Event]) {
        if self.json {
            let events: Vec<Value> = events.iter().map(event_json).collect();
            println!("{}", json!({ "events": events }));
        } else if events.is_empty() {
            println!("no new events");
        } else {
            for event in events {
                println!("{event}");
            }
        }
    }

    /// Prints one event as it happens: a line of text, or one JSON object per line.
    pub(crate) fn event(&self, event: &Event) {
        if self.json {
            println!("{}", event_json(event));
        } else {
            println!("{event}");
        }
    }

    pub(crate) fn accepted(&self, share_id: ShareId, state: ShareState) {
        self.print(json!({ "share_id": share_id.to_string(), "state": state.name() }), || match state {
            ShareState::SigningRequested => {
                format!("accepted share {share_id}: key signing request sent, `tigress sync` receives the certificate")
            }
            _ => format!("accepted share {share_id}: credential stored, sender notified"),
        });
    }

    pub(crate) fn done(&self, verb: &str, share_id: ShareId) {
        self.print(
            json!({ "share_id": share_id.to_string(), "action": verb }),
            || format!("{verb} share {share_id}"),
        );
    }

    pub(crate) fn exported(&self, share_id: ShareId, paths: &[PathBuf]) {
        let names: Vec<String> = paths
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        self.print(
            json!({ "share_id": share_id.to_string(), "paths": names }),
            || format!("wrote {}", names.join(", ")),
        );
    }

    pub(crate) fn safety_number(&self, address: &DeviceAddress, number: &str) {
        self.print(
            json!({ "address": address.to_string(), "safety_number": number }),
            || format!("safety number with {address}:\n{number}"),
        );
    }

    pub(crate) fn shares(&self, shares: &[ShareInfo]) {
        if self.json {
            let shares: Vec<Value> = shares.iter().map(share_json).collect();
            println!("{}", json!({ "shares": shares }));
            return;
        }
        if shares.is_empty() {
            println!("no shares");
        }
        for share in shares {
            let peer = match (share.role, share.peer.is_empty()) {
                (_, true) => "link not claimed yet".to_owned(),
                (Role::Sender, false) => format!("to {}", share.peer),
                (Role::Receiver, false) => format!("from {}", share.peer),
            };
            let mode = share.mode.map_or("", |mode| mode.name());
            println!(
                "{}  {}  {mode}  {} bytes  {peer}",
                share.share_id,
                share.state.name(),
                share.display.size_bytes
            );
            let mut details = vec![format!("title: {}", share.display.title)];
            if !share.display.credential_type.is_empty() {
                details.push(format!("type: {}", share.display.credential_type));
            }
            if !share.display.issuer.is_empty() {
                details.push(format!("issuer: {}", share.display.issuer));
            }
            if let Some(expiry) = share.display.credential_expires_at_ms {
                details.push(format!("credential expires: {}", rfc3339(expiry)));
            }
            if let Some(expiry) = share.expires_at_ms {
                details.push(format!("offer expires: {}", rfc3339(expiry)));
            }
            if let Some(failure) = &share.failure {
                details.push(format!("failure: {failure}"));
            }
            println!("    {}", details.join("; "));
        }
    }

    /// Prints an error as one line on stderr.
    pub(crate) fn error(&self, error: &anyhow::Error) {
        let message = tigress_core::error_chain(error.as_ref());
        if self.json {
            eprintln!("{}", json!({ "error": message }));
        } else {
            eprintln!("error: {message}");
        }
    }

    fn print(&self, value: Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}

fn share_json(share: &ShareInfo) -> Value {
    json!({
        "share_id": share.share_id.to_string(),
        "role": match share.role { Role::Sender => "sender", Role::Receiver => "receiver" },
        "mode": share.mode.map(|mode| mode.name()),
        "channel": match share.channel { tigress_client::Channel::Contact => "contact", tigress_client::Channel::Link => "link" },
        "peer": share.peer,
        "state": share.state.name(),
        "title": share.display.title,
        "issuer": share.display.issuer,
        "credential_type": share.display.credential_type,
        "credential_expires_at_ms": share.display.credential_expires_at_ms,
        "file_name": share.display.file_name,
        "size": share.display.size_bytes,
        "expires_at_ms": share.expires_at_ms,
        "created_at_ms": share.created_at_ms,
        "failure": share.failure,
    })
}

fn event_json(event: &Event) -> Value {
    let mut value = match event {
        Event::OfferReceived {
            share_id,
            from,
            mode,
            display,
            expires_at_ms,
        } => json!({
            "share_id": share_id.to_string(),
            "from": from,
            "mode": mode.name(),
            "title": display.title,
            "issuer": display.issuer,
            "credential_type": display.credential_type,
            "size": display.size_bytes,
            "expires_at_ms": expires_at_ms,
        }),
        Event::SigningRequestReceived { share_id, peer }
        | Event::ImportIssued { share_id, peer }
        | Event::CredentialProvisioned { share_id, peer }
        | Event::ShareCompleted { share_id, peer }
        | Event::ShareDeclined { share_id, peer }
        | Event::ShareCancelled { share_id, peer } => {
            json!({ "share_id": share_id.to_string(), "peer": peer })
        }
        Event::ShareExpired { share_id } => json!({ "share_id": share_id.to_string() }),
        Event::ShareFailed { share_id, reason } => {
            json!({ "share_id": share_id.to_string(), "reason": reason })
        }
        Event::LinkClaimed { share_id, by } => {
            json!({ "share_id": share_id.to_string(), "by": by })
        }
        Event::ClaimRejected {
            share_id,
            by,
            reason,
        } => json!({ "share_id": share_id.to_string(), "by": by, "reason": reason }),
        Event::MessageDelivered { share_id, to } => {
            json!({ "share_id": share_id.to_string(), "to": to })
        }
        Event::IdentityChanged { address } => json!({ "address": address }),
        Event::EnvelopeRejected { source, reason } => json!({ "source": source, "reason": reason }),
        _ => json!({ "description": event.to_string() }),
    };
    value["kind"] = Value::from(event.kind());
    value
}

/// Formats milliseconds since the Unix epoch as an RFC 3339 UTC time.
fn rfc3339(millis: u64) -> String {
    tigress_client::format_time(millis)
}

/// Hex in groups of four digits, as safety-number screens show keys.
fn grouped_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
