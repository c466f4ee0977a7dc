//! Where a `key: value` pair's value is written, and how a string is written back as a literal
//! block in its place.

use super::scan::{Entry, Value};
use yaml_rust2::scanner::TScalarStyle;
use yaml_rust2::{Yaml, YamlLoader};

/// A value as written: from just after the key's `:` to the end of the value's last line (its
/// line break excluded), with a comment that ends that line.
#[derive(Debug, Clone)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    /// A block scalar's content indentation.
    pub content_indent: Option<usize>,
    /// Where a block scalar's first content line starts.
    pub content_start: Option<usize>,
    /// `  # comment` ending the value's (or the block header's) line, its spaces included.
    pub comment: String,
    /// The key's column.
    pub key_col: usize,
}

const CANNOT: &str = "mirrorctl cannot find where this value ends";

/// The offset after the key's text.
fn key_end(body: &str, e: &Entry) -> Option<usize> {
    let at = e.key_pos.index;
    let rest = body.get(at..)?;
    let len = match rest.chars().next()? {
        '"' => closing_double(rest)?,
        '\'' => closing_single(rest)?,
        _ => e.key.len(),
    };
    Some(at + len)
}

/// The length up to and including the closing quote of a double-quoted scalar at `s`'s start.
fn closing_double(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match (c, escaped) {
            (_, true) => escaped = false,
            ('\\', false) => escaped = true,
            ('"', false) => return Some(i + 1),
            _ => {}
        }
    }
    None
}

