//! Where `warm`'s images come from: the command line, a list file (one reference a line), or a
//! Dockerfile's `FROM` lines (global `ARG` defaults substituted, stage names and `scratch`
//! skipped). Every bad line is an error naming the file and the line, with the fix.

use crate::error::UserError;
use crate::oci::Reference;
use std::collections::HashMap;
use std::path::Path;

/// One image to warm and where it was named (`command line`, `images.txt:3`, `Dockerfile:7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub image: Reference,
    pub origin: String,
}

/// Add `image` unless an earlier source named the same reference.
fn push(out: &mut Vec<Source>, image: Reference, origin: String) {
    if !out.iter().any(|s| s.image == image) {
        out.push(Source { image, origin });
    }
}

/// Images given as arguments.
pub fn from_args(args: &[String], out: &mut Vec<Source>) -> Result<(), UserError> {
    for a in args {
        let image = a.parse::<Reference>().map_err(|e| {
            UserError(format!(
                "`{a}` is not an image reference ({e}); give e.g. docker.io/library/alpine:3.20"
            ))
        })?;
        push(out, image, "command line".into());
    }
    Ok(())
}

/// A list file: one reference a line; blank lines and `#` comments are skipped.
pub fn from_list(path: &Path, text: &str, out: &mut Vec<Source>) -> Result<(), UserError> {
    let before = out.len();
    for (i, line) in text.lines().enumerate() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{}:{}", path.display(), i + 1);
        let image = line.parse::<Reference>().map_err(|e| {
            UserError(format!(
                "{at}: `{line}` is not an image reference ({e}); write one reference a line, e.g. docker.io/library/alpine:3.20"
            ))
        })?;
        push(out, image, at);
    }
    if out.len() == before && !text.lines().any(|l| !l.trim().is_empty()) {
        return Err(UserError(format!(
            "{}: no image listed; write one reference a line",
            path.display()
        )));
    }
    Ok(())
}

/// The Dockerfile's instructions: (first line number, text), continuation lines joined,
/// comments dropped.
fn instructions(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if cur.is_none() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        let (cont, part) = match line.strip_suffix('\\') {
            Some(p) => (true, p),
            None => (false, line),
        };
        let entry = cur.get_or_insert_with(|| (i + 1, String::new()));
        if !part.starts_with('#') {
            entry.1.push_str(part);
            entry.1.push(' ');
        }
        if !cont {
            out.extend(cur.take());
        }
    }
    out.extend(cur);
    out
}

/// Split `A=1 B="two words" C` into (name, default) pairs.
fn arg_pairs(rest: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut chars = rest.trim().chars().peekable();
    while chars.peek().is_some() {
        let mut word = String::new();
        let mut quote: Option<char> = None;
        for c in chars.by_ref() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, c) => word.push(c),
            }
        }
        if word.is_empty() {
            continue;
        }
        match word.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
            None => out.push((word, None)),
        }
    }
    out
}

