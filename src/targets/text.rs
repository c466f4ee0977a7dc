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
    let crlf = lf > 0 && body.matches("\r\n").count() == lf;
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
    }
}
