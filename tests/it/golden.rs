//! Golden fixtures, run through the real binary on a private `--root`, plus the properties that
//! must hold for every fixture:
//! - arm produces exactly `after/` (or, with an `error` file, exits 2 and changes no byte);
//! - arm; arm = arm: the second run reports `unchanged` and rewrites nothing (mtimes kept);
//! - arm; disarm restores `before/` byte for byte (absent files and created dirs removed);
//! - arm; user edit; disarm keeps the user's edit and removes mirrorctl's entries;
//! - `--dry-run` changes no byte on disk and writes no state.
//!
//! Layout: `fixtures/<target>/<case>/{args, before/…, after/…, error}`. `args` holds the
//! arguments after `arm --target <target>`, one per line. Set `MIRRORCTL_BLESS=1` to rewrite
//! `after/` from what the binary produces (then review the diff!).

use crate::common::{self, mirrorctl, Out, Workspace};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>),
    Link(PathBuf),
    Dir,
}

/// Every path below `dir` with its content (files), target (links) or `Dir`.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = p.strip_prefix(base).unwrap().to_path_buf();
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            out.insert(rel, Entry::Link(fs::read_link(&p).unwrap()));
        } else if ft.is_dir() {
            out.insert(rel, Entry::Dir);
            walk(base, &p, out);
        } else {
            out.insert(rel, Entry::File(fs::read(&p).unwrap()));
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for (rel, e) in tree(from) {
        let dst = to.join(&rel);
        match e {
            Entry::Dir => fs::create_dir_all(&dst).unwrap(),
            Entry::File(b) => fs::write(&dst, b).unwrap(),
            Entry::Link(t) => std::os::unix::fs::symlink(t, &dst).unwrap(),
        }
    }
}

fn stamps(dir: &Path) -> BTreeMap<PathBuf, (i64, i64)> {
    tree(dir)
        .into_iter()
        .filter(|(_, e)| matches!(e, Entry::File(_)))
        .map(|(rel, _)| {
            let m = fs::metadata(dir.join(&rel)).unwrap();
            (rel, (m.mtime(), m.mtime_nsec()))
        })
        .collect()
}

fn render(t: &BTreeMap<PathBuf, Entry>) -> String {
    t.iter()
        .map(|(p, e)| match e {
            Entry::File(b) => format!("== {}\n{}", p.display(), String::from_utf8_lossy(b)),
            Entry::Link(l) => format!("== {} -> {}\n", p.display(), l.display()),
            Entry::Dir => format!("== {}/\n", p.display()),
        })
        .collect()
}

struct Case {
    name: String,
    target: String,
    dir: PathBuf,
    args: Vec<String>,
    error: Option<Vec<String>>,
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out = Vec::new();
    let mut targets: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    targets.sort();
    for t in targets.into_iter().filter(|p| p.is_dir()) {
        let mut dirs: Vec<_> = fs::read_dir(&t)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        for d in dirs.into_iter().filter(|p| p.join("args").exists()) {
            let args = fs::read_to_string(d.join("args"))
                .unwrap()
                .lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect();
            let error = fs::read_to_string(d.join("error")).ok().map(|s| {
                s.lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            });
            out.push(Case {
                name: format!(
                    "{}/{}",
                    t.file_name().unwrap().to_string_lossy(),
                    d.file_name().unwrap().to_string_lossy()
                ),
                target: t.file_name().unwrap().to_string_lossy().to_string(),
                dir: d,
                args,
                error,
            });
        }
    }
    out
}

/// A workspace whose root holds the case's `before/`.
fn ws_for(case: &Case) -> Workspace {
    let ws = Workspace::new("golden");
    let before = case.dir.join("before");
    if before.exists() {
        copy_tree(&before, &ws.root());
    }
    ws
}

/// The home the per-user targets (earthly, buildx) find under the root: their fixtures hold
/// `home/runner/.earthly/…` and `home/runner/.docker/buildx/…`.
pub const HOME: &str = "/home/runner";

