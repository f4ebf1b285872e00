//! Faults against real servers: sluice killed with SIGKILL at random points under continuous
//! writes, the source restarted, the broker stopped and restarted, and a transaction of a
//! million rows. After each, every committed change is in Kafka (at least once), replays carry
//! the ids they had before, and memory stayed bounded.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use apache_avro::types::Value as Avro;
use common::*;
use mysql_async::prelude::Queryable;

/// A record reduced to what must be identical when it is replayed.
#[derive(Debug, Clone, PartialEq)]
struct Change {
    op: Avro,
    object: Avro,
    before: Avro,
    after: Avro,
    position: Avro,
}

fn changes(schemata: &[apache_avro::Schema], records: &[Consumed]) -> BTreeMap<i64, Vec<Change>> {
    let mut by_id: BTreeMap<i64, Vec<Change>> = BTreeMap::new();
    for m in records {
        let r = decode(schemata, &m.value);
        let Avro::Long(id) = field(&r, "id") else { panic!("id") };
        by_id.entry(*id).or_default().push(Change {
            op: field(&r, "operation").clone(),
            object: field(&r, "objectName").clone(),
            before: field(&r, "beforeImages").clone(),
            after: field(&r, "afterImages").clone(),
            position: field(&r, "sourcePosition").clone(),
        });
    }
    by_id
}

/// The `id` column of an image (first column, an Integer).
fn row_id(image: &Avro) -> i64 {
    let Avro::Union(2, items) = image else { panic!("image {image:?}") };
    let Avro::Array(items) = &**items else { panic!() };
    let Avro::Union(1, int) = &items[0] else { panic!() };
    let Avro::Record(f) = &**int else { panic!() };
    let Avro::String(v) = &f[1].1 else { panic!() };
    v.parse().unwrap()
}

/// Deterministic pseudo-random numbers (the seed is printed, so a failure can be replayed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

