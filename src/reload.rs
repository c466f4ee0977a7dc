//! The reload policy, in one place for doing it and for saying it is still to do: what each
//! target's daemon needs after its files changed (nothing, a SIGHUP, a restart), whether that
//! daemon runs, and — with `--reload` — doing it and confirming it where the daemon can tell.
//!
//! dockerd reloads `registry-mirrors` and `insecure-registries` on SIGHUP (confirmed through
//! its API); CRI-O reloads registries.conf on SIGHUP; BuildKit, containerd's `config.toml` and
//! k3s/rke2 need a restart, done with systemd when it runs the real root, else printed as the
//! exact command. Files read on every use (`hosts.toml`) need nothing.

use crate::apply::Change;
use crate::ctx::Ctx;
use crate::fsutil;
use crate::host::{self, dockerd};
use crate::journal::{Journal, Transient};
use crate::targets::{self, docker, dockerd_version, k3s, FileKind, TargetName};
use anyhow::Result;
use serde::Serialize;
use std::fmt;

pub mod buildx_reload;

/// What applies a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadAction {
    /// Nothing: the client reads the file when it next runs.
    None,
    /// SIGHUP to a running daemon.
    Signal { daemon: &'static str, pid: i32 },
    /// `systemctl restart` of these units, in order.
    Restart { units: Vec<&'static str> },
    /// `docker buildx rm --keep-state` + `docker buildx create` of these builders.
    Recreate { builders: Vec<String> },
}

impl fmt::Display for ReloadAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadAction::None => f.write_str("none"),
            ReloadAction::Signal { daemon, pid } => write!(f, "SIGHUP {daemon} (pid {pid})"),
            ReloadAction::Restart { units } => {
                let cmds: Vec<String> = units
                    .iter()
                    .map(|u| format!("systemctl restart {u}"))
                    .collect();
                f.write_str(&cmds.join("; "))
            }
            ReloadAction::Recreate { builders } => {
                write!(f, "re-create buildx builders {}", builders.join(", "))
            }
        }
    }
}

impl Serialize for ReloadAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// The daemon must reload or restart before the change takes effect.
    pub needed: bool,
    /// mirrorctl did it.
    pub done: bool,
    /// What applies the change (`SIGHUP dockerd (pid 42)`, `systemctl restart containerd`).
    pub action: ReloadAction,
    pub detail: String,
    /// The reload was attempted and failed, or was done and could not be confirmed: the run
    /// fails (exit 1).
    pub failed: bool,
}

impl ReloadReport {
    pub(crate) fn not_needed(detail: impl Into<String>) -> ReloadReport {
        ReloadReport {
            needed: false,
            done: false,
            action: ReloadAction::None,
            detail: detail.into(),
            failed: false,
        }
    }

    pub(crate) fn todo(action: ReloadAction, detail: impl Into<String>) -> ReloadReport {
        ReloadReport {
            needed: true,
            done: false,
            action,
            detail: detail.into(),
            failed: false,
        }
    }

    pub(crate) fn done(action: ReloadAction, detail: impl Into<String>) -> ReloadReport {
        ReloadReport {
            needed: true,
            done: true,
            action,
            detail: detail.into(),
            failed: false,
        }
    }

    pub(crate) fn failed(
        action: ReloadAction,
        detail: impl Into<String>,
        done: bool,
    ) -> ReloadReport {
        ReloadReport {
            needed: true,
            done,
            action,
            detail: detail.into(),
            failed: true,
        }
    }
}

/// What the run does about reloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `--dry-run`: say what would be needed.
    DryRun,
    /// Say what is needed, do nothing.
    Report,
    /// `--reload`: do it.
    Apply,
}

/// A target's need after a change, decided once.
enum Need {
    Nothing(String),
    Signal {
        daemon: &'static str,
        pid: i32,
        /// Shown when it is left to do.
        todo: String,
        /// Shown in a dry run.
        dry: &'static str,
    },
    Restart {
        /// (unit, daemon) pairs.
        units: Vec<(&'static str, &'static str)>,
        dry: &'static str,
    },
}

