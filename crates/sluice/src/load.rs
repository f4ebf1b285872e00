//! The initial load (`[initial_load] data = true`): every sync object's current rows as INSERT
//! records, then the binlog from the position the load started at, with no change lost and none
//! sent twice.
//!
//! # Method
//! 1. Before the load, `P0` = the binlog end (or the configured `start_position`). The stream
//!    that follows the load starts at `P0`; `P0` and the load's progress are kept in
//!    `<data_dir>/load.redb`.
//! 2. Tables are loaded one after the other, each in primary-key chunks
//!    ([`sluice_source::snapshot`]): chunk *c* covers the key range `(last(c-1), last(c)]` and
//!    is read in a consistent snapshot of its own (no lock; works on read-only replicas). On
//!    MariaDB the snapshot's exact binlog position `S(c)` is known: the chunk holds the rows as
//!    they were at `S(c)`. On MySQL, which cannot say, `S(c) = P0`.
//! 3. The chunk's rows go to Kafka as INSERT records, one sink batch per chunk. Only when Kafka
//!    acknowledged them is the chunk recorded as done, with its upper key and `S(c)`; a crash
//!    resumes at the next chunk.
//! 4. After the last table, the stream starts at `P0`. A row event of a loaded table at
//!    position `p` whose key lies in chunk *c* is sent only if `p >= S(c)`.
//!
//! # Why nothing is lost or doubled
//! The consumer's state of a key after the load is the chunk's image, the state at `S(c)`. The
//! binlog events of that key before `S(c)` are in that image (MariaDB's snapshot position is
//! exact: it commits in binlog order and takes the snapshot under the commit-order lock), and
//! exactly those are dropped; every event from `S(c)` on is sent, in binlog order, after the
//! image (the stream only starts once the load is complete). Keys inserted after the chunk was
//! read fall in some chunk too (the ranges cover the whole key space), so their inserts are
//! at or after that chunk's `S(c)` and are sent. An UPDATE that moves a row between chunks is
//! sent if either side's chunk wants it (the consumer deletes the old key, upserts the new one).
//!
//! Where a key cannot be placed in its chunk here (keys that are not all integers: string
//! collations are the server's business), the table's lowest `S` is used: such events may be
//! sent although the image already holds them, which re-applies a change (a double, never a
//! loss). On MySQL (`S = P0`) every change during the load is sent after the images in the
//! same way. A crash while a chunk's records were in flight lowers the threshold of the rest of
//! that table to the crashed attempt's `S` (what it may have sent is overwritten by what follows).
//! A table without a usable key is read in one snapshot scan; a crash in the middle reads it
//! again from the start (its rows may then be in Kafka twice).
//!
//! # Limits
//! Not done yet: parallel tables (`load_parallelism`: tables are loaded one at a time; within a
//! table the next chunk is read while the current one is sent, so at most three chunks are in
//! memory), topic creation in structure init (`structure = true` only emits each table's
//! CREATE TABLE as a DDL record before its rows; the topic must exist), an `initial_load` tag on
//! load records (the encoder has no hook for extra tags; load records carry the snapshot position
//! as `sourcePosition` and no GTID or thread id), exactly-once delivery during the load (refused
//! by the config). A source error during the load stops the task (no reconnect loop; a restart
//! resumes at the next chunk). A table altered during its own load is read on with the
//! definition it had when its load began (a dropped column fails the chunk query; the restart
//! reads the new definition). A primary key of a type that SQL literals cannot bound exactly
//! (FLOAT, DOUBLE, TIMESTAMP, ENUM, BIT, …) or over nullable columns is loaded as a keyless
//! table.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use sluice_event::{BinlogPosition, ChangeMeta, RowChange, RowOp, TableSchema, Value};
use sluice_format::dts_avro::DtsAvroEncoder;
use sluice_sink::{BatchId, Sink};
use sluice_source::{snapshot::TableReader, SchemaCache, ServerInfo, SourceError};

use crate::{config::Task, pipeline::RunError, routing, status::Status};

#[derive(Debug, thiserror::Error)]
#[error("the initial-load store {path} cannot be used: {reason}. Fix: check the permissions and free space of [task] data_dir, or move the damaged file away to load again from the start")]
pub struct StoreError {
    path: String,
    reason: String,
}

