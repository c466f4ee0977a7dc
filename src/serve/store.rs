//! The content-addressed store on disk:
//!
//! ```text
//! <cache>/blobs/sha256/<hex>                blob bytes, shared by every repository and upstream
//! <cache>/blobs/sha256/.tmp-<hex>-<pid>-<n> a download in progress (removed at start)
//! <cache>/blobs.log                         the durable record of committed blobs ([`super::ledger`])
//! <cache>/manifests/sha256/<hex>            `<content type>\n<manifest bytes>`
//! <cache>/tags.json                         last known tag → digest, for stale-if-error after restart
//! ```
//!
//! A blob enters `blobs/` only by rename, after its bytes hashed to its digest, and is served
//! from then on. The committer thread then makes it durable, off every client's path: fsync of
//! the file, of its directory, then its `+ <digest> <size>` line in `blobs.log`, fsync'd. Only a
//! blob with that record survives a restart: the index is rebuilt at start from the files whose
//! length is the recorded one (others are deleted, one log line each), and each of them is
//! verified against its digest the first time it is served ([`BlobRead::verified`]).
//!
//! Eviction (LRU by last access) never removes a blob that a response is still reading.

use super::health::Health;
use super::ledger::{self, Ledger};
use super::metrics::Metrics;
use crate::oci::{Algorithm, Digest};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

pub struct Store {
    shared: Arc<Shared>,
    max_size: Option<u64>,
    tmp_seq: AtomicU64,
    committer: Option<Committer>,
}

/// What the committer thread shares with the store.
struct Shared {
    root: PathBuf,
    index: Mutex<Index>,
    /// `None` when the log could not be opened: blobs are served but none survives a restart.
    ledger: Mutex<Option<Ledger>>,
    metrics: Arc<Metrics>,
    health: Health,
}

#[derive(Default)]
struct Index {
    blobs: HashMap<Digest, Entry>,
    total: u64,
    clock: u64,
}

struct Entry {
    size: u64,
    last: u64,
    readers: u32,
    /// Hashed to its digest by this process (downloaded, or read back once since the start).
    verified: bool,
}

struct Committer {
    tx: mpsc::Sender<Job>,
    thread: std::thread::JoinHandle<()>,
}

enum Job {
    /// Make a committed blob durable and record it.
    Durable(Digest, u64),
    /// fsync the log (after `-` records).
    Sync,
    /// Answer once every job before this one is done.
    Flush(mpsc::Sender<()>),
}

/// A committed blob held open for reading: it cannot be evicted while this lives.
pub struct BlobRead {
    shared: Arc<Shared>,
    digest: Digest,
    pub path: PathBuf,
    pub size: u64,
    /// False for a blob found on disk at start and not yet read back whole: its reader must
    /// hash it (and call [`Store::mark_verified`] or [`Store::discard`]).
    pub verified: bool,
}

impl BlobRead {
    pub fn digest(&self) -> &Digest {
        &self.digest
    }
}

/// Read a file whole and hash it (blocking): whether it hashes to `d`.
pub fn hashes_to(path: &Path, d: &Digest) -> io::Result<bool> {
    use std::io::Read;
    let mut f = File::open(path)?;
    let mut v = d.verifier();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf)? {
            0 => break,
            n => v.update(buf.get(..n).unwrap_or_default()),
        }
    }
    Ok(v.finish() == *d)
}

impl Drop for BlobRead {
    fn drop(&mut self) {
        let mut ix = self.shared.index();
        if let Some(e) = ix.blobs.get_mut(&self.digest) {
            e.readers = e.readers.saturating_sub(1);
        }
    }
}

const ALGS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

/// A blob file found at start: (digest, length, modification time).
type Found = (Digest, u64, SystemTime);

