//! The pre-check: everything a sync needs from the source and the brokers, checked before the
//! first event is read, each item with its cause and exact fix. `sluice precheck` prints it;
//! `sluice run` runs it first and refuses to start on a failure (unless `--skip-precheck`).
//!
//! Privileges are tested by using them (see `sluice_source::probe`). A check that cannot run
//! because an earlier one failed (no connection, binary logging off) is reported as skipped.

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_sink::{probe_api_versions, KafkaSink, SinkError};
use sluice_source::{
    probe::{self, Access, TableAccess, TableInfo},
    Flavor, ServerInfo, SourceError, TableFilter,
};

use crate::config::{PartitionPolicy, Task};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
    /// Not checked: an earlier check failed.
    Skip,
}

impl Outcome {
    fn tag(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
        }
    }
}

/// One checked item.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub name: &'static str,
    pub outcome: Outcome,
    /// What was found (for a failure: the cause).
    pub detail: String,
    /// The exact fix (SQL, my.cnf line, command), for failures and warnings.
    pub fix: Option<String>,
}

impl Item {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self { name, outcome: Outcome::Pass, detail: detail.into(), fix: None }
    }
    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name, outcome: Outcome::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }
    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name, outcome: Outcome::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }
    fn skip(name: &'static str, why: &str) -> Self {
        Self { name, outcome: Outcome::Skip, detail: format!("not checked: {why}"), fix: None }
    }
    /// A failure whose message is an error's "cause. Fix: fix" line.
    fn fail_from(name: &'static str, error: &impl ToString) -> Self {
        let (detail, fix) = split_fix(&error.to_string());
        Self { name, outcome: Outcome::Fail, detail, fix }
    }

    /// `[FAIL] name: detail. Fix: fix`
    pub fn line(&self) -> String {
        match &self.fix {
            Some(fix) => format!("[{}] {}: {}. Fix: {}", self.outcome.tag(), self.name, self.detail, fix),
            None => format!("[{}] {}: {}", self.outcome.tag(), self.name, self.detail),
        }
    }
}

/// Splits an error line of the form "cause. Fix: fix" (how every sluice error reads).
fn split_fix(message: &str) -> (String, Option<String>) {
    match message.split_once(". Fix: ") {
        Some((detail, fix)) => (detail.to_string(), Some(fix.to_string())),
        None => (message.trim_end_matches('.').to_string(), None),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub task: String,
    pub passed: bool,
    pub items: Vec<Item>,
}

impl Report {
    pub fn failures(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.outcome == Outcome::Fail)
    }

    /// One line for `sluice run` to stop with: every failure, cause and fix.
    pub fn failure_line(&self) -> String {
        let failures: Vec<String> = self.failures().map(|i| i.line().trim_start_matches("[FAIL] ").to_string()).collect();
        format!(
            "pre-check failed ({} of {} checks): {} (run `sluice precheck` for the full report; --skip-precheck starts anyway)",
            failures.len(),
            self.items.len(),
            failures.join(" | ")
        )
    }
}

/// Binlogs kept for less than this get a warning: an outage longer than the retention loses
/// the position for good.
const MIN_RETENTION_SECONDS: u64 = 24 * 3600;
/// How many names a detail lists before "and N more".
const LIST: usize = 8;

/// Runs every check against the task's source and brokers.
pub async fn run(task: &Task) -> Report {
    let mut items = Vec::new();
    source_checks(task, &mut items).await;
    broker_checks(task, &mut items).await;
    let passed = !items.iter().any(|i| i.outcome == Outcome::Fail);
    Report { task: task.name.clone(), passed, items }
}

const SOURCE_ITEMS: [&str; 13] = [
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
];

