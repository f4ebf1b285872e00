//! `decode_to_json`: the encoder's records read back for people, hand-made records for the
//! branches sluice never writes, and damaged input (every prefix, corrupted and random bytes)
//! that must give errors, never panics.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{json, Value as Json};
use sluice_event::{
    ChangeMeta, ColumnSchema, DataType, DdlChange, KeyInfo, RowChange, RowOp, TableSchema, Value,
};
use sluice_format::dts_avro::{decode_to_json, DecodeError, DecodeErrorKind, DtsAvroEncoder};

// ---------------------------------------------------------------------------------------------
// Fixtures

fn meta() -> ChangeMeta<'static> {
    ChangeMeta {
        id: 1_700_382,
        source_timestamp: 1_696_984_408,
        file_index: 78,
        offset: 72_469,
        safe_file_index: 77,
        safe_offset: 1_024,
        server_id: 5678,
        thread_id: Some(1234),
        gtid: Some("281c62dc-6e5b-11ee-9e7c-00163e0e3d1a:108156"),
        server_version: "8.0.34",
        read_time_ms: 1_696_984_408_050,
        initial_load: false,
    }
}

fn column(name: &str, data_type: DataType) -> ColumnSchema {
    ColumnSchema::new(name, data_type)
}

fn with_charset(mut column: ColumnSchema, charset: &str) -> ColumnSchema {
    column.charset = Some(charset.into());
    column
}

fn with_labels(mut column: ColumnSchema, labels: &[&str]) -> ColumnSchema {
    column.labels = labels.iter().map(|l| l.to_string()).collect();
    column
}

fn with_precision(mut column: ColumnSchema, precision: u32) -> ColumnSchema {
    column.precision = Some(precision);
    column
}

fn bytes(b: &[u8]) -> Value<'_> {
    Value::Bytes(Cow::Borrowed(b))
}

