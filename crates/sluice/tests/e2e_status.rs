//! The status server of a running task, over HTTP while a sync runs: `/status`, `/metrics`,
//! `/health`, `sluice status`, the web page in headless Chromium, and JSON logs.

mod common;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::Value;

const SECRET: &str = "St-secret-never-logged-9031";

/// A keyed table, a topic, and a task on them with the status server on a free port (and
/// whatever `extra_source` adds to `[source]`).
async fn task(extra_source: &str) -> (String, String, u16, String) {
    let db = unique("st");
    let mut c = admin_conn().await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20))")).await.unwrap();
    let topic = unique("st");
    create_topic(&services().brokers, &topic, 1).await;
    let port = free_port();
    let config = format!(
        "{}[status]\nlisten = \"127.0.0.1:{port}\"\n",
        task_config(&topic, &format!("{db}.t"), &binlog_end(&mut c).await, "partition0", extra_source)
    );
    (db, topic, port, config)
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The value of a metric sample line `name{labels} value` whose name and labels start with
/// `prefix`.
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn status_metrics_and_health_while_a_sync_runs() {
    let (db, topic, port, config) = task("").await;
    // The heartbeat table lives in the task's database; the shared test user may not write
    // it, so the task logs in as the administrator.
    let s = services();
    let config = config
        .replacen("connect_timeout_seconds = 5\n", &format!("connect_timeout_seconds = 5\nheartbeat_table = \"{db}.heartbeat\"\n"), 1)
        .replace(&format!("user = \"{}\"", s.user), &format!("user = \"{}\"", s.admin_user))
        .replace(&format!("password = \"{}\"", s.password), &format!("password = \"{}\"", s.admin_password));
    let task_name = config.lines().next().unwrap().trim_start_matches("name = ").trim_matches('"').to_string();
    let sluice = Sluice::start(&config);
    let st = wait_status(&sluice, port, Duration::from_secs(60), |s| s["state"] == "syncing");
    assert_eq!(st["task"], task_name.as_str());
    assert_eq!(st["heartbeat"], format!("heartbeat table {db}.heartbeat"));
    assert!(st["source_version"].as_str().unwrap().contains("MariaDB"), "{st:#}");
    assert!(st["sink"].as_str().unwrap().contains(&topic), "{st:#}");
    assert_eq!(http_get(port, "/health").unwrap().0, 200);

    // Rows in → counted in, produced, acknowledged; positions and GTIDs move.
    let mut c = admin_conn().await;
    const N: u64 = 200;
    let started = now();
    for chunk in 0..4 {
        let values: Vec<String> = (0..N / 4).map(|i| format!("({}, 'v')", chunk * 1000 + i)).collect();
        c.query_drop(format!("INSERT INTO {db}.t VALUES {}", values.join(","))).await.unwrap();
    }
    let st = wait_status(&sluice, port, Duration::from_secs(60), |s| {
        s["rows_read"].as_u64() == Some(N)
            && s["records_acknowledged"].as_u64() == Some(N)
            && s["rows_per_second_in"].as_f64() > Some(0.0)
            && s["rows_per_second_out"].as_f64() > Some(0.0)
    });
    assert_eq!(st["records_produced"], N);
    assert_eq!(st["records_in_flight"], 0);
    assert!(st["bytes_produced"].as_u64().unwrap() > N * 20, "{st:#}");
    let (file, offset): (String, u64) = {
        let row: mysql_async::Row = c.query_first("SHOW MASTER STATUS").await.unwrap().unwrap();
        (row.get(0).unwrap(), row.get(1).unwrap())
    };
    let read = &st["read_position"];
    assert_eq!(read["file"], file.as_str());
    assert!(read["offset"].as_u64().unwrap() <= offset && read["offset"].as_u64().unwrap() > 4, "{st:#}");
    assert!(read["gtid"].as_str().unwrap().starts_with("0-1-"), "MariaDB GTID: {st:#}");
    let acked = &st["acknowledged_position"];
    assert_eq!(acked["file"], file.as_str());
    assert!(st["last_event_time"].as_i64().unwrap() >= started - 1, "{st:#}");
    assert!(st["delay_seconds"].as_f64().unwrap() < 10.0, "{st:#}");
    assert!(st["last_error"].is_null() && st["error"].is_null(), "{st:#}");

    // Idle: the heartbeat table keeps the source time moving (and the delay small).
    let quiet_from = now();
    let st = wait_status(&sluice, port, Duration::from_secs(30), |s| s["last_event_time"].as_i64().unwrap_or(0) >= quiet_from + 3);
    assert!(st["delay_seconds"].as_f64().unwrap() < 3.0, "{st:#}");
    let beats: u64 = c.query_first(format!("SELECT beats FROM {db}.heartbeat")).await.unwrap().unwrap();
    assert!(beats >= 3, "heartbeat rows written: {beats}");
    assert_eq!(st["rows_read"], N, "heartbeats are not sync objects");

    // Prometheus text, the same numbers.
    let (code, text) = http_get(port, "/metrics").unwrap();
    assert_eq!(code, 200);
    let label = format!("{{task=\"{task_name}\"");
    assert_eq!(metric(&text, &format!("sluice_state{label},state=\"syncing\"}}")), 1.0);
    assert_eq!(metric(&text, &format!("sluice_state{label},state=\"failed\"}}")), 0.0);
    assert_eq!(metric(&text, &format!("sluice_rows_read_total{label}}}")), N as f64);
    assert_eq!(metric(&text, &format!("sluice_records_acknowledged_total{label}}}")), N as f64);
    assert!(metric(&text, &format!("sluice_delay_seconds{label}}}")) < 3.0);
    assert!(metric(&text, &format!("sluice_bytes_produced_total{label}}}")) > 0.0);
    assert!(text.contains("# TYPE sluice_rows_read_total counter\n"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.rsplit(' ').next().unwrap().parse::<f64>().is_ok(), "bad sample: {line}");
    }

    // `sluice status` prints the same for the running task.
    let (code, stdout, stderr) = sluice_command(&["status", "--config", "@CONFIG@"], &config);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("state:        syncing\n"), "{stdout}");
    assert!(stdout.contains(&format!("task:         {task_name}\n")), "{stdout}");
    assert!(stdout.contains(&format!("rows read:    {N}\n")), "{stdout}");
    assert!(stdout.contains(&format!("read:         {file}:")), "{stdout}");
    let (code, stdout, _) = sluice_command(&["status", "--json", "--config", "@CONFIG@"], &config);
    assert_eq!(code, 0);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["rows_read"], N);

    let (code, _) = sluice.stop();
    assert_eq!(code, 0);
    // Nothing answers any more.
    let (code, _, stderr) = sluice_command(&["status", "--config", "@CONFIG@"], &config);
    assert_ne!(code, 0);
    assert!(stderr.contains(&format!("sluice: error: no sluice task answers at http://127.0.0.1:{port}/status")), "{stderr}");
}

