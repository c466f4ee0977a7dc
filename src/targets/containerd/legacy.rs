//! What a containerd `config.toml` says about registries, read the way containerd reads it:
//! which schema (and so which plugin table) holds the CRI registry settings, whether the CRI
//! plugin is disabled, `config_path`, and the deprecated `registry.mirrors` /
//! `registry.configs.<host>.tls` settings that `arm --migrate` moves into hosts.toml files.
//!
//! The rules, from containerd's source:
//! - `version` missing (or 0) is version 1: plugins are looked up by their short id (`cri`), so
//!   `plugins."io.containerd.grpc.v1.cri"` tables in such a file are ignored by containerd 1.x
//!   (`services/server/config/config.go` `Decode`, v1.6). containerd 2.x renames the short ids
//!   to the long ones when it loads a v1 file (`v1Migrate`). Version 2 uses
//!   `io.containerd.grpc.v1.cri`, version 3 (containerd 2.x) `io.containerd.cri.v1.images`.
//! - `mirrors` next to a non-empty `config_path` stops the CRI plugin from loading in every
//!   version ("`mirrors` cannot be set when `config_path` is provided"); `configs.<host>.tls`
//!   does too in 1.6 and 1.7 and is ignored by 2.x. `configs.<host>.auth` and `auths` keep
//!   working beside `config_path`, so they stay in config.toml.
//! - The deprecated resolver (`pkg/cri/server/image_pull.go` `registryEndpoints`, v1.6) tries a
//!   registry's endpoints in order (the `"*"` entry for registries without one), a schemeless
//!   endpoint as `http://` for localhost and `https://` otherwise, an endpoint without a path
//!   at `/v2` and one with a path at exactly that path; then the registry's default host,
//!   unless an endpoint is the registry itself. hosts.toml says the same with `[host."…"]`
//!   entries in that order (`override_path = true` for a path that does not end in `/v2`), then
//!   `server`, which is the same default host.

use super::super::text::{unframe, Framing};
use super::super::toml_util;
use crate::error::PlanError;
use toml_edit::{Item, TableLike};

/// The config schema, which decides where the CRI registry table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Version 1; `versionless` when the file has no `version` key at all.
    V1 {
        versionless: bool,
    },
    V2,
    V3,
}

impl Schema {
    /// The plugin id whose `registry` table holds the CRI registry settings.
    pub fn plugin(self) -> &'static str {
        match self {
            Schema::V1 { .. } => "cri",
            Schema::V2 => LONG_CRI,
            Schema::V3 => "io.containerd.cri.v1.images",
        }
    }
}

/// The CRI plugin's long id (version 2, and the CRI service in version 3).
pub const LONG_CRI: &str = "io.containerd.grpc.v1.cri";

/// A registry's deprecated `registry.mirrors."<key>".endpoint` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyMirror {
    /// The registry as written (`docker.io`, `*`, `registry:5000`).
    pub key: String,
    /// The endpoints as hosts.toml host keys, in order (scheme added as containerd did).
    pub endpoints: Vec<Endpoint>,
}

/// One endpoint of a deprecated mirror entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port][/path]`.
    pub url: String,
    /// `host[:port]`, to find its `configs.<host>.tls`.
    pub host: String,
    /// The path is used as written (not `<path>/v2`): hosts.toml needs `override_path`.
    pub override_path: bool,
}

/// A host's deprecated `registry.configs."<host>".tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// `(cert_file, key_file)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_verify: Option<bool>,
}

impl Tls {
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.client.is_none() && self.skip_verify.is_none()
    }
}

