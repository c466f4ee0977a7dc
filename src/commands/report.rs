//! The report of `arm` and `disarm`: typed statuses, built from the engine's planned changes,
//! rendered once as text (with diffs) or as one JSON document.

use crate::apply::{Change, FileStatus};
use crate::diag::outln;
use crate::mirror::MirrorSet;
use crate::output;
use crate::reload::ReloadReport;
use crate::targets::TargetName;
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;

/// What happened to a target as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetStatus {
    /// Every file it changed was new.
    Created,
    Changed,
    Unchanged,
    /// Nothing to do for it (with the reason).
    Skipped,
    /// disarm: every file is back as it was.
    Restored,
    /// disarm: mirrorctl never armed it.
    NotArmed,
}

impl TargetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Created => "created",
            TargetStatus::Changed => "changed",
            TargetStatus::Unchanged => "unchanged",
            TargetStatus::Skipped => "skipped",
            TargetStatus::Restored => "restored",
            TargetStatus::NotArmed => "not-armed",
        }
    }

    /// The status of a target whose files changed as `statuses` say.
    pub fn of(statuses: &[FileStatus], disarm: bool) -> TargetStatus {
        if statuses.iter().all(|s| *s == FileStatus::Unchanged) {
            TargetStatus::Unchanged
        } else if disarm && !statuses.contains(&FileStatus::Changed) {
            TargetStatus::Restored
        } else if !disarm
            && statuses
                .iter()
                .all(|s| matches!(s, FileStatus::Created | FileStatus::Unchanged))
        {
            TargetStatus::Created
        } else {
            TargetStatus::Changed
        }
    }
}

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
    pub status: TargetStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub files: Vec<FileReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload: Option<ReloadReport>,
}

impl TargetReport {
    /// A target with nothing to do, and why.
    pub fn without_files(target: TargetName, status: TargetStatus, reason: String) -> TargetReport {
        TargetReport {
            target,
            status,
            reason: Some(reason),
            notes: Vec::new(),
            files: Vec::new(),
            reload: None,
        }
    }

