//! One module per client config format. Each exposes a **pure** planner:
//! `arm(current text or absent, wanted mirrors, entries mirrorctl owned before) -> new text + the
//! entries mirrorctl owns in it`. Disarming is the same call with nothing wanted. No file I/O
//! happens here: the engine in `apply.rs` reads, diffs, writes and journals. A planner that
//! must see other files (the registries.conf drop-in copies tables from `registries.conf` and
//! earlier drop-ins) names them in [`FileKind::context_sources`]; the engine reads them and
//! passes their texts in as `context`.
//!
//! "Owned" entries are opaque tokens a planner uses to recognise what it added (a mirror URL, a
//! table it created, a key it set), so re-arming replaces mirrorctl's own entries and disarming
//! removes only them: entries the user had before are never owned, and never removed.

pub mod buildkit;
pub mod buildx;
pub mod containerd;
pub mod docker;
pub mod dockerd_version;
pub mod earthly;
pub mod k3s;
mod list;
pub mod registries;
mod text;
mod toml_util;

use crate::error::PlanError;
use crate::mirror::MirrorSet;
use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TargetName {
    /// dockerd: /etc/docker/daemon.json (docker.io only)
    Docker,
    /// BuildKit: /etc/buildkit/buildkitd.toml
    Buildkit,
    /// containerd: /etc/containerd/certs.d/<registry>/hosts.toml and config.toml config_path
    Containerd,
    /// podman, CRI-O, skopeo, buildah: /etc/containers/registries.conf.d/90-mirrorctl.conf
    Registries,
    /// k3s / rke2: /etc/rancher/{k3s,rke2}/registries.yaml
    K3s,
    /// Earthly: ~/.earthly/config.yml, global.buildkit_additional_config (its earthly-buildkitd)
    Earthly,
    /// docker buildx: ~/.docker/buildx/buildkitd.default.toml (new builders; existing ones are re-created)
    Buildx,
}

impl TargetName {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetName::Docker => "docker",
            TargetName::Buildkit => "buildkit",
            TargetName::Containerd => "containerd",
            TargetName::Registries => "registries",
            TargetName::K3s => "k3s",
            TargetName::Earthly => "earthly",
            TargetName::Buildx => "buildx",
        }
    }

    pub fn all() -> [TargetName; 7] {
        [
            TargetName::Docker,
            TargetName::Buildkit,
            TargetName::Containerd,
            TargetName::Registries,
            TargetName::K3s,
            TargetName::Earthly,
            TargetName::Buildx,
        ]
    }
}

/// A planner's result: the full new text and the entries mirrorctl owns in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub text: String,
    pub owned: Vec<String>,
}

/// The kinds of file mirrorctl edits, with what each needs to know beyond the mirror set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case")]
pub enum FileKind {
    /// dockerd's daemon.json.
    DaemonJson,
    /// buildkitd.toml.
    BuildkitToml,
    /// containerd `certs.d/<registry>/hosts.toml`: the mirrors for `registry`, then what
    /// `--migrate` moved there from config.toml; `dial_timeout` for containerd versions that
    /// read it.
    ContainerdHosts {
        registry: String,
        #[serde(default, skip_serializing_if = "containerd::setup::Moved::is_empty")]
        moved: containerd::setup::Moved,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dial_timeout: Option<String>,
    },
    /// containerd's config.toml (`config_path` of the CRI registry); `migrate`: take the
    /// deprecated registry settings out (and add `version = 2` where needed).
    ContainerdConfig {
        certs_dir: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        migrate: bool,
    },
    /// A containers-registries.conf(5) drop-in (podman, CRI-O, skopeo, buildah).
    RegistriesDropin,
    /// k3s / rke2 `registries.yaml`.
    K3sYaml,
    /// Earthly's `config.yml` (`global.buildkit_additional_config`).
    EarthlyConfig,
    /// buildx's `buildkitd.default.toml` (a buildkitd.toml); `insecure`: armed with `--insecure`,
    /// to tell which builders' stored configs lack the mirrors.
    BuildxDefault { insecure: bool },
}

