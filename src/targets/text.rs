//! Byte-level conventions every planner keeps: a UTF-8 byte order mark and CRLF line endings
//! survive an edit, and the edit itself works on plain LF text.

/// How a file's text is framed around its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    pub bom: bool,
    pub crlf: bool,
}

/// Strip a BOM and, when every line ends in CRLF, turn CRLF into LF.
pub fn unframe(text: &str) -> (Framing, String) {
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let lf = body.matches('\n').count();
    // Not when a line ends in `\r\r\n`: the body would still hold a CR before an LF, which
    // the clients' parsers then never see (a TOML parser refuses the lone `\r`).
    let crlf = lf > 0 && body.matches("\r\n").count() == lf && !body.contains("\r\r\n");
    let body = if crlf {
        body.replace("\r\n", "\n")
    } else {
        body.to_string()
    };
    (Framing { bom, crlf }, body)
}

/// Put the framing back on edited text.
pub fn reframe(f: Framing, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 8);
    if f.bom {
        out.push('\u{feff}');
    }
    if f.crlf {
        out.push_str(&body.replace('\n', "\r\n"));
    } else {
        out.push_str(body);
    }
    out
}

/// Byte offset in the original text (with BOM and CRs) of an offset in the unframed body.
pub fn original_offset(original: &str, f: Framing, body_offset: usize) -> usize {
    let mut off = if f.bom { '\u{feff}'.len_utf8() } else { 0 };
    if f.crlf {
        let body_before = body_offset;
        let mut seen = 0;
        for (i, ch) in original[off..].char_indices() {
            if seen >= body_before {
                return off + i;
            }
            if ch != '\r' {
                seen += ch.len_utf8();
            }
        }
        original.len()
    } else {
        off += body_offset;
        off.min(original.len())
    }
}

