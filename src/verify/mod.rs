//! `mirrorctl verify`: prove that pulls come from the mirror and from its cache.
//!
//! Preflight `GET /v2/` → pull #1 (manifest, platform manifest, config, every layer, each
//! verified while streaming) → optional upstream block in the hosts file → pull #2 → the real
//! clients → report. Exit 0 only when pull #2 was served from the cache: proven by an explicit
//! cache header, or inferred from distribution's storage fingerprint *after* pull #1 showed a
//! miss (a plain registry, or a non-caching proxy in front of one, shows the fingerprint on
//! both pulls).
//!
//! [`run`] takes its own [`Options`] (the clap adapter is `commands::verify`).

pub mod clients;
pub mod cri;
pub mod embedded;
pub mod evidence;
mod flow;
pub mod hints;
pub mod hosts;
pub mod progress;
mod pull;
pub mod report;
pub mod verdict;

pub use clients::ClientName;
pub use report::Report;

use crate::fsutil::Root;
use crate::journal::Journal;
use crate::mirror::Mirror;
use crate::oci::{self, Platform, Reference};
use crate::registry::{Client, Credentials};
use anyhow::{Context, Result};
use report::{Armed, ArmedFile};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which mirror to verify.
#[derive(Debug, Clone)]
pub enum Target {
    /// A running mirror.
    Mirror(Mirror),
    /// An in-process `mirrorctl serve` with a temporary cache in front of this upstream
    /// (`None`: the image registry's endpoint).
    Embedded { upstream: Option<Mirror> },
}

/// Everything a verify run needs, already validated.
pub struct Options {
    pub root: Root,
    pub state_dir: PathBuf,
    pub target: Target,
    pub credentials: Credentials,
    pub image: Reference,
    /// `--platform`; `None`: this host's.
    pub platform: Option<Platform>,
    pub timeout: Duration,
    /// Extra CA certificates (PEM) for an https mirror.
    pub ca_pem: Option<Vec<u8>>,
    /// The hosts file to block the upstream in (`--block-upstream`).
    pub block_upstream: Option<PathBuf>,
    pub clients: Vec<ClientName>,
    /// Progress on stderr is wanted (not `--json`).
    pub progress: bool,
    /// `mirrorctl` and the global options the user gave (`--root`, `--state-dir`), for the
    /// commands the report suggests.
    pub cli: String,
    /// The command that removes this run's hosts block (with `--hosts-file` when given).
    pub cleanup_cmd: String,
}

/// verify was stopped by a signal (after removing its hosts block and temporary cache).
#[derive(Debug)]
pub struct Interrupted {
    /// What the run had seen before the signal, its verdict saying it was interrupted.
    pub report: Option<Box<Report>>,
    pub signal: &'static str,
    /// 128 + the signal number.
    pub exit_code: i32,
    pub hosts_restored: bool,
    /// What removes the block when it could not be.
    pub cleanup_cmd: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted by {}; {}",
            self.signal,
            if self.hosts_restored {
                "the hosts file is restored"
            } else {
                "could not restore the hosts file"
            }
        )?;
        if !self.hosts_restored {
            write!(f, ": run `{}`", self.cleanup_cmd)?;
        }
        Ok(())
    }
}

impl std::error::Error for Interrupted {}

/// Run the verification; the report says whether it passed (`ok`). Errors are for what kept
/// it from running at all (bad input, a signal: [`Interrupted`]).
pub fn run(opts: &Options) -> Result<Report> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(run_async(opts));
    // Client probes still running (a signal cut them short) must not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn run_async(opts: &Options) -> Result<Report> {
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let (embedded, mirror) = match &opts.target {
        Target::Embedded { upstream } => {
            let upstream = match upstream {
                Some(u) => u.url(),
                None => oci::upstream_endpoint(&opts.image.registry),
            };
            let e =
                embedded::Embedded::start(&opts.image.registry, &upstream, &std::env::temp_dir())
                    .await?;
            let url = e.url();
            (Some(e), url)
        }
        Target::Mirror(m) => (None, m.url()),
    };
    let client = Client::new(
        &mirror,
        opts.credentials.clone(),
        opts.timeout,
        opts.ca_pem.as_deref(),
    )
    .context("--ca-cert")
    .map_err(|e| crate::error::UserError(format!("{e:#}")))?;
    let guard: flow::SharedGuard = Arc::new(Mutex::new(None));
    let so_far: flow::SoFar = Arc::new(Mutex::new(None));
    let outcome = {
        let work = flow::run(
            &client,
            &mirror,
            opts,
            &platform,
            guard.clone(),
            so_far.clone(),
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let stop = |signal, code| -> anyhow::Error {
            interrupted(&guard, &so_far, signal, code, opts).into()
        };
        tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => Err(stop("SIGINT", 130)),
            _ = term.recv() => Err(stop("SIGTERM", 143)),
        }
    };
    // The guard is released inside the flow; on an early error, here.
    let restored_late = flow::lock(&guard).is_some().then(|| flow::restore(&guard));
    let stopped = match embedded {
        Some(e) => Some(e.stop().await),
        None => None,
    };
    let (mut report, push) = outcome?;
    if restored_late.is_some() {
        report.hosts_restored = restored_late;
    }
    // The armed configs cannot name an embedded server's ephemeral port.
    if stopped.is_none() {
        report.armed = armed_check(&opts.state_dir, &mirror);
    }
    report.embedded = stopped;
    let embedded_upstream = report.embedded.as_ref().map(|e| e.upstream.clone());
    verdict::conclude(
        &mut report,
        push.as_ref(),
        embedded_upstream
            .as_deref()
            .map(|upstream| verdict::Embedded { upstream }),
    );
    Ok(report)
}

/// SIGINT/SIGTERM: remove the block and the embedded cache; the caller exits 128+signal.
fn interrupted(
    guard: &flow::SharedGuard,
    so_far: &flow::SoFar,
    signal: &'static str,
    exit_code: i32,
    opts: &Options,
) -> Interrupted {
    embedded::remove_live();
    let hosts_restored = flow::restore(guard);
    let mut i = Interrupted {
        report: None,
        signal,
        exit_code,
        hosts_restored,
        cleanup_cmd: opts.cleanup_cmd.clone(),
    };
    i.report = crate::error::lock(so_far).take().map(|mut r| {
        r.ok = false;
        if r.upstream_blocked {
            r.hosts_restored = Some(hosts_restored);
        }
        r.verdict = i.to_string();
        Box::new(r)
    });
    i
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
                // One mirror however it was spelled (`https://h/dh`, `https://h/v2/dh/`).
                let norm = |u: &str| Mirror::parse_lenient(u).map(|m| m.url());
                url.trim_end_matches('/').eq_ignore_ascii_case(want)
                    || norm(url).is_some_and(|u| norm(want) == Some(u))
            }),
        })
        .collect();
    Some(Armed {
        journal: path.display().to_string(),
        files,
    })
}
