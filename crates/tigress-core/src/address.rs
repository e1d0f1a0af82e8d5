//! Device addresses: the relay-assigned UUID and device id, printed as `UUID.DEVICE`.

use std::fmt;
use std::str::FromStr;

use libsignal_protocol::{DeviceId, ProtocolAddress};
use uuid::Uuid;

use crate::error::{Error, Result};

/// The device id of every mailbox: the relay gives each device its own UUID, so one device per
/// UUID is enough.
pub const PRIMARY_DEVICE_ID: u8 = 1;

// A failed match here stops compilation, so it can never panic at run time.
#[allow(clippy::panic)]
const PRIMARY_DEVICE: DeviceId = match DeviceId::new(PRIMARY_DEVICE_ID) {
    Ok(id) => id,
    Err(_) => panic!("PRIMARY_DEVICE_ID must be in 1..=127"),
};

/// Maximum length of an address text: a hyphenated UUID (36 characters), a dot and a device id
/// of at most three digits.
const MAX_ADDRESS_LEN: usize = 40;

/// The address of a device on a relay, such as `0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1`.
///
/// It prints exactly as libsignal's [`ProtocolAddress`] does, with the UUID in lowercase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceAddress {
    uuid: Uuid,
    device_id: DeviceId,
}

impl DeviceAddress {
    /// Builds the address of the primary device of `uuid`.
    pub fn primary(uuid: Uuid) -> Self {
        Self {
            uuid,
            device_id: PRIMARY_DEVICE,
        }
    }

    /// Returns the relay-assigned UUID.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// Returns the device id, 1 to 127.
    pub fn device_id(&self) -> DeviceId {
        self.device_id
    }

    /// Converts to libsignal's address type.
    pub fn to_protocol_address(&self) -> ProtocolAddress {
        ProtocolAddress::new(self.uuid.hyphenated().to_string(), self.device_id)
    }
}

impl fmt::Display for DeviceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.uuid.hyphenated(), self.device_id)
    }
}

impl FromStr for DeviceAddress {
    type Err = Error;

    /// Parses `UUID.DEVICE`, where UUID is hyphenated and DEVICE is 1 to 127.
    fn from_str(value: &str) -> Result<Self> {
        let invalid = |rule| Error::InvalidAddress {
            value: value.chars().take(MAX_ADDRESS_LEN + 8).collect(),
            rule,
        };
        if value.len() > MAX_ADDRESS_LEN {
            return Err(invalid("longer than UUID.DEVICE can be"));
        }
        let Some((uuid_text, device_text)) = value.rsplit_once('.') else {
            return Err(invalid(
                "expected UUID.DEVICE, for example 0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1",
            ));
        };
        if uuid_text.len() != 36 {
            return Err(invalid("the UUID must be 36 characters, hyphenated"));
        }
        let uuid = Uuid::try_parse(uuid_text)
            .map_err(|_| invalid("the part before the dot is not a UUID"))?;
        if !device_text.bytes().all(|byte| byte.is_ascii_digit()) || device_text.is_empty() {
            return Err(invalid(
                "the device id after the dot must be a number from 1 to 127",
            ));
        }
        let device_id = device_text
            .parse::<u8>()
            .ok()
            .and_then(|id| DeviceId::new(id).ok())
            .ok_or_else(|| invalid("the device id after the dot must be a number from 1 to 127"))?;
        Ok(Self { uuid, device_id })
    }
}

impl TryFrom<&ProtocolAddress> for DeviceAddress {
    type Error = Error;

    fn try_from(address: &ProtocolAddress) -> Result<Self> {
        let uuid = Uuid::try_parse(address.name()).map_err(|_| Error::InvalidAddress {
            value: address.to_string(),
            rule: "the name is not a UUID",
        })?;
        Ok(Self {
            uuid,
            device_id: address.device_id(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_round_trips_through_text() {
        let text = "0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1";
        let address: DeviceAddress = text.parse().unwrap();
        assert_eq!(address.to_string(), text);
        assert_eq!(address.to_protocol_address().to_string(), text);
    }

    #[test]
    fn address_prints_uuid_in_lowercase() {
        let address: DeviceAddress = "0F8E2C1A-5B7D-4E7A-9C3B-2D1E0F9A8B7C.7".parse().unwrap();
        assert_eq!(
            address.to_string(),
            "0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.7"
        );
    }

    #[test]
    fn address_rejects_malformed_text() {
        let cases = [
            ("", "expected UUID.DEVICE"),
            (
                "0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c",
                "expected UUID.DEVICE",
            ),
            ("0f8e2c1a5b7d4e7a9c3b2d1e0f9a8b7c.1", "36 characters"),
            ("0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8bzz.1", "not a UUID"),
            ("0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.0", "1 to 127"),
            ("0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.128", "1 to 127"),
            ("0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.+1", "1 to 127"),
            ("0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.", "1 to 127"),
            (
                "0f8e2c1a-5b7d-4e7a-9c3b-2d1e0f9a8b7c.1111111",
                "longer than",
            ),
        ];
        for (text, expected) in cases {
            let error = text.parse::<DeviceAddress>().unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{text:?} gave {error:?}, expected {expected:?}"
            );
        }
    }
}
