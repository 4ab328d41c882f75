//! Parsing the part of Go's `text/template` that Flagger's query templates use: text, actions
//! with pipelines, `if`/`else if`/`else`/`end`, `with`, comments and the `{{-`/`-}}` trim
//! markers. What binds or repeats (`range`, `$x :=`, `define`, `template`, `block`) is refused
//! while parsing, so a template that parses renders in time linear in its length.

use super::GoError;

/// Deepest nesting of parentheses and blocks: the parser recurses on both.
const MAX_DEPTH: usize = 32;

/// Functions a query may call: Flagger's model and Go's builtins that serin implements.
pub const MODEL: [&str; 9] = [
    "name",
    "namespace",
    "target",
    "service",
    "ingress",
    "route",
    "interval",
    "variables",
    "workload",
];
const BUILTINS: [&str; 15] = [
    "printf", "print", "println", "index", "len", "eq", "ne", "lt", "le", "gt", "ge", "and", "or",
    "not", "urlquery",
];
/// Go builtins serin does not implement, with why.
const REFUSED_BUILTINS: [(&str, &str); 4] = [
    ("html", "HTML escaping has no use in a query"),
    ("js", "JavaScript escaping has no use in a query"),
    ("call", "the model has no function values to call"),
    (
        "slice",
        "slicing is not implemented by serin; write the value whole",
    ),
];

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Print(Pipe),
    /// `if` (`with: false`) or `with` (`with: true`, which sets dot inside).
    Branch {
        with: bool,
        cond: Pipe,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// Commands joined by `|`: each one's value is the next one's last argument.
pub type Pipe = Vec<Command>;

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub args: Vec<Operand>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A function by name, with the keys after it (`variables.direction`).
    Func(String, Vec<String>),
    /// Dot and the keys after it (`.`, `.Namespace`).
    Dot(Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Paren(Pipe, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    /// `.key`, or a bare `.` with an empty key.
    Field(String),
    Str(String),
    Number(String),
    Pipe,
    Open,
    Close,
}

/// One `{{ ... }}` of the source: its body and the line it starts on.
struct Action {
    body: String,
    line: usize,
}

enum Piece {
    Text(String),
    Action(Action),
}

/// Parses `source` into nodes.
pub fn parse(source: &str) -> Result<Vec<Node>, GoError> {
    let pieces = split(source)?;
    let mut at = 0;
    let (nodes, end) = block(&pieces, &mut at, 0)?;
    match end {
        None => Ok(nodes),
        Some((keyword, line)) => Err(GoError::Syntax(format!(
            "line {line}: unexpected {{{{{keyword}}}}}"
        ))),
    }
}

/// How a block ended: `end`, `else` (with what follows it) or the end of the source.
type BlockEnd = Option<(String, usize)>;

/// Nodes until `{{ end }}` or `{{ else ... }}` (returned with its remaining words).
fn block(pieces: &[Piece], at: &mut usize, depth: usize) -> Result<(Vec<Node>, BlockEnd), GoError> {
    if depth > MAX_DEPTH {
        return Err(GoError::Syntax(format!(
            "blocks nested deeper than {MAX_DEPTH}"
        )));
    }
    let mut nodes = Vec::new();
    while let Some(piece) = pieces.get(*at) {
        *at += 1;
        let action = match piece {
            Piece::Text(text) => {
                nodes.push(Node::Text(text.clone()));
                continue;
            }
            Piece::Action(action) => action,
        };
        let tokens = lex(&action.body, action.line)?;
        match tokens.first() {
            Some(Token::Ident(word)) if word == "end" || word == "else" => {
                let rest = action.body.trim().to_string();
                return Ok((nodes, Some((rest, action.line))));
            }
            Some(Token::Ident(word)) if word == "if" || word == "with" => {
                nodes.push(branch(
                    pieces,
                    at,
                    depth,
                    word == "with",
                    &tokens[1..],
                    action.line,
                )?);
            }
            None => {
                return Err(GoError::Syntax(format!(
                    "line {}: missing value for command",
                    action.line
                )));
            }
            _ => nodes.push(Node::Print(pipe(&tokens, action.line)?)),
        }
    }
    Ok((nodes, None))
}

/// An `if` or `with` whose condition is `cond`, up to its `end`; `else if` nests.
fn branch(
    pieces: &[Piece],
    at: &mut usize,
    depth: usize,
    with: bool,
    cond: &[Token],
    line: usize,
) -> Result<Node, GoError> {
    let cond = pipe(cond, line)?;
    let (then, end) = block(pieces, at, depth + 1)?;
    let otherwise = match end {
        None => {
            return Err(GoError::Syntax(format!(
                "line {line}: unexpected EOF: no {{{{ end }}}}"
            )));
        }
        Some((word, _)) if word == "end" => Vec::new(),
        Some((word, else_line)) => {
            let rest = word.trim_start_matches("else").trim();
            if rest.is_empty() {
                match block(pieces, at, depth + 1)? {
                    (nodes, Some((word, _))) if word == "end" => nodes,
                    _ => {
                        return Err(GoError::Syntax(format!(
                            "line {else_line}: expected {{{{ end }}}} after {{{{ else }}}}"
                        )));
                    }
                }
            } else {
                let tokens = lex(rest, else_line)?;
                match tokens.first() {
                    Some(Token::Ident(w)) if w == "if" || w == "with" => {
                        vec![branch(
                            pieces,
                            at,
                            depth + 1,
                            w == "with",
                            &tokens[1..],
                            else_line,
                        )?]
                    }
                    _ => {
                        return Err(GoError::Syntax(format!(
                            "line {else_line}: unexpected {{{{{word}}}}}"
                        )));
                    }
                }
            }
        }
    };
    Ok(Node::Branch {
        with,
        cond,
        then,
        otherwise,
    })
}

/// Cuts the source into text and actions, applying trim markers and dropping comments.
fn split(source: &str) -> Result<Vec<Piece>, GoError> {
    let line_of = |at: usize| source[..at].matches('\n').count() + 1;
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = 0;
    let mut trim_next = false;
    while let Some(open) = source[rest..].find("{{").map(|i| rest + i) {
        let mut chunk = &source[rest..open];
        if trim_next {
            chunk = chunk.trim_start_matches(is_space);
        }
        let after = &source[open + 2..];
        let trim_left = after.starts_with('-') && after[1..].starts_with(is_space);
        if trim_left {
            chunk = chunk.trim_end_matches(is_space);
        }
        text.push_str(chunk);
        let body_start = open + 2 + if trim_left { 2 } else { 0 };
        let (body_end, close_end, trim_right) = action_end(source, body_start, line_of(open))?;
        let body = &source[body_start..body_end];
        let trimmed = body.trim_start_matches(is_space);
        if trimmed.starts_with("/*") {
            // Go: the comment opens right after the delimiter and its marker and closes right
            // before them.
            let closed = body.ends_with("*/") || (trim_right && body.ends_with("*/ "));
            if !(body.starts_with("/*") && closed) {
                return Err(GoError::Syntax(format!(
                    "line {}: comment ends before closing delimiter",
                    line_of(open)
                )));
            }
        } else {
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Action(Action {
                body: body.to_string(),
                line: line_of(open),
            }));
        }
        trim_next = trim_right;
        rest = close_end;
    }
    let mut chunk = &source[rest..];
    if trim_next {
        chunk = chunk.trim_start_matches(is_space);
    }
    text.push_str(chunk);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Where the action whose body starts at `from` ends: the body's end, the index after `}}`,
/// and whether it ends in a ` -}}` trim marker. `}}` inside a string does not end it.
fn action_end(source: &str, from: usize, line: usize) -> Result<(usize, usize, bool), GoError> {
    let bytes = source.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = from;
    let in_comment = source[from..]
        .trim_start_matches(is_space)
        .starts_with("/*");
    if in_comment {
        let close = source[from..]
            .find("*/")
            .map(|c| from + c + 2)
            .ok_or_else(|| GoError::Syntax(format!("line {line}: unclosed comment")))?;
        i = close;
    }
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(b'"') if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'`' => quote = Some(c),
            None if source[i..].starts_with("}}") => {
                let before = &source[from..i];
                let trim = before.ends_with('-') && before[..before.len() - 1].ends_with(is_space);
                let end = if trim { i - 1 } else { i };
                return Ok((end, i + 2, trim));
            }
            None => {}
        }
        i += 1;
    }
    Err(GoError::Syntax(format!("line {line}: unclosed action")))
}

