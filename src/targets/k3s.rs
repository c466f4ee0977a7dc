//! k3s and rke2: `/etc/rancher/{k3s,rke2}/registries.yaml`, `mirrors.<registry>.endpoint`
//! (full URLs, mirrorctl's first) and `configs."<host:port>".tls.insecure_skip_verify: true`
//! for `--insecure` https mirrors.
//!
//! The file is validated strictly with `yaml-rust2` (a YAML 1.2 parser with line/column errors),
//! then edited with `yaml-edit`, a lossless (rowan) syntax tree: the user's other mirrors,
//! `configs` (auth, tls), `rewrite` rules, comments, quoting and indentation stay as written.
//! `yaml-edit` recovers from syntax errors instead of reporting them, hence the strict parse
//! first. Top-level keys mirrorctl adds to a block-style (or empty) document are appended as
//! text, so they always come out in block style.

use super::text::{original_offset, reframe, unframe, Framing};
use super::Planned;
use crate::error::PlanError;
use crate::mirror::{Mirror, MirrorSet};
use yaml_edit::{Document, Mapping, MappingBuilder, ScalarValue, SequenceBuilder};
use yaml_rust2::{Yaml, YamlLoader};

pub const K3S_DIR: &str = "/etc/rancher/k3s";
pub const RKE2_DIR: &str = "/etc/rancher/rke2";
pub const K3S_YAML: &str = "/etc/rancher/k3s/registries.yaml";
pub const RKE2_YAML: &str = "/etc/rancher/rke2/registries.yaml";

/// A k3s-family distribution: where its registries.yaml lives, what shows it is installed, and
/// the systemd unit that must restart to read the file.
#[derive(Debug, PartialEq, Eq)]
pub struct Distro {
    pub name: &'static str,
    pub dir: &'static str,
    pub yaml: &'static str,
    pub binaries: [&'static str; 2],
    /// The server unit (agents use `k3s-agent` / `rke2-agent`).
    pub unit: &'static str,
}

pub const DISTROS: [Distro; 2] = [
    Distro {
        name: "k3s",
        dir: K3S_DIR,
        yaml: K3S_YAML,
        binaries: ["/usr/local/bin/k3s", "/usr/bin/k3s"],
        unit: "k3s",
    },
    Distro {
        name: "rke2",
        dir: RKE2_DIR,
        yaml: RKE2_YAML,
        binaries: ["/usr/local/bin/rke2", "/usr/bin/rke2"],
        unit: "rke2-server",
    },
];

/// The distribution whose file `path` is (k3s for anything not under rke2's directory).
pub fn distro_of(path: &str) -> &'static Distro {
    DISTROS
        .iter()
        .find(|d| path.starts_with(&format!("{}/", d.dir)))
        .unwrap_or(&DISTROS[0])
}

/// The registries.yaml files to write: those of the distributions whose directory or binary
/// exists, k3s's alone when none does (the target was named explicitly).
pub fn files(exists: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut out: Vec<String> = DISTROS
        .iter()
        .filter(|d| exists(d.dir) || d.binaries.iter().any(|b| exists(b)))
        .map(|d| d.yaml.to_string())
        .collect();
    if out.is_empty() {
        out.push(K3S_YAML.to_string());
    }
    out
}

fn tok_key(k: &str) -> String {
    format!("key:{k}")
}
fn tok_registry(r: &str) -> String {
    format!("mirror:{r}")
}
fn tok_endpoint(r: &str, url: &str) -> String {
    format!("endpoint:{r}={url}")
}
fn tok_config(hp: &str) -> String {
    format!("config:{hp}")
}
fn tok_tls(hp: &str) -> String {
    format!("tls:{hp}")
}
fn tok_skip(hp: &str) -> String {
    format!("skip:{hp}")
}

/// An endpoint normalised for comparison: the origin as [`Mirror::origin`], the path kept
/// (k3s reads `https://h/dh` and `https://h/v2/dh` differently: only the second is a Harbor
/// project's `/v2/dh/…`).
fn norm_endpoint(s: &str) -> String {
    let t = s.trim().trim_end_matches('/');
    let (origin, path) = match t.split_once("://") {
        Some((scheme, rest)) => {
            let at = rest.find('/').unwrap_or(rest.len());
            let (host, path) = rest.split_at(at);
            (format!("{scheme}://{host}"), path)
        }
        None => (t.to_string(), ""),
    };
    match Mirror::parse_lenient(&origin) {
        Some(m) => format!("{}{path}", m.origin()),
        None => t.to_string(),
    }
}

/// Whether the text holds nothing but comments and blank lines.
fn is_blank(body: &str) -> bool {
    body.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

fn at_key(original: &str, key: &str, message: String) -> PlanError {
    let at = original.find(&format!("{key}:")).unwrap_or(0);
    PlanError::at_offset(original, at, message)
}

/// A refusal for a state the planner's own checks rule out: a bug to report, not a crash.
fn internal(what: &str) -> PlanError {
    PlanError::whole(format!("internal error: {what}, please report"))
}

/// Split `text` at byte `at`, which a scan of the text found at a line start (an internal
/// error, not a panic, should it not be a character boundary).
fn split_at_line(text: &str, at: usize) -> Result<(&str, &str), PlanError> {
    text.split_at_checked(at)
        .ok_or_else(|| internal("a line start of registries.yaml is not a character boundary"))
}

/// Strict parse and the shape checks k3s applies (it refuses to start otherwise).
fn validate(original: &str, framing: Framing, body: &str) -> Result<(), PlanError> {
    refuse_odd_characters(original, framing, body)?;
    if is_blank(body) {
        return Ok(());
    }
    refuse_tab_before_first_key(original, framing, body)?;
    let docs = YamlLoader::load_from_str(body).map_err(|e| {
        // From the byte offset, not yaml-rust2's line: it also counts a lone `\r` as a line
        // break, and knows nothing of the BOM and CRLF taken off the body.
        let at = original_offset(original, framing, e.marker().index());
        PlanError::at_offset(original, at, format!("invalid YAML: {}", e.info()))
    })?;
    if docs.len() > 1 {
        return Err(PlanError::whole(
            "registries.yaml holds several YAML documents; k3s reads one",
        ));
    }
    refuse_leading_end_marker(original, framing, body)?;
    // No document at all: only comments and document end markers (`...`).
    let Some(root) = docs.first() else {
        return Ok(());
    };
    check_shape(original, root)
}

/// Refuse characters the YAML parsers disagree on or refuse: yaml-rust2 ends the input at a
/// NUL (what follows vanished), reads NEL and the Unicode line and paragraph separators as
/// YAML 1.2 does (not line breaks) where k3s's YAML 1.1 parser breaks lines at them, and
/// takes a BOM at a line start for indentation, which yaml-edit does not.
fn refuse_odd_characters(original: &str, framing: Framing, body: &str) -> Result<(), PlanError> {
    let lone_cr = |i: usize| body.as_bytes().get(i + 1) != Some(&b'\n');
    let Some((at, c)) = body.char_indices().find(|&(i, c)| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r'))
            || (c == '\r' && lone_cr(i))
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
            )
    }) else {
        return Ok(());
    };
    let why = match c {
        '\u{85}' | '\u{2028}' | '\u{2029}' => {
            "a line break to YAML 1.1 parsers (k3s's) and not to YAML 1.2 ones; write a plain line break"
        }
        '\u{feff}' => "a byte order mark inside the file; remove it",
        // A line break to YAML, not to the line-based steps of the edit (document markers,
        // indentation).
        '\r' => "a carriage return without a line feed (an old Mac line break); use \\n or \\r\\n",
        _ => "a control character, which YAML does not allow",
    };
    let at = original_offset(original, framing, at);
    Err(PlanError::at_offset(
        original,
        at,
        format!("invalid YAML: U+{:04X} is {why}", c as u32),
    ))
}

