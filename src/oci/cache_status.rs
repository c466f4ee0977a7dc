//! RFC 9211 `Cache-Status`: one member per cache a response went through, e.g.
//! `mirrorctl; hit; ttl=30` or `mirrorctl; fwd=uri-miss; stored`. Rendered here for `serve`
//! and parsed here for `verify`, so both speak the same words.

use std::fmt;

/// `detail=` when the next hop's bytes did not hash to the digest asked for (nothing stored).
pub const DIGEST_MISMATCH: &str = "digest-mismatch";
/// `detail=` when the cache's own storage failed it.
pub const STORAGE_ERROR: &str = "storage-error";

/// Why a cache forwarded the request (RFC 9211 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fwd {
    /// The cache did not hold the URI.
    UriMiss,
    /// It held a stale copy (revalidated, or served because the origin failed).
    Stale,
    /// The cache was configured to pass it through.
    Bypass,
    Other(String),
}

impl Fwd {
    fn as_str(&self) -> &str {
        match self {
            Fwd::UriMiss => "uri-miss",
            Fwd::Stale => "stale",
            Fwd::Bypass => "bypass",
            Fwd::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Fwd {
        match s {
            "uri-miss" => Fwd::UriMiss,
            "stale" => Fwd::Stale,
            "bypass" => Fwd::Bypass,
            other => Fwd::Other(other.to_string()),
        }
    }
}

/// One `Cache-Status` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStatus {
    /// The cache's name (`mirrorctl`).
    pub cache: String,
    pub hit: bool,
    pub fwd: Option<Fwd>,
    /// The status the next hop answered the forwarded request with.
    pub fwd_status: Option<u16>,
    /// The forwarded response was stored.
    pub stored: bool,
    /// The request joined another one's forward.
    pub collapsed: bool,
    /// Seconds of freshness left.
    pub ttl: Option<u64>,
    /// Implementation-specific detail (`upstream-unreachable`, `digest-mismatch`).
    pub detail: Option<String>,
}

impl CacheStatus {
    fn named(cache: &str) -> CacheStatus {
        CacheStatus {
            cache: cache.to_string(),
            hit: false,
            fwd: None,
            fwd_status: None,
            stored: false,
            collapsed: false,
            ttl: None,
            detail: None,
        }
    }

    /// `<cache>; hit`.
    pub fn hit(cache: &str) -> CacheStatus {
        CacheStatus {
            hit: true,
            ..CacheStatus::named(cache)
        }
    }

    /// `<cache>; fwd=<why>`.
    pub fn forwarded(cache: &str, why: Fwd) -> CacheStatus {
        CacheStatus {
            fwd: Some(why),
            ..CacheStatus::named(cache)
        }
    }

    pub fn with_fwd_status(mut self, status: u16) -> CacheStatus {
        self.fwd_status = Some(status);
        self
    }

    pub fn stored(mut self) -> CacheStatus {
        self.stored = true;
        self
    }

    pub fn collapsed(mut self) -> CacheStatus {
        self.collapsed = true;
        self
    }

    pub fn with_ttl(mut self, secs: u64) -> CacheStatus {
        self.ttl = Some(secs);
        self
    }

    pub fn with_detail(mut self, detail: &str) -> CacheStatus {
        self.detail = Some(detail.to_string());
        self
    }

