//! Where a record goes: its Kafka key and partition.
//!
//! The key is `db.table` followed by `:value` for each row-key column (primary key, else the first
//! unique key), so compacted topics keep the latest image per row. DTS hashes with Java's
//! `String.hashCode`; sluice does the same over `db.table` (table policy) or over the key text
//! (primary_key policy), and maps the hash to a partition with a non-negative modulo.

use std::io::Write;

use sluice_event::{RowChange, RowOp, TableSchema, Value};

use crate::config::PartitionPolicy;

/// Writes the record key of a row change into `out` (cleared first).
pub fn row_key(change: &RowChange<'_>, out: &mut Vec<u8>) {
    out.clear();
    write_object_name(change.table, out);
    let image = match change.op {
        RowOp::Delete => change.before,
        _ => change.after,
    };
    if let (Some(key), Some(image)) = (change.table.row_key(), image) {
        for &col in &key.columns {
            out.push(b':');
            if let Some(v) = image.get(col) {
                write_value_text(v, out);
            }
        }
    }
}

fn write_object_name(table: &TableSchema, out: &mut Vec<u8>) {
    out.extend_from_slice(table.db.as_bytes());
    out.push(b'.');
    out.extend_from_slice(table.table.as_bytes());
}

/// The partition of a row change whose key was written by [`row_key`].
pub fn partition(policy: PartitionPolicy, change: &RowChange<'_>, key: &[u8], partitions: i32) -> i32 {
    match policy {
        PartitionPolicy::Partition0 => 0,
        PartitionPolicy::Table => {
            let name_len = change.table.db.len() + 1 + change.table.table.len();
            modulo(java_hash(&key[..name_len]), partitions)
        }
        PartitionPolicy::PrimaryKey => match change.table.row_key() {
            Some(_) => modulo(java_hash(key), partitions),
            None => 0,
        },
    }
}

/// The partition of a DDL statement: its table's partition under the table policy, else 0.
pub fn ddl_partition(policy: PartitionPolicy, db: &str, table: Option<&str>, partitions: i32) -> i32 {
    match (policy, table) {
        (PartitionPolicy::Table, Some(t)) => modulo(java_hash(format!("{db}.{t}").as_bytes()), partitions),
        _ => 0,
    }
}

fn modulo(hash: i32, partitions: i32) -> i32 {
    hash.rem_euclid(partitions.max(1))
}

/// Java's `String.hashCode` over the UTF-16 code units of `bytes` read as UTF-8 (lossily).
pub fn java_hash(bytes: &[u8]) -> i32 {
    let fold = |h: i32, unit: u16| h.wrapping_mul(31).wrapping_add(i32::from(unit));
    if bytes.is_ascii() {
        bytes.iter().fold(0, |h, &b| fold(h, u16::from(b)))
    } else {
        String::from_utf8_lossy(bytes).encode_utf16().fold(0, fold)
    }
}

/// A value as key text: numbers in decimal, strings as their bytes, temporal values in SQL form.
fn write_value_text(v: &Value<'_>, out: &mut Vec<u8>) {
    let _ = match v {
        Value::Null | Value::Absent => Ok(()),
        Value::Int(i) => write!(out, "{i}"),
        Value::UInt(u) => write!(out, "{u}"),
        Value::Float(f) => write!(out, "{f}"),
        Value::Double(d) => write!(out, "{d}"),
        Value::Decimal(d) | Value::Json(d) => out.write_all(d.as_bytes()),
        Value::Bit(b) | Value::Set(b) => write!(out, "{b}"),
        Value::Enum(e) => write!(out, "{e}"),
        Value::Year(y) => write!(out, "{y:04}"),
        Value::Date { year, month, day } => write!(out, "{year:04}-{month:02}-{day:02}"),
        Value::Time { negative, hours, minutes, seconds, micros } => {
            let sign = if *negative { "-" } else { "" };
            write!(out, "{sign}{hours:02}:{minutes:02}:{seconds:02}.{micros:06}")
        }
        Value::DateTime { year, month, day, hour, minute, second, micros } => {
            write!(out, "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{micros:06}")
        }
        Value::Timestamp { secs, micros } => write!(out, "{secs}.{micros:06}"),
        Value::Bytes(b) | Value::Geometry(b) => out.write_all(b),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_event::{ChangeMeta, ColumnSchema, DataType, KeyInfo};

    #[test]
    fn java_hash_matches_java() {
        // Values from Java: "".hashCode() == 0, "a" == 97, "hello" == 99162322, "é" == 233.
        assert_eq!(java_hash(b""), 0);
        assert_eq!(java_hash(b"a"), 97);
        assert_eq!(java_hash(b"hello"), 99162322);
        assert_eq!(java_hash("é".as_bytes()), 233);
        assert_eq!(java_hash("日本".as_bytes()), 26085 * 31 + 26412);
    }

    #[test]
    fn modulo_is_never_negative() {
        assert_eq!(modulo(i32::MIN, 3), i32::MIN.rem_euclid(3));
        assert!((0..3).contains(&modulo(-7, 3)));
        assert_eq!(modulo(5, 0), 0);
    }

    fn table(keys: Vec<KeyInfo>) -> TableSchema {
        TableSchema {
            db: "shop".into(),
            table: "orders".into(),
            columns: vec![ColumnSchema::new("id", DataType::BigInt), ColumnSchema::new("code", DataType::VarChar)],
            keys,
        }
    }

    #[test]
    fn key_and_partitions() {
        let meta = ChangeMeta {
            id: 1,
            source_timestamp: 0,
            file_index: 1,
            offset: 4,
            safe_file_index: 1,
            safe_offset: 4,
            server_id: 1,
            thread_id: None,
            gtid: None,
            server_version: "",
            read_time_ms: 0,
            initial_load: false,
        };
        let keyed = table(vec![KeyInfo { name: "PRIMARY".into(), columns: vec![0, 1] }]);
        let image = [Value::Int(7), Value::Bytes(b"x".as_slice().into())];
        let change = RowChange { meta: &meta, table: &keyed, op: RowOp::Insert, before: None, after: Some(&image) };
        let mut key = Vec::new();
        row_key(&change, &mut key);
        assert_eq!(key, b"shop.orders:7:x");
        assert_eq!(partition(PartitionPolicy::Partition0, &change, &key, 8), 0);
        assert_eq!(partition(PartitionPolicy::Table, &change, &key, 8), java_hash(b"shop.orders").rem_euclid(8));
        assert_eq!(partition(PartitionPolicy::PrimaryKey, &change, &key, 8), java_hash(b"shop.orders:7:x").rem_euclid(8));

        let keyless = table(vec![]);
        let change = RowChange { table: &keyless, ..change };
        row_key(&change, &mut key);
        assert_eq!(key, b"shop.orders");
        assert_eq!(partition(PartitionPolicy::PrimaryKey, &change, &key, 8), 0);
    }
}
