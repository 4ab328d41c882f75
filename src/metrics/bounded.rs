//! Bounded template rendering, for every template a user writes into a manifest (metric
//! queries, alert messages, and later routes): a template runs inside the controller, so it
//! must not be able to spend unbounded time or memory, whatever it says.
//!
//! Three limits hold while it renders — fuel (minijinja instructions), output size and a
//! deadline — but they only see instructions and output. A single filter call can build a
//! gigabyte (`"x"|replace("x", "xxxxxxxxxx")` nine times over) and a loop variable can double a
//! string per nesting level, so the language is narrowed too, before anything renders:
//! - statements are conditionals only (`if`/`elif`/`else`/`endif`, `raw`): no `for`, `set`,
//!   `with` or `macro`, which bind a value that can then be combined with itself;
//! - no `*` inside a tag (it repeats strings and lists);
//! - filters are a short list; those that can grow their input (`replace`, `join`, `string`,
//!   `split`) are serin's own, and charge what they produce against a byte budget shared by
//!   the whole rendering.
//!
//! Without bindings or repetition an expression's intermediate values are bounded by the
//! template's length times its largest variable, plus the budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use serde::Serialize;

/// What one rendering may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest template source accepted, in bytes.
    pub source: usize,
    /// minijinja instructions.
    pub fuel: u64,
    /// Largest output, in bytes; growing filters share a budget of four times this.
    pub output: usize,
    /// Wall-clock time for one rendering.
    pub deadline: Duration,
}

impl Limits {
    /// Metric queries: a PromQL query is a few hundred bytes; 64 KiB leaves room for long
    /// label matchers while keeping a rendering far below a millisecond's worth of work.
    pub const QUERY: Self = Self {
        source: 16 * 1024,
        fuel: 20_000,
        output: 64 * 1024,
        deadline: Duration::from_millis(250),
    };
    /// Alert messages: chat services cut messages at a few thousand characters anyway.
    pub const ALERT: Self = Self {
        source: 16 * 1024,
        fuel: 20_000,
        output: 16 * 1024,
        deadline: Duration::from_millis(250),
    };
}

/// Why a template was not rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundError {
    #[error("the template is {0} bytes long, over the limit of {1}")]
    SourceTooLong(usize, usize),
    #[error("line {line}: `{found}` is not allowed in templates ({why})")]
    Refused {
        line: usize,
        found: String,
        why: &'static str,
    },
    #[error("invalid template: {0}")]
    Syntax(String),
    #[error("rendering took more than {0} instructions (a loop that does not end?)")]
    OutOfFuel(u64),
    #[error("rendering produced more than {0} bytes")]
    TooLarge(usize),
    #[error("rendering took longer than {0:?}")]
    Deadline(Duration),
    #[error("rendering: {0}")]
    Render(String),
    #[error("the template's variables are {0} bytes, over the limit of {1}")]
    ContextTooLarge(usize, usize),
}

/// Concatenations (`~`, `+`) a template may hold: each can repeat a whole variable, so their
/// number times the variables' size bounds what a rendering builds before the output cap sees
/// it, and keeps the copying linear.
const MAX_JOINS: usize = 16;

/// Statements a template may use: conditionals bind nothing.
const ALLOWED_STATEMENTS: [&str; 6] = ["if", "elif", "else", "endif", "raw", "endraw"];

/// Checks `source` against the narrowed language (see the module doc), before compiling it.
pub fn screen(source: &str, limits: &Limits) -> Result<(), BoundError> {
    if source.len() > limits.source {
        return Err(BoundError::SourceTooLong(source.len(), limits.source));
    }
    let line_of = |at: usize| source[..at].matches('\n').count() + 1;
    let mut rest = 0;
    let mut joins = 0;
    while let Some(open) = source[rest..].find('{').map(|i| rest + i) {
        let kind = source[open + 1..].chars().next();
        let close = match kind {
            Some('{') => "}}",
            Some('%') => "%}",
            Some('#') => "#}",
            _ => {
                rest = open + 1;
                continue;
            }
        };
        let body_start = open + 2;
        let (end, tag) = match kind {
            Some('#') => (
                source[body_start..]
                    .find(close)
                    .map_or(source.len(), |i| body_start + i),
                Operators::default(),
            ),
            _ => scan_tag(source, body_start, close),
        };
        joins += tag.joins;
        if joins > MAX_JOINS {
            return Err(BoundError::Refused {
                line: line_of(open),
                found: "~".into(),
                why: "more than 16 concatenations (~ or +) in one template could multiply a long variable; join fewer pieces",
            });
        }
        let body = &source[body_start..end];
        if kind == Some('%') {
            let word: String = body
                .trim_start_matches(['-', '+'])
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !ALLOWED_STATEMENTS.contains(&word.as_str()) {
                return Err(BoundError::Refused {
                    line: line_of(open),
                    found: format!("{{% {word} %}}"),
                    why: "only if/elif/else and raw: loops and assignments could repeat a value without bound",
                });
            }
        }
        if tag.star {
            return Err(BoundError::Refused {
                line: line_of(open),
                found: "*".into(),
                why: "it repeats strings and lists; multiply outside the tags, in the query itself",
            });
        }
        rest = (end + close.len()).min(source.len());
    }
    Ok(())
}

