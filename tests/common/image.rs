//! The probe image, built by the test itself (no network): an OCI image layout with tags
//! `latest` (linux/amd64, one tiny gzip layer holding `/hello.txt`), `multi` (an OCI index of
//! linux/amd64 + linux/arm64) and optionally `big` (one layer of N MiB random data).
//! Every test run builds fresh content (a random nonce in each layer), so a mirror or client
//! can never answer from an earlier run's cache.

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The probe's reference as clients pull it, without the tag.
pub const PROBE: &str = "docker.io/library/probe";
/// The probe's repository, as the mirror's access log names it.
pub const REPO: &str = "library/probe";

pub const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MT_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A descriptor: media type, `sha256:…` digest, size.
#[derive(Debug, Clone)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// One platform image inside the layout.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub arch: String,
    pub manifest: Desc,
    pub config: Desc,
    pub layer: Desc,
}

#[derive(Debug)]
pub struct ProbeImage {
    /// The OCI layout dir (use as `oci:<dir>:<tag>`).
    pub dir: PathBuf,
    /// `latest`: linux/amd64.
    pub amd64: PlatformImage,
    /// The arm64 half of `multi`.
    pub arm64: PlatformImage,
    /// `multi`: the index.
    pub index: Desc,
    /// `big`, when requested.
    pub big: Option<PlatformImage>,
}

impl ProbeImage {
    /// Write the layout into `dir` (created). `big_mb`: add a `big` tag of that many MiB.
    pub fn build(dir: &Path, big_mb: Option<usize>) -> ProbeImage {
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let nonce = nonce();
        let amd = format!("hello from probe image (amd64) {nonce}\n");
        let amd64 = platform_image(&blobs, "amd64", "hello.txt", amd.as_bytes());
        let arm = format!("hello from probe image (arm64) {nonce}\n");
        let arm64 = platform_image(&blobs, "arm64", "hello.txt", arm.as_bytes());
        let index_json = json!({
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": [
                platform_desc(&amd64),
                platform_desc(&arm64),
            ],
        });
        let index = put(&blobs, &to_bytes(&index_json), MT_INDEX);
        let big = big_mb.map(|mb| {
            let mut data = vec![0u8; mb * 1024 * 1024];
            fill_random(&mut data);
            platform_image(&blobs, "amd64", "random.bin", &data)
        });

        let mut manifests = vec![tagged(&amd64.manifest, "latest"), tagged(&index, "multi")];
        if let Some(b) = &big {
            manifests.push(tagged(&b.manifest, "big"));
        }
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let idx = json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests});
        std::fs::write(dir.join("index.json"), to_bytes(&idx)).unwrap();
        ProbeImage {
            dir: dir.to_path_buf(),
            amd64,
            arm64,
            index,
            big,
        }
    }

    /// `oci:<dir>:<tag>` for skopeo.
    pub fn oci_ref(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }
}

fn nonce() -> String {
    let mut b = [0u8; 8];
    fill_random(&mut b);
    hex::encode(b)
}

fn fill_random(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(buf)
        .unwrap();
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn put(blobs: &Path, data: &[u8], media_type: &str) -> Desc {
    let digest = super::sha256(data);
    std::fs::write(blobs.join(&digest["sha256:".len()..]), data).unwrap();
    Desc {
        media_type: media_type.into(),
        digest,
        size: data.len() as u64,
    }
}

fn desc_json(d: &Desc) -> Value {
    json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size})
}

fn platform_desc(p: &PlatformImage) -> Value {
    let mut v = desc_json(&p.manifest);
    v["platform"] = json!({"architecture": p.arch, "os": "linux"});
    v
}

fn tagged(d: &Desc, tag: &str) -> Value {
    let mut v = desc_json(d);
    v["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    v
}

fn platform_image(blobs: &Path, arch: &str, file: &str, content: &[u8]) -> PlatformImage {
    // Uncompressed tar (its digest is the diff_id), then gzip.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path(file).unwrap();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    tar.append(&h, content).unwrap();
    let raw = tar.into_inner().unwrap();
    let diff_id = super::sha256(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let layer = put(blobs, &gz.finish().unwrap(), MT_LAYER);

    let cfg = json!({
        "architecture": arch,
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {"Cmd": ["/hello"], "Env": ["PATH=/"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "mirrorctl test harness"}],
    });
    let config = put(blobs, &to_bytes(&cfg), MT_CONFIG);
    let man = json!({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": desc_json(&config),
        "layers": [desc_json(&layer)],
    });
    let manifest = put(blobs, &to_bytes(&man), MT_MANIFEST);
    PlatformImage {
        arch: arch.into(),
        manifest,
        config,
        layer,
    }
}
