//! Conversions between the checked share types and their protobuf form, `tigress.share.v1`.
//!
//! Decoding checks every field against the rules stated in `share.proto`, so that a message
//! that passes is safe to store and show.

use tigress_proto::share::v1 as wire;
use wire::share_message::Body;

use super::{
    DisplayInformation, MAX_COMMON_NAME_LEN, MAX_DISPLAY_TEXT_LEN, MAX_FILE_NAME_LEN,
    MAX_PROVISIONING_INFORMATION_LEN, MAX_VALIDITY_SECONDS, MAX_X509_DER_LEN, MIN_VALIDITY_SECONDS,
    ShareBody, ShareErrorCode, ShareId, ShareMessage, ShareMode, ShareOffer, X509Policy,
};
use crate::error::{Error, Result};

impl From<&ShareMessage> for wire::ShareMessage {
    fn from(message: &ShareMessage) -> Self {
        Self {
            share_id: message.share_id.as_bytes().to_vec(),
            sent_at_ms: message.sent_at_ms,
            body: Some(Body::from(&message.body)),
        }
    }
}

impl From<&ShareBody> for Body {
    fn from(body: &ShareBody) -> Self {
        match body {
            ShareBody::Offer(offer) => Body::Offer(offer.into()),
            ShareBody::Completed => Body::Completed(wire::ShareCompleted {}),
            ShareBody::KeySigningRequest {
                certificate_signing_request,
                requested_validity_seconds,
            } => Body::KeySigningRequest(wire::KeySigningRequest {
                certificate_signing_request: certificate_signing_request.clone(),
                requested_validity_seconds: *requested_validity_seconds,
            }),
            ShareBody::KeyImportRequest { certificate } => {
                Body::KeyImportRequest(wire::KeyImportRequest {
                    certificate: certificate.clone(),
                })
            }
            ShareBody::Declined => Body::Declined(wire::ShareDeclined {}),
            ShareBody::Cancelled => Body::Cancelled(wire::ShareCancelled {}),
            ShareBody::Error { code, message } => Body::Error(wire::ShareError {
                code: wire::ShareErrorCode::from(*code).into(),
                message: message.clone(),
            }),
            ShareBody::Claim { proof } => Body::Claim(wire::ShareClaim {
                proof: proof.to_vec(),
            }),
        }
    }
}

impl From<ShareErrorCode> for wire::ShareErrorCode {
    fn from(code: ShareErrorCode) -> Self {
        match code {
            ShareErrorCode::AlreadyClaimed => Self::AlreadyClaimed,
            ShareErrorCode::Expired => Self::Expired,
            ShareErrorCode::Cancelled => Self::Cancelled,
            ShareErrorCode::Rejected => Self::Rejected,
            ShareErrorCode::InvalidCertificate => Self::InvalidCertificate,
        }
    }
}

impl From<&ShareOffer> for wire::ShareOffer {
    fn from(offer: &ShareOffer) -> Self {
        let mode = match offer.mode {
            ShareMode::Stateless => wire::ShareMode::Stateless,
            ShareMode::Stateful => wire::ShareMode::Stateful,
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
            x509_policy: offer.x509_policy.as_ref().map(|policy| wire::X509Policy {
                ca_certificate: policy.ca_certificate.clone(),
                subject_common_name: policy.subject_common_name.clone(),
                max_validity_seconds: policy.max_validity_seconds,
            }),
        }
    }
}

impl TryFrom<wire::ShareMessage> for ShareMessage {
    type Error = Error;

    fn try_from(message: wire::ShareMessage) -> Result<Self> {
        let share_id = ShareId::from_slice(&message.share_id)?;
        let body = match message.body {
            Some(body) => ShareBody::try_from(body)?,
            None => return Err(invalid("body is missing or of an unknown kind")),
        };
        Ok(Self {
            share_id,
            sent_at_ms: message.sent_at_ms,
            body,
        })
    }
}

impl TryFrom<Body> for ShareBody {
    type Error = Error;

    fn try_from(body: Body) -> Result<Self> {
        Ok(match body {
            Body::Offer(offer) => Self::Offer(offer.try_into()?),
            Body::Completed(wire::ShareCompleted {}) => Self::Completed,
            Body::KeySigningRequest(request) => {
                check_der(
                    "key_signing_request.certificate_signing_request",
                    &request.certificate_signing_request,
                )?;
                check_validity(
                    "key_signing_request.requested_validity_seconds",
                    request.requested_validity_seconds,
                )?;
                Self::KeySigningRequest {
                    certificate_signing_request: request.certificate_signing_request,
                    requested_validity_seconds: request.requested_validity_seconds,
                }
            }
            Body::KeyImportRequest(request) => {
                check_der("key_import_request.certificate", &request.certificate)?;
                Self::KeyImportRequest {
                    certificate: request.certificate,
                }
            }
            Body::Declined(wire::ShareDeclined {}) => Self::Declined,
            Body::Cancelled(wire::ShareCancelled {}) => Self::Cancelled,
            Body::Error(error) => {
                check_text("error.message", &error.message, MAX_DISPLAY_TEXT_LEN)?;
                Self::Error {
                    code: error_code(error.code)?,
                    message: error.message,
                }
            }
            Body::Claim(claim) => {
                let proof = claim.proof.as_slice().try_into().map_err(|_| {
                    invalid(format!(
                        "claim.proof must be 32 bytes, got {}",
                        claim.proof.len()
                    ))
                })?;
                Self::Claim { proof }
            }
        })
    }
}

