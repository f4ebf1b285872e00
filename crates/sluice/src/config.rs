//! The task file: raw TOML (every key known, every value typed) → a validated [`Task`].
//!
//! Parsing rejects unknown keys and mistyped values with the key's name and line; validation
//! then checks what types cannot (ranges, formats, secrets that must resolve) and names the key.

use std::{collections::BTreeMap, path::{Path, PathBuf}, time::Duration};

use serde::Deserialize;
use sluice_event::BinlogPosition;
use sluice_sink::{ExactlyOnce, Sasl, SinkOptions};
use sluice_source::{SourceOptions, TableFilter};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the task file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: `{key}` {problem}")]
    Invalid { path: String, key: &'static str, problem: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    name: String,
    data_dir: Option<PathBuf>,
    source: RawSource,
    target: RawTarget,
    objects: RawObjects,
    #[serde(default)]
    emit_ddl: bool,
    #[serde(default)]
    status: RawStatus,
    #[serde(default)]
    initial_load: RawInitialLoad,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInitialLoad {
    data: Option<bool>,
    #[serde(default = "yes")]
    structure: bool,
    #[serde(default = "default_chunk_size")]
    chunk_size: usize,
    #[serde(default = "default_load_parallelism")]
    load_parallelism: usize,
}

impl Default for RawInitialLoad {
    fn default() -> Self {
        Self { data: None, structure: true, chunk_size: default_chunk_size(), load_parallelism: default_load_parallelism() }
    }
}

fn yes() -> bool {
    true
}

fn default_chunk_size() -> usize {
    8192
}

fn default_load_parallelism() -> usize {
    4
}

/// `initial_load`: the full data load before the binlog stream (see `load`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialLoad {
    /// Load every sync object's current rows first (default: unless `[source] start_position`
    /// says where incremental sync starts).
    pub data: bool,
    /// Create the topic(s) if missing; with `data` and `emit_ddl`, each table's CREATE TABLE
    /// as a DDL record before its rows.
    pub structure: bool,
    /// Rows per chunk (per snapshot query; bounds the memory of the load).
    pub chunk_size: usize,
    /// Tables loaded at the same time.
    pub parallelism: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    listen: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    host: String,
    #[serde(default = "default_mysql_port")]
    port: u16,
    user: String,
    password: Option<String>,
    password_env: Option<String>,
    server_id: u32,
    start_position: Option<String>,
    #[serde(default = "default_heartbeat")]
    heartbeat_seconds: f64,
    #[serde(default = "default_connect_timeout")]
    connect_timeout_seconds: f64,
    heartbeat_table: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    brokers: Vec<String>,
    topic: String,
    #[serde(default)]
    partition_policy: PartitionPolicy,
    #[serde(default = "default_compression")]
    compression: String,
    #[serde(default)]
    idempotence: Idempotence,
    #[serde(default)]
    delivery: Delivery,
    #[serde(default = "default_progress_topic")]
    progress_topic: String,
    sasl_username: Option<String>,
    sasl_password: Option<String>,
    sasl_password_env: Option<String>,
    #[serde(default = "default_sasl_mechanism")]
    sasl_mechanism: String,
    #[serde(default = "default_connect_timeout")]
    connect_timeout_seconds: f64,
    #[serde(default)]
    librdkafka: BTreeMap<String, String>,
    #[serde(default = "one")]
    partitions: u32,
    #[serde(default = "one")]
    replication_factor: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjects {
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default = "default_max_objects")]
    max_objects: usize,
}

