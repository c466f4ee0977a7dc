//! `mirrorctl verify --embedded`: the whole verify flow against an in-process `mirrorctl serve`
//! whose upstream is a real, seeded `docker-registry` on loopback.

use crate::common::registry::lines;
use crate::common::{self, json, mirrorctl, run, AccessLogged, Out, Seeded, Workspace};
use std::process::Command;
use std::time::Duration;

fn verify_embedded(ws: &Workspace, args: &[&str]) -> Out {
    run(mirrorctl(ws)
        .env("TMPDIR", ws.aux("tmp"))
        .args(["verify", "--embedded"])
        .args(args))
}

fn tmp_entries(ws: &Workspace) -> Vec<String> {
    std::fs::read_dir(ws.aux("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn embedded_pull_two_is_a_cache_status_hit_and_everything_is_removed() {
    if !common::require(&["docker-registry", "skopeo"]) {
        return;
    }
    let ws = Workspace::new("verify-embedded");
    let Seeded { upstream, image } = Seeded::start(&ws, None);
    // A cache dir left by a killed run (pid that cannot exist) is swept.
    let stale = ws
        .aux("tmp")
        .join(format!("mirrorctl-embedded-{}", u32::MAX - 1));
    std::fs::create_dir_all(stale.join("blobs")).unwrap();
    let mark = upstream.log_mark();

    let out = verify_embedded(
        &ws,
        &[
            "--upstream",
            &upstream.url(),
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
    assert!(doc["mirror"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert_eq!(doc["digest"], image.index.digest.as_str(), "{out}");
    let pulls = doc["pulls"].as_array().unwrap();
    assert_eq!(pulls[0]["cache"], "miss", "{out}");
    assert_eq!(pulls[1]["cache"], "hit", "{out}");
    assert_eq!(pulls[1]["strength"], "proven", "{out}");
    for r in pulls[1]["responses"].as_array().unwrap() {
        let ev = r["evidence"].to_string();
        assert!(ev.contains("mirrorctl; hit"), "{r}");
    }
    assert_eq!(
        doc["embedded"]["upstream"],
        upstream.url().trim_end_matches('/')
    );
    assert_eq!(doc["embedded"]["removed"], true);
    assert!(tmp_entries(&ws).is_empty(), "{:?}", tmp_entries(&ws));
    // Pull #2 never reached the upstream: each blob was fetched from it once.
    let reqs = upstream.requests_since(mark);
    let blob_gets: Vec<_> = reqs
        .iter()
        .filter(|e| e.method == "GET" && e.path.contains("/blobs/"))
        .collect();
    assert_eq!(blob_gets.len(), 2, "{}", lines(&reqs));

    // Human output names the embedded server and the removed cache.
    let out = verify_embedded(
        &ws,
        &["--upstream", &upstream.url(), "--image", "probe:latest"],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains("embedded"), "{out}");
    assert!(out.stdout.contains("(removed)"), "{out}");
    assert!(tmp_entries(&ws).is_empty());
}

#[test]
fn embedded_with_a_dead_upstream_fails_clearly_and_cleans_up() {
    let ws = Workspace::new("verify-embedded-dead");
    let port = common::free_port();
    let out = verify_embedded(
        &ws,
        &[
            "--upstream",
            &format!("http://127.0.0.1:{port}"),
            "--image",
            "probe:latest",
            "--json",
            "--timeout",
            "5",
        ],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = json(&out);
    assert_eq!(doc["ok"], false);
    let text = out.stdout.to_lowercase();
    assert!(text.contains("unreachable"), "{out}");
    assert_eq!(doc["embedded"]["removed"], true);
    assert!(tmp_entries(&ws).is_empty());
}

#[test]
fn embedded_usage_errors() {
    let ws = Workspace::new("verify-embedded-usage");
    let out = ws.run(&["verify", "--embedded", "--mirror", "http://127.0.0.1:1"]);
    assert_eq!(out.code(), Some(2), "{out}");
    let out = ws.run(&[
        "verify",
        "--upstream",
        "http://127.0.0.1:1",
        "--mirror",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(out.code(), Some(2), "{out}");
    let out = ws.run(&["verify", "--embedded", "--upstream", "127.0.0.1:1"]);
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("--upstream"), "{out}");
}

#[test]
fn embedded_cache_is_removed_on_sigterm() {
    let ws = Workspace::new("verify-embedded-term");
    // An upstream that accepts connections and never answers: pull #1 hangs.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    silent.set_nonblocking(true).unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut c = mirrorctl(&ws);
    c.env("TMPDIR", ws.aux("tmp"))
        .args([
            "verify",
            "--embedded",
            "--upstream",
            &url,
            "--image",
            "probe:latest",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    assert!(common::wait_until(Duration::from_secs(20), || {
        tmp_entries(&ws)
            .iter()
            .any(|n| n.starts_with("mirrorctl-embedded-"))
    }));
    // Pull #1 under way (the embedded server connected to the upstream; held open, never
    // answered): verify is past start-up and handles SIGTERM.
    let mut held = Vec::new();
    assert!(
        common::wait_until(Duration::from_secs(20), || match silent.accept() {
            Ok((conn, _)) => {
                held.push(conn);
                true
            }
            Err(_) => false,
        }),
        "the embedded server never connected to the upstream"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(tmp_entries(&ws).is_empty(), "{:?}", tmp_entries(&ws));
    drop(held);
    drop(silent);
}

/// On a terminal (a pty from `script`), pulls draw indicatif bars on stderr.
#[test]
fn progress_bars_on_a_terminal() {
    if !common::require(&["docker-registry", "skopeo", "script"]) {
        return;
    }
    let ws = Workspace::new("verify-embedded-tty");
    let Seeded { upstream, .. } = Seeded::start(&ws, Some(32));
    let cmdline = format!(
        "TMPDIR={} {} verify --embedded --upstream {} --image probe:big --color always",
        ws.aux("tmp").display(),
        common::BIN,
        upstream.url()
    );
    let typescript = ws.aux("tty").join("typescript");
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-c", &cmdline]).arg(&typescript);
    common::guard(&mut c);
    let out = common::run_timeout(&mut c, Duration::from_secs(120));
    assert_eq!(out.code(), Some(0), "{out}");
    let tty = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(tty.contains("pull #1 ["), "no bar for pull #1: {tty:?}");
    assert!(tty.contains("pull #2 ["), "no bar for pull #2: {tty:?}");
    assert!(tty.contains("MiB"), "{tty:?}");
    // Bars, not the plain lines used off a terminal.
    assert!(!tty.contains("blob bytes in"), "{tty:?}");
}
