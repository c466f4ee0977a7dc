//! The commands: each file adapts its clap arguments to the engine (or to `verify` / `serve`,
//! which take their own option structs) and renders the outcome. No policy lives here.

pub mod arm;
pub mod disarm;
pub mod preflight;
pub mod report;
pub mod serve;
pub mod status;
pub mod verify;

use crate::apply::{self, Change, Session};
use crate::cli::{Global, WriteOpts};
use crate::ctx::Ctx;
use crate::journal::Journal;
use crate::mirror::MirrorSet;
use crate::reload::{self, Mode, ReloadReport};
use crate::targets::TargetName;
use anyhow::Result;
use report::{RunReport, TargetReport, TargetStatus};

/// `--root` and `--state-dir` as a context.
pub fn context(g: &Global) -> Result<Ctx> {
    Ctx::new(&g.root, g.state_dir.as_deref())
}

/// The targets whose client is installed under the root.
pub fn detect(ctx: &Ctx) -> Vec<TargetName> {
    TargetName::all()
        .into_iter()
        .filter(|t| t.detect_paths().iter().any(|p| ctx.root.exists(p)))
        .collect()
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

/// Write every target's plan in order (each one's reload right after it), prune the
/// directories arm created that are empty now, and render the report: the shared end of `arm`
/// and `disarm`.
pub fn write_all(
    ctx: &Ctx,
    mut session: Session,
    planned: Vec<(TargetName, Plan)>,
    opts: &WriteOpts,
    what: Written<'_>,
) -> Result<i32> {
    let mut reports = Vec::new();
    let disarm = what.command == "disarm";
    for (t, plan) in planned {
        let changes = match plan {
            Plan::Nothing(status, why) => {
                reports.push(TargetReport::without_files(t, status, why));
                continue;
            }
            Plan::Changes(c) => c,
        };
        let mut rep = TargetReport::of_changes(t, &changes, disarm);
        rep.notes.extend((what.notes)(t, &changes));
        rep.reload = write_target(ctx, &mut session.journal, t, &changes, opts)?;
        reports.push(rep);
    }
    if !opts.dry_run {
        apply::prune_dirs(ctx, &mut session.journal)?;
    }
    report::finish(
        RunReport {
            command: what.command,
            ok: true,
            dry_run: opts.dry_run,
            root: ctx.root.path().to_path_buf(),
            mirrors: what.mirrors,
            preflight: what.preflight,
            targets: reports,
            recovered: session.recovered,
        },
        opts.json,
        opts.reload,
    )
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
