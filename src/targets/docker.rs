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
    let lists = wanted_lists(mirrors, insecure);
    let doc = write_new_keys(&body, &lists)?;
    let mut edit = ListEdit {
        prev,
        created: &doc.created_inline,
        owned: Vec::new(),
        removed: Vec::new(),
    };
    let obj = doc.root.object_value_or_set();
    for list in &lists {
        edit_list(&obj, list, &mut edit)?;
    }
    let ListEdit {
        mut owned, removed, ..
    } = edit;

    let (rendered, empty) = remove_members(&doc.root.to_string(), &removed)?;
    let rendered = match (doc.layout, prev.iter().find(|t| t.starts_with(LAYOUT_TOK))) {
        (Some(t), _) => {
            owned.push(t);
            rendered
        }
        (None, Some(t)) if !empty => {
            owned.push(t.clone());
            rendered
        }
        // Empty again: give it back the inside it had.
        (None, Some(t)) => restore_object_inside(rendered, t)?,
        (None, None) => rendered,
    };
    // In a file whose line ends are mixed, the CST writes new lines with one line end for the
    // whole file, and removing them again can leave it behind: keep each line's own (after
    // the inside of an emptied object is back, whose lines are then the file's own).
    let mut text = super::text::keep_line_ends(&body, &rendered);
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

/// A refusal for a state the planner's own checks rule out: a bug to report, not a crash.
fn internal(what: &str) -> PlanError {
    PlanError::whole(format!("internal error: {what}, please report"))
}

/// A list of daemon.json mirrorctl puts entries in: its key, the wanted entries, where they
/// go, and how entries are compared and owned.
struct List {
    key: &'static str,
    want: Vec<String>,
    /// Wanted entries go first, in order (else they are appended).
    front: bool,
    norm: fn(&str) -> String,
    tok: fn(&str) -> String,
}

/// The two lists for `mirrors`: every mirror in `registry-mirrors`, first; the plain HTTP ones
/// (all with `insecure`) appended to `insecure-registries`.
fn wanted_lists(mirrors: &[Mirror], insecure: bool) -> [List; 2] {
    [
        List {
            key: MIRRORS_KEY,
            want: mirrors.iter().map(|m| m.url()).collect(),
            front: true,
            norm: norm_mirror,
            tok: tok_mirror,
        },
        List {
            key: INSECURE_KEY,
            want: mirrors
                .iter()
                .filter(|m| m.is_http() || insecure)
                .map(|m| m.url())
                .collect(),
            front: false,
            norm: norm_insecure,
            tok: tok_insecure,
        },
    ]
}

/// The document as parsed for editing, with the keys this run creates after a last member
/// already written into its text.
struct NewKeys {
    root: CstRootNode,
    /// The owned token remembering the inside of the empty object keys are added to.
    layout: Option<String>,
    /// The keys written into the text (empty, for [`edit_list`] to fill and own).
    created_inline: Vec<&'static str>,
}

/// Parse the body for editing, with the keys this run creates prepared. The CST's append
/// spreads a one-line object over several lines, moves a closing brace written after the last
/// member to a line of its own, drops blank lines after the opening brace, and turns the blank
/// inside of an empty object (`{ }`, `{\n}`) into the new keys' layout: none of it can be taken
/// back when the keys are removed again. Keys created after a last member are written after it
/// as text (see [`with_keys_after_last_member`]); the inside of an empty object is remembered
/// in an owned token, and put back when the object is empty again.
fn write_new_keys(body: &str, lists: &[List]) -> Result<NewKeys, PlanError> {
    let root = parse_cst(body)?;
    let obj = root.object_value_or_set();
    let creating: Vec<&'static str> = lists
        .iter()
        .filter(|l| !l.want.is_empty() && obj.get(l.key).is_none())
        .map(|l| l.key)
        .collect();
    let braces = body.find('{').zip(body.rfind('}'));
    let (false, Some((open, close))) = (creating.is_empty(), braces) else {
        return Ok(NewKeys {
            root,
            layout: None,
            created_inline: Vec::new(),
        });
    };
    let inside = body
        .get(open + 1..close)
        .ok_or_else(|| internal("daemon.json's braces are out of order"))?;
    if obj.properties().is_empty() {
        return Ok(NewKeys {
            root,
            layout: (!inside.is_empty()).then(|| tok_layout(inside)),
            created_inline: Vec::new(),
        });
    }
    let body = with_keys_after_last_member(body, close, inside.contains('\n'), &creating)?;
    Ok(NewKeys {
        root: parse_cst(&body)?,
        layout: None,
        created_inline: creating,
    })
}

