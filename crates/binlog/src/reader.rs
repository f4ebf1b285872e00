//! Row images: the null bitmap over present columns, then each non-null present value.

use std::borrow::Cow;

use sluice_event::Value;

use crate::error::{DecodeError, Reason};
use crate::json;
use crate::plan::{ColumnPlan, Kind, MariadbType};

/// Walks the row images of one rows event.
///
/// Built per rows event from the table's plan and the event's rows part; each
/// [`read_image`](Self::read_image) decodes one image and moves past it.
#[derive(Debug, Clone)]
pub struct RowsReader<'a> {
    plan: &'a [ColumnPlan],
    data: &'a [u8],
    pos: usize,
}

impl<'a> RowsReader<'a> {
    /// `plan` = the table's plan from [`build_plan`](crate::build_plan); `rows_data` = the rows
    /// part of a WRITE/UPDATE/DELETE rows event (everything after the columns-present bitmaps,
    /// without the checksum).
    pub fn new(plan: &'a [ColumnPlan], rows_data: &'a [u8]) -> Self {
        Self { plan, data: rows_data, pos: 0 }
    }

    /// Byte offset of the next image inside `rows_data`.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether every byte of `rows_data` has been consumed.
    pub fn is_done(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Decodes one row image into `out`, which is cleared first and then holds one value per
    /// table column: [`Value::Absent`] for columns not in `present`, [`Value::Null`] for NULLs.
    ///
    /// `present` is the columns-present bitmap of this image (bit per column, least significant
    /// bit first), as the event gives it. An UPDATE row is two images in a row: call this once
    /// with the before bitmap, then once with the after bitmap.
    ///
    /// Returns `Ok(false)` (and leaves `out` empty) at the end of the data. On error `out` is
    /// left empty and the reader does not advance, so calling again returns the same error.
    ///
    /// Not for the after image of a PARTIAL_UPDATE_ROWS event (MySQL, type 39), which starts with
    /// a value-options field and may hold JSON diffs: see [`read_partial_update`](Self::read_partial_update).
    pub fn read_image(
        &mut self,
        present: &[u8],
        out: &mut Vec<Value<'a>>,
    ) -> Result<bool, DecodeError> {
        self.read_image_with(present, out, None)
    }

    /// [`read_image`](Self::read_image); with `partial`, the after image of a PARTIAL_UPDATE_ROWS
    /// row, whose JSON columns flagged in `partial.flags` hold diffs against `partial.before`.
    fn read_image_with(
        &mut self,
        present: &[u8],
        out: &mut Vec<Value<'a>>,
        partial: Option<Partial<'_, 'a>>,
    ) -> Result<bool, DecodeError> {
        out.clear();
        if self.is_done() {
            return Ok(false);
        }
        let columns = self.plan.len();
        let needed = columns.div_ceil(8);
        if present.len() < needed {
            return Err(DecodeError::PresentBitmap { columns, len: present.len(), needed });
        }
        let n_present = count_bits(present, columns);
        if n_present == 0 {
            return Err(DecodeError::EmptyImage { offset: self.pos });
        }

        let rest = self.data.get(self.pos..).unwrap_or_default();
        let null_len = n_present.div_ceil(8);
        let Some((nulls, _)) = rest.split_at_checked(null_len) else {
            return Err(DecodeError::NullBitmap {
                offset: self.pos,
                needed: null_len,
                available: rest.len(),
            });
        };

        let mut cursor = Cursor { data: self.data, pos: self.pos + null_len };
        let mut present_index = 0;
        let mut json_columns = 0;
        out.reserve(columns);
        for (column, plan) in self.plan.iter().enumerate() {
            // One partial flag per JSON column of the table, present or not.
            let json_index = json_columns;
            json_columns += usize::from(plan.is_json_binary());
            let diffs = plan.is_json_binary() && partial.as_ref().is_some_and(|p| bit(p.flags, json_index));
            if !bit(present, column) {
                out.push(Value::Absent);
                continue;
            }
            let is_null = bit(nulls, present_index);
            present_index += 1;
            if is_null {
                out.push(Value::Null);
                continue;
            }
            let pushed = match (&partial, plan.kind) {
                (Some(p), Kind::JsonBinary { prefix }) if diffs => {
                    json_with_diffs(p.before.get(column), &mut cursor, prefix).map(|v| out.push(v))
                }
                _ => push_value(plan, &mut cursor, out),
            };
            if let Err(reason) = pushed {
                out.clear();
                return Err(reason.at(column, plan.binlog_type()));
            }
        }
        self.pos = cursor.pos;
        Ok(true)
    }

    /// Decodes one UPDATE row: the before image, then the after image. Returns `Ok(false)` at
    /// the end of the data, and an error (rather than `Ok(false)`) when the data ends between
    /// the two images. On error the reader stays at the start of the row.
    pub fn read_update(
        &mut self,
        before_present: &[u8],
        after_present: &[u8],
        before: &mut Vec<Value<'a>>,
        after: &mut Vec<Value<'a>>,
    ) -> Result<bool, DecodeError> {
        let start = self.pos;
        if !self.read_image(before_present, before)? {
            after.clear();
            return Ok(false);
        }
        let result = match self.read_image(after_present, after) {
            Ok(true) => return Ok(true),
            Ok(false) => Err(DecodeError::MissingAfterImage { offset: self.pos }),
            Err(e) => Err(e),
        };
        self.pos = start;
        before.clear();
        result
    }

    /// Decodes one row of a PARTIAL_UPDATE_ROWS event (MySQL, type 39,
    /// `binlog_row_value_options=PARTIAL_JSON`): the before image as usual, then the after
    /// image, which starts with its value options (a packed integer; bit 0 = partial JSON) and,
    /// when that bit is set, a bitmap with one bit per JSON column of the table telling which
    /// of them hold a list of diffs against the before image instead of a document (see
    /// `json_diff`). Such columns come out as the before image's JSON with the diffs applied.
    ///
    /// Returns `Ok(false)` at the end of the data. On error the reader stays at the start of
    /// the row and both images are left empty.
    pub fn read_partial_update(
        &mut self,
        before_present: &[u8],
        after_present: &[u8],
        before: &mut Vec<Value<'a>>,
        after: &mut Vec<Value<'a>>,
    ) -> Result<bool, DecodeError> {
        let start = self.pos;
        after.clear();
        if !self.read_image(before_present, before)? {
            return Ok(false);
        }
        let result = self.read_partial_after(after_present, before, after);
        if !matches!(result, Ok(true)) {
            self.pos = start;
            before.clear();
            after.clear();
        }
        result.and_then(|more| if more { Ok(true) } else { Err(DecodeError::MissingAfterImage { offset: start }) })
    }

    fn read_partial_after(
        &mut self,
        after_present: &[u8],
        before: &[Value<'a>],
        after: &mut Vec<Value<'a>>,
    ) -> Result<bool, DecodeError> {
        if self.is_done() {
            return Ok(false);
        }
        let at = self.pos;
        let image_error = |reason| DecodeError::Event { event: "PARTIAL_UPDATE_ROWS after image", reason };
        let mut cursor = Cursor { data: self.data, pos: self.pos };
        let options = cursor.packed_int().map_err(image_error)?;
        let json_columns = self.plan.iter().filter(|p| p.is_json_binary()).count();
        let flags = if options & PARTIAL_JSON_UPDATES != 0 {
            cursor.take(json_columns.div_ceil(8)).map_err(image_error)?
        } else {
            &[]
        };
        self.pos = cursor.pos;
        match self.read_image_with(after_present, after, Some(Partial { flags, before })) {
            Ok(true) => Ok(true),
            // Value options but no image.
            Ok(false) => Err(DecodeError::MissingAfterImage { offset: at }),
            Err(e) => Err(e),
        }
    }
}

/// `binlog_row_value_options` bit of PARTIAL_JSON.
const PARTIAL_JSON_UPDATES: u64 = 1;

/// What decoding a PARTIAL_UPDATE_ROWS after image needs besides the bytes.
struct Partial<'p, 'a> {
    /// One bit per JSON column of the table: its value is a diff list.
    flags: &'p [u8],
    before: &'p [Value<'a>],
}

/// A JSON column value that is a diff list: applied to the before image's document.
fn json_with_diffs<'a>(base: Option<&Value<'_>>, c: &mut Cursor<'a>, prefix: u8) -> Result<Value<'a>, Reason> {
    let diffs = c.prefixed(prefix)?;
    let base = match base {
        Some(Value::Json(text)) => text,
        _ => return Err(Reason::InvalidValue("JSON diffs without a JSON document in the before image")),
    };
    Ok(Value::Json(Cow::Owned(crate::json_diff::apply(base, diffs)?)))
}

fn bit(bitmap: &[u8], index: usize) -> bool {
    bitmap.get(index / 8).is_some_and(|byte| byte >> (index % 8) & 1 == 1)
}

/// Set bits among the first `columns` bits of `bitmap`.
fn count_bits(bitmap: &[u8], columns: usize) -> usize {
    bitmap
        .iter()
        .take(columns.div_ceil(8))
        .enumerate()
        .map(|(i, &byte)| {
            let bits_here = (columns - 8 * i).min(8);
            let mask = if bits_here == 8 { 0xFF } else { (1u8 << bits_here) - 1 };
            (byte & mask).count_ones() as usize
        })
        .sum()
}

/// Checked reads over the rows data.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Reason> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let bytes =
            rest.get(..n).ok_or(Reason::Truncated { needed: n, available: rest.len() })?;
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Reason> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// An unsigned little-endian integer of `n` (<= 8) bytes.
    fn uint_le(&mut self, n: usize) -> Result<u64, Reason> {
        // The usual widths as one load each; the others byte by byte.
        Ok(match n {
            8 => u64::from_le_bytes(self.array()?),
            4 => u64::from(u32::from_le_bytes(self.array()?)),
            2 => u64::from(u16::from_le_bytes(self.array()?)),
            1 => u64::from(self.array::<1>()?[0]),
            _ => self.take(n)?.iter().rev().fold(0, |acc, &b| acc << 8 | u64::from(b)),
        })
    }

