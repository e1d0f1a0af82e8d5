//! Display information derived from ISO/IEC 18013-5 mdoc documents (mobile driving licences
//! and other mobile documents), so that a receiver sees the credential's type, issuer and expiry
//! before accepting it.
//!
//! Two CBOR shapes are read: an `IssuerSigned` structure (`nameSpaces` and `issuerAuth`) and a
//! `DeviceResponse` (`documents`, of which the first is used). From them:
//!
//! - the type is the `docType` of the document, or of the mobile security object (MSO) signed in
//!   `issuerAuth`;
//! - the expiry is the `expiry_date` data element, or else the MSO's `validityInfo.validUntil`;
//! - the issuer is the `issuing_authority` data element, or else the common name of the issuer
//!   of the document signer certificate in the `issuerAuth` header (COSE label 33, x5chain).
//!
//! Nothing here verifies the issuer's signature: the result describes the document for display,
//! it does not vouch for it. Any input that is not such a document yields `None`, never a panic.

use ciborium::Value;
use der::Decode;
use x509_cert::Certificate;

/// The COSE header label of an X.509 certificate chain (RFC 9360).
const COSE_X5CHAIN: i64 = 33;
/// The CBOR tag of embedded CBOR data items (RFC 8949).
const TAG_EMBEDDED_CBOR: u64 = 24;

/// The description an mdoc gives of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MdocDescription {
    /// The document type, such as `org.iso.18013.5.1.mDL`.
    pub doc_type: String,
    /// The issuing authority, when the document names one.
    pub issuer: Option<String>,
    /// When the document expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: Option<u64>,
}

/// Describes `bytes` if they are an mdoc `IssuerSigned` or `DeviceResponse` structure.
pub fn describe(bytes: &[u8]) -> Option<MdocDescription> {
    let root: Value = ciborium::de::from_reader(bytes).ok()?;
    let (issuer_signed, outer_doc_type) = match field(&root, "documents") {
        Some(Value::Array(documents)) => {
            let document = documents.first()?;
            (
                field(document, "issuerSigned")?,
                field(document, "docType").and_then(Value::as_text),
            )
        }
        _ => (&root, None),
    };

    let name_spaces = field(issuer_signed, "nameSpaces")?;
    let issuer_auth = field(issuer_signed, "issuerAuth")?.as_array()?;
    let mso = issuer_auth
        .get(2)
        .and_then(Value::as_bytes)
        .and_then(|payload| embedded(payload));

    let doc_type = outer_doc_type.map(str::to_owned).or_else(|| {
        mso.as_ref()
            .and_then(|mso| field(mso, "docType"))
            .and_then(Value::as_text)
            .map(str::to_owned)
    })?;
    let expires_at_ms = element(name_spaces, "expiry_date")
        .and_then(|value| date_ms(&value))
        .or_else(|| {
            let validity = mso.as_ref().and_then(|mso| field(mso, "validityInfo"))?;
            date_ms(field(validity, "validUntil")?)
        });
    let issuer = element(name_spaces, "issuing_authority")
        .and_then(|value| value.as_text().map(str::to_owned))
        .or_else(|| signer_issuer(issuer_auth.get(1)?));

    Some(MdocDescription {
        doc_type,
        issuer,
        expires_at_ms,
    })
}

/// Looks up a text key in a CBOR map.
fn field<'v>(map: &'v Value, name: &str) -> Option<&'v Value> {
    map.as_map()?
        .iter()
        .find(|(key, _)| key.as_text() == Some(name))
        .map(|(_, value)| value)
}

/// Decodes an embedded CBOR item: a byte string, or a tag-24 byte string holding CBOR.
fn embedded(bytes: &[u8]) -> Option<Value> {
    match ciborium::de::from_reader::<Value, _>(bytes).ok()? {
        Value::Tag(TAG_EMBEDDED_CBOR, inner) => {
            ciborium::de::from_reader(inner.as_bytes()?.as_slice()).ok()
        }
        value => Some(value),
    }
}

/// Finds a data element by identifier in any namespace of `nameSpaces`.
fn element(name_spaces: &Value, identifier: &str) -> Option<Value> {
    for (_, items) in name_spaces.as_map()? {
        for item in items.as_array()? {
            let Value::Tag(TAG_EMBEDDED_CBOR, inner) = item else {
                continue;
            };
            let Some(decoded) = inner
                .as_bytes()
                .and_then(|bytes| ciborium::de::from_reader::<Value, _>(bytes.as_slice()).ok())
            else {
                continue;
            };
            if field(&decoded, "elementIdentifier").and_then(Value::as_text) == Some(identifier) {
                return field(&decoded, "elementValue").cloned();
            }
        }
    }
    None
}

