//! Manifests: by digest (immutable, cached for good) or by tag (fresh for `--tag-ttl`, then
//! revalidated with a HEAD, which is free against pull limits, and served stale when the
//! upstream fails). What to answer is decided once ([`decide`] → an [`Outcome`]) and rendered
//! once ([`respond`]).

use super::flight::Failure;
use super::http::CONTENT_DIGEST;
use super::http::{
    content_headers, hit, miss, stale, upstream_failure, with_budget, with_cache_status,
};
use super::route::ManifestRef;
use super::upstream::Upstream;
use super::App;
use crate::oci::{media, CacheStatus, Digest};
use crate::registry::UPSTREAM_UNREACHABLE;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Largest manifest accepted from upstream (the spec's recommended limit).
const MAX_MANIFEST: usize = 4 << 20;

/// A manifest's bytes, checked against its digest.
pub struct Manifest {
    digest: Digest,
    content_type: String,
    body: Bytes,
}

/// How a manifest request was answered.
enum Outcome {
    /// From the cache without asking upstream; `ttl_left`: seconds of freshness left (a tag).
    Hit { ttl_left: Option<u64> },
    /// A tag past its TTL, confirmed unchanged by upstream (fresh for `ttl` seconds again).
    Revalidated { ttl: u64 },
    /// The upstream failed: the last known copy of the tag.
    Stale(Why),
    /// Fetched from upstream and stored; `ttl` for a tag.
    Miss { ttl: Option<u64> },
}

/// Why a stale copy was served.
enum Why {
    Status(StatusCode),
    Unreachable(String),
}

impl Why {
    /// Whether an upstream failure justifies serving a stale copy: server errors, 429, no answer.
    fn of(f: &Failure) -> Option<Why> {
        match f {
            Failure::Unreachable(e) => Some(Why::Unreachable(e.clone())),
            Failure::Status { status, .. } if stale_worthy(*status) => Some(Why::Status(*status)),
            _ => None,
        }
    }
}

fn stale_worthy(s: StatusCode) -> bool {
    s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS
}

impl Outcome {
    /// The `cache` label of `mirrorctl_requests_total`.
    fn label(&self) -> &'static str {
        match self {
            Outcome::Hit { .. } => "hit",
            Outcome::Revalidated { .. } => "revalidated",
            Outcome::Stale(_) => "stale",
            Outcome::Miss { .. } => "miss",
        }
    }

    fn cache_status(&self) -> CacheStatus {
        match self {
            Outcome::Hit { ttl_left: None } => hit(),
            Outcome::Hit { ttl_left: Some(t) } => hit().with_ttl(*t),
            Outcome::Revalidated { ttl } => stale().with_fwd_status(200).with_ttl(*ttl),
            Outcome::Stale(Why::Status(s)) => stale().with_fwd_status(s.as_u16()),
            Outcome::Stale(Why::Unreachable(_)) => stale().with_detail(UPSTREAM_UNREACHABLE),
            Outcome::Miss { ttl: None } => miss().stored(),
            Outcome::Miss { ttl: Some(t) } => miss().stored().with_ttl(*t),
        }
    }
}

pub async fn manifest(
    app: &App,
    up: &Upstream,
    method: &Method,
    repo: &str,
    reference: ManifestRef,
    headers: &HeaderMap,
) -> Response {
    let what = format!("manifest {repo}:{reference}");
    match decide(app, up, repo, &reference, headers).await {
        Ok((outcome, m)) => {
            app.metrics.request("manifest", outcome.label());
            if let Outcome::Stale(why) = &outcome {
                let why = match why {
                    Why::Status(st) => format!("answered {st}"),
                    Why::Unreachable(e) => format!("is unreachable ({e})"),
                };
                crate::diag::warn(&format!(
                    "upstream {} {why}; serving the last known {what} ({}, stale)",
                    up.registry, m.digest
                ));
            }
            with_budget(
                respond(method, &m, &outcome.cache_status()),
                app,
                &up.registry,
            )
        }
        Err(f) => {
            app.metrics.request("manifest", "error");
            with_budget(upstream_failure(&f, &what), app, &up.registry)
        }
    }
}