/// Refuse a tab before the first key (`  \tkey:`): yaml-rust2 lets it through, libyaml (k3s)
/// refuses it, and the keys mirrorctl appends at that key's indentation would not line up.
fn refuse_tab_before_first_key(
    original: &str,
    framing: Framing,
    body: &str,
) -> Result<(), PlanError> {
    let Some((off, line)) = first_content_line(body) else {
        return Ok(());
    };
    let ws = line
        .strip_suffix(line.trim_start_matches([' ', '\t']))
        .unwrap_or_default();
    match ws.find('\t') {
        Some(tab) => Err(PlanError::at_offset(
            original,
            original_offset(original, framing, off + tab),
            "invalid YAML: a tab before the first key (YAML indents with spaces only)",
        )),
        None => Ok(()),
    }
}

/// Refuse content after a document end marker that ends no document (`...` first):
/// yaml-rust2 reads it as the document, k3s's parser (libyaml) an empty first document then
/// another, which k3s never reads.
fn refuse_leading_end_marker(
    original: &str,
    framing: Framing,
    body: &str,
) -> Result<(), PlanError> {
    let Some(at) = end_marker(body) else {
        return Ok(());
    };
    let (before, from_marker) = split_at_line(body, at)?;
    let after = from_marker.split_once('\n').map(|(_, r)| r).unwrap_or("");
    if is_blank(before) && !is_blank(after) {
        return Err(PlanError::at_offset(
            original,
            original_offset(original, framing, at),
            "the file starts with a document end marker (`...`): k3s reads the (empty) document it ends and ignores what follows. Remove the marker, then rerun",
        ));
    }
    Ok(())
}

/// The shape k3s needs: a mapping (or nothing), whose `mirrors` and `configs` are mappings,
/// and whose registry entries hold a list of URLs as `endpoint`.
fn check_shape(original: &str, root: &Yaml) -> Result<(), PlanError> {
    let Yaml::Hash(h) = root else {
        if matches!(root, Yaml::Null) {
            return Ok(());
        }
        return Err(PlanError::new(
            1,
            1,
            "registries.yaml must be a mapping (`mirrors:` / `configs:`)",
        ));
    };
    for (key, what) in [("mirrors", "registry names"), ("configs", "host:port")] {
        match h.get(&Yaml::String(key.into())) {
            None | Some(Yaml::Null) | Some(Yaml::Hash(_)) => {}
            Some(_) => {
                return Err(at_key(
                    original,
                    key,
                    format!("`{key}` must be a mapping keyed by {what}"),
                ))
            }
        }
    }
    let Some(Yaml::Hash(m)) = h.get(&Yaml::String("mirrors".into())) else {
        return Ok(());
    };
    for (reg, v) in m {
        let name = reg.as_str().unwrap_or("?");
        let ok = match v {
            Yaml::Null => true,
            Yaml::Hash(r) => match r.get(&Yaml::String("endpoint".into())) {
                None | Some(Yaml::Null) => true,
                Some(Yaml::Array(a)) => a.iter().all(|e| e.as_str().is_some()),
                Some(_) => false,
            },
            _ => false,
        };
        if !ok {
            return Err(at_key(
                original,
                name,
                format!("`mirrors.{name}` must be a mapping whose `endpoint` is a list of URLs"),
            ));
        }
    }
    Ok(())
}

/// Plan registries.yaml for `set`.
pub fn plan(current: Option<&str>, set: &MirrorSet, prev: &[String]) -> Result<Planned, PlanError> {
    let original = current.unwrap_or("");
    let (framing, body) = unframe(original);
    validate(original, framing, &body)?;
    // In a file with mixed line ends (unframe converts only CRLF throughout), yaml-edit would
    // edit around `\r\n` pairs and could split one, leaving a lone CR: the edit works on LF
    // text, and the lines it keeps get their line ends back at the end (keep_line_ends).
    let mixed = body.clone();
    let body = body.replace("\r\n", "\n");
    // A document end marker (`...`) and what follows it (comments, more markers) are kept aside
    // and put back after the edit: yaml-edit refuses the marker, and keys appended after it
    // would be another document, which k3s never reads.
    let (body, tail) = match end_marker(&body) {
        Some(at) => split_at_line(&body, at)?,
        None => (body.as_str(), ""),
    };
    let mut plan = Plan::new(set, prev);

    let mut text = body.to_string();
    let doc = parse_edit(&text)?;
    refuse_keys_read_differently(&text, doc.as_ref(), original)?;
    let block_root = doc
        .as_ref()
        .and_then(|d| d.as_mapping())
        .map(|m| !m.is_flow_style())
        .unwrap_or(true);
    // Missing top-level keys in an empty or block-style document: appended as text.
    let appended = match block_root {
        true => plan.append_top_level_keys(&mut text, doc.as_ref(), original)?,
        false => Appended::default(),
    };
    let Some(doc) = parse_edit(&text)? else {
        // Nothing wanted and nothing there.
        return Ok(Planned {
            text: original.to_string(),
            owned: plan.owned,
        });
    };
    let Some(root) = doc.as_mapping() else {
        return Err(PlanError::new(1, 1, "registries.yaml must be a mapping"));
    };
    if !appended.mirrors {
        plan.edit_mirrors(&root);
    }
    if !appended.configs {
        plan.edit_configs(&root);
    }

    let mut out = doc.to_string();
    if root.is_empty() && block_root {
        // Everything mirrorctl added is gone: no `{}` for a document that had none.
        out = out
            .split_inclusive('\n')
            .filter(|l| l.trim() != "{}")
            .collect();
    }
    let mut out = final_newline_as_before(out, body, current.is_none(), tail.is_empty());
    check_result(&out, &plan.want)?;
    out.push_str(tail);
    let out = super::text::keep_line_ends(&mixed, &out);
    let mut owned = plan.owned;
    owned.sort();
    owned.dedup();
    Ok(Planned {
        text: reframe(framing, &out),
        owned,
    })
}