/// The tokens of one action's body.
fn lex(body: &str, line: usize) -> Result<Vec<Token>, GoError> {
    let syntax = |what: String| GoError::Syntax(format!("line {line}: {what}"));
    let chars: Vec<char> = body.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        i += 1;
        match c {
            c if is_space(c) => {}
            '|' => tokens.push(Token::Pipe),
            '(' => tokens.push(Token::Open),
            ')' => tokens.push(Token::Close),
            '"' => {
                let (text, next) = quoted(&chars, i)
                    .ok_or_else(|| syntax("unterminated or invalid quoted string".into()))?;
                tokens.push(Token::Str(text));
                i = next;
            }
            '`' => {
                let len = chars[i..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or_else(|| syntax("unterminated raw quoted string".into()))?;
                tokens.push(Token::Str(chars[i..i + len].iter().collect()));
                i += len + 1;
            }
            '.' if !chars.get(i).is_some_and(char::is_ascii_digit) => {
                let len = word_len(&chars[i..]);
                tokens.push(Token::Field(chars[i..i + len].iter().collect()));
                i += len;
            }
            c if c.is_ascii_digit() || matches!(c, '-' | '+' | '.') => {
                let len = chars[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
                    .count();
                tokens.push(Token::Number(chars[start..i + len].iter().collect()));
                i += len;
            }
            c if c.is_alphabetic() || c == '_' => {
                let len = word_len(&chars[i..]);
                tokens.push(Token::Ident(chars[start..i + len].iter().collect()));
                i += len;
            }
            '$' => {
                return Err(GoError::Unsupported(
                    "$".into(),
                    "template variables bind values; Flagger's queries use the functions (namespace, variables.KEY, ...)",
                ));
            }
            ':' | '=' => {
                return Err(GoError::Unsupported(
                    ":=".into(),
                    "assignments bind values; call the function where the value is wanted",
                ));
            }
            '\'' => {
                return Err(GoError::Unsupported(
                    "'c'".into(),
                    "character constants are numbers in Go; write a string",
                ));
            }
            other => return Err(syntax(format!("unexpected {other:?} in command"))),
        }
    }
    Ok(tokens)
}

fn word_len(chars: &[char]) -> usize {
    chars
        .iter()
        .take_while(|c| c.is_alphanumeric() || **c == '_')
        .count()
}

/// A Go interpreted string starting after its `"`: the text and the index after the closing quote.
fn quoted(chars: &[char], from: usize) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut i = from;
    loop {
        let c = *chars.get(i)?;
        i += 1;
        match c {
            '"' => return Some((text, i)),
            '\n' => return None,
            '\\' => {
                let e = *chars.get(i)?;
                i += 1;
                text.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '\\' => '\\',
                    '"' => '"',
                    '\'' => '\'',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = chars.get(i..i + n)?.iter().collect();
                        i += n;
                        char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                    }
                    _ => return None,
                });
            }
            c => text.push(c),
        }
    }
}

