//! How the `containerd` target arms a host, decided from the user's `config.toml` (without
//! mirrorctl's own changes) and the containerd version: where the hosts.toml files go, whether
//! config.toml is edited, which deprecated settings move into which hosts.toml (`--migrate`),
//! and what to tell the user. Pure: the caller reads the files.

use super::legacy::{Facts, Tls};
use super::version::ContainerdVersion;
use crate::error::PlanError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The default hosts directory (what mirrorctl sets `config_path` to).
pub const CERTS_D: &str = "/etc/containerd/certs.d";

/// A host that `--migrate` moves from config.toml's deprecated `registry.mirrors` into a
/// hosts.toml `[host."…"]` entry, after mirrorctl's mirrors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedHost {
    pub url: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub override_path: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
}

/// What `--migrate` moves into one registry's hosts.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<MovedHost>,
    /// The registry's own TLS settings (`configs."<registry>".tls`), for `server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_tls: Option<Tls>,
}

impl Moved {
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.server_tls.is_none()
    }
}

/// How config.toml is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigEdit {
    /// Move the deprecated settings out (and add `version = 2` where the CRI tables need it).
    pub migrate: bool,
}

/// The plan for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// Where hosts.toml files go (`<certs_dir>/<registry>/hosts.toml`).
    pub certs_dir: String,
    /// `None`: config.toml is left alone (and containerd needs no restart).
    pub config: Option<ConfigEdit>,
    /// Per hosts directory name (`docker.io`, `_default`): what moves there.
    pub moved: BTreeMap<String, Moved>,
    pub notes: Vec<String>,
}

impl Default for Setup {
    /// A host without config.toml: hosts.toml under [`CERTS_D`], config.toml written.
    fn default() -> Setup {
        Setup {
            certs_dir: CERTS_D.to_string(),
            config: Some(ConfigEdit { migrate: false }),
            moved: BTreeMap::new(),
            notes: Vec::new(),
        }
    }
}

/// Why the containerd target cannot be armed as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// The file (or mirrorctl's reading of it) is refused.
    Refused(PlanError),
    /// `--migrate` would arm it: the message says what it would do.
    NeedsMigrate(PlanError),
}

impl SetupError {
    pub fn into_plan_error(self) -> PlanError {
        match self {
            SetupError::Refused(e) | SetupError::NeedsMigrate(e) => e,
        }
    }
}

impl From<PlanError> for SetupError {
    fn from(e: PlanError) -> Self {
        SetupError::Refused(e)
    }
}

/// Decide how to arm containerd. `user_config`: config.toml as the user has it (mirrorctl's
/// own edits taken out), `None` when absent.
pub fn setup(
    user_config: Option<&str>,
    version: &ContainerdVersion,
    migrate: bool,
) -> Result<Setup, SetupError> {
    let fresh = Setup::default();
    let Some(text) = user_config.filter(|t| !t.trim().is_empty()) else {
        return Ok(fresh);
    };
    let facts = read_facts(text, version, migrate)?;
    let mut notes = long_table_notes(&facts);
    if facts.cri_disabled {
        notes.push(format!("the CRI plugin is disabled (`disabled_plugins`): config.toml is left alone and containerd needs no restart; the hosts.toml files under {CERTS_D} are read by nerdctl and `ctr --hosts-dir`"));
        return Ok(Setup {
            config: None,
            notes,
            ..fresh
        });
    }
    if let Some(first) = facts.config_dirs().first() {
        return in_config_path(&facts, first, version, notes);
    }
    if !facts.has_legacy() {
        return Ok(Setup {
            config: Some(ConfigEdit {
                migrate: facts.version_added,
            }),
            notes,
            ..fresh
        });
    }
    if !migrate {
        return Err(SetupError::NeedsMigrate(needs_migrate(&facts)));
    }
    let moved = moved(&facts, version)?;
    notes.push(format!(
        "--migrate: the deprecated {} move into hosts.toml under {CERTS_D} ({}); `disarm` puts them back",
        legacy_names(&facts),
        moved.keys().cloned().collect::<Vec<_>>().join(", ")
    ));
    Ok(Setup {
        config: Some(ConfigEdit { migrate: true }),
        moved,
        notes,
        ..fresh
    })
}