/// Which partition a record goes to (DTS's three policies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionPolicy {
    /// Everything to partition 0: total order (the DTS default).
    #[default]
    Partition0,
    /// Hash of database and table name: order per table.
    Table,
    /// Hash of the primary key values: order per row; keyless tables go to partition 0.
    PrimaryKey,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Delivery {
    #[default]
    AtLeastOnce,
    ExactlyOnce,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Idempotence {
    #[default]
    Auto,
    On,
    Off,
}

fn default_mysql_port() -> u16 {
    3306
}
fn default_heartbeat() -> f64 {
    1.0
}
fn default_connect_timeout() -> f64 {
    10.0
}
fn default_compression() -> String {
    "lz4".into()
}
fn default_progress_topic() -> String {
    "sluice_progress".into()
}
fn default_max_objects() -> usize {
    10_000
}
/// Where the status server listens unless `[status] listen` says otherwise.
pub const DEFAULT_STATUS_LISTEN: &str = "127.0.0.1:8688";
fn default_sasl_mechanism() -> String {
    "SCRAM-SHA-256".into()
}

/// A validated task.
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub data_dir: PathBuf,
    pub source: SourceOptions,
    pub start_position: Option<BinlogPosition>,
    pub sink: SinkOptions,
    pub partition_policy: PartitionPolicy,
    pub filter: TableFilter,
    pub emit_ddl: bool,
    /// The status server (`[status] listen`).
    pub status: StatusListen,
    /// Pre-check: at most this many tables may match `[objects]`.
    pub max_objects: usize,
    /// `[source] heartbeat_table` as (db, table).
    pub heartbeat_table: Option<(String, String)>,
    /// `[objects] include` as written (the pre-check reports patterns that match nothing).
    pub include: Vec<String>,
    /// `[objects] exclude` as written.
    pub exclude: Vec<String>,
    pub initial_load: InitialLoad,
    /// Partitions and replication factor of topics sluice creates (structure init).
    pub topic_partitions: i32,
    pub topic_replication_factor: i32,
}

/// Where the HTTP status server listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusListen {
    Off,
    /// The default address: if it is taken (another task on this host), sluice runs without it.
    Default(std::net::SocketAddr),
    /// Set in the task file: failing to listen there is an error.
    Configured(std::net::SocketAddr),
}

impl StatusListen {
    pub fn addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            StatusListen::Off => None,
            StatusListen::Default(a) | StatusListen::Configured(a) => Some(*a),
        }
    }
}

