//! Exactly-once delivery: refused where the broker has no transactions (tansu), and against
//! librdkafka's mock cluster (which has them) every committed source change is seen exactly once
//! by a read_committed consumer, across repeated SIGKILLs of sluice under continuous writes. The
//! same for the initial load, whose chunks are committed one Kafka transaction each.

mod common;

use std::{collections::BTreeMap, time::Duration};

use apache_avro::types::Value as Avro;
use common::*;
use mysql_async::prelude::Queryable;
use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    message::BorrowedMessage,
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
    let schemata = record_schema();
    read_topic(brokers, topic, partitions, |m| {
        let record = decode(&schemata, m.payload().unwrap());
        let Avro::Long(id) = field(&record, "id") else { panic!() };
        Seen { id: *id, time_ms: m.timestamp().to_millis().expect("CreateTime") }
    })
}

/// Reads every record of `topic` up to each partition's end offset, as `read` makes them.
fn read_topic<T>(brokers: &str, topic: &str, partitions: i32, mut read: impl FnMut(&BorrowedMessage<'_>) -> T) -> Vec<T> {
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
    let mut seen = Vec::new();
    let mut next: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
    let end = std::time::Instant::now() + Duration::from_secs(120);
    while next.iter().any(|(p, o)| *o < ends[p]) {
        assert!(std::time::Instant::now() < end, "did not reach the end of {topic}: {next:?} of {ends:?}");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            next.insert(m.partition(), m.offset() + 1);
            seen.push(read(&m));
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

/// One record of a loaded table `t (id BIGINT PRIMARY KEY, v INT, s VARCHAR(40))` as read back.
#[derive(Debug)]
struct Change {
    partition: i32,
    offset: i64,
    time_ms: i64,
    /// The DTS record id.
    id: i64,
    op: String,
    /// The row's primary key and its image (after, else before), as text.
    key: i64,
    row: Vec<String>,
    /// The `initial_load` tag.
    initial_load: Option<String>,
}


fn read_changes(brokers: &str, topic: &str, partitions: i32) -> Vec<Change> {
    let schemata = record_schema();
    read_topic(brokers, topic, partitions, |m| {
        let r = decode(&schemata, m.payload().unwrap());
        let Avro::Long(id) = field(&r, "id") else { panic!("id") };
        let Avro::Enum(_, op) = field(&r, "operation") else { panic!("operation") };
        let row = image(&r, "afterImages").or_else(|| image(&r, "beforeImages")).expect("an image");
        let initial_load = tag(&r, "initial_load");
        Change {
            partition: m.partition(),
            offset: m.offset(),
            time_ms: m.timestamp().to_millis().expect("CreateTime"),
            id: *id,
            op: op.clone(),
            key: row[0].parse().expect("integer key"),
            row,
            initial_load,
        }
    })
}

/// The progress topic's records: key, payload and CreateTime.
fn read_progress(brokers: &str, topic: &str) -> Vec<(String, String, i64)> {
    read_topic(brokers, topic, 1, |m| {
        (
            String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            m.timestamp().to_millis().expect("CreateTime"),
        )
    })
}

/// The `seq` of a load progress record (`{"seq":N}`).
fn seq_of(payload: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_else(|e| panic!("{payload}: {e}"));
    v["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {payload}"))
}

/// A database with the table `t` holding the rows 1..=`rows` (`v` = id % 1000, `s` = "row <id>"),
/// and the binlog end after it.
async fn loaded_table(rows: i64) -> (String, String) {
    let db = unique("eosload");
    let mut c = admin_conn().await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, v INT, s VARCHAR(40))")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.t SELECT seq, seq % 1000, CONCAT('row ', seq) FROM mysql.seq_1_to_{rows}")).await.unwrap();
    // Fresh row estimates: a big table is split into key ranges loaded in parallel.
    c.query_drop(format!("ANALYZE TABLE {db}.t")).await.unwrap();
    let start = binlog_end(&mut c).await;
    (db, start)
}

/// An exactly-once task that loads `db`.t in chunks of `chunk_size` rows, then streams.
fn load_config(brokers: &str, topic: &str, progress: &str, db: &str, start: &str, policy: &str, chunk_size: usize) -> String {
    let s = services();
    let config = task_config_for(&s.host, s.port, &s.user, &s.password, brokers, topic, &format!("{db}.t"), start, policy, "");
    format!("{}[initial_load]\ndata = true\nchunk_size = {chunk_size}\n", eos(config, progress))
}

fn task_name(config: &str) -> String {
    let line = config.lines().find(|l| l.starts_with("name = ")).expect("name");
    line.trim_start_matches("name = ").trim_matches('"').to_string()
}

