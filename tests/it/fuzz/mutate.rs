//! Mutators: byte-level (truncation, flips, inserts, deletes, splices, invalid UTF-8) and
//! structure-aware per format (duplicated keys and tables, deep nesting, huge numbers, CRLF/LF
//! mixes, BOMs, trailing garbage, YAML document markers, tabs, and edits of the parsed tree
//! written back out).

use crate::fuzz::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
    Yaml,
    /// Header values, references, paths: short one-line strings.
    Line,
}

const URLS: &[&str] = &[
    "http://127.0.0.1:5000",
    "https://m.example",
    "http://[::1]:5000",
    "https://mirror.example:8443",
    "HTTPS://M.Example/",
    "http://127.0.0.1:5000/",
    "127.0.0.1:5000",
    "m.example",
    "https://user.example",
    "https://mirror.gcr.io",
    "http://",
    "",
];

const WEIRD: &[&str] = &[
    "é",
    "😀",
    "\u{2028}",
    "\u{2029}",
    "\u{a0}",
    "\u{200b}",
    "\u{feff}",
    "\u{0}",
    "\u{1b}",
    "\u{85}",
    "\u{7f}",
    "\r",
    "\t",
    "\\",
    "\"",
    "'",
    "\\u0000",
    "\\ud800",
    "\\ud83d\\ude00",
    "\\x41",
];

pub const HUGE: &[&str] = &[
    "99999999999999999999999999999",
    "-9223372036854775809",
    "9223372036854775807",
    "18446744073709551616",
    "1e999",
    "-1e-999",
    "1.7976931348623157e309",
    "0.00000000000000000000000000000001",
    "1000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "-0",
    "+1",
    "0x7fffffffffffffff",
    "0o777",
    "0b1",
    "1_000",
    "inf",
    "-inf",
    "nan",
    "NaN",
    "Infinity",
    "007",
];

const JSON_TOKENS: &[&str] = &[
    "\"registry-mirrors\"",
    "\"insecure-registries\"",
    "\"registry-mirrors\": \"x\",",
    "\"registry-mirrors\": [],",
    "\"registry-mirrors\": [\"http://127.0.0.1:5000\"],",
    "\"registry-mirrors\": [1, null],",
    "\"insecure-registries\": [\"127.0.0.1:5000\"],",
    "\"insecure-registries\": {},",
    "\"debug\": true,",
    "\"features\": {\"containerd-snapshotter\": true},",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "// comment\n",
    "/* comment */",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\\\\"",
    "'single'",
    "\n",
    " ",
];

const TOML_TOKENS: &[&str] = &[
    "[registry]\n",
    "[registry.\"docker.io\"]\n",
    "[registry.\"docker.io\"]\nmirrors = [\"m.example\"]\n",
    "mirrors = [\"127.0.0.1:5000\"]\n",
    "mirrors = \"x\"\n",
    "mirrors = [1]\n",
    "[registry.\"127.0.0.1:5000\"]\nhttp = true\n",
    "[registry.\"m.example\"]\ninsecure = true\n",
    "registry = 3\n",
    "registry.\"docker.io\".mirrors = [\"x\"]\n",
    "\"docker.io\" = { mirrors = [\"a\"] }\n",
    "[[registry]]\n",
    "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n",
    "[[registry.mirror]]\n",
    "[[registry.mirror]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n",
    "prefix = \"docker.io\"\n",
    "location = \"docker.io\"\n",
    "insecure = true\n",
    "blocked = false\n",
    "mirror = [{location = \"x\"}]\n",
    "registry = [{prefix = \"docker.io\"}]\n",
    "[registries.search]\nregistries = []\n",
    "unqualified-search-registries = [\"docker.io\"]\n",
    "server = \"https://registry-1.docker.io\"\n",
    "server = 1\n",
    "[host.\"http://127.0.0.1:5000\"]\n",
    "[host.\"https://m.example\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
    "[host.\"https://m.example\".header]\nx = \"y\"\n",
    "[host.\"127.0.0.1:5000\"]\n",
    "host = 1\n",
    "host = { \"http://a:1\" = { capabilities = [\"pull\"] } }\n",
    "capabilities = [\"pull\", \"resolve\"]\n",
    "skip_verify = true\n",
    "version = 2\n",
    "version = 3\n",
    "version = 1\n",
    "version = \"2\"\n",
    "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n",
    "[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n",
    "[plugins.\"io.containerd.cri.v1.images\".registry]\n",
    "config_path = \"/etc/containerd/certs.d:/other\"\n",
    "config_path = 5\n",
    "[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\nendpoint = [\"https://m\"]\n",
    "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"m\".tls]\ninsecure_skip_verify = true\n",
    "plugins = 1\n",
    "a.b.c = 1\n",
    "# comment\n",
    "\"\"\"multi\nline\"\"\"",
    "'''lit'''",
    "1979-05-27T07:32:00Z",
    "= ",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "\"",
    "'",
    ".",
    "\n",
];