impl Store {
    /// Open (create) the cache dir: remove stray temp files, rebuild the index from the blobs
    /// whose length matches their durable record, rewrite the log compact, start the committer.
    pub fn open(root: &Path, max_size: Option<u64>, metrics: Arc<Metrics>) -> Result<Arc<Store>> {
        let found = scan(root)?;
        let health = Health::new(metrics.clone());
        let records = ledger::read(root).unwrap_or_else(|e| {
            crate::diag::warn(&format!(
                "cannot read the cache's `{}`: {e}; keeping its blobs, each verified when first served",
                ledger::FILE
            ));
            None
        });
        let kept = keep_intact(root, found, records.as_ref(), &metrics);
        let mut ix = Index::default();
        for (d, size, _) in &kept {
            ix.clock += 1;
            ix.total += size;
            let e = Entry {
                size: *size,
                last: ix.clock,
                readers: 0,
                verified: false,
            };
            ix.blobs.insert(d.clone(), e);
        }
        let entries: Vec<(Digest, u64)> = kept.into_iter().map(|(d, n, _)| (d, n)).collect();
        let ledger = Ledger::rewrite(root, &entries)
            .or_else(|e| {
                health.failed(&format!("`{}`", ledger::FILE), &e);
                Ledger::append_to(root)
            })
            .ok();
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            index: Mutex::new(ix),
            ledger: Mutex::new(ledger),
            metrics,
            health,
        });
        shared.gauges(&shared.index());
        let (tx, rx) = mpsc::channel();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cache-commit".into())
            .spawn(move || run_committer(&s, &rx))
            .context("cannot start the cache's commit thread")?;
        Ok(Arc::new(Store {
            shared,
            max_size,
            tmp_seq: AtomicU64::new(0),
            committer: Some(Committer { tx, thread }),
        }))
    }

    /// Remove this process's download temp files (at shutdown: nothing partial stays behind).
    pub fn remove_own_temp_files(&self) {
        let mine = format!("-{}-", std::process::id());
        for kind in ["blobs", "manifests"] {
            for alg in ALGS {
                let dir = self.shared.root.join(kind).join(alg.as_str());
                for ent in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let name = ent.file_name().to_string_lossy().into_owned();
                    if name.starts_with(".tmp-") && name.contains(&mine) {
                        let _ = std::fs::remove_file(ent.path());
                    }
                }
            }
        }
    }

    /// Wait (up to `timeout`) until every committed blob so far is durable; false on timeout.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(c) = &self.committer else {
            return true;
        };
        let (tx, rx) = mpsc::channel();
        c.tx.send(Job::Flush(tx)).is_ok() && rx.recv_timeout(timeout).is_ok()
    }

    fn send(&self, job: Job) {
        if let Some(c) = &self.committer {
            let _ = c.tx.send(job);
        }
    }

    fn manifest_path(&self, d: &Digest) -> PathBuf {
        self.shared
            .root
            .join("manifests")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    /// A committed blob, held against eviction while the returned value lives.
    pub fn lookup(&self, d: &Digest) -> Option<BlobRead> {
        let mut ix = self.shared.index();
        ix.clock += 1;
        let now = ix.clock;
        let e = ix.blobs.get_mut(d)?;
        e.last = now;
        e.readers += 1;
        let (size, verified) = (e.size, e.verified);
        Some(BlobRead {
            shared: self.shared.clone(),
            digest: d.clone(),
            path: self.shared.blob_path(d),
            size,
            verified,
        })
    }

    /// Whether a blob is committed (no access recorded).
    #[cfg(test)]
    pub fn contains(&self, d: &Digest) -> bool {
        self.shared.index().blobs.contains_key(d)
    }

    /// A new temp file next to where `d` will live (same file system, so rename is atomic).
    pub fn temp_file(&self, d: &Digest) -> io::Result<(PathBuf, File)> {
        let n = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let path = self
            .shared
            .root
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(format!(".tmp-{}-{}-{n}", d.hex(), std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((path, f))
    }

    /// Move a verified temp file into place and index it (it is served from now on), queue it to
    /// be made durable, then evict if over `--max-size`.
    pub fn commit(&self, tmp: &Path, d: &Digest, size: u64) -> io::Result<()> {
        std::fs::rename(tmp, self.shared.blob_path(d))?;
        {
            let mut ix = self.shared.index();
            ix.clock += 1;
            let e = Entry {
                size,
                last: ix.clock,
                readers: 0,
                verified: true,
            };
            if ix.blobs.insert(d.clone(), e).is_none() {
                ix.total += size;
            }
            self.shared.gauges(&ix);
        }
        self.send(Job::Durable(d.clone(), size));
        self.evict();
        Ok(())
    }

    /// Remove least recently used blobs that nobody reads until the total fits `--max-size`.
    pub fn evict(&self) {
        if let Some(max) = self.max_size {
            self.evict_to(max);
        }
    }

    /// The disk is full: where `--max-size` allows eviction, free about `need` bytes of the
    /// least recently used blobs, so that the next download can be stored.
    pub fn make_room(&self, need: u64) {
        if self.max_size.is_some() {
            let total = self.shared.index().total;
            self.evict_to(total.saturating_sub(need.max(1)));
        }
    }

    fn evict_to(&self, max: u64) {
        let mut ix = self.shared.index();
        let mut evicted = false;
        while ix.total > max {
            let victim = ix
                .blobs
                .iter()
                .filter(|(_, e)| e.readers == 0)
                .min_by_key(|(_, e)| e.last)
                .map(|(d, e)| (d.clone(), e.size));
            let Some((d, size)) = victim else { break };
            let path = self.shared.blob_path(&d);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    crate::diag::warn(&format!("cannot evict `{}`: {e}", path.display()));
                    break;
                }
            }
            ix.blobs.remove(&d);
            ix.total -= size;
            self.shared.record_removal(&d);
            self.shared
                .metrics
                .evictions
                .fetch_add(1, Ordering::Relaxed);
            evicted = true;
        }
        self.shared.gauges(&ix);
        drop(ix);
        if evicted {
            self.send(Job::Sync);
        }
    }

    /// A blob read back whole hashed to its digest.
    pub fn mark_verified(&self, d: &Digest) {
        if let Some(e) = self.shared.index().blobs.get_mut(d) {
            e.verified = true;
        }
    }

    /// A cached blob turned out corrupt (`why`): delete it, so the next request fetches again.
    pub fn discard(&self, d: &Digest, why: &str) {
        let mut ix = self.shared.index();
        let Some(e) = ix.blobs.remove(d) else { return };
        ix.total -= e.size;
        let _ = std::fs::remove_file(self.shared.blob_path(d));
        self.shared.record_removal(d);
        self.shared.gauges(&ix);
        drop(ix);
        self.shared
            .metrics
            .corrupt_blobs
            .fetch_add(1, Ordering::Relaxed);
        crate::diag::error(&format!(
            "cached blob {d} {why}: deleted, the next request fetches it again"
        ));
        self.send(Job::Sync);
    }

    /// A write for `what` failed: counted, and logged once per cause.
    pub fn write_failed(&self, what: &str, e: &io::Error) {
        self.shared.health.failed(what, e);
    }

    /// A cached manifest: (content type, bytes), verified against its digest on read.
    pub fn manifest(&self, d: &Digest) -> Option<(String, bytes::Bytes)> {
        let raw = std::fs::read(self.manifest_path(d)).ok()?;
        let nl = raw.iter().position(|&b| b == b'\n')?;
        let ct = String::from_utf8(raw.get(..nl)?.to_vec()).ok()?;
        let body = bytes::Bytes::from(raw).slice(nl + 1..);
        (d.of_same_algorithm(&body) == *d).then_some((ct, body))
    }

    /// Store a manifest whose bytes were checked against `d`. A failure is already counted and
    /// logged (once per cause) when this returns it: the manifest can be served all the same.
    pub fn put_manifest(&self, d: &Digest, content_type: &str, body: &[u8]) -> io::Result<()> {
        let dest = self.manifest_path(d);
        let n = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = dest.with_file_name(format!(".tmp-{}-{}-{n}", d.hex(), std::process::id()));
        let mut data = Vec::with_capacity(content_type.len() + 1 + body.len());
        data.extend_from_slice(content_type.as_bytes());
        data.push(b'\n');
        data.extend_from_slice(body);
        let r = std::fs::write(&tmp, data).and_then(|()| std::fs::rename(&tmp, &dest));
        if let Err(e) = &r {
            let _ = std::fs::remove_file(&tmp);
            self.write_failed(&format!("manifest {d}"), e);
        }
        r
    }

    pub fn tags_path(&self) -> PathBuf {
        self.shared.root.join("tags.json")
    }
}

