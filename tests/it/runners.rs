//! The runners' per-user targets through the real binary on a private `--root`: where
//! Earthly's config and buildx's directory are found (SUDO_USER, HOME, EARTHLY_CONFIG,
//! `--earthly-config`, BUILDX_CONFIG, DOCKER_CONFIG: always under the root), Earthly's
//! container check, and buildx's builder re-creation, with a stand-in `docker` that records
//! what it was asked — and with a real `docker buildx` and a private dockerd where the buildx
//! plugin is available (`MIRRORCTL_TEST_BUILDX=<path to docker-buildx>`, or a system plugin:
//! Debian 12 packages none, so this part is skipped where it is missing, CI included).

use crate::common::{self, mirrorctl, Out, Workspace};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIRROR: &str = "http://127.0.0.1:5001";

fn cmd(ws: &Workspace, home: &str) -> Command {
    let mut c = mirrorctl(ws);
    c.env("HOME", home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("DOCKER_HOST");
    c
}

fn arm(ws: &Workspace, c: &mut Command, extra: &[&str]) -> Out {
    c.args(["arm", "--mirror", MIRROR]).args(extra);
    let o = common::run(c);
    let _ = ws;
    o
}

/// The document, validated against its schema (`status`, or `run` for arm and disarm).
fn json(o: &Out) -> serde_json::Value {
    let doc: serde_json::Value =
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{o}"));
    let schema = if doc["command"] == "status" {
        "status"
    } else {
        "run"
    };
    crate::json_schema::check(schema, o)
}

fn passwd(ws: &Workspace) {
    ws.write(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    );
}

#[test]
fn earthly_finds_its_config_as_earthly_does_under_the_root() {
    // SUDO_USER's home, when it is a directory.
    let ws = Workspace::new("earthly-sudo");
    passwd(&ws);
    fs::create_dir_all(ws.under_root("home/alice")).unwrap();
    let o = arm(
        &ws,
        cmd(&ws, "/root").env("SUDO_USER", "alice"),
        &["--target", "earthly"],
    );
    o.assert_ok();
    assert!(o.stdout.contains("SUDO_USER `alice`"), "{o}");
    let f = ws.under_root("home/alice/.earthly/config.yml");
    assert!(fs::read_to_string(&f).unwrap().contains("127.0.0.1:5001"));
    common::run(cmd(&ws, "/root").arg("disarm")).assert_ok();
    assert!(!f.exists() && !ws.under_root("home/alice/.earthly").exists());

    // SUDO_USER without a home here: HOME; and the legacy name when it is the only file.
    let ws = Workspace::new("earthly-home");
    passwd(&ws);
    ws.write(
        "home/bob/.earthly/config.yaml",
        "global:\n  cache_size_mb: 1\n",
    );
    let o = arm(
        &ws,
        cmd(&ws, "/home/bob").env("SUDO_USER", "alice"),
        &["--target", "earthly"],
    );
    o.assert_ok();
    assert!(o.stdout.contains("($HOME)"), "{o}");
    let legacy = fs::read_to_string(ws.under_root("home/bob/.earthly/config.yaml")).unwrap();
    assert!(legacy.contains("127.0.0.1:5001"), "{legacy}");
    assert!(!ws.under_root("home/bob/.earthly/config.yml").exists());

    // EARTHLY_CONFIG, and --earthly-config before it.
    let ws = Workspace::new("earthly-env");
    let o = arm(
        &ws,
        cmd(&ws, "/root").env("EARTHLY_CONFIG", "/opt/ci/earthly.yml"),
        &["--target", "earthly"],
    );
    o.assert_ok();
    assert!(ws.under_root("opt/ci/earthly.yml").exists(), "{o}");
    let o = arm(
        &ws,
        cmd(&ws, "/root").env("EARTHLY_CONFIG", "/opt/ci/earthly.yml"),
        &["--target", "earthly", "--earthly-config", "/srv/e.yml"],
    );
    o.assert_ok();
    assert!(ws.under_root("srv/e.yml").exists(), "{o}");
    // (The first file is no longer wanted by the target: taken back.)
    assert!(!ws.under_root("opt/ci/earthly.yml").exists(), "{o}");
}

#[test]
fn earthly_and_buildx_are_detected_by_their_directories() {
    let ws = Workspace::new("runners-detect");
    let o = arm(&ws, &mut cmd(&ws, "/home/ci"), &["--json"]);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(o.stderr.contains("~/.earthly"), "{o}");
    fs::create_dir_all(ws.under_root("home/ci/.earthly")).unwrap();
    fs::create_dir_all(ws.under_root("home/ci/.docker/buildx")).unwrap();
    let o = arm(&ws, &mut cmd(&ws, "/home/ci"), &["--json"]);
    o.assert_ok();
    let doc = json(&o);
    let names: Vec<&str> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["earthly", "buildx"], "{o}");
    assert!(ws
        .under_root("home/ci/.docker/buildx/buildkitd.default.toml")
        .exists());
    // DOCKER_CONFIG and BUILDX_CONFIG move buildx's directory (under the root).
    let ws = Workspace::new("buildx-env");
    let o = arm(
        &ws,
        cmd(&ws, "/home/ci").env("DOCKER_CONFIG", "/etc/ci-docker"),
        &["--target", "buildx"],
    );
    o.assert_ok();
    assert!(ws
        .under_root("etc/ci-docker/buildx/buildkitd.default.toml")
        .exists());
    let o = arm(
        &ws,
        cmd(&ws, "/home/ci").env("BUILDX_CONFIG", "/var/buildx"),
        &["--target", "buildx"],
    );
    o.assert_ok();
    assert!(ws.under_root("var/buildx/buildkitd.default.toml").exists());
}

