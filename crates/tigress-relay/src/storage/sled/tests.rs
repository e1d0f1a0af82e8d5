//! Tests of the sled backend: quotas and usage, sweeping, and the migration from format 1.

use tigress_proto::relay::v1::Envelope;
use uuid::Uuid;

use super::*;
use crate::error::RelayError;

const ROOMY: MailboxQuota = MailboxQuota {
    max_envelopes: 100,
    max_bytes: 1 << 20,
};

fn envelope(client_message_id: u8, content: &[u8], server_timestamp_ms: u64) -> Envelope {
    Envelope {
        id: 0,
        source: String::new(),
        client_message_id: vec![client_message_id; 16],
        r#type: 2,
        content: content.to_vec(),
        server_timestamp_ms,
    }
}

fn open() -> (tempfile::TempDir, SledStorage) {
    let folder = tempfile::tempdir().unwrap();
    let storage = SledStorage::open(folder.path()).unwrap();
    (folder, storage)
}

#[test]
fn usage_follows_the_queue() {
    let (_folder, storage) = open();
    let (owner, source) = (Uuid::new_v4(), Uuid::new_v4());
    let first = storage
        .enqueue_now(owner, source, envelope(1, b"aaaa", 0), ROOMY, 0)
        .unwrap();
    storage
        .enqueue_now(owner, source, envelope(2, b"bbbbbbbb", 0), ROOMY, 0)
        .unwrap();
    storage
        .enqueue_now(owner, source, envelope(2, b"bbbbbbbb", 0), ROOMY, 0)
        .unwrap();
    let usage = storage.usage_now(owner).unwrap();
    assert_eq!(usage.envelopes, 2, "a duplicate was counted");

    storage
        .acknowledge_now(owner, &[first.envelope_id, 999])
        .unwrap();
    assert_eq!(storage.usage_now(owner).unwrap().envelopes, 1);
    assert!(storage.retract_now(source, owner, &[2; 16]).unwrap());
    assert_eq!(storage.usage_now(owner).unwrap(), MailboxUsage::default());
    assert_eq!(storage.total_usage_now().unwrap(), MailboxUsage::default());
}

#[test]
fn batch_outcomes_are_per_envelope() {
    let (_folder, storage) = open();
    let (owner, source) = (Uuid::new_v4(), Uuid::new_v4());
    let quota = MailboxQuota {
        max_envelopes: 2,
        max_bytes: 1 << 20,
    };
    let new = |id: u8| NewEnvelope {
        destination: owner,
        source,
        envelope: envelope(id, &[id; 8], 0),
        quota,
        now_ms: 0,
    };
    let trees = QueueTrees {
        db: storage.db.clone(),
        queue: storage.queue.clone(),
        sent: storage.sent.clone(),
        usage: storage.usage.clone(),
        durable: storage.durable.clone(),
    };

    let outcomes = trees.enqueue_all(vec![new(1), new(1), new(2), new(3)]);
    assert!(
        storage
            .fetch_now(owner, 0, 10, 1 << 20)
            .unwrap()
            .envelopes
            .is_empty(),
        "envelopes showed before they were flushed"
    );
    let newest = outcomes
        .iter()
        .flatten()
        .map(|enqueued| enqueued.envelope_id)
        .max()
        .unwrap();
    storage
        .durable
        .fetch_max(newest, std::sync::atomic::Ordering::SeqCst);

    assert_eq!(outcomes.len(), 4);
    let first = outcomes[0].as_ref().unwrap();
    assert!(!first.duplicate);
    let repeat = outcomes[1].as_ref().unwrap();
    assert!(
        repeat.duplicate,
        "a retry within the batch was queued twice"
    );
    assert_eq!(repeat.envelope_id, first.envelope_id);
    assert!(!outcomes[2].as_ref().unwrap().duplicate);
    assert!(
        matches!(
            &outcomes[3],
            Err(RelayError::LimitExceeded {
                name: "max_queued_envelopes",
                ..
            })
        ),
        "{:?}",
        outcomes[3]
    );
    let fetched = storage.fetch_now(owner, 0, 10, 1 << 20).unwrap().envelopes;
    let contents: Vec<_> = fetched.iter().map(|envelope| envelope.content[0]).collect();
    assert_eq!(
        contents,
        [1, 2],
        "the queue does not hold exactly the accepted sends"
    );
    assert_eq!(storage.usage_now(owner).unwrap().envelopes, 2);
}

