//! `mirrorctl serve` (the binary under test) as a mirror: started on `127.0.0.1:0` (it prints the
//! bound address first on stdout), killed on drop, with its access log (stderr, Apache combined
//! format plus the response's `Cache-Status`) parsed into [`AccessEntry`] so the same proofs as
//! for a `docker-registry` mirror apply.

use super::registry::{parse_access_line, AccessEntry};
use super::tls::Certs;
use super::{guard, AccessLogged, Daemon, BIN};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Serve {
    pub daemon: Daemon,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    pub cache: PathBuf,
}

impl Serve {
    /// `mirrorctl serve --listen 127.0.0.1:0 --cache-dir <cache> [args…]`, logs in `dir`.
    pub fn start(dir: &Path, cache: &Path, args: &[&str]) -> Serve {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(cache)
            .args(args);
        guard(&mut cmd);
        let mut daemon = Daemon::spawn("mirrorctl-serve", cmd, dir);
        daemon
            .wait_ready("address on stdout", Duration::from_secs(20), |d| {
                d.stdout().contains('\n')
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = daemon.stdout().lines().next().unwrap().trim().to_string();
        Serve {
            daemon,
            addr,
            cache: cache.to_path_buf(),
        }
    }

    /// An HTTPS server with `certs`' leaf (its cache in `<dir>/cache`) whose upstream is a closed
    /// port: pulls fail, `/v2/` answers.
    pub fn with_tls(dir: &Path, certs: &Certs) -> Serve {
        Serve::start(
            dir,
            &dir.join("cache"),
            &[
                "--upstream",
                "http://127.0.0.1:9",
                "--tls-cert",
                certs.cert.to_str().unwrap(),
                "--tls-key",
                certs.key.to_str().unwrap(),
            ],
        )
    }

    /// A pull-through cache whose `docker.io` (default) upstream is `upstream_url`.
    pub fn mirror_of(dir: &Path, upstream_url: &str) -> Serve {
        Serve::start(
            dir,
            &dir.join("cache"),
            &["--upstream", &format!("docker.io={upstream_url}")],
        )
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every file in `<cache>/blobs/sha256`, sorted: the committed blobs (`<hex>`) and the temp
    /// files of downloads in progress (`.tmp-…`).
    pub fn blob_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.cache.join("blobs/sha256"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The temp files of downloads in progress (`<cache>/blobs/sha256/.tmp-…`), with their sizes.
    pub fn temp_files(&self) -> Vec<(String, u64)> {
        std::fs::read_dir(self.cache.join("blobs/sha256"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
                    .map(|e| {
                        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                        (e.file_name().to_string_lossy().into_owned(), len)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// (request, `Cache-Status` of the response; empty when none) for every access log line.
    pub fn log_with_cache_status(&self) -> Vec<(AccessEntry, String)> {
        access_log_with_cache_status(&self.daemon.stderr())
    }
}

/// (request, `Cache-Status`) for every access log line of a `mirrorctl serve` stderr.
pub fn access_log_with_cache_status(stderr: &str) -> Vec<(AccessEntry, String)> {
    stderr
        .lines()
        .filter_map(|l| {
            let e = parse_access_line(l)?;
            // `… "ua" "cache status" 1.234ms`
            let cs = l.rsplit_once(" \"")?.1.split('"').next()?.to_string();
            Some((e, cs))
        })
        .collect()
}

impl AccessLogged for Serve {
    fn access_log(&self) -> Vec<AccessEntry> {
        self.log_with_cache_status()
            .into_iter()
            .map(|(e, _)| e)
            .collect()
    }
}