/// A stand-in `docker` on PATH running `script` (sh), and the PATH to give.
fn fake_docker(ws: &Workspace, script: &str) -> String {
    let bin = ws.aux("fakebin");
    fs::create_dir_all(&bin).unwrap();
    let p = bin.join("docker");
    fs::write(&p, format!("#!/bin/sh\n{script}")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn container(o: &Out) -> serde_json::Value {
    let doc = json(o);
    doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "earthly")
        .unwrap()["container"]
        .clone()
}

#[test]
fn earthly_status_compares_the_running_container_with_the_config() {
    let ws = Workspace::new("earthly-status");
    arm(&ws, &mut cmd(&ws, "/home/ci"), &["--target", "earthly"]).assert_ok();
    let text = fs::read_to_string(ws.under_root("home/ci/.earthly/config.yml")).unwrap();
    let string = text
        .lines()
        .skip(2)
        .map(|l| l.strip_prefix("        ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let status = |path: &str, inspect: &str, rc: i32| {
        fs::write(ws.path().join("inspect.json"), inspect).unwrap();
        let mut c = cmd(&ws, "/home/ci");
        c.env("PATH", path)
            .env("FAKE_INSPECT", ws.path().join("inspect.json"))
            .env("FAKE_RC", rc.to_string())
            .args(["status", "--no-probe", "--json"]);
        let o = common::run(&mut c);
        o.assert_ok();
        container(&o)
    };
    // No docker socket under the root: not checked, and said so.
    let c = status("/nonexistent", "", 0);
    assert_eq!(c["checked"], false, "{c}");
    assert!(c["detail"].as_str().unwrap().contains("docker.sock"), "{c}");
    fs::create_dir_all(ws.under_root("var/run")).unwrap();
    fs::write(ws.under_root("var/run/docker.sock"), "").unwrap();
    // docker not installed.
    let c = status("/nonexistent", "", 0);
    assert_eq!(c["checked"], false, "{c}");
    assert!(
        c["detail"].as_str().unwrap().contains("could not check"),
        "{c}"
    );
    let path = fake_docker(
        &ws,
        "cat \"$FAKE_INSPECT\"; [ \"$FAKE_RC\" = 0 ] || echo 'Error: No such object: earthly-buildkitd' >&2; exit $FAKE_RC\n",
    );
    let env =
        serde_json::to_string(&format!("EARTHLY_ADDITIONAL_BUILDKIT_CONFIG={string}")).unwrap();
    let inspect = format!(
        "[{{\"Config\":{{\"Env\":[\"PATH=/bin\",{env}],\"Labels\":{{\"dev.earthly.settingshash\":\"9f1c\"}}}}}}]"
    );
    let c = status(&path, &inspect, 0);
    assert_eq!(c["current"], true, "{c}\n{string:?}");
    assert!(c["detail"].as_str().unwrap().contains("9f1c"), "{c}");
    let c = status(
        &path,
        "[{\"Config\":{\"Env\":[],\"Labels\":{\"dev.earthly.settingshash\":\"77\"}}}]",
        0,
    );
    assert_eq!(c["current"], false, "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("restarts it on its next run"),
        "{c}"
    );
    let c = status(&path, "[]", 1);
    assert_eq!(
        (c["checked"].clone(), c["current"].clone()),
        (true.into(), serde_json::Value::Null),
        "{c}"
    );
}

/// A buildx directory under the root with the user's default file and three builder records
/// (`ci` as buildx v0.10.5's store wrote it for `create --driver docker-container --driver-opt
/// network=host --buildkitd-flags '--debug --allow-insecure-entitlement security.insecure'`).
fn buildx_root(ws: &Workspace) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/buildx/builder-records/before/home/runner/.docker/buildx");
    let to = ws.under_root("home/runner/.docker/buildx");
    fs::create_dir_all(to.join("instances")).unwrap();
    for f in [
        "buildkitd.default.toml",
        "instances/ci",
        "instances/k8s",
        "instances/remote",
    ] {
        fs::copy(from.join(f), to.join(f)).unwrap();
    }
    to
}

const RECORDING_DOCKER: &str = r#"echo "BUILDX_CONFIG=$BUILDX_CONFIG KUBECONFIG=$KUBECONFIG $*" >> "$FAKE_LOG"
if [ "$1 $2" = "buildx version" ]; then echo "github.com/docker/buildx v0.10.5 fake"; exit 0; fi
prev=""
for a in "$@"; do
  if [ "$prev" = "--config" ] || [ "$prev" = "--buildkitd-config" ]; then cat "$a" >> "$FAKE_LOG.configs"; fi
  prev="$a"
done
if [ "$2" = create ] && [ -n "$FAKE_FAIL_CREATE" ]; then echo "ERROR: no such driver" >&2; exit 1; fi
exit 0
"#;

#[test]
fn buildx_reload_recreates_the_builders_created_before_the_arm() {
    let ws = Workspace::new("buildx-reload");
    let dir = buildx_root(&ws);
    let path = fake_docker(&ws, RECORDING_DOCKER);
    let log = ws.path().join("docker.log");
    let run = |extra: &[&str]| {
        let mut c = cmd(&ws, "/home/runner");
        c.env("PATH", &path).env("FAKE_LOG", &log);
        arm(&ws, &mut c, extra)
    };
    // A dry run says the same as a run (found by hand: it judged by the journal, which a dry
    // run does not write).
    let o = run(&["--target", "buildx", "--json", "--dry-run"]);
    o.assert_ok();
    let t = &json(&o)["targets"][0];
    assert_eq!(
        t["reload"]["action"], "re-create buildx builders ci, k8s",
        "{o}"
    );
    // Without --reload: said, nothing run.
    let o = run(&["--target", "buildx", "--json"]);
    o.assert_ok();
    let t = &json(&o)["targets"][0];
    assert_eq!(t["reload"]["done"], false, "{o}");
    assert_eq!(
        t["reload"]["action"], "re-create buildx builders ci, k8s",
        "{o}"
    );
    assert!(t["notes"].to_string().contains("`docker` driver"), "{o}");
    let logged = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !logged.contains(" rm ") && !logged.contains("create"),
        "{logged}"
    );
    // status says which ones need re-create.
    let mut c = cmd(&ws, "/home/runner");
    c.args(["status", "--no-probe", "--json"]);
    let s = json(&common::run(&mut c));
    let builders = s["targets"][6]["builders"].as_array().unwrap().clone();
    let needs: Vec<(&str, bool)> = builders
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap(),
                b["needs_recreate"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        needs,
        vec![("ci", true), ("k8s", true), ("remote", false)],
        "{s}"
    );

    // --reload: rm --keep-state + create, with the same settings and the armed config.
    let o = run(&["--target", "buildx", "--reload", "--json"]);
    o.assert_ok();
    let r = &json(&o)["targets"][0]["reload"];
    assert_eq!(r["done"], true, "{o}");
    let detail = r["detail"].as_str().unwrap();
    let state = ws.state_dir();
    let want_ci = format!(
        "`docker buildx create --name ci --driver docker-container --node ci0 --driver-opt network=host --buildkitd-flags '--debug --allow-insecure-entitlement security.insecure' --config {}/buildx/ci-0.toml unix:///var/run/docker.sock`",
        state.display()
    );
    assert!(
        detail.contains("`docker buildx rm --keep-state ci`"),
        "{detail}"
    );
    assert!(detail.contains(&want_ci), "{detail}\n{want_ci}");
    assert!(
        detail.contains("--driver kubernetes --node k8s0 --driver-opt replicas=2"),
        "{detail}"
    );
    let logged = fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains(&format!(
            "BUILDX_CONFIG={} KUBECONFIG= buildx rm --keep-state ci",
            dir.display()
        )),
        "{logged}"
    );
    let configs = fs::read_to_string(log.with_extension("log.configs")).unwrap();
    assert!(configs.starts_with("debug = true\n"), "{configs}");
    assert!(
        configs.contains("mirrors = [\"127.0.0.1:5001\"]"),
        "{configs}"
    );
    assert!(
        !state.join("buildx").exists(),
        "temporary configs left behind"
    );

    // A failing create: the reload fails (exit 1), saying what ran.
    let ws = Workspace::new("buildx-reload-fail");
    buildx_root(&ws);
    let path = fake_docker(&ws, RECORDING_DOCKER);
    let mut c = cmd(&ws, "/home/runner");
    c.env("PATH", &path)
        .env("FAKE_LOG", ws.path().join("docker.log"))
        .env("FAKE_FAIL_CREATE", "1");
    let o = arm(&ws, &mut c, &["--target", "buildx", "--reload", "--json"]);
    assert_eq!(o.code(), Some(1), "{o}");
    let r = &json(&o)["targets"][0]["reload"];
    assert_eq!(r["failed"], true, "{o}");
    assert!(
        r["detail"].as_str().unwrap().contains("no such driver"),
        "{o}"
    );
}

