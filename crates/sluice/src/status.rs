//! The task's live state: written by the pipeline as it works, read by the status server
//! (`/status`, `/metrics`, the web page) and by `sluice status`.
//!
//! Counters are atomics (the pipeline bumps them per row without locking); everything else
//! sits behind one mutex taken once per transaction end, state change or status request.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
        Mutex, MutexGuard,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use sluice_event::BinlogPosition;

/// The task's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Checking the source and the broker before starting.
    Prechecking,
    /// Starting up: reading the checkpoint, connecting.
    Starting,
    /// Copying existing rows (initial load).
    Loading,
    /// Streaming the binlog.
    Syncing,
    /// Running, but impaired (the source connection was lost and is being re-established).
    Degraded,
    /// Stopped on request.
    Stopped,
    /// Stopped by an error.
    Failed,
}

impl State {
    pub const ALL: [State; 7] =
        [State::Prechecking, State::Starting, State::Loading, State::Syncing, State::Degraded, State::Stopped, State::Failed];

    pub fn name(self) -> &'static str {
        match self {
            State::Prechecking => "prechecking",
            State::Starting => "starting",
            State::Loading => "loading",
            State::Syncing => "syncing",
            State::Degraded => "degraded",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }
}

/// Initial-load progress of one table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableLoad {
    pub table: String,
    pub rows_done: u64,
    /// The table's estimated row count when the load started.
    pub rows_total: Option<u64>,
    pub done: bool,
    /// Rows per second of this table's load so far, and the estimated seconds left.
    #[serde(default)]
    pub rows_per_sec: Option<u64>,
    #[serde(default)]
    pub eta_seconds: Option<u64>,
}

/// A point in the binlog, as reported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Position {
    pub file: String,
    pub offset: u64,
    pub gtid: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastError {
    pub message: String,
    /// UNIX seconds.
    pub at: i64,
}

/// What `/status` returns (and `sluice status` reads back).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub task: String,
    pub state: State,
    /// Why the task failed, when `state` is `failed`.
    pub error: Option<String>,
    /// The most recent error, fatal or not (e.g. a lost connection that was retried).
    pub last_error: Option<LastError>,
    pub uptime_seconds: u64,
    pub source: String,
    pub source_version: Option<String>,
    pub sink: Option<String>,
    /// How the delay is kept current while the source is idle: `heartbeat table db.t` or
    /// `binlog heartbeat`.
    pub heartbeat: String,
    /// The end of the last transaction read from the binlog.
    pub read_position: Option<Position>,
    /// The checkpoint: everything before it is acknowledged by Kafka.
    pub acknowledged_position: Option<Position>,
    /// Seconds between the source writing what sluice read last and now; `null` until known.
    pub delay_seconds: Option<f64>,
    /// UNIX seconds of the last source event (or heartbeat) read.
    pub last_event_time: Option<i64>,
    pub rows_per_second_in: f64,
    pub rows_per_second_out: f64,
    pub rows_read: u64,
    /// Records handed to the producer, and their bytes (key + value).
    pub records_produced: u64,
    pub bytes_produced: u64,
    /// Records Kafka acknowledged.
    pub records_acknowledged: u64,
    pub records_in_flight: u64,
    pub reconnects: u64,
    pub initial_load: Vec<TableLoad>,
}

#[derive(Debug)]
struct Inner {
    state: State,
    error: Option<String>,
    last_error: Option<LastError>,
    source_version: Option<String>,
    sink: Option<String>,
    read: Option<Position>,
    acked: Option<Position>,
    load: BTreeMap<String, TableLoad>,
    /// (when, rows read, records acknowledged), one per sample, the oldest first.
    samples: VecDeque<(Instant, u64, u64)>,
    /// When Kafka last acknowledged something, or had nothing to acknowledge.
    delivery_progress: Instant,
}

/// Shared, updatable task status.
#[derive(Debug)]
pub struct Status {
    task: String,
    source: String,
    heartbeat: String,
    started: Instant,
    inner: Mutex<Inner>,
    rows_read: AtomicU64,
    records_produced: AtomicU64,
    bytes_produced: AtomicU64,
    records_acknowledged: AtomicU64,
    in_flight: AtomicU64,
    reconnects: AtomicU64,
    /// UNIX milliseconds at which the source was last known to be where sluice's reading is
    /// (an event's timestamp, or the arrival of an idle heartbeat); 0: unknown.
    source_time_ms: AtomicI64,
}

