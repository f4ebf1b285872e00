//! The initial load: every sync object's current rows as INSERT records (tagged
//! `initial_load`), then the binlog from the position the load started at, with no change lost
//! and none sent twice.
//!
//! # Method
//! 1. Before the load, `P0` = the binlog end (or the configured `start_position`), with the
//!    GTID state there. The stream that follows the load starts at `P0`; `P0` and the load's
//!    progress are kept in `<data_dir>/load.redb`.
//! 2. Tables are loaded `load_parallelism` at a time (a big table whose key is one integer
//!    column is first split into that many key ranges, loaded at the same time as if they were
//!    tables: each range's chunks stay within it, and the ranges' chunks together cover the
//!    key space in order), each in primary-key chunks
//!    ([`sluice_source::snapshot`]): chunk *c* covers the key range `(last(c-1), last(c)]` and
//!    is read in a consistent snapshot of its own (no lock; works on read-only replicas). What
//!    the chunk holds is known by one of:
//!    - MariaDB: the snapshot's exact binlog position `S(c)`: the chunk holds exactly the
//!      transactions before it (MariaDB commits in binlog order and takes the snapshot under
//!      the commit-order lock);
//!    - MySQL with GTIDs: `G(c)`, `gtid_executed` read just before the snapshot began: the
//!      chunk holds every transaction in it (a GTID joins the set only after its transaction
//!      committed), and maybe some committed in between;
//!    - otherwise `S(c) = P0`: nothing is assumed.
//! 3. The chunk's rows go to Kafka as INSERT records. Only when Kafka acknowledged them (or,
//!    exactly-once, committed them with a progress record) is the chunk recorded as done, with
//!    its upper key and `S(c)`/`G(c)`; a crash resumes at the next chunk.
//! 4. After the last table, the stream starts at `P0` (MySQL with GTIDs: from `P0`'s GTID set,
//!    so a transaction already in the binlog before `P0` but committed after it is not
//!    skipped). A row event of a loaded table whose key lies in chunk *c* is sent only if its
//!    position is at or after `S(c)`, or (GTIDs) its transaction is not in `G(c)`. From the
//!    binlog end seen when the load was complete on, every event is sent.
//!
//! # Why nothing is lost or doubled
//! The consumer's state of a key after the load is the chunk's image. The binlog events of that
//! key that the image holds are exactly those dropped (MariaDB), or a superset of those dropped
//! (GTIDs: a transaction that committed between the `gtid_executed` read and the snapshot is
//! sent again, upserting what the image already holds); every other event is sent, in binlog
//! order, after the image (the stream only starts once the load is complete). Keys inserted
//! after the chunk was read fall in some chunk too (the ranges cover the whole key space), so
//! their inserts are sent. An UPDATE that moves a row between chunks is sent if either side's
//! chunk wants it (the consumer deletes the old key, upserts the new one).
//!
//! Where a key cannot be placed in its chunk here (keys that are not all integers: string
//! collations are the server's business), the table's oldest chunk decides: such events may be
//! sent although the image already holds them (a double, never a loss). A crash while a chunk's
//! records were in flight lowers the threshold of the rest of that table to the crashed
//! attempt's (what it may have sent is overwritten by what follows). A table without a usable
//! key is read in one snapshot scan; a crash in the middle reads it again from the start (its
//! rows may then be in Kafka twice, except in exactly-once mode, where the scan is one Kafka
//! transaction).
//!
//! # Objects added later
//! The load state keeps the `[objects]` patterns it was planned with. When a task whose load is
//! done starts with other patterns, the tables only the new patterns match are planned as a new
//! round with `P0` = the stream's checkpoint: the same method, from there.
//!
//! # Failures
//! A lost source connection restarts the table at its next unrecorded chunk after a backoff (what
//! was sent is delivered and recorded first). A table altered during its load is noticed per
//! chunk (its columns are compared under the chunk's metadata lock, and a table rebuilt or a
//! column dropped under the snapshot fails the query): the chunk is read again with the new
//! definition. The schema history is seeded at `P0` before the load, so the stream decodes the
//! events before such an ALTER with the definition of their time.
//!
//! # Memory
//! Per table being loaded: the chunk going out, the one read ahead and the one being read, each
//! at most `chunk_size` rows and about [`CHUNK_BYTES`]; the producer's queue is bounded too.