impl Drop for Store {
    /// Let the committer finish what was queued (quick: a few fsyncs), then stop it.
    fn drop(&mut self) {
        if let Some(c) = self.committer.take() {
            drop(c.tx);
            let _ = c.thread.join();
        }
    }
}

impl Shared {
    fn index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ledger(&self) -> MutexGuard<'_, Option<Ledger>> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    fn gauges(&self, ix: &Index) {
        self.metrics.cache_bytes.store(ix.total, Ordering::Relaxed);
        self.metrics
            .cache_blobs
            .store(ix.blobs.len() as u64, Ordering::Relaxed);
    }

    /// `- <digest>` in the log (called with the index locked, so records follow the index).
    fn record_removal(&self, d: &Digest) {
        if let Some(l) = self.ledger().as_mut() {
            if let Err(e) = l.remove(d) {
                self.health.failed(&format!("`{}`", ledger::FILE), &e);
            }
        }
    }

    /// fsync a committed blob's bytes; false when it is gone (evicted) or the fsync failed (then
    /// it is dropped: bytes the disk refused are not served again).
    fn sync_blob(&self, d: &Digest) -> bool {
        let path = self.blob_path(d);
        match File::open(&path).and_then(|f| f.sync_data()) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                self.health.failed(&format!("blob {d}"), &e);
                let mut ix = self.index();
                if let Some(old) = ix.blobs.remove(d) {
                    ix.total -= old.size;
                    let _ = std::fs::remove_file(&path);
                    self.gauges(&ix);
                }
                false
            }
        }
    }

    /// fsync the directories of `blobs`, then append their `+` records (those still indexed).
    fn record(&self, blobs: &[(Digest, u64)]) -> bool {
        let mut algs: Vec<Algorithm> = blobs.iter().map(|(d, _)| d.algorithm()).collect();
        algs.dedup();
        for alg in algs {
            if let Err(e) = ledger::sync_dir(&self.root.join("blobs").join(alg.as_str())) {
                self.health.failed("the blob directory", &e);
                return false;
            }
        }
        let ix = self.index();
        let mut ledger = self.ledger();
        let Some(l) = ledger.as_mut() else {
            return false;
        };
        for (d, n) in blobs.iter().filter(|(d, _)| ix.blobs.contains_key(d)) {
            if let Err(e) = l.add(d, *n) {
                self.health.failed(&format!("`{}`", ledger::FILE), &e);
                return false;
            }
        }
        true
    }

    fn sync_ledger(&self) {
        let syncer = self.ledger().as_ref().map(Ledger::syncer);
        if let Some(Err(e)) = syncer.map(|f| f.and_then(|f| f.sync_data())) {
            self.health.failed(&format!("`{}`", ledger::FILE), &e);
        }
    }
}

