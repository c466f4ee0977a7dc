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

/// A validated mirror endpoint: scheme, lower-case host, optional non-default port and an
/// optional project path (a Harbor proxy-cache project, served under `/v2/<project>/…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub scheme: Scheme,
    /// Host name or IP; IPv6 literals keep their brackets.
    pub host: String,
    pub port: Option<u16>,
    /// The project a registry serves the mirror under (`dh` for `https://h/dh`, which pulls
    /// from `https://h/v2/dh/<repo>/…`): slash-separated repository-name components, no
    /// leading or trailing slash.
    pub path: Option<String>,
}

/// What a command accepts in a mirror URL beyond `scheme://host[:port][/]`. One parser serves
/// every command; each says what it tolerates:
///
/// | command | credentials in the URL | a `/v2` or `/v2/` path |
/// |---|---|---|
/// | `arm` | refused (no client reads them from a mirror URL) | refused |
/// | `verify --mirror` | used as `--username`/password | accepted, dropped |
/// | `serve --upstream`, `verify --upstream` | refused (they have their own flags) | accepted, dropped |
///
/// Every command takes a project path (`https://h/<project>`, or containerd's and k3s's
/// spelling `https://h/v2/<project>`, normalised to the same mirror), and refuses other
/// paths, queries and fragments, and schemes other than http(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub credentials: bool,
    pub v2_path: bool,
}

impl Rules {
    /// `arm`: exactly what every client can be given.
    pub const ARM: Rules = Rules {
        credentials: false,
        v2_path: false,
    };
    /// `verify --mirror`: a URL copied from a registry UI or a `curl` line works.
    pub const VERIFY: Rules = Rules {
        credentials: true,
        v2_path: true,
    };
    /// `serve --upstream`, `verify --upstream`: credentials have their own flags.
    pub const UPSTREAM: Rules = Rules {
        credentials: false,
        v2_path: true,
    };
}

