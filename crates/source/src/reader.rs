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
    ddl::{self, Effect, TableRef},
    events::{kind, RowsHeader, TableMap, Truncated},
    history::{self, Entry, Origin, Pos, SchemaHistory, ServerContext, State, TableMapFacts},
    Flavor, GtidState, SchemaCache, ServerInfo, SourceError, SourceOptions, TableFilter,
};

/// A captured table as one TABLE_MAP described it: the schema to name and type its values, and
/// the decoding plan for its row images.
#[derive(Debug)]
pub struct CapturedTable {
    pub schema: Arc<TableSchema>,
    pub plan: Vec<ColumnPlan>,
    types: Vec<u8>,
    metadata: Vec<u8>,
    optional: Vec<u8>,
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
    /// A standalone statement (DDL or other) ended a transaction of its own. `is_ddl`: a DDL
    /// statement about sync objects (one of its tables, or a database that may hold some);
    /// `table` is the sync object it is about, when it names one.
    Statement { db: Cow<'e, str>, sql: Cow<'e, str>, is_ddl: bool, table: Option<TableRef>, end: BinlogPosition },
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
    /// A PARTIAL_UPDATE_ROWS event (MySQL's partial JSON): after images may hold JSON diffs.
    partial: bool,
}

impl RowsBatch<'_> {
    pub fn rows(&self) -> Rows<'_> {
        Rows {
            reader: RowsReader::new(&self.table.plan, self.header.rows),
            op: self.op,
            before: self.header.before,
            after: self.header.after,
            partial: self.partial,
        }
    }
}

/// Iterates the rows of a [`RowsBatch`].
pub struct Rows<'a> {
    reader: RowsReader<'a>,
    op: RowOp,
    before: &'a [u8],
    after: &'a [u8],
    partial: bool,
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
            RowOp::Update if self.partial => self.reader.read_partial_update(self.before, self.after, before, after)?,
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
    /// What the source had executed at the end of the last transaction, when known.
    gtid_state: Option<GtidState>,
    /// End offset (in `file`) of the last event stepped through.
    last_end: u64,
    /// Table definitions along the binlog; every TABLE_MAP is checked against it.
    history: SchemaHistory,
    /// The history epoch of this stream's positions.
    epoch: u32,
}

/// Where a stream starts.
#[derive(Debug, Clone)]
pub struct StartAt {
    pub position: BinlogPosition,
    /// The GTID state at `position`, when known.
    pub gtid_state: Option<GtidState>,
    /// Ask the server for the transactions after `gtid_state` instead of for `position` (a
    /// different server than the one `position` belongs to).
    pub by_gtid: bool,
    /// With `by_gtid`: the server is the one `position` belongs to (its positions and the
    /// schema history recorded along them stay valid; `position` is where the stream is
    /// expected to begin).
    pub same_server: bool,
}

