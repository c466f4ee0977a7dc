//! Real-client test harness of the integration tests (`tests/it/`, which includes it as
//! `crate::common`).
//!
//! Everything here runs real programs on loopback only, writes only under a per-test temp dir and
//! kills what it starts (on drop, hence also on panic). Building blocks:
//!
//! * [`require`]: skip loudly when a client is missing (or not root), FAIL when `CI=true`.
//! * [`Workspace`]: a temp dir with `root/` (for `mirrorctl --root`), `state/` (for
//!   `--state-dir`) and private scratch dirs for daemons ([`Workspace::aux`]).
//! * [`guard`] / [`GUARD_ENV`]: the proxy guard every client gets, so a fallback to Docker Hub
//!   fails at once on `127.0.0.1:9` instead of leaving the machine.
//! * [`free_port`], [`wait_until`], [`Daemon`] (process-group guard with log capture).
//! * [`image::ProbeImage`]: an OCI layout built in Rust (`latest`, `multi`, optional `big`).
//! * [`registry::Registry`]: CNCF distribution (`docker-registry`) as upstream or proxy mirror,
//!   with its access log parsed into [`registry::AccessEntry`]; [`registry::seed_upstream`] pushes
//!   the probe with skopeo (in a private mount namespace).
//! * [`containerd::Containerd`]: a private containerd + `ctr`.
//! * [`containers::ContainersEnv`]: podman and skopeo reading `<root>/etc/containers`
//!   (registries.conf + drop-ins) in a private mount namespace.
//! * [`dockerd::Dockerd`]: a private dockerd 20.10 in a private mount namespace whose config,
//!   pid file and socket live under a mirrorctl `--root`.
//! * [`proof`]: [`AccessLogged`], `assert_through_mirror` / `assert_not_through_mirror`
//!   (by user agent: `UA_DOCKERD`, `UA_CONTAINERD`, `UA_PODMAN`, `UA_SKOPEO`).
//! * [`ratelimit::RateLimited`]: Docker Hub's pull limit (`ratelimit-*` headers, 429 after N
//!   manifest GETs) in front of a real registry.
//! * [`s3::S3Mirror`]: distribution on its S3 driver against s3s-fs, through a recording relay.
//! * [`serve::Serve`]: `mirrorctl serve` as a mirror, its access log (+ `Cache-Status`) parsed.
//! * [`http`]: a small reqwest client (no proxy) for talking HTTP to a mirror directly.
//! * [`tls`]: a CA and a leaf certificate for 127.0.0.1 (openssl CLI).
//! * [`Seeded`]: an upstream seeded with the probe; [`Lab`]: the same plus a mirror in front.
//! * [`mirrorctl`] / [`Workspace::run`] / [`run`] / [`Out`]: run the binary under test (or any
//!   command) and get readable assertion messages (`{out}`); [`json`] parses its `--json`.
//!
//! Typical use:
//! ```ignore
//! use crate::common;
//! #[test]
//! fn my_test() {
//!     if !common::require(&["docker-registry", "skopeo"]) { return; }
//!     let ws = common::Workspace::new("my-test");
//!     let lab = common::Lab::start(&ws);              // upstream + mirror, probe seeded
//!     let mark = lab.mirror.log_mark();
//!     /* ... pull through lab.mirror.url() ... */
//!     let hits = lab.mirror.requests_since(mark);
//! }
//! ```

pub mod containerd;
pub mod containers;
pub mod daemon;
pub mod dockerd;
pub mod http;
pub mod image;
pub mod nginx;
pub mod proof;
pub mod ratelimit;
pub mod registry;
pub mod s3;
pub mod serve;
pub mod tls;

pub use daemon::{wait_until, Daemon};
pub use proof::AccessLogged;

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The proxy guard: any request that is not to loopback goes to a closed port on loopback.
/// Both spellings, since Go reads both and some tools only one.
/// `NO_PROXY` also names 10.77.0.1, the "LAN" mirror address that `tests/it/lan_mirror.rs` adds
/// to `lo` inside a network namespace of its own (nothing else uses it).
pub const GUARD_ENV: [(&str, &str); 6] = [
    ("HTTP_PROXY", "http://127.0.0.1:9"),
    ("HTTPS_PROXY", "http://127.0.0.1:9"),
    ("NO_PROXY", "127.0.0.1,localhost,::1,10.77.0.1"),
    ("http_proxy", "http://127.0.0.1:9"),
    ("https_proxy", "http://127.0.0.1:9"),
    ("no_proxy", "127.0.0.1,localhost,::1,10.77.0.1"),
];