/// The body with `keys` (empty lists) written after the root object's last member, its
/// closing brace at `close`: on the member's line in a one-line object, on lines of their own
/// at its indentation in a `multiline` one — with an empty multi-line array the CST fills, one
/// element per line, when the closing brace has a line of its own (else, as in
/// `…,\n  "b": 2 }`, a one-line array, the brace staying where it is).
fn with_keys_after_last_member(
    body: &str,
    close: usize,
    multiline: bool,
    keys: &[&str],
) -> Result<String, PlanError> {
    let misplaced = || internal("daemon.json's closing brace is not where the parser put it");
    let before_close = body.get(..close).ok_or_else(misplaced)?;
    let at = before_close.trim_end().len();
    let (head, gap) = before_close.split_at_checked(at).ok_or_else(misplaced)?;
    let rest = body.get(at..).ok_or_else(misplaced)?;
    let brace_own_line = gap.contains('\n');
    let line = head.rsplit('\n').next().unwrap_or(head);
    let indent = line.strip_suffix(line.trim_start()).unwrap_or_default();
    let (sep, empty) = match (multiline, brace_own_line) {
        (false, _) => (", ".to_string(), "[]".to_string()),
        (true, false) => (format!(",\n{indent}"), "[]".to_string()),
        (true, true) => (format!(",\n{indent}"), format!("[\n{indent}]")),
    };
    let keys: String = keys
        .iter()
        .map(|k| format!("{sep}\"{k}\": {empty}"))
        .collect();
    Ok(format!("{head}{keys}{rest}"))
}

/// Put back the inside the root object had before mirrorctl added keys to it (kept in the
/// owned layout token `t`), now that it is empty again.
fn restore_object_inside(rendered: String, t: &str) -> Result<String, PlanError> {
    let inside = t
        .strip_prefix(LAYOUT_TOK)
        .and_then(|j| serde_json::from_str::<String>(j).ok());
    let (Some(open), Some(close), Some(inside)) = (rendered.find('{'), rendered.rfind('}'), inside)
    else {
        return Ok(rendered);
    };
    match (rendered.get(..=open), rendered.get(close..)) {
        (Some(head), Some(tail)) if open < close => Ok(format!("{head}{inside}{tail}")),
        _ => Err(internal(
            "the emptied daemon.json object has its braces out of order",
        )),
    }
}

/// Parse the (validated) body into the syntax tree the edit works on.
fn parse_cst(body: &str) -> Result<CstRootNode, PlanError> {
    CstRootNode::parse(body, &ParseOptions::default())
        .map_err(|e| PlanError::whole(format!("invalid JSON: {e}")))
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
                    let mut before = o.properties.iter().take(i);
                    if let Some(first) = before.find(|q| q.name.as_str() == name) {
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

/// What editing the lists threads through: the tokens owned before and the keys this run wrote
/// as text, and what the edit collects.
struct ListEdit<'a> {
    prev: &'a [String],
    /// Keys this run already wrote (empty) into the text.
    created: &'a [&'static str],
    owned: Vec<String>,
    /// Keys to take out of the rendered text (see [`remove_members`]).
    removed: Vec<String>,
}

/// One list's entries: those in the file and those it gets, and whether mirrorctl owns its key.
struct Entries {
    key: &'static str,
    current: Vec<String>,
    target: Vec<String>,
    key_owned_before: bool,
}

/// Ensure the list's wanted entries (normalised via its `norm`) in the array under its key:
/// first in order when `front`, else appended; entries owned before but no longer wanted are
/// removed; the key is created (and then owned) when missing, and removed again when
/// mirrorctl created it and nothing is left in it.
fn edit_list(obj: &CstObject, list: &List, edit: &mut ListEdit) -> Result<(), PlanError> {
    let prop = obj.get(list.key);
    let array: Option<CstArray> = prop.as_ref().and_then(|p| p.array_value());
    let current: Vec<String> = array.as_ref().map(array_strings).unwrap_or_default();
    let owned_before = |n: &str| edit.prev.contains(&(list.tok)(n));
    let merged = super::list::merge(&current, &list.want, list.norm, owned_before, list.front);
    edit.owned
        .extend(merged.owned.iter().map(|n| (list.tok)(n)));
    let entries = Entries {
        key: list.key,
        current,
        target: merged.list,
        key_owned_before: edit.prev.contains(&tok_key(list.key))
            || edit.created.contains(&list.key),
    };
    match (prop, array) {
        (Some(_), Some(a)) => edit_array(&a, &entries, edit),
        (Some(_), None) => Err(internal(&format!(
            "`{}` is not an array, though validated as one",
            list.key
        ))),
        (None, _) => add_array(obj, &entries, &mut edit.owned),
    }
}

