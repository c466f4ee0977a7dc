//! `arm`'s preflight against real registries: a dead mirror stops the run before any write
//! (exit 1, the diagnosis and the fix, also as the JSON error document); a live one is armed;
//! a mirror behind htpasswd is refused for dockerd (unless `--allow-auth-mirror`) and armed for
//! the other clients with a note on which credentials they send.

use crate::common::registry::Registry;
use crate::common::{self, json, mirrorctl, run, snapshot, Out, Workspace};

/// `arm <args> --json` with preflight on.
fn arm(ws: &Workspace, args: &[&str]) -> Out {
    let mut c = mirrorctl(ws);
    c.env_remove("MIRRORCTL_NO_PREFLIGHT")
        .env("MIRRORCTL_DOCKERD_VERSION", "20.10")
        .arg("arm")
        .args(args)
        .arg("--json");
    run(&mut c)
}

#[test]
fn a_dead_mirror_stops_arm_before_any_write() {
    let ws = Workspace::new("preflight-dead");
    ws.write("etc/docker/daemon.json", "{\n  \"debug\": true\n}\n");
    let before = snapshot(&ws.root());
    let port = common::free_port();
    let mirror = format!("http://127.0.0.1:{port}");
    let out = arm(&ws, &["--mirror", &mirror, "--target", "docker,containerd"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = json(&out);
    let err = doc["error"].as_str().unwrap();
    assert!(
        err.contains("preflight") && err.contains("refused"),
        "{out}"
    );
    assert!(
        err.contains("start the mirror or fix the port in --mirror"),
        "{out}"
    );
    assert!(
        doc["hint"].as_str().unwrap().contains("--no-preflight"),
        "{out}"
    );
    assert_eq!(snapshot(&ws.root()), before, "a byte was written");
    assert!(!ws.state_dir().join("journal.json").exists());
    // --no-preflight arms it anyway (images built before the mirror runs).
    let out = arm(
        &ws,
        &["--mirror", &mirror, "--target", "docker", "--no-preflight"],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(json(&out).get("preflight").is_none(), "{out}");
}

#[test]
fn live_and_credential_mirrors() {
    if !common::require(&["docker-registry", "skopeo", "unshare"]) {
        return;
    }
    let ws = Workspace::new("preflight-live");
    let lab = common::Lab::start(&ws);
    let out = arm(
        &ws,
        &["--mirror", &lab.mirror.url(), "--target", "docker,buildkit"],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&out);
    assert_eq!(doc["preflight"][0]["status"], 200, "{out}");
    assert_eq!(doc["preflight"][0]["access"], "open", "{out}");
    run(mirrorctl(&ws).args(["disarm"])).assert_ok();

    // A registry behind htpasswd: anonymous pulls get a 401 Basic challenge.
    let locked = Registry::with_htpasswd(&ws.aux("locked"), "alice", "pw");
    let before = snapshot(&ws.root());
    let out = arm(
        &ws,
        &["--mirror", &locked.url(), "--target", "docker,containerd"],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = json(&out);
    let err = doc["error"].as_str().unwrap();
    assert!(
        err.contains("needs credentials") && err.contains("silently pulls from Docker Hub"),
        "{out}"
    );
    assert!(
        doc["hint"]
            .as_str()
            .unwrap()
            .contains("--allow-auth-mirror"),
        "{out}"
    );
    assert_eq!(snapshot(&ws.root()), before, "a byte was written");
    // The other clients can send credentials: armed, each told which ones.
    let out = arm(
        &ws,
        &[
            "--mirror",
            &locked.url(),
            "--target",
            "containerd,registries,k3s",
        ],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&out);
    assert_eq!(doc["preflight"][0]["access"], "needs-credentials", "{out}");
    for (t, says) in [
        ("containerd", "header"),
        ("registries", "podman login"),
        ("k3s", "configs."),
    ] {
        let notes = common::target(&doc, t)["notes"].to_string();
        assert!(
            notes.contains("needs credentials") && notes.contains(says),
            "{t}: {out}"
        );
    }
    // dockerd too when the user says its docker.io credentials are the mirror's.
    let out = arm(
        &ws,
        &[
            "--mirror",
            &locked.url(),
            "--target",
            "docker",
            "--allow-auth-mirror",
        ],
    );
    assert_eq!(out.code(), Some(0), "{out}");
}
