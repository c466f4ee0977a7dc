//! `--client docker|containerd|buildkit|podman|skopeo`: pull the probe with the real client
//! (while the upstream is blocked, when asked) after checking that its configuration names the
//! mirror. A client that would fall back to the upstream fails here, naming the config file to
//! fix.
//!
//! podman and skopeo read `/etc/containers`: under a `--root` other than `/` they run in a
//! private mount namespace (`unshare`, root only) that sees `<root>/etc/containers` there, with
//! private storage and tmpfs on `/run` and `/var/lib`, so nothing outside a temp dir is written.

use super::ClientReport;
use crate::fsutil;
use crate::oci::Reference;
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
}

impl ClientName {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientName::Docker => "docker",
            ClientName::Containerd => "containerd",
            ClientName::Buildkit => "buildkit",
            ClientName::Podman => "podman",
            ClientName::Skopeo => "skopeo",
        }
    }
}

/// Run `c` (stdin closed) under `timeout`: whether it succeeded, and its stdout then stderr.
fn output(c: Command, timeout: Duration) -> Result<(bool, String), String> {
    let f = crate::process::run(c, None, timeout)?;
    Ok((
        f.status.success(),
        format!("{}{}", f.stdout, f.stderr).trim().to_string(),
    ))
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// Run one client probe. `blocked`: the upstream names are blocked in this host's resolver.
pub fn probe(
    name: ClientName,
    root: &Path,
    mirror: &str,
    image: &Reference,
    platform: Option<&str>,
    blocked: bool,
    timeout: Duration,
) -> ClientReport {
    // One `docker info` serves the docker and buildkit checks below.
    let dockerd = DockerCli::new(root);
    let r = match name {
        ClientName::Docker => docker(&dockerd, root, mirror, image, platform, timeout),
        ClientName::Containerd => containerd(root, mirror, image, platform, timeout),
        ClientName::Buildkit => buildkit(&dockerd, root, mirror, image, platform, timeout),
        ClientName::Podman | ClientName::Skopeo => {
            containers(name, root, mirror, image, platform, timeout)
        }
    };
    let (ok, mut detail) = match r {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    if ok && !blocked {
        detail.push_str(
            "; the upstream was not blocked, so a silent fallback to it is not ruled out (add --block-upstream)",
        );
    }
    if ok && blocked && matches!(name, ClientName::Docker | ClientName::Buildkit) {
        if let Some(p) = dockerd.upstream_proxy(image, timeout) {
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

/// The docker CLI aimed at this root's dockerd (`DOCKER_HOST`, else the root's socket under a
/// `--root`).
struct DockerCli {
    host: Option<String>,
    /// `docker info` as JSON, run once.
    info: std::cell::OnceCell<Result<serde_json::Value, String>>,
}

impl DockerCli {
    fn new(root: &Path) -> DockerCli {
        let host = std::env::var("DOCKER_HOST").ok().or_else(|| {
            (root != Path::new("/"))
                .then(|| format!("unix://{}", root.join("var/run/docker.sock").display()))
        });
        DockerCli {
            host,
            info: std::cell::OnceCell::new(),
        }
    }

    /// `docker info --format '{{json .}}'` (run once): mirrors, server version, proxies.
    fn info(&self, timeout: Duration) -> Result<&serde_json::Value, String> {
        self.info
            .get_or_init(|| {
                let (ok, out) = output(self.cmd(&["info", "--format", "{{json .}}"]), timeout)?;
                if !ok {
                    return Err(format!("`docker info` failed: {}", last_line(&out)));
                }
                serde_json::from_str(out.trim())
                    .map_err(|e| format!("`docker info` did not print JSON: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The `major.minor` of the dockerd answering (`docker info`'s `ServerVersion`).
    fn server_version(&self, timeout: Duration) -> Option<(u32, u32)> {
        let info = self.info(timeout).ok()?;
        crate::targets::dockerd_version::parse(info["ServerVersion"].as_str()?)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        if let Some(h) = &self.host {
            c.arg("-H").arg(h);
        }
        c.args(args);
        c
    }

    /// The proxy dockerd (its own environment, shown by `docker info`) would use for the
    /// image's upstream, if any.
    fn upstream_proxy(&self, image: &Reference, timeout: Duration) -> Option<String> {
        proxy_from_docker_info(self.info(timeout).ok()?, &image.registry)
    }

    /// `docker info` lists `mirror` among the registry mirrors (dockerd and its BuildKit use
    /// them for docker.io only).
    fn check_mirror(
        &self,
        config: &Path,
        mirror: &str,
        image: &Reference,
        target: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        if image.registry != crate::oci::DOCKER_HUB {
            return Err(format!(
                "dockerd's registry-mirrors only apply to docker.io, not {}: verify this registry with --client containerd",
                image.registry
            ));
        }
        let info = self.info(timeout)?;
        let mirrors: Vec<String> =
            serde_json::from_value(info["RegistryConfig"]["Mirrors"].clone()).unwrap_or_default();
        let want = mirror.trim_end_matches('/');
        if !mirrors.iter().any(|m| m.trim_end_matches('/') == want) {
            return Err(format!(
                "dockerd's registry mirrors are {mirrors:?}, without {mirror}: a pull would go to Docker Hub; fix {} (`mirrorctl arm --mirror {mirror} --target {target} --reload`)",
                config.display()
            ));
        }
        Ok(())
    }
}

fn docker(
    docker: &DockerCli,
    root: &Path,
    mirror: &str,
    image: &Reference,
    platform: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    let config = fsutil::under_root(root, "/etc/docker/daemon.json");
    docker.check_mirror(&config, mirror, image, "docker", timeout)?;
    let reference = format!("{image}");
    let mut args = vec!["pull", "--quiet"];
    if let Some(p) = platform {
        args.extend(["--platform", p]);
    }
    args.push(&reference);
    let (ok, out) = output(docker.cmd(&args), timeout * 4)?;
    if !ok {
        return Err(format!(
            "`docker pull {reference}` failed although dockerd lists the mirror ({}): the mirror did not serve it and dockerd fell back to the upstream; check the mirror and {}",
            last_line(&out),
            config.display()
        ));
    }
    Ok(format!(
        "`docker info` lists {mirror} and `docker pull {reference}` succeeded"
    ))
}

/// dockerd's built-in BuildKit: build `FROM <image>` with `--pull`, so the base image is
/// resolved and fetched through dockerd's registry mirrors.
fn buildkit(
    docker: &DockerCli,
    root: &Path,
    mirror: &str,
    image: &Reference,
    platform: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    let config = fsutil::under_root(root, "/etc/docker/daemon.json");
    docker.check_mirror(&config, mirror, image, "docker", timeout)?;
    buildkit_plain_http_entry(root, &config, mirror, docker.server_version(timeout))?;
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
    if let Some(p) = platform {
        args.extend(["--platform", p]);
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
    root: &Path,
    config: &Path,
    mirror: &str,
    version: Option<(u32, u32)>,
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
        || version.is_some_and(|(major, _)| major >= crate::reload::BUILDKIT_LIVE_MIRRORS_SINCE)
    {
        return Ok(());
    }
    let text = std::fs::read_to_string(config).unwrap_or_default();
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text.trim_start_matches('\u{feff}'))
    else {
        return Ok(());
    };
    let mut listed: Vec<String> = doc["insecure-registries"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    // dockerd may have them as flags instead (it refuses both at once).
    let pidfile = fsutil::under_root(root, "/var/run/docker.pid");
    if let Some(pid) = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
    {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        listed.extend(insecure_flags(&raw));
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
        "{which} built-in BuildKit speaks plain HTTP to {want} only when {}'s insecure-registries lists it with its scheme, \"{want}\" (it lists {listed:?}); without it `docker build` tries HTTPS, fails and pulls from Docker Hub. Rerun `mirrorctl arm --mirror {want} --target docker`, then restart dockerd",
        config.display()
    ))
}

/// The proxy `docker info` (`HttpsProxy`, `HttpProxy`, `NoProxy`: dockerd's own environment)
/// shows for `registry`'s upstream.
fn proxy_from_docker_info(info: &serde_json::Value, registry: &str) -> Option<String> {
    let field = |k: &str| info[k].as_str().map(String::from);
    let host = crate::oci::upstream_hosts(registry).into_iter().next()?;
    crate::registry::proxy_for(&format!("https://{host}/v2/"), |k| match k {
        "HTTPS_PROXY" => field("HttpsProxy"),
        "HTTP_PROXY" => field("HttpProxy"),
        "NO_PROXY" => field("NoProxy"),
        _ => None,
    })
    .map(|(p, _)| p)
}

/// The values of `--insecure-registry` in a NUL-separated command line.
fn insecure_flags(cmdline: &[u8]) -> Vec<String> {
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix("--insecure-registry=") {
            out.push(v.to_string());
        } else if a == "--insecure-registry" {
            out.extend(it.next().cloned());
        }
    }
    out
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
fn containers(
    name: ClientName,
    root: &Path,
    mirror: &str,
    image: &Reference,
    platform: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    let prog = name.as_str();
    let fix = format!("`mirrorctl arm --mirror {mirror} --target registries`");
    let main = fsutil::under_root(root, crate::targets::registries::MAIN_CONF);
    let eff = crate::targets::registries::effective(root, &image.registry)?;
    let (host, plain_http) = match mirror.split_once("://") {
        Some((scheme, rest)) => (
            rest.trim_end_matches('/').to_ascii_lowercase(),
            scheme == "http",
        ),
        None => (mirror.to_ascii_lowercase(), false),
    };
    let Some(file) = &eff.file else {
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
    if root == Path::new("/") {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        if let Some(user) = home.map(|h| h.join(".config/containers/registries.conf")) {
            if user.exists() {
                return Err(format!(
                    "{} exists, so {prog} ignores {} and its drop-ins for this user; add the mirror there or remove it",
                    user.display(),
                    main.display()
                ));
            }
        }
    }
    let tmp = TempDir::new(prog)?;
    let reference = format!("{image}");
    let mut c = containers_cmd(root, &tmp.0, prog);
    // A tree without a signature policy (a bare --root) gets a permissive one for this pull.
    let policy = (!fsutil::under_root(root, "/etc/containers/policy.json").exists()).then(|| {
        let p = tmp.0.join("policy.json");
        let _ = std::fs::write(&p, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#);
        p
    });
    match name {
        ClientName::Podman => {
            if root != Path::new("/") {
                for d in ["storage", "run"] {
                    let _ = std::fs::create_dir_all(tmp.0.join(d));
                }
                c.arg("--root")
                    .arg(tmp.0.join("storage"))
                    .arg("--runroot")
                    .arg(tmp.0.join("run"))
                    .arg("--tmpdir")
                    .arg(&tmp.0)
                    .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
                    .args(["--events-backend", "file"]);
            }
            c.args(["pull", "--quiet"]);
            if let Some(p) = &policy {
                c.arg("--signature-policy").arg(p);
            }
            if let Some(p) = platform {
                c.args(["--platform", p]);
            }
            c.arg(&reference);
        }
        _ => {
            if let Some(p) = &policy {
                c.arg("--policy").arg(p);
            }
            c.args(["copy", "--quiet"]);
            if let Some(p) = platform {
                let mut parts = p.split('/');
                if let Some(os) = parts.next() {
                    c.args(["--override-os", os]);
                }
                if let Some(arch) = parts.next() {
                    c.args(["--override-arch", arch]);
                }
                if let Some(variant) = parts.next() {
                    c.args(["--override-variant", variant]);
                }
            }
            c.arg(format!("docker://{reference}"))
                .arg(format!("dir:{}", tmp.0.join("copy").display()));
        }
    }
    let (ok, out) = output(c, timeout * 4)?;
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
        image.registry
    ))
}

/// `prog` reading `<root>/etc/containers` as `/etc/containers`: itself on the real root, else
/// inside a private mount namespace with tmpfs on `/run` and `/var/lib` and a private HOME.
fn containers_cmd(root: &Path, tmp: &Path, prog: &str) -> Command {
    if root == Path::new("/") {
        return Command::new(prog);
    }
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            "set -e; mount -n --bind \"$1\" /etc/containers; mount -n -t tmpfs tmpfs /run; \
             mount -n -t tmpfs tmpfs /var/lib; shift; exec \"$@\"",
        )
        .arg("sh")
        .arg(fsutil::under_root(root, "/etc/containers"))
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

fn containerd(
    root: &Path,
    mirror: &str,
    image: &Reference,
    platform: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    let certs = fsutil::under_root(root, "/etc/containerd/certs.d");
    let host_dir = certs.join(crate::targets::containerd::host_dir_name(&image.registry));
    let hosts_toml = host_dir.join("hosts.toml");
    let text = std::fs::read_to_string(&hosts_toml).map_err(|_| {
        format!(
            "{} does not exist: containerd pulls {} from the upstream; run `mirrorctl arm --mirror {}={mirror} --target containerd`",
            hosts_toml.display(),
            image.registry,
            image.registry
        )
    })?;
    let want = mirror.trim_end_matches('/');
    let names = text
        .parse::<toml_edit::DocumentMut>()
        .ok()
        .map(|doc| {
            doc.get("host")
                .and_then(|h| h.as_table_like())
                .map(|t| t.iter().any(|(k, _)| k.trim_end_matches('/') == want))
                .unwrap_or(false)
        })
        .unwrap_or(false);
    if !names {
        return Err(format!(
            "{} has no [host.\"{mirror}\"] entry: containerd pulls {} from the upstream; run `mirrorctl arm --mirror {}={mirror} --target containerd`",
            hosts_toml.display(),
            image.registry,
            image.registry
        ));
    }
    let config = fsutil::under_root(root, "/etc/containerd/config.toml");
    let cfg_note = match std::fs::read_to_string(&config) {
        Ok(c) if config_path_covers(&c, &certs, root) => String::new(),
        Ok(_) => format!(
            "; but {} has no CRI registry config_path covering {} (kubelet/CRI pulls will not use the mirror)",
            config.display(),
            certs.display()
        ),
        Err(_) => format!("; {} not found", config.display()),
    };
    let reference = format!("{image}");
    let mut c = Command::new("ctr");
    if let Ok(a) = std::env::var("CONTAINERD_ADDRESS") {
        c.arg("--address").arg(a);
    }
    c.args(["content", "fetch", "--hosts-dir"]).arg(&certs);
    if let Some(p) = platform {
        c.args(["--platform", p]);
    }
    c.arg(&reference);
    let (ok, out) = output(c, timeout * 4)?;
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

/// Whether config.toml's CRI `config_path` (v2 or v3 plugin) lists `certs` (as a system path
/// or the path under `root`).
fn config_path_covers(text: &str, certs: &Path, root: &Path) -> bool {
    let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
        return false;
    };
    let sys = Path::new("/").join(certs.strip_prefix(root).unwrap_or(certs));
    for plugin in ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images"] {
        let v = doc
            .get("plugins")
            .and_then(|p| p.get(plugin))
            .and_then(|p| p.get("registry"))
            .and_then(|r| r.get("config_path"))
            .and_then(|c| c.as_str());
        if let Some(v) = v {
            if v.split(':')
                .any(|d| Path::new(d) == sys || Path::new(d) == certs)
            {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerd_proxy_from_docker_info() {
        let info = serde_json::json!({"HttpsProxy": "http://p:3128", "HttpProxy": "", "NoProxy": "localhost,10.0.0.0"});
        assert_eq!(
            proxy_from_docker_info(&info, "docker.io").as_deref(),
            Some("http://p:3128")
        );
        let info = serde_json::json!({"HttpsProxy": "http://p:3128", "NoProxy": ".docker.io"});
        assert_eq!(proxy_from_docker_info(&info, "docker.io"), None);
        let info = serde_json::json!({"HttpsProxy": "", "HttpProxy": "http://p:1"});
        assert_eq!(proxy_from_docker_info(&info, "docker.io"), None);
    }

    #[test]
    fn insecure_registry_flags_both_spellings() {
        let raw = b"/usr/bin/dockerd\0--insecure-registry=http://10.0.0.5:5000\0-H\0fd://\0--insecure-registry\0m.lan:5000\0--insecure-registry";
        assert_eq!(
            insecure_flags(raw),
            vec!["http://10.0.0.5:5000".to_string(), "m.lan:5000".to_string()]
        );
        assert!(insecure_flags(b"").is_empty());
    }

    #[test]
    fn plain_http_entry_needed_only_for_a_non_loopback_http_mirror_before_25() {
        let d = tempfile::tempdir().unwrap();
        let conf = d.path().join("daemon.json");
        std::fs::write(&conf, r#"{"insecure-registries": ["10.0.0.5:5000"]}"#).unwrap();
        let root = d.path();
        let e = buildkit_plain_http_entry(root, &conf, "http://10.0.0.5:5000", Some((20, 10)))
            .unwrap_err();
        assert!(e.contains("\"http://10.0.0.5:5000\""), "{e}");
        assert!(e.contains("dockerd 20.10's"), "{e}");
        for ok in [
            ("http://127.0.0.1:5000", Some((20, 10))),
            ("http://localhost:5000", None),
            ("http://[::1]", None),
            ("http://[::1]:5000", None),
            ("https://10.0.0.5:5000", None),
            ("http://10.0.0.5:5000", Some((25, 0))),
        ] {
            assert!(
                buildkit_plain_http_entry(root, &conf, ok.0, ok.1).is_ok(),
                "{ok:?}"
            );
        }
        std::fs::write(
            &conf,
            r#"{"insecure-registries": ["10.0.0.5:5000", "HTTP://10.0.0.5:5000/"]}"#,
        )
        .unwrap();
        assert!(buildkit_plain_http_entry(root, &conf, "http://10.0.0.5:5000", None).is_ok());
    }
}