const YAML_TOKENS: &[&str] = &[
    "mirrors:\n",
    "configs:\n",
    "  docker.io:\n",
    "  \"docker.io\":\n",
    "    endpoint:\n",
    "      - \"http://127.0.0.1:5000\"\n",
    "      - http://127.0.0.1:5000\n",
    "mirrors: {}\n",
    "mirrors: []\n",
    "mirrors: ~\n",
    "mirrors: null\n",
    "mirrors:\n  docker.io:\n    endpoint: [\"https://m.example\"]\n",
    "mirrors: {docker.io: {endpoint: [a]}}\n",
    "configs:\n  \"m.example:8443\":\n    tls:\n      insecure_skip_verify: false\n",
    "endpoint: []\n",
    "endpoint: x\n",
    "rewrite:\n  \"^(.*)$\": \"x/$1\"\n",
    "tls:\n",
    "insecure_skip_verify: true\n",
    "auth:\n  username: u\n",
    "---\n",
    "...\n",
    "--- \n",
    "---\n...\n",
    "%YAML 1.2\n---\n",
    "%TAG ! tag:x,2000:\n",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!str ",
    "!!map\n",
    "!x ",
    "? ",
    ": ",
    "- ",
    "|\n",
    ">-\n",
    "{",
    "}",
    "[",
    "]",
    "#",
    " #c\n",
    "'",
    "\"",
    "\t",
    "  ",
    ",",
    "\n",
];

const LINE_TOKENS: &[&str] = &[
    "/",
    ":",
    "@",
    "=",
    ",",
    ";",
    "\"",
    "\\",
    " ",
    "\t",
    "-",
    ".",
    "_",
    "__",
    "..",
    "//",
    "sha256:",
    "sha512:",
    "bytes=",
    "Bearer",
    "Basic",
    "realm=",
    "service=",
    "scope=",
    "[",
    "]",
    "::1",
    "localhost",
    "docker.io",
    "library/",
    "manifests/",
    "blobs/",
    "uploads",
    "tags/list",
    "%2e",
    "%2f",
    "?",
    "#",
    "http://",
    "https://",
];

/// Bytes that are not UTF-8 (or not its shortest form).
const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xfe",
    b"\xc3",
    b"\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc0\xaf",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
];

fn tokens(f: Format) -> &'static [&'static str] {
    match f {
        Format::Json => JSON_TOKENS,
        Format::Toml => TOML_TOKENS,
        Format::Yaml => YAML_TOKENS,
        Format::Line => LINE_TOKENS,
    }
}

/// Byte ranges of the lines (each with its `\n`).
fn lines(buf: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in buf.iter().enumerate() {
        if *b == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < buf.len() {
        out.push((start, buf.len()));
    }
    out
}

/// A position, biased towards line starts (where structure begins).
fn pos(rng: &mut Rng, buf: &[u8]) -> usize {
    if rng.chance(50) {
        let ls = lines(buf);
        if !ls.is_empty() {
            return rng.pick(&ls).0;
        }
    }
    rng.below(buf.len() + 1)
}

/// A random nested structure `depth` levels deep in the format's syntax.
pub fn nesting(rng: &mut Rng, f: Format, depth: usize) -> String {
    match (f, rng.below(3)) {
        (Format::Json, 0) => format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)),
        (Format::Json, 1) => format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        (Format::Json, _) => "[{\"a\":".repeat(depth),
        (Format::Toml, 0) => format!("a = {}{}\n", "[".repeat(depth), "]".repeat(depth)),
        (Format::Toml, 1) => format!("a = {}1{}\n", "{b = ".repeat(depth), "}".repeat(depth)),
        (Format::Toml, _) => {
            if rng.chance(50) {
                format!("[{}a]\n", "a.".repeat(depth))
            } else {
                format!("{}a = 1\n", "a.".repeat(depth))
            }
        }
        (Format::Yaml, 0) => format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth)),
        (Format::Yaml, 1) => format!("a: {}1{}\n", "{a: ".repeat(depth), "}".repeat(depth)),
        (Format::Yaml, _) => {
            let mut s = String::new();
            for k in 0..depth.min(2000) {
                s.push_str(&" ".repeat(k));
                s.push_str("a:\n");
            }
            s
        }
        (Format::Line, _) => "[".repeat(depth),
    }
}

