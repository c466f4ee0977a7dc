//! mirrorctl: wire container clients to a registry pull-through cache, verify it, serve one.
//!
//! Layers, arrows pointing down only (a module imports from its own layer or below, never
//! above; `layering` below checks it on every `cargo test`):
//!
//! ```text
//! 5  lib::run                                  dispatch
//! 4  commands/* · cli · output                 clap adapters, rendering, exit codes
//! 3  ctx · journal · apply · reload            the engine: --root, lock, atomic writes, journal, reload policy
//!    registry · serve · verify · preflight     the OCI client, the cache, the proof (own option structs)
//!    warm                                      fill a mirror's cache ahead of a rebuild storm
//! 2  host/{dockerd,containerd,containers,systemd}  facts about running daemons (pid+comm, socket,
//!                                              /info, cmdline, version), every child with a deadline;
//!    host/{earthly,buildx,users}               per-user clients: homes, config paths, containers, builders
//! 1  targets/* · mirror · units · oci          pure planners and value types (one parser per concept)
//!    render                                    the planners' output for an empty root (`mirrorctl render`)
//! 0  error · process · fsutil · diag           foundations: errors with hints, children with a
//!                                              deadline, file helpers, the stderr sink
//! ```

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod apply;
pub mod cli;
pub mod commands;
pub mod ctx;
pub mod diag;
pub mod error;
pub mod fsutil;
pub mod host;
pub mod journal;
pub mod mirror;
pub mod oci;
pub mod output;
pub mod preflight;
pub mod process;
pub mod registry;
pub mod reload;
pub mod render;
pub mod serve;
pub mod targets;
pub mod units;
pub mod verify;
pub mod warm;

#[cfg(test)]
mod layering;

use anyhow::Result;
use cli::{Cli, Command};

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    output::init(&cli.global);
    // A hosts block left behind by a killed `verify --block-upstream` goes first, whatever the
    // command (best effort: a read-only root must not break `status`).
    // `render` only prints what the planners make of its flags: it reads and touches nothing
    // on the machine (it runs in image builds, often unprivileged).
    if let Command::Render(a) = &cli.command {
        return commands::render::run(a);
    }
    let swept = match verify::hosts::cleanup_stale(&cli.global.root) {
        Ok(Some(note)) => {
            output::note(&note);
            Some(note)
        }
        Ok(None) => None,
        Err(e) => {
            output::warn(&format!("{e:#}"));
            None
        }
    };
    // An `arm --verify` killed between its writes and its verdict is rolled back before
    // anything else (a no-op unless the journal says one was).
    if !matches!(cli.command, Command::Completions { .. }) {
        match commands::finish_killed_verify(&cli.global) {
            Ok(lines) => lines.iter().for_each(|l| output::note(l)),
            Err(e) => output::warn(&format!("{e:#}")),
        }
    }
    match cli.command {
        Command::Completions { shell } => {
            // Into a buffer first: clap_complete panics on a failed write.
            let mut script = Vec::new();
            output::completions(shell, &mut script);
            diag::write_out(format_args!("{}", String::from_utf8_lossy(&script)));
            Ok(0)
        }
        Command::Arm(a) => commands::arm::run(&cli.global, &a),
        Command::Disarm(a) => commands::disarm::run(&cli.global, &a),
        Command::Status(a) => commands::status::run(&cli.global, &a),
        Command::Serve(a) => commands::serve::run(&cli.global, &a),
        Command::Verify(a) => commands::verify::run(&cli.global, &a, swept),
        Command::Warm(a) => commands::warm::run(&cli.global, &a),
        Command::Render(a) => commands::render::run(&a),
    }
}
