//! Initial load (`[initial_load] data = true`) against the real MariaDB and tansu: tables loaded
//! in chunks while other sessions insert, update and delete in them, then the stream; the state
//! rebuilt from Kafka must equal the tables. Also with sluice killed (SIGKILL) mid-load.
//!
//! `SLUICE_LOAD_ROWS` sets the size of the big table (default 100 000; CI may use millions).

mod common;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use apache_avro::types::Value as Avro;
use common::*;
use mysql_async::prelude::Queryable;

fn rows() -> i64 {
    std::env::var("SLUICE_LOAD_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

/// Table name → key (the first `key_len` columns) → row, rebuilt from the records in order.
#[derive(Default)]
struct Rebuilt {
    tables: BTreeMap<String, BTreeMap<Vec<String>, Vec<String>>>,
    /// Records that contradict the state: an INSERT of a present key, an UPDATE or DELETE of an
    /// absent one, per table.
    doubles: BTreeMap<String, usize>,
    records: usize,
}

impl Rebuilt {
    fn apply(&mut self, schemata: &[apache_avro::Schema], value: &[u8], key_len: &dyn Fn(&str) -> usize) {
        let r = decode(schemata, value);
        let object = cell(field(&r, "objectName"));
        let Avro::Enum(_, op) = field(&r, "operation") else { panic!("operation") };
        let object = &object;
        let n = key_len(object);
        let table = self.tables.entry(object.clone()).or_default();
        let mut bad = false;
        if let Some(before) = image(&r, "beforeImages") {
            bad |= table.remove(&before[..n]).is_none();
        }
        if let Some(after) = image(&r, "afterImages") {
            bad |= table.insert(after[..n].to_vec(), after).is_some() && op == "INSERT";
        }
        if bad {
            if object.ends_with(".big") && self.doubles.get(object).copied().unwrap_or(0) < 8 {
                eprintln!("double: {object} {op} {:?} {:?} at {}", image(&r, "beforeImages"), image(&r, "afterImages"), cell(field(&r, "sourcePosition")));
            }
            *self.doubles.entry(object.clone()).or_default() += 1;
        }
        self.records += 1;
    }
}

async fn table_state(c: &mut mysql_async::Conn, sql: &str, key_len: usize) -> BTreeMap<Vec<String>, Vec<String>> {
    let rows: Vec<mysql_async::Row> = c.query(sql).await.unwrap();
    rows.into_iter()
        .map(|r| {
            let cells: Vec<String> = r
                .unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => "NULL".to_string(),
                    mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                    other => other.as_sql(true).trim_matches('\'').to_string(),
                })
                .collect();
            (cells[..key_len].to_vec(), cells)
        })
        .collect()
}

type Src = SourceServer;

/// What the load tests need of a source beyond [`SourceServer`].
trait LoadSource {
    async fn conn(&self) -> mysql_async::Conn;
    fn seq(&self, n: i64) -> String;
}

impl LoadSource for Src {
    async fn conn(&self) -> mysql_async::Conn {
        let mut c = admin_conn_to(&self.host, self.port, &self.admin_user, &self.admin_password).await;
        if self.mysql {
            c.query_drop("SET SESSION cte_max_recursion_depth = 100000000").await.unwrap();
        }
        c
    }

    /// `SELECT seq FROM <1..=n>`, as a derived table `s` with column `seq`.
    fn seq(&self, n: i64) -> String {
        if !self.mysql {
            return format!("(SELECT seq FROM mysql.seq_1_to_{n}) s");
        }
        format!("(WITH RECURSIVE r(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM r WHERE seq < {n}) SELECT seq FROM r) s")
    }
}

struct Fixture {
    src: Src,
    db: String,
    topic: String,
    config: String,
    n: i64,
}

