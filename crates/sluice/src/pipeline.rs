//! The only place that knows every stage: binlog reader → row decoding → DTS Avro → Kafka.
//!
//! One loop reads an event, decodes its rows straight into two reused image buffers, encodes
//! each row into one reused byte buffer and hands it to the producer, which copies it into its
//! queue. Nothing waits on the broker per row; a full producer queue is the only thing that
//! pauses reading (backpressure).
//!
//! # Delivery guarantee
//! Each source transaction becomes one sink batch. Only when the sink reports a batch and every
//! batch before it acknowledged does the transaction's end become the task's checkpoint, and only
//! checkpoints are saved. A restart (after a crash, a kill, a lost connection) resumes at the
//! saved checkpoint, so every change after it is sent again: at-least-once, never a gap. Replayed
//! records get the ids they had the first time (the id counter is part of the checkpoint), so a
//! consumer can drop duplicates by id.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use sluice_event::{BinlogPosition, ChangeMeta, DdlChange, RowChange, RowOp};
use sluice_format::dts_avro::DtsAvroEncoder;
use sluice_sink::{BatchId, KafkaSink, Sink, SinkError};
use sluice_source::{binlog_end, gtid_state_at, BinlogReader, GtidState, SchemaHistory, ServerInfo, SourceError, StartAt, Step};

use crate::{
    checkpoint::{Checkpoint, CheckpointStore, StoreError},
    config::Task,
    routing,
    status::{State, Status},
};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    LoadStore(#[from] crate::load::StoreError),
    #[error("the source closed the binlog stream at {0}")]
    StreamClosed(String),
    #[error("the task's checkpoint belongs to the source {saved}, not to {configured}, and carries no GTID state to resume elsewhere. Fix: point [source] back at {saved}, or give this task a new data_dir (or name) to start afresh")]
    OtherSource { saved: String, configured: String },
}

impl RunError {
    /// Whether reconnecting to the source may cure this error.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            RunError::Source(e) => e.is_transient(),
            RunError::StreamClosed(_) => true,
            _ => false,
        }
    }
}

