//! `mirrorctl verify` against real registries on loopback: CNCF distribution as a pull-through
//! mirror of a seeded upstream (miss then hit), the upstream itself (no cache: not a hit), and
//! failure diagnoses. A small in-test registry (axum on 127.0.0.1:0) covers what distribution
//! cannot be made to do: serve wrong bytes, challenge for credentials, hang or fail on pull #2,
//! and look at the hosts file while the upstream block is in place.

use crate::common::containerd::Containerd;
use crate::common::dockerd::Dockerd;
use crate::common::nginx::Nginx;
use crate::common::proof::assert_blob_requests_by;
use crate::common::registry::lines;
use crate::common::serve::Serve;
use crate::common::tls::Certs;
use crate::common::{self, json, mirrorctl, run, sha256, AccessLogged, Lab, Out, Workspace};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BINS: &[&str] = &["docker-registry", "skopeo", "unshare"];

/// Exit 0, pull #1 a miss and pull #2 a hit, both proven by a header; the JSON document.
fn proven_miss_then_hit(out: &Out) -> serde_json::Value {
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(out);
    for (n, cache) in [(0, "miss"), (1, "hit")] {
        assert_eq!(doc["pulls"][n]["cache"], cache, "{out}");
        assert_eq!(doc["pulls"][n]["strength"], "proven", "{out}");
    }
    doc
}

/// `verify --mirror <mirror> --image probe` with `config` as the docker config (and `path` as
/// PATH, for credential helpers).
fn verify_with_docker_config(
    ws: &Workspace,
    mirror: &str,
    config: &str,
    path: Option<&str>,
) -> Out {
    let cfg = ws.aux("docker-config");
    std::fs::write(cfg.join("config.json"), config).unwrap();
    let mut c = mirrorctl(ws);
    c.env("DOCKER_CONFIG", &cfg)
        .args(["verify", "--mirror", mirror, "--image", "probe"]);
    if let Some(p) = path {
        c.env("PATH", p);
    }
    run(&mut c)
}

/// `verify --mirror <mirror> --image probe [extra…]` with an empty docker config (none of the
/// developer's credentials).
fn verify_anonymous(ws: &Workspace, mirror: &str, extra: &[&str]) -> Command {
    let mut c = mirrorctl(ws);
    c.env("DOCKER_CONFIG", ws.path())
        .args(["verify", "--mirror", mirror, "--image", "probe"])
        .args(extra);
    c
}

fn verify(ws: &Workspace, args: &[&str]) -> Out {
    run(mirrorctl(ws).arg("verify").args(args))
}

