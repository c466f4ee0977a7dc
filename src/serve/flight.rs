//! Single-flight blob downloads.
//!
//! The first request for an uncached digest starts one [`Flight`]: a task that streams the
//! upstream body into a temp file, hashing as it writes, and publishes its progress on a watch
//! channel. Every client of that digest (the one that started it and every one that joins while
//! it runs) follows the published length: from the flight's last few MiB of received chunks,
//! shared in memory, while it keeps up, else with positional reads of the temp file; so each
//! sees bytes as soon as they land and memory stays bounded per flight and per connection.
//!
//! The last byte is only published once the digest matched and the blob was committed, so no
//! client can receive a complete body for bytes that turn out wrong: on a mismatch the state
//! becomes `Failed`, the readers' bodies are aborted, nothing is committed and the next request
//! starts a new flight.

use super::metrics::Metrics;
use super::store::{BlobRead, Store};
use super::upstream::Upstream;
use crate::oci::{Digest, Verifier};
use axum::http::{header, HeaderMap, Method, StatusCode};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Bytes read per chunk when serving from a file.
pub const CHUNK: usize = 256 * 1024;
/// A download tells its readers about new bytes every this many bytes…
const PUBLISH: u64 = 256 * 1024;
/// …or after this long, so a slow upstream's bytes still flow.
const PUBLISH_EVERY: Duration = Duration::from_millis(20);
/// Bytes handed to the hashing thread at a time…
const HASH_BATCH: usize = 1 << 20;
/// …and batches queued for it at most.
const HASH_QUEUE: usize = 4;
/// Received chunks a download keeps in memory for its readers (per flight, whatever the
/// number of readers).
const RECENT_BYTES: usize = 4 << 20;

#[derive(Clone, Debug)]
pub enum State {
    /// Waiting for the upstream's response headers.
    Connecting,
    /// Body arriving: `avail` bytes may be served.
    Streaming {
        size: Option<u64>,
        avail: u64,
    },
    /// Verified (and committed, when it could be stored).
    Done {
        size: u64,
    },
    Failed(Failure),
}

#[derive(Clone, Debug)]
pub enum Failure {
    /// The upstream answered something other than 200: pass it on.
    Status {
        status: StatusCode,
        content_type: Option<String>,
        body: Bytes,
    },
    Unreachable(String),
    /// Bytes did not hash to the digest, or the body was cut short.
    Corrupt(String),
    Local(String),
}

impl Failure {
    /// A non-200 upstream response, its body (at most 64 KiB) kept to pass on.
    pub async fn from_response(resp: reqwest::Response) -> Failure {
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = resp.bytes().await.unwrap_or_default();
        Failure::Status {
            status,
            content_type,
            body: body.slice(..body.len().min(64 * 1024)),
        }
    }

    pub fn message(&self) -> String {
        match self {
            Failure::Corrupt(m) | Failure::Unreachable(m) | Failure::Local(m) => m.clone(),
            Failure::Status { status, .. } => format!("upstream answered {status}"),
        }
    }
}

pub struct Flight {
    file: Arc<File>,
    state: watch::Receiver<State>,
    recent: Arc<Mutex<Recent>>,
}

impl Flight {
    pub fn subscribe(&self) -> watch::Receiver<State> {
        self.state.clone()
    }

    /// The bytes at `[pos, limit)` (a prefix of it) from the recent chunks, if still held.
    pub fn recent_slice(&self, pos: u64, limit: u64) -> Option<Bytes> {
        lock(&self.recent).slice(pos, limit)
    }

    /// The download's file, for bytes no longer held in memory.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
}

/// Bytes held in memory for a flight's readers: the last [`RECENT_BYTES`] or so of the chunks
/// received, shared (`Bytes` are reference-counted), so a reader that keeps up with the
/// download gets them without a file read; one that falls behind reads the file.
#[derive(Default)]
struct Recent {
    chunks: VecDeque<(u64, Bytes)>,
    bytes: usize,
}

