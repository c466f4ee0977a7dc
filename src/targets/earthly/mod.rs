//! Earthly: `~/.earthly/config.yml`, the string `global.buildkit_additional_config`.
//!
//! Earthly appends that string, raw, to the end of the `buildkitd.toml` it generates for its
//! `earthly-buildkitd` container (after its own `[worker.oci]` table; no TOML merge: a table
//! defined twice makes that buildkitd exit). So the string is parsed with the BuildKit planner
//! the `buildkit` target uses, the mirrors are merged into it, and it is written back as a YAML
//! literal block (`|`). Every other byte of the file stays: keys, comments, indentation, the
//! final-newline state. The YAML is edited as text at the positions yaml-rust2's parser
//! reports, and the result is parsed again and compared with what was meant before it is
//! returned.
//!
//! Owned tokens: the BuildKit planner's, prefixed `toml:`; `yaml:key` (mirrorctl added the
//! key), `yaml:global` (and `global:` itself), `yaml:eofnl` (and a final newline before it),
//! `yaml:gnull:<source>` (`global:` was empty, as written), `yaml:orig:<source>` (the value as
//! it was written before the first arm, put back verbatim when disarm leaves its TOML as it was).

mod scan;

use super::text::{original_offset, reframe, unframe, Framing};
use super::{buildkit, Planned};
use crate::error::PlanError;
use crate::mirror::MirrorSet;
use scan::{Entry, Scan, Value};
use yaml_rust2::scanner::TScalarStyle;
use yaml_rust2::{Yaml, YamlLoader};

/// The key mirrorctl edits, under `global`.
pub const KEY: &str = "buildkit_additional_config";
/// Earthly's directory under the home, and its config file (the legacy name is read when it is
/// the only one there).
pub const DIR: &str = ".earthly";
pub const CONFIG: &str = "config.yml";
pub const LEGACY_CONFIG: &str = "config.yaml";
/// The container Earthly runs its BuildKit in, and the label with its settings hash.
pub const CONTAINER: &str = "earthly-buildkitd";
pub const HASH_LABEL: &str = "dev.earthly.settingshash";
/// The environment variable that carries the string into that container.
pub const CONFIG_ENV: &str = "EARTHLY_ADDITIONAL_BUILDKIT_CONFIG";

const T_TOML: &str = "toml:";
const T_KEY: &str = "yaml:key";
const T_GLOBAL: &str = "yaml:global";
const T_EOFNL: &str = "yaml:eofnl";
const T_GNULL: &str = "yaml:gnull:";
const T_ORIG: &str = "yaml:orig:";

/// What `status` and the reload policy read from a config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// `global.buildkit_additional_config` (`None`: absent or null).
    pub additional_config: Option<String>,
    /// `global.buildkit_host`, when set.
    pub buildkit_host: Option<String>,
}

impl Facts {
    /// Whether `buildkit_host` names a buildkitd Earthly does not start (its own rule: loopback
    /// `127.0.0.1`, `::1`, `localhost`, or a `docker-container://` / `podman-container://`
    /// address is local).
    pub fn remote_buildkit(&self) -> Option<&str> {
        let h = self.buildkit_host.as_deref()?.trim();
        if h.is_empty() {
            return None;
        }
        let (scheme, rest) = h.split_once("://").unwrap_or(("", h));
        if matches!(scheme, "docker-container" | "podman-container") {
            return None;
        }
        let authority = rest.split('/').next().unwrap_or("");
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        };
        (!matches!(host, "127.0.0.1" | "::1" | "localhost")).then_some(h)
    }
}

/// The settings in `text` that decide what Earthly's buildkitd gets.
pub fn facts(text: &str) -> Result<Facts, PlanError> {
    let doc = Doc::read(text)?;
    let string = |k: &str| {
        doc.scan
            .global_entries
            .iter()
            .find(|e| e.key == k)
            .and_then(|e| scalar_string(&e.value))
    };
    Ok(Facts {
        additional_config: string(KEY),
        buildkit_host: string("buildkit_host"),
    })
}

/// A scalar's string as Earthly's `string` field gets it (`None`: null).
fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::Scalar { text, style } => {
            let null = *style == TScalarStyle::Plain
                && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL");
            (!null).then(|| text.clone())
        }
        _ => None,
    }
}

/// The file, checked and scanned.
struct Doc<'a> {
    original: &'a str,
    framing: Framing,
    body: String,
    scan: Scan,
    tree: Option<Yaml>,
}

