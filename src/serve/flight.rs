//! Single-flight blob downloads.
//!
//! The first request for an uncached digest starts one [`Flight`]: a task that streams the
//! upstream body into a temp file, hashing as it goes, and publishes its progress on a watch
//! channel. Every client of that digest (the one that started it and each one that joins while
//! it runs) is a [`Reader`] following the published length: from the flight's recent chunks,
//! shared in memory, while it keeps up, else with positional reads of the temp file; so each
//! sees bytes as soon as they land and memory stays bounded per flight and per connection.
//!
//! The last byte is only published once the digest matched (and the blob was committed), so no
//! client can receive a complete body for bytes that turn out wrong: on a mismatch the state
//! becomes `Failed`, the readers' bodies are aborted, nothing is committed and the next request
//! starts a new flight.
//!
//! When the cache cannot write (a full disk, a read-only remount, an I/O error) the flight
//! drops its temp file and goes on in memory only: it keeps the bytes its readers still need
//! (reading those behind its recent chunks back from the file first), at most [`MEM_BOUND`],
//! and stops reading upstream while that is full until the slowest reader moves on. A reader
//! stuck for [`STALL`], or one too far behind to be served from memory, gets its own upstream
//! fetch ([`Flight::solo`]), as does a request that arrives when the flight no longer holds the
//! blob's first bytes. The next download tries to store again.

use super::metrics::{Metrics, WriteError};
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
use tokio::sync::{watch, Notify};

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
/// Received chunks a stored download keeps in memory for its readers (per flight, whatever
/// the number of readers).
const RECENT_BYTES: usize = 4 << 20;
/// What a download that cannot be stored keeps in memory for its readers at most.
pub const MEM_BOUND: usize = 8 << 20;
/// A reader that holds a download in memory back this long without moving gets its own fetch.
pub const STALL: Duration = Duration::from_secs(5);

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
        /// For a 429: the upstream's `Retry-After` and what it said about its budget.
        limited: Option<Box<Limited>>,
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
        let limited =
            (status == StatusCode::TOO_MANY_REQUESTS).then(|| Box::new(Limited::of(&resp)));
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
            limited,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Failure::Corrupt(m) | Failure::Unreachable(m) | Failure::Local(m) => m.clone(),
            Failure::Status { status, .. } => format!("upstream answered {status}"),
        }
    }
}

/// An upstream's 429: whom, and what it said (to name its rate limit to the client).
#[derive(Debug, Clone)]
pub struct Limited {
    /// `host[:port]` of the upstream.
    pub upstream: String,
    pub retry_after: Option<String>,
    pub remaining: Option<String>,
}

impl Limited {
    fn of(resp: &reqwest::Response) -> Limited {
        let h = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let u = resp.url();
        let upstream = match (u.host_str(), u.port()) {
            (Some(host), Some(p)) => format!("{host}:{p}"),
            (Some(host), None) => host.to_string(),
            _ => u.to_string(),
        };
        Limited {
            upstream,
            retry_after: h("retry-after"),
            remaining: h(super::ratelimit::REMAINING),
        }
    }
}

/// What a download needs, kept to start a reader's own fetch.
struct Ctx {
    flights: Arc<Flights>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    up: Arc<Upstream>,
    path: String,
    digest: Digest,
}

pub struct Flight {
    state: watch::Receiver<State>,
    buf: Arc<Mutex<Buffer>>,
    /// A reader moved on or left (wakes a download held back by a full buffer).
    moved: Arc<Notify>,
    ctx: Arc<Ctx>,
}

impl Flight {
    pub fn subscribe(&self) -> watch::Receiver<State> {
        self.state.clone()
    }

    /// Whether the download is (still) being stored.
    pub fn storing(&self) -> bool {
        self.buf().file.is_some()
    }

    fn buf(&self) -> MutexGuard<'_, Buffer> {
        lock(&self.buf)
    }

    /// A new reader from `pos`; `None` when the flight no longer holds the bytes there.
    fn attach(self: &Arc<Self>, pos: u64) -> Option<Reader> {
        let id = self.buf().attach(pos)?;
        Some(Reader {
            flight: self.clone(),
            id,
        })
    }

    /// A fetch of the blob of its own for one reader at `from` (not shared, not stored).
    pub fn solo(&self, from: u64) -> Reader {
        start(self.ctx.clone(), None, from, false).1
    }
}

