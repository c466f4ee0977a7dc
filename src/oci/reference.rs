//! Image references (`alpine`, `ghcr.io/o/r:tag`, `name@sha256:…`) normalised the way docker
//! does it, and the repository-name grammar of the distribution spec.

use super::{Digest, DOCKER_HUB};
use std::fmt;
use std::str::FromStr;

/// A fully qualified image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Canonical registry (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path inside the registry (`library/alpine`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceError(pub String);

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReferenceError {}

impl Reference {
    /// What to ask the registry for: the digest when pinned, else the tag (default `latest`).
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| ReferenceError(format!("image reference `{s}` {why}"));
        if s.is_empty() || s.trim() != s {
            return Err(err("is empty or has surrounding spaces"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(
                    d.parse::<Digest>()
                        .map_err(|e| err(&format!("has a bad digest: {e}")))?,
                ),
            ),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(err("has an invalid tag"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                let reg = super::validate_registry(first)
                    .map_err(|e| err(&format!("has a bad registry: {e}")))?;
                (reg, path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !valid_repository(&repository) {
            return Err(err("has an invalid repository name (lower-case letters, digits, and `._-/` separators)"));
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// A repository name per the distribution spec:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255 bytes.
pub fn valid_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    if !is_alnum(first) || !is_alnum(last) {
        return false;
    }
    // Between the alphanumeric runs, each separator run is `.`, `_`, `__`, or one or more `-`.
    c.split(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        .filter(|sep| !sep.is_empty())
        .all(|sep| sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-'))
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.first()
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap()
    }

    #[test]
    fn docker_hub_normalisation() {
        assert_eq!(r("alpine").to_string(), "docker.io/library/alpine");
        assert_eq!(r("alpine").reference(), "latest");
        assert_eq!(
            r("alpine:3.20").to_string(),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(r("user/app:1").repository, "user/app");
        assert_eq!(r("index.docker.io/library/alpine").registry, "docker.io");
        assert_eq!(r("docker.io/alpine").repository, "library/alpine");
    }

    #[test]
    fn other_registries_and_digests() {
        let x = r("localhost:5000/a/b/c:tag@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(x.registry, "localhost:5000");
        assert_eq!(x.repository, "a/b/c");
        assert_eq!(x.tag.as_deref(), Some("tag"));
        assert!(x.reference().starts_with("sha256:"));
        assert_eq!(r("ghcr.io/o/r").registry, "ghcr.io");
        assert_eq!(r("127.0.0.1:5000/probe:latest").repository, "probe");
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "UPPER",
            "a//b",
            "a/../b",
            "a:b:c/d",
            "x@sha256:zz",
            "a:-tag",
            " alpine",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
        assert!(valid_repository("library/alpine"));
        assert!(valid_repository("a__b/c-d--e.f"));
        assert!(!valid_repository("a___b"));
        assert!(!valid_repository("a/"));
        assert!(!valid_repository(".."));
        assert!(!valid_repository("a..b"));
        assert!(!valid_repository("a._b"));
        assert!(!valid_repository("a-_b"));
        assert!(!valid_repository("-a"));
        assert!(!valid_repository("a-"));
        assert!(!valid_repository("Alpine"));
        assert!(!valid_repository("a//b"));
        assert!(valid_repository("a_b.c-d/0"));
    }
}
