//! The commands: each file adapts its clap arguments to the engine (or to `verify` / `serve`,
//! which take their own option structs) and renders the outcome. No policy lives here.

pub mod arm;
pub mod disarm;
pub mod report;
pub mod serve;
pub mod status;
pub mod verify;

use crate::apply::{self, Change};
use crate::cli::{Global, WriteOpts};
use crate::ctx::Ctx;
use crate::journal::Journal;
use crate::reload::{self, Mode, ReloadReport};
use crate::targets::TargetName;
use anyhow::Result;
use std::path::PathBuf;

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

/// Write a target's planned changes (unless `--dry-run`), then what its daemon needs
/// (done with `--reload`). Directories to prune once every target is written are collected in
/// `prune`: several files (and targets) may share them.
pub fn write_target(
    ctx: &Ctx,
    journal: &mut Journal,
    t: TargetName,
    changes: &[Change],
    opts: &WriteOpts,
    prune: &mut Vec<PathBuf>,
) -> Result<Option<ReloadReport>> {
    if !opts.dry_run {
        prune.extend(apply::commit(ctx, journal, changes)?);
    }
    reload::after(ctx, journal, t, changes, mode(opts))
}