/// A pipeline from its tokens.
fn pipe(tokens: &[Token], line: usize) -> Result<Pipe, GoError> {
    let mut at = 0;
    let pipe = pipeline(tokens, &mut at, line, 0)?;
    if at < tokens.len() {
        return Err(GoError::Syntax(format!(
            "line {line}: unexpected {:?} in operand",
            tokens[at]
        )));
    }
    Ok(pipe)
}

fn pipeline(tokens: &[Token], at: &mut usize, line: usize, depth: usize) -> Result<Pipe, GoError> {
    if depth > MAX_DEPTH {
        return Err(GoError::Syntax(format!(
            "line {line}: parentheses nested deeper than {MAX_DEPTH}"
        )));
    }
    let mut commands = Vec::new();
    loop {
        let mut args = Vec::new();
        while let Some(token) = tokens.get(*at) {
            if matches!(token, Token::Pipe | Token::Close) {
                break;
            }
            *at += 1;
            args.push(operand(token, tokens, at, line, depth)?);
        }
        if args.is_empty() {
            return Err(GoError::Syntax(format!(
                "line {line}: missing command in pipeline"
            )));
        }
        let called = matches!(args[0], Operand::Func(_, ref keys) if keys.is_empty());
        if (args.len() > 1 || !commands.is_empty()) && !called {
            return Err(GoError::Syntax(format!(
                "line {line}: can't give argument to non-function"
            )));
        }
        commands.push(Command { args });
        if tokens.get(*at) == Some(&Token::Pipe) {
            *at += 1;
        } else {
            return Ok(commands);
        }
    }
}

