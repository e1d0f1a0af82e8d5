//! Durability: the relay is killed with SIGKILL while clients send, once and then twenty times
//! at random moments, and restarted on the same data folder each time. Every send that the
//! relay acknowledged must be queued exactly once afterwards. A relay killed right after it
//! confirmed acknowledgements must not deliver the acknowledged envelopes again.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{DeviceKeys, with_credential};
use tigress_proto::relay::v1::mailbox_client::MailboxClient;
use tigress_proto::relay::v1::registration_client::RegistrationClient;
use tigress_proto::relay::v1::{
    CreateChallengeRequest, EnvelopeType, FetchEnvelopesRequest, SendEnvelopeRequest,
};
use tonic::transport::Channel;

/// Clients that send at once.
const SENDERS: usize = 4;

/// A relay process on a free loopback port.
struct RelayProcess {
    child: Child,
    url: String,
}

impl RelayProcess {
    fn start(data_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tigress-relay"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--send-rate",
                "1000000/60000000",
                "--registration-rate",
                "1000/60000",
                "--data-dir",
            ])
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("the relay exited before listening")
                .unwrap();
            if let Some(address) = line
                .split_whitespace()
                .find_map(|word| word.strip_prefix("address="))
            {
                if line.contains("relay listening") {
                    break address.to_owned();
                }
            }
        };
        // Keep reading stderr so the relay never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            url: format!("http://{address}"),
        }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Registers a device and returns its address and credential.
async fn register(url: &str) -> (String, String) {
    let keys = DeviceKeys::generate(0);
    let mut registration = RegistrationClient::new(channel(url).await);
    let challenge = registration
        .create_challenge(CreateChallengeRequest {})
        .await
        .unwrap()
        .into_inner()
        .challenge;
    let response = registration
        .register_device(keys.registration_request(challenge))
        .await
        .unwrap()
        .into_inner();
    (response.address, response.credential)
}

/// Sends envelopes from one device until the relay goes away, recording each acknowledged id.
/// The ids carry the sender and the round, so that rounds never repeat one.
async fn send_until_killed(
    url: String,
    credential: String,
    destination: String,
    sender: u8,
    round: u8,
    acknowledged: Arc<Mutex<HashSet<Vec<u8>>>>,
) {
    let Ok(channel) = Channel::from_shared(url).unwrap().connect().await else {
        return;
    };
    let mut mailbox = MailboxClient::new(channel);
    for sequence in 0u32.. {
        let mut client_message_id = vec![sender; 16];
        client_message_id[1] = round;
        client_message_id[12..].copy_from_slice(&sequence.to_be_bytes());
        let request = SendEnvelopeRequest {
            destination: destination.clone(),
            client_message_id: client_message_id.clone(),
            r#type: EnvelopeType::SignalMessage.into(),
            content: vec![sender; 64],
        };
        match mailbox
            .send_envelope(with_credential(request, &credential))
            .await
        {
            Ok(_) => {
                acknowledged.lock().unwrap().insert(client_message_id);
            }
            Err(_) => return,
        }
    }
}