/// The committer: batches of jobs, one log fsync per batch.
fn run_committer(shared: &Shared, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut durable = Vec::new();
        let mut flushes = Vec::new();
        let mut sync = false;
        for job in std::iter::once(first).chain(rx.try_iter()) {
            match job {
                Job::Durable(d, n) if shared.sync_blob(&d) => durable.push((d, n)),
                Job::Durable(..) => {}
                Job::Sync => sync = true,
                Job::Flush(tx) => flushes.push(tx),
            }
        }
        if !durable.is_empty() && shared.record(&durable) {
            sync = true;
        }
        if sync {
            shared.sync_ledger();
        }
        for tx in flushes {
            let _ = tx.send(());
        }
    }
}

/// Create the cache dirs, remove stray temp files, list the blob files.
fn scan(root: &Path) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    for kind in ["blobs", "manifests"] {
        for alg in ALGS {
            let dir = root.join(kind).join(alg.as_str());
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create cache dir `{}`", dir.display()))?;
            for ent in std::fs::read_dir(&dir)
                .with_context(|| format!("cannot read `{}`", dir.display()))?
            {
                let ent = ent?;
                let name = ent.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp-") {
                    let _ = std::fs::remove_file(ent.path());
                    continue;
                }
                let Ok(d) = format!("{}:{name}", alg.as_str()).parse::<Digest>() else {
                    continue;
                };
                let md = ent.metadata()?;
                if kind == "blobs" && md.is_file() {
                    let t = md.modified().unwrap_or(std::time::UNIX_EPOCH);
                    found.push((d, md.len(), t));
                }
            }
        }
    }
    // Oldest modification first, so restart keeps a sensible LRU order.
    found.sort_by_key(|(_, _, t)| *t);
    Ok(found)
}

