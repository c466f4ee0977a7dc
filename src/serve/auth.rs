//! Client authentication (`--htpasswd`, bcrypt entries only) and TLS (`--tls-cert/--tls-key`).

use anyhow::{bail, Context, Result};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

/// Users from an htpasswd file, with a cache of credentials already checked (bcrypt is slow on
/// purpose; a registry client sends the same header on every request).
pub struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashSet<String>>,
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --htpasswd `{}`", path.display()))?;
        Self::parse(&text).with_context(|| format!("in --htpasswd `{}`", path.display()))
    }

    pub fn parse(text: &str) -> Result<Htpasswd> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                bail!("line {}: expected `user:hash`", i + 1);
            };
            if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
                bail!(
                    "line {}: user `{user}` does not have a bcrypt hash (create it with `htpasswd -B`)",
                    i + 1
                );
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            bail!("no users");
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Whether an `Authorization` header value carries valid Basic credentials.
    pub fn check(&self, authorization: Option<&str>) -> bool {
        let Some(v) = authorization else { return false };
        let Some(b64) = v
            .strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
        else {
            return false;
        };
        if self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(b64)
        {
            return true;
        }
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            return false;
        };
        let Ok(raw) = String::from_utf8(raw) else {
            return false;
        };
        let Some((user, pass)) = raw.split_once(':') else {
            return false;
        };
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let ok = bcrypt::verify(pass, hash).unwrap_or(false);
        if ok {
            self.verified
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(b64.to_string());
        }
        ok
    }
}

/// Middleware: `/v2/…` needs valid credentials when `--htpasswd` is set (`/metrics` does not).
pub async fn require_auth(
    State(ht): State<Option<Arc<Htpasswd>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(ht) = ht else {
        return next.run(req).await;
    };
    if !req.uri().path().starts_with("/v2") {
        return next.run(req).await;
    }
    let authz = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    // bcrypt off the async threads.
    let ok = tokio::task::spawn_blocking(move || ht.check(authz.as_deref()))
        .await
        .unwrap_or(false);
    if ok {
        return next.run(req).await;
    }
    let mut r = super::http::error(
        &crate::oci::ErrorCode::Unauthorized,
        "authentication required",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"mirrorctl\""),
    );
    r
}

/// A rustls server config from PEM files.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read --tls-cert `{}`", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("--tls-cert `{}` is not PEM certificates", cert.display()))?;
    if certs.is_empty() {
        bail!("--tls-cert `{}` holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "cannot read a private key from --tls-key `{}`",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not fit together")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A listener that hands out TLS streams; handshakes run in their own tasks so a slow client
/// never blocks accepting others.
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        std::net::SocketAddr,
    )>,
    local: std::net::SocketAddr,
}

impl TlsListener {
    /// `local`: the address `tcp` is bound to.
    pub fn new(
        tcp: tokio::net::TcpListener,
        local: std::net::SocketAddr,
        cfg: Arc<rustls::ServerConfig>,
    ) -> TlsListener {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        tokio::spawn(async move {
            loop {
                let (sock, addr) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(_) => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    break;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let hs = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(sock),
                    )
                    .await;
                    if let Ok(Ok(s)) = hs {
                        let _ = tx.send((s, addr)).await;
                    }
                });
            }
        });
        TlsListener { rx, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The acceptor task only ends when we are dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_bcrypt() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let ht = Htpasswd::parse(&format!("# users\nalice:{hash}\n")).unwrap();
        let b = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert!(ht.check(Some(&b("alice:s3cret"))));
        assert!(ht.check(Some(&b("alice:s3cret"))), "cached");
        assert!(!ht.check(Some(&b("alice:wrong"))));
        assert!(!ht.check(Some(&b("bob:s3cret"))));
        assert!(!ht.check(Some("Bearer x")));
        assert!(!ht.check(None));
        assert!(Htpasswd::parse("alice:{SHA}abc").is_err());
        assert!(Htpasswd::parse("").is_err());
    }
}

/// The client's address, for the access log, over TCP or TLS.
#[derive(Clone, Copy, Debug)]
pub struct RemoteAddr(pub std::net::SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for RemoteAddr
{
    fn connect_info(s: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        RemoteAddr(*s.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for RemoteAddr
{
    fn connect_info(s: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        RemoteAddr(*s.remote_addr())
    }
}