#[tokio::test]
async fn status_of_another_task_is_refused() {
    let (_db, _topic, port, config) = task("").await;
    let sluice = Sluice::start(&config);
    wait_status(&sluice, port, Duration::from_secs(60), |s| s["state"] == "syncing");
    let other = config.replacen("name = \"", "name = \"other_", 1);
    let (code, _, stderr) = sluice_command(&["status", "--config", "@CONFIG@"], &other);
    assert_ne!(code, 0);
    assert!(stderr.contains("belongs to task 't_"), "{stderr}");
    let off = config.replace(&format!("listen = \"127.0.0.1:{port}\""), "listen = \"off\"");
    let (code, _, stderr) = sluice_command(&["status", "--config", "@CONFIG@"], &off);
    assert_ne!(code, 0);
    assert!(stderr.contains("the status server of this task is off"), "{stderr}");
    sluice.stop();
}

#[tokio::test]
async fn degraded_while_the_source_restarts_then_syncing_again() {
    let db = TempMariaDb::start(&["--skip-name-resolve", "--log-bin=mysql-bin", "--binlog-format=ROW"]);
    db.sql(
        "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'; \
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'repl'@'127.0.0.1'; \
         CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)",
    );
    let s = services();
    let topic = unique("st");
    create_topic(&s.brokers, &topic, 1).await;
    let port = free_port();
    let config = format!(
        "{}[status]\nlisten = \"127.0.0.1:{port}\"\n",
        task_config_for("127.0.0.1", db.port, "repl", "repl", &s.brokers, &topic, "app.t", "mysql-bin.000001:4", "partition0", "")
    );
    let sluice = Sluice::start(&config);
    wait_status(&sluice, port, Duration::from_secs(60), |s| s["state"] == "syncing");
    let db = db.restart();
    let st = wait_status(&sluice, port, Duration::from_secs(90), |s| s["state"] == "syncing" && s["reconnects"].as_u64() >= Some(1));
    let last = st["last_error"]["message"].as_str().unwrap();
    assert!(
        ["closed the binlog stream", "lost the connection to MySQL", "cannot reach MySQL"].iter().any(|m| last.contains(m)),
        "{st:#}"
    );
    assert!(st["last_error"]["at"].as_i64().unwrap() > now() - 120);
    db.sql("INSERT INTO app.t VALUES (1)");
    wait_status(&sluice, port, Duration::from_secs(60), |s| s["records_acknowledged"] == 1);
    let (_, text) = http_get(port, "/metrics").unwrap();
    assert!(metric(&text, "sluice_source_reconnects_total{") >= 1.0, "{text}");
    sluice.stop();
}

