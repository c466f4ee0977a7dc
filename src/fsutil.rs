//! File-system helpers, every one naming the path in its errors: system paths resolved under
//! `--root` (symlinks followed, absolute link targets kept inside the root), atomic replace that
//! keeps mode and owner, directory creation that remembers what it created, and the run lock.

use anyhow::{bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// `root` + a system path such as `/etc/docker/daemon.json`, without following links.
pub fn under_root(root: &Path, sys_path: &str) -> PathBuf {
    root.join(sys_path.trim_start_matches('/'))
}

/// The tree every system path is taken from (`--root`, `/` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root(dir.into())
    }

    /// The real root of this machine.
    pub fn system() -> Root {
        Root(PathBuf::from("/"))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Whether this is the machine's own `/` (then running daemons, systemd and environment
    /// variables such as `DOCKER_HOST` describe it).
    pub fn is_real(&self) -> bool {
        self.0 == Path::new("/")
    }

    /// A system path under the root, links not followed (for paths only read, or reported).
    pub fn join(&self, sys_path: &str) -> PathBuf {
        under_root(&self.0, sys_path)
    }

    /// A system path under the root with every link followed inside it ([`resolve_in_root`]):
    /// the file that is really read or written.
    pub fn resolve(&self, sys_path: &str) -> Result<PathBuf> {
        resolve_in_root(&self.0, sys_path)
    }

    /// Whether a system path exists under the root (links followed inside it).
    pub fn exists(&self, sys_path: &str) -> bool {
        self.resolve(sys_path).is_ok_and(|p| p.exists())
    }
}

/// Resolve a system path under `root` the way a chroot would: every symlink on the way is
/// followed, and an absolute link target is taken relative to `root`, so a link never leads out
/// of the root. Components that do not exist yet are appended as they are.
pub fn resolve_in_root(root: &Path, sys_path: &str) -> Result<PathBuf> {
    let mut pending: Vec<String> = components(sys_path);
    pending.reverse();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = join(root, &resolved).join(&c);
        match fs::symlink_metadata(&candidate) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    bail!(
                        "too many levels of symbolic links at `{}`",
                        candidate.display()
                    );
                }
                let target = fs::read_link(&candidate)
                    .with_context(|| format!("failed to read link `{}`", candidate.display()))?;
                let t = target.to_string_lossy().to_string();
                if t.starts_with('/') {
                    resolved.clear();
                }
                let mut more = components(&t);
                more.reverse();
                pending.extend(more);
            }
            _ => resolved.push(c),
        }
    }
    Ok(join(root, &resolved))
}

fn components(p: &str) -> Vec<String> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().to_string()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in parts {
        p.push(part);
    }
    p
}

/// Read a file as UTF-8 text; `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(s) => Ok(Some(s)),
            Err(e) => Err(crate::error::PlanError::whole(format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
            .in_file(path)
            .into()),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("failed to read `{}`", path.display())),
    }
}

/// The directories of `dir` that do not exist yet, outermost first.
pub fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        // `""` is the parent of a relative path's first component: the current directory.
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    missing.reverse();
    missing
}

/// Create the missing directories of `dir` with mode 0755; returns those created, outermost first.
pub fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let missing = missing_dirs(dir);
    for d in &missing {
        match fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to create `{}`", d.display())),
        }
        fs::set_permissions(d, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("failed to set the mode of `{}`", d.display()))?;
    }
    Ok(missing)
}

/// Replace `path` atomically with `contents`: a temp file in the same directory, fsync, rename,
/// fsync of the directory. An existing file's mode and owner are kept; a new file gets 0644.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("`{}` has no parent directory", path.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("`{}` has no file name", path.display()))?
        .to_string_lossy();
    let existing = fs::metadata(path).ok();
    let mode = existing
        .as_ref()
        .map(|m| m.mode() & 0o7777)
        .unwrap_or(0o644);
    let tmp = dir.join(temp_name(&name, std::process::id()));
    let result = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("failed to create temp file `{}`", tmp.display()))?;
        f.write_all(contents)
            .with_context(|| format!("failed to write `{}`", tmp.display()))?;
        if let Some(md) = &existing {
            // SAFETY: fchown on a file descriptor we own; failure is reported, not ignored.
            let rc = unsafe { libc::fchown(f.as_raw_fd(), md.uid(), md.gid()) };
            if rc != 0 {
                let err = std::io::Error::last_os_error();
                // Only root may give a file away; an unprivileged run keeps its own ownership.
                if md.uid() != unsafe { libc::geteuid() } || err.raw_os_error() != Some(libc::EPERM)
                {
                    return Err(err).with_context(|| {
                        format!("failed to keep the owner of `{}`", path.display())
                    });
                }
            }
        }
        f.set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("failed to set the mode of `{}`", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("failed to fsync `{}`", tmp.display()))?;
        fs::rename(&tmp, path).with_context(|| {
            format!(
                "failed to rename `{}` to `{}`",
                tmp.display(),
                path.display()
            )
        })?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The temp file [`write_atomic`] writes next to `name`: `.<name>.mirrorctl-<pid>.tmp`.
