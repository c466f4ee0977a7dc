//! `mirrorctl serve` against a real upstream (`docker-registry`, seeded by skopeo) and, for the
//! failure cases, tiny upstreams written here (lying about a digest, stalling mid-body).
//! Everything on loopback; every process is killed on drop.

use crate::common::containerd::{self, Containerd};
use crate::common::containers::ContainersEnv;
use crate::common::http::{client, fetch, get, head, rt, Resp};
use crate::common::proof::{
    assert_through_mirror, UA_CONTAINERD, UA_DOCKERD, UA_PODMAN, UA_SKOPEO,
};
use crate::common::registry::{lines, Registry};
use crate::common::serve::Serve;
use crate::common::tls::Certs;
use crate::common::{self, sha256, AccessLogged, Seeded, Workspace};
use futures_util::StreamExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const OCI_ACCEPT: &str =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

// ---------------------------------------------------------------- HTTP front, no upstream

#[test]
fn refuses_push_bad_names_and_unknown_ns() {
    let ws = Workspace::new("serve-front");
    // Nothing listens on port 9: upstream traffic would fail, and none is expected.
    let s = Serve::start(
        &ws.aux("serve"),
        &ws.aux("cache"),
        &["--upstream", "http://127.0.0.1:9"],
    );
    let base = s.url();
    let r = get(&format!("{base}/v2/"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["docker-distribution-api-version"], "registry/2.0");

    let c = client();
    let rt = rt();
    for (method, path) in [
        ("POST", "/v2/library/probe/blobs/uploads/"),
        ("PUT", "/v2/library/probe/manifests/latest"),
        ("DELETE", "/v2/library/probe/manifests/latest"),
        ("PATCH", "/v2/library/probe/blobs/uploads/x"),
    ] {
        let r = rt.block_on(fetch(&c, method, &format!("{base}{path}"), &[]));
        assert_eq!(r.status, 405, "{method} {path}");
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["errors"][0]["code"], "UNSUPPORTED", "{method} {path}");
    }
    for (path, code) in [
        ("/v2/Library/probe/manifests/latest", "NAME_INVALID"),
        ("/v2/library/probe/manifests/-x", "TAG_INVALID"),
        ("/v2/library/probe/blobs/sha256:1234", "DIGEST_INVALID"),
        (
            "/v2/library/probe/blobs/md5:d41d8cd98f00b204e9800998ecf8427e",
            "DIGEST_INVALID",
        ),
        ("/v2/library/a..b/blobs/sha256:1234", "NAME_INVALID"),
    ] {
        let r = get(&format!("{base}{path}"), &[]);
        assert_eq!(r.status, 400, "{path}");
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["errors"][0]["code"], code, "{path}");
    }
    // Raw, so no client normalises the dot segments away.
    for raw in [
        "/v2/../../etc/passwd/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "/v2/library/%2e%2e/manifests/latest",
    ] {
        use std::io::{Read, Write};
        let mut t = std::net::TcpStream::connect(&s.addr).unwrap();
        write!(t, "GET {raw} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        t.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 400"), "{raw}: {out}");
        assert!(out.contains("NAME_INVALID"), "{raw}: {out}");
    }
    let r = get(
        &format!("{base}/v2/library/probe/manifests/latest?ns=ghcr.io"),
        &[],
    );
    assert_eq!(r.status, 404);
    assert!(String::from_utf8_lossy(r.body()).contains("ghcr.io"));
    // Upstream unreachable, nothing cached: a clear 502 OCI error, flagged as a miss.
    let r = get(&format!("{base}/v2/library/probe/manifests/latest"), &[]);
    assert_eq!(r.status, 502);
    assert!(
        r.cache_status().starts_with("mirrorctl; fwd=uri-miss"),
        "{}",
        r.cache_status()
    );
    let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(v["errors"][0]["code"], "UNAVAILABLE");
    let m = get(&format!("{base}/metrics"), &[]);
    let text = String::from_utf8_lossy(m.body()).into_owned();
    assert!(
        text.contains("mirrorctl_requests_total{kind=\"other\",cache=\"refused\"} 4"),
        "{text}"
    );
    assert!(text.contains("mirrorctl_cache_bytes 0"), "{text}");

    // SIGTERM: a clean, prompt exit.
    let mut s = s;
    unsafe { libc::kill(s.daemon.pid() as i32, libc::SIGTERM) };
    assert!(
        common::wait_until(Duration::from_secs(5), || !s.daemon.alive()),
        "still running 5 s after SIGTERM"
    );
    assert!(
        s.daemon.stderr().contains("shutting down"),
        "{}",
        s.daemon.tail(5)
    );
}

// ---------------------------------------------------------------- real upstream

