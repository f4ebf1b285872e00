//! `sluice`: streams MySQL/MariaDB row changes into Kafka as DTS Avro records.

mod checkpoint;
mod config;
mod heartbeat;
mod load;
mod pipeline;
mod precheck;
mod routing;
mod server;
mod status;
mod terminal;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "sluice", version, about = "Stream MySQL/MariaDB row changes into Kafka (DTS Avro compatible)")]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a sync task until interrupted (SIGINT/SIGTERM flush what is in flight, then exit).
    Run {
        /// The task file (TOML); see config/example.toml.
        #[arg(long, short)]
        config: PathBuf,
        /// Exit (0) once everything up to the binlog end seen at start-up is in Kafka.
        #[arg(long)]
        stop_at_end: bool,
        /// Decode and encode but send nothing (measures everything before the producer).
        #[arg(long, hide = true)]
        null_sink: bool,
        /// Start even if the pre-check finds a problem (it still runs and reports).
        #[arg(long)]
        skip_precheck: bool,
    },
    /// Check the source and the brokers for everything the task needs: one line per item,
    /// with the cause and the exact fix for each problem. Exits 1 if any check fails.
    Precheck {
        #[arg(long, short)]
        config: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the status of the running task (from its status server, `[status] listen`).
    Status {
        #[arg(long, short)]
        config: PathBuf,
        /// Print the raw JSON of GET /status.
        #[arg(long)]
        json: bool,
    },
    /// Print the task's records from Kafka as JSON lines, decoded (Ctrl-C to stop).
    Tail {
        #[arg(long, short)]
        config: PathBuf,
        /// Start at the beginning of every partition instead of the end.
        #[arg(long)]
        from_beginning: bool,
        /// Stop after this many records.
        #[arg(long)]
        max: Option<u64>,
    },
    /// Check a task file and print the validated settings (secrets hidden).
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let format = cli.log_format;
    let result = match cli.command {
        Command::Run { config, stop_at_end, null_sink, skip_precheck } => {
            config::Task::load(&config).map_err(|e| e.to_string()).and_then(|task| {
                let runtime = runtime()?;
                runtime.block_on(run(&task, stop_at_end, null_sink, skip_precheck))
            })
        }
        Command::Precheck { config, json } => config::Task::load(&config)
            .map_err(|e| e.to_string())
            .and_then(|task| runtime()?.block_on(precheck_command(&task, json))),
        Command::Status { config, json } => config::Task::load(&config)
            .map_err(|e| e.to_string())
            .and_then(|task| runtime()?.block_on(status_command(&task, json))),
        Command::Tail { config, from_beginning, max } => {
            config::Task::load(&config).map_err(|e| e.to_string()).and_then(|task| tail(&task, from_beginning, max))
        }
        Command::CheckConfig { config } => config::Task::load(&config).map(|t| println!("{t:#?}")).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            match format {
                LogFormat::Json => tracing::error!("{message}"),
                LogFormat::Human => eprintln!("sluice: error: {message}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// `sluice run`: status server, pre-check, heartbeat writer, then the pipeline.
async fn run(task: &config::Task, stop_at_end: bool, null_sink: bool, skip_precheck: bool) -> Result<(), String> {
    use std::sync::Arc;
    let shutdown = shutdown_signal()?;
    let heartbeat = match &task.heartbeat_table {
        Some((db, table)) => format!("heartbeat table {db}.{table}"),
        None => "binlog heartbeat".to_string(),
    };
    let status = Arc::new(status::Status::new(&task.name, &task.source.addr(), heartbeat));
    let _sampler = status::spawn_sampler(status.clone());
    if let Some(listener) = server::bind(task.status).await? {
        server::spawn(listener, status.clone());
    }
    status.set_state(status::State::Prechecking);
    let report = precheck::run(task).await;
    for item in &report.items {
        match item.outcome {
            precheck::Outcome::Fail => tracing::error!("pre-check {}", item.line()),
            precheck::Outcome::Warn => tracing::warn!("pre-check {}", item.line()),
            _ => tracing::info!("pre-check {}", item.line()),
        }
    }
    if !report.passed {
        let line = report.failure_line();
        if !skip_precheck {
            status.fail(&line);
            return Err(line);
        }
        tracing::warn!("starting despite the failed pre-check (--skip-precheck)");
    }
    status.set_state(status::State::Starting);
    let _heartbeat = task.heartbeat_table.clone().map(|(db, table)| heartbeat::spawn(task.source.clone(), db, table));
    let options = pipeline::RunOptions { stop_at_end, null_sink, status: status.clone() };
    match pipeline::run(task, options, shutdown).await {
        Ok(_) => {
            status.set_state(status::State::Stopped);
            Ok(())
        }
        Err(e) => {
            status.fail(&e.to_string());
            Err(e.to_string())
        }
    }
}

/// `sluice precheck`: the report on stdout, one line per item (or JSON); exit 1 on a failure.
async fn precheck_command(task: &config::Task, json: bool) -> Result<(), String> {
    let report = precheck::run(task).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
    } else {
        for item in &report.items {
            println!("{}", item.line());
        }
        let count = |o| report.items.iter().filter(|i| i.outcome == o).count();
        use precheck::Outcome::*;
        println!(
            "pre-check of task '{}': {} ok, {} warning(s), {} failure(s), {} skipped",
            task.name,
            count(Pass),
            count(Warn),
            count(Fail),
            count(Skip)
        );
    }
    match report.passed {
        true => Ok(()),
        false => Err(report.failure_line()),
    }
}

/// `sluice status`: asks the running task's status server.
async fn status_command(task: &config::Task, json: bool) -> Result<(), String> {
    let addr = task
        .status
        .addr()
        .ok_or("the status server of this task is off ([status] listen = \"off\"). Fix: set [status] listen and restart the task")?;
    let (code, body) = server::http_get(addr, "/status", std::time::Duration::from_secs(5)).await.map_err(|e| {
        format!("no sluice task answers at http://{addr}/status ({e}). Fix: start the task (sluice run --config ...), or check [status] listen")
    })?;
    if code != 200 {
        return Err(format!("http://{addr}/status answered HTTP {code}, not a sluice status"));
    }
    let snap: status::Snapshot =
        serde_json::from_str(&body).map_err(|e| format!("http://{addr}/status did not answer with a sluice status ({e})"))?;
    if snap.task != task.name {
        return Err(format!(
            "the status server at {addr} belongs to task '{}', not '{}'. Fix: give each task its own [status] listen address",
            snap.task, task.name
        ));
    }
    if json {
        println!("{body}");
    } else {
        print!("{}", status::human(&snap));
    }
    Ok(())
}

/// Prints records of the task's topic, one JSON object per line.
fn tail(task: &config::Task, from_beginning: bool, max: Option<u64>) -> Result<(), String> {
    use std::io::Write;
    let tail = sluice_sink::Tail::open(&task.sink, from_beginning).map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    let mut printed = 0;
    while max.is_none_or(|m| printed < m) {
        let Some(record) = tail.next(std::time::Duration::from_millis(500)).map_err(|e| e.to_string())? else {
            continue;
        };
        let value = match sluice_format::dts_avro::decode_to_json(&record.value) {
            Ok(v) => v,
            Err(e) => serde_json::json!({ "undecodable": e.to_string() }),
        };
        let line = serde_json::json!({
            "partition": record.partition,
            "offset": record.offset,
            "key": String::from_utf8_lossy(&record.key),
            "record": value,
        });
        let mut out = stdout.lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return Ok(()); // stdout closed (e.g. piped into head)
        }
        printed += 1;
    }
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| terminal::LogWriter)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on SIGINT or SIGTERM, caught from the moment this is called: a signal during
/// start-up is not the default "terminate at once", the task stops at its first chance, cleanly.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let err = |e: std::io::Error| format!("cannot catch SIGINT/SIGTERM: {e}");
    let mut term = signal(SignalKind::terminate()).map_err(err)?;
    let mut int = signal(SignalKind::interrupt()).map_err(err)?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
