//! `sluice precheck` (and the pre-check `sluice run` starts with) against real servers: every
//! item is made to fail for real — a wrong grant, a STATEMENT binlog, a missing table, a broker
//! that is down — and must say why and give the exact fix. Where the fix is SQL, the test runs
//! it and checks that the item then passes.

mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::Value;

const SECRET: &str = "Pc-secret-never-shown-4417";

struct Report {
    code: i32,
    json: Value,
    stderr: String,
}

impl Report {
    fn item(&self, name: &str) -> &Value {
        self.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("no item {name} in {:#}", self.json))
    }
    fn outcome(&self, name: &str) -> &str {
        self.item(name)["outcome"].as_str().unwrap()
    }
    fn detail(&self, name: &str) -> &str {
        self.item(name)["detail"].as_str().unwrap()
    }
    fn fix(&self, name: &str) -> &str {
        self.item(name)["fix"].as_str().unwrap_or_else(|| panic!("{name} has no fix: {:#}", self.item(name)))
    }
    #[track_caller]
    fn expect(&self, name: &str, outcome: &str) {
        assert_eq!(self.outcome(name), outcome, "{name}: {:#}\nstderr: {}", self.item(name), self.stderr);
    }
}

/// Runs `sluice precheck --json`.
fn precheck(config: &str) -> Report {
    let (code, stdout, stderr) = sluice_command(&["precheck", "--json", "--config", "@CONFIG@"], config);
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET), "a password appeared:\n{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\n{stderr}"));
    let failed = json["items"].as_array().unwrap().iter().any(|i| i["outcome"] == "fail");
    assert_eq!(json["passed"], !failed);
    assert_eq!(code, if failed { 1 } else { 0 }, "exit status follows the failures:\n{stdout}\n{stderr}");
    if failed {
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("sluice: error: pre-check failed")).collect();
        assert_eq!(errors.len(), 1, "one error line:\n{stderr}");
    }
    Report { code, json, stderr }
}

/// A database with a keyed table `t`, and a topic: a task on them passes every check.
async fn good_task() -> (String, String, String) {
    let db = unique("pc");
    let mut c = admin_conn().await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)")).await.unwrap();
    let topic = unique("pc");
    create_topic(&services().brokers, &topic, 1).await;
    let config = task_config(&topic, &format!("{db}.t"), &binlog_end(&mut c).await, "partition0", "");
    (db, topic, config)
}

/// Replaces the `[source]` login of a task file.
fn login(config: &str, user: &str, password: &str) -> String {
    let s = services();
    config
        .replace(&format!("user = \"{}\"", s.user), &format!("user = \"{user}\""))
        .replace(&format!("password = \"{}\"", s.password), &format!("password = \"{password}\""))
}

/// A user (at 127.0.0.1 and localhost) with the given grants (`{u}` is the account).
async fn user_with(grants: &[&str]) -> String {
    let user = unique("pcu");
    let mut c = admin_conn().await;
    for host in ["127.0.0.1", "localhost"] {
        c.query_drop(format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY '{SECRET}'")).await.unwrap();
        for g in grants {
            c.query_drop(g.replace("{u}", &format!("'{user}'@'{host}'"))).await.unwrap();
        }
    }
    user
}

const ITEMS: [&str; 18] = [
    "source_connection",
    "server_version",
    "privileges",
    "log_bin",
    "binlog_format",
    "binlog_row_image",
    "server_id",
    "binlog_retention",
    "binlog_position",
    "sync_objects",
    "select_privilege",
    "primary_keys",
    "object_count",
    "heartbeat_table",
    "broker_connection",
    "broker_version",
    "topic",
    "sasl",
];

#[tokio::test]
async fn a_good_task_passes_every_item_one_line_each() {
    let (db, _topic, config) = good_task().await;
    let config = config.replacen("connect_timeout_seconds = 5\n", &format!("connect_timeout_seconds = 5\nheartbeat_table = \"{db}.heartbeat\"\n"), 1);
    // The heartbeat table needs a user that may write it.
    let config = login(&config, &services().admin_user, &services().admin_password);
    let r = precheck(&config);
    for name in ITEMS {
        r.expect(name, "pass");
    }
    assert_eq!(r.code, 0);
    assert!(r.detail("sync_objects").contains(&format!("{db}.t")), "{}", r.detail("sync_objects"));
    assert!(r.detail("broker_version").contains("idempotence: yes"), "{}", r.detail("broker_version"));
    assert!(r.detail("topic").contains("1 partition"), "{}", r.detail("topic"));
    // The heartbeat row was written (the check writes one).
    let beats: Option<u64> = admin_conn().await.query_first(format!("SELECT beats FROM {db}.heartbeat")).await.unwrap();
    assert!(beats.unwrap() >= 1);

    // Human output: one line per item, then a summary.
    let (code, stdout, _) = sluice_command(&["precheck", "--config", "@CONFIG@"], &config);
    assert_eq!(code, 0, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), ITEMS.len() + 1, "{stdout}");
    for (line, name) in lines.iter().zip(ITEMS) {
        assert!(line.starts_with(&format!("[PASS] {name}: ")), "{line}");
    }
    assert!(lines.contains(&"[PASS] binlog_format: ROW"), "{stdout}");
    assert!(lines.last().unwrap().contains("18 ok, 0 warning(s), 0 failure(s)"), "{stdout}");
}

