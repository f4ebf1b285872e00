//! Reading a topic back, for `sluice tail`: every partition from the beginning (or the end).

use std::time::Duration;

use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    Message, Offset, TopicPartitionList,
};

use crate::{SinkError, SinkOptions};

/// One record read back from the topic.
pub struct TailRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

pub struct Tail {
    consumer: BaseConsumer,
}

impl Tail {
    /// Assigns every partition of the task's topic, from the beginning or from the end.
    pub fn open(opts: &SinkOptions, from_beginning: bool) -> Result<Tail, SinkError> {
        let brokers = opts.brokers.join(",");
        let consumer: BaseConsumer = opts
            .client_config()
            .set("group.id", format!("{}-tail", opts.client_id))
            .set("enable.auto.commit", "false")
            .create().map_err(|e| SinkError::Config(e.to_string()))?;
        let metadata = consumer
            .fetch_metadata(Some(&opts.topic), opts.connect_timeout)
            .map_err(|e| SinkError::Unreachable { brokers: brokers.clone(), reason: e.to_string() })?;
        let partitions = match metadata.topics().first() {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => t.partitions().len() as i32,
            _ => return Err(SinkError::TopicMissing { topic: opts.topic.clone(), brokers }),
        };
        let mut tpl = TopicPartitionList::new();
        let offset = if from_beginning { Offset::Beginning } else { Offset::End };
        for p in 0..partitions {
            tpl.add_partition_offset(&opts.topic, p, offset).expect("valid partition");
        }
        consumer.assign(&tpl).map_err(|e| SinkError::Config(e.to_string()))?;
        Ok(Tail { consumer })
    }

    /// Waits up to `timeout` for the next record.
    pub fn next(&self, timeout: Duration) -> Result<Option<TailRecord>, SinkError> {
        match self.consumer.poll(timeout) {
            None => Ok(None),
            Some(Ok(m)) => Ok(Some(TailRecord {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().unwrap_or_default().to_vec(),
                value: m.payload().unwrap_or_default().to_vec(),
            })),
            // Broker hiccups are retried by the client; report them, keep going.
            Some(Err(e)) => {
                tracing::warn!(error = %e, "consumer error");
                Ok(None)
            }
        }
    }
}

/// A client context that does not log reaching a partition's end as an error (it is how
/// [`read_progress`] knows it has read everything).
struct QuietEof;

impl rdkafka::ClientContext for QuietEof {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::{error::KafkaError, types::RDKafkaErrorCode};
        if !matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            tracing::error!(error = %error, reason, "Kafka client error while reading the progress topic");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEof {}

/// Exactly-once mode: the newest committed progress record stored under `key`, read with
/// `isolation.level=read_committed` from the start of the progress topic to its end.
pub fn read_progress(opts: &SinkOptions, progress_topic: &str, key: &[u8]) -> Result<Option<Vec<u8>>, SinkError> {
    let brokers = opts.brokers.join(",");
    let consumer: BaseConsumer<QuietEof> = opts
        .client_config()
        .set("group.id", format!("{}-progress", opts.client_id))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create_with_context(QuietEof)
        .map_err(|e| SinkError::Config(e.to_string()))?;
    let (low, high) = consumer
        .fetch_watermarks(progress_topic, 0, opts.connect_timeout)
        .map_err(|e| match e.rdkafka_error_code() {
            Some(rdkafka::error::RDKafkaErrorCode::UnknownTopicOrPartition | rdkafka::error::RDKafkaErrorCode::UnknownPartition) => {
                SinkError::TopicMissing { topic: progress_topic.to_string(), brokers: brokers.clone() }
            }
            _ => SinkError::Unreachable { brokers: brokers.clone(), reason: e.to_string() },
        })?;
    if high <= low {
        return Ok(None);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(progress_topic, 0, Offset::Beginning).expect("valid partition");
    consumer.assign(&tpl).map_err(|e| SinkError::Config(e.to_string()))?;
    let mut latest = None;
    let deadline = std::time::Instant::now() + opts.connect_timeout * 6;
    loop {
        if std::time::Instant::now() > deadline {
            return Err(SinkError::Unreachable {
                brokers,
                reason: format!("reading the progress topic {progress_topic} did not reach its end"),
            });
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) if m.key() == Some(key) => latest = m.payload().map(<[u8]>::to_vec),
            Some(Ok(_)) | None => {}
            // The end of what read_committed may see: the newest committed progress is `latest`.
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return Ok(latest),
            Some(Err(e)) => return Err(SinkError::Unreachable { brokers, reason: e.to_string() }),
        }
    }
}
