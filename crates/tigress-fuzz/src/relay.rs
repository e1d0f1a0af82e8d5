//! The relay-request target: a request from the network, decoded as one of the relay's calls
//! and handled by its services in process, with or without a registered device's credential.
//! The call checks every field, and a bad one must get an error status, never a panic.

use std::cell::RefCell;

use prost::Message;
use tigress_proto::relay::v1::{
    AcknowledgeEnvelopesRequest, DeleteMailboxRequest, EnvelopeType, FetchEnvelopesRequest,
    GetPreKeyBundleRequest, GetPreKeyCountRequest, RetractEnvelopeRequest, SendEnvelopeRequest,
    SubscribeRequest, UploadPreKeysRequest,
};
use tigress_relay::fuzzing::FuzzRelay;

thread_local! {
    /// The relay, or why it could not be started, once the first input has needed it.
    static RELAY: RefCell<Option<Result<FuzzRelay, String>>> = const { RefCell::new(None) };
}

/// Makes the relay call that `data` describes; see [`FuzzRelay::call`].
pub fn relay_request(data: &[u8]) {
    let _ = call_relay(data);
}

/// Makes the relay call that `data` describes and returns its status code; `None` when the
/// request does not decode or the relay could not start.
pub fn call_relay(data: &[u8]) -> Option<tigress_relay::fuzzing::Code> {
    with_relay(|relay| relay.call(data)).ok().flatten()
}

/// Runs `f` on this thread's relay, starting it on first use.
fn with_relay<T>(f: impl FnOnce(&FuzzRelay) -> T) -> anyhow::Result<T> {
    RELAY.with(|cell| {
        let mut slot = cell.borrow_mut();
        let started =
            slot.get_or_insert_with(|| FuzzRelay::new().map_err(|error| format!("{error:#}")));
        match started {
            Ok(relay) => Ok(f(relay)),
            Err(message) => anyhow::bail!("failed to start the relay: {message}"),
        }
    })
}

/// Seeds: one well-formed request for each call, with the credential bit set, addressed to
/// the registered device.
pub(crate) fn seeds() -> anyhow::Result<Vec<Vec<u8>>> {
    let address = with_relay(|relay| relay.address().to_owned())?;
    let authenticated = |call: u8, body: Vec<u8>| [vec![call | 0x80], body].concat();
    Ok(vec![
        authenticated(0, Vec::new()),
        authenticated(
            2,
            UploadPreKeysRequest {
                address: address.clone(),
                ..UploadPreKeysRequest::default()
            }
            .encode_to_vec(),
        ),
        authenticated(
            3,
            GetPreKeyCountRequest {
                address: address.clone(),
            }
            .encode_to_vec(),
        ),
        authenticated(
            4,
            GetPreKeyBundleRequest {
                address: address.clone(),
            }
            .encode_to_vec(),
        ),
        authenticated(
            5,
            SendEnvelopeRequest {
                destination: address.clone(),
                client_message_id: vec![1; 16],
                r#type: EnvelopeType::SignalMessage.into(),
                content: b"sealed".to_vec(),
            }
            .encode_to_vec(),
        ),
        authenticated(
            6,
            FetchEnvelopesRequest {
                address: address.clone(),
                limit: 10,
            }
            .encode_to_vec(),
        ),
        authenticated(
            7,
            AcknowledgeEnvelopesRequest {
                address: address.clone(),
                envelope_ids: vec![1, 2],
            }
            .encode_to_vec(),
        ),
        authenticated(
            8,
            SubscribeRequest {
                address: address.clone(),
            }
            .encode_to_vec(),
        ),
        authenticated(
            9,
            RetractEnvelopeRequest {
                destination: address.clone(),
                client_message_id: vec![1; 16],
            }
            .encode_to_vec(),
        ),
        // Deleting the mailbox would end the device, so its seed carries another address.
        authenticated(
            10,
            DeleteMailboxRequest {
                address: "0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1".to_owned(),
            }
            .encode_to_vec(),
        ),
    ])
}
