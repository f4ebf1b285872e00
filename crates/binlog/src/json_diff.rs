//! MySQL partial JSON updates (`binlog_row_value_options=PARTIAL_JSON`, PARTIAL_UPDATE_ROWS
//! events): the after image may carry, for a JSON column, a list of changes to the before image
//! instead of the whole document. Applied in order to the before image's JSON text they give the
//! after image's, as [`json`](crate::json) would have printed it.
//!
//! A diff list is the column's value (behind the usual length prefix): diffs back to back, each
//! an operation byte (0 REPLACE, 1 INSERT, 2 REMOVE), the path as a length-encoded string in
//! MySQL's path syntax (`$`, `.key`, `."quoted key"`, `[n]`, `[last]`, `[last-n]`), and, unless
//! REMOVE, a length-encoded length and that many bytes of binary JSON (type byte and value).
//! Lengths are MySQL's packed integers: one byte below 251, else 252/253/254 followed by 2/3/8
//! bytes little-endian.
//!
//! Semantics, as MySQL applies them: REPLACE swaps the value at an existing path (`$` is the
//! whole document); INSERT adds an object member (replacing one of the same name) or an array
//! element at the index (appended when the index is past the end, a non-array parent being
//! wrapped into an array first, as `JSON_SET` does); REMOVE drops an existing member or element.
//! New members take the place MySQL's binary format gives them: keys ordered by length, then
//! byte-wise, so the text matches what `SELECT` prints afterwards. Anything else (a missing
//! path, wildcards, ranges) is an error; nothing is guessed.

use crate::error::Reason;
use crate::json::{binary_to_text, push_quoted};

const REPLACE: u8 = 0;
const INSERT: u8 = 1;
const REMOVE: u8 = 2;

fn bad(what: &'static str) -> Reason {
    Reason::InvalidValue(what)
}

/// Applies the diff list `diffs` (a PARTIAL_UPDATE_ROWS JSON column value without its length
/// prefix) to the JSON text `base`, returning the new text.
pub(crate) fn apply(base: &str, diffs: &[u8]) -> Result<String, Reason> {
    let mut doc = Parser { text: base.as_bytes(), pos: 0 }.document()?;
    let mut rest = diffs;
    while !rest.is_empty() {
        let (&op, tail) = rest.split_first().ok_or(bad("JSON diff truncated"))?;
        let (path, tail) = packed_bytes(tail)?;
        let path = std::str::from_utf8(path).map_err(|_| bad("JSON diff path is not UTF-8"))?;
        let legs = parse_path(path)?;
        rest = tail;
        let value = match op {
            REPLACE | INSERT => {
                let (value, tail) = packed_bytes(rest)?;
                rest = tail;
                let text = binary_to_text(value)?;
                Some(Parser { text: text.as_bytes(), pos: 0 }.document()?)
            }
            REMOVE => None,
            _ => return Err(bad("unknown JSON diff operation")),
        };
        match (op, value) {
            (REPLACE, Some(value)) => replace(&mut doc, &legs, value)?,
            (INSERT, Some(value)) => insert(&mut doc, &legs, value)?,
            _ => remove(&mut doc, &legs)?,
        }
    }
    let mut out = String::with_capacity(base.len() + 16);
    doc.write(&mut out);
    Ok(out)
}

/// A MySQL packed length (`net_field_length`) and the bytes it announces.
fn packed_bytes(data: &[u8]) -> Result<(&[u8], &[u8]), Reason> {
    let (&first, rest) = data.split_first().ok_or(bad("JSON diff truncated"))?;
    let (len, rest) = match first {
        0..=250 => (u64::from(first), rest),
        252..=254 => {
            let n = match first {
                252 => 2,
                253 => 3,
                _ => 8,
            };
            let bytes = rest.get(..n).ok_or(bad("JSON diff truncated"))?;
            (bytes.iter().rev().fold(0u64, |acc, &b| acc << 8 | u64::from(b)), &rest[n..])
        }
        _ => return Err(bad("bad packed length in JSON diff")),
    };
    let len = usize::try_from(len).map_err(|_| bad("JSON diff truncated"))?;
    let bytes = rest.get(..len).ok_or(bad("JSON diff truncated"))?;
    Ok((bytes, &rest[len..]))
}