    /// MySQL's packed integer (`net_field_length`): one byte below 251, else 252/253/254 and
    /// 2/3/8 bytes little-endian.
    fn packed_int(&mut self) -> Result<u64, Reason> {
        match self.take(1)?[0] {
            b @ 0..=250 => Ok(u64::from(b)),
            252 => self.uint_le(2),
            253 => self.uint_le(3),
            254 => self.uint_le(8),
            _ => Err(Reason::InvalidValue("bad packed integer")),
        }
    }

    /// An unsigned big-endian integer of `n` (<= 8) bytes.
    fn uint_be(&mut self, n: usize) -> Result<u64, Reason> {
        Ok(match n {
            8 => u64::from_be_bytes(self.array()?),
            4 => u64::from(u32::from_be_bytes(self.array()?)),
            _ => self.take(n)?.iter().fold(0, |acc, &b| acc << 8 | u64::from(b)),
        })
    }

    /// A `prefix`-byte little-endian length, then that many bytes.
    fn prefixed(&mut self, prefix: u8) -> Result<&'a [u8], Reason> {
        let length = self.uint_le(usize::from(prefix))?;
        let available = self.data.len() - self.pos;
        match usize::try_from(length) {
            Ok(n) if n <= available => self.take(n),
            _ => Err(Reason::BadLength { length, available }),
        }
    }
}

