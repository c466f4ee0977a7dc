//! A small registry client (distribution spec, pull side only) on reqwest: `GET /v2/`, manifests
//! with the full `Accept` set, blobs streamed chunk by chunk with digest and size verification,
//! token auth (Bearer realm/service/scope, anonymous or with credentials; Basic), and every
//! response's status and headers kept as evidence.
//!
//! Failures are [`Diagnosis`] values: one sentence saying what went wrong and how to fix it.

use crate::oci::{self, AuthChallenge, AuthScheme, Digest};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

pub mod docker_config;
pub mod token;

/// The largest manifest accepted (the distribution spec suggests 4 MiB).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// What kind of failure a [`Diagnosis`] is (its JSON spelling in `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Refused,
    Dns,
    Timeout,
    Tls,
    /// An https:// URL reached a plain-HTTP server.
    HttpToHttps,
    /// An http:// URL reached an HTTPS server.
    HttpsToHttp,
    Unauthorized,
    /// 403: credentials were accepted but do not allow the pull.
    #[serde(rename = "unauthorized")]
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    DigestMismatch,
    SizeMismatch,
    BadResponse,
    Network,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Refused => "refused",
            Kind::Dns => "dns",
            Kind::Timeout => "timeout",
            Kind::Tls => "tls",
            Kind::HttpToHttps => "http-to-https",
            Kind::HttpsToHttp => "https-to-http",
            Kind::Unauthorized | Kind::Forbidden => "unauthorized",
            Kind::NotFound => "not-found",
            Kind::RateLimited => "rate-limited",
            Kind::ServerError => "server-error",
            Kind::DigestMismatch => "digest-mismatch",
            Kind::SizeMismatch => "size-mismatch",
            Kind::BadResponse => "bad-response",
            Kind::Network => "network",
        }
    }
}

/// What would fix a [`Diagnosis`], without naming any command's flags: each caller renders
/// the hint in its own terms (`verify` names `--mirror`, `--timeout`…; `serve` logs the fact
/// alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remedy {
    /// Use this scheme for the host.
    UseScheme { https: bool },
    /// Nothing listens: start the server or fix the port.
    StartOrFixPort,
    /// The host name does not resolve.
    FixHostName,
    /// Trust the server's CA, or fix its certificate.
    TrustCa,
    /// Reachability, or a longer timeout.
    CheckReachable,
    /// The connection was closed: maybe the wrong scheme, else the server's log.
    CheckSchemeOrLog,
    /// Give credentials (or log in to this host).
    GiveCredentials,
    /// Give a user name and password rather than the stored identity token.
    GiveUserPassword,
    /// Check the image name and tag, and that the server proxies its registry.
    CheckImage,
    /// Pick another platform.
    PickPlatform,
    /// Use another image.
    OtherImage,
}

/// What went wrong, one sentence of fact with a machine-readable kind, what would fix it
/// (typed: the caller words the hint), and the evidence a caller may need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub kind: Kind,
    /// What happened, with any advice that names no command's flags.
    pub fact: String,
    pub remedy: Option<Remedy>,
    /// `host[:port]` the request went to.
    pub host: String,
    /// Set when the request went through a proxy from the environment: the proxy and the
    /// variable, since the failure may be the proxy's.
    pub proxy: Option<Box<(String, String)>>,
    /// The OCI error code the server sent, if any.
    pub code: Option<oci::ErrorCode>,
    /// The response's `Cache-Status` members (a cache that could not reach its upstream
    /// says so there).
    pub cache_status: Vec<oci::CacheStatus>,
}

impl Diagnosis {
    pub fn new(kind: Kind, fact: impl Into<String>) -> Diagnosis {
        Diagnosis {
            kind,
            fact: fact.into(),
            remedy: None,
            host: String::new(),
            proxy: None,
            code: None,
            cache_status: Vec::new(),
        }
    }

    pub fn with_remedy(mut self, remedy: Remedy) -> Diagnosis {
        self.remedy = Some(remedy);
        self
    }

    /// The request went to `url`.
    pub fn at(mut self, url: &str) -> Diagnosis {
        self.host = host_of(url);
        self
    }

    /// A transport failure (nothing answered, or not in the expected protocol), as opposed
    /// to an HTTP answer the server gave.
    pub fn is_transport(&self) -> bool {
        matches!(
            self.kind,
            Kind::HttpToHttps
                | Kind::HttpsToHttp
                | Kind::Refused
                | Kind::Dns
                | Kind::Tls
                | Kind::Timeout
                | Kind::Network
        )
    }

    /// The proxy note, ` (note: …)`, or nothing.
    pub fn proxy_note(&self) -> String {
        match self.proxy.as_deref() {
            Some((proxy, var)) => format!(
                " (note: this request went through the proxy {proxy} from ${var}, so the failure may be the proxy's; add {} to NO_PROXY to connect directly)",
                oci::split_host_port(&self.host).0
            ),
            None => String::new(),
        }
    }

