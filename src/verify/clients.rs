//! `--client docker|containerd|buildkit|podman|skopeo`: pull the probe with the real client
//! (while the upstream is blocked, when asked) after checking that its configuration names the
//! mirror. A client that would fall back to the upstream fails here, naming the config file to
//! fix.
//!
//! podman and skopeo read `/etc/containers`: under a `--root` other than `/` they run in a
//! private mount namespace (`unshare`, root only) that sees `<root>/etc/containers` there, with
//! private storage and tmpfs on `/run` and `/var/lib`, so nothing outside a temp dir is written.

use super::report::ClientReport;
use crate::fsutil::Root;
use crate::host::{self, dockerd};
use crate::oci::Reference;
use crate::targets::containerd::hosts::norm_host;
use crate::targets::{self, dockerd_version};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientName {
    /// dockerd via the docker CLI (`DOCKER_HOST`, else `<root>/var/run/docker.sock` under a --root)
    Docker,
    /// containerd via `ctr content fetch --hosts-dir <root>/etc/containerd/certs.d` (`CONTAINERD_ADDRESS`)
    Containerd,
    /// dockerd's built-in BuildKit: `DOCKER_BUILDKIT=1 docker build --pull` of `FROM <image>`
    Buildkit,
    /// `podman pull` with registries.conf and its drop-ins in effect
    Podman,
    /// `skopeo copy docker://<image> dir:<tmp>` with registries.conf and its drop-ins in effect
    Skopeo,
    /// containerd's CRI image service (kubelet's path, through config.toml's config_path): `crictl pull`, else the built-in client (`cri` feature)
    Cri,
}

impl ClientName {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientName::Docker => "docker",
            ClientName::Containerd => "containerd",
            ClientName::Buildkit => "buildkit",
            ClientName::Podman => "podman",
            ClientName::Skopeo => "skopeo",
            ClientName::Cri => "cri",
        }
    }
}

/// Run `c` (stdin closed) under `timeout`: whether it succeeded, and its stdout then stderr.
fn output(c: Command, timeout: Duration) -> Result<(bool, String), String> {
    let f = crate::process::run(c, None, timeout).map_err(|e| e.to_string())?;
    Ok((f.status.success(), f.output()))
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// The upstream block as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// No `--block-upstream`.
    No,
    /// Every upstream name resolves to 0.0.0.0/:: for this machine's resolver.
    Held,
    /// The block is there but does not hold for the resolver (why, in words).
    NotForResolver(String),
}

impl Block {
    /// The block as [`super::hosts::assess`] found it in `file`.
    pub fn of(a: &super::hosts::Assessment, file: &str) -> Block {
        match a.unreachable {
            Some(true) => Block::Held,
            Some(false) if !a.proxies.is_empty() => Block::NotForResolver(format!(
                "a proxy from the environment still reaches it ({})",
                a.proxies.join(", ")
            )),
            Some(false) => {
                Block::NotForResolver("an upstream name still resolves elsewhere".into())
            }
            None => Block::NotForResolver(format!(
                "in {file}, which this machine's resolver (and so the client) does not read"
            )),
        }
    }
}

/// One client probe's inputs.
pub struct Probe {
    pub root: Root,
    /// The mirror's base URL.
    pub mirror: String,
    pub image: Reference,
    /// `--platform` as given.
    pub platform: Option<String>,
    /// Whether, and how well, the upstream is blocked for this client.
    pub block: Block,
    pub timeout: Duration,
    /// `mirrorctl` with the user's global options, for the fixes the probe suggests.
    pub cli: String,
}

