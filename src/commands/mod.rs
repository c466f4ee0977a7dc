//! The commands: each file adapts its clap arguments to the engine (or to `verify` / `serve`,
//! which take their own option structs) and renders the outcome. No policy lives here.

pub mod arm;
pub mod containerd;
pub mod disarm;
pub mod findings;
pub mod preflight;
pub mod render;
pub mod report;
pub mod serve;
pub mod status;
pub mod verify;
pub mod verify_arm;
pub mod warm;

use crate::apply::{self, Change, Session};
use crate::cli::{Global, WriteOpts};
use crate::ctx::Ctx;
use crate::host::{self, users::Located};
use crate::journal::Journal;
use crate::mirror::MirrorSet;
use crate::reload::{self, Mode, ReloadReport};
use crate::targets::{TargetName, UserPaths};
use anyhow::Result;
use report::{RunReport, TargetReport, TargetStatus};

/// `--root` and `--state-dir` as a context.
pub fn context(g: &Global) -> Result<Ctx> {
    Ctx::new(&g.root, g.state_dir.as_deref())
}

/// Where the per-user clients' files are on this root, and how each was found.
pub struct Users {
    pub earthly: Located,
    pub buildx: Option<Located>,
}

impl Users {
    /// Earthly's and buildx's own rules (`--earthly-config` first for Earthly).
    pub fn find(ctx: &Ctx, earthly_config: Option<&std::path::Path>) -> Users {
        Users {
            earthly: host::earthly::config_path(&ctx.root, earthly_config),
            buildx: host::buildx::dir(&ctx.root),
        }
    }

    pub fn paths(&self) -> UserPaths {
        UserPaths {
            earthly_config: Some(self.earthly.path.clone()),
            buildx_dir: self.buildx.as_ref().map(|b| b.path.clone()),
        }
    }

    /// A line saying where a per-user target's file was found.
    pub fn note(&self, t: TargetName) -> Option<String> {
        match t {
            TargetName::Earthly => Some(format!(
                "Earthly's config: {} ({})",
                self.earthly.path, self.earthly.how
            )),
            TargetName::Buildx => self
                .buildx
                .as_ref()
                .map(|b| format!("buildx's directory: {} ({})", b.path, b.how)),
            _ => None,
        }
    }
}

/// The targets whose client is installed under the root.
pub fn detect(ctx: &Ctx, users: &Users) -> Vec<TargetName> {
    TargetName::all()
        .into_iter()
        .filter(|t| match t {
            TargetName::Earthly => host::earthly::detected(&ctx.root, &users.earthly),
            TargetName::Buildx => host::buildx::detected(&ctx.root, users.buildx.as_ref()),
            _ => t.detect_paths().iter().any(|p| ctx.root.exists(p)),
        })
        .collect()
}