    /// A cache between us and the registry said it could not reach its upstream.
    pub fn upstream_unreachable(&self) -> bool {
        self.cache_status
            .iter()
            .any(|c| c.detail.as_deref() == Some(UPSTREAM_UNREACHABLE))
    }
}

/// The `Cache-Status` detail a cache (`mirrorctl serve`) sends when its upstream cannot be
/// reached and nothing cached can answer.
pub const UPSTREAM_UNREACHABLE: &str = "upstream-unreachable";

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.fact, self.proxy_note())
    }
}

impl std::error::Error for Diagnosis {}

/// One HTTP response as evidence: what was asked and what came back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    pub status: u16,
    /// Header names lower-case, in the order received.
    pub headers: Vec<(String, String)>,
}

impl Exchange {
    fn from_response(method: &str, resp: &reqwest::Response) -> Exchange {
        Exchange {
            method: method.to_string(),
            url: resp.url().to_string(),
            status: resp.status().as_u16(),
            headers: header_pairs(resp.headers()),
        }
    }

    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// The first value of `name` (case-insensitive) in a header list.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn header_pairs(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The outcome of `GET /v2/`.
#[derive(Debug, Clone)]
pub struct Ping {
    pub exchange: Exchange,
    /// The challenge when the registry answered 401.
    pub challenge: Option<AuthChallenge>,
}

/// What a registry lets an anonymous client do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `/v2/` answers 200.
    Open,
    /// A Bearer challenge whose realm gives anonymous pull tokens (Docker Hub, a public
    /// Harbor project, distribution in proxy mode behind a token server).
    AnonymousToken,
    /// Credentials are needed (`basic`, `bearer` with anonymous tokens refused, or another
    /// scheme).
    NeedsCredentials(&'static str),
}

/// A fetched manifest (or index).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub exchange: Exchange,
    pub media_type: String,
    pub digest: Digest,
    pub body: Vec<u8>,
}

/// A fetched, verified blob (its bytes were streamed and dropped).
#[derive(Debug, Clone)]
pub struct Blob {
    /// The response that carried the bytes (an object store's, after a redirect).
    pub exchange: Exchange,
    /// The registry's own redirect, when it sent one (distribution on S3 answers a stored blob
    /// with `307` to a presigned object-store URL).
    pub redirect: Option<Exchange>,
    pub bytes: u64,
}

/// The first redirect a request met, kept in the final response's extensions.
#[derive(Debug, Clone)]
struct Redirected(Exchange);

/// Redirects followed per request at most.
const MAX_REDIRECTS: usize = 5;

/// Whether `a` and `b` have the same scheme, host and port: only then does a redirect keep the
/// `Authorization` header (a registry's token must never reach an object store or a CDN).
pub fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A URL fit for a report: scheme, host, port and path, without the query (a presigned URL's
/// query is a credential).
pub fn without_query(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => url.split('?').next().unwrap_or("").to_string(),
    }
}

/// Where the client's credentials come from.
#[derive(Clone)]
pub enum Credentials {
    /// Anonymous.
    None,
    /// `(user, password)` given on the command line.
    Given(String, String),
    /// Looked up in the docker config for this `host[:port]` when the registry first asks
    /// (a credential helper such as `ecr-login` may be slow or need the network).
    DockerConfig(String),
}

pub struct Client {
    http: reqwest::Client,
    /// Base URL without a trailing slash (and without the project path).
    base: String,
    /// The project the registry serves repositories under (`dh`: `/v2/dh/<repo>/…`), from a
    /// base URL with a path (`https://harbor.example/dh`, [`crate::mirror::Mirror::url`]).
    project: Option<String>,
    credentials: Credentials,
    /// What `credentials` resolved to, once asked.
    resolved: tokio::sync::OnceCell<Option<(String, String)>>,
    /// `Authorization` values per repository (`""` for `/v2/`).
    auth: Mutex<HashMap<String, String>>,
    /// `?ns=<registry>` on manifest and blob URLs (the image's registry, for a mirror of many).
    namespace: Option<String>,
    /// A `User-Agent` other than verify's (`mirrorctl/<v> (warm)`), so a mirror's log tells them apart.
    agent: Option<&'static str>,
}

impl Client {
    /// A client for the registry at `base` (`http://host:port`, or `https://host/<project>`
    /// for a registry serving the repositories under `/v2/<project>/…`, a Harbor proxy-cache
    /// project; `GET /v2/` stays at the root), `timeout` for connecting and
    /// for each read (a large blob may take longer in total).
    /// `ca_pem`: extra trusted CA certificates (PEM), besides the built-in web roots.
    pub fn new(
        base: &str,
        credentials: Credentials,
        timeout: Duration,
        ca_pem: Option<&[u8]>,
    ) -> anyhow::Result<Client> {
        Client::new_checked(base, credentials, timeout, ca_pem, false)
    }