fn closing_single(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        if b.get(i) == Some(&b'\'') {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// The end of the line holding `at`, before its line break.
fn line_end(body: &str, at: usize) -> usize {
    let end = body
        .get(at..)
        .and_then(|r| r.find('\n'))
        .map_or(body.len(), |n| at + n);
    if end > at && body.get(end - 1..end) == Some("\r") {
        end - 1
    } else {
        end
    }
}

/// The comment (with its spaces) from `at` to the end of the line, or `None` when the rest of
/// the line holds something else; empty when it holds only spaces.
fn rest_comment(body: &str, at: usize) -> Option<String> {
    let rest = body.get(at..line_end(body, at))?;
    let t = rest.trim_start_matches([' ', '\t']);
    (t.is_empty() || t.starts_with('#')).then(|| if t.is_empty() { "" } else { rest }.to_string())
}

/// Where `e`'s value is written.
pub fn value(body: &str, e: &Entry) -> Result<Span, String> {
    if e.decorated {
        return Err(format!(
            "`{}` has an anchor or a tag; write it as a plain value, then rerun",
            e.key
        ));
    }
    let after_key = key_end(body, e).ok_or(CANNOT)?;
    let colon = after_key
        + body
            .get(after_key..)
            .ok_or(CANNOT)?
            .find(|c| c != ' ' && c != '\t')
            .ok_or(CANNOT)?;
    if body.get(colon..colon + 1) != Some(":") {
        return Err(CANNOT.into());
    }
    let start = colon + 1;
    let Value::Scalar { text, style } = &e.value else {
        return Err(CANNOT.into());
    };
    let key_col = e.key_pos.col;
    let mut content_start = None;
    let (end, content_indent, comment) = match style {
        TScalarStyle::Literal | TScalarStyle::Folded => {
            let (end, indent, comment, first) = block(body, e, start)?;
            content_start = Some(first);
            (end, indent, comment)
        }
        TScalarStyle::Plain if text.is_empty() => {
            let comment = rest_comment(body, start).ok_or(CANNOT)?;
            (line_end(body, start), None, comment)
        }
        _ => {
            let at = e.value_pos.index;
            let rest = body.get(at..).ok_or(CANNOT)?;
            let len = match style {
                TScalarStyle::DoubleQuoted => closing_double(rest),
                TScalarStyle::SingleQuoted => closing_single(rest),
                _ => Some(plain_len(body, at, e.bound)),
            }
            .ok_or(CANNOT)?;
            let comment = rest_comment(body, at + len).ok_or(CANNOT)?;
            (line_end(body, at + len), None, comment)
        }
    };
    Ok(Span {
        start,
        end,
        content_indent,
        content_start,
        comment,
        key_col,
    })
}

/// A plain scalar's length: up to a comment or the next event, trailing spaces left out.
fn plain_len(body: &str, at: usize, bound: usize) -> usize {
    let bound = bound.max(at).min(body.len());
    let text = body.get(at..bound).unwrap_or("");
    let mut end = text.len();
    let mut prev_ws = false;
    for (i, c) in text.char_indices() {
        if c == '#' && prev_ws {
            end = i;
            break;
        }
        prev_ws = matches!(c, ' ' | '\t' | '\n' | '\r');
    }
    text.get(..end).unwrap_or("").trim_end().len()
}

/// A block scalar whose header follows `start` (after the key's `:`): its end, content
/// indentation, header comment, and where its content starts.
fn block(
    body: &str,
    e: &Entry,
    start: usize,
) -> Result<(usize, Option<usize>, String, usize), String> {
    let ws = body
        .get(start..)
        .map_or(0, |r| r.len() - r.trim_start_matches([' ', '\t']).len());
    let at = start + ws;
    if !matches!(body.get(at..at + 1), Some("|") | Some(">")) {
        return Err(CANNOT.into());
    }
    let header_end = line_end(body, at);
    let header = body.get(at..header_end).unwrap_or("");
    let comment = header
        .char_indices()
        .find_map(|(i, c)| {
            let before = header.get(..i)?;
            (c == '#' && before.ends_with([' ', '\t'])).then(|| {
                let code = before.trim_end_matches([' ', '\t']).len();
                header.get(code..).unwrap_or("").to_string()
            })
        })
        .unwrap_or_default();
    let mut end = header_end;
    let mut indent = None;
    let mut off = body
        .get(header_end..)
        .and_then(|r| r.find('\n'))
        .map_or(body.len(), |n| header_end + n + 1);
    let first = off;
    let bound = e.bound.min(body.len());
    while off < bound {
        let le = line_end(body, off);
        let line = body.get(off..le).unwrap_or("");
        let spaces = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim_matches([' ', '\t']).is_empty();
        if !blank {
            if spaces <= e.key_pos.col {
                break;
            }
            indent.get_or_insert(spaces);
            end = le;
        }
        off = body
            .get(le..)
            .and_then(|r| r.find('\n'))
            .map_or(body.len(), |n| le + n + 1);
    }
    Ok((end, indent, comment, first))
}

/// The string as Earthly gets it, up to trailing white space (TOML ignores it): without it,
/// and with one final line break unless the value ends the file with none.
pub fn fit(s: &str, at_eof: bool) -> String {
    let t = s.trim_end_matches([' ', '\t', '\n', '\r']);
    if t.is_empty() || at_eof {
        t.to_string()
    } else {
        format!("{t}\n")
    }
}

/// `new` written as a literal block in place of `span` (from after the `:`).
pub fn encode(new: &str, span: &Span, at_eof: bool, step: usize) -> Result<String, String> {
    let t = fit(new, at_eof);
    let content = t.trim_end_matches('\n');
    if content.is_empty() {
        return Ok(format!(" \"\"{}", span.comment));
    }
    if content.contains('\r') {
        return Err(
            "the string holds a carriage return, which a YAML literal block cannot keep; write the TOML with plain line breaks, then rerun".into(),
        );
    }
    let indent = span
        .content_indent
        .unwrap_or(span.key_col + step.clamp(1, 9));
    let first = content.split('\n').find(|l| !l.is_empty()).unwrap_or("");
    let indicator = if first.starts_with([' ', '\t']) {
        let n = indent.saturating_sub(span.key_col);
        if !(1..=9).contains(&n) {
            return Err(
                "the string starts with indented text, which needs a YAML indentation indicator this file's indentation does not allow".into(),
            );
        }
        n.to_string()
    } else {
        String::new()
    };
    let pad = " ".repeat(indent);
    let lines: Vec<String> = content
        .split('\n')
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect();
    Ok(format!(
        " |{indicator}{}\n{}",
        span.comment,
        lines.join("\n")
    ))
}

/// The string a value written as `source` (after a key at column `col`) reads as.
pub fn decode(token: &str) -> Option<(String, &str)> {
    let (col, source) = token.split_once(':')?;
    let col: usize = col.parse().ok()?;
    let doc = format!("{}x:{source}\n", " ".repeat(col));
    let y = YamlLoader::load_from_str(&doc).ok()?.into_iter().next()?;
    let s = match &y["x"] {
        Yaml::String(s) => s.clone(),
        Yaml::Null => String::new(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Real(r) => r.clone(),
        Yaml::Boolean(b) => b.to_string(),
        _ => return None,
    };
    Some((s, source))
}
