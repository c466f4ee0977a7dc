//! The upstreams' pull budgets, made visible. Docker Hub answers manifest GET and HEAD with
//! `ratelimit-limit: 100;w=21600`, `ratelimit-remaining: 76;w=21600` and
//! `docker-ratelimit-source` (HEAD does not count against the limit), and a `429` once it is
//! spent. Each upstream's last reported budget becomes Prometheus gauges, is passed on to
//! clients on manifest and `/v2/` responses (so `verify` can print it), and a warning is logged
//! when the remaining budget falls below `--ratelimit-warn` and when a 429 arrives (with its
//! `Retry-After`; then at most once a minute per upstream).

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const LIMIT: &str = "ratelimit-limit";
pub const REMAINING: &str = "ratelimit-remaining";
pub const SOURCE: &str = "docker-ratelimit-source";

/// 429 warnings per upstream at most this often.
const WARN_429_EVERY: Duration = Duration::from_secs(60);

/// `76;w=21600` → (76, Some(21600)).
pub fn parse_quota(v: &str) -> Option<(u64, Option<u64>)> {
    let mut parts = v.split(';');
    let n = parts.next()?.trim().parse().ok()?;
    let w = parts.find_map(|p| p.trim().strip_prefix("w=")?.parse().ok());
    Some((n, w))
}

/// What an upstream last said about its budget (the raw header values, passed on as they came).
#[derive(Debug, Clone, Default)]
struct Budget {
    limit: Option<String>,
    remaining: Option<String>,
    source: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    budget: Budget,
    /// The low-budget warning was logged and the budget has not recovered since.
    low_warned: bool,
    limited: u64,
    /// When the last 429 warning was logged, and how many 429s came since.
    warned_429: Option<(Instant, u64)>,
}

/// Every upstream's budget. `warn_below`: `--ratelimit-warn` (0: never).
#[derive(Debug)]
pub struct RateLimits {
    warn_below: AtomicU64,
    by_upstream: Mutex<BTreeMap<String, State>>,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            warn_below: AtomicU64::new(DEFAULT_WARN),
            by_upstream: Mutex::new(BTreeMap::new()),
        }
    }
}

/// `--ratelimit-warn`'s default.
pub const DEFAULT_WARN: u64 = 10;

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

impl RateLimits {
    pub fn set_warn_below(&self, n: u64) {
        self.warn_below.store(n, Ordering::Relaxed);
    }

    /// Record an upstream response (status and headers) of `upstream`.
    pub fn observe(&self, upstream: &str, status: StatusCode, h: &HeaderMap) {
        let budget = Budget {
            limit: header(h, LIMIT),
            remaining: header(h, REMAINING),
            source: header(h, SOURCE),
        };
        let seen = budget.limit.is_some() || budget.remaining.is_some();
        if !seen && status != StatusCode::TOO_MANY_REQUESTS {
            return;
        }
        let mut all = crate::error::lock(&self.by_upstream);
        let st = all.entry(upstream.to_string()).or_default();
        if seen {
            st.budget = budget;
            self.check_low(upstream, st);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            st.limited += 1;
            warn_429(upstream, st, header(h, "retry-after"));
        }
    }

    fn check_low(&self, upstream: &str, st: &mut State) {
        let warn_below = self.warn_below.load(Ordering::Relaxed);
        let Some((left, window)) = st.budget.remaining.as_deref().and_then(parse_quota) else {
            return;
        };
        if left >= warn_below {
            st.low_warned = false;
            return;
        }
        if st.low_warned {
            return;
        }
        st.low_warned = true;
        let of = st
            .budget
            .limit
            .as_deref()
            .and_then(parse_quota)
            .map(|(n, _)| format!(" of {n}"))
            .unwrap_or_default();
        let window = window
            .map(|w| format!(" in its {w} s window"))
            .unwrap_or_default();
        crate::diag::warn(&format!(
            "upstream {upstream}: pull budget low: {left}{of} left{window} (below --ratelimit-warn {warn_below}); uncached pulls fail with 429 once it is spent (cached ones go on); give serve upstream credentials for a higher limit"
        ));
    }

