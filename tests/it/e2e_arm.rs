//! End to end: `mirrorctl arm` / `disarm` proven with real clients.
//!
//! On loopback: an upstream `docker-registry` seeded with a probe image built by the test, a
//! second `docker-registry` as pull-through mirror of it, a private containerd (+ `ctr`) and a
//! private dockerd 20.10 whose daemon.json, pid file and socket live under mirrorctl's `--root`.
//! Every client has the proxy guard, so Docker Hub is unreachable: a pull succeeds only through
//! the mirror, and the mirror's access log (with the client's user agent) proves it.

use crate::common::containerd::{self, Containerd};
use crate::common::containers::{mirror_table, ContainersEnv};
use crate::common::dockerd::{write_from_dockerfile, Dockerd, USER_DAEMON_JSON};
use crate::common::image::{PROBE, REPO};
use crate::common::proof::{
    assert_not_through_mirror, assert_through_mirror, UA_CONTAINERD, UA_DOCKERD, UA_PODMAN,
    UA_SKOPEO,
};
use crate::common::registry::{lines, Registry};
use crate::common::{self, json, snapshot, write_file, AccessLogged, Lab, Workspace};
use std::path::Path;
use std::time::{Duration, Instant};

const BINS: &[&str] = &[
    "docker-registry",
    "skopeo",
    "containerd",
    "ctr",
    "dockerd",
    "docker",
    "unshare",
    "runc",
];

fn step(t0: Instant, what: &str) {
    eprintln!("[{:>6.2}s] {what}", t0.elapsed().as_secs_f64());
}

/// `mirrorctl status --json` says exactly `armed` are armed, with `mirror` for docker.io.
fn assert_status(ws: &Workspace, armed: &[&str], mirror: &str) {
    let o = ws.run(&["status", "--json"]);
    let v = json(o.assert_ok());
    for t in v["targets"].as_array().expect("targets array") {
        let name = t["target"].as_str().unwrap();
        let want = armed.contains(&name);
        assert_eq!(
            t["armed"],
            serde_json::Value::Bool(want),
            "status of {name}: {o}"
        );
        if want {
            let m = format!("docker.io={mirror}");
            assert!(
                t["mirrors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == &serde_json::Value::String(m.clone())),
                "status of {name} does not list {m}: {o}"
            );
        }
    }
}

/// What dockerd holds for `reference` (its repo digests).
fn docker_repo_digests(d: &Dockerd, reference: &str) -> String {
    let o = d.repo_digests(reference);
    o.assert_ok();
    o.stdout
}

/// What ctr holds for `reference` (its line in `ctr images ls`).
fn ctr_image_line(c: &Containerd, reference: &str) -> String {
    let o = c.image_ls(reference);
    o.assert_ok();
    o.stdout
}

#[test]
fn access_log_parser() {
    let l = r#"127.0.0.1 - - [22/Nov/2026:13:52:20 +0000] "HEAD /v2/library/probe/manifests/latest?ns=docker.io HTTP/1.1" 200 0 "" "docker/20.10.24 UpstreamClient(Docker-Client/28.2.2 \\(linux\\))""#;
    let e = common::registry::parse_access_line(l).unwrap();
    assert_eq!(e.method, "HEAD");
    assert_eq!(e.path, "/v2/library/probe/manifests/latest");
    assert_eq!(e.query.as_deref(), Some("ns=docker.io"));
    assert_eq!(e.status, 200);
    assert_eq!(
        e.user_agent,
        r"docker/20.10.24 UpstreamClient(Docker-Client/28.2.2 \(linux\))"
    );
    assert!(e.is_manifest_of(REPO));
    assert!(common::registry::parse_access_line("time=\"x\" level=info msg=hi").is_none());
}

/// A missing client is a loud skip locally and a failure in CI.
#[test]
fn harness_require_fails_in_ci_and_skips_otherwise() {
    let missing = ["mirrorctl-test-no-such-binary"];
    assert!(!common::require_in(&missing, false));
    let r = std::panic::catch_unwind(|| common::require_in(&missing, true));
    assert!(r.is_err(), "require() did not fail under CI=true");
}

/// The harness's guards stop what they started when a test panics.
#[test]
fn harness_stops_daemons_on_panic() {
    if !common::require(&["docker-registry"]) {
        return;
    }
    let ws = Workspace::new("panic");
    let dir = ws.aux("registry");
    let seen = std::sync::Mutex::new(None);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let reg = Registry::upstream(&dir);
        *seen.lock().unwrap() = Some((reg.daemon.pid(), reg.port));
        panic!("deliberate panic with a registry running");
    }));
    assert!(r.is_err());
    let (pid, port) = seen.lock().unwrap().unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "registry pid {pid} survived the panic"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// Harness self-test with hand-written configs (no mirrorctl): both clients pull through the