// ---- The document ----

/// A parsed JSON document. Scalars keep their text verbatim (numbers as printed, strings quoted
/// and escaped), so writing a node back gives the exact text it was parsed from, minus spacing.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Scalar(String),
    Array(Vec<Node>),
    /// Members with their keys unescaped.
    Object(Vec<(String, Node)>),
}

impl Node {
    fn write(&self, out: &mut String) {
        match self {
            Node::Scalar(text) => out.push_str(text),
            Node::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Node::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_quoted(out, key);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// A JSON text parser for documents this crate printed (and any other valid JSON).
struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn document(mut self) -> Result<Node, Reason> {
        let node = self.value(0)?;
        self.space();
        if self.pos != self.text.len() {
            return Err(bad("trailing characters after the JSON document"));
        }
        Ok(node)
    }

    fn space(&mut self) {
        while self.text.get(self.pos).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.space();
        self.text.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), Reason> {
        if self.peek() != Some(c) {
            return Err(bad("malformed JSON text"));
        }
        self.pos += 1;
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Node, Reason> {
        if depth > 200 {
            return Err(bad("JSON nested too deep"));
        }
        match self.peek().ok_or(bad("JSON text ends early"))? {
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Node::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Node::Array(items));
                        }
                        _ => return Err(bad("malformed JSON array")),
                    }
                }
            }
            b'{' => {
                self.pos += 1;
                let mut members = Vec::new();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Node::Object(members));
                }
                loop {
                    self.space();
                    let key = unescape(self.string_token()?)?;
                    self.expect(b':')?;
                    members.push((key, self.value(depth + 1)?));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Node::Object(members));
                        }
                        _ => return Err(bad("malformed JSON object")),
                    }
                }
            }
            b'"' => Ok(Node::Scalar(self.string_token()?.to_owned())),
            _ => {
                let start = self.pos;
                while self
                    .text
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    self.pos += 1;
                }
                let token = std::str::from_utf8(&self.text[start..self.pos]).map_err(|_| bad("malformed JSON text"))?;
                let number = token.bytes().next().is_some_and(|c| c == b'-' || c.is_ascii_digit());
                if token.is_empty() || !(number || matches!(token, "true" | "false" | "null")) {
                    return Err(bad("malformed JSON scalar"));
                }
                Ok(Node::Scalar(token.to_owned()))
            }
        }
    }

    /// A string token, quotes and escapes included, as it is in the text.
    fn string_token(&mut self) -> Result<&str, Reason> {
        let start = self.pos;
        if self.text.get(self.pos) != Some(&b'"') {
            return Err(bad("malformed JSON string"));
        }
        self.pos += 1;
        loop {
            match self.text.get(self.pos) {
                None => return Err(bad("unterminated JSON string")),
                Some(b'\\') => self.pos += 2,
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => self.pos += 1,
            }
        }
        let token = self.text.get(start..self.pos).ok_or(bad("unterminated JSON string"))?;
        std::str::from_utf8(token).map_err(|_| bad("JSON string is not UTF-8"))
    }
}

/// The text of a quoted JSON string token (quotes included).
fn unescape(token: &str) -> Result<String, Reason> {
    let inner = token.strip_prefix('"').and_then(|t| t.strip_suffix('"')).ok_or(bad("malformed JSON string"))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next().ok_or(bad("malformed JSON escape"))? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let first = hex4(&mut chars)?;
                let code = if (0xD800..0xDC00).contains(&first) {
                    if chars.next() != Some('\\') || chars.next() != Some('u') {
                        return Err(bad("lone surrogate in JSON string"));
                    }
                    let second = hex4(&mut chars)?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return Err(bad("lone surrogate in JSON string"));
                    }
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                } else {
                    first
                };
                out.push(char::from_u32(code).ok_or(bad("lone surrogate in JSON string"))?);
            }
            _ => return Err(bad("malformed JSON escape")),
        }
    }
    Ok(out)
}

