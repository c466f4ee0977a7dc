//! `mirrorctl render`: the file `arm` would write into an empty root, for a container image or
//! a golden config repository, and dockerd's flags for a container's `args` (docker:dind).
//!
//! Nothing here knows a client's rules. Every text comes from the target's own planner
//! ([`FileKind::arm`] with no current text, no owned entries and no context files), for the
//! file [`targets::files_for`] picks, as `arm --target T` would on a root where nothing
//! exists. dockerd's flags are the planned daemon.json's keys spelled as dockerd's flags.

use crate::error::{HintExt, UserError};
use crate::mirror::MirrorSet;
use crate::targets::{self, dockerd_version::DockerdVersion, FileJob, FileKind, TargetName};
use anyhow::Result;

/// What `render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// dockerd's `--registry-mirror=` / `--insecure-registry=` flags, one per line (docker:dind args)
    #[value(name = "dockerd-args")]
    DockerdArgs,
    /// /etc/docker/daemon.json (docker.io's mirrors; no `hosts` or `tls*` keys)
    #[value(name = "daemon.json")]
    DaemonJson,
    /// containerd's (and dockerd ≥ 28's) certs.d/<registry>/hosts.toml, for one registry
    #[value(name = "hosts.toml")]
    HostsToml,
    /// BuildKit's /etc/buildkit/buildkitd.toml
    #[value(name = "buildkitd.toml")]
    BuildkitdToml,
    /// The containers-registries.conf drop-in (podman, CRI-O, skopeo, buildah)
    #[value(name = "registries.conf")]
    RegistriesConf,
    /// k3s / rke2 registries.yaml
    #[value(name = "registries.yaml")]
    RegistriesYaml,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::DockerdArgs => "dockerd-args",
            Format::DaemonJson => "daemon.json",
            Format::HostsToml => "hosts.toml",
            Format::BuildkitdToml => "buildkitd.toml",
            Format::RegistriesConf => "registries.conf",
            Format::RegistriesYaml => "registries.yaml",
        }
    }

    /// The `arm` target whose planner writes this format.
    pub fn target(self) -> TargetName {
        match self {
            Format::DockerdArgs | Format::DaemonJson => TargetName::Docker,
            Format::HostsToml => TargetName::Containerd,
            Format::BuildkitdToml => TargetName::Buildkit,
            Format::RegistriesConf => TargetName::Registries,
            Format::RegistriesYaml => TargetName::K3s,
        }
    }
}

/// What to render.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub format: Format,
    pub set: &'a MirrorSet,
    /// The dockerd the docker formats are for (≥ 28 reads `/etc/docker/certs.d/<host>/hosts.toml`).
    pub dockerd: &'a DockerdVersion,
    /// hosts.toml: the registry whose file to render (`None`: the set's only registry).
    pub registry: Option<&'a str>,
}

/// A rendered text and what the user should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The file's text, or for dockerd-args the flags (see [`dockerd_args`]).
    pub text: String,
    /// dockerd-args: the flags, each one argv element.
    pub args: Vec<String>,
    /// Where `arm` writes the file (a system path); `None` for dockerd-args.
    pub path: Option<String>,
    /// Where it goes, what it does not cover, and how it combines with the rest.
    pub notes: Vec<String>,
}

/// dockerd's flag for each daemon.json key the docker planner writes. dockerd defines each
/// flag as a named option of its key (moby `installCommonConfigFlags`: `registry-mirror` →
/// `registry-mirrors`, `insecure-registry` → `insecure-registries`), so one setting given both
/// ways makes it refuse to start.
pub const DOCKERD_FLAGS: [(&str, &str); 2] = [
    (targets::docker::MIRRORS_KEY, "--registry-mirror"),
    (targets::docker::INSECURE_KEY, "--insecure-registry"),
];

/// daemon.json keys of the flags the docker:dind entrypoint passes (`--host`, `--tlsverify`,
/// `--tlscacert`, `--tlscert`, `--tlskey`; `dockerd-entrypoint.sh`): a daemon.json mounted
/// into dind with any of them makes dockerd refuse to start.
pub const DIND_FLAG_KEYS: [&str; 6] = [
    "hosts",
    "tls",
    "tlsverify",
    "tlscacert",
    "tlscert",
    "tlskey",
];

