//! Planner targets. Per case (a mutated fixture or built-in seed, a mirror set, and for the
//! registries drop-in the context files it copies from):
//!
//! 1. no panic, no hang, and a refusal points into the file (line and column exist);
//! 2. an accepted input gives output the client's grammar parses (serde_json for daemon.json,
//!    toml_edit for the TOML files, yaml-rust2 for registries.yaml) holding the wanted mirrors
//!    first (checked semantically, per client);
//! 3. `arm` twice = `arm` once (same text and owned entries);
//! 4. `disarm(arm(x))` = x byte for byte;
//! 5. re-arming with another set (arm A; arm B) also parses, holds B's mirrors and disarms to
//!    x — when arming x with B directly is accepted;
//! 6. after a user's edit of the armed file (one more mutation), re-arm and disarm never
//!    panic, and what they accept parses (re-arm's output with the mirrors).

use crate::fuzz::mutate::{self, Format};
use crate::fuzz::rng::Rng;
use crate::fuzz::seeds;
use mirrorctl::mirror::{Mirror, MirrorSet};
use mirrorctl::targets::FileKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Docker,
    Buildkit,
    Hosts,
    Config,
    Registries,
    K3s,
    Earthly,
    Buildx,
}

pub struct Planner(pub Which);

pub struct Case {
    kind: FileKind,
    current: Option<String>,
    args: Vec<String>,
    insecure: bool,
    set: MirrorSet,
    second: Option<(Vec<String>, bool, MirrorSet)>,
    context: Vec<(String, String)>,
    /// Seed of the user's edit of the armed file (property 6).
    edit: Option<u64>,
}

const MIRRORS: &[&str] = &[
    "http://127.0.0.1:5000",
    "http://127.0.0.1:5001",
    "https://m.example",
    "http://[::1]:5000",
    "https://[2001:db8::1]:5443",
    "https://mirror.example:8443",
    "http://10.0.0.5:5000",
    "https://cache.example:8443",
    "https://mirror.gcr.io",
    "http://mirror.lan",
    "HTTP://Mirror.Example:5000/",
];

const REGISTRIES: &[&str] = &[
    "docker.io",
    "ghcr.io",
    "quay.io",
    "registry.k8s.io",
    "localhost:5000",
    "[::1]:5001",
    "index.docker.io",
];

const BUILTIN_JSON: &[&str] = &[
    "",
    "{}",
    "{}\n",
    " \n",
    "{\"registry-mirrors\":\"x\",\"registry-mirrors\":[]}",
    "{\"registry-mirrors\":[],\"registry-mirrors\":\"x\"}",
    "{\n\t\"registry-mirrors\": [\n\t\t\"https://user.example\"\n\t]\n}\n",
    "{\"a\":{\"a\":{\"a\":{}}}}",
];

const BUILTIN_TOML: &[&str] = &[
    "",
    "\n",
    "# only a comment\n",
    "[registry]\n",
    "registry = {}\n",
    "[registry.\"docker.io\"]\nmirrors = []\n[registry.\"docker.io\"]\n",
    "[[registry]]\nprefix = \"docker.io\"\n[[registry]]\nprefix = \"docker.io\"\n",
    "version = 2\n",
];

const BUILTIN_YAML: &[&str] = &[
    "",
    "...\n",
    "---\n",
    "---\n...\n",
    "{}\n",
    "mirrors: {}\n",
    "mirrors:\n  docker.io:\n    endpoint: []\n  docker.io:\n    endpoint: [\"https://u.example\"]\n",
    "# c\n",
];

const BUILTIN_EARTHLY: &[&str] = &[
    "",
    "global:\n",
    "global: ~\n",
    "git:\n    github.com:\n        auth: ssh\n",
    "global:\n  buildkit_additional_config: |\n    [registry.\"docker.io\"]\n      mirrors = [\"u.example\"]\n",
    "global:\n  buildkit_additional_config: '[registry.\"ghcr.io\"]\n\n  mirrors = [\"x\"]'\n",
    "global:\n  buildkit_additional_config: >-\n    [registry.\"ghcr.io\"]\n  cache_size_mb: 1\n",
    "global:\n  global: 1\n  buildkit_additional_config:\n",
];

/// A buildkitd.toml seed embedded as Earthly's string (a literal block at a random indent),
/// so the TOML inside gets the BuildKit seeds' variety.
fn earthly_from_toml(rng: &mut Rng, toml: &str) -> String {
    let step = 1 + rng.small(4);
    let pad = " ".repeat(step * 2);
    let mut out = format!(
        "global:\n{}buildkit_additional_config: |\n",
        " ".repeat(step)
    );
    for l in toml.lines() {
        if !l.is_empty() {
            out.push_str(&pad);
            out.push_str(l);
        }
        out.push('\n');
    }
    if rng.chance(50) {
        out.push_str(&format!("{}cache_size_mb: 10\n", " ".repeat(step)));
    }
    out
}

const DROPIN_NAMES: &[&str] = &[
    "000-shortnames.conf",
    "01-registries.conf",
    "50-corp.conf",
    "89-z.conf",
    "91-later.conf",
    "99-override.conf",
    "zz.conf",
];