/// Give an edited text the line-end bytes of the text it was made from. Editors that render
/// every line end as `\n` and always end with one (toml_edit) would otherwise drop the `\r` of
/// lines in a file whose line ends are mixed (`unframe` only converts a file that is CRLF
/// throughout) and add a final newline the file lacked — bytes that taking the edit out again
/// could not restore. Lines the edit kept (or moved) come back verbatim, a line it rewrote in
/// place keeps its old line end (paired from the start of a rewritten block), new lines get
/// `\n`, and a missing final newline stays missing.
pub fn keep_line_ends(original: &str, edited: &str) -> String {
    use similar::{capture_diff_slices_deadline, Algorithm, DiffOp};
    let old: Vec<&str> = original.split_inclusive('\n').collect();
    let new: Vec<&str> = edited.split_inclusive('\n').collect();
    let content = |l: &&'_ str| -> String {
        let l = l.strip_suffix('\n').unwrap_or(l);
        l.strip_suffix('\r').unwrap_or(l).to_string()
    };
    let (o, n): (Vec<String>, Vec<String>) = (
        old.iter().map(content).collect(),
        new.iter().map(content).collect(),
    );
    // Per new line: the old line whose bytes it takes, or whose line end it takes.
    let mut take: Vec<Option<usize>> = vec![None; new.len()];
    let mut end_of: Vec<Option<usize>> = vec![None; new.len()];
    let mut used = vec![false; old.len()];
    // The blank lines that end both texts pair up from the end: they are the file's trailing
    // whitespace, which the editor keeps at the end, and the diff would otherwise pair a
    // blank line the edit added with one of them.
    let blank_tail = |v: &[String]| v.iter().rev().take_while(|c| c.trim().is_empty()).count();
    let tail = blank_tail(&o).min(blank_tail(&n));
    for i in 1..=tail {
        take[new.len() - i] = Some(old.len() - i);
        used[old.len() - i] = true;
    }
    let (o_head, n_head) = (&o[..o.len() - tail], &n[..n.len() - tail]);
    // Patience diff: lines found once in both texts anchor the alignment (Myers maximises the
    // pairs, and paired a kept table's header with a new table's one after it). A worse diff
    // (past the deadline) only means fewer lines keep their bytes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    for op in capture_diff_slices_deadline(Algorithm::Patience, o_head, n_head, Some(deadline)) {
        match op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => {
                for i in 0..len {
                    take[new_index + i] = Some(old_index + i);
                    used[old_index + i] = true;
                }
            }
            // Lines rewritten in place, paired from the start of the block (a value edited
            // and lines added after it, say).
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                for i in 0..new_len.min(old_len) {
                    end_of[new_index + i] = Some(old_index + i);
                }
            }
            _ => {}
        }
    }
    // Of lines with the same content the diff may pair the wrong ones: a kept line with the
    // copy in a table removed after it, a new table's line with the kept one it was inserted
    // before. Alignments are extended to their neighbours instead (an aligned pair whose next
    // or previous lines have the same content pairs those too, taking them from where they
    // were paired), so each line stays with its context, and with its line end.
    let head = new.len() - tail;
    let mut of_old: Vec<Option<usize>> = vec![None; old.len()];
    for (i, t) in take[..head].iter().enumerate() {
        if let Some(j) = *t {
            of_old[j] = Some(i);
        }
    }
    let mut changed = true;
    let mut rounds = 0;
    while changed && rounds < 8 {
        changed = false;
        rounds += 1;
        for i in 0..head {
            let Some(j) = take[i] else { continue };
            // Blank lines say nothing about what is next to them.
            if o[j].trim().is_empty() {
                continue;
            }
            for (ni, nj) in [(i + 1, j + 1), (i.wrapping_sub(1), j.wrapping_sub(1))] {
                if ni >= head || nj >= old.len() - tail || take[ni] == Some(nj) || o[nj] != n[ni] {
                    continue;
                }
                if let Some(oj) = take[ni] {
                    of_old[oj] = None;
                    used[oj] = false;
                }
                if let Some(oi) = of_old[nj] {
                    take[oi] = None;
                }
                take[ni] = Some(nj);
                of_old[nj] = Some(ni);
                used[nj] = true;
                changed = true;
            }
        }
    }
    // Lines the diff did not align (moved with a table, say): an unused old line with the
    // same content gives its bytes.
    let mut by_content: std::collections::HashMap<&str, std::collections::VecDeque<usize>> =
        Default::default();
    for (j, c) in o.iter().enumerate().filter(|(j, _)| !used[*j]) {
        by_content.entry(c.as_str()).or_default().push_back(j);
    }
    for (i, t) in take.iter_mut().enumerate() {
        if t.is_none() {
            *t = by_content
                .get_mut(n[i].as_str())
                .and_then(|q| q.pop_front());
        }
    }
    let mut out = String::with_capacity(edited.len() + 16);
    for (i, line) in new.iter().enumerate() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        match take[i] {
            Some(j) => out.push_str(old[j]),
            None if !line.ends_with('\n') => out.push_str(line),
            None => {
                out.push_str(&n[i]);
                let old_end = end_of[i].map(|j| &old[j][o[j].len()..]);
                out.push_str(match old_end {
                    Some("\r\n") => "\r\n",
                    _ => "\n",
                });
            }
        }
    }
    if !original.is_empty() && !original.ends_with('\n') && out.ends_with('\n') {
        out.pop();
        if out.ends_with('\r') {
            out.pop();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for t in ["", "a\n", "\u{feff}a\r\nb\r\n", "a\r\nb\n", "x"] {
            let (f, body) = unframe(t);
            assert_eq!(reframe(f, &body), t, "{t:?}");
        }
        let (f, body) = unframe("\u{feff}a\r\nb\r\n");
        assert!(f.bom && f.crlf);
        assert_eq!(body, "a\nb\n");
        assert_eq!(original_offset("\u{feff}a\r\nb\r\n", f, 2), 3 + 3);
        // Found by the fuzz harness: "a\r\r\n" was CRLF-framed, and the TOML planners then
        // accepted a file with a lone CR the clients refuse.
        let (f, body) = unframe("a\r\r\nb\r\n");
        assert!(!f.crlf);
        assert_eq!(body, "a\r\r\nb\r\n");
    }

    #[test]
    fn edits_keep_line_ends() {
        // Mixed line ends: kept lines keep their `\r`, a line rewritten in place keeps its line
        // end, new lines get `\n`; taking the edit out again gives the original back.
        let orig = "a = 1\r\nb = [1]\r\nc = 3\n";
        let edited = "a = 1\nb = [0, 1]\nc = 3\n\n[t]\nx = 1\n";
        let armed = keep_line_ends(orig, edited);
        assert_eq!(armed, "a = 1\r\nb = [0, 1]\r\nc = 3\n\n[t]\nx = 1\n");
        assert_eq!(keep_line_ends(&armed, "a = 1\nb = [1]\nc = 3\n"), orig);
        // No final newline: none is added, lines appended after the last one are separated.
        let orig = "a = 1";
        let armed = keep_line_ends(orig, "a = 1\n\n[t]\nx = 1\n");
        assert_eq!(armed, "a = 1\n\n[t]\nx = 1");
        assert_eq!(keep_line_ends(&armed, "a = 1\n"), orig);
        assert_eq!(keep_line_ends("", "a = 1\n"), "a = 1\n");
        // A line rewritten while lines are added after it keeps its line end (fuzz harness:
        // `mirrors = []\r\n` in an LF file lost its `\r` once the mirror's table followed it).
        let orig = "[r]\nmirrors = []\r\n[s]\n";
        let armed = keep_line_ends(orig, "[r]\nmirrors = [\"m\"]\n\n[t]\nhttp = true\n[s]\n");
        assert_eq!(armed, "[r]\nmirrors = [\"m\"]\r\n\n[t]\nhttp = true\n[s]\n");
        assert_eq!(keep_line_ends(&armed, "[r]\nmirrors = []\n[s]\n"), orig);
        // The trailing blank lines keep theirs, though the edit adds blank lines before them
        // (fuzz harness: a last "\r\n" in an LF file gave its CR to a table's blank line).
        let orig = "[a]\nx = 1\n\r\n";
        let armed = keep_line_ends(orig, "[a]\nx = 1\n\n[b]\ny = 2\n\n");
        assert_eq!(armed, "[a]\nx = 1\n\n[b]\ny = 2\n\r\n");
        assert_eq!(keep_line_ends(&armed, "[a]\nx = 1\n\n"), orig);
        // Of two lines with one content, the one the edit kept keeps its line end (fuzz
        // harness: disarm aligned the kept `  http = true` with the removed table's copy).
        let orig = "[a]\n  http = true\r\n";
        let armed = keep_line_ends(orig, "[a]\n  http = true\n\n[b]\n  http = true\n");
        assert_eq!(armed, "[a]\n  http = true\r\n\n[b]\n  http = true\n");
        assert_eq!(keep_line_ends(&armed, "[a]\n  http = true\n"), orig);
        // A table inserted before a kept one whose header it repeats: the kept header keeps
        // its line end (fuzz harness: `[[registry.mirror]]\r\n` lost its CR to the new one).
        let orig = "[[r]]\nx = 1\n[[r.m]]\r\nl = \"u\"\r\n";
        let armed = keep_line_ends(
            orig,
            "[[r]]\nx = 1\n\n[[r.m]]\nl = \"a\"\n[[r.m]]\nl = \"u\"\n",
        );
        assert_eq!(
            armed,
            "[[r]]\nx = 1\n\n[[r.m]]\nl = \"a\"\n[[r.m]]\r\nl = \"u\"\r\n"
        );
        assert_eq!(
            keep_line_ends(&armed, "[[r]]\nx = 1\n[[r.m]]\nl = \"u\"\n"),
            orig
        );
        // A line the diff does not align (its block moved) keeps its bytes too.
        let orig = "[a]\nx = 1\n\n[b]\r\ny = 2\r\n";
        assert_eq!(
            keep_line_ends(orig, "[b]\ny = 2\n\n[a]\nx = 1\n"),
            "[b]\r\ny = 2\r\n\n[a]\nx = 1\n"
        );
    }
}
