//! Exactly-once delivery: refused where the broker has no transactions (tansu), and against
//! librdkafka's mock cluster (which has them) every committed source change is seen exactly once
//! by a read_committed consumer, across repeated SIGKILLs of sluice under continuous writes.

mod common;

use std::{collections::BTreeMap, time::Duration};

use apache_avro::types::Value as Avro;
use common::*;
use mysql_async::prelude::Queryable;
use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    mocking::MockCluster,
    ClientConfig, Message, Offset, TopicPartitionList,
};

fn eos(config: String, progress_topic: &str) -> String {
    config.replace(
        "partition_policy",
        &format!("delivery = \"exactly_once\"\nprogress_topic = \"{progress_topic}\"\npartition_policy"),
    )
}

#[tokio::test]
async fn exactly_once_is_refused_without_broker_transactions() {
    let svc = services();
    let topic = unique("eos");
    create_topic(&svc.brokers, &topic, 1).await;
    let start = binlog_end(&mut admin_conn().await).await;
    let mut sluice = Sluice::start(&eos(task_config(&topic, "x.y", &start, "partition0", ""), "progress"));
    let (code, stderr) = sluice.wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0);
    let line = stderr.lines().find(|l| l.starts_with("sluice: error:")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("delivery = \"exactly_once\" needs Kafka transactions"), "{line}");
    assert!(line.contains("Fix: set [target] delivery = \"at_least_once\""), "{line}");
}

/// One record as read back: its id and the producer's CreateTime (ms).
struct Seen {
    id: i64,
    time_ms: i64,
}

/// Reads every record of `topic`, up to each partition's end offset.
fn read_all(brokers: &str, topic: &str, partitions: i32) -> Vec<Seen> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("eos-check"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap();
        ends.insert(p, high);
    }
    consumer.assign(&tpl).unwrap();
    let schemata = record_schema();
    let mut seen = Vec::new();
    let mut next: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
    let end = std::time::Instant::now() + Duration::from_secs(120);
    while next.iter().any(|(p, o)| *o < ends[p]) {
        assert!(std::time::Instant::now() < end, "did not reach the end of {topic}: {next:?} of {ends:?}");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            next.insert(m.partition(), m.offset() + 1);
            let record = decode(&schemata, m.payload().unwrap());
            let Avro::Long(id) = field(&record, "id") else { panic!() };
            seen.push(Seen { id: *id, time_ms: m.timestamp().to_millis().expect("CreateTime") });
        }
    }
    seen
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// librdkafka's mock cluster implements the transactional producer protocol but does not hide
/// aborted transactions from read_committed consumers (it reports no aborted transactions and
/// LSO = end offset). So the test works out what a real broker would show: records are assigned
/// to the run that produced them by CreateTime, and a run's records are committed exactly when
/// their id is below the `next_id` the following run resumed from (the position committed
/// atomically with them in the progress topic). Exactly-once then means: every id appears
/// exactly once among committed records, and the last run's are all committed (clean stop).
#[tokio::test]
async fn exactly_once_survives_kills() {
    const TRANSACTIONS: i64 = 300;
    const KILLS: usize = 4;
    let cluster = MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    let (topic, progress) = (unique("eos"), unique("progress"));
    cluster.create_topic(&topic, 3, 1).unwrap();
    cluster.create_topic(&progress, 1, 1).unwrap();

    let db = unique("eos");
    let mut c = admin_conn().await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, v INT)")).await.unwrap();
    let start = binlog_end(&mut c).await;
    let writer_db = db.clone();
    let writer = tokio::spawn(async move {
        let mut c = admin_conn().await;
        for t in 0..TRANSACTIONS {
            c.query_drop(format!("INSERT INTO {writer_db}.t VALUES ({}, 0), ({}, 0)", t * 2 + 1, t * 2 + 2)).await.unwrap();
            // Paced so the runs between kills see live writes and commit mid-stream.
            tokio::time::sleep(Duration::from_millis(12)).await;
        }
    });

    let s = services();
    let config = eos(
        task_config_for(&s.host, s.port, &s.user, &s.password, &brokers, &topic, &format!("{db}.t"), &start, "primary_key", ""),
        &progress,
    );
    let dir = std::env::temp_dir().join(unique("eos-task"));
    let total = TRANSACTIONS * 2;
    let (b, t) = (brokers.clone(), topic.clone());
    let run_dir = dir.clone();
    let (mut windows, config) = tokio::task::spawn_blocking(move || {
        let mut tail = Tail::new(&b, &t, 3);
        let mut windows = Vec::new();
        for k in 0..KILLS {
            let started = now_ms();
            let sluice = Sluice::start_in(&run_dir, &config);
            sluice.wait_log("streaming the binlog", k + 1, Duration::from_secs(60));
            // Kill once this run has produced some records (committed or not).
            let target = tail.records.len() + 60 + 40 * k;
            tail.read_until(Duration::from_secs(120), |r| r.len() >= target);
            sluice.kill9();
            windows.push((started, now_ms()));
        }
        (windows, config)
    })
    .await
    .unwrap();
    writer.await.unwrap();
    // The last run stops by itself once everything written is committed.
    let final_start = now_ms();
    let mut sluice = Sluice::start_with(&dir, &config, &["--stop-at-end"]);
    let (code, stderr) = tokio::task::spawn_blocking(move || sluice.wait_exit(Duration::from_secs(120))).await.unwrap();
    assert_eq!(code, 0, "{stderr}");
    windows.push((final_start, now_ms()));
    let (b, t) = (brokers.clone(), topic.clone());
    let seen = tokio::task::spawn_blocking(move || read_all(&b, &t, 3)).await.unwrap();

    // Where each run after the first resumed (its next_id), from its log.
    let resumed: Vec<i64> = stderr
        .lines()
        .filter(|l| l.contains("resuming from the checkpoint"))
        .map(|l| l.rsplit("next_id=").next().unwrap().trim().parse().unwrap())
        .collect();
    let mut bounds: Vec<i64> = std::iter::once(1).chain(resumed.iter().copied()).collect();
    assert!(bounds.len() >= windows.len() - 1, "every restart resumed from a committed position:\n{stderr}");
    bounds.truncate(windows.len());
    while bounds.len() < windows.len() {
        bounds.push(*bounds.last().unwrap());
    }
    assert!(bounds.windows(2).all(|w| w[0] <= w[1]), "resume points never go back: {bounds:?}");

    for (k, (a, b)) in windows.iter().enumerate() {
        let ids: Vec<i64> = seen.iter().filter(|r| (*a..=*b).contains(&r.time_ms)).map(|r| r.id).collect();
        eprintln!("run {k}: resumed at {}, produced ids {:?}..{:?} ({} records)", bounds[k], ids.iter().min(), ids.iter().max(), ids.len());
    }
    let mut committed: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &seen {
        let run = windows.iter().position(|(a, b)| (*a..=*b).contains(&r.time_ms)).expect("record produced during a run");
        let upto = if run + 1 < windows.len() { bounds[run + 1] } else { i64::MAX };
        if r.id < upto {
            *committed.entry(r.id).or_default() += 1;
        }
    }
    let twice: Vec<_> = committed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "committed more than once: {twice:?} (resume points {bounds:?})");
    assert_eq!(committed.keys().copied().collect::<Vec<_>>(), (1..=total).collect::<Vec<_>>(), "none lost");
    eprintln!("exactly once: {total} changes across {KILLS} kills, resume points {bounds:?}");
    drop(cluster);
}