/// Apply [`GUARD_ENV`] to a command.
pub fn guard(cmd: &mut Command) -> &mut Command {
    for (k, v) in GUARD_ENV {
        cmd.env(k, v);
    }
    cmd
}

/// True when running in CI (`CI=true`): missing prerequisites are failures there.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Find `bin` on `PATH` (or accept an absolute path).
pub fn which(bin: &str) -> Option<PathBuf> {
    let p = Path::new(bin);
    if p.is_absolute() {
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|c| c.is_file())
}

fn skip_or_fail(what: &str, ci: bool) -> bool {
    if ci {
        panic!("CI=true and {what}: this test cannot run (install it; .ci/run does)");
    }
    eprintln!("\n==================== SKIP ====================");
    eprintln!(
        "SKIP {}: {what}",
        std::thread::current().name().unwrap_or("test")
    );
    eprintln!("(set CI=true to make this a failure; .ci/run installs everything)");
    eprintln!("==============================================\n");
    false
}

/// Check that every binary exists (and that we are root, which every daemon here needs).
/// Returns `true` when the test can run. When something is missing: with `CI=true` this
/// panics (a test failure); otherwise it prints a loud SKIP line and returns `false`, and the
/// test should `return`.
pub fn require(bins: &[&str]) -> bool {
    require_in(bins, in_ci())
}

/// [`require`] with the CI flag given explicitly (for testing the rule itself).
pub fn require_in(bins: &[&str], ci: bool) -> bool {
    let missing: Vec<&str> = bins
        .iter()
        .copied()
        .filter(|b| which(b).is_none())
        .collect();
    if !missing.is_empty() {
        return skip_or_fail(&format!("missing binaries: {}", missing.join(", ")), ci);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip_or_fail(
            "not running as root (needed for mount namespaces and daemons)",
            ci,
        );
    }
    true
}

/// For a tool that needs no root (a build or packaging tool): `true` when `found`; otherwise
/// the loud skip of [`require`] (`what` says what is missing), a failure with `CI=true`.
pub fn require_tool(found: bool, what: &str) -> bool {
    found || skip_or_fail(what, in_ci())
}

/// A free TCP port on 127.0.0.1 (bind :0, read, release). Racy by nature: starters that bind it
/// ([`registry::Registry`]) retry with a new port when it was taken meanwhile.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A per-test temp dir (removed on drop, after the daemons that use it, if declared first).
/// Layout: `root/` = mirrorctl `--root`, `state/` = `--state-dir`, `aux/<name>/` = scratch for
/// daemons and clients, outside the mirrorctl root so they never show up in its files.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(label: &str) -> Workspace {
        // Short paths: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix(&format!("mc-{label}-"))
            .tempdir_in("/tmp")
            .expect("create temp dir");
        let ws = Workspace { dir };
        std::fs::create_dir_all(ws.root()).unwrap();
        ws
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The mirrorctl `--root`.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The mirrorctl `--state-dir`.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `<root>/<rel>` (rel without leading slash, e.g. `etc/docker/daemon.json`).
    pub fn under_root(&self, rel: &str) -> PathBuf {
        self.root().join(rel.trim_start_matches('/'))
    }

    /// A created scratch dir `aux/<name>` outside the root.
    pub fn aux(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("aux").join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Write `<root>/<rel>` (parent dirs created); returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.under_root(rel);
        write_file(&p, text);
        p
    }

    /// `mirrorctl <args>` on this workspace ([`mirrorctl`]), run to completion ([`run`]).
    pub fn run(&self, args: &[&str]) -> Out {
        run(mirrorctl(self).args(args))
    }
}

/// Write `path`, creating its parent dirs.
pub fn write_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Install `src` as the executable `dst` (mode 755) with install(1), so this process never has
/// `dst` open for writing: a thread forking meanwhile would hand that descriptor to its child
/// until the child's exec, and running `dst` in that window fails with ETXTBSY.
pub fn install_executable(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    run(Command::new("install")
        .args(["-m", "755"])
        .arg(src)
        .arg(dst))
    .assert_ok();
}

/// [`install_executable`] for a script with this text (written next to `dst` as `<dst>.src`).
pub fn write_executable(dst: &Path, text: &str) {
    let src = dst.with_extension("src");
    write_file(&src, text);
    install_executable(&src, dst);
}

