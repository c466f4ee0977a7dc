//! Terminal output: colors (honouring `--color` and `NO_COLOR`), quiet/verbose levels, errors in
//! the `error: … / caused by: … / hint: …` shape, the JSON error document, diffs, and
//! completion scripts.

use crate::cli::{Cli, ColorChoice, Global};
use crate::diag;
use crate::diag::outln;
use clap::CommandFactory;

/// Apply the global flags: color choice and verbosity.
pub fn init(g: &Global) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !no_color && console::Term::stdout().is_term(),
    };
    console::set_colors_enabled(color);
    let stderr_color = match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !no_color && console::Term::stderr().is_term(),
    };
    console::set_colors_enabled_stderr(stderr_color);
    diag::set_color(stderr_color);
    diag::set_level(g.quiet, g.verbose);
}

pub use diag::{note, quiet, verbose, warn};

/// Print an error chain on stderr, uv's way: `error: …`, `caused by: …` per cause, then
/// `hint: …` for each hint the callers attached.
pub fn print_error(err: &anyhow::Error) {
    let msgs = crate::error::messages(err);
    let mut it = msgs.iter();
    if let Some(top) = it.next() {
        eprintln!("{} {top}", console::style("error:").red().bold());
    }
    for cause in it {
        eprintln!("  {} {cause}", console::style("caused by:").dim());
    }
    for h in crate::error::hints(err) {
        eprintln!("  {} {h}", console::style("hint:").cyan().bold());
    }
}

/// One `error: …` line on stderr (a failure reported inside a finished run).
pub fn print_error_line(msg: &str) {
    eprintln!("{} {msg}", console::style("error:").red().bold());
}

/// The JSON error document every failing `--json` command prints on stdout.
pub fn error_document(err: &anyhow::Error, code: i32) -> serde_json::Value {
    let msgs = crate::error::messages(err);
    let hints = crate::error::hints(err);
    let mut doc = serde_json::json!({ "ok": false, "error": msgs.join(": "), "exit_code": code });
    if let (false, Some(obj)) = (hints.is_empty(), doc.as_object_mut()) {
        obj.insert("hint".into(), hints.join("; ").into());
    }
    doc
}

/// One JSON document on stdout, pretty-printed.
pub fn print_json<T: serde::Serialize>(doc: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(doc)?);
    Ok(())
}

/// A unified diff, coloured when stdout allows it.
pub fn print_diff(diff: &str) {
    for line in diff.lines() {
        let styled = if line.starts_with("+++") || line.starts_with("---") {
            console::style(line).bold()
        } else if line.starts_with('+') {
            console::style(line).green()
        } else if line.starts_with('-') {
            console::style(line).red()
        } else if line.starts_with("@@") {
            console::style(line).cyan()
        } else {
            console::style(line)
        };
        outln!("{styled}");
    }
}

/// `mirrorctl` with the global options the user gave that change what a command acts on
/// (`--root`, `--state-dir`), for commands printed as advice: followed as printed, they act
/// on the same tree.
pub fn cli_prefix(g: &Global) -> String {
    let mut s = String::from("mirrorctl");
    if g.root != std::path::Path::new("/") {
        s.push_str(&format!(
            " --root {}",
            shell_word(&g.root.to_string_lossy())
        ));
    }
    if let Some(d) = &g.state_dir {
        s.push_str(&format!(
            " --state-dir {}",
            shell_word(&d.to_string_lossy())
        ));
    }
    s
}

/// A word as a POSIX shell reads it back (single-quoted when it holds anything special).
pub fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// Write a completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "mirrorctl", out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn advice_repeats_the_global_options() {
        let cli = Cli::parse_from([
            "mirrorctl",
            "--root",
            "/srv/my root",
            "--state-dir",
            "/s",
            "status",
        ]);
        assert_eq!(
            cli_prefix(&cli.global),
            "mirrorctl --root '/srv/my root' --state-dir /s"
        );
        let cli = Cli::parse_from(["mirrorctl", "status"]);
        assert_eq!(cli_prefix(&cli.global), "mirrorctl");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }
}