async fn source_checks(task: &Task, items: &mut Vec<Item>) {
    let opts = &task.source;
    let skip_rest = |items: &mut Vec<Item>, from: usize, why: &str| {
        for name in &SOURCE_ITEMS[from..] {
            if *name != "heartbeat_table" || task.heartbeat_table.is_some() {
                items.push(Item::skip(name, why));
            }
        }
    };
    let mut conn = match opts.connect().await {
        Ok(c) => c,
        Err(e) => {
            items.push(Item::fail_from("source_connection", &e));
            return skip_rest(items, 0, "no source connection");
        }
    };
    let info = match ServerInfo::read(&mut conn, opts).await {
        Ok(i) => i,
        Err(e) => {
            items.push(Item::fail_from("source_connection", &e));
            return skip_rest(items, 0, "no source connection");
        }
    };
    let account = probe::current_account(&mut conn, opts).await.unwrap_or_else(|_| format!("'{}'@'%'", opts.user));
    items.push(Item::pass("source_connection", format!("logged in to {} as {account}", opts.addr())));
    items.push(version_item(&info.version));

    // REPLICATION CLIENT and REPLICATION SLAVE, by using them.
    let client = probe::probe_replication_client(&mut conn, opts).await;
    let slave = probe::probe_replication_slave(opts).await;
    let mut missing = Vec::new();
    let mut why = Vec::new();
    let mut unknown = Vec::new();
    for (privilege, result, test) in [
        ("REPLICATION SLAVE", &slave, "a binlog request"),
        ("REPLICATION CLIENT", &client, "SHOW MASTER STATUS"),
    ] {
        match result {
            Ok(Access::Granted) => {}
            Ok(Access::Denied(message)) => {
                missing.push(privilege);
                why.push(format!("{test} was refused: {message}"));
            }
            Err(e) => unknown.push(format!("{privilege}: {e}")),
        }
    }
    items.push(if !missing.is_empty() {
        let list = missing.join(", ");
        Item::fail(
            "privileges",
            format!("MySQL user '{}' lacks a privilege: {list} ({})", opts.user, why.join("; ")),
            format!("run on the source: GRANT {list} ON *.* TO {account};"),
        )
    } else if !unknown.is_empty() {
        Item::warn(
            "privileges",
            format!("could not test every replication privilege ({})", unknown.join("; ")),
            format!("make sure of: GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO {account};"),
        )
    } else {
        Item::pass("privileges", "REPLICATION SLAVE and REPLICATION CLIENT work")
    });

    // Binlog settings, each with the same wording `sluice run` would stop with.
    if info.log_bin {
        items.push(Item::pass("log_bin", "ON"));
        items.push(match info.binlog_format.as_str() {
            "ROW" => Item::pass("binlog_format", "ROW"),
            found => Item::fail_from("binlog_format", &SourceError::BinlogFormat { found: found.into() }),
        });
        items.push(match info.binlog_row_image.as_str() {
            "FULL" => Item::pass("binlog_row_image", "FULL"),
            "" => Item::pass("binlog_row_image", "not a variable on this server: rows are always logged in full"),
            found => Item::fail_from("binlog_row_image", &SourceError::RowImage { found: found.into() }),
        });
    } else {
        items.push(Item::fail_from("log_bin", &SourceError::BinlogDisabled));
        items.push(Item::skip("binlog_format", "binary logging is off"));
        items.push(Item::skip("binlog_row_image", "binary logging is off"));
    }

    items.push(server_id_item(task, &info, probe::replicas(&mut conn, opts).await.ok().flatten()));

    items.push(if !info.log_bin {
        Item::skip("binlog_retention", "binary logging is off")
    } else {
        match probe::binlog_retention(&mut conn, opts).await {
            Ok(r) => retention_item(r, &info),
            Err(e) => Item::warn("binlog_retention", format!("could not read it: {e}"), "check expire_logs_days / binlog_expire_logs_seconds on the source by hand"),
        }
    });

    items.push(if !info.log_bin {
        Item::skip("binlog_position", "binary logging is off")
    } else {
        position_item(task, probe::binary_logs(&mut conn, opts).await)
    });

    let tables = match probe::list_tables(&mut conn, opts).await {
        Ok(t) => t,
        Err(e) => {
            items.push(Item::fail_from("sync_objects", &e));
            return skip_rest(items, 9, "the table list could not be read");
        }
    };
    object_items(task, &mut conn, &tables, &account, items).await;

    if let Some((db, table)) = &task.heartbeat_table {
        let name = format!("{db}.{table}");
        items.push(match probe::write_heartbeat(&mut conn, opts, db, table).await {
            Ok(Access::Granted) => Item::pass("heartbeat_table", format!("{name} is writable: the delay is measured from its rows while the source is idle")),
            Ok(Access::Denied(message)) => Item::warn(
                "heartbeat_table",
                format!("cannot write {name} ({message}); the delay falls back to the binlog heartbeat"),
                format!("run on the source: {}; GRANT INSERT, UPDATE ON {}.{} TO {account};", probe::heartbeat_table_ddl(db, table), probe::quote_ident(db), probe::quote_ident(table)),
            ),
            Err(e) => Item::warn("heartbeat_table", format!("cannot write {name} ({e}); the delay falls back to the binlog heartbeat"), probe::heartbeat_table_ddl(db, table)),
        });
    }
}