    /// [`Client::new`]; `accept_invalid_certs`: an https server's certificate is not checked
    /// (what `arm --insecure` tells the clients to do).
    pub fn new_checked(
        base: &str,
        credentials: Credentials,
        timeout: Duration,
        ca_pem: Option<&[u8]>,
        accept_invalid_certs: bool,
    ) -> anyhow::Result<Client> {
        let mut builder = reqwest::Client::builder()
            .danger_accept_invalid_certs(accept_invalid_certs)
            .user_agent(concat!(
                "mirrorctl/",
                env!("CARGO_PKG_VERSION"),
                " (verify)"
            ))
            .connect_timeout(timeout)
            .read_timeout(timeout)
            // Followed by hand ([`Client::send_raw`]): the registry's redirect is evidence.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| anyhow::anyhow!("the CA file is not PEM certificates: {e}"))?;
            if certs.is_empty() {
                anyhow::bail!("the CA file holds no PEM certificate");
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder.build()?;
        let (base, project) = split_project(base);
        Ok(Client {
            http,
            base,
            project,
            credentials,
            resolved: tokio::sync::OnceCell::new(),
            auth: Mutex::new(HashMap::new()),
            namespace: None,
            agent: None,
        })
    }

    /// Send `agent` as the `User-Agent` of manifest and blob requests.
    pub fn with_user_agent(mut self, agent: &'static str) -> Client {
        self.agent = Some(agent);
        self
    }

    /// Ask for images of `registry` with containerd's `?ns=<registry>` (what `mirrorctl serve`
    /// and other multi-upstream mirrors route by); `docker.io` needs none.
    pub fn with_namespace(mut self, registry: &str) -> Client {
        self.namespace = (registry != oci::DOCKER_HUB).then(|| registry.to_string());
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `repo` as the registry names it: under the project, if any. Every repository-scoped
    /// request (and token scope) goes through here.
    fn repo<'r>(&self, repo: &'r str) -> std::borrow::Cow<'r, str> {
        match &self.project {
            Some(p) => std::borrow::Cow::Owned(format!("{p}/{repo}")),
            None => std::borrow::Cow::Borrowed(repo),
        }
    }

