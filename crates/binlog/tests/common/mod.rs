//! Test helpers: plans, one-column images, and encoders written from the wire formats (the
//! inverse of the decoder, so property tests can round-trip values).
#![allow(dead_code)]

use sluice_binlog::{build_plan, ColumnPlan, DecodeError, RowsReader};
use sluice_event::Value;

/// A plan from `(type, metadata, unsigned)` triples.
pub fn plan(columns: &[(u8, u16, bool)]) -> Vec<ColumnPlan> {
    let types: Vec<u8> = columns.iter().map(|c| c.0).collect();
    let metas: Vec<u16> = columns.iter().map(|c| c.1).collect();
    let unsigned: Vec<bool> = columns.iter().map(|c| c.2).collect();
    build_plan(&types, &metas, &unsigned).expect("valid test plan")
}

/// Decodes `value` as the only, present and non-null, column of an image.
pub fn decode(code: u8, meta: u16, unsigned: bool, value: &[u8]) -> Result<Value<'static>, DecodeError> {
    let plan = plan(&[(code, meta, unsigned)]);
    let mut data = vec![0x00]; // null bitmap: the one present column is not NULL
    data.extend_from_slice(value);
    let mut reader = RowsReader::new(&plan, &data);
    let mut out = Vec::new();
    assert!(reader.read_image(&[1], &mut out)?);
    assert!(reader.is_done(), "value of type {code} left {} bytes", data.len() - reader.position());
    Ok(out.pop().expect("one value").into_owned())
}

pub fn ok(code: u8, meta: u16, unsigned: bool, value: &[u8]) -> Value<'static> {
    decode(code, meta, unsigned, value).unwrap_or_else(|e| panic!("{e}"))
}

// ---- Encoders ----

/// MySQL binary DECIMAL of the text `digits` (`[-]int[.frac]`, fraction exactly `scale` digits).
pub fn encode_decimal(text: &str, precision: usize, scale: usize) -> Vec<u8> {
    const DIGIT_BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    assert_eq!(frac.len(), scale);
    let int_digits = precision - scale;
    let int = int.trim_start_matches('0');
    let int = format!("{int:0>int_digits$}");
    assert_eq!(int.len(), int_digits, "integer part too long");
    let mut out = Vec::new();
    let mut push_group = |digits: &str| {
        let value: u32 = if digits.is_empty() { 0 } else { digits.parse().unwrap() };
        let len = DIGIT_BYTES[digits.len()];
        out.extend_from_slice(&value.to_be_bytes()[4 - len..]);
    };
    let lead = int_digits % 9;
    push_group(&int[..lead]);
    for chunk in int.as_bytes()[lead..].chunks(9) {
        push_group(std::str::from_utf8(chunk).unwrap());
    }
    for chunk in frac.as_bytes().chunks(9) {
        push_group(std::str::from_utf8(chunk).unwrap());
    }
    if let Some(first) = out.first_mut() {
        *first ^= 0x80;
    }
    if negative {
        out.iter_mut().for_each(|b| *b = !*b);
    }
    out
}