/// The strings of an array (validated: all its elements are strings).
fn array_strings(a: &CstArray) -> Vec<String> {
    a.elements()
        .iter()
        .filter_map(|e| e.as_string_lit().and_then(|s| s.decoded_value().ok()))
        .collect()
}

/// Edit an array the file has: taken out when mirrorctl created its key and nothing is left in
/// it, else given the target entries, its layout kept (an emptied multi-line array gets back
/// the blank inside it had).
fn edit_array(a: &CstArray, e: &Entries, edit: &mut ListEdit) -> Result<(), PlanError> {
    if e.target.is_empty() && e.key_owned_before {
        // Taken out of the text once rendered (see `remove_members`).
        edit.removed.push(e.key.to_string());
        return Ok(());
    }
    if e.key_owned_before {
        edit.owned.push(tok_key(e.key));
    }
    let layout = empty_array_layout(a, e, edit.prev)?;
    if e.target == e.current {
        edit.owned.extend(layout);
        return Ok(());
    }
    match layout {
        Some(t) if e.target.is_empty() => {
            let inside = t
                .strip_prefix(&layout_prefix(e.key))
                .and_then(|j| serde_json::from_str::<String>(j).ok())
                .unwrap_or_default();
            a.clone()
                .replace_with(jsonc_parser::cst::CstInputValue::Number(format!(
                    "[{inside}]"
                )));
        }
        layout => {
            set_array(a, &e.target, &e.current)?;
            edit.owned.extend(layout);
        }
    }
    Ok(())
}

/// The start of the owned token holding the blank inside of the empty array under `key`.
fn layout_prefix(key: &str) -> String {
    format!("empty-array:{key}=")
}

/// The blank inside of an empty multi-line array (`[\n  ]`) the CST would turn into `[]` once
/// emptied again: kept in an owned token (the one owned before, or a new one when mirrorctl
/// fills the user's empty array now), put back then.
fn empty_array_layout(
    a: &CstArray,
    e: &Entries,
    prev: &[String],
) -> Result<Option<String>, PlanError> {
    let layout_tok = layout_prefix(e.key);
    if let Some(t) = prev.iter().find(|t| t.starts_with(&layout_tok)) {
        return Ok(Some(t.clone()));
    }
    let raw = a.to_string();
    // The user's empty array, which mirrorctl fills now.
    let filled_now = e.current.is_empty() && !e.target.is_empty() && !e.key_owned_before;
    if !filled_now || !raw.contains('\n') {
        return Ok(None);
    }
    let inside = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| internal(&format!("the array under `{}` has no brackets", e.key)))?;
    Ok(Some(format!(
        "{layout_tok}{}",
        serde_json::Value::from(inside)
    )))
}

/// Create the list's key with its target entries (and own it); one entry per line in a
/// multi-line object. Nothing when no entry is wanted.
fn add_array(obj: &CstObject, e: &Entries, owned: &mut Vec<String>) -> Result<(), PlanError> {
    if e.target.is_empty() {
        return Ok(());
    }
    let p = obj.append(e.key, jsonc_parser::json!([]));
    let Some(a) = p.array_value() else {
        return Err(internal(&format!(
            "the `{}` just added is not an array",
            e.key
        )));
    };
    if obj_is_multiline(obj) {
        a.ensure_multiline();
    }
    for (i, t) in e.target.iter().enumerate() {
        a.insert(i, t.as_str().into());
    }
    owned.push(tok_key(e.key));
    Ok(())
}

fn obj_is_multiline(obj: &CstObject) -> bool {
    obj.to_string().contains('\n') || obj.properties().len() <= 1
}

/// A member of the root object: its name and the bytes it spans.
struct Member {
    name: String,
    start: usize,
    end: usize,
}

/// The bytes the root object of `text` spans, and its members; `None` when it is not an object.
fn root_members(text: &str) -> Option<((usize, usize), Vec<Member>)> {
    use jsonc_parser::ast::Value;
    let ast =
        jsonc_parser::parse_to_ast(text, &Default::default(), &ParseOptions::default()).ok()?;
    let Some(Value::Object(o)) = ast.value else {
        return None;
    };
    let members = o
        .properties
        .iter()
        .map(|p| Member {
            name: p.name.as_str().to_string(),
            start: p.range.start,
            end: p.range.end,
        })
        .collect();
    Some(((o.range.start, o.range.end), members))
}