/// The system paths among `changes` (written now) and the journal's records of `t` that are
/// still waiting for a reload, of files that need one.
fn reload_paths(journal: &Journal, t: TargetName, changes: &[Change]) -> Vec<String> {
    let mut paths: Vec<String> = changes
        .iter()
        .filter(|c| c.writes() && !c.kind.applies_without_reload())
        .map(|c| c.sys_path.clone())
        .collect();
    for (p, r) in journal.for_target(t) {
        if r.reload_pending && !paths.contains(p) {
            paths.push(p.clone());
        }
    }
    paths
}

fn need(ctx: &Ctx, t: TargetName, paths: &[String]) -> Need {
    match t {
        TargetName::Docker => {
            if !paths.iter().any(|p| p == targets::DAEMON_JSON) {
                return Need::Nothing(
                    "dockerd reads /etc/docker/certs.d/<host>/hosts.toml on every pull: no reload needed".into(),
                );
            }
            let Some(pid) = dockerd::pid(&ctx.root) else {
                return Need::Nothing(
                    "dockerd is not running; it reads daemon.json when it starts".into(),
                );
            };
            let buildkit = buildkit_restart_note(dockerd::running_version(&ctx.root, pid))
                .map(|n| format!("; {n}"))
                .unwrap_or_default();
            Need::Signal {
                daemon: "dockerd",
                pid,
                todo: format!("registry-mirrors reload live: rerun with --reload, or `systemctl reload docker`{buildkit}"),
                dry: "would reload dockerd",
            }
        }
        TargetName::Buildkit => Need::Restart {
            units: vec![("buildkit", "buildkitd")],
            dry: "buildkitd reads its config only at start",
        },
        TargetName::Containerd => {
            if !paths.iter().any(|p| p == targets::CONTAINERD_CONFIG) {
                return Need::Nothing(
                    "containerd reads hosts.toml on every pull: no restart needed".into(),
                );
            }
            Need::Restart {
                units: vec![("containerd", "containerd")],
                dry: "config.toml changes need a containerd restart",
            }
        }
        TargetName::Registries => match host::containers::crio_pid(&ctx.root) {
            None => Need::Nothing(
                "podman, skopeo and buildah read registries.conf per command; CRI-O is not running"
                    .into(),
            ),
            Some(pid) => Need::Signal {
                daemon: "crio",
                pid,
                todo: "CRI-O reloads registries.conf on SIGHUP: rerun with --reload, or `systemctl reload crio`".into(),
                dry: "would reload CRI-O; podman, skopeo and buildah read the file per command",
            },
        },
        TargetName::K3s => {
            let mut units: Vec<(&'static str, &'static str)> = Vec::new();
            for p in paths {
                let d = k3s::distro_of(p);
                if !units.contains(&(d.unit, d.name)) {
                    units.push((d.unit, d.name));
                }
            }
            if units.is_empty() {
                let d = k3s::distro_of(k3s::K3S_YAML);
                units.push((d.unit, d.name));
            }
            Need::Restart {
                units,
                dry: "k3s and rke2 read registries.yaml only at start",
            }
        }
        TargetName::Earthly => Need::Nothing(format!(
            "Earthly restarts its {} container itself on its next run when this string changes (the string is part of the settings hash in its {} label); `mirrorctl status` tells whether the running one has it",
            targets::earthly::CONTAINER,
            targets::earthly::HASH_LABEL
        )),
        // Decided from the builder records: [`crate::reload::after`] asks `buildx_reload`.
        TargetName::Buildx => Need::Nothing(String::new()),
    }
}

