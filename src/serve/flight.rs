//! Single-flight blob downloads.
//!
//! The first request for an uncached digest starts one [`Flight`]: a task that streams the
//! upstream body into a temp file, hashing as it writes, and publishes its progress on a watch
//! channel. Every client of that digest (the one that started it and every one that joins while
//! it runs) follows the published length: from the flight's last few MiB of received chunks,
//! shared in memory, while it keeps up, else with positional reads of the temp file; so each
//! sees bytes as soon as they land and memory stays bounded per flight and per connection.
//!
//! The last byte is only published once the digest matched and the file was committed, so no
//! client can receive a complete body for bytes that turn out wrong: on a mismatch the state
//! becomes `Failed`, the readers' bodies are aborted, nothing is committed and the next request
//! starts a new flight.

use super::metrics::Metrics;
use super::store::{BlobRead, Store};
use super::upstream::Upstream;
use crate::oci::Digest;
use axum::http::{HeaderMap, Method, StatusCode};
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Bytes read per chunk when serving from a file.
pub const CHUNK: usize = 256 * 1024;
/// A download tells its readers about new bytes every this many bytes…
const PUBLISH: u64 = 256 * 1024;
/// Bytes handed to the hashing thread at a time…
const HASH_BATCH: usize = 1 << 20;
/// …and batches queued for it at most.
const HASH_QUEUE: usize = 4;
/// …or after this long, so a slow upstream's bytes still flow.
const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

#[derive(Clone, Debug)]
pub enum State {
    /// Waiting for the upstream's response headers.
    Connecting,
    /// Body arriving: `avail` bytes are in the file and may be served.
    Streaming {
        size: Option<u64>,
        avail: u64,
    },
    /// Verified and committed.
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
    fn recent_slice(&self, pos: u64, limit: u64) -> Option<Bytes> {
        self.recent.lock().unwrap().slice(pos, limit)
    }
}

/// Bytes held in memory for a flight's readers: the last [`RECENT_BYTES`] or so of the chunks
/// received, shared (`Bytes` are reference-counted), so a reader that keeps up with the
/// download gets them without a file read; one that falls behind reads the file.
#[derive(Default)]
struct Recent {
    chunks: std::collections::VecDeque<(u64, Bytes)>,
    bytes: usize,
}

