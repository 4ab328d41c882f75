//! How deep a YAML text nests, counted over the text without parsing it, so that a document
//! libyaml would take quadratic time on is refused before libyaml sees it.
//!
//! The count must never be less than the depth libyaml will build, whatever the text: a
//! bracket inside a quoted scalar is text, one in a flow collection is structure, and a quoted
//! scalar may span lines. So the scanner follows libyaml's own rules for where a token starts,
//! carried from line to line: quoted scalars (with `\"` and `''` escapes), plain scalars and
//! where their continuation lines end (by indentation, as libyaml decides), anchors and tags,
//! comments, and block scalars (`|`, `>`), whose lines are text. Where it cannot tell, it
//! counts more, never less.

use super::yaml::{MAX_DEPTH, YamlError};

/// Refuses nesting deeper than [`MAX_DEPTH`]: open flow brackets plus the stack of block
/// indentations (each `- ` of a compact list counting as one).
pub fn check_depth(text: &str) -> Result<(), YamlError> {
    deepest(text, MAX_DEPTH).map(drop)
}

/// The deepest nesting counted in `text`, refused past `limit` with the line it happens on.
fn deepest(text: &str, limit: usize) -> Result<usize, YamlError> {
    let mut scanner = Scanner {
        limit,
        ..Scanner::default()
    };
    for (index, line) in super::yaml::without_bom(text).lines().enumerate() {
        scanner.line(line, index + 1)?;
    }
    Ok(scanner.deepest)
}

/// Where the scanner is between two characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Where a token may start.
    #[default]
    Start,
    /// In a plain scalar; `owner` is the column of the block collection holding it (-1 at the
    /// top): in block context a following line continues the scalar only when indented more.
    Plain {
        owner: isize,
    },
    /// In an anchor, alias or tag: text up to a blank.
    Word,
    Single,
    Double,
    /// In a block scalar's lines: those indented at least `indent` (decided by the first line
    /// with text when not given) are text.
    Block {
        owner: isize,
        indent: Option<usize>,
        blank: usize,
    },
}

#[derive(Debug, Default)]
struct Scanner {
    /// Columns of the block collections open, innermost last, each with whether it is a list
    /// (opened by `- `).
    indents: Vec<(usize, bool)>,
    /// Flow collections open.
    flow: usize,
    state: State,
    /// Deepest count seen, and the count refused.
    deepest: usize,
    limit: usize,
}

impl Scanner {
    fn line(&mut self, line: &str, number: usize) -> Result<(), YamlError> {
        let content = line.trim_start_matches(' ');
        let column = line.len() - content.len();
        if self.in_block_scalar(content, column) {
            return Ok(());
        }
        if let State::Plain { owner } = self.state {
            // libyaml ends a plain scalar at a less indented line (block context only) and at
            // a comment; empty lines are folded into it.
            let ends = content.starts_with('#')
                || (self.flow == 0 && !content.is_empty() && column as isize <= owner);
            if ends {
                self.state = State::Start;
            }
        }
        if self.state == State::Start
            && self.flow == 0
            && !(content.is_empty() || content.starts_with('#'))
        {
            self.block_indents(line, content);
        }
        self.scan(content, column, number)?;
        if self.state == State::Word {
            self.state = State::Start;
        }
        self.count(number)
    }

    /// Records the depth now, refusing it past the limit.
    fn count(&mut self, number: usize) -> Result<(), YamlError> {
        let depth = self.indents.len() + self.flow;
        self.deepest = self.deepest.max(depth);
        if depth > self.limit {
            return Err(too_deep(number, self.limit));
        }
        Ok(())
    }