/// Strings in the text that parse as mirror URLs (the user's own entries), so sets overlap
/// what the file already lists.
fn harvest(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in text.split(|c: char| "\"' ,[]{}\n\r\t=#".contains(c)) {
        let p = piece.trim();
        if p.is_empty() || p.len() > 100 {
            continue;
        }
        let cands = if p.contains("://") {
            vec![p.to_string()]
        } else if p.contains('.') || p.contains(':') {
            vec![format!("http://{p}"), format!("https://{p}")]
        } else {
            vec![]
        };
        for c in cands {
            if Mirror::parse(&c).is_ok() && !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

fn gen_args(rng: &mut Rng, main_registry: &str, text: &str) -> (Vec<String>, bool) {
    let s = seeds::get();
    if rng.chance(20) && !s.mirror_args.is_empty() {
        return rng.pick(&s.mirror_args).clone();
    }
    let found = harvest(text);
    let n = 1 + rng.small(3);
    let mut args = Vec::new();
    for _ in 0..n {
        let url = if !found.is_empty() && rng.chance(30) {
            rng.pick(&found).clone()
        } else {
            rng.pick(MIRRORS).to_string()
        };
        let reg = match rng.below(10) {
            0..=4 => None,
            5..=7 => Some(main_registry.to_string()),
            _ => Some(rng.pick(REGISTRIES).to_string()),
        };
        args.push(match reg {
            Some(r) => format!("{r}={url}"),
            None => url,
        });
    }
    (args, rng.chance(30))
}

fn make_set(args: &[String], insecure: bool) -> MirrorSet {
    MirrorSet::from_args(args, "docker.io", insecure).unwrap_or_else(|_| {
        MirrorSet::from_args(&["http://127.0.0.1:5000".into()], "docker.io", insecure).unwrap()
    })
}

fn pick_seed<'a>(rng: &mut Rng, fixtures: &'a [String], builtin: &'a [&'a str]) -> &'a str {
    if rng.chance(80) && !fixtures.is_empty() {
        rng.pick(fixtures).as_str()
    } else {
        rng.one(builtin)
    }
}

impl crate::fuzz::Target for Planner {
    type Case = Case;

    fn gen(&self, rng: &mut Rng) -> Case {
        let s = seeds::get();
        let (fmt, kind, seed, pool): (Format, FileKind, String, Vec<&str>) = match self.0 {
            Which::Docker => (
                Format::Json,
                FileKind::DaemonJson,
                pick_seed(rng, &s.docker, BUILTIN_JSON).to_string(),
                s.docker.iter().map(String::as_str).collect(),
            ),
            Which::Buildkit => (
                Format::Toml,
                FileKind::BuildkitToml,
                pick_seed(rng, &s.buildkit, BUILTIN_TOML).to_string(),
                s.buildkit.iter().map(String::as_str).collect(),
            ),
            Which::Hosts => {
                let (reg, text) = if rng.chance(85) {
                    rng.pick(&s.hosts).clone()
                } else {
                    (
                        rng.pick(REGISTRIES).to_string(),
                        rng.pick(BUILTIN_TOML).to_string(),
                    )
                };
                let reg = mirrorctl::oci::canonical_registry(&reg);
                (
                    Format::Toml,
                    FileKind::ContainerdHosts {
                        registry: reg,
                        moved: gen_moved(rng),
                        dial_timeout: rng
                            .chance(30)
                            .then(|| rng.pick(&["2s", "500ms"]).to_string()),
                    },
                    text,
                    s.hosts.iter().map(|(_, t)| t.as_str()).collect(),
                )
            }
            Which::Config => {
                let certs_dir = if rng.chance(90) {
                    mirrorctl::targets::CONTAINERD_CERTS_D.to_string()
                } else {
                    rng.pick(&["/etc/docker/certs.d"]).to_string()
                };
                (
                    Format::Toml,
                    FileKind::ContainerdConfig {
                        certs_dir,
                        migrate: rng.chance(40),
                    },
                    pick_seed(rng, &s.containerd_config, BUILTIN_TOML).to_string(),
                    s.containerd_config.iter().map(String::as_str).collect(),
                )
            }
            Which::Registries => (
                Format::Toml,
                FileKind::RegistriesDropin,
                pick_seed(rng, &s.registries, BUILTIN_TOML).to_string(),
                s.registries.iter().map(String::as_str).collect(),
            ),
            Which::K3s => (
                Format::Yaml,
                FileKind::K3sYaml,
                pick_seed(rng, &s.k3s, BUILTIN_YAML).to_string(),
                s.k3s.iter().map(String::as_str).collect(),
            ),
            Which::Earthly => {
                let seed = if rng.chance(30) {
                    let t = pick_seed(rng, &s.buildkit, BUILTIN_TOML).to_string();
                    earthly_from_toml(rng, &t)
                } else {
                    pick_seed(rng, &s.earthly, BUILTIN_EARTHLY).to_string()
                };
                (
                    Format::Yaml,
                    FileKind::EarthlyConfig,
                    seed,
                    s.earthly.iter().map(String::as_str).collect(),
                )
            }
            Which::Buildx => (
                Format::Toml,
                FileKind::BuildxDefault {
                    insecure: rng.chance(30),
                },
                pick_seed(rng, &s.buildkit, BUILTIN_TOML).to_string(),
                s.buildkit.iter().map(String::as_str).collect(),
            ),
        };
        let current = if rng.chance(4) {
            None
        } else {
            Some(mutate::mutate_text(rng, fmt, &seed, &pool, 5))
        };
        let main_registry = match &kind {
            FileKind::ContainerdHosts { registry, .. } => registry.clone(),
            _ => "docker.io".to_string(),
        };
        let text = current.clone().unwrap_or_default();
        let (args, insecure) = gen_args(rng, &main_registry, &text);
        let set = make_set(&args, insecure);
        let second = rng.chance(40).then(|| {
            let (a, i) = gen_args(rng, &main_registry, &text);
            let s2 = make_set(&a, i);
            (a, i, s2)
        });
        let mut context = Vec::new();
        if self.0 == Which::Registries {
            let pool: Vec<&str> = s.registries.iter().map(String::as_str).collect();
            for _ in 0..rng.small(3) {
                let path = if rng.chance(50)
                    && !context
                        .iter()
                        .any(|(p, _)| p == mirrorctl::targets::registries::MAIN_CONF)
                {
                    mirrorctl::targets::registries::MAIN_CONF.to_string()
                } else {
                    format!(
                        "{}/{}",
                        mirrorctl::targets::registries::DROPIN_DIR,
                        rng.pick(DROPIN_NAMES)
                    )
                };
                if context.iter().any(|(p, _)| *p == path) {
                    continue;
                }
                let seed = pick_seed(rng, &s.registries, BUILTIN_TOML);
                let text = if rng.chance(50) {
                    seed.to_string()
                } else {
                    mutate::mutate_text(rng, Format::Toml, seed, &pool, 2)
                };
                context.push((path, text));
            }
            context.sort();
        }
        let edit = rng.chance(50).then(|| rng.next_u64());
        Case {
            kind,
            current,
            args,
            insecure,
            set,
            second,
            context,
            edit,
        }
    }