/// What the file says, as containerd reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub schema: Schema,
    /// `disabled_plugins` names the CRI plugin.
    pub cri_disabled: bool,
    /// A version 1 file (read as one) with `plugins."io.containerd.grpc.v1.cri"` tables, which
    /// containerd 1.x ignores in such a file.
    pub ignored_long_tables: bool,
    /// A version 1 file with `plugins.cri` tables too.
    pub short_tables: bool,
    /// Read as if `version = 2` were added (and it changed the schema).
    pub version_added: bool,
    /// `config_path` of the CRI registry table (`Some("")` when set empty).
    pub config_path: Option<String>,
    pub mirrors: Vec<LegacyMirror>,
    /// `(host, tls)` in file order.
    pub tls: Vec<(String, Tls)>,
    /// `(line, column)` of the first deprecated setting, for messages.
    pub legacy_at: Option<(usize, usize)>,
}

/// The parsed file and where its text starts (for error positions).
struct Source<'a> {
    original: &'a str,
    framing: Framing,
    body: String,
}

impl Source<'_> {
    fn err(&self, span: Option<std::ops::Range<usize>>, msg: impl Into<String>) -> PlanError {
        toml_util::error_at(self.original, self.framing, span.map(|s| s.start), msg)
    }
}

impl Facts {
    /// Read `text` as containerd would; with `as_version_2`, as if `version = 2` were added
    /// (what `--migrate` does to a version 1 file whose CRI tables use the long id).
    pub fn read(text: &str, as_version_2: bool) -> Result<Facts, PlanError> {
        let (framing, body) = unframe(text);
        let src = Source {
            original: text,
            framing,
            body,
        };
        toml_util::parse(text, framing, &src.body)?;
        let doc = toml_edit::Document::parse(src.body.as_str())
            .map_err(|e| src.err(e.span(), format!("invalid TOML: {}", e.message().trim())))?;
        let schema = match doc.get("version") {
            None => Schema::V1 { versionless: true },
            Some(v) => match v.as_integer() {
                Some(0 | 1) => Schema::V1 { versionless: false },
                Some(2) => Schema::V2,
                Some(3) => Schema::V3,
                Some(n) => {
                    return Err(src.err(
                        v.span(),
                        format!("config version {n} is not one containerd reads (1, 2 or 3)"),
                    ))
                }
                None => return Err(src.err(v.span(), "`version` must be an integer")),
            },
        };
        let plugins = doc.get("plugins").and_then(Item::as_table_like);
        let has = |id: &str| plugins.is_some_and(|p| p.contains_key(id));
        let long_tables = matches!(schema, Schema::V1 { .. }) && has(LONG_CRI);
        let short_tables = matches!(schema, Schema::V1 { .. }) && has("cri");
        let versionless = schema == Schema::V1 { versionless: true };
        let version_added = as_version_2 && long_tables && versionless;
        let schema = match version_added {
            true => Schema::V2,
            false => schema,
        };
        let plugin = schema.plugin();
        let registry = registry_table(&src, plugins, plugin)?;
        let config_path = match registry.and_then(|r| r.get("config_path")) {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| src.err(v.span(), "`config_path` must be a string"))?
                    .to_string(),
            ),
        };
        let legacy_at = registry.and_then(|r| legacy_at(&src, r));
        Ok(Facts {
            legacy_at,
            schema,
            cri_disabled: cri_disabled(&doc),
            ignored_long_tables: long_tables && matches!(schema, Schema::V1 { .. }),
            short_tables,
            version_added,
            config_path,
            mirrors: registry
                .map(|r| mirrors(&src, r))
                .transpose()?
                .unwrap_or_default(),
            tls: registry
                .map(|r| tls(&src, r))
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// Deprecated settings that stop the CRI plugin from loading once `config_path` is set.
    pub fn has_legacy(&self) -> bool {
        !self.mirrors.is_empty() || !self.tls.is_empty()
    }

    /// `config_path`'s directories, when it is set to something.
    pub fn config_dirs(&self) -> Vec<&str> {
        self.config_path
            .as_deref()
            .map(|p| p.split(':').filter(|d| !d.is_empty()).collect())
            .unwrap_or_default()
    }
}

/// `plugins.<plugin>.registry` when the file has it; refused when it is not a table.
fn registry_table<'a>(
    src: &Source,
    plugins: Option<&'a dyn TableLike>,
    plugin: &str,
) -> Result<Option<&'a dyn TableLike>, PlanError> {
    let Some(cri) = plugins.and_then(|p| p.get(plugin)) else {
        return Ok(None);
    };
    let Some(cri) = cri.as_table_like() else {
        return Err(src.err(
            cri.span(),
            format!("`plugins.\"{plugin}\"` must be a table"),
        ));
    };
    match cri.get_key_value("registry") {
        None => Ok(None),
        Some((k, r)) => match r.as_table_like() {
            Some(t) => Ok(Some(t)),
            None => Err(src.err(
                k.span().or(r.span()),
                format!("`plugins.\"{plugin}\".registry` must be a table"),
            )),
        },
    }
}