#[test]
fn distribution_mirror_miss_then_hit_and_upstream_is_not_a_cache() {
    if !common::require(BINS) {
        return;
    }
    let ws = Workspace::new("verify-dist");
    let lab = Lab::start(&ws);
    let mirror = lab.mirror.url();
    let mark = lab.mirror.log_mark();

    // Multi-platform image: index → arm64 manifest → config + layer.
    let out = verify(
        &ws,
        &[
            "--mirror",
            &mirror,
            "--image",
            "probe:multi",
            "--platform",
            "linux/arm64",
            "--json",
        ],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&out);
    assert_eq!(doc["ok"], true, "{out}");
    assert_eq!(doc["mirror"], mirror.trim_end_matches('/'));
    assert_eq!(doc["image"], "docker.io/library/probe:multi");
    assert_eq!(doc["digest"], lab.image.index.digest.as_str(), "{out}");
    assert_eq!(doc["preflight"]["ok"], true);
    for key in [
        "upstream_blocked",
        "hosts_restored",
        "clients",
        "ratelimit",
        "verdict",
    ] {
        assert!(doc.get(key).is_some(), "no `{key}` in {out}");
    }
    let pulls = doc["pulls"].as_array().unwrap();
    assert_eq!(pulls.len(), 2);
    assert_eq!(pulls[0]["cache"], "miss", "{out}");
    assert_eq!(pulls[1]["cache"], "hit", "{out}");
    assert_eq!(pulls[1]["strength"], "inferred", "{out}");
    let kinds: Vec<&str> = pulls[1]["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["index", "platform-manifest", "config", "layer"]);
    let layer = &pulls[1]["responses"][3];
    assert_eq!(layer["digest"], lab.image.arm64.layer.digest.as_str());
    assert!(
        layer["evidence"]
            .as_str()
            .unwrap()
            .contains("Cache-Control: max-age=31536000"),
        "{out}"
    );
    assert_eq!(
        pulls[0]["bytes"].as_u64().unwrap(),
        lab.image.index.size
            + lab.image.arm64.manifest.size
            + lab.image.arm64.config.size
            + lab.image.arm64.layer.size
    );
    // The mirror really served it, to mirrorctl, by repository name without `docker.io/`.
    let log = lab.mirror.requests_since(mark);
    let blobs: Vec<_> = log
        .iter()
        .filter(|e| e.is_blob_of("library/probe") && e.user_agent.starts_with("mirrorctl/"))
        .collect();
    assert_eq!(blobs.len(), 4, "{}", lines(&log));

    // Warm now: both pulls show the storage fingerprint, which a plain registry shows too;
    // the push probe tells them apart (distribution in proxy mode refuses pushes: 405).
    let out = verify(&ws, &["--mirror", &mirror, "--image", "probe:latest"]);
    assert_eq!(out.code(), Some(0), "cold tag `latest`: {out}");
    // Off a terminal: one plain progress line per pull on stderr with the exact blob bytes
    // counted while streaming, no bar, no escape sequence.
    let blob_bytes = lab.image.amd64.config.size + lab.image.amd64.layer.size;
    for n in [1, 2] {
        let want = format!("pull #{n}: {blob_bytes} of {blob_bytes} blob bytes in 2 blob(s)");
        assert!(out.stderr.contains(&want), "no `{want}` in {out}");
    }
    assert!(!out.stderr.contains('\x1b'), "{out}");
    let out = verify(
        &ws,
        &["--mirror", &mirror, "--image", "probe:latest", "--json"],
    );
    assert_eq!(out.code(), Some(0), "warm: {out}");
    assert!(
        !out.stderr.contains("pull #"),
        "--json prints no progress: {out}"
    );
    let doc = json(&out);
    assert_eq!(doc["pulls"][0]["cache"], "hit", "{out}");
    assert!(
        doc["push_probe"].as_str().unwrap().ends_with("405"),
        "{out}"
    );
    assert!(
        doc["verdict"].as_str().unwrap().contains("refuses pushes"),
        "{out}"
    );

    // The upstream (a registry that caches nothing) given as the mirror: never a hit.
    let mark_up = lab.upstream.log_mark();
    let out = verify(
        &ws,
        &[
            "--mirror",
            &lab.upstream.url(),
            "--image",
            "probe:v2s2",
            "--json",
        ],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = json(&out);
    assert_eq!(doc["ok"], false);
    assert_ne!(doc["pulls"][0]["cache"], "miss", "{out}");
    assert_eq!(doc["pulls"][1]["cache"], "unknown", "{out}");
    assert!(
        doc["verdict"].as_str().unwrap().contains("not a cache"),
        "{out}"
    );
    // The upload session the probe opened was cancelled.
    let up = lab.upstream.requests_since(mark_up);
    assert!(
        up.iter()
            .any(|e| e.method == "DELETE" && e.path.contains("/blobs/uploads/")),
        "{}",
        lines(&up)
    );

    // Unknown image: 404 with the OCI error code, exit 1.
    let out = verify(&ws, &["--mirror", &mirror, "--image", "nope/nothing:here"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stdout.contains("404 Not Found"), "{out}");
    assert!(out.stdout.contains("--image"), "{out}");

    // https:// to the plain-HTTP mirror.
    let https = mirror.replacen("http://", "https://", 1);
    let out = verify(&ws, &["--mirror", &https, "--image", "probe:latest"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stdout
            .contains("server gave HTTP response to HTTPS client"),
        "{out}"
    );
    assert!(
        out.stdout.contains(&format!("use --mirror {mirror}")),
        "{out}"
    );
}

#[test]
fn dead_mirror_and_bad_usage() {
    let ws = Workspace::new("verify-dead");
    let port = common::free_port();
    let out = verify(&ws, &["--mirror", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stdout.contains("refused"), "{out}");
    assert!(out.stdout.contains("start the mirror"), "{out}");
    let out = verify(&ws, &["--mirror", &format!("127.0.0.1:{port}")]);
    assert_eq!(out.code(), Some(2), "{out}");
    let out = verify(
        &ws,
        &["--mirror", "http://127.0.0.1:9", "--image", "UPPER/case"],
    );
    assert_eq!(out.code(), Some(2), "{out}");
    let out = verify(
        &ws,
        &["--mirror", "http://127.0.0.1:9", "--platform", "linux"],
    );
    assert_eq!(out.code(), Some(2), "{out}");
}

// ---------------------------------------------------------------------------------------------
// The in-test registry.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Correct bytes; `Cache-Status: fake; fwd=uri-miss; stored` on a blob's first GET, `hit` after.
    Good,
    /// The layer's bytes are corrupted (same length).
    WrongLayer,
    /// Every request: 401 with a Basic challenge.
    Unauthorized,
    /// Blob GETs of pull #2 never answer.
    HangPull2,
    /// Blob GETs of pull #2 answer 500.
    FailPull2,
    /// Like `Good` behind Bearer token auth; the token server (`/token`) wants Basic `u:p`.
    Bearer,
}

struct Fake {
    base: String,
    state: Arc<FakeState>,
}

struct FakeState {
    mode: Mode,
    manifest: Vec<u8>,
    config: (String, Vec<u8>),
    layer: (String, Vec<u8>),
    seen: Mutex<Vec<String>>,
    hosts_file: Option<PathBuf>,
    /// (blob digest, whether the hosts file held mirrorctl's block at that moment).
    block_seen: Mutex<Vec<(String, bool)>>,
    hanging: AtomicBool,
    requests: AtomicUsize,
}

impl Fake {
    fn start(mode: Mode, hosts_file: Option<&Path>) -> Fake {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec();
        let layer: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(&layer), "size": layer.len()}],
        }))
        .unwrap();
        let state = Arc::new(FakeState {
            mode,
            manifest,
            config: (sha256(&config), config),
            layer: (sha256(&layer), layer),
            seen: Mutex::new(Vec::new()),
            hosts_file: hosts_file.map(Path::to_path_buf),
            block_seen: Mutex::new(Vec::new()),
            hanging: AtomicBool::new(false),
            requests: AtomicUsize::new(0),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(handle).with_state(st);
                axum::serve(l, app).await.unwrap();
            });
        });
        Fake { base, state }
    }
}