impl Recent {
    fn push(&mut self, offset: u64, chunk: Bytes) {
        self.bytes += chunk.len();
        self.chunks.push_back((offset, chunk));
        while self.bytes > RECENT_BYTES && self.chunks.len() > 1 {
            if let Some((_, old)) = self.chunks.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    fn slice(&self, pos: u64, limit: u64) -> Option<Bytes> {
        let (first, _) = self.chunks.front()?;
        if pos < *first || pos >= limit {
            return None;
        }
        // Chunks are contiguous and in order: find the one holding `pos`.
        let i = self
            .chunks
            .partition_point(|(off, c)| off + c.len() as u64 <= pos);
        let (off, c) = self.chunks.get(i)?;
        let from = usize::try_from(pos - off).ok()?;
        let to = usize::try_from(limit - off)
            .unwrap_or(usize::MAX)
            .min(c.len())
            .min(from + CHUNK);
        (from < to).then(|| c.slice(from..to))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Default)]
pub struct Flights {
    map: Mutex<HashMap<Digest, Arc<Flight>>>,
}

/// What [`Flights::get`] found.
pub enum Source {
    /// Already committed.
    Hit(BlobRead),
    /// A download in progress; `started` is true for the request that started it.
    Flight { flight: Arc<Flight>, started: bool },
}

impl Flights {
    fn map(&self) -> MutexGuard<'_, HashMap<Digest, Arc<Flight>>> {
        lock(&self.map)
    }

    pub fn in_flight(&self, d: &Digest) -> Option<Arc<Flight>> {
        self.map().get(d).cloned()
    }

    /// The blob from the store, or a download of it (joined or started from `up`/`repo`).
    pub fn get(
        self: &Arc<Self>,
        store: &Arc<Store>,
        metrics: &Arc<Metrics>,
        up: &Arc<Upstream>,
        repo: &str,
        d: &Digest,
    ) -> Result<Source, String> {
        let mut map = self.map();
        // Checked under the map lock: a flight commits and leaves the map under it too.
        if let Some(r) = store.lookup(d) {
            return Ok(Source::Hit(r));
        }
        if let Some(f) = map.get(d) {
            return Ok(Source::Flight {
                flight: f.clone(),
                started: false,
            });
        }
        let (tmp, file) = store
            .temp_file(d)
            .map_err(|e| format!("cannot create a temp file for {d}: {e}"))?;
        let file = Arc::new(file);
        let (tx, rx) = watch::channel(State::Connecting);
        let recent = Arc::new(Mutex::new(Recent::default()));
        let flight = Arc::new(Flight {
            file: file.clone(),
            state: rx,
            recent: recent.clone(),
        });
        map.insert(d.clone(), flight.clone());
        drop(map);
        metrics.inflight.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            flights: self.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            up: up.clone(),
            path: format!("/v2/{repo}/blobs/{d}"),
            digest: d.clone(),
            sink: Sink { tmp, file },
            recent,
            tx,
        };
        tokio::spawn(job.run());
        Ok(Source::Flight {
            flight,
            started: true,
        })
    }
}

/// The temp file a download is stored in.
struct Sink {
    tmp: PathBuf,
    file: Arc<File>,
}

struct Job {
    flights: Arc<Flights>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    up: Arc<Upstream>,
    path: String,
    digest: Digest,
    sink: Sink,
    recent: Arc<Mutex<Recent>>,
    tx: watch::Sender<State>,
}

impl Job {
    async fn run(self) {
        let started = Instant::now();
        let result = self.fetch().await;
        if let Ok((n, chunks)) = &result {
            let secs = started.elapsed().as_secs_f64();
            crate::diag::note(&format!(
                "fetched {} from {} ({:.1} MiB in {secs:.3} s, {:.0} MiB/s, {chunks} chunks)",
                self.digest,
                self.up.registry,
                *n as f64 / 1048576.0,
                *n as f64 / 1048576.0 / secs.max(1e-9)
            ));
        }
        let state = self.finish(result.map(|(n, _)| n));
        self.metrics.inflight.fetch_sub(1, Ordering::Relaxed);
        let _ = self.tx.send(state);
    }

