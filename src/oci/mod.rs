//! OCI vocabulary shared by the config editors, the registry client (`verify`) and the cache
//! server (`serve`): registry host names, image references, digests, media types, platforms and
//! `WWW-Authenticate` challenges, OCI error codes and RFC 9211 `Cache-Status`.

mod auth;
pub mod cache_status;
mod digest;
mod error_code;
pub mod manifest;
mod reference;

pub use auth::{AuthChallenge, AuthScheme};
pub use cache_status::{CacheStatus, Fwd};
pub use digest::{Algorithm, Digest, DigestError, Verifier};
pub use error_code::{parse_error_body, ErrorCode};
pub use reference::{valid_repository, valid_tag, Reference, ReferenceError};

/// The canonical name of Docker Hub, as every client writes it in its config.
pub const DOCKER_HUB: &str = "docker.io";

/// Host names that all mean Docker Hub.
const DOCKER_HUB_ALIASES: &[&str] = &[
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// Canonical registry name: lower-case, Docker Hub aliases folded to `docker.io`.
pub fn canonical_registry(host: &str) -> String {
    let h = host.trim().trim_end_matches('/').to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&h.as_str()) {
        DOCKER_HUB.to_string()
    } else {
        h
    }
}

/// Validate a registry name as users pass it to `--registry` (`host[:port]`, no scheme, no path).
pub fn validate_registry(host: &str) -> Result<String, String> {
    let h = host.trim();
    if h.is_empty() {
        return Err("registry name is empty".into());
    }
    if h.contains("://") {
        return Err(format!(
            "registry `{h}` must be a host name such as `ghcr.io`, without a scheme"
        ));
    }
    if h.contains('/') || h.contains('?') || h.contains('#') || h.contains('@') {
        return Err(format!(
            "registry `{h}` must be `host` or `host:port`, without a path"
        ));
    }
    let (name, port) = split_host_port(h);
    if let Some(p) = port {
        // Digits only: `u16::from_str` also takes a leading `+`.
        if !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return Err(format!("registry `{h}` has an invalid port `{p}`"));
        }
    }
    let ok = if name.starts_with('[') {
        name.ends_with(']')
            && name[1..name.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok()
    } else {
        !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    if !ok {
        return Err(format!("registry `{h}` is not a valid host name"));
    }
    Ok(canonical_registry(h))
}

/// Split `host:port` (IPv6 literals in brackets) into host and optional port.
pub fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        if let Some(end) = s.find(']') {
            let rest = &s[end + 1..];
            return (&s[..=end], rest.strip_prefix(':'));
        }
        return (s, None);
    }
    match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    }
}

/// The real endpoint a registry name resolves to (what containerd calls `server`).
pub fn upstream_endpoint(registry: &str) -> String {
    let r = canonical_registry(registry);
    if r == DOCKER_HUB {
        "https://registry-1.docker.io".to_string()
    } else {
        format!("https://{r}")
    }
}

/// The host names a registry's pulls touch, for blocking the upstream in `verify`.
pub fn upstream_hosts(registry: &str) -> Vec<String> {
    let r = canonical_registry(registry);
    if r == DOCKER_HUB {
        [
            "registry-1.docker.io",
            "auth.docker.io",
            "index.docker.io",
            "production.cloudflare.docker.com",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    } else {
        let (h, _) = split_host_port(&r);
        vec![h.to_string()]
    }
}

/// Media types a registry client accepts for manifests, most specific first.
pub mod media {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

    /// Every manifest type, for `Accept`.
    pub const MANIFEST_ACCEPT: &[&str] = &[OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

    /// The `Accept` header value that asks for any manifest kind.
    pub fn accept_header() -> String {
        MANIFEST_ACCEPT.join(", ")
    }

    pub fn is_index(mt: &str) -> bool {
        let mt = base(mt);
        mt == OCI_INDEX || mt == DOCKER_LIST
    }

    pub fn is_manifest(mt: &str) -> bool {
        let mt = base(mt);
        mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
    }

    /// The media type without parameters (`; charset=…`).
    pub fn base(mt: &str) -> &str {
        mt.split(';').next().unwrap_or("").trim()
    }
}

/// An `os/arch[/variant]` platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad =
            || format!("platform `{s}` must be `os/arch` or `os/arch/variant`, e.g. `linux/amd64`");
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let (os, arch, variant) = match parts[..] {
            [os, arch] => (os, arch, None),
            [os, arch, variant] => (os, arch, Some(variant)),
            _ => return Err(bad()),
        };
        Ok(Platform {
            os: os.to_ascii_lowercase(),
            architecture: normalize_arch(arch),
            variant: variant.map(str::to_ascii_lowercase),
        })
    }

    /// The platform of this machine, in OCI spelling.
    pub fn host() -> Platform {
        let architecture = normalize_arch(std::env::consts::ARCH);
        let variant = (architecture == "arm64").then(|| "v8".to_string());
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture,
            variant,
        }
    }

    /// Whether an index entry's platform fits this one (a missing variant matches any).
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != normalize_arch(arch) {
            return false;
        }
        match (&self.variant, variant) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> String {
    match a.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "i386" | "i686" | "x86" => "386".into(),
        "armhf" | "armv7l" => "arm".into(),
        other => other.into(),
    }
}

/// Render the OCI distribution error body `{"errors":[{code,message,detail}]}`.
pub fn error_body(code: &ErrorCode, message: &str, detail: Option<serde_json::Value>) -> String {
    let mut e = serde_json::Map::new();
    e.insert("code".into(), code.as_str().into());
    e.insert("message".into(), message.into());
    if let Some(d) = detail {
        e.insert("detail".into(), d);
    }
    serde_json::json!({ "errors": [serde_json::Value::Object(e)] }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_fold_docker_hub_aliases() {
        assert_eq!(canonical_registry("Index.Docker.io"), "docker.io");
        assert_eq!(canonical_registry("registry-1.docker.io"), "docker.io");
        assert_eq!(canonical_registry("ghcr.io"), "ghcr.io");
        assert_eq!(
            upstream_endpoint("docker.io"),
            "https://registry-1.docker.io"
        );
        assert_eq!(upstream_endpoint("quay.io"), "https://quay.io");
    }

    #[test]
    fn registry_validation() {
        assert_eq!(validate_registry("GHCR.io").unwrap(), "ghcr.io");
        assert_eq!(
            validate_registry("localhost:5000").unwrap(),
            "localhost:5000"
        );
        assert_eq!(validate_registry("[::1]:5000").unwrap(), "[::1]:5000");
        assert!(validate_registry("https://ghcr.io").is_err());
        assert!(validate_registry("ghcr.io/foo").is_err());
        assert!(validate_registry("ghcr.io:99999").is_err());
        // Found by the fuzz harness: `+5` parsed as a u16 and came back as `a:+5`.
        assert!(validate_registry("a:+5").is_err());
        assert!(validate_registry("a:").is_err());
        assert!("a.b:+5000/x".parse::<Reference>().is_err());
        assert!(validate_registry("-bad.io").is_err());
        assert!(validate_registry("").is_err());
    }

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(p.matches("linux", "aarch64", None));
        assert!(!p.matches("linux", "amd64", None));
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//").is_err());
    }

    #[test]
    fn error_bodies_are_oci_json() {
        let b = error_body(&ErrorCode::BlobUnknown, "blob unknown", None);
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
    }
}
