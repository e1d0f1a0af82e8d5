//! The padded encoding of share messages.
//!
//! A plaintext is the format byte [`FORMAT_VERSION`], the protobuf-encoded
//! `tigress.share.v1.ShareMessage`, the byte 0x80 and zero bytes up to the next size in
//! [`PADDING_BUCKETS`] (the ISO/IEC 7816-4 padding Signal uses for its messages). The relay
//! learns only the ciphertext length, so every credential within a bucket looks the same to it.

use prost::Message as _;
use tigress_proto::share::v1 as wire;

use super::{
    DisplayInformation, MAX_DISPLAY_TEXT_LEN, MAX_FILE_NAME_LEN, MAX_PROVISIONING_INFORMATION_LEN,
    ShareBody, ShareId, ShareMessage, ShareMode, ShareOffer,
};
use crate::error::{Error, Result};

/// The first byte of every plaintext: the version of this framing and of the message schema.
const FORMAT_VERSION: u8 = 0x01;
/// The byte that ends the message and starts the padding.
const PADDING_MARKER: u8 = 0x80;

/// The plaintext sizes a share message is padded to, in bytes: 1 KiB doubling up to 64 KiB.
pub const PADDING_BUCKETS: [usize; 7] = [1024, 2048, 4096, 8192, 16384, 32768, 65536];
/// The largest padded plaintext.
pub const MAX_PADDED_LEN: usize = 65536;

impl ShareMessage {
    /// Encodes and pads the message for encryption.
    ///
    /// # Errors
    ///
    /// [`Error::ShareMessageTooLarge`] when it does not fit the largest bucket.
    pub fn encode_padded(&self) -> Result<Vec<u8>> {
        let encoded = wire::ShareMessage::from(self).encode_to_vec();
        let framed_len = encoded.len() + 2;
        let Some(&bucket) = PADDING_BUCKETS.iter().find(|&&bucket| bucket >= framed_len) else {
            return Err(Error::ShareMessageTooLarge {
                size: framed_len,
                max: MAX_PADDED_LEN,
            });
        };

        let mut plaintext = Vec::with_capacity(bucket);
        plaintext.push(FORMAT_VERSION);
        plaintext.extend_from_slice(&encoded);
        plaintext.push(PADDING_MARKER);
        plaintext.resize(bucket, 0);
        Ok(plaintext)
    }

    /// Removes the padding, decodes the message and checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShareMessage`] naming what is wrong.
    pub fn decode_padded(plaintext: &[u8]) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidShareMessage { reason };
        if !PADDING_BUCKETS.contains(&plaintext.len()) {
            return Err(invalid(format!(
                "padded length {} is not a padding bucket size",
                plaintext.len()
            )));
        }
        let Some((&version, rest)) = plaintext.split_first() else {
            return Err(invalid("empty plaintext".to_owned()));
        };
        if version != FORMAT_VERSION {
            return Err(invalid(format!(
                "unknown format version {version}, expected {FORMAT_VERSION}"
            )));
        }
        let end = rest
            .iter()
            .rposition(|&byte| byte != 0)
            .ok_or_else(|| invalid("no padding marker".to_owned()))?;
        if rest[end] != PADDING_MARKER {
            return Err(invalid("padding does not start with 0x80".to_owned()));
        }

        let message = wire::ShareMessage::decode(&rest[..end])
            .map_err(|error| invalid(format!("protobuf: {error}")))?;
        Self::try_from(message)
    }
}

impl From<&ShareMessage> for wire::ShareMessage {
    fn from(message: &ShareMessage) -> Self {
        let body = match &message.body {
            ShareBody::Offer(offer) => wire::share_message::Body::Offer(offer.into()),
            ShareBody::Completed => wire::share_message::Body::Completed(wire::ShareCompleted {}),
        };
        Self {
            share_id: message.share_id.as_bytes().to_vec(),
            sent_at_ms: message.sent_at_ms,
            body: Some(body),
        }
    }
}

impl From<&ShareOffer> for wire::ShareOffer {
    fn from(offer: &ShareOffer) -> Self {
        let mode = match offer.mode {
            ShareMode::Stateless => wire::ShareMode::Stateless,
        };
        let display = &offer.display;
        Self {
            mode: mode.into(),
            display: Some(wire::DisplayInformation {
                title: display.title.clone(),
                issuer: display.issuer.clone(),
                credential_type: display.credential_type.clone(),
                credential_expires_at_ms: display.credential_expires_at_ms.unwrap_or(0),
                size_bytes: display.size_bytes,
                file_name: display.file_name.clone(),
            }),
            provisioning_information: offer.provisioning_information.clone(),
            expires_at_ms: offer.expires_at_ms.unwrap_or(0),
        }
    }
}