/// Where the first deprecated setting is written: the `mirrors` key, else the first `tls`.
fn legacy_at(src: &Source, registry: &dyn TableLike) -> Option<(usize, usize)> {
    let mirrors = registry
        .get_key_value("mirrors")
        .filter(|(_, v)| v.as_table_like().is_some_and(|m| !m.is_empty()))
        .and_then(|(k, _)| k.span());
    let tls = || {
        registry
            .get("configs")
            .and_then(Item::as_table_like)?
            .iter()
            .find_map(|(_, c)| c.as_table_like()?.get_key_value("tls")?.0.span())
    };
    let e = src.err(Some(mirrors.or_else(tls)?), "");
    Some((e.line, e.column))
}

/// Does `disabled_plugins` name the CRI plugin (either id)?
fn cri_disabled(doc: &toml_edit::Table) -> bool {
    doc.get("disabled_plugins")
        .and_then(toml_util::string_array)
        .is_some_and(|l| {
            l.iter()
                .any(|p| p == "cri" || p == LONG_CRI || p == "io.containerd.cri.v1.images")
        })
}

/// The deprecated `mirrors` entries, each refused unless it is exactly `endpoint = [strings]`
/// with endpoints containerd's old resolver understood.
fn mirrors(src: &Source, registry: &dyn TableLike) -> Result<Vec<LegacyMirror>, PlanError> {
    let Some(item) = registry.get("mirrors") else {
        return Ok(Vec::new());
    };
    let Some(table) = item.as_table_like() else {
        return Err(src.err(item.span(), "`registry.mirrors` must be a table"));
    };
    let mut out = Vec::new();
    for (key, entry) in table.iter() {
        let Some(entry) = entry.as_table_like() else {
            return Err(src.err(
                entry.span(),
                format!("`registry.mirrors.\"{key}\"` must be a table with `endpoint = [...]`"),
            ));
        };
        if let Some((other, v)) = entry.iter().find(|(k, _)| *k != "endpoint") {
            return Err(src.err(
                v.span(),
                format!("`registry.mirrors.\"{key}\".{other}` is not a key containerd's mirror settings have (only `endpoint`): fix or remove it, then rerun"),
            ));
        }
        let endpoints = match entry.get("endpoint") {
            None => Vec::new(),
            Some(e) => {
                let list = toml_util::string_array(e).ok_or_else(|| {
                    src.err(
                        e.span(),
                        format!("`registry.mirrors.\"{key}\".endpoint` must be a list of URLs"),
                    )
                })?;
                list.iter()
                    .map(|u| {
                        endpoint(u).map_err(|why| {
                            src.err(
                                e.span(),
                                format!("`registry.mirrors.\"{key}\".endpoint` `{u}`: {why}"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        out.push(LegacyMirror {
            key: key.to_string(),
            endpoints,
        });
    }
    Ok(out)
}

/// An endpoint as containerd's old resolver read it.
fn endpoint(raw: &str) -> Result<Endpoint, String> {
    let with_scheme;
    let full = if raw.contains("://") {
        raw
    } else {
        let host = raw.split('/').next().unwrap_or("");
        let scheme = if is_localhost(host) { "http" } else { "https" };
        with_scheme = format!("{scheme}://{raw}");
        &with_scheme
    };
    let (scheme, rest) = full.split_once("://").ok_or("not a URL")?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("scheme `{scheme}` is not http or https"));
    }
    if rest.contains(['?', '#', '@']) || rest.chars().any(char::is_whitespace) {
        return Err("a query, fragment, user name or space is not something this migration understands: write the plain `scheme://host[:port][/path]`".into());
    }
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if path == "/" {
        return Err("the path `/` makes containerd's deprecated resolver request `//<repository>/…` instead of `/v2/<repository>/…`, so this endpoint never answered; write it without the trailing slash, then rerun".into());
    }
    let path = path.trim_end_matches('/');
    Ok(Endpoint {
        url: format!("{scheme}://{}{path}", host.to_ascii_lowercase()),
        host: host.to_ascii_lowercase(),
        override_path: !path.is_empty() && !path.ends_with("/v2"),
    })
}

/// containerd's `docker.IsLocalhost`: `localhost`, a loopback IP, with or without port.
pub fn is_localhost(host: &str) -> bool {
    let h = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The deprecated `configs."<host>".tls` tables.
fn tls(src: &Source, registry: &dyn TableLike) -> Result<Vec<(String, Tls)>, PlanError> {
    let Some(configs) = registry.get("configs").and_then(Item::as_table_like) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (host, cfg) in configs.iter() {
        let Some(item) = cfg.as_table_like().and_then(|c| c.get("tls")) else {
            continue;
        };
        let Some(t) = item.as_table_like() else {
            return Err(src.err(
                item.span(),
                format!("`registry.configs.\"{host}\".tls` must be a table"),
            ));
        };
        out.push((host.to_ascii_lowercase(), tls_of(src, host, t)?));
    }
    Ok(out)
}

fn tls_of(src: &Source, host: &str, t: &dyn TableLike) -> Result<Tls, PlanError> {
    let mut tls = Tls::default();
    let (mut cert, mut key) = (None, None);
    for (k, v) in t.iter() {
        let at = |msg: String| {
            src.err(
                v.span(),
                format!("`registry.configs.\"{host}\".tls.{k}`: {msg}"),
            )
        };
        match k {
            "insecure_skip_verify" => {
                tls.skip_verify = Some(v.as_bool().ok_or_else(|| at("must be true or false".into()))?);
            }
            "ca_file" | "cert_file" | "key_file" => {
                let path = v.as_str().ok_or_else(|| at("must be a path".into()))?;
                if path.is_empty() {
                    continue;
                }
                if !path.starts_with('/') {
                    return Err(at(format!("`{path}` is relative: containerd read it from its working directory, hosts.toml reads it from the hosts.toml's directory; write the absolute path, then rerun")));
                }
                match k {
                    "ca_file" => tls.ca = Some(path.to_string()),
                    "cert_file" => cert = Some(path.to_string()),
                    _ => key = Some(path.to_string()),
                }
            }
            _ => return Err(at("not a key containerd's registry TLS settings have (ca_file, cert_file, key_file, insecure_skip_verify): fix or remove it, then rerun".into())),
        }
    }
    tls.client = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            return Err(src.err(
                t.get("cert_file").or(t.get("key_file")).and_then(Item::span),
                format!("`registry.configs.\"{host}\".tls` has only one of cert_file and key_file: containerd refuses that (\"no corresponding key file\"); set both or neither, then rerun"),
            ))
        }
    };
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_and_plugins() {
        let f = Facts::read("[plugins.cri.containerd]\n", false).unwrap();
        assert_eq!(f.schema, Schema::V1 { versionless: true });
        assert!(f.short_tables && !f.ignored_long_tables);
        let f = Facts::read(
            "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/x\"\n",
            false,
        )
        .unwrap();
        assert!(f.ignored_long_tables, "{f:?}");
        assert_eq!(f.config_path, None, "ignored by containerd 1.x");
        let f = Facts::read(
            "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/x\"\n",
            true,
        )
        .unwrap();
        assert_eq!(f.schema, Schema::V2);
        assert_eq!(f.config_path.as_deref(), Some("/x"));
        let f = Facts::read(
            "version = 3\n[plugins.\"io.containerd.cri.v1.images\".registry]\nconfig_path = \"\"\n",
            false,
        )
        .unwrap();
        assert_eq!(f.config_path.as_deref(), Some(""));
        assert!(f.config_dirs().is_empty());
        let e = Facts::read("version = 4\n", false).unwrap_err();
        assert_eq!((e.line, e.column), (1, 11), "{e}");
    }

    #[test]
    fn cri_disabled_by_either_id() {
        assert!(
            Facts::read("disabled_plugins = [\"cri\"]\n", false)
                .unwrap()
                .cri_disabled
        );
        assert!(
            Facts::read(
                "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
                false
            )
            .unwrap()
            .cri_disabled
        );
        assert!(
            !Facts::read("disabled_plugins = [\"aufs\"]\n", false)
                .unwrap()
                .cri_disabled
        );
    }

    #[test]
    fn deprecated_mirrors_as_the_old_resolver_read_them() {
        let t = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"mirror.example:5000\", \"http://localhost:5000\", \"localhost:5001\", \"https://h.example/v2/proj\", \"https://H.example/cache/\"]\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"*\"]\n  endpoint = []\n";
        let f = Facts::read(t, false).unwrap();
        assert_eq!(f.mirrors.len(), 2);
        let urls: Vec<(&str, bool)> = f.mirrors[0]
            .endpoints
            .iter()
            .map(|e| (e.url.as_str(), e.override_path))
            .collect();
        assert_eq!(
            urls,
            [
                ("https://mirror.example:5000", false),
                ("http://localhost:5000", false),
                ("http://localhost:5001", false),
                ("https://h.example/v2/proj", true),
                ("https://h.example/cache", true),
            ]
        );
        assert_eq!(f.mirrors[1].key, "*");
    }

    #[test]
    fn half_understood_entries_are_refused_where_they_are() {
        let bad = [
            ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = \"https://m\"\n", 3, "list of URLs"),
            ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://m\"]\n  rewrite = 1\n", 4, "only `endpoint`"),
            ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://m/\"]\n", 3, "trailing slash"),
            ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"ftp://m\"]\n", 3, "not http"),
            ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r\".tls]\n  ca_file = \"ca.pem\"\n", 3, "relative"),
            ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r\".tls]\n  cert_file = \"/c.pem\"\n", 3, "only one of"),
            ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r\".tls]\n  insecure = true\n", 3, "not a key"),
        ];
        for (text, line, needle) in bad {
            let e = Facts::read(text, false).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.contains(needle), "{e}");
        }
    }

    #[test]
    fn tls_settings() {
        let t = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"Reg:5000\".tls]\n  ca_file = \"/ca.pem\"\n  cert_file = \"/c.pem\"\n  key_file = \"/k.pem\"\n  insecure_skip_verify = true\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"other\".auth]\n  username = \"u\"\n";
        let f = Facts::read(t, false).unwrap();
        assert_eq!(
            f.tls,
            [(
                "reg:5000".to_string(),
                Tls {
                    ca: Some("/ca.pem".into()),
                    client: Some(("/c.pem".into(), "/k.pem".into())),
                    skip_verify: Some(true),
                }
            )]
        );
    }

    #[test]
    fn localhost() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_localhost(h), "{h}");
        }
        for h in ["registry:5000", "10.0.0.1", "localhost.example"] {
            assert!(!is_localhost(h), "{h}");
        }
    }
}