#[tokio::test]
async fn wrong_password_fails_the_login_and_skips_what_needs_it() {
    let (_db, _topic, config) = good_task().await;
    let r = precheck(&login(&config, &services().user, SECRET));
    r.expect("source_connection", "fail");
    assert!(r.detail("source_connection").contains("rejected the login of user 'sluice'"), "{}", r.detail("source_connection"));
    assert!(r.fix("source_connection").contains("check [source] user and password"));
    for name in ["privileges", "binlog_format", "sync_objects", "object_count"] {
        r.expect(name, "skip");
    }
    r.expect("broker_connection", "pass");
    r.expect("topic", "pass");
}

#[tokio::test]
async fn unreachable_source() {
    let (_db, _topic, config) = good_task().await;
    let closed = free_port();
    let r = precheck(&config.replace(&format!("port = {}", services().port), &format!("port = {closed}")));
    r.expect("source_connection", "fail");
    assert!(r.detail("source_connection").contains(&format!("cannot reach MySQL at 127.0.0.1:{closed}")));
    assert!(r.fix("source_connection").contains("check [source] host and port"));
}

#[tokio::test]
async fn missing_replication_grants_and_the_exact_fix() {
    let (_db, _topic, config) = good_task().await;
    let user = user_with(&["GRANT SELECT ON *.* TO {u}"]).await;
    let config = login(&config, &user, SECRET);
    let r = precheck(&config);
    r.expect("privileges", "fail");
    let detail = r.detail("privileges");
    assert!(detail.contains(&format!("MySQL user '{user}' lacks a privilege: REPLICATION SLAVE, REPLICATION CLIENT")), "{detail}");
    let fix = r.fix("privileges");
    let grant = format!("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'127.0.0.1';");
    assert_eq!(fix, format!("run on the source: {grant}"));

    // Only REPLICATION SLAVE missing: only it is named.
    admin_conn().await.query_drop(format!("GRANT REPLICATION CLIENT ON *.* TO '{user}'@'127.0.0.1'")).await.unwrap();
    let r = precheck(&config);
    r.expect("privileges", "fail");
    assert!(r.detail("privileges").contains("lacks a privilege: REPLICATION SLAVE ("), "{}", r.detail("privileges"));
    assert!(r.fix("privileges").contains(&format!("GRANT REPLICATION SLAVE ON *.* TO '{user}'@'127.0.0.1';")));

    // The fix, as printed, cures it.
    admin_conn().await.query_drop(grant).await.unwrap();
    let r = precheck(&config);
    r.expect("privileges", "pass");
    assert_eq!(r.code, 0, "{:#}", r.json);
}

