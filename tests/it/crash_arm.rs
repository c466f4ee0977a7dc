//! Crash safety of arm and disarm: each run is killed with SIGKILL at a random moment in its
//! first milliseconds, then a complete `disarm` must leave every file byte-identical to what it
//! was before the first arm, with no temp file left. While killed runs pile up, every config
//! file must always parse (old or new bytes, never torn).
//!
//! `MIRRORCTL_CRASH_RUNS=N` (default 24) runs more; `MIRRORCTL_CRASH_SEED=S` replays a run.

use crate::common::{self, mirrorctl_cmd, snapshot};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Five real files (the fixtures' own), one per target, and the mirror each is armed with.
const FILES: &[(&str, &str)] = &[
    ("docker/other-keys-4-space", "etc/docker/daemon.json"),
    (
        "buildkit/no-trailing-newline",
        "etc/buildkit/buildkitd.toml",
    ),
    (
        "containerd/debian-default-config",
        "etc/containerd/config.toml",
    ),
    (
        "registries/main-docker-io-table-with-mirrors",
        "etc/containers/registries.conf",
    ),
    ("k3s/configs-with-auth", "etc/rancher/k3s/registries.yaml"),
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Every config file under `root` parses with its client's grammar.
fn all_parse(root: &Path) -> Result<(), String> {
    for rel in snapshot(root).keys() {
        let p = root.join(rel);
        if p.is_dir() {
            continue;
        }
        let name = rel.to_string_lossy().to_string();
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{name}: {e}"))?;
        let body = text.trim_start_matches('\u{feff}');
        let ok = if name.ends_with(".json") {
            body.trim().is_empty() || serde_json::from_str::<serde_json::Value>(body).is_ok()
        } else if name.ends_with(".toml") || name.ends_with(".conf") {
            body.parse::<toml_edit::DocumentMut>().is_ok()
        } else if name.ends_with(".yaml") {
            yaml_rust2::YamlLoader::load_from_str(body).is_ok()
        } else {
            true
        };
        if !ok {
            return Err(format!("{name} does not parse:\n{text}"));
        }
    }
    Ok(())
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(temp_files(&p));
        } else if p.to_string_lossy().contains(".mirrorctl-") {
            out.push(p);
        }
    }
    out
}

fn mirrorctl(root: &Path, state: &Path, args: &[&str]) -> Command {
    let mut c = mirrorctl_cmd();
    c.env("MIRRORCTL_DOCKERD_VERSION", "20.10")
        .arg("--root")
        .arg(root)
        .arg("--state-dir")
        .arg(state)
        .args(["-q", "--color", "never"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

const ARM: &[&str] = &[
    "arm",
    "--target",
    "docker,buildkit,containerd,registries,k3s",
    "--mirror",
    "http://127.0.0.1:5001",
    "--mirror",
    "ghcr.io=https://mirror.example:5443",
    "--insecure",
];

#[test]
fn arm_and_disarm_killed_at_random_moments_leave_nothing_behind() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let ws = common::Workspace::new("crash");
    let (root, state) = (ws.root(), ws.state_dir());
    for (case, rel) in FILES {
        let from = fixtures.join(case).join("before").join(rel);
        let to = root.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    let original = snapshot(&root);
    let runs: usize = std::env::var("MIRRORCTL_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let seed: u64 = std::env::var("MIRRORCTL_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test: {runs} runs, MIRRORCTL_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let mut killed_mid_run = 0;
    for run in 0..runs {
        // A few killed runs in a row (arm or disarm), then a complete disarm.
        for _ in 0..=(rng.next() % 3) {
            let args: &[&str] = if rng.next().is_multiple_of(3) {
                &["disarm"]
            } else {
                ARM
            };
            let mut c = mirrorctl(&root, &state, args);
            c.process_group(0);
            let mut child = c.spawn().unwrap();
            // The kill moment is the thing randomised here, not a wait for something.
            let at = Duration::from_micros(rng.next() % 12_000);
            let start = Instant::now();
            let mut finished = false;
            while start.elapsed() < at {
                if child.try_wait().unwrap().is_some() {
                    finished = true;
                    break;
                }
                std::thread::yield_now();
            }
            // SAFETY: killing the group of our own child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let st = child.wait().unwrap();
            if !finished && st.code().is_none() {
                killed_mid_run += 1;
            }
            if let Err(e) = all_parse(&root) {
                panic!("run {run} (seed {seed}): after a kill {e}");
            }
        }
        let out = mirrorctl(&root, &state, &["disarm"]).output().unwrap();
        assert!(
            out.status.success(),
            "run {run} (seed {seed}): disarm failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let left = [temp_files(&root), temp_files(&state)].concat();
        assert!(
            left.is_empty(),
            "run {run} (seed {seed}): temp files left after a complete disarm: {left:?}"
        );
        // Byte-identical files and modes, and no file or directory more or less.
        assert_eq!(
            snapshot(&root),
            original,
            "run {run} (seed {seed}): the tree differs after a complete disarm"
        );
    }
    eprintln!("crash test: {killed_mid_run} runs were killed before they finished");
    assert!(
        killed_mid_run > 0,
        "no run was killed before it finished: the test would not see a crash"
    );
}
