//! The HTTP front: routes, handlers, `Cache-Status`, OCI error bodies.

use super::flight::{body_stream, BodySource, Failure, Source, State};
use super::route::{self, ManifestRef, Target};
use super::upstream::Upstream;
use super::App;
use crate::oci::{error_body, media, Digest};
use axum::body::Body;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

pub const CACHE_STATUS: &str = "cache-status";
const API_VERSION: &str = "docker-distribution-api-version";
const CONTENT_DIGEST: &str = "docker-content-digest";
/// Largest manifest accepted from upstream (the spec's recommended limit).
const MAX_MANIFEST: usize = 4 << 20;

pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new()
        .route("/v2", axum::routing::any(ping))
        .route("/v2/", axum::routing::any(ping))
        .route("/v2/{*rest}", axum::routing::any(v2))
        .route("/metrics", axum::routing::get(metrics))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                "not a registry endpoint",
            )
        })
        .with_state(app)
}

async fn metrics(AxState(app): AxState<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// An OCI error response.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        error_body(&crate::oci::ErrorCode::parse(code), message, None),
    )
        .into_response()
}

fn with_cache_status(mut r: Response, cs: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cs) {
        r.headers_mut().insert(CACHE_STATUS, v);
    }
    r
}

async fn ping(AxState(app): AxState<Arc<App>>, method: Method) -> Response {
    app.metrics.request("ping", "local");
    if method != Method::GET && method != Method::HEAD {
        return not_allowed();
    }
    let mut r = (
        [(header::CONTENT_TYPE, "application/json")],
        if method == Method::HEAD { "" } else { "{}" },
    )
        .into_response();
    r.headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    r
}

fn not_allowed() -> Response {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "mirrorctl serve is a read-only pull-through cache: push and delete are not supported",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

async fn v2(
    AxState(app): AxState<Arc<App>>,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let target = match route::parse(&rest) {
        Ok(t) => t,
        Err((code, msg)) => {
            app.metrics.request("other", "invalid");
            let status = if code == "NAME_UNKNOWN" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            return error(status, code, &msg);
        }
    };
    let tags_get = matches!(target, Target::Tags { .. }) && method == Method::GET;
    if matches!(target, Target::Upload)
        || (!tags_get && method != Method::GET && method != Method::HEAD)
    {
        app.metrics.request("other", "refused");
        return not_allowed();
    }
    let up = match app.upstream_for(q.get("ns").map(String::as_str)) {
        Ok(u) => u,
        Err(msg) => {
            app.metrics.request("other", "no-upstream");
            return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", &msg);
        }
    };
    match target {
        Target::Manifest { repo, reference } => {
            manifest(&app, &up, &method, &repo, reference, &headers).await
        }
        Target::Blob { repo, digest } => blob(&app, &up, &method, &repo, digest, &headers).await,
        Target::Tags { repo } => tags(&app, &up, &repo, &q).await,
        Target::Upload => unreachable!(),
    }
}

/// Response headers shared by manifests and blobs.
fn content_headers(h: &mut HeaderMap, d: &Digest, content_type: &str) {
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    let ds = d.to_string();
    h.insert(CONTENT_DIGEST, HeaderValue::from_str(&ds).unwrap());
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{ds}\"")).unwrap(),
    );
}

// ---------------------------------------------------------------- upstream failures

