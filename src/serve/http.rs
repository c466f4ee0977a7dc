//! The HTTP front: routes, dispatch to [`super::manifest`] and [`super::blob`], tags,
//! `Cache-Status` values and OCI error responses.

use super::flight::Failure;
use super::route::{self, Target};
use super::App;
use crate::oci::cache_status::{DIGEST_MISMATCH, STORAGE_ERROR};
use crate::oci::{error_body, CacheStatus, Digest, ErrorCode, Fwd};
use crate::registry::UPSTREAM_UNREACHABLE;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

pub const CACHE_STATUS: &str = "cache-status";
pub const API_VERSION: &str = "docker-distribution-api-version";
pub const CONTENT_DIGEST: &str = "docker-content-digest";
/// This cache's name in `Cache-Status`.
const CACHE_NAME: &str = "mirrorctl";

/// `mirrorctl; hit`.
pub fn hit() -> CacheStatus {
    CacheStatus::hit(CACHE_NAME)
}

/// `mirrorctl; fwd=uri-miss`.
pub fn miss() -> CacheStatus {
    CacheStatus::forwarded(CACHE_NAME, Fwd::UriMiss)
}

/// `mirrorctl; fwd=stale`.
pub fn stale() -> CacheStatus {
    CacheStatus::forwarded(CACHE_NAME, Fwd::Stale)
}

pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new()
        .route("/v2", axum::routing::any(ping))
        .route("/v2/", axum::routing::any(ping))
        .route("/v2/{*rest}", axum::routing::any(v2))
        .route("/metrics", axum::routing::get(metrics))
        .fallback(|| async { error(&ErrorCode::NameUnknown, "not a registry endpoint") })
        .with_state(app)
}

async fn metrics(AxState(app): AxState<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// An OCI error response, with the HTTP status that goes with `code`.
pub fn error(code: &ErrorCode, message: &str) -> Response {
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_with_status(status, code, message)
}

/// An OCI error response with another status than `code`'s own (an upstream's, passed on).
pub fn error_with_status(status: StatusCode, code: &ErrorCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        error_body(code, message, None),
    )
        .into_response()
}

pub fn with_cache_status(mut r: Response, cs: &CacheStatus) -> Response {
    if let Ok(v) = HeaderValue::from_str(&cs.to_string()) {
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
    with_budget(r, &app, &app.default.registry)
}

fn not_allowed() -> Response {
    let mut r = error(
        &ErrorCode::Unsupported,
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
            return error(&code, &msg);
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
            return error(&ErrorCode::NameUnknown, &msg);
        }
    };
    match target {
        Target::Manifest { repo, reference } => {
            super::manifest::manifest(&app, &up, &method, &repo, reference, &headers).await
        }
        Target::Blob { repo, digest } => {
            super::blob::blob(&app, &up, &method, &repo, digest, &headers).await
        }
        Target::Tags { repo } => tags(&app, &up, &repo, &q).await,
        Target::Upload => not_allowed(),
    }
}

/// Response headers shared by manifests and blobs.
pub fn content_headers(h: &mut HeaderMap, d: &Digest, content_type: &str) {
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    let ds = d.to_string();
    if let Ok(v) = HeaderValue::from_str(&ds) {
        h.insert(CONTENT_DIGEST, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{ds}\"")) {
        h.insert(header::ETAG, v);
    }
}

// ---------------------------------------------------------------- upstream failures

/// What to tell a client when the upstream failed and nothing cached can answer.
pub fn upstream_failure(f: &Failure, what: &str) -> Response {
    match f {
        Failure::Status {
            limited: Some(l), ..
        } => rate_limited(l, f, what),
        Failure::Status {
            status,
            content_type,
            body,
            ..
        } => {
            let passed_on =
                !body.is_empty() && content_type.as_deref().is_some_and(|c| c.contains("json"));
            let r = if passed_on {
                let ct = [(header::CONTENT_TYPE, "application/json")];
                (*status, ct, body.clone()).into_response()
            } else {
                let code = code_for_upstream_status(*status, what.starts_with("blob"));
                let msg = format!("upstream answered {status} for {what}");
                error_with_status(*status, &code, &msg)
            };
            with_cache_status(r, &miss().with_fwd_status(status.as_u16()))
        }
        Failure::Unreachable(msg) => with_cache_status(
            error(
                &ErrorCode::Unavailable,
                &format!("upstream registry unreachable and {what} is not cached: {msg}"),
            ),
            &miss().with_detail(UPSTREAM_UNREACHABLE),
        ),
        Failure::Corrupt(msg) => with_cache_status(
            error_with_status(
                StatusCode::BAD_GATEWAY,
                &ErrorCode::DigestInvalid,
                &format!("upstream sent bad content for {what}: {msg}"),
            ),
            &miss().with_detail(DIGEST_MISMATCH),
        ),
        Failure::Local(msg) => {
            crate::diag::error(&format!("{what}: {msg}"));
            with_cache_status(
                error(
                    &ErrorCode::Unknown,
                    "cache storage error (see the server log)",
                ),
                &miss().with_detail(STORAGE_ERROR),
            )
        }
    }
}