/// The `rows_done` the log's first "initial load of table" line gives (where the load of the
/// table began or resumed).
fn rows_done(log: &str) -> Option<u64> {
    log.lines()
        .filter(|l| l.contains("initial load of table"))
        .find_map(|l| l.split("rows_done=").nth(1)?.split_whitespace().next()?.parse().ok())
}

/// The initial load in exactly-once mode: every row goes out once, as an INSERT tagged
/// `initial_load`, each chunk committed with its progress record; the changes made after the
/// load follow them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_initial_load_then_stream() {
    const ROWS: i64 = 20_000;
    const CHUNK: usize = 500;
    let cluster = MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    let (topic, progress) = (unique("eosload"), unique("progress"));
    // The mock cluster cannot create topics (it has no CreateTopics): structure init
    // (`structure = true`, the default) finds them there.
    cluster.create_topic(&topic, 1, 1).unwrap();
    cluster.create_topic(&progress, 1, 1).unwrap();
    let (db, start) = loaded_table(ROWS).await;
    let config = load_config(&brokers, &topic, &progress, &db, &start, "partition0", CHUNK);
    let name = task_name(&config);
    let sluice = Sluice::start(&config);
    tokio::task::block_in_place(|| sluice.wait_log("initial load complete", 1, Duration::from_secs(300)));
    let mut c = admin_conn().await;
    for sql in [
        format!("INSERT INTO {db}.t VALUES ({}, 1, 'new'), ({}, 2, 'new')", ROWS + 1, ROWS + 2),
        format!("UPDATE {db}.t SET v = -1 WHERE id = 1"),
        format!("UPDATE {db}.t SET s = 'last' WHERE id = {ROWS}"),
        format!("DELETE FROM {db}.t WHERE id = 10"),
    ] {
        c.query_drop(sql).await.unwrap();
    }
    let (b, t) = (brokers.clone(), topic.clone());
    tokio::task::spawn_blocking(move || Tail::new(&b, &t, 1).count_until(ROWS as usize + 5, Duration::from_secs(120)))
        .await
        .unwrap();
    let (code, log) = tokio::task::spawn_blocking(move || sluice.stop()).await.unwrap();
    assert_eq!(code, 0, "{log}");
    eprintln!("{}", log.lines().find(|l| l.contains("initial load complete")).unwrap());
    // Loaded as key ranges in parallel: the chunks of several ranges share the transactions.
    assert!(log.contains("splitting the table into key ranges"), "{log}");
    let (b, t, p) = (brokers.clone(), topic.clone(), progress.clone());
    let (records, progress_records) =
        tokio::task::spawn_blocking(move || (read_changes(&b, &t, 1), read_progress(&b, &p))).await.unwrap();

    // One run, stopped cleanly: everything in the topic is committed. Each row exactly once.
    let (loaded, streamed): (Vec<&Change>, Vec<&Change>) = records.iter().partition(|r| r.initial_load.is_some());
    assert!(loaded.iter().all(|r| r.initial_load.as_deref() == Some("true") && r.op == "INSERT"), "loaded records are tagged INSERTs");
    let mut keys: Vec<i64> = loaded.iter().map(|r| r.key).collect();
    keys.sort_unstable();
    let twice: Vec<_> = keys.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).take(10).collect();
    assert!(twice.is_empty(), "loaded more than once: {twice:?}");
    assert_eq!(keys, (1..=ROWS).collect::<Vec<_>>(), "each row loaded");
    for r in &loaded {
        assert_eq!(r.row, [r.key.to_string(), (r.key % 1000).to_string(), format!("row {}", r.key)], "the row's values");
    }
    // The changes after the load, each once, in commit order, after every loaded record.
    let got: Vec<(&str, i64, &[String])> = streamed.iter().map(|r| (r.op.as_str(), r.key, &r.row[..])).collect();
    let want = [
        ("INSERT", ROWS + 1, vec![(ROWS + 1).to_string(), "1".into(), "new".into()]),
        ("INSERT", ROWS + 2, vec![(ROWS + 2).to_string(), "2".into(), "new".into()]),
        ("UPDATE", 1, vec!["1".into(), "-1".into(), "row 1".into()]),
        ("UPDATE", ROWS, vec![ROWS.to_string(), (ROWS % 1000).to_string(), "last".into()]),
        ("DELETE", 10, vec!["10".into(), "10".into(), "row 10".into()]),
    ];
    let want: Vec<(&str, i64, &[String])> = want.iter().map(|(op, k, row)| (*op, *k, &row[..])).collect();
    assert_eq!(got, want, "the changes after the load");
    let last_loaded = loaded.iter().map(|r| r.offset).max().unwrap();
    assert!(streamed.iter().all(|r| r.offset > last_loaded), "the changes come after the loaded rows");
    // Record ids: unique and rising along the (single) partition.
    assert!(records.windows(2).all(|w| w[0].id < w[1].id), "record ids rise with the offsets");
    assert!(records.iter().all(|r| r.partition == 0));

    // Each chunk was committed with its own progress record: seq 1, 2, … in order, then the
    // stream's own progress under the task's name.
    let load_key = format!("{name}.initial_load");
    let seqs: Vec<u64> = progress_records.iter().filter(|(k, ..)| *k == load_key).map(|(_, v, _)| seq_of(v)).collect();
    // Chunks hold at most CHUNK rows (fewer when sluice bounds them by bytes).
    let chunks = ROWS as u64 / CHUNK as u64;
    assert!(seqs.len() as u64 >= chunks, "{} load progress records for at least {chunks} chunks: {seqs:?}", seqs.len());
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "one progress record per chunk, in order");
    let first_stream = progress_records.iter().position(|(k, ..)| *k == name).expect("the stream's progress record");
    let last_load = progress_records.iter().rposition(|(k, ..)| *k == load_key).unwrap();
    assert!(last_load < first_stream, "the load's progress precedes the stream's");
    assert!(progress_records.iter().all(|(k, ..)| *k == name || *k == load_key), "{progress_records:?}");
    drop(cluster);
}

