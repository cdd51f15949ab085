//! Reading the `[name(key=value, ...), ...]` form Llama 3.2 uses for custom tool calls.
//!
//! The model writes Python source, and the reference parser accepts exactly what Python's parser
//! accepts as one expression statement holding a list of calls whose arguments are all keywords
//! with literal values. This reads the same subset of Python: string literals with their
//! prefixes, escapes and implicit concatenation, numbers with underscores and bases, `True`,
//! `False`, `None`, lists, tuples and string-keyed dicts, plus comments and line joining inside
//! brackets. Anything else (names as values, sets, bytes, complex numbers, positional
//! arguments) is not a call list.

use serde_json::{Map, Number, Value};

/// The first call of a list: the function name and its keyword arguments in source order, a
/// repeated keyword keeping its first place and its last value. An argument is `None` when it
/// is a valid literal with no JSON form (a set, bytes, a complex number...).
pub type Call = (String, Vec<(String, Option<Value>)>);

/// Python refuses deeper bracket nesting than this ("too many nested parentheses").
const MAX_DEPTH: usize = 200;

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

/// The first call of `src` when it is a non-empty Python list of keyword-only calls with
/// literal arguments, else `None`.
pub fn parse_first_call(src: &str) -> Option<Call> {
    let mut p = Parser { s: src.chars().collect(), i: 0, depth: 0 };
    p.skip_blank_lines()?;
    let call = p.call_list()?;
    p.statement_end()?;
    Some(call)
}