/// Decodes one value onto `out`. The common kinds build their `Value` right in the vector's
/// memory: returning it first, as [`decode_value`] does, stores it on the stack field by field
/// and copies it out with wide loads that cannot be forwarded from those stores, which cost
/// more than the decoding itself (seen with perf on 10-column rows).
#[inline(always)]
fn push_value<'a>(plan: &ColumnPlan, c: &mut Cursor<'a>, out: &mut Vec<Value<'a>>) -> Result<(), Reason> {
    match plan.kind {
        Kind::Int { width } => {
            let width = usize::from(width);
            let raw = c.uint_le(width)?;
            if plan.is_unsigned() {
                out.push(Value::UInt(raw));
            } else {
                // Sign-extend from `width` bytes.
                let shift = 64 - 8 * width as u32;
                out.push(Value::Int(((raw << shift) as i64) >> shift));
            }
        }
        Kind::Bytes { prefix } => out.push(Value::Bytes(Cow::Borrowed(c.prefixed(prefix)?))),
        Kind::Double => out.push(Value::Double(f64::from_le_bytes(c.array()?))),
        Kind::Decimal(spec) => {
            out.push(Value::Decimal(Cow::Owned(spec.decode(c.take(spec.binary_len())?)?)))
        }
        Kind::DateTime2 { fsp } => out.push(datetime2(c, fsp)?),
        _ => out.push(decode_value(plan, c)?),
    }
    Ok(())
}

