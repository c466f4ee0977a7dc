//! `mirrorctl serve`: an embedded pull-through cache.
//!
//! request → [`route`] (validate) → upstream by `?ns=` → [`manifest`] cache (tag TTL,
//! stale-if-error) or [`blob`]: [`store`] hit / single [`flight`] per digest → [`body`] →
//! `Cache-Status` on the way out. Committed blobs are made durable off the request path
//! ([`ledger`]); a cache that cannot write is counted and logged once per cause ([`health`]) while
//! pulls go on from upstream.
//!
//! In-process use (e.g. `verify --embedded`): build a [`Config`], call [`start`], read
//! [`ServerHandle::addr`], and [`ServerHandle::shutdown`] when done.

mod auth;
mod blob;
mod body;
mod flight;
mod health;
mod http;
mod ledger;
mod log;
mod manifest;
pub mod metrics;
pub mod ratelimit;
pub mod route;
mod store;
mod upstream;

use crate::oci::{self, Digest};
use anyhow::{Context, Result};
use metrics::Metrics;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use store::Store;
use upstream::Upstream;

pub use log::LogFormat;

/// One upstream registry.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Canonical registry name, matched against containerd's `?ns=`.
    pub registry: String,
    /// Base URL, e.g. `https://registry-1.docker.io`.
    pub url: String,
    /// Credentials (user, password); never logged.
    pub credentials: Option<(String, String)>,
}

/// Everything [`start`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Serves requests without `?ns=` (and `?ns=` equal to its registry).
    pub default_upstream: UpstreamConfig,
    /// More upstreams, chosen by `?ns=`.
    pub upstreams: Vec<UpstreamConfig>,
    pub cache_dir: PathBuf,
    pub max_size: Option<u64>,
    pub tag_ttl: Duration,
    pub access_log: LogFormat,
    /// Require client Basic auth against this htpasswd file (bcrypt).
    pub htpasswd: Option<PathBuf>,
    /// Serve HTTPS with (certificate chain, private key), PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Warn when an upstream's reported pull budget falls below this (0: never).
    pub ratelimit_warn: u64,
}

impl Config {
    /// A loopback server on an ephemeral port mirroring `url` as `docker.io`.
    pub fn ephemeral(url: &str, cache_dir: PathBuf) -> Config {
        Config {
            listen: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0),
            default_upstream: UpstreamConfig {
                registry: oci::DOCKER_HUB.into(),
                url: url.into(),
                credentials: None,
            },
            upstreams: Vec::new(),
            cache_dir,
            max_size: None,
            tag_ttl: Duration::from_secs(300),
            access_log: LogFormat::Off,
            htpasswd: None,
            tls: None,
            ratelimit_warn: ratelimit::DEFAULT_WARN,
        }
    }
}

/// Upstreams by canonical registry name.
type ByRegistry = HashMap<String, Arc<Upstream>>;

/// Shared state of a running server.
pub struct App {
    store: Arc<Store>,
    flights: Arc<flight::Flights>,
    pub metrics: Arc<Metrics>,
    default: Arc<Upstream>,
    by_registry: ByRegistry,
    tags: Tags,
    tag_ttl: Duration,
}

impl App {
    fn upstream_for(&self, ns: Option<&str>) -> Result<Arc<Upstream>, String> {
        let Some(ns) = ns else {
            return Ok(self.default.clone());
        };
        let ns = oci::canonical_registry(ns);
        self.by_registry.get(&ns).cloned().ok_or_else(|| {
            format!("this mirror has no upstream for registry `{ns}` (see --upstream)")
        })
    }
}

/// Tag → digest, with when it was last confirmed upstream (`None`: loaded from disk, unconfirmed).
struct Tags {
    map: Mutex<HashMap<String, (Digest, Option<Instant>)>>,
    path: PathBuf,
    /// Where a failure to save is reported.
    store: Arc<Store>,
}

impl Tags {
    fn load(store: Arc<Store>) -> Tags {
        let path = store.tags_path();
        let map = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<HashMap<String, Digest>>(&b).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, d)| (k, (d, None)))
            .collect();
        Tags {
            map: Mutex::new(map),
            path,
            store,
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, (Digest, Option<Instant>)>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &str) -> Option<(Digest, Option<Instant>)> {
        self.map().get(key).cloned()
    }

    fn set(&self, key: &str, d: &Digest, checked: Option<Instant>) {
        let mut m = self.map();
        let changed = m.get(key).is_none_or(|(old, _)| old != d);
        m.insert(key.to_string(), (d.clone(), checked));
        if changed {
            let snapshot: std::collections::BTreeMap<&String, &Digest> =
                m.iter().map(|(k, (d, _))| (k, d)).collect();
            let text = serde_json::to_vec_pretty(&snapshot).unwrap_or_default();
            let tmp = self
                .path
                .with_extension(format!("tmp-{}", std::process::id()));
            if let Err(e) =
                std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &self.path))
            {
                let _ = std::fs::remove_file(&tmp);
                let what = format!("`{}`", self.path.display());
                self.store.write_failed(&what, &e);
            }
        }
    }
}

