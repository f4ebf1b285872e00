//! MySQL binary JSON (`json_binary`) to compact JSON text.
//!
//! A document is one type byte followed by the value. Types: 0/1 small/large object, 2/3
//! small/large array, 4 literal (0 null, 1 true, 2 false), 5-10 int16, uint16, int32, uint32,
//! int64, uint64 (little-endian), 11 double (little-endian IEEE), 12 string (variable-length
//! length, then UTF-8), 15 opaque (MySQL field type byte, variable-length length, data).
//!
//! Objects and arrays start with element count and total byte size (u16 each when small, u32
//! when large). An object then has one key entry per member (key offset u16/u32, key length
//! u16), and both have one value entry per element (type byte, then u16/u32 holding either the
//! value's offset or, for literals and ints that fit, the value itself). Offsets count from the
//! start of the container (its element count). Variable-length lengths use 7 bits per byte, low
//! bits first, the high bit meaning "more bytes follow".
//!
//! Output follows MySQL's `JSON_EXTRACT`/`SELECT` text except for spacing (none here): members
//! in stored order, doubles laid out as MySQL does (see [`write_mysql_double`]), DECIMAL opaques as numbers,
//! DATE/TIME/DATETIME/TIMESTAMP opaques as strings with six fraction digits, strings stored as
//! VAR_STRING opaques as strings, any other opaque as `"base64:type<N>:<base64>"`.

use std::fmt::Write;

use crate::column_type as ct;
use crate::decimal::DecimalSpec;
use crate::error::Reason;

/// MySQL refuses documents nested deeper than 100; allow some slack, but bound the recursion.
const MAX_DEPTH: usize = 150;

const SMALL_OBJECT: u8 = 0x00;
const LARGE_OBJECT: u8 = 0x01;
const SMALL_ARRAY: u8 = 0x02;
const LARGE_ARRAY: u8 = 0x03;
const LITERAL: u8 = 0x04;
const INT16: u8 = 0x05;
const UINT16: u8 = 0x06;
const INT32: u8 = 0x07;
const UINT32: u8 = 0x08;
const INT64: u8 = 0x09;
const UINT64: u8 = 0x0A;
const DOUBLE: u8 = 0x0B;
const STRING: u8 = 0x0C;
const OPAQUE: u8 = 0x0F;

const LITERAL_NULL: u8 = 0x00;
const LITERAL_TRUE: u8 = 0x01;
const LITERAL_FALSE: u8 = 0x02;

fn bad(what: &'static str) -> Reason {
    Reason::InvalidValue(what)
}

/// Converts one binary JSON document to JSON text. An empty document is JSON `null` (MySQL
/// writes that for a NULL stored into a NOT NULL JSON column in non-strict mode).
pub(crate) fn binary_to_text(doc: &[u8]) -> Result<String, Reason> {
    let Some((&type_byte, body)) = doc.split_first() else {
        return Ok("null".to_owned());
    };
    let mut writer = Writer {
        out: String::with_capacity(doc.len() + doc.len() / 2 + 8),
        // Text is never much longer than the binary form unless offsets are shared (which MySQL
        // never writes): escaped control characters grow 6x. Bound the work of malformed input.
        limit: doc.len().saturating_mul(8).saturating_add(1024),
    };
    writer.value(type_byte, body, 0)?;
    Ok(writer.out)
}

struct Writer {
    out: String,
    limit: usize,
}

impl Writer {
    /// Writes the value of type `type_byte` whose bytes start at `data[0]` (`data` may run past
    /// the value's end).
    fn value(&mut self, type_byte: u8, data: &[u8], depth: usize) -> Result<(), Reason> {
        if self.out.len() > self.limit {
            return Err(bad("JSON text grows beyond any valid document (shared offsets?)"));
        }
        match type_byte {
            SMALL_OBJECT | LARGE_OBJECT | SMALL_ARRAY | LARGE_ARRAY => {
                if depth >= MAX_DEPTH {
                    return Err(bad("JSON nested too deep"));
                }
                let large = matches!(type_byte, LARGE_OBJECT | LARGE_ARRAY);
                let object = matches!(type_byte, SMALL_OBJECT | LARGE_OBJECT);
                self.container(data, large, object, depth + 1)
            }
            LITERAL => self.literal(*data.first().ok_or(bad("JSON literal truncated"))?),
            INT16 => self.display(i16::from_le_bytes(le(data)?)),
            UINT16 => self.display(u16::from_le_bytes(le(data)?)),
            INT32 => self.display(i32::from_le_bytes(le(data)?)),
            UINT32 => self.display(u32::from_le_bytes(le(data)?)),
            INT64 => self.display(i64::from_le_bytes(le(data)?)),
            UINT64 => self.display(u64::from_le_bytes(le(data)?)),
            DOUBLE => self.double(f64::from_le_bytes(le(data)?)),
            STRING => {
                let (len, rest) = var_len(data)?;
                let bytes = rest.get(..len).ok_or(bad("JSON string truncated"))?;
                self.string(bytes)
            }
            OPAQUE => {
                let (&field_type, rest) = data.split_first().ok_or(bad("JSON opaque truncated"))?;
                let (len, rest) = var_len(rest)?;
                let bytes = rest.get(..len).ok_or(bad("JSON opaque truncated"))?;
                self.opaque(field_type, bytes)
            }
            _ => Err(bad("unknown JSON value type")),
        }
    }

