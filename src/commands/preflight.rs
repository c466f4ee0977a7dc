//! `arm`'s preflight, in arm's words: a dead or misconfigured mirror stops the run before any
//! write (exit 1) with the diagnosis and arm's fix; a mirror that needs credentials is refused
//! for the docker target (dockerd cannot give them to it) unless `--allow-auth-mirror`, and
//! the other targets are told which credentials their client will send.

use crate::ctx::Ctx;
use crate::error::HintExt;
use crate::host::dockerd;
use crate::mirror::MirrorSet;
use crate::preflight::{self, Checked};
use crate::registry::{Access, Diagnosis, Remedy};
use crate::targets::TargetName;
use anyhow::Result;
use serde::Serialize;
use std::time::Duration;

/// One mirror's preflight, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct PreflightReport {
    pub mirror: String,
    pub status: Option<u16>,
    /// `open`, `anonymous-token` or `needs-credentials`.
    pub access: &'static str,
    /// The environment proxy the request went through, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

/// What preflight found that the report and the targets' notes carry.
pub struct Found {
    pub reports: Vec<PreflightReport>,
    /// Mirrors that need credentials (`host[:port]`).
    pub needs_credentials: Vec<String>,
    /// Remarks for the whole run (dockerd's own proxy).
    pub notes: Vec<String>,
}

/// Ask every mirror of `set`; fail the run (exit 1) on one that does not answer like a
/// registry, or on one that needs credentials while the docker target is armed.
pub fn run(
    ctx: &Ctx,
    set: &MirrorSet,
    targets: &[TargetName],
    timeout: Duration,
    allow_auth_mirror: bool,
) -> Result<Found> {
    let mirrors = set.all_mirrors();
    let checked = preflight::check(&mirrors, timeout, set.insecure)?;
    let failed: Vec<String> = checked
        .iter()
        .filter_map(|c| {
            c.error
                .as_ref()
                .map(|d| format!("{}: {}", c.mirror, message(d)))
        })
        .collect();
    if !failed.is_empty() {
        return Err(anyhow::anyhow!(
            "preflight: {} (nothing was written)",
            failed.join("; ")
        ))
        .hint("--no-preflight arms without asking the mirror (for images built before the mirror runs)");
    }
    let needs_credentials: Vec<String> = checked
        .iter()
        .filter(|c| c.needs_credentials())
        .map(|c| c.mirror.host_port())
        .collect();
    let docker_hub_mirrors = set
        .for_registry(crate::oci::DOCKER_HUB)
        .map(|r| r.mirrors.clone())
        .unwrap_or_default();
    let dockerd_auth: Vec<&Checked> = checked
        .iter()
        .filter(|c| c.needs_credentials() && docker_hub_mirrors.contains(&c.mirror))
        .collect();
    if targets.contains(&TargetName::Docker) && !dockerd_auth.is_empty() && !allow_auth_mirror {
        let names: Vec<String> = dockerd_auth.iter().map(|c| c.mirror.to_string()).collect();
        return Err(anyhow::anyhow!(
            "preflight: {} needs credentials (`/v2/` challenges, and anonymous pulls are refused), and dockerd never sends a mirror the credentials it needs: its classic pull path sends only the docker.io credentials to every mirror, its containerd image store sends none, and on the 401 it silently pulls from Docker Hub instead (nothing was written)",
            names.join(", ")
        ))
        .hint("make the mirror allow anonymous pulls, skip dockerd with --target, or pass --allow-auth-mirror if dockerd's docker.io credentials are the mirror's");
    }
    let mut notes = Vec::new();
    if targets.contains(&TargetName::Docker) {
        notes.extend(dockerd_proxy_note(ctx, &checked));
    }
    let reports = checked
        .iter()
        .map(|c| PreflightReport {
            mirror: c.mirror.to_string(),
            status: c.status,
            access: match c.access {
                Some(Access::Open) => "open",
                Some(Access::AnonymousToken) => "anonymous-token",
                _ => "needs-credentials",
            },
            proxy: c.via_proxy.as_ref().map(|(p, var)| format!("{p} (${var})")),
        })
        .collect();
    Ok(Found {
        reports,
        needs_credentials,
        notes,
    })
}

