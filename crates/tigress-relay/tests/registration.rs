//! Registration over loopback: the challenge, proof of possession of the identity key and
//! the checks on every registration field.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::{DeviceKeys, TestDevice, TestRelay, with_credential};
use tigress_core::DeviceAddress;
use tigress_proto::relay::v1::{
    CreateChallengeRequest, GetPreKeyCountRequest, RegisterDeviceRequest,
};
use tonic::Code;

async fn fresh_challenge(relay: &TestRelay) -> Vec<u8> {
    let mut registration = relay.registration().await;
    registration
        .create_challenge(CreateChallengeRequest {})
        .await
        .unwrap()
        .into_inner()
        .challenge
}

#[tokio::test]
async fn registration_returns_address_and_working_credential() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let device = TestDevice::register(&relay, 5).await;

    let address: DeviceAddress = device.address.parse().unwrap();
    assert_eq!(u32::from(address.device_id()), 1);
    let counts = relay
        .keys()
        .await
        .get_pre_key_count(device.request(GetPreKeyCountRequest {
            address: device.address.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(counts.one_time_prekeys, 5);
    assert_eq!(counts.one_time_kyber_prekeys, 5);
    relay.stop().await;
}

#[tokio::test]
async fn challenge_is_single_use() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let challenge = fresh_challenge(&relay).await;
    let mut registration = relay.registration().await;

    let keys = DeviceKeys::generate(1);
    registration
        .register_device(keys.registration_request(challenge.clone()))
        .await
        .unwrap();
    let other = DeviceKeys::generate(1);
    let status = registration
        .register_device(other.registration_request(challenge))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("challenge"),
        "{}",
        status.message()
    );
    relay.stop().await;
}

#[tokio::test]
async fn unissued_challenge_is_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let keys = DeviceKeys::generate(1);
    let status = relay
        .registration()
        .await
        .register_device(keys.registration_request(vec![9; 32]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    relay.stop().await;
}

#[tokio::test]
async fn registration_rejects_invalid_fields() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let keys = DeviceKeys::generate(2);
    let challenge = fresh_challenge(&relay).await;
    let valid = keys.registration_request(challenge.clone());
    let stranger = DeviceKeys::generate(0);

    type Change = Box<dyn Fn(&mut RegisterDeviceRequest)>;
    let cases: Vec<(&str, Change, Code, &str)> = vec![
        (
            "short identity",
            Box::new(|r| r.identity_key.truncate(12)),
            Code::InvalidArgument,
            "identity_key must be 33 bytes, got 12",
        ),
        (
            "identity type",
            Box::new(|r| r.identity_key[0] = 0x07),
            Code::InvalidArgument,
            "identity_key must start with key type byte 0x05, got 0x07",
        ),
        (
            "registration id",
            Box::new(|r| r.registration_id = 0),
            Code::InvalidArgument,
            "registration_id 0 is out of range 1 to 16380",
        ),
        (
            "challenge length",
            Box::new(|r| r.challenge.truncate(5)),
            Code::InvalidArgument,
            "challenge must be 32 bytes",
        ),
        (
            "signature",
            Box::new(|r| r.challenge_signature[3] ^= 1),
            Code::InvalidArgument,
            "challenge_signature signature does not verify",
        ),
        (
            "short signature",
            Box::new(|r| r.challenge_signature.truncate(10)),
            Code::InvalidArgument,
            "challenge_signature must be 64 bytes, got 10",
        ),
        (
            "no signed prekey",
            Box::new(|r| r.signed_prekey = None),
            Code::InvalidArgument,
            "signed_prekey is missing",
        ),
        (
            "signed prekey length",
            Box::new(|r| {
                r.signed_prekey
                    .as_mut()
                    .unwrap()
                    .public_key
                    .pop()
                    .map(drop)
                    .unwrap_or(())
            }),
            Code::InvalidArgument,
            "signed_prekey.public_key must be 33 bytes, got 32",
        ),
        (
            "signed prekey signature",
            Box::new(move |r| {
                r.signed_prekey.as_mut().unwrap().signature =
                    stranger.sign(&r.signed_prekey.as_ref().unwrap().public_key)
            }),
            Code::InvalidArgument,
            "signed_prekey.signature signature does not verify",
        ),
        (
            "no last resort",
            Box::new(|r| r.kyber_last_resort_prekey = None),
            Code::InvalidArgument,
            "kyber_last_resort_prekey is missing",
        ),
        (
            "kyber length",
            Box::new(|r| r.one_time_kyber_prekeys[1].public_key.truncate(100)),
            Code::InvalidArgument,
            "one_time_kyber_prekeys[1].public_key must be 1569 bytes, got 100",
        ),
        (
            "repeated id",
            Box::new(|r| r.one_time_prekeys[1].key_id = r.one_time_prekeys[0].key_id),
            Code::InvalidArgument,
            "is repeated in the list",
        ),
        (
            "prekey id",
            Box::new(|r| r.one_time_prekeys[0].key_id = 1 << 24),
            Code::InvalidArgument,
            "one_time_prekeys[0].key_id 16777216 is out of range 0 to 16777215",
        ),
        (
            "too many",
            Box::new(|r| r.one_time_prekeys = vec![r.one_time_prekeys[0].clone(); 101]),
            Code::ResourceExhausted,
            "exceeds the limit of 100",
        ),
    ];

    let mut registration = relay.registration().await;
    for (name, change, code, expected) in cases {
        let mut request = valid.clone();
        change(&mut request);
        let status = registration.register_device(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{name}: {}", status.message());
        assert!(
            status.message().contains(expected),
            "{name}: {:?} lacks {expected:?}",
            status.message()
        );
    }

    let response = registration
        .register_device(valid)
        .await
        .unwrap()
        .into_inner();
    assert!(
        response.address.parse::<DeviceAddress>().is_ok(),
        "challenge was used up by a rejected request"
    );
    relay.stop().await;
}

#[tokio::test]
async fn credentials_are_checked() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let device = TestDevice::register(&relay, 1).await;
    let mut keys = relay.keys().await;
    let count_request = || GetPreKeyCountRequest {
        address: device.address.clone(),
    };

    let status = keys.get_pre_key_count(count_request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("missing credential"),
        "{}",
        status.message()
    );

    let (uuid, _) = device.credential.split_once(':').unwrap();
    let wrong_secret = format!("{uuid}:{}", "A".repeat(43));
    let status = keys
        .get_pre_key_count(with_credential(count_request(), &wrong_secret))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "invalid credential");

    let status = keys
        .get_pre_key_count(with_credential(count_request(), "not-a-credential"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("malformed credential"),
        "{}",
        status.message()
    );

    let unknown_device = format!(
        "{}:{}",
        uuid::Uuid::new_v4(),
        device.credential.split_once(':').unwrap().1
    );
    let status = keys
        .get_pre_key_count(with_credential(count_request(), &unknown_device))
        .await
        .unwrap_err();
    assert_eq!(
        status.message(),
        "invalid credential",
        "unknown device must look like a wrong secret"
    );
    relay.stop().await;
}

#[tokio::test]
async fn health_service_reports_serving() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let mut health = HealthClient::new(relay.channel().await);
    for service in [
        "tigress.relay.v1.Registration",
        "tigress.relay.v1.Keys",
        "tigress.relay.v1.Mailbox",
    ] {
        let response = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.status, 1, "{service} is not SERVING");
    }
    relay.stop().await;
}
