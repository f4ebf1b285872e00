//! The MySQL/MariaDB side of sluice: connecting as a replica, streaming and interpreting binlog
//! events, and reading table definitions. Nothing here knows about Kafka or record formats.

mod conn;
pub mod ddl;
mod error;
pub mod events;
mod gtid;
pub mod history;
pub mod probe;
mod reader;
mod schema;
pub mod snapshot;

pub use conn::{binlog_end, binlog_end_with_state, gtid_state_at, Flavor, ServerInfo, SourceOptions};
pub use error::SourceError;
pub use gtid::GtidState;
pub use history::SchemaHistory;
pub use reader::{seed_history, BinlogReader, CapturedTable, Rows, RowsBatch, StartAt, Step, TxnState};
pub use schema::{SchemaCache, TableFilter};
pub use sluice_binlog::DecodeError;
