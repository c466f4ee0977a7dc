//! A private dockerd 20.10 whose config, pid file and socket live under a mirrorctl `--root`
//! (`<root>/etc/docker/daemon.json`, `<root>/var/run/docker.pid`, `<root>/var/run/docker.sock`),
//! so `mirrorctl --root <root> … --reload` finds it exactly as it would find the system one.
//!
//! dockerd 20.10 always writes `/etc/docker/key.json` and creates `/run/docker/plugins`, so it
//! runs in a private mount namespace with a private dir bound on `/etc/docker` and a tmpfs on
//! `/run`; it uses its own private containerd (not shared with a test's `ctr` containerd:
//! dockerd 20.10 stores manifests in containerd's content store, which would let a later `ctr`
//! pull skip the mirror), vfs storage, no bridge/iptables, and the proxy guard, so Docker Hub is
//! unreachable.

use super::containerd::Containerd;
use super::{guard, run_timeout, Daemon, Out};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Dockerd {
    pub daemon: Daemon,
    /// dockerd's own containerd (declared after `daemon`: dropped after it).
    pub containerd: Containerd,
    /// `<root>/var/run/docker.sock` (the pid file is `<root>/var/run/docker.pid`, the config
    /// `<root>/etc/docker/daemon.json`).
    pub socket: PathBuf,
    /// Scratch: data-root, exec-root, the dir bound on /etc/docker, the CLI's DOCKER_CONFIG.
    pub aux: PathBuf,
}

/// The user's daemon.json before arm: another key, 4-space indent (must survive byte for byte).
pub const USER_DAEMON_JSON: &str = "{\n    \"max-concurrent-downloads\": 3\n}\n";

/// The docker CLI to use: `/usr/bin/docker` if it exists, else `docker` on PATH.
pub fn docker_cli() -> PathBuf {
    let deb = Path::new("/usr/bin/docker");
    if deb.is_file() {
        deb.to_path_buf()
    } else {
        PathBuf::from("docker")
    }
}

/// A `PATH` whose first entry is `bin_dir` holding `docker` → [`docker_cli`]: the Debian CLI
/// (20.10) builds with BuildKit by itself, a newer `docker` on PATH needs the buildx plugin,
/// which is not installed here.
fn path_with_docker_cli(bin_dir: &Path) -> String {
    std::fs::create_dir_all(bin_dir).unwrap();
    let link = bin_dir.join("docker");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink(docker_cli(), &link).unwrap();
    }
    format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Write `<dir>/Dockerfile` with `FROM <image>` plus a label (so the build produces an image of
/// its own), creating `dir`. Returns `dir`.
pub fn write_from_dockerfile(dir: &Path, image: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {image}\nLABEL mirrorctl.test=1\n"),
    )
    .unwrap();
    dir.to_path_buf()
}

/// Does `GET /_ping` on the unix socket answer 200?
pub fn ping(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
}

