//! Reading manifests and scenario files written in YAML, as Kubernetes tools read them and in
//! bounded time: a leading byte-order mark is ignored, a document may start on its `---` line
//! (`--- {kind: Canary}`), merge keys (`<<: *defaults`) are applied as kubectl and kustomize
//! apply them, and what JSON cannot hold is refused instead of silently changed (`.nan` or
//! `.inf` would become `null`, that is "unset"). Nesting deeper than [`MAX_DEPTH`] is refused
//! before the parser sees it: libyaml's time grows with the square of the depth.

use serde_json::{Map, Number, Value as Json};
use serde_yaml_ng::Value as Yaml;

/// Counted over the text before libyaml parses it (see [`super::nesting`]).
pub use super::nesting::check_depth;

/// Deepest nesting of mappings and lists accepted. A Canary is about 8 levels deep; the
/// deepest Kubernetes objects (a pod template's affinity terms) about 15.
pub const MAX_DEPTH: usize = 64;

/// A document that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {reason}", line.map_or(String::new(), |l| format!("line {l}: ")))]
pub struct YamlError {
    /// 1-based line in the text given, when known.
    pub line: Option<usize>,
    /// Path of the field (`spec.analysis.metrics[0].thresholdRange.max`), or `(yaml)`.
    pub field: String,
    pub reason: String,
}

impl YamlError {
    fn syntax(error: &serde_yaml_ng::Error) -> Self {
        Self {
            line: error.location().map(|l| l.line()),
            field: "(yaml)".into(),
            reason: error.to_string(),
        }
    }
}

/// Text without a leading UTF-8 byte-order mark (editors on Windows write one).
pub fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// The documents of a multi-document file, each with its first line (1-based). A separator
/// line with content after `---` (`--- {kind: Canary}`, `--- !tag`) keeps that content: the
/// document starts on that line.
pub fn split_documents(text: &str) -> Vec<(usize, String)> {
    document_ranges(text)
        .into_iter()
        .map(|(line, range)| {
            let chunk = text[range].lines().flat_map(|l| [l, "\n"]).collect();
            (line, chunk)
        })
        .collect()
}

/// Where each document of a multi-document file is, as byte ranges of `text` (its first line,
/// 1-based, beside): what [`split_documents`] reads, kept in place so a document can be
/// replaced without touching the separators and comments around it. The ranges leave out a
/// byte-order mark and the `---` lines that carry nothing.
pub fn document_ranges(text: &str) -> Vec<(usize, std::ops::Range<usize>)> {
    let start = text.len() - without_bom(text).len();
    let mut ranges = vec![(1, start..start)];
    let mut offset = start;
    for (index, line) in text[start..].split_inclusive('\n').enumerate() {
        let end = offset + line.len();
        let bare = line.trim_end_matches('\n').trim_end_matches('\r');
        let rest = bare.strip_prefix("---");
        let separator = rest.is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']));
        match (separator, rest.map(str::trim)) {
            (true, Some(content)) if !content.is_empty() && !content.starts_with('#') => {
                ranges.push((index + 1, offset..end));
            }
            (true, _) => ranges.push((index + 2, end..end)),
            (false, _) => {
                if let Some((_, range)) = ranges.last_mut() {
                    range.end = end;
                }
            }
        }
        offset = end;
    }
    ranges
}

/// Parses one YAML document as a YAML value with merge keys applied.
pub fn parse(text: &str) -> Result<Yaml, YamlError> {
    let text = without_bom(text);
    check_depth(text)?;
    let mut value: Yaml = serde_yaml_ng::from_str(text).map_err(|e| YamlError::syntax(&e))?;
    value.apply_merge().map_err(|e| YamlError {
        line: None,
        field: "<<".into(),
        reason: format!("merge key: {e}"),
    })?;
    Ok(value)
}

/// Parses one YAML document into JSON (see [`parse`] and [`to_json`]).
pub fn parse_json(text: &str) -> Result<Json, YamlError> {
    to_json(&parse(text)?, "")
}

/// A YAML value as JSON, refusing what JSON has no way to say: NaN and infinities (JSON would
/// turn them into null, an unset field), non-string keys other than numbers and booleans.
/// `path` names the value in errors.
pub fn to_json(value: &Yaml, path: &str) -> Result<Json, YamlError> {
    let fail = |reason: String| YamlError {
        line: None,
        field: if path.is_empty() {
            "(document)".into()
        } else {
            path.to_string()
        },
        reason,
    };
    Ok(match value {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                Json::Number(Number::from_f64(f).ok_or_else(|| {
                    fail(format!(
                        "{} is not a number JSON or Kubernetes can hold (write a finite number, or quote it for text)",
                        show_float(f)
                    ))
                })?)
            }
        }
        Yaml::String(s) => Json::String(s.clone()),
        Yaml::Sequence(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_json(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, item) in mapping {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    _ => return Err(fail("a mapping key must be text".into())),
                };
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                object.insert(key, to_json(item, &child)?);
            }
            Json::Object(object)
        }
        Yaml::Tagged(tagged) => to_json(&tagged.value, path)?,
    })
}

fn show_float(f: f64) -> &'static str {
    match f {
        f if f.is_nan() => ".nan",
        f if f > 0.0 => ".inf",
        _ => "-.inf",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_start_after_a_bom_and_on_separator_lines_with_content() {
        let docs = split_documents("\u{feff}a: 1\n--- {b: 2}\n---\nc: 3\n");
        assert_eq!(
            docs,
            vec![
                (1, "a: 1\n".to_string()),
                (2, "--- {b: 2}\n".to_string()),
                (4, "c: 3\n".to_string()),
            ]
        );
    }

    #[test]
    fn document_ranges_keep_separators_and_comments_outside_the_documents() {
        let text = "\u{feff}# head\na: 1\n--- # two\nb: 2\r\n---\n";
        let ranges = document_ranges(text);
        let slices: Vec<(usize, &str)> =
            ranges.iter().map(|(l, r)| (*l, &text[r.clone()])).collect();
        assert_eq!(
            slices,
            vec![(1, "# head\na: 1\n"), (4, "b: 2\r\n"), (6, "")]
        );
    }

    #[test]
    fn merge_keys_are_applied_and_non_finite_numbers_refused() {
        let value = parse_json("base: &b {port: 80}\nservice:\n  <<: *b\n  name: x\n").unwrap();
        assert_eq!(value["service"]["port"], 80);
        let error = parse_json("spec:\n  max: .nan\n").unwrap_err();
        assert_eq!(error.field, "spec.max");
        assert!(error.reason.starts_with(".nan is not a number"), "{error}");
    }

    #[test]
    fn deep_nesting_is_refused_with_its_line() {
        let flow = format!("a: {}1{}\n", "[".repeat(100), "]".repeat(100));
        assert_eq!(check_depth(&flow).unwrap_err().line, Some(1));
        let mut block = String::new();
        for depth in 0..100 {
            block.push_str(&format!("{}k{depth}:\n", " ".repeat(depth)));
        }
        assert_eq!(check_depth(&block).unwrap_err().line, Some(MAX_DEPTH + 1));
        let dashes = format!("{}x\n", "- ".repeat(100));
        assert!(check_depth(&dashes).is_err());
        // Ordinary manifests pass, brackets in quotes and comments do not count.
        let fine = "a:\n  b: [1, {c: \"[[[[\"}] # ]]]]\n  - d\n";
        assert!(check_depth(fine).is_ok());
    }
}
