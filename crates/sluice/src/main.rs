//! `sluice`: streams MySQL/MariaDB row changes into Kafka as DTS Avro records.

mod checkpoint;
mod config;
mod pipeline;
mod routing;

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
        Command::Run { config, stop_at_end, null_sink } => config::Task::load(&config).map_err(|e| e.to_string()).and_then(|task| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            let options = pipeline::RunOptions { stop_at_end, null_sink };
            runtime.block_on(pipeline::run(&task, options, shutdown_signal())).map(|_| ()).map_err(|e| e.to_string())
        }),
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
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
