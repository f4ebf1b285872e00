//! Binlog files recorded from real Oracle MySQL 9.7 (see `fixtures/record-mysql.sh` for how each
//! was made), decoded with this crate: what only MySQL writes — GTID and tagged GTID events,
//! TRANSACTION_PAYLOAD (ZSTD) with rows inside, PARTIAL_UPDATE_ROWS with JSON diffs — and the
//! row values in them. mysql_common frames the events and decompresses payloads (as it does in
//! the live stream); TABLE_MAP and rows-event headers are read here by hand.

use std::{borrow::Cow, io::BufReader};

use mysql_common::binlog::{
    consts::BinlogVersion,
    events::{Event, GtidEvent, TransactionPayloadEvent},
    BinlogFile,
};
use sluice_binlog::{build_plan, mysql_gtid_text, parse_column_metadata, ColumnPlan, RowsReader};
use sluice_event::Value;

const GTID: u8 = 33;
const GTID_TAGGED: u8 = 42;
const TABLE_MAP: u8 = 19;
const WRITE_ROWS: u8 = 30;
const UPDATE_ROWS: u8 = 31;
const DELETE_ROWS: u8 = 32;
const PARTIAL_UPDATE_ROWS: u8 = 39;
const TRANSACTION_PAYLOAD: u8 = 40;

/// One event of a fixture, payloads unpacked: its type, body, and whether it came out of a
/// TRANSACTION_PAYLOAD.
struct Ev {
    kind: u8,
    body: Vec<u8>,
    in_payload: bool,
    event: Event,
}

fn events(name: &str) -> Vec<Ev> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut binlog = BinlogFile::new(BinlogVersion::Version4, BufReader::new(file)).unwrap();
    let mut out = Vec::new();
    while let Some(event) = binlog.next() {
        let event = event.unwrap();
        let kind = event.header().event_type_raw();
        if kind == TRANSACTION_PAYLOAD {
            let payload = event.read_event::<TransactionPayloadEvent<'_>>().unwrap().into_owned();
            let mut reader = payload.decompressed().unwrap();
            while let Some(inner) = binlog.reader_mut().read_decompressed(&mut reader).unwrap() {
                out.push(Ev { kind: inner.header().event_type_raw(), body: inner.data().to_vec(), in_payload: true, event: inner });
            }
        }
        out.push(Ev { kind, body: event.data().to_vec(), in_payload: false, event });
    }
    out
}

/// A little-endian integer of `n` bytes at the cursor.
fn uint(b: &mut &[u8], n: usize) -> u64 {
    let (head, rest) = b.split_at(n);
    *b = rest;
    head.iter().rev().fold(0, |acc, &x| acc << 8 | u64::from(x))
}

fn lenenc(b: &mut &[u8]) -> u64 {
    match uint(b, 1) {
        n @ 0..=250 => n,
        252 => uint(b, 2),
        253 => uint(b, 3),
        _ => uint(b, 8),
    }
}

/// A TABLE_MAP body: table id, table name, and the decoding plan (signedness given by the test,
/// which knows the table).
fn table_map(body: &[u8], unsigned: &[bool]) -> (u64, String, Vec<ColumnPlan>) {
    let mut b = body;
    let id = uint(&mut b, 6);
    uint(&mut b, 2);
    let db_len = uint(&mut b, 1) as usize;
    b = &b[db_len + 1..];
    let table_len = uint(&mut b, 1) as usize;
    let table = String::from_utf8(b[..table_len].to_vec()).unwrap();
    b = &b[table_len + 1..];
    let count = lenenc(&mut b) as usize;
    let types = b[..count].to_vec();
    b = &b[count..];
    let meta_len = lenenc(&mut b) as usize;
    let metas = parse_column_metadata(&types, &b[..meta_len]).unwrap();
    let plan = build_plan(&types, &metas, unsigned).unwrap();
    (id, table, plan)
}

/// A v2 rows event: table id, columns-present bitmaps (before, after) and the rows part.
fn rows_header(kind: u8, body: &[u8]) -> (u64, Vec<u8>, Vec<u8>, &[u8]) {
    let mut b = body;
    let id = uint(&mut b, 6);
    uint(&mut b, 2);
    let extra = uint(&mut b, 2) as usize;
    b = &b[extra - 2..];
    let columns = lenenc(&mut b) as usize;
    let n = columns.div_ceil(8);
    let (mut before, mut after) = (Vec::new(), Vec::new());
    match kind {
        WRITE_ROWS => after = uint_bytes(&mut b, n),
        DELETE_ROWS => before = uint_bytes(&mut b, n),
        _ => {
            before = uint_bytes(&mut b, n);
            after = uint_bytes(&mut b, n);
        }
    }
    (id, before, after, b)
}

fn uint_bytes(b: &mut &[u8], n: usize) -> Vec<u8> {
    let (head, rest) = b.split_at(n);
    *b = rest;
    head.to_vec()
}