    /// `<base>/v2/<rest>` with the namespace query, if any.
    fn v2_url(&self, rest: &str) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/v2/{rest}?ns={ns}", self.base),
            None => format!("{}/v2/{rest}", self.base),
        }
    }

    /// The credentials to answer a challenge with (looked up once, on the first challenge).
    async fn credentials(&self) -> Option<&(String, String)> {
        self.resolved
            .get_or_init(|| async {
                match &self.credentials {
                    Credentials::None => None,
                    Credentials::Given(u, p) => Some((u.clone(), p.clone())),
                    Credentials::DockerConfig(host) => {
                        let host = host.clone();
                        let found = tokio::task::spawn_blocking(move || {
                            docker_config::lookup(&host).map_err(|e| (host, e))
                        })
                        .await
                        .ok()?;
                        match found {
                            Ok(f) => f.map(|f| (f.username, f.secret)),
                            Err((host, e)) => {
                                crate::diag::warn(&format!(
                                    "{e}; going on without credentials for {host}"
                                ));
                                None
                            }
                        }
                    }
                }
            })
            .await
            .as_ref()
    }

    /// `GET /v2/`: 200, or 401 with a challenge, are both a registry.
    pub async fn ping(&self) -> Result<Ping, Diagnosis> {
        let url = format!("{}/v2/", self.base);
        let resp = self.send_raw(&url, None, None).await?;
        let exchange = Exchange::from_response("GET", &resp);
        let status = resp.status();
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(AuthChallenge::parse);
        let body = read_small(resp, &url).await.unwrap_or_default();
        if status == StatusCode::UNAUTHORIZED {
            return Ok(Ping {
                exchange,
                challenge,
            });
        }
        if status.is_success() {
            return Ok(Ping {
                exchange,
                challenge: None,
            });
        }
        Err(status_diagnosis(status, &url, &body, &exchange.headers))
    }

    /// Whether anonymous pulls of `repo` are let through: `GET /v2/`, and when it challenges
    /// with Bearer, an anonymous token for `repository:<repo>:pull` from its realm.
    pub async fn anonymous_access(&self, repo: &str) -> Result<(Ping, Access), Diagnosis> {
        let repo = &*self.repo(repo);
        let ping = self.ping().await?;
        let access = match ping.challenge.as_ref().map(|c| (&c.scheme, c)) {
            None => Access::Open,
            Some((AuthScheme::Bearer, c)) => {
                let url = format!("{}/v2/", self.base);
                match token::fetch(&self.http, c, repo, None, &url).await {
                    Ok(_) => Access::AnonymousToken,
                    Err(d) if matches!(d.kind, Kind::Unauthorized | Kind::Forbidden) => {
                        Access::NeedsCredentials("bearer")
                    }
                    Err(d) => return Err(d),
                }
            }
            Some((AuthScheme::Basic, _)) => Access::NeedsCredentials("basic"),
            Some((AuthScheme::Other(_), _)) => Access::NeedsCredentials("other"),
        };
        Ok((ping, access))
    }

    /// `GET /v2/<repo>/manifests/<reference>` with every manifest media type accepted.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<Manifest, Diagnosis> {
        let repo = &*self.repo(repo);
        let url = self.v2_url(&format!("{repo}/manifests/{reference}"));
        let resp = self
            .send(repo, &url, Some(&oci::media::accept_header()))
            .await?;
        let exchange = Exchange::from_response("GET", &resp);
        let status = resp.status();
        let body = read_small(resp, &url).await?;
        if !status.is_success() {
            return Err(status_diagnosis(status, &url, &body, &exchange.headers));
        }
        let media_type = exchange
            .header("content-type")
            .map(|m| oci::media::base(m).to_string())
            .filter(|m| !m.is_empty() && m != "application/json")
            .or_else(|| {
                serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
            })
            .unwrap_or_default();
        let digest = match reference.parse::<Digest>() {
            Ok(want) => {
                let got = want.of_same_algorithm(&body);
                if got != want {
                    return Err(Diagnosis::new(
                        Kind::DigestMismatch,
                        format!(
                            "manifest {want} from {url} has digest {got}: the mirror served wrong bytes; purge it from the mirror's cache"
                        ),
                    ));
                }
                want
            }
            Err(_) => Digest::sha256_of(&body),
        };
        if let Some(claimed) = exchange.header("docker-content-digest") {
            if let Ok(claimed) = claimed.parse::<Digest>() {
                let got = claimed.of_same_algorithm(&body);
                if got != claimed {
                    return Err(Diagnosis::new(
                        Kind::DigestMismatch,
                        format!(
                            "manifest from {url} claims Docker-Content-Digest {claimed} but its bytes hash to {got}: the mirror served wrong bytes; purge it from the mirror's cache"
                        ),
                    ));
                }
            }
        }
        Ok(Manifest {
            exchange,
            media_type,
            digest,
            body,
        })
    }

    /// `GET /v2/<repo>/blobs/<digest>`, streamed: every chunk is hashed and counted, then
    /// dropped. Fails when the size or the digest differ from the descriptor's.
    pub async fn blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<Blob, Diagnosis> {
        let repo = &*self.repo(repo);
        let url = self.v2_url(&format!("{repo}/blobs/{digest}"));
        let mut resp = self.send(repo, &url, None).await?;
        let mut exchange = Exchange::from_response("GET", &resp);
        let redirect = resp.extensions().get::<Redirected>().map(|r| r.0.clone());
        if redirect.is_some() {
            exchange.url = without_query(&exchange.url);
        }
        let status = resp.status();
        if !status.is_success() {
            let body = read_small(resp, &url).await.unwrap_or_default();
            return Err(status_diagnosis(status, &url, &body, &exchange.headers));
        }
        let mut verifier = digest.verifier();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    verifier.update(&chunk);
                    progress(verifier.bytes());
                    if verifier.bytes() > size {
                        return Err(Diagnosis::new(
                            Kind::SizeMismatch,
                            format!(
                                "blob {digest} from {url} is longer than its descriptor's {size} bytes: the mirror served wrong bytes; purge the blob from the mirror's cache"
                            ),
                        ));
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(classify_error(&e, &url)),
            }
        }
        let bytes = verifier.bytes();
        if bytes != size {
            return Err(Diagnosis::new(
                Kind::SizeMismatch,
                format!(
                    "blob {digest} from {url} is {bytes} bytes, its descriptor says {size}: the mirror served a truncated or wrong blob; purge it from the mirror's cache"
                ),
            ));
        }
        let got = verifier.finish();
        if &got != digest {
            return Err(Diagnosis::new(
                Kind::DigestMismatch,
                format!(
                    "blob {digest} from {url} hashes to {got}: the mirror served wrong bytes; purge the blob from the mirror's cache"
                ),
            ));
        }
        Ok(Blob {
            exchange,
            redirect,
            bytes,
        })
    }

    /// Send a GET for `repo`, answering an auth challenge once.
    async fn send(
        &self,
        repo: &str,
        url: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, Diagnosis> {
        let cached = crate::error::lock(&self.auth).get(repo).cloned();
        let resp = self.send_raw(url, accept, cached.as_deref()).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let header = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let challenges = AuthChallenge::parse_all(&header);
        let challenge = challenges
            .iter()
            .find(|c| c.scheme == AuthScheme::Bearer)
            .or_else(|| challenges.iter().find(|c| c.scheme == AuthScheme::Basic))
            .cloned();
        let Some(challenge) = challenge else {
            let exchange = Exchange::from_response("GET", &resp);
            let body = read_small(resp, url).await.unwrap_or_default();
            return Err(status_diagnosis(
                StatusCode::UNAUTHORIZED,
                url,
                &body,
                &exchange.headers,
            ));
        };
        let authorization = self.authorize(&challenge, repo, url).await?;
        let resp = self.send_raw(url, accept, Some(&authorization)).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let exchange = Exchange::from_response("GET", &resp);
            let body = read_small(resp, url).await.unwrap_or_default();
            return Err(status_diagnosis(
                StatusCode::UNAUTHORIZED,
                url,
                &body,
                &exchange.headers,
            ));
        }
        crate::error::lock(&self.auth).insert(repo.to_string(), authorization);
        Ok(resp)
    }

    /// Turn a challenge into an `Authorization` header value.
    async fn authorize(
        &self,
        challenge: &AuthChallenge,
        repo: &str,
        url: &str,
    ) -> Result<String, Diagnosis> {
        let credentials = self.credentials().await;
        if let Some((_, identity)) =
            credentials.filter(|(u, _)| u == docker_config::IDENTITY_TOKEN_USER)
        {
            if challenge.scheme != AuthScheme::Bearer {
                return Err(Diagnosis::new(
                    Kind::Unauthorized,
                    format!(
                        "{url} asks for a user name and password, but the docker config holds an identity token for {}",
                        host_of(url)
                    ),
                )
                .at(url)
                .with_remedy(Remedy::GiveUserPassword));
            }
            let t = token::fetch_with_identity_token(&self.http, challenge, repo, identity, url)
                .await?;
            return Ok(t.authorization);
        }
        let basic = credentials.map(|(u, p)| token::basic(u, p));
        if challenge.scheme == AuthScheme::Basic {
            return basic.ok_or_else(|| {
                Diagnosis::new(
                    Kind::Unauthorized,
                    format!(
                        "{url} asks for a user name and password (Basic auth) and none was given"
                    ),
                )
                .at(url)
                .with_remedy(Remedy::GiveCredentials)
            });
        }
        let t = token::fetch(&self.http, challenge, repo, basic.as_deref(), url).await?;
        Ok(t.authorization)
    }

    /// GET `url`, following redirects (at most [`MAX_REDIRECTS`]): `Authorization` goes only
    /// to the origin it was meant for ([`same_origin`]), and the first redirect is kept in the
    /// final response's extensions as evidence.
    async fn send_raw(
        &self,
        url: &str,
        accept: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<reqwest::Response, Diagnosis> {
        let origin = reqwest::Url::parse(url).ok();
        let mut target = url.to_string();
        let mut first: Option<Exchange> = None;
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.http.get(&target);
            if let Some(ua) = self.agent {
                req = req.header(reqwest::header::USER_AGENT, ua);
            }
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            let here = reqwest::Url::parse(&target).ok();
            let same = matches!((&origin, &here), (Some(o), Some(h)) if same_origin(o, h));
            if let (Some(a), true) = (authorization, same) {
                req = req.header(AUTHORIZATION, a);
            }
            let mut resp = req.send().await.map_err(|e| classify_error(&e, &target))?;
            let next = resp
                .status()
                .is_redirection()
                .then(|| resp.headers().get(reqwest::header::LOCATION))
                .flatten()
                .and_then(|l| l.to_str().ok())
                .and_then(|l| resp.url().join(l).ok());
            let Some(next) = next else {
                if let Some(r) = first {
                    resp.extensions_mut().insert(Redirected(r));
                }
                return Ok(resp);
            };
            if first.is_none() {
                let mut ex = Exchange::from_response("GET", &resp);
                // A presigned URL's query is a credential: keep where it pointed, not the key.
                for (k, v) in &mut ex.headers {
                    if k == "location" && v.contains('?') {
                        *v = format!("{}?…", without_query(next.as_str()));
                    }
                }
                first = Some(ex);
            }
            target = next.to_string();
        }
        Err(Diagnosis::new(
            Kind::BadResponse,
            format!("{url} redirected more than {MAX_REDIRECTS} times"),
        )
        .at(url))
    }

    /// Does the registry accept pushes to `repo`? `POST /v2/<repo>/blobs/uploads/`: a
    /// pull-through cache refuses (distribution in proxy mode: 405 `UNSUPPORTED`), a plain
    /// registry opens an upload session, which is cancelled at once (`DELETE` its Location).
    /// Returns the POST's exchange. Sends the cached pull credentials, if any.
    pub async fn probe_push(&self, repo: &str) -> Result<Exchange, Diagnosis> {
        let repo = &*self.repo(repo);
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let mut req = self.http.post(&url);
        if let Some(a) = crate::error::lock(&self.auth).get(repo).cloned() {
            req = req.header(AUTHORIZATION, a);
        }
        let resp = req.send().await.map_err(|e| classify_error(&e, &url))?;
        let exchange = Exchange::from_response("POST", &resp);
        let _ = read_small(resp, &url).await;
        if exchange.status == 202 {
            if let Some(loc) = exchange.header("location") {
                let target = reqwest::Url::parse(&url)
                    .and_then(|u| u.join(loc))
                    .map(|u| u.to_string())
                    .unwrap_or_else(|_| loc.to_string());
                let mut del = self.http.delete(&target);
                if let Some(a) = crate::error::lock(&self.auth).get(repo).cloned() {
                    del = del.header(AUTHORIZATION, a);
                }
                let _ = del.send().await;
            }
        }
        Ok(exchange)
    }
}

