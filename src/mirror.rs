//! Mirror URLs, validated and normalised once, and the set of registry → mirrors a run wants.
//! Each target renders a [`Mirror`] in its own client's dialect.

use crate::error::UserError;
use crate::oci;
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

/// A validated mirror endpoint: scheme, lower-case host and optional non-default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub scheme: Scheme,
    /// Host name or IP; IPv6 literals keep their brackets.
    pub host: String,
    pub port: Option<u16>,
}

impl Mirror {
    /// Parse and normalise a mirror URL as users type it.
    pub fn parse(input: &str) -> Result<Mirror, UserError> {
        let s = input.trim();
        let bad = |why: &str| UserError(format!("mirror URL `{input}` {why}"));
        if !s.contains("://") {
            return Err(bad(&format!(
                "has no scheme: write `http://{s}` for a plain-HTTP mirror or `https://{s}`"
            )));
        }
        let url = url::Url::parse(s).map_err(|e| bad(&format!("is not a valid URL ({e})")))?;
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(bad(&format!("has scheme `{other}`; use http or https"))),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "contains credentials; clients do not read them from a mirror URL (configure registry auth instead)",
            ));
        }
        if url.query().is_some() {
            return Err(bad("has a query string, which no client accepts"));
        }
        if url.fragment().is_some() {
            return Err(bad("has a fragment, which no client accepts"));
        }
        if !matches!(url.path(), "" | "/") {
            return Err(bad(
                "has a path; dockerd, containerd, BuildKit and podman each read a mirror path differently (`/p/v2/…` vs `/v2/p/…`), so mirrorctl refuses rather than write a config that misroutes: give the mirror's root URL",
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            None => return Err(bad("has no host")),
        };
        Ok(Mirror {
            scheme,
            host,
            port: url.port(),
        })
    }

    pub fn is_http(&self) -> bool {
        self.scheme == Scheme::Http
    }

    /// `host[:port]`, as BuildKit, registries.conf and `insecure-registries` want it.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// `scheme://host[:port]`, as dockerd and containerd want it.
    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.host_port())
    }

    /// Parse a mirror as a client wrote it, leniently (for comparing with what is in a file).
    /// Returns `None` when the text is not a URL this tool could have written.
    pub fn parse_lenient(s: &str) -> Option<Mirror> {
        Mirror::parse(s).ok()
    }
}

impl fmt::Display for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

impl Serialize for Mirror {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The mirrors wanted for one registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryMirrors {
    pub registry: String,
    pub mirrors: Vec<Mirror>,
}

/// Everything an `arm` run wants, validated: registry → mirrors (in the order given, no
/// duplicates) and whether HTTPS mirrors skip TLS verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorSet {
    pub registries: Vec<RegistryMirrors>,
    pub insecure: bool,
}

impl MirrorSet {
    /// Build from `--mirror [REGISTRY=]URL` values and the default `--registry`.
    pub fn from_args(
        mirrors: &[String],
        default_registry: &str,
        insecure: bool,
    ) -> Result<MirrorSet, UserError> {
        let default_registry = oci::validate_registry(default_registry).map_err(UserError)?;
        if mirrors.is_empty() {
            return Err(UserError("give at least one `--mirror URL`".into()));
        }
        let mut registries: Vec<RegistryMirrors> = Vec::new();
        for m in mirrors {
            let (registry, url) = split_registry_prefix(m);
            let registry = match registry {
                Some(r) => oci::validate_registry(r).map_err(UserError)?,
                None => default_registry.clone(),
            };
            let mirror = Mirror::parse(url)?;
            let slot = match registries.iter_mut().position(|r| r.registry == registry) {
                Some(i) => &mut registries[i],
                None => {
                    registries.push(RegistryMirrors {
                        registry: registry.clone(),
                        mirrors: Vec::new(),
                    });
                    registries.last_mut().unwrap()
                }
            };
            if !slot.mirrors.contains(&mirror) {
                slot.mirrors.push(mirror);
            }
        }
        Ok(MirrorSet {
            registries,
            insecure,
        })
    }

    /// Every distinct mirror, in first-seen order.
    pub fn all_mirrors(&self) -> Vec<&Mirror> {
        let mut out: Vec<&Mirror> = Vec::new();
        for r in &self.registries {
            for m in &r.mirrors {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        out
    }

    pub fn for_registry(&self, registry: &str) -> Option<&RegistryMirrors> {
        self.registries.iter().find(|r| r.registry == registry)
    }

    /// Whether a client must treat this mirror as insecure (plain HTTP, or `--insecure`).
    pub fn needs_insecure(&self, m: &Mirror) -> bool {
        m.is_http() || self.insecure
    }
}

/// `ghcr.io=http://x:5000` → (`Some("ghcr.io")`, `http://x:5000`).
pub fn split_registry_prefix(arg: &str) -> (Option<&str>, &str) {
    match arg.split_once('=') {
        Some((r, u)) if !r.contains("://") && !r.is_empty() => (Some(r), u),
        _ => (None, arg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        let m = Mirror::parse("HTTP://Mirror.Example:5000/").unwrap();
        assert_eq!(m.url(), "http://mirror.example:5000");
        assert_eq!(m.host_port(), "mirror.example:5000");
        assert_eq!(Mirror::parse("https://m:443").unwrap().url(), "https://m");
        assert_eq!(
            Mirror::parse("http://[::1]:5000").unwrap().host_port(),
            "[::1]:5000"
        );
        assert_eq!(
            Mirror::parse(" https://m.example ").unwrap().url(),
            "https://m.example"
        );
    }

    #[test]
    fn refuses_what_clients_refuse() {
        for bad in [
            "mirror:5000",
            "ftp://m",
            "http://u:p@m",
            "http://m/?x=1",
            "http://m/#f",
            "http://m/prefix",
            "http://",
        ] {
            assert!(Mirror::parse(bad).is_err(), "{bad}");
        }
        let e = Mirror::parse("m.example:5000").unwrap_err().0;
        assert!(e.contains("http://m.example:5000"), "{e}");
    }

    #[test]
    fn sets_group_by_registry_and_dedupe() {
        let s = MirrorSet::from_args(
            &[
                "http://a:1".into(),
                "ghcr.io=http://b:2".into(),
                "http://a:1/".into(),
                "https://c".into(),
            ],
            "docker.io",
            false,
        )
        .unwrap();
        assert_eq!(s.registries.len(), 2);
        assert_eq!(s.registries[0].registry, "docker.io");
        assert_eq!(s.registries[0].mirrors.len(), 2);
        assert_eq!(s.registries[1].registry, "ghcr.io");
        assert_eq!(s.all_mirrors().len(), 3);
        assert!(MirrorSet::from_args(&[], "docker.io", false).is_err());
        assert!(MirrorSet::from_args(&["http://a".into()], "bad/registry", false).is_err());
    }
}