/// mirror when configured and fail when not. If this fails, the harness or the machine is at
/// fault, not mirrorctl.
#[test]
fn harness_hand_written_configs_pull_through_mirror() {
    if !common::require(BINS) {
        return;
    }
    let t0 = Instant::now();
    let ws = Workspace::new("harness");
    let lab = Lab::start_with(&ws, Some(4));
    step(t0, "upstream + mirror up, probe seeded");
    let ctrd = Containerd::start(&ws.aux("containerd"));
    let daemon_json = ws.under_root("etc/docker/daemon.json");
    write_file(&daemon_json, "{}\n");
    let mut dockerd = Dockerd::start(&ws.root(), &ws.aux("dockerd"));
    step(t0, "containerd + dockerd up");
    let hosts_dir = ws.under_root("etc/containerd/certs.d");

    // Not configured: both fail, nothing reaches the mirror.
    let mark = lab.mirror.log_mark();
    assert_not_through_mirror(
        &dockerd.pull(&format!("{PROBE}:latest"), &[]),
        &lab.mirror,
        mark,
        UA_DOCKERD,
    );
    assert_not_through_mirror(
        &ctrd.pull(&hosts_dir, &format!("{PROBE}:latest"), &[]),
        &lab.mirror,
        mark,
        UA_CONTAINERD,
    );
    let build_ctx = write_from_dockerfile(&ws.aux("build"), &format!("{PROBE}:latest"));
    let out = dockerd.build(&build_ctx, "local/probe-build:1");
    assert_not_through_mirror(&out, &lab.mirror, mark, UA_CONTAINERD);
    step(t0, "unconfigured pulls fail");

    // Configured by hand.
    write_file(
        &daemon_json,
        &format!("{{\"registry-mirrors\": [\"{}\"]}}\n", lab.mirror.url()),
    );
    containerd::write_hosts_toml(&hosts_dir, &lab.mirror.url());
    dockerd.stop();
    let dockerd = Dockerd::start(&ws.root(), &ws.aux("dockerd"));
    assert_eq!(dockerd.mirrors(), vec![format!("{}/", lab.mirror.url())]);
    let mark = lab.mirror.log_mark();
    let out = dockerd.pull(&format!("{PROBE}:latest"), &[]);
    assert_through_mirror(&out, &lab.mirror, mark, UA_DOCKERD, "latest");
    assert!(docker_repo_digests(&dockerd, &format!("{PROBE}:latest"))
        .contains(&lab.image.amd64.manifest.digest));
    // dockerd's built-in BuildKit (DOCKER_BUILDKIT=1) follows registry-mirrors too; its user
    // agent is its vendored containerd resolver's.
    let mark = lab.mirror.log_mark();
    let out = dockerd.build(&build_ctx, "local/probe-build:1");
    assert_through_mirror(
        &out,
        &lab.mirror,
        mark,
        UA_CONTAINERD,
        "latest (docker build)",
    );
    for (tag, extra) in [
        ("latest", &[][..]),
        ("multi", &["--all-platforms"][..]),
        ("v2s2", &[][..]),
        ("big", &[][..]),
    ] {
        let mark = lab.mirror.log_mark();
        let out = ctrd.pull(&hosts_dir, &format!("{PROBE}:{tag}"), extra);
        assert_through_mirror(&out, &lab.mirror, mark, UA_CONTAINERD, tag);
    }
    assert!(ctr_image_line(&ctrd, &format!("{PROBE}:latest"))
        .contains(&lab.image.amd64.manifest.digest));
    assert!(ctr_image_line(&ctrd, &format!("{PROBE}:multi")).contains(&lab.image.index.digest));
    let big = lab.image.big.as_ref().unwrap();
    assert!(ctr_image_line(&ctrd, &format!("{PROBE}:big")).contains(&big.manifest.digest));
    // The mirror fetched from the upstream (the proxy chain is real).
    assert!(
        lab.upstream
            .access_log()
            .iter()
            .any(|e| e.is_manifest_of(REPO) && e.user_agent.starts_with("Go-http-client")),
        "upstream never saw the mirror:\n{}",
        lines(&lab.upstream.access_log())
    );
    step(t0, "hand-configured pulls go through the mirror");
}

