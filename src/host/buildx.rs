//! docker buildx on the machine `--root` describes: its directory (buildx's own rule), the
//! builder records in it, and running `docker buildx` (each child under a deadline).

use super::users::{self, Located};
use crate::fsutil::{self, Root};
use crate::process;
use crate::targets::buildx::{self, Builder};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Where the docker CLI finds the buildx plugin (distribution packages, Docker's packages).
pub const PLUGINS: [&str; 4] = [
    "/usr/libexec/docker/cli-plugins/docker-buildx",
    "/usr/lib/docker/cli-plugins/docker-buildx",
    "/usr/local/lib/docker/cli-plugins/docker-buildx",
    "/usr/local/libexec/docker/cli-plugins/docker-buildx",
];

/// How long one `docker buildx rm` or `create` may take (a kubernetes driver waits for its
/// deployment; without `--bootstrap` the docker-container driver starts nothing).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The docker CLI's config directory: `DOCKER_CONFIG`, else `~/.docker` (`HOME`, else the
/// current user's home in the root's passwd).
fn docker_config(root: &Root) -> Option<(String, String)> {
    if let Some(d) = users::env_path("DOCKER_CONFIG") {
        return Some((d, "DOCKER_CONFIG".into()));
    }
    let home = users::env_home().or_else(|| users::own_home(root))?;
    Some((
        format!("{}/.docker", home.trim_end_matches('/')),
        "~/.docker".into(),
    ))
}

/// buildx's directory: `BUILDX_CONFIG`, else `<docker config dir>/buildx`
/// (`util/confutil/config.go`).
pub fn dir(root: &Root) -> Option<Located> {
    if let Some(d) = users::env_path("BUILDX_CONFIG") {
        return Some(Located {
            path: d,
            how: "BUILDX_CONFIG".into(),
            explicit: true,
        });
    }
    let (d, how) = docker_config(root)?;
    Some(Located {
        path: format!("{d}/buildx"),
        how: format!("{how}/buildx"),
        explicit: how == "DOCKER_CONFIG",
    })
}

/// buildx is there when its directory exists (any buildx run makes it) or its plugin is
/// installed.
pub fn detected(root: &Root, dir: Option<&Located>) -> bool {
    let own_plugin = docker_config(root).map(|(d, _)| format!("{d}/cli-plugins/docker-buildx"));
    dir.is_some_and(|d| root.exists(&d.path))
        || PLUGINS.iter().any(|p| root.exists(p))
        || own_plugin.is_some_and(|p| root.exists(&p))
}

/// The builder records under `<dir>/instances/` (system path), by name: each parsed, or why
/// not.
pub fn builders(root: &Root, dir: &str) -> Vec<(String, Result<Builder, String>)> {
    let inst = format!("{}/{}", dir.trim_end_matches('/'), buildx::INSTANCES);
    let Ok(real) = root.resolve(&inst) else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(&real) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let parsed = match fsutil::read_optional(&real.join(&n)) {
                Ok(Some(text)) => buildx::parse_record(&text),
                Ok(None) => Err("vanished while reading".into()),
                Err(e) => Err(format!("{e:#}")),
            };
            (n, parsed)
        })
        .collect()
}

/// `docker buildx` with `args`, its store at `dir` (a real path: `BUILDX_CONFIG`), and
/// `KUBECONFIG` when given.
pub fn run(
    dir: &Path,
    args: &[String],
    kubeconfig: Option<&str>,
) -> Result<process::Finished, process::ProcessError> {
    let mut c = Command::new("docker");
    c.arg("buildx").args(args).env("BUILDX_CONFIG", dir);
    if let Some(k) = kubeconfig {
        c.env("KUBECONFIG", k);
    }
    process::run(c, None, RUN_TIMEOUT)
}

/// The installed buildx's `major.minor` (`docker buildx version`), if it runs.
pub fn version(dir: &Path) -> Option<(u32, u32)> {
    let mut c = Command::new("docker");
    c.args(["buildx", "version"]).env("BUILDX_CONFIG", dir);
    let out = process::run(c, None, super::CHILD_TIMEOUT).ok()?;
    out.status
        .success()
        .then(|| buildx::parse_version(&out.stdout))
        .flatten()
}

/// A command line as shown to the user.
pub fn shown(args: &[String]) -> String {
    let mut v = vec!["docker".to_string(), "buildx".to_string()];
    v.extend(args.iter().map(|a| buildx::shell_quote(a)));
    v.join(" ")
}
