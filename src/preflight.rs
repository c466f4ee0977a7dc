//! `arm`'s preflight: before anything is written, every mirror must answer `GET /v2/` like a
//! registry (200, or a 401 challenge), asked with `verify`'s registry client through the same
//! environment proxies the clients use. It also finds mirrors that anonymous clients cannot
//! pull from (an ECR pull-through cache, a private Harbor project, a registry:2 with
//! htpasswd): dockerd never sends a mirror the credentials it needs and silently falls back to
//! Docker Hub on the 401, so the caller refuses those for the docker target.

use crate::mirror::Mirror;
use crate::registry::{env_proxy_for, Access, Client, Credentials, Diagnosis};
use std::time::Duration;

/// The repository asked about for anonymous access: the image `verify` pulls by default.
pub const PROBE_REPOSITORY: &str = "library/alpine";

/// What one mirror answered.
#[derive(Debug, Clone)]
pub struct Checked {
    pub mirror: Mirror,
    /// `GET /v2/`'s status, when it answered.
    pub status: Option<u16>,
    pub access: Option<Access>,
    pub error: Option<Diagnosis>,
    /// The proxy (and its variable) this process's environment sends the request through.
    pub via_proxy: Option<(String, String)>,
}

impl Checked {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    pub fn needs_credentials(&self) -> bool {
        matches!(self.access, Some(Access::NeedsCredentials(_)))
    }
}

/// Ask every mirror, each under `timeout`. `insecure`: https mirrors' certificates are not
/// verified (as `--insecure` tells the clients).
pub fn check(
    mirrors: &[&Mirror],
    timeout: Duration,
    insecure: bool,
) -> anyhow::Result<Vec<Checked>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut out = Vec::new();
        for m in mirrors {
            out.push(check_one(m, timeout, insecure).await?);
        }
        Ok(out)
    })
}

async fn check_one(m: &Mirror, timeout: Duration, insecure: bool) -> anyhow::Result<Checked> {
    let base = m.url();
    let client = Client::new_checked(&base, Credentials::None, timeout, None, insecure)?;
    let via_proxy = env_proxy_for(&format!("{}/v2/", m.origin()));
    let (status, access, error) = match client.anonymous_access(PROBE_REPOSITORY).await {
        Ok((ping, access)) => (Some(ping.exchange.status), Some(access), None),
        Err(d) => (None, None, Some(d)),
    };
    Ok(Checked {
        mirror: m.clone(),
        status,
        access,
        error,
        via_proxy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_mirror_is_a_diagnosis() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let m = Mirror::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let r = check(&[&m], Duration::from_secs(5), false).unwrap();
        assert!(!r[0].ok());
        assert_eq!(
            r[0].error.as_ref().unwrap().kind,
            crate::registry::Kind::Refused
        );
    }
}
