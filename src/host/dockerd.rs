//! dockerd: its pid file, its API endpoint, `/info` (mirrors, version, proxies), its command
//! line flags and its version.
//!
//! One rule for the endpoint, used by `--reload`'s confirmation and by `verify --client
//! docker|buildkit` alike: `DOCKER_HOST` when set (as the docker CLI does), else the socket
//! under `--root` (`<root>/var/run/docker.sock`).

use super::CHILD_TIMEOUT;
use crate::fsutil::Root;
use crate::mirror::Mirror;
use crate::process;
use crate::targets::dockerd_version::{self, DockerdVersion};
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Where dockerd writes its pid (`--pidfile`'s default, and its `/run` spelling).
pub const PID_FILES: [&str; 2] = ["/var/run/docker.pid", "/run/docker.pid"];
/// dockerd's API socket (`-H unix:///var/run/docker.sock`).
pub const SOCKET: &str = "/var/run/docker.sock";
/// Where distributions install the dockerd binary.
pub use crate::targets::DOCKERD_BINARIES as BINARIES;

/// The pid of the running dockerd, from its pid file under the root (checked to be `dockerd`).
pub fn pid(root: &Root) -> Option<i32> {
    super::daemon_pid(root, &PID_FILES, "dockerd")
}

/// How to reach dockerd's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket (`unix://…`, or the default socket under the root).
    Unix(PathBuf),
    /// Anything else `DOCKER_HOST` may say (`tcp://…`, `ssh://…`): reached through the docker CLI.
    Other(String),
}

impl Endpoint {
    /// The value for `docker -H`.
    pub fn host_arg(&self) -> String {
        match self {
            Endpoint::Unix(p) => format!("unix://{}", p.display()),
            Endpoint::Other(h) => h.clone(),
        }
    }

    /// Whether something could be listening (a unix socket must exist).
    pub fn present(&self) -> bool {
        match self {
            Endpoint::Unix(p) => p.exists(),
            Endpoint::Other(_) => true,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
            Endpoint::Other(h) => f.write_str(h),
        }
    }
}

/// `DOCKER_HOST` when set, else `<root>/var/run/docker.sock`.
pub fn endpoint(root: &Root) -> Endpoint {
    endpoint_from(root, std::env::var("DOCKER_HOST").ok().as_deref())
}

fn endpoint_from(root: &Root, docker_host: Option<&str>) -> Endpoint {
    match docker_host.map(str::trim).filter(|h| !h.is_empty()) {
        Some(h) => match h.strip_prefix("unix://") {
            Some(p) => Endpoint::Unix(PathBuf::from(p)),
            None => Endpoint::Other(h.to_string()),
        },
        None => Endpoint::Unix(root.resolve(SOCKET).unwrap_or_else(|_| root.join(SOCKET))),
    }
}

/// What `GET /info` said.
#[derive(Debug, Clone, PartialEq)]
pub struct Info(pub serde_json::Value);