/// After `changes` to target `t` were committed (or planned, in a dry run): what its daemon
/// needs, done when `mode` is [`Mode::Apply`]. The journal's `reload_pending` marks are
/// cleared once nothing is left to do. `None`: nothing changed and nothing was pending.
pub fn after(
    ctx: &Ctx,
    journal: &mut Journal,
    t: TargetName,
    changes: &[Change],
    mode: Mode,
) -> Result<Option<ReloadReport>> {
    let paths = reload_paths(journal, t, changes);
    let wrote = changes.iter().any(Change::writes);
    if !wrote && paths.is_empty() {
        return Ok(None);
    }
    let report = match t {
        TargetName::Buildx => buildx_reload::run(ctx, journal, changes, mode)?,
        _ => other(ctx, journal, t, &paths, mode)?,
    };
    if mode != Mode::DryRun && (report.done || !report.needed) && !report.failed {
        clear_pending(ctx, journal, t)?;
    }
    Ok(Some(report))
}

/// What every target but buildx needs, done when `mode` says so.
fn other(
    ctx: &Ctx,
    journal: &mut Journal,
    t: TargetName,
    paths: &[String],
    mode: Mode,
) -> Result<ReloadReport> {
    Ok(match (need(ctx, t, paths), mode) {
        (Need::Nothing(why), _) => ReloadReport::not_needed(why),
        (
            Need::Signal {
                daemon, pid, dry, ..
            },
            Mode::DryRun,
        ) => ReloadReport::todo(ReloadAction::Signal { daemon, pid }, dry),
        (
            Need::Signal {
                daemon, pid, todo, ..
            },
            Mode::Report,
        ) => ReloadReport::todo(ReloadAction::Signal { daemon, pid }, todo),
        (Need::Signal { daemon, pid, .. }, Mode::Apply) => signal(ctx, journal, daemon, pid)?,
        (Need::Restart { units, dry }, Mode::DryRun) => {
            ReloadReport::todo(restart_action(&units), dry)
        }
        (Need::Restart { units, .. }, mode) => restart(ctx, &units, mode == Mode::Apply),
    })
}

fn restart_action(units: &[(&'static str, &'static str)]) -> ReloadAction {
    ReloadAction::Restart {
        units: units.iter().map(|(u, _)| *u).collect(),
    }
}

fn signal(
    ctx: &Ctx,
    journal: &mut Journal,
    daemon: &'static str,
    pid: i32,
) -> Result<ReloadReport> {
    let action = ReloadAction::Signal { daemon, pid };
    if daemon != "dockerd" {
        return Ok(match host::sighup(pid, daemon) {
            Ok(()) => ReloadReport::done(
                action,
                "sent SIGHUP; CRI-O reloads registries.conf (podman, skopeo, buildah read it per command)",
            ),
            Err(e) => ReloadReport::failed(action, format!("{e:#}"), false),
        });
    }
    let buildkit = buildkit_restart_note(dockerd::running_version(&ctx.root, pid))
        .map(|n| format!("; {n}"))
        .unwrap_or_default();
    Ok(match reload_dockerd(ctx, journal, pid)? {
        Ok(dockerd::Reloaded::Confirmed(d)) => ReloadReport::done(action, format!("{d}{buildkit}")),
        Ok(dockerd::Reloaded::Unconfirmed(d)) => {
            ReloadReport::failed(action, format!("{d}{buildkit}"), true)
        }
        Err(e) => ReloadReport::failed(action, format!("{e:#}"), false),
    })
}

/// SIGHUP dockerd so it loads daemon.json as it is now. dockerd reloads only the keys present
/// in the file and keeps what it loaded for a deleted key: when a key (or the file) is gone,
/// it first reloads once with explicit empty lists, so it forgets mirrorctl's mirrors, and then
/// the exact final bytes go back. That temporary text is journaled first, so a run killed in
/// between has it put back by the next run. The outer `Result` is the engine's (journal, file
/// I/O); the inner one the reload's.
fn reload_dockerd(ctx: &Ctx, journal: &mut Journal, pid: i32) -> Result<Result<dockerd::Reloaded>> {
    let file = ctx.resolve(targets::DAEMON_JSON)?;
    let current = fsutil::read_optional(&file)?;
    let text = current.clone().unwrap_or_default();
    let explicit = docker::with_explicit_keys(&text).map_err(|e| e.in_file(&file))?;
    let expected = docker::listed_mirrors(&explicit);
    if explicit == text {
        return Ok(dockerd::reload(&ctx.root, pid, &expected));
    }
    journal.transient = Some(Transient {
        file: file.clone(),
        text: explicit.clone(),
        restore: current.clone(),
    });
    journal.save(&ctx.state_dir)?;
    let made = match file.parent() {
        Some(d) => fsutil::create_dirs(d)?,
        None => Vec::new(),
    };
    fsutil::write_atomic(&file, explicit.as_bytes())?;
    let r = dockerd::reload(&ctx.root, pid, &expected);
    match &current {
        Some(t) => fsutil::write_atomic(&file, t.as_bytes())?,
        None => {
            fsutil::remove_file(&file)?;
            fsutil::remove_empty_dirs(&made);
        }
    }
    journal.transient = None;
    journal.save(&ctx.state_dir)?;
    Ok(r)
}

