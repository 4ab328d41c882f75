//! Where a field is written in a YAML document: `serin check` points a problem at the line and
//! column of the field it names (`spec.analysis.match[0].header`), not at the document's first
//! line. The document is walked as parser events (saphyr-parser gives each event its span),
//! naming every key and list item with the same path syntax the validation errors use.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// A 1-based line and column within the text given to [`Positions::of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// The position of every key and list item of one document, by path.
#[derive(Debug, Clone, Default)]
pub struct Positions(HashMap<String, Position>);

/// One open mapping or sequence while walking the events.
enum Open {
    /// A mapping: its path, and the key whose value comes next (None: a key comes next).
    Mapping { path: String, key: Option<String> },
    /// A sequence: its path and the index of the next item.
    Sequence { path: String, next: usize },
}

impl Positions {
    /// The positions in `text` (one YAML document). Text the parser cannot read gives what
    /// was read before the error: the syntax error is reported on its own.
    pub fn of(text: &str) -> Self {
        let mut found = HashMap::new();
        let mut open: Vec<Open> = Vec::new();
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            let here = Position {
                line: span.start.line(),
                // saphyr counts columns from 0, editors and compilers from 1.
                column: span.start.col() + 1,
            };
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(Open::Mapping { path, key }) = open.last_mut()
                        && key.is_none()
                    {
                        let child = join(path, &value);
                        found.entry(child.clone()).or_insert(here);
                        *key = Some(child);
                        continue;
                    }
                    value_at(&mut open, here, &mut found);
                }
                Event::Alias(_) => {
                    value_at(&mut open, here, &mut found);
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let path = value_at(&mut open, here, &mut found);
                    open.push(match event {
                        Event::MappingStart(..) => Open::Mapping { path, key: None },
                        _ => Open::Sequence { path, next: 0 },
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    open.pop();
                }
                _ => {}
            }
        }
        Self(found)
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

/// A value starts at `here`: the path it has (a mapping's pending key, or the next item of a
/// sequence), recorded for a list item, and the mapping made ready for its next key.
fn value_at(open: &mut [Open], here: Position, found: &mut HashMap<String, Position>) -> String {
    match open.last_mut() {
        None => String::new(),
        Some(Open::Mapping { key, path }) => key.take().unwrap_or_else(|| path.clone()),
        Some(Open::Sequence { path, next }) => {
            let item = format!("{path}[{next}]");
            *next += 1;
            found.entry(item.clone()).or_insert(here);
            item
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
    fn unreadable_text_gives_what_came_before_the_error() {
        let positions = Positions::of("a:\n  b: 1\n  c: [1, 2\n");
        assert_eq!(positions.find("a.b"), at(2, 3));
    }
}
