//! `mirrorctl status`: per target, whether it is installed and armed, with which mirrors, and
//! what drifted since.

use crate::cli::{Global, StatusArgs};
use crate::journal::Journal;
use crate::output;
use crate::reload;
use crate::targets::TargetName;
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;

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

pub fn run(g: &Global, a: &StatusArgs) -> Result<i32> {
    let ctx = super::context(g)?;
    let journal = Journal::load(&ctx.state_dir)?;
    let installed = super::detect(&ctx);
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
                reload_pending: reload::waits_for_reload(&rec.kind, rec.reload_pending),
            });
        }
        let mut mirrors: Vec<String> = Vec::new();
        for m in files.iter().flat_map(|f| &f.mirrors) {
            if !mirrors.contains(m) {
                mirrors.push(m.clone());
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
        output::print_json(&serde_json::json!({
            "command": "status",
            "root": ctx.root.path(),
            "state_dir": ctx.state_dir,
            "targets": out,
        }))?;
        return Ok(0);
    }
    if !output::quiet() {
        print_text(&out);
    }
    Ok(0)
}

fn print_text(out: &[StatusTarget]) {
    for t in out {
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
                flags.push("file missing");
            } else if f.drift {
                flags.push("edited since arm");
            }
            if f.reload_pending {
                flags.push("needs reload");
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
}