impl Dockerd {
    /// Start dockerd with `--config-file <root>/etc/docker/daemon.json` (which must exist:
    /// dockerd refuses an explicit config file that is missing), scratch (and its own
    /// containerd) in `aux`. Waits until `/_ping` answers. Panics with dockerd's log if it exits.
    /// Restarting = dropping (or [`Dockerd::stop`]) and starting again with the same dirs.
    pub fn start(root: &Path, aux: &Path) -> Dockerd {
        Dockerd::try_start(root, aux).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Dockerd::start`], but returns dockerd's log when it exits during start-up
    /// (e.g. it refused the daemon.json).
    pub fn try_start(root: &Path, aux: &Path) -> Result<Dockerd, String> {
        Dockerd::try_start_with(root, aux, &[])
    }

    /// Like [`Dockerd::try_start`], with `extra` dockerd flags after the harness's own (e.g.
    /// `--registry-mirror=…`, as a docker:dind container's `args` add them).
    pub fn try_start_with(root: &Path, aux: &Path, extra: &[String]) -> Result<Dockerd, String> {
        let containerd = Containerd::start(&aux.join("containerd"));
        let config = root.join("etc/docker/daemon.json");
        let run = root.join("var/run");
        std::fs::create_dir_all(&run).unwrap();
        let pidfile = run.join("docker.pid");
        let socket = run.join("docker.sock");
        let etc = aux.join("etc-docker");
        let cli = aux.join("cli");
        for d in [&etc, &cli] {
            std::fs::create_dir_all(d).unwrap();
        }
        if !cli.join("config.json").exists() {
            std::fs::write(cli.join("config.json"), "{}").unwrap();
        }
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "set -e; mount -n -t tmpfs tmpfs /run; mount -n --bind \"$1\" /etc/docker; \
                 shift; exec dockerd \"$@\"",
            )
            .arg("sh")
            .arg(&etc)
            .arg("--config-file")
            .arg(&config)
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(aux.join("data"))
            .arg("--exec-root")
            .arg(aux.join("exec"))
            .arg("--containerd")
            .arg(&containerd.socket)
            .args([
                "--storage-driver=vfs",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
                "--debug",
            ])
            .args(extra);
        guard(&mut cmd);
        let mut daemon = Daemon::spawn("dockerd", cmd, aux);
        let s = socket.clone();
        daemon.wait_ready("/_ping answers", Duration::from_secs(60), |_| ping(&s))?;
        Ok(Dockerd {
            daemon,
            containerd,
            socket,
            aux: aux.to_path_buf(),
        })
    }

    /// Stop it and its containerd (SIGTERM to the group, then SIGKILL).
    pub fn stop(&mut self) {
        self.daemon.stop();
        self.containerd.daemon.stop();
    }

    /// `unix://<socket>`, for `DOCKER_HOST` when a program under test runs the docker CLI.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Let `cmd` (e.g. `mirrorctl verify --client docker`) reach this dockerd as a user's docker
    /// CLI would: `DOCKER_HOST`, the private `DOCKER_CONFIG` and a `PATH` with [`docker_cli`]
    /// first (see `path_with_docker_cli`).
    pub fn client_env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.aux.join("cli"))
            .env("PATH", path_with_docker_cli(&self.aux.join("cli-bin")))
    }

    /// `docker image inspect --format '{{json .RepoDigests}}' <reference>`.
    pub fn repo_digests(&self, reference: &str) -> Out {
        let mut c = self.docker();
        c.args(["image", "inspect", "--format", "{{json .RepoDigests}}"])
            .arg(reference);
        run_timeout(&mut c, Duration::from_secs(60))
    }

    /// `docker -H unix://<socket>` with a private DOCKER_CONFIG and the proxy guard.
    /// The CLI is Debian's `/usr/bin/docker` (20.10, from docker.io, what CI has) when present,
    /// else `docker` on PATH: a newer CLI without the buildx plugin cannot `DOCKER_BUILDKIT=1`.
    pub fn docker(&self) -> Command {
        let mut c = Command::new(docker_cli());
        c.arg("-H").arg(format!("unix://{}", self.socket.display()));
        c.env("DOCKER_CONFIG", self.aux.join("cli"));
        guard(&mut c);
        c
    }

    /// `DOCKER_BUILDKIT=1 docker build --pull -t <tag> <context>`: dockerd's built-in BuildKit
    /// resolving the Dockerfile's `FROM` (through the mirror when armed). `context` needs a
    /// `Dockerfile`; see [`write_from_dockerfile`].
    pub fn build(&self, context: &Path, tag: &str) -> Out {
        let mut c = self.docker();
        c.env("DOCKER_BUILDKIT", "1");
        c.args(["build", "--pull", "--progress", "plain", "-t", tag])
            .arg(context);
        run_timeout(&mut c, Duration::from_secs(180))
    }

    /// `docker pull <reference>` (+ extra args such as `--platform linux/arm64`).
    pub fn pull(&self, reference: &str, extra: &[&str]) -> Out {
        let mut c = self.docker();
        c.arg("pull").args(extra).arg(reference);
        run_timeout(&mut c, Duration::from_secs(120))
    }

    /// `docker rmi -f <reference>` (result ignored by most callers).
    pub fn rmi(&self, reference: &str) -> Out {
        let mut c = self.docker();
        c.args(["rmi", "-f", reference]);
        run_timeout(&mut c, Duration::from_secs(60))
    }

    /// The "Registry Mirrors" that `docker info` reports, as dockerd normalised them
    /// (it appends a `/`, e.g. `http://127.0.0.1:5001/`).
    pub fn mirrors(&self) -> Vec<String> {
        let mut c = self.docker();
        c.args(["info", "--format", "{{json .RegistryConfig.Mirrors}}"]);
        let o = run_timeout(&mut c, Duration::from_secs(60));
        o.assert_ok();
        let v: serde_json::Value = serde_json::from_str(o.stdout.trim())
            .unwrap_or_else(|e| panic!("docker info output not JSON ({e}): {o}"));
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The insecure registry CIDRs/hosts `docker info` reports.
    pub fn insecure_registries(&self) -> Vec<String> {
        let mut c = self.docker();
        c.args(["info", "--format", "{{json .RegistryConfig.IndexConfigs}}"]);
        let o = run_timeout(&mut c, Duration::from_secs(60));
        o.assert_ok();
        let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap_or_default();
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, c)| c["Secure"] == serde_json::Value::Bool(false))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Wait (up to `timeout`) until `docker info` lists exactly these mirrors (after a SIGHUP).
    pub fn wait_mirrors(&self, want: &[String], timeout: Duration) -> Result<(), Vec<String>> {
        let mut last = vec![];
        let ok = super::wait_until(timeout, || {
            last = self.mirrors();
            last == want
        });
        if ok {
            Ok(())
        } else {
            Err(last)
        }
    }
}
