//! Docker Hub's pull limit in front of a real registry: an HTTP relay on loopback that passes
//! every request to `docker-registry` and, as Docker Hub does, answers manifest GET and HEAD
//! with `ratelimit-limit: N;w=21600`, `ratelimit-remaining: M;w=21600` and
//! `docker-ratelimit-source`, counts manifest GETs against the limit (HEAD is free), and once
//! the limit is spent answers manifest requests with 429, Docker Hub's `TOOMANYREQUESTS` body
//! and a `Retry-After`. (The limiter is the one piece of Docker Hub that cannot run here.)

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub const WINDOW: u64 = 21600;
pub const RETRY_AFTER: &str = "3600";
pub const SOURCE: &str = "192.0.2.7";

struct State {
    upstream: String,
    limit: u64,
    gets: AtomicU64,
    heads: AtomicU64,
    client: reqwest::Client,
}

/// The running limiter; stopped on drop.
pub struct RateLimited {
    pub port: u16,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RateLimited {
    /// In front of `upstream_url`, `limit` manifest GETs per window.
    pub fn start(upstream_url: &str, limit: u64) -> RateLimited {
        let state = Arc::new(State {
            upstream: upstream_url.trim_end_matches('/').to_string(),
            limit,
            gets: AtomicU64::new(0),
            heads: AtomicU64::new(0),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
        });
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = super::http::rt();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(l).unwrap();
                let app = axum::Router::new()
                    .fallback(move |m: Method, u: Uri, h: HeaderMap| relay(st.clone(), m, u, h));
                let _ = axum::serve(l, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        RateLimited {
            port,
            state,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Manifest GETs (counted) and HEADs (free) so far.
    pub fn manifest_requests(&self) -> (u64, u64) {
        (
            self.state.gets.load(Ordering::SeqCst),
            self.state.heads.load(Ordering::SeqCst),
        )
    }
}

impl Drop for RateLimited {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn relay(st: Arc<State>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let manifest = uri.path().contains("/manifests/");
    let used = if manifest && method == Method::GET {
        st.gets.fetch_add(1, Ordering::SeqCst) + 1
    } else {
        if manifest {
            st.heads.fetch_add(1, Ordering::SeqCst);
        }
        st.gets.load(Ordering::SeqCst)
    };
    let over = manifest && used > st.limit;
    let remaining = st.limit.saturating_sub(used);
    let mut r = if over {
        let body = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}"#;
        let mut r = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
        let h = r.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("retry-after", HeaderValue::from_static(RETRY_AFTER));
        r
    } else {
        forward(&st, method, &uri, &headers).await
    };
    if manifest {
        let h = r.headers_mut();
        let q = |n: u64| HeaderValue::from_str(&format!("{n};w={WINDOW}")).unwrap();
        h.insert("ratelimit-limit", q(st.limit));
        h.insert("ratelimit-remaining", q(remaining));
        h.insert("docker-ratelimit-source", HeaderValue::from_static(SOURCE));
    }
    r
}

async fn forward(st: &State, method: Method, uri: &Uri, headers: &HeaderMap) -> Response {
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = st.client.request(method, format!("{}{pq}", st.upstream));
    for (k, v) in headers {
        if k != "host" {
            req = req.header(k, v);
        }
    }
    let Ok(resp) = req.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = resp.status();
    let hs = resp.headers().clone();
    let body = resp.bytes().await.unwrap_or_default();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    for (k, v) in &hs {
        if k != "transfer-encoding" && k != "connection" {
            r.headers_mut().insert(k, v.clone());
        }
    }
    r
}