/// Waits for every sender to notice the kill and stop.
async fn wait_for_senders(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("a sender hung after the kill")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_sends_survive_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(data.path());
    let (receiver, receiver_credential) = register(&relay.url).await;
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        senders.push(register(&relay.url).await);
    }

    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(index, (_, credential))| {
            tokio::spawn(send_until_killed(
                relay.url.clone(),
                credential,
                receiver.clone(),
                index as u8 + 1,
                0,
                acknowledged.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    relay.kill();
    wait_for_senders(tasks).await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= SENDERS,
        "too few sends before the kill to test anything: {}",
        acknowledged.len()
    );

    let relay = RelayProcess::start(data.path());
    let queued = drain(&relay.url, &receiver, &receiver_credential).await;
    check_exactly_once(&acknowledged, &queued);
    relay.kill();
}

/// Kills of the relay in the repeated test.
const KILLS: u8 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_sends_survive_twenty_kills() {
    let data = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(data.path());
    let (receiver, receiver_credential) = register(&relay.url).await;
    let mut credentials = Vec::new();
    for _ in 0..SENDERS {
        credentials.push(register(&relay.url).await.1);
    }

    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    for round in 0..KILLS {
        let tasks: Vec<_> = credentials
            .iter()
            .enumerate()
            .map(|(index, credential)| {
                tokio::spawn(send_until_killed(
                    relay.url.clone(),
                    credential.clone(),
                    receiver.clone(),
                    index as u8 + 1,
                    round,
                    acknowledged.clone(),
                ))
            })
            .collect();
        let moment = Duration::from_millis(rand::random_range(20..300));
        eprintln!("round {round}: killing the relay after {moment:?}");
        tokio::time::sleep(moment).await;
        relay.kill();
        wait_for_senders(tasks).await;
        relay = RelayProcess::start(data.path());
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= usize::from(KILLS),
        "too few sends between the kills to test anything: {}",
        acknowledged.len()
    );
    let queued = drain(&relay.url, &receiver, &receiver_credential).await;
    check_exactly_once(&acknowledged, &queued);
    relay.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_survive_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(data.path());
    let (receiver, receiver_credential) = register(&relay.url).await;
    let (_, sender_credential) = register(&relay.url).await;
    let mut mailbox = MailboxClient::new(channel(&relay.url).await);
    for sequence in 0u8..50 {
        let request = SendEnvelopeRequest {
            destination: receiver.clone(),
            client_message_id: vec![sequence; 16],
            r#type: EnvelopeType::SignalMessage.into(),
            content: vec![sequence; 64],
        };
        mailbox
            .send_envelope(with_credential(request, &sender_credential))
            .await
            .unwrap();
    }

    let delivered = drain(&relay.url, &receiver, &receiver_credential).await;
    assert_eq!(delivered.len(), 50);
    relay.kill();

    let relay = RelayProcess::start(data.path());
    let again = drain(&relay.url, &receiver, &receiver_credential).await;
    assert!(
        again.is_empty(),
        "{} acknowledged envelopes came back after the kill",
        again.len()
    );
    relay.kill();
}

/// Fetches and acknowledges every envelope of the receiver's mailbox, and returns their client
/// message ids in the order they came.
async fn drain(url: &str, receiver: &str, receiver_credential: &str) -> Vec<Vec<u8>> {
    let receiver = receiver.to_owned();
    let mut mailbox = MailboxClient::new(channel(url).await);
    let mut queued: Vec<Vec<u8>> = Vec::new();
    let mut after_id = 0;
    loop {
        let request = FetchEnvelopesRequest {
            address: receiver.clone(),
            limit: 256,
        };
        let page = mailbox
            .fetch_envelopes(with_credential(request, receiver_credential))
            .await
            .unwrap()
            .into_inner();
        let fresh: Vec<_> = page
            .envelopes
            .into_iter()
            .filter(|envelope| envelope.id > after_id)
            .collect();
        if fresh.is_empty() {
            break;
        }
        after_id = fresh
            .iter()
            .map(|envelope| envelope.id)
            .max()
            .unwrap_or(after_id);
        let ids: Vec<u64> = fresh.iter().map(|envelope| envelope.id).collect();
        queued.extend(fresh.into_iter().map(|envelope| envelope.client_message_id));
        let acknowledge = tigress_proto::relay::v1::AcknowledgeEnvelopesRequest {
            address: receiver.clone(),
            envelope_ids: ids,
        };
        mailbox
            .acknowledge_envelopes(with_credential(acknowledge, receiver_credential))
            .await
            .unwrap();
    }

    queued
}

/// Checks that every acknowledged send is queued, and nothing is queued twice.
fn check_exactly_once(acknowledged: &HashSet<Vec<u8>>, queued: &[Vec<u8>]) {
    let unique: HashSet<Vec<u8>> = queued.iter().cloned().collect();
    assert_eq!(unique.len(), queued.len(), "an envelope was queued twice");
    let lost: Vec<_> = acknowledged.difference(&unique).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged sends were lost in the kill, of {}",
        lost.len(),
        acknowledged.len()
    );
}