struct Parser {
    s: Vec<char>,
    i: usize,
    depth: usize,
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.s.get(self.i + k).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                break;
            }
            self.i += 1;
        }
    }

    /// Leading lines holding only blanks or comments; the statement itself must not be indented.
    fn skip_blank_lines(&mut self) -> Option<()> {
        loop {
            let line_start = self.i;
            while matches!(self.peek(), Some(' ' | '\t' | '\x0c')) {
                self.i += 1;
            }
            match self.peek() {
                None => return None,
                Some('#') => self.skip_comment(),
                Some('\n' | '\r') => {}
                Some(_) => return (self.i == line_start).then_some(()),
            }
            self.peek()?;
            self.i += 1;
        }
    }

    /// Whitespace inside brackets, where newlines, comments and backslash line joins are free.
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\x0c' | '\n' | '\r' => self.i += 1,
                '#' => self.skip_comment(),
                '\\' if matches!(self.peek_at(1), Some('\n' | '\r')) => self.i += 2,
                _ => break,
            }
        }
    }

    /// After the list: blanks, an optional `;`, an optional comment, then only blank lines.
    fn statement_end(&mut self) -> Option<()> {
        let blanks = |p: &mut Self| {
            while matches!(p.peek(), Some(' ' | '\t' | '\x0c')) {
                p.i += 1;
            }
        };
        blanks(self);
        if self.eat(';') {
            blanks(self);
        }
        loop {
            if self.peek() == Some('#') {
                self.skip_comment();
            }
            match self.peek() {
                None => return Some(()),
                Some('\n' | '\r') => self.i += 1,
                Some(_) => return None,
            }
            blanks(self);
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn identifier(&mut self) -> Option<String> {
        let start = self.i;
        if !self.peek().is_some_and(is_ident_start) {
            return None;
        }
        while self.peek().is_some_and(is_ident_continue) {
            self.i += 1;
        }
        Some(self.s[start..self.i].iter().collect())
    }

    /// Every call must be well formed with literal arguments, but only the first is kept.
    fn call_list(&mut self) -> Option<Call> {
        if !self.eat('[') {
            return None;
        }
        self.enter()?;
        let mut calls: Vec<(String, Vec<(String, Lit)>)> = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(']') {
                break;
            }
            calls.push(self.call()?);
            self.skip_ws();
            if self.eat(']') {
                break;
            }
            if !self.eat(',') {
                return None;
            }
        }
        self.depth -= 1;
        let (name, args) = calls.into_iter().next()?;
        let mut merged: Vec<(String, Option<Value>)> = Vec::with_capacity(args.len());
        for (k, v) in args {
            let v = v.into_json();
            match merged.iter_mut().find(|(seen, _)| *seen == k) {
                Some(slot) => slot.1 = v,
                None => merged.push((k, v)),
            }
        }
        Some((name, merged))
    }

    fn call(&mut self) -> Option<(String, Vec<(String, Lit)>)> {
        let name = self.identifier().filter(|n| !KEYWORDS.contains(&n.as_str()))?;
        self.skip_ws();
        if !self.eat('(') {
            return None;
        }
        self.enter()?;
        let mut args = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(')') {
                break;
            }
            let key = self.identifier().filter(|k| !KEYWORDS.contains(&k.as_str()))?;
            self.skip_ws();
            if !self.eat('=') || self.peek() == Some('=') {
                return None;
            }
            args.push((key, self.value()?));
            self.skip_ws();
            if self.eat(')') {
                break;
            }
            if !self.eat(',') {
                return None;
            }
        }
        self.depth -= 1;
        Some((name, args))
    }

    /// A literal as `ast.literal_eval` reads it; `None` for anything else.
    fn value(&mut self) -> Option<Lit> {
        self.skip_ws();
        let c = self.peek()?;
        let lit = match c {
            '(' => self.sequence('(', ')', true)?,
            '[' => self.sequence('[', ']', false)?,
            '{' => self.dict_or_set()?,
            '-' | '+' => {
                self.i += 1;
                self.skip_ws();
                match self.number()? {
                    Num::Real(v) if c == '-' => negate(&v).map_or(Lit::Opaque, Lit::Json),
                    Num::Real(v) => Lit::Json(v),
                    Num::Opaque => Lit::Opaque,
                    Num::Imaginary => return Some(Lit::Opaque),
                }
            }
            '0'..='9' => match self.number()? {
                Num::Real(v) => Lit::Json(v),
                Num::Opaque => Lit::Opaque,
                Num::Imaginary => return Some(Lit::Opaque),
            },
            '.' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => match self.number()? {
                Num::Real(v) => Lit::Json(v),
                Num::Opaque => Lit::Opaque,
                Num::Imaginary => return Some(Lit::Opaque),
            },
            '.' if self.peek_at(1) == Some('.') && self.peek_at(2) == Some('.') => {
                self.i += 3;
                return Some(Lit::Opaque);
            }
            '"' | '\'' => return self.strings(),
            c if is_ident_start(c) => {
                let start = self.i;
                let word = self.identifier()?;
                if matches!(self.peek(), Some('"' | '\'')) {
                    self.i = start;
                    return self.strings();
                }
                return match word.as_str() {
                    "True" => Some(Lit::Json(Value::Bool(true))),
                    "False" => Some(Lit::Json(Value::Bool(false))),
                    "None" => Some(Lit::Json(Value::Null)),
                    "set" => {
                        self.skip_ws();
                        (self.eat('(') && {
                            self.skip_ws();
                            self.eat(')')
                        })
                        .then_some(Lit::Opaque)
                    }
                    _ => None,
                };
            }
            _ => return None,
        };
        // A real number plus or minus an imaginary one is a complex literal.
        if matches!(lit, Lit::Json(Value::Number(_)) | Lit::Opaque) && !matches!(c, '(' | '[' | '{') {
            let save = self.i;
            self.skip_ws();
            if matches!(self.peek(), Some('+' | '-')) {
                self.i += 1;
                self.skip_ws();
                if matches!(self.peek(), Some('0'..='9' | '.')) && matches!(self.number(), Some(Num::Imaginary)) {
                    return Some(Lit::Opaque);
                }
                return None;
            }
            self.i = save;
        }
        Some(lit)
    }

    /// `(...)` (a tuple, or just grouping) or `[...]`; both become JSON arrays.
    fn sequence(&mut self, open: char, close: char, paren: bool) -> Option<Lit> {
        if !self.eat(open) {
            return None;
        }
        self.enter()?;
        let mut items = Vec::new();
        let mut saw_comma = false;
        loop {
            self.skip_ws();
            if self.eat(close) {
                break;
            }
            items.push(self.value()?);
            self.skip_ws();
            if self.eat(close) {
                break;
            }
            if !self.eat(',') {
                return None;
            }
            saw_comma = true;
        }
        self.depth -= 1;
        if paren && items.len() == 1 && !saw_comma {
            return items.pop();
        }
        let json: Option<Vec<Value>> = items.into_iter().map(Lit::into_json).collect();
        Some(json.map_or(Lit::Opaque, |v| Lit::Json(Value::Array(v))))
    }

    /// `{}` or a dict (JSON when its keys are strings), or a set (no JSON form).
    fn dict_or_set(&mut self) -> Option<Lit> {
        if !self.eat('{') {
            return None;
        }
        self.enter()?;
        let mut map = Some(Map::new());
        let mut is_set = None;
        loop {
            self.skip_ws();
            if self.eat('}') {
                break;
            }
            let key = self.value()?;
            self.skip_ws();
            // The first item decides between a set and a dict.
            let set_item = *is_set.get_or_insert(self.peek() != Some(':'));
            if !set_item {
                if !self.eat(':') {
                    return None;
                }
                let v = self.value()?;
                map = match (map, key, v) {
                    (Some(mut m), Lit::Json(Value::String(k)), Lit::Json(v)) => {
                        m.insert(k, v);
                        Some(m)
                    }
                    _ => None,
                };
            }
            self.skip_ws();
            if self.eat('}') {
                break;
            }
            if !self.eat(',') {
                return None;
            }
        }
        self.depth -= 1;
        if is_set == Some(true) {
            return Some(Lit::Opaque);
        }
        Some(map.map_or(Lit::Opaque, |m| Lit::Json(Value::Object(m))))
    }

    /// One or more adjacent string literals, joined. Bytes give a literal with no JSON form;
    /// mixing bytes and text is a syntax error.
    fn strings(&mut self) -> Option<Lit> {
        let mut out = Some(String::new());
        let mut bytes = None;
        loop {
            let (piece, is_bytes) = self.string()?;
            if *bytes.get_or_insert(is_bytes) != is_bytes {
                return None;
            }
            out = match (out, piece) {
                (Some(mut o), Some(p)) => {
                    o.push_str(&p);
                    Some(o)
                }
                _ => None,
            };
            let save = self.i;
            self.skip_ws();
            let prefixed = self.peek().is_some_and(is_ident_start) && {
                let mut k = 0;
                while self.peek_at(k).is_some_and(|c| c.is_ascii_alphabetic()) {
                    k += 1;
                }
                matches!(self.peek_at(k), Some('"' | '\''))
            };
            if !(matches!(self.peek(), Some('"' | '\'')) || prefixed) {
                self.i = save;
                return Some(match (bytes, out) {
                    (Some(false), Some(text)) => Lit::Json(Value::String(text)),
                    _ => Lit::Opaque,
                });
            }
        }
    }

    /// One string literal: its text (`None` when it cannot be known here, as for `\N{...}`)
    /// and whether it is a bytes literal.
    fn string(&mut self) -> Option<(Option<String>, bool)> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.i += 1;
        }
        let prefix: String = self.s[start..self.i].iter().collect::<String>().to_ascii_lowercase();
        // f-strings are not literals for `ast.literal_eval`.
        let (raw, is_bytes) = match prefix.as_str() {
            "" | "u" => (false, false),
            "r" => (true, false),
            "b" => (false, true),
            "br" | "rb" => (true, true),
            _ => return None,
        };
        let quote = self.peek()?;
        if quote != '"' && quote != '\'' {
            return None;
        }
        let triple = self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote);
        self.i += if triple { 3 } else { 1 };
        let mut out = Some(String::new());
        loop {
            let c = self.peek()?;
            if c == quote && (!triple || (self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote))) {
                self.i += if triple { 3 } else { 1 };
                return Some((out, is_bytes));
            }
            if !triple && (c == '\n' || c == '\r') {
                return None;
            }
            self.i += 1;
            if c != '\\' {
                if let Some(o) = out.as_mut() {
                    o.push(c);
                }
                continue;
            }
            let e = self.peek()?;
            if raw {
                if let Some(o) = out.as_mut() {
                    o.push('\\');
                    o.push(e);
                }
                self.i += 1;
                continue;
            }
            // Once the text is unknown, escapes are still read for their syntax.
            let mut scratch = String::new();
            let known = self.escape(e, out.as_mut().unwrap_or(&mut scratch))?;
            if !known {
                out = None;
            }
        }
    }

    /// Reads the escape after a backslash into `out`. `Some(false)` when the escape is valid but
    /// its character is not known here (`\N{NAME}`).
    fn escape(&mut self, e: char, out: &mut String) -> Option<bool> {
        self.i += 1;
        let simple = match e {
            '\n' => Some(None),
            '\r' => {
                self.eat('\n');
                Some(None)
            }
            '\\' => Some(Some('\\')),
            '\'' => Some(Some('\'')),
            '"' => Some(Some('"')),
            'a' => Some(Some('\u{7}')),
            'b' => Some(Some('\u{8}')),
            'f' => Some(Some('\u{c}')),
            'n' => Some(Some('\n')),
            'r' => Some(Some('\r')),
            't' => Some(Some('\t')),
            'v' => Some(Some('\u{b}')),
            _ => None,
        };
        if let Some(c) = simple {
            out.extend(c);
            return Some(true);
        }
        match e {
            '0'..='7' => {
                let mut v = e.to_digit(8)?;
                for _ in 0..2 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            self.i += 1;
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(v)?);
            }
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..n {
                    v = v.checked_mul(16)?.checked_add(self.peek()?.to_digit(16)?)?;
                    self.i += 1;
                }
                match char::from_u32(v) {
                    Some(c) => out.push(c),
                    // A lone surrogate is valid Python text but has no place in a Rust string.
                    None if v <= 0x10_FFFF => return Some(false),
                    None => return None,
                }
            }
            'N' => {
                if !self.eat('{') {
                    return None;
                }
                while self.peek()? != '}' {
                    self.i += 1;
                }
                self.i += 1;
                return Some(false);
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
        Some(true)
    }

    fn digits(&mut self, radix: u32) -> Option<String> {
        let mut out = String::new();
        loop {
            match self.peek() {
                Some(c) if c.is_digit(radix) => {
                    out.push(c);
                    self.i += 1;
                }
                // One underscore between digits.
                Some('_') if !out.is_empty() && self.peek_at(1).is_some_and(|d| d.is_digit(radix)) => self.i += 1,
                _ => break,
            }
        }
        (!out.is_empty()).then_some(out)
    }

    fn number(&mut self) -> Option<Num> {
        let (n, can_be_imaginary) = self.number_inner()?;
        if can_be_imaginary && matches!(self.peek(), Some('j' | 'J')) {
            self.i += 1;
            return (!self.peek().is_some_and(is_ident_continue)).then_some(Num::Imaginary);
        }
        // `1abc` is not a number.
        if self.peek().is_some_and(is_ident_continue) {
            return None;
        }
        Some(n)
    }

    /// The number, and whether a `j` suffix may follow (decimal literals only).
    fn number_inner(&mut self) -> Option<(Num, bool)> {
        if self.peek() == Some('0') {
            let radix = match self.peek_at(1) {
                Some('x' | 'X') => 16,
                Some('o' | 'O') => 8,
                Some('b' | 'B') => 2,
                _ => 10,
            };
            if radix != 10 {
                self.i += 2;
                if self.peek() == Some('_') {
                    self.i += 1;
                }
                let d = self.digits(radix)?;
                return Some((int_value(&d, radix), false));
            }
        }
        let int_part = if self.peek() == Some('.') { String::new() } else { self.digits(10)? };
        let mut text = int_part.clone();
        let mut is_float = false;
        if self.peek() == Some('.') {
            is_float = true;
            self.i += 1;
            text.push('.');
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                text.push_str(&self.digits(10)?);
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.i;
            self.i += 1;
            let mut exp = String::from("e");
            if let Some(sign @ ('+' | '-')) = self.peek() {
                exp.push(sign);
                self.i += 1;
            }
            match self.digits(10) {
                Some(d) => {
                    exp.push_str(&d);
                    text.push_str(&exp);
                    is_float = true;
                }
                None => self.i = save,
            }
        }
        if is_float {
            let f: f64 = text.parse().ok()?;
            let n = Number::from_f64(f).filter(|_| f.is_finite()).map_or(Num::Opaque, |n| Num::Real(Value::Number(n)));
            return Some((n, true));
        }
        // Python refuses leading zeros on a nonzero decimal integer (`0j` style imaginaries aside).
        if int_part.len() > 1 && int_part.starts_with('0') && int_part.chars().any(|c| c != '0') {
            let imaginary = matches!(self.peek(), Some('j' | 'J'));
            return imaginary.then_some((Num::Opaque, true));
        }
        Some((int_value(&int_part, 10), true))
    }
}