/// User name and password given in a URL (`https://user:pass@host`). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlCredentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for UrlCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Mirror {
    /// Parse and normalise a mirror URL as `arm` takes it ([`Rules::ARM`]).
    pub fn parse(input: &str) -> Result<Mirror, UserError> {
        Mirror::parse_with(input, Rules::ARM).map(|(m, _)| m)
    }

    /// Parse and normalise a mirror URL under `rules`; returns the credentials it held when the
    /// rules accept them.
    pub fn parse_with(
        input: &str,
        rules: Rules,
    ) -> Result<(Mirror, Option<UrlCredentials>), UserError> {
        let s = input.trim();
        // Never echo a password back: the message shows the URL without its userinfo.
        let shown = redact(s);
        let bad = |why: &str| UserError(format!("mirror URL `{shown}` {why}"));
        if !s.contains("://") {
            return Err(bad(&format!(
                "has no scheme: write `http://{shown}` for a plain-HTTP mirror or `https://{shown}`"
            )));
        }
        let url = url::Url::parse(s).map_err(|e| bad(&format!("is not a valid URL ({e})")))?;
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(bad(&format!("has scheme `{other}`; use http or https"))),
        };
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else if rules.credentials {
            let dec = |p: &str| {
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            Some(UrlCredentials {
                username: dec(url.username()),
                password: dec(url.password().unwrap_or("")),
            })
        } else {
            return Err(bad(
                "contains credentials; clients do not read them from a mirror URL (configure registry auth instead)",
            ));
        };
        if url.query().is_some() {
            return Err(bad("has a query string, which no client accepts"));
        }
        if url.fragment().is_some() {
            return Err(bad("has a fragment, which no client accepts"));
        }
        let path = project_path(url.path(), rules).map_err(|why| bad(&why))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            None => return Err(bad("has no host")),
        };
        Ok((
            Mirror {
                scheme,
                host,
                port: url.port(),
                path,
            },
            credentials,
        ))
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

    /// `scheme://host[:port]`, without the project path: where `GET /v2/` is answered.
    pub fn origin(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.host_port())
    }

    /// `scheme://host[:port][/project]`, as dockerd wants a path-less mirror and as mirrorctl
    /// shows every mirror.
    pub fn url(&self) -> String {
        match &self.path {
            Some(p) => format!("{}/{p}", self.origin()),
            None => self.origin(),
        }
    }

    /// `scheme://host[:port][/v2/project]`: the containerd `[host."…"]` key (with
    /// `override_path = true` when there is a project) and the k3s `endpoint`.
    pub fn v2_url(&self) -> String {
        match &self.path {
            Some(p) => format!("{}/v2/{p}", self.origin()),
            None => self.origin(),
        }
    }

    /// `host[:port][/project]`: a BuildKit `mirrors` entry (BuildKit ≥ 0.12 for a project)
    /// and a registries.conf mirror `location`.
    pub fn location(&self) -> String {
        match &self.path {
            Some(p) => format!("{}/{p}", self.host_port()),
            None => self.host_port(),
        }
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

/// The project path of a mirror URL's `path` under `rules`: `None` for the root (and for a
/// bare `/v2` where the rules take it), the project for `/<project>` and `/v2/<project>`.
fn project_path(path: &str, rules: Rules) -> Result<Option<String>, String> {
    if matches!(path, "" | "/") {
        return Ok(None);
    }
    if matches!(path, "/v2" | "/v2/") {
        return match rules.v2_path {
            true => Ok(None),
            false => Err("ends in `/v2`, which clients add themselves: give the mirror's root URL (or `…/<project>` for a Harbor proxy-cache project)".into()),
        };
    }
    let p = path.strip_prefix('/').unwrap_or(path);
    let p = p.strip_suffix('/').unwrap_or(p);
    let p = p.strip_prefix("v2/").unwrap_or(p);
    if p == "v2" || p.ends_with("/v2") {
        return Err(format!(
            "has the path `{path}`, a prefix before `/v2` (dockerd's layout), which mirrorctl does not write: no other client reads it. A registry serving a project under `/v2/<project>/…` (a Harbor proxy cache) is given as `https://host/<project>`"
        ));
    }
    if !oci::valid_repository(p) {
        return Err(format!(
            "has the path `{path}`, which is not a project name: a mirror path names the project a registry serves the mirror under (`https://harbor.example.com/<project>`, pulled from `/v2/<project>/…`), in lower-case letters, digits and `.`, `_`, `-` separators"
        ));
    }
    Ok(Some(p.to_string()))
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

/// One `--mirror [REGISTRY=]URL` (or `--upstream [REGISTRY=]URL`) value: the registry it is
/// for (`None`: the command's default) and the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorArg {
    pub registry: Option<String>,
    pub mirror: Mirror,
    pub credentials: Option<UrlCredentials>,
}

impl MirrorArg {
    /// Parse `[REGISTRY=]URL` under `rules`: the registry before `=` is validated (and folded,
    /// `index.docker.io` → `docker.io`); an empty one is refused.
    pub fn parse(arg: &str, rules: Rules) -> Result<MirrorArg, UserError> {
        let (registry, url) = split_registry_prefix(arg)?;
        let registry = registry
            .map(oci::validate_registry)
            .transpose()
            .map_err(|e| UserError(format!("`{}`: {e}", redact(arg))))?;
        let (mirror, credentials) = Mirror::parse_with(url, rules)?;
        Ok(MirrorArg {
            registry,
            mirror,
            credentials,
        })
    }

    /// clap value parser for `arm --mirror`.
    pub fn arm(arg: &str) -> Result<MirrorArg, UserError> {
        MirrorArg::parse(arg, Rules::ARM)
    }

    /// clap value parser for `serve --upstream`.
    pub fn upstream(arg: &str) -> Result<MirrorArg, UserError> {
        MirrorArg::parse(arg, Rules::UPSTREAM)
    }
}

/// clap value parser for a URL without a `REGISTRY=` prefix under [`Rules::VERIFY`].
pub fn verify_mirror(arg: &str) -> Result<(Mirror, Option<UrlCredentials>), UserError> {
    Mirror::parse_with(arg, Rules::VERIFY)
}

/// clap value parser for `verify --upstream` (no prefix, [`Rules::UPSTREAM`]).
pub fn upstream_url(arg: &str) -> Result<Mirror, UserError> {
    Mirror::parse_with(arg, Rules::UPSTREAM).map(|(m, _)| m)
}

/// clap value parser for `--registry HOST`.
pub fn registry_name(arg: &str) -> Result<String, UserError> {
    oci::validate_registry(arg).map_err(UserError)
}

impl MirrorSet {
    /// Build from `--mirror [REGISTRY=]URL` values (unparsed) and the default `--registry`.
    pub fn from_args(
        mirrors: &[String],
        default_registry: &str,
        insecure: bool,
    ) -> Result<MirrorSet, UserError> {
        let parsed = mirrors
            .iter()
            .map(|m| MirrorArg::arm(m))
            .collect::<Result<Vec<_>, _>>()?;
        MirrorSet::new(&parsed, default_registry, insecure)
    }

    /// Build from parsed `--mirror` values: grouped by registry (in first-seen order), each
    /// registry's mirrors in the order given, duplicates dropped.
    pub fn new(
        mirrors: &[MirrorArg],
        default_registry: &str,
        insecure: bool,
    ) -> Result<MirrorSet, UserError> {
        let default_registry = oci::validate_registry(default_registry).map_err(UserError)?;
        if mirrors.is_empty() {
            return Err(UserError("give at least one `--mirror URL`".into()));
        }
        let mut registries: Vec<RegistryMirrors> = Vec::new();
        for m in mirrors {
            let registry = m.registry.as_deref().unwrap_or(&default_registry);
            let i = match registries.iter().position(|r| r.registry == registry) {
                Some(i) => i,
                None => {
                    registries.push(RegistryMirrors {
                        registry: registry.to_string(),
                        mirrors: Vec::new(),
                    });
                    registries.len() - 1
                }
            };
            if let Some(slot) = registries.get_mut(i) {
                if !slot.mirrors.contains(&m.mirror) {
                    slot.mirrors.push(m.mirror.clone());
                }
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

/// `ghcr.io=http://x:5000` → (`Some("ghcr.io")`, `http://x:5000`); a URL alone → (`None`, URL).
/// The prefix is what comes before the first `=` when that part holds no `://` (a password in
/// a URL may contain `=`). An empty prefix (`=http://x`) is refused.
pub fn split_registry_prefix(arg: &str) -> Result<(Option<&str>, &str), UserError> {
    match arg.split_once('=') {
        Some((r, _)) if r.contains("://") => Ok((None, arg)),
        Some((r, u)) if r.trim().is_empty() => Err(UserError(format!(
            "`{}`: the registry before `=` is empty; write `REGISTRY=URL` (e.g. `ghcr.io={}`) or the URL alone",
            redact(arg),
            redact(u)
        ))),
        Some((r, u)) => Ok((Some(r.trim()), u)),
        None => Ok((None, arg)),
    }
}

/// A URL for messages: its userinfo (`user:password@`) replaced by `…@`.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://…@{host}{path}"),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
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
            "http://m/Prefix",
            "http://m/a//b",
            "http://m//a",
            "http://m/p%20q",
            "http://m/dh/v2",
            "http://m/v2",
            "http://",
        ] {
            assert!(Mirror::parse(bad).is_err(), "{bad}");
        }
        let e = Mirror::parse("m.example:5000").unwrap_err().0;
        assert!(e.contains("http://m.example:5000"), "{e}");
        let e = Mirror::parse("http://u:hunter2@m").unwrap_err().0;
        assert!(!e.contains("hunter2") && e.contains("credentials"), "{e}");
    }

    #[test]
    fn one_parser_three_rule_sets() {
        // verify: `/v2` and credentials accepted; the credentials come back, decoded.
        let (m, c) =
            Mirror::parse_with("https://u%40x:p%3Dq@M.example/v2/", Rules::VERIFY).unwrap();
        assert_eq!(m.url(), "https://m.example");
        let c = c.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u@x", "p=q"));
        assert!(!format!("{c:?}").contains("p=q"));
        // serve/verify --upstream: `/v2` yes, credentials no.
        assert!(Mirror::parse_with("http://h:5000/v2", Rules::UPSTREAM).is_ok());
        assert!(Mirror::parse_with("http://u:p@h", Rules::UPSTREAM).is_err());
        // arm: neither.
        assert!(Mirror::parse_with("http://h/v2", Rules::ARM).is_err());
        // Nobody takes another path, a query or a fragment.
        for rules in [Rules::ARM, Rules::VERIFY, Rules::UPSTREAM] {
            for bad in [
                "http://h/P",
                "http://h/p/v2/",
                "http://h/v2/v2",
                "http://h/-p",
                "http://h/?a=1",
                "http://h/#f",
                "h:5000",
                "ftp://h",
            ] {
                assert!(Mirror::parse_with(bad, rules).is_err(), "{bad} {rules:?}");
            }
        }
    }

    #[test]
    fn project_paths() {
        // The two spellings people copy are one mirror.
        let a = Mirror::parse("https://Harbor.example/dh").unwrap();
        let b = Mirror::parse("https://harbor.example:443/v2/dh/").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.path.as_deref(), Some("dh"));
        assert_eq!(a.origin(), "https://harbor.example");
        assert_eq!(a.url(), "https://harbor.example/dh");
        assert_eq!(a.to_string(), "https://harbor.example/dh");
        assert_eq!(a.v2_url(), "https://harbor.example/v2/dh");
        assert_eq!(a.location(), "harbor.example/dh");
        assert_eq!(a.host_port(), "harbor.example");
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            "\"https://harbor.example/dh\""
        );
        let n = Mirror::parse("http://10.0.0.5:8080/group/proxy").unwrap();
        assert_eq!(n.location(), "10.0.0.5:8080/group/proxy");
        assert_eq!(n.v2_url(), "http://10.0.0.5:8080/v2/group/proxy");
        // Path-less mirrors render as before.
        let r = Mirror::parse("http://m:5000/").unwrap();
        assert_eq!(r.path, None);
        assert_eq!(
            (r.url(), r.v2_url(), r.location()),
            (
                "http://m:5000".to_string(),
                "http://m:5000".to_string(),
                "m:5000".to_string()
            )
        );
        // Every rule set takes a project; `/v2` alone stays verify's and upstream's.
        for rules in [Rules::ARM, Rules::VERIFY, Rules::UPSTREAM] {
            let (m, _) = Mirror::parse_with("https://h/v2/dh", rules).unwrap();
            assert_eq!(m.path.as_deref(), Some("dh"));
        }
        let e = Mirror::parse("https://h/dh/v2").unwrap_err().0;
        assert!(
            e.contains("before `/v2`") && e.contains("https://host/<project>"),
            "{e}"
        );
        let e = Mirror::parse("https://h/DH").unwrap_err().0;
        assert!(e.contains("not a project name"), "{e}");
        let e = Mirror::parse("https://h/v2/").unwrap_err().0;
        assert!(e.contains("ends in `/v2`"), "{e}");
    }

    #[test]
    fn registry_prefixes() {
        let a = MirrorArg::arm("GHCR.io=http://m:1").unwrap();
        assert_eq!(a.registry.as_deref(), Some("ghcr.io"));
        assert_eq!(a.mirror.url(), "http://m:1");
        assert_eq!(MirrorArg::arm("http://m:1").unwrap().registry, None);
        assert_eq!(
            MirrorArg::arm("index.docker.io=http://m")
                .unwrap()
                .registry
                .as_deref(),
            Some("docker.io")
        );
        let e = MirrorArg::upstream("=http://x").unwrap_err().0;
        assert!(e.contains("registry before `=` is empty"), "{e}");
        assert!(MirrorArg::arm("bad/reg=http://x").is_err());
        // A password holding `=` is not a prefix.
        let (_, c) = verify_mirror("https://u:a=b@h").unwrap();
        assert_eq!(c.unwrap().password, "a=b");
        assert_eq!(redact("https://u:secret@h:1/v2"), "https://…@h:1/v2");
        assert_eq!(redact("http://h"), "http://h");
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
