//! Fuzz harness on stable Rust for every config planner and the OCI parsers (one test per
//! target). Inputs are fixture files (`fixtures/<target>/<case>/{before,after}/**`) and small
//! built-in seeds, mutated byte-wise and per format (truncation, flips, splices, duplicated
//! keys and tables, deep nesting, huge numbers, CRLF/BOM mixes, YAML document markers, tabs,
//! invalid UTF-8 where an API takes bytes). See `planners.rs` and `oci.rs` for the properties.
//!
//! Budget: without environment variables each target runs a fixed number of cases from a fixed
//! seed (a few thousand in total, seconds in a debug build). For a long run:
//!
//! - `MIRRORCTL_FUZZ_CASES=N`: N cases per target;
//! - `MIRRORCTL_FUZZ_SECS=S`: S seconds per target (cases unbounded unless N is given too);
//! - `MIRRORCTL_FUZZ_SEED=X`: the base seed (decimal or `0x…`); a long run without it takes one
//!   from the clock, and every failure prints the seed and case number that reproduce it;
//! - `MIRRORCTL_FUZZ_CASE=I`: run case I only (with the seed of the failure), writing its input
//!   first — also the way to get the input of a case that aborted the process (stack overflow:
//!   the thread name in the abort message holds seed and case).
//!
//! A failing case's input goes to `<target dir>/fuzz-failures/<target>-<case>` (the file as the
//! planner saw it), with `<target>-<case>.txt` describing the rest (mirror set, context files)
//! and what failed.

mod mutate;
mod oci;
mod planners;
mod rng;
mod seeds;

use rng::{fnv, mix, Rng};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Once};
use std::time::{Duration, Instant};

/// One fuzz target: generates a case from a PRNG and checks its properties.
pub trait Target: Send + Sync + 'static {
    type Case: Send + 'static;
    fn gen(&self, rng: &mut Rng) -> Self::Case;
    /// The main input, as written to the failure file.
    fn input(&self, case: &Self::Case) -> Vec<u8>;
    /// Everything else about the case, for the failure report.
    fn describe(&self, case: &Self::Case) -> String;
    /// `Ok(true)`: the input was accepted and every property held; `Ok(false)`: it was
    /// rejected (an error, no panic); `Err`: a property failed (first line: what, stable enough
    /// to group failures by).
    fn check(&self, case: &Self::Case) -> Result<bool, String>;
}

/// The main thread's stack size on Linux: the binary runs the planners there, so a parser's
/// recursion depth is judged against what it would really have.
const STACK: usize = 8 << 20;
const GEN_STACK: usize = 512 << 20;
/// A case running longer than this is reported as a hang.
const HANG: Duration = Duration::from_secs(60);
/// At most this many distinct failures are recorded per target before it stops.
const MAX_FAILURES: usize = 12;
const DEFAULT_SEED: u64 = 0x6d69_7272_6f72_6374; // "mirrorct"

struct Budget {
    cases: u64,
    secs: Option<f64>,
    seed: u64,
    only: Option<u64>,
}

fn env_num(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v}: not a number")))
}

fn budget(default_cases: u64) -> Budget {
    let cases = env_num("MIRRORCTL_FUZZ_CASES");
    let secs = std::env::var("MIRRORCTL_FUZZ_SECS").ok().map(|s| {
        s.trim()
            .parse::<f64>()
            .expect("MIRRORCTL_FUZZ_SECS: seconds")
    });
    let long = cases.is_some() || secs.is_some();
    let seed = env_num("MIRRORCTL_FUZZ_SEED").unwrap_or_else(|| {
        if long {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            mix(t.as_nanos() as u64)
        } else {
            DEFAULT_SEED
        }
    });
    Budget {
        cases: cases.unwrap_or(if secs.is_some() {
            u64::MAX
        } else {
            default_cases
        }),
        secs,
        seed,
        only: env_num("MIRRORCTL_FUZZ_CASE"),
    }
}

thread_local! {
    /// Set in case threads: the panic hook records the message here instead of printing it.
    static CAPTURE: RefCell<Option<Option<(String, String)>>> = const { RefCell::new(None) };
}

fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".into());
            let loc = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let captured = CAPTURE.with(|c| match c.borrow_mut().as_mut() {
                Some(slot) => {
                    *slot = Some((msg.clone(), loc.clone()));
                    true
                }
                None => false,
            });
            if !captured {
                prev(info);
            }
        }));
    });
}

enum Outcome {
    Accepted,
    Rejected,
    Failed(String),
    Panicked { msg: String, loc: String },
}

fn failure_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // <target>/debug/deps/fuzz-<hash>
            std::env::current_exe()
                .ok()
                .and_then(|p| p.ancestors().nth(3).map(|p| p.to_path_buf()))
        })
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")));
    let base = if base.is_relative() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(base)
    } else {
        base
    };
    base.join("fuzz-failures")
}

/// Run `target` under the budget; fails the test with every distinct failure found.
pub fn run<T: Target>(name: &'static str, target: T, default_cases: u64) {
    // Cases are generated on a thread with a big stack: the tree mutators parse inputs the
    // mutations nested deeply, and a generator running out of stack is not a finding.
    let r = std::thread::Builder::new()
        .name(format!("fuzz {name} generator"))
        .stack_size(GEN_STACK)
        .spawn(move || run_on_this_thread(name, target, default_cases))
        .expect("spawn the generator thread")
        .join();
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}

fn run_on_this_thread<T: Target>(name: &str, target: T, default_cases: u64) {
    install_hook();
    let b = budget(default_cases);
    let target = Arc::new(target);
    let start = Instant::now();
    let (mut accepted, mut rejected, mut ran) = (0u64, 0u64, 0u64);
    let mut seen: Vec<String> = Vec::new();
    let mut report: Vec<String> = Vec::new();
    let dir = failure_dir();
    let repro = |i: u64| {
        format!(
            "MIRRORCTL_FUZZ_SEED={:#x} MIRRORCTL_FUZZ_CASE={i} cargo test --test it fuzz::{name}",
            b.seed
        )
    };
    let mut i = 0u64;
    while i < b.cases {
        if b.secs.is_some_and(|s| start.elapsed().as_secs_f64() >= s) {
            break;
        }
        let case_no = match b.only {
            Some(only) => only,
            None => i,
        };
        let mut rng = Rng::new(mix(b.seed ^ fnv(name) ^ mix(case_no)));
        let case = target.gen(&mut rng);
        let input = target.input(&case);
        let describe = target.describe(&case);
        if b.only.is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join(format!("{name}-{case_no}"));
            std::fs::write(&p, &input).unwrap();
            std::fs::write(p.with_extension("txt"), &describe).unwrap();
            eprintln!("[{name}] case {case_no}: input in {}", p.display());
        }
        let (tx, rx) = mpsc::channel();
        let t = Arc::clone(&target);
        std::thread::Builder::new()
            .name(format!("fuzz {name} case {case_no} seed {:#x}", b.seed))
            .stack_size(STACK)
            .spawn(move || {
                CAPTURE.with(|c| *c.borrow_mut() = Some(None));
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.check(&case)));
                let outcome = match r {
                    Ok(Ok(true)) => Outcome::Accepted,
                    Ok(Ok(false)) => Outcome::Rejected,
                    Ok(Err(m)) => Outcome::Failed(m),
                    Err(_) => {
                        let (msg, loc) = CAPTURE
                            .with(|c| c.borrow_mut().take().flatten())
                            .unwrap_or_default();
                        Outcome::Panicked { msg, loc }
                    }
                };
                let _ = tx.send(outcome);
            })
            .expect("spawn a case thread");
        let outcome = match rx.recv_timeout(HANG) {
            Ok(o) => o,
            Err(_) => Outcome::Failed(format!("hang: no result after {HANG:?}")),
        };
        ran += 1;
        let (sig, text) = match outcome {
            Outcome::Accepted => {
                accepted += 1;
                (None, String::new())
            }
            Outcome::Rejected => {
                rejected += 1;
                (None, String::new())
            }
            Outcome::Failed(m) => (Some(m.lines().next().unwrap_or("").to_string()), m),
            Outcome::Panicked { msg, loc } => (
                Some(format!("panic at {loc}")),
                format!("panic at {loc}: {msg}"),
            ),
        };
        if let Some(sig) = sig {
            let hang = sig.starts_with("hang");
            if !seen.contains(&sig) {
                seen.push(sig.clone());
                std::fs::create_dir_all(&dir).unwrap();
                let p = dir.join(format!("{name}-{case_no}"));
                std::fs::write(&p, &input).unwrap();
                std::fs::write(
                    p.with_extension("txt"),
                    format!(
                        "{text}\n\n--- case\n{describe}\n--- reproduce\n{}\n",
                        repro(case_no)
                    ),
                )
                .unwrap();
                report.push(format!(
                    "[{name}] case {case_no}: {text}\n  input: {} (details: {}.txt)\n  reproduce: {}",
                    p.display(),
                    p.display(),
                    repro(case_no)
                ));
            }
            if seen.len() >= MAX_FAILURES || hang {
                break;
            }
        }
        if b.only.is_some() {
            break;
        }
        i += 1;
    }
    eprintln!(
        "[{name}] {ran} cases in {:.1}s (seed {:#x}): {accepted} accepted, {rejected} rejected, {} distinct failures",
        start.elapsed().as_secs_f64(),
        b.seed,
        report.len()
    );
    if !report.is_empty() {
        panic!(
            "{} distinct failure(s) in {name}:\n\n{}",
            report.len(),
            report.join("\n\n")
        );
    }
}