fn temp_name(name: &str, pid: u32) -> String {
    format!(".{name}.mirrorctl-{pid}.tmp")
}

/// The pid in a [`write_atomic`] temp file name, if `file_name` is one.
fn temp_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, pid) = rest.rsplit_once(".mirrorctl-")?;
    pid.parse().ok()
}

/// Remove the [`write_atomic`] temp files in `dir` whose writer is gone (a run killed between
/// creating its temp file and the rename). Returns the files removed.
pub fn remove_stale_temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return removed;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_owner(&name) else {
            continue;
        };
        if pid != std::process::id() && !pid_alive(pid) && fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

/// Whether a process with this pid exists (signal 0).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(p, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Remove a file and fsync its directory; a missing file is fine.
pub fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("failed to remove `{}`", path.display())),
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Remove the given directories, innermost first, as long as they are empty.
pub fn remove_empty_dirs(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        if fs::remove_dir(d).is_err() {
            break;
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).with_context(|| format!("failed to open `{}`", dir.display()))?;
    d.sync_all()
        .with_context(|| format!("failed to fsync `{}`", dir.display()))
}

/// Modification time and size, to prove a file was not rewritten.
pub fn stamp(path: &Path) -> Option<(i64, i64, u64)> {
    fs::metadata(path)
        .ok()
        .map(|m| (m.mtime(), m.mtime_nsec(), m.size()))
}

/// An exclusive advisory lock on `<state>/lock`, held until dropped. Another run waits up to
/// `timeout`, saying so, then fails with the holder's pid.
pub struct Lock {
    _file: File,
}

impl Lock {
    pub fn acquire(state_dir: &Path, timeout: Duration) -> Result<Lock> {
        let timeout = timeout.min(Duration::from_secs(366 * 24 * 3600));
        create_dirs(state_dir)?;
        let path = state_dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .with_context(|| format!("failed to open lock file `{}`", path.display()))?;
        let start = Instant::now();
        let mut told = false;
        loop {
            // SAFETY: flock on a descriptor we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(err).with_context(|| format!("failed to lock `{}`", path.display()));
            }
            let holder = fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            if start.elapsed() >= timeout {
                bail!(
                    "another mirrorctl run (pid {}) holds `{}`; waited {} s. Retry when it is done, or raise --lock-timeout",
                    if holder.is_empty() { "?" } else { holder },
                    path.display(),
                    timeout.as_secs()
                );
            }
            if !told {
                crate::diag::note(&format!(
                    "waiting for another mirrorctl run (pid {}) to release `{}`…",
                    if holder.is_empty() { "?" } else { holder },
                    path.display()
                ));
                told = true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        file.set_len(0).ok();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(Lock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("etc/docker")).unwrap();
        fs::create_dir_all(root.join("srv/conf")).unwrap();
        symlink("/srv/conf/daemon.json", root.join("etc/docker/daemon.json")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/etc/docker/daemon.json").unwrap(),
            root.join("srv/conf/daemon.json")
        );
        symlink("../srv/conf", root.join("etc/buildkit")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/etc/buildkit/buildkitd.toml").unwrap(),
            root.join("srv/conf/buildkitd.toml")
        );
        symlink("/../../../../etc/passwd", root.join("etc/escape")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/etc/escape").unwrap(),
            root.join("etc/passwd")
        );
        symlink("loop", root.join("etc/loop")).unwrap();
        assert!(resolve_in_root(root, "/etc/loop").is_err());
    }

    #[test]
    fn atomic_write_keeps_mode() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        fs::write(&p, "old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o640);
        let q = t.path().join("g");
        write_atomic(&q, b"x").unwrap();
        assert_eq!(fs::metadata(&q).unwrap().mode() & 0o777, 0o644);
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            2,
            "no temp file left"
        );
    }

    #[test]
    fn stale_temp_files_of_dead_writers_are_removed() {
        let t = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22 on Linux: this writer is gone.
        let dead = t.path().join(temp_name("daemon.json", 4_194_304 + 7));
        let mine = t.path().join(temp_name("daemon.json", std::process::id()));
        let live = t.path().join(temp_name("x.toml", 1));
        let other = t.path().join(".daemon.json.swp");
        for f in [&dead, &mine, &live, &other] {
            fs::write(f, "x").unwrap();
        }
        assert_eq!(remove_stale_temp_files(t.path()), vec![dead.clone()]);
        assert!(!dead.exists() && mine.exists() && live.exists() && other.exists());
        assert_eq!(temp_owner(".a.b.mirrorctl-12.tmp"), Some(12));
        assert_eq!(temp_owner("a.mirrorctl-12.tmp"), None);
    }

    #[test]
    fn creates_and_removes_dirs() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b/c");
        let made = create_dirs(&d).unwrap();
        assert_eq!(
            made,
            vec![t.path().join("a"), t.path().join("a/b"), d.clone()]
        );
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o755);
        remove_empty_dirs(&made);
        assert!(!t.path().join("a").exists());
    }
}