use std::{
    cell::{Cell, RefCell},
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
use sluice_source::{snapshot::TableReader, Flavor, GtidState, SchemaCache, ServerInfo, SourceError};

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
/// The chunks loaded, by (load state entry, chunk number): appended, never rewritten, so a
/// save writes only what is new however many chunks a table has.
const CHUNKS: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("chunks");
/// Most chunks in flight (sent, not yet acknowledged) per table being loaded.
const MAX_PENDING_CHUNKS: usize = 4;
/// About the most memory one chunk's rows may take: wide rows get smaller chunks than
/// `chunk_size`, so a table's rows in memory (the chunk going out, the one read ahead, the one
/// being read) stay near three times this, whatever the width.
const CHUNK_BYTES: usize = 2 << 20;

/// The row count of the next chunk, after one of `rows` rows taking `bytes`.
fn next_limit(chunk_size: usize, rows: usize, bytes: usize) -> usize {
    let per_row = (bytes / rows.max(1)).max(1);
    (CHUNK_BYTES / per_row).clamp(16, chunk_size.max(16)).min(chunk_size)
}

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
    /// MySQL with GTIDs: the transactions the chunk surely holds (its `threshold` is then the
    /// load's start and says nothing).
    #[serde(default)]
    gtids: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TableState {
    db: String,
    table: String,
    /// Stored apart, in [`CHUNKS`] (read here from state files written before that).
    #[serde(default, skip_serializing)]
    chunks: Vec<ChunkMark>,
    /// The threshold of a chunk whose records may have reached Kafka unacknowledged.
    attempt: Option<Pos>,
    /// Lowest threshold for the table's remaining chunks (after a crash mid-chunk).
    floor: Option<Pos>,
    /// The same two as GTID sets (MySQL with GTIDs): the oldest one wins.
    #[serde(default)]
    attempt_gtids: Option<String>,
    #[serde(default)]
    floor_gtids: Option<String>,
    rows: u64,
    total: Option<u64>,
    done: bool,
    /// A big table is loaded as several key ranges at once, one entry each: the range
    /// `(lower, upper]` of a one-column integer key (`None`: unbounded).
    #[serde(default)]
    split: bool,
    #[serde(default)]
    lower: Option<KeyVal>,
    #[serde(default)]
    upper: Option<KeyVal>,
}

impl TableState {
    /// A table not loaded yet.
    fn new(db: String, table: String) -> Self {
        TableState {
            db,
            table,
            chunks: Vec::new(),
            attempt: None,
            floor: None,
            attempt_gtids: None,
            floor_gtids: None,
            rows: 0,
            total: None,
            done: false,
            split: false,
            lower: None,
            upper: None,
        }
    }

    fn qualified(&self) -> String {
        format!("{}.{}", self.db, self.table)
    }
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
    /// Exactly-once: the sequence number of the last chunk committed, and the chunk whose
    /// commit was under way.
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    committing: Option<Committing>,
    /// The binlog end when the load was complete: no event from there on is in any chunk.
    #[serde(default)]
    pub end: Option<(String, u64)>,
    /// Names this load in its exactly-once progress records.
    #[serde(default)]
    pub id: String,
    /// `[objects]` include and exclude when the tables were planned: tables that later
    /// patterns add are loaded then.
    #[serde(default)]
    objects: Option<(Vec<String>, Vec<String>)>,
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
    /// How many chunks of each entry are stored.
    stored: std::sync::Mutex<Vec<usize>>,
}

impl LoadStore {
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join("load.redb");
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::new(&path, e))?;
        let db = Database::create(&path).map_err(|e| StoreError::new(&path, e))?;
        Ok(Self { db, path, discard: false, stored: std::sync::Mutex::new(Vec::new()) })
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
        let mut state: LoadState = serde_json::from_slice(bytes.value()).map_err(|e| err(&format!("unreadable load state: {e}")))?;
        let mut stored = vec![0; state.tables.len()];
        match txn.open_table(CHUNKS) {
            Ok(chunks) => {
                for (i, t) in state.tables.iter_mut().enumerate() {
                    for item in chunks.range((i as u32, 0)..=(i as u32, u32::MAX)).map_err(|e| err(&e))? {
                        let (_, mark) = item.map_err(|e| err(&e))?;
                        t.chunks.push(serde_json::from_slice(mark.value()).map_err(|e| err(&format!("unreadable chunk: {e}")))?);
                    }
                    stored[i] = t.chunks.len();
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {} // written before chunks were apart
            Err(e) => return Err(err(&e)),
        }
        *self.stored.lock().expect("not poisoned") = stored;
        Ok(Some(state))
    }

    pub fn save(&self, state: &LoadState) -> Result<(), StoreError> {
        if self.discard {
            return Ok(());
        }
        let err = |e: &dyn std::fmt::Display| StoreError::new(&self.path, e);
        let bytes = serde_json::to_vec(state).expect("load state serializes");
        let mut stored = self.stored.lock().expect("not poisoned");
        stored.resize(state.tables.len(), 0);
        let txn = self.db.begin_write().map_err(|e| err(&e))?;
        {
            let mut table = txn.open_table(TABLE).map_err(|e| err(&e))?;
            table.insert(KEY, bytes.as_slice()).map_err(|e| err(&e))?;
            let mut chunks = txn.open_table(CHUNKS).map_err(|e| err(&e))?;
            for (i, t) in state.tables.iter().enumerate() {
                for (n, mark) in t.chunks.iter().enumerate().skip(stored[i]) {
                    let mark = serde_json::to_vec(mark).expect("chunk serializes");
                    chunks.insert((i as u32, n as u32), mark.as_slice()).map_err(|e| err(&e))?;
                }
            }
        }
        txn.commit().map_err(|e| err(&e))?;
        for (i, t) in state.tables.iter().enumerate() {
            stored[i] = t.chunks.len();
        }
        Ok(())
    }
}

/// The sync objects that exist now (that `also` accepts).
async fn sync_objects(task: &Task, info: &ServerInfo, also: impl Fn(&str, &str) -> bool) -> Result<Vec<TableState>, RunError> {
    let mut schemas = SchemaCache::new(task.source.connect().await?, task.source.clone(), info.flavor);
    let mut tables = Vec::new();
    for (db, table) in schemas.list_tables().await? {
        if !task.filter.matches(&db, &table) || task.filter.is_shadow(&db, &table) || !also(&db, &table) {
            continue;
        }
        if task.heartbeat_table.as_ref().is_some_and(|(d, t)| *d == db && *t == table) {
            continue;
        }
        tables.push(TableState::new(db, table));
    }
    Ok(tables)
}

impl LoadState {
    /// After the task's `[objects]` changed: the tables the new patterns add (that the old ones
    /// did not match; tables created since under the old patterns came through the binlog) are
    /// planned for a load before streaming on from `at`. Returns how many were added.
    pub async fn add_new_objects(
        &mut self,
        task: &Task,
        info: &ServerInfo,
        at: &BinlogPosition,
        gtid_set: Option<String>,
        next_id: i64,
    ) -> Result<usize, RunError> {
        let now = (task.include.clone(), task.exclude.clone());
        let before = match &self.objects {
            Some(o) if *o == now => return Ok(0),
            // A state from before the patterns were kept: nothing is known to be new.
            None => None,
            Some((include, exclude)) => Some(sluice_source::TableFilter::new(include, exclude).unwrap_or_else(|_| task.filter.clone())),
        };
        self.objects = Some(now);
        let Some(before) = before else { return Ok(0) };
        let known: std::collections::HashSet<(String, String)> = self.tables.iter().map(|t| (t.db.clone(), t.table.clone())).collect();
        let added = sync_objects(task, info, |db, table| !before.matches(db, table) && !known.contains(&(db.to_string(), table.to_string()))).await?;
        if added.is_empty() {
            return Ok(0);
        }
        tracing::info!(tables = added.len(), from = %at, "[objects] added tables: loading them before streaming on");
        self.tables.extend(added.iter().cloned());
        self.p0_file = at.file.clone();
        self.p0_offset = at.offset;
        self.gtid_set = gtid_set;
        self.next_id = self.next_id.max(next_id);
        self.end = None;
        self.done = false;
        Ok(added.len())
    }
}

/// A fresh load state: the sync objects that exist now, to be loaded before streaming from `p0`.
pub async fn plan(task: &Task, info: &ServerInfo, p0: &BinlogPosition, gtid_set: Option<String>) -> Result<LoadState, RunError> {
    let tables = sync_objects(task, info, |_, _| true).await?;
    Ok(LoadState { p0_file: p0.file.clone(), p0_offset: p0.offset, gtid_set, next_id: 1, tables, done: false, seq: 0, committing: None, end: None, id: format!("{}:{}@{}", p0.file, p0.offset, crate::pipeline::now_ms()), objects: Some((task.include.clone(), task.exclude.clone())) })
}

/// What the load writes with.
pub struct Output<'a> {
    pub sink: &'a Sink,
    pub server_version: &'a str,
    pub server_id: u32,
    pub status: &'a Arc<Status>,
    pub policy: crate::config::PartitionPolicy,
}

/// The key of the load's progress records in exactly-once mode (the stream's is the task name).
pub fn progress_key(task: &Task) -> Vec<u8> {
    format!("{}.initial_load", task.name).into_bytes()
}

/// Exactly-once mode: the chunk whose Kafka transaction was being committed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Committing {
    seq: u64,
    table: usize,
    mark: ChunkMark,
    rows: u64,
}

/// An exactly-once progress record of the load: which load (a task loads again after its
/// data_dir was wiped), and the sequence number of the chunk it commits.
#[derive(Debug, Serialize, Deserialize)]
pub struct CommittedSeq {
    #[serde(default)]
    pub load: String,
    pub seq: u64,
}

/// A chunk sent and not yet acknowledged.
struct Pending {
    batch: BatchId,
    table: usize,
    mark: ChunkMark,
    rows: u64,
}

