//! Read-only questions a pre-check asks the source before any streaming: which privileges work,
//! how long binlogs are kept, which tables exist and whether they have a key, which replicas are
//! registered. Privileges are tested by *using* them (a refused statement is the only reliable
//! answer: roles, partial revokes and MariaDB's split privileges all make `SHOW GRANTS` text
//! hard to interpret).

use futures_util::StreamExt;
use mysql_async::{prelude::Queryable, BinlogStreamRequest, Conn, Error as MyError};

use crate::{SourceError, SourceOptions};

/// What trying a privileged statement showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Granted,
    /// The server refused it for lack of a privilege; its message.
    Denied(String),
}

/// Whether `err` is the server refusing a statement for lack of a privilege.
fn denial(err: &MyError) -> Option<String> {
    match err {
        // ER_ACCESS_DENIED_ERROR (MariaDB answers a binlog dump without REPLICATION SLAVE with
        // it), ER_DBACCESS_DENIED, ER_TABLEACCESS_DENIED, ER_COLUMNACCESS_DENIED,
        // ER_SPECIFIC_ACCESS_DENIED
        MyError::Server(e) if [1045, 1044, 1142, 1143, 1227].contains(&e.code) => Some(e.message.clone()),
        _ => None,
    }
}

/// The account the server authenticated us as, quoted for a GRANT: `'sluice'@'10.0.0.%'`.
pub async fn current_account(conn: &mut Conn, opts: &SourceOptions) -> Result<String, SourceError> {
    let err = |e| SourceError::from_mysql(e, &opts.addr(), &opts.user, "reading CURRENT_USER()");
    let account: String = conn.query_first("SELECT CURRENT_USER()").await.map_err(err)?.unwrap_or_default();
    Ok(match account.rsplit_once('@') {
        Some((user, host)) => format!("'{user}'@'{host}'"),
        None => format!("'{}'@'%'", opts.user),
    })
}

/// REPLICATION CLIENT (MariaDB ≥ 10.5: BINLOG MONITOR): reading the binlog position.
pub async fn probe_replication_client(conn: &mut Conn, opts: &SourceOptions) -> Result<Access, SourceError> {
    let err = |e| SourceError::from_mysql(e, &opts.addr(), &opts.user, "reading the binlog position");
    let result = match conn.query_drop("SHOW MASTER STATUS").await {
        // MySQL ≥ 8.4 knows only the new name.
        Err(MyError::Server(e)) if e.code == 1064 => conn.query_drop("SHOW BINARY LOG STATUS").await,
        other => other,
    };
    match result {
        Ok(()) => Ok(Access::Granted),
        Err(e) => denial(&e).map(Access::Denied).ok_or_else(|| err(e)),
    }
}

/// The binlog files on the source with their sizes (SHOW BINARY LOGS). `Ok(None)` when this
/// user may not list them.
pub async fn binary_logs(conn: &mut Conn, opts: &SourceOptions) -> Result<Option<Vec<(String, u64)>>, SourceError> {
    match conn.query::<mysql_async::Row, _>("SHOW BINARY LOGS").await {
        Ok(rows) => Ok(Some(
            rows.into_iter()
                .map(|r| (r.get::<String, _>(0).unwrap_or_default(), r.get::<u64, _>(1).unwrap_or(0)))
                .collect(),
        )),
        Err(e) if denial(&e).is_some() => Ok(None),
        Err(e) => Err(SourceError::from_mysql(e, &opts.addr(), &opts.user, "listing the binlogs")),
    }
}

/// REPLICATION SLAVE: asks for a binlog that cannot exist, without blocking. A server that
/// lets us register and answers "no such log" granted it; one that refuses access did not.
/// The request uses server_id 0, as `mysqlbinlog` does, so it never displaces a running
/// replica (or a running sluice task) that uses the configured server_id.
pub async fn probe_replication_slave(opts: &SourceOptions) -> Result<Access, SourceError> {
    let addr = opts.addr();
    let err = |e| SourceError::from_mysql(e, &addr, &opts.user, "requesting the binlog");
    let conn = opts.connect().await?;
    let request = BinlogStreamRequest::new(0)
        .with_non_blocking()
        .with_filename(b"sluice-precheck-no-such-log.000001")
        .with_pos(4);
    let mut stream = match conn.get_binlog_stream(request).await {
        Ok(stream) => stream,
        Err(e) => return denial(&e).map(Access::Denied).ok_or_else(|| err(e)),
    };
    let first = tokio::time::timeout(opts.connect_timeout, stream.next()).await;
    match first {
        Ok(Some(Err(e))) => match denial(&e) {
            Some(message) => Ok(Access::Denied(message)),
            // "Could not find first log file" and the like: the request itself was allowed.
            None if matches!(e, MyError::Server(_)) => Ok(Access::Granted),
            None => Err(err(e)),
        },
        // Events or the end of the stream: allowed.
        Ok(_) => Ok(Access::Granted),
        Err(_) => Err(SourceError::Unreachable { addr, reason: "no answer to a binlog request".into() }),
    }
}

/// What `SELECT ... LIMIT 0` on a table showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableAccess {
    Readable,
    Missing,
    Denied(String),
}

/// SELECT on one table, tested by reading no rows from it.
pub async fn probe_select(conn: &mut Conn, opts: &SourceOptions, db: &str, table: &str) -> Result<TableAccess, SourceError> {
    let sql = format!("SELECT * FROM {}.{} LIMIT 0", quote_ident(db), quote_ident(table));
    match conn.query_drop(sql).await {
        Ok(()) => Ok(TableAccess::Readable),
        // ER_NO_SUCH_TABLE, ER_BAD_DB_ERROR
        Err(MyError::Server(e)) if e.code == 1146 || e.code == 1049 => Ok(TableAccess::Missing),
        Err(e) => match denial(&e) {
            Some(message) => Ok(TableAccess::Denied(message)),
            None => Err(SourceError::from_mysql(e, &opts.addr(), &opts.user, &format!("reading {db}.{table}"))),
        },
    }
}