fn depth(rng: &mut Rng) -> usize {
    rng.one(&[2, 10, 64, 100, 127, 128, 129, 200, 500, 1000, 3000, 10000])
}

/// One random mutation of `buf`. `others` are seeds of the same format, for splices.
pub fn mutate_once(rng: &mut Rng, f: Format, buf: &mut Vec<u8>, others: &[&[u8]]) {
    let ls = lines(buf);
    match rng.below(30) {
        // Truncation.
        0 | 1 => {
            let at = rng.below(buf.len() + 1);
            buf.truncate(at);
        }
        // Bit flip.
        2 => {
            if !buf.is_empty() {
                let i = rng.below(buf.len());
                buf[i] ^= 1 << rng.below(8);
            }
        }
        // Random byte (mostly syntax).
        3 => {
            let b = rng.one(b"{}[]\",:=#\n\r\t '\\-.0a\x00\x7f");
            let at = pos(rng, buf);
            if rng.chance(50) && at < buf.len() {
                buf[at] = b;
            } else {
                buf.insert(at, b);
            }
        }
        // Delete a span.
        4 => {
            if !buf.is_empty() {
                let a = rng.below(buf.len());
                let max = if rng.chance(70) { 4 } else { 200 };
                let n = 1 + rng.below((buf.len() - a).min(max));
                buf.drain(a..a + n);
            }
        }
        // Duplicate a span somewhere else.
        5 => {
            if !buf.is_empty() {
                let a = rng.below(buf.len());
                let n = 1 + rng.below((buf.len() - a).min(64));
                let span = buf[a..a + n].to_vec();
                let at = rng.below(buf.len() + 1);
                buf.splice(at..at, span);
            }
        }
        // Splice: a prefix of this seed, a suffix of another.
        6 => {
            if !others.is_empty() {
                let o = rng.one(others);
                let a = rng.below(buf.len() + 1);
                let b = rng.below(o.len() + 1);
                buf.truncate(a);
                buf.extend_from_slice(&o[b..]);
            }
        }
        // A format token at a line start or anywhere.
        7..=9 => {
            let t = rng.pick(tokens(f)).as_bytes().to_vec();
            let at = pos(rng, buf);
            buf.splice(at..at, t);
        }
        // Duplicate a line (duplicated keys; a duplicated `[table]` header).
        10 | 11 => {
            if !ls.is_empty() {
                let (a, b) = rng.one(&ls);
                let mut line = buf[a..b].to_vec();
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                let (at, _) = if rng.chance(50) { (b, 0) } else { rng.one(&ls) };
                buf.splice(at..at, line);
            }
        }
        // Duplicate a block of lines (a whole table with its keys).
        12 => {
            if ls.len() >= 2 {
                let i = rng.below(ls.len());
                let j = (i + 1 + rng.below(4)).min(ls.len());
                let block = buf[ls[i].0..ls[j - 1].1].to_vec();
                let mut block = block;
                if !block.ends_with(b"\n") {
                    block.push(b'\n');
                }
                let at = if rng.chance(50) {
                    buf.len()
                } else {
                    rng.pick(&ls).0
                };
                if at == buf.len() && !buf.is_empty() && !buf.ends_with(b"\n") {
                    buf.push(b'\n');
                }
                let at = at.min(buf.len());
                buf.splice(at..at, block);
            }
        }
        // Delete or swap lines.
        13 => {
            if ls.len() >= 2 {
                let i = rng.below(ls.len());
                let j = rng.below(ls.len());
                let (a, b) = (ls[i.min(j)], ls[i.max(j)]);
                if i == j || rng.chance(40) {
                    buf.drain(a.0..a.1);
                } else {
                    let la = buf[a.0..a.1].to_vec();
                    let lb = buf[b.0..b.1].to_vec();
                    let mut out = buf[..a.0].to_vec();
                    out.extend_from_slice(&lb);
                    out.extend_from_slice(&buf[a.1..b.0]);
                    out.extend_from_slice(&la);
                    out.extend_from_slice(&buf[b.1..]);
                    *buf = out;
                }
            }
        }
        // Line endings: all CRLF, one CRLF, one CRLF back to LF, a lone CR.
        14 | 15 => {
            let s = String::from_utf8_lossy(buf).to_string();
            let out = match rng.below(4) {
                0 => s.replace("\r\n", "\n").replace('\n', "\r\n"),
                1 => {
                    let ls: Vec<usize> = s.match_indices('\n').map(|(i, _)| i).collect();
                    let mut s = s;
                    if !ls.is_empty() {
                        let i = rng.one(&ls);
                        if !s[..i].ends_with('\r') {
                            s.insert(i, '\r');
                        }
                    }
                    s
                }
                2 => {
                    let ls: Vec<usize> = s.match_indices("\r\n").map(|(i, _)| i).collect();
                    let mut s = s;
                    if !ls.is_empty() {
                        s.remove(rng.one(&ls));
                    }
                    s
                }
                _ => {
                    let mut s = s;
                    let at = floor(&s, rng.below(s.len() + 1));
                    s.insert(at, '\r');
                    s
                }
            };
            *buf = out.into_bytes();
        }
        // BOM: leading (maybe twice), or in the middle.
        16 => {
            let at = if rng.chance(75) { 0 } else { pos(rng, buf) };
            buf.splice(at..at, "\u{feff}".bytes());
        }
        // Trailing garbage, or no final newline, or extra ones.
        17 => match rng.below(3) {
            0 => {
                let t = rng.pick(tokens(f)).as_bytes().to_vec();
                buf.extend_from_slice(&t);
            }
            1 => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
            }
            _ => buf.extend_from_slice(if rng.chance(50) { b"\n\n" } else { b"\r\n" }),
        },
        // Tabs and indentation.
        18 => {
            if !ls.is_empty() {
                let (a, b) = rng.one(&ls);
                let ind = buf[a..b].iter().take_while(|c| **c == b' ').count();
                match rng.below(3) {
                    0 => {
                        buf.splice(a..a + ind, std::iter::once(b'\t'));
                    }
                    1 => {
                        buf.splice(a..a, b"  ".iter().copied());
                    }
                    _ => {
                        let n = ind.min(1 + rng.below(4));
                        buf.drain(a..a + n);
                    }
                }
            }
        }
        // Huge or odd numbers: replace a digit run (or a value) with one.
        19 => {
            let n = rng.pick(HUGE).as_bytes().to_vec();
            let digits: Vec<usize> = buf
                .iter()
                .enumerate()
                .filter(|(i, c)| c.is_ascii_digit() && (*i == 0 || !buf[i - 1].is_ascii_digit()))
                .map(|(i, _)| i)
                .collect();
            if !digits.is_empty() && rng.chance(70) {
                let a = rng.one(&digits);
                let e = a + buf[a..].iter().take_while(|c| c.is_ascii_digit()).count();
                buf.splice(a..e, n);
            } else {
                let at = pos(rng, buf);
                buf.splice(at..at, n);
            }
        }
        // Deep nesting.
        20 => {
            let d = depth(rng);
            let n = nesting(rng, f, d).into_bytes();
            let at = if rng.chance(50) {
                pos(rng, buf)
            } else {
                buf.len()
            };
            if at == buf.len() && !buf.is_empty() && !buf.ends_with(b"\n") && f != Format::Line {
                buf.push(b'\n');
            }
            let at = at.min(buf.len());
            buf.splice(at..at, n);
        }
        // Unusual characters (multi-byte, line separators, escapes).
        21 => {
            let t = rng.pick(WEIRD).as_bytes().to_vec();
            let at = rng.below(buf.len() + 1);
            buf.splice(at..at, t);
        }
        // Invalid UTF-8 (planners see it as U+FFFD after the lossy conversion).
        22 => {
            let t = rng.pick(INVALID_UTF8).to_vec();
            let at = rng.below(buf.len() + 1);
            buf.splice(at..at, t);
        }
        // A mirror-ish string somewhere.
        23 => {
            let u = rng.pick(URLS);
            let t = match f {
                Format::Json => format!("\"{u}\""),
                Format::Toml | Format::Yaml => format!("\"{u}\""),
                Format::Line => u.to_string(),
            };
            let at = pos(rng, buf);
            buf.splice(at..at, t.into_bytes());
        }
        // Structure-aware: edit the parsed tree and write it back.
        _ => {
            if let Ok(s) = std::str::from_utf8(buf) {
                let out = match f {
                    Format::Json => json_tree(rng, s),
                    Format::Toml => toml_tree(rng, s),
                    Format::Yaml => yaml_tree(rng, s),
                    Format::Line => None,
                };
                if let Some(o) = out {
                    *buf = o.into_bytes();
                    return;
                }
            }
            // Not parseable: a duplicated key/table text edit instead.
            dup_key(rng, f, buf);
        }
    }
}

