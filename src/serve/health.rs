//! Writes the cache could not make (a full disk, a read-only remount, an I/O error): each is
//! counted by cause in `/metrics` (`mirrorctl_store_write_errors_total{kind=…}`) and logged
//! once per cause, then at most every [`REPEAT`] with the count since; never once per chunk or
//! per request. The pull itself goes on from upstream (see [`super::flight`]).

use super::metrics::{Metrics, WriteError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A condition still present is logged again after this long.
const REPEAT: Duration = Duration::from_secs(600);

pub struct Health {
    metrics: Arc<Metrics>,
    /// Per cause: when it was last logged, and failures since.
    logged: Mutex<[Option<(Instant, u64)>; 3]>,
}

impl Health {
    pub fn new(metrics: Arc<Metrics>) -> Health {
        Health {
            metrics,
            logged: Mutex::new([None; 3]),
        }
    }

    /// A write failed: count it, and log it unless this cause was logged lately. `what` names
    /// what could not be stored (`blob sha256:…`, `manifest …`).
    pub fn failed(&self, what: &str, e: &std::io::Error) {
        let kind = WriteError::of(e);
        self.metrics.store_write_error(kind);
        if let Some(since) = self.due(kind, Instant::now()) {
            let again = match since {
                0 => String::new(),
                n => format!(" ({n} more since the last report)"),
            };
            crate::diag::warn(&format!(
                "cache cannot store {what}: {e} [{}]{again}; pulls go on from upstream without caching, and every new download tries to store again",
                kind.as_str()
            ));
        }
    }

    /// `Some(failures since the last report)` when this failure of `kind` is to be logged.
    fn due(&self, kind: WriteError, now: Instant) -> Option<u64> {
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = kind.pick_mut(&mut logged);
        match slot {
            Some((at, n)) if now.duration_since(*at) < REPEAT => {
                *n += 1;
                None
            }
            Some((_, n)) => {
                let since = *n;
                *slot = Some((now, 0));
                Some(since)
            }
            None => {
                *slot = Some((now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_cause_then_rarely() {
        let m = Arc::new(Metrics::default());
        let h = Health::new(m.clone());
        let t = Instant::now();
        assert_eq!(h.due(WriteError::NoSpace, t), Some(0));
        assert_eq!(h.due(WriteError::NoSpace, t + Duration::from_secs(1)), None);
        assert_eq!(h.due(WriteError::NoSpace, t + Duration::from_secs(2)), None);
        assert_eq!(h.due(WriteError::ReadOnly, t), Some(0), "another cause");
        assert_eq!(h.due(WriteError::NoSpace, t + REPEAT), Some(2));
        h.failed("blob x", &std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(m.store_write_errors(WriteError::NoSpace), 1);
    }
}
