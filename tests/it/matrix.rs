//! The issue-5 matrix: every client × every mirror, with real programs on loopback.
//!
//! Mirrors: CNCF distribution (`docker-registry` in proxy mode), `mirrorctl serve`,
//! distribution on its S3 driver against s3s-fs (issue 13: stored blobs answered with a 307 to a
//! presigned object-store URL) and a Harbor-style proxy-cache project (issue 11: nginx
//! answering only under `/v2/dh/…` in front of the distribution mirror, armed as
//! `<nginx>/dh`; dockerd and its BuildKit are skipped for it with the reason), all in front of one upstream `docker-registry` seeded with the probe image (`library/probe` as
//! `latest` = single-platform OCI manifest, `multi` = OCI index amd64+arm64, `v2s2` = Docker v2
//! schema 2 manifest). Clients: dockerd (daemon.json), ctr (containerd hosts.toml), dockerd's
//! built-in BuildKit (`DOCKER_BUILDKIT=1 docker build --pull`, `FROM docker.io/library/probe`),
//! podman and skopeo (registries.conf drop-in).
//!
//! For each mirror and each target (docker → dockerd + BuildKit, containerd → ctr,
//! registries → podman + skopeo):
//! 1. `mirrorctl arm --mirror <mirror> --target <target>` (dockerd is restarted to load it);
//! 2. each client pulls the three variants (its local copy removed first) with Docker Hub
//!    unreachable (proxy guard); the mirror's access log, with the client's user agent, proves
//!    the pull went through it (plus serve's `Cache-Status`); then `mirrorctl verify --client
//!    <client> --json` must say `ok: true`;
//! 3. `mirrorctl disarm` must put every file under `<root>/etc` back byte for byte, and the same
//!    pull (local copy removed) must then fail by trying Docker Hub, without reaching the mirror.
//!
//! One dockerd, one containerd and one podman/skopeo environment serve every cell. The table is
//! printed to stderr and written to `target/matrix.txt` even when cells fail; the test then
//! fails naming the failing cells. A cell that cannot run (a client missing, dockerd will not
//! start) is SKIP with the reason, except with `CI=true`, where it is a failure.

use crate::common::containerd::Containerd;
use crate::common::containers::ContainersEnv;
use crate::common::dockerd::{write_from_dockerfile, Dockerd, USER_DAEMON_JSON};
use crate::common::image::{PROBE, REPO};
use crate::common::nginx::Nginx;
use crate::common::proof::{repo_requests, UA_CONTAINERD, UA_DOCKERD, UA_PODMAN, UA_SKOPEO};
use crate::common::registry::{lines, Registry};
use crate::common::s3::S3Mirror;
use crate::common::serve::Serve;
use crate::common::{
    self, mirrorctl, run_timeout, sha256, snapshot, AccessLogged, Lab, Out, Workspace,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
/// The third mirror's name in the table.
const S3_LABEL: &str = "distribution-s3";
/// The fourth: a Harbor-style proxy-cache project (issue 11), nginx answering only under
/// `/v2/<project>/…` in front of the distribution mirror, armed as `<nginx>/<project>`.
const HARBOR_LABEL: &str = "harbor project";
const HARBOR_PROJECT: &str = "dh";
/// Why dockerd's cells are skipped for the project mirror (with the reason `arm` gives, which
/// [`docker_skip_for_project`] asks it for).
const HARBOR_DOCKERD_SKIP: &str = "dockerd puts a mirror path before /v2 (`/dh/v2/…`, not Harbor's `/v2/dh/…`), and dockerd 20.10's built-in BuildKit predates path mirrors";

/// `arm --dry-run --target docker` with the project mirror must skip docker: its reason, or
/// why the cell fails.
fn docker_skip_for_project(ws: &Workspace, url: &str) -> Result<String, String> {
    let mut c = mirrorctl(ws);
    c.args([
        "arm",
        "--dry-run",
        "--json",
        "--target",
        "docker",
        "--mirror",
        url,
    ]);
    let out = common::run(&mut c);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout)
        .map_err(|e| format!("arm printed no JSON ({e}): {}", tail(&out, 4)))?;
    let t = &doc["targets"][0];
    match (t["status"].as_str(), t["reason"].as_str()) {
        (Some("skipped"), Some(why)) if why.contains("before /v2") => Ok(why.to_string()),
        _ => Err(format!("arm did not skip docker for {url}: {t}")),
    }
}

/// (column, tag).
const VARIANTS: [(&str, &str); 3] = [("single", "latest"), ("multi", "multi"), ("v2s2", "v2s2")];
const STEPS: [&str; 7] = [
    "arm", "single", "multi", "v2s2", "verify", "disarm", "after",
];
/// The image `verify` pulls (an index: verify and the client each pick a platform).
const VERIFY_IMAGE: &str = "docker.io/library/probe:multi";
/// The user's registries.conf before arm.
const USER_REGISTRIES_CONF: &str =
    "# the user's own file\nunqualified-search-registries = [\"docker.io\"]\n";
/// A host's policy.json (podman and skopeo refuse to pull without one).
const POLICY_JSON: &str = "{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Dockerd,
    Ctr,
    /// kubelet's path: containerd's CRI image service, through config.toml's config_path.
    Cri,
    Buildkit,
    Podman,
    Skopeo,
}

