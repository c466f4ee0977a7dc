//! `arm --target docker` for registries other than docker.io: dockerd ≥ 28 reads
//! `/etc/docker/certs.d/<host>/hosts.toml`, older dockerd mirrors docker.io only. The version is
//! `dockerd --version` unless `--dockerd-version` / `MIRRORCTL_DOCKERD_VERSION` says otherwise.
//! (The file contents are covered by the golden fixtures `fixtures/docker/certs-d-*`; here: the
//! JSON report, the detection, and that disarm removes the file and the dirs arm created.)

use crate::common::{self, json, mirrorctl, run, Workspace};
use std::process::Command;

/// `arm --target docker --registry ghcr.io --mirror http://127.0.0.1:5002 --json`.
const ARM_GHCR_ONLY: &[&str] = &[
    "arm",
    "--target",
    "docker",
    "--registry",
    "ghcr.io",
    "--mirror",
    "http://127.0.0.1:5002",
    "--json",
];

const ARM: &[&str] = &[
    "arm",
    "--target",
    "docker",
    "--mirror",
    "http://127.0.0.1:5001",
    "--mirror",
    "ghcr.io=http://127.0.0.1:5002",
    "--json",
];

#[test]
fn dockerd_28_gets_certs_d_hosts_toml_and_disarm_removes_it_with_its_dirs() {
    let ws = Workspace::new("certs-d");
    let etc_docker = ws.under_root("etc/docker");
    std::fs::create_dir_all(&etc_docker).unwrap();
    let mut args = ARM.to_vec();
    args.extend(["--dockerd-version", "28.0.1"]);
    let doc = json(ws.run(&args).assert_ok());
    let t = &doc["targets"][0];
    assert_eq!(t["target"], "docker");
    let files: Vec<&str> = t["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap_or_default())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("etc/docker/daemon.json")),
        "{doc:#}"
    );
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("etc/docker/certs.d/ghcr.io/hosts.toml")),
        "{doc:#}"
    );
    let notes = t["notes"].to_string();
    assert!(
        notes.contains("dockerd 28.0 (from --dockerd-version)"),
        "{doc:#}"
    );
    let hosts = std::fs::read_to_string(etc_docker.join("certs.d/ghcr.io/hosts.toml")).unwrap();
    assert!(hosts.contains("server = \"https://ghcr.io\""), "{hosts}");
    assert!(
        hosts.contains("[host.\"http://127.0.0.1:5002\"]"),
        "{hosts}"
    );

    // Another registry only: no daemon.json change, so nothing for dockerd to reload (it
    // reads hosts.toml on every pull).
    let doc = json(
        ws.run(&[
            "arm",
            "--target",
            "docker",
            "--dockerd-version",
            "28.0.1",
            "--mirror",
            "http://127.0.0.1:5001",
            "--mirror",
            "ghcr.io=http://127.0.0.1:5003",
            "--mirror",
            "quay.io=http://127.0.0.1:5004",
            "--reload",
            "--json",
        ])
        .assert_ok(),
    );
    let t = &doc["targets"][0];
    assert!(
        t["reload"]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no reload needed"),
        "{doc:#}"
    );
    assert!(etc_docker.join("certs.d/quay.io/hosts.toml").is_file());

    ws.run(&["disarm", "--json"]).assert_ok();
    assert!(
        !etc_docker.join("certs.d").exists(),
        "disarm left certs.d behind"
    );
    assert!(
        !etc_docker.join("daemon.json").exists(),
        "disarm left daemon.json"
    );
    assert!(
        etc_docker.is_dir(),
        "disarm removed a dir it did not create"
    );
}

#[test]
fn env_override_and_older_dockerd_skips_other_registries_with_the_reason() {
    let ws = Workspace::new("certs-d");
    let o = run(mirrorctl(&ws)
        .env("MIRRORCTL_DOCKERD_VERSION", "27.5.1")
        .args(ARM_GHCR_ONLY));
    let doc = json(o.assert_ok());
    let t = &doc["targets"][0];
    assert_eq!(t["status"], "skipped", "{doc:#}");
    let reason = t["reason"].as_str().unwrap();
    assert!(reason.contains("before version 28"), "{reason}");
    assert!(reason.contains("dockerd 27.5"), "{reason}");
    assert!(reason.contains("ghcr.io"), "{reason}");
    assert!(!ws.under_root("etc/docker").exists(), "{doc:#}");

    // docker.io plus another registry: daemon.json armed, the other one named in a note.
    let doc = json(
        ws.run(&[ARM, &["--dockerd-version", "20.10"]].concat())
            .assert_ok(),
    );
    let t = &doc["targets"][0];
    assert_eq!(t["files"].as_array().unwrap().len(), 1, "{doc:#}");
    assert!(
        t["notes"]
            .to_string()
            .contains("ghcr.io not configured for dockerd"),
        "{doc:#}"
    );
    assert!(!ws.under_root("etc/docker/certs.d").exists());

    let o = ws.run(&["arm", "--dockerd-version", "new", "--mirror", "http://x:1"]);
    assert_eq!(o.code(), Some(2), "{o}");
}

/// Without an override the version comes from the root's dockerd `--version` (here the
/// installed dockerd, 20.10 on Debian 12, run through `<root>/usr/bin/dockerd`).
#[test]
fn detects_the_installed_dockerd() {
    let Ok(out) = Command::new("dockerd").arg("--version").output() else {
        assert!(!common::in_ci(), "CI=true and dockerd is not installed");
        eprintln!("SKIP: dockerd not installed");
        return;
    };
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    // "Docker version 20.10.24+dfsg1, build 297e128" → "20.10"
    let v = line
        .trim()
        .trim_start_matches("Docker version ")
        .split(['+', ',', '-'])
        .next()
        .unwrap()
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let ws = Workspace::new("certs-d");
    let installed = common::which("dockerd").unwrap();
    let wrapper = ws.under_root("usr/bin/dockerd");
    common::write_executable(
        &wrapper,
        &format!("#!/bin/sh\nexec {} \"$@\"\n", installed.display()),
    );
    let doc = json(
        ws.run(&[ARM_GHCR_ONLY, &["--dry-run"]].concat())
            .assert_ok(),
    );
    let t = &doc["targets"][0];
    let text = t.to_string();
    assert!(
        text.contains(&format!(
            "dockerd {v} (from `{} --version`)",
            wrapper.display()
        )),
        "{line} → {doc:#}"
    );
    // Without a dockerd under the root, the host's is not asked: the version is unknown.
    std::fs::remove_file(&wrapper).unwrap();
    let doc = json(
        ws.run(&[ARM_GHCR_ONLY, &["--dry-run"]].concat())
            .assert_ok(),
    );
    let text = doc["targets"][0].to_string();
    assert!(text.contains("no dockerd binary under"), "{doc:#}");
}
