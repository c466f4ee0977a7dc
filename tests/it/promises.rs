//! The README's promises, each checked against the binary: `--root` means every path (the
//! dockerd whose version plans the docker target, containerd's socket, the advice printed),
//! an unconfirmed reload exits 1, `-q` means errors only, a given version runs no dockerd,
//! `serve --listen :0` is loopback, `verify --cleanup` reports what the start-up sweep did.

use crate::common::{self, json, mirrorctl, run, FakeDaemon, Workspace};
use std::process::Stdio;

#[test]
fn the_docker_target_asks_the_roots_dockerd_and_a_given_version_runs_none() {
    let ws = Workspace::new("root-dockerd");
    let marker = ws.path().join("dockerd-was-run");
    common::write_executable(
        &ws.under_root("usr/bin/dockerd"),
        &format!(
            "#!/bin/sh\ntouch {}\necho 'Docker version 28.1.1, build 4eba377'\n",
            marker.display()
        ),
    );
    let arm = |version: Option<&str>| {
        let mut c = mirrorctl(&ws);
        if let Some(v) = version {
            c.env("MIRRORCTL_DOCKERD_VERSION", v);
        }
        c.args(["arm", "--dry-run", "--json", "--target", "docker"])
            .args(["--mirror", "http://127.0.0.1:5001"])
            .args(["--mirror", "ghcr.io=http://127.0.0.1:5002"]);
        run(&mut c)
    };
    // The root's dockerd says 28 (the host's is 20.10): other registries go to certs.d.
    let out = arm(None);
    assert_eq!(out.code(), Some(0), "{out}");
    let text = json(&out).to_string();
    assert!(
        text.contains("/etc/docker/certs.d/ghcr.io/hosts.toml"),
        "{out}"
    );
    assert!(text.contains("dockerd 28.1 (from `"), "{out}");
    assert!(text.contains("usr/bin/dockerd --version`)"), "{out}");
    assert!(marker.exists(), "the root's dockerd was not asked");
    std::fs::remove_file(&marker).unwrap();
    // A version from the environment is labelled as such, and no dockerd runs.
    let out = arm(Some("20.10"));
    assert_eq!(out.code(), Some(0), "{out}");
    let text = json(&out).to_string();
    assert!(
        text.contains("dockerd 20.10 (from MIRRORCTL_DOCKERD_VERSION)"),
        "{out}"
    );
    assert!(!text.contains("certs.d/ghcr.io"), "{out}");
    assert!(
        !marker.exists(),
        "a dockerd ran although the version was given"
    );
}

#[test]
fn an_unconfirmed_dockerd_reload_exits_1_and_says_why() {
    let ws = Workspace::new("unconfirmed");
    // A live process called dockerd whose socket is not under the root.
    let dockerd = FakeDaemon::start(&ws.aux("bin"), "dockerd");
    ws.write("var/run/docker.pid", &dockerd.pid().to_string());
    let mut c = mirrorctl(&ws);
    c.env_remove("DOCKER_HOST")
        .env("MIRRORCTL_DOCKERD_VERSION", "20.10")
        .args(["arm", "--json", "--reload", "--target", "docker"])
        .args(["--mirror", "http://127.0.0.1:5001"]);
    let out = run(&mut c);
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = json(&out);
    assert_eq!(
        (doc["ok"].clone(), doc["exit_code"].clone()),
        (false.into(), 1.into()),
        "{out}"
    );
    let r = &common::target(&doc, "docker")["reload"];
    assert_eq!(r["done"], true, "{out}");
    assert_eq!(r["failed"], true, "{out}");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("not there to confirm"),
        "{out}"
    );
    assert!(
        doc["error"].as_str().unwrap().contains("reload failed"),
        "{out}"
    );
}

#[test]
fn containerd_socket_and_advice_follow_the_root() {
    if !common::require(&["ctr", "docker-registry", "skopeo", "unshare"]) {
        return;
    }
    let ws = Workspace::new("advice");
    let lab = common::Lab::start(&ws);
    // A hosts.toml that names the mirror, and no containerd under the root: ctr must dial
    // the root's socket (never the host's /run/containerd/containerd.sock).
    let mirror = &lab.mirror.url();
    ws.write(
        "etc/containerd/certs.d/docker.io/hosts.toml",
        &format!("server = \"https://registry-1.docker.io\"\n[host.\"{mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"),
    );
    let (ok, detail) = client_probe(&ws, mirror, "containerd");
    assert!(!ok);
    let sock = ws.under_root("run/containerd/containerd.sock");
    assert!(detail.contains(&sock.display().to_string()), "{detail}");
    // Advice for a registry the root's certs.d does not cover names --root and --state-dir.
    std::fs::remove_dir_all(ws.under_root("etc/containerd")).unwrap();
    let (ok, detail) = client_probe(&ws, mirror, "containerd");
    assert!(!ok);
    let want = format!(
        "`mirrorctl --root {} --state-dir {} arm --mirror docker.io={mirror} --target containerd`",
        ws.root().display(),
        ws.state_dir().display()
    );
    assert!(detail.contains(&want), "{detail}\nwanted {want}");
}