impl Probe {
    /// Pull the probe with client `name`.
    pub fn run(&self, name: ClientName) -> ClientReport {
        let image = &self.image;
        // One `docker info` serves the docker and buildkit checks below.
        let dockerd = DockerCli::new(&self.root);
        let r = match name {
            ClientName::Docker => docker(&dockerd, self),
            ClientName::Containerd => containerd(self),
            ClientName::Cri => cri(self),
            ClientName::Buildkit => buildkit(&dockerd, self),
            ClientName::Podman | ClientName::Skopeo => containers(name, self),
        };
        let (ok, mut detail) = match r {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        match (&self.block, ok) {
            (Block::No, true) => detail.push_str(
                "; the upstream was not blocked, so a silent fallback to it is not ruled out (add --block-upstream)",
            ),
            (Block::NotForResolver(why), true) => {
                detail.push_str(&format!(
                    "; the upstream was blocked, but {why}, so a silent fallback to it is not ruled out"
                ));
            }
            _ => {}
        }
        if ok
            && self.block == Block::Held
            && matches!(name, ClientName::Docker | ClientName::Buildkit)
        {
            if let Some(p) = dockerd.upstream_proxy(image) {
                detail.push_str(&format!(
                    "; but dockerd itself sends {} requests through the proxy {p} (`docker info`), which the hosts block does not stop, so a fallback through it is not ruled out",
                    image.registry
                ));
            }
        }
        ClientReport {
            name: name.as_str().to_string(),
            ok,
            detail,
        }
    }
}

/// The docker CLI aimed at this root's dockerd (`host::dockerd::endpoint`).
struct DockerCli {
    endpoint: dockerd::Endpoint,
    /// `/info`, asked once.
    info: std::cell::OnceCell<Result<dockerd::Info, String>>,
}

impl DockerCli {
    fn new(root: &Root) -> DockerCli {
        DockerCli {
            endpoint: dockerd::endpoint(root),
            info: std::cell::OnceCell::new(),
        }
    }