fn error_code(code: i32) -> Result<ShareErrorCode> {
    match wire::ShareErrorCode::try_from(code) {
        Ok(wire::ShareErrorCode::AlreadyClaimed) => Ok(ShareErrorCode::AlreadyClaimed),
        Ok(wire::ShareErrorCode::Expired) => Ok(ShareErrorCode::Expired),
        Ok(wire::ShareErrorCode::Cancelled) => Ok(ShareErrorCode::Cancelled),
        Ok(wire::ShareErrorCode::Rejected) => Ok(ShareErrorCode::Rejected),
        Ok(wire::ShareErrorCode::InvalidCertificate) => Ok(ShareErrorCode::InvalidCertificate),
        _ => Err(invalid(format!(
            "error.code {code} is not a known error code"
        ))),
    }
}

impl TryFrom<wire::ShareOffer> for ShareOffer {
    type Error = Error;

    fn try_from(offer: wire::ShareOffer) -> Result<Self> {
        let mode = match wire::ShareMode::try_from(offer.mode) {
            Ok(wire::ShareMode::Stateless) => ShareMode::Stateless,
            Ok(wire::ShareMode::Stateful) => ShareMode::Stateful,
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

        let x509_policy = match mode {
            ShareMode::Stateless => {
                check_stateless_payload(&offer.provisioning_information, display.size_bytes)?;
                if offer.x509_policy.is_some() {
                    return Err(invalid(
                        "offer.x509_policy must be absent in a stateless offer",
                    ));
                }
                None
            }
            ShareMode::Stateful => {
                if !offer.provisioning_information.is_empty() {
                    return Err(invalid(
                        "offer.provisioning_information must be empty in a stateful offer",
                    ));
                }
                let policy = offer
                    .x509_policy
                    .ok_or_else(|| invalid("offer.x509_policy is missing in a stateful offer"))?;
                Some(X509Policy::try_from(policy)?)
            }
        };

        Ok(Self {
            mode,
            display,
            provisioning_information: offer.provisioning_information,
            expires_at_ms: nonzero(offer.expires_at_ms),
            x509_policy,
        })
    }
}

fn check_stateless_payload(provisioning_information: &[u8], size_bytes: u64) -> Result<()> {
    let size = provisioning_information.len();
    if size == 0 {
        return Err(invalid("offer.provisioning_information is empty"));
    }
    if size > MAX_PROVISIONING_INFORMATION_LEN {
        return Err(invalid(format!(
            "offer.provisioning_information is {size} bytes, more than the maximum of {MAX_PROVISIONING_INFORMATION_LEN}"
        )));
    }
    if size_bytes != size as u64 {
        return Err(invalid(format!(
            "offer.display.size_bytes is {size_bytes} but the provisioning information is {size} bytes"
        )));
    }
    Ok(())
}

impl TryFrom<wire::X509Policy> for X509Policy {
    type Error = Error;

    fn try_from(policy: wire::X509Policy) -> Result<Self> {
        let policy = Self {
            ca_certificate: policy.ca_certificate,
            subject_common_name: policy.subject_common_name,
            max_validity_seconds: policy.max_validity_seconds,
        };
        policy.validate()?;
        Ok(policy)
    }
}

impl X509Policy {
    /// Checks the policy's fields: the CA certificate's size, the common name's length and
    /// characters, and the validity's range.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShareMessage`] naming the field and the rule.
    pub fn validate(&self) -> Result<()> {
        check_der("offer.x509_policy.ca_certificate", &self.ca_certificate)?;
        check_text(
            "offer.x509_policy.subject_common_name",
            &self.subject_common_name,
            MAX_COMMON_NAME_LEN,
        )?;
        if self.subject_common_name.is_empty() {
            return Err(invalid("offer.x509_policy.subject_common_name is empty"));
        }
        check_validity(
            "offer.x509_policy.max_validity_seconds",
            self.max_validity_seconds,
        )
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

/// Checks a text's length and that it has no control characters, which could rewrite a
/// terminal when the receiver lists its inbox.
pub(crate) fn check_text(field: &str, text: &str, max: usize) -> Result<()> {
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

fn check_der(field: &str, der: &[u8]) -> Result<()> {
    if der.is_empty() {
        return Err(invalid(format!("{field} is empty")));
    }
    if der.len() > MAX_X509_DER_LEN {
        return Err(invalid(format!(
            "{field} is {} bytes, more than the maximum of {MAX_X509_DER_LEN}",
            der.len()
        )));
    }
    Ok(())
}

fn check_validity(field: &str, seconds: u64) -> Result<()> {
    if !(MIN_VALIDITY_SECONDS..=MAX_VALIDITY_SECONDS).contains(&seconds) {
        return Err(invalid(format!(
            "{field} is {seconds}, outside {MIN_VALIDITY_SECONDS} to {MAX_VALIDITY_SECONDS} seconds"
        )));
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
