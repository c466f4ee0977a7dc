//! warm's report: per image whether the mirror already had it or fetched it (from the cache
//! headers of its blob responses), its bytes and time; the run's totals. Text or `--json`
//! (`completions/schema/warm.schema.json`).

use super::sources::Source;
use crate::diag::outln;
use crate::oci::manifest::Descriptor;
use crate::registry::{Diagnosis, Kind};
use crate::verify::evidence::{Cache, Evidence};
use serde::Serialize;

/// One blob's download: what the mirror's response said about its cache.
#[derive(Debug, Clone)]
pub struct BlobOutcome {
    pub cache: Cache,
    pub evidence: String,
    pub bytes: u64,
}

/// Where the mirror had an image, from its blob responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mirror {
    /// Every blob was a hit: the mirror already had the image.
    Cached,
    /// At least one blob was a miss: the mirror fetched it from its upstream now.
    Fetched,
    /// The mirror's responses say neither (no cache header).
    Unknown,
    /// The image could not be warmed.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub kind: Kind,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub image: String,
    /// Where it was named: `command line`, `FILE:LINE`.
    pub source: String,
    pub ok: bool,
    pub mirror: Mirror,
    /// Why `mirror` is what it is: the deciding response's evidence.
    pub evidence: String,
    /// The digest of the tag's manifest or index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The platforms warmed (empty for a single-platform manifest).
    pub platforms: Vec<String>,
    /// Manifests fetched (the tag's, plus one per platform of an index).
    pub manifests: usize,
    /// What the mirror's answer for the tag's manifest said (reported, not counted: a cache
    /// revalidates a tag upstream even when it holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_cache: Option<Cache>,
    pub blobs: usize,
    /// Blobs that were hits / misses at the mirror.
    pub hits: usize,
    pub misses: usize,
    /// Blobs another image of this run had already fetched.
    pub shared: usize,
    /// Blob bytes of the image (shared ones included).
    pub bytes: u64,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    #[serde(skip)]
    pub manifest: Option<Evidence>,
    /// Of `bytes`, those of the blobs this image fetched itself (not shared).
    #[serde(skip)]
    own_bytes: u64,
    #[serde(skip)]
    first_miss: Option<String>,
    #[serde(skip)]
    first_unknown: Option<String>,
    #[serde(skip)]
    first_hit: Option<String>,
}

impl ImageReport {
    pub fn new(s: &Source) -> ImageReport {
        ImageReport {
            image: s.image.to_string(),
            source: s.origin.clone(),
            ok: false,
            mirror: Mirror::Unknown,
            evidence: String::new(),
            digest: None,
            platforms: Vec::new(),
            manifests: 0,
            manifest_cache: None,
            blobs: 0,
            hits: 0,
            misses: 0,
            shared: 0,
            bytes: 0,
            seconds: 0.0,
            error: None,
            manifest: None,
            own_bytes: 0,
            first_miss: None,
            first_unknown: None,
            first_hit: None,
        }
    }

    pub fn add_blob(&mut self, d: &Descriptor, o: BlobOutcome, shared: bool) {
        self.blobs += 1;
        self.bytes += o.bytes;
        self.shared += usize::from(shared);
        if !shared {
            self.own_bytes += o.bytes;
        }
        let said = format!("{}: {}", d.digest, o.evidence);
        let first = match o.cache {
            Cache::Hit => {
                self.hits += 1;
                &mut self.first_hit
            }
            Cache::Miss => {
                self.misses += 1;
                &mut self.first_miss
            }
            Cache::Unknown => &mut self.first_unknown,
        };
        first.get_or_insert(said);
    }

    pub fn fail(&mut self, d: Diagnosis) {
        self.error = Some(ErrorReport {
            kind: d.kind,
            message: d.to_string(),
        });
    }

    /// Decide `ok`, `mirror` and `evidence` once every response is in.
    pub fn conclude(&mut self) {
        self.manifest_cache = self.manifest.as_ref().map(|e| e.cache);
        if let Some(e) = &self.error {
            self.ok = false;
            self.mirror = Mirror::Failed;
            self.evidence = e.message.clone();
            return;
        }
        self.ok = true;
        (self.mirror, self.evidence) = if let Some(m) = &self.first_miss {
            (Mirror::Fetched, m.clone())
        } else if let Some(u) = &self.first_unknown {
            (Mirror::Unknown, u.clone())
        } else if let Some(h) = &self.first_hit {
            (Mirror::Cached, format!("every blob, e.g. {h}"))
        } else {
            (Mirror::Unknown, "no blob".into())
        };
    }

    /// One line: `IMAGE: cached, 3 blobs, 2.1 MiB, 0.12 s`.
    pub fn summary(&self) -> String {
        if let Some(e) = &self.error {
            return format!("{}: FAILED: {}", self.image, e.message);
        }
        let word = match self.mirror {
            Mirror::Cached => "already cached",
            Mirror::Fetched => "fetched by the mirror",
            Mirror::Unknown => "pulled (the mirror sent no cache header)",
            Mirror::Failed => "failed",
        };
        let platforms = if self.platforms.is_empty() {
            String::new()
        } else {
            format!(" [{}]", self.platforms.join(", "))
        };
        format!(
            "{}{platforms}: {word}, {} blob(s), {}, {:.2} s",
            self.image,
            self.blobs,
            human_bytes(self.bytes),
            self.seconds
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub mirror: String,
    pub jobs: usize,
    pub images: Vec<ImageReport>,
    /// Distinct blobs pulled in this run, and their bytes.
    pub blobs: usize,
    pub bytes: u64,
    pub failed: usize,
    pub seconds: f64,
}

impl Report {
    pub fn new(mirror: &str, jobs: usize, images: Vec<ImageReport>, seconds: f64) -> Report {
        let failed = images.iter().filter(|i| !i.ok).count();
        let blobs: usize = images.iter().map(|i| i.blobs - i.shared).sum();
        let bytes = images.iter().map(|i| i.own_bytes).sum::<u64>();
        Report {
            ok: failed == 0,
            mirror: mirror.to_string(),
            jobs,
            blobs,
            bytes,
            failed,
            images,
            seconds: (seconds * 1000.0).round() / 1000.0,
        }
    }

    pub fn print_human(&self) {
        outln!("warm through {}", self.mirror);
        for i in &self.images {
            outln!("  {}", i.summary());
        }
        let warmed = self.images.len() - self.failed;
        outln!(
            "{} image(s): {warmed} warmed, {} failed; {} distinct blob(s), {}, {:.2} s",
            self.images.len(),
            self.failed,
            self.blobs,
            human_bytes(self.bytes),
            self.seconds
        );
    }
}

/// `1.5 MiB` (powers of 1024).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    match UNITS.get(u) {
        Some(unit) if u > 0 => format!("{v:.1} {unit}"),
        _ => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_well() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(64 << 20), "64.0 MiB");
    }
}