/// What to tell a client when the upstream failed and nothing cached can answer.
fn upstream_failure(f: &Failure, what: &str) -> Response {
    match f {
        Failure::Status {
            status,
            content_type,
            body,
        } => {
            let mut r =
                if body.is_empty() || content_type.as_deref().is_none_or(|c| !c.contains("json")) {
                    let code = match *status {
                        StatusCode::NOT_FOUND => "NOT_FOUND",
                        StatusCode::TOO_MANY_REQUESTS => "TOOMANYREQUESTS",
                        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
                        StatusCode::FORBIDDEN => "DENIED",
                        _ => "UNKNOWN",
                    };
                    let code = if *status == StatusCode::NOT_FOUND {
                        if what.starts_with("blob") {
                            "BLOB_UNKNOWN"
                        } else {
                            "MANIFEST_UNKNOWN"
                        }
                    } else {
                        code
                    };
                    error(
                        *status,
                        code,
                        &format!("upstream answered {status} for {what}"),
                    )
                } else {
                    (
                        *status,
                        [(header::CONTENT_TYPE, "application/json")],
                        body.clone(),
                    )
                        .into_response()
                };
            let cs = format!("mirrorctl; fwd=uri-miss; fwd-status={}", status.as_u16());
            r = with_cache_status(r, &cs);
            r
        }
        Failure::Unreachable(msg) => with_cache_status(
            error(
                StatusCode::BAD_GATEWAY,
                "UNAVAILABLE",
                &format!("upstream registry unreachable and {what} is not cached: {msg}"),
            ),
            "mirrorctl; fwd=uri-miss; detail=upstream-unreachable",
        ),
        Failure::Corrupt(msg) => with_cache_status(
            error(
                StatusCode::BAD_GATEWAY,
                "DIGEST_INVALID",
                &format!("upstream sent bad content for {what}: {msg}"),
            ),
            "mirrorctl; fwd=uri-miss; detail=digest-mismatch",
        ),
        Failure::Local(msg) => {
            eprintln!("error: {what}: {msg}");
            with_cache_status(
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "cache storage error (see the server log)",
                ),
                "mirrorctl; fwd=uri-miss; detail=storage-error",
            )
        }
    }
}

async fn status_failure(resp: reqwest::Response) -> Failure {
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

/// Upstream statuses that justify serving a stale copy.
fn stale_worthy(s: StatusCode) -> bool {
    s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS
}

// ---------------------------------------------------------------- manifests

fn manifest_response(
    method: &Method,
    d: &Digest,
    content_type: &str,
    body: Bytes,
    cache_status: &str,
) -> Response {
    let len = body.len();
    let mut r = if method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(body))
    };
    content_headers(r.headers_mut(), d, content_type);
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    with_cache_status(r, cache_status)
}

fn accept_of(headers: &HeaderMap) -> HeaderValue {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ")
        .parse()
        .ok()
        .filter(|v: &HeaderValue| !v.is_empty())
        .unwrap_or_else(|| HeaderValue::from_str(&media::accept_header()).unwrap())
}

/// Whether the client's `Accept` allows `content_type` (no `Accept` allows anything).
fn accepts(headers: &HeaderMap, content_type: &str) -> bool {
    let want = media::base(content_type);
    let mut any = false;
    for v in headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for item in v.split(',') {
            any = true;
            let b = media::base(item);
            if b == want || b == "*/*" || b.is_empty() {
                return true;
            }
        }
    }
    !any
}

/// GET a manifest from upstream and check it: (digest, content type, bytes).
async fn fetch_manifest(
    app: &App,
    up: &Upstream,
    repo: &str,
    reference: &ManifestRef,
    accept: &HeaderValue,
) -> Result<(Digest, String, Bytes), Failure> {
    let mut h = HeaderMap::new();
    h.insert(header::ACCEPT, accept.clone());
    let resp = up
        .send(
            Method::GET,
            &format!("/v2/{repo}/manifests/{reference}"),
            h,
            "manifest",
        )
        .await
        .map_err(|e| Failure::Unreachable(e.0))?;
    if resp.status() != StatusCode::OK {
        return Err(status_failure(resp).await);
    }
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(media::OCI_MANIFEST)
        .to_string();
    let claimed: Option<Digest> = resp
        .headers()
        .get(CONTENT_DIGEST)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok());
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_MANIFEST as u64)
    {
        return Err(Failure::Corrupt(format!(
            "manifest larger than {MAX_MANIFEST} bytes"
        )));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| Failure::Unreachable(format!("reading manifest: {e}")))?;
    if body.len() > MAX_MANIFEST {
        return Err(Failure::Corrupt(format!(
            "manifest larger than {MAX_MANIFEST} bytes"
        )));
    }
    app.metrics
        .upstream_bytes
        .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let expected = match reference {
        ManifestRef::Digest(d) => Some(d.clone()),
        ManifestRef::Tag(_) => claimed,
    };
    let digest = match expected {
        Some(d) => {
            let got = d.of_same_algorithm(&body);
            if got != d {
                app.metrics
                    .digest_mismatches
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                eprintln!("error: manifest {repo}:{reference} from {}: bytes hash to {got}, not {d}; discarded", up.registry);
                return Err(Failure::Corrupt(format!("bytes hash to {got}, not {d}")));
            }
            d
        }
        None => Digest::sha256_of(&body),
    };
    app.store
        .put_manifest(&digest, &ct, &body)
        .map_err(|e| Failure::Local(format!("{e:#}")))?;
    Ok((digest, ct, body))
}

