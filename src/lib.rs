//! mirrorctl: wire container clients to a registry pull-through cache, verify it, serve one.

pub mod cli;
pub mod error;
pub mod mirror;
pub mod oci;
pub mod targets;
pub mod output;

use anyhow::Result;
use cli::{Cli, Command};

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    output::init(&cli.global);
    match cli.command {
        Command::Completions { shell } => {
            output::completions(shell, &mut std::io::stdout());
            Ok(0)
        }
        _ => anyhow::bail!("not implemented yet"),
    }
}