/// A decoded row change: kind, before, after (owned).
type Change = (u8, Vec<Value<'static>>, Vec<Value<'static>>);

/// Every row change of table `table` in the fixture, decoded.
fn changes(evs: &[Ev], table: &str, unsigned: &[bool]) -> Vec<(Change, bool)> {
    let mut plan: Option<(u64, Vec<ColumnPlan>)> = None;
    let mut out = Vec::new();
    for ev in evs {
        match ev.kind {
            TABLE_MAP => {
                let (id, name, p) = table_map(&ev.body, unsigned);
                if name == table {
                    plan = Some((id, p));
                }
            }
            WRITE_ROWS | UPDATE_ROWS | DELETE_ROWS | PARTIAL_UPDATE_ROWS => {
                let (id, before_bits, after_bits, rows) = rows_header(ev.kind, &ev.body);
                let Some((_, plan)) = plan.as_ref().filter(|(pid, _)| *pid == id) else { continue };
                let mut reader = RowsReader::new(plan, rows);
                loop {
                    let (mut before, mut after) = (Vec::new(), Vec::new());
                    let more = match ev.kind {
                        WRITE_ROWS => reader.read_image(&after_bits, &mut after),
                        DELETE_ROWS => reader.read_image(&before_bits, &mut before),
                        UPDATE_ROWS => reader.read_update(&before_bits, &after_bits, &mut before, &mut after),
                        _ => reader.read_partial_update(&before_bits, &after_bits, &mut before, &mut after),
                    }
                    .unwrap_or_else(|e| panic!("{table}: event type {}: {e}", ev.kind));
                    if !more {
                        break;
                    }
                    let owned = |v: Vec<Value<'_>>| v.into_iter().map(Value::into_owned).collect();
                    out.push(((ev.kind, owned(before), owned(after)), ev.in_payload));
                }
                assert!(reader.is_done());
            }
            _ => {}
        }
    }
    out
}

fn int(v: i64) -> Value<'static> {
    Value::Int(v)
}

fn text(s: &str) -> Value<'static> {
    Value::Bytes(Cow::Owned(s.as_bytes().to_vec()))
}

fn json(s: &str) -> Value<'static> {
    Value::Json(Cow::Owned(s.to_owned()))
}

#[test]
fn gtid_and_tagged_gtid_events() {
    let evs = events("mysql-gtid.binlog");
    let gtids: Vec<(u8, String)> = evs
        .iter()
        .filter(|e| matches!(e.kind, GTID | GTID_TAGGED))
        .map(|e| {
            let g = e.event.read_event::<GtidEvent>().unwrap();
            let tag = g.tag().map(|t| t.as_str().to_owned());
            (e.kind, mysql_gtid_text(&g.sid(), tag.as_deref(), g.gno()))
        })
        .collect();
    assert_eq!(gtids.len(), 5, "{gtids:?}");
    // CREATE DATABASE, CREATE TABLE and the first insert: consecutive untagged GTIDs of the
    // recording server.
    let (uuid, first) = gtids[0].1.rsplit_once(':').unwrap();
    let first: u64 = first.parse().unwrap();
    assert_eq!(uuid.len(), 36);
    for (i, (kind, text)) in gtids[..3].iter().enumerate() {
        assert_eq!((*kind, text.clone()), (GTID, format!("{uuid}:{}", first + i as u64)));
    }
    // SET gtid_next = 'AUTOMATIC:fixture_tag': a tagged GTID event, the tag's first number.
    assert_eq!(gtids[3], (GTID_TAGGED, format!("{uuid}:fixture_tag:1")));
    // SET gtid_next = '11111111-2222-3333-4444-555555555555:other_tag:7'.
    assert_eq!(gtids[4], (GTID_TAGGED, "11111111-2222-3333-4444-555555555555:other_tag:7".to_string()));

    let rows: Vec<Vec<Value<'static>>> = changes(&evs, "g", &[false, false]).into_iter().map(|((_, _, a), _)| a).collect();
    assert_eq!(rows, vec![vec![int(1), text("plain")], vec![int(2), text("tagged")], vec![int(3), text("explicit")]]);
}