fn decode_value<'a>(plan: &ColumnPlan, c: &mut Cursor<'a>) -> Result<Value<'a>, Reason> {
    Ok(match plan.kind {
        Kind::Int { width } => {
            let width = usize::from(width);
            let raw = c.uint_le(width)?;
            if plan.is_unsigned() {
                Value::UInt(raw)
            } else {
                // Sign-extend from `width` bytes.
                let shift = 64 - 8 * width as u32;
                Value::Int(((raw << shift) as i64) >> shift)
            }
        }
        Kind::Year => {
            let [y] = c.array()?;
            Value::Year(if y == 0 { 0 } else { 1900 + u16::from(y) })
        }
        Kind::Float => Value::Float(f32::from_le_bytes(c.array()?)),
        Kind::Double => Value::Double(f64::from_le_bytes(c.array()?)),
        Kind::Decimal(spec) => {
            Value::Decimal(Cow::Owned(spec.decode(c.take(spec.binary_len())?)?))
        }
        Kind::Bit { bytes } => Value::Bit(c.uint_be(usize::from(bytes))?),
        Kind::Date => {
            let raw = c.uint_le(3)? as u32;
            let (year, month, day) = (raw >> 9, (raw >> 5) & 0xF, raw & 0x1F);
            check_date(year, month)?;
            Value::Date { year: year as u16, month: month as u8, day: day as u8 }
        }
        Kind::Time => {
            // Signed 24-bit HHMMSS.
            let raw = ((c.uint_le(3)? as u32) << 8) as i32 >> 8;
            let abs = raw.unsigned_abs();
            let (hours, minutes, seconds) = (abs / 10_000, abs / 100 % 100, abs % 100);
            check_time(hours, minutes, seconds, 0)?;
            Value::Time {
                negative: raw < 0,
                hours: hours as u16,
                minutes: minutes as u8,
                seconds: seconds as u8,
                micros: 0,
            }
        }
        Kind::DateTime => {
            // YYYYMMDDHHMMSS as a decimal integer.
            let raw = c.uint_le(8)?;
            let (date, time) = (raw / 1_000_000, raw % 1_000_000);
            let (year, month, day) = (date / 10_000, date / 100 % 100, date % 100);
            let (hour, minute, second) = (time / 10_000, time / 100 % 100, time % 100);
            if year > 9999 || month > 12 || day > 31 {
                return Err(Reason::InvalidValue("DATETIME date part out of range"));
            }
            check_clock(hour as u32, minute as u32, second as u32)?;
            Value::DateTime {
                year: year as u16,
                month: month as u8,
                day: day as u8,
                hour: hour as u8,
                minute: minute as u8,
                second: second as u8,
                micros: 0,
            }
        }
        Kind::Timestamp => Value::Timestamp { secs: c.uint_le(4)? as i64, micros: 0 },
        Kind::Timestamp2 { fsp } => {
            let secs = c.uint_be(4)? as i64;
            Value::Timestamp { secs, micros: fraction(c, fsp)? }
        }
        Kind::DateTime2 { fsp } => datetime2(c, fsp)?,
        Kind::Time2 { fsp } => time2(c, fsp)?,
        Kind::Bytes { prefix } => Value::Bytes(Cow::Borrowed(c.prefixed(prefix)?)),
        Kind::Geometry { prefix } => Value::Geometry(Cow::Borrowed(c.prefixed(prefix)?)),
        Kind::JsonText { prefix } => {
            let text = std::str::from_utf8(c.prefixed(prefix)?)
                .map_err(|_| Reason::InvalidValue("JSON text is not UTF-8"))?;
            Value::Json(Cow::Borrowed(text))
        }
        Kind::JsonBinary { prefix } => {
            Value::Json(Cow::Owned(json::binary_to_text(c.prefixed(prefix)?)?))
        }
        Kind::Enum { bytes } => Value::Enum(c.uint_le(usize::from(bytes))? as u16),
        Kind::Set { bytes } => Value::Set(c.uint_le(usize::from(bytes))?),
        Kind::DateTimeHires { fsp } => datetime_hires(c, fsp)?,
        Kind::TimestampHires { fsp } => {
            let secs = c.uint_be(4)? as i64;
            let frac = c.uint_be(usize::from(HIRES_FRACTION_BYTES[usize::from(fsp)]))?;
            let micros = frac
                .checked_mul(u64::from(POW10[usize::from(6 - fsp)]))
                .filter(|&m| m <= 999_999)
                .ok_or(Reason::InvalidValue("fraction of a second out of range"))?;
            Value::Timestamp { secs, micros: micros as u32 }
        }
        Kind::TimeHires { fsp } => time_hires(c, fsp)?,
        Kind::FixedBinary { prefix, len } => {
            let bytes = c.prefixed(prefix)?;
            let len = usize::from(len);
            match bytes.len().cmp(&len) {
                std::cmp::Ordering::Equal => Value::Bytes(Cow::Borrowed(bytes)),
                std::cmp::Ordering::Less => {
                    let mut padded = Vec::with_capacity(len);
                    padded.extend_from_slice(bytes);
                    padded.resize(len, 0);
                    Value::Bytes(Cow::Owned(padded))
                }
                std::cmp::Ordering::Greater => {
                    return Err(Reason::InvalidValue("BINARY value longer than its column"))
                }
            }
        }
        Kind::Mariadb { prefix, len, ty } => {
            let bytes = c.prefixed(prefix)?;
            if bytes.len() > usize::from(len) {
                return Err(Reason::InvalidValue("value longer than its MariaDB type"));
            }
            // Trailing zero bytes were stripped like any BINARY(n)'s.
            let mut raw = [0u8; 16];
            raw[..bytes.len()].copy_from_slice(bytes);
            Value::Bytes(Cow::Owned(mariadb_text(ty, &raw).into_bytes()))
        }
    })
}

