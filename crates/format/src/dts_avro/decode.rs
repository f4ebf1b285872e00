//! Reading DTS Avro records back, for people: [`decode_to_json`] turns the binary encoding of
//! one `Record` into JSON meant to be looked at (`sluice tail`, demos), not into a lossless
//! model.
//!
//! The reader is hand-written against the fixed DTS schema and checks everything the schema
//! says: varints no longer than their type allows and within its range, lengths and counts that
//! fit the input, union and enum indexes in range, strings that are UTF-8, and no bytes after the
//! record. Any input, however damaged, gives either a value or a [`DecodeError`] naming the byte
//! offset, the field and what is wrong; it never panics.
//!
//! The JSON object has the record's fields in schema order, and values rendered for reading:
//!
//! * enums by their symbol names, `tags` as an object, `fields` as `[{name, dataTypeNumber}]`;
//! * images as null, a string, or an array of values, each value:
//!   - `Integer` as a JSON number when its text is the exact decimal form of an `i64` or a `u64`,
//!     else its text; `Decimal` as its text; `Float` as a number (NaN and infinities as text);
//!   - `Character` as text (invalid UTF-8 replaced), or `"0x…"` hex when its charset is `binary`;
//!   - `Timestamp` as `{"timestamp": seconds, "micros": n}` (DTS names the field `millis`, but
//!     it holds microseconds);
//!   - `DateTime` as text built from its parts: `2024-02-29 23:59:58.123000`, `2024-01-31`,
//!     `-01:02:03.500000`, `2024`; `TimestampWithTimeZone` the same followed by the zone;
//!   - `BinaryObject` as `{"type", "value"}`, the value text for `TEXT` and hex otherwise;
//!     `TextObject` as its text; geometries as `{"type", "wkb": "0x…"}` or `{"type", "wkt"}`;
//!   - `EmptyObject.NONE` (a column missing from the image) as `"<none>"`, and `NULL` as
//!     `"<null>"`; SQL NULL as null;
//! * `bornTimestamp` is left out when the input ends before it (older writers).

use std::fmt::Write as _;

use serde_json::{Map, Number, Value as Json};

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DTS Avro record, byte {offset} ({field}): {kind}")]
pub struct DecodeError {
    /// Offset into the input of the item that could not be read (of the offending byte for
    /// invalid UTF-8).
    pub offset: usize,
    /// Where in the record, e.g. `afterImages[3].Character.charset`.
    pub field: String,
    pub kind: DecodeErrorKind,
}

/// What was wrong at [`DecodeError::offset`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ends inside an item, or an array or map claims more items than there are
    /// bytes left.
    #[error("truncated: needs at least {needed} bytes from here, {available} left")]
    Truncated { needed: u64, available: usize },
    /// A varint longer than its type allows (5 bytes for an int, 10 for a long).
    #[error("varint longer than {max_len} bytes")]
    VarintTooLong { max_len: usize },
    /// An `int` outside the 32-bit range.
    #[error("{value} does not fit a 32-bit int")]
    IntOutOfRange { value: i64 },
    #[error("negative length {length}")]
    NegativeLength { length: i64 },
    #[error("union index {index} out of range (the union has {branches} branches)")]
    BadUnionIndex { index: i32, branches: usize },
    #[error("ordinal {ordinal} out of range ({name} has {symbols} symbols)")]
    BadEnumOrdinal {
        name: &'static str,
        ordinal: i32,
        symbols: usize,
    },
    #[error("invalid UTF-8 in a string")]
    InvalidUtf8,
    #[error("{count} bytes after the end of the record")]
    TrailingBytes { count: usize },
}

