//! The `registries` and `k3s` targets through the real binary. Reloading: CRI-O gets a SIGHUP
//! (proved on a real process named `crio` that dies of it), podman/skopeo need nothing, k3s/rke2
//! need a restart that is printed (never done under a `--root` that is not `/`). Also: relative
//! `--root` and `--state-dir` paths work.

use crate::common::{self, json, mirrorctl_cmd, run, Workspace};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

/// `arm --target registries --mirror http://127.0.0.1:5000 [extra…] --json`, which must succeed.
fn arm_registries(ws: &Workspace, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "arm",
        "--target",
        "registries",
        "--mirror",
        "http://127.0.0.1:5000",
    ];
    args.extend(extra);
    args.push("--json");
    json(ws.run(&args).assert_ok())
}

fn reload_of(doc: &serde_json::Value, target: &str) -> serde_json::Value {
    common::target(doc, target)["reload"].clone()
}

#[test]
fn registries_without_crio_needs_no_reload() {
    let ws = Workspace::new("cli-reg");
    let doc = arm_registries(&ws, &[]);
    let r = reload_of(&doc, "registries");
    assert_eq!(r["needed"], false, "{doc}");
    assert!(
        r["detail"].as_str().unwrap().contains("per command"),
        "{doc}"
    );
}

#[test]
fn registries_sighups_crio_only_with_reload() {
    let ws = Workspace::new("cli-reg");
    let mut crio = common::FakeDaemon::start(&ws.aux("crio"), "crio");
    let pid = crio.pid();
    ws.write("var/run/crio.pid", &format!("{pid}\n"));

    // Without --reload: reported, not done, and the process is untouched.
    let doc = arm_registries(&ws, &[]);
    let r = reload_of(&doc, "registries");
    assert_eq!(
        (r["needed"].clone(), r["done"].clone()),
        (true.into(), false.into()),
        "{doc}"
    );
    assert_eq!(r["action"], format!("SIGHUP crio (pid {pid})"), "{doc}");
    assert!(
        crio.wait_exit(Duration::ZERO).is_none(),
        "crio got a signal"
    );

    // With --reload the pending reload is done: crio (sleep) dies of SIGHUP.
    let doc = arm_registries(&ws, &["--reload"]);
    let r = reload_of(&doc, "registries");
    assert_eq!(r["done"], true, "{doc}");
    let status = crio
        .wait_exit(Duration::from_secs(10))
        .expect("crio not signalled");
    assert_eq!(status.signal(), Some(libc::SIGHUP), "{status:?}");
}

#[test]
fn k3s_restart_is_printed_and_not_done_under_a_private_root() {
    let ws = Workspace::new("cli-reg");
    std::fs::create_dir_all(ws.under_root("etc/rancher/rke2")).unwrap();
    std::fs::create_dir_all(ws.under_root("etc/rancher/k3s")).unwrap();
    let o = ws.run(&[
        "arm",
        "--target",
        "k3s",
        "--mirror",
        "http://127.0.0.1:5000",
    ]);
    assert!(o.ok(), "{o}");
    assert!(
        o.stdout
            .contains("systemctl restart k3s; systemctl restart rke2-server"),
        "{o}"
    );
    let doc = json(
        ws.run(&["disarm", "--target", "k3s", "--reload", "--json"])
            .assert_ok(),
    );
    let r = reload_of(&doc, "k3s");
    assert_eq!(r["done"], false, "{doc}");
    assert!(
        r["detail"].as_str().unwrap().contains("--root is not /"),
        "{doc}"
    );
    assert!(!ws.under_root("etc/rancher/k3s/registries.yaml").exists());
    assert!(!ws.under_root("etc/rancher/rke2/registries.yaml").exists());
}

#[test]
fn relative_root_and_state_dir() {
    let ws = Workspace::new("cli-reg");
    let run_rel = |args: &[&str]| {
        run(mirrorctl_cmd()
            .current_dir(ws.path())
            .args(["--root", "root", "--state-dir", "state", "--color", "never"])
            .args(args))
    };
    let o = run_rel(&[
        "arm",
        "--target",
        "k3s,registries",
        "--mirror",
        "http://127.0.0.1:5000",
    ]);
    assert!(o.ok(), "{o}");
    assert!(ws.under_root("etc/rancher/k3s/registries.yaml").exists());
    assert!(ws.state_dir().join("journal.json").exists());
    let o = run_rel(&["disarm"]);
    assert!(o.ok(), "{o}");
    assert!(!ws.under_root("etc").exists(), "disarm left dirs behind");
}
