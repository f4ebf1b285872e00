//! Pure decoding of binlog bytes: TABLE_MAP column metadata, row images, MariaDB's own events,
//! event checksums. No I/O; event framing comes from mysql_common in the source crate.
//!
//! # Decoding rows
//!
//! Once per TABLE_MAP: [`parse_column_metadata`] splits the metadata block, [`build_plan`] turns
//! types, metadata and the schema's signedness into a `Vec<`[`ColumnPlan`]`>`. Per rows event: a
//! [`RowsReader`] over the event's rows part yields one image per
//! [`read_image`](RowsReader::read_image) into a reused `Vec<Value>`; values borrow from the event
//! bytes, only DECIMAL and binary JSON allocate their text. Nothing here panics on malformed
//! input: every failure is a [`DecodeError`] naming the column, its type and the reason.
//!
//! # Wire formats
//!
//! A row image is a null bitmap with one bit per *present* column (`(n_present + 7) / 8` bytes,
//! least significant bit first), then the values of the present, non-null columns in order:
//!
//! | type (code) | value |
//! |---|---|
//! | TINY 1, SHORT 2, INT24 9, LONG 3, LONGLONG 8 | 1/2/3/4/8 bytes little-endian; signedness from the schema |
//! | YEAR 13 | 1 byte: 0 is year 0, else 1900 + byte |
//! | FLOAT 4, DOUBLE 5 | IEEE little-endian |
//! | NEWDECIMAL 246 | 9 digits per 4 bytes big-endian, sign in the inverted top bit (see `decimal`) |
//! | BIT 16 | `bytes + (bits % 8 > 0)` bytes big-endian |
//! | DATE 10 (NEWDATE 14) | 3 bytes little-endian: `year << 9 \| month << 5 \| day` |
//! | TIME 11 | 3 bytes little-endian signed, HHMMSS in decimal |
//! | DATETIME 12 | 8 bytes little-endian, YYYYMMDDHHMMSS in decimal |
//! | TIMESTAMP 7 | 4 bytes little-endian seconds |
//! | TIMESTAMP2 17 | 4 bytes big-endian seconds, then the fraction |
//! | DATETIME2 18 | 5 bytes big-endian minus 2^39: `(year*13+month) << 22 \| day << 17 \| hour << 12 \| minute << 6 \| second`, then the fraction |
//! | TIME2 19 | 3 bytes big-endian minus 2^23 plus fraction; 6 bytes minus 2^47 for fsp 5-6 (see `time2`) |
//! | VARCHAR 15 | 1-byte length if the max length < 256, else 2 bytes LE; then bytes |
//! | STRING 254 (CHAR) | same, max length from the metadata; real type ENUM: 1-2 bytes LE, SET: 1-8 bytes LE |
//! | BLOB 249-252, GEOMETRY 255, VECTOR 242 | metadata = length size (1-4 bytes LE); then bytes |
//! | JSON 245 | metadata = length size; then MySQL binary JSON (see `json`) |
//!
//! The fraction of TIMESTAMP2/DATETIME2 is `(fsp + 1) / 2` bytes big-endian: hundredths (fsp
//! 1-2), ten-thousandths (3-4) or microseconds (5-6).


pub mod column_type;
mod decimal;
mod error;
mod json;
mod json_diff;
mod mariadb;
mod metadata;
mod plan;
mod reader;

pub use error::{DecodeError, Reason};
pub use mariadb::{BinlogCheckpoint, MariadbGtid, MariadbGtidEntry, MariadbGtidList};
pub use metadata::parse_column_metadata;
pub use plan::{build_plan, ColumnPlan, MariadbType};
pub use reader::RowsReader;

/// A MySQL GTID as text: `uuid:gno`, or `uuid:tag:gno` for a tagged GTID (MySQL 8.4+), the
/// UUID in lower-case hex with dashes — as `SELECT @@gtid_executed` and mysqlbinlog print them.
pub fn mysql_gtid_text(sid: &[u8; 16], tag: Option<&str>, gno: u64) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(60);
    for (i, b) in sid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    if let Some(tag) = tag {
        s.push(':');
        s.push_str(tag);
    }
    let _ = write!(s, ":{gno}");
    s
}

/// Whether `crc` (the event's trailing 4 bytes, read little-endian) is the CRC32 of
/// `event_bytes_without_crc` (header and body).
pub fn verify_crc32(event_bytes_without_crc: &[u8], crc: u32) -> bool {
    crc32fast::hash(event_bytes_without_crc) == crc
}

/// Like [`verify_crc32`], but as the server verifies: the header flag `LOG_EVENT_BINLOG_IN_USE_F`
/// (0x1, set on the FORMAT_DESCRIPTION event of a binlog still being written) is cleared before
/// hashing, because the checksum was computed without it. `event` must start with the 19-byte
/// event header; shorter input is hashed as it is.
pub fn verify_event_crc32(event: &[u8], crc: u32) -> bool {
    const FLAGS_OFFSET: usize = 17;
    const LOG_EVENT_BINLOG_IN_USE_F: u8 = 0x1;
    match event.get(FLAGS_OFFSET) {
        Some(&flags) if flags & LOG_EVENT_BINLOG_IN_USE_F != 0 => {
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&event[..FLAGS_OFFSET]);
            hasher.update(&[flags & !LOG_EVENT_BINLOG_IN_USE_F]);
            hasher.update(&event[FLAGS_OFFSET + 1..]);
            hasher.finalize() == crc
        }
        _ => verify_crc32(event, crc),
    }
}

#[cfg(test)]
mod gtid_tests {
    #[test]
    fn gtid_text() {
        let sid = [0x28, 0x1c, 0x62, 0xdc, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0xff];
        assert_eq!(super::mysql_gtid_text(&sid, None, 108156), "281c62dc-0102-0304-0506-0708090a0bff:108156");
        assert_eq!(super::mysql_gtid_text(&sid, Some("tag_1"), 1), "281c62dc-0102-0304-0506-0708090a0bff:tag_1:1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        // The CRC-32 (IEEE) check value of "123456789" is 0xCBF43926.
        assert!(verify_crc32(b"123456789", 0xCBF4_3926));
        assert!(!verify_crc32(b"123456788", 0xCBF4_3926));
        assert!(verify_crc32(b"", 0));
    }

    #[test]
    fn event_crc32_ignores_in_use_flag() {
        let mut event = [0u8; 30];
        event[4] = 15; // FORMAT_DESCRIPTION
        event[20] = 4;
        let crc = crc32fast::hash(&event);
        assert!(verify_event_crc32(&event, crc));
        event[17] |= 0x1;
        assert!(!verify_crc32(&event, crc));
        assert!(verify_event_crc32(&event, crc));
        event[18] = 1;
        assert!(!verify_event_crc32(&event, crc));
        assert!(verify_event_crc32(b"short", crc32fast::hash(b"short")));
    }
}
