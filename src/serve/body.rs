//! Blob response bodies: `[start, end)` of a committed file, or of a [`Flight`] in progress
//! following its published length. Errors abort the response (the client sees a body cut
//! short, never a complete one of wrong bytes).
//!
//! A committed blob not yet read back since the start ([`BlobRead::verified`] false) is hashed
//! on its way to the first client that reads it whole; its last chunk goes out only when the
//! digest matched, and on a mismatch the response is aborted and the blob deleted.

use super::flight::{Flight, Next, Reader, State, CHUNK};
use super::metrics::Metrics;
use super::store::{BlobRead, Store};
use crate::oci::Verifier;
use bytes::Bytes;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::watch;

pub enum BodySource {
    File(BlobRead),
    Flight(Reader),
}

/// A body stream of `[start, end)` (`end` `None`: until the flight says the size).
pub fn body_stream(
    src: BodySource,
    start: u64,
    end: Option<u64>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
) -> impl futures_util::Stream<Item = Result<Bytes, io::Error>> + Send {
    let body = Body::new(src, start, end, store, metrics);
    futures_util::stream::unfold(Some(body), |body| async move {
        let mut body = body?;
        match body.next().await? {
            Ok(b) => Some((Ok(b), Some(body))),
            Err(e) => Some((Err(e), None)),
        }
    })
}

struct Body {
    origin: Origin,
    pos: u64,
    end: Option<u64>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
}

enum Origin {
    File {
        blob: BlobRead,
        file: File,
        /// Hashing a blob read whole for the first time since the start.
        verifier: Option<Box<Verifier>>,
    },
    Flight(FlightOrigin),
    /// The cache file could not be opened.
    Broken(Option<io::Error>),
}

impl Body {
    fn new(
        src: BodySource,
        start: u64,
        end: Option<u64>,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Body {
        let origin = match src {
            BodySource::File(blob) => match File::open(&blob.path) {
                Ok(file) => {
                    let whole = start == 0 && end.is_none_or(|e| e == blob.size);
                    let verifier =
                        (!blob.verified && whole).then(|| Box::new(blob.digest().verifier()));
                    Origin::File {
                        blob,
                        file,
                        verifier,
                    }
                }
                Err(e) => Origin::Broken(Some(e)),
            },
            BodySource::Flight(reader) => {
                reader.advance(start);
                Origin::Flight(FlightOrigin::new(reader))
            }
        };
        Body {
            origin,
            pos: start,
            end,
            store,
            metrics,
        }
    }

    async fn next(&mut self) -> Option<io::Result<Bytes>> {
        match &mut self.origin {
            Origin::Broken(e) => e.take().map(Err),
            Origin::File { .. } => self.next_from_file(),
            Origin::Flight(_) => self.next_from_flight().await,
        }
    }

    fn next_from_file(&mut self) -> Option<io::Result<Bytes>> {
        let Origin::File {
            blob,
            file,
            verifier,
        } = &mut self.origin
        else {
            return None;
        };
        let end = self.end.unwrap_or(blob.size).min(blob.size);
        if self.pos >= end {
            return None;
        }
        let buf = match read_chunk(file, self.pos, end) {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        let n = buf.len() as u64;
        if let Some(v) = verifier.as_mut() {
            v.update(&buf);
        }
        if self.pos + n == blob.size {
            if let Some(v) = verifier.take() {
                let d = blob.digest().clone();
                if v.finish() != d {
                    self.store.discard(&d, "does not hash to its digest");
                    return Some(Err(io::Error::other("cached blob corrupt")));
                }
                self.store.mark_verified(&d);
            }
        }
        self.pos += n;
        self.metrics.served_bytes.fetch_add(n, Ordering::Relaxed);
        Some(Ok(buf))
    }

    async fn next_from_flight(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            let Origin::Flight(f) = &mut self.origin else {
                return None;
            };
            let limit = match f.limit(self.pos, self.end).await {
                Ok(Some(l)) => l,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            let bytes = match f.reader.next(self.pos, limit) {
                Next::Bytes(b) => {
                    let n = b.len() as u64;
                    self.metrics
                        .served_memory_bytes
                        .fetch_add(n, Ordering::Relaxed);
                    b
                }
                // Read in place, on this worker thread: the bytes are in the page cache (just
                // written). Measured: a hand-off to the blocking pool per chunk costs a third of
                // the 32-way cold throughput and gains nothing for one reader, whose bytes come
                // from memory while it keeps up.
                Next::File(file) => match read_chunk(&file, self.pos, limit) {
                    Ok(b) => b,
                    Err(e) => return Some(Err(e)),
                },
                Next::Lost => {
                    // Not held any more (a download that cannot be stored, and this reader fell
                    // behind): a fetch of its own from here.
                    let solo = f.reader.flight().solo(self.pos);
                    self.origin = Origin::Flight(FlightOrigin::new(solo));
                    continue;
                }
            };
            self.pos += bytes.len() as u64;
            f.reader.advance(self.pos);
            self.metrics
                .served_bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            return Some(Ok(bytes));
        }
    }
}

/// Up to [`CHUNK`] bytes of `file` at `[pos, limit)`.
fn read_chunk(file: &File, pos: u64, limit: u64) -> io::Result<Bytes> {
    let want = usize::try_from(limit.saturating_sub(pos))
        .unwrap_or(CHUNK)
        .min(CHUNK);
    let mut buf = vec![0u8; want];
    let n = file.read_at(&mut buf, pos)?;
    if n == 0 {
        return Err(io::Error::other("cache file shorter than expected"));
    }
    buf.truncate(n);
    Ok(Bytes::from(buf))
}

struct FlightOrigin {
    reader: Reader,
    rx: watch::Receiver<State>,
}

impl FlightOrigin {
    fn new(reader: Reader) -> FlightOrigin {
        let rx = Flight::subscribe(reader.flight());
        FlightOrigin { reader, rx }
    }

    /// How far we may read from `pos` now (`None`: the end); waits until there is something new.
    async fn limit(&mut self, pos: u64, end: Option<u64>) -> io::Result<Option<u64>> {
        loop {
            if end.is_some_and(|e| pos >= e) {
                return Ok(None);
            }
            let st = self.rx.borrow_and_update().clone();
            match st {
                State::Done { size } => {
                    let limit = end.unwrap_or(size).min(size);
                    return Ok((pos < limit).then_some(limit));
                }
                State::Streaming { avail, .. } if avail > pos => {
                    return Ok(Some(end.map_or(avail, |e| e.min(avail))));
                }
                State::Failed(f) => return Err(io::Error::other(f.message())),
                State::Connecting | State::Streaming { .. } => {}
            }
            if self.rx.changed().await.is_err() {
                return Err(io::Error::other("download task ended"));
            }
        }
    }
}