impl Task {
    pub fn load(path: &Path) -> Result<Task, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { path: display.clone(), reason: e.to_string() })?;
        Self::parse(&text, &display, &|k| std::env::var(k).ok())
    }

    /// Parses and validates task text; `env` resolves `*_env` secrets.
    pub fn parse(text: &str, path: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Task, ConfigError> {
        let raw: RawTask = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: path.into(), message: one_line(&e.to_string()) })?;
        let invalid = |key, problem: String| ConfigError::Invalid { path: path.into(), key, problem };

        if raw.name.is_empty() || !raw.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(invalid("name", "must be non-empty and use only letters, digits, '-', '_' and '.'".into()));
        }
        let s = raw.source;
        if s.host.is_empty() {
            return Err(invalid("source.host", "must not be empty".into()));
        }
        if s.server_id == 0 {
            return Err(invalid("source.server_id", "must be > 0 and unique among the source's replicas".into()));
        }
        let password = secret(s.password, s.password_env, "source.password", "source.password_env", env)
            .map_err(|(key, p)| invalid(key, p))?
            .ok_or_else(|| invalid("source.password", "is missing (set password, or password_env to the name of an environment variable holding it)".into()))?;
        let seconds = |key, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 3600.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(invalid(key, format!("must be between 0 and 3600 seconds, got {v}")))
            }
        };
        let start_position = s
            .start_position
            .map(|p| parse_position(&p).ok_or_else(|| invalid("source.start_position", format!("'{p}' is not of the form FILE:POS, e.g. mysql-bin.000003:4"))))
            .transpose()?;

        let t = raw.target;
        if t.brokers.is_empty() {
            return Err(invalid("target.brokers", "must list at least one host:port".into()));
        }
        let brokers = t
            .brokers
            .iter()
            .map(|b| normalize_broker(b).ok_or_else(|| invalid("target.brokers", format!("'{b}' is not host or host:port"))))
            .collect::<Result<Vec<_>, _>>()?;
        if t.topic.is_empty() || t.topic.len() > 249 || !t.topic.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(invalid("target.topic", format!("'{}' is not a valid Kafka topic name", t.topic)));
        }
        let valid_topic = |t: &str| !t.is_empty() && t.len() <= 249 && t.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !valid_topic(&t.progress_topic) {
            return Err(invalid("target.progress_topic", format!("'{}' is not a valid Kafka topic name", t.progress_topic)));
        }
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&t.compression.as_str()) {
            return Err(invalid("target.compression", format!("'{}' is not one of none, gzip, snappy, lz4, zstd", t.compression)));
        }
        let sasl_password = secret(t.sasl_password, t.sasl_password_env, "target.sasl_password", "target.sasl_password_env", env)
            .map_err(|(key, p)| invalid(key, p))?;
        let sasl = match (t.sasl_username, sasl_password) {
            (Some(username), Some(password)) => Some(Sasl { mechanism: t.sasl_mechanism, username, password }),
            (None, None) => None,
            _ => return Err(invalid("target.sasl_username", "and sasl_password (or sasl_password_env) go together".into())),
        };
        if raw.objects.include.is_empty() {
            return Err(invalid("objects.include", "must list at least one db.table pattern".into()));
        }
        let filter = TableFilter::new(&raw.objects.include, &raw.objects.exclude).map_err(|p| invalid("objects", p))?;
        if raw.objects.max_objects == 0 {
            return Err(invalid("objects.max_objects", "must be at least 1".into()));
        }
        let heartbeat_table = s
            .heartbeat_table
            .as_deref()
            .map(|t| match t.split_once('.') {
                Some((db, table)) if !db.is_empty() && !table.is_empty() && !table.contains('.') && !t.contains(['*', '?', '`']) => {
                    Ok((db.to_string(), table.to_string()))
                }
                _ => Err(invalid("source.heartbeat_table", format!("'{t}' is not of the form db.table"))),
            })
            .transpose()?;
        let status = match raw.status.listen.as_deref().map(str::trim) {
            None => StatusListen::Default(DEFAULT_STATUS_LISTEN.parse().expect("valid default")),
            Some("off" | "disabled" | "") => StatusListen::Off,
            Some(a) => StatusListen::Configured(a.parse().map_err(|_| {
                invalid("status.listen", format!("'{a}' is not an IP:port address (e.g. 127.0.0.1:8688) or \"off\""))
            })?),
        };

        let il = raw.initial_load;
        if il.chunk_size == 0 || il.chunk_size > 1_000_000 {
            return Err(invalid("initial_load.chunk_size", format!("must be between 1 and 1000000, got {}", il.chunk_size)));
        }
        if il.load_parallelism == 0 || il.load_parallelism > 64 {
            return Err(invalid("initial_load.load_parallelism", format!("must be between 1 and 64, got {}", il.load_parallelism)));
        }
        let initial_load = InitialLoad {
            data: il.data.unwrap_or(start_position.is_none()),
            structure: il.structure,
            chunk_size: il.chunk_size,
            parallelism: il.load_parallelism,
        };
        if t.partitions == 0 || t.partitions > 100_000 {
            return Err(invalid("target.partitions", format!("must be between 1 and 100000, got {}", t.partitions)));
        }
        if t.replication_factor == 0 || t.replication_factor > 100 {
            return Err(invalid("target.replication_factor", format!("must be between 1 and 100, got {}", t.replication_factor)));
        }

        Ok(Task {
            initial_load,
            topic_partitions: t.partitions as i32,
            topic_replication_factor: t.replication_factor as i32,
            data_dir: raw.data_dir.unwrap_or_else(|| PathBuf::from(".sluice").join(&raw.name)),
            source: SourceOptions {
                host: s.host,
                port: s.port,
                user: s.user,
                password,
                server_id: s.server_id,
                connect_timeout: seconds("source.connect_timeout_seconds", s.connect_timeout_seconds)?,
                heartbeat: seconds("source.heartbeat_seconds", s.heartbeat_seconds)?,
            },
            start_position,
            sink: SinkOptions {
                brokers,
                topic: t.topic,
                sasl,
                compression: t.compression,
                idempotence: match t.idempotence {
                    Idempotence::Auto => None,
                    Idempotence::On => Some(true),
                    Idempotence::Off => Some(false),
                },
                connect_timeout: seconds("target.connect_timeout_seconds", t.connect_timeout_seconds)?,
                librdkafka: t.librdkafka,
                client_id: format!("sluice-{}", raw.name),
                exactly_once: (t.delivery == Delivery::ExactlyOnce).then(|| ExactlyOnce {
                    transactional_id: format!("sluice-{}", raw.name),
                    progress_topic: t.progress_topic,
                }),
            },
            partition_policy: t.partition_policy,
            filter,
            emit_ddl: raw.emit_ddl,
            status,
            max_objects: raw.objects.max_objects,
            heartbeat_table,
            include: raw.objects.include.clone(),
            exclude: raw.objects.exclude.clone(),
            name: raw.name,
        })
    }
}