/// Render `req.format` for `req.set`.
pub fn render(req: &Request<'_>) -> Result<Rendered> {
    let jobs = jobs(req)?;
    let job = pick(req, &jobs)?;
    let text = plan_empty(req.format, job, req.set)?;
    let mut notes = notes(req, job, &jobs);
    if req.format == Format::DaemonJson {
        refuse_dind_keys(&text)?;
    }
    if req.format != Format::DockerdArgs {
        return Ok(Rendered {
            text,
            args: Vec::new(),
            path: Some(job.path.clone()),
            notes,
        });
    }
    let args = dockerd_args(&text)?;
    notes.push(format!(
        "give these flags, or mount the daemon.json `render daemon.json` prints, not both: dockerd refuses a setting that is a flag and in its config file ({})",
        DOCKERD_FLAGS.map(|(k, _)| k).join(", ")
    ));
    let mut text = args.join("\n");
    text.push('\n');
    Ok(Rendered {
        text,
        args,
        path: None,
        notes,
    })
}

/// The files `arm --target <format's target>` writes for the set on an empty root.
fn jobs(req: &Request<'_>) -> Result<Vec<FileJob>> {
    let nothing_exists = |_: &str| false;
    // containerd's plan for a host without config.toml (what `setup(None, …)` gives).
    let containerd = targets::containerd::setup::Setup::default();
    // Render has no per-user formats: no home is looked for.
    let user = targets::UserPaths::default();
    let host = targets::HostInfo {
        exists: &nothing_exists,
        dockerd: req.dockerd,
        containerd: &containerd,
        dial_timeout: None,
        user: &user,
    };
    targets::files_for(req.format.target(), req.set, &host)
        .map_err(|why| {
            UserError(format!(
                "{} has nothing to render: {why}",
                req.format.as_str()
            ))
        })
        .hint(certs_d_hint(req.dockerd))
}

/// The one job whose file this format is.
fn pick<'j>(req: &Request<'_>, jobs: &'j [FileJob]) -> Result<&'j FileJob> {
    if req.format != Format::HostsToml {
        if req.registry.is_some() {
            return Err(UserError(format!(
                "--for picks the registry of a hosts.toml; {} holds every registry it can",
                req.format.as_str()
            ))
            .into());
        }
        let wanted = |j: &&FileJob| {
            req.format.target() != TargetName::Docker || matches!(j.kind, FileKind::DaemonJson)
        };
        return jobs
            .iter()
            .find(wanted)
            .ok_or_else(|| {
                UserError(format!(
                    "{} holds docker.io's mirrors only, and no --mirror is for docker.io",
                    req.format.as_str()
                ))
            })
            .hint(certs_d_hint(req.dockerd));
    }
    let hosts: Vec<(&str, &FileJob)> = jobs
        .iter()
        .filter_map(|j| match &j.kind {
            FileKind::ContainerdHosts { registry, .. } => Some((registry.as_str(), j)),
            _ => None,
        })
        .collect();
    let names = || hosts.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", ");
    match (req.registry, hosts.as_slice()) {
        (None, [(_, only)]) => Ok(*only),
        (None, _) => Err(UserError(format!(
            "the mirrors are for {} registries ({}): a hosts.toml is one registry's, pick it with --for REGISTRY",
            hosts.len(),
            names()
        ))
        .into()),
        (Some(want), _) => match hosts.iter().find(|(r, _)| *r == want) {
            Some((_, j)) => Ok(*j),
            None => Err(UserError(format!(
                "--for {want}: no --mirror is for {want} (the mirrors are for {})",
                names()
            ))
            .into()),
        },
    }
}

/// How dockerd mirrors registries other than docker.io, for an error's hint.
fn certs_d_hint(dockerd: &DockerdVersion) -> String {
    if dockerd.reads_certs_d() {
        format!(
            "{} mirrors other registries through {}/<host>/hosts.toml: `mirrorctl render hosts.toml --for <host>`",
            dockerd.describe,
            targets::dockerd_version::DOCKER_CERTS_D
        )
    } else {
        format!(
            "dockerd {} and later mirror other registries through {}/<host>/hosts.toml (`mirrorctl render hosts.toml --for <host>`); give --dockerd-version for the image's dockerd",
            targets::dockerd_version::CERTS_D_SINCE,
            targets::dockerd_version::DOCKER_CERTS_D
        )
    }
}

/// The planner's text for `job`'s file on an empty root.
fn plan_empty(format: Format, job: &FileJob, set: &MirrorSet) -> Result<String> {
    job.kind
        .arm(None, set, &[], &[])
        .map(|p| p.text)
        .map_err(|e| {
            anyhow::anyhow!(
                "the {} planner refused an absent file (a mirrorctl bug): {e}",
                format.target().as_str()
            )
        })
}

