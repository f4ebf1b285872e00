//! MySQL binary JSON columns to JSON text.

mod common;

use common::{decode, encode_json, json_column, ok};
use serde_json::json;
use sluice_binlog::column_type as ct;
use sluice_event::Value;

/// Decodes a binary JSON document stored in a JSON column (4 length bytes).
fn text(doc: &[u8]) -> String {
    match ok(ct::JSON, 4, false, &json_column(doc)) {
        Value::Json(t) => t.into_owned(),
        other => panic!("not JSON: {other:?}"),
    }
}

fn fails(doc: &[u8]) -> bool {
    decode(ct::JSON, 4, false, &json_column(doc)).is_err()
}

/// Our text parses to `expected`, and mysql_common's jsonb parser reads the same document the
/// same way (checks the encoder used by these tests as much as the decoder).
fn round_trip(expected: &serde_json::Value, large: bool) {
    let doc = encode_json(expected, large);
    let ours = text(&doc);
    let parsed: serde_json::Value = serde_json::from_str(&ours).unwrap();
    assert!(&parsed == expected, "ours differs: {:.300}", ours);
    let theirs: mysql_common::binlog::jsonb::Value<'_> =
        mysql_common::io::ParseBuf(&doc).parse(()).unwrap();
    let theirs = serde_json::Value::try_from(theirs).unwrap();
    assert!(&theirs == expected, "mysql_common differs: {:.300}", theirs.to_string());
}

