//! The bad-input table: every call of the relay API with missing, empty, oversized,
//! wrong-length and foreign fields, each row asserting the exact status code and message, and
//! the whole table asserting that nothing stored changed.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::{TestDevice, TestRelay, with_credential};
use tigress_proto::relay::v1::{
    AcknowledgeEnvelopesRequest, CreateChallengeRequest, DeleteMailboxRequest, EcPreKey,
    EnvelopeType, FetchEnvelopesRequest, GetPreKeyBundleRequest, GetPreKeyCountRequest,
    GetPreKeyCountResponse, RegisterDeviceRequest, RetractEnvelopeRequest, SendEnvelopeRequest,
    SendEnvelopeResponse, SubscribeRequest, UploadPreKeysRequest,
};
use tonic::{Code, Request, Status};

/// Who a row's call authenticates as.
#[derive(Clone, Copy, Debug)]
enum Caller {
    Alice,
    Nobody,
    Malformed,
    WrongSecret,
}

/// One call of the API, with its request.
#[derive(Clone, Debug)]
enum Call {
    Register(RegisterDeviceRequest),
    Upload(UploadPreKeysRequest),
    Count(GetPreKeyCountRequest),
    Bundle(GetPreKeyBundleRequest),
    Send(SendEnvelopeRequest),
    Fetch(FetchEnvelopesRequest),
    Acknowledge(AcknowledgeEnvelopesRequest),
    Subscribe(SubscribeRequest),
    Retract(RetractEnvelopeRequest),
    Delete(DeleteMailboxRequest),
}

/// A row: the call, who makes it, and the status it must get.
struct Row {
    name: &'static str,
    caller: Caller,
    call: Call,
    code: Code,
    message: String,
}

/// What the API shows of the stored state of the two devices.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    counts: Vec<(u32, u32)>,
    mailboxes: Vec<Vec<(u64, Vec<u8>)>>,
}

struct World {
    relay: TestRelay,
    alice: TestDevice,
    bob: TestDevice,
}

