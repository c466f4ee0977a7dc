//! Blobs: a hit from the store, or a reader of the one download ([`super::flight`]) per
//! digest; `Range` on either; HEAD of an unknown blob asks upstream with HEAD and downloads
//! nothing.

use super::body::{body_stream, BodySource};
use super::flight::{Failure, Joined, Reader, Source, State};
use super::http::{content_headers, error, hit, miss, upstream_failure, with_cache_status};
use super::route;
use super::store::BlobRead;
use super::upstream::Upstream;
use super::App;
use crate::oci::{CacheStatus, Digest, ErrorCode};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use std::sync::Arc;

pub async fn blob(
    app: &Arc<App>,
    up: &Arc<Upstream>,
    method: &Method,
    repo: &str,
    d: Digest,
    headers: &HeaderMap,
) -> Response {
    let what = format!("blob {d}");
    // HEAD of a blob neither stored nor being downloaded into the store: ask upstream with
    // HEAD, download nothing (a download that cannot be stored may no longer hold the blob's
    // start, and a fetch of its own for a HEAD would be a waste). Otherwise HEAD is answered
    // like GET below, without the body.
    let unknown =
        || app.store.lookup(&d).is_none() && app.flights.in_flight(&d).is_none_or(|f| !f.storing());
    if method == Method::HEAD && unknown() {
        return head_upstream(app, up, repo, &d, &what).await;
    }
    let mut src = app.flights.get(&app.store, &app.metrics, up, repo, &d);
    if let Source::Hit(r) = &mut src {
        let ranged = method == Method::GET && headers.contains_key(header::RANGE);
        if !r.verified && ranged && !verify_whole(app, r).await {
            // Deleted: fetch it again.
            src = app.flights.get(&app.store, &app.metrics, up, repo, &d);
        }
    }
    match src {
        Source::Hit(r) => {
            app.metrics.request("blob", "hit");
            let size = r.size;
            sized(app, method, headers, &d, size, BodySource::File(r), &hit())
        }
        Source::Flight { reader, joined } => {
            from_flight(app, method, headers, &d, reader, joined, &what).await
        }
    }
}

/// A blob found at start and not yet read back, asked for with a `Range`: the range alone
/// cannot be checked, so hash the whole file first. False when it was corrupt (and deleted).
async fn verify_whole(app: &App, r: &mut BlobRead) -> bool {
    let (path, d) = (r.path.clone(), r.digest().clone());
    let (p, dd) = (path.clone(), d.clone());
    let check = tokio::task::spawn_blocking(move || super::store::hashes_to(&p, &dd))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    match check {
        Ok(true) => {
            app.store.mark_verified(&d);
            r.verified = true;
            true
        }
        Ok(false) => {
            app.store.discard(&d, "does not hash to its digest");
            false
        }
        Err(e) => {
            app.store.discard(
                &d,
                &format!("cannot be read back (`{}`: {e})", path.display()),
            );
            false
        }
    }
}

async fn head_upstream(app: &App, up: &Upstream, repo: &str, d: &Digest, what: &str) -> Response {
    let path = format!("/v2/{repo}/blobs/{d}");
    match up.send(Method::HEAD, &path, HeaderMap::new(), "blob").await {
        Ok(resp) if resp.status() == StatusCode::OK => {
            app.metrics.request("blob", "miss");
            let mut r = Response::new(Body::empty());
            blob_headers(&mut r, d);
            // Not `content_length()`: for a HEAD that is the (empty) body's length.
            let n = resp
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(n) = n {
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            }
            with_cache_status(r, &miss())
        }
        Ok(resp) => {
            app.metrics.request("blob", "error");
            upstream_failure(&Failure::from_response(resp).await, what)
        }
        Err(e) => {
            app.metrics.request("blob", "error");
            upstream_failure(&Failure::Unreachable(e.0), what)
        }
    }
}

/// A reader of a download: wait for the upstream's answer to know the size (or the failure).
async fn from_flight(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    d: &Digest,
    reader: Reader,
    joined: Joined,
    what: &str,
) -> Response {
    app.metrics.request(
        "blob",
        if joined == Joined::Collapsed {
            "collapsed"
        } else {
            "miss"
        },
    );
    let mut rx = reader.flight().subscribe();
    let size = loop {
        let st = rx.borrow_and_update().clone();
        match st {
            State::Connecting => {}
            State::Streaming { size, .. } => break size,
            State::Done { size } => break Some(size),
            State::Failed(f) => return upstream_failure(&f, what),
        }
        if rx.changed().await.is_err() {
            return upstream_failure(&Failure::Local("download task ended".into()), what);
        }
    };
    let cs = match joined {
        Joined::Started if reader.flight().storing() => miss().stored(),
        Joined::Started | Joined::Solo => miss(),
        Joined::Collapsed => miss().collapsed(),
    };
    let src = BodySource::Flight(reader);
    if let Some(size) = size {
        return sized(app, method, headers, d, size, src, &cs);
    }
    // Upstream sent no length: stream chunked; a failure aborts the body.
    let mut r = if method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        let stream = body_stream(src, 0, None, app.store.clone(), app.metrics.clone());
        Response::new(Body::from_stream(stream))
    };
    blob_headers(&mut r, d);
    with_cache_status(r, &cs)
}

fn blob_headers(r: &mut Response, d: &Digest) {
    content_headers(r.headers_mut(), d, "application/octet-stream");
    let h = r.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=31536000"),
    );
}

/// A 200/206/416 response for a blob of known `size` from `src`.
fn sized(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    d: &Digest,
    size: u64,
    src: BodySource,
    cs: &CacheStatus,
) -> Response {
    let range_h = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match route::range(range_h, size) {
        Ok(None) => (StatusCode::OK, 0, size),
        Ok(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Err(route::Unsatisfiable) => {
            let mut r = error(
                &ErrorCode::RangeInvalid,
                &format!("range not satisfiable for a blob of {size} bytes"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return with_cache_status(r, cs);
        }
    };
    let mut r = if method == Method::HEAD || start == end {
        Response::new(Body::empty())
    } else {
        let (store, metrics) = (app.store.clone(), app.metrics.clone());
        Response::new(Body::from_stream(body_stream(
            src,
            start,
            Some(end),
            store,
            metrics,
        )))
    };
    *r.status_mut() = status;
    blob_headers(&mut r, d);
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        let v = format!("bytes {start}-{}/{size}", end.saturating_sub(1));
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    with_cache_status(r, cs)
}