async fn manifest(
    app: &App,
    up: &Upstream,
    method: &Method,
    repo: &str,
    reference: ManifestRef,
    headers: &HeaderMap,
) -> Response {
    let accept = accept_of(headers);
    let what = format!("manifest {repo}:{reference}");
    let tag = match &reference {
        ManifestRef::Digest(d) => {
            if let Some((ct, body)) = app.store.manifest(d) {
                app.metrics.request("manifest", "hit");
                return manifest_response(method, d, &ct, body, "mirrorctl; hit");
            }
            return match fetch_manifest(app, up, repo, &reference, &accept).await {
                Ok((d, ct, body)) => {
                    app.metrics.request("manifest", "miss");
                    manifest_response(method, &d, &ct, body, "mirrorctl; fwd=uri-miss; stored")
                }
                Err(f) => {
                    app.metrics.request("manifest", "error");
                    upstream_failure(&f, &what)
                }
            };
        }
        ManifestRef::Tag(t) => t.clone(),
    };

    let key = format!("{}/{repo}:{tag}", up.registry);
    let ttl = app.tag_ttl;
    let known = app.tags.get(&key);
    // A cached manifest of a type this client does not accept is no use to it: ask upstream
    // (which may have another representation) and leave the cached tag alone.
    let cached = known
        .as_ref()
        .and_then(|(d, _)| app.store.manifest(d).map(|(ct, b)| (d.clone(), ct, b)));
    if let Some((_, ct, _)) = &cached {
        if !accepts(headers, ct) {
            return match fetch_manifest(app, up, repo, &reference, &accept).await {
                Ok((d, ct, body)) => {
                    app.metrics.request("manifest", "miss");
                    manifest_response(method, &d, &ct, body, "mirrorctl; fwd=uri-miss; stored")
                }
                Err(f) => {
                    app.metrics.request("manifest", "error");
                    upstream_failure(&f, &what)
                }
            };
        }
    }
    if let (Some((_, Some(checked))), Some((d, ct, body))) = (&known, &cached) {
        let age = checked.elapsed();
        if age < ttl {
            app.metrics.request("manifest", "hit");
            let cs = format!("mirrorctl; hit; ttl={}", (ttl - age).as_secs());
            return manifest_response(method, d, ct, body.clone(), &cs);
        }
    }
    let ttl_s = ttl.as_secs();
    // Known but expired: revalidate with HEAD (free against pull limits), GET only on change.
    let mut stale_status: Option<Result<StatusCode, String>> = None;
    if let Some((d, ct, body)) = &cached {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, accept.clone());
        match up
            .send(
                Method::HEAD,
                &format!("/v2/{repo}/manifests/{tag}"),
                h,
                "manifest",
            )
            .await
        {
            Ok(resp) if resp.status() == StatusCode::OK => {
                let now: Option<Digest> = resp
                    .headers()
                    .get(CONTENT_DIGEST)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.parse().ok());
                if now.as_ref() == Some(d) {
                    app.tags.set(&key, d, Some(Instant::now()));
                    app.metrics.request("manifest", "revalidated");
                    let cs = format!("mirrorctl; fwd=stale; fwd-status=200; ttl={ttl_s}");
                    return manifest_response(method, d, ct, body.clone(), &cs);
                }
                // Changed (or no digest given): fall through to GET.
            }
            Ok(resp) if stale_worthy(resp.status()) => stale_status = Some(Ok(resp.status())),
            Ok(resp) => {
                // 404 and friends: the tag is gone upstream; say so.
                app.metrics.request("manifest", "error");
                return upstream_failure(&status_failure(resp).await, &what);
            }
            Err(e) => stale_status = Some(Err(e.0)),
        }
        if let Some(s) = stale_status {
            app.metrics.request("manifest", "stale");
            let why = match &s {
                Ok(st) => format!("answered {st}"),
                Err(e) => format!("is unreachable ({e})"),
            };
            eprintln!(
                "warning: upstream {} {why}; serving the last known {what} ({d}, stale)",
                up.registry
            );
            let cs = match s {
                Ok(st) => format!("mirrorctl; fwd=stale; fwd-status={}", st.as_u16()),
                Err(_) => "mirrorctl; fwd=stale; detail=upstream-unreachable".to_string(),
            };
            return manifest_response(method, d, ct, body.clone(), &cs);
        }
    }
    match fetch_manifest(app, up, repo, &ManifestRef::Tag(tag.clone()), &accept).await {
        Ok((d, ct, body)) => {
            app.tags.set(&key, &d, Some(Instant::now()));
            app.metrics.request("manifest", "miss");
            let cs = format!("mirrorctl; fwd=uri-miss; stored; ttl={ttl_s}");
            manifest_response(method, &d, &ct, body, &cs)
        }
        Err(f) => {
            // Upstream failed on the GET: the last known copy is still better than nothing.
            let worthy = match &f {
                Failure::Unreachable(_) => true,
                Failure::Status { status, .. } => stale_worthy(*status),
                _ => false,
            };
            if let (true, Some((d, ct, body))) = (worthy, cached) {
                app.metrics.request("manifest", "stale");
                let why = match &f {
                    Failure::Status { status, .. } => format!("answered {status}"),
                    Failure::Unreachable(e) => format!("is unreachable ({e})"),
                    _ => "failed".to_string(),
                };
                eprintln!(
                    "warning: upstream {} {why}; serving the last known {what} ({d}, stale)",
                    up.registry
                );
                let cs = match &f {
                    Failure::Status { status, .. } => {
                        format!("mirrorctl; fwd=stale; fwd-status={}", status.as_u16())
                    }
                    _ => "mirrorctl; fwd=stale; detail=upstream-unreachable".to_string(),
                };
                return manifest_response(method, &d, &ct, body, &cs);
            }
            app.metrics.request("manifest", "error");
            upstream_failure(&f, &what)
        }
    }
}