/// Other files a planner needs to read (never writes): the engine reads them and passes their
/// texts to [`FileKind::arm`] as `context`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// One file, when it exists.
    File(&'static str),
    /// Every file in a directory whose name ends with the suffix, except `skip`.
    Dir {
        dir: &'static str,
        suffix: &'static str,
        skip: &'static str,
    },
}

impl FileKind {
    /// The other files this kind's planner reads (most need none).
    pub fn context_sources(&self) -> Vec<ContextSource> {
        match self {
            FileKind::RegistriesDropin => vec![
                ContextSource::File(registries::MAIN_CONF),
                ContextSource::Dir {
                    dir: registries::DROPIN_DIR,
                    suffix: ".conf",
                    skip: registries::DROPIN_NAME,
                },
            ],
            _ => Vec::new(),
        }
    }

    /// Plan an arm of this file. `set` is what is wanted now (empty registries to remove
    /// everything mirrorctl owns); `prev` what mirrorctl owned before; `context` the
    /// `(system path, text)` of the files [`FileKind::context_sources`] names that exist.
    pub fn arm(
        &self,
        current: Option<&str>,
        set: &MirrorSet,
        prev: &[String],
        context: &[(String, String)],
    ) -> Result<Planned, PlanError> {
        match self {
            FileKind::DaemonJson => {
                let mirrors = set
                    .for_registry(crate::oci::DOCKER_HUB)
                    .map(|r| r.mirrors.as_slice())
                    .unwrap_or(&[]);
                docker::plan(current, mirrors, set.insecure, prev)
            }
            FileKind::BuildkitToml => buildkit::plan(current, set, prev),
            FileKind::ContainerdHosts {
                registry,
                moved,
                dial_timeout,
            } => {
                let mirrors = set
                    .for_registry(registry)
                    .map(|r| r.mirrors.as_slice())
                    .unwrap_or(&[]);
                // Disarm (nothing wanted) also takes back what was moved.
                let nothing = containerd::setup::Moved::default();
                let want = containerd::HostsWant {
                    registry,
                    mirrors,
                    insecure: set.insecure,
                    dial_timeout: dial_timeout.as_deref(),
                    moved: if set.registries.is_empty() {
                        &nothing
                    } else {
                        moved
                    },
                };
                containerd::plan_hosts(current, &want, prev)
            }
            FileKind::ContainerdConfig { certs_dir, migrate } => {
                let want = !set.registries.is_empty();
                containerd::plan_config(current, certs_dir, want, *migrate, prev)
            }
            FileKind::RegistriesDropin => registries::plan(current, set, prev, context),
            FileKind::K3sYaml => k3s::plan(current, set, prev),
            FileKind::EarthlyConfig => earthly::plan(current, set, prev),
            FileKind::BuildxDefault { .. } => buildkit::plan(current, set, prev),
        }
    }

    /// Whether its client reads the file on every use, so a change needs no reload or restart
    /// (containerd and dockerd ≥ 28 read `hosts.toml` per pull).
    /// Earthly restarts its own buildkitd when the string changes.
    pub fn applies_without_reload(&self) -> bool {
        matches!(
            self,
            FileKind::ContainerdHosts { .. } | FileKind::EarthlyConfig
        )
    }

    /// Plan removing mirrorctl's entries (the file was edited since arm, so its original bytes
    /// cannot simply be put back).
    pub fn disarm(&self, current: &str, owned: &[String]) -> Result<Planned, PlanError> {
        let nothing = MirrorSet {
            registries: Vec::new(),
            insecure: false,
        };
        self.arm(Some(current), &nothing, owned, &[])
    }
}

