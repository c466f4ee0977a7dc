//! One probe pull through the mirror with mirrorctl's own client: the manifest (or index, then
//! the platform's manifest), the config and every layer, each checked against its digest and
//! size while it streams, every response classified as cache evidence.

use super::evidence::{self, Cache, Evidence, Strength};
use super::progress::Progress;
use super::report::{ErrorReport, PullReport, ResponseKind, ResponseReport};
use crate::oci::manifest::{BlobKind, ImageManifest, Index, ManifestError};
use crate::oci::{self, Digest, Platform, Reference};
use crate::registry::{Blob, Client, Diagnosis, Exchange, Kind, Remedy};
use std::time::Instant;

/// Pull `r` for `platform` through `client`: pull number `n`, progress to `progress`.
pub async fn pull(
    client: &Client,
    r: &Reference,
    platform: &Platform,
    n: u32,
    progress: &dyn Progress,
) -> PullReport {
    let start = Instant::now();
    let mut rep = PullReport {
        n,
        ok: false,
        cache: Cache::Unknown,
        strength: Strength::None,
        reason: String::new(),
        responses: Vec::new(),
        bytes: 0,
        seconds: 0.0,
        error: None,
    };
    match pull_inner(client, r, platform, &mut rep, progress).await {
        Ok(()) => rep.ok = true,
        Err(d) => rep.error = Some(ErrorReport::of(d)),
    }
    progress.finish(rep.ok);
    rep.seconds = (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    summarize(&mut rep);
    rep
}

fn response(kind: ResponseKind, ex: &Exchange, digest: Option<&Digest>) -> ResponseReport {
    let Evidence {
        cache,
        strength,
        header,
    } = evidence::classify(&ex.headers, kind.is_blob());
    ResponseReport {
        kind,
        url: ex.url.clone(),
        status: ex.status,
        cache,
        strength,
        evidence: header,
        digest: digest.map(|d| d.to_string()),
        redirected_to: None,
        headers: ex.headers.clone(),
    }
}

/// A blob's response: the mirror's redirect when it sent one (the evidence is there), else the
/// one that carried the bytes.
fn blob_response(kind: ResponseKind, b: &Blob, digest: &Digest) -> ResponseReport {
    let Some(r) = &b.redirect else {
        return response(kind, &b.exchange, Some(digest));
    };
    let to = b.exchange.url.clone();
    let Evidence {
        cache,
        strength,
        header,
    } = evidence::classify_redirect(r.status, &r.headers, &to);
    ResponseReport {
        kind,
        url: r.url.clone(),
        status: r.status,
        cache,
        strength,
        evidence: header,
        digest: Some(digest.to_string()),
        redirected_to: Some(to),
        headers: r.headers.clone(),
    }
}

async fn pull_inner(
    client: &Client,
    r: &Reference,
    platform: &Platform,
    rep: &mut PullReport,
    progress: &dyn Progress,
) -> Result<(), Diagnosis> {
    let repo = r.repository.as_str();
    let top = client.manifest(repo, &r.reference()).await?;
    let is_index = oci::media::is_index(&top.media_type);
    let kind = if is_index {
        ResponseKind::Index
    } else {
        ResponseKind::Manifest
    };
    rep.responses
        .push(response(kind, &top.exchange, Some(&top.digest)));
    rep.bytes += top.body.len() as u64;
    let manifest = if is_index {
        let index = Index::parse(&top.body).map_err(|e| bad(&top.exchange.url, e))?;
        let pick = index.pick(platform).map_err(|have| {
            Diagnosis::new(
                Kind::NotFound,
                format!("{r} has no {platform} image (it has {})", have.join(", ")),
            )
            .with_remedy(Remedy::PickPlatform)
        })?;
        let m = client.manifest(repo, &pick.digest.to_string()).await?;
        if m.body.len() as u64 != pick.size {
            return Err(Diagnosis::new(
                Kind::SizeMismatch,
                format!(
                    "manifest {} is {} bytes, the index says {}: the mirror served wrong bytes",
                    pick.digest,
                    m.body.len(),
                    pick.size
                ),
            ));
        }
        rep.responses.push(response(
            ResponseKind::PlatformManifest,
            &m.exchange,
            Some(&m.digest),
        ));
        rep.bytes += m.body.len() as u64;
        m
    } else {
        top
    };
    let image = ImageManifest::parse(&manifest.body).map_err(|e| match e {
        ManifestError::SchemaV1 => Diagnosis::new(
            Kind::BadResponse,
            format!("{r} is a schema 1 manifest, which mirrorctl does not verify"),
        )
        .with_remedy(Remedy::OtherImage),
        e => bad(&manifest.exchange.url, e),
    })?;
    let blobs: Vec<_> = image.blobs().collect();
    progress.start(blobs.len(), blobs.iter().map(|(_, d)| d.size).sum());
    for (kind, d) in blobs {
        progress.blob(&d.digest);
        let mut seen = 0u64;
        let b = client
            .blob(repo, &d.digest, d.size, |n| {
                progress.advance(n.saturating_sub(seen));
                seen = n;
            })
            .await?;
        rep.bytes += b.bytes;
        let kind = match kind {
            BlobKind::Config => ResponseKind::Config,
            BlobKind::Layer => ResponseKind::Layer,
        };
        rep.responses.push(blob_response(kind, &b, &d.digest));
    }
    Ok(())
}

fn bad(url: &str, e: impl std::fmt::Display) -> Diagnosis {
    Diagnosis::new(
        Kind::BadResponse,
        format!("{url} returned a manifest mirrorctl cannot read ({e})"),
    )
}

/// The pull's verdict from its blob responses (manifests are reported, not counted: a tag
/// is revalidated upstream by most caches even when warm).
fn summarize(rep: &mut PullReport) {
    let blobs: Vec<&ResponseReport> = rep.responses.iter().filter(|r| r.kind.is_blob()).collect();
    let describe = |r: &ResponseReport| {
        format!(
            "{} {}: {}",
            r.kind.as_str(),
            r.digest.as_deref().unwrap_or(""),
            r.evidence
        )
    };
    let Some(first) = blobs.first() else {
        rep.reason = "no blob fetched".into();
        return;
    };
    if let Some(m) = blobs.iter().find(|r| r.cache == Cache::Miss) {
        rep.cache = Cache::Miss;
        rep.strength = m.strength;
        rep.reason = describe(m);
    } else if blobs.iter().all(|r| r.cache == Cache::Hit) {
        rep.cache = Cache::Hit;
        let proven = blobs.iter().all(|r| r.strength == Strength::Proven);
        rep.strength = if proven {
            Strength::Proven
        } else {
            Strength::Inferred
        };
        rep.reason = format!("every blob: {}", first.evidence);
    } else if let Some(u) = blobs.iter().find(|r| r.cache == Cache::Unknown) {
        rep.reason = describe(u);
    }
}
