//! `mirrorctl disarm`: put back what `arm` changed, per the journal.

use super::report::{finish, RunReport, TargetReport, TargetStatus};
use crate::apply::{self, Session};
use crate::cli::{DisarmArgs, Global};
use crate::journal::Journal;
use crate::output;
use crate::targets::TargetName;
use anyhow::Result;

pub fn run(g: &Global, a: &DisarmArgs) -> Result<i32> {
    let ctx = super::context(g)?;
    let mut session = Session::open(&ctx, a.common.dry_run, a.common.lock_timeout)?;
    let targets = if a.targets.is_empty() {
        let mut ts: Vec<TargetName> = session.journal.files.values().map(|r| r.target).collect();
        ts.sort();
        super::dedup(ts)
    } else {
        super::dedup(a.targets.clone())
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
        for (path, rec) in session.journal.for_target(*t) {
            changes.push(apply::plan_disarm_file(&ctx, path, rec)?);
        }
        planned.push((*t, changes));
    }
    let mut reports = Vec::new();
    let mut prune = Vec::new();
    for (t, changes) in planned {
        if changes.is_empty() {
            reports.push(TargetReport::without_files(
                t,
                TargetStatus::NotArmed,
                "nothing to revert".into(),
            ));
            continue;
        }
        let mut rep = TargetReport::of_changes(t, &changes, true);
        rep.reload = super::write_target(
            &ctx,
            &mut session.journal,
            t,
            &changes,
            &a.common,
            &mut prune,
        )?;
        reports.push(rep);
    }
    apply::prune_dirs(prune);
    finish(
        RunReport {
            command: "disarm",
            ok: true,
            dry_run: a.common.dry_run,
            root: ctx.root.path().to_path_buf(),
            mirrors: None,
            targets: reports,
            recovered: session.recovered,
        },
        a.common.json,
        a.common.reload,
    )
}
