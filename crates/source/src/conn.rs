//! Connecting to the source and reading what sluice must know about it before streaming.

use std::{fmt, time::Duration};

use mysql_async::{prelude::Queryable, Conn, OptsBuilder};
use sluice_event::BinlogPosition;

use crate::SourceError;

/// How to reach the source. `Debug` never shows the password.
#[derive(Clone)]
pub struct SourceOptions {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// The server id sluice registers with as a replica.
    pub server_id: u32,
    pub connect_timeout: Duration,
    /// How often the source sends a heartbeat event while the binlog is idle.
    pub heartbeat: Duration,
}

impl fmt::Debug for SourceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("server_id", &self.server_id)
            .finish_non_exhaustive()
    }
}

impl SourceOptions {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn mysql_opts(&self) -> OptsBuilder {
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            // Stay on the TCP connection we were asked for: on loopback mysql_async would
            // otherwise silently switch to the server's Unix socket.
            .prefer_socket(false)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .stmt_cache_size(0)
    }

    /// Opens a connection, classifying failures into operator-facing errors.
    pub async fn connect(&self) -> Result<Conn, SourceError> {
        let addr = self.addr();
        match tokio::time::timeout(self.connect_timeout, Conn::new(self.mysql_opts())).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(SourceError::from_mysql(e, &addr, &self.user, "connecting")),
            Err(_) => Err(SourceError::Unreachable {
                addr,
                reason: format!("no answer within {:?}", self.connect_timeout),
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MySql,
    MariaDb,
}

/// What the source is and how it is configured for replication.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `SELECT VERSION()`, e.g. `10.11.6-MariaDB-0+deb12u1-log` or `8.0.34`.
    pub version: String,
    pub flavor: Flavor,
    pub server_id: u32,
    pub log_bin: bool,
    pub binlog_format: String,
    /// Empty on servers without the variable (MySQL 5.5 and older always log full rows).
    pub binlog_row_image: String,
    pub binlog_row_metadata: String,
    pub gtid_mode: bool,
    pub lower_case_table_names: u32,
}

impl ServerInfo {
    pub async fn read(conn: &mut Conn, opts: &SourceOptions) -> Result<Self, SourceError> {
        let err = |e| SourceError::from_mysql(e, &opts.addr(), &opts.user, "reading server variables");
        let version: String = conn.query_first("SELECT VERSION()").await.map_err(err)?.unwrap_or_default();
        let vars: Vec<(String, String)> = conn
            .query(
                "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('server_id', 'log_bin', \
                 'binlog_format', 'binlog_row_image', 'binlog_row_metadata', 'gtid_mode', \
                 'lower_case_table_names')",
            )
            .await
            .map_err(err)?;
        let get = |name: &str| {
            vars.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).unwrap_or_default()
        };
        Ok(Self {
            flavor: if version.to_ascii_lowercase().contains("mariadb") { Flavor::MariaDb } else { Flavor::MySql },
            version,
            server_id: get("server_id").parse().unwrap_or(0),
            log_bin: get("log_bin").eq_ignore_ascii_case("ON") || get("log_bin") == "1",
            binlog_format: get("binlog_format").to_ascii_uppercase(),
            binlog_row_image: get("binlog_row_image").to_ascii_uppercase(),
            binlog_row_metadata: get("binlog_row_metadata").to_ascii_uppercase(),
            gtid_mode: get("gtid_mode").eq_ignore_ascii_case("ON"),
            lower_case_table_names: get("lower_case_table_names").parse().unwrap_or(0),
        })
    }

    /// The settings without which row-based capture cannot be correct.
    pub fn check_replication_settings(&self, our_server_id: u32) -> Result<(), SourceError> {
        if !self.log_bin {
            return Err(SourceError::BinlogDisabled);
        }
        if self.binlog_format != "ROW" {
            return Err(SourceError::BinlogFormat { found: self.binlog_format.clone() });
        }
        if !self.binlog_row_image.is_empty() && self.binlog_row_image != "FULL" {
            return Err(SourceError::RowImage { found: self.binlog_row_image.clone() });
        }
        if our_server_id == 0 || our_server_id == self.server_id {
            return Err(SourceError::BadServerId { source_id: self.server_id });
        }
        Ok(())
    }
}

/// The position at the end of the source's binlog (where new changes will be written).
pub async fn binlog_end(conn: &mut Conn, opts: &SourceOptions) -> Result<BinlogPosition, SourceError> {
    Ok(binlog_end_with_gtids(conn, opts).await?.0)
}

/// The GTID state of the source at `position`: MariaDB computes it for any position
/// (BINLOG_GTID_POS); MySQL only tells it for the binlog end (read with the same statement as the
/// position, so the two agree). `None` where it cannot be known.
pub async fn gtid_state_at(
    conn: &mut Conn,
    opts: &SourceOptions,
    info: &ServerInfo,
    position: &BinlogPosition,
) -> Result<Option<crate::GtidState>, SourceError> {
    let err = |e| SourceError::from_mysql(e, &opts.addr(), &opts.user, "reading the GTID position");
    match info.flavor {
        Flavor::MariaDb => {
            let pos: Option<Option<String>> = conn
                .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&position.file, position.offset))
                .await
                .map_err(err)?;
            Ok(pos.flatten().and_then(|p| crate::GtidState::parse(Flavor::MariaDb, &p).ok()))
        }
        Flavor::MySql if info.gtid_mode => {
            let (end, executed) = binlog_end_with_gtids(conn, opts).await?;
            Ok(match (end == *position, executed) {
                (true, Some(set)) => crate::GtidState::parse(Flavor::MySql, &set).ok(),
                _ => None,
            })
        }
        Flavor::MySql => Ok(None),
    }
}

/// The binlog end and the GTID state there, read together (MySQL with GTIDs: from one
/// statement, so they belong to each other even while transactions commit).
pub async fn binlog_end_with_state(
    conn: &mut Conn,
    opts: &SourceOptions,
    info: &ServerInfo,
) -> Result<(BinlogPosition, Option<crate::GtidState>), SourceError> {
    match info.flavor {
        Flavor::MySql if info.gtid_mode => {
            let (end, executed) = binlog_end_with_gtids(conn, opts).await?;
            Ok((end, executed.and_then(|set| crate::GtidState::parse(Flavor::MySql, &set).ok())))
        }
        _ => {
            let end = binlog_end(conn, opts).await?;
            let state = gtid_state_at(conn, opts, info, &end).await?;
            Ok((end, state))
        }
    }
}

async fn binlog_end_with_gtids(
    conn: &mut Conn,
    opts: &SourceOptions,
) -> Result<(BinlogPosition, Option<String>), SourceError> {
    let err = |e| SourceError::from_mysql(e, &opts.addr(), &opts.user, "reading the binlog position");
    // MySQL 8.4 removed SHOW MASTER STATUS; MariaDB and older MySQL lack the new name.
    let row: Option<mysql_async::Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(row) => row,
        Err(mysql_async::Error::Server(e)) if e.code == 1064 => {
            conn.query_first("SHOW BINARY LOG STATUS").await.map_err(err)?
        }
        Err(e) => return Err(err(e)),
    };
    let row = row.ok_or(SourceError::BinlogDisabled)?;
    let file: String = row.get(0).unwrap_or_default();
    let pos: u64 = row.get(1).unwrap_or(4);
    // MySQL 5.6+ adds Executed_Gtid_Set as the fifth column.
    let executed: Option<String> = (row.len() >= 5).then(|| row.get::<Option<String>, _>(4).flatten()).flatten();
    Ok((BinlogPosition::new(file, pos), executed.map(|s| s.replace('\n', ""))))
}
