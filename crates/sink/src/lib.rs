//! The Kafka end of sluice: a batching producer whose delivery reports, not its sends, decide
//! what may be checkpointed.
//!
//! # Correctness argument
//! Records are grouped into *batches* (the pipeline closes one per source transaction). A batch
//! counts the records sent into it and the delivery reports received for them. `acked_through`
//! only moves past a batch once it is closed and every record in it was acknowledged by the
//! broker with `acks=all` — and only in batch order, so a fast partition never lets the
//! checkpoint skip a slow one. A delivery that fails for good is recorded as an error and stops
//! the pipeline; nothing after it is ever checkpointed, so a restart re-sends it.
//!
//! Memory is bounded by librdkafka's queue limits: a full queue makes [`KafkaSink::send`] wait
//! for delivery reports, which stops the binlog reader (backpressure) instead of buffering more.

pub mod admin;
mod probe;
mod tail;
mod tracker;

use std::{collections::BTreeMap, fmt, sync::Arc, time::Duration};

use rdkafka::{
    config::ClientConfig,
    error::{KafkaError, RDKafkaErrorCode},
    producer::{BaseRecord, Producer, ThreadedProducer},
};

pub use admin::{ensure_topic, TopicSpec};
pub use probe::{probe_api_versions, ApiVersions};
pub use tail::{read_progress, Tail, TailRecord};
use tracker::{Context, Tracker};

/// How to reach the cluster and what to produce. `Debug` never shows the SASL password.
#[derive(Clone)]
pub struct SinkOptions {
    pub brokers: Vec<String>,
    pub topic: String,
    pub sasl: Option<Sasl>,
    /// none, gzip, snappy, lz4 or zstd.
    pub compression: String,
    /// `None`: decide from the broker's API versions.
    pub idempotence: Option<bool>,
    /// How long to wait for the cluster's metadata at start-up.
    pub connect_timeout: Duration,
    /// Extra librdkafka properties, applied last.
    pub librdkafka: BTreeMap<String, String>,
    /// client.id, so the brokers' logs name the task.
    pub client_id: String,
    /// Exactly-once delivery through Kafka transactions; `None` is at-least-once.
    pub exactly_once: Option<ExactlyOnce>,
}

/// Settings of transactional (exactly-once) delivery.
#[derive(Debug, Clone)]
pub struct ExactlyOnce {
    /// Stable per task: a restarted producer with the same id fences off the old one.
    pub transactional_id: String,
    /// Where each transaction records the source position it completes (one partition,
    /// compacted; read back on start).
    pub progress_topic: String,
}

#[derive(Clone)]
pub struct Sasl {
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

impl SinkOptions {
    /// The settings every client of the cluster needs: brokers, client id, SASL login.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.brokers.join(",")).set("client.id", &self.client_id);
        if let Some(sasl) = &self.sasl {
            config
                .set("security.protocol", "sasl_plaintext")
                .set("sasl.mechanism", &sasl.mechanism)
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
        config
    }
}

impl fmt::Debug for SinkOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkOptions")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("sasl_user", &self.sasl.as_ref().map(|s| &s.username))
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error("cannot reach the Kafka brokers {brokers} ({reason}). Fix: check [target] brokers and that the brokers are running and reachable from this host")]
    Unreachable { brokers: String, reason: String },
    #[error("topic '{topic}' does not exist on the Kafka cluster at {brokers}. Fix: create it, e.g. `kafka-topics.sh --bootstrap-server {brokers} --create --topic {topic} --partitions 1`, or set [target] topic to an existing one")]
    TopicMissing { topic: String, brokers: String },
    #[error("the Kafka cluster rejected the SASL login of user '{user}' ({reason}). Fix: check [target] sasl_username, sasl_password and sasl_mechanism")]
    AuthFailed { user: String, reason: String },
    #[error("invalid Kafka client setting: {0}. Fix: correct [target] or its [target.librdkafka] table")]
    Config(String),
    #[error("Kafka did not accept a record for topic '{topic}': {reason}. Nothing after it was checkpointed; sluice resends from its last checkpoint on restart")]
    Delivery { topic: String, reason: String },
    #[error("delivery = \"exactly_once\" needs Kafka transactions (brokers 0.11 or newer with a transaction coordinator), and the brokers at {brokers} do not offer them ({reason}). Fix: set [target] delivery = \"at_least_once\" (records then carry monotonic ids for deduplication), or use a broker that supports transactions")]
    NoTransactions { brokers: String, reason: String },
    #[error("the Kafka transaction could not be {doing}: {reason}. Nothing of it is visible to read_committed consumers; sluice resumes from the last committed position on restart")]
    Transaction { doing: &'static str, reason: String },
    #[error("the Kafka cluster at {brokers} does not allow {principal} to create topic '{topic}' ({reason}). Fix: grant {principal} the CREATE permission on the topic (or the cluster), or create the topic yourself: `{command}`")]
    TopicCreateDenied { topic: String, brokers: String, principal: String, reason: String, command: String },
    #[error("topic '{topic}' cannot be created with replication factor {replication_factor}: the Kafka cluster at {brokers} has {live_brokers} ({reason}). Fix: set [target] replication_factor to at most the number of brokers, or add brokers")]
    ReplicationFactor { topic: String, brokers: String, replication_factor: i32, live_brokers: String, reason: String },
    #[error("could not create topic '{topic}' on the Kafka cluster at {brokers}: {reason}. Fix: {fix}")]
    TopicCreate { topic: String, brokers: String, reason: String, fix: String },
}

