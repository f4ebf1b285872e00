//! DDL end to end against the real MariaDB and tansu: schemas derived from DDL equal what the
//! server reports; DDL under continuous writes (add, drop, reorder, retype, rename columns, rename
//! the table) keeps every value under its own column's name, and a restart from a position before
//! the DDL reproduces every record exactly from the persisted schema history; a position older
//! than the live schema without history stops sluice with an error instead of a guess; tables
//! renamed out of and into the objects; gh-ost and pt-online-schema-change migrations; DTS DDL
//! records with `emit_ddl`.

mod common;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use apache_avro::types::Value as Avro;
use common::*;
use mysql_async::{prelude::Queryable, Conn};
use sluice_event::{DataType, TableSchema};
use sluice_source::{
    ddl,
    history::{Pos, SchemaHistory, ServerContext, State},
    Flavor, SchemaCache, SourceOptions,
};

/// One record, reduced to what the tests compare.
#[derive(Debug, Clone, PartialEq)]
struct Rec {
    id: i64,
    op: String,
    object: String,
    /// `name:dataTypeNumber` per field.
    fields: Vec<String>,
    before: Option<Vec<Avro>>,
    after: Option<Vec<Avro>>,
    /// The statement of a DDL record.
    sql: Option<String>,
}

impl Rec {
    fn names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.split(':').next().unwrap()).collect()
    }
}

