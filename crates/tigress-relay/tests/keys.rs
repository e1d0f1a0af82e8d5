//! Prekeys over loopback: bundle fetches that consume one-time keys exactly once, uploads and
//! their checks.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;

use support::{DeviceKeys, TestDevice, TestRelay};
use tigress_proto::relay::v1::{
    GetPreKeyBundleRequest, GetPreKeyCountRequest, UploadPreKeysRequest,
};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fetches_share_no_prekey() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let owner = TestDevice::register(&relay, 20).await;
    let fetcher = TestDevice::register(&relay, 0).await;

    let mut tasks = Vec::new();
    for _ in 0..30 {
        let mut keys = relay.keys().await;
        let request = fetcher.request(GetPreKeyBundleRequest {
            address: owner.address.clone(),
        });
        tasks.push(tokio::spawn(async move {
            keys.get_pre_key_bundle(request).await.unwrap().into_inner()
        }));
    }
    let mut ec_ids = HashSet::new();
    let mut kyber_ids = HashSet::new();
    let mut last_resort_served = 0;
    for task in tasks {
        let bundle = task.await.unwrap();
        assert_eq!(bundle.identity_key, owner.keys.identity_key);
        if let Some(prekey) = bundle.one_time_prekey {
            assert!(
                ec_ids.insert(prekey.key_id),
                "EC prekey {} served twice",
                prekey.key_id
            );
        }
        let kyber = bundle.kyber_prekey.unwrap();
        if bundle.kyber_prekey_is_last_resort {
            assert_eq!(kyber.key_id, owner.keys.kyber_last_resort_prekey.key_id);
            last_resort_served += 1;
        } else {
            assert!(
                kyber_ids.insert(kyber.key_id),
                "Kyber prekey {} served twice",
                kyber.key_id
            );
        }
    }
    assert_eq!(ec_ids.len(), 20);
    assert_eq!(kyber_ids.len(), 20);
    assert_eq!(last_resort_served, 10);

    let counts = relay
        .keys()
        .await
        .get_pre_key_count(owner.request(GetPreKeyCountRequest {
            address: owner.address.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (counts.one_time_prekeys, counts.one_time_kyber_prekeys),
        (0, 0)
    );
    relay.stop().await;
}

#[tokio::test]
async fn upload_replaces_one_time_keys_of_each_kind() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let device = TestDevice::register(&relay, 3).await;
    let fresh = DeviceKeys::generate(7);

    let mut keys = relay.keys().await;
    let upload = UploadPreKeysRequest {
        address: device.address.clone(),
        one_time_prekeys: fresh.one_time_prekeys.clone(),
        ..UploadPreKeysRequest::default()
    };
    let counts = keys
        .upload_pre_keys(device.request(upload))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (counts.one_time_prekeys, counts.one_time_kyber_prekeys),
        (7, 3)
    );
    relay.stop().await;
}

#[tokio::test]
async fn upload_checks_signatures_against_the_identity_key() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let device = TestDevice::register(&relay, 2).await;
    let stranger = DeviceKeys::generate(2);
    let mut keys = relay.keys().await;

    let upload = UploadPreKeysRequest {
        address: device.address.clone(),
        one_time_kyber_prekeys: stranger.one_time_kyber_prekeys.clone(),
        ..UploadPreKeysRequest::default()
    };
    let status = keys
        .upload_pre_keys(device.request(upload))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "one_time_kyber_prekeys[0].signature signature does not verify with the identity key"
    );

    let upload = UploadPreKeysRequest {
        address: device.address.clone(),
        signed_prekey: Some(stranger.signed_prekey.clone()),
        ..UploadPreKeysRequest::default()
    };
    let status = keys
        .upload_pre_keys(device.request(upload))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("signed_prekey.signature"),
        "{}",
        status.message()
    );

    let counts = keys
        .get_pre_key_count(device.request(GetPreKeyCountRequest {
            address: device.address.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (counts.one_time_prekeys, counts.one_time_kyber_prekeys),
        (2, 2),
        "rejected upload changed keys"
    );
    relay.stop().await;
}

#[tokio::test]
async fn another_devices_keys_are_off_limits() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let device = TestDevice::register(&relay, 1).await;
    let other = TestDevice::register(&relay, 1).await;
    let mut keys = relay.keys().await;

    let upload = UploadPreKeysRequest {
        address: other.address.clone(),
        one_time_prekeys: device.keys.one_time_prekeys.clone(),
        ..UploadPreKeysRequest::default()
    };
    let status = keys
        .upload_pre_keys(device.request(upload))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        format!("address {} is not the caller's device", other.address)
    );

    let status = keys
        .get_pre_key_count(device.request(GetPreKeyCountRequest {
            address: other.address.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    relay.stop().await;
}

#[tokio::test]
async fn bundle_for_unknown_or_malformed_address_is_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let device = TestDevice::register(&relay, 1).await;
    let mut keys = relay.keys().await;

    let unknown = format!("{}.1", uuid::Uuid::new_v4());
    let status = keys
        .get_pre_key_bundle(device.request(GetPreKeyBundleRequest {
            address: unknown.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.message(),
        format!("address {unknown} is not registered on this relay")
    );

    let status = keys
        .get_pre_key_bundle(device.request(GetPreKeyBundleRequest {
            address: "alice".to_owned(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("address is invalid: expected UUID.DEVICE"),
        "{}",
        status.message()
    );
    relay.stop().await;
}