/// arm's words for what fixes a preflight failure.
fn message(d: &Diagnosis) -> String {
    let host = &d.host;
    let hint = d.remedy.as_ref().and_then(|r| {
        Some(match r {
            Remedy::UseScheme { https: true } => format!("arm it as --mirror https://{host}"),
            Remedy::UseScheme { https: false } => format!("arm it as --mirror http://{host}"),
            Remedy::StartOrFixPort => "start the mirror or fix the port in --mirror".into(),
            Remedy::FixHostName => "fix the name in --mirror or this runner's DNS".into(),
            Remedy::TrustCa => "the clients must trust the mirror's certificate too: install its CA on the runner, or arm with --insecure".into(),
            Remedy::CheckReachable => "check that the mirror is up and reachable from this runner (firewall?), or raise --preflight-timeout".into(),
            Remedy::CheckSchemeOrLog => "if the mirror speaks HTTPS, use https:// in --mirror; otherwise check the mirror's log".into(),
            _ => return None,
        })
    });
    match hint {
        Some(h) => format!("{}: {h}{}", d.fact, d.proxy_note()),
        None => d.to_string(),
    }
}

/// dockerd reaches mirrors through its own environment's proxy, which `docker info` shows:
/// when that differs from what preflight used, say so (a proxy that cannot reach the mirror
/// makes dockerd fall back to Docker Hub).
fn dockerd_proxy_note(ctx: &Ctx, checked: &[Checked]) -> Option<String> {
    dockerd::pid(&ctx.root)?;
    let info = dockerd::info(&dockerd::endpoint(&ctx.root)).ok()?;
    let differing: Vec<String> = checked
        .iter()
        .filter_map(|c| {
            let url = format!("{}/v2/", c.mirror);
            let theirs = crate::registry::proxy_for(&url, |k| info.proxy_env(k)).map(|(p, _)| p);
            let ours = c.via_proxy.as_ref().map(|(p, _)| p.clone());
            (theirs.is_some() && theirs != ours).then(|| {
                format!(
                    "{} through {} (preflight asked {})",
                    c.mirror,
                    theirs.unwrap_or_default(),
                    ours.map(|p| format!("through {p}"))
                        .unwrap_or_else(|| "directly".into())
                )
            })
        })
        .collect();
    (!differing.is_empty()).then(|| {
        format!(
            "dockerd sends its mirror requests through the proxy in its own environment (`docker info`): {}; if that proxy cannot reach the mirror, dockerd pulls from Docker Hub instead",
            differing.join(", ")
        )
    })
}

/// Which credentials a target's client sends to a mirror that needs them.
pub fn credential_note(t: TargetName, hosts: &[String]) -> Option<String> {
    if hosts.is_empty() {
        return None;
    }
    let h = hosts.join(", ");
    let how = match t {
        TargetName::Docker => {
            "dockerd sends it only the docker.io credentials (--allow-auth-mirror was given)".to_string()
        }
        TargetName::Buildkit => format!(
            "BuildKit asks the client for the challenging host's credentials: the docker config's credHelpers/auths entry for {h} of the user who builds"
        ),
        TargetName::Containerd => format!(
            "containerd sends a hosts.toml host no credentials unless its [host.\"…\"] table has a header (e.g. Authorization) or the CRI config has auth for {h}; mirrorctl writes no credentials"
        ),
        TargetName::Registries => format!(
            "podman, skopeo, buildah and CRI-O send the auth file's entry for {h} (`podman login {h}`: ${{XDG_RUNTIME_DIR}}/containers/auth.json or REGISTRY_AUTH_FILE); mirrorctl writes no credentials"
        ),
        TargetName::K3s => format!(
            "k3s and rke2 send the `configs.\"{h}\".auth` of registries.yaml; mirrorctl writes no credentials"
        ),
        TargetName::Earthly => format!(
            "earthly-buildkitd asks the earthly client, which answers with the docker config's credHelpers/auths entry for {h} of the user who runs earthly"
        ),
        TargetName::Buildx => format!(
            "a builder's BuildKit asks the buildx client, which answers with the docker config's credHelpers/auths entry for {h} of the user who builds"
        ),
    };
    Some(format!("the mirror {h} needs credentials: {how}"))
}