#[tokio::test]
async fn a_precheck_beside_a_running_task_does_not_disturb_it() {
    let (db, _topic, port, config) = task("").await;
    // Both see the same data directory (the task's checkpoint).
    let dir = std::env::temp_dir().join(unique("st-beside"));
    let config = config.replace("@DATA_DIR@", &dir.join("data").display().to_string());
    let sluice = Sluice::start_in(&dir, &config);
    wait_status(&sluice, port, Duration::from_secs(60), |s| s["state"] == "syncing");
    // Same task file, as an administrator (who may list replicas): the running task's
    // server_id is seen registered, and the check's own binlog request does not displace it.
    let s = services();
    let admin = config
        .replace(&format!("user = \"{}\"", s.user), &format!("user = \"{}\"", s.admin_user))
        .replace(&format!("password = \"{}\"", s.password), &format!("password = \"{}\"", s.admin_password));
    let (code, stdout, stderr) = sluice_command(&["precheck", "--config", "@CONFIG@"], &admin);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let line = stdout.lines().find(|l| l.contains("] server_id: ")).unwrap();
    assert!(line.starts_with("[WARN] server_id: a replica with server_id"), "{line}");
    assert!(line.contains("if it is not an earlier run of this task, starting would disconnect it"), "{line}");
    assert!(stdout.contains("[PASS] binlog_position: the checkpoint is in use (the task is running)"), "{stdout}");
    admin_conn().await.query_drop(format!("INSERT INTO {db}.t VALUES (1, 'after')")).await.unwrap();
    let st = wait_status(&sluice, port, Duration::from_secs(60), |s| s["records_acknowledged"] == 1);
    assert_eq!(st["reconnects"], 0, "the task was not disconnected: {st:#}");
    sluice.stop();
}

#[tokio::test]
async fn json_logs_and_no_password_anywhere() {
    let (db, _topic, port, config) = task("").await;
    let s = services();
    // A user whose password is a recognisable secret.
    let user = unique("stu");
    let mut c = admin_conn().await;
    for host in ["127.0.0.1", "localhost"] {
        c.query_drop(format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY '{SECRET}'")).await.unwrap();
        c.query_drop(format!("GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '{user}'@'{host}'")).await.unwrap();
    }
    let config = config
        .replace(&format!("user = \"{}\"", s.user), &format!("user = \"{user}\""))
        .replace(&format!("password = \"{}\"", s.password), &format!("password = \"{SECRET}\""));
    let dir = std::env::temp_dir().join(unique("st-json"));
    let sluice = Sluice::start_with_args(&dir, &config, &["--log-format", "json", "run", "--config", "@CONFIG@"]);
    wait_status(&sluice, port, Duration::from_secs(60), |s| s["state"] == "syncing");
    c.query_drop(format!("INSERT INTO {db}.t VALUES (1, 'x')")).await.unwrap();
    wait_status(&sluice, port, Duration::from_secs(60), |s| s["records_acknowledged"] == 1);
    let body = http_get(port, "/status").unwrap().1 + &http_get(port, "/metrics").unwrap().1 + &http_get(port, "/").unwrap().1;
    assert!(!body.contains(SECRET));
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0);
    assert!(!stderr.contains(SECRET), "the password never appears:\n{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    assert!(messages.contains(&"pre-check [PASS] binlog_format: ROW"), "{messages:?}");
    assert!(messages.iter().any(|m| m.starts_with("status server listening")), "{messages:?}");
    assert!(lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string()));
}

/// `chromium` on PATH (Debian's package), if installed.
fn chromium() -> Option<String> {
    ["chromium", "chromium-browser"].into_iter().find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success())).map(String::from)
}

fn headless(chromium: &str, profile: &Path, extra: &[String], url: &str) -> std::process::Output {
    Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--window-size=1200,800", "--virtual-time-budget=5000"])
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium")
}

/// The pixels of an RGB(A) PNG.
fn decode_png(path: &Path) -> (u32, u32, usize, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, info.color_type.samples(), buf)
}