/// The facts, as `--migrate` will leave the file; refuses what cannot be armed either way.
fn read_facts(text: &str, version: &ContainerdVersion, migrate: bool) -> Result<Facts, SetupError> {
    let as_read = Facts::read(text, false)?;
    if !as_read.ignored_long_tables {
        return Ok(as_read);
    }
    if as_read.short_tables {
        // Which wins is not something to guess: containerd 1.x reads only `cri`, 2.x renames
        // it to the long id and keeps one of the two tables.
        return Err(PlanError::whole(format!("the file has no `version` and both `plugins.cri` and `plugins.\"{}\"` tables: containerd 1.x reads only `plugins.cri`, containerd 2.x turns both into one table and keeps one of them. Keep one (with `version = 2` for the long one), then rerun", super::legacy::LONG_CRI)).into());
    }
    let versionless = as_read.schema == super::legacy::Schema::V1 { versionless: true };
    if migrate && versionless {
        return Ok(Facts::read(text, true)?);
    }
    let two = version.version.is_some_and(|(major, _, _)| major >= 2);
    if two && !versionless {
        return Err(PlanError::whole(format!("the file says `version = 1` but its CRI tables are `plugins.\"{}\"`: {} would merge the `plugins.cri` table mirrorctl writes there with them unpredictably. Change it to `version = 2`, then rerun", super::legacy::LONG_CRI, version.describe)).into());
    }
    if two {
        return Err(SetupError::NeedsMigrate(PlanError::whole(format!("the file has no `version` but its CRI tables are `plugins.\"{}\"`: {} reads it as version 1 and would merge the `plugins.cri` table mirrorctl writes there with them unpredictably. `arm --migrate` adds `version = 2` (disarm takes it out again); rerun with --migrate", super::legacy::LONG_CRI, version.describe))));
    }
    Ok(as_read)
}

/// The one-line warning about long-id tables in a file containerd 1.x reads as version 1, or
/// what `--migrate` does about them.
fn long_table_notes(facts: &Facts) -> Vec<String> {
    if facts.version_added {
        return vec![format!("--migrate: config.toml has no `version`, so containerd 1.x ignored its `plugins.\"{}\"` tables; `version = 2` is added (disarm takes it out)", super::legacy::LONG_CRI)];
    }
    match facts.ignored_long_tables {
        true => vec![ignored_long_tables_note()],
        false => Vec::new(),
    }
}

/// What `status` and `arm` say about a versionless file with long-id CRI tables.
pub fn ignored_long_tables_note() -> String {
    format!("config.toml is version 1 (no `version` key, or `version = 1`), so containerd 1.x ignores its `plugins.\"{}\"` tables: make it `version = 2` (`arm --migrate` adds it where the key is missing); until then mirrorctl sets config_path in `plugins.cri.registry`, where containerd 1.x reads it", super::legacy::LONG_CRI)
}

/// `config_path` already names a directory: hosts.toml files go there, config.toml stays.
fn in_config_path(
    facts: &Facts,
    first: &str,
    version: &ContainerdVersion,
    mut notes: Vec<String>,
) -> Result<Setup, SetupError> {
    let path = facts.config_path.clone().unwrap_or_default();
    if !facts.mirrors.is_empty() {
        return Err(PlanError::whole(format!("config.toml sets both `config_path` and the deprecated `registry.mirrors`: containerd's CRI plugin refuses that (\"`mirrors` cannot be set when `config_path` is provided\") and does not load. Move the mirrors into hosts.toml files under {first}/<registry>/ or remove `config_path`, then rerun")).into());
    }
    if !facts.tls.is_empty() {
        let v2 = version.version.is_some_and(|(major, _, _)| major >= 2);
        if !v2 {
            return Err(PlanError::whole(format!("config.toml sets both `config_path` and the deprecated `registry.configs.<host>.tls`: containerd 1.6 and 1.7 refuse that (\"`configs.tls` cannot be set when `config_path` is provided\"). Move the TLS settings into hosts.toml under {first}/<host>/ (`ca`, `client`, `skip_verify`), then rerun")).into());
        }
        notes.push(format!("config.toml's `registry.configs.<host>.tls` is ignored by {} because `config_path` is set: put those settings into hosts.toml (`ca`, `client`, `skip_verify`)", version.describe));
    }
    if !first.starts_with('/') {
        return Err(PlanError::whole(format!("config.toml's `config_path` `{path}` is not an absolute path: write it as one, then rerun")).into());
    }
    let dirs = facts.config_dirs();
    if dirs.len() > 1 && version.ignores_config_path_lists() {
        notes.push(format!("config_path `{path}` is a list: the CRI plugin of {} pulls through the transfer service, which reads config_path as one directory, so every hosts.toml there is silently ignored (containerd#12415). Set config_path to one directory, e.g. `{first}`", version.describe));
    }
    let dir = first.trim_end_matches('/');
    if !facts.version_added {
        notes.push(format!(
            "config.toml's config_path already names {dir}: hosts.toml goes there; config.toml is not changed and containerd needs no restart"
        ));
    }
    Ok(Setup {
        certs_dir: if dir.is_empty() {
            "/".into()
        } else {
            dir.into()
        },
        // `--migrate` adding `version = 2` is what makes that config_path count.
        config: facts.version_added.then_some(ConfigEdit { migrate: true }),
        moved: BTreeMap::new(),
        notes,
    })
}

