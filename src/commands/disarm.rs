//! `mirrorctl disarm`: put back what `arm` changed, per the journal.

use super::report::TargetStatus;
use super::{Plan, Written};
use crate::apply::{self, Session};
use crate::cli::{DisarmArgs, Global};
use crate::diag::outln;
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
        outln!(
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
        let plan = if changes.is_empty() {
            Plan::Nothing(TargetStatus::NotArmed, "nothing to revert".into())
        } else {
            Plan::Changes(changes)
        };
        planned.push((*t, plan));
    }
    let report = super::write_all(
        &ctx,
        &mut session,
        planned,
        &a.common,
        Written {
            command: "disarm",
            mirrors: None,
            preflight: Vec::new(),
            notes: &|_, _| Vec::new(),
        },
    )?;
    super::report::finish(report, a.common.json, a.common.reload)
}