/// What the workers of one load share. They all run on one task, so the cells are never
/// borrowed across an `.await`.
struct Load<'a, 'o> {
    task: &'a Task,
    info: &'a ServerInfo,
    store: &'a LoadStore,
    out: &'a Output<'o>,
    state: RefCell<LoadState>,
    /// Chunks in flight, in the order their batches were closed.
    pending: RefCell<VecDeque<Pending>>,
    next_table: Cell<usize>,
    /// Held while a chunk's records go out (and, exactly-once, are committed), so a batch or
    /// a Kafka transaction holds whole chunks.
    emitting: tokio::sync::Mutex<()>,
    /// Exactly-once: the key of the load's progress records.
    progress_key: Option<Vec<u8>>,
    bars: Option<&'static indicatif::MultiProgress>,
    /// Per table: its load's figures so far (a split table reports its ranges together).
    figures: RefCell<HashMap<String, Figures>>,
    /// The next record id to give; the state's `next_id` is the end of the ids reserved (saved
    /// before use, a block at a time, so no id is ever given twice).
    next_id: Cell<i64>,
}

/// Record ids reserved per save.
const ID_BLOCK: i64 = 1 << 20;

/// One table's load figures: when this run began loading it, rows it had then, and each key
/// range's rows and whether it is done.
struct Figures {
    started: Instant,
    first: u64,
    ranges: HashMap<usize, (u64, bool)>,
    last_log: Instant,
}

/// A table is split into key ranges loaded in parallel when it has at least this many chunks.
const SPLIT_CHUNKS: u64 = 4;

/// Loads every table not yet done, `load_parallelism` tables at a time. Returns `false` if
/// `shutdown` interrupted it (what was sent is delivered and recorded first).
pub async fn run<F: Future<Output = ()>>(
    task: &Task,
    info: &ServerInfo,
    store: &LoadStore,
    state: &mut LoadState,
    out: &Output<'_>,
    shutdown: &mut Pin<&mut F>,
) -> Result<bool, RunError> {
    let started = Instant::now();
    let rows_before: u64 = state.tables.iter().map(|t| t.rows).sum();
    let load = Load {
        task,
        info,
        store,
        out,
        state: RefCell::new(state.clone()),
        pending: RefCell::new(VecDeque::new()),
        next_table: Cell::new(0),
        emitting: tokio::sync::Mutex::new(()),
        progress_key: out.sink.transactional().then(|| progress_key(task)),
        bars: crate::terminal::bars(),
        figures: RefCell::new(HashMap::new()),
        next_id: Cell::new(state.next_id),
    };
    if task.initial_load.parallelism > 1 {
        load.split_big_tables().await?;
    }
    let todo = load.state.borrow().tables.iter().filter(|t| !t.done).count();
    let workers = task.initial_load.parallelism.min(todo).max(1);
    tracing::info!(tables = state.table_count(), parts_to_load = todo, parallelism = workers, "initial load");
    let result = {
        let all = futures_util::future::try_join_all((0..workers).map(|_| load.worker()));
        tokio::select! {
            biased;
            () = shutdown.as_mut() => None,
            r = all => Some(r),
        }
    };
    if result.is_none() {
        tracing::info!("shutting down during the initial load: delivering the chunks in flight");
    }
    let settled = load.settle().await;
    let next_id = load.next_id.get();
    *state = load.state.into_inner();
    match result {
        None => return settled.map(|()| false),
        Some(Err(e)) => return Err(e),
        Some(Ok(_)) => settled?,
    }
    let end = sluice_source::binlog_end(&mut task.source.connect().await?, &task.source).await?;
    state.end = Some((end.file, end.offset));
    state.done = true;
    state.next_id = next_id; // exact: nothing is in flight any more
    store.save(state)?;
    let rows = state.tables.iter().map(|t| t.rows).sum::<u64>() - rows_before;
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(tables = state.table_count(), rows, seconds = (secs * 10.0).round() / 10.0, rows_per_sec = (rows as f64 / secs.max(0.001)).round(), "initial load complete; streaming the binlog from its start position");
    Ok(true)
}

impl Load<'_, '_> {
    fn save(&self) -> Result<(), RunError> {
        Ok(self.store.save(&self.state.borrow())?)
    }

    fn take_table(&self) -> Option<usize> {
        let s = self.state.borrow();
        let mut t = self.next_table.get();
        while t < s.tables.len() && s.tables[t].done {
            t += 1;
        }
        self.next_table.set(t + 1);
        (t < s.tables.len()).then_some(t)
    }

    /// Loads tables until none is left. A lost source connection or a table altered under the
    /// load restarts the table at its first chunk not yet recorded.
    async fn worker(&self) -> Result<(), RunError> {
        let mut encoder = DtsAvroEncoder::new();
        while let Some(t) = self.take_table() {
            let mut failures = 0u32;
            loop {
                let e = match self.load_table(t, &mut encoder).await {
                    Ok(()) => break,
                    Err(e) => e,
                };
                failures += 1;
                match &e {
                    RunError::Source(SourceError::DefinitionChanged { .. }) if failures <= 10 => {
                        tracing::info!(error = %e, "reading the table's definition again");
                    }
                    e if e.is_transient() => {
                        let delay = Duration::from_millis(250 * 2u64.saturating_pow(failures.min(7)));
                        tracing::warn!(error = %e, retry_in = ?delay, "initial load: source connection lost; resuming the table at its next chunk");
                        self.out.status.degraded(&e.to_string());
                        tokio::time::sleep(delay).await;
                        self.out.status.set_state(crate::status::State::Loading);
                    }
                    _ => return Err(e),
                }
                // Exactly-once: what the failed attempt sent and did not commit (a keyless scan's
                // rows) must not be committed by the next chunk's transaction. Every turn commits
                // what it sent, so under the turn the open transaction holds nothing else.
                if self.progress_key.is_some() {
                    let _turn = self.emitting.lock().await;
                    self.out.sink.abort().await?;
                }
                // Everything sent is delivered and recorded before the table resumes.
                self.settle().await?;
            }
        }
        Ok(())
    }

