//! `--block-upstream`: a marked block in a hosts file mapping the upstream's host names to
//! `0.0.0.0` and `::`, removed again on success, error, panic (RAII) and signals; a block left by
//! a killed run (its pid is dead) is removed by the next `mirrorctl` run.
//!
//! The block is appended at the end of the file. When the file did not end with a newline, one
//! is added before the block and the BEGIN line says so (`eol=added`); when the file did not
//! exist, it says `created`. Removing the block gives back the original bytes exactly.

use crate::fsutil;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

const BEGIN: &str = "# BEGIN mirrorctl verify";
const END: &str = "# END mirrorctl verify";

/// The default hosts file under `--root`.
pub fn default_path(root: &Path) -> PathBuf {
    fsutil::under_root(root, "/etc/hosts")
}

/// The block's text for `hosts`, with the BEGIN line's flags.
fn block(pid: u32, hosts: &[String], flags: &str) -> String {
    let mut s = format!("{BEGIN} pid={pid}{flags}\n");
    for h in hosts {
        s.push_str(&format!("0.0.0.0 {h}\n:: {h}\n"));
    }
    s.push_str(END);
    s.push('\n');
    s
}

/// A block found in a hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub pid: Option<u32>,
    /// The original text (block and added newline removed).
    pub restored: String,
    /// The file did not exist before the block was written.
    pub created: bool,
}

/// Find mirrorctl's block in `text` and compute the text without it.
pub fn find(text: &str) -> Option<Found> {
    let start = if text.starts_with(BEGIN) {
        0
    } else {
        text.find(&format!("\n{BEGIN}"))? + 1
    };
    let line_end = text[start..]
        .find('\n')
        .map(|i| start + i)
        .unwrap_or(text.len());
    let begin_line = &text[start..line_end];
    let end_at = text[start..]
        .find(&format!("\n{END}"))
        .map(|i| start + i + 1 + END.len())
        .unwrap_or(text.len());
    let end_at = if text[end_at..].starts_with('\n') {
        end_at + 1
    } else {
        end_at
    };
    let mut words = begin_line[BEGIN.len()..].split_whitespace();
    let pid = words
        .clone()
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|p| p.parse().ok());
    let eol_added = words.clone().any(|w| w == "eol=added");
    let created = words.any(|w| w == "created");
    let mut before = &text[..start];
    if eol_added && before.ends_with('\n') {
        before = &before[..before.len() - 1];
    }
    Some(Found {
        pid,
        restored: format!("{before}{}", &text[end_at..]),
        created,
    })
}

/// Whether `path` is itself a mount point (a bind-mounted file, as `/etc/hosts` is in a
/// container): such a file cannot be replaced by `rename`, so it is rewritten in place.
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(real) = std::fs::canonicalize(path) else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| Path::new(&unescape_mountinfo(mp)) == real)
    })
}

/// `\040` and friends in mountinfo paths.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|_| c == b'\\')
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match octal {
            Some(v) => {
                out.push(v);
                i += 4;
            }
            None => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Write the hosts file: atomically, or in place when it is a mount point.
fn write_hosts(path: &Path, contents: &[u8]) -> Result<()> {
    if is_mount_point(path) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .with_context(|| format!("opening `{}`", path.display()))?;
        f.write_all(contents)?;
        f.sync_all()?;
        return Ok(());
    }
    fsutil::write_atomic(path, contents)
}

/// Remove the block from `path` (any owner). Returns a note when something was removed.
pub fn remove_block(path: &Path) -> Result<Option<String>> {
    remove_if(path, |_| true)
}

fn remove_if(path: &Path, pred: impl Fn(&Found) -> bool) -> Result<Option<String>> {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading `{}`", path.display())),
    };
    let Some(found) = find(&text) else {
        return Ok(None);
    };
    if !pred(&found) {
        return Ok(None);
    }
    if found.created && found.restored.is_empty() {
        fsutil::remove_file(path)?;
    } else {
        write_hosts(path, found.restored.as_bytes())
            .with_context(|| format!("restoring `{}`", path.display()))?;
    }
    Ok(Some(format!(
        "removed the upstream block of mirrorctl verify (pid {}) from {}",
        found
            .pid
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into()),
        path.display()
    )))
}

/// Remove a block whose process is gone from `<root>/etc/hosts`. Best effort, for every run.
pub fn cleanup_stale(root: &Path) -> Result<Option<String>> {
    cleanup_stale_at(&default_path(root))
}

/// [`cleanup_stale`] on a given file.
pub fn cleanup_stale_at(path: &Path) -> Result<Option<String>> {
    remove_if(path, |f| match f.pid {
        Some(pid) => pid != std::process::id() && !fsutil::pid_alive(pid),
        None => true,
    })
}

/// Whether a block in a hosts file holds for this machine's clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Every upstream name resolves to 0.0.0.0/:: (`Some(false)` also when a proxy reaches the
    /// upstream anyway); `None`: not checkable, the file is not the resolver's `/etc/hosts`.
    pub unreachable: Option<bool>,
    /// Proxies of this process's environment that carry requests to the upstream past the
    /// block (`<name> via <proxy> ($VAR)`).
    pub proxies: Vec<String>,
}

/// How far a block of `names` in `path` holds: the resolver's answers (only checkable for
/// this host's `/etc/hosts`), and the environment proxies, which resolve names themselves.
pub fn assess(path: &Path, names: &[String]) -> Assessment {
    let proxies: Vec<String> = names
        .iter()
        .filter_map(|h| {
            crate::registry::env_proxy_for(&format!("https://{h}/v2/"))
                .map(|(p, var)| format!("{h} via {p} (${var})"))
        })
        .collect();
    let unreachable = if proxies.is_empty() {
        resolves_nowhere(path, names)
    } else {
        Some(false)
    };
    Assessment {
        unreachable,
        proxies,
    }
}

