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
            use base64_lite::encode;
            let mut v = HeaderValue::from_str(&format!("Basic {}", encode(&format!("{u}:{p}"))))
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

/// Base64 for a Basic credential (no new dependency for 20 lines).
mod base64_lite {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
        for c in b.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn rfc4648() {
        assert_eq!(encode(""), "");
        assert_eq!(encode("f"), "Zg==");
        assert_eq!(encode("fo"), "Zm8=");
        assert_eq!(encode("foo"), "Zm9v");
        assert_eq!(encode("user:pass"), "dXNlcjpwYXNz");
    }
}