    async fn load_table(&self, t: usize, encoder: &mut DtsAvroEncoder) -> Result<(), RunError> {
        let task = self.task;
        let (db, name, fresh) = {
            let s = self.state.borrow();
            // A split table's definition goes out with its first key range only.
            (s.tables[t].db.clone(), s.tables[t].table.clone(), s.tables[t].chunks.is_empty() && s.tables[t].lower.is_none())
        };
        let schema = match SchemaCache::new(task.source.connect().await?, task.source.clone(), self.info.flavor).get(&db, &name).await {
            Ok(s) => s,
            Err(SourceError::Schema { reason, .. }) => {
                tracing::warn!(table = %format!("{db}.{name}"), reason = %reason, "table gone before its initial load; skipped");
                self.state.borrow_mut().tables[t].done = true;
                return self.save();
            }
            Err(e) => return Err(e.into()),
        };
        {
            // After a crash mid-chunk, the rest of the table keeps the crashed attempt's threshold.
            let mut s = self.state.borrow_mut();
            let ts = &mut s.tables[t];
            if ts.chunks.last().is_some_and(|c| c.upper.is_none()) {
                ts.done = true; // its open-ended last chunk is in Kafka
                drop(s);
                return self.save();
            }
            if let Some(a) = ts.attempt.take() {
                ts.floor = Some(ts.floor.map_or(a, |f| f.min(a)));
            }
            if let Some(g) = ts.attempt_gtids.take() {
                ts.floor_gtids = ts.floor_gtids.take().or(Some(g));
            }
        }
        self.save()?;
        let reader = TableReader::open(&task.source, self.info.flavor, schema.clone()).await?;
        let qualified = schema.qualified_name();
        if self.state.borrow().tables[t].total.is_none() {
            let total = estimate_rows(&task.source, &db, &name).await;
            self.state.borrow_mut().tables[t].total = total;
        }
        let (rows, total, range, ranges) = {
            let s = self.state.borrow();
            let ts = &s.tables[t];
            let ranges = s.tables.iter().filter(|e| e.db == ts.db && e.table == ts.table).count() as u64;
            let range = ts.split.then(|| format!("({}, {}{}", bound_text(&ts.lower, true), bound_text(&ts.upper, false), if ts.upper.is_some() { "]" } else { ")" }));
            (ts.rows, ts.total, range, ranges)
        };
        tracing::info!(table = %qualified, key_range = range.as_deref().unwrap_or("all"), rows_done = rows, estimated_rows = ?total, keyed = reader.key().is_some(), "initial load of table");
        let label = match &range {
            Some(r) => format!("{qualified} {r}"),
            None => qualified.clone(),
        };
        let progress = Progress::new(self.bars, &qualified, &label, t, rows, total, ranges);
        self.report(&progress, rows, false);
        // Goes out with the table's first chunk, in the same turn (again, if that chunk is read
        // again).
        let mut ddl = match task.initial_load.structure && task.emit_ddl && fresh {
            true => Some(sluice_source::snapshot::show_create(&task.source, &db, &name).await?),
            false => None,
        };
        match reader.key().is_some() {
            true => self.load_chunks(t, reader, &schema, &progress, encoder, &mut ddl).await?,
            false => self.load_scan(t, reader, &schema, &progress, encoder, &mut ddl).await?,
        }
        self.settle().await?;
        let rows = {
            let mut s = self.state.borrow_mut();
            s.tables[t].done = true;
            s.tables[t].attempt = None;
            s.tables[t].attempt_gtids = None;
            s.tables[t].rows
        };
        self.save()?;
        self.report(&progress, rows, true);
        Ok(())
    }

