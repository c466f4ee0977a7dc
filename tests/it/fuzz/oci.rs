//! OCI parser targets: references, digests, `WWW-Authenticate`, manifest/index JSON (raw
//! bytes, invalid UTF-8 included), `Range`, `/v2/` paths, mirror URLs and mirror sets,
//! registry names and platforms. Properties: never panics; what is accepted round-trips
//! (`Display`/render, re-parse, equal) and satisfies its grammar; `range` results lie within
//! the body (`start < end <= size`) and agree with RFC 9110 for well-formed ranges.

use crate::fuzz::mutate::{self, Format};
use crate::fuzz::rng::Rng;
use mirrorctl::mirror::{Mirror, MirrorSet};
use mirrorctl::oci::manifest::{ImageManifest, Index};
use mirrorctl::oci::{AuthChallenge, AuthScheme, Digest, Platform, Reference};
use mirrorctl::serve::route::{self, ManifestRef, Target as Route};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Reference,
    Digest,
    Auth,
    Manifest,
    Range,
    Route,
    Mirror,
    Names,
}

pub struct Oci(pub Which);

pub struct Case {
    bytes: Vec<u8>,
    /// The body size for `range`; extra `--mirror` values for `Mirror`.
    size: u64,
    args: Vec<String>,
}

const D256: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const D512: &str = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

const REF_SEEDS: &[&str] = &[
    "alpine",
    "alpine:3.20",
    "docker.io/library/alpine:latest",
    "index.docker.io/library/alpine",
    "user/app:1",
    "ghcr.io/o/r:tag",
    "localhost/x",
    "localhost:5000/a/b/c:tag",
    "127.0.0.1:5000/probe:latest",
    "[::1]:5000/x:y",
    "registry.k8s.io/pause:3.9",
    "a__b/c-d--e.f:_x",
    "quay.io/a/b@",
    "x:y:z",
    "a.b:+5000/x",
];

const REGISTRY_SEEDS: &[&str] = &[
    "docker.io",
    "GHCR.io",
    "localhost:5000",
    "[::1]:5000",
    "[::1]",
    "a-b.c-d.example:65535",
    "registry-1.docker.io",
    "ghcr.io:99999",
    "-bad.io",
    "a..b",
    "[fe80::1%25eth0]:5000",
    "a:+5",
    "a:",
];

const PLATFORM_SEEDS: &[&str] = &[
    "linux/amd64",
    "linux/arm64/v8",
    "Linux/X86_64",
    "windows/amd64",
    "linux/arm/v7",
    "linux//",
    "linux",
    "a/b/c/d",
];

const AUTH_SEEDS: &[&str] = &[
    r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
    r#"Basic realm="Registry Realm", Bearer realm="x", service=svc"#,
    r#"Bearer realm="a\"b""#,
    r#"Negotiate abc=="#,
    "Bearer realm",
    "Bearer=x",
    r#"Bearer realm="unterminated"#,
    r#"Bearer realm="x\"#,
    ",,,",
    "",
];

const MIRROR_SEEDS: &[&str] = &[
    "http://127.0.0.1:5000",
    "HTTP://Mirror.Example:5000/",
    "https://m:443",
    "http://m:80",
    "http://m:443",
    "http://[::1]:5000",
    "http://[::ffff:1.2.3.4]",
    "https://bücher.example",
    " https://m.example ",
    "http://%41.example",
    "mirror:5000",
    "ftp://m",
    "http://u:p@m",
    "http://m/?x=1",
    "http://m/#f",
    "http://m/prefix",
    "https://harbor.example/v2/dh/",
    "http://h:1/group/proxy",
    "http://h/dh/v2",
    "http://",
    "ghcr.io=http://x:5000",
    "=http://x",
];

const RANGE_SEEDS: &[&str] = &[
    "bytes=0-4",
    "bytes=5-",
    "bytes=-3",
    "bytes=8-100",
    "bytes=10-",
    "bytes=0-1,4-5",
    "items=0-1",
    " bytes=1-2 ",
    "bytes=-0",
    "bytes=5-3",
    "bytes=-",
    "bytes=",
    "Bytes=0-1",
    "bytes=0-18446744073709551615",
    "bytes=0-18446744073709551616",
    "bytes=-18446744073709551616",
];

fn manifest_seeds() -> Vec<String> {
    vec![
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D256}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},{{"digest":"{D256}","size":2,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},{{"digest":"{D512}","size":3}}]}}"#
        ),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{D256}","size":3}},"layers":[{{"digest":"{D256}","size":4}},{{"digest":"{D512}","size":18446744073709551615}}]}}"#
        ),
        r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[],"signatures":[]}"#.to_string(),
        "{}".to_string(),
        "[]".to_string(),
        "\u{feff}{\"manifests\":[]}".to_string(),
    ]
}

