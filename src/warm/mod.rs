//! `mirrorctl warm`: fill a mirror's cache before the storm. Each image is pulled through the
//! mirror with the registry client (any mirror: `mirrorctl serve`, distribution, Harbor, zot):
//! its manifest (or index, then every platform's manifest, or those of `--platform`), its
//! config and layers, each digest- and size-checked while it streams and then dropped. A blob
//! shared by several images is fetched once per run. Each response's cache headers say whether
//! the mirror already had it or fetched it from its upstream ([`crate::verify::evidence`]).
//!
//! [`run`] takes its own [`Options`] (the clap adapter is `commands::warm`).

mod progress;
pub mod report;
pub mod sources;

use crate::oci::manifest::{Descriptor, ImageManifest, Index, ManifestError};
use crate::oci::{self, Digest, Platform, Reference};
use crate::registry::{Blob, Client, Credentials, Diagnosis, Exchange, Kind};
use crate::verify::evidence::{self, Cache, Evidence};
use progress::Progress;
use report::{BlobOutcome, ImageReport, Report};
use sources::Source;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore};

/// Which platforms of an index to warm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platforms {
    /// Every platform the index lists (attestation manifests, `unknown/unknown`, left out).
    All,
    List(Vec<Platform>),
}

/// Everything a warm run needs, already validated.
#[derive(Clone)]
pub struct Options {
    /// The mirror's base URL (`http://host:port`).
    pub mirror: String,
    pub credentials: Credentials,
    pub images: Vec<Source>,
    pub platforms: Platforms,
    /// Downloads at once (images and blobs).
    pub jobs: usize,
    pub timeout: Duration,
    pub ca_pem: Option<Vec<u8>>,
    /// Progress on stderr (bars on a terminal, a line per image otherwise).
    pub progress: bool,
}

/// One blob's download, shared by every image of the run that has it.
type SharedBlob = Arc<OnceCell<Result<BlobOutcome, Diagnosis>>>;

/// What the run's images share: one download per blob, `jobs` downloads at once.
struct Run {
    opts: Options,
    clients: Mutex<HashMap<String, Arc<Client>>>,
    blobs: Mutex<HashMap<Digest, SharedBlob>>,
    slots: Semaphore,
    progress: Progress,
}

/// Warm every image; the report says which succeeded (`ok` when all did).
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(run_async(opts));
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn run_async(opts: &Options) -> anyhow::Result<Report> {
    // Built once up front: a bad --ca-cert is a usage error before any pull.
    Client::new(
        &opts.mirror,
        opts.credentials.clone(),
        opts.timeout,
        opts.ca_pem.as_deref(),
    )
    .map_err(|e| crate::error::UserError(format!("--ca-cert: {e:#}")))?;
    let start = Instant::now();
    let run = Arc::new(Run {
        opts: opts.clone(),
        clients: Mutex::new(HashMap::new()),
        blobs: Mutex::new(HashMap::new()),
        slots: Semaphore::new(opts.jobs.max(1)),
        progress: Progress::new(opts.images.len(), opts.progress),
    });
    // A task per image (and per blob, below): the runtime's workers share them, so a big
    // layer being hashed never holds up another image's requests. `slots` bounds the downloads.
    let tasks: Vec<_> = opts
        .images
        .iter()
        .cloned()
        .map(|s| {
            let run = run.clone();
            tokio::spawn(async move { run.image(&s).await })
        })
        .collect();
    let mut images = Vec::new();
    for (t, s) in tasks.into_iter().zip(&opts.images) {
        images.push(t.await.unwrap_or_else(|e| {
            let mut rep = ImageReport::new(s);
            rep.fail(Diagnosis::new(
                Kind::BadResponse,
                format!("the pull task failed: {e}"),
            ));
            rep.conclude();
            rep
        }));
    }
    run.progress.finish();
    Ok(Report::new(
        &opts.mirror,
        opts.jobs,
        images,
        start.elapsed().as_secs_f64(),
    ))
}

impl Run {
    /// The client for images of `registry` (`?ns=` when not Docker Hub).
    fn client(&self, registry: &str) -> Result<Arc<Client>, Diagnosis> {
        let mut clients = crate::error::lock(&self.clients);
        if let Some(c) = clients.get(registry) {
            return Ok(c.clone());
        }
        let o = &self.opts;
        let c = Client::new(
            &o.mirror,
            o.credentials.clone(),
            o.timeout,
            o.ca_pem.as_deref(),
        )
        .map_err(|e| Diagnosis::new(Kind::BadResponse, format!("{e:#}")))?
        .with_namespace(registry)
        .with_user_agent(concat!("mirrorctl/", env!("CARGO_PKG_VERSION"), " (warm)"));
        let c = Arc::new(c);
        clients.insert(registry.to_string(), c.clone());
        Ok(c)
    }