/// Records waiting this long without any acknowledgement make a syncing task degraded.
const DELIVERY_STALL: Duration = Duration::from_secs(10);
/// How many one-second samples the rates average over.
const RATE_WINDOW: usize = 10;

impl Status {
    pub fn new(task: &str, source: &str, heartbeat: String) -> Self {
        Self {
            task: task.into(),
            source: source.into(),
            heartbeat,
            started: Instant::now(),
            inner: Mutex::new(Inner {
                state: State::Starting,
                error: None,
                last_error: None,
                source_version: None,
                sink: None,
                read: None,
                acked: None,
                load: BTreeMap::new(),
                samples: VecDeque::with_capacity(RATE_WINDOW + 1),
                delivery_progress: Instant::now(),
            }),
            rows_read: AtomicU64::new(0),
            records_produced: AtomicU64::new(0),
            bytes_produced: AtomicU64::new(0),
            records_acknowledged: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            source_time_ms: AtomicI64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_state(&self, state: State) {
        self.lock().state = state;
    }

    /// The state as reported: a syncing task whose records Kafka has not acknowledged for a
    /// while (brokers down or unreachable) is degraded.
    pub fn state(&self) -> State {
        let s = self.lock();
        self.effective(&s).0
    }

    fn effective(&self, s: &Inner) -> (State, Option<LastError>) {
        let stalled = s.delivery_progress.elapsed();
        let in_flight = self.in_flight.load(Relaxed);
        if s.state == State::Syncing && in_flight > 0 && stalled >= DELIVERY_STALL {
            let message = format!(
                "Kafka has acknowledged nothing for {} s ({in_flight} records waiting); check that the brokers are up and reachable",
                stalled.as_secs()
            );
            return (State::Degraded, Some(LastError { message, at: unix_now() }));
        }
        (s.state, s.last_error.clone())
    }

    /// Stops the task with an error.
    pub fn fail(&self, message: &str) {
        let mut s = self.lock();
        s.state = State::Failed;
        s.error = Some(message.to_string());
        s.last_error = Some(LastError { message: message.to_string(), at: unix_now() });
    }

    /// An error the task survived (it retries).
    pub fn degraded(&self, message: &str) {
        let mut s = self.lock();
        s.state = State::Degraded;
        s.last_error = Some(LastError { message: message.to_string(), at: unix_now() });
        drop(s);
        self.reconnects.fetch_add(1, Relaxed);
    }

    pub fn set_source_version(&self, version: &str) {
        self.lock().source_version = Some(version.to_string());
    }

    pub fn set_sink(&self, description: String) {
        self.lock().sink = Some(description);
    }

    /// A binlog event was read: `kind` is its type code, `timestamp` the source time (UNIX
    /// seconds) of the last real event. An idle heartbeat means the source has nothing newer,
    /// so it was current as of now.
    pub fn observe_event(&self, kind: u8, timestamp: u32) {
        use sluice_source::events::kind as k;
        let ms = if kind == k::HEARTBEAT || kind == k::HEARTBEAT_V2 {
            unix_now_ms()
        } else if timestamp != 0 {
            i64::from(timestamp) * 1000
        } else {
            return;
        };
        self.source_time_ms.store(ms, Relaxed);
    }

    /// One row read and sent as one record of `bytes` bytes.
    pub fn row_produced(&self, bytes: usize) {
        self.rows_read.fetch_add(1, Relaxed);
        self.record_produced(bytes);
    }

    /// One record (not from a row, e.g. DDL) sent.
    pub fn record_produced(&self, bytes: usize) {
        self.records_produced.fetch_add(1, Relaxed);
        self.bytes_produced.fetch_add(bytes as u64, Relaxed);
    }

    /// A transaction ended at `end` in the binlog.
    pub fn read_position(&self, end: &BinlogPosition, gtid: Option<&str>) {
        let mut s = self.lock();
        match &mut s.read {
            // Reuse the strings: this runs once per source transaction.
            Some(p) => {
                if p.file != end.file {
                    p.file.clone_from(&end.file);
                }
                p.offset = end.offset;
                match (&mut p.gtid, gtid) {
                    (Some(g), Some(new)) => {
                        g.clear();
                        g.push_str(new);
                    }
                    (g, new) => *g = new.map(str::to_string),
                }
            }
            None => s.read = Some(Position { file: end.file.clone(), offset: end.offset, gtid: gtid.map(str::to_string) }),
        }
    }

    /// The checkpoint moved (or was confirmed); `in_flight` records are not acknowledged yet.
    pub fn acknowledged(&self, file: &str, offset: u64, gtid: Option<&str>, in_flight: u64) {
        self.in_flight.store(in_flight, Relaxed);
        let acked = self.records_produced.load(Relaxed).saturating_sub(in_flight);
        let before = self.records_acknowledged.swap(acked, Relaxed);
        let mut s = self.lock();
        if in_flight == 0 || acked > before {
            s.delivery_progress = Instant::now();
        }
        if s.acked.as_ref().is_none_or(|p| p.file != file || p.offset != offset || p.gtid.as_deref() != gtid) {
            s.acked = Some(Position { file: file.into(), offset, gtid: gtid.map(str::to_string) });
        }
    }

    /// Initial-load progress of one table (for the initial load; streaming alone has none).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn load_progress(&self, table: &str, rows_done: u64, rows_total: Option<u64>, done: bool) {
        let mut s = self.lock();
        let (rows_per_sec, eta_seconds) = s.load.get(table).map_or((None, None), |t| (t.rows_per_sec, t.eta_seconds));
        s.load.insert(table.to_string(), TableLoad { table: table.to_string(), rows_done, rows_total, done, rows_per_sec, eta_seconds });
    }

    /// The load rate of one table (after [`Status::load_progress`]).
    pub fn load_rate(&self, table: &str, rows_per_sec: u64, eta_seconds: Option<u64>) {
        if let Some(t) = self.lock().load.get_mut(table) {
            t.rows_per_sec = Some(rows_per_sec);
            t.eta_seconds = eta_seconds;
        }
    }

    /// Records the counters for the rates; call about once a second.
    pub fn sample(&self) {
        let (read, acked) = (self.rows_read.load(Relaxed), self.records_acknowledged.load(Relaxed));
        let mut s = self.lock();
        s.samples.push_back((Instant::now(), read, acked));
        while s.samples.len() > RATE_WINDOW + 1 {
            s.samples.pop_front();
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let source_ms = self.source_time_ms.load(Relaxed);
        let s = self.lock();
        let (rate_in, rate_out) = match (s.samples.front(), s.samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let dt = (b.0 - a.0).as_secs_f64();
                ((b.1 - a.1) as f64 / dt, b.2.saturating_sub(a.2) as f64 / dt)
            }
            _ => (0.0, 0.0),
        };
        let (state, last_error) = self.effective(&s);
        Snapshot {
            task: self.task.clone(),
            state,
            error: s.error.clone(),
            last_error,
            uptime_seconds: self.started.elapsed().as_secs(),
            source: self.source.clone(),
            source_version: s.source_version.clone(),
            sink: s.sink.clone(),
            heartbeat: self.heartbeat.clone(),
            read_position: s.read.clone(),
            acknowledged_position: s.acked.clone(),
            // Clocks of two hosts: never report a negative delay.
            delay_seconds: (source_ms > 0).then(|| (unix_now_ms() - source_ms).max(0) as f64 / 1000.0),
            last_event_time: (source_ms > 0).then_some(source_ms / 1000),
            rows_per_second_in: round2(rate_in),
            rows_per_second_out: round2(rate_out),
            rows_read: self.rows_read.load(Relaxed),
            records_produced: self.records_produced.load(Relaxed),
            bytes_produced: self.bytes_produced.load(Relaxed),
            records_acknowledged: self.records_acknowledged.load(Relaxed),
            records_in_flight: self.in_flight.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            initial_load: s.load.values().cloned().collect(),
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn unix_now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn unix_now() -> i64 {
    unix_now_ms() / 1000
}

/// The Prometheus text exposition of a snapshot.
pub fn prometheus(s: &Snapshot) -> String {
    use std::fmt::Write;
    let task = escape_label(&s.task);
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let sep = if labels.is_empty() { "" } else { "," };
            let _ = writeln!(out, "{name}{{task=\"{task}\"{sep}{labels}}} {value}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    let states: Vec<(String, f64)> = State::ALL
        .iter()
        .map(|st| (format!("state=\"{}\"", st.name()), if *st == s.state { 1.0 } else { 0.0 }))
        .collect();
    metric("sluice_state", "gauge", "1 for the task's current state, 0 for the others.", &states);
    metric("sluice_uptime_seconds", "gauge", "Seconds since the task started.", &one(s.uptime_seconds as f64));
    if let Some(d) = s.delay_seconds {
        metric("sluice_delay_seconds", "gauge", "Seconds between the source writing the last change read and now.", &one(d));
    }
    if let Some(t) = s.last_event_time {
        metric("sluice_last_event_timestamp_seconds", "gauge", "Source time of the last binlog event or idle heartbeat read.", &one(t as f64));
    }
    metric("sluice_rows_read_total", "counter", "Row changes read from the binlog.", &one(s.rows_read as f64));
    metric("sluice_records_produced_total", "counter", "Records handed to the Kafka producer.", &one(s.records_produced as f64));
    metric("sluice_bytes_produced_total", "counter", "Bytes (key + value) of the records handed to the producer.", &one(s.bytes_produced as f64));
    metric("sluice_records_acknowledged_total", "counter", "Records Kafka acknowledged.", &one(s.records_acknowledged as f64));
    metric("sluice_records_in_flight", "gauge", "Records sent and not yet acknowledged.", &one(s.records_in_flight as f64));
    metric("sluice_rows_per_second_in", "gauge", "Rows read per second (10 s average).", &one(s.rows_per_second_in));
    metric("sluice_rows_per_second_out", "gauge", "Records acknowledged per second (10 s average).", &one(s.rows_per_second_out));
    metric("sluice_source_reconnects_total", "counter", "Times the source connection was lost and re-established.", &one(s.reconnects as f64));
    if let Some(p) = &s.acknowledged_position {
        metric(
            "sluice_acknowledged_binlog_offset",
            "gauge",
            "Offset of the checkpoint in its binlog file.",
            &[(format!("file=\"{}\"", escape_label(&p.file)), p.offset as f64)],
        );
        metric(
            "sluice_acknowledged_binlog_file_index",
            "gauge",
            "Index (the number suffix) of the checkpoint's binlog file.",
            &one(sluice_event::file_index(&p.file) as f64),
        );
    }
    if !s.initial_load.is_empty() {
        let rows: Vec<(String, f64)> =
            s.initial_load.iter().map(|t| (format!("table=\"{}\"", escape_label(&t.table)), t.rows_done as f64)).collect();
        metric("sluice_load_rows_total", "counter", "Rows copied by the initial load, per table.", &rows);
    }
    out
}

/// The snapshot as `sluice status` prints it.
pub fn human(s: &Snapshot) -> String {
    use std::fmt::Write;
    let pos = |p: &Option<Position>| match p {
        Some(p) => match &p.gtid {
            Some(g) => format!("{}:{} (GTID {g})", p.file, p.offset),
            None => format!("{}:{}", p.file, p.offset),
        },
        None => "-".to_string(),
    };
    let mut out = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(out, "{:<14}{v}", format!("{k}:"));
    };
    line("task", s.task.clone());
    line("state", s.state.name().to_string());
    if let Some(e) = &s.error {
        line("error", e.clone());
    }
    line(
        "delay",
        match s.delay_seconds {
            Some(d) => format!("{d:.1} s (kept current by the {})", s.heartbeat),
            None => "unknown (no event read yet)".into(),
        },
    );
    line("read", pos(&s.read_position));
    line("acknowledged", pos(&s.acknowledged_position));
    line("rows/s", format!("in {:.1}, out {:.1}", s.rows_per_second_in, s.rows_per_second_out));
    line("rows read", s.rows_read.to_string());
    line(
        "records",
        format!(
            "{} produced ({} bytes), {} acknowledged, {} in flight",
            s.records_produced, s.bytes_produced, s.records_acknowledged, s.records_in_flight
        ),
    );
    line(
        "source",
        match &s.source_version {
            Some(v) => format!("{} ({v})", s.source),
            None => s.source.clone(),
        },
    );
    line("sink", s.sink.clone().unwrap_or_else(|| "-".into()));
    line("uptime", format!("{} s, {} source reconnect(s)", s.uptime_seconds, s.reconnects));
    line(
        "last error",
        match &s.last_error {
            Some(e) => format!("{} (at {} UNIX time)", e.message, e.at),
            None => "none".into(),
        },
    );
    for t in &s.initial_load {
        let progress = match (t.done, t.rows_total) {
            (true, _) => "done".to_string(),
            (false, Some(total)) if total > 0 => format!("{:.0}%", 100.0 * t.rows_done as f64 / total as f64),
            _ => "in progress".to_string(),
        };
        let rate = t.rows_per_sec.map(|r| format!(", {r} rows/s")).unwrap_or_default();
        let eta = t.eta_seconds.filter(|_| !t.done).map(|e| format!(", ETA {e}s")).unwrap_or_default();
        line("initial load", format!("{} {} rows, {progress}{rate}{eta}", t.table, t.rows_done));
    }
    out
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Samples the counters once a second until the status is dropped.
pub fn spawn_sampler(status: std::sync::Arc<Status>) -> tokio::task::JoinHandle<()> {
    let weak = std::sync::Arc::downgrade(&status);
    drop(status);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(s) => s.sample(),
                None => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_counts_positions_and_rates() {
        let s = Status::new("t1", "db:3306", "binlog heartbeat".into());
        s.sample();
        for _ in 0..10 {
            s.row_produced(100);
        }
        s.record_produced(50);
        s.read_position(&BinlogPosition::new("mysql-bin.000002", 900), Some("0-1-7"));
        s.acknowledged("mysql-bin.000002", 800, Some("0-1-6"), 3);
        std::thread::sleep(Duration::from_millis(20));
        s.sample();
        let snap = s.snapshot();
        assert_eq!((snap.rows_read, snap.records_produced, snap.bytes_produced), (10, 11, 1050));
        assert_eq!((snap.records_acknowledged, snap.records_in_flight), (8, 3));
        assert_eq!(snap.read_position.unwrap().gtid.as_deref(), Some("0-1-7"));
        assert_eq!(snap.acknowledged_position.as_ref().unwrap().offset, 800);
        assert!(snap.rows_per_second_in > 0.0 && snap.rows_per_second_out > 0.0);
        assert_eq!(snap.delay_seconds, None, "no event seen yet");
    }

    #[test]
    fn delay_follows_events_and_heartbeats() {
        use sluice_source::events::kind;
        let s = Status::new("t1", "db:3306", "binlog heartbeat".into());
        let old = (unix_now() - 100) as u32;
        s.observe_event(kind::WRITE_ROWS, old);
        let d = s.snapshot().delay_seconds.unwrap();
        assert!((99.0..=102.0).contains(&d), "{d}");
        s.observe_event(kind::HEARTBEAT, 0);
        assert!(s.snapshot().delay_seconds.unwrap() < 1.0);
        // A future timestamp (clock skew) never gives a negative delay.
        s.observe_event(kind::QUERY, (unix_now() + 50) as u32);
        assert_eq!(s.snapshot().delay_seconds, Some(0.0));
    }

    #[test]
    fn prometheus_text_is_well_formed() {
        let s = Status::new("t\"1", "db:3306", "binlog heartbeat".into());
        s.set_state(State::Syncing);
        s.row_produced(10);
        s.acknowledged("mysql-bin.000003", 42, None, 0);
        s.load_progress("shop.orders", 5, Some(10), false);
        let text = prometheus(&s.snapshot());
        assert!(text.contains("sluice_state{task=\"t\\\"1\",state=\"syncing\"} 1\n"), "{text}");
        assert!(text.contains("sluice_state{task=\"t\\\"1\",state=\"failed\"} 0\n"));
        assert!(text.contains("sluice_rows_read_total{task=\"t\\\"1\"} 1\n"));
        assert!(text.contains("sluice_acknowledged_binlog_file_index{task=\"t\\\"1\"} 3\n"));
        assert!(text.contains("sluice_load_rows_total{task=\"t\\\"1\",table=\"shop.orders\"} 5\n"));
        for line in text.lines() {
            assert!(line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.starts_with("sluice_"), "{line}");
            if !line.starts_with('#') {
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
    }
}
