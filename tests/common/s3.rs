//! CNCF distribution in proxy mode on its S3 storage driver, against a real S3 server on
//! loopback: s3s-fs 0.14.1 (crates.io; `.ci/run` builds it into a cache dir, rebuilt when
//! missing). `shared/lab/s3-recipe.md` has the recipe; what it found shapes this file:
//!
//! * the bucket (a directory for s3s-fs) must exist before the registry starts, and the
//!   upstream must answer `/v2/` (a proxy pings it at start-up and panics otherwise);
//! * distribution 2.8 panics at start-up when `AWS_CA_BUNDLE` is set: it is removed;
//! * a cold blob GET is streamed (200); once the blob is written to S3 (in the background), GET
//!   and HEAD answer `307` to a presigned URL, valid 20 minutes. [`S3Mirror::redirects`] polls.
//!
//! Between the registry and s3s-fs sits a recording TCP relay ([`Relay`]): the registry's
//! `regionendpoint`, hence every presigned URL, names the relay, so a test can read every
//! request a client sent to the object store (no client may send it the registry's token).

use super::registry::Registry;
use super::{free_port, guard, Daemon};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where `.ci/run` installs s3s-fs (its `bin/` is put on `PATH` there too).
pub const CI_CACHE_BIN: &str = "/var/cache/mirrorctl-ci/s3s-fs-0.14.1/bin/s3s-fs";

/// The s3s-fs binary: on `PATH`, else in `.ci/run`'s cache dir.
pub fn s3s_fs() -> Option<PathBuf> {
    super::which("s3s-fs").or_else(|| {
        let p = Path::new(CI_CACHE_BIN);
        p.is_file().then(|| p.to_path_buf())
    })
}

/// Like [`super::require`] for s3s-fs: skip loudly, or fail with `CI=true`.
pub fn require() -> bool {
    if s3s_fs().is_some() {
        return true;
    }
    let what =
        "missing s3s-fs (cargo install --locked s3s-fs@0.14.1 --features binary; .ci/run does)";
    if super::in_ci() {
        panic!("CI=true and {what}");
    }
    eprintln!(
        "SKIP {}: {what}",
        std::thread::current().name().unwrap_or("test")
    );
    false
}

/// A TCP relay on `127.0.0.1:<port>` to `target`, keeping every byte clients sent, one buffer
/// per connection.
pub struct Relay {
    pub port: u16,
    sent: Arc<Mutex<Vec<Sent>>>,
}

/// The bytes clients sent on one connection.
type Sent = Arc<Mutex<Vec<u8>>>;