/// Decodes the binary encoding of one DTS `Record` that must take up all of `bytes` into JSON
/// for people to read (see [the module](self) for how values are rendered).
pub fn decode_to_json(bytes: &[u8]) -> Result<Json, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    let mut record = Map::new();
    let mut put = |name: &'static str, value: Result<Json, DecodeError>| {
        record.insert(name.into(), value.map_err(|e| e.within(name))?);
        Ok::<_, DecodeError>(())
    };
    put("version", r.int().map(Json::from))?;
    put("id", r.long().map(Json::from))?;
    put("sourceTimestamp", r.long().map(Json::from))?;
    put("sourcePosition", r.string().map(Json::from))?;
    put("safeSourcePosition", r.string().map(Json::from))?;
    put("sourceTxid", r.string().map(Json::from))?;
    put("source", source(&mut r))?;
    put("operation", r.symbol(&OPERATION).map(Json::from))?;
    put("objectName", nullable_string(&mut r))?;
    put("processTimestamps", process_timestamps(&mut r))?;
    put("tags", tags(&mut r))?;
    put("fields", fields(&mut r))?;
    put("beforeImages", image(&mut r))?;
    put("afterImages", image(&mut r))?;
    if !r.rest().is_empty() {
        put("bornTimestamp", r.long().map(Json::from))?;
    }
    match r.rest().len() {
        0 => Ok(Json::Object(record)),
        count => Err(r.error(r.pos, DecodeErrorKind::TrailingBytes { count })),
    }
}

/// An enum of the schema: its name (for errors) and symbols.
struct Enum {
    name: &'static str,
    symbols: &'static [&'static str],
}

const SOURCE_TYPE: Enum = Enum {
    name: "SourceType",
    symbols: &[
        "MySQL",
        "Oracle",
        "SQLServer",
        "PostgreSQL",
        "MongoDB",
        "Redis",
        "DB2",
        "PPAS",
        "DRDS",
        "HBASE",
        "HDFS",
        "FILE",
        "OTHER",
    ],
};

const OPERATION: Enum = Enum {
    name: "Operation",
    symbols: &[
        "INSERT",
        "UPDATE",
        "DELETE",
        "DDL",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "ABORT",
        "HEARTBEAT",
        "CHECKPOINT",
        "COMMAND",
        "FILL",
        "FINISH",
        "CONTROL",
        "RDB",
        "NOOP",
        "INIT",
    ],
};

const EMPTY_OBJECT: Enum = Enum {
    name: "EmptyObject",
    symbols: &["NULL", "NONE"],
};

/// Names of the members of the image value union, by branch index.
const VALUE_BRANCHES: [&str; 13] = [
    "null",
    "Integer",
    "Character",
    "Decimal",
    "Float",
    "Timestamp",
    "DateTime",
    "TimestampWithTimeZone",
    "BinaryGeometry",
    "TextGeometry",
    "BinaryObject",
    "TextObject",
    "EmptyObject",
];

fn source(r: &mut Reader<'_>) -> Result<Json, DecodeError> {
    let mut source = Map::new();
    let source_type = r.symbol(&SOURCE_TYPE).map_err(|e| e.within("sourceType"))?;
    source.insert("sourceType".into(), source_type.into());
    let version = r.string().map_err(|e| e.within("version"))?;
    source.insert("version".into(), version.into());
    Ok(Json::Object(source))
}

/// `[null, string]`.
fn nullable_string(r: &mut Reader<'_>) -> Result<Json, DecodeError> {
    Ok(match r.branch(2)? {
        0 => Json::Null,
        _ => r.string()?.into(),
    })
}

/// `[null, array<long>]`.
fn process_timestamps(r: &mut Reader<'_>) -> Result<Json, DecodeError> {
    if r.branch(2)? == 0 {
        return Ok(Json::Null);
    }
    let mut items = Vec::new();
    r.blocks(|r, i| {
        items.push(r.long().map_err(|e| e.at(i))?.into());
        Ok(())
    })?;
    Ok(Json::Array(items))
}

/// `map<string>`, in wire order (a repeated key keeps its first place and its last value).
fn tags(r: &mut Reader<'_>) -> Result<Json, DecodeError> {
    let mut tags = Map::new();
    r.blocks(|r, _| {
        let key = r.string().map_err(|e| e.within("key"))?;
        let value = r.string().map_err(|e| e.within(&key))?;
        tags.insert(key, value.into());
        Ok(())
    })?;
    Ok(Json::Object(tags))
}

