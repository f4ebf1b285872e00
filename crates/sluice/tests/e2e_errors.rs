//! Bad input against real servers: each case must stop sluice with a non-zero exit and exactly
//! one error line that names the cause and the fix — never a panic, never the password.

mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;

const SECRET: &str = "Pa55-not-in-logs-7781";

/// Runs sluice on `config` and returns its single error line.
fn expect_failure(config: &str) -> String {
    let mut sluice = Sluice::start(config);
    let (code, stderr) = sluice.wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0, "sluice must fail; stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "no panic:\n{stderr}");
    assert!(!stderr.contains(SECRET), "the password never appears:\n{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("sluice: error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line:\n{stderr}");
    errors[0].to_string()
}

fn with_password(config: String, password: &str) -> String {
    let s = services();
    config.replace(&format!("password = \"{}\"", s.password), &format!("password = \"{password}\""))
}

async fn start_position() -> String {
    binlog_end(&mut admin_conn().await).await
}

async fn topic() -> String {
    let t = unique("err");
    create_topic(&services().brokers, &t, 1).await;
    t
}

#[tokio::test]
async fn wrong_password() {
    let config = with_password(task_config(&topic().await, "x.y", &start_position().await, "partition0", ""), SECRET);
    let line = expect_failure(&config);
    assert!(line.contains("rejected the login of user 'sluice'"), "{line}");
    assert!(line.contains("Fix: check [source] user and password"), "{line}");
}

#[tokio::test]
async fn wrong_port() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = services();
    let config = task_config(&topic().await, "x.y", &start_position().await, "partition0", "")
        .replace(&format!("port = {}", s.port), &format!("port = {closed}"));
    let line = expect_failure(&config);
    assert!(line.contains(&format!("cannot reach MySQL at 127.0.0.1:{closed}")), "{line}");
    assert!(line.contains("Fix: check [source] host and port"), "{line}");
}

/// A user that can log in but lacks the replication privileges.
async fn user_without_replication() -> String {
    let user = unique("nopriv");
    let mut c = admin_conn().await;
    for host in ["127.0.0.1", "localhost"] {
        c.query_drop(format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY '{SECRET}'")).await.unwrap();
        c.query_drop(format!("GRANT SELECT ON *.* TO '{user}'@'{host}'")).await.unwrap();
    }
    user
}

#[tokio::test]
async fn missing_replication_client() {
    let user = user_without_replication().await;
    let s = services();
    // No start position: sluice must ask the server for its binlog end (REPLICATION CLIENT).
    let config = with_password(task_config(&topic().await, "x.y", "", "partition0", ""), SECRET)
        .replace("start_position = \"\"\n", "")
        .replace(&format!("user = \"{}\"", s.user), &format!("user = \"{user}\""));
    let line = expect_failure(&config);
    assert!(line.contains(&format!("MySQL user '{user}' lacks a privilege")), "{line}");
    // The pre-check names exactly the missing grants, for the account the server resolved.
    assert!(line.contains(&format!("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'127.0.0.1';")), "{line}");
}

#[tokio::test]
async fn missing_replication_slave() {
    let user = user_without_replication().await;
    let s = services();
    let config = with_password(task_config(&topic().await, "x.y", &start_position().await, "partition0", ""), SECRET)
        .replace(&format!("user = \"{}\"", s.user), &format!("user = \"{user}\""));
    let line = expect_failure(&config);
    assert!(line.contains(&format!("MySQL user '{user}' lacks a privilege")), "{line}");
    assert!(line.contains("GRANT REPLICATION SLAVE"), "{line}");
}

#[tokio::test]
async fn binlog_position_not_on_server() {
    let config = task_config(&topic().await, "x.y", "mysql-bin.999999:4", "partition0", "");
    let line = expect_failure(&config);
    assert!(line.contains("mysql-bin.999999:4 is no longer on the source"), "{line}");
    assert!(line.contains("SHOW BINARY LOGS"), "{line}");
}

#[tokio::test]
async fn broker_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = services();
    let config = task_config("t", "x.y", &start_position().await, "partition0", "")
        .replace(&s.brokers, &format!("127.0.0.1:{closed}"));
    let line = expect_failure(&config);
    assert!(line.contains(&format!("cannot reach the Kafka brokers 127.0.0.1:{closed}")), "{line}");
    assert!(line.contains("Fix: check [target] brokers"), "{line}");
}

