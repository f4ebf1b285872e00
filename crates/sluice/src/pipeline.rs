//! The only place that knows every stage: binlog reader → row decoding → DTS Avro → Kafka.
//!
//! One loop reads an event, decodes its rows straight into two reused image buffers, encodes
//! each row into one reused byte buffer and hands it to the producer, which copies it into its
//! queue. Nothing waits on the broker per row; a full producer queue is the only thing that
//! pauses reading (backpressure).
//!
//! Each source transaction becomes one sink batch. When the sink reports a batch and all before
//! it acknowledged, the transaction's end position becomes the task's safe position.

use std::{
    collections::VecDeque,
    future::Future,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use sluice_event::{BinlogPosition, ChangeMeta, DdlChange, RowChange, RowOp};
use sluice_format::dts_avro::DtsAvroEncoder;
use sluice_sink::{BatchId, KafkaSink, SinkError};
use sluice_source::{binlog_end, BinlogReader, ServerInfo, SourceError, Step};

use crate::{config::Task, routing};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("the source closed the binlog stream at {0}; sluice reconnects from its last checkpoint on restart")]
    StreamClosed(String),
}

/// The position up to which every change is in Kafka, acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: BinlogPosition,
    pub gtid: Option<String>,
    /// The id the next record gets.
    pub next_id: i64,
}

/// Runs the task until `shutdown` completes or an error stops it. Returns the last checkpoint.
pub async fn run(task: &Task, shutdown: impl Future<Output = ()>) -> Result<Option<Checkpoint>, RunError> {
    let mut conn = task.source.connect().await?;
    let info = ServerInfo::read(&mut conn, &task.source).await?;
    info.check_replication_settings(task.source.server_id)?;
    let start = match &task.start_position {
        Some(p) => p.clone(),
        None => binlog_end(&mut conn, &task.source).await?,
    };
    drop(conn);

    let sink = KafkaSink::connect(&task.sink).await?;
    tracing::info!(
        brokers = sink.brokers(),
        topic = sink.topic(),
        partitions = sink.partitions(),
        idempotent = sink.idempotent(),
        "connected to Kafka"
    );
    let mut reader = BinlogReader::start(task.source.clone(), &info, start.clone(), task.filter.clone()).await?;
    tracing::info!(source = %task.source.addr(), version = %info.version, %start, "streaming the binlog");

    let mut pipe = Pipeline {
        task,
        sink,
        encoder: DtsAvroEncoder::new(),
        server_version: info.version.clone(),
        buf: Vec::with_capacity(4096),
        key: Vec::with_capacity(128),
        next_id: 1,
        pending: VecDeque::new(),
        checkpoint: None,
        stats: Stats::default(),
    };
    let result = pipe.stream(&mut reader, shutdown).await;
    // Whatever stopped us, deliver what is queued so the checkpoint covers as much as possible.
    let flushed = pipe.sink.flush(Duration::from_secs(30)).await;
    pipe.collect_acknowledged();
    if let Some(cp) = &pipe.checkpoint {
        tracing::info!(position = %cp.position, next_id = cp.next_id, "last acknowledged position");
    }
    result?;
    flushed?;
    Ok(pipe.checkpoint)
}

#[derive(Default)]
struct Stats {
    rows: u64,
    rows_at_last_report: u64,
    last_report: Option<Instant>,
}

struct Pipeline<'t> {
    task: &'t Task,
    sink: KafkaSink,
    encoder: DtsAvroEncoder,
    server_version: String,
    buf: Vec<u8>,
    key: Vec<u8>,
    next_id: i64,
    /// Closed batches not yet acknowledged, with the checkpoint each one completes.
    pending: VecDeque<(BatchId, Checkpoint)>,
    checkpoint: Option<Checkpoint>,
    stats: Stats,
}