/// The fraction bytes of TIMESTAMP2 / DATETIME2 for `micros` at `fsp` (micros must fit fsp).
pub fn encode_fraction(micros: u32, fsp: u8) -> Vec<u8> {
    match fsp {
        0 => vec![],
        1 | 2 => vec![(micros / 10_000) as u8],
        3 | 4 => ((micros / 100) as u16).to_be_bytes().to_vec(),
        _ => micros.to_be_bytes()[1..].to_vec(),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn encode_datetime2(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, micros: u32, fsp: u8) -> Vec<u8> {
    let ym = u64::from(y) * 13 + u64::from(mo);
    let packed = (ym << 22 | u64::from(d) << 17 | u64::from(h) << 12 | u64::from(mi) << 6 | u64::from(s))
        + 0x80_0000_0000;
    let mut out = packed.to_be_bytes()[3..].to_vec();
    out.extend(encode_fraction(micros, fsp));
    out
}

/// TIME2 as MySQL's `my_time_packed_to_binary` writes it: the integer part is the packed value
/// shifted right (floor), the fraction the truncated remainder, so negative fractions come out
/// as two's complements.
pub fn encode_time2(negative: bool, h: u16, m: u8, s: u8, micros: u32, fsp: u8) -> Vec<u8> {
    let hms = i64::from(h) << 12 | i64::from(m) << 6 | i64::from(s);
    let mut packed = (hms << 24) + i64::from(micros);
    if negative {
        packed = -packed;
    }
    let int_part = ((packed >> 24) + 0x80_0000) as u32;
    let frac = packed % (1 << 24); // truncated remainder, sign of `packed`
    let mut out = int_part.to_be_bytes()[1..].to_vec();
    match fsp {
        0 => {}
        1 | 2 => out.push((frac / 10_000) as i8 as u8),
        3 | 4 => out.extend(((frac / 100) as i16).to_be_bytes()),
        _ => out = ((packed + 0x8000_0000_0000) as u64).to_be_bytes()[2..].to_vec(),
    }
    out
}

/// MySQL binary JSON of a serde_json value: type byte + value. Objects and arrays use the large
/// format when `large` is set (or when the small one cannot hold them).
pub fn encode_json(value: &serde_json::Value, large: bool) -> Vec<u8> {
    let (type_byte, body) = json_value(value, large);
    let mut out = vec![type_byte];
    out.extend(body);
    out
}

fn var_len(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7F) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Inlined value for a value entry, if the type allows it.
fn json_inline(value: &serde_json::Value, large: bool) -> Option<(u8, u32)> {
    use serde_json::Value as J;
    match value {
        J::Null => Some((0x04, 0)),
        J::Bool(true) => Some((0x04, 1)),
        J::Bool(false) => Some((0x04, 2)),
        J::Number(n) => {
            let i = n.as_i64()?;
            if let Ok(v) = i16::try_from(i) {
                Some((0x05, u32::from(v as u16)))
            } else if let (true, Ok(v)) = (large, i32::try_from(i)) {
                Some((0x07, v as u32))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn json_value(value: &serde_json::Value, large: bool) -> (u8, Vec<u8>) {
    use serde_json::Value as J;
    match value {
        J::Null => (0x04, vec![0]),
        J::Bool(b) => (0x04, vec![if *b { 1 } else { 2 }]),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                if let Ok(v) = i16::try_from(i) {
                    (0x05, v.to_le_bytes().to_vec())
                } else if let Ok(v) = i32::try_from(i) {
                    (0x07, v.to_le_bytes().to_vec())
                } else {
                    (0x09, i.to_le_bytes().to_vec())
                }
            } else if let Some(u) = n.as_u64() {
                (0x0A, u.to_le_bytes().to_vec())
            } else {
                (0x0B, n.as_f64().unwrap().to_le_bytes().to_vec())
            }
        }
        J::String(s) => {
            let mut out = Vec::new();
            var_len(s.len(), &mut out);
            out.extend_from_slice(s.as_bytes());
            (0x0C, out)
        }
        J::Array(items) => {
            let refs: Vec<(Option<&str>, &J)> = items.iter().map(|v| (None, v)).collect();
            json_container(&refs, false, large)
        }
        J::Object(map) => {
            let refs: Vec<(Option<&str>, &J)> = map.iter().map(|(k, v)| (Some(k.as_str()), v)).collect();
            json_container(&refs, true, large)
        }
    }
}

fn json_container(items: &[(Option<&str>, &serde_json::Value)], object: bool, large: bool) -> (u8, Vec<u8>) {
    let width = if large { 4 } else { 2 };
    let n = items.len();
    let key_entries = 2 * width;
    let value_entries = key_entries + if object { n * (width + 2) } else { 0 };
    let header = value_entries + n * (1 + width);
    let mut buf = vec![0u8; header];
    let put = |buf: &mut Vec<u8>, at: usize, v: usize, w: usize| {
        buf[at..at + w].copy_from_slice(&(v as u32).to_le_bytes()[..w]);
    };
    put(&mut buf, 0, n, width);
    if object {
        for (i, (key, _)) in items.iter().enumerate() {
            let key = key.unwrap();
            let at = key_entries + i * (width + 2);
            let offset = buf.len();
            put(&mut buf, at, offset, width);
            put(&mut buf, at + width, key.len(), 2);
            buf.extend_from_slice(key.as_bytes());
        }
    }
    for (i, (_, value)) in items.iter().enumerate() {
        let at = value_entries + i * (1 + width);
        if let Some((type_byte, inline)) = json_inline(value, large) {
            buf[at] = type_byte;
            put(&mut buf, at + 1, inline as usize, width);
        } else {
            let (type_byte, body) = json_value(value, large);
            buf[at] = type_byte;
            let offset = buf.len();
            put(&mut buf, at + 1, offset, width);
            buf.extend(body);
        }
    }
    if !large && buf.len() > usize::from(u16::MAX) {
        // Does not fit the small format: MySQL switches to the large one.
        return json_container(items, object, true);
    }
    let size = buf.len();
    put(&mut buf, width, size, width);
    let type_byte = match (object, large) {
        (true, false) => 0x00,
        (true, true) => 0x01,
        (false, false) => 0x02,
        (false, true) => 0x03,
    };
    (type_byte, buf)
}

/// A JSON column value: 4-byte length (metadata 4) + binary JSON.
pub fn json_column(doc: &[u8]) -> Vec<u8> {
    let mut out = (doc.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(doc);
    out
}