async fn handle(
    axum::extract::State(st): axum::extract::State<Arc<FakeState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    st.requests.fetch_add(1, Ordering::SeqCst);
    let api = ("Docker-Distribution-Api-Version", "registry/2.0");
    let path = uri.path().to_string();
    let authz = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if st.mode == Mode::Bearer {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if path == "/token" && method == axum::http::Method::POST {
            // The OAuth2 refresh-token grant, for an identity token from the docker config.
            let form = String::from_utf8_lossy(&body);
            let want = [
                "grant_type=refresh_token",
                "refresh_token=rt-secret",
                "service=fake",
                "scope=repository%3Alibrary%2Fprobe%3Apull",
            ];
            if want.iter().all(|w| form.split('&').any(|p| p == *w)) {
                return r#"{"access_token":"tok-123","expires_in":300}"#.into_response();
            }
            return (StatusCode::UNAUTHORIZED, "{}").into_response();
        }
        if path == "/token" {
            let q = uri.query().unwrap_or("");
            if !q.contains("service=fake")
                || !q.contains("scope=repository%3Alibrary%2Fprobe%3Apull")
            {
                return (StatusCode::BAD_REQUEST, format!("bad query {q}")).into_response();
            }
            // base64("u:p")
            if authz != "Basic dTpw" {
                return (StatusCode::UNAUTHORIZED, "{}").into_response();
            }
            return r#"{"token":"tok-123","expires_in":300}"#.into_response();
        }
        if authz != "Bearer tok-123" {
            let scope = if path == "/v2/" {
                String::new()
            } else {
                ",scope=\"repository:library/probe:pull\"".to_string()
            };
            return (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    format!("Bearer realm=\"http://{host}/token\",service=\"fake\"{scope}"),
                )],
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
                .into_response();
        }
    }
    if st.mode == Mode::Unauthorized {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"fake\"")],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
            .into_response();
    }
    if path == "/v2/" {
        return ([api], "{}").into_response();
    }
    let manifest_digest = sha256(&st.manifest);
    if path == "/v2/library/probe/manifests/latest"
        || path == format!("/v2/library/probe/manifests/{manifest_digest}")
    {
        return (
            [
                (
                    header::CONTENT_TYPE.as_str(),
                    "application/vnd.oci.image.manifest.v1+json",
                ),
                ("Docker-Content-Digest", manifest_digest.as_str()),
                api,
            ],
            st.manifest.clone(),
        )
            .into_response();
    }
    if let Some(d) = path.strip_prefix("/v2/library/probe/blobs/") {
        let d = d.to_string();
        let mut body = if d == st.config.0 {
            st.config.1.clone()
        } else if d == st.layer.0 {
            st.layer.1.clone()
        } else {
            return (
                StatusCode::NOT_FOUND,
                r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
            )
                .into_response();
        };
        if let Some(h) = &st.hosts_file {
            let text = std::fs::read_to_string(h).unwrap_or_default();
            st.block_seen
                .lock()
                .unwrap()
                .push((d.clone(), text.contains("# BEGIN mirrorctl verify")));
        }
        let repeat = {
            let mut seen = st.seen.lock().unwrap();
            let r = seen.contains(&d);
            seen.push(d.clone());
            r
        };
        if repeat && st.mode == Mode::HangPull2 {
            st.hanging.store(true, Ordering::SeqCst);
            // The hang is the behaviour: never answer (within any test's lifetime).
            tokio::time::sleep(Duration::from_secs(300)).await;
        }
        if repeat && st.mode == Mode::FailPull2 {
            return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
        }
        if st.mode == Mode::WrongLayer && d == st.layer.0 {
            body[100] ^= 0xff;
        }
        let cs = if repeat {
            "fake; hit"
        } else {
            "fake; fwd=uri-miss; stored"
        };
        return ([("Cache-Status", cs), api], body).into_response();
    }
    (
        StatusCode::NOT_FOUND,
        r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
    )
        .into_response()
}

