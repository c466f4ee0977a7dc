//! One pass over the YAML events of an Earthly config (yaml-rust2's parser, pulled event by
//! event: no recursion, so a deeply nested file is refused, never a stack overflow). It checks
//! what Earthly's yaml.v3 checks that yaml-rust2 does not report where it is (a key defined twice
//! in a mapping, reported at the second key with the line of the first) and records where the
//! keys the planner edits are: the root mapping's entries, and `global`'s.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// Nesting deeper than this is refused (Earthly's config is three levels deep).
const MAX_DEPTH: usize = 64;

/// Where a node starts: byte offset in the body, 1-based line, 0-based column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub index: usize,
    pub line: usize,
    pub col: usize,
}

/// What a value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Scalar { text: String, style: TScalarStyle },
    Map { flow: bool },
    Seq,
    Alias,
}

/// One `key: value` of a recorded mapping.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Value,
    pub value_pos: Pos,
    /// An anchor or a tag on the value.
    pub decorated: bool,
    /// Where the event after the value starts: a scalar value ends before it.
    pub bound: usize,
}

/// What the planner needs to know about the document.
#[derive(Debug, Default)]
pub struct Scan {
    pub documents: usize,
    /// The root node: `None` for an empty document.
    pub root: Option<(Value, Pos)>,
    pub root_entries: Vec<Entry>,
    pub global_entries: Vec<Entry>,
    /// The indentation step of the first nested block mapping (`global:` → its keys).
    pub step: Option<usize>,
}

impl Scan {
    pub fn global(&self) -> Option<&Entry> {
        self.root_entries.iter().find(|e| e.key == "global")
    }

    pub fn key(&self) -> Option<&Entry> {
        self.global_entries.iter().find(|e| e.key == super::KEY)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Record {
    None,
    Root,
    Global,
}

struct MapFrame {
    /// Scalar keys seen, with their line.
    keys: HashMap<String, usize>,
    expect_key: bool,
    key: Option<(String, Pos)>,
    record: Record,
    /// The column of the key whose value this mapping is (for the indentation step).
    parent_col: Option<usize>,
}

enum Frame {
    Map(MapFrame),
    Seq,
}

/// Read the events of `body`; errors carry body offsets (the caller maps them to the file).
pub fn scan(body: &str) -> Result<Scan, (usize, String)> {
    let at = byte_offsets(body);
    let mut parser = Parser::new_from_str(body);
    let mut st = State {
        body,
        out: Scan::default(),
        stack: Vec::new(),
        pending_bound: None,
    };
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| {
            (
                at(e.marker().index()),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        let pos = Pos {
            index: at(mark.index()),
            line: mark.line(),
            col: mark.col(),
        };
        if let Some(slot) = st.pending_bound.take() {
            st.set_bound(slot, pos.index);
        }
        match ev {
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart => st.out.documents += 1,
            Event::MappingEnd | Event::SequenceEnd => {
                st.stack.pop();
                st.completed();
            }
            Event::Scalar(text, style, anchor, tag) => {
                let decorated = anchor > 0 || tag.is_some();
                st.node(Value::Scalar { text, style }, pos, decorated)?;
            }
            Event::Alias(_) => st.node(Value::Alias, pos, false)?,
            Event::MappingStart(anchor, tag) => {
                // Block or flow is told by the first key (or an empty mapping, only flow).
                st.node(Value::Map { flow: true }, pos, anchor > 0 || tag.is_some())?;
            }
            Event::SequenceStart(anchor, tag) => {
                st.node(Value::Seq, pos, anchor > 0 || tag.is_some())?;
            }
        }
    }
    Ok(st.out)
}

/// yaml-rust2's markers count characters: the byte offset of the `n`th.
pub fn byte_offsets(body: &str) -> impl Fn(usize) -> usize + '_ {
    let starts: Vec<usize> = body.char_indices().map(|(i, _)| i).collect();
    move |n| starts.get(n).copied().unwrap_or(body.len())
}

struct State<'a> {
    body: &'a str,
    out: Scan,
    stack: Vec<Frame>,
    pending_bound: Option<(Record, usize)>,
}

impl State<'_> {
    fn set_bound(&mut self, (rec, i): (Record, usize), at: usize) {
        let list = match rec {
            Record::Root => &mut self.out.root_entries,
            Record::Global => &mut self.out.global_entries,
            Record::None => return,
        };
        if let Some(e) = list.get_mut(i) {
            e.bound = at;
        }
    }

