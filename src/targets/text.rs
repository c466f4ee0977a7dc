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
    let after_bom = match f.bom {
        true => original.strip_prefix('\u{feff}').unwrap_or(original),
        false => original,
    };
    let mut off = original.len() - after_bom.len();
    if f.crlf {
        let body_before = body_offset;
        let mut seen = 0;
        for (i, ch) in after_bom.char_indices() {
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
    let old = Line::all(original);
    let new = Line::all(edited);
    let mut pairs = Pairing::new(old.len(), new.len());
    let tail = pairs.pair_blank_tail(&old, &new);
    let old_head = contents(old.get(..old.len() - tail).unwrap_or_default());
    let new_head = contents(new.get(..new.len() - tail).unwrap_or_default());
    pairs.pair_by_diff(&old_head, &new_head);
    pairs.extend_to_neighbours(&old_head, &new_head);
    pairs.pair_by_content(&old, &new);
    let out = pairs.render(&old, &new, edited.len());
    without_added_final_newline(original, out)
}

/// One line of a text: its bytes, line end included, and its content without the line end.
struct Line<'a> {
    raw: &'a str,
    content: &'a str,
}

impl<'a> Line<'a> {
    /// The lines of `text`, the last one maybe without a line end.
    fn all(text: &'a str) -> Vec<Line<'a>> {
        text.split_inclusive('\n')
            .map(|raw| {
                let l = raw.strip_suffix('\n').unwrap_or(raw);
                let content = l.strip_suffix('\r').unwrap_or(l);
                Line { raw, content }
            })
            .collect()
    }

    fn is_blank(&self) -> bool {
        self.content.trim().is_empty()
    }
}

/// The contents of some lines, what the diff compares.
fn contents<'a>(lines: &[Line<'a>]) -> Vec<&'a str> {
    lines.iter().map(|l| l.content).collect()
}

/// How many blank lines end the text.
fn blank_tail(lines: &[Line]) -> usize {
    lines.iter().rev().take_while(|l| l.is_blank()).count()
}

/// Which old line each new line of an edit takes its bytes or its line end from, built up by
/// [`keep_line_ends`] in steps, the surest pairs first.
struct Pairing {
    /// Per new line: the old line whose bytes it takes.
    take: Vec<Option<usize>>,
    /// Per new line: the old line whose line end it takes (a line rewritten in place).
    end_of: Vec<Option<usize>>,
    /// Per old line: whether a new line takes its bytes.
    used: Vec<bool>,
}

impl Pairing {
    fn new(old_len: usize, new_len: usize) -> Pairing {
        Pairing {
            take: vec![None; new_len],
            end_of: vec![None; new_len],
            used: vec![false; old_len],
        }
    }

    /// Pair the blank lines that end both texts, from the end: they are the file's trailing
    /// whitespace, which the editor keeps at the end, and the diff would otherwise pair a
    /// blank line the edit added with one of them. Returns how many were paired.
    fn pair_blank_tail(&mut self, old: &[Line], new: &[Line]) -> usize {
        let tail = blank_tail(old).min(blank_tail(new));
        let old_tail = (0..old.len()).rev().take(tail);
        for (t, j) in self.take.iter_mut().rev().zip(old_tail) {
            *t = Some(j);
            if let Some(u) = self.used.get_mut(j) {
                *u = true;
            }
        }
        tail
    }

    /// Pair the lines a patience diff aligns: lines found once in both texts anchor the
    /// alignment (Myers maximises the pairs, and paired a kept table's header with a new
    /// table's one after it). Lines it finds rewritten in place are paired for their line end,
    /// from the start of the block (a value edited and lines added after it, say). A worse
    /// diff (past the deadline) only means fewer lines keep their bytes.
    fn pair_by_diff(&mut self, old_head: &[&str], new_head: &[&str]) {
        use similar::{capture_diff_slices_deadline, Algorithm, DiffOp};
        let deadline = std::time::Instant::now().checked_add(std::time::Duration::from_secs(2));
        for op in capture_diff_slices_deadline(Algorithm::Patience, old_head, new_head, deadline) {
            match op {
                DiffOp::Equal {
                    old_index,
                    new_index,
                    len,
                } => {
                    for i in 0..len {
                        self.pair(new_index + i, old_index + i);
                    }
                }
                DiffOp::Replace {
                    old_index,
                    old_len,
                    new_index,
                    new_len,
                } => {
                    let ends = self.end_of.iter_mut().skip(new_index).take(new_len);
                    for (e, j) in ends.zip(old_index..old_index + old_len) {
                        *e = Some(j);
                    }
                }
                _ => {}
            }
        }
    }

    /// New line `i` takes the bytes of old line `j`.
    fn pair(&mut self, i: usize, j: usize) {
        if let Some(t) = self.take.get_mut(i) {
            *t = Some(j);
        }
        if let Some(u) = self.used.get_mut(j) {
            *u = true;
        }
    }

