//! The one typed model of a change, shared by every stage of sluice.
//!
//! Data flows `source` → [`RowChange`] / [`DdlChange`] → `format` → `sink`. Values borrow from the
//! binlog event they were decoded from ([`Value`] is `Cow`-based), so decoding a row allocates only
//! where the wire form is not the output form (DECIMAL text, JSON text).
//!
//! Nothing here knows about MySQL connections, Avro or Kafka.

mod schema;
mod value;

pub use schema::{ColumnSchema, DataType, KeyInfo, TableSchema};
pub use value::Value;

/// A binlog coordinate: file name and byte offset inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BinlogPosition {
    pub file: String,
    pub offset: u64,
}

impl BinlogPosition {
    pub fn new(file: impl Into<String>, offset: u64) -> Self {
        Self { file: file.into(), offset }
    }

    /// The numeric suffix of the file name (`mysql-bin.000078` → 78), as DTS writes it in
    /// `sourcePosition`. Names without a numeric suffix give 0.
    pub fn file_index(&self) -> u64 {
        file_index(&self.file)
    }
}

/// The numeric suffix of a binlog file name (`mysql-bin.000078` → 78); 0 if there is none.
pub fn file_index(file: &str) -> u64 {
    file.rsplit_once('.').and_then(|(_, n)| n.parse().ok()).unwrap_or(0)
}

impl std::fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.offset)
    }
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowOp {
    Insert,
    Update,
    Delete,
}

/// Where and when a change happened at the source, and the id sluice gave it.
///
/// Kept separate from the row so one instance serves every row of a rows event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeMeta<'a> {
    /// Monotonic record id along the stream; deterministic for a given start checkpoint.
    pub id: i64,
    /// Source event time, UNIX seconds (binlog event header timestamp).
    pub source_timestamp: i64,
    /// Binlog file index of the event (see [`BinlogPosition::file_index`]).
    pub file_index: u64,
    /// Start offset of the event that carried the change.
    pub offset: u64,
    /// File index and offset from which a restart replays this change's whole transaction.
    pub safe_file_index: u64,
    pub safe_offset: u64,
    /// `server_id` of the server that wrote the event (from the event header).
    pub server_id: u32,
    /// Connection id of the writing session, when the binlog carries it (QUERY events).
    pub thread_id: Option<u32>,
    /// GTID of the enclosing transaction, textual (`uuid:n` for MySQL, `d-s-n` for MariaDB).
    pub gtid: Option<&'a str>,
    /// `SELECT VERSION()` of the source server.
    pub server_version: &'a str,
    /// Wall-clock time (epoch milliseconds) at which sluice read the event.
    pub read_time_ms: i64,
    /// A row copied by the initial load (or a table definition sent with it), not a binlog
    /// change.
    pub initial_load: bool,
}

/// One row change, ready to be formatted. Images are positional and line up with
/// `table.columns`.
#[derive(Debug, Clone, Copy)]
pub struct RowChange<'a> {
    pub meta: &'a ChangeMeta<'a>,
    pub table: &'a TableSchema,
    pub op: RowOp,
    /// Present for UPDATE and DELETE.
    pub before: Option<&'a [Value<'a>]>,
    /// Present for INSERT and UPDATE.
    pub after: Option<&'a [Value<'a>]>,
}

/// A DDL statement seen in the binlog.
#[derive(Debug, Clone, Copy)]
pub struct DdlChange<'a> {
    pub meta: &'a ChangeMeta<'a>,
    /// Default database of the statement (the QUERY event's schema), may be empty.
    pub db: &'a str,
    /// Table the statement is about, when known.
    pub table: Option<&'a str>,
    pub sql: &'a str,
}