const POW10: [u32; 7] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];

/// Bytes of the fraction of MariaDB's high-resolution TIMESTAMP, by fsp.
const HIRES_FRACTION_BYTES: [u8; 7] = [0, 1, 1, 2, 2, 3, 3];

/// MariaDB's high-resolution DATETIME(fsp): `datetime_hires_bytes[fsp]` bytes big-endian of
/// `((((((year * 13 + month) * 32 + day) * 24 + hour) * 60 + minute) * 60 + second) * 10^6 +
/// micros) / 10^(6 - fsp)`.
fn datetime_hires<'a>(c: &mut Cursor<'_>, fsp: u8) -> Result<Value<'a>, Reason> {
    const BYTES: [u8; 7] = [5, 6, 6, 7, 7, 7, 8];
    let raw = c.uint_be(usize::from(BYTES[usize::from(fsp)]))?;
    let packed = raw
        .checked_mul(u64::from(POW10[usize::from(6 - fsp)]))
        .ok_or(Reason::InvalidValue("DATETIME out of range"))?;
    let micros = (packed % 1_000_000) as u32;
    let mut v = packed / 1_000_000;
    let second = (v % 60) as u32;
    v /= 60;
    let minute = (v % 60) as u32;
    v /= 60;
    let hour = (v % 24) as u32;
    v /= 24;
    let day = (v % 32) as u8;
    v /= 32;
    let (year, month) = (v / 13, (v % 13) as u32);
    if year > 9999 {
        return Err(Reason::InvalidValue("date out of range"));
    }
    check_clock(hour, minute, second)?;
    Ok(Value::DateTime {
        year: year as u16,
        month: month as u8,
        day,
        hour: hour as u8,
        minute: minute as u8,
        second: second as u8,
        micros,
    })
}

