//! Where a field is written in a YAML document: `serin check` points a problem at the line and
//! column of the field it names (`spec.analysis.match[0].header`), not at the document's first
//! line, and `serin migrate` edits a field's text in place, leaving every other byte as it was.
//! The document is walked as parser events (saphyr-parser gives each event its span), naming
//! every key and list item with the same path syntax the validation errors use.

use std::collections::HashMap;
use std::ops::Range;

use saphyr_parser::{Event, Marker, Parser};

/// A 1-based line and column within the text given to [`Positions::of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// The position of every key and list item of one document, by path.
#[derive(Debug, Clone, Default)]
pub struct Positions(HashMap<String, Position>);

/// One key or list item of a document, and where its text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Where the field is named: its key, or a list item's first character.
    pub at: Position,
    /// The path of the mapping or list holding it (empty for the document's own keys).
    pub parent: String,
    /// Bytes of the key; None for a list item.
    pub key: Option<Range<usize>>,
    /// Bytes of the value, from its first character to the end of its last one (a block
    /// collection ends with its last item's text, before any comment or blank line after it).
    pub value: Range<usize>,
    /// The value is a scalar (not a collection, not an alias).
    pub scalar: bool,
    /// The field is written inside a flow collection (`{a: 1, b: 2}`, `[1, 2]`).
    pub in_flow: bool,
}

/// Every key and list item of one document, in the order written, by path.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    fields: Vec<(String, Field)>,
    /// Path to its first occurrence in `fields` (a duplicate key is found where it first is).
    index: HashMap<String, usize>,
}

/// One open mapping or sequence while walking the events.
struct Open {
    path: String,
    /// A mapping: the key whose value comes next (None: a key comes next). A sequence: None.
    key: Option<(String, Range<usize>, Position)>,
    /// A sequence: the index of the next item; None for a mapping.
    next: Option<usize>,
    flow: bool,
    /// The field this collection is the value of (None for the document itself).
    field: Option<usize>,
    /// The end of the last text read inside it.
    last: usize,
}

impl Layout {
    /// The fields of `text` (one YAML document). Text the parser cannot read gives what was
    /// read before the error: the syntax error is reported on its own.
    pub fn of(text: &str) -> Self {
        let offsets = Offsets::of(text);
        let mut layout = Self::default();
        let mut open: Vec<Open> = Vec::new();
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            let (start, end) = (offsets.byte(span.start), offsets.byte(span.end));
            let here = Position {
                line: span.start.line(),
                // saphyr counts columns from 0, editors and compilers from 1.
                column: span.start.col() + 1,
            };
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(top) = open.last_mut()
                        && top.next.is_none()
                        && top.key.is_none()
                    {
                        top.key = Some((join(&top.path, &value), start..end, here));
                        top.last = end;
                        continue;
                    }
                    layout.value_at(&mut open, here, start..end, true);
                }
                Event::Alias(_) => {
                    layout.value_at(&mut open, here, start..end, false);
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let (path, field) = layout.value_at(&mut open, here, start..start, false);
                    let sequence = matches!(event, Event::SequenceStart(..));
                    open.push(Open {
                        path,
                        key: None,
                        next: sequence.then_some(0),
                        flow: text[start..].starts_with(if sequence { '[' } else { '{' }),
                        field,
                        last: start,
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let Some(closed) = open.pop() else { continue };
                    // A flow collection ends with its bracket (the event's span runs on over
                    // the blanks and comment after it); a block one with its last text.
                    let bracket = text[start..].starts_with([']', '}']);
                    let end = if closed.flow && bracket {
                        start + 1
                    } else {
                        closed.last
                    };
                    if let Some(i) = closed.field {
                        layout.fields[i].1.value.end = end;
                    }
                    if let Some(parent) = open.last_mut() {
                        parent.last = parent.last.max(end);
                    }
                }
                _ => {}
            }
        }
        layout
    }

    /// A value starts at `here`: recorded under the path it has (a mapping's pending key, or
    /// the next item of a sequence), and the mapping made ready for its next key. Returns the
    /// path and the field's index (None for the document itself).
    fn value_at(
        &mut self,
        open: &mut [Open],
        here: Position,
        value: Range<usize>,
        scalar: bool,
    ) -> (String, Option<usize>) {
        let Some(top) = open.last_mut() else {
            return (String::new(), None);
        };
        top.last = top.last.max(value.end);
        let (path, key, at) = match (top.key.take(), top.next.as_mut()) {
            (Some((path, key, at)), _) => (path, Some(key), at),
            (None, Some(next)) => {
                *next += 1;
                (format!("{}[{}]", top.path, *next - 1), None, here)
            }
            // A mapping's key that is itself a collection: named by the mapping.
            (None, None) => (top.path.clone(), None, here),
        };
        let field = Field {
            at,
            parent: top.path.clone(),
            key,
            value,
            scalar,
            in_flow: top.flow,
        };
        self.fields.push((path.clone(), field));
        let i = self.fields.len() - 1;
        self.index.entry(path.clone()).or_insert(i);
        (path, Some(i))
    }

    /// The field at `path`, as first written.
    pub fn get(&self, path: &str) -> Option<&Field> {
        self.index.get(path).map(|&i| &self.fields[i].1)
    }

    /// The keys of the mapping at `parent`, in the order written.
    pub fn keys_of<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = (&'a str, &'a Field)> {
        self.fields
            .iter()
            .filter(move |(_, f)| f.parent == parent && f.key.is_some())
            .map(|(path, f)| (path.as_str(), f))
    }
}

