//! Legacy containerd configs with the real containerd 1.6: deprecated CRI `registry.mirrors` /
//! `configs.<host>.tls` that `arm --migrate` moves into hosts.toml (refused without it, with the
//! dry-run diff as the hint), a version 1 config.toml (no `version` key) that gets `config_path`
//! where containerd 1.x reads it, and Docker's `containerd.io` config with CRI disabled. Each is
//! checked with `containerd config dump`, a containerd started from the armed root (its CRI plugin
//! loads with `config_path`), and `ctr --hosts-dir` pulls through the migrated endpoints, proven
//! by the mirror's access log.

use crate::common::containerd::{cri_config, Containerd};
use crate::common::image::REPO;
use crate::common::proof::{AccessLogged, UA_CONTAINERD};
use crate::common::registry::lines;
use crate::common::{self, json, run_timeout, snapshot, Lab, Workspace};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// containerd's merged view of `config`, in its current (version 2) form.
fn config_dump(config: &Path) -> String {
    let mut c = Command::new("containerd");
    c.arg("--config").arg(config).args(["config", "dump"]);
    let out = run_timeout(&mut c, Duration::from_secs(30));
    out.assert_ok();
    out.stdout
}

/// Needs the real containerd and a `/etc/containerd` mount point.
fn ready() -> bool {
    if !common::require(&["docker-registry", "skopeo", "containerd", "ctr", "unshare"]) {
        return false;
    }
    if !Path::new("/etc/containerd").is_dir() {
        assert!(
            !common::in_ci(),
            "CI=true and /etc/containerd (the mount point) is missing"
        );
        eprintln!("SKIP: /etc/containerd is missing");
        return false;
    }
    true
}

#[test]
fn deprecated_mirrors_are_migrated_and_containerd_pulls_through_their_endpoints() {
    if !ready() {
        return;
    }
    let ws = Workspace::new("legacy-migrate");
    let lab = Lab::start(&ws);
    let dir = ws.aux("ctrd");
    // A node config of the kind 2022 era: CRI mirrors for quay.io (the lab's mirror) and a
    // TLS setting for a private registry, next to the user's own CRI settings.
    let legacy = format!(
        "{}\n# the old way\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"quay.io\"]\n  endpoint = [\"{}\"]\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"private.example:5000\".tls]\n  insecure_skip_verify = true\n",
        cri_config(&dir),
        lab.mirror.url()
    );
    let config = ws.write("etc/containerd/config.toml", &legacy);
    let before = snapshot(&ws.root().join("etc"));

    // Without --migrate: exit 2, nothing written, the hint is what --migrate would write.
    let out = ws.run(&[
        "arm",
        "--target",
        "containerd",
        "--mirror",
        &lab.mirror.url(),
    ]);
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("--migrate") && out.stderr.contains("quay.io"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("+++ b/etc/containerd/certs.d/quay.io/hosts.toml"),
        "no preview of the migrated hosts.toml:\n{out}"
    );
    assert_eq!(
        snapshot(&ws.root().join("etc")),
        before,
        "a refused arm changed files"
    );

    let out = ws.run(&[
        "arm",
        "--target",
        "containerd",
        "--mirror",
        &lab.mirror.url(),
        "--migrate",
        "--json",
    ]);
    out.assert_ok();
    let doc = json(&out);
    let notes = doc["targets"][0]["notes"].to_string();
    assert!(notes.contains("--migrate"), "{out}");
    let quay = ws.root().join("etc/containerd/certs.d/quay.io/hosts.toml");
    let quay_text = std::fs::read_to_string(&quay).unwrap();
    assert!(
        quay_text.contains(&format!("[host.\"{}\"]", lab.mirror.url())),
        "{quay_text}"
    );
    let private = std::fs::read_to_string(
        ws.root()
            .join("etc/containerd/certs.d/private.example:5000/hosts.toml"),
    )
    .unwrap();
    assert!(private.contains("skip_verify = true"), "{private}");

    // containerd's own reading: config_path set, no deprecated mirror left (the CRI plugin
    // would refuse them together).
    let dump = config_dump(&config);
    assert!(
        dump.contains("config_path = \"/etc/containerd/certs.d\""),
        "{dump}"
    );
    assert!(
        !dump.contains("endpoint = ["),
        "a deprecated mirror is left:\n{dump}"
    );

    // The node's containerd loads its CRI plugin with config_path.
    let ctrd = Containerd::start_from_root(&ws.root(), &dir);
    let log = ctrd.daemon.stderr();
    assert!(log.contains("ConfigPath:/etc/containerd/certs.d"), "{log}");
    assert!(
        !log.contains("failed to load plugin io.containerd.grpc.v1.cri"),
        "{log}"
    );

    // The migrated quay.io endpoint is used: a quay.io pull reaches the mirror.
    let mark = lab.mirror.log_mark();
    let hosts_dir = ws.root().join("etc/containerd/certs.d");
    let out = ctrd.pull(&hosts_dir, &format!("quay.io/{REPO}:latest"), &[]);
    out.assert_ok();
    let seen = lab.mirror.requests_since(mark);
    assert!(
        seen.iter().any(|e| e.is_manifest_of(REPO)
            && e.user_agent.starts_with(UA_CONTAINERD)
            && e.query.as_deref() == Some("ns=quay.io")),
        "quay.io pull did not reach the migrated endpoint:\n{}",
        lines(&seen)
    );
    drop(ctrd);

    // Arming again changes nothing; disarm gives every byte back.
    let again = ws.run(&[
        "arm",
        "--target",
        "containerd",
        "--mirror",
        &lab.mirror.url(),
        "--migrate",
    ]);
    again.assert_ok();
    assert!(
        !again.stdout.contains("changed") || again.stdout.contains("unchanged"),
        "{again}"
    );
    ws.run(&["disarm"]).assert_ok();
    assert_eq!(
        snapshot(&ws.root().join("etc")),
        before,
        "disarm did not restore the tree"
    );
}