/// Identifies a batch of records; batches are numbered from 1 in the order they were closed.
pub type BatchId = u64;

/// A producer to one topic with batch-ordered delivery tracking.
pub struct KafkaSink {
    producer: Arc<ThreadedProducer<Context>>,
    tracker: Arc<Tracker>,
    topic: String,
    partitions: i32,
    idempotent: bool,
    brokers: String,
    progress_topic: Option<String>,
}

impl KafkaSink {
    /// Connects, checks that the topic exists, and learns its partition count.
    pub async fn connect(opts: &SinkOptions) -> Result<Self, SinkError> {
        let brokers = opts.brokers.join(",");
        if opts.exactly_once.is_some() {
            match probe_api_versions(&opts.brokers, opts.connect_timeout).await {
                Ok(apis) if apis.supports_transactions() => {}
                Ok(_) => {
                    return Err(SinkError::NoTransactions { brokers, reason: "no EndTxn API".into() })
                }
                Err(reason) => return Err(SinkError::Unreachable { brokers, reason }),
            }
        }
        let idempotent = match opts.idempotence {
            Some(v) => v,
            None => match probe_api_versions(&opts.brokers, opts.connect_timeout).await {
                Ok(apis) => apis.supports_idempotence(),
                // Unknown (TLS, or the broker is down: metadata below says so): librdkafka's
                // idempotent producer refuses brokers too old for it, so asking is safe.
                Err(_) => true,
            },
        };
        let mut config = opts.client_config();
        config
            .set("acks", "all")
            .set("enable.idempotence", idempotent.to_string())
            .set("max.in.flight.requests.per.connection", if idempotent { "5" } else { "1" })
            .set("compression.type", &opts.compression)
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            // Keep retrying while the cluster is away: the queue limits below turn an outage
            // into backpressure on the binlog reader, not into lost records.
            .set("message.timeout.ms", "0")
            .set("queue.buffering.max.messages", "100000")
            .set("queue.buffering.max.kbytes", "65536")
            .set("allow.auto.create.topics", "false");
        if let Some(eos) = &opts.exactly_once {
            config
                .set("enable.idempotence", "true")
                .set("max.in.flight.requests.per.connection", "5")
                .set("transactional.id", &eos.transactional_id)
                // One source transaction is one Kafka transaction at least: allow big ones.
                .set("transaction.timeout.ms", "900000");
        }
        for (k, v) in &opts.librdkafka {
            config.set(k, v);
        }
        let tracker = Arc::new(Tracker::default());
        let producer: ThreadedProducer<Context> = config
            .create_with_context(Context::new(tracker.clone()))
            .map_err(|e| SinkError::Config(e.to_string()))?;
        let producer = Arc::new(producer);

        let (p, topic, timeout) = (producer.clone(), opts.topic.clone(), opts.connect_timeout);
        let metadata = tokio::task::spawn_blocking(move || p.client().fetch_metadata(Some(&topic), timeout))
            .await
            .expect("metadata task panicked");
        let partitions = match metadata {
            Ok(md) => match md.topics().first() {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => t.partitions().len() as i32,
                _ => return Err(SinkError::TopicMissing { topic: opts.topic.clone(), brokers }),
            },
            Err(e) => {
                let reason = tracker.last_client_error().unwrap_or_else(|| e.to_string());
                return Err(match (&opts.sasl, is_auth_failure(&e, &reason)) {
                    (Some(s), true) => SinkError::AuthFailed { user: s.username.clone(), reason },
                    _ => SinkError::Unreachable { brokers, reason },
                });
            }
        };
        let progress_topic = opts.exactly_once.as_ref().map(|e| e.progress_topic.clone());
        if progress_topic.is_some() {
            let p = producer.clone();
            let timeout = opts.connect_timeout;
            tokio::task::spawn_blocking(move || p.init_transactions(timeout).and_then(|()| p.begin_transaction()))
                .await
                .expect("transaction task panicked")
                .map_err(|e| SinkError::Transaction { doing: "started", reason: e.to_string() })?;
        }
        Ok(Self { producer, tracker, topic: opts.topic.clone(), partitions, idempotent: idempotent || progress_topic.is_some(), brokers, progress_topic })
    }

