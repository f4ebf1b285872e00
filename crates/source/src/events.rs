//! Hand parsers for the post-headers sluice reads on the hot path: TABLE_MAP and the rows-event
//! header. mysql_common parses these too, but behind per-call allocations and bit-vectors; these
//! borrow from the event body and fail with an error (never a panic) on short input.

use std::borrow::Cow;

/// Binlog event type codes sluice handles.
pub mod kind {
    pub const QUERY: u8 = 2;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const WRITE_ROWS_V1: u8 = 23;
    pub const UPDATE_ROWS_V1: u8 = 24;
    pub const DELETE_ROWS_V1: u8 = 25;
    pub const HEARTBEAT: u8 = 27;
    pub const WRITE_ROWS: u8 = 30;
    pub const UPDATE_ROWS: u8 = 31;
    pub const DELETE_ROWS: u8 = 32;
    pub const GTID: u8 = 33;
    pub const PARTIAL_UPDATE_ROWS: u8 = 39;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    pub const HEARTBEAT_V2: u8 = 41;
    pub const GTID_TAGGED: u8 = 42;
    pub const MARIADB_GTID: u8 = 162;
    pub const MARIADB_WRITE_ROWS_COMPRESSED_V1: u8 = 169;
    pub const MARIADB_UPDATE_ROWS_COMPRESSED_V1: u8 = 170;
    pub const MARIADB_DELETE_ROWS_COMPRESSED_V1: u8 = 171;
    pub const MARIADB_QUERY_COMPRESSED: u8 = 165;
    pub const MARIADB_WRITE_ROWS_COMPRESSED: u8 = 166;
    pub const MARIADB_DELETE_ROWS_COMPRESSED: u8 = 168;
}

#[derive(Debug, thiserror::Error)]
#[error("truncated {what} event")]
pub struct Truncated {
    pub what: &'static str,
}

struct Cursor<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        if self.buf.len() < n {
            return Err(Truncated { what: self.what });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn uint(&mut self, n: usize) -> Result<u64, Truncated> {
        Ok(self.take(n)?.iter().rev().fold(0, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn lenenc(&mut self) -> Result<u64, Truncated> {
        match self.take(1)?[0] {
            n @ 0..=0xfa => Ok(u64::from(n)),
            0xfc => self.uint(2),
            0xfd => self.uint(3),
            0xfe => self.uint(8),
            _ => Err(Truncated { what: self.what }),
        }
    }
}

/// The parts of a TABLE_MAP event sluice needs.
#[derive(Debug)]
pub struct TableMap<'a> {
    pub table_id: u64,
    pub db: &'a [u8],
    pub table: &'a [u8],
    pub types: &'a [u8],
    pub metadata: &'a [u8],
    pub optional: &'a [u8],
}

impl<'a> TableMap<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, Truncated> {
        let mut c = Cursor { buf: body, what: "TABLE_MAP" };
        let table_id = c.uint(6)?;
        c.take(2)?; // flags
        let db_len = c.take(1)?[0] as usize;
        let db = c.take(db_len)?;
        c.take(1)?;
        let table_len = c.take(1)?[0] as usize;
        let table = c.take(table_len)?;
        c.take(1)?;
        let count = c.lenenc()? as usize;
        let types = c.take(count)?;
        let meta_len = c.lenenc()? as usize;
        let metadata = c.take(meta_len)?;
        c.take(count.div_ceil(8))?; // nullability bitmap
        Ok(Self { table_id, db, table, types, metadata, optional: c.buf })
    }

    pub fn db_name(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.db)
    }

    pub fn table_name(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.table)
    }

    /// Column names from the optional metadata (present with `binlog_row_metadata=FULL`).
    pub fn column_names(&self) -> Option<Vec<Cow<'a, str>>> {
        const COLUMN_NAME: u8 = 4;
        let mut c = Cursor { buf: self.optional, what: "TABLE_MAP optional metadata" };
        while !c.buf.is_empty() {
            let field = c.take(1).ok()?[0];
            let len = c.lenenc().ok()? as usize;
            let value = c.take(len).ok()?;
            if field == COLUMN_NAME {
                let mut names = Vec::with_capacity(self.types.len());
                let mut v = Cursor { buf: value, what: "COLUMN_NAME" };
                while !v.buf.is_empty() {
                    let n = v.lenenc().ok()? as usize;
                    names.push(String::from_utf8_lossy(v.take(n).ok()?));
                }
                return Some(names);
            }
        }
        None
    }
}

