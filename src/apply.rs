//! The engine, the only code that writes client config files. It reads each file under
//! `--root`, asks the target's pure planner for the new text, renders the diff, and — unless
//! `--dry-run` — writes atomically and records the change in the journal. No format knowledge
//! lives here; safety (locking, atomicity, modes, links, journaling) is proven once for all.

use crate::ctx::Ctx;
use crate::fsutil;
use crate::journal::{FileRecord, Journal};
use crate::mirror::MirrorSet;
use crate::targets::TargetName;
use crate::targets::{ContextSource, FileJob, FileKind};
use anyhow::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What happens to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// The file did not exist and is written.
    Created,
    /// The file exists and its text changes.
    Changed,
    /// Nothing to do.
    Unchanged,
    /// The original bytes are put back exactly (disarm of an untouched file).
    Restored,
    /// The file is deleted (disarm of a file arm created).
    Removed,
}

/// A planned change to one file.
#[derive(Debug, Clone)]
pub struct Change {
    pub target: TargetName,
    /// System path, e.g. `/etc/docker/daemon.json`.
    pub sys_path: String,
    /// The real file under `--root`, links followed.
    pub file: PathBuf,
    pub kind: FileKind,
    pub before: Option<String>,
    /// `None`: the file is to be deleted.
    pub after: Option<String>,
    pub status: FileStatus,
    /// The journal record after this change (`None`: the record is dropped).
    pub record: Option<FileRecord>,
    /// A note for the user (drift kept, file already gone…).
    pub note: Option<String>,
}

impl Change {
    pub fn writes(&self) -> bool {
        self.status != FileStatus::Unchanged
    }

    /// A unified diff of the change, `a/` and `b/` prefixed like git.
    pub fn diff(&self) -> String {
        if self.before == self.after {
            return String::new();
        }
        let old = self.before.as_deref().unwrap_or("");
        let new = self.after.as_deref().unwrap_or("");
        let a = match self.before {
            Some(_) => format!("a{}", self.sys_path),
            None => "/dev/null".to_string(),
        };
        let b = match self.after {
            Some(_) => format!("b{}", self.sys_path),
            None => "/dev/null".to_string(),
        };
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header(&a, &b)
            .missing_newline_hint(true)
            .to_string()
    }
}

/// A writing run's hold on the state: the lock (none in a dry run, which writes nothing, not
/// even the lock file), the journal, and what was recovered from a run killed mid-way.
pub struct Session {
    pub journal: Journal,
    /// One line per thing finished or undone for a killed run (see [`Journal::recover`]).
    pub recovered: Vec<String>,
    _lock: Option<fsutil::Lock>,
}

impl Session {
    /// Lock (waiting up to `lock_timeout`), load the journal and finish what a killed run left,
    /// before anything is planned. A dry run only reads.
    pub fn open(ctx: &Ctx, dry_run: bool, lock_timeout: std::time::Duration) -> Result<Session> {
        if dry_run {
            return Ok(Session {
                journal: Journal::load(&ctx.state_dir)?,
                recovered: Vec::new(),
                _lock: None,
            });
        }
        let lock = ctx.lock(lock_timeout)?;
        let mut journal = Journal::load(&ctx.state_dir)?;
        let recovered = journal.recover(&ctx.state_dir)?;
        // Directories a killed run had still to prune.
        prune_dirs(ctx, &mut journal)?;
        Ok(Session {
            journal,
            recovered,
            _lock: Some(lock),
        })
    }
}

/// Plan putting back the files an `arm --verify` changed, as the journal's `verifying` entry
/// recorded them before that run: a file that was not armed before is disarmed (its original
/// bytes back); one that was is given back what mirrorctl had written there before, and its
/// record. A file edited since is left alone, with a note. Grouped by target, in order.
pub fn plan_rollback(
    ctx: &Ctx,
    journal: &Journal,
    v: &crate::journal::Verifying,
) -> Result<Vec<(TargetName, Vec<Change>)>> {
    let mut out: Vec<(TargetName, Vec<Change>)> = Vec::new();
    for (path, prev) in &v.before {
        let Some(now) = journal.files.get(path) else {
            continue;
        };
        let change = match prev {
            None => plan_disarm_file(ctx, path, now)?,
            Some(p) => {
                let file = ctx.resolve(path)?;
                let before = fsutil::read_optional(&file)?;
                let (status, note) = if before.as_deref() == Some(p.written.as_str()) {
                    (FileStatus::Unchanged, None)
                } else if before.as_deref() == Some(now.written.as_str()) || before.is_none() {
                    (FileStatus::Restored, None)
                } else {
                    (
                        FileStatus::Unchanged,
                        Some("edited since the arm: left as it is".to_string()),
                    )
                };
                let after = match &note {
                    None => Some(p.written.clone()),
                    Some(_) => before.clone(),
                };
                Change {
                    target: now.target,
                    sys_path: path.clone(),
                    file,
                    kind: now.kind.clone(),
                    before,
                    after,
                    status,
                    record: Some(p.clone()),
                    note,
                }
            }
        };
        match out.iter_mut().find(|(t, _)| *t == change.target) {
            Some((_, v)) => v.push(change),
            None => out.push((change.target, vec![change])),
        }
    }
    Ok(out)
}