    /// Exactly-once mode: writes `progress` (the position this transaction completes) to the
    /// progress topic, commits the Kafka transaction and opens the next one. When this returns
    /// Ok, every record sent so far is committed, atomically with the progress record.
    pub async fn commit(&self, progress_key: &[u8], progress: &[u8]) -> Result<(), SinkError> {
        let Some(progress_topic) = &self.progress_topic else { return Ok(()) };
        let record = BaseRecord::with_opaque_to(progress_topic, 0usize).partition(0).key(progress_key).payload(progress);
        // The progress record is counted like any other: batch 0 never closes, so it never
        // moves `acked_through`; commit success below is what acknowledges.
        self.producer
            .send(record)
            .map_err(|(e, _)| SinkError::Transaction { doing: "committed", reason: e.to_string() })?;
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            p.commit_transaction(Duration::from_secs(60)).and_then(|()| p.begin_transaction())
        })
        .await
        .expect("commit task panicked")
        .map_err(|e| SinkError::Transaction { doing: "committed", reason: e.to_string() })?;
        self.check()
    }

    /// Exactly-once mode: drops everything sent since the last commit (read_committed
    /// consumers never see it) and opens the next transaction.
    pub async fn abort(&self) -> Result<(), SinkError> {
        if self.progress_topic.is_none() {
            return Ok(());
        }
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || p.abort_transaction(Duration::from_secs(60)).and_then(|()| p.begin_transaction()))
            .await
            .expect("abort task panicked")
            .map_err(|e| SinkError::Transaction { doing: "aborted", reason: e.to_string() })
    }

    pub fn transactional(&self) -> bool {
        self.progress_topic.is_some()
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    pub fn idempotent(&self) -> bool {
        self.idempotent
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// Queues one record into the open batch. Waits (without blocking the runtime) while
    /// librdkafka's queue is full. Fails once any earlier delivery failed for good.
    pub async fn send(&self, partition: i32, key: &[u8], payload: &[u8]) -> Result<(), SinkError> {
        self.check()?;
        let batch = self.tracker.record_sent();
        let mut record = BaseRecord::with_opaque_to(&self.topic, batch as usize)
            .partition(partition)
            .key(key)
            .payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.tracker.wait_for_delivery(Duration::from_millis(100)).await;
                    self.check()?;
                }
                Err((e, _)) => {
                    self.tracker.record_unsent(batch);
                    return Err(SinkError::Delivery { topic: self.topic.clone(), reason: with_fix(e.to_string()) });
                }
            }
        }
    }

    /// Closes the open batch; its id becomes acknowledged once all its records are.
    pub fn end_batch(&self) -> BatchId {
        self.tracker.close_batch()
    }

    /// Every batch up to and including this id is closed and fully acknowledged (0: none yet).
    pub fn acked_through(&self) -> BatchId {
        self.tracker.acked_through()
    }

    /// Records sent and not yet acknowledged.
    pub fn in_flight(&self) -> u64 {
        self.tracker.in_flight()
    }

    /// The first permanent delivery failure, if any.
    pub fn check(&self) -> Result<(), SinkError> {
        match self.tracker.delivery_error() {
            Some(reason) => Err(SinkError::Delivery { topic: self.topic.clone(), reason: with_fix(reason) }),
            None => Ok(()),
        }
    }

    /// The most recent client-level error (e.g. all brokers down), for status output.
    pub fn last_client_error(&self) -> Option<String> {
        self.tracker.last_client_error()
    }

    /// Waits until a delivery report arrives or `timeout` passes.
    pub async fn wait_for_delivery(&self, timeout: Duration) {
        self.tracker.wait_for_delivery(timeout).await
    }

    /// Waits up to `timeout` for every queued record to be delivered.
    pub async fn flush(&self, timeout: Duration) -> Result<(), SinkError> {
        let p = self.producer.clone();
        let done = tokio::task::spawn_blocking(move || p.flush(timeout)).await.expect("flush task panicked");
        self.check()?;
        done.map_err(|e| SinkError::Delivery { topic: self.topic.clone(), reason: e.to_string() })
    }
}

