//! Counters for `/metrics` (Prometheus text format).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Why the cache could not write: the `kind` label of `mirrorctl_store_write_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// ENOSPC, EDQUOT: the file system (or the quota) is full.
    NoSpace,
    /// EROFS: the file system is (or was remounted) read-only.
    ReadOnly,
    /// EIO and anything else.
    Io,
}

impl WriteError {
    pub const ALL: [WriteError; 3] = [WriteError::NoSpace, WriteError::ReadOnly, WriteError::Io];

    pub fn of(e: &std::io::Error) -> WriteError {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => WriteError::NoSpace,
            Some(libc::EROFS) => WriteError::ReadOnly,
            _ => WriteError::Io,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WriteError::NoSpace => "no-space",
            WriteError::ReadOnly => "read-only",
            WriteError::Io => "io-error",
        }
    }

    /// This cause's entry of a per-cause array (total: one entry per variant).
    pub fn pick<T>(self, per_kind: &[T; 3]) -> &T {
        let [no_space, read_only, io] = per_kind;
        match self {
            WriteError::NoSpace => no_space,
            WriteError::ReadOnly => read_only,
            WriteError::Io => io,
        }
    }

    /// [`WriteError::pick`], mutably.
    pub fn pick_mut<T>(self, per_kind: &mut [T; 3]) -> &mut T {
        let [no_space, read_only, io] = per_kind;
        match self {
            WriteError::NoSpace => no_space,
            WriteError::ReadOnly => read_only,
            WriteError::Io => io,
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    /// (kind, cache result) → requests. kind: manifest, blob, tags, ping, other.
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// (method, kind) → upstream requests.
    upstream: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    pub upstream_bytes: AtomicU64,
    pub served_bytes: AtomicU64,
    /// Of `served_bytes`, those sent from a download's in-memory recent chunks.
    pub served_memory_bytes: AtomicU64,
    pub inflight: AtomicU64,
    pub cache_bytes: AtomicU64,
    pub cache_blobs: AtomicU64,
    pub evictions: AtomicU64,
    pub digest_mismatches: AtomicU64,
    /// Cached blobs found torn or corrupt (size at start, digest on first serve) and deleted.
    pub corrupt_blobs: AtomicU64,
    /// Failed stores (a blob, a manifest, the tag file, the index log), by [`WriteError`].
    store_write_errors: [AtomicU64; 3],
    /// Each upstream's reported pull budget.
    pub ratelimits: super::ratelimit::RateLimits,
}

impl Metrics {
    pub fn request(&self, kind: &'static str, cache: &'static str) {
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((kind, cache))
            .or_default() += 1;
    }

    pub fn upstream(&self, method: &'static str, kind: &'static str) {
        *self
            .upstream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((method, kind))
            .or_default() += 1;
    }

    pub fn store_write_error(&self, kind: WriteError) {
        kind.pick(&self.store_write_errors)
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Failed stores of one kind so far.
    pub fn store_write_errors(&self, kind: WriteError) -> u64 {
        kind.pick(&self.store_write_errors).load(Ordering::Relaxed)
    }

    /// Upstream requests of one method and kind so far (for tests and the benchmark).
    pub fn upstream_count(&self, method: &str, kind: &str) -> u64 {
        self.upstream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((m, k), _)| *m == method && *k == kind)
            .map(|(_, n)| *n)
            .sum()
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        self.render_requests(&mut s);
        self.render_store_errors(&mut s);
        self.render_gauges(&mut s);
        self.ratelimits.render(&mut s);
        s
    }

    fn render_requests(&self, s: &mut String) {
        s.push_str("# HELP mirrorctl_requests_total Client requests by kind and cache result.\n");
        s.push_str("# TYPE mirrorctl_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        for ((k, c), n) in requests.iter() {
            let _ = writeln!(
                s,
                "mirrorctl_requests_total{{kind=\"{k}\",cache=\"{c}\"}} {n}"
            );
        }
        s.push_str(
            "# HELP mirrorctl_upstream_requests_total Requests sent to upstream registries.\n",
        );
        s.push_str("# TYPE mirrorctl_upstream_requests_total counter\n");
        drop(requests);
        let upstream = self.upstream.lock().unwrap_or_else(PoisonError::into_inner);
        for ((m, k), n) in upstream.iter() {
            let _ = writeln!(
                s,
                "mirrorctl_upstream_requests_total{{method=\"{m}\",kind=\"{k}\"}} {n}"
            );
        }
    }

    fn render_gauges(&self, s: &mut String) {
        let gauges: [(&str, &str, &str, &AtomicU64); 9] = [
            (
                "mirrorctl_upstream_bytes_total",
                "counter",
                "Blob and manifest bytes received from upstream.",
                &self.upstream_bytes,
            ),
            (
                "mirrorctl_served_bytes_total",
                "counter",
                "Blob bytes sent to clients.",
                &self.served_bytes,
            ),
            (
                "mirrorctl_served_memory_bytes_total",
                "counter",
                "Of the blob bytes sent, those taken from a download's recent chunks in memory (the rest were read from the cache file).",
                &self.served_memory_bytes,
            ),
            (
                "mirrorctl_inflight_fetches",
                "gauge",
                "Blob downloads from upstream in progress.",
                &self.inflight,
            ),
            (
                "mirrorctl_cache_bytes",
                "gauge",
                "Bytes of committed blobs in the cache.",
                &self.cache_bytes,
            ),
            (
                "mirrorctl_cache_blobs",
                "gauge",
                "Committed blobs in the cache.",
                &self.cache_blobs,
            ),
            (
                "mirrorctl_evictions_total",
                "counter",
                "Blobs evicted to stay under --max-size.",
                &self.evictions,
            ),
            (
                "mirrorctl_digest_mismatches_total",
                "counter",
                "Upstream downloads discarded because the bytes did not match the digest.",
                &self.digest_mismatches,
            ),
            (
                "mirrorctl_cache_corrupt_blobs_total",
                "counter",
                "Cached blobs found torn (size, at start) or corrupt (digest, on first serve after a start) and deleted.",
                &self.corrupt_blobs,
            ),
        ];
        for (name, ty, help, v) in gauges {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {ty}\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }

    fn render_store_errors(&self, s: &mut String) {
        s.push_str("# HELP mirrorctl_store_write_errors_total Cache writes that failed (blob, manifest, tag file, index log), by cause; the pull is served from upstream meanwhile.\n");
        s.push_str("# TYPE mirrorctl_store_write_errors_total counter\n");
        for k in WriteError::ALL {
            let _ = writeln!(
                s,
                "mirrorctl_store_write_errors_total{{kind=\"{}\"}} {}",
                k.as_str(),
                self.store_write_errors(k)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_errors_by_kind() {
        let m = Metrics::default();
        let of = |n| WriteError::of(&std::io::Error::from_raw_os_error(n));
        assert_eq!(of(libc::ENOSPC), WriteError::NoSpace);
        assert_eq!(of(libc::EDQUOT), WriteError::NoSpace);
        assert_eq!(of(libc::EROFS), WriteError::ReadOnly);
        assert_eq!(of(libc::EIO), WriteError::Io);
        m.store_write_error(WriteError::NoSpace);
        m.store_write_error(WriteError::NoSpace);
        let text = m.render();
        assert!(text.contains("mirrorctl_store_write_errors_total{kind=\"no-space\"} 2\n"));
        assert!(text.contains("mirrorctl_store_write_errors_total{kind=\"read-only\"} 0\n"));
        assert!(text.contains("mirrorctl_store_write_errors_total{kind=\"io-error\"} 0\n"));
    }
}
