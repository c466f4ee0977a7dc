//! `arm`, `disarm` and `status`: the CLI glue between validated arguments, the engine and the
//! report (text with diffs, or one JSON document).

use crate::apply::{self, Change, Ctx, FileStatus};
use crate::cli::{ArmArgs, DisarmArgs, Global, StatusArgs, TargetName, WriteOpts};
use crate::error::UserError;
use crate::fsutil::{self, Lock};
use crate::journal::Journal;
use crate::mirror::MirrorSet;
use crate::output;
use crate::reload::{self, ReloadReport};
use crate::targets::{self, docker, FileKind};
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct FileReport {
    /// System path (`/etc/docker/daemon.json`).
    pub path: String,
    /// The real file under `--root`.
    pub file: PathBuf,
    pub status: FileStatus,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TargetReport {
    pub target: TargetName,
    /// `created`, `changed`, `unchanged`, `skipped`, `restored` or `not-armed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub files: Vec<FileReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload: Option<ReloadReport>,
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub command: &'static str,
    pub ok: bool,
    pub dry_run: bool,
    pub root: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirrors: Option<MirrorSet>,
    pub targets: Vec<TargetReport>,
}

/// Resolve `--root` and `--state-dir` into a context.
pub fn context(g: &Global) -> Result<Ctx> {
    let root = g.root.clone();
    if !root.is_dir() {
        return Err(UserError(format!("--root `{}` is not a directory", root.display())).into());
    }
    let state_dir = match &g.state_dir {
        Some(d) => d.clone(),
        None if unsafe { libc::geteuid() } == 0 || root != std::path::Path::new("/") => {
            fsutil::under_root(&root, "/var/lib/mirrorctl")
        }
        None => dirs::state_dir()
            .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
            .map(|d| d.join("mirrorctl"))
            .ok_or_else(|| UserError("cannot find a state directory; pass --state-dir".into()))?,
    };
    Ok(Ctx { root, state_dir })
}

fn detect(ctx: &Ctx) -> Vec<TargetName> {
    TargetName::all()
        .into_iter()
        .filter(|t| {
            targets::info(*t)
                .detect
                .iter()
                .any(|p| ctx.resolve(p).map(|f| f.exists()).unwrap_or(false))
        })
        .collect()
}

fn dedup(mut v: Vec<TargetName>) -> Vec<TargetName> {
    let mut seen = Vec::new();
    v.retain(|t| {
        if seen.contains(t) {
            false
        } else {
            seen.push(*t);
            true
        }
    });
    v
}

fn lock(ctx: &Ctx, dry_run: bool, timeout: u64) -> Result<Option<Lock>> {
    if dry_run {
        return Ok(None);
    }
    Lock::acquire(&ctx.state_dir, Duration::from_secs(timeout)).map(Some)
}

pub fn arm(g: &Global, a: &ArmArgs) -> Result<i32> {
    let ctx = context(g)?;
    let set = MirrorSet::from_args(&a.mirrors, &a.registry, a.insecure)?;
    let targets = if a.targets.is_empty() {
        let found = detect(&ctx);
        if found.is_empty() {
            return Err(UserError(format!(
                "no container client found under `{}` (looked for dockerd, buildkitd, containerd, podman/skopeo/CRI-O, k3s/rke2 and their /etc dirs); name targets with --target",
                ctx.root.display()
            ))
            .into());
        }
        found
    } else {
        dedup(a.targets.clone())
    };
    let dockerd = if targets.contains(&TargetName::Docker) {
        targets::dockerd_version::detect(a.dockerd_version.as_deref())?
    } else {
        targets::dockerd_version::DockerdVersion {
            version: None,
            describe: String::new(),
        }
    };
    let _lock = lock(&ctx, a.common.dry_run, a.common.lock_timeout)?;
    let mut journal = Journal::load(&ctx.state_dir)?;

    // Plan every target before writing anything: one bad file stops the whole run.
    let mut planned: Vec<(TargetName, Result<Vec<Change>, String>)> = Vec::new();
    for t in &targets {
        let exists = |p: &str| ctx.resolve(p).map(|f| f.exists()).unwrap_or(false);
        match targets::files_for(*t, &set, &exists, &dockerd) {
            Ok(jobs) => {
                if *t == TargetName::Docker {
                    refuse_dockerd_flags(&ctx, &set)?;
                }
                planned.push((*t, Ok(apply::plan_arm(&ctx, &journal, *t, &jobs, &set)?)));
            }
            Err(why) => {
                // Still take back what this target armed before.
                let mut changes = Vec::new();
                for (path, rec) in journal.for_target(*t) {
                    changes.push(apply::plan_disarm_file(&ctx, path, rec)?);
                }
                if changes.is_empty() {
                    planned.push((*t, Err(why)));
                } else {
                    planned.push((*t, Ok(changes)));
                }
            }
        }
    }

    let mut reports = Vec::new();
    let mut failed = false;
    let mut prune = Vec::new();
    for (t, plan) in planned {
        let changes = match plan {
            Err(why) => {
                reports.push(TargetReport {
                    target: t,
                    status: "skipped".into(),
                    reason: Some(why),
                    notes: Vec::new(),
                    files: Vec::new(),
                    reload: None,
                });
                continue;
            }
            Ok(c) => c,
        };
        let mut rep = target_report(t, &changes, false);
        if let Some(n) = targets::partial_note(t, &set, &dockerd) {
            rep.notes.push(n);
        }
        if let Some(n) = targets::insecure_scheme_note(t, &set, &changes) {
            rep.notes.push(n);
        }
        rep.reload = apply_and_reload(
            &ctx,
            &mut journal,
            t,
            &changes,
            &a.common,
            &mut prune,
            &mut failed,
        )?;
        reports.push(rep);
    }
    apply::prune_dirs(prune);
    finish(
        RunReport {
            command: "arm",
            ok: !failed,
            dry_run: a.common.dry_run,
            root: ctx.root.clone(),
            mirrors: Some(set),
            targets: reports,
        },
        a.common.json,
    )
}

pub fn disarm(g: &Global, a: &DisarmArgs) -> Result<i32> {
    let ctx = context(g)?;
    let _lock = lock(&ctx, a.common.dry_run, a.common.lock_timeout)?;
    let mut journal = Journal::load(&ctx.state_dir)?;
    let targets = if a.targets.is_empty() {
        let mut ts: Vec<TargetName> = journal.files.values().map(|r| r.target).collect();
        ts.sort();
        dedup(ts)
    } else {
        dedup(a.targets.clone())
    };
    if targets.is_empty() && !a.common.json && !output::quiet() {
        println!(
            "nothing to revert: mirrorctl has not armed anything (journal `{}`)",
            Journal::path(&ctx.state_dir).display()
        );
    }
    let mut planned = Vec::new();
    for t in &targets {
        let mut changes = Vec::new();
        for (path, rec) in journal.for_target(*t) {
            changes.push(apply::plan_disarm_file(&ctx, path, rec)?);
        }
        planned.push((*t, changes));
    }
    let mut reports = Vec::new();
    let mut failed = false;
    let mut prune = Vec::new();
    for (t, changes) in planned {
        if changes.is_empty() {
            reports.push(TargetReport {
                target: t,
                status: "not-armed".into(),
                reason: Some("nothing to revert".into()),
                notes: Vec::new(),
                files: Vec::new(),
                reload: None,
            });
            continue;
        }
        let mut rep = target_report(t, &changes, true);
        rep.reload = apply_and_reload(
            &ctx,
            &mut journal,
            t,
            &changes,
            &a.common,
            &mut prune,
            &mut failed,
        )?;
        reports.push(rep);
    }
    apply::prune_dirs(prune);
    finish(
        RunReport {
            command: "disarm",
            ok: !failed,
            dry_run: a.common.dry_run,
            root: ctx.root.clone(),
            mirrors: None,
            targets: reports,
        },
        a.common.json,
    )
}

/// Write a target's changes (unless `--dry-run`) and reload what needs it; a reload that fails
/// marks the run failed but is reported, not raised, so the other targets still run.
fn apply_and_reload(
    ctx: &Ctx,
    journal: &mut Journal,
    t: TargetName,
    changes: &[Change],
    opts: &WriteOpts,
    prune: &mut Vec<PathBuf>,
    failed: &mut bool,
) -> Result<Option<ReloadReport>> {
    if opts.dry_run {
        return Ok(if changes.iter().any(Change::writes) {
            pending_reload(ctx, t, changes)
        } else {
            None
        });
    }
    prune.extend(apply::commit(ctx, journal, changes)?);
    Ok(match reload_after(ctx, journal, t, changes, opts.reload) {
        Ok(r) => r,
        Err(e) => {
            *failed = true;
            Some(ReloadReport::todo("reload", format!("{e:#}")))
        }
    })
}

fn refuse_dockerd_flags(ctx: &Ctx, set: &MirrorSet) -> Result<()> {
    let Some(pid) = reload::dockerd_pid(ctx) else {
        return Ok(());
    };
    let writes_insecure = set
        .for_registry(crate::oci::DOCKER_HUB)
        .is_some_and(|r| r.mirrors.iter().any(|m| set.needs_insecure(m)));
    let flags = reload::dockerd_conflicting_flags(pid, writes_insecure);
    if flags.is_empty() {
        return Ok(());
    }
    Err(UserError(format!(
        "dockerd (pid {pid}) runs with {}: dockerd refuses to start when a setting is both a flag and in daemon.json. Remove the flag from dockerd's command line (systemd unit or drop-in), or skip docker with --target",
        flags.join(" ")
    ))
    .into())
}

/// Reload what needs it after a commit, or report what still needs doing.
fn reload_after(
    ctx: &Ctx,
    journal: &mut Journal,
    t: TargetName,
    changes: &[Change],
    reload: bool,
) -> Result<Option<ReloadReport>> {
    let pending: Vec<String> = journal
        .for_target(t)
        .filter(|(_, r)| r.reload_pending)
        .map(|(p, _)| p.clone())
        .collect();
    let wrote = changes.iter().any(Change::writes);
    if !wrote && pending.is_empty() {
        return Ok(None);
    }
    let report = match t {
        TargetName::Docker => {
            // dockerd ≥ 28 reads /etc/docker/certs.d/<host>/hosts.toml on every pull; only a
            // daemon.json change needs a reload.
            let daemon_json_changed = changes
                .iter()
                .any(|c| matches!(c.kind, FileKind::DaemonJson) && c.writes())
                || pending.iter().any(|p| p == targets::DAEMON_JSON);
            if !daemon_json_changed {
                clear_pending(ctx, journal, t)?;
                return Ok(Some(ReloadReport {
                    needed: false,
                    done: false,
                    action: "none".into(),
                    detail: "dockerd reads /etc/docker/certs.d/<host>/hosts.toml on every pull: no reload needed".into(),
                }));
            }
            let Some(pid) = reload::dockerd_pid(ctx) else {
                clear_pending(ctx, journal, t)?;
                return Ok(Some(ReloadReport {
                    needed: false,
                    done: false,
                    action: "none".into(),
                    detail: "dockerd is not running; it reads daemon.json when it starts".into(),
                }));
            };
            let buildkit = reload::buildkit_restart_note(reload::running_dockerd_version(ctx, pid))
                .map(|n| format!("; {n}"))
                .unwrap_or_default();
            if !reload {
                return Ok(Some(ReloadReport::todo(
                    format!("SIGHUP dockerd (pid {pid})"),
                    format!("registry-mirrors reload live: rerun with --reload, or `systemctl reload docker`{buildkit}"),
                )));
            }
            // dockerd reloads only keys present in the file and keeps what it loaded for a
            // deleted key: when a key (or the file) is gone, reload once with explicit lists so
            // dockerd forgets mirrorctl's mirrors, then put the exact final bytes back.
            let file = ctx.resolve(targets::DAEMON_JSON)?;
            let current = fsutil::read_optional(&file)?;
            let text = current.clone().unwrap_or_default();
            let explicit = docker::with_explicit_keys(&text).map_err(|e| e.in_file(&file))?;
            let expected = docker::listed_mirrors(&explicit);
            let detail = if explicit != text {
                let made = match file.parent() {
                    Some(d) => fsutil::create_dirs(d)?,
                    None => Vec::new(),
                };
                apply::write_transient(&file, &explicit)?;
                let r = reload::hup_dockerd(ctx, pid, &expected);
                match &current {
                    Some(t) => apply::write_transient(&file, t)?,
                    None => {
                        fsutil::remove_file(&file)?;
                        fsutil::remove_empty_dirs(&made);
                    }
                }
                r?
            } else {
                reload::hup_dockerd(ctx, pid, &expected)?
            };
            ReloadReport {
                needed: true,
                done: true,
                action: format!("SIGHUP dockerd (pid {pid})"),
                detail: format!("{detail}{buildkit}"),
            }
        }
        TargetName::Buildkit => reload::restart_unit(ctx, "buildkit", "buildkitd", reload),
        TargetName::Containerd => {
            // hosts.toml is read on every pull; only config.toml needs a restart.
            let config_changed = changes
                .iter()
                .any(|c| matches!(c.kind, FileKind::ContainerdConfig { .. }) && c.writes())
                || pending.iter().any(|p| p == targets::CONTAINERD_CONFIG);
            if !config_changed {
                clear_pending(ctx, journal, t)?;
                return Ok(Some(ReloadReport {
                    needed: false,
                    done: false,
                    action: "none".into(),
                    detail: "containerd reads hosts.toml on every pull: no restart needed".into(),
                }));
            }
            reload::restart_unit(ctx, "containerd", "containerd", reload)
        }
        TargetName::Registries => reload::hup_crio(ctx, reload)?,
        TargetName::K3s => {
            let paths: Vec<String> = changes
                .iter()
                .filter(|c| c.writes())
                .map(|c| c.sys_path.clone())
                .chain(pending)
                .collect();
            reload::restart_k3s(ctx, &paths, reload)
        }
    };
    if report.done || !report.needed {
        clear_pending(ctx, journal, t)?;
    }
    Ok(Some(report))
}

/// What a dry run would need reloaded.
fn pending_reload(ctx: &Ctx, t: TargetName, changes: &[Change]) -> Option<ReloadReport> {
    match t {
        TargetName::Docker => reload::dockerd_pid(ctx).map(|pid| {
            ReloadReport::todo(
                format!("SIGHUP dockerd (pid {pid})"),
                "would reload dockerd",
            )
        }),
        TargetName::Buildkit => Some(ReloadReport::todo(
            "systemctl restart buildkit",
            "buildkitd reads its config only at start",
        )),
        TargetName::Containerd => changes
            .iter()
            .any(|c| matches!(c.kind, FileKind::ContainerdConfig { .. }) && c.writes())
            .then(|| {
                ReloadReport::todo(
                    "systemctl restart containerd",
                    "config.toml changes need a containerd restart",
                )
            }),
        TargetName::Registries => reload::crio_pid(ctx).map(|pid| {
            ReloadReport::todo(
                format!("SIGHUP crio (pid {pid})"),
                "would reload CRI-O; podman, skopeo and buildah read the file per command",
            )
        }),
        TargetName::K3s => {
            let paths: Vec<String> = changes
                .iter()
                .filter(|c| c.writes())
                .map(|c| c.sys_path.clone())
                .collect();
            Some(reload::restart_k3s(ctx, &paths, false))
        }
    }
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

fn target_report(t: TargetName, changes: &[Change], disarm: bool) -> TargetReport {
    let files: Vec<FileReport> = changes
        .iter()
        .map(|c| FileReport {
            path: c.sys_path.clone(),
            file: c.file.clone(),
            status: c.status,
            diff: c.diff(),
            note: c.note.clone(),
        })
        .collect();
    let statuses: Vec<FileStatus> = changes.iter().map(|c| c.status).collect();
    let status = if statuses.iter().all(|s| *s == FileStatus::Unchanged) {
        "unchanged"
    } else if disarm && !statuses.contains(&FileStatus::Changed) {
        "restored"
    } else if !disarm
        && statuses
            .iter()
            .all(|s| matches!(s, FileStatus::Created | FileStatus::Unchanged))
    {
        "created"
    } else {
        "changed"
    };
    TargetReport {
        target: t,
        status: status.into(),
        reason: None,
        notes: Vec::new(),
        files,
        reload: None,
    }
}

fn finish(report: RunReport, json: bool) -> Result<i32> {
    let code = if report.ok { 0 } else { 1 };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(code);
    }
    if output::quiet() {
        return Ok(code);
    }
    for t in &report.targets {
        let status = match t.status.as_str() {
            "unchanged" | "not-armed" => console::style(t.status.clone()).dim(),
            "skipped" => console::style(t.status.clone()).yellow(),
            _ => console::style(t.status.clone()).green().bold(),
        };
        let paths: Vec<String> = t
            .files
            .iter()
            .filter(|f| f.status != FileStatus::Unchanged || t.status == "unchanged")
            .map(|f| f.file.display().to_string())
            .collect();
        let tail = match &t.reason {
            Some(r) => format!("({r})"),
            None => paths.join(", "),
        };
        println!("{:<11} {:<9} {}", t.target.as_str(), status, tail);
        for f in &t.files {
            if !f.diff.is_empty() {
                print_diff(&f.diff);
            }
            if let Some(n) = &f.note {
                println!("  note: {}: {n}", f.path);
            }
        }
        for n in &t.notes {
            println!("  note: {n}");
        }
        if let Some(r) = &t.reload {
            if r.done {
                println!("  reloaded: {} — {}", r.action, r.detail);
            } else if r.needed {
                println!(
                    "  {} {} — {}",
                    console::style("needs reload:").yellow(),
                    r.action,
                    r.detail
                );
            } else if output::verbose() {
                println!("  reload: {}", r.detail);
            }
        }
    }
    if report.dry_run {
        println!("{}", console::style("dry run: nothing was written").dim());
    }
    Ok(code)
}

fn print_diff(diff: &str) {
    for line in diff.lines() {
        let styled = if line.starts_with("+++") || line.starts_with("---") {
            console::style(line).bold()
        } else if line.starts_with('+') {
            console::style(line).green()
        } else if line.starts_with('-') {
            console::style(line).red()
        } else if line.starts_with("@@") {
            console::style(line).cyan()
        } else {
            console::style(line)
        };
        println!("{styled}");
    }
}

#[derive(Debug, Serialize)]
struct StatusFile {
    path: String,
    file: PathBuf,
    exists: bool,
    /// The file no longer holds what mirrorctl wrote.
    drift: bool,
    mirrors: Vec<String>,
    reload_pending: bool,
}

#[derive(Debug, Serialize)]
struct StatusTarget {
    target: TargetName,
    installed: bool,
    armed: bool,
    mirrors: Vec<String>,
    drift: bool,
    reload_pending: bool,
    files: Vec<StatusFile>,
}

pub fn status(g: &Global, a: &StatusArgs) -> Result<i32> {
    let ctx = context(g)?;
    let journal = Journal::load(&ctx.state_dir)?;
    let installed = detect(&ctx);
    let mut out = Vec::new();
    for t in TargetName::all() {
        let mut files = Vec::new();
        for (path, rec) in journal.for_target(t) {
            let file = ctx.resolve(path)?;
            let cur = std::fs::read_to_string(&file).ok();
            files.push(StatusFile {
                path: path.clone(),
                file,
                exists: cur.is_some(),
                drift: cur.as_deref() != Some(rec.written.as_str()),
                mirrors: rec.mirrors.clone(),
                reload_pending: rec.reload_pending,
            });
        }
        let mut mirrors: Vec<String> = Vec::new();
        for f in &files {
            for m in &f.mirrors {
                if !mirrors.contains(m) {
                    mirrors.push(m.clone());
                }
            }
        }
        out.push(StatusTarget {
            target: t,
            installed: installed.contains(&t),
            armed: !files.is_empty(),
            drift: files.iter().any(|f| f.drift),
            reload_pending: files.iter().any(|f| f.reload_pending),
            mirrors,
            files,
        });
    }
    if a.json {
        let doc = serde_json::json!({
            "command": "status",
            "root": ctx.root,
            "state_dir": ctx.state_dir,
            "targets": out,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    for t in &out {
        let state = if t.armed {
            console::style("armed").green().bold()
        } else if t.installed {
            console::style("not armed").dim()
        } else {
            console::style("not found").dim()
        };
        println!("{:<11} {}", t.target.as_str(), state);
        for f in &t.files {
            let mut flags = Vec::new();
            if !f.exists {
                flags.push("file missing".to_string());
            } else if f.drift {
                flags.push("edited since arm".to_string());
            }
            if f.reload_pending {
                flags.push("needs reload".to_string());
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", flags.join(", "))
            };
            println!("  {}{flags}", f.file.display());
        }
        if !t.mirrors.is_empty() {
            println!("  mirrors: {}", t.mirrors.join(", "));
        }
    }
    Ok(0)
}
