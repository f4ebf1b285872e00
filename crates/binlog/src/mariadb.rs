//! MariaDB's own events, which mysql_common does not parse (types 160 and up).
//!
//! Bodies as `Event::data()` gives them: after the 19-byte header, without the checksum.

use std::fmt;

use crate::error::{DecodeError, Reason};

/// Reads fixed-size little-endian fields off an event body.
struct Body<'a> {
    event: &'static str,
    data: &'a [u8],
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let Some((head, tail)) = self.data.split_at_checked(n) else {
            return Err(DecodeError::Event {
                event: self.event,
                reason: Reason::Truncated { needed: n, available: self.data.len() },
            });
        };
        self.data = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }
}

/// MariaDB GTID event (type 162), which starts every transaction (it replaces `BEGIN`).
///
/// The GTID's server id is the event header's `server_id`; see [`MariadbGtid::gtid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MariadbGtid {
    pub seq_no: u64,
    pub domain_id: u32,
    pub flags: u8,
    /// Present when [`FL_GROUP_COMMIT_ID`](Self::FL_GROUP_COMMIT_ID) is set.
    pub commit_id: Option<u64>,
}

impl MariadbGtid {
    pub const EVENT_TYPE: u8 = 162;
    /// The transaction is a single statement with no BEGIN/COMMIT (DDL, non-transactional).
    pub const FL_STANDALONE: u8 = 1;
    /// A group commit id follows the flags.
    pub const FL_GROUP_COMMIT_ID: u8 = 2;
    pub const FL_TRANSACTIONAL: u8 = 4;
    pub const FL_ALLOW_PARALLEL: u8 = 8;
    pub const FL_WAITED: u8 = 16;
    pub const FL_DDL: u8 = 32;

    /// Parses a GTID event body: seq_no u64, domain_id u32, flags u8, then the commit id u64 if
    /// flagged; anything after that (XA data, padding) is ignored.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut body = Body { event: "MariaDB GTID", data: body };
        let seq_no = body.u64()?;
        let domain_id = body.u32()?;
        let flags = body.u8()?;
        let commit_id =
            if flags & Self::FL_GROUP_COMMIT_ID != 0 { Some(body.u64()?) } else { None };
        Ok(Self { seq_no, domain_id, flags, commit_id })
    }

    /// The GTID `domain-server-seq`, given the event header's `server_id`.
    pub fn gtid(&self, server_id: u32) -> MariadbGtidEntry {
        MariadbGtidEntry { domain_id: self.domain_id, server_id, seq_no: self.seq_no }
    }

    pub fn is_standalone(&self) -> bool {
        self.flags & Self::FL_STANDALONE != 0
    }

    pub fn is_ddl(&self) -> bool {
        self.flags & Self::FL_DDL != 0
    }
}

/// One MariaDB GTID, displayed as `domain-server-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MariadbGtidEntry {
    pub domain_id: u32,
    pub server_id: u32,
    pub seq_no: u64,
}

impl fmt::Display for MariadbGtidEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain_id, self.server_id, self.seq_no)
    }
}

/// MariaDB GTID_LIST event (type 163): the binlog state at the start of a file. Displays as
/// `d-s-n,d-s-n` (empty for an empty list).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MariadbGtidList {
    /// The top 4 bits of the count field.
    pub flags: u8,
    pub gtids: Vec<MariadbGtidEntry>,
}

impl MariadbGtidList {
    pub const EVENT_TYPE: u8 = 163;
    const ENTRY_LEN: usize = 16;

    /// Parses a GTID_LIST body: u32 whose low 28 bits are the count (top 4 bits flags), then per
    /// entry domain_id u32, server_id u32, seq_no u64.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut body = Body { event: "MariaDB GTID_LIST", data: body };
        let head = body.u32()?;
        let count = (head & 0x0FFF_FFFF) as usize;
        let flags = (head >> 28) as u8;
        // Check the whole length before allocating for `count` entries.
        let needed = count * Self::ENTRY_LEN;
        if body.data.len() < needed {
            return Err(DecodeError::Event {
                event: body.event,
                reason: Reason::Truncated { needed, available: body.data.len() },
            });
        }
        let mut gtids = Vec::with_capacity(count);
        for _ in 0..count {
            let domain_id = body.u32()?;
            let server_id = body.u32()?;
            let seq_no = body.u64()?;
            gtids.push(MariadbGtidEntry { domain_id, server_id, seq_no });
        }
        Ok(Self { flags, gtids })
    }
}

