//! Harbor proxy-cache projects as mirrors (`--mirror https://harbor/<project>`): a real nginx
//! in front of the lab mirror answers only under `/v2/<project>/…` (rewritten to the mirror's
//! `/v2/…`), the `/v2/` ping at the root, and 404 elsewhere, the way Harbor serves a proxy
//! cache project. What `arm` writes for containerd (`[host."…/v2/dh"]` + `override_path`) and
//! registries.conf (`location = "…/dh"`) is read by real ctr, skopeo, podman and buildah,
//! which pull through it; `verify`, `preflight` and `serve --upstream` take the same URL.
//! The mirror's access log proves each pull went through, nginx's that it came in as
//! `/v2/dh/…`. (dockerd puts a mirror path before `/v2`: it is skipped, see the golden
//! fixture `docker/project-path-skipped`.)

use crate::common::containerd::{write_hosts_toml, Containerd};
use crate::common::containers::ContainersEnv;
use crate::common::image::PROBE;
use crate::common::nginx::Nginx;
use crate::common::proof::{
    assert_not_through_mirror, assert_through_mirror, UA_BUILDAH, UA_CONTAINERD, UA_PODMAN,
    UA_SKOPEO,
};
use crate::common::serve::Serve;
use crate::common::{self, json, mirrorctl, run, AccessLogged, Lab, Workspace};

const PROJECT: &str = "dh";

/// nginx's access log lines after the first `mark` lines.
fn nginx_since(nginx: &Nginx, mark: usize) -> String {
    nginx
        .access_log()
        .lines()
        .skip(mark)
        .collect::<Vec<_>>()
        .join("\n")
}

fn nginx_mark(nginx: &Nginx) -> usize {
    nginx.access_log().lines().count()
}

