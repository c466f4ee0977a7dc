//! dockerd's `/etc/docker/daemon.json`: `registry-mirrors` (docker.io only) and
//! `insecure-registries`.
//!
//! The file is validated as strict JSON (what dockerd accepts: an empty file and a BOM are fine),
//! then edited in place with a concrete syntax tree so every other key, the key order, the
//! indentation and the line endings stay exactly as the user wrote them.

use super::text::{original_offset, reframe, unframe};
use super::Planned;
use crate::error::PlanError;
use crate::mirror::Mirror;
use jsonc_parser::cst::{CstArray, CstObject, CstRootNode};
use jsonc_parser::ParseOptions;

pub const MIRRORS_KEY: &str = "registry-mirrors";
pub const INSECURE_KEY: &str = "insecure-registries";

fn tok_mirror(url: &str) -> String {
    format!("{MIRRORS_KEY}={url}")
}
fn tok_insecure(hp: &str) -> String {
    format!("{INSECURE_KEY}={hp}")
}
fn tok_key(key: &str) -> String {
    format!("key:{key}")
}
const LAYOUT_TOK: &str = "empty-object=";
/// The inside of the empty object mirrorctl added keys to (JSON-encoded).
fn tok_layout(inside: &str) -> String {
    format!("{LAYOUT_TOK}{}", serde_json::Value::from(inside))
}

/// Normalise a `registry-mirrors` entry for comparison (dockerd stores them with one trailing
/// slash, lower-case host).
fn norm_mirror(s: &str) -> String {
    Mirror::parse_lenient(s)
        .map(|m| m.url())
        .unwrap_or_else(|| s.trim().trim_end_matches('/').to_string())
}

