//! `arm --verify` with the real dockerd and containerd: a good mirror is armed and proven by
//! each client's pull; a mirror that answers `/v2/` but cannot serve the image (its upstream
//! gone, its cache empty) is rolled back — files byte-identical, dockerd reloaded again and
//! listing no mirror; an `arm --verify` killed between its writes and its verdict is rolled
//! back by the next mirrorctl run.

use crate::common::containerd::Containerd;
use crate::common::dockerd::Dockerd;
use crate::common::registry::Registry;
use crate::common::{
    self, image::PROBE, json, mirrorctl, run_timeout, snapshot, AccessLogged, Lab, Out, Workspace,
};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

const BINS: &[&str] = &[
    "docker-registry",
    "skopeo",
    "containerd",
    "ctr",
    "dockerd",
    "unshare",
];

const DAEMON_JSON: &str = "{\n    \"max-concurrent-downloads\": 3\n}\n";

/// `arm --verify --target docker,containerd --mirror <mirror> --image probe --json`, the
/// clients reachable as their users reach them.
fn arm_verify(ws: &Workspace, dockerd: &Dockerd, ctrd: &Containerd, mirror: &str) -> Command {
    let mut c = mirrorctl(ws);
    dockerd.client_env(&mut c);
    c.env_remove("MIRRORCTL_NO_PREFLIGHT")
        .env("CONTAINERD_ADDRESS", &ctrd.socket)
        .args(["arm", "--verify", "--json", "--target", "docker,containerd"])
        .args(["--mirror", mirror, "--image", &format!("{PROBE}:latest")]);
    c
}

fn arm_and_run(ws: &Workspace, dockerd: &Dockerd, ctrd: &Containerd, mirror: &str) -> Out {
    run_timeout(
        &mut arm_verify(ws, dockerd, ctrd, mirror),
        Duration::from_secs(300),
    )
}

#[test]
fn a_good_mirror_is_proven_and_a_broken_one_rolled_back() {
    if !common::require(BINS) {
        return;
    }
    let ws = Workspace::new("arm-verify");
    let lab = Lab::start(&ws);
    let ctrd = Containerd::start(&ws.aux("containerd"));
    ws.write("etc/docker/daemon.json", DAEMON_JSON);
    ws.write("etc/containerd/config.toml", "version = 2\n");
    let dockerd = Dockerd::start(&ws.root(), &ws.aux("dockerd"));
    let before = snapshot(&ws.under_root("etc"));

    // A mirror whose upstream is gone and whose cache is empty: `/v2/` answers, the image not.
    let mut gone = Registry::upstream(&ws.aux("gone"));
    let broken = Registry::proxy(&ws.aux("broken"), &gone.url());
    gone.daemon.stop();
    let out = arm_and_run(&ws, &dockerd, &ctrd, &broken.url());
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = crate::json_schema::check("run", &out);
    assert_eq!(doc["ok"], false, "{out}");
    let probes = doc["probes"].as_array().unwrap();
    assert!(probes.iter().any(|p| p["ok"] == false), "{out}");
    assert!(doc["rollback"].is_array(), "{out}");
    assert!(
        doc["error"].as_str().unwrap().contains("rolled back"),
        "{out}"
    );
    assert_eq!(
        snapshot(&ws.under_root("etc")),
        before,
        "rollback left changes: {out}"
    );
    assert!(
        dockerd.mirrors().is_empty(),
        "dockerd still lists {:?}",
        dockerd.mirrors()
    );
    assert!(json(&ws.run(&["status", "--json"]))["targets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["armed"] == false));

    // The real mirror: armed, and both clients proven to pull through it.
    let mark = lab.mirror.log_mark();
    let out = arm_and_run(&ws, &dockerd, &ctrd, &lab.mirror.url());
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = crate::json_schema::check("run", &out);
    for t in ["docker", "containerd"] {
        let p = doc["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["target"] == t)
            .unwrap_or_else(|| panic!("no {t} probe: {out}"));
        assert_eq!(p["ok"], true, "{t}: {out}");
    }
    assert!(doc.get("rollback").is_none(), "{out}");
    assert_eq!(dockerd.mirrors(), vec![format!("{}/", lab.mirror.url())]);
    let log = lab.mirror.requests_since(mark);
    for ua in [common::proof::UA_DOCKERD, common::proof::UA_CONTAINERD] {
        assert!(
            log.iter()
                .any(|e| e.user_agent.contains(ua) && e.path.contains("/blobs/")),
            "no blob pulled by {ua}: {}",
            common::registry::lines(&log)
        );
    }
}

/// A "mirror" that answers `/v2/` and never answers anything else; reports each other path.
fn hanging_mirror() -> (String, std::sync::mpsc::Receiver<String>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            if path == "/v2/" {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n{}");
            } else {
                let _ = tx.send(path);
                held.push(s);
            }
        }
    });
    (url, rx)
}

#[test]
fn a_killed_arm_verify_is_rolled_back_by_the_next_run() {
    if !common::require(&["containerd", "ctr"]) {
        return;
    }
    let ws = Workspace::new("arm-verify-kill");
    let ctrd = Containerd::start(&ws.aux("containerd"));
    ws.write("etc/containerd/config.toml", "version = 2\n");
    let before = snapshot(&ws.under_root("etc"));
    let (mirror, seen) = hanging_mirror();
    let mut c = mirrorctl(&ws);
    c.env_remove("MIRRORCTL_NO_PREFLIGHT")
        .env("CONTAINERD_ADDRESS", &ctrd.socket)
        .args([
            "arm",
            "--verify",
            "--target",
            "containerd",
            "--mirror",
            &mirror,
        ])
        .args(["--image", &format!("{PROBE}:latest")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    let mut child = c.spawn().unwrap();
    // ctr is asking the mirror for the image: the files are written, the verdict not given.
    let path = seen
        .recv_timeout(Duration::from_secs(120))
        .expect("ctr never asked the mirror");
    assert!(path.contains("/manifests/"), "{path}");
    assert!(ws
        .under_root("etc/containerd/certs.d/docker.io/hosts.toml")
        .exists());
    // kill -9 of mirrorctl and the ctr it runs (one process group).
    // SAFETY: signalling our own child's group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    child.wait().unwrap();
    // The next run of any command puts the files back first.
    let out = ws.run(&["status", "--json"]);
    assert!(
        out.stderr.contains("rolled back an `arm --verify`"),
        "{out}"
    );
    assert_eq!(snapshot(&ws.under_root("etc")), before, "{out}");
    assert!(
        json(&out)["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["armed"] == false),
        "{out}"
    );
}