    /// Of lines with the same content the diff may pair the wrong ones: a kept line with the
    /// copy in a table removed after it, a new table's line with the kept one it was inserted
    /// before. Alignments are extended to their neighbours instead (an aligned pair whose next
    /// or previous lines have the same content pairs those too, taking them from where they
    /// were paired), so each line stays with its context, and with its line end. Only the
    /// heads (before the paired blank tail) take part.
    fn extend_to_neighbours(&mut self, old_head: &[&str], new_head: &[&str]) {
        let mut of_old: Vec<Option<usize>> = vec![None; old_head.len()];
        for (i, t) in self.take.iter().take(new_head.len()).enumerate() {
            if let Some(slot) = t.and_then(|j| of_old.get_mut(j)) {
                *slot = Some(i);
            }
        }
        let mut changed = true;
        let mut rounds = 0;
        while changed && rounds < 8 {
            changed = false;
            rounds += 1;
            for i in 0..new_head.len() {
                let Some(j) = self.take.get(i).copied().flatten() else {
                    continue;
                };
                // Blank lines say nothing about what is next to them.
                if old_head.get(j).is_none_or(|c| c.trim().is_empty()) {
                    continue;
                }
                for (ni, nj) in [
                    (i.checked_add(1), j.checked_add(1)),
                    (i.checked_sub(1), j.checked_sub(1)),
                ] {
                    let (Some(ni), Some(nj)) = (ni, nj) else {
                        continue;
                    };
                    let same = matches!(
                        (new_head.get(ni), old_head.get(nj)),
                        (Some(n), Some(o)) if n == o
                    );
                    if !same || self.take.get(ni) == Some(&Some(nj)) {
                        continue;
                    }
                    self.move_pair(ni, nj, &mut of_old);
                    changed = true;
                }
            }
        }
    }

    /// Pair new line `ni` with old line `nj`, undoing the pairs either had (`of_old`: per old
    /// line of the head, the new line paired with it).
    fn move_pair(&mut self, ni: usize, nj: usize, of_old: &mut [Option<usize>]) {
        if let Some(oj) = self.take.get(ni).copied().flatten() {
            if let Some(slot) = of_old.get_mut(oj) {
                *slot = None;
            }
            if let Some(u) = self.used.get_mut(oj) {
                *u = false;
            }
        }
        if let Some(oi) = of_old.get(nj).copied().flatten() {
            if let Some(t) = self.take.get_mut(oi) {
                *t = None;
            }
        }
        self.pair(ni, nj);
        if let Some(slot) = of_old.get_mut(nj) {
            *slot = Some(ni);
        }
    }

    /// Lines the diff did not align (moved with a table, say): an unused old line with the
    /// same content gives its bytes, the first such line to the first new one.
    fn pair_by_content(&mut self, old: &[Line], new: &[Line]) {
        let mut by_content: std::collections::HashMap<&str, std::collections::VecDeque<usize>> =
            Default::default();
        for (j, l) in old.iter().enumerate() {
            if !self.used.get(j).copied().unwrap_or(true) {
                by_content.entry(l.content).or_default().push_back(j);
            }
        }
        for (t, l) in self.take.iter_mut().zip(new) {
            if t.is_none() {
                *t = by_content.get_mut(l.content).and_then(|q| q.pop_front());
            }
        }
    }

    /// The new text with the paired lines' bytes: a line taking an old one's bytes is that
    /// line, a line rewritten in place gets its old line's end (`\r\n` or `\n`), every other
    /// line `\n`; a line after one without a line end is put on a line of its own.
    fn render(&self, old: &[Line], new: &[Line], len: usize) -> String {
        let mut out = String::with_capacity(len + 16);
        for (i, line) in new.iter().enumerate() {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            let old_line =
                |of: &[Option<usize>]| of.get(i).copied().flatten().and_then(|j| old.get(j));
            match old_line(&self.take) {
                Some(o) => out.push_str(o.raw),
                None if !line.raw.ends_with('\n') => out.push_str(line.raw),
                None => {
                    out.push_str(line.content);
                    let crlf = old_line(&self.end_of).is_some_and(|o| o.raw.ends_with("\r\n"));
                    out.push_str(if crlf { "\r\n" } else { "\n" });
                }
            }
        }
        out
    }
}

/// Take off the final newline of an edit of a text that had none (keys appended after its last
/// line end the edit with one, which taking them out again could not tell from the user's).
fn without_added_final_newline(original: &str, mut out: String) -> String {
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

#[cfg(test)]
mod no_panics {
    use super::*;

    /// A framing that does not match the text (a BOM it lacks) maps offsets without panicking.
    #[test]
    fn a_framing_claiming_a_missing_bom_does_not_panic() {
        let f = Framing {
            bom: true,
            crlf: true,
        };
        assert_eq!(original_offset("ab\r\nc", f, 3), 4);
        let f = Framing {
            bom: true,
            crlf: false,
        };
        assert_eq!(original_offset("ab", f, 1), 1);
    }
}
