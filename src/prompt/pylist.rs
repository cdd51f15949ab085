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

/// One parsed call: the function name and its keyword arguments in source order.
pub type Call = (String, Map<String, Value>);

/// Python refuses deeper bracket nesting than this ("too many nested parentheses").
const MAX_DEPTH: usize = 200;

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

/// The calls of `src` when it is a non-empty Python list of keyword-only calls with literal
/// arguments, else `None`.
pub fn parse_calls(src: &str) -> Option<Vec<Call>> {
    let mut p = Parser { s: src.chars().collect(), i: 0, depth: 0 };
    p.skip_blank_lines()?;
    let calls = p.call_list()?;
    p.statement_end()?;
    Some(calls)
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
            if self.peek().is_none() {
                return None;
            }
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

    fn call_list(&mut self) -> Option<Vec<Call>> {
        if !self.eat('[') {
            return None;
        }
        self.enter()?;
        let mut calls = Vec::new();
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
        (!calls.is_empty()).then_some(calls)
    }

    fn call(&mut self) -> Option<Call> {
        let name = self.identifier().filter(|n| !KEYWORDS.contains(&n.as_str()))?;
        self.skip_ws();
        if !self.eat('(') {
            return None;
        }
        self.enter()?;
        let mut args = Map::new();
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
            let value = self.value()?;
            // A repeated keyword argument is a syntax error in Python.
            if args.insert(key, value).is_some() {
                return None;
            }
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

    /// A literal as `ast.literal_eval` reads it, restricted to values JSON can hold.
    fn value(&mut self) -> Option<Value> {
        self.skip_ws();
        let c = self.peek()?;
        match c {
            '(' => self.sequence('(', ')', true),
            '[' => self.sequence('[', ']', false),
            '{' => self.dict(),
            '-' | '+' => {
                self.i += 1;
                self.skip_ws();
                let n = self.number()?;
                if c == '+' {
                    return Some(n);
                }
                negate(&n)
            }
            '0'..='9' => self.number(),
            '.' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => self.number(),
            '"' | '\'' => self.strings(),
            c if is_ident_start(c) => {
                let start = self.i;
                let word = self.identifier()?;
                if matches!(self.peek(), Some('"' | '\'')) {
                    self.i = start;
                    return self.strings();
                }
                match word.as_str() {
                    "True" => Some(Value::Bool(true)),
                    "False" => Some(Value::Bool(false)),
                    "None" => Some(Value::Null),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `(...)` (a tuple, or just grouping) or `[...]`; both become JSON arrays.
    fn sequence(&mut self, open: char, close: char, paren: bool) -> Option<Value> {
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
        Some(Value::Array(items))
    }

    /// `{}` or a dict with string keys; sets and other keys have no JSON form.
    fn dict(&mut self) -> Option<Value> {
        if !self.eat('{') {
            return None;
        }
        self.enter()?;
        let mut map = Map::new();
        loop {
            self.skip_ws();
            if self.eat('}') {
                break;
            }
            let Value::String(key) = self.value()? else { return None };
            self.skip_ws();
            if !self.eat(':') {
                return None;
            }
            let v = self.value()?;
            map.insert(key, v);
            self.skip_ws();
            if self.eat('}') {
                break;
            }
            if !self.eat(',') {
                return None;
            }
        }
        self.depth -= 1;
        Some(Value::Object(map))
    }

    /// One or more adjacent string literals, joined.
    fn strings(&mut self) -> Option<Value> {
        let mut out = String::new();
        loop {
            out.push_str(&self.string()?);
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
                return Some(Value::String(out));
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.i += 1;
        }
        let prefix: String = self.s[start..self.i].iter().collect::<String>().to_ascii_lowercase();
        // Bytes and f-strings are not literals `ast.literal_eval` turns into text.
        let raw = match prefix.as_str() {
            "" | "u" => false,
            "r" => true,
            _ => return None,
        };
        let quote = self.peek()?;
        if quote != '"' && quote != '\'' {
            return None;
        }
        let triple = self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote);
        self.i += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            if c == quote && (!triple || (self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote))) {
                self.i += if triple { 3 } else { 1 };
                return Some(out);
            }
            if !triple && (c == '\n' || c == '\r') {
                return None;
            }
            self.i += 1;
            if c != '\\' {
                out.push(c);
                continue;
            }
            let e = self.peek()?;
            if raw {
                out.push('\\');
                out.push(e);
                self.i += 1;
                continue;
            }
            self.escape(e, &mut out)?;
        }
    }

    fn escape(&mut self, e: char, out: &mut String) -> Option<()> {
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
            return Some(());
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
                out.push(char::from_u32(v)?);
            }
            // Named escapes need the Unicode name table; such text is not read as a call.
            'N' => return None,
            other => {
                out.push('\\');
                out.push(other);
            }
        }
        Some(())
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

    fn number(&mut self) -> Option<Value> {
        let n = self.number_inner()?;
        // `1abc` or `1j` (complex) are not JSON numbers.
        if self.peek().is_some_and(is_ident_continue) {
            return None;
        }
        Some(n)
    }

    fn number_inner(&mut self) -> Option<Value> {
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
                return int_value(u128::from_str_radix(&d, radix).ok()?);
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
            return f.is_finite().then(|| Number::from_f64(f).map(Value::Number))?;
        }
        // Python refuses leading zeros on a nonzero decimal integer.
        if int_part.len() > 1 && int_part.starts_with('0') && int_part.chars().any(|c| c != '0') {
            return None;
        }
        int_value(int_part.parse().ok()?)
    }
}

fn int_value(v: u128) -> Option<Value> {
    if let Ok(u) = u64::try_from(v) {
        return Some(Value::Number(Number::from(u)));
    }
    #[expect(clippy::cast_precision_loss, reason = "integers past u64 have no exact JSON number here")]
    let f = v as f64;
    Number::from_f64(f).map(Value::Number)
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
        parse_calls(src).and_then(|mut v| v.drain(..).next()).map(|(n, a)| (n, Value::Object(a)))
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
        let calls = parse_calls("\n[a(), b(x=1),]  # two\n\n").unwrap_or_default();
        assert_eq!(calls.len(), 2);
    }

    #[test]
    fn refuses_what_python_would_not_accept() {
        for src in [
            "[]",
            "[f(1)]",
            "[f(x=y)]",
            "[f(x=1, x=2)]",
            "[f(x={1, 2})]",
            "[f(x=b'a')]",
            "[f(x=1j)]",
            "[f(x=012)]",
            "[a.b(x=1)]",
            "[f(x=1)] + []",
            "  [f(x=1)]",
            "[f(x=1)]\nprint(1)",
            "[f(x='open)]",
            "[if(x=1)]",
            "[f(**k)]",
            "[f(x=--1)]",
        ] {
            assert!(parse_calls(src).is_none(), "{src}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let src = format!("[f(x={}{})]", "[".repeat(500), "]".repeat(500));
        assert!(parse_calls(&src).is_none());
    }
}
