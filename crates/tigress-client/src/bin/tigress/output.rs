//! The CLI's output: text for people, or one JSON document per command with `--json`.

use std::path::Path;

use serde_json::{Value, json};
use tigress_client::{DeviceAddress, DeviceInfo, Event, ReceivedShare, SentShare, ShareId};

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
        let identity_key = hex::encode(&info.identity_key);
        let value = json!({
            "address": info.address.to_string(),
            "relay": info.relay_url,
            "identity_key": identity_key,
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

    pub(crate) fn shared(&self, share_id: ShareId) {
        self.print(json!({ "share_id": share_id.to_string() }), || {
            share_id.to_string()
        });
    }

    pub(crate) fn events(&self, events: &[Event]) {
        if self.json {
            let events: Vec<Value> = events.iter().map(event_json).collect();
            println!("{}", json!({ "events": events }));
        } else {
            for event in events {
                println!("{event}");
            }
        }
    }

    pub(crate) fn accepted(&self, share_id: ShareId) {
        self.print(
            json!({ "share_id": share_id.to_string(), "accepted": true }),
            || format!("accepted share {share_id}: credential stored, sender notified"),
        );
    }

    pub(crate) fn exported(&self, share_id: ShareId, path: &Path, bytes: usize) {
        let value = json!({ "share_id": share_id.to_string(), "path": path.display().to_string(), "bytes": bytes });
        self.print(value, || {
            format!("wrote {bytes} bytes to {}", path.display())
        });
    }

    pub(crate) fn inbox(&self, shares: &[ReceivedShare]) {
        if self.json {
            let shares: Vec<Value> = shares
                .iter()
                .map(|share| {
                    json!({
                        "share_id": share.share_id.to_string(),
                        "from": share.peer,
                        "state": share.state.name(),
                        "title": share.display.title,
                        "issuer": share.display.issuer,
                        "credential_type": share.display.credential_type,
                        "file_name": share.display.file_name,
                        "size": share.display.size_bytes,
                        "received_at_ms": share.received_at_ms,
                    })
                })
                .collect();
            println!("{}", json!({ "shares": shares }));
            return;
        }
        println!(
            "{:<36}  {:<11}  {:>6}  {:<38}  TITLE",
            "SHARE ID", "STATE", "SIZE", "FROM"
        );
        for share in shares {
            println!(
                "{:<36}  {:<11}  {:>6}  {:<38}  {}",
                share.share_id,
                share.state.name(),
                share.display.size_bytes,
                share.peer,
                share.display.title
            );
        }
    }

    pub(crate) fn sent(&self, shares: &[SentShare]) {
        if self.json {
            let shares: Vec<Value> = shares
                .iter()
                .map(|share| {
                    json!({
                        "share_id": share.share_id.to_string(),
                        "to": share.peer,
                        "state": share.state.name(),
                        "title": share.display.title,
                        "size": share.display.size_bytes,
                        "created_at_ms": share.created_at_ms,
                    })
                })
                .collect();
            println!("{}", json!({ "shares": shares }));
            return;
        }
        println!(
            "{:<36}  {:<11}  {:>6}  {:<38}  TITLE",
            "SHARE ID", "STATE", "SIZE", "TO"
        );
        for share in shares {
            println!(
                "{:<36}  {:<11}  {:>6}  {:<38}  {}",
                share.share_id,
                share.state.name(),
                share.display.size_bytes,
                share.peer,
                share.display.title
            );
        }
    }

    /// Prints an error as one line on stderr.
    pub(crate) fn error(&self, error: &anyhow::Error) {
        let message = format!("{error:#}");
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

fn event_json(event: &Event) -> Value {
    let mut value = match event {
        Event::OfferReceived {
            share_id,
            from,
            display,
        } => json!({
            "share_id": share_id.to_string(),
            "from": from.to_string(),
            "title": display.title,
            "size": display.size_bytes,
        }),
        Event::ShareCompleted { share_id, peer } => {
            json!({ "share_id": share_id.to_string(), "peer": peer.to_string() })
        }
        Event::MessageDelivered { share_id, to } => {
            json!({ "share_id": share_id.to_string(), "to": to.to_string() })
        }
        Event::IdentityChanged { address } => json!({ "address": address }),
        Event::EnvelopeRejected { source, reason } => json!({ "source": source, "reason": reason }),
        _ => json!({ "description": event.to_string() }),
    };
    value["kind"] = Value::from(event.kind());
    value
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
