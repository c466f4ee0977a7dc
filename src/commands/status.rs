//! `mirrorctl status`: per target, whether it is installed and armed, with which mirrors, and
//! what drifted since.

use crate::cli::{Global, StatusArgs};
use crate::diag::outln;
use crate::journal::Journal;
use crate::output;
use crate::reload;
use crate::targets::TargetName;
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;

mod runners;

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
    /// Configs on the root that silently defeat the mirror, one line each with the fix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    /// Whether each of its mirrors answers `GET /v2/` now (absent with `--no-probe`).
    #[serde(skip_serializing_if = "Option::is_none")]
    probe: Option<Vec<MirrorProbe>>,
    /// Earthly: whether its running `earthly-buildkitd` has the config's current settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<crate::host::earthly::ContainerCheck>,
    /// buildx: each builder record, and whether it must be re-created to get the mirrors.
    #[serde(skip_serializing_if = "Option::is_none")]
    builders: Option<Vec<runners::BuilderStatus>>,
}

/// One mirror's answer to `GET /v2/` now.
#[derive(Debug, Clone, Serialize)]
struct MirrorProbe {
    mirror: String,
    ok: bool,
    /// Why not, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(g: &Global, a: &StatusArgs) -> Result<i32> {
    let ctx = super::context(g)?;
    let journal = Journal::load(&ctx.state_dir)?;
    let users = super::Users::find(&ctx, a.earthly_config.as_deref());
    let installed = super::detect(&ctx, &users);
    let containerd = super::containerd::planned_version(&ctx, None)?;
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
            warnings: super::findings::for_target(&ctx, t, &containerd),
            probe: None,
            container: None,
            builders: None,
        });
    }
    for t in out.iter_mut() {
        match t.target {
            TargetName::Earthly if t.installed || t.armed => {
                t.container = runners::earthly(&ctx, &journal, &users);
            }
            TargetName::Buildx if t.installed || t.armed => {
                t.builders = Some(runners::builders(&ctx, &journal, &users));
            }
            _ => {}
        }
    }
    if !a.no_probe {
        probe_mirrors(&mut out, a.probe_timeout)?;
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

/// Ask every armed mirror `GET /v2/` once (under `timeout`) and give each target its answers.
fn probe_mirrors(out: &mut [StatusTarget], timeout: std::time::Duration) -> Result<()> {
    let mut urls: Vec<crate::mirror::Mirror> = Vec::new();
    for t in out.iter() {
        for m in &t.mirrors {
            let url = m.split_once('=').map(|(_, u)| u).unwrap_or(m);
            if let Ok(m) = crate::mirror::Mirror::parse(url) {
                if !urls.contains(&m) {
                    urls.push(m);
                }
            }
        }
    }
    if urls.is_empty() {
        return Ok(());
    }
    let refs: Vec<&crate::mirror::Mirror> = urls.iter().collect();
    let checked = crate::preflight::check(&refs, timeout, false)?;
    for t in out.iter_mut().filter(|t| t.armed) {
        let mine: Vec<MirrorProbe> = checked
            .iter()
            .filter(|c| {
                let u = c.mirror.url();
                t.mirrors
                    .iter()
                    .any(|m| m.ends_with(&format!("={u}")) || *m == u)
            })
            .map(|c| MirrorProbe {
                mirror: c.mirror.url(),
                ok: c.ok(),
                error: c.error.as_ref().map(ToString::to_string),
            })
            .collect();
        t.probe = Some(mine);
    }
    Ok(())
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
        outln!("{:<11} {}", t.target.as_str(), state);
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
            outln!("  {}{flags}", f.file.display());
        }
        if !t.mirrors.is_empty() {
            outln!("  mirrors: {}", t.mirrors.join(", "));
        }
        for w in &t.warnings {
            outln!("  {} {w}", console::style("warning:").yellow().bold());
        }
        runners::print(t.container.as_ref(), t.builders.as_deref());
        for p in t.probe.iter().flatten() {
            match &p.error {
                None => outln!("  {} {} answers", console::style("✓").green(), p.mirror),
                Some(e) => outln!("  {} {}", console::style("✗").red(), e),
            }
        }
    }
}