/// Normalise an `insecure-registries` entry for comparison. The scheme is kept: dockerd strips
/// it (with a warning) and treats `h:p`, `http://h:p` and `https://h:p` alike, but its built-in
/// BuildKit does not (see [`plan`]), so they are different entries here.
fn norm_insecure(s: &str) -> String {
    s.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Plan daemon.json: `mirrors` first in `registry-mirrors` (in order), and in
/// `insecure-registries` when plain HTTP or `insecure`, as `scheme://host:port`; entries owned
/// before but not wanted now are removed. With no mirrors this removes everything mirrorctl owns.
///
/// Why the scheme in `insecure-registries`: dockerd accepts `http://h:p` there (it strips the
/// scheme and logs a warning), and dockerd's built-in BuildKit (20.10 … 24) speaks plain HTTP to
/// a mirror only when its entry parses as a URL with scheme `http`. A bare `10.0.0.5:5000` is
/// not a URL to Go's parser, `mirror.lan:5000` parses as scheme `mirror.lan`: with either,
/// `docker build` tries HTTPS, fails ("server gave HTTP response to HTTPS client") and silently
/// pulls from Docker Hub instead (tests/lan_mirror.rs shows it on a non-loopback address).
/// Ours are appended after the user's entries: BuildKit keys its table by host and the last
/// entry for a host wins.
pub fn plan(
    current: Option<&str>,
    mirrors: &[Mirror],
    insecure: bool,
    prev: &[String],
) -> Result<Planned, PlanError> {
    let original = current.unwrap_or("");
    let (framing, mut body) = unframe(original);
    validate(original, framing, &body)?;
    if body.trim().is_empty() && body.contains(|c: char| !matches!(c, ' ' | '\t' | '\n' | '\r')) {
        // Blank to dockerd (Go's TrimSpace) but not JSON whitespace (U+2028, say): a document
        // written after it would not be strict JSON (mirrorctl's own reader refuses it).
        body.clear();
    }
    let unframed = body.clone();

    let want_mirrors: Vec<String> = mirrors.iter().map(|m| m.url()).collect();
    let want_insecure: Vec<String> = mirrors
        .iter()
        .filter(|m| m.is_http() || insecure)
        .map(|m| m.url())
        .collect();

    let parse = |body: &str| {
        CstRootNode::parse(body, &ParseOptions::default())
            .map_err(|e| PlanError::whole(format!("invalid JSON: {e}")))
    };
    let mut root = parse(&body)?;
    let mut obj = root.object_value_or_set();
    let mut owned = Vec::new();

    // The CST's append spreads a one-line object over several lines, moves a closing brace
    // written after the last member to a line of its own, drops blank lines after the opening
    // brace, and turns the blank inside of an empty object (`{ }`, `{\n}`) into the new keys'
    // layout: none of it can be taken back when the keys are removed again. Keys this run
    // creates after a last member are written after it as text; the inside of an empty object
    // is remembered in an owned token and put back when the object is empty again.
    let creating: Vec<&str> = [(MIRRORS_KEY, &want_mirrors), (INSECURE_KEY, &want_insecure)]
        .into_iter()
        .filter(|(k, w)| !w.is_empty() && obj.get(k).is_none())
        .map(|(k, _)| k)
        .collect();
    let braces = body.find('{').zip(body.rfind('}'));
    let mut created_inline: Vec<&str> = Vec::new();
    if let (false, Some((open, close))) = (creating.is_empty(), braces) {
        let inside = &body[open + 1..close];
        if obj.properties().is_empty() {
            if !inside.is_empty() {
                owned.push(tok_layout(inside));
            }
        } else {
            // After the last member: on its line in a one-line object, on a line of their own
            // at its indentation in a multi-line one — with an empty multi-line array the CST
            // fills, one element per line, when the closing brace has a line of its own
            // (else, as in `…,\n  "b": 2 }`, a one-line array, the brace staying where it is).
            let at = body[..close].trim_end().len();
            let brace_own_line = body[at..close].contains('\n');
            let line = &body[body[..at].rfind('\n').map_or(0, |i| i + 1)..at];
            let indent = &line[..line.len() - line.trim_start().len()];
            let (sep, empty) = match (inside.contains('\n'), brace_own_line) {
                (false, _) => (", ".to_string(), "[]".to_string()),
                (true, false) => (format!(",\n{indent}"), "[]".to_string()),
                (true, true) => (format!(",\n{indent}"), format!("[\n{indent}]")),
            };
            let keys: String = creating
                .iter()
                .map(|k| format!("{sep}\"{k}\": {empty}"))
                .collect();
            body.insert_str(at, &keys);
            root = parse(&body)?;
            obj = root.object_value_or_set();
            created_inline = creating;
        }
    }
    let layout: Option<String> = owned.pop();
    let mut removed: Vec<String> = Vec::new();
    edit_list(
        &obj,
        MIRRORS_KEY,
        &want_mirrors,
        true,
        norm_mirror,
        tok_mirror,
        prev,
        &created_inline,
        &mut owned,
        &mut removed,
    );
    edit_list(
        &obj,
        INSECURE_KEY,
        &want_insecure,
        false,
        norm_insecure,
        tok_insecure,
        prev,
        &created_inline,
        &mut owned,
        &mut removed,
    );

    let (mut rendered, empty) = remove_members(&root.to_string(), &removed);
    match (layout, prev.iter().find(|t| t.starts_with(LAYOUT_TOK))) {
        (Some(t), _) => owned.push(t),
        (None, Some(t)) if !empty => owned.push(t.clone()),
        (None, Some(t)) => {
            // Empty again: give it back the inside it had.
            if let (Some(open), Some(close), Ok(inside)) = (
                rendered.find('{'),
                rendered.rfind('}'),
                serde_json::from_str::<String>(&t[LAYOUT_TOK.len()..]),
            ) {
                rendered.replace_range(open + 1..close, &inside);
            }
        }
        (None, None) => {}
    }
    // In a file whose line ends are mixed, the CST writes new lines with one line end for the
    // whole file, and removing them again can leave it behind: keep each line's own (after
    // the inside of an emptied object is back, whose lines are then the file's own).
    let mut text = super::text::keep_line_ends(&unframed, &rendered);
    if current.is_none() || original.trim_start_matches('\u{feff}').trim().is_empty() {
        // A new document: make sure it ends with a newline, as editors and jq write them.
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    Ok(Planned {
        text: reframe(framing, &text),
        owned,
    })
}

/// Make `registry-mirrors` and `insecure-registries` explicit (`[]` when absent) so a dockerd
/// reload forgets values it loaded before: dockerd only reloads keys present in the file.
pub fn with_explicit_keys(text: &str) -> Result<String, PlanError> {
    let (framing, body) = unframe(text);
    validate(text, framing, &body)?;
    let root = CstRootNode::parse(&body, &ParseOptions::default())
        .map_err(|e| PlanError::whole(format!("invalid JSON: {e}")))?;
    let obj = root.object_value_or_set();
    for key in [MIRRORS_KEY, INSECURE_KEY] {
        if obj.get(key).is_none() {
            obj.append(key, jsonc_parser::json!([]));
        }
    }
    Ok(reframe(framing, &root.to_string()))
}

/// The mirrors a daemon.json lists, normalised.
pub fn listed_mirrors(text: &str) -> Vec<String> {
    let (_, body) = unframe(text);
    let v: serde_json::Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(_) => return Vec::new(),
    };
    v.get(MIRRORS_KEY)
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .map(norm_mirror)
                .collect()
        })
        .unwrap_or_default()
}

