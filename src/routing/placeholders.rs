//! The placeholder language of route templates: `${name}` replaced by a value serin knows
//! (`${canary.weight}`, `${primary.service}`...), `$${` for a literal `${`, and nothing else:
//! no conditionals, loops, functions or nesting, so rendering is one pass over the text, its
//! time linear in the template and its output bounded by [`MAX_RENDERED`]. A name serin does
//! not know is an error naming its line, never an empty string.

use std::collections::BTreeMap;

/// The largest template text accepted, per object.
pub const MAX_TEMPLATE: usize = 32 * 1024;
/// The largest rendered text accepted, per object (a long `${match.json}` counts).
pub const MAX_RENDERED: usize = 64 * 1024;
/// The longest placeholder name read before the text is called unterminated.
const MAX_NAME: usize = 64;

/// Every placeholder, with what it stands for (docs/routing.md lists the same).
pub const NAMES: &[(&str, &str)] = &[
    (
        "primary.weight",
        "percent of requests to the primary (0-100)",
    ),
    ("canary.weight", "percent of requests to the canary (0-100)"),
    (
        "primary.service",
        "the primary Service's name (<service>-primary)",
    ),
    (
        "canary.service",
        "the canary Service's name (<service>-canary)",
    ),
    ("service.name", "the apex Service's name"),
    ("service.port", "spec.service.port"),
    ("namespace", "the Canary's namespace"),
    ("target.name", "spec.targetRef.name"),
    (
        "mirror.enabled",
        "true while requests are mirrored to the canary",
    ),
    (
        "mirror.weight",
        "percent of requests copied to the canary while mirroring, else 0",
    ),
    (
        "match.enabled",
        "true while requests matching spec.analysis.match go to the canary",
    ),
    (
        "match.weight",
        "100 while requests matching spec.analysis.match go to the canary, else 0",
    ),
    (
        "match.json",
        "spec.analysis.match as one line of JSON (a YAML flow list)",
    ),
];

/// Why a template cannot be rendered; `line` counts from 1 in the template text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    #[error("line {line}: `${{` without a closing `}}` on the same line")]
    Unterminated { line: usize },
    #[error("line {line}: unknown placeholder ${{{name}}}; known: {known}", known = known())]
    Unknown { line: usize, name: String },
    #[error("the template is {0} bytes; at most {MAX_TEMPLATE} are accepted")]
    TemplateTooLarge(usize),
    #[error("line {line}: the rendered text passes {MAX_RENDERED} bytes")]
    RenderedTooLarge { line: usize },
}

fn known() -> String {
    let names: Vec<String> = NAMES.iter().map(|(n, _)| format!("${{{n}}}")).collect();
    names.join(", ")
}

/// One occurrence of a placeholder in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub name: &'static str,
    pub line: usize,
}

/// A template read once: its literal text and placeholders in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(Use),
}

impl Parsed {
    /// Reads `text`, refusing unterminated and unknown placeholders with their line.
    pub fn new(text: &str) -> Result<Self, PlaceholderError> {
        if text.len() > MAX_TEMPLATE {
            return Err(PlaceholderError::TemplateTooLarge(text.len()));
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        for (index, line) in text.split_inclusive('\n').enumerate() {
            read_line(line, index + 1, &mut literal, &mut pieces)?;
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Self { pieces })
    }

    /// The placeholders the template uses, in order.
    pub fn uses(&self) -> impl Iterator<Item = &Use> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Value(used) => Some(used),
            Piece::Text(_) => None,
        })
    }

    pub fn uses_any(&self, names: &[&str]) -> bool {
        self.uses().any(|used| names.contains(&used.name))
    }

    /// The text with every placeholder replaced by its value in `values` (one for each of
    /// [`NAMES`]; a missing one renders empty), at most [`MAX_RENDERED`] bytes.
    pub fn render(
        &self,
        values: &BTreeMap<&'static str, String>,
    ) -> Result<String, PlaceholderError> {
        let mut out = String::new();
        let mut line = 1;
        for piece in &self.pieces {
            let text = match piece {
                Piece::Text(text) => {
                    line += text.matches('\n').count();
                    text.as_str()
                }
                Piece::Value(used) => values.get(used.name).map_or("", String::as_str),
            };
            if out.len() + text.len() > MAX_RENDERED {
                return Err(PlaceholderError::RenderedTooLarge { line });
            }
            out.push_str(text);
        }
        Ok(out)
    }
}

