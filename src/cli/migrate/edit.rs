//! The changes a conversion makes to one document, applied twice: to the document's value (what
//! the converted object must be) and to its text, by the spans the parser gives each field
//! (`api::locate::Layout`), so every byte outside the fields changed stays as written: comments,
//! key order, quoting, blank lines. The rewritten text is parsed again and compared with the
//! converted value; where they differ, or a change cannot be written in place, the caller
//! re-serialises that document instead.

use std::ops::Range;

use serde_json::Value;

use crate::api::locate::{Field, Layout};

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Item(usize),
}

/// A path in the syntax of validation errors and [`Layout`]: `spec.analysis.metrics[0].threshold`.
pub fn display(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Item(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// One change to a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// `from` replaced by `to` inside a string (an apiVersion's group), its quotes kept.
    Substitute {
        path: Vec<Step>,
        from: String,
        to: String,
    },
    /// A scalar field replaced by `key: yaml` (`threshold: 99` to `thresholdRange: {min: 99}`);
    /// `value` is what `yaml` reads as.
    Replace {
        path: Vec<Step>,
        key: String,
        yaml: String,
        value: Value,
    },
    /// A field removed with its value.
    Remove { path: Vec<Step> },
}

impl Edit {
    fn path(&self) -> &[Step] {
        match self {
            Edit::Substitute { path, .. } | Edit::Replace { path, .. } | Edit::Remove { path } => {
                path
            }
        }
    }
}

/// The edits with every mapping they would leave empty removed as a whole instead (a
/// `metadata.annotations` holding only kubectl's last-applied configuration goes with it), and
/// no edit inside a removed field.
pub fn tidy(mut edits: Vec<Edit>, document: &Value) -> Vec<Edit> {
    loop {
        let mut emptied = None;
        for edit in &edits {
            let Edit::Remove { path } = edit else {
                continue;
            };
            let Some((_, parent)) = path.split_last() else {
                continue;
            };
            let Some(fields) = at(document, parent).and_then(Value::as_object) else {
                continue;
            };
            let removed = edits
                .iter()
                .filter(|e| matches!(e, Edit::Remove { path: p } if p.len() == path.len() && p.starts_with(parent)))
                .count();
            if !parent.is_empty() && removed == fields.len() {
                emptied = Some(parent.to_vec());
                break;
            }
        }
        let Some(parent) = emptied else { break };
        edits.retain(|e| !e.path().starts_with(&parent));
        edits.push(Edit::Remove { path: parent });
    }
    let removed: Vec<Vec<Step>> = edits
        .iter()
        .filter_map(|e| match e {
            Edit::Remove { path } => Some(path.clone()),
            _ => None,
        })
        .collect();
    edits.retain(|e| {
        !removed
            .iter()
            .any(|r| e.path().len() > r.len() && e.path().starts_with(r))
    });
    edits
}

fn at<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, step| match step {
        Step::Key(key) => v.get(key),
        Step::Item(i) => v.get(i),
    })
}

fn at_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, step| match step {
        Step::Key(key) => v.get_mut(key),
        Step::Item(i) => v.get_mut(i),
    })
}

/// `document` with the edits made.
pub fn apply_to_value(document: &Value, edits: &[Edit]) -> Value {
    let mut out = document.clone();
    for edit in edits {
        let Some((Step::Key(last), parent)) = edit.path().split_last() else {
            continue;
        };
        let Some(object) = at_mut(&mut out, parent).and_then(Value::as_object_mut) else {
            continue;
        };
        match edit {
            Edit::Substitute { from, to, .. } => {
                if let Some(Value::String(text)) = object.get_mut(last) {
                    *text = text.replacen(from.as_str(), to, 1);
                }
            }
            Edit::Replace { key, value, .. } => {
                object.remove(last);
                object.insert(key.clone(), value.clone());
            }
            Edit::Remove { .. } => {
                object.remove(last);
            }
        }
    }
    out
}

/// `text` (one document) with the edits written in place, or why they cannot be.
pub fn apply_to_text(text: &str, edits: &[Edit]) -> Result<String, String> {
    let layout = Layout::of(text);
    let mut changes: Vec<(Range<usize>, String)> = Vec::new();
    for edit in edits {
        let path = display(edit.path());
        let field = layout
            .get(&path)
            .ok_or_else(|| format!("{path} is not written where the parser can find it"))?;
        match edit {
            Edit::Substitute { from, to, .. } => {
                let written = &text[field.value.clone()];
                if !field.scalar || !written.contains(from.as_str()) {
                    return Err(format!("{path} is not written as plain text"));
                }
                changes.push((field.value.clone(), written.replacen(from.as_str(), to, 1)));
            }
            Edit::Replace { key, yaml, .. } => {
                let Some(key_range) = field.key.clone().filter(|_| field.scalar) else {
                    return Err(format!("{path} is not a key with a plain value"));
                };
                changes.push((key_range, key.clone()));
                changes.push((field.value.clone(), yaml.clone()));
            }
            Edit::Remove { .. } => {
                changes.push((removal(text, &layout, &path, field)?, String::new()))
            }
        }
    }
    changes.sort_by_key(|(range, _)| range.start);
    if changes.windows(2).any(|w| w[0].0.end > w[1].0.start) {
        return Err("two changes overlap".into());
    }
    let mut out = text.to_string();
    for (range, with) in changes.iter().rev() {
        out.replace_range(range.clone(), with);
    }
    Ok(out)
}