pub(crate) async fn read_small(
    mut resp: reqwest::Response,
    url: &str,
) -> Result<Vec<u8>, Diagnosis> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                out.extend_from_slice(&c);
                if out.len() > MAX_MANIFEST {
                    return Err(Diagnosis::new(
                        Kind::BadResponse,
                        format!("{url} answered with more than 4 MiB where a manifest or error was expected"),
                    ));
                }
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(classify_error(&e, url)),
        }
    }
}

pub(crate) fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| url.to_string())
}

/// `https://h/dh/` → (`https://h`, `Some("dh")`); a base without a path → (base, `None`).
pub fn split_project(base: &str) -> (String, Option<String>) {
    let b = base.trim().trim_end_matches('/');
    let Some((scheme, rest)) = b.split_once("://") else {
        return (b.to_string(), None);
    };
    match rest.split_once('/') {
        Some((host, path)) if !path.is_empty() => {
            (format!("{scheme}://{host}"), Some(path.to_string()))
        }
        _ => (b.to_string(), None),
    }
}

/// One sentence for a non-success status.
pub fn status_diagnosis(
    status: StatusCode,
    url: &str,
    body: &[u8],
    headers: &[(String, String)],
) -> Diagnosis {
    let text = String::from_utf8_lossy(body);
    let code = oci::parse_error_body(body);
    let oci = code
        .as_ref()
        .map(|(c, m)| format!(" ({c}: {m})"))
        .unwrap_or_default();
    let n = status.as_u16();
    let (kind, fact, remedy) = if n == 400
        && text.contains("Client sent an HTTP request to an HTTPS server")
    {
        (
            Kind::HttpsToHttp,
            format!("{} speaks HTTPS but was given as http://", host_of(url)),
            Some(Remedy::UseScheme { https: true }),
        )
    } else {
        match n {
            401 => (
                Kind::Unauthorized,
                format!("{url} answered 401 Unauthorized{oci} and no usable credentials were given"),
                Some(Remedy::GiveCredentials),
            ),
            403 => (
                Kind::Forbidden,
                format!("{url} answered 403 Forbidden{oci}: the credentials lack pull access to this repository"),
                None,
            ),
            404 => (
                Kind::NotFound,
                format!("{url} answered 404 Not Found{oci}"),
                Some(Remedy::CheckImage),
            ),
            429 => {
                let reset = header(headers, "retry-after")
                    .map(|r| format!(" (Retry-After: {r})"))
                    .unwrap_or_default();
                (
                    Kind::RateLimited,
                    format!("{url} answered 429 Too Many Requests{oci}{reset}: the mirror or its upstream is rate limited; wait, or give the mirror Docker Hub credentials"),
                    None,
                )
            }
            500..=599 => (
                Kind::ServerError,
                format!("{url} answered {status}{oci}: the mirror (or its upstream) failed; check the mirror's log and its upstream connectivity"),
                None,
            ),
            _ => (Kind::BadResponse, format!("{url} answered {status}{oci}"), None),
        }
    };
    let mut d = Diagnosis::new(kind, fact).at(url);
    d.remedy = remedy;
    d.code = code.map(|(c, _)| c);
    d.cache_status = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cache-status"))
        .flat_map(|(_, v)| oci::CacheStatus::parse_list(v))
        .collect();
    d
}

