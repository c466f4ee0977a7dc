//! `mirrorctl verify`: prove that pulls come from the mirror and from its cache.
//!
//! Preflight `GET /v2/` → pull #1 (manifest, platform manifest, config, every layer, each
//! verified while streaming) → optional upstream block in the hosts file → pull #2 → report.
//! Exit 0 only when pull #2 was served from the cache: proven by an explicit cache header, or
//! inferred from distribution's storage fingerprint *after* pull #1 showed a miss (a plain
//! registry, or a non-caching proxy in front of one, shows the fingerprint on both pulls).

pub mod clients;
pub mod embedded;
pub mod evidence;
pub mod hosts;
pub mod progress;

use crate::cli::{Global, VerifyArgs};
use crate::commands;
use crate::error::UserError;
use crate::journal::Journal;
use crate::oci::{self, Digest, Platform, Reference};
use crate::output;
use crate::registry::{Client, Credentials, Diagnosis, Exchange};
use anyhow::{Context, Result};
use evidence::{Cache, Evidence, RateLimit, Strength};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct ResponseReport {
    /// `manifest`, `index`, `platform-manifest`, `config` or `layer`.
    pub kind: &'static str,
    pub url: String,
    pub status: u16,
    pub cache: Cache,
    pub strength: Strength,
    pub evidence: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    pub n: u32,
    pub ok: bool,
    pub cache: Cache,
    pub strength: Strength,
    /// Why the pull got its `cache` verdict.
    pub reason: String,
    pub responses: Vec<ResponseReport>,
    pub bytes: u64,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub kind: &'static str,
    pub message: String,
}