/// The four hex digits of a `\u` escape.
fn hex4(chars: &mut std::str::Chars<'_>) -> Result<u32, Reason> {
    let hex: String = chars.take(4).collect();
    if hex.len() != 4 {
        return Err(bad("malformed JSON escape"));
    }
    u32::from_str_radix(&hex, 16).map_err(|_| bad("malformed JSON escape"))
}

// ---- Paths ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Leg {
    Member(String),
    /// `[n]`, or `[last - n]` (`from_end`).
    Index { n: usize, from_end: bool },
}

/// Parses a MySQL JSON path of member and array-cell legs.
fn parse_path(path: &str) -> Result<Vec<Leg>, Reason> {
    let b = path.as_bytes();
    let mut i = 0;
    let skip = |i: &mut usize| {
        while b.get(*i).is_some_and(u8::is_ascii_whitespace) {
            *i += 1;
        }
    };
    skip(&mut i);
    if b.get(i) != Some(&b'$') {
        return Err(bad("JSON diff path does not start with $"));
    }
    i += 1;
    let mut legs = Vec::new();
    loop {
        skip(&mut i);
        match b.get(i) {
            None => return Ok(legs),
            Some(b'.') => {
                i += 1;
                skip(&mut i);
                if b.get(i) == Some(&b'"') {
                    let start = i;
                    i += 1;
                    loop {
                        match b.get(i) {
                            None => return Err(bad("unterminated key in JSON diff path")),
                            Some(b'\\') => i += 2,
                            Some(b'"') => {
                                i += 1;
                                break;
                            }
                            Some(_) => i += 1,
                        }
                    }
                    legs.push(Leg::Member(unescape(&path[start..i])?));
                } else {
                    let start = i;
                    while b.get(i).is_some_and(|&c| !matches!(c, b'.' | b'[' | b' ' | b'\t' | b'*')) {
                        i += 1;
                    }
                    if start == i {
                        return Err(bad("unsupported JSON diff path (wildcard or empty key)"));
                    }
                    legs.push(Leg::Member(path[start..i].to_owned()));
                }
            }
            Some(b'[') => {
                i += 1;
                let close = path[i..].find(']').ok_or(bad("unterminated [ in JSON diff path"))? + i;
                let inner = path[i..close].trim();
                i = close + 1;
                let number = |s: &str| s.trim().parse::<usize>().map_err(|_| bad("unsupported JSON diff path index"));
                let leg = match inner.strip_prefix("last") {
                    Some("") => Leg::Index { n: 0, from_end: true },
                    Some(rest) => {
                        let n = rest.trim_start().strip_prefix('-').ok_or(bad("unsupported JSON diff path index"))?;
                        Leg::Index { n: number(n)?, from_end: true }
                    }
                    None => Leg::Index { n: number(inner)?, from_end: false },
                };
                legs.push(leg);
            }
            Some(_) => return Err(bad("unsupported JSON diff path")),
        }
    }
}

/// The position `leg` names in an array of `len` elements (may be `len` or more: past the end),
/// `None` for `last - n` before the start.
fn index(leg_n: usize, from_end: bool, len: usize) -> Option<usize> {
    if from_end {
        len.checked_sub(1)?.checked_sub(leg_n)
    } else {
        Some(leg_n)
    }
}

/// The node at `legs`, if it exists. As in MySQL, `[0]` and `[last]` of a non-array are the
/// value itself.
fn locate<'n>(mut node: &'n mut Node, legs: &[Leg]) -> Result<&'n mut Node, Reason> {
    for leg in legs {
        node = match (leg, node) {
            (Leg::Member(key), Node::Object(members)) => {
                &mut members.iter_mut().find(|(k, _)| k == key).ok_or(bad("JSON diff path does not exist"))?.1
            }
            (&Leg::Index { n, from_end }, Node::Array(items)) => {
                let len = items.len();
                let at = index(n, from_end, len).filter(|&i| i < len).ok_or(bad("JSON diff path does not exist"))?;
                &mut items[at]
            }
            (&Leg::Index { n: 0, .. }, node) => node,
            _ => return Err(bad("JSON diff path does not exist")),
        };
    }
    Ok(node)
}