fn route_seeds() -> Vec<String> {
    vec![
        "library/probe/manifests/latest".into(),
        format!("a/b/c/manifests/{D256}"),
        format!("x/blobs/{D256}"),
        format!("x/blobs/{D512}"),
        "x/y/tags/list".into(),
        "x/blobs/uploads/".into(),
        "x/blobs/uploads/uuid-1".into(),
        "blobs/manifests/v1".into(),
        "a/manifests/b/manifests/latest".into(),
        "x/tags/list/manifests/latest".into(),
        "../etc/manifests/latest".into(),
        "%2e%2e/manifests/latest".into(),
        "x/manifests/sha256:abc".into(),
        "x/something".into(),
    ]
}

/// A structured reference: `[registry/]path[:tag][@digest]`, pieces valid or nearly.
fn gen_reference(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.chance(50) {
        s.push_str(rng.one(REGISTRY_SEEDS));
        s.push('/');
    }
    for i in 0..1 + rng.small(3) {
        if i > 0 {
            s.push('/');
        }
        s.push_str(rng.one(&[
            "library", "a", "x-y", "a__b", "a.b", "A", "a_", "9", "a---b",
        ]));
    }
    if rng.chance(50) {
        s.push(':');
        let long = ["x".repeat(128), "x".repeat(129)];
        s.push_str(rng.one(&["latest", "3.20", "_x", "-bad", &long[0], &long[1]]));
    }
    if rng.chance(30) {
        s.push('@');
        s.push_str(rng.one(&[D256, D512, "sha256:abc", "md5:x"]));
    }
    s
}

fn gen_digest(rng: &mut Rng) -> String {
    let alg = rng.one(&["sha256", "sha512", "SHA256", "sha384", "", "sha256+b64"]);
    let len = match rng.below(4) {
        0 => 64,
        1 => 128,
        2 => 63 + rng.below(3),
        _ => rng.below(200),
    };
    let hex: String = (0..len)
        .map(|_| {
            let c = rng.one(b"0123456789abcdefABCDEFg:/.") as char;
            if rng.chance(95) {
                c.to_ascii_lowercase()
            } else {
                c
            }
        })
        .collect();
    let hex = if rng.chance(70) {
        hex.chars()
            .map(|c| if c.is_ascii_hexdigit() { c } else { 'a' })
            .collect()
    } else {
        hex
    };
    format!("{alg}:{hex}")
}

fn gen_auth(rng: &mut Rng) -> String {
    let mut parts = Vec::new();
    for _ in 0..1 + rng.small(2) {
        let mut c = rng
            .pick(&["Bearer", "Basic", "bearer", "Digest", "Negotiate"])
            .to_string();
        let params: Vec<String> = (0..rng.small(4))
            .map(|_| {
                let k = rng.pick(&["realm", "service", "scope", "Realm", "error", "x"]);
                let v = rng.pick(&[
                    "\"https://auth.example/token\"",
                    "\"repository:a/b:pull,push\"",
                    "\"a\\\"b\"",
                    "\"\"",
                    "svc",
                    "\"é\\\\\"",
                    "",
                ]);
                format!("{k}={v}")
            })
            .collect();
        if !params.is_empty() {
            c.push(' ');
            c.push_str(&params.join(rng.one(&[",", ", ", " ,"])));
        }
        parts.push(c);
    }
    parts.join(", ")
}

fn gen_range(rng: &mut Rng, size: u64) -> String {
    let num = |rng: &mut Rng| -> String {
        match rng.below(7) {
            0 => "0".into(),
            1 => size.to_string(),
            2 => size.saturating_sub(1).to_string(),
            3 => size.saturating_add(1).to_string(),
            4 => u64::MAX.to_string(),
            5 => "18446744073709551616".into(),
            _ => (rng.next_u64() % (size.saturating_add(2).max(1))).to_string(),
        }
    };
    match rng.below(4) {
        0 => format!("bytes={}-{}", num(rng), num(rng)),
        1 => format!("bytes={}-", num(rng)),
        2 => format!("bytes=-{}", num(rng)),
        _ => rng.pick(RANGE_SEEDS).to_string(),
    }
}

fn gen_size(rng: &mut Rng) -> u64 {
    match rng.below(6) {
        0 => 0,
        1 => 1,
        2 => rng.range(2, 100) as u64,
        3 => u64::MAX,
        4 => u64::MAX - 1,
        _ => rng.next_u64() >> rng.below(64),
    }
}

