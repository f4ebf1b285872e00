//! Per-table decoding plans, built once per TABLE_MAP.

use crate::column_type as ct;
use crate::decimal::DecimalSpec;
use crate::error::{DecodeError, Reason};

/// How one column's value is laid out in a row image; everything the hot loop needs, resolved
/// from type code, metadata and signedness once per TABLE_MAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// TINY, SHORT, INT24, LONG, LONGLONG: little-endian, `width` bytes.
    Int { width: u8 },
    Year,
    Float,
    Double,
    Decimal(DecimalSpec),
    /// BIT: big-endian, 1..=8 bytes.
    Bit { bytes: u8 },
    /// DATE / NEWDATE (3 bytes).
    Date,
    /// Old TIME (3 bytes, signed HHMMSS).
    Time,
    /// Old DATETIME (8 bytes, YYYYMMDDHHMMSS).
    DateTime,
    /// Old TIMESTAMP (4 bytes, seconds).
    Timestamp,
    Timestamp2 { fsp: u8 },
    DateTime2 { fsp: u8 },
    Time2 { fsp: u8 },
    /// VARCHAR, CHAR, BLOB family, VECTOR: a `prefix`-byte little-endian length, then bytes.
    Bytes { prefix: u8 },
    /// Like `Bytes`, but the bytes are JSON text (MariaDB's JSON is a LONGTEXT); must be UTF-8.
    JsonText { prefix: u8 },
    Geometry { prefix: u8 },
    /// MySQL binary JSON behind a `prefix`-byte length.
    JsonBinary { prefix: u8 },
    Enum { bytes: u8 },
    Set { bytes: u8 },
    /// MariaDB's own high-resolution DATETIME(1..6) from before MariaDB 10.1.2 (still written
    /// when `mysql56_temporal_format=OFF`): TABLE_MAP type DATETIME 12 without metadata, the fsp
    /// known only from the schema.
    DateTimeHires { fsp: u8 },
    /// Likewise for TIMESTAMP(1..6) (type 7).
    TimestampHires { fsp: u8 },
    /// Likewise for TIME(1..6) (type 11).
    TimeHires { fsp: u8 },
    /// BINARY(n): a STRING whose trailing 0x00 bytes the server strips; padded back to `len`.
    FixedBinary { prefix: u8, len: u16 },
    /// A MariaDB fixed-size binary type decoded to its text form.
    Mariadb { prefix: u8, len: u16, ty: MariadbType },
}

/// MariaDB's plugin types that the binlog carries as BINARY(n) (TABLE_MAP type STRING), and
/// that [`ColumnPlan::decode_as_mariadb`] turns into the text MariaDB prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MariadbType {
    /// INET4, 4 bytes: `a.b.c.d`.
    Inet4,
    /// INET6, 16 bytes: lower-case hex words, the longest run of zero words as `::`,
    /// IPv4-mapped and IPv4-compatible addresses with a dotted tail.
    Inet6,
    /// UUID, 16 bytes: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower case.
    Uuid,
}

impl MariadbType {
    /// The type's size in bytes.
    pub fn size(self) -> u16 {
        match self {
            MariadbType::Inet4 => 4,
            MariadbType::Inet6 | MariadbType::Uuid => 16,
        }
    }
}

/// How to decode one column of a table, built by [`build_plan`] from a TABLE_MAP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnPlan {
    binlog_type: u8,
    real_type: u8,
    metadata: u16,
    unsigned: bool,
    pub(crate) kind: Kind,
}

impl ColumnPlan {
    /// The type code as the TABLE_MAP gives it.
    pub fn binlog_type(&self) -> u8 {
        self.binlog_type
    }

    /// The type code after resolving STRING's real type (ENUM, SET or STRING) and the old DATE
    /// code (NEWDATE is reported as DATE).
    pub fn real_type(&self) -> u8 {
        self.real_type
    }

    /// The column's metadata as [`parse_column_metadata`](crate::parse_column_metadata) gave it.
    pub fn metadata(&self) -> u16 {
        self.metadata
    }

    /// Whether an integer column decodes as unsigned ([`Value::UInt`](sluice_event::Value::UInt)).
    pub fn is_unsigned(&self) -> bool {
        self.unsigned
    }

    /// Whether the column holds MySQL binary JSON (type 245), converted to JSON text on decode.
    pub fn is_json_binary(&self) -> bool {
        matches!(self.kind, Kind::JsonBinary { .. })
    }