impl Client {
    const ALL: [Client; 6] = [
        Client::Dockerd,
        Client::Ctr,
        Client::Cri,
        Client::Buildkit,
        Client::Podman,
        Client::Skopeo,
    ];

    fn name(self) -> &'static str {
        match self {
            Client::Dockerd => "dockerd",
            Client::Ctr => "ctr",
            Client::Cri => "cri",
            Client::Buildkit => "buildkit",
            Client::Podman => "podman",
            Client::Skopeo => "skopeo",
        }
    }

    /// The `mirrorctl arm --target` whose config this client reads.
    fn target(self) -> &'static str {
        match self {
            Client::Dockerd | Client::Buildkit => "docker",
            Client::Ctr | Client::Cri => "containerd",
            Client::Podman | Client::Skopeo => "registries",
        }
    }

    /// The `mirrorctl verify --client` name.
    fn verify_name(self) -> &'static str {
        match self {
            Client::Dockerd => "docker",
            Client::Ctr => "containerd",
            Client::Cri => "cri",
            Client::Buildkit => "buildkit",
            Client::Podman => "podman",
            Client::Skopeo => "skopeo",
        }
    }

    /// The user agent prefix the mirror logs for this client.
    fn ua(self) -> &'static str {
        match self {
            Client::Dockerd => UA_DOCKERD,
            // ctr, and dockerd's BuildKit (its vendored containerd resolver).
            Client::Ctr | Client::Cri | Client::Buildkit => UA_CONTAINERD,
            Client::Podman => UA_PODMAN,
            Client::Skopeo => UA_SKOPEO,
        }
    }

    fn bins(self) -> &'static [&'static str] {
        match self {
            Client::Dockerd | Client::Buildkit => {
                &["dockerd", "docker", "containerd", "unshare", "runc"]
            }
            Client::Ctr => &["containerd", "ctr"],
            Client::Cri => &["containerd", "ctr", "unshare"],
            Client::Podman => &["podman", "unshare"],
            Client::Skopeo => &["skopeo", "unshare"],
        }
    }
}

/// The mirror under test.
#[derive(Clone, Copy)]
enum Mirror<'a> {
    Distribution(&'a Registry),
    Serve(&'a Serve),
    /// distribution on its S3 driver (s3s-fs): stored blobs are 307s to presigned URLs.
    S3(&'a S3Mirror),
    /// nginx serving the distribution mirror under `/v2/<project>/…` only.
    Harbor(&'a Nginx, &'a Registry),
}

impl Mirror<'_> {
    fn label(&self) -> &'static str {
        match self {
            Mirror::Distribution(_) => "distribution",
            Mirror::Serve(_) => "mirrorctl serve",
            Mirror::S3(_) => S3_LABEL,
            Mirror::Harbor(..) => HARBOR_LABEL,
        }
    }

    fn url(&self) -> String {
        match self {
            Mirror::Distribution(r) => r.url(),
            Mirror::Serve(s) => s.url(),
            Mirror::S3(m) => m.registry.url(),
            Mirror::Harbor(n, _) => format!("{}/{HARBOR_PROJECT}", n.url()),
        }
    }

    /// What the armed file of `target` must contain for this mirror.
    fn needle(&self, target: &str) -> String {
        let url = self.url();
        match (self, target) {
            (Mirror::Harbor(n, _), "containerd") => format!("{}/v2/{HARBOR_PROJECT}", n.url()),
            (_, "docker" | "containerd") => url,
            _ => url.trim_start_matches("http://").to_string(),
        }
    }

    /// The log that proves a pull went through (for the project: the mirror behind nginx).
    fn log(&self) -> &dyn AccessLogged {
        match self {
            Mirror::Distribution(r) => *r,
            Mirror::Serve(s) => *s,
            Mirror::S3(m) => &m.registry,
            Mirror::Harbor(_, r) => *r,
        }
    }

    /// serve's `Cache-Status` values of `ua`'s requests for the probe since `mark`, counted.
    fn cache_statuses(&self, mark: usize, ua: &str) -> String {
        let Mirror::Serve(s) = self else {
            return String::new();
        };
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (e, cs) in s.log_with_cache_status().into_iter().skip(mark) {
            if (e.is_manifest_of(REPO) || e.is_blob_of(REPO)) && e.user_agent.starts_with(ua) {
                *counts.entry(cs).or_default() += 1;
            }
        }
        let parts: Vec<String> = counts
            .into_iter()
            .map(|(cs, n)| format!("{n}× \"{cs}\""))
            .collect();
        format!("; Cache-Status: {}", parts.join(", "))
    }
}

type StepResult = Result<String, String>;

struct Cell {
    client: Client,
    mirror: &'static str,
    steps: BTreeMap<&'static str, StepResult>,
    skip: Option<String>,
}

impl Cell {
    fn failed(&self) -> bool {
        self.skip.is_none()
            && STEPS
                .iter()
                .any(|s| !matches!(self.steps.get(s), Some(Ok(_))))
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// Run `f`, turning a panic (a harness assertion, a timeout) into an error.
fn attempt<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panic_text(p)))
}