    /// The budget headers to pass on for `upstream` (its last report), if any.
    pub fn headers_for(&self, upstream: &str) -> Vec<(&'static str, String)> {
        let all = crate::error::lock(&self.by_upstream);
        let Some(st) = all.get(upstream) else {
            return Vec::new();
        };
        let b = &st.budget;
        [
            (LIMIT, &b.limit),
            (REMAINING, &b.remaining),
            (SOURCE, &b.source),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect()
    }

    /// The gauges (and the 429 counter) in Prometheus text format.
    pub fn render(&self, s: &mut String) {
        let all = crate::error::lock(&self.by_upstream);
        let quota = |v: &Option<String>| v.as_deref().and_then(parse_quota);
        type Pick =
            fn(&State, &dyn Fn(&Option<String>) -> Option<(u64, Option<u64>)>) -> Option<u64>;
        let series: [(&str, &str, &str, Pick); 4] = [
            (
                "mirrorctl_upstream_ratelimit_limit",
                "gauge",
                "The pull limit the upstream last reported (ratelimit-limit).",
                |st, q| q(&st.budget.limit).map(|x| x.0),
            ),
            (
                "mirrorctl_upstream_ratelimit_remaining",
                "gauge",
                "The pulls left the upstream last reported (ratelimit-remaining).",
                |st, q| q(&st.budget.remaining).map(|x| x.0),
            ),
            (
                "mirrorctl_upstream_ratelimit_window_seconds",
                "gauge",
                "The window of the upstream's pull limit (w= of ratelimit-limit).",
                |st, q| q(&st.budget.limit).and_then(|x| x.1),
            ),
            (
                "mirrorctl_upstream_rate_limited_total",
                "counter",
                "Upstream responses that were 429 Too Many Requests.",
                |st, _| Some(st.limited),
            ),
        ];
        for (name, ty, help, pick) in series {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {ty}");
            for (up, st) in all.iter() {
                if let Some(v) = pick(st, &quota) {
                    let _ = writeln!(s, "{name}{{upstream=\"{up}\"}} {v}");
                }
            }
        }
    }
}

/// Warn about a 429 (the first, then at most every [`WARN_429_EVERY`], with the count since).
fn warn_429(upstream: &str, st: &mut State, retry_after: Option<String>) {
    let now = Instant::now();
    let since = match st.warned_429 {
        Some((at, n)) if now.duration_since(at) < WARN_429_EVERY => {
            st.warned_429 = Some((at, n + 1));
            return;
        }
        Some((_, n)) => n,
        None => 0,
    };
    st.warned_429 = Some((now, 0));
    let retry = retry_after
        .map(|r| format!(", Retry-After: {r}"))
        .unwrap_or_default();
    let left = st
        .budget
        .remaining
        .as_deref()
        .map(|r| format!(", ratelimit-remaining: {r}"))
        .unwrap_or_default();
    let more = if since > 0 {
        format!(" ({since} more since the last warning)")
    } else {
        String::new()
    };
    crate::diag::warn(&format!(
        "upstream {upstream} answered 429 Too Many Requests{retry}{left}: its rate limit is reached; cached content is still served (stale-if-error), uncached pulls fail{more}"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn quotas_parse() {
        assert_eq!(parse_quota("76;w=21600"), Some((76, Some(21600))));
        assert_eq!(parse_quota("100"), Some((100, None)));
        assert_eq!(parse_quota("x;w=1"), None);
    }

    #[test]
    fn budgets_become_gauges_and_headers() {
        let r = RateLimits::default();
        r.set_warn_below(5);
        let ok = StatusCode::OK;
        r.observe("docker.io", ok, &h(&[]));
        assert!(
            r.headers_for("docker.io").is_empty(),
            "no header, nothing recorded"
        );
        let hs = h(&[
            (LIMIT, "100;w=21600"),
            (REMAINING, "4;w=21600"),
            (SOURCE, "203.0.113.9"),
        ]);
        r.observe("docker.io", ok, &hs);
        r.observe(
            "docker.io",
            StatusCode::TOO_MANY_REQUESTS,
            &h(&[("retry-after", "60")]),
        );
        let mut s = String::new();
        r.render(&mut s);
        assert!(
            s.contains("mirrorctl_upstream_ratelimit_limit{upstream=\"docker.io\"} 100\n"),
            "{s}"
        );
        assert!(
            s.contains("mirrorctl_upstream_ratelimit_remaining{upstream=\"docker.io\"} 4\n"),
            "{s}"
        );
        assert!(
            s.contains(
                "mirrorctl_upstream_ratelimit_window_seconds{upstream=\"docker.io\"} 21600\n"
            ),
            "{s}"
        );
        assert!(
            s.contains("mirrorctl_upstream_rate_limited_total{upstream=\"docker.io\"} 1\n"),
            "{s}"
        );
        assert_eq!(
            r.headers_for("docker.io"),
            vec![
                (LIMIT, "100;w=21600".into()),
                (REMAINING, "4;w=21600".into()),
                (SOURCE, "203.0.113.9".into())
            ]
        );
        assert!(crate::error::lock(&r.by_upstream)["docker.io"].low_warned);
    }
}