    /// Warm one image; failures land in its report.
    async fn image(self: &Arc<Self>, s: &Source) -> ImageReport {
        let start = Instant::now();
        let mut rep = ImageReport::new(s);
        if let Err(d) = self.image_inner(&s.image, &mut rep).await {
            rep.fail(d);
        }
        rep.seconds = (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        rep.conclude();
        self.progress.image_done(&rep);
        rep
    }

    async fn image_inner(
        self: &Arc<Self>,
        r: &Reference,
        rep: &mut ImageReport,
    ) -> Result<(), Diagnosis> {
        let client = self.client(&r.registry)?;
        let repo = r.repository.as_str();
        let top = {
            let _slot = self.slots.acquire().await;
            client.manifest(repo, &r.reference()).await?
        };
        rep.digest = Some(top.digest.to_string());
        rep.manifest = Some(manifest_evidence(&top.exchange));
        let manifests = if oci::media::is_index(&top.media_type) {
            let index = Index::parse(&top.body).map_err(|e| bad(&top.exchange.url, e))?;
            let picked = self.pick(r, &index)?;
            let mut out = Vec::new();
            for d in picked {
                let _slot = self.slots.acquire().await;
                let m = client.manifest(repo, &d.digest.to_string()).await?;
                rep.platforms.push(platform_name(d));
                out.push(m.body);
            }
            out
        } else {
            vec![top.body]
        };
        rep.manifests = 1 + rep.platforms.len();
        let mut blobs: Vec<Descriptor> = Vec::new();
        for body in &manifests {
            let image = ImageManifest::parse(body).map_err(|e| match e {
                ManifestError::SchemaV1 => Diagnosis::new(
                    Kind::BadResponse,
                    format!("{r} is a schema 1 manifest, which mirrorctl does not pull"),
                ),
                e => bad(&r.to_string(), e),
            })?;
            for (_, d) in image.blobs() {
                if !blobs.iter().any(|b| b.digest == d.digest) {
                    blobs.push(d.clone());
                }
            }
        }
        self.blobs_of(&client, repo, blobs, rep).await
    }

    /// The index entries to warm: every platform, or those asked for (each must be there).
    fn pick<'i>(&self, r: &Reference, index: &'i Index) -> Result<Vec<&'i Descriptor>, Diagnosis> {
        match &self.opts.platforms {
            Platforms::All => Ok(index
                .manifests
                .iter()
                .filter(|d| {
                    d.platform
                        .as_ref()
                        .is_none_or(|p| p.os != "unknown" && p.architecture != "unknown")
                })
                .collect()),
            Platforms::List(want) => want
                .iter()
                .map(|p| {
                    index.pick(p).map_err(|have| {
                        Diagnosis::new(
                            Kind::NotFound,
                            format!(
                                "{r} has no {p} image (it has {}); fix --platform",
                                have.join(", ")
                            ),
                        )
                    })
                })
                .collect(),
        }
    }

    /// Download `blobs` (each once per run), `jobs` at a time; record each outcome.
    async fn blobs_of(
        self: &Arc<Self>,
        client: &Arc<Client>,
        repo: &str,
        blobs: Vec<Descriptor>,
        rep: &mut ImageReport,
    ) -> Result<(), Diagnosis> {
        self.progress.add_bytes(blobs.iter().map(|d| d.size).sum());
        let tasks: Vec<_> = blobs
            .into_iter()
            .map(|d| {
                let (run, client, repo) = (self.clone(), client.clone(), repo.to_string());
                tokio::spawn(async move {
                    let (first, r) = run.shared_blob(&client, &repo, &d).await;
                    (d, first, r)
                })
            })
            .collect();
        for t in tasks {
            match t.await {
                Ok((d, first, Ok(o))) => rep.add_blob(&d, o, !first),
                Ok((_, _, Err(d))) => return Err(d),
                Err(e) => {
                    let msg = format!("a download task failed: {e}");
                    return Err(Diagnosis::new(Kind::BadResponse, msg));
                }
            }
        }
        Ok(())
    }

    /// The blob's outcome, fetched by this call (`true`) or by another image's (`false`).
    async fn shared_blob(
        &self,
        client: &Client,
        repo: &str,
        d: &Descriptor,
    ) -> (bool, Result<BlobOutcome, Diagnosis>) {
        let cell = crate::error::lock(&self.blobs)
            .entry(d.digest.clone())
            .or_default()
            .clone();
        let mut mine = false;
        let r = cell
            .get_or_init(|| async {
                mine = true;
                let _slot = self.slots.acquire().await;
                let mut seen = 0u64;
                let got = client
                    .blob(repo, &d.digest, d.size, |n| {
                        self.progress.advance(n.saturating_sub(seen));
                        seen = n;
                    })
                    .await;
                // Bytes counted for a download that failed half-way are taken back.
                if got.is_err() {
                    self.progress.advance_back(seen);
                }
                got.map(|b| blob_outcome(&b))
            })
            .await
            .clone();
        if !mine {
            self.progress.advance(d.size);
        }
        (mine, r)
    }
}

/// What the mirror's response to a blob says about its cache.
fn blob_outcome(b: &Blob) -> BlobOutcome {
    let ev = match &b.redirect {
        Some(r) => evidence::classify_redirect(r.status, &r.headers, &b.exchange.url),
        None => evidence::classify(&b.exchange.headers, true),
    };
    BlobOutcome {
        cache: ev.cache,
        evidence: ev.header,
        bytes: b.bytes,
    }
}

/// What the mirror's manifest response says (a tag is often revalidated even when cached).
fn manifest_evidence(ex: &Exchange) -> Evidence {
    let e = evidence::classify(&ex.headers, false);
    if e.cache == Cache::Unknown {
        return Evidence {
            header: format!("{} (status {})", e.header, ex.status),
            ..e
        };
    }
    e
}

fn platform_name(d: &Descriptor) -> String {
    d.platform
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| d.digest.to_string())
}

fn bad(what: &str, e: impl std::fmt::Display) -> Diagnosis {
    Diagnosis::new(
        Kind::BadResponse,
        format!("{what}: a manifest mirrorctl cannot read ({e})"),
    )
}
