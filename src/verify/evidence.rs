//! Cache evidence from response headers: was a response served from the mirror's cache?
//!
//! Explicit headers are *proof* (RFC 9211 `Cache-Status`, `X-Cache`, `X-Cache-Status`,
//! `X-Docker-Registry-Proxy-Cache-Upstream-Status`, `CF-Cache-Status`,
//! `X-Dragonfly-Task-Download-Finished`, `Age`). CNCF distribution sends none of them; a blob it
//! serves from its local storage carries `Accept-Ranges: bytes`, `Cache-Control:
//! max-age=31536000` and a quoted `Etag`, all absent when it streams a miss from upstream. That
//! fingerprint is an *inference*: a plain registry serves its blobs the same way.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cache {
    Hit,
    Miss,
    Unknown,
}

impl Cache {
    pub fn as_str(self) -> &'static str {
        match self {
            Cache::Hit => "hit",
            Cache::Miss => "miss",
            Cache::Unknown => "unknown",
        }
    }
}

/// How a verdict was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strength {
    /// An explicit cache header said so.
    Proven,
    /// distribution's storage fingerprint (or its absence).
    Inferred,
    /// Nothing to go on.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub cache: Cache,
    pub strength: Strength,
    /// The header(s) that decided, as `Name: value`, or why nothing did.
    pub header: String,
}

impl Evidence {
    fn proven(cache: Cache, name: &str, value: &str) -> Evidence {
        Evidence {
            cache,
            strength: Strength::Proven,
            header: format!("{name}: {value}"),
        }
    }
}

fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// RFC 9211: a list of `cache-name; param; param=value` members, the last one closest to the
/// client. Any member with `hit` → hit; else any `fwd=` (without a 304 revalidation) → miss.
fn cache_status(value: &str) -> Option<Cache> {
    let mut verdict = None;
    for member in value.split(',') {
        let params: Vec<String> = member
            .split(';')
            .skip(1)
            .map(|p| p.trim().to_ascii_lowercase())
            .collect();
        if params.iter().any(|p| p == "hit") {
            return Some(Cache::Hit);
        }
        let fwd = params.iter().find_map(|p| p.strip_prefix("fwd="));
        if let Some(fwd) = fwd {
            let revalidated = params.iter().any(|p| p == "fwd-status=304");
            if fwd == "stale" && revalidated {
                return Some(Cache::Hit);
            }
            verdict = Some(Cache::Miss);
        }
    }
    verdict
}

/// nginx-style status words (`X-Cache-Status`, the DRP header, `CF-Cache-Status`).
fn status_word(value: &str) -> Option<Cache> {
    match value.trim().to_ascii_uppercase().as_str() {
        "HIT" | "STALE" | "UPDATING" | "REVALIDATED" => Some(Cache::Hit),
        "MISS" | "EXPIRED" | "BYPASS" | "DYNAMIC" => Some(Cache::Miss),
        _ => None,
    }
}

/// `X-Cache: HIT from squid`, `Hit from cloudfront`, `MISS, HIT` (several layers).
fn x_cache(value: &str) -> Option<Cache> {
    let v = value.to_ascii_lowercase();
    let words: Vec<&str> = v
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.contains(&"hit") {
        Some(Cache::Hit)
    } else if words.contains(&"miss") {
        Some(Cache::Miss)
    } else {
        None
    }
}

/// distribution's local-storage fingerprint on a blob response.
pub fn distribution_fingerprint(headers: &[(String, String)]) -> bool {
    let ranges = get(headers, "accept-ranges")
        .map(|v| v.eq_ignore_ascii_case("bytes"))
        .unwrap_or(false);
    let cc = get(headers, "cache-control")
        .map(|v| v.to_ascii_lowercase().contains("max-age=31536000"))
        .unwrap_or(false);
    let etag = get(headers, "etag")
        .map(|v| v.len() >= 2 && v.starts_with('"') && v.ends_with('"'))
        .unwrap_or(false);
    ranges && cc && etag
}

