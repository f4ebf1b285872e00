//! The replica stream: registers with the source, reads binlog events, tracks positions and
//! transactions, and hands captured row events to the caller undecoded, so rows are decoded once,
//! straight into the caller's buffers.
//!
//! # Positions
//! Each outer event's header carries `log_pos`, the offset just past it; its start is
//! `log_pos - event_size`. A transaction's *start* (its GTID or BEGIN event) is the position
//! from which a restart replays it whole; its *end* (just past XID/COMMIT, or past a standalone
//! DDL) is where the next one begins, and the only kind of position ever offered as a checkpoint.
//! Events unpacked from a MySQL TRANSACTION_PAYLOAD carry no positions of their own: they take
//! the payload's start, and the payload's end closes the transaction.

use std::{borrow::Cow, collections::HashMap, sync::Arc};

use futures_util::StreamExt;
use mysql_async::{
    binlog::{events::Event, BinlogChecksumAlg},
    prelude::Queryable,
    BinlogStream, BinlogStreamRequest,
};
use sluice_binlog::{ColumnPlan, RowsReader};
use sluice_event::{file_index, BinlogPosition, RowOp, TableSchema, Value};

use crate::{
    events::{kind, RowsHeader, TableMap, Truncated},
    Flavor, SchemaCache, ServerInfo, SourceError, SourceOptions, TableFilter,
};

/// A captured table as one TABLE_MAP described it: the schema to name and type its values, and
/// the decoding plan for its row images.
#[derive(Debug)]
pub struct CapturedTable {
    pub schema: Arc<TableSchema>,
    pub plan: Vec<ColumnPlan>,
    types: Vec<u8>,
    metadata: Vec<u8>,
}

/// The transaction the stream is in.
#[derive(Debug, Clone, Default)]
pub struct TxnState {
    /// Where a restart replays this transaction from.
    pub start: BinlogPosition,
    pub gtid: Option<String>,
    pub thread_id: Option<u32>,
    open: bool,
}

/// What one binlog event means to the pipeline.
pub enum Step<'e> {
    /// Row changes of a captured table.
    Rows(RowsBatch<'e>),
    /// A transaction ended; everything before `end` is complete.
    Commit { end: BinlogPosition },
    /// A standalone statement (DDL or other) ended a transaction of its own.
    Statement { db: Cow<'e, str>, sql: Cow<'e, str>, is_ddl: bool, end: BinlogPosition },
    /// The source is idle; `timestamp` is 0 for heartbeats.
    Heartbeat,
    /// Nothing to do (other tables, bookkeeping events).
    Skip,
}

/// The row images of one rows event, not yet decoded.
pub struct RowsBatch<'e> {
    pub table: Arc<CapturedTable>,
    pub op: RowOp,
    /// Start offset of the rows event (file is the reader's current file).
    pub offset: u64,
    header: RowsHeader<'e>,
}

impl RowsBatch<'_> {
    pub fn rows(&self) -> Rows<'_> {
        Rows {
            reader: RowsReader::new(&self.table.plan, self.header.rows),
            op: self.op,
            before: self.header.before,
            after: self.header.after,
        }
    }
}

/// Iterates the rows of a [`RowsBatch`].
pub struct Rows<'a> {
    reader: RowsReader<'a>,
    op: RowOp,
    before: &'a [u8],
    after: &'a [u8],
}

impl<'a> Rows<'a> {
    /// Decodes the next row into `before`/`after` (each cleared; the unused one left empty).
    /// Returns `Ok(false)` when the event has no more rows.
    pub fn next_row(
        &mut self,
        before: &mut Vec<Value<'a>>,
        after: &mut Vec<Value<'a>>,
    ) -> Result<bool, sluice_binlog::DecodeError> {
        before.clear();
        after.clear();
        Ok(match self.op {
            RowOp::Insert => self.reader.read_image(self.after, after)?,
            RowOp::Delete => self.reader.read_image(self.before, before)?,
            RowOp::Update => self.reader.read_update(self.before, self.after, before, after)?,
        })
    }
}