#[tokio::test]
async fn kill_9_under_writes_loses_nothing() {
    const TRANSACTIONS: i64 = 400;
    const KILLS: usize = 6;
    let svc = services();
    let (db, topic) = (unique("kill"), unique("kill"));
    create_topic(&svc.brokers, &topic, 3).await;
    let mut c = admin_conn().await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, v INT, pad VARCHAR(100))")).await.unwrap();
    let start = binlog_end(&mut c).await;

    // Writer: transactions of three inserts and one update, paced so kills land mid-stream.
    let writer_db = db.clone();
    let writer = tokio::spawn(async move {
        let mut c = admin_conn().await;
        for t in 0..TRANSACTIONS {
            let ids = [t * 3 + 1, t * 3 + 2, t * 3 + 3];
            c.query_drop("BEGIN").await.unwrap();
            c.query_drop(format!(
                "INSERT INTO {writer_db}.t VALUES ({}, 0, REPEAT('x', 90)), ({}, 0, 'y'), ({}, 0, NULL)",
                ids[0], ids[1], ids[2]
            ))
            .await
            .unwrap();
            c.query_drop(format!("UPDATE {writer_db}.t SET v = v + 1 WHERE id = {}", ids[0])).await.unwrap();
            c.query_drop("COMMIT").await.unwrap();
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });

    let seed = u64::from(std::process::id());
    eprintln!("kill points seeded with {seed}");
    let mut rng = Lcg(seed);
    let config = task_config(&topic, &format!("{db}.t"), &start, "primary_key", "");
    let dir = std::env::temp_dir().join(unique("kill-task"));
    let total = (TRANSACTIONS * 4) as usize;
    let brokers = svc.brokers.clone();
    let topic2 = topic.clone();
    let tail = tokio::task::spawn_blocking(move || {
        let mut tail = Tail::new(&brokers, &topic2, 3);
        for _ in 0..KILLS {
            let sluice = Sluice::start_in(&dir, &config);
            let target = (tail.records.len() + 20 + rng.next(200) as usize).min(total);
            tail.read_until(Duration::from_secs(120), |r| r.len() >= target);
            sluice.kill9();
        }
        let streamed = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default().matches("streaming the binlog").count();
        let sluice = Sluice::start_in(&dir, &config);
        // The last run is stopped only once it streams, so the stop below tests a running task,
        // not one still starting.
        sluice.wait_log("streaming the binlog", streamed + 1, Duration::from_secs(60));
        (tail, sluice)
    });
    writer.await.unwrap();
    let (mut tail, sluice) = tail.await.unwrap();
    let schemata = record_schema();
    let tail = tokio::task::spawn_blocking(move || {
        // Every committed change has arrived once the ids 1..=total are all present.
        let schemata = record_schema();
        let seen = std::cell::RefCell::new((0usize, BTreeSet::new()));
        tail.read_until(Duration::from_secs(120), |r| {
            let mut seen = seen.borrow_mut();
            for m in &r[seen.0..] {
                if let Avro::Long(id) = field(&decode(&schemata, &m.value), "id") {
                    seen.1.insert(*id);
                }
            }
            seen.0 = r.len();
            seen.1.len() >= total
        });
        tail
    })
    .await
    .unwrap();
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");

    let by_id = changes(&schemata, &tail.records);
    assert_eq!(by_id.keys().copied().collect::<Vec<_>>(), (1..=total as i64).collect::<Vec<_>>(), "ids 1..={total}, no gap");
    let mut inserted = BTreeSet::new();
    let mut updated = BTreeSet::new();
    let mut duplicates = 0;
    for (id, copies) in &by_id {
        assert!(copies.iter().all(|c| c == &copies[0]), "record {id} was replayed with different content: {copies:?}");
        duplicates += copies.len() - 1;
        let c = &copies[0];
        match &c.op {
            Avro::Enum(0, _) => assert!(inserted.insert(row_id(&c.after)), "row inserted twice under different ids"),
            Avro::Enum(1, _) => assert!(updated.insert(row_id(&c.after))),
            other => panic!("unexpected operation {other:?}"),
        }
    }
    assert_eq!(inserted, (1..=TRANSACTIONS * 3).collect::<BTreeSet<_>>(), "every inserted row arrived");
    assert_eq!(updated, (0..TRANSACTIONS).map(|t| t * 3 + 1).collect::<BTreeSet<_>>(), "every update arrived");
    eprintln!("checked {} changes across {KILLS} kills: {duplicates} replayed duplicates, 0 lost", by_id.len());
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

/// A throw-away MariaDB with the binlog sluice needs and a replication user.
fn replica_source() -> TempMariaDb {
    let db = TempMariaDb::start(&[
        "--skip-name-resolve",
        "--log-bin=mysql-bin",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--binlog-row-metadata=FULL",
    ]);
    db.sql(
        "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'; \
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'repl'@'127.0.0.1'; \
         CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))",
    );
    db
}

fn insert_rows(db: &TempMariaDb, ids: std::ops::RangeInclusive<i32>) {
    let values: Vec<String> = ids.map(|i| format!("({i}, 'v{i}')")).collect();
    db.sql(&format!("INSERT INTO app.t VALUES {}", values.join(",")));
}

fn inserted_ids(records: &[Consumed]) -> BTreeSet<i64> {
    let schemata = record_schema();
    records.iter().map(|m| row_id(field(&decode(&schemata, &m.value), "afterImages"))).collect()
}

#[tokio::test]
async fn source_restart_is_survived() {
    let svc = services();
    let topic = unique("restart");
    create_topic(&svc.brokers, &topic, 1).await;
    let db = replica_source();
    let config = task_config_for("127.0.0.1", db.port, "repl", "repl", &svc.brokers, &topic, "app.t", "mysql-bin.000001:4", "partition0", "");
    let sluice = Sluice::start(&config);
    let brokers = svc.brokers.clone();
    let (sluice, tail) = tokio::task::spawn_blocking(move || {
        let mut tail = Tail::new(&brokers, &topic, 1);
        insert_rows(&db, 1..=10);
        tail.read_until(Duration::from_secs(60), |r| inserted_ids(r).len() == 10);
        // Rows written right before the restart, then the restart itself, then rows after it.
        insert_rows(&db, 11..=20);
        let db = db.restart();
        insert_rows(&db, 21..=30);
        tail.read_until(Duration::from_secs(120), |r| inserted_ids(r).len() == 30);
        (sluice, tail)
    })
    .await
    .unwrap();
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("source connection lost; reconnecting"), "the loss was noticed and logged:\n{stderr}");
    assert_eq!(inserted_ids(&tail.records), (1..=30).collect());
}