/// Plan arming `target` for `set`: every file the target wants, plus the disarm of files it
/// armed before and no longer wants (a registry dropped from the set).
pub fn plan_arm(
    ctx: &Ctx,
    journal: &Journal,
    target: TargetName,
    jobs: &[FileJob],
    set: &MirrorSet,
) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    for job in jobs {
        let file = ctx.resolve(&job.path)?;
        let before = fsutil::read_optional(&file)?;
        let rec = journal.files.get(&job.path);
        let prev: &[String] = rec.map(|r| r.owned.as_slice()).unwrap_or(&[]);
        let context = read_context(ctx, &job.kind)?;
        let planned = job
            .kind
            .arm(before.as_deref(), set, prev, &context)
            .map_err(|e| e.in_file(&file))?;

        let original = users_version(rec, before.as_deref(), &file)?;
        let status = match (&before, before.as_deref() == Some(planned.text.as_str())) {
            (_, true) => FileStatus::Unchanged,
            (None, _) => FileStatus::Created,
            (Some(_), false) => FileStatus::Changed,
        };
        let mirrors = mirrors_for(&job.kind, set);
        let reload_now = status != FileStatus::Unchanged && !job.kind.applies_without_reload();
        let record = FileRecord {
            target,
            kind: job.kind.clone(),
            file: file.clone(),
            original,
            written: planned.text.clone(),
            owned: planned.owned,
            created_dirs: rec.map(|r| r.created_dirs.clone()).unwrap_or_default(),
            mirrors,
            reload_pending: rec.is_some_and(|r| r.reload_pending) || reload_now,
        };
        changes.push(Change {
            target,
            sys_path: job.path.clone(),
            file,
            kind: job.kind.clone(),
            before,
            after: Some(planned.text),
            status,
            record: Some(record),
            note: None,
        });
    }
    // Files this target armed before that the new set no longer covers.
    for (path, rec) in journal.for_target(target) {
        if jobs.iter().any(|j| &j.path == path) {
            continue;
        }
        changes.push(plan_disarm_file(ctx, path, rec)?);
    }
    Ok(changes)
}

/// The file as the user has it, without mirrorctl: what disarm puts back. The first arm's
/// original when the file is as mirrorctl left it, or still (again) as it was before the first
/// arm (a run killed before its write); when the user edited it since, their version without
/// mirrorctl's entries.
fn users_version(
    rec: Option<&FileRecord>,
    before: Option<&str>,
    file: &std::path::Path,
) -> Result<Option<String>> {
    Ok(match rec {
        None => before.map(str::to_string),
        Some(r) if before == Some(r.written.as_str()) => r.original.clone(),
        Some(r) if before == r.original.as_deref() => r.original.clone(),
        Some(r) => match before {
            None => None,
            Some(b) => Some(
                r.kind
                    .disarm(b, &r.owned)
                    .map_err(|e| e.in_file(file))?
                    .text,
            ),
        },
    })
}

/// A system file as the user has it, without mirrorctl's entries (see [`users_version`]):
/// what a target decides its plan from when mirrorctl edited the file before.
pub fn user_text(ctx: &Ctx, journal: &Journal, sys_path: &str) -> Result<Option<String>> {
    let file = ctx.resolve(sys_path)?;
    let before = fsutil::read_optional(&file)?;
    users_version(journal.files.get(sys_path), before.as_deref(), &file)
}