    /// True when the line is text of the block scalar being read (it then ends or goes on).
    fn in_block_scalar(&mut self, content: &str, column: usize) -> bool {
        let State::Block {
            owner,
            indent,
            blank,
        } = self.state
        else {
            return false;
        };
        if content.is_empty() {
            self.state = State::Block {
                owner,
                indent,
                blank: blank.max(column),
            };
            return true;
        }
        let indent = indent.unwrap_or_else(|| column.max(blank).max((owner + 1).max(1) as usize));
        if column >= indent {
            self.state = State::Block {
                owner,
                indent: Some(indent),
                blank,
            };
            return true;
        }
        self.state = State::Start;
        false
    }

    /// Updates the stack of block indentations for a line starting in block context.
    fn block_indents(&mut self, line: &str, content: &str) {
        let mut indent = line.len() - content.len();
        let mut rest = content;
        // `- - - x`: every dash opens a list nested in the one before; `? ` (an explicit key)
        // and `: ` (its value) open a mapping the same way. A list may sit at its mapping's
        // own column (`key:` then `- item`): it is a level of its own all the same.
        loop {
            let after = ["-", "?", ":"].iter().find_map(|indicator| {
                let after = rest.strip_prefix(indicator)?;
                (after.is_empty() || after.starts_with(' ')).then_some(after)
            });
            let dash = rest.starts_with('-') && after.is_some();
            while self
                .indents
                .last()
                .is_some_and(|top| top.0 > indent || (top.0 == indent && top.1 && !dash))
            {
                self.indents.pop();
            }
            if self.indents.last() != Some(&(indent, dash)) {
                self.indents.push((indent, dash));
            }
            match after {
                Some(after) if !after.trim_start_matches(' ').is_empty() => {
                    let spaces = after.len() - after.trim_start_matches(' ').len();
                    indent += 1 + spaces;
                    rest = &after[spaces..];
                }
                _ => break,
            }
        }
    }

    /// The column of the block collection a scalar starting now belongs to: the key's mapping
    /// after `key: `, else the collection enclosing the line (a list after `- `).
    fn owner(&self, after_colon: bool) -> isize {
        let index = if after_colon {
            self.indents.len().checked_sub(1)
        } else {
            self.indents.len().checked_sub(2)
        };
        index.map_or(-1, |i| self.indents[i].0 as isize)
    }

    fn scan(&mut self, content: &str, column: usize, number: usize) -> Result<(), YamlError> {
        let chars: Vec<char> = content.chars().collect();
        let blank_at = |i: usize| chars.get(i).is_none_or(|c| *c == ' ' || *c == '\t');
        let mut after_colon = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let previous_blank = i == 0 || chars[i - 1] == ' ' || chars[i - 1] == '\t';
            match self.state {
                State::Single => {
                    if c == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            i += 1;
                        } else {
                            self.state = State::Start;
                        }
                    }
                }
                State::Double => match c {
                    '\\' => i += 1,
                    '"' => self.state = State::Start,
                    _ => {}
                },
                State::Word => {
                    if c == ' ' || c == '\t' || (self.flow > 0 && c == ',') {
                        self.state = State::Start;
                    }
                }
                State::Plain { .. } => {
                    let flow_indicator = self.flow > 0 && "[]{},".contains(c);
                    let before_flow_indicator =
                        self.flow > 0 && chars.get(i + 1).is_some_and(|n| "[]{},".contains(*n));
                    if c == ':' && (blank_at(i + 1) || before_flow_indicator) {
                        after_colon = true;
                        self.state = State::Start;
                    } else if c == '#' && previous_blank {
                        self.state = State::Start;
                        return Ok(());
                    } else if flow_indicator {
                        self.state = State::Start;
                        continue;
                    }
                }
                State::Start => {
                    let next = chars.get(i + 1).copied();
                    let indicator = blank_at(i + 1)
                        || (self.flow > 0 && next.is_some_and(|n| "[]{},".contains(n)));
                    match c {
                        ' ' | '\t' | ',' => {}
                        '#' => return Ok(()),
                        '"' => self.state = State::Double,
                        '\'' => self.state = State::Single,
                        '[' | '{' => {
                            self.flow += 1;
                            self.count(number)?;
                        }
                        ']' | '}' => self.flow = self.flow.saturating_sub(1),
                        ':' if indicator => after_colon = true,
                        '-' | '?' if indicator => {}
                        '&' | '*' | '!' => self.state = State::Word,
                        '%' if i == 0 && column == 0 => self.state = State::Word,
                        '|' | '>' if self.flow == 0 => {
                            self.state = self.block_scalar(&chars[i + 1..], after_colon);
                            return Ok(());
                        }
                        _ => {
                            self.state = State::Plain {
                                owner: self.owner(after_colon),
                            }
                        }
                    }
                }
                State::Block { .. } => return Ok(()),
            }
            i += 1;
        }
        Ok(())
    }

    /// The state after a block scalar's header (`|`, `>-`, `|2`...): its lines follow.
    fn block_scalar(&self, header: &[char], after_colon: bool) -> State {
        let owner = self.owner(after_colon);
        let increment = header
            .iter()
            .take_while(|c| !c.is_whitespace())
            .find_map(|c| c.to_digit(10).filter(|d| *d > 0));
        let indent = increment.map(|d| {
            let d = d as isize;
            (if owner >= 0 { owner + d } else { d }) as usize
        });
        State::Block {
            owner,
            indent,
            blank: 0,
        }
    }
}