fn recs(records: &[Consumed]) -> Vec<Rec> {
    let schema = record_schema();
    let union_inner = |v: &Avro| match v {
        Avro::Union(_, b) => (**b).clone(),
        other => other.clone(),
    };
    let mut out: Vec<Rec> = records
        .iter()
        .map(|m| {
            let r = decode(&schema, &m.value);
            let Avro::Long(id) = field(&r, "id") else { panic!("id") };
            let Avro::Enum(_, op) = field(&r, "operation") else { panic!("operation") };
            let object = match union_inner(field(&r, "objectName")) {
                Avro::String(s) => s,
                _ => String::new(),
            };
            let fields = match union_inner(field(&r, "fields")) {
                Avro::Array(items) => items
                    .iter()
                    .map(|f| match f {
                        Avro::Record(kv) => match (&kv[0].1, &kv[1].1) {
                            (Avro::String(n), Avro::Int(t)) => format!("{n}:{t}"),
                            other => panic!("{other:?}"),
                        },
                        other => panic!("{other:?}"),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let image = |name| match union_inner(field(&r, name)) {
                Avro::Array(v) => Some(v),
                _ => None,
            };
            let sql = match union_inner(field(&r, "afterImages")) {
                Avro::String(s) => Some(s),
                _ => None,
            };
            Rec { id: *id, op: op.clone(), object, fields, before: image("beforeImages"), after: image("afterImages"), sql }
        })
        .collect();
    out.sort_by_key(|r| r.id);
    out
}

/// A value as text (integers by their digits, strings by their bytes); `None` for NULL.
fn text(v: &Avro) -> Option<String> {
    match v {
        Avro::Union(0, _) => None,
        Avro::Union(_, b) => match &**b {
            Avro::Record(f) => f.iter().find(|(k, _)| k == "value").map(|(_, v)| match v {
                Avro::String(s) => s.clone(),
                Avro::Bytes(b) => String::from_utf8(b.clone()).expect("utf-8 test values"),
                other => format!("{other:?}"),
            }),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

/// Every value of every image is under its own column: a text column holds `<name>-<id>` with
/// `<name>` one of the names that column has had (`aliases`), `n` holds the row id, and the
/// images line up with the fields.
fn check_values(r: &Rec, aliases: &HashMap<&str, Vec<&str>>) {
    let names = r.names();
    for image in [&r.before, &r.after].into_iter().flatten() {
        assert_eq!(image.len(), names.len(), "record {} has as many values as fields: {r:?}", r.id);
        let id = text(&image[names.iter().position(|f| *f == "id").expect("an id column")]).expect("id");
        for (name, value) in names.iter().zip(image) {
            let Some(value) = text(value) else { continue };
            match *name {
                "id" | "v" => {}
                "n" => assert_eq!(value, id, "record {}: column n holds the row id", r.id),
                _ => {
                    let (prefix, of) = value.rsplit_once('-').unwrap_or_else(|| panic!("record {}: {name} = {value}", r.id));
                    assert_eq!(of, id, "record {}: {name} = {value} is another row's value", r.id);
                    let known = aliases.get(name).unwrap_or_else(|| panic!("record {}: unexpected column {name}", r.id));
                    assert!(known.contains(&prefix), "record {}: the value {value} is under column {name}", r.id);
                }
            }
        }
    }
}

type Target = SourceServer;

async fn exec(c: &mut Conn, sql: &str) {
    c.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The task file with `emit_ddl = true` when asked.
fn config(topic: &str, include: &str, start: &str, emit_ddl: bool) -> String {
    let c = task_config(topic, include, start, "partition0", "");
    if emit_ddl {
        c.replacen("[source]", "emit_ddl = true\n[source]", 1)
    } else {
        c
    }
}

/// Consumes `topic` (1 partition) until `done` holds for the decoded records.
async fn consume_until(topic: &str, deadline: Duration, done: impl Fn(&[Rec]) -> bool + Send + 'static) -> Vec<Rec> {
    let brokers = services().brokers;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let mut tail = Tail::new(&brokers, &topic, 1);
        let seen = std::cell::RefCell::new((0usize, Vec::new()));
        tail.read_until(deadline, |records| {
            let mut s = seen.borrow_mut();
            if records.len() != s.0 {
                s.1 = recs(records);
                s.0 = records.len();
            }
            done(&s.1)
        });
        recs(&tail.records)
    })
    .await
    .unwrap()
}

/// Waits (bounded) until `f` holds.
async fn until(what: &str, deadline: Duration, f: impl Fn() -> bool) {
    let end = Instant::now() + deadline;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------------------------------------------

/// Each statement runs on the server and is applied to a history; after each, the history's
/// version of every table equals what `information_schema` reports.
#[tokio::test]
async fn derived_schemas_match_the_live_server() {
    derived_schemas_match(Target::mariadb()).await;
}

#[tokio::test]
async fn derived_schemas_match_live_mysql() {
    if let Some(target) = Target::mysql("derived_schemas_match_live_mysql") {
        derived_schemas_match(target).await;
    }
}

async fn derived_schemas_match(target: Target) {
    let db = unique("ddl_live");
    let mut c = target.admin().await;
    let (version, server_cs): (String, String) = c.query_first("SELECT VERSION(), @@character_set_server").await.unwrap().unwrap();
    let lctn: u32 = c.query_first("SELECT @@lower_case_table_names").await.unwrap().unwrap();
    let flavor = if version.to_lowercase().contains("mariadb") { Flavor::MariaDb } else { Flavor::MySql };
    let history = SchemaHistory::in_memory();
    history.set_context(ServerContext::for_version(flavor, &version, &server_cs, lctn));
    let opts = SourceOptions {
        host: target.host.clone(),
        port: target.port,
        user: target.admin_user.clone(),
        password: target.admin_password.clone(),
        server_id: unique_server_id(),
        connect_timeout: Duration::from_secs(5),
        heartbeat: Duration::from_secs(1),
    };
    let mut live = SchemaCache::new(target.admin().await, opts, flavor);
    let mut statements = vec![
        format!("CREATE DATABASE {db}"),
        "CREATE TABLE types (a TINYINT, b SMALLINT UNSIGNED, c MEDIUMINT, d INT(11) ZEROFILL, e BIGINT UNSIGNED, \
         f DECIMAL(10,2), g FLOAT, h DOUBLE, i BIT(5), j YEAR, k DATE, l TIME(3), m DATETIME(6), n TIMESTAMP(2) NULL, \
         o CHAR(3), p VARCHAR(64), q BINARY(16), r VARBINARY(8), s TINYTEXT, u TEXT, w MEDIUMTEXT, x LONGTEXT, \
         y TINYBLOB, z BLOB, aa MEDIUMBLOB, ab LONGBLOB, ac ENUM('x','y''s'), ad SET('r','w'), ae JSON, \
         af GEOMETRY, ag POINT, ak FLOAT(7,3), al DOUBLE(10,2), am REAL, an FLOAT(30), \
         ao BOOL, ap SERIAL, aq NCHAR(2), ar TEXT(100), PRIMARY KEY (a, b))"
            .into(),
        "CREATE TABLE cs (a VARCHAR(5), b VARCHAR(5) CHARACTER SET utf8mb4, c TEXT COLLATE utf8mb4_bin, \
         d CHAR(2) CHARSET utf8, e VARCHAR(5) CHARACTER SET binary, f ENUM('a'), g CHAR(1) BINARY, \
         UNIQUE KEY (a), UNIQUE (a, b), CONSTRAINT named UNIQUE (c(10))) DEFAULT CHARSET=latin1"
            .into(),
        "ALTER TABLE cs ADD h VARCHAR(3), DEFAULT CHARSET = utf8mb4".into(),
        "ALTER TABLE cs ADD i VARCHAR(3)".into(),
        "ALTER TABLE cs ADD j VARCHAR(3), CONVERT TO CHARACTER SET utf8, ADD k CHAR(1) CHARACTER SET latin1".into(),
        "ALTER TABLE cs CONVERT TO CHARACTER SET utf8mb4".into(),
        "CREATE TABLE lat (a TINYTEXT, b TEXT, c MEDIUMTEXT, d VARCHAR(3)) CHARSET latin1".into(),
        "ALTER TABLE lat CONVERT TO CHARACTER SET utf8mb4".into(),
        "ALTER TABLE types ADD COLUMN x1 INT FIRST, ADD x2 VARCHAR(5) AFTER c, DROP COLUMN d, MODIFY e INT NOT NULL AFTER a".into(),
        "ALTER TABLE types CHANGE f f2 DECIMAL(12,4) UNSIGNED, RENAME COLUMN g TO g2, MODIFY p TEXT CHARACTER SET latin1".into(),
        "ALTER TABLE types DROP PRIMARY KEY, ADD PRIMARY KEY (ap), ADD UNIQUE KEY uo (o, p(5))".into(),
        "CREATE TABLE copy LIKE cs".into(),
        "RENAME TABLE copy TO copy2".into(),
        "ALTER TABLE copy2 DROP INDEX a, RENAME INDEX named TO renamed, ADD COLUMN z INT".into(),
    ];
    if !target.mysql {
        statements.extend([
            "ALTER TABLE types ADD ah INET6, ADD ai UUID, ADD aj INET4".to_string(),
            "ALTER TABLE copy2 ADD COLUMN IF NOT EXISTS a INT, ADD COLUMN IF NOT EXISTS y INT".into(),
            "CREATE TABLE j (id INT PRIMARY KEY, doc LONGTEXT, CHECK (json_valid(doc)))".into(),
            "CREATE UNIQUE INDEX ui ON j (doc(20))".into(),
            "ALTER TABLE j MODIFY doc JSON, ADD k LONGTEXT, ADD CONSTRAINT CHECK (json_valid(`k`))".into(),
        ]);
    }
    let shape = |s: &TableSchema| -> Vec<String> {
        let mut out: Vec<String> = s
            .columns
            .iter()
            .map(|c| {
                let numeric_attrs = matches!(c.data_type, DataType::Bit | DataType::Float | DataType::Double | DataType::Decimal) || c.data_type.is_integer();
                format!(
                    "{} {:?} unsigned={} charset={:?} labels={:?} fsp={:?} precision={:?} scale={:?} nullable={}",
                    c.name,
                    c.data_type,
                    c.unsigned,
                    c.charset,
                    c.labels,
                    c.fsp,
                    numeric_attrs.then_some(c.precision),
                    numeric_attrs.then_some(c.scale),
                    // explicit_defaults_for_timestamp decides a bare TIMESTAMP's nullability.
                    c.data_type == DataType::Timestamp || c.nullable,
                )
            })
            .collect();
        out.extend(s.keys.iter().map(|k| format!("key {} {:?}", k.name, k.columns)));
        out
    };
    c.query_drop(&statements[0]).await.unwrap();
    let mut pos = Pos { epoch: 0, file_index: 1, offset: 0 };
    for sql in &statements {
        if sql != &statements[0] {
            c.query_drop(format!("USE {db}")).await.unwrap();
            c.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        pos.offset += 100;
        history.apply(&ddl::parse(sql, &db), pos, None, sql).unwrap();
        let tables: Vec<String> = c
            .exec("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", (&db,))
            .await
            .unwrap();
        for table in tables {
            let derived = match history.at(&db, &table, pos).map(|e| e.state) {
                Some(State::Known(d)) => d,
                other => panic!("after `{sql}`: {table} is {other:?}"),
            };
            live.invalidate();
            let actual = live.load_def(&db, &table).await.unwrap();
            assert_eq!(shape(&derived.schema), shape(&actual.schema), "after `{sql}`: {table} differs from information_schema");
        }
    }
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

/// Columns added, dropped, reordered, retyped and renamed and the table renamed while a writer
/// keeps inserting, updating and deleting. Every record carries each value under its own
/// column's name, the shapes follow the DDL in order, and a restart from a position before the
/// DDL (checkpoint removed, schema history kept) reproduces every record exactly.
#[tokio::test]
async fn ddl_under_continuous_writes_then_restart_from_before_the_ddl() {
    ddl_under_continuous_writes(Target::mariadb()).await;
}

#[tokio::test]
async fn ddl_under_continuous_writes_then_restart_from_before_the_ddl_mysql() {
    if let Some(target) = Target::mysql("ddl_under_continuous_writes_then_restart_from_before_the_ddl_mysql") {
        ddl_under_continuous_writes(target).await;
    }
}

async fn ddl_under_continuous_writes(target: Target) {
    let svc = services();
    let (db, topic, replay_topic) = (unique("ddl_run"), unique("ddl_run"), unique("ddl_replay"));
    create_topic(&svc.brokers, &topic, 1).await;
    create_topic(&svc.brokers, &replay_topic, 1).await;
    let mut c = target.admin().await;
    let start = binlog_end(&mut c).await;
    exec(&mut c, &format!("CREATE DATABASE {db}")).await;
    exec(&mut c, &format!("CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, n INT, v INT DEFAULT 0, a VARCHAR(32), b VARCHAR(32), c VARCHAR(32))")).await;
    let after_create = binlog_end(&mut c).await;
    let dir = std::env::temp_dir().join(unique("ddl-task"));
    let sluice = Sluice::start_in(&dir, &target.config(&topic, &format!("{db}.t*"), &start));

    // The writer: every statement names the columns the table has right then.
    let table = Arc::new(Mutex::new("t".to_string()));
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, table, stop, progress, target) = (db.clone(), table.clone(), stop.clone(), progress.clone(), target.clone());
        tokio::spawn(async move {
            let mut c = target.admin().await;
            let mut counts = (0u64, 0u64, 0u64);
            let mut id = 0u64;
            while !stop.load(Ordering::SeqCst) {
                id += 1;
                let mut attempts = 0;
                // A DDL between reading the columns and writing fails the statement: try again.
                loop {
                    attempts += 1;
                    assert!(attempts < 500, "the writer cannot write row {id}");
                    let t = table.lock().unwrap().clone();
                    let cols: Vec<String> = c
                        .exec(
                            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                             AND COLUMN_NAME NOT IN ('id', 'n', 'v') ORDER BY ORDINAL_POSITION",
                            (&db, &t),
                        )
                        .await
                        .unwrap();
                    if cols.is_empty() {
                        continue; // renamed just now
                    }
                    let names: String = cols.iter().map(|c| format!(", `{c}`")).collect();
                    let values: String = cols.iter().map(|c| format!(", '{c}-{id}'")).collect();
                    let sets: String = cols.iter().map(|c| format!(", `{c}` = '{c}-{}'", id - 1)).collect();
                    let result = async {
                        c.query_drop(format!("INSERT INTO {db}.{t} (id, n{names}) VALUES ({id}, {id}{values})")).await?;
                        let inserted = c.affected_rows();
                        let mut updated = 0;
                        let mut deleted = 0;
                        if id.is_multiple_of(3) {
                            c.query_drop(format!("UPDATE {db}.{t} SET v = v + 1{sets} WHERE id = {}", id - 1)).await?;
                            updated = c.affected_rows();
                        }
                        if id.is_multiple_of(5) {
                            c.query_drop(format!("DELETE FROM {db}.{t} WHERE id = {}", id - 4)).await?;
                            deleted = c.affected_rows();
                        }
                        Ok::<_, mysql_async::Error>((inserted, updated, deleted))
                    }
                    .await;
                    match result {
                        Ok((i, u, d)) => {
                            counts.0 += i;
                            counts.1 += u;
                            counts.2 += d;
                            break;
                        }
                        Err(_) => {
                            // Autocommit: a failed INSERT left nothing; after a committed INSERT
                            // (its UPDATE or DELETE failed) the row id moves on.
                            let exists: Option<i64> =
                                c.query_first(format!("SELECT COUNT(*) FROM {db}.{t} WHERE id = {id}")).await.ok().flatten();
                            if exists == Some(1) {
                                counts.0 += 1;
                                break;
                            }
                        }
                    }
                }
                progress.store(id, Ordering::SeqCst);
            }
            counts
        })
    };
    let ddl = [
        "ALTER TABLE t ADD COLUMN d VARCHAR(32) AFTER a",
        "ALTER TABLE t DROP COLUMN b",
        "ALTER TABLE t MODIFY c VARCHAR(32) FIRST",
        "ALTER TABLE t MODIFY n BIGINT",
        "ALTER TABLE t RENAME COLUMN a TO a2",
        "ALTER TABLE t CHANGE d dd TEXT",
        "RENAME TABLE t TO t2",
        "ALTER TABLE t2 ADD COLUMN e VARCHAR(32) FIRST",
    ];
    exec(&mut c, &format!("USE {db}")).await;
    for sql in ddl {
        let seen = progress.load(Ordering::SeqCst);
        until("writer progress", Duration::from_secs(60), || progress.load(Ordering::SeqCst) >= seen + 15).await;
        exec(&mut c, sql).await;
        if sql.starts_with("RENAME TABLE") {
            *table.lock().unwrap() = "t2".into();
        }
    }
    let seen = progress.load(Ordering::SeqCst);
    until("writer progress", Duration::from_secs(60), || progress.load(Ordering::SeqCst) >= seen + 15).await;
    stop.store(true, Ordering::SeqCst);
    let (inserted, updated, deleted) = writer.await.unwrap();
    let total = (inserted + updated + deleted) as usize;
    eprintln!("{inserted} inserts, {updated} updates, {deleted} deletes");

    let first = consume_until(&topic, Duration::from_secs(120), move |r| r.len() >= total).await;
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(first.len(), total, "one record per row change");

    // The shapes, in the order the DDL made them (name:dataTypeNumber).
    let versions: Vec<(&str, Vec<&str>)> = vec![
        ("t", vec!["id:8", "n:3", "v:3", "a:253", "b:253", "c:253"]),
        ("t", vec!["id:8", "n:3", "v:3", "a:253", "d:253", "b:253", "c:253"]),
        ("t", vec!["id:8", "n:3", "v:3", "a:253", "d:253", "c:253"]),
        ("t", vec!["c:253", "id:8", "n:3", "v:3", "a:253", "d:253"]),
        ("t", vec!["c:253", "id:8", "n:8", "v:3", "a:253", "d:253"]),
        ("t", vec!["c:253", "id:8", "n:8", "v:3", "a2:253", "d:253"]),
        ("t", vec!["c:253", "id:8", "n:8", "v:3", "a2:253", "dd:252"]),
        ("t2", vec!["c:253", "id:8", "n:8", "v:3", "a2:253", "dd:252"]),
        ("t2", vec!["e:253", "c:253", "id:8", "n:8", "v:3", "a2:253", "dd:252"]),
    ];
    let aliases: HashMap<&str, Vec<&str>> =
        [("a", vec!["a"]), ("a2", vec!["a", "a2"]), ("b", vec!["b"]), ("c", vec!["c"]), ("d", vec!["d"]), ("dd", vec!["d", "dd"]), ("e", vec!["e"])].into();
    let mut at = 0;
    let mut seen_versions = vec![false; versions.len()];
    for (i, r) in first.iter().enumerate() {
        assert_eq!(r.id, i as i64 + 1, "ids are consecutive");
        let table = r.object.strip_prefix(&format!("{db}.")).unwrap_or_else(|| panic!("record {} of {}", r.id, r.object));
        let v = versions
            .iter()
            .position(|(t, f)| *t == table && *f == r.fields.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("record {}: {table} {:?} is no shape the DDL made", r.id, r.fields));
        assert!(v >= at, "record {}: shape {v} after shape {at}: the stream went back to an older definition", r.id);
        at = v;
        seen_versions[v] = true;
        check_values(r, &aliases);
    }
    // Every shape carried some rows (the writer made progress between every two DDL).
    assert!(seen_versions.iter().all(|s| *s), "shapes seen: {seen_versions:?}");

    // Restart from before the DDL: checkpoint removed, schema history kept.
    std::fs::remove_file(dir.join("data").join("checkpoint.redb")).unwrap();
    assert!(dir.join("data").join("schema_history.redb").exists());
    let replay = Sluice::start_in(&dir, &target.config(&replay_topic, &format!("{db}.t*"), &after_create));
    let second = consume_until(&replay_topic, Duration::from_secs(120), move |r| r.len() >= total).await;
    let (code, stderr) = replay.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(second.len(), first.len());
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a, b, "the replay of record {} differs", a.id);
    }
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

/// A fresh task started at a position older than the live schema: the seed (today's shape)
/// does not fit the old events, and neither does information_schema: sluice stops and says
/// which table, where, and how to go on — it never decodes by guesswork.
#[tokio::test]
async fn restart_without_history_before_a_ddl_stops_with_an_error() {
    let svc = services();
    let (db, topic) = (unique("ddl_old"), unique("ddl_old"));
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn().await;
    exec(&mut c, &format!("CREATE DATABASE {db}")).await;
    exec(&mut c, &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, a VARCHAR(10))")).await;
    let start = binlog_end(&mut c).await;
    exec(&mut c, &format!("INSERT INTO {db}.t VALUES (1, 'a-1')")).await;
    exec(&mut c, &format!("ALTER TABLE {db}.t ADD COLUMN b VARCHAR(10) AFTER id")).await;
    exec(&mut c, &format!("INSERT INTO {db}.t VALUES (2, 'b-2', 'a-2')")).await;

    let mut sluice = Sluice::start(&config(&topic, &format!("{db}.t"), &start, false));
    let (code, stderr) = sluice.wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0, "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("sluice: error:")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains(&format!("cannot decode {db}.t at mysql-bin.")), "{line}");
    assert!(line.contains("the binlog's TABLE_MAP has 2 columns (id LONG, a VARCHAR)"), "{line}");
    assert!(line.contains("has 3 columns (id int"), "{line}");
    assert!(line.contains("definition changed after this event"), "{line}");
    assert!(line.contains("Fix:") && line.contains("start_position"), "{line}");
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

/// Started before an ALTER whose effect today's seed already shows, with no row in between:
/// applying the ALTER contradicts the seed, so the history marks the table unknown; the next
/// TABLE_MAP's column names (binlog_row_metadata=FULL) prove the live definition, and sync goes
/// on with every value under the right name.
#[tokio::test]
async fn ddl_contradicting_a_newer_seed_is_proven_by_column_names() {
    let svc = services();
    let (db, topic) = (unique("ddl_seed"), unique("ddl_seed"));
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn().await;
    exec(&mut c, &format!("CREATE DATABASE {db}")).await;
    exec(&mut c, &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, a VARCHAR(10))")).await;
    let start = binlog_end(&mut c).await;
    exec(&mut c, &format!("ALTER TABLE {db}.t ADD COLUMN b VARCHAR(10) FIRST")).await;
    exec(&mut c, &format!("INSERT INTO {db}.t VALUES ('b-1', 1, 'a-1')")).await;

    let sluice = Sluice::start(&config(&topic, &format!("{db}.t"), &start, false));
    let records = consume_until(&topic, Duration::from_secs(60), |r| !r.is_empty()).await;
    exec(&mut c, &format!("INSERT INTO {db}.t VALUES ('b-2', 2, 'a-2')")).await;
    let records2 = consume_until(&topic, Duration::from_secs(60), |r| r.len() >= 2).await;
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records[0].names(), vec!["b", "id", "a"]);
    let aliases: HashMap<&str, Vec<&str>> = [("a", vec!["a"]), ("b", vec!["b"])].into();
    for r in &records2 {
        check_values(r, &aliases);
    }
    assert!(stderr.contains("prove the live definition right"), "{stderr}");
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

/// MariaDB's system versioning adds hidden columns that information_schema does not list: sluice
/// cannot follow it, and stops at the table's next event naming the table, position and DDL.
#[tokio::test]
async fn hidden_columns_added_by_ddl_stop_sync_naming_the_ddl() {
    let svc = services();
    let (db, topic) = (unique("ddl_sv"), unique("ddl_sv"));
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn().await;
    let start = binlog_end(&mut c).await;
    exec(&mut c, &format!("CREATE DATABASE {db}")).await;
    exec(&mut c, &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, a VARCHAR(10))")).await;
    exec(&mut c, &format!("INSERT INTO {db}.t VALUES (1, 'a-1')")).await;
    exec(&mut c, &format!("ALTER TABLE {db}.t ADD SYSTEM VERSIONING")).await;
    exec(&mut c, &format!("INSERT INTO {db}.t VALUES (2, 'a-2')")).await;

    let mut sluice = Sluice::start(&config(&topic, &format!("{db}.t"), &start, false));
    let records = consume_until(&topic, Duration::from_secs(60), |r| !r.is_empty()).await;
    let (code, stderr) = sluice.wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(records.len(), 1, "the row before the DDL is synced, none after it");
    check_values(&records[0], &[("a", vec!["a"])].into());
    let line = stderr.lines().find(|l| l.starts_with("sluice: error:")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains(&format!("cannot decode {db}.t at mysql-bin.")), "{line}");
    assert!(line.contains("ADD SYSTEM VERSIONING"), "the DDL is named: {line}");
    assert!(line.contains("lost track of the table"), "{line}");
    assert!(line.contains("Fix:"), "{line}");
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

/// Without column names in the binlog (binlog_row_metadata=MINIMAL) nothing can prove a shape
/// the history lost: the table's next event stops sluice, naming the DDL and how to resume.
#[tokio::test]
async fn without_full_metadata_a_ddl_sluice_cannot_follow_stops_naming_it() {
    const SECRET: &str = "Minimal-Secret-1";
    let server = TempMariaDb::start(&[
        "--skip-name-resolve",
        "--log-bin=mysql-bin",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--binlog-row-metadata=MINIMAL",
    ]);
    server.sql(&format!(
        "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '{SECRET}'; \
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'repl'@'127.0.0.1'; \
         CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, a VARCHAR(10))"
    ));
    let svc = services();
    let topic = unique("ddl_min");
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn_to("127.0.0.1", server.port, "repl", SECRET).await;
    let start = binlog_end(&mut c).await;
    // Started before this ALTER, sluice's seed is today's shape, which already has b.
    server.sql("ALTER TABLE d.t ADD COLUMN b INT; INSERT INTO d.t VALUES (1, 'a-1', 1)");
    let config = config(&topic, "d.t", &start, false)
        .replace(&format!("port = {}", svc.port), &format!("port = {}", server.port))
        .replace(&format!("user = \"{}\"", svc.user), "user = \"repl\"")
        .replace(&format!("password = \"{}\"", svc.password), &format!("password = \"{SECRET}\""));
    let mut sluice = Sluice::start(&config);
    let (code, stderr) = sluice.wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0, "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("sluice: error:")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("cannot decode d.t at mysql-bin.000001:"), "{line}");
    assert!(line.contains("ALTER TABLE d.t ADD COLUMN b INT"), "the DDL is named: {line}");
    assert!(line.contains("the column already exists"), "{line}");
    assert!(line.contains("binlog_row_metadata=FULL"), "{line}");
    assert!(line.contains("start_position"), "{line}");
}

/// A table renamed to a name outside the sync objects stops being synced; renamed back in (or
/// another table renamed in) it starts again, with the shape it has then.
#[tokio::test]
async fn rename_out_of_and_back_into_the_objects() {
    let svc = services();
    let (db, topic) = (unique("ddl_ren"), unique("ddl_ren"));
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn().await;
    let start = binlog_end(&mut c).await;
    exec(&mut c, &format!("CREATE DATABASE {db}")).await;
    exec(&mut c, &format!("USE {db}")).await;
    for sql in [
        "CREATE TABLE live_a (id INT PRIMARY KEY, a VARCHAR(10))",
        "CREATE TABLE other (id INT PRIMARY KEY, o VARCHAR(10))",
        "INSERT INTO live_a VALUES (1, 'a-1')",
        "RENAME TABLE live_a TO archived",
        "INSERT INTO archived VALUES (2, 'a-2')",
        "ALTER TABLE archived ADD COLUMN x VARCHAR(10) FIRST",
        "INSERT INTO archived VALUES ('x-3', 3, 'a-3')",
        "RENAME TABLE archived TO live_b",
        "INSERT INTO live_b VALUES ('x-4', 4, 'a-4')",
        "INSERT INTO other VALUES (5, 'o-5')",
        "ALTER TABLE other RENAME TO live_c",
        "INSERT INTO live_c VALUES (6, 'o-6')",
    ] {
        exec(&mut c, sql).await;
    }
    let sluice = Sluice::start(&config(&topic, &format!("{db}.live_*"), &start, false));
    let records = consume_until(&topic, Duration::from_secs(60), |r| r.len() >= 3).await;
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    let got: Vec<(String, Vec<&str>)> = records.iter().map(|r| (r.object.clone(), r.names())).collect();
    assert_eq!(
        got,
        vec![
            (format!("{db}.live_a"), vec!["id", "a"]),
            (format!("{db}.live_b"), vec!["x", "id", "a"]),
            (format!("{db}.live_c"), vec!["id", "o"]),
        ],
        "rows 2, 3 (archived) and 5 (other) are not sync objects"
    );
    let aliases: HashMap<&str, Vec<&str>> = [("a", vec!["a"]), ("x", vec!["x"]), ("o", vec!["o"])].into();
    for r in &records {
        check_values(r, &aliases);
    }
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

/// `CREATE TABLE … SELECT` (MariaDB logs it with the full column list inside a transaction):
/// the new table's rows are synced with its columns.
#[tokio::test]
async fn create_table_select_rows_are_synced() {
    let svc = services();
    let (db, topic) = (unique("ddl_ctas"), unique("ddl_ctas"));
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn().await;
    let start = binlog_end(&mut c).await;
    exec(&mut c, &format!("CREATE DATABASE {db}")).await;
    exec(&mut c, &format!("USE {db}")).await;
    exec(&mut c, "CREATE TABLE src (id INT PRIMARY KEY, a VARCHAR(10))").await;
    exec(&mut c, "INSERT INTO src VALUES (1, 'a-1'), (2, 'a-2')").await;
    exec(&mut c, "CREATE TABLE copy (b VARCHAR(10)) SELECT id, a, CONCAT('b-', id) AS b FROM src").await;
    exec(&mut c, "INSERT INTO copy (id, a, b) VALUES (3, 'a-3', 'b-3')").await;
    let order: Vec<String> = c
        .exec("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'copy' ORDER BY ORDINAL_POSITION", (&db,))
        .await
        .unwrap();
    let sluice = Sluice::start(&config(&topic, &format!("{db}.copy"), &start, false));
    let records = consume_until(&topic, Duration::from_secs(60), |r| r.len() >= 3).await;
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), 3);
    for r in &records {
        assert_eq!(r.names(), order, "{r:?}");
        check_values(r, &[("a", vec!["a"]), ("b", vec!["b"])].into());
    }
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

/// A gh-ost migration, statement by statement as gh-ost issues them (shadow table created LIKE
/// the original, altered, filled, then swapped in by an atomic rename), under `db.*`: the shadow
/// and changelog tables are never synced and the original table's stream switches to the new
/// shape exactly at the swap.
#[tokio::test]
async fn gh_ost_migration_keeps_the_original_stream() {
    let svc = services();
    let (db, topic) = (unique("ddl_gho"), unique("ddl_gho"));
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn().await;
    let start = binlog_end(&mut c).await;
    exec(&mut c, &format!("CREATE DATABASE {db}")).await;
    exec(&mut c, &format!("USE {db}")).await;
    let statements = [
        "CREATE TABLE orders (id INT PRIMARY KEY, a VARCHAR(10), b VARCHAR(10))".to_string(),
        "INSERT INTO orders VALUES (1, 'a-1', 'b-1'), (2, 'a-2', 'b-2')".into(),
        format!("create /* gh-ost */ table `{db}`.`_orders_ghc` (id bigint auto_increment, last_update timestamp not null DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, hint varchar(64) charset ascii not null, value varchar(4096) charset ascii not null, primary key(id), unique key hint_uidx(hint)) auto_increment=256 comment='gh-ost changelog'"),
        format!("insert /* gh-ost */ into `{db}`.`_orders_ghc` (id, hint, value) values (2, 'state', 'GhostTableMigrated')"),
        format!("create /* gh-ost */ table `{db}`.`_orders_gho` like `{db}`.`orders`"),
        format!("alter /* gh-ost */ table `{db}`.`_orders_gho` add column c varchar(10) after id, drop column b"),
        // Row copy, and a change to the original that gh-ost applies to the ghost from the binlog.
        format!("insert /* gh-ost */ ignore into `{db}`.`_orders_gho` (`id`, `a`) (select `id`, `a` from `{db}`.`orders` force index (`PRIMARY`))"),
        "INSERT INTO orders VALUES (3, 'a-3', 'b-3')".into(),
        format!("replace /* gh-ost */ into `{db}`.`_orders_gho` (`id`, `a`) values (3, 'a-3')"),
        format!("rename /* gh-ost */ table `{db}`.`orders` to `{db}`.`_orders_del`, `{db}`.`_orders_gho` to `{db}`.`orders`"),
        "INSERT INTO orders VALUES (4, 'c-4', 'a-4')".into(),
        "UPDATE orders SET c = 'c-3' WHERE id = 3".into(),
        format!("drop /* gh-ost */ table if exists `{db}`.`_orders_del`"),
        format!("drop /* gh-ost */ table if exists `{db}`.`_orders_ghc`"),
    ];
    for sql in &statements {
        exec(&mut c, sql).await;
    }
    let sluice = Sluice::start(&config(&topic, &format!("{db}.*"), &start, false));
    let records = consume_until(&topic, Duration::from_secs(60), |r| r.len() >= 5).await;
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    let got: Vec<(String, String, Vec<&str>)> = records.iter().map(|r| (r.op.clone(), r.object.clone(), r.names())).collect();
    let orders = format!("{db}.orders");
    assert_eq!(
        got,
        vec![
            ("INSERT".into(), orders.clone(), vec!["id", "a", "b"]),
            ("INSERT".into(), orders.clone(), vec!["id", "a", "b"]),
            ("INSERT".into(), orders.clone(), vec!["id", "a", "b"]),
            ("INSERT".into(), orders.clone(), vec!["id", "c", "a"]),
            ("UPDATE".into(), orders.clone(), vec!["id", "c", "a"]),
        ],
        "no shadow or changelog rows; the new shape from the swap on"
    );
    let aliases: HashMap<&str, Vec<&str>> = [("a", vec!["a"]), ("b", vec!["b"]), ("c", vec!["c"])].into();
    for r in &records {
        check_values(r, &aliases);
    }
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

/// A pt-online-schema-change migration: the new table created from SHOW CREATE TABLE output,
/// altered, kept in sync by triggers (whose rows are in the same transactions as the
/// original's), then swapped in. Only the original table's changes are synced.
#[tokio::test]
async fn pt_online_schema_change_migration_keeps_the_original_stream() {
    let svc = services();
    let (db, topic) = (unique("ddl_pto"), unique("ddl_pto"));
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn().await;
    let start = binlog_end(&mut c).await;
    exec(&mut c, &format!("CREATE DATABASE {db}")).await;
    exec(&mut c, &format!("USE {db}")).await;
    exec(&mut c, "CREATE TABLE orders (id INT NOT NULL, a VARCHAR(10), PRIMARY KEY (id)) DEFAULT CHARSET=latin1").await;
    exec(&mut c, "INSERT INTO orders VALUES (1, 'a-1')").await;
    let (_, show): (String, String) = c.query_first("SHOW CREATE TABLE orders").await.unwrap().unwrap();
    let create_new = show.replacen("CREATE TABLE `orders`", &format!("CREATE TABLE `{db}`.`_orders_new`"), 1);
    for sql in [
        create_new,
        format!("ALTER TABLE `{db}`.`_orders_new` ADD COLUMN z VARCHAR(10) FIRST"),
        format!("CREATE TRIGGER `pt_osc_{db}_orders_ins` AFTER INSERT ON `{db}`.`orders` FOR EACH ROW REPLACE INTO `{db}`.`_orders_new` (`id`, `a`) VALUES (NEW.`id`, NEW.`a`)"),
        format!("INSERT LOW_PRIORITY IGNORE INTO `{db}`.`_orders_new` (`id`, `a`) SELECT `id`, `a` FROM `{db}`.`orders` LOCK IN SHARE MODE"),
        "INSERT INTO orders VALUES (2, 'a-2')".into(),
        format!("RENAME TABLE `{db}`.`orders` TO `{db}`.`_orders_old`, `{db}`.`_orders_new` TO `{db}`.`orders`"),
        format!("DROP TABLE IF EXISTS `{db}`.`_orders_old`"),
        format!("DROP TRIGGER IF EXISTS `{db}`.`pt_osc_{db}_orders_ins`"),
        "INSERT INTO orders VALUES ('z-3', 3, 'a-3')".into(),
    ] {
        exec(&mut c, &sql).await;
    }
    let sluice = Sluice::start(&config(&topic, &format!("{db}.*"), &start, false));
    let records = consume_until(&topic, Duration::from_secs(60), |r| r.len() >= 3).await;
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    let orders = format!("{db}.orders");
    let got: Vec<(String, Vec<&str>)> = records.iter().map(|r| (r.object.clone(), r.names())).collect();
    assert_eq!(
        got,
        vec![(orders.clone(), vec!["id", "a"]), (orders.clone(), vec!["id", "a"]), (orders.clone(), vec!["z", "id", "a"])],
        "trigger and copy rows of _orders_new are not synced"
    );
    let aliases: HashMap<&str, Vec<&str>> = [("a", vec!["a"]), ("z", vec!["z"])].into();
    for r in &records {
        check_values(r, &aliases);
    }
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

/// With `emit_ddl = true`, DDL on sync objects becomes DTS DDL records (operation DDL, the
/// table's name, afterImages = the statement) in stream order; DDL on other tables does not.
#[tokio::test]
async fn emit_ddl_records_carry_the_statement_and_table() {
    let svc = services();
    let (db, topic) = (unique("ddl_emit"), unique("ddl_emit"));
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn().await;
    exec(&mut c, &format!("CREATE DATABASE {db}")).await;
    let start = binlog_end(&mut c).await;
    exec(&mut c, &format!("USE {db}")).await;
    let create = "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10))";
    let alter = "ALTER TABLE t ADD COLUMN b INT";
    for sql in [create, "CREATE TABLE ignored (x INT)", "INSERT INTO t VALUES (1, 'a-1')", "ALTER TABLE ignored ADD y INT", alter, "INSERT INTO t VALUES (2, 'a-2', 2)"] {
        exec(&mut c, sql).await;
    }
    let sluice = Sluice::start(&config(&topic, &format!("{db}.t"), &start, true));
    let records = consume_until(&topic, Duration::from_secs(60), |r| r.len() >= 4).await;
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    let object = format!("{db}.t");
    let got: Vec<(&str, &str, Option<&str>, usize)> =
        records.iter().map(|r| (r.op.as_str(), r.object.as_str(), r.sql.as_deref(), r.fields.len())).collect();
    assert_eq!(
        got,
        vec![
            ("DDL", object.as_str(), Some(create), 0),
            ("INSERT", object.as_str(), None, 2),
            ("DDL", object.as_str(), Some(alter), 0),
            ("INSERT", object.as_str(), None, 3),
        ]
    );
    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}