/// The edited text's final newline: one for a new file or one that ended with one; none for a
/// file without one (when no end marker follows): keys appended to it end the text with one,
/// which disarm, removing them, could not tell from the user's.
fn final_newline_as_before(mut out: String, body: &str, new_file: bool, no_tail: bool) -> String {
    if !out.is_empty() && !out.ends_with('\n') && (new_file || body.ends_with('\n')) {
        out.push('\n');
    }
    if no_tail && !body.is_empty() && !body.ends_with('\n') && out.ends_with('\n') {
        out.pop();
    }
    out
}

/// Refuse a top-level `mirrors` or `configs` key the two parsers read differently: they must
/// agree on the keys mirrorctl edits. With a tag (`!x mirrors:`) yaml-rust2 (and k3s) reads
/// `mirrors`, yaml-edit does not, and the key was added again.
fn refuse_keys_read_differently(
    text: &str,
    doc: Option<&Document>,
    original: &str,
) -> Result<(), PlanError> {
    if is_blank(text) {
        return Ok(());
    }
    let strict = YamlLoader::load_from_str(text).ok();
    let root = strict.as_ref().and_then(|d| d.first());
    for k in ["mirrors", "configs"] {
        let a = root.is_some_and(|r| !r[k].is_badvalue());
        let b = doc
            .and_then(|d| d.as_mapping())
            .is_some_and(|m| m.contains_key(k));
        if a != b {
            return Err(at_key(
                original,
                k,
                format!("the top-level `{k}` is written in a way (a tag, say) mirrorctl's editor does not read as `{k}`; write it as a plain `{k}:`, then rerun"),
            ));
        }
    }
    Ok(())
}

/// Whether the top-level `k` has no value (`mirrors:`, `~`, `null`).
fn null_key(doc: Option<&Document>, k: &str) -> bool {
    doc.and_then(|d| d.as_mapping())
        .and_then(|m| m.get(k))
        .and_then(|v| v.as_scalar().map(|s| s.as_string()))
        .is_some_and(|v| matches!(v.trim(), "" | "~" | "null" | "Null" | "NULL"))
}

/// Whether the document has the top-level `k` with a value (a key with none counts as
/// missing: it is dropped before the key is appended with content).
fn has_key(doc: Option<&Document>, k: &str) -> bool {
    doc.and_then(|d| d.as_mapping())
        .is_some_and(|m| m.contains_key(k))
        && !null_key(doc, k)
}

/// Which top-level keys were appended to the text whole (and need no edit).
#[derive(Default)]
struct Appended {
    mirrors: bool,
    configs: bool,
}

/// The plan for one registries.yaml: what it should hold, what mirrorctl owned before, and
/// the tokens it owns now.
struct Plan<'a> {
    /// Registry → endpoint URLs, mirrorctl's first.
    want: Vec<(String, Vec<String>)>,
    /// The host:port of every insecure https mirror, for a `configs` entry skipping TLS
    /// verification.
    skip: Vec<String>,
    prev: &'a [String],
    owned: Vec<String>,
}

