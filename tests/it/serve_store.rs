//! `mirrorctl serve`'s store under stress, against a real upstream (`docker-registry`, seeded
//! by skopeo): blobs torn or corrupted between two runs (crash safety), and a cache on a tiny
//! tmpfs (a full disk must not break pulls). Everything on loopback; every process is killed on
//! drop; the tmpfs lives in a private mount namespace that dies with the server.
use crate::common::http::{client, fetch, get, metric, metrics, rt, Resp};
use crate::common::registry::Registry;
use crate::common::serve::Serve;
use crate::common::{self, sha256, AccessLogged, Daemon, Seeded, Workspace};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn upstream_gets(up: &Registry, path: &str) -> usize {
    up.gets_since(0, path)
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
    let up = Seeded::start(&ws, Some(1));
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
        assert_eq!(r.cache_status(), "mirrorctl; fwd=uri-miss; stored");
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
    assert_eq!(r.cache_status(), "mirrorctl; fwd=uri-miss; stored");
    assert_eq!(sha256(r.body.as_ref().unwrap()), cut.digest);
    assert_eq!(upstream_gets(&up.upstream, &path(&cut.digest)), 2);

    // The corrupt blob (1 MiB, 4 chunks), read whole: a hit whose body is cut off before its
    // last chunk, then a refetch.
    let url = format!("{}{}", s.url(), path(&rot.digest));
    let r = get(&url, &[]);
    assert_eq!((r.status, r.cache_status()), (200, "mirrorctl; hit"));
    assert!(
        r.body.as_ref().is_err(),
        "a complete body of wrong bytes was served"
    );
    assert!(!file(&rot.digest).exists(), "the corrupt blob is deleted");
    let r = get(&url, &[]);
    assert_eq!(r.cache_status(), "mirrorctl; fwd=uri-miss; stored");
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
    assert_eq!(r.cache_status(), "mirrorctl; fwd=uri-miss; stored");
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
    assert_eq!(r.cache_status(), "mirrorctl; hit");
    assert_eq!(sha256(r.body.as_ref().unwrap()), intact.digest);
    assert_eq!(upstream_gets(&up.upstream, &path(&intact.digest)), 1);
    let m = metrics(&s.url());
    assert_eq!(metric(&m, "mirrorctl_cache_corrupt_blobs_total"), 3, "{m}");
}

// ---------------------------------------------------------------- a full disk

/// `mirrorctl serve` with its cache on a tmpfs of `size` in a private mount namespace (made by
/// `unshare`, gone with the process): the test cannot see into it, only through HTTP.
struct TmpfsServe {
    daemon: Daemon,
    url: String,
}

