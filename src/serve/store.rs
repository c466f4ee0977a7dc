//! The content-addressed store on disk:
//!
//! ```text
//! <cache>/blobs/sha256/<hex>          blob bytes, shared by every repository and upstream
//! <cache>/blobs/sha256/.tmp-<hex>-<n> a download in progress (removed at start)
//! <cache>/manifests/sha256/<hex>      `<content type>\n<manifest bytes>`
//! <cache>/tags.json                   last known tag → digest, for stale-if-error after restart
//! ```
//!
//! A blob enters `blobs/` only by rename, after its bytes hashed to its digest. The in-memory
//! index (size, last access, readers) is rebuilt from the directory at start. Eviction (LRU by
//! last access) never removes a blob that a response is still reading.

use super::metrics::Metrics;
use crate::oci::{Algorithm, Digest};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub struct Store {
    root: PathBuf,
    max_size: Option<u64>,
    index: Mutex<Index>,
    tmp_seq: AtomicU64,
    metrics: Arc<Metrics>,
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
}

/// A committed blob held open for reading: it cannot be evicted while this lives.
pub struct BlobRead {
    store: Arc<Store>,
    digest: Digest,
    pub path: PathBuf,
    pub size: u64,
}

impl Drop for BlobRead {
    fn drop(&mut self) {
        let mut ix = self.store.index();
        if let Some(e) = ix.blobs.get_mut(&self.digest) {
            e.readers = e.readers.saturating_sub(1);
        }
    }
}

const ALGS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

impl Store {
    fn index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Open (create) the cache dir: remove stray temp files, rebuild the index from disk.
    pub fn open(root: &Path, max_size: Option<u64>, metrics: Arc<Metrics>) -> Result<Arc<Store>> {
        let found = scan(root)?;
        let mut ix = Index::default();
        for (d, size, _) in found {
            ix.clock += 1;
            ix.total += size;
            let last = ix.clock;
            ix.blobs.insert(
                d,
                Entry {
                    size,
                    last,
                    readers: 0,
                },
            );
        }
        metrics.cache_bytes.store(ix.total, Ordering::Relaxed);
        metrics
            .cache_blobs
            .store(ix.blobs.len() as u64, Ordering::Relaxed);
        Ok(Arc::new(Store {
            root: root.to_path_buf(),
            max_size,
            index: Mutex::new(ix),
            tmp_seq: AtomicU64::new(0),
            metrics,
        }))
    }

    /// Remove this process's download temp files (at shutdown: nothing partial stays behind).
    pub fn remove_own_temp_files(&self) {
        let mine = format!("-{}-", std::process::id());
        for kind in ["blobs", "manifests"] {
            for alg in ALGS {
                let dir = self.root.join(kind).join(alg.as_str());
                for ent in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let name = ent.file_name().to_string_lossy().into_owned();
                    if name.starts_with(".tmp-") && name.contains(&mine) {
                        let _ = std::fs::remove_file(ent.path());
                    }
                }
            }
        }
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    fn manifest_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("manifests")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    /// A committed blob, held against eviction while the returned value lives.
    pub fn lookup(self: &Arc<Self>, d: &Digest) -> Option<BlobRead> {
        let mut ix = self.index();
        ix.clock += 1;
        let now = ix.clock;
        let e = ix.blobs.get_mut(d)?;
        e.last = now;
        e.readers += 1;
        Some(BlobRead {
            store: self.clone(),
            digest: d.clone(),
            path: self.blob_path(d),
            size: e.size,
        })
    }

    /// Whether a blob is committed (no access recorded).
    #[cfg(test)]
    pub fn contains(&self, d: &Digest) -> bool {
        self.index().blobs.contains_key(d)
    }

