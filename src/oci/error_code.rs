//! The error codes of the distribution spec's `{"errors":[{code,message,detail}]}` bodies, and
//! the HTTP status each goes with.

use std::fmt;

/// An OCI distribution error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    BlobUnknown,
    DigestInvalid,
    ManifestUnknown,
    ManifestInvalid,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// Not in the spec, but what distribution answers for a bad tag.
    TagInvalid,
    /// A `Range` the blob cannot satisfy.
    RangeInvalid,
    /// The cache's upstream cannot be reached.
    Unavailable,
    Unknown,
    /// Any other code a registry sent.
    Other(String),
}

impl ErrorCode {
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::TagInvalid => "TAG_INVALID",
            ErrorCode::RangeInvalid => "RANGE_INVALID",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Unknown => "UNKNOWN",
            ErrorCode::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> ErrorCode {
        [
            ErrorCode::BlobUnknown,
            ErrorCode::DigestInvalid,
            ErrorCode::ManifestUnknown,
            ErrorCode::ManifestInvalid,
            ErrorCode::NameInvalid,
            ErrorCode::NameUnknown,
            ErrorCode::SizeInvalid,
            ErrorCode::Unauthorized,
            ErrorCode::Denied,
            ErrorCode::Unsupported,
            ErrorCode::TooManyRequests,
            ErrorCode::TagInvalid,
            ErrorCode::RangeInvalid,
            ErrorCode::Unavailable,
            ErrorCode::Unknown,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
        .unwrap_or_else(|| ErrorCode::Other(s.to_string()))
    }

    /// The HTTP status a registry answers with this code.
    pub fn status(&self) -> u16 {
        match self {
            ErrorCode::BlobUnknown | ErrorCode::ManifestUnknown | ErrorCode::NameUnknown => 404,
            ErrorCode::DigestInvalid
            | ErrorCode::ManifestInvalid
            | ErrorCode::NameInvalid
            | ErrorCode::SizeInvalid
            | ErrorCode::TagInvalid => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Denied => 403,
            ErrorCode::Unsupported => 405,
            ErrorCode::RangeInvalid => 416,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Unavailable => 502,
            ErrorCode::Unknown | ErrorCode::Other(_) => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `errors[0]` of an OCI error body: its code and message.
pub fn parse_error_body(body: &[u8]) -> Option<(ErrorCode, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let e = v.get("errors")?.as_array()?.first()?;
    Some((
        ErrorCode::parse(e.get("code").and_then(|c| c.as_str()).unwrap_or("")),
        e.get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("")
            .to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_map_to_statuses() {
        for c in [
            "BLOB_UNKNOWN",
            "NAME_UNKNOWN",
            "TOOMANYREQUESTS",
            "UNAVAILABLE",
        ] {
            assert_eq!(ErrorCode::parse(c).as_str(), c);
        }
        assert_eq!(ErrorCode::parse("NAME_UNKNOWN").status(), 404);
        assert_eq!(
            ErrorCode::parse("WHATEVER"),
            ErrorCode::Other("WHATEVER".into())
        );
        assert_eq!(ErrorCode::RangeInvalid.status(), 416);
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        assert_eq!(
            parse_error_body(body),
            Some((ErrorCode::ManifestUnknown, "manifest unknown".into()))
        );
        assert_eq!(parse_error_body(b"{}"), None);
        assert_eq!(parse_error_body(b"<html>"), None);
    }
}
