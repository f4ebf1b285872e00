//! Reading a table's current rows for the initial load, in primary-key chunks, each chunk in a
//! consistent snapshot of its own, together with the binlog position that snapshot corresponds
//! to. Nothing here knows about Kafka or records; the orchestration is `sluice::load`.
//!
//! # Chunks
//! A keyed table (a primary key, or a unique key over NOT NULL columns, of types whose order SQL
//! literals can express) is read by keyset pagination: chunk *i* is
//! `WHERE (k1, k2, …) > (last key of chunk i-1) ORDER BY k1, k2, … LIMIT chunk_size`, so chunk
//! *i* covers the key range `(last(i-1), last(i)]`, the first chunk starts at −∞ and the chunk
//! that returns fewer than `chunk_size` rows is the last one and covers everything above (the
//! open-ended range is split as the table grows: it is read last, with a `LIMIT`, so memory never
//! holds more than one chunk). Every key therefore belongs to exactly one chunk.
//!
//! Each chunk runs in its own `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`: no lock
//! is taken (plain InnoDB consistent reads), so read-only replicas work. On MariaDB the session
//! status `binlog_snapshot_file` / `binlog_snapshot_position` then gives the exact binlog
//! position of the snapshot: every transaction before it is in the chunk, none after it is
//! (MariaDB commits in binlog order and takes the snapshot under the commit-order lock). MySQL
//! has no such status: there the position is `None` and the caller must assume nothing about
//! which binlog changes the chunk saw.
//!
//! A table without a usable key is read in one ordered scan, in one snapshot, streamed in
//! batches of `chunk_size` rows through a bounded channel.
//!
//! # Values
//! Columns are selected so their text form converts exactly to the [`Value`] the binlog decoder
//! produces: `CAST(bit AS UNSIGNED)`, `enum+0`, `set+0`, `UNIX_TIMESTAMP(timestamp)` (session
//! time zone UTC), the rest as they are, with `character_set_results = binary` so strings keep
//! their bytes in the column's character set.

use std::{borrow::Cow, sync::Arc};

use mysql_async::{prelude::Queryable, Conn, Row};
use sluice_event::{BinlogPosition, DataType, TableSchema, Value};

use crate::{Flavor, SourceError, SourceOptions};

/// One chunk of rows, read in one consistent snapshot.
#[derive(Debug)]
pub struct Chunk {
    /// Rows in key order, each lined up with the table's columns.
    pub rows: Vec<Vec<Value<'static>>>,
    /// The binlog position of the snapshot (MariaDB); `None` where the server cannot say.
    pub position: Option<BinlogPosition>,
    /// MySQL with GTIDs: `gtid_executed` read just before the snapshot began. Every
    /// transaction in it is in the chunk (a GTID is added only after its transaction committed);
    /// transactions outside it may or may not be.
    pub gtids: Option<String>,
    /// Fewer rows than asked for: this chunk covers everything above its lower bound.
    pub last: bool,
    /// About how many bytes the rows take in memory.
    pub bytes: usize,
}

/// Reads one table's rows.
pub struct TableReader {
    conn: Conn,
    opts: SourceOptions,
    flavor: Flavor,
    schema: Arc<TableSchema>,
    select_list: String,
    /// Key column positions, when the table can be chunked by key.
    key: Option<Vec<usize>>,
    /// MySQL with `gtid_mode = ON`: each snapshot notes the GTIDs it surely holds.
    gtid_mode: bool,
}

fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Whether values of this type can be chunk bounds (written back as exact SQL literals).
fn chunkable(t: DataType) -> bool {
    use DataType::*;
    matches!(
        t,
        TinyInt | SmallInt | MediumInt | Int | BigInt | Decimal | Year | Date | DateTime | Time | Char | VarChar | Binary | VarBinary
    )
}

