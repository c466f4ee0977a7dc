//! `--client docker|containerd`: pull the probe with the real client (while the upstream is
//! blocked, when asked) after checking that its configuration names the mirror. A client that
//! would fall back to the upstream fails here, naming the config file to fix.

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
}

impl ClientName {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientName::Docker => "docker",
            ClientName::Containerd => "containerd",
        }
    }
}

fn output(mut c: Command, timeout: Duration) -> Result<(bool, String), String> {
    use std::io::Read;
    use std::process::Stdio;
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let prog = c.get_program().to_string_lossy().into_owned();
    let mut child = c.spawn().map_err(|e| format!("cannot run `{prog}`: {e}"))?;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{prog}` did not finish in {}s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for `{prog}`: {e}")),
        }
    };
    let so = t_out.join().unwrap_or_default();
    let se = t_err.join().unwrap_or_default();
    Ok((status.success(), format!("{so}{se}").trim().to_string()))
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
    let r = match name {
        ClientName::Docker => docker(root, mirror, image, platform, timeout),
        ClientName::Containerd => containerd(root, mirror, image, platform, timeout),
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
    ClientReport {
        name: name.as_str().to_string(),
        ok,
        detail,
    }
}

fn docker(
    root: &Path,
    mirror: &str,
    image: &Reference,
    platform: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    let config = fsutil::under_root(root, "/etc/docker/daemon.json");
    if image.registry != crate::oci::DOCKER_HUB {
        return Err(format!(
            "dockerd's registry-mirrors only apply to docker.io, not {}: verify this registry with --client containerd",
            image.registry
        ));
    }
    let host = std::env::var("DOCKER_HOST").ok().or_else(|| {
        (root != Path::new("/"))
            .then(|| format!("unix://{}", root.join("var/run/docker.sock").display()))
    });
    let docker = |args: &[&str]| {
        let mut c = Command::new("docker");
        if let Some(h) = &host {
            c.arg("-H").arg(h);
        }
        c.args(args);
        c
    };
    let (ok, out) = output(
        docker(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"]),
        timeout,
    )?;
    if !ok {
        return Err(format!("`docker info` failed: {}", last_line(&out)));
    }
    let mirrors: Vec<String> = serde_json::from_str(out.trim()).unwrap_or_default();
    let want = mirror.trim_end_matches('/');
    if !mirrors.iter().any(|m| m.trim_end_matches('/') == want) {
        return Err(format!(
            "dockerd's registry mirrors are {mirrors:?}, without {mirror}: a pull would go to Docker Hub; fix {} (`mirrorctl arm --mirror {mirror} --target docker --reload`)",
            config.display()
        ));
    }
    let reference = format!("{image}");
    let mut args = vec!["pull", "--quiet"];
    if let Some(p) = platform {
        args.extend(["--platform", p]);
    }
    args.push(&reference);
    let (ok, out) = output(docker(&args), timeout * 4)?;
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