fn floor(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Insert a duplicate of a key that is already there (or a known one), in the format's syntax.
fn dup_key(rng: &mut Rng, f: Format, buf: &mut Vec<u8>) {
    let s = String::from_utf8_lossy(buf).to_string();
    match f {
        Format::Json => {
            // `{` → `{"<key>": <value>,` — a key the object (or another) already has.
            let keys: Vec<String> = s
                .match_indices('"')
                .filter_map(|(i, _)| {
                    let rest = &s[i + 1..];
                    let end = rest.find('"')?;
                    rest[end + 1..]
                        .trim_start()
                        .starts_with(':')
                        .then(|| rest[..end].to_string())
                })
                .collect();
            let key = if keys.is_empty() || rng.chance(30) {
                rng.pick(&["registry-mirrors", "insecure-registries", "debug"])
                    .to_string()
            } else {
                rng.pick(&keys).clone()
            };
            let val = serde_json::to_string(&json_value(rng, 2)).unwrap();
            let opens: Vec<usize> = s.match_indices('{').map(|(i, _)| i).collect();
            if opens.is_empty() {
                *buf = format!("{{\"{key}\":{val},\"{key}\":[]}}").into_bytes();
                return;
            }
            let at = rng.one(&opens) + 1;
            let empty = s[at..].trim_start().starts_with('}');
            let member = if empty {
                format!("\"{key}\": {val}")
            } else {
                format!("\"{key}\": {val},")
            };
            let mut s = s;
            s.insert_str(at, &member);
            *buf = s.into_bytes();
        }
        Format::Toml | Format::Yaml => {
            // Copy a `key =` / `key:` line, or a `[table]` header, to another line start.
            let ls: Vec<&str> = s.split_inclusive('\n').collect();
            let keyish: Vec<&str> = ls
                .iter()
                .copied()
                .filter(|l| l.contains('=') || l.contains(':') || l.trim_start().starts_with('['))
                .collect();
            if keyish.is_empty() {
                return;
            }
            let mut line = rng.pick(&keyish).to_string();
            if !line.ends_with('\n') {
                line.push('\n');
            }
            let starts: Vec<usize> = std::iter::once(0)
                .chain(s.match_indices('\n').map(|(i, _)| i + 1))
                .collect();
            let at = rng.one(&starts);
            let mut s = s;
            s.insert_str(at, &line);
            *buf = s.into_bytes();
        }
        Format::Line => {}
    }
}

pub fn json_value(rng: &mut Rng, depth: usize) -> serde_json::Value {
    use serde_json::Value;
    let k = if depth == 0 {
        rng.below(5)
    } else {
        rng.below(8)
    };
    match k {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => match rng.below(4) {
            0 => Value::from(rng.next_u64()),
            1 => Value::from(i64::MIN),
            2 => Value::from(1e300),
            _ => Value::from(rng.below(10)),
        },
        3 | 4 => {
            let s = if rng.chance(60) {
                rng.pick(URLS).to_string()
            } else {
                format!("{}{}", rng.pick(URLS), rng.pick(WEIRD))
            };
            Value::String(s)
        }
        5 | 6 => Value::Array(
            (0..rng.small(4))
                .map(|_| json_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.small(3) {
                let key = rng
                    .pick(&["registry-mirrors", "insecure-registries", "debug", "a", ""])
                    .to_string();
                m.insert(key, json_value(rng, depth - 1));
            }
            Value::Object(m)
        }
    }
}

/// Parse, change one node (or add a key), write back compact or pretty.
fn json_tree(rng: &mut Rng, s: &str) -> Option<String> {
    let body = s.strip_prefix('\u{feff}').unwrap_or(s);
    let mut v: serde_json::Value = serde_json::from_str(body).ok()?;
    // Walk down a random path and replace what is there.
    fn walk(rng: &mut Rng, v: &mut serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::Object(m) if !m.is_empty() && rng.chance(70) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                let k = rng.pick(&keys).clone();
                walk(rng, m.get_mut(&k).unwrap());
            }
            Value::Array(a) if !a.is_empty() && rng.chance(70) => {
                let i = rng.below(a.len());
                walk(rng, &mut a[i]);
            }
            Value::Object(m) if rng.chance(50) => {
                let key = rng
                    .pick(&["registry-mirrors", "insecure-registries", "debug", "x"])
                    .to_string();
                let val = if rng.chance(50) {
                    serde_json::Value::Array(
                        (0..rng.small(3))
                            .map(|_| serde_json::Value::String(rng.pick(URLS).to_string()))
                            .collect(),
                    )
                } else {
                    json_value(rng, 2)
                };
                m.insert(key, val);
            }
            Value::Array(a) if rng.chance(50) => a.push(json_value(rng, 1)),
            _ => *v = json_value(rng, 2),
        }
    }
    walk(rng, &mut v);
    let bom = if s.starts_with('\u{feff}') {
        "\u{feff}"
    } else {
        ""
    };
    let out = if rng.chance(50) {
        serde_json::to_string_pretty(&v).ok()? + "\n"
    } else {
        serde_json::to_string(&v).ok()?
    };
    Some(format!("{bom}{out}"))
}