#[tokio::test]
async fn missing_select_on_a_sync_object_and_the_exact_fix() {
    let (db, _topic, config) = good_task().await;
    let user = user_with(&["GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO {u}"]).await;
    let config = login(&config, &user, SECRET);
    let r = precheck(&config);
    r.expect("select_privilege", "fail");
    assert!(r.detail("select_privilege").contains(&format!("MySQL user '{user}' lacks SELECT on {db}.t")), "{}", r.detail("select_privilege"));
    let fix = r.fix("select_privilege");
    let grant = format!("GRANT SELECT ON `{db}`.`t` TO '{user}'@'127.0.0.1';");
    assert_eq!(fix, format!("run on the source: {grant}"));
    admin_conn().await.query_drop(grant).await.unwrap();
    let r = precheck(&config);
    r.expect("select_privilege", "pass");
    r.expect("sync_objects", "pass");
}

#[tokio::test]
async fn missing_table_fails_keyless_table_warns_empty_pattern_warns() {
    let (db, _topic, config) = good_task().await;
    admin_conn().await.query_drop(format!("CREATE TABLE {db}.nokey (v INT)")).await.unwrap();
    let include = format!("[\"{db}.t\", \"{db}.gone\", \"{db}.nokey\", \"nothing_{db}.*\"]");
    let config = config.replace(&format!("include = [\"{db}.t\"]"), &format!("include = {include}"));
    let r = precheck(&config);
    r.expect("sync_objects", "fail");
    assert_eq!(r.detail("sync_objects"), format!("sync object {db}.gone does not exist on the source"));
    assert!(r.fix("sync_objects").contains("remove it from [objects] include"));
    r.expect("primary_keys", "warn");
    assert!(r.detail("primary_keys").starts_with(&format!("{db}.nokey has no primary or unique key")), "{}", r.detail("primary_keys"));
    assert!(r.detail("primary_keys").contains("duplicates possible"));
    assert_eq!(r.fix("primary_keys"), format!("ALTER TABLE {db}.nokey ADD PRIMARY KEY (<columns>);"));

    // Once the table exists, only the pattern that matches nothing is left (a warning).
    admin_conn().await.query_drop(format!("CREATE TABLE {db}.gone (id INT PRIMARY KEY)")).await.unwrap();
    let r = precheck(&config);
    r.expect("sync_objects", "warn");
    assert!(r.detail("sync_objects").contains(&format!("nothing_{db}.* match none")), "{}", r.detail("sync_objects"));
    assert_eq!(r.code, 0);
}

#[tokio::test]
async fn more_objects_than_max_objects() {
    let (db, _topic, config) = good_task().await;
    admin_conn().await.query_drop(format!("CREATE TABLE {db}.u (id INT PRIMARY KEY)")).await.unwrap();
    let config = config.replace(&format!("include = [\"{db}.t\"]"), &format!("include = [\"{db}.*\"]\nmax_objects = 1"));
    let r = precheck(&config);
    r.expect("object_count", "fail");
    assert_eq!(r.detail("object_count"), "2 tables match [objects], more than max_objects = 1");
    assert!(r.fix("object_count").contains("raise [objects] max_objects"));
    let r = precheck(&config.replace("max_objects = 1", "max_objects = 2"));
    r.expect("object_count", "pass");
}

#[tokio::test]
async fn binlog_position_purged_or_unknown() {
    let (_db, _topic, config) = good_task().await;
    let start = config.lines().find(|l| l.starts_with("start_position")).unwrap().to_string();
    let r = precheck(&config.replace(&start, "start_position = \"mysql-bin.999999:4\""));
    r.expect("binlog_position", "fail");
    assert!(r.detail("binlog_position").contains("mysql-bin.999999:4 is no longer on the source"), "{}", r.detail("binlog_position"));
    assert!(r.fix("binlog_position").contains("SHOW BINARY LOGS"));
}

#[tokio::test]
async fn heartbeat_table_not_writable_warns_with_the_ddl() {
    let (db, _topic, config) = good_task().await;
    let config = config.replacen("connect_timeout_seconds = 5\n", &format!("connect_timeout_seconds = 5\nheartbeat_table = \"{db}.hb\"\n"), 1);
    let r = precheck(&config); // the test user may read, not write
    r.expect("heartbeat_table", "warn");
    assert!(r.detail("heartbeat_table").contains(&format!("cannot write {db}.hb")), "{}", r.detail("heartbeat_table"));
    assert!(r.detail("heartbeat_table").contains("falls back to the binlog heartbeat"));
    let fix = r.fix("heartbeat_table").strip_prefix("run on the source: ").unwrap().to_string();
    assert!(fix.starts_with(&format!("CREATE TABLE IF NOT EXISTS `{db}`.`hb`")), "{fix}");
    // Run the fix as printed (as an administrator), then the check passes.
    let mut admin = admin_conn().await;
    for statement in fix.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        admin.query_drop(statement).await.unwrap();
    }
    let r = precheck(&config);
    r.expect("heartbeat_table", "pass");
    assert_eq!(r.code, 0);
}