/// Take the members named `keys` out of the root object of `text`, each with the separator
/// before it (after the first member: from the end of the one before it), so that removing
/// what was added after a member — by mirrorctl as text, or by the CST's append — gives the
/// bytes back; the CST's own removal puts a closing brace written after the last member on a
/// line of its own. Also says whether the object is empty then.
fn remove_members(text: &str, keys: &[String]) -> Result<(String, bool), PlanError> {
    let mut out = text.to_string();
    for k in keys {
        let Some((object, members)) = root_members(&out) else {
            break;
        };
        let Some(i) = members.iter().position(|m| m.name == *k) else {
            continue;
        };
        let cut = member_cut(object, &members, i)
            .filter(|c| out.get(c.clone()).is_some())
            .ok_or_else(|| internal(&format!("the member `{k}` spans no bytes of the text")))?;
        out.replace_range(cut, "");
    }
    let empty = root_members(&out).is_some_and(|(_, m)| m.is_empty());
    Ok((out, empty))
}

/// The bytes taking member `i` out removes: from the end of the member before it to its own
/// end; for the first one, up to the start of the next, or the object's whole inside when it
/// is the only member.
fn member_cut(
    (start, end): (usize, usize),
    members: &[Member],
    i: usize,
) -> Option<std::ops::Range<usize>> {
    let member = members.get(i)?;
    match i.checked_sub(1) {
        Some(before) => Some(members.get(before)?.end..member.end),
        None => match members.get(1) {
            Some(next) => Some(member.start..next.start),
            None => Some(start + 1..end.checked_sub(1)?),
        },
    }
}

/// Rewrite an array's elements to `target`, keeping its layout: an array holding elements
/// (or on one line) is rewritten as text by [`rewrite_array`]; an empty multi-line array gets
/// its elements from the CST, each on its own line, indented for it.
fn set_array(a: &CstArray, target: &[String], current: &[String]) -> Result<(), PlanError> {
    let raw = a.to_string();
    if !current.is_empty() || !raw.contains('\n') {
        if let Some(text) = rewrite_array(&raw, target)? {
            // A raw token: the CST renders a number's text as given.
            let replacement = a
                .clone()
                .replace_with(jsonc_parser::cst::CstInputValue::Number(text));
            return match replacement {
                Some(_) => Ok(()),
                None => Err(internal("an array of daemon.json could not be replaced")),
            };
        }
    }
    for (i, t) in target.iter().enumerate() {
        a.insert(i, t.as_str().into());
    }
    Ok(())
}

/// An element of an array as the file writes it: its bytes, its value, and the separator
/// between it and the next element.
struct Element<'a> {
    text: &'a str,
    value: String,
    sep_after: Option<&'a str>,
}

/// An array's text in parts: the space after `[`, the elements, the space before `]`; `None`
/// when it is not an array of strings.
type ArrayParts<'a> = (&'a str, Vec<Element<'a>>, &'a str);

/// Split an array's text into its parts (see [`ArrayParts`]).
fn array_parts(raw: &str) -> Result<Option<ArrayParts<'_>>, PlanError> {
    use jsonc_parser::ast::Value;
    let Ok(ast) = jsonc_parser::parse_to_ast(raw, &Default::default(), &ParseOptions::default())
    else {
        return Ok(None);
    };
    let Some(Value::Array(arr)) = ast.value else {
        return Ok(None);
    };
    let Some(lits) = arr
        .elements
        .iter()
        .map(|e| e.as_string_lit())
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let misplaced = || internal("an array's elements are not where the JSON parser put them");
    let close = raw.len().checked_sub(1).ok_or_else(misplaced)?;
    let (lead, trail) = match (lits.first(), lits.last()) {
        (Some(f), Some(l)) => (raw.get(1..f.range.start), raw.get(l.range.end..close)),
        _ => (raw.get(1..close), Some("")),
    };
    let (Some(lead), Some(trail)) = (lead, trail) else {
        return Err(misplaced());
    };
    let nexts = lits.iter().skip(1).map(Some).chain([None]);
    let mut elems = Vec::with_capacity(lits.len());
    for (s, next) in lits.iter().zip(nexts) {
        let sep_after = match next {
            Some(n) => Some(raw.get(s.range.end..n.range.start).ok_or_else(misplaced)?),
            None => None,
        };
        elems.push(Element {
            text: raw.get(s.range.start..s.range.end).ok_or_else(misplaced)?,
            value: s.value.to_string(),
            sep_after,
        });
    }
    Ok(Some((lead, elems, trail)))
}