fn validate(original: &str, framing: super::text::Framing, body: &str) -> Result<(), PlanError> {
    if body.trim().is_empty() {
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        // serde_json reports positions in the unframed body; map back to the file.
        let off = offset_of(body, e.line(), e.column());
        let orig = original_offset(original, framing, off);
        let (line, col) = crate::error::line_col(original, orig);
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        PlanError::new(line, col.max(1), format!("invalid JSON: {msg}"))
    })?;
    let Some(obj) = v.as_object() else {
        return Err(PlanError::new(
            1,
            1,
            "daemon.json must hold a JSON object (`{ … }`)",
        ));
    };
    refuse_duplicate_keys(original, framing, body)?;
    for key in [MIRRORS_KEY, INSECURE_KEY] {
        if let Some(val) = obj.get(key) {
            let ok = val
                .as_array()
                .map(|a| a.iter().all(|x| x.is_string()))
                .unwrap_or(false);
            if !ok {
                let at = body.find(&format!("\"{key}\"")).unwrap_or(0);
                let (line, col) =
                    crate::error::line_col(original, original_offset(original, framing, at));
                return Err(PlanError::new(
                    line,
                    col,
                    format!("`{key}` must be a list of strings; dockerd would refuse to start"),
                ));
            }
        }
    }
    Ok(())
}

/// Refuse a key written twice in one object, at any depth. dockerd (Go's encoding/json) takes
/// the last one, serde_json too, but the syntax tree mirrorctl edits finds the first: the file
/// is ambiguous, and an edit could land on the entry dockerd ignores.
fn refuse_duplicate_keys(
    original: &str,
    framing: super::text::Framing,
    body: &str,
) -> Result<(), PlanError> {
    use jsonc_parser::ast::Value;
    // `body` passed serde_json, so it is strict JSON nested at most 128 deep.
    let ast = jsonc_parser::parse_to_ast(body, &Default::default(), &ParseOptions::default())
        .map_err(|e| PlanError::whole(format!("invalid JSON: {e}")))?;
    let at = |off: usize| crate::error::line_col(original, original_offset(original, framing, off));
    let mut stack: Vec<&Value> = ast.value.iter().collect();
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(o) => {
                for (i, p) in o.properties.iter().enumerate() {
                    let name = p.name.as_str();
                    if let Some(first) = o.properties[..i].iter().find(|q| q.name.as_str() == name)
                    {
                        let (line, col) = at(p.range.start);
                        let (fl, fc) = at(first.range.start);
                        return Err(PlanError::new(
                            line,
                            col,
                            format!(
                                "key `{name}` is written twice in one object (first at line {fl}, column {fc}): dockerd would take the last one, so the file is ambiguous. Remove one of them, then rerun"
                            ),
                        ));
                    }
                    stack.push(&p.value);
                }
            }
            Value::Array(a) => stack.extend(a.elements.iter()),
            _ => {}
        }
    }
    Ok(())
}

/// Byte offset of serde_json's 1-based (line, column); column 0 means "at the newline that
/// ends the previous line".
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    if column == 0 && line > 1 {
        return offset_of(text, line - 1, usize::MAX).saturating_sub(1);
    }
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return off + column.saturating_sub(1).min(l.len());
        }
        off += l.len();
    }
    text.len()
}