/// The source goes away in the middle of the initial load (no start position: the load is on
/// by default): the load waits, reconnects, resumes the table at its next unrecorded chunk and
/// finishes; no row is lost and none is sent twice, and the stream follows.
#[tokio::test]
async fn source_restart_during_the_initial_load_is_survived() {
    let svc = services();
    let topic = unique("loadrestart");
    create_topic(&svc.brokers, &topic, 1).await;
    let db = replica_source();
    const N: usize = 100_000;
    db.sql(&format!("INSERT INTO app.t SELECT seq, CONCAT('v', seq) FROM mysql.seq_1_to_{N}"));
    let config = task_config_for("127.0.0.1", db.port, "repl", "repl", &svc.brokers, &topic, "app.t", "", "partition0", "")
        .replace("start_position = \"\"\n", "")
        + "[initial_load]\nchunk_size = 50\n";
    let sluice = Sluice::start(&config);
    let brokers = svc.brokers.clone();
    let (sluice, tail, _db) = tokio::task::spawn_blocking(move || {
        let mut tail = Tail::new(&brokers, &topic, 1);
        tail.read_until(Duration::from_secs(60), |r| r.len() >= 1000);
        assert!(!sluice.stderr().contains("initial load complete"), "the load ended before the restart; nothing tested");
        let db = db.restart();
        sluice.wait_log("initial load complete", 1, Duration::from_secs(300));
        insert_rows(&db, N as i32 + 1..=N as i32 + 10);
        tail.read_until(Duration::from_secs(120), |r| r.len() >= N + 10);
        (sluice, tail, db)
    })
    .await
    .unwrap();
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    let lost = stderr.find("initial load: source connection lost").expect("the loss during the load was noticed and logged");
    assert!(lost < stderr.find("initial load complete").unwrap(), "{stderr}");
    let ids: Vec<i64> = {
        let schemata = record_schema();
        tail.records.iter().map(|m| row_id(field(&decode(&schemata, &m.value), "afterImages"))).collect()
    };
    let distinct: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct, (1..=N as i64 + 10).collect(), "every row arrived");
    assert_eq!(ids.len(), distinct.len(), "no row was sent twice");
}

/// A read-only server (as a replica is): the initial load takes no lock and writes nothing, so
/// it loads the table there, and the stream follows.
#[tokio::test]
async fn initial_load_from_a_read_only_server() {
    let svc = services();
    let topic = unique("loadro");
    create_topic(&svc.brokers, &topic, 1).await;
    let db = replica_source();
    db.sql("INSERT INTO app.t SELECT seq, CONCAT('v', seq) FROM mysql.seq_1_to_5000; SET GLOBAL read_only = ON");
    let config = task_config_for("127.0.0.1", db.port, "repl", "repl", &svc.brokers, &topic, "app.t", "", "partition0", "")
        .replace("start_position = \"\"\n", "")
        + "[initial_load]\nchunk_size = 700\n";
    let sluice = Sluice::start(&config);
    let brokers = svc.brokers.clone();
    let (sluice, tail, _db) = tokio::task::spawn_blocking(move || {
        let mut tail = Tail::new(&brokers, &topic, 1);
        sluice.wait_log("initial load complete", 1, Duration::from_secs(120));
        // Root may still write on a read-only server (as a replica's applier does).
        insert_rows(&db, 5001..=5010);
        tail.read_until(Duration::from_secs(60), |r| r.len() >= 5010);
        (sluice, tail, db)
    })
    .await
    .unwrap();
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(inserted_ids(&tail.records), (1..=5010).collect(), "{stderr}");
    assert_eq!(tail.records.len(), 5010);
}

#[tokio::test]
async fn broker_restart_is_survived() {
    let mut kafka = TempTansu::start();
    let topic = unique("brk");
    create_topic(&kafka.brokers(), &topic, 1).await;
    let db = replica_source();
    let config = task_config_for("127.0.0.1", db.port, "repl", "repl", &kafka.brokers(), &topic, "app.t", "mysql-bin.000001:4", "partition0", "");
    let sluice = Sluice::start(&config);
    let (sluice, tail, _db, _kafka) = tokio::task::spawn_blocking(move || {
        let mut tail = Tail::new(&kafka.brokers(), &topic, 1);
        insert_rows(&db, 1..=10);
        tail.read_until(Duration::from_secs(60), |r| inserted_ids(r).len() == 10);
        kafka.stop();
        // Written while the broker is away: sluice must hold them and deliver them later.
        insert_rows(&db, 11..=20);
        kafka.start_again();
        insert_rows(&db, 21..=30);
        tail.read_until(Duration::from_secs(180), |r| inserted_ids(r).len() == 30);
        (sluice, tail, db, kafka)
    })
    .await
    .unwrap();
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(inserted_ids(&tail.records), (1..=30).collect());
}

#[tokio::test]
async fn million_row_transaction_keeps_memory_bounded() {
    const ROWS: usize = 1_000_000;
    const RSS_LIMIT_KIB: u64 = 150 * 1024;
    let svc = services();
    let (db, topic) = (unique("big"), unique("big"));
    create_topic(&svc.brokers, &topic, 3).await;
    let mut c = admin_conn().await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, a INT, b VARCHAR(40), d DECIMAL(12,2))")).await.unwrap();
    let start = binlog_end(&mut c).await;
    let sluice = Sluice::start(&task_config(&topic, &format!("{db}.t"), &start, "primary_key", ""));
    // One transaction (MariaDB's sequence engine generates the rows).
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, seq % 1000, CONCAT('row-', seq), seq / 100 FROM {db}.seq_1_to_{ROWS}"
    ))
    .await
    .unwrap();
    let brokers = svc.brokers.clone();
    let counted = tokio::task::spawn_blocking(move || Tail::new(&brokers, &topic, 3).count_until(ROWS, Duration::from_secs(300)))
        .await
        .unwrap();
    let peak = sluice.peak_rss_kib();
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(counted, ROWS);
    eprintln!("sluice peak RSS over a {ROWS}-row transaction: {} MiB", peak / 1024);
    assert!(peak < RSS_LIMIT_KIB, "peak RSS {} KiB exceeds {RSS_LIMIT_KIB} KiB", peak);
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

