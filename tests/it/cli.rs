//! The engine's guarantees through the real binary: exit codes, modes and owners, links, the
//! lock, `--json` documents, status and drift, the dockerd flag conflict.

use crate::common::{self, json, Daemon, Workspace};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const DAEMON: &str = "/etc/docker/daemon.json";

#[test]
fn bad_urls_and_usage_exit_2() {
    let ws = Workspace::new("cli");
    for bad in [
        "mirror.example:5000",
        "ftp://m",
        "http://u:p@m",
        "http://m/?q=1",
        // A path is a project (`http://m/path` is one), but not dockerd's prefix before /v2
        // nor a name no registry has.
        "http://m/path/v2",
        "http://m/Path",
    ] {
        let o = ws.run(&["arm", "--target", "docker", "--mirror", bad]);
        assert_eq!(o.code(), Some(2), "{bad}: {o}");
        assert!(o.stderr.contains("mirror URL"), "{o}");
    }
    let o = ws.run(&["arm", "--target", "nope", "--mirror", "http://m"]);
    assert_eq!(o.code(), Some(2));
    let o = ws.run(&[
        "arm",
        "--target",
        "docker",
        "--registry",
        "https://ghcr.io",
        "--mirror",
        "http://m",
    ]);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(!ws.under_root(DAEMON).exists());
    // No client under the root and no --target: a usage error that says what to do.
    let o = ws.run(&["arm", "--mirror", "http://m:1"]);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(o.stderr.contains("--target"));
}

#[test]
fn json_documents_for_success_and_errors() {
    let ws = Workspace::new("cli");
    ws.write(DAEMON, "{}\n");
    let o = ws.run(&["arm", "--mirror", "http://127.0.0.1:5001", "--json"]);
    assert!(o.ok(), "{o}");
    let v = json(&o);
    assert_eq!(v["command"], "arm");
    assert_eq!(v["ok"], true);
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["mirrors"]["registries"][0]["registry"], "docker.io");
    assert_eq!(
        v["mirrors"]["registries"][0]["mirrors"][0],
        "http://127.0.0.1:5001"
    );
    let t = &v["targets"][0];
    assert_eq!(t["target"], "docker");
    assert_eq!(t["status"], "changed");
    assert_eq!(t["files"][0]["path"], DAEMON);
    assert_eq!(t["files"][0]["status"], "changed");
    assert!(t["files"][0]["diff"]
        .as_str()
        .unwrap()
        .contains("+  \"registry-mirrors\""));
    assert_eq!(t["reload"]["needed"], false, "no dockerd running: {t}");

    let o = ws.run(&["arm", "--mirror", "http://127.0.0.1:5001", "--json"]);
    assert_eq!(json(&o)["targets"][0]["status"], "unchanged");

    let o = ws.run(&["status", "--json"]);
    let v = json(&o);
    let docker = common::target(&v, "docker");
    assert_eq!(docker["armed"], true);
    assert_eq!(docker["drift"], false);
    assert_eq!(docker["mirrors"][0], "docker.io=http://127.0.0.1:5001");

    // An unparseable file: exit 2 and a JSON error document naming the file and position.
    let ws2 = Workspace::new("cli");
    ws2.write(DAEMON, "{\n  \"debug\": tru\n}\n");
    let o = ws2.run(&["arm", "--mirror", "http://127.0.0.1:5001", "--json"]);
    assert_eq!(o.code(), Some(2), "{o}");
    let v = json(&o);
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 2);
    assert!(
        v["error"].as_str().unwrap().contains("daemon.json`:2:"),
        "{v}"
    );
}