    /// A node starts (a scalar or alias is also complete).
    fn node(&mut self, value: Value, pos: Pos, decorated: bool) -> Result<(), (usize, String)> {
        let opens = matches!(value, Value::Map { .. } | Value::Seq);
        if self.stack.len() >= MAX_DEPTH && opens {
            return Err((pos.index, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let is_key = matches!(self.stack.last(), Some(Frame::Map(m)) if m.expect_key);
        if is_key {
            self.key(&value, pos)?;
        } else {
            self.value(&value, pos, decorated);
        }
        match value {
            Value::Map { .. } => {
                let (record, parent_col) = self.child_record(is_key);
                self.stack.push(Frame::Map(MapFrame {
                    keys: HashMap::new(),
                    expect_key: true,
                    key: None,
                    record,
                    parent_col,
                }));
            }
            Value::Seq => self.stack.push(Frame::Seq),
            _ => self.completed(),
        }
        Ok(())
    }

    /// What a mapping opened here records, and the column of the key it is the value of.
    fn child_record(&self, is_key: bool) -> (Record, Option<usize>) {
        if is_key {
            return (Record::None, None);
        }
        match self.stack.last() {
            None => (Record::Root, None),
            Some(Frame::Map(m)) => {
                let col = m.key.as_ref().map(|(_, p)| p.col);
                let rec = match (m.record, m.key.as_ref()) {
                    (Record::Root, Some((k, _))) if k == "global" => Record::Global,
                    _ => Record::None,
                };
                (rec, col)
            }
            Some(Frame::Seq) => (Record::None, None),
        }
    }

    fn key(&mut self, value: &Value, pos: Pos) -> Result<(), (usize, String)> {
        let Some(Frame::Map(m)) = self.stack.last_mut() else {
            return Ok(());
        };
        if m.keys.is_empty() && m.key.is_none() {
            let flow = self
                .body
                .get(..pos.index)
                .is_some_and(|b| b.trim_end().ends_with('{'));
            let target = match m.record {
                Record::Root => self.out.root.as_mut().map(|(v, _)| v),
                Record::Global => self
                    .out
                    .root_entries
                    .iter_mut()
                    .rev()
                    .find(|e| e.key == "global")
                    .map(|e| &mut e.value),
                Record::None => None,
            };
            if let Some(Value::Map { flow: f }) = target {
                *f = flow;
            }
            if let (Some(parent), None, false) = (m.parent_col, self.out.step, flow) {
                if pos.col > parent {
                    self.out.step = Some(pos.col - parent);
                }
            }
        }
        let text = match value {
            Value::Scalar { text, .. } => text.clone(),
            _ => String::new(),
        };
        if let Value::Scalar { .. } = value {
            if let Some(first) = m.keys.get(&text) {
                return Err((
                    pos.index,
                    format!(
                        "`{text}` is defined twice in one mapping (lines {first} and {}): Earthly refuses the file (yaml.v3: mapping key already defined). Merge the two into one `{text}:`, then rerun",
                        pos.line
                    ),
                ));
            }
            m.keys.insert(text.clone(), pos.line);
        }
        m.key = Some((text, pos));
        Ok(())
    }

    fn value(&mut self, value: &Value, pos: Pos, decorated: bool) {
        match self.stack.last() {
            None => self.out.root = Some((value.clone(), pos)),
            Some(Frame::Map(m)) if m.record != Record::None => {
                let rec = m.record;
                let Some((key, key_pos)) = m.key.clone() else {
                    return;
                };
                let list = match rec {
                    Record::Root => &mut self.out.root_entries,
                    _ => &mut self.out.global_entries,
                };
                list.push(Entry {
                    key,
                    key_pos,
                    value: value.clone(),
                    value_pos: pos,
                    decorated,
                    bound: self.body.len(),
                });
                if matches!(value, Value::Scalar { .. } | Value::Alias) {
                    self.pending_bound = Some((rec, list.len() - 1));
                }
            }
            _ => {}
        }
    }

    /// A node is complete: its mapping now expects the other half.
    fn completed(&mut self) {
        if let Some(Frame::Map(m)) = self.stack.last_mut() {
            m.expect_key = !m.expect_key;
        }
    }
}
