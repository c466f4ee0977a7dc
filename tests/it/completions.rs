//! `completions/` holds a script per shell generated from the same clap definition as `--help`;
//! this test fails when one is stale. Regenerate with `MIRRORCTL_BLESS=1 cargo test --test it completions`.

use crate::common::{mirrorctl_cmd, run};
use std::path::Path;

#[test]
fn completion_scripts_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let bless = std::env::var_os("MIRRORCTL_BLESS").is_some();
    let mut stale = Vec::new();
    for (shell, file) in [
        ("bash", "mirrorctl.bash"),
        ("zsh", "_mirrorctl"),
        ("fish", "mirrorctl.fish"),
        ("elvish", "mirrorctl.elv"),
        ("powershell", "_mirrorctl.ps1"),
    ] {
        let out = run(mirrorctl_cmd().args(["completions", shell]));
        assert!(out.ok(), "completions {shell} failed: {out}");
        assert!(!out.stdout.is_empty());
        let path = dir.join(file);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &out.stdout).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(out.stdout.as_bytes()) {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "stale completion scripts {stale:?}: run `MIRRORCTL_BLESS=1 cargo test --test it completions` and commit completions/"
    );
}