impl BinlogReader {
    /// Registers as a replica and requests the binlog from `start`.
    pub async fn start(
        opts: SourceOptions,
        info: &ServerInfo,
        start: StartAt,
        filter: TableFilter,
        history: SchemaHistory,
    ) -> Result<Self, SourceError> {
        let StartAt { position: start, gtid_state, by_gtid, same_server } = start;
        let gtid_text = gtid_state.as_ref().map(ToString::to_string).unwrap_or_default();
        let addr = opts.addr();
        let mut conn = opts.connect().await?;
        let err = |e| SourceError::from_mysql(e, &addr, &opts.user, "preparing the replica session");
        let period_ns = opts.heartbeat.as_nanos().min(u128::from(u32::MAX) * 1_000_000_000 / 1000) as u64;
        let mut setup = vec![format!("SET @master_heartbeat_period = {period_ns}")];
        match info.flavor {
            // Receive MariaDB's own events (GTIDs) rather than their dummy replacements.
            Flavor::MariaDb => {
                setup.push("SET @mariadb_slave_capability = 4".into());
                if by_gtid {
                    setup.push(format!("SET @slave_connect_state = '{gtid_text}'"));
                    setup.push("SET @slave_gtid_strict_mode = 1".into());
                }
            }
            Flavor::MySql => setup.push(format!("SET @source_heartbeat_period = {period_ns}")),
        }
        for sql in setup {
            conn.query_drop(sql).await.map_err(err)?;
        }
        let mut request = BinlogStreamRequest::new(opts.server_id);
        if by_gtid {
            // The server picks the file and position; its first (artificial) ROTATE names them.
            if info.flavor == Flavor::MySql {
                let sids = gtid_text
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<mysql_async::Sid<'static>>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| SourceError::Schema { table: "GTID set".into(), reason: e.to_string() })?;
                request = request.with_gtid().with_gtid_set(sids);
            }
        } else {
            request = request.with_filename(start.file.as_bytes()).with_pos(start.offset);
        }
        let stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|e| SourceError::from_mysql(e, &addr, &opts.user, "requesting the binlog").after_login())?;
        let other_server = by_gtid && !same_server;
        let start = if other_server { BinlogPosition::new("", 4) } else { start };
        let mut schemas = SchemaCache::new(opts.connect().await?, opts.clone(), info.flavor);
        let server_charset = schemas.server_charset().await?;
        history.set_context(ServerContext::for_version(info.flavor, &info.version, &server_charset, info.lower_case_table_names));
        // Positions of another server cannot be compared with those recorded so far.
        let epoch = if other_server { history.new_epoch()? } else { history.epoch() };
        seed(&mut schemas, &history, &filter, Pos { epoch, file_index: start.file_index(), offset: start.offset }).await?;
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
            gtid_state,
            last_end: 0,
            history,
            epoch,
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

    /// Whether the stream has passed `position` with no transaction open: everything before it
    /// has been stepped through completely.
    pub fn passed(&self, position: &BinlogPosition) -> bool {
        !self.txn.open && (self.file_index, self.last_end) >= (position.file_index(), position.offset)
    }

    /// The GTID state after the last completed transaction, when known.
    pub fn gtid_state(&self) -> Option<&GtidState> {
        self.gtid_state.as_ref()
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
        if end > 0 && kind != kind::HEARTBEAT && kind != kind::HEARTBEAT_V2 {
            self.last_end = end;
        }
        if kind != kind::HEARTBEAT && kind != kind::HEARTBEAT_V2 && header.timestamp() != 0 {
            self.last_timestamp = header.timestamp();
            self.last_server_id = header.server_id();
        }

        let step = match kind {
            kind::TABLE_MAP => {
                self.table_map(body, self.pos(start), event).await?;
                Step::Skip
            }
            kind::WRITE_ROWS_V1 | kind::WRITE_ROWS => self.rows(RowOp::Insert, kind, event, start)?,
            kind::UPDATE_ROWS_V1 | kind::UPDATE_ROWS => self.rows(RowOp::Update, kind, event, start)?,
            kind::DELETE_ROWS_V1 | kind::DELETE_ROWS => self.rows(RowOp::Delete, kind, event, start)?,
            kind::XID => self.end_txn(end),
            kind::QUERY => self.query(event, start, end).await?,
            kind::GTID | kind::GTID_TAGGED => {
                let gtid = event
                    .read_event::<mysql_async::binlog::events::GtidEvent>()
                    .map_err(|e| self.decode_error("GTID", event, e.to_string()))?;
                let tag = gtid.tag().map(|t| t.as_str().to_owned());
                let text = sluice_binlog::mysql_gtid_text(&gtid.sid(), tag.as_deref(), gtid.gno());
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
            // binlog_row_value_options=PARTIAL_JSON: JSON diffs applied to the before image.
            kind::PARTIAL_UPDATE_ROWS => self.rows(RowOp::Update, kind, event, start)?,
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
        if let (Some(state), Some(gtid)) = (&mut self.gtid_state, &self.txn.gtid) {
            state.apply(gtid);
        }
        self.txn.open = false;
        self.payload = None;
        self.by_id.clear();
        Step::Commit { end: BinlogPosition::new(self.file.clone(), end) }
    }

    async fn query<'e>(&mut self, event: &'e Event, start: u64, end: u64) -> Result<Step<'e>, SourceError> {
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
        let is_ddl = [&b"ALTER"[..], b"CREATE", b"DROP", b"RENAME", b"TRUNCATE"]
            .iter()
            .any(|k| word.eq_ignore_ascii_case(k));
        let db = String::from_utf8_lossy(q.schema_raw()).into_owned();
        let sql = String::from_utf8_lossy(sql).into_owned();
        let mut effects = Vec::new();
        if is_ddl {
            // Applied also inside a transaction (MariaDB logs CREATE TABLE … SELECT in one).
            effects = ddl::parse(&sql, &db);
            if q.error_code() != 0 {
                // Partly executed: what it changed is not known.
                let tables = effects.iter().flat_map(|e| e.tables()).cloned().collect();
                let reason = format!("the statement failed on the source with error {}", q.error_code());
                effects = vec![Effect::Unknown { tables, reason }];
            }
            self.apply_ddl(&effects, self.pos(end), &sql).await?;
        }
        if self.txn.open {
            // A statement inside a transaction (SAVEPOINT, statement-logged parts): no boundary.
            return Ok(Step::Skip);
        }
        self.txn.thread_id = Some(q.thread_id());
        if is_ddl && ddl::opens_transaction(&sql) {
            // MySQL's atomic CREATE TABLE … SELECT: its rows follow, and XID ends it.
            self.txn.open = true;
            return Ok(Step::Skip);
        }
        let table = effects
            .iter()
            .flat_map(|e| e.tables())
            .find(|t| self.filter.matches(&t.db, &t.table) && !self.filter.is_shadow(&t.db, &t.table))
            .cloned();
        let db_level = effects.iter().any(|e| match e {
            Effect::CreateDatabase { db, .. } | Effect::AlterDatabase { db, .. } | Effect::DropDatabase { db } => self.filter.matches_db(db),
            _ => false,
        });
        let is_ddl = is_ddl && (table.is_some() || db_level);
        self.end_txn(end);
        Ok(Step::Statement { db: db.into(), sql: sql.into(), is_ddl, table, end: BinlogPosition::new(self.file.clone(), end) })
    }