/// Classify a transport error into one sentence with the fix.
pub fn classify_error(e: &reqwest::Error, url: &str) -> Diagnosis {
    let mut chain = format!("{e}");
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    let mut d = classify_chain(&chain, e.is_timeout(), e.is_connect(), url);
    if matches!(
        d.kind,
        Kind::Refused | Kind::Dns | Kind::Timeout | Kind::Network | Kind::Tls
    ) {
        d.proxy = env_proxy_for(url).map(Box::new);
    }
    d
}

/// [`proxy_for`] with this process's environment.
pub fn env_proxy_for(url: &str) -> Option<(String, String)> {
    proxy_for(url, |k| std::env::var(k).ok())
}

/// The proxy reqwest uses for `url` from the environment (`http_proxy`/`HTTP_PROXY`,
/// `https_proxy`/`HTTPS_PROXY`, `all_proxy`/`ALL_PROXY`, minus `no_proxy`/`NO_PROXY`), and the
/// variable it came from. `NO_PROXY`: `*`, host names (suffix match, leading dot optional) and
/// IP addresses.
pub fn proxy_for(url: &str, env: impl Fn(&str) -> Option<String>) -> Option<(String, String)> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let get = |names: &[&str]| {
        names.iter().find_map(|n| {
            env(n)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (v, n.to_string()))
        })
    };
    let no_proxy = get(&["no_proxy", "NO_PROXY"])
        .map(|(v, _)| v)
        .unwrap_or_default();
    for entry in no_proxy.split(',').map(|e| e.trim().to_ascii_lowercase()) {
        let e = entry.trim_start_matches('.');
        if entry == "*" || (!e.is_empty() && (host == e || host.ends_with(&format!(".{e}")))) {
            return None;
        }
    }
    let scheme_vars: &[&str] = if u.scheme() == "https" {
        &["https_proxy", "HTTPS_PROXY"]
    } else {
        &["http_proxy", "HTTP_PROXY"]
    };
    get(scheme_vars).or_else(|| get(&["all_proxy", "ALL_PROXY"]))
}

