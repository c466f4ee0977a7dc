//! toml_edit helpers shared by the TOML planners: parsing with positions in the original file,
//! string lists, and rendering new documents the way people write them by hand.

use super::text::{original_offset, reframe, unframe, Framing};
use crate::error::{line_col, PlanError};
use toml_edit::{Array, DocumentMut, Item};

/// Refuse a second byte order mark: `unframe` takes one off (and puts it back), toml_edit
/// would silently drop another, and the clients' TOML parsers refuse it.
pub fn refuse_second_bom(original: &str, framing: Framing, body: &str) -> Result<(), PlanError> {
    if body.starts_with('\u{feff}') {
        return Err(error_at(
            original,
            framing,
            Some(0),
            "invalid TOML: a second byte order mark (U+FEFF) at the start of the file; remove it",
        ));
    }
    Ok(())
}

/// Parse the unframed `body`; a syntax error points at its line and column in `original`.
pub fn parse(original: &str, framing: Framing, body: &str) -> Result<DocumentMut, PlanError> {
    refuse_second_bom(original, framing, body)?;
    body.parse::<DocumentMut>().map_err(|e| {
        let at = e.span().map(|s| s.start).unwrap_or(0);
        let msg = e.message().trim().to_string();
        error_at(original, framing, Some(at), format!("invalid TOML: {msg}"))
    })
}

/// A TOML file being edited: its original text (for error positions), its framing (BOM,
/// CRLF), the unframed body and the parsed document.
pub struct Edit<'a> {
    pub original: &'a str,
    pub framing: Framing,
    pub body: String,
    pub doc: DocumentMut,
}