    fn input(&self, c: &Case) -> Vec<u8> {
        c.current.clone().unwrap_or_default().into_bytes()
    }

    fn describe(&self, c: &Case) -> String {
        let mut s = format!(
            "kind: {:?}\ncurrent: {:?}\nmirrors: {:?}{}\n",
            c.kind,
            c.current,
            c.args,
            if c.insecure { " --insecure" } else { "" }
        );
        if let Some((a, i, _)) = &c.second {
            s.push_str(&format!(
                "re-armed with: {a:?}{}\n",
                if *i { " --insecure" } else { "" }
            ));
        }
        for (p, t) in &c.context {
            s.push_str(&format!("context {p}: {t:?}\n"));
        }
        if let Some(e) = c.edit {
            s.push_str(&format!("user edit of the armed file: seed {e:#x}\n"));
        }
        s
    }

    fn check(&self, c: &Case) -> Result<bool, String> {
        check(c)
    }
}

fn diff(a: &str, b: &str) -> String {
    similar::TextDiff::from_lines(a, b)
        .unified_diff()
        .context_radius(2)
        .header("expected", "got")
        .to_string()
}

/// A refusal's line and column exist in the file (0:0 is "the whole file").
fn position_ok(text: &str, e: &mirrorctl::error::PlanError) -> Result<(), String> {
    if e.line == 0 {
        return Ok(());
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let ok =
        e.line <= lines.len() && e.column >= 1 && e.column <= lines[e.line - 1].chars().count() + 1;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "refusal points outside the file\n{}:{} in a file of {} lines: {}",
            e.line,
            e.column,
            lines.len(),
            e.message
        ))
    }
}

fn check(c: &Case) -> Result<bool, String> {
    let cur = c.current.as_deref();
    let a = match c.kind.arm(cur, &c.set, &[], &c.context) {
        Ok(p) => p,
        Err(e) => {
            position_ok(cur.unwrap_or(""), &e)?;
            return Ok(false);
        }
    };
    grammar(&c.kind, &a.text, &c.set).map_err(|e| format!("arm: {e}\n--- output\n{}", a.text))?;
    let again = c
        .kind
        .arm(Some(&a.text), &c.set, &a.owned, &c.context)
        .map_err(|e| {
            format!(
                "re-arm refuses what arm wrote\n{e}\n--- arm wrote\n{}",
                a.text
            )
        })?;
    if again != a {
        return Err(format!(
            "arm twice != arm once\n{}owned: {:?}\n  then: {:?}",
            diff(&a.text, &again.text),
            a.owned,
            again.owned
        ));
    }
    let back = c
        .kind
        .disarm(&a.text, &a.owned)
        .map_err(|e| format!("disarm refuses what arm wrote\n{e}"))?;
    if let Some(x) = cur {
        if let Some(why) = restores(&c.kind, x, &back.text, &[&c.set]) {
            return Err(format!(
                "disarm(arm(x)) != x{why}\n{}--- arm wrote\n{}\nowned: {:?}",
                diff(x, &back.text),
                a.text,
                a.owned
            ));
        }
        if !back.owned.is_empty() {
            return Err(format!("disarm leaves owned entries\n{:?}", back.owned));
        }
    }
    if let (Some(x), Some((_, _, set2))) = (cur, &c.second) {
        if c.kind.arm(cur, set2, &[], &c.context).is_ok() {
            let b = c
                .kind
                .arm(Some(&a.text), set2, &a.owned, &c.context)
                .map_err(|e| {
                    format!("re-arm with another set refused (arming x with it directly works)\n{e}\n--- arm wrote\n{}", a.text)
                })?;
            grammar(&c.kind, &b.text, set2)
                .map_err(|e| format!("re-arm with another set: {e}\n--- output\n{}", b.text))?;
            let back = c
                .kind
                .disarm(&b.text, &b.owned)
                .map_err(|e| format!("disarm after re-arm refused\n{e}"))?;
            if let Some(why) = restores(&c.kind, x, &back.text, &[&c.set, set2]) {
                return Err(format!(
                    "disarm(arm B(arm A(x))) != x{why}\n{}--- arm A wrote\n{}\n--- arm B wrote\n{}\nowned A: {:?}\nowned B: {:?}",
                    diff(x, &back.text),
                    a.text,
                    b.text,
                    a.owned,
                    b.owned
                ));
            }
        }
    }
    if let Some(seed) = c.edit {
        // 6. The user edits the armed file (one mutation of it); re-arm and disarm of that
        //    never panic, and what they accept still parses (re-arm: with the mirrors).
        let mut rng = Rng::new(seed);
        let fmt = match c.kind {
            FileKind::DaemonJson => Format::Json,
            FileKind::K3sYaml | FileKind::EarthlyConfig => Format::Yaml,
            _ => Format::Toml,
        };
        let mut buf = a.text.clone().into_bytes();
        mutate::mutate_once(&mut rng, fmt, &mut buf, &[]);
        let edited = String::from_utf8_lossy(&buf).into_owned();
        if let Ok(p) = c.kind.arm(Some(&edited), &c.set, &a.owned, &c.context) {
            grammar(&c.kind, &p.text, &c.set).map_err(|e| {
                format!(
                    "re-arm after a user edit: {e}\n--- edited\n{edited}\n--- output\n{}",
                    p.text
                )
            })?;
        }
        if let Ok(p) = c.kind.disarm(&edited, &a.owned) {
            let none = MirrorSet {
                registries: vec![],
                insecure: false,
            };
            grammar(&c.kind, &p.text, &none).map_err(|e| {
                format!(
                    "disarm after a user edit: {e}\n--- edited\n{edited}\n--- output\n{}",
                    p.text
                )
            })?;
        }
    }
    Ok(true)
}