impl<'a> Plan<'a> {
    /// What `set` wants: registry → endpoint URLs; insecure https mirrors → configs entries.
    fn new(set: &MirrorSet, prev: &'a [String]) -> Plan<'a> {
        let want = set
            .registries
            .iter()
            .map(|r| {
                (
                    r.registry.clone(),
                    r.mirrors.iter().map(|m| m.v2_url()).collect(),
                )
            })
            .collect();
        let mut skip: Vec<String> = Vec::new();
        for m in set.all_mirrors() {
            if !m.is_http() && set.insecure && !skip.contains(&m.host_port()) {
                skip.push(m.host_port());
            }
        }
        Plan {
            want,
            skip,
            prev,
            owned: Vec::new(),
        }
    }

    /// In an empty or block-style document, append the top-level keys it is missing as text,
    /// at the indentation of its other top-level keys (a wanted key without a value is dropped
    /// first). Says which keys were appended.
    fn append_top_level_keys(
        &mut self,
        text: &mut String,
        doc: Option<&Document>,
        original: &str,
    ) -> Result<Appended, PlanError> {
        let indent = root_indent(text).to_string();
        *text = self.drop_null_keys(text, doc, &indent, original)?;
        let mut add = String::new();
        let mut appended = Appended::default();
        if !self.want.is_empty() && !has_key(doc, "mirrors") {
            add.push_str(&self.mirrors_block());
            appended.mirrors = true;
        }
        if !self.skip.is_empty() && !has_key(doc, "configs") {
            add.push_str(&self.configs_block());
            appended.configs = true;
        }
        if add.is_empty() {
            return Ok(appended);
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for line in add.split_inclusive('\n') {
            text.push_str(&indent);
            text.push_str(line);
        }
        refuse_unlanded_keys(text, &appended)?;
        Ok(appended)
    }

    /// The text without the lines of the wanted top-level keys that have no value.
    fn drop_null_keys(
        &self,
        text: &str,
        doc: Option<&Document>,
        indent: &str,
        original: &str,
    ) -> Result<String, PlanError> {
        let drop = [
            ("mirrors", !self.want.is_empty()),
            ("configs", !self.skip.is_empty()),
        ]
        .into_iter()
        .filter(|(k, wanted)| *wanted && null_key(doc, k))
        .map(|(k, _)| k);
        let mut text = text.to_string();
        for k in drop {
            text = drop_null_key_line(&text, k, indent);
            // Written so that the line was not found (`&a mirrors:`, `!!null`…): the key would
            // be added a second time.
            let still = parse_edit(&text)?
                .and_then(|d| d.as_mapping())
                .is_some_and(|m| m.contains_key(k));
            if still {
                return Err(at_key(
                    original,
                    k,
                    format!("the top-level `{k}` has no value and is written in a way mirrorctl does not replace (an anchor, a tag or a flow key); write it as a plain `{k}:` line or remove it, then rerun"),
                ));
            }
        }
        Ok(text)
    }

    /// The `mirrors:` block listing every wanted registry's endpoints (all owned).
    fn mirrors_block(&mut self) -> String {
        let mut add = String::from("mirrors:\n");
        self.owned.push(tok_key("mirrors"));
        for (reg, eps) in &self.want {
            add.push_str(&format!("  {}:\n    endpoint:\n", quote(reg)));
            self.owned.push(tok_registry(reg));
            for e in eps {
                add.push_str(&format!("      - {}\n", quote(e)));
                self.owned.push(tok_endpoint(reg, e));
            }
        }
        add
    }

    /// The `configs:` block skipping TLS verification for every insecure https mirror (all
    /// owned).
    fn configs_block(&mut self) -> String {
        let mut add = String::from("configs:\n");
        self.owned.push(tok_key("configs"));
        for hp in &self.skip {
            add.push_str(&format!(
                "  {}:\n    tls:\n      insecure_skip_verify: true\n",
                quote(hp)
            ));
            self.owned.push(tok_config(hp));
        }
        add
    }

    /// `mirrors`: registries mirrorctl added before and no longer wants removed, the wanted
    /// endpoints first in the user's entries, and new entries for the other wanted registries;
    /// the key itself removed again when mirrorctl created it and it is empty.
    fn edit_mirrors(&mut self, root: &Mapping) {
        let wanted = !self.want.is_empty();
        let Some(mirrors) = ensure_mapping(root, "mirrors", wanted, self.prev, &mut self.owned)
        else {
            return;
        };
        let names = scalar_keys(&mirrors);
        for name in &names {
            self.edit_registry(&mirrors, name);
        }
        for (reg, eps) in &self.want {
            if !names.contains(reg) {
                set_registry(&mirrors, reg, eps, &mut self.owned);
            }
        }
        if mirrors.is_empty() && self.prev.contains(&tok_key("mirrors")) {
            root.remove("mirrors");
            self.owned.retain(|t| *t != tok_key("mirrors"));
        }
    }

    /// A registry entry under `mirrors`: a wanted one without a value gets an endpoint list
    /// (and becomes mirrorctl's); in one with a mapping the endpoints are edited, and an entry
    /// mirrorctl created goes once nothing of it is wanted or left.
    fn edit_registry(&mut self, mirrors: &Mapping, name: &str) {
        let wanted = self
            .want
            .iter()
            .find(|(r, _)| r == name)
            .map(|(_, eps)| eps.clone());
        let Some(reg) = mirrors.get_mapping(name) else {
            if let Some(eps) = wanted {
                // `docker.io:` with no value: give it an endpoint list. The entry had no value:
                // it is mirrorctl's now, and goes on disarm.
                set_registry(mirrors, name, &eps, &mut self.owned);
            }
            return;
        };
        let eps = wanted.as_deref().unwrap_or(&[]);
        self.edit_endpoints(&reg, name, eps);
        let created = self.prev.contains(&tok_registry(name));
        let empty = reg
            .get_sequence("endpoint")
            .map(|s| s.is_empty())
            .unwrap_or(true);
        if created && wanted.is_none() && empty {
            mirrors.remove(name);
        } else if created {
            self.owned.push(tok_registry(name));
        }
    }

    /// `configs`: entries mirrorctl added before and no longer wants removed, TLS
    /// verification skipped in the user's entries for the insecure https mirrors, and new
    /// entries for the others; the key itself removed again when mirrorctl created it and it
    /// is empty.
    fn edit_configs(&mut self, root: &Mapping) {
        let wanted = !self.skip.is_empty();
        let Some(configs) = ensure_mapping(root, "configs", wanted, self.prev, &mut self.owned)
        else {
            return;
        };
        let names = scalar_keys(&configs);
        for hp in &names {
            self.edit_config(&configs, hp);
        }
        for hp in &self.skip {
            if names.contains(hp) {
                continue;
            }
            configs.set(
                ScalarValue::double_quoted(hp.as_str()),
                MappingBuilder::new()
                    .mapping("tls", |t| t.pair("insecure_skip_verify", true))
                    .build_document(),
            );
            self.owned.push(tok_config(hp));
        }
        if configs.is_empty() && self.prev.contains(&tok_key("configs")) {
            root.remove("configs");
            self.owned.retain(|t| *t != tok_key("configs"));
        }
    }

    /// The `configs` entry for `hp`: mirrorctl's own entry kept while wanted, else removed;
    /// in the user's, the `tls` part edited (see [`Plan::edit_tls`]).
    fn edit_config(&mut self, configs: &Mapping, hp: &str) {
        let wanted = self.skip.iter().any(|s| s == hp);
        if self.prev.contains(&tok_config(hp)) {
            if wanted {
                self.owned.push(tok_config(hp));
            } else {
                configs.remove(hp);
            }
            return;
        }
        if let Some(entry) = configs.get_mapping(hp) {
            self.edit_tls(&entry, hp, wanted);
        }
    }

    /// The `tls` part of the user's `configs` entry for `hp`: what mirrorctl added (the whole
    /// `tls`, or `insecure_skip_verify` in the user's) stays while wanted and goes when not;
    /// when wanted and not set by the user, `insecure_skip_verify: true` is added.
    fn edit_tls(&mut self, entry: &Mapping, hp: &str, wanted: bool) {
        let prev = self.prev;
        match entry.get_mapping("tls") {
            Some(tls) => {
                if prev.contains(&tok_tls(hp)) && !wanted {
                    entry.remove("tls");
                } else if prev.contains(&tok_tls(hp)) {
                    self.owned.push(tok_tls(hp));
                } else if prev.contains(&tok_skip(hp)) && !wanted {
                    tls.remove("insecure_skip_verify");
                } else if prev.contains(&tok_skip(hp)) {
                    self.owned.push(tok_skip(hp));
                } else if wanted && !tls.contains_key("insecure_skip_verify") {
                    tls.set("insecure_skip_verify", true);
                    self.owned.push(tok_skip(hp));
                }
            }
            None if wanted => {
                entry.set(
                    "tls",
                    MappingBuilder::new()
                        .pair("insecure_skip_verify", true)
                        .build_document(),
                );
                self.owned.push(tok_tls(hp));
            }
            None => {}
        }
    }

    /// `endpoint`: `eps` first, in order; endpoints mirrorctl added before and no longer wants
    /// removed; the user's endpoints kept.
    fn edit_endpoints(&mut self, reg: &Mapping, name: &str, eps: &[String]) {
        let prev = self.prev;
        // An `endpoint` key mirrorctl added to the user's registry entry is its own: owned, and
        // removed again once empty (else `endpoint: []` stayed behind).
        let key_tok = format!("endpoint-key:{name}");
        let Some(seq_node) = reg.get_sequence("endpoint") else {
            if eps.is_empty() {
                return;
            }
            reg.set("endpoint", seq(eps).build_document());
            for e in eps {
                self.owned.push(tok_endpoint(name, e));
            }
            self.owned.push(key_tok);
            return;
        };
        if prev.contains(&key_tok) {
            let only_ours = seq_node.values().all(|v| {
                let n = norm_endpoint(&v.as_scalar().map(|s| s.as_string()).unwrap_or_default());
                prev.contains(&tok_endpoint(name, &n)) && !eps.contains(&n)
            });
            if eps.is_empty() && only_ours {
                reg.remove("endpoint");
                return;
            }
            self.owned.push(key_tok);
        }
        let current: Vec<String> = seq_node
            .values()
            .map(|v| v.as_scalar().map(|s| s.as_string()).unwrap_or_default())
            .collect();
        let norm: Vec<String> = current.iter().map(|c| norm_endpoint(c)).collect();
        let stale = |n: &str| !eps.iter().any(|e| e == n) && prev.contains(&tok_endpoint(name, n));
        for e in eps {
            let users = norm.iter().any(|n| n == e) && !prev.contains(&tok_endpoint(name, e));
            if !users {
                self.owned.push(tok_endpoint(name, e));
            }
        }
        if norm.starts_with(eps) && !norm.iter().any(|n| stale(n)) {
            return;
        }
        // Remove wanted and stale entries (from the back), then insert the wanted ones in front,
        // a user's own entry as the user spelled it (`http://h:007`, say, which is `http://h:7`):
        // it stays the user's, and disarm leaves it so.
        let spelled = |e: &String| -> String {
            norm.iter()
                .zip(&current)
                .find(|(n, _)| *n == e && !prev.contains(&tok_endpoint(name, e)))
                .map(|(_, c)| c.clone())
                .unwrap_or_else(|| e.clone())
        };
        let insert: Vec<String> = eps.iter().map(spelled).collect();
        for (i, n) in norm.iter().enumerate().rev() {
            if eps.contains(n) || stale(n) {
                seq_node.remove(i);
            }
        }
        for (i, e) in insert.iter().enumerate() {
            seq_node.insert(i, ScalarValue::double_quoted(e.as_str()));
        }
    }
}

/// Set the registry entry `name` under `mirrors` to a list of the endpoints `eps` (entry and
/// endpoints owned).
fn set_registry(mirrors: &Mapping, name: &str, eps: &[String], owned: &mut Vec<String>) {
    mirrors.set(
        ScalarValue::double_quoted(name),
        MappingBuilder::new()
            .insert_sequence("endpoint", seq(eps))
            .build_document(),
    );
    owned.push(tok_registry(name));
    for e in eps {
        owned.push(tok_endpoint(name, e));
    }
}

/// The keys of a mapping that are scalars, as strings.
fn scalar_keys(m: &Mapping) -> Vec<String> {
    m.keys()
        .filter_map(|k| k.as_scalar().map(|s| s.as_string()))
        .collect()
}

/// The keys must have landed at the top level, in the one document: a layout that defeats
/// that (a first line holding only a tag, `  !!map`) is refused rather than written broken.
fn refuse_unlanded_keys(text: &str, appended: &Appended) -> Result<(), PlanError> {
    let landed = YamlLoader::load_from_str(text).is_ok_and(|d| match d.as_slice() {
        [doc] => {
            (!appended.mirrors || !doc["mirrors"].is_badvalue())
                && (!appended.configs || !doc["configs"].is_badvalue())
        }
        _ => false,
    });
    if landed {
        return Ok(());
    }
    Err(PlanError::whole(
        "mirrorctl cannot add its top-level keys to this file as it is laid out (its first line is not a top-level key); start the file with its top-level keys, then rerun",
    ))
}

/// What the edit wrote must read, to yaml-rust2 (whose reading k3s shares where validation
/// let the file through), as one document listing every wanted endpoint under its registry.
/// yaml-edit can misread a file the strict parse accepts (an empty key, `: quay.io:`, put a
/// new registry under the wrong parent): such a file is refused rather than written wrong.
fn check_result(out: &str, want: &[(String, Vec<String>)]) -> Result<(), PlanError> {
    if is_blank(out) {
        return if want.is_empty() {
            Ok(())
        } else {
            Err(PlanError::whole("mirrorctl's YAML editor lost the mirrors it added to this file; write it in plain block style, then rerun"))
        };
    }
    let docs = YamlLoader::load_from_str(out);
    let misread = |what: String| {
        PlanError::whole(format!(
            "mirrorctl's YAML editor misread this file ({what} after the edit); write it in plain block style, then rerun"
        ))
    };
    let docs = docs.map_err(|e| misread(format!("invalid YAML: {}", e.info())))?;
    if docs.len() > 1 {
        return Err(misread("several documents".into()));
    }
    for (reg, eps) in want {
        let list = docs
            .first()
            .and_then(|d| d["mirrors"][reg.as_str()]["endpoint"].as_vec())
            .map(|v| {
                v.iter()
                    .filter_map(|e| e.as_str())
                    .map(norm_endpoint)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if let Some(e) = eps.iter().find(|e| !list.contains(&norm_endpoint(e))) {
            return Err(misread(format!("no endpoint {e} under mirrors.{reg}")));
        }
    }
    Ok(())
}

/// Offset of the first document end marker: a line `...` at column 0 (maybe with spaces and a
/// comment after it).
fn end_marker(text: &str) -> Option<usize> {
    let mut off = 0;
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("...") {
            let rest = rest
                .trim_start_matches([' ', '\t'])
                .trim_end_matches(['\n', '\r']);
            let sep = rest.len() < line.len() - 3 || rest.is_empty();
            if sep && (rest.is_empty() || rest.starts_with('#')) {
                return Some(off);
            }
        }
        off += line.len();
    }
    None
}

/// The first line holding content (not blank, a comment, a directive or a `---` marker),
/// with its offset. `---` is a marker only when a space or the line's end follows it
/// (`---mirrors:` is a key).
fn first_content_line(body: &str) -> Option<(usize, &str)> {
    let mut off = 0;
    for line in body.split_inclusive('\n') {
        let t = line
            .trim_start_matches([' ', '\t'])
            .trim_end_matches(['\n', '\r']);
        let marker = t
            .strip_prefix("---")
            .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']));
        if !(t.is_empty() || t.starts_with('#') || marker || t.starts_with('%')) {
            return Some((off, line));
        }
        off += line.len();
    }
    None
}

/// The indentation of the document's top-level keys: that of its first content line (a block
/// mapping may be indented as a whole).
fn root_indent(body: &str) -> &str {
    match first_content_line(body) {
        Some((_, line)) => line
            .strip_suffix(line.trim_start_matches(' '))
            .unwrap_or_default(),
        None => "",
    }
}

/// Remove the top-level line `key:` (no value, `~` or `null`, maybe a comment), written at
/// the top-level keys' `indent`.
fn drop_null_key_line(text: &str, key: &str, indent: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let rest = line
            .strip_prefix(indent)
            .filter(|l| !l.starts_with(' '))
            .and_then(|l| {
                l.strip_prefix(key)
                    .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
            })
            .and_then(|r| r.strip_prefix(':'));
        let is_null = rest.is_some_and(|r| {
            let v = r.split('#').next().unwrap_or("").trim();
            matches!(v, "" | "~" | "null" | "Null" | "NULL")
        });
        if !is_null {
            out.push_str(line);
        }
    }
    out
}

/// Parse for editing; `None` for a blank document.
fn parse_edit(text: &str) -> Result<Option<Document>, PlanError> {
    if is_blank(text) {
        return Ok(None);
    }
    use std::str::FromStr;
    Document::from_str(text)
        .map(Some)
        .map_err(|e| PlanError::whole(format!("invalid YAML: {e}")))
}

/// The mapping under `key`, created (and owned) when wanted and missing; `None` when absent and
/// not wanted. A key with a null value is given an empty mapping.
fn ensure_mapping(
    root: &Mapping,
    key: &str,
    wanted: bool,
    prev: &[String],
    owned: &mut Vec<String>,
) -> Option<Mapping> {
    if let Some(m) = root.get_mapping(key) {
        if prev.contains(&tok_key(key)) {
            owned.push(tok_key(key));
        }
        return Some(m);
    }
    if !wanted {
        return None;
    }
    root.set(key, MappingBuilder::new().build_document());
    owned.push(tok_key(key));
    root.get_mapping(key)
}

fn seq(items: &[String]) -> SequenceBuilder {
    let mut s = SequenceBuilder::new();
    for i in items {
        s = s.item(ScalarValue::double_quoted(i.as_str()));
    }
    s
}

/// Double-quote a key or value for text we append.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(urls: &[&str], insecure: bool) -> MirrorSet {
        let v: Vec<String> = urls.iter().map(|s| s.to_string()).collect();
        MirrorSet::from_args(&v, "docker.io", insecure).unwrap()
    }