#[tokio::test]
async fn the_web_page_renders_the_status_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        println!("SKIP the_web_page_renders_the_status_in_headless_chromium: chromium is not installed (apt-get install chromium)");
        return;
    };
    let (db, _topic, port, config) = task("").await;
    let task_name = config.lines().next().unwrap().trim_start_matches("name = ").trim_matches('"').to_string();
    let sluice = Sluice::start(&config);
    wait_status(&sluice, port, Duration::from_secs(60), |s| s["state"] == "syncing");
    admin_conn().await.query_drop(format!("INSERT INTO {db}.t VALUES (1, 'a'), (2, 'b'), (3, 'c')")).await.unwrap();
    wait_status(&sluice, port, Duration::from_secs(60), |s| s["records_acknowledged"] == 3);
    let url = format!("http://127.0.0.1:{port}/");
    let dir = std::env::temp_dir().join(unique("chromium"));
    std::fs::create_dir_all(&dir).unwrap();

    // The DOM after the page's script ran: it shows the live status.
    let out = headless(&chromium, &dir.join("profile-dom"), &["--dump-dom".into()], &url);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains(&format!("<span class=\"task\" id=\"task\">{task_name}</span>")), "{dom}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(dom.contains("<span class=\"badge syncing\" id=\"state\">syncing</span>"), "{dom}");
    assert!(dom.contains("<dd id=\"records_acknowledged\">3</dd>"), "{dom}");

    // The screenshot: the right size, the dark header band at the top and the green
    // "syncing" badge in it, and a light page below.
    let shot = dir.join("status.png");
    let started = Instant::now();
    let out = headless(&chromium, &dir.join("profile-shot"), &[format!("--screenshot={}", shot.display())], &url);
    assert!(shot.exists(), "no screenshot after {:?}: {}", started.elapsed(), String::from_utf8_lossy(&out.stderr));
    let (w, h, channels, pixels) = decode_png(&shot);
    assert_eq!((w, h), (1200, 800));
    let at = |x: u32, y: u32| {
        let i = (y * w + x) as usize * channels;
        (pixels[i], pixels[i + 1], pixels[i + 2])
    };
    let close = |a: (u8, u8, u8), b: (u8, u8, u8)| a.0.abs_diff(b.0) < 12 && a.1.abs_diff(b.1) < 12 && a.2.abs_diff(b.2) < 12;
    assert!(close(at(3, 3), (0x1d, 0x23, 0x30)), "header colour at the top-left: {:?}", at(3, 3));
    let header_green = (0..60).flat_map(|y| (0..w).map(move |x| (x, y))).filter(|&(x, y)| close(at(x, y), (0x1f, 0x8a, 0x4c))).count();
    assert!(header_green > 200, "the green syncing badge is missing ({header_green} pixels)");
    assert!(close(at(600, 790), (0xf5, 0xf7, 0xfa)), "page background: {:?}", at(600, 790));
    // Text was drawn: the cards hold many dark pixels.
    let dark = (100..800).step_by(2).flat_map(|y| (0..w).step_by(2).map(move |x| (x, y))).filter(|&(x, y)| at(x, y).0 < 80).count();
    assert!(dark > 500, "no text rendered ({dark} dark pixels)");
    println!("screenshot: {}", shot.display());
    sluice.stop();
}

#[tokio::test]
async fn degraded_while_the_broker_is_down_then_syncing_again() {
    let mut kafka = TempTansu::start();
    let (db, topic, port, config) = task("").await;
    create_topic(&kafka.brokers(), &topic, 1).await;
    let config = config.replace(&services().brokers, &kafka.brokers());
    let sluice = Sluice::start(&config);
    wait_status(&sluice, port, Duration::from_secs(60), |s| s["state"] == "syncing");
    let mut c = admin_conn().await;
    c.query_drop(format!("INSERT INTO {db}.t VALUES (1, 'before')")).await.unwrap();
    wait_status(&sluice, port, Duration::from_secs(60), |s| s["records_acknowledged"] == 1);

    kafka.stop();
    c.query_drop(format!("INSERT INTO {db}.t VALUES (2, 'during')")).await.unwrap();
    let st = wait_status(&sluice, port, Duration::from_secs(60), |s| s["state"] == "degraded");
    assert_eq!(st["records_in_flight"], 1, "{st:#}");
    assert!(st["last_error"]["message"].as_str().unwrap().starts_with("Kafka has acknowledged nothing for"), "{st:#}");
    assert_eq!(http_get(port, "/health").unwrap().0, 503);
    let (_, text) = http_get(port, "/metrics").unwrap();
    assert_eq!(metric(&text, "sluice_state{task=\"t_"), 0.0, "prechecking is 0");
    assert!(text.contains(",state=\"degraded\"} 1\n"), "{text}");

    kafka.start_again();
    let st = wait_status(&sluice, port, Duration::from_secs(120), |s| s["state"] == "syncing" && s["records_acknowledged"] == 2);
    assert_eq!(st["records_in_flight"], 0);
    assert_eq!(http_get(port, "/health").unwrap().0, 200);
    sluice.stop();
}
