//! `mirrorctl warm`: the flags as [`warm::Options`] (images from the arguments, `--from-file`
//! and `--from-dockerfile`), then the report (text or JSON); exit 1 when an image failed.

use crate::cli::{Global, WarmArgs};
use crate::error::UserError;
use crate::output;
use crate::registry::Credentials;
use crate::warm::{self, sources, Options, Platforms};
use anyhow::{Context, Result};
use std::path::Path;

pub fn run(_g: &Global, a: &WarmArgs) -> Result<i32> {
    let opts = options(a)?;
    let report = warm::run(&opts)?;
    if a.json {
        output::print_json(&report)?;
    } else if !output::quiet() {
        report.print_human();
    } else {
        for i in report.images.iter().filter(|i| !i.ok) {
            output::print_error_line(&i.summary());
        }
    }
    Ok(if report.ok { 0 } else { 1 })
}

fn options(a: &WarmArgs) -> Result<Options> {
    let mut images = Vec::new();
    sources::from_args(&a.images, &mut images)?;
    for f in &a.from_file {
        sources::from_list(f, &read(f, "--from-file")?, &mut images)?;
    }
    for f in &a.from_dockerfile {
        sources::from_dockerfile(f, &read(f, "--from-dockerfile")?, &mut images)?;
    }
    if images.is_empty() {
        return Err(UserError(
            "no image to warm: name images, or give --from-file FILE or --from-dockerfile FILE"
                .into(),
        )
        .into());
    }
    let (mirror, url_credentials) = &a.mirror;
    let credentials = match (&a.username, a.password_stdin, url_credentials) {
        (Some(u), true, _) => Credentials::Given(u.clone(), read_password_stdin()?),
        (Some(_), false, _) => {
            return Err(UserError(
                "--username needs --password-stdin (the password is read from stdin)".into(),
            )
            .into())
        }
        (None, _, Some(c)) => Credentials::Given(c.username.clone(), c.password.clone()),
        (None, _, None) => Credentials::DockerConfig(mirror.host_port()),
    };
    let ca_pem = match &a.ca_cert {
        Some(p) => Some(
            std::fs::read(p).map_err(|e| UserError(format!("--ca-cert `{}`: {e}", p.display())))?,
        ),
        None => None,
    };
    Ok(Options {
        mirror: mirror.url(),
        credentials,
        images,
        platforms: platforms(a.platform.as_deref())?,
        jobs: usize::from(a.jobs),
        timeout: a.timeout,
        ca_pem,
        progress: !a.json && !output::quiet(),
    })
}

/// `--platform linux/amd64,linux/arm64/v8`.
fn platforms(list: Option<&str>) -> Result<Platforms, UserError> {
    let Some(list) = list else {
        return Ok(Platforms::All);
    };
    let v = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            crate::oci::Platform::parse(p).map_err(|e| UserError(format!("--platform `{p}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if v.is_empty() {
        return Err(UserError(
            "--platform: give OS/ARCH[,OS/ARCH…], e.g. linux/amd64,linux/arm64".into(),
        ));
    }
    Ok(Platforms::List(v))
}

fn read(path: &Path, flag: &str) -> Result<String, UserError> {
    std::fs::read_to_string(path).map_err(|e| {
        UserError(format!(
            "{flag} `{}`: {e}; give a readable text file",
            path.display()
        ))
    })
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
