//! CNCF distribution (`docker-registry` 2.8) on loopback as an upstream registry or as a
//! pull-through mirror (`proxy.remoteurl`), with its access log parsed so tests can prove which
//! requests reached it; and [`seed_upstream`], which pushes the probe image with skopeo.

use super::image::{ProbeImage, REPO};
use super::{free_port, guard, run_timeout, Daemon};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One line of distribution's access log (Apache combined format on the registry's stdout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub method: String,
    /// Path without the query, e.g. `/v2/library/probe/manifests/latest`.
    pub path: String,
    /// The query string without `?` (containerd adds `ns=docker.io`), if any.
    pub query: Option<String>,
    pub user_agent: String,
    pub status: u16,
}

impl AccessEntry {
    /// `GET /v2/...?q 200 "ua"` — for messages.
    pub fn line(&self) -> String {
        let q = self
            .query
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        format!(
            "{} {}{} {} \"{}\"",
            self.method, self.path, q, self.status, self.user_agent
        )
    }

    /// A manifest request (by tag or digest) for `repo` (e.g. `library/probe`).
    pub fn is_manifest_of(&self, repo: &str) -> bool {
        self.path.starts_with(&format!("/v2/{repo}/manifests/"))
    }

    /// A blob request for `repo`.
    pub fn is_blob_of(&self, repo: &str) -> bool {
        self.path.starts_with(&format!("/v2/{repo}/blobs/"))
    }
}

/// Render entries one per line, for assertion messages.
pub fn lines(entries: &[AccessEntry]) -> String {
    entries
        .iter()
        .map(|e| format!("  {}\n", e.line()))
        .collect()
}

/// Read one `"…"` field (gorilla/handlers escapes `"` and `\` with a backslash).
fn quoted(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    out.push(n);
                }
            }
            '"' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// Parse one access log line; `None` for anything else.
pub fn parse_access_line(line: &str) -> Option<AccessEntry> {
    // 127.0.0.1 - - [22/Nov/2026:13:52:20 +0000] "GET /v2/x?ns=y HTTP/1.1" 404 91 "" "ua"
    let rest = &line[line.find("] \"")? + 2..];
    let (request, rest) = quoted(rest)?;
    let mut it = rest.trim_start().splitn(3, ' ');
    let status: u16 = it.next()?.parse().ok()?;
    let _size = it.next()?;
    let rest = it.next()?;
    let (_referer, rest) = quoted(rest)?;
    let (user_agent, _) = quoted(rest)?;
    let mut parts = request.split(' ');
    let method = parts.next()?.to_string();
    let uri = parts.next()?;
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (uri.to_string(), None),
    };
    Some(AccessEntry {
        method,
        path,
        query,
        user_agent,
        status,
    })
}

/// Parse a whole access log.
pub fn parse_access_log(text: &str) -> Vec<AccessEntry> {
    text.lines().filter_map(parse_access_line).collect()
}

/// A running `docker-registry serve` on `127.0.0.1:<port>`, stopped on drop.
pub struct Registry {
    pub daemon: Daemon,
    pub port: u16,
    /// Its dir: `config.yml`, logs and (unless a [`Registry::with_config`] config says
    /// otherwise) the storage, `data/`.
    pub dir: PathBuf,
}

impl Registry {
    /// A plain registry (the "upstream"), storage in `<dir>/data`.
    pub fn upstream(dir: &Path) -> Registry {
        Registry::start(dir, "upstream", None)
    }

    /// A plain registry whose every request needs Basic credentials `user`/`pass` (htpasswd),
    /// storage in `<dir>/data`.
    pub fn with_htpasswd(dir: &Path, user: &str, pass: &str) -> Registry {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let htpasswd = dir.join("htpasswd");
        std::fs::write(&htpasswd, super::htpasswd_line(user, pass)).unwrap();
        Registry::with_config(dir, "htpasswd", |port| {
            format!(
                "version: 0.1\nlog:\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: x\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                data.display(),
                htpasswd.display()
            )
        })
    }