/// A real process whose `/proc/<pid>/comm` is `name` (a copy of `sleep` under that name), for
/// the daemon checks that look at pid files and `comm`; killed on drop.
pub struct FakeDaemon(std::process::Child);

impl FakeDaemon {
    pub fn start(dir: &Path, name: &str) -> FakeDaemon {
        let bin = dir.join(name);
        install_executable(Path::new("/bin/sleep"), &bin);
        let child = Command::new(&bin)
            .arg("300")
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        FakeDaemon(child)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Wait for the process to end (a signal's effect); its status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(within, || {
            status = self.0.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One htpasswd line for `user` with a bcrypt hash of `pass` (cost 4: tests need no strength).
pub fn htpasswd_line(user: &str, pass: &str) -> String {
    format!("{user}:{}\n", bcrypt::hash(pass, 4).unwrap())
}

/// `sha256:<hex>` of `bytes` (an OCI digest).
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Captured result of a command, printable in assertion messages.
pub struct Out {
    pub cmdline: String,
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    /// Panic with the full output unless the command succeeded.
    pub fn assert_ok(&self) -> &Self {
        assert!(self.ok(), "command failed: {self}");
        self
    }
    /// Panic with the full output if the command succeeded.
    pub fn assert_fail(&self) -> &Self {
        assert!(!self.ok(), "command unexpectedly succeeded: {self}");
        self
    }
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` → {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline, self.status, self.stdout, self.stderr
        )
    }
}

fn cmdline(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run a command to completion (stdin closed) with a timeout, capturing its output.
/// A command that outlives the timeout is killed (its whole process group) and reported.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Out {
    run_with(cmd, timeout, None)
}

/// [`run`] with `input` on stdin.
pub fn run_input(cmd: &mut Command, input: &[u8]) -> Out {
    run_with(cmd, Duration::from_secs(120), Some(input))
}

fn run_with(cmd: &mut Command, timeout: Duration, input: Option<&[u8]>) -> Out {
    use std::os::unix::process::CommandExt;
    let line = cmdline(cmd);
    let dir = tempfile::tempdir().unwrap();
    let (o, e) = (dir.path().join("o"), dir.path().join("e"));
    match input {
        Some(bytes) => {
            let i = dir.path().join("i");
            std::fs::write(&i, bytes).unwrap();
            cmd.stdin(std::fs::File::open(&i).unwrap())
        }
        None => cmd.stdin(std::process::Stdio::null()),
    }
    .stdout(std::fs::File::create(&o).unwrap())
    .stderr(std::fs::File::create(&e).unwrap())
    .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|err| panic!("spawn `{line}`: {err}"));
    let pid = child.id() as i32;
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: signalling our own child's process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let st = child.wait().unwrap();
            let out = Out {
                cmdline: line.clone(),
                status: st,
                stdout: std::fs::read_to_string(&o).unwrap_or_default(),
                stderr: std::fs::read_to_string(&e).unwrap_or_default(),
            };
            panic!("timed out after {timeout:?}: {out}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: reap anything the command left in its group.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    Out {
        cmdline: line,
        status,
        stdout: String::from_utf8_lossy(&std::fs::read(&o).unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&std::fs::read(&e).unwrap_or_default()).into_owned(),
    }
}

/// [`run_timeout`] with 120 s.
pub fn run(cmd: &mut Command) -> Out {
    run_timeout(cmd, Duration::from_secs(120))
}

/// The entry for `target` in the `targets` array of an arm/disarm/status `--json` document;
/// panics with the document when there is none.
pub fn target<'a>(doc: &'a serde_json::Value, target: &str) -> &'a serde_json::Value {
    doc["targets"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["target"] == target))
        .unwrap_or_else(|| panic!("no {target} target in {doc}"))
}

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mirrorctl");

/// `mirrorctl` (the binary under test) with the proxy guard, `NO_COLOR` and no `MIRRORCTL_*`
/// from the environment, no arguments yet. Most tests want [`mirrorctl`].
pub fn mirrorctl_cmd() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("MIRRORCTL_ROOT")
        .env_remove("MIRRORCTL_STATE_DIR")
        .env_remove("MIRRORCTL_DOCKERD_VERSION")
        // The per-user targets' locations come from these: a test sets the ones it means.
        .env_remove("SUDO_USER")
        .env_remove("EARTHLY_CONFIG")
        .env_remove("BUILDX_CONFIG")
        // Most tests arm mirrors that are not running; the preflight tests turn it back on.
        .env("MIRRORCTL_NO_PREFLIGHT", "1")
        .env("NO_COLOR", "1");
    guard(&mut c);
    c
}

/// `mirrorctl --root <ws.root> --state-dir <ws.state> --color never` ([`mirrorctl_cmd`]); add
/// env and args, then [`run`] it (or [`Workspace::run`] for just args).
pub fn mirrorctl(ws: &Workspace) -> Command {
    let mut c = mirrorctl_cmd();
    c.arg("--root")
        .arg(ws.root())
        .arg("--state-dir")
        .arg(ws.state_dir())
        .arg("--color")
        .arg("never");
    c
}

/// `mirrorctl verify --mirror <mirror> --image <image> --client <c>… --json` on `ws` (add the
/// env the clients need), and [`run_timeout`] it: clients' pulls can take minutes.
pub fn verify_clients(
    ws: &Workspace,
    mirror: &str,
    image: &str,
    clients: &[&str],
    env: impl FnOnce(&mut Command),
) -> Out {
    let mut c = mirrorctl(ws);
    c.args(["verify", "--mirror", mirror, "--image", image]);
    for client in clients {
        c.args(["--client", client]);
    }
    c.arg("--json");
    // Last, so it may add verify's own flags too.
    env(&mut c);
    run_timeout(&mut c, Duration::from_secs(300))
}

/// The JSON document a command printed on stdout (`--json`); panics with the output if it is
/// not one.
pub fn json(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// Snapshot of a tree: relative path → description of every directory (`dir 755`), symlink
/// (`symlink -> target`) and regular file (`file 644 <len> bytes sha256:<hex>`, plus the text when
/// it is short UTF-8, for readable assertion diffs). Equal snapshots = byte-identical files,
/// same modes, no file or directory appeared or vanished.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, String> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;
    fn walk(base: &Path, d: &Path, out: &mut std::collections::BTreeMap<PathBuf, String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let rel = p.strip_prefix(base).unwrap().to_path_buf();
            let ft = meta.file_type();
            if ft.is_dir() {
                out.insert(rel, format!("dir {mode:o}"));
                walk(base, &p, out);
            } else if ft.is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, format!("symlink -> {}", t.display()));
            } else {
                let bytes = std::fs::read(&p).unwrap();
                let mut desc = format!(
                    "file {mode:o} {} bytes sha256:{}",
                    bytes.len(),
                    hex::encode(Sha256::digest(&bytes))
                );
                if let (true, Ok(text)) = (bytes.len() <= 4096, std::str::from_utf8(&bytes)) {
                    desc.push_str(&format!("\n{text}"));
                }
                out.insert(rel, desc);
            }
        }
    }
    let mut out = Default::default();
    walk(dir, dir, &mut out);
    out
}

/// An upstream registry on loopback seeded with the probe image as
/// `library/probe:{latest,multi,v2s2}` (and `:big` when built with one).
pub struct Seeded {
    pub upstream: registry::Registry,
    pub image: image::ProbeImage,
}

impl Seeded {
    /// Needs `docker-registry`, `skopeo`, `unshare` (check with [`require`] first). `big_mb`:
    /// add a `big` tag of that many MiB of random data.
    pub fn start(ws: &Workspace, big_mb: Option<usize>) -> Seeded {
        let image = image::ProbeImage::build(&ws.aux("image"), big_mb);
        let upstream = registry::Registry::upstream(&ws.aux("upstream"));
        registry::seed_upstream(&upstream, &image, &ws.aux("seed"));
        Seeded { upstream, image }
    }
}

/// [`Seeded`] with a proxy mirror (`docker-registry`) of it in front.
pub struct Lab {
    /// Declared first so it is dropped (stopped) first.
    pub mirror: registry::Registry,
    pub upstream: registry::Registry,
    pub image: image::ProbeImage,
}

impl Lab {
    /// Needs `docker-registry`, `skopeo` (check with [`require`] first).
    pub fn start(ws: &Workspace) -> Lab {
        Lab::start_with(ws, None)
    }

    /// Like [`Lab::start`], with a `big` tag of `big_mb` MiB of random data when given.
    pub fn start_with(ws: &Workspace, big_mb: Option<usize>) -> Lab {
        let Seeded { upstream, image } = Seeded::start(ws, big_mb);
        let mirror = registry::Registry::proxy(&ws.aux("mirror"), &upstream.url());
        Lab {
            mirror,
            upstream,
            image,
        }
    }
}