/// The operators of one tag that can grow a value, outside string literals.
#[derive(Debug, Default, Clone, Copy)]
struct Operators {
    /// A `*` (repetition).
    star: bool,
    /// How many `~` and `+` (concatenation).
    joins: usize,
}

/// Where a tag that starts at `from` ends (the index of its `close`), and the growing
/// operators in it outside string literals. Like minijinja's lexer, a `}}` inside brackets (a
/// dict literal) does not end the tag.
fn scan_tag(source: &str, from: usize, close: &str) -> (usize, Operators) {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut depth = 0usize;
    let mut found = Operators::default();
    for (i, c) in source[from..].char_indices() {
        let at = from + i;
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if depth == 0 && source[at..].starts_with(close) => return (at, found),
            None => match c {
                '"' | '\'' => quote = Some(c),
                '*' => found.star = true,
                '~' | '+' => found.joins += 1,
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    (source.len(), found)
}

/// Renders `source` with `context` under `limits`. The caller names the template and field in
/// its own error.
pub fn render<S: Serialize>(
    source: &str,
    context: S,
    limits: &Limits,
) -> Result<String, BoundError> {
    screen(source, limits)?;
    // The variables come from users too (a Canary's templateVariables): never more than one
    // output's worth, so concatenating them a bounded number of times stays bounded.
    let size = serde_json::to_vec(&context)
        .map_err(|e| BoundError::Render(e.to_string()))?
        .len();
    if size > limits.output {
        return Err(BoundError::ContextTooLarge(size, limits.output));
    }
    let deadline = Instant::now() + limits.deadline;
    let budget = Arc::new(Budget {
        left: AtomicUsize::new(limits.output.saturating_mul(4)),
        deadline,
        limits: *limits,
    });
    let env = environment(&budget, limits);
    let template = env
        .template_from_str(source)
        .map_err(|e| BoundError::Syntax(detail(&e)))?;
    let mut out = Capped {
        bytes: Vec::new(),
        limits: *limits,
        deadline,
        exceeded: None,
    };
    if let Err(error) = template.render_captured_to(context, &mut out) {
        return Err(out
            .exceeded
            .take()
            .unwrap_or_else(|| classify(&error, &budget)));
    }
    String::from_utf8(out.bytes).map_err(|e| BoundError::Render(e.to_string()))
}

/// The environment a bounded template renders in: strict about undefined names, no escaping
/// (queries and chat messages are not HTML), text kept byte for byte, and the short list of
/// filters and tests.
fn environment<'s>(budget: &Arc<Budget>, limits: &Limits) -> Environment<'s> {
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_fuel(Some(limits.fuel));
    env.add_filter("default", minijinja::filters::default);
    env.add_filter("d", minijinja::filters::default);
    env.add_filter("lower", minijinja::filters::lower);
    env.add_filter("upper", minijinja::filters::upper);
    env.add_filter("title", minijinja::filters::title);
    env.add_filter("capitalize", minijinja::filters::capitalize);
    env.add_filter("trim", minijinja::filters::trim);
    env.add_filter("length", minijinja::filters::length);
    env.add_filter("first", minijinja::filters::first);
    env.add_filter("last", minijinja::filters::last);
    env.add_filter("int", minijinja::filters::int);
    env.add_filter("float", minijinja::filters::float);
    env.add_filter("round", minijinja::filters::round);
    env.add_filter("abs", minijinja::filters::abs);
    let b = Arc::clone(budget);
    env.add_filter("replace", move |value: String, from: String, to: String| {
        let grown = value
            .matches(from.as_str())
            .count()
            .saturating_mul(to.len());
        b.charge(value.len().saturating_add(grown))?;
        Ok::<_, Error>(value.replace(from.as_str(), &to))
    });
    let b = Arc::clone(budget);
    env.add_filter(
        "join",
        move |items: Vec<Value>, separator: Option<String>| {
            let separator = separator.unwrap_or_default();
            let texts: Vec<String> = items.iter().map(ToString::to_string).collect();
            let size = texts.iter().map(String::len).sum::<usize>()
                + separator.len().saturating_mul(texts.len());
            b.charge(size)?;
            Ok::<_, Error>(texts.join(&separator))
        },
    );
    let b = Arc::clone(budget);
    env.add_filter("split", move |value: String, separator: Option<String>| {
        b.charge(value.len())?;
        let parts: Vec<Value> = match separator.as_deref() {
            None | Some("") => value.split_whitespace().map(Value::from).collect(),
            Some(sep) => value.split(sep).map(Value::from).collect(),
        };
        Ok::<_, Error>(parts)
    });
    let b = Arc::clone(budget);
    env.add_filter("string", move |value: Value| {
        let text = value.to_string();
        b.charge(text.len())?;
        Ok::<_, Error>(text)
    });
    env.add_test("defined", minijinja::tests::is_defined);
    env.add_test("undefined", minijinja::tests::is_undefined);
    env.add_test("none", minijinja::tests::is_none);
    env.add_test("string", minijinja::tests::is_string);
    env.add_test("number", minijinja::tests::is_number);
    env.add_test("startingwith", minijinja::tests::is_startingwith);
    env.add_test("endingwith", minijinja::tests::is_endingwith);
    env
}

/// Bytes the growing filters may still produce in one rendering, and its deadline.
struct Budget {
    left: AtomicUsize,
    deadline: Instant,
    limits: Limits,
}

impl Budget {
    fn charge(&self, bytes: usize) -> Result<(), Error> {
        if Instant::now() > self.deadline {
            return Err(Error::new(ErrorKind::InvalidOperation, DEADLINE));
        }
        let left = self.left.load(Ordering::Relaxed);
        if bytes > left {
            self.left.store(0, Ordering::Relaxed);
            return Err(Error::new(ErrorKind::InvalidOperation, TOO_LARGE));
        }
        self.left.store(left - bytes, Ordering::Relaxed);
        Ok(())
    }
}

const DEADLINE: &str = "serin: deadline";
const TOO_LARGE: &str = "serin: budget";

/// The output, refusing to grow past the limit or the deadline.
struct Capped {
    bytes: Vec<u8>,
    limits: Limits,
    deadline: Instant,
    exceeded: Option<BoundError>,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if Instant::now() > self.deadline {
            self.exceeded = Some(BoundError::Deadline(self.limits.deadline));
            return Err(std::io::Error::other("deadline"));
        }
        if self.bytes.len().saturating_add(buf.len()) > self.limits.output {
            self.exceeded = Some(BoundError::TooLarge(self.limits.output));
            return Err(std::io::Error::other("too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A minijinja error as one of ours: out of fuel and serin's own budget errors by kind.
fn classify(error: &Error, budget: &Budget) -> BoundError {
    let limits = budget.limits;
    if error.kind() == ErrorKind::OutOfFuel {
        return BoundError::OutOfFuel(limits.fuel);
    }
    let text = detail(error);
    if text.contains(DEADLINE) {
        BoundError::Deadline(limits.deadline)
    } else if text.contains(TOO_LARGE) {
        BoundError::TooLarge(limits.output)
    } else {
        BoundError::Render(text)
    }
}

/// minijinja's message with its reason chain, without the template source dump.
pub fn detail(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(source: &str) -> bool {
        matches!(
            screen(source, &Limits::QUERY),
            Err(BoundError::Refused { .. })
        )
    }

    #[test]
    fn long_variables_joined_many_times_are_refused_before_rendering() {
        // 1 MiB of variable joined 1,000 times would build a gigabyte before the output cap.
        let joined = vec!["variables.k"; 1_000].join(" ~ ");
        let error = render(
            &format!("{{{{ {joined} }}}}"),
            serde_json::json!({"variables": {"k": "x"}}),
            &Limits::QUERY,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("more than 16 concatenations"),
            "{error}"
        );
        let big = "x".repeat(1 << 20);
        let error = render(
            "{{ variables.k ~ variables.k }}",
            serde_json::json!({"variables": {"k": big}}),
            &Limits::QUERY,
        )
        .unwrap_err();
        assert!(matches!(error, BoundError::ContextTooLarge(..)), "{error}");
        // A few joins of ordinary variables render.
        let query = render(
            "{{ a ~ \"-\" ~ b }}",
            serde_json::json!({"a": "web", "b": "primary"}),
            &Limits::QUERY,
        )
        .unwrap();
        assert_eq!(query, "web-primary");
    }

    #[test]
    fn the_screen_sees_through_dict_literals_and_strings() {
        // A `}}` closing a dict literal does not end the tag: the `*` after it is seen.
        assert!(refused(r#"{{ {"a": {"b": "x"}}.a.b * 99999999 }}"#));
        assert!(refused("{{ a }} {%- for x in y %}"));
        assert!(refused("{% set a = 1 %}"));
        // Stars in strings, comments and the query text are the query's own.
        assert!(!refused(
            r#"sum(x{a="*"}) * 2 {{ "*" }} {# * #} {% if a %}*{% endif %}"#
        ));
    }
}