impl StoreError {
    fn new(path: &Path, reason: impl std::fmt::Display) -> Self {
        StoreError { path: path.display().to_string(), reason: reason.to_string() }
    }
}

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("load");
const KEY: &str = "state";
/// Most chunks in flight (sent, not yet acknowledged) at once.
const MAX_PENDING_CHUNKS: usize = 4;

/// A binlog position as (file index, offset), which orders positions.
pub type Pos = (u64, u64);

fn pos(p: &BinlogPosition) -> Pos {
    (p.file_index(), p.offset)
}

/// A key value of a chunk bound, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum KeyVal {
    Int(i64),
    UInt(u64),
    Year(u16),
    Decimal(String),
    Date(u16, u8, u8),
    DateTime(u16, u8, u8, u8, u8, u8, u32),
    Time(bool, u16, u8, u8, u32),
    Bytes(Vec<u8>),
}

impl KeyVal {
    fn of(v: &Value<'_>) -> Option<KeyVal> {
        Some(match v {
            Value::Int(n) => KeyVal::Int(*n),
            Value::UInt(n) => KeyVal::UInt(*n),
            Value::Year(n) => KeyVal::Year(*n),
            Value::Decimal(d) => KeyVal::Decimal(d.to_string()),
            Value::Date { year, month, day } => KeyVal::Date(*year, *month, *day),
            Value::DateTime { year, month, day, hour, minute, second, micros } => {
                KeyVal::DateTime(*year, *month, *day, *hour, *minute, *second, *micros)
            }
            Value::Time { negative, hours, minutes, seconds, micros } => KeyVal::Time(*negative, *hours, *minutes, *seconds, *micros),
            Value::Bytes(b) => KeyVal::Bytes(b.to_vec()),
            _ => return None,
        })
    }

    fn value(&self) -> Value<'static> {
        match self.clone() {
            KeyVal::Int(n) => Value::Int(n),
            KeyVal::UInt(n) => Value::UInt(n),
            KeyVal::Year(n) => Value::Year(n),
            KeyVal::Decimal(d) => Value::Decimal(d.into()),
            KeyVal::Date(year, month, day) => Value::Date { year, month, day },
            KeyVal::DateTime(year, month, day, hour, minute, second, micros) => {
                Value::DateTime { year, month, day, hour, minute, second, micros }
            }
            KeyVal::Time(negative, hours, minutes, seconds, micros) => Value::Time { negative, hours, minutes, seconds, micros },
            KeyVal::Bytes(b) => Value::Bytes(b.into()),
        }
    }

    fn int(&self) -> Option<i128> {
        match self {
            KeyVal::Int(n) => Some(i128::from(*n)),
            KeyVal::UInt(n) => Some(i128::from(*n)),
            _ => None,
        }
    }
}

/// A loaded chunk: its last key (inclusive; `None`: everything above) and snapshot position.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChunkMark {
    upper: Option<Vec<KeyVal>>,
    threshold: Pos,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TableState {
    db: String,
    table: String,
    chunks: Vec<ChunkMark>,
    /// The threshold of a chunk whose records may have reached Kafka unacknowledged.
    attempt: Option<Pos>,
    /// Lowest threshold for the table's remaining chunks (after a crash mid-chunk).
    floor: Option<Pos>,
    rows: u64,
    total: Option<u64>,
    done: bool,
}

/// The load's durable progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadState {
    pub p0_file: String,
    pub p0_offset: u64,
    pub gtid_set: Option<String>,
    /// The id the next record gets.
    pub next_id: i64,
    tables: Vec<TableState>,
    pub done: bool,
}

impl LoadState {
    pub fn p0(&self) -> BinlogPosition {
        BinlogPosition::new(self.p0_file.clone(), self.p0_offset)
    }
}

pub struct LoadStore {
    db: Database,
    path: PathBuf,
    /// Saves nothing (a null sink delivers nothing, so no progress is real).
    discard: bool,
}