fn replace(doc: &mut Node, legs: &[Leg], value: Node) -> Result<(), Reason> {
    *locate(doc, legs)? = value;
    Ok(())
}

fn insert(doc: &mut Node, legs: &[Leg], value: Node) -> Result<(), Reason> {
    let (last, parent_legs) = legs.split_last().ok_or(bad("JSON diff inserts at the root"))?;
    let parent = locate(doc, parent_legs)?;
    match (last, parent) {
        (Leg::Member(key), Node::Object(members)) => {
            match members.iter_mut().find(|(k, _)| k == key) {
                Some(member) => member.1 = value,
                None => {
                    // MySQL's binary objects keep keys ordered by length, then bytes.
                    let order = |k: &str| (k.len(), k.as_bytes().to_vec());
                    let at = members.partition_point(|(k, _)| order(k) < order(key));
                    members.insert(at, (key.clone(), value));
                }
            }
            Ok(())
        }
        (&Leg::Index { n, from_end }, parent) => {
            if !matches!(parent, Node::Array(_)) {
                // A scalar or object parent is auto-wrapped into an array.
                let old = std::mem::replace(parent, Node::Array(Vec::new()));
                *parent = Node::Array(vec![old]);
            }
            let Node::Array(items) = parent else { unreachable!("made an array above") };
            let at = index(n, from_end, items.len()).unwrap_or(0).min(items.len());
            items.insert(at, value);
            Ok(())
        }
        _ => Err(bad("JSON diff inserts a member into a non-object")),
    }
}