/// A live replica stream from one source.
pub struct BinlogReader {
    stream: BinlogStream,
    opts: SourceOptions,
    flavor: Flavor,
    schemas: SchemaCache,
    filter: TableFilter,
    /// Table id → captured table (None: not a sync object). Cleared at every transaction end.
    by_id: HashMap<u64, Option<Arc<CapturedTable>>>,
    /// `db\0table` → captured table, reused while the TABLE_MAP stays byte-identical.
    by_name: HashMap<Vec<u8>, Option<Arc<CapturedTable>>>,
    name_buf: Vec<u8>,
    file: String,
    file_index: u64,
    txn: TxnState,
    /// The TRANSACTION_PAYLOAD being unpacked: its start and end offsets.
    payload: Option<(u64, u64)>,
    /// Header fields of the last event stepped through.
    last_timestamp: u32,
    last_server_id: u32,
}

impl BinlogReader {
    /// Registers as a replica and requests the binlog from `start`.
    pub async fn start(
        opts: SourceOptions,
        info: &ServerInfo,
        start: BinlogPosition,
        filter: TableFilter,
    ) -> Result<Self, SourceError> {
        let addr = opts.addr();
        let mut conn = opts.connect().await?;
        let err = |e| SourceError::from_mysql(e, &addr, &opts.user, "preparing the replica session");
        let period_ns = opts.heartbeat.as_nanos().min(u128::from(u32::MAX) * 1_000_000_000 / 1000) as u64;
        let mut setup = vec![format!("SET @master_heartbeat_period = {period_ns}")];
        match info.flavor {
            // Receive MariaDB's own events (GTIDs) rather than their dummy replacements.
            Flavor::MariaDb => setup.push("SET @mariadb_slave_capability = 4".into()),
            Flavor::MySql => setup.push(format!("SET @source_heartbeat_period = {period_ns}")),
        }
        for sql in setup {
            conn.query_drop(sql).await.map_err(err)?;
        }
        let request = BinlogStreamRequest::new(opts.server_id)
            .with_filename(start.file.as_bytes())
            .with_pos(start.offset);
        let stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|e| SourceError::from_mysql(e, &addr, &opts.user, "requesting the binlog").after_login())?;
        let schemas = SchemaCache::new(opts.connect().await?, opts.clone(), info.flavor);
        Ok(Self {
            stream,
            flavor: info.flavor,
            schemas,
            filter,
            by_id: HashMap::new(),
            by_name: HashMap::new(),
            name_buf: Vec::new(),
            file_index: start.file_index(),
            file: start.file.clone(),
            txn: TxnState { start, ..Default::default() },
            payload: None,
            last_timestamp: 0,
            last_server_id: 0,
            opts,
        })
    }

    /// The binlog file the stream is in.
    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn file_index(&self) -> u64 {
        self.file_index
    }

    /// The transaction the last event belongs to.
    pub fn txn(&self) -> &TxnState {
        &self.txn
    }

    /// Timestamp (UNIX seconds) and server id of the last event stepped through.
    pub fn last_event_header(&self) -> (u32, u32) {
        (self.last_timestamp, self.last_server_id)
    }

    /// Waits for the next event. `None` means the server closed the stream.
    pub async fn next_event(&mut self) -> Result<Option<Event>, SourceError> {
        match self.stream.next().await {
            None => Ok(None),
            Some(Ok(event)) => Ok(Some(event)),
            Some(Err(e)) => {
                let mut err =
                    SourceError::from_mysql(e, &self.opts.addr(), &self.opts.user, "streaming the binlog").after_login();
                match &mut err {
                    SourceError::BinlogUnavailable { position, .. } => {
                        *position = format!("{}:{}", self.file, self.txn.start.offset)
                    }
                    SourceError::ServerIdClash { server_id, .. } => *server_id = self.opts.server_id,
                    _ => {}
                }
                Err(err)
            }
        }
    }

    /// Interprets one event. Row images are not decoded here; see [`RowsBatch::rows`].
    pub async fn step<'e>(&mut self, event: &'e Event) -> Result<Step<'e>, SourceError> {
        let header = event.header();
        let kind = header.event_type_raw();
        let body = event.data();
        verify_checksum(event).map_err(|reason| self.decode_error("event", event, reason))?;

        // Start and end offsets of this event in the current file.
        let (start, end) = match self.payload {
            Some((s, e)) => (s, e),
            None if header.log_pos() > 0 => {
                let end = u64::from(header.log_pos());
                (end.saturating_sub(u64::from(header.event_size())), end)
            }
            None => (0, 0),
        };
        if kind != kind::HEARTBEAT && kind != kind::HEARTBEAT_V2 && header.timestamp() != 0 {
            self.last_timestamp = header.timestamp();
            self.last_server_id = header.server_id();
        }

        let step = match kind {
            kind::TABLE_MAP => {
                self.table_map(body).await.map_err(|e| self.decode_error("TABLE_MAP", event, e))?;
                Step::Skip
            }
            kind::WRITE_ROWS_V1 | kind::WRITE_ROWS => self.rows(RowOp::Insert, kind, event, start)?,
            kind::UPDATE_ROWS_V1 | kind::UPDATE_ROWS => self.rows(RowOp::Update, kind, event, start)?,
            kind::DELETE_ROWS_V1 | kind::DELETE_ROWS => self.rows(RowOp::Delete, kind, event, start)?,
            kind::XID => self.end_txn(end),
            kind::QUERY => self.query(event, start, end)?,
            kind::GTID | kind::GTID_TAGGED => {
                let gtid = event
                    .read_event::<mysql_async::binlog::events::GtidEvent>()
                    .map_err(|e| self.decode_error("GTID", event, e.to_string()))?;
                let sid = uuid_text(&gtid.sid());
                let text = match gtid.tag() {
                    Some(tag) => format!("{sid}:{tag}:{}", gtid.gno()),
                    None => format!("{sid}:{}", gtid.gno()),
                };
                self.begin_txn(start, Some(text), false);
                Step::Skip
            }
            kind::MARIADB_GTID => {
                let g = sluice_binlog::MariadbGtid::parse(body)
                    .map_err(|e| self.decode_error("GTID", event, e.to_string()))?;
                let text = format!("{}-{}-{}", g.domain_id, header.server_id(), g.seq_no);
                // Without FL_STANDALONE the GTID opens a transaction that XID or COMMIT closes.
                self.begin_txn(start, Some(text), g.flags & 1 == 0);
                Step::Skip
            }
            kind::TRANSACTION_PAYLOAD => {
                // mysql_async yields the unpacked inner events right after this one.
                self.payload = Some((start, end));
                Step::Skip
            }
            kind::ROTATE => {
                self.rotate(event)?;
                Step::Skip
            }
            kind::HEARTBEAT | kind::HEARTBEAT_V2 => Step::Heartbeat,
            kind::PARTIAL_UPDATE_ROWS => {
                return Err(self.unsupported(
                    event,
                    "a PARTIAL_UPDATE_ROWS event (binlog_row_value_options=PARTIAL_JSON)",
                    "SET GLOBAL binlog_row_value_options = ''; on the source",
                ))
            }
            kind::MARIADB_WRITE_ROWS_COMPRESSED..=kind::MARIADB_DELETE_ROWS_COMPRESSED_V1
            | kind::MARIADB_QUERY_COMPRESSED => {
                return Err(self.unsupported(
                    event,
                    "a compressed MariaDB binlog event (log_bin_compress=ON)",
                    "SET GLOBAL log_bin_compress = OFF; on the source",
                ))
            }
            _ => Step::Skip,
        };
        Ok(step)
    }

    fn begin_txn(&mut self, start: u64, gtid: Option<String>, open: bool) {
        self.txn = TxnState {
            start: BinlogPosition::new(self.file.clone(), start),
            gtid,
            thread_id: None,
            open,
        };
    }

    fn end_txn(&mut self, end: u64) -> Step<'static> {
        self.txn.open = false;
        self.payload = None;
        self.by_id.clear();
        Step::Commit { end: BinlogPosition::new(self.file.clone(), end) }
    }

    fn query<'e>(&mut self, event: &'e Event, start: u64, end: u64) -> Result<Step<'e>, SourceError> {
        let q = event
            .read_event::<mysql_async::binlog::events::QueryEvent>()
            .map_err(|e| self.decode_error("QUERY", event, e.to_string()))?;
        let sql = q.query_raw();
        let word = first_keyword(sql);
        if word.eq_ignore_ascii_case(b"BEGIN") || word.eq_ignore_ascii_case(b"XA") && !self.txn.open {
            if self.txn.gtid.is_none() || self.txn.open {
                self.begin_txn(start, None, true);
            }
            self.txn.open = true;
            self.txn.thread_id = Some(q.thread_id());
            return Ok(Step::Skip);
        }
        if word.eq_ignore_ascii_case(b"COMMIT") || word.eq_ignore_ascii_case(b"ROLLBACK") {
            return Ok(self.end_txn(end));
        }
        if self.txn.open {
            // A statement inside a transaction (SAVEPOINT, statement-logged parts): no boundary.
            return Ok(Step::Skip);
        }
        let is_ddl = [&b"ALTER"[..], b"CREATE", b"DROP", b"RENAME", b"TRUNCATE"]
            .iter()
            .any(|k| word.eq_ignore_ascii_case(k));
        if is_ddl {
            // Table definitions may have changed: read them again when next needed.
            self.schemas.invalidate();
            self.by_name.clear();
        }
        self.txn.thread_id = Some(q.thread_id());
        let db = String::from_utf8_lossy(q.schema_raw()).into_owned();
        let sql = String::from_utf8_lossy(sql).into_owned();
        self.end_txn(end);
        Ok(Step::Statement { db: db.into(), sql: sql.into(), is_ddl, end: BinlogPosition::new(self.file.clone(), end) })
    }

    fn rotate(&mut self, event: &Event) -> Result<(), SourceError> {
        let body = event.data();
        if body.len() < 8 {
            return Err(self.decode_error("ROTATE", event, Truncated { what: "ROTATE" }.to_string()));
        }
        let mut name = &body[8..];
        // The artificial ROTATE sent before the format description may carry the checksum as
        // part of the name (it cannot know yet whether checksums are on). Drop it if it is one.
        if name.len() > 4 {
            let (n, crc) = name.split_at(name.len() - 4);
            let mut h = crc32fast::Hasher::new();
            h.update(&header_bytes(event));
            h.update(&body[..body.len() - 4]);
            if h.finalize() == u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
                name = n;
            }
        }
        let name = String::from_utf8_lossy(name).into_owned();
        if name != self.file {
            self.file_index = file_index(&name);
            self.file = name;
            self.by_id.clear();
        }
        Ok(())
    }

    async fn table_map(&mut self, body: &[u8]) -> Result<(), String> {
        let tm = TableMap::parse(body).map_err(|e| e.to_string())?;
        self.name_buf.clear();
        self.name_buf.extend_from_slice(tm.db);
        self.name_buf.push(0);
        self.name_buf.extend_from_slice(tm.table);
        let cached = match self.by_name.get(self.name_buf.as_slice()) {
            Some(None) => Some(None),
            Some(Some(t)) if t.types == tm.types && t.metadata == tm.metadata => Some(Some(t.clone())),
            _ => None,
        };
        let entry = match cached {
            Some(entry) => entry,
            None => {
                let (db, table) = (tm.db_name(), tm.table_name());
                let entry = if self.filter.matches(&db, &table) {
                    Some(Arc::new(self.capture(&tm).await.map_err(|e| e.to_string())?))
                } else {
                    None
                };
                self.by_name.insert(self.name_buf.clone(), entry.clone());
                entry
            }
        };
        self.by_id.insert(tm.table_id, entry);
        Ok(())
    }

    /// Builds the decoding plan of a captured table from its TABLE_MAP and its schema.
    async fn capture(&mut self, tm: &TableMap<'_>) -> Result<CapturedTable, SourceError> {
        let (db, table) = (tm.db_name(), tm.table_name());
        let mut schema = self.schemas.get(&db, &table).await?;
        if schema.columns.len() != tm.types.len() {
            // Perhaps a DDL we have not seen yet; the live definition is the only other truth.
            self.schemas.invalidate();
            schema = self.schemas.get(&db, &table).await?;
        }
        if schema.columns.len() != tm.types.len() {
            return Err(SourceError::Schema {
                table: format!("{db}.{table}"),
                reason: format!(
                    "the binlog has {} columns but the table now has {}: its definition changed after this event, and sluice cannot tell which column is which",
                    tm.types.len(),
                    schema.columns.len()
                ),
            });
        }
        if let Some(names) = tm.column_names().filter(|n| n.len() == schema.columns.len()) {
            if names.iter().zip(&schema.columns).any(|(n, c)| *n != c.name) {
                // binlog_row_metadata=FULL names the columns as they were at this event.
                let mut renamed = (*schema).clone();
                for (c, n) in renamed.columns.iter_mut().zip(names) {
                    c.name = n.into_owned();
                }
                schema = Arc::new(renamed);
            }
        }
        let metas = sluice_binlog::parse_column_metadata(tm.types, tm.metadata).map_err(|e| {
            SourceError::Schema { table: format!("{db}.{table}"), reason: e.to_string() }
        })?;
        let unsigned: Vec<bool> = schema.columns.iter().map(|c| c.unsigned).collect();
        let mut plan = sluice_binlog::build_plan(tm.types, &metas, &unsigned)
            .map_err(|e| SourceError::Schema { table: format!("{db}.{table}"), reason: e.to_string() })?;
        adapt_plan(&mut plan, &schema);
        Ok(CapturedTable { schema, plan, types: tm.types.to_vec(), metadata: tm.metadata.to_vec() })
    }

    fn rows<'e>(&mut self, op: RowOp, kind: u8, event: &'e Event, start: u64) -> Result<Step<'e>, SourceError> {
        let header = RowsHeader::parse(kind, event.data()).map_err(|e| self.decode_error("rows", event, e.to_string()))?;
        match self.by_id.get(&header.table_id) {
            Some(None) => Ok(Step::Skip),
            Some(Some(table)) => {
                if header.columns != table.plan.len() {
                    let reason = format!("rows event has {} columns, its TABLE_MAP {}", header.columns, table.plan.len());
                    return Err(self.decode_error(&table.schema.qualified_name(), event, reason));
                }
                Ok(Step::Rows(RowsBatch { table: table.clone(), op, offset: start, header }))
            }
            None => {
                let reason = format!("no TABLE_MAP for table id {} precedes it", header.table_id);
                Err(self.decode_error("rows", event, reason))
            }
        }
    }

    fn position_of(&self, event: &Event) -> String {
        let end = u64::from(event.header().log_pos());
        format!("{}:{}", self.file, end.saturating_sub(u64::from(event.header().event_size())))
    }

    fn decode_error(&self, table: &str, event: &Event, reason: impl ToString) -> SourceError {
        SourceError::Decode { table: table.to_string(), position: self.position_of(event), reason: reason.to_string() }
    }

    fn unsupported(&self, event: &Event, what: &str, fix: &str) -> SourceError {
        SourceError::Unsupported { what: format!("the source wrote {what}"), position: self.position_of(event), fix: fix.into() }
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }
}

