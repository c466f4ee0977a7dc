//! `mirrorctl render`: print (or write to `--output`) what `arm` would write into an empty
//! root, or dockerd's flags; the notes about where it goes go to stderr.

use crate::cli::RenderArgs;
use crate::error::UserError;
use crate::host::dockerd::{self, VersionSource};
use crate::render::{self, Format, Request};
use crate::targets::dockerd_version::DockerdVersion;
use crate::{fsutil, output};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

pub fn run(a: &RenderArgs) -> Result<i32> {
    if a.json && a.format != Format::DockerdArgs {
        return Err(UserError(format!(
            "--json is for dockerd-args (a JSON array for a container's `args`); {} is printed as the file itself",
            a.format.as_str()
        ))
        .into());
    }
    let set = a.mirror.set()?;
    let dockerd = dockerd_version(a)?;
    let rendered = render::render(&Request {
        format: a.format,
        set: &set,
        dockerd: &dockerd,
        registry: a.for_registry.as_deref(),
    })?;
    let text = match a.json {
        true => format!("{}\n", serde_json::to_string(&rendered.args)?),
        false => rendered.text,
    };
    match &a.output {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("failed to write to stdout")?;
        }
        Some(path) => write_output(path, &text)?,
    }
    for n in &rendered.notes {
        output::note(&format!("note: {n}"));
    }
    Ok(0)
}

/// `--output FILE`: its missing parent directories created (0755), then an atomic write.
fn write_output(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fsutil::create_dirs(dir)?;
    }
    fsutil::write_atomic(path, text.as_bytes())?;
    output::note(&format!("wrote {}", path.display()));
    Ok(())
}

/// The dockerd the docker formats are for: `--dockerd-version`, else
/// `MIRRORCTL_DOCKERD_VERSION`, else unknown. The image's dockerd is not this machine's, so
/// none is asked.
fn dockerd_version(a: &RenderArgs) -> Result<DockerdVersion> {
    let given = match &a.dockerd_version {
        Some(v) => Some((v.clone(), VersionSource::Flag)),
        None => std::env::var("MIRRORCTL_DOCKERD_VERSION")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v, VersionSource::Env)),
    };
    match given {
        // A given version is parsed, never asked of a binary: the root is not looked at.
        Some((v, source)) => Ok(dockerd::planned_version(
            &fsutil::Root::system(),
            Some((v.as_str(), source)),
        )?),
        None => Ok(DockerdVersion {
            version: None,
            describe: "dockerd version not given (--dockerd-version)".into(),
        }),
    }
}