    /// A new temp file next to where `d` will live (same file system, so rename is atomic).
    pub fn temp_file(&self, d: &Digest) -> Result<(PathBuf, File)> {
        let n = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let path = self
            .root
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(format!(".tmp-{}-{}-{n}", d.hex(), std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("cannot create `{}`", path.display()))?;
        Ok((path, f))
    }

    /// Move a verified temp file into place and index it; then evict if over `--max-size`.
    pub fn commit(&self, tmp: &Path, d: &Digest, size: u64) -> Result<()> {
        let dest = self.blob_path(d);
        std::fs::rename(tmp, &dest).with_context(|| {
            format!("cannot rename `{}` to `{}`", tmp.display(), dest.display())
        })?;
        {
            let mut ix = self.index();
            ix.clock += 1;
            let last = ix.clock;
            if ix
                .blobs
                .insert(
                    d.clone(),
                    Entry {
                        size,
                        last,
                        readers: 0,
                    },
                )
                .is_none()
            {
                ix.total += size;
            }
            self.metrics.cache_bytes.store(ix.total, Ordering::Relaxed);
            self.metrics
                .cache_blobs
                .store(ix.blobs.len() as u64, Ordering::Relaxed);
        }
        self.evict();
        Ok(())
    }

    /// Remove least recently used blobs that nobody reads until the total fits `--max-size`.
    pub fn evict(&self) {
        let Some(max) = self.max_size else { return };
        let mut ix = self.index();
        while ix.total > max {
            let victim = ix
                .blobs
                .iter()
                .filter(|(_, e)| e.readers == 0)
                .min_by_key(|(_, e)| e.last)
                .map(|(d, e)| (d.clone(), e.size));
            let Some((d, size)) = victim else { break };
            let path = self.blob_path(&d);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    crate::diag::warn(&format!("cannot evict `{}`: {e}", path.display()));
                    break;
                }
            }
            ix.blobs.remove(&d);
            ix.total -= size;
            self.metrics.evictions.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics.cache_bytes.store(ix.total, Ordering::Relaxed);
        self.metrics
            .cache_blobs
            .store(ix.blobs.len() as u64, Ordering::Relaxed);
    }

    /// A cached manifest: (content type, bytes), verified against its digest on read.
    pub fn manifest(&self, d: &Digest) -> Option<(String, bytes::Bytes)> {
        let raw = std::fs::read(self.manifest_path(d)).ok()?;
        let nl = raw.iter().position(|&b| b == b'\n')?;
        let ct = String::from_utf8(raw.get(..nl)?.to_vec()).ok()?;
        let body = bytes::Bytes::from(raw).slice(nl + 1..);
        (d.of_same_algorithm(&body) == *d).then_some((ct, body))
    }

    /// Store a manifest whose bytes were checked against `d`.
    pub fn put_manifest(&self, d: &Digest, content_type: &str, body: &[u8]) -> Result<()> {
        let dest = self.manifest_path(d);
        let n = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = dest.with_file_name(format!(".tmp-{}-{}-{n}", d.hex(), std::process::id()));
        let mut data = Vec::with_capacity(content_type.len() + 1 + body.len());
        data.extend_from_slice(content_type.as_bytes());
        data.push(b'\n');
        data.extend_from_slice(body);
        std::fs::write(&tmp, data).with_context(|| format!("cannot write `{}`", tmp.display()))?;
        std::fs::rename(&tmp, &dest)
            .with_context(|| format!("cannot rename to `{}`", dest.display()))?;
        Ok(())
    }

    pub fn tags_path(&self) -> PathBuf {
        self.root.join("tags.json")
    }
}

/// Create the cache dirs, remove stray temp files, list the blob files (oldest first).
fn scan(root: &Path) -> Result<Vec<(Digest, u64, std::time::SystemTime)>> {
    let mut found: Vec<(Digest, u64, std::time::SystemTime)> = Vec::new();
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
                if kind != "blobs" {
                    continue;
                }
                let Ok(d) = format!("{}:{name}", alg.as_str()).parse::<Digest>() else {
                    continue;
                };
                let md = ent.metadata()?;
                if md.is_file() {
                    found.push((d, md.len(), md.modified().unwrap_or(std::time::UNIX_EPOCH)));
                }
            }
        }
    }
    // Oldest modification first, so restart keeps a sensible LRU order.
    found.sort_by_key(|(_, _, t)| *t);
    Ok(found)
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