/// dockerd's flags for a daemon.json the docker planner wrote: each key's flag (from
/// [`DOCKERD_FLAGS`]) once per list element, `--flag=value`, in the file's order.
pub fn dockerd_args(daemon_json: &str) -> Result<Vec<String>> {
    let doc: serde_json::Value = serde_json::from_str(daemon_json)?;
    let obj = doc
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("the planned daemon.json is not an object"))?;
    let mut args = Vec::new();
    for (key, value) in obj {
        let flag = DOCKERD_FLAGS
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, f)| *f)
            .ok_or_else(|| anyhow::anyhow!("daemon.json key `{key}` has no dockerd flag here"))?;
        let list = value
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("daemon.json `{key}` is not a list"))?;
        for v in list {
            let s = v
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("daemon.json `{key}` holds a non-string"))?;
            args.push(format!("{flag}={s}"));
        }
    }
    Ok(args)
}

/// A rendered daemon.json must not hold a key dind passes as a flag.
fn refuse_dind_keys(daemon_json: &str) -> Result<()> {
    let doc: serde_json::Value = serde_json::from_str(daemon_json)?;
    let clash: Vec<&str> = DIND_FLAG_KEYS
        .into_iter()
        .filter(|k| doc.get(k).is_some())
        .collect();
    if clash.is_empty() {
        return Ok(());
    }
    Err(anyhow::anyhow!(
        "the planned daemon.json holds {} (a mirrorctl bug): dind passes them as flags",
        clash.join(", ")
    ))
}

/// Where the file goes and what it does not cover.
fn notes(req: &Request<'_>, job: &FileJob, jobs: &[FileJob]) -> Vec<String> {
    let mut out = Vec::new();
    let target = req.format.target();
    out.extend(targets::project_path_note(target, req.set));
    if target == TargetName::Docker {
        out.extend(targets::insecure_scheme_note(target, req.set, true));
        out.extend(targets::partial_note(target, req.set, req.dockerd));
        for j in jobs.iter().filter(|j| j.path != job.path) {
            if let FileKind::ContainerdHosts { registry, .. } = &j.kind {
                out.push(format!(
                    "{registry}: mount `mirrorctl render hosts.toml --for {registry}` at {}",
                    j.path
                ));
            }
        }
    }
    out.extend(placement(req.format, job));
    out
}