    /// A position of the current file in the history.
    fn pos(&self, offset: u64) -> Pos {
        Pos { epoch: self.epoch, file_index: self.file_index, offset }
    }

    /// Applies a DDL statement's effects to the history; returns the tables it changed.
    async fn apply_ddl(&mut self, effects: &[Effect], at: Pos, sql: &str) -> Result<Vec<TableRef>, SourceError> {
        for e in effects {
            if let Effect::CreateTable { table, def, .. } = e {
                // A table without a character set of its own takes its database's.
                if def.charset.is_none() && def.collation.is_none() && self.history.db_charset(&table.db).is_none() {
                    if let Some(cs) = self.schemas.db_charset(&table.db).await? {
                        self.history.learn_db_charset(&table.db, &cs)?;
                    }
                }
            }
        }
        let applied = self.history.apply(effects, at, self.txn.gtid.as_deref(), sql)?;
        for t in &applied.tables {
            if let Some(e) = self.history.at(&t.db, &t.table, at) {
                match e.state {
                    State::Unknown => tracing::warn!(table = %t, at = %at, reason = e.note.as_deref().unwrap_or(""), "schema history cannot follow this DDL; the table's next TABLE_MAP must prove its shape"),
                    _ => tracing::debug!(table = %t, at = %at, "schema history updated"),
                }
            }
        }
        // Table definitions may have changed: decide again at each table's next TABLE_MAP.
        self.schemas.invalidate();
        self.by_name.clear();
        Ok(applied.tables)
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

    async fn table_map(&mut self, body: &[u8], at: Pos, event: &Event) -> Result<(), SourceError> {
        let tm = TableMap::parse(body).map_err(|e| self.decode_error("TABLE_MAP", event, e.to_string()))?;
        self.name_buf.clear();
        self.name_buf.extend_from_slice(tm.db);
        self.name_buf.push(0);
        self.name_buf.extend_from_slice(tm.table);
        // Reused while the TABLE_MAP is byte-identical (column names included) and no DDL came.
        let cached = match self.by_name.get(self.name_buf.as_slice()) {
            Some(None) => Some(None),
            Some(Some(t)) if t.types == tm.types && t.metadata == tm.metadata && t.optional == tm.optional => {
                Some(Some(t.clone()))
            }
            _ => None,
        };
        let entry = match cached {
            Some(entry) => entry,
            None => {
                let (db, table) = (tm.db_name(), tm.table_name());
                let entry = if self.filter.matches(&db, &table) && !self.filter.is_shadow(&db, &table) {
                    Some(Arc::new(self.capture(&tm, at, event).await?))
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

    /// Builds the decoding plan of a captured table from its TABLE_MAP and the schema the table
    /// had at this event: the history's version, when the TABLE_MAP agrees with it.
    async fn capture(&mut self, tm: &TableMap<'_>, at: Pos, event: &Event) -> Result<CapturedTable, SourceError> {
        let (db, table) = (tm.db_name(), tm.table_name());
        let schema_err = |reason: String| SourceError::Schema { table: format!("{db}.{table}"), reason };
        let metas = sluice_binlog::parse_column_metadata(tm.types, tm.metadata).map_err(|e| schema_err(e.to_string()))?;
        // The columns as the binlog states them (signedness changes no type or size).
        let probe = sluice_binlog::build_plan(tm.types, &metas, &vec![false; tm.types.len()]).map_err(|e| schema_err(e.to_string()))?;
        let facts = TableMapFacts::read(tm);
        let entry = self.history.at(&db, &table, at);
        let verdict = match entry.as_ref().map(|e| &e.state) {
            Some(State::Known(def)) => {
                Some(history::check(&def.schema, &probe, &facts).map(|r| r.map(Arc::new).unwrap_or_else(|| def.schema.clone())))
            }
            _ => None,
        };
        let schema = match verdict {
            Some(Ok(schema)) => schema,
            Some(Err(reason)) => self.resolve_live(tm, at, event, &probe, &facts, entry.as_ref(), Some(reason)).await?,
            None => self.resolve_live(tm, at, event, &probe, &facts, entry.as_ref(), None).await?,
        };
        let unsigned: Vec<bool> = schema.columns.iter().map(|c| c.unsigned).collect();
        let mut plan = sluice_binlog::build_plan(tm.types, &metas, &unsigned).map_err(|e| schema_err(e.to_string()))?;
        adapt_plan(&mut plan, &schema);
        Ok(CapturedTable {
            schema,
            plan,
            types: tm.types.to_vec(),
            metadata: tm.metadata.to_vec(),
            optional: tm.optional.to_vec(),
        })
    }

    /// The live definition, for an event the history cannot describe, when the TABLE_MAP proves
    /// it right: for a table the history never read (a seed), when count and types fit; for any
    /// other, only when the binlog also names the columns (`binlog_row_metadata=FULL`) and the
    /// names fit too. Otherwise sluice stops with an error saying why and how to go on.
    #[allow(clippy::too_many_arguments)]
    async fn resolve_live(
        &mut self,
        tm: &TableMap<'_>,
        at: Pos,
        event: &Event,
        probe: &[ColumnPlan],
        facts: &TableMapFacts,
        entry: Option<&Entry>,
        misfit: Option<String>,
    ) -> Result<Arc<TableSchema>, SourceError> {
        let (db, table) = (tm.db_name(), tm.table_name());
        let seed = matches!(entry.map(|e| &e.state), None | Some(State::Unseeded));
        let mut reason = format!("the binlog's TABLE_MAP has {}", history::describe_table_map(probe, facts));
        match (entry, &misfit) {
            (Some(e), Some(misfit)) => {
                if let State::Known(def) = &e.state {
                    reason.push_str(&format!("; the schema history ({}) has {}: {misfit}", e.describe(), history::describe_schema(&def.schema)));
                }
            }
            (Some(e), None) => match e.state {
                State::Unknown => reason.push_str(&format!(
                    "; the schema history lost track of the table {}{}",
                    e.describe(),
                    e.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
                )),
                State::Dropped => reason.push_str(&format!("; the schema history has the table dropped {}", e.describe())),
                _ => {}
            },
            (None, _) => {}
        }
        if !seed && facts.names.is_none() {
            reason.push_str("; without column names in the binlog (binlog_row_metadata=FULL) sluice cannot prove that the live definition is the one this event was written with");
            return Err(self.mismatch(&db, &table, event, reason, entry));
        }
        self.schemas.invalidate();
        let live = match self.schemas.load_def(&db, &table).await {
            Ok(def) => def,
            Err(e) if seed => return Err(e),
            Err(e) => {
                reason.push_str(&format!("; the live definition cannot be read: {e}"));
                return Err(self.mismatch(&db, &table, event, reason, entry));
            }
        };
        match history::check(&live.schema, probe, facts) {
            Ok(refined) => {
                let schema = refined.map(Arc::new).unwrap_or_else(|| live.schema.clone());
                let origin = if entry.is_none() { Origin::Seed } else { Origin::Live };
                if !seed {
                    tracing::warn!(table = %format!("{db}.{table}"), at = %at, reason = %reason, "the binlog's column names prove the live definition right; recorded in the schema history");
                }
                self.history.record(live, at, origin)?;
                Ok(schema)
            }
            Err(live_misfit) => {
                reason.push_str(&format!(
                    "; information_schema now shows {}: {live_misfit} (the table's definition changed after this event)",
                    history::describe_schema(&live.schema)
                ));
                Err(self.mismatch(&db, &table, event, reason, entry))
            }
        }
    }

    fn mismatch(&self, db: &str, table: &str, event: &Event, reason: String, entry: Option<&Entry>) -> SourceError {
        let name = format!("{db}.{table}");
        let last = entry.map(|e| format!(" (the last change sluice knows of: {})", e.describe())).unwrap_or_default();
        SourceError::SchemaMismatch {
            position: self.position_of(event),
            reason,
            fix: format!(
                "with binlog_row_metadata=MINIMAL, set it to FULL on the source (SET GLOBAL binlog_row_metadata = 'FULL') so that events written from then on carry column names sluice can check; \
                 to resume now, set [source] start_position to a position after {name}'s definition last changed{last}, move the task's checkpoint (checkpoint.redb in its data_dir) away and start again (changes of {name} before that position are skipped); \
                 or add {name} to [objects] exclude to go on with the other tables"
            ),
            table: name,
        }
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
                let partial = kind == kind::PARTIAL_UPDATE_ROWS;
                Ok(Step::Rows(RowsBatch { table: table.clone(), op, offset: start, header, partial }))
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

/// Seeds the history with the live definition of every sync object it has no version of, at the
/// position capture starts from.
/// Records, at `at`, the current definition of every sync object the history does not know yet.
/// Before an initial load: the stream that follows starts at `at`, and tables altered during the
/// load must be decoded with the definition they had there.
pub async fn seed_history(
    opts: &SourceOptions,
    info: &ServerInfo,
    history: &SchemaHistory,
    filter: &TableFilter,
    at: &BinlogPosition,
) -> Result<(), SourceError> {
    let mut schemas = SchemaCache::new(opts.connect().await?, opts.clone(), info.flavor);
    let server_charset = schemas.server_charset().await?;
    history.set_context(ServerContext::for_version(info.flavor, &info.version, &server_charset, info.lower_case_table_names));
    seed(&mut schemas, history, filter, Pos { epoch: history.epoch(), file_index: at.file_index(), offset: at.offset }).await
}

async fn seed(schemas: &mut SchemaCache, history: &SchemaHistory, filter: &TableFilter, at: Pos) -> Result<(), SourceError> {
    let mut defs = Vec::new();
    for (db, table) in schemas.list_tables().await? {
        if !filter.matches(&db, &table) || filter.is_shadow(&db, &table) || history.knows(&db, &table) {
            continue;
        }
        match schemas.load_def(&db, &table).await {
            Ok(def) => defs.push(def),
            // Gone since it was listed, or not readable: its first TABLE_MAP reads it again.
            Err(SourceError::Schema { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if !defs.is_empty() {
        tracing::info!(tables = defs.len(), at = %at, "schema history seeded from information_schema");
        history.record_all(defs, at, Origin::Seed)?;
    }
    Ok(())
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
}