/// Whether the position the task would start from (its checkpoint, else `start_position`) is
/// still on the source.
fn position_item(task: &Task, logs: Result<Option<Vec<(String, u64)>>, SourceError>) -> Item {
    const NAME: &str = "binlog_position";
    // Only read an existing checkpoint: the pre-check must not create the task's data.
    let saved = if task.data_dir.join("checkpoint.redb").exists() {
        match crate::checkpoint::CheckpointStore::open(&task.data_dir).and_then(|s| s.load()) {
            // A checkpoint of another server resumes by its GTID state, if it has one.
            Ok(Some(cp)) if cp.source != task.source.addr() => {
                return match cp.gtid_set {
                    Some(set) => Item::pass(NAME, format!("the checkpoint is from {}; the task resumes here by GTID ({set})", cp.source)),
                    None => Item::fail(
                        NAME,
                        format!("the task's checkpoint belongs to the source {}, not to {}, and carries no GTID state", cp.source, task.source.addr()),
                        format!("point [source] back at {}, or give this task a new data_dir (or name) to start afresh", cp.source),
                    ),
                };
            }
            Ok(cp) => cp.map(|cp| (cp.position(), "the checkpoint")),
            // A running task holds the store open.
            Err(_) => return Item::pass(NAME, "the checkpoint is in use (the task is running)"),
        }
    } else {
        None
    };
    let Some((position, what)) = saved.or_else(|| task.start_position.clone().map(|p| (p, "start_position"))) else {
        return Item::pass(NAME, "no checkpoint and no start_position: the task starts at the current binlog end");
    };
    let logs = match logs {
        Ok(Some(logs)) => logs,
        Ok(None) => return Item::skip(NAME, "this user may not list the binlogs (REPLICATION CLIENT)"),
        Err(e) => return Item::warn(NAME, format!("could not list the binlogs: {e}"), "run SHOW BINARY LOGS on the source by hand"),
    };
    match logs.iter().find(|(file, _)| *file == position.file) {
        Some((_, size)) if position.offset <= *size => Item::pass(NAME, format!("{what} {position} is on the source")),
        found => {
            let oldest = logs.first().map(|(f, _)| f.as_str()).unwrap_or("none");
            let message = match found {
                Some((_, size)) => format!("{what} is past the end of {} ({size} bytes)", position.file),
                None => format!("{what} names a file the source does not have; its oldest binlog is {oldest}"),
            };
            Item::fail_from(NAME, &SourceError::BinlogUnavailable { position: position.to_string(), message })
        }
    }
}

/// Which servers sluice reads: MySQL 5.1 and newer, MariaDB 5.1 and newer (row-based binlog).
fn version_item(version: &str) -> Item {
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    let numbers: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    let (major, minor) = (numbers.first().copied().unwrap_or(0), numbers.get(1).copied().unwrap_or(0));
    let flavor = if mariadb { "MariaDB" } else { "MySQL" };
    // MariaDB 10.x+ announces itself as e.g. "10.11.6-MariaDB"; old 5.5-MariaDB too.
    let newest_tested = if mariadb { 12 } else { 9 };
    if (major, minor) < (5, 1) {
        Item::fail(
            "server_version",
            format!("{flavor} {version} has no row-based binlog (needs 5.1 or newer)"),
            "upgrade the source to MySQL ≥ 5.1 or MariaDB ≥ 5.1 (5.7/8.x or 10.x recommended)",
        )
    } else if major > newest_tested {
        Item::warn(
            "server_version",
            format!("{flavor} {version} is newer than the versions sluice was tested with"),
            "run a short test sync first; report any decoding error",
        )
    } else {
        Item::pass("server_version", format!("{flavor} {version}"))
    }
}

