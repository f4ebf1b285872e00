//! The one error type of this crate.

use crate::column_type;

/// Why a piece of binlog data could not be decoded.
///
/// Every variant says where the problem is; for column values that is the column index (position
/// in the TABLE_MAP) and its binlog type code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A column's metadata or value is bad.
    #[error("column {column} ({} type {type_code}): {reason}", column_type::name(*type_code))]
    Column { column: usize, type_code: u8, reason: Reason },
    /// `types`, `metas` and `unsigned` given to [`build_plan`](crate::build_plan) differ in length.
    #[error("column count mismatch: {types} types, {metas} metadata entries, {unsigned} signedness flags")]
    ColumnCount { types: usize, metas: usize, unsigned: usize },
    /// The columns-present bitmap handed to [`RowsReader::read_image`](crate::RowsReader::read_image)
    /// is shorter than the table needs.
    #[error("columns-present bitmap has {len} bytes, {columns} columns need {needed}")]
    PresentBitmap { columns: usize, len: usize, needed: usize },
    /// The row image ends inside its null bitmap.
    #[error("row image at offset {offset}: null bitmap needs {needed} bytes, {available} left")]
    NullBitmap { offset: usize, needed: usize, available: usize },
    /// A row image with no present column carries no bytes, so the rows data cannot advance.
    #[error("row image at offset {offset} has no present column")]
    EmptyImage { offset: usize },
    /// An UPDATE row's before image is the last thing in the rows data.
    #[error("UPDATE row at offset {offset} has no after image")]
    MissingAfterImage { offset: usize },
    /// A non-row event body (MariaDB GTID, GTID_LIST, BINLOG_CHECKPOINT) is malformed.
    #[error("{event} event: {reason}")]
    Event { event: &'static str, reason: Reason },
}

/// The specific problem behind a [`DecodeError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The data ends before the value does.
    #[error("truncated: needs {needed} bytes, {available} left")]
    Truncated { needed: usize, available: usize },
    /// A length field announces more bytes than the data holds, or an impossible size.
    #[error("bad length {length}: {available} bytes left")]
    BadLength { length: u64, available: usize },
    /// The bytes are there but do not form a valid value of the type.
    #[error("invalid value: {0}")]
    InvalidValue(&'static str),
    /// The TABLE_MAP metadata of the column is not valid for its type.
    #[error("bad column metadata: {0}")]
    BadMetadata(&'static str),
    /// The type code is not one this crate decodes (it never guesses).
    #[error("unsupported column type")]
    UnsupportedType,
}

impl Reason {
    pub(crate) fn at(self, column: usize, type_code: u8) -> DecodeError {
        DecodeError::Column { column, type_code, reason: self }
    }
}