impl crate::fuzz::Target for Oci {
    type Case = Case;

    fn gen(&self, rng: &mut Rng) -> Case {
        let mut size = 0;
        let mut args = Vec::new();
        let line = |rng: &mut Rng, seeds: &[&str], s: String| -> Vec<u8> {
            let o: Vec<&[u8]> = seeds.iter().map(|x| x.as_bytes()).collect();
            if rng.chance(40) {
                s.into_bytes()
            } else {
                mutate::mutate(rng, Format::Line, s.as_bytes(), &o, 4)
            }
        };
        let bytes = match self.0 {
            Which::Reference => {
                let s = if rng.chance(50) {
                    rng.pick(REF_SEEDS).to_string()
                } else {
                    gen_reference(rng)
                };
                line(rng, REF_SEEDS, s)
            }
            Which::Digest => {
                let s = match rng.below(3) {
                    0 => D256.to_string(),
                    1 => D512.to_string(),
                    _ => gen_digest(rng),
                };
                line(rng, &[D256, D512], s)
            }
            Which::Auth => {
                let s = if rng.chance(40) {
                    rng.pick(AUTH_SEEDS).to_string()
                } else {
                    gen_auth(rng)
                };
                line(rng, AUTH_SEEDS, s)
            }
            Which::Manifest => {
                let seeds = manifest_seeds();
                let s = rng.pick(&seeds).clone();
                let o: Vec<&[u8]> = seeds.iter().map(|x| x.as_bytes()).collect();
                mutate::mutate(rng, Format::Json, s.as_bytes(), &o, 5)
            }
            Which::Range => {
                size = gen_size(rng);
                let s = gen_range(rng, size);
                line(rng, RANGE_SEEDS, s)
            }
            Which::Route => {
                let seeds = route_seeds();
                let s = rng.pick(&seeds).clone();
                let r: Vec<&str> = seeds.iter().map(String::as_str).collect();
                line(rng, &r, s)
            }
            Which::Mirror => {
                for _ in 0..rng.small(3) {
                    let s = rng.pick(MIRROR_SEEDS).to_string();
                    let b = line(rng, MIRROR_SEEDS, s);
                    args.push(String::from_utf8_lossy(&b).into_owned());
                }
                let s = rng.pick(MIRROR_SEEDS).to_string();
                line(rng, MIRROR_SEEDS, s)
            }
            Which::Names => {
                let s = if rng.chance(50) {
                    rng.pick(REGISTRY_SEEDS).to_string()
                } else {
                    rng.pick(PLATFORM_SEEDS).to_string()
                };
                let mut all: Vec<&str> = REGISTRY_SEEDS.to_vec();
                all.extend_from_slice(PLATFORM_SEEDS);
                line(rng, &all, s)
            }
        };
        Case { bytes, size, args }
    }

    fn input(&self, c: &Case) -> Vec<u8> {
        c.bytes.clone()
    }

    fn describe(&self, c: &Case) -> String {
        format!(
            "target: {:?}\ninput: {:?}\nsize: {}\nargs: {:?}\n",
            self.0,
            String::from_utf8_lossy(&c.bytes),
            c.size,
            c.args
        )
    }

    fn check(&self, c: &Case) -> Result<bool, String> {
        let s = String::from_utf8_lossy(&c.bytes).into_owned();
        match self.0 {
            Which::Reference => check_reference(&s),
            Which::Digest => check_digest(&s),
            Which::Auth => check_auth(&s),
            Which::Manifest => check_manifest(&c.bytes),
            Which::Range => check_range(&s, c.size),
            Which::Route => check_route(&s),
            Which::Mirror => check_mirror(&s, &c.args),
            Which::Names => check_names(&s),
        }
    }
}

fn check_reference(s: &str) -> Result<bool, String> {
    let Ok(r) = s.parse::<Reference>() else {
        return Ok(false);
    };
    let shown = r.to_string();
    let again: Reference = shown.parse().map_err(|e| {
        format!("reference does not re-parse from its Display\n{s:?} → {shown:?}: {e}")
    })?;
    if again != r {
        return Err(format!(
            "reference changes through Display\n{s:?}: {r:?}\n{shown:?}: {again:?}"
        ));
    }
    if mirrorctl::oci::validate_registry(&r.registry).as_deref() != Ok(r.registry.as_str())
        || !mirrorctl::oci::valid_repository(&r.repository)
        || r.tag
            .as_deref()
            .is_some_and(|t| !mirrorctl::oci::valid_tag(t))
    {
        return Err(format!(
            "accepted reference has an invalid part\n{s:?}: {r:?}"
        ));
    }
    Ok(true)
}