fn server_id_item(task: &Task, info: &ServerInfo, replicas: Option<Vec<(u32, String)>>) -> Item {
    let ours = task.source.server_id;
    if info.server_id == 0 {
        return Item::fail(
            "server_id",
            "the source's own server_id is 0, so it refuses replicas",
            "add `server_id = 1` (any value no other server uses) under [mysqld] in the source's my.cnf and restart it",
        );
    }
    if ours == info.server_id {
        return Item::fail_from("server_id", &SourceError::BadServerId { source_id: info.server_id });
    }
    let clash = replicas.as_ref().and_then(|r| r.iter().find(|(id, _)| *id == ours));
    match (clash, replicas.is_some()) {
        (Some((_, host)), _) => Item::warn(
            "server_id",
            format!(
                "a replica with server_id {ours} is already registered (host '{host}'): if it is not an earlier run of this task, starting would disconnect it"
            ),
            "set [source] server_id to a value no other replica or server uses",
        ),
        (None, true) => Item::pass("server_id", format!("ours {ours}, the source's {}; no registered replica uses ours", info.server_id)),
        (None, false) => Item::pass(
            "server_id",
            format!("ours {ours}, the source's {} (this user may not list other replicas)", info.server_id),
        ),
    }
}

fn retention_item(seconds: Option<u64>, info: &ServerInfo) -> Item {
    let Some(s) = seconds else {
        return Item::pass("binlog_retention", "binlogs are never purged automatically");
    };
    let human = if s % 86_400 == 0 { format!("{} days", s / 86_400) } else { format!("{:.1} hours", s as f64 / 3600.0) };
    if s >= MIN_RETENTION_SECONDS {
        return Item::pass("binlog_retention", format!("binlogs are kept {human}"));
    }
    let seconds_var = match info.flavor {
        Flavor::MySql => !info.version.starts_with("5."),
        // binlog_expire_logs_seconds exists from MariaDB 10.6.
        Flavor::MariaDb => {
            let mut it = info.version.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
            (it.next().unwrap_or(0), it.next().unwrap_or(0)) >= (10, 6)
        }
    };
    let fix = if seconds_var {
        "SET GLOBAL binlog_expire_logs_seconds = 604800; and `binlog_expire_logs_seconds = 604800` under [mysqld] in my.cnf (7 days)"
    } else {
        "SET GLOBAL expire_logs_days = 7; and `expire_logs_days = 7` under [mysqld] in my.cnf"
    };
    Item::warn(
        "binlog_retention",
        format!("binlogs are purged after {human}: if sluice is stopped longer than that, its position is lost and the task must be reloaded"),
        fix,
    )
}

/// Lists names, the first few and a count of the rest.
fn some(names: &[String]) -> String {
    match names.len() {
        n if n <= LIST => names.join(", "),
        n => format!("{} and {} more", names[..LIST].join(", "), n - LIST),
    }
}

fn is_exact(pattern: &str) -> bool {
    !pattern.contains(['*', '?'])
}

