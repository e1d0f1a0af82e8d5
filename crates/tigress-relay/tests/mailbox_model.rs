//! The relay's mailboxes against a model: random sequences of sends (with retries of the same
//! client message id), fetches, acknowledgements, restarts and expiry from three devices,
//! checked after every step against a plain list per mailbox.
//!
//! Every case runs a real relay on a loopback port over a sled folder, so the cases are few
//! and short. Each restart reopens the same folder. Expiry runs the storage's sweep on that
//! folder while the relay is stopped, with a time to live that ends between two sends of the
//! case, so the model predicts exactly which envelopes and send records outlived it.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use support::{TestDevice, TestRelay};
use tigress_proto::relay::v1::{
    AcknowledgeEnvelopesRequest, EnvelopeType, FetchEnvelopesRequest, SendEnvelopeRequest,
};
use tigress_relay::storage::{SledStorage, Storage};

/// Devices in a case.
const DEVICES: usize = 3;

/// The time to live of the sweeps, in milliseconds; any value works, as each sweep sets its
/// own time.
const TTL_MS: u64 = 60_000;

/// One step of a case.
#[derive(Clone, Debug)]
enum Step {
    /// `from` sends to `to` with client message id number `message`; a repeated number from
    /// the same sender to the same mailbox is a retry.
    Send { from: usize, to: usize, message: u8 },
    /// `device` fetches its mailbox and compares it with the model.
    Fetch { device: usize },
    /// `device` acknowledges the oldest `count` envelopes of its mailbox.
    Acknowledge { device: usize, count: usize },
    /// The relay stops and starts again on the same folder.
    Restart,
    /// The relay stops, everything stored before the `send`-th send of the case (modulo the
    /// sends so far) expires, and the relay starts again.
    Expire { send: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..DEVICES, 0..DEVICES, 0u8..6).prop_map(|(from, to, message)| Step::Send { from, to, message }),
        2 => (0..DEVICES).prop_map(|device| Step::Fetch { device }),
        2 => (0..DEVICES, 0usize..4).prop_map(|(device, count)| Step::Acknowledge { device, count }),
        1 => Just(Step::Restart),
        1 => (0usize..40).prop_map(|send| Step::Expire { send }),
    ]
}

/// What the relay should hold: per mailbox, the queued envelopes oldest first, and the id of
/// every send stored and not yet expired. Each envelope and send record also carries the
/// number of the send that stored it.
#[derive(Default)]
struct Model {
    queues: Vec<Vec<Queued>>,
    stored: HashMap<(usize, usize, u8), (u64, usize)>,
    /// For each send of the case, a time in milliseconds after everything stored before it
    /// and before anything stored by it.
    marks: Vec<u64>,
}

#[derive(Clone)]
struct Queued {
    id: u64,
    content: Vec<u8>,
    send: usize,
}

impl Model {
    fn queue(&self, device: usize) -> Vec<(u64, Vec<u8>)> {
        self.queues[device]
            .iter()
            .map(|queued| (queued.id, queued.content.clone()))
            .collect()
    }

    /// Forgets what was stored before send number `send`, and returns how many envelopes and
    /// send records that was.
    fn expire_before(&mut self, send: usize) -> (u64, u64) {
        let mut envelopes = 0;
        for queue in &mut self.queues {
            let before = queue.len();
            queue.retain(|queued| queued.send >= send);
            envelopes += (before - queue.len()) as u64;
        }
        let before = self.stored.len();
        self.stored.retain(|_, (_, stored_by)| *stored_by >= send);
        (envelopes, (before - self.stored.len()) as u64)
    }
}

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since_epoch.as_millis()).unwrap()
}

/// Returns a time in milliseconds strictly after every timestamp stored so far and strictly
/// before every timestamp stored after this returns.
async fn mark() -> u64 {
    tokio::time::sleep(Duration::from_millis(2)).await;
    let mark = now_ms();
    tokio::time::sleep(Duration::from_millis(2)).await;
    mark
}

/// Returns the content of a send: sender, mailbox and message number, so a misdelivered or
/// mixed-up envelope shows in the comparison.
fn content(from: usize, to: usize, message: u8) -> Vec<u8> {
    format!("from {from} to {to} message {message}").into_bytes()
}