#[tokio::test]
async fn statement_binlog_minimal_images_short_retention_and_our_server_id() {
    // One private server with every setting wrong at once; its server_id is 7.
    let db = TempMariaDb::start(&[
        "--skip-name-resolve",
        "--log-bin=mysql-bin",
        "--binlog-format=STATEMENT",
        "--binlog-row-image=MINIMAL",
        "--binlog-expire-logs-seconds=3600",
    ]);
    db.sql(&format!(
        "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '{SECRET}'; \
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'repl'@'127.0.0.1'; \
         CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)"
    ));
    let s = services();
    let topic = unique("pc");
    create_topic(&s.brokers, &topic, 1).await;
    let config = task_config_for("127.0.0.1", db.port, "repl", SECRET, &s.brokers, &topic, "app.t", "mysql-bin.000001:4", "partition0", "");
    let server_id = config.lines().find(|l| l.starts_with("server_id")).unwrap().to_string();
    let config = config.replace(&server_id, "server_id = 7");
    let r = precheck(&config);

    r.expect("binlog_format", "fail");
    assert_eq!(r.detail("binlog_format"), "the source writes binlog_format=STATEMENT, sluice needs ROW");
    assert!(r.fix("binlog_format").starts_with("SET GLOBAL binlog_format = 'ROW';"), "{}", r.fix("binlog_format"));
    assert!(r.fix("binlog_format").contains("`binlog_format = ROW` in my.cnf"));
    r.expect("binlog_row_image", "fail");
    assert_eq!(r.detail("binlog_row_image"), "the source writes binlog_row_image=MINIMAL, sluice needs FULL (complete before/after images)");
    assert!(r.fix("binlog_row_image").starts_with("SET GLOBAL binlog_row_image = 'FULL';"));
    r.expect("binlog_retention", "warn");
    assert!(r.detail("binlog_retention").contains("binlogs are purged after 1.0 hours"), "{}", r.detail("binlog_retention"));
    assert!(r.fix("binlog_retention").starts_with("SET GLOBAL binlog_expire_logs_seconds = 604800;"));
    r.expect("server_id", "fail");
    assert!(r.detail("server_id").contains("differ from the source's own server_id (7)"), "{}", r.detail("server_id"));
    assert!(r.fix("server_id").contains("set [source] server_id to an unused value"));

    // `sluice run` refuses to start, naming every failure on its one error line.
    let mut sluice = Sluice::start(&config);
    let (code, stderr) = sluice.wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0);
    let line = stderr.lines().find(|l| l.starts_with("sluice: error:")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.starts_with("sluice: error: pre-check failed (3 of 17 checks): binlog_format: "), "{line}");
    assert!(line.contains("binlog_row_image: the source writes binlog_row_image=MINIMAL"), "{line}");
    assert!(line.contains("server_id: server_id must be > 0"), "{line}");
    assert!(!stderr.contains("streaming the binlog"), "{stderr}");

    // The SQL fixes as printed (the my.cnf half is for restarts), and our own server_id.
    db.sql("SET GLOBAL binlog_format = 'ROW'; SET GLOBAL binlog_row_image = 'FULL'; SET GLOBAL binlog_expire_logs_seconds = 604800");
    let r = precheck(&config.replace("server_id = 7", &server_id));
    for name in ["binlog_format", "binlog_row_image", "binlog_retention", "server_id"] {
        r.expect(name, "pass");
    }
    assert_eq!(r.code, 0, "{:#}", r.json);
}