/// The last `n` non-empty lines of a command's output, on one line, for cell details.
fn tail(out: &Out, n: usize) -> String {
    let all = out.combined();
    let l: Vec<&str> = all.lines().filter(|l| !l.trim().is_empty()).collect();
    format!(
        "`{}` → {}: {}",
        out.cmdline,
        out.status,
        l[l.len().saturating_sub(n)..].join(" | ")
    )
}

/// The pull succeeded and the mirror answered a manifest request for the probe with 200 to this
/// client's user agent (containerd-based clients: every request with `?ns=docker.io`).
fn through_mirror(out: &Out, mirror: Mirror, mark: usize, ua: &str) -> StepResult {
    if !out.ok() {
        return Err(format!("pull failed: {}", tail(out, 4)));
    }
    let mine = repo_requests(mirror.log(), mark, ua);
    let manifests = mine
        .iter()
        .filter(|e| e.is_manifest_of(REPO) && e.status == 200)
        .count();
    if manifests == 0 {
        return Err(format!(
            "pull succeeded but the mirror logged no 200 manifest request from {ua}…; it saw:\n{}",
            lines(&mirror.log().requests_since(mark))
        ));
    }
    if ua == UA_CONTAINERD
        && !mine
            .iter()
            .all(|e| e.query.as_deref() == Some("ns=docker.io"))
    {
        return Err(format!(
            "containerd requests without ?ns=docker.io:\n{}",
            lines(&mine)
        ));
    }
    let blobs = mine.iter().filter(|e| e.is_blob_of(REPO)).count();
    Ok(format!(
        "mirror log: {manifests} manifest (200) + {blobs} blob requests from {ua}…{}",
        mirror.cache_statuses(mark, ua)
    ))
}

/// The pull failed by trying Docker Hub (the proxy guard), and nothing reached the mirror.
fn not_through_mirror(out: &Out, mirror: Mirror, mark: usize, ua: &str) -> StepResult {
    if out.ok() {
        return Err(format!(
            "pull still succeeded after disarm: {}",
            tail(out, 3)
        ));
    }
    let mine = repo_requests(mirror.log(), mark, ua);
    if !mine.is_empty() {
        return Err(format!(
            "the mirror still served {ua}… after disarm:\n{}",
            lines(&mine)
        ));
    }
    let text = out.combined();
    match text
        .lines()
        .find(|l| l.contains("127.0.0.1:9") || l.contains("registry-1.docker.io"))
    {
        Some(l) => Ok(format!(
            "failed trying Docker Hub: {}",
            l.trim().chars().take(220).collect::<String>()
        )),
        None => Err(format!(
            "pull failed, but not by trying Docker Hub: {}",
            tail(out, 4)
        )),
    }
}