    /// Commit and leave the map, both under the map's lock, so a new request sees either the
    /// flight or the committed blob, never neither.
    fn finish(&self, result: Result<u64, Failure>) -> State {
        let mut map = self.flights.map();
        let d = &self.digest;
        let state = match result {
            Ok(size) => match self.store.commit(&self.sink.tmp, d, size) {
                Ok(()) => State::Done { size },
                Err(e) => State::Failed(Failure::Local(format!("cannot commit {d}: {e}"))),
            },
            Err(f) => {
                if let Failure::Corrupt(msg) = &f {
                    crate::diag::error(&format!(
                        "blob {d} from {}: {msg}; discarded, not cached",
                        self.up.registry
                    ));
                }
                State::Failed(f)
            }
        };
        if matches!(state, State::Failed(_)) {
            let _ = std::fs::remove_file(&self.sink.tmp);
        }
        map.remove(d);
        state
    }

    /// The upstream's 200 response, or why not.
    async fn open(&self) -> Result<reqwest::Response, Failure> {
        let resp = self
            .up
            .send(Method::GET, &self.path, HeaderMap::new(), "blob")
            .await
            .map_err(|e| Failure::Unreachable(e.0))?;
        if resp.status() != StatusCode::OK {
            return Err(Failure::from_response(resp).await);
        }
        Ok(resp)
    }

    /// Download, verify; returns (bytes, network chunks).
    async fn fetch(&self) -> Result<(u64, u64), Failure> {
        let resp = self.open().await?;
        let mut dl = Download::new(&self.digest, resp.content_length());
        let _ = self.tx.send(State::Streaming {
            size: dl.size,
            avail: 0,
        });
        let mut body = resp.bytes_stream();
        loop {
            let step = dl.next(&mut body).await?;
            let (ended, idle) = (matches!(step, Step::End), matches!(step, Step::Idle));
            if let Step::Chunk(chunk) = step {
                self.take(&mut dl, chunk)?;
            }
            dl.hash(ended).await?;
            self.publish(&mut dl, ended || idle);
            if ended {
                break;
            }
        }
        let n = dl.verify(&self.digest, &self.metrics).await?;
        Ok((n, dl.chunks))
    }

    /// One chunk from upstream: to the file, to the readers' recent chunks, to the hasher.
    fn take(&self, dl: &mut Download, chunk: Bytes) -> Result<(), Failure> {
        let len = chunk.len() as u64;
        if let Some(s) = dl.size {
            if dl.written + len > s {
                return Err(Failure::Corrupt(format!(
                    "upstream sent more than its Content-Length {s}"
                )));
            }
        }
        self.sink
            .file
            .write_all_at(&chunk, dl.written)
            .map_err(|e| Failure::Local(format!("cannot write cache file: {e}")))?;
        lock(&self.recent).push(dl.written, chunk.clone());
        dl.written += len;
        dl.chunks += 1;
        self.metrics
            .upstream_bytes
            .fetch_add(len, Ordering::Relaxed);
        // `Bytes` share their buffer: no copy for the hasher.
        dl.to_hash_len += chunk.len();
        dl.to_hash.push(chunk);
        Ok(())
    }

    /// Wake readers per [`PUBLISH`] bytes (or [`PUBLISH_EVERY`]), not per small network chunk.
    fn publish(&self, dl: &mut Download, now: bool) {
        let due = now
            || dl.written - dl.published >= PUBLISH
            || dl.last_publish.elapsed() >= PUBLISH_EVERY;
        if due && dl.written > dl.published {
            dl.published = dl.written;
            dl.last_publish = Instant::now();
            let _ = self.tx.send(State::Streaming {
                size: dl.size,
                avail: dl.hold(),
            });
        }
    }
}

/// What came from the upstream body.
enum Step {
    Chunk(Bytes),
    /// Nothing for [`PUBLISH_EVERY`] while bytes wait to be published.
    Idle,
    End,
}

/// A download's progress and its hashing thread.
struct Download {
    size: Option<u64>,
    written: u64,
    published: u64,
    last_publish: Instant,
    chunks: u64,
    to_hash: Vec<Bytes>,
    to_hash_len: usize,
    hash_tx: Option<tokio::sync::mpsc::Sender<Vec<Bytes>>>,
    hasher: tokio::task::JoinHandle<Verifier>,
}

