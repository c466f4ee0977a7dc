//! `arm --verify`: after writing and reloading, each armed target's real client pulls the
//! probe image through the mirror (verify's client probes); a failure rolls this run back.
//! docker: `docker info` lists the mirror and `docker pull` works; containerd: `ctr content
//! fetch --hosts-dir`; registries: `skopeo copy` through the drop-in (skopeo's `inspect`
//! ignores mirrors). BuildKit and k3s cannot be proven here: said so, with the reason.

use crate::ctx::Ctx;
use crate::mirror::MirrorSet;
use crate::oci::{self, Reference};
use crate::targets::TargetName;
use crate::verify::clients::{Block, ClientName, Probe};
use crate::verify::hosts::{self, HostsGuard};
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// One target's probe.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub target: TargetName,
    /// The client that pulled (`docker`, `containerd`, `skopeo`), when one could.
    pub client: Option<&'static str>,
    /// `null`: not provable here.
    pub ok: Option<bool>,
    pub detail: String,
}

impl ProbeReport {
    pub fn failed(&self) -> bool {
        self.ok == Some(false)
    }
}

/// What the probes pull and how.
pub struct Options {
    pub image: Reference,
    /// Block the upstream in this hosts file while the clients pull.
    pub block_upstream: Option<PathBuf>,
    pub timeout: Duration,
    /// `mirrorctl` and the user's global options, for advice.
    pub cli: String,
}

/// Probe every armed target.
pub fn run(
    ctx: &Ctx,
    set: &MirrorSet,
    armed: &[TargetName],
    o: &Options,
) -> Result<Vec<ProbeReport>> {
    let mirror = set
        .for_registry(&o.image.registry)
        .and_then(|r| r.mirrors.first())
        .map(|m| m.url());
    let names = oci::upstream_hosts(&o.image.registry);
    let cleanup = format!("{} verify --cleanup", o.cli);
    let guard = match &o.block_upstream {
        Some(p) => Some((HostsGuard::install(p, &names, &cleanup)?, p.clone())),
        None => None,
    };
    let block = match &guard {
        None => Block::No,
        Some((_, p)) => Block::of(&hosts::assess(p, &names), &p.display().to_string()),
    };
    let reports = armed
        .iter()
        .map(|t| probe(ctx, *t, mirror.as_deref(), &block, o))
        .collect();
    drop(guard);
    Ok(reports)
}

fn probe(
    ctx: &Ctx,
    t: TargetName,
    mirror: Option<&str>,
    block: &Block,
    o: &Options,
) -> ProbeReport {
    let not_provable = |why: String| ProbeReport {
        target: t,
        client: None,
        ok: None,
        detail: format!("not provable here: {why}"),
    };
    let client = match t {
        TargetName::Docker if o.image.registry == oci::DOCKER_HUB => ClientName::Docker,
        TargetName::Docker => {
            return not_provable(format!(
                "dockerd mirrors {} only through /etc/docker/certs.d, read by its containerd image store; `docker pull` with the classic store goes upstream",
                o.image.registry
            ))
        }
        TargetName::Containerd => ClientName::Containerd,
        TargetName::Registries => ClientName::Skopeo,
        TargetName::Buildkit => {
            return not_provable(
                "buildkitd is reached through its own client (buildctl / buildx), which mirrorctl does not drive; build once FROM the probe image to check".into(),
            )
        }
        TargetName::K3s => {
            return not_provable(
                "k3s's embedded containerd reads registries.yaml at start; after its restart check with `k3s crictl pull`".into(),
            )
        }
        TargetName::Earthly => {
            return not_provable(
                "earthly-buildkitd reads the string when Earthly next (re)starts it; run `earthly bootstrap`, then `docker exec earthly-buildkitd cat /etc/buildkitd.toml` or a build FROM the probe image".into(),
            )
        }
        TargetName::Buildx => {
            return not_provable(
                "a builder's buildkitd is reached through buildx, which mirrorctl does not drive; `docker buildx build` FROM the probe image to check".into(),
            )
        }
    };
    let Some(mirror) = mirror else {
        return not_provable(format!(
            "no mirror of {} is armed, so the probe image {} would not go through one",
            o.image.registry, o.image
        ));
    };
    let probe = Probe {
        root: ctx.root.clone(),
        mirror: mirror.to_string(),
        image: o.image.clone(),
        platform: None,
        block: block.clone(),
        timeout: o.timeout,
        cli: o.cli.clone(),
    };
    let r = probe.run(client);
    ProbeReport {
        target: t,
        client: Some(client.as_str()),
        ok: Some(r.ok),
        detail: r.detail,
    }
}