/// One client of a flight: its position holds the bytes it still needs in a download that is
/// not stored.
pub struct Reader {
    flight: Arc<Flight>,
    id: u64,
}

/// Where a reader's next bytes are.
pub enum Next {
    Bytes(Bytes),
    /// Before the chunks in memory: read them from the download's file.
    File(Arc<File>),
    /// Not held any more: fetch them separately.
    Lost,
}

impl Reader {
    pub fn flight(&self) -> &Arc<Flight> {
        &self.flight
    }

    /// The bytes at `[pos, limit)` (a prefix of it), or where to find them.
    pub fn next(&self, pos: u64, limit: u64) -> Next {
        let b = self.flight.buf();
        if let Some(bytes) = b.slice(pos, limit) {
            return Next::Bytes(bytes);
        }
        match &b.file {
            Some(f) => Next::File(f.clone()),
            None => Next::Lost,
        }
    }

    /// The reader is at `pos` now.
    pub fn advance(&self, pos: u64) {
        self.flight.buf().advance(self.id, pos);
        self.flight.moved.notify_one();
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.flight.buf().detach(self.id);
        self.flight.moved.notify_one();
    }
}

/// Received chunks held in memory for a flight's readers, and where the rest is. Stored: the
/// last [`RECENT_BYTES`] or so (`Bytes` are reference-counted, so shared by every reader), the
/// older ones in `file`. Not stored: everything from the slowest attached reader on.
#[derive(Default)]
struct Buffer {
    chunks: VecDeque<(u64, Bytes)>,
    bytes: usize,
    /// The offset after the last chunk received.
    end: u64,
    /// The download's file while it is stored (bytes before the chunks are read from it).
    file: Option<Arc<File>>,
    /// Attached reader → position.
    readers: HashMap<u64, u64>,
    next_id: u64,
    /// A reader's own fetch: it is never detached for being slow.
    solo: bool,
}

impl Buffer {
    fn push(&mut self, offset: u64, chunk: Bytes) {
        self.bytes += chunk.len();
        self.end = offset + chunk.len() as u64;
        self.chunks.push_back((offset, chunk));
        self.trim();
    }

    /// Drop chunks nobody needs: beyond the recent ones when stored, before the slowest reader
    /// when not.
    fn trim(&mut self) {
        let floor = match self.file {
            Some(_) => None,
            None => Some(self.readers.values().copied().min().unwrap_or(self.end)),
        };
        while let Some((off, c)) = self.chunks.front() {
            let drop = match floor {
                None => self.bytes > RECENT_BYTES && self.chunks.len() > 1,
                Some(f) => off + c.len() as u64 <= f,
            };
            if !drop {
                break;
            }
            self.bytes -= c.len();
            self.chunks.pop_front();
        }
    }