/// [`classify_error`] on the text of an error chain (separated for testing).
pub fn classify_chain(chain: &str, timeout: bool, connect: bool, url: &str) -> Diagnosis {
    let host = host_of(url);
    let last = last_part(chain);
    let https = url.starts_with("https://");
    let Some(kind) = transport_kind(&chain.to_ascii_lowercase(), https, timeout) else {
        let what = if connect {
            "cannot connect to"
        } else {
            "request to"
        };
        return Diagnosis::new(Kind::Network, format!("{what} {url} failed: {last}")).at(url);
    };
    let (fact, remedy) = match kind {
        Kind::HttpToHttps => (
            format!("server gave HTTP response to HTTPS client: {host} speaks plain HTTP"),
            Remedy::UseScheme { https: false },
        ),
        Kind::HttpsToHttp => (
            format!("{host} did not answer in plain HTTP (it probably speaks HTTPS)"),
            Remedy::UseScheme { https: true },
        ),
        Kind::Refused => (
            format!("connection to {host} refused: nothing listens there"),
            Remedy::StartOrFixPort,
        ),
        Kind::Dns => (
            format!("cannot resolve the host name of {host}"),
            Remedy::FixHostName,
        ),
        Kind::Tls => (format!("TLS with {host} failed ({last})"), Remedy::TrustCa),
        Kind::Timeout => (
            format!("{host} did not answer in time"),
            Remedy::CheckReachable,
        ),
        _ => (
            format!("{host} closed the connection ({last})"),
            Remedy::CheckSchemeOrLog,
        ),
    };
    Diagnosis::new(kind, fact).at(url).with_remedy(remedy)
}

/// Which transport failure an error chain's text (lower-case) shows; `Network` only for a
/// connection closed on us. `None`: something else.
fn transport_kind(lower: &str, https: bool, timeout: bool) -> Option<Kind> {
    let any = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if any(&["invalidcontenttype", "corrupt message"]) || (https && any(&["wrong version number"]))
    {
        return Some(Kind::HttpToHttps);
    }
    if !https
        && any(&[
            "invalid http version",
            "invalid status",
            "received an invalid",
            "\\x15\\x03",
        ])
    {
        return Some(Kind::HttpsToHttp);
    }
    if any(&["connection refused"]) {
        return Some(Kind::Refused);
    }
    if any(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no address associated",
        "temporary failure in name resolution",
    ]) {
        return Some(Kind::Dns);
    }
    if any(&["certificate", "tls", "handshake", "unknownissuer"]) {
        return Some(Kind::Tls);
    }
    if timeout || any(&["timed out", "deadline"]) {
        return Some(Kind::Timeout);
    }
    if any(&["connection reset", "connection closed"]) {
        return Some(Kind::Network);
    }
    None
}

