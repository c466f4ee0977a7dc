//! The upstream side of `serve`: one [`Upstream`] per configured registry.
//!
//! Every request to an upstream goes through [`Upstream::send`]. The credentials live here and
//! nowhere else; they are never logged nor put in an error message.
//!
//! Auth follows the upstream's `401` challenge: Bearer (the token is fetched from the realm by
//! [`crate::registry::token`], anonymously or with the configured credentials, and cached per
//! repository until shortly before its `expires_in`) or Basic (only with credentials, and then
//! sent up front on every later request).

use super::metrics::Metrics;
use crate::oci::{AuthChallenge, AuthScheme};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A cached token is dropped this long before the realm says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// A `/v2/<repo>/…` path under `project`, if any (`/v2/` itself stays: the ping is at the root).
fn under_project<'p>(project: Option<&str>, path: &'p str) -> std::borrow::Cow<'p, str> {
    match (project, path.strip_prefix("/v2/")) {
        (Some(p), Some(rest)) if !rest.is_empty() && !rest.starts_with('?') => {
            std::borrow::Cow::Owned(format!("/v2/{p}/{rest}"))
        }
        _ => std::borrow::Cow::Borrowed(path),
    }
}

pub struct Upstream {
    /// Canonical registry name (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Base URL without a trailing slash (nor the project path), e.g.
    /// `https://registry-1.docker.io`.
    pub base: String,
    /// The project the upstream serves repositories under (`https://harbor.example/dh`:
    /// `/v2/dh/<repo>/…`); the `/v2/` ping stays at the root.
    project: Option<String>,
    http: reqwest::Client,
    basic: Option<HeaderValue>,
    /// The upstream asked for Basic auth once: send it up front from then on.
    basic_wanted: AtomicBool,
    /// Bearer tokens per repository (`""` for `/v2/`), with when to stop using them.
    tokens: Mutex<HashMap<String, (HeaderValue, Instant)>>,
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
        let basic = match credentials {
            Some((u, p)) => {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                let mut v = HeaderValue::from_str(&format!("Basic {b64}"))?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let (base, project) = crate::registry::split_project(base);
        Ok(Upstream {
            registry,
            base,
            project,
            http,
            basic,
            basic_wanted: AtomicBool::new(false),
            tokens: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// Send `method path` (path starts with `/v2/`) with `headers`; `kind` labels the metric.
    /// A `401` is answered once (token or Basic) and the request sent again; a `401` that
    /// remains is returned as is.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        kind: &'static str,
    ) -> Result<reqwest::Response, Unreachable> {
        let path = &*under_project(self.project.as_deref(), path);
        let repo = repo_of(path);
        let auth = self.cached_auth(repo);
        let resp = self
            .send_once(method.clone(), path, headers.clone(), auth, kind)
            .await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenges = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(AuthChallenge::parse_all)
            .collect::<Vec<_>>();
        let Some(auth) = self.answer(&challenges, repo, path).await? else {
            return Ok(resp);
        };
        self.send_once(method, path, headers, Some(auth), kind)
            .await
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        auth: Option<HeaderValue>,
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
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let sent = req.send().await;
        if let Ok(r) = &sent {
            self.metrics
                .ratelimits
                .observe(&self.registry, r.status(), r.headers());
        }
        sent.map_err(|e| {
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

    /// What to send up front for `repo`: Basic once the upstream asked for it, else a live token.
    fn cached_auth(&self, repo: &str) -> Option<HeaderValue> {
        if self.basic_wanted.load(Ordering::Relaxed) {
            return self.basic.clone();
        }
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        match tokens.get(repo) {
            Some((v, until)) if Instant::now() < *until => Some(v.clone()),
            Some(_) => {
                tokens.remove(repo);
                None
            }
            None => None,
        }
    }

    /// Answer a challenge: `None` when there is nothing to answer with (the 401 stands).
    /// A token server that cannot be reached makes the upstream unreachable; one that refuses
    /// leaves the 401 to the caller, and the refusal goes to the server log.
    async fn answer(
        &self,
        challenges: &[AuthChallenge],
        repo: &str,
        path: &str,
    ) -> Result<Option<HeaderValue>, Unreachable> {
        let bearer = challenges.iter().find(|c| c.scheme == AuthScheme::Bearer);
        let Some(challenge) = bearer else {
            if challenges.iter().any(|c| c.scheme == AuthScheme::Basic) && self.basic.is_some() {
                self.basic_wanted.store(true, Ordering::Relaxed);
                return Ok(self.basic.clone());
            }
            return Ok(None);
        };
        let basic = self
            .basic
            .as_ref()
            .and_then(|b| b.to_str().ok().map(str::to_string));
        let url = format!("{}{path}", self.base);
        self.metrics.upstream("GET", "token");
        match crate::registry::token::fetch(&self.http, challenge, repo, basic.as_deref(), &url)
            .await
        {
            Ok(t) => {
                let Ok(mut v) = HeaderValue::from_str(&t.authorization) else {
                    crate::diag::warn(&format!("upstream {}: the token server sent a token that is not a valid header value", self.registry));
                    return Ok(None);
                };
                v.set_sensitive(true);
                let now = Instant::now();
                let until = now
                    .checked_add(t.expires_in.saturating_sub(TOKEN_MARGIN))
                    .unwrap_or(now);
                self.tokens
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(repo.to_string(), (v.clone(), until));
                Ok(Some(v))
            }
            Err(d) if d.is_transport() => Err(Unreachable(format!(
                "the token server of {} cannot be reached ({}): {}",
                self.registry,
                d.kind.as_str(),
                challenge.realm().unwrap_or("")
            ))),
            Err(d) => {
                crate::diag::warn(&format!("upstream {}: {d}", self.registry));
                Ok(None)
            }
        }
    }
}

/// The repository a `/v2/<name>/(manifests|blobs|tags)/…` path is about (`""` for `/v2/`).
fn repo_of(path: &str) -> &str {
    let rest = path.trim_start_matches("/v2/");
    let rest = rest.split('?').next().unwrap_or("");
    for marker in ["/manifests/", "/blobs/", "/tags/"] {
        if let Some(i) = rest.rfind(marker) {
            return &rest[..i];
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    #[test]
    fn repo_of_paths() {
        assert_eq!(super::repo_of("/v2/"), "");
        assert_eq!(
            super::repo_of("/v2/library/alpine/manifests/latest"),
            "library/alpine"
        );
        assert_eq!(super::repo_of("/v2/a/b/c/blobs/sha256:00"), "a/b/c");
        assert_eq!(super::repo_of("/v2/x/tags/list?n=10"), "x");
        let p = super::under_project(Some("dh"), "/v2/library/a/manifests/1");
        assert_eq!(p, "/v2/dh/library/a/manifests/1");
        assert_eq!(super::repo_of(&p), "dh/library/a");
        assert_eq!(super::under_project(Some("dh"), "/v2/"), "/v2/");
        assert_eq!(super::under_project(None, "/v2/x/blobs/d"), "/v2/x/blobs/d");
    }
}