/// Per flight, whatever the number of readers.
const RECENT_BYTES: usize = 4 << 20;

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
        let from = (pos - off) as usize;
        let to = ((limit - off) as usize).min(c.len()).min(from + CHUNK);
        Some(c.slice(from..to))
    }
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
    pub fn in_flight(&self, d: &Digest) -> Option<Arc<Flight>> {
        self.map.lock().unwrap().get(d).cloned()
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
        let mut map = self.map.lock().unwrap();
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
        let (tmp, file) = store.temp_file(d).map_err(|e| format!("{e:#}"))?;
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
            tmp,
            file,
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

struct Job {
    flights: Arc<Flights>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    up: Arc<Upstream>,
    path: String,
    digest: Digest,
    tmp: PathBuf,
    file: Arc<File>,
    recent: Arc<Mutex<Recent>>,
    tx: watch::Sender<State>,
}

impl Job {
    async fn run(self) {
        let started = std::time::Instant::now();
        let result = self.fetch().await;
        if let Ok((n, chunks)) = &result {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "fetched {} from {} ({:.1} MiB in {secs:.3} s, {:.0} MiB/s, {chunks} chunks)",
                self.digest,
                self.up.registry,
                *n as f64 / 1048576.0,
                *n as f64 / 1048576.0 / secs.max(1e-9)
            );
        }
        let result = result.map(|(n, _)| n);
        // Leave the map (and commit) under its lock, so a new request sees either the flight
        // or the committed blob, never neither.
        let mut map = self.flights.map.lock().unwrap();
        let state = match result {
            Ok(size) => match self.store.commit(&self.tmp, &self.digest, size) {
                Ok(()) => State::Done { size },
                Err(e) => State::Failed(Failure::Local(format!("{e:#}"))),
            },
            Err(f) => {
                if let Failure::Corrupt(msg) = &f {
                    eprintln!(
                        "error: blob {} from {}: {msg}; discarded, not cached",
                        self.digest, self.up.registry
                    );
                }
                State::Failed(f)
            }
        };
        if matches!(state, State::Failed(_)) {
            let _ = std::fs::remove_file(&self.tmp);
        }
        map.remove(&self.digest);
        drop(map);
        self.metrics.inflight.fetch_sub(1, Ordering::Relaxed);
        let _ = self.tx.send(state);
    }

    /// Download, verify; returns (bytes, network chunks).
    async fn fetch(&self) -> Result<(u64, u64), Failure> {
        let resp = self
            .up
            .send(Method::GET, &self.path, HeaderMap::new(), "blob")
            .await
            .map_err(|e| Failure::Unreachable(e.0))?;
        let status = resp.status();
        if status != StatusCode::OK {
            let content_type = resp
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let body = resp.bytes().await.unwrap_or_default();
            return Err(Failure::Status {
                status,
                content_type,
                body: body.slice(..body.len().min(64 * 1024)),
            });
        }
        let size = resp.content_length();
        // Until verified, never publish the whole length of a sized body.
        let hold = |written: u64| match size {
            Some(s) if written >= s => s.saturating_sub(1),
            _ => written,
        };
        let _ = self.tx.send(State::Streaming { size, avail: 0 });
        // Hash on a blocking thread, in parallel with receiving and writing; the channel
        // bounds what is queued for it (HASH_QUEUE × HASH_BATCH).
        let (htx, mut hrx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(HASH_QUEUE);
        let mut verifier = self.digest.verifier();
        let hasher = tokio::task::spawn_blocking(move || {
            while let Some(batch) = hrx.blocking_recv() {
                for b in batch {
                    verifier.update(&b);
                }
            }
            verifier
        });
        // Chunks go to the hasher HASH_BATCH bytes at a time: one thread wake-up per batch,
        // not per (often 8–16 KiB) network chunk.
        let mut to_hash: Vec<Bytes> = Vec::new();
        let mut to_hash_len = 0usize;
        let mut chunks = 0u64;
        let mut written: u64 = 0;
        let mut published: u64 = 0;
        let mut last_publish = std::time::Instant::now();
        let mut body = resp.bytes_stream();
        let mut ended = false;
        while !ended {
            // With unpublished bytes, do not sit on them while the upstream is slow.
            let next = if written == published {
                Some(body.next().await)
            } else {
                tokio::time::timeout(PUBLISH_EVERY, body.next()).await.ok()
            };
            let timed_out = next.is_none();
            match next.flatten() {
                Some(chunk) => {
                    let chunk = chunk
                        .map_err(|e| Failure::Corrupt(format!("upstream body failed: {e}")))?;
                    if let Some(s) = size {
                        if written + chunk.len() as u64 > s {
                            return Err(Failure::Corrupt(format!(
                                "upstream sent more than its Content-Length {s}"
                            )));
                        }
                    }
                    self.file
                        .write_all_at(&chunk, written)
                        .map_err(|e| Failure::Local(format!("cannot write cache file: {e}")))?;
                    self.recent.lock().unwrap().push(written, chunk.clone());
                    written += chunk.len() as u64;
                    self.metrics
                        .upstream_bytes
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    chunks += 1;
                    // `Bytes` share their buffer: no copy for the hasher.
                    to_hash_len += chunk.len();
                    to_hash.push(chunk);
                }
                None if timed_out => {}
                None => ended = true,
            }
            if to_hash_len >= HASH_BATCH || (ended && !to_hash.is_empty()) {
                to_hash_len = 0;
                htx.send(std::mem::take(&mut to_hash))
                    .await
                    .map_err(|_| Failure::Local("hashing thread ended".into()))?;
            }
            // Wake readers per PUBLISH bytes (or PUBLISH_EVERY), not per small network chunk.
            let due = timed_out
                || ended
                || written - published >= PUBLISH
                || last_publish.elapsed() >= PUBLISH_EVERY;
            if due && written > published {
                published = written;
                last_publish = std::time::Instant::now();
                let _ = self.tx.send(State::Streaming {
                    size,
                    avail: hold(written),
                });
            }
        }
        drop(htx);
        if let Some(s) = size {
            if written != s {
                return Err(Failure::Corrupt(format!(
                    "upstream body ended after {written} of {s} bytes"
                )));
            }
        }
        let verifier = hasher
            .await
            .map_err(|e| Failure::Local(format!("hashing failed: {e}")))?;
        let got = verifier.finish();
        if got != self.digest {
            self.metrics
                .digest_mismatches
                .fetch_add(1, Ordering::Relaxed);
            return Err(Failure::Corrupt(format!(
                "upstream bytes hash to {got}, not {}",
                self.digest
            )));
        }
        Ok((written, chunks))
    }
}

/// Where a body's bytes come from.
enum Origin {
    File {
        _hold: BlobRead,
        file: Arc<File>,
    },
    Flight {
        flight: Arc<Flight>,
        rx: watch::Receiver<State>,
    },
}

/// A body stream of `[start, end)` (`end` `None`: until the flight says the size) from a
/// committed blob or a flight in progress. Errors abort the response.
pub fn body_stream(
    src: BodySource,
    start: u64,
    end: Option<u64>,
    metrics: Arc<Metrics>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let origin = match src {
        BodySource::File(r) => {
            let file = File::open(&r.path).map(Arc::new);
            match file {
                Ok(file) => Ok(Origin::File { _hold: r, file }),
                Err(e) => Err(e),
            }
        }
        BodySource::Flight(f) => {
            let rx = f.subscribe();
            Ok(Origin::Flight { flight: f, rx })
        }
    };
    futures_util::stream::unfold((origin, start, false), move |(origin, pos, finished)| {
        let metrics = metrics.clone();
        async move {
            if finished {
                return None;
            }
            let mut origin = match origin {
                Ok(o) => o,
                Err(e) => return Some((Err(e), (Err(std::io::Error::other("gone")), pos, true))),
            };
            // How far we may read now; waits on a flight until there is something new.
            let limit = loop {
                match &mut origin {
                    Origin::File { .. } => break end,
                    Origin::Flight { rx, .. } => {
                        let st = rx.borrow_and_update().clone();
                        match st {
                            State::Done { size } => break Some(end.unwrap_or(size).min(size)),
                            State::Streaming { avail, .. } if avail > pos => {
                                break Some(end.map_or(avail, |e| e.min(avail)))
                            }
                            State::Failed(f) => {
                                let msg = match f {
                                    Failure::Corrupt(m)
                                    | Failure::Unreachable(m)
                                    | Failure::Local(m) => m,
                                    Failure::Status { status, .. } => {
                                        format!("upstream answered {status}")
                                    }
                                };
                                let e = std::io::Error::other(msg);
                                return Some((Err(e), (Ok(origin), pos, true)));
                            }
                            _ => {}
                        }
                        if end.is_some_and(|e| pos >= e) {
                            return None;
                        }
                        if rx.changed().await.is_err() {
                            let e = std::io::Error::other("download task ended");
                            return Some((Err(e), (Ok(origin), pos, true)));
                        }
                    }
                }
            };
            let limit = limit.unwrap_or(u64::MAX);
            if pos >= limit {
                // For a flight in progress `limit` may grow; Done/File mean the end.
                let done = match &origin {
                    Origin::File { .. } => true,
                    Origin::Flight { rx, .. } => matches!(*rx.borrow(), State::Done { .. }),
                };
                if done || end.is_some_and(|e| pos >= e) {
                    return None;
                }
            }
            // A reader keeping up with a download: the bytes are still in memory.
            if let Origin::Flight { flight, .. } = &origin {
                if let Some(b) = flight.recent_slice(pos, limit) {
                    let n = b.len() as u64;
                    metrics.served_bytes.fetch_add(n, Ordering::Relaxed);
                    metrics.served_memory_bytes.fetch_add(n, Ordering::Relaxed);
                    return Some((Ok(b), (Ok(origin), pos + n, false)));
                }
            }
            let file = match &origin {
                Origin::File { file, .. } => file.clone(),
                Origin::Flight { flight, .. } => flight.file.clone(),
            };
            let want = (limit - pos).min(CHUNK as u64) as usize;
            let read_at = move || {
                let mut buf = vec![0u8; want];
                file.read_at(&mut buf, pos).map(|n| {
                    buf.truncate(n);
                    buf
                })
            };
            // Read in place, on this worker thread: the bytes are in the page cache (just
            // written or committed). Measured: a hand-off to the blocking pool per chunk costs
            // a third of the 32-way cold throughput and gains nothing for one reader, whose
            // bytes come from `recent` while it keeps up.
            let read = read_at();
            match read {
                Ok(buf) if buf.is_empty() => {
                    let e = std::io::Error::other("cache file shorter than expected");
                    Some((Err(e), (Ok(origin), pos, true)))
                }
                Ok(buf) => {
                    let n = buf.len() as u64;
                    metrics.served_bytes.fetch_add(n, Ordering::Relaxed);
                    Some((Ok(Bytes::from(buf)), (Ok(origin), pos + n, false)))
                }
                Err(e) => Some((Err(e), (Ok(origin), pos, true))),
            }
        }
    })
}

pub enum BodySource {
    File(BlobRead),
    Flight(Arc<Flight>),
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