fn toml_value(rng: &mut Rng, depth: usize) -> toml_edit::Value {
    use toml_edit::Value;
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => Value::from(rng.chance(50)),
        1 => Value::from(match rng.below(3) {
            0 => i64::MAX,
            1 => i64::MIN,
            _ => rng.below(5) as i64,
        }),
        2 => Value::from(rng.one(&[f64::INFINITY, f64::NAN, 1e300, -0.0, 0.5])),
        3 | 4 => Value::from(rng.pick(URLS).to_string()),
        5 => {
            let mut a = toml_edit::Array::new();
            for _ in 0..rng.small(3) {
                a.push(toml_value(rng, depth - 1));
            }
            Value::Array(a)
        }
        _ => {
            let mut t = toml_edit::InlineTable::new();
            for _ in 0..rng.small(3) {
                let k = rng.one(&["mirrors", "http", "location", "prefix", "a"]);
                t.insert(k, toml_value(rng, depth - 1));
            }
            Value::InlineTable(t)
        }
    }
}

/// Parse, change a value / add a key / add a table somewhere, write back.
fn toml_tree(rng: &mut Rng, s: &str) -> Option<String> {
    use toml_edit::{Item, TableLike};
    let body = s.strip_prefix('\u{feff}').unwrap_or(s);
    let mut doc: toml_edit::DocumentMut = body.parse().ok()?;
    fn paths(t: &dyn TableLike, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for (k, item) in t.iter() {
            let mut p = prefix.to_vec();
            p.push(k.to_string());
            out.push(p.clone());
            if let Some(tl) = item.as_table_like() {
                paths(tl, &p, out);
            }
        }
    }
    let mut all = Vec::new();
    paths(doc.as_table(), &[], &mut all);
    // The parent table of the chosen path.
    let path = if all.is_empty() {
        vec![]
    } else {
        rng.pick(&all).clone()
    };
    let (parent_path, key) = match path.split_last() {
        Some((k, p)) => (p.to_vec(), Some(k.clone())),
        None => (vec![], None),
    };
    let mut t: &mut dyn TableLike = doc.as_table_mut();
    for p in &parent_path {
        t = t.get_mut(p)?.as_table_like_mut()?;
    }
    let inline_parent = t.get_values().is_empty() && t.iter().next().is_none()
        || t.iter().any(|(_, v)| v.is_value());
    match (rng.below(4), key) {
        (0, Some(k)) => {
            t.remove(&k);
        }
        (1, _) => {
            let k = rng.one(&[
                "registry",
                "mirrors",
                "host",
                "server",
                "version",
                "plugins",
                "docker.io",
                "prefix",
                "location",
                "mirror",
                "config_path",
            ]);
            if rng.chance(30) && !inline_parent {
                t.insert(k, Item::Table(toml_edit::Table::new()));
            } else {
                t.insert(k, Item::Value(toml_value(rng, 2)));
            }
        }
        (_, Some(k)) => {
            let item = t.get_mut(&k)?;
            if item.is_value() {
                *item = Item::Value(toml_value(rng, 2));
            } else if let Some(tl) = item.as_table_like_mut() {
                tl.insert(
                    rng.one(&["mirrors", "http", "insecure", "location", "capabilities"]),
                    Item::Value(toml_value(rng, 1)),
                );
            }
        }
        _ => return None,
    }
    let out = doc.to_string();
    Some(if s.starts_with('\u{feff}') {
        format!("\u{feff}{out}")
    } else {
        out
    })
}