    #[test]
    fn fresh_file() {
        let p = plan(None, &set(&["http://127.0.0.1:5000"], false), &[]).unwrap();
        assert_eq!(
            p.text,
            "mirrors:\n  \"docker.io\":\n    endpoint:\n      - \"http://127.0.0.1:5000\"\n"
        );
    }

    #[test]
    fn a_project_mirror_is_a_v2_endpoint() {
        let s = set(&["https://harbor.example/dh"], false);
        let p = plan(None, &s, &[]).unwrap();
        assert_eq!(
            p.text,
            "mirrors:\n  \"docker.io\":\n    endpoint:\n      - \"https://harbor.example/v2/dh\"\n"
        );
        assert_eq!(plan(Some(&p.text), &s, &p.owned).unwrap(), p);
        // The user's `https://harbor.example/dh` (k3s: `/dh/<repo>`, no /v2) is another endpoint.
        assert_ne!(
            norm_endpoint("https://harbor.example/dh"),
            norm_endpoint("https://Harbor.example:443/v2/dh/")
        );
        assert_eq!(
            norm_endpoint("https://Harbor.example:443/v2/dh/"),
            "https://harbor.example/v2/dh"
        );
    }

    #[test]
    fn refuses_bad_yaml_with_position() {
        let e = plan(
            Some("mirrors:\n  a: [\n"),
            &set(&["http://a:1"], false),
            &[],
        )
        .unwrap_err();
        assert!(e.line >= 2, "{e}");
        let e = plan(Some("mirrors: [1]\n"), &set(&["http://a:1"], false), &[]).unwrap_err();
        assert_eq!((e.line, e.column), (1, 1), "{e}");
        // Found by the fuzz harness: yaml-rust2 stops at a NUL (the rest of the file
        // vanished), and reads NEL, U+2028 and a BOM mid-file unlike k3s's parser.
        for (cur, at) in [
            ("\0irrors:\nmirrors: {}\n", (1, 1)),
            ("mirrors:\n  # a\u{85}b\n", (2, 6)),
            ("mirrors:\n\u{feff}  docker.io: {}\n", (2, 1)),
            ("a: \"\u{2028}\"\n", (1, 5)),
        ] {
            let e = plan(Some(cur), &set(&["http://a:1"], false), &[]).unwrap_err();
            assert_eq!((e.line, e.column), at, "{cur:?}: {e}");
        }
        // Found by the fuzz harness: a lone CR is a line break to YAML, not to the edit's
        // line-based steps (`...\rendpoint: []` hid content after a document end marker).
        let e = plan(
            Some("...\rendpoint: []\n"),
            &set(&["http://a:1"], false),
            &[],
        )
        .unwrap_err();
        assert!(e.message.contains("carriage return"), "{e}");
        // Found by the fuzz harness: yaml-rust2 accepted a tab before the first key, and the
        // keys mirrorctl appended did not line up with it.
        let e = plan(Some("  \tdebug: true\n"), &set(&["http://a:1"], false), &[]).unwrap_err();
        assert_eq!((e.line, e.column), (1, 3), "{e}");
        plan(
            Some("a: 1 # \t\n\t# c\n"),
            &set(&["http://a:1"], false),
            &[],
        )
        .unwrap();
        // A lone CR is a YAML line break, not one of the file's lines (fuzz harness: the
        // error pointed at line 2 of a one-line file; now the CR itself is refused); a BOM
        // shifts the column.
        let e = plan(Some("mirro\rrs: {}\n"), &set(&["http://a:1"], false), &[]).unwrap_err();
        assert_eq!((e.line, e.column), (1, 6), "{e}");
        let e = plan(Some("a: b: c\n"), &set(&["http://a:1"], false), &[]).unwrap_err();
        assert_eq!((e.line, e.column), (1, 5), "{e}");
        let e = plan(Some("\u{feff}a: [\n"), &set(&["http://a:1"], false), &[]).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }
}