#[test]
fn cache_status_proves_a_hit() {
    let ws = Workspace::new("verify-cs");
    let fake = Fake::start(Mode::Good, None);
    let out = verify(&ws, &["--mirror", &fake.base, "--image", "probe", "-v"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains("Cache-Status: fake; hit"), "{out}");
    assert!(
        out.stdout
            .contains("Cache-Status: fake; fwd=uri-miss; stored"),
        "{out}"
    );
    // The docker config's credential helper is only run when the mirror asks for credentials:
    // this one never does, so a broken helper is never noticed.
    let host = fake.base.trim_start_matches("http://");
    let out = verify_with_docker_config(
        &ws,
        &fake.base,
        &format!(r#"{{"credHelpers":{{"{host}":"nosuch"}}}}"#),
        None,
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(!out.stderr.contains("docker-credential-nosuch"), "{out}");
    let out = verify(&ws, &["--mirror", &fake.base, "--image", "probe", "--json"]);
    let doc = json(&out);
    // Warm: both pulls are hits, proven by the header.
    assert_eq!(doc["pulls"][0]["cache"], "hit", "{out}");
    assert_eq!(doc["pulls"][1]["strength"], "proven", "{out}");
    assert_eq!(out.code(), Some(0), "{out}");
}

#[test]
fn wrong_bytes_name_the_blob() {
    let ws = Workspace::new("verify-bad");
    let fake = Fake::start(Mode::WrongLayer, None);
    let out = verify(&ws, &["--mirror", &fake.base, "--image", "probe", "--json"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = json(&out);
    let err = &doc["pulls"][0]["error"];
    assert_eq!(err["kind"], "digest-mismatch", "{out}");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains(&fake.state.layer.0), "{out}");
    assert!(msg.contains("purge"), "{out}");
}

#[test]
fn unauthorized_without_credentials() {
    let ws = Workspace::new("verify-401");
    let fake = Fake::start(Mode::Unauthorized, None);
    let out = run(&mut verify_anonymous(&ws, &fake.base, &[]));
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stdout.contains("auth: basic"), "{out}");
    assert!(
        out.stdout.contains("--username and --password-stdin"),
        "{out}"
    );
}

#[test]
fn bearer_token_auth_anonymous_refused_then_with_credentials() {
    let ws = Workspace::new("verify-bearer");
    let fake = Fake::start(Mode::Bearer, None);
    let out = run(&mut verify_anonymous(&ws, &fake.base, &[]));
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stdout.contains("auth: bearer"), "{out}");
    assert!(out.stdout.contains("refuses anonymous pulls"), "{out}");

    let mut c = verify_anonymous(&ws, &fake.base, &["--username", "u", "--password-stdin"]);
    let out = common::run_input(&mut c, b"p\n");
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.combined().contains("Cache-Status: fake; hit"), "{out}");

    // The same credentials from a docker config file.
    let host = fake.base.trim_start_matches("http://").to_string();
    let out = verify_with_docker_config(
        &ws,
        &fake.base,
        &format!(r#"{{"auths":{{"{host}":{{"auth":"dTpw"}}}}}}"#),
        None,
    );
    assert_eq!(out.code(), Some(0), "{out}");

    // From a credential helper (`credHelpers.<host>`, as ECR's `ecr-login`), asked for this
    // host on stdin; the same helper as `credsStore`.
    let bin = ws.aux("helper-bin");
    let asked = ws.aux("helper").join("asked");
    let helper = bin.join("docker-credential-mctest");
    common::write_executable(
        &helper,
        &format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread -r server\necho \"$server\" >> {}\n\
             [ \"$server\" = \"{host}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\n\
             echo '{{\"ServerURL\":\"{host}\",\"Username\":\"u\",\"Secret\":\"p\"}}'\n",
            asked.display()
        ),
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let with_config =
        |config: String| verify_with_docker_config(&ws, &fake.base, &config, Some(&path));
    let out = with_config(format!(r#"{{"credHelpers":{{"{host}":"mctest"}}}}"#));
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap().trim(),
        host,
        "the helper is asked for the mirror's host:port"
    );
    let out = with_config(r#"{"credsStore":"mctest","auths":{}}"#.to_string());
    assert_eq!(out.code(), Some(0), "{out}");
    // A helper for another registry only: anonymous here, refused.
    let out = with_config(r#"{"credHelpers":{"other.example":"mctest"}}"#.to_string());
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stdout.contains("refuses anonymous pulls"), "{out}");
    // A helper that cannot be run is named, and verify goes on without credentials.
    let out = with_config(format!(r#"{{"credHelpers":{{"{host}":"nosuch"}}}}"#));
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("docker-credential-nosuch"), "{out}");
    // An identity token (`docker login` with OAuth): the refresh-token grant at the realm.
    let out = with_config(format!(
        r#"{{"auths":{{"{host}":{{"auth":"","identitytoken":"rt-secret"}}}}}}"#
    ));
    assert_eq!(out.code(), Some(0), "{out}");
    let out = with_config(format!(
        r#"{{"auths":{{"{host}":{{"identitytoken":"wrong"}}}}}}"#
    ));
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stdout.contains("refused the identity token"), "{out}");
    assert!(
        !out.stdout.contains("wrong") && !out.stderr.contains("wrong"),
        "{out}"
    );
}

const HOSTS: &str = "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n# keep me\n10.1.2.3 registry-1.docker.io-not";

fn hosts_file(ws: &Workspace) -> PathBuf {
    let etc = ws.root().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let p = etc.join("hosts");
    std::fs::write(&p, HOSTS).unwrap();
    p
}

#[test]
fn block_upstream_present_during_pull_2_and_gone_after_success_and_failure() {
    let ws = Workspace::new("verify-hosts");
    let hosts = hosts_file(&ws);
    let fake = Fake::start(Mode::Good, Some(&hosts));
    let args = [
        "--mirror",
        &fake.base,
        "--image",
        "probe",
        "--block-upstream",
        "--json",
    ];
    let out = verify(&ws, &args);
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&out);
    assert_eq!(doc["upstream_blocked"], true);
    assert_eq!(doc["hosts_restored"], true);
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), HOSTS);
    let seen = fake.state.block_seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(!seen[0].1 && !seen[1].1, "pull #1 ran blocked: {seen:?}");
    assert!(seen[2].1 && seen[3].1, "pull #2 ran unblocked: {seen:?}");
    // The tests' environment has a proxy for everything but loopback: a client inheriting it
    // would reach Docker Hub past the hosts block, and the report says so.
    assert_eq!(doc["upstream_unreachable"], false, "{out}");
    let proxy = doc["upstream_proxies"][0]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        proxy.starts_with("registry-1.docker.io via http://127.0.0.1:9 ($https_proxy)"),
        "{out}"
    );
    // Without a proxy in the environment, nothing is said about one.
    let mut c = mirrorctl(&ws);
    for (k, _) in common::GUARD_ENV {
        c.env_remove(k);
    }
    let out = run(c.arg("verify").args(args));
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&out);
    assert!(doc.get("upstream_proxies").is_none(), "{out}");
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), HOSTS);

    // Failure during pull #2 (explicit --hosts-file this time).
    let other = ws.path().join("hosts.private");
    std::fs::write(&other, HOSTS).unwrap();
    let fake = Fake::start(Mode::FailPull2, Some(&other));
    let out = verify(
        &ws,
        &[
            "--mirror",
            &fake.base,
            "--image",
            "probe",
            "--block-upstream",
            "--hosts-file",
            other.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stdout.contains("500"), "{out}");
    assert!(fake.state.block_seen.lock().unwrap()[2].1);
    assert_eq!(std::fs::read_to_string(&other).unwrap(), HOSTS);
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), HOSTS);
}

