//! Commit → Kafka latency of a running sluice, for `scripts/bench.sh`.
//!
//! ```text
//! latency_probe --mysql-url URL --brokers B --topic T [--rate 10000] [--batch 50]
//!               [--seconds 30] [--warmup 5]
//! ```
//!
//! Inserts `rate` rows per second into `bench.lat`, `batch` rows per autocommit INSERT, each row
//! carrying `commit_us = UNIX_TIMESTAMP(NOW(6))` in microseconds (the statement's start, which
//! is before its commit). A consumer reads the task's topic from the beginning (sluice must be
//! streaming into a fresh topic) and takes the wall-clock time at which each record arrives. A
//! record can only be fetched once the broker has acknowledged it with `acks=all`, so
//! `arrival − commit_us` is an upper bound of sluice's commit → ack latency: it adds the
//! INSERT's own run time and the consumer's fetch delay (fetch.wait.max.ms 1). The producer's
//! message timestamp (set when sluice hands the record to librdkafka) also gives commit → send.
//! Rows committed during the first `warmup` seconds are left out. Prints one JSON line.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use mysql_async::prelude::Queryable;
use rdkafka::{
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer},
    message::Timestamp,
    Message, Offset, TopicPartitionList,
};

fn die(msg: &str) -> ! {
    eprintln!("latency_probe: {msg}");
    std::process::exit(2)
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_micros() as i64
}

/// (commit_us, arrival_us, producer timestamp in ms)
type Sample = (i64, i64, i64);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let need = |name: &str| get(name).unwrap_or_else(|| die(&format!("missing {name}")));
    let num = |name: &str, default: u64| get(name).map_or(default, |v| v.parse().unwrap_or_else(|_| die(&format!("bad {name}"))));
    let (url, brokers, topic) = (need("--mysql-url"), need("--brokers"), need("--topic"));
    let (rate, batch, seconds, warmup) = (num("--rate", 10_000), num("--batch", 50), num("--seconds", 30), num("--warmup", 5));

    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (samples, stop, brokers, topic) = (samples.clone(), stop.clone(), brokers.clone(), topic.clone());
        std::thread::spawn(move || consume(&brokers, &topic, &samples, &stop))
    };

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (inserted, start_us, elapsed) = runtime.block_on(insert(&url, rate, batch, seconds));

    // Wait for the records of every inserted row (or give up after 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    while (samples.lock().expect("lock").len() as u64) < inserted && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    consumer.join().expect("consumer thread");

    let all = samples.lock().expect("lock").clone();
    let from = start_us + warmup as i64 * 1_000_000;
    let mut ack: Vec<f64> = Vec::new();
    let mut send: Vec<f64> = Vec::new();
    for &(commit, arrival, created_ms) in all.iter().filter(|s| s.0 >= from) {
        ack.push((arrival - commit) as f64 / 1000.0);
        if created_ms > 0 {
            send.push((created_ms * 1000 - commit) as f64 / 1000.0);
        }
    }
    ack.sort_by(f64::total_cmp);
    send.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| if v.is_empty() { f64::NAN } else { v[((v.len() - 1) as f64 * p).round() as usize] };
    println!(
        "{{\"rows_inserted\":{inserted},\"rows_received\":{},\"rows_measured\":{},\"rate_achieved\":{:.0},\"ack_p50_ms\":{:.2},\"ack_p90_ms\":{:.2},\"ack_p99_ms\":{:.2},\"ack_p999_ms\":{:.2},\"ack_max_ms\":{:.2},\"send_p50_ms\":{:.2},\"send_p99_ms\":{:.2}}}",
        all.len(),
        ack.len(),
        inserted as f64 / elapsed,
        pct(&ack, 0.5),
        pct(&ack, 0.9),
        pct(&ack, 0.99),
        pct(&ack, 0.999),
        ack.last().copied().unwrap_or(f64::NAN),
        pct(&send, 0.5),
        pct(&send, 0.99),
    );
    if (all.len() as u64) < inserted {
        die(&format!("only {} of {inserted} rows arrived in {topic}", all.len()));
    }
}

/// Inserts at a steady rate; returns rows inserted, the start (µs) and the seconds it took.
async fn insert(url: &str, rate: u64, batch: u64, seconds: u64) -> (u64, i64, f64) {
    let mut conn = mysql_async::Conn::from_url(url).await.unwrap_or_else(|e| die(&format!("MariaDB: {e}")));
    let sql = format!(
        "INSERT INTO bench.lat (commit_us, account, amount, customer, price, created, score, status, flag) \
         SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED), seq % 100003, seq * 7919 % 1000000007, \
         CONCAT('customer-', seq * 31 % 100000, '@example.com'), (seq * 37 % 10000000) / 100, NOW(6), \
         seq / 7.0, ELT(1 + seq % 4, 'new', 'paid', 'shipped', NULL), seq % 2 FROM mysql.seq_1_to_{batch}"
    );
    let period = Duration::from_secs_f64(batch as f64 / rate as f64);
    let mut tick = tokio::time::interval(period);
    // Late ticks are made up for, so the average rate holds even after a stall.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (start, start_us) = (Instant::now(), now_us());
    let mut inserted = 0;
    while start.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        conn.query_drop(&sql).await.unwrap_or_else(|e| die(&format!("INSERT: {e}")));
        inserted += batch;
    }
    (inserted, start_us, start.elapsed().as_secs_f64())
}

fn consume(brokers: &str, topic: &str, samples: &Mutex<Vec<Sample>>, stop: &AtomicBool) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "sluice-bench-latency")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "1")
        .set("fetch.min.bytes", "1")
        .set("fetch.error.backoff.ms", "1")
        .create()
        .unwrap_or_else(|e| die(&format!("consumer: {e}")));
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap_or_else(|e| die(&format!("metadata: {e}")));
    let partitions = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).unwrap_or_else(|e| die(&format!("assign: {e}")));
    while !stop.load(Ordering::Relaxed) {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else { continue };
        let arrival = now_us();
        let message = message.unwrap_or_else(|e| die(&format!("consumer error: {e}")));
        let created_ms = match message.timestamp() {
            Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => ms,
            Timestamp::NotAvailable => 0,
        };
        let record = sluice_format::dts_avro::decode_to_json(message.payload().unwrap_or_default())
            .unwrap_or_else(|e| die(&format!("undecodable record: {e}")));
        if record["objectName"] != "bench.lat" {
            continue;
        }
        let Some(commit) = record["afterImages"][1].as_i64() else {
            die(&format!("no commit_us in {record}"))
        };
        samples.lock().expect("lock").push((commit, arrival, created_ms));
    }
}