#[test]
fn small_object_by_hand() {
    // {"a":1}: type 0 (small object); count 1, size 12; key entry (offset 11, length 1);
    // value entry (int16 inlined: 05 01 00); key bytes "a".
    let doc = [0x00, 0x01, 0x00, 0x0C, 0x00, 0x0B, 0x00, 0x01, 0x00, 0x05, 0x01, 0x00, b'a'];
    assert_eq!(text(&doc), r#"{"a":1}"#);
    assert_eq!(encode_json(&json!({"a": 1}), false), doc);
}

#[test]
fn literals_by_hand() {
    // [true,false,null]: type 2 (small array); count 3, size 13; three inlined literals.
    let doc = [0x02, 0x03, 0x00, 0x0D, 0x00, 0x04, 0x01, 0x00, 0x04, 0x02, 0x00, 0x04, 0x00, 0x00];
    assert_eq!(text(&doc), "[true,false,null]");
    // Top-level literals: type 4 + one byte.
    assert_eq!(text(&[0x04, 0x00]), "null");
    assert_eq!(text(&[0x04, 0x01]), "true");
    assert_eq!(text(&[0x04, 0x02]), "false");
    assert!(fails(&[0x04, 0x03]));
}

#[test]
fn numbers() {
    // Top-level scalars: type byte + little-endian value.
    assert_eq!(text(&[0x05, 0x00, 0x80]), "-32768");
    assert_eq!(text(&[0x06, 0xFF, 0xFF]), "65535");
    assert_eq!(text(&[0x07, 0x00, 0x00, 0x00, 0x80]), "-2147483648");
    assert_eq!(text(&[0x08, 0xFF, 0xFF, 0xFF, 0xFF]), "4294967295");
    let mut int64 = vec![0x09];
    int64.extend_from_slice(&i64::MIN.to_le_bytes());
    assert_eq!(text(&int64), "-9223372036854775808");
    let mut uint64 = vec![0x0A];
    uint64.extend_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(text(&uint64), "18446744073709551615");
    let double = |d: f64| [&[0x0B][..], &d.to_le_bytes()].concat();
    assert_eq!(text(&double(2.75)), "2.75");
    assert_eq!(text(&double(1.0)), "1.0");
    assert_eq!(text(&double(-0.5)), "-0.5");
    assert_eq!(text(&double(1e300)), "1e300");
    // Doubles stay doubles through serde_json, integers stay exact integers.
    let v: serde_json::Value = serde_json::from_str(&text(&double(1.0))).unwrap();
    assert!(v.is_f64());
    let v: serde_json::Value = serde_json::from_str(&text(&uint64)).unwrap();
    assert_eq!(v.as_u64(), Some(u64::MAX));
    assert!(fails(&double(f64::NAN)));
    // In a small array, uint16 is inlined and int32 stored at an offset:
    // [65535, 70000]: count 2, size 4 + 2*3 + 4 = 14; entries 06 FF FF, 07 0A 00; then 70000 LE.
    let doc = [0x02, 0x02, 0x00, 0x0E, 0x00, 0x06, 0xFF, 0xFF, 0x07, 0x0A, 0x00, 0x70, 0x11, 0x01, 0x00];
    assert_eq!(text(&doc), "[65535,70000]");
    // In a large array, int32 and uint32 are inlined: [-1, 4294967295]:
    // count 2, size 8 + 2*5 = 18.
    let doc = [
        0x03, 0x02, 0, 0, 0, 0x12, 0, 0, 0, 0x07, 0xFF, 0xFF, 0xFF, 0xFF, 0x08, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    assert_eq!(text(&doc), "[-1,4294967295]");
}

#[test]
fn strings_with_escapes() {
    let s = "q\"b\\s/n\nt\tr\r\u{1}\u{1f}é😀";
    let mut doc = vec![0x0C, s.len() as u8];
    doc.extend_from_slice(s.as_bytes());
    let t = text(&doc);
    assert_eq!(t, r#""q\"b\\s/n\nt\tr\r\u0001\u001fé😀""#);
    assert_eq!(serde_json::from_str::<String>(&t).unwrap(), s);
    // 200 bytes need a 2-byte length: 200 = 0b1_1001000 -> C8 01.
    let long = "x".repeat(200);
    let mut doc = vec![0x0C, 0xC8, 0x01];
    doc.extend_from_slice(long.as_bytes());
    assert_eq!(text(&doc), format!("\"{long}\""));
    // Not UTF-8.
    assert!(fails(&[0x0C, 0x01, 0xFF]));
}

#[test]
fn containers_round_trip() {
    let values = [
        json!({}),
        json!([]),
        json!({"a": 1, "b": [true, false, null], "c": {"d": "e"}}),
        json!([1, -1, 32767, -32768, 40000, -2147483648i64, 2147483648i64, i64::MIN, i64::MAX, u64::MAX]),
        json!([0.1, -2.5e-7, 1e300, 3.0]),
        json!({"nested": [[[{"deep": [1, [2, [3, {"x": null}]]]}]]]}),
        json!({"": "", "k\"ey": "v\\al\n"}),
        json!("just a string"),
        json!(42),
        json!(null),
    ];
    for v in &values {
        round_trip(v, false);
        round_trip(v, true);
    }
}

#[test]
fn large_documents() {
    // Over 64 KiB: the encoder must switch to the large format.
    let big: Vec<serde_json::Value> =
        (0..5000).map(|i| json!({"id": i, "name": format!("item-{i}"), "score": i as f64 / 7.0})).collect();
    let value = serde_json::Value::Array(big);
    let doc = encode_json(&value, false);
    assert!(doc.len() > 65_535);
    assert_eq!(doc[0], 0x03, "large array");
    round_trip(&value, false);
    let long_string = json!({"s": "y".repeat(100_000)});
    round_trip(&long_string, false);
}

#[test]
fn empty_document_is_null() {
    assert_eq!(ok(ct::JSON, 4, false, &[0, 0, 0, 0]), Value::Json("null".into()));
    // JSON with a 1-byte length (metadata 1).
    assert_eq!(ok(ct::JSON, 1, false, &[2, 0x04, 0x01]), Value::Json("true".into()));
}

#[test]
fn opaque_values() {
    // DECIMAL: 0F, field type 246, length, then precision, scale and the binary decimal.
    // -12.50 as DECIMAL(4,2): 12 -> 8C, 50 -> 32, inverted: 73 CD.
    let doc = [0x0F, 0xF6, 0x04, 0x04, 0x02, 0x73, 0xCD];
    assert_eq!(text(&doc), "-12.50");
    // DATETIME: 8-byte LE packed datetime of 2015-01-15 23:24:25.000007.
    let doc = [0x0F, 0x0C, 0x08, 0x07, 0x00, 0x00, 0x19, 0x76, 0x1F, 0x95, 0x19];
    assert_eq!(text(&doc), r#""2015-01-15 23:24:25.000007""#);
    // TIMESTAMP uses the same packing.
    let doc = [0x0F, 0x07, 0x08, 0x07, 0x00, 0x00, 0x19, 0x76, 0x1F, 0x95, 0x19];
    assert_eq!(text(&doc), r#""2015-01-15 23:24:25.000007""#);
    // DATE: packed datetime of 2015-01-15 00:00:00.
    let doc = [0x0F, 0x0A, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1E, 0x95, 0x19];
    assert_eq!(text(&doc), r#""2015-01-15""#);
    // TIME: packed time of -12:34:56.5 = -((12 << 12 | 34 << 6 | 56) << 24 | 500000).
    let doc = [0x0F, 0x0B, 0x08, 0xE0, 0x5E, 0xF8, 0x47, 0x37, 0xFF, 0xFF, 0xFF];
    assert_eq!(text(&doc), r#""-12:34:56.500000""#);
    // VAR_STRING: a plain string.
    assert_eq!(text(&[0x0F, 0xFD, 0x02, b'h', b'i']), r#""hi""#);
    // Anything else: base64 with MySQL's prefix.
    assert_eq!(text(&[0x0F, 0xFC, 0x03, b'a', b'b', b'c']), r#""base64:type252:YWJj""#);
    assert_eq!(text(&[0x0F, 0x10, 0x01, 0xFF]), r#""base64:type16:/w==""#);
    assert_eq!(text(&[0x0F, 0x10, 0x02, 0xFF, 0xFE]), r#""base64:type16://4=""#);
    // MySQL's base64 breaks lines after 76 characters (57 bytes).
    let mut doc = vec![0x0F, 0xFC, 60];
    doc.extend_from_slice(&[0u8; 60]);
    assert_eq!(text(&doc), format!("\"base64:type252:{}\\nAAAA\"", "A".repeat(76)));
    // Inside a container.
    let mut arr = vec![0x02, 0x01, 0x00, 0x00, 0x00, 0x0F, 0x07, 0x00];
    arr.extend_from_slice(&[0xFD, 0x02, b'o', b'k']);
    let size = arr.len() as u8 - 1;
    arr[3] = size;
    assert_eq!(text(&arr), r#"["ok"]"#);
}

#[test]
fn malformed_documents_are_errors() {
    // Unknown type byte.
    assert!(fails(&[0x0D]));
    // Truncated numbers.
    assert!(fails(&[0x09, 1, 2, 3]));
    assert!(fails(&[0x05]));
    // Container size larger than the document.
    assert!(fails(&[0x02, 0x01, 0x00, 0xFF, 0x00, 0x04, 0x01, 0x00]));
    // Count larger than the header fits.
    assert!(fails(&[0x02, 0xFF, 0xFF, 0x07, 0x00, 0x04, 0x01, 0x00]));
    // Value offset beyond the container.
    assert!(fails(&[0x02, 0x01, 0x00, 0x07, 0x00, 0x0C, 0x50, 0x00]));
    // Key outside the object.
    assert!(fails(&[0x00, 0x01, 0x00, 0x0B, 0x00, 0x0B, 0x00, 0x05, 0x00, 0x04, 0x01, 0x00]));
    // String length beyond the data; an unterminated length.
    assert!(fails(&[0x0C, 0x05, b'a']));
    assert!(fails(&[0x0C, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]));
    // Bad DECIMAL opaque (scale above precision) and TIME out of range.
    assert!(fails(&[0x0F, 0xF6, 0x03, 0x02, 0x03, 0x80]));
    assert!(fails(&[0x0F, 0x0B, 0x08, 0, 0, 0, 0, 0, 0, 0, 0x7F]));
}

/// An array whose entries all point at the array itself: a cycle through offsets. The decoder
/// must stop at its depth limit instead of recursing forever.
#[test]
fn self_referencing_container() {
    // Small array, count 1, size 7, entry: small array at offset 0 (= the array itself).
    let doc = [0x02, 0x01, 0x00, 0x07, 0x00, 0x02, 0x00, 0x00];
    assert!(fails(&doc));
}

/// Entries sharing one sub-array, 30 levels deep, would expand to 2^30 elements; the output
/// bound stops it early.
#[test]
fn shared_offsets_do_not_explode() {
    // Build from the innermost level outwards: each level is a small array of two entries that
    // both point at the next level, stored right after the header.
    let mut level: Vec<u8> = vec![0x01, 0x00, 0x07, 0x00, 0x04, 0x00, 0x00]; // [null]
    for _ in 0..30 {
        let header = 4 + 2 * 3;
        let size = header + level.len();
        let mut next = vec![0x02, 0x00, size as u8, (size >> 8) as u8];
        for _ in 0..2 {
            next.extend_from_slice(&[0x02, header as u8, 0x00]);
        }
        next.extend_from_slice(&level);
        level = next;
    }
    let mut doc = vec![0x02];
    doc.extend_from_slice(&level);
    let start = std::time::Instant::now();
    assert!(fails(&doc));
    assert!(start.elapsed().as_secs() < 5);
}

/// Doubles are laid out as MySQL 9.7 prints them (each expected text below is what
/// `SELECT CAST(CAST('[...]' AS JSON) AS CHAR)` printed there): plain notation while the
/// decimal exponent is in -15 < e < 15, scientific outside, ".0" on integral plain values.
#[test]
fn doubles_as_mysql_prints_them() {
    let double = |v: f64| {
        let mut doc = vec![0x0B];
        doc.extend(v.to_le_bytes());
        text(&doc)
    };
    for (value, want) in [
        (1e15, "1e15"),
        (1e16, "1e16"),
        (1e17, "1e17"),
        (0.1, "0.1"),
        (1.0, "1.0"),
        (-0.0, "-0.0"),
        (1e-4, "0.0001"),
        (1e-5, "0.00001"),
        (1e-7, "0.0000001"),
        (1.5e300, "1.5e300"),
        (3.0, "3.0"),
        (100.0, "100.0"),
        (1234567.125, "1234567.125"),
        (0.000123, "0.000123"),
        (2.5e-310, "2.5e-310"),
        (1e14, "100000000000000.0"),
        (123456789012345.6, "123456789012345.6"),
        (1e-14, "0.00000000000001"),
        (1e-16, "1e-16"),
        (1e-30, "1e-30"),
        (1.2345678901234567e-20, "1.2345678901234567e-20"),
        (1.2345678901234567e-15, "0.0000000000000012345678901234568"),
        (1.2345678901234567e-16, "1.2345678901234568e-16"),
        (1.2345e15, "1.2345e15"),
        (9.87654321e14, "987654321000000.0"),
        (123456789012345.67, "123456789012345.67"),
        (1.7976931348623157e308, "1.7976931348623157e308"),
        (-1e15, "-1e15"),
        (-1e-30, "-1e-30"),
        (5e-324, "5e-324"),
        (0.5, "0.5"),
    ] {
        assert_eq!(double(value), want, "{value:e}");
    }
}