/// Source failover and cascade: the task moves from a primary to its replica (which logs the
/// primary's transactions under the same GTIDs) and resumes by GTID, with no gap and no double.
#[tokio::test]
async fn failover_to_a_replica_resumes_by_gtid() {
    let svc = services();
    let topic = unique("failover");
    create_topic(&svc.brokers, &topic, 1).await;
    let primary = replica_source();
    let replica = TempMariaDb::start(&[
        "--skip-name-resolve",
        "--log-bin=mysql-bin",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--binlog-row-metadata=FULL",
        "--log-slave-updates",
        "--server-id=8",
    ]);
    replica.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', MASTER_PASSWORD='repl', \
         MASTER_USE_GTID=slave_pos; START SLAVE;",
        primary.port
    ));
    let dir = std::env::temp_dir().join(unique("failover-task"));
    let on = |port: u16| {
        task_config_for("127.0.0.1", port, "repl", "repl", &svc.brokers, &topic, "app.t", "mysql-bin.000001:4", "partition0", "")
    };
    let (on_primary, on_replica) = (on(primary.port), on(replica.port));
    let brokers = svc.brokers.clone();
    let (tail, stderr) = tokio::task::spawn_blocking(move || {
        let mut tail = Tail::new(&brokers, &topic, 1);
        let sluice = Sluice::start_in(&dir, &on_primary);
        insert_rows(&primary, 1..=10);
        tail.read_until(Duration::from_secs(60), |r| inserted_ids(r).len() == 10);
        let (code, stderr) = sluice.stop();
        assert_eq!(code, 0, "{stderr}");
        // Written while no sluice runs; the replica receives them under the primary's GTIDs.
        insert_rows(&primary, 11..=20);
        let end = std::time::Instant::now() + Duration::from_secs(60);
        while replica.count("SELECT COUNT(*) FROM app.t") < 20 {
            assert!(std::time::Instant::now() < end, "the replica did not catch up");
            std::thread::sleep(Duration::from_millis(50));
        }
        let sluice = Sluice::start_in(&dir, &on_replica);
        tail.read_until(Duration::from_secs(60), |r| inserted_ids(r).len() == 20);
        let (code, stderr) = sluice.stop();
        assert_eq!(code, 0, "{stderr}");
        (tail, stderr)
    })
    .await
    .unwrap();
    assert!(stderr.contains("resuming on the new source by GTID"), "{stderr}");
    let schemata = record_schema();
    let ids: Vec<i64> = tail
        .records
        .iter()
        .map(|m| match field(&decode(&schemata, &m.value), "id") {
            Avro::Long(id) => *id,
            _ => panic!(),
        })
        .collect();
    assert_eq!(ids, (1..=20).collect::<Vec<_>>(), "every row once, ids continuing across servers");
    assert_eq!(inserted_ids(&tail.records), (1..=20).collect());
}

/// `--stop-at-end` stops even when the binlog ends with events that close no transaction (after
/// FLUSH BINARY LOGS MariaDB starts a new file with bookkeeping events only).
#[tokio::test]
async fn stop_at_end_after_a_binlog_flush() {
    let svc = services();
    let topic = unique("flush");
    create_topic(&svc.brokers, &topic, 1).await;
    let db = replica_source();
    insert_rows(&db, 1..=5);
    db.sql("FLUSH BINARY LOGS");
    let config = task_config_for("127.0.0.1", db.port, "repl", "repl", &svc.brokers, &topic, "app.t", "mysql-bin.000001:4", "partition0", "");
    let dir = std::env::temp_dir().join(unique("flush-task"));
    let mut sluice = Sluice::start_with(&dir, &config, &["--stop-at-end"]);
    let (code, stderr) = tokio::task::spawn_blocking(move || sluice.wait_exit(Duration::from_secs(60))).await.unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("caught up with the binlog end"), "{stderr}");
    let records = consume(&svc.brokers, &topic, 1, 5, Duration::from_secs(30));
    assert_eq!(inserted_ids(&records), (1..=5).collect());
}
