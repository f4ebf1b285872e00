//! Test support: the real services started by `scripts/services.sh` (MariaDB, tansu), the real
//! `sluice` binary, a Kafka consumer and a DTS Avro decoder using the exact DTS schema.
#![allow(dead_code)]

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use apache_avro::{reader::datum::GenericDatumReader, types::Value as Avro, Schema};
use mysql_async::{prelude::Queryable, Conn, OptsBuilder};
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    ClientConfig, Message, Offset, TopicPartitionList,
};

/// Connection settings exported by `scripts/services.sh env`.
pub struct Services {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub admin_user: String,
    pub admin_password: String,
    pub brokers: String,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh, which starts MariaDB and tansu and exports their settings")
    })
}

pub fn services() -> Services {
    Services {
        host: env("SLUICE_MARIADB_HOST"),
        port: env("SLUICE_MARIADB_PORT").parse().expect("port"),
        user: env("SLUICE_MARIADB_USER"),
        password: env("SLUICE_MARIADB_PASSWORD"),
        admin_user: env("SLUICE_MARIADB_ADMIN_USER"),
        admin_password: env("SLUICE_MARIADB_ADMIN_PASSWORD"),
        brokers: env("SLUICE_KAFKA_BROKERS"),
    }
}

/// A name unique to this test process and call, for databases, topics and server ids.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A replica server_id unique to this call.
pub fn unique_server_id() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    1000 + (std::process::id() % 100_000) * 100 + N.fetch_add(1, Ordering::Relaxed)
}

pub async fn admin_conn_to(host: &str, port: u16, user: &str, password: &str) -> Conn {
    let opts = OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false);
    Conn::new(opts).await.expect("admin connection to MariaDB")
}

pub async fn admin_conn() -> Conn {
    let s = services();
    admin_conn_to(&s.host, s.port, &s.admin_user, &s.admin_password).await
}

/// The source's current binlog end as `file:pos`.
pub async fn binlog_end(conn: &mut Conn) -> String {
    // MySQL 8.4+ only knows SHOW BINARY LOG STATUS, MariaDB only the old name (error 1064).
    let row: mysql_async::Row = match conn.query_first("SHOW MASTER STATUS").await {
        Err(mysql_async::Error::Server(e)) if e.code == 1064 => conn.query_first("SHOW BINARY LOG STATUS").await.unwrap(),
        other => other.unwrap(),
    }
    .expect("binlog on");
    let (file, pos): (String, u64) = (row.get(0).unwrap(), row.get(1).unwrap());
    format!("{file}:{pos}")
}

pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let results = admin
        .create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .expect("create topic");
    for r in results {
        r.expect("topic created");
    }
}

/// One consumed record.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Reads `count` records from every partition of `topic` (from the beginning), in per-partition
/// order. Panics if fewer arrive before `deadline` (a guard against hanging, not a sync point).
pub fn consume(brokers: &str, topic: &str, partitions: i32, count: usize, deadline: Duration) -> Vec<Consumed> {
    let mut tail = Tail::new(brokers, topic, partitions);
    tail.read_until(deadline, |r| r.len() >= count);
    tail.records
}

/// The DTS schema types, parsed from the exact schema text DTS publishes.
pub fn record_schema() -> Vec<Schema> {
    let types: Vec<serde_json::Value> = serde_json::from_str(sluice_format::dts_avro::record_schema_text()).unwrap();
    Schema::parse_list(types.iter().map(|t| t.to_string())).expect("schema parses")
}

/// Decodes one message value as a DTS `Record` into its fields by name.
pub fn decode(schemata: &[Schema], bytes: &[u8]) -> Vec<(String, Avro)> {
    let record = schemata.iter().find(|s| s.name().is_some_and(|n| n.name() == "Record")).expect("Record schema");
    let reader = GenericDatumReader::builder(record).writer_schemata(schemata.iter().collect()).unwrap().build().unwrap();
    let mut rest = bytes;
    let value = reader.read_value(&mut rest).expect("valid DTS Avro");
    assert!(rest.is_empty(), "trailing bytes after the record");
    match value {
        Avro::Record(fields) => fields,
        other => panic!("not a record: {other:?}"),
    }
}

pub fn field<'a>(record: &'a [(String, Avro)], name: &str) -> &'a Avro {
    &record.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no field {name}")).1
}

