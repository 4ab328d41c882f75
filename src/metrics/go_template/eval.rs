//! Running a parsed query template the way Go's `text/template` runs Flagger's: no data (dot
//! is nil, as in Flagger's `Execute(b, nil)`), `missingkey=error`, Go's printing of values.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::GoError;
use super::syntax::{Command, Node, Operand, Pipe};
use crate::metrics::template::Vars;

#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Map(&'a BTreeMap<String, String>),
    /// Flagger's dot: it renders with no data.
    Nil,
}

impl Value<'_> {
    fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Bool(b) => *b,
            Value::Map(m) => !m.is_empty(),
            Value::Nil => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Map(_) => "map[string]string",
            Value::Nil => "nil",
        }
    }

    /// Go's `%v`.
    pub fn show(&self) -> Result<String, GoError> {
        Ok(match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Float(f) => {
                // Go switches to exponent form outside [1e-4, 1e21); Rust never does.
                if *f != 0.0 && (f.abs() < 1e-4 || f.abs() >= 1e21) {
                    return Err(GoError::Unsupported(
                        f.to_string(),
                        "a float this small or large prints in Go's exponent form; write it as a string",
                    ));
                }
                f.to_string()
            }
            Value::Map(m) => {
                let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", pairs.join(" "))
            }
            Value::Nil => "<no value>".into(),
        })
    }
}

/// Renders `nodes` into `out`, which may grow to `cap` bytes.
pub struct Run<'a> {
    pub vars: &'a Vars<'a>,
    pub cap: usize,
}

impl<'a> Run<'a> {
    pub fn nodes(&self, nodes: &[Node], dot: &Value<'a>, out: &mut String) -> Result<(), GoError> {
        for node in nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Print(pipe) => {
                    let value = self.pipe(pipe, dot)?;
                    out.push_str(&value.show()?);
                }
                Node::Branch {
                    with,
                    cond,
                    then,
                    otherwise,
                } => {
                    let value = self.pipe(cond, dot)?;
                    match (value.truthy(), with) {
                        (true, true) => self.nodes(then, &value, out)?,
                        (true, false) => self.nodes(then, dot, out)?,
                        (false, _) => self.nodes(otherwise, dot, out)?,
                    }
                }
            }
            if out.len() > self.cap {
                return Err(GoError::TooLarge(self.cap));
            }
        }
        Ok(())
    }

    fn pipe(&self, pipe: &Pipe, dot: &Value<'a>) -> Result<Value<'a>, GoError> {
        let mut last: Option<Value<'a>> = None;
        for command in pipe {
            last = Some(self.command(command, dot, last)?);
        }
        last.ok_or_else(|| GoError::Syntax("empty pipeline".into()))
    }

    fn command(
        &self,
        command: &Command,
        dot: &Value<'a>,
        piped: Option<Value<'a>>,
    ) -> Result<Value<'a>, GoError> {
        match &command.args[..] {
            [Operand::Func(name, keys), rest @ ..]
                if keys.is_empty() || (rest.is_empty() && piped.is_none()) =>
            {
                if !keys.is_empty() {
                    return chain(self.call(name, Vec::new())?, keys);
                }
                let mut args = rest
                    .iter()
                    .map(|arg| self.operand(arg, dot))
                    .collect::<Result<Vec<_>, _>>()?;
                args.extend(piped);
                self.call(name, args)
            }
            [single] => self.operand(single, dot),
            _ => Err(GoError::Syntax(
                "can't give argument to non-function".into(),
            )),
        }
    }

    fn operand(&self, operand: &Operand, dot: &Value<'a>) -> Result<Value<'a>, GoError> {
        match operand {
            Operand::Func(name, keys) => chain(self.call(name, Vec::new())?, keys),
            Operand::Dot(keys) => {
                if matches!(dot, Value::Nil) && !keys.is_empty() {
                    return Err(GoError::Unsupported(
                        format!(".{}", keys.join(".")),
                        "Flagger renders queries without data, so fields fail there; use the functions (namespace, variables.KEY, ...)",
                    ));
                }
                chain(dot.clone(), keys)
            }
            Operand::Str(s) => Ok(Value::Str(s.clone())),
            Operand::Int(i) => Ok(Value::Int(*i)),
            Operand::Float(f) => Ok(Value::Float(*f)),
            Operand::Bool(b) => Ok(Value::Bool(*b)),
            Operand::Paren(pipe, keys) => chain(self.pipe(pipe, dot)?, keys),
        }
    }

    fn call(&self, name: &str, args: Vec<Value<'a>>) -> Result<Value<'a>, GoError> {
        let v = self.vars;
        let model = match name {
            "name" => Some(Value::Str(v.name.into())),
            "namespace" => Some(Value::Str(v.namespace.into())),
            "target" => Some(Value::Str(v.target.into())),
            "service" => Some(Value::Str(v.service.into())),
            "ingress" => Some(Value::Str(v.ingress.into())),
            "route" => Some(Value::Str(v.route.into())),
            "interval" => Some(Value::Str(v.interval.clone())),
            "workload" => Some(Value::Str(v.workload.into())),
            "variables" => Some(Value::Map(v.variables)),
            _ => None,
        };
        if let Some(value) = model {
            if !args.is_empty() {
                return Err(GoError::Render(format!(
                    "wrong number of args for {name}: want 0 got {}",
                    args.len()
                )));
            }
            return Ok(value);
        }
        super::builtins::call(name, args)
    }
}

/// `value.key.key...`: only maps have keys; a missing one is an error (`missingkey=error`).
fn chain<'a>(value: Value<'a>, keys: &[String]) -> Result<Value<'a>, GoError> {
    let mut value = value;
    for key in keys {
        value = match value {
            Value::Map(map) => match map.get(key) {
                Some(found) => Value::Str(found.clone()),
                None => {
                    let known: Vec<&str> = map.keys().map(String::as_str).collect();
                    let has = if known.is_empty() {
                        "no keys".to_string()
                    } else {
                        known.join(", ")
                    };
                    return Err(GoError::MissingKey(key.clone(), has));
                }
            },
            other => {
                return Err(GoError::Render(format!(
                    "can't evaluate field {key} in type {}",
                    other.kind()
                )));
            }
        };
    }
    Ok(value)
}

/// Go's `strconv.Quote` for the characters a query holds.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn kind_of(value: &Value<'_>) -> &'static str {
    value.kind()
}

pub fn truthy(value: &Value<'_>) -> bool {
    value.truthy()
}
