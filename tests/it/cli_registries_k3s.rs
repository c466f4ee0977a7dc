//! The `registries` and `k3s` targets through the real binary. Reloading: CRI-O gets a SIGHUP
//! (proved on a real process named `crio` that dies of it), podman/skopeo need nothing, k3s/rke2
//! need a restart that is printed (never done under a `--root` that is not `/`). Also: relative
//! `--root` and `--state-dir` paths work.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mirrorctl");

struct Env {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(&root).unwrap();
        Env { tmp, root }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--root")
            .arg(&self.root)
            .arg("--state-dir")
            .arg(self.tmp.path().join("state"))
            .args(["--color", "never"])
            .args(args)
            .env_remove("MIRRORCTL_ROOT")
            .env_remove("MIRRORCTL_STATE_DIR")
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let o = self.run(args);
        assert!(o.status.success(), "{}", show(&o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)))
    }
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn reload_of(doc: &serde_json::Value, target: &str) -> serde_json::Value {
    doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == target)
        .unwrap_or_else(|| panic!("no {target} in {doc}"))["reload"]
        .clone()
}

/// A real process whose `/proc/<pid>/comm` is `crio`: a copy of `sleep` under that name.
struct FakeCrio(std::process::Child);

impl FakeCrio {
    fn start(dir: &Path) -> FakeCrio {
        let bin = dir.join("crio");
        fs::copy("/bin/sleep", &bin).unwrap();
        // Another test thread may fork while our copy's write descriptor is still open;
        // its child holds that descriptor until its exec, and exec of the copy meanwhile
        // fails with ETXTBSY. The window is short: retry.
        let mut tries = 0;
        loop {
            match Command::new(&bin).arg("300").spawn() {
                Ok(child) => return FakeCrio(child),
                Err(e) if e.raw_os_error() == Some(26) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("start {}: {e}", bin.display()),
            }
        }
    }
}

impl Drop for FakeCrio {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn registries_without_crio_needs_no_reload() {
    let env = Env::new();
    let doc = env.json(&[
        "arm",
        "--target",
        "registries",
        "--mirror",
        "http://127.0.0.1:5000",
        "--json",
    ]);
    let r = reload_of(&doc, "registries");
    assert_eq!(r["needed"], false, "{doc}");
    assert!(
        r["detail"].as_str().unwrap().contains("per command"),
        "{doc}"
    );
}

#[test]
fn registries_sighups_crio_only_with_reload() {
    let env = Env::new();
    let mut crio = FakeCrio::start(env.tmp.path());
    let pid = crio.0.id();
    fs::create_dir_all(env.root.join("var/run")).unwrap();
    fs::write(env.root.join("var/run/crio.pid"), format!("{pid}\n")).unwrap();

    // Without --reload: reported, not done, and the process is untouched.
    let doc = env.json(&[
        "arm",
        "--target",
        "registries",
        "--mirror",
        "http://127.0.0.1:5000",
        "--json",
    ]);
    let r = reload_of(&doc, "registries");
    assert_eq!(
        (r["needed"].clone(), r["done"].clone()),
        (true.into(), false.into()),
        "{doc}"
    );
    assert_eq!(r["action"], format!("SIGHUP crio (pid {pid})"), "{doc}");
    assert!(crio.0.try_wait().unwrap().is_none(), "crio got a signal");

    // With --reload the pending reload is done: crio (sleep) dies of SIGHUP.
    let doc = env.json(&[
        "arm",
        "--target",
        "registries",
        "--mirror",
        "http://127.0.0.1:5000",
        "--reload",
        "--json",
    ]);
    let r = reload_of(&doc, "registries");
    assert_eq!(r["done"], true, "{doc}");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = crio.0.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "crio not signalled");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(libc::SIGHUP), "{status:?}");
}

#[test]
fn k3s_restart_is_printed_and_not_done_under_a_private_root() {
    let env = Env::new();
    fs::create_dir_all(env.root.join("etc/rancher/rke2")).unwrap();
    fs::create_dir_all(env.root.join("etc/rancher/k3s")).unwrap();
    let o = env.run(&[
        "arm",
        "--target",
        "k3s",
        "--mirror",
        "http://127.0.0.1:5000",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("systemctl restart k3s; systemctl restart rke2-server"),
        "{}",
        show(&o)
    );
    let doc = env.json(&["disarm", "--target", "k3s", "--reload", "--json"]);
    let r = reload_of(&doc, "k3s");
    assert_eq!(r["done"], false, "{doc}");
    assert!(
        r["detail"].as_str().unwrap().contains("--root is not /"),
        "{doc}"
    );
    assert!(!env.root.join("etc/rancher/k3s/registries.yaml").exists());
    assert!(!env.root.join("etc/rancher/rke2/registries.yaml").exists());
}

#[test]
fn relative_root_and_state_dir() {
    let env = Env::new();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(env.tmp.path())
            .args(["--root", "root", "--state-dir", "state", "--color", "never"])
            .args(args)
            .env_remove("MIRRORCTL_ROOT")
            .env_remove("MIRRORCTL_STATE_DIR")
            .output()
            .unwrap()
    };
    let o = run(&[
        "arm",
        "--target",
        "k3s,registries",
        "--mirror",
        "http://127.0.0.1:5000",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(env.root.join("etc/rancher/k3s/registries.yaml").exists());
    assert!(env.tmp.path().join("state/journal.json").exists());
    let o = run(&["disarm"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(!env.root.join("etc").exists(), "disarm left dirs behind");
}
