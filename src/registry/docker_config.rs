//! Credentials for a registry from a docker client config (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), looked up the way the docker CLI does:
//!
//! 1. `credHelpers.<host>`: the per-registry credential helper (`docker-credential-<name>`),
//!    e.g. `ecr-login` for an ECR pull-through cache;
//! 2. `credsStore`: the helper for every registry (`desktop`, `pass`, `secretservice`, …);
//! 3. `auths.<host>`: `auth` (base64 `user:password`), or `username` + `password`, or
//!    `identitytoken`.
//!
//! A helper is run as `docker-credential-<name> get` with the server address on stdin and
//! answers `{"ServerURL", "Username", "Secret"}`; "credentials not found" means none. A user
//! name of `<token>` marks the secret as an identity (OAuth2 refresh) token, as with the CLI.
//! Docker Hub is stored under `https://index.docker.io/v1/`. Nothing here logs a secret.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The user name docker uses to mark an identity token.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

/// Credentials found for a registry, and where they came from (for messages; no secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Found {
    pub username: String,
    pub secret: String,
    pub source: String,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// The docker config file in effect.
pub fn config_path() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(|d| PathBuf::from(d).join("config.json"))
        .or_else(|| dirs::home_dir().map(|h| h.join(".docker/config.json")))
}

/// The key docker stores `host` under (`host[:port]`; Docker Hub's legacy URL).
fn server_key(host: &str) -> String {
    if crate::oci::canonical_registry(host) == crate::oci::DOCKER_HUB {
        "https://index.docker.io/v1/".into()
    } else {
        host.trim().trim_end_matches('/').to_ascii_lowercase()
    }
}

/// An `auths`/`credHelpers` key reduced to its host (`https://h:p/v1/` → `h:p`).
fn key_host(k: &str) -> String {
    let k = k.split_once("://").map(|(_, r)| r).unwrap_or(k);
    let k = k.split('/').next().unwrap_or(k);
    crate::oci::canonical_registry(k)
}

/// Credentials for `host` (`host[:port]`). `Err` when a helper is configured but fails (the
/// message names it); `Ok(None)` when there are none.
pub fn lookup(host: &str) -> Result<Option<Found>, String> {
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    lookup_in(&v, host, &path.display().to_string())
}

/// [`lookup`] on a parsed config (`file`: its path, for messages).
pub fn lookup_in(v: &serde_json::Value, host: &str, file: &str) -> Result<Option<Found>, String> {
    let want = crate::oci::canonical_registry(host);
    let helper = v["credHelpers"]
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| key_host(k) == want)
                .and_then(|(_, h)| h.as_str())
        })
        .or_else(|| v["credsStore"].as_str())
        .filter(|h| !h.is_empty());
    if let Some(h) = helper {
        match run_helper(h, &server_key(host)) {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => {}
            // A helper that cannot answer (say `credsStore: desktop` copied to a CI runner
            // without Docker Desktop): credentials in `auths` still count; else say why.
            Err(e) => return from_auths(v, &want, file)?.map(Some).ok_or(e),
        }
    }
    from_auths(v, &want, file)
}

fn from_auths(v: &serde_json::Value, want: &str, file: &str) -> Result<Option<Found>, String> {
    use base64::Engine;
    let Some(auths) = v["auths"].as_object() else {
        return Ok(None);
    };
    let Some((_, e)) = auths.iter().find(|(k, _)| key_host(k) == want) else {
        return Ok(None);
    };
    let source = format!("{file} (auths)");
    if let Some(t) = e["identitytoken"].as_str().filter(|t| !t.is_empty()) {
        return Ok(Some(Found {
            username: IDENTITY_TOKEN_USER.into(),
            secret: t.into(),
            source,
        }));
    }
    if let Some(raw) = e["auth"].as_str().filter(|a| !a.is_empty()) {
        let dec = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| format!("{file}: the `auth` of {want} is not base64"))?;
        let text = String::from_utf8(dec)
            .map_err(|_| format!("{file}: the `auth` of {want} is not UTF-8"))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| format!("{file}: the `auth` of {want} is not `user:password`"))?;
        return Ok(Some(Found {
            username: u.into(),
            secret: p.into(),
            source,
        }));
    }
    match (e["username"].as_str(), e["password"].as_str()) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Found {
            username: u.into(),
            secret: p.into(),
            source,
        })),
        _ => Ok(None),
    }
}

/// How long a helper may take (a keychain prompt would otherwise hang `verify`).
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// `docker-credential-<name> get` for `server`.
fn run_helper(name: &str, server: &str) -> Result<Option<Found>, String> {
    let bin = format!("docker-credential-{name}");
    let mut c = Command::new(&bin);
    c.arg("get");
    let out = crate::process::run(c, Some(server.as_bytes()), HELPER_TIMEOUT)
        .map_err(|e| format!("the docker config names the credential helper `{name}`: {e}"))?;
    let stdout = &out.stdout;
    if !out.status.success() {
        let said = format!("{stdout} {}", out.stderr);
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!(
            "the credential helper `{bin} get` failed for {server} ({}): {}",
            out.status,
            said.trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_str(stdout.trim())
        .map_err(|_| format!("the credential helper `{bin}` did not answer with JSON"))?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default();
    let (username, secret) = (field("Username"), field("Secret"));
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Found {
        username: username.into(),
        secret: secret.into(),
        source: format!("credential helper {bin}"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_forms_and_hub_key() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                "m.lan:5000": {"username": "u", "password": "p"},
                "https://acr.example/": {"identitytoken": "rt"},
                "empty.example": {}
            }}"#,
        )
        .unwrap();
        let f = lookup_in(&v, "registry-1.docker.io", "cfg")
            .unwrap()
            .unwrap();
        assert_eq!((f.username.as_str(), f.secret.as_str()), ("hub", "secret"));
        let f = lookup_in(&v, "M.LAN:5000", "cfg").unwrap().unwrap();
        assert_eq!((f.username.as_str(), f.secret.as_str()), ("u", "p"));
        let f = lookup_in(&v, "acr.example", "cfg").unwrap().unwrap();
        assert_eq!(f.username, IDENTITY_TOKEN_USER);
        assert!(lookup_in(&v, "empty.example", "cfg").unwrap().is_none());
        assert!(lookup_in(&v, "other", "cfg").unwrap().is_none());
        assert!(!format!("{f:?}").contains("rt\""), "{f:?}");
    }

    #[test]
    fn a_missing_helper_is_an_error_naming_it() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"credHelpers": {"m.lan:5000": "nosuch-mirrorctl-test"}}"#)
                .unwrap();
        let e = lookup_in(&v, "m.lan:5000", "cfg").unwrap_err();
        assert!(e.contains("docker-credential-nosuch-mirrorctl-test"), "{e}");
        // Another registry does not use that helper.
        assert!(lookup_in(&v, "other:1", "cfg").unwrap().is_none());
        // With the same credentials in `auths`, those are used.
        let v: serde_json::Value = serde_json::from_str(
            r#"{"credsStore": "nosuch-mirrorctl-test", "auths": {"m.lan:5000": {"auth": "dTpw"}}}"#,
        )
        .unwrap();
        let f = lookup_in(&v, "m.lan:5000", "cfg").unwrap().unwrap();
        assert_eq!((f.username.as_str(), f.secret.as_str()), ("u", "p"));
        assert!(lookup_in(&v, "other:1", "cfg").is_err());
    }
}