#[cfg(test)]
mod marker_tests {
    use super::*;

    fn set() -> MirrorSet {
        MirrorSet::from_args(&["http://a:1".to_string()], "docker.io", false).unwrap()
    }

    #[test]
    fn document_end_markers() {
        // Only `...`: no YAML document at all (this indexed docs[0] and panicked). A document
        // ending in `...`: keys are added before the marker, not after it (another document,
        // which k3s would not read), and yaml-edit, which refuses the marker, never sees it.
        for cur in [
            "...\n",
            "# c\n...\n",
            "configs: {}\n... # end\n",
            "---\n...\n",
        ] {
            let p = plan(Some(cur), &set(), &[]).unwrap();
            let docs = YamlLoader::load_from_str(&p.text).unwrap();
            assert_eq!(docs.len(), 1, "{cur:?} → {:?}", p.text);
            assert_eq!(
                docs[0]["mirrors"]["docker.io"]["endpoint"][0].as_str(),
                Some("http://a:1"),
                "{cur:?} → {:?}",
                p.text
            );
            assert!(
                p.text.contains("\n...") || p.text.starts_with("..."),
                "{:?}",
                p.text
            );
            let empty = MirrorSet {
                registries: vec![],
                insecure: false,
            };
            let back = plan(Some(&p.text), &empty, &p.owned).unwrap();
            assert_eq!(back.text, cur, "{:?}", p.text);
        }
        // Found by the fuzz harness: content after a leading `...` is a second document to
        // k3s; arm added its keys to the first one.
        for cur in ["...\nmirrors: {}\n", "# c\n...\n---\nconfigs: {}\n"] {
            let e = plan(Some(cur), &set(), &[]).unwrap_err();
            assert!(
                e.message.contains("starts with a document end marker"),
                "{e}"
            );
        }
        assert_eq!(end_marker("a: ...\n....\n...x\n"), None);
        assert_eq!(end_marker("a: 1\n...\r\n"), Some(5));
    }
}