/// A version 1 node config (no `version` key, `plugins.cri`, short plugin ids), the kind that
/// kind 2019 and Flatcar shipped.
fn v1_config(dir: &Path) -> String {
    format!(
        r#"root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["aufs", "btrfs", "zfs", "devmapper"]

[grpc]
  address = "{d}/c.sock"

[ttrpc]
  address = "{d}/c.sock.ttrpc"

[debug]
  address = "{d}/debug.sock"

[metrics]
  address = ""

[plugins.opt]
  path = "{d}/opt"

[plugins.cri]
  disable_apparmor = true
  restrict_oom_score_adj = true
  disable_cgroup = true
  [plugins.cri.containerd]
    snapshotter = "native"
  [plugins.cri.cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
"#,
        d = dir.display()
    )
}

#[test]
fn a_version_1_config_gets_config_path_where_containerd_1_x_reads_it() {
    if !ready() {
        return;
    }
    let ws = Workspace::new("legacy-v1");
    let lab = Lab::start(&ws);
    let dir = ws.aux("ctrd");
    let original = v1_config(&dir);
    let config = ws.write("etc/containerd/config.toml", &original);
    ws.run(&[
        "arm",
        "--target",
        "containerd",
        "--mirror",
        &lab.mirror.url(),
    ])
    .assert_ok();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("[plugins.cri.registry]"), "{text}");
    assert!(!text.contains("version"), "{text}");
    let dump = config_dump(&config);
    assert!(
        dump.contains("config_path = \"/etc/containerd/certs.d\""),
        "containerd did not read it:\n{dump}"
    );
    let ctrd = Containerd::start_from_root(&ws.root(), &dir);
    let log = ctrd.daemon.stderr();
    assert!(log.contains("ConfigPath:/etc/containerd/certs.d"), "{log}");
    let mark = lab.mirror.log_mark();
    let out = ctrd.pull(
        &ws.root().join("etc/containerd/certs.d"),
        &format!("docker.io/{REPO}:latest"),
        &[],
    );
    common::proof::assert_through_mirror(&out, &lab.mirror, mark, UA_CONTAINERD, "ctr pull");
    drop(ctrd);
    ws.run(&["disarm"]).assert_ok();
    assert_eq!(std::fs::read_to_string(&config).unwrap(), original);
}

#[test]
fn docker_containerd_package_config_with_cri_disabled_is_left_alone() {
    // Docker's `containerd.io` package ships `disabled_plugins = ["cri"]` (fixtures/real:
    // docker/containerd-packaging): only hosts.toml is written, and nothing needs a restart.
    let ws = Workspace::new("legacy-cri-off");
    let stock = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/real/containerd-config/014-containerd.toml"),
    )
    .unwrap();
    let config = ws.write("etc/containerd/config.toml", &stock);
    let out = ws.run(&[
        "arm",
        "--target",
        "containerd",
        "--mirror",
        "http://127.0.0.1:5001",
        "--no-preflight",
        "--json",
    ]);
    out.assert_ok();
    let doc = json(&out);
    let t = &doc["targets"][0];
    let files: Vec<&str> = t["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        ["/etc/containerd/certs.d/docker.io/hosts.toml"],
        "{out}"
    );
    assert_eq!(t["reload"]["needed"], false, "{out}");
    assert!(
        t["notes"].to_string().contains("CRI plugin is disabled"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), stock);
}

#[test]
fn status_names_configs_that_silently_defeat_the_mirror() {
    let ws = Workspace::new("legacy-status");
    ws.write(
        "etc/containerd/config.toml",
        "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
    );
    ws.write(
        "etc/containerd/certs.d/docker.io/hosts.toml",
        "server = \"https://registry-1.docker.io\"\n[host.\"http://m:5000\"\n",
    );
    ws.write(
        "etc/docker/daemon.json",
        "{\"registry-mirrors\": [\"mirror.example:5000\"]}\n",
    );
    ws.write(
        "root/.config/containers/registries.conf",
        "unqualified-search-registries = [\"docker.io\"]\n",
    );
    ws.write(
        "etc/containers/registries.conf",
        "[[registry]]\nprefix = \"docker.io/library\"\nlocation = \"docker.io/library\"\n",
    );
    ws.write(
        "etc/containers/registries.conf.d/90-mirrorctl.conf",
        "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"127.0.0.1:5001\"\ninsecure = true\n",
    );
    ws.write(
        "etc/rancher/k3s/registries.yaml",
        "mirrors:\n  docker.io:\n    endpoint:\n      - \"mirror.example:5000\"\n      - \"https://harbor.example\"\n    rewrite:\n      \"^(.*)$\": \"proxy/$1\"\n",
    );
    let out = ws.run(&["status", "--json", "--no-probe"]);
    out.assert_ok();
    let doc = json(&out);
    let warnings = |t: &str| -> String {
        doc["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["target"] == t)
            .map(|x| x["warnings"].to_string())
            .unwrap_or_default()
    };
    let c = warnings("containerd");
    assert!(c.contains("containerd 1.x") && c.contains("ignores"), "{c}");
    assert!(
        c.contains("hosts.toml:2:") && c.contains("cannot parse"),
        "{c}"
    );
    assert!(warnings("docker").contains("no scheme"), "{out}");
    assert!(
        warnings("registries").contains("/root/.config/containers/registries.conf"),
        "{out}"
    );
    assert!(
        warnings("k3s").contains("https://mirror.example:5000"),
        "{out}"
    );
    let text = ws.run(&["status", "--no-probe"]);
    assert!(text.stdout.contains("warning:"), "{text}");
}