async fn setup(src: &Src, prefix: &str, chunk_size: usize) -> Fixture {
    let svc = services();
    let (db, topic) = (unique(prefix), unique(prefix));
    create_topic(&svc.brokers, &topic, 1).await;
    let n = rows();
    let mut c = src.conn().await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.big (id BIGINT PRIMARY KEY, v INT, s VARCHAR(40))")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.big SELECT seq, seq % 1000, CONCAT('row ', seq) FROM {}", src.seq(n)))
        .await
        .unwrap();
    // Fresh row estimates (as a table that has been around has): big tables are split.
    c.query_drop(format!("ANALYZE TABLE {db}.big")).await.unwrap();
    // A composite key with a string part, in a case-insensitive collation.
    c.query_drop(format!(
        "CREATE TABLE {db}.comp (a VARCHAR(20) NOT NULL, b INT NOT NULL, v INT, PRIMARY KEY (a, b)) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
    ))
    .await
    .unwrap();
    c.query_drop(format!("INSERT INTO {db}.comp SELECT CONCAT(CHAR(65 + seq % 26), 'k', seq % 97), seq, seq FROM {}", src.seq(20_000)))
        .await
        .unwrap();
    // No key at all.
    c.query_drop(format!("CREATE TABLE {db}.nokey (x INT, y VARCHAR(10))")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.nokey SELECT seq, 'x' FROM {}", src.seq(3000))).await.unwrap();
    let start = binlog_end(&mut c).await;
    let mut config = task_config_for(&src.host, src.port, &src.user, &src.password, &svc.brokers, &topic, &format!("{db}.*"), &start, "partition0", "");
    config.push_str(&format!("[initial_load]\ndata = true\nchunk_size = {chunk_size}\n"));
    Fixture { src: src.clone(), db, topic, config, n }
}

/// Inserts, updates and deletes in `big` and `comp` until `stop`; returns the operations done.
fn spawn_writer(src: Src, db: String, n: i64, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut c = src.conn().await;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        let mut ops = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let id = (next() % n as u64) as i64 + 1;
            let sql = match next() % 6 {
                0 => format!("DELETE FROM {db}.big WHERE id = {id}"),
                1 => format!("INSERT INTO {db}.big VALUES ({}, 1, 'new') ON DUPLICATE KEY UPDATE v = v + 1", n + ops as i64 + 1),
                2 => format!("REPLACE INTO {db}.big VALUES ({id}, -1, 'replaced')"),
                3 => format!("UPDATE {db}.comp SET v = v + 1 WHERE b = {}", id % 20_000 + 1),
                4 => format!("DELETE FROM {db}.comp WHERE b = {}", id % 20_000 + 1),
                _ => format!("UPDATE {db}.big SET v = v + 7, s = 'upd' WHERE id BETWEEN {id} AND {}", id + 3),
            };
            c.query_drop(sql).await.unwrap();
            ops += 1;
        }
        ops
    })
}

fn key_len(object: &str) -> usize {
    if object.ends_with(".comp") || object.ends_with(".nokey") {
        2
    } else {
        1
    }
}

