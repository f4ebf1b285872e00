//! The MySQL/MariaDB side of sluice: connecting as a replica, streaming and interpreting binlog
//! events, and reading table definitions. Nothing here knows about Kafka or record formats.

mod conn;
mod error;
pub mod events;
pub mod probe;
mod reader;
mod schema;

pub use conn::{binlog_end, Flavor, ServerInfo, SourceOptions};
pub use error::SourceError;
pub use reader::{BinlogReader, CapturedTable, Rows, RowsBatch, Step, TxnState};
pub use schema::{SchemaCache, TableFilter};
pub use sluice_binlog::DecodeError;