// Default case counts: a few thousand in total, well under a minute in a debug build.
const PLAN_CASES: u64 = 600;
const OCI_CASES: u64 = 500;

#[test]
fn docker() {
    run(
        "docker",
        planners::Planner(planners::Which::Docker),
        PLAN_CASES,
    );
}

#[test]
fn buildkit() {
    run(
        "buildkit",
        planners::Planner(planners::Which::Buildkit),
        PLAN_CASES,
    );
}

#[test]
fn containerd_hosts() {
    run(
        "containerd_hosts",
        planners::Planner(planners::Which::Hosts),
        PLAN_CASES,
    );
}

#[test]
fn containerd_config() {
    run(
        "containerd_config",
        planners::Planner(planners::Which::Config),
        PLAN_CASES,
    );
}

#[test]
fn registries() {
    run(
        "registries",
        planners::Planner(planners::Which::Registries),
        PLAN_CASES,
    );
}

#[test]
fn k3s() {
    run("k3s", planners::Planner(planners::Which::K3s), PLAN_CASES);
}

#[test]
fn earthly() {
    run(
        "earthly",
        planners::Planner(planners::Which::Earthly),
        PLAN_CASES,
    );
}

#[test]
fn buildx() {
    run(
        "buildx",
        planners::Planner(planners::Which::Buildx),
        PLAN_CASES / 2,
    );
}

#[test]
fn oci_reference() {
    run("oci_reference", oci::Oci(oci::Which::Reference), OCI_CASES);
}

#[test]
fn oci_digest() {
    run("oci_digest", oci::Oci(oci::Which::Digest), OCI_CASES);
}

#[test]
fn oci_www_authenticate() {
    run(
        "oci_www_authenticate",
        oci::Oci(oci::Which::Auth),
        OCI_CASES,
    );
}

#[test]
fn oci_manifest() {
    run("oci_manifest", oci::Oci(oci::Which::Manifest), OCI_CASES);
}

#[test]
fn serve_range() {
    run("serve_range", oci::Oci(oci::Which::Range), OCI_CASES);
}

#[test]
fn serve_route() {
    run("serve_route", oci::Oci(oci::Which::Route), OCI_CASES);
}

#[test]
fn mirror_url() {
    run("mirror_url", oci::Oci(oci::Which::Mirror), OCI_CASES);
}

#[test]
fn oci_names() {
    run("oci_names", oci::Oci(oci::Which::Names), OCI_CASES);
}