impl<'a> Edit<'a> {
    /// Unframe and [`parse`] `original`.
    pub fn open(original: &'a str) -> Result<Edit<'a>, PlanError> {
        let (framing, body) = unframe(original);
        let doc = parse(original, framing, &body)?;
        Ok(Edit {
            original,
            framing,
            body,
            doc,
        })
    }

    /// A PlanError pointing at where `key` is first written.
    pub fn err(&self, key: &str, msg: impl Into<String>) -> PlanError {
        error_at(
            self.original,
            self.framing,
            key_offset(&self.body, key),
            msg,
        )
    }

    /// The edited document in the file's own framing ([`render_edit`]).
    pub fn render(&self, fresh: bool) -> String {
        reframe(self.framing, &render_edit(&self.body, &self.doc, fresh))
    }
}

/// A PlanError at a byte offset of the unframed body (or the whole file).
pub fn error_at(
    original: &str,
    framing: Framing,
    at: Option<usize>,
    msg: impl Into<String>,
) -> PlanError {
    match at {
        Some(off) => {
            let (line, col) = line_col(original, original_offset(original, framing, off));
            PlanError::new(line, col, msg)
        }
        None => PlanError::whole(msg),
    }
}

/// Where a key is first written in the body (quoted or bare), to point errors at it.
pub fn key_offset(body: &str, key: &str) -> Option<usize> {
    body.find(&format!("\"{key}\"")).or_else(|| {
        body.match_indices(key).map(|(i, _)| i).find(|&i| {
            let before = body.get(..i).and_then(|b| b.chars().next_back());
            let after = body.get(i + key.len()..).and_then(|a| a.chars().next());
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
    })
}

/// The strings of an array item, `None` when it is not an array of strings.
pub fn string_array(item: &Item) -> Option<Vec<String>> {
    item.as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// A one-line array of strings.
pub fn array(list: &[String]) -> Array {
    let mut a = Array::new();
    for s in list {
        a.push(s.as_str());
    }
    a
}

/// Replace an array's strings, keeping its surrounding decoration (comments after it). The
/// user's elements stay as written (their raw string, a literal tab or `'quotes'`, and their
/// spacing or comments); new ones go on a line of their own with the first element's
/// indentation in a multi-line array, after `", "` on one line. On one line the space after
/// `[` stays with the first slot. Re-rendering the elements (`a.fmt()`, as before) could not be
/// taken back: disarm would not give the user's bytes back.
pub fn set_array(item: &mut Item, list: &[String]) {
    let Some(a) = item.as_array_mut() else { return };
    let multiline = a.to_string().contains('\n');
    let old: Vec<toml_edit::Value> = a.iter().cloned().collect();
    let prefix =
        |i: usize| -> Option<String> { old.get(i)?.decor().prefix()?.as_str().map(str::to_string) };
    // A new element's line: a line break and the first element's indentation.
    let indent = match prefix(0).as_deref().and_then(|p| p.rsplit_once('\n')) {
        Some((_, last_line)) => format!("\n{last_line}"),
        None => "\n  ".to_string(),
    };
    let trailing = a.trailing().as_str().map(str::to_string);
    let had_comma = a.trailing_comma();
    let mut used = vec![false; old.len()];
    let mut vals: Vec<(Option<usize>, toml_edit::Value)> = Vec::new();
    for s in list {
        // The user's first element holding `s` not taken yet (with its taken flag).
        let mut elements = old.iter().zip(used.iter_mut()).enumerate();
        match elements.find(|(_, (v, taken))| !**taken && v.as_str() == Some(s.as_str())) {
            Some((i, (v, taken))) => {
                *taken = true;
                vals.push((Some(i), v.clone()));
            }
            None => {
                let mut v = toml_edit::Value::from(s.as_str());
                let p = if multiline { indent.as_str() } else { " " };
                v.decor_mut().set_prefix(p);
                v.decor_mut().set_suffix("");
                vals.push((None, v));
            }
        }
    }
    if !multiline {
        // The first slot keeps the space after `[`; an element moved away from it takes the
        // separator's.
        let sep = prefix(1).unwrap_or_else(|| " ".to_string());
        for (k, (from, v)) in vals.iter_mut().enumerate() {
            match (k, from) {
                (0, _) => v.decor_mut().set_prefix(prefix(0).unwrap_or_default()),
                (_, Some(0)) | (_, None) => v.decor_mut().set_prefix(sep.clone()),
                _ => {}
            }
        }
    }
    a.clear();
    for (_, v) in vals {
        a.push_formatted(v);
    }
    a.set_trailing_comma(had_comma);
    if let Some(t) = trailing {
        a.set_trailing(t);
    }
}

/// Multiply the document positions of a table and every table below it by `by`, keeping
/// their order and making room between them for tables placed in between.
pub fn scale_positions(t: &mut toml_edit::Table, by: isize) {
    if let Some(p) = t.position() {
        t.set_position(Some(p * by));
    }
    for (_, v) in t.iter_mut() {
        match v {
            Item::Table(st) => scale_positions(st, by),
            Item::ArrayOfTables(a) => a.iter_mut().for_each(|st| scale_positions(st, by)),
            _ => {}
        }
    }
}

/// The largest document position of a table and the tables below it (0 when none has one).
pub fn max_position(t: &toml_edit::Table) -> isize {
    let mut m = t.position().unwrap_or(0);
    for (_, v) in t.iter() {
        match v {
            Item::Table(st) => m = m.max(max_position(st)),
            Item::ArrayOfTables(a) => {
                for st in a.iter() {
                    m = m.max(max_position(st));
                }
            }
            _ => {}
        }
    }
    m
}

/// Render a document; a new file gets a blank line between tables, none at the top.
pub fn render(doc: &DocumentMut, fresh: bool) -> String {
    let text = doc.to_string();
    if fresh {
        let t = text.trim_start_matches('\n').to_string();
        if t.is_empty() || t.ends_with('\n') {
            t
        } else {
            t + "\n"
        }
    } else {
        text
    }
}

/// Render an edited document: a new file the way [`render`] does, an existing one with the
/// line ends of its `body` (see [`super::text::keep_line_ends`]).
pub fn render_edit(body: &str, doc: &DocumentMut, fresh: bool) -> String {
    if fresh {
        render(doc, true)
    } else {
        super::text::keep_line_ends(body, &doc.to_string())
    }
}

/// The indentation one level of keys gets in this file: the indentation of the first key under a
/// table header ("" when keys are not indented), or two spaces — the style of the clients' own
/// documentation — when the file has no key under a header to learn from.
pub fn key_indent(body: &str) -> String {
    let mut header_indent: Option<&str> = None;
    for line in body.lines() {
        let t = line.trim_start();
        let ind = line.strip_suffix(t).unwrap_or_default();
        if t.starts_with('[') {
            header_indent = Some(ind);
            continue;
        }
        if let Some(h) = header_indent {
            if !t.is_empty() && !t.starts_with('#') {
                // One level: the key's indentation beyond its header's.
                return ind.strip_prefix(h).unwrap_or(ind).to_string();
            }
        }
    }
    "  ".to_string()
}

/// Indent every key of a header table (not of dotted or inline ones).
pub fn indent_keys(table: &mut toml_edit::Table, indent: &str) {
    if indent.is_empty() || table.is_dotted() {
        return;
    }
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_string()).collect();
    for k in keys {
        if let Some(mut key) = table.key_mut(&k) {
            key.leaf_decor_mut().set_prefix(indent);
        }
    }
}

/// The raw text of a string value as the file writes it (quotes included).
fn raw_string(item: &Item) -> Option<String> {
    match item.as_value()? {
        toml_edit::Value::String(f) => f.as_repr()?.as_raw().as_str().map(str::to_string),
        _ => None,
    }
}

/// The opening of a one-line string holding `prefix` first, written for the quotes `raw`
/// uses: `"` and `prefix` escaped as toml_edit writes it, or `'` and `prefix` verbatim.
fn opening(raw: &str, prefix: &str) -> Option<String> {
    if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        return None;
    }
    if raw.starts_with('"') {
        let e = toml_edit::Value::from(prefix).to_string();
        let e = e.trim();
        return e.strip_suffix('"').map(str::to_string);
    }
    if raw.starts_with('\'') && !prefix.contains(['\'', '\n', '\r']) {
        return Some(format!("'{prefix}"));
    }
    None
}

/// Set a string value from its raw text, keeping the decor; `false` if it does not hold
/// `expect`.
fn set_raw(item: &mut Item, raw: &str, expect: &str) -> bool {
    let Ok(mut v) = raw.parse::<toml_edit::Value>() else {
        return false;
    };
    match item.as_value_mut() {
        Some(old) if v.as_str() == Some(expect) => {
            *v.decor_mut() = old.decor().clone();
            *old = v;
            true
        }
        _ => false,
    }
}

/// Put `prefix` in front of a string value. The user's part keeps its bytes (escapes, quote
/// style), so [`strip_string_prefix`] gives them back; [`set_string`] would write the whole
/// value anew.
pub fn prepend_string(item: &mut Item, prefix: &str) {
    let Some(cur) = item.as_str().map(str::to_string) else {
        return;
    };
    let want = format!("{prefix}{cur}");
    // The user's raw string with its opening quote replaced by one holding the prefix.
    let reopened = raw_string(item)
        .and_then(|raw| Some(format!("{}{}", opening(&raw, prefix)?, raw.get(1..)?)));
    if let Some(raw) = reopened {
        if set_raw(item, &raw, &want) {
            return;
        }
    }
    set_string(item, &want);
}

/// Take `prefix` off the front of a string value, the rest keeping its bytes; `false` when
/// the value does not start with it.
pub fn strip_string_prefix(item: &mut Item, prefix: &str) -> bool {
    let Some(rest) = item
        .as_str()
        .and_then(|v| v.strip_prefix(prefix))
        .map(str::to_string)
    else {
        return false;
    };
    // The user's raw string with the prefix taken out of its opening.
    let stripped = raw_string(item).and_then(|raw| {
        let quote = raw.get(..1)?;
        let r = raw.strip_prefix(&opening(&raw, prefix)?)?;
        Some(format!("{quote}{r}"))
    });
    if let Some(raw) = stripped {
        if set_raw(item, &raw, &rest) {
            return true;
        }
    }
    set_string(item, &rest);
    true
}

/// Replace a string value in place, keeping the comments and spacing around it.
pub fn set_string(item: &mut Item, s: &str) {
    if let Some(v) = item.as_value_mut() {
        let decor = v.decor().clone();
        *v = toml_edit::Value::from(s);
        *v.decor_mut() = decor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_keep_the_users_elements_as_written() {
        // Found by the fuzz harness: the array was re-rendered, so a literal tab in a string
        // came back from disarm as `\\t`, and `["a","b"]` as `["a", "b"]`.
        for text in [
            "m = [\"mir\tror\"]",
            "m = [\"a\",\"b\"]",
            "m = [ 'a' , \"b\" ] # c",
            "m = [\n  # first\n  \"a\",\n  \"b\", # second\n]",
        ] {
            let mut doc: DocumentMut = text.parse().unwrap();
            let old: Vec<String> = doc["m"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            let mut new = vec!["x".to_string()];
            new.extend(old.iter().cloned());
            set_array(doc.get_mut("m").unwrap(), &new);
            let armed = doc.to_string();
            let mut d2: DocumentMut = armed.parse().unwrap();
            assert_eq!(d2["m"].as_array().unwrap().len(), old.len() + 1, "{armed}");
            set_array(d2.get_mut("m").unwrap(), &old);
            assert_eq!(d2.to_string().trim_end(), text, "{armed}");
        }
    }

    #[test]
    fn prepending_keeps_the_users_part_as_written() {
        // Found by the fuzz harness: set_string re-encoded the user's `\\e`/`\\u0063` and
        // disarm could not give them back.
        for raw in [
            "\"/opt/\\u0063erts.d\"",
            "'/opt/certs.d'",
            "\"\"\"/opt/certs.d\"\"\"",
            "\"/opt\"",
        ] {
            let text = format!("config_path = {raw} # mine\n");
            let mut doc: DocumentMut = text.parse().unwrap();
            let item = doc.get_mut("config_path").unwrap();
            prepend_string(item, "/etc/containerd/certs.d:");
            let armed = doc.to_string();
            if !raw.starts_with("\"\"\"") {
                assert!(armed.contains(&raw[1..]), "{armed}");
                assert!(armed.contains(" # mine"), "{armed}");
            }
            let mut d2: DocumentMut = armed.parse().unwrap();
            assert!(
                d2["config_path"]
                    .as_str()
                    .unwrap()
                    .starts_with("/etc/containerd/certs.d:/opt"),
                "{armed}"
            );
            assert!(strip_string_prefix(
                d2.get_mut("config_path").unwrap(),
                "/etc/containerd/certs.d:"
            ));
            if !raw.starts_with("\"\"\"") {
                assert_eq!(d2.to_string(), text);
            }
        }
    }
}