/// What the binlog alone cannot say, from the schema: MariaDB's JSON (a LONGTEXT) is JSON text,
/// BINARY(n) keeps its trailing zero bytes, MariaDB's high-resolution temporal formats (old type
/// codes with a fraction) and its INET4, INET6 and UUID types (BINARY(4)/(16) in the binlog).
fn adapt_plan(plan: &mut [ColumnPlan], schema: &TableSchema) {
    use sluice_binlog::MariadbType;
    use sluice_event::DataType;
    for (plan, column) in plan.iter_mut().zip(&schema.columns) {
        match column.data_type {
            DataType::Json => {
                // Only UTF-8 text can be JSON text; anything else stays bytes.
                let utf8 = column.charset.as_deref().is_some_and(|c| c.starts_with("utf8") || c == "ascii");
                if utf8 {
                    plan.decode_as_json_text();
                }
            }
            DataType::Binary => {
                plan.pad_fixed_binary();
            }
            DataType::Time | DataType::DateTime | DataType::Timestamp => {
                plan.apply_schema_fsp(column.fsp.unwrap_or(0));
            }
            DataType::Other => {
                let ty = match column.column_type.to_ascii_lowercase().as_str() {
                    "inet4" => MariadbType::Inet4,
                    "inet6" => MariadbType::Inet6,
                    "uuid" => MariadbType::Uuid,
                    _ => continue,
                };
                plan.decode_as_mariadb(ty);
            }
            _ => {}
        }
    }
}