impl Info {
    /// The registry mirrors dockerd has loaded, normalised (`http://m:5000`).
    pub fn mirrors(&self) -> Vec<String> {
        self.0
            .pointer("/RegistryConfig/Mirrors")
            .and_then(|m| m.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .map(|s| {
                        Mirror::parse_lenient(s)
                            .map(|m| m.url())
                            .unwrap_or_else(|| s.trim_end_matches('/').to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `major.minor` of the answering dockerd.
    pub fn server_version(&self) -> Option<(u32, u32)> {
        self.0
            .get("ServerVersion")?
            .as_str()
            .and_then(dockerd_version::parse)
    }

    /// dockerd's own proxy settings (`HttpProxy`, `HttpsProxy`, `NoProxy`), as environment
    /// variable names, for [`crate::registry::proxy_for`].
    pub fn proxy_env(&self, var: &str) -> Option<String> {
        let field = match var {
            "HTTPS_PROXY" => "HttpsProxy",
            "HTTP_PROXY" => "HttpProxy",
            "NO_PROXY" => "NoProxy",
            _ => return None,
        };
        self.0.get(field)?.as_str().map(String::from)
    }
}

/// Ask dockerd at `endpoint` for `/info`: over the unix socket directly, else with
/// `docker -H <endpoint> info --format '{{json .}}'` (the same fields).
pub fn info(endpoint: &Endpoint) -> Result<Info> {
    match endpoint {
        Endpoint::Unix(sock) => info_over_socket(sock).map(Info),
        Endpoint::Other(host) => {
            let mut c = Command::new("docker");
            c.args(["-H", host, "info", "--format", "{{json .}}"]);
            let out = process::run(c, None, CHILD_TIMEOUT)?;
            if !out.status.success() {
                bail!("`docker info` failed: {}", out.last_line());
            }
            let v = serde_json::from_str(out.stdout.trim())
                .context("`docker info` did not print JSON")?;
            Ok(Info(v))
        }
    }
}

fn info_over_socket(sock: &std::path::Path) -> Result<serde_json::Value> {
    let mut s = UnixStream::connect(sock)
        .with_context(|| format!("cannot reach dockerd at `{}`", sock.display()))?;
    s.set_read_timeout(Some(CHILD_TIMEOUT))?;
    s.set_write_timeout(Some(CHILD_TIMEOUT))?;
    s.write_all(b"GET /info HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("dockerd sent a malformed HTTP response")?;
    if !head.starts_with("HTTP/1.") || head.split_whitespace().nth(1) != Some("200") {
        bail!(
            "dockerd answered /info with `{}`",
            head.lines().next().unwrap_or("")
        );
    }
    serde_json::from_str(body).context("dockerd's /info is not JSON")
}

/// The arguments dockerd (`pid`) was started with.
pub fn args(pid: i32) -> Vec<String> {
    super::cmdline(pid, "dockerd")
}

/// dockerd's command-line flags that conflict with the daemon.json keys mirrorctl writes:
/// dockerd refuses to start (or to reload) when a setting is both a flag and in the file.
pub fn conflicting_flags(pid: i32, writes_insecure: bool) -> Vec<String> {
    args(pid)
        .into_iter()
        .filter(|a| {
            a.starts_with("--registry-mirror")
                || (writes_insecure && a.starts_with("--insecure-registry"))
        })
        .collect()
}

/// The values of dockerd's `--insecure-registry` flags.
pub fn insecure_registry_flags(pid: i32) -> Vec<String> {
    super::flag_values(&args(pid), "--insecure-registry")
}

/// `<binary> --version` under the deadline, parsed.
fn version_of(binary: &std::path::Path) -> Result<(u32, u32), String> {
    super::binary_version(binary, dockerd_version::parse)
}

/// Where the planner's dockerd version came from when it was given, not asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSource {
    Flag,
    Env,
}

impl VersionSource {
    pub fn describe(self) -> &'static str {
        match self {
            VersionSource::Flag => "--dockerd-version",
            VersionSource::Env => "MIRRORCTL_DOCKERD_VERSION",
        }
    }
}

/// The dockerd version the docker target plans for: the given one (no binary is run), else
/// `--version` of the dockerd installed under the root (`<root>/usr/bin/dockerd`, …; on the
/// real root also the one on `PATH`). A bad given version is a usage error; a dockerd that
/// cannot be asked gives an unknown version (treated as older than 28).
pub fn planned_version(
    root: &Root,
    given: Option<(&str, VersionSource)>,
) -> Result<DockerdVersion, crate::error::UserError> {
    if let Some((v, source)) = given {
        let (major, minor) = dockerd_version::parse(v).ok_or_else(|| {
            crate::error::UserError(format!(
                "{} `{v}` is not a version like 28.0.1 or 20.10",
                source.describe()
            ))
        })?;
        return Ok(DockerdVersion::known(major, minor, source.describe()));
    }
    let mut candidates: Vec<PathBuf> = BINARIES
        .iter()
        .filter_map(|b| root.resolve(b).ok())
        .filter(|p| p.is_file())
        .collect();
    if root.is_real() && candidates.is_empty() {
        candidates.push(PathBuf::from("dockerd"));
    }
    let Some(binary) = candidates.first() else {
        return Ok(DockerdVersion {
            version: None,
            describe: format!(
                "dockerd version unknown (no dockerd binary under `{}`)",
                root.path().display()
            ),
        });
    };
    Ok(match version_of(binary) {
        Ok((major, minor)) => {
            DockerdVersion::known(major, minor, &format!("`{} --version`", binary.display()))
        }
        Err(why) => DockerdVersion {
            version: None,
            describe: format!("dockerd version unknown ({why})"),
        },
    })
}

/// The version of the dockerd running as `pid`: its API's `ServerVersion`, else its binary's
/// `--version` (`/proc/<pid>/exe`), both under the deadline.
pub fn running_version(root: &Root, pid: i32) -> Option<(u32, u32)> {
    let ep = endpoint(root);
    if ep.present() {
        if let Some(v) = info(&ep).ok().and_then(|i| i.server_version()) {
            return Some(v);
        }
    }
    if super::comm(pid).as_deref() != Some("dockerd") {
        return None;
    }
    version_of(std::path::Path::new(&format!("/proc/{pid}/exe"))).ok()
}

/// Send SIGHUP to dockerd and wait until its API lists `expected` mirrors (when its endpoint
/// can be reached). Returns what was confirmed, or says what could not be.
pub fn reload(root: &Root, pid: i32, expected: &[String]) -> Result<Reloaded> {
    super::sighup(pid, "dockerd")?;
    let ep = endpoint(root);
    if !ep.present() {
        return Ok(Reloaded::Unconfirmed(format!(
            "sent SIGHUP to dockerd (pid {pid}); its socket `{ep}` is not there to confirm"
        )));
    }
    let wait = Duration::from_secs(15);
    let deadline = std::time::Instant::now() + wait;
    loop {
        let last = info(&ep).map(|i| i.mirrors()).unwrap_or_default();
        if last == expected {
            return Ok(Reloaded::Confirmed(format!(
                "dockerd (pid {pid}) reloaded; `docker info` lists mirrors [{}]",
                expected.join(", ")
            )));
        }
        if std::time::Instant::now() >= deadline {
            bail!(
                "sent SIGHUP to dockerd (pid {pid}) but after {} s `docker info` lists mirrors [{}], expected [{}]; check dockerd's log for `Error reloading configuration`",
                wait.as_secs(),
                last.join(", "),
                expected.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The outcome of [`reload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// `docker info` lists the expected mirrors.
    Confirmed(String),
    /// The signal was sent but nothing could confirm it took.
    Unconfirmed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_rule() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        assert_eq!(
            endpoint_from(&root, None),
            Endpoint::Unix(t.path().join("var/run/docker.sock"))
        );
        assert_eq!(
            endpoint_from(&root, Some("unix:///x/d.sock")),
            Endpoint::Unix(PathBuf::from("/x/d.sock"))
        );
        assert_eq!(
            endpoint_from(&Root::system(), Some("tcp://10.0.0.1:2375")),
            Endpoint::Other("tcp://10.0.0.1:2375".into())
        );
        let system = Root::system();
        assert_eq!(
            endpoint_from(&system, Some(" ")),
            Endpoint::Unix(system.resolve(SOCKET).unwrap())
        );
    }

    #[test]
    fn info_fields() {
        let i = Info(serde_json::json!({
            "ServerVersion": "20.10.24+dfsg1",
            "RegistryConfig": {"Mirrors": ["http://M:5000/", "https://x.example/"]},
            "HttpsProxy": "http://p:3128", "NoProxy": "localhost"
        }));
        assert_eq!(i.mirrors(), vec!["http://m:5000", "https://x.example"]);
        assert_eq!(i.server_version(), Some((20, 10)));
        assert_eq!(i.proxy_env("HTTPS_PROXY").as_deref(), Some("http://p:3128"));
        assert_eq!(i.proxy_env("HTTP_PROXY"), None);
        assert_eq!(Info(serde_json::json!({})).mirrors(), Vec::<String>::new());
    }

    #[test]
    fn given_versions_run_nothing_and_name_their_source() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        let v = planned_version(&root, Some(("28.0.1", VersionSource::Env))).unwrap();
        assert_eq!(v.version, Some((28, 0)));
        assert!(
            v.describe.contains("MIRRORCTL_DOCKERD_VERSION"),
            "{}",
            v.describe
        );
        let e = planned_version(&root, Some(("new", VersionSource::Flag))).unwrap_err();
        assert!(e.0.contains("--dockerd-version `new`"), "{e}");
        // No dockerd under this root: unknown, said so.
        let v = planned_version(&root, None).unwrap();
        assert_eq!(v.version, None);
        assert!(v.describe.contains("no dockerd binary"), "{}", v.describe);
    }

    #[test]
    fn the_roots_dockerd_is_asked() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let d = bin.join("dockerd");
        std::fs::write(
            &d,
            "#!/bin/sh\necho 'Docker version 28.1.1, build 4eba377'\n",
        )
        .unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Another test thread's fork may still hold the script's write descriptor (ETXTBSY).
        let mut v = planned_version(&Root::new(t.path()), None).unwrap();
        for _ in 0..50 {
            if !v.describe.contains("Text file busy") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            v = planned_version(&Root::new(t.path()), None).unwrap();
        }
        assert_eq!(v.version, Some((28, 1)), "{}", v.describe);
        assert!(
            v.describe.contains("usr/bin/dockerd --version"),
            "{}",
            v.describe
        );
    }
}