    fn container(&mut self, data: &[u8], large: bool, object: bool, depth: usize) -> Result<(), Reason> {
        let width = if large { 4 } else { 2 };
        let count = read_uint(data, 0, width)?;
        let size = read_uint(data, width, width)?;
        let data = data.get(..size).ok_or(bad("JSON container larger than its document"))?;

        let key_entries = 2 * width;
        let key_entry_len = width + 2;
        let value_entry_len = 1 + width;
        let value_entries = if object {
            count.checked_mul(key_entry_len).and_then(|n| n.checked_add(key_entries))
        } else {
            Some(key_entries)
        };
        let header_end = value_entries
            .and_then(|start| Some((start, count.checked_mul(value_entry_len)?.checked_add(start)?)))
            .filter(|&(_, end)| end <= size)
            .ok_or(bad("JSON container header larger than the container"))?;
        let value_entries = header_end.0;

        self.out.push(if object { '{' } else { '[' });
        for i in 0..count {
            if i > 0 {
                self.out.push(',');
            }
            if object {
                let entry = key_entries + i * key_entry_len;
                let offset = read_uint(data, entry, width)?;
                let len = read_uint(data, entry + width, 2)?;
                let key = offset
                    .checked_add(len)
                    .and_then(|end| data.get(offset..end))
                    .ok_or(bad("JSON key outside its object"))?;
                self.string(key)?;
                self.out.push(':');
            }
            let entry = value_entries + i * value_entry_len;
            let (&type_byte, field) = data
                .get(entry..entry + value_entry_len)
                .and_then(<[u8]>::split_first)
                .ok_or(bad("JSON container truncated"))?;
            if is_inlined(type_byte, large) {
                self.value(type_byte, field, depth)?;
            } else {
                let offset = read_uint(field, 0, width)?;
                let value = data.get(offset..).filter(|v| !v.is_empty());
                self.value(type_byte, value.ok_or(bad("JSON value outside its container"))?, depth)?;
            }
        }
        self.out.push(if object { '}' } else { ']' });
        Ok(())
    }

    fn literal(&mut self, byte: u8) -> Result<(), Reason> {
        self.out.push_str(match byte {
            LITERAL_NULL => "null",
            LITERAL_TRUE => "true",
            LITERAL_FALSE => "false",
            _ => return Err(bad("unknown JSON literal")),
        });
        Ok(())
    }

    fn display(&mut self, value: impl std::fmt::Display) -> Result<(), Reason> {
        write!(self.out, "{value}").map_err(|_| bad("formatting"))
    }

    fn double(&mut self, value: f64) -> Result<(), Reason> {
        if !value.is_finite() {
            return Err(bad("JSON double is not finite"));
        }
        write_mysql_double(&mut self.out, value);
        Ok(())
    }

    fn string(&mut self, bytes: &[u8]) -> Result<(), Reason> {
        let text = std::str::from_utf8(bytes).map_err(|_| bad("JSON string is not UTF-8"))?;
        push_quoted(&mut self.out, text);
        Ok(())
    }

    fn opaque(&mut self, field_type: u8, data: &[u8]) -> Result<(), Reason> {
        match field_type {
            ct::NEWDECIMAL => {
                let (&[precision, scale], bin) =
                    data.split_first_chunk().ok_or(bad("JSON DECIMAL truncated"))?;
                let spec = DecimalSpec::new(precision, scale)?;
                let text = spec.decode(bin.get(..spec.binary_len()).ok_or(bad("JSON DECIMAL truncated"))?)?;
                self.out.push_str(&text);
                Ok(())
            }
            ct::DATE | ct::DATETIME | ct::TIMESTAMP | ct::TIME => {
                let packed = i64::from_le_bytes(le(data)?);
                self.out.push('"');
                if field_type == ct::TIME {
                    write_packed_time(&mut self.out, packed)?;
                } else {
                    write_packed_datetime(&mut self.out, packed, field_type == ct::DATE)?;
                }
                self.out.push('"');
                Ok(())
            }
            ct::VAR_STRING => self.string(data),
            _ => {
                write!(self.out, "\"base64:type{field_type}:").map_err(|_| bad("formatting"))?;
                push_base64(&mut self.out, data);
                self.out.push('"');
                Ok(())
            }
        }
    }
}

/// Whether a value entry of this type holds the value itself rather than an offset.
fn is_inlined(type_byte: u8, large: bool) -> bool {
    match type_byte {
        LITERAL | INT16 | UINT16 => true,
        INT32 | UINT32 => large,
        _ => false,
    }
}

