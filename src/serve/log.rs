//! One access log line per request on stderr: Apache combined format (the same shape
//! distribution writes, so the same parsers read both) plus the `Cache-Status` and the time
//! taken, or JSON lines with `--json-log`.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Off,
    Text,
    Json,
}

pub async fn access_log(State(fmt): State<LogFormat>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let remote = req
        .extensions()
        .get::<ConnectInfo<super::auth::RemoteAddr>>()
        .map(|c| c.0 .0.ip().to_string())
        .unwrap_or_else(|| "-".into());
    let method = req.method().clone();
    let uri = req.uri().to_string();
    let version = format!("{:?}", req.version());
    let ua = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        axum::http::HeaderValue::from_static("registry/2.0"),
    );
    if fmt == LogFormat::Off {
        return resp;
    }
    let h = resp.headers();
    let status = resp.status().as_u16();
    let bytes = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let cache = h
        .get(super::http::CACHE_STATUS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let line = match fmt {
        LogFormat::Json => serde_json::json!({
            "time": rfc3339(SystemTime::now()),
            "remote": remote,
            "method": method.as_str(),
            "uri": uri,
            "status": status,
            "bytes": bytes.parse::<u64>().ok(),
            "user_agent": ua,
            "cache_status": cache,
            "ms": (ms * 1000.0).round() / 1000.0,
        })
        .to_string(),
        _ => format!(
            "{remote} - - [{}] \"{method} {uri} {version}\" {status} {bytes} \"\" \"{}\" \"{}\" {ms:.3}ms",
            clf_time(SystemTime::now()),
            esc(&ua),
            esc(&cache)
        ),
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    resp
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// (year, month, day, hour, min, sec) in UTC.
fn civil(t: SystemTime) -> (i64, u32, u32, u64, u64, u64) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

fn clf_time(t: SystemTime) -> String {
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, hh, mm, ss) = civil(t);
    format!(
        "{d:02}/{}/{y}:{hh:02}:{mm:02}:{ss:02} +0000",
        MON.get((m as usize).wrapping_sub(1))
            .copied()
            .unwrap_or("Jan")
    )
}

fn rfc3339(t: SystemTime) -> String {
    let (y, m, d, hh, mm, ss) = civil(t);
    format!("{y}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_355_540); // 2026-11-22T13:52:20Z
        assert_eq!(clf_time(t), "22/Nov/2026:13:52:20 +0000");
        assert_eq!(rfc3339(t), "2026-11-22T13:52:20Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}
