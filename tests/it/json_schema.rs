//! Every `--json` document validates against its JSON Schema in `completions/schema/`, which
//! forbids keys it does not list: a field added to a document without its schema (and so
//! without the README's description of it) fails here. Real outputs: arm, disarm (dry run,
//! reload-free), status, verify against a real distribution mirror (passing, and failing at
//! preflight), `verify --cleanup`, and error documents (a usage error, a bad file, a signal).

use crate::common::{self, mirrorctl, run, Lab, Out, Workspace};
use std::path::Path;

fn schema(name: &str) -> jsonschema::Validator {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("completions/schema")
        .join(format!("{name}.schema.json"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    jsonschema::validator_for(&v).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub(crate) fn check(name: &str, out: &Out) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{out}"));
    let errors: Vec<String> = schema(name)
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} schema: {}\n{doc:#}",
        errors.join("\n")
    );
    doc
}

#[test]
fn write_commands_status_and_errors_match_their_schemas() {
    let ws = Workspace::new("schema");
    let daemon = ws.under_root("etc/docker/daemon.json");
    std::fs::create_dir_all(daemon.parent().unwrap()).unwrap();
    std::fs::write(&daemon, "{\n  \"debug\": true\n}\n").unwrap();
    let arm = |extra: &[&str]| {
        let mut c = mirrorctl(&ws);
        c.env("MIRRORCTL_DOCKERD_VERSION", "28.0")
            .args(["arm", "--json", "--target", "docker,containerd,buildkit"])
            .args(["--mirror", "http://127.0.0.1:5001"])
            .args(["--mirror", "ghcr.io=https://m.example", "--insecure"])
            .args(extra);
        run(&mut c)
    };
    for extra in [&["--dry-run"][..], &[], &[]] {
        let out = arm(extra);
        assert_eq!(out.code(), Some(0), "{out}");
        check("run", &out);
    }
    let out = run(mirrorctl(&ws).args(["status", "--json"]));
    check("status", &out);
    let out = run(mirrorctl(&ws).args(["disarm", "--json", "--dry-run"]));
    check("run", &out);
    let out = run(mirrorctl(&ws).args(["disarm", "--json"]));
    let doc = check("run", &out);
    assert_eq!(doc["ok"], true, "{out}");
    let out = run(mirrorctl(&ws).args(["disarm", "--json", "--target", "k3s"]));
    check("run", &out);

    // Errors: usage (clap), a bad file (exit 2), a bad flag value.
    for args in [
        &["arm", "--json"][..],
        &["arm", "--json", "--target", "bogus", "--mirror", "http://a"],
        &["verify", "--json"],
        &[
            "verify",
            "--json",
            "--mirror",
            "http://a",
            "--timeout",
            "99999999999d",
        ],
    ] {
        let out = run(mirrorctl(&ws).args(args));
        assert_eq!(out.code(), Some(2), "{out}");
        check("error", &out);
    }
    std::fs::write(&daemon, "{\n  \"debug\": tru\n}\n").unwrap();
    let out = arm(&[]);
    assert_eq!(out.code(), Some(2), "{out}");
    let doc = check("error", &out);
    assert!(
        doc["error"].as_str().unwrap().contains("daemon.json"),
        "{out}"
    );

    let out = run(mirrorctl(&ws).args(["verify", "--cleanup", "--json"]));
    check("verify-cleanup", &out);

    // The schemas do refuse what they do not list, and wrong types.
    let e = schema("error");
    assert!(e.is_valid(&serde_json::json!({"ok": false, "error": "x", "exit_code": 2})));
    assert!(
        !e.is_valid(&serde_json::json!({"ok": false, "error": "x", "exit_code": 2, "extra": 1}))
    );
    assert!(!e.is_valid(&serde_json::json!({"ok": false, "error": 3, "exit_code": 2})));
}

#[test]
fn verify_documents_match_their_schema() {
    if !common::require(&["docker-registry", "skopeo", "unshare"]) {
        return;
    }
    let ws = Workspace::new("schema-verify");
    let lab = Lab::start(&ws);
    let verify = |args: &[&str]| {
        let mut c = mirrorctl(&ws);
        c.arg("verify").args(args).arg("--json");
        run(&mut c)
    };
    for image in ["probe:latest", "probe:multi"] {
        let out = verify(&["--mirror", &lab.mirror.url(), "--image", image]);
        assert_eq!(out.code(), Some(0), "{out}");
        check("verify", &out);
    }
    // arm with its preflight against the live mirror.
    let mut c = mirrorctl(&ws);
    c.env_remove("MIRRORCTL_NO_PREFLIGHT").args([
        "arm",
        "--json",
        "--target",
        "buildkit",
        "--mirror",
        &lab.mirror.url(),
    ]);
    let out = run(&mut c);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(check("run", &out)["preflight"].is_array(), "{out}");
    // Warm now: the push probe runs (`push_probe` present).
    let out = verify(&["--mirror", &lab.mirror.url(), "--image", "probe:latest"]);
    let doc = check("verify", &out);
    assert!(doc["push_probe"].is_string(), "{out}");
    // Not a cache: the upstream itself.
    let out = verify(&["--mirror", &lab.upstream.url(), "--image", "probe:latest"]);
    assert_eq!(out.code(), Some(1), "{out}");
    check("verify", &out);
    // Preflight fails: nothing listens.
    let port = common::free_port();
    let out = verify(&["--mirror", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = check("verify", &out);
    assert_eq!(doc["preflight"]["error"]["kind"], "refused", "{out}");
    // A missing image: pull #1 fails.
    let out = verify(&["--mirror", &lab.mirror.url(), "--image", "nosuch:1"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = check("verify", &out);
    assert_eq!(doc["pulls"][0]["error"]["kind"], "not-found", "{out}");
}

/// `verify` (with `extra` args) against a "mirror" that accepts the connection and never
/// answers, stdout to a file, SIGTERM once preflight has connected: (status, stdout).
fn verify_killed_by_sigterm(ws: &Workspace, extra: &[&str]) -> Out {
    use std::os::unix::process::CommandExt;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let out_path = ws.aux("out").join("stdout");
    let mut c = mirrorctl(ws);
    c.args(["verify", "--mirror", &url, "--timeout", "60"])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    let mut child = c.spawn().unwrap();
    // Preflight has connected: verify is waiting on the mirror now.
    let (_conn, _) = listener.accept().unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    Out {
        cmdline: format!("verify {}", extra.join(" ")),
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: String::new(),
    }
}

/// SIGTERM during `verify --json` still prints one document: the error document, exit 143;
/// in text mode, what it saw so far, also when stdout is a file.
#[test]
fn a_signalled_verify_prints_the_error_document() {
    let ws = Workspace::new("schema-signal");
    let out = verify_killed_by_sigterm(&ws, &["--json"]);
    assert_eq!(out.code(), Some(143), "{out}");
    let doc = check("error", &out);
    assert_eq!(doc["exit_code"], 143, "{out}");
    assert!(doc["error"].as_str().unwrap().contains("SIGTERM"), "{out}");
    let out = verify_killed_by_sigterm(&ws, &[]);
    assert_eq!(out.code(), Some(143), "{out}");
    assert!(out.stdout.starts_with("verify "), "{out}");
    assert!(out.stdout.contains("interrupted by SIGTERM"), "{out}");
}