/// The upstream's rate limit is reached and `what` is not cached: a `TOOMANYREQUESTS` error
/// that says so (with the upstream's own message and `Retry-After`).
fn rate_limited(l: &super::flight::Limited, f: &Failure, what: &str) -> Response {
    let said = match f {
        Failure::Status { body, .. } => crate::oci::parse_error_body(body)
            .map(|(c, m)| format!(" ({c}: {m})"))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let budget = l
        .remaining
        .as_deref()
        .map(|r| format!(", ratelimit-remaining {r}"))
        .unwrap_or_default();
    let wait = l
        .retry_after
        .as_deref()
        .map(|r| format!(" (Retry-After: {r} s)"))
        .unwrap_or_default();
    let msg = format!(
        "the rate limit of upstream {} is reached: it answered 429 Too Many Requests for {what}{said}{budget}, and this mirror has no cached copy; cached images are still served; wait{wait}, or give the mirror upstream credentials for a higher limit",
        l.upstream
    );
    let mut r = error_with_status(
        StatusCode::TOO_MANY_REQUESTS,
        &ErrorCode::TooManyRequests,
        &msg,
    );
    if let Some(v) = l
        .retry_after
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    with_cache_status(r, &miss().with_fwd_status(429))
}

/// The last pull budget `upstream` reported, passed on (`verify` prints it).
pub fn with_budget(mut r: Response, app: &App, upstream: &str) -> Response {
    for (k, v) in app.metrics.ratelimits.headers_for(upstream) {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

/// The OCI code for an upstream status that came without a JSON error body.
fn code_for_upstream_status(status: StatusCode, blob: bool) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND if blob => ErrorCode::BlobUnknown,
        StatusCode::NOT_FOUND => ErrorCode::ManifestUnknown,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::TooManyRequests,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Denied,
        _ => ErrorCode::Unknown,
    }
}

// ---------------------------------------------------------------- tags

async fn tags(
    app: &App,
    up: &super::upstream::Upstream,
    repo: &str,
    q: &HashMap<String, String>,
) -> Response {
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
            let cs =
                CacheStatus::forwarded(CACHE_NAME, Fwd::Bypass).with_fwd_status(status.as_u16());
            with_cache_status(r, &cs)
        }
        Err(e) => upstream_failure(&Failure::Unreachable(e.0), &format!("tags of {repo}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_take_the_status_of_their_code() {
        assert_eq!(error(&ErrorCode::NameUnknown, "x").status(), 404);
        assert_eq!(error(&ErrorCode::NameInvalid, "x").status(), 400);
        assert_eq!(error(&ErrorCode::Unsupported, "x").status(), 405);
        assert_eq!(error(&ErrorCode::RangeInvalid, "x").status(), 416);
        let r = upstream_failure(&Failure::Corrupt("bad".into()), "blob x");
        assert_eq!(r.status(), 502);
        assert_eq!(
            r.headers()[CACHE_STATUS],
            "mirrorctl; fwd=uri-miss; detail=digest-mismatch"
        );
        let r = upstream_failure(&Failure::Unreachable("down".into()), "blob x");
        assert_eq!(
            r.headers()[CACHE_STATUS],
            "mirrorctl; fwd=uri-miss; detail=upstream-unreachable"
        );
        let f = Failure::Status {
            status: StatusCode::NOT_FOUND,
            content_type: None,
            body: bytes::Bytes::new(),
            limited: None,
        };
        let r = upstream_failure(&f, "blob x");
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.headers()[CACHE_STATUS],
            "mirrorctl; fwd=uri-miss; fwd-status=404"
        );
    }
}
