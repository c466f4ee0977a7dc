//! The production mirror a fleet outgrows into (issue 13): CNCF distribution in proxy mode on
//! its S3 driver against a real S3 server (s3s-fs, [`crate::common::s3`]). A stored blob is
//! answered with `307` to a presigned object-store URL, a cold one streamed with `200`.
//!
//! * `verify` reads the evidence from the redirect (pull #1 a miss, pull #2 a redirect to the
//!   object store, the push probe showing a proxy), with `--block-upstream` and the ctr and
//!   skopeo client probes; `arm --verify` proves containerd and registries through it.
//! * Through a mirror that needs credentials, neither `verify` nor `warm` sends them to the
//!   object store: every presigned GET the relay saw has no `Authorization`.

use crate::common::s3::S3Mirror;
use crate::common::{self, image::PROBE, mirrorctl, run_timeout, Seeded, Workspace};
use std::time::Duration;

const BINS: &[&str] = &["docker-registry", "skopeo", "unshare", "containerd", "ctr"];

/// The response kinds of one pull: (kind, cache, redirected?).
fn responses(pull: &serde_json::Value) -> Vec<(String, String, bool)> {
    pull["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["cache"].as_str().unwrap().to_string(),
                r.get("redirected_to").is_some(),
            )
        })
        .collect()
}

#[test]
fn verify_and_arm_verify_read_the_redirect_of_an_s3_backed_mirror() {
    if !common::require(BINS) || !common::s3::require() {
        return;
    }
    let ws = Workspace::new("s3");
    let seeded = Seeded::start(&ws, None);
    let m = S3Mirror::start(&ws.aux("s3"), &seeded.upstream.url());
    let url = m.registry.url();
    let image = format!("{PROBE}:latest");

    // Cold: pull #1 streamed (a miss), pull #2 redirected once the blob is in S3.
    let out = common::verify_clients(&ws, &url, &image, &[], |_| {});
    let doc = crate::json_schema::check("verify", &out);
    assert_eq!(out.code(), Some(0), "{out}");
    let p1 = responses(&doc["pulls"][0]);
    assert!(
        p1.iter().any(|(k, c, r)| k == "layer" && c == "miss" && !r),
        "pull #1: {doc:#}"
    );
    let p2 = responses(&doc["pulls"][1]);
    assert!(
        p2.iter()
            .filter(|(k, ..)| k == "layer" || k == "config")
            .all(|(_, c, r)| c == "hit" && *r),
        "pull #2: {doc:#}"
    );
    let to = doc["pulls"][1]["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r["redirected_to"].as_str())
        .unwrap();
    assert!(
        to.starts_with(&format!("http://127.0.0.1:{}/registry/", m.relay.port))
            && !to.contains('?'),
        "the object store's URL, without its signature: {to}"
    );

    // Warm: pulls #1 and #2 are redirects (the fingerprint case): the push probe decides.
    // With the upstream blocked in the hosts file and the real clients probing.
    ws.write("etc/hosts", "127.0.0.1 localhost\n");
    let out = run_timeout(
        mirrorctl(&ws).env_remove("MIRRORCTL_NO_PREFLIGHT").args([
            "arm",
            "--target",
            "containerd,registries",
            "--mirror",
            &url,
            "--json",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code(), Some(0), "{out}");
    let ctrd = common::containerd::Containerd::start(&ws.aux("containerd"));
    let out = common::verify_clients(&ws, &url, &image, &["containerd", "skopeo"], |c| {
        c.env("CONTAINERD_ADDRESS", &ctrd.socket)
            .arg("--block-upstream");
    });
    let doc = crate::json_schema::check("verify", &out);
    assert_eq!(out.code(), Some(0), "{out}");
    let push = doc["push_probe"].as_str().unwrap_or_default();
    assert!(push.ends_with("→ 405"), "the push probe decides: {doc:#}");
    assert_eq!(doc["upstream_blocked"], true, "{doc:#}");
    assert!(
        doc["clients"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true),
        "{doc:#}"
    );
    let out = ws.run(&["disarm"]);
    assert_eq!(out.code(), Some(0), "{out}");

    // arm --verify: each client's real pull through the S3-backed mirror.
    let out = run_timeout(
        mirrorctl(&ws)
            .env_remove("MIRRORCTL_NO_PREFLIGHT")
            .env("CONTAINERD_ADDRESS", &ctrd.socket)
            .args([
                "arm",
                "--verify",
                "--json",
                "--target",
                "containerd,registries",
            ])
            .args(["--mirror", &url, "--image", &image]),
        Duration::from_secs(300),
    );
    let doc = crate::json_schema::check("run", &out);
    assert_eq!(out.code(), Some(0), "{out}");
    let probes = doc["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 2, "{doc:#}");
    assert!(probes.iter().all(|p| p["ok"] == true), "{doc:#}");
}

#[test]
fn credentials_for_the_mirror_never_reach_the_object_store() {
    if !common::require(&["docker-registry", "skopeo", "unshare"]) || !common::s3::require() {
        return;
    }
    let ws = Workspace::new("s3-auth");
    let seeded = Seeded::start(&ws, None);
    let m = S3Mirror::start_with(
        &ws.aux("s3"),
        &seeded.upstream.url(),
        Some(("ci", "s3cret")),
    );
    let url = format!("http://ci:s3cret@{}", m.registry.host());
    let image = format!("{PROBE}:multi");
    // Fill the store (warm), wait for the redirects, then verify and warm again: both follow
    // the 307s with the mirror's Basic credentials in hand.
    let out = run_timeout(
        mirrorctl(&ws).args(["warm", "--mirror", &url, "--json", &image]),
        Duration::from_secs(120),
    );
    assert_eq!(out.code(), Some(0), "{out}");
    let layer = &seeded.image.amd64.layer.digest;
    let head = |d: &str| {
        let c = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let u = format!("{}/v2/library/probe/blobs/{d}", m.registry.url());
        common::http::rt()
            .block_on(c.get(&u).basic_auth("ci", Some("s3cret")).send())
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert!(
        common::wait_until(Duration::from_secs(60), || head(layer) == 307),
        "the S3 mirror never redirected {layer}"
    );
    let out = common::verify_clients(&ws, &url, &image, &[], |_| {});
    assert_eq!(out.code(), Some(0), "{out}");
    let out = run_timeout(
        mirrorctl(&ws).args(["warm", "--mirror", &url, "--json", &image]),
        Duration::from_secs(120),
    );
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = crate::json_schema::check("warm", &out);
    assert_eq!(doc["images"][0]["mirror"], "cached", "{doc:#}");
    let presigned = m.relay.request_heads("X-Amz-Signature=");
    assert!(
        presigned.len() >= 4,
        "few presigned GETs reached the object store: {presigned:#?}"
    );
    for h in &presigned {
        assert!(
            !h.to_ascii_lowercase().contains("\nauthorization:"),
            "a client sent credentials to the object store:\n{h}"
        );
    }
}