/// Reads the topic until the state rebuilt from it equals the tables; returns it.
async fn converge(fx: &Fixture, deadline: Duration) -> Rebuilt {
    let mut c = fx.src.conn().await;
    let want_big = table_state(&mut c, &format!("SELECT id, v, s FROM {}.big", fx.db), 1).await;
    let want_comp = table_state(&mut c, &format!("SELECT a, b, v FROM {}.comp", fx.db), 2).await;
    let want_nokey = table_state(&mut c, &format!("SELECT x, y FROM {}.nokey", fx.db), 2).await;
    let schemata = record_schema();
    let mut tail = Tail::new(&services().brokers, &fx.topic, 1);
    let mut rebuilt = Rebuilt::default();
    let end = std::time::Instant::now() + deadline;
    let (big, comp, nokey) = (format!("{}.big", fx.db), format!("{}.comp", fx.db), format!("{}.nokey", fx.db));
    let empty = BTreeMap::new();
    loop {
        let have = tail.records.len();
        // Read what arrives within two seconds (at least one record), then compare.
        let slice_end = std::time::Instant::now() + Duration::from_secs(2);
        tokio::task::block_in_place(|| {
            tail.read_until(Duration::from_secs(600), |r| {
                let now = std::time::Instant::now();
                (r.len() > have && now > slice_end) || now > end
            })
        });
        for m in &tail.records[rebuilt.records..] {
            rebuilt.apply(&schemata, &m.value, &key_len);
        }
        let get = |t: &str| rebuilt.tables.get(t).unwrap_or(&empty);
        if *get(&big) == want_big && *get(&comp) == want_comp && *get(&nokey) == want_nokey {
            return rebuilt;
        }
        if std::time::Instant::now() > end {
            let diff: Vec<_> = want_big.iter().filter(|(k, v)| get(&big).get(*k) != Some(v)).take(5).collect();
            panic!(
                "the state rebuilt from {} records differs: big {} vs {} rows (first differences {diff:?}), comp {} vs {}, nokey {} vs {}",
                rebuilt.records,
                get(&big).len(),
                want_big.len(),
                get(&comp).len(),
                want_comp.len(),
                get(&nokey).len(),
                want_nokey.len()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_load_under_writes_matches_the_tables() {
    let fx = setup(&Src::mariadb(), "load", 2000).await;
    let dir = std::env::temp_dir().join(unique("sluice-load"));
    let port = free_port();
    let config = format!("{}[status]\nlisten = \"127.0.0.1:{port}\"\n", fx.config);
    let sluice = Sluice::start_in(&dir, &config);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(fx.src.clone(), fx.db.clone(), fx.n, stop.clone());
    sluice.wait_log("initial load complete", 1, Duration::from_secs(600));
    // A little more traffic for the stream, then quiet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let ops = writer.await.unwrap();
    assert!(ops > 50, "the writer did too little during the load ({ops} operations)");
    let rebuilt = converge(&fx, Duration::from_secs(300)).await;
    // Integer keys are placed in their chunk exactly: not one record contradicts the state.
    assert_eq!(rebuilt.doubles.get(&format!("{}.big", fx.db)), None, "doubles: {:?}", rebuilt.doubles);
    let log = sluice.stderr();
    assert!(log.contains("rows_per_sec"), "{log}");
    // The big table was loaded as several key ranges at once.
    assert!(log.contains("splitting the table into key ranges loaded in parallel") && log.contains("key_range=\"(-∞, "), "{log}");
    // The status output has each table's load figures, and the task went on syncing.
    let status = tokio::task::block_in_place(|| {
        wait_status(&sluice, port, Duration::from_secs(30), |s| s["state"] == "syncing")
    });
    let loads = status["initial_load"].as_array().expect("initial_load in the status");
    let big = loads.iter().find(|t| t["table"] == format!("{}.big", fx.db)).expect("big in the status");
    assert_eq!(big["done"], true, "{status}");
    assert!(big["rows_done"].as_u64().unwrap() >= fx.n as u64 / 2, "{status}");
    assert!(big["rows_per_sec"].as_u64().unwrap() > 0, "{status}");
    assert_eq!(loads.len(), 3, "{status}");
    // Memory stays bounded: a few chunks, whatever the table size.
    let rss = sluice.peak_rss_kib();
    assert!(rss < 256 * 1024, "peak RSS {rss} KiB");
    let (code, log) = sluice.stop();
    assert_eq!(code, 0, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_load_killed_mid_load_resumes_at_the_next_chunk() {
    killed_mid_load(&Src::mariadb(), "loadkill").await;
}

/// The same on MySQL, where the chunks carry GTID sets (and a crashed attempt's set bounds the
/// rest of its table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_load_on_mysql_killed_mid_load_resumes_at_the_next_chunk() {
    let Some(src) = Src::mysql("initial load on MySQL") else { return };
    killed_mid_load(&src, "loadkillmy").await;
}

async fn killed_mid_load(src: &Src, prefix: &str) {
    // Small chunks: many of them, so the kill lands between two.
    let fx = setup(src, prefix, 200).await;
    let dir = std::env::temp_dir().join(unique(prefix));
    let sluice = Sluice::start_in(&dir, &fx.config);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(fx.src.clone(), fx.db.clone(), fx.n, stop.clone());
    // Kill once a third of the big table is in Kafka.
    let mut tail = Tail::new(&services().brokers, &fx.topic, 1);
    let third = (fx.n / 3) as usize;
    tokio::task::block_in_place(|| tail.read_until(Duration::from_secs(600), |r| r.len() >= third));
    let first = sluice.stderr();
    sluice.kill9();
    assert!(!first.contains("initial load complete"), "the load finished before the kill; nothing to resume:\n{first}");
    let sluice = Sluice::start_in(&dir, &fx.config);
    sluice.wait_log("initial load complete", 1, Duration::from_secs(600));
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    // The second run went on from its chunks, not from the start.
    let log = sluice.stderr();
    let resumed = log
        .lines()
        .filter(|l| l.contains("initial load of table") && l.contains(".big"))
        .filter_map(|l| l.split("rows_done=").nth(1)?.split_whitespace().next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    assert!(resumed > 0, "the restarted load began at the start:\n{log}");
    converge(&fx, Duration::from_secs(300)).await;
    let (code, log) = sluice.stop();
    assert_eq!(code, 0, "{log}");
}

/// A loaded row's record carries exactly the values the binlog gives the same row: the row is
/// loaded, then copied by `INSERT … SELECT` after the load, and the two images must agree in
/// every column but the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loaded_values_equal_binlog_values() {
    let svc = services();
    let (db, topic) = (unique("loadtypes"), unique("loadtypes"));
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn().await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    let columns = [
        ("ti", "TINYINT", "-7"),
        ("bu", "BIGINT UNSIGNED", "18446744073709551615"),
        ("de", "DECIMAL(12,3)", "-123.450"),
        ("fl", "FLOAT", "1.5"),
        ("db", "DOUBLE", "-2.25e100"),
        ("bi", "BIT(10)", "b'1000000011'"),
        ("ye", "YEAR", "2024"),
        ("da", "DATE", "'2024-02-29'"),
        ("tm", "TIME(3)", "'-838:59:58.125'"),
        ("dt", "DATETIME(6)", "'2024-01-02 03:04:05.000006'"),
        ("ts", "TIMESTAMP(6) NULL", "'2024-01-02 03:04:05.5'"),
        ("ch", "CHAR(5)", "'ab'"),
        ("vc", "VARCHAR(20) CHARACTER SET latin1", "_latin1 x'636166e9'"),
        ("vu", "VARCHAR(20) CHARACTER SET utf8mb4", "'żółw 🐢'"),
        ("bn", "BINARY(4)", "x'0102'"),
        ("vb", "VARBINARY(8)", "x'00ff'"),
        ("bl", "BLOB", "x'deadbeef'"),
        ("tx", "TEXT", "'long text'"),
        ("en", "ENUM('a','b','c')", "'b'"),
        ("se", "SET('x','y','z')", "'x,z'"),
        ("js", "JSON", "'{\"a\": [1, 2]}'"),
        ("ge", "POINT", "ST_GeomFromText('POINT(1 2)')"),
        ("nu", "INT NULL", "NULL"),
    ];
    let defs: Vec<String> = columns.iter().map(|(n, t, _)| format!("{n} {t}")).collect();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, {})", defs.join(", "))).await.unwrap();
    let names: Vec<&str> = columns.iter().map(|(n, ..)| *n).collect();
    let values: Vec<&str> = columns.iter().map(|(_, _, v)| *v).collect();
    c.query_drop(format!("INSERT INTO {db}.t (id, {}) VALUES (1, {})", names.join(", "), values.join(", "))).await.unwrap();
    let start = binlog_end(&mut c).await;
    let mut config = format!("emit_ddl = true\n{}", task_config(&topic, &format!("{db}.*"), &start, "partition0", ""));
    config.push_str("[initial_load]\ndata = true\nstructure = true\n");
    let sluice = Sluice::start(&config);
    sluice.wait_log("initial load complete", 1, Duration::from_secs(120));
    c.query_drop(format!("INSERT INTO {db}.t (id, {n}) SELECT 2, {n} FROM {db}.t WHERE id = 1", n = names.join(", "))).await.unwrap();
    let records = tokio::task::block_in_place(|| consume(&svc.brokers, &topic, 1, 3, Duration::from_secs(60)));
    let schemata = record_schema();
    let mut images: Vec<Vec<(String, Avro)>> = records.iter().map(|m| decode(&schemata, &m.value)).collect();
    // structure = true with emit_ddl: the table's CREATE TABLE comes first, as a DDL record.
    let ddl = images.remove(0);
    assert_eq!(tag(&ddl, "initial_load").as_deref(), Some("true"));
    assert!(matches!(field(&ddl, "operation"), Avro::Enum(_, op) if op == "DDL"), "{ddl:?}");
    assert!(format!("{:?}", field(&ddl, "afterImages")).contains("CREATE TABLE `t`"), "{ddl:?}");
    let after = |r: &[(String, Avro)]| match field(r, "afterImages") {
        Avro::Union(2, v) => match &**v {
            Avro::Array(v) => v.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let (loaded, streamed) = (after(&images[0]), after(&images[1]));
    assert_eq!(cell(&loaded[0]), "1");
    assert_eq!(cell(&streamed[0]), "2");
    for (i, name) in std::iter::once("id").chain(names.iter().copied()).enumerate().skip(1) {
        assert_eq!(loaded[i], streamed[i], "column {name}: loaded vs binlog");
    }
    assert_eq!(field(&images[0], "fields"), field(&images[1], "fields"));
    // Loaded rows are INSERTs tagged as the initial load's; binlog rows are not.
    assert!(matches!(field(&images[0], "operation"), Avro::Enum(_, op) if op == "INSERT"));
    assert_eq!(tag(&images[0], "initial_load").as_deref(), Some("true"));
    assert_eq!(tag(&images[1], "initial_load"), None);
    let (code, log) = sluice.stop();
    assert_eq!(code, 0, "{log}");
}

/// MySQL cannot tell a snapshot's binlog position, but with GTIDs each chunk knows which
/// transactions it surely holds: the state rebuilt from Kafka equals the tables, and hardly any
/// change is sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_load_on_mysql_under_writes_matches_the_tables() {
    let Some(src) = Src::mysql("initial load on MySQL") else { return };
    let fx = setup(&src, "loadmy", 2000).await;
    let dir = std::env::temp_dir().join(unique("sluice-loadmy"));
    let sluice = Sluice::start_in(&dir, &fx.config);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(fx.src.clone(), fx.db.clone(), fx.n, stop.clone());
    sluice.wait_log("initial load complete", 1, Duration::from_secs(600));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let ops = writer.await.unwrap();
    let rebuilt = converge(&fx, Duration::from_secs(300)).await;
    // Each chunk holds the GTIDs executed before its snapshot: a change is sent again only if
    // it committed between that read and the snapshot (one round trip), not for the whole load.
    let doubles = rebuilt.doubles.get(&format!("{}.big", fx.db)).copied().unwrap_or(0);
    eprintln!("{ops} operations during the load, {doubles} records re-applied");
    assert!(doubles * 10 < ops as usize, "{doubles} of {ops} changes were sent twice");
    let (code, log) = sluice.stop();
    assert_eq!(code, 0, "{log}");
}

/// The partition count of `topic` as the broker reports it.
fn partition_count(brokers: &str, topic: &str) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    md.topics().iter().find(|t| t.name() == topic).map_or(0, |t| t.partitions().len())
}

/// A task file with neither `[initial_load]` nor a start position: structure init creates the
/// missing topic with `[target] partitions`, the tables' rows are loaded (tagged), and the
/// stream follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_create_the_topic_and_load_the_tables() {
    let svc = services();
    let (db, topic) = (unique("loaddef"), unique("loaddef"));
    let mut c = admin_conn().await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(10))")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.t SELECT seq, 'old' FROM mysql.seq_1_to_100")).await.unwrap();
    assert_eq!(partition_count(&svc.brokers, &topic), 0, "the topic must not exist yet");
    let config = task_config(&topic, &format!("{db}.*"), "", "partition0", "")
        .replace("start_position = \"\"\n", "")
        .replace("partition_policy = \"partition0\"", "partition_policy = \"partition0\"\npartitions = 3");
    let sluice = Sluice::start(&config);
    sluice.wait_log("initial load complete", 1, Duration::from_secs(120));
    assert_eq!(partition_count(&svc.brokers, &topic), 3);
    c.query_drop(format!("UPDATE {db}.t SET v = 'new' WHERE id = 7")).await.unwrap();
    let records = tokio::task::block_in_place(|| consume(&svc.brokers, &topic, 3, 101, Duration::from_secs(60)));
    let schemata = record_schema();
    let images: Vec<Vec<(String, Avro)>> = records.iter().map(|m| decode(&schemata, &m.value)).collect();
    let loaded: Vec<i64> = images[..100].iter().map(|r| image(r, "afterImages").unwrap()[0].parse().unwrap()).collect();
    assert_eq!(loaded, (1..=100).collect::<Vec<_>>(), "every row once, in key order");
    assert!(images[..100].iter().all(|r| tag(r, "initial_load").as_deref() == Some("true")));
    let update = &images[100];
    assert!(matches!(field(update, "operation"), Avro::Enum(_, op) if op == "UPDATE"), "{update:?}");
    assert_eq!(image(update, "afterImages").unwrap(), vec!["7", "new"]);
    assert_eq!(tag(update, "initial_load"), None);
    // No CREATE TABLE records without emit_ddl.
    assert_eq!(records.len(), 101);
    let (code, log) = sluice.stop();
    assert_eq!(code, 0, "{log}");
}