/// A running server.
pub struct ServerHandle {
    /// The bound address (the real port when asked for `:0`).
    pub addr: SocketAddr,
    pub tls: bool,
    pub metrics: Arc<Metrics>,
    store: Arc<Store>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ServerHandle {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stop accepting, let in-flight responses finish (up to `grace`), then stop.
    /// Downloads still running are dropped; their temp files are never committed. Blobs
    /// committed are made durable first (up to `grace` again).
    pub async fn shutdown(mut self, grace: Duration) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let result = match tokio::time::timeout(grace, &mut self.task).await {
            Ok(r) => r
                .context("server task failed")
                .and_then(|r| r.context("server failed")),
            Err(_) => {
                self.task.abort();
                Ok(())
            }
        };
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || {
            store.flush(grace);
            store.remove_own_temp_files();
        })
        .await;
        result
    }
}

/// Open the cache, bind, and serve in the background of the current tokio runtime.
pub async fn start(config: Config) -> Result<ServerHandle> {
    let metrics = Arc::new(Metrics::default());
    metrics.ratelimits.set_warn_below(config.ratelimit_warn);
    let store = Store::open(&config.cache_dir, config.max_size, metrics.clone())?;
    let (default, by_registry) = upstreams(&config, &metrics)?;
    let app = Arc::new(App {
        store: store.clone(),
        flights: Arc::new(flight::Flights::default()),
        metrics: metrics.clone(),
        default,
        by_registry,
        tags: Tags::load(store.clone()),
        tag_ttl: config.tag_ttl,
    });
    let htpasswd = match &config.htpasswd {
        Some(p) => Some(Arc::new(auth::Htpasswd::load(p)?)),
        None => None,
    };
    let tls = match &config.tls {
        Some((c, k)) => Some(auth::tls_config(c, k)?),
        None => None,
    };
    let router = http::router(app)
        .layer(axum::middleware::from_fn_with_state(
            htpasswd,
            auth::require_auth,
        ))
        .layer(axum::middleware::from_fn_with_state(
            config.access_log,
            log::access_log,
        ));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let is_tls = tls.is_some();
    let task = spawn_server(listener, addr, tls, router, rx);
    Ok(ServerHandle {
        addr,
        tls: is_tls,
        metrics,
        store,
        shutdown: Some(tx),
        task,
    })
}

/// The default upstream, and every upstream by canonical registry name (the default also under
/// its own host, so `?ns=<its host>` finds it).
fn upstreams(config: &Config, metrics: &Arc<Metrics>) -> Result<(Arc<Upstream>, ByRegistry)> {
    let mk = |u: &UpstreamConfig| -> Result<Arc<Upstream>> {
        Ok(Arc::new(Upstream::new(
            u.registry.clone(),
            &u.url,
            u.credentials.clone(),
            metrics.clone(),
        )?))
    };
    let default = mk(&config.default_upstream)?;
    let mut by_registry = HashMap::new();
    by_registry.insert(config.default_upstream.registry.clone(), default.clone());
    if let Some(host) = url::Url::parse(&config.default_upstream.url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
    {
        by_registry
            .entry(oci::canonical_registry(&host))
            .or_insert_with(|| default.clone());
    }
    for u in &config.upstreams {
        by_registry.insert(u.registry.clone(), mk(u)?);
    }
    Ok((default, by_registry))
}

/// Serve `router` on `listener` (with TLS when configured) until `stop` fires.
fn spawn_server(
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: axum::Router,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let stop = async move {
        let _ = stop.await;
    };
    let service = router.into_make_service_with_connect_info::<auth::RemoteAddr>();
    match tls {
        None => tokio::spawn(async move {
            axum::serve(listener, service)
                .with_graceful_shutdown(stop)
                .await
        }),
        Some(cfg) => tokio::spawn(async move {
            axum::serve(auth::TlsListener::new(listener, addr, cfg), service)
                .with_graceful_shutdown(stop)
                .await
        }),
    }
}