/// Ensure `want` (normalised via `norm`) in the array under `key`: wanted entries first in
/// order when `front`, else appended; entries owned before but no longer wanted are removed;
/// the key is created (and then owned) when missing, and removed again when mirrorctl created it
/// and nothing is left in it. `created`: keys this run already wrote (empty) into the text.
#[allow(clippy::too_many_arguments)]
fn edit_list(
    obj: &CstObject,
    key: &str,
    want: &[String],
    front: bool,
    norm: fn(&str) -> String,
    tok: fn(&str) -> String,
    prev: &[String],
    created: &[&str],
    owned: &mut Vec<String>,
    removed: &mut Vec<String>,
) {
    let key_tok = tok_key(key);
    let prop = obj.get(key);
    let array: Option<CstArray> = prop.as_ref().and_then(|p| p.array_value());
    let current: Vec<String> = array
        .as_ref()
        .map(|a| {
            a.elements()
                .iter()
                .filter_map(|e| e.as_string_lit().and_then(|s| s.decoded_value().ok()))
                .collect()
        })
        .unwrap_or_default();

    let merged = super::list::merge(&current, want, norm, |n| prev.contains(&tok(n)), front);
    owned.extend(merged.owned.iter().map(|n| tok(n)));
    let target = merged.list;

    let key_owned_before = prev.contains(&key_tok) || created.contains(&key);
    match (prop, array) {
        (Some(_), Some(a)) => {
            if target.is_empty() && key_owned_before {
                // Taken out of the text once rendered (see `remove_members`).
                removed.push(key.to_string());
                return;
            }
            if key_owned_before {
                owned.push(key_tok);
            }
            // The blank inside of an empty multi-line array (`[\n  ]`) the CST would turn into
            // `[]` once emptied again: kept in a token, put back then.
            let layout_tok = format!("empty-array:{key}=");
            let raw = a.to_string();
            let layout = match prev.iter().find(|t| t.starts_with(&layout_tok)) {
                Some(t) => Some(t.clone()),
                None if current.is_empty()
                    && !target.is_empty()
                    && raw.contains('\n')
                    && !key_owned_before =>
                {
                    Some(format!(
                        "{layout_tok}{}",
                        serde_json::Value::from(&raw[1..raw.len() - 1])
                    ))
                }
                None => None,
            };
            if target == current {
                owned.extend(layout);
                return;
            }
            match layout {
                Some(t) if target.is_empty() => {
                    let inside =
                        serde_json::from_str::<String>(&t[layout_tok.len()..]).unwrap_or_default();
                    a.replace_with(jsonc_parser::cst::CstInputValue::Number(format!(
                        "[{inside}]"
                    )));
                }
                layout => {
                    set_array(&a, &target, &current);
                    owned.extend(layout);
                }
            }
        }
        (Some(_), None) => unreachable!("validated: `{key}` is an array"),
        (None, _) => {
            if target.is_empty() {
                return;
            }
            let p = obj.append(key, jsonc_parser::json!([]));
            let a = p.array_value().expect("just created");
            if obj_is_multiline(obj) {
                a.ensure_multiline();
            }
            for (i, t) in target.iter().enumerate() {
                a.insert(i, t.as_str().into());
            }
            owned.push(key_tok);
        }
    }
}

fn obj_is_multiline(obj: &CstObject) -> bool {
    obj.to_string().contains('\n') || obj.properties().len() <= 1
}

/// Take the members named `keys` out of the root object of `text`, each with the separator
/// before it (after the first member: from the end of the one before it), so that removing
/// what was added after a member — by mirrorctl as text, or by the CST's append — gives the
/// bytes back; the CST's own removal puts a closing brace written after the last member on a
/// line of its own. Also says whether the object is empty then.
fn remove_members(text: &str, keys: &[String]) -> (String, bool) {
    use jsonc_parser::ast::Value;
    /// The root object's range and its members' (name, start, end).
    type Members = (usize, usize, Vec<(String, usize, usize)>);
    let root_object = |t: &str| -> Option<Members> {
        let ast =
            jsonc_parser::parse_to_ast(t, &Default::default(), &ParseOptions::default()).ok()?;
        let Some(Value::Object(o)) = ast.value else {
            return None;
        };
        let props = o
            .properties
            .iter()
            .map(|p| (p.name.as_str().to_string(), p.range.start, p.range.end))
            .collect();
        Some((o.range.start, o.range.end, props))
    };
    let mut out = text.to_string();
    for k in keys {
        let Some((start, end, props)) = root_object(&out) else {
            break;
        };
        let Some(i) = props.iter().position(|(n, _, _)| n == k) else {
            continue;
        };
        let cut = match i {
            0 => match props.get(1) {
                Some(next) => (props[0].1, next.1),
                None => (start + 1, end - 1),
            },
            _ => (props[i - 1].2, props[i].2),
        };
        out.replace_range(cut.0..cut.1, "");
    }
    let empty = root_object(&out).is_some_and(|(_, _, p)| p.is_empty());
    (out, empty)
}

/// Rewrite an array's elements to `target`, keeping its layout: an array holding elements
/// (or on one line) is rewritten as text by [`rewrite_array`]; an empty multi-line array gets
/// its elements from the CST, each on its own line, indented for it.
fn set_array(a: &CstArray, target: &[String], current: &[String]) {
    let raw = a.to_string();
    if !current.is_empty() || !raw.contains('\n') {
        if let Some(text) = rewrite_array(&raw, target) {
            // A raw token: the CST renders a number's text as given.
            let replacement = a
                .clone()
                .replace_with(jsonc_parser::cst::CstInputValue::Number(text));
            debug_assert!(replacement.is_some());
            return;
        }
    }
    for (i, t) in target.iter().enumerate() {
        a.insert(i, t.as_str().into());
    }
}

