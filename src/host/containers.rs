//! containers/image clients (podman, skopeo, buildah, CRI-O): the registries.conf table in
//! effect for a registry, as the engine reads the files under `--root`; the per-user file that
//! overrides the system ones; CRI-O's pid.

use crate::fsutil::{self, Root};
use crate::targets::registries::{self, Effective};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// Where CRI-O writes its pid.
pub const CRIO_PID_FILES: [&str; 2] = ["/var/run/crio.pid", "/run/crio.pid"];

/// The pid of a running CRI-O (checked to be `crio`).
pub fn crio_pid(root: &Root) -> Option<i32> {
    super::daemon_pid(root, &CRIO_PID_FILES, "crio")
}

/// `registries.conf` and every `registries.conf.d/*.conf` under the root (links followed inside
/// it, as `arm` reads them), in the order containers/image reads them: `(shown path, text)`.
pub fn registries_files(root: &Root) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let main = root.resolve(registries::MAIN_CONF)?;
    if let Some(text) = fsutil::read_optional(&main)? {
        out.push((main.display().to_string(), text));
    }
    let dir = root.resolve(registries::DROPIN_DIR)?;
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".conf"))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    for n in names {
        let f = root.resolve(&format!("{}/{n}", registries::DROPIN_DIR))?;
        let text = fsutil::read_optional(&f)?
            .with_context(|| format!("`{}` vanished while reading", f.display()))?;
        out.push((f.display().to_string(), text));
    }
    Ok(out)
}

/// The `[[registry]]` table that decides how these clients pull `registry` under the root.
pub fn effective(root: &Root, registry: &str) -> Result<Effective> {
    let files = registries_files(root)?;
    Ok(registries::effective(&files, registry)?)
}

/// A per-user `~/.config/containers/registries.conf`, which makes podman ignore the system
/// file and its drop-ins; only on the real root (a `--root` has no users of its own here).
pub fn user_override(root: &Root) -> Option<PathBuf> {
    if !root.is_real() {
        return None;
    }
    let p = dirs::home_dir()?.join(".config/containers/registries.conf");
    p.exists().then_some(p)
}
