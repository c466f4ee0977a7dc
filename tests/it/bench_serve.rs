//! Benchmark (not a test): `mirrorctl serve` vs CNCF distribution 2.8 in proxy mode, side by
//! side on loopback against the same upstream `docker-registry`. Prints a table of ratios.
//!
//! ```text
//! cargo test --release --test it bench_serve -- --ignored --nocapture
//! MIRRORCTL_BENCH_MB=64 cargo test --release --test it bench_serve -- --ignored --nocapture
//! ```
//! Needs docker-registry, skopeo, unshare and wrk (root, like every real-client test).

use crate::common::http::{client, rt};
use crate::common::registry::Registry;
use crate::common::serve::Serve;
use crate::common::{self, AccessLogged, Seeded, Workspace};
use futures_util::StreamExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// One mirror under test (stopped on drop).
pub(crate) enum Mirror {
    Serve(Serve),
    Dist(Registry),
}

impl Mirror {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Mirror::Serve(_) => "mirrorctl",
            Mirror::Dist(_) => "distribution",
        }
    }

    pub(crate) fn url(&self) -> String {
        match self {
            Mirror::Serve(s) => s.url(),
            Mirror::Dist(r) => r.url(),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        match self {
            Mirror::Serve(s) => s.daemon.pid(),
            Mirror::Dist(r) => r.daemon.pid(),
        }
    }

    /// Has it stored blob `digest` in its cache? The last upstream fetch a cold pull makes is
    /// the one that stores (distribution fetches again in the background to store), so after
    /// this every upstream GET of the blob has been made.
    pub(crate) fn stored(&self, digest: &str) -> bool {
        match self {
            Mirror::Serve(s) => s
                .blob_files()
                .contains(&digest.trim_start_matches("sha256:").to_string()),
            Mirror::Dist(r) => r.has_blob(digest),
        }
    }
}

pub(crate) fn peak_rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map(|k| k / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU seconds (user + system) a process has used so far (`/proc/<pid>/stat`, 100 Hz ticks).
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// CPU seconds per thread of `pid` so far, busiest first (`name:tid user U sys S`, total).
pub(crate) fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let tid = e.file_name().to_string_lossy().into_owned();
                    let s = std::fs::read_to_string(e.path().join("stat")).ok()?;
                    let name = s.split_once('(')?.1.rsplit_once(')')?.0.to_string();
                    let rest = s.rsplit_once(')')?.1;
                    let f: Vec<&str> = rest.split_whitespace().collect();
                    let user = f.get(11)?.parse::<f64>().ok()? / 100.0;
                    let sys = f.get(12)?.parse::<f64>().ok()? / 100.0;
                    Some((
                        format!("{name}:{tid} user {user:.2} sys {sys:.2}"),
                        user + sys,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
    v.truncate(4);
    v
}

/// CPU seconds used by each of `pids` while `f` runs, and f's result.
pub(crate) fn with_cpu<T>(pids: &[u32], f: impl FnOnce() -> T) -> (Vec<f64>, T) {
    let before: Vec<f64> = pids.iter().map(|p| cpu_secs(*p)).collect();
    let out = f();
    let used = pids
        .iter()
        .zip(before)
        .map(|(p, b)| cpu_secs(*p) - b)
        .collect();
    (used, out)
}

/// GET `url` with `n` concurrent clients, counting bytes; returns (wall seconds, bytes each).
pub(crate) fn get_n(rt: &tokio::runtime::Runtime, url: &str, n: usize) -> (f64, Vec<u64>) {
    let c = client();
    rt.block_on(async {
        let t = Instant::now();
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let c = c.clone();
                let url = url.to_string();
                tokio::spawn(async move {
                    let r = c.get(&url).send().await.unwrap();
                    assert_eq!(r.status(), 200, "{url}");
                    let mut s = r.bytes_stream();
                    let mut got = 0u64;
                    while let Some(b) = s.next().await {
                        got += b.unwrap().len() as u64;
                    }
                    got
                })
            })
            .collect();
        let mut sizes = Vec::new();
        for t in tasks {
            sizes.push(t.await.unwrap());
        }
        (t.elapsed().as_secs_f64(), sizes)
    })
}

