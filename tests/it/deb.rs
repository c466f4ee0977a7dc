//! The Debian package, built by `cargo deb` from the metadata in Cargo.toml: listed
//! (`dpkg-deb -c`), unpacked into a temp dir (`dpkg-deb -x`, never installed on this machine);
//! the unpacked binary runs, its completions are the committed scripts and what it generates,
//! every man page is the committed one (`completions/man/`), renders with `man -l`, and names
//! every flag the unpacked binary's `--help` of that command shows.
//!
//! The release build goes to `<target dir>/deb` (its own lock: the running `cargo test` holds
//! the usual one), so after the first run only what changed is rebuilt.

use crate::common::{self, run, run_timeout, Out};
use crate::man::{man_dir, pages};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// `cargo`, as the running `cargo test` was (its `CARGO`), else the one on PATH, without the
/// `CARGO_*` variables `cargo test` gives a test (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, …): build
/// scripts that watch them (ring's) would rebuild what `.ci/run` built from a shell.
fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if (k.starts_with("CARGO_") || k.starts_with("__CARGO")) && k != "CARGO_HOME" {
            c.env_remove(k.as_ref());
        }
    }
    c
}

/// The cargo target dir this test binary was built in (`<target>/debug/mirrorctl` → `<target>`).
fn target_dir() -> PathBuf {
    let bin = Path::new(common::BIN);
    bin.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// The paths `dpkg-deb -c` lists (`./usr/bin/mirrorctl`, …), directories without their `/`.
fn listed(out: &Out) -> Vec<String> {
    out.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_end_matches('/').to_string())
        .collect()
}

/// Text as a terminal would show it: man's overstrike bold and underline removed.
fn plain(text: &str) -> String {
    let mut out: Vec<char> = Vec::new();
    for c in text.chars() {
        if c == '\u{8}' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out.into_iter().collect()
}

/// The long flags (`--mirror`, …) a `--help` text shows.
fn long_flags(help: &str) -> Vec<String> {
    let mut flags: Vec<String> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.split(['=', '<', '.', '`', ')'])
                .next()
                .unwrap_or(w)
                .to_string()
        })
        .filter(|w| w.len() > 2)
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("gunzip {}: {e}", path.display()));
    out
}

/// `man -l <page>` as plain text.
fn man_l(page: &Path) -> Out {
    let mut c = Command::new("man");
    // No hyphenation or justification: a flag stays one word on one line.
    c.args(["--nh", "--nj", "-l"])
        .arg(page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "120")
        .env("LANG", "C.UTF-8");
    run(&mut c)
}

#[test]
fn the_debian_package_holds_the_binary_completions_and_man_pages() {
    let found = |c: &mut Command| c.output().is_ok_and(|o| o.status.success());
    if !common::require_tool(
        found(cargo().args(["deb", "--version"])),
        "`cargo deb` (cargo install cargo-deb) is missing",
    ) || !common::require_tool(
        common::which("dpkg-deb").is_some() && common::which("man").is_some(),
        "dpkg-deb or man (man-db) is missing",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let deb = tmp.path().join("mirrorctl.deb");
    let mut c = cargo();
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["deb", "--locked", "--output"])
        .arg(&deb)
        .env("CARGO_TARGET_DIR", target_dir().join("deb"));
    let t0 = std::time::Instant::now();
    let built = run_timeout(&mut c, Duration::from_secs(1200));
    assert!(built.ok() && deb.is_file(), "{built}");
    eprintln!("cargo deb: {:.1} s", t0.elapsed().as_secs_f64());

    let fields = run(Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&deb)
        .args(["Package", "Version"]));
    assert_eq!(
        fields.assert_ok().stdout,
        format!(
            "Package: mirrorctl\nVersion: {}-1\n",
            env!("CARGO_PKG_VERSION")
        ),
        "{fields}"
    );
    let list = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let files = listed(list.assert_ok());
    let committed = pages(&man_dir());
    let mut want: Vec<String> = [
        "./usr/bin/mirrorctl",
        "./usr/share/bash-completion/completions/mirrorctl",
        "./usr/share/zsh/vendor-completions/_mirrorctl",
        "./usr/share/fish/vendor_completions.d/mirrorctl.fish",
        "./usr/share/doc/mirrorctl/copyright",
        "./usr/share/doc/mirrorctl/README.md",
    ]
    .map(String::from)
    .to_vec();
    want.extend(
        committed
            .keys()
            .map(|p| format!("./usr/share/man/man1/{p}.gz")),
    );
    for w in &want {
        assert!(files.contains(w), "{w} is not in the package:\n{list}");
    }

    let root = tmp.path().join("x");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root)).assert_ok();
    let bin = root.join("usr/bin/mirrorctl");
    let version = run(Command::new(&bin).arg("--version"));
    assert_eq!(
        version.assert_ok().stdout,
        format!("mirrorctl {}\n", env!("CARGO_PKG_VERSION"))
    );
    for (packaged, committed, shell) in [
        (
            "usr/share/bash-completion/completions/mirrorctl",
            "mirrorctl.bash",
            "bash",
        ),
        (
            "usr/share/zsh/vendor-completions/_mirrorctl",
            "_mirrorctl",
            "zsh",
        ),
        (
            "usr/share/fish/vendor_completions.d/mirrorctl.fish",
            "mirrorctl.fish",
            "fish",
        ),
    ] {
        let p = std::fs::read(root.join(packaged)).unwrap();
        let c = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("completions")
                .join(committed),
        )
        .unwrap();
        assert!(p == c, "{packaged} is not completions/{committed}");
        let generated = run(Command::new(&bin).args(["completions", shell]));
        assert!(
            generated.assert_ok().stdout.as_bytes() == p,
            "the packaged binary's {shell} completions differ"
        );
    }

    for (name, bytes) in &committed {
        let page = root.join("usr/share/man/man1").join(format!("{name}.gz"));
        assert!(
            gunzip(&page) == *bytes,
            "{name} in the package is not completions/man/{name}"
        );
        let shown = man_l(&page);
        let text = plain(&shown.assert_ok().stdout);
        assert!(shown.stderr.is_empty(), "man -l {name} warned: {shown}");
        // mirrorctl.1 is the top command's; mirrorctl-<sub>.1 the subcommand's.
        let sub = name.trim_end_matches(".1").strip_prefix("mirrorctl-");
        let mut help = Command::new(&bin);
        help.args(sub).arg("--help");
        let help = run(&mut help);
        for flag in long_flags(&help.assert_ok().stdout) {
            assert!(
                text.contains(&flag),
                "`man -l {name}` does not show {flag} (--help does):\n{text}"
            );
        }
        if sub.is_none() {
            for p in committed
                .keys()
                .filter_map(|p| p.strip_prefix("mirrorctl-"))
            {
                let s = p.trim_end_matches(".1");
                assert!(text.contains(s), "mirrorctl.1 does not list {s}:\n{text}");
            }
        }
    }
}