impl Download {
    /// Hash on a blocking thread, in parallel with receiving and writing; the channel bounds
    /// what is queued for it ([`HASH_QUEUE`] × [`HASH_BATCH`]).
    fn new(d: &Digest, size: Option<u64>) -> Download {
        let (hash_tx, mut hrx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(HASH_QUEUE);
        let mut verifier = d.verifier();
        let hasher = tokio::task::spawn_blocking(move || {
            while let Some(batch) = hrx.blocking_recv() {
                for b in batch {
                    verifier.update(&b);
                }
            }
            verifier
        });
        Download {
            size,
            written: 0,
            published: 0,
            last_publish: Instant::now(),
            chunks: 0,
            to_hash: Vec::new(),
            to_hash_len: 0,
            hash_tx: Some(hash_tx),
            hasher,
        }
    }

    /// How much may be published: never the whole length of a sized body before it verified.
    fn hold(&self) -> u64 {
        match self.size {
            Some(s) if self.written >= s => s.saturating_sub(1),
            _ => self.written,
        }
    }

    /// The next chunk; with unpublished bytes, do not sit on them while the upstream is slow.
    async fn next<S>(&self, body: &mut S) -> Result<Step, Failure>
    where
        S: Stream<Item = reqwest::Result<Bytes>> + Unpin,
    {
        let next = if self.written == self.published {
            Some(body.next().await)
        } else {
            tokio::time::timeout(PUBLISH_EVERY, body.next()).await.ok()
        };
        match next {
            None => Ok(Step::Idle),
            Some(None) => Ok(Step::End),
            Some(Some(Ok(c))) => Ok(Step::Chunk(c)),
            Some(Some(Err(e))) => Err(Failure::Corrupt(format!("upstream body failed: {e}"))),
        }
    }

    /// Chunks go to the hasher [`HASH_BATCH`] bytes at a time: one thread wake-up per batch,
    /// not per (often 8–16 KiB) network chunk.
    async fn hash(&mut self, ended: bool) -> Result<(), Failure> {
        let flush = ended && !self.to_hash.is_empty();
        if self.to_hash_len < HASH_BATCH && !flush {
            return Ok(());
        }
        self.to_hash_len = 0;
        let batch = std::mem::take(&mut self.to_hash);
        match &self.hash_tx {
            Some(tx) => tx
                .send(batch)
                .await
                .map_err(|_| Failure::Local("hashing thread ended".into())),
            None => Err(Failure::Local("hashing already finished".into())),
        }
    }

    /// The whole body arrived: check its length and digest; returns its length.
    async fn verify(&mut self, d: &Digest, metrics: &Metrics) -> Result<u64, Failure> {
        self.hash_tx = None;
        if let Some(s) = self.size {
            if self.written != s {
                return Err(Failure::Corrupt(format!(
                    "upstream body ended after {} of {s} bytes",
                    self.written
                )));
            }
        }
        let verifier = (&mut self.hasher)
            .await
            .map_err(|e| Failure::Local(format!("hashing failed: {e}")))?;
        let got = verifier.finish();
        if got != *d {
            metrics.digest_mismatches.fetch_add(1, Ordering::Relaxed);
            return Err(Failure::Corrupt(format!(
                "upstream bytes hash to {got}, not {d}"
            )));
        }
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_chunks_slice_and_bound() {
        let mut r = Recent::default();
        assert!(r.slice(0, 10).is_none());
        let mut off = 0u64;
        for i in 0..12u8 {
            let c = Bytes::from(vec![i; 1 << 20]);
            r.push(off, c);
            off += 1 << 20;
        }
        // Only the last ~4 MiB are held.
        assert!(r.bytes <= RECENT_BYTES);
        assert!(r.slice(0, off).is_none());
        let first = r.chunks.front().unwrap().0;
        assert_eq!(first, 8 << 20);
        // A slice starts at pos, stops at the chunk end, the limit, or CHUNK.
        let b = r.slice((9 << 20) + 10, off).unwrap();
        assert_eq!(b.len(), CHUNK);
        assert!(b.iter().all(|&x| x == 9));
        let b = r.slice((10 << 20) - 5, off).unwrap();
        assert_eq!(b.len(), 5);
        let b = r.slice(10 << 20, (10 << 20) + 3).unwrap();
        assert_eq!(&b[..], &[10, 10, 10]);
        assert!(r.slice(off, off + 1).is_none());
        assert!(r.slice(11 << 20, 11 << 20).is_none());
    }
}