/// `[null, string, array<Field>]`.
fn fields(r: &mut Reader<'_>) -> Result<Json, DecodeError> {
    match r.branch(3)? {
        0 => Ok(Json::Null),
        1 => Ok(r.string()?.into()),
        _ => {
            let mut fields = Vec::new();
            r.blocks(|r, i| {
                let name = r.string().map_err(|e| e.within("name").at(i))?;
                let number = r.int().map_err(|e| e.within("dataTypeNumber").at(i))?;
                let mut field = Map::new();
                field.insert("name".into(), name.into());
                field.insert("dataTypeNumber".into(), number.into());
                fields.push(Json::Object(field));
                Ok(())
            })?;
            Ok(Json::Array(fields))
        }
    }
}

/// `[null, string, array<VALUE>]`.
fn image(r: &mut Reader<'_>) -> Result<Json, DecodeError> {
    match r.branch(3)? {
        0 => Ok(Json::Null),
        1 => Ok(r.string()?.into()),
        _ => {
            let mut values = Vec::new();
            r.blocks(|r, i| {
                values.push(value(r).map_err(|e| e.at(i))?);
                Ok(())
            })?;
            Ok(Json::Array(values))
        }
    }
}

/// One member of the value union.
fn value(r: &mut Reader<'_>) -> Result<Json, DecodeError> {
    let branch = r.branch(VALUE_BRANCHES.len())?;
    let member = VALUE_BRANCHES[branch];
    let within = |e: DecodeError| e.within(member);
    let value = match branch {
        0 => Json::Null,
        1 => {
            let _precision = r.int().map_err(|e| within(e.within("precision")))?;
            let text = r.string().map_err(|e| within(e.within("value")))?;
            integer(text)
        }
        2 => {
            let charset = r.string().map_err(|e| within(e.within("charset")))?;
            let bytes = r.bytes().map_err(|e| within(e.within("value")))?;
            if charset.eq_ignore_ascii_case("binary") {
                hex(bytes).into()
            } else {
                String::from_utf8_lossy(bytes).into()
            }
        }
        3 => {
            let text = r.string().map_err(|e| within(e.within("value")))?;
            r.int().map_err(|e| within(e.within("precision")))?;
            r.int().map_err(|e| within(e.within("scale")))?;
            text.into()
        }
        4 => {
            let value = r.double().map_err(|e| within(e.within("value")))?;
            r.int().map_err(|e| within(e.within("precision")))?;
            r.int().map_err(|e| within(e.within("scale")))?;
            Number::from_f64(value).map_or_else(|| value.to_string().into(), Json::Number)
        }
        5 => {
            let secs = r.long().map_err(|e| within(e.within("timestamp")))?;
            let micros = r.int().map_err(|e| within(e.within("millis")))?;
            let mut timestamp = Map::new();
            timestamp.insert("timestamp".into(), secs.into());
            timestamp.insert("micros".into(), micros.into());
            Json::Object(timestamp)
        }
        6 => datetime(r).map_err(within)?.into(),
        7 => {
            let mut text = datetime(r).map_err(|e| within(e.within("value")))?;
            let zone = r.string().map_err(|e| within(e.within("timezone")))?;
            if !zone.is_empty() {
                text.push(' ');
                text.push_str(&zone);
            }
            text.into()
        }
        8 | 10 => {
            let kind = r.string().map_err(|e| within(e.within("type")))?;
            let bytes = r.bytes().map_err(|e| within(e.within("value")))?;
            let (name, value) = match branch {
                8 => ("wkb", hex(bytes)),
                _ if kind.eq_ignore_ascii_case("TEXT") => {
                    ("value", String::from_utf8_lossy(bytes).into_owned())
                }
                _ => ("value", hex(bytes)),
            };
            let mut object = Map::new();
            object.insert("type".into(), kind.into());
            object.insert(name.into(), value.into());
            Json::Object(object)
        }
        9 => {
            let kind = r.string().map_err(|e| within(e.within("type")))?;
            let text = r.string().map_err(|e| within(e.within("value")))?;
            let mut object = Map::new();
            object.insert("type".into(), kind.into());
            object.insert("wkt".into(), text.into());
            Json::Object(object)
        }
        11 => {
            r.string().map_err(|e| within(e.within("type")))?;
            r.string().map_err(within)?.into()
        }
        _ => match r.symbol(&EMPTY_OBJECT).map_err(within)? {
            "NONE" => "<none>".into(),
            _ => "<null>".into(),
        },
    };
    Ok(value)
}

