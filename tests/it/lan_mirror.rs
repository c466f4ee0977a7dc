//! A plain-HTTP mirror on a LAN address, not loopback: every client treats 127.0.0.0/8 as
//! plain HTTP by itself, so only a non-loopback address shows whether the armed config really
//! tells each client to speak HTTP to the mirror. dockerd's built-in BuildKit (20.10 … 24)
//! derives that from `insecure-registries`, and only from an entry with an `http://` scheme.
//!
//! The test runs in a network namespace of its own: it re-executes itself under
//! `unshare --net`, brings `lo` up there and adds 10.77.0.1/32 to it; the mirror is reached on
//! 10.77.0.1 through a forwarder to the loopback registry. Nothing leaves the namespace.

use crate::common::dockerd::{write_from_dockerfile, Dockerd};
use crate::common::proof::assert_blob_requests_by;
use crate::common::{self, json, mirrorctl, verify_clients, AccessLogged, Lab, Workspace};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

pub(crate) const LAN_IP: &str = "10.77.0.1";
const IN_NETNS: &str = "MIRRORCTL_TEST_IN_NETNS";

/// Re-run `test` (a test function of the calling module, `module_path!()`) in a fresh network
/// namespace: this test binary again, filtered to exactly that test; true when the caller is
/// already inside it.
pub(crate) fn in_private_netns_for(module_path: &str, test: &str) -> bool {
    if std::env::var_os(IN_NETNS).is_some() {
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("run ip");
            assert!(out.status.success(), "ip {args:?}: {out:?}");
        };
        ip(&["link", "set", "lo", "up"]);
        ip(&["addr", "add", &format!("{LAN_IP}/32"), "dev", "lo"]);
        return true;
    }
    // libtest names a test by its path without the crate: `lan_mirror::<test>`.
    let (_crate, module) = module_path.split_once("::").unwrap();
    let name = format!("{module}::{test}");
    let out = Command::new("unshare")
        .args(["--net", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(IN_NETNS, "1")
        .output()
        .expect("run unshare --net");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "in the network namespace: {text}");
    assert!(
        text.contains("1 passed"),
        "the test did not run in the namespace: {text}"
    );
    false
}

/// [`in_private_netns_for`] a test of this module.
fn in_private_netns(test: &str) -> bool {
    in_private_netns_for(module_path!(), test)
}

/// Forward `<LAN_IP>:<port>` to `target` (a loopback address), one thread per direction.
pub(crate) fn forward(target: String) -> u16 {
    let l = TcpListener::bind((LAN_IP, 0)).expect("bind the LAN address");
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(client) = c else { continue };
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let pipe = |mut from: TcpStream, mut to: TcpStream| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64 * 1024];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            };
            pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
            pipe(server, client);
        }
    });
    port
}

#[test]
fn buildkit_and_docker_pull_through_a_plain_http_lan_mirror() {
    if !common::require(&[
        "docker-registry",
        "skopeo",
        "unshare",
        "ip",
        "dockerd",
        "docker",
        "containerd",
    ]) {
        return;
    }
    if !in_private_netns("buildkit_and_docker_pull_through_a_plain_http_lan_mirror") {
        return;
    }
    let ws = Workspace::new("lan-mirror");
    let lab = Lab::start(&ws);
    let port = forward(lab.mirror.host());
    let mirror = format!("http://{LAN_IP}:{port}");
    let daemon_json = ws.under_root("etc/docker/daemon.json");
    std::fs::create_dir_all(daemon_json.parent().unwrap()).unwrap();
    // What people write by hand (and mirrorctl wrote before): the mirror's host:port without
    // a scheme in insecure-registries. `docker pull` is happy with it; BuildKit is not.
    let by_hand = format!(
        "{{\n  \"registry-mirrors\": [\"{mirror}\"],\n  \"insecure-registries\": [\"{LAN_IP}:{port}\"]\n}}\n"
    );
    std::fs::write(&daemon_json, &by_hand).unwrap();

    let verify = |dockerd: &Dockerd| {
        verify_clients(&ws, &mirror, "probe:v2s2", &["docker", "buildkit"], |c| {
            dockerd.client_env(c);
        })
    };

    let mut dockerd = Dockerd::start(&ws.root(), &ws.aux("dockerd"));
    // The real BuildKit with the hand-written file: HTTPS to the plain-HTTP mirror.
    let ctx = write_from_dockerfile(&ws.aux("build-ctx"), "docker.io/library/probe:v2s2");
    let build = dockerd.build(&ctx, "lan-probe:1");
    assert!(!build.ok(), "{build}");
    assert!(
        build
            .combined()
            .contains("server gave HTTP response to HTTPS client"),
        "{build}"
    );
    // verify says why, from the file, before building.
    let out = verify(&dockerd);
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = json(&out);
    assert_eq!(doc["clients"][0]["ok"], true, "{out}");
    assert_eq!(doc["clients"][1]["ok"], false, "{out}");
    let detail = doc["clients"][1]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("lists it with its scheme, \"{mirror}\"")),
        "{out}"
    );

    // arm keeps the user's entry and adds the scheme one after it; BuildKit reads it at start.
    let arm = ws.run(&["arm", "--mirror", &mirror, "--target", "docker"]);
    arm.assert_ok();
    assert!(
        arm.stdout.contains(&format!(
            "insecure-registries lists {mirror} with the scheme"
        )),
        "the diff's extra entry is explained: {arm}"
    );
    let armed = std::fs::read_to_string(&daemon_json).unwrap();
    assert!(
        armed.contains(&format!("\"{LAN_IP}:{port}\", \"{mirror}\"")),
        "{armed}"
    );
    dockerd.stop();
    drop(dockerd);
    // A fresh store, so both clients must fetch the blobs.
    let dockerd = Dockerd::start(&ws.root(), &ws.aux("dockerd2"));
    let mark = lab.mirror.log_mark();
    let out = verify(&dockerd);
    assert_eq!(
        out.code(),
        Some(0),
        "daemon.json:\n{armed}\n{out}\n{}",
        dockerd.daemon.tail(40)
    );
    let log = lab.mirror.requests_since(mark);
    assert_blob_requests_by(&log, &["docker/", "containerd/"]);
    // disarm gives the hand-written bytes back.
    ws.run(&["disarm"]).assert_ok();
    assert_eq!(std::fs::read_to_string(&daemon_json).unwrap(), by_hand);
}