    /// The first offset held in memory.
    fn start(&self) -> u64 {
        self.chunks.front().map_or(self.end, |(off, _)| *off)
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

    fn attach(&mut self, pos: u64) -> Option<u64> {
        if self.file.is_none() && pos < self.start() {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.readers.insert(id, pos);
        Some(id)
    }

    fn advance(&mut self, id: u64, pos: u64) {
        if let Some(p) = self.readers.get_mut(&id) {
            *p = pos;
        }
        if self.file.is_none() {
            self.trim();
        }
    }

    fn detach(&mut self, id: u64) {
        self.readers.remove(&id);
        if self.file.is_none() {
            self.trim();
        }
    }

    /// Stop using the file: read back from it what attached readers behind the chunks still
    /// need (within [`MEM_BOUND`]), detach the readers further behind, return the file.
    fn drop_file(&mut self) -> Option<Arc<File>> {
        let file = self.file.take()?;
        let start = self.start();
        let slowest = self.readers.values().copied().min().unwrap_or(start);
        let mut floor = slowest.max(self.end.saturating_sub(MEM_BOUND as u64));
        let mut back = VecDeque::new();
        let mut at = floor;
        while at < start {
            let want = usize::try_from(start - at).unwrap_or(CHUNK).min(CHUNK);
            let mut v = vec![0u8; want];
            match file.read_at(&mut v, at) {
                Ok(n) if n > 0 => {
                    v.truncate(n);
                    back.push_back((at, Bytes::from(v)));
                    at += n as u64;
                }
                _ => {
                    // Unreadable: only what is in memory can be served from here.
                    back.clear();
                    floor = start;
                    break;
                }
            }
        }
        self.bytes += back.iter().map(|(_, c)| c.len()).sum::<usize>();
        back.extend(self.chunks.drain(..));
        self.chunks = back;
        self.readers.retain(|_, p| *p >= floor);
        self.trim();
        Some(file)
    }

    /// Detach the slowest readers (they fetch on their own when they read on), so the others
    /// can go on; none when all are as slow (there is nobody to let go on).
    fn detach_slowest(&mut self) {
        let Some(min) = self.readers.values().copied().min() else {
            return;
        };
        if self.readers.values().any(|p| *p > min) {
            self.readers.retain(|_, p| *p > min);
            self.trim();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Default)]
pub struct Flights {
    map: Mutex<HashMap<Digest, Arc<Flight>>>,
}

/// How a request came to read a flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// It started the download.
    Started,
    /// It joined one in progress.
    Collapsed,
    /// It got a fetch of its own (the download in progress could not serve it).
    Solo,
}

/// What [`Flights::get`] found.
pub enum Source {
    /// Already committed.
    Hit(BlobRead),
    /// A download in progress.
    Flight { reader: Reader, joined: Joined },
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
    ) -> Source {
        let mut map = self.map();
        // Checked under the map lock: a flight commits and leaves the map under it too.
        if let Some(r) = store.lookup(d) {
            return Source::Hit(r);
        }
        if let Some(f) = map.get(d).cloned() {
            drop(map);
            return match f.attach(0) {
                Some(reader) => Source::Flight {
                    reader,
                    joined: Joined::Collapsed,
                },
                None => Source::Flight {
                    reader: f.solo(0),
                    joined: Joined::Solo,
                },
            };
        }
        let sink = match store.temp_file(d) {
            Ok((tmp, file)) => Some(Sink {
                tmp,
                file: Arc::new(file),
            }),
            Err(e) => {
                store.write_failed(&format!("blob {d}"), &e);
                None
            }
        };
        let ctx = Arc::new(Ctx {
            flights: self.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            up: up.clone(),
            path: format!("/v2/{repo}/blobs/{d}"),
            digest: d.clone(),
        });
        let (flight, reader) = start(ctx, sink, 0, true);
        map.insert(d.clone(), flight);
        Source::Flight {
            reader,
            joined: Joined::Started,
        }
    }
}

/// Start a download (stored into `sink` when given; a flight of the map when `shared`) with
/// its first reader at `from`.
fn start(ctx: Arc<Ctx>, sink: Option<Sink>, from: u64, shared: bool) -> (Arc<Flight>, Reader) {
    let (tx, rx) = watch::channel(State::Connecting);
    let buf = Buffer {
        file: sink.as_ref().map(|s| s.file.clone()),
        readers: HashMap::from([(0, from)]),
        next_id: 1,
        solo: !shared,
        ..Buffer::default()
    };
    let flight = Arc::new(Flight {
        state: rx,
        buf: Arc::new(Mutex::new(buf)),
        moved: Arc::new(Notify::new()),
        ctx: ctx.clone(),
    });
    ctx.metrics.inflight.fetch_add(1, Ordering::Relaxed);
    let job = Job {
        in_map: shared,
        buf: flight.buf.clone(),
        moved: flight.moved.clone(),
        ctx,
        sink,
        tx,
    };
    tokio::spawn(job.run(flight.clone()));
    let reader = Reader {
        flight: flight.clone(),
        id: 0,
    };
    (flight, reader)
}

/// The temp file a download is stored in.
struct Sink {
    tmp: PathBuf,
    file: Arc<File>,
}

struct Job {
    /// In the map of flights (else a reader's own fetch).
    in_map: bool,
    ctx: Arc<Ctx>,
    sink: Option<Sink>,
    buf: Arc<Mutex<Buffer>>,
    moved: Arc<Notify>,
    tx: watch::Sender<State>,
}

impl Job {
    /// `flight` is this job's own, to leave the map with.
    async fn run(mut self, flight: Arc<Flight>) {
        let started = Instant::now();
        let result = self.fetch().await;
        if let Ok((n, chunks)) = &result {
            let secs = started.elapsed().as_secs_f64();
            crate::diag::note(&format!(
                "fetched {} from {} ({:.1} MiB in {secs:.3} s, {:.0} MiB/s, {chunks} chunks)",
                self.ctx.digest,
                self.ctx.up.registry,
                *n as f64 / 1048576.0,
                *n as f64 / 1048576.0 / secs.max(1e-9)
            ));
        }
        let state = self.finish(result.map(|(n, _)| n), &flight);
        self.ctx.metrics.inflight.fetch_sub(1, Ordering::Relaxed);
        let _ = self.tx.send(state);
    }

