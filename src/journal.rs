//! The journal: for every file mirrorctl touched, the bytes it had before (or that it was
//! absent), the bytes mirrorctl wrote, and the entries mirrorctl owns in it. It is what makes
//! `disarm` byte-exact, re-`arm` replace only mirrorctl's own entries, and `status` see drift.

use crate::fsutil;
use crate::targets::FileKind;
use crate::targets::TargetName;
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
    /// A file holding a temporary text (dockerd's reload with explicit empty lists) that must
    /// be put back: set before the temporary write, cleared after the restore; a run killed in
    /// between leaves it here and the next run restores the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transient: Option<Transient>,
    /// Directories arm created for files whose records are gone, to remove once empty
    /// ([`crate::apply::prune_dirs`]): kept here so a run killed before pruning leaves them
    /// to the next run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prune: Vec<PathBuf>,
    /// An `arm --verify` between its writes and its verdict: what each file it changes was
    /// journaled as before (`None`: not armed before). A run killed before its verdict leaves
    /// this, and the next run rolls those files back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifying: Option<Verifying>,
}

/// The state an `arm --verify` rolls back to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verifying {
    /// The arm's process (a dead one's entry is rolled back by the next run).
    pub pid: u32,
    pub before: BTreeMap<String, Option<FileRecord>>,
}

/// A temporary text written to `file`, and the bytes to put back (`None`: remove the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transient {
    pub file: PathBuf,
    pub text: String,
    pub restore: Option<String>,
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
                ..Journal::default()
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

    /// Finish what a run killed mid-way left (call with the lock held, before planning):
    /// a transient text still in a file is replaced by the bytes it stood in for, and the temp
    /// files of dead writers next to journaled files (and in the state dir) are removed.
    /// Returns one line per thing done, for the user.
    pub fn recover(&mut self, state_dir: &Path) -> Result<Vec<String>> {
        let mut done = Vec::new();
        if let Some(t) = self.transient.clone() {
            let cur = std::fs::read(&t.file).ok();
            if cur.as_deref() == Some(t.text.as_bytes()) {
                match &t.restore {
                    Some(text) => fsutil::write_atomic(&t.file, text.as_bytes())?,
                    None => fsutil::remove_file(&t.file)?,
                }
                done.push(format!(
                    "put back `{}` (an interrupted reload left a temporary version)",
                    t.file.display()
                ));
            }
            self.transient = None;
            self.save(state_dir)?;
        }
        let mut dirs: Vec<PathBuf> = self
            .files
            .values()
            .filter_map(|r| r.file.parent().map(Path::to_path_buf))
            .collect();
        dirs.push(state_dir.to_path_buf());
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            for f in fsutil::remove_stale_temp_files(&d) {
                done.push(format!(
                    "removed `{}` (left by an interrupted run)",
                    f.display()
                ));
            }
        }
        Ok(done)
    }
}
