//! `serin migrate FILE...`: Flagger manifests (`flagger.app/v1beta1` Canary, MetricTemplate,
//! AlertProvider) to serin's own group, file by file. serin keeps Flagger's field names, so a
//! conversion is a few edits (`convert`) written into each file's text in place (`edit`): the
//! layout, comments, key order and every other document of the file stay byte for byte as
//! they were. A document whose edits cannot be written in place is re-serialised on its own,
//! with a note. What serin cannot do the same way is listed for a human to decide.

pub mod convert;
pub mod edit;
pub mod output;

use std::ops::Range;
use std::path::PathBuf;

use serde_json::Value;

use crate::api::yaml;
use crate::cli::check::Source;
use convert::Conversion;

/// One thing a human has to decide (or, for [`Migration::reserialised`], to know).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    pub file: String,
    pub line: usize,
    pub column: Option<usize>,
    pub object: String,
    pub field: String,
    pub note: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(column) = self.column {
            write!(f, ":{column}")?;
        }
        write!(f, " {}: {}: {}", self.object, self.field, self.note)
    }
}

/// One file, before and after.
#[derive(Debug, Clone)]
pub struct Migrated {
    pub path: PathBuf,
    pub before: String,
    pub after: String,
}

/// The converted files and the notes.
#[derive(Debug, Default)]
pub struct Migration {
    pub files: Vec<Migrated>,
    /// What a human has to decide.
    pub notes: Vec<Note>,
    /// Documents re-serialised rather than edited in place (their comments and layout are
    /// not kept), and why.
    pub reserialised: Vec<Note>,
    pub converted: usize,
}

/// Converts every Flagger document of `sources`, file by file.
pub fn migrate(sources: &[Source]) -> Migration {
    let mut out = Migration::default();
    for source in sources {
        let mut replaced: Vec<(Range<usize>, String)> = Vec::new();
        for doc in &source.documents {
            let note = |field: &str, note: String| {
                let (line, column) = doc.position(field);
                let object = format!("{} {}", doc.text("/kind"), doc.text("/metadata/name"));
                Note {
                    file: doc.file.display().to_string(),
                    line,
                    column,
                    object: object.trim().to_string(),
                    field: field.to_string(),
                    note,
                }
            };
            match convert::convert(doc) {
                Conversion::Untouched => {}
                Conversion::Refused(refusal) => {
                    out.notes.push(note(&refusal.field, refusal.reason));
                }
                Conversion::Converted {
                    edits,
                    object,
                    notes,
                } => {
                    out.converted += 1;
                    let chunk = &source.text[doc.range.clone()];
                    let text = rewrite(chunk, &edits, &object).unwrap_or_else(|why| {
                        out.reserialised.push(note("(document)", why));
                        reserialise(chunk, &object)
                    });
                    replaced.push((doc.range.clone(), text));
                    out.notes
                        .extend(notes.into_iter().map(|n| note(&n.field, n.reason)));
                }
            }
        }
        out.files.push(Migrated {
            path: source.path.clone(),
            before: source.text.clone(),
            after: splice(&source.text, replaced),
        });
    }
    out
}

/// The document's text with the edits written in place, when it reads back as `object`.
fn rewrite(chunk: &str, edits: &[edit::Edit], object: &Value) -> Result<String, String> {
    let why = |reason: String| {
        format!("re-serialised, so its comments and layout are not kept: {reason}")
    };
    let text = edit::apply_to_text(chunk, edits).map_err(why)?;
    match yaml::parse_json(&text) {
        Ok(read) if read == *object => Ok(text),
        Ok(_) => Err(why("the text edited in place does not read as the converted object (anchors, merge keys or an unusual layout)".into())),
        Err(error) => Err(why(format!("the text edited in place does not parse: {error}"))),
    }
}

/// `object` written out as YAML in the document's place (a document that started on its
/// `---` line keeps a separator before it).
fn reserialise(chunk: &str, object: &Value) -> String {
    let text = serde_yaml_ng::to_string(object).unwrap_or_default();
    if chunk.starts_with("---") {
        format!("---\n{text}")
    } else {
        text
    }
}

/// `text` with each range replaced (ranges in order, not overlapping).
fn splice(text: &str, replaced: Vec<(Range<usize>, String)>) -> String {
    let mut out = text.to_string();
    for (range, with) in replaced.into_iter().rev() {
        out.replace_range(range, &with);
    }
    out
}
