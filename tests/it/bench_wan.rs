//! Benchmark (not a test): the WAN regime runners live in. The bench thread moves into a
//! private network namespace (`unshare(CLONE_NEWNET)`: everything it starts is in there, `lo`
//! only), where `tc` htb on `lo` shapes only the packets *from the upstream's port* to
//! `MIRRORCTL_BENCH_RATE` (default `400mbit`; netem is not in this kernel, htb and u32 are):
//! the upstream is far, the mirror is near. `mirrorctl serve` and distribution 2.8 side by side
//! in one run, against the same upstream `docker-registry`:
//!
//! * one blob (`MIRRORCTL_BENCH_WAN_MB`, default 64 MiB): cold (one client), the immediate
//!   second pull, a fleet of `MIRRORCTL_BENCH_FLEET` (default 8) concurrent cold pulls, upstream
//!   GETs counted from the upstream's access log; CPU seconds per GiB on a miss and on a hit;
//!   upstream requests for a tag pulled again within the TTL;
//! * whole images: a generated 12-layer image (an index of two platforms) pulled with skopeo,
//!   ctr and dockerd, cold then warm, through each mirror and direct: wall time, and every
//!   upstream request of each pull (token, manifest HEAD/GET, blob GET).
//!
//! ```text
//! cargo test --release --test it bench_wan -- --ignored --nocapture
//! ```
//! Needs docker-registry, skopeo, ctr, containerd, dockerd, tc, ip, unshare (root).

use crate::bench_serve::{cpu_secs, get_n, median, thread_cpu, with_cpu, Mirror};
use crate::common::containerd::Containerd;
use crate::common::containers::ContainersEnv;
use crate::common::dockerd::Dockerd;
use crate::common::http::{client, rt};
use crate::common::registry::{skopeo_cmd, AccessEntry, Registry};
use crate::common::serve::Serve;
use crate::common::{self, run_timeout, AccessLogged, Workspace};
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
}

/// Move this thread (and what it starts from now on) into a new network namespace, `lo` up.
fn private_net() {
    // SAFETY: unshare(CLONE_NEWNET) affects only the calling thread.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
    sh(&["ip", "link", "set", "lo", "up"]);
}

/// htb on `lo`: packets from `port` at `rate`, everything else unshaped.
fn shape(port: u16, rate: &str) {
    sh(&[
        "tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb",
    ]);
    sh(&[
        "tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", rate,
        "ceil", rate, "burst", "256k", "cburst", "256k",
    ]);
    let p = port.to_string();
    sh(&[
        "tc", "filter", "add", "dev", "lo", "protocol", "ip", "parent", "1:", "prio", "1", "u32",
        "match", "ip", "sport", &p, "0xffff", "flowid", "1:20",
    ]);
}

/// A generated multi-layer image: an OCI layout with an index of linux/amd64 + linux/arm64,
/// `layers` layers each (sizes cycling through `mib`), random content.
fn build_image(dir: &Path, layers: usize, mib: &[usize]) {
    use sha2::{Digest, Sha256};
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> (String, u64) {
        let hex = hex::encode(Sha256::digest(data));
        std::fs::write(blobs.join(&hex), data).unwrap();
        (format!("sha256:{hex}"), data.len() as u64)
    };
    let mut manifests = Vec::new();
    for arch in ["amd64", "arm64"] {
        let (mut descs, mut diff_ids) = (Vec::new(), Vec::new());
        for i in 0..layers {
            let mut data = vec![0u8; mib[i % mib.len()] << 20];
            std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut data)
                .unwrap();
            let mut tar = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_ustar();
            h.set_path(format!("layer{i}.bin")).unwrap();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append(&h, &data[..]).unwrap();
            let raw = tar.into_inner().unwrap();
            diff_ids.push(format!("sha256:{}", hex::encode(Sha256::digest(&raw))));
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
            gz.write_all(&raw).unwrap();
            let (d, n) = put(&gz.finish().unwrap());
            descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n}));
        }
        let cfg = json!({"architecture": arch, "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let (cd, cn) = put(&serde_json::to_vec(&cfg).unwrap());
        let man = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
            "layers": descs});
        let (md, mn) = put(&serde_json::to_vec(&man).unwrap());
        manifests.push(
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": mn, "platform": {"architecture": arch, "os": "linux"}}),
        );
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    let (id, isz) = put(&serde_json::to_vec(&index).unwrap());
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": id, "size": isz, "annotations": {"org.opencontainers.image.ref.name": "1"}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