/// The header of a rows event and the row images that follow it.
#[derive(Debug)]
pub struct RowsHeader<'a> {
    pub table_id: u64,
    pub columns: usize,
    /// Columns-present bitmap of the before image (UPDATE, DELETE).
    pub before: &'a [u8],
    /// Columns-present bitmap of the after image (WRITE, UPDATE).
    pub after: &'a [u8],
    pub rows: &'a [u8],
}

impl<'a> RowsHeader<'a> {
    /// Parses the header of an event of type `kind` (v1 or v2 WRITE/UPDATE/DELETE_ROWS).
    pub fn parse(kind: u8, body: &'a [u8]) -> Result<Self, Truncated> {
        use self::kind::*;
        let mut c = Cursor { buf: body, what: "rows" };
        let table_id = c.uint(6)?;
        c.take(2)?; // flags
        if matches!(kind, WRITE_ROWS | UPDATE_ROWS | DELETE_ROWS | PARTIAL_UPDATE_ROWS) {
            let extra = c.uint(2)? as usize;
            c.take(extra.saturating_sub(2))?;
        }
        let columns = c.lenenc()? as usize;
        let bitmap = columns.div_ceil(8);
        let (mut before, mut after): (&[u8], &[u8]) = (&[], &[]);
        match kind {
            WRITE_ROWS_V1 | WRITE_ROWS => after = c.take(bitmap)?,
            DELETE_ROWS_V1 | DELETE_ROWS => before = c.take(bitmap)?,
            _ => {
                before = c.take(bitmap)?;
                after = c.take(bitmap)?;
            }
        }
        Ok(Self { table_id, columns, before, after, rows: c.buf })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_map_body() -> Vec<u8> {
        let mut b = vec![0x2a, 0, 0, 0, 0, 0, 1, 0]; // table id 42, flags
        b.extend([4, b's', b'h', b'o', b'p', 0]);
        b.extend([6, b'o', b'r', b'd', b'e', b'r', b's', 0]);
        b.push(2); // two columns
        b.extend([8, 15]); // LONGLONG, VARCHAR
        b.extend([2, 0x40, 0x00]); // metadata: varchar max 64
        b.push(0b10); // nullability
        b.extend([4, 7, 2, b'i', b'd', 3, b'n', b'o', b'w']); // COLUMN_NAME id, now
        b
    }

    #[test]
    fn table_map_parses_names_and_types() {
        let body = table_map_body();
        let tm = TableMap::parse(&body).unwrap();
        assert_eq!(tm.table_id, 42);
        assert_eq!(tm.db_name(), "shop");
        assert_eq!(tm.table_name(), "orders");
        assert_eq!(tm.types, &[8, 15]);
        assert_eq!(tm.metadata, &[0x40, 0]);
        assert_eq!(tm.column_names().unwrap(), vec!["id", "now"]);
    }

    #[test]
    fn table_map_truncated_anywhere_is_an_error() {
        let body = table_map_body();
        // The optional metadata may legitimately end anywhere; everything before it may not.
        let required = body.len() - 9;
        for cut in 0..required {
            assert!(TableMap::parse(&body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn rows_header_v2_update() {
        let mut b = vec![7, 0, 0, 0, 0, 0, 1, 0];
        b.extend([2, 0]); // extra data: just its own length
        b.push(3);
        b.extend([0b111, 0b101]);
        b.extend([0xaa, 0xbb]);
        let h = RowsHeader::parse(kind::UPDATE_ROWS, &b).unwrap();
        assert_eq!((h.table_id, h.columns), (7, 3));
        assert_eq!((h.before, h.after, h.rows), (&[0b111][..], &[0b101][..], &[0xaa, 0xbb][..]));
        for cut in 0..b.len() - 2 {
            assert!(RowsHeader::parse(kind::UPDATE_ROWS, &b[..cut]).is_err());
        }
    }

    #[test]
    fn rows_header_v1_write() {
        let b = [9, 0, 0, 0, 0, 0, 0, 0, 2, 0b11, 0xcc];
        let h = RowsHeader::parse(kind::WRITE_ROWS_V1, &b).unwrap();
        assert_eq!((h.table_id, h.columns, h.before, h.after, h.rows), (9, 2, &[][..], &[0b11][..], &[0xcc][..]));
    }
}