    /// dockerd's `/info` (asked once): mirrors, server version, proxies.
    fn info(&self) -> Result<&dockerd::Info, String> {
        self.info
            .get_or_init(|| {
                dockerd::info(&self.endpoint).map_err(|e| format!("`docker info` failed: {e:#}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H").arg(self.endpoint.host_arg());
        c.args(args);
        c
    }

    /// The proxy dockerd (its own environment, shown by `docker info`) would use for the
    /// image's upstream, if any.
    fn upstream_proxy(&self, image: &Reference) -> Option<String> {
        proxy_from_docker_info(self.info().ok()?, &image.registry)
    }

    /// `docker info` lists `mirror` among the registry mirrors (dockerd and its BuildKit use
    /// them for docker.io only).
    fn check_mirror(&self, config: &Path, p: &Probe, target: &str) -> Result<(), String> {
        let (mirror, image) = (p.mirror.as_str(), &p.image);
        if image.registry != crate::oci::DOCKER_HUB {
            return Err(format!(
                "dockerd's registry-mirrors only apply to docker.io, not {}: verify this registry with --client containerd",
                image.registry
            ));
        }
        if let Some(why) = project_path_for_dockerd(mirror) {
            return Err(why);
        }
        let mirrors = self.info()?.mirrors();
        let want = mirror.trim_end_matches('/');
        if !mirrors.iter().any(|m| m == want) {
            return Err(format!(
                "dockerd's registry mirrors are {mirrors:?}, without {mirror}: a pull would go to Docker Hub; fix {} (`{} arm --mirror {mirror} --target {target} --reload`)",
                config.display(),
                p.cli
            ));
        }
        Ok(())
    }
}

/// Why dockerd (and its built-in BuildKit) cannot pull through `mirror`, when it has a project
/// path: dockerd puts a mirror's path before `/v2` (moby `PingV2Registry`; `arm` skips the
/// docker target for such a mirror).
fn project_path_for_dockerd(mirror: &str) -> Option<String> {
    let m = crate::mirror::Mirror::parse_with(mirror, crate::mirror::Rules::VERIFY)
        .ok()?
        .0;
    m.path.as_ref()?;
    Some(format!(
        "{m} has a project path, and dockerd (with its built-in BuildKit) puts a mirror's path before /v2 (`{m}/v2/…`) where the registry serves it after (`{}/…`); dockerd before 24.0.8 refuses a mirror path. `arm` skips docker for it: verify this mirror with --client containerd, podman or skopeo",
        m.v2_url()
    ))
}

fn docker(docker: &DockerCli, p: &Probe) -> Result<String, String> {
    let config = p.root.join(targets::DAEMON_JSON);
    docker.check_mirror(&config, p, "docker")?;
    let reference = format!("{}", p.image);
    let mut args = vec!["pull", "--quiet"];
    if let Some(pf) = p.platform.as_deref() {
        args.extend(["--platform", pf]);
    }
    args.push(&reference);
    let (ok, out) = output(docker.cmd(&args), p.timeout * 4)?;
    if !ok {
        return Err(format!(
            "`docker pull {reference}` failed although dockerd lists the mirror ({}): the mirror did not serve it and dockerd fell back to the upstream; check the mirror and {}",
            last_line(&out),
            config.display()
        ));
    }
    Ok(format!(
        "`docker info` lists {} and `docker pull {reference}` succeeded",
        p.mirror
    ))
}

/// dockerd's built-in BuildKit: build `FROM <image>` with `--pull`, so the base image is
/// resolved and fetched through dockerd's registry mirrors.
fn buildkit(docker: &DockerCli, p: &Probe) -> Result<String, String> {
    let (mirror, image, platform, timeout) = (
        p.mirror.as_str(),
        &p.image,
        p.platform.as_deref(),
        p.timeout,
    );
    let config = p.root.join(targets::DAEMON_JSON);
    docker.check_mirror(&config, p, "docker")?;
    let version = docker.info().ok().and_then(|i| i.server_version());
    buildkit_plain_http_entry(&p.root, &config, mirror, version, &p.cli)?;
    let tmp = TempDir::new("buildkit")?;
    let reference = format!("{image}");
    std::fs::write(
        tmp.0.join("Dockerfile"),
        format!("FROM {reference}\nLABEL io.mirrorctl.verify=probe\n"),
    )
    .map_err(|e| format!("cannot write a Dockerfile in {}: {e}", tmp.0.display()))?;
    let tag = format!("mirrorctl-verify-buildkit:{}", std::process::id());
    let ctx = tmp.0.display().to_string();
    let mut args = vec!["build", "--pull", "--no-cache", "-q", "-t", &tag];
    if let Some(pf) = platform {
        args.extend(["--platform", pf]);
    }
    args.push(&ctx);
    let mut c = docker.cmd(&args);
    c.env("DOCKER_BUILDKIT", "1");
    let result = output(c, timeout * 4);
    let _ = output(docker.cmd(&["rmi", "--force", &tag]), timeout);
    let (ok, out) = result?;
    if !ok && out.contains("buildx component is missing") {
        return Err(
            "the docker CLI on PATH (23 or later) builds with BuildKit only through the buildx plugin, which is missing: install it (Debian: docker-buildx) and rerun".into(),
        );
    }
    if !ok && out.contains("registry-1.docker.io") {
        return Err(format!(
            "`docker info` lists {mirror}, but dockerd's built-in BuildKit went to registry-1.docker.io ({}): it reads registry-mirrors only when dockerd starts (a reload is not enough), so restart dockerd (`systemctl restart docker`); for a plain-HTTP mirror, also list it with its scheme (`http://host:port`) in {}'s insecure-registries",
            last_line(&out),
            config.display()
        ));
    }
    if !ok {
        return Err(format!(
            "`DOCKER_BUILDKIT=1 docker build --pull` FROM {reference} failed although dockerd lists the mirror ({}): BuildKit did not get the base image through the mirror; check the mirror and {}",
            last_line(&out),
            config.display()
        ));
    }
    Ok(format!(
        "`docker info` lists {mirror} and BuildKit built FROM {reference} with --pull"
    ))
}

/// dockerd before 25 hands its built-in BuildKit a registry table built from
/// `insecure-registries` in which only an entry that parses as a URL with scheme `http` makes a
/// host plain HTTP (`10.0.0.5:5000` does not parse, `mirror.lan:5000` parses as scheme
/// `mirror.lan`). Without `http://host:port` there, `docker build` tries HTTPS on a plain-HTTP
/// mirror, fails and pulls from Docker Hub. Loopback mirrors are always plain HTTP to it.
fn buildkit_plain_http_entry(
    root: &Root,
    config: &Path,
    mirror: &str,
    version: Option<(u32, u32)>,
    cli: &str,
) -> Result<(), String> {
    let Ok(m) = crate::mirror::Mirror::parse(mirror) else {
        return Ok(());
    };
    let bare = m.host.as_str();
    let loopback = bare == "localhost"
        || bare
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !m.is_http()
        || loopback
        || version.is_some_and(|(major, _)| major >= dockerd_version::BUILDKIT_LIVE_MIRRORS_SINCE)
    {
        return Ok(());
    }
    let text = std::fs::read_to_string(config).unwrap_or_default();
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text.trim_start_matches('\u{feff}'))
    else {
        return Ok(());
    };
    let mut listed: Vec<String> = doc
        .get("insecure-registries")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    // dockerd may have them as flags instead (it refuses both at once).
    if let Some(pid) = dockerd::pid(root) {
        listed.extend(dockerd::insecure_registry_flags(pid));
    }
    let want = m.url();
    if listed
        .iter()
        .any(|e| e.trim().trim_end_matches('/').eq_ignore_ascii_case(&want))
    {
        return Ok(());
    }
    let which = match version {
        Some((major, minor)) => format!("dockerd {major}.{minor}'s"),
        None => "dockerd's (before 25)".into(),
    };
    Err(format!(
        "{which} built-in BuildKit speaks plain HTTP to {want} only when {}'s insecure-registries lists it with its scheme, \"{want}\" (it lists {listed:?}); without it `docker build` tries HTTPS, fails and pulls from Docker Hub. Rerun `{cli} arm --mirror {want} --target docker`, then restart dockerd",
        config.display()
    ))
}

/// The proxy `docker info` (`HttpsProxy`, `HttpProxy`, `NoProxy`: dockerd's own environment)
/// shows for `registry`'s upstream.
fn proxy_from_docker_info(info: &dockerd::Info, registry: &str) -> Option<String> {
    let host = crate::oci::upstream_hosts(registry).into_iter().next()?;
    crate::registry::proxy_for(&format!("https://{host}/v2/"), |k| info.proxy_env(k))
        .map(|(p, _)| p)
}

/// A temp dir removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Short names (`mcv-<client>-<pid>-<n>`): podman refuses a run root over 50 characters.
    fn new(what: &str) -> Result<TempDir, String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "mcv-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        Ok(TempDir(d))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// podman or skopeo: registries.conf (and drop-ins) must give the probe's registry a
/// `[[registry.mirror]]` at the mirror, then a real pull.
fn containers(name: ClientName, p: &Probe) -> Result<String, String> {
    let prog = name.as_str();
    let (file, host) = registries_conf_names_mirror(prog, p)?;
    let tmp = TempDir::new(prog)?;
    let reference = p.image.to_string();
    let c = pull_command(name, p, &tmp.0, &reference);
    let (ok, out) = output(c, p.timeout * 4)?;
    if !ok {
        return Err(format!(
            "`{prog}` could not pull {reference} although {} lists the mirror {host} ({}): the mirror did not serve it; check the mirror and {}",
            file.display(),
            last_line(&out),
            file.display()
        ));
    }
    Ok(format!(
        "{} lists mirror {host} for {} and `{prog}` pulled {reference}",
        file.display(),
        p.image.registry
    ))
}

/// The registries.conf table in effect for the image's registry must list the mirror (with
/// `insecure = true` when it is plain HTTP) and no per-user file may override it. Returns the
/// deciding file and the mirror's `host[:port]`.
fn registries_conf_names_mirror(
    prog: &str,
    p: &Probe,
) -> Result<(std::path::PathBuf, String), String> {
    let (root, mirror, image) = (&p.root, p.mirror.as_str(), &p.image);
    let fix = format!("`{} arm --mirror {mirror} --target registries`", p.cli);
    let main = root.join(targets::registries::MAIN_CONF);
    let eff = host::containers::effective(root, &image.registry).map_err(|e| format!("{e:#}"))?;
    let (host, plain_http) = match mirror.split_once("://") {
        Some((scheme, rest)) => (
            rest.trim_end_matches('/').to_ascii_lowercase(),
            scheme == "http",
        ),
        None => (mirror.to_ascii_lowercase(), false),
    };
    let Some(file) = eff.file else {
        return Err(format!(
            "no [[registry]] for {} in {} or its drop-ins: {prog} pulls from the upstream; run {fix}",
            image.registry,
            main.display()
        ));
    };
    let Some((_, insecure)) = eff.mirrors.iter().find(|(l, _)| *l == host) else {
        return Err(format!(
            "{} decides how {prog} pulls {} and lists no mirror {host}: {prog} pulls from the upstream; run {fix}",
            file.display(),
            image.registry
        ));
    };
    if plain_http && !insecure {
        return Err(format!(
            "{} lists mirror {host} without `insecure = true`, but the mirror speaks plain HTTP: {prog} would try HTTPS, fail and fall back to the upstream; run {fix}",
            file.display()
        ));
    }
    if let Some(user) = host::containers::user_override(root) {
        return Err(format!(
            "{} exists, so {prog} ignores {} and its drop-ins for this user; add the mirror there or remove it",
            user.display(),
            main.display()
        ));
    }
    Ok((file, host))
}

/// `podman pull` or `skopeo copy … dir:` of `reference`, storage under `tmp` when not on the
/// real root.
fn pull_command(name: ClientName, p: &Probe, tmp: &Path, reference: &str) -> Command {
    let root = &p.root;
    let mut c = containers_cmd(root, tmp, name.as_str());
    // A tree without a signature policy (a bare --root) gets a permissive one for this pull.
    let policy = (!root.exists("/etc/containers/policy.json")).then(|| {
        let f = tmp.join("policy.json");
        let _ = std::fs::write(&f, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#);
        f
    });
    if name == ClientName::Podman {
        if !root.is_real() {
            for d in ["storage", "run"] {
                let _ = std::fs::create_dir_all(tmp.join(d));
            }
            c.arg("--root")
                .arg(tmp.join("storage"))
                .arg("--runroot")
                .arg(tmp.join("run"))
                .arg("--tmpdir")
                .arg(tmp)
                .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
                .args(["--events-backend", "file"]);
        }
        c.args(["pull", "--quiet"]);
        if let Some(f) = &policy {
            c.arg("--signature-policy").arg(f);
        }
        if let Some(pf) = p.platform.as_deref() {
            c.args(["--platform", pf]);
        }
        c.arg(reference);
        return c;
    }
    if let Some(f) = &policy {
        c.arg("--policy").arg(f);
    }
    c.args(["copy", "--quiet"]);
    if let Some(pf) = p.platform.as_deref() {
        for (flag, part) in ["--override-os", "--override-arch", "--override-variant"]
            .into_iter()
            .zip(pf.split('/'))
        {
            c.args([flag, part]);
        }
    }
    c.arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", tmp.join("copy").display()));
    c
}

/// `prog` reading `<root>/etc/containers` as `/etc/containers`: itself on the real root, else
/// inside a private mount namespace with tmpfs on `/run` and `/var/lib` and a private HOME.
fn containers_cmd(root: &Root, tmp: &Path, prog: &str) -> Command {
    if root.is_real() {
        return Command::new(prog);
    }
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            "set -e; mount -n --bind \"$1\" /etc/containers; mount -n -t tmpfs tmpfs /run; \
             mount -n -t tmpfs tmpfs /var/lib; shift; exec \"$@\"",
        )
        .arg("sh")
        .arg(root.join("/etc/containers"))
        .arg(prog);
    let home = tmp.join("home");
    let _ = std::fs::create_dir_all(&home);
    // Private HOME (no user registries.conf or auth); DOCKER_CONFIG pointing at a dir without
    // config.json makes podman fail.
    c.env("HOME", home)
        .env("TMPDIR", tmp)
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .env_remove("CONTAINERS_STORAGE_CONF")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE");
    c
}

/// `certs.d/<registry>/hosts.toml` under the root must name the mirror: its path.
fn hosts_toml_names_mirror(p: &Probe) -> Result<std::path::PathBuf, String> {
    let (mirror, image, cli) = (p.mirror.as_str(), &p.image, &p.cli);
    let certs = p.root.join(&hosts_dir(&p.root).dir);
    let hosts_toml = certs
        .join(targets::containerd::host_dir_name(&image.registry))
        .join("hosts.toml");
    let fix = format!(
        "run `{cli} arm --mirror {}={mirror} --target containerd`",
        image.registry
    );
    let text = std::fs::read_to_string(&hosts_toml).map_err(|_| {
        format!(
            "{} does not exist: containerd pulls {} from the upstream; {fix}",
            hosts_toml.display(),
            image.registry,
        )
    })?;
    // A mirror with a project is the `…/v2/<project>` key (with override_path).
    let key = crate::mirror::Mirror::parse_with(mirror, crate::mirror::Rules::VERIFY)
        .map(|(m, _)| m.v2_url())
        .unwrap_or_else(|_| mirror.to_string());
    let want = norm_host(&key);
    let names = text
        .parse::<toml_edit::DocumentMut>()
        .ok()
        .map(|doc| {
            doc.get("host")
                .and_then(|h| h.as_table_like())
                .map(|t| t.iter().any(|(k, _)| norm_host(k) == want))
                .unwrap_or(false)
        })
        .unwrap_or(false);
    if !names {
        return Err(format!(
            "{} has no [host.\"{key}\"] entry: containerd pulls {} from the upstream; {fix}",
            hosts_toml.display(),
            image.registry,
        ));
    }
    Ok(hosts_toml)
}

fn containerd(p: &Probe) -> Result<String, String> {
    let (root, mirror, image) = (&p.root, p.mirror.as_str(), &p.image);
    let hosts_toml = hosts_toml_names_mirror(p)?;
    let hd = hosts_dir(root);
    let certs = root.join(&hd.dir);
    let config = root.join(targets::CONTAINERD_CONFIG);
    let cfg_note = match std::fs::read_to_string(&config) {
        Ok(_) if hd.config_path_set || hd.cri_disabled => String::new(),
        Ok(_) => format!(
            "; but {} has no CRI registry config_path covering {} (kubelet/CRI pulls will not use the mirror)",
            config.display(),
            certs.display()
        ),
        Err(_) => format!("; {} not found", config.display()),
    };
    let reference = format!("{image}");
    let mut c = Command::new("ctr");
    c.arg("--address").arg(host::containerd::address(root));
    c.args(["content", "fetch", "--hosts-dir"]).arg(&certs);
    if let Some(pf) = p.platform.as_deref() {
        c.args(["--platform", pf]);
    }
    c.arg(&reference);
    let (ok, out) = output(c, p.timeout * 4)?;
    if !ok {
        return Err(format!(
            "`ctr content fetch {reference}` with --hosts-dir {} failed: {}; check the mirror and {}",
            certs.display(),
            last_line(&out),
            hosts_toml.display()
        ));
    }
    Ok(format!(
        "{} names {mirror} and `ctr content fetch {reference}` succeeded{cfg_note}",
        hosts_toml.display()
    ))
}

/// kubelet's path: the CRI image service of the running containerd, which reads certs.d
/// through config.toml's `config_path` (unlike `ctr --hosts-dir`). `crictl` when it is on
/// PATH (as on Kubernetes nodes), else the built-in client (`cri` feature).
fn cri(p: &Probe) -> Result<String, String> {
    let (root, mirror, image) = (&p.root, p.mirror.as_str(), &p.image);
    let hosts_toml = hosts_toml_names_mirror(p)?;
    let hd = hosts_dir(root);
    let certs = root.join(&hd.dir);
    let config = root.join(targets::CONTAINERD_CONFIG);
    if hd.cri_disabled {
        return Err(format!(
            "{}'s `disabled_plugins` turns containerd's CRI plugin off: nothing pulls through CRI on this node",
            config.display()
        ));
    }
    if !hd.config_path_set {
        return Err(format!(
            "{} has no CRI registry config_path covering {}: kubelet's pulls (CRI) do not read {}; run `{} arm --mirror {mirror} --target containerd` and restart containerd",
            config.display(),
            certs.display(),
            hosts_toml.display(),
            p.cli
        ));
    }
    let socket = host::containerd::address(root);
    let reference = image.to_string();
    let (how, result) = if crate::host::which("crictl").is_some() {
        let mut c = Command::new("crictl");
        let ep = format!("unix://{}", socket.display());
        c.args([
            "--runtime-endpoint",
            &ep,
            "--image-endpoint",
            &ep,
            "pull",
            &reference,
        ]);
        let r = output(c, p.timeout * 4).and_then(|(ok, out)| {
            if ok {
                Ok(out)
            } else {
                Err(last_line(&out).to_string())
            }
        });
        ("`crictl pull`", r)
    } else {
        (
            "CRI PullImage",
            super::cri::pull(&socket, &reference, p.timeout * 4),
        )
    };
    match result {
        Ok(_) => Ok(format!(
            "{} covers {} (it names {mirror}) and {how} of {reference} through containerd's CRI succeeded",
            config.display(),
            hosts_toml.display()
        )),
        Err(e) => Err(format!(
            "{how} of {reference} through containerd's CRI (socket {}) failed: {e}; check the mirror, {} and that containerd was restarted after config.toml changed",
            socket.display(),
            hosts_toml.display()
        )),
    }
}

/// Whether config.toml's CRI `config_path` (v2 or v3 plugin) lists `certs` (as a system path
/// or the path under `root`).
/// Where containerd reads hosts.toml on this root, as its config.toml says.
struct HostsDir {
    /// The system path (the first `config_path` directory, else the default certs.d).
    dir: String,
    /// config.toml's CRI registry `config_path` is set (CRI pulls read hosts.toml).
    config_path_set: bool,
    cri_disabled: bool,
}

fn hosts_dir(root: &crate::fsutil::Root) -> HostsDir {
    let text = root
        .resolve(targets::CONTAINERD_CONFIG)
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let facts = text.and_then(|t| targets::containerd::legacy::Facts::read(&t, false).ok());
    let first = facts.as_ref().and_then(|f| {
        f.config_dirs()
            .first()
            .map(|d| d.trim_end_matches('/').to_string())
    });
    HostsDir {
        config_path_set: first.is_some(),
        dir: first.unwrap_or_else(|| targets::CONTAINERD_CERTS_D.to_string()),
        cri_disabled: facts.is_some_and(|f| f.cri_disabled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerd_cannot_use_a_project_mirror() {
        let why = project_path_for_dockerd("https://harbor.example/v2/dh").unwrap();
        assert!(
            why.contains("before /v2") && why.contains("--client containerd"),
            "{why}"
        );
        assert_eq!(project_path_for_dockerd("http://127.0.0.1:5000/v2/"), None);
        assert_eq!(project_path_for_dockerd("https://m"), None);
    }

    #[test]
    fn dockerd_proxy_from_docker_info() {
        let info = dockerd::Info(
            serde_json::json!({"HttpsProxy": "http://p:3128", "HttpProxy": "", "NoProxy": "localhost,10.0.0.0"}),
        );
        assert_eq!(
            proxy_from_docker_info(&info, "docker.io").as_deref(),
            Some("http://p:3128")
        );
        let info = dockerd::Info(
            serde_json::json!({"HttpsProxy": "http://p:3128", "NoProxy": ".docker.io"}),
        );
        assert_eq!(proxy_from_docker_info(&info, "docker.io"), None);
        let info = dockerd::Info(serde_json::json!({"HttpsProxy": "", "HttpProxy": "http://p:1"}));
        assert_eq!(proxy_from_docker_info(&info, "docker.io"), None);
    }

    #[test]
    fn plain_http_entry_needed_only_for_a_non_loopback_http_mirror_before_25() {
        let d = tempfile::tempdir().unwrap();
        let conf = d.path().join("daemon.json");
        std::fs::write(&conf, r#"{"insecure-registries": ["10.0.0.5:5000"]}"#).unwrap();
        let root = &Root::new(d.path());
        let cli = "mirrorctl --root /r";
        let e = buildkit_plain_http_entry(root, &conf, "http://10.0.0.5:5000", Some((20, 10)), cli)
            .unwrap_err();
        assert!(e.contains("\"http://10.0.0.5:5000\""), "{e}");
        assert!(e.contains("dockerd 20.10's"), "{e}");
        assert!(e.contains("`mirrorctl --root /r arm --mirror"), "{e}");
        for ok in [
            ("http://127.0.0.1:5000", Some((20, 10))),
            ("http://localhost:5000", None),
            ("http://[::1]", None),
            ("http://[::1]:5000", None),
            ("https://10.0.0.5:5000", None),
            ("http://10.0.0.5:5000", Some((25, 0))),
        ] {
            assert!(
                buildkit_plain_http_entry(root, &conf, ok.0, ok.1, cli).is_ok(),
                "{ok:?}"
            );
        }
        std::fs::write(
            &conf,
            r#"{"insecure-registries": ["10.0.0.5:5000", "HTTP://10.0.0.5:5000/"]}"#,
        )
        .unwrap();
        assert!(buildkit_plain_http_entry(root, &conf, "http://10.0.0.5:5000", None, cli).is_ok());
    }
}
