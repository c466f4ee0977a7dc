//! `mirrorctl warm` (issue 13): fill a mirror's cache, then pull with the upstream stopped.
//!
//! One upstream `docker-registry` seeded with the probe (`latest`, `multi` = an index of amd64 +
//! arm64 sharing `latest`'s amd64 image, `v2s2` = the same blobs under a Docker manifest) and
//! three mirrors in front of it: `mirrorctl serve`, CNCF distribution in proxy mode on its
//! filesystem driver, and distribution on its S3 driver against a real S3 server (s3s-fs), which
//! answers stored blobs with a 307 to a presigned object-store URL.
//!
//! For each mirror: `warm` (an argument, `--from-file`, `--from-dockerfile`) fetches every blob
//! once (shared blobs too), says `fetched`, and its JSON matches `warm.schema.json`; a second
//! `warm` says `cached` for every image. Then the upstream is stopped, and real dockerd, ctr and
//! skopeo pull every warmed image through each mirror.

use crate::common::containerd::{write_hosts_toml, Containerd};
use crate::common::containers::ContainersEnv;
use crate::common::dockerd::Dockerd;
use crate::common::image::{PROBE, REPO};
use crate::common::registry::{lines, Registry};
use crate::common::s3::S3Mirror;
use crate::common::serve::Serve;
use crate::common::{self, mirrorctl, run_timeout, AccessLogged, Out, Seeded, Workspace};
use std::collections::BTreeMap;
use std::time::Duration;

const TAGS: [&str; 3] = ["latest", "multi", "v2s2"];

/// A mirror under test.
enum M {
    Serve(Serve),
    Dist(Registry),
    S3(S3Mirror),
}

impl M {
    fn name(&self) -> &'static str {
        match self {
            M::Serve(_) => "serve",
            M::Dist(_) => "distribution",
            M::S3(_) => "distribution-s3",
        }
    }
    fn url(&self) -> String {
        match self {
            M::Serve(s) => s.url(),
            M::Dist(r) => r.url(),
            M::S3(m) => m.registry.url(),
        }
    }
    fn log(&self) -> &dyn AccessLogged {
        match self {
            M::Serve(s) => s,
            M::Dist(r) => r,
            M::S3(m) => &m.registry,
        }
    }
    /// Has it stored every blob of `digests` (distribution stores in the background)?
    fn stored_all(&self, digests: &[String]) -> bool {
        match self {
            M::Serve(s) => {
                let files = s.blob_files();
                digests
                    .iter()
                    .all(|d| files.contains(&d.trim_start_matches("sha256:").to_string()))
            }
            M::Dist(r) => digests.iter().all(|d| r.has_blob(d)),
            M::S3(m) => digests.iter().all(|d| m.redirects(REPO, d)),
        }
    }
}

/// `mirrorctl warm --mirror <url> --json <args…>`.
fn warm(ws: &Workspace, url: &str, args: &[&str]) -> Out {
    let mut c = mirrorctl(ws);
    c.args(["warm", "--mirror", url, "--json"]).args(args);
    run_timeout(&mut c, Duration::from_secs(180))
}

#[test]
fn warm_fills_every_mirror_and_clients_pull_with_the_upstream_stopped() {
    let bins = [
        "docker-registry",
        "skopeo",
        "unshare",
        "containerd",
        "ctr",
        "dockerd",
        "runc",
    ];
    if !common::require(&bins) || !common::s3::require() {
        return;
    }
    let ws = Workspace::new("warm");
    let Seeded {
        mut upstream,
        image,
    } = Seeded::start(&ws, None);
    let mirrors = [
        M::Serve(Serve::mirror_of(&ws.aux("serve"), &upstream.url())),
        M::Dist(Registry::proxy(&ws.aux("dist"), &upstream.url())),
        M::S3(S3Mirror::start(&ws.aux("s3"), &upstream.url())),
    ];
    let list = ws.aux("lists").join("images.txt");
    std::fs::write(
        &list,
        format!("# base images\n{PROBE}:multi\n\n{PROBE}:v2s2\n"),
    )
    .unwrap();
    let dockerfile = ws.aux("lists").join("Dockerfile");
    std::fs::write(
        &dockerfile,
        "ARG TAG=latest\nFROM docker.io/library/probe:${TAG} AS base\nFROM base\n",
    )
    .unwrap();
    let args = [
        &format!("{PROBE}:latest"),
        "--from-file",
        list.to_str().unwrap(),
        "--from-dockerfile",
        dockerfile.to_str().unwrap(),
    ];
    let blobs: Vec<String> = [&image.amd64, &image.arm64]
        .iter()
        .flat_map(|p| [p.config.digest.clone(), p.layer.digest.clone()])
        .collect();
    for m in &mirrors {
        let mark = m.log().log_mark();
        let out = warm(&ws, &m.url(), &args);
        assert_eq!(out.code(), Some(0), "{}: {out}", m.name());
        let doc = crate::json_schema::check("warm", &out);
        assert_eq!(
            states(&doc).values().collect::<Vec<_>>(),
            ["fetched"; 3],
            "{}: every image was cold: {doc:#}",
            m.name()
        );
        assert_eq!(doc["blobs"], blobs.len(), "{}: {doc:#}", m.name());
        // Each blob once, though `latest`, `multi` and `v2s2` share the amd64 ones.
        for b in &blobs {
            let path = format!("/v2/{REPO}/blobs/{b}");
            let n = m.log().gets_since(mark, &path);
            assert_eq!(
                n,
                1,
                "{}: {path} asked {n} times:\n{}",
                m.name(),
                lines(&m.log().requests_since(mark))
            );
        }
        assert!(
            common::wait_until(Duration::from_secs(60), || m.stored_all(&blobs)),
            "{} never stored every blob",
            m.name()
        );
        let out = warm(&ws, &m.url(), &args);
        assert_eq!(out.code(), Some(0), "{}: {out}", m.name());
        let doc = crate::json_schema::check("warm", &out);
        assert_eq!(
            states(&doc).values().collect::<Vec<_>>(),
            ["cached"; 3],
            "{}: the second warm: {doc:#}",
            m.name()
        );
    }
    upstream.daemon.stop();
    for m in &mirrors {
        pull_with_clients(&ws, m);
    }
}