fn respond(method: &Method, m: &Manifest, cs: &CacheStatus) -> Response {
    let mut r = if method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(m.body.clone()))
    };
    content_headers(r.headers_mut(), &m.digest, &m.content_type);
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(m.body.len()));
    with_cache_status(r, cs)
}

fn cached(app: &App, d: &Digest) -> Option<Manifest> {
    app.store.manifest(d).map(|(content_type, body)| Manifest {
        digest: d.clone(),
        content_type,
        body,
    })
}

/// What to answer: a digest from the cache or upstream; a tag fresh from the cache, else
/// revalidated, refetched, or stale when the upstream fails.
async fn decide(
    app: &App,
    up: &Upstream,
    repo: &str,
    reference: &ManifestRef,
    headers: &HeaderMap,
) -> Result<(Outcome, Manifest), Failure> {
    let accept = accept_of(headers);
    let tag = match reference {
        ManifestRef::Digest(d) => {
            if let Some(m) = cached(app, d) {
                return Ok((Outcome::Hit { ttl_left: None }, m));
            }
            let m = fetch_manifest(app, up, repo, reference, &accept).await?;
            return Ok((Outcome::Miss { ttl: None }, m));
        }
        ManifestRef::Tag(t) => t,
    };
    let tag = Tag {
        key: format!("{}/{repo}:{tag}", up.registry),
        repo,
        name: tag,
        accept,
    };
    let known = app.tags.get(&tag.key);
    let Some(c) = known.as_ref().and_then(|(d, _)| cached(app, d)) else {
        return tag.fetch(app, up, None).await;
    };
    // A cached manifest of a type this client does not accept is no use to it: ask upstream
    // (which may have another representation) and leave the cached tag alone.
    if !accepts(headers, &c.content_type) {
        let m = fetch_manifest(app, up, repo, reference, &tag.accept).await?;
        return Ok((Outcome::Miss { ttl: None }, m));
    }
    let ttl = app.tag_ttl;
    if let Some((_, Some(checked))) = &known {
        let age = checked.elapsed();
        if age < ttl {
            let ttl_left = Some((ttl - age).as_secs());
            return Ok((Outcome::Hit { ttl_left }, c));
        }
    }
    tag.revalidate(app, up, c).await
}

/// A manifest request by tag.
struct Tag<'a> {
    /// `<registry>/<repo>:<tag>` in the tag store.
    key: String,
    repo: &'a str,
    name: &'a str,
    accept: HeaderValue,
}

impl Tag<'_> {
    /// Known but expired: HEAD upstream; unchanged → revalidated, failed → stale, else GET.
    async fn revalidate(
        &self,
        app: &App,
        up: &Upstream,
        c: Manifest,
    ) -> Result<(Outcome, Manifest), Failure> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, self.accept.clone());
        let path = format!("/v2/{}/manifests/{}", self.repo, self.name);
        match up.send(Method::HEAD, &path, h, "manifest").await {
            Ok(resp) if resp.status() == StatusCode::OK => {
                let now: Option<Digest> = resp
                    .headers()
                    .get(CONTENT_DIGEST)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.parse().ok());
                if now.as_ref() == Some(&c.digest) {
                    app.tags.set(&self.key, &c.digest, Some(Instant::now()));
                    let ttl = app.tag_ttl.as_secs();
                    return Ok((Outcome::Revalidated { ttl }, c));
                }
                // Changed (or no digest given): GET it.
                self.fetch(app, up, Some(c)).await
            }
            Ok(resp) if stale_worthy(resp.status()) => {
                Ok((Outcome::Stale(Why::Status(resp.status())), c))
            }
            // 404 and friends: the tag is gone upstream; say so.
            Ok(resp) => Err(Failure::from_response(resp).await),
            Err(e) => Ok((Outcome::Stale(Why::Unreachable(e.0)), c)),
        }
    }

    /// GET the tag upstream; when that fails, the last known copy is still better than nothing.
    async fn fetch(
        &self,
        app: &App,
        up: &Upstream,
        cached: Option<Manifest>,
    ) -> Result<(Outcome, Manifest), Failure> {
        let reference = ManifestRef::Tag(self.name.to_string());
        match fetch_manifest(app, up, self.repo, &reference, &self.accept).await {
            Ok(m) => {
                app.tags.set(&self.key, &m.digest, Some(Instant::now()));
                let ttl = Some(app.tag_ttl.as_secs());
                Ok((Outcome::Miss { ttl }, m))
            }
            Err(f) => match (Why::of(&f), cached) {
                (Some(why), Some(c)) => Ok((Outcome::Stale(why), c)),
                _ => Err(f),
            },
        }
    }
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
        .or_else(|| HeaderValue::from_str(&media::accept_header()).ok())
        .unwrap_or_else(|| HeaderValue::from_static("*/*"))
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