/// The refusal without `--migrate`.
fn needs_migrate(facts: &Facts) -> PlanError {
    let (line, column) = facts.legacy_at.unwrap_or((0, 0));
    PlanError::new(line, column, format!(
        "config.toml sets the deprecated {}: containerd's CRI plugin does not load when they are set together with `config_path`, which mirrorctl needs. `arm --migrate` moves them into hosts.toml files under {CERTS_D} (endpoints in order after the mirrors, TLS settings as `ca`/`client`/`skip_verify`) and sets config_path; `disarm` puts them back. Rerun with --migrate",
        legacy_names(facts)
    ))
}

fn legacy_names(facts: &Facts) -> String {
    let mut what = Vec::new();
    if !facts.mirrors.is_empty() {
        let keys: Vec<&str> = facts.mirrors.iter().map(|m| m.key.as_str()).collect();
        what.push(format!("`registry.mirrors` ({})", keys.join(", ")));
    }
    if !facts.tls.is_empty() {
        let hosts: Vec<&str> = facts.tls.iter().map(|(h, _)| h.as_str()).collect();
        what.push(format!(
            "`registry.configs.<host>.tls` ({})",
            hosts.join(", ")
        ));
    }
    what.join(" and ")
}

/// The hosts directory of a registry named in `registry.mirrors`.
fn dir_of(key: &str, version: &ContainerdVersion) -> Result<String, PlanError> {
    if key == "*" {
        if !version.reads_default_dir() {
            return Err(PlanError::whole(format!("the deprecated `registry.mirrors.\"*\"` (every registry) can only move to `{CERTS_D}/_default/hosts.toml`, which {} does not read (containerd 1.7 and later do): list the registries it is meant for, then rerun", version.describe)));
        }
        return Ok("_default".into());
    }
    Ok(super::host_dir_name(&key.to_ascii_lowercase()))
}