fn remove(doc: &mut Node, legs: &[Leg]) -> Result<(), Reason> {
    let (last, parent_legs) = legs.split_last().ok_or(bad("JSON diff removes the root"))?;
    match (last, locate(doc, parent_legs)?) {
        (Leg::Member(key), Node::Object(members)) => {
            let at = members.iter().position(|(k, _)| k == key).ok_or(bad("JSON diff path does not exist"))?;
            members.remove(at);
            Ok(())
        }
        (&Leg::Index { n, from_end }, Node::Array(items)) => {
            let len = items.len();
            let at = index(n, from_end, len).filter(|&i| i < len).ok_or(bad("JSON diff path does not exist"))?;
            items.remove(at);
            Ok(())
        }
        _ => Err(bad("JSON diff path does not exist")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binary JSON of a small scalar or string, enough for these tests.
    fn bin_int(v: i16) -> Vec<u8> {
        let mut b = vec![0x05];
        b.extend(v.to_le_bytes());
        b
    }

    fn bin_str(s: &str) -> Vec<u8> {
        let mut b = vec![0x0C, s.len() as u8];
        b.extend(s.as_bytes());
        b
    }

    fn diff(op: u8, path: &str, value: Option<Vec<u8>>) -> Vec<u8> {
        let mut out = vec![op, path.len() as u8];
        out.extend(path.as_bytes());
        if let Some(v) = value {
            out.push(v.len() as u8);
            out.extend(v);
        }
        out
    }

    fn run(base: &str, diffs: &[Vec<u8>]) -> Result<String, Reason> {
        apply(base, &diffs.concat())
    }

    #[test]
    fn replace_insert_remove() {
        let base = r#"{"a":[1,2,{"b":"x"}],"c":1.5}"#;
        assert_eq!(
            run(base, &[diff(REPLACE, "$.a[2].b", Some(bin_str("yy"))), diff(INSERT, "$.d", Some(vec![0x04, 1]))]).unwrap(),
            r#"{"a":[1,2,{"b":"yy"}],"c":1.5,"d":true}"#
        );
        assert_eq!(run(base, &[diff(REMOVE, "$.c", None)]).unwrap(), r#"{"a":[1,2,{"b":"x"}]}"#);
        assert_eq!(run(base, &[diff(REMOVE, "$.a[0]", None)]).unwrap(), r#"{"a":[2,{"b":"x"}],"c":1.5}"#);
        assert_eq!(run(base, &[diff(REPLACE, "$", Some(bin_int(7)))]).unwrap(), "7");
    }

    #[test]
    fn inserted_keys_take_mysqls_order() {
        // Length first, then bytes: "b" < "aa" < "ab" < "aaa".
        let base = r#"{"b":1,"ab":2}"#;
        let got = run(base, &[diff(INSERT, "$.aaa", Some(bin_int(3))), diff(INSERT, "$.aa", Some(bin_int(4)))]).unwrap();
        assert_eq!(got, r#"{"b":1,"aa":4,"ab":2,"aaa":3}"#);
        let got = run("{}", &[diff(INSERT, r#"$."a b\"c""#, Some(bin_int(1)))]).unwrap();
        assert_eq!(got, r#"{"a b\"c":1}"#);
    }

    #[test]
    fn array_positions() {
        let base = "[1,2,3]";
        assert_eq!(run(base, &[diff(INSERT, "$[1]", Some(bin_int(9)))]).unwrap(), "[1,9,2,3]");
        assert_eq!(run(base, &[diff(INSERT, "$[10]", Some(bin_int(9)))]).unwrap(), "[1,2,3,9]");
        assert_eq!(run(base, &[diff(REPLACE, "$[last]", Some(bin_int(9)))]).unwrap(), "[1,2,9]");
        assert_eq!(run(base, &[diff(REPLACE, "$[last-2]", Some(bin_int(9)))]).unwrap(), "[9,2,3]");
        assert_eq!(run(base, &[diff(REMOVE, "$[last]", None)]).unwrap(), "[1,2]");
        // Auto-wrapping: [0] of a scalar is the scalar; inserting at [1] wraps it.
        assert_eq!(run("5", &[diff(REPLACE, "$[0]", Some(bin_int(6)))]).unwrap(), "6");
        assert_eq!(run("5", &[diff(INSERT, "$[1]", Some(bin_int(6)))]).unwrap(), "[5,6]");
    }

    #[test]
    fn errors_instead_of_guesses() {
        let base = r#"{"a":[1]}"#;
        for d in [
            diff(REPLACE, "$.missing", Some(bin_int(1))),
            diff(REMOVE, "$.a[5]", None),
            diff(REMOVE, "$[last-3]", None),
            diff(INSERT, "$.a.b", Some(bin_int(1))),
            diff(REPLACE, "$.*", Some(bin_int(1))),
            diff(REPLACE, "$**.a", Some(bin_int(1))),
            diff(REPLACE, "$[1 to 2]", Some(bin_int(1))),
            diff(REPLACE, "a", Some(bin_int(1))),
            diff(3, "$.a", None),
            diff(REMOVE, "$", None),
        ] {
            assert!(apply(base, &d).is_err(), "{d:?}");
        }
        // Truncated anywhere.
        let good = diff(REPLACE, "$.a", Some(bin_int(1)));
        for cut in 1..good.len() {
            assert!(apply(base, &good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(apply("{", &[]).is_err());
        assert!(apply("[1,]", &[]).is_err());
    }

    #[test]
    fn text_survives_parsing() {
        for text in [r#"{"é\n\"":"\u0001\\","x":[-0.0,1e15,null,true,false,""]}"#, "[]", "{}", "\"s\"", "-12.50"] {
            assert_eq!(apply(text, &[]).unwrap(), text);
        }
        assert_eq!(apply(r#" { "a" : [ 1 , 2 ] } "#, &[]).unwrap(), r#"{"a":[1,2]}"#);
    }

    #[test]
    fn long_packed_lengths() {
        let value = bin_str(&"v".repeat(100));
        let mut big = vec![REPLACE, 3];
        big.extend(b"$.a");
        big.push(252);
        big.extend((value.len() as u16).to_le_bytes());
        big.extend(&value);
        assert_eq!(apply(r#"{"a":0}"#, &big).unwrap(), format!("{{\"a\":\"{}\"}}", "v".repeat(100)));
    }
}