    /// Every member of a `Cache-Status` header value, first (origin side) to last.
    pub fn parse_list(header: &str) -> Vec<CacheStatus> {
        header
            .split(',')
            .filter_map(|member| {
                let mut parts = member.split(';').map(str::trim);
                let name = parts.next()?.trim_matches('"');
                if name.is_empty() {
                    return None;
                }
                let mut cs = CacheStatus::named(name);
                for p in parts {
                    let (k, v) = match p.split_once('=') {
                        Some((k, v)) => (
                            k.trim().to_ascii_lowercase(),
                            Some(v.trim().trim_matches('"')),
                        ),
                        None => (p.to_ascii_lowercase(), None),
                    };
                    match (k.as_str(), v) {
                        ("hit", None) => cs.hit = true,
                        ("fwd", Some(v)) => cs.fwd = Some(Fwd::parse(&v.to_ascii_lowercase())),
                        ("fwd-status", Some(v)) => cs.fwd_status = v.parse().ok(),
                        ("stored", None) => cs.stored = true,
                        ("collapsed", None) => cs.collapsed = true,
                        ("ttl", Some(v)) => cs.ttl = v.parse().ok(),
                        ("detail", Some(v)) => cs.detail = Some(v.to_string()),
                        _ => {}
                    }
                }
                Some(cs)
            })
            .collect()
    }
}

impl fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cache)?;
        if self.hit {
            f.write_str("; hit")?;
        }
        if let Some(fwd) = &self.fwd {
            write!(f, "; fwd={}", fwd.as_str())?;
        }
        if let Some(s) = self.fwd_status {
            write!(f, "; fwd-status={s}")?;
        }
        if self.stored {
            f.write_str("; stored")?;
        }
        if self.collapsed {
            f.write_str("; collapsed")?;
        }
        if let Some(t) = self.ttl {
            write!(f, "; ttl={t}")?;
        }
        if let Some(d) = &self.detail {
            write!(f, "; detail={d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_serves_words() {
        let m = "mirrorctl";
        assert_eq!(
            CacheStatus::hit(m).with_ttl(30).to_string(),
            "mirrorctl; hit; ttl=30"
        );
        assert_eq!(
            CacheStatus::forwarded(m, Fwd::UriMiss)
                .stored()
                .with_ttl(300)
                .to_string(),
            "mirrorctl; fwd=uri-miss; stored; ttl=300"
        );
        assert_eq!(
            CacheStatus::forwarded(m, Fwd::Stale)
                .with_fwd_status(200)
                .with_ttl(5)
                .to_string(),
            "mirrorctl; fwd=stale; fwd-status=200; ttl=5"
        );
        assert_eq!(
            CacheStatus::forwarded(m, Fwd::UriMiss)
                .collapsed()
                .to_string(),
            "mirrorctl; fwd=uri-miss; collapsed"
        );
        assert_eq!(
            CacheStatus::forwarded(m, Fwd::UriMiss)
                .with_detail("upstream-unreachable")
                .to_string(),
            "mirrorctl; fwd=uri-miss; detail=upstream-unreachable"
        );
    }

    #[test]
    fn renders_failures_and_bypass() {
        let m = "mirrorctl";
        assert_eq!(
            CacheStatus::forwarded(m, Fwd::UriMiss)
                .with_fwd_status(404)
                .to_string(),
            "mirrorctl; fwd=uri-miss; fwd-status=404"
        );
        assert_eq!(
            CacheStatus::forwarded(m, Fwd::UriMiss)
                .with_detail(DIGEST_MISMATCH)
                .to_string(),
            "mirrorctl; fwd=uri-miss; detail=digest-mismatch"
        );
        assert_eq!(
            CacheStatus::forwarded(m, Fwd::UriMiss)
                .with_detail(STORAGE_ERROR)
                .to_string(),
            "mirrorctl; fwd=uri-miss; detail=storage-error"
        );
        assert_eq!(
            CacheStatus::forwarded(m, Fwd::Stale)
                .with_fwd_status(503)
                .to_string(),
            "mirrorctl; fwd=stale; fwd-status=503"
        );
        assert_eq!(
            CacheStatus::forwarded(m, Fwd::Bypass)
                .with_fwd_status(200)
                .to_string(),
            "mirrorctl; fwd=bypass; fwd-status=200"
        );
        assert_eq!(CacheStatus::hit(m).to_string(), "mirrorctl; hit");
    }

    #[test]
    fn parses_what_it_renders_and_others() {
        for cs in [
            CacheStatus::hit("mirrorctl").with_ttl(3),
            CacheStatus::forwarded("mirrorctl", Fwd::Stale).with_fwd_status(503),
            CacheStatus::forwarded("x", Fwd::Bypass).with_detail("why"),
        ] {
            assert_eq!(CacheStatus::parse_list(&cs.to_string()), vec![cs]);
        }
        let l =
            CacheStatus::parse_list(r#"OriginCache; fwd=uri-miss; stored, "CDN Co"; hit; ttl=-3"#);
        assert_eq!(l.len(), 2);
        assert!(l[0].stored && !l[0].hit);
        assert_eq!(l[1].cache, "CDN Co");
        assert!(l[1].hit && l[1].ttl.is_none());
        assert!(CacheStatus::parse_list("").is_empty());
        assert!(CacheStatus::parse_list(" ; hit,,").is_empty());
    }
}