#[tokio::test]
async fn binary_logging_off() {
    let db = TempMariaDb::start(&["--skip-name-resolve", "--skip-log-bin"]);
    db.sql(&format!(
        "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '{SECRET}'; \
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'repl'@'127.0.0.1'"
    ));
    let s = services();
    let config = task_config_for("127.0.0.1", db.port, "repl", SECRET, &s.brokers, "t", "x.y", "mysql-bin.000001:4", "partition0", "");
    let r = precheck(&config);
    r.expect("log_bin", "fail");
    assert_eq!(r.detail("log_bin"), "binary logging is OFF on the source");
    assert!(r.fix("log_bin").contains("`log_bin = mysql-bin`"), "{}", r.fix("log_bin"));
    for name in ["binlog_format", "binlog_row_image", "binlog_retention", "binlog_position"] {
        r.expect(name, "skip");
    }
}

#[tokio::test]
async fn broker_down() {
    let (_db, topic, config) = good_task().await;
    let closed = free_port();
    let r = precheck(&config.replace(&services().brokers, &format!("127.0.0.1:{closed}")));
    r.expect("broker_connection", "fail");
    assert!(r.detail("broker_connection").starts_with(&format!("cannot reach the Kafka brokers 127.0.0.1:{closed}")), "{}", r.detail("broker_connection"));
    assert!(r.fix("broker_connection").starts_with("check [target] brokers"));
    for name in ["broker_version", "topic"] {
        r.expect(name, "skip");
    }
    r.expect("source_connection", "pass");
    let _ = topic;
}

#[tokio::test]
async fn topic_missing_and_partition_count() {
    let (_db, topic, config) = good_task().await;
    let missing = unique("missing");
    let with_missing = config.replace(&format!("topic = \"{topic}\""), &format!("topic = \"{missing}\""));
    // Structure init (on by default) creates it.
    let r = precheck(&with_missing);
    r.expect("topic", "pass");
    assert!(r.detail("topic").contains("structure init creates it with 1 partition(s)"), "{}", r.detail("topic"));
    let r = precheck(&format!("{with_missing}[initial_load]\nstructure = false\n"));
    r.expect("topic", "fail");
    assert!(r.detail("topic").starts_with(&format!("topic '{missing}' does not exist")), "{}", r.detail("topic"));
    assert!(r.fix("topic").contains(&format!("--create --topic {missing}")));

    // A spreading policy over one partition: a warning, with the partition count.
    let r = precheck(&config.replace("partition_policy = \"partition0\"", "partition_policy = \"table\""));
    r.expect("topic", "warn");
    assert!(r.detail("topic").contains("exists with 1 partition"), "{}", r.detail("topic"));
    let four = unique("pc4");
    create_topic(&services().brokers, &four, 4).await;
    let r = precheck(&config.replace(&format!("topic = \"{topic}\""), &format!("topic = \"{four}\"")).replace("\"partition0\"", "\"table\""));
    r.expect("topic", "pass");
    assert!(r.detail("topic").contains("4 partitions"), "{}", r.detail("topic"));
}

#[tokio::test]
async fn sasl_login_that_the_broker_does_not_accept() {
    // The test broker has no SASL listener: a SASL login cannot come up there.
    let (_db, _topic, config) = good_task().await;
    let config = config.replace(
        "partition_policy = \"partition0\"",
        &format!("partition_policy = \"partition0\"\nsasl_username = \"pc\"\nsasl_password = \"{SECRET}\"\nsasl_mechanism = \"PLAIN\""),
    );
    let r = precheck(&config);
    r.expect("sasl", "fail");
    assert!(r.detail("sasl").contains("no SASL session comes up as 'pc' (PLAIN)"), "{}", r.detail("sasl"));
    assert!(r.fix("sasl").contains("check [target] sasl_username, sasl_password and sasl_mechanism"));
    r.expect("broker_connection", "pass");
    r.expect("topic", "skip");
}