    /// A target whose files change as planned.
    pub fn of_changes(target: TargetName, changes: &[Change], disarm: bool) -> TargetReport {
        let statuses: Vec<FileStatus> = changes.iter().map(|c| c.status).collect();
        TargetReport {
            target,
            status: TargetStatus::of(&statuses, disarm),
            reason: None,
            notes: Vec::new(),
            files: changes
                .iter()
                .map(|c| FileReport {
                    path: c.sys_path.clone(),
                    file: c.file.clone(),
                    status: c.status,
                    diff: c.diff(),
                    note: c.note.clone(),
                })
                .collect(),
            reload: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub command: &'static str,
    pub ok: bool,
    pub dry_run: bool,
    pub root: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirrors: Option<MirrorSet>,
    /// arm: what each mirror answered before anything was written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preflight: Vec<super::preflight::PreflightReport>,
    pub targets: Vec<TargetReport>,
    /// What this run finished or undid of a run that was killed mid-way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recovered: Vec<String>,
    /// `arm --verify`: each armed target's client probe.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<super::verify_arm::ProbeReport>,
    /// `arm --verify` whose probe failed: what was put back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Vec<TargetReport>>,
}

impl RunReport {
    /// What failed: reloads that failed or could not be confirmed, and `--verify` probes.
    fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .reload_failed()
            .into_iter()
            .map(|f| format!("reload failed: {f}"))
            .collect();
        for p in self.probes.iter().filter(|p| p.failed()) {
            out.push(format!(
                "the {} probe failed: {}",
                p.target.as_str(),
                p.detail
            ));
        }
        if out.is_empty() {
            return out;
        }
        if let Some(r) = &self.rollback {
            out.push(format!(
                "rolled back ({})",
                r.iter()
                    .map(|t| format!("{} {}", t.target.as_str(), t.status.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out
    }

    /// A reload failed or could not be confirmed.
    pub fn reload_failed(&self) -> Vec<String> {
        self.targets
            .iter()
            .filter_map(|t| {
                t.reload
                    .as_ref()
                    .filter(|r| r.failed)
                    .map(|r| format!("{}: {}", t.target.as_str(), r.detail))
            })
            .collect()
    }
}

/// Print the report (text, or one JSON document) and give the exit code: 0, or 1 when a
/// reload failed. With `--json` a failed run's document also carries `error` and `exit_code`,
/// the fields every failing `--json` command prints.
pub fn finish(mut report: RunReport, json: bool, reload_requested: bool) -> Result<i32> {
    let failures = report.failures();
    report.ok = failures.is_empty();
    let code = if report.ok { 0 } else { 1 };
    if json {
        let mut doc = serde_json::to_value(&report)?;
        if let (false, Some(obj)) = (report.ok, doc.as_object_mut()) {
            obj.insert("error".into(), failures.join("; ").into());
            obj.insert("exit_code".into(), code.into());
        }
        output::print_json(&doc)?;
        return Ok(code);
    }
    if !output::quiet() {
        print_text(&report, reload_requested);
    }
    if !report.ok {
        output::print_error_line(&failures.join("; "));
    }
    Ok(code)
}

fn print_text(report: &RunReport, reload_requested: bool) {
    for r in &report.recovered {
        outln!("recovered: {r}");
    }
    print_targets(&report.targets, reload_requested);
    print_tail(report);
}

fn print_targets(targets: &[TargetReport], reload_requested: bool) {
    for t in targets {
        let status = match t.status {
            TargetStatus::Unchanged | TargetStatus::NotArmed => {
                console::style(t.status.as_str()).dim()
            }
            TargetStatus::Skipped => console::style(t.status.as_str()).yellow(),
            _ => console::style(t.status.as_str()).green().bold(),
        };
        let paths: Vec<String> = t
            .files
            .iter()
            .filter(|f| f.status != FileStatus::Unchanged || t.status == TargetStatus::Unchanged)
            .map(|f| f.file.display().to_string())
            .collect();
        let tail = match &t.reason {
            Some(r) => format!("({r})"),
            None => paths.join(", "),
        };
        outln!("{:<11} {:<9} {}", t.target.as_str(), status, tail);
        for f in &t.files {
            if !f.diff.is_empty() {
                output::print_diff(&f.diff);
            }
            if let Some(n) = &f.note {
                outln!("  note: {}: {n}", f.path);
            }
        }
        for n in &t.notes {
            outln!("  note: {n}");
        }
        if let Some(r) = &t.reload {
            print_reload(r, reload_requested);
        }
    }
}

fn print_tail(report: &RunReport) {
    for p in &report.probes {
        let mark = match p.ok {
            Some(true) => console::style("✓").green().bold(),
            Some(false) => console::style("✗").red().bold(),
            None => console::style("-").dim(),
        };
        outln!(
            "{mark} verify     {} ({}): {}",
            p.target.as_str(),
            p.client.unwrap_or("no client"),
            p.detail
        );
    }
    if let Some(rb) = &report.rollback {
        outln!("{}", console::style("rolled back:").red().bold());
        print_targets(rb, true);
    }
    if report.dry_run {
        outln!("{}", console::style("dry run: nothing was written").dim());
    }
}

fn print_reload(r: &ReloadReport, reload_requested: bool) {
    if r.failed {
        outln!(
            "  {} {} — {}",
            console::style("reload failed:").red(),
            r.action,
            r.detail
        );
    } else if r.done {
        outln!("  reloaded: {} — {}", r.action, r.detail);
    } else if r.needed {
        outln!(
            "  {} {} — {}",
            console::style("needs reload:").yellow(),
            r.action,
            r.detail
        );
    } else if reload_requested || output::verbose() {
        // `--reload` that found nothing to reload says so.
        outln!("  reload: {}", r.detail);
    }
}
