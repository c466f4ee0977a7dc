//! Terminal output: colors (honouring `--color` and `NO_COLOR`), quiet/verbose levels, errors in
//! the `error: … / caused by: … / hint: …` shape, and completion scripts.

use crate::cli::{Cli, ColorChoice, Global};
use clap::CommandFactory;
use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(1);

/// Apply the global flags: color choice and verbosity.
pub fn init(g: &Global) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !no_color && console::Term::stdout().is_term(),
    };
    console::set_colors_enabled(color);
    console::set_colors_enabled_stderr(match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !no_color && console::Term::stderr().is_term(),
    });
    let level = if g.quiet { 0 } else { 1 + g.verbose };
    LEVEL.store(level, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    LEVEL.load(Ordering::Relaxed) == 0
}

pub fn verbose() -> bool {
    LEVEL.load(Ordering::Relaxed) >= 2
}

/// A progress or warning line on stderr (suppressed by `-q`).
pub fn note(msg: &str) {
    if !quiet() {
        eprintln!("{msg}");
    }
}

pub fn warn(msg: &str) {
    if !quiet() {
        eprintln!("{} {msg}", console::style("warning:").yellow().bold());
    }
}

/// Print an error chain on stderr.
pub fn print_error(err: &anyhow::Error) {
    eprintln!("{} {err}", console::style("error:").red().bold());
    for cause in err.chain().skip(1) {
        eprintln!("  {} {cause}", console::style("caused by:").dim());
    }
}

/// Write a completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "mirrorctl", out);
}