impl TmpfsServe {
    fn start(dir: &Path, size: &str, upstream: &str) -> TmpfsServe {
        let cache = dir.join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount -n -t tmpfs -o size=\"$1\" tmpfs \"$2\" && shift 2 && exec \"$@\"")
            .args(["sh", size])
            .arg(&cache)
            .arg(env!("CARGO_BIN_EXE_mirrorctl"))
            .args(["serve", "--listen", "127.0.0.1:0", "--upstream", upstream])
            .arg("--cache-dir")
            .arg(&cache);
        common::guard(&mut cmd);
        let mut daemon = Daemon::spawn("mirrorctl-serve", cmd, dir);
        daemon
            .wait_ready("address on stdout", Duration::from_secs(20), |d| {
                d.stdout().contains('\n')
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = daemon.stdout().lines().next().unwrap().trim().to_string();
        TmpfsServe {
            daemon,
            url: format!("http://{addr}"),
        }
    }

    /// Log lines (not access log lines) that say the cache could not store something.
    fn store_warnings(&self) -> Vec<String> {
        self.daemon
            .stderr()
            .lines()
            .filter(|l| l.starts_with("warning: cache cannot store"))
            .map(String::from)
            .collect()
    }
}

/// `n` GETs of `url` at once, all sent before any is read.
fn concurrent_gets(url: &str, n: usize) -> Vec<Resp> {
    let rt = rt();
    let c = client();
    rt.block_on(async {
        let futs: Vec<_> = (0..n)
            .map(|_| {
                let (c, url) = (c.clone(), url.to_string());
                tokio::spawn(async move { fetch(&c, "GET", &url, &[]).await })
            })
            .collect();
        let mut v = Vec::new();
        for f in futs {
            v.push(f.await.unwrap());
        }
        v
    })
}

/// A 4 MiB blob on a 3 MiB cache: every one of 3 concurrent clients gets it whole and right
/// (distribution does too; serve used to cut them all off at 2.5 MB); the failure is counted
/// and logged once; a blob that fits is still stored and served as a hit.
#[test]
fn a_full_disk_streams_every_reader_whole_and_keeps_serving_hits() {
    if !common::require(&["docker-registry", "skopeo", "unshare", "mount"]) {
        return;
    }
    let ws = Workspace::new("store-full");
    let up = Seeded::start(&ws, Some(4));
    let big = up.image.big.clone().unwrap().layer;
    assert!(big.size > 4 << 20);
    let s = TmpfsServe::start(&ws.aux("serve"), "3m", &up.upstream.url());
    let url = |d: &str| format!("{}/v2/library/probe/blobs/{d}", s.url);

    let results = concurrent_gets(&url(&big.digest), 3);
    let path = format!("/v2/library/probe/blobs/{}", big.digest);
    let statuses: Vec<&str> = results.iter().map(|r| r.cache_status()).collect();
    let gets = upstream_gets(&up.upstream, &path);
    eprintln!("3 concurrent clients: {statuses:?}, {gets} upstream GETs");
    for r in &results {
        assert_eq!(r.status, 200);
        let body = r.body.as_ref().expect("the whole body");
        assert_eq!(body.len() as u64, big.size);
        assert_eq!(sha256(body), big.digest);
    }
    let m = metrics(&s.url);
    let no_space = "mirrorctl_store_write_errors_total{kind=\"no-space\"}";
    assert!(metric(&m, no_space) >= 1, "{m}");
    assert!(m.contains("mirrorctl_cache_blobs 0\n"), "{m}");
    assert_eq!(s.store_warnings().len(), 1, "{}", s.daemon.tail(20));

    // Again: not stored this time either, whole again, and no new log line.
    let r = get(&url(&big.digest), &[]);
    assert_eq!(sha256(r.body.as_ref().unwrap()), big.digest);
    assert!(metric(&metrics(&s.url), no_space) >= 2);
    assert_eq!(s.store_warnings().len(), 1, "{}", s.daemon.tail(20));

    // A small blob fits: stored, then a hit.
    let small = &up.image.amd64.layer;
    let r = get(&url(&small.digest), &[]);
    assert_eq!(r.cache_status(), "mirrorctl; fwd=uri-miss; stored");
    assert_eq!(sha256(r.body.as_ref().unwrap()), small.digest);
    let r = get(&url(&small.digest), &[]);
    assert_eq!(r.cache_status(), "mirrorctl; hit");
    assert_eq!(sha256(r.body.as_ref().unwrap()), small.digest);
    // A manifest too.
    let tag = format!("{}/v2/library/probe/manifests/latest", s.url);
    let accept = [("Accept", common::image::MT_MANIFEST)];
    let first = get(&tag, &accept);
    assert_eq!(first.status, 200);
    let again = get(&tag, &accept);
    assert!(
        again.cache_status().starts_with("mirrorctl; hit"),
        "{}",
        again.cache_status()
    );
}

/// A download that cannot be stored holds at most a few MiB in memory for its readers: a client
/// that stops reading holds the others back (the upstream read waits) until it has not moved for
/// a few seconds, then it is let go and gets its own upstream fetch when it reads on; a client
/// arriving when the first bytes are no longer held gets its own fetch at once. All get the
/// whole blob, right.
#[test]
fn a_lagging_reader_of_an_unstorable_download_gets_its_own_fetch() {
    if !common::require(&["docker-registry", "skopeo", "unshare", "mount"]) {
        return;
    }
    let ws = Workspace::new("store-lag");
    let up = Seeded::start(&ws, Some(48));
    let big = up.image.big.clone().unwrap().layer;
    let s = TmpfsServe::start(&ws.aux("serve"), "3m", &up.upstream.url());
    let url = format!("{}/v2/library/probe/blobs/{}", s.url, big.digest);
    let path = format!("/v2/library/probe/blobs/{}", big.digest);
    let rt = rt();
    let c = client();
    let (lagging, others, late, lag_cs) = rt.block_on(async {
        // The lagging client: headers, then no reading until the others are done.
        let lagging = c.get(&url).send().await.unwrap();
        assert_eq!(lagging.status(), 200);
        let lag_cs = lagging.headers()["cache-status"]
            .to_str()
            .unwrap()
            .to_string();
        let others: Vec<_> = (0..2)
            .map(|_| {
                let (c, url) = (c.clone(), url.clone());
                tokio::spawn(async move { fetch(&c, "GET", &url, &[]).await })
            })
            .collect();
        // Once the cache gave up storing, a newcomer cannot start from the flight's memory.
        let no_space = "mirrorctl_store_write_errors_total{kind=\"no-space\"}";
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let m = fetch(&c, "GET", &format!("{}/metrics", s.url), &[]).await;
            if metric(&String::from_utf8_lossy(m.body.as_ref().unwrap()), no_space) >= 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}",
                s.daemon.tail(20)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let late = {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { fetch(&c, "GET", &url, &[]).await })
        };
        let mut done = Vec::new();
        for f in others {
            done.push(f.await.unwrap());
        }
        let late = late.await.unwrap();
        let lagging = lagging.bytes().await.map(|b| b.to_vec());
        (lagging, done, late, lag_cs)
    });
    let lagging = lagging.expect("the lagging client's whole body");
    assert_eq!(sha256(&lagging), big.digest, "lagging client");
    for r in others.iter().chain([&late]) {
        assert_eq!(r.status, 200);
        assert_eq!(sha256(r.body.as_ref().expect("whole body")), big.digest);
    }
    assert_eq!(
        late.cache_status(),
        "mirrorctl; fwd=uri-miss",
        "its own fetch"
    );
    // The flight, the lagging client's own and the late one's own (more if one of the two
    // others arrived only after the flight had given up storing).
    let gets = upstream_gets(&up.upstream, &path);
    eprintln!("{gets} upstream GETs; lagging client's cache status: {lag_cs}");
    assert!((3..=5).contains(&gets), "{gets} upstream GETs");
}
