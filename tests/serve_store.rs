//! `mirrorctl serve`'s store under stress, against a real upstream (`docker-registry`, seeded
//! by skopeo): blobs torn or corrupted between two runs (crash safety). Everything on loopback;
//! every process is killed on drop.
#![allow(dead_code)]

mod common;

use common::registry::Registry;
use common::serve::Serve;
use common::Workspace;
use sha2::{Digest as _, Sha256};
use std::time::Duration;

struct Resp {
    status: u16,
    cache_status: String,
    body: Result<Vec<u8>, String>,
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn fetch(c: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Resp {
    try_fetch(c, url, headers).await.expect("request sent")
}

/// A GET whose response may be aborted before its headers are complete (`Err`).
async fn try_fetch(
    c: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Resp, reqwest::Error> {
    let mut r = c.get(url);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await?;
    let status = resp.status().as_u16();
    let cache_status = resp
        .headers()
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| format!("{e:?}"));
    Ok(Resp {
        status,
        cache_status,
        body,
    })
}

fn get(url: &str, headers: &[(&str, &str)]) -> Resp {
    rt().block_on(fetch(&client(), url, headers))
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn metrics(base: &str) -> String {
    String::from_utf8(get(&format!("{base}/metrics"), &[]).body.unwrap()).unwrap()
}

/// The value of one metric line (`name{labels}` exactly), 0 when absent.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

fn upstream_gets(up: &Registry, path: &str) -> usize {
    up.access_log()
        .iter()
        .filter(|e| e.method == "GET" && e.path == path)
        .count()
}

struct Up {
    upstream: Registry,
    image: common::image::ProbeImage,
}

fn seeded_upstream(ws: &Workspace, big_mb: Option<usize>) -> Up {
    let image = common::image::ProbeImage::build(&ws.aux("image"), big_mb);
    let upstream = Registry::upstream(&ws.aux("upstream"));
    common::registry::seed_upstream(&upstream, &image, &ws.aux("seed"));
    Up { upstream, image }
}

// ---------------------------------------------------------------- crash safety

/// Between two runs, one cached blob is cut short (as a crash mid-write leaves it) and two keep
/// their length but get a wrong byte (bit rot, or a torn write of the right size). The second
/// run deletes the short one at start (one log line); the others are served as hits until their
/// bytes are read back and fail their digest: the full GET is aborted, the `Range` one is
/// checked before a byte goes out. Either way no client gets wrong bytes with a success, and
/// the next request fetches the blob upstream again and gets it right.
#[test]
fn torn_and_corrupt_blobs_are_refetched_after_a_restart() {
    if !common::require(&["docker-registry", "skopeo", "unshare"]) {
        return;
    }
    let ws = Workspace::new("store-crash");
    let up = seeded_upstream(&ws, Some(1));
    let cache = ws.aux("cache");
    let args = ["--upstream", &up.upstream.url()];
    let big = up.image.big.clone().unwrap().layer;
    let (cut, rot, rot_ranged, intact) = (
        up.image.amd64.layer.clone(),
        big.clone(),
        up.image.arm64.layer.clone(),
        up.image.amd64.config.clone(),
    );
    let blobs = [&cut, &rot, &rot_ranged, &intact];
    let path = |d: &str| format!("/v2/library/probe/blobs/{d}");
    let file = |d: &str| cache.join("blobs/sha256").join(&d["sha256:".len()..]);

    let mut s = Serve::start(&ws.aux("run1"), &cache, &args);
    for b in blobs {
        let r = get(&format!("{}{}", s.url(), path(&b.digest)), &[]);
        assert_eq!(r.cache_status, "mirrorctl; fwd=uri-miss; stored");
        assert_eq!(sha256(r.body.as_ref().unwrap()), b.digest);
    }
    // Durable once recorded in the index log (by the committer, off the clients' path).
    let log = cache.join("blobs.log");
    let recorded = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        blobs.iter().all(|b| text.contains(&b.digest))
    };
    assert!(common::wait_until(Duration::from_secs(10), recorded));
    s.daemon.stop();

    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(file(&cut.digest))
        .unwrap();
    f.set_len(cut.size / 2).unwrap();
    drop(f);
    for b in [&rot, &rot_ranged] {
        let mut bytes = std::fs::read(file(&b.digest)).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x20;
        std::fs::write(file(&b.digest), bytes).unwrap();
    }

    let s = Serve::start(&ws.aux("run2"), &cache, &args);
    let stderr = s.daemon.stderr();
    let about_cut: Vec<&str> = stderr.lines().filter(|l| l.contains(&cut.digest)).collect();
    assert_eq!(about_cut.len(), 1, "{stderr}");
    assert!(
        about_cut[0].contains(&format!(
            "is {} bytes on disk but was stored with {}",
            cut.size / 2,
            cut.size
        )),
        "{stderr}"
    );
    assert!(
        !file(&cut.digest).exists(),
        "the short blob is deleted at start"
    );

    // The short blob: gone, so a plain miss, fetched again.
    let r = get(&format!("{}{}", s.url(), path(&cut.digest)), &[]);
    assert_eq!(r.cache_status, "mirrorctl; fwd=uri-miss; stored");
    assert_eq!(sha256(r.body.as_ref().unwrap()), cut.digest);
    assert_eq!(upstream_gets(&up.upstream, &path(&cut.digest)), 2);

    // The corrupt blob (1 MiB, 4 chunks), read whole: a hit whose body is cut off before its
    // last chunk, then a refetch.
    let url = format!("{}{}", s.url(), path(&rot.digest));
    let r = get(&url, &[]);
    assert_eq!((r.status, r.cache_status.as_str()), (200, "mirrorctl; hit"));
    assert!(
        r.body.as_ref().is_err(),
        "a complete body of wrong bytes was served"
    );
    assert!(!file(&rot.digest).exists(), "the corrupt blob is deleted");
    let r = get(&url, &[]);
    assert_eq!(r.cache_status, "mirrorctl; fwd=uri-miss; stored");
    assert_eq!(sha256(r.body.as_ref().unwrap()), rot.digest);
    assert_eq!(upstream_gets(&up.upstream, &path(&rot.digest)), 2);
    assert!(
        s.daemon.stderr().contains(&format!(
            "cached blob {} does not hash to its digest",
            rot.digest
        )),
        "{}",
        s.daemon.tail(10)
    );

    // The other corrupt blob (a small one), asked for a range first: checked whole before
    // answering, so the range comes from a fresh download.
    let url = format!("{}{}", s.url(), path(&rot_ranged.digest));
    let r = get(&url, &[("Range", "bytes=10-19")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.cache_status, "mirrorctl; fwd=uri-miss; stored");
    let right = std::fs::read(
        up.image
            .dir
            .join("blobs/sha256")
            .join(&rot_ranged.digest["sha256:".len()..]),
    )
    .unwrap();
    assert_eq!(r.body.as_ref().unwrap(), &right[10..20]);
    assert_eq!(upstream_gets(&up.upstream, &path(&rot_ranged.digest)), 2);

    // The intact blob: a hit, read back and verified on the way, not fetched again.
    let r = get(&format!("{}{}", s.url(), path(&intact.digest)), &[]);
    assert_eq!(r.cache_status, "mirrorctl; hit");
    assert_eq!(sha256(r.body.as_ref().unwrap()), intact.digest);
    assert_eq!(upstream_gets(&up.upstream, &path(&intact.digest)), 1);
    let m = metrics(&s.url());
    assert_eq!(metric(&m, "mirrorctl_cache_corrupt_blobs_total"), 3, "{m}");
}