fn encode_row(
    table: &TableSchema,
    op: RowOp,
    before: Option<&[Value<'_>]>,
    after: Option<&[Value<'_>]>,
    meta: &ChangeMeta<'_>,
) -> Vec<u8> {
    let change = RowChange {
        meta,
        table,
        op,
        before,
        after,
    };
    let mut out = Vec::new();
    DtsAvroEncoder::new().encode_row(&change, &mut out);
    out
}

fn encode_ddl(db: &str, table: Option<&str>, sql: &str, meta: &ChangeMeta<'_>) -> Vec<u8> {
    let change = DdlChange {
        meta,
        db,
        table,
        sql,
    };
    let mut out = Vec::new();
    DtsAvroEncoder::new().encode_ddl(&change, &mut out);
    out
}

/// WKB of POINT(1 2), little-endian.
fn point_wkb() -> Vec<u8> {
    let coordinates = [1.0f64.to_le_bytes(), 2.0f64.to_le_bytes()].concat();
    [&[1][..], &1u32.to_le_bytes(), &coordinates].concat()
}

/// A table with a column of every kind, a row using every `Value` variant, and how each value
/// reads in JSON.
fn every_kind() -> (TableSchema, Vec<Value<'static>>, Vec<Json>) {
    use DataType as T;
    let doc = r#"{"k": [1, "two"]}"#;
    let abc = ["a", "b", "c"];
    let shape = [&[0, 0, 0, 0][..], &point_wkb()].concat();
    #[rustfmt::skip]
    let cases: Vec<(ColumnSchema, Value<'static>, Json)> = vec![
        (column("id", T::BigInt), Value::UInt(u64::MAX), json!(18_446_744_073_709_551_615_u64)),
        (column("tiny", T::TinyInt), Value::Int(-128), json!(-128)),
        (column("big", T::BigInt), Value::Int(i64::MIN), json!(i64::MIN)),
        (with_precision(column("bits", T::Bit), 12), Value::Bit(0xA05), json!(2565)),
        (column("price", T::Decimal), Value::Decimal("1050.00".into()), json!("1050.00")),
        (column("real", T::Float), Value::Float(1.1), json!(1.1)),
        (column("double", T::Double), Value::Double(-2.5e-300), json!(-2.5e-300)),
        (column("ts", T::Timestamp), Value::Timestamp { secs: 1_618_239_451, micros: 123_456 },
            json!({"timestamp": 1_618_239_451, "micros": 123_456})),
        (column("dt", T::DateTime),
            Value::DateTime { year: 2024, month: 2, day: 29, hour: 23, minute: 59, second: 58, micros: 123_000 },
            json!("2024-02-29 23:59:58.123000")),
        (column("day", T::Date), Value::Date { year: 2024, month: 1, day: 31 }, json!("2024-01-31")),
        (column("zero_day", T::Date), Value::Date { year: 0, month: 2, day: 0 }, json!("0000-02-00")),
        (column("neg_time", T::Time),
            Value::Time { negative: true, hours: 1, minutes: 2, seconds: 3, micros: 500_000 },
            json!("-01:02:03.500000")),
        (column("long_time", T::Time),
            Value::Time { negative: false, hours: 838, minutes: 59, seconds: 59, micros: 0 },
            json!("838:59:59.000000")),
        (column("y", T::Year), Value::Year(2024), json!("2024")),
        (with_charset(column("name", T::VarChar), "utf8mb4"), bytes("héllo".as_bytes()), json!("héllo")),
        // Not UTF-8: shown with replacement characters.
        (with_charset(column("code", T::Char), "latin1"), bytes(b"\xE9t\xE9"), json!("\u{FFFD}t\u{FFFD}")),
        (column("bin", T::Binary), bytes(&[0, 255]), json!("0x00ff")),
        (column("vbin", T::VarBinary), bytes(b""), json!("0x")),
        (with_charset(column("body", T::Text), "utf8mb4"), bytes(b"some text"), json!({"type": "TEXT", "value": "some text"})),
        (column("blob", T::Blob), bytes(&[1, 2, 0xAB]), json!({"type": "BLOB", "value": "0x0102ab"})),
        (with_labels(column("mood", T::Enum), &abc), Value::Enum(2), json!("b")),
        (with_labels(column("flags", T::Set), &abc), Value::Set(0b101), json!("a,c")),
        (column("doc", T::Json), Value::Json(doc.into()), json!(doc)),
        (column("shape", T::Geometry), Value::Geometry(shape.into()),
            json!({"type": "POINT", "wkb": "0x0101000000000000000000f03f0000000000000040"})),
        (column("nothing", T::Int), Value::Null, Json::Null),
        (column("missing", T::LongBlob), Value::Absent, json!("<none>")),
    ];
    let mut table = TableSchema {
        db: "shop".into(),
        table: "orders".into(),
        columns: Vec::new(),
        keys: vec![KeyInfo {
            name: "PRIMARY".into(),
            columns: vec![0],
        }],
    };
    let (mut row, mut rendered) = (Vec::new(), Vec::new());
    for (column, value, json) in cases {
        table.columns.push(column);
        row.push(value);
        rendered.push(json);
    }
    (table, row, rendered)
}

/// `fields` as the decoder shows it.
fn fields_json(table: &TableSchema) -> Json {
    let numbers: Vec<Json> = table
        .columns
        .iter()
        .map(|c| {
            let number = match c.data_type {
                DataType::BigInt => 8,
                DataType::TinyInt => 1,
                DataType::Bit => 16,
                DataType::Decimal => 246,
                DataType::Float => 4,
                DataType::Double => 5,
                DataType::Timestamp => 7,
                DataType::DateTime => 12,
                DataType::Date => 10,
                DataType::Time => 11,
                DataType::Year => 13,
                DataType::VarChar | DataType::VarBinary => 253,
                DataType::Char | DataType::Binary => 254,
                DataType::Text | DataType::Blob | DataType::LongBlob => 252,
                DataType::Enum => 247,
                DataType::Set => 248,
                DataType::Json => 245,
                DataType::Geometry => 255,
                DataType::Int => 3,
                other => panic!("no number for {other:?} in this test"),
            };
            json!({"name": c.name, "dataTypeNumber": number})
        })
        .collect();
    Json::Array(numbers)
}

const SCHEMA_ORDER: [&str; 15] = [
    "version",
    "id",
    "sourceTimestamp",
    "sourcePosition",
    "safeSourcePosition",
    "sourceTxid",
    "source",
    "operation",
    "objectName",
    "processTimestamps",
    "tags",
    "fields",
    "beforeImages",
    "afterImages",
    "bornTimestamp",
];

fn keys(value: &Json) -> Vec<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// The part every record of `meta()` shares, through `source`.
fn header(operation: &str) -> Json {
    json!({
        "version": 0,
        "id": 1_700_382,
        "sourceTimestamp": 1_696_984_408,
        "sourcePosition": "72469@78",
        "safeSourcePosition": "1024@77",
        "sourceTxid": "0",
        "source": {"sourceType": "MySQL", "version": "8.0.34"},
        "operation": operation,
    })
}

fn record(operation: &str, rest: Json) -> Json {
    let mut record = header(operation);
    let fields = record.as_object_mut().unwrap();
    fields.extend(rest.as_object().unwrap().clone());
    record
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn insert_reads_back_with_every_value_kind() {
    let (table, row, rendered) = every_kind();
    let meta = meta();
    let bytes = encode_row(&table, RowOp::Insert, None, Some(&row), &meta);
    let decoded = decode_to_json(&bytes).unwrap();

    let expected = record(
        "INSERT",
        json!({
            "objectName": "shop.orders",
            "processTimestamps": null,
            "tags": {
                "pk_uk_info": r#"{"PRIMARY":["id"]}"#,
                "readerThroughoutTime": "1696984408050",
                "server_id": "5678",
                "thread_id": "1234",
                "GTID": "281c62dc-6e5b-11ee-9e7c-00163e0e3d1a:108156",
            },
            "fields": fields_json(&table),
            "beforeImages": null,
            "afterImages": rendered,
            "bornTimestamp": 1_696_984_408,
        }),
    );
    // Column by column first, for a readable failure.
    for (i, (got, want)) in decoded["afterImages"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&rendered)
        .enumerate()
    {
        assert_eq!(got, want, "column {}", table.columns[i].name);
    }
    assert_eq!(decoded, expected);
    assert_eq!(keys(&decoded), SCHEMA_ORDER);
    assert_eq!(
        keys(&decoded["tags"]),
        [
            "pk_uk_info",
            "readerThroughoutTime",
            "server_id",
            "thread_id",
            "GTID"
        ]
    );
    assert_eq!(keys(&decoded["source"]), ["sourceType", "version"]);
}

#[test]
fn update_reads_back_with_both_images() {
    let (table, row, rendered) = every_kind();
    let before: Vec<Value> = row.iter().map(|_| Value::Null).collect();
    let meta = ChangeMeta {
        thread_id: None,
        gtid: None,
        ..meta()
    };
    let bytes = encode_row(&table, RowOp::Update, Some(&before), Some(&row), &meta);
    let decoded = decode_to_json(&bytes).unwrap();

    let expected = record(
        "UPDATE",
        json!({
            "objectName": "shop.orders",
            "processTimestamps": null,
            "tags": {
                "pk_uk_info": r#"{"PRIMARY":["id"]}"#,
                "readerThroughoutTime": "1696984408050",
                "server_id": "5678",
            },
            "fields": fields_json(&table),
            "beforeImages": vec![Json::Null; row.len()],
            "afterImages": rendered,
            "bornTimestamp": 1_696_984_408,
        }),
    );
    assert_eq!(decoded, expected);
    assert_eq!(keys(&decoded), SCHEMA_ORDER);
}

#[test]
fn delete_reads_back() {
    let table = TableSchema {
        db: "my.db".into(),
        table: "events".into(),
        columns: vec![
            column("id", DataType::Int),
            with_charset(column("msg", DataType::Text), "utf8mb4"),
        ],
        keys: vec![],
    };
    let meta = meta();
    let before = [Value::Int(7), bytes(b"gone")];
    let bytes = encode_row(&table, RowOp::Delete, Some(&before), None, &meta);

    let expected = record(
        "DELETE",
        json!({
            "objectName": "my\\u002Edb.events",
            "processTimestamps": null,
            "tags": {
                "readerThroughoutTime": "1696984408050",
                "server_id": "5678",
                "thread_id": "1234",
                "GTID": "281c62dc-6e5b-11ee-9e7c-00163e0e3d1a:108156",
            },
            "fields": [
                {"name": "id", "dataTypeNumber": 3},
                {"name": "msg", "dataTypeNumber": 252},
            ],
            "beforeImages": [7, {"type": "TEXT", "value": "gone"}],
            "afterImages": null,
            "bornTimestamp": 1_696_984_408,
        }),
    );
    assert_eq!(decode_to_json(&bytes).unwrap(), expected);
}

#[test]
fn ddl_reads_back() {
    let meta = meta();
    let sql = "ALTER TABLE `orders` ADD COLUMN note TEXT";
    let decoded = decode_to_json(&encode_ddl("shop", Some("orders"), sql, &meta)).unwrap();

    let expected = record(
        "DDL",
        json!({
            "objectName": "shop.orders",
            "processTimestamps": null,
            "tags": {
                "readerThroughoutTime": "1696984408050",
                "server_id": "5678",
                "thread_id": "1234",
                "GTID": "281c62dc-6e5b-11ee-9e7c-00163e0e3d1a:108156",
                "commitTimestamp": "1696984408",
            },
            "fields": null,
            "beforeImages": null,
            "afterImages": sql,
            "bornTimestamp": 1_696_984_408,
        }),
    );
    assert_eq!(decoded, expected);
    assert_eq!(keys(&decoded), SCHEMA_ORDER);

    let decoded = decode_to_json(&encode_ddl("", None, "CREATE DATABASE x", &meta)).unwrap();
    assert_eq!(decoded["objectName"], Json::Null);
    assert_eq!(decoded["afterImages"], "CREATE DATABASE x");
}

#[test]
fn rows_of_a_shared_schema_read_back_after_it_changes() {
    let meta = meta();
    let mut encoder = DtsAvroEncoder::new();
    let mut encode = |schema: &Arc<TableSchema>, after: &[Value]| {
        let change = RowChange {
            meta: &meta,
            table: schema,
            op: RowOp::Insert,
            before: None,
            after: Some(after),
        };
        let mut out = Vec::new();
        encoder.encode_row_shared(&change, schema, &mut out);
        decode_to_json(&out).unwrap()
    };
    let old = Arc::new(TableSchema {
        db: "d".into(),
        table: "t".into(),
        columns: vec![column("a", DataType::Int)],
        keys: vec![],
    });
    let mut changed = (*old).clone();
    changed.columns[0].name = "renamed".into();
    changed.columns.push(column("b", DataType::Int));

    let record = encode(&old, &[Value::Int(1)]);
    assert_eq!(
        record["fields"],
        json!([{"name": "a", "dataTypeNumber": 3}])
    );
    // The source lets go of the old definition and loads the new one.
    drop(old);
    let new = Arc::new(changed);
    let record = encode(&new, &[Value::Int(1), Value::Int(2)]);
    let expected = json!([
        {"name": "renamed", "dataTypeNumber": 3},
        {"name": "b", "dataTypeNumber": 3},
    ]);
    assert_eq!(record["fields"], expected);
    assert_eq!(record["afterImages"], json!([1, 2]));
    // An equal definition in another allocation reads the same.
    let again = Arc::new((*new).clone());
    assert_eq!(
        encode(&again, &[Value::Int(3), Value::Int(4)])["fields"],
        expected
    );
}

#[test]
fn a_schema_changed_in_place_is_not_served_stale() {
    // The same address with new content, as when a caller edits its schema or builds the next
    // one in the same place.
    let meta = meta();
    let mut encoder = DtsAvroEncoder::new();
    let mut table = TableSchema {
        db: "d".into(),
        table: "t".into(),
        columns: vec![column("a", DataType::Int)],
        keys: vec![],
    };
    for name in ["a", "b", "c"] {
        table.columns[0].name = name.into();
        let change = RowChange {
            meta: &meta,
            table: &table,
            op: RowOp::Insert,
            before: None,
            after: Some(&[Value::Int(1)]),
        };
        let mut out = Vec::new();
        encoder.encode_row(&change, &mut out);
        let record = decode_to_json(&out).unwrap();
        assert_eq!(
            record["fields"],
            json!([{"name": name, "dataTypeNumber": 3}])
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-made records: what sluice never writes

/// A minimal Avro writer for hand-made records.
#[derive(Default)]
struct Avro(Vec<u8>);

impl Avro {
    fn long(mut self, v: i64) -> Self {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            self.0.push(z as u8 | 0x80);
            z >>= 7;
        }
        self.0.push(z as u8);
        self
    }

    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    fn bytes(self, b: &[u8]) -> Self {
        self.long(b.len() as i64).raw(b)
    }

    fn str(self, s: &str) -> Self {
        self.bytes(s.as_bytes())
    }

    fn double(self, v: f64) -> Self {
        self.raw(&v.to_le_bytes())
    }

    /// `version` through `operation` (ordinal `op`).
    fn header(op: i64) -> Self {
        Avro::default()
            .long(1) // version
            .long(-5) // id
            .long(10) // sourceTimestamp
            .str("4@3")
            .str("")
            .str("tx")
            .long(12) // source: OTHER
            .str("")
            .long(op)
    }
}

fn value_header() -> Avro {
    Avro::header(0)
        .long(0) // objectName: null
        .long(1) // processTimestamps: array
        .long(2)
        .long(7)
        .long(-8)
        .long(0)
        .long(0) // tags: empty
        .long(1) // fields: string branch
        .str("f")
        .long(0) // beforeImages: null
}

#[test]
fn members_sluice_never_writes_are_rendered_too() {
    let mut avro = value_header().long(2);
    // A block with a negative count: -13 items then the block's size in bytes (ignored).
    let mut items = Avro::default()
        .long(1) // Integer, text that is not how a number is written or too big for one
        .long(8)
        .str("007")
        .long(1)
        .long(8)
        .str("-0")
        .long(1)
        .long(8)
        .str("18446744073709551616")
        .long(1)
        .long(4)
        .str("+5")
        .long(4) // Float: not a JSON number
        .double(f64::NAN)
        .long(0)
        .long(0)
        .long(4)
        .double(f64::NEG_INFINITY)
        .long(0)
        .long(0)
        .long(6) // DateTime: year and month only
        .long(1)
        .long(1999)
        .long(1)
        .long(12)
        .raw(&[0; 5])
        .long(6) // DateTime: nothing
        .raw(&[0; 7])
        .long(7) // TimestampWithTimeZone
        .long(1)
        .long(2024)
        .long(1)
        .long(3)
        .long(1)
        .long(4)
        .long(1)
        .long(5)
        .long(1)
        .long(6)
        .long(1)
        .long(7)
        .long(0)
        .str("+08:00")
        .long(9) // TextGeometry
        .str("POINT")
        .str("POINT(1 2)")
        .long(10) // BinaryObject of another type
        .str("CLOB")
        .bytes(b"ab")
        .long(11) // TextObject
        .str("JSON")
        .str("[]")
        .long(12) // EmptyObject.NULL
        .long(0);
    let count = 13;
    avro = avro.long(-count).long(items.0.len() as i64);
    avro.0.append(&mut items.0);
    let bytes = avro.long(0).0; // end of afterImages; no bornTimestamp

    let decoded = decode_to_json(&bytes).unwrap();
    let expected = json!({
        "version": 1,
        "id": -5,
        "sourceTimestamp": 10,
        "sourcePosition": "4@3",
        "safeSourcePosition": "",
        "sourceTxid": "tx",
        "source": {"sourceType": "OTHER", "version": ""},
        "operation": "INSERT",
        "objectName": null,
        "processTimestamps": [7, -8],
        "tags": {},
        "fields": "f",
        "beforeImages": null,
        "afterImages": [
            "007",
            "-0",
            "18446744073709551616",
            "+5",
            "NaN",
            "-inf",
            "1999-12",
            "",
            "2024-03-04 05:06:07 +08:00",
            {"type": "POINT", "wkt": "POINT(1 2)"},
            {"type": "CLOB", "value": "0x6162"},
            "[]",
            "<null>",
        ],
    });
    assert_eq!(decoded, expected);
    // No bornTimestamp: left out, not made up.
    assert_eq!(keys(&decoded), SCHEMA_ORDER[..14]);
}

// ---------------------------------------------------------------------------------------------
// Errors

fn error(bytes: &[u8]) -> DecodeError {
    decode_to_json(bytes).expect_err("must not decode")
}

#[test]
fn errors_say_where_and_what() {
    // version: a varint that never ends.
    let e = error(&[0x80]);
    assert_eq!(
        (e.offset, e.field.as_str(), &e.kind),
        (
            0,
            "version",
            &DecodeErrorKind::Truncated {
                needed: 2,
                available: 1
            }
        )
    );
    assert_eq!(
        e.to_string(),
        "DTS Avro record, byte 0 (version): truncated: needs at least 2 bytes from here, 1 left"
    );
    let e = error(&[]);
    assert_eq!((e.offset, e.field.as_str()), (0, "version"));

    // version is an int: 2^31 does not fit, six bytes are too many.
    let e = error(&Avro::default().long(1 << 31).0);
    assert_eq!(e.kind, DecodeErrorKind::IntOutOfRange { value: 1 << 31 });
    let e = error(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    assert_eq!(e.kind, DecodeErrorKind::VarintTooLong { max_len: 5 });
    // id is a long: eleven bytes are too many, and so is a 10th byte above 1.
    let e = error(&[[0].as_slice(), &[0xFF; 10], &[0]].concat());
    assert_eq!(
        (e.offset, &e.kind),
        (1, &DecodeErrorKind::VarintTooLong { max_len: 10 })
    );
    let e = error(&[[0].as_slice(), &[0xFF; 9], &[2]].concat());
    assert_eq!(
        (e.offset, &e.kind),
        (1, &DecodeErrorKind::VarintTooLong { max_len: 10 })
    );
    let max = Avro::default().long(0).long(i64::MIN).0;
    assert_eq!(max.len(), 11);
    assert_eq!(error(&max).field, "sourceTimestamp");

    // sourcePosition: a negative length, then invalid UTF-8 at byte 2 of the string.
    let prefix = Avro::default().long(0).long(1).long(2).0;
    let e = error(&Avro::default().raw(&prefix).long(-1).0);
    assert_eq!(
        (e.offset, e.field.as_str(), &e.kind),
        (
            3,
            "sourcePosition",
            &DecodeErrorKind::NegativeLength { length: -1 }
        )
    );
    let e = error(&Avro::default().raw(&prefix).bytes(b"ab\xFFc").0);
    assert_eq!(
        (e.offset, e.field.as_str(), &e.kind),
        (6, "sourcePosition", &DecodeErrorKind::InvalidUtf8)
    );
    let e = error(&Avro::default().raw(&prefix).long(10).str("abc").0);
    assert_eq!(
        e.kind,
        DecodeErrorKind::Truncated {
            needed: 11,
            available: 5
        }
    );

    // source.sourceType and operation ordinals out of range.
    let e = error(
        &Avro::default()
            .raw(&prefix)
            .str("")
            .str("")
            .str("")
            .long(13)
            .0,
    );
    assert_eq!(
        (e.offset, e.field.as_str(), &e.kind),
        (
            6,
            "source.sourceType",
            &DecodeErrorKind::BadEnumOrdinal {
                name: "SourceType",
                ordinal: 13,
                symbols: 13
            }
        )
    );
    let e = error(&Avro::header(17).0);
    assert_eq!(e.field, "operation");
    assert!(matches!(
        e.kind,
        DecodeErrorKind::BadEnumOrdinal {
            name: "Operation",
            ordinal: 17,
            ..
        }
    ));
    let e = error(&Avro::header(-1).0);
    assert!(matches!(
        e.kind,
        DecodeErrorKind::BadEnumOrdinal { ordinal: -1, .. }
    ));

    // objectName: union index 2 of 2.
    let header = Avro::header(0).0;
    let e = error(&Avro::default().raw(&header).long(2).0);
    assert_eq!(
        (e.offset, e.field.as_str(), &e.kind),
        (
            header.len(),
            "objectName",
            &DecodeErrorKind::BadUnionIndex {
                index: 2,
                branches: 2
            }
        )
    );

    // A tag value that is not UTF-8 names its key.
    let tags = Avro::default()
        .raw(&header)
        .long(0)
        .long(0)
        .long(1)
        .str("k")
        .bytes(b"\xC3")
        .0;
    let e = error(&tags);
    assert_eq!((e.offset, e.field.as_str()), (tags.len() - 1, "tags.k"));

    // An image value: bad member, then a bad part inside one.
    let images = value_header()
        .long(2)
        .long(3)
        .long(0)
        .long(1)
        .long(4)
        .str("5")
        .0;
    let e = error(&Avro::default().raw(&images).long(13).0);
    assert_eq!(
        (e.offset, e.field.as_str(), &e.kind),
        (
            images.len(),
            "afterImages[2]",
            &DecodeErrorKind::BadUnionIndex {
                index: 13,
                branches: 13
            }
        )
    );
    let e = error(&Avro::default().raw(&images).long(12).long(2).0);
    assert_eq!(e.field, "afterImages[2].EmptyObject");
    let e = error(
        &Avro::default()
            .raw(&images)
            .long(6)
            .long(1)
            .long(1)
            .long(3)
            .0,
    );
    assert_eq!(
        (e.offset, e.field.as_str(), &e.kind),
        (
            images.len() + 3,
            "afterImages[2].DateTime.month",
            &DecodeErrorKind::BadUnionIndex {
                index: 3,
                branches: 2
            }
        )
    );
    let e = error(&Avro::default().raw(&images).long(2).str("utf8").long(5).0);
    assert_eq!(e.field, "afterImages[2].Character.value");

    // A count larger than what is left.
    let e = error(
        &Avro::default()
            .raw(&images[..images.len() - 6])
            .long(1000)
            .0,
    );
    assert_eq!(e.field, "afterImages");
    assert!(matches!(
        e.kind,
        DecodeErrorKind::Truncated { needed: 1002, .. }
    ));
    let e = error(
        &Avro::default()
            .raw(&images[..images.len() - 6])
            .long(i64::MIN)
            .0,
    );
    assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }));
    // A negative block size.
    let e = error(
        &Avro::default()
            .raw(&images[..images.len() - 6])
            .long(-1)
            .long(-1)
            .0,
    );
    assert_eq!(e.kind, DecodeErrorKind::NegativeLength { length: -1 });
}

#[test]
fn trailing_bytes_are_an_error() {
    let meta = meta();
    let mut bytes = encode_ddl("shop", None, "CREATE DATABASE shop", &meta);
    let len = bytes.len();
    bytes.push(0);
    let e = error(&bytes);
    assert_eq!(
        (e.offset, &e.kind),
        (len, &DecodeErrorKind::TrailingBytes { count: 1 })
    );
    bytes.extend_from_slice(&[1, 2]);
    assert_eq!(
        error(&bytes).kind,
        DecodeErrorKind::TrailingBytes { count: 3 }
    );
}

/// Records for the damaged-input tests: an INSERT of every kind, an UPDATE, a DELETE and a DDL.
fn samples() -> Vec<Vec<u8>> {
    let (table, row, _) = every_kind();
    let meta = meta();
    let before: Vec<Value> = row.iter().map(|_| Value::Null).collect();
    vec![
        encode_row(&table, RowOp::Insert, None, Some(&row), &meta),
        encode_row(&table, RowOp::Update, Some(&before), Some(&row), &meta),
        encode_row(&table, RowOp::Delete, Some(&row), None, &meta),
        encode_ddl("shop", Some("orders"), "DROP TABLE orders", &meta),
    ]
}

#[test]
fn every_prefix_of_a_record_is_an_error() {
    for record in samples() {
        let full = decode_to_json(&record).unwrap();
        let born = Avro::default()
            .long(full["bornTimestamp"].as_i64().unwrap())
            .0;
        for len in 0..record.len() {
            let prefix = &record[..len];
            match decode_to_json(prefix) {
                Err(e) => {
                    assert!(e.offset <= len, "{e} for a prefix of {len}");
                    assert!(
                        matches!(e.kind, DecodeErrorKind::Truncated { .. }),
                        "{e} for a prefix of {len}"
                    );
                }
                // Cut right before bornTimestamp: that field is optional.
                Ok(json) => {
                    assert_eq!(len, record.len() - born.len(), "prefix of {len} decoded");
                    let mut without = full.clone();
                    without
                        .as_object_mut()
                        .unwrap()
                        .shift_remove("bornTimestamp");
                    assert_eq!(json, without);
                }
            }
        }
    }
}

/// xorshift64*: reproducible noise without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = decode_to_json(&bytes);
    }
    // Valid-looking headers then noise reach deeper.
    let header = value_header().long(2).0;
    for _ in 0..20_000 {
        let mut bytes = header.clone();
        let len = rng.below(64);
        bytes.extend((0..len).map(|_| {
            // Mostly small varints, so that unions and lengths are often in range.
            if rng.below(2) == 0 {
                rng.below(26) as u8
            } else {
                rng.next() as u8
            }
        }));
        let _ = decode_to_json(&bytes);
    }
}

#[test]
fn corrupted_records_never_panic() {
    let mut rng = Rng(42);
    let samples = samples();
    let mut decoded = 0;
    for _ in 0..30_000 {
        let mut bytes = samples[rng.below(samples.len())].clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] = rng.next() as u8,
                1 => bytes[at] ^= 1 << rng.below(8),
                2 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, rng.next() as u8),
            }
        }
        if decode_to_json(&bytes).is_ok() {
            decoded += 1;
        }
    }
    // Some corruptions land in text or numbers and still decode.
    assert!(decoded > 0);
}
