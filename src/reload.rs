//! Making daemons apply what was written: dockerd reloads `registry-mirrors` and
//! `insecure-registries` on SIGHUP (confirmed through its API); BuildKit and containerd need a
//! restart, done with systemd when it runs the real root, else printed as the exact command.

use crate::apply::Ctx;
use crate::mirror::Mirror;
use crate::targets::dockerd_version;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// The daemon must reload or restart before the change takes effect.
    pub needed: bool,
    /// mirrorctl did it (and confirmed it where it can).
    pub done: bool,
    /// What applies the change (`SIGHUP dockerd (pid 42)`, `systemctl restart containerd`).
    pub action: String,
    pub detail: String,
}

impl ReloadReport {
    pub fn todo(action: impl Into<String>, detail: impl Into<String>) -> ReloadReport {
        ReloadReport {
            needed: true,
            done: false,
            action: action.into(),
            detail: detail.into(),
        }
    }
}

/// The pid of a running daemon from `<root>/var/run/<stem>.pid` (or `<root>/run/<stem>.pid`),
/// checked against `/proc/<pid>/comm` so a stale pid file never gets a signal sent to a stranger.
pub fn daemon_pid(ctx: &Ctx, stem: &str, comm: &str) -> Option<i32> {
    for p in [format!("/var/run/{stem}.pid"), format!("/run/{stem}.pid")] {
        let pid = ctx
            .resolve(&p)
            .ok()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| t.trim().parse::<i32>().ok());
        if let Some(pid) = pid.filter(|p| *p > 1) {
            let running = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if running.trim() == comm {
                return Some(pid);
            }
        }
    }
    None
}

/// The pid of a running dockerd (`<root>/var/run/docker.pid`).
pub fn dockerd_pid(ctx: &Ctx) -> Option<i32> {
    daemon_pid(ctx, "docker", "dockerd")
}

/// dockerd's command line flags that conflict with daemon.json keys mirrorctl writes.
/// dockerd refuses to start (or to reload) when a key is both a flag and in the file.
pub fn dockerd_conflicting_flags(pid: i32, writes_insecure: bool) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).to_string())
        .filter(|a| {
            a.starts_with("--registry-mirror")
                || (writes_insecure && a.starts_with("--insecure-registry"))
        })
        .collect()
}

/// dockerd's API socket under the root (`DOCKER_HOST=unix://…` is honoured on the real root).
pub fn docker_socket(ctx: &Ctx) -> PathBuf {
    if ctx.is_real_root() {
        if let Ok(h) = std::env::var("DOCKER_HOST") {
            if let Some(p) = h.strip_prefix("unix://") {
                return PathBuf::from(p);
            }
        }
    }
    ctx.resolve("/var/run/docker.sock")
        .unwrap_or_else(|_| ctx.root.join("var/run/docker.sock"))
}