fn run(ws: &Workspace, args: &[&str]) -> Out {
    // The docker target depends on the dockerd version: pin it (a case's args may override it
    // with --dockerd-version).
    common::run(
        mirrorctl(ws)
            .env("MIRRORCTL_DOCKERD_VERSION", "20.10.24")
            .env("HOME", HOME)
            .env_remove("DOCKER_CONFIG")
            .args(args),
    )
}

fn arm_args<'a>(case: &'a Case, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["arm", "--target", case.target.as_str()];
    v.extend(extra);
    v.extend(case.args.iter().map(String::as_str));
    v
}

/// A user's edit in the file's own format, and a marker to find it again.
fn user_edit(path: &Path, bytes: &[u8]) -> Option<(Vec<u8>, &'static str)> {
    let s = String::from_utf8(bytes.to_vec()).ok()?;
    let name = path.file_name()?.to_string_lossy();
    if name.ends_with(".json") {
        let i = s.find('{')?;
        let edited = format!("{}{{\"user-edit\": true,{}", &s[..i], &s[i + 1..]);
        Some((edited.into_bytes(), "\"user-edit\": true"))
    } else if name.ends_with(".toml") || name.ends_with(".conf") {
        Some((
            format!("{s}\n[user-edit]\nkept = true\n").into_bytes(),
            "[user-edit]",
        ))
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        let sep = if s.is_empty() || s.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        Some((
            format!("{s}{sep}user-edit: kept\n").into_bytes(),
            "user-edit: kept",
        ))
    } else {
        None
    }
}

