//! `mirrorctl serve`: the flags as a [`serve::Config`], then run until SIGTERM/SIGINT.

use crate::cli::{Global, ServeArgs};
use crate::error::UserError;
use crate::oci;
use crate::output;
use crate::serve::{self, Config, LogFormat, UpstreamConfig};
use anyhow::{Context, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// `--listen`: `ADDR:PORT`; `:PORT` (and `:0`, a free port) is loopback. Listening on every
/// interface takes an explicit `0.0.0.0:PORT` or `[::]:PORT`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, UserError> {
    let bad = || {
        UserError(format!(
            "--listen `{s}` must be ADDR:PORT, e.g. 127.0.0.1:5000, :0 (a free loopback port) or 0.0.0.0:5000 (every interface)"
        ))
    };
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| bad())?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(bad)
}

/// Build a [`Config`] from the command line.
pub fn config(g: &Global, a: &ServeArgs) -> Result<Config> {
    let listen = parse_listen(&a.listen)?;
    let mut default: Option<UpstreamConfig> = None;
    let mut named = Vec::new();
    for u in &a.upstreams {
        let up = UpstreamConfig {
            registry: u.registry.clone().unwrap_or_else(|| oci::DOCKER_HUB.into()),
            url: u.mirror.url(),
            credentials: None,
        };
        match &u.registry {
            Some(_) => named.push(up),
            None if default.is_some() => {
                return Err(UserError(format!(
                    "--upstream `{}`: only one upstream may omit `REGISTRY=`",
                    u.mirror
                ))
                .into())
            }
            None => default = Some(up),
        }
    }
    let mut default = match default {
        Some(d) => d,
        None => match named.iter().position(|u| u.registry == oci::DOCKER_HUB) {
            Some(i) => named.remove(i),
            None => UpstreamConfig {
                registry: oci::DOCKER_HUB.into(),
                url: oci::upstream_endpoint(oci::DOCKER_HUB),
                credentials: None,
            },
        },
    };
    if let (Some(u), Some(f)) = (&a.upstream_username, &a.upstream_password_file) {
        let p = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read --upstream-password-file `{}`", f.display()))?;
        default.credentials = Some((u.clone(), p.trim_end_matches(['\r', '\n']).to_string()));
    }
    let cache_dir = match &a.cache_dir {
        Some(d) => d.clone(),
        None => super::context(g)?.state_dir.join("cache"),
    };
    Ok(Config {
        listen,
        default_upstream: default,
        upstreams: named,
        cache_dir,
        max_size: a.max_size,
        tag_ttl: a.tag_ttl,
        access_log: if a.json_log {
            LogFormat::Json
        } else {
            LogFormat::Text
        },
        htpasswd: a.htpasswd.clone(),
        tls: a.tls_cert.clone().zip(a.tls_key.clone()),
        ratelimit_warn: a.ratelimit_warn,
    })
}

pub fn run(g: &Global, a: &ServeArgs) -> Result<i32> {
    let config = config(g, a)?;
    if !config.listen.ip().is_loopback() && config.htpasswd.is_none() && config.tls.is_none() {
        output::warn(&format!(
            "listening on {} beyond loopback without --htpasswd or --tls-cert: anyone who can reach it can pull through this cache (and the upstream's credentials behind it)",
            config.listen
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let cache = config.cache_dir.clone();
        let default = config.default_upstream.url.clone();
        let handle = serve::start(config).await?;
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", handle.addr)?;
            out.flush()?;
        }
        output::note(&format!(
            "mirrorctl serve: listening on {}, default upstream {default}, cache `{}`",
            handle.url(),
            cache.display()
        ));
        wait_for_signal().await?;
        output::note("mirrorctl serve: shutting down");
        handle.shutdown(Duration::from_secs(10)).await?;
        Ok::<_, anyhow::Error>(0)
    })
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        // `:PORT` is loopback, never every interface.
        assert_eq!(parse_listen(":0").unwrap(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(
            parse_listen(":5000").unwrap(),
            "127.0.0.1:5000".parse().unwrap()
        );
        assert_eq!(
            parse_listen("0.0.0.0:5000").unwrap(),
            "0.0.0.0:5000".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::]:5000").unwrap(),
            "[::]:5000".parse().unwrap()
        );
        assert_eq!(parse_listen("[::1]:0").unwrap(), "[::1]:0".parse().unwrap());
        for bad in ["nope", ":", ":x", ":70000", "127.0.0.1"] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
    }
}