/// `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}` replaced from `args`; the name of
/// the first variable without a value is the error.
fn substitute(s: &str, args: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (body, tail) = if let Some(b) = after.strip_prefix('{') {
            let end = b.find('}').ok_or_else(|| format!("${{{b}"))?;
            (&b[..end], &b[end + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let (name, default) = match body.split_once(":-").or_else(|| body.split_once('-')) {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        match args
            .get(name)
            .filter(|v| !v.is_empty())
            .map(String::as_str)
            .or(default)
        {
            Some(v) => out.push_str(v),
            None => return Err(name.to_string()),
        }
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// The images of a Dockerfile's `FROM` lines.
pub fn from_dockerfile(path: &Path, text: &str, out: &mut Vec<Source>) -> Result<(), UserError> {
    let mut args: HashMap<String, String> = HashMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut seen_from = false;
    for (line, inst) in instructions(text) {
        let at = format!("{}:{line}", path.display());
        let (word, rest) = inst.trim().split_once(' ').unwrap_or((inst.trim(), ""));
        if word.eq_ignore_ascii_case("ARG") && !seen_from {
            for (k, v) in arg_pairs(rest) {
                args.insert(k, v.unwrap_or_default());
            }
        } else if word.eq_ignore_ascii_case("FROM") {
            seen_from = true;
            if let Some(image) = from_line(&at, rest, &args, &mut stages)? {
                push(out, image, at);
            }
        }
    }
    if !seen_from {
        return Err(UserError(format!(
            "{}: no FROM line; give a Dockerfile, or list the images with --from-file",
            path.display()
        )));
    }
    Ok(())
}

/// One `FROM [--flag=…] image [AS name]`: the image, or `None` for `scratch` and a stage name.
fn from_line(
    at: &str,
    rest: &str,
    args: &HashMap<String, String>,
    stages: &mut Vec<String>,
) -> Result<Option<Reference>, UserError> {
    let words: Vec<&str> = rest
        .split_whitespace()
        .filter(|w| !w.starts_with("--"))
        .collect();
    let Some(raw) = words.first() else {
        return Err(UserError(format!(
            "{at}: FROM names no image; write FROM IMAGE[:TAG] [AS NAME]"
        )));
    };
    if let [_, as_word, name, ..] = words.as_slice() {
        if as_word.eq_ignore_ascii_case("as") {
            stages.push(name.to_ascii_lowercase());
        }
    }
    let image = substitute(raw, args).map_err(|name| {
        UserError(format!(
            "{at}: FROM `{raw}` uses ${name}, which has no default; give it one (ARG {name}=VALUE before the first FROM) or list the image with --from-file"
        ))
    })?;
    let lower = image.to_ascii_lowercase();
    // The stage being defined on this line is not a source of itself.
    let defined_here = usize::from(words.len() >= 3);
    let earlier = stages
        .get(..stages.len().saturating_sub(defined_here))
        .unwrap_or_default();
    if lower == "scratch" || earlier.contains(&lower) {
        return Ok(None);
    }
    image.parse::<Reference>().map(Some).map_err(|e| {
        UserError(format!(
            "{at}: FROM `{image}` is not an image reference ({e}); fix the FROM line or list the image with --from-file"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(v: &[Source]) -> Vec<String> {
        v.iter().map(|s| s.image.to_string()).collect()
    }

    #[test]
    fn list_files() {
        let mut out = Vec::new();
        let text = "# base images\nalpine:3.20\n\n  ghcr.io/o/app:1  # the app\nalpine:3.20\n";
        from_list(Path::new("l.txt"), text, &mut out).unwrap();
        assert_eq!(
            refs(&out),
            ["docker.io/library/alpine:3.20", "ghcr.io/o/app:1"]
        );
        assert_eq!(out[1].origin, "l.txt:4");
        let e = from_list(Path::new("l.txt"), "alpine\nNot Valid!\n", &mut Vec::new());
        let msg = e.unwrap_err().0;
        assert!(msg.starts_with("l.txt:2: `Not Valid!`"), "{msg}");
        assert!(from_list(Path::new("e.txt"), "\n\n", &mut Vec::new()).is_err());
    }

    #[test]
    fn dockerfiles() {
        let text = "# syntax=docker/dockerfile:1\nARG BASE=debian \\\n  TAG=\"12-slim\"\nARG GO\n\
                    FROM --platform=$BUILDPLATFORM golang:${GO:-1.22} AS build\nRUN make\n\
                    FROM build AS test\nFROM ${BASE}:${TAG}\nCOPY --from=build /x /x\n\
                    FROM scratch\nfrom alpine:3 as Final\nFROM final\n";
        let mut out = Vec::new();
        from_dockerfile(Path::new("Dockerfile"), text, &mut out).unwrap();
        assert_eq!(
            refs(&out),
            [
                "docker.io/library/golang:1.22",
                "docker.io/library/debian:12-slim",
                "docker.io/library/alpine:3"
            ],
            "{out:?}"
        );
        assert_eq!(out[0].origin, "Dockerfile:5");
    }

    #[test]
    fn dockerfile_errors_name_the_line() {
        let cases = [
            (
                "FROM $NOPE\n",
                "Dockerfile:1: FROM `$NOPE` uses $NOPE, which has no default",
            ),
            ("RUN x\n", "Dockerfile: no FROM line"),
            ("ARG A=1\n\nFROM\n", "Dockerfile:3: FROM names no image"),
            (
                "FROM a\nFROM Bad Name\n",
                "Dockerfile:2: FROM `Bad` is not an image reference",
            ),
        ];
        for (text, want) in cases {
            let e = from_dockerfile(Path::new("Dockerfile"), text, &mut Vec::new()).unwrap_err();
            assert!(e.0.starts_with(want), "{text:?}: {}", e.0);
        }
    }

    #[test]
    fn substitution() {
        let args: HashMap<String, String> = [("A".to_string(), "x".to_string())].into();
        assert_eq!(
            substitute("$A/${A}:${B:-1}-${C-2}", &args).unwrap(),
            "x/x:1-2"
        );
        assert_eq!(substitute("${B}", &args).unwrap_err(), "B");
    }
}