#[cfg(test)]
mod mixed_line_end_tests {
    use super::*;

    #[test]
    fn mixed_line_ends_survive_and_no_lone_cr_is_left() {
        // Found by the fuzz harness (long run): yaml-edit, editing around `\r\n` pairs in a
        // file with mixed line ends, left a lone CR, which the next run refused.
        let lone_cr = |t: &str| {
            t.char_indices()
                .any(|(i, c)| c == '\r' && !t[i + 1..].starts_with('\n'))
        };
        let set = |u: &str| MirrorSet::from_args(&[u.to_string()], "docker.io", false).unwrap();
        let cur = "configs:\r\n  \"mirror.example:5443\":\r\n    auth:\r\n      mirrors: ~\nusername: robot\r\n   ";
        let a = plan(
            Some(cur),
            &set("docker.io=HTTP://Mirror.Example:5000/"),
            &[],
        )
        .unwrap();
        assert!(!lone_cr(&a.text), "{:?}", a.text);
        let b = plan(Some(&a.text), &set("docker.io=https://configs:"), &a.owned).unwrap();
        assert!(!lone_cr(&b.text), "{:?}", b.text);
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        plan(Some(&b.text), &empty, &b.owned).unwrap();
        let cur = "configs:\r\n  \"m.example:5443\":\r\n    auth:\r\n      password: x\nmirrors:\r\n  quay.io:\r\n    endpoint:\r\n      - \"https://q.example\"\r\n";
        let s = set("http://a:1");
        let p = plan(Some(cur), &s, &[]).unwrap();
        assert_eq!(plan(Some(&p.text), &s, &p.owned).unwrap(), p);
        assert_eq!(plan(Some(&p.text), &empty, &p.owned).unwrap().text, cur);
    }
}

#[cfg(test)]
mod endpoint_key_tests {
    use super::*;

    #[test]
    fn refuses_a_key_the_editor_does_not_read() {
        // Found by the fuzz harness: yaml-rust2 reads `!x mirrors:` as `mirrors`, yaml-edit
        // does not, and `mirrors` was appended a second time.
        let s = MirrorSet::from_args(&["http://a:1".to_string()], "docker.io", false).unwrap();
        for cur in [
            "!x mirrors: {}\n",
            "!x mirrors:\n  docker.io:\n    endpoint: []\n",
        ] {
            let e = plan(Some(cur), &s, &[]).unwrap_err();
            assert!(e.message.contains("editor does not read"), "{e}");
        }
    }

    #[test]
    fn refuses_a_null_key_it_cannot_replace() {
        // Found by the fuzz harness: `&a mirrors:` (no value) was not dropped, and the
        // appended `mirrors:` duplicated the key.
        let s = MirrorSet::from_args(&["http://a:1".to_string()], "docker.io", false).unwrap();
        let e = plan(Some("# c\n&a mirrors:\nconfigs: {}\n"), &s, &[]).unwrap_err();
        assert!(
            e.message.contains("top-level `mirrors` has no value"),
            "{e}"
        );
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn refuses_what_its_editor_misreads() {
        // Found by the fuzz harness (long run): with an empty key (`: quay.io:`) yaml-edit put
        // the new registry under `docker.io`.
        let s = MirrorSet::from_args(
            &["[::1]:5001=http://[::1]:5000".to_string()],
            "docker.io",
            false,
        )
        .unwrap();
        let cur = "mirrors:\n  : quay.io:\n    endpoint:\n      - \"https://q.example\"\n  \"docker.io\":\n    endpoint:\n      - \"http://127.0.0.1:5000\"\n";
        let e = plan(Some(cur), &s, &[]).unwrap_err();
        assert!(e.message.contains("misread"), "{e}");
    }

    #[test]
    fn refuses_a_layout_the_keys_cannot_be_added_to() {
        // Found by the fuzz harness: after a first line holding only a tag the keys were
        // appended at its indentation, and the output was not YAML.
        let s =
            MirrorSet::from_args(&["https://m.example".to_string()], "docker.io", false).unwrap();
        let e = plan(Some("  !!map\nauth:uth:\n \n  username"), &s, &[]).unwrap_err();
        assert!(e.message.contains("cannot add its top-level keys"), "{e}");
    }

    #[test]
    fn the_users_own_endpoint_keeps_its_spelling() {
        // Found by the fuzz harness: the user's "http://127.0.0.1:007" (the mirror
        // http://127.0.0.1:7) was written back as mirrorctl spells it, and disarm kept that.
        let s = MirrorSet::from_args(
            &[
                "http://127.0.0.1:7".to_string(),
                "https://m.example".to_string(),
            ],
            "docker.io",
            false,
        )
        .unwrap();
        let cur = "mirrors:\n  docker.io:\n    endpoint:\n    - \"http://127.0.0.1:007\"\n    - https://user-cache.example\n";
        let p = plan(Some(cur), &s, &[]).unwrap();
        assert!(p.text.contains("\"http://127.0.0.1:007\""), "{}", p.text);
        assert_eq!(plan(Some(&p.text), &s, &p.owned).unwrap(), p);
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        assert_eq!(plan(Some(&p.text), &empty, &p.owned).unwrap().text, cur);
    }

    #[test]
    fn an_endpoint_key_mirrorctl_added_goes_on_disarm() {
        // Found by the fuzz harness: `docker.io: {}` came back from disarm as
        // `docker.io: {endpoint: []}`.
        let s = MirrorSet::from_args(&["http://a:1".to_string()], "docker.io", false).unwrap();
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        for cur in [
            "mirrors:\n  docker.io: {}\n",
            "mirrors:\n  docker.io:\n    rewrite:\n      \"^a/(.*)\": \"b/$1\"\n",
        ] {
            let p = plan(Some(cur), &s, &[]).unwrap();
            assert_eq!(plan(Some(&p.text), &s, &p.owned).unwrap(), p);
            let back = plan(Some(&p.text), &empty, &p.owned).unwrap();
            assert_eq!(back.text, cur, "{}", p.text);
        }
    }
}

#[cfg(test)]
mod flow_root_tests {
    use super::*;

    #[test]
    fn an_empty_flow_root_after_a_marker_comes_back() {
        // Found by the fuzz harness: only a document *starting* with `{` counted as flow, so
        // disarm dropped the `{}` of "---\n{}\n".
        let s = MirrorSet::from_args(&["http://a:1".to_string()], "docker.io", false).unwrap();
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        for cur in ["---\n{}\n", "# c\n{}\n", "{}\n"] {
            let p = plan(Some(cur), &s, &[]).unwrap();
            let back = plan(Some(&p.text), &empty, &p.owned).unwrap();
            assert_eq!(back.text, cur, "{:?}", p.text);
        }
    }
}

#[cfg(test)]
mod final_newline_tests {
    use super::*;

