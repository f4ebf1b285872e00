//! Topic creation for the initial load's structure init: make the task's topics exist before a
//! producer starts, and leave topics that already exist alone.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::{ClientContext, DefaultClientContext},
    config::ClientConfig,
    error::{KafkaError, RDKafkaErrorCode},
    metadata::Metadata,
    producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer},
};

use crate::{is_auth_failure, SinkError, SinkOptions};

/// What topic to create. `replication_factor` -1 asks for the brokers' default.replication.factor.
#[derive(Debug, Clone, Copy)]
pub struct TopicSpec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub replication_factor: i32,
    /// Topic-level configuration (e.g. `("cleanup.policy", "compact")`), set at creation only.
    pub config: &'a [(&'a str, &'a str)],
}

/// How often the topic's metadata is asked for while waiting for a new topic to show.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Answers the metadata requests. A producer, because its polling thread hands librdkafka's
/// client errors (connection refused, SASL failures) to the context: an admin client drops them.
type MetadataClient = ThreadedProducer<Errors>;

/// librdkafka's client errors, kept for the error message: a failed login is followed by
/// "all brokers are down", which says less, so the most telling one is kept.
#[derive(Default)]
struct Errors {
    state: Mutex<ErrorState>,
}

#[derive(Default)]
struct ErrorState {
    /// The latest error other than "all brokers down".
    telling: Option<String>,
    latest: Option<String>,
    auth_failed: bool,
}

impl Errors {
    fn lock(&self) -> std::sync::MutexGuard<'_, ErrorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reason(&self) -> Option<String> {
        let s = self.lock();
        s.telling.clone().or_else(|| s.latest.clone())
    }

    fn auth_failed(&self) -> bool {
        self.lock().auth_failed
    }
}

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        let text = format!("{error}: {reason}");
        tracing::debug!(%error, reason, "Kafka client error while ensuring a topic");
        let mut s = self.lock();
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::AllBrokersDown) {
            // Strict: a positive ends the wait for metadata early.
            s.auth_failed |= error.rdkafka_error_code() == Some(RDKafkaErrorCode::Authentication)
                || reason.contains("SASL authentication");
            s.telling = Some(text.clone());
        }
        s.latest = Some(text);
    }
}

impl ProducerContext for Errors {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// Creates the topic if it does not exist. Ok(true): created; Ok(false): it already existed (its
/// partition count is left as it is).
///
/// Each step is bounded by `opts.connect_timeout`: the metadata lookup, the CreateTopics request
/// and, after a creation, the wait until the cluster's metadata shows all the partitions (polled
/// every 100 ms), so a producer started right after finds the topic.
pub async fn ensure_topic(opts: &SinkOptions, spec: &TopicSpec<'_>) -> Result<bool, SinkError> {
    check_spec(spec)?;
    let mut config = opts.client_config();
    // A metadata request for a missing topic must not create it with the brokers' defaults.
    config.set("allow.auto.create.topics", "false");
    // As for the producer: e.g. security.protocol = sasl_ssl and its certificates live there.
    for (key, value) in &opts.librdkafka {
        config.set(key, value);
    }
    let metadata: MetadataClient =
        config.create_with_context(Errors::default()).map_err(|e| SinkError::Config(e.to_string()))?;
    let metadata = Arc::new(metadata);
    let creation = Creation { opts, spec, config, metadata: metadata.clone(), brokers: opts.brokers.join(",") };
    let result = creation.run().await;
    // Dropping a client joins its threads: keep that off the async runtime.
    tokio::task::spawn_blocking(move || drop(metadata));
    result
}

/// Refuses what no cluster would accept, before connecting.
fn check_spec(spec: &TopicSpec<'_>) -> Result<(), SinkError> {
    let name = spec.name;
    if name.is_empty()
        || name.len() > 249
        || name == "."
        || name == ".."
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(SinkError::Config(format!(
            "'{name}' is not a valid Kafka topic name (1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-', not '.' or '..')"
        )));
    }
    if spec.partitions < 1 {
        return Err(SinkError::Config(format!(
            "topic '{name}' needs at least 1 partition, got {}",
            spec.partitions
        )));
    }
    if spec.replication_factor < 1 && spec.replication_factor != -1 {
        return Err(SinkError::Config(format!(
            "the replication factor of topic '{name}' must be at least 1 (or -1 for the brokers' default), got {}",
            spec.replication_factor
        )));
    }
    for (key, value) in spec.config {
        if key.is_empty() || key.contains('\0') || value.contains('\0') {
            return Err(SinkError::Config(format!("invalid configuration entry {key:?} = {value:?} for topic '{name}'")));
        }
    }
    Ok(())
}

