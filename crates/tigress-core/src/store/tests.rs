//! Tests of the store: transactions, persistence across reopen, damaged records and locking.

use super::*;

fn open_temporary() -> (tempfile::TempDir, Store) {
    let folder = tempfile::tempdir().unwrap();
    let store = Store::open(folder.path()).unwrap();
    (folder, store)
}

#[test]
fn committed_writes_survive_reopen() {
    let folder = tempfile::tempdir().unwrap();
    {
        let store = Store::open(folder.path()).unwrap();
        let txn = store.transaction();
        txn.insert(b"app/a".to_vec(), b"one".to_vec());
        txn.commit(Durability::Flushed).unwrap();
    }
    let store = Store::open(folder.path()).unwrap();
    assert_eq!(store.get(b"app/a").unwrap(), Some(b"one".to_vec()));
}

#[test]
fn dropped_transaction_writes_nothing() {
    let (_folder, store) = open_temporary();
    {
        let txn = store.transaction();
        txn.insert(b"app/a".to_vec(), b"one".to_vec());
    }
    assert_eq!(store.get(b"app/a").unwrap(), None);
}

#[test]
fn transaction_reads_its_own_writes() {
    let (_folder, store) = open_temporary();
    let txn = store.transaction();
    txn.insert(b"app/a".to_vec(), b"one".to_vec());
    assert_eq!(txn.get(b"app/a").unwrap(), Some(b"one".to_vec()));
    assert_eq!(
        store.get(b"app/a").unwrap(),
        None,
        "uncommitted write visible outside"
    );
    txn.remove(b"app/a".to_vec());
    assert_eq!(txn.get(b"app/a").unwrap(), None);
}

#[test]
fn scan_merges_pending_writes() {
    let (_folder, store) = open_temporary();
    let txn = store.transaction();
    txn.insert(b"app/1".to_vec(), b"a".to_vec());
    txn.insert(b"app/2".to_vec(), b"b".to_vec());
    txn.insert(b"other/1".to_vec(), b"x".to_vec());
    txn.commit(Durability::Buffered).unwrap();

    let txn = store.transaction();
    txn.remove(b"app/1".to_vec());
    txn.insert(b"app/3".to_vec(), b"c".to_vec());
    let keys: Vec<Vec<u8>> = txn
        .scan_prefix(b"app/")
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(keys, vec![b"app/2".to_vec(), b"app/3".to_vec()]);
}

#[test]
fn identity_survives_reopen() {
    let folder = tempfile::tempdir().unwrap();
    let identity = {
        let store = Store::open(folder.path()).unwrap();
        let txn = store.transaction();
        let identity = txn.create_identity(&mut rand::rng()).unwrap();
        txn.commit(Durability::Flushed).unwrap();
        identity
    };
    let store = Store::open(folder.path()).unwrap();
    let txn = store.transaction();
    assert_eq!(
        txn.local_identity().unwrap().serialize(),
        identity.serialize()
    );
    let registration_id = txn.local_registration_id().unwrap();
    assert!((1..=crate::keys::MAX_REGISTRATION_ID).contains(&registration_id));
}

#[test]
fn second_identity_is_rejected() {
    let (_folder, store) = open_temporary();
    let txn = store.transaction();
    txn.create_identity(&mut rand::rng()).unwrap();
    assert!(matches!(
        txn.create_identity(&mut rand::rng()),
        Err(Error::IdentityExists)
    ));
}

#[test]
fn damaged_record_names_its_key() {
    let (_folder, store) = open_temporary();
    let txn = store.transaction();
    txn.insert(namespace::LOCAL_IDENTITY.to_vec(), vec![1, 2, 3]);
    let error = txn.local_identity().err().unwrap();
    assert!(
        matches!(&error, Error::CorruptRecord { key, .. } if key == "local/identity"),
        "{error}"
    );
}