    /// A keyed table, chunk after chunk from the first one not recorded; a reader task reads
    /// the next chunk while this one goes out.
    async fn load_chunks(
        &self,
        t: usize,
        mut reader: TableReader,
        schema: &Arc<TableSchema>,
        progress: &Progress,
        encoder: &mut DtsAvroEncoder,
        ddl: &mut Option<String>,
    ) -> Result<(), RunError> {
        let key = reader.key().expect("a keyed table").to_vec();
        let chunk_size = self.task.initial_load.chunk_size;
        let p0 = pos(&self.state.borrow().p0());
        let (mut after, upper): (Option<Vec<Value<'static>>>, Option<Vec<Value<'static>>>) = {
            let s = self.state.borrow();
            let ts = &s.tables[t];
            let after = match ts.chunks.last() {
                Some(c) => Some(c.upper.as_ref().expect("only the last chunk is open-ended").iter().map(KeyVal::value).collect()),
                None => ts.lower.as_ref().map(|k| vec![k.value()]),
            };
            (after, ts.upper.as_ref().map(|k| vec![k.value()]))
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let key_cols = key.clone();
        tokio::spawn(async move {
            // The first chunk is small: it measures the rows' width.
            let mut limit = chunk_size.min(256);
            loop {
                let chunk = match reader.read_chunk(after.as_deref(), upper.as_deref(), limit).await {
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
                limit = next_limit(chunk_size, chunk.rows.len(), chunk.bytes);
                if tx.send(Ok(chunk)).await.is_err() || last {
                    return;
                }
            }
        });
        let mut sent = self.state.borrow().tables[t].rows;
        loop {
            let chunk = match rx.recv().await {
                Some(c) => c?,
                None => return Err(SourceError::Schema { table: schema.qualified_name(), reason: "the chunk reader stopped".into() }.into()),
            };
            let snap = chunk.position.as_ref().map_or(p0, pos);
            let (floor, floor_gtids) = {
                let s = self.state.borrow();
                (s.tables[t].floor, s.tables[t].floor_gtids.clone())
            };
            let upper = match chunk.last {
                true => None,
                false => Some(key.iter().map(|&i| KeyVal::of(&chunk.rows.last().expect("full chunk")[i]).expect("chunkable key")).collect()),
            };
            let gtids = floor_gtids.or(chunk.gtids.clone());
            let mark = ChunkMark { upper, threshold: floor.map_or(snap, |f| f.min(snap)), gtids };
            let position = chunk.position.clone().unwrap_or_else(|| self.state.borrow().p0());
            let n = chunk.rows.len() as u64;
            {
                let _turn = self.emitting.lock().await;
                self.emit_ddl(schema, ddl.take(), encoder).await?;
                let first_id = self.start_chunk(t, mark.threshold, mark.gtids.as_deref(), n)?;
                emit(self.out, encoder, schema, &chunk.rows, &position, first_id).await?;
                self.finish_chunk(t, mark, n).await?;
            }
            self.limit_in_flight().await?;
            sent += n;
            self.report(progress, sent, false);
            if chunk.last {
                return Ok(());
            }
        }
    }

    /// A table without a usable key: one snapshot scan, recorded as one open-ended chunk when
    /// it is all delivered (a crash before reads it again from the start).
    async fn load_scan(
        &self,
        t: usize,
        reader: TableReader,
        schema: &Arc<TableSchema>,
        progress: &Progress,
        encoder: &mut DtsAvroEncoder,
        ddl: &mut Option<String>,
    ) -> Result<(), RunError> {
        tracing::warn!(table = %schema.qualified_name(), "no primary key or NOT NULL unique key of a chunkable type: loading in one scan (a crash during it loads the table again from its start)");
        let p0 = pos(&self.state.borrow().p0());
        let (position, gtids, mut rx) = reader.scan(self.task.initial_load.chunk_size, CHUNK_BYTES).await?;
        let snap = position.as_ref().map_or(p0, pos);
        let (threshold, gtids) = {
            let mut s = self.state.borrow_mut();
            let ts = &mut s.tables[t];
            ts.rows = 0;
            let threshold = ts.floor.map_or(snap, |f| f.min(snap));
            ts.floor = Some(threshold);
            ts.floor_gtids = ts.floor_gtids.take().or(gtids);
            (threshold, ts.floor_gtids.clone())
        };
        let position = position.unwrap_or_else(|| self.state.borrow().p0());
        // Exactly-once: the whole scan is one Kafka transaction.
        let whole = match self.progress_key.is_some() {
            true => Some(self.emitting.lock().await),
            false => None,
        };
        if whole.is_some() {
            self.emit_ddl(schema, ddl.take(), encoder).await?;
        }
        let mut rows_sent = 0;
        while let Some(rows) = rx.recv().await {
            let rows = rows?;
            let n = rows.len() as u64;
            let turn = match whole {
                Some(_) => None,
                None => Some(self.emitting.lock().await),
            };
            self.emit_ddl(schema, ddl.take(), encoder).await?;
            let first_id = self.start_chunk(t, threshold, gtids.as_deref(), n)?;
            emit(self.out, encoder, schema, &rows, &position, first_id).await?;
            drop(turn);
            rows_sent += n;
            self.report(progress, rows_sent, false);
        }
        let _turn = match whole {
            Some(g) => g,
            None => self.emitting.lock().await,
        };
        self.emit_ddl(schema, ddl.take(), encoder).await?; // an empty table
        self.finish_chunk(t, ChunkMark { upper: None, threshold, gtids }, rows_sent).await
    }

    /// A table's CREATE TABLE record, if `sql`, at the load's start position.
    async fn emit_ddl(&self, schema: &TableSchema, sql: Option<String>, encoder: &mut DtsAvroEncoder) -> Result<(), RunError> {
        let Some(sql) = sql else { return Ok(()) };
        let id = self.reserve(1)?;
        let position = self.state.borrow().p0();
        emit_ddl(self.out, encoder, &schema.db, &schema.table, &sql, &position, id).await
    }

    /// Before a chunk's records go out: reserves their ids and, at-least-once, notes that
    /// records of this threshold may reach Kafka. Returns the first id.
    fn start_chunk(&self, t: usize, threshold: Pos, gtids: Option<&str>, rows: u64) -> Result<i64, RunError> {
        let mut changed = false;
        if self.progress_key.is_none() {
            let mut s = self.state.borrow_mut();
            let ts = &mut s.tables[t];
            let attempt = Some(ts.attempt.map_or(threshold, |a| a.min(threshold)));
            changed |= attempt != ts.attempt;
            ts.attempt = attempt;
            if ts.attempt_gtids.is_none() && gtids.is_some() {
                ts.attempt_gtids = gtids.map(str::to_string);
                changed = true;
            }
        }
        let (first, saved) = self.take_ids(rows)?;
        if changed && !saved {
            self.save()?;
        }
        Ok(first)
    }

    /// Reserves `n` record ids; returns the first.
    fn reserve(&self, n: u64) -> Result<i64, RunError> {
        Ok(self.take_ids(n)?.0)
    }

    /// Gives `n` ids from the reserved block, reserving (and saving) the next block when it is
    /// used up. Returns the first id and whether the state was saved.
    fn take_ids(&self, n: u64) -> Result<(i64, bool), RunError> {
        let first = self.next_id.get();
        let end = first + n as i64;
        self.next_id.set(end);
        if end <= self.state.borrow().next_id {
            return Ok((first, false));
        }
        self.state.borrow_mut().next_id = end + ID_BLOCK;
        self.save()?;
        Ok((first, true))
    }

    /// After a chunk's records went out: at-least-once, its batch is closed and the chunk is
    /// recorded once Kafka acknowledged it; exactly-once, the Kafka transaction commits it
    /// together with a progress record, and it is recorded at once.
    async fn finish_chunk(&self, t: usize, mark: ChunkMark, rows: u64) -> Result<(), RunError> {
        let Some(key) = &self.progress_key else {
            let batch = self.out.sink.end_batch();
            self.pending.borrow_mut().push_back(Pending { batch, table: t, mark, rows });
            return self.collect();
        };
        let seq = {
            let mut s = self.state.borrow_mut();
            s.seq += 1;
            s.committing = Some(Committing { seq: s.seq, table: t, mark: mark.clone(), rows });
            s.seq
        };
        self.save()?;
        let record = serde_json::to_vec(&CommittedSeq { load: self.state.borrow().id.clone(), seq }).expect("serializes");
        self.out.sink.commit(key, &record).await?;
        {
            let mut s = self.state.borrow_mut();
            s.committing = None;
            s.record(t, mark, rows);
        }
        self.save()
    }

    /// Records the chunks Kafka acknowledged.
    fn collect(&self) -> Result<(), RunError> {
        let acked = self.out.sink.acked_through();
        let mut pending = self.pending.borrow_mut();
        if pending.front().is_none_or(|p| p.batch > acked) {
            return Ok(());
        }
        {
            let mut s = self.state.borrow_mut();
            while pending.front().is_some_and(|p| p.batch <= acked) {
                let p = pending.pop_front().expect("front");
                s.record(p.table, p.mark, p.rows);
                if !pending.iter().any(|q| q.table == p.table) {
                    s.tables[p.table].attempt = None;
                    s.tables[p.table].attempt_gtids = None;
                }
            }
        }
        drop(pending);
        // Every acknowledged chunk is saved: a crash resumes at the next one.
        self.save()
    }

    /// Waits for deliveries when too many chunks are in flight.
    async fn limit_in_flight(&self) -> Result<(), RunError> {
        if self.pending.borrow().len() > MAX_PENDING_CHUNKS * self.task.initial_load.parallelism {
            flush(self.out).await?;
        }
        self.collect()
    }

    /// Delivers everything sent and records it.
    async fn settle(&self) -> Result<(), RunError> {
        flush(self.out).await?;
        self.collect()
    }
}

impl LoadState {
    /// How many tables the load covers (a split table counts once).
    fn table_count(&self) -> usize {
        self.tables.iter().filter(|t| t.lower.is_none()).count()
    }

    /// A chunk delivered (and acknowledged, or committed): the table's progress moves past it.
    fn record(&mut self, t: usize, mark: ChunkMark, rows: u64) {
        let ts = &mut self.tables[t];
        ts.chunks.push(mark);
        ts.rows += rows;
    }

    /// Exactly-once: settles the chunk whose commit a crash interrupted, given the sequence
    /// number of the load's newest committed progress record. Returns whether there was one.
    pub fn settle_commit(&mut self, committed: Option<CommittedSeq>) -> bool {
        let Some(c) = self.committing.take() else { return false };
        if committed.is_some_and(|r| r.load == self.id && r.seq >= c.seq) {
            self.record(c.table, c.mark, c.rows);
        }
        true
    }

    pub fn committing(&self) -> bool {
        self.committing.is_some()
    }
}

async fn flush(out: &Output<'_>) -> Result<(), RunError> {
    Ok(out.sink.flush(Duration::from_secs(60)).await?)
}

async fn emit(
    out: &Output<'_>,
    encoder: &mut DtsAvroEncoder,
    schema: &Arc<TableSchema>,
    rows: &[Vec<Value<'static>>],
    position: &BinlogPosition,
    first_id: i64,
) -> Result<(), RunError> {
    let mut meta = snapshot_meta(out.server_id, out.server_version, position, first_id);
    let (mut buf, mut key) = (Vec::with_capacity(4096), Vec::with_capacity(128));
    for row in rows {
        let change = RowChange { meta: &meta, table: schema, op: RowOp::Insert, before: None, after: Some(&row[..]) };
        buf.clear();
        encoder.encode_row_shared(&change, schema, &mut buf);
        routing::row_key(&change, &mut key);
        let partition = routing::partition(out.policy, &change, &key, out.sink.partitions());
        out.sink.send(partition, &key, &buf).await?;
        out.status.row_produced(key.len() + buf.len());
        meta.id += 1;
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
        initial_load: true,
    }
}

/// One table's CREATE TABLE as a DTS DDL record.
async fn emit_ddl(
    out: &Output<'_>,
    encoder: &mut DtsAvroEncoder,
    db: &str,
    table: &str,
    sql: &str,
    position: &BinlogPosition,
    id: i64,
) -> Result<(), RunError> {
    let meta = snapshot_meta(out.server_id, out.server_version, position, id);
    let mut buf = Vec::with_capacity(256 + sql.len());
    encoder.encode_ddl(&sluice_event::DdlChange { meta: &meta, db, table: Some(table), sql }, &mut buf);
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

/// One table's (or key range's) progress bar, on a terminal; the figures are kept per table by
/// [`Load::report`].
struct Progress {
    table: String,
    /// The entry of the load state being loaded.
    entry: usize,
    total: Option<u64>,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// `total`: the table's estimated rows, of which this entry has about a `ranges`th.
    fn new(bars: Option<&indicatif::MultiProgress>, table: &str, label: &str, entry: usize, done: u64, total: Option<u64>, ranges: u64) -> Self {
        let bar = bars.map(|bars| {
            let bar = bars.add(indicatif::ProgressBar::new((total.unwrap_or(0) / ranges.max(1)).max(done)));
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {human_pos}/{human_len} rows {rate} ETA {eta}")
                    .expect("valid template")
                    .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0} rows/s", state.per_sec());
                    })
                    .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar.set_position(done);
            bar
        });
        Self { table: table.to_string(), entry, total, bar }
    }
}

/// A key range bound for people: the number, or -∞ (`lower`) or ∞.
fn bound_text(bound: &Option<KeyVal>, lower: bool) -> String {
    match bound.as_ref().and_then(KeyVal::int) {
        Some(n) => n.to_string(),
        None if lower => "-∞".into(),
        None => "∞".into(),
    }
}

impl Load<'_, '_> {
    /// A table's (or key range's) progress: its bar, and the table's figures in the status
    /// (rows, rows/s, ETA) and, without a terminal, in a log line every 5 s.
    fn report(&self, p: &Progress, rows: u64, done: bool) {
        if let Some(bar) = &p.bar {
            if bar.length().is_some_and(|l| rows > l) {
                bar.set_length(rows);
            }
            bar.set_position(rows);
            if done {
                bar.set_length(rows);
                bar.finish();
            }
        }
        let mut figures = self.figures.borrow_mut();
        let f = figures.entry(p.table.clone()).or_insert_with(|| Figures {
            started: Instant::now(),
            first: 0,
            ranges: HashMap::new(),
            last_log: Instant::now(),
        });
        if !f.ranges.contains_key(&p.entry) {
            f.first += rows;
        }
        f.ranges.insert(p.entry, (rows, done));
        // The table's entries loaded in earlier runs count with their recorded rows.
        let (rows, all_done) = {
            let s = self.state.borrow();
            let entries = s.tables.iter().enumerate().filter(|(_, e)| e.qualified() == p.table);
            let mut sum = 0;
            let mut all_done = true;
            for (i, e) in entries {
                let (r, d) = f.ranges.get(&i).copied().unwrap_or((e.rows, e.done));
                sum += r;
                all_done &= d;
            }
            (sum, all_done)
        };
        let status = self.out.status;
        status.load_progress(&p.table, rows, p.total.map(|t| t.max(rows)), all_done);
        let rate = (rows - f.first.min(rows)) as f64 / f.started.elapsed().as_secs_f64().max(0.001);
        let eta = p.total.filter(|&t| t > rows && rate > 0.0).map(|t| ((t - rows) as f64 / rate).round() as u64);
        status.load_rate(&p.table, rate.round() as u64, eta);
        if p.bar.is_none() && (all_done && done || f.last_log.elapsed() >= Duration::from_secs(5)) {
            f.last_log = Instant::now();
            tracing::info!(table = %p.table, rows, estimated_total = ?p.total, rows_per_sec = rate.round(), eta_seconds = ?eta, done = all_done, "initial load progress");
        }
    }