    /// A pull-through cache of `remote_url` (e.g. the upstream's [`Registry::url`]).
    pub fn proxy(dir: &Path, remote_url: &str) -> Registry {
        Registry::start(dir, "mirror", Some(remote_url))
    }

    fn start(dir: &Path, name: &str, remote: Option<&str>) -> Registry {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let proxy = remote
            .map(|r| format!("proxy:\n  remoteurl: {r}\n"))
            .unwrap_or_default();
        Registry::with_config(dir, name, |port| {
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: mirrorctl-test-secret\n\
                 health:\n  storagedriver:\n    enabled: false\n{proxy}",
                data.display()
            )
        })
    }

    /// A registry named `registry-<name>` with the `config.yml` that `config` writes for a port
    /// (it must listen on `127.0.0.1:<port>` and keep the access log on); retried on another
    /// port when that one was taken meanwhile.
    pub fn with_config(dir: &Path, name: &str, config: impl Fn(u16) -> String) -> Registry {
        let mut last = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let cfg = dir.join("config.yml");
            std::fs::write(&cfg, config(port)).unwrap();
            let mut cmd = Command::new("docker-registry");
            cmd.arg("serve").arg(&cfg);
            guard(&mut cmd);
            let mut daemon = Daemon::spawn(&format!("registry-{name}"), cmd, dir);
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
        panic!("could not start registry-{name}: {last}");
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Every request logged so far.
    pub fn access_log(&self) -> Vec<AccessEntry> {
        parse_access_log(&self.daemon.stdout())
    }

    /// Does its storage (`<dir>/data`, the filesystem driver's layout) hold blob `digest`
    /// (`sha256:<hex>`)? For a mirror: the blob was fetched and stored.
    pub fn has_blob(&self, digest: &str) -> bool {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
            .is_file()
    }
}

/// Push the probe into `upstream` with skopeo, as `library/probe:latest` (OCI, amd64),
/// `library/probe:multi` (OCI index, `--all`), `library/probe:v2s2` (Docker v2 schema 2,
/// converted by skopeo from `latest`) and `library/probe:big` when the image has one.
/// skopeo runs in a private mount namespace with a tmpfs on `/var/lib` (as root it always
/// writes `/var/lib/containers/cache`), with its own policy and registries.conf, TMPDIR and HOME
/// in `scratch`.
pub fn seed_upstream(upstream: &Registry, image: &ProbeImage, scratch: &Path) {
    let policy = scratch.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let regconf = scratch.join("registries.conf");
    std::fs::write(&regconf, "").unwrap();
    let tmp = scratch.join("tmp");
    let home = scratch.join("home");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let dest = |tag: &str| format!("docker://{}/{REPO}:{tag}", upstream.host());
    let mut copies: Vec<(Vec<&str>, String, String)> = vec![
        (vec![], image.oci_ref("latest"), dest("latest")),
        (vec!["--all"], image.oci_ref("multi"), dest("multi")),
        (
            vec!["--format", "v2s2"],
            image.oci_ref("latest"),
            dest("v2s2"),
        ),
    ];
    if image.big.is_some() {
        copies.push((vec![], image.oci_ref("big"), dest("big")));
    }
    for (extra, src, dst) in copies {
        let mut c = skopeo_cmd(&tmp, &home);
        c.arg("--policy")
            .arg(&policy)
            .arg("--registries-conf")
            .arg(&regconf);
        c.args(["copy", "--quiet", "--dest-tls-verify=false"])
            .args(extra)
            .arg(&src)
            .arg(&dst);
        run_timeout(&mut c, Duration::from_secs(120)).assert_ok();
    }
}

/// `skopeo` inside a private mount namespace with a tmpfs on /var/lib; add skopeo's args.
/// The proxy guard, TMPDIR and HOME are set.
pub fn skopeo_cmd(tmp: &Path, home: &Path) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg("mount -n -t tmpfs tmpfs /var/lib && exec skopeo \"$@\"")
        .arg("skopeo");
    c.env("TMPDIR", tmp)
        .env("HOME", home)
        .env_remove("DOCKER_CONFIG");
    guard(&mut c);
    c
}