impl LoadStore {
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join("load.redb");
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::new(&path, e))?;
        let db = Database::create(&path).map_err(|e| StoreError::new(&path, e))?;
        Ok(Self { db, path, discard: false })
    }

    /// Keeps the progress in memory only.
    pub fn discard_writes(mut self) -> Self {
        self.discard = true;
        self
    }

    pub fn load(&self) -> Result<Option<LoadState>, StoreError> {
        let err = |e: &dyn std::fmt::Display| StoreError::new(&self.path, e);
        let txn = self.db.begin_read().map_err(|e| err(&e))?;
        let table = match txn.open_table(TABLE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(err(&e)),
        };
        let Some(bytes) = table.get(KEY).map_err(|e| err(&e))? else { return Ok(None) };
        serde_json::from_slice(bytes.value()).map(Some).map_err(|e| err(&format!("unreadable load state: {e}")))
    }

    pub fn save(&self, state: &LoadState) -> Result<(), StoreError> {
        if self.discard {
            return Ok(());
        }
        let err = |e: &dyn std::fmt::Display| StoreError::new(&self.path, e);
        let bytes = serde_json::to_vec(state).expect("load state serializes");
        let txn = self.db.begin_write().map_err(|e| err(&e))?;
        {
            let mut table = txn.open_table(TABLE).map_err(|e| err(&e))?;
            table.insert(KEY, bytes.as_slice()).map_err(|e| err(&e))?;
        }
        txn.commit().map_err(|e| err(&e))
    }
}

/// A fresh load state: the sync objects that exist now, to be loaded before streaming from `p0`.
pub async fn plan(task: &Task, info: &ServerInfo, p0: &BinlogPosition, gtid_set: Option<String>) -> Result<LoadState, RunError> {
    let mut schemas = SchemaCache::new(task.source.connect().await?, task.source.clone(), info.flavor);
    let mut tables = Vec::new();
    for (db, table) in schemas.list_tables().await? {
        if !task.filter.matches(&db, &table) || task.filter.is_shadow(&db, &table) {
            continue;
        }
        if task.heartbeat_table.as_ref().is_some_and(|(d, t)| *d == db && *t == table) {
            continue;
        }
        tables.push(TableState { db, table, chunks: Vec::new(), attempt: None, floor: None, rows: 0, total: None, done: false });
    }
    Ok(LoadState { p0_file: p0.file.clone(), p0_offset: p0.offset, gtid_set, next_id: 1, tables, done: false })
}

/// What the load writes with.
pub struct Output<'a> {
    pub sink: &'a Sink,
    pub encoder: &'a mut DtsAvroEncoder,
    pub server_version: &'a str,
    pub server_id: u32,
    pub status: &'a Arc<Status>,
    pub policy: crate::config::PartitionPolicy,
}