impl TableReader {
    /// Opens a connection for reading `schema`'s rows.
    pub async fn open(opts: &SourceOptions, flavor: Flavor, schema: Arc<TableSchema>) -> Result<Self, SourceError> {
        let mut conn = opts.connect().await?;
        let err = |e| SourceError::from_mysql(e, &opts.addr(), &opts.user, "preparing the initial-load session");
        for sql in [
            "SET SESSION time_zone = '+00:00'",
            "SET SESSION character_set_results = binary",
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        ] {
            conn.query_drop(sql).await.map_err(err)?;
        }
        let select_list = schema
            .columns
            .iter()
            .map(|c| {
                let q = quote_ident(&c.name);
                match c.data_type {
                    DataType::Bit => format!("CAST({q} AS UNSIGNED)"),
                    DataType::Enum | DataType::Set => format!("{q}+0"),
                    DataType::Timestamp => format!("UNIX_TIMESTAMP({q})"),
                    _ => q,
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let key = schema.row_key().map(|k| k.columns.clone()).filter(|cols| {
            cols.iter().all(|&i| schema.columns.get(i).is_some_and(|c| !c.nullable && chunkable(c.data_type)))
        });
        let gtid_mode = match flavor {
            Flavor::MySql => {
                let mode: Option<String> = conn.query_first("SELECT @@GLOBAL.gtid_mode").await.map_err(err)?;
                mode.is_some_and(|m| m.eq_ignore_ascii_case("ON"))
            }
            Flavor::MariaDb => false,
        };
        Ok(Self { conn, opts: opts.clone(), flavor, schema, select_list, key, gtid_mode })
    }

    /// Key column positions, when the table is read in key chunks.
    pub fn key(&self) -> Option<&[usize]> {
        self.key.as_deref()
    }

    /// A one-column integer key's lowest and highest value now (no snapshot: for splitting
    /// the key space into ranges), or `None` (another key, or an empty table).
    pub async fn integer_key_bounds(&mut self) -> Result<Option<(i128, i128)>, SourceError> {
        let Some(&[k]) = self.key.as_deref() else { return Ok(None) };
        let col = &self.schema.columns[k];
        if !matches!(col.data_type, DataType::TinyInt | DataType::SmallInt | DataType::MediumInt | DataType::Int | DataType::BigInt) {
            return Ok(None);
        }
        let sql = format!(
            "SELECT CAST(MIN({c}) AS CHAR), CAST(MAX({c}) AS CHAR) FROM {}.{}",
            quote_ident(&self.schema.db),
            quote_ident(&self.schema.table),
            c = quote_ident(&col.name)
        );
        let row: Option<(Option<String>, Option<String>)> = self.conn.query_first(sql).await.map_err(self.err("reading the key range of"))?;
        Ok(match row {
            Some((Some(lo), Some(hi))) => lo.parse().ok().zip(hi.parse().ok()),
            _ => None,
        })
    }

    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    fn err(&self, what: &str) -> impl Fn(mysql_async::Error) -> SourceError + '_ {
        let what = format!("{what} {}", self.schema.qualified_name());
        move |e| SourceError::from_mysql(e, &self.opts.addr(), &self.opts.user, &what)
    }

    /// Reads the chunk after `after` (the last key of the previous chunk; `None`: the first).
    /// With `upper` (the last key of a key range, inclusive), the chunk stays within the range
    /// and is `last` when it reaches the range's end.
    pub async fn read_chunk(
        &mut self,
        after: Option<&[Value<'static>]>,
        upper: Option<&[Value<'static>]>,
        limit: usize,
    ) -> Result<Chunk, SourceError> {
        let key = self.key.clone().expect("read_chunk on a keyed table");
        let cols: Vec<String> = key.iter().map(|&i| quote_ident(&self.schema.columns[i].name)).collect();
        let mut sql = format!(
            "SELECT {} FROM {}.{}",
            self.select_list,
            quote_ident(&self.schema.db),
            quote_ident(&self.schema.table)
        );
        let mut conditions = Vec::new();
        for (bound, op) in [(after, ">"), (upper, "<=")] {
            if let Some(bound) = bound {
                let lits: Vec<String> =
                    key.iter().zip(bound).map(|(&i, v)| literal(&self.schema, i, v)).collect::<Result<_, _>>()?;
                conditions.push(format!("({}) {op} ({})", cols.join(", "), lits.join(", ")));
            }
        }
        if !conditions.is_empty() {
            sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", cols.join(", ")));
        let gtids = self.executed_gtids().await?;
        self.begin().await?;
        let position = self.snapshot_position().await?;
        // The first statement on the table takes its metadata lock until COMMIT: the columns
        // seen here are the ones the chunk is read with.
        let probe = format!("SELECT * FROM {}.{} LIMIT 0", quote_ident(&self.schema.db), quote_ident(&self.schema.table));
        let columns = match self.conn.query_iter(probe).await {
            Ok(result) => {
                let names: Vec<String> = result.columns_ref().iter().map(|c| c.name_str().into_owned()).collect();
                result.drop_result().await.map_err(self.err("reading a chunk of"))?;
                names
            }
            Err(e) => return Err(self.chunk_error(e).await),
        };
        // Added or moved columns show here; dropped or renamed ones fail the chunk query. (`*`
        // leaves out invisible columns, so the names must only appear in the schema's order.)
        let mut known = self.schema.columns.iter();
        if !columns.iter().all(|n| known.any(|c| c.name == *n)) {
            let _ = self.conn.query_drop("COMMIT").await;
            return Err(SourceError::DefinitionChanged {
                table: self.schema.qualified_name(),
                reason: format!("its columns are now {}", columns.join(", ")),
            });
        }
        let rows: Vec<Row> = match self.conn.query(sql).await {
            Ok(rows) => rows,
            Err(e) => return Err(self.chunk_error(e).await),
        };
        self.conn.query_drop("COMMIT").await.map_err(self.err("reading a chunk of"))?;
        let last = rows.len() < limit;
        let mut bytes = 0;
        let rows = rows.into_iter().map(|r| convert_row(&self.schema, r, &mut bytes)).collect::<Result<Vec<_>, _>>()?;
        Ok(Chunk { rows, position, gtids, last, bytes })
    }

    /// A failed chunk query: a table altered, rebuilt or dropped since the snapshot began is a
    /// [`SourceError::DefinitionChanged`] (the caller reads the definition again).
    async fn chunk_error(&mut self, e: mysql_async::Error) -> SourceError {
        let _ = self.conn.query_drop("ROLLBACK").await;
        match &e {
            // ER_TABLE_DEF_CHANGED, ER_BAD_FIELD_ERROR, ER_NO_SUCH_TABLE
            mysql_async::Error::Server(s) if matches!(s.code, 1412 | 1054 | 1146) => {
                SourceError::DefinitionChanged { table: self.schema.qualified_name(), reason: s.message.clone() }
            }
            _ => self.err("reading a chunk of")(e),
        }
    }

    /// MySQL with GTIDs: `gtid_executed`, to be read right before a snapshot begins.
    async fn executed_gtids(&mut self) -> Result<Option<String>, SourceError> {
        if !self.gtid_mode {
            return Ok(None);
        }
        let set: Option<String> = self.conn.query_first("SELECT @@GLOBAL.gtid_executed").await.map_err(self.err("reading the GTIDs before a snapshot of"))?;
        Ok(set.map(|s| s.replace(['\n', ' '], "")))
    }

    async fn begin(&mut self) -> Result<(), SourceError> {
        // READ ONLY: no transaction id is taken, and it works on a read-only replica.
        self.conn
            .query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY").await.map_err(self.err("starting a snapshot of"))
    }

    /// MariaDB: the binlog position of the open consistent snapshot.
    async fn snapshot_position(&mut self) -> Result<Option<BinlogPosition>, SourceError> {
        if self.flavor != Flavor::MariaDb {
            return Ok(None);
        }
        let vars: Vec<(String, Vec<u8>)> = self
            .conn
            .query("SHOW SESSION STATUS WHERE Variable_name IN ('binlog_snapshot_file', 'binlog_snapshot_position')")
            .await
            .map_err(self.err("reading the snapshot position of"))?;
        let get = |n: &str| vars.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        Ok(match (get("binlog_snapshot_file"), get("binlog_snapshot_position").and_then(|p| p.parse().ok())) {
            (Some(f), Some(p)) if !f.is_empty() => Some(BinlogPosition::new(f, p)),
            _ => None,
        })
    }

    /// Reads a table without a usable key in one snapshot: the snapshot's position and GTIDs
    /// (as in [`Chunk`]), and a receiver of row batches of at most `batch` rows or about
    /// `max_bytes` (the reading stops when it is dropped).
    #[allow(clippy::type_complexity)]
    pub async fn scan(
        mut self,
        batch: usize,
        max_bytes: usize,
    ) -> Result<(Option<BinlogPosition>, Option<String>, tokio::sync::mpsc::Receiver<Result<Vec<Vec<Value<'static>>>, SourceError>>), SourceError> {
        let gtids = self.executed_gtids().await?;
        self.begin().await?;
        let position = self.snapshot_position().await?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            let sql = format!("SELECT {} FROM {}.{}", self.select_list, quote_ident(&self.schema.db), quote_ident(&self.schema.table));
            let (addr, user, name) = (self.opts.addr(), self.opts.user.clone(), self.schema.qualified_name());
            let err = |e| SourceError::from_mysql(e, &addr, &user, &format!("scanning {name}"));
            let schema = self.schema.clone();
            let result = async {
                let mut result = self.conn.query_iter(sql).await.map_err(err)?;
                let mut rows = Vec::with_capacity(batch);
                let mut bytes = 0;
                while let Some(row) = result.next().await.map_err(err)? {
                    rows.push(convert_row(&schema, row, &mut bytes)?);
                    if rows.len() >= batch || bytes >= max_bytes {
                        bytes = 0;
                        if tx.send(Ok(std::mem::take(&mut rows))).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                drop(result);
                if !rows.is_empty() {
                    let _ = tx.send(Ok(rows)).await;
                }
                Ok::<_, SourceError>(())
            }
            .await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok((position, gtids, rx))
    }
}

/// `SHOW CREATE TABLE` of one table.
pub async fn show_create(opts: &SourceOptions, db: &str, table: &str) -> Result<String, SourceError> {
    let mut conn = opts.connect().await?;
    let row: Option<(String, String)> = conn
        .query_first(format!("SHOW CREATE TABLE {}.{}", quote_ident(db), quote_ident(table)))
        .await
        .map_err(|e| SourceError::from_mysql(e, &opts.addr(), &opts.user, &format!("reading the definition of {db}.{table}")))?;
    Ok(row.map(|(_, sql)| sql).unwrap_or_default())
}

/// An exact SQL literal for a key value of column `i` (see [`chunkable`]).
fn literal(schema: &TableSchema, i: usize, v: &Value<'_>) -> Result<String, SourceError> {
    let col = &schema.columns[i];
    Ok(match v {
        Value::Int(n) => n.to_string(),
        Value::UInt(n) => n.to_string(),
        Value::Year(n) => n.to_string(),
        Value::Decimal(d) if d.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') => d.to_string(),
        Value::Date { year, month, day } => format!("'{year:04}-{month:02}-{day:02}'"),
        Value::DateTime { year, month, day, hour, minute, second, micros } => {
            format!("'{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{micros:06}'")
        }
        Value::Time { negative, hours, minutes, seconds, micros } => {
            format!("'{}{hours}:{minutes:02}:{seconds:02}.{micros:06}'", if *negative { "-" } else { "" })
        }
        Value::Bytes(b) => {
            let hex: String = b.iter().map(|b| format!("{b:02X}")).collect();
            match col.charset.as_deref() {
                // Coercible literal: the comparison uses the column's collation.
                Some(cs) if cs != "binary" && cs.bytes().all(|c| c.is_ascii_alphanumeric()) => format!("_{cs} X'{hex}'"),
                _ => format!("X'{hex}'"),
            }
        }
        other => {
            return Err(SourceError::Schema {
                table: schema.qualified_name(),
                reason: format!("key column {} holds {other:?}, which cannot bound a chunk", col.name),
            })
        }
    })
}

/// Converts one row; adds its approximate size in memory to `size`.
fn convert_row(schema: &TableSchema, row: Row, size: &mut usize) -> Result<Vec<Value<'static>>, SourceError> {
    let values = row.unwrap_raw();
    *size += std::mem::size_of::<Vec<Value<'static>>>() + values.len() * std::mem::size_of::<Value<'static>>();
    schema
        .columns
        .iter()
        .zip(values)
        .map(|(col, v)| {
            let bytes = match v {
                None | Some(mysql_async::Value::NULL) => return Ok(Value::Null),
                Some(mysql_async::Value::Bytes(b)) => b,
                Some(other) => other.as_sql(true).into_bytes(),
            };
            *size += bytes.len();
            convert(col, bytes).ok_or_else(|| SourceError::Schema {
                table: schema.qualified_name(),
                reason: format!("column {} ({}) read an unexpected value", col.name, col.column_type),
            })
        })
        .collect()
}

/// Converts one column's text form (as selected by [`TableReader`]) to its binlog value.
pub fn convert(col: &sluice_event::ColumnSchema, bytes: Vec<u8>) -> Option<Value<'static>> {
    use DataType::*;
    let text = || std::str::from_utf8(&bytes).ok().map(str::trim);
    Some(match col.data_type {
        TinyInt | SmallInt | MediumInt | Int | BigInt if col.unsigned => Value::UInt(text()?.parse().ok()?),
        TinyInt | SmallInt | MediumInt | Int | BigInt => Value::Int(text()?.parse().ok()?),
        Decimal => Value::Decimal(Cow::Owned(text()?.to_string())),
        Float => Value::Float(text()?.parse().ok()?),
        Double => Value::Double(text()?.parse().ok()?),
        Bit => Value::Bit(text()?.parse().ok()?),
        Year => Value::Year(text()?.parse().ok()?),
        Enum => Value::Enum(text()?.parse().ok()?),
        Set => Value::Set(text()?.parse().ok()?),
        Date => {
            let t = text()?;
            Value::Date { year: t.get(0..4)?.parse().ok()?, month: t.get(5..7)?.parse().ok()?, day: t.get(8..10)?.parse().ok()? }
        }
        DateTime => {
            let t = text()?;
            let (date, time) = t.split_once(' ')?;
            let (h, m, s, micros) = parse_hms(time)?;
            Value::DateTime {
                year: date.get(0..4)?.parse().ok()?,
                month: date.get(5..7)?.parse().ok()?,
                day: date.get(8..10)?.parse().ok()?,
                hour: h as u8,
                minute: m,
                second: s,
                micros,
            }
        }
        Time => {
            let t = text()?;
            let (negative, t) = match t.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, t),
            };
            let (hours, minutes, seconds, micros) = parse_hms(t)?;
            Value::Time { negative, hours, minutes, seconds, micros }
        }
        Timestamp => {
            let t = text()?;
            let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
            Value::Timestamp { secs: secs.parse().ok()?, micros: micros_of(frac)? }
        }
        Json if col.charset.as_deref().is_none_or(|c| c.starts_with("utf8") || c == "ascii") => {
            Value::Json(Cow::Owned(String::from_utf8(bytes).ok()?))
        }
        Geometry => Value::Geometry(Cow::Owned(bytes)),
        _ => Value::Bytes(Cow::Owned(bytes)),
    })
}

fn parse_hms(t: &str) -> Option<(u16, u8, u8, u32)> {
    let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
    let mut parts = hms.split(':');
    let h = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let s = parts.next()?.parse().ok()?;
    Some((h, m, s, micros_of(frac)?))
}

fn micros_of(frac: &str) -> Option<u32> {
    if frac.is_empty() {
        return Some(0);
    }
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(frac.parse::<u32>().ok()? * 10u32.pow(6 - frac.len() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_event::ColumnSchema;

    #[test]
    fn text_forms_convert_to_binlog_values() {
        let c = |t| ColumnSchema::new("c", t);
        assert_eq!(convert(&c(DataType::Time), b"-838:59:59.5".to_vec()), Some(Value::Time { negative: true, hours: 838, minutes: 59, seconds: 59, micros: 500_000 }));
        assert_eq!(convert(&c(DataType::Timestamp), b"1700000000.000123".to_vec()), Some(Value::Timestamp { secs: 1_700_000_000, micros: 123 }));
        assert_eq!(
            convert(&c(DataType::DateTime), b"0000-00-00 00:00:00".to_vec()),
            Some(Value::DateTime { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, micros: 0 })
        );
        assert_eq!(convert(&c(DataType::BigInt), b"-5".to_vec()), Some(Value::Int(-5)));
    }
}