impl fmt::Display for MariadbGtidList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, gtid) in self.gtids.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{gtid}")?;
        }
        Ok(())
    }
}

/// MariaDB BINLOG_CHECKPOINT event (type 161): the oldest binlog file still needed for crash
/// recovery.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BinlogCheckpoint {
    pub file: String,
}

impl BinlogCheckpoint {
    pub const EVENT_TYPE: u8 = 161;

    /// Parses a BINLOG_CHECKPOINT body: name length u32, then the name.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut body = Body { event: "MariaDB BINLOG_CHECKPOINT", data: body };
        let len = body.u32()?;
        let event = body.event;
        let name = usize::try_from(len)
            .ok()
            .filter(|&n| n <= body.data.len())
            .ok_or(DecodeError::Event {
                event,
                reason: Reason::BadLength { length: u64::from(len), available: body.data.len() },
            })
            .and_then(|n| body.take(n))?;
        let file = std::str::from_utf8(name)
            .map_err(|_| DecodeError::Event {
                event,
                reason: Reason::InvalidValue("file name is not UTF-8"),
            })?
            .to_owned();
        Ok(Self { file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_dml() {
        // seq_no 6, domain 0, flags 0x0c (transactional + allow parallel), then padding.
        let mut body = vec![6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0C];
        body.extend_from_slice(&[0; 6]);
        let gtid = MariadbGtid::parse(&body).unwrap();
        assert_eq!(gtid, MariadbGtid { seq_no: 6, domain_id: 0, flags: 0x0C, commit_id: None });
        assert_eq!(gtid.gtid(21).to_string(), "0-21-6");
        assert!(!gtid.is_ddl() && !gtid.is_standalone());
    }

    #[test]
    fn gtid_with_commit_id() {
        // seq_no 0x0102, domain 7, flags FL_GROUP_COMMIT_ID | FL_DDL, commit id 99.
        let body = [2, 1, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0x22, 99, 0, 0, 0, 0, 0, 0, 0];
        let gtid = MariadbGtid::parse(&body).unwrap();
        assert_eq!(
            gtid,
            MariadbGtid { seq_no: 0x102, domain_id: 7, flags: 0x22, commit_id: Some(99) }
        );
        assert!(gtid.is_ddl());
        for cut in 0..body.len() {
            assert!(MariadbGtid::parse(&body[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn gtid_list() {
        // Count 2 with flag bits 0x1 in the top nibble; entries 0-1-100 and 5-21-7.
        let mut body = vec![2, 0, 0, 0x10];
        body.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0]);
        body.extend_from_slice(&[5, 0, 0, 0, 21, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
        let list = MariadbGtidList::parse(&body).unwrap();
        assert_eq!(list.flags, 1);
        assert_eq!(list.to_string(), "0-1-100,5-21-7");
        for cut in 0..body.len() {
            assert!(MariadbGtidList::parse(&body[..cut]).is_err(), "cut {cut}");
        }
        assert_eq!(MariadbGtidList::parse(&[0, 0, 0, 0]).unwrap().to_string(), "");
        // A huge count with no entries is an error, not an allocation.
        assert!(MariadbGtidList::parse(&[0xFF, 0xFF, 0xFF, 0x0F]).is_err());
    }

    #[test]
    fn checkpoint() {
        let mut body = vec![16, 0, 0, 0];
        body.extend_from_slice(b"mysql-bin.000001");
        assert_eq!(BinlogCheckpoint::parse(&body).unwrap().file, "mysql-bin.000001");
        for cut in 0..body.len() {
            assert!(BinlogCheckpoint::parse(&body[..cut]).is_err(), "cut {cut}");
        }
        assert!(BinlogCheckpoint::parse(&[0xFF, 0xFF, 0xFF, 0xFF, b'a']).is_err());
        assert!(BinlogCheckpoint::parse(&[1, 0, 0, 0, 0xFF]).is_err());
    }
}