/// Describe how two snapshots differ (paths only).
fn snapshot_diff(before: &BTreeMap<PathBuf, String>, after: &BTreeMap<PathBuf, String>) -> String {
    let mut d = Vec::new();
    for (p, v) in before {
        match after.get(p) {
            None => d.push(format!("{} vanished", p.display())),
            Some(w) if w != v => d.push(format!("{} changed:\n{w}", p.display())),
            _ => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        d.push(format!("{} left behind", p.display()));
    }
    d.join("; ")
}

/// Everything the cells share: the workspace and one instance of each client.
struct Rig {
    ws: Workspace,
    /// `Err(reason)` when the client cannot run here.
    dockerd: Result<Dockerd, String>,
    ctrd: Result<Containerd, String>,
    /// A node's containerd, started from the root's config.toml with its CRI plugin on
    /// (restarted after arm and disarm, which change config.toml).
    cri: Result<Containerd, String>,
    containers: ContainersEnv,
    /// Reason per client that cannot run (missing binaries, dockerd did not start).
    unavailable: BTreeMap<&'static str, String>,
    /// How often dockerd was (re)started, and for how long in total.
    dockerd_starts: (usize, Duration),
}

impl Rig {
    fn hosts_dir(&self) -> PathBuf {
        self.ws.under_root("etc/containerd/certs.d")
    }

    fn start_dockerd(&mut self) -> Result<(), String> {
        if let Ok(d) = &mut self.dockerd {
            d.stop();
        }
        let t = Instant::now();
        let (root, aux) = (self.ws.root(), self.ws.aux("dockerd"));
        self.dockerd = attempt(|| Dockerd::try_start(&root, &aux))
            .map_err(|e| format!("dockerd did not start: {e}"));
        self.dockerd_starts.0 += 1;
        self.dockerd_starts.1 += t.elapsed();
        self.dockerd.as_ref().map(|_| ()).map_err(|e| e.clone())
    }

    fn dockerd(&self) -> Result<&Dockerd, String> {
        self.dockerd.as_ref().map_err(|e| e.clone())
    }

    fn ctrd(&self) -> Result<&Containerd, String> {
        self.ctrd.as_ref().map_err(|e| e.clone())
    }

    fn cri(&self) -> Result<&Containerd, String> {
        self.cri.as_ref().map_err(|e| e.clone())
    }

    /// (Re)start the CRI containerd from `<root>/etc/containerd/config.toml`.
    fn start_cri(&mut self) -> Result<(), String> {
        self.cri = Err("restarting".into());
        let (root, dir) = (self.ws.root(), self.ws.aux("cri"));
        self.cri = attempt(|| Ok(Containerd::start_from_root(&root, &dir)))
            .map_err(|e| format!("the CRI containerd did not start: {e}"));
        self.cri.as_ref().map(|_| ()).map_err(|e| e.clone())
    }

    /// `ctr -n k8s.io` against the CRI containerd (kubelet's images live in that namespace).
    fn cri_ctr(&self) -> Result<std::process::Command, String> {
        let mut c = self.cri()?.ctr();
        c.args(["-n", "k8s.io"]);
        Ok(c)
    }

    /// Remove the client's local copies of every probe variant (they share blobs), so the next
    /// pull is real: manifest and blobs from the registry.
    fn forget(&self, client: Client) -> Result<(), String> {
        let refs: Vec<String> = VARIANTS
            .iter()
            .map(|(_, tag)| format!("{PROBE}:{tag}"))
            .collect();
        match client {
            Client::Dockerd => {
                let mut c = self.dockerd()?.docker();
                c.args(["rmi", "--force"]).args(&refs);
                run_timeout(&mut c, Duration::from_secs(60));
            }
            Client::Buildkit => {
                let d = self.dockerd()?;
                d.rmi("local/matrix-build:1");
                let mut c = d.docker();
                c.args(["builder", "prune", "--all", "--force"]);
                run_timeout(&mut c, Duration::from_secs(60));
            }
            Client::Ctr => {
                let mut c = self.ctrd()?.ctr();
                c.args(["images", "rm", "--sync"]).args(&refs);
                run_timeout(&mut c, Duration::from_secs(60));
            }
            Client::Cri => {
                let mut c = self.cri_ctr()?;
                c.args(["images", "rm", "--sync"]).args(&refs);
                run_timeout(&mut c, Duration::from_secs(60));
            }
            Client::Podman => {
                let mut c = self.containers.podman();
                c.args(["rmi", "--force"]).args(&refs);
                run_timeout(&mut c, Duration::from_secs(60));
            }
            // Every skopeo pull copies into a new dir, and its blob-info cache lives on a tmpfs
            // that is gone after each command.
            Client::Skopeo => {}
        }
        Ok(())
    }

    /// Pull `tag` of the probe with `client` (after removing its local copy).
    fn pull(&self, client: Client, tag: &str) -> Result<Out, String> {
        let reference = format!("{PROBE}:{tag}");
        self.forget(client)?;
        Ok(match client {
            Client::Dockerd => self.dockerd()?.pull(&reference, &[]),
            Client::Buildkit => {
                let ctx = write_from_dockerfile(&self.ws.aux(&format!("build-{tag}")), &reference);
                self.dockerd()?.build(&ctx, "local/matrix-build:1")
            }
            Client::Ctr => {
                let extra: &[&str] = if tag == "multi" {
                    &["--all-platforms"]
                } else {
                    &[]
                };
                self.ctrd()?.pull(&self.hosts_dir(), &reference, extra)
            }
            Client::Cri => {
                // CRI PullImage, kubelet's call (the built-in client, `cri` feature).
                use std::os::unix::process::ExitStatusExt;
                let r = mirrorctl::verify::cri::pull(
                    &self.cri()?.socket,
                    &reference,
                    Duration::from_secs(120),
                );
                let (code, text) = match r {
                    Ok(image_ref) => (0, image_ref),
                    Err(e) => (
                        1,
                        format!("{e}\ncontainerd log: {}", self.cri()?.daemon.stderr()),
                    ),
                };
                Out {
                    cmdline: format!("CRI PullImage {reference}"),
                    status: std::process::ExitStatus::from_raw(code << 8),
                    stdout: text,
                    stderr: String::new(),
                }
            }
            Client::Podman => self.containers.podman_pull(&reference, &[]),
            Client::Skopeo => {
                // Into a dir of our own, to read what arrived.
                let dest = self.skopeo_dest(tag);
                let _ = std::fs::remove_dir_all(&dest);
                let mut c = self.containers.skopeo();
                c.args(["copy", "--quiet"])
                    .arg(format!("docker://{reference}"))
                    .arg(format!("dir:{}", dest.display()));
                run_timeout(&mut c, Duration::from_secs(120))
            }
        })
    }

    fn skopeo_dest(&self, tag: &str) -> PathBuf {
        self.containers
            .aux
            .join("tmp")
            .join(format!("matrix-{tag}"))
    }

    /// What the client now holds for `tag`, as text that names its manifest digest(s).
    fn holds(&self, client: Client, tag: &str, pull: &Out) -> Result<String, String> {
        let reference = format!("{PROBE}:{tag}");
        let out = match client {
            Client::Dockerd => self.dockerd()?.repo_digests(&reference),
            Client::Ctr => self.ctrd()?.image_ls(&reference),
            Client::Cri => {
                let mut c = self.cri_ctr()?;
                c.args(["images", "ls"]).arg(format!("name=={reference}"));
                run_timeout(&mut c, Duration::from_secs(60))
            }
            Client::Podman => {
                let mut c = self.containers.podman();
                c.args(["image", "inspect", "--format", "{{json .RepoDigests}}"])
                    .arg(&reference);
                run_timeout(&mut c, Duration::from_secs(60))
            }
            // The build log names the digest BuildKit resolved (`FROM …@sha256:…`).
            Client::Buildkit => return Ok(pull.combined()),
            Client::Skopeo => {
                let m = std::fs::read(self.skopeo_dest(tag).join("manifest.json"))
                    .map_err(|e| format!("skopeo wrote no manifest.json: {e}"))?;
                return Ok(sha256(&m));
            }
        };
        if !out.ok() {
            return Err(format!(
                "cannot inspect the pulled image: {}",
                tail(&out, 3)
            ));
        }
        Ok(out.stdout)
    }

    /// `mirrorctl verify --mirror <url> --image <probe> --client <client> --json`, with the
    /// client reachable as the cell's pulls reach it; `Ok` only for `ok: true` and the client's
    /// own `ok: true`.
    fn verify(&self, client: Client, url: &str) -> StepResult {
        let name = client.verify_name();
        // As a user runs it: verify itself runs podman/skopeo in a private mount namespace that
        // sees `<root>/etc/containers` when --root is not `/`.
        let env = |c: &mut std::process::Command| {
            if let Ok(d) = &self.dockerd {
                // With the docker CLI the harness uses (Debian's 20.10: a newer one without the
                // buildx plugin cannot run `DOCKER_BUILDKIT=1 docker build`) first on PATH.
                d.client_env(c);
            }
            let sock = match client {
                Client::Cri => self.cri.as_ref().ok(),
                _ => self.ctrd.as_ref().ok(),
            };
            if let Some(ctrd) = sock {
                c.env("CONTAINERD_ADDRESS", &ctrd.socket);
            }
        };
        let out = attempt(|| {
            Ok(common::verify_clients(
                &self.ws,
                url,
                VERIFY_IMAGE,
                &[name],
                env,
            ))
        })?;
        if out.code() == Some(2) && out.stderr.contains("invalid value") {
            return Err(format!(
                "verify --client {name} not available in this build ({})",
                out.stderr.lines().next().unwrap_or("").trim()
            ));
        }
        let doc: serde_json::Value = serde_json::from_str(&out.stdout)
            .map_err(|e| format!("verify printed no JSON ({e}): {}", tail(&out, 6)))?;
        let mine = doc["clients"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name));
        let detail = mine
            .and_then(|c| c["detail"].as_str())
            .unwrap_or("(no client entry)")
            .to_string();
        let client_ok = mine.is_some_and(|c| c["ok"] == true);
        if doc["ok"] == true && client_ok && out.ok() {
            Ok(format!("verify ok: true; {name}: {detail}"))
        } else {
            Err(format!(
                "verify ok: {}, exit {:?}, pull #2 {}, {name} ok: {client_ok}: {detail}",
                doc["ok"],
                out.code(),
                doc["pulls"][1]["cache"],
            ))
        }
    }
}

