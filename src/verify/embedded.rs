//! `verify --embedded`: run `mirrorctl serve` in this process, on a free loopback port with a
//! temporary cache, so the whole verify flow can run with no mirror deployed. Everything it
//! creates is removed afterwards; a cache left by a `kill -9` is removed by the next
//! `verify --embedded` (its directory names the pid that owned it).

use crate::serve;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

const PREFIX: &str = "mirrorctl-embedded-";

/// The cache dir of the running embedded server, for the signal path (which exits at once).
static LIVE_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

#[derive(Debug, Clone, Serialize)]
pub struct EmbeddedReport {
    /// The upstream the embedded server pulled from.
    pub upstream: String,
    /// The temporary cache directory (removed at the end).
    pub cache_dir: String,
    /// The cache directory is gone.
    pub removed: bool,
}

/// Dropping it (an early error) removes the cache too; the server stops with the runtime.
pub struct Embedded {
    handle: Option<serve::ServerHandle>,
    dir: PathBuf,
    upstream: String,
}

impl Embedded {
    /// Start a server for `registry` pulling from `upstream`, its cache in a new directory
    /// under `tmp` (stale ones from dead processes are removed first).
    pub async fn start(registry: &str, upstream: &str, tmp: &Path) -> Result<Embedded> {
        sweep(tmp);
        let dir = tmp.join(format!("{PREFIX}{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing the old cache {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the embedded cache {}", dir.display()))?;
        *crate::error::lock(&LIVE_DIR) = Some(dir.clone());
        let mut config = serve::Config::ephemeral(upstream, dir.clone());
        config.default_upstream.registry = registry.to_string();
        let handle = match serve::start(config).await {
            Ok(h) => h,
            Err(e) => {
                let _ = remove_live();
                return Err(e.context("starting the embedded mirrorctl serve"));
            }
        };
        Ok(Embedded {
            handle: Some(handle),
            dir,
            upstream: upstream.to_string(),
        })
    }

    /// The mirror URL to verify (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        self.handle.as_ref().map(|h| h.url()).unwrap_or_default()
    }

    /// Stop the server and remove its cache.
    pub async fn stop(mut self) -> EmbeddedReport {
        if let Some(h) = self.handle.take() {
            let _ = h.shutdown(Duration::from_secs(2)).await;
        }
        let removed = remove_live();
        EmbeddedReport {
            upstream: self.upstream.clone(),
            cache_dir: self.dir.display().to_string(),
            removed,
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        remove_live();
    }
}

/// Remove the running server's cache dir (also called on SIGINT/SIGTERM). True when gone.
pub fn remove_live() -> bool {
    match crate::error::lock(&LIVE_DIR).take() {
        Some(d) => std::fs::remove_dir_all(&d).is_ok() || !d.exists(),
        None => true,
    }
}

/// Remove `mirrorctl-embedded-<pid>` dirs under `tmp` whose process is gone.
fn sweep(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sweep_removes_dead_owners_only() {
        let t = std::env::temp_dir().join(format!("mirrorctl-sweep-test-{}", std::process::id()));
        std::fs::create_dir_all(&t).unwrap();
        // No process has pid 2^32-2 (pid_max is at most 2^22); our own pid is alive.
        let dead = t.join(format!("{}{}", super::PREFIX, u32::MAX - 1));
        let mine = t.join(format!("{}{}", super::PREFIX, std::process::id()));
        let other = t.join("unrelated-dir");
        for d in [&dead, &mine, &other] {
            std::fs::create_dir_all(d.join("blobs")).unwrap();
        }
        super::sweep(&t);
        assert!(!dead.exists());
        assert!(mine.exists());
        assert!(other.exists());
        std::fs::remove_dir_all(&t).unwrap();
    }
}