#[test]
fn transaction_payload_rows() {
    let evs = events("mysql-compressed.binlog");
    assert_eq!(evs.iter().filter(|e| e.kind == TRANSACTION_PAYLOAD).count(), 2);
    // (id INT, big BIGINT UNSIGNED, d DECIMAL(10,2), t TIME(1), j JSON, s VARCHAR(20))
    let got = changes(&evs, "c", &[false, true, false, false, false, false]);
    let time = |negative, hours, minutes, seconds, micros| Value::Time { negative, hours, minutes, seconds, micros };
    let dec = |s: &str| Value::Decimal(Cow::Owned(s.into()));
    let row1 = vec![int(1), Value::UInt(u64::MAX), dec("-12.50"), time(true, 0, 0, 1, 500_000), json(r#"{"a":[1,2]}"#), text("eins")];
    let mut row1b = row1.clone();
    row1b[5] = text("one");
    let row2 = vec![int(2), Value::UInt(0), dec("0.00"), time(false, 838, 59, 59, 0), Value::Null, text("zwei")];
    let row3 = vec![int(3), Value::UInt(42), dec("1.00"), time(false, 0, 0, 0, 0), json("[]"), text(&"x".repeat(20))];
    let want = vec![
        ((WRITE_ROWS, vec![], row1.clone()), true),
        ((WRITE_ROWS, vec![], row2.clone()), true),
        ((UPDATE_ROWS, row1, row1b), true),
        ((DELETE_ROWS, row2, vec![]), true),
        ((WRITE_ROWS, vec![], row3), true),
    ];
    assert_eq!(got, want);
}

#[test]
fn partial_json_updates() {
    let evs = events("mysql-partial-json.binlog");
    assert_eq!(evs.iter().filter(|e| e.kind == PARTIAL_UPDATE_ROWS).count(), 7);
    // (id INT, j JSON, k JSON, n INT)
    let got = changes(&evs, "p", &[false; 4]);
    let row = |id, j: &str, k: &str, n| vec![int(id), json(j), json(k), int(n)];
    // The documents after each statement, as MySQL's SELECT prints them (without spaces).
    let r1 = [
        row(1, r#"{"a":[1,2,{"b":"x"}],"c":1.5,"zz":null}"#, "[1,2,3]", 0),
        row(1, r#"{"a":[1,2,{"b":"yy"}],"c":1.5,"d":true,"zz":null}"#, "[1,2,3]", 1),
        row(1, r#"{"a":[1,2,{"b":"yy"}],"d":true,"zz":null}"#, "[1,20,3,6]", 1),
        row(1, r#"{"a":[{"deep":[1.25,"two"]},2,{"b":"yy"}],"d":true,"zz":null}"#, "[1,20,3,6]", 1),
        row(1, r#"{"a":[{"deep":[1.25,"two"]},2,{"b":"yy"}],"b":"short","d":true,"ab":"mid","zz":null}"#, "[1,20,3,6]", 1),
        row(
            1,
            r#"{"a":[{"deep":[1.25,"two"]},2,{"b":"yy"}],"b":"short","d":true,"ab":"mid","zz":"now set","key with space":"v"}"#,
            "[1,20,3,6]",
            1,
        ),
    ];
    let r2 = [
        row(2, r#"{"list":["p","q"],"name":"n"}"#, "{}", 0),
        row(2, r#"{"list":["q"],"name":"n"}"#, r#"{"whole":true}"#, 0),
        row(2, r#"{"list":["q"],"name":"n"}"#, r#"{"whole":null}"#, 0),
    ];
    let p = PARTIAL_UPDATE_ROWS;
    let want = vec![
        ((WRITE_ROWS, vec![], r1[0].clone()), false),
        ((WRITE_ROWS, vec![], r2[0].clone()), false),
        ((p, r1[0].clone(), r1[1].clone()), false),
        ((p, r1[1].clone(), r1[2].clone()), false),
        ((p, r1[2].clone(), r1[3].clone()), false),
        ((p, r1[3].clone(), r1[4].clone()), false),
        ((p, r2[0].clone(), r2[1].clone()), false),
        ((p, r1[4].clone(), r1[5].clone()), true),
        ((p, r2[1].clone(), r2[2].clone()), false),
    ];
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "change {i}");
    }
}

/// The PARTIAL_UPDATE_ROWS rows of the fixture cut short at every byte: an error each time,
/// never a panic or a wrong row.
#[test]
fn partial_json_truncated_is_an_error() {
    let evs = events("mysql-partial-json.binlog");
    let mut plan = None;
    let mut checked = 0;
    for ev in &evs {
        if ev.kind == TABLE_MAP {
            plan = Some(table_map(&ev.body, &[false; 4]).2);
        }
        if ev.kind != PARTIAL_UPDATE_ROWS {
            continue;
        }
        let plan = plan.as_ref().unwrap();
        let (_, before_bits, after_bits, rows) = rows_header(ev.kind, &ev.body);
        for cut in 1..rows.len() {
            let mut reader = RowsReader::new(plan, &rows[..cut]);
            let (mut before, mut after) = (Vec::new(), Vec::new());
            let result = reader.read_partial_update(&before_bits, &after_bits, &mut before, &mut after);
            assert!(result.is_err(), "cut at {cut} of {}: {result:?}", rows.len());
            assert!(before.is_empty() && after.is_empty());
            assert_eq!(reader.position(), 0, "an error does not advance");
            checked += 1;
        }
    }
    assert!(checked > 100);
}