/// Start `verify --block-upstream` against a mirror that hangs on pull #2; returns when the
/// block is in place and pull #2 is in flight.
fn hung_verify(ws: &Workspace, hosts: &Path) -> (std::process::Child, Fake) {
    let fake = Fake::start(Mode::HangPull2, Some(hosts));
    let mut c = mirrorctl(ws);
    c.args([
        "verify",
        "--mirror",
        &fake.base,
        "--image",
        "probe",
        "--block-upstream",
        "--timeout",
        "600",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let child = c.spawn().unwrap();
    assert!(
        common::wait_until(Duration::from_secs(60), || fake
            .state
            .hanging
            .load(Ordering::SeqCst)),
        "verify never reached pull #2"
    );
    let during = std::fs::read_to_string(hosts).unwrap();
    assert!(during.starts_with(HOSTS), "{during}");
    assert!(
        during.contains(&format!("# BEGIN mirrorctl verify pid={}", child.id())),
        "{during}"
    );
    assert!(
        during.contains("0.0.0.0 registry-1.docker.io\n"),
        "{during}"
    );
    assert!(during.contains(":: auth.docker.io\n"), "{during}");
    (child, fake)
}

#[test]
fn block_removed_on_sigterm_and_sigint() {
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let ws = Workspace::new("verify-sig");
        let hosts = hosts_file(&ws);
        let (mut child, _fake) = hung_verify(&ws, &hosts);
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "signal {sig}");
        assert_eq!(std::fs::read_to_string(&hosts).unwrap(), HOSTS);
    }
}

#[test]
fn block_left_by_kill_9_is_removed_by_the_next_run() {
    let ws = Workspace::new("verify-kill");
    let hosts = hosts_file(&ws);
    let (mut child, _fake) = hung_verify(&ws, &hosts);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(std::fs::read_to_string(&hosts)
        .unwrap()
        .contains("# BEGIN mirrorctl verify"));
    let out = run(mirrorctl(&ws).arg("status"));
    assert!(out.stderr.contains("removed the upstream block"), "{out}");
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), HOSTS);

    // And `verify --cleanup` removes one explicitly (even a live pid's).
    let (mut child, _fake) = hung_verify(&ws, &hosts);
    let out = run(mirrorctl(&ws).args(["verify", "--cleanup"]));
    out.assert_ok();
    assert!(out.stdout.contains("removed the upstream block"), "{out}");
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), HOSTS);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), HOSTS);
}