/// Make `client` see what was just armed or disarmed (`want`: the mirrors `docker info` must
/// list). dockerd: `mirrorctl … --reload` sent it SIGHUP, check `docker info`. dockerd's built-in
/// BuildKit takes `registry-mirrors` only when dockerd starts (20.10: after a SIGHUP `docker
/// info` shows the new mirrors but `docker build` still resolves with the old ones), so dockerd
/// is restarted for it. The others read their files on every pull.
fn load(rig: &mut Rig, client: Client, want: &[String]) -> StepResult {
    let how = match client {
        Client::Dockerd => "after SIGHUP (`--reload`)",
        Client::Buildkit => {
            rig.start_dockerd()?;
            "after a dockerd restart (its BuildKit reads registry-mirrors only at start)"
        }
        Client::Cri => {
            rig.start_cri()?;
            return Ok(
                "; containerd restarted (it reads config.toml's config_path at start)".into(),
            );
        }
        _ => return Ok(String::new()),
    };
    attempt(|| Ok(rig.dockerd()?.wait_mirrors(want, Duration::from_secs(20))))?
        .map_err(|got| format!("{how}, `docker info` lists mirrors {got:?}, not {want:?}"))?;
    Ok(format!("; {how}, `docker info` lists {want:?}"))
}

/// Run every cell of one target (arm, pulls, verify, disarm, pull after disarm) against `mirror`.
fn run_target(
    rig: &mut Rig,
    mirror: Mirror,
    target: &str,
    cells: &mut [Cell],
    digests: &BTreeMap<&str, Vec<String>>,
) {
    let url = mirror.url();
    let active: Vec<usize> = (0..cells.len())
        .filter(|&i| {
            cells[i].mirror == mirror.label()
                && cells[i].client.target() == target
                && cells[i].skip.is_none()
                && !rig.unavailable.contains_key(cells[i].client.name())
        })
        .collect();
    if active.is_empty() {
        return;
    }
    let etc = rig.ws.under_root("etc");
    let before = snapshot(&etc);

    // 1. arm (docker: with --reload, a SIGHUP to dockerd found by its pid file under the root).
    let arm = attempt(|| {
        let mut c = mirrorctl(&rig.ws);
        c.args(["arm", "--mirror", &url, "--target", target]);
        if target == "docker" {
            c.arg("--reload");
        }
        let out = common::run(&mut c);
        if !out.ok() {
            return Err(format!("arm failed: {}", tail(&out, 6)));
        }
        let file = match target {
            "docker" => "etc/docker/daemon.json",
            "containerd" => "etc/containerd/certs.d/docker.io/hosts.toml",
            _ => "etc/containers/registries.conf.d/90-mirrorctl.conf",
        };
        let needle = mirror.needle(target);
        let text = std::fs::read_to_string(rig.ws.under_root(file)).unwrap_or_default();
        if !text.contains(&needle) {
            return Err(format!("{file} does not name {needle}:\n{text}"));
        }
        Ok(format!("{file} names {needle}"))
    });

    // 2. per client: make it load the config, pull the three variants, verify.
    for &i in &active {
        let client = cells[i].client;
        let armed = arm
            .clone()
            .and_then(|a| Ok(format!("{a}{}", load(rig, client, &[format!("{url}/")])?)));
        cells[i].steps.insert("arm", armed);
        for (col, tag) in VARIANTS {
            let mark = mirror.log().log_mark();
            let r = attempt(|| {
                let out = rig.pull(client, tag)?;
                let proof = through_mirror(&out, mirror, mark, client.ua())?;
                let held = rig.holds(client, tag, &out)?;
                let want = &digests[tag];
                match want.iter().find(|d| held.contains(d.as_str())) {
                    Some(d) => Ok(format!("{proof}; got {}", &d[..19])),
                    None => Err(format!(
                        "pulled through the mirror, but the client holds none of the expected \
                         digests {want:?}: {}",
                        held.trim()
                    )),
                }
            });
            cells[i].steps.insert(col, r);
        }
        let r = attempt(|| rig.verify(client, &url));
        cells[i].steps.insert("verify", r);
    }

    // 3. disarm (docker: --reload): files back byte for byte, then the same pull fails.
    let disarm = attempt(|| {
        let mut c = mirrorctl(&rig.ws);
        c.arg("disarm");
        if target == "docker" {
            c.arg("--reload");
        }
        let out = common::run(&mut c);
        if !out.ok() {
            return Err(format!("disarm failed: {}", tail(&out, 6)));
        }
        let after = snapshot(&etc);
        if after != before {
            return Err(format!(
                "files under <root>/etc differ from before arm: {}",
                snapshot_diff(&before, &after)
            ));
        }
        Ok(format!(
            "<root>/etc byte-identical to before arm ({} entries)",
            before.len()
        ))
    });
    for &i in &active {
        let client = cells[i].client;
        let disarmed = disarm
            .clone()
            .and_then(|d| Ok(format!("{d}{}", load(rig, client, &[])?)));
        cells[i].steps.insert("disarm", disarmed);
        let mark = mirror.log().log_mark();
        let r = attempt(|| {
            let out = rig.pull(client, "latest")?;
            not_through_mirror(&out, mirror, mark, client.ua())
        });
        cells[i].steps.insert("after", r);
    }
}

