//! The padded encoding of share messages.
//!
//! A plaintext is the format byte [`FORMAT_VERSION`], the protobuf-encoded
//! `tigress.share.v1.ShareMessage`, the byte 0x80 and zero bytes up to the next size in
//! [`PADDING_BUCKETS`] (the ISO/IEC 7816-4 padding Signal uses for its messages). The relay
//! learns only the ciphertext length, so every credential within a bucket looks the same to it.

use prost::Message as _;
use tigress_proto::share::v1 as wire;

use super::ShareMessage;
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

#[cfg(test)]
mod tests;