/// The buildx plugin to test with, if any.
fn buildx_plugin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MIRRORCTL_TEST_BUILDX") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    mirrorctl::host::buildx::PLUGINS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

#[test]
fn a_real_buildx_builder_is_recreated_with_the_mirror_and_its_settings() {
    let Some(plugin) = buildx_plugin() else {
        eprintln!(
            "SKIP: no docker-buildx plugin (Debian 12 packages none; set MIRRORCTL_TEST_BUILDX)"
        );
        return;
    };
    let ws = Workspace::new("buildx-real");
    ws.write("etc/docker/daemon.json", "{}\n");
    let dockerd = common::dockerd::Dockerd::try_start(&ws.root(), &ws.aux("dockerd"))
        .unwrap_or_else(|e| panic!("buildx is here but a private dockerd is not: {e}"));
    let cfg = ws.aux("docker-config");
    fs::create_dir_all(cfg.join("cli-plugins")).unwrap();
    std::os::unix::fs::symlink(&plugin, cfg.join("cli-plugins/docker-buildx")).unwrap();
    let dir = ws.under_root("home/runner/.docker/buildx");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("buildkitd.default.toml"), "debug = true\n").unwrap();
    let cli_path = format!(
        "{}:{}",
        common::dockerd::docker_cli().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let buildx = |args: &[&str]| {
        let mut c = Command::new(common::dockerd::docker_cli());
        c.arg("buildx")
            .args(args)
            .env("DOCKER_CONFIG", &cfg)
            .env("DOCKER_HOST", dockerd.docker_host())
            .env("BUILDX_CONFIG", &dir);
        common::run(&mut c)
    };
    let record = |name: &str| -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(dir.join("instances").join(name)).unwrap())
            .unwrap()
    };
    let stored = |name: &str| -> String {
        use base64::Engine;
        let r = record(name);
        let b = r["Nodes"][0]["Files"]["buildkitd.toml"]
            .as_str()
            .unwrap_or("");
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap()
    };
    buildx(&[
        "create",
        "--name",
        "ci",
        "--driver",
        "docker-container",
        "--driver-opt",
        "network=host",
        "--buildkitd-flags",
        "--debug --allow-insecure-entitlement security.insecure",
    ])
    .assert_ok();
    assert!(stored("ci").contains("debug = true"), "{}", stored("ci"));
    assert!(!stored("ci").contains("127.0.0.1:5001"));
    let mirrorctl_env = |c: &mut Command| {
        c.env("PATH", &cli_path)
            .env("DOCKER_CONFIG", &cfg)
            .env("DOCKER_HOST", dockerd.docker_host())
            .env("BUILDX_CONFIG", "/home/runner/.docker/buildx");
    };
    let mut c = cmd(&ws, "/home/runner");
    mirrorctl_env(&mut c);
    let o = arm(&ws, &mut c, &["--target", "buildx", "--reload", "--json"]);
    o.assert_ok();
    let r = &json(&o)["targets"][0]["reload"];
    assert_eq!(r["done"], true, "{o}");
    let s = stored("ci");
    assert!(
        s.contains("127.0.0.1:5001") && s.contains("http = true"),
        "{s}"
    );
    let rec = record("ci");
    assert_eq!(rec["Driver"], "docker-container");
    assert_eq!(rec["Nodes"][0]["DriverOpts"]["network"], "host", "{rec}");
    let flags = rec["Nodes"][0]["Flags"].to_string();
    assert!(
        flags.contains("--debug") && flags.contains("security.insecure"),
        "{flags}"
    );
    // A builder created after the arm has the mirror already: nothing to re-create.
    buildx(&["create", "--name", "late", "--driver", "docker-container"]).assert_ok();
    assert!(
        stored("late").contains("127.0.0.1:5001"),
        "{}",
        stored("late")
    );
    let mut c = cmd(&ws, "/home/runner");
    mirrorctl_env(&mut c);
    c.args(["status", "--no-probe", "--json"]);
    let st = json(&common::run(&mut c));
    let b = st["targets"][6]["builders"].to_string();
    assert!(!b.contains("\"needs_recreate\":true"), "{b}");
    // disarm --reload: the builders made from the armed file get the original one back.
    let mut c = cmd(&ws, "/home/runner");
    mirrorctl_env(&mut c);
    c.args(["disarm", "--reload", "--json"]);
    let o = common::run(&mut c);
    o.assert_ok();
    assert_eq!(
        fs::read_to_string(dir.join("buildkitd.default.toml")).unwrap(),
        "debug = true\n"
    );
    for name in ["ci", "late"] {
        assert!(
            !stored(name).contains("127.0.0.1:5001"),
            "{name}: {}\n{o}",
            stored(name)
        );
    }
    drop(dockerd);
}