/// Resolves a secret given inline or through an environment variable (never both).
fn secret(
    inline: Option<String>,
    env_name: Option<String>,
    key: &'static str,
    env_key: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, (&'static str, String)> {
    match (inline, env_name) {
        (Some(_), Some(_)) => Err((key, format!("and `{env_key}` are both set; keep one"))),
        (Some(p), None) => Ok(Some(p)),
        (None, Some(var)) => match env(&var) {
            Some(p) => Ok(Some(p)),
            None => Err((env_key, format!("names the environment variable {var}, which is not set"))),
        },
        (None, None) => Ok(None),
    }
}

fn parse_position(s: &str) -> Option<BinlogPosition> {
    let (file, pos) = s.rsplit_once(':')?;
    let pos: u64 = pos.parse().ok()?;
    (!file.is_empty() && pos >= 4).then(|| BinlogPosition::new(file, pos))
}

fn normalize_broker(b: &str) -> Option<String> {
    let b = b.trim();
    if b.is_empty() || b.contains("://") {
        return None;
    }
    match b.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Some(b.to_string()),
        Some(_) => None,
        None => Some(format!("{b}:9092")),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t1"
[source]
host = "127.0.0.1"
user = "sluice"
password_env = "PW"
server_id = 99
[target]
brokers = ["k1", "k2:9093"]
topic = "orders"
[objects]
include = ["shop.*"]
"#;

    fn env(k: &str) -> Option<String> {
        (k == "PW").then(|| "s3cret".to_string())
    }

    #[test]
    fn minimal_task_gets_defaults() {
        let t = Task::parse(MINIMAL, "t.toml", &env).unwrap();
        assert_eq!(t.source.port, 3306);
        assert_eq!(t.source.password, "s3cret");
        assert_eq!(t.sink.brokers, vec!["k1:9092", "k2:9093"]);
        assert_eq!(t.partition_policy, PartitionPolicy::Partition0);
        assert_eq!(t.data_dir, PathBuf::from(".sluice/t1"));
        assert!(!format!("{t:?}").contains("s3cret"), "Debug must not show the password");
    }

    #[test]
    fn initial_load_is_on_by_default_unless_a_start_position_is_given() {
        let t = Task::parse(MINIMAL, "t.toml", &env).unwrap();
        assert_eq!(t.initial_load, InitialLoad { data: true, structure: true, chunk_size: 8192, parallelism: 4 });
        assert_eq!((t.topic_partitions, t.topic_replication_factor), (1, 1));
        let positioned = MINIMAL.replace("server_id = 99", "server_id = 99\nstart_position = \"mysql-bin.000002:4\"");
        let t = Task::parse(&positioned, "t.toml", &env).unwrap();
        assert!(!t.initial_load.data && t.initial_load.structure, "a start position means incremental sync from there");
        let t = Task::parse(&format!("{positioned}[initial_load]\ndata = true\n"), "t.toml", &env).unwrap();
        assert!(t.initial_load.data, "unless the load is asked for");
        let on = format!("{MINIMAL}[initial_load]\ndata = false\nstructure = false\nchunk_size = 100\nload_parallelism = 2\n");
        let t = Task::parse(&on, "t.toml", &env).unwrap();
        assert_eq!(t.initial_load, InitialLoad { data: false, structure: false, chunk_size: 100, parallelism: 2 });
        for (extra, key) in [
            ("chunk_size = 0", "initial_load.chunk_size"),
            ("load_parallelism = 0", "initial_load.load_parallelism"),
            ("parallel = 2", "parallel"),
        ] {
            let e = Task::parse(&format!("{MINIMAL}[initial_load]\n{extra}\n"), "t.toml", &env).unwrap_err().to_string();
            assert!(e.contains(key), "expected {key} in: {e}");
        }
        let t = Task::parse(&MINIMAL.replace("topic = \"orders\"", "topic = \"orders\"\npartitions = 6\nreplication_factor = 3"), "t.toml", &env).unwrap();
        assert_eq!((t.topic_partitions, t.topic_replication_factor), (6, 3));
        let e = Task::parse(&MINIMAL.replace("topic = \"orders\"", "topic = \"orders\"\npartitions = 0"), "t.toml", &env).unwrap_err().to_string();
        assert!(e.contains("target.partitions"), "{e}");
    }

    #[test]
    fn unknown_key_is_named() {
        let text = MINIMAL.replace("server_id = 99", "server_id = 99\nserverid = 1");
        let e = Task::parse(&text, "t.toml", &env).unwrap_err().to_string();
        assert!(e.contains("serverid"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("server_id = 99", "server_id = 0", "source.server_id"),
            ("topic = \"orders\"", "topic = \"a b\"", "target.topic"),
            ("include = [\"shop.*\"]", "include = [\"shop\"]", "objects"),
            ("password_env = \"PW\"", "password_env = \"NOPE\"", "source.password_env"),
            ("server_id = 99", "server_id = 99\nstart_position = \"x\"", "source.start_position"),
            ("topic = \"orders\"", "topic = \"orders\"\ncompression = \"brotli\"", "target.compression"),
            ("topic = \"orders\"", "topic = \"orders\"\npartition_policy = \"random\"", "partition_policy"),
            ("brokers = [\"k1\", \"k2:9093\"]", "brokers = [\"k1:x\"]", "target.brokers"),
        ];
        for (from, to, key) in cases {
            let e = Task::parse(&MINIMAL.replace(from, to), "t.toml", &env).unwrap_err().to_string();
            assert!(e.contains(key), "expected {key} in: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn start_position_parses() {
        let text = MINIMAL.replace("server_id = 99", "server_id = 99\nstart_position = \"mysql-bin.000003:1234\"");
        let t = Task::parse(&text, "t.toml", &env).unwrap();
        assert_eq!(t.start_position, Some(BinlogPosition::new("mysql-bin.000003", 1234)));
    }
    #[test]
    fn status_heartbeat_and_object_limit_keys() {
        let t = Task::parse(MINIMAL, "t.toml", &env).unwrap();
        assert_eq!(t.status, StatusListen::Default("127.0.0.1:8688".parse().unwrap()));
        assert_eq!(t.max_objects, 10_000);
        assert_eq!(t.heartbeat_table, None);

        let text = format!("{MINIMAL}max_objects = 5\n[status]\nlisten = \"127.0.0.1:9999\"\n")
            .replace("server_id = 99", "server_id = 99\nheartbeat_table = \"ops.beat\"");
        let t = Task::parse(&text, "t.toml", &env).unwrap();
        assert_eq!(t.status, StatusListen::Configured("127.0.0.1:9999".parse().unwrap()));
        assert_eq!(t.max_objects, 5);
        assert_eq!(t.heartbeat_table, Some(("ops".into(), "beat".into())));

        let off = format!("{MINIMAL}[status]\nlisten = \"off\"\n");
        assert_eq!(Task::parse(&off, "t.toml", &env).unwrap().status, StatusListen::Off);

        let cases = [
            (format!("{MINIMAL}[status]\nlisten = \"localhost\"\n"), "status.listen"),
            (format!("{MINIMAL}[status]\nport = 1\n"), "port"),
            (format!("{MINIMAL}max_objects = 0\n"), "objects.max_objects"),
            (MINIMAL.replace("server_id = 99", "server_id = 99\nheartbeat_table = \"beat\""), "source.heartbeat_table"),
        ];
        for (text, key) in cases {
            let e = Task::parse(&text, "t.toml", &env).unwrap_err().to_string();
            assert!(e.contains(key), "expected {key} in: {e}");
        }
    }
}