// ---------------------------------------------------------------- blobs

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
fn sized_blob_response(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    d: &Digest,
    size: u64,
    src: BodySource,
    cs: &str,
) -> Response {
    let range_h = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match route::range(range_h, size) {
        Ok(None) => (StatusCode::OK, 0, size),
        Ok(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Err(route::Unsatisfiable) => {
            let mut r = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RANGE_INVALID",
                &format!("range not satisfiable for a blob of {size} bytes"),
            );
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).unwrap(),
            );
            return with_cache_status(r, cs);
        }
    };
    let mut r = if method == Method::HEAD || start == end {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from_stream(body_stream(
            src,
            start,
            Some(end),
            app.metrics.clone(),
        )))
    };
    *r.status_mut() = status;
    blob_headers(&mut r, d);
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        r.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1)).unwrap(),
        );
    }
    with_cache_status(r, cs)
}

async fn blob(
    app: &Arc<App>,
    up: &Arc<Upstream>,
    method: &Method,
    repo: &str,
    d: Digest,
    headers: &HeaderMap,
) -> Response {
    let what = format!("blob {d}");
    // HEAD of a blob neither stored nor downloading: ask upstream with HEAD, download nothing.
    // Otherwise HEAD is answered like GET below, without the body.
    let unknown = || app.store.lookup(&d).is_none() && app.flights.in_flight(&d).is_none();
    if method == Method::HEAD && unknown() {
        return match up
            .send(
                Method::HEAD,
                &format!("/v2/{repo}/blobs/{d}"),
                HeaderMap::new(),
                "blob",
            )
            .await
        {
            Ok(resp) if resp.status() == StatusCode::OK => {
                app.metrics.request("blob", "miss");
                let mut r = Response::new(Body::empty());
                blob_headers(&mut r, &d);
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
                with_cache_status(r, "mirrorctl; fwd=uri-miss")
            }
            Ok(resp) => {
                app.metrics.request("blob", "error");
                upstream_failure(&status_failure(resp).await, &what)
            }
            Err(e) => {
                app.metrics.request("blob", "error");
                upstream_failure(&Failure::Unreachable(e.0), &what)
            }
        };
    }
    let src = match app.flights.get(&app.store, &app.metrics, up, repo, &d) {
        Ok(s) => s,
        Err(msg) => return upstream_failure(&Failure::Local(msg), &what),
    };
    let (flight, started) = match src {
        Source::Hit(r) => {
            app.metrics.request("blob", "hit");
            let size = r.size;
            return sized_blob_response(
                app,
                method,
                headers,
                &d,
                size,
                BodySource::File(r),
                "mirrorctl; hit",
            );
        }
        Source::Flight { flight, started } => (flight, started),
    };
    let cs = if started {
        "mirrorctl; fwd=uri-miss; stored"
    } else {
        "mirrorctl; fwd=uri-miss; collapsed"
    };
    app.metrics
        .request("blob", if started { "miss" } else { "collapsed" });
    // Wait for the upstream's answer to know the size (or the failure).
    let mut rx = flight.subscribe();
    let size = loop {
        let st = rx.borrow_and_update().clone();
        match st {
            State::Connecting => {}
            State::Streaming { size, .. } => break size,
            State::Done { size } => break Some(size),
            State::Failed(f) => return upstream_failure(&f, &what),
        }
        if rx.changed().await.is_err() {
            return upstream_failure(&Failure::Local("download task ended".into()), &what);
        }
    };
    match size {
        Some(size) => sized_blob_response(
            app,
            method,
            headers,
            &d,
            size,
            BodySource::Flight(flight),
            cs,
        ),
        None => {
            // Upstream sent no length: stream chunked; a failure aborts the body.
            let mut r = if method == Method::HEAD {
                Response::new(Body::empty())
            } else {
                Response::new(Body::from_stream(body_stream(
                    BodySource::Flight(flight),
                    0,
                    None,
                    app.metrics.clone(),
                )))
            };
            blob_headers(&mut r, &d);
            with_cache_status(r, cs)
        }
    }
}

