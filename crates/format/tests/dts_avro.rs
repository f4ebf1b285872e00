//! The DTS Avro encoder, checked two ways: golden bytes worked out by hand from the Avro
//! specification, and round trips through `apache-avro` with the exact DTS schema.

use std::borrow::Cow;
use std::collections::HashMap;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use sluice_event::{
    ChangeMeta, ColumnSchema, DataType, DdlChange, KeyInfo, RowChange, RowOp, TableSchema, Value,
};
use sluice_format::dts_avro::{escape_name, record_schema_text, DtsAvroEncoder};

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

fn table(db: &str, name: &str, columns: Vec<ColumnSchema>, keys: Vec<KeyInfo>) -> TableSchema {
    TableSchema {
        db: db.into(),
        table: name.into(),
        columns,
        keys,
    }
}

fn key(name: &str, columns: &[usize]) -> KeyInfo {
    KeyInfo {
        name: name.into(),
        columns: columns.to_vec(),
    }
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
    let mut out = Vec::new();
    DtsAvroEncoder::new().encode_ddl(
        &DdlChange {
            meta,
            db,
            table,
            sql,
        },
        &mut out,
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Decoding with apache-avro and the exact schema

const FIELD_ORDER: [&str; 15] = [
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

/// Decodes one `Record` that must use up all of `bytes`, keyed by field name.
fn decode(bytes: &[u8]) -> HashMap<String, Avro> {
    let types: Vec<serde_json::Value> = serde_json::from_str(record_schema_text()).unwrap();
    let schemata = Schema::parse_list(types.iter().map(|t| t.to_string())).unwrap();
    let record = schemata
        .iter()
        .find(|s| s.name().is_some_and(|n| n.name() == "Record"))
        .unwrap();
    let reader = GenericDatumReader::builder(record)
        .writer_schemata(schemata.iter().collect())
        .unwrap()
        .build()
        .unwrap();
    let mut rest = bytes;
    let decoded = reader.read_value(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "{} bytes left after the record",
        rest.len()
    );
    let Avro::Record(fields) = decoded else {
        panic!("not a record")
    };
    let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, FIELD_ORDER);
    fields.into_iter().collect()
}

/// The elements of an image that must be present (array branch).
fn image(record: &HashMap<String, Avro>, name: &str) -> Vec<Avro> {
    match &record[name] {
        Avro::Union(2, array) => match &**array {
            Avro::Array(values) => values.clone(),
            other => panic!("{name}: {other:?}"),
        },
        other => panic!("{name} is not an array: {other:?}"),
    }
}

fn string(s: &str) -> Avro {
    Avro::String(s.into())
}

/// The null branch of a union.
fn null() -> Avro {
    Avro::Union(0, Box::new(Avro::Null))
}

/// The second branch of a union (string in `[null, string, ...]`, int in `[null, int]`).
fn second(value: Avro) -> Avro {
    Avro::Union(1, Box::new(value))
}

fn avro_record(fields: &[(&str, Avro)]) -> Avro {
    Avro::Record(
        fields
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect(),
    )
}

fn tags(pairs: &[(&str, &str)]) -> Avro {
    Avro::Map(
        pairs
            .iter()
            .map(|&(k, v)| (k.to_string(), string(v)))
            .collect(),
    )
}

fn fields<S: AsRef<str>>(columns: &[(S, i32)]) -> Avro {
    let fields = columns
        .iter()
        .map(|(name, number)| {
            let name = string(name.as_ref());
            avro_record(&[("name", name), ("dataTypeNumber", Avro::Int(*number))])
        })
        .collect();
    Avro::Union(2, Box::new(Avro::Array(fields)))
}

/// The VALUE union member at `branch`, a record with these fields.
fn member(branch: u32, fields: &[(&str, Avro)]) -> Avro {
    Avro::Union(branch, Box::new(avro_record(fields)))
}

fn integer(precision: i32, value: &str) -> Avro {
    member(
        1,
        &[
            ("precision", Avro::Int(precision)),
            ("value", string(value)),
        ],
    )
}

fn character(charset: &str, value: &[u8]) -> Avro {
    member(
        2,
        &[
            ("charset", string(charset)),
            ("value", Avro::Bytes(value.into())),
        ],
    )
}

fn decimal(value: &str, precision: i32, scale: i32) -> Avro {
    member(
        3,
        &[
            ("value", string(value)),
            ("precision", Avro::Int(precision)),
            ("scale", Avro::Int(scale)),
        ],
    )
}

fn float(value: f64, precision: i32, scale: i32) -> Avro {
    member(
        4,
        &[
            ("value", Avro::Double(value)),
            ("precision", Avro::Int(precision)),
            ("scale", Avro::Int(scale)),
        ],
    )
}

fn timestamp(secs: i64, micros: i32) -> Avro {
    member(
        5,
        &[
            ("timestamp", Avro::Long(secs)),
            ("millis", Avro::Int(micros)),
        ],
    )
}

/// `DateTime` from year, month, day, hour, minute, second, microseconds.
fn datetime(parts: [Option<i32>; 7]) -> Avro {
    let names = ["year", "month", "day", "hour", "minute", "second", "millis"];
    let part = |p: Option<i32>| p.map_or_else(null, |v| second(Avro::Int(v)));
    let fields: Vec<_> = names
        .iter()
        .zip(parts)
        .map(|(&name, p)| (name, part(p)))
        .collect();
    member(6, &fields)
}

fn binary_geometry(kind: &str, value: &[u8]) -> Avro {
    member(
        8,
        &[("type", string(kind)), ("value", Avro::Bytes(value.into()))],
    )
}

fn binary_object(kind: &str, value: &[u8]) -> Avro {
    member(
        10,
        &[("type", string(kind)), ("value", Avro::Bytes(value.into()))],
    )
}

fn text_object(kind: &str, value: &str) -> Avro {
    member(11, &[("type", string(kind)), ("value", string(value))])
}

fn none() -> Avro {
    Avro::Union(12, Box::new(Avro::Enum(1, "NONE".into())))
}

/// MySQL's internal geometry: SRID 0, then the WKB.
fn geometry(wkb: &[u8]) -> Vec<u8> {
    [&[0, 0, 0, 0][..], wkb].concat()
}

/// WKB of POINT(1 2), little-endian.
fn point_wkb() -> Vec<u8> {
    let coordinates = [1.0f64.to_le_bytes(), 2.0f64.to_le_bytes()].concat();
    [&[1][..], &1u32.to_le_bytes(), &coordinates].concat()
}

// ---------------------------------------------------------------------------------------------
// Golden bytes, worked out field by field from the Avro spec: int and long are zigzag varints
// (n → 2n, -n → 2n-1, 7 bits a byte, low group first), strings and bytes are a long length then
// the bytes, enums and union branches are an int index, arrays and maps are a count, the items
// and a 0 that ends them, and records are their fields in order.

#[test]
fn golden_insert() {
    let meta = ChangeMeta {
        id: 300,
        source_timestamp: 2,
        file_index: 3,
        offset: 4,
        safe_file_index: 3,
        safe_offset: 1,
        server_id: 5,
        thread_id: None,
        gtid: None,
        server_version: "8",
        initial_load: false,
        read_time_ms: 6,
    };
    let note = with_charset(column("note", DataType::VarChar), "utf8mb4");
    let table = table(
        "d",
        "t",
        vec![column("id", DataType::Int), note],
        vec![key("PRIMARY", &[0])],
    );
    let after = [Value::Int(-1), bytes(b"hi")];

    let expected: Vec<u8> = [
        &[0x00][..],                   // version: int 0
        &[0xD8, 0x04],                 // id: 300 → zigzag 600 = 0b100_1011000 → 0xD8 0x04
        &[0x04],                       // sourceTimestamp: 2
        b"\x064@3",                    // sourcePosition: "offset@file" = "4@3", length 3
        b"\x061@3",                    // safeSourcePosition: "1@3"
        b"\x020",                      // sourceTxid: "0"
        &[0x00],                       // source.sourceType: MySQL, ordinal 0
        b"\x028",                      // source.version: "8"
        &[0x00],                       // operation: INSERT, ordinal 0
        b"\x02\x06d.t",                // objectName: branch 1 (string), "d.t"
        &[0x00],                       // processTimestamps: branch 0 (null)
        &[0x06],                       // tags: one block of 3 entries
        b"\x14pk_uk_info",             //   key, length 10
        b"\x24{\"PRIMARY\":[\"id\"]}", //   value, length 18
        b"\x28readerThroughoutTime",   //   key, length 20
        b"\x026",                      //   value "6"
        b"\x12server_id",              //   key, length 9
        b"\x025",                      //   value "5"
        &[0x00],                       //   end of map
        &[0x04],                       // fields: branch 2 (array)
        &[0x04],                       //   one block of 2 Field records
        b"\x04id\x06",                 //   {name "id", dataTypeNumber 3}
        b"\x08note",                   //   {name "note",
        &[0xFA, 0x03],                 //    dataTypeNumber 253 → zigzag 506 → 0xFA 0x03}
        &[0x00],                       //   end of array
        &[0x00],                       // beforeImages: branch 0 (null)
        &[0x04],                       // afterImages: branch 2 (array)
        &[0x04],                       //   one block of 2 values
        b"\x02\x08\x04-1",             //   branch 1 Integer {precision 4, value "-1"}
        b"\x04\x0Eutf8mb4\x04hi",      //   branch 2 Character {"utf8mb4", b"hi"}
        &[0x00],                       //   end of array
        &[0x04],                       // bornTimestamp: 2
    ]
    .concat();

    assert_eq!(
        encode_row(&table, RowOp::Insert, None, Some(&after), &meta),
        expected
    );
}

#[test]
fn golden_ddl() {
    let meta = ChangeMeta {
        id: 1,
        source_timestamp: 64,
        file_index: 2,
        offset: 10,
        safe_file_index: 2,
        safe_offset: 10,
        server_id: 5,
        thread_id: Some(7),
        gtid: Some("g:1"),
        initial_load: false,
        server_version: "8",
        read_time_ms: 6,
    };

    let expected: Vec<u8> = [
        &[0x00][..],                      // version: int 0
        &[0x02],                          // id: 1
        &[0x80, 0x01],                    // sourceTimestamp: 64 → zigzag 128 → 0x80 0x01
        b"\x0810@2",                      // sourcePosition: "10@2", length 4
        b"\x0810@2",                      // safeSourcePosition: "10@2"
        b"\x020",                         // sourceTxid: "0"
        &[0x00],                          // source.sourceType: MySQL
        b"\x028",                         // source.version: "8"
        &[0x06],                          // operation: DDL, ordinal 3
        b"\x02\x14a\\u002Eb.t",           // objectName: branch 1, "a\u002Eb.t" (10 bytes)
        &[0x00],                          // processTimestamps: null
        &[0x0A],                          // tags: one block of 5 entries
        b"\x28readerThroughoutTime\x026", //   "6"
        b"\x12server_id\x025",            //   "5"
        b"\x12thread_id\x027",            //   "7"
        b"\x08GTID\x06g:1",               //   "g:1"
        b"\x1EcommitTimestamp\x0464",     //   "64" (sourceTimestamp in seconds)
        &[0x00],                          //   end of map
        &[0x00],                          // fields: null
        &[0x00],                          // beforeImages: null
        b"\x02\x18DROP TABLE t",          // afterImages: branch 1 (string), 12 bytes
        &[0x80, 0x01],                    // bornTimestamp: 64
    ]
    .concat();

    assert_eq!(
        encode_ddl("a.b", Some("t"), "DROP TABLE t", &meta),
        expected
    );
}

// ---------------------------------------------------------------------------------------------
// Round trips

fn with_charset(mut column: ColumnSchema, charset: &str) -> ColumnSchema {
    column.charset = Some(charset.into());
    column
}

fn with_numeric(mut column: ColumnSchema, precision: u32, scale: Option<u32>) -> ColumnSchema {
    (column.precision, column.scale) = (Some(precision), scale);
    column
}

fn with_labels(mut column: ColumnSchema, labels: &[&str]) -> ColumnSchema {
    column.labels = labels.iter().map(|l| l.to_string()).collect();
    column
}

/// A table of every column kind, a row that uses every `Value` variant, and what DTS readers
/// should see: the `fields` entries and the decoded image.
struct EveryKind {
    table: TableSchema,
    row: Vec<Value<'static>>,
    fields: Vec<(String, i32)>,
    image: Vec<Avro>,
}

fn every_kind() -> EveryKind {
    use DataType as T;
    let doc = r#"{"k": [1, "two"]}"#;
    let abc = ["a", "b", "c"];
    #[rustfmt::skip]
    let cases: Vec<(ColumnSchema, i32, Value<'static>, Avro)> = vec![
        (column("id", T::BigInt), 8, Value::UInt(u64::MAX), integer(8, "18446744073709551615")),
        (column("tiny", T::TinyInt), 1, Value::Int(-128), integer(1, "-128")),
        (column("small", T::SmallInt), 2, Value::UInt(65535), integer(2, "65535")),
        (column("medium", T::MediumInt), 9, Value::Int(-8_388_608), integer(3, "-8388608")),
        (column("int", T::Int), 3, Value::Int(42), integer(4, "42")),
        (column("big", T::BigInt), 8, Value::Int(i64::MIN), integer(8, "-9223372036854775808")),
        (with_numeric(column("bits", T::Bit), 12, None), 16, Value::Bit(0xA05), integer(12, "2565")),
        (column("price", T::Decimal), 246, Value::Decimal("1050.00".into()), decimal("1050.00", 6, 2)),
        // 1.1f32 is 1.100000023841858 as a double; DTS readers must see 1.1.
        (with_numeric(column("real", T::Float), 12, None), 4, Value::Float(1.1), float(1.1, 12, 0)),
        (with_numeric(column("double", T::Double), 10, Some(3)), 5, Value::Double(-2.5e-300), float(-2.5e-300, 10, 3)),
        (column("ts", T::Timestamp), 7, Value::Timestamp { secs: 1_618_239_451, micros: 123_456 }, timestamp(1_618_239_451, 123_456)),
        (
            column("dt", T::DateTime), 12,
            Value::DateTime { year: 2023, month: 11, day: 14, hour: 22, minute: 13, second: 20, micros: 7 },
            datetime([Some(2023), Some(11), Some(14), Some(22), Some(13), Some(20), Some(7)]),
        ),
        (
            column("day", T::Date), 10,
            Value::Date { year: 0, month: 2, day: 0 },
            datetime([Some(0), Some(2), Some(0), None, None, None, None]),
        ),
        (
            column("neg_time", T::Time), 11,
            Value::Time { negative: true, hours: 1, minutes: 2, seconds: 3, micros: 500_000 },
            datetime([None, None, None, Some(-1), Some(-2), Some(-3), Some(-500_000)]),
        ),
        (
            column("long_time", T::Time), 11,
            Value::Time { negative: false, hours: 838, minutes: 59, seconds: 59, micros: 0 },
            datetime([None, None, None, Some(838), Some(59), Some(59), Some(0)]),
        ),
        (column("y", T::Year), 13, Value::Year(2155), datetime([Some(2155), None, None, None, None, None, None])),
        (with_charset(column("name", T::VarChar), "utf8mb4"), 253, bytes("héllo".as_bytes()), character("utf8mb4", "héllo".as_bytes())),
        (with_charset(column("code", T::Char), "latin1"), 254, bytes(b"\xE9t\xE9"), character("latin1", b"\xE9t\xE9")),
        (column("bin", T::Binary), 254, bytes(&[0, 255]), character("binary", &[0, 255])),
        (column("vbin", T::VarBinary), 253, bytes(b""), character("binary", b"")),
        (column("inet", T::Other), 253, bytes(&[10, 0, 0, 1]), character("binary", &[10, 0, 0, 1])),
        (with_charset(column("body", T::MediumText), "utf8mb4"), 252, bytes(b"some text"), binary_object("TEXT", b"some text")),
        (column("blob", T::LongBlob), 252, bytes(&[1, 2, 3]), binary_object("BLOB", &[1, 2, 3])),
        (with_labels(column("mood", T::Enum), &abc), 247, Value::Enum(2), text_object("ENUM", "b")),
        (with_labels(column("no_mood", T::Enum), &abc), 247, Value::Enum(0), text_object("ENUM", "")),
        (with_labels(column("flags", T::Set), &abc), 248, Value::Set(0b101), text_object("SET", "a,c")),
        (with_labels(column("no_flags", T::Set), &abc), 248, Value::Set(0), text_object("SET", "")),
        (column("doc", T::Json), 245, Value::Json(doc.into()), text_object("JSON", doc)),
        // MariaDB keeps JSON as text.
        (column("maria_doc", T::Json), 245, bytes(doc.as_bytes()), text_object("JSON", doc)),
        (column("shape", T::Geometry), 255, Value::Geometry(geometry(&point_wkb()).into()), binary_geometry("POINT", &point_wkb())),
        (column("nothing", T::Int), 3, Value::Null, null()),
        (column("missing", T::LongBlob), 252, Value::Absent, none()),
    ];

    // PRIMARY (id), then a unique key on (code, name).
    let keys = vec![key("PRIMARY", &[0]), key("uk_code", &[17, 16])];
    let mut every = EveryKind {
        table: table("shop", "orders", Vec::new(), keys),
        row: Vec::new(),
        fields: Vec::new(),
        image: Vec::new(),
    };
    for (column, number, value, decoded) in cases {
        every.fields.push((column.name.clone(), number));
        every.table.columns.push(column);
        every.row.push(value);
        every.image.push(decoded);
    }
    every
}

#[test]
fn insert_round_trip_with_every_value_kind() {
    let every = every_kind();
    let meta = meta();
    let record = decode(&encode_row(
        &every.table,
        RowOp::Insert,
        None,
        Some(&every.row),
        &meta,
    ));

    assert_eq!(record["version"], Avro::Int(0));
    assert_eq!(record["id"], Avro::Long(1_700_382));
    assert_eq!(record["sourceTimestamp"], Avro::Long(1_696_984_408));
    assert_eq!(record["sourcePosition"], string("72469@78"));
    assert_eq!(record["safeSourcePosition"], string("1024@77"));
    assert_eq!(record["sourceTxid"], string("0"));
    let source = avro_record(&[
        ("sourceType", Avro::Enum(0, "MySQL".into())),
        ("version", string("8.0.34")),
    ]);
    assert_eq!(record["source"], source);
    assert_eq!(record["operation"], Avro::Enum(0, "INSERT".into()));
    assert_eq!(record["objectName"], second(string("shop.orders")));
    assert_eq!(record["processTimestamps"], null());
    let expected_tags = tags(&[
        (
            "pk_uk_info",
            r#"{"PRIMARY":["id"],"uk_code":["code","name"]}"#,
        ),
        ("readerThroughoutTime", "1696984408050"),
        ("server_id", "5678"),
        ("thread_id", "1234"),
        ("GTID", "281c62dc-6e5b-11ee-9e7c-00163e0e3d1a:108156"),
    ]);
    assert_eq!(record["tags"], expected_tags);
    assert_eq!(record["fields"], fields(&every.fields));
    assert_eq!(record["beforeImages"], null());
    let decoded = image(&record, "afterImages");
    assert_eq!(decoded.len(), every.image.len());
    for ((name, _), (got, want)) in every.fields.iter().zip(decoded.iter().zip(&every.image)) {
        assert_eq!(got, want, "column {name}");
    }
    assert_eq!(record["bornTimestamp"], Avro::Long(1_696_984_408));
}

#[test]
fn update_round_trip_carries_both_full_images() {
    let every = every_kind();
    let before = vec![Value::Null; every.row.len()];
    let meta = meta();
    let bytes = encode_row(
        &every.table,
        RowOp::Update,
        Some(&before),
        Some(&every.row),
        &meta,
    );
    let record = decode(&bytes);

    assert_eq!(record["operation"], Avro::Enum(1, "UPDATE".into()));
    assert_eq!(record["fields"], fields(&every.fields));
    assert_eq!(image(&record, "beforeImages"), vec![null(); before.len()]);
    assert_eq!(image(&record, "afterImages"), every.image);
}

#[test]
fn delete_round_trip_of_a_table_without_keys() {
    let table = table(
        "logs",
        "events",
        vec![column("msg", DataType::Text)],
        vec![],
    );
    let meta = ChangeMeta {
        thread_id: None,
        gtid: None,
        ..meta()
    };
    let before = [bytes(b"gone")];
    let record = decode(&encode_row(
        &table,
        RowOp::Delete,
        Some(&before),
        None,
        &meta,
    ));

    assert_eq!(record["operation"], Avro::Enum(2, "DELETE".into()));
    assert_eq!(record["objectName"], second(string("logs.events")));
    let expected_tags = tags(&[
        ("readerThroughoutTime", "1696984408050"),
        ("server_id", "5678"),
    ]);
    assert_eq!(record["tags"], expected_tags);
    assert_eq!(record["fields"], fields(&[("msg", 252)]));
    assert_eq!(
        image(&record, "beforeImages"),
        vec![binary_object("TEXT", b"gone")]
    );
    assert_eq!(record["afterImages"], null());
}

/// Rows copied by the initial load are INSERTs tagged `initial_load`, read by apache-avro.
#[test]
fn initial_load_rows_carry_their_tag() {
    let table = table("shop", "orders", vec![column("id", DataType::BigInt)], vec![key("PRIMARY", &[0])]);
    let meta = ChangeMeta { thread_id: None, gtid: None, initial_load: true, ..meta() };
    let record = decode(&encode_row(&table, RowOp::Insert, None, Some(&[Value::Int(7)]), &meta));
    assert_eq!(record["operation"], Avro::Enum(0, "INSERT".into()));
    let expected_tags = tags(&[
        ("pk_uk_info", r#"{"PRIMARY":["id"]}"#),
        ("readerThroughoutTime", "1696984408050"),
        ("server_id", "5678"),
        ("initial_load", "true"),
    ]);
    assert_eq!(record["tags"], expected_tags);
    assert_eq!(image(&record, "afterImages"), vec![integer(8, "7")]);
}

#[test]
fn empty_images_are_empty_arrays() {
    let table = table("d", "t", vec![], vec![]);
    let meta = meta();
    let record = decode(&encode_row(&table, RowOp::Update, Some(&[]), None, &meta));

    assert_eq!(record["fields"], fields::<&str>(&[]));
    assert_eq!(image(&record, "beforeImages"), Vec::<Avro>::new());
    // An UPDATE always has both images, even when the change lacks one.
    assert_eq!(image(&record, "afterImages"), Vec::<Avro>::new());
}

#[test]
fn ddl_round_trip() {
    let meta = meta();
    let sql = "ALTER TABLE `orders` ADD COLUMN note TEXT";
    let record = decode(&encode_ddl("shop", Some("orders"), sql, &meta));

    assert_eq!(record["version"], Avro::Int(0));
    assert_eq!(record["id"], Avro::Long(1_700_382));
    assert_eq!(record["sourcePosition"], string("72469@78"));
    assert_eq!(record["safeSourcePosition"], string("1024@77"));
    assert_eq!(record["operation"], Avro::Enum(3, "DDL".into()));
    assert_eq!(record["objectName"], second(string("shop.orders")));
    assert_eq!(record["processTimestamps"], null());
    let expected_tags = tags(&[
        ("readerThroughoutTime", "1696984408050"),
        ("server_id", "5678"),
        ("thread_id", "1234"),
        ("GTID", "281c62dc-6e5b-11ee-9e7c-00163e0e3d1a:108156"),
        ("commitTimestamp", "1696984408"),
    ]);
    assert_eq!(record["tags"], expected_tags);
    assert_eq!(record["fields"], null());
    assert_eq!(record["beforeImages"], null());
    assert_eq!(record["afterImages"], second(string(sql)));
    assert_eq!(record["bornTimestamp"], Avro::Long(1_696_984_408));
}

#[test]
fn ddl_object_name_follows_what_is_known() {
    let meta = ChangeMeta {
        gtid: None,
        thread_id: None,
        ..meta()
    };
    let record = decode(&encode_ddl("shop", None, "CREATE DATABASE shop", &meta));
    assert_eq!(record["objectName"], second(string("shop")));
    let expected_tags = tags(&[
        ("readerThroughoutTime", "1696984408050"),
        ("server_id", "5678"),
        ("commitTimestamp", "1696984408"),
    ]);
    assert_eq!(record["tags"], expected_tags);

    let record = decode(&encode_ddl("", Some("t"), "CREATE DATABASE x", &meta));
    assert_eq!(record["objectName"], null());
}

#[test]
fn names_with_dots_are_escaped() {
    assert_eq!(escape_name("plain"), "plain");
    assert!(matches!(escape_name("plain"), Cow::Borrowed(_)));
    assert_eq!(escape_name("a.b.c"), "a\\u002Eb\\u002Ec");

    let columns = vec![
        column("we\"ird\\", DataType::Int),
        column("x.y", DataType::Int),
    ];
    let table = table("my.db", "t.1", columns, vec![key("PRIMARY", &[0, 1])]);
    let meta = meta();
    let record = decode(&encode_row(&table, RowOp::Insert, None, Some(&[]), &meta));

    assert_eq!(
        record["objectName"],
        second(string("my\\u002Edb.t\\u002E1"))
    );
    let Avro::Map(tags) = &record["tags"] else {
        panic!("tags: {:?}", record["tags"])
    };
    let Avro::String(pk_uk_info) = &tags["pk_uk_info"] else {
        panic!("{tags:?}")
    };
    let parsed: serde_json::Value = serde_json::from_str(pk_uk_info).unwrap();
    assert_eq!(
        parsed,
        serde_json::json!({ "PRIMARY": ["we\"ird\\", "x.y"] })
    );
}

#[test]
fn decimal_precision_and_scale_describe_the_text() {
    let cases = [
        ("1.11", 3, 2),
        ("11.11", 4, 2),
        ("1050.00", 6, 2),
        ("1.00", 3, 2),
        ("0.50", 3, 2),
        ("-12.50", 4, 2),
        ("0.000", 4, 3),
        ("42", 2, 0),
    ];
    let columns = cases
        .iter()
        .map(|_| column("d", DataType::Decimal))
        .collect();
    let table = table("d", "t", columns, vec![]);
    let after: Vec<Value> = cases
        .iter()
        .map(|&(text, _, _)| Value::Decimal(text.into()))
        .collect();
    let meta = meta();
    let record = decode(&encode_row(
        &table,
        RowOp::Insert,
        None,
        Some(&after),
        &meta,
    ));

    let expected: Vec<Avro> = cases
        .iter()
        .map(|&(text, p, s)| decimal(text, p, s))
        .collect();
    assert_eq!(image(&record, "afterImages"), expected);
}

#[test]
fn values_that_do_not_fit_their_column_keep_their_own_mapping() {
    let columns = vec![
        column("int_with_bytes", DataType::Int),
        column("varchar_with_int", DataType::VarChar),
        with_labels(column("enum_out_of_range", DataType::Enum), &["a"]),
        with_labels(
            column("set_with_unlabelled_bits", DataType::Set),
            &["a", "b"],
        ),
        column("enum_without_labels", DataType::Int),
        column("bad_geometry", DataType::Geometry),
        column("big_endian_geometry", DataType::Geometry),
        column("bit_without_width", DataType::Bit),
    ];
    let table = table("d", "t", columns, vec![]);
    let line = [&[0][..], &2u32.to_be_bytes(), &0u32.to_be_bytes()].concat();
    let after = [
        bytes(b"12"),
        Value::Int(7),
        Value::Enum(2),
        Value::Set(0b1110),
        Value::Enum(1),
        Value::Geometry(Cow::Borrowed(&[0, 0])),
        Value::Geometry(geometry(&line).into()),
        Value::Bit(1),
        // Past the end of the schema: no column to consult.
        Value::UInt(3),
        bytes(b"x"),
    ];
    let meta = meta();
    let record = decode(&encode_row(
        &table,
        RowOp::Insert,
        None,
        Some(&after),
        &meta,
    ));

    let expected = vec![
        character("binary", b"12"),
        integer(8, "7"),
        text_object("ENUM", ""),
        text_object("SET", "b"),
        text_object("ENUM", ""),
        binary_geometry("GEOMETRY", b""),
        binary_geometry("LINESTRING", &line),
        integer(0, "1"),
        integer(8, "3"),
        character("binary", b"x"),
    ];
    assert_eq!(image(&record, "afterImages"), expected);
}

#[test]
fn reusing_the_encoder_and_buffer_gives_identical_bytes() {
    let every = every_kind();
    let meta = meta();
    let change = RowChange {
        meta: &meta,
        table: &every.table,
        op: RowOp::Insert,
        before: None,
        after: Some(&every.row),
    };
    let ddl = DdlChange {
        meta: &meta,
        db: "shop",
        table: None,
        sql: "CREATE DATABASE shop",
    };
    let mut encoder = DtsAvroEncoder::new();
    let mut buf = Vec::new();

    encoder.encode_row(&change, &mut buf);
    let first = buf.clone();
    buf.clear();
    encoder.encode_ddl(&ddl, &mut buf);
    let first_ddl = buf.clone();
    buf.clear();
    encoder.encode_row(&change, &mut buf);
    assert_eq!(buf, first);
    buf.clear();
    encoder.encode_ddl(&ddl, &mut buf);
    assert_eq!(buf, first_ddl);

    // Appends, never overwrites.
    encoder.encode_row(&change, &mut buf);
    assert_eq!(buf, [first_ddl, first].concat());
}

#[test]
fn a_changed_schema_under_the_same_name_is_not_served_stale() {
    let meta = meta();
    let old = table(
        "d",
        "t",
        vec![column("a", DataType::Int)],
        vec![key("PRIMARY", &[0])],
    );
    let mut new = old.clone();
    new.columns.push(column("b", DataType::VarChar));
    new.keys.clear();
    let mut encoder = DtsAvroEncoder::new();
    let mut encode = |table: &TableSchema, after: &[Value]| {
        let change = RowChange {
            meta: &meta,
            table,
            op: RowOp::Insert,
            before: None,
            after: Some(after),
        };
        let mut out = Vec::new();
        encoder.encode_row(&change, &mut out);
        decode(&out)
    };

    let record = encode(&old, &[Value::Int(1)]);
    assert_eq!(record["fields"], fields(&[("a", 3)]));
    let record = encode(&new, &[Value::Int(1), bytes(b"x")]);
    assert_eq!(record["fields"], fields(&[("a", 3), ("b", 253)]));
    let Avro::Map(tags) = &record["tags"] else {
        panic!()
    };
    assert!(!tags.contains_key("pk_uk_info"));
    let record = encode(&old, &[Value::Int(1)]);
    assert_eq!(record["fields"], fields(&[("a", 3)]));
}