/// skopeo (registries.conf mirror) and ctr (hosts.toml, `?ns=docker.io`) pull through serve;
/// second pulls are hits; upstream sees each blob GET once.
#[test]
fn real_clients_pull_through_and_hit_the_second_time() {
    if !common::require(&["docker-registry", "skopeo", "containerd", "ctr", "unshare"]) {
        return;
    }
    let ws = Workspace::new("serve-clients");
    let up = Seeded::start(&ws, None);
    let s = Serve::start(
        &ws.aux("serve"),
        &ws.aux("cache"),
        &["--upstream", &up.upstream.url()],
    );
    let upstream_mark = up.upstream.log_mark();

    // skopeo through a registries.conf mirror.
    let env = ContainersEnv::new(&ws.root(), &ws.aux("containers"));
    env.use_mirror(&s.addr);
    let mark = s.log_mark();
    env.skopeo_pull("docker.io/library/probe:latest", &[])
        .assert_ok();
    let first: Vec<_> = s.log_with_cache_status().into_iter().skip(mark).collect();
    let amd = &up.image.amd64;
    for blob in [&amd.config.digest, &amd.layer.digest] {
        let path = format!("/v2/library/probe/blobs/{blob}");
        let e = first
            .iter()
            .find(|(e, _)| e.path == path)
            .unwrap_or_else(|| {
                panic!(
                    "skopeo did not fetch {path} through serve:\n{}",
                    s.daemon.tail(30)
                )
            });
        assert_eq!(e.1, "mirrorctl; fwd=uri-miss; stored", "{path}");
        assert!(e.0.user_agent.starts_with(UA_SKOPEO));
    }
    let mark = s.log_mark();
    env.skopeo_pull("docker.io/library/probe:latest", &[])
        .assert_ok();
    let second: Vec<_> = s.log_with_cache_status().into_iter().skip(mark).collect();
    let served: Vec<_> = second
        .iter()
        .filter(|(e, _)| e.is_manifest_of("library/probe") || e.is_blob_of("library/probe"))
        .collect();
    assert!(!served.is_empty());
    for (e, cs) in &served {
        assert!(
            cs.starts_with("mirrorctl; hit"),
            "second skopeo pull: {} → {cs}",
            e.line()
        );
    }

    // ctr through hosts.toml: containerd adds ?ns=docker.io.
    let ctrd = Containerd::start(&ws.aux("containerd"));
    let hosts = ws.aux("certs.d");
    containerd::write_hosts_toml(&hosts, &s.url());
    let mark = s.log_mark();
    let out = ctrd.pull(
        &hosts,
        "docker.io/library/probe:multi",
        &["--platform", "linux/arm64"],
    );
    assert_through_mirror(&out, &s, mark, UA_CONTAINERD, "ctr pull :multi");
    let arm_layer = format!("/v2/library/probe/blobs/{}", up.image.arm64.layer.digest);
    assert!(s.requests_since(mark).iter().any(|e| e.path == arm_layer));
    ctrd.remove("docker.io/library/probe:multi").assert_ok();
    // A fresh content store would be needed to make ctr fetch blobs again; the manifest
    // resolution (HEAD by tag) at least must be a hit now.
    let mark = s.log_mark();
    ctrd.pull(
        &hosts,
        "docker.io/library/probe:multi",
        &["--platform", "linux/arm64"],
    )
    .assert_ok();
    let again: Vec<_> = s.log_with_cache_status().into_iter().skip(mark).collect();
    assert!(
        again
            .iter()
            .filter(|(e, _)| e.is_manifest_of("library/probe"))
            .all(|(_, cs)| cs.starts_with("mirrorctl; hit")),
        "{again:?}"
    );

    // Upstream: every blob fetched exactly once, whatever the clients did.
    let ups = up.upstream.requests_since(upstream_mark);
    for blob in [
        &amd.config.digest,
        &amd.layer.digest,
        &up.image.arm64.layer.digest,
    ] {
        let path = format!("/v2/library/probe/blobs/{blob}");
        let n = ups
            .iter()
            .filter(|e| e.method == "GET" && e.path == path)
            .count();
        assert_eq!(n, 1, "upstream GETs of {path}:\n{}", lines(&ups));
    }
    assert_eq!(
        ups.iter()
            .filter(|e| e.method == "GET" && e.path.contains("/blobs/"))
            .count(),
        4, /* amd64 config+layer, arm64 config+layer */
        "{}",
        lines(&ups)
    );
}

