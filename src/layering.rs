//! The architecture, checked: every `crate::…` path in a module names a module of its own
//! layer or a lower one (see the table in `lib.rs`), the modules of one layer do not import
//! each other in a cycle, and no function outside tests is longer than [`MAX_FN_LINES`] lines
//! unless it is one flat `match` (listed in [`FLAT_MATCHES`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → layer (lower numbers sit lower).
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("process", 0),
    ("fsutil", 0),
    ("diag", 0),
    ("targets", 1),
    ("mirror", 1),
    ("units", 1),
    ("oci", 1),
    ("host", 2),
    ("ctx", 3),
    ("journal", 3),
    ("apply", 3),
    ("reload", 3),
    ("registry", 3),
    ("serve", 3),
    ("verify", 3),
    ("preflight", 3),
    ("warm", 3),
    ("commands", 4),
    ("cli", 4),
    ("output", 4),
    ("lib", 5),
    ("main", 5),
    ("layering", 5),
];

/// The longest a function may be (lines from its signature to its closing brace).
const MAX_FN_LINES: usize = 80;

/// Functions allowed to be longer: each is one flat `match` (or table) a reader takes in as a
/// list. `file:function`.
const FLAT_MATCHES: &[&str] = &[];

fn layer(m: &str) -> Option<u8> {
    LAYERS.iter().find(|(n, _)| *n == m).map(|(_, l)| *l)
}

fn src_files() -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    out
}

/// The top-level module a source file belongs to (`src/verify/flow.rs` → `verify`).
fn module_of(file: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rel = file.strip_prefix(&src).unwrap_or(file);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_string()
}

/// The text without `//` comments (doc links are not imports).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // `://` in a string literal is not a comment.
            Some(i) if !l[..i].ends_with(':') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module named by a `crate::x` path, including grouped `use crate::{a, b}`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
        rest = after;
    }
    out
}

#[test]
fn modules_import_only_their_layer_or_lower() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut violations = Vec::new();
    for f in src_files() {
        let m = module_of(&f);
        if m == "layering" {
            // This checker's own strings and examples.
            continue;
        }
        let Some(lm) = layer(&m) else {
            violations.push(format!(
                "{}: module `{m}` has no layer in LAYERS",
                f.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&f).unwrap();
        for dep in imports(&code_of(&text)) {
            if dep == m {
                continue;
            }
            match layer(&dep) {
                None => violations.push(format!("{}: `crate::{dep}` is not a module", f.display())),
                Some(ld) if ld > lm => violations.push(format!(
                    "{}: `{m}` (layer {lm}) imports `crate::{dep}` (layer {ld})",
                    f.display()
                )),
                Some(_) => {
                    graph.entry(m.clone()).or_default().insert(dep);
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    // No cycle among modules (of the same layer: lower ones cannot point back up).
    fn visit(
        m: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(c) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("modules import each other in a cycle: {}", c.join(" → "));
        }
    }
}

#[test]
fn the_checker_sees_grouped_and_inline_paths() {
    let code = code_of(
        "use crate::{apply::Change, ctx};\nlet x = crate::oci::DOCKER_HUB; // crate::cli\n/// [`crate::verify`]\n",
    );
    let got: Vec<String> = imports(&code).into_iter().collect();
    assert_eq!(got, vec!["apply", "ctx", "oci"]);
}

/// `(name, first line, line count)` of every function outside `#[cfg(test)]` modules.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        if t.starts_with("#[cfg(test)]") {
            // Skip the test module (or item) that follows.
            i = block_end(&lines, i + 1).map_or(lines.len(), |e| e + 1);
            continue;
        }
        if let Some(name) = fn_name(t) {
            if let Some(end) = block_end(&lines, i) {
                out.push((name, i + 1, end - i + 1));
                // Nested functions are counted within their parent.
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

fn fn_name(line: &str) -> Option<String> {
    let mut t = line;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        t = t.strip_prefix(prefix).unwrap_or(t);
        t = t.strip_prefix(prefix).unwrap_or(t);
    }
    let rest = t.strip_prefix("fn ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The line of the `}` closing the first `{` at or after line `from` (braces in strings and
/// char literals ignored); `None` for an item without a body.
fn block_end(lines: &[&str], from: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut opened = false;
    for (n, line) in lines.iter().enumerate().skip(from) {
        let mut in_str = false;
        let mut prev = ' ';
        let chars: Vec<char> = line.chars().collect();
        let mut k = 0;
        while k < chars.len() {
            let c = chars[k];
            if in_str {
                if c == '"' && prev != '\\' {
                    in_str = false;
                }
                prev = if prev == '\\' && c == '\\' { ' ' } else { c };
                k += 1;
                continue;
            }
            match c {
                '/' if chars.get(k + 1) == Some(&'/') => break,
                '"' => in_str = true,
                '\'' if chars.get(k + 2) == Some(&'\'') => k += 2,
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                ';' if !opened && depth == 0 => return None,
                _ => {}
            }
            prev = c;
            k += 1;
        }
        if opened && depth == 0 {
            return Some(n);
        }
    }
    None
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let mut long = Vec::new();
    for f in src_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let rel = f
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(&f)
            .display()
            .to_string();
        for (name, line, n) in functions(&text) {
            let key = format!("{rel}:{name}");
            if n > MAX_FN_LINES && !FLAT_MATCHES.contains(&key.as_str()) {
                long.push(format!("{rel}:{line}: `{name}` is {n} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions longer than {MAX_FN_LINES} lines (split them along their concerns, or list a flat match in FLAT_MATCHES):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_length_checker_counts_bodies() {
    let text = "fn a() {\n    let s = \"}\";\n    if x { y }\n}\n#[cfg(test)]\nmod tests {\n    fn b() {\n    }\n}\npub async fn c(\n    x: u8,\n) -> u8 {\n    x\n}\nfn d();\n";
    let f = functions(text);
    assert_eq!(f, vec![("a".to_string(), 1, 4), ("c".to_string(), 10, 5)]);
}