/// `GET /info` over dockerd's unix socket.
pub fn docker_info(sock: &Path) -> Result<serde_json::Value> {
    let mut s = UnixStream::connect(sock)
        .with_context(|| format!("cannot reach dockerd at `{}`", sock.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
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

/// The mirrors dockerd has loaded, normalised.
pub fn loaded_mirrors(info: &serde_json::Value) -> Vec<String> {
    info.pointer("/RegistryConfig/Mirrors")
        .and_then(|m| m.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .map(|s| {
                    Mirror::parse_lenient(s)
                        .map(|m| m.url())
                        .unwrap_or_else(|| s.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Send SIGHUP to dockerd and wait until its API reports `expected` mirrors (when the socket
/// can be reached). Returns what was confirmed.
pub fn hup_dockerd(ctx: &Ctx, pid: i32, expected: &[String]) -> Result<String> {
    // SAFETY: kill(2) with a pid checked to be dockerd.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("failed to send SIGHUP to dockerd (pid {pid})"));
    }
    let sock = docker_socket(ctx);
    if !sock.exists() {
        return Ok(format!(
            "sent SIGHUP to dockerd (pid {pid}); its socket `{}` is not there to confirm",
            sock.display()
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last: Vec<String>;
    loop {
        last = docker_info(&sock)
            .map(|i| loaded_mirrors(&i))
            .unwrap_or_default();
        if last == expected {
            return Ok(format!(
                "dockerd (pid {pid}) reloaded; `docker info` lists mirrors [{}]",
                expected.join(", ")
            ));
        }
        if Instant::now() >= deadline {
            bail!(
                "sent SIGHUP to dockerd (pid {pid}) but after 15 s `docker info` lists mirrors [{}], expected [{}]; check dockerd's log for `Error reloading configuration`",
                last.join(", "),
                expected.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The first dockerd major version whose built-in BuildKit asks the daemon for registry hosts
/// on every resolve (moby#45992, in 25.0). Before it, BuildKit keeps the hosts computed when
/// dockerd started, so a SIGHUP reaches `docker pull` but not `docker build` (seen with 20.10
/// here: tests/verify.rs `--client buildkit`). 25 and later are taken from the source, not
/// checked against a real dockerd here.
pub const BUILDKIT_LIVE_MIRRORS_SINCE: u32 = 25;

/// The version of the dockerd running as `pid`: its API's `ServerVersion`, else the binary's
/// `--version`.
pub fn running_dockerd_version(ctx: &Ctx, pid: i32) -> Option<(u32, u32)> {
    let sock = docker_socket(ctx);
    if sock.exists() {
        if let Some(v) = docker_info(&sock)
            .ok()
            .and_then(|i| i["ServerVersion"].as_str().and_then(dockerd_version::parse))
        {
            return Some(v);
        }
    }
    let out = std::process::Command::new(format!("/proc/{pid}/exe"))
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    dockerd_version::parse(&String::from_utf8_lossy(&out.stdout))
}

/// What a dockerd reload does not reach: its built-in BuildKit before version 25.
pub fn buildkit_restart_note(version: Option<(u32, u32)>) -> Option<String> {
    let why = match version {
        Some((major, _)) if major >= BUILDKIT_LIVE_MIRRORS_SINCE => return None,
        Some((major, minor)) => format!("dockerd {major}.{minor}'s"),
        None => "before dockerd 25, its".into(),
    };
    Some(format!(
        "`docker build`: {why} built-in BuildKit keeps the registry-mirrors it read when dockerd started; restart dockerd (`systemctl restart docker`) for builds to use the mirror"
    ))
}

/// Restart a systemd unit when systemd manages the real root; otherwise say what to run.
pub fn restart_unit(ctx: &Ctx, unit: &str, daemon: &str, reload: bool) -> ReloadReport {
    let cmd = format!("systemctl restart {unit}");
    if !reload {
        return ReloadReport::todo(
            cmd,
            format!("{daemon} reads this file only at start: restart it (or rerun with --reload)"),
        );
    }
    if !ctx.is_real_root() {
        return ReloadReport::todo(
            cmd,
            format!("not restarting {daemon}: --root is not /; restart it on the system that uses these files"),
        );
    }
    if !Path::new("/run/systemd/system").exists() {
        return ReloadReport::todo(
            cmd,
            format!("systemd is not running here: restart {daemon} the way it was started"),
        );
    }
    match std::process::Command::new("systemctl")
        .args(["restart", unit])
        .status()
    {
        Ok(s) if s.success() => ReloadReport {
            needed: true,
            done: true,
            action: cmd,
            detail: format!("{daemon} restarted"),
        },
        Ok(s) => ReloadReport::todo(cmd, format!("`systemctl restart {unit}` failed ({s})")),
        Err(e) => ReloadReport::todo(cmd, format!("could not run systemctl: {e}")),
    }
}

/// The pid of a running CRI-O (`<root>/var/run/crio.pid`, checked to be `crio`).
pub fn crio_pid(ctx: &Ctx) -> Option<i32> {
    daemon_pid(ctx, "crio", "crio")
}

/// registries.conf: CRI-O reloads it on SIGHUP; podman, skopeo and buildah read it per command.
pub fn hup_crio(ctx: &Ctx, reload: bool) -> Result<ReloadReport> {
    let Some(pid) = crio_pid(ctx) else {
        return Ok(ReloadReport {
            needed: false,
            done: false,
            action: "none".into(),
            detail:
                "podman, skopeo and buildah read registries.conf per command; CRI-O is not running"
                    .into(),
        });
    };
    let action = format!("SIGHUP crio (pid {pid})");
    if !reload {
        return Ok(ReloadReport::todo(
            action,
            "CRI-O reloads registries.conf on SIGHUP: rerun with --reload, or `systemctl reload crio`",
        ));
    }
    // SAFETY: kill(2) with a pid checked to be crio.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("failed to send SIGHUP to crio (pid {pid})"));
    }
    Ok(ReloadReport {
        needed: true,
        done: true,
        action,
        detail: "sent SIGHUP; CRI-O reloads registries.conf (podman, skopeo, buildah read it per command)".into(),
    })
}

/// k3s and rke2 read registries.yaml only at start: restart the service owning each changed
/// file (`k3s` for /etc/rancher/k3s, `rke2-server` for /etc/rancher/rke2).
pub fn restart_k3s(ctx: &Ctx, changed: &[String], reload: bool) -> ReloadReport {
    let mut units: Vec<(&str, &str)> = Vec::new();
    for p in changed {
        let u = if p.starts_with("/etc/rancher/rke2/") {
            ("rke2-server", "rke2")
        } else {
            ("k3s", "k3s")
        };
        if !units.contains(&u) {
            units.push(u);
        }
    }
    if units.is_empty() {
        units.push(("k3s", "k3s"));
    }
    let reports: Vec<ReloadReport> = units
        .iter()
        .map(|(unit, daemon)| restart_unit(ctx, unit, daemon, reload))
        .collect();
    if reports.len() == 1 {
        return reports.into_iter().next().expect("one");
    }
    ReloadReport {
        needed: true,
        done: reports.iter().all(|r| r.done),
        action: reports
            .iter()
            .map(|r| r.action.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        detail: reports
            .iter()
            .map(|r| r.detail.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildkit_note_only_before_dockerd_25() {
        let n = buildkit_restart_note(Some((20, 10))).unwrap();
        assert!(n.contains("dockerd 20.10's built-in BuildKit"), "{n}");
        assert!(n.contains("restart dockerd"), "{n}");
        assert!(buildkit_restart_note(Some((24, 0))).is_some());
        assert!(buildkit_restart_note(None)
            .unwrap()
            .contains("before dockerd 25"));
        assert_eq!(buildkit_restart_note(Some((25, 0))), None);
        assert_eq!(buildkit_restart_note(Some((28, 2))), None);
    }
}