/// Whether every name now resolves to 0.0.0.0/:: — only checkable when the hosts file is this
/// host's `/etc/hosts` (the resolver does not read any other).
fn resolves_nowhere(path: &Path, names: &[String]) -> Option<bool> {
    use std::net::ToSocketAddrs;
    let real = std::fs::canonicalize(path).ok()? == std::fs::canonicalize("/etc/hosts").ok()?;
    if !real {
        return None;
    }
    Some(
        names
            .iter()
            .all(|h| match (h.as_str(), 443).to_socket_addrs() {
                Ok(addrs) => addrs.into_iter().all(|a| a.ip().is_unspecified()),
                Err(_) => true,
            }),
    )
}

/// The installed block; dropping it removes the block.
#[derive(Debug)]
pub struct HostsGuard {
    path: PathBuf,
    active: bool,
}

impl HostsGuard {
    /// Append the block for `hosts` to `path`. Refuses when a live run's block is there
    /// (`cleanup_cmd`: what removes a block, for the message).
    pub fn install(path: &Path, hosts: &[String], cleanup_cmd: &str) -> Result<HostsGuard> {
        if let Some(note) = cleanup_stale_at(path)? {
            crate::diag::note(&note);
        }
        let existing = match std::fs::read(path) {
            Ok(b) => Some(
                String::from_utf8(b)
                    .with_context(|| format!("`{}` is not UTF-8 text", path.display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading `{}`", path.display())),
        };
        if let Some(f) = existing.as_deref().and_then(find) {
            anyhow::bail!(
                "`{}` already holds the upstream block of a running mirrorctl verify (pid {}); wait for it or run `{cleanup_cmd}`",
                path.display(),
                f.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
            );
        }
        let pid = std::process::id();
        let text = match &existing {
            None => block(pid, hosts, " created"),
            Some(t) if t.is_empty() || t.ends_with('\n') => format!("{t}{}", block(pid, hosts, "")),
            Some(t) => format!("{t}\n{}", block(pid, hosts, " eol=added")),
        };
        if let Some(dir) = path.parent() {
            if existing.is_none() && !dir.is_dir() {
                anyhow::bail!(
                    "cannot block the upstream: `{}` does not exist",
                    dir.display()
                );
            }
        }
        write_hosts(path, text.as_bytes())
            .with_context(|| format!("writing the upstream block to `{}`", path.display()))?;
        Ok(HostsGuard {
            path: path.to_path_buf(),
            active: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove the block now. Returns whether the file is back as it was.
    pub fn restore(&mut self) -> Result<bool> {
        if !self.active {
            return Ok(true);
        }
        self.active = false;
        remove_if(&self.path, |f| f.pid == Some(std::process::id()))?;
        Ok(true)
    }
}

impl Drop for HostsGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            crate::diag::error(&format!("could not remove the upstream block: {e:#}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["registry-1.docker.io".into(), "auth.docker.io".into()]
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        for original in [
            Some("127.0.0.1 localhost\n::1 localhost\n"),
            Some("127.0.0.1 localhost"),
            Some(""),
            Some("# only a comment\n\n\n"),
            None,
        ] {
            let p = dir.path().join("hosts");
            let _ = std::fs::remove_file(&p);
            if let Some(o) = original {
                std::fs::write(&p, o).unwrap();
            }
            {
                let g = HostsGuard::install(&p, &hosts(), "mirrorctl verify --cleanup").unwrap();
                let during = std::fs::read_to_string(&p).unwrap();
                assert!(
                    during.contains("0.0.0.0 registry-1.docker.io\n"),
                    "{during}"
                );
                assert!(during.contains(":: auth.docker.io\n"), "{during}");
                assert!(during.starts_with(original.unwrap_or("")));
                assert!(HostsGuard::install(&p, &hosts(), "mirrorctl verify --cleanup").is_err());
                drop(g);
            }
            match original {
                Some(o) => assert_eq!(std::fs::read_to_string(&p).unwrap(), o),
                None => assert!(!p.exists()),
            }
        }
    }

    #[test]
    fn stale_block_is_removed_live_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts");
        let original = "127.0.0.1 localhost\n# tail\n";
        // A dead pid (pid_max is below 2^22 on Linux).
        let dead = 4_194_303 + 1000;
        std::fs::write(&p, format!("{original}{}", block(dead, &hosts(), ""))).unwrap();
        let note = cleanup_stale_at(&p).unwrap().unwrap();
        assert!(note.contains(&dead.to_string()));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), original);
        // A live one (pid 1) stays.
        let live = format!("{original}{}", block(1, &hosts(), ""));
        std::fs::write(&p, &live).unwrap();
        assert_eq!(cleanup_stale_at(&p).unwrap(), None);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), live);
        // Explicit cleanup removes it regardless.
        assert!(remove_block(&p).unwrap().is_some());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), original);
    }

    #[test]
    fn mountinfo_paths_unescape() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/etc/hosts"), "/etc/hosts");
        assert_eq!(unescape_mountinfo("/a\\040"), "/a ");
        assert_eq!(unescape_mountinfo("/x\\"), "/x\\");
        assert!(is_mount_point(Path::new("/")));
    }

    #[test]
    fn block_in_the_middle_keeps_the_rest() {
        let text = format!("a\n{}b\n", block(7, &hosts(), ""));
        let f = find(&text).unwrap();
        assert_eq!(f.restored, "a\nb\n");
        assert_eq!(f.pid, Some(7));
        let text = format!("a\n{}", block(7, &hosts(), " eol=added"));
        assert_eq!(find(&text).unwrap().restored, "a");
    }
}