/// A fake broker that answers every request with a Kafka 0.10 ApiVersions response (no
/// InitProducerId, no EndTxn).
fn kafka_010_broker() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || loop {
                let mut len = [0u8; 4];
                if s.read_exact(&mut len).is_err() {
                    return;
                }
                let mut req = vec![0u8; i32::from_be_bytes(len) as usize];
                if s.read_exact(&mut req).is_err() {
                    return;
                }
                let (key, version, correlation) = (i16::from_be_bytes([req[0], req[1]]), i16::from_be_bytes([req[2], req[3]]), &req[4..8]);
                if key != 18 {
                    return; // only ApiVersions is answered; anything else: connection closed
                }
                // Produce..ApiVersions (keys 0..=18) as Kafka 0.10.2 announces them, in the v0
                // layout; a newer request version gets UNSUPPORTED_VERSION, as 0.10 brokers do.
                let mut body = correlation.to_vec();
                body.extend(if version == 0 { 0i16 } else { 35i16 }.to_be_bytes());
                body.extend(19i32.to_be_bytes());
                for key in 0i16..=18 {
                    body.extend(key.to_be_bytes());
                    body.extend(0i16.to_be_bytes());
                    body.extend(1i16.to_be_bytes());
                }
                let mut frame = (body.len() as i32).to_be_bytes().to_vec();
                frame.extend(body);
                if s.write_all(&frame).is_err() {
                    return;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn broker_without_idempotence_when_it_is_required() {
    let (_db, _topic, config) = good_task().await;
    let port = kafka_010_broker();
    let config = config
        .replace(&services().brokers, &format!("127.0.0.1:{port}"))
        .replace("partition_policy = \"partition0\"", "partition_policy = \"partition0\"\nidempotence = \"on\"");
    let r = precheck(&config);
    r.expect("broker_version", "fail");
    let detail = r.detail("broker_version");
    assert!(detail.contains("idempotence = \"on\", but the brokers do not offer it"), "{detail}");
    assert!(detail.contains("Kafka 0.10 protocol") && detail.contains("idempotence: no, transactions: no"), "{detail}");
    assert!(r.fix("broker_version").contains("idempotence = \"auto\""));
}

#[tokio::test]
async fn run_refuses_a_failed_precheck_unless_skipped() {
    let (db, topic, config) = good_task().await;
    let config = config.replace(&format!("include = [\"{db}.t\"]"), &format!("include = [\"{db}.t\", \"{db}.gone\"]"));
    let mut sluice = Sluice::start(&config);
    let (code, stderr) = sluice.wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("sluice: error:")).collect();
    assert_eq!(errors, [format!("sluice: error: pre-check failed (1 of 17 checks): sync_objects: sync object {db}.gone does not exist on the source. Fix: create it on the source (CREATE TABLE {db}.gone (...)), or remove it from [objects] include (run `sluice precheck` for the full report; --skip-precheck starts anyway)")]);
    // The report is in the log, one line per item.
    assert!(stderr.contains("pre-check [PASS] binlog_format: ROW"), "{stderr}");
    assert!(stderr.contains(&format!("pre-check [FAIL] sync_objects: sync object {db}.gone")), "{stderr}");

    // --skip-precheck: the same task starts and syncs the table that exists.
    let dir = std::env::temp_dir().join(unique("pc-skip"));
    let sluice = Sluice::start_with_args(&dir, &config, &["run", "--skip-precheck", "--config", "@CONFIG@"]);
    admin_conn().await.query_drop(format!("INSERT INTO {db}.t VALUES (1, 1)")).await.unwrap();
    let mut tail = Tail::new(&services().brokers, &topic, 1);
    tail.read_until(Duration::from_secs(60), |r| !r.is_empty());
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("starting despite the failed pre-check"), "{stderr}");
}

/// Structure init cannot create a missing topic on brokers without CreateTopics (librdkafka's
/// mock cluster has none): the pre-check says so, with the command that creates it.
#[tokio::test]
async fn missing_topic_on_brokers_that_cannot_create_topics() {
    let (_db, topic, config) = good_task().await;
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    let r = precheck(&config.replace(&services().brokers, &cluster.bootstrap_servers()));
    r.expect("topic", "fail");
    assert!(r.detail("topic").contains(&format!("topic '{topic}' does not exist, and the brokers do not offer CreateTopics")), "{}", r.detail("topic"));
    assert!(r.fix("topic").contains(&format!("--create --topic {topic} --partitions 1")), "{}", r.fix("topic"));
}