fn operand(
    token: &Token,
    tokens: &[Token],
    at: &mut usize,
    line: usize,
    depth: usize,
) -> Result<Operand, GoError> {
    let syntax = |what: String| GoError::Syntax(format!("line {line}: {what}"));
    let base = match token {
        Token::Ident(word) => return ident(word, keys(tokens, at)),
        Token::Field(key) => {
            let mut chain = if key.is_empty() {
                Vec::new()
            } else {
                vec![key.clone()]
            };
            chain.extend(keys(tokens, at));
            return Ok(Operand::Dot(chain));
        }
        Token::Str(text) => Operand::Str(text.clone()),
        Token::Number(text) => {
            number(text).ok_or_else(|| syntax(format!("bad number syntax: {text:?}")))?
        }
        Token::Open => {
            let inner = pipeline(tokens, at, line, depth + 1)?;
            if tokens.get(*at) != Some(&Token::Close) {
                return Err(syntax("unclosed left paren".into()));
            }
            *at += 1;
            return Ok(Operand::Paren(inner, keys(tokens, at)));
        }
        Token::Close | Token::Pipe => return Err(syntax(format!("unexpected {token:?}"))),
    };
    if matches!(tokens.get(*at), Some(Token::Field(_))) {
        return Err(syntax("unexpected . after term".into()));
    }
    Ok(base)
}

/// The `.key`s that follow an operand.
fn keys(tokens: &[Token], at: &mut usize) -> Vec<String> {
    let mut keys = Vec::new();
    while let Some(Token::Field(key)) = tokens.get(*at) {
        keys.push(key.clone());
        *at += 1;
    }
    keys
}

fn ident(word: &str, keys: Vec<String>) -> Result<Operand, GoError> {
    match word {
        "true" | "false" => Ok(Operand::Bool(word == "true")),
        "nil" => Err(GoError::Unsupported("nil".into(), "nil is not a command")),
        "range" | "break" | "continue" => Err(GoError::Unsupported(
            word.into(),
            "loops are not run in queries (a query's variables are strings; write the query out)",
        )),
        "define" | "template" | "block" => Err(GoError::Unsupported(
            word.into(),
            "named templates are not supported in queries; Flagger's query has one template",
        )),
        _ if MODEL.contains(&word) || BUILTINS.contains(&word) => {
            Ok(Operand::Func(word.into(), keys))
        }
        _ => match REFUSED_BUILTINS.iter().find(|(name, _)| *name == word) {
            Some((name, why)) => Err(GoError::Unsupported((*name).into(), why)),
            None => Err(GoError::Unknown(word.into())),
        },
    }
}

/// Go's decimal number literals; other bases and `_` separators are not taken.
fn number(text: &str) -> Option<Operand> {
    if let Ok(int) = text.parse::<i64>() {
        return Some(Operand::Int(int));
    }
    let digits = text.trim_start_matches(['-', '+']);
    if digits
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
    {
        return text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Operand::Float);
    }
    None
}
