//! Tests of the padded share message encoding: round trips, bucket sizes and rejected inputs.

use proptest::prelude::*;

use tigress_proto::share::v1 as wire;

use super::*;
use crate::share::{
    DisplayInformation, MAX_PROVISIONING_INFORMATION_LEN, ShareBody, ShareId, ShareMode, ShareOffer,
};

fn offer_message(size: usize) -> ShareMessage {
    ShareMessage {
        share_id: ShareId::from_slice(&[7; 16]).unwrap(),
        sent_at_ms: 1_700_000_000_000,
        body: ShareBody::Offer(ShareOffer {
            mode: ShareMode::Stateless,
            display: DisplayInformation {
                title: "Hotel room 1204".to_owned(),
                issuer: "Example Hotels".to_owned(),
                credential_type: "org.iso.18013.5.1.mDL".to_owned(),
                credential_expires_at_ms: Some(1_800_000_000_000),
                size_bytes: size as u64,
                file_name: "room.cbor".to_owned(),
            },
            provisioning_information: vec![0xA5; size],
            expires_at_ms: Some(1_700_086_400_000),
            x509_policy: None,
        }),
    }
}

#[test]
fn offer_round_trips_through_padding() {
    let message = offer_message(3394);
    let padded = message.encode_padded().unwrap();
    assert_eq!(padded.len(), 4096);
    assert_eq!(ShareMessage::decode_padded(&padded).unwrap(), message);
}

#[test]
fn completion_pads_to_smallest_bucket() {
    let message = ShareMessage {
        share_id: ShareId::from_slice(&[1; 16]).unwrap(),
        sent_at_ms: 5,
        body: ShareBody::Completed,
    };
    let padded = message.encode_padded().unwrap();
    assert_eq!(padded.len(), 1024);
    assert_eq!(ShareMessage::decode_padded(&padded).unwrap(), message);
}

#[test]
fn offers_of_similar_size_pad_alike() {
    let small = offer_message(2200).encode_padded().unwrap();
    let large = offer_message(3900).encode_padded().unwrap();
    assert_eq!(small.len(), large.len());
}

#[test]
fn largest_credential_fits_largest_bucket() {
    let padded = offer_message(MAX_PROVISIONING_INFORMATION_LEN)
        .encode_padded()
        .unwrap();
    assert_eq!(padded.len(), MAX_PADDED_LEN);
}

#[test]
fn oversized_message_is_rejected_at_encoding() {
    let error = offer_message(MAX_PADDED_LEN).encode_padded().unwrap_err();
    assert!(
        matches!(
            error,
            Error::ShareMessageTooLarge {
                max: MAX_PADDED_LEN,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn decoder_rejects_malformed_plaintexts() {
    let valid = offer_message(100).encode_padded().unwrap();
    let mut wrong_version = valid.clone();
    wrong_version[0] = 2;
    let mut no_marker = valid.clone();
    let marker = no_marker.iter().rposition(|&byte| byte != 0).unwrap();
    no_marker[marker] = 0x81;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "not a padding bucket"),
        ("unpadded", valid[..500].to_vec(), "not a padding bucket"),
        ("version", wrong_version, "unknown format version 2"),
        ("all zero", vec![0; 1024], "unknown format version 0"),
        (
            "only version",
            [vec![1], vec![0; 1023]].concat(),
            "no padding marker",
        ),
        ("marker", no_marker, "padding does not start with 0x80"),
        (
            "garbage",
            [vec![1, 0xFF, 0xFF, 0x80], vec![0; 1020]].concat(),
            "protobuf",
        ),
    ];
    for (name, plaintext, expected) in cases {
        let error = ShareMessage::decode_padded(&plaintext)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(expected),
            "{name}: {error:?} lacks {expected:?}"
        );
    }
}

fn pad(message: &wire::ShareMessage) -> Vec<u8> {
    let mut plaintext = vec![FORMAT_VERSION];
    plaintext.extend(message.encode_to_vec());
    plaintext.push(PADDING_MARKER);
    let bucket = PADDING_BUCKETS
        .iter()
        .find(|&&bucket| bucket >= plaintext.len())
        .unwrap();
    plaintext.resize(*bucket, 0);
    plaintext
}

#[test]
fn decoder_rejects_invalid_fields() {
    let base = wire::ShareMessage::from(&offer_message(64));
    let with_offer = |change: &dyn Fn(&mut wire::ShareOffer)| {
        let mut message = base.clone();
        if let Some(wire::share_message::Body::Offer(offer)) = message.body.as_mut() {
            change(offer);
        }
        message
    };
    let cases: Vec<(&str, wire::ShareMessage, &str)> = vec![
        (
            "short id",
            wire::ShareMessage {
                share_id: vec![1; 3],
                ..base.clone()
            },
            "share_id must be 16 bytes, got 3",
        ),
        (
            "no body",
            wire::ShareMessage {
                body: None,
                ..base.clone()
            },
            "body is missing",
        ),
        ("mode", with_offer(&|offer| offer.mode = 0), "offer.mode 0"),
        (
            "no display",
            with_offer(&|offer| offer.display = None),
            "offer.display is missing",
        ),
        (
            "empty",
            with_offer(&|offer| offer.provisioning_information.clear()),
            "is empty",
        ),
        (
            "size",
            with_offer(&|offer| offer.display.as_mut().unwrap().size_bytes = 9),
            "size_bytes is 9",
        ),
        (
            "title",
            with_offer(&|offer| offer.display.as_mut().unwrap().title = "x".repeat(201)),
            "title is 201 bytes",
        ),
        (
            "escape",
            with_offer(&|offer| offer.display.as_mut().unwrap().title = "\u{1b}[2J".to_owned()),
            "control character",
        ),
        (
            "folder",
            with_offer(&|offer| offer.display.as_mut().unwrap().file_name = "../key".to_owned()),
            "folder separator",
        ),
    ];
    for (name, message, expected) in cases {
        let error = ShareMessage::decode_padded(&pad(&message))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(expected),
            "{name}: {error:?} lacks {expected:?}"
        );
    }
}

proptest! {
    #[test]
    fn padded_offers_round_trip_proptest(size in 1usize..=MAX_PROVISIONING_INFORMATION_LEN, title in "[a-zA-Z0-9 ]{0,200}") {
        let mut message = offer_message(size);
        if let ShareBody::Offer(offer) = &mut message.body {
            offer.display.title = title;
        }
        let padded = message.encode_padded().unwrap();
        prop_assert!(PADDING_BUCKETS.contains(&padded.len()));
        prop_assert_eq!(ShareMessage::decode_padded(&padded).unwrap(), message);
    }

    #[test]
    fn decoder_never_panics_proptest(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = ShareMessage::decode_padded(&bytes);
    }
}