/// MariaDB's high-resolution TIME(fsp): `time_hires_bytes[fsp]` bytes big-endian of
/// `(signed microseconds + 839:00:00 in microseconds) / 10^(6 - fsp)`.
fn time_hires<'a>(c: &mut Cursor<'_>, fsp: u8) -> Result<Value<'a>, Reason> {
    const BYTES: [u8; 7] = [3, 4, 4, 5, 5, 5, 6];
    const ZERO_MICROS: i64 = (838 * 3600 + 59 * 60 + 59 + 1) * 1_000_000;
    let unit = i64::from(POW10[usize::from(6 - fsp)]);
    let raw = c.uint_be(usize::from(BYTES[usize::from(fsp)]))? as i64;
    let micros_total = (raw - ZERO_MICROS / unit) * unit;
    let abs = micros_total.unsigned_abs();
    let (secs, micros) = (abs / 1_000_000, (abs % 1_000_000) as u32);
    let (hours, minutes, seconds) = (secs / 3600, (secs / 60 % 60) as u32, (secs % 60) as u32);
    let hours = u32::try_from(hours).map_err(|_| Reason::InvalidValue("TIME out of range"))?;
    check_time(hours, minutes, seconds, micros)?;
    Ok(Value::Time {
        negative: micros_total < 0,
        hours: hours as u16,
        minutes: minutes as u8,
        seconds: seconds as u8,
        micros,
    })
}

/// The text MariaDB prints for an INET4, INET6 or UUID value (`raw` zero-padded to 16 bytes).
fn mariadb_text(ty: MariadbType, raw: &[u8; 16]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(39);
    match ty {
        MariadbType::Inet4 => {
            let _ = write!(out, "{}.{}.{}.{}", raw[0], raw[1], raw[2], raw[3]);
        }
        MariadbType::Uuid => {
            for (i, b) in raw.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    out.push('-');
                }
                let _ = write!(out, "{b:02x}");
            }
        }
        MariadbType::Inet6 => {
            let words: [u16; 8] = std::array::from_fn(|i| u16::from_be_bytes([raw[2 * i], raw[2 * i + 1]]));
            // The first longest run of zero words (even a single one) becomes "::".
            let (mut gap_pos, mut gap_len) = (usize::MAX, 0);
            let mut i = 0;
            while i < 8 {
                if words[i] == 0 {
                    let start = i;
                    while i < 8 && words[i] == 0 {
                        i += 1;
                    }
                    if i - start > gap_len {
                        (gap_pos, gap_len) = (start, i - start);
                    }
                } else {
                    i += 1;
                }
            }
            let mut i = 0;
            while i < 8 {
                if i == gap_pos {
                    if i == 0 {
                        out.push(':');
                    }
                    out.push(':');
                    i += gap_len;
                    continue;
                }
                if i == 6 && gap_pos == 0 && (gap_len == 6 || (gap_len == 5 && words[5] == 0xFFFF)) {
                    // IPv4-compatible (::a.b.c.d) or IPv4-mapped (::ffff:a.b.c.d).
                    let _ = write!(out, "{}.{}.{}.{}", raw[12], raw[13], raw[14], raw[15]);
                    break;
                }
                let _ = write!(out, "{:x}", words[i]);
                if i + 1 != 8 {
                    out.push(':');
                }
                i += 1;
            }
        }
    }
    out
}

fn check_date(year: u32, month: u32) -> Result<(), Reason> {
    if year > 9999 || month > 12 {
        return Err(Reason::InvalidValue("date out of range"));
    }
    Ok(())
}

fn check_clock(hour: u32, minute: u32, second: u32) -> Result<(), Reason> {
    if hour > 23 || minute > 59 || second > 59 {
        return Err(Reason::InvalidValue("time of day out of range"));
    }
    Ok(())
}