/// Every upstream request of a pull, by kind.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    token: usize,
    head: usize,
    manifest: usize,
    blob: usize,
}

impl Counts {
    fn of(log: &[AccessEntry]) -> Counts {
        let mut c = Counts::default();
        for e in log {
            if e.path.contains("/manifests/") && e.method == "HEAD" {
                c.head += 1;
            } else if e.path.contains("/manifests/") {
                c.manifest += 1;
            } else if e.path.contains("/blobs/") && e.method == "GET" {
                c.blob += 1;
            } else if e.path.contains("token") {
                c.token += 1;
            }
        }
        c
    }
    fn cell(self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.token, self.head, self.manifest, self.blob
        )
    }
}

fn start_mirror(ws: &Workspace, kind: &str, tag: &str, upstream: &str) -> Mirror {
    let dir = ws.aux(&format!("{kind}-{tag}"));
    if kind == "mirrorctl" {
        Mirror::Serve(Serve::start(
            &dir,
            &dir.join("cache"),
            &["--upstream", upstream],
        ))
    } else {
        Mirror::Dist(Registry::proxy(&dir, upstream))
    }
}

/// Blob rows for one mirror kind.
struct BlobRow {
    cold: f64,
    second: f64,
    fleet: f64,
    cold_gets: usize,
    fleet_gets: usize,
    tag_upstream: usize,
    cpu_miss_gib: f64,
    cpu_hit_gib: f64,
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture (release build recommended)"]
fn bench_wan() {
    let bins = [
        "docker-registry",
        "skopeo",
        "unshare",
        "tc",
        "ip",
        "containerd",
        "ctr",
        "dockerd",
    ];
    if !common::require(&bins) {
        return;
    }
    let rate: String = env_or("MIRRORCTL_BENCH_RATE", "400mbit".to_string());
    let mb: usize = env_or("MIRRORCTL_BENCH_WAN_MB", 64);
    let fleet: usize = env_or("MIRRORCTL_BENCH_FLEET", 8);
    private_net();
    let ws = Workspace::new("bench-wan");
    let image = crate::common::image::ProbeImage::build(&ws.aux("probe"), Some(mb));
    let upstream = Registry::upstream(&ws.aux("upstream"));
    crate::common::registry::seed_upstream(&upstream, &image, &ws.aux("seed"));
    shape(upstream.port, &rate);
    let big = image.big.clone().unwrap();
    let path = format!("/v2/library/probe/blobs/{}", big.layer.digest);
    let size = big.layer.size;
    let gib = size as f64 / (1u64 << 30) as f64;
    let rt = rt();
    let direct = median(
        (0..3)
            .map(|_| get_n(&rt, &format!("{}{path}", upstream.url()), 1).0)
            .collect(),
    );
    eprintln!(
        "direct over the shaped link: {:.2} s for {mb} MiB ({:.0} MiB/s)",
        direct,
        mb as f64 / direct
    );
    let mut rows = Vec::new();
    for kind in ["mirrorctl", "distribution"] {
        let row = blob_row(
            &ws,
            kind,
            &upstream,
            &path,
            &big.layer.digest,
            gib,
            fleet,
            &rt,
        );
        rows.push(row);
    }
    let (s, d) = (&rows[0], &rows[1]);
    println!("\nWAN: upstream shaped to {rate} (tc htb on lo, upstream's port only), {mb} MiB blob, direct {direct:.2} s\n");
    println!("| measure | mirrorctl serve | distribution 2.8 proxy | target |");
    println!("|---|---|---|---|");
    println!(
        "| cold pull, direct time / mirror time | {:.2}x | {:.2}x | >= 0.97x |",
        direct / s.cold,
        direct / d.cold
    );
    println!(
        "| second pull right after, direct / mirror | {:.1}x | {:.1}x | |",
        direct / s.second,
        direct / d.second
    );
    println!(
        "| fleet of {fleet} cold pulls, wall / one direct pull | {:.2} | {:.2} | <= 1.2 |",
        s.fleet / direct,
        d.fleet / direct
    );
    println!("| upstream GETs of the blob: cold + second pull / fleet of {fleet} | {} / {} | {} / {} | 1 / 1 |", s.cold_gets, s.fleet_gets, d.cold_gets, d.fleet_gets);
    println!(
        "| upstream requests, tag pulled again within the TTL | {} | {} | 0 |",
        s.tag_upstream, d.tag_upstream
    );
    println!(
        "| mirror CPU s per GiB, cold miss until stored | {:.2} | {:.2} | <= distribution |",
        s.cpu_miss_gib, d.cpu_miss_gib
    );
    println!(
        "| mirror CPU s per GiB, hit | {:.2} | {:.2} | |",
        s.cpu_hit_gib, d.cpu_hit_gib
    );
    image_pulls(&ws, &upstream);
}

#[allow(clippy::too_many_arguments)]
fn blob_row(
    ws: &Workspace,
    kind: &str,
    upstream: &Registry,
    path: &str,
    digest: &str,
    gib: f64,
    fleet: usize,
    rt: &tokio::runtime::Runtime,
) -> BlobRow {
    let stored = |m: &Mirror| {
        assert!(
            common::wait_until(Duration::from_secs(120), || m.stored(digest)),
            "{kind} never stored it"
        );
    };
    let (mut colds, mut seconds, mut cpu_miss, mut cpu_hit) = (vec![], vec![], vec![], vec![]);
    let mut cold_gets = 0;
    for run in 0..3 {
        // SAFETY: sync(2) has no preconditions.
        unsafe { libc::sync() };
        let m = start_mirror(ws, kind, &format!("cold{run}"), &upstream.url());
        let mark = upstream.log_mark();
        let url = format!("{}{path}", m.url());
        let (t, _) = get_n(rt, &url, 1);
        let (t2, _) = get_n(rt, &url, 1);
        stored(&m);
        if run == 0 {
            cold_gets = upstream.gets_since(mark, path);
        }
        colds.push(t);
        seconds.push(t2);
        // The CPU of a cold blob, until it is stored (distribution stores with a second
        // download in the background), on a fresh instance; then of a hit.
        let m = start_mirror(ws, kind, &format!("cpu{run}"), &upstream.url());
        let before = cpu_secs(m.pid());
        let _ = get_n(rt, &format!("{}{path}", m.url()), 1);
        stored(&m);
        let miss = cpu_secs(m.pid()) - before;
        let (cpu_h, _) = with_cpu(&[m.pid()], || get_n(rt, &format!("{}{path}", m.url()), 1));
        eprintln!(
            "  {kind} cold {t:.2} s, second {t2:.2} s, CPU until stored {miss:.2} s, hit {:.2} s; busiest threads {:?}",
            cpu_h[0],
            thread_cpu(m.pid())
        );
        if let Mirror::Serve(s) = &m {
            let err = s.daemon.stderr();
            let fetched: Vec<&str> = err.lines().filter(|l| l.starts_with("fetched ")).collect();
            eprintln!("  serve: {fetched:?}");
        }
        cpu_miss.push(miss / gib);
        cpu_hit.push(cpu_h[0] / gib);
    }
    let m = start_mirror(ws, kind, "fleet", &upstream.url());
    let mark = upstream.log_mark();
    let (wall, sizes) = get_n(rt, &format!("{}{path}", m.url()), fleet);
    assert_eq!(sizes.len(), fleet);
    stored(&m);
    let fleet_gets = upstream.gets_since(mark, path);
    let tag = format!("{}/v2/library/probe/manifests/latest", m.url());
    let c = client();
    let accept = ("Accept", "application/vnd.oci.image.manifest.v1+json");
    rt.block_on(c.get(&tag).header(accept.0, accept.1).send())
        .unwrap();
    let mark = upstream.log_mark();
    rt.block_on(c.get(&tag).header(accept.0, accept.1).send())
        .unwrap();
    let tag_upstream = upstream.requests_since(mark).len();
    BlobRow {
        cold: median(colds),
        second: median(seconds),
        fleet: wall,
        cold_gets,
        fleet_gets,
        tag_upstream,
        cpu_miss_gib: median(cpu_miss),
        cpu_hit_gib: median(cpu_hit),
    }
}

/// One client's pull of `reference` (local copy removed first): wall seconds.
type Pull<'a> = Box<dyn Fn(&str) -> f64 + 'a>;

fn timed(what: &str, f: impl FnOnce() -> common::Out) -> f64 {
    let t = Instant::now();
    let out = f();
    assert!(out.ok(), "{what}: {out}");
    t.elapsed().as_secs_f64()
}

/// Whole-image pulls: skopeo, ctr and dockerd, cold then warm, through each mirror and direct.
fn image_pulls(ws: &Workspace, upstream: &Registry) {
    let layers: usize = env_or("MIRRORCTL_BENCH_LAYERS", 12);
    let dir = ws.aux("wan-image");
    build_image(&dir, layers, &[1, 2, 3, 4, 6, 8]);
    let tmp = ws.aux("wan-seed-tmp");
    let home = ws.aux("wan-seed-home");
    std::fs::write(
        tmp.join("policy.json"),
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let mut c = skopeo_cmd(&tmp, &home);
    c.arg("--policy").arg(tmp.join("policy.json"));
    c.args(["copy", "--quiet", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:1", dir.display()))
        .arg(format!("docker://{}/library/wan:1", upstream.host()));
    run_timeout(&mut c, Duration::from_secs(300)).assert_ok();
    println!("\nWhole image docker.io/library/wan:1 ({layers} layers per platform, index of 2), linux/amd64 pulled; upstream requests per pull as token/manifest HEAD/manifest GET/blob GET\n");
    println!(
        "| client | direct | serve cold | serve warm | distribution cold | distribution warm |"
    );
    println!("|---|---|---|---|---|---|");
    for client in ["skopeo", "ctr", "dockerd"] {
        let mut cells = Vec::new();
        for target in ["direct", "mirrorctl", "distribution"] {
            let mirror = (target != "direct")
                .then(|| start_mirror(ws, target, &format!("img-{client}"), &upstream.url()));
            let url = mirror.as_ref().map(|m| m.url());
            let n = cells.len();
            let pull = client_pull(ws, client, url.as_deref(), upstream, n);
            let runs = if mirror.is_some() { 2 } else { 1 };
            for run in 0..runs {
                let mark = upstream.log_mark();
                let t = pull(&format!("{client}-{target}-{run}"));
                if let (Some(m), 0) = (&mirror, run) {
                    // distribution stores in the background: count its fetches too.
                    let _ =
                        common::wait_until(Duration::from_secs(60), || m_stored_all(m, upstream));
                }
                let counts = Counts::of(&upstream.requests_since(mark));
                cells.push(format!("{t:.2} s ({})", counts.cell()));
            }
        }
        println!("| {client} | {} |", cells.join(" | "));
    }
}

/// Has the mirror stored every blob the upstream holds for `library/wan`?
fn m_stored_all(m: &Mirror, upstream: &Registry) -> bool {
    let blobs: Vec<String> = upstream
        .access_log()
        .iter()
        .filter(|e| e.path.starts_with("/v2/library/wan/blobs/sha256:") && e.method == "GET")
        .map(|e| e.path.rsplit('/').next().unwrap_or("").to_string())
        .collect();
    blobs.iter().all(|d| m.stored(d))
}

/// How `client` pulls `docker.io/library/wan:1` through `mirror` (direct from the upstream when
/// `None`); each call is a fresh local store, so the client itself caches nothing.
fn client_pull<'a>(
    ws: &'a Workspace,
    client: &str,
    mirror: Option<&str>,
    upstream: &'a Registry,
    n: usize,
) -> Pull<'a> {
    let reference = match mirror {
        Some(_) => "docker.io/library/wan:1".to_string(),
        None => format!("{}/library/wan:1", upstream.host()),
    };
    let tag = format!("{client}-{n}");
    match client {
        "skopeo" => {
            let env = ContainersEnv::new(
                &ws.path().join(format!("root-{tag}")),
                &ws.aux(&format!("c-{tag}")),
            );
            if let Some(m) = mirror {
                env.use_mirror(m.trim_start_matches("http://"));
            }
            Box::new(move |what| {
                timed(what, || {
                    env.skopeo_pull(&reference, &["--src-tls-verify=false"])
                })
            })
        }
        "ctr" => {
            let ctrd = Containerd::start(&ws.aux(&format!("ctrd-{tag}")));
            let hosts = ws.aux(&format!("hosts-{tag}"));
            if let Some(m) = mirror {
                common::containerd::write_hosts_toml(&hosts, m);
            }
            let extra: Vec<&str> = if mirror.is_none() {
                vec!["--plain-http"]
            } else {
                vec![]
            };
            Box::new(move |what| {
                let _ = ctrd.remove(&reference);
                timed(what, || ctrd.pull(&hosts, &reference, &extra))
            })
        }
        _ => {
            let root = ws.path().join(format!("root-{tag}"));
            let mut insecure = vec![upstream.host()];
            insecure.extend(mirror.map(|m| m.trim_start_matches("http://").to_string()));
            let doc = json!({"registry-mirrors": mirror.into_iter().collect::<Vec<_>>(), "insecure-registries": insecure});
            common::write_file(&root.join("etc/docker/daemon.json"), &doc.to_string());
            let d = Dockerd::start(&root, &ws.aux(&format!("dockerd-{tag}")));
            Box::new(move |what| {
                let _ = d.rmi(&reference);
                timed(what, || d.pull(&reference, &[]))
            })
        }
    }
}