async fn object_items(task: &Task, conn: &mut mysql_async::Conn, tables: &[TableInfo], account: &str, items: &mut Vec<Item>) {
    let opts = &task.source;
    let mut matched: Vec<&TableInfo> = tables.iter().filter(|t| task.filter.matches(&t.db, &t.table)).collect();
    matched.sort_by(|a, b| (&a.db, &a.table).cmp(&(&b.db, &b.table)));

    // Tables named exactly must exist; patterns that match nothing get a warning (the tables
    // may be created later).
    let mut missing = Vec::new();
    let mut unmatched = Vec::new();
    let mut denied: Vec<(String, String, String)> = Vec::new();
    for pattern in &task.include {
        let (db, table) = pattern.split_once('.').expect("validated db.table");
        if is_exact(pattern) {
            if matched.iter().any(|t| t.db == db && t.table == table) || !task.filter.matches(db, table) {
                continue;
            }
            // information_schema hides tables the user has no privilege on: ask the table.
            match probe::probe_select(conn, opts, db, table).await {
                Ok(TableAccess::Missing) => missing.push(pattern.clone()),
                Ok(TableAccess::Denied(message)) => denied.push((db.into(), table.into(), message)),
                Ok(TableAccess::Readable) | Err(_) => {}
            }
        } else if TableFilter::new(std::slice::from_ref(pattern), &[]).is_ok_and(|f| !matched.iter().any(|t| f.matches(&t.db, &t.table))) {
            unmatched.push(pattern.clone());
        }
    }
    items.push(if !missing.is_empty() {
        let creates: Vec<String> = missing.iter().map(|m| format!("CREATE TABLE {m} (...)")).collect();
        Item::fail(
            "sync_objects",
            format!("sync object{} {} do{} not exist on the source", if missing.len() > 1 { "s" } else { "" }, some(&missing), if missing.len() > 1 { "" } else { "es" }),
            format!("create {} on the source ({}), or remove {} from [objects] include", if missing.len() > 1 { "them" } else { "it" }, some(&creates), if missing.len() > 1 { "them" } else { "it" }),
        )
    } else if matched.is_empty() && denied.is_empty() {
        Item::warn(
            "sync_objects",
            "no table on the source matches [objects] include/exclude: nothing will be captured until one is created",
            "check the [objects] patterns (db.table, * and ? as wildcards)",
        )
    } else if !unmatched.is_empty() {
        Item::warn(
            "sync_objects",
            format!("{} table(s) match, but the pattern(s) {} match none", matched.len(), some(&unmatched)),
            "check those [objects] include patterns",
        )
    } else {
        let names: Vec<String> = matched.iter().map(|t| format!("{}.{}", t.db, t.table)).collect();
        Item::pass("sync_objects", format!("{} table(s): {}", matched.len(), some(&names)))
    });

    // SELECT on each matched table (initial loads and schema reads need it).
    for t in matched.iter().take(task.max_objects) {
        if let Ok(TableAccess::Denied(message)) = probe::probe_select(conn, opts, &t.db, &t.table).await {
            denied.push((t.db.clone(), t.table.clone(), message));
        }
    }
    items.push(if denied.is_empty() {
        Item::pass("select_privilege", format!("SELECT works on all {} matched table(s)", matched.len()))
    } else {
        // One GRANT per database when every matched table there is refused, else per table.
        let mut by_db: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (db, table, _) in &denied {
            by_db.entry(db).or_default().push(table);
        }
        let grants: Vec<String> = by_db
            .iter()
            .flat_map(|(db, refused)| {
                let visible: Vec<&&TableInfo> = matched.iter().filter(|t| t.db == *db).collect();
                let all = !visible.is_empty()
                    && refused.len() == visible.len()
                    && visible.iter().all(|t| refused.contains(&t.table.as_str()));
                if all {
                    vec![format!("GRANT SELECT ON {}.* TO {account};", probe::quote_ident(db))]
                } else {
                    refused.iter().map(|t| format!("GRANT SELECT ON {}.{} TO {account};", probe::quote_ident(db), probe::quote_ident(t))).collect()
                }
            })
            .collect();
        let names: Vec<String> = denied.iter().map(|(d, t, _)| format!("{d}.{t}")).collect();
        Item::fail(
            "select_privilege",
            format!("MySQL user '{}' lacks SELECT on {} ({})", opts.user, some(&names), denied[0].2),
            format!("run on the source: {}", grants.join(" ")),
        )
    });

    let keyless: Vec<String> = matched.iter().filter(|t| !t.has_key).map(|t| format!("{}.{}", t.db, t.table)).collect();
    items.push(if keyless.is_empty() {
        Item::pass("primary_keys", "every matched table has a primary or unique key")
    } else {
        Item::warn(
            "primary_keys",
            format!(
                "{} has no primary or unique key: its records are keyed by table name only, and a replay after a restart cannot be told from a new change (duplicates possible)",
                some(&keyless)
            ),
            format!("ALTER TABLE {} ADD PRIMARY KEY (<columns>);", keyless[0]),
        )
    });

    items.push(if matched.len() > task.max_objects {
        Item::fail(
            "object_count",
            format!("{} tables match [objects], more than max_objects = {}", matched.len(), task.max_objects),
            "narrow [objects] include/exclude, or raise [objects] max_objects",
        )
    } else {
        Item::pass("object_count", format!("{} of at most {}", matched.len(), task.max_objects))
    });
}