/// What arm says about the runners' targets beyond their files: Earthly with a remote
/// buildkit, buildx's `docker` driver and versions without a default config.
pub fn runner_notes(t: TargetName, changes: &[Change]) -> Vec<String> {
    let mut out = Vec::new();
    match t {
        TargetName::Earthly => {
            let facts = changes
                .iter()
                .filter_map(|c| c.after.as_deref())
                .find_map(|text| crate::targets::earthly::facts(text).ok());
            match facts.as_ref().and_then(|f| f.remote_buildkit()) {
                Some(h) => out.push(format!(
                    "buildkit_host is `{h}`: Earthly starts no buildkitd for a remote host, so buildkit_additional_config has no effect there; arm that buildkitd where it runs (the `buildkit` target)"
                )),
                None if changes.iter().any(|c| c.writes() && c.after.is_some()) => {
                    out.push(format!(
                        "Earthly restarts its {} container by itself on its next run, since the string changed (it is part of the settings hash in the container's {} label); `earthly bootstrap` does it now",
                        crate::targets::earthly::CONTAINER,
                        crate::targets::earthly::HASH_LABEL
                    ))
                }
                None => {}
            }
        }
        TargetName::Buildx => {
            out.push("the `docker` driver (the default builder) uses dockerd's own configuration: the `docker` target covers it".into());
            let dir = changes.first().and_then(|c| c.file.parent());
            if let Some(v) = dir.and_then(host::buildx::version) {
                if v < crate::targets::buildx::DEFAULT_TOML_SINCE {
                    out.push(format!(
                        "buildx {}.{} does not read buildkitd.default.toml (0.9 and later do): pass it to `docker buildx create --config`",
                        v.0, v.1
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

/// The targets named on the command line, each once, in the order given.
pub fn dedup(mut v: Vec<TargetName>) -> Vec<TargetName> {
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

fn mode(opts: &WriteOpts) -> Mode {
    match (opts.dry_run, opts.reload) {
        (true, _) => Mode::DryRun,
        (false, true) => Mode::Apply,
        (false, false) => Mode::Report,
    }
}

/// A target's plan: its changes, or nothing to do (with the status and why).
pub enum Plan {
    Changes(Vec<Change>),
    Nothing(TargetStatus, String),
}

/// What a writing command did, to render.
pub struct Written<'a> {
    pub command: &'static str,
    pub mirrors: Option<MirrorSet>,
    pub preflight: Vec<preflight::PreflightReport>,
    /// Notes a target's report gets from what its changes are (arm's remarks).
    pub notes: &'a dyn Fn(TargetName, &[Change]) -> Vec<String>,
}

/// Write every target's plan in order (each one's reload right after it) and prune the
/// directories arm created that are empty now: the shared end of `arm` and `disarm`. The
/// report is returned for [`report::finish`].
pub fn write_all(
    ctx: &Ctx,
    session: &mut Session,
    planned: Vec<(TargetName, Plan)>,
    opts: &WriteOpts,
    what: Written<'_>,
) -> Result<RunReport> {
    let disarm = what.command == "disarm";
    let targets = write_plans(ctx, &mut session.journal, planned, opts, disarm, what.notes)?;
    Ok(RunReport {
        command: what.command,
        ok: true,
        dry_run: opts.dry_run,
        root: ctx.root.path().to_path_buf(),
        mirrors: what.mirrors,
        preflight: what.preflight,
        targets,
        recovered: std::mem::take(&mut session.recovered),
        probes: Vec::new(),
        rollback: None,
    })
}

/// Write the plans (and reload after each target) and prune; the targets' reports.
fn write_plans(
    ctx: &Ctx,
    journal: &mut Journal,
    planned: Vec<(TargetName, Plan)>,
    opts: &WriteOpts,
    disarm: bool,
    notes: &dyn Fn(TargetName, &[Change]) -> Vec<String>,
) -> Result<Vec<TargetReport>> {
    let mut reports = Vec::new();
    for (t, plan) in planned {
        let changes = match plan {
            Plan::Nothing(status, why) => {
                reports.push(TargetReport::without_files(t, status, why));
                continue;
            }
            Plan::Changes(c) => c,
        };
        let mut rep = TargetReport::of_changes(t, &changes, disarm);
        rep.notes.extend(notes(t, &changes));
        rep.reload = write_target(ctx, journal, t, &changes, opts)?;
        reports.push(rep);
    }
    if !opts.dry_run {
        apply::prune_dirs(ctx, journal)?;
    }
    Ok(reports)
}

/// Put back what an `arm --verify` changed (the journal's `verifying` entry) and reload the
/// daemons again, confirming dockerd dropped the mirror; clears the entry. The targets' reports.
pub fn roll_back(ctx: &Ctx, journal: &mut Journal) -> Result<Vec<TargetReport>> {
    let Some(v) = journal.verifying.clone() else {
        return Ok(Vec::new());
    };
    let planned = apply::plan_rollback(ctx, journal, &v)?
        .into_iter()
        .map(|(t, c)| (t, Plan::Changes(c)))
        .collect();
    let opts = WriteOpts {
        dry_run: false,
        reload: true,
        json: false,
        lock_timeout: std::time::Duration::ZERO,
    };
    let reports = write_plans(ctx, journal, planned, &opts, true, &|_, _| Vec::new())?;
    journal.verifying = None;
    journal.save(&ctx.state_dir)?;
    Ok(reports)
}

/// Before any command: an `arm --verify` killed between its writes and its verdict left a
/// `verifying` entry; roll it back now (under the lock). Lines saying what was done.
pub fn finish_killed_verify(g: &Global) -> Result<Vec<String>> {
    // A bad --root or state dir is the command's own error to report.
    let Ok(ctx) = context(g) else {
        return Ok(Vec::new());
    };
    let pending = Journal::load(&ctx.state_dir)
        .ok()
        .and_then(|j| j.verifying)
        .filter(|v| !crate::fsutil::pid_alive(v.pid));
    let Some(v) = pending else {
        return Ok(Vec::new());
    };
    let mut session = Session::open(&ctx, false, std::time::Duration::from_secs(30))?;
    if session.journal.verifying.as_ref() != Some(&v) {
        return Ok(session.recovered);
    }
    let reports = roll_back(&ctx, &mut session.journal)?;
    let mut lines = session.recovered;
    lines.push(format!(
        "rolled back an `arm --verify` (pid {}) that was stopped before its verdict: {}",
        v.pid,
        reports
            .iter()
            .map(|r| format!("{} {}", r.target.as_str(), r.status.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(lines)
}

/// Write a target's planned changes (unless `--dry-run`), then what its daemon needs
/// (done with `--reload`).
fn write_target(
    ctx: &Ctx,
    journal: &mut Journal,
    t: TargetName,
    changes: &[Change],
    opts: &WriteOpts,
) -> Result<Option<ReloadReport>> {
    if !opts.dry_run {
        apply::commit(ctx, journal, changes)?;
    }
    reload::after(ctx, journal, t, changes, mode(opts))
}