impl World {
    fn request<T>(&self, caller: Caller, message: T) -> Request<T> {
        match caller {
            Caller::Alice => self.alice.request(message),
            Caller::Nobody => Request::new(message),
            Caller::Malformed => with_credential(message, "not-a-credential"),
            Caller::WrongSecret => {
                let uuid = self.alice.credential.split(':').next().unwrap();
                with_credential(
                    message,
                    &format!("{uuid}:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                )
            }
        }
    }

    /// Sends `content` from Alice to Bob, always with the same client message id.
    async fn send_to_bob(&self, content: &[u8]) -> SendEnvelopeResponse {
        let request = send_to(&self.bob.address, vec![1; 16], content.to_vec());
        let mut mailbox = self.relay.mailbox().await;
        mailbox
            .send_envelope(self.alice.request(request))
            .await
            .unwrap()
            .into_inner()
    }

    /// Makes the call and returns its error status; a call that succeeds fails the test.
    async fn status(&self, row: &Row) -> Status {
        let caller = row.caller;
        let result = match row.call.clone() {
            Call::Register(message) => self
                .relay
                .registration()
                .await
                .register_device(self.request(caller, message))
                .await
                .map(drop),
            Call::Upload(message) => self
                .relay
                .keys()
                .await
                .upload_pre_keys(self.request(caller, message))
                .await
                .map(drop),
            Call::Count(message) => self
                .relay
                .keys()
                .await
                .get_pre_key_count(self.request(caller, message))
                .await
                .map(drop),
            Call::Bundle(message) => self
                .relay
                .keys()
                .await
                .get_pre_key_bundle(self.request(caller, message))
                .await
                .map(drop),
            Call::Send(message) => self
                .relay
                .mailbox()
                .await
                .send_envelope(self.request(caller, message))
                .await
                .map(drop),
            Call::Fetch(message) => self
                .relay
                .mailbox()
                .await
                .fetch_envelopes(self.request(caller, message))
                .await
                .map(drop),
            Call::Acknowledge(message) => self
                .relay
                .mailbox()
                .await
                .acknowledge_envelopes(self.request(caller, message))
                .await
                .map(drop),
            Call::Subscribe(message) => self
                .relay
                .mailbox()
                .await
                .subscribe(self.request(caller, message))
                .await
                .map(drop),
            Call::Retract(message) => self
                .relay
                .mailbox()
                .await
                .retract_envelope(self.request(caller, message))
                .await
                .map(drop),
            Call::Delete(message) => self
                .relay
                .mailbox()
                .await
                .delete_mailbox(self.request(caller, message))
                .await
                .map(drop),
        };
        match result {
            Ok(()) => panic!("{}: the call succeeded", row.name),
            Err(status) => status,
        }
    }

    async fn snapshot(&self) -> Snapshot {
        let mut counts = Vec::new();
        let mut mailboxes = Vec::new();
        for device in [&self.alice, &self.bob] {
            let GetPreKeyCountResponse {
                one_time_prekeys,
                one_time_kyber_prekeys,
            } = self
                .relay
                .keys()
                .await
                .get_pre_key_count(device.request(GetPreKeyCountRequest {
                    address: device.address.clone(),
                }))
                .await
                .unwrap()
                .into_inner();
            counts.push((one_time_prekeys, one_time_kyber_prekeys));
            let envelopes = self
                .relay
                .mailbox()
                .await
                .fetch_envelopes(device.request(FetchEnvelopesRequest {
                    address: device.address.clone(),
                    limit: 0,
                }))
                .await
                .unwrap()
                .into_inner()
                .envelopes;
            mailboxes.push(
                envelopes
                    .into_iter()
                    .map(|envelope| (envelope.id, envelope.content))
                    .collect(),
            );
        }
        Snapshot { counts, mailboxes }
    }
}

fn send_to(destination: &str, client_message_id: Vec<u8>, content: Vec<u8>) -> SendEnvelopeRequest {
    SendEnvelopeRequest {
        destination: destination.to_owned(),
        client_message_id,
        r#type: EnvelopeType::SignalMessage.into(),
        content,
    }
}

fn rows(world: &World, challenge: Vec<u8>) -> Vec<Row> {
    let alice = world.alice.address.clone();
    let bob = world.bob.address.clone();
    let unknown = format!("{}.1", uuid::Uuid::new_v4());
    let keys = &world.alice.keys;
    let registration = keys.registration_request(challenge.clone());
    let invalid = |field: &str, rule: &str| format!("{field} {rule}");
    let address_rule =
        "is invalid: expected UUID.DEVICE, for example 0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1";
    let upload = UploadPreKeysRequest {
        address: alice.clone(),
        signed_prekey: None,
        kyber_last_resort_prekey: None,
        one_time_prekeys: Vec::new(),
        one_time_kyber_prekeys: Vec::new(),
    };
    let row = |name, caller, call, code, message: String| Row {
        name,
        caller,
        call,
        code,
        message,
    };
    let missing = "missing credential: send `authorization: Bearer CREDENTIAL` metadata".to_owned();

    vec![
        // Registration.
        row(
            "register: empty identity key",
            Caller::Nobody,
            Call::Register(RegisterDeviceRequest {
                identity_key: Vec::new(),
                ..registration.clone()
            }),
            Code::InvalidArgument,
            invalid("identity_key", "must be 33 bytes, got 0"),
        ),
        row(
            "register: short identity key",
            Caller::Nobody,
            Call::Register(RegisterDeviceRequest {
                identity_key: vec![5; 32],
                ..registration.clone()
            }),
            Code::InvalidArgument,
            invalid("identity_key", "must be 33 bytes, got 32"),
        ),
        row(
            "register: missing challenge",
            Caller::Nobody,
            Call::Register(RegisterDeviceRequest {
                challenge: Vec::new(),
                ..registration.clone()
            }),
            Code::InvalidArgument,
            invalid("challenge", "must be 32 bytes from CreateChallenge, got 0"),
        ),
        row(
            "register: unissued challenge",
            Caller::Nobody,
            Call::Register(keys.registration_request(vec![9; 32])),
            Code::FailedPrecondition,
            "challenge is unknown, already used or expired: request a new one with CreateChallenge"
                .to_owned(),
        ),
        row(
            "register: signature by another key",
            Caller::Nobody,
            Call::Register(RegisterDeviceRequest {
                challenge_signature: vec![0; 64],
                ..registration.clone()
            }),
            Code::InvalidArgument,
            invalid(
                "challenge_signature",
                "signature does not verify with the identity key",
            ),
        ),
        row(
            "register: missing signed prekey",
            Caller::Nobody,
            Call::Register(RegisterDeviceRequest {
                signed_prekey: None,
                ..registration.clone()
            }),
            Code::InvalidArgument,
            invalid("signed_prekey", "is missing"),
        ),
        row(
            "register: missing Kyber prekey",
            Caller::Nobody,
            Call::Register(RegisterDeviceRequest {
                kyber_last_resort_prekey: None,
                ..registration.clone()
            }),
            Code::InvalidArgument,
            invalid("kyber_last_resort_prekey", "is missing"),
        ),
        row(
            "register: too many prekeys",
            Caller::Nobody,
            Call::Register(RegisterDeviceRequest {
                one_time_prekeys: vec![keys.one_time_prekeys[0].clone(); 101],
                ..registration.clone()
            }),
            Code::ResourceExhausted,
            "one_time_prekeys with 101 keys exceeds the limit of 100 (max_prekeys_per_upload)"
                .to_owned(),
        ),
        // Keys.
        row(
            "upload: no credential",
            Caller::Nobody,
            Call::Upload(upload.clone()),
            Code::Unauthenticated,
            missing.clone(),
        ),
        row(
            "upload: malformed credential",
            Caller::Malformed,
            Call::Upload(upload.clone()),
            Code::Unauthenticated,
            "malformed credential: expected `Bearer UUID:SECRET` as returned by RegisterDevice"
                .to_owned(),
        ),
        row(
            "upload: wrong secret",
            Caller::WrongSecret,
            Call::Upload(upload.clone()),
            Code::Unauthenticated,
            "invalid credential".to_owned(),
        ),
        row(
            "upload: another device",
            Caller::Alice,
            Call::Upload(UploadPreKeysRequest {
                address: bob.clone(),
                ..upload.clone()
            }),
            Code::PermissionDenied,
            format!("address {bob} is not the caller's device"),
        ),
        row(
            "upload: empty address",
            Caller::Alice,
            Call::Upload(UploadPreKeysRequest {
                address: String::new(),
                ..upload.clone()
            }),
            Code::InvalidArgument,
            invalid("address", "is missing: expected UUID.DEVICE"),
        ),
        row(
            "upload: bad prekey signature",
            Caller::Alice,
            Call::Upload(UploadPreKeysRequest {
                signed_prekey: Some(tigress_proto::relay::v1::SignedPreKey {
                    signature: vec![1; 64],
                    ..keys.signed_prekey.clone()
                }),
                ..upload.clone()
            }),
            Code::InvalidArgument,
            invalid(
                "signed_prekey.signature",
                "signature does not verify with the identity key",
            ),
        ),
        row(
            "upload: short one-time prekey",
            Caller::Alice,
            Call::Upload(UploadPreKeysRequest {
                one_time_prekeys: vec![EcPreKey {
                    key_id: 500,
                    public_key: vec![5; 10],
                }],
                ..upload.clone()
            }),
            Code::InvalidArgument,
            invalid("one_time_prekeys[0].public_key", "must be 33 bytes, got 10"),
        ),
        row(
            "upload: too many prekeys",
            Caller::Alice,
            Call::Upload(UploadPreKeysRequest {
                one_time_prekeys: vec![keys.one_time_prekeys[0].clone(); 101],
                ..upload.clone()
            }),
            Code::ResourceExhausted,
            "one_time_prekeys with 101 keys exceeds the limit of 100 (max_prekeys_per_upload)"
                .to_owned(),
        ),
        row(
            "count: no credential",
            Caller::Nobody,
            Call::Count(GetPreKeyCountRequest {
                address: alice.clone(),
            }),
            Code::Unauthenticated,
            missing.clone(),
        ),
        row(
            "count: another device",
            Caller::Alice,
            Call::Count(GetPreKeyCountRequest {
                address: bob.clone(),
            }),
            Code::PermissionDenied,
            format!("address {bob} is not the caller's device"),
        ),
        row(
            "bundle: no credential",
            Caller::Nobody,
            Call::Bundle(GetPreKeyBundleRequest {
                address: bob.clone(),
            }),
            Code::Unauthenticated,
            missing.clone(),
        ),
        row(
            "bundle: malformed address",
            Caller::Alice,
            Call::Bundle(GetPreKeyBundleRequest {
                address: "bob".to_owned(),
            }),
            Code::InvalidArgument,
            invalid("address", address_rule),
        ),
        row(
            "bundle: unknown address",
            Caller::Alice,
            Call::Bundle(GetPreKeyBundleRequest {
                address: unknown.clone(),
            }),
            Code::NotFound,
            format!("address {unknown} is not registered on this relay"),
        ),
        // Mailbox.
        row(
            "send: no credential",
            Caller::Nobody,
            Call::Send(send_to(&bob, vec![1; 16], b"x".to_vec())),
            Code::Unauthenticated,
            missing.clone(),
        ),
        row(
            "send: empty destination",
            Caller::Alice,
            Call::Send(send_to("", vec![1; 16], b"x".to_vec())),
            Code::InvalidArgument,
            invalid("destination", "is missing: expected UUID.DEVICE"),
        ),
        row(
            "send: unknown destination",
            Caller::Alice,
            Call::Send(send_to(&unknown, vec![1; 16], b"x".to_vec())),
            Code::NotFound,
            format!("destination {unknown} is not registered on this relay"),
        ),
        row(
            "send: empty content",
            Caller::Alice,
            Call::Send(send_to(&bob, vec![1; 16], Vec::new())),
            Code::InvalidArgument,
            invalid("content", "is empty"),
        ),
        row(
            "send: oversized content",
            Caller::Alice,
            Call::Send(send_to(&bob, vec![1; 16], vec![0; 96 * 1024 + 1])),
            Code::ResourceExhausted,
            "content of 98305 bytes exceeds the limit of 98304 (max_envelope_bytes)".to_owned(),
        ),
        row(
            "send: short message id",
            Caller::Alice,
            Call::Send(send_to(&bob, vec![1; 15], b"x".to_vec())),
            Code::InvalidArgument,
            invalid("client_message_id", "must be 16 bytes, got 15"),
        ),
        row(
            "send: unknown type",
            Caller::Alice,
            Call::Send(SendEnvelopeRequest {
                r#type: 7,
                ..send_to(&bob, vec![1; 16], b"x".to_vec())
            }),
            Code::InvalidArgument,
            invalid("type", "7 is not PREKEY_MESSAGE (1) or SIGNAL_MESSAGE (2)"),
        ),
        row(
            "fetch: no credential",
            Caller::Nobody,
            Call::Fetch(FetchEnvelopesRequest {
                address: alice.clone(),
                limit: 0,
            }),
            Code::Unauthenticated,
            missing.clone(),
        ),
        row(
            "fetch: another mailbox",
            Caller::Alice,
            Call::Fetch(FetchEnvelopesRequest {
                address: bob.clone(),
                limit: 0,
            }),
            Code::PermissionDenied,
            format!("address {bob} is not the caller's device"),
        ),
        row(
            "fetch: limit too high",
            Caller::Alice,
            Call::Fetch(FetchEnvelopesRequest {
                address: alice.clone(),
                limit: 257,
            }),
            Code::InvalidArgument,
            invalid("limit", "257 is more than the maximum of 256"),
        ),
        row(
            "acknowledge: no credential",
            Caller::Nobody,
            Call::Acknowledge(AcknowledgeEnvelopesRequest {
                address: bob.clone(),
                envelope_ids: vec![1],
            }),
            Code::Unauthenticated,
            missing.clone(),
        ),
        row(
            "acknowledge: another mailbox",
            Caller::Alice,
            Call::Acknowledge(AcknowledgeEnvelopesRequest {
                address: bob.clone(),
                envelope_ids: vec![1],
            }),
            Code::PermissionDenied,
            format!("address {bob} is not the caller's device"),
        ),
        row(
            "acknowledge: too many ids",
            Caller::Alice,
            Call::Acknowledge(AcknowledgeEnvelopesRequest {
                address: alice.clone(),
                envelope_ids: vec![1; 257],
            }),
            Code::InvalidArgument,
            invalid("envelope_ids", "has 257 ids, more than the maximum of 256"),
        ),
        row(
            "subscribe: no credential",
            Caller::Nobody,
            Call::Subscribe(SubscribeRequest {
                address: bob.clone(),
            }),
            Code::Unauthenticated,
            missing.clone(),
        ),
        row(
            "subscribe: another mailbox",
            Caller::Alice,
            Call::Subscribe(SubscribeRequest {
                address: bob.clone(),
            }),
            Code::PermissionDenied,
            format!("address {bob} is not the caller's device"),
        ),
        row(
            "retract: no credential",
            Caller::Nobody,
            Call::Retract(RetractEnvelopeRequest {
                destination: bob.clone(),
                client_message_id: vec![1; 16],
            }),
            Code::Unauthenticated,
            missing.clone(),
        ),
        row(
            "retract: malformed destination",
            Caller::Alice,
            Call::Retract(RetractEnvelopeRequest {
                destination: "bob".to_owned(),
                client_message_id: vec![1; 16],
            }),
            Code::InvalidArgument,
            invalid("destination", address_rule),
        ),
        row(
            "retract: empty message id",
            Caller::Alice,
            Call::Retract(RetractEnvelopeRequest {
                destination: bob.clone(),
                client_message_id: Vec::new(),
            }),
            Code::InvalidArgument,
            invalid("client_message_id", "must be 16 bytes, got 0"),
        ),
        row(
            "delete: no credential",
            Caller::Nobody,
            Call::Delete(DeleteMailboxRequest {
                address: alice.clone(),
            }),
            Code::Unauthenticated,
            missing.clone(),
        ),
        row(
            "delete: another mailbox",
            Caller::Alice,
            Call::Delete(DeleteMailboxRequest {
                address: bob.clone(),
            }),
            Code::PermissionDenied,
            format!("address {bob} is not the caller's device"),
        ),
    ]
}

#[tokio::test]
async fn bad_input_table() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let world = World {
        alice: TestDevice::register(&relay, 2).await,
        bob: TestDevice::register(&relay, 2).await,
        relay,
    };
    let queued = world.send_to_bob(b"queued").await;
    let challenge = world
        .relay
        .registration()
        .await
        .create_challenge(CreateChallengeRequest {})
        .await
        .unwrap()
        .into_inner()
        .challenge;
    let before = world.snapshot().await;

    let mut mismatches = Vec::new();
    for row in rows(&world, challenge) {
        let status = world.status(&row).await;
        if status.code() != row.code || status.message() != row.message {
            mismatches.push(format!(
                "{}: got {:?} {:?}, expected {:?} {:?}",
                row.name,
                status.code(),
                status.message(),
                row.code,
                row.message
            ));
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
    assert_eq!(
        world.snapshot().await,
        before,
        "a rejected call changed stored state"
    );

    // A replayed envelope is not an error: the relay returns the first send's id.
    let replayed = world.send_to_bob(b"replayed").await;
    assert!(replayed.duplicate);
    assert_eq!(replayed.envelope_id, queued.envelope_id);
    assert_eq!(
        world.snapshot().await,
        before,
        "a replayed envelope changed stored state"
    );
    world.relay.stop().await;
}