/// An array of strings holding `target`, written like `raw`: the user's elements keep their
/// bytes and, where they stay neighbours, the separator between them; new ones are JSON
/// strings joined with the array's first separator (for one element, a comma and the space
/// before it when that breaks the line, else `, `); the space inside the brackets stays.
/// Rendering the array anew (`", "` everywhere on one line; the CST's element edits, which
/// re-render the elements behind a new one and re-indent irregular layouts) could not be
/// taken back: disarm would not give the user's bytes back. `None` when `raw` is not an
/// array of strings.
fn rewrite_array(raw: &str, target: &[String]) -> Result<Option<String>, PlanError> {
    let Some((lead, elems, trail)) = array_parts(raw)? else {
        return Ok(None);
    };
    let line_sep = format!(",{lead}");
    let default_sep = match elems.first().and_then(|e| e.sep_after) {
        Some(s) => s,
        None if lead.contains(['\n', '\r']) => line_sep.as_str(),
        None => ", ",
    };
    let mut used = vec![false; elems.len()];
    let mut out = format!("[{lead}");
    let mut prev: Option<Option<usize>> = None;
    for t in target {
        // The user's first element holding `t` not used yet.
        let mut unused = elems.iter().zip(used.iter_mut()).enumerate();
        let found = unused
            .find(|(_, (e, used))| !**used && e.value == *t)
            .map(|(i, (e, used))| {
                *used = true;
                (i, e)
            });
        if let Some(p) = prev {
            let sep = match (p, found) {
                (Some(i), Some((j, _))) if j == i + 1 => elems
                    .get(i)
                    .and_then(|e| e.sep_after)
                    .unwrap_or(default_sep),
                _ => default_sep,
            };
            out.push_str(sep);
        }
        match found {
            Some((_, e)) => out.push_str(e.text),
            None => out.push_str(&serde_json::Value::from(t.as_str()).to_string()),
        }
        prev = Some(found.map(|(i, _)| i));
    }
    if target.is_empty() && format!("{lead}{trail}").contains(['\n', '\r']) {
        // Emptied: no blank lines left inside.
        return Ok(Some("[]".to_string()));
    }
    out.push_str(trail);
    out.push(']');
    Ok(Some(out))
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

#[cfg(test)]
mod no_panics {
    use super::*;

    /// States the planner's own checks rule out are reported as internal errors, not panics.
    #[test]
    fn impossible_states_are_internal_errors() {
        // Braces out of order in the rendered text.
        let e = restore_object_inside("}{".to_string(), &tok_layout(" ")).unwrap_err();
        assert!(e.message.starts_with("internal error: "), "{e}");
        assert!(e.message.ends_with(", please report"), "{e}");
        // A member that is not there, and an object too short to have an inside.
        assert_eq!(member_cut((0, 2), &[], 0), None);
        let only = Member {
            name: "a".into(),
            start: 1,
            end: 7,
        };
        assert_eq!(member_cut((0, 0), &[only], 0), None);
        // Not an array of strings: left to the CST, as before.
        assert_eq!(rewrite_array("{}", &[]).unwrap(), None);
        assert_eq!(rewrite_array("[1]", &[]).unwrap(), None);
        // A closing brace that is not where the parser put it (inside a character).
        let e = with_keys_after_last_member("{\"é\": 1}", 3, false, &[MIRRORS_KEY]).unwrap_err();
        assert!(e.message.starts_with("internal error: "), "{e}");
    }

    #[test]
    fn keys_after_the_last_member() {
        let body = "{\"a\": 1}";
        let t = with_keys_after_last_member(body, 7, false, &[MIRRORS_KEY]).unwrap();
        assert_eq!(t, "{\"a\": 1, \"registry-mirrors\": []}");
        let body = "{\n  \"a\": 1\n}";
        let t = with_keys_after_last_member(body, 11, true, &[MIRRORS_KEY, INSECURE_KEY]).unwrap();
        assert_eq!(
            t,
            "{\n  \"a\": 1,\n  \"registry-mirrors\": [\n  ],\n  \"insecure-registries\": [\n  ]\n}"
        );
    }
}
