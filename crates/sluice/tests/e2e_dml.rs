//! End to end against real MariaDB and tansu: INSERT, UPDATE, DELETE and REPLACE over two tables,
//! in one multi-statement transaction and in single-statement ones → sluice → Kafka → decoded with
//! apache-avro using the exact DTS schema; every field of every record and their order asserted,
//! under each partition policy.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apache_avro::types::Value as Avro;
use common::*;
use mysql_async::prelude::Queryable;

const PARTITIONS: i32 = 3;

fn s(v: &str) -> Avro {
    Avro::String(v.into())
}

fn rec(fields: &[(&str, Avro)]) -> Avro {
    Avro::Record(fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

fn int(precision: i32, value: &str) -> Avro {
    Avro::Union(1, Box::new(rec(&[("precision", Avro::Int(precision)), ("value", s(value))])))
}

fn chars(charset: &str, value: &[u8]) -> Avro {
    Avro::Union(2, Box::new(rec(&[("charset", s(charset)), ("value", Avro::Bytes(value.to_vec()))])))
}

fn dec(value: &str, precision: i32, scale: i32) -> Avro {
    Avro::Union(3, Box::new(rec(&[("value", s(value)), ("precision", Avro::Int(precision)), ("scale", Avro::Int(scale))])))
}

fn float(value: f64, precision: i32, scale: i32) -> Avro {
    Avro::Union(4, Box::new(rec(&[("value", Avro::Double(value)), ("precision", Avro::Int(precision)), ("scale", Avro::Int(scale))])))
}

fn timestamp(secs: i64, micros: i32) -> Avro {
    Avro::Union(5, Box::new(rec(&[("timestamp", Avro::Long(secs)), ("millis", Avro::Int(micros))])))
}

fn opt(v: Option<i32>) -> Avro {
    match v {
        Some(v) => Avro::Union(1, Box::new(Avro::Int(v))),
        None => Avro::Union(0, Box::new(Avro::Null)),
    }
}

fn datetime(parts: [Option<i32>; 7]) -> Avro {
    let names = ["year", "month", "day", "hour", "minute", "second", "millis"];
    Avro::Union(6, Box::new(Avro::Record(names.iter().zip(parts).map(|(n, v)| (n.to_string(), opt(v))).collect())))
}

fn blob(kind: &str, value: &[u8]) -> Avro {
    Avro::Union(10, Box::new(rec(&[("type", s(kind)), ("value", Avro::Bytes(value.to_vec()))])))
}

fn null() -> Avro {
    Avro::Union(0, Box::new(Avro::Null))
}

/// One `orders` row as its DTS image.
fn order(id: i64, amount: &str, amount_prec: i32, note: Option<&str>, qty: u32) -> Vec<Avro> {
    vec![
        int(8, &id.to_string()),
        dec(amount, amount_prec, 2),
        note.map_or_else(null, |n| chars("utf8mb4", n.as_bytes())),
        datetime([Some(2024), Some(2), Some(29), Some(23), Some(59), Some(58), Some(123000)]),
        int(4, &qty.to_string()),
        float(2.5, 22, 0),
        int(1, "-128"),
        datetime([Some(2024), Some(1), Some(31), None, None, None, None]),
        timestamp(1_700_000_000, 654321),
        blob("BLOB", &[0, 0xff, 0x10]),
        blob("TEXT", "héllo".as_bytes()),
    ]
}

fn item(sku: &str, order_id: i64, n: i16) -> Vec<Avro> {
    vec![chars("latin1", sku.as_bytes()), int(8, &order_id.to_string()), int(2, &n.to_string())]
}

struct Expected {
    op: &'static str,
    table: &'static str,
    before: Option<Vec<Avro>>,
    after: Option<Vec<Avro>>,
}

fn java_hash(b: &[u8]) -> i32 {
    b.iter().fold(0i32, |h, &c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

async fn scenario(policy: &str) {
    let svc = services();
    let db = unique("dml");
    let topic = unique("dml");
    create_topic(&svc.brokers, &topic, PARTITIONS).await;
    let mut c = admin_conn().await;
    c.query_drop("SET time_zone = '+00:00'").await.unwrap();
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!(
        "CREATE TABLE {db}.orders (id BIGINT PRIMARY KEY, amount DECIMAL(10,2), \
         note VARCHAR(64) CHARACTER SET utf8mb4, created DATETIME(3), qty INT UNSIGNED, price DOUBLE, \
         small TINYINT, d DATE, ts TIMESTAMP(6) NULL, data BLOB, body TEXT CHARACTER SET utf8mb4)"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "CREATE TABLE {db}.items (sku VARCHAR(16) CHARACTER SET latin1 PRIMARY KEY, order_id BIGINT, n SMALLINT)"
    ))
    .await
    .unwrap();
    c.query_drop(format!("CREATE TABLE {db}.ignored (id INT PRIMARY KEY)")).await.unwrap();
    let version: String = c.query_first("SELECT VERSION()").await.unwrap().unwrap();
    let start = binlog_end(&mut c).await;
    let t0 = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;

    let row = |id: i64, amount: &str, note: &str, qty: u32| {
        format!(
            "({id}, {amount}, {note}, '2024-02-29 23:59:58.123', {qty}, 2.5, -128, '2024-01-31', \
             '2023-11-14 22:13:20.654321', X'00FF10', _utf8mb4'héllo')"
        )
    };
    let cols = "(id, amount, note, created, qty, price, small, d, ts, data, body)";
    // One multi-statement transaction over both tables (and one table outside the objects).
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.orders {cols} VALUES {}, {}", row(1, "10.50", "'first'", 4294967295), row(2, "0.00", "NULL", 0)))
        .await
        .unwrap();
    c.query_drop(format!("INSERT INTO {db}.items VALUES ('a', 1, -32768)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.ignored VALUES (1)")).await.unwrap();
    c.query_drop(format!("UPDATE {db}.orders SET amount = 12345678.99, note = _utf8mb4'✓ paid' WHERE id = 1")).await.unwrap();
    c.query_drop(format!("DELETE FROM {db}.items WHERE sku = 'a'")).await.unwrap();
    c.query_drop(format!("REPLACE INTO {db}.orders {cols} VALUES {}", row(2, "-3.25", "'replaced'", 7))).await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    // Single-statement transactions.
    c.query_drop(format!("INSERT INTO {db}.orders {cols} VALUES {}", row(3, "1.00", "''", 3))).await.unwrap();
    c.query_drop(format!("DELETE FROM {db}.orders WHERE id = 3")).await.unwrap();
    c.query_drop(format!("REPLACE INTO {db}.items VALUES ('b', 2, 32767)")).await.unwrap();
    c.query_drop(format!("UPDATE {db}.items SET n = 0 WHERE sku = 'b'")).await.unwrap();
    let t1 = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;

    let o1 = order(1, "10.50", 4, Some("first"), 4294967295);
    let o1b = {
        let mut r = o1.clone();
        r[1] = dec("12345678.99", 10, 2);
        r[2] = chars("utf8mb4", "✓ paid".as_bytes());
        r
    };
    let o2 = order(2, "0.00", 3, None, 0);
    let o2b = order(2, "-3.25", 3, Some("replaced"), 7);
    let o3 = order(3, "1.00", 3, Some(""), 3);
    let expected = vec![
        Expected { op: "INSERT", table: "orders", before: None, after: Some(o1.clone()) },
        Expected { op: "INSERT", table: "orders", before: None, after: Some(o2.clone()) },
        Expected { op: "INSERT", table: "items", before: None, after: Some(item("a", 1, -32768)) },
        Expected { op: "UPDATE", table: "orders", before: Some(o1), after: Some(o1b) },
        Expected { op: "DELETE", table: "items", before: Some(item("a", 1, -32768)), after: None },
        // REPLACE over an existing primary key (no other unique key): InnoDB logs an UPDATE.
        Expected { op: "UPDATE", table: "orders", before: Some(o2), after: Some(o2b) },
        Expected { op: "INSERT", table: "orders", before: None, after: Some(o3.clone()) },
        Expected { op: "DELETE", table: "orders", before: Some(o3), after: None },
        // REPLACE of a new key is an INSERT.
        Expected { op: "INSERT", table: "items", before: None, after: Some(item("b", 2, 32767)) },
        Expected { op: "UPDATE", table: "items", before: Some(item("b", 2, 32767)), after: Some(item("b", 2, 0)) },
    ];

    let sluice = Sluice::start(&task_config(&topic, &format!("{db}.orders\", \"{db}.items"), &start, policy, ""));
    let brokers = svc.brokers.clone();
    let topic2 = topic.clone();
    let n = expected.len();
    let consumed = tokio::task::spawn_blocking(move || consume(&brokers, &topic2, PARTITIONS, n, Duration::from_secs(60)))
        .await
        .unwrap();
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "sluice exits cleanly on SIGTERM; stderr:\n{stderr}");

    let schema = record_schema();
    let decoded: Vec<_> = consumed.iter().map(|m| decode(&schema, &m.value)).collect();
    let id_of = |r: &[(String, Avro)]| match field(r, "id") {
        Avro::Long(id) => *id,
        other => panic!("id {other:?}"),
    };
    // Per partition, records arrive in id order.
    for p in 0..PARTITIONS {
        let ids: Vec<i64> = consumed.iter().zip(&decoded).filter(|(m, _)| m.partition == p).map(|(_, r)| id_of(r)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "partition {p} out of order: {ids:?}");
    }
    let mut order: Vec<usize> = (0..decoded.len()).collect();
    order.sort_by_key(|&i| id_of(&decoded[i]));
    let file_index: String = start.split(':').next().unwrap().rsplit('.').next().unwrap().trim_start_matches('0').to_string();

    let mut last_position = 0u64;
    for (n, (&i, exp)) in order.iter().zip(&expected).enumerate() {
        let r = &decoded[i];
        let m = &consumed[i];
        let ctx = format!("record {n} ({} {})", exp.op, exp.table);
        assert_eq!(id_of(r), n as i64 + 1, "{ctx}: ids are consecutive from 1");
        assert_eq!(field(r, "version"), &Avro::Int(0), "{ctx}");
        let Avro::Long(ts) = field(r, "sourceTimestamp") else { panic!("{ctx}: sourceTimestamp") };
        assert!((t0 - 1..=t1 + 1).contains(ts), "{ctx}: sourceTimestamp {ts} is the commit time in seconds");
        assert_eq!(field(r, "bornTimestamp"), &Avro::Long(*ts), "{ctx}");
        let position = |name: &str| -> u64 {
            let Avro::String(p) = field(r, name) else { panic!("{ctx}: {name}") };
            let (offset, file) = p.split_once('@').unwrap_or_else(|| panic!("{ctx}: {name} {p}"));
            assert_eq!(file, file_index, "{ctx}: {name} names the binlog file index");
            offset.parse().unwrap()
        };
        let (pos, safe) = (position("sourcePosition"), position("safeSourcePosition"));
        assert!(safe <= pos, "{ctx}: safe position {safe} is at or before {pos}");
        assert!(pos >= last_position, "{ctx}: positions grow");
        last_position = pos;
        assert_eq!(field(r, "sourceTxid"), &s("0"), "{ctx}");
        assert_eq!(field(r, "source"), &rec(&[("sourceType", Avro::Enum(0, "MySQL".into())), ("version", s(&version))]), "{ctx}");
        let op_index = ["INSERT", "UPDATE", "DELETE"].iter().position(|o| *o == exp.op).unwrap() as u32;
        assert_eq!(field(r, "operation"), &Avro::Enum(op_index, exp.op.into()), "{ctx}");
        assert_eq!(field(r, "objectName"), &Avro::Union(1, Box::new(s(&format!("{db}.{}", exp.table)))), "{ctx}");
        assert_eq!(field(r, "processTimestamps"), &null(), "{ctx}");

        let Avro::Map(tags) = field(r, "tags") else { panic!("{ctx}: tags") };
        let pk = if exp.table == "orders" { "id" } else { "sku" };
        assert_eq!(tags.get("pk_uk_info"), Some(&s(&format!("{{\"PRIMARY\":[\"{pk}\"]}}"))), "{ctx}");
        assert_eq!(tags.get("server_id"), Some(&s("1")), "{ctx}");
        let Some(Avro::String(gtid)) = tags.get("GTID") else { panic!("{ctx}: GTID tag in {tags:?}") };
        assert!(gtid.starts_with("0-1-"), "{ctx}: MariaDB GTID {gtid}");
        assert!(matches!(tags.get("readerThroughoutTime"), Some(Avro::String(t)) if t.parse::<i64>().unwrap() >= t0 * 1000), "{ctx}");

        let field_list: Vec<(&str, i32)> = if exp.table == "orders" {
            vec![("id", 8), ("amount", 246), ("note", 253), ("created", 12), ("qty", 3), ("price", 5), ("small", 1), ("d", 10), ("ts", 7), ("data", 252), ("body", 252)]
        } else {
            vec![("sku", 253), ("order_id", 8), ("n", 2)]
        };
        let fields = Avro::Array(field_list.iter().map(|(n, t)| rec(&[("name", s(n)), ("dataTypeNumber", Avro::Int(*t))])).collect());
        assert_eq!(field(r, "fields"), &Avro::Union(2, Box::new(fields)), "{ctx}");
        let image = |v: &Option<Vec<Avro>>| match v {
            Some(values) => Avro::Union(2, Box::new(Avro::Array(values.clone()))),
            None => null(),
        };
        assert_eq!(field(r, "beforeImages"), &image(&exp.before), "{ctx}");
        assert_eq!(field(r, "afterImages"), &image(&exp.after), "{ctx}");

        // Key and partition.
        let key_value = match (exp.after.as_ref().or(exp.before.as_ref()).unwrap()[0].clone(), exp.table) {
            (Avro::Union(_, b), "orders") => match *b {
                Avro::Record(f) => f.into_iter().find(|(k, _)| k == "value").map(|(_, v)| v).unwrap(),
                _ => unreachable!(),
            },
            (Avro::Union(_, b), _) => match *b {
                Avro::Record(f) => match f.into_iter().find(|(k, _)| k == "value").map(|(_, v)| v).unwrap() {
                    Avro::Bytes(b) => Avro::String(String::from_utf8(b).unwrap()),
                    v => v,
                },
                _ => unreachable!(),
            },
            _ => unreachable!(),
        };
        let Avro::String(key_value) = key_value else { panic!() };
        let key = format!("{db}.{}:{key_value}", exp.table);
        assert_eq!(std::str::from_utf8(&m.key).unwrap(), key, "{ctx}: record key");
        let expected_partition = match policy {
            "partition0" => 0,
            "table" => java_hash(format!("{db}.{}", exp.table).as_bytes()).rem_euclid(PARTITIONS),
            "primary_key" => java_hash(key.as_bytes()).rem_euclid(PARTITIONS),
            _ => unreachable!(),
        };
        assert_eq!(m.partition, expected_partition, "{ctx}: partition under policy {policy}");
    }
    assert_eq!(decoded.len(), expected.len());
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

#[tokio::test]
async fn dml_to_partition0() {
    scenario("partition0").await;
}

#[tokio::test]
async fn dml_partitioned_by_table() {
    scenario("table").await;
}

#[tokio::test]
async fn dml_partitioned_by_primary_key() {
    scenario("primary_key").await;
}