/// Byte offsets of saphyr's markers. Its line and column count characters; its own index mixes
/// characters and bytes, so it is not used.
struct Offsets<'a> {
    text: &'a str,
    lines: Vec<usize>,
}

impl<'a> Offsets<'a> {
    fn of(text: &'a str) -> Self {
        let mut lines = vec![0];
        lines.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, lines }
    }

    fn byte(&self, marker: Marker) -> usize {
        let Some(&start) = self.lines.get(marker.line().saturating_sub(1)) else {
            return self.text.len();
        };
        self.text[start..]
            .char_indices()
            .nth(marker.col())
            .map_or(self.text.len(), |(i, _)| start + i)
    }
}

impl Positions {
    /// The positions in `text` (one YAML document). Text the parser cannot read gives what
    /// was read before the error: the syntax error is reported on its own.
    pub fn of(text: &str) -> Self {
        let layout = Layout::of(text);
        Self(
            layout
                .index
                .iter()
                .map(|(path, &i)| (path.clone(), layout.fields[i].1.at))
                .collect(),
        )
    }

    /// Where `field` is written: the field itself, else its nearest written ancestor (a
    /// missing field is reported where its parent is).
    pub fn find(&self, field: &str) -> Option<Position> {
        let mut path = field;
        loop {
            if let Some(position) = self.0.get(path) {
                return Some(*position);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, labels: {app: web}}
spec:
  analysis:
    match:
      - headers:
          x-canary: {exact: insider}
      - header:
          x-canary:
            exact: insider
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
";

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    #[test]
    fn keys_and_items_are_found_where_they_are_written() {
        let positions = Positions::of(CANARY);
        assert_eq!(positions.find("spec.analysis.match[1].header"), at(9, 9));
        assert_eq!(positions.find("spec.analysis.match[0].headers"), at(7, 9));
        assert_eq!(
            positions.find("spec.analysis.metrics[0].thresholdRange.min"),
            at(15, 11)
        );
        assert_eq!(positions.find("metadata.labels.app"), at(3, 36));
        assert_eq!(positions.find("spec.analysis.match[1]"), at(9, 9));
    }

    #[test]
    fn a_missing_field_is_found_at_its_nearest_written_parent() {
        let positions = Positions::of(CANARY);
        assert_eq!(
            positions.find("spec.analysis.metrics[0].interval"),
            at(13, 9)
        );
        assert_eq!(positions.find("spec.service.port"), at(4, 1));
        assert_eq!(positions.find("(yaml)"), None);
    }

    #[test]
    fn a_fields_text_spans_its_key_and_value_and_a_block_ends_at_its_last_item() {
        let text = "a:\n  b: [1, 2]   # c\n  d:\n    - e\n\n# after\nf: {g: \"h\"}\n";
        let layout = Layout::of(text);
        let slice = |r: &Option<Range<usize>>| r.clone().map(|r| &text[r]);
        let b = layout.get("a.b").unwrap();
        assert_eq!(
            (slice(&b.key), &text[b.value.clone()]),
            (Some("b"), "[1, 2]")
        );
        let a = layout.get("a").unwrap();
        assert!(
            text[a.value.clone()].ends_with("- e"),
            "{:?}",
            &text[a.value.clone()]
        );
        let g = layout.get("f.g").unwrap();
        assert_eq!(
            (&text[g.value.clone()], g.in_flow, g.scalar),
            ("\"h\"", true, true)
        );
        let keys: Vec<&str> = layout.keys_of("a").map(|(path, _)| path).collect();
        assert_eq!(keys, ["a.b", "a.d"]);
        assert_eq!(layout.get("a.d[0]").map(|f| f.key.is_none()), Some(true));
    }

    #[test]
    fn unreadable_text_gives_what_came_before_the_error() {
        let positions = Positions::of("a:\n  b: 1\n  c: [1, 2\n");
        assert_eq!(positions.find("a.b"), at(2, 3));
    }
}