/// Whether `back` (disarm's output) gives `x` back; `None` if so, else what differs.
///
/// Byte for byte, except in these precisely bounded cases, where it cannot hold (each one an
/// acceptance test below; see the README):
///
/// - `x` is blank (whitespace, maybe a BOM): arm writes a whole new document and disarm leaves
///   that format's empty document (`{}` for JSON, nothing for TOML and YAML). The engine
///   deletes a file arm created and puts back the bytes of one it did not touch since, so only
///   a user's edit of the armed file reaches this disarm.
/// - `x` already lists a wanted mirror: arm moves that entry of the user's to the front,
///   because clients try mirrors in order, and keeps it the user's, so disarm leaves it where
///   arm put it — no planner records where it was. Lines naming a wanted mirror (its
///   `host:port`) are left out and the others compared as multisets (whole tables may move
///   with the entry, an element may gain or lose its comma or the closing bracket written on
///   its line, the first slot's indentation go to another entry), or, where that cannot tell
///   (several elements on one line, an entry the URL parser reads as the mirror although
///   spelled otherwise: `127.0.1` is `127.0.0.1`), the two must hold the same data with the
///   lists taken as sets (`canonical`). The file's own spellings of a wanted mirror count as
///   naming it.
/// - A file with mixed line ends: each line keeps its own on a best-effort basis (lines are
///   matched by content); a CR may go to another line of the same content.
/// - toml_edit's rendering: its parse-and-print regroups dotted keys interleaved with other
///   keys (lines compared as multisets), writes an emptied inline table `{ }` as `{}`, and
///   drops the space inside a table header's brackets or a dotted key's path when it rewrites
///   the table.
/// - daemon.json holding a CR that ends no line, k3s holding a flow mapping (`{…}`): the
///   editors re-space around what they add and remove; the non-whitespace text must come
///   back.
/// - k3s: a key with no value (`mirrors:`, `configs:`, `<registry>:` under `mirrors`,
///   `endpoint:`, `tls:`) that arm fills becomes mirrorctl's (the planner's rule: it "is
///   mirrorctl's now, and goes on disarm"), so disarm removes its line (and blank lines near
///   it) or leaves it empty (`{}`, `[]`); such lines are left out. Nothing k3s reads differs.
/// - registries: a drop-in holding only mirrorctl's header comment reads as mirrorctl's own,
///   emptied: disarm leaves nothing.
fn restores(kind: &FileKind, x: &str, back: &str, sets: &[&MirrorSet]) -> Option<String> {
    if back == x {
        return None;
    }
    if matches!(kind, FileKind::EarthlyConfig) {
        return earthly_restores(x, back, sets);
    }
    let json = matches!(kind, FileKind::DaemonJson);
    let yaml = matches!(kind, FileKind::K3sYaml);
    let toml_kind = !json && !yaml;
    if strip_bom(x).trim().is_empty() {
        let b = strip_bom(back).trim();
        let empty = b.is_empty() || (json && b == "{}");
        return (!empty).then(|| " (blank input)".to_string());
    }
    if matches!(kind, FileKind::RegistriesDropin)
        && strip_bom(x)
            .trim_start()
            .starts_with("# Written by mirrorctl")
        && strip_bom(x)
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        && back.trim().is_empty()
    {
        return None;
    }
    // Each narrowed comparison that holds accepts.
    let mixed = x.contains("\r\n") && x.replace("\r\n", "").contains('\n');
    let no_cr = |t: &str| t.replace("\r\n", "\n");
    if mixed && no_cr(x) == no_cr(back) {
        return None;
    }
    if toml_kind {
        // Spaces inside a header's brackets, or in a dotted key's path, outside quotes.
        let keys = |t: &str| -> String {
            t.split_inclusive('\n')
                .map(|l| {
                    let head = l.trim_start().starts_with('[');
                    let mut q = false;
                    let mut key = true;
                    l.chars()
                        .filter(|c| {
                            if *c == '"' {
                                q = !q;
                            }
                            if *c == '=' && !q && !head {
                                key = false;
                            }
                            q || !(key && matches!(c, ' ' | '\t'))
                        })
                        .collect::<String>()
                })
                .collect()
        };
        let tight = |t: &str| {
            let mut out = String::new();
            let mut rest = t;
            while let Some(i) = rest.find('{') {
                out.push_str(&rest[..=i]);
                rest = &rest[i + 1..];
                // (TOML 1.1, which toml_edit reads, allows line breaks in an inline table.)
                let ws = rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
                if rest[ws..].starts_with('}') {
                    rest = &rest[ws..];
                }
            }
            out.push_str(rest);
            out
        };
        let both = |t: &str| tight(&keys(&no_cr(t)));
        if both(x) == both(back) {
            return None;
        }
    }
    let squashed = |t: &str| t.split_whitespace().collect::<String>();
    let lone_cr = json
        && x.char_indices()
            .any(|(i, c)| c == '\r' && !x[i + 1..].starts_with('\n'));
    let flow_map = yaml && x.contains('{');
    let squash = lone_cr || flow_map;
    if squash && squashed(x) == squashed(back) {
        return None;
    }
    // What the URL parser drops (tabs, line breaks) or IDNA ignores (BOM, zero-width, soft
    // hyphen) is left out before looking for a mirror's host:port in the text.
    let plain = |t: &str| -> String {
        t.chars()
            .filter(|c| !matches!(c, '\t' | '\r' | '\n' | '\u{feff}' | '\u{200b}' | '\u{ad}'))
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let lower = plain(x);
    let wanted: Vec<String> = sets
        .iter()
        .flat_map(|s| s.all_mirrors())
        .map(|m| m.host_port().to_ascii_lowercase())
        .collect();
    let mut named: Vec<String> = wanted
        .iter()
        .filter(|hp| lower.contains(hp.as_str()))
        .cloned()
        .collect();
    // And the file's own spellings of them (`127.0:5001` is 127.0.0.0:5001 to the URL parser).
    for tok in x.split(|c: char| "\"' ,[]{}\n\r\t=#".contains(c)) {
        let tok = tok.trim();
        if tok.is_empty() || tok.len() > 200 {
            continue;
        }
        let cands = if tok.contains("://") {
            vec![tok.to_string()]
        } else {
            vec![format!("http://{tok}"), format!("https://{tok}")]
        };
        let hit = cands.iter().any(|c| {
            Mirror::parse(c).is_ok_and(|m| wanted.contains(&m.host_port().to_ascii_lowercase()))
        });
        if hit && !named.contains(&plain(tok)) {
            named.push(plain(tok));
        }
    }
    // `--migrate` takes the deprecated registry tables out and a planner-level disarm puts
    // them back at the end of the file (the engine gives back the original bytes unless the
    // user edited the file since): the same data, layout aside.
    let migrated = matches!(kind, FileKind::ContainerdConfig { migrate: true, .. });
    if migrated && canonical(kind, x).is_some() && canonical(kind, x) == canonical(kind, back) {
        return None;
    }
    // A moved entry: the same data, lists as sets, layout aside.
    if !named.is_empty()
        && canonical(kind, x).is_some()
        && canonical(kind, x) == canonical(kind, back)
    {
        return None;
    }
    let mut null_keys: Vec<String> = Vec::new();
    if yaml {
        null_keys = vec![
            "mirrors".into(),
            "configs".into(),
            "endpoint".into(),
            "tls".into(),
        ];
        for s in sets {
            null_keys.extend(s.registries.iter().map(|r| r.registry.clone()));
        }
    }
    let is_null_key = |l: &str| {
        let l = l.trim_start();
        null_keys.iter().any(|k| {
            let rest = l
                .strip_prefix(k.as_str())
                .or_else(|| l.strip_prefix(&format!("\"{k}\"")))
                .and_then(|r| r.strip_prefix(':'));
            rest.is_some_and(|r| {
                let v = r.split('#').next().unwrap_or("").trim();
                matches!(v, "" | "~" | "null" | "Null" | "NULL" | "{}" | "[]")
            })
        })
    };
    let has_null = strip_bom(x).lines().any(is_null_key);
    let sorted = |t: &str| {
        let mut v: Vec<String> = t
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect();
        v.sort();
        v
    };
    let regrouped = toml_kind
        && strip_bom(x)
            .parse::<toml_edit::DocumentMut>()
            .is_ok_and(|d| {
                let r = d.to_string();
                let (a, b) = (strip_bom(x).lines(), r.lines());
                !a.map(|l| l.trim_end_matches('\r')).eq(b) && sorted(strip_bom(x)) == sorted(&r)
            });
    if named.is_empty() && !has_null && !regrouped {
        return Some(String::new());
    }
    let lines = |t: &str| {
        let mut v: Vec<String> = strip_bom(t)
            .split_inclusive('\n')
            .map(|l| {
                // (A separator written at a line's start travels too: `,"b"]`.)
                let l = l
                    .trim_end_matches(['\n', '\r'])
                    .trim_end_matches([',', ']', ' ', '\t'])
                    .trim_start_matches([',', ' ', '\t']);
                if squash {
                    l.split_whitespace().collect()
                } else {
                    l.to_string()
                }
            })
            .filter(|l| {
                let low = plain(l);
                let lone_empty = yaml && l.trim() == "{}";
                let left_out = named.iter().any(|n| low.contains(n.as_str()))
                    || is_null_key(l)
                    || lone_empty
                    || ((squash || has_null) && l.trim().is_empty());
                !left_out
            })
            .collect();
        v.sort();
        v
    };
    (lines(x) != lines(back))
        .then(|| format!(" (beyond the narrowed cases)\nwanted entries the file names: {named:?}"))
}

/// Earthly: the YAML holds the same data apart from the string, and the string comes back
/// under the BuildKit rules (a user's own entry that arm moved stays moved, …). When the string
/// had to be rewritten (it came back different), it is written as a literal block, so the
/// bytes of its value may differ; nothing else may.
fn earthly_restores(x: &str, back: &str, sets: &[&MirrorSet]) -> Option<String> {
    let key = mirrorctl::targets::earthly::KEY;
    let load = |t: &str| {
        yaml_rust2::YamlLoader::load_from_str(strip_bom(t))
            .ok()
            .map(|d| d.into_iter().next())
    };
    let (Some(a), Some(b)) = (load(x), load(back)) else {
        return Some(" (disarm output does not parse)".into());
    };
    let string = |y: &Option<yaml_rust2::Yaml>| -> String {
        y.as_ref()
            .and_then(|y| y["global"][key].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let without = |y: Option<yaml_rust2::Yaml>| -> Option<serde_json::Value> {
        let mut y = y?;
        if let yaml_rust2::Yaml::Hash(h) = &mut y {
            if let Some(yaml_rust2::Yaml::Hash(g)) =
                h.get_mut(&yaml_rust2::Yaml::String("global".into()))
            {
                g.remove(&yaml_rust2::Yaml::String(key.into()));
            }
        }
        canonical(&FileKind::K3sYaml, &format!("{y:?}"))
            .or_else(|| Some(serde_json::Value::String(format!("{y:?}"))))
    };
    let (sa, sb) = (string(&a), string(&b));
    if without(a) != without(b) {
        return Some(" (the YAML around the string changed)".into());
    }
    let (ta, tb) = (sa.trim_end(), sb.trim_end());
    if ta == tb {
        return None;
    }
    restores(&FileKind::BuildkitToml, ta, tb, sets).map(|w| format!(" (in the string){w}"))
}

/// The data of a file in one comparable form (JSON), lists sorted and tables unordered, for
/// comparing files that differ only in where the entries of a list are.
fn canonical(kind: &FileKind, t: &str) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    fn sorted(mut v: Vec<J>) -> J {
        v.sort_by_key(|e| e.to_string());
        J::Array(v)
    }
    fn from_toml_value(v: &toml_edit::Value) -> J {
        match v {
            toml_edit::Value::Array(a) => sorted(a.iter().map(from_toml_value).collect()),
            toml_edit::Value::InlineTable(t) => J::Object(
                t.iter()
                    .map(|(k, v)| (k.to_string(), from_toml_value(v)))
                    .collect(),
            ),
            toml_edit::Value::String(s) => J::String(s.value().clone()),
            other => J::String(other.clone().decorated("", "").to_string()),
        }
    }
    fn from_toml(i: &toml_edit::Item) -> J {
        match i {
            toml_edit::Item::Value(v) => from_toml_value(v),
            toml_edit::Item::Table(t) => J::Object(
                t.iter()
                    .map(|(k, v)| (k.to_string(), from_toml(v)))
                    .collect(),
            ),
            toml_edit::Item::ArrayOfTables(a) => sorted(
                a.iter()
                    .map(|t| from_toml(&toml_edit::Item::Table(t.clone())))
                    .collect(),
            ),
            toml_edit::Item::None => J::Null,
        }
    }
    fn from_yaml(y: &yaml_rust2::Yaml) -> J {
        use yaml_rust2::Yaml;
        match y {
            Yaml::Array(a) => sorted(a.iter().map(from_yaml).collect()),
            Yaml::Hash(h) => J::Object(
                h.iter()
                    .map(|(k, v)| (format!("{k:?}"), from_yaml(v)))
                    .collect(),
            ),
            Yaml::String(s) => J::String(s.clone()),
            other => J::String(format!("{other:?}")),
        }
    }
    fn sort_json(v: &mut J) {
        match v {
            J::Array(a) => {
                a.iter_mut().for_each(sort_json);
                a.sort_by_key(|e| e.to_string());
            }
            J::Object(o) => o.values_mut().for_each(sort_json),
            _ => {}
        }
    }
    let t = strip_bom(t);
    match kind {
        FileKind::DaemonJson => {
            let mut v: J = serde_json::from_str(t).ok()?;
            sort_json(&mut v);
            Some(v)
        }
        FileKind::K3sYaml => {
            let docs = yaml_rust2::YamlLoader::load_from_str(t).ok()?;
            Some(J::Array(docs.iter().map(from_yaml).collect()))
        }
        _ => {
            let d: toml_edit::DocumentMut = t.parse().ok()?;
            Some(from_toml(d.as_item()))
        }
    }
}

fn strip_bom(s: &str) -> &str {
    s.strip_prefix('\u{feff}').unwrap_or(s)
}

/// `got` starts with `want`, both normalised with duplicates dropped (`http://h` and
/// `https://h` are one `h` where the client writes no scheme).
fn starts_with(got: &[String], want: &[String], norm: impl Fn(&str) -> String) -> bool {
    let dedup = |l: &[String]| {
        let mut seen: Vec<String> = Vec::new();
        for g in l {
            let n = norm(g);
            if !seen.contains(&n) {
                seen.push(n);
            }
        }
        seen
    };
    let (got, want) = (dedup(got), dedup(want));
    got.len() >= want.len() && got[..want.len()] == *want
}

fn url_norm(s: &str) -> String {
    Mirror::parse(s)
        .map(|m| m.url())
        .unwrap_or_else(|_| s.trim().trim_end_matches('/').to_string())
}

/// Parse the output with the client's grammar and check it holds what was wanted.
fn grammar(kind: &FileKind, text: &str, set: &MirrorSet) -> Result<(), String> {
    match kind {
        FileKind::DaemonJson => {
            let want: Vec<&Mirror> = set
                .for_registry("docker.io")
                .map(|r| r.mirrors.iter().collect())
                .unwrap_or_default();
            let body = strip_bom(text);
            if body.trim().is_empty() {
                return if want.is_empty() {
                    Ok(())
                } else {
                    Err("empty daemon.json".into())
                };
            }
            let v: serde_json::Value =
                serde_json::from_str(body).map_err(|e| format!("output is not JSON\n{e}"))?;
            let obj = v.as_object().ok_or("output is not a JSON object")?;
            if want.is_empty() {
                return Ok(());
            }
            let strings = |k: &str| -> Result<Vec<String>, String> {
                obj.get(k)
                    .and_then(|v| v.as_array())
                    .ok_or(format!("`{k}` is not a list"))?
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or(format!("`{k}` holds a non-string"))
                    })
                    .collect()
            };
            let mirrors = strings("registry-mirrors")?;
            let urls: Vec<String> = want.iter().map(|m| m.url()).collect();
            if !starts_with(&mirrors, &urls, url_norm) {
                return Err(format!(
                    "registry-mirrors does not list the mirrors first\n{mirrors:?}, want {urls:?}"
                ));
            }
            let need: Vec<String> = want
                .iter()
                .filter(|m| set.needs_insecure(m))
                .map(|m| m.url())
                .collect();
            if !need.is_empty() {
                let ins = strings("insecure-registries")?;
                for n in need {
                    if !ins
                        .iter()
                        .any(|e| e.trim().trim_end_matches('/').to_ascii_lowercase() == n)
                    {
                        return Err(format!(
                            "insecure-registries lacks a mirror\n{n} not in {ins:?}"
                        ));
                    }
                }
            }
            Ok(())
        }
        FileKind::EarthlyConfig => {
            let docs = yaml_rust2::YamlLoader::load_from_str(strip_bom(text))
                .map_err(|e| format!("output is not YAML\n{e}"))?;
            if docs.len() > 1 {
                return Err(format!("several YAML documents\n{}", docs.len()));
            }
            if set.registries.is_empty() {
                return Ok(());
            }
            let root = docs.first().ok_or("no YAML document")?;
            let s = root["global"][mirrorctl::targets::earthly::KEY]
                .as_str()
                .ok_or("global.buildkit_additional_config is not a string")?;
            let first = s
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .unwrap_or("");
            if !first.starts_with('[') {
                return Err(format!(
                    "the string does not start with a table header\n{first}"
                ));
            }
            grammar(&FileKind::BuildkitToml, s, set).map_err(|e| format!("in the string: {e}"))
        }
        FileKind::BuildxDefault { .. } => grammar(&FileKind::BuildkitToml, text, set),
        FileKind::BuildkitToml => {
            let doc = toml(text)?;
            let norm = |s: &str| {
                let s = s.trim();
                let s = s.split_once("://").map(|(_, r)| r).unwrap_or(s);
                s.trim_end_matches('/').to_ascii_lowercase()
            };
            let reg = doc.get("registry").and_then(|r| r.as_table_like());
            for r in &set.registries {
                let t = reg
                    .and_then(|t| t.get(&r.registry))
                    .and_then(|t| t.as_table_like())
                    .ok_or(format!("no registry.<registry> table\n{}", r.registry))?;
                let list = toml_strings(t.get("mirrors")).ok_or(format!(
                    "registry.<registry>.mirrors is not a list of strings\n{}",
                    r.registry
                ))?;
                let want: Vec<String> = r.mirrors.iter().map(|m| m.location()).collect();
                if !starts_with(&list, &want, norm) {
                    return Err(format!(
                        "registry.<registry>.mirrors does not list the mirrors first\n{}: {list:?}, want {want:?}",
                        r.registry
                    ));
                }
                for m in &r.mirrors {
                    let flag = if m.is_http() {
                        "http"
                    } else if set.insecure {
                        "insecure"
                    } else {
                        continue;
                    };
                    let hp = m.host_port();
                    let on = reg
                        .and_then(|t| t.get(&hp))
                        .and_then(|t| t.as_table_like())
                        .and_then(|t| t.get(flag))
                        .and_then(|v| v.as_bool());
                    if on != Some(true) {
                        return Err(format!("registry.<mirror>.{flag} is not true\n{hp}"));
                    }
                }
            }
            Ok(())
        }
        FileKind::ContainerdHosts { registry, .. } => {
            let doc = toml(text)?;
            let Some(r) = set.for_registry(registry) else {
                return Ok(());
            };
            // containerd's own default for a local registry is plain HTTP: no `server` there.
            let local = mirrorctl::targets::containerd::legacy::is_localhost(registry);
            if !local && doc.get("server").and_then(|s| s.as_str()).is_none() {
                return Err("no `server`".into());
            }
            let hosts = doc
                .get("host")
                .and_then(|h| h.as_table_like())
                .ok_or("no `host` table")?;
            // containerd tries hosts in file order (by line). Only `[host."…"]` header tables
            // have a position here; with hosts written inline (`"…" = { … }` under `[host]`),
            // which the planner cannot move, only their presence is checked (narrowed).
            let mut keys: Vec<(Option<isize>, String)> = hosts
                .iter()
                .map(|(k, v)| (v.as_table().and_then(|t| t.position()), k.to_string()))
                .collect();
            let inline = keys.iter().any(|(p, _)| p.is_none());
            keys.sort_by_key(|(p, _)| *p);
            let keys: Vec<String> = keys.into_iter().map(|(_, k)| k).collect();
            let want: Vec<String> = r.mirrors.iter().map(|m| m.url()).collect();
            let norm = |k: &str| {
                let k = k.trim().trim_end_matches('/');
                let k = if k.contains("://") {
                    k.to_string()
                } else {
                    format!("https://{k}")
                };
                Mirror::parse(&k)
                    .map(|m| m.url())
                    .unwrap_or(k.to_ascii_lowercase())
            };
            if inline {
                let have: Vec<String> = keys.iter().map(|k| norm(k)).collect();
                return match want.iter().find(|w| !have.contains(w)) {
                    Some(w) => Err(format!("a mirror is not among the hosts\n{w}: {keys:?}")),
                    None => Ok(()),
                };
            }
            if !starts_with(&keys, &want, norm) {
                return Err(format!(
                    "the mirrors are not the first hosts\n{keys:?}, want {want:?}"
                ));
            }
            Ok(())
        }
        FileKind::ContainerdConfig { certs_dir, .. } => {
            let doc = toml(text)?;
            if set.registries.is_empty() {
                return Ok(());
            }
            let plugin = match doc.get("version").map(|v| v.as_integer()) {
                None | Some(Some(0 | 1)) => "cri",
                Some(Some(2)) => "io.containerd.grpc.v1.cri",
                Some(Some(3)) => "io.containerd.cri.v1.images",
                Some(v) => return Err(format!("unsupported version\n{v:?}")),
            };
            let mirrors = doc
                .get("plugins")
                .and_then(|p| p.get(plugin))
                .and_then(|p| p.get("registry"))
                .and_then(|p| p.get("mirrors"))
                .and_then(|m| m.as_table_like())
                .is_some_and(|m| !m.is_empty());
            if mirrors {
                return Err(format!(
                    "config_path set beside the deprecated mirrors\n{plugin}"
                ));
            }
            let cp = doc
                .get("plugins")
                .and_then(|p| p.as_table_like())
                .and_then(|p| p.get(plugin))
                .and_then(|p| p.as_table_like())
                .and_then(|p| p.get("registry"))
                .and_then(|p| p.as_table_like())
                .and_then(|p| p.get("config_path"))
                .and_then(|p| p.as_str())
                .ok_or(format!("no plugins.<cri>.registry.config_path\n{plugin}"))?;
            if !cp
                .split(':')
                .any(|d| d.trim_end_matches('/') == certs_dir.trim_end_matches('/'))
            {
                return Err(format!(
                    "config_path lacks the certs.d directory\n{cp:?} lacks {certs_dir}"
                ));
            }
            Ok(())
        }
        FileKind::RegistriesDropin => {
            let doc = toml(text)?;
            let tables: Vec<toml_edit::Table> = match doc.get("registry") {
                Some(toml_edit::Item::ArrayOfTables(a)) => a.iter().cloned().collect(),
                Some(toml_edit::Item::Value(toml_edit::Value::Array(a))) => a
                    .iter()
                    .filter_map(|v| v.as_inline_table())
                    .map(|t| t.clone().into_table())
                    .collect(),
                None => Vec::new(),
                Some(_) => return Err("`registry` is not a list of tables".into()),
            };
            let prefix = |t: &toml_edit::Table| {
                t.get("prefix")
                    .or_else(|| t.get("location"))
                    .and_then(|v| v.as_str())
                    .map(|s| s.trim().to_string())
            };
            let norm = |s: &str| s.trim().trim_end_matches('/').to_ascii_lowercase();
            for r in &set.registries {
                let mine: Vec<&toml_edit::Table> = tables
                    .iter()
                    .filter(|t| prefix(t).as_deref() == Some(r.registry.as_str()))
                    .collect();
                if mine.is_empty() {
                    return Err(format!(
                        "no [[registry]] for a wanted registry\n{}",
                        r.registry
                    ));
                }
                let want: Vec<String> = r.mirrors.iter().map(|m| m.location()).collect();
                for t in mine {
                    let locs: Vec<String> = match t.get("mirror") {
                        Some(toml_edit::Item::ArrayOfTables(a)) => a
                            .iter()
                            .map(|m| {
                                m.get("location")
                                    .and_then(|v| v.as_str())
                                    .unwrap_or("")
                                    .to_string()
                            })
                            .collect(),
                        Some(toml_edit::Item::Value(toml_edit::Value::Array(a))) => a
                            .iter()
                            .filter_map(|v| v.as_inline_table())
                            .map(|m| {
                                m.get("location")
                                    .and_then(|v| v.as_str())
                                    .unwrap_or("")
                                    .to_string()
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    if !starts_with(&locs, &want, norm) {
                        return Err(format!(
                            "[[registry]] does not list the mirrors first\n{}: {locs:?}, want {want:?}",
                            r.registry
                        ));
                    }
                }
            }
            Ok(())
        }
        FileKind::K3sYaml => {
            let body = strip_bom(text);
            let docs = yaml_rust2::YamlLoader::load_from_str(body)
                .map_err(|e| format!("output is not YAML\n{e}"))?;
            if docs.len() > 1 {
                return Err(format!("several YAML documents\n{}", docs.len()));
            }
            if set.registries.is_empty() {
                return Ok(());
            }
            let root = docs.first().ok_or("no YAML document")?;
            for r in &set.registries {
                let eps = &root["mirrors"][r.registry.as_str()]["endpoint"];
                let list: Vec<String> = eps
                    .as_vec()
                    .ok_or(format!(
                        "mirrors.<registry>.endpoint is not a list\n{}",
                        r.registry
                    ))?
                    .iter()
                    .map(|e| e.as_str().unwrap_or("").to_string())
                    .collect();
                let want: Vec<String> = r.mirrors.iter().map(|m| m.url()).collect();
                if !starts_with(&list, &want, url_norm) {
                    return Err(format!(
                        "mirrors.<registry>.endpoint does not list the mirrors first\n{}: {list:?}, want {want:?}",
                        r.registry
                    ));
                }
            }
            Ok(())
        }
    }
}

fn toml(text: &str) -> Result<toml_edit::DocumentMut, String> {
    strip_bom(text)
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| format!("output is not TOML\n{}", e.message().trim()))
}

fn toml_strings(item: Option<&toml_edit::Item>) -> Option<Vec<String>> {
    item?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// What `--migrate` might have moved into a hosts.toml.
fn gen_moved(rng: &mut Rng) -> mirrorctl::targets::containerd::setup::Moved {
    use mirrorctl::targets::containerd::{legacy::Tls, setup::MovedHost};
    let mut m = mirrorctl::targets::containerd::setup::Moved::default();
    if !rng.chance(25) {
        return m;
    }
    let urls = [
        "https://old-mirror.example",
        "http://127.0.0.1:5001",
        "https://harbor.example/v2/proxy",
        "https://registry-1.docker.io",
        "https://user.example",
    ];
    for _ in 0..rng.below(3) + 1 {
        let tls = rng.chance(30).then(|| Tls {
            ca: Some("/etc/ssl/ca.pem".into()),
            client: rng.chance(50).then(|| ("/c.pem".into(), "/k.pem".into())),
            skip_verify: rng.chance(50).then_some(true),
        });
        m.hosts.push(MovedHost {
            url: rng.pick(&urls).to_string(),
            override_path: rng.chance(30),
            tls,
        });
    }
    if rng.chance(30) {
        m.server_tls = Some(Tls {
            ca: Some("/etc/ssl/reg.pem".into()),
            ..Tls::default()
        });
    }
    m
}
