//! ConnectWise's `conditions` grammar: parsed strictly (anything else is a 400, as
//! ConnectWise answers) and evaluated against JSON records with SQL Server's habits:
//! case-insensitive text, and a missing value matching nothing but `= null`.

use std::cmp::Ordering;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Number(f64),
    Bool(bool),
    Null,
    /// `[2016-08-20T18:04:26Z]`
    DateTime(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    Contains,
    In,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare {
        path: Vec<String>,
        op: Op,
        values: Vec<Literal>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Number(f64),
    DateTime(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated string starting at {i}")),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => match chars.get(i + 1) {
                            Some(&escaped @ ('"' | '\\')) => {
                                text.push(escaped);
                                i += 2;
                            }
                            _ => return Err(format!("invalid escape at {i}")),
                        },
                        Some('[')
                            if chars.get(i + 1) == Some(&'[') && chars.get(i + 2) == Some(&']') =>
                        {
                            text.push('[');
                            i += 3;
                        }
                        Some(&other) => {
                            text.push(other);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Text(text));
            }
            '[' => {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == ']')
                    .ok_or_else(|| format!("unterminated datetime at {i}"))?;
                let text: String = chars[i + 1..i + end].iter().collect();
                tokens.push(Token::DateTime(text.trim().to_string()));
                i += end + 1;
            }
            '!' | '<' | '>' | '=' => {
                let next = chars.get(i + 1).copied();
                let (op, width) = match (c, next) {
                    ('!', Some('=')) => ("!=", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('<', _) => ("<", 1),
                    ('>', _) => (">", 1),
                    ('=', _) => ("=", 1),
                    _ => return Err(format!("unexpected `{c}` at {i}")),
                };
                tokens.push(Token::Op(op));
                i += width;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let number = text.parse().map_err(|_| format!("bad number `{text}`"))?;
                tokens.push(Token::Number(number));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '/')
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected `{other}` at {i}")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.and_expr()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_word("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.tokens.get(self.at) == Some(&Token::Open) {
            self.at += 1;
            let inner = self.expr()?;
            return match self.next() {
                Some(Token::Close) => Ok(inner),
                _ => Err("missing `)`".into()),
            };
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let path = match self.next() {
            Some(Token::Word(word)) if !is_keyword(&word) => word,
            other => return Err(format!("expected a field name, found {other:?}")),
        };
        let mut path: Vec<String> = path.split('/').map(str::to_string).collect();
        // `lastUpdated` is how conditions name `_info/lastUpdated` (the published example).
        if path.len() == 1 && path[0].eq_ignore_ascii_case("lastUpdated") {
            path = vec!["_info".into(), "lastUpdated".into()];
        }
        if path.iter().any(String::is_empty) {
            return Err("empty segment in a field path".into());
        }
        let negate = if self.peek_word("not") {
            self.at += 1;
            true
        } else {
            false
        };
        let (op, values) = match self.next() {
            Some(Token::Op(op)) if !negate => {
                let op = match op {
                    "=" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    _ => Op::Ge,
                };
                (op, vec![self.literal()?])
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("like") => {
                (Op::Like, vec![self.text_literal()?])
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("contains") => {
                (Op::Contains, vec![self.text_literal()?])
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => {
                if self.next() != Some(Token::Open) {
                    return Err("expected `(` after in".into());
                }
                let mut values = vec![self.literal()?];
                loop {
                    match self.next() {
                        Some(Token::Comma) => values.push(self.literal()?),
                        Some(Token::Close) => break,
                        _ => return Err("expected `,` or `)` in list".into()),
                    }
                }
                (Op::In, values)
            }
            other => return Err(format!("expected an operator, found {other:?}")),
        };
        let compare = Expr::Compare { path, op, values };
        Ok(if negate {
            Expr::Not(Box::new(compare))
        } else {
            compare
        })
    }

    fn text_literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Token::Text(text)) => Ok(Literal::Text(text)),
            other => Err(format!("expected a quoted string, found {other:?}")),
        }
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Token::Text(text)) => Ok(Literal::Text(text)),
            Some(Token::Number(n)) => Ok(Literal::Number(n)),
            Some(Token::DateTime(d)) => Ok(Literal::DateTime(d)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Literal::Null),
            other => Err(format!("expected a value, found {other:?}")),
        }
    }
}

fn is_keyword(word: &str) -> bool {
    [
        "and", "or", "not", "like", "contains", "in", "true", "false", "null",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(word))
}

/// Parses a whole condition string; trailing input is an error.
pub fn parse(input: &str) -> Result<Expr, String> {
    let mut parser = Parser {
        tokens: tokenize(input)?,
        at: 0,
    };
    let expr = parser.expr()?;
    if parser.at != parser.tokens.len() {
        return Err(format!(
            "unexpected {:?} after a complete condition",
            parser.tokens[parser.at]
        ));
    }
    Ok(expr)
}

impl Expr {
    /// Every field path the expression reads, for checking against the resource's fields.
    pub fn paths(&self) -> Vec<&[String]> {
        match self {
            Expr::Or(a, b) | Expr::And(a, b) => {
                let mut paths = a.paths();
                paths.extend(b.paths());
                paths
            }
            Expr::Not(inner) => inner.paths(),
            Expr::Compare { path, .. } => vec![path.as_slice()],
        }
    }