#[test]
fn ctr_skopeo_podman_and_buildah_pull_through_a_project_path() {
    if !common::require(&[
        "docker-registry",
        "skopeo",
        "podman",
        "buildah",
        "unshare",
        "nginx",
        "containerd",
        "ctr",
    ]) {
        return;
    }
    let ws = Workspace::new("harbor");
    let lab = Lab::start(&ws);
    let nginx = Nginx::start_project(&ws.aux("nginx"), &lab.mirror.host(), PROJECT);
    let project_url = format!("{}/{PROJECT}", nginx.url());
    let ctrd = Containerd::start(&ws.aux("containerd"));
    let env = ContainersEnv::new(&ws.root(), &ws.aux("containers"));
    let latest = format!("{PROBE}:latest");

    // Control: the proxy's root as a mirror (what a path-less config sends, `/v2/library/…`)
    // gets 404 and the pull falls back to the unreachable Docker Hub.
    let control = ws.aux("control-hosts");
    write_hosts_toml(&control, &nginx.url());
    let mark = lab.mirror.log_mark();
    let out = ctrd.pull(&control, &latest, &[]);
    assert_not_through_mirror(&out, &lab.mirror, mark, UA_CONTAINERD);
    // And containerd's own reading of a path without override_path (`/dh/v2/…`) misses too.
    let control2 = ws.aux("control-hosts-2");
    write_hosts_toml(&control2, &project_url);
    let out = ctrd.pull(&control2, &latest, &[]);
    assert_not_through_mirror(&out, &lab.mirror, mark, UA_CONTAINERD);

    // Preflight asks the project's mirror (`GET /v2/` at the root, which the proxy answers);
    // docker is skipped with the reason, nothing written for it.
    let mut c = mirrorctl(&ws);
    c.env_remove("MIRRORCTL_NO_PREFLIGHT").args([
        "arm",
        "--target",
        "containerd,registries,docker",
        "--mirror",
        &project_url,
    ]);
    let armed = run(&mut c);
    armed.assert_ok();
    assert!(
        armed.stdout.contains("docker") && armed.stdout.contains("skipped"),
        "{armed}"
    );
    assert!(armed.stdout.contains("before /v2"), "{armed}");
    assert!(!ws.under_root("etc/docker/daemon.json").exists());
    let hosts_dir = ws.under_root("etc/containerd/certs.d");
    let hosts = std::fs::read_to_string(hosts_dir.join("docker.io/hosts.toml")).unwrap();
    assert!(
        hosts.contains(&format!("[host.\"{}/v2/{PROJECT}\"]", nginx.url()))
            && hosts.contains("override_path = true"),
        "{hosts}"
    );

    let mark = lab.mirror.log_mark();
    let nmark = nginx_mark(&nginx);
    let out = ctrd.pull(&hosts_dir, &latest, &[]);
    assert_through_mirror(&out, &lab.mirror, mark, UA_CONTAINERD, "ctr");
    let seen = nginx_since(&nginx, nmark);
    assert!(
        seen.contains(&format!(
            "/v2/{PROJECT}/library/probe/manifests/latest?ns=docker.io"
        )),
        "{seen}"
    );

    for (ua, what) in [
        (UA_SKOPEO, "skopeo"),
        (UA_PODMAN, "podman"),
        (UA_BUILDAH, "buildah"),
    ] {
        let mark = lab.mirror.log_mark();
        let nmark = nginx_mark(&nginx);
        let out = match what {
            "skopeo" => env.skopeo_pull(&latest, &[]),
            "podman" => env.podman_pull(&latest, &[]),
            _ => env.buildah_pull(&format!("{PROBE}:multi"), &[]),
        };
        assert_through_mirror(&out, &lab.mirror, mark, ua, what);
        let seen = nginx_since(&nginx, nmark);
        assert!(
            seen.contains(&format!("/v2/{PROJECT}/library/probe/manifests/")),
            "{what}: {seen}"
        );
    }

    // verify's client probes read the armed files: containerd's `…/v2/dh` key and
    // registries.conf's `…/dh` location name this mirror; docker cannot use it.
    for client in ["containerd", "skopeo", "podman", "docker", "buildkit"] {
        let mut c = mirrorctl(&ws);
        c.env("CONTAINERD_ADDRESS", &ctrd.socket).args([
            "verify",
            "--mirror",
            &project_url,
            "--image",
            &latest,
            "--client",
            client,
            "--json",
        ]);
        let out = run(&mut c);
        let doc = json(&out);
        let probe = &doc["clients"][0];
        let detail = probe["detail"].as_str().unwrap_or_default();
        if client == "docker" || client == "buildkit" {
            assert_eq!(probe["ok"], false, "{out}");
            assert!(detail.contains("before /v2"), "{client}: {out}");
        } else {
            assert_eq!(probe["ok"], true, "{client}: {out}");
        }
    }

    // Re-arm with the other spelling is the same mirror: nothing changes.
    let again = ws.run(&[
        "arm",
        "--target",
        "containerd,registries",
        "--mirror",
        &format!("{}/v2/{PROJECT}/", nginx.url()),
    ]);
    again.assert_ok();
    assert_eq!(
        std::fs::read_to_string(hosts_dir.join("docker.io/hosts.toml")).unwrap(),
        hosts,
        "{again}"
    );

    ws.run(&["disarm"]).assert_ok();
    assert!(!hosts_dir.join("docker.io/hosts.toml").exists());
    let mark = lab.mirror.log_mark();
    let out = env.skopeo_pull(&latest, &[]);
    assert_not_through_mirror(&out, &lab.mirror, mark, UA_SKOPEO);
}