    /// Whether values come out as [`Value::Json`](sluice_event::Value::Json).
    pub fn is_json(&self) -> bool {
        matches!(self.kind, Kind::JsonBinary { .. } | Kind::JsonText { .. })
    }

    /// Makes a text or blob column decode as [`Value::Json`](sluice_event::Value::Json) holding its
    /// bytes (which must be UTF-8) instead of `Value::Bytes`. For MariaDB, whose JSON type is a
    /// LONGTEXT that the binlog cannot tell from any other; the caller knows it from the schema.
    ///
    /// Returns `false` (and changes nothing) for columns that are not length-prefixed bytes.
    pub fn decode_as_json_text(&mut self) -> bool {
        match self.kind {
            Kind::Bytes { prefix } => {
                self.kind = Kind::JsonText { prefix };
                true
            }
            Kind::JsonText { .. } | Kind::JsonBinary { .. } => true,
            _ => false,
        }
    }

    /// Applies the column's fractional-seconds precision from the schema to the old temporal
    /// types, whose TABLE_MAP carries none: TIMESTAMP 7, TIME 11 and DATETIME 12 with an fsp of
    /// 1-6 can only be MariaDB's pre-10.1.2 high-resolution formats (MySQL never writes those
    /// codes with a fraction; MariaDB does with `mysql56_temporal_format=OFF`).
    ///
    /// Returns whether the plan changed. An `fsp` of 0 (the old formats proper), above 6 (no
    /// such column exists) and every other type leave the plan as it is.
    pub fn apply_schema_fsp(&mut self, fsp: u8) -> bool {
        if !(1..=6).contains(&fsp) {
            return false;
        }
        self.kind = match self.kind {
            Kind::DateTime => Kind::DateTimeHires { fsp },
            Kind::Timestamp => Kind::TimestampHires { fsp },
            Kind::Time => Kind::TimeHires { fsp },
            _ => return false,
        };
        true
    }

    /// Makes a BINARY(n) column (real type STRING, binary character set, which only the schema
    /// knows) decode to exactly its `n` bytes: the server strips trailing 0x00 bytes from the
    /// row image, and `SELECT` returns them. Returns `false` (changing nothing) for other kinds.
    pub fn pad_fixed_binary(&mut self) -> bool {
        match self.kind {
            Kind::Bytes { prefix } if self.real_type == ct::STRING => {
                self.kind = Kind::FixedBinary { prefix, len: string_max_len(self.metadata) };
                true
            }
            Kind::FixedBinary { .. } => true,
            _ => false,
        }
    }

    /// Makes a MariaDB INET4, INET6 or UUID column (a BINARY(4) or BINARY(16) in the binlog)
    /// decode to its text form as `Value::Bytes`. Returns `false` (changing nothing) when the
    /// column is not a STRING of that size.
    pub fn decode_as_mariadb(&mut self, ty: MariadbType) -> bool {
        let prefix = match self.kind {
            Kind::Bytes { prefix } | Kind::FixedBinary { prefix, .. } => prefix,
            Kind::Mariadb { ty: t, .. } => return t == ty,
            _ => return false,
        };
        if self.real_type != ct::STRING || string_max_len(self.metadata) != ty.size() {
            return false;
        }
        self.kind = Kind::Mariadb { prefix, len: ty.size(), ty };
        true
    }
}

/// The maximum length in bytes of a STRING (CHAR/BINARY) column, from its metadata: bits 8-9
/// of it are XOR-ed into bits 4-5 of the real type byte.
fn string_max_len(metadata: u16) -> u16 {
    let [lo, hi] = metadata.to_le_bytes();
    ((u16::from(lo & 0x30) << 4) ^ 0x300) | u16::from(hi)
}

