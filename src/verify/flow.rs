//! The steps of a verify run, in order: preflight `GET /v2/` → pull #1 → (the upstream blocked
//! in the hosts file) → pull #2 → the real clients → (the block removed) → the push probe when
//! the evidence needs one. Each step records what it saw in the report; the verdict is
//! decided afterwards, once ([`super::verdict::conclude`]).

use super::evidence::{Cache, Strength};
use super::hosts::{self, HostsGuard};
use super::progress::Reporter;
use super::pull::pull;
use super::report::PullReport;
use super::report::{ErrorReport, Report};
use super::verdict::{self, PushProbe};
use super::{clients, evidence::RateLimit, Options};
use crate::oci::{self, Platform};
use crate::registry::Client;
use anyhow::Result;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The hosts block of this run, shared with the signal path that must remove it.
pub type SharedGuard = Arc<Mutex<Option<HostsGuard>>>;

/// The report as far as the run got, kept after each step for the signal path: an
/// interrupted run still shows what it saw.
pub type SoFar = Arc<Mutex<Option<Report>>>;

/// Run the steps against `mirror` (its base URL) with `client`; the push probe (if one was
/// made) is returned for the verdict.
pub async fn run(
    client: &Client,
    mirror: &str,
    opts: &Options,
    platform: &Platform,
    guard: SharedGuard,
    so_far: SoFar,
) -> Result<(Report, Option<PushProbe>)> {
    let keep = |r: &Report| *crate::error::lock(&so_far) = Some(r.clone());
    let mut report = Report::new(
        mirror,
        opts.image.to_string(),
        platform.to_string(),
        opts.block_upstream
            .as_ref()
            .map(|p| p.display().to_string()),
    );
    keep(&report);
    if !preflight(client, &mut report).await {
        return Ok((report, None));
    }
    keep(&report);
    let pull1 = pull(client, &opts.image, platform, 1, &reporter(opts, 1)).await;
    report.digest = pull1
        .responses
        .first()
        .filter(|r| r.status < 300)
        .and_then(|r| r.digest.clone());
    let ok1 = pull1.ok;
    report.pulls.push(pull1);
    if !ok1 {
        return Ok((report, None));
    }
    if let Some(path) = &opts.block_upstream {
        block_upstream(
            &mut report,
            path,
            &opts.image.registry,
            &guard,
            &opts.cleanup_cmd,
        )?;
    }
    let p1_missed = report.pulls.first().is_some_and(|p| p.cache == Cache::Miss);
    let pull2 = second_pull(client, opts, platform, p1_missed).await;
    probe_clients(&mut report, mirror, opts).await?;
    if let Some(mut g) = lock(&guard).take() {
        report.hosts_restored = Some(g.restore().is_ok());
    }
    report.pulls.push(pull2);
    if report.ratelimit.is_none() {
        report.ratelimit = report
            .pulls
            .iter()
            .flat_map(|p| &p.responses)
            .find_map(|r| RateLimit::from_headers(&r.headers));
    }
    let push = push_probe(client, &mut report, &opts.image.repository).await;
    Ok((report, push))
}

/// How long pull #2 is repeated while it looks like distribution still storing pull #1's blobs.
const STORE_WAIT: Duration = Duration::from_secs(10);

/// Pull #2. distribution in proxy mode stores a blob with a second download in the background
/// after streaming it (to S3 that takes longer): a pull #2 right after a cold pull #1 can come
/// before that finished and look like a mirror that stores nothing. Such a pull #2 (an
/// *inferred* miss after a miss) is repeated, waiting 0.25 s, 0.5 s, 1 s… up to [`STORE_WAIT`]
/// in all; an explicit cache header is never second-guessed.
async fn second_pull(
    client: &Client,
    opts: &Options,
    platform: &Platform,
    p1_missed: bool,
) -> PullReport {
    let mut p2 = pull(client, &opts.image, platform, 2, &reporter(opts, 2)).await;
    let start = Instant::now();
    let mut wait = Duration::from_millis(250);
    let mut tries = 0;
    while p1_missed
        && p2.ok
        && p2.cache == Cache::Miss
        && p2.strength == Strength::Inferred
        && start.elapsed() + wait <= STORE_WAIT
    {
        tokio::time::sleep(wait).await;
        wait *= 2;
        tries += 1;
        p2 = pull(client, &opts.image, platform, 2, &reporter(opts, 2)).await;
    }
    if tries > 0 {
        p2.reason = format!(
            "{} (pull #2 repeated {tries} time(s) over {:.1} s: distribution stores a pulled blob in the background)",
            p2.reason,
            start.elapsed().as_secs_f64()
        );
    }
    p2
}

