//! The task's durable progress: the last source position whose every record Kafka acknowledged.
//!
//! Stored in an embedded redb database in the task's data directory, written at most once per
//! save interval (and at shutdown), always with a position that ends a transaction. Restarting
//! from it replays at most the transactions after it: records after the checkpoint may be sent
//! twice (at-least-once), and carry the same `id` both times, because the id counter is saved
//! with the position.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use sluice_event::BinlogPosition;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoint");
const KEY: &str = "position";

/// A position to resume from, with what is needed to continue the stream exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub file: String,
    pub offset: u64,
    /// GTID of the last transaction before the position, when the source uses GTIDs.
    pub gtid: Option<String>,
    /// Everything the source had executed at the position (MariaDB per-domain GTIDs, MySQL
    /// executed set), when known: what lets the task resume on another server.
    #[serde(default)]
    pub gtid_set: Option<String>,
    /// The id the next record gets.
    pub next_id: i64,
    /// `host:port` of the source the position belongs to.
    pub source: String,
}

impl Checkpoint {
    pub fn position(&self) -> BinlogPosition {
        BinlogPosition::new(self.file.clone(), self.offset)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the checkpoint store {path} cannot be used: {reason}. Fix: check the permissions and free space of [task] data_dir, or move the damaged file away to restart from the configured position")]
pub struct StoreError {
    path: String,
    reason: String,
}

pub struct CheckpointStore {
    db: Database,
    path: PathBuf,
}

impl CheckpointStore {
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join("checkpoint.redb");
        let err = |reason: String| StoreError { path: path.display().to_string(), reason };
        std::fs::create_dir_all(data_dir).map_err(|e| err(e.to_string()))?;
        let db = Database::create(&path).map_err(|e| err(e.to_string()))?;
        Ok(Self { db, path })
    }

    fn err(&self, reason: impl ToString) -> StoreError {
        StoreError { path: self.path.display().to_string(), reason: reason.to_string() }
    }

    pub fn load(&self) -> Result<Option<Checkpoint>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(TABLE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let Some(bytes) = table.get(KEY).map_err(|e| self.err(e))? else { return Ok(None) };
        serde_json::from_slice(bytes.value()).map(Some).map_err(|e| self.err(format!("unreadable checkpoint: {e}")))
    }

    /// Durably replaces the checkpoint (fsync before returning).
    pub fn save(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(checkpoint).expect("checkpoint serializes");
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(TABLE).map_err(|e| self.err(e))?;
            table.insert(KEY, bytes.as_slice()).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_reloads() {
        let dir = std::env::temp_dir().join(format!("sluice-cp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = CheckpointStore::open(&dir).unwrap();
        assert_eq!(store.load().unwrap(), None);
        let cp = Checkpoint {
            file: "mysql-bin.000002".into(),
            offset: 1234,
            gtid: Some("0-1-9".into()),
            gtid_set: Some("0-1-9".into()),
            next_id: 77,
            source: "h:3306".into(),
        };
        store.save(&cp).unwrap();
        store.save(&Checkpoint { offset: 2000, ..cp.clone() }).unwrap();
        drop(store);
        let store = CheckpointStore::open(&dir).unwrap();
        assert_eq!(store.load().unwrap(), Some(Checkpoint { offset: 2000, ..cp }));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
