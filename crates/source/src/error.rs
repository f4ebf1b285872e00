//! Source errors. Every variant renders as one line that names the cause *and* the fix, because
//! these lines are what an operator sees when `sluice run` stops.
//!
//! Errors are either *definite* (retrying cannot help: bad credentials, wrong server settings,
//! a purged binlog) or *transient* (the connection dropped; reconnecting from the last checkpoint
//! is the cure). [`SourceError::is_transient`] tells them apart.

use mysql_async::{Error as MyError, IoError};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot reach MySQL at {addr}: {reason}. Fix: check [source] host and port, and that the server is running and listening there")]
    Unreachable { addr: String, reason: String },

    #[error("MySQL at {addr} rejected the login of user '{user}' ({message}). Fix: check [source] user and password (or password_env)")]
    AuthFailed { addr: String, user: String, message: String },

    #[error("MySQL user '{user}' lacks a privilege: {message}. Fix: run on the source: GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '{user}'@'<client host>';")]
    MissingPrivilege { user: String, message: String },

    #[error("binary logging is OFF on the source. Fix: add `log_bin = mysql-bin`, `binlog_format = ROW` and a unique `server_id` to the server's my.cnf and restart it")]
    BinlogDisabled,

    #[error("the source writes binlog_format={found}, sluice needs ROW. Fix: SET GLOBAL binlog_format = 'ROW'; and set `binlog_format = ROW` in my.cnf (sessions already open keep the old format until they reconnect)")]
    BinlogFormat { found: String },

    #[error("the source writes binlog_row_image={found}, sluice needs FULL (complete before/after images). Fix: SET GLOBAL binlog_row_image = 'FULL'; and set `binlog_row_image = FULL` in my.cnf")]
    RowImage { found: String },

    #[error("the binlog position {position} is no longer on the source ({message}). The binlog was purged or the position is wrong. Fix: start from a position listed by SHOW BINARY LOGS (clear the task's checkpoint and re-run the initial load to resync)")]
    BinlogUnavailable { position: String, message: String },

    #[error("another replica with server_id {server_id} is connected to the source ({message}). Fix: give [source] server_id a value no other replica or server uses")]
    ServerIdClash { server_id: u32, message: String },

    #[error("server_id must be > 0 and differ from the source's own server_id ({source_id}). Fix: set [source] server_id to an unused value")]
    BadServerId { source_id: u32 },

    #[error("cannot read the schema of {table}: {reason}")]
    Schema { table: String, reason: String },

    #[error("cannot decode {table} at {position} with a schema sluice can prove: {reason}. sluice stops rather than guess which value belongs to which column. Fix: {fix}")]
    SchemaMismatch { table: String, position: String, reason: String, fix: String },

    #[error("{0}. Fix: check the permissions and free space of the task's data_dir; moving the file away makes sluice rebuild it from the live schema, which is only right when no DDL ran after the checkpoint")]
    History(#[from] crate::history::HistoryError),

    #[error("cannot decode the binlog event of {table} at {position}: {reason}. The binlog may be corrupt or use a format sluice does not know; report it with the output of `mysqlbinlog -v --start-position` at that position")]
    Decode { table: String, position: String, reason: String },

    #[error("{what} at {position}. Fix: {fix}")]
    Unsupported { what: String, position: String, fix: String },

    #[error("lost the connection to MySQL at {addr} ({reason}); sluice reconnects from its last checkpoint")]
    ConnectionLost { addr: String, reason: String },

    #[error("the definition of {table} changed while the initial load read it ({reason}); the chunk is read again with the new definition")]
    DefinitionChanged { table: String, reason: String },

    #[error("MySQL at {addr} returned an error while {doing}: {error}")]
    Server { addr: String, doing: String, error: String },
}

impl SourceError {
    /// Whether reconnecting (from the last checkpoint) may cure this error.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::ConnectionLost { .. } | Self::Unreachable { .. })
    }

    /// For errors met after the login succeeded: an "access denied" there (MariaDB answers a
    /// binlog dump without REPLICATION SLAVE with error 1045) means a missing privilege.
    pub(crate) fn after_login(self) -> Self {
        match self {
            Self::AuthFailed { user, message, .. } => Self::MissingPrivilege {
                user,
                message: format!("{message} while requesting the binlog (needs REPLICATION SLAVE)"),
            },
            other => other,
        }
    }

    /// Classifies a driver error met while `doing` something against `addr` as `user`.
    pub(crate) fn from_mysql(err: MyError, addr: &str, user: &str, doing: &str) -> Self {
        match err {
            MyError::Server(e) => match e.code {
                // ER_ACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR with a password
                1045 | 1698 => Self::AuthFailed {
                    addr: addr.into(),
                    user: user.into(),
                    message: e.message,
                },
                // ER_SPECIFIC_ACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR
                1227 | 1142 | 1044 | 1143 => {
                    Self::MissingPrivilege { user: user.into(), message: e.message }
                }
                // ER_MASTER_FATAL_ERROR_READING_BINLOG
                1236 if e.message.contains("same server") || e.message.contains("server_uuid/server_id") => {
                    Self::ServerIdClash { server_id: 0, message: e.message }
                }
                1236 => Self::BinlogUnavailable { position: String::new(), message: e.message },
                // ER_CONNECTION_ALREADY_EXISTS (MariaDB: a replica with the same server_id)
                4052 => Self::ServerIdClash { server_id: 0, message: e.message },
                _ => Self::Server { addr: addr.into(), doing: doing.into(), error: e.to_string() },
            },
            MyError::Io(IoError::Io(io)) => {
                use std::io::ErrorKind::*;
                match io.kind() {
                    ConnectionRefused | NotFound | AddrNotAvailable | HostUnreachable
                    | NetworkUnreachable | TimedOut => {
                        Self::Unreachable { addr: addr.into(), reason: io.to_string() }
                    }
                    _ => Self::ConnectionLost { addr: addr.into(), reason: io.to_string() },
                }
            }
            other => Self::ConnectionLost { addr: addr.into(), reason: other.to_string() },
        }
    }
}
