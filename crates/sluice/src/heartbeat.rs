//! The heartbeat writer: with `[source] heartbeat_table` set, a row of that table is updated
//! every heartbeat interval, so the binlog always has a recent event and the reported delay
//! stays honest while the application is idle (and shows a stalled stream at once). Without it,
//! the binlog heartbeats the source sends while idle serve the same purpose.

use std::time::Duration;

use sluice_source::{probe, SourceOptions};

/// Writes heartbeats until the returned task is aborted (dropping the guard aborts it).
pub fn spawn(source: SourceOptions, db: String, table: String) -> AbortOnDrop {
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(source.heartbeat.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut conn = None;
        let mut warned = false;
        loop {
            tick.tick().await;
            if conn.is_none() {
                conn = source.connect().await.ok();
            }
            let Some(c) = conn.as_mut() else { continue };
            let problem = match probe::write_heartbeat(c, &source, &db, &table).await {
                Ok(probe::Access::Granted) => {
                    if warned {
                        tracing::info!(table = %format!("{db}.{table}"), "heartbeat writes work again");
                        warned = false;
                    }
                    continue;
                }
                Ok(probe::Access::Denied(message)) => message,
                Err(e) => {
                    conn = None; // reconnect next time
                    e.to_string()
                }
            };
            if !warned {
                tracing::warn!(table = %format!("{db}.{table}"), error = %problem, "cannot write the heartbeat table; the delay falls back to the binlog heartbeat (repeats are muted)");
                warned = true;
            }
        }
    });
    AbortOnDrop(handle)
}

pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
