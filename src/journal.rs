//! The journal: for every file mirrorctl touched, the bytes it had before (or that it was
//! absent), the bytes mirrorctl wrote, and the entries mirrorctl owns in it. It is what makes
//! `disarm` byte-exact, re-`arm` replace only mirrorctl's own entries, and `status` see drift.

use crate::cli::TargetName;
use crate::fsutil;
use crate::targets::FileKind;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "journal.json";
const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    /// Keyed by system path (`/etc/docker/daemon.json`).
    pub files: BTreeMap<String, FileRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub target: TargetName,
    #[serde(flatten)]
    pub kind: FileKind,
    /// The real file written (the system path resolved under `--root`, links followed).
    pub file: PathBuf,
    /// The bytes before mirrorctl's first arm (`null`: the file did not exist). When the user
    /// edited the file between two arms, this is their version without mirrorctl's entries.
    pub original: Option<String>,
    /// The bytes mirrorctl last wrote.
    pub written: String,
    /// Planner tokens for the entries mirrorctl added.
    pub owned: Vec<String>,
    /// Directories mirrorctl created for the file, outermost first.
    #[serde(default)]
    pub created_dirs: Vec<PathBuf>,
    /// The mirrors this file was armed with, for `status`.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Whether the daemon still has to be reloaded to apply what was written.
    #[serde(default)]
    pub reload_pending: bool,
}

impl Journal {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }

    pub fn load(state_dir: &Path) -> Result<Journal> {
        let path = Self::path(state_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let j: Journal = serde_json::from_str(&text).with_context(|| {
                    format!(
                        "journal `{}` is corrupt; move it away to start over (files mirrorctl armed will then look like the user's)",
                        path.display()
                    )
                })?;
                Ok(j)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Journal {
                version: VERSION,
                files: BTreeMap::new(),
            }),
            Err(e) => Err(e).with_context(|| format!("failed to read `{}`", path.display())),
        }
    }

    /// Write the journal atomically (mode 0600: it holds copies of config files).
    pub fn save(&self, state_dir: &Path) -> Result<()> {
        fsutil::create_dirs(state_dir)?;
        let path = Self::path(state_dir);
        let mut j = self.clone();
        j.version = VERSION;
        let text = serde_json::to_string_pretty(&j)? + "\n";
        let fresh = !path.exists();
        fsutil::write_atomic(&path, text.as_bytes())?;
        if fresh {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("failed to set the mode of `{}`", path.display()))?;
        }
        Ok(())
    }

    pub fn for_target(&self, t: TargetName) -> impl Iterator<Item = (&String, &FileRecord)> {
        self.files.iter().filter(move |(_, r)| r.target == t)
    }
}
