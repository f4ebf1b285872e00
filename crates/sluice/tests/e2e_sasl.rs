//! SASL/SCRAM (SHA-512, what `tansu user create` provisions) against a real broker with
//! authentication on: the right login delivers
//! records; a wrong password stops sluice with one line naming the cause and the fix, without
//! ever printing the password.

mod common;

use std::time::Duration;

use common::*;

const SECRET: &str = "scram-Pa55-4417";

fn with_sasl(config: String, user: &str, password: &str, mechanism: &str) -> String {
    config.replace(
        "partition_policy",
        &format!("sasl_username = \"{user}\"\nsasl_password = \"{password}\"\nsasl_mechanism = \"{mechanism}\"\npartition_policy"),
    )
}

#[tokio::test]
async fn scram_login_delivers_and_a_wrong_password_is_named() {
    let mut kafka = TempTansu::start();
    let topic = unique("sasl");
    create_topic(&kafka.brokers(), &topic, 1).await;
    kafka.create_user("sluice", SECRET);
    kafka.restart_with_authentication();

    let s = services();
    let mut c = admin_conn().await;
    let db = unique("sasl");
    use mysql_async::prelude::Queryable;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY)")).await.unwrap();
    let start = binlog_end(&mut c).await;
    c.query_drop(format!("INSERT INTO {db}.t VALUES (1), (2), (3)")).await.unwrap();
    let base = |topic: &str| {
        task_config_for(&s.host, s.port, &s.user, &s.password, &kafka.brokers(), topic, &format!("{db}.t"), &start, "partition0", "")
    };

    // Wrong password: one error line, the fix, no secret.
    let mut wrong = Sluice::start(&with_sasl(base(&topic), "sluice", "not-the-password", "SCRAM-SHA-512"));
    let (code, stderr) = wrong.wait_exit(Duration::from_secs(90));
    assert_ne!(code, 0, "{stderr}");
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("sluice: error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("sasl"), "{}", errors[0]);

    // The right login: records arrive (read back over SASL as well).
    let sluice = Sluice::start(&with_sasl(base(&topic), "sluice", SECRET, "SCRAM-SHA-512"));
    let brokers = kafka.brokers();
    let t = topic.clone();
    let count = tokio::task::spawn_blocking(move || {
        use rdkafka::{consumer::{BaseConsumer, Consumer}, ClientConfig, Offset, TopicPartitionList};
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", unique("sasl-check"))
            .set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", "sluice")
            .set("sasl.password", SECRET)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&t, 0, Offset::Beginning).unwrap();
        consumer.assign(&tpl).unwrap();
        let end = std::time::Instant::now() + Duration::from_secs(90);
        let mut n = 0;
        while n < 3 {
            assert!(std::time::Instant::now() < end, "only {n} records over SASL");
            if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
                n += 1;
            }
        }
        n
    })
    .await
    .unwrap();
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
    assert_eq!(count, 3);
}