#[test]
fn second_open_reports_store_in_use() {
    let (folder, _store) = open_temporary();
    let error = Store::open(folder.path()).unwrap_err();
    assert!(matches!(error, Error::StoreLocked { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains(&folder.path().display().to_string())
    );
}

#[test]
fn store_from_a_newer_version_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    {
        let db = sled::Config::new().path(folder.path()).open().unwrap();
        let tree = db.open_tree(TREE_NAME).unwrap();
        tree.insert(
            namespace::FORMAT_VERSION,
            &(FORMAT_VERSION + 1).to_be_bytes(),
        )
        .unwrap();
        db.flush().unwrap();
    }
    let error = Store::open(folder.path()).unwrap_err().to_string();
    assert!(
        error.contains(&folder.path().display().to_string()),
        "{error}"
    );
    assert!(
        error.contains(&format!("format version {}", FORMAT_VERSION + 1)),
        "{error}"
    );
    assert!(
        error.contains(&format!("reads version {FORMAT_VERSION}")),
        "{error}"
    );
}

#[test]
fn new_store_records_its_format_version() {
    let (_folder, store) = open_temporary();
    assert_eq!(
        store.get(namespace::FORMAT_VERSION).unwrap(),
        Some(FORMAT_VERSION.to_be_bytes().to_vec())
    );
}

#[test]
fn buffered_commit_is_visible_at_once() {
    let (_folder, store) = open_temporary();
    let txn = store.transaction();
    txn.insert(b"app/a".to_vec(), b"one".to_vec());
    txn.commit(Durability::Buffered).unwrap();

    assert_eq!(store.get(b"app/a").unwrap(), Some(b"one".to_vec()));
    assert_eq!(store.scan_prefix(b"app/").unwrap().len(), 1);
    assert_eq!(
        store.tree.get(b"app/a").unwrap(),
        None,
        "a buffered commit reached sled before a flush"
    );
}

#[test]
fn buffered_removal_hides_stored_record() {
    let (_folder, store) = open_temporary();
    let txn = store.transaction();
    txn.insert(b"app/a".to_vec(), b"one".to_vec());
    txn.commit(Durability::Flushed).unwrap();

    let txn = store.transaction();
    txn.remove(b"app/a".to_vec());
    txn.commit(Durability::Buffered).unwrap();

    assert_eq!(store.get(b"app/a").unwrap(), None);
    assert!(store.scan_prefix(b"app/").unwrap().is_empty());
    assert!(store.tree.get(b"app/a").unwrap().is_some());
}

#[test]
fn flushed_commit_writes_earlier_buffered_ones() {
    let (_folder, store) = open_temporary();
    let txn = store.transaction();
    txn.insert(b"app/a".to_vec(), b"one".to_vec());
    txn.commit(Durability::Buffered).unwrap();

    let txn = store.transaction();
    txn.insert(b"app/b".to_vec(), b"two".to_vec());
    txn.commit(Durability::Flushed).unwrap();

    assert_eq!(
        store.tree.get(b"app/a").unwrap().as_deref(),
        Some(&b"one"[..])
    );
    assert_eq!(
        store.tree.get(b"app/b").unwrap().as_deref(),
        Some(&b"two"[..])
    );
}

#[test]
fn buffered_commits_survive_clean_close() {
    let folder = tempfile::tempdir().unwrap();
    {
        let store = Store::open(folder.path()).unwrap();
        for value in [&b"one"[..], b"two", b"three"] {
            let txn = store.transaction();
            txn.insert(b"app/a".to_vec(), value.to_vec());
            txn.commit(Durability::Buffered).unwrap();
        }
    }
    let store = Store::open(folder.path()).unwrap();
    assert_eq!(store.get(b"app/a").unwrap(), Some(b"three".to_vec()));
}

#[test]
fn large_buffer_is_written_at_next_commit() {
    let (_folder, store) = open_temporary();
    let value = vec![7u8; 64 * 1024];
    let count = MAX_BUFFERED_BYTES / value.len() + 1;
    for index in 0..count {
        let txn = store.transaction();
        txn.insert(format!("app/{index:04}").into_bytes(), value.clone());
        txn.commit(Durability::Buffered).unwrap();
    }
    assert!(store.tree.get(b"app/0000").unwrap().is_some());
}

#[test]
fn decoded_session_follows_removal() {
    let (_folder, store) = open_temporary();
    let address: crate::DeviceAddress = "11111111-1111-4111-8111-111111111111.1".parse().unwrap();
    let address = address.to_protocol_address();
    let record = libsignal_protocol::SessionRecord::new_fresh();
    let txn = store.transaction();
    txn.save_session(&address, &record).unwrap();
    assert!(txn.session(&address).unwrap().is_some());
    txn.commit(Durability::Buffered).unwrap();

    let txn = store.transaction();
    assert!(txn.session(&address).unwrap().is_some());
    txn.remove_session(&address);
    assert!(txn.session(&address).unwrap().is_none());
    txn.commit(Durability::Buffered).unwrap();

    let txn = store.transaction();
    assert!(txn.session(&address).unwrap().is_none());
}

#[test]
fn dropped_transaction_leaves_decoded_session() {
    let (_folder, store) = open_temporary();
    let address: crate::DeviceAddress = "11111111-1111-4111-8111-111111111111.1".parse().unwrap();
    let address = address.to_protocol_address();
    {
        let txn = store.transaction();
        txn.save_session(&address, &libsignal_protocol::SessionRecord::new_fresh())
            .unwrap();
    }
    assert!(store.transaction().session(&address).unwrap().is_none());
}

#[test]
fn truncated_store_is_refused_as_damaged() {
    let folder = tempfile::tempdir().unwrap();
    {
        let store = Store::open(folder.path()).unwrap();
        let txn = store.transaction();
        txn.create_identity(&mut rand::rng()).unwrap();
        txn.commit(Durability::Flushed).unwrap();
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(folder.path().join("db"))
        .unwrap()
        .set_len(100)
        .unwrap();

    let error = Store::open(folder.path()).unwrap_err();
    assert!(matches!(error, Error::StoreDamaged { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains(&folder.path().display().to_string()),
        "{error}"
    );

    let again = Store::open(folder.path()).unwrap_err();
    assert!(
        matches!(again, Error::StoreDamaged { .. }),
        "a second open treated the damaged store as new: {again}"
    );
}
