//! buildx: a builder copies its BuildKit config when it is created, so after the default file
//! changed, every `docker-container` / `kubernetes` builder whose stored config does not have
//! the change must be re-created: `docker buildx rm --keep-state NAME` (the state volume, and
//! with it the cache, stays), then `docker buildx create` with the same name, driver, nodes,
//! endpoints, platforms, driver options and buildkitd flags, and the node's own config with the
//! change (`--buildkitd-config`). With `--reload` that is done and every command is reported;
//! otherwise it is said.

use super::{Mode, ReloadAction, ReloadReport};
use crate::apply::Change;
use crate::ctx::Ctx;
use crate::fsutil;
use crate::host::buildx as host;
use crate::journal::{FileRecord, Journal};
use crate::mirror::MirrorSet;
use crate::targets::buildx::{self, Builder, State};
use crate::targets::{FileKind, TargetName};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The wanted mirror set a record was armed for.
pub fn set_of(rec: &FileRecord) -> MirrorSet {
    let insecure = matches!(rec.kind, FileKind::BuildxDefault { insecure: true });
    MirrorSet::from_args(&rec.mirrors, crate::oci::DOCKER_HUB, insecure).unwrap_or(MirrorSet {
        registries: Vec::new(),
        insecure,
    })
}

/// Each builder under `dir` (a system path) with what the change means for it, and lines about
/// the records that could not be read or are not covered.
pub fn states(
    ctx: &Ctx,
    dir: &str,
    judge: &dyn Fn(&Builder) -> State,
) -> (Vec<(Builder, State)>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for (name, parsed) in host::builders(&ctx.root, dir) {
        match parsed {
            Ok(b) => {
                let s = judge(&b);
                out.push((b, s));
            }
            Err(e) => notes.push(format!("builder record `{name}`: {e}")),
        }
    }
    (out, notes)
}

/// How to tell what the change means for a builder.
type Judge = Box<dyn Fn(&Builder) -> State>;

/// The default file's path and how to judge each builder: against the record of what is armed
/// (this run's, or the journal's when only a reload is pending), or against the text this
/// disarm took out.
fn judge_for(journal: &Journal, changes: &[Change]) -> Option<(String, Judge)> {
    let change = changes
        .iter()
        .find(|c| matches!(c.kind, FileKind::BuildxDefault { .. }));
    let path = change.map(|c| c.sys_path.clone()).or_else(|| {
        journal
            .for_target(TargetName::Buildx)
            .next()
            .map(|(p, _)| p.clone())
    })?;
    // The record this run writes (also in a dry run, which writes none), else the journal's.
    let rec = match change {
        Some(c) => c.record.as_ref(),
        None => journal.files.get(&path),
    };
    if let Some(rec) = rec {
        let set = set_of(rec);
        let owned = rec.owned.clone();
        return Some((path, Box::new(move |b| buildx::state(b, &set, &owned))));
    }
    let c = change?;
    let armed = c.before.clone().unwrap_or_default();
    let restored = c.after.clone();
    Some((
        path,
        Box::new(move |b| buildx::state_disarmed(b, &armed, restored.as_deref())),
    ))
}

/// The directory a system path is in.
fn parent(sys_path: &str) -> String {
    Path::new(sys_path)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "/".into())
}

pub fn run(
    ctx: &Ctx,
    journal: &mut Journal,
    changes: &[Change],
    mode: Mode,
) -> Result<ReloadReport> {
    let Some((path, judge)) = judge_for(journal, changes) else {
        return Ok(ReloadReport::not_needed("no buildx default config"));
    };
    let dir = parent(&path);
    let (all, mut notes) = states(ctx, &dir, &*judge);
    let mut stale: Vec<(Builder, Vec<String>)> = Vec::new();
    for (b, s) in all {
        match s {
            State::Current => {}
            State::Stale { configs } => stale.push((b, configs)),
            State::NotCovered(why) => notes.push(format!("builder `{}`: {why}", b.name)),
            State::Manual(why) => notes.push(format!(
                "builder `{}` needs re-create, by hand: {why}",
                b.name
            )),
        }
    }
    let extra = if notes.is_empty() {
        String::new()
    } else {
        format!("; {}", notes.join("; "))
    };
    if stale.is_empty() {
        return Ok(ReloadReport::not_needed(format!(
            "buildx builders read buildkitd.default.toml when they are created; no existing docker-container or kubernetes builder lacks this change{extra}"
        )));
    }
    let names: Vec<String> = stale.iter().map(|(b, _)| b.name.clone()).collect();
    let action = ReloadAction::Recreate {
        builders: names.clone(),
    };
    let list = stale
        .iter()
        .map(|(b, _)| format!("`{}` ({})", b.name, b.driver))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(match mode {
        Mode::DryRun => ReloadReport::todo(
            action,
            format!("would re-create {list}: a builder keeps the config it copied when it was created{extra}"),
        ),
        Mode::Report => ReloadReport::todo(
            action,
            format!(
                "needs re-create: {list} (created before this change, a builder keeps the config it copied); rerun with --reload to run `docker buildx rm --keep-state NAME` and `docker buildx create` with the same name, driver, nodes, driver options and flags (--keep-state keeps the cache){extra}"
            ),
        ),
        Mode::Apply => recreate_all(ctx, &dir, &stale, action, &extra)?,
    })
}

/// Re-create each stale builder, saying every command that ran.
fn recreate_all(
    ctx: &Ctx,
    dir: &str,
    stale: &[(Builder, Vec<String>)],
    action: ReloadAction,
    extra: &str,
) -> Result<ReloadReport> {
    let real_dir = ctx.resolve(dir)?;
    let version = host::version(&real_dir);
    let scratch = ctx.state_dir.join("buildx");
    let mut ran: Vec<String> = Vec::new();
    for (b, configs) in stale {
        match recreate(&real_dir, &scratch, b, configs, version, &mut ran) {
            Ok(()) => {}
            Err(e) => {
                return Ok(ReloadReport::failed(
                    action,
                    format!("{e:#}; ran: {}{extra}", ran.join("; ")),
                    !ran.is_empty(),
                ))
            }
        }
    }
    let _ = std::fs::remove_dir(&scratch);
    Ok(ReloadReport::done(
        action,
        format!(
            "re-created with --keep-state (the cache stays): ran {}{extra}",
            ran.join("; ")
        ),
    ))
}

fn recreate(
    dir: &Path,
    scratch: &Path,
    b: &Builder,
    configs: &[String],
    version: Option<(u32, u32)>,
    ran: &mut Vec<String>,
) -> Result<()> {
    std::fs::create_dir_all(scratch)
        .with_context(|| format!("failed to create `{}`", scratch.display()))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let f = scratch.join(format!("{}-{i}.toml", b.name));
        fsutil::write_atomic(&f, c.as_bytes())?;
        files.push(f);
    }
    let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let cmds = buildx::recreate_commands(b, &shown, version);
    let kube = b
        .nodes
        .first()
        .and_then(|n| buildx::kubeconfig(&n.endpoint));
    let mut result = Ok(());
    for c in &cmds {
        ran.push(format!("`{}`", host::shown(c)));
        match host::run(dir, c, kube.as_deref()) {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                result = Err(anyhow::anyhow!(
                    "`{}` failed: {}",
                    host::shown(c),
                    out.last_line()
                ));
                break;
            }
            Err(e) => {
                result = Err(anyhow::Error::new(e));
                break;
            }
        }
    }
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    result
}