fn too_deep(line: usize, limit: usize) -> YamlError {
    YamlError {
        line: Some(line),
        field: "(yaml)".into(),
        reason: format!("nested more than {limit} levels deep"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_yaml_ng::Value as Yaml;

    /// How deep libyaml's reading of a value nests (a scalar is 0).
    fn parsed_depth(value: &Yaml) -> usize {
        match value {
            Yaml::Sequence(items) => 1 + items.iter().map(parsed_depth).max().unwrap_or(0),
            Yaml::Mapping(map) => {
                1 + map
                    .iter()
                    .map(|(k, v)| parsed_depth(k).max(parsed_depth(v)))
                    .max()
                    .unwrap_or(0)
            }
            Yaml::Tagged(tagged) => parsed_depth(&tagged.value),
            _ => 0,
        }
    }

    /// Text made of YAML's indicators, quotes, escapes and indentation.
    fn yaml_like() -> impl Strategy<Value = String> {
        const PIECES: &[&str] = &[
            "a",
            "b",
            " ",
            "  ",
            "\n",
            "\n  ",
            "\n    ",
            "- ",
            ": ",
            ":",
            ",",
            "[",
            "]",
            "{",
            "}",
            "'",
            "''",
            "\"",
            "\\\"",
            "\\",
            "#",
            " #",
            "|",
            ">-",
            "|2",
            "&x ",
            "*x",
            "!t ",
            "? ",
            "\n- ",
            "\n  - ",
            "a: ",
            "\n  a: ",
            "\n    b: ",
            "[a, ",
            "{a: ",
            "\"a\n]\", ",
            "'a\n}', ",
            "\n? ",
            "- [",
            "a: |\n  ",
            "[[",
            "{a: [",
            "- - ",
            "a:\n  ",
            "\n      ",
            "]]",
            "]}",
        ];
        prop::collection::vec(prop::sample::select(PIECES), 0..64).prop_map(|parts| parts.concat())
    }

    /// Well-formed flow collections nested up to 12 deep, whose scalars hide brackets, quotes
    /// and line breaks, placed in a few block settings.
    fn nested() -> impl Strategy<Value = String> {
        const LEAVES: &[&str] = &[
            "a",
            "'x]\n ]'",
            "\"y\\\"]\n }\"",
            "'it''s ]'",
            "b # ]\n",
            "\"\\\\\"",
            "&x a",
            "!t b",
            "'\n\n]]'",
            "c'd",
        ];
        const SETTINGS: &[&str] = &[
            "{}",
            "a: {}",
            "- {}",
            "a:\n- b: {}",
            "a: |\n  \"\nb: {}",
            "a: x\n  'y\nb: {}",
            "- - {}",
            "? {}\n: c",
        ];
        let node = prop::sample::select(LEAVES)
            .prop_map(String::from)
            .prop_recursive(12, 256, 3, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..3)
                        .prop_map(|items| format!("[{}]", items.join(",\n "))),
                    prop::collection::vec(inner, 0..3).prop_map(|items| {
                        let entries: Vec<String> = items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| format!("k{i}: {item}"))
                            .collect();
                        format!("{{{}}}", entries.join(", "))
                    }),
                ]
            });
        (prop::sample::select(SETTINGS), node)
            .prop_map(|(setting, node)| setting.replacen("{}", &node, 1) + "\n")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the nesting and the scalars in it, the count is never less than the depth
        /// libyaml reads.
        #[test]
        fn the_count_is_never_below_the_nesting_libyaml_reads(text in nested()) {
            let value = serde_yaml_ng::from_str::<Yaml>(&text);
            prop_assert!(value.is_ok(), "{text}: {value:?}");
            let counted = deepest(&text, usize::MAX).unwrap();
            prop_assert!(counted >= parsed_depth(&value.unwrap()), "{counted}: {text}");
        }

        /// Whatever the text, the count is never less than the nesting libyaml builds.
        #[test]
        fn the_count_is_never_below_what_libyaml_reads(text in yaml_like()) {
            if let Ok(value) = serde_yaml_ng::from_str::<Yaml>(&text) {
                let counted = deepest(&text, usize::MAX).unwrap();
                prop_assert!(counted >= parsed_depth(&value), "{counted} < {:?}", value);
            }
        }
    }

    fn deep(prefix: &str, middle: &str) -> String {
        format!("{prefix}{}{middle}{}\n", "[".repeat(40), "[".repeat(40))
    }

    #[test]
    fn closing_brackets_in_a_quoted_scalar_over_lines_do_not_count() {
        // The quote opens on the first line and closes on the second: the `]`s are text and
        // the brackets after it nest 80 deep.
        let double = deep("a: ", " \"x\n]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\", ");
        assert_eq!(check_depth(&double).unwrap_err().line, Some(2));
        let escaped = deep(
            "a: ",
            " \"x\\\"\n]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\\\"\", ",
        );
        assert_eq!(check_depth(&escaped).unwrap_err().line, Some(2));
        let single = deep(
            "a: ",
            " 'x''\n]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]''', ",
        );
        assert_eq!(check_depth(&single).unwrap_err().line, Some(2));
    }

    #[test]
    fn quotes_inside_plain_scalars_block_scalars_and_tags_are_text() {
        // A quote within a plain scalar (or its continuation line) opens nothing, so the
        // flow list on the next key counts.
        let nested = format!("{}1{}", "[".repeat(70), "]".repeat(70));
        for text in [
            format!("a: it's\nb: {nested}\n"),
            format!("a: x\n  'y\nb: {nested}\n"),
            format!("- x\n  \"y\n- {nested}\n"),
            format!("a: |\n  \"text\nb: {nested}\n"),
            format!("- - >-\n    'text\n  - {nested}\n"),
            format!("a: !tag'x {nested}\n"),
            format!("a: [x # \"\n, {nested}]\n"),
        ] {
            assert!(check_depth(&text).is_err(), "{text}");
        }
    }

    #[test]
    fn ordinary_text_passes() {
        for text in [
            "a:\n  b: [1, {c: \"[[[[\"}] # ]]]]\n  - d\n",
            "a: \"[[[[[[[[[[\n  [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"\n",
            "a: 'it''s [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n",
            "a: |\n  [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n  - - -\nb: 1\n",
            "a: text with [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
        ] {
            assert!(check_depth(text).is_ok(), "{text}");
        }
    }
}
