//! Manifest and index documents as a puller reads them: an index (OCI image index or Docker
//! manifest list) names one manifest per platform; an image manifest names a config blob and
//! its layers. Only what a pull needs is parsed; anything else in the JSON is ignored.

use super::{Digest, Platform};
use serde::Deserialize;
use std::fmt;

/// A content descriptor: what to fetch and how big it must be.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<PlatformSpec>,
}

/// The `platform` of an index entry, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)
    }
}

/// An image index / manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Index {
    pub manifests: Vec<Descriptor>,
}

/// An image manifest (schema 2 or OCI).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// Not JSON, or a field has the wrong shape.
    Invalid(String),
    /// A Docker schema 1 manifest (signed, no config blob): not supported.
    SchemaV1,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Invalid(why) => f.write_str(why),
            ManifestError::SchemaV1 => f.write_str("a Docker schema 1 manifest"),
        }
    }
}

impl std::error::Error for ManifestError {}

impl Index {
    pub fn parse(body: &[u8]) -> Result<Index, ManifestError> {
        serde_json::from_slice(body).map_err(|e| ManifestError::Invalid(e.to_string()))
    }

    /// The entry for `platform` (the first that matches), or the platforms the index has.
    pub fn pick(&self, platform: &Platform) -> Result<&Descriptor, Vec<String>> {
        self.manifests
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| platform.matches(&p.os, &p.architecture, p.variant.as_deref()))
            })
            .ok_or_else(|| {
                self.manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
                    .collect()
            })
    }
}

impl ImageManifest {
    pub fn parse(body: &[u8]) -> Result<ImageManifest, ManifestError> {
        #[derive(Deserialize)]
        struct Version {
            #[serde(rename = "schemaVersion", default)]
            schema_version: Option<u64>,
        }
        if let Ok(Version {
            schema_version: Some(1),
        }) = serde_json::from_slice::<Version>(body)
        {
            return Err(ManifestError::SchemaV1);
        }
        serde_json::from_slice(body).map_err(|e| ManifestError::Invalid(e.to_string()))
    }

    /// The config blob, then every layer, in order.
    pub fn blobs(&self) -> impl Iterator<Item = (BlobKind, &Descriptor)> {
        std::iter::once((BlobKind::Config, &self.config))
            .chain(self.layers.iter().map(|l| (BlobKind::Layer, l)))
    }
}

/// What a blob of an image manifest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    Config,
    Layer,
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn index_picks_the_platform_or_lists_what_it_has() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[
                {{"mediaType":"m","digest":"{D}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
                {{"digest":"{D}","size":2,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#
        );
        let ix = Index::parse(body.as_bytes()).unwrap();
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(ix.pick(&arm).unwrap().size, 2);
        let s390 = Platform::parse("linux/s390x").unwrap();
        assert_eq!(
            ix.pick(&s390).unwrap_err(),
            vec!["linux/amd64".to_string(), "linux/arm64".to_string()]
        );
        assert!(Index::parse(b"{}").is_err());
        assert!(Index::parse(b"[").is_err());
    }

    #[test]
    fn image_manifest_blobs_in_order_and_schema1_refused() {
        let body = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{D}","size":3}},"layers":[{{"digest":"{D}","size":4}}]}}"#
        );
        let m = ImageManifest::parse(body.as_bytes()).unwrap();
        let kinds: Vec<(BlobKind, u64)> = m.blobs().map(|(k, d)| (k, d.size)).collect();
        assert_eq!(kinds, vec![(BlobKind::Config, 3), (BlobKind::Layer, 4)]);
        assert_eq!(
            ImageManifest::parse(br#"{"schemaVersion":1,"fsLayers":[]}"#).unwrap_err(),
            ManifestError::SchemaV1
        );
        assert!(matches!(
            ImageManifest::parse(br#"{"config":{"digest":"md5:x","size":1},"layers":[]}"#),
            Err(ManifestError::Invalid(_))
        ));
    }
}