/// The bytes to delete to remove `field` (a key and its value) from `text`.
fn removal(text: &str, layout: &Layout, path: &str, field: &Field) -> Result<Range<usize>, String> {
    let Some(key) = field.key.clone() else {
        return Err(format!("{path} is a list item"));
    };
    let value = field.value.clone();
    if field.in_flow {
        return Ok(flow_removal(text, key.start..value.end));
    }
    let line_start = text[..key.start].rfind('\n').map_or(0, |i| i + 1);
    let rest = &text[value.end..];
    // A block scalar (`|`) ends after its last line break.
    let line_end = if text[..value.end].ends_with('\n') {
        value.end
    } else {
        value.end + rest.find('\n').map_or(rest.len(), |i| i + 1)
    };
    let after = text[value.end..line_end].trim();
    let alone = text[line_start..key.start].trim().is_empty();
    if alone && (after.is_empty() || after.starts_with('#')) {
        return Ok(line_start..line_end);
    }
    // `- threshold: 3` with more keys below: the next key takes its place after the dash.
    let next = layout
        .keys_of(&field.parent)
        .filter_map(|(_, f)| f.key.clone())
        .find(|k| k.start > key.start);
    match next {
        Some(next) => Ok(key.start..next.start),
        None => Err(format!(
            "{path} cannot be removed without rewriting its list item"
        )),
    }
}

/// `a: 1, ` out of `{a: 1, b: 2}`, or `, b: 2` when it is the last one.
fn flow_removal(text: &str, field: Range<usize>) -> Range<usize> {
    let after = &text[field.end..];
    let gap = after.len() - after.trim_start().len();
    if after[gap..].starts_with(',') {
        let rest = &after[gap + 1..];
        let space = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        return field.start..field.end + gap + 1 + space;
    }
    let before = text[..field.start].trim_end();
    match before.strip_suffix(',') {
        Some(kept) => kept.len()..field.end,
        None => field,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str) -> Vec<Step> {
        path.split('.').map(|k| Step::Key(k.into())).collect()
    }

    fn remove(path: &str) -> Edit {
        Edit::Remove { path: key(path) }
    }

    #[test]
    fn removed_fields_take_their_lines_and_flow_commas_with_them() {
        let text =
            "a: 1 # one\nb:\n  c: 2\n\n  d: [1,\n    2]  # end\ne: {f: 1, g: 2}\nh: {i: 1, j: 2}\n";
        let out = apply_to_text(text, &[remove("b.d"), remove("e.f"), remove("h.j")]).unwrap();
        assert_eq!(out, "a: 1 # one\nb:\n  c: 2\n\ne: {g: 2}\nh: {i: 1}\n");
    }

    #[test]
    fn the_first_key_of_a_list_item_gives_way_to_the_next() {
        let text = "m:\n  - t: 3\n    r: {max: 1}\n  - t: 4\n";
        let edits = [Edit::Remove {
            path: vec![Step::Key("m".into()), Step::Item(0), Step::Key("t".into())],
        }];
        assert_eq!(
            apply_to_text(text, &edits).unwrap(),
            "m:\n  - r: {max: 1}\n  - t: 4\n"
        );
        let last = [Edit::Remove {
            path: vec![Step::Key("m".into()), Step::Item(1), Step::Key("t".into())],
        }];
        assert!(apply_to_text(text, &last).is_err());
    }

    #[test]
    fn a_mapping_emptied_by_removals_is_removed_with_them() {
        let doc: Value =
            serde_json::json!({"metadata": {"name": "a", "annotations": {"x": "1"}}, "status": {}});
        let edits = tidy(
            vec![remove("metadata.annotations.x"), remove("status")],
            &doc,
        );
        assert_eq!(edits, [remove("status"), remove("metadata.annotations")]);
        assert_eq!(
            apply_to_value(&doc, &edits),
            serde_json::json!({"metadata": {"name": "a"}})
        );
    }

    #[test]
    fn substitutions_keep_quotes_and_replacements_rename_the_key() {
        let text = "apiVersion: \"flagger.app/v1beta1\"\nm: {threshold: 99, x: 1}\n";
        let edits = [
            Edit::Substitute {
                path: key("apiVersion"),
                from: "flagger.app/".into(),
                to: "serin.dev/".into(),
            },
            Edit::Replace {
                path: key("m.threshold"),
                key: "thresholdRange".into(),
                yaml: "{min: 99}".into(),
                value: serde_json::json!({"min": 99}),
            },
        ];
        assert_eq!(
            apply_to_text(text, &edits).unwrap(),
            "apiVersion: \"serin.dev/v1beta1\"\nm: {thresholdRange: {min: 99}, x: 1}\n"
        );
    }
}