fn render(cells: &[Cell], header: &str) -> String {
    let mut s = format!("{header}\n\n");
    let w = [10, 16];
    s.push_str(&format!(
        "{:<w0$} {:<w1$} {}  result\n",
        "client",
        "mirror",
        STEPS.map(|st| format!("{st:<6}")).join(" "),
        w0 = w[0],
        w1 = w[1]
    ));
    for c in cells {
        let marks: Vec<String> = STEPS
            .iter()
            .map(|st| {
                let m = match (&c.skip, c.steps.get(st)) {
                    (Some(_), _) => "skip",
                    (None, Some(Ok(_))) => "ok",
                    (None, Some(Err(_))) => "FAIL",
                    (None, None) => "-",
                };
                format!("{m:<6}")
            })
            .collect();
        let result = if c.skip.is_some() {
            "SKIP"
        } else if c.failed() {
            "FAIL"
        } else {
            "PASS"
        };
        s.push_str(&format!(
            "{:<w0$} {:<w1$} {}  {result}\n",
            c.client.name(),
            c.mirror,
            marks.join(" "),
            w0 = w[0],
            w1 = w[1]
        ));
    }
    s.push_str(
        "\nsingle/multi/v2s2: pull of probe:latest (OCI manifest), :multi (OCI index), :v2s2 \
         (Docker v2 schema 2) proven by the mirror's access log (user agent); verify: \
         `mirrorctl verify --client <client> --json` ok; disarm: files byte-identical; \
         after: the same pull fails after disarm (Docker Hub unreachable).\n\nDetails:\n",
    );
    for c in cells {
        s.push_str(&format!("* {} × {}", c.client.name(), c.mirror));
        if let Some(r) = &c.skip {
            s.push_str(&format!(": SKIP: {r}\n"));
            continue;
        }
        s.push('\n');
        for st in STEPS {
            match c.steps.get(st) {
                Some(Ok(e)) => s.push_str(&format!("    {st}: ok: {e}\n")),
                Some(Err(e)) => s.push_str(&format!("    {st}: FAILED: {e}\n")),
                None => s.push_str(&format!("    {st}: not run\n")),
            }
        }
    }
    s
}