impl Pipeline<'_> {
    async fn stream(&mut self, reader: &mut BinlogReader, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
        tokio::pin!(shutdown);
        let mut report = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    tracing::info!("shutting down: flushing records in flight");
                    return Ok(());
                }
                _ = report.tick() => self.report(reader),
                event = reader.next_event() => {
                    let Some(event) = event? else {
                        return Err(RunError::StreamClosed(format!("{}:{}", reader.file(), reader.txn().start.offset)));
                    };
                    self.handle(reader, &event).await?;
                }
            }
        }
    }

    async fn handle(&mut self, reader: &mut BinlogReader, event: &mysql_async::binlog::events::Event) -> Result<(), RunError> {
        match reader.step(event).await? {
            Step::Rows(batch) => {
                let (timestamp, server_id) = reader.last_event_header();
                let txn = reader.txn();
                let mut meta = ChangeMeta {
                    id: 0,
                    source_timestamp: i64::from(timestamp),
                    file_index: reader.file_index(),
                    offset: batch.offset,
                    safe_file_index: txn.start.file_index(),
                    safe_offset: txn.start.offset,
                    server_id,
                    thread_id: txn.thread_id,
                    gtid: txn.gtid.as_deref(),
                    server_version: &self.server_version,
                    read_time_ms: now_ms(),
                };
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
                    self.encoder.encode_row(&change, &mut self.buf);
                    routing::row_key(&change, &mut self.key);
                    let partition = routing::partition(self.task.partition_policy, &change, &self.key, self.sink.partitions());
                    self.sink.send(partition, &self.key, &self.buf).await?;
                    self.stats.rows += 1;
                }
            }
            Step::Commit { end } => self.end_transaction(end, reader.txn().gtid.clone()),
            Step::Statement { db, sql, is_ddl, end } => {
                if is_ddl && self.task.emit_ddl {
                    let (timestamp, server_id) = reader.last_event_header();
                    let txn = reader.txn();
                    let meta = ChangeMeta {
                        id: self.next_id,
                        source_timestamp: i64::from(timestamp),
                        file_index: end.file_index(),
                        offset: txn.start.offset,
                        safe_file_index: txn.start.file_index(),
                        safe_offset: txn.start.offset,
                        server_id,
                        thread_id: txn.thread_id,
                        gtid: txn.gtid.as_deref(),
                        server_version: &self.server_version,
                        read_time_ms: now_ms(),
                    };
                    self.next_id += 1;
                    let ddl = DdlChange { meta: &meta, db: &db, table: None, sql: &sql };
                    self.buf.clear();
                    self.encoder.encode_ddl(&ddl, &mut self.buf);
                    let partition = routing::ddl_partition(self.task.partition_policy, &db, None, self.sink.partitions());
                    self.sink.send(partition, db.as_bytes(), &self.buf).await?;
                }
                self.end_transaction(end, reader.txn().gtid.clone());
            }
            Step::Heartbeat | Step::Skip => {}
        }
        Ok(())
    }

    fn end_transaction(&mut self, end: BinlogPosition, gtid: Option<String>) {
        let batch = self.sink.end_batch();
        self.pending.push_back((batch, Checkpoint { position: end, gtid, next_id: self.next_id }));
        self.collect_acknowledged();
    }

    /// Moves the checkpoint past every batch the sink has fully acknowledged.
    fn collect_acknowledged(&mut self) {
        let acked = self.sink.acked_through();
        while self.pending.front().is_some_and(|(id, _)| *id <= acked) {
            self.checkpoint = self.pending.pop_front().map(|(_, cp)| cp);
        }
    }

    fn report(&mut self, reader: &BinlogReader) {
        self.collect_acknowledged();
        let now = Instant::now();
        if let Some(last) = self.stats.last_report {
            let rate = (self.stats.rows - self.stats.rows_at_last_report) as f64 / (now - last).as_secs_f64();
            tracing::info!(
                file = reader.file(),
                rows = self.stats.rows,
                rows_per_sec = rate.round(),
                in_flight = self.sink.in_flight(),
                acknowledged = self.checkpoint.as_ref().map(|c| c.position.to_string()).unwrap_or_default(),
                "progress"
            );
        }
        self.stats.last_report = Some(now);
        self.stats.rows_at_last_report = self.stats.rows;
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