impl From<Diagnosis> for ErrorReport {
    fn from(d: Diagnosis) -> Self {
        ErrorReport {
            kind: d.kind,
            message: d.message,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    pub ok: bool,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `none`, `bearer` or `basic`: what `/v2/` challenged with.
    pub auth: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArmedFile {
    pub target: String,
    pub file: String,
    pub names_mirror: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Armed {
    pub journal: String,
    pub files: Vec<ArmedFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientReport {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub mirror: String,
    pub image: String,
    pub platform: String,
    pub digest: Option<String>,
    pub preflight: Preflight,
    pub pulls: Vec<PullReport>,
    pub verdict: String,
    /// When the storage fingerprint showed on both pulls: how the mirror answered a push
    /// attempt (405 `UNSUPPORTED` = distribution in proxy mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_probe: Option<String>,
    pub upstream_blocked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_unreachable: Option<bool>,
    /// With `--block-upstream`: proxies (from this process's environment) that would carry a
    /// client's request to the upstream past the hosts block.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstream_proxies: Vec<String>,
    pub hosts_file: Option<String>,
    pub hosts_restored: Option<bool>,
    pub clients: Vec<ClientReport>,
    pub ratelimit: Option<RateLimit>,
    pub armed: Option<Armed>,
    /// `--embedded`: the in-process server's upstream and temporary cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedded: Option<embedded::EmbeddedReport>,
}

/// The mirror's base URL: scheme + authority, no path.
pub fn parse_mirror(s: &str) -> Result<String, UserError> {
    let u = url::Url::parse(s.trim()).map_err(|_| {
        UserError(format!(
            "--mirror `{s}` is not a URL; give the scheme too, e.g. http://10.0.0.5:5000"
        ))
    })?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(UserError(format!(
            "--mirror `{s}` must start with http:// or https://"
        )));
    }
    let Some(host) = u.host_str() else {
        return Err(UserError(format!("--mirror `{s}` has no host")));
    };
    if !(u.path().is_empty() || u.path() == "/" || u.path() == "/v2" || u.path() == "/v2/") {
        return Err(UserError(format!(
            "--mirror `{s}` must not have a path; registries live at the root (`/v2/`)"
        )));
    }
    Ok(match u.port() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    })
}

fn host_port(base: &str) -> String {
    base.split_once("://")
        .map(|(_, h)| h)
        .unwrap_or(base)
        .to_string()
}

fn read_password_stdin() -> Result<String> {
    use std::io::Read;
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from stdin")?;
    let p = s.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        return Err(UserError("--password-stdin: stdin was empty".into()).into());
    }
    Ok(p)
}

/// The armed configs and whether each names `base`.
fn armed_check(state_dir: &Path, base: &str) -> Option<Armed> {
    let path = Journal::path(state_dir);
    if !path.exists() {
        return None;
    }
    let j = Journal::load(state_dir).ok()?;
    if j.files.is_empty() {
        return None;
    }
    let want = base.trim_end_matches('/');
    let files = j
        .files
        .iter()
        .map(|(sys, rec)| ArmedFile {
            target: rec.target.as_str().to_string(),
            file: sys.clone(),
            names_mirror: rec.mirrors.iter().any(|m| {
                let url = m.split_once('=').map(|(_, u)| u).unwrap_or(m);
                url.trim_end_matches('/').eq_ignore_ascii_case(want)
            }),
        })
        .collect();
    Some(Armed {
        journal: path.display().to_string(),
        files,
    })
}

pub fn run(g: &Global, a: &VerifyArgs) -> Result<i32> {
    let ctx = commands::context(g)?;
    let hosts_path = a
        .hosts_file
        .clone()
        .unwrap_or_else(|| hosts::default_path(&ctx.root));
    if a.cleanup {
        let note = hosts::remove_block(&hosts_path)?;
        if a.json {
            println!(
                "{}",
                serde_json::json!({"ok": true, "hosts_file": hosts_path, "removed": note.is_some()})
            );
        } else if !output::quiet() {
            println!(
                "{}",
                note.unwrap_or_else(|| format!(
                    "no mirrorctl verify block in {}",
                    hosts_path.display()
                ))
            );
        }
        return Ok(0);
    }
    let reference: Reference = a
        .image
        .parse()
        .map_err(|e| UserError(format!("--image `{}`: {e}", a.image)))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if a.upstream.is_some() && !a.embedded {
        return Err(UserError(
            "--upstream is the upstream of --embedded's server; with --mirror, the mirror's own upstream is used".into(),
        )
        .into());
    }
    let embedded = match a.embedded {
        true => {
            let upstream = match &a.upstream {
                Some(u) => {
                    parse_mirror(u).map_err(|e| UserError(e.0.replace("--mirror", "--upstream")))?
                }
                None => oci::upstream_endpoint(&reference.registry),
            };
            Some(rt.block_on(embedded::Embedded::start(
                &reference.registry,
                &upstream,
                &std::env::temp_dir(),
            ))?)
        }
        false => None,
    };
    let mirror = match &embedded {
        Some(e) => e.url(),
        None => parse_mirror(a.mirror.as_deref().unwrap_or_default())?,
    };
    let platform = match &a.platform {
        Some(p) => Platform::parse(p).map_err(UserError)?,
        None => Platform::host(),
    };
    let credentials = match (&a.username, a.password_stdin) {
        (Some(u), true) => Credentials::Given(u.clone(), read_password_stdin()?),
        (Some(_), false) => {
            return Err(UserError(
                "--username needs --password-stdin (the password is read from stdin)".into(),
            )
            .into())
        }
        _ => Credentials::DockerConfig(host_port(&mirror)),
    };
    let timeout = Duration::from_secs(a.timeout);
    let ca = match &a.ca_cert {
        Some(p) => Some(
            std::fs::read(p).map_err(|e| UserError(format!("--ca-cert `{}`: {e}", p.display())))?,
        ),
        None => None,
    };
    let client = Client::new(&mirror, credentials, timeout, ca.as_deref())
        .map_err(|e| UserError(format!("--ca-cert: {e:#}")))?;
    // The armed configs cannot name an embedded server's ephemeral port.
    let armed = match embedded {
        Some(_) => None,
        None => armed_check(&ctx.state_dir, &mirror),
    };
    let guard: Arc<Mutex<Option<hosts::HostsGuard>>> = Arc::new(Mutex::new(None));

    let block = a.block_upstream.then(|| hosts_path.clone());
    let probes = ClientProbes {
        names: a.clients.clone(),
        root: ctx.root.clone(),
        platform: a.platform.clone(),
        timeout,
        json: a.json,
    };
    let report = rt.block_on(async {
        let work = verify_flow(
            &client,
            &mirror,
            &reference,
            &platform,
            block,
            guard.clone(),
            probes,
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = work => r.map(Some),
            _ = tokio::signal::ctrl_c() => Ok::<_, anyhow::Error>(interrupted(&guard, 130)),
            _ = term.recv() => Ok(interrupted(&guard, 143)),
        }
    })?;
    let Some(mut report) = report else {
        unreachable!("interrupted() exits")
    };
    // The guard is normally released inside the flow; make sure.
    if let Some(mut g) = guard.lock().unwrap().take() {
        report.hosts_restored = Some(g.restore().is_ok());
    }
    report.armed = armed;
    if let Some(e) = embedded {
        report.embedded = Some(rt.block_on(e.stop()));
        let proven = report
            .pulls
            .get(1)
            .is_some_and(|p| p.ok && p.cache == Cache::Hit && p.strength == Strength::Proven);
        if report.ok && !proven {
            report.ok = false;
            report.verdict = format!(
                "the embedded server's pull #2 was not a Cache-Status hit: {}",
                report.verdict
            );
        }
        let upstream_down = report
            .pulls
            .first()
            .and_then(|p| p.error.as_ref())
            .is_some_and(|e| e.message.contains("upstream registry unreachable"));
        if upstream_down {
            let up = report.embedded.as_ref().map(|e| e.upstream.clone());
            report.verdict = format!(
                "the embedded server cannot reach its upstream {}: this machine needs access to it, or pass --upstream with a registry it can reach ({})",
                up.unwrap_or_default(),
                report.verdict
            );
        }
    }
    let code = if report.ok { 0 } else { 1 };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    Ok(code)
}

/// SIGINT/SIGTERM: remove the block, then exit with 128+signal.
fn interrupted(guard: &Arc<Mutex<Option<hosts::HostsGuard>>>, code: i32) -> Option<Report> {
    embedded::remove_live();
    let restored = match guard.lock().unwrap().take() {
        Some(mut g) => g.restore().is_ok(),
        None => true,
    };
    eprintln!(
        "mirrorctl: interrupted; {}",
        if restored {
            "hosts file restored"
        } else {
            "could not restore the hosts file: run `mirrorctl verify --cleanup`"
        }
    );
    std::process::exit(code)
}

/// What `--client` asked for, and whether the output is JSON (then no progress on stderr).
struct ClientProbes {
    names: Vec<clients::ClientName>,
    root: PathBuf,
    platform: Option<String>,
    timeout: Duration,
    json: bool,
}

async fn verify_flow(
    client: &Client,
    mirror: &str,
    reference: &Reference,
    platform: &Platform,
    block: Option<PathBuf>,
    guard: Arc<Mutex<Option<hosts::HostsGuard>>>,
    probes: ClientProbes,
) -> Result<Report> {
    let json = probes.json;
    let mut report = Report {
        ok: false,
        mirror: mirror.to_string(),
        image: reference.to_string(),
        platform: platform.to_string(),
        digest: None,
        preflight: Preflight {
            ok: false,
            url: format!("{mirror}/v2/"),
            status: None,
            auth: "none".into(),
            error: None,
        },
        pulls: Vec::new(),
        verdict: String::new(),
        push_probe: None,
        upstream_blocked: false,
        upstream_unreachable: None,
        upstream_proxies: Vec::new(),
        hosts_file: block.as_ref().map(|p| p.display().to_string()),
        hosts_restored: None,
        clients: Vec::new(),
        ratelimit: None,
        armed: None,
        embedded: None,
    };
    match client.ping().await {
        Ok(p) => {
            report.preflight.ok = true;
            report.preflight.status = Some(p.exchange.status);
            report.preflight.auth = match p.challenge.map(|c| c.scheme) {
                Some(oci::AuthScheme::Bearer) => "bearer".into(),
                Some(oci::AuthScheme::Basic) => "basic".into(),
                Some(oci::AuthScheme::Other(s)) => s.to_ascii_lowercase(),
                None => "none".into(),
            };
            report.ratelimit = RateLimit::from_headers(&p.exchange.headers);
        }
        Err(d) => {
            report.verdict = d.message.clone();
            report.preflight.error = Some(d.into());
            return Ok(report);
        }
    }
    let pull1 = pull(
        client,
        reference,
        platform,
        1,
        &progress::Reporter::auto(1, json, output::quiet()),
    )
    .await;
    report.digest = pull1
        .responses
        .first()
        .and_then(|r| r.digest.clone())
        .filter(|_| pull1.responses.first().is_some_and(|r| r.status < 300));
    let ok1 = pull1.ok;
    report.pulls.push(pull1);
    if !ok1 {
        report.verdict = format!(
            "pull #1 through the mirror failed: {}",
            report.pulls[0]
                .error
                .as_ref()
                .map(|e| e.message.as_str())
                .unwrap_or("?")
        );
        return Ok(report);
    }
    if let Some(path) = &block {
        let hosts = oci::upstream_hosts(&reference.registry);
        let g = hosts::HostsGuard::install(path, &hosts)?;
        report.upstream_blocked = true;
        report.upstream_unreachable = upstream_unreachable(path, &hosts);
        // A proxy resolves the upstream's name itself: the hosts block does not stop clients
        // that inherit this environment (ctr, podman, skopeo, our own client).
        report.upstream_proxies = hosts
            .iter()
            .filter_map(|h| {
                crate::registry::env_proxy_for(&format!("https://{h}/v2/"))
                    .map(|(p, var)| format!("{h} via {p} (${var})"))
            })
            .collect();
        if !report.upstream_proxies.is_empty() {
            report.upstream_unreachable = Some(false);
        }
        *guard.lock().unwrap() = Some(g);
    }
    let pull2 = pull(
        client,
        reference,
        platform,
        2,
        &progress::Reporter::auto(2, json, output::quiet()),
    )
    .await;
    for name in probes.names.iter().copied() {
        let (root, m, r, p, t) = (
            probes.root.clone(),
            mirror.to_string(),
            reference.clone(),
            probes.platform.clone(),
            probes.timeout,
        );
        let blocked = report.upstream_unreachable == Some(true);
        let rep = tokio::task::spawn_blocking(move || {
            clients::probe(name, &root, &m, &r, p.as_deref(), blocked, t)
        })
        .await?;
        report.clients.push(rep);
    }
    if let Some(mut g) = guard.lock().unwrap().take() {
        report.hosts_restored = Some(g.restore().is_ok());
    }
    report.pulls.push(pull2);
    for p in &report.pulls {
        for r in &p.responses {
            if report.ratelimit.is_none() {
                report.ratelimit = RateLimit::from_headers(&r.headers);
            }
        }
    }
    let push = if warm_fingerprint(&report.pulls[0], &report.pulls[1]) {
        match client.probe_push(&reference.repository).await {
            Ok(ex) => Some(PushProbe {
                status: ex.status,
                summary: format!("POST {} → {}", ex.url, ex.status),
            }),
            Err(d) => Some(PushProbe {
                status: 0,
                summary: d.message,
            }),
        }
    } else {
        None
    };
    report.push_probe = push.as_ref().map(|p| p.summary.clone());
    let (ok, verdict) = decide(&report.pulls[0], &report.pulls[1], push.as_ref());
    if let Some(p) = push.as_ref().filter(|p| !p.refused_like_a_proxy()) {
        // The fingerprint was on both pulls and the push probe did not confirm a proxy: a
        // plain registry (or a non-caching proxy in front of one) looks the same, so these
        // pulls are not reported as hits.
        for pull in &mut report.pulls {
            demote_fingerprint(pull, &p.summary);
        }
    }
    report.ok = ok;
    report.verdict = verdict;
    let failed: Vec<&str> = report
        .clients
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    if !failed.is_empty() {
        report.ok = false;
        report.verdict = format!(
            "{}; client(s) not pulling through the mirror: {}",
            report.verdict,
            failed.join(", ")
        );
    }
    Ok(report)
}

/// Whether every upstream name now resolves to 0.0.0.0/:: — only checkable when the hosts file
/// is this host's `/etc/hosts` (the resolver does not read any other).
fn upstream_unreachable(path: &Path, hosts: &[String]) -> Option<bool> {
    use std::net::ToSocketAddrs;
    let real = std::fs::canonicalize(path).ok()? == std::fs::canonicalize("/etc/hosts").ok()?;
    if !real {
        return None;
    }
    Some(
        hosts
            .iter()
            .all(|h| match (h.as_str(), 443).to_socket_addrs() {
                Ok(addrs) => addrs.into_iter().all(|a| a.ip().is_unspecified()),
                Err(_) => true,
            }),
    )
}

/// Turn a hit inferred from distribution's storage fingerprint into `unknown`: the push probe
/// (`probe`) could not tell a warm distribution mirror from a plain registry.
fn demote_fingerprint(pull: &mut PullReport, probe: &str) {
    if pull.cache == Cache::Hit && pull.strength == Strength::Inferred {
        pull.cache = Cache::Unknown;
        pull.strength = Strength::None;
        pull.reason = format!(
            "{}; but a plain registry shows it too, and the push probe did not show a proxy ({probe})",
            pull.reason
        );
    }
    for r in &mut pull.responses {
        if r.cache == Cache::Hit && r.strength == Strength::Inferred {
            r.cache = Cache::Unknown;
            r.strength = Strength::None;
        }
    }
}

/// The answer to the push attempt made when the fingerprint is on both pulls.
pub struct PushProbe {
    pub status: u16,
    pub summary: String,
}

impl PushProbe {
    /// 405, as distribution in proxy mode refuses pushes: the mirror is a pull-through cache.
    pub fn refused_like_a_proxy(&self) -> bool {
        self.status == 405
    }
}

/// Both pulls served every blob with distribution's storage fingerprint (and nothing else).
fn warm_fingerprint(p1: &PullReport, p2: &PullReport) -> bool {
    p1.ok
        && p2.ok
        && p1.cache == Cache::Hit
        && p1.strength == Strength::Inferred
        && p2.cache == Cache::Hit
        && p2.strength == Strength::Inferred
}

/// The verdict on the two pulls.
pub fn decide(p1: &PullReport, p2: &PullReport, push: Option<&PushProbe>) -> (bool, String) {
    if !p2.ok {
        return (
            false,
            format!(
                "pull #2 through the mirror failed: {}",
                p2.error.as_ref().map(|e| e.message.as_str()).unwrap_or("?")
            ),
        );
    }
    match (p2.cache, p2.strength) {
        (Cache::Hit, Strength::Proven) => (true, format!("pull #2 was served from the mirror's cache ({})", p2.reason)),
        (Cache::Hit, _) => {
            if p1.cache == Cache::Miss {
                (
                    true,
                    "pull #2 was served from the mirror's storage after pull #1 streamed from upstream (distribution fingerprint appeared)".into(),
                )
            } else if push.is_some_and(PushProbe::refused_like_a_proxy) {
                (
                    true,
                    format!(
                        "pull #2 was served from the mirror's storage: the mirror was already warm, and it refuses pushes like distribution in proxy mode ({})",
                        push.map(|p| p.summary.as_str()).unwrap_or("")
                    ),
                )
            } else if push.is_some_and(|p| p.status == 202) {
                (
                    false,
                    format!(
                        "not a cache: the \"mirror\" serves blobs from its own storage and accepts pushes ({}, upload cancelled), so it is a plain registry (or a non-caching proxy in front of one), not a pull-through cache",
                        push.map(|p| p.summary.as_str()).unwrap_or("")
                    ),
                )
            } else {
                (
                    false,
                    "not proven: every blob carried distribution's storage fingerprint on both pulls, which a warm distribution mirror and a plain registry (or a non-caching proxy in front of one) both do; verify with an image the mirror has not cached yet (--image), or use a mirror that sends Cache-Status".into(),
                )
            }
        }
        (Cache::Miss, _) => (
            false,
            format!(
                "pull #2 was NOT served from the mirror's cache ({}): the mirror forwards to its upstream without storing; check its cache/storage configuration",
                p2.reason
            ),
        ),
        (Cache::Unknown, _) => (
            false,
            format!(
                "cannot tell whether pull #2 came from a cache ({}): the mirror sends no cache header (Cache-Status, X-Cache, …) and is not recognisably distribution",
                p2.reason
            ),
        ),
    }
}

fn response(
    kind: &'static str,
    ex: &Exchange,
    blob: bool,
    digest: Option<&Digest>,
) -> ResponseReport {
    let Evidence {
        cache,
        strength,
        header,
    } = evidence::classify(&ex.headers, blob);
    ResponseReport {
        kind,
        url: ex.url.clone(),
        status: ex.status,
        cache,
        strength,
        evidence: header,
        digest: digest.map(|d| d.to_string()),
        headers: ex.headers.clone(),
    }
}

async fn pull(
    client: &Client,
    r: &Reference,
    platform: &Platform,
    n: u32,
    progress: &dyn progress::Progress,
) -> PullReport {
    let start = Instant::now();
    let mut rep = PullReport {
        n,
        ok: false,
        cache: Cache::Unknown,
        strength: Strength::None,
        reason: String::new(),
        responses: Vec::new(),
        bytes: 0,
        seconds: 0.0,
        error: None,
    };
    if let Err(d) = pull_inner(client, r, platform, &mut rep, progress).await {
        rep.error = Some(d.into());
    } else {
        rep.ok = true;
    }
    progress.finish(rep.ok);
    rep.seconds = (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    summarize(&mut rep);
    rep
}

async fn pull_inner(
    client: &Client,
    r: &Reference,
    platform: &Platform,
    rep: &mut PullReport,
    progress: &dyn progress::Progress,
) -> Result<(), Diagnosis> {
    let repo = r.repository.as_str();
    let top = client.manifest(repo, &r.reference()).await?;
    let is_index = oci::media::is_index(&top.media_type);
    rep.responses.push(response(
        if is_index { "index" } else { "manifest" },
        &top.exchange,
        false,
        Some(&top.digest),
    ));
    rep.bytes += top.body.len() as u64;
    let manifest = if is_index {
        let index =
            oci::manifest::Index::parse(&top.body).map_err(|e| bad(&top.exchange.url, e))?;
        let pick = index.pick(platform).map_err(|have| {
            Diagnosis::new(
                "not-found",
                format!(
                    "{} has no {platform} image (it has {}): pass --platform",
                    r,
                    have.join(", ")
                ),
            )
        })?;
        let m = client.manifest(repo, &pick.digest.to_string()).await?;
        if m.body.len() as u64 != pick.size {
            return Err(Diagnosis::new(
                "size-mismatch",
                format!(
                    "manifest {} is {} bytes, the index says {}: the mirror served wrong bytes",
                    pick.digest,
                    m.body.len(),
                    pick.size
                ),
            ));
        }
        rep.responses.push(response(
            "platform-manifest",
            &m.exchange,
            false,
            Some(&m.digest),
        ));
        rep.bytes += m.body.len() as u64;
        m
    } else {
        top
    };
    let image = match oci::manifest::ImageManifest::parse(&manifest.body) {
        Ok(m) => m,
        Err(oci::manifest::ManifestError::SchemaV1) => return Err(Diagnosis::new(
            "bad-response",
            format!(
                "{r} is a schema 1 manifest, which mirrorctl does not verify; use another --image"
            ),
        )),
        Err(e) => return Err(bad(&manifest.exchange.url, e)),
    };
    let blobs: Vec<(&'static str, &oci::manifest::Descriptor)> = image
        .blobs()
        .map(|(k, d)| {
            let kind = match k {
                oci::manifest::BlobKind::Config => "config",
                oci::manifest::BlobKind::Layer => "layer",
            };
            (kind, d)
        })
        .collect();
    progress.start(blobs.len(), blobs.iter().map(|(_, d)| d.size).sum());
    for (kind, d) in blobs {
        progress.blob(&d.digest);
        let mut seen = 0u64;
        let b = client
            .blob(repo, &d.digest, d.size, |n| {
                progress.advance(n - seen);
                seen = n;
            })
            .await?;
        rep.bytes += b.bytes;
        rep.responses
            .push(response(kind, &b.exchange, true, Some(&d.digest)));
    }
    Ok(())
}

fn bad(url: &str, e: impl std::fmt::Display) -> Diagnosis {
    Diagnosis::new(
        "bad-response",
        format!("{url} returned a manifest mirrorctl cannot read ({e})"),
    )
}

/// The pull's verdict from its blob responses (manifests are reported, not counted: a tag
/// is revalidated upstream by most caches even when warm).
fn summarize(rep: &mut PullReport) {
    let blobs: Vec<&ResponseReport> = rep
        .responses
        .iter()
        .filter(|r| r.kind == "config" || r.kind == "layer")
        .collect();
    if blobs.is_empty() {
        rep.reason = "no blob fetched".into();
        return;
    }
    if let Some(m) = blobs.iter().find(|r| r.cache == Cache::Miss) {
        rep.cache = Cache::Miss;
        rep.strength = m.strength;
        rep.reason = format!(
            "{} {}: {}",
            m.kind,
            m.digest.as_deref().unwrap_or(""),
            m.evidence
        );
    } else if blobs.iter().all(|r| r.cache == Cache::Hit) {
        rep.cache = Cache::Hit;
        let proven = blobs.iter().all(|r| r.strength == Strength::Proven);
        rep.strength = if proven {
            Strength::Proven
        } else {
            Strength::Inferred
        };
        rep.reason = format!("every blob: {}", blobs[0].evidence);
    } else {
        let u = blobs.iter().find(|r| r.cache == Cache::Unknown).unwrap();
        rep.reason = format!(
            "{} {}: {}",
            u.kind,
            u.digest.as_deref().unwrap_or(""),
            u.evidence
        );
    }
}

fn print_human(r: &Report) {
    let ok = console::style("✓").green().bold();
    let ko = console::style("✗").red().bold();
    let warn = console::style("!").yellow().bold();
    let mark = |b: bool| if b { ok.clone() } else { ko.clone() };
    println!("verify {} through {}", r.image, r.mirror);
    if let Some(e) = &r.embedded {
        println!(
            "{} embedded   mirrorctl serve in this process, upstream {}, cache {} {}",
            mark(e.removed),
            e.upstream,
            e.cache_dir,
            if e.removed {
                "(removed)"
            } else {
                "(NOT removed)"
            }
        );
    }
    match &r.preflight.error {
        None => println!(
            "{} preflight  GET {} → {} (auth: {})",
            ok,
            r.preflight.url,
            r.preflight.status.unwrap_or(0),
            r.preflight.auth
        ),
        Some(e) => println!("{} preflight  {}", ko, e.message),
    }
    if let Some(a) = &r.armed {
        let naming = a.files.iter().filter(|f| f.names_mirror).count();
        if naming == a.files.len() {
            println!(
                "{ok} armed      every armed config ({naming}) names {}",
                r.mirror
            );
        } else {
            let not: Vec<String> = a
                .files
                .iter()
                .filter(|f| !f.names_mirror)
                .map(|f| format!("{} ({})", f.file, f.target))
                .collect();
            println!(
                "{warn} armed      {} armed config(s) do not name {}: {} — run `mirrorctl arm --mirror {}`",
                not.len(),
                r.mirror,
                not.join(", "),
                r.mirror
            );
        }
    }
    for p in &r.pulls {
        let head = format!("pull #{}    ", p.n);
        match &p.error {
            Some(e) => println!("{} {head}{}", ko, e.message),
            None => {
                let good = p.n == 1 || r.ok;
                let strength = match (p.cache, p.strength) {
                    (Cache::Unknown, _) | (_, Strength::None) => "",
                    (_, Strength::Proven) => ", proven",
                    (_, Strength::Inferred) => ", inferred",
                };
                println!(
                    "{} {head}{} bytes in {:.2}s — {}{strength} ({})",
                    mark(good),
                    p.bytes,
                    p.seconds,
                    p.cache.as_str(),
                    p.reason
                );
            }
        }
        if output::verbose() {
            for x in &p.responses {
                println!(
                    "      {:<17} {} {} — {} ({})",
                    x.kind,
                    x.status,
                    x.url,
                    x.cache.as_str(),
                    x.evidence
                );
            }
        }
        if r.upstream_blocked && p.n == 1 {
            let check = match r.upstream_unreachable {
                Some(true) => "; upstream names now resolve to 0.0.0.0/::".to_string(),
                Some(false) if !r.upstream_proxies.is_empty() => format!(
                    "; but a proxy from the environment still reaches the upstream ({}): add its names to NO_PROXY for the block to hold",
                    r.upstream_proxies.join(", ")
                ),
                Some(false) => "; but an upstream name still resolves elsewhere".to_string(),
                None => String::new(),
            };
            println!(
                "{} block      upstream host names blocked in {}{check}",
                mark(r.upstream_unreachable != Some(false)),
                r.hosts_file.as_deref().unwrap_or("?")
            );
        }
    }
    for c in &r.clients {
        println!("{} {:<10} {}", mark(c.ok), c.name, c.detail);
    }
    if let Some(restored) = r.hosts_restored {
        println!(
            "{} restore    {} {}",
            mark(restored),
            r.hosts_file.as_deref().unwrap_or("?"),
            if restored {
                "restored"
            } else {
                "NOT restored: run `mirrorctl verify --cleanup`"
            }
        );
    }
    if let Some(rl) = &r.ratelimit {
        println!(
            "  ratelimit  limit {} remaining {} source {}",
            rl.limit.as_deref().unwrap_or("-"),
            rl.remaining.as_deref().unwrap_or("-"),
            rl.source.as_deref().unwrap_or("-")
        );
    }
    println!("{} {}", mark(r.ok), r.verdict);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_urls() {
        assert_eq!(
            parse_mirror("http://127.0.0.1:5000/").unwrap(),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            parse_mirror("https://m.example").unwrap(),
            "https://m.example"
        );
        assert!(parse_mirror("127.0.0.1:5000").is_err());
        assert!(parse_mirror("ftp://x").is_err());
        assert!(parse_mirror("http://x/some/path").is_err());
    }
}