#[tokio::test]
async fn topic_missing() {
    let missing = unique("missing");
    // Without structure init, which would create it.
    let config = task_config(&missing, "x.y", &start_position().await, "partition0", "") + "[initial_load]\nstructure = false\n";
    let line = expect_failure(&config);
    assert!(line.contains(&format!("topic '{missing}' does not exist")), "{line}");
    assert!(line.contains("--create --topic"), "{line}");
}

/// A throw-away server with a replication user over TCP.
fn temp_server(extra: &[&str]) -> TempMariaDb {
    let db = TempMariaDb::start(extra);
    db.sql(&format!(
        "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '{SECRET}'; \
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'repl'@'127.0.0.1'"
    ));
    db
}

fn temp_config(db: &TempMariaDb, topic: &str) -> String {
    let s = services();
    task_config(topic, "x.y", "mysql-bin.000001:4", "partition0", "")
        .replace(&format!("port = {}", s.port), &format!("port = {}", db.port))
        .replace(&format!("user = \"{}\"", s.user), "user = \"repl\"")
        .replace(&format!("password = \"{}\"", s.password), &format!("password = \"{SECRET}\""))
}

#[tokio::test]
async fn binlog_in_statement_format() {
    let db = temp_server(&["--skip-name-resolve", "--log-bin=mysql-bin", "--binlog-format=STATEMENT"]);
    let line = expect_failure(&temp_config(&db, &topic().await));
    assert!(line.contains("binlog_format=STATEMENT, sluice needs ROW"), "{line}");
    assert!(line.contains("SET GLOBAL binlog_format = 'ROW'"), "{line}");
}

#[tokio::test]
async fn binlog_off() {
    let db = temp_server(&["--skip-name-resolve", "--skip-log-bin"]);
    let line = expect_failure(&temp_config(&db, &topic().await));
    assert!(line.contains("binary logging is OFF"), "{line}");
    assert!(line.contains("log_bin"), "{line}");
}

#[tokio::test]
async fn row_image_minimal() {
    let db = temp_server(&["--skip-name-resolve", "--log-bin=mysql-bin", "--binlog-format=ROW", "--binlog-row-image=MINIMAL"]);
    let line = expect_failure(&temp_config(&db, &topic().await));
    assert!(line.contains("binlog_row_image=MINIMAL, sluice needs FULL"), "{line}");
}

#[tokio::test]
async fn unknown_config_key_is_named() {
    let config = task_config("t", "x.y", "mysql-bin.000001:4", "partition0", "colour = \"blue\"");
    let line = expect_failure(&config);
    assert!(line.contains("colour"), "{line}");
}

#[tokio::test]
async fn record_larger_than_the_broker_accepts() {
    let svc = services();
    let (db, topic) = (unique("big"), unique("big"));
    create_topic(&svc.brokers, &topic, 1).await;
    let mut c = admin_conn().await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, body LONGBLOB)")).await.unwrap();
    let start = binlog_end(&mut c).await;
    c.query_drop("SET SESSION max_allowed_packet = 67108864").await.ok();
    c.query_drop(format!("INSERT INTO {db}.t VALUES (1, REPEAT('x', 3000000))")).await.unwrap();
    let line = expect_failure(&task_config(&topic, &format!("{db}.t"), &start, "partition0", ""));
    assert!(line.contains(&format!("topic '{topic}'")), "{line}");
    assert!(line.contains("message.max.bytes"), "{line}");
}