/// Where each format's file goes (one line).
fn placement(format: Format, job: &FileJob) -> Option<String> {
    let p = &job.path;
    match format {
        Format::DockerdArgs => None,
        Format::DaemonJson => Some(format!(
            "mount it at {p}: it has no `hosts` or `tls*` keys, so the flags docker:dind's entrypoint passes do not clash with it"
        )),
        Format::HostsToml => {
            let mut s = format!(
                "containerd reads it at {p} when config.toml's CRI registry `config_path` names {} (`ctr --hosts-dir`)",
                targets::CONTAINERD_CERTS_D
            );
            // dockerd mirrors docker.io through registry-mirrors (daemon.json, the flags).
            if let FileKind::ContainerdHosts { registry, .. } = &job.kind {
                if registry != crate::oci::DOCKER_HUB {
                    let dir = p.trim_start_matches(targets::CONTAINERD_CERTS_D);
                    s.push_str(&format!(
                        "; dockerd {} and later at {}{dir}",
                        targets::dockerd_version::CERTS_D_SINCE,
                        targets::dockerd_version::DOCKER_CERTS_D
                    ));
                }
            }
            Some(s)
        }
        Format::BuildkitdToml => Some(format!(
            "buildkitd reads it at {p} when it starts (buildx: `docker buildx create --buildkitd-config FILE`)"
        )),
        Format::RegistriesConf => Some(format!(
            "a drop-in for {p}: planned for an empty root, so a [[registry]] table with the same prefix in the image's registries.conf is replaced, not merged (`mirrorctl arm` in the image copies its settings)"
        )),
        Format::RegistriesYaml => Some(format!(
            "k3s reads it at {p} (rke2: {}) when it starts",
            targets::k3s::RKE2_YAML
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::MirrorArg;

    fn set(args: &[&str], insecure: bool) -> MirrorSet {
        let parsed: Vec<MirrorArg> = args.iter().map(|a| MirrorArg::arm(a).unwrap()).collect();
        MirrorSet::new(&parsed, "docker.io", insecure).unwrap()
    }

    fn unknown() -> DockerdVersion {
        DockerdVersion {
            version: None,
            describe: "dockerd version not given".into(),
        }
    }

    fn go(format: Format, s: &MirrorSet, registry: Option<&str>) -> Result<Rendered> {
        render(&Request {
            format,
            set: s,
            dockerd: &unknown(),
            registry,
        })
    }

    #[test]
    fn dockerd_args_are_the_planned_daemon_json_as_flags() {
        let s = set(&["http://10.0.0.5:5000", "https://m.example"], false);
        let r = go(Format::DockerdArgs, &s, None).unwrap();
        assert_eq!(
            r.args,
            [
                "--registry-mirror=http://10.0.0.5:5000",
                "--registry-mirror=https://m.example",
                "--insecure-registry=http://10.0.0.5:5000",
            ]
        );
        assert_eq!(r.text, format!("{}\n", r.args.join("\n")));
        assert_eq!(r.path, None);
        let json = go(Format::DaemonJson, &s, None).unwrap();
        assert_eq!(dockerd_args(&json.text).unwrap(), r.args);
        assert_eq!(json.path.as_deref(), Some(targets::DAEMON_JSON));
    }

    #[test]
    fn a_daemon_json_key_without_a_flag_is_an_error_not_dropped() {
        assert!(dockerd_args("{\"debug\": true}").is_err());
        assert!(dockerd_args("{\"registry-mirrors\": \"x\"}").is_err());
        assert!(dockerd_args("[]").is_err());
        assert!(refuse_dind_keys("{\"hosts\": []}").is_err());
        assert!(refuse_dind_keys("{\"registry-mirrors\": []}").is_ok());
    }

    #[test]
    fn hosts_toml_is_one_registrys() {
        let s = set(&["http://a:5000", "quay.io=http://b:5000"], false);
        let e = go(Format::HostsToml, &s, None).unwrap_err();
        assert!(format!("{e:#}").contains("docker.io, quay.io"), "{e:#}");
        assert_eq!(crate::error::exit_code(&e), 2);
        let q = go(Format::HostsToml, &s, Some("quay.io")).unwrap();
        assert_eq!(
            q.path.as_deref(),
            Some("/etc/containerd/certs.d/quay.io/hosts.toml")
        );
        assert!(q.text.contains("http://b:5000") && !q.text.contains("http://a:5000"));
        let e = go(Format::HostsToml, &s, Some("ghcr.io")).unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);
        let only = set(&["quay.io=http://b:5000"], false);
        assert_eq!(go(Format::HostsToml, &only, None).unwrap().text, q.text);
        let e = go(Format::BuildkitdToml, &s, Some("quay.io")).unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);
    }

    #[test]
    fn docker_formats_without_a_docker_io_mirror_are_usage_errors() {
        let s = set(&["quay.io=http://b:5000"], false);
        for f in [Format::DockerdArgs, Format::DaemonJson] {
            let e = go(f, &s, None).unwrap_err();
            assert_eq!(crate::error::exit_code(&e), 2, "{e:#}");
            let v28 = DockerdVersion::known(28, 0, "t");
            let e = render(&Request {
                format: f,
                set: &s,
                dockerd: &v28,
                registry: None,
            })
            .unwrap_err();
            assert_eq!(crate::error::exit_code(&e), 2, "{e:#}");
            assert!(
                crate::error::hints(&e)
                    .concat()
                    .contains("render hosts.toml --for"),
                "{e:#}"
            );
        }
    }

    #[test]
    fn other_registries_are_named_for_dockerd() {
        let s = set(&["http://a:5000", "quay.io=http://b:5000"], false);
        let r = go(Format::DaemonJson, &s, None).unwrap();
        assert!(r.notes.iter().any(|n| n.contains("quay.io")), "{r:?}");
        let v28 = DockerdVersion::known(28, 0, "--dockerd-version");
        let r = render(&Request {
            format: Format::DockerdArgs,
            set: &s,
            dockerd: &v28,
            registry: None,
        })
        .unwrap();
        assert!(
            r.notes.iter().any(|n| n.contains(
                "quay.io: mount `mirrorctl render hosts.toml --for quay.io` at /etc/docker/certs.d/quay.io/hosts.toml"
            )),
            "{r:?}"
        );
    }
}