/// Builds the decoding plan of a table: one [`ColumnPlan`] per TABLE_MAP column.
///
/// `types` are the TABLE_MAP column types, `metas` the output of
/// [`parse_column_metadata`](crate::parse_column_metadata), `unsigned` the signedness of each
/// column (from the schema or the TABLE_MAP's optional SIGNEDNESS metadata; only read for integer
/// columns). All three must have one entry per column.
///
/// Errors on metadata that is invalid for its type (e.g. DECIMAL precision 0, fsp 7, a BLOB with
/// 5 length bytes, a STRING whose real type is none of STRING/ENUM/SET) and on type codes this
/// crate does not decode (old DECIMAL 0, NULL 6, TYPED_ARRAY 20, VAR_STRING 253, MariaDB's
/// compressed 140/141, unknown codes): nothing is guessed.
pub fn build_plan(
    types: &[u8],
    metas: &[u16],
    unsigned: &[bool],
) -> Result<Vec<ColumnPlan>, DecodeError> {
    if types.len() != metas.len() || types.len() != unsigned.len() {
        return Err(DecodeError::ColumnCount {
            types: types.len(),
            metas: metas.len(),
            unsigned: unsigned.len(),
        });
    }
    types
        .iter()
        .zip(metas)
        .zip(unsigned)
        .enumerate()
        .map(|(column, ((&code, &meta), &unsigned))| {
            plan_column(code, meta, unsigned).map_err(|reason| reason.at(column, code))
        })
        .collect()
}