/// `verify --mirror <proxy>/<project>` proves pulls through the project (its probes go to
/// `/v2/dh/…`); the proxy's root is refused by the proxy, so verify fails there.
/// `warm --mirror <proxy>/<project>` fills it; `serve --upstream <proxy>/<project>` fills its
/// cache through the project.
#[test]
fn verify_warm_and_serve_take_a_project_path() {
    if !common::require(&["docker-registry", "skopeo", "unshare", "nginx"]) {
        return;
    }
    let ws = Workspace::new("harbor-verify");
    let lab = Lab::start(&ws);
    let nginx = Nginx::start_project(&ws.aux("nginx"), &lab.mirror.host(), PROJECT);
    let project_url = format!("{}/{PROJECT}", nginx.url());

    let nmark = nginx_mark(&nginx);
    let out = run(mirrorctl(&ws).args([
        "verify",
        "--mirror",
        &project_url,
        "--image",
        "probe:multi",
        "--json",
    ]));
    let doc = json(&out);
    // The distribution cache behind the proxy proves itself (miss, then hit) through it.
    assert_eq!(
        (out.code(), &doc["ok"]),
        (Some(0), &serde_json::json!(true)),
        "{out}"
    );
    let seen = nginx_since(&nginx, nmark);
    assert!(
        seen.contains(&format!("/v2/{PROJECT}/library/probe/manifests/multi")),
        "{seen}"
    );
    let root = run(mirrorctl(&ws).args([
        "verify",
        "--mirror",
        &nginx.url(),
        "--image",
        "probe:multi",
        "--json",
    ]));
    assert_ne!(root.code(), Some(0), "{root}");

    // warm fills the project: every request under /v2/dh/.
    let nmark = nginx_mark(&nginx);
    let out = run(mirrorctl(&ws).args(["warm", "--mirror", &project_url, "probe:multi"]));
    out.assert_ok();
    let seen = nginx_since(&nginx, nmark);
    assert!(
        seen.contains(&format!("/v2/{PROJECT}/library/probe/blobs/sha256:")),
        "{seen}"
    );
    assert!(
        !seen.contains(" 404 "),
        "warm asked outside the project: {seen}"
    );

    // serve with the project as its upstream: a pull through serve reaches the lab mirror
    // via /v2/dh/….
    let serve = Serve::mirror_of(&ws.aux("serve"), &project_url);
    let mark = lab.mirror.log_mark();
    let nmark = nginx_mark(&nginx);
    let out = run(mirrorctl(&ws).args([
        "verify",
        "--mirror",
        &serve.url(),
        "--image",
        "probe:multi",
        "--json",
    ]));
    let doc = json(&out);
    assert_eq!(doc["pulls"][0]["ok"], true, "{out}");
    let seen = nginx_since(&nginx, nmark);
    assert!(
        seen.contains(&format!("/v2/{PROJECT}/library/probe/manifests/multi")),
        "{seen}"
    );
    assert!(
        lab.mirror
            .requests_since(mark)
            .iter()
            .any(|e| e.path.starts_with("/v2/library/probe/blobs/")),
        "serve's blob fetches did not reach the mirror"
    );
}

/// The docker target with a docker.io project mirror: skipped (exit 0), the reason given,
/// nothing written; a bad project path is refused with exit 2.
#[test]
fn docker_is_skipped_with_the_reason_and_bad_paths_are_refused() {
    let ws = Workspace::new("harbor-docker");
    let out = ws.run(&[
        "arm",
        "--target",
        "docker",
        "--mirror",
        "https://harbor.example/dh",
        "--json",
    ]);
    out.assert_ok();
    let doc = json(&out);
    let t = common::target(&doc, "docker");
    let text = t.to_string();
    assert!(text.contains("skipped"), "{doc:#}");
    assert!(
        text.contains("before /v2") && text.contains("https://harbor.example/v2/dh/"),
        "{doc:#}"
    );
    assert!(!ws.under_root("etc/docker").exists(), "{out}");
    for (bad, why) in [
        ("https://harbor.example/dh/v2", "before `/v2`"),
        ("https://harbor.example/DH", "not a project name"),
        ("https://harbor.example/dh?x=1", "query"),
    ] {
        let out = ws.run(&["arm", "--target", "containerd", "--mirror", bad]);
        assert_eq!(out.code(), Some(2), "{out}");
        assert!(out.stderr.contains(why), "{bad}: {out}");
        assert!(!ws.under_root("etc/containerd").exists(), "{out}");
    }
}