fn le<const N: usize>(data: &[u8]) -> Result<[u8; N], Reason> {
    data.first_chunk().copied().ok_or(bad("JSON number truncated"))
}

/// A little-endian unsigned integer of `width` (2 or 4) bytes at `at`.
fn read_uint(data: &[u8], at: usize, width: usize) -> Result<usize, Reason> {
    let bytes = at
        .checked_add(width)
        .and_then(|end| data.get(at..end))
        .ok_or(bad("JSON container truncated"))?;
    Ok(bytes.iter().rev().fold(0, |acc, &b| acc << 8 | usize::from(b)))
}

/// A variable-length length (7 bits per byte, at most 5 bytes) and the bytes after it.
fn var_len(data: &[u8]) -> Result<(usize, &[u8]), Reason> {
    let mut len: u64 = 0;
    for (i, &byte) in data.iter().enumerate().take(5) {
        len |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let len = u32::try_from(len).map_err(|_| bad("JSON length too large"))?;
            return Ok((len as usize, &data[i + 1..]));
        }
    }
    Err(bad("JSON length truncated or too long"))
}

/// Appends `text` as a JSON string literal.
pub(crate) fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    let mut clean_from = 0;
    for (i, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0C => "\\f",
            0..=0x1F => "",
            _ => continue,
        };
        out.push_str(&text[clean_from..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        clean_from = i + 1;
    }
    out.push_str(&text[clean_from..]);
    out.push('"');
}

/// A double as MySQL prints it in JSON text (`my_gcvt` with the shortest round-trip digits, then
/// ".0" when the text has neither a point nor an exponent): plain notation when the decimal
/// exponent `e` of `d.ddd × 10^e` is in -15 < e < 15 (`0.00001`, `100000000000000.0`), else
/// `d[.ddd]e[-]x` (`1e15`, `1.5e-16`). `value` must be finite.
pub(crate) fn write_mysql_double(out: &mut String, value: f64) {
    // `{:e}` gives the shortest digits that read back as `value`: "-1.2345e-7", "0e0".
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push('-');
    }
    if value == 0.0 {
        out.push_str("0.0");
        return;
    }
    // The point sits after `decpt` digits (0.ddd × 10^decpt, as dtoa reports it).
    let decpt = exp + 1;
    if (-14..=15).contains(&decpt) {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
            out.push_str(&digits);
        } else {
            let decpt = decpt as usize;
            if digits.len() > decpt {
                out.push_str(&digits[..decpt]);
                out.push('.');
                out.push_str(&digits[decpt..]);
            } else {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', decpt - digits.len()));
                out.push_str(".0");
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{exp}");
    }
}

/// Standard base64 with padding and, like MySQL's `base64_encode`, a newline after every 76
/// output characters; the newline is written JSON-escaped.
fn push_base64(out: &mut String, data: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\\n");
        }
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k) & 0x3F) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

/// MySQL's packed TIME (`(h << 12 | m << 6 | s) << 24 | micros`, negated when negative) as
/// `[-]HH:MM:SS.ffffff`.
fn write_packed_time(out: &mut String, packed: i64) -> Result<(), Reason> {
    let abs = packed.unsigned_abs();
    let (hms, micros) = (abs >> 24, abs & 0xFF_FFFF);
    let (h, m, s) = (hms >> 12, (hms >> 6) & 0x3F, hms & 0x3F);
    if h > 838 || m > 59 || s > 59 || micros > 999_999 {
        return Err(bad("JSON TIME out of range"));
    }
    let sign = if packed < 0 { "-" } else { "" };
    write!(out, "{sign}{h:02}:{m:02}:{s:02}.{micros:06}").map_err(|_| bad("formatting"))
}

/// MySQL's packed DATETIME (`((year * 13 + month) << 5 | day) << 17 | h << 12 | m << 6 | s`,
/// shifted left 24 bits plus micros) as `YYYY-MM-DD[ HH:MM:SS.ffffff]`.
fn write_packed_datetime(out: &mut String, packed: i64, date_only: bool) -> Result<(), Reason> {
    let abs = packed.unsigned_abs();
    let (ymdhms, micros) = (abs >> 24, abs & 0xFF_FFFF);
    let (ymd, hms) = (ymdhms >> 17, ymdhms & 0x1_FFFF);
    let (ym, day) = (ymd >> 5, ymd & 0x1F);
    let (year, month) = (ym / 13, ym % 13);
    let (h, m, s) = (hms >> 12, (hms >> 6) & 0x3F, hms & 0x3F);
    if year > 9999 || h > 23 || m > 59 || s > 59 || micros > 999_999 {
        return Err(bad("JSON DATETIME out of range"));
    }
    let result = if date_only {
        write!(out, "{year:04}-{month:02}-{day:02}")
    } else {
        write!(out, "{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{micros:06}")
    };
    result.map_err(|_| bad("formatting"))
}