    /// Splits each big table not begun yet whose key is one integer column into key ranges, one
    /// entry of the load state each, so that several workers load it at once.
    async fn split_big_tables(&self) -> Result<(), RunError> {
        let task = self.task;
        let chunk = task.initial_load.chunk_size as u64;
        let workers = task.initial_load.parallelism as u64;
        let estimates = estimate_all(&task.source).await;
        let candidates: Vec<usize> = {
            let mut s = self.state.borrow_mut();
            for e in s.tables.iter_mut().filter(|e| e.total.is_none()) {
                e.total = estimates.get(&(e.db.clone(), e.table.clone())).copied();
            }
            (0..s.tables.len())
                .filter(|&t| {
                    let e = &s.tables[t];
                    !e.done && !e.split && e.chunks.is_empty() && e.total.is_some_and(|n| n >= SPLIT_CHUNKS * chunk)
                })
                .collect()
        };
        for t in candidates {
            let (db, name, total) = {
                let s = self.state.borrow();
                (s.tables[t].db.clone(), s.tables[t].table.clone(), s.tables[t].total.unwrap_or(0))
            };
            // A table that cannot be read now is left to its load, which says why.
            let Ok(schema) = SchemaCache::new(task.source.connect().await?, task.source.clone(), self.info.flavor).get(&db, &name).await else {
                continue;
            };
            let mut reader = TableReader::open(&task.source, self.info.flavor, schema).await?;
            let Some((lo, hi)) = reader.integer_key_bounds().await? else { continue };
            let n = (total / (2 * chunk)).clamp(1, workers) as i128;
            if n < 2 || hi - lo < n {
                continue;
            }
            let kv = |x: i128| match i64::try_from(x) {
                Ok(v) => KeyVal::Int(v),
                Err(_) => KeyVal::UInt(x as u64),
            };
            let bounds: Vec<KeyVal> = (1..n).map(|i| kv(lo + (hi - lo) * i / n)).collect();
            tracing::info!(table = %format!("{db}.{name}"), ranges = n, estimated_rows = total, "initial load: splitting the table into key ranges loaded in parallel");
            let mut s = self.state.borrow_mut();
            let first = &mut s.tables[t];
            first.split = true;
            first.upper = Some(bounds[0].clone());
            let template = first.clone();
            for (i, lower) in bounds.iter().enumerate() {
                s.tables.push(TableState { lower: Some(lower.clone()), upper: bounds.get(i + 1).cloned(), ..template.clone() });
            }
        }
        self.save()
    }
}

/// `information_schema`'s row estimate of every table.
async fn estimate_all(opts: &sluice_source::SourceOptions) -> HashMap<(String, String), u64> {
    use mysql_async::prelude::Queryable;
    let Ok(mut conn) = opts.connect().await else { return HashMap::new() };
    let rows: Vec<(String, String, Option<u64>)> = conn
        .query("SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'")
        .await
        .unwrap_or_default();
    rows.into_iter().filter_map(|(d, t, n)| Some(((d, t), n?))).collect()
}

/// The incremental phase's filter: which row events the chunks already hold.
pub struct Filter {
    tables: HashMap<(String, String), TableFilter>,
    /// The binlog end when the load was complete: every event from there on is kept.
    end: Option<Pos>,
}

struct TableFilter {
    /// Chunk upper bounds in key order, when every bound is an integer.
    uppers: Option<Vec<Option<Vec<i128>>>>,
    thresholds: Vec<Pos>,
    /// The lowest and highest threshold of the table.
    min: Pos,
    max: Pos,
    /// MySQL with GTIDs: each chunk's GTID set, and the smallest of them (for keys that cannot
    /// be placed in their chunk).
    gtids: Option<(Vec<GtidState>, usize)>,
}

impl Filter {
    pub fn new(state: &LoadState, flavor: Flavor) -> Filter {
        // A split table's key ranges, in key order, make one list of chunks: a range's last
        // chunk ends where the range does.
        let mut by_table: HashMap<(String, String), Vec<&TableState>> = HashMap::new();
        for t in &state.tables {
            by_table.entry((t.db.clone(), t.table.clone())).or_default().push(t);
        }
        let mut tables = HashMap::new();
        for (name, mut entries) in by_table {
            entries.sort_by_key(|e| e.lower.as_ref().map(|k| k.int().unwrap_or(i128::MAX)));
            let chunks: Vec<ChunkMark> = entries
                .iter()
                .flat_map(|e| {
                    e.chunks.iter().map(|c| match (&c.upper, &e.upper) {
                        (None, Some(end)) => ChunkMark { upper: Some(vec![end.clone()]), ..c.clone() },
                        _ => c.clone(),
                    })
                })
                .collect();
            let t = TableState { chunks, ..entries[0].clone() };
            let Some(min) = t.chunks.iter().map(|c| c.threshold).min() else { continue };
            let max = t.chunks.iter().map(|c| c.threshold).max().unwrap_or(min);
            let uppers = t
                .chunks
                .iter()
                .map(|c| match &c.upper {
                    None => Some(None),
                    Some(keys) => keys.iter().map(KeyVal::int).collect::<Option<Vec<_>>>().map(Some),
                })
                .collect::<Option<Vec<_>>>();
            let gtids = t
                .chunks
                .iter()
                .map(|c| GtidState::parse(flavor, c.gtids.as_deref()?).ok())
                .collect::<Option<Vec<_>>>()
                .map(|sets| {
                    let smallest = (0..sets.len()).min_by_key(|&i| sets[i].size()).unwrap_or(0);
                    (sets, smallest)
                });
            let thresholds = t.chunks.iter().map(|c| c.threshold).collect();
            tables.insert(name, TableFilter { uppers, thresholds, min, max, gtids });
        }
        Filter { tables, end: state.end.as_ref().map(|(f, o)| (sluice_event::file_index(f), *o)) }
    }