/// Splits one line into literal text (kept in `literal` across lines) and placeholders.
fn read_line(
    line: &str,
    number: usize,
    literal: &mut String,
    pieces: &mut Vec<Piece>,
) -> Result<(), PlaceholderError> {
    let mut rest = line;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(escaped) = after.strip_prefix("$${") {
            literal.push_str("${");
            rest = escaped;
        } else if let Some(open) = after.strip_prefix("${") {
            let Some(end) = open.find('}').filter(|end| *end <= MAX_NAME) else {
                return Err(PlaceholderError::Unterminated { line: number });
            };
            let written = open[..end].trim();
            let Some((name, _)) = NAMES.iter().find(|(n, _)| *n == written) else {
                return Err(PlaceholderError::Unknown {
                    line: number,
                    name: written.to_string(),
                });
            };
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(literal)));
            }
            pieces.push(Piece::Value(Use { name, line: number }));
            rest = &open[end + 1..];
        } else {
            literal.push('$');
            rest = &after[1..];
        }
    }
    literal.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<&'static str, String> {
        [
            ("canary.weight", "30".to_string()),
            ("primary.service", "podinfo-primary".to_string()),
        ]
        .into()
    }

    #[test]
    fn placeholders_are_replaced_and_the_rest_is_kept_as_written() {
        let parsed =
            Parsed::new("a: ${canary.weight}\nb: ${ primary.service }-x $5 $${literal}\n").unwrap();
        assert_eq!(
            parsed.render(&values()).unwrap(),
            "a: 30\nb: podinfo-primary-x $5 ${literal}\n"
        );
        let lines: Vec<(&str, usize)> = parsed.uses().map(|u| (u.name, u.line)).collect();
        assert_eq!(lines, [("canary.weight", 1), ("primary.service", 2)]);
        assert!(parsed.uses_any(&["canary.weight", "primary.weight"]));
        assert!(!parsed.uses_any(&["mirror.weight"]));
    }

    #[test]
    fn an_unknown_placeholder_is_refused_with_its_line() {
        let error = Parsed::new("spec:\n  weight: ${canary.wieght}\n").unwrap_err();
        assert_eq!(
            error,
            PlaceholderError::Unknown {
                line: 2,
                name: "canary.wieght".into()
            }
        );
        let message = error.to_string();
        assert!(
            message.starts_with(
                "line 2: unknown placeholder ${canary.wieght}; known: ${primary.weight}"
            ),
            "{message}"
        );
    }

    #[test]
    fn an_unterminated_placeholder_is_refused_with_its_line() {
        let error = Parsed::new("a: 1\nb: 2\nc: ${canary.weight\nd: }\n").unwrap_err();
        assert_eq!(error, PlaceholderError::Unterminated { line: 3 });
        let long = format!("a: ${{{}}}", "x".repeat(100));
        assert_eq!(
            Parsed::new(&long).unwrap_err(),
            PlaceholderError::Unterminated { line: 1 }
        );
    }

    #[test]
    fn template_and_output_sizes_are_bounded() {
        let huge = "a".repeat(MAX_TEMPLATE + 1);
        assert_eq!(
            Parsed::new(&huge).unwrap_err(),
            PlaceholderError::TemplateTooLarge(MAX_TEMPLATE + 1)
        );
        // Many uses of a long value: refused once the output passes the cap.
        let parsed = Parsed::new(&"${match.json}\n".repeat(100)).unwrap();
        let values = [("match.json", "x".repeat(1024))].into();
        assert!(matches!(
            parsed.render(&values),
            Err(PlaceholderError::RenderedTooLarge { line: 64 })
        ));
    }
}
