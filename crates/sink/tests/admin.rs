//! `ensure_topic` against the real Kafka-protocol broker (tansu) started by
//! `scripts/services.sh up`; its address comes from SLUICE_KAFKA_BROKERS.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    ClientConfig,
};
use sluice_sink::{ensure_topic, Sasl, SinkError, SinkOptions, TopicSpec};

fn brokers() -> String {
    std::env::var("SLUICE_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:39092".into())
}

fn options(brokers: &str, connect_timeout: Duration) -> SinkOptions {
    SinkOptions {
        brokers: brokers.split(',').map(str::to_string).collect(),
        topic: String::new(),
        sasl: None,
        compression: "none".into(),
        idempotence: None,
        connect_timeout,
        librdkafka: BTreeMap::new(),
        client_id: "sluice-admin-test".into(),
        exactly_once: None,
    }
}

/// Unique across processes and runs (tansu keeps topics while it runs).
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{prefix}_{}_{nanos}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The topic's partition count in the cluster's metadata; None: no such topic.
fn partitions(topic: &str) -> Option<usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("allow.auto.create.topics", "false")
        .create()
        .expect("consumer");
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let t = md.topics().first()?;
    (t.error().is_none() && !t.partitions().is_empty()).then(|| t.partitions().len())
}

fn spec(name: &str, partitions: i32, replication_factor: i32) -> TopicSpec<'_> {
    TopicSpec { name, partitions, replication_factor, config: &[] }
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_a_missing_topic_once() {
    let opts = options(&brokers(), Duration::from_secs(10));
    let topic = unique("admin_create");
    assert_eq!(partitions(&topic), None, "fresh name");

    let created = ensure_topic(&opts, &spec(&topic, 3, 1)).await.expect("create");
    assert!(created, "a missing topic is created");
    // ensure_topic waited for the metadata: visible at once to a new client.
    assert_eq!(partitions(&topic), Some(3));

    assert!(!ensure_topic(&opts, &spec(&topic, 3, 1)).await.expect("second call"), "exists now");
    // An existing topic keeps its partition count, whatever the spec asks for.
    assert!(!ensure_topic(&opts, &spec(&topic, 5, 1)).await.expect("other spec"));
    assert_eq!(partitions(&topic), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_with_topic_config() {
    let opts = options(&brokers(), Duration::from_secs(10));
    let topic = unique("admin_config");
    let config = [("cleanup.policy", "compact"), ("retention.ms", "-1")];
    let spec = TopicSpec { name: &topic, partitions: 1, replication_factor: 1, config: &config };
    assert!(ensure_topic(&opts, &spec).await.expect("create"));
    assert_eq!(partitions(&topic), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_calls_create_once() {
    let opts = options(&brokers(), Duration::from_secs(10));
    let topic = unique("admin_race");
    let s = spec(&topic, 2, 1);
    let (a, b) = tokio::join!(ensure_topic(&opts, &s), ensure_topic(&opts, &s));
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert!(a ^ b, "exactly one call creates the topic, the other finds it (got {a}, {b})");
    assert_eq!(partitions(&topic), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_brokers_fail_within_the_timeout() {
    let timeout = Duration::from_secs(2);
    let mut opts = options("127.0.0.1:1", timeout);
    opts.sasl = Some(Sasl { mechanism: "PLAIN".into(), username: "sluice".into(), password: "pw-must-not-leak".into() });
    let start = Instant::now();
    let err = ensure_topic(&opts, &spec("admin_unreachable", 1, 1)).await.expect_err("nothing listens on port 1");
    let elapsed = start.elapsed();
    assert!(matches!(err, SinkError::Unreachable { .. }), "{err:?}");
    assert!(elapsed < timeout + Duration::from_secs(3), "took {elapsed:?}");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1") && text.contains("[target] brokers"), "{text}");
    assert!(!text.contains("pw-must-not-leak") && !format!("{err:?}").contains("pw-must-not-leak"), "{text}");
}

/// tansu 0.6.0 itself accepts any replication factor (it lists its one node id N times as the
/// replicas); ensure_topic compares it with the brokers in the metadata first, as Kafka does.
#[tokio::test(flavor = "multi_thread")]
async fn replication_factor_above_the_broker_count_is_refused() {
    let opts = options(&brokers(), Duration::from_secs(10));
    let topic = unique("admin_rf");
    let err = ensure_topic(&opts, &spec(&topic, 1, 3)).await.expect_err("one broker cannot hold 3 replicas");
    let SinkError::ReplicationFactor { replication_factor: 3, .. } = &err else { panic!("{err:?}") };
    let text = err.to_string();
    assert!(text.contains("replication factor 3") && text.contains("only 1 broker"), "{text}");
    assert!(text.contains("[target] replication_factor"), "{text}");
    assert_eq!(partitions(&topic), None, "nothing was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_specs_are_refused_before_the_broker_sees_them() {
    // tansu 0.6.0 would create all of these.
    let opts = options(&brokers(), Duration::from_secs(10));
    let topic = unique("admin_zero");
    for bad in [spec("bad name!", 1, 1), spec(&topic, 0, 1)] {
        let err = ensure_topic(&opts, &bad).await.expect_err("invalid");
        assert!(matches!(err, SinkError::Config(_)), "{err:?}");
    }
    assert_eq!(partitions(&topic), None);
}

/// A private tansu (sqlite storage in a temporary directory) requiring SASL/SCRAM logins.
struct SaslTansu {
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl SaslTansu {
    fn bin() -> String {
        std::env::var("SLUICE_TANSU_BIN").unwrap_or_else(|_| {
            format!("{}/.cache/sluice/tansu-0.6.0/bin/tansu", std::env::var("HOME").unwrap_or_default())
        })
    }

    fn spawn(dir: &std::path::Path, port: u16, extra: &[&str]) -> std::process::Child {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("tansu.log")).expect("log");
        let child = std::process::Command::new(Self::bin())
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
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        let end = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "tansu did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// Starts without authentication, adds the user, restarts requiring logins.
    fn start(user: &str, password: &str) -> SaslTansu {
        let dir = std::env::temp_dir().join(unique("sink_admin_tansu"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let mut child = Self::spawn(&dir, port, &[]);
        let out = std::process::Command::new(Self::bin())
            .args(["user", "create", user, password, "--broker"])
            .arg(format!("tcp://127.0.0.1:{port}"))
            .output()
            .expect("tansu user create");
        assert!(out.status.success(), "tansu user create: {}", String::from_utf8_lossy(&out.stderr));
        let _ = child.kill();
        let _ = child.wait();
        let child = Self::spawn(&dir, port, &["--authentication"]);
        SaslTansu { child, dir, port }
    }
}

impl Drop for SaslTansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_login_creates_and_a_wrong_password_is_named_without_the_password() {
    const SECRET: &str = "scram-Admin-9931";
    const WRONG: &str = "not-the-Admin-pw";
    let kafka = SaslTansu::start("sluice", SECRET);
    let mut opts = options(&format!("127.0.0.1:{}", kafka.port), Duration::from_secs(10));
    let login = |password: &str| {
        Some(Sasl { mechanism: "SCRAM-SHA-512".into(), username: "sluice".into(), password: password.into() })
    };
    let topic = unique("admin_sasl");

    opts.sasl = login(WRONG);
    let start = Instant::now();
    let err = ensure_topic(&opts, &spec(&topic, 2, 1)).await.expect_err("wrong password");
    // A refused login is reported at once, not after connect_timeout.
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    let text = err.to_string();
    assert!(matches!(err, SinkError::AuthFailed { .. }), "{err:?}");
    assert!(text.contains("sasl_password"), "{text}");
    assert!(!text.contains(WRONG) && !format!("{err:?}").contains(WRONG), "{text}");

    opts.sasl = login(SECRET);
    assert!(ensure_topic(&opts, &spec(&topic, 2, 1)).await.expect("create over SASL"));
    assert!(!ensure_topic(&opts, &spec(&topic, 2, 1)).await.expect("exists over SASL"));
}