    /// Whether a row event at `at` (in the transaction `gtid`) must be sent: its key's chunk
    /// was read before it.
    pub fn keep(&self, table: &TableSchema, at: Pos, gtid: Option<&str>, before: Option<&[Value<'_>]>, after: Option<&[Value<'_>]>) -> bool {
        let Some(t) = self.tables.get(&(table.db.clone(), table.table.clone())) else { return true };
        if let Some((sets, smallest)) = &t.gtids {
            if self.end.is_some_and(|end| at >= end) {
                return true; // after every chunk
            }
            let Some(gtid) = gtid else { return true }; // anonymous: sent again rather than lost
            let new_to = |image: &[Value<'_>]| !sets[t.chunk_of(table, image).unwrap_or(*smallest)].contains(gtid);
            return before.is_some_and(new_to) || after.is_some_and(new_to);
        }
        if at >= t.max {
            return true; // after every chunk
        }
        if at < t.min {
            return false; // before every chunk
        }
        let threshold = |image: &[Value<'_>]| t.chunk_of(table, image).map_or(t.min, |c| t.thresholds[c]);
        before.is_some_and(|b| at >= threshold(b)) || after.is_some_and(|a| at >= threshold(a))
    }
}

impl TableFilter {
    /// The chunk that holds the key of `image`, when the key is integers.
    fn chunk_of(&self, table: &TableSchema, image: &[Value<'_>]) -> Option<usize> {
        let uppers = self.uppers.as_ref()?;
        let key = table
            .row_key()?
            .columns
            .iter()
            .map(|&i| match image.get(i) {
                Some(Value::Int(n)) => Some(i128::from(*n)),
                Some(Value::UInt(n)) => Some(i128::from(*n)),
                _ => None,
            })
            .collect::<Option<Vec<i128>>>()?;
        uppers.iter().position(|upper| upper.as_ref().is_none_or(|u| key <= *u))
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
            tables: vec![TableState { chunks, done: true, ..TableState::new("d".into(), "t".into()) }],
            done: true,
            seq: 0,
            committing: None,
            end: Some(("mysql-bin.000002".into(), 4)),
            id: "test".into(),
            objects: None,
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
        let f = Filter::new_for_test(&state(vec![
            ChunkMark { upper: Some(vec![KeyVal::Int(10)]), threshold: (1, 100), gtids: None },
            ChunkMark { upper: Some(vec![KeyVal::Int(20)]), threshold: (1, 300), gtids: None },
            ChunkMark { upper: None, threshold: (1, 200), gtids: None },
        ]));
        let s = schema();
        let row = |id| vec![Value::Int(id), Value::Int(0)];
        let ins = |id, at| f.keep(&s, at, None, None, Some(&row(id)));
        assert!(!ins(5, (1, 99)) && ins(5, (1, 100)) && ins(5, (1, 150)));
        assert!(!ins(15, (1, 150)) && !ins(15, (1, 299)) && ins(15, (1, 300)));
        assert!(!ins(25, (1, 150)) && ins(25, (1, 250)) && ins(1_000_000, (1, 200)));
        assert!(ins(15, (2, 0)), "a later file is after every chunk");
        // A key moved from chunk 1 (read) to chunk 2 (not yet read at 1:250): sent.
        assert!(f.keep(&s, (1, 250), None, Some(&row(5)), Some(&row(15))));
        assert!(!f.keep(&s, (1, 50), None, Some(&row(5)), Some(&row(15))));
        // Other tables are not filtered.
        let other = TableSchema { table: "u".into(), ..schema() };
        assert!(f.keep(&other, (1, 0), None, None, Some(&row(5))));
    }

    /// Chunks are stored apart and appended: a state saved chunk by chunk reads back whole.
    #[test]
    fn the_store_appends_chunks_and_reads_them_back() {
        let dir = std::env::temp_dir().join(format!("sluice-load-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mark = |n: i64| ChunkMark { upper: Some(vec![KeyVal::Int(n)]), threshold: (1, n as u64), gtids: None };
        let mut st = state(vec![]);
        st.tables.push(TableState::new("d".into(), "u".into()));
        {
            let store = LoadStore::open(&dir).unwrap();
            for n in 1..=3 {
                st.tables[0].chunks.push(mark(n));
                st.tables[1].chunks.push(mark(n * 10));
                store.save(&st).unwrap();
            }
        }
        let back = LoadStore::open(&dir).unwrap().load().unwrap().unwrap();
        let uppers = |t: &TableState| t.chunks.iter().map(|c| c.upper.clone()).collect::<Vec<_>>();
        assert_eq!(uppers(&back.tables[0]), uppers(&st.tables[0]));
        assert_eq!(uppers(&back.tables[1]), uppers(&st.tables[1]));
        // Saving again after the read appends only the new chunk.
        let store = LoadStore::open(&dir).unwrap();
        let mut again = store.load().unwrap().unwrap();
        again.tables[0].chunks.push(mark(4));
        store.save(&again).unwrap();
        let back = store.load().unwrap().unwrap();
        assert_eq!(back.tables[0].chunks.len(), 4);
        assert_eq!(back.tables[1].chunks.len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Exactly-once: a chunk whose commit a crash interrupted counts only if this load's own
    /// progress record says it was committed.
    #[test]
    fn an_interrupted_commit_is_settled_by_this_loads_progress_record() {
        let committing = |st: &mut LoadState| {
            st.tables[0].chunks.clear();
            st.committing = Some(Committing { seq: 3, table: 0, mark: ChunkMark { upper: None, threshold: (1, 4), gtids: None }, rows: 7 });
        };
        let mut st = state(vec![]);
        committing(&mut st);
        assert!(st.settle_commit(Some(CommittedSeq { load: "test".into(), seq: 3 })));
        assert_eq!((st.tables[0].chunks.len(), st.tables[0].rows), (1, 7));
        for record in [None, Some(CommittedSeq { load: "test".into(), seq: 2 }), Some(CommittedSeq { load: "an older load".into(), seq: 9 })] {
            let mut st = state(vec![]);
            committing(&mut st);
            assert!(st.settle_commit(record));
            assert!(st.tables[0].chunks.is_empty() && st.committing.is_none());
        }
    }

    /// A table loaded as key ranges (-inf, 100] and (100, +inf): each range's last chunk ends
    /// at the range's end, and events are placed in their range's chunks.
    #[test]
    fn split_tables_filter_by_their_ranges_chunks() {
        let mut st = state(vec![
            ChunkMark { upper: Some(vec![KeyVal::Int(50)]), threshold: (1, 100), gtids: None },
            ChunkMark { upper: None, threshold: (1, 200), gtids: None },
        ]);
        st.tables[0].split = true;
        st.tables[0].upper = Some(KeyVal::Int(100));
        let second = TableState {
            lower: Some(KeyVal::Int(100)),
            upper: None,
            chunks: vec![ChunkMark { upper: None, threshold: (1, 400), gtids: None }],
            ..st.tables[0].clone()
        };
        // Ranges in any order in the state.
        st.tables.insert(0, second);
        let f = Filter::new_for_test(&st);
        let s = schema();
        let row = |id| vec![Value::Int(id), Value::Int(0)];
        let ins = |id, at| f.keep(&s, at, None, None, Some(&row(id)));
        assert!(!ins(10, (1, 99)) && ins(10, (1, 100)));
        assert!(!ins(60, (1, 199)) && ins(60, (1, 200)) && ins(100, (1, 200)));
        assert!(!ins(101, (1, 399)) && ins(101, (1, 400)) && !ins(1_000_000, (1, 300)));
    }

    #[test]
    fn wide_rows_get_smaller_chunks() {
        assert_eq!(next_limit(8192, 100, 10_000), 8192, "narrow rows: chunk_size");
        assert_eq!(next_limit(8192, 100, 100 * 2048), 1024, "2 KiB rows: 2 MiB");
        assert_eq!(next_limit(8192, 10, 10 << 20), 16, "1 MiB rows: at least 16");
        assert_eq!(next_limit(5, 10, 10 << 20), 5, "never above chunk_size");
        assert_eq!(next_limit(8192, 0, 0), 8192, "an empty chunk");
    }

    impl Filter {
        fn new_for_test(state: &LoadState) -> Filter {
            Filter::new(state, Flavor::MariaDb)
        }
    }

    /// MySQL with GTIDs: a chunk holds the transactions of the GTID set read before its
    /// snapshot; every other transaction on its keys is sent, until the load's end position.
    #[test]
    fn gtid_chunks_keep_what_their_set_lacks() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let mut st = state(vec![
            ChunkMark { upper: Some(vec![KeyVal::Int(10)]), threshold: (1, 4), gtids: Some(format!("{u}:1-100")) },
            ChunkMark { upper: None, threshold: (1, 4), gtids: Some(format!("{u}:1-200")) },
        ]);
        st.tables[0].chunks[0].gtids = Some(format!("{u}:1-100"));
        let f = Filter::new(&st, Flavor::MySql);
        let s = schema();
        let row = |id| vec![Value::Int(id), Value::Int(0)];
        let g = |n: u32| format!("{u}:{n}");
        let ins = |id, n| f.keep(&s, (1, 500), Some(&g(n)), None, Some(&row(id)));
        assert!(!ins(5, 100) && ins(5, 101) && ins(5, 150));
        assert!(!ins(15, 101) && !ins(15, 200) && ins(15, 201));
        assert!(f.keep(&s, (1, 500), None, None, Some(&row(15))), "no GTID: sent");
        assert!(f.keep(&s, (2, 4), Some(&g(50)), None, Some(&row(15))), "from the end position on: sent");
        // A key moved out of the first chunk into the second: sent if either lacks it.
        assert!(f.keep(&s, (1, 500), Some(&g(150)), Some(&row(5)), Some(&row(15))));
        // Keys that cannot be placed use the smallest set.
        let mut text = s.clone();
        text.columns[0] = ColumnSchema::new("id", DataType::VarChar);
        let f = Filter::new(&state(vec![
            ChunkMark { upper: Some(vec![KeyVal::Bytes(b"m".to_vec())]), threshold: (1, 4), gtids: Some(format!("{u}:1-100")) },
            ChunkMark { upper: None, threshold: (1, 4), gtids: Some(format!("{u}:1-200")) },
        ]), Flavor::MySql);
        let r = vec![Value::Bytes(b"z".as_slice().into()), Value::Int(0)];
        assert!(f.keep(&text, (1, 500), Some(&g(150)), None, Some(&r)) && !f.keep(&text, (1, 500), Some(&g(99)), None, Some(&r)));
    }

    #[test]
    fn keys_it_cannot_place_use_the_lowest_threshold() {
        let f = Filter::new_for_test(&state(vec![
            ChunkMark { upper: Some(vec![KeyVal::Bytes(b"m".to_vec())]), threshold: (1, 100), gtids: None },
            ChunkMark { upper: None, threshold: (1, 300), gtids: None },
        ]));
        let mut s = schema();
        s.columns[0] = ColumnSchema::new("id", DataType::VarChar);
        let row = vec![Value::Bytes(b"z".as_slice().into()), Value::Int(0)];
        assert!(f.keep(&s, (1, 150), None, None, Some(&row)), "sent again rather than lost");
        assert!(!f.keep(&s, (1, 99), None, None, Some(&row)));
    }
}