/// How often the acknowledged position is written to the checkpoint store.
const SAVE_INTERVAL: Duration = Duration::from_secs(1);
/// Exactly-once mode: a Kafka transaction commits at the first source-transaction end after
/// this many rows or this much time.
const EOS_COMMIT_ROWS: u64 = 20_000;
const EOS_COMMIT_INTERVAL: Duration = Duration::from_millis(200);
/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs the task until `shutdown` completes or a definite error stops it; returns the last
/// checkpoint, which is also saved.
///
/// Errors before the first event streams are all fatal (the operator must fix something). Once
/// streaming, a lost source connection is retried with exponential backoff from the last
/// acknowledged checkpoint; the Kafka producer stays up across those reconnects.
pub async fn run(task: &Task, options: RunOptions, shutdown: impl Future<Output = ()>) -> Result<Checkpoint, RunError> {
    let store = CheckpointStore::open(&task.data_dir)?;
    let saved = store.load()?;
    // Table definitions along the binlog, so a replay decodes with the schema of its time.
    let history = SchemaHistory::open(&task.data_dir.join("schema_history.redb")).map_err(SourceError::from)?;
    let mut conn = task.source.connect().await?;
    let info = ServerInfo::read(&mut conn, &task.source).await?;
    info.check_replication_settings(task.source.server_id)?;
    // Initial load: its store says where the stream starts until the stream saved a checkpoint.
    let load_store = match task.initial_load.data {
        true if options.null_sink => Some(crate::load::LoadStore::open(&task.data_dir)?.discard_writes()),
        true => Some(crate::load::LoadStore::open(&task.data_dir)?),
        false => None,
    };
    let mut load_state = match &load_store {
        Some(store) => store.load()?,
        None => None,
    };
    if task.initial_load.structure && saved.is_none() && !options.null_sink {
        create_topics(task).await?;
    }
    let sink = match options.null_sink {
        true => Sink::null(1),
        false => Sink::Kafka(KafkaSink::connect(&task.sink).await?),
    };
    tracing::info!(sink = %sink.describe(), "sink ready");
    options.status.set_sink(sink.describe());
    options.status.set_source_version(&info.version);
    let saved = match &task.sink.exactly_once {
        // The progress topic commits atomically with the records: it is the truth, the local
        // store may lag one transaction behind it.
        Some(eos) if !options.null_sink => read_progress(task, &eos.progress_topic).await?.or(saved),
        _ => saved,
    };
    if let (Some(store), Some(state), Some(eos)) = (&load_store, &mut load_state, &task.sink.exactly_once) {
        if state.committing() && !options.null_sink {
            // A crash interrupted a chunk's commit: the progress topic says whether it happened.
            let key = crate::load::progress_key(task);
            let committed = read_progress_record::<crate::load::CommittedSeq>(task, &eos.progress_topic, key).await?;
            state.settle_commit(committed);
            store.save(state)?;
        }
    }
    let fresh = saved.is_none() && load_state.is_none();
    let saved = match (saved, &load_state) {
        (None, Some(ls)) => Some(Checkpoint {
            file: ls.p0_file.clone(),
            offset: ls.p0_offset,
            gtid: None,
            gtid_set: ls.gtid_set.clone(),
            next_id: ls.next_id,
            source: task.source.addr(),
        }),
        (saved, _) => saved,
    };
    let stop_at = match options.stop_at_end {
        true => Some(binlog_end(&mut conn, &task.source).await?),
        false => None,
    };
    let checkpoint = match saved {
        Some(cp) if cp.source != task.source.addr() && cp.gtid_set.is_none() => {
            return Err(RunError::OtherSource { saved: cp.source, configured: task.source.addr() })
        }
        Some(cp) if cp.source != task.source.addr() => {
            tracing::warn!(
                from = %cp.source,
                to = %task.source.addr(),
                gtid_set = cp.gtid_set.as_deref().unwrap_or_default(),
                "the source changed since the checkpoint: resuming on the new source by GTID"
            );
            cp
        }
        Some(cp) => {
            tracing::info!(position = %cp.position(), next_id = cp.next_id, "resuming from the checkpoint");
            cp
        }
        None => {
            let (start, gtid_set) = match &task.start_position {
                Some(p) => (p.clone(), gtid_state_at(&mut conn, &task.source, &info, p).await?),
                None => sluice_source::binlog_end_with_state(&mut conn, &task.source, &info).await?,
            };
            let gtid_set = gtid_set.map(|g| g.to_string());
            Checkpoint { file: start.file, offset: start.offset, gtid: None, gtid_set, next_id: 1, source: task.source.addr() }
        }
    };
    drop(conn);
    if let Some(store) = &load_store {
        if fresh {
            let state = crate::load::plan(task, &info, &checkpoint.position(), checkpoint.gtid_set.clone()).await?;
            // The stream after the load starts here: tables altered during the load must be
            // decoded there with the definition they have now.
            sluice_source::seed_history(&task.source, &info, &history, &task.filter, &checkpoint.position()).await?;
            store.save(&state)?;
            load_state = Some(state);
        } else if load_state.is_none() {
            tracing::info!("the task streamed before: no initial load");
        }
    }
    if let (Some(store), Some(state)) = (&load_store, &mut load_state) {
        if state.done {
            // Tables added to [objects] since: loaded before the stream goes on from here.
            let at = checkpoint.position();
            if state.add_new_objects(task, &info, &at, checkpoint.gtid_set.clone(), checkpoint.next_id).await? > 0 {
                sluice_source::seed_history(&task.source, &info, &history, &task.filter, &at).await?;
            }
            store.save(state)?;
        }
    }


    let mut pipe = Pipeline {
        task,
        sink,
        store,
        encoder: DtsAvroEncoder::new(),
        server_version: info.version.clone(),
        buf: Vec::with_capacity(4096),
        key: Vec::with_capacity(128),
        next_id: checkpoint.next_id,
        pending: VecDeque::new(),
        saved: None,
        checkpoint,
        stop_at,
        uncommitted_rows: 0,
        open_rows: 0,
        last_commit: Instant::now(),
        stats: Stats::default(),
        status: options.status.clone(),
        filter: None,
    };
    tokio::pin!(shutdown);
    // MySQL with GTIDs, after a load: the stream starts from the load's GTID set rather than its
    // position, so a transaction already in the binlog at the start position but committed
    // (visible) only later is sent too.
    let mut by_gtid_at: Option<BinlogPosition> = None;
    if let (Some(store), Some(state)) = (&load_store, &mut load_state) {
        if !state.done {
            pipe.status.set_state(State::Loading);
            let out = crate::load::Output {
                sink: &pipe.sink,
                server_version: &pipe.server_version,
                server_id: info.server_id,
                status: &pipe.status,
                policy: task.partition_policy,
            };
            if !crate::load::run(task, &info, store, state, &out, &mut shutdown).await? {
                return Ok(pipe.checkpoint);
            }
            pipe.checkpoint.next_id = state.next_id;
        }
        pipe.filter = Some(crate::load::Filter::new(state, info.flavor));
        if info.flavor == sluice_source::Flavor::MySql && info.gtid_mode && state.gtid_set.is_some() {
            by_gtid_at = Some(state.p0());
        }
    }
    let mut streamed = false;
    let mut failures = 0u32;
    loop {
        let from = pipe.checkpoint.position();
        let start = StartAt {
            position: from.clone(),
            gtid_state: pipe.checkpoint.gtid_set.as_deref().and_then(|g| GtidState::parse(info.flavor, g).ok()),
            // A checkpoint of another server: only its GTID state means anything here.
            by_gtid: pipe.checkpoint.source != task.source.addr() || by_gtid_at.as_ref() == Some(&from),
            same_server: pipe.checkpoint.source == task.source.addr(),
        };
        let result = match BinlogReader::start(task.source.clone(), &info, start, task.filter.clone(), history.clone()).await {
            Ok(mut reader) => {
                tracing::info!(task = %task.name, source = %task.source.addr(), version = %info.version, start = %from, "streaming the binlog");
                streamed = true;
                pipe.status.set_state(State::Syncing);
                failures = 0;
                pipe.stream(&mut reader, &mut shutdown).await
            }
            Err(e) => Err(e.into()),
        };
        // Whatever stopped the stream, deliver what is queued, so the checkpoint covers it.
        pipe.drain().await?;
        match result {
            Ok(()) => return Ok(pipe.checkpoint),
            Err(e) if streamed && e.is_transient() => {
                failures += 1;
                let delay = Duration::from_millis(250 * 2u64.saturating_pow(failures.min(8))).min(MAX_BACKOFF);
                tracing::warn!(error = %e, retry_in = ?delay, from = %pipe.checkpoint.position(), "source connection lost; reconnecting");
                pipe.status.degraded(&e.to_string());
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = &mut shutdown => return Ok(pipe.checkpoint),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[derive(Default)]
struct Stats {
    rows: u64,
    rows_at_last_report: u64,
    last_report: Option<Instant>,
}

/// How `run` behaves beyond the task file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop (cleanly) once everything up to the binlog end at start-up is acknowledged.
    pub stop_at_end: bool,
    /// Decode and encode, but send nothing (for measuring).
    pub null_sink: bool,
    /// Where the pipeline reports its state and progress (the status server reads it).
    pub status: Arc<Status>,
}

struct Pipeline<'t> {
    task: &'t Task,
    sink: Sink,
    /// With `stop_at_end`: the binlog end at start-up.
    stop_at: Option<BinlogPosition>,
    /// Exactly-once mode: rows of closed source transactions not yet committed to Kafka, rows
    /// of the source transaction still open, and when Kafka last committed.
    uncommitted_rows: u64,
    open_rows: u64,
    last_commit: Instant,
    store: CheckpointStore,
    encoder: DtsAvroEncoder,
    server_version: String,
    buf: Vec<u8>,
    key: Vec<u8>,
    next_id: i64,
    /// Closed batches not yet acknowledged, with the checkpoint each one completes.
    pending: VecDeque<(BatchId, Checkpoint)>,
    /// The newest acknowledged position, and the one last written to the store.
    checkpoint: Checkpoint,
    saved: Option<Checkpoint>,
    stats: Stats,
    status: Arc<Status>,
    /// After an initial load: drops the row changes its chunks already hold.
    filter: Option<crate::load::Filter>,
}

impl Pipeline<'_> {
    async fn stream<F: Future<Output = ()>>(
        &mut self,
        reader: &mut BinlogReader,
        shutdown: &mut Pin<&mut F>,
    ) -> Result<(), RunError> {
        // Records after the checkpoint are replayed with the ids they had before.
        self.next_id = self.checkpoint.next_id;
        self.save()?;
        let mut tick = tokio::time::interval(SAVE_INTERVAL);
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                biased;
                () = shutdown.as_mut() => {
                    tracing::info!("shutting down: flushing records in flight");
                    return Ok(());
                }
                _ = tick.tick() => {
                    self.commit_if_due(true).await?;
                    self.save()?;
                    ticks += 1;
                    if ticks.is_multiple_of(10) {
                        self.report(reader);
                    }
                }
                event = reader.next_event() => {
                    let Some(event) = event? else {
                        return Err(RunError::StreamClosed(format!("{}:{}", reader.file(), reader.txn().start.offset)));
                    };
                    self.handle(reader, &event).await?;
                    self.status.observe_event(event.header().event_type_raw(), reader.last_event_header().0);
                    if self.caught_up(reader) {
                        tracing::info!(end = %self.stop_at.as_ref().expect("stop_at"), "caught up with the binlog end seen at start-up; stopping");
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn handle(&mut self, reader: &mut BinlogReader, event: &mysql_async::binlog::events::Event) -> Result<(), RunError> {
        match reader.step(event).await? {
            Step::Rows(batch) => {
                let mut meta = change_meta(reader, &self.server_version, reader.file_index(), batch.offset);
                let table = &batch.table.schema;
                let columns = table.columns.len();
                let (mut before, mut after) = (Vec::with_capacity(columns), Vec::with_capacity(columns));
                let mut rows = batch.rows();
                loop {
                    let more = rows.next_row(&mut before, &mut after).map_err(|e| SourceError::Decode {
                        table: table.qualified_name(),
                        position: format!("{}:{}", reader.file(), batch.offset),
                        reason: e.to_string(),
                    })?;
                    if !more {
                        break;
                    }
                    if let Some(filter) = &self.filter {
                        let at = (reader.file_index(), batch.offset);
                        let b = (batch.op != RowOp::Insert).then_some(&before[..]);
                        let a = (batch.op != RowOp::Delete).then_some(&after[..]);
                        if !filter.keep(table, at, reader.txn().gtid.as_deref(), b, a) {
                            continue;
                        }
                    }
                    meta.id = self.next_id;
                    self.next_id += 1;
                    let change = RowChange {
                        meta: &meta,
                        table,
                        op: batch.op,
                        before: (batch.op != RowOp::Insert).then_some(&before[..]),
                        after: (batch.op != RowOp::Delete).then_some(&after[..]),
                    };
                    self.buf.clear();
                    self.encoder.encode_row_shared(&change, table, &mut self.buf);
                    routing::row_key(&change, &mut self.key);
                    let partition = routing::partition(self.task.partition_policy, &change, &self.key, self.sink.partitions());
                    self.sink.send(partition, &self.key, &self.buf).await?;
                    self.stats.rows += 1;
                    self.status.row_produced(self.key.len() + self.buf.len());
                    self.open_rows += 1;
                }
            }
            Step::Commit { end } => {
                self.end_transaction(end, reader);
                self.commit_if_due(false).await?;
            }
            Step::Statement { db, sql, is_ddl, table, end } => {
                if is_ddl && self.task.emit_ddl {
                    // The record is about the table the statement changes (else its database).
                    let (db, object) = match &table {
                        Some(t) => (t.db.as_str(), Some(t.table.as_str())),
                        None => (&*db, None),
                    };
                    let meta = ChangeMeta {
                        id: self.next_id,
                        ..change_meta(reader, &self.server_version, end.file_index(), reader.txn().start.offset)
                    };
                    self.next_id += 1;
                    let ddl = DdlChange { meta: &meta, db, table: object, sql: &sql };
                    self.buf.clear();
                    self.encoder.encode_ddl(&ddl, &mut self.buf);
                    let partition = routing::ddl_partition(self.task.partition_policy, db, object, self.sink.partitions());
                    self.sink.send(partition, db.as_bytes(), &self.buf).await?;
                    self.status.record_produced(db.len() + self.buf.len());
                }
                self.end_transaction(end, reader);
                self.commit_if_due(false).await?;
            }
            Step::Heartbeat | Step::Skip => {}
        }
        Ok(())
    }

    /// With `stop_at_end`: whether the reader has passed the binlog end seen at start-up.
    fn caught_up(&self, reader: &BinlogReader) -> bool {
        let Some(end) = &self.stop_at else { return false };
        // The binlog may end with events that close no transaction (e.g. MariaDB's
        // BINLOG_CHECKPOINT after a flush): passing the end outside a transaction is enough.
        let last = self.pending.back().map(|(_, cp)| cp).unwrap_or(&self.checkpoint);
        (file_index_of(&last.file), last.offset) >= (end.file_index(), end.offset) || reader.passed(end)
    }

    fn end_transaction(&mut self, end: BinlogPosition, reader: &BinlogReader) {
        let gtid = reader.txn().gtid.clone();
        self.status.read_position(&end, gtid.as_deref());
        let batch = self.sink.end_batch();
        let checkpoint = Checkpoint {
            file: end.file,
            offset: end.offset,
            gtid,
            gtid_set: reader.gtid_state().map(ToString::to_string),
            next_id: self.next_id,
            source: self.task.source.addr(),
        };
        self.pending.push_back((batch, checkpoint));
        self.uncommitted_rows += std::mem::take(&mut self.open_rows);
        self.collect_acknowledged();
    }

    /// Exactly-once mode: commits the Kafka transaction at the last closed source transaction
    /// when enough rows or time have gathered (or `idle`: whatever is closed). Never while rows
    /// of an open source transaction are in it, so a committed position is always exact.
    async fn commit_if_due(&mut self, idle: bool) -> Result<(), RunError> {
        if !self.sink.transactional() || self.pending.is_empty() || self.open_rows > 0 {
            return Ok(());
        }
        let due = self.uncommitted_rows >= EOS_COMMIT_ROWS || self.last_commit.elapsed() >= EOS_COMMIT_INTERVAL;
        if !(due || idle) {
            return Ok(());
        }
        let checkpoint = self.pending.back().expect("not empty").1.clone();
        let progress = serde_json::to_vec(&checkpoint).expect("checkpoint serializes");
        self.sink.commit(self.task.name.as_bytes(), &progress).await?;
        self.pending.clear();
        self.checkpoint = checkpoint;
        self.uncommitted_rows = 0;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Moves the checkpoint past every batch the sink has fully acknowledged. (In exactly-once
    /// mode only a committed Kafka transaction moves it: see `commit_if_due`.)
    fn collect_acknowledged(&mut self) {
        if self.sink.transactional() {
            return;
        }
        let acked = self.sink.acked_through();
        while self.pending.front().is_some_and(|(id, _)| *id <= acked) {
            self.checkpoint = self.pending.pop_front().expect("front exists").1;
        }
    }

    /// Writes the acknowledged position to the store if it moved since the last write. A null
    /// sink acknowledges without delivering, so its positions are never saved.
    fn save(&mut self) -> Result<(), RunError> {
        self.collect_acknowledged();
        let cp = &self.checkpoint;
        self.status.acknowledged(&cp.file, cp.offset, cp.gtid.as_deref(), self.sink.in_flight());
        if matches!(self.sink, Sink::Kafka(_)) && self.saved.as_ref() != Some(&self.checkpoint) {
            self.store.save(&self.checkpoint)?;
            self.saved = Some(self.checkpoint.clone());
        }
        Ok(())
    }

    /// Waits for every queued record, then saves the position they complete.
    async fn drain(&mut self) -> Result<(), RunError> {
        // Exactly-once: commit what is complete; an open source transaction's rows stay in an
        // uncommitted Kafka transaction, which the next start fences off and aborts.
        self.commit_if_due(true).await?;
        let flushed = self.sink.flush(Duration::from_secs(30)).await;
        self.save()?;
        tracing::info!(position = %self.checkpoint.position(), next_id = self.checkpoint.next_id, "acknowledged position saved");
        Ok(flushed?)
    }

    fn report(&mut self, reader: &BinlogReader) {
        let now = Instant::now();
        if let Some(last) = self.stats.last_report {
            let rate = (self.stats.rows - self.stats.rows_at_last_report) as f64 / (now - last).as_secs_f64();
            tracing::info!(
                file = reader.file(),
                rows = self.stats.rows,
                rows_per_sec = rate.round(),
                in_flight = self.sink.in_flight(),
                acknowledged = %self.checkpoint.position(),
                "progress"
            );
        }
        self.stats.last_report = Some(now);
        self.stats.rows_at_last_report = self.stats.rows;
    }
}

/// Exactly-once mode: the position committed with the newest Kafka transaction, if any.
async fn read_progress(task: &Task, progress_topic: &str) -> Result<Option<Checkpoint>, RunError> {
    read_progress_record(task, progress_topic, task.name.clone().into_bytes()).await
}

/// Exactly-once mode: the newest committed progress record under `key`, if any.
async fn read_progress_record<T: serde::de::DeserializeOwned>(task: &Task, progress_topic: &str, key: Vec<u8>) -> Result<Option<T>, RunError> {
    let (opts, topic) = (task.sink.clone(), progress_topic.to_string());
    let bytes = tokio::task::spawn_blocking(move || sluice_sink::read_progress(&opts, &topic, &key))
        .await
        .expect("progress reader panicked")?;
    Ok(bytes.and_then(|b| match serde_json::from_slice::<T>(&b) {
        Ok(record) => Some(record),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring an unreadable progress record");
            None
        }
    }))
}

/// Structure init: the topic (and, exactly-once, the progress topic) exist, created with
/// `[target] partitions` and `replication_factor` if missing.
async fn create_topics(task: &Task) -> Result<(), RunError> {
    use sluice_sink::{ensure_topic, TopicSpec};
    let (partitions, replication_factor) = (task.topic_partitions, task.topic_replication_factor);
    let spec = TopicSpec { name: &task.sink.topic, partitions, replication_factor, config: &[] };
    if ensure_topic(&task.sink, &spec).await? {
        tracing::info!(topic = %task.sink.topic, partitions, replication_factor, "created the topic");
    }
    if let Some(eos) = &task.sink.exactly_once {
        // One partition, compacted: only each key's newest progress record matters.
        let config = [("cleanup.policy", "compact")];
        let spec = TopicSpec { name: &eos.progress_topic, partitions: 1, replication_factor, config: &config };
        if ensure_topic(&task.sink, &spec).await? {
            tracing::info!(topic = %eos.progress_topic, replication_factor, "created the progress topic");
        }
    }
    Ok(())
}

fn file_index_of(file: &str) -> u64 {
    sluice_event::file_index(file)
}

/// Where and when the event at `file_index`/`offset` happened, in the reader's current
/// transaction; `id` is left 0 for the caller.
fn change_meta<'r>(reader: &'r BinlogReader, server_version: &'r str, file_index: u64, offset: u64) -> ChangeMeta<'r> {
    let (timestamp, server_id) = reader.last_event_header();
    let txn = reader.txn();
    ChangeMeta {
        id: 0,
        source_timestamp: i64::from(timestamp),
        file_index,
        offset,
        safe_file_index: txn.start.file_index(),
        safe_offset: txn.start.offset,
        server_id,
        thread_id: txn.thread_id,
        gtid: txn.gtid.as_deref(),
        server_version,
        read_time_ms: now_ms(),
        initial_load: false,
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