impl<'a> Doc<'a> {
    fn read(original: &'a str) -> Result<Doc<'a>, PlanError> {
        let (framing, body) = unframe(original);
        let at = |off: usize, msg: String| {
            PlanError::at_offset(original, original_offset(original, framing, off), msg)
        };
        check_chars(&body).map_err(|(o, m)| at(o, m))?;
        let scan = scan::scan(&body).map_err(|(o, m)| at(o, m))?;
        if scan.documents > 1 {
            return Err(PlanError::whole(
                "the config holds several YAML documents; Earthly reads only the first. Remove the others (and the `---` between them), then rerun",
            ));
        }
        let tree = {
            let chars = scan::byte_offsets(&body);
            YamlLoader::load_from_str(&body)
                .map_err(|e| {
                    at(
                        chars(e.marker().index()),
                        format!("invalid YAML: {}", e.info()),
                    )
                })?
                .into_iter()
                .next()
        };
        let doc = Doc {
            original,
            framing,
            body,
            scan,
            tree,
        };
        doc.check_shape()?;
        Ok(doc)
    }

    fn error_at(&self, body_offset: usize, msg: impl Into<String>) -> PlanError {
        let off = original_offset(self.original, self.framing, body_offset);
        PlanError::at_offset(self.original, off, msg)
    }

    /// The types Earthly's struct needs where mirrorctl looks.
    fn check_shape(&self) -> Result<(), PlanError> {
        let null = |v: &Value| matches!(v, Value::Scalar { .. }) && scalar_string(v).is_none();
        if let Some((v, p)) = &self.scan.root {
            if !matches!(v, Value::Map { .. }) && !null(v) {
                return Err(
                    self.error_at(p.index, "the config must be a mapping (`global:`, `git:`)")
                );
            }
        }
        if let Some(g) = self.scan.global() {
            if !matches!(g.value, Value::Map { .. }) && !null(&g.value) {
                return Err(self.error_at(g.value_pos.index, "`global` must be a mapping"));
            }
        }
        if let Some(k) = self.scan.key() {
            if !matches!(k.value, Value::Scalar { .. }) {
                return Err(self.error_at(
                    k.value_pos.index,
                    format!("`global.{KEY}` must be a string of TOML"),
                ));
            }
        }
        Ok(())
    }
}

/// Characters the YAML parsers disagree on, or that the line-based edit cannot keep.
fn check_chars(body: &str) -> Result<(), (usize, String)> {
    let bad = body.char_indices().find(|&(i, c)| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r'))
            || (c == '\r' && !body.get(i + 1..).is_some_and(|r| r.starts_with('\n')))
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
            )
    });
    let Some((at, c)) = bad else { return Ok(()) };
    let why = match c {
        '\u{85}' | '\u{2028}' | '\u{2029}' => {
            "a line break to some YAML parsers and not to others; write a plain line break"
        }
        '\u{feff}' => "a byte order mark inside the file; remove it",
        '\r' => "a carriage return without a line feed; use \\n or \\r\\n line ends",
        _ => "a control character, which YAML does not allow",
    };
    Err((at, format!("invalid YAML: U+{:04X} is {why}", c as u32)))
}

/// Plan `config.yml` for `set`; with no registries, remove everything mirrorctl owns.
pub fn plan(current: Option<&str>, set: &MirrorSet, prev: &[String]) -> Result<Planned, PlanError> {
    let original = current.unwrap_or("");
    let doc = Doc::read(original)?;
    let bk_prev: Vec<String> = prev
        .iter()
        .filter_map(|t| t.strip_prefix(T_TOML).map(str::to_string))
        .collect();
    let yaml_prev: Vec<String> = prev
        .iter()
        .filter(|t| !t.starts_with(T_TOML))
        .cloned()
        .collect();
    let entry = doc.scan.key().cloned();
    let cur = entry.as_ref().and_then(|e| scalar_string(&e.value));
    if !set.registries.is_empty() {
        if let Some(c) = &cur {
            refuse_bare_keys(&doc, entry.as_ref(), c)?;
        }
    }
    let bk = buildkit::plan(cur.as_deref(), set, &bk_prev)
        .map_err(|e| toml_error(&doc, entry.as_ref(), e))?;
    let mut owned: Vec<String> = bk.owned.iter().map(|t| format!("{T_TOML}{t}")).collect();
    let edit = Edit {
        doc: &doc,
        yaml_prev: &yaml_prev,
        disarming: bk.owned.is_empty(),
    };
    let (body, yaml_owned) = match &entry {
        Some(e) => edit.existing(e, cur.as_deref().unwrap_or(""), &bk.text)?,
        None if bk.owned.is_empty() => (doc.body.clone(), Vec::new()),
        None => edit.insert(&bk.text)?,
    };
    if !owned.is_empty() {
        owned.extend(yaml_owned);
    }
    Ok(Planned {
        text: reframe(doc.framing, &body),
        owned,
    })
}