impl TargetName {
    /// Config files, directories or daemon binaries whose presence under the root means the
    /// client is installed.
    pub fn detect_paths(self) -> Vec<&'static str> {
        match self {
            TargetName::Docker => {
                let mut v = vec![DAEMON_JSON, "/etc/docker"];
                v.extend(DOCKERD_BINARIES);
                v
            }
            TargetName::Buildkit => vec![
                BUILDKITD_TOML,
                "/etc/buildkit",
                "/usr/bin/buildkitd",
                "/usr/local/bin/buildkitd",
            ],
            TargetName::Containerd => vec![
                CONTAINERD_CONFIG,
                "/etc/containerd",
                "/usr/bin/containerd",
                "/usr/local/bin/containerd",
            ],
            TargetName::Registries => vec![
                "/etc/containers",
                "/usr/bin/podman",
                "/usr/bin/skopeo",
                "/usr/bin/crio",
                "/usr/bin/buildah",
            ],
            TargetName::K3s => k3s::DISTROS
                .iter()
                .flat_map(|d| std::iter::once(d.dir).chain(d.binaries))
                .collect(),
            // Per-user files: [`UserPaths`] says where (`host::earthly`, `host::buildx`).
            TargetName::Earthly | TargetName::Buildx => Vec::new(),
        }
    }
}

/// Where the per-user clients keep their files, as system paths (under the root), found from
/// the environment by `host::earthly` and `host::buildx`; `None`: not found (no home).
#[derive(Debug, Clone, Default)]
pub struct UserPaths {
    /// Earthly's config file.
    pub earthly_config: Option<String>,
    /// buildx's directory (`$BUILDX_CONFIG`, else `${DOCKER_CONFIG:-~/.docker}/buildx`).
    pub buildx_dir: Option<String>,
}

/// Where distributions install the dockerd binary.
pub const DOCKERD_BINARIES: [&str; 3] = [
    "/usr/bin/dockerd",
    "/usr/sbin/dockerd",
    "/usr/local/bin/dockerd",
];

pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";
pub const BUILDKITD_TOML: &str = "/etc/buildkit/buildkitd.toml";
pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
pub const CONTAINERD_CERTS_D: &str = containerd::setup::CERTS_D;

/// One file a target wants in a given state.
#[derive(Debug, Clone)]
pub struct FileJob {
    /// System path (not yet under `--root`).
    pub path: String,
    pub kind: FileKind,
}

/// What [`files_for`] needs to know about the host beyond the mirror set.
pub struct HostInfo<'a> {
    /// Does a system path exist under the root (for targets whose file list depends on what
    /// is installed)?
    pub exists: &'a dyn Fn(&str) -> bool,
    /// The dockerd version the docker target plans for (≥ 28 also reads
    /// `/etc/docker/certs.d/<host>/hosts.toml` for registries other than docker.io).
    pub dockerd: &'a dockerd_version::DockerdVersion,
    /// How the containerd target arms this host ([`containerd::setup::setup`]).
    pub containerd: &'a containerd::setup::Setup,
    /// `dial_timeout` for containerd's hosts (only for a containerd that reads it).
    pub dial_timeout: Option<String>,
    /// Where the per-user targets' files are (earthly, buildx).
    pub user: &'a UserPaths,
}

/// The files a target edits for `set`, or why it is skipped.
pub fn files_for(
    name: TargetName,
    set: &MirrorSet,
    host: &HostInfo,
) -> Result<Vec<FileJob>, String> {
    let dockerd = host.dockerd;
    match name {
        TargetName::Docker => {
            if let Some(reason) = docker_path_reason(set) {
                return Err(reason);
            }
            let others = non_hub(set);
            let mut jobs = Vec::new();
            if set.for_registry(crate::oci::DOCKER_HUB).is_some() {
                jobs.push(FileJob {
                    path: DAEMON_JSON.into(),
                    kind: FileKind::DaemonJson,
                });
            }
            if dockerd.reads_certs_d() {
                jobs.extend(others.iter().map(|r| FileJob {
                    path: format!(
                        "{}/{}/hosts.toml",
                        dockerd_version::DOCKER_CERTS_D,
                        containerd::host_dir_name(r)
                    ),
                    kind: FileKind::ContainerdHosts {
                        registry: r.to_string(),
                        moved: containerd::setup::Moved::default(),
                        dial_timeout: None,
                    },
                }));
            }
            if jobs.is_empty() {
                return Err(dockerd.skip_reason(&others));
            }
            Ok(jobs)
        }
        TargetName::Buildkit => Ok(vec![FileJob {
            path: BUILDKITD_TOML.into(),
            kind: FileKind::BuildkitToml,
        }]),
        TargetName::Containerd => Ok(containerd_jobs(set, host)),
        TargetName::Registries => Ok(vec![FileJob {
            path: registries::dropin_path(),
            kind: FileKind::RegistriesDropin,
        }]),
        TargetName::K3s => Ok(k3s::files(host.exists)
            .into_iter()
            .map(|path| FileJob {
                path,
                kind: FileKind::K3sYaml,
            })
            .collect()),
        TargetName::Earthly | TargetName::Buildx => user_files(name, set, host.user),
    }
}

