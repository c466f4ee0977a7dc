//! mirrorctl: wire container clients to a registry pull-through cache, verify it, serve one.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod diag;
pub mod error;
pub mod fsutil;
pub mod journal;
pub mod mirror;
pub mod oci;
pub mod output;
pub mod process;
pub mod registry;
pub mod reload;
pub mod serve;
pub mod targets;
pub mod verify;

use anyhow::Result;
use cli::{Cli, Command};

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    output::init(&cli.global);
    // A hosts block left behind by a killed `verify --block-upstream` goes first, whatever the
    // command (best effort: a read-only root must not break `status`).
    match verify::hosts::cleanup_stale(&cli.global.root) {
        Ok(Some(note)) => output::note(&note),
        Ok(None) => {}
        Err(e) => output::warn(&format!("{e:#}")),
    }
    match cli.command {
        Command::Completions { shell } => {
            output::completions(shell, &mut std::io::stdout());
            Ok(0)
        }
        Command::Arm(a) => commands::arm(&cli.global, &a),
        Command::Disarm(a) => commands::disarm(&cli.global, &a),
        Command::Status(a) => commands::status(&cli.global, &a),
        Command::Serve(a) => serve::run(&cli.global, &a),
        Command::Verify(a) => verify::run(&cli.global, &a),
    }
}