    /// Commit (when stored) and leave the map, both under the map's lock, so a new request sees
    /// either the flight or the committed blob, never neither.
    fn finish(&mut self, result: Result<u64, Failure>, flight: &Arc<Flight>) -> State {
        let flights = self.ctx.flights.clone();
        let mut map = flights.map();
        let d = &self.ctx.digest;
        let state = match result {
            Ok(size) => {
                if let Some(sink) = self.sink.take() {
                    if let Err(e) = self.ctx.store.commit(&sink.tmp, d, size) {
                        self.ctx.store.write_failed(&format!("blob {d}"), &e);
                        let _ = std::fs::remove_file(&sink.tmp);
                    }
                }
                State::Done { size }
            }
            Err(f) => {
                if let Failure::Corrupt(msg) = &f {
                    crate::diag::error(&format!(
                        "blob {d} from {}: {msg}; discarded, not cached",
                        self.ctx.up.registry
                    ));
                }
                if let Some(sink) = self.sink.take() {
                    let _ = std::fs::remove_file(&sink.tmp);
                }
                State::Failed(f)
            }
        };
        if self.in_map && map.get(d).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            map.remove(d);
        }
        state
    }

    /// The upstream's 200 response, or why not.
    async fn open(&self) -> Result<reqwest::Response, Failure> {
        let resp = self
            .ctx
            .up
            .send(Method::GET, &self.ctx.path, HeaderMap::new(), "blob")
            .await
            .map_err(|e| Failure::Unreachable(e.0))?;
        if resp.status() != StatusCode::OK {
            return Err(Failure::from_response(resp).await);
        }
        Ok(resp)
    }

    /// Download, verify; returns (bytes, network chunks).
    async fn fetch(&mut self) -> Result<(u64, u64), Failure> {
        let resp = self.open().await?;
        let mut dl = Download::new(&self.ctx.digest, resp.content_length());
        let _ = self.tx.send(State::Streaming {
            size: dl.size,
            avail: 0,
        });
        let mut body = resp.bytes_stream();
        loop {
            let step = dl.next(&mut body).await?;
            let (ended, idle) = (matches!(step, Step::End), matches!(step, Step::Idle));
            if let Step::Chunk(chunk) = step {
                self.take(&mut dl, chunk).await?;
            }
            dl.hash(ended).await?;
            self.publish(&mut dl, ended || idle);
            if ended {
                break;
            }
        }
        let n = dl.verify(&self.ctx.digest, &self.ctx.metrics).await?;
        Ok((n, dl.chunks))
    }

    /// One chunk from upstream: to the file (while it can be stored), to the readers' buffer,
    /// to the hasher.
    async fn take(&mut self, dl: &mut Download, chunk: Bytes) -> Result<(), Failure> {
        let len = chunk.len() as u64;
        if let Some(s) = dl.size {
            if dl.written + len > s {
                return Err(Failure::Corrupt(format!(
                    "upstream sent more than its Content-Length {s}"
                )));
            }
        }
        if let Some(sink) = &self.sink {
            if let Err(e) = sink.file.write_all_at(&chunk, dl.written) {
                self.stop_storing(&e, dl.size.unwrap_or(dl.written + len));
            }
        }
        lock(&self.buf).push(dl.written, chunk.clone());
        dl.written += len;
        dl.chunks += 1;
        self.ctx
            .metrics
            .upstream_bytes
            .fetch_add(len, Ordering::Relaxed);
        // `Bytes` share their buffer: no copy for the hasher.
        dl.to_hash_len += chunk.len();
        dl.to_hash.push(chunk);
        if self.sink.is_none() {
            self.hold_back().await?;
        }
        Ok(())
    }