/// Restart each unit when systemd manages the real root (`apply`); otherwise say what to run.
fn restart(ctx: &Ctx, units: &[(&'static str, &'static str)], apply: bool) -> ReloadReport {
    let reports: Vec<ReloadReport> = units
        .iter()
        .map(|(unit, daemon)| restart_one(ctx, unit, daemon, apply))
        .collect();
    let detail = reports
        .iter()
        .map(|r| r.detail.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    ReloadReport {
        needed: true,
        done: reports.iter().all(|r| r.done),
        action: restart_action(units),
        detail,
        failed: false,
    }
}

fn restart_one(ctx: &Ctx, unit: &'static str, daemon: &str, apply: bool) -> ReloadReport {
    let action = ReloadAction::Restart { units: vec![unit] };
    if !apply {
        return ReloadReport::todo(
            action,
            format!("{daemon} reads this file only at start: restart it (or rerun with --reload)"),
        );
    }
    if !ctx.is_real_root() {
        return ReloadReport::todo(
            action,
            format!("not restarting {daemon}: --root is not /; restart it on the system that uses these files"),
        );
    }
    if !host::systemd::manages(&ctx.root) {
        return ReloadReport::todo(
            action,
            format!("systemd is not running here: restart {daemon} the way it was started"),
        );
    }
    match host::systemd::restart(unit) {
        Ok(()) => ReloadReport::done(action, format!("{daemon} restarted")),
        Err(e) => ReloadReport::todo(action, format!("{e:#}")),
    }
}

/// What a dockerd reload does not reach: its built-in BuildKit before version 25.
pub fn buildkit_restart_note(version: Option<(u32, u32)>) -> Option<String> {
    let why = match version {
        Some((major, _)) if major >= dockerd_version::BUILDKIT_LIVE_MIRRORS_SINCE => return None,
        Some((major, minor)) => format!("dockerd {major}.{minor}'s"),
        None => "before dockerd 25, its".into(),
    };
    Some(format!(
        "`docker build`: {why} built-in BuildKit keeps the registry-mirrors it read when dockerd started; restart dockerd (`systemctl restart docker`) for builds to use the mirror"
    ))
}

fn clear_pending(ctx: &Ctx, journal: &mut Journal, t: TargetName) -> Result<()> {
    let mut dirty = false;
    for r in journal.files.values_mut().filter(|r| r.target == t) {
        if r.reload_pending {
            r.reload_pending = false;
            dirty = true;
        }
    }
    if dirty {
        journal.save(&ctx.state_dir)?;
    }
    Ok(())
}

/// Whether a journaled file still waits for its daemon (for `status`).
pub fn waits_for_reload(kind: &FileKind, pending: bool) -> bool {
    pending && !kind.applies_without_reload()
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

    #[test]
    fn actions_render_as_before() {
        assert_eq!(ReloadAction::None.to_string(), "none");
        assert_eq!(
            ReloadAction::Signal {
                daemon: "dockerd",
                pid: 42
            }
            .to_string(),
            "SIGHUP dockerd (pid 42)"
        );
        assert_eq!(
            ReloadAction::Restart {
                units: vec!["k3s", "rke2-server"]
            }
            .to_string(),
            "systemctl restart k3s; systemctl restart rke2-server"
        );
    }
}