/// One image value as text (`NULL` for null).
pub fn cell(v: &Avro) -> String {
    match v {
        Avro::Union(_, inner) => cell(inner),
        Avro::Null => "NULL".into(),
        Avro::Record(fields) => match fields.iter().find(|(n, _)| n == "value") {
            Some((_, Avro::String(s))) => s.clone(),
            Some((_, Avro::Bytes(b))) => String::from_utf8_lossy(b).into_owned(),
            _ => format!("{v:?}"),
        },
        Avro::String(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// An image (`beforeImages`/`afterImages`) as text cells; `None` when null.
pub fn image(r: &[(String, Avro)], name: &str) -> Option<Vec<String>> {
    match field(r, name) {
        Avro::Union(2, values) => match &**values {
            Avro::Array(values) => Some(values.iter().map(cell).collect()),
            other => panic!("{name}: {other:?}"),
        },
        _ => None,
    }
}

/// A record's tag, if present.
pub fn tag(r: &[(String, Avro)], name: &str) -> Option<String> {
    match field(r, "tags") {
        Avro::Map(tags) => tags.get(name).map(cell),
        other => panic!("tags: {other:?}"),
    }
}

/// A running `sluice` process with its stderr captured to a file.
pub struct Sluice {
    child: Child,
    dir: PathBuf,
}

impl Sluice {
    pub fn start(config: &str) -> Sluice {
        Self::start_in(&std::env::temp_dir().join(unique("sluice-test")), config)
    }

    /// Starts sluice with its task files (config, data, stderr) in `dir`; a second start in the
    /// same directory resumes from the first one's checkpoint.
    pub fn start_in(dir: &Path, config: &str) -> Sluice {
        Self::start_with(dir, config, &[])
    }

    /// Like `start_in`, with extra `sluice run` arguments.
    pub fn start_with(dir: &Path, config: &str, extra_args: &[&str]) -> Sluice {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        let config_path = dir.join("task.toml");
        std::fs::write(&config_path, config.replace("@DATA_DIR@", &dir.join("data").display().to_string())).unwrap();
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("stderr.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", "--config"])
            .arg(&config_path)
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start sluice");
        Sluice { child, dir }
    }

    pub fn stderr(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(self.dir.join("stderr.log")).unwrap().read_to_string(&mut s).unwrap();
        s
    }

    /// Waits for the process to exit by itself; panics after `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> (i32, String) {
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code().unwrap_or(-1), self.stderr());
            }
            assert!(Instant::now() < end, "sluice did not exit; stderr:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) -> (i32, String) {
        unsafe_kill(self.child.id(), "TERM");
        self.wait_exit(Duration::from_secs(60))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits until the log has at least `count` lines containing `needle` (all runs in the same
    /// directory share one log); panics after `deadline`.
    pub fn wait_log(&self, needle: &str, count: usize, deadline: Duration) {
        let end = Instant::now() + deadline;
        while self.stderr().lines().filter(|l| l.contains(needle)).count() < count {
            assert!(Instant::now() < end, "no '{needle}' (x{count}) in the log:\n{}", self.stderr());
            assert!(self.child_alive(), "sluice exited:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn child_alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map(|s| !s.contains("State:\tZ"))
            .unwrap_or(false)
    }

    /// SIGKILL: no flush, no checkpoint save.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Peak resident memory so far, in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("kill");
}

/// A task file for the shared test services.
pub fn task_config(topic: &str, include: &str, start: &str, policy: &str, extra_source: &str) -> String {
    let s = services();
    task_config_for(&s.host, s.port, &s.user, &s.password, &s.brokers, topic, include, start, policy, extra_source)
}

/// A task file for any source and brokers.
#[allow(clippy::too_many_arguments)]
pub fn task_config_for(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    brokers: &str,
    topic: &str,
    include: &str,
    start: &str,
    policy: &str,
    extra_source: &str,
) -> String {
    format!(
        r#"name = "{name}"
data_dir = "@DATA_DIR@"
[source]
host = "{host}"
port = {port}
user = "{user}"
password = "{password}"
server_id = {server_id}
start_position = "{start}"
connect_timeout_seconds = 5
{extra_source}
[target]
brokers = ["{brokers}"]
topic = "{topic}"
partition_policy = "{policy}"
connect_timeout_seconds = 5
[objects]
include = ["{include}"]
"#,
        name = unique("t"),
        server_id = unique_server_id(),
    )
}

/// A private, throw-away MariaDB server with extra options (for settings the shared one must not
/// change, such as binlog_format). Stopped and removed on drop.
pub struct TempMariaDb {
    child: Child,
    dir: PathBuf,
    extra: Vec<String>,
    pub port: u16,
}

impl TempMariaDb {
    pub fn start(extra: &[&str]) -> TempMariaDb {
        let dir = std::env::temp_dir().join(unique("mdb"));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        // A private tmpdir: concurrent bootstraps in a shared /tmp have been seen to trip over
        // each other's temporary tables.
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        // --no-defaults first: Debian's global my.cnf would give concurrent bootstraps the same
        // pid file and socket.
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", dir.join("tmp").display()))
            .args(["--auth-root-authentication-method=normal", "--user=root", "--skip-test-db", "--force"])
            .output()
            .expect("mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = Self::spawn(&dir, port, &extra);
        TempMariaDb { child, dir, extra, port }.ready()
    }

    fn spawn(dir: &Path, port: u16, extra: &[String]) -> Child {
        let data = dir.join("data");
        let mariadbd = if Path::new("/usr/sbin/mariadbd").exists() { "/usr/sbin/mariadbd" } else { "mariadbd" };
        Command::new(mariadbd)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--tmpdir={}", dir.join("tmp").display()))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--user=root", "--server-id=7"])
            .arg(format!("--log-error={}", dir.join("err.log").display()))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd")
    }

    fn ready(self) -> Self {
        wait_for_port(self.port, "temporary MariaDB");
        self
    }

    /// Stops the server (clean shutdown) and starts it again on the same data and port.
    pub fn restart(mut self) -> Self {
        unsafe_kill(self.child.id(), "TERM");
        self.child.wait().unwrap();
        self.child = Self::spawn(&self.dir, self.port, &self.extra);
        self.ready()
    }

    /// Runs a query returning one number, as root over the Unix socket.
    pub fn count(&self, sql: &str) -> i64 {
        let out = Command::new("mariadb")
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .args(["-uroot", "-N", "-B", "-e", sql])
            .output()
            .expect("mariadb client");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(-1)
    }

    /// Runs SQL as root over the Unix socket.
    pub fn sql(&self, sql: &str) {
        let out = Command::new("mariadb")
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .args(["-uroot", "-e", sql])
            .output()
            .expect("mariadb client");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for TempMariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls until something accepts TCP connections on `port` (bounded).
pub fn wait_for_port(port: u16, what: &str) {
    let end = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "{what} did not start listening on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private tansu broker with on-disk (sqlite) storage, so it can be stopped and restarted
/// without losing its topics.
pub struct TempTansu {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

impl TempTansu {
    pub fn start() -> TempTansu {
        let dir = std::env::temp_dir().join(unique("tansu"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let child = Self::spawn(&dir, port);
        wait_for_port(port, "tansu");
        TempTansu { child, dir, port }
    }

    fn spawn(dir: &Path, port: u16) -> Child {
        Self::spawn_with(dir, port, &[])
    }

    fn spawn_with(dir: &Path, port: u16, extra: &[&str]) -> Child {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("tansu.log")).unwrap();
        Command::new(env("SLUICE_TANSU_BIN"))
            .current_dir(dir)
            .args(["broker", "--listener-url"])
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .args(["--storage-engine", "sqlite://tansu.db"])
            .args(extra)
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("CLUSTER_ID")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu")
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        unsafe_kill(self.child.id(), "TERM");
        self.child.wait().unwrap();
    }

    pub fn start_again(&mut self) {
        self.child = Self::spawn(&self.dir, self.port);
        wait_for_port(self.port, "tansu");
    }

    /// Restarts the broker requiring SASL/SCRAM logins (users created beforehand with
    /// `create_user` while it ran without authentication).
    pub fn restart_with_authentication(&mut self) {
        self.stop();
        self.child = Self::spawn_with(&self.dir, self.port, &["--authentication"]);
        wait_for_port(self.port, "tansu");
    }

    pub fn create_user(&self, name: &str, password: &str) {
        let out = Command::new(env("SLUICE_TANSU_BIN"))
            .args(["user", "create", name, password, "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .output()
            .expect("tansu user create");
        assert!(out.status.success(), "tansu user create: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for TempTansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A consumer that keeps reading one topic from the beginning.
pub struct Tail {
    consumer: BaseConsumer,
    pub records: Vec<Consumed>,
}

impl Tail {
    pub fn new(brokers: &str, topic: &str, partitions: i32) -> Tail {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", unique("tail"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        }
        consumer.assign(&tpl).unwrap();
        Tail { consumer, records: Vec::new() }
    }

    /// Reads until `done(records)` holds; panics after `deadline` (a hang guard).
    pub fn read_until(&mut self, deadline: Duration, done: impl Fn(&[Consumed]) -> bool) {
        let end = Instant::now() + deadline;
        while !done(&self.records) {
            assert!(Instant::now() < end, "gave up waiting after {} records", self.records.len());
            // Transient broker errors (e.g. while a broker restarts) are retried by the client.
            if let Some(Ok(m)) = self.consumer.poll(Duration::from_millis(100)) {
                self.records.push(Consumed {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().unwrap_or_default().to_vec(),
                    value: m.payload().unwrap_or_default().to_vec(),
                });
            }
        }
    }

    /// Counts records without keeping them, until `count` have arrived.
    pub fn count_until(&mut self, count: usize, deadline: Duration) -> usize {
        let end = Instant::now() + deadline;
        let mut n = 0;
        while n < count {
            assert!(Instant::now() < end, "only {n} of {count} records arrived");
            if let Some(Ok(_)) = self.consumer.poll(Duration::from_millis(100)) {
                n += 1;
            }
        }
        n
    }
}

/// Connection settings of the real Oracle MySQL that `scripts/mysql.sh env` exports; `None` when
/// SLUICE_MYSQL_HOST is unset (the test runner could not start MySQL on this machine).
/// A source server a test runs against: the shared MariaDB, or the real Oracle MySQL when the
/// test runner could start it.
#[derive(Clone)]
pub struct SourceServer {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub admin_user: String,
    pub admin_password: String,
    pub mysql: bool,
}

impl SourceServer {
    pub fn mariadb() -> Self {
        let s = services();
        SourceServer { host: s.host, port: s.port, user: s.user, password: s.password, admin_user: s.admin_user, admin_password: s.admin_password, mysql: false }
    }

    /// The real MySQL, or `None` (saying SKIP for `test`) where it could not be started here.
    pub fn mysql(test: &str) -> Option<Self> {
        let Some(m) = mysql_services() else {
            eprintln!("SKIP: {test}: SLUICE_MYSQL_HOST is not set (scripts/mysql.sh could not start MySQL here)");
            return None;
        };
        Some(SourceServer { host: m.host, port: m.port, user: m.user, password: m.password, admin_user: m.admin_user, admin_password: m.admin_password, mysql: true })
    }

    pub async fn admin(&self) -> Conn {
        admin_conn_to(&self.host, self.port, &self.admin_user, &self.admin_password).await
    }

    /// A task file for this source and the shared brokers.
    pub fn config(&self, topic: &str, include: &str, start: &str) -> String {
        let s = services();
        task_config_for(&self.host, self.port, &self.user, &self.password, &s.brokers, topic, include, start, "partition0", "")
    }
}

pub struct MysqlServices {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub admin_user: String,
    pub admin_password: String,
}

pub fn mysql_services() -> Option<MysqlServices> {
    std::env::var("SLUICE_MYSQL_HOST").ok().filter(|h| !h.is_empty())?;
    Some(MysqlServices {
        host: env("SLUICE_MYSQL_HOST"),
        port: env("SLUICE_MYSQL_PORT").parse().expect("SLUICE_MYSQL_PORT"),
        user: env("SLUICE_MYSQL_USER"),
        password: env("SLUICE_MYSQL_PASSWORD"),
        admin_user: env("SLUICE_MYSQL_ADMIN_USER"),
        admin_password: env("SLUICE_MYSQL_ADMIN_PASSWORD"),
    })
}

/// Runs `sluice <args...>` to completion with the task file `config` (written to a fresh
/// directory; `@CONFIG@` in `args` names it): exit code, stdout, stderr.
pub fn sluice_command(args: &[&str], config: &str) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(unique("sluice-cmd"));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("task.toml");
    std::fs::write(&config_path, config.replace("@DATA_DIR@", &dir.join("data").display().to_string())).unwrap();
    let path = config_path.display().to_string();
    let args: Vec<&str> = args.iter().map(|a| if *a == "@CONFIG@" { path.as_str() } else { a }).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(&args).stdin(Stdio::null()).output().expect("run sluice");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Sluice {
    /// Like [`Sluice::start_in`], with `args` given to sluice (`@CONFIG@` names the task file),
    /// e.g. `["--log-format", "json", "run", "--config", "@CONFIG@"]`.
    pub fn start_with_args(dir: &Path, config: &str, args: &[&str]) -> Sluice {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        let config_path = dir.join("task.toml");
        std::fs::write(&config_path, config.replace("@DATA_DIR@", &dir.join("data").display().to_string())).unwrap();
        let path = config_path.display().to_string();
        let args: Vec<&str> = args.iter().map(|a| if *a == "@CONFIG@" { path.as_str() } else { a }).collect();
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("stderr.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start sluice");
        Sluice { child, dir }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// A plain HTTP/1.1 GET against 127.0.0.1:`port`: status code and body (`None` if nothing
/// answers).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = body;
        loop {
            let (size, after) = rest.split_once("\r\n")?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 {
                break out;
            }
            out.push_str(after.get(..size)?);
            rest = after.get(size + 2..)?;
        }
    } else {
        body.to_string()
    };
    Some((code, body))
}

/// Polls `GET /status` on `port` until `done(status)` holds; panics after `deadline` with the
/// last status and sluice's stderr.
pub fn wait_status(sluice: &Sluice, port: u16, deadline: Duration, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let end = Instant::now() + deadline;
    let mut last = serde_json::Value::Null;
    loop {
        if let Some((200, body)) = http_get(port, "/status") {
            last = serde_json::from_str(&body).expect("/status is JSON");
            if done(&last) {
                return last;
            }
        }
        assert!(Instant::now() < end, "status condition not reached; last /status:\n{last:#}\nstderr:\n{}", sluice.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
}