#[test]
fn containerd_podman_skopeo_pull_through_a_plain_http_lan_mirror() {
    if !common::require(&[
        "docker-registry",
        "skopeo",
        "podman",
        "unshare",
        "ip",
        "containerd",
        "ctr",
    ]) {
        return;
    }
    if !in_private_netns("containerd_podman_skopeo_pull_through_a_plain_http_lan_mirror") {
        return;
    }
    use common::containerd::Containerd;
    let ws = Workspace::new("lan2"); // short: podman limits --runroot length
    let lab = Lab::start(&ws);
    let port = forward(lab.mirror.host());
    let mirror = format!("http://{LAN_IP}:{port}");
    let etc = ws.under_root("etc/containers");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("registries.conf"),
        "unqualified-search-registries = [\"docker.io\"]\n",
    )
    .unwrap();
    let arm = ws.run(&[
        "arm",
        "--mirror",
        &mirror,
        "--target",
        "containerd,registries",
    ]);
    arm.assert_ok();
    let ctrd = Containerd::start(&ws.aux("containerd"));
    let mark = lab.mirror.log_mark();
    let out = verify_clients(
        &ws,
        &mirror,
        "probe:multi",
        &["containerd", "podman", "skopeo"],
        |c| {
            c.env("CONTAINERD_ADDRESS", &ctrd.socket);
        },
    );
    assert_eq!(out.code(), Some(0), "{arm}\n{out}");
    let log = lab.mirror.requests_since(mark);
    // containerd, podman (containers/<c/image version>), skopeo.
    assert_blob_requests_by(&log, &["containerd/", "containers/", "skopeo/"]);
}

/// A mirror name that does not resolve, checked for real in the namespace (its resolver
/// reaches nothing outside it): one sentence naming DNS, exit 1.
#[test]
fn a_mirror_name_that_does_not_resolve() {
    if !common::require(&["unshare", "ip"]) {
        return;
    }
    if !in_private_netns("a_mirror_name_that_does_not_resolve") {
        return;
    }
    let ws = Workspace::new("lan-dns");
    let verify = |proxied: bool| {
        let mut c = mirrorctl(&ws);
        if !proxied {
            for (k, _) in common::GUARD_ENV {
                c.env_remove(k);
            }
        }
        c.args([
            "verify",
            "--mirror",
            "http://mirror.invalid:5000",
            "--timeout",
            "5",
            "--json",
        ]);
        let out = common::run_timeout(&mut c, Duration::from_secs(60));
        assert_eq!(out.code(), Some(1), "{out}");
        let err = json(&out)["preflight"]["error"].clone();
        (out, err)
    };
    let (out, err) = verify(false);
    assert_eq!(err["kind"], "dns", "{out}");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("mirror.invalid"), "{out}");
    assert!(!msg.contains("proxy"), "{out}");
    // Through a proxy (the tests' guard, a closed port), the failure is the proxy's: say so.
    let (out, err) = verify(true);
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("through the proxy http://127.0.0.1:9 from $HTTP_PROXY")
            || msg.contains("through the proxy http://127.0.0.1:9 from $http_proxy"),
        "{out}"
    );
    assert!(msg.contains("add mirror.invalid to NO_PROXY"), "{out}");
}