#[test]
fn keeps_mode_and_owner_and_creates_with_0644() {
    let ws = Workspace::new("cli");
    let f = ws.write(DAEMON, "{}\n");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    // Give the file away (the tests run as root in CI; skip the owner part otherwise).
    let as_root = unsafe { libc::geteuid() } == 0;
    if as_root {
        std::os::unix::fs::chown(&f, Some(1234), Some(2345)).unwrap();
    }
    let o = ws.run(&["arm", "--mirror", "http://127.0.0.1:5001"]);
    assert!(o.ok(), "{o}");
    let m = fs::metadata(&f).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600);
    if as_root {
        assert_eq!((m.uid(), m.gid()), (1234, 2345));
    }

    let ws = Workspace::new("cli");
    let o = ws.run(&[
        "arm",
        "--target",
        "docker",
        "--mirror",
        "http://127.0.0.1:5001",
    ]);
    assert!(o.ok(), "{o}");
    assert_eq!(
        fs::metadata(ws.under_root(DAEMON)).unwrap().mode() & 0o7777,
        0o644
    );
    assert_eq!(
        fs::metadata(ws.under_root("/etc/docker")).unwrap().mode() & 0o7777,
        0o755
    );
    assert!(o.stdout.contains("created"));
    // disarm removes the file and the directories arm created.
    let o = ws.run(&["disarm"]);
    assert!(o.ok(), "{o}");
    assert!(!ws.under_root("/etc").exists(), "{o}");
}

/// Does another open file description hold a `flock` on `path`? Tried without blocking (a lock
/// this takes is released at once, when the file is closed).
fn locked(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(path).unwrap();
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
}