/// Assert that entry `i` of a `verify --json` document's `clients` is `name`, with `ok`, and
/// (when given) a detail that contains `needle`.
fn assert_client(out: &Out, i: usize, name: &str, ok: bool, needle: Option<&str>) {
    let c = &json(out)["clients"][i];
    assert_eq!(c["name"], name, "{out}");
    assert_eq!(c["ok"], ok, "{name}: {out}");
    if let Some(n) = needle {
        let detail = c["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(n), "{name}: no `{n}` in its detail: {out}");
    }
}

/// `--client docker --client containerd` with a private dockerd and containerd: fail, naming
/// the config file, before `arm`; pass after it.
#[test]
fn clients_docker_and_containerd_fail_unarmed_pass_armed() {
    if !common::require(&[
        "docker-registry",
        "skopeo",
        "unshare",
        "dockerd",
        "docker",
        "containerd",
        "ctr",
    ]) {
        return;
    }
    let ws = Workspace::new("verify-cli");
    let lab = Lab::start(&ws);
    let mirror = lab.mirror.url();
    ws.write("etc/docker/daemon.json", "{}\n");
    let mut dockerd = Dockerd::start(&ws.root(), &ws.aux("dockerd"));
    let ctrd = Containerd::start(&ws.aux("containerd"));
    let verify_clients = |dockerd: &Dockerd, image: &str| {
        let clients = ["docker", "containerd", "buildkit"];
        common::verify_clients(&ws, &mirror, image, &clients, |c| {
            dockerd
                .client_env(c)
                .env("CONTAINERD_ADDRESS", &ctrd.socket);
        })
    };

    let out = verify_clients(&dockerd, "probe:latest");
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = json(&out);
    assert_eq!(doc["pulls"][1]["cache"], "hit", "{out}");
    assert_eq!(doc["clients"].as_array().unwrap().len(), 3, "{out}");
    assert_client(&out, 0, "docker", false, Some("etc/docker/daemon.json"));
    assert_client(&out, 1, "containerd", false, Some("hosts.toml"));
    assert_client(&out, 2, "buildkit", false, Some("etc/docker/daemon.json"));

    // arm --reload SIGHUPs dockerd and says that its BuildKit needs a restart.
    let arm = run(mirrorctl(&ws).args([
        "arm",
        "--mirror",
        &mirror,
        "--target",
        "docker,containerd",
        "--reload",
        "--json",
    ]));
    arm.assert_ok();
    let want = format!("{}/", mirror.trim_end_matches('/'));
    dockerd
        .wait_mirrors(&[want], Duration::from_secs(30))
        .expect("dockerd reloaded the mirrors");
    let doc = json(&arm);
    let docker = common::target(&doc, "docker");
    assert_eq!(docker["reload"]["done"], true, "{arm}");
    let detail = docker["reload"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("reloaded")
            && detail.contains("'s built-in BuildKit keeps the registry-mirrors")
            && detail.contains("restart dockerd"),
        "{arm}"
    );

    // dockerd's built-in BuildKit took its registry hosts when dockerd started: a reload is
    // not enough for it, and verify says so.
    let out = verify_clients(&dockerd, "probe:v2s2");
    assert_eq!(out.code(), Some(1), "{out}");
    assert_client(&out, 0, "docker", true, None);
    assert_client(&out, 1, "containerd", true, None);
    assert_client(&out, 2, "buildkit", false, Some("restart dockerd"));

    dockerd.stop();
    drop(dockerd);
    let dockerd = Dockerd::start(&ws.root(), &ws.aux("dockerd"));
    let mark = lab.mirror.log_mark();
    let out = verify_clients(&dockerd, "probe:v2s2");
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&out);
    assert_eq!(doc["ok"], true, "{out}");
    for c in doc["clients"].as_array().unwrap() {
        assert_eq!(c["ok"], true, "{out}");
    }
    let log = lab.mirror.requests_since(mark);
    for ua in ["docker/", "containerd/"] {
        assert!(
            log.iter()
                .any(|e| e.is_manifest_of("library/probe") && e.user_agent.starts_with(ua)),
            "no {ua} request at the mirror:\n{}",
            lines(&log)
        );
    }
    // ctr and BuildKit's resolver (vendored containerd code) each announce a containerd/…
    // user agent of their own; Docker Hub was unreachable (proxy guard), so BuildKit's base
    // image came through the mirror.
    let containerd_uas: std::collections::BTreeSet<&str> = log
        .iter()
        .filter(|e| e.is_manifest_of("library/probe") && e.user_agent.starts_with("containerd/"))
        .map(|e| e.user_agent.as_str())
        .collect();
    assert_eq!(containerd_uas.len(), 2, "{}", lines(&log));
}

/// `mirrorctl serve` as the mirror: its RFC 9211 `Cache-Status` proves miss then hit.
#[test]
fn mirrorctl_serve_cache_status_miss_then_hit() {
    if !common::require(BINS) {
        return;
    }
    let ws = Workspace::new("verify-serve");
    let lab = Lab::start(&ws);
    let serve = Serve::start(
        &ws.aux("serve"),
        &ws.aux("serve-cache"),
        &["--upstream", &lab.upstream.url()],
    );
    let url = serve.url();
    let args = [
        "--mirror",
        &url,
        "--image",
        "probe:multi",
        "--platform",
        "linux/amd64",
        "--json",
    ];
    let out = verify(&ws, &args);
    let doc = proven_miss_then_hit(&out);
    assert!(
        doc["pulls"][1]["responses"][3]["evidence"]
            .as_str()
            .unwrap()
            .starts_with("Cache-Status: mirrorctl; hit"),
        "{out}"
    );
    // Warm: still proven, no push probe needed.
    let out = verify(&ws, &args);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(json(&out).get("push_probe").is_none(), "{out}");
}