fn wrk_rps(url: &str, accept: &str) -> f64 {
    let out = Command::new("wrk")
        .args(["-t2", "-c64", "-d5s", "-H"])
        .arg(format!("Accept: {accept}"))
        .arg(url)
        .output()
        .expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// HEAD `url` from `conns` keep-alive connections (one client each) for `secs` seconds;
/// requests per second. wrk cannot measure HEAD: after a HEAD response with a non-zero
/// `Content-Length` (which registries send, as RFC 9110 asks) it waits for a body forever.
fn head_rps(rt: &tokio::runtime::Runtime, url: &str, accept: &str, conns: usize, secs: f64) -> f64 {
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let tasks: Vec<_> = (0..conns)
            .map(|_| {
                let c = reqwest::Client::builder()
                    .no_proxy()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                let url = url.to_string();
                let accept = accept.to_string();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let r = c.head(&url).header("Accept", &accept).send().await.unwrap();
                        assert_eq!(r.status(), 200, "HEAD {url}");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0u64;
        for t in tasks {
            total += t.await.unwrap();
        }
        total as f64 / secs
    })
}

/// CPU seconds of this thread so far.
fn thread_cpu_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer; CLOCK_THREAD_CPUTIME_ID is always there on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// What any cache that verifies digests must spend on one cold blob, measured here:
/// (SHA-256 of it, writing it to the page cache, one socket copy ≈ `copy`).
fn floor_cpu(
    layout: &std::path::Path,
    digest: &str,
    copy: f64,
    scratch: &std::path::Path,
) -> (f64, f64, f64) {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    let t = thread_cpu_now();
    for c in bytes.chunks(1 << 20) {
        let _ = Sha256::digest(c);
    }
    let sha = thread_cpu_now() - t;
    // Written in 256 KiB pieces like a download; the least of 3 (page reclaim can land on any).
    let mut write = f64::INFINITY;
    for _ in 0..3 {
        use std::io::Write;
        let p = scratch.join("blob");
        let _ = std::fs::remove_file(&p);
        let mut f = std::fs::File::create(&p).unwrap();
        let t = thread_cpu_now();
        for c in bytes.chunks(256 << 10) {
            f.write_all(c).unwrap();
        }
        write = write.min(thread_cpu_now() - t);
        drop(f);
        let _ = std::fs::remove_file(&p);
    }
    (sha, write, copy)
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Row {
    cold_mibs: f64,
    /// Mirror CPU seconds per GiB: cold (median of the cold runs) and warm.
    cpu_cold_gib: f64,
    cpu_warm_gib: f64,
    upstream_gets_cold: usize,
    gets_32: usize,
    wall_32_cold: f64,
    wall_32_warm: f64,
    warm_mibs: f64,
    tag_upstream: usize,
    rss: f64,
    rps_digest: f64,
    rps_tag: f64,
    head_rps_tag: f64,
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture (release build recommended)"]
fn bench_serve_vs_distribution() {
    if !common::require(&["docker-registry", "skopeo", "unshare", "wrk"]) {
        return;
    }
    let mb: usize = std::env::var("MIRRORCTL_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let ws = Workspace::new("bench");
    let Seeded { upstream, image } = Seeded::start(&ws, Some(mb));
    let big = image.big.clone().unwrap();
    let blob_path = format!("/v2/library/probe/blobs/{}", big.layer.digest);
    let size = big.layer.size;
    let mib = size as f64 / (1 << 20) as f64;
    let rt = rt();

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let me = std::process::id();
    let up_pid = upstream.daemon.pid();
    // Upstream direct (median of 3).
    let mut direct = Vec::new();
    let mut direct_cpu = Vec::new();
    for _ in 0..3 {
        let (cpu, (t, _)) = with_cpu(&[up_pid, me], || {
            get_n(&rt, &format!("{}{blob_path}", upstream.url()), 1)
        });
        eprintln!(
            "  direct {:.0} MiB/s; CPU s: upstream {:.2}, client {:.2}; wall {t:.2} s ({cores} cores)",
            mib / t,
            cpu[0],
            cpu[1]
        );
        direct.push(t);
        direct_cpu.push(cpu[1]);
    }
    let client_direct_cpu = direct_cpu.iter().cloned().fold(f64::NAN, f64::min);
    let floor = floor_cpu(
        &image.dir,
        &big.layer.digest,
        client_direct_cpu,
        &ws.aux("floor"),
    );
    direct.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let direct_mibs = mib / direct[1];
    eprintln!("upstream direct: {direct_mibs:.0} MiB/s ({mb} MiB blob)");

    let upstream_gets = |mark: usize| upstream.gets_since(mark, &blob_path);
    // Every upstream GET of the blob a cold pull makes is done once the mirror stored it.
    let stored = |m: &Mirror| {
        assert!(
            common::wait_until(Duration::from_secs(60), || m.stored(&big.layer.digest)),
            "{} never stored the blob",
            m.name()
        );
    };
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let mut rows = Vec::new();
    for (i, kind) in ["mirrorctl", "distribution"].iter().enumerate() {
        let start = |tag: &str| {
            let dir = ws.aux(&format!("{kind}-{tag}-{i}"));
            if *kind == "mirrorctl" {
                Mirror::Serve(Serve::start(
                    &dir,
                    &dir.join("cache"),
                    &["--upstream", &upstream.url()],
                ))
            } else {
                Mirror::Dist(Registry::proxy(&dir, &upstream.url()))
            }
        };
        // Cold single client: median of 3 fresh instances; upstream GETs of the first.
        let mut colds = Vec::new();
        let mut cpu_colds = Vec::new();
        let mut upstream_gets_cold = 0;
        let mut m = None;
        for run in 0..3 {
            drop(m.take());
            // Start each cold run with no dirty page cache left by the previous one: its
            // writeback would otherwise run during this download, on the same disk.
            // SAFETY: sync(2) has no preconditions.
            unsafe { libc::sync() };
            let fresh = start(&format!("single{run}"));
            let mark = upstream.log_mark();
            let cpu_before = cpu_secs(fresh.pid());
            let (cpu, (t, sizes)) = with_cpu(&[up_pid, fresh.pid(), me], || {
                get_n(&rt, &format!("{}{blob_path}", fresh.url()), 1)
            });
            assert_eq!(sizes, vec![size]);
            eprintln!(
                "  {kind} cold {:.0} MiB/s; CPU s: upstream {:.2}, mirror {:.2}, client {:.2}; wall {t:.2} s ({cores} cores); busiest mirror threads {:?}",
                mib / t,
                cpu[0],
                cpu[1],
                cpu[2],
                thread_cpu(fresh.pid())
            );
            colds.push(t);
            // The CPU a cold blob costs the mirror: until it is stored (distribution stores
            // with a second download in the background, after the client's).
            stored(&fresh);
            let to_stored = cpu_secs(fresh.pid()) - cpu_before;
            eprintln!("  {kind}: {to_stored:.2} CPU-s from the cold GET until stored");
            cpu_colds.push(to_stored / (mib / 1024.0));
            if let Mirror::Serve(s) = &fresh {
                let fetched = s
                    .daemon
                    .stderr()
                    .lines()
                    .filter(|l| l.starts_with("fetched "))
                    .map(String::from)
                    .collect::<Vec<_>>();
                eprintln!("  serve: {fetched:?}");
                let metrics = rt.block_on(async {
                    client()
                        .get(format!("{}/metrics", s.url()))
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap()
                });
                let value = |name: &str| {
                    metrics
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{name} ")))
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .unwrap_or(f64::NAN)
                };
                eprintln!(
                    "  serve: {:.0} of {:.0} MiB sent from the download's memory, the rest read from the cache file",
                    value("mirrorctl_served_memory_bytes_total") / (1 << 20) as f64,
                    value("mirrorctl_served_bytes_total") / (1 << 20) as f64
                );
            }
            if run == 0 {
                stored(&fresh);
                upstream_gets_cold = upstream_gets(mark);
            }
            m = Some(fresh);
        }
        let m = m.unwrap();
        let cold_mibs = mib / median(colds);
        let (warm_cpu, warms) = with_cpu(&[m.pid()], || {
            (0..3)
                .map(|_| get_n(&rt, &format!("{}{blob_path}", m.url()), 1).0)
                .collect::<Vec<f64>>()
        });
        let cpu_warm_gib = warm_cpu[0] / (3.0 * mib / 1024.0);
        let warm_mibs = mib / median(warms);
        // Tag pulled twice within the TTL: upstream requests of the second.
        let tag_url = format!("{}/v2/library/probe/manifests/latest", m.url());
        let c = client();
        rt.block_on(c.get(&tag_url).header("Accept", accept).send())
            .unwrap();
        let mark = upstream.log_mark();
        rt.block_on(c.get(&tag_url).header("Accept", accept).send())
            .unwrap();
        let tag_upstream = upstream.requests_since(mark).len();
        let rps_tag = wrk_rps(&tag_url, accept);
        let head_rps_tag = head_rps(&rt, &tag_url, accept, 64, 5.0);
        let rps_digest = wrk_rps(
            &format!(
                "{}/v2/library/probe/manifests/{}",
                m.url(),
                image.amd64.manifest.digest
            ),
            accept,
        );
        drop(m);

        // 32-way cold then warm on a fresh instance; peak RSS over both.
        let m = start("x32");
        let mark = upstream.log_mark();
        let (wall_32_cold, sizes) = get_n(&rt, &format!("{}{blob_path}", m.url()), 32);
        assert!(sizes.iter().all(|s| *s == size));
        stored(&m);
        let gets_32 = upstream_gets(mark);
        let (wall_32_warm, _) = get_n(&rt, &format!("{}{blob_path}", m.url()), 32);
        let rss = peak_rss_mib(m.pid());
        eprintln!(
            "{}: cold {cold_mibs:.0} MiB/s, warm {warm_mibs:.0} MiB/s, upstream GETs cold {upstream_gets_cold}, \
             32-way: {gets_32} upstream GETs, cold {wall_32_cold:.2}s warm {wall_32_warm:.2}s, RSS {rss:.0} MiB, \
             tag {rps_tag:.0} req/s ({tag_upstream} upstream requests when warm), digest {rps_digest:.0} req/s, HEAD tag {head_rps_tag:.0} req/s",
            m.name()
        );
        rows.push(Row {
            cold_mibs,
            cpu_cold_gib: median(cpu_colds),
            cpu_warm_gib,
            upstream_gets_cold,
            gets_32,
            wall_32_cold,
            wall_32_warm,
            warm_mibs,
            tag_upstream,
            rss,
            rps_digest,
            rps_tag,
            head_rps_tag,
        });
    }
    let (s, d) = (&rows[0], &rows[1]);
    let per_gib = |x: f64| x / (mib / 1024.0);
    println!(
        "\nfloor per cold GiB on this machine: {:.2} CPU-s = SHA-256 {:.2} + page-cache write {:.2} + receive {:.2} + send {:.2} (a copy each; the receive is the client's CPU on a direct pull); serve uses {:.2}× the floor",
        per_gib(floor.0 + floor.1 + 2.0 * floor.2),
        per_gib(floor.0),
        per_gib(floor.1),
        per_gib(floor.2),
        per_gib(floor.2),
        s.cpu_cold_gib / per_gib(floor.0 + floor.1 + 2.0 * floor.2)
    );
    println!(
        "\n{mb} MiB blob, loopback; single-client throughputs are medians of 3; upstream direct {direct_mibs:.0} MiB/s\n"
    );
    println!("| measure | mirrorctl serve | distribution 2.8 proxy | target |");
    println!("|---|---|---|---|");
    println!(
        "| cold throughput / upstream direct | {:.2}x | {:.2}x | >= 0.85x |",
        s.cold_mibs / direct_mibs,
        d.cold_mibs / direct_mibs
    );
    println!(
        "| cold throughput / distribution cold | {:.2}x | 1.00x | >= 1.0x |",
        s.cold_mibs / d.cold_mibs
    );
    println!(
        "| mirror CPU s per GiB, cold miss (median of 3) | {:.2} | {:.2} | <= distribution |",
        s.cpu_cold_gib, d.cpu_cold_gib
    );
    println!(
        "| mirror CPU s per GiB, hit | {:.2} | {:.2} | |",
        s.cpu_warm_gib, d.cpu_warm_gib
    );
    println!(
        "| upstream GETs (bytes) per cold blob | {} ({:.0} MiB) | {} ({:.0} MiB) | 1 |",
        s.upstream_gets_cold,
        s.upstream_gets_cold as f64 * mib,
        d.upstream_gets_cold,
        d.upstream_gets_cold as f64 * mib
    );
    println!(
        "| upstream GETs, 32 cold clients on one blob | {} | {} | 1 |",
        s.gets_32, d.gets_32
    );
    println!(
        "| 32-way wall cold / warm | {:.2} | {:.2} | <= 1.3 |",
        s.wall_32_cold / s.wall_32_warm,
        d.wall_32_cold / d.wall_32_warm
    );
    println!(
        "| warm throughput / distribution warm | {:.2}x | 1.00x | >= 1.3x |",
        s.warm_mibs / d.warm_mibs
    );
    println!(
        "| upstream requests, warm tag within TTL | {} | {} | 0 |",
        s.tag_upstream, d.tag_upstream
    );
    println!(
        "| peak RSS over the 32-way runs | {:.0} MiB | {:.0} MiB | <= 64 MiB |",
        s.rss, d.rss
    );
    println!(
        "| HEAD manifest by tag, 64 connections (reqwest; wrk hangs on HEAD) req/s | {:.0} ({:.2}x) | {:.0} | >= 2x |",
        s.head_rps_tag,
        s.head_rps_tag / d.head_rps_tag,
        d.head_rps_tag
    );
    println!(
        "| GET manifest by tag, wrk -c64 req/s | {:.0} ({:.2}x) | {:.0} | |",
        s.rps_tag,
        s.rps_tag / d.rps_tag,
        d.rps_tag
    );
    println!(
        "| GET manifest by digest, wrk -c64 req/s | {:.0} ({:.2}x) | {:.0} | |",
        s.rps_digest,
        s.rps_digest / d.rps_digest,
        d.rps_digest
    );
}