    /// The file cannot be written: count and log it, make room where `--max-size` allows, go
    /// on in memory only.
    fn stop_storing(&mut self, e: &std::io::Error, need: u64) {
        let d = &self.ctx.digest;
        self.ctx.store.write_failed(&format!("blob {d}"), e);
        if WriteError::of(e) == WriteError::NoSpace {
            self.ctx.store.make_room(need);
        }
        let file = lock(&self.buf).drop_file();
        drop(file);
        if let Some(sink) = self.sink.take() {
            let _ = std::fs::remove_file(&sink.tmp);
        }
    }

    /// Not stored: while the buffer is full, wait for the slowest reader (detaching it after
    /// [`STALL`] without a move, unless it is as fast as every other); give up when every
    /// client left.
    async fn hold_back(&self) -> Result<(), Failure> {
        loop {
            {
                let b = lock(&self.buf);
                if b.readers.is_empty() {
                    return Err(Failure::Local(
                        "every client left a download that could not be stored".into(),
                    ));
                }
                if b.bytes <= MEM_BOUND {
                    return Ok(());
                }
            }
            if tokio::time::timeout(STALL, self.moved.notified())
                .await
                .is_err()
            {
                let mut b = lock(&self.buf);
                if !b.solo {
                    b.detach_slowest();
                }
            }
        }
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
        let mut r = Buffer {
            file: Some(Arc::new(tempfile::tempfile().unwrap())),
            ..Buffer::default()
        };
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

    /// A stored download whose file fails: readers behind the recent chunks are served from
    /// bytes read back from the file, those beyond [`MEM_BOUND`] are detached, and from then
    /// on chunks are kept until the slowest attached reader has them.
    #[test]
    fn memory_only_keeps_what_readers_need() {
        let mut f = tempfile::tempfile().unwrap();
        let mb = 1u64 << 20;
        let data: Vec<u8> = (0..12 * mb).map(|i| (i % 251) as u8).collect();
        std::io::Write::write_all(&mut f, &data).unwrap();
        let mut b = Buffer {
            file: Some(Arc::new(f)),
            ..Buffer::default()
        };
        let far = b.attach(0).unwrap(); // 12 MiB behind: beyond MEM_BOUND
        let behind = b.attach(6 * mb).unwrap(); // behind the recent 4 MiB, within MEM_BOUND
        let near = b.attach(11 * mb).unwrap();
        for i in 0..12 {
            let c = Bytes::copy_from_slice(&data[(i * mb) as usize..((i + 1) * mb) as usize]);
            b.push(i * mb, c);
        }
        assert_eq!(b.start(), 8 * mb);
        assert!(b.drop_file().is_some());
        assert!(!b.readers.contains_key(&far), "too far behind: detached");
        assert!(b.readers.contains_key(&behind) && b.readers.contains_key(&near));
        assert_eq!(b.start(), 6 * mb, "read back from the file");
        let s = b.slice(6 * mb + 7, 12 * mb).unwrap();
        assert_eq!(
            &s[..],
            &data[(6 * mb + 7) as usize..(6 * mb + 7) as usize + s.len()]
        );
        assert!(
            b.attach(0).is_none(),
            "a new reader from 0 cannot be served"
        );
        // Chunks stay until the slowest reader has them…
        b.push(12 * mb, Bytes::from(vec![0u8; mb as usize]));
        assert_eq!(b.start(), 6 * mb);
        b.advance(behind, 10 * mb);
        assert_eq!(b.start(), 10 * mb);
        // …and go once it is detached for being slow or leaves.
        b.detach_slowest();
        assert_eq!(b.start(), 11 * mb);
        b.detach_slowest();
        assert!(
            b.readers.contains_key(&near),
            "the last one is never let go"
        );
        b.detach(near);
        assert!(b.chunks.is_empty() && b.bytes == 0);
    }
}