/// Read the other files a planner needs (`(system path, text)`, existing ones only, sorted by
/// path). Read-only: the planner stays pure, the engine does the I/O.
fn read_context(ctx: &Ctx, kind: &FileKind) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for src in kind.context_sources() {
        match src {
            ContextSource::File(p) => {
                if let Some(text) = fsutil::read_optional(&ctx.resolve(p)?)? {
                    out.push((p.to_string(), text));
                }
            }
            ContextSource::Dir { dir, suffix, skip } => {
                let real = ctx.resolve(dir)?;
                let Ok(rd) = std::fs::read_dir(&real) else {
                    continue;
                };
                let mut names: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.ends_with(suffix) && n != skip)
                    .collect();
                names.sort();
                for n in names {
                    let p = format!("{dir}/{n}");
                    if let Some(text) = fsutil::read_optional(&ctx.resolve(&p)?)? {
                        out.push((p, text));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Plan disarming one journaled file.
pub fn plan_disarm_file(ctx: &Ctx, sys_path: &str, rec: &FileRecord) -> Result<Change> {
    let file = ctx.resolve(sys_path)?;
    let before = fsutil::read_optional(&file)?;
    let (after, status, note) = match &before {
        None => (
            None,
            FileStatus::Unchanged,
            Some("already gone; nothing to revert".to_string()),
        ),
        Some(cur) if *cur == rec.written => match &rec.original {
            None => (None, FileStatus::Removed, None),
            Some(orig) if orig == cur => (Some(orig.clone()), FileStatus::Unchanged, None),
            Some(orig) => (Some(orig.clone()), FileStatus::Restored, None),
        },
        // Already byte-identical to what it was before arm (an arm killed before its write,
        // or the user put it back): never rewritten.
        Some(cur) if rec.original.as_deref() == Some(cur.as_str()) => (
            Some(cur.clone()),
            FileStatus::Unchanged,
            Some("already as it was before arm".to_string()),
        ),
        Some(cur) => {
            let planned = rec
                .kind
                .disarm(cur, &rec.owned)
                .map_err(|e| e.in_file(&file))?;
            let status = if planned.text == *cur {
                FileStatus::Unchanged
            } else {
                FileStatus::Changed
            };
            (
                Some(planned.text),
                status,
                Some(
                    "edited since arm: removed only mirrorctl's entries, kept the edits"
                        .to_string(),
                ),
            )
        }
    };
    Ok(Change {
        target: rec.target,
        sys_path: sys_path.to_string(),
        file,
        kind: rec.kind.clone(),
        before,
        after,
        status,
        record: None,
        note,
    })
}

fn mirrors_for(kind: &FileKind, set: &MirrorSet) -> Vec<String> {
    let pick = |reg: &str| -> Vec<String> {
        set.for_registry(reg)
            .map(|r| r.mirrors.iter().map(|m| format!("{reg}={m}")).collect())
            .unwrap_or_default()
    };
    match kind {
        FileKind::DaemonJson => pick(crate::oci::DOCKER_HUB),
        FileKind::ContainerdHosts { registry, .. } => pick(registry),
        FileKind::BuildkitToml
        | FileKind::ContainerdConfig { .. }
        | FileKind::RegistriesDropin
        | FileKind::K3sYaml
        | FileKind::EarthlyConfig
        | FileKind::BuildxDefault { .. } => set
            .registries
            .iter()
            .flat_map(|r| pick(&r.registry))
            .collect(),
    }
}

/// Apply planned changes: journal first, then the file, so a crash in between leaves a journal
/// that still describes what mirrorctl may own (a record whose `written` text is not on disk is
/// treated as drift and reconciled by the next run).
///
/// When a record is dropped (its file reverted or deleted), the directories arm created for it
/// move to the journal's `prune` list in the same save: several files (and targets) may share
/// them (certs.d/… under /etc/containerd), so they are removed by [`prune_dirs`] once the run's
/// files are all reverted — and by the next run, should this one be killed first.
pub fn commit(ctx: &Ctx, journal: &mut Journal, changes: &[Change]) -> Result<()> {
    for ch in changes {
        match (&ch.record, ch.writes()) {
            (Some(rec), true) => {
                let mut rec = rec.clone();
                let dir = ch.file.parent().map(Path::to_path_buf).unwrap_or_default();
                // The directories are journaled before they are made, so a run killed in
                // between leaves nothing the next disarm does not know about.
                rec.created_dirs.extend(fsutil::missing_dirs(&dir));
                journal.files.insert(ch.sys_path.clone(), rec);
                journal.save(&ctx.state_dir)?;
                fsutil::create_dirs(&dir)?;
                if let Some(after) = ch.after.as_deref() {
                    fsutil::write_atomic(&ch.file, after.as_bytes())?;
                }
            }
            (Some(rec), false) => {
                if journal.files.get(&ch.sys_path) != Some(rec) {
                    journal.files.insert(ch.sys_path.clone(), rec.clone());
                    journal.save(&ctx.state_dir)?;
                }
            }
            (None, _) => {
                match (&ch.after, ch.writes()) {
                    (Some(text), true) => fsutil::write_atomic(&ch.file, text.as_bytes())?,
                    (None, true) => fsutil::remove_file(&ch.file)?,
                    (_, false) => {}
                }
                if let Some(rec) = journal.files.remove(&ch.sys_path) {
                    // The file is gone (deleted now, never written by a killed arm, or removed
                    // since) or back to what it was: arm's directories for it go when empty.
                    if ch.after.is_none() {
                        journal.prune.extend(rec.created_dirs);
                    }
                    journal.save(&ctx.state_dir)?;
                }
            }
        }
    }
    Ok(())
}

/// Remove the directories waiting in the journal's `prune` list, deepest first, when empty. A
/// directory that still holds a journaled file stays listed (it empties later); one that holds
/// only someone else's files now is theirs, and leaves the list.
pub fn prune_dirs(ctx: &Ctx, journal: &mut Journal) -> Result<()> {
    if journal.prune.is_empty() {
        return Ok(());
    }
    let mut dirs = std::mem::take(&mut journal.prune);
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.dedup();
    for d in dirs {
        let gone = std::fs::remove_dir(&d).is_ok() || !d.exists();
        let still_ours = journal.files.values().any(|r| r.file.starts_with(&d));
        if !gone && still_ours {
            journal.prune.push(d);
        }
    }
    journal.save(&ctx.state_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(urls: &[&str]) -> MirrorSet {
        let v: Vec<String> = urls.iter().map(|s| s.to_string()).collect();
        MirrorSet::from_args(&v, "docker.io", false).unwrap()
    }

    fn job() -> FileJob {
        FileJob {
            path: crate::targets::DAEMON_JSON.into(),
            kind: FileKind::DaemonJson,
        }
    }

    #[test]
    fn a_crash_between_journal_and_file_is_reconciled() {
        let t = tempfile::tempdir().unwrap();
        let ctx = Ctx::new(t.path(), Some(&t.path().join("state"))).unwrap();
        let f = ctx.resolve(crate::targets::DAEMON_JSON).unwrap();
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, "{\"debug\": true}\n").unwrap();
        let mut journal = Journal::default();
        let s = set(&["http://a:1"]);
        let changes = plan_arm(&ctx, &journal, TargetName::Docker, &[job()], &s).unwrap();
        // Simulate the crash: the journal is saved, the file write never happens.
        let rec = changes[0].record.clone().unwrap();
        journal.files.insert(changes[0].sys_path.clone(), rec);
        // The next run sees drift, takes the file as the user's baseline, and arms it.
        let again = plan_arm(&ctx, &journal, TargetName::Docker, &[job()], &s).unwrap();
        assert_eq!(again[0].status, FileStatus::Changed);
        let rec = again[0].record.as_ref().unwrap();
        assert_eq!(rec.original.as_deref(), Some("{\"debug\": true}\n"));
        commit(&ctx, &mut journal, &again).unwrap();
        prune_dirs(&ctx, &mut journal).unwrap();
        let back = plan_disarm_file(
            &ctx,
            crate::targets::DAEMON_JSON,
            &journal.files[crate::targets::DAEMON_JSON],
        )
        .unwrap();
        assert_eq!(back.status, FileStatus::Restored);
        assert_eq!(back.after.as_deref(), Some("{\"debug\": true}\n"));
    }

    #[test]
    fn a_file_deleted_since_arm_is_nothing_to_revert() {
        let t = tempfile::tempdir().unwrap();
        let ctx = Ctx::new(t.path(), Some(&t.path().join("state"))).unwrap();
        let mut journal = Journal::default();
        let changes = plan_arm(
            &ctx,
            &journal,
            TargetName::Docker,
            &[job()],
            &set(&["http://a:1"]),
        )
        .unwrap();
        commit(&ctx, &mut journal, &changes).unwrap();
        prune_dirs(&ctx, &mut journal).unwrap();
        std::fs::remove_file(ctx.resolve(crate::targets::DAEMON_JSON).unwrap()).unwrap();
        let back = plan_disarm_file(
            &ctx,
            crate::targets::DAEMON_JSON,
            &journal.files[crate::targets::DAEMON_JSON],
        )
        .unwrap();
        assert_eq!(back.status, FileStatus::Unchanged);
        assert!(back.note.unwrap().contains("already gone"));
    }
}