/// Per tag, the manifest digests a client may end up holding: `latest` its OCI manifest,
/// `multi` the index or one of its platform manifests (skopeo without `--all` keeps only the
/// host's), `v2s2` the Docker v2 schema 2 manifest the upstream holds (skopeo converted it when
/// seeding; checked here to really be one).
fn expected_digests(lab: &Lab, ws: &Workspace) -> BTreeMap<&'static str, Vec<String>> {
    let scratch = ws.aux("skopeo-inspect");
    let (tmp, home) = (scratch.join("tmp"), scratch.join("home"));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let mut c = common::registry::skopeo_cmd(&tmp, &home);
    c.args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "docker://{}/library/probe:v2s2",
            lab.upstream.host()
        ));
    let out = run_timeout(&mut c, Duration::from_secs(60));
    out.assert_ok();
    let raw = out.stdout.as_bytes();
    let v: serde_json::Value = serde_json::from_slice(raw).unwrap();
    assert_eq!(
        v["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "the upstream's :v2s2 is not a Docker v2 schema 2 manifest: {}",
        out.stdout
    );
    let img = &lab.image;
    BTreeMap::from([
        ("latest", vec![img.amd64.manifest.digest.clone()]),
        (
            "multi",
            vec![
                img.index.digest.clone(),
                img.amd64.manifest.digest.clone(),
                img.arm64.manifest.digest.clone(),
            ],
        ),
        ("v2s2", vec![sha256(raw)]),
    ])
}

fn report_path() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("matrix.txt")
}