fn last_part(chain: &str) -> &str {
    chain.rsplit(": ").next().unwrap_or(chain).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_only_to_the_same_origin_and_presigned_queries_are_left_out() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        let mirror = u("http://127.0.0.1:5000/v2/x/blobs/sha256:00");
        assert_eq!(
            split_project("https://h:1/dh/"),
            ("https://h:1".to_string(), Some("dh".to_string()))
        );
        assert_eq!(split_project("http://h"), ("http://h".to_string(), None));
        assert_eq!(split_project("http://h/"), ("http://h".to_string(), None));
        assert!(same_origin(&mirror, &u("http://127.0.0.1:5000/other")));
        assert!(
            !same_origin(&mirror, &u("http://127.0.0.1:9000/bucket/x")),
            "another port"
        );
        assert!(
            !same_origin(&mirror, &u("https://127.0.0.1:5000/x")),
            "another scheme"
        );
        assert!(
            !same_origin(&mirror, &u("http://s3.example/x")),
            "another host"
        );
        assert!(
            same_origin(&u("https://h/x"), &u("https://h:443/y")),
            "the default port"
        );
        assert_eq!(
            without_query("http://s3:9000/b/k/data?X-Amz-Signature=abc&X-Amz-Credential=k"),
            "http://s3:9000/b/k/data"
        );
    }

    #[test]
    fn chains_classify() {
        let d = classify_chain(
            "error sending request for url (https://127.0.0.1:5000/v2/): client error (Connect): received corrupt message of type InvalidContentType",
            false,
            true,
            "https://127.0.0.1:5000/v2/",
        );
        assert_eq!(d.kind, Kind::HttpToHttps);
        assert!(d.fact.contains("server gave HTTP response to HTTPS client"));
        assert_eq!(d.remedy, Some(Remedy::UseScheme { https: false }));
        let d = classify_chain(
            "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)",
            false,
            true,
            "http://127.0.0.1:1/v2/",
        );
        assert_eq!(d.kind, Kind::Refused);
        let d = classify_chain(
            "error sending request: client error (Connect): dns error: failed to lookup address information: Name or service not known",
            false,
            true,
            "http://nope.invalid/v2/",
        );
        assert_eq!(d.kind, Kind::Dns);
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let proxied = env(&[
            ("HTTP_PROXY", "http://p:3128"),
            ("NO_PROXY", "localhost,.corp.example,10.0.0.5"),
        ]);
        assert_eq!(
            proxy_for("http://m.lan:5000/v2/", proxied),
            Some(("http://p:3128".into(), "HTTP_PROXY".into()))
        );
        for direct in [
            "http://a.corp.example/v2/",
            "http://corp.example/v2/",
            "http://10.0.0.5:5000/v2/",
            "https://m.lan/v2/",
        ] {
            assert_eq!(proxy_for(direct, proxied), None, "{direct}");
        }
        assert_eq!(
            proxy_for("https://m.lan/v2/", env(&[("ALL_PROXY", "socks5://s:1")])),
            Some(("socks5://s:1".into(), "ALL_PROXY".into()))
        );
        assert_eq!(
            proxy_for(
                "http://m.lan/",
                env(&[("HTTP_PROXY", "http://p"), ("no_proxy", "*")])
            ),
            None
        );
        let d = classify_chain(
            "error sending request: operation timed out",
            true,
            false,
            "http://10.0.0.1/v2/",
        );
        assert_eq!(d.kind, Kind::Timeout);
        let d = classify_chain(
            "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer",
            false,
            true,
            "https://m/v2/",
        );
        assert_eq!(d.kind, Kind::Tls);
        let d = classify_chain(
            "error sending request: client error (SendRequest): connection error: received an invalid HTTP version",
            false,
            false,
            "http://m:443/v2/",
        );
        assert_eq!(d.kind, Kind::HttpsToHttp);
    }

    #[test]
    fn statuses_classify() {
        let body = oci::error_body(&oci::ErrorCode::ManifestUnknown, "manifest unknown", None);
        let d = status_diagnosis(
            StatusCode::NOT_FOUND,
            "http://m/v2/x/manifests/y",
            body.as_bytes(),
            &[],
        );
        assert_eq!(d.kind, Kind::NotFound);
        assert!(d.fact.contains("MANIFEST_UNKNOWN"), "{d}");
        assert_eq!(d.code, Some(oci::ErrorCode::ManifestUnknown));
        let d = status_diagnosis(
            StatusCode::BAD_REQUEST,
            "http://m:5000/v2/",
            b"Client sent an HTTP request to an HTTPS server.\n",
            &[],
        );
        assert_eq!(d.kind, Kind::HttpsToHttp);
        let d = status_diagnosis(
            StatusCode::TOO_MANY_REQUESTS,
            "http://m/v2/",
            b"",
            &[("retry-after".into(), "60".into())],
        );
        assert_eq!(d.kind, Kind::RateLimited);
        assert!(d.fact.contains("Retry-After: 60"));
        let d = status_diagnosis(
            StatusCode::BAD_GATEWAY,
            "http://m/v2/",
            b"",
            &[(
                "cache-status".into(),
                "mirrorctl; fwd=uri-miss; detail=upstream-unreachable".into(),
            )],
        );
        assert_eq!(d.kind, Kind::ServerError);
        assert!(d.upstream_unreachable());
        let d = status_diagnosis(StatusCode::UNAUTHORIZED, "http://m/v2/", b"", &[]);
        assert_eq!(d.kind, Kind::Unauthorized);
    }
}