    #[test]
    fn a_file_without_final_newline_stays_without_one() {
        // Found by the fuzz harness: `# c` came back from disarm as `# c\n`.
        let s = MirrorSet::from_args(&["https://m.example:8443".to_string()], "docker.io", true)
            .unwrap();
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        for cur in ["# c", "configs:\n  x:\n    auth: {username: u}"] {
            let p = plan(Some(cur), &s, &[]).unwrap();
            assert!(!p.text.ends_with('\n'), "{:?}", p.text);
            YamlLoader::load_from_str(&p.text).unwrap();
            let back = plan(Some(&p.text), &empty, &p.owned).unwrap();
            assert_eq!(back.text, cur, "{:?}", p.text);
        }
    }
}

#[cfg(test)]
mod indent_tests {
    use super::*;

    #[test]
    fn keys_are_added_at_the_indentation_of_an_indented_document() {
        // Found by the fuzz harness: `mirrors:` was appended at column 0 after top-level keys
        // at column 2 (invalid YAML), and the indented `  mirrors:` (no value) was not dropped.
        let s = MirrorSet::from_args(&["http://a:1".to_string()], "docker.io", true).unwrap();
        for cur in [
            "  configs:\n    x:\n      auth: {username: u}\n",
            "  mirrors:\n  configs: {}\n",
        ] {
            let p = plan(Some(cur), &s, &[]).unwrap();
            let docs = YamlLoader::load_from_str(&p.text).expect(&p.text);
            assert_eq!(
                docs[0]["mirrors"]["docker.io"]["endpoint"][0].as_str(),
                Some("http://a:1"),
                "{}",
                p.text
            );
            assert_eq!(root_indent(&p.text), "  ");
        }
        // Found by the fuzz harness: `---mirrors:` is a key, not a document marker; the key
        // after it set the indentation, and mirrorctl's keys went under `---mirrors`.
        let p = plan(Some("---mirrors:\n  docker.io: {}\n"), &s, &[]).unwrap();
        let docs = YamlLoader::load_from_str(&p.text).unwrap();
        assert!(
            docs[0]["mirrors"]["docker.io"]["endpoint"]
                .as_vec()
                .is_some(),
            "{}",
            p.text
        );
        let p = plan(
            Some("  configs:\n    x:\n      auth: {username: u}\n"),
            &s,
            &[],
        )
        .unwrap();
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        let back = plan(Some(&p.text), &empty, &p.owned).unwrap();
        assert_eq!(back.text, "  configs:\n    x:\n      auth: {username: u}\n");
    }
}

#[cfg(test)]
mod rearm_tests {
    use super::*;

    fn set(urls: &[&str], insecure: bool) -> MirrorSet {
        let v: Vec<String> = urls.iter().map(|s| s.to_string()).collect();
        MirrorSet::from_args(&v, "docker.io", insecure).unwrap()
    }

    const USER: &str = "# mine\nmirrors:\n  docker.io:\n    endpoint:\n      - \"https://user.example\" # keep\nconfigs:\n  \"user.example\":\n    auth:\n      username: u\n";

    #[test]
    fn rearm_replaces_only_mirrorctls_entries() {
        let a = plan(Some(USER), &set(&["https://a.example:1"], true), &[]).unwrap();
        assert!(a.text.contains("\"a.example:1\""), "{}", a.text);
        let b = plan(
            Some(&a.text),
            &set(&["http://b.example:2"], false),
            &a.owned,
        )
        .unwrap();
        assert!(!b.text.contains("a.example"), "{}", b.text);
        assert!(b.text.contains("\"http://b.example:2\""), "{}", b.text);
        assert!(
            b.text.contains("\"https://user.example\" # keep"),
            "{}",
            b.text
        );
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        let back = plan(Some(&b.text), &empty, &b.owned).unwrap();
        assert_eq!(back.text, USER);
        assert!(back.owned.is_empty(), "{:?}", back.owned);
    }

    #[test]
    fn users_endpoint_equal_to_the_mirror_is_not_owned() {
        let p = plan(Some(USER), &set(&["https://user.example"], false), &[]).unwrap();
        assert_eq!(p.text, USER);
        assert!(p.owned.is_empty(), "{:?}", p.owned);
    }

    #[test]
    fn insecure_on_users_tls_mapping() {
        let cur = "configs:\n  \"m.example:5443\":\n    tls:\n      ca_file: /ca.pem\n";
        let p = plan(Some(cur), &set(&["https://m.example:5443"], true), &[]).unwrap();
        assert!(p.text.contains("ca_file: /ca.pem"), "{}", p.text);
        assert!(p.text.contains("insecure_skip_verify: true"), "{}", p.text);
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        let back = plan(Some(&p.text), &empty, &p.owned).unwrap();
        assert_eq!(back.text, cur);
    }
}

#[cfg(test)]
mod edge_tests {
    use super::*;

    fn arm(cur: &str) -> Planned {
        let s = MirrorSet::from_args(&["http://a:1".to_string()], "docker.io", false).unwrap();
        let p = plan(Some(cur), &s, &[]).unwrap();
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        let again = plan(Some(&p.text), &s, &p.owned).unwrap();
        assert_eq!(again, p, "not idempotent for {cur:?}");
        let back = plan(Some(&p.text), &empty, &p.owned).unwrap();
        eprintln!("--- {cur:?}\n{}--- back\n{}", p.text, back.text);
        p
    }

    #[test]
    fn edge_cases() {
        for cur in [
            "mirrors:\n",
            "mirrors:\n  docker.io:\n",
            "---\nmirrors:\n  quay.io:\n    endpoint: []\n",
            "mirrors:\n  \"docker.io\":\n    endpoint:\n      - http://a:1\n",
            "configs:\n  x:\n    auth: {username: u}\n",
            "{}\n",
        ] {
            let p = arm(cur);
            let v = YamlLoader::load_from_str(&p.text).unwrap();
            let eps = &v[0]["mirrors"]["docker.io"]["endpoint"];
            assert_eq!(eps[0].as_str(), Some("http://a:1"), "{}", p.text);
        }
    }
}

#[cfg(test)]
mod no_panics {
    use super::*;

    /// A split inside a character is an internal error, not a panic.
    #[test]
    fn split_inside_a_character_is_an_internal_error() {
        assert_eq!(split_at_line("a\n...\n", 2).unwrap(), ("a\n", "...\n"));
        let e = split_at_line("é", 1).unwrap_err();
        assert!(e.message.starts_with("internal error: "), "{e}");
    }
}