/// Harness self-test for the registries.conf clients (podman, skopeo) with a hand-written
/// drop-in under `<root>/etc/containers/registries.conf.d/`: they fail without it and pull
/// through the mirror with it.
#[test]
fn harness_podman_and_skopeo_read_dropins_under_root() {
    if !common::require(&["docker-registry", "skopeo", "podman", "unshare"]) {
        return;
    }
    let t0 = Instant::now();
    let ws = Workspace::new("containers");
    let lab = Lab::start(&ws);
    let env = ContainersEnv::new(&ws.root(), &ws.aux("containers"));
    let latest = format!("{PROBE}:latest");

    let mark = lab.mirror.log_mark();
    assert_not_through_mirror(&env.podman_pull(&latest, &[]), &lab.mirror, mark, UA_PODMAN);
    assert_not_through_mirror(&env.skopeo_pull(&latest, &[]), &lab.mirror, mark, UA_SKOPEO);
    step(t0, "podman and skopeo fail without a mirror");

    write_file(
        &env.etc.join("registries.conf.d/50-test.conf"),
        &mirror_table(&lab.mirror.host()),
    );
    for tag in ["latest", "multi", "v2s2"] {
        let mark = lab.mirror.log_mark();
        let out = env.podman_pull(&format!("{PROBE}:{tag}"), &[]);
        assert_through_mirror(&out, &lab.mirror, mark, UA_PODMAN, tag);
        let mark = lab.mirror.log_mark();
        let out = env.skopeo_pull(&format!("{PROBE}:{tag}"), &[]);
        assert_through_mirror(&out, &lab.mirror, mark, UA_SKOPEO, tag);
    }
    step(
        t0,
        "podman and skopeo pull :latest :multi :v2s2 through the mirror",
    );
}

/// The issue's acceptance test: arm → real pulls through the mirror → disarm --reload →
/// dockerd forgets the mirror, files byte-identical, pulls fail again; plus a live
/// `arm --reload` / `disarm --reload` round on the running dockerd.
#[test]
fn arm_then_disarm_with_real_dockerd_and_containerd() {
    arm_disarm_cycle(&["docker", "containerd"]);
}

/// Only the docker target: dockerd pulls through the mirror, containerd stays unarmed
/// (its pulls keep failing), disarm restores everything.
#[test]
fn arm_docker_only_leaves_containerd_alone() {
    arm_disarm_cycle(&["docker"]);
}