fn plan_column(code: u8, metadata: u16, unsigned: bool) -> Result<ColumnPlan, Reason> {
    let [lo, hi] = metadata.to_le_bytes();
    let mut real_type = code;
    let kind = match code {
        ct::TINY => Kind::Int { width: 1 },
        ct::SHORT => Kind::Int { width: 2 },
        ct::INT24 => Kind::Int { width: 3 },
        ct::LONG => Kind::Int { width: 4 },
        ct::LONGLONG => Kind::Int { width: 8 },
        ct::YEAR => Kind::Year,
        ct::FLOAT => Kind::Float,
        ct::DOUBLE => Kind::Double,
        ct::NEWDECIMAL => Kind::Decimal(DecimalSpec::new(lo, hi)?),
        ct::BIT => {
            if lo > 7 {
                return Err(Reason::BadMetadata("BIT bits % 8 above 7"));
            }
            let bytes = hi + u8::from(lo > 0);
            if !(1..=8).contains(&bytes) {
                return Err(Reason::BadMetadata("BIT width must be 1..=64 bits"));
            }
            Kind::Bit { bytes }
        }
        ct::DATE | ct::NEWDATE => {
            real_type = ct::DATE;
            Kind::Date
        }
        ct::TIME => Kind::Time,
        ct::DATETIME => Kind::DateTime,
        ct::TIMESTAMP => Kind::Timestamp,
        ct::TIMESTAMP2 | ct::DATETIME2 | ct::TIME2 => {
            let fsp = u8::try_from(metadata)
                .ok()
                .filter(|&fsp| fsp <= 6)
                .ok_or(Reason::BadMetadata("fractional seconds precision above 6"))?;
            match code {
                ct::TIMESTAMP2 => Kind::Timestamp2 { fsp },
                ct::DATETIME2 => Kind::DateTime2 { fsp },
                _ => Kind::Time2 { fsp },
            }
        }
        ct::VARCHAR => Kind::Bytes { prefix: if metadata < 256 { 1 } else { 2 } },
        ct::STRING | ct::ENUM | ct::SET => {
            // For STRING the first byte is the real type with bits 8-9 of a long CHAR's length
            // XOR-ed into its bits 4-5 (real types all have those bits set).
            real_type = if code == ct::STRING { lo | 0x30 } else { code };
            match real_type {
                ct::ENUM => match hi {
                    1 | 2 => Kind::Enum { bytes: hi },
                    _ => return Err(Reason::BadMetadata("ENUM pack length must be 1 or 2")),
                },
                ct::SET => match hi {
                    1..=8 => Kind::Set { bytes: hi },
                    _ => return Err(Reason::BadMetadata("SET pack length must be 1..=8")),
                },
                ct::STRING => {
                    let max_len = string_max_len(metadata);
                    Kind::Bytes { prefix: if max_len < 256 { 1 } else { 2 } }
                }
                _ => return Err(Reason::BadMetadata("STRING real type is not STRING, ENUM or SET")),
            }
        }
        ct::TINY_BLOB | ct::MEDIUM_BLOB | ct::LONG_BLOB | ct::BLOB | ct::VECTOR | ct::GEOMETRY
        | ct::JSON => {
            let prefix = u8::try_from(metadata)
                .ok()
                .filter(|p| (1..=4).contains(p))
                .ok_or(Reason::BadMetadata("length size must be 1..=4 bytes"))?;
            match code {
                ct::GEOMETRY => Kind::Geometry { prefix },
                ct::JSON => Kind::JsonBinary { prefix },
                _ => Kind::Bytes { prefix },
            }
        }
        _ => return Err(Reason::UnsupportedType),
    };
    Ok(ColumnPlan { binlog_type: code, real_type, metadata, unsigned, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan1(code: u8, meta: u16) -> Result<ColumnPlan, DecodeError> {
        build_plan(&[code], &[meta], &[false]).map(|mut p| p.remove(0))
    }

    #[test]
    fn string_real_types() {
        // ENUM inside STRING: first byte 0xF7, pack length 2.
        let p = plan1(ct::STRING, 0xF7 | (2 << 8)).unwrap();
        assert_eq!((p.real_type(), p.kind), (ct::ENUM, Kind::Enum { bytes: 2 }));
        let p = plan1(ct::STRING, 0xF8 | (8 << 8)).unwrap();
        assert_eq!((p.real_type(), p.kind), (ct::SET, Kind::Set { bytes: 8 }));
        // CHAR(10) latin1: FE 0A -> 1-byte length.
        let p = plan1(ct::STRING, 0xFE | (10 << 8)).unwrap();
        assert_eq!((p.real_type(), p.kind), (ct::STRING, Kind::Bytes { prefix: 1 }));
        // CHAR(255) utf8mb4 = 1020 = 0x3FC bytes: first byte 0xFE ^ ((0x300 >> 4) = 0x30) = 0xCE,
        // second byte 0xFC -> 2-byte length.
        let p = plan1(ct::STRING, 0xCE | (0xFC << 8)).unwrap();
        assert_eq!((p.real_type(), p.kind), (ct::STRING, Kind::Bytes { prefix: 2 }));
        // CHAR(64) utf8mb4 = 256 = 0x100 bytes: 0xFE ^ 0x10 = 0xEE, 0x00 -> 2-byte length.
        let p = plan1(ct::STRING, 0xEE).unwrap();
        assert_eq!(p.kind, Kind::Bytes { prefix: 2 });
        assert!(plan1(ct::STRING, 0xF5 | (1 << 8)).is_err());
        assert!(plan1(ct::STRING, 0).is_err());
        assert!(plan1(ct::STRING, 0xF7 | (3 << 8)).is_err());
        assert!(plan1(ct::STRING, 0xF8 | (9 << 8)).is_err());
    }

    #[test]
    fn metadata_validation() {
        assert_eq!(plan1(ct::BIT, 1).unwrap().kind, Kind::Bit { bytes: 1 });
        assert_eq!(plan1(ct::BIT, 2 | (1 << 8)).unwrap().kind, Kind::Bit { bytes: 2 });
        assert_eq!(plan1(ct::BIT, 8 << 8).unwrap().kind, Kind::Bit { bytes: 8 });
        assert!(plan1(ct::BIT, 0).is_err());
        assert!(plan1(ct::BIT, 1 | (8 << 8)).is_err());
        assert!(plan1(ct::TIME2, 7).is_err());
        assert!(plan1(ct::BLOB, 0).is_err());
        assert!(plan1(ct::JSON, 5).is_err());
        assert!(plan1(ct::NEWDECIMAL, 5 | (6 << 8)).is_err());
        assert_eq!(plan1(ct::VARCHAR, 255).unwrap().kind, Kind::Bytes { prefix: 1 });
        assert_eq!(plan1(ct::VARCHAR, 256).unwrap().kind, Kind::Bytes { prefix: 2 });
        assert_eq!(plan1(ct::NEWDATE, 0).unwrap().real_type(), ct::DATE);
        for code in [ct::DECIMAL, ct::NULL, ct::TYPED_ARRAY, ct::VAR_STRING, 140, 141, 243, 244] {
            let err = plan1(code, 0).unwrap_err();
            assert_eq!(err, Reason::UnsupportedType.at(0, code));
        }
    }

    #[test]
    fn lengths_must_match() {
        assert!(matches!(
            build_plan(&[ct::LONG, ct::LONG], &[0, 0], &[false]),
            Err(DecodeError::ColumnCount { types: 2, metas: 2, unsigned: 1 })
        ));
    }

    #[test]
    fn json_flags() {
        let p = plan1(ct::JSON, 4).unwrap();
        assert!(p.is_json_binary() && p.is_json());
        let mut p = plan1(ct::BLOB, 4).unwrap();
        assert!(!p.is_json());
        assert!(p.decode_as_json_text());
        assert!(p.is_json() && !p.is_json_binary());
        assert!(!plan1(ct::LONG, 0).unwrap().decode_as_json_text());
    }
}