fn reporter(opts: &Options, n: u32) -> Reporter {
    Reporter::auto(n, !opts.progress, crate::diag::quiet())
}

/// The guard's lock (a panic elsewhere must not wedge the restore).
pub fn lock(guard: &SharedGuard) -> std::sync::MutexGuard<'_, Option<HostsGuard>> {
    guard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `GET /v2/`: 200, or 401 with a challenge, is a registry.
async fn preflight(client: &Client, report: &mut Report) -> bool {
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
            true
        }
        Err(d) => {
            report.preflight.error = Some(ErrorReport::of(d));
            false
        }
    }
}

/// Map the upstream's names to 0.0.0.0/:: in the hosts file for the rest of the run, and say
/// whether that really holds (the resolver, and proxies that resolve names themselves).
fn block_upstream(
    report: &mut Report,
    path: &Path,
    registry: &str,
    guard: &SharedGuard,
    cleanup_cmd: &str,
) -> Result<()> {
    let names = oci::upstream_hosts(registry);
    let g = HostsGuard::install(path, &names, cleanup_cmd)?;
    let a = hosts::assess(path, &names);
    report.upstream_blocked = true;
    report.upstream_unreachable = a.unreachable;
    report.upstream_proxies = a.proxies;
    *lock(guard) = Some(g);
    Ok(())
}

/// Pull the probe with each `--client`, on the blocking pool (they run child processes).
async fn probe_clients(report: &mut Report, mirror: &str, opts: &Options) -> Result<()> {
    let block = match report.upstream_blocked {
        false => clients::Block::No,
        true => clients::Block::of(
            &hosts::Assessment {
                unreachable: report.upstream_unreachable,
                proxies: report.upstream_proxies.clone(),
            },
            report.hosts_file.as_deref().unwrap_or("?"),
        ),
    };
    for name in opts.clients.iter().copied() {
        let probe = clients::Probe {
            root: opts.root.clone(),
            mirror: mirror.to_string(),
            image: opts.image.clone(),
            platform: opts.platform.as_ref().map(ToString::to_string),
            block: block.clone(),
            timeout: opts.timeout,
            cli: opts.cli.clone(),
        };
        let rep = tokio::task::spawn_blocking(move || probe.run(name)).await?;
        report.clients.push(rep);
    }
    Ok(())
}

/// When both pulls showed only distribution's storage fingerprint, ask whether the mirror
/// takes pushes (a plain registry does, distribution in proxy mode refuses with 405).
async fn push_probe(client: &Client, report: &mut Report, repo: &str) -> Option<PushProbe> {
    let (p1, p2) = (report.pulls.first()?, report.pulls.get(1)?);
    if !verdict::warm_fingerprint(p1, p2) {
        return None;
    }
    let push = match client.probe_push(repo).await {
        Ok(ex) => PushProbe {
            status: ex.status,
            summary: format!("POST {} → {}", ex.url, ex.status),
        },
        Err(d) => PushProbe {
            status: 0,
            summary: super::hints::message(&d),
        },
    };
    report.push_probe = Some(push.summary.clone());
    Some(push)
}

/// Remove the hosts block (SIGINT/SIGTERM or an early error). Whether the file is back.
pub fn restore(guard: &SharedGuard) -> bool {
    match lock(guard).take() {
        Some(mut g) => g.restore().is_ok(),
        None => true,
    }
}