fn arm_disarm_cycle(targets: &[&str]) {
    if !common::require(BINS) {
        return;
    }
    let docker = targets.contains(&"docker");
    let containerd = targets.contains(&"containerd");
    let target_list = targets.join(",");
    let t0 = Instant::now();
    let ws = Workspace::new(&format!("arm-{}", targets.join("-")));
    let lab = Lab::start(&ws);
    step(t0, "upstream + mirror up, probe seeded");
    let mirror_url = lab.mirror.url();
    let ctrd = Containerd::start(&ws.aux("containerd"));
    let daemon_json = ws.under_root("etc/docker/daemon.json");
    write_file(&daemon_json, USER_DAEMON_JSON);
    let hosts_dir = ws.under_root("etc/containerd/certs.d");
    let before = snapshot(&ws.under_root("etc"));
    let mut dockerd = Dockerd::start(&ws.root(), &ws.aux("dockerd"));
    step(t0, "containerd + dockerd up");

    // Negative control: not armed → both pulls fail and nothing reaches the mirror.
    assert!(dockerd.mirrors().is_empty());
    let latest = format!("{PROBE}:latest");
    let mark = lab.mirror.log_mark();
    assert_not_through_mirror(&dockerd.pull(&latest, &[]), &lab.mirror, mark, UA_DOCKERD);
    assert_not_through_mirror(
        &ctrd.pull(&hosts_dir, &latest, &[]),
        &lab.mirror,
        mark,
        UA_CONTAINERD,
    );
    step(t0, "negative control: unarmed pulls fail");

    // arm (no reload), then dockerd started with the produced daemon.json.
    let arm = ws.run(&["arm", "--mirror", &mirror_url, "--target", &target_list]);
    arm.assert_ok();
    eprintln!("{arm}");
    let armed = snapshot(&ws.under_root("etc"));
    assert_ne!(armed, before, "arm changed no file");
    assert_eq!(
        hosts_dir.join("docker.io/hosts.toml").is_file(),
        containerd,
        "hosts.toml presence wrong for --target {target_list}: {arm}"
    );
    assert_eq!(
        std::fs::read_to_string(&daemon_json).unwrap() != USER_DAEMON_JSON,
        docker,
        "daemon.json changed/unchanged wrongly for --target {target_list}: {arm}"
    );
    assert_status(&ws, targets, &mirror_url);
    step(t0, "armed");
    dockerd.stop();
    let mut dockerd = Dockerd::try_start(&ws.root(), &ws.aux("dockerd")).unwrap_or_else(|e| {
        panic!(
            "dockerd refused the daemon.json arm produced:\n{}\n{e}",
            std::fs::read_to_string(&daemon_json).unwrap()
        )
    });
    step(t0, "dockerd restarted with the armed daemon.json");

    if docker {
        assert_eq!(dockerd.mirrors(), vec![format!("{mirror_url}/")]);
        assert!(
            dockerd.insecure_registries().contains(&lab.mirror.host()),
            "docker info does not list {} as insecure registry",
            lab.mirror.host()
        );
        for (tag, extra) in [
            ("latest", &[][..]),
            ("multi", &[][..]),
            ("multi", &["--platform", "linux/arm64"][..]),
            ("v2s2", &[][..]),
        ] {
            let mark = lab.mirror.log_mark();
            let out = dockerd.pull(&format!("{PROBE}:{tag}"), extra);
            assert_through_mirror(&out, &lab.mirror, mark, UA_DOCKERD, tag);
        }
        assert!(docker_repo_digests(&dockerd, &latest).contains(&lab.image.amd64.manifest.digest));
        // dockerd's built-in BuildKit uses the same registry-mirrors.
        let ctx = write_from_dockerfile(&ws.aux("build"), &format!("{PROBE}:multi"));
        let mark = lab.mirror.log_mark();
        let out = dockerd.build(&ctx, "local/probe-build:1");
        assert_through_mirror(
            &out,
            &lab.mirror,
            mark,
            UA_CONTAINERD,
            "multi (docker build)",
        );
        step(
            t0,
            "docker pulls :latest :multi (amd64, arm64) :v2s2 and BuildKit FROM through the mirror",
        );
    } else {
        assert!(dockerd.mirrors().is_empty());
        let mark = lab.mirror.log_mark();
        assert_not_through_mirror(&dockerd.pull(&latest, &[]), &lab.mirror, mark, UA_DOCKERD);
    }

    if containerd {
        for (tag, extra) in [
            ("latest", &[][..]),
            ("multi", &["--all-platforms"][..]),
            ("v2s2", &[][..]),
        ] {
            let mark = lab.mirror.log_mark();
            let out = ctrd.pull(&hosts_dir, &format!("{PROBE}:{tag}"), extra);
            assert_through_mirror(&out, &lab.mirror, mark, UA_CONTAINERD, tag);
        }
        assert!(ctr_image_line(&ctrd, &latest).contains(&lab.image.amd64.manifest.digest));
        step(
            t0,
            "ctr pulls :latest :multi (all platforms) :v2s2 through the mirror",
        );
    } else {
        let mark = lab.mirror.log_mark();
        let out = ctrd.pull(&hosts_dir, &latest, &[]);
        assert_not_through_mirror(&out, &lab.mirror, mark, UA_CONTAINERD);
    }

    // disarm --reload: files back byte for byte, dockerd forgets the mirror, pulls fail.
    let disarm = ws.run(&["disarm", "--reload"]);
    disarm.assert_ok();
    eprintln!("{disarm}");
    assert_eq!(
        snapshot(&ws.under_root("etc")),
        before,
        "disarm did not restore the files exactly"
    );
    if let Err(got) = dockerd.wait_mirrors(&[], Duration::from_secs(10)) {
        panic!(
            "after disarm --reload, docker info still lists mirrors {got:?}\n{}",
            dockerd.daemon.tail(30)
        );
    }
    assert!(
        dockerd.daemon.alive(),
        "dockerd died on reload\n{}",
        dockerd.daemon.tail(30)
    );
    assert!(!dockerd.insecure_registries().contains(&lab.mirror.host()));
    assert_status(&ws, &[], &mirror_url);
    step(t0, "disarmed: files identical, docker info lists no mirror");
    dockerd.rmi(&latest);
    let mark = lab.mirror.log_mark();
    assert_not_through_mirror(&dockerd.pull(&latest, &[]), &lab.mirror, mark, UA_DOCKERD);
    ctrd.remove(&latest);
    let out = ctrd.pull(&hosts_dir, &latest, &[]);
    assert_not_through_mirror(&out, &lab.mirror, mark, UA_CONTAINERD);
    step(t0, "after disarm pulls fail");

    if docker {
        // Live round on the running dockerd: arm --reload (SIGHUP), pull, disarm --reload.
        let arm = ws.run(&[
            "arm",
            "--mirror",
            &mirror_url,
            "--target",
            &target_list,
            "--reload",
        ]);
        arm.assert_ok();
        if let Err(got) = dockerd.wait_mirrors(&[format!("{mirror_url}/")], Duration::from_secs(10))
        {
            panic!(
                "after arm --reload, docker info lists {got:?}: {arm}\n{}",
                dockerd.daemon.tail(30)
            );
        }
        assert!(dockerd.daemon.alive());
        let mark = lab.mirror.log_mark();
        let out = dockerd.pull(&latest, &[]);
        assert_through_mirror(&out, &lab.mirror, mark, UA_DOCKERD, "latest");
        let disarm = ws.run(&["disarm", "--reload"]);
        disarm.assert_ok();
        if let Err(got) = dockerd.wait_mirrors(&[], Duration::from_secs(10)) {
            panic!("after the second disarm --reload, docker info lists {got:?}: {disarm}");
        }
        assert!(
            dockerd.daemon.alive(),
            "dockerd died on reload\n{}",
            dockerd.daemon.tail(30)
        );
        assert_eq!(snapshot(&ws.under_root("etc")), before);
        step(t0, "live arm --reload / disarm --reload round OK");
    }
    dockerd.stop();
}