/// A column added while the table is being loaded: the chunks read after it carry the new
/// column (the definition is checked under each chunk's metadata lock), and the state rebuilt
/// from Kafka still equals the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_altered_during_its_load_is_read_with_its_new_definition() {
    let svc = services();
    let (db, topic) = (unique("loadalter"), unique("loadalter"));
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn().await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)")).await.unwrap();
    let n = 200_000;
    c.query_drop(format!("INSERT INTO {db}.t SELECT seq, seq FROM mysql.seq_1_to_{n}")).await.unwrap();
    let start = binlog_end(&mut c).await;
    let config = task_config(&topic, &format!("{db}.*"), &start, "partition0", "") + "[initial_load]\ndata = true\nchunk_size = 100\n";
    let sluice = Sluice::start(&config);
    let mut tail = Tail::new(&svc.brokers, &topic, 1);
    tokio::task::block_in_place(|| tail.read_until(Duration::from_secs(120), |r| !r.is_empty()));
    c.query_drop(format!("ALTER TABLE {db}.t ADD COLUMN w INT NOT NULL DEFAULT 5")).await.unwrap();
    assert!(!sluice.stderr().contains("initial load complete"), "the load ended before the ALTER; nothing tested");
    sluice.wait_log("initial load complete", 1, Duration::from_secs(300));
    tokio::task::block_in_place(|| tail.read_until(Duration::from_secs(120), |r| r.len() >= n as usize));
    let log = sluice.stderr();
    assert!(log.contains("changed while the initial load read it"), "{log}");
    let schemata = record_schema();
    let mut rows = BTreeMap::new();
    let mut widths = BTreeMap::new();
    for m in &tail.records {
        let after = image(&decode(&schemata, &m.value), "afterImages").expect("inserts");
        *widths.entry(after.len()).or_insert(0) += 1;
        assert!(rows.insert(after[0].clone(), after).is_none(), "a row loaded twice");
    }
    assert_eq!(rows.len(), n as usize);
    assert!(widths.get(&2).is_some_and(|&k| k > 0) && widths.get(&3).is_some_and(|&k| k > 0), "old and new definition: {widths:?}");
    // Rows read with the new definition hold the new column's value.
    assert!(rows.values().filter(|r| r.len() == 3).all(|r| r[2] == "5"));
    let (code, log) = sluice.stop();
    assert_eq!(code, 0, "{log}");
}