/// `verify --root /` in a private mount namespace whose `/etc/hosts` is a bind-mounted private
/// file (as in a container): the block is written in place (a bind-mounted file cannot be
/// renamed over), the resolver sees the upstream names at 0.0.0.0/::, and the file is
/// byte-identical after success, failure and SIGTERM.
#[test]
fn bind_mounted_etc_hosts_in_a_private_namespace() {
    if !common::require(&["unshare", "mount"]) {
        return;
    }
    let ws = Workspace::new("verify-ns");
    let file = ws.path().join("hosts.bound");
    let text = format!("{}\n", HOSTS);
    std::fs::write(&file, &text).unwrap();
    let ns_verify = |fake: &Fake| {
        let mut c = std::process::Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount -n --bind \"$1\" /etc/hosts && shift && exec \"$@\"")
            .arg("sh")
            .arg(&file)
            .arg(common::BIN)
            .args(["--root", "/", "--state-dir"])
            .arg(ws.state_dir())
            .args([
                "--color",
                "never",
                "verify",
                "--mirror",
                &fake.base,
                "--image",
                "probe",
                "--block-upstream",
                "--json",
            ])
            .env_remove("MIRRORCTL_ROOT")
            .env_remove("MIRRORCTL_STATE_DIR");
        common::guard(&mut c);
        // Docker Hub's names bypass the guard proxy, so the hosts block is what stops them
        // (with the proxy, the report would rightly say the block does not hold).
        let no_proxy = "127.0.0.1,localhost,::1,registry-1.docker.io,auth.docker.io,index.docker.io,production.cloudflare.docker.com";
        c.env("NO_PROXY", no_proxy).env("no_proxy", no_proxy);
        c
    };

    let fake = Fake::start(Mode::Good, Some(&file));
    let out = common::run_timeout(&mut ns_verify(&fake), Duration::from_secs(60));
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&out);
    assert_eq!(doc["hosts_file"], "/etc/hosts", "{out}");
    assert_eq!(doc["upstream_unreachable"], true, "{out}");
    assert_eq!(doc["hosts_restored"], true, "{out}");
    assert!(fake.state.block_seen.lock().unwrap()[2].1);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    let fake = Fake::start(Mode::FailPull2, Some(&file));
    let out = common::run_timeout(&mut ns_verify(&fake), Duration::from_secs(60));
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    let fake = Fake::start(Mode::HangPull2, Some(&file));
    let mut child = ns_verify(&fake)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(common::wait_until(Duration::from_secs(60), || fake
        .state
        .hanging
        .load(Ordering::SeqCst)));
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("0.0.0.0 registry-1.docker.io"));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

