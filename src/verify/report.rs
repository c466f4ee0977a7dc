//! The report of a verify run: what was asked, what every response said, the verdict;
//! rendered as text here, or serialised as the JSON document.

use super::embedded::EmbeddedReport;
use super::evidence::{Cache, RateLimit, Strength};
use crate::diag::outln;
use crate::registry::{Diagnosis, Kind};
use serde::Serialize;

/// What a response of a pull was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseKind {
    Manifest,
    Index,
    PlatformManifest,
    Config,
    Layer,
}

impl ResponseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseKind::Manifest => "manifest",
            ResponseKind::Index => "index",
            ResponseKind::PlatformManifest => "platform-manifest",
            ResponseKind::Config => "config",
            ResponseKind::Layer => "layer",
        }
    }

    /// A blob (config or layer): what a pull's cache verdict is made of.
    pub fn is_blob(self) -> bool {
        matches!(self, ResponseKind::Config | ResponseKind::Layer)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ResponseReport {
    pub kind: ResponseKind,
    pub url: String,
    pub status: u16,
    pub cache: Cache,
    pub strength: Strength,
    pub evidence: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Where the mirror redirected the blob (its query, a presigned credential, left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirected_to: Option<String>,
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

/// A failure as the report shows it: its kind and one sentence with the fix.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub kind: Kind,
    pub message: String,
    /// The failure itself, for typed checks (never serialised).
    #[serde(skip)]
    pub diagnosis: Diagnosis,
}

impl ErrorReport {
    pub fn of(d: Diagnosis) -> ErrorReport {
        ErrorReport {
            kind: d.kind,
            message: super::hints::message(&d),
            diagnosis: d,
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
    pub embedded: Option<EmbeddedReport>,
}

impl Report {
    /// A report for `mirror` and `image` before anything was asked.
    pub fn new(
        mirror: &str,
        image: String,
        platform: String,
        hosts_file: Option<String>,
    ) -> Report {
        Report {
            ok: false,
            mirror: mirror.to_string(),
            image,
            platform,
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
            hosts_file,
            hosts_restored: None,
            clients: Vec::new(),
            ratelimit: None,
            armed: None,
            embedded: None,
        }
    }
}

/// `✓` or `✗`.
fn mark(b: bool) -> console::StyledObject<&'static str> {
    if b {
        console::style("✓").green().bold()
    } else {
        console::style("✗").red().bold()
    }
}

/// The report as text on stdout. `cli`: `mirrorctl` with the global options the user gave,
/// for the commands the report suggests; `cleanup`: the command that removes the hosts block.
pub fn print_human(r: &Report, cli: &str, cleanup: &str) {
    outln!("verify {} through {}", r.image, r.mirror);
    if let Some(e) = &r.embedded {
        outln!(
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
        None => outln!(
            "{} preflight  GET {} → {} (auth: {})",
            mark(true),
            r.preflight.url,
            r.preflight.status.unwrap_or(0),
            r.preflight.auth
        ),
        Some(e) => outln!("{} preflight  {}", mark(false), e.message),
    }
    if let Some(a) = &r.armed {
        print_armed(a, &r.mirror, cli);
    }
    for p in &r.pulls {
        print_pull(r, p);
        if r.upstream_blocked && p.n == 1 {
            print_block(r);
        }
    }
    for c in &r.clients {
        outln!("{} {:<10} {}", mark(c.ok), c.name, c.detail);
    }
    if let Some(restored) = r.hosts_restored {
        outln!(
            "{} restore    {} {}",
            mark(restored),
            r.hosts_file.as_deref().unwrap_or("?"),
            if restored {
                "restored".to_string()
            } else {
                format!("NOT restored: run `{cleanup}`")
            }
        );
    }
    if let Some(rl) = &r.ratelimit {
        outln!(
            "  ratelimit  limit {} remaining {} source {}",
            rl.limit.as_deref().unwrap_or("-"),
            rl.remaining.as_deref().unwrap_or("-"),
            rl.source.as_deref().unwrap_or("-")
        );
    }
    outln!("{} {}", mark(r.ok), r.verdict);
}

fn print_armed(a: &Armed, mirror: &str, cli: &str) {
    let naming = a.files.iter().filter(|f| f.names_mirror).count();
    if naming == a.files.len() {
        outln!(
            "{} armed      every armed config ({naming}) names {mirror}",
            mark(true)
        );
        return;
    }
    let not: Vec<String> = a
        .files
        .iter()
        .filter(|f| !f.names_mirror)
        .map(|f| format!("{} ({})", f.file, f.target))
        .collect();
    outln!(
        "{} armed      {} armed config(s) do not name {mirror}: {} — run `{cli} arm --mirror {mirror}`",
        console::style("!").yellow().bold(),
        not.len(),
        not.join(", "),
    );
}

fn print_pull(r: &Report, p: &PullReport) {
    let head = format!("pull #{}    ", p.n);
    match &p.error {
        Some(e) => outln!("{} {head}{}", mark(false), e.message),
        None => {
            let good = p.n == 1 || r.ok;
            let strength = match (p.cache, p.strength) {
                (Cache::Unknown, _) | (_, Strength::None) => "",
                (_, Strength::Proven) => ", proven",
                (_, Strength::Inferred) => ", inferred",
            };
            outln!(
                "{} {head}{} bytes in {:.2}s — {}{strength} ({})",
                mark(good),
                p.bytes,
                p.seconds,
                p.cache.as_str(),
                p.reason
            );
        }
    }
    if crate::diag::verbose() {
        for x in &p.responses {
            outln!(
                "      {:<17} {} {} — {} ({})",
                x.kind.as_str(),
                x.status,
                x.url,
                x.cache.as_str(),
                x.evidence
            );
        }
    }
}

fn print_block(r: &Report) {
    let check = match r.upstream_unreachable {
        Some(true) => "; upstream names now resolve to 0.0.0.0/::".to_string(),
        Some(false) if !r.upstream_proxies.is_empty() => format!(
            "; but a proxy from the environment still reaches the upstream ({}): add its names to NO_PROXY for the block to hold",
            r.upstream_proxies.join(", ")
        ),
        Some(false) => "; but an upstream name still resolves elsewhere".to_string(),
        None => String::new(),
    };
    outln!(
        "{} block      upstream host names blocked in {}{check}",
        mark(r.upstream_unreachable != Some(false)),
        r.hosts_file.as_deref().unwrap_or("?")
    );
}