/// Single flight, Range, HEAD, tag TTL and revalidation, stale-if-error.
#[test]
fn one_upstream_fetch_ranges_ttl_and_stale_if_error() {
    if !common::require(&["docker-registry", "skopeo", "unshare"]) {
        return;
    }
    let ws = Workspace::new("serve-protocol");
    let mut up = Seeded::start(&ws, Some(8));
    let s = Serve::start(
        &ws.aux("serve"),
        &ws.aux("cache"),
        &["--upstream", &up.upstream.url(), "--tag-ttl", "2s"],
    );
    let big = up.image.big.clone().unwrap();
    let blob_path = format!("/v2/library/probe/blobs/{}", big.layer.digest);
    let url = format!("{}{blob_path}", s.url());

    // HEAD on an uncached blob: upstream HEAD only, nothing downloaded.
    let h = head(&url);
    assert_eq!(h.status, 200);
    assert_eq!(
        h.headers["content-length"],
        big.layer.size.to_string().as_str()
    );
    assert_eq!(h.cache_status(), "mirrorctl; fwd=uri-miss");
    assert_eq!(up.upstream.gets_since(0, &blob_path), 0);
    assert!(s.blob_files().is_empty());

    // 16 concurrent cold GETs: one upstream GET, 16 identical digest-correct bodies.
    let rt = rt();
    let c = client();
    let results: Vec<Resp> = rt.block_on(async {
        let futs = (0..16).map(|_| {
            let c = c.clone();
            let url = url.clone();
            tokio::spawn(async move { fetch(&c, "GET", &url, &[]).await })
        });
        let futs: Vec<_> = futs.collect(); // spawn all before awaiting any
        let mut v = Vec::new();
        for f in futs {
            v.push(f.await.unwrap());
        }
        v
    });
    let mut statuses: Vec<&str> = Vec::new();
    for r in &results {
        assert_eq!(r.status, 200);
        assert_eq!(sha256(r.body()), big.layer.digest);
        statuses.push(r.cache_status());
    }
    eprintln!("16-way cache statuses: {statuses:?}");
    assert_eq!(up.upstream.gets_since(0, &blob_path), 1, "{statuses:?}");
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == "mirrorctl; fwd=uri-miss; stored")
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .filter(|s| **s == "mirrorctl; fwd=uri-miss; collapsed")
            .count()
            >= 8,
        "most of 16 simultaneous requests must join the one download: {statuses:?}"
    );
    assert!(s
        .blob_files()
        .contains(&big.layer.digest["sha256:".len()..].to_string()));

    // Range on a hit.
    let r = get(&url, &[("Range", "bytes=100-199")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.cache_status(), "mirrorctl; hit");
    assert_eq!(r.body().len(), 100);
    assert_eq!(
        r.headers["content-range"],
        format!("bytes 100-199/{}", big.layer.size).as_str()
    );
    let full = &results[0].body()[100..200];
    assert_eq!(r.body(), full);
    let r = get(
        &url,
        &[("Range", format!("bytes={}-", big.layer.size).as_str())],
    );
    assert_eq!(r.status, 416);

    // Manifest by tag: miss, then a hit within the TTL (no upstream request at all).
    let tag_url = format!("{}/v2/library/probe/manifests/latest", s.url());
    let m1 = get(&tag_url, &[("Accept", OCI_ACCEPT)]);
    assert_eq!(m1.status, 200, "{:?}", m1.body);
    assert!(
        m1.cache_status()
            .starts_with("mirrorctl; fwd=uri-miss; stored; ttl="),
        "{}",
        m1.cache_status()
    );
    assert_eq!(sha256(m1.body()), up.image.amd64.manifest.digest);
    assert_eq!(
        m1.headers["content-type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        m1.headers["docker-content-digest"],
        up.image.amd64.manifest.digest.as_str()
    );
    let mark = up.upstream.log_mark();
    let m2 = get(&tag_url, &[("Accept", OCI_ACCEPT)]);
    assert!(
        m2.cache_status().starts_with("mirrorctl; hit; ttl="),
        "{}",
        m2.cache_status()
    );
    assert_eq!(m2.body(), m1.body());
    let by_digest = get(
        &format!(
            "{}/v2/library/probe/manifests/{}",
            s.url(),
            up.image.amd64.manifest.digest
        ),
        &[("Accept", OCI_ACCEPT)],
    );
    assert_eq!(by_digest.cache_status(), "mirrorctl; hit");
    assert!(
        up.upstream.requests_since(mark).is_empty(),
        "{}",
        lines(&up.upstream.requests_since(mark))
    );

    // A client that only takes Docker v2 manifests does not get the cached OCI one: upstream
    // decides (distribution answers 404 for an OCI manifest it cannot convert).
    let v2_only = get(
        &tag_url,
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
    );
    assert_eq!(
        v2_only.status,
        404,
        "{}",
        String::from_utf8_lossy(v2_only.body())
    );
    let mark = up.upstream.log_mark();

    // After the TTL: revalidated with one HEAD, no GET. (The sleep is the behaviour under
    // test: the 2 s `--tag-ttl` running out, which nothing else signals.)
    std::thread::sleep(Duration::from_millis(2100));
    let m3 = get(&tag_url, &[("Accept", OCI_ACCEPT)]);
    assert!(
        m3.cache_status()
            .starts_with("mirrorctl; fwd=stale; fwd-status=200"),
        "{}",
        m3.cache_status()
    );
    let since = up.upstream.requests_since(mark);
    assert_eq!(
        since
            .iter()
            .map(|e| (e.method.as_str(), e.path.as_str()))
            .collect::<Vec<_>>(),
        vec![("HEAD", "/v2/library/probe/manifests/latest")],
    );

    // tags/list is passed through.
    let t = get(&format!("{}/v2/library/probe/tags/list", s.url()), &[]);
    assert_eq!(t.status, 200);
    let v: serde_json::Value = serde_json::from_slice(t.body()).unwrap();
    assert!(
        v["tags"].as_array().unwrap().iter().any(|t| t == "latest"),
        "{v}"
    );

    // Upstream stopped: the tag is served stale (and says so), blobs are hits, an uncached
    // blob is a clear 502.
    up.upstream.daemon.stop();
    // The revalidated tag's 2 s TTL runs out again (the behaviour under test, as above).
    std::thread::sleep(Duration::from_millis(2100));
    let m4 = get(&tag_url, &[("Accept", OCI_ACCEPT)]);
    assert_eq!(m4.status, 200);
    assert!(
        m4.cache_status().starts_with("mirrorctl; fwd=stale"),
        "{}",
        m4.cache_status()
    );
    assert_eq!(m4.body(), m1.body());
    assert!(
        s.daemon
            .stderr()
            .contains("serving the last known manifest library/probe:latest"),
        "{}",
        s.daemon.tail(5)
    );
    let b = get(&url, &[]);
    assert_eq!(b.status, 200);
    assert_eq!(b.cache_status(), "mirrorctl; hit");
    let missing = get(
        &format!(
            "{}/v2/library/probe/blobs/{}",
            s.url(),
            up.image.arm64.layer.digest
        ),
        &[],
    );
    assert_eq!(missing.status, 502);
    let v: serde_json::Value = serde_json::from_slice(missing.body()).unwrap();
    assert_eq!(v["errors"][0]["code"], "UNAVAILABLE");

    let m = crate::common::http::metrics(&s.url());
    assert!(
        m.contains("mirrorctl_requests_total{kind=\"blob\",cache=\"collapsed\"}"),
        "{m}"
    );
    assert!(
        m.contains("mirrorctl_upstream_requests_total{method=\"GET\",kind=\"blob\"} 2"),
        "{m}"
    );
    assert!(m.contains("mirrorctl_inflight_fetches 0"), "{m}");
    assert!(m.contains("\nmirrorctl_served_memory_bytes_total "), "{m}");
}

// ---------------------------------------------------------------- a misbehaving upstream

const HONEST: u8 = 0;
const LYING: u8 = 1;
const STALLING: u8 = 2;

/// An upstream written here: serves one blob honestly, with wrong bytes (same length), or
/// half of it and then nothing; counts blob GETs.
struct FakeUpstream {
    _rt: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    gets: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    data: Vec<u8>,
    digest: String,
}

impl FakeUpstream {
    fn start(size: usize) -> FakeUpstream {
        use axum::response::IntoResponse;
        use std::sync::atomic::Ordering;
        use std::sync::Arc;
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let digest = sha256(&data);
        let gets = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mode = Arc::new(std::sync::atomic::AtomicU8::new(HONEST));
        let rt = rt();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (g, m, d, want) = (
            gets.clone(),
            mode.clone(),
            Arc::new(data.clone()),
            digest.clone(),
        );
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (g, m, d, want) = (g.clone(), m.clone(), d.clone(), want.clone());
            async move {
                if req.uri().path() != format!("/v2/test/blob/blobs/{want}") {
                    return axum::http::StatusCode::NOT_FOUND.into_response();
                }
                if req.method() == axum::http::Method::GET {
                    g.fetch_add(1, Ordering::SeqCst);
                }
                let len = d.len();
                let body = match m.load(Ordering::SeqCst) {
                    HONEST => axum::body::Body::from(d.to_vec()),
                    LYING => {
                        let mut bad = d.to_vec();
                        bad[len / 2] ^= 0xff;
                        axum::body::Body::from(bad)
                    }
                    _ => {
                        let half = bytes::Bytes::from(d[..len / 2].to_vec());
                        let s = futures_util::stream::once(
                            async move { Ok::<_, std::io::Error>(half) },
                        )
                        .chain(futures_util::stream::pending());
                        axum::body::Body::from_stream(s)
                    }
                };
                ([("content-length", len.to_string())], body).into_response()
            }
        });
        rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeUpstream {
            _rt: rt,
            addr,
            gets,
            mode,
            data,
            digest,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, std::sync::atomic::Ordering::SeqCst);
    }

    fn gets(&self) -> usize {
        self.gets.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn wrong_bytes_are_never_committed_and_refetched() {
    let ws = Workspace::new("serve-liar");
    let fake = FakeUpstream::start(3 << 20);
    fake.set(LYING);
    let s = Serve::start(
        &ws.aux("serve"),
        &ws.aux("cache"),
        &["--upstream", &format!("http://{}", fake.addr)],
    );
    let url = format!("{}/v2/test/blob/blobs/{}", s.url(), fake.digest);
    for n in 1..=2 {
        let r = get(&url, &[]);
        // Headers went out before the bytes were known bad: the body must be cut short.
        assert_eq!(r.status, 200);
        assert!(r.body.is_err(), "client got a complete body of wrong bytes");
        assert_eq!(
            fake.gets(),
            n,
            "each request after a mismatch fetches again"
        );
        assert!(s.blob_files().is_empty(), "{:?}", s.blob_files());
    }
    assert!(
        s.daemon.stderr().contains("discarded, not cached"),
        "{}",
        s.daemon.tail(10)
    );
    fake.set(HONEST);
    let r = get(&url, &[]);
    assert_eq!(r.cache_status(), "mirrorctl; fwd=uri-miss; stored");
    assert_eq!(r.body(), &fake.data[..]);
    assert_eq!(
        s.blob_files(),
        vec![fake.digest["sha256:".len()..].to_string()]
    );
    let r = get(&url, &[]);
    assert_eq!(r.cache_status(), "mirrorctl; hit");
    assert_eq!(fake.gets(), 3);
    let m = crate::common::http::metrics(&s.url());
    assert!(m.contains("mirrorctl_digest_mismatches_total 2"), "{m}");
}

#[test]
fn kill_9_mid_download_leaves_nothing_servable() {
    let ws = Workspace::new("serve-kill9");
    let fake = FakeUpstream::start(4 << 20);
    fake.set(STALLING);
    let up = format!("http://{}", fake.addr);
    let cache = ws.aux("cache");
    let mut s = Serve::start(&ws.aux("serve"), &cache, &["--upstream", &up]);
    let url = format!("{}/v2/test/blob/blobs/{}", s.url(), fake.digest);
    // Read part of the body as it streams (it is served while downloading), then kill -9.
    let rt = rt();
    let got = rt.block_on(async {
        let resp = client().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut stream = resp.bytes_stream();
        let mut got = 0usize;
        while got < (1 << 20) {
            got += stream.next().await.unwrap().unwrap().len();
        }
        got
    });
    assert!(got >= 1 << 20);
    // Range on a blob still downloading (half of it arrived, the rest never will): served
    // from the bytes already there, by joining the download.
    let r = get(&url, &[("Range", "bytes=1000-1999")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.cache_status(), "mirrorctl; fwd=uri-miss; collapsed");
    assert_eq!(r.body(), &fake.data[1000..2000]);
    assert_eq!(fake.gets(), 1);
    assert_eq!(
        s.temp_files().len(),
        1,
        "the partial download lives in a temp file"
    );
    unsafe { libc::kill(s.daemon.pid() as i32, libc::SIGKILL) };
    assert!(
        common::wait_until(Duration::from_secs(10), || !s.daemon.alive()),
        "still running 10 s after SIGKILL"
    );
    drop(s);

    let s = Serve::start(&ws.aux("serve2"), &cache, &["--upstream", &up]);
    assert_eq!(s.temp_files().len(), 0, "stray temp file removed at start");
    assert!(s.blob_files().is_empty());
    fake.set(HONEST);
    let url = format!("{}/v2/test/blob/blobs/{}", s.url(), fake.digest);
    let r = get(&url, &[]);
    assert_eq!(r.cache_status(), "mirrorctl; fwd=uri-miss; stored");
    assert_eq!(sha256(r.body()), fake.digest);
    assert_eq!(fake.gets(), 2);
}

/// `--max-size`: least recently used blobs go first; a re-request fetches again.
#[test]
fn max_size_evicts_least_recently_used() {
    if !common::require(&["docker-registry", "skopeo", "unshare"]) {
        return;
    }
    let ws = Workspace::new("serve-lru");
    let up = Seeded::start(&ws, Some(1));
    let big = up.image.big.clone().unwrap();
    let a = up.image.amd64.layer.clone();
    let b = up.image.arm64.layer.clone();
    let max = (big.layer.size + a.size + 16).to_string();
    let s = Serve::start(
        &ws.aux("serve"),
        &ws.aux("cache"),
        &[
            "--upstream",
            &up.upstream.url(),
            "--max-size",
            &max,
            "--json-log",
        ],
    );
    let url = |d: &str| format!("{}/v2/library/probe/blobs/{d}", s.url());
    assert_eq!(
        get(&url(&a.digest), &[]).cache_status(),
        "mirrorctl; fwd=uri-miss; stored"
    );
    assert_eq!(
        get(&url(&b.digest), &[]).cache_status(),
        "mirrorctl; fwd=uri-miss; stored"
    );
    assert_eq!(get(&url(&a.digest), &[]).cache_status(), "mirrorctl; hit");
    assert_eq!(
        get(&url(&big.layer.digest), &[]).cache_status(),
        "mirrorctl; fwd=uri-miss; stored"
    );
    let hex = |d: &str| d["sha256:".len()..].to_string();
    let left = s.blob_files();
    assert!(
        !left.contains(&hex(&b.digest)),
        "b was least recently used: {left:?}"
    );
    assert!(
        left.contains(&hex(&a.digest)) && left.contains(&hex(&big.layer.digest)),
        "{left:?}"
    );
    let r = get(&url(&b.digest), &[]);
    assert_eq!(r.cache_status(), "mirrorctl; fwd=uri-miss; stored");
    assert_eq!(sha256(r.body()), b.digest);
    let m = crate::common::http::metrics(&s.url());
    assert!(m.contains("mirrorctl_evictions_total 2"), "{m}");
    // --json-log: one JSON object per request on stderr.
    let lines: Vec<serde_json::Value> = s
        .daemon
        .stderr()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(lines.len() >= 6, "{}", s.daemon.tail(20));
    assert!(lines
        .iter()
        .any(|v| v["cache_status"] == "mirrorctl; hit" && v["status"] == 200));
}

/// Upstream with htpasswd (Basic) auth: serve uses its configured credentials and never
/// shows them; clients of serve authenticate against serve's own htpasswd.
#[test]
fn basic_auth_upstream_and_htpasswd_clients() {
    if !common::require(&["docker-registry", "skopeo", "unshare"]) {
        return;
    }
    let ws = Workspace::new("serve-auth");
    let mut up = Seeded::start(&ws, None);
    up.upstream.daemon.stop();
    // The same storage, now behind htpasswd auth.
    let dir = ws.aux("upstream-auth");
    std::fs::write(
        dir.join("htpasswd"),
        common::htpasswd_line("alice", "upstream-secret-42"),
    )
    .unwrap();
    let reg = Registry::with_config(&dir, "auth", |port| {
        format!(
            "version: 0.1\nlog:\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: x\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            up.upstream.dir.join("data").display(),
            dir.join("htpasswd").display()
        )
    });

    std::fs::write(ws.aux("pw").join("upstream"), "upstream-secret-42\n").unwrap();
    std::fs::write(
        ws.aux("pw").join("htpasswd"),
        common::htpasswd_line("bob", "client-pw"),
    )
    .unwrap();
    let pwfile = ws.aux("pw").join("upstream");
    let htfile = ws.aux("pw").join("htpasswd");
    let s = Serve::start(
        &ws.aux("serve"),
        &ws.aux("cache"),
        &[
            "--upstream",
            &reg.url(),
            "--upstream-username",
            "alice",
            "--upstream-password-file",
            pwfile.to_str().unwrap(),
            "--htpasswd",
            htfile.to_str().unwrap(),
        ],
    );
    let tag_url = format!("{}/v2/library/probe/manifests/latest", s.url());
    let r = get(&format!("{}/v2/", s.url()), &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["www-authenticate"], "Basic realm=\"mirrorctl\"");
    let bad = format!("Basic {}", base64_of("bob:nope"));
    assert_eq!(get(&tag_url, &[("Authorization", &bad)]).status, 401);
    let good = format!("Basic {}", base64_of("bob:client-pw"));
    let r = get(
        &tag_url,
        &[("Authorization", &good), ("Accept", OCI_ACCEPT)],
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(r.body()));
    assert_eq!(sha256(r.body()), up.image.amd64.manifest.digest);
    let blob = format!(
        "{}/v2/library/probe/blobs/{}",
        s.url(),
        up.image.amd64.layer.digest
    );
    let r = get(&blob, &[("Authorization", &good)]);
    assert_eq!(sha256(r.body()), up.image.amd64.layer.digest);
    // /metrics stays open; the upstream password appears nowhere.
    assert_eq!(get(&format!("{}/metrics", s.url()), &[]).status, 200);
    let logs = s.daemon.stdout() + &s.daemon.stderr();
    assert!(!logs.contains("upstream-secret-42"), "{logs}");
    assert!(
        !logs.contains(&base64_of("alice:upstream-secret-42")),
        "{logs}"
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn serves_https_with_a_cert_and_key() {
    if !common::require(&["openssl"]) {
        return;
    }
    let ws = Workspace::new("serve-tls");
    let certs = Certs::make(&ws.aux("tls"));
    let s = Serve::with_tls(&ws.aux("serve"), &certs);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca).unwrap()).unwrap();
    let c = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let r = rt().block_on(fetch(&c, "GET", &format!("https://{}/v2/", s.addr), &[]));
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["docker-distribution-api-version"], "registry/2.0");
    // Plain HTTP on the TLS port gets nowhere.
    assert!(rt()
        .block_on(client().get(format!("http://{}/v2/", s.addr)).send())
        .map(|r| r.status() != 200)
        .unwrap_or(true));
}

/// dockerd (daemon.json registry-mirrors) and podman (registries.conf) pull through serve;
/// dockerd's second pull (after rmi) is served from the cache.
#[test]
fn dockerd_and_podman_pull_through() {
    if !common::require(&[
        "docker-registry",
        "skopeo",
        "unshare",
        "dockerd",
        "containerd",
        "podman",
    ]) {
        return;
    }
    let ws = Workspace::new("sd"); // short: podman limits --runroot to 50 chars
    let up = Seeded::start(&ws, None);
    let s = Serve::start(
        &ws.aux("serve"),
        &ws.aux("cache"),
        &["--upstream", &up.upstream.url()],
    );
    let etc_docker = ws.root().join("etc/docker");
    std::fs::create_dir_all(&etc_docker).unwrap();
    std::fs::write(
        etc_docker.join("daemon.json"),
        format!("{{\"registry-mirrors\": [\"{}\"]}}\n", s.url()),
    )
    .unwrap();
    let dockerd = common::dockerd::Dockerd::start(&ws.root(), &ws.aux("dockerd"));
    let mark = s.log_mark();
    let out = dockerd.pull("docker.io/library/probe:latest", &[]);
    assert_through_mirror(&out, &s, mark, UA_DOCKERD, "docker pull");
    dockerd.rmi("docker.io/library/probe:latest").assert_ok();
    let mark = s.log_mark();
    dockerd
        .pull("docker.io/library/probe:latest", &[])
        .assert_ok();
    let second: Vec<_> = s
        .log_with_cache_status()
        .into_iter()
        .skip(mark)
        .filter(|(e, _)| e.is_manifest_of("library/probe") || e.is_blob_of("library/probe"))
        .collect();
    assert!(
        second.iter().any(|(e, _)| e.is_blob_of("library/probe")),
        "{second:?}"
    );
    assert!(
        second
            .iter()
            .all(|(_, cs)| cs.starts_with("mirrorctl; hit")),
        "{second:?}"
    );

    let env = ContainersEnv::new(&ws.root(), &ws.aux("p"));
    env.use_mirror(&s.addr);
    let mark = s.log_mark();
    let out = env.podman_pull("docker.io/library/probe:latest", &[]);
    assert_through_mirror(&out, &s, mark, UA_PODMAN, "podman pull");
    let podman: Vec<_> = s.log_with_cache_status().into_iter().skip(mark).collect();
    assert!(
        podman
            .iter()
            .filter(|(e, _)| e.is_blob_of("library/probe"))
            .all(|(_, cs)| cs == "mirrorctl; hit"),
        "{podman:?}"
    );
    // The upstream saw each blob once across dockerd (twice) and podman.
    let ups = up.upstream.access_log();
    for blob in [&up.image.amd64.config.digest, &up.image.amd64.layer.digest] {
        assert_eq!(
            up.upstream
                .gets_since(0, &format!("/v2/library/probe/blobs/{blob}")),
            1,
            "{}",
            lines(&ups)
        );
    }
}

/// `?ns=` picks the named upstream; blobs are stored once for every upstream and repository.
#[test]
fn ns_routes_to_named_upstreams_and_blobs_are_shared() {
    let ws = Workspace::new("serve-ns");
    let fake = FakeUpstream::start(1 << 20);
    let s = Serve::start(
        &ws.aux("serve"),
        &ws.aux("cache"),
        &[
            "--upstream",
            "http://127.0.0.1:9",
            "--upstream",
            &format!("ghcr.io=http://{}", fake.addr),
        ],
    );
    let path = format!("/v2/test/blob/blobs/{}", fake.digest);
    // No ns: the default upstream (unreachable here).
    assert_eq!(get(&format!("{}{path}", s.url()), &[]).status, 502);
    let r = get(&format!("{}{path}?ns=ghcr.io", s.url()), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.cache_status(), "mirrorctl; fwd=uri-miss; stored");
    assert_eq!(r.body(), &fake.data[..]);
    // Same digest, other upstream and other repository: one stored copy answers.
    for url in [
        format!("{}{path}", s.url()),
        format!(
            "{}/v2/other/repo/blobs/{}?ns=docker.io",
            s.url(),
            fake.digest
        ),
    ] {
        let r = get(&url, &[]);
        assert_eq!(r.cache_status(), "mirrorctl; hit", "{url}");
        assert_eq!(r.body(), &fake.data[..]);
    }
    assert_eq!(fake.gets(), 1);
    assert_eq!(s.blob_files().len(), 1);
}

/// SIGTERM with a download stuck mid-body: the process still exits (after the grace period),
/// commits nothing and leaves no temp file.
#[test]
fn sigterm_mid_download_commits_nothing() {
    let ws = Workspace::new("serve-term");
    let fake = FakeUpstream::start(2 << 20);
    fake.set(STALLING);
    let mut s = Serve::start(
        &ws.aux("serve"),
        &ws.aux("cache"),
        &["--upstream", &format!("http://{}", fake.addr)],
    );
    let url = format!("{}/v2/test/blob/blobs/{}", s.url(), fake.digest);
    let reader = std::thread::spawn(move || get(&url, &[]));
    // Mid-download: serve has written the half the upstream sends to its temp file, and waits
    // for the rest (which never comes).
    let half = fake.data.len() as u64 / 2;
    assert!(
        common::wait_until(Duration::from_secs(10), || fake.gets() == 1
            && s.temp_files().iter().any(|(_, len)| *len == half)),
        "the download never got half way: {} GETs, temp files {:?}",
        fake.gets(),
        s.temp_files()
    );
    unsafe { libc::kill(s.daemon.pid() as i32, libc::SIGTERM) };
    assert!(
        common::wait_until(Duration::from_secs(20), || !s.daemon.alive()),
        "still running 20 s after SIGTERM"
    );
    let r = reader.join().unwrap();
    assert!(r.body.is_err(), "the stuck download cannot complete");
    assert!(s.cache.join("blobs/sha256").is_dir());
    let left = s.blob_files();
    assert!(left.is_empty(), "{left:?}");
}

/// A token issuer for a real `docker-registry` in token-auth mode: RS256 JWTs signed with a
/// self-signed key (by the `openssl` CLI), the cert in the header's `x5c`. Wants Basic
/// `carol:token-secret-7`; counts every token request and records each scope asked for.
struct TokenIssuer {
    _rt: tokio::runtime::Runtime,
    realm: String,
    cert: PathBuf,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl TokenIssuer {
    fn start(dir: &Path) -> TokenIssuer {
        use axum::response::IntoResponse;
        use std::sync::Arc;
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=mirrorctl-test-issuer", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let std_b64 = |b: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(b)
        };
        let url_b64 = |b: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        };
        let header = url_b64(
            serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [std_b64(&der)]})
                .to_string()
                .as_bytes(),
        );
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let rt = rt();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let (seen, key2) = (requests.clone(), key.clone());
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (seen, key, header) = (seen.clone(), key2.clone(), header.clone());
            async move {
                let q: Vec<(String, String)> = url::form_urlencoded::parse(
                    req.uri().query().unwrap_or("").as_bytes(),
                )
                .into_owned()
                .collect();
                let scope = q
                    .iter()
                    .find(|(k, _)| k == "scope")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                seen.lock().unwrap().push(scope.clone());
                let authz = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if authz != format!("Basic {}", base64_of("carol:token-secret-7")) {
                    return (axum::http::StatusCode::UNAUTHORIZED, "bad credentials")
                        .into_response();
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let access: Vec<serde_json::Value> = scope
                    .split(' ')
                    .filter_map(|s| {
                        let mut p = s.split(':');
                        let (t, n, a) = (p.next()?, p.next()?, p.next()?);
                        Some(serde_json::json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
                    })
                    .collect();
                let claims = serde_json::json!({
                    "iss": "mirrorctl-test-issuer", "sub": "carol", "aud": "test-registry",
                    "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", rand_id()),
                    "access": access,
                });
                let signing_input = format!("{header}.{}", url_b64(claims.to_string().as_bytes()));
                let sig = tokio::task::spawn_blocking(move || {
                    use std::io::Write as _;
                    let mut c = Command::new("openssl")
                        .args(["dgst", "-sha256", "-sign"])
                        .arg(&key)
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .spawn()
                        .unwrap();
                    c.stdin.take().unwrap().write_all(signing_input.as_bytes()).unwrap();
                    let out = c.wait_with_output().unwrap();
                    assert!(out.status.success());
                    format!("{signing_input}.{}", url_b64(&out.stdout))
                })
                .await
                .unwrap();
                (
                    [("content-type", "application/json")],
                    serde_json::json!({"token": sig, "expires_in": 300}).to_string(),
                )
                    .into_response()
            }
        });
        rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
        TokenIssuer {
            _rt: rt,
            realm,
            cert,
            requests,
        }
    }
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// Upstream `docker-registry` with token auth (a real JWT-verifying registry; the issuer is the
/// test's): serve follows the Bearer challenge with its configured credentials, caches the
/// token per repository, and never shows credentials or tokens; without credentials the
/// client gets a clear refusal and nothing is cached.
#[test]
fn token_auth_upstream() {
    if !common::require(&["docker-registry", "skopeo", "openssl", "unshare"]) {
        return;
    }
    let ws = Workspace::new("serve-token");
    let mut up = Seeded::start(&ws, None);
    up.upstream.daemon.stop();
    let dir = ws.aux("upstream-token");
    let issuer = TokenIssuer::start(&dir);
    let reg = Registry::with_config(&dir, "token", |port| {
        format!(
            "version: 0.1\nlog:\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: x\nauth:\n  token:\n    realm: {}\n    service: test-registry\n\
             \x20   issuer: mirrorctl-test-issuer\n    rootcertbundle: {}\n",
            up.upstream.dir.join("data").display(),
            issuer.realm,
            issuer.cert.display()
        )
    });
    let upstream = reg.url();
    // The registry really wants a token.
    let r = get(
        &format!("{upstream}/v2/library/probe/manifests/latest"),
        &[],
    );
    assert_eq!(r.status, 401);
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer realm="));

    // Without credentials: the issuer refuses, the client sees a 401, nothing is cached.
    let anon = Serve::start(
        &ws.aux("serve-anon"),
        &ws.aux("cache-anon"),
        &["--upstream", &upstream],
    );
    let tag_url = format!("{}/v2/library/probe/manifests/latest", anon.url());
    let r = get(&tag_url, &[("Accept", OCI_ACCEPT)]);
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(r.body()));
    assert!(
        anon.daemon
            .stderr()
            .contains("refuses anonymous pulls of `library/probe`"),
        "{}",
        anon.daemon.stderr()
    );
    assert!(anon.blob_files().is_empty());
    drop(anon);
    issuer.requests.lock().unwrap().clear();

    std::fs::write(ws.aux("pw").join("upstream"), "token-secret-7\n").unwrap();
    let pwfile = ws.aux("pw").join("upstream");
    let s = Serve::start(
        &ws.aux("serve"),
        &ws.aux("cache"),
        &[
            "--upstream",
            &upstream,
            "--upstream-username",
            "carol",
            "--upstream-password-file",
            pwfile.to_str().unwrap(),
        ],
    );
    let env = ContainersEnv::new(&ws.root(), &ws.aux("containers"));
    env.use_mirror(&s.addr);
    for _ in 0..2 {
        env.skopeo_pull(
            "docker.io/library/probe:latest",
            &["--override-arch", "amd64"],
        )
        .assert_ok();
    }
    let blob = format!(
        "{}/v2/library/probe/blobs/{}",
        s.url(),
        up.image.amd64.layer.digest
    );
    let r = get(&blob, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(sha256(r.body()), up.image.amd64.layer.digest);
    // One token for the repository, reused for the manifest and every blob.
    let scopes = issuer.requests.lock().unwrap().clone();
    assert_eq!(
        scopes,
        vec!["repository:library/probe:pull".to_string()],
        "token requests"
    );
    // Second pull: hits.
    let hits = s
        .log_with_cache_status()
        .iter()
        .filter(|(_, cs)| cs == "mirrorctl; hit")
        .count();
    assert!(hits >= 2, "{:?}", s.log_with_cache_status());
    let logs = s.daemon.stdout() + &s.daemon.stderr();
    assert!(!logs.contains("token-secret-7"), "{logs}");
    assert!(!logs.contains(&base64_of("carol:token-secret-7")), "{logs}");
    assert!(!logs.contains("eyJ"), "a token reached the log: {logs}");
    let metrics = get(&format!("{}/metrics", s.url()), &[]);
    let m = String::from_utf8_lossy(metrics.body()).to_string();
    assert!(!m.contains("eyJ") && !m.contains("token-secret-7"));
}
