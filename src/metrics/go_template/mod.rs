//! Flagger's query template language, Go's `text/template` as Flagger runs it: every value is a
//! function (`{{ namespace }}`, `{{ variables.direction }}`, `{{ index variables "x" }}`),
//! pipelines pass a value as the next function's last argument (`{{ interval | printf "%s" }}`),
//! and `{{-`/`-}}` trim the text beside them. serin parses and runs it itself, bounded: nothing
//! here loops or binds (see [`syntax`]), so a rendering's work is linear in the template, and
//! its output is capped.

mod builtins;
mod eval;
mod syntax;

use super::template::Vars;

/// Why a Go template did not render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoError {
    #[error("{0}")]
    Syntax(String),
    #[error("function {0:?} not defined")]
    Unknown(String),
    /// A construct serin does not run, and why.
    #[error("`{0}` is not supported in query templates: {1}")]
    Unsupported(String, &'static str),
    /// `variables.KEY` for a key the metric's templateVariables lack, and the keys it has.
    #[error("map has no entry for key {0:?}: templateVariables has {1}")]
    MissingKey(String, String),
    #[error("{0}")]
    Render(String),
    #[error("rendering produced more than {0} bytes")]
    TooLarge(usize),
}

/// A parsed query template.
pub struct GoTemplate(Vec<syntax::Node>);

impl GoTemplate {
    pub fn parse(source: &str) -> Result<Self, GoError> {
        syntax::parse(source).map(GoTemplate)
    }

    /// Renders with `vars`, refusing output over `cap` bytes.
    pub fn render(&self, vars: &Vars<'_>, cap: usize) -> Result<String, GoError> {
        let run = eval::Run { vars, cap };
        let mut out = String::new();
        run.nodes(&self.0, &eval::Value::Nil, &mut out)?;
        Ok(out)
    }
}
