//! The raw producer limit for `scripts/bench.sh`: how fast a minimal rdkafka loop produces the
//! very records sluice produced, with the sink's producer settings, to the same broker.
//!
//! ```text
//! raw_producer dump    --brokers B --topic T --count N --out FILE
//!     reads N records (every partition, from the beginning) into FILE
//! raw_producer produce --brokers B --topic T --in FILE [--idempotence true|false] [--compression lz4]
//!     produces FILE's records (same partition, key and value) and prints one JSON line
//! ```
//!
//! `produce` times from the creation of the producer (connection, topic metadata and, with
//! idempotence, the producer id request included, as in a sluice run) to the delivery report of
//! the last record.
//! One thread: `send` until librdkafka's queue is full, then serve delivery reports; nothing
//! else happens per record, so this is the most a single producer gets from this broker.
//!
//! FILE holds, per record: partition (i32 LE), key length (u32 LE), key, value length (u32 LE),
//! value.

use std::{
    io::{BufWriter, Write},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use rdkafka::{
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer},
    error::{KafkaError, RDKafkaErrorCode},
    producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext},
    ClientContext, Message, Offset, TopicPartitionList,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| -> Option<String> {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
    };
    let need = |name: &str| get(name).unwrap_or_else(|| die(&format!("missing {name}")));
    match args.first().map(String::as_str) {
        Some("dump") => dump(&need("--brokers"), &need("--topic"), need("--count").parse().expect("--count"), &need("--out")),
        Some("produce") => produce(
            &need("--brokers"),
            &need("--topic"),
            &need("--in"),
            get("--idempotence").as_deref().unwrap_or("true") == "true",
            get("--compression").as_deref().unwrap_or("lz4"),
        ),
        _ => die("usage: raw_producer dump|produce ... (see the source)"),
    }
}

fn die(msg: &str) -> ! {
    eprintln!("raw_producer: {msg}");
    std::process::exit(2)
}

fn dump(brokers: &str, topic: &str, count: u64, out: &str) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "sluice-bench-dump")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()
        .unwrap_or_else(|e| die(&format!("consumer: {e}")));
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap_or_else(|e| die(&format!("metadata: {e}")));
    let partitions = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
    if partitions == 0 {
        die(&format!("topic {topic} has no partitions"));
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).unwrap_or_else(|e| die(&format!("assign: {e}")));
    let mut file = BufWriter::with_capacity(1 << 20, std::fs::File::create(out).unwrap_or_else(|e| die(&format!("{out}: {e}"))));
    let (mut n, mut last) = (0u64, Instant::now());
    while n < count {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let (key, value) = (m.key().unwrap_or_default(), m.payload().unwrap_or_default());
                file.write_all(&m.partition().to_le_bytes()).expect("write");
                file.write_all(&(key.len() as u32).to_le_bytes()).expect("write");
                file.write_all(key).expect("write");
                file.write_all(&(value.len() as u32).to_le_bytes()).expect("write");
                file.write_all(value).expect("write");
                n += 1;
                last = Instant::now();
            }
            Some(Err(e)) => die(&format!("consumer error: {e}")),
            None if last.elapsed() > Duration::from_secs(30) => die(&format!("only {n} of {count} records in {topic}")),
            None => {}
        }
    }
    file.flush().expect("write");
    println!("{{\"dumped\":{n}}}");
}

struct Counter {
    acked: AtomicU64,
    failed: AtomicU64,
    first_ack: std::sync::OnceLock<Instant>,
}

impl ClientContext for Counter {}

impl ProducerContext for Counter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.first_ack.get_or_init(Instant::now);
                self.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("raw_producer: delivery failed: {e}");
                }
            }
        }
    }
}

fn produce(brokers: &str, topic: &str, input: &str, idempotence: bool, compression: &str) {
    let data = std::fs::read(input).unwrap_or_else(|e| die(&format!("{input}: {e}")));
    // (partition, key, value) as ranges into `data`.
    let mut records = Vec::new();
    let mut pos = 0;
    let u32_at = |p: usize| u32::from_le_bytes(data[p..p + 4].try_into().expect("4 bytes")) as usize;
    let (mut key_bytes, mut value_bytes) = (0usize, 0usize);
    while pos < data.len() {
        let partition = i32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes"));
        let klen = u32_at(pos + 4);
        let key = pos + 8..pos + 8 + klen;
        let vlen = u32_at(key.end);
        let value = key.end + 4..key.end + 4 + vlen;
        pos = value.end;
        key_bytes += klen;
        value_bytes += vlen;
        records.push((partition, key, value));
    }

    let start = Instant::now();
    // The sink's settings (crates/sink/src/lib.rs, KafkaSink::connect).
    let producer: BaseProducer<Counter> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "sluice-bench-raw")
        .set("acks", "all")
        .set("enable.idempotence", idempotence.to_string())
        .set("max.in.flight.requests.per.connection", if idempotence { "5" } else { "1" })
        .set("compression.type", compression)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("message.timeout.ms", "0")
        .set("queue.buffering.max.messages", "100000")
        .set("queue.buffering.max.kbytes", "65536")
        .set("allow.auto.create.topics", "false")
        .create_with_context(Counter { acked: AtomicU64::new(0), failed: AtomicU64::new(0), first_ack: Default::default() })
        .unwrap_or_else(|e| die(&format!("producer: {e}")));
    // As sluice's sink does before its first record: wait for the topic's metadata.
    producer.client().fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap_or_else(|e| die(&format!("metadata: {e}")));
    let mut queue_full = 0u64;
    for (i, (partition, key, value)) in records.iter().enumerate() {
        let mut record = BaseRecord::to(topic).partition(*partition).key(&data[key.clone()]).payload(&data[value.clone()]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    queue_full += 1;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => die(&format!("send: {e}")),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    let n = records.len() as u64;
    let ctx = producer.context();
    while ctx.acked.load(Ordering::Relaxed) + ctx.failed.load(Ordering::Relaxed) < n {
        producer.poll(Duration::from_millis(1));
    }
    let secs = start.elapsed().as_secs_f64();
    let failed = ctx.failed.load(Ordering::Relaxed);
    let first_ack_ms = ctx.first_ack.get().map_or(0.0, |t| (*t - start).as_secs_f64() * 1000.0);
    println!(
        "{{\"messages\":{n},\"failed\":{failed},\"key_bytes\":{key_bytes},\"value_bytes\":{value_bytes},\"secs\":{secs:.4},\"msgs_per_sec\":{:.0},\"first_ack_ms\":{first_ack_ms:.1},\"queue_full\":{queue_full},\"idempotence\":{idempotence},\"compression\":\"{compression}\"}}",
        n as f64 / secs
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