/// image → `mirror` word of a warm document.
fn states(doc: &serde_json::Value) -> BTreeMap<String, String> {
    doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["image"].as_str().unwrap().to_string(),
                i["mirror"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// dockerd, ctr and skopeo pull every tag through `m` (the upstream is stopped: only the
/// mirror's cache can answer; Docker Hub is behind the proxy guard).
fn pull_with_clients(ws: &Workspace, m: &M) {
    let url = m.url();
    let host = url.trim_start_matches("http://").to_string();
    let name = m.name();
    let root = ws.path().join(format!("root-{name}"));
    common::write_file(
        &root.join("etc/docker/daemon.json"),
        &format!("{{\"registry-mirrors\": [\"{url}\"], \"insecure-registries\": [\"{host}\"]}}\n"),
    );
    let mut dockerd = Dockerd::start(&root, &ws.aux(&format!("dockerd-{name}")));
    let ctrd = Containerd::start(&ws.aux(&format!("containerd-{name}")));
    let hosts = ws.aux(&format!("hosts-{name}"));
    write_hosts_toml(&hosts, &url);
    let env = ContainersEnv::new(&root, &ws.aux(&format!("containers-{name}")));
    env.use_mirror(&host);
    for tag in TAGS {
        let r = format!("{PROBE}:{tag}");
        let mark = m.log().log_mark();
        let out = dockerd.pull(&r, &[]);
        assert!(out.ok(), "{name}: dockerd pull {r}: {out}");
        let out = ctrd.pull(&hosts, &r, &[]);
        assert!(out.ok(), "{name}: ctr pull {r}: {out}");
        let out = env.skopeo_pull(&r, &["--src-tls-verify=false"]);
        assert!(out.ok(), "{name}: skopeo copy {r}: {out}");
        let log = m.log().requests_since(mark);
        for ua in ["docker/", "containerd/", "skopeo/"] {
            assert!(
                log.iter().any(|e| e.is_manifest_of(REPO)
                    && e.user_agent.starts_with(ua)
                    && e.status < 400),
                "{name}: no {ua} manifest request for {r} in the mirror's log:\n{}",
                lines(&log)
            );
        }
    }
    dockerd.stop();
}

#[test]
fn warm_reports_a_missing_image_and_bad_input() {
    if !common::require(&["docker-registry", "skopeo", "unshare"]) {
        return;
    }
    let ws = Workspace::new("warm-bad");
    let lab = common::Lab::start(&ws);
    // One image warms, one does not exist: exit 1, both reported.
    let out = warm(
        &ws,
        &lab.mirror.url(),
        &[
            &format!("{PROBE}:latest"),
            &format!("{PROBE}:nope"),
            "--platform",
            "linux/amd64",
        ],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = crate::json_schema::check("warm", &out);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["failed"], 1);
    let bad = &doc["images"][1];
    assert_eq!(bad["mirror"], "failed", "{doc:#}");
    assert_eq!(bad["error"]["kind"], "not-found", "{doc:#}");
    // A platform the index lacks names what it has.
    let out = warm(
        &ws,
        &lab.mirror.url(),
        &[&format!("{PROBE}:multi"), "--platform", "linux/s390x"],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = crate::json_schema::check("warm", &out);
    let msg = doc["images"][0]["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("no linux/s390x") && msg.contains("linux/arm64"),
        "{msg}"
    );
    // Bad input: exit 2, the file and line named, nothing pulled.
    let list = ws.aux("l").join("list.txt");
    std::fs::write(&list, "alpine:3\n\nNot An Image\n").unwrap();
    let mark = lab.mirror.log_mark();
    let mut c = mirrorctl(&ws);
    c.args([
        "warm",
        "--mirror",
        &lab.mirror.url(),
        "--from-file",
        list.to_str().unwrap(),
    ]);
    let out = common::run(&mut c);
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains(&format!("{}:3:", list.display())),
        "{out}"
    );
    let df = ws.aux("l").join("Dockerfile");
    std::fs::write(&df, "FROM $BASE\n").unwrap();
    let mut c = mirrorctl(&ws);
    c.args([
        "warm",
        "--mirror",
        &lab.mirror.url(),
        "--from-dockerfile",
        df.to_str().unwrap(),
    ]);
    let out = common::run(&mut c);
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains(":1: FROM `$BASE` uses $BASE"), "{out}");
    let out = ws.run(&["warm", "--mirror", &lab.mirror.url()]);
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("no image to warm"), "{out}");
    assert_eq!(lab.mirror.requests_since(mark).len(), 0);
    // Text mode: a line per image and a total.
    let out = ws.run(&[
        "warm",
        "--mirror",
        &lab.mirror.url(),
        &format!("{PROBE}:latest"),
    ]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains(&format!("{PROBE}:latest: ")), "{out}");
    assert!(
        out.stdout.contains("1 image(s): 1 warmed, 0 failed"),
        "{out}"
    );
}