/// SIGKILLs during the exactly-once load. Records are attributed to runs as in
/// `exactly_once_survives_kills`; a killed run's loaded records are committed exactly when their
/// key is at or below the `rows_done` the following run resumed its table at (the keys are
/// 1..=n and chunks are key ranges from the start, so the committed chunks hold exactly the keys
/// up to it). That resume point must agree with the progress topic: a chunk's records are sent
/// before its progress record and the next chunk's after it, so the run's records up to the
/// resume point were produced no later than its last progress record, the others no earlier.
/// Every row must then be committed exactly once, and a change made between two runs to a row
/// already loaded is streamed once, after the load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_initial_load_survives_kills() {
    const ROWS: i64 = 30_000;
    const CHUNK: usize = 500;
    const KILLS: usize = 3;
    let cluster = MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    let (topic, progress) = (unique("eosload"), unique("progress"));
    cluster.create_topic(&topic, 3, 1).unwrap();
    cluster.create_topic(&progress, 1, 1).unwrap();
    let (db, start) = loaded_table(ROWS).await;
    // One key range (the table is not split across workers): committed rows are told apart
    // by key order below.
    let config = load_config(&brokers, &topic, &progress, &db, &start, "primary_key", CHUNK) + "load_parallelism = 1\n";
    let name = task_name(&config);
    let dir = std::env::temp_dir().join(unique("eosload-task"));

    // Where each run's part of the shared log begins, and when each run produced.
    let mut log_from = Vec::new();
    let mut windows = Vec::new();
    let log_len = |dir: &std::path::Path| std::fs::metadata(dir.join("stderr.log")).map_or(0, |m| m.len() as usize);
    let mut tail = Tail::new(&brokers, &topic, 3);
    for k in 0..KILLS {
        log_from.push(log_len(&dir));
        let started = now_ms();
        let sluice = Sluice::start_in(&dir, &config);
        // Kill once this run has produced a good part of the table (committed or not).
        let target = tail.records.len() + ROWS as usize / (KILLS + 2);
        tokio::task::block_in_place(|| tail.read_until(Duration::from_secs(300), |r| r.len() >= target));
        let log = sluice.stderr();
        sluice.kill9();
        windows.push((started, now_ms()));
        assert!(!log[log_from[k]..].contains("initial load complete"), "run {k} finished the load before the kill:\n{log}");
        if k == 0 {
            // Between two runs: a row of a chunk already committed changes, and a row is added
            // beyond the loaded ones.
            let mut c = admin_conn().await;
            c.query_drop(format!("UPDATE {db}.t SET v = -1 WHERE id = 1")).await.unwrap();
            c.query_drop(format!("INSERT INTO {db}.t VALUES ({}, 1, 'new')", ROWS + 1)).await.unwrap();
        }
    }
    drop(tail);
    // The last run loads the rest and stops by itself once the binlog is streamed to its end.
    log_from.push(log_len(&dir));
    let started = now_ms();
    let mut sluice = Sluice::start_with(&dir, &config, &["--stop-at-end"]);
    let (code, log) = tokio::task::block_in_place(|| sluice.wait_exit(Duration::from_secs(300)));
    assert_eq!(code, 0, "{log}");
    windows.push((started, now_ms()));
    let runs: Vec<&str> = (0..windows.len()).map(|k| &log[log_from[k]..log_from.get(k + 1).copied().unwrap_or(log.len())]).collect();
    assert!(runs[KILLS].contains("initial load complete"), "{}", runs[KILLS]);

    // Where each run began its table: run 0 at the start, each later one where the previous
    // left off, further every time.
    let resumed: Vec<i64> = runs.iter().map(|r| rows_done(r).unwrap_or_else(|| panic!("no 'initial load of table':\n{r}")) as i64).collect();
    assert_eq!(resumed[0], 0);
    assert!(resumed[1] > 0, "the restarted load began at the start:\n{}", runs[1]);
    assert!(resumed.windows(2).all(|w| w[0] < w[1]), "every restart resumed further on: {resumed:?}");

    let (b, t, p) = (brokers.clone(), topic.clone(), progress.clone());
    let (records, progress_records) =
        tokio::task::spawn_blocking(move || (read_changes(&b, &t, 3), read_progress(&b, &p))).await.unwrap();
    let run_of = |time_ms: i64| windows.iter().position(|(a, b)| (*a..=*b).contains(&time_ms)).expect("produced during a run");

    // The resume points agree with the progress topic (see above).
    let load_key = format!("{name}.initial_load");
    let load_progress: Vec<(u64, i64)> =
        progress_records.iter().filter(|(k, ..)| *k == load_key).map(|(_, v, t)| (seq_of(v), *t)).collect();
    assert!(load_progress.windows(2).all(|w| w[0].0 < w[1].0), "progress seqs rise: {load_progress:?}");
    for k in 0..KILLS {
        let last_commit = load_progress.iter().filter(|(_, t)| run_of(*t) == k).map(|(_, t)| *t).max();
        let Some(last_commit) = last_commit else {
            assert_eq!(resumed[k + 1], resumed[k], "run {k} committed no chunk, yet run {} resumed further on", k + 1);
            continue;
        };
        let mine = records.iter().filter(|r| r.initial_load.is_some() && run_of(r.time_ms) == k);
        let (inside, outside): (Vec<&Change>, Vec<&Change>) = mine.partition(|r| r.key <= resumed[k + 1]);
        let late = inside.iter().filter(|r| r.time_ms > last_commit).map(|r| r.key).max();
        assert_eq!(late, None, "run {k}: rows up to {} counted as committed, but produced after its last progress record", resumed[k + 1]);
        let early = outside.iter().filter(|r| r.time_ms < last_commit).map(|r| r.key).min();
        assert_eq!(early, None, "run {k}: rows produced before its last progress record, yet run {} resumed at {}", k + 1, resumed[k + 1]);
    }

    let mut committed: BTreeMap<i64, usize> = BTreeMap::new();
    let mut uncommitted = vec![0usize; windows.len()];
    let mut streamed = Vec::new();
    let mut ids = BTreeMap::new();
    for r in &records {
        let run = run_of(r.time_ms);
        if r.initial_load.is_none() {
            streamed.push((run, r));
            continue;
        }
        assert_eq!((r.initial_load.as_deref(), r.op.as_str()), (Some("true"), "INSERT"), "{r:?}");
        if run + 1 < windows.len() && r.key > resumed[run + 1] {
            uncommitted[run] += 1;
            continue;
        }
        *committed.entry(r.key).or_default() += 1;
        *ids.entry(r.id).or_insert(0) += 1;
        // Row 1 was loaded before its update (which is streamed); the added row has v = 1 too.
        let s = if r.key == ROWS + 1 { "new".to_string() } else { format!("row {}", r.key) };
        assert_eq!(r.row, [r.key.to_string(), (r.key % 1000).to_string(), s], "the loaded row's values");
    }
    eprintln!("resume points {resumed:?}; records per run not committed (aborted): {uncommitted:?}; {} records in all", records.len());
    let twice: Vec<_> = committed.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(twice.is_empty(), "committed more than once: {twice:?} (resume points {resumed:?})");
    let missing: Vec<i64> = (1..=ROWS + 1).filter(|k| !committed.contains_key(k)).take(10).collect();
    assert!(missing.is_empty(), "never committed: {missing:?} (resume points {resumed:?})");
    assert_eq!(committed.len() as i64, ROWS + 1);
    assert!(ids.values().all(|n| *n == 1), "committed record ids are unique");
    // The update made between the runs: streamed once, by the last run, after the load.
    let [(run, update)] = &streamed[..] else { panic!("streamed: {streamed:?}") };
    assert_eq!((*run, update.op.as_str(), &update.row[..]), (KILLS, "UPDATE", &["1".to_string(), "-1".into(), "row 1".into()][..]));
    let loaded_1 = records.iter().filter(|r| r.key == 1 && r.initial_load.is_some()).map(|r| (r.partition, r.offset)).max().unwrap();
    assert!(update.partition == loaded_1.0 && update.offset > loaded_1.1, "row 1's update follows its loaded image");
    drop(cluster);
}