/// The per-user targets' files: where [`UserPaths`] says.
fn user_files(name: TargetName, set: &MirrorSet, user: &UserPaths) -> Result<Vec<FileJob>, String> {
    let (path, kind) = match (name, &user.earthly_config, &user.buildx_dir) {
        (TargetName::Earthly, Some(p), _) => (p.clone(), FileKind::EarthlyConfig),
        (TargetName::Earthly, None, _) => {
            return Err("no home directory to find ~/.earthly/config.yml in (set HOME, or pass --earthly-config)".into())
        }
        (_, _, Some(dir)) => (
            format!("{}/{}", dir.trim_end_matches('/'), buildx::DEFAULT_TOML),
            FileKind::BuildxDefault {
                insecure: set.insecure,
            },
        ),
        (_, _, None) => {
            return Err("no home directory to find ~/.docker/buildx in (set HOME, DOCKER_CONFIG or BUILDX_CONFIG)".into())
        }
    };
    Ok(vec![FileJob { path, kind }])
}

/// containerd's files: a hosts.toml per registry of the set and per registry `--migrate`
/// moves settings for, and config.toml when [`containerd::setup::Setup`] edits it.
fn containerd_jobs(set: &MirrorSet, host: &HostInfo) -> Vec<FileJob> {
    let setup = host.containerd;
    let mut dirs: Vec<String> = set.registries.iter().map(|r| r.registry.clone()).collect();
    for d in setup.moved.keys() {
        if !dirs.contains(d) {
            dirs.push(d.clone());
        }
    }
    let mut jobs: Vec<FileJob> = dirs
        .into_iter()
        .map(|r| FileJob {
            path: format!(
                "{}/{}/hosts.toml",
                setup.certs_dir,
                containerd::host_dir_name(&r)
            ),
            kind: FileKind::ContainerdHosts {
                moved: setup.moved.get(&r).cloned().unwrap_or_default(),
                registry: r,
                dial_timeout: host.dial_timeout.clone(),
            },
        })
        .collect();
    if let Some(edit) = setup.config {
        jobs.push(FileJob {
            path: CONTAINERD_CONFIG.into(),
            kind: FileKind::ContainerdConfig {
                certs_dir: setup.certs_dir.clone(),
                migrate: edit.migrate,
            },
        });
    }
    jobs
}

/// The registries of `set` other than docker.io.
/// Why the docker target is skipped for a docker.io mirror with a project path, if one has.
/// dockerd puts a mirror's path before `/v2` (`https://h/dh/v2/…`; moby `PingV2Registry`,
/// `mirrorsToRegistryHosts`), which a registry serving the project under `/v2/dh/…` (Harbor)
/// does not answer, and dockerd before 24.0.8 refuses a mirror path outright.
fn docker_path_reason(set: &MirrorSet) -> Option<String> {
    let hub = set.for_registry(crate::oci::DOCKER_HUB)?;
    let m = hub.mirrors.iter().find(|m| m.path.is_some())?;
    Some(format!(
        "{m} has a project path, and dockerd puts a mirror's path before /v2 (`{m}/v2/…`), not after it as a Harbor proxy-cache project needs (`{}/…`); dockerd before 24.0.8 refuses a mirror path outright. Give docker a mirror without a path in a run of its own (`arm --target docker --mirror URL`); this run writes none of its files",
        m.v2_url()
    ))
}

fn non_hub(set: &MirrorSet) -> Vec<&str> {
    set.registries
        .iter()
        .map(|r| r.registry.as_str())
        .filter(|r| *r != crate::oci::DOCKER_HUB)
        .collect()
}