/// Loads every table not yet done. Returns `false` if `shutdown` interrupted it (progress saved).
pub async fn run<F: Future<Output = ()>>(
    task: &Task,
    info: &ServerInfo,
    store: &LoadStore,
    state: &mut LoadState,
    out: &mut Output<'_>,
    shutdown: &mut Pin<&mut F>,
) -> Result<bool, RunError> {
    let chunk_size = task.initial_load.chunk_size;
    let p0 = pos(&state.p0());
    let mut schemas = SchemaCache::new(task.source.connect().await?, task.source.clone(), info.flavor);
    let started = Instant::now();
    for t in 0..state.tables.len() {
        if state.tables[t].chunks.last().is_some_and(|c| c.upper.is_none()) {
            state.tables[t].done = true; // its open-ended last chunk is in Kafka
        }
        if state.tables[t].done {
            continue;
        }
        let (db, name) = (state.tables[t].db.clone(), state.tables[t].table.clone());
        let schema = match schemas.get(&db, &name).await {
            Ok(s) => s,
            Err(SourceError::Schema { reason, .. }) => {
                tracing::warn!(table = %format!("{db}.{name}"), reason = %reason, "table gone before its initial load; skipped");
                state.tables[t].done = true;
                store.save(state)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // After a crash mid-chunk, the rest of the table keeps the crashed attempt's threshold.
        if let Some(a) = state.tables[t].attempt.take() {
            let floor = state.tables[t].floor.map_or(a, |f| f.min(a));
            state.tables[t].floor = Some(floor);
        }
        let mut reader = TableReader::open(&task.source, info.flavor, schema.clone()).await?;
        let qualified = schema.qualified_name();
        if state.tables[t].total.is_none() {
            state.tables[t].total = estimate_rows(&task.source, &db, &name).await;
        }
        tracing::info!(table = %qualified, rows_done = state.tables[t].rows, estimated_rows = ?state.tables[t].total, keyed = reader.key().is_some(), "initial load of table");
        let progress = Progress::new(&qualified, state.tables[t].rows, state.tables[t].total);
        if task.initial_load.structure && state.tables[t].chunks.is_empty() {
            // Goes out with the table's first chunk (again, if that chunk is read again).
            let sql = sluice_source::snapshot::show_create(&task.source, &db, &name).await?;
            emit_ddl(out, &db, &name, &sql, &state.p0(), &mut state.next_id).await?;
        }
        let mut pending: VecDeque<(BatchId, ChunkMark, u64, i64)> = VecDeque::new();
        if let Some(key) = reader.key().map(<[usize]>::to_vec) {
            // A reader task reads the next chunk while this one goes out (one chunk ahead).
            let mut after: Option<Vec<Value<'static>>> = state.tables[t]
                .chunks
                .last()
                .map(|c| c.upper.as_ref().expect("only the last chunk is open-ended").iter().map(KeyVal::value).collect());
            let (tx, mut rx) = tokio::sync::mpsc::channel(1);
            let key_cols = key.clone();
            tokio::spawn(async move {
                loop {
                    let chunk = match reader.read_chunk(after.as_deref(), chunk_size).await {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    let last = chunk.last;
                    if let Some(row) = chunk.rows.last().filter(|_| !last) {
                        after = Some(key_cols.iter().map(|&i| row[i].clone()).collect());
                    }
                    if tx.send(Ok(chunk)).await.is_err() || last {
                        return;
                    }
                }
            });
            loop {
                let chunk = tokio::select! {
                    biased;
                    () = shutdown.as_mut() => {
                        drop(rx);
                        return stop(store, state, out, t, pending).await;
                    }
                    chunk = rx.recv() => match chunk {
                        Some(chunk) => chunk?,
                        None => return Err(SourceError::Schema { table: qualified.clone(), reason: "the chunk reader stopped".into() }.into()),
                    },
                };
                let snap = chunk.position.as_ref().map_or(p0, pos);
                let threshold = state.tables[t].floor.map_or(snap, |f| f.min(snap));
                state.tables[t].attempt = Some(state.tables[t].attempt.map_or(threshold, |a| a.min(threshold)));
                store.save(state)?;
                let upper = match chunk.last {
                    true => None,
                    false => Some(key.iter().map(|&i| KeyVal::of(&chunk.rows.last().expect("full chunk")[i]).expect("chunkable key")).collect()),
                };
                let position = chunk.position.clone().unwrap_or_else(|| state.p0());
                let n = chunk.rows.len() as u64;
                emit(out, &schema, &chunk.rows, &position, &mut state.next_id).await?;
                let batch = out.sink.end_batch();
                pending.push_back((batch, ChunkMark { upper, threshold }, n, state.next_id));
                collect(store, state, out, t, &mut pending, false).await?;
                progress.update(state.tables[t].rows + pending.iter().map(|p| p.2).sum::<u64>(), out.status, false);
                if chunk.last {
                    break;
                }
            }
        } else {
            tracing::warn!(table = %qualified, "no primary key or NOT NULL unique key of a chunkable type: loading in one scan (a crash during it loads the table again from its start)");
            state.tables[t].rows = 0;
            let (position, mut rx) = reader.scan(chunk_size).await?;
            let snap = position.as_ref().map_or(p0, pos);
            let threshold = state.tables[t].floor.map_or(snap, |f| f.min(snap));
            state.tables[t].floor = Some(threshold);
            state.tables[t].attempt = Some(threshold);
            store.save(state)?;
            let position = position.unwrap_or_else(|| state.p0());
            let mut rows_sent = 0;
            loop {
                let batch = tokio::select! {
                    biased;
                    () = shutdown.as_mut() => {
                        flush(out).await?;
                        return Ok(false);
                    }
                    batch = rx.recv() => batch,
                };
                let Some(rows) = batch else { break };
                let rows = rows?;
                emit(out, &schema, &rows, &position, &mut state.next_id).await?;
                rows_sent += rows.len() as u64;
                out.sink.end_batch();
                progress.update(rows_sent, out.status, false);
            }
            let batch = out.sink.end_batch();
            pending.push_back((batch, ChunkMark { upper: None, threshold }, rows_sent, state.next_id));
        }
        collect(store, state, out, t, &mut pending, true).await?;
        state.tables[t].done = true;
        state.tables[t].attempt = None;
        store.save(state)?;
        progress.update(state.tables[t].rows, out.status, true);
    }
    state.done = true;
    store.save(state)?;
    let rows: u64 = state.tables.iter().map(|t| t.rows).sum();
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(tables = state.tables.len(), rows, seconds = secs.round(), rows_per_sec = (rows as f64 / secs.max(0.001)).round(), "initial load complete; streaming the binlog from its start position");
    Ok(true)
}

/// Shutdown mid-table: deliver what is in flight and record it.
async fn stop(
    store: &LoadStore,
    state: &mut LoadState,
    out: &mut Output<'_>,
    t: usize,
    mut pending: VecDeque<(BatchId, ChunkMark, u64, i64)>,
) -> Result<bool, RunError> {
    tracing::info!("shutting down during the initial load: flushing chunks in flight");
    collect(store, state, out, t, &mut pending, true).await?;
    Ok(false)
}

async fn flush(out: &Output<'_>) -> Result<(), RunError> {
    Ok(out.sink.flush(Duration::from_secs(60)).await?)
}

/// Records acknowledged chunks as done; with `all` (or too many in flight) waits for them.
async fn collect(
    store: &LoadStore,
    state: &mut LoadState,
    out: &Output<'_>,
    t: usize,
    pending: &mut VecDeque<(BatchId, ChunkMark, u64, i64)>,
    all: bool,
) -> Result<(), RunError> {
    if all || pending.len() > MAX_PENDING_CHUNKS {
        flush(out).await?;
    }
    let acked = out.sink.acked_through();
    let mut moved = false;
    while pending.front().is_some_and(|(id, ..)| *id <= acked) {
        let (_, mark, rows, next_id) = pending.pop_front().expect("front");
        let ts = &mut state.tables[t];
        ts.chunks.push(mark);
        ts.rows += rows;
        state.next_id = state.next_id.max(next_id);
        moved = true;
    }
    if moved {
        if pending.is_empty() {
            state.tables[t].attempt = None;
        }
        store.save(state)?;
    }
    Ok(())
}

async fn emit(
    out: &mut Output<'_>,
    schema: &Arc<TableSchema>,
    rows: &[Vec<Value<'static>>],
    position: &BinlogPosition,
    next_id: &mut i64,
) -> Result<(), RunError> {
    let mut meta = snapshot_meta(out.server_id, out.server_version, position, 0);

    let (mut buf, mut key) = (Vec::with_capacity(4096), Vec::with_capacity(128));
    for row in rows {
        meta.id = *next_id;
        *next_id += 1;
        let change = RowChange { meta: &meta, table: schema, op: RowOp::Insert, before: None, after: Some(&row[..]) };
        buf.clear();
        out.encoder.encode_row_shared(&change, schema, &mut buf);
        routing::row_key(&change, &mut key);
        let partition = routing::partition(out.policy, &change, &key, out.sink.partitions());
        out.sink.send(partition, &key, &buf).await?;
        out.status.row_produced(key.len() + buf.len());
    }
    Ok(())
}

/// Where and when a copied row (or table definition) "happened": at the chunk's snapshot
/// position, read now.
fn snapshot_meta<'a>(server_id: u32, server_version: &'a str, position: &BinlogPosition, id: i64) -> ChangeMeta<'a> {
    let now_ms = crate::pipeline::now_ms();
    ChangeMeta {
        id,
        source_timestamp: now_ms / 1000,
        file_index: position.file_index(),
        offset: position.offset,
        safe_file_index: position.file_index(),
        safe_offset: position.offset,
        server_id,
        thread_id: None,
        gtid: None,
        server_version,
        read_time_ms: now_ms,
    }
}

/// One table's CREATE TABLE as a DTS DDL record.
async fn emit_ddl(out: &mut Output<'_>, db: &str, table: &str, sql: &str, position: &BinlogPosition, next_id: &mut i64) -> Result<(), RunError> {
    let meta = snapshot_meta(out.server_id, out.server_version, position, *next_id);

    *next_id += 1;
    let mut buf = Vec::with_capacity(256 + sql.len());
    out.encoder.encode_ddl(&sluice_event::DdlChange { meta: &meta, db, table: Some(table), sql }, &mut buf);
    let partition = routing::ddl_partition(out.policy, db, Some(table), out.sink.partitions());
    out.sink.send(partition, db.as_bytes(), &buf).await?;
    out.status.record_produced(db.len() + buf.len());
    Ok(())
}

/// `information_schema`'s row estimate, for the progress figures.
async fn estimate_rows(opts: &sluice_source::SourceOptions, db: &str, table: &str) -> Option<u64> {
    use mysql_async::prelude::Queryable;
    let mut conn = opts.connect().await.ok()?;
    let n: Option<Option<u64>> = conn
        .exec_first("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", (db, table))
        .await
        .ok()?;
    n.flatten()
}

/// Per-table progress: a bar on a terminal, log lines otherwise, and the status figures.
struct Progress {
    table: String,
    total: Option<u64>,
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    first: u64,
    last_log: std::cell::Cell<Instant>,
}

impl Progress {
    fn new(table: &str, done: u64, total: Option<u64>) -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total.unwrap_or(0).max(done));
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {human_pos}/{human_len} rows {per_sec} ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(table.to_string());
            bar.set_position(done);
            bar
        });
        Self { table: table.to_string(), total, bar, started: Instant::now(), first: done, last_log: std::cell::Cell::new(Instant::now()) }
    }

    fn update(&self, rows: u64, status: &Status, done: bool) {
        status.load_progress(&self.table, rows, self.total.map(|t| t.max(rows)), done);
        let rate = (rows - self.first.min(rows)) as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let eta = self.total.filter(|&t| t > rows && rate > 0.0).map(|t| ((t - rows) as f64 / rate).round() as u64);
        status.load_rate(&self.table, rate.round() as u64, eta);
        if let Some(bar) = &self.bar {
            if bar.length().is_some_and(|l| rows > l) {
                bar.set_length(rows);
            }
            bar.set_position(rows);
            if done {
                bar.finish();
            }
            return;
        }
        if done || self.last_log.get().elapsed() >= Duration::from_secs(5) {
            self.last_log.set(Instant::now());
            tracing::info!(table = %self.table, rows, estimated_total = ?self.total, rows_per_sec = rate.round(), eta_seconds = ?eta, done, "initial load progress");
        }
    }
}