/// An array of strings holding `target`, written like `raw`: the user's elements keep their
/// bytes and, where they stay neighbours, the separator between them; new ones are JSON
/// strings joined with the array's first separator (for one element, a comma and the space
/// before it when that breaks the line, else `, `); the space inside the brackets stays.
/// Rendering the array anew (`", "` everywhere on one line; the CST's element edits, which
/// re-render the elements behind a new one and re-indent irregular layouts) could not be
/// taken back: disarm would not give the user's bytes back.
fn rewrite_array(raw: &str, target: &[String]) -> Option<String> {
    use jsonc_parser::ast::Value;
    let ast =
        jsonc_parser::parse_to_ast(raw, &Default::default(), &ParseOptions::default()).ok()?;
    let Some(Value::Array(arr)) = ast.value else {
        return None;
    };
    // (range, decoded value) of each element: validated, they are all strings.
    let elems: Vec<(jsonc_parser::common::Range, String)> = arr
        .elements
        .iter()
        .map(|e| e.as_string_lit().map(|s| (s.range, s.value.to_string())))
        .collect::<Option<_>>()?;
    let (lead, trail) = match (elems.first(), elems.last()) {
        (Some((f, _)), Some((l, _))) => (&raw[1..f.start], &raw[l.end..raw.len() - 1]),
        _ => (&raw[1..raw.len() - 1], ""),
    };
    let seps: Vec<&str> = elems
        .windows(2)
        .map(|w| &raw[w[0].0.end..w[1].0.start])
        .collect();
    let line_sep = format!(",{lead}");
    let default_sep = match seps.first() {
        Some(s) => *s,
        None if lead.contains(['\n', '\r']) => line_sep.as_str(),
        None => ", ",
    };
    let mut used = vec![false; elems.len()];
    let mut out = format!("[{lead}");
    let mut prev: Option<Option<usize>> = None;
    for t in target {
        let found = (0..elems.len()).find(|&i| !used[i] && elems[i].1 == *t);
        if let Some(p) = prev {
            let sep = match (p, found) {
                (Some(i), Some(j)) if j == i + 1 => seps[i],
                _ => default_sep,
            };
            out.push_str(sep);
        }
        match found {
            Some(i) => {
                used[i] = true;
                out.push_str(&raw[elems[i].0.start..elems[i].0.end]);
            }
            None => out.push_str(&serde_json::Value::from(t.as_str()).to_string()),
        }
        prev = Some(found);
    }
    if target.is_empty() && format!("{lead}{trail}").contains(['\n', '\r']) {
        // Emptied: no blank lines left inside.
        return Some("[]".to_string());
    }
    out.push_str(trail);
    out.push(']');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Mirror {
        Mirror::parse(s).unwrap()
    }

    #[test]
    fn creates_a_fresh_file() {
        let p = plan(None, &[m("http://127.0.0.1:5001")], false, &[]).unwrap();
        assert_eq!(
            p.text,
            "{\n  \"registry-mirrors\": [\n    \"http://127.0.0.1:5001\"\n  ],\n  \"insecure-registries\": [\n    \"http://127.0.0.1:5001\"\n  ]\n}\n"
        );
        let again = plan(
            Some(&p.text),
            &[m("http://127.0.0.1:5001")],
            false,
            &p.owned,
        )
        .unwrap();
        assert_eq!(again.text, p.text);
        assert_eq!(again.owned, p.owned);
        let back = plan(Some(&p.text), &[], false, &p.owned).unwrap();
        assert_eq!(back.text.trim(), "{}");
    }

    #[test]
    fn insecure_entries_carry_the_scheme_after_the_users() {
        // The user's bare entry for the same host stays, ours comes after it (BuildKit: the
        // last entry for a host wins); https with --insecure gets `https://`.
        let cur = "{\"insecure-registries\": [\"10.0.0.5:5000\", \"other:1\"]}";
        let p = plan(
            Some(cur),
            &[m("http://10.0.0.5:5000"), m("https://m.lan")],
            true,
            &[],
        )
        .unwrap();
        assert!(
            p.text.contains(
                "\"insecure-registries\": [\"10.0.0.5:5000\", \"other:1\", \"http://10.0.0.5:5000\", \"https://m.lan\"]"
            ),
            "{}",
            p.text
        );
        let back = plan(Some(&p.text), &[], false, &p.owned).unwrap();
        assert!(
            back.text
                .contains("\"insecure-registries\": [\"10.0.0.5:5000\", \"other:1\"]")
                && !back.text.contains("://"),
            "{}",
            back.text
        );
        // A file armed by an earlier mirrorctl (bare `host:port`, owned) is upgraded in place.
        let old = "{\n  \"registry-mirrors\": [\"http://10.0.0.5:5000\"],\n  \"insecure-registries\": [\"10.0.0.5:5000\"]\n}\n";
        let owned = vec![
            tok_mirror("http://10.0.0.5:5000"),
            tok_insecure("10.0.0.5:5000"),
            tok_key(MIRRORS_KEY),
            tok_key(INSECURE_KEY),
        ];
        let q = plan(Some(old), &[m("http://10.0.0.5:5000")], false, &owned).unwrap();
        assert_eq!(
            q.text,
            "{\n  \"registry-mirrors\": [\"http://10.0.0.5:5000\"],\n  \"insecure-registries\": [\"http://10.0.0.5:5000\"]\n}\n"
        );
        let gone = plan(Some(&q.text), &[], false, &q.owned).unwrap();
        assert_eq!(gone.text.trim(), "{}");
    }

    #[test]
    fn keeps_users_entries_and_spelling() {
        let cur = "{\n  \"registry-mirrors\": [\"https://mirror.example/\", \"https://user.example\"]\n}\n";
        let p = plan(
            Some(cur),
            &[m("https://other.example"), m("https://mirror.example")],
            false,
            &[],
        )
        .unwrap();
        assert_eq!(
            p.text,
            "{\n  \"registry-mirrors\": [\"https://other.example\", \"https://mirror.example/\", \"https://user.example\"]\n}\n"
        );
        assert_eq!(p.owned, vec![tok_mirror("https://other.example")]);
        let back = plan(Some(&p.text), &[], false, &p.owned).unwrap();
        assert_eq!(
            back.text,
            "{\n  \"registry-mirrors\": [\"https://mirror.example/\", \"https://user.example\"]\n}\n"
        );
    }

    #[test]
    fn rearm_keeps_multiline_layout() {
        let p = plan(
            Some("{\n  \"debug\": true\n}\n"),
            &[m("http://a:1"), m("http://b:2")],
            false,
            &[],
        )
        .unwrap();
        let q = plan(Some(&p.text), &[m("http://c:3")], false, &p.owned).unwrap();
        assert_eq!(
            q.text,
            "{\n  \"debug\": true,\n  \"registry-mirrors\": [\n    \"http://c:3\"\n  ],\n  \"insecure-registries\": [\n    \"http://c:3\"\n  ]\n}\n"
        );
    }

    #[test]
    fn refuses_bad_json_with_position() {
        let e = plan(Some("{\n  \"a\": 1,\n}\n"), &[m("http://x:1")], false, &[]).unwrap_err();
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        let e = plan(
            Some("{\n  \"debug\": tru\n}\n"),
            &[m("http://x:1")],
            false,
            &[],
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (2, 15), "{e}");
        let e = plan(Some("[]"), &[m("http://x:1")], false, &[]).unwrap_err();
        assert!(e.message.contains("JSON object"));
        let e = plan(
            Some("{\"registry-mirrors\": \"x\"}"),
            &[m("http://x:1")],
            false,
            &[],
        )
        .unwrap_err();
        assert!(e.message.contains("list of strings"));
    }

    #[test]
    fn one_line_and_blank_objects_come_back_from_disarm() {
        // Found by the fuzz harness: the CST's append spread `{"debug":true}` over four lines
        // and disarm kept them; `{ }` and `{\n}` came back as `{}`.
        let one = [m("http://127.0.0.1:5001")];
        for cur in [
            "{\"debug\":true}",
            " {\"debug\": true } \n",
            "{\"a\":1,\"registry-mirrors\":[]}\n",
            "{ }",
            "{\n}\n",
            "\u{feff}{\r\n\r\n}\r\n",
            "{}",
        ] {
            let p = plan(Some(cur), &one, false, &[]).unwrap();
            if !cur.contains('\n') && cur.contains("\"a") {
                assert!(!p.text.trim_end().contains('\n'), "{cur:?} → {:?}", p.text);
            }
            let again = plan(Some(&p.text), &one, false, &p.owned).unwrap();
            assert_eq!(again, p, "{cur:?}");
            let back = plan(Some(&p.text), &[], false, &p.owned).unwrap();
            assert_eq!(back.text, cur, "{:?}", p.text);
        }
        let p = plan(Some("{\"debug\":true}"), &one, false, &[]).unwrap();
        assert_eq!(
            p.text,
            "{\"debug\":true, \"registry-mirrors\": [\"http://127.0.0.1:5001\"], \"insecure-registries\": [\"http://127.0.0.1:5001\"]}"
        );
    }

    #[test]
    fn irregular_multi_line_arrays_come_back_from_disarm() {
        // Found by the fuzz harness: the CST's insert put the first element of
        // `["a", "b"\n  ]` on a new line, and disarm left it there; a lone CR as line break.
        let one = [m("http://127.0.0.1:5001")];
        for cur in [
            "{\"registry-mirrors\":[\"https://a.example\", \"https://b.example\"\n  ]\n}\n",
            "{\r\n  \"registry-mirrors\": [\r  \"https://a.example\"\r\n  ]\r\n}\r\n",
            "{\n  \"registry-mirrors\": [\n    \"https://a.example\"\n  ]\n}\n",
        ] {
            let p = plan(Some(cur), &one, false, &[]).unwrap();
            serde_json::from_str::<serde_json::Value>(&p.text).unwrap();
            assert_eq!(plan(Some(&p.text), &one, false, &p.owned).unwrap(), p);
            let back = plan(Some(&p.text), &[], false, &p.owned).unwrap();
            assert_eq!(back.text, cur, "{:?}", p.text);
        }
        let p = plan(
            Some("{\n  \"registry-mirrors\": [\n    \"https://a.example\"\n  ]\n}\n"),
            &one,
            false,
            &[],
        )
        .unwrap();
        assert!(
            p.text
                .contains("[\n    \"http://127.0.0.1:5001\",\n    \"https://a.example\"\n  ]"),
            "{}",
            p.text
        );
    }

    #[test]
    fn an_empty_multi_line_array_comes_back_from_disarm() {
        // Found by the fuzz harness: `[\n  ]` came back from disarm as `[]`.
        let one = [m("http://127.0.0.1:5001")];
        let cur = "{\n  \"registry-mirrors\": [\n  ],\n  \"insecure-registries\": [ ]\n}\n";
        let p = plan(Some(cur), &one, false, &[]).unwrap();
        assert_eq!(plan(Some(&p.text), &one, false, &p.owned).unwrap(), p);
        let back = plan(Some(&p.text), &[], false, &p.owned).unwrap();
        assert_eq!(back.text, cur, "{}", p.text);
    }

    #[test]
    fn entries_behind_a_moved_one_keep_their_bytes() {
        // Found by the fuzz harness: moving the user's own mirror to the front re-rendered the
        // entry it moved past (its escape lost) instead of itself.
        let one = [m("http://127.0.0.1:5001")];
        let cur = "{\n  \"registry-mirrors\": [\n    \"https://\\u0062.example\",\n    \"HTTP://127.0.0.1:5001\"\n  ]\n}\n";
        let p = plan(Some(cur), &one, false, &[]).unwrap();
        assert!(p.text.contains("\"https://\\u0062.example\""), "{}", p.text);
        let first = p.text.find("127.0.0.1").unwrap();
        assert!(first < p.text.find("u0062").unwrap(), "{}", p.text);
    }

    #[test]
    fn a_blank_file_that_is_not_json_whitespace_gets_a_clean_document() {
        // Found by the fuzz harness: after U+2028 (blank to dockerd) the new document was not
        // strict JSON, which mirrorctl's own reader refuses.
        let one = [m("http://127.0.0.1:5001")];
        let p = plan(Some("\u{2028} \n"), &one, false, &[]).unwrap();
        serde_json::from_str::<serde_json::Value>(&p.text).unwrap();
        assert_eq!(listed_mirrors(&p.text), vec!["http://127.0.0.1:5001"]);
    }

    #[test]
    fn mixed_line_ends_come_back_from_disarm() {
        // Found by the fuzz harness: only the last line ends in CRLF, and disarm left a `\r`
        // on the line the new keys had followed.
        let one = [m("http://127.0.0.1:5001")];
        for cur in ["{\n  \"debug\": true\n}\r\n", "{\r\n  \"debug\": true\n}\n"] {
            let p = plan(Some(cur), &one, false, &[]).unwrap();
            serde_json::from_str::<serde_json::Value>(&p.text).unwrap();
            let back = plan(Some(&p.text), &[], false, &p.owned).unwrap();
            assert_eq!(back.text, cur, "{:?}", p.text);
        }
    }

    #[test]
    fn the_inside_of_an_emptied_object_keeps_its_line_ends() {
        // Found by the fuzz harness: in "{\r\n}\n" the emptied object's last line got the
        // CRLF of the line it was paired with.
        let one = [m("http://127.0.0.1:5001")];
        let cur = "{\r\n}\n";
        let p = plan(Some(cur), &one, false, &[]).unwrap();
        assert_eq!(plan(Some(&p.text), &[], false, &p.owned).unwrap().text, cur);
    }

    #[test]
    fn a_blank_line_after_the_opening_brace_stays() {
        // Found by the fuzz harness: the CST's append dropped the blank line after `{`.
        let one = [m("http://127.0.0.1:5001")];
        let cur = "\u{feff}{\n\n  \"debug\": true\n}\n";
        let p = plan(Some(cur), &one, false, &[]).unwrap();
        assert!(
            p.text.contains("{\n\n  \"debug\": true,\n  \"registry-mirrors\": [\n    \"http://127.0.0.1:5001\"\n  ],"),
            "{}",
            p.text
        );
        assert_eq!(plan(Some(&p.text), &one, false, &p.owned).unwrap(), p);
        let back = plan(Some(&p.text), &[], false, &p.owned).unwrap();
        assert_eq!(back.text, cur, "{}", p.text);
    }

    #[test]
    fn a_closing_brace_after_the_last_member_stays_there() {
        // Found by the fuzz harness: the CST's append moved `}` to a line of its own, and
        // disarm left it there.
        let one = [m("http://127.0.0.1:5001")];
        for cur in [
            "{\n\t\"debug\": true,\n\t\"dns\": [\"10.0.0.2\"]}\n",
            "{\"a\": 1,\n \"b\": 2 }",
        ] {
            let p = plan(Some(cur), &one, false, &[]).unwrap();
            serde_json::from_str::<serde_json::Value>(&p.text).unwrap();
            assert_eq!(plan(Some(&p.text), &one, false, &p.owned).unwrap(), p);
            let back = plan(Some(&p.text), &[], false, &p.owned).unwrap();
            assert_eq!(back.text, cur, "{:?}", p.text);
        }
    }

    #[test]
    fn one_line_arrays_keep_their_spacing() {
        // Found by the fuzz harness: the array was re-rendered with `", "` and disarm kept it.
        let one = [m("http://127.0.0.1:5001")];
        for cur in [
            "{\"registry-mirrors\":[\"https://a.example\",\"https://b.example\"]}",
            "{\"registry-mirrors\": [ \"https://a.example\" ,  \"https://b.example\",\"https://c.example\" ], \"insecure-registries\": [ ]}",
            "{\"registry-mirrors\":[\"https://a.example\"],\"insecure-registries\":[\"x:1\",\"y:2\"]}",
        ] {
            let p = plan(Some(cur), &one, false, &[]).unwrap();
            let back = plan(Some(&p.text), &[], false, &p.owned).unwrap();
            assert_eq!(back.text, cur, "{:?}", p.text);
        }
        let p = plan(
            Some("{\"registry-mirrors\":[\"https://a.example\",\"https://b.example\"]}"),
            &one,
            false,
            &[],
        )
        .unwrap();
        assert!(
            p.text.contains(
                "[\"http://127.0.0.1:5001\",\"https://a.example\",\"https://b.example\"]"
            ),
            "{}",
            p.text
        );
    }

    #[test]
    fn multi_line_arrays_keep_the_users_elements_as_written() {
        // Found by the fuzz harness: every element after a new one was re-rendered, so an
        // odd indentation or escape did not come back from disarm.
        let one = [m("http://127.0.0.1:5001")];
        let cur = "{\n  \"registry-mirrors\": [\n    \"https://a.example\",\n     \"https://\\u0062.example\"\n  ]\n}\n";
        let p = plan(Some(cur), &one, false, &[]).unwrap();
        assert!(
            p.text.contains("     \"https://\\u0062.example\""),
            "{}",
            p.text
        );
        let back = plan(Some(&p.text), &[], false, &p.owned).unwrap();
        assert_eq!(back.text, cur, "{}", p.text);
    }

    #[test]
    fn refuses_duplicated_keys_at_the_duplicate() {
        // serde_json keeps the last `registry-mirrors` (an array), the CST editor found the
        // first (a string): this panicked in edit_list.
        let e = plan(
            Some("{\"registry-mirrors\":\"x\",\"registry-mirrors\":[]}"),
            &[m("http://x:1")],
            false,
            &[],
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (1, 25), "{e}");
        assert!(
            e.message.contains("`registry-mirrors` is written twice")
                && e.message.contains("line 1, column 2")
                && e.message.contains("take the last one"),
            "{e}"
        );
        // Nested, and after a BOM and CRLF line endings.
        let e = plan(
            Some("\u{feff}{\r\n  \"log-opts\": {\"a\": \"1\",\r\n    \"a\": \"2\"}\r\n}\r\n"),
            &[m("http://x:1")],
            false,
            &[],
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (3, 5), "{e}");
        // Equal keys in different objects are fine.
        plan(
            Some("{\"a\": {\"x\": 1}, \"b\": {\"x\": 1}}"),
            &[m("http://x:1")],
            false,
            &[],
        )
        .unwrap();
    }

    #[test]
    fn explicit_keys_for_reload() {
        let t = with_explicit_keys("{\n  \"debug\": true\n}\n").unwrap();
        assert!(t.contains("\"registry-mirrors\": []"));
        assert!(t.contains("\"insecure-registries\": []"));
    }
}
