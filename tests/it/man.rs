//! `completions/man/` holds the man pages, generated (clap_mangen) from the same clap
//! definition as `--help` and the completion scripts: `mirrorctl.1` and one page per
//! subcommand (`mirrorctl-arm.1`, …). This test fails when one is stale, missing or left over.
//! Regenerate with `MIRRORCTL_BLESS=1 cargo test --test it man::`.

use clap::CommandFactory;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The committed pages' directory.
pub fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/man")
}

/// Every page (file name → bytes) in `dir`.
pub fn pages(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name.ends_with(".1") {
            out.insert(name, std::fs::read(e.path()).unwrap());
        }
    }
    out
}

#[test]
fn man_pages_are_current() {
    let fresh = tempfile::tempdir().unwrap();
    clap_mangen::generate_to(mirrorctl::cli::Cli::command(), fresh.path()).unwrap();
    let want = pages(fresh.path());
    assert!(want.contains_key("mirrorctl.1") && want.contains_key("mirrorctl-render.1"));
    let dir = man_dir();
    if std::env::var_os("MIRRORCTL_BLESS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for name in pages(&dir).keys().filter(|n| !want.contains_key(*n)) {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
        for (name, bytes) in &want {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let have = pages(&dir);
    let stale: Vec<&String> = want
        .keys()
        .chain(have.keys())
        .filter(|n| want.get(*n) != have.get(*n))
        .collect();
    assert!(
        stale.is_empty(),
        "stale, missing or left-over man pages {stale:?}: run `MIRRORCTL_BLESS=1 cargo test --test it man::` and commit completions/man/"
    );
}