/// Where records go: Kafka, or nowhere (to measure everything before the producer).
pub enum Sink {
    Kafka(KafkaSink),
    /// Counts records and acknowledges every batch at once.
    Null { partitions: i32, records: std::sync::atomic::AtomicU64, batches: std::sync::atomic::AtomicU64 },
}

impl Sink {
    pub fn null(partitions: i32) -> Sink {
        Sink::Null { partitions, records: Default::default(), batches: Default::default() }
    }

    pub fn partitions(&self) -> i32 {
        match self {
            Sink::Kafka(k) => k.partitions(),
            Sink::Null { partitions, .. } => *partitions,
        }
    }

    pub async fn send(&self, partition: i32, key: &[u8], payload: &[u8]) -> Result<(), SinkError> {
        match self {
            Sink::Kafka(k) => k.send(partition, key, payload).await,
            Sink::Null { records, .. } => {
                records.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Exactly-once mode: commits the open Kafka transaction with its progress record.
    pub async fn commit(&self, progress_key: &[u8], progress: &[u8]) -> Result<(), SinkError> {
        match self {
            Sink::Kafka(k) => k.commit(progress_key, progress).await,
            Sink::Null { .. } => Ok(()),
        }
    }

    pub async fn abort(&self) -> Result<(), SinkError> {
        match self {
            Sink::Kafka(k) => k.abort().await,
            Sink::Null { .. } => Ok(()),
        }
    }

    pub fn transactional(&self) -> bool {
        matches!(self, Sink::Kafka(k) if k.transactional())
    }

    pub fn end_batch(&self) -> BatchId {
        match self {
            Sink::Kafka(k) => k.end_batch(),
            Sink::Null { batches, .. } => batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
        }
    }

    pub fn acked_through(&self) -> BatchId {
        match self {
            Sink::Kafka(k) => k.acked_through(),
            Sink::Null { batches, .. } => batches.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    pub fn in_flight(&self) -> u64 {
        match self {
            Sink::Kafka(k) => k.in_flight(),
            Sink::Null { .. } => 0,
        }
    }

    pub async fn flush(&self, timeout: Duration) -> Result<(), SinkError> {
        match self {
            Sink::Kafka(k) => k.flush(timeout).await,
            Sink::Null { .. } => Ok(()),
        }
    }

    /// A one-line description for logs.
    pub fn describe(&self) -> String {
        match self {
            Sink::Kafka(k) => format!(
                "Kafka {} topic {} ({} partitions, idempotent: {})",
                k.brokers(),
                k.topic(),
                k.partitions(),
                k.idempotent()
            ),
            Sink::Null { partitions, .. } => format!("null sink ({partitions} partitions, records discarded)"),
        }
    }
}

/// Adds the fix to delivery failures whose cure is a setting.
fn with_fix(reason: String) -> String {
    if reason.contains("MessageSizeTooLarge") || reason.contains("too large") {
        format!("{reason} (a record is larger than the broker or producer accepts; fix: raise message.max.bytes on the brokers and in [target.librdkafka] \"message.max.bytes\")")
    } else {
        reason
    }
}

fn is_auth_failure(e: &KafkaError, reason: &str) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::Authentication)
        || reason.contains("Authentication")
        || reason.contains("SASL")
}
