//! Terminal output: colors (honouring `--color` and `NO_COLOR`), quiet/verbose levels, errors in
//! the `error: … / caused by: … / hint: …` shape, and completion scripts.

use crate::cli::{Cli, ColorChoice, Global};
use crate::diag;
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