/// Classify one response. `blob`: the response is a blob GET (the fingerprint applies).
pub fn classify(headers: &[(String, String)], blob: bool) -> Evidence {
    if let Some(v) = get(headers, "cache-status") {
        if let Some(c) = cache_status(v) {
            return Evidence::proven(c, "Cache-Status", v);
        }
    }
    for name in [
        "X-Docker-Registry-Proxy-Cache-Upstream-Status",
        "X-Cache-Status",
    ] {
        if let Some(v) = get(headers, name) {
            if let Some(c) = status_word(v) {
                return Evidence::proven(c, name, v);
            }
        }
    }
    if let Some(v) = get(headers, "X-Cache") {
        if let Some(c) = x_cache(v) {
            return Evidence::proven(c, "X-Cache", v);
        }
    }
    if let Some(v) = get(headers, "X-Dragonfly-Task-Download-Finished") {
        let c = if v.eq_ignore_ascii_case("true") {
            Cache::Hit
        } else {
            Cache::Miss
        };
        return Evidence::proven(c, "X-Dragonfly-Task-Download-Finished", v);
    }
    if let Some(v) = get(headers, "CF-Cache-Status") {
        if let Some(c) = status_word(v) {
            return Evidence::proven(c, "CF-Cache-Status", v);
        }
    }
    if let Some(v) = get(headers, "Age") {
        if v.parse::<u64>().map(|a| a > 0).unwrap_or(false) {
            return Evidence::proven(Cache::Hit, "Age", v);
        }
    }
    if blob {
        if distribution_fingerprint(headers) {
            return Evidence {
                cache: Cache::Hit,
                strength: Strength::Inferred,
                header: format!(
                    "Accept-Ranges: bytes + Cache-Control: {} + Etag: {} (served from distribution's storage)",
                    get(headers, "cache-control").unwrap_or(""),
                    get(headers, "etag").unwrap_or("")
                ),
            };
        }
        if get(headers, "docker-distribution-api-version").is_some() {
            return Evidence {
                cache: Cache::Miss,
                strength: Strength::Inferred,
                header: "no Accept-Ranges/Cache-Control/quoted Etag (streamed from upstream by distribution)"
                    .into(),
            };
        }
    }
    Evidence {
        cache: Cache::Unknown,
        strength: Strength::None,
        header: "no cache header".into(),
    }
}

/// A blob the mirror answered with a redirect (`status`, its headers) to `to`, another origin:
/// an explicit cache header on the redirect still decides; else the redirect is distribution's
/// answer for a blob its object storage holds (S3, GCS, Azure: a cold blob is streamed, 200),
/// an inference like the storage fingerprint (a plain registry on S3 redirects too).
pub fn classify_redirect(status: u16, headers: &[(String, String)], to: &str) -> Evidence {
    let e = classify(headers, false);
    if e.strength == Strength::Proven {
        return e;
    }
    Evidence {
        cache: Cache::Hit,
        strength: Strength::Inferred,
        header: format!("{status} redirect to {to} (served from the mirror's object storage)"),
    }
}

/// Docker Hub's rate-limit headers, when present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub limit: Option<String>,
    pub remaining: Option<String>,
    pub source: Option<String>,
}