fn check_digest(s: &str) -> Result<bool, String> {
    let Ok(d) = s.parse::<Digest>() else {
        return Ok(false);
    };
    if d.to_string() != s {
        return Err(format!(
            "digest Display differs from its input\n{s:?} → {d}"
        ));
    }
    if d.to_string().parse::<Digest>().as_ref() != Ok(&d) {
        return Err(format!("digest does not re-parse\n{s:?}"));
    }
    if d.hex().len()
        != if d.algorithm().as_str() == "sha256" {
            64
        } else {
            128
        }
        || !d
            .hex()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("accepted digest has a bad hex part\n{s:?}"));
    }
    Ok(true)
}

/// Render challenges back to a header value (quoted values, escaped).
fn render_auth(all: &[AuthChallenge]) -> String {
    all.iter()
        .map(|c| {
            let mut s = match &c.scheme {
                AuthScheme::Bearer => "Bearer".to_string(),
                AuthScheme::Basic => "Basic".to_string(),
                AuthScheme::Other(t) => t.clone(),
            };
            let params: Vec<String> = c
                .params
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            if !params.is_empty() {
                s.push(' ');
                s.push_str(&params.join(", "));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_auth(s: &str) -> Result<bool, String> {
    let all = AuthChallenge::parse_all(s);
    for c in &all {
        let _ = (c.realm(), c.service(), c.scope());
        if let AuthScheme::Other(t) = &c.scheme {
            if t.is_empty() {
                return Err(format!("empty auth scheme\n{s:?}"));
            }
        }
    }
    let _ = AuthChallenge::parse(s);
    let shown = render_auth(&all);
    let again = AuthChallenge::parse_all(&shown);
    if again != all {
        return Err(format!(
            "challenges change when written back\n{s:?}: {all:?}\n{shown:?}: {again:?}"
        ));
    }
    Ok(!all.is_empty())
}

fn check_manifest(b: &[u8]) -> Result<bool, String> {
    let mut ok = false;
    if let Ok(ix) = Index::parse(b) {
        ok = true;
        for p in [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm64",
            "windows/amd64",
        ] {
            let plat = Platform::parse(p).unwrap();
            match ix.pick(&plat) {
                Ok(d) => {
                    let sp = d
                        .platform
                        .as_ref()
                        .ok_or("picked an entry without platform")?;
                    if !plat.matches(&sp.os, &sp.architecture, sp.variant.as_deref()) {
                        return Err(format!("picked a non-matching platform for {p}"));
                    }
                }
                Err(have) => {
                    let n = ix.manifests.iter().filter(|d| d.platform.is_some()).count();
                    if have.len() != n {
                        return Err(format!("pick lists {} platforms of {n}", have.len()));
                    }
                }
            }
        }
    }
    if let Ok(m) = ImageManifest::parse(b) {
        ok = true;
        if m.blobs().count() != m.layers.len() + 1 {
            return Err("blobs() is not config + layers".into());
        }
    }
    Ok(ok)
}

/// What RFC 9110 §14.1.2 says a single well-formed `bytes=` range resolves to.
fn range_model(h: &str, size: u64) -> Option<Result<Option<(u64, u64)>, ()>> {
    let spec = h.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
    // Numbers too big for u64 are still well-formed: saturate.
    let n = |x: &str| x.parse::<u64>().unwrap_or(u64::MAX);
    if a.is_empty() && digits(b) {
        let len = n(b);
        if len == 0 || size == 0 {
            return Some(Err(()));
        }
        return Some(Ok(Some((size - len.min(size), size))));
    }
    if digits(a) && (b.is_empty() || digits(b)) {
        let first = n(a);
        if !b.is_empty() && n(b) < first {
            return None; // invalid: ignoring or refusing are both allowed
        }
        if first >= size {
            return Some(Err(()));
        }
        let end = if b.is_empty() {
            size
        } else {
            n(b).saturating_add(1).min(size)
        };
        return Some(Ok(Some((first, end))));
    }
    None
}

fn check_range(h: &str, size: u64) -> Result<bool, String> {
    let r = route::range(Some(h), size);
    if let Ok(Some((s, e))) = r {
        if !(s < e && e <= size) {
            return Err(format!("range out of bounds\n{h:?} size {size} → {s}..{e}"));
        }
    }
    if let Some(want) = range_model(h, size) {
        let got = r.as_ref().map(|x| *x).map_err(|_| ());
        if got != want {
            return Err(format!(
                "range disagrees with RFC 9110\n{h:?} size {size}: got {r:?}, want {want:?}"
            ));
        }
    }
    Ok(matches!(r, Ok(Some(_))))
}

fn check_route(p: &str) -> Result<bool, String> {
    let Ok(t) = route::parse(p) else {
        return Ok(false);
    };
    let shown = match &t {
        Route::Manifest { repo, reference } => {
            if !mirrorctl::oci::valid_repository(repo) {
                return Err(format!("accepted an invalid repository\n{p:?}"));
            }
            if let ManifestRef::Tag(tag) = reference {
                if !mirrorctl::oci::valid_tag(tag) {
                    return Err(format!("accepted an invalid tag\n{p:?}"));
                }
            }
            format!("{repo}/manifests/{reference}")
        }
        Route::Blob { repo, digest } => {
            if !mirrorctl::oci::valid_repository(repo) {
                return Err(format!("accepted an invalid repository\n{p:?}"));
            }
            format!("{repo}/blobs/{digest}")
        }
        Route::Tags { repo } => format!("{repo}/tags/list"),
        Route::Upload => return Ok(true),
    };
    let again = route::parse(&shown)
        .map_err(|e| format!("path does not re-parse\n{p:?} → {shown:?}: {e:?}"))?;
    if again != t {
        return Err(format!(
            "path changes when rendered\n{p:?}: {t:?}\n{shown:?}: {again:?}"
        ));
    }
    Ok(true)
}

fn check_mirror(s: &str, args: &[String]) -> Result<bool, String> {
    let mut ok = false;
    if let Ok(m) = Mirror::parse(s) {
        ok = true;
        let again = Mirror::parse(&m.url())
            .map_err(|e| format!("mirror URL does not re-parse\n{s:?} → {}: {e}", m.url()))?;
        if again != m {
            return Err(format!(
                "mirror changes through url()\n{s:?}: {m:?} / {again:?}"
            ));
        }
        let hp = m.host_port();
        if !m.origin().ends_with(&hp) {
            return Err(format!("origin() does not end with host_port()\n{s:?}"));
        }
        // Every rendering of a mirror with a project is the origin (or host) and the project,
        // and the containerd/k3s spelling parses back to the same mirror.
        let v2 = Mirror::parse(&m.v2_url())
            .map_err(|e| format!("v2_url() does not re-parse\n{s:?} → {}: {e}", m.v2_url()))?;
        if v2 != m {
            return Err(format!(
                "mirror changes through v2_url()\n{s:?}: {m:?} / {v2:?}"
            ));
        }
        let tail = m.path.as_ref().map(|p| format!("/{p}")).unwrap_or_default();
        if m.url() != format!("{}{tail}", m.origin()) || m.location() != format!("{hp}{tail}") {
            return Err(format!(
                "url()/location() are not origin/host + project\n{s:?}"
            ));
        }
    }
    let mut all = args.to_vec();
    all.push(s.to_string());
    for insecure in [false, true] {
        if let Ok(set) = MirrorSet::from_args(&all, "docker.io", insecure) {
            for r in &set.registries {
                if mirrorctl::oci::validate_registry(&r.registry).as_deref()
                    != Ok(r.registry.as_str())
                {
                    return Err(format!("set has a non-canonical registry {:?}", r.registry));
                }
                if r.mirrors.is_empty() {
                    return Err("set has a registry without mirrors".into());
                }
                for (i, m) in r.mirrors.iter().enumerate() {
                    if r.mirrors[..i].contains(m) {
                        return Err(format!("set lists {m} twice"));
                    }
                }
            }
        }
    }
    Ok(ok)
}

fn check_names(s: &str) -> Result<bool, String> {
    let mut ok = false;
    if let Ok(r) = mirrorctl::oci::validate_registry(s) {
        ok = true;
        if mirrorctl::oci::validate_registry(&r).as_deref() != Ok(r.as_str()) {
            return Err(format!(
                "registry name is not canonical after validation\n{s:?} → {r:?}"
            ));
        }
        let (_, port) = mirrorctl::oci::split_host_port(&r);
        if let Some(p) = port {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("accepted a port that is not digits\n{s:?} → {r:?}"));
            }
        }
    }
    if let Ok(p) = Platform::parse(s) {
        ok = true;
        let shown = p.to_string();
        if Platform::parse(&shown).as_ref() != Ok(&p) {
            return Err(format!(
                "platform changes through Display\n{s:?} → {shown:?}"
            ));
        }
    }
    Ok(ok)
}