/// The `--client` probe's (ok, detail) of a verify of the probe image through `mirror`.
fn client_probe(ws: &Workspace, mirror: &str, client: &str) -> (bool, String) {
    let mut c = mirrorctl(ws);
    c.env_remove("CONTAINERD_ADDRESS").args([
        "verify",
        "--mirror",
        mirror,
        "--image",
        common::image::PROBE,
        "--client",
        client,
        "--json",
    ]);
    let out = run(&mut c);
    let doc = json(&out);
    let c = doc["clients"].get(0).cloned();
    match c {
        Some(c) => (
            c["ok"] == true,
            c["detail"].as_str().unwrap_or("").to_string(),
        ),
        None => panic!("no client probe ran: {out}"),
    }
}

#[test]
fn quiet_means_errors_only() {
    let ws = Workspace::new("quiet");
    let out = ws.run(&[
        "-q",
        "arm",
        "--target",
        "buildkit",
        "--mirror",
        "http://127.0.0.1:5001",
    ]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("", ""),
        "{out}"
    );
    let out = ws.run(&["-q", "status"]);
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("", ""),
        "{out}"
    );
    // A failing verify says only why, in one line on stderr.
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = ws.run(&["-q", "verify", "--mirror", &url]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(out.stdout, "", "{out}");
    assert!(out.stderr.contains("refused"), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
}

#[test]
fn serve_listen_port_alone_is_loopback() {
    let ws = Workspace::new("listen");
    let mut c = mirrorctl(&ws);
    c.args(["serve", "--listen", ":0", "--cache-dir"])
        .arg(ws.aux("cache"))
        .args(["--upstream", "http://127.0.0.1:9"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let addr: std::net::SocketAddr = line
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0);
}

#[test]
fn cleanup_reports_what_the_startup_sweep_removed() {
    let ws = Workspace::new("sweep");
    let original = "127.0.0.1 localhost\n";
    // A block left by a verify killed with -9 (its pid is gone: pid_max is below 2^22).
    let hosts = ws.write(
        "etc/hosts",
        &format!("{original}# BEGIN mirrorctl verify pid=4195000\n0.0.0.0 registry-1.docker.io\n# END mirrorctl verify\n"),
    );
    let out = ws.run(&["verify", "--cleanup", "--json"]);
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&out);
    assert_eq!(doc["removed"], true, "{out}");
    assert!(
        doc["detail"].as_str().unwrap().contains("pid 4195000"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), original);
}

#[test]
fn reload_that_finds_nothing_says_so_and_hosts_toml_needs_none() {
    let ws = Workspace::new("reload-none");
    ws.write("etc/containerd/config.toml", "version = 2\n");
    // No dockerd under the root: `--reload` says so in one line.
    let mut c = mirrorctl(&ws);
    c.env("MIRRORCTL_DOCKERD_VERSION", "20.10").args([
        "arm",
        "--reload",
        "--target",
        "docker",
        "--mirror",
        "http://127.0.0.1:5001",
    ]);
    let out = run(&mut c);
    assert_eq!(out.code(), Some(0), "{out}");
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("dockerd is not running"))
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    // containerd: config.toml waits for a restart, hosts.toml (read per pull) does not.
    let out = ws.run(&[
        "arm",
        "--target",
        "containerd",
        "--mirror",
        "http://127.0.0.1:5001",
    ]);
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&ws.run(&["status", "--json"]));
    let files = common::target(&doc, "containerd")["files"]
        .as_array()
        .unwrap()
        .clone();
    let pending = |suffix: &str| {
        files
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(suffix))
            .map(|f| f["reload_pending"].clone())
    };
    assert_eq!(pending("config.toml"), Some(true.into()), "{doc:#}");
    assert_eq!(pending("hosts.toml"), Some(false.into()), "{doc:#}");
}

#[test]
fn status_probes_each_armed_mirror() {
    let ws = Workspace::new("status-probe");
    // A "mirror" that answers `/v2/` like a registry, and one where nothing listens.
    let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let live_url = format!("http://{}", live.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in live.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        }
    });
    let dead_url = format!("http://127.0.0.1:{}", common::free_port());
    ws.run(&[
        "arm", "--target", "buildkit", "--mirror", &live_url, "--mirror", &dead_url,
    ])
    .assert_ok();
    let out = ws.run(&["status", "--json"]);
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&out);
    let probe = common::target(&doc, "buildkit")["probe"]
        .as_array()
        .unwrap()
        .clone();
    let ok_of = |u: &str| {
        probe
            .iter()
            .find(|p| p["mirror"] == u)
            .map(|p| p["ok"].clone())
    };
    assert_eq!(ok_of(&live_url), Some(true.into()), "{out}");
    assert_eq!(ok_of(&dead_url), Some(false.into()), "{out}");
    let out = ws.run(&["status", "--json", "--no-probe"]);
    assert!(
        common::target(&json(&out), "buildkit")
            .get("probe")
            .is_none(),
        "{out}"
    );
}