#[test]
fn every_client_through_every_mirror() {
    let t0 = Instant::now();
    let ci = common::in_ci();
    let mirrors = ["distribution", "mirrorctl serve", S3_LABEL, HARBOR_LABEL];
    let mut cells: Vec<Cell> = mirrors
        .iter()
        .flat_map(|&m| {
            Client::ALL.map(|client| Cell {
                client,
                mirror: m,
                steps: BTreeMap::new(),
                skip: (m == HARBOR_LABEL && client.target() == "docker")
                    .then(|| HARBOR_DOCKERD_SKIP.to_string()),
            })
        })
        .collect();
    let finish = |cells: &[Cell], note: &str| {
        let header = format!(
            "mirrorctl client × mirror matrix (issue 5){note}; wall {:.1}s",
            t0.elapsed().as_secs_f64()
        );
        let table = render(cells, &header);
        let path = report_path();
        let saved = match std::fs::write(&path, &table) {
            Ok(()) => format!("(written to {})", path.display()),
            Err(e) => format!("(could not write {}: {e})", path.display()),
        };
        // Straight to fd 2, not through eprintln!: the test harness captures the macros'
        // output of a passing test, and the table must show without --nocapture.
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), "\n{table}\n{saved}\n");
        let failing: Vec<String> = cells
            .iter()
            .filter(|c| c.failed())
            .map(|c| {
                let steps: Vec<&str> = STEPS
                    .iter()
                    .copied()
                    .filter(|s| !matches!(c.steps.get(s), Some(Ok(_))))
                    .collect();
                format!("{} × {} ({})", c.client.name(), c.mirror, steps.join(", "))
            })
            .collect();
        assert!(
            failing.is_empty(),
            "{} failing matrix cells: {}",
            failing.len(),
            failing.join("; ")
        );
    };

    // What cannot run here at all (the upstream needs docker-registry + skopeo; daemons, root).
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let base_missing: Vec<&str> = ["docker-registry", "skopeo", "unshare"]
        .into_iter()
        .filter(|b| common::which(b).is_none())
        .collect();
    if !root || !base_missing.is_empty() {
        let why = if !root {
            "not running as root (needed for mount namespaces and daemons)".to_string()
        } else {
            format!("missing binaries: {}", base_missing.join(", "))
        };
        assert!(
            !ci,
            "CI=true and {why}: the matrix cannot run (.ci/run installs everything)"
        );
        for c in &mut cells {
            c.skip = Some(why.clone());
        }
        return finish(&cells, " — NOTHING RAN");
    }

    let ws = Workspace::new("matrix");
    // The upstream, the distribution mirror and the probe: without them no cell can run.
    let (lab, digests) = match attempt(|| {
        let lab = Lab::start(&ws);
        let digests = expected_digests(&lab, &ws);
        Ok((lab, digests))
    }) {
        Ok(x) => x,
        Err(e) => {
            for c in &mut cells {
                c.steps
                    .insert("arm", Err(format!("the lab did not start: {e}")));
            }
            return finish(&cells, " — the lab did not start");
        }
    };
    eprintln!(
        "[{:>6.1}s] upstream + distribution mirror up, probe seeded",
        t0.elapsed().as_secs_f64()
    );

    let mut unavailable: BTreeMap<&'static str, String> = BTreeMap::new();
    for client in Client::ALL {
        let missing: Vec<&str> = client
            .bins()
            .iter()
            .copied()
            .filter(|b| common::which(b).is_none())
            .collect();
        if !missing.is_empty() {
            unavailable.insert(
                client.name(),
                format!("missing binaries: {}", missing.join(", ")),
            );
        }
    }
    // The user's files before any arm (what disarm must restore).
    ws.write("etc/docker/daemon.json", USER_DAEMON_JSON);
    ws.write("etc/containers/registries.conf", USER_REGISTRIES_CONF);
    ws.write("etc/containers/policy.json", POLICY_JSON);
    // A node's containerd config (CRI on), which the containerd target arms.
    ws.write(
        "etc/containerd/config.toml",
        &common::containerd::cri_config(&ws.aux("cri")),
    );
    if !mirrorctl::verify::cri::BUILT_IN {
        unavailable.insert(
            "cri",
            "this build has no CRI client (run with `--features cri`)".into(),
        );
    } else if !Path::new("/etc/containerd").is_dir() {
        unavailable.insert(
            "cri",
            "/etc/containerd (the CRI containerd's mount point) is missing".into(),
        );
    }
    let containers = ContainersEnv::new(&ws.root(), &ws.aux("containers"));
    let ctrd = if unavailable.contains_key("ctr") {
        Err("not started".to_string())
    } else {
        let dir = ws.aux("containerd");
        attempt(|| Ok(Containerd::start(&dir)))
            .map_err(|e| format!("containerd did not start: {e}"))
    };
    if let Err(e) = &ctrd {
        unavailable.entry("ctr").or_insert_with(|| e.clone());
    }
    let mut rig = Rig {
        ws,
        dockerd: Err("not started".into()),
        ctrd,
        cri: Err("not started".into()),
        containers,
        unavailable,
        dockerd_starts: (0, Duration::ZERO),
    };
    if !rig.unavailable.contains_key("dockerd") {
        if let Err(e) = rig.start_dockerd() {
            rig.unavailable.insert("dockerd", e.clone());
            rig.unavailable.insert("buildkit", e);
        }
    }
    for c in &mut cells {
        if let Some(why) = rig.unavailable.get(c.client.name()) {
            if ci {
                // In CI a client that cannot run is a failure, never a skip.
                c.steps.insert("arm", Err(format!("CI=true and {why}")));
            } else {
                c.skip = Some(why.clone());
            }
        }
    }
    eprintln!("[{:>6.1}s] clients up", t0.elapsed().as_secs_f64());

    let serve = attempt(|| Ok(Serve::mirror_of(&rig.ws.aux("serve"), &lab.upstream.url())));
    let mut mirror_list = vec![Mirror::Distribution(&lab.mirror)];
    match &serve {
        Ok(s) => mirror_list.push(Mirror::Serve(s)),
        Err(e) => {
            for c in cells.iter_mut().filter(|c| c.mirror == "mirrorctl serve") {
                c.steps
                    .insert("arm", Err(format!("mirrorctl serve did not start: {e}")));
            }
        }
    }
    let s3 = match common::s3::s3s_fs() {
        Some(_) => attempt(|| Ok(S3Mirror::start(&rig.ws.aux("s3"), &lab.upstream.url()))),
        None => Err("missing s3s-fs (.ci/run builds it)".to_string()),
    };
    match &s3 {
        Ok(m) => mirror_list.push(Mirror::S3(m)),
        Err(e) => {
            for c in cells.iter_mut().filter(|c| c.mirror == S3_LABEL) {
                if ci || common::s3::s3s_fs().is_some() {
                    c.steps
                        .insert("arm", Err(format!("the S3 mirror did not start: {e}")));
                } else {
                    c.skip = Some(e.clone());
                }
            }
        }
    }
    let nginx = match common::which("nginx") {
        Some(_) => attempt(|| {
            Ok(Nginx::start_project(
                &rig.ws.aux("nginx-harbor"),
                &lab.mirror.host(),
                HARBOR_PROJECT,
            ))
        }),
        None => Err("missing nginx (nginx-light)".to_string()),
    };
    match &nginx {
        Ok(n) => {
            let m = Mirror::Harbor(n, &lab.mirror);
            let skip = docker_skip_for_project(&rig.ws, &m.url());
            for c in cells
                .iter_mut()
                .filter(|c| c.mirror == HARBOR_LABEL && c.client.target() == "docker")
            {
                match &skip {
                    Ok(why) => c.skip = Some(format!("{HARBOR_DOCKERD_SKIP}; arm: {why}")),
                    Err(e) => {
                        c.skip = None;
                        c.steps.insert("arm", Err(e.clone()));
                    }
                }
            }
            mirror_list.push(m);
        }
        Err(e) => {
            for c in cells
                .iter_mut()
                .filter(|c| c.mirror == HARBOR_LABEL && c.skip.is_none())
            {
                if ci {
                    c.steps
                        .insert("arm", Err(format!("the project proxy did not start: {e}")));
                } else {
                    c.skip = Some(e.clone());
                }
            }
        }
    }
    // `MIRRORCTL_MATRIX_ONLY=<mirror label>`: run one mirror's column (the others SKIP).
    if let Ok(only) = std::env::var("MIRRORCTL_MATRIX_ONLY") {
        mirror_list.retain(|m| m.label() == only);
        for c in cells.iter_mut().filter(|c| c.mirror != only) {
            c.skip = Some(format!("MIRRORCTL_MATRIX_ONLY={only}"));
            c.steps.clear();
        }
    }
    for mirror in mirror_list {
        for target in ["docker", "containerd", "registries"] {
            run_target(&mut rig, mirror, target, &mut cells, &digests);
            eprintln!(
                "[{:>6.1}s] {} × --target {target} done",
                t0.elapsed().as_secs_f64(),
                mirror.label()
            );
        }
    }
    if let Ok(d) = &mut rig.dockerd {
        d.stop();
    }
    rig.cri = Err("stopped".into());
    let note = format!(
        " — dockerd started {}× ({:.1}s)",
        rig.dockerd_starts.0,
        rig.dockerd_starts.1.as_secs_f64()
    );
    // Mirrors and upstream first: the workspace (in `rig`) holds their dirs.
    drop(serve);
    drop(s3);
    drop(nginx);
    drop(lab);
    drop(rig);
    finish(&cells, &note);
}