/// `Integer.value`: a number when the text is exactly how that number is written.
fn integer(text: String) -> Json {
    if let Ok(v) = text.parse::<i64>() {
        if itoa::Buffer::new().format(v) == text {
            return v.into();
        }
    } else if let Ok(v) = text.parse::<u64>() {
        if itoa::Buffer::new().format(v) == text {
            return v.into();
        }
    }
    text.into()
}

/// A `DateTime` as text made of the parts it has: `YYYY-MM-DD`, then `HH:MM:SS.ffffff`
/// (separated by a space), with one leading `-` when the time parts are negative.
fn datetime(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    const NAMES: [&str; 7] = ["year", "month", "day", "hour", "minute", "second", "millis"];
    let mut parts = [None; 7];
    for (part, name) in parts.iter_mut().zip(NAMES) {
        *part = match r.branch(2).map_err(|e| e.within(name))? {
            0 => None,
            _ => Some(i64::from(r.int().map_err(|e| e.within(name))?)),
        };
    }
    let [year, month, day, hour, minute, second, micros] = parts;

    let mut text = String::new();
    for (i, (part, width)) in [(year, 4), (month, 2), (day, 2)].into_iter().enumerate() {
        if let Some(v) = part {
            if i > 0 && !text.is_empty() {
                text.push('-');
            }
            let _ = write!(text, "{v:0width$}");
        }
    }
    let time = [hour, minute, second];
    if time.iter().chain([&micros]).any(Option::is_some) {
        if !text.is_empty() {
            text.push(' ');
        }
        if time.iter().chain([&micros]).flatten().any(|&v| v < 0) {
            text.push('-');
        }
        let mut first = true;
        for v in time.into_iter().flatten() {
            if !first {
                text.push(':');
            }
            first = false;
            let _ = write!(text, "{:02}", v.unsigned_abs());
        }
        if let Some(v) = micros {
            let _ = write!(text, ".{:06}", v.unsigned_abs());
        }
    }
    Ok(text)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(2 + 2 * bytes.len());
    text.push_str("0x");
    for &b in bytes {
        text.push(DIGITS[usize::from(b >> 4)].into());
        text.push(DIGITS[usize::from(b & 15)].into());
    }
    text
}

