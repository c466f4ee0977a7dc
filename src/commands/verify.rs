//! `mirrorctl verify`: the flags as [`verify::Options`], then the report (text or JSON).

use crate::cli::{Global, VerifyArgs};
use crate::diag::outln;
use crate::error::{ExitWith, UserError};
use crate::output;
use crate::registry::Credentials;
use crate::verify::{self, hosts, Options, Target};
use anyhow::{Context, Result};
use std::path::Path;

/// `swept`: what the start-up sweep of a dead run's hosts block did (so `--cleanup` reports it
/// instead of "nothing there").
pub fn run(g: &Global, a: &VerifyArgs, swept: Option<String>) -> Result<i32> {
    let ctx = super::context(g)?;
    let hosts_path = a
        .hosts_file
        .clone()
        .unwrap_or_else(|| hosts::default_path(ctx.root.path()));
    if a.cleanup {
        return cleanup(&hosts_path, swept, a.json);
    }
    let opts = options(g, a, &ctx, &hosts_path)?;
    let report = match verify::run(&opts) {
        Ok(r) => r,
        Err(e) => {
            return Err(match e.downcast::<verify::Interrupted>() {
                Ok(i) => {
                    // Text: what the run saw before the signal, on stdout (JSON: the error
                    // document alone, one document).
                    if let (false, false, Some(r)) = (a.json, output::quiet(), &i.report) {
                        verify::report::print_human(r, &opts.cli, &opts.cleanup_cmd);
                    }
                    ExitWith {
                        code: i.exit_code,
                        message: format!("verify {i}"),
                    }
                    .into()
                }
                Err(e) => e,
            });
        }
    };
    if a.json {
        output::print_json(&report)?;
    } else if !output::quiet() {
        verify::report::print_human(&report, &opts.cli, &opts.cleanup_cmd);
    } else if !report.ok {
        output::print_error_line(&report.verdict);
    }
    Ok(if report.ok { 0 } else { 1 })
}

fn cleanup(hosts_path: &Path, swept: Option<String>, json: bool) -> Result<i32> {
    let note = match hosts::remove_block(hosts_path)? {
        Some(n) => Some(n),
        None => swept,
    };
    if json {
        output::print_json(&serde_json::json!({
            "ok": true,
            "hosts_file": hosts_path,
            "removed": note.is_some(),
            "detail": note,
        }))?;
    } else if !output::quiet() {
        outln!(
            "{}",
            note.unwrap_or_else(|| format!(
                "no mirrorctl verify block in {}",
                hosts_path.display()
            ))
        );
    }
    Ok(0)
}

fn options(
    g: &Global,
    a: &VerifyArgs,
    ctx: &crate::ctx::Ctx,
    hosts_path: &Path,
) -> Result<Options> {
    let image = a
        .image
        .parse()
        .map_err(|e| UserError(format!("--image `{}`: {e}", a.image)))?;
    if a.upstream.is_some() && !a.embedded {
        return Err(UserError(
            "--upstream is the upstream of --embedded's server; with --mirror, the mirror's own upstream is used".into(),
        )
        .into());
    }
    let (target, url_credentials) = match (&a.mirror, a.embedded) {
        (_, true) => (
            Target::Embedded {
                upstream: a.upstream.clone(),
            },
            None,
        ),
        (Some((m, c)), false) => (Target::Mirror(m.clone()), c.clone()),
        (None, false) => {
            return Err(UserError("give --mirror URL, or --embedded".into()).into());
        }
    };
    let platform = a
        .platform
        .as_deref()
        .map(crate::oci::Platform::parse)
        .transpose()
        .map_err(UserError)?;
    let credentials = match (&a.username, a.password_stdin, url_credentials) {
        (Some(u), true, _) => Credentials::Given(u.clone(), read_password_stdin()?),
        (Some(_), false, _) => {
            return Err(UserError(
                "--username needs --password-stdin (the password is read from stdin)".into(),
            )
            .into())
        }
        (None, _, Some(c)) => Credentials::Given(c.username, c.password),
        (None, _, None) => match &target {
            Target::Mirror(m) => Credentials::DockerConfig(m.host_port()),
            // The embedded server is anonymous.
            Target::Embedded { .. } => Credentials::None,
        },
    };
    let ca_pem = match &a.ca_cert {
        Some(p) => Some(
            std::fs::read(p).map_err(|e| UserError(format!("--ca-cert `{}`: {e}", p.display())))?,
        ),
        None => None,
    };
    Ok(Options {
        root: ctx.root.clone(),
        state_dir: ctx.state_dir.clone(),
        target,
        credentials,
        image,
        platform,
        timeout: a.timeout,
        ca_pem,
        block_upstream: a.block_upstream.then(|| hosts_path.to_path_buf()),
        clients: a.clients.clone(),
        progress: !a.json,
        cleanup_cmd: cleanup_cmd(g, a),
        cli: output::cli_prefix(g),
    })
}

/// `mirrorctl [--root …] verify --cleanup [--hosts-file …]`: followed as printed, it cleans the
/// file this run blocked.
fn cleanup_cmd(g: &Global, a: &VerifyArgs) -> String {
    let mut c = format!("{} verify --cleanup", output::cli_prefix(g));
    if let Some(h) = &a.hosts_file {
        c.push_str(&format!(
            " --hosts-file {}",
            output::shell_word(&h.to_string_lossy())
        ));
    }
    c
}

fn read_password_stdin() -> Result<String> {
    use std::io::Read;
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from stdin")?;
    let p = s.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        return Err(UserError("--password-stdin: stdin was empty".into()).into());
    }
    Ok(p)
}
