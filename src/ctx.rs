//! What a command that reads or writes system files runs against: the root (`--root`) and the
//! state directory (`--state-dir`: the journal and the lock).

use crate::error::UserError;
use crate::fsutil::{self, Lock, Root};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `--root` and `--state-dir`, checked.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub root: Root,
    pub state_dir: PathBuf,
}

/// The state directory's path under the root when running as root (or with a `--root`).
pub const STATE_DIR: &str = "/var/lib/mirrorctl";

impl Ctx {
    /// `root` must be a directory. `state_dir` defaults to `<root>/var/lib/mirrorctl` as root
    /// or under another root, else the user's XDG state dir.
    pub fn new(root: &Path, state_dir: Option<&Path>) -> Result<Ctx> {
        if !root.is_dir() {
            return Err(
                UserError(format!("--root `{}` is not a directory", root.display())).into(),
            );
        }
        let root = Root::new(root);
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        let state_dir = match state_dir {
            Some(d) => d.to_path_buf(),
            None if euid == 0 || !root.is_real() => root.join(STATE_DIR),
            None => dirs::state_dir()
                .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
                .map(|d| d.join("mirrorctl"))
                .ok_or_else(|| {
                    UserError("cannot find a state directory; pass --state-dir".into())
                })?,
        };
        Ok(Ctx { root, state_dir })
    }

    /// A system path under the root, links followed inside it.
    pub fn resolve(&self, sys_path: &str) -> Result<PathBuf> {
        self.root.resolve(sys_path)
    }

    pub fn is_real_root(&self) -> bool {
        self.root.is_real()
    }

    /// The run lock (`<state>/lock`), waiting up to `timeout` for another run.
    pub fn lock(&self, timeout: Duration) -> Result<Lock> {
        fsutil::Lock::acquire(&self.state_dir, timeout)
    }
}
