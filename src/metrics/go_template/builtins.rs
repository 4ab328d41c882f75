//! Go's template builtins that queries use, with Go's results (`printf` with Go's verbs, `index`
//! giving the zero value for a missing key, `print`'s spacing). What Go would render as an error
//! marker inside the text (`%!d(string=...)`) is an error here instead.

use std::cmp::Ordering;
use std::fmt::Write as _;

use super::GoError;
use super::eval::{Value, go_quote, kind_of, truthy};

pub fn call<'a>(name: &str, args: Vec<Value<'a>>) -> Result<Value<'a>, GoError> {
    let arity = |want: usize| {
        if args.len() == want {
            Ok(())
        } else {
            Err(GoError::Render(format!(
                "wrong number of args for {name}: want {want} got {}",
                args.len()
            )))
        }
    };
    match name {
        "printf" => printf(&args),
        "print" => print(&args).map(Value::Str),
        "println" => {
            let parts = args
                .iter()
                .map(Value::show)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::Str(parts.join(" ") + "\n"))
        }
        "urlquery" => Ok(Value::Str(url_query(&print(&args)?))),
        "index" => index(args),
        "len" => {
            arity(1)?;
            match &args[0] {
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                other => Err(GoError::Render(format!("len of type {}", kind_of(other)))),
            }
        }
        "not" => {
            arity(1)?;
            Ok(Value::Bool(!truthy(&args[0])))
        }
        "and" | "or" => {
            let want = name == "or";
            let last = args.len().checked_sub(1).ok_or_else(|| {
                GoError::Render(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ))
            })?;
            let at = args.iter().position(|a| truthy(a) == want).unwrap_or(last);
            Ok(args.into_iter().nth(at).unwrap_or(Value::Nil))
        }
        "eq" => {
            let (first, rest) = args
                .split_first()
                .ok_or_else(|| GoError::Render("missing argument for comparison".into()))?;
            if rest.is_empty() {
                return Err(GoError::Render("missing argument for comparison".into()));
            }
            for other in rest {
                if compare(first, other)? == Ordering::Equal {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        _ => {
            arity(2)?;
            let order = compare(&args[0], &args[1])?;
            let result = match name {
                "ne" => order != Ordering::Equal,
                "lt" => order == Ordering::Less,
                "le" => order != Ordering::Greater,
                "gt" => order == Ordering::Greater,
                "ge" => order != Ordering::Less,
                _ => return Err(GoError::Unknown(name.into())),
            };
            Ok(Value::Bool(result))
        }
    }
}

/// Go compares values of one basic kind; integers and floats do not mix there either.
fn compare(a: &Value<'_>, b: &Value<'_>) -> Result<Ordering, GoError> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x
            .partial_cmp(y)
            .ok_or_else(|| GoError::Render("NaN in comparison".into())),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        _ => Err(GoError::Render(format!(
            "incompatible types for comparison: {} and {}",
            kind_of(a),
            kind_of(b)
        ))),
    }
}

/// `index map key...`: a missing key is the zero value, "" (Go's `index` ignores `missingkey`).
fn index(args: Vec<Value<'_>>) -> Result<Value<'_>, GoError> {
    let mut args = args.into_iter();
    let mut value = args.next().ok_or_else(|| {
        GoError::Render("wrong number of args for index: want at least 1 got 0".into())
    })?;
    for key in args {
        value = match (&value, key) {
            (Value::Map(map), Value::Str(key)) => {
                Value::Str(map.get(&key).cloned().unwrap_or_default())
            }
            (Value::Map(_), other) => {
                return Err(GoError::Render(format!(
                    "error calling index: value has type {}; should be string",
                    kind_of(&other)
                )));
            }
            (other, _) => {
                return Err(GoError::Unsupported(
                    format!("index of {}", kind_of(other)),
                    "serin indexes maps (variables) only",
                ));
            }
        };
    }
    Ok(value)
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn print(args: &[Value<'_>]) -> Result<String, GoError> {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let string = |v: &Value<'_>| matches!(v, Value::Str(_));
        if i > 0 && !string(arg) && !string(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&arg.show()?);
    }
    Ok(out)
}

/// Go's `fmt.Sprintf` for the plain verbs `%s %v %d %q %f %t %%`; flags, widths and a verb that
/// does not fit its argument are refused, where Go would write an error marker into the query.
fn printf<'a>(args: &[Value<'a>]) -> Result<Value<'a>, GoError> {
    let (format, args) = match args.split_first() {
        Some((Value::Str(format), rest)) => (format, rest),
        _ => return Err(GoError::Render("printf needs a format string first".into())),
    };
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or_else(|| {
            GoError::Unsupported("%".into(), "a format ending in % prints %!(NOVERB) in Go")
        })?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = next.next().ok_or_else(|| {
            GoError::Unsupported(
                format!("%{verb}"),
                "printf has fewer arguments than verbs (Go prints %!v(MISSING))",
            )
        })?;
        let mismatch = || {
            GoError::Unsupported(
                format!("%{verb}"),
                "the verb does not fit its argument (Go prints %!verb(type=value))",
            )
        };
        match (verb, arg) {
            ('v', _) | ('s', Value::Str(_)) => out.push_str(&arg.show()?),
            ('d', Value::Int(i)) => {
                let _ = write!(out, "{i}");
            }
            ('q', Value::Str(s)) => out.push_str(&go_quote(s)),
            ('f', Value::Float(f)) => {
                let _ = write!(out, "{f:.6}");
            }
            ('t', Value::Bool(b)) => {
                let _ = write!(out, "{b}");
            }
            ('s' | 'd' | 'q' | 'f' | 't', _) => return Err(mismatch()),
            _ => {
                return Err(GoError::Unsupported(
                    format!("%{verb}"),
                    "serin's printf takes the verbs %s %v %d %q %f %t and %%, without flags or widths",
                ));
            }
        }
    }
    if next.next().is_some() {
        return Err(GoError::Unsupported(
            "printf".into(),
            "more arguments than verbs (Go appends %!(EXTRA ...) to the query)",
        ));
    }
    Ok(Value::Str(out))
}

/// Go's `url.QueryEscape`.
fn url_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    out
}