#[test]
fn second_run_waits_for_the_lock_then_fails_clearly() {
    let ws = Workspace::new("cli");
    ws.write(DAEMON, "{}\n");
    fs::create_dir_all(ws.state_dir()).unwrap();
    // Hold the lock with flock(1) while mirrorctl tries (stopped below, or on drop).
    let lock = ws.state_dir().join("lock");
    fs::write(&lock, "").unwrap();
    let mut flock = Command::new("flock");
    flock.arg(&lock).args(["sleep", "60"]);
    let mut holder = Daemon::spawn("flock", flock, &ws.aux("flock"));
    assert!(
        common::wait_until(Duration::from_secs(10), || locked(&lock)),
        "flock(1) never took the lock"
    );
    let o = ws.run(&[
        "arm",
        "--mirror",
        "http://127.0.0.1:5001",
        "--lock-timeout",
        "1",
    ]);
    // flock's child `sleep` holds the lock too: this ends the whole group.
    holder.stop();
    assert_eq!(o.code(), Some(1), "{o}");
    let err = o.stderr;
    assert!(
        err.contains("another mirrorctl run") && err.contains("--lock-timeout"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(ws.under_root(DAEMON)).unwrap(), "{}\n");
    // Once released, the same run works.
    let o = ws.run(&[
        "arm",
        "--mirror",
        "http://127.0.0.1:5001",
        "--lock-timeout",
        "1",
    ]);
    assert!(o.ok(), "{o}");
}

#[test]
fn rearm_replaces_only_mirrorctls_entries_and_status_sees_drift() {
    let ws = Workspace::new("cli");
    ws.write(
        DAEMON,
        "{\n  \"registry-mirrors\": [\"https://user.example\"]\n}\n",
    );
    let o = ws.run(&[
        "arm",
        "--mirror",
        "http://a.example:1",
        "--mirror",
        "http://b.example:2",
    ]);
    assert!(o.ok(), "{o}");
    let o = ws.run(&["arm", "--mirror", "http://c.example:3"]);
    assert!(o.ok(), "{o}");
    let text = fs::read_to_string(ws.under_root(DAEMON)).unwrap();
    assert!(
        text.contains("http://c.example:3") && text.contains("https://user.example"),
        "{text}"
    );
    assert!(
        !text.contains("a.example") && !text.contains("b.example"),
        "{text}"
    );

    // The user edits the file: status reports drift; disarm keeps the edit.
    let edited = text.replacen('{', "{\n  \"debug\": true,", 1);
    fs::write(ws.under_root(DAEMON), &edited).unwrap();
    let o = ws.run(&["status"]);
    assert!(o.stdout.contains("edited since arm"), "{o}");
    let o = ws.run(&["disarm"]);
    assert!(o.ok(), "{o}");
    let text = fs::read_to_string(ws.under_root(DAEMON)).unwrap();
    assert!(
        text.contains("\"debug\": true") && text.contains("https://user.example"),
        "{text}"
    );
    assert!(!text.contains("c.example"), "{text}");
}

#[test]
fn dry_run_writes_nothing_not_even_state() {
    let ws = Workspace::new("cli");
    let o = ws.run(&[
        "arm",
        "--target",
        "docker,buildkit,containerd",
        "--mirror",
        "http://127.0.0.1:5001",
        "--dry-run",
    ]);
    assert!(o.ok(), "{o}");
    assert!(o.stdout.contains("dry run"));
    assert_eq!(fs::read_dir(ws.root()).unwrap().count(), 0);
    assert!(!ws.state_dir().exists());
}

#[test]
fn refuses_when_dockerd_runs_with_mirror_flags() {
    let ws = Workspace::new("cli");
    ws.write(DAEMON, "{}\n");
    // A process whose comm is `dockerd` and whose command line has --registry-mirror.
    let bin = ws.aux("fake").join("dockerd");
    common::write_executable(&bin, "#!/bin/sh\nwhile :; do sleep 1; done\n");
    let mut child = Command::new(&bin)
        .arg("--registry-mirror=https://flag.example")
        .spawn()
        .unwrap();
    ws.write("/var/run/docker.pid", &child.id().to_string());
    // What mirrorctl looks at, once the script runs: its comm and its command line.
    let proc_file = |f: &str| fs::read(format!("/proc/{}/{f}", child.id())).unwrap_or_default();
    let ready = common::wait_until(Duration::from_secs(10), || {
        proc_file("comm") == b"dockerd\n"
            && String::from_utf8_lossy(&proc_file("cmdline")).contains("--registry-mirror=")
    });
    let comm = String::from_utf8_lossy(&proc_file("comm")).into_owned();
    let o = ws.run(&["arm", "--mirror", "http://127.0.0.1:5001"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        ready,
        "test setup: the fake dockerd never ran (comm {comm:?})"
    );
    assert_eq!(comm.trim(), "dockerd", "test setup: comm is {comm}");
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(o.stderr.contains("--registry-mirror"), "{o}");
    assert_eq!(fs::read_to_string(ws.under_root(DAEMON)).unwrap(), "{}\n");
}

#[test]
fn unparseable_files_are_left_byte_identical() {
    let ws = Workspace::new("cli");
    let bad = "{\n  \"registry-mirrors\": [\"http://x:1\",]\n}\n";
    let f = ws.write(DAEMON, bad);
    let before = fs::metadata(&f).unwrap().mtime_nsec();
    let o = ws.run(&["arm", "--mirror", "http://127.0.0.1:5001"]);
    assert_eq!(o.code(), Some(2), "{o}");
    let err = o.stderr;
    assert!(err.contains(&format!("{}`:2:", f.display())), "{err}");
    assert!(err.contains("left untouched"), "{err}");
    assert_eq!(fs::read_to_string(&f).unwrap(), bad);
    assert_eq!(fs::metadata(&f).unwrap().mtime_nsec(), before);
    assert!(!ws.state_dir().join("journal.json").exists());
}

/// `mirrorctl … | head` closes the pipe early: the command finishes (an `arm` is not left half
/// done), drops the rest of its output, keeps its exit code and never panics; a stdout that
/// cannot take the output (a full disk, here `/dev/full`) fails a run that otherwise succeeded.
#[test]
fn a_closed_or_full_stdout_is_no_panic() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::process::Stdio;
    let ws = Workspace::new("stdout");
    ws.write("etc/docker/daemon.json", "{}\n");
    let runs: [&[&str]; 4] = [
        &["status", "--json"],
        &["status"],
        &["completions", "bash"],
        &[
            "arm",
            "--target",
            "docker",
            "--mirror",
            "http://127.0.0.1:5000",
            "--json",
        ],
    ];
    for args in runs {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) fills both descriptors, each owned once below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        drop(read); // the reader is gone before the first byte
        let mut c = common::mirrorctl(&ws);
        c.env("MIRRORCTL_DOCKERD_VERSION", "20.10").args(args);
        let o = c
            .stdout(Stdio::from(write))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            !stderr.contains("panicked"),
            "{args:?} into a closed pipe: {stderr}"
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?} into a closed pipe: {stderr}"
        );
    }
    // The arm above ran to its end although nobody read its report.
    let armed = fs::read_to_string(ws.under_root("etc/docker/daemon.json")).unwrap();
    assert!(armed.contains("http://127.0.0.1:5000"), "{armed}");

    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = common::mirrorctl(&ws)
        .args(["status", "--json"])
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "status into /dev/full: {stderr}");
    assert!(
        stderr.contains("could not write the output to stdout"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
