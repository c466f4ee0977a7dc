//! kubelet's path to containerd's mirror config: the CRI plugin, which reads certs.d through
//! `config.toml`'s `config_path` (`ctr --hosts-dir` bypasses it). A node's containerd with its
//! CRI plugin on (private mount namespace: the root's `/etc/containerd` is `/etc/containerd`),
//! armed by mirrorctl, restarted; a CRI `PullImage` of the probe goes through the mirror with
//! Docker Hub unreachable, and `verify --client cri` says so. Built with `--features cri`.

use crate::common::containerd::{cri_config, Containerd};
use crate::common::image::PROBE;
use crate::common::proof::UA_CONTAINERD;
use crate::common::{self, json, mirrorctl, run_timeout, AccessLogged, Lab, Workspace};
use std::time::Duration;

#[test]
fn cri_pulls_go_through_the_armed_mirror() {
    if !common::require(&["docker-registry", "skopeo", "containerd", "unshare"]) {
        return;
    }
    if !std::path::Path::new("/etc/containerd").is_dir() {
        assert!(
            !common::in_ci(),
            "CI=true and /etc/containerd (the mount point) is missing"
        );
        eprintln!("SKIP: /etc/containerd is missing");
        return;
    }
    let ws = Workspace::new("cri");
    let lab = Lab::start(&ws);
    let dir = ws.aux("ctrd");
    ws.write("etc/containerd/config.toml", &cri_config(&dir));
    // Not armed: the CRI pull goes to Docker Hub, which the proxy guard makes fail.
    let ctrd = Containerd::start_from_root(&ws.root(), &dir);
    let image = format!("{PROBE}:latest");
    let mark = lab.mirror.log_mark();
    let r = mirrorctl::verify::cri::pull(&ctrd.socket, &image, Duration::from_secs(60));
    assert!(r.is_err(), "unarmed CRI pull succeeded: {r:?}");
    assert!(lab.mirror.requests_since(mark).is_empty());
    drop(ctrd);

    ws.run(&[
        "arm",
        "--target",
        "containerd",
        "--mirror",
        &lab.mirror.url(),
    ])
    .assert_ok();
    // config.toml changed: containerd must restart to read config_path.
    let ctrd = Containerd::start_from_root(&ws.root(), &dir);
    assert!(
        ctrd.daemon
            .stderr()
            .contains("ConfigPath:/etc/containerd/certs.d"),
        "the CRI plugin did not load config_path:\n{}",
        ctrd.daemon.stderr()
    );
    let mark = lab.mirror.log_mark();
    let r = mirrorctl::verify::cri::pull(&ctrd.socket, &image, Duration::from_secs(60));
    let image_ref = r.unwrap_or_else(|e| panic!("{e}\n{}", ctrd.daemon.stderr()));
    assert!(image_ref.starts_with("sha256:"), "{image_ref}");
    common::proof::assert_blob_requests_by(&lab.mirror.requests_since(mark), &[UA_CONTAINERD]);

    // verify --client cri proves the same for users.
    let mut c = mirrorctl(&ws);
    c.env("CONTAINERD_ADDRESS", &ctrd.socket).args([
        "verify",
        "--mirror",
        &lab.mirror.url(),
        "--image",
        &image,
        "--client",
        "cri",
        "--json",
    ]);
    let out = run_timeout(&mut c, Duration::from_secs(300));
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&out);
    assert_eq!(doc["clients"][0]["name"], "cri", "{out}");
    assert_eq!(doc["clients"][0]["ok"], true, "{out}");
}