// ---------------------------------------------------------------- tags

async fn tags(app: &App, up: &Upstream, repo: &str, q: &HashMap<String, String>) -> Response {
    app.metrics.request("tags", "pass");
    let mut path = format!("/v2/{repo}/tags/list");
    let mut params: Vec<String> = Vec::new();
    for k in ["n", "last"] {
        if let Some(v) = q.get(k) {
            let enc: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            params.push(format!("{k}={enc}"));
        }
    }
    if !params.is_empty() {
        path.push('?');
        path.push_str(&params.join("&"));
    }
    match up.send(Method::GET, &path, HeaderMap::new(), "tags").await {
        Ok(resp) => {
            let status = resp.status();
            let ct = resp.headers().get(header::CONTENT_TYPE).cloned();
            let link = resp.headers().get(header::LINK).cloned();
            let body = resp.bytes().await.unwrap_or_default();
            let mut r = (status, body).into_response();
            if let Some(ct) = ct {
                r.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            if let Some(l) = link {
                r.headers_mut().insert(header::LINK, l);
            }
            with_cache_status(
                r,
                &format!("mirrorctl; fwd=bypass; fwd-status={}", status.as_u16()),
            )
        }
        Err(e) => upstream_failure(&Failure::Unreachable(e.0), &format!("tags of {repo}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_matching() {
        let mut h = HeaderMap::new();
        assert!(accepts(&h, media::OCI_MANIFEST), "no Accept takes anything");
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(media::DOCKER_MANIFEST),
        );
        assert!(!accepts(&h, media::OCI_MANIFEST));
        assert!(accepts(
            &h,
            "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"
        ));
        h.append(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.oci.image.manifest.v1+json;q=0.5"),
        );
        assert!(accepts(&h, media::OCI_MANIFEST));
        let mut star = HeaderMap::new();
        star.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(accepts(&star, media::OCI_INDEX));
    }
}