/// `host:port` of each mirror in the args, to check that disarm took them out.
fn mirror_hosts(case: &Case) -> Vec<String> {
    case.args
        .iter()
        .filter(|a| a.contains("://"))
        .map(|a| {
            let u = a
                .split_once('=')
                .filter(|(r, _)| !r.contains("://"))
                .map(|(_, u)| u)
                .unwrap_or(a);
            u.split("://")
                .nth(1)
                .unwrap()
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

fn check_case(case: &Case) -> Result<(), String> {
    let bless = std::env::var_os("MIRRORCTL_BLESS").is_some();
    let fail = |what: &str, o: &Out| Err(format!("{}: {what}\n{o}", case.name));

    // Dry run: nothing on disk changes, no state written.
    let ws = ws_for(case);
    let before = tree(&ws.root());
    let o = run(&ws, &arm_args(case, &["--dry-run"]));
    if tree(&ws.root()) != before {
        return fail("--dry-run changed files", &o);
    }
    if ws.state_dir().exists() {
        return fail("--dry-run wrote state", &o);
    }

    // Arm: golden output, or a clean refusal.
    let ws = ws_for(case);
    let o = run(&ws, &arm_args(case, &[]));
    if let Some(needles) = &case.error {
        if o.code() != Some(2) {
            return fail("expected exit 2 for malformed input", &o);
        }
        let stderr = &o.stderr;
        for n in needles {
            if !stderr.contains(n.as_str()) {
                return fail(&format!("stderr lacks `{n}`"), &o);
            }
        }
        if tree(&ws.root()) != before {
            return fail("refused input but changed files", &o);
        }
        return Ok(());
    }
    if !o.ok() {
        return fail("arm failed", &o);
    }
    let armed = tree(&ws.root());
    let after_dir = case.dir.join("after");
    if bless {
        let _ = fs::remove_dir_all(&after_dir);
        copy_tree(&ws.root(), &after_dir);
    } else {
        let expected = tree(&after_dir);
        if armed != expected {
            return Err(format!(
                "{}: output differs from after/\n--- expected\n{}--- got\n{}",
                case.name,
                render(&expected),
                render(&armed)
            ));
        }
    }

    // arm; arm = arm, and the second run rewrites nothing.
    let stamps1 = stamps(&ws.root());
    let journal1 = fs::read(ws.state_dir().join("journal.json")).ok();
    // A rewrite must show in the mtimes: wait until a file written now gets a newer one.
    let newest = stamps1.values().max().copied().unwrap_or_default();
    let clock = ws.path().join("clock");
    assert!(
        common::wait_until(Duration::from_secs(5), || {
            fs::write(&clock, "").unwrap();
            let m = fs::metadata(&clock).unwrap();
            (m.mtime(), m.mtime_nsec()) > newest
        }),
        "{}: the file system clock does not move",
        case.name
    );
    let o = run(&ws, &arm_args(case, &[]));
    if !o.ok() || tree(&ws.root()) != armed {
        return fail("second arm changed files", &o);
    }
    if stamps(&ws.root()) != stamps1
        || fs::read(ws.state_dir().join("journal.json")).ok() != journal1
    {
        return fail("second arm rewrote files (mtime or journal changed)", &o);
    }
    let out = &o.stdout;
    let first = out.lines().next().unwrap_or("");
    if !(first.contains("unchanged") || first.contains("skipped")) {
        return fail("second arm did not report `unchanged`", &o);
    }

    // arm; disarm restores every byte; a second disarm has nothing to do.
    let o = run(&ws, &["disarm"]);
    if !o.ok() {
        return fail("disarm failed", &o);
    }
    let restored = tree(&ws.root());
    if restored != before {
        return Err(format!(
            "{}: disarm did not restore the original bytes\n--- before\n{}--- after disarm\n{}",
            case.name,
            render(&before),
            render(&restored)
        ));
    }
    let o = run(&ws, &["disarm"]);
    if !o.ok() || tree(&ws.root()) != before {
        return fail("second disarm was not a no-op", &o);
    }

    // arm; user edit; disarm keeps the edit and drops mirrorctl's entries.
    let ws = ws_for(case);
    let o = run(&ws, &arm_args(case, &[]));
    if !o.ok() {
        return fail("arm (for the edit check) failed", &o);
    }
    let mut edited = Vec::new();
    for (rel, e) in tree(&ws.root()) {
        let Entry::File(bytes) = e else { continue };
        if before.get(&rel) == Some(&Entry::File(bytes.clone())) {
            continue; // not touched by arm
        }
        if let Some((new, marker)) = user_edit(&rel, &bytes) {
            fs::write(ws.root().join(&rel), new).unwrap();
            edited.push((rel, marker));
        }
    }
    let o = run(&ws, &["disarm"]);
    if !o.ok() {
        return fail("disarm of an edited file failed", &o);
    }
    let hosts = mirror_hosts(case);
    for (rel, marker) in &edited {
        let now = fs::read_to_string(ws.root().join(rel)).unwrap_or_default();
        if !now.contains(marker) {
            return fail(
                &format!("disarm lost the user's edit in {}", rel.display()),
                &o,
            );
        }
        let orig = match before.get(rel) {
            Some(Entry::File(b)) => String::from_utf8_lossy(b).to_string(),
            _ => String::new(),
        };
        for h in &hosts {
            if now.contains(h.as_str()) && !orig.contains(h.as_str()) {
                return fail(
                    &format!(
                        "disarm left mirror `{h}` in the edited {}:\n{now}",
                        rel.display()
                    ),
                    &o,
                );
            }
        }
    }
    Ok(())
}

#[test]
fn golden_fixtures_and_properties() {
    let cases = cases();
    assert!(!cases.is_empty(), "no fixtures found");
    let mut per_target: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for c in &cases {
        *per_target.entry(c.target.clone()).or_default() += 1;
        if let Err(e) = check_case(c) {
            failures.push(e);
        }
    }
    eprintln!("golden: {} cases {:?}", cases.len(), per_target);
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_format_has_at_least_twelve_fixtures() {
    let mut per_target: BTreeMap<String, usize> = BTreeMap::new();
    for c in cases() {
        *per_target.entry(c.target).or_default() += 1;
    }
    for t in [
        "docker",
        "buildkit",
        "containerd",
        "registries",
        "k3s",
        "earthly",
        "buildx",
    ] {
        let n = per_target.get(t).copied().unwrap_or(0);
        assert!(n >= 12, "fixtures/{t} has {n} cases, want at least 12");
    }
}