impl RateLimit {
    pub fn from_headers(headers: &[(String, String)]) -> Option<RateLimit> {
        let r = RateLimit {
            limit: get(headers, "ratelimit-limit").map(str::to_string),
            remaining: get(headers, "ratelimit-remaining").map(str::to_string),
            source: get(headers, "docker-ratelimit-source").map(str::to_string),
        };
        (r.limit.is_some() || r.remaining.is_some() || r.source.is_some()).then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn table() {
        let dist_api = ("Docker-Distribution-Api-Version", "registry/2.0");
        let cases: Vec<(Vec<(&str, &str)>, bool, Cache, Strength, &str)> = vec![
            (
                vec![("Cache-Status", "mirrorctl; hit")],
                false,
                Cache::Hit,
                Strength::Proven,
                "Cache-Status",
            ),
            (
                vec![("cache-status", "mirrorctl; fwd=uri-miss; stored")],
                true,
                Cache::Miss,
                Strength::Proven,
                "Cache-Status",
            ),
            (
                vec![("Cache-Status", "mirrorctl; fwd=uri-miss; collapsed")],
                true,
                Cache::Miss,
                Strength::Proven,
                "Cache-Status",
            ),
            (
                vec![("Cache-Status", "mirrorctl; fwd=stale; fwd-status=304")],
                false,
                Cache::Hit,
                Strength::Proven,
                "Cache-Status",
            ),
            (
                vec![("Cache-Status", "mirrorctl; fwd=stale")],
                false,
                Cache::Miss,
                Strength::Proven,
                "Cache-Status",
            ),
            (
                vec![("Cache-Status", "origin; fwd=miss, cdn; hit")],
                false,
                Cache::Hit,
                Strength::Proven,
                "Cache-Status",
            ),
            (
                vec![("X-Cache", "HIT from squid")],
                false,
                Cache::Hit,
                Strength::Proven,
                "X-Cache",
            ),
            (
                vec![("X-Cache", "Miss from cloudfront")],
                false,
                Cache::Miss,
                Strength::Proven,
                "X-Cache",
            ),
            (
                vec![("X-Cache", "MISS, HIT")],
                false,
                Cache::Hit,
                Strength::Proven,
                "X-Cache",
            ),
            (
                vec![("X-Cache-Status", "HIT")],
                true,
                Cache::Hit,
                Strength::Proven,
                "X-Cache-Status",
            ),
            (
                vec![("X-Cache-Status", "EXPIRED")],
                true,
                Cache::Miss,
                Strength::Proven,
                "X-Cache-Status",
            ),
            (
                vec![("X-Docker-Registry-Proxy-Cache-Upstream-Status", "MISS")],
                true,
                Cache::Miss,
                Strength::Proven,
                "X-Docker-Registry-Proxy-Cache-Upstream-Status",
            ),
            (
                vec![(
                    "X-Docker-Registry-Proxy-Cache-Upstream-Status",
                    "REVALIDATED",
                )],
                false,
                Cache::Hit,
                Strength::Proven,
                "X-Docker-Registry-Proxy-Cache-Upstream-Status",
            ),
            (
                vec![("CF-Cache-Status", "HIT")],
                true,
                Cache::Hit,
                Strength::Proven,
                "CF-Cache-Status",
            ),
            (
                vec![("CF-Cache-Status", "DYNAMIC")],
                true,
                Cache::Miss,
                Strength::Proven,
                "CF-Cache-Status",
            ),
            (
                vec![("X-Dragonfly-Task-Download-Finished", "true")],
                true,
                Cache::Hit,
                Strength::Proven,
                "X-Dragonfly",
            ),
            (
                vec![("X-Dragonfly-Task-Download-Finished", "false")],
                true,
                Cache::Miss,
                Strength::Proven,
                "X-Dragonfly",
            ),
            (
                vec![("Age", "42")],
                false,
                Cache::Hit,
                Strength::Proven,
                "Age: 42",
            ),
            (
                vec![("Age", "0")],
                false,
                Cache::Unknown,
                Strength::None,
                "no cache header",
            ),
            // distribution from storage vs streamed.
            (
                vec![
                    dist_api,
                    ("Accept-Ranges", "bytes"),
                    ("Cache-Control", "max-age=31536000"),
                    ("Etag", "\"sha256:ab\""),
                ],
                true,
                Cache::Hit,
                Strength::Inferred,
                "Accept-Ranges",
            ),
            (
                vec![dist_api, ("Etag", "sha256:ab")],
                true,
                Cache::Miss,
                Strength::Inferred,
                "streamed",
            ),
            // Fingerprint incomplete: unquoted Etag.
            (
                vec![
                    dist_api,
                    ("Accept-Ranges", "bytes"),
                    ("Cache-Control", "max-age=31536000"),
                    ("Etag", "sha256:ab"),
                ],
                true,
                Cache::Miss,
                Strength::Inferred,
                "streamed",
            ),
            // The fingerprint does not apply to manifests.
            (
                vec![
                    dist_api,
                    ("Accept-Ranges", "bytes"),
                    ("Cache-Control", "max-age=31536000"),
                    ("Etag", "\"sha256:ab\""),
                ],
                false,
                Cache::Unknown,
                Strength::None,
                "no cache header",
            ),
            // Not distribution, nothing known.
            (
                vec![("Content-Type", "application/octet-stream")],
                true,
                Cache::Unknown,
                Strength::None,
                "no cache header",
            ),
            // An explicit header wins over the fingerprint.
            (
                vec![
                    ("Cache-Status", "mirrorctl; fwd=uri-miss"),
                    ("Accept-Ranges", "bytes"),
                    ("Cache-Control", "max-age=31536000"),
                    ("Etag", "\"x\""),
                ],
                true,
                Cache::Miss,
                Strength::Proven,
                "Cache-Status",
            ),
        ];
        for (headers, blob, cache, strength, needle) in cases {
            let e = classify(&h(&headers), blob);
            assert_eq!(
                (e.cache, e.strength),
                (cache, strength),
                "{headers:?} → {e:?}"
            );
            assert!(e.header.contains(needle), "{headers:?} → {e:?}");
        }
    }

    #[test]
    fn rate_limit() {
        assert_eq!(RateLimit::from_headers(&h(&[("Etag", "x")])), None);
        let r = RateLimit::from_headers(&h(&[
            ("RateLimit-Limit", "100;w=21600"),
            ("ratelimit-remaining", "20;w=21600"),
            ("docker-ratelimit-source", "1.2.3.4"),
        ]))
        .unwrap();
        assert_eq!(r.limit.as_deref(), Some("100;w=21600"));
        assert_eq!(r.remaining.as_deref(), Some("20;w=21600"));
        assert_eq!(r.source.as_deref(), Some("1.2.3.4"));
    }
}