/// A table added to `[objects]` of a task that already streams is loaded when the task
/// restarts (its rows written while it was outside the objects included, each once), then
/// streamed; the tables the task had are not loaded again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_added_to_the_objects_get_their_initial_load() {
    let svc = services();
    let (db, topic) = (unique("loadadd"), unique("loadadd"));
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn().await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    for t in ["a", "b"] {
        c.query_drop(format!("CREATE TABLE {db}.{t} (id INT PRIMARY KEY, v VARCHAR(10))")).await.unwrap();
    }
    c.query_drop(format!("INSERT INTO {db}.a SELECT seq, 'old' FROM mysql.seq_1_to_100")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.b SELECT seq, 'old' FROM mysql.seq_1_to_50")).await.unwrap();
    let only_a = task_config(&topic, &format!("{db}.a"), "", "partition0", "").replace("start_position = \"\"\n", "");
    let dir = std::env::temp_dir().join(unique("sluice-loadadd"));
    let mut tail = Tail::new(&svc.brokers, &topic, 1);

    let sluice = Sluice::start_in(&dir, &only_a);
    sluice.wait_log("streaming the binlog", 1, Duration::from_secs(60));
    c.query_drop(format!("INSERT INTO {db}.a VALUES (101, 'new')")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.b VALUES (51, 'new')")).await.unwrap(); // not an object yet
    tokio::task::block_in_place(|| tail.read_until(Duration::from_secs(60), |r| r.len() >= 101));
    let (code, log) = sluice.stop();
    assert_eq!(code, 0, "{log}");
    c.query_drop(format!("UPDATE {db}.b SET v = 'changed' WHERE id = 1")).await.unwrap(); // while stopped

    let a_and_b = only_a.replace(&format!("include = [\"{db}.a\"]"), &format!("include = [\"{db}.a\", \"{db}.b\"]"));
    assert_ne!(a_and_b, only_a);
    let sluice = Sluice::start_in(&dir, &a_and_b);
    sluice.wait_log("initial load complete", 2, Duration::from_secs(60));
    c.query_drop(format!("INSERT INTO {db}.a VALUES (102, 'new')")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.b VALUES (52, 'new')")).await.unwrap();
    tokio::task::block_in_place(|| tail.read_until(Duration::from_secs(60), |r| r.len() >= 101 + 51 + 2));
    let (code, log) = sluice.stop();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("[objects] added tables: loading them before streaming on"), "{log}");

    let schemata = record_schema();
    // (table, id) → (loaded?, value) of every record after the first run's.
    let second: Vec<(String, i64, bool, String)> = tail.records[101..]
        .iter()
        .map(|m| {
            let r = decode(&schemata, &m.value);
            let after = image(&r, "afterImages").expect("inserts");
            let table = cell(field(&r, "objectName")).rsplit('.').next().unwrap().to_string();
            (table, after[0].parse().unwrap(), tag(&r, "initial_load").is_some(), after[1].clone())
        })
        .collect();
    let loaded_b: Vec<(i64, String)> = second.iter().filter(|(t, _, l, _)| t == "b" && *l).map(|(_, id, _, v)| (*id, v.clone())).collect();
    let mut want: Vec<(i64, String)> = (1..=51).map(|id| (id, if id == 1 { "changed" } else if id == 51 { "new" } else { "old" }.to_string())).collect();
    want.sort();
    assert_eq!(loaded_b, want, "b's rows, each once, as they were when it was added");
    let streamed: Vec<(String, i64, bool, String)> = second.iter().filter(|(_, _, l, _)| !*l).cloned().collect();
    assert_eq!(streamed, [("a".to_string(), 102, false, "new".to_string()), ("b".to_string(), 52, false, "new".to_string())]);
    assert!(!second.iter().any(|(t, _, loaded, _)| t == "a" && *loaded), "a was loaded again: {second:?}");
}