/// The input and how far it has been read.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos..]
    }

    fn error(&self, offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            offset,
            field: String::new(),
            kind,
        }
    }

    fn truncated(&self, start: usize, needed: u64) -> DecodeError {
        let available = self.bytes.len() - start;
        self.error(start, DecodeErrorKind::Truncated { needed, available })
    }

    /// A zigzag varint of at most `max_len` bytes; the position is left after it.
    fn varint(&mut self, max_len: usize) -> Result<i64, DecodeError> {
        let start = self.pos;
        let mut raw: u64 = 0;
        for (i, &byte) in self.rest().iter().take(max_len).enumerate() {
            raw |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                // The 10th byte of a long holds only bit 63.
                if i == 9 && byte > 1 {
                    return Err(self.error(start, DecodeErrorKind::VarintTooLong { max_len }));
                }
                self.pos = start + i + 1;
                return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        let read = self.rest().len().min(max_len);
        if read < max_len {
            Err(self.truncated(start, read as u64 + 1))
        } else {
            Err(self.error(start, DecodeErrorKind::VarintTooLong { max_len }))
        }
    }

    fn long(&mut self) -> Result<i64, DecodeError> {
        self.varint(10)
    }

    fn int(&mut self) -> Result<i32, DecodeError> {
        let start = self.pos;
        let value = self.varint(5)?;
        i32::try_from(value)
            .map_err(|_| self.error(start, DecodeErrorKind::IntOutOfRange { value }))
    }

    fn double(&mut self) -> Result<f64, DecodeError> {
        let Some((&bytes, _)) = self.rest().split_first_chunk::<8>() else {
            return Err(self.truncated(self.pos, 8));
        };
        self.pos += 8;
        Ok(f64::from_le_bytes(bytes))
    }

    /// Avro `bytes`: a length, then that many bytes.
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let length = self.long()?;
        let Ok(length) = u64::try_from(length) else {
            return Err(self.error(start, DecodeErrorKind::NegativeLength { length }));
        };
        let rest = self.rest();
        match usize::try_from(length).ok().filter(|&n| n <= rest.len()) {
            Some(n) => {
                self.pos += n;
                Ok(&rest[..n])
            }
            None => Err(self.truncated(start, (self.pos - start) as u64 + length)),
        }
    }

    /// Avro `string`: `bytes` that must be UTF-8.
    fn string(&mut self) -> Result<String, DecodeError> {
        let bytes = self.bytes()?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => {
                let offset = self.pos - bytes.len() + e.valid_up_to();
                Err(self.error(offset, DecodeErrorKind::InvalidUtf8))
            }
        }
    }

    /// A union branch index, checked against the number of branches.
    fn branch(&mut self, branches: usize) -> Result<usize, DecodeError> {
        let start = self.pos;
        let index = self.int()?;
        match usize::try_from(index).ok().filter(|&i| i < branches) {
            Some(i) => Ok(i),
            None => Err(self.error(start, DecodeErrorKind::BadUnionIndex { index, branches })),
        }
    }

    /// An enum's symbol, by its ordinal.
    fn symbol(&mut self, e: &Enum) -> Result<&'static str, DecodeError> {
        let start = self.pos;
        let ordinal = self.int()?;
        let symbol = usize::try_from(ordinal).ok().and_then(|i| e.symbols.get(i));
        match symbol {
            Some(symbol) => Ok(symbol),
            None => Err(self.error(
                start,
                DecodeErrorKind::BadEnumOrdinal {
                    name: e.name,
                    ordinal,
                    symbols: e.symbols.len(),
                },
            )),
        }
    }

    /// The items of an array or map: blocks of a count (negative: followed by the block's size
    /// in bytes) and that many items, ended by an empty block. `item` gets each item's index.
    fn blocks(
        &mut self,
        mut item: impl FnMut(&mut Self, usize) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let mut index = 0;
        loop {
            let start = self.pos;
            let count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                let size_at = self.pos;
                let size = self.long()?;
                if size < 0 {
                    return Err(
                        self.error(size_at, DecodeErrorKind::NegativeLength { length: size })
                    );
                }
            }
            // Every item of this schema takes at least one byte, so a count beyond the input is
            // known to be wrong before reading any item.
            let count = count.unsigned_abs();
            if count > self.rest().len() as u64 {
                return Err(self.truncated(start, (self.pos - start) as u64 + count));
            }
            for _ in 0..count {
                item(self, index)?;
                index += 1;
            }
        }
    }
}

impl DecodeError {
    /// Puts `name` in front of the field path.
    fn within(mut self, name: &str) -> Self {
        if !self.field.is_empty() && !self.field.starts_with('[') {
            self.field.insert(0, '.');
        }
        self.field.insert_str(0, name);
        self
    }

    /// Puts an item index in front of the field path.
    fn at(self, index: usize) -> Self {
        self.within(&format!("[{index}]"))
    }
}