/// The string must start with a table header: Earthly appends it after its `[worker.oci]`.
fn refuse_bare_keys(doc: &Doc, entry: Option<&Entry>, toml: &str) -> Result<(), PlanError> {
    let Some((n, line)) = toml.lines().enumerate().find(|(_, l)| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    }) else {
        return Ok(());
    };
    if line.trim_start().starts_with('[') {
        return Ok(());
    }
    let shown: String = line.trim().chars().take(40).collect();
    let e = PlanError::new(
        n + 1,
        1,
        format!(
            "the TOML starts with `{shown}` before any table header: Earthly appends this text after its own `[worker.oci]` table, so such keys land in `[worker.oci]` (or its last `[[worker.oci.gcpolicy]]`), not where they were meant. Put them under a table header (`[registry.\"docker.io\"]` for mirrors), then rerun"
        ),
    );
    Err(toml_error(doc, entry, e))
}

/// A TOML error in the string, at the file's line where the block shows it (a literal block's
/// lines are the string's), else at the key with the string's line and column.
fn toml_error(doc: &Doc, entry: Option<&Entry>, e: PlanError) -> PlanError {
    let Some(entry) = entry else { return e };
    let literal = matches!(
        entry.value,
        Value::Scalar {
            style: TScalarStyle::Literal,
            ..
        }
    );
    let prefix = format!("`global.{KEY}` is not TOML Earthly's BuildKit can start with");
    if literal && e.line > 0 {
        if let Some((line, col)) = block_line(&doc.body, entry, e.line) {
            let start = line + col;
            let skip = doc
                .body
                .get(start..)
                .and_then(|r| r.char_indices().nth(e.column.saturating_sub(1)))
                .map_or(0, |(i, _)| i);
            let off = start + skip;
            let mut err = doc.error_at(off.min(doc.body.len()), format!("{prefix}: {}", e.message));
            err.column = err.column.max(1);
            return err;
        }
    }
    let at = if e.line > 0 {
        format!(" (line {}, column {} of the string)", e.line, e.column)
    } else {
        String::new()
    };
    doc.error_at(entry.key_pos.index, format!("{prefix}{at}: {}", e.message))
}

/// The body offset of the start of the `n`th (1-based) content line of a literal block, and the
/// block's content indentation.
fn block_line(body: &str, entry: &Entry, n: usize) -> Option<(usize, usize)> {
    let span = spans::value(body, entry).ok()?;
    let indent = span.content_indent?;
    let mut off = span.content_start?;
    for _ in 1..n {
        off += body.get(off..)?.find('\n')? + 1;
    }
    Some((off, indent))
}

mod spans;
use spans::{encode, fit, Span};

/// How an edit goes: the document, the YAML tokens mirrorctl owned before, and whether the
/// BuildKit planner left mirrorctl nothing (a disarm, or a string that already had it all).
struct Edit<'a> {
    doc: &'a Doc<'a>,
    yaml_prev: &'a [String],
    disarming: bool,
}