impl TryFrom<wire::ShareMessage> for ShareMessage {
    type Error = Error;

    fn try_from(message: wire::ShareMessage) -> Result<Self> {
        let share_id = ShareId::from_slice(&message.share_id)?;
        let body = match message.body {
            Some(wire::share_message::Body::Offer(offer)) => ShareBody::Offer(offer.try_into()?),
            Some(wire::share_message::Body::Completed(wire::ShareCompleted {})) => {
                ShareBody::Completed
            }
            None => return Err(invalid("body is missing or of an unknown kind")),
        };
        Ok(Self {
            share_id,
            sent_at_ms: message.sent_at_ms,
            body,
        })
    }
}

impl TryFrom<wire::ShareOffer> for ShareOffer {
    type Error = Error;

    fn try_from(offer: wire::ShareOffer) -> Result<Self> {
        let mode = match wire::ShareMode::try_from(offer.mode) {
            Ok(wire::ShareMode::Stateless) => ShareMode::Stateless,
            Ok(wire::ShareMode::Stateful) => {
                return Err(invalid(
                    "offer.mode stateful is not supported by this version",
                ));
            }
            _ => {
                return Err(invalid(format!(
                    "offer.mode {} is not a known share mode",
                    offer.mode
                )));
            }
        };
        let display = offer
            .display
            .ok_or_else(|| invalid("offer.display is missing"))?;
        let display = DisplayInformation::try_from(display)?;

        let size = offer.provisioning_information.len();
        if size == 0 {
            return Err(invalid("offer.provisioning_information is empty"));
        }
        if size > MAX_PROVISIONING_INFORMATION_LEN {
            return Err(invalid(format!(
                "offer.provisioning_information is {size} bytes, more than the maximum of {MAX_PROVISIONING_INFORMATION_LEN}"
            )));
        }
        if display.size_bytes != size as u64 {
            return Err(invalid(format!(
                "offer.display.size_bytes is {} but the provisioning information is {size} bytes",
                display.size_bytes
            )));
        }

        Ok(Self {
            mode,
            display,
            provisioning_information: offer.provisioning_information,
            expires_at_ms: nonzero(offer.expires_at_ms),
        })
    }
}

impl TryFrom<wire::DisplayInformation> for DisplayInformation {
    type Error = Error;

    fn try_from(display: wire::DisplayInformation) -> Result<Self> {
        let display = Self {
            title: display.title,
            issuer: display.issuer,
            credential_type: display.credential_type,
            credential_expires_at_ms: nonzero(display.credential_expires_at_ms),
            size_bytes: display.size_bytes,
            file_name: display.file_name,
        };
        display.validate()?;
        Ok(display)
    }
}

impl DisplayInformation {
    /// Checks the texts: their lengths, that none contains a control character, and that the file
    /// name names no folder.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShareMessage`] naming the field and the rule.
    pub fn validate(&self) -> Result<()> {
        check_text("offer.display.title", &self.title, MAX_DISPLAY_TEXT_LEN)?;
        check_text("offer.display.issuer", &self.issuer, MAX_DISPLAY_TEXT_LEN)?;
        check_text(
            "offer.display.credential_type",
            &self.credential_type,
            MAX_DISPLAY_TEXT_LEN,
        )?;
        check_text(
            "offer.display.file_name",
            &self.file_name,
            MAX_FILE_NAME_LEN,
        )?;
        if self.file_name.contains(['/', '\\']) {
            return Err(invalid(
                "offer.display.file_name must not contain a folder separator",
            ));
        }
        Ok(())
    }
}

/// Checks a display string's length and that it has no control characters, which could
/// rewrite a terminal when the receiver lists its inbox.
fn check_text(field: &str, text: &str, max: usize) -> Result<()> {
    if text.len() > max {
        return Err(invalid(format!(
            "{field} is {} bytes, more than the maximum of {max}",
            text.len()
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(format!("{field} contains a control character")));
    }
    Ok(())
}

fn nonzero(value: u64) -> Option<u64> {
    (value != 0).then_some(value)
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidShareMessage {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests;