/// An https mirror (`mirrorctl serve --tls-cert`) whose CA is unknown: a TLS diagnosis naming
/// `--ca-cert`; with `--ca-cert` the preflight passes; `http://` to it is the reverse scheme
/// mismatch.
#[test]
fn tls_mirror_unknown_ca_then_ca_cert_and_http_to_https_port() {
    if !common::require(&["openssl"]) {
        return;
    }
    let ws = Workspace::new("verify-tls");
    let certs = Certs::make(&ws.aux("tls"));
    let serve = Serve::with_tls(&ws.aux("serve"), &certs);
    let addr = &serve.addr;

    let out = verify(&ws, &["--mirror", &format!("https://{addr}"), "--json"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = json(&out);
    assert_eq!(doc["preflight"]["error"]["kind"], "tls", "{out}");
    assert!(out.stdout.contains("--ca-cert"), "{out}");

    let out = verify(
        &ws,
        &[
            "--mirror",
            &format!("https://{addr}"),
            "--ca-cert",
            certs.ca.to_str().unwrap(),
            "--json",
        ],
    );
    let doc = json(&out);
    assert_eq!(doc["preflight"]["ok"], true, "{out}");
    // The upstream is a closed port: pull #1 fails with the mirror's 5xx/404, exit 1.
    assert_eq!(out.code(), Some(1), "{out}");

    let out = verify(&ws, &["--mirror", &format!("http://{addr}")]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stdout.contains(&format!("https://{addr}")),
        "no hint to use https: {out}"
    );
}

/// `--client podman --client skopeo`: fail before `arm --target registries` (naming
/// registries.conf), pass after it, through the mirror (its access log), and fail again when a
/// plain-HTTP mirror lacks `insecure = true`.
#[test]
fn clients_podman_and_skopeo_follow_registries_conf() {
    if !common::require(&["docker-registry", "skopeo", "podman", "unshare"]) {
        return;
    }
    let ws = Workspace::new("vpc"); // short: podman limits --runroot length
    let lab = Lab::start(&ws);
    let mirror = lab.mirror.url();
    let etc = ws.under_root("etc/containers");
    std::fs::create_dir_all(&etc).unwrap();
    let main_conf = "unqualified-search-registries = [\"docker.io\"]\n";
    std::fs::write(etc.join("registries.conf"), main_conf).unwrap();
    let verify_clients =
        || common::verify_clients(&ws, &mirror, "probe:multi", &["podman", "skopeo"], |_| {});
    let out = verify_clients();
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = json(&out);
    for (i, name) in ["podman", "skopeo"].iter().enumerate() {
        let c = &doc["clients"][i];
        assert_eq!(c["name"], *name, "{out}");
        assert_eq!(c["ok"], false, "{out}");
        let d = c["detail"].as_str().unwrap();
        assert!(d.contains("registries.conf"), "{out}");
        assert!(d.contains("--target registries"), "{out}");
    }

    run(mirrorctl(&ws).args(["arm", "--mirror", &mirror, "--target", "registries"])).assert_ok();
    let mark = lab.mirror.log_mark();
    let out = verify_clients();
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&out);
    for c in doc["clients"].as_array().unwrap() {
        assert_eq!(c["ok"], true, "{out}");
        assert!(
            c["detail"].as_str().unwrap().contains("90-mirrorctl.conf"),
            "{out}"
        );
    }
    let log = lab.mirror.requests_since(mark);
    // podman identifies as containers/<containers-image version>, skopeo as skopeo/<version>.
    assert_blob_requests_by(&log, &["containers/", "skopeo/"]);
    // Nothing of podman's storage or the namespaces is left in the root.
    let left: Vec<_> = std::fs::read_dir(ws.root().join("etc/containers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left.iter()
            .filter(|n| *n != "registries.conf" && *n != "registries.conf.d")
            .count(),
        0,
        "{left:?}"
    );

    // With --block-upstream, the report never tells the clients to add it: here the block (in
    // <root>/etc/hosts) does not hold for them, and they say why (the test's proxy guard).
    let out = common::verify_clients(&ws, &mirror, "probe:multi", &["podman", "skopeo"], |c| {
        c.arg("--block-upstream");
    });
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = json(&out);
    assert_eq!(doc["upstream_blocked"], true, "{out}");
    for c in doc["clients"].as_array().unwrap() {
        let d = c["detail"].as_str().unwrap();
        assert!(!d.contains("add --block-upstream"), "{out}");
        assert!(d.contains("the upstream was blocked, but"), "{out}");
    }

    // A drop-in that lists the plain-HTTP mirror without `insecure = true` would make them
    // try HTTPS and fall back: refused, naming that file.
    let dropin = etc.join("registries.conf.d/90-mirrorctl.conf");
    let text = std::fs::read_to_string(&dropin).unwrap();
    std::fs::write(&dropin, text.replace("insecure = true", "insecure = false")).unwrap();
    let out = verify_clients();
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = json(&out);
    for c in doc["clients"].as_array().unwrap() {
        let d = c["detail"].as_str().unwrap();
        assert!(
            d.contains("insecure = true") && d.contains("90-mirrorctl.conf"),
            "{out}"
        );
    }
}

/// A real nginx caching proxy (`proxy_cache` + `X-Cache-Status`) in front of the upstream:
/// pull #1 MISS, pull #2 HIT, proven by the header. The same nginx without `proxy_cache` (a
/// plain reverse proxy that passes the registry's own storage fingerprint through) is never
/// reported as a cache.
#[test]
fn nginx_caching_proxy_and_plain_reverse_proxy() {
    let mut bins = BINS.to_vec();
    bins.push("nginx");
    if !common::require(&bins) {
        return;
    }
    let ws = Workspace::new("verify-nginx");
    let lab = Lab::start(&ws);

    let caching = Nginx::start(&ws.aux("nginx-cache"), &lab.upstream.host(), true);
    let mark = lab.upstream.log_mark();
    let out = verify(
        &ws,
        &[
            "--mirror",
            &caching.url(),
            "--image",
            "probe:multi",
            "--json",
        ],
    );
    let doc = proven_miss_then_hit(&out);
    for r in doc["pulls"][1]["responses"].as_array().unwrap() {
        assert_eq!(r["cache"], "hit", "{r} in {out}");
        assert!(
            r["evidence"]
                .as_str()
                .unwrap()
                .contains("X-Cache-Status: HIT"),
            "{r} in {out}"
        );
    }
    assert!(
        doc["pulls"][0]["responses"][0]["evidence"]
            .as_str()
            .unwrap()
            .contains("X-Cache-Status: MISS"),
        "{out}"
    );
    // Pull #2 never reached the upstream: each blob went there once.
    let up = lab.upstream.requests_since(mark);
    for d in [
        &lab.image.amd64.config.digest,
        &lab.image.amd64.layer.digest,
    ] {
        let n = up
            .iter()
            .filter(|e| e.method == "GET" && e.path.ends_with(d.as_str()))
            .count();
        assert_eq!(n, 1, "{d}: {}", lines(&up));
    }

    let plain = Nginx::start(&ws.aux("nginx-plain"), &lab.upstream.host(), false);
    let out = verify(
        &ws,
        &["--mirror", &plain.url(), "--image", "probe:multi", "--json"],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = json(&out);
    for n in [0, 1] {
        assert_eq!(doc["pulls"][n]["cache"], "unknown", "{out}");
    }
    assert!(
        doc["verdict"].as_str().unwrap().contains("not a cache"),
        "{out}"
    );
    // The human summary says the same.
    let text = verify(&ws, &["--mirror", &plain.url(), "--image", "probe:multi"]);
    assert_eq!(text.code(), Some(1), "{text}");
    assert!(text.stdout.contains("— unknown ("), "{text}");
    assert!(text.stdout.contains("✗ not a cache"), "{text}");
}