/// What moves into which hosts directory.
fn moved(facts: &Facts, version: &ContainerdVersion) -> Result<BTreeMap<String, Moved>, PlanError> {
    let tls_of = |host: &str| {
        facts
            .tls
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, t)| t.clone())
            .filter(|t| !t.is_empty())
    };
    let mut out: BTreeMap<String, Moved> = BTreeMap::new();
    for m in &facts.mirrors {
        let hosts = m
            .endpoints
            .iter()
            .map(|e| MovedHost {
                url: e.url.clone(),
                override_path: e.override_path,
                tls: tls_of(&e.host),
            })
            .collect();
        out.entry(dir_of(&m.key, version)?).or_default().hosts = hosts;
    }
    let endpoint_hosts: Vec<&str> = facts
        .mirrors
        .iter()
        .flat_map(|m| m.endpoints.iter().map(|e| e.host.as_str()))
        .collect();
    for (host, tls) in &facts.tls {
        // The old resolver used `configs."<host>".tls` for every connection to that host: as
        // an endpoint (now each `[host]` entry's settings, above) and as a registry's default
        // host (registry-1.docker.io for docker.io): the top level of that registry's file.
        let registry = match host.as_str() {
            "registry-1.docker.io" => crate::oci::DOCKER_HUB,
            h => h,
        };
        let is_registry = registry != host
            || facts
                .mirrors
                .iter()
                .any(|m| m.key.eq_ignore_ascii_case(host));
        if tls.is_empty() || (endpoint_hosts.contains(&host.as_str()) && !is_registry) {
            continue;
        }
        out.entry(super::host_dir_name(registry))
            .or_default()
            .server_tls = Some(tls.clone());
    }
    out.retain(|_, m| !m.is_empty());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(t: (u32, u32, u32)) -> ContainerdVersion {
        ContainerdVersion::known(t, "test")
    }

    const DEPRECATED: &str = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://m.example\", \"https://registry-1.docker.io\"]\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"*\"]\n  endpoint = [\"https://all.example\"]\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"m.example\".tls]\n  ca_file = \"/m-ca.pem\"\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"private.example\".tls]\n  insecure_skip_verify = true\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"private.example\".auth]\n  username = \"u\"\n";

    #[test]
    fn fresh_and_plain_files_get_config_path() {
        let s = setup(None, &ContainerdVersion::default(), false).unwrap();
        assert_eq!(s.certs_dir, CERTS_D);
        assert_eq!(s.config, Some(ConfigEdit { migrate: false }));
        let s = setup(Some("version = 2\n"), &ContainerdVersion::default(), false).unwrap();
        assert!(s.notes.is_empty(), "{:?}", s.notes);
    }

    #[test]
    fn deprecated_settings_need_migrate_and_move_in_order() {
        let e = setup(Some(DEPRECATED), &v((1, 7, 0)), false).unwrap_err();
        let SetupError::NeedsMigrate(e) = e else {
            panic!("{e:?}")
        };
        assert!(
            e.message.contains("--migrate") && e.message.contains("docker.io, *"),
            "{e}"
        );
        let s = setup(Some(DEPRECATED), &v((1, 7, 0)), true).unwrap();
        assert_eq!(s.config, Some(ConfigEdit { migrate: true }));
        let hub = &s.moved["docker.io"];
        assert_eq!(hub.hosts.len(), 2);
        assert_eq!(hub.hosts[0].url, "https://m.example");
        assert_eq!(
            hub.hosts[0].tls.as_ref().and_then(|t| t.ca.as_deref()),
            Some("/m-ca.pem")
        );
        assert_eq!(hub.hosts[1].url, "https://registry-1.docker.io");
        assert_eq!(s.moved["_default"].hosts[0].url, "https://all.example");
        assert_eq!(
            s.moved["private.example"].server_tls,
            Some(Tls {
                skip_verify: Some(true),
                ..Tls::default()
            })
        );
        assert!(
            !s.moved.contains_key("m.example"),
            "an endpoint only: {:?}",
            s.moved
        );
    }

    #[test]
    fn the_wildcard_needs_containerd_1_7() {
        let e = setup(Some(DEPRECATED), &v((1, 6, 20)), true).unwrap_err();
        assert!(e.into_plan_error().message.contains("_default"));
    }

    #[test]
    fn cri_disabled_leaves_config_alone() {
        let s = setup(
            Some("disabled_plugins = [\"cri\"]\n"),
            &v((1, 6, 20)),
            false,
        )
        .unwrap();
        assert_eq!(s.config, None);
        assert!(s.notes[0].contains("no restart"), "{:?}", s.notes);
    }

    #[test]
    fn an_existing_config_path_is_used() {
        let t = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d:/etc/docker/certs.d\"\n";
        let s = setup(Some(t), &v((1, 7, 20)), false).unwrap();
        assert_eq!(s.certs_dir, "/etc/containerd/certs.d");
        assert_eq!(s.config, None);
        assert!(!s.notes.iter().any(|n| n.contains("12415")));
        let s = setup(Some(t), &v((2, 1, 0)), false).unwrap();
        assert!(s.notes.iter().any(|n| n.contains("12415")), "{:?}", s.notes);
        let other = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/srv/hosts/\"\n";
        assert_eq!(
            setup(Some(other), &v((1, 6, 0)), false).unwrap().certs_dir,
            "/srv/hosts"
        );
        let empty =
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"\"\n";
        assert_eq!(
            setup(Some(empty), &v((1, 6, 0)), false).unwrap().config,
            Some(ConfigEdit { migrate: false })
        );
        let rel = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"certs.d\"\n";
        assert!(setup(Some(rel), &v((1, 6, 0)), false).is_err());
        let both = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/x\"\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://m\"]\n";
        let e = setup(Some(both), &v((1, 6, 0)), true).unwrap_err();
        assert!(matches!(e, SetupError::Refused(_)), "{e:?}");
    }

    #[test]
    fn versionless_files_with_long_ids() {
        let t =
            "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n";
        let s = setup(Some(t), &v((1, 6, 20)), false).unwrap();
        assert!(s.notes[0].contains("ignores"), "{:?}", s.notes);
        assert!(matches!(
            setup(Some(t), &v((2, 1, 0)), false),
            Err(SetupError::NeedsMigrate(_))
        ));
        let s = setup(Some(t), &v((2, 1, 0)), true).unwrap();
        assert_eq!(
            s.config,
            Some(ConfigEdit { migrate: true }),
            "adds version = 2"
        );
        assert!(s.notes[0].contains("version = 2"), "{:?}", s.notes);
        let both = "[plugins.cri.containerd]\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n";
        assert!(setup(Some(both), &v((1, 6, 20)), false).is_err());
    }
}