/// The blobs to keep: with a log, those whose last record is `+` with their length (the others
/// are deleted, one line each); without one (a cache from before it), all.
fn keep_intact(
    root: &Path,
    found: Vec<Found>,
    records: Option<&ledger::Records>,
    metrics: &Metrics,
) -> Vec<Found> {
    let Some(records) = records else {
        if !found.is_empty() {
            crate::diag::note(&format!(
                "cache `{}` has no `{}` (written by an older mirrorctl): keeping its {} blobs, each verified against its digest when first served",
                root.display(),
                ledger::FILE,
                found.len()
            ));
        }
        return found;
    };
    let mut kept = Vec::with_capacity(found.len());
    for (d, len, t) in found {
        let why = match records.get(&d) {
            Some(Some(n)) if *n == len => {
                kept.push((d, len, t));
                continue;
            }
            Some(Some(n)) => format!("is {len} bytes on disk but was stored with {n}"),
            _ => "has no durable record (it was being stored when the cache stopped)".into(),
        };
        let path = root
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(d.hex());
        let _ = std::fs::remove_file(path);
        metrics.corrupt_blobs.fetch_add(1, Ordering::Relaxed);
        crate::diag::warn(&format!(
            "cached blob {d} {why}: deleted, the next request fetches it again"
        ));
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn commit_index_restart_and_lru() {
        let t = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let s = Store::open(t.path(), Some(10), m.clone()).unwrap();
        let put = |data: &[u8]| {
            let d = Digest::sha256_of(data);
            let (p, mut f) = s.temp_file(&d).unwrap();
            f.write_all(data).unwrap();
            s.commit(&p, &d, data.len() as u64).unwrap();
            d
        };
        let a = put(b"aaaa");
        let b = put(b"bbbb");
        // Touch a, hold b open: adding c (4 bytes, total 12 > 10) must evict... nobody but a is
        // free, and a was used last, yet b is being read, so a goes.
        let _ra = s.lookup(&a).unwrap();
        drop(_ra);
        let rb = s.lookup(&b).unwrap();
        let c = put(b"cccc");
        assert!(!s.contains(&a), "a evicted");
        assert!(s.contains(&b) && s.contains(&c));
        assert_eq!(std::fs::read(&rb.path).unwrap(), b"bbbb");
        assert_eq!(m.evictions.load(Ordering::Relaxed), 1);
        drop(rb);
        // A stray temp file is removed and the index rebuilt on restart.
        let (stray, _) = s.temp_file(&a).unwrap();
        drop(s);
        let s2 = Store::open(t.path(), None, m).unwrap();
        assert!(!stray.exists());
        assert!(s2.contains(&b) && s2.contains(&c) && !s2.contains(&a));
        assert_eq!(s2.lookup(&c).unwrap().size, 4);
    }

    #[test]
    fn restart_keeps_only_blobs_of_their_recorded_size() {
        let t = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let s = Store::open(t.path(), None, m.clone()).unwrap();
        let put = |data: &[u8]| {
            let d = Digest::sha256_of(data);
            let (p, mut f) = s.temp_file(&d).unwrap();
            f.write_all(data).unwrap();
            s.commit(&p, &d, data.len() as u64).unwrap();
            d
        };
        let (whole, torn, bitrot) = (put(b"whole"), put(b"torn bytes"), put(b"rot"));
        assert!(s.flush(Duration::from_secs(10)));
        assert!(s.lookup(&whole).unwrap().verified, "downloaded: verified");
        let path = |d: &Digest| s.shared.blob_path(d);
        std::fs::write(path(&torn), b"torn").unwrap();
        std::fs::write(path(&bitrot), b"ROT").unwrap();
        // A blob renamed into place whose record never made it (a crash before the commit).
        let orphan = Digest::sha256_of(b"orphan");
        std::fs::write(path(&orphan), b"orphan").unwrap();
        let (paths, orphan_path) = ([path(&torn)], path(&orphan));
        drop(s);
        let s = Store::open(t.path(), None, m.clone()).unwrap();
        assert!(s.contains(&whole) && s.contains(&bitrot));
        assert!(
            !s.contains(&torn) && !paths[0].exists(),
            "wrong length: deleted"
        );
        assert!(
            !s.contains(&orphan) && !orphan_path.exists(),
            "no record: deleted"
        );
        assert_eq!(m.corrupt_blobs.load(Ordering::Relaxed), 2);
        let r = s.lookup(&bitrot).unwrap();
        assert!(!r.verified, "same length: kept, verified on first serve");
        drop(r);
        s.discard(&bitrot, "does not hash to its digest");
        assert!(!s.contains(&bitrot));
        drop(s);
        let s = Store::open(t.path(), None, m).unwrap();
        assert!(s.contains(&whole) && !s.contains(&bitrot));
        let text = std::fs::read_to_string(t.path().join(ledger::FILE)).unwrap();
        assert_eq!(text, format!("+ {whole} 5\n"), "compacted at open");
    }

    #[test]
    fn a_cache_without_a_log_is_adopted_unverified() {
        let t = tempfile::tempdir().unwrap();
        let d = Digest::sha256_of(b"old");
        let dir = t.path().join("blobs/sha256");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(d.hex()), b"old").unwrap();
        let s = Store::open(t.path(), None, Arc::new(Metrics::default())).unwrap();
        assert!(!s.lookup(&d).unwrap().verified);
        assert!(t.path().join(ledger::FILE).exists());
    }

    #[test]
    fn manifests_keep_type_and_reject_corruption() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path(), None, Arc::new(Metrics::default())).unwrap();
        let body = br#"{"schemaVersion":2}"#;
        let d = Digest::sha256_of(body);
        s.put_manifest(&d, "application/vnd.oci.image.manifest.v1+json", body)
            .unwrap();
        let (ct, b) = s.manifest(&d).unwrap();
        assert_eq!(ct, "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(&b[..], body);
        std::fs::write(s.manifest_path(&d), "x\n{}").unwrap();
        assert!(s.manifest(&d).is_none());
    }
}