#[test]
fn full_mailbox_rejects_and_keeps_what_it_has() {
    let (_folder, storage) = open();
    let (owner, source) = (Uuid::new_v4(), Uuid::new_v4());
    let quota = MailboxQuota {
        max_envelopes: 2,
        max_bytes: 1 << 20,
    };
    storage
        .enqueue_now(owner, source, envelope(1, b"a", 0), quota, 0)
        .unwrap();
    storage
        .enqueue_now(owner, source, envelope(2, b"b", 0), quota, 0)
        .unwrap();
    let error = storage
        .enqueue_now(owner, source, envelope(3, b"c", 0), quota, 0)
        .unwrap_err();
    assert!(
        matches!(
            &error,
            RelayError::LimitExceeded {
                name: "max_queued_envelopes",
                limit: 2,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(storage.usage_now(owner).unwrap().envelopes, 2);
    assert_eq!(
        storage
            .fetch_now(owner, 0, 10, 1 << 20)
            .unwrap()
            .envelopes
            .len(),
        2
    );

    let small = MailboxQuota {
        max_envelopes: 100,
        max_bytes: 10,
    };
    let other = Uuid::new_v4();
    let error = storage
        .enqueue_now(other, source, envelope(4, &[0; 64], 0), small, 0)
        .unwrap_err();
    assert!(
        matches!(
            &error,
            RelayError::LimitExceeded {
                name: "max_queued_bytes",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn fetch_after_skips_older_ids() {
    let (_folder, storage) = open();
    let (owner, source) = (Uuid::new_v4(), Uuid::new_v4());
    let first = storage
        .enqueue_now(owner, source, envelope(1, b"a", 0), ROOMY, 0)
        .unwrap();
    let second = storage
        .enqueue_now(owner, source, envelope(2, b"b", 0), ROOMY, 0)
        .unwrap();
    let fetched = storage
        .fetch_now(owner, first.envelope_id, 10, 1 << 20)
        .unwrap();
    let ids: Vec<u64> = fetched
        .envelopes
        .iter()
        .map(|envelope| envelope.id)
        .collect();
    assert_eq!(ids, vec![second.envelope_id]);
    assert_eq!(
        storage
            .still_queued_now(owner, &[first.envelope_id, 12345])
            .unwrap(),
        vec![first.envelope_id]
    );
}

#[test]
fn sweep_deletes_only_what_expired() {
    let (_folder, storage) = open();
    let (owner, source) = (Uuid::new_v4(), Uuid::new_v4());
    storage
        .enqueue_now(owner, source, envelope(1, b"old", 1_000), ROOMY, 1_000)
        .unwrap();
    storage
        .enqueue_now(owner, source, envelope(2, b"new", 9_000), ROOMY, 9_000)
        .unwrap();
    storage.insert_challenge_now([1; 32], 5_000).unwrap();
    storage.insert_challenge_now([2; 32], 50_000).unwrap();

    let report = storage.sweep_now(10_000, 5_000).unwrap();
    assert_eq!(
        report,
        SweepReport {
            envelopes: 1,
            send_records: 1,
            challenges: 1
        }
    );
    let left = storage.fetch_now(owner, 0, 10, 1 << 20).unwrap().envelopes;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].content, b"new");
    assert_eq!(storage.usage_now(owner).unwrap().envelopes, 1);
    assert!(storage.take_challenge_now(&[2; 32], 10_000).unwrap());
}

#[test]
fn format_1_folder_is_migrated() {
    let folder = tempfile::tempdir().unwrap();
    let (owner, source) = (Uuid::new_v4(), Uuid::new_v4());
    let queued = envelope(1, b"from format 1", 0);
    {
        // The format 1 layout: no `usage` tree, send records of the envelope id alone.
        let db = sled::Config::new().path(folder.path()).open().unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(b"format-version", &1u32.to_be_bytes())
            .unwrap();
        let encoded = prost::Message::encode_to_vec(&Envelope {
            id: 7,
            ..queued.clone()
        });
        db.open_tree("queue")
            .unwrap()
            .insert(keys::queue_key(owner, 7), encoded.clone())
            .unwrap();
        db.open_tree("sent")
            .unwrap()
            .insert(keys::sent_key(source, owner, &[1; 16]), &7u64.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }

    let storage = SledStorage::open(folder.path()).unwrap();
    let usage = storage.usage_now(owner).unwrap();
    assert_eq!(usage.envelopes, 1);
    assert!(usage.bytes > queued.content.len() as u64);
    let retry = storage
        .enqueue_now(owner, source, queued, ROOMY, 0)
        .unwrap();
    assert_eq!(
        retry,
        Enqueued {
            envelope_id: 7,
            duplicate: true
        },
        "the migrated send record was lost"
    );
    drop(storage);

    let reopened = SledStorage::open(folder.path()).unwrap();
    assert_eq!(
        reopened.usage_now(owner).unwrap().envelopes,
        1,
        "the migration ran twice"
    );
}

#[test]
fn unknown_format_is_refused_with_both_versions() {
    let folder = tempfile::tempdir().unwrap();
    {
        let db = sled::Config::new().path(folder.path()).open().unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(b"format-version", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let error = SledStorage::open(folder.path()).unwrap_err().to_string();
    assert!(error.contains("format version 99"), "{error}");
    assert!(
        error.contains(&format!("reads version {FORMAT_VERSION}")),
        "{error}"
    );
    assert!(
        error.contains(&folder.path().display().to_string()),
        "{error}"
    );
}

#[test]
fn truncated_folder_is_refused_as_damaged() {
    let folder = tempfile::tempdir().unwrap();
    let owner = Uuid::new_v4();
    {
        let storage = SledStorage::open(folder.path()).unwrap();
        storage
            .enqueue_now(owner, Uuid::new_v4(), envelope(1, b"kept", 0), ROOMY, 0)
            .unwrap();
    }
    let database = folder.path().join("db");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&database)
        .unwrap()
        .set_len(100)
        .unwrap();

    let error = SledStorage::open(folder.path()).unwrap_err();
    assert!(matches!(error, OpenError::Damaged { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&folder.path().display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("restore the folder from a backup"),
        "{message}"
    );

    let again = SledStorage::open(folder.path()).unwrap_err();
    assert!(
        matches!(again, OpenError::Damaged { .. }),
        "a second open treated the damaged folder as new: {again}"
    );
}

#[test]
fn open_folder_is_reported_in_use() {
    let (folder, _storage) = open();

    let second = SledStorage::open(folder.path());

    assert!(
        matches!(second, Err(OpenError::Locked { .. })),
        "a second open returned {second:?}"
    );
}