/// A base table as `information_schema` lists it to this user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub db: String,
    pub table: String,
    /// Has a PRIMARY KEY or a UNIQUE index.
    pub has_key: bool,
}

/// The base tables this user can see (outside the server's own schemas).
pub async fn list_tables(conn: &mut Conn, opts: &SourceOptions) -> Result<Vec<TableInfo>, SourceError> {
    let err = |e| SourceError::from_mysql(e, &opts.addr(), &opts.user, "listing tables");
    const SYSTEM: &str = "('information_schema', 'performance_schema', 'sys')";
    let tables: Vec<(String, String)> = conn
        .query(format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN {SYSTEM}"
        ))
        .await
        .map_err(err)?;
    let keyed: Vec<(String, String)> = conn
        .query(format!(
            "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME FROM information_schema.STATISTICS \
             WHERE NON_UNIQUE = 0 AND TABLE_SCHEMA NOT IN {SYSTEM}"
        ))
        .await
        .map_err(err)?;
    let keyed: std::collections::HashSet<(String, String)> = keyed.into_iter().collect();
    Ok(tables
        .into_iter()
        .map(|(db, table)| {
            let has_key = keyed.contains(&(db.clone(), table.clone()));
            TableInfo { db, table, has_key }
        })
        .collect())
}

/// How long the source keeps binlogs before purging them automatically; `None`: forever.
pub async fn binlog_retention(conn: &mut Conn, opts: &SourceOptions) -> Result<Option<u64>, SourceError> {
    let err = |e| SourceError::from_mysql(e, &opts.addr(), &opts.user, "reading server variables");
    let vars: Vec<(String, String)> = conn
        .query("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('binlog_expire_logs_seconds', 'expire_logs_days')")
        .await
        .map_err(err)?;
    let get = |name: &str| {
        vars.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.parse::<f64>().ok()).unwrap_or(0.0)
    };
    // binlog_expire_logs_seconds wins where it exists and is set (MySQL ≥ 8.0, MariaDB ≥ 10.6).
    let seconds = get("binlog_expire_logs_seconds");
    let days = get("expire_logs_days");
    Ok(if seconds > 0.0 {
        Some(seconds as u64)
    } else if days > 0.0 {
        Some((days * 86_400.0) as u64)
    } else {
        None
    })
}

/// Replicas registered with the source: (server_id, host). `Ok(None)` when this user may not
/// list them.
pub async fn replicas(conn: &mut Conn, opts: &SourceOptions) -> Result<Option<Vec<(u32, String)>>, SourceError> {
    let err = |e| SourceError::from_mysql(e, &opts.addr(), &opts.user, "listing replicas");
    let rows: Result<Vec<mysql_async::Row>, _> = match conn.query("SHOW SLAVE HOSTS").await {
        // MySQL ≥ 8.4 knows only SHOW REPLICAS.
        Err(MyError::Server(e)) if e.code == 1064 => conn.query("SHOW REPLICAS").await,
        other => other,
    };
    match rows {
        Ok(rows) => Ok(Some(
            rows.into_iter()
                .map(|r| (r.get::<u32, _>(0).unwrap_or(0), r.get::<Option<String>, _>(1).flatten().unwrap_or_default()))
                .collect(),
        )),
        Err(e) if denial(&e).is_some() => Ok(None),
        Err(e) => Err(err(e)),
    }
}

/// The heartbeat table's definition, for the operator to create it.
pub fn heartbeat_table_ddl(db: &str, table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {}.{} (server_id INT UNSIGNED NOT NULL PRIMARY KEY, beats BIGINT UNSIGNED NOT NULL DEFAULT 0, ts DATETIME NOT NULL)",
        quote_ident(db),
        quote_ident(table)
    )
}

/// Writes one heartbeat row (keyed by our server_id, so tasks can share the table). Each
/// write changes the row, so it always reaches the binlog. A missing table is created when
/// the user may.
pub async fn write_heartbeat(conn: &mut Conn, opts: &SourceOptions, db: &str, table: &str) -> Result<Access, SourceError> {
    let sql = format!(
        "INSERT INTO {}.{} (server_id, beats, ts) VALUES ({}, 1, NOW()) ON DUPLICATE KEY UPDATE beats = beats + 1, ts = NOW()",
        quote_ident(db),
        quote_ident(table),
        opts.server_id
    );
    let err = |e| SourceError::from_mysql(e, &opts.addr(), &opts.user, &format!("writing the heartbeat table {db}.{table}"));
    match conn.query_drop(&sql).await {
        Ok(()) => Ok(Access::Granted),
        Err(MyError::Server(e)) if e.code == 1146 => {
            match conn.query_drop(heartbeat_table_ddl(db, table)).await {
                Ok(()) => {}
                Err(e) => return denial(&e).map(Access::Denied).ok_or_else(|| err(e)),
            }
            match conn.query_drop(&sql).await {
                Ok(()) => Ok(Access::Granted),
                Err(e) => denial(&e).map(Access::Denied).ok_or_else(|| err(e)),
            }
        }
        Err(e) => match denial(&e) {
            Some(message) => Ok(Access::Denied(message)),
            None => Err(err(e)),
        },
    }
}

/// `name` as a backquoted identifier.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