/// A value `ast.literal_eval` accepts: JSON-representable, or one JSON has no form for
/// (sets, bytes, complex numbers, infinities, `...`, text with escapes unknown here).
enum Lit {
    Json(Value),
    Opaque,
}

impl Lit {
    fn into_json(self) -> Option<Value> {
        match self {
            Self::Json(v) => Some(v),
            Self::Opaque => None,
        }
    }
}

enum Num {
    Real(Value),
    Imaginary,
    Opaque,
}

/// An integer literal; past 64 bits it can only be approximated as a float.
fn int_value(digits: &str, radix: u32) -> Num {
    if let Ok(u) = u64::from_str_radix(digits, radix) {
        return Num::Real(Value::Number(Number::from(u)));
    }
    let f = digits.chars().filter_map(|c| c.to_digit(radix)).fold(0f64, |acc, d| acc * f64::from(radix) + f64::from(d));
    Number::from_f64(f).filter(|_| f.is_finite()).map_or(Num::Opaque, |n| Num::Real(Value::Number(n)))
}

fn negate(n: &Value) -> Option<Value> {
    let Value::Number(num) = n else { return None };
    if let Some(u) = num.as_u64() {
        if let Ok(i) = i64::try_from(u) {
            return Some(Value::Number(Number::from(-i)));
        }
        if u == 1u64 << 63 {
            return Some(Value::Number(Number::from(i64::MIN)));
        }
    }
    Number::from_f64(-num.as_f64()?).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(src: &str) -> Option<(String, Value)> {
        let (name, args) = parse_first_call(src)?;
        let map: Map<String, Value> = args.into_iter().map(|(k, v)| (k, v.unwrap_or(json!("<opaque>")))).collect();
        Some((name, Value::Object(map)))
    }

    #[test]
    fn reads_calls_and_literals() {
        assert_eq!(
            one(r#"[get_weather(city="San Francisco", metric='celsius', n=-3, x=1_000.5e-1, ok=True, none=None)]"#),
            Some((
                "get_weather".into(),
                json!({"city": "San Francisco", "metric": "celsius", "n": -3, "x": 100.05, "ok": true, "none": null})
            ))
        );
        assert_eq!(
            one("[f(a=[1, (2, 3)], b={'k': 'v' \"w\"}, c=(4), d=0x1F, e=r'\\d', f='\\x41\\n')]"),
            Some(("f".into(), json!({"a": [1, [2, 3]], "b": {"k": "vw"}, "c": 4, "d": 31, "e": "\\d", "f": "A\n"})))
        );
        assert_eq!(one("\n[a(), b(x=1),]  # two\n\n"), Some(("a".into(), json!({}))));
        // A repeated keyword keeps its place and takes the last value.
        assert_eq!(one("[f(a=1, b=2, a=3)]"), Some(("f".into(), json!({"a": 3, "b": 2}))));
    }

    #[test]
    fn literals_without_json_form() {
        assert_eq!(
            one("[f(a={1, 2}, b=b'x', c=1+2j, d=-3j, e=1e400, g=..., h='\\N{BULLET}', i=set())]"),
            Some((
                "f".into(),
                json!({"a": "<opaque>", "b": "<opaque>", "c": "<opaque>", "d": "<opaque>", "e": "<opaque>",
                       "g": "<opaque>", "h": "<opaque>", "i": "<opaque>"})
            ))
        );
        // Only the first call is kept, but every call must hold literals.
        assert_eq!(one("[f(a=1), g(b={1})]"), Some(("f".into(), json!({"a": 1}))));
        assert_eq!(one("[f(a=1), g(b=x)]"), None);
    }

    #[test]
    fn refuses_what_python_would_not_accept() {
        for src in [
            "[]",
            "[f(1)]",
            "[f(x=y)]",
            "[f(x=f'a')]",
            "[f(x=b'a' 'b')]",
            "[f(x=012)]",
            "[f(x=1 + 2)]",
            "[a.b(x=1)]",
            "[f(x=1)] + []",
            "  [f(x=1)]",
            "[f(x=1)]\nprint(1)",
            "[f(x='open)]",
            "[if(x=1)]",
            "[f(**k)]",
            "[f(x=--1)]",
            "[f(x=-True)]",
        ] {
            assert!(parse_first_call(src).is_none(), "{src}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let src = format!("[f(x={}{})]", "[".repeat(500), "]".repeat(500));
        assert!(parse_first_call(&src).is_none());
    }
}
