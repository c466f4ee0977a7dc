//! The verdict, decided once from everything the run saw: preflight, the two pulls, the push
//! probe (when the storage fingerprint was on both pulls), the client probes and, for
//! `--embedded`, what its server must show (a `Cache-Status` hit, a reachable upstream).

use super::evidence::{Cache, Strength};
use super::report::{PullReport, Report};

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
pub fn warm_fingerprint(p1: &PullReport, p2: &PullReport) -> bool {
    p1.ok
        && p2.ok
        && p1.cache == Cache::Hit
        && p1.strength == Strength::Inferred
        && p2.cache == Cache::Hit
        && p2.strength == Strength::Inferred
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

/// What `--embedded` adds to the verdict: its upstream, and that pull #2 must be proven.
pub struct Embedded<'a> {
    pub upstream: &'a str,
}

/// Decide the run's verdict and write it into the report (`ok`, `verdict`). When the push probe
/// did not show a proxy, the fingerprint proved nothing: after the verdict is taken, the pulls'
/// fingerprint hits are reported `unknown`.
pub fn conclude(report: &mut Report, push: Option<&PushProbe>, embedded: Option<Embedded<'_>>) {
    let (ok, verdict) = verdict_of(report, push, embedded);
    report.ok = ok;
    report.verdict = verdict;
    if let Some(p) = push.filter(|p| !p.refused_like_a_proxy()) {
        // A plain registry (or a non-caching proxy in front of one) looks the same, so these
        // pulls are not reported as hits.
        for pull in &mut report.pulls {
            demote_fingerprint(pull, &p.summary);
        }
    }
}

fn verdict_of(
    report: &Report,
    push: Option<&PushProbe>,
    embedded: Option<Embedded<'_>>,
) -> (bool, String) {
    let (mut ok, mut verdict) = pulls_verdict(report, push);
    let failed: Vec<&str> = report
        .clients
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    if !failed.is_empty() {
        ok = false;
        verdict = format!(
            "{verdict}; client(s) not pulling through the mirror: {}",
            failed.join(", ")
        );
    }
    let Some(e) = embedded else {
        return (ok, verdict);
    };
    let proven = report
        .pulls
        .get(1)
        .is_some_and(|p| p.ok && p.cache == Cache::Hit && p.strength == Strength::Proven);
    if ok && !proven {
        ok = false;
        verdict = format!("the embedded server's pull #2 was not a Cache-Status hit: {verdict}");
    }
    let upstream_down = report
        .pulls
        .first()
        .and_then(|p| p.error.as_ref())
        .is_some_and(|e| e.diagnosis.upstream_unreachable());
    if upstream_down {
        verdict = format!(
            "the embedded server cannot reach its upstream {}: this machine needs access to it, or pass --upstream with a registry it can reach ({verdict})",
            e.upstream
        );
    }
    (ok, verdict)
}

/// The verdict from preflight and the pulls alone.
fn pulls_verdict(report: &Report, push: Option<&PushProbe>) -> (bool, String) {
    if let Some(e) = &report.preflight.error {
        return (false, e.message.clone());
    }
    match report.pulls.as_slice() {
        [] => (false, "nothing was pulled".into()),
        [p1] => (
            false,
            format!(
                "pull #1 through the mirror failed: {}",
                p1.error.as_ref().map(|e| e.message.as_str()).unwrap_or("?")
            ),
        ),
        [p1, p2, ..] => decide(p1, p2, push),
    }
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
                    "pull #2 was served from the mirror's storage after pull #1 streamed from upstream (distribution's storage fingerprint, or its redirect to object storage, appeared)".into(),
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