/// GET a manifest from upstream, check it, store it.
async fn fetch_manifest(
    app: &App,
    up: &Upstream,
    repo: &str,
    reference: &ManifestRef,
    accept: &HeaderValue,
) -> Result<Manifest, Failure> {
    let mut h = HeaderMap::new();
    h.insert(header::ACCEPT, accept.clone());
    let path = format!("/v2/{repo}/manifests/{reference}");
    let resp = up
        .send(Method::GET, &path, h, "manifest")
        .await
        .map_err(|e| Failure::Unreachable(e.0))?;
    if resp.status() != StatusCode::OK {
        return Err(Failure::from_response(resp).await);
    }
    let content_type = resp
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
    let too_big = || Failure::Corrupt(format!("manifest larger than {MAX_MANIFEST} bytes"));
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_MANIFEST as u64)
    {
        return Err(too_big());
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| Failure::Unreachable(format!("reading manifest: {e}")))?;
    if body.len() > MAX_MANIFEST {
        return Err(too_big());
    }
    app.metrics
        .upstream_bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let expected = match reference {
        ManifestRef::Digest(d) => Some(d.clone()),
        ManifestRef::Tag(_) => claimed,
    };
    let digest = check_digest(app, up, repo, reference, expected, &body)?;
    // A failure to store is counted and logged there; the manifest is served all the same.
    let _ = app.store.put_manifest(&digest, &content_type, &body);
    Ok(Manifest {
        digest,
        content_type,
        body,
    })
}

/// The manifest's digest: the one expected (asked for, or claimed by upstream) when the bytes
/// hash to it, else a failure; without one, their SHA-256.
fn check_digest(
    app: &App,
    up: &Upstream,
    repo: &str,
    reference: &ManifestRef,
    expected: Option<Digest>,
    body: &[u8],
) -> Result<Digest, Failure> {
    let Some(d) = expected else {
        return Ok(Digest::sha256_of(body));
    };
    let got = d.of_same_algorithm(body);
    if got != d {
        app.metrics
            .digest_mismatches
            .fetch_add(1, Ordering::Relaxed);
        crate::diag::error(&format!(
            "manifest {repo}:{reference} from {}: bytes hash to {got}, not {d}; discarded",
            up.registry
        ));
        return Err(Failure::Corrupt(format!("bytes hash to {got}, not {d}")));
    }
    Ok(d)
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

    #[test]
    fn outcomes_render_serves_words() {
        let words = |o: Outcome| o.cache_status().to_string();
        assert_eq!(words(Outcome::Hit { ttl_left: None }), "mirrorctl; hit");
        assert_eq!(
            words(Outcome::Hit { ttl_left: Some(9) }),
            "mirrorctl; hit; ttl=9"
        );
        assert_eq!(
            words(Outcome::Revalidated { ttl: 300 }),
            "mirrorctl; fwd=stale; fwd-status=200; ttl=300"
        );
        assert_eq!(
            words(Outcome::Stale(Why::Status(StatusCode::SERVICE_UNAVAILABLE))),
            "mirrorctl; fwd=stale; fwd-status=503"
        );
        assert_eq!(
            words(Outcome::Stale(Why::Unreachable("x".into()))),
            "mirrorctl; fwd=stale; detail=upstream-unreachable"
        );
        assert_eq!(
            words(Outcome::Miss { ttl: None }),
            "mirrorctl; fwd=uri-miss; stored"
        );
        assert_eq!(
            words(Outcome::Miss { ttl: Some(300) }),
            "mirrorctl; fwd=uri-miss; stored; ttl=300"
        );
    }
}