/// Checks the CRC32 of an event whose stream announced checksums.
fn verify_checksum(event: &Event) -> Result<(), String> {
    let footer = event.footer();
    if !footer.get_checksum_enabled() {
        return Ok(());
    }
    if let (Ok(Some(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32)), Some(sum)) =
        (footer.get_checksum_alg(), event.checksum())
    {
        let expected = u32::from_le_bytes(sum);
        let actual = event.calc_checksum(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32);
        if expected != actual {
            return Err(format!("CRC32 mismatch (event says {expected:08x}, content gives {actual:08x})"));
        }
    }
    Ok(())
}

/// The 19 bytes of an event's common header, as on the wire.
fn header_bytes(event: &Event) -> [u8; 19] {
    let h = event.header();
    let mut b = [0u8; 19];
    b[0..4].copy_from_slice(&h.timestamp().to_le_bytes());
    b[4] = h.event_type_raw();
    b[5..9].copy_from_slice(&h.server_id().to_le_bytes());
    b[9..13].copy_from_slice(&h.event_size().to_le_bytes());
    b[13..17].copy_from_slice(&h.log_pos().to_le_bytes());
    b[17..19].copy_from_slice(&h.flags().bits().to_le_bytes());
    b
}

/// The first SQL keyword of a statement, skipping white space and comments.
fn first_keyword(sql: &[u8]) -> &[u8] {
    let mut s = sql;
    loop {
        s = s.trim_ascii_start();
        if let Some(rest) = s.strip_prefix(b"/*") {
            match rest.windows(2).position(|w| w == b"*/") {
                Some(i) => s = &rest[i + 2..],
                None => return &[],
            }
        } else if s.starts_with(b"#") || s.starts_with(b"-- ") {
            match s.iter().position(|&c| c == b'\n') {
                Some(i) => s = &s[i + 1..],
                None => return &[],
            }
        } else {
            break;
        }
    }
    let end = s.iter().position(|c| !c.is_ascii_alphabetic()).unwrap_or(s.len());
    &s[..end]
}

fn uuid_text(sid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in sid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords() {
        assert_eq!(first_keyword(b"  BEGIN"), b"BEGIN");
        assert_eq!(first_keyword(b"/* gh-ost */ ALTER TABLE t"), b"ALTER");
        assert_eq!(first_keyword(b"# c\ncreate table"), b"create");
        assert_eq!(first_keyword(b"/* unterminated"), b"");
    }

    #[test]
    fn uuid() {
        let sid = [0x28, 0x1c, 0x62, 0xdc, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        assert_eq!(uuid_text(&sid), "281c62dc-0102-0304-0506-0708090a0b0c");
    }
}