/// What a BuildKit-based target must be told about a mirror with a project path: BuildKit
/// splits a `mirrors` entry into host and path only since 0.12 (moby/buildkit e662e1df9,
/// `extractMirrorHostAndPath`); before, the whole entry was taken as the host.
pub fn project_path_note(name: TargetName, set: &MirrorSet) -> Option<String> {
    if !matches!(
        name,
        TargetName::Buildkit | TargetName::Buildx | TargetName::Earthly
    ) {
        return None;
    }
    let m = set.all_mirrors().into_iter().find(|m| m.path.is_some())?;
    Some(format!(
        "{m} has a project path: BuildKit 0.12 and later read it (`{}` → `{}/…`); older BuildKit takes the whole entry for a host name and does not reach the project (upgrade it, or mirror through a path-less URL)",
        m.location(),
        m.v2_url()
    ))
}

/// Why daemon.json's `insecure-registries` gets `http://host:port` (with the scheme), said when
/// this run writes daemon.json (`wrote_daemon_json`) for a mirror that needs an insecure entry.
pub fn insecure_scheme_note(
    name: TargetName,
    set: &MirrorSet,
    wrote_daemon_json: bool,
) -> Option<String> {
    if name != TargetName::Docker || !wrote_daemon_json {
        return None;
    }
    let hub = set.for_registry(crate::oci::DOCKER_HUB)?;
    let entries: Vec<String> = hub
        .mirrors
        .iter()
        .filter(|m| set.needs_insecure(m))
        .map(|m| m.url())
        .collect();
    if entries.is_empty() {
        return None;
    }
    Some(format!(
        "insecure-registries lists {} with the scheme: dockerd strips it (and logs a warning), and its built-in BuildKit before dockerd 25 needs it to speak plain HTTP to the mirror (a bare host:port makes `docker build` try HTTPS and fall back to Docker Hub)",
        entries.join(", ")
    ))
}

/// A note about registries a target cannot mirror although it was armed for others, or mirrors
/// through another file.
pub fn partial_note(
    name: TargetName,
    set: &MirrorSet,
    dockerd: &dockerd_version::DockerdVersion,
) -> Option<String> {
    if name != TargetName::Docker {
        return None;
    }
    let others = non_hub(set);
    if others.is_empty() {
        return None;
    }
    if dockerd.reads_certs_d() {
        return Some(format!(
            "{}: {} mirrored through {}/<host>/hosts.toml, read per pull by dockerd's containerd image store (`features.containerd-snapshotter`) and built-in BuildKit; with the classic image store `docker pull` ignores it",
            dockerd.describe,
            others.join(", "),
            dockerd_version::DOCKER_CERTS_D
        ));
    }
    if set.for_registry(crate::oci::DOCKER_HUB).is_some() {
        return Some(dockerd.skip_reason(&others));
    }
    None
}

#[cfg(test)]
mod path_mirror_tests {
    use super::*;

    #[test]
    fn docker_is_skipped_for_a_docker_io_project_mirror_only() {
        let set = |a: &[&str]| {
            let v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            MirrorSet::from_args(&v, "docker.io", false).unwrap()
        };
        let note = project_path_note(TargetName::Buildx, &set(&["https://h/dh"])).unwrap();
        assert!(note.contains("0.12") && note.contains("`h/dh`"), "{note}");
        assert_eq!(
            project_path_note(TargetName::Containerd, &set(&["https://h/dh"])),
            None
        );
        assert_eq!(
            project_path_note(TargetName::Buildkit, &set(&["https://h"])),
            None
        );
        let why = docker_path_reason(&set(&["https://h/dh"])).unwrap();
        assert!(
            why.contains("before /v2") && why.contains("https://h/v2/dh"),
            "{why}"
        );
        assert!(why.contains("24.0.8"), "{why}");
        assert_eq!(docker_path_reason(&set(&["https://h"])), None);
        assert_eq!(docker_path_reason(&set(&["ghcr.io=https://h/gh"])), None);
    }
}
