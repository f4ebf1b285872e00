//! Splitting a TABLE_MAP's column metadata block into one `u16` per column.

use crate::column_type as ct;
use crate::error::{DecodeError, Reason};

/// How many metadata bytes a column of type `code` has in a TABLE_MAP, or `None` if the type is
/// unknown (its metadata length, and so everything after it, cannot be known).
fn metadata_len(code: u8) -> Option<usize> {
    Some(match code {
        ct::FLOAT
        | ct::DOUBLE
        | ct::TINY_BLOB
        | ct::MEDIUM_BLOB
        | ct::LONG_BLOB
        | ct::BLOB
        | ct::GEOMETRY
        | ct::JSON
        | ct::VECTOR
        | ct::TIMESTAMP2
        | ct::DATETIME2
        | ct::TIME2 => 1,
        ct::VARCHAR
        | ct::BIT
        | ct::NEWDECIMAL
        | ct::STRING
        | ct::ENUM
        | ct::SET => 2,
        ct::DECIMAL
        | ct::TINY
        | ct::SHORT
        | ct::LONG
        | ct::NULL
        | ct::TIMESTAMP
        | ct::LONGLONG
        | ct::INT24
        | ct::DATE
        | ct::TIME
        | ct::DATETIME
        | ct::YEAR
        | ct::NEWDATE => 0,
        _ => return None,
    })
}

/// Splits the column metadata block of a TABLE_MAP event into one `u16` per column.
///
/// `types` are the column type codes of the TABLE_MAP, `meta` its metadata block (without the
/// length prefix). Types with one metadata byte give that byte; types without metadata give 0.
///
/// **Convention for two-byte metadata:** the value is `u16::from_le_bytes([first, second])`
/// with the bytes in wire order, for every type. So the low byte is always the first wire byte:
///
/// | type | low byte (first) | high byte (second) |
/// |---|---|---|
/// | VARCHAR | max length in bytes, little-endian u16 | |
/// | NEWDECIMAL | precision | scale |
/// | STRING, ENUM, SET | real type (with bits 4–5 of a long CHAR's length folded in) | CHAR length low byte, or ENUM/SET pack length |
/// | BIT | bits % 8 | whole bytes (bits / 8) |
///
/// (MySQL's own `table_def` stores NEWDECIMAL and STRING the other way round; this crate does
/// not, so one rule covers all types.)
///
/// Errors if the block ends before the last column's metadata, if bytes are left over, or on a
/// type code whose metadata length is unknown. That includes MySQL's replication-only
/// TYPED_ARRAY, MariaDB's compressed columns (140, 141) and VAR_STRING (253): servers never put
/// VAR_STRING in a TABLE_MAP, and readers disagree on its metadata (MySQL's own `table_def` and
/// mysql_common read none, other libraries two bytes), so it is refused rather than guessed.
pub fn parse_column_metadata(types: &[u8], meta: &[u8]) -> Result<Vec<u16>, DecodeError> {
    let mut out = Vec::with_capacity(types.len());
    let mut rest = meta;
    for (column, &code) in types.iter().enumerate() {
        let len =
            metadata_len(code).ok_or_else(|| Reason::UnsupportedType.at(column, code))?;
        let (bytes, tail) = rest.split_at_checked(len).ok_or_else(|| {
            Reason::Truncated { needed: len, available: rest.len() }.at(column, code)
        })?;
        out.push(match *bytes {
            [] => 0,
            [b] => u16::from(b),
            [lo, hi] => u16::from_le_bytes([lo, hi]),
            _ => unreachable!("metadata is at most two bytes"),
        });
        rest = tail;
    }
    if !rest.is_empty() {
        let column = types.len().saturating_sub(1);
        let code = types.last().copied().unwrap_or(ct::NULL);
        return Err(Reason::BadMetadata("bytes left over after the last column").at(column, code));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_by_type() {
        // INT (no meta), VARCHAR(300 bytes) = 0x012C LE, DECIMAL(10,2), DOUBLE (pack 8),
        // STRING/ENUM (0xF7, pack 1), BIT(10) = 2 bits + 1 byte, DATETIME2(6), BLOB (2 length bytes).
        let types = [ct::LONG, ct::VARCHAR, ct::NEWDECIMAL, ct::DOUBLE, ct::STRING, ct::BIT, ct::DATETIME2, ct::BLOB];
        let meta = [0x2C, 0x01, 10, 2, 8, 0xF7, 1, 2, 1, 6, 2];
        let got = parse_column_metadata(&types, &meta).unwrap();
        assert_eq!(got, vec![0, 300, 10 | (2 << 8), 8, 0xF7 | (1 << 8), 2 | (1 << 8), 6, 2]);
    }

    #[test]
    fn empty_table() {
        assert_eq!(parse_column_metadata(&[], &[]).unwrap(), Vec::<u16>::new());
    }

    #[test]
    fn truncation_is_an_error_at_every_length() {
        let types = [ct::VARCHAR, ct::NEWDECIMAL, ct::TIME2];
        let meta = [0x40, 0x00, 12, 4, 3];
        assert!(parse_column_metadata(&types, &meta).is_ok());
        for cut in 0..meta.len() {
            let err = parse_column_metadata(&types, &meta[..cut]).unwrap_err();
            assert!(matches!(err, DecodeError::Column { reason: Reason::Truncated { .. }, .. }), "{err}");
        }
    }

    #[test]
    fn leftover_bytes_and_unknown_types_are_errors() {
        assert!(parse_column_metadata(&[ct::LONG], &[1]).is_err());
        let err = parse_column_metadata(&[ct::LONG, 100], &[]).unwrap_err();
        assert_eq!(err, Reason::UnsupportedType.at(1, 100));
        assert!(err.to_string().contains("type 100"));
        assert!(parse_column_metadata(&[ct::TYPED_ARRAY], &[ct::LONG]).is_err());
        assert!(parse_column_metadata(&[ct::VAR_STRING], &[0x10, 0x00]).is_err());
    }
}