async fn broker_checks(task: &Task, items: &mut Vec<Item>) {
    let sink = &task.sink;
    let brokers = sink.brokers.join(",");
    // Connect like `run` does, but without side effects on a running task: no transactional
    // id (it would fence the running producer), no producer id.
    let mut probe_opts = sink.clone();
    probe_opts.exactly_once = None;
    probe_opts.idempotence = Some(false);
    let (apis, connected) = tokio::join!(probe_api_versions(&sink.brokers, sink.connect_timeout), KafkaSink::connect(&probe_opts));
    // With SASL, a broker that answers the (pre-authentication) ApiVersions probe but with
    // which no session comes up rejected the login, or does not speak SASL on that listener.
    let sasl_problem: Option<Item> = match (&sink.sasl, &connected, &apis) {
        (Some(s), Err(SinkError::Unreachable { reason, .. }), Ok(_)) => Some(Item::fail(
            "sasl",
            format!("the brokers answer, but no SASL session comes up as '{}' ({}): {reason}", s.username, s.mechanism),
            format!("check [target] sasl_username, sasl_password and sasl_mechanism, and that {brokers} is a SASL_PLAINTEXT listener"),
        )),
        (Some(_), Err(e @ SinkError::Config(m)), _) if m.contains("SASL") => Some(Item::fail_from("sasl", e)),
        _ => None,
    };
    let reachable = sasl_problem.is_some() || !matches!(connected, Err(SinkError::Unreachable { .. } | SinkError::Config(_)));

    items.push(match &connected {
        _ if sasl_problem.is_some() => Item::pass("broker_connection", format!("{brokers} answered (before authentication)")),
        Err(e @ (SinkError::Unreachable { .. } | SinkError::Config(_))) => Item::fail_from("broker_connection", e),
        _ => Item::pass("broker_connection", format!("{brokers} answered")),
    });

    items.push(match (&apis, reachable) {
        (Err(_), false) => Item::skip("broker_version", "no broker connection"),
        (Ok(apis), _) => {
            let mut allows = Vec::new();
            allows.push(if apis.supports_idempotence() { "idempotence: yes (InitProducerId)" } else { "idempotence: no" });
            allows.push(if apis.supports_transactions() { "transactions: yes (EndTxn)" } else { "transactions: no" });
            let era = if apis.supports_idempotence() { "Kafka ≥ 0.11 protocol" } else { "Kafka 0.10 protocol" };
            let detail = format!("{era}, {} APIs; {}", apis.0.len(), allows.join(", "));
            if sink.exactly_once.is_some() && !apis.supports_transactions() {
                Item::fail_from("broker_version", &SinkError::NoTransactions { brokers: brokers.clone(), reason: detail })
            } else if sink.idempotence == Some(true) && !apis.supports_idempotence() {
                Item::fail(
                    "broker_version",
                    format!("[target] idempotence = \"on\", but the brokers do not offer it ({detail})"),
                    "set [target] idempotence = \"auto\" (or \"off\"), or upgrade the brokers to Kafka ≥ 0.11",
                )
            } else {
                Item::pass("broker_version", detail)
            }
        }
        (Err(reason), true) => Item::warn(
            "broker_version",
            format!("could not read the brokers' API versions ({reason})"),
            "nothing, if the brokers use TLS; else check that they speak the Kafka protocol (Kafka ≥ 0.10)",
        ),
    });

    items.push(match &connected {
        Ok(k) => {
            let n = k.partitions();
            if n == 1 && task.partition_policy != PartitionPolicy::Partition0 {
                Item::warn(
                    "topic",
                    format!("'{}' exists with 1 partition: partition_policy has nothing to spread over", sink.topic),
                    format!("add partitions (kafka-topics.sh --bootstrap-server {brokers} --alter --topic {} --partitions N), or use partition_policy = \"partition0\"", sink.topic),
                )
            } else {
                Item::pass("topic", format!("'{}' exists with {n} partition{}", sink.topic, if n == 1 { "" } else { "s" }))
            }
        }
        Err(SinkError::TopicMissing { .. }) if task.initial_load.structure && apis.as_ref().is_ok_and(|a| !a.supports_create_topics()) => Item::fail(
            "topic",
            format!("topic '{}' does not exist, and the brokers do not offer CreateTopics: structure init cannot create it", sink.topic),
            format!("kafka-topics.sh --bootstrap-server {brokers} --create --topic {} --partitions {} --replication-factor {}", sink.topic, task.topic_partitions, task.topic_replication_factor),
        ),
        Err(SinkError::TopicMissing { .. }) if task.initial_load.structure => Item::pass(
            "topic",
            format!(
                "'{}' does not exist yet: structure init creates it with {} partition(s), replication factor {}",
                sink.topic, task.topic_partitions, task.topic_replication_factor
            ),
        ),
        Err(e @ SinkError::TopicMissing { .. }) => Item::fail_from("topic", e),
        Err(_) if sasl_problem.is_some() => Item::skip("topic", "no SASL session"),
        Err(_) => Item::skip("topic", "no broker connection"),
    });

    items.push(match (&sink.sasl, &connected) {
        _ if sasl_problem.is_some() => sasl_problem.expect("checked"),
        (None, _) => Item::pass("sasl", "not configured (PLAINTEXT)"),
        (Some(_), Err(e @ SinkError::AuthFailed { .. })) => Item::fail_from("sasl", e),
        (Some(_), Err(SinkError::Unreachable { .. } | SinkError::Config(_))) => Item::skip("sasl", "no broker connection"),
        (Some(s), _) => Item::pass("sasl", format!("{} login as '{}' accepted", s.mechanism, s.username)),
    });
    drop(connected);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(version_item("10.11.6-MariaDB-0+deb12u1-log").outcome, Outcome::Pass);
        assert_eq!(version_item("8.0.34").outcome, Outcome::Pass);
        assert_eq!(version_item("9.7.0").outcome, Outcome::Pass);
        assert_eq!(version_item("5.1.73-log").outcome, Outcome::Pass);
        let old = version_item("5.0.96-community");
        assert_eq!(old.outcome, Outcome::Fail);
        assert!(old.line().contains("no row-based binlog"), "{}", old.line());
        assert!(old.fix.unwrap().contains("upgrade"));
        assert_eq!(version_item("4.1.22").outcome, Outcome::Fail);
        assert_eq!(version_item("13.0.1-MariaDB").outcome, Outcome::Warn);
        assert_eq!(version_item("10.0.0").outcome, Outcome::Warn);
    }

    #[test]
    fn error_lines_split_into_cause_and_fix() {
        let item = Item::fail_from("binlog_format", &SourceError::BinlogFormat { found: "STATEMENT".into() });
        assert_eq!(item.detail, "the source writes binlog_format=STATEMENT, sluice needs ROW");
        assert!(item.fix.as_deref().unwrap().starts_with("SET GLOBAL binlog_format = 'ROW';"));
        assert!(item.line().starts_with("[FAIL] binlog_format: the source writes binlog_format=STATEMENT, sluice needs ROW. Fix: SET GLOBAL"));
    }

    #[test]
    fn retention_thresholds() {
        let info = |version: &str| ServerInfo {
            version: version.into(),
            flavor: if version.contains("MariaDB") { Flavor::MariaDb } else { Flavor::MySql },
            server_id: 1,
            log_bin: true,
            binlog_format: "ROW".into(),
            binlog_row_image: "FULL".into(),
            binlog_row_metadata: "FULL".into(),
            gtid_mode: false,
            lower_case_table_names: 0,
        };
        assert_eq!(retention_item(None, &info("8.0.34")).outcome, Outcome::Pass);
        assert_eq!(retention_item(Some(7 * 86_400), &info("8.0.34")).outcome, Outcome::Pass);
        let short = retention_item(Some(3600), &info("8.0.34"));
        assert_eq!(short.outcome, Outcome::Warn);
        assert!(short.detail.contains("1.0 hours"), "{}", short.detail);
        assert!(short.fix.unwrap().contains("binlog_expire_logs_seconds = 604800"));
        let old = retention_item(Some(86_400 / 2), &info("10.3.39-MariaDB"));
        assert!(old.fix.unwrap().contains("expire_logs_days = 7"));
    }
}