impl Relay {
    pub fn start(target: u16) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let all = sent.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(client) = c else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let buf: Sent = Arc::default();
                all.lock().unwrap().push(buf.clone());
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pipe(client, server, Some(buf)));
                std::thread::spawn(move || pipe(s2, c2, None));
            }
        });
        Relay { port, sent }
    }

    /// The request heads (request line + headers) clients sent whose request line holds
    /// `needle` (e.g. `X-Amz-Signature=`: a presigned GET).
    pub fn request_heads(&self, needle: &str) -> Vec<String> {
        let mut out = Vec::new();
        for buf in self.sent.lock().unwrap().iter() {
            let text = String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
            let mut rest = text.as_str();
            while let Some(i) = ["GET /", "HEAD /"]
                .iter()
                .filter_map(|m| rest.find(m))
                .min()
            {
                let head_end = rest[i..].find("\r\n\r\n").map_or(rest.len(), |e| i + e);
                let head = &rest[i..head_end];
                if head.lines().next().is_some_and(|l| l.contains(needle)) {
                    out.push(head.to_string());
                }
                rest = &rest[head_end.min(rest.len())..];
                if rest.len() <= 4 {
                    break;
                }
                rest = &rest[1..];
            }
        }
        out
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, keep: Option<Sent>) {
    let mut b = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(k) = &keep {
                    k.lock().unwrap().extend_from_slice(&b[..n]);
                }
                if to.write_all(&b[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// s3s-fs + a [`Relay`] + distribution (proxy of `upstream_url`) on S3; stopped on drop.
pub struct S3Mirror {
    /// Declared first: stopped before the object store.
    pub registry: Registry,
    pub relay: Relay,
    /// The object store (kept for its drop: stopped last).
    _s3: Daemon,
}

const KEY: &str = "mirrorctltestkey";
const SECRET: &str = "mirrorctl-test-secret-0123456789";
const BUCKET: &str = "registry";

impl S3Mirror {
    pub fn start(dir: &Path, upstream_url: &str) -> S3Mirror {
        S3Mirror::start_with(dir, upstream_url, None)
    }

    /// [`S3Mirror::start`]; with `htpasswd` = (user, password) every client request needs
    /// Basic credentials.
    pub fn start_with(dir: &Path, upstream_url: &str, htpasswd: Option<(&str, &str)>) -> S3Mirror {
        let bin = s3s_fs().expect("s3s-fs (check common::s3::require first)");
        let data = dir.join("s3-data");
        std::fs::create_dir_all(data.join(BUCKET)).unwrap();
        let s3_port = free_port();
        let mut c = Command::new(bin);
        c.args(["--host", "127.0.0.1", "--port", &s3_port.to_string()])
            .args(["--access-key", KEY, "--secret-key", SECRET])
            .arg(&data);
        guard(&mut c);
        let mut s3 = Daemon::spawn("s3s-fs", c, dir);
        s3.wait_ready("its port", Duration::from_secs(20), |_| {
            TcpStream::connect(("127.0.0.1", s3_port)).is_ok()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let relay = Relay::start(s3_port);
        let auth = htpasswd.map(|(u, p)| {
            let f = dir.join("htpasswd");
            std::fs::write(&f, super::htpasswd_line(u, p)).unwrap();
            format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                f.display()
            )
        });
        let registry = start_registry(dir, upstream_url, relay.port, &auth.unwrap_or_default());
        S3Mirror {
            registry,
            relay,
            _s3: s3,
        }
    }

    /// Does the mirror answer `GET /v2/<repo>/blobs/<digest>` with a 307 to the object store
    /// yet (the blob is stored)? One request, redirects not followed.
    pub fn redirects(&self, repo: &str, digest: &str) -> bool {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.registry.url());
        let c = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        super::http::rt()
            .block_on(async { c.get(&url).send().await.map(|r| r.status().as_u16()) })
            .is_ok_and(|s| s == 307)
    }
}

/// distribution's S3 config (recipe: only these keys; `http.secret` set; upload purging off).
fn config(port: u16, upstream_url: &str, s3_port: u16, extra: &str) -> String {
    format!(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
         storage:\n  s3:\n    accesskey: {KEY}\n    secretkey: {SECRET}\n    region: us-east-1\n\
         \x20   regionendpoint: http://127.0.0.1:{s3_port}\n    bucket: {BUCKET}\n    rootdirectory: /mirror\n\
         \x20 delete:\n    enabled: true\n  cache:\n    blobdescriptor: inmemory\n\
         \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: mirrorctl-test-secret\n\
         health:\n  storagedriver:\n    enabled: false\nproxy:\n  remoteurl: {upstream_url}\n{extra}"
    )
}

fn start_registry(dir: &Path, upstream_url: &str, s3_port: u16, extra: &str) -> Registry {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let cfg = dir.join("config.yml");
        std::fs::write(&cfg, config(port, upstream_url, s3_port, extra)).unwrap();
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve").arg(&cfg).env_remove("AWS_CA_BUNDLE");
        guard(&mut cmd);
        let mut daemon = Daemon::spawn("registry-s3", cmd, dir);
        let want = format!("listening on 127.0.0.1:{port}");
        match daemon.wait_ready(&want, Duration::from_secs(30), |d| {
            d.stderr().contains(&want)
        }) {
            Ok(()) => {
                return Registry {
                    daemon,
                    port,
                    dir: dir.to_path_buf(),
                }
            }
            Err(e) if e.contains("address already in use") => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("could not start the S3-backed registry: {last}");
}