/// One `ensure_topic` call.
struct Creation<'a> {
    opts: &'a SinkOptions,
    spec: &'a TopicSpec<'a>,
    config: ClientConfig,
    metadata: Arc<MetadataClient>,
    brokers: String,
}

/// What the metadata says about the topic.
enum Found {
    /// With this many partitions (0: it exists, its partitions are not ready yet).
    Exists(usize),
    Missing,
}

impl Creation<'_> {
    async fn run(self) -> Result<bool, SinkError> {
        let timeout = self.opts.connect_timeout;
        let (found, live_brokers) = self.lookup(timeout).await?;
        match found {
            Found::Exists(0) => {
                // Being created by someone else right now: wait for it like for a race below.
                self.wait_until_visible(Instant::now() + timeout, false).await?;
                return Ok(false);
            }
            Found::Exists(_) => return Ok(false),
            Found::Missing => {}
        }
        // Kafka refuses this too (INVALID_REPLICATION_FACTOR), but not every Kafka-protocol
        // broker does: checked here so the answer is the same everywhere.
        if self.spec.replication_factor > 0 && self.spec.replication_factor as usize > live_brokers {
            return Err(self.replication_error(Some(live_brokers), "more replicas than brokers".into()));
        }
        let created = self.create(timeout).await?;
        self.wait_until_visible(Instant::now() + timeout, created).await?;
        Ok(created)
    }

    /// Asks for the topic's metadata once; also returns how many brokers the cluster has.
    async fn lookup(&self, timeout: Duration) -> Result<(Found, usize), SinkError> {
        let client = self.metadata.clone();
        let topic = self.spec.name.to_string();
        let fetch = tokio::task::spawn_blocking(move || {
            client.client().fetch_metadata(Some(&topic), timeout).map(|md| (found(&md), md.brokers().len()))
        });
        // A refused login will not get better by waiting: report it at once (the request
        // itself runs on until its timeout, on a blocking thread).
        let refused = async {
            while !self.metadata.context().auth_failed() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let metadata = tokio::select! {
            joined = fetch => joined.map_err(|e| self.failure(format!("the metadata request failed: {e}"), Fix::Retry))?,
            () = refused => Err(KafkaError::MetadataFetch(RDKafkaErrorCode::Authentication)),
        };
        metadata.map_err(|e| self.connection_error(&e))
    }

    /// Sends CreateTopics. Ok(false): someone else created it first.
    async fn create(&self, timeout: Duration) -> Result<bool, SinkError> {
        let spec = self.spec;
        let mut topic = NewTopic::new(spec.name, spec.partitions, TopicReplication::Fixed(spec.replication_factor));
        for (key, value) in spec.config {
            topic = topic.set(key, value);
        }
        // The operation timeout makes the controller answer only once the topic is created.
        let options = AdminOptions::new().request_timeout(Some(timeout)).operation_timeout(Some(timeout));
        let admin: AdminClient<DefaultClientContext> =
            self.config.create().map_err(|e| SinkError::Config(e.to_string()))?;
        let answer = admin.create_topics([&topic], &options).await;
        tokio::task::spawn_blocking(move || drop(admin));
        let results = match answer {
            Ok(results) => results,
            Err(e) => return Err(self.request_error(&e)),
        };
        let mut outcome = Err(self.failure("the cluster answered without a result for the topic".into(), Fix::Manual));
        for result in results {
            outcome = match result {
                Ok(_) => Ok(true),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => Ok(false),
                Err((_, code)) => Err(self.topic_error(code)),
            };
        }
        outcome
    }

    /// Polls the metadata until the topic shows its partitions (all of them, when created here).
    async fn wait_until_visible(&self, deadline: Instant, created: bool) -> Result<(), SinkError> {
        let wanted = if created { self.spec.partitions as usize } else { 1 };
        let mut last = String::from("the topic is not in the metadata yet");
        loop {
            let timeout = remaining(deadline).max(POLL_INTERVAL);
            match self.lookup(timeout).await {
                Ok((Found::Exists(n), _)) if n >= wanted => return Ok(()),
                Ok((Found::Exists(n), _)) => last = format!("the metadata shows {n} of {wanted} partitions"),
                Ok((Found::Missing, _)) => {}
                Err(e) => last = e.to_string(),
            }
            if Instant::now() + POLL_INTERVAL > deadline {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        if !created {
            // Created by someone else a moment ago: whoever did so waits for it.
            return Ok(());
        }
        Err(self.failure(
            format!(
                "it was created, but {last} after {:?} ([target] connect_timeout_seconds)",
                self.opts.connect_timeout
            ),
            Fix::Wait,
        ))
    }

    /// A failed metadata request: the cluster is away, or refused the login.
    fn connection_error(&self, e: &KafkaError) -> SinkError {
        let errors = self.metadata.context();
        let reason = errors.reason().unwrap_or_else(|| e.to_string());
        match (&self.opts.sasl, errors.auth_failed() || is_auth_failure(e, &reason)) {
            (Some(s), true) => SinkError::AuthFailed { user: s.username.clone(), reason },
            _ => SinkError::Unreachable { brokers: self.brokers.clone(), reason },
        }
    }

    /// The CreateTopics request as a whole failed (no per-topic result).
    fn request_error(&self, e: &KafkaError) -> SinkError {
        // rdkafka does not report the code of an admin request's error through rdkafka_error_code.
        let code = match e {
            KafkaError::AdminOp(code) => Some(*code),
            other => other.rdkafka_error_code(),
        };
        match code {
            Some(
                RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::NetworkException,
            ) => self.connection_error(e),
            Some(code @ (RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut)) => {
                self.failure(format!("{code} after {:?}", self.opts.connect_timeout), Fix::Wait)
            }
            Some(code) => self.topic_error(code),
            None => self.failure(e.to_string(), Fix::Manual),
        }
    }

    /// The cluster's answer for the topic, as an error that says how to fix it.
    fn topic_error(&self, code: RDKafkaErrorCode) -> SinkError {
        let reason = code.to_string();
        match code {
            RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed => {
                SinkError::TopicCreateDenied {
                    topic: self.spec.name.to_string(),
                    brokers: self.brokers.clone(),
                    principal: match &self.opts.sasl {
                        Some(s) => format!("user '{}'", s.username),
                        None => "sluice's (anonymous) principal".into(),
                    },
                    reason,
                    command: self.command(),
                }
            }
            RDKafkaErrorCode::InvalidReplicationFactor | RDKafkaErrorCode::InvalidReplicaAssignment => {
                self.replication_error(None, reason)
            }
            RDKafkaErrorCode::InvalidPartitions => self.failure(reason, Fix::Partitions),
            RDKafkaErrorCode::InvalidConfig => self.failure(reason, Fix::Config),
            RDKafkaErrorCode::InvalidTopic => self.failure(reason, Fix::Name),
            RDKafkaErrorCode::PolicyViolation => self.failure(reason, Fix::Policy),
            RDKafkaErrorCode::NotController
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::BrokerNotAvailable
            | RDKafkaErrorCode::NotEnoughReplicas
            | RDKafkaErrorCode::CoordinatorNotAvailable => self.failure(reason, Fix::Wait),
            RDKafkaErrorCode::UnsupportedVersion | RDKafkaErrorCode::InvalidRequest => {
                self.failure(format!("{reason} (the brokers do not support creating topics)"), Fix::Manual)
            }
            _ => self.failure(reason, Fix::Manual),
        }
    }

    /// `live_brokers` None: unknown (the cluster's answer did not say).
    fn replication_error(&self, live_brokers: Option<usize>, reason: String) -> SinkError {
        SinkError::ReplicationFactor {
            topic: self.spec.name.to_string(),
            brokers: self.brokers.clone(),
            replication_factor: self.spec.replication_factor,
            live_brokers: match live_brokers {
                None => "fewer brokers than that available".into(),
                Some(0) => "no brokers in its metadata".into(),
                Some(1) => "only 1 broker".into(),
                Some(n) => format!("only {n} brokers"),
            },
            reason,
        }
    }

    fn failure(&self, reason: String, fix: Fix) -> SinkError {
        let command = self.command();
        let fix = match fix {
            Fix::Retry => format!("run again; if it keeps failing, create the topic yourself: `{command}`"),
            Fix::Wait => format!(
                "check that the brokers are healthy (a controller is elected), raise [target] connect_timeout_seconds and run again, or create the topic yourself: `{command}`"
            ),
            Fix::Manual => format!("create the topic yourself: `{command}`"),
            Fix::Partitions => format!(
                "the cluster refused {} partitions; choose a partition count it accepts and create the topic yourself: `{command}`",
                self.spec.partitions
            ),
            Fix::Config => format!(
                "the cluster refused the topic configuration {}; correct it, or create the topic yourself with settings the cluster accepts: `{command}`",
                self.config_list()
            ),
            Fix::Name => format!("choose a topic name the cluster accepts, or create the topic yourself: `{command}`"),
            Fix::Policy => format!(
                "the cluster's create.topic.policy refused the topic; ask its operators to create it: `{command}`"
            ),
        };
        SinkError::TopicCreate { topic: self.spec.name.to_string(), brokers: self.brokers.clone(), reason, fix }
    }

    fn config_list(&self) -> String {
        if self.spec.config.is_empty() {
            return "(none given: the brokers' defaults)".into();
        }
        let entries: Vec<String> = self.spec.config.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("({})", entries.join(", "))
    }

    /// The `kafka-topics.sh` command that creates the topic by hand. Never holds the password.
    fn command(&self) -> String {
        let spec = self.spec;
        let mut cmd = format!(
            "kafka-topics.sh --bootstrap-server {} --create --topic {} --partitions {}",
            shell_word(&self.brokers),
            shell_word(spec.name),
            spec.partitions
        );
        if spec.replication_factor > 0 {
            cmd.push_str(&format!(" --replication-factor {}", spec.replication_factor));
        }
        for (key, value) in spec.config {
            cmd.push_str(&format!(" --config {}", shell_word(&format!("{key}={value}"))));
        }
        if self.opts.sasl.is_some() {
            cmd.push_str(" --command-config <properties file with your SASL login>");
        }
        cmd
    }
}

enum Fix {
    Retry,
    Wait,
    Manual,
    Partitions,
    Config,
    Name,
    Policy,
}

fn found(md: &Metadata) -> Found {
    // One topic was asked for: the answer holds that one only.
    let Some(topic) = md.topics().first() else { return Found::Missing };
    match topic.error().map(RDKafkaErrorCode::from) {
        None => Found::Exists(topic.partitions().len()),
        // Being created right now: it exists, its partitions follow.
        Some(RDKafkaErrorCode::LeaderNotAvailable) => Found::Exists(0),
        Some(_) => Found::Missing,
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Quotes a word for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-,:=/@+%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(name: &'a str, partitions: i32, rf: i32) -> TopicSpec<'a> {
        TopicSpec { name, partitions, replication_factor: rf, config: &[] }
    }

    #[test]
    fn refuses_invalid_specs_before_connecting() {
        for bad in [spec("", 1, 1), spec("a b", 1, 1), spec("..", 1, 1), spec("t", 0, 1), spec("t", 1, 0), spec("t", 1, -2)] {
            assert!(matches!(check_spec(&bad), Err(SinkError::Config(_))), "{bad:?}");
        }
        let long = "x".repeat(250);
        assert!(check_spec(&spec(&long, 1, 1)).is_err());
        assert!(check_spec(&spec("orders.v1_x-y", 3, 1)).is_ok());
        assert!(check_spec(&spec("t", 1, -1)).is_ok());
    }

    /// The messages of refusals tansu cannot produce (it has no ACLs and accepts any replication
    /// factor): they name the fix and never the password.
    #[test]
    fn refusals_name_the_fix_and_not_the_password() {
        let opts = SinkOptions {
            brokers: vec!["k1:9092".into(), "k2:9092".into()],
            topic: String::new(),
            sasl: Some(crate::Sasl { mechanism: "PLAIN".into(), username: "loader".into(), password: "pw-Secret-77".into() }),
            compression: "none".into(),
            idempotence: None,
            connect_timeout: Duration::from_secs(1),
            librdkafka: Default::default(),
            client_id: "test".into(),
            exactly_once: None,
        };
        let config = [("cleanup.policy", "compact")];
        let spec = TopicSpec { name: "orders", partitions: 6, replication_factor: 3, config: &config };
        let metadata: MetadataClient = opts.client_config().create_with_context(Errors::default()).expect("client");
        let c = Creation { opts: &opts, spec: &spec, config: opts.client_config(), metadata: Arc::new(metadata), brokers: opts.brokers.join(",") };

        let denied = c.topic_error(RDKafkaErrorCode::TopicAuthorizationFailed);
        assert!(matches!(denied, SinkError::TopicCreateDenied { .. }), "{denied:?}");
        let text = denied.to_string();
        assert!(text.contains("user 'loader'") && text.contains("CREATE"), "{text}");
        assert!(text.contains("`kafka-topics.sh --bootstrap-server k1:9092,k2:9092 --create --topic orders --partitions 6 --replication-factor 3 --config cleanup.policy=compact --command-config <properties file with your SASL login>`"), "{text}");

        let rf = c.topic_error(RDKafkaErrorCode::InvalidReplicationFactor);
        assert!(rf.to_string().contains("[target] replication_factor"), "{rf}");
        let timeout = c.request_error(&KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut));
        assert!(timeout.to_string().contains("connect_timeout_seconds"), "{timeout}");

        for e in [denied, rf, timeout, c.topic_error(RDKafkaErrorCode::InvalidConfig), c.topic_error(RDKafkaErrorCode::PolicyViolation)] {
            assert!(!e.to_string().contains("pw-Secret-77") && !format!("{e:?}").contains("pw-Secret-77"), "{e:?}");
        }
    }

    #[test]
    fn quotes_shell_words_only_when_needed() {
        assert_eq!(shell_word("host:9092,other:9092"), "host:9092,other:9092");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
