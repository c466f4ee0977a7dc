//! Parsing `/v2/<name>/…` paths into typed requests (the only way a path reaches the handlers)
//! and `Range` headers.

use crate::oci::{valid_repository, valid_tag, Digest, ErrorCode};

#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Manifest {
        repo: String,
        reference: ManifestRef,
    },
    Blob {
        repo: String,
        digest: Digest,
    },
    Tags {
        repo: String,
    },
    /// Push endpoints (`blobs/uploads/…`): refused with 405.
    Upload,
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub enum ManifestRef {
    Tag(String),
    Digest(Digest),
}

impl std::fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestRef::Tag(t) => f.write_str(t),
            ManifestRef::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// Why a path was refused: (OCI error code, which gives the HTTP status, message).
pub type Refusal = (ErrorCode, String);

/// Parse the part after `/v2/`.
pub fn parse(rest: &str) -> Result<Target, Refusal> {
    let name_err = |n: &str| {
        (
            ErrorCode::NameInvalid,
            format!("invalid repository name `{n}`"),
        )
    };
    if let Some((repo, _)) = rest.split_once("/blobs/uploads") {
        if valid_repository(repo) {
            return Ok(Target::Upload);
        }
        return Err(name_err(repo));
    }
    if let Some(repo) = rest.strip_suffix("/tags/list") {
        return if valid_repository(repo) {
            Ok(Target::Tags { repo: repo.into() })
        } else {
            Err(name_err(repo))
        };
    }
    if let Some((repo, r)) = rest.rsplit_once("/manifests/") {
        if !valid_repository(repo) {
            return Err(name_err(repo));
        }
        let reference = if r.contains(':') {
            ManifestRef::Digest(
                r.parse()
                    .map_err(|e: crate::oci::DigestError| (ErrorCode::DigestInvalid, e.0))?,
            )
        } else if valid_tag(r) {
            ManifestRef::Tag(r.into())
        } else {
            return Err((ErrorCode::TagInvalid, format!("invalid tag `{r}`")));
        };
        return Ok(Target::Manifest {
            repo: repo.into(),
            reference,
        });
    }
    if let Some((repo, d)) = rest.rsplit_once("/blobs/") {
        if !valid_repository(repo) {
            return Err(name_err(repo));
        }
        let digest = d
            .parse()
            .map_err(|e: crate::oci::DigestError| (ErrorCode::DigestInvalid, e.0))?;
        return Ok(Target::Blob {
            repo: repo.into(),
            digest,
        });
    }
    Err((
        ErrorCode::NameUnknown,
        format!("no such endpoint `/v2/{rest}`"),
    ))
}

#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// A single `bytes=` range resolved against `size`: `Ok(None)` = no (usable) Range, serve all;
/// `Err(Unsatisfiable)` = 416.
pub fn range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    /// A position or length: decimal digits (RFC 9110 `1*DIGIT`). One too big for u64 is still
    /// well-formed and saturates: as a last position or suffix length it reaches past any body.
    fn digits(s: &str) -> Result<u64, Unsatisfiable> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Unsatisfiable);
        }
        Ok(s.parse().unwrap_or(u64::MAX))
    }
    let Some(h) = header else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multipart ranges: serve the whole body, which is allowed
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (start, end) = if a.is_empty() {
        let n = digits(b)?;
        if n == 0 {
            return Err(Unsatisfiable);
        }
        (size.saturating_sub(n), size)
    } else {
        let s = digits(a)?;
        let e = if b.is_empty() {
            size
        } else {
            digits(b)?.saturating_add(1).min(size)
        };
        (s, e)
    };
    if start >= size || start >= end {
        return Err(Unsatisfiable);
    }
    Ok(Some((start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn paths() {
        assert_eq!(
            parse("library/probe/manifests/latest").unwrap(),
            Target::Manifest {
                repo: "library/probe".into(),
                reference: ManifestRef::Tag("latest".into())
            }
        );
        assert!(matches!(
            parse(&format!("a/b/c/manifests/{D}")).unwrap(),
            Target::Manifest {
                reference: ManifestRef::Digest(_),
                ..
            }
        ));
        assert!(matches!(
            parse(&format!("x/blobs/{D}")).unwrap(),
            Target::Blob { .. }
        ));
        assert_eq!(
            parse("x/y/tags/list").unwrap(),
            Target::Tags { repo: "x/y".into() }
        );
        assert_eq!(parse("x/blobs/uploads/").unwrap(), Target::Upload);
        // A repository may be called `manifests` or `blobs`.
        assert!(matches!(
            parse("blobs/manifests/v1").unwrap(),
            Target::Manifest { .. }
        ));
        for bad in [
            "../etc/manifests/latest",
            "a/../b/manifests/latest",
            "A/manifests/latest",
            "x/manifests/-bad",
            "x/manifests/sha256:abc",
            "x/blobs/md5:d41d8cd98f00b204e9800998ecf8427e",
            "x/blobs/sha256:../../../../etc/passwd",
            "x/something",
            "%2e%2e/manifests/latest",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(range(None, 10), Ok(None));
        assert_eq!(range(Some("bytes=0-4"), 10), Ok(Some((0, 5))));
        assert_eq!(range(Some("bytes=5-"), 10), Ok(Some((5, 10))));
        assert_eq!(range(Some("bytes=-3"), 10), Ok(Some((7, 10))));
        assert_eq!(range(Some("bytes=8-100"), 10), Ok(Some((8, 10))));
        assert_eq!(range(Some("bytes=10-"), 10), Err(Unsatisfiable));
        assert_eq!(range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(range(Some("items=0-1"), 10), Ok(None));
        // Found by the fuzz harness: well-formed numbers past u64 were refused (416).
        assert_eq!(
            range(Some("bytes=0-18446744073709551616"), 10),
            Ok(Some((0, 10)))
        );
        assert_eq!(
            range(Some("bytes=-99999999999999999999999"), 10),
            Ok(Some((0, 10)))
        );
        assert_eq!(
            range(Some("bytes=18446744073709551616-"), 10),
            Err(Unsatisfiable)
        );
        assert_eq!(range(Some("bytes=+1-2"), 10), Err(Unsatisfiable));
    }
}