/// TIME range: up to 838:59:59.999999 either way.
fn check_time(hours: u32, minutes: u32, seconds: u32, micros: u32) -> Result<(), Reason> {
    if hours > 838 || minutes > 59 || seconds > 59 || micros > 999_999 {
        return Err(Reason::InvalidValue("TIME out of range"));
    }
    Ok(())
}

/// The big-endian fraction that follows TIMESTAMP2 and DATETIME2, in microseconds.
fn fraction(c: &mut Cursor<'_>, fsp: u8) -> Result<u32, Reason> {
    let micros = match fsp {
        0 => 0,
        1 | 2 => c.uint_be(1)? as u32 * 10_000,
        3 | 4 => c.uint_be(2)? as u32 * 100,
        _ => c.uint_be(3)? as u32,
    };
    if micros > 999_999 {
        return Err(Reason::InvalidValue("fraction of a second out of range"));
    }
    Ok(micros)
}

/// DATETIME2: 5 bytes big-endian, offset 0x80_0000_0000, holding
/// `(year * 13 + month) << 22 | day << 17 | hour << 12 | minute << 6 | second`; then the fraction.
#[inline(always)]
fn datetime2<'a>(c: &mut Cursor<'_>, fsp: u8) -> Result<Value<'a>, Reason> {
    let packed = c
        .uint_be(5)?
        .checked_sub(0x80_0000_0000)
        .ok_or(Reason::InvalidValue("negative DATETIME"))?;
    let micros = fraction(c, fsp)?;
    let (ymd, hms) = (packed >> 17, (packed & 0x1_FFFF) as u32);
    let (year_month, day) = (ymd >> 5, (ymd & 0x1F) as u8);
    let (year, month) = ((year_month / 13) as u32, (year_month % 13) as u8);
    let (hour, minute, second) = (hms >> 12, (hms >> 6) & 0x3F, hms & 0x3F);
    check_date(year, u32::from(month))?;
    check_clock(hour, minute, second)?;
    Ok(Value::DateTime {
        year: year as u16,
        month,
        day,
        hour: hour as u8,
        minute: minute as u8,
        second: second as u8,
        micros,
    })
}

/// TIME2. MySQL's "packed time" is `(hour << 12 | minute << 6 | second) << 24 | micros`, negated
/// for negative times. On the wire: fsp 0 stores `packed >> 24` in 3 bytes big-endian with
/// offset 0x800000; fsp 1-2 and 3-4 store that integer part (rounded towards minus infinity)
/// plus a 1- or 2-byte fraction (hundredths or ten-thousandths) that is negative, as a two's
/// complement, for negative times; fsp 5-6 store all of `packed` in 6 bytes with offset
/// 0x8000_0000_0000.
fn time2<'a>(c: &mut Cursor<'_>, fsp: u8) -> Result<Value<'a>, Reason> {
    const INT_OFFSET: i64 = 0x80_0000;
    let packed: i64 = match fsp {
        0 => (c.uint_be(3)? as i64 - INT_OFFSET) << 24,
        1..=4 => {
            let mut int_part = c.uint_be(3)? as i64 - INT_OFFSET;
            let (frac_len, unit) = if fsp <= 2 { (1, 10_000) } else { (2, 100) };
            let mut frac = c.uint_be(frac_len)? as i64;
            if int_part < 0 && frac != 0 {
                // The integer part was floored; the fraction is a negative two's complement.
                int_part += 1;
                frac -= 1 << (8 * frac_len);
            }
            (int_part << 24) + frac * unit
        }
        _ => c.uint_be(6)? as i64 - 0x8000_0000_0000,
    };
    let abs = packed.unsigned_abs();
    let (hms, micros) = ((abs >> 24) as u32, (abs & 0xFF_FFFF) as u32);
    let (hours, minutes, seconds) = (hms >> 12, (hms >> 6) & 0x3F, hms & 0x3F);
    check_time(hours, minutes, seconds, micros)?;
    Ok(Value::Time {
        negative: packed < 0,
        hours: hours as u16,
        minutes: minutes as u8,
        seconds: seconds as u8,
        micros,
    })
}