impl Edit<'_> {
    fn had(&self, tok: &str) -> bool {
        self.yaml_prev.iter().any(|t| t == tok)
    }

    fn prev_value(&self, prefix: &str) -> Option<&str> {
        self.yaml_prev.iter().find_map(|t| t.strip_prefix(prefix))
    }

    /// The key is there: rewrite its value (or put back what it was, or remove it).
    fn existing(
        &self,
        e: &Entry,
        cur: &str,
        new: &str,
    ) -> Result<(String, Vec<String>), PlanError> {
        let body = &self.doc.body;
        let span = spans::value(body, e).map_err(|m| self.doc.error_at(e.key_pos.index, m))?;
        let at_eof = span.end == body.len() && !body.ends_with('\n');
        if fit(new, at_eof) == fit(cur, at_eof) {
            return Ok((body.clone(), self.yaml_prev.to_vec()));
        }
        let source = body.get(span.start..span.end).unwrap_or("");
        if self.disarming {
            if let Some((was, orig)) = self.prev_value(T_ORIG).and_then(spans::decode) {
                if fit(&was, at_eof) == fit(new, at_eof) {
                    let text = splice(body, &span, orig);
                    self.check(&text, Some(&was), at_eof)?;
                    return Ok((text, Vec::new()));
                }
            }
            if self.had(T_KEY) && new.trim().is_empty() {
                return Ok((self.remove_key(&span, e)?, Vec::new()));
            }
        }
        let step = self.doc.scan.step.unwrap_or(4);
        let written = encode(new, &span, at_eof, step)
            .map_err(|m| self.doc.error_at(e.value_pos.index, m))?;
        let text = splice(body, &span, &written);
        self.check(&text, Some(&fit(new, at_eof)), at_eof)?;
        let mut owned = self.yaml_prev.to_vec();
        if !self.had(T_KEY) && self.prev_value(T_ORIG).is_none() {
            owned.push(format!("{T_ORIG}{}:{source}", e.key_pos.col));
        }
        Ok((text, owned))
    }

    /// The key is not there: add it as `global`'s first key (and `global` when missing).
    fn insert(&self, new: &str) -> Result<(String, Vec<String>), PlanError> {
        let doc = self.doc;
        let body = &doc.body;
        let step = doc.scan.step.unwrap_or(4).clamp(1, 9);
        let mut owned = vec![T_KEY.to_string()];
        let text = match doc.scan.global() {
            Some(g) => match (&g.value, doc.scan.global_entries.first()) {
                (Value::Map { flow: false }, Some(first)) => {
                    let gcol = g.key_pos.col;
                    let step = first.key_pos.col.saturating_sub(gcol).clamp(1, 9);
                    let line = line_start(body, first.key_pos.index);
                    let block = key_block(first.key_pos.col, step, new);
                    join_at(body, line, line, &block)
                }
                (Value::Scalar { .. }, _) => {
                    let span = spans::value(body, g)
                        .map_err(|m| doc.error_at(g.key_pos.index, m))?;
                    let src = body.get(span.start..span.end).unwrap_or("");
                    owned.push(format!("{T_GNULL}{src}"));
                    let block = key_block(g.key_pos.col + step, step, new);
                    let block = format!("{}\n{}", span.comment, block.trim_end_matches('\n'));
                    join_at(body, span.start, span.end, &block)
                }
                _ => {
                    return Err(doc.error_at(
                        g.value_pos.index,
                        "`global` is a flow mapping (`{…}`); write it in block style (one key per line), then rerun",
                    ))
                }
            },
            None => {
                owned.push(T_GLOBAL.to_string());
                self.insert_global(new, step, &mut owned)?
            }
        };
        self.check(&text, Some(new), false)?;
        Ok((text, owned))
    }

    /// Add `global:` with the key: before the first top-level key, or at the end of a file
    /// with none.
    fn insert_global(
        &self,
        new: &str,
        step: usize,
        owned: &mut Vec<String>,
    ) -> Result<String, PlanError> {
        let doc = self.doc;
        let body = &doc.body;
        let block = |col: usize| {
            format!(
                "{}global:\n{}",
                " ".repeat(col),
                key_block(col + step, step, new)
            )
        };
        match (&doc.scan.root, doc.scan.root_entries.first()) {
            (Some((Value::Map { flow: false }, _)), Some(first)) => {
                let line = line_start(body, first.key_pos.index);
                Ok(join_at(body, line, line, &block(first.key_pos.col)))
            }
            (None, _) | (Some((Value::Scalar { .. }, _)), _) => {
                let mut text = body.clone();
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                    owned.push(T_EOFNL.to_string());
                }
                text.push_str(&block(0));
                Ok(text)
            }
            (Some((_, p)), _) => Err(doc.error_at(
                p.index,
                "the config is a flow mapping (`{…}`); write it in block style (one key per line), then rerun",
            )),
        }
    }

    /// Take out the key mirrorctl added (with `global:` when mirrorctl added that too).
    fn remove_key(&self, span: &Span, e: &Entry) -> Result<String, PlanError> {
        let body = &self.doc.body;
        let from = line_start(body, e.key_pos.index);
        let to = match body.get(span.end..).and_then(|r| r.find('\n')) {
            Some(n) => span.end + n + 1,
            None => body.len(),
        };
        let mut text = join_at(body, from, to, "");
        let again = Doc::read(&text)?;
        if let Some(g) = again.scan.global() {
            let empty = again.scan.global_entries.is_empty();
            if empty && (self.had(T_GLOBAL) || self.prev_value(T_GNULL).is_some()) {
                let gspan =
                    spans::value(&again.body, g).map_err(|m| again.error_at(g.key_pos.index, m))?;
                text = match self.prev_value(T_GNULL) {
                    Some(src) => splice(&again.body, &gspan, src),
                    None => {
                        let from = line_start(&again.body, g.key_pos.index);
                        let to = match again.body.get(gspan.end..).and_then(|r| r.find('\n')) {
                            Some(n) => gspan.end + n + 1,
                            None => again.body.len(),
                        };
                        join_at(&again.body, from, to, "")
                    }
                };
                if self.had(T_EOFNL) && text.ends_with('\n') {
                    text.pop();
                }
            }
        }
        self.check(&text, None, false)?;
        Ok(text)
    }

    /// The edited text must parse, hold the same data as before apart from the key (and a
    /// `global` that is empty), and the key must read as `want` (`None`: absent).
    fn check(&self, text: &str, want: Option<&str>, at_eof: bool) -> Result<(), PlanError> {
        let fail = |why: &str| {
            PlanError::whole(format!(
                "mirrorctl could not write `global.{KEY}` into this file safely ({why}); please report it, with the file"
            ))
        };
        let tree = YamlLoader::load_from_str(text)
            .map_err(|e| fail(&format!("the result does not parse: {}", e.info())))?
            .into_iter()
            .next();
        if strip(self.doc.tree.clone()) != strip(tree.clone()) {
            return Err(fail("other keys would change"));
        }
        let got = tree.as_ref().and_then(|t| match &t["global"][KEY] {
            Yaml::String(s) => Some(s.clone()),
            Yaml::BadValue | Yaml::Null => None,
            other => Some(format!("{other:?}")),
        });
        let want = want.map(|w| fit(w, at_eof)).filter(|w| !w.is_empty());
        let got = got.filter(|g| !fit(g, at_eof).is_empty());
        let ok = match (&got, &want) {
            (None, None) => true,
            (Some(g), Some(w)) => fit(g, at_eof) == *w,
            _ => false,
        };
        if !ok {
            return Err(fail("the string would read back differently"));
        }
        Ok(())
    }
}