fn yaml_value(rng: &mut Rng, depth: usize) -> yaml_rust2::Yaml {
    use yaml_rust2::Yaml;
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => Yaml::Null,
        1 => Yaml::Boolean(rng.chance(50)),
        2 => Yaml::Integer(if rng.chance(50) { i64::MAX } else { 3 }),
        3 | 4 => Yaml::String(rng.pick(URLS).to_string()),
        5 => Yaml::Array(
            (0..rng.small(3))
                .map(|_| yaml_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut h = yaml_rust2::yaml::Hash::new();
            for _ in 0..rng.small(3) {
                let k = rng.one(&["mirrors", "endpoint", "docker.io", "configs", "tls", "a"]);
                h.insert(Yaml::String(k.into()), yaml_value(rng, depth - 1));
            }
            Yaml::Hash(h)
        }
    }
}

/// Parse, change one node, write back (yaml-rust2's emitter: `---`, its own quoting).
fn yaml_tree(rng: &mut Rng, s: &str) -> Option<String> {
    use yaml_rust2::Yaml;
    let body = s.strip_prefix('\u{feff}').unwrap_or(s);
    let mut docs = yaml_rust2::YamlLoader::load_from_str(body).ok()?;
    let doc = docs.get_mut(0)?;
    fn walk(rng: &mut Rng, v: &mut Yaml) {
        match v {
            Yaml::Hash(h) if !h.is_empty() && rng.chance(70) => {
                let keys: Vec<Yaml> = h.keys().cloned().collect();
                let k = rng.pick(&keys).clone();
                walk(rng, h.get_mut(&k).unwrap());
            }
            Yaml::Array(a) if !a.is_empty() && rng.chance(70) => {
                let i = rng.below(a.len());
                walk(rng, &mut a[i]);
            }
            Yaml::Hash(h) if rng.chance(50) => {
                let k = rng.one(&["mirrors", "configs", "docker.io", "endpoint", "tls"]);
                h.insert(Yaml::String(k.into()), yaml_value(rng, 2));
            }
            _ => *v = yaml_value(rng, 2),
        }
    }
    walk(rng, doc);
    let mut out = String::new();
    let mut em = yaml_rust2::YamlEmitter::new(&mut out);
    if rng.chance(30) {
        em.compact(false);
    }
    em.dump(doc).ok()?;
    out.push('\n');
    if rng.chance(50) {
        // The emitter always starts with `---`; files usually do not.
        out = out.trim_start_matches("---\n").to_string();
    }
    Some(out)
}

/// 1..=n mutations of a seed (sometimes none: the seed itself).
pub fn mutate(rng: &mut Rng, f: Format, seed: &[u8], others: &[&[u8]], max: usize) -> Vec<u8> {
    let mut buf = seed.to_vec();
    if rng.chance(8) {
        return buf;
    }
    let n = 1 + rng.small(max.saturating_sub(1));
    for _ in 0..n {
        mutate_once(rng, f, &mut buf, others);
        if buf.len() > 256 * 1024 {
            buf.truncate(256 * 1024);
        }
    }
    buf
}

/// A mutated seed as text: invalid UTF-8 becomes U+FFFD (the engine refuses a file that is not
/// UTF-8 before any planner sees it).
pub fn mutate_text(rng: &mut Rng, f: Format, seed: &str, others: &[&str], max: usize) -> String {
    let o: Vec<&[u8]> = others.iter().map(|s| s.as_bytes()).collect();
    String::from_utf8_lossy(&mutate(rng, f, seed.as_bytes(), &o, max)).into_owned()
}