/// The common name of the issuer of the document signer certificate in the COSE unprotected
/// header.
fn signer_issuer(unprotected: &Value) -> Option<String> {
    let chain = unprotected
        .as_map()?
        .iter()
        .find(|(key, _)| {
            key.as_integer().and_then(|label| i64::try_from(label).ok()) == Some(COSE_X5CHAIN)
        })
        .map(|(_, value)| value)?;
    let der = match chain {
        Value::Bytes(der) => der,
        Value::Array(certificates) => certificates.first()?.as_bytes()?,
        _ => return None,
    };
    let certificate = Certificate::from_der(der).ok()?;
    let issuer = &certificate.tbs_certificate.issuer;
    issuer
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|attribute| attribute.oid == const_oid::db::rfc4519::CN)
        .and_then(|attribute| {
            attribute
                .value
                .decode_as::<der::asn1::Utf8StringRef<'_>>()
                .map(|text| text.as_str().to_owned())
                .or_else(|_| {
                    attribute
                        .value
                        .decode_as::<der::asn1::PrintableStringRef<'_>>()
                        .map(|text| text.as_str().to_owned())
                })
                .ok()
        })
}

/// Converts a CBOR date to milliseconds since the Unix epoch: a full-date (`YYYY-MM-DD`,
/// tags 1004 and 100 or untagged text) at midnight UTC, or a tag-0 date-time
/// (`YYYY-MM-DDTHH:MM:SSZ`, fractions and offsets allowed).
fn date_ms(value: &Value) -> Option<u64> {
    match value {
        Value::Tag(0 | 1004, inner) => date_ms(inner),
        Value::Tag(100, inner) => {
            let days = i64::try_from(inner.as_integer()?).ok()?;
            millis_from_days(days, 0)
        }
        Value::Text(text) => parse_date_time(text),
        _ => None,
    }
}

/// Parses `YYYY-MM-DD` or an RFC 3339 date-time.
fn parse_date_time(text: &str) -> Option<u64> {
    let date = text.get(..10)?;
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);

    let rest = &text[10..];
    if rest.is_empty() {
        return millis_from_days(days, 0);
    }
    let time = rest.strip_prefix(['T', 't', ' '])?;
    let hours: i64 = time.get(0..2)?.parse().ok()?;
    let minutes: i64 = time.get(3..5)?.parse().ok()?;
    let seconds: i64 = time.get(6..8)?.parse().ok()?;
    let zone = time
        .get(8..)?
        .trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset_minutes = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            sign * (zone.get(1..3)?.parse::<i64>().ok()? * 60
                + zone.get(4..6)?.parse::<i64>().ok()?)
        }
    };
    let seconds_of_day = hours * 3600 + minutes * 60 + seconds - offset_minutes * 60;
    millis_from_days(days, seconds_of_day)
}

fn millis_from_days(days: i64, seconds_of_day: i64) -> Option<u64> {
    let seconds = days.checked_mul(86_400)?.checked_add(seconds_of_day)?;
    u64::try_from(seconds).ok()?.checked_mul(1000)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar, by the era-based method
/// of Howard Hinnant's "chrono-Compatible Low-Level Date Algorithms".
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/credentials")
            .join(name);
        std::fs::read(path).unwrap()
    }

    /// 2024-10-20T00:00:00Z, the sample licence's `expiry_date`.
    const SAMPLE_EXPIRY_MS: u64 = 1_729_382_400_000;

    #[test]
    fn issuer_signed_sample_is_described() {
        let description = describe(&sample("mdl-issuer-signed.cbor")).unwrap();
        assert_eq!(description.doc_type, "org.iso.18013.5.1.mDL");
        assert_eq!(description.expires_at_ms, Some(SAMPLE_EXPIRY_MS));
        assert_eq!(description.issuer.as_deref(), Some("utopia iaca"));
    }

    #[test]
    fn device_response_sample_is_described() {
        let description = describe(&sample("mdl-device-response.cbor")).unwrap();
        assert_eq!(description.doc_type, "org.iso.18013.5.1.mDL");
        assert_eq!(description.expires_at_ms, Some(SAMPLE_EXPIRY_MS));
    }

    #[test]
    fn other_bytes_are_not_described() {
        assert_eq!(describe(b""), None);
        assert_eq!(describe(b"not cbor at all"), None);
        assert_eq!(describe(&[0xA1, 0x61, 0x61, 0x01]), None);
        let mut truncated = sample("mdl-issuer-signed.cbor");
        truncated.truncate(500);
        assert_eq!(describe(&truncated), None);
    }

    #[test]
    fn dates_convert_to_epoch_milliseconds() {
        assert_eq!(parse_date_time("1970-01-01"), Some(0));
        assert_eq!(parse_date_time("2000-03-01"), Some(951_868_800_000));
        assert_eq!(
            parse_date_time("2021-10-01T13:30:02Z"),
            Some(1_633_095_002_000)
        );
        assert_eq!(
            parse_date_time("2021-10-01T15:30:02.250+02:00"),
            Some(1_633_095_002_000)
        );
        assert_eq!(parse_date_time("2021-13-01"), None);
        assert_eq!(parse_date_time("1969-12-31"), None);
        assert_eq!(parse_date_time("2021-10-01X"), None);
    }

    #[test]
    fn describe_never_panics_on_mutations() {
        let original = sample("mdl-device-response.cbor");
        for index in (0..original.len()).step_by(7) {
            let mut mutated = original.clone();
            mutated[index] ^= 0xFF;
            let _ = describe(&mutated);
            let _ = describe(&original[..index]);
        }
    }
}
