use std::borrow::Cow;

/// One column value of a row image, as decoded from the binlog (or read by a snapshot query).
///
/// Byte payloads borrow from the event buffer where they can. Text is kept as raw bytes in the
/// column's character set: converting it is the consumer's business, exactly as DTS does.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// The column is not in this row image (`binlog_row_image` MINIMAL or NOBLOB).
    Absent,
    /// Signed TINYINT…BIGINT.
    Int(i64),
    /// Unsigned TINYINT…BIGINT (the full u64 range, exact).
    UInt(u64),
    Float(f32),
    Double(f64),
    /// Exact decimal text as MySQL prints it, e.g. `-12.50`, `0.000`, `42`.
    Decimal(Cow<'a, str>),
    /// BIT(n): the value right-aligned in a u64.
    Bit(u64),
    /// YEAR: 0 (the zero year) or 1901..=2155.
    Year(u16),
    /// DATE; zero and partial-zero dates keep their zero parts.
    Date { year: u16, month: u8, day: u8 },
    /// TIME, up to ±838:59:59.999999; `hours` holds the whole hours (no day part).
    Time { negative: bool, hours: u16, minutes: u8, seconds: u8, micros: u32 },
    /// DATETIME (no time zone).
    DateTime { year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8, micros: u32 },
    /// TIMESTAMP: seconds since the epoch (UTC) and the fraction in microseconds.
    Timestamp { secs: i64, micros: u32 },
    /// CHAR, VARCHAR, TEXT, BINARY, VARBINARY, BLOB: raw bytes in the column's character set.
    Bytes(Cow<'a, [u8]>),
    /// ENUM: 1-based index into the column's labels; 0 is the invalid-value ''.
    Enum(u16),
    /// SET: bitmask over the column's labels (bit 0 = first label).
    Set(u64),
    /// JSON as text.
    Json(Cow<'a, str>),
    /// GEOMETRY in MySQL's internal form: 4-byte little-endian SRID followed by WKB.
    Geometry(Cow<'a, [u8]>),
}

impl Value<'_> {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A `'static` copy.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Absent => Value::Absent,
            Value::Int(v) => Value::Int(v),
            Value::UInt(v) => Value::UInt(v),
            Value::Float(v) => Value::Float(v),
            Value::Double(v) => Value::Double(v),
            Value::Decimal(v) => Value::Decimal(Cow::Owned(v.into_owned())),
            Value::Bit(v) => Value::Bit(v),
            Value::Year(v) => Value::Year(v),
            Value::Date { year, month, day } => Value::Date { year, month, day },
            Value::Time { negative, hours, minutes, seconds, micros } => {
                Value::Time { negative, hours, minutes, seconds, micros }
            }
            Value::DateTime { year, month, day, hour, minute, second, micros } => {
                Value::DateTime { year, month, day, hour, minute, second, micros }
            }
            Value::Timestamp { secs, micros } => Value::Timestamp { secs, micros },
            Value::Bytes(v) => Value::Bytes(Cow::Owned(v.into_owned())),
            Value::Enum(v) => Value::Enum(v),
            Value::Set(v) => Value::Set(v),
            Value::Json(v) => Value::Json(Cow::Owned(v.into_owned())),
            Value::Geometry(v) => Value::Geometry(Cow::Owned(v.into_owned())),
        }
    }
}