    pub fn matches(&self, record: &Value) -> bool {
        match self {
            Expr::Or(a, b) => a.matches(record) || b.matches(record),
            Expr::And(a, b) => a.matches(record) && b.matches(record),
            Expr::Not(inner) => !inner.matches(record),
            Expr::Compare { path, op, values } => {
                let mut found = Vec::new();
                resolve(record, path, &mut found);
                if found.is_empty() {
                    found.push(&Value::Null);
                }
                found.iter().any(|value| compare(value, *op, values))
            }
        }
    }
}

/// Values at `path`; arrays on the way are searched element by element.
fn resolve<'a>(value: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| resolve(item, path, out)),
        _ if path.is_empty() => out.push(value),
        Value::Object(map) => {
            if let Some((_, child)) = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(&path[0])) {
                resolve(child, &path[1..], out);
            }
        }
        _ => {}
    }
}

fn compare(value: &Value, op: Op, literals: &[Literal]) -> bool {
    match op {
        Op::In => literals
            .iter()
            .any(|l| ordering(value, l) == Some(Ordering::Equal)),
        Op::Like => match (value.as_str(), &literals[0]) {
            (Some(text), Literal::Text(pattern)) => {
                like(&text.to_lowercase(), &pattern.to_lowercase())
            }
            _ => false,
        },
        Op::Contains => match (value.as_str(), &literals[0]) {
            (Some(text), Literal::Text(part)) => text.to_lowercase().contains(&part.to_lowercase()),
            _ => false,
        },
        _ => {
            let literal = &literals[0];
            if *literal == Literal::Null {
                return match op {
                    Op::Eq => value.is_null(),
                    Op::Ne => !value.is_null(),
                    _ => false,
                };
            }
            let Some(ordering) = ordering(value, literal) else {
                return false;
            };
            match op {
                Op::Eq => ordering == Ordering::Equal,
                Op::Ne => ordering != Ordering::Equal,
                Op::Lt => ordering == Ordering::Less,
                Op::Le => ordering != Ordering::Greater,
                Op::Gt => ordering == Ordering::Greater,
                Op::Ge => ordering != Ordering::Less,
                _ => false,
            }
        }
    }
}

/// SQL-style: a null value compares with nothing.
fn ordering(value: &Value, literal: &Literal) -> Option<Ordering> {
    match (value, literal) {
        (Value::Number(n), Literal::Number(l)) => n.as_f64()?.partial_cmp(l),
        (Value::Bool(b), Literal::Bool(l)) => Some(b.cmp(l)),
        (Value::String(s), Literal::Text(l) | Literal::DateTime(l)) => {
            Some(s.to_lowercase().cmp(&l.to_lowercase()))
        }
        (Value::Number(n), Literal::Text(l)) => Some(n.to_string().cmp(l)),
        (Value::String(s), Literal::Number(l)) => s.parse::<f64>().ok()?.partial_cmp(l),
        _ => None,
    }
}

/// `*` and `%` match any run of characters.
fn like(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let (mut t, mut p) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '*' || pattern[p] == '%') {
            star = Some(p);
            mark = t;
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*' || c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(condition: &str, record: &Value) -> bool {
        parse(condition)
            .unwrap_or_else(|e| panic!("{condition}: {e}"))
            .matches(record)
    }

    #[test]
    fn grammar() {
        let r = json!({"id": 7, "name": "Dell Inc.", "inactiveFlag": false,
            "type": {"id": 3, "name": "Server"}, "date": "2024-01-02T00:00:00Z"});
        assert!(check(r#"name="dell inc.""#, &r));
        assert!(check(r#"name like "Dell*""#, &r));
        assert!(check(r#"name like "%inc%""#, &r));
        assert!(!check(r#"name like "Inc*""#, &r));
        assert!(check(r#"name contains "ll I""#, &r));
        assert!(check("id in (1, 7, 9)", &r));
        assert!(check("id not in (1, 9)", &r));
        assert!(check("inactiveFlag=False AND type/name=\"server\"", &r));
        assert!(check("(id<5 or id>=7) and not id=8", &r));
        assert!(check("date > [2023-12-31T00:00:00Z]", &r));
        assert!(check("missing = null and name != null", &r));
        assert!(!check("missing != \"x\"", &r));
    }

    #[test]
    fn escapes() {
        let r = json!({"name": "x\" or id>0 or name=\"y"});
        assert!(check(r#"name="x\" or id>0 or name=\"y""#, &r));
        let r = json!({"name": r"a\b[c]"});
        assert!(check(r#"name="a\\b[[]c]""#, &r));
    }

    #[test]
    fn rejects_what_it_does_not_understand() {
        for bad in [
            "name=",
            "name = \"x",
            "name == \"x\"",
            "name=\"x\" or",
            "name=\"x\" id=1",
            "(name=\"x\"",
            "name like 5",
            "name=\"\\q\"",
            "id in ()",
            "name ~ \"x\"",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }
}
