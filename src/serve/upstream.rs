//! The upstream side of `serve`: one [`Upstream`] per configured registry.
//!
//! Every request to an upstream goes through [`Upstream::send`]. The credentials live here and
//! nowhere else; they are never logged nor put in an error message.
//!
//! TODO(registry): the shared registry client (`src/registry/`, token auth with a per-scope
//! token cache) is being written on the `verify` branch; once merged, `send` delegates to it.
//! Until then this only speaks anonymous and Basic auth.

use super::metrics::Metrics;
use axum::http::{HeaderMap, HeaderValue, Method};
use std::sync::Arc;
use std::time::Duration;

pub struct Upstream {
    /// Canonical registry name (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Base URL without a trailing slash, e.g. `https://registry-1.docker.io`.
    pub base: String,
    http: reqwest::Client,
    basic: Option<HeaderValue>,
    metrics: Arc<Metrics>,
}

/// The upstream could not be reached (connect, TLS, timeout); the text is safe to show.
#[derive(Debug, Clone)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Upstream {
    pub fn new(
        registry: String,
        base: &str,
        credentials: Option<(String, String)>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Upstream> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("mirrorctl/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()?;
        let basic = credentials.map(|(u, p)| {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            let mut v = HeaderValue::from_str(&format!("Basic {b64}"))
                .expect("base64 is a valid header value");
            v.set_sensitive(true);
            v
        });
        Ok(Upstream {
            registry,
            base: base.trim_end_matches('/').to_string(),
            http,
            basic,
            metrics,
        })
    }

    /// Send `method path` (path starts with `/v2/`) with `headers`; `kind` labels the metric.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        kind: &'static str,
    ) -> Result<reqwest::Response, Unreachable> {
        let m: &'static str = if method == Method::HEAD {
            "HEAD"
        } else {
            "GET"
        };
        self.metrics.upstream(m, kind);
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .headers(headers);
        if let Some(b) = &self.basic {
            req = req.header(axum::http::header::AUTHORIZATION, b.clone());
        }
        req.send().await.map_err(|e| {
            // reqwest's Display includes the URL (no credentials: they are in a header).
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            Unreachable(msg)
        })
    }
}