/// The incremental phase's filter: which row events the chunks already hold.
pub struct Filter {
    tables: HashMap<(String, String), TableFilter>,
}

struct TableFilter {
    /// Chunks in key order with integer bounds, when every bound is integer.
    chunks: Option<Vec<(Option<Vec<i128>>, Pos)>>,
    /// The lowest and highest threshold of the table.
    min: Pos,
    max: Pos,
}

impl Filter {
    pub fn new(state: &LoadState) -> Filter {
        let mut tables = HashMap::new();
        for t in &state.tables {
            let Some(min) = t.chunks.iter().map(|c| c.threshold).min() else { continue };
            let max = t.chunks.iter().map(|c| c.threshold).max().unwrap_or(min);
            let chunks = t
                .chunks
                .iter()
                .map(|c| {
                    let upper = match &c.upper {
                        None => None,
                        Some(keys) => Some(keys.iter().map(KeyVal::int).collect::<Option<Vec<_>>>()?),
                    };
                    Some((upper, c.threshold))
                })
                .collect::<Option<Vec<_>>>();
            tables.insert((t.db.clone(), t.table.clone()), TableFilter { chunks, min, max });
        }
        Filter { tables }
    }

    /// Whether a row event at `at` must be sent: its key's chunk was read before `at`.
    pub fn keep(&self, table: &TableSchema, at: Pos, before: Option<&[Value<'_>]>, after: Option<&[Value<'_>]>) -> bool {
        let Some(t) = self.tables.get(&(table.db.clone(), table.table.clone())) else { return true };
        if at >= t.max {
            return true; // after every chunk
        }
        if at < t.min {
            return false; // before every chunk
        }
        let threshold = |image: &[Value<'_>]| -> Pos {
            let (Some(chunks), Some(key)) = (&t.chunks, table.row_key()) else { return t.min };
            let key: Option<Vec<i128>> = key
                .columns
                .iter()
                .map(|&i| match image.get(i) {
                    Some(Value::Int(n)) => Some(i128::from(*n)),
                    Some(Value::UInt(n)) => Some(i128::from(*n)),
                    _ => None,
                })
                .collect();
            let Some(key) = key else { return t.min };
            chunks.iter().find(|(upper, _)| upper.as_ref().is_none_or(|u| key <= *u)).map_or(t.min, |c| c.1)
        };
        before.is_some_and(|b| at >= threshold(b)) || after.is_some_and(|a| at >= threshold(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_event::{ColumnSchema, DataType, KeyInfo};

    fn state(chunks: Vec<ChunkMark>) -> LoadState {
        LoadState {
            p0_file: "mysql-bin.000001".into(),
            p0_offset: 4,
            gtid_set: None,
            next_id: 1,
            tables: vec![TableState { db: "d".into(), table: "t".into(), chunks, attempt: None, floor: None, rows: 0, total: None, done: true }],
            done: true,
        }
    }

    fn schema() -> TableSchema {
        TableSchema {
            db: "d".into(),
            table: "t".into(),
            columns: vec![ColumnSchema::new("id", DataType::BigInt), ColumnSchema::new("v", DataType::Int)],
            keys: vec![KeyInfo { name: "PRIMARY".into(), columns: vec![0] }],
        }
    }

    #[test]
    fn events_are_sent_from_their_chunks_snapshot_on() {
        // Chunks (-inf, 10] read at 1:100, (10, 20] at 1:300, (20, +inf) at 1:200.
        let f = Filter::new(&state(vec![
            ChunkMark { upper: Some(vec![KeyVal::Int(10)]), threshold: (1, 100) },
            ChunkMark { upper: Some(vec![KeyVal::Int(20)]), threshold: (1, 300) },
            ChunkMark { upper: None, threshold: (1, 200) },
        ]));
        let s = schema();
        let row = |id| vec![Value::Int(id), Value::Int(0)];
        let ins = |id, at| f.keep(&s, at, None, Some(&row(id)));
        assert!(!ins(5, (1, 99)) && ins(5, (1, 100)) && ins(5, (1, 150)));
        assert!(!ins(15, (1, 150)) && !ins(15, (1, 299)) && ins(15, (1, 300)));
        assert!(!ins(25, (1, 150)) && ins(25, (1, 250)) && ins(1_000_000, (1, 200)));
        assert!(ins(15, (2, 0)), "a later file is after every chunk");
        // A key moved from chunk 1 (read) to chunk 2 (not yet read at 1:250): sent.
        assert!(f.keep(&s, (1, 250), Some(&row(5)), Some(&row(15))));
        assert!(!f.keep(&s, (1, 50), Some(&row(5)), Some(&row(15))));
        // Other tables are not filtered.
        let other = TableSchema { table: "u".into(), ..schema() };
        assert!(f.keep(&other, (1, 0), None, Some(&row(5))));
    }

    #[test]
    fn keys_it_cannot_place_use_the_lowest_threshold() {
        let f = Filter::new(&state(vec![
            ChunkMark { upper: Some(vec![KeyVal::Bytes(b"m".to_vec())]), threshold: (1, 100) },
            ChunkMark { upper: None, threshold: (1, 300) },
        ]));
        let mut s = schema();
        s.columns[0] = ColumnSchema::new("id", DataType::VarChar);
        let row = vec![Value::Bytes(b"z".as_slice().into()), Value::Int(0)];
        assert!(f.keep(&s, (1, 150), None, Some(&row)), "sent again rather than lost");
        assert!(!f.keep(&s, (1, 99), None, Some(&row)));
    }
}
