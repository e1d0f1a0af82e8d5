//! Operations over loopback: the subscription stream, reflection, metrics, TLS and a clean
//! shutdown with subscriptions open.

// Test helpers outside #[test] functions fail the test by unwrapping, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
#[path = "support/tls.rs"]
mod tls;

use std::time::Duration;

use support::{TestDevice, TestRelay};
use tigress_proto::relay::v1::registration_client::RegistrationClient;
use tigress_proto::relay::v1::{
    AcknowledgeEnvelopesRequest, CreateChallengeRequest, EnvelopeType, SendEnvelopeRequest,
    SubscribeRequest, SubscribeResponse, subscribe_response,
};
use tigress_relay::Limits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Streaming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

const PATIENCE: Duration = Duration::from_secs(10);

fn envelope_to(destination: &str, client_message_id: u16) -> SendEnvelopeRequest {
    let mut id = vec![0u8; 16];
    id[..2].copy_from_slice(&client_message_id.to_be_bytes());
    SendEnvelopeRequest {
        destination: destination.to_owned(),
        client_message_id: id,
        r#type: EnvelopeType::SignalMessage.into(),
        content: client_message_id.to_be_bytes().to_vec(),
    }
}

async fn subscribe(relay: &TestRelay, device: &TestDevice) -> Streaming<SubscribeResponse> {
    let request = device.request(SubscribeRequest {
        address: device.address.clone(),
    });
    relay
        .mailbox()
        .await
        .subscribe(request)
        .await
        .unwrap()
        .into_inner()
}

/// Reads the next event, failing the test when none comes in time.
async fn next(stream: &mut Streaming<SubscribeResponse>) -> subscribe_response::Event {
    let response = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("no event in time")
        .unwrap()
        .unwrap();
    response.event.unwrap()
}

fn envelope_id(event: subscribe_response::Event) -> u64 {
    match event {
        subscribe_response::Event::Envelope(envelope) => envelope.id,
        other => panic!("expected an envelope, got {other:?}"),
    }
}

#[tokio::test]
async fn subscription_drains_then_pushes() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 0).await,
    );
    let mut mailbox = relay.mailbox().await;
    for i in 0..3 {
        mailbox
            .send_envelope(alice.request(envelope_to(&bob.address, i)))
            .await
            .unwrap();
    }

    let mut stream = subscribe(&relay, &bob).await;
    for _ in 0..3 {
        envelope_id(next(&mut stream).await);
    }
    assert!(matches!(
        next(&mut stream).await,
        subscribe_response::Event::QueueEmpty(_)
    ));

    mailbox
        .send_envelope(alice.request(envelope_to(&bob.address, 7)))
        .await
        .unwrap();
    let pushed = match next(&mut stream).await {
        subscribe_response::Event::Envelope(envelope) => envelope,
        other => panic!("{other:?}"),
    };
    assert_eq!(pushed.content, 7u16.to_be_bytes());
    relay.stop().await;
}

#[tokio::test]
async fn subscription_waits_for_acknowledgements() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 0).await,
    );
    let mut mailbox = relay.mailbox().await;
    for i in 0..300 {
        mailbox
            .send_envelope(alice.request(envelope_to(&bob.address, i)))
            .await
            .unwrap();
    }

    let mut stream = subscribe(&relay, &bob).await;
    let mut delivered = Vec::new();
    for _ in 0..256 {
        delivered.push(envelope_id(next(&mut stream).await));
    }
    let early = tokio::time::timeout(Duration::from_millis(300), stream.message()).await;
    assert!(
        early.is_err(),
        "more than 256 envelopes went out unacknowledged: {early:?}"
    );

    let acknowledge = AcknowledgeEnvelopesRequest {
        address: bob.address.clone(),
        envelope_ids: delivered[..100].to_vec(),
    };
    mailbox
        .acknowledge_envelopes(bob.request(acknowledge))
        .await
        .unwrap();
    for _ in 0..44 {
        let id = envelope_id(next(&mut stream).await);
        assert!(
            !delivered.contains(&id),
            "envelope {id} was sent twice on one subscription"
        );
        delivered.push(id);
    }
    assert!(matches!(
        next(&mut stream).await,
        subscribe_response::Event::QueueEmpty(_)
    ));
    relay.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_subscriptions() {
    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let bob = TestDevice::register(&relay, 0).await;
    let mut stream = subscribe(&relay, &bob).await;
    assert!(matches!(
        next(&mut stream).await,
        subscribe_response::Event::QueueEmpty(_)
    ));

    tokio::time::timeout(PATIENCE, relay.stop())
        .await
        .expect("shutdown waited for the open subscription");
    let end = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("the stream did not end");
    assert!(
        !matches!(end, Ok(Some(_))),
        "the stream went on after shutdown: {end:?}"
    );
}

#[tokio::test]
async fn reflection_lists_the_api() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let folder = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(folder.path()).await;
    let mut client = ServerReflectionClient::new(relay.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for expected in [
        "tigress.relay.v1.Registration",
        "tigress.relay.v1.Keys",
        "tigress.relay.v1.Mailbox",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} missing from {names:?}"
        );
    }
    relay.stop().await;
}

#[tokio::test]
async fn metrics_endpoint_reports_calls_and_queues() {
    let folder = tempfile::tempdir().unwrap();
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_address = metrics_listener.local_addr().unwrap();
    let relay = TestRelay::start_with(folder.path(), Limits::without_rate_limits(), |relay| {
        relay.with_metrics(metrics_listener)
    })
    .await;
    let (alice, bob) = (
        TestDevice::register(&relay, 0).await,
        TestDevice::register(&relay, 0).await,
    );
    relay
        .mailbox()
        .await
        .send_envelope(alice.request(envelope_to(&bob.address, 1)))
        .await
        .unwrap();

    let text = http_get(metrics_address, "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    for expected in [
        "tigress_calls_total{method=\"RegisterDevice\",code=\"OK\"} 2",
        "tigress_calls_total{method=\"SendEnvelope\",code=\"OK\"} 1",
        "tigress_queued_envelopes 1",
        "tigress_flush_seconds_count",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
    assert!(
        http_get(metrics_address, "/other")
            .await
            .starts_with("HTTP/1.1 404")
    );
    relay.stop().await;
}

async fn http_get(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

#[tokio::test]
async fn tls_relay_serves_https_only() {
    let folder = tempfile::tempdir().unwrap();
    let tls = tls::test_tls();
    let relay = TestRelay::start_with(folder.path(), Limits::without_rate_limits(), |relay| {
        relay.with_tls(
            tls.certificate_pem.as_bytes(),
            tls.private_key_pem.as_bytes(),
        )
    })
    .await;

    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&tls.ca_pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", relay.address))
        .unwrap()
        .tls_config(config)
        .unwrap()
        .connect()
        .await
        .unwrap();
    RegistrationClient::new(channel)
        .create_challenge(CreateChallengeRequest {})
        .await
        .unwrap();

    let plain = Channel::from_shared(format!("http://{}", relay.address))
        .unwrap()
        .connect()
        .await;
    let refused = match plain {
        Ok(channel) => RegistrationClient::new(channel)
            .create_challenge(CreateChallengeRequest {})
            .await
            .is_err(),
        Err(_) => true,
    };
    assert!(refused, "the TLS relay answered plain HTTP/2");
    relay.stop().await;
}
