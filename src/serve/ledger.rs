//! `<cache>/blobs.log`, the durable record of the blob store: one line per event,
//!
//! ```text
//! + sha256:<hex> <size>   the blob's bytes and its directory entry are on disk (fsync'd)
//! - sha256:<hex>          evicted, or found corrupt and deleted
//! ```
//!
//! Appended with `O_APPEND` (one `write` per line) and fsync'd after each batch of `+` lines;
//! read, and rewritten with only the blobs kept, at start. A blob file is kept at start only when
//! the last record of its digest is a `+` with the file's exact length: a file that a crash cut
//! short, or that never got its `+` (its bytes may not have reached the disk), is deleted.
//!
//! Why a log and not, say, one size file per blob or an xattr: one sequential file, one fsync for
//! any number of blobs committed together, nothing to scan but one file, and a torn last line
//! (a crash in the middle of an append) is simply not a record.

use crate::oci::Digest;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

pub const FILE: &str = "blobs.log";

/// Digest → its last record: `Some(size)` for `+`, `None` for `-`.
pub type Records = HashMap<Digest, Option<u64>>;

/// The records of the log in `root`; `Ok(None)` when there is no log (a new cache, or one
/// written by a mirrorctl from before the log).
pub fn read(root: &Path) -> io::Result<Option<Records>> {
    match std::fs::read(root.join(FILE)) {
        Ok(b) => Ok(Some(parse(&String::from_utf8_lossy(&b)))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn parse(text: &str) -> Records {
    let mut out = Records::new();
    // Only whole lines: a line without its newline was cut short by a crash.
    for line in text.split_inclusive('\n') {
        let Some(line) = line.strip_suffix('\n') else {
            break;
        };
        let mut f = line.split(' ');
        match (f.next(), f.next().and_then(|d| d.parse().ok()), f.next()) {
            (Some("+"), Some(d), Some(n)) => {
                if let Ok(n) = n.parse() {
                    out.insert(d, Some(n));
                }
            }
            (Some("-"), Some(d), None) => {
                out.insert(d, None);
            }
            _ => {}
        }
    }
    out
}

/// The open log, appended to.
pub struct Ledger {
    file: File,
}

impl Ledger {
    /// Write the log anew holding `entries` (fsync'd, renamed over the old one, the directory
    /// fsync'd) and open it for appending.
    pub fn rewrite(root: &Path, entries: &[(Digest, u64)]) -> io::Result<Ledger> {
        let tmp = root.join(format!(".{FILE}.tmp-{}", std::process::id()));
        let mut text = String::with_capacity(entries.len() * 84);
        for (d, n) in entries {
            text.push_str(&format!("+ {d} {n}\n"));
        }
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, root.join(FILE))) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(root)?;
        Ledger::append_to(root)
    }

    /// Open the log in `root` for appending (created when missing).
    pub fn append_to(root: &Path) -> io::Result<Ledger> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(root.join(FILE))?;
        Ok(Ledger { file })
    }

    pub fn add(&mut self, d: &Digest, size: u64) -> io::Result<()> {
        self.file.write_all(format!("+ {d} {size}\n").as_bytes())
    }

    pub fn remove(&mut self, d: &Digest) -> io::Result<()> {
        self.file.write_all(format!("- {d}\n").as_bytes())
    }

    /// A second handle on the log, to fsync it without holding whatever guards this one.
    pub fn syncer(&self) -> io::Result<File> {
        self.file.try_clone()
    }
}

/// fsync a directory (so the names created or renamed in it are on disk).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_record_wins_and_torn_lines_are_ignored() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let text = format!("+ {a} 1\n+ {b} 1\n- {a}\nnonsense\n+ {b} 7\n+ {a} 12");
        let r = parse(&text);
        assert_eq!(r.get(&a), Some(&None), "the torn `+ a 12` is no record");
        assert_eq!(r.get(&b), Some(&Some(7)));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn rewrite_then_append() {
        let t = tempfile::tempdir().unwrap();
        assert!(read(t.path()).unwrap().is_none());
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let mut l = Ledger::rewrite(t.path(), &[(a.clone(), 1)]).unwrap();
        l.add(&b, 1).unwrap();
        l.remove(&a).unwrap();
        l.syncer().unwrap().sync_data().unwrap();
        let r = read(t.path()).unwrap().unwrap();
        assert_eq!(r.get(&a), Some(&None));
        assert_eq!(r.get(&b), Some(&Some(1)));
        Ledger::rewrite(t.path(), &[(b.clone(), 1)]).unwrap();
        assert_eq!(read(t.path()).unwrap().unwrap().len(), 1);
    }
}