/// Fetches `device`'s whole mailbox as pairs of envelope id and content.
async fn fetch(relay: &TestRelay, device: &TestDevice) -> Vec<(u64, Vec<u8>)> {
    let request = device.request(FetchEnvelopesRequest {
        address: device.address.clone(),
        limit: 0,
    });
    let mut mailbox = relay.mailbox().await;
    let envelopes = mailbox
        .fetch_envelopes(request)
        .await
        .unwrap()
        .into_inner()
        .envelopes;
    envelopes
        .into_iter()
        .map(|envelope| (envelope.id, envelope.content))
        .collect()
}

async fn run(steps: Vec<Step>, folder: &Path) {
    let mut relay = TestRelay::start(folder).await;
    let mut devices = Vec::new();
    for _ in 0..DEVICES {
        devices.push(TestDevice::register(&relay, 0).await);
    }
    let mut model = Model {
        queues: vec![Vec::new(); DEVICES],
        ..Model::default()
    };

    for (index, step) in steps.into_iter().enumerate() {
        let context = format!("step {index}: {step:?}");
        match step {
            Step::Send { from, to, message } => {
                model.marks.push(mark().await);
                let send = model.marks.len() - 1;
                let request = SendEnvelopeRequest {
                    destination: devices[to].address.clone(),
                    client_message_id: vec![message; 16],
                    r#type: EnvelopeType::SignalMessage.into(),
                    content: content(from, to, message),
                };
                let response = relay
                    .mailbox()
                    .await
                    .send_envelope(devices[from].request(request))
                    .await
                    .unwrap()
                    .into_inner();
                match model.stored.get(&(from, to, message)) {
                    Some(&(first, _)) => {
                        assert!(response.duplicate, "{context}: a retry was stored again");
                        assert_eq!(
                            response.envelope_id, first,
                            "{context}: a retry got another id"
                        );
                    }
                    None => {
                        assert!(
                            !response.duplicate,
                            "{context}: a new send was taken for a retry"
                        );
                        model
                            .stored
                            .insert((from, to, message), (response.envelope_id, send));
                        model.queues[to].push(Queued {
                            id: response.envelope_id,
                            content: content(from, to, message),
                            send,
                        });
                    }
                }
            }
            Step::Fetch { device } => {
                assert_eq!(
                    fetch(&relay, &devices[device]).await,
                    model.queue(device),
                    "{context}: the mailbox differs from the model"
                );
            }
            Step::Acknowledge { device, count } => {
                let count = count.min(model.queues[device].len());
                let ids: Vec<u64> = model.queues[device]
                    .drain(..count)
                    .map(|queued| queued.id)
                    .collect();
                let removed = relay
                    .mailbox()
                    .await
                    .acknowledge_envelopes(devices[device].request(AcknowledgeEnvelopesRequest {
                        address: devices[device].address.clone(),
                        envelope_ids: ids.clone(),
                    }))
                    .await
                    .unwrap()
                    .into_inner()
                    .removed;
                assert_eq!(
                    removed as usize,
                    ids.len(),
                    "{context}: acknowledged envelopes were not all removed"
                );
            }
            Step::Restart => {
                relay.stop().await;
                relay = TestRelay::start(folder).await;
            }
            Step::Expire { send } => {
                relay.stop().await;
                if !model.marks.is_empty() {
                    let send = send % model.marks.len();
                    let cutoff_ms = model.marks[send];
                    let storage = SledStorage::open(folder).unwrap();
                    let report = storage.sweep(cutoff_ms + TTL_MS, TTL_MS).await.unwrap();
                    storage.flush().await.unwrap();
                    drop(storage);
                    let (envelopes, send_records) = model.expire_before(send);
                    assert_eq!(
                        (report.envelopes, report.send_records),
                        (envelopes, send_records),
                        "{context}: the sweep removed other envelopes or send records than the model"
                    );
                }
                relay = TestRelay::start(folder).await;
            }
        }
    }

    for (index, device) in devices.iter().enumerate() {
        assert_eq!(
            fetch(&relay, device).await,
            model.queue(index),
            "device {index} at the end"
        );
    }
    relay.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn mailboxes_follow_the_model(steps in prop::collection::vec(step(), 1..40)) {
        let folder = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(run(steps, folder.path()));
    }
}