/// The tree without `global.buildkit_additional_config`, and without a `global` left empty.
fn strip(tree: Option<Yaml>) -> Option<Yaml> {
    let mut tree = tree?;
    if let Yaml::Hash(root) = &mut tree {
        let g = Yaml::String("global".into());
        let empty = match root.get_mut(&g) {
            Some(Yaml::Hash(h)) => {
                h.remove(&Yaml::String(KEY.into()));
                h.is_empty()
            }
            Some(Yaml::Null) => true,
            _ => false,
        };
        if empty {
            root.remove(&g);
        }
        if root.is_empty() {
            return None;
        }
    }
    match tree {
        Yaml::Null => None,
        t => Some(unordered(t)),
    }
}

/// Mappings compared as sets of entries: sorted by key.
fn unordered(y: Yaml) -> Yaml {
    match y {
        Yaml::Hash(h) => {
            let mut v: Vec<(Yaml, Yaml)> = h.into_iter().map(|(k, v)| (k, unordered(v))).collect();
            v.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            Yaml::Hash(v.into_iter().collect())
        }
        Yaml::Array(a) => Yaml::Array(a.into_iter().map(unordered).collect()),
        other => other,
    }
}

fn splice(body: &str, span: &Span, with: &str) -> String {
    join_at(body, span.start, span.end, with)
}

/// `body` with `from..to` replaced by `with` (offsets from the scan: on character boundaries;
/// one that is not leaves the text as it is, which the final check then refuses).
fn join_at(body: &str, from: usize, to: usize, with: &str) -> String {
    match (body.get(..from), body.get(to..)) {
        (Some(a), Some(b)) if from <= to => format!("{a}{with}{b}"),
        _ => body.to_string(),
    }
}

/// The offset where the line holding `at` starts.
fn line_start(body: &str, at: usize) -> usize {
    body.get(..at)
        .and_then(|b| b.rfind('\n'))
        .map_or(0, |n| n + 1)
}

/// `<indent>buildkit_additional_config: |` and the string's lines, each line ending in `\n`.
fn key_block(col: usize, step: usize, toml: &str) -> String {
    let indent = " ".repeat(col + step);
    let mut out = format!("{}{KEY}: |\n", " ".repeat(col));
    for l in toml.trim_end().split('\n') {
        if !l.is_empty() {
            out.push_str(&indent);
            out.push_str(l);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
