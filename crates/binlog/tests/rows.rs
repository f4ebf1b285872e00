//! Row image decoding, one type at a time, with byte vectors derived by hand from the formats.

mod common;

use std::borrow::Cow;

use common::{decode, ok, plan};
use sluice_binlog::column_type as ct;
use sluice_binlog::{DecodeError, Reason, RowsReader};
use sluice_event::Value;

fn time(negative: bool, hours: u16, minutes: u8, seconds: u8, micros: u32) -> Value<'static> {
    Value::Time { negative, hours, minutes, seconds, micros }
}

fn datetime(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8, micros: u32) -> Value<'static> {
    Value::DateTime { year, month, day, hour, minute, second, micros }
}

fn bytes(b: &[u8]) -> Value<'static> {
    Value::Bytes(Cow::Owned(b.to_vec()))
}

fn dec(text: &str) -> Value<'static> {
    Value::Decimal(Cow::Owned(text.to_owned()))
}

// ---- Integers ----

#[test]
fn integers_signed_min_max() {
    // Little-endian two's complement of the widths 1, 2, 3, 4, 8.
    assert_eq!(ok(ct::TINY, 0, false, &[0x80]), Value::Int(-128));
    assert_eq!(ok(ct::TINY, 0, false, &[0x7F]), Value::Int(127));
    assert_eq!(ok(ct::SHORT, 0, false, &[0x00, 0x80]), Value::Int(-32768));
    assert_eq!(ok(ct::SHORT, 0, false, &[0xFF, 0x7F]), Value::Int(32767));
    assert_eq!(ok(ct::INT24, 0, false, &[0x00, 0x00, 0x80]), Value::Int(-8_388_608));
    assert_eq!(ok(ct::INT24, 0, false, &[0xFF, 0xFF, 0x7F]), Value::Int(8_388_607));
    assert_eq!(ok(ct::INT24, 0, false, &[0xFF, 0xFF, 0xFF]), Value::Int(-1));
    assert_eq!(ok(ct::LONG, 0, false, &[0, 0, 0, 0x80]), Value::Int(i64::from(i32::MIN)));
    assert_eq!(ok(ct::LONG, 0, false, &[0xFF, 0xFF, 0xFF, 0x7F]), Value::Int(i64::from(i32::MAX)));
    assert_eq!(ok(ct::LONGLONG, 0, false, &[0, 0, 0, 0, 0, 0, 0, 0x80]), Value::Int(i64::MIN));
    assert_eq!(ok(ct::LONGLONG, 0, false, &[0xFF; 8]), Value::Int(-1));
    assert_eq!(
        ok(ct::LONGLONG, 0, false, &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
        Value::Int(i64::MAX)
    );
    assert_eq!(ok(ct::LONG, 0, false, &[0x2A, 0, 0, 0]), Value::Int(42));
}

#[test]
fn integers_unsigned_min_max() {
    assert_eq!(ok(ct::TINY, 0, true, &[0xFF]), Value::UInt(255));
    assert_eq!(ok(ct::TINY, 0, true, &[0x00]), Value::UInt(0));
    assert_eq!(ok(ct::SHORT, 0, true, &[0xFF, 0xFF]), Value::UInt(65535));
    assert_eq!(ok(ct::INT24, 0, true, &[0xFF, 0xFF, 0xFF]), Value::UInt(16_777_215));
    assert_eq!(ok(ct::LONG, 0, true, &[0xFF; 4]), Value::UInt(u64::from(u32::MAX)));
    assert_eq!(ok(ct::LONGLONG, 0, true, &[0xFF; 8]), Value::UInt(u64::MAX));
    assert_eq!(ok(ct::LONGLONG, 0, true, &[0; 8]), Value::UInt(0));
}

#[test]
fn year() {
    // One byte: 0 is the zero year, otherwise 1900 + byte (2155 = 1900 + 255).
    assert_eq!(ok(ct::YEAR, 0, false, &[0]), Value::Year(0));
    assert_eq!(ok(ct::YEAR, 0, false, &[1]), Value::Year(1901));
    assert_eq!(ok(ct::YEAR, 0, false, &[124]), Value::Year(2024));
    assert_eq!(ok(ct::YEAR, 0, false, &[255]), Value::Year(2155));
}

#[test]
fn floats() {
    assert_eq!(ok(ct::FLOAT, 4, false, &1.5f32.to_le_bytes()), Value::Float(1.5));
    assert_eq!(ok(ct::FLOAT, 4, false, &[0x00, 0x00, 0xC0, 0xBF]), Value::Float(-1.5));
    assert_eq!(ok(ct::DOUBLE, 8, false, &(-0.1f64).to_le_bytes()), Value::Double(-0.1));
    assert_eq!(ok(ct::DOUBLE, 8, false, &f64::MAX.to_le_bytes()), Value::Double(f64::MAX));
}

// ---- DECIMAL (meta low byte precision, high byte scale) ----

#[test]
fn decimals() {
    let meta = |p: u16, s: u16| p | s << 8;
    // (10,2): 4 bytes for 8 integer digits, 1 byte for 2 fraction digits; top bit set = positive.
    assert_eq!(ok(ct::NEWDECIMAL, meta(10, 2), false, &[0x80, 0x00, 0x04, 0xD2, 0x38]), dec("1234.56"));
    assert_eq!(ok(ct::NEWDECIMAL, meta(10, 2), false, &[0x7F, 0xFF, 0xFB, 0x2D, 0xC7]), dec("-1234.56"));
    // (5,0): 3 bytes, 99999 = 0x01869F.
    assert_eq!(ok(ct::NEWDECIMAL, meta(5, 0), false, &[0x81, 0x86, 0x9F]), dec("99999"));
    assert_eq!(ok(ct::NEWDECIMAL, meta(5, 0), false, &[0x7E, 0x79, 0x60]), dec("-99999"));
    // (4,4): 2 bytes of fraction, 1234 = 0x04D2.
    assert_eq!(ok(ct::NEWDECIMAL, meta(4, 4), false, &[0x84, 0xD2]), dec("0.1234"));
    assert_eq!(ok(ct::NEWDECIMAL, meta(4, 4), false, &[0x7B, 0x2D]), dec("-0.1234"));
    // (65,30) extremes: see the encoder-based check below for the bytes.
    let nines = format!("{}.{}", "9".repeat(35), "9".repeat(30));
    let max = common::encode_decimal(&nines, 65, 30);
    assert_eq!(max.len(), 30);
    assert_eq!(&max[..4], &[0x85, 0xF5, 0xE0, 0xFF]); // 99999999 = 0x05F5E0FF, top bit set
    assert_eq!(ok(ct::NEWDECIMAL, meta(65, 30), false, &max), dec(&nines));
    let min = common::encode_decimal(&format!("-{nines}"), 65, 30);
    assert_eq!(min, max.iter().map(|b| !b).collect::<Vec<_>>());
    assert_eq!(ok(ct::NEWDECIMAL, meta(65, 30), false, &min), dec(&format!("-{nines}")));
    // An out-of-range digit group is an error, not a wrong number.
    let err = decode(ct::NEWDECIMAL, meta(5, 0), false, &[0x81, 0x86, 0xA0]).unwrap_err();
    assert!(matches!(err, DecodeError::Column { column: 0, type_code: ct::NEWDECIMAL, reason: Reason::InvalidValue(_) }));
}

// ---- BIT (meta low byte bits % 8, high byte whole bytes) ----

#[test]
fn bits() {
    assert_eq!(ok(ct::BIT, 1, false, &[0x01]), Value::Bit(1));
    // BIT(10): 2 bits + 1 byte -> 2 bytes big-endian; b'1010101010' = 0x2AA.
    assert_eq!(ok(ct::BIT, 2 | 1 << 8, false, &[0x02, 0xAA]), Value::Bit(0x2AA));
    // BIT(64): 8 bytes.
    assert_eq!(ok(ct::BIT, 8 << 8, false, &[0xFF; 8]), Value::Bit(u64::MAX));
    assert_eq!(
        ok(ct::BIT, 8 << 8, false, &[0x80, 0, 0, 0, 0, 0, 0, 0x01]),
        Value::Bit(0x8000_0000_0000_0001)
    );
}

// ---- Dates and times ----

#[test]
fn dates() {
    // 3 bytes LE of year << 9 | month << 5 | day.
    // 2024-05-06: 2024 << 9 | 5 << 5 | 6 = 0x0FD0A6 -> A6 D0 0F.
    assert_eq!(ok(ct::DATE, 0, false, &[0xA6, 0xD0, 0x0F]), Value::Date { year: 2024, month: 5, day: 6 });
    assert_eq!(ok(ct::DATE, 0, false, &[0, 0, 0]), Value::Date { year: 0, month: 0, day: 0 });
    // 2024-00-15: 2024 << 9 | 15 = 0x0FD00F.
    assert_eq!(ok(ct::DATE, 0, false, &[0x0F, 0xD0, 0x0F]), Value::Date { year: 2024, month: 0, day: 15 });
    // 9999-12-31: 0x4E1F9F.
    assert_eq!(ok(ct::DATE, 0, false, &[0x9F, 0x1F, 0x4E]), Value::Date { year: 9999, month: 12, day: 31 });
    assert_eq!(ok(ct::NEWDATE, 0, false, &[0xA6, 0xD0, 0x0F]), Value::Date { year: 2024, month: 5, day: 6 });
    // Month 13 is not a date.
    assert!(decode(ct::DATE, 0, false, &[0xA0, 0xD1, 0x0F]).is_err());
}

#[test]
fn old_temporal_types() {
    // TIME: signed 24-bit LE HHMMSS. -12:34:56 = -123456 = 0xFE1DC0.
    assert_eq!(ok(ct::TIME, 0, false, &[0xC0, 0x1D, 0xFE]), time(true, 12, 34, 56, 0));
    // 838:59:59 = 8385959 = 0x7FF5A7.
    assert_eq!(ok(ct::TIME, 0, false, &[0xA7, 0xF5, 0x7F]), time(false, 838, 59, 59, 0));
    // DATETIME: u64 LE of 20240506070809.
    assert_eq!(
        ok(ct::DATETIME, 0, false, &[0x19, 0xA7, 0x2C, 0x9C, 0x68, 0x12, 0x00, 0x00]),
        datetime(2024, 5, 6, 7, 8, 9, 0)
    );
    assert_eq!(ok(ct::DATETIME, 0, false, &[0; 8]), datetime(0, 0, 0, 0, 0, 0, 0));
    // TIMESTAMP: u32 LE seconds; 1700000000 = 0x6553F100.
    assert_eq!(
        ok(ct::TIMESTAMP, 0, false, &[0x00, 0xF1, 0x53, 0x65]),
        Value::Timestamp { secs: 1_700_000_000, micros: 0 }
    );
    // 99:99 minutes/seconds are invalid.
    assert!(decode(ct::TIME, 0, false, &[0x0F, 0x27, 0x00]).is_err()); // 9999 -> 00:99:99
}

#[test]
fn timestamp2() {
    // 4 bytes BE seconds (1700000000 = 65 53 F1 00) + fraction.
    let secs = [0x65, 0x53, 0xF1, 0x00];
    assert_eq!(ok(ct::TIMESTAMP2, 0, false, &secs), Value::Timestamp { secs: 1_700_000_000, micros: 0 });
    // fsp 2: 1 byte of hundredths; .12 -> 12.
    let v = [&secs[..], &[12]].concat();
    assert_eq!(ok(ct::TIMESTAMP2, 2, false, &v), Value::Timestamp { secs: 1_700_000_000, micros: 120_000 });
    // fsp 3: 2 bytes of ten-thousandths; .1234 -> 0x04D2.
    let v = [&secs[..], &[0x04, 0xD2]].concat();
    assert_eq!(ok(ct::TIMESTAMP2, 3, false, &v), Value::Timestamp { secs: 1_700_000_000, micros: 123_400 });
    // fsp 6: 3 bytes of micros; 123456 = 0x01E240.
    let v = [&secs[..], &[0x01, 0xE2, 0x40]].concat();
    assert_eq!(ok(ct::TIMESTAMP2, 6, false, &v), Value::Timestamp { secs: 1_700_000_000, micros: 123_456 });
    assert_eq!(ok(ct::TIMESTAMP2, 0, false, &[0, 0, 0, 0]), Value::Timestamp { secs: 0, micros: 0 });
    assert_eq!(
        ok(ct::TIMESTAMP2, 0, false, &[0xFF; 4]),
        Value::Timestamp { secs: i64::from(u32::MAX), micros: 0 }
    );
    // Fraction 100 hundredths is not a fraction.
    assert!(decode(ct::TIMESTAMP2, 2, false, &[0, 0, 0, 0, 100]).is_err());
}

#[test]
fn datetime2() {
    // 2024-05-06 07:08:09: (2024*13+5) << 22 | 6 << 17 | 7 << 12 | 8 << 6 | 9, plus 2^39,
    // as 5 bytes BE = 99 B3 4C 72 09.
    let base = [0x99, 0xB3, 0x4C, 0x72, 0x09];
    assert_eq!(ok(ct::DATETIME2, 0, false, &base), datetime(2024, 5, 6, 7, 8, 9, 0));
    // fsp 3: .123 -> 1230 ten-thousandths = 0x04CE.
    let v = [&base[..], &[0x04, 0xCE]].concat();
    assert_eq!(ok(ct::DATETIME2, 3, false, &v), datetime(2024, 5, 6, 7, 8, 9, 123_000));
    // fsp 6: .123456 = 0x01E240.
    let v = [&base[..], &[0x01, 0xE2, 0x40]].concat();
    assert_eq!(ok(ct::DATETIME2, 6, false, &v), datetime(2024, 5, 6, 7, 8, 9, 123_456));
    // Zero datetime: just the offset.
    assert_eq!(ok(ct::DATETIME2, 0, false, &[0x80, 0, 0, 0, 0]), datetime(0, 0, 0, 0, 0, 0, 0));
    // 9999-12-31 23:59:59.999999.
    assert_eq!(
        ok(ct::DATETIME2, 6, false, &[0xFE, 0xF3, 0xFF, 0x7E, 0xFB, 0x0F, 0x42, 0x3F]),
        datetime(9999, 12, 31, 23, 59, 59, 999_999)
    );
    // Partial-zero date keeps its zeros: 2024-00-00.
    assert_eq!(
        ok(ct::DATETIME2, 0, false, &common::encode_datetime2(2024, 0, 0, 0, 0, 0, 0, 0)),
        datetime(2024, 0, 0, 0, 0, 0, 0)
    );
    // Below the offset (sign bit clear) is not a DATETIME.
    assert!(decode(ct::DATETIME2, 0, false, &[0x7F, 0, 0, 0, 0]).is_err());
    // Hour 24.
    assert!(decode(ct::DATETIME2, 0, false, &common::encode_datetime2(2024, 1, 1, 24, 0, 0, 0, 0)).is_err());
}

#[test]
fn time2_positive() {
    // fsp 0: 3 bytes BE of (h << 12 | m << 6 | s) + 0x800000. 838:59:59 -> 0x346EFB + 0x800000.
    assert_eq!(ok(ct::TIME2, 0, false, &[0xB4, 0x6E, 0xFB]), time(false, 838, 59, 59, 0));
    assert_eq!(ok(ct::TIME2, 0, false, &[0x80, 0x00, 0x00]), time(false, 0, 0, 0, 0));
    // 12:34:56.789 TIME(3): 0xC8B8 = 12 << 12 | 34 << 6 | 56 with the offset; fraction 7890 = 0x1ED2.
    assert_eq!(ok(ct::TIME2, 3, false, &[0x80, 0xC8, 0xB8, 0x1E, 0xD2]), time(false, 12, 34, 56, 789_000));
}

#[test]
fn time2_negative_with_fractions() {
    // The packed value of -T is -((hms << 24) + micros). For fsp 1-4 MySQL stores
    // floor(packed / 2^24) + 0x800000 in 3 bytes and the truncated remainder's hundredths
    // (ten-thousandths) as a signed byte (signed u16), both big-endian.

    // '-00:00:01.5' TIME(1): packed = -(2^24 + 500000) -> int part -2 = 7F FF FE,
    // fraction -50 = 0xCE.
    assert_eq!(ok(ct::TIME2, 1, false, &[0x7F, 0xFF, 0xFE, 0xCE]), time(true, 0, 0, 1, 500_000));
    // '-838:59:59.9' TIME(1): hms = 0x346EFB; int part -(0x346EFB + 1) + 0x800000 = 0x4B9104,
    // fraction -90 = 0xA6.
    assert_eq!(ok(ct::TIME2, 1, false, &[0x4B, 0x91, 0x04, 0xA6]), time(true, 838, 59, 59, 900_000));
    // '-00:00:00.01' TIME(2): packed = -10000 -> int part -1 = 7F FF FF, fraction -1 = 0xFF.
    assert_eq!(ok(ct::TIME2, 2, false, &[0x7F, 0xFF, 0xFF, 0xFF]), time(true, 0, 0, 0, 10_000));
    // '-00:00:00.99' TIME(2): fraction -99 = 0x9D.
    assert_eq!(ok(ct::TIME2, 2, false, &[0x7F, 0xFF, 0xFF, 0x9D]), time(true, 0, 0, 0, 990_000));
    // '-00:00:01' TIME(2): no fraction, the int part is exact: -1 = 7F FF FF, 00.
    assert_eq!(ok(ct::TIME2, 2, false, &[0x7F, 0xFF, 0xFF, 0x00]), time(true, 0, 0, 1, 0));
    // '-01:00:00.5' TIME(1): hms = 0x1000 -> int part -0x1001 = 0x7FEFFF, fraction 0xCE.
    assert_eq!(ok(ct::TIME2, 1, false, &[0x7F, 0xEF, 0xFF, 0xCE]), time(true, 1, 0, 0, 500_000));
    // '-12:34:56.789' TIME(3): hms = 0xC8B8 -> int part -0xC8B9 = 0x7F3747,
    // fraction -7890 = 0xE12E.
    assert_eq!(ok(ct::TIME2, 3, false, &[0x7F, 0x37, 0x47, 0xE1, 0x2E]), time(true, 12, 34, 56, 789_000));
    // '-00:00:00.0001' TIME(4): fraction -1 = 0xFFFF.
    assert_eq!(ok(ct::TIME2, 4, false, &[0x7F, 0xFF, 0xFF, 0xFF, 0xFF]), time(true, 0, 0, 0, 100));
    // '-838:59:59.999999' TIME(6): 6 bytes BE of packed + 2^47:
    // 2^47 - (0x346EFB << 24 | 999999) = 0x4B9104F0BDC1.
    assert_eq!(
        ok(ct::TIME2, 6, false, &[0x4B, 0x91, 0x04, 0xF0, 0xBD, 0xC1]),
        time(true, 838, 59, 59, 999_999)
    );
    // '-00:00:00.000001' TIME(6).
    assert_eq!(ok(ct::TIME2, 6, false, &[0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]), time(true, 0, 0, 0, 1));
    // '-838:59:59' TIME(0): 0x800000 - 0x346EFB = 0x4B9105.
    assert_eq!(ok(ct::TIME2, 0, false, &[0x4B, 0x91, 0x05]), time(true, 838, 59, 59, 0));
}

#[test]
fn time2_encoder_agrees_with_hand_vectors() {
    assert_eq!(common::encode_time2(true, 0, 0, 1, 500_000, 1), [0x7F, 0xFF, 0xFE, 0xCE]);
    assert_eq!(common::encode_time2(true, 838, 59, 59, 900_000, 1), [0x4B, 0x91, 0x04, 0xA6]);
    assert_eq!(common::encode_time2(true, 12, 34, 56, 789_000, 3), [0x7F, 0x37, 0x47, 0xE1, 0x2E]);
    assert_eq!(common::encode_time2(true, 838, 59, 59, 999_999, 6), [0x4B, 0x91, 0x04, 0xF0, 0xBD, 0xC1]);
}

#[test]
fn time2_out_of_range() {
    // 839:00:00 and a positive time with a "negative" fraction byte (2,000,000 micros).
    assert!(decode(ct::TIME2, 0, false, &[0xB4, 0x70, 0x00]).is_err());
    assert!(decode(ct::TIME2, 2, false, &[0x80, 0x00, 0x01, 0xC8]).is_err());
}

// ---- Strings, blobs, ENUM, SET ----

#[test]
fn varchar() {
    // Max length < 256: 1-byte length.
    assert_eq!(ok(ct::VARCHAR, 255, false, &[3, b'a', b'b', b'c']), bytes(b"abc"));
    assert_eq!(ok(ct::VARCHAR, 10, false, &[0]), bytes(b""));
    // Max length >= 256: 2-byte LE length.
    assert_eq!(ok(ct::VARCHAR, 256, false, &[3, 0, b'x', b'y', b'z']), bytes(b"xyz"));
    assert_eq!(ok(ct::VARCHAR, 1000, false, &[1, 0, 0xF0]), bytes(&[0xF0]));
    // Values borrow from the event bytes.
    let p = plan(&[(ct::VARCHAR, 64, false)]);
    let data = [0x00, 2, b'h', b'i'];
    let mut out = Vec::new();
    RowsReader::new(&p, &data).read_image(&[1], &mut out).unwrap();
    assert!(matches!(&out[0], Value::Bytes(Cow::Borrowed(b)) if *b == b"hi"));
}

#[test]
fn char_columns() {
    // CHAR(10) latin1: meta FE 0A -> 1-byte length.
    assert_eq!(ok(ct::STRING, 0xFE | 10 << 8, false, &[2, b'o', b'k']), bytes(b"ok"));
    // CHAR(255) utf8mb4 (1020 bytes): meta CE FC -> 2-byte length.
    let long = vec![b'z'; 300];
    let mut v = vec![0x2C, 0x01];
    v.extend_from_slice(&long);
    assert_eq!(ok(ct::STRING, 0xCE | 0xFC << 8, false, &v), bytes(&long));
}

#[test]
fn enums_and_sets() {
    // ENUM: STRING with real type 0xF7 and pack length 1 or 2 (LE).
    assert_eq!(ok(ct::STRING, 0xF7 | 1 << 8, false, &[3]), Value::Enum(3));
    assert_eq!(ok(ct::STRING, 0xF7 | 2 << 8, false, &[0x2C, 0x01]), Value::Enum(300));
    assert_eq!(ok(ct::STRING, 0xF7 | 1 << 8, false, &[0]), Value::Enum(0));
    // SET: real type 0xF8, 1..=8 bytes LE bitmask.
    assert_eq!(ok(ct::STRING, 0xF8 | 1 << 8, false, &[0b101]), Value::Set(5));
    assert_eq!(
        ok(ct::STRING, 0xF8 | 8 << 8, false, &[1, 2, 3, 4, 5, 6, 7, 0x80]),
        Value::Set(0x8007_0605_0403_0201)
    );
    assert_eq!(ok(ct::STRING, 0xF8 | 8 << 8, false, &[0xFF; 8]), Value::Set(u64::MAX));
}

#[test]
fn blobs_and_geometry() {
    // meta = size of the LE length.
    assert_eq!(ok(ct::BLOB, 1, false, &[3, 0x00, 0xFF, 0x10]), bytes(&[0x00, 0xFF, 0x10]));
    assert_eq!(ok(ct::BLOB, 2, false, &[1, 0, 7]), bytes(&[7]));
    assert_eq!(ok(ct::BLOB, 3, false, &[1, 0, 0, 8]), bytes(&[8]));
    assert_eq!(ok(ct::BLOB, 4, false, &[0, 0, 0, 0]), bytes(b""));
    assert_eq!(ok(ct::TINY_BLOB, 1, false, &[1, 9]), bytes(&[9]));
    assert_eq!(ok(ct::VECTOR, 4, false, &[4, 0, 0, 0, 0, 0, 0x80, 0x3F]), bytes(&1.0f32.to_le_bytes()));
    // GEOMETRY: SRID 0 + WKB POINT(1 2).
    let mut wkb = vec![0, 0, 0, 0, 1, 1, 0, 0, 0];
    wkb.extend_from_slice(&1.0f64.to_le_bytes());
    wkb.extend_from_slice(&2.0f64.to_le_bytes());
    let mut v = vec![wkb.len() as u8, 0, 0, 0];
    v.extend_from_slice(&wkb);
    assert_eq!(ok(ct::GEOMETRY, 4, false, &v), Value::Geometry(Cow::Owned(wkb)));
    // A length past the end of the data.
    let err = decode(ct::BLOB, 4, false, &[0xFF, 0xFF, 0xFF, 0xFF, 1]).unwrap_err();
    assert!(matches!(err, DecodeError::Column { reason: Reason::BadLength { length: 0xFFFF_FFFF, available: 1 }, .. }));
}

#[test]
fn json_text_columns() {
    // MariaDB JSON is a LONGTEXT: the caller marks it, values come out as Json borrowing the bytes.
    let mut p = plan(&[(ct::BLOB, 4, false)]);
    assert!(p[0].decode_as_json_text());
    let data = [0x00, 7, 0, 0, 0, b'{', b'"', b'a', b'"', b':', b'1', b'}'];
    let mut out = Vec::new();
    RowsReader::new(&p, &data).read_image(&[1], &mut out).unwrap();
    assert!(matches!(&out[0], Value::Json(Cow::Borrowed(r#"{"a":1}"#))));
    let bad = [0x00, 1, 0, 0, 0, 0xFF];
    assert!(RowsReader::new(&p, &bad).read_image(&[1], &mut out).is_err());
}

// ---- Images ----

/// A table exercising most types; `sample_row` is one full image of it.
fn sample_table() -> Vec<sluice_binlog::ColumnPlan> {
    plan(&[
        (ct::LONGLONG, 0, false),
        (ct::LONG, 0, true),
        (ct::VARCHAR, 64, false),
        (ct::NEWDECIMAL, 10 | 2 << 8, false),
        (ct::DATETIME2, 6, false),
        (ct::TIME2, 1, false),
        (ct::BLOB, 2, false),
        (ct::JSON, 4, false),
        (ct::STRING, 0xF7 | 1 << 8, false),
        (ct::YEAR, 0, false),
    ])
}

/// The encoded values of the sample row, one per column.
fn sample_parts() -> Vec<Vec<u8>> {
    vec![
        7i64.to_le_bytes().to_vec(),
        u32::MAX.to_le_bytes().to_vec(),
        vec![2, b'h', b'i'],
        vec![0x7F, 0xFF, 0xFB, 0x2D, 0xC7], // -1234.56
        vec![0x99, 0xB3, 0x4C, 0x72, 0x09, 0x01, 0xE2, 0x40], // 2024-05-06 07:08:09.123456
        vec![0x7F, 0xFF, 0xFE, 0xCE], // -00:00:01.5
        vec![3, 0, 1, 2, 3],
        common::json_column(&common::encode_json(&serde_json::json!({"k": [1, "v"]}), false)),
        vec![2],
        vec![0],
    ]
}

/// One full image of the sample table: null bitmap (10 present columns, none NULL) and values.
fn sample_row() -> Vec<u8> {
    let mut row = vec![0, 0];
    row.extend(sample_parts().concat());
    row
}

fn sample_values() -> Vec<Value<'static>> {
    vec![
        Value::Int(7),
        Value::UInt(u64::from(u32::MAX)),
        bytes(b"hi"),
        dec("-1234.56"),
        datetime(2024, 5, 6, 7, 8, 9, 123_456),
        time(true, 0, 0, 1, 500_000),
        bytes(&[1, 2, 3]),
        Value::Json(Cow::Owned(r#"{"k":[1,"v"]}"#.to_owned())),
        Value::Enum(2),
        Value::Year(0),
    ]
}

#[test]
fn full_image() {
    let p = sample_table();
    let row = sample_row();
    let mut reader = RowsReader::new(&p, &row);
    let mut out = Vec::new();
    assert!(reader.read_image(&[0xFF, 0x03], &mut out).unwrap());
    assert_eq!(out, sample_values());
    assert!(!reader.read_image(&[0xFF, 0x03], &mut out).unwrap());
    assert!(out.is_empty());
}

#[test]
fn several_rows_in_one_event() {
    let p = sample_table();
    let one = sample_row();
    let data = [one.clone(), one.clone(), one].concat();
    let mut reader = RowsReader::new(&p, &data);
    let mut out = Vec::new();
    let mut rows = 0;
    while reader.read_image(&[0xFF, 0xFF], &mut out).unwrap() {
        assert_eq!(out, sample_values());
        rows += 1;
    }
    assert_eq!(rows, 3);
}

#[test]
fn nulls_in_every_position() {
    let p = sample_table();
    let values = sample_values();
    let parts = sample_parts();
    for null_col in 0..p.len() {
        let nulls = 1u16 << null_col;
        let mut data = nulls.to_le_bytes().to_vec();
        for (i, part) in parts.iter().enumerate() {
            if i != null_col {
                data.extend_from_slice(part);
            }
        }
        let mut reader = RowsReader::new(&p, &data);
        let mut out = Vec::new();
        reader.read_image(&[0xFF, 0x03], &mut out).unwrap();
        assert!(reader.is_done());
        let mut expected = values.clone();
        expected[null_col] = Value::Null;
        assert_eq!(out, expected, "NULL in column {null_col}");
    }
    // All NULL: just the null bitmap.
    let data = [0xFF, 0x03];
    let mut reader = RowsReader::new(&p, &data);
    let mut out = Vec::new();
    reader.read_image(&[0xFF, 0x03], &mut out).unwrap();
    assert!(out.iter().all(Value::is_null) && out.len() == 10);
    assert!(reader.is_done());
}

#[test]
fn absent_columns() {
    // MINIMAL image: only columns 0 and 3 present; the null bitmap covers those two only, and
    // the second present column (3) is NULL.
    let p = plan(&[
        (ct::LONG, 0, false),
        (ct::VARCHAR, 10, false),
        (ct::LONG, 0, false),
        (ct::TINY, 0, false),
    ]);
    let data = [0b10, 5, 0, 0, 0];
    let mut out = Vec::new();
    let mut reader = RowsReader::new(&p, &data);
    assert!(reader.read_image(&[0b1001], &mut out).unwrap());
    assert_eq!(out, vec![Value::Int(5), Value::Absent, Value::Absent, Value::Null]);
    assert!(reader.is_done());
    // Bits beyond the column count are ignored.
    let mut reader = RowsReader::new(&p, &data);
    assert!(reader.read_image(&[0b1111_1001], &mut out).unwrap());
    assert_eq!(out.len(), 4);
}

#[test]
fn update_two_images() {
    // UPDATE t SET name='new' WHERE id=1 with a full before image and a MINIMAL after image.
    let p = plan(&[(ct::LONG, 0, false), (ct::VARCHAR, 20, false), (ct::TINY, 0, true)]);
    let before = [&[0b000][..], &[1, 0, 0, 0], &[3, b'o', b'l', b'd'], &[200]].concat();
    let after = [&[0b0][..], &[3, b'n', b'e', b'w']].concat();
    let data = [before, after].concat();
    let mut reader = RowsReader::new(&p, &data);
    let (mut b, mut a) = (Vec::new(), Vec::new());
    assert!(reader.read_image(&[0b111], &mut b).unwrap());
    assert!(reader.read_image(&[0b010], &mut a).unwrap());
    assert_eq!(b, vec![Value::Int(1), bytes(b"old"), Value::UInt(200)]);
    assert_eq!(a, vec![Value::Absent, bytes(b"new"), Value::Absent]);
    assert!(!reader.read_image(&[0b111], &mut b).unwrap());
}

#[test]
fn read_update_pairs_images() {
    let p = plan(&[(ct::LONG, 0, false), (ct::TINY, 0, false)]);
    // Two UPDATE rows: (1, 2) -> (1, 3), then (5, NULL) -> (5, 6).
    let data = [
        0b00, 1, 0, 0, 0, 2, 0b00, 1, 0, 0, 0, 3, //
        0b10, 5, 0, 0, 0, 0b00, 5, 0, 0, 0, 6,
    ];
    let mut reader = RowsReader::new(&p, &data);
    let (mut b, mut a) = (Vec::new(), Vec::new());
    assert!(reader.read_update(&[3], &[3], &mut b, &mut a).unwrap());
    assert_eq!((b.as_slice(), a.as_slice()), (&[Value::Int(1), Value::Int(2)][..], &[Value::Int(1), Value::Int(3)][..]));
    assert!(reader.read_update(&[3], &[3], &mut b, &mut a).unwrap());
    assert_eq!((b.as_slice(), a.as_slice()), (&[Value::Int(5), Value::Null][..], &[Value::Int(5), Value::Int(6)][..]));
    assert!(!reader.read_update(&[3], &[3], &mut b, &mut a).unwrap());
    assert!(b.is_empty() && a.is_empty());

    // Data ending after a before image is an error, not the end of the rows.
    let mut reader = RowsReader::new(&p, &data[..6]);
    let err = reader.read_update(&[3], &[3], &mut b, &mut a).unwrap_err();
    assert_eq!(err, DecodeError::MissingAfterImage { offset: 6 });
    assert_eq!(reader.position(), 0);
    assert!(b.is_empty() && a.is_empty());
    // A truncated after image too.
    let mut reader = RowsReader::new(&p, &data[..9]);
    assert!(reader.read_update(&[3], &[3], &mut b, &mut a).is_err());
    assert_eq!(reader.position(), 0);
}

#[test]
fn image_framing_errors() {
    let p = plan(&[(ct::LONG, 0, false); 9]);
    let mut out = Vec::new();
    // Present bitmap too short for 9 columns.
    let err = RowsReader::new(&p, &[0]).read_image(&[0xFF], &mut out).unwrap_err();
    assert_eq!(err, DecodeError::PresentBitmap { columns: 9, len: 1, needed: 2 });
    // No present column.
    let err = RowsReader::new(&p, &[0]).read_image(&[0, 0], &mut out).unwrap_err();
    assert_eq!(err, DecodeError::EmptyImage { offset: 0 });
    // Null bitmap cut short.
    let err = RowsReader::new(&p, &[0]).read_image(&[0xFF, 0x01], &mut out).unwrap_err();
    assert_eq!(err, DecodeError::NullBitmap { offset: 0, needed: 2, available: 1 });
    // An error names the column and type.
    let data = [0xFE, 0x01, 1, 0, 0];
    let err = RowsReader::new(&p, &data).read_image(&[0xFF, 0x01], &mut out).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Column { column: 0, type_code: ct::LONG, reason: Reason::Truncated { needed: 4, available: 3 } }
    );
    assert_eq!(err.to_string(), "column 0 (LONG type 3): truncated: needs 4 bytes, 3 left");
}

#[test]
fn errors_do_not_advance() {
    let p = plan(&[(ct::LONG, 0, false)]);
    let data = [0x00, 1, 2];
    let mut reader = RowsReader::new(&p, &data);
    let mut out = Vec::new();
    let first = reader.read_image(&[1], &mut out).unwrap_err();
    assert_eq!(reader.position(), 0);
    assert!(out.is_empty());
    assert_eq!(reader.read_image(&[1], &mut out).unwrap_err(), first);
}

#[test]
fn truncation_at_every_byte_is_an_error() {
    let p = sample_table();
    let row = sample_row();
    let mut out = Vec::new();
    for cut in 1..row.len() {
        let mut reader = RowsReader::new(&p, &row[..cut]);
        assert!(reader.read_image(&[0xFF, 0x03], &mut out).is_err(), "prefix of {cut} bytes decoded");
    }
    // The empty prefix is simply the end of the data.
    assert!(!RowsReader::new(&p, &[]).read_image(&[0xFF, 0x03], &mut out).unwrap());
}

#[test]
fn truncation_of_every_type_alone() {
    // Each sample value cut at every length, as the only column.
    let cases: Vec<(u8, u16, Vec<u8>)> = vec![
        (ct::TINY, 0, vec![1]),
        (ct::SHORT, 0, vec![1, 2]),
        (ct::INT24, 0, vec![1, 2, 3]),
        (ct::LONG, 0, vec![1, 2, 3, 4]),
        (ct::LONGLONG, 0, vec![1; 8]),
        (ct::YEAR, 0, vec![1]),
        (ct::FLOAT, 4, vec![0; 4]),
        (ct::DOUBLE, 8, vec![0; 8]),
        (ct::NEWDECIMAL, 65 | 30 << 8, common::encode_decimal(&format!("-1.{}", "5".repeat(30)), 65, 30)),
        (ct::BIT, 8 << 8, vec![1; 8]),
        (ct::DATE, 0, vec![0xA6, 0xD0, 0x0F]),
        (ct::TIME, 0, vec![0, 0, 0]),
        (ct::DATETIME, 0, vec![0; 8]),
        (ct::TIMESTAMP, 0, vec![0; 4]),
        (ct::TIMESTAMP2, 6, vec![0; 7]),
        (ct::DATETIME2, 6, vec![0x99, 0xB3, 0x4C, 0x72, 0x09, 0, 0, 1]),
        (ct::TIME2, 6, vec![0x80, 0, 0, 0, 0, 0]),
        (ct::TIME2, 3, vec![0x80, 0, 0, 0, 0]),
        (ct::VARCHAR, 300, vec![2, 0, b'a', b'b']),
        (ct::STRING, 0xFE | 10 << 8, vec![2, b'a', b'b']),
        (ct::STRING, 0xF7 | 2 << 8, vec![1, 0]),
        (ct::STRING, 0xF8 | 8 << 8, vec![1; 8]),
        (ct::BLOB, 4, vec![2, 0, 0, 0, 1, 2]),
        (ct::GEOMETRY, 4, vec![1, 0, 0, 0, 1]),
        (ct::JSON, 4, common::json_column(&common::encode_json(&serde_json::json!({"a": [1.5, "x"]}), false))),
    ];
    for (code, meta, value) in cases {
        decode(code, meta, false, &value).unwrap_or_else(|e| panic!("type {code}: {e}"));
        for cut in 0..value.len() {
            let err = decode(code, meta, false, &value[..cut]).unwrap_err();
            assert!(
                matches!(err, DecodeError::Column { column: 0, type_code, .. } if type_code == code),
                "type {code} cut at {cut}: {err}"
            );
        }
    }
}

/// Decode rate on the spike's 10-column table (BIGINT, INT, BIGINT UNSIGNED, VARCHAR(64),
/// DECIMAL(12,2), DATETIME(6), DOUBLE, INT UNSIGNED, VARCHAR(32), TINYINT). Run optimised:
/// `CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo test -p sluice-binlog --test rows throughput -- --ignored --nocapture`
#[test]
#[ignore]
fn throughput() {
    let p = plan(&[
        (ct::LONGLONG, 0, false),
        (ct::LONG, 0, false),
        (ct::LONGLONG, 0, true),
        (ct::VARCHAR, 256, false),
        (ct::NEWDECIMAL, 12 | 2 << 8, false),
        (ct::DATETIME2, 6, false),
        (ct::DOUBLE, 8, false),
        (ct::LONG, 0, true),
        (ct::VARCHAR, 128, false),
        (ct::TINY, 0, false),
    ]);
    // ~91 rows per event, as in the spike's binlog.
    let mut event = Vec::new();
    for i in 0..91u64 {
        event.extend_from_slice(&[0, 0]);
        event.extend_from_slice(&(i as i64).to_le_bytes());
        event.extend_from_slice(&(i as i32 * 7).to_le_bytes());
        event.extend_from_slice(&(u64::MAX - i).to_le_bytes());
        let name = format!("name-{i:040}");
        event.extend_from_slice(&(name.len() as u16).to_le_bytes());
        event.extend_from_slice(name.as_bytes());
        event.extend(common::encode_decimal(&format!("{}.{:02}", i * 1234, i % 100), 12, 2));
        event.extend(common::encode_datetime2(2024, 5, 6, 7, 8, 9, 123_456, 6));
        event.extend_from_slice(&(i as f64 / 3.0).to_le_bytes());
        event.extend_from_slice(&(i as u32).to_le_bytes());
        event.extend_from_slice(&[10]);
        event.extend_from_slice(b"short-text");
        event.push(i as u8);
    }
    let events = 1_000_000 / 91 + 1;
    let start = std::time::Instant::now();
    let (mut rows, mut non_null) = (0u64, 0usize);
    let mut out = Vec::with_capacity(10);
    for _ in 0..events {
        let mut reader = RowsReader::new(&p, &event);
        while reader.read_image(&[0xFF, 0x03], &mut out).unwrap() {
            rows += 1;
            non_null += out.iter().filter(|v| !v.is_null()).count();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(non_null as u64, rows * 10);
    println!("{rows} rows in {secs:.3} s: {:.0} rows/s", rows as f64 / secs);
}

// ---- What only the schema can tell: MariaDB's high-resolution temporals, BINARY(n), MariaDB's
// INET4/INET6/UUID. Byte vectors taken from MariaDB 10.11 binlogs (mysql56_temporal_format=OFF
// for the temporals). ----

/// Decodes `value` as the only column of type `code` after `adapt` adjusted its plan.
fn adapted(code: u8, meta: u16, adapt: impl Fn(&mut sluice_binlog::ColumnPlan) -> bool, value: &[u8]) -> Result<Value<'static>, DecodeError> {
    let mut plan = plan(&[(code, meta, false)]);
    assert!(adapt(&mut plan[0]), "the plan of type {code} accepts the adjustment");
    let mut data = vec![0x00];
    data.extend_from_slice(value);
    let mut reader = RowsReader::new(&plan, &data);
    let mut out = Vec::new();
    reader.read_image(&[1], &mut out)?;
    assert!(reader.is_done());
    Ok(out.pop().unwrap().into_owned())
}

fn fsp(n: u8) -> impl Fn(&mut sluice_binlog::ColumnPlan) -> bool {
    move |p| p.apply_schema_fsp(n)
}

#[test]
fn mariadb_hires_datetime() {
    // DATETIME(3) '2024-01-02 03:04:05.123': 7 bytes BE of packed µs / 1000.
    assert_eq!(adapted(ct::DATETIME, 0, fsp(3), &[0x00, 0x42, 0x2A, 0x83, 0xBC, 0xC1, 0x03]).unwrap(), datetime(2024, 1, 2, 3, 4, 5, 123_000));
    // DATETIME(6) '9999-12-31 23:59:59.999999': 8 bytes.
    assert_eq!(
        adapted(ct::DATETIME, 0, fsp(6), &[0x04, 0xFC, 0xEE, 0x39, 0x43, 0xBF, 0xFF, 0xFF]).unwrap(),
        datetime(9999, 12, 31, 23, 59, 59, 999_999)
    );
    // The zero date, fsp 1 (6 bytes).
    assert_eq!(adapted(ct::DATETIME, 0, fsp(1), &[0; 6]).unwrap(), datetime(0, 0, 0, 0, 0, 0, 0));
    // Mixed radix: one tenth of a second below day 2 is day 1, 23:59:59.9.
    assert_eq!(adapted(ct::DATETIME, 0, fsp(1), &1_727_999u64.to_be_bytes()[2..]).unwrap(), datetime(0, 0, 1, 23, 59, 59, 900_000));
    // Year 10000 (month 0, day 0) is out of range; truncation is an error.
    assert!(adapted(ct::DATETIME, 0, fsp(6), &(10_000u64 * 13 * 32 * 86_400 * 1_000_000).to_be_bytes()).is_err());
    assert!(adapted(ct::DATETIME, 0, fsp(6), &[0x04, 0xFC, 0xEE]).is_err());
}

#[test]
fn mariadb_hires_timestamp() {
    // TIMESTAMP(2) '2001-02-03 04:05:06.78' UTC: 4 bytes BE seconds, 1 byte hundredths.
    assert_eq!(
        adapted(ct::TIMESTAMP, 0, fsp(2), &[0x3A, 0x7B, 0x83, 0x72, 0x4E]).unwrap(),
        Value::Timestamp { secs: 981_173_106, micros: 780_000 }
    );
    // TIMESTAMP(6) '1970-01-01 00:00:01.000001': 3 fraction bytes.
    assert_eq!(adapted(ct::TIMESTAMP, 0, fsp(6), &[0, 0, 0, 1, 0, 0, 1]).unwrap(), Value::Timestamp { secs: 1, micros: 1 });
    // TIMESTAMP(4): 2 fraction bytes; 10000 ten-thousandths is a whole second too many.
    assert_eq!(adapted(ct::TIMESTAMP, 0, fsp(4), &[0, 0, 0, 1, 0x27, 0x0C]).unwrap(), Value::Timestamp { secs: 1, micros: 999_600 });
    assert!(adapted(ct::TIMESTAMP, 0, fsp(4), &[0, 0, 0, 1, 0x27, 0x10]).is_err());
    assert!(adapted(ct::TIMESTAMP, 0, fsp(2), &[0, 0, 0, 1]).is_err());
}

#[test]
fn mariadb_hires_time() {
    // TIME(1) '-00:00:01.5': 4 bytes BE of -15 + 839:00:00 in deciseconds.
    assert_eq!(adapted(ct::TIME, 0, fsp(1), &[0x01, 0xCC, 0xE0, 0x51]).unwrap(), time(true, 0, 0, 1, 500_000));
    // TIME(4) '12:34:56.7891': 5 bytes.
    assert_eq!(adapted(ct::TIME, 0, fsp(4), &[0x07, 0x23, 0x4C, 0x34, 0xD3]).unwrap(), time(false, 12, 34, 56, 789_100));
    // TIME(6) '838:59:59.999999' and '-838:59:59.999999': 6 bytes.
    assert_eq!(adapted(ct::TIME, 0, fsp(6), &[0x05, 0x7E, 0x7B, 0xBC, 0xF7, 0xFF]).unwrap(), time(false, 838, 59, 59, 999_999));
    assert_eq!(adapted(ct::TIME, 0, fsp(6), &[0x00, 0x00, 0x00, 0x00, 0x00, 0x01]).unwrap(), time(true, 838, 59, 59, 999_999));
    // The zero point is 00:00:00; one unit above the maximum is out of range.
    assert_eq!(adapted(ct::TIME, 0, fsp(2), &[0x12, 0x00, 0xC3, 0xC0]).unwrap(), time(false, 0, 0, 0, 0));
    assert!(adapted(ct::TIME, 0, fsp(6), &[0x05, 0x7E, 0x7B, 0xBC, 0xF8, 0x00]).is_err());
    assert!(adapted(ct::TIME, 0, fsp(3), &[0x01, 0xCC]).is_err());
}

#[test]
fn schema_fsp_applies_to_the_old_codes_only() {
    let mut p = plan(&[(ct::DATETIME, 0, false), (ct::DATETIME2, 3, false), (ct::TIME, 0, false), (ct::LONG, 0, false)]);
    assert!(!p[0].apply_schema_fsp(0), "fsp 0 is the old format itself");
    assert!(!p[0].apply_schema_fsp(7));
    assert!(!p[1].apply_schema_fsp(3), "DATETIME2 carries its own fsp");
    assert!(!p[3].apply_schema_fsp(3));
    assert!(p[2].apply_schema_fsp(6));
    // fsp 0: still the old 8-byte DATETIME.
    assert_eq!(ok(ct::DATETIME, 0, false, &20240102030405u64.to_le_bytes()), datetime(2024, 1, 2, 3, 4, 5, 0));
}

/// BINARY(n) as the schema says: STRING, real type 0xFE, max length n.
const fn binary_meta(n: u8) -> u16 {
    0xFE | (n as u16) << 8
}

#[test]
fn binary_is_padded_back() {
    let pad = |p: &mut sluice_binlog::ColumnPlan| p.pad_fixed_binary();
    // The server strips trailing 0x00 from BINARY(4): 'ab\0\0' arrives as 'ab'.
    assert_eq!(adapted(ct::STRING, binary_meta(4), pad, &[2, b'a', b'b']).unwrap(), bytes(b"ab\0\0"));
    assert_eq!(adapted(ct::STRING, binary_meta(4), pad, &[0]).unwrap(), bytes(&[0; 4]));
    assert_eq!(adapted(ct::STRING, binary_meta(4), pad, &[4, 1, 2, 3, 4]).unwrap(), bytes(&[1, 2, 3, 4]));
    assert!(adapted(ct::STRING, binary_meta(4), pad, &[5, 1, 2, 3, 4, 5]).is_err(), "longer than the column");
    // BINARY(255): 1-byte length.
    assert_eq!(adapted(ct::STRING, binary_meta(255), pad, &[1, 7]).unwrap(), bytes(&[[7].as_slice(), &[0; 254]].concat()));
    // Not for VARCHAR, ENUM or numbers.
    let mut p = plan(&[(ct::VARCHAR, 10, false), (ct::STRING, 0xF7 | 1 << 8, false), (ct::LONG, 0, false)]);
    assert!(p.iter_mut().all(|p| !p.pad_fixed_binary()));
}

#[test]
fn mariadb_inet_and_uuid_text() {
    use sluice_binlog::MariadbType::{Inet4, Inet6, Uuid};
    let text = |ty, meta, value: &[u8]| match adapted(ct::STRING, meta, move |p| p.decode_as_mariadb(ty), value) {
        Ok(Value::Bytes(b)) => String::from_utf8(b.into_owned()).unwrap(),
        other => panic!("{other:?}"),
    };
    // Trailing zero bytes are stripped like BINARY(n)'s.
    assert_eq!(text(Inet4, binary_meta(4), &[2, 1, 2]), "1.2.0.0");
    assert_eq!(text(Inet4, binary_meta(4), &[4, 255, 255, 255, 255]), "255.255.255.255");
    assert_eq!(text(Inet4, binary_meta(4), &[0]), "0.0.0.0");
    let v6 = |words: [u16; 8]| -> Vec<u8> {
        let mut b: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        while b.last() == Some(&0) {
            b.pop();
        }
        let mut out = vec![b.len() as u8];
        out.extend(b);
        out
    };
    for (words, want) in [
        ([0; 8], "::"),
        ([0, 0, 0, 0, 0, 0, 0, 1], "::1"),
        ([1, 0, 0, 0, 0, 0, 0, 0], "1::"),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], "2001:db8::1"),
        ([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304], "::ffff:1.2.3.4"),
        ([0, 0, 0, 0, 0, 0, 0x0102, 0x0304], "::1.2.3.4"),
        // A single zero word is compressed too; the first of equally long runs wins.
        ([1, 0, 2, 3, 4, 5, 6, 7], "1::2:3:4:5:6:7"),
        ([1, 0, 2, 0, 0, 3, 0, 0], "1:0:2::3:0:0"),
        ([0xfe80, 0, 0, 1, 0, 0, 0, 1], "fe80:0:0:1::1"),
        ([0xffff; 8], "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ] {
        assert_eq!(text(Inet6, binary_meta(16), &v6(words)), want, "{words:x?}");
    }
    let uuid = [0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x55, 0x44];
    let mut value = vec![14];
    value.extend(uuid);
    assert_eq!(text(Uuid, binary_meta(16), &value), "123e4567-e89b-12d3-a456-426655440000");
    // A value longer than the type, and plans of the wrong size or type, are refused.
    let mut p = plan(&[(ct::STRING, binary_meta(5), false), (ct::VARCHAR, 16, false)]);
    assert!(!p[0].decode_as_mariadb(Inet4) && !p[0].decode_as_mariadb(Uuid) && !p[1].decode_as_mariadb(Uuid));
    let mut p = plan(&[(ct::STRING, binary_meta(4), false)]);
    assert!(p[0].decode_as_mariadb(Inet4));
    let data = [0x00, 5, 1, 2, 3, 4, 5];
    let mut out = Vec::new();
    assert!(RowsReader::new(&p, &data).read_image(&[1], &mut out).is_err(), "5 bytes in an INET4");
    let mut out = Vec::new();
    assert!(RowsReader::new(&p, &[0x00, 4, 1, 2]).read_image(&[1], &mut out).is_err(), "truncated");
}
