//! Type fidelity end to end: a torture table per type family with edge values (and NULL in every
//! column) is inserted, updated one column at a time and deleted on a real server; the real
//! sluice binary streams it to Kafka; every column of every image decoded from Kafka (apache-avro,
//! exact DTS schema) must equal what `SELECT` returned from the source at that moment, compared
//! through one canonical text form per type (see [`Canon`]).
//!
//! Runs against the shared MariaDB, a private MariaDB with `mysql56_temporal_format=OFF` (the
//! old temporal encodings), and real Oracle MySQL when the test runner exported `SLUICE_MYSQL_*`
//! (skipped with a visible `SKIP:` line otherwise). Plus regression tests for known decoder traps.

mod common;

use std::{collections::HashMap, time::Duration};

use apache_avro::types::Value as Avro;
use common::*;
use mysql_async::{prelude::Queryable, Conn, Value as My};

// ---------------------------------------------------------------------------------------------
// The servers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    MariaDb,
    MySql,
}

/// A source server and the broker to stream into.
struct Server {
    flavor: Flavor,
    host: String,
    port: u16,
    user: String,
    password: String,
    admin_user: String,
    admin_password: String,
    brokers: String,
}

impl Server {
    fn mariadb() -> Server {
        let s = services();
        Server {
            flavor: Flavor::MariaDb,
            host: s.host,
            port: s.port,
            user: s.user,
            password: s.password,
            admin_user: s.admin_user,
            admin_password: s.admin_password,
            brokers: s.brokers,
        }
    }

    /// Real Oracle MySQL, when the test runner could start it.
    fn mysql() -> Option<Server> {
        let m = mysql_services()?;
        Some(Server {
            flavor: Flavor::MySql,
            host: m.host,
            port: m.port,
            user: m.user,
            password: m.password,
            admin_user: m.admin_user,
            admin_password: m.admin_password,
            brokers: services().brokers,
        })
    }

    /// A private MariaDB (dropped with the returned guard) started with `extra` options on top of
    /// a ROW binlog.
    fn temp_mariadb(extra: &[&str]) -> (Server, TempMariaDb) {
        let mut args = vec!["--skip-name-resolve", "--log-bin=mysql-bin", "--binlog-format=ROW", "--binlog-row-image=FULL"];
        args.extend_from_slice(extra);
        let db = TempMariaDb::start(&args);
        db.sql(
            "CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY 'admin'; \
             GRANT ALL ON *.* TO 'admin'@'127.0.0.1' WITH GRANT OPTION; \
             CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'; \
             GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'repl'@'127.0.0.1'",
        );
        let server = Server {
            flavor: Flavor::MariaDb,
            host: "127.0.0.1".into(),
            port: db.port,
            user: "repl".into(),
            password: "repl".into(),
            admin_user: "admin".into(),
            admin_password: "admin".into(),
            brokers: services().brokers,
        };
        (server, db)
    }

    async fn admin(&self) -> Conn {
        let mut c = admin_conn_to(&self.host, self.port, &self.admin_user, &self.admin_password).await;
        // Zero and partial-zero dates, out-of-range values clipped, UTC for TIMESTAMP text.
        c.query_drop("SET SESSION sql_mode = '', time_zone = '+00:00', NAMES utf8mb4").await.unwrap();
        c
    }

    fn task(&self, topic: &str, include: &str, start: &str) -> String {
        task_config_for(&self.host, self.port, &self.user, &self.password, &self.brokers, topic, include, start, "partition0", "")
    }
}

fn mysql_or_skip(test: &str) -> Option<Server> {
    let server = Server::mysql();
    if server.is_none() {
        eprintln!("SKIP: {test}: SLUICE_MYSQL_HOST is not set (scripts/mysql.sh could not start MySQL here)");
    }
    server
}

// ---------------------------------------------------------------------------------------------
// Canonical text forms

/// How one column's value is turned into canonical text, on both sides: the SQL expression the
/// source is asked for, and the DTS value union member (and its attributes) the record must hold.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Canon {
    /// `Integer`, with this precision; decimal text.
    Int(i32),
    /// `Decimal`: the text as MySQL prints it, precision and scale of that text.
    Decimal,
    /// `Float` holding a FLOAT: the double of the float's shortest text.
    Float,
    /// `Float` holding a DOUBLE, exactly.
    Double,
    /// `Integer` with the bit width as precision; the unsigned value.
    Bit(i32),
    /// `DateTime` with year, month, day: `YYYY-MM-DD`.
    Date,
    /// `DateTime` with hour…micros (negated when negative): `[-]HH:MM:SS[.f]` with fsp digits.
    Time(u8),
    /// `DateTime` with every part: `YYYY-MM-DD HH:MM:SS[.f]`.
    DateTime(u8),
    /// `Timestamp` (UTC seconds, micros): as DATETIME text in UTC, zero for 0.
    Timestamp(u8),
    /// `DateTime` with only the year: the year as a number.
    Year,
    /// `Character` with this charset: the bytes, hex.
    Chars(&'static str),
    /// `BinaryObject` typed TEXT or BLOB: the bytes, hex.
    Object(&'static str),
    /// `TextObject` typed ENUM or SET: the label text.
    Label(&'static str),
    /// `TextObject` typed JSON holding MySQL binary JSON as text: compared without the
    /// insignificant white space of MySQL's `SELECT` text.
    JsonBinary,
    /// `TextObject` typed JSON holding MariaDB's JSON text, byte for byte.
    JsonText,
    /// `BinaryGeometry`: the WKB (MySQL's value without its SRID), hex.
    Geometry,
    /// `Character` (charset ascii): MariaDB's INET4/INET6/UUID text.
    MariadbText,
}

impl Canon {
    /// The SQL expression that gives the canonical text of `col` (NULL for NULL).
    fn sql(self, col: &str) -> String {
        match self {
            Canon::Int(_) | Canon::Decimal | Canon::Date | Canon::Time(_) | Canon::DateTime(_) | Canon::Timestamp(_)
            | Canon::MariadbText => format!("CAST(`{col}` AS CHAR)"),
            Canon::JsonBinary => format!("CAST(`{col}` AS CHAR)"),
            // The raw value: the binary protocol gives FLOAT and DOUBLE bit-exact.
            Canon::Float | Canon::Double => format!("`{col}`"),
            Canon::Bit(_) | Canon::Year => format!("CAST(`{col}` + 0 AS CHAR)"),
            Canon::Chars(_) | Canon::Object(_) | Canon::JsonText => format!("HEX(`{col}`)"),
            Canon::Label(_) => format!("CONVERT(`{col}` USING utf8mb4)"),
            Canon::Geometry => format!("SUBSTRING(HEX(`{col}`), 9)"),
        }
    }

    /// Canonical text of what the source returned for [`sql`](Self::sql).
    fn of_source(self, v: &My) -> Option<String> {
        let text = |v: &My| match v {
            My::Bytes(b) => String::from_utf8(b.clone()).expect("canonical text is UTF-8"),
            My::Int(i) => i.to_string(),
            My::UInt(u) => u.to_string(),
            other => panic!("unexpected source value {other:?}"),
        };
        match (self, v) {
            (_, My::NULL) => None,
            (Canon::Float, My::Float(f)) => Some(format!("{:?}", widen(*f))),
            (Canon::Double, My::Double(d)) => Some(format!("{d:?}")),
            (Canon::Float | Canon::Double, other) => panic!("FLOAT/DOUBLE came as {other:?}"),
            (Canon::JsonBinary, v) => Some(compact_json(&text(v))),
            (Canon::JsonText, v) => Some(text(v).to_ascii_lowercase()),
            (Canon::Chars(_) | Canon::Object(_) | Canon::Geometry, v) => Some(text(v).to_ascii_lowercase()),
            (_, v) => Some(text(v)),
        }
    }

    /// Canonical text of one element of a DTS image, after checking its union member and
    /// attributes. Errors describe what is wrong.
    fn of_avro(self, v: &Avro) -> Result<Option<String>, String> {
        let (branch, inner) = match v {
            Avro::Union(b, inner) => (*b, &**inner),
            other => return Err(format!("not a union: {other:?}")),
        };
        if branch == 0 {
            return Ok(None);
        }
        let fields = match inner {
            Avro::Record(f) => f,
            other => return Err(format!("branch {branch} is not a record: {other:?}")),
        };
        let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v).ok_or(format!("no field {name}"));
        let string = |name: &str| match get(name)? {
            Avro::String(s) => Ok(s.clone()),
            other => Err(format!("{name} is {other:?}")),
        };
        let bytes = |name: &str| match get(name)? {
            Avro::Bytes(b) => Ok(b.clone()),
            other => Err(format!("{name} is {other:?}")),
        };
        let int = |name: &str| match get(name)? {
            Avro::Int(i) => Ok(*i),
            other => Err(format!("{name} is {other:?}")),
        };
        let part = |name: &str| match get(name)? {
            Avro::Union(0, _) => Ok(None),
            Avro::Union(1, b) => match **b {
                Avro::Int(i) => Ok(Some(i)),
                ref other => Err(format!("{name} is {other:?}")),
            },
            other => Err(format!("{name} is {other:?}")),
        };
        let expect_branch = |want: i32| {
            if branch as i32 == want {
                Ok(())
            } else {
                Err(format!("union branch {branch}, expected {want}: {inner:?}"))
            }
        };
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let parts = |names: &[&str]| -> Result<Vec<Option<i32>>, String> { names.iter().map(|n| part(n)).collect() };
        const ALL: [&str; 7] = ["year", "month", "day", "hour", "minute", "second", "millis"];

        Ok(Some(match self {
            Canon::Int(precision) => {
                expect_branch(1)?;
                if int("precision")? != precision {
                    return Err(format!("Integer precision {} instead of {precision}", int("precision")?));
                }
                string("value")?
            }
            Canon::Bit(width) => {
                expect_branch(1)?;
                if int("precision")? != width {
                    return Err(format!("BIT precision {} instead of {width}", int("precision")?));
                }
                string("value")?
            }
            Canon::Decimal => {
                expect_branch(3)?;
                let text = string("value")?;
                let digits = |s: &str| s.bytes().filter(u8::is_ascii_digit).count() as i32;
                let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
                let (p, s) = (digits(whole) + digits(frac), digits(frac));
                if (int("precision")?, int("scale")?) != (p, s) {
                    return Err(format!("Decimal {text} with precision/scale {}/{}", int("precision")?, int("scale")?));
                }
                text
            }
            Canon::Float | Canon::Double => {
                expect_branch(4)?;
                match get("value")? {
                    Avro::Double(d) => format!("{d:?}"),
                    other => return Err(format!("Float value {other:?}")),
                }
            }
            Canon::Date => {
                expect_branch(6)?;
                match parts(&ALL)?[..] {
                    [Some(y), Some(m), Some(d), None, None, None, None] => format!("{y:04}-{m:02}-{d:02}"),
                    ref p => return Err(format!("DATE parts {p:?}")),
                }
            }
            Canon::Year => {
                expect_branch(6)?;
                match parts(&ALL)?[..] {
                    [Some(y), None, None, None, None, None, None] => y.to_string(),
                    ref p => return Err(format!("YEAR parts {p:?}")),
                }
            }
            Canon::Time(fsp) => {
                expect_branch(6)?;
                match parts(&ALL)?[..] {
                    [None, None, None, Some(h), Some(m), Some(s), Some(us)] => {
                        let negative = h < 0 || m < 0 || s < 0 || us < 0;
                        if negative && (h > 0 || m > 0 || s > 0 || us > 0) {
                            return Err(format!("TIME parts with mixed signs {h} {m} {s} {us}"));
                        }
                        let sign = if negative { "-" } else { "" };
                        let (h, m, s, us) = (h.abs(), m.abs(), s.abs(), us.unsigned_abs());
                        format!("{sign}{h:02}:{m:02}:{s:02}{}", fraction(us, fsp))
                    }
                    ref p => return Err(format!("TIME parts {p:?}")),
                }
            }
            Canon::DateTime(fsp) => {
                expect_branch(6)?;
                match parts(&ALL)?[..] {
                    [Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s), Some(us)] => {
                        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{}", fraction(us as u32, fsp))
                    }
                    ref p => return Err(format!("DATETIME parts {p:?}")),
                }
            }
            Canon::Timestamp(fsp) => {
                expect_branch(5)?;
                let secs = match get("timestamp")? {
                    Avro::Long(s) => *s,
                    other => return Err(format!("timestamp {other:?}")),
                };
                let micros = int("millis")?;
                if !(0..1_000_000).contains(&micros) {
                    return Err(format!("Timestamp micros {micros}"));
                }
                if secs == 0 && micros == 0 {
                    format!("0000-00-00 00:00:00{}", fraction(0, fsp))
                } else {
                    format!("{}{}", utc_text(secs), fraction(micros as u32, fsp))
                }
            }
            Canon::Chars(charset) => {
                expect_branch(2)?;
                if string("charset")? != charset {
                    return Err(format!("charset {} instead of {charset}", string("charset")?));
                }
                hex(&bytes("value")?)
            }
            Canon::MariadbText => {
                expect_branch(2)?;
                if string("charset")? != "ascii" {
                    return Err(format!("charset {} instead of ascii", string("charset")?));
                }
                String::from_utf8(bytes("value")?).map_err(|e| e.to_string())?
            }
            Canon::Object(kind) => {
                expect_branch(10)?;
                if string("type")? != kind {
                    return Err(format!("BinaryObject type {} instead of {kind}", string("type")?));
                }
                hex(&bytes("value")?)
            }
            Canon::Label(kind) => {
                expect_branch(11)?;
                if string("type")? != kind {
                    return Err(format!("TextObject type {} instead of {kind}", string("type")?));
                }
                string("value")?
            }
            Canon::JsonBinary | Canon::JsonText => {
                expect_branch(11)?;
                if string("type")? != "JSON" {
                    return Err(format!("TextObject type {} instead of JSON", string("type")?));
                }
                let text = string("value")?;
                if self == Canon::JsonBinary {
                    if compact_json(&text) != text {
                        return Err(format!("JSON text is not compact: {text}"));
                    }
                    text
                } else {
                    hex(text.as_bytes())
                }
            }
            Canon::Geometry => {
                expect_branch(8)?;
                let wkb = bytes("value")?;
                let code = match wkb[..] {
                    [1, a, b, c, d, ..] => u32::from_le_bytes([a, b, c, d]),
                    [0, a, b, c, d, ..] => u32::from_be_bytes([a, b, c, d]),
                    _ => return Err(format!("not WKB: {wkb:?}")),
                };
                let names = ["GEOMETRY", "POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION"];
                let want = names.get(code as usize).copied().unwrap_or("GEOMETRY");
                if string("type")? != want {
                    return Err(format!("BinaryGeometry type {} for WKB type {code}", string("type")?));
                }
                hex(&wkb)
            }
        }))
    }
}

/// A FLOAT as DTS carries it: the double of its shortest decimal text.
fn widen(f: f32) -> f64 {
    f.to_string().parse().unwrap()
}

/// `.ffff` with `fsp` digits of `micros` (nothing for fsp 0).
fn fraction(micros: u32, fsp: u8) -> String {
    if fsp == 0 {
        assert_eq!(micros, 0, "a fraction in a column without one");
        String::new()
    } else {
        let digits = format!("{micros:06}");
        format!(".{}", &digits[..usize::from(fsp)])
    }
}

/// `YYYY-MM-DD HH:MM:SS` of UNIX seconds, UTC (proleptic Gregorian).
fn utc_text(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}

/// JSON text without white space outside strings (strings and numbers kept verbatim).
fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Torture tables

struct Col {
    name: &'static str,
    sql_type: String,
    canon: Canon,
    /// `Field.dataTypeNumber` expected for the column.
    type_number: i32,
}

fn col(name: &'static str, sql_type: impl Into<String>, canon: Canon, type_number: i32) -> Col {
    Col { name, sql_type: sql_type.into(), canon, type_number }
}

/// One table of a type family. Its first column is `id INT PRIMARY KEY`; row `i` (from 0) gets
/// id `i + 1`; row 0 is all NULL.
struct Table {
    name: String,
    cols: Vec<Col>,
    /// SQL expressions, one per column of `cols`, per row after the all-NULL one.
    rows: Vec<Vec<String>>,
    /// `(id, column index, SQL expression)`: each an UPDATE of one column of one row, which must
    /// change its value.
    updates: Vec<(i64, usize, String)>,
}

impl Table {
    fn new(name: &str, cols: Vec<Col>) -> Table {
        Table { name: name.into(), cols, rows: Vec::new(), updates: Vec::new() }
    }

    fn row(mut self, values: &[&str]) -> Table {
        assert_eq!(values.len(), self.cols.len(), "{}: row {values:?}", self.name);
        self.rows.push(values.iter().map(|v| v.to_string()).collect());
        self
    }

    /// The same value in every column.
    fn row_all(self, value: &str) -> Table {
        let n = self.cols.len();
        self.row(&vec![value; n])
    }

    fn update(mut self, id: i64, column: &str, value: &str) -> Table {
        let index = self.cols.iter().position(|c| c.name == column).unwrap_or_else(|| panic!("no column {column}"));
        self.updates.push((id, index, value.to_string()));
        self
    }

    fn create_sql(&self, db: &str) -> String {
        let cols: Vec<String> = self.cols.iter().map(|c| format!("`{}` {}", c.name, c.sql_type)).collect();
        format!("CREATE TABLE `{db}`.`{}` (id INT PRIMARY KEY, {})", self.name, cols.join(", "))
    }

    fn row_count(&self) -> usize {
        self.rows.len() + 1
    }
}

/// SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn integers() -> Table {
    let c = |name, t: &str, p| col(name, t, Canon::Int(p), match p { 1 => 1, 2 => 2, 3 => 9, 4 => 3, _ => 8 });
    Table::new(
        "integers",
        vec![
            c("ti", "TINYINT", 1),
            c("tiu", "TINYINT UNSIGNED", 1),
            c("si", "SMALLINT", 2),
            c("siu", "SMALLINT UNSIGNED", 2),
            c("mi", "MEDIUMINT", 3),
            c("miu", "MEDIUMINT UNSIGNED", 3),
            c("i", "INT", 4),
            c("iu", "INT UNSIGNED", 4),
            c("bi", "BIGINT", 8),
            c("biu", "BIGINT UNSIGNED", 8),
            c("b", "BOOL", 1),
        ],
    )
    .row(&["-128", "0", "-32768", "0", "-8388608", "0", "-2147483648", "0", "-9223372036854775808", "0", "0"])
    .row(&["127", "255", "32767", "65535", "8388607", "16777215", "2147483647", "4294967295", "9223372036854775807", "18446744073709551615", "1"])
    .row(&["-1", "1", "-1", "1", "-1", "1", "-1", "1", "-1", "9223372036854775808", "-1"])
    .row_all("0")
    .update(3, "biu", "18446744073709551614")
    .update(2, "bi", "NULL")
    .update(1, "tiu", "200")
}

fn decimals() -> Table {
    let d = |name, t: &str| col(name, t, Canon::Decimal, 246);
    let big = format!("{}.{}", "9".repeat(35), "9".repeat(30));
    let tiny = format!("0.{}1", "0".repeat(29));
    Table::new(
        "decimals",
        vec![
            d("d65_30", "DECIMAL(65,30)"),
            d("d65_0", "DECIMAL(65,0)"),
            d("d10_2", "DECIMAL(10,2)"),
            d("d5_5", "DECIMAL(5,5)"),
            d("d1", "DECIMAL(1,0)"),
            d("d18_9", "DECIMAL(18,9)"),
            d("d20_4u", "DECIMAL(20,4) UNSIGNED"),
            d("n", "NUMERIC(12)"),
        ],
    )
    .row(&[&big, &"9".repeat(65), "99999999.99", "0.99999", "9", "999999999.999999999", "9999999999999999.9999", "999999999999"])
    .row(&[&format!("-{big}"), &format!("-{}", "9".repeat(65)), "-99999999.99", "-0.99999", "-9", "-999999999.999999999", "0", "-999999999999"])
    .row(&[&tiny, "0", "0.01", "0.00001", "0", "0.000000001", "0.0001", "0"])
    .row(&["-1.5", "-1", "-0.50", "-0.5", "-1", "-123456789.123456789", "12345678901234.5678", "-42"])
    .row_all("0")
    .update(2, "d10_2", "12.34")
    .update(4, "d65_30", &format!("-{tiny}"))
}

fn floats() -> Table {
    Table::new("floats", vec![col("f", "FLOAT", Canon::Float, 4), col("d", "DOUBLE", Canon::Double, 5)])
        .row(&["0", "0"])
        .row(&["1.1", "0.1"])
        .row(&["-3.40282e38", "-1.7976931348623157e308"])
        .row(&["3.40282e38", "1.7976931348623157e308"])
        .row(&["1.17549e-38", "2.2250738585072014e-308"])
        .row(&["-1.5", "1e15"])
        .row(&["123456.7", "-123456789.123456789"])
        .row(&["-0.0", "-0.0"])
        .update(2, "f", "2.5")
        .update(3, "d", "3.141592653589793")
}

fn bits() -> Table {
    let b = |name, w: i32| col(name, format!("BIT({w})"), Canon::Bit(w), 16);
    Table::new("bits", vec![b("b1", 1), b("b7", 7), b("b8", 8), b("b9", 9), b("b63", 63), b("b64", 64)])
        .row_all("0")
        .row(&["b'1'", "b'1111111'", "b'11111111'", "b'111111111'", "9223372036854775807", "18446744073709551615"])
        .row(&["1", "b'1010101'", "b'10000000'", "b'100000000'", "4611686018427387904", "9223372036854775808"])
        .row(&["0", "1", "1", "1", "1", "1"])
        .update(3, "b64", "b'0'")
        .update(3, "b9", "b'10'")
}

fn dates() -> Table {
    Table::new("dates", vec![col("d", "DATE", Canon::Date, 10), col("y", "YEAR", Canon::Year, 13)])
        .row(&["'0000-00-00'", "'0000'"])
        .row(&["'2024-00-15'", "1901"])
        .row(&["'2024-02-00'", "2155"])
        .row(&["'1000-01-01'", "2024"])
        .row(&["'9999-12-31'", "'0000'"])
        .row(&["'2024-02-29'", "70"])
        .update(2, "d", "'2024-03-15'")
        .update(5, "y", "1999")
}

fn times() -> Table {
    let t = |name, fsp: u8| col(name, if fsp == 0 { "TIME".to_string() } else { format!("TIME({fsp})") }, Canon::Time(fsp), 11);
    Table::new("times", vec![t("t0", 0), t("t1", 1), t("t2", 2), t("t3", 3), t("t4", 4), t("t5", 5), t("t6", 6)])
        .row_all("'00:00:00'")
        .row_all("'-838:59:59'")
        .row_all("'838:59:59'")
        .row_all("'-00:00:01.5'")
        .row_all("'12:34:56.789012'")
        .row_all("'-00:00:00.000001'")
        .row_all("'-01:00:00.5'")
        .row_all("'-00:00:00.01'")
        .row_all("'100:00:00.99'")
        .update(2, "t1", "'-12:00:00.1'")
        .update(5, "t6", "'-838:59:58.999999'")
}

fn datetimes() -> Table {
    let t = |name, fsp: u8| col(name, if fsp == 0 { "DATETIME".to_string() } else { format!("DATETIME({fsp})") }, Canon::DateTime(fsp), 12);
    Table::new("datetimes", vec![t("t0", 0), t("t1", 1), t("t2", 2), t("t3", 3), t("t4", 4), t("t5", 5), t("t6", 6)])
        .row_all("'0000-00-00 00:00:00'")
        .row_all("'2024-00-15 10:00:00'")
        .row_all("'1000-01-01 00:00:00'")
        .row_all("'9999-12-31 23:59:59'")
        .row_all("'2024-02-29 12:34:56.123456'")
        .row_all("'1970-01-01 00:00:00.000001'")
        .row_all("'2000-06-15 23:59:59.5'")
        .update(3, "t3", "'2001-01-01 01:01:01.001'")
        .update(6, "t0", "'2030-01-01 00:00:00'")
}

fn timestamps() -> Table {
    let t = |name, fsp: u8| {
        let ty = if fsp == 0 { "TIMESTAMP".to_string() } else { format!("TIMESTAMP({fsp})") };
        col(name, format!("{ty} NULL DEFAULT NULL"), Canon::Timestamp(fsp), 7)
    };
    Table::new("timestamps", vec![t("t0", 0), t("t1", 1), t("t2", 2), t("t3", 3), t("t4", 4), t("t5", 5), t("t6", 6)])
        .row_all("'0000-00-00 00:00:00'")
        .row_all("'1970-01-01 00:00:01'")
        .row_all("'2038-01-19 03:14:07'")
        .row_all("'2024-02-29 12:34:56.123456'")
        .row_all("'2001-02-03 04:05:06.7'")
        .row_all("'1999-12-31 23:59:59.000001'")
        .update(2, "t6", "'2000-01-01 00:00:00.5'")
        .update(4, "t0", "'0000-00-00 00:00:00'")
}

/// CHAR, VARCHAR and every TEXT size in one character set.
fn strings(charset: &'static str, samples: &[&str]) -> Table {
    let name: &'static str = match charset {
        "utf8mb4" => "strings_utf8mb4",
        "utf8mb3" => "strings_utf8mb3",
        "latin1" => "strings_latin1",
        _ => "strings_gbk",
    };
    let cs = |t: &str| format!("{t} CHARACTER SET {charset}");
    let mut cols = vec![
        col("c10", cs("CHAR(10)"), Canon::Chars(charset), 254),
        col("c255", cs("CHAR(255)"), Canon::Chars(charset), 254),
        col("vc20", cs("VARCHAR(20)"), Canon::Chars(charset), 253),
        col("vc300", cs("VARCHAR(300)"), Canon::Chars(charset), 253),
        col("vcbin", format!("VARCHAR(20) CHARACTER SET {charset} COLLATE {charset}_bin"), Canon::Chars(charset), 253),
        col("tt", cs("TINYTEXT"), Canon::Object("TEXT"), 252),
        col("t", cs("TEXT"), Canon::Object("TEXT"), 252),
        col("mt", cs("MEDIUMTEXT"), Canon::Object("TEXT"), 252),
        col("lt", cs("LONGTEXT"), Canon::Object("TEXT"), 252),
    ];
    if charset == "utf8mb4" {
        cols.push(col("c64", cs("CHAR(64)"), Canon::Chars(charset), 254));
    }
    let n = cols.len();
    let mut table = Table::new(name, cols).row_all("''").row_all("'a  '").row_all("' lead'");
    for s in samples {
        table = table.row_all(&lit(s));
    }
    // Long values, in characters of the first sample, sized in bytes: past each length prefix's
    // 1- or 2-byte range where the type allows, but a record stays well under Kafka's 1 MB.
    let s0 = lit(samples[0]);
    let per = samples[0].len();
    let mut long: Vec<String> = [10, 255, 20, 300, 1, 60, 70_000 / per, 70_000 / per + 1, 150_000 / per, 64]
        .iter()
        .map(|n| format!("REPEAT({s0}, {n})"))
        .collect();
    long.truncate(n);
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    table
        .row(&long)
        .update(2, "vc20", &lit(samples[samples.len() - 1]))
        .update(4, "t", "'changed'")
}

fn binaries() -> Table {
    let b = |name, t: &str, canon, n| col(name, t, canon, n);
    let chars = Canon::Chars("binary");
    let blob = Canon::Object("BLOB");
    Table::new(
        "binaries",
        vec![
            b("b1", "BINARY(1)", chars, 254),
            b("b4", "BINARY(4)", chars, 254),
            b("b255", "BINARY(255)", chars, 254),
            b("vb10", "VARBINARY(10)", chars, 253),
            b("vb300", "VARBINARY(300)", chars, 253),
            b("tb", "TINYBLOB", blob, 252),
            b("bl", "BLOB", blob, 252),
            b("mb", "MEDIUMBLOB", blob, 252),
            b("lb", "LONGBLOB", blob, 252),
        ],
    )
    .row_all("''")
    .row_all("x'00'")
    .row_all("x'ff00'")
    .row_all("x'00ff0000'")
    .row_all("x'ffffffff'")
    .row_all("'a '")
    .row(&[
        "x'7f'",
        "x'01020304'",
        "REPEAT(x'a5', 255)",
        "REPEAT(x'00', 10)",
        "REPEAT(x'ff00', 150)",
        "REPEAT(x'00ff', 127)",
        "REPEAT(x'0f', 65535)",
        "REPEAT(x'f0', 70000)",
        "REPEAT(x'00ff', 100000)",
    ])
    .update(3, "b4", "x'ab'")
    .update(5, "lb", "x''")
}

fn enums_sets() -> Table {
    let many: Vec<String> = (0..64).map(|i| format!("'m{i}'")).collect();
    let labels300: Vec<String> = (0..300).map(|i| format!("'e{i}'")).collect();
    Table::new(
        "enums_sets",
        vec![
            col("e", "ENUM('a','b','c d','é','it''s')", Canon::Label("ENUM"), 247),
            col("e_latin1", "ENUM('x','ü') CHARACTER SET latin1", Canon::Label("ENUM"), 247),
            col("e300", format!("ENUM({})", labels300.join(",")), Canon::Label("ENUM"), 247),
            col("s", "SET('a','b','c','ö')", Canon::Label("SET"), 248),
            col("s64", format!("SET({})", many.join(",")), Canon::Label("SET"), 248),
        ],
    )
    .row(&["'a'", "'x'", "'e0'", "''", "''"])
    .row(&["'é'", "'ü'", "'e299'", "'a,c'", "'m0,m63'"])
    .row(&["'it''s'", "'x'", "'e255'", "'a,b,c,ö'", &lit(&(0..64).map(|i| format!("m{i}")).collect::<Vec<_>>().join(","))])
    .row(&["'nope'", "'nope'", "'nope'", "'b'", "'m31,m32'"])
    .update(2, "e", "'c d'")
    .update(3, "s", "'ö'")
}

/// A large JSON document (over 64 KiB, so objects and arrays take the large format).
fn big_json() -> String {
    let members: Vec<String> = (0..3000).map(|i| format!("\"key{i:05}\": [{i}, \"value {i}\", {}.5, null]", i * 7)).collect();
    format!("{{{}}}", members.join(", "))
}

fn json(flavor: Flavor) -> Table {
    let canon = if flavor == Flavor::MySql { Canon::JsonBinary } else { Canon::JsonText };
    // MariaDB json_valid() accepts 32 levels.
    let deep = format!("{}1{}", "[".repeat(31), "]".repeat(31));
    let mut t = Table::new("json", vec![col("j", "JSON", canon, 245)]);
    for doc in [
        "null", "true", "false", "0", "-1", "32767", "-32768", "65535", "65536", "2147483647", "-2147483649",
        "4294967295", "9223372036854775807", "-9223372036854775808", "18446744073709551615", "1.5", "-0.0", "0.1",
        "1e300", "1e-7", "1e15", "1e14", "123456789.125", "2.5e-310", "\"\"", "\"str\"",
        r#""é😀 \n\t\" \\ \u0001 \u001f \/""#, "{}", "[]", r#"{"b": 1, "a": 2, "aa": [1, 2.5, "x", null, true, {"c": {}}]}"#,
        r#"[1, [2, [3, [4]]], {"k": [{}]}]"#, r#"{"ünï": "cödé", "": ""}"#,
    ] {
        t = t.row(&[&lit(doc)]);
    }
    t.row(&[&lit(&deep)])
        .row(&[&lit(&big_json())])
        .row(&[&format!("JSON_ARRAY({})", lit(&"x".repeat(70_000)))])
        .row(&["JSON_OBJECT('dec', CAST(1.50 AS DECIMAL(5,2)), 'neg', CAST(-0.001 AS DECIMAL(10,3)), 'd', CAST('2024-01-02' AS DATE), \
                't', CAST('-01:02:03.5' AS TIME(1)), 'dt', CAST('2024-01-02 03:04:05.000006' AS DATETIME(6)), 'f', CAST(1.5 AS FLOAT))"])
        .row(&[if flavor == Flavor::MySql {
            // Opaque values only MySQL's binary JSON has: binary strings, BIT, YEAR; and the
            // integer types' extremes from SQL values.
            "JSON_OBJECT('bin', x'00ff', 'bit', b'101', 'y', CAST(2024 AS YEAR), 'u64', CAST(18446744073709551615 AS UNSIGNED), \
             'i64', CAST(-9223372036854775808 AS SIGNED), 'blob', CAST(REPEAT('z', 100) AS BINARY))"
        } else {
            "JSON_OBJECT('u64', 18446744073709551615, 'i64', -9223372036854775808)"
        }])
        .update(2, "j", "'[1, 2, 3]'")
        // Id 31 is the object with "aa".
        .update(31, "j", "JSON_SET(j, '$.aa[0]', 'one', '$.new', 1)")
}

fn geometries() -> Table {
    let g = |name, t: &str| col(name, t, Canon::Geometry, 255);
    Table::new(
        "geometries",
        vec![
            g("g", "GEOMETRY"),
            g("p", "POINT"),
            g("l", "LINESTRING"),
            g("pg", "POLYGON"),
            g("mp", "MULTIPOINT"),
            g("ml", "MULTILINESTRING"),
            g("mpg", "MULTIPOLYGON"),
            g("gc", "GEOMETRYCOLLECTION"),
        ],
    )
    .row(&[
        "ST_GeomFromText('POINT(-1.5 2.25)')",
        "ST_GeomFromText('POINT(0 0)')",
        "ST_GeomFromText('LINESTRING(0 0, 1 1, 2 -2)')",
        "ST_GeomFromText('POLYGON((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 3 2, 3 3, 2 2))')",
        "ST_GeomFromText('MULTIPOINT(1 1, 2 2)')",
        "ST_GeomFromText('MULTILINESTRING((0 0, 1 1), (2 2, 3 3))')",
        "ST_GeomFromText('MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))')",
        "ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(0 0, 1 1))')",
    ])
    .row(&[
        "ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))')",
        "ST_GeomFromText('POINT(1e300 -1e-300)')",
        "ST_GeomFromText('LINESTRING(0 0, 0 1)')",
        "ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))')",
        "ST_GeomFromText('MULTIPOINT(0 0)')",
        "ST_GeomFromText('MULTILINESTRING((0 0, 1 1))')",
        "ST_GeomFromText('MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)))')",
        "ST_GeomFromText('GEOMETRYCOLLECTION(POINT(3 4))')",
    ])
    .update(2, "p", "ST_GeomFromText('POINT(7 8)')")
}

fn mariadb_types() -> Table {
    Table::new(
        "mariadb_types",
        vec![
            col("i4", "INET4", Canon::MariadbText, 253),
            col("i6", "INET6", Canon::MariadbText, 253),
            col("u", "UUID", Canon::MariadbText, 253),
        ],
    )
    .row(&["'0.0.0.0'", "'::'", "'00000000-0000-0000-0000-000000000000'"])
    .row(&["'255.255.255.255'", "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'", "'ffffffff-ffff-ffff-ffff-ffffffffffff'"])
    .row(&["'1.2.0.0'", "'::1'", "'123e4567-e89b-12d3-a456-426655440000'"])
    .row(&["'10.0.0.1'", "'::ffff:1.2.3.4'", "'6ccd780c-baba-1026-9564-5b8c656024db'"])
    .row(&["'192.168.1.254'", "'::1.2.3.4'", "'1ef0c1a8-3a2b-6f00-8000-000000000000'"])
    .row(&["'127.0.0.1'", "'2001:db8::1'", "'f81d4fae-7dec-41d0-a765-00a0c91e6bf6'"])
    .row(&["'1.1.1.1'", "'1::'", "'00000001-0002-1003-8004-000000000005'"])
    .row(&["'8.8.8.8'", "'1:0:2:0:0:3:0:0'", "'01234567-89ab-cdef-0123-456789abcdef'"])
    .row(&["'9.9.9.9'", "'fe80::1:0:0:0:1'", "'00000000-0000-0000-0000-000000000001'"])
    .update(2, "i6", "'::2'")
    .update(3, "u", "'abcdefab-cdef-abcd-efab-cdefabcdefab'")
}

/// Every table of the torture test for a server flavour.
fn torture_tables(flavor: Flavor) -> Vec<Table> {
    let mut tables = vec![
        integers(),
        decimals(),
        floats(),
        bits(),
        dates(),
        times(),
        datetimes(),
        timestamps(),
        strings("utf8mb4", &["😀 é 中文", "ASCII only", "ü"]),
        strings("utf8mb3", &["é 中文", "plain"]),
        strings("latin1", &["éàü£", "x"]),
        strings("gbk", &["中文汉字", "abc"]),
        binaries(),
        enums_sets(),
        json(flavor),
        geometries(),
    ];
    if flavor == Flavor::MariaDb {
        tables.push(mariadb_types());
    }
    tables
}

// ---------------------------------------------------------------------------------------------
// The harness

/// Canonical images of every row of every table, by table name and id.
type Snapshot = HashMap<(String, i64), Vec<Option<String>>>;

async fn snapshot(c: &mut Conn, db: &str, tables: &[Table]) -> Snapshot {
    let mut out = Snapshot::new();
    for t in tables {
        out.extend(snapshot_rows(c, db, t, "TRUE").await);
    }
    out
}

/// Canonical images of the rows of `t` that `filter` (an SQL condition) selects.
async fn snapshot_rows(c: &mut Conn, db: &str, t: &Table, filter: &str) -> Snapshot {
    let mut out = Snapshot::new();
    {
        let exprs: Vec<String> = t.cols.iter().map(|col| col.canon.sql(col.name)).collect();
        let sql = format!("SELECT id, {} FROM `{db}`.`{}` WHERE {filter} ORDER BY id", exprs.join(", "), t.name);
        // exec: the binary protocol, so FLOAT and DOUBLE arrive bit-exact.
        let rows: Vec<mysql_async::Row> = c.exec(sql, ()).await.unwrap();
        for row in rows {
            let values = row.unwrap();
            let id = match &values[0] {
                My::Int(i) => *i,
                My::UInt(u) => *u as i64,
                other => panic!("id {other:?}"),
            };
            let canon = t.cols.iter().zip(&values[1..]).map(|(col, v)| col.canon.of_source(v)).collect();
            out.insert((t.name.clone(), id), canon);
        }
    }
    out
}

/// What one record must be.
struct Expect {
    op: &'static str,
    table: usize,
    id: i64,
    before: Option<Vec<Option<String>>>,
    after: Option<Vec<Option<String>>>,
}

/// Creates the tables in a fresh database, then (after the `session` statements) inserts,
/// updates and deletes every row while taking snapshots; returns the database, the start
/// position and the expected records.
///
/// With `ddl_in_stream` the stream starts before the CREATE statements, so sluice learns the
/// tables from the DDL in the binlog rather than from the server's catalog.
async fn run_statements(
    server: &Server,
    tables: &[Table],
    prefix: &str,
    session: &[&str],
    ddl_in_stream: bool,
) -> (String, String, Vec<Expect>) {
    let db = unique(prefix);
    let mut c = server.admin().await;
    let early_start = binlog_end(&mut c).await;
    c.query_drop(format!("CREATE DATABASE `{db}`")).await.unwrap();
    for t in tables {
        c.query_drop(t.create_sql(&db)).await.unwrap_or_else(|e| panic!("{}: {e}", t.create_sql(&db)));
    }
    let start = if ddl_in_stream { early_start } else { binlog_end(&mut c).await };
    for sql in session {
        c.query_drop(*sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    let mut expected = Vec::new();
    for (ti, t) in tables.iter().enumerate() {
        let names: Vec<String> = t.cols.iter().map(|c| format!("`{}`", c.name)).collect();
        c.query_drop(format!("INSERT INTO `{db}`.`{}` (id) VALUES (1)", t.name)).await.unwrap();
        for (i, row) in t.rows.iter().enumerate() {
            let sql = format!("INSERT INTO `{db}`.`{}` (id, {}) VALUES ({}, {})", t.name, names.join(", "), i + 2, row.join(", "));
            c.query_drop(&sql).await.unwrap_or_else(|e| panic!("{}: {e}", &sql[..sql.len().min(400)]));
        }
        let inserted = snapshot_rows(&mut c, &db, t, "TRUE").await;
        for id in 1..=t.row_count() as i64 {
            let after = inserted[&(t.name.clone(), id)].clone();
            expected.push(Expect { op: "INSERT", table: ti, id, before: None, after: Some(after) });
        }
    }
    // Each update's images: the row as selected before and after it.
    let mut current = snapshot(&mut c, &db, tables).await;
    for (ti, t) in tables.iter().enumerate() {
        for (id, index, value) in &t.updates {
            let sql = format!("UPDATE `{db}`.`{}` SET `{}` = {value} WHERE id = {id}", t.name, t.cols[*index].name);
            c.query_drop(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert_eq!(c.affected_rows(), 1, "{sql} must change its row");
            let key = (t.name.clone(), *id);
            let after = snapshot_rows(&mut c, &db, t, &format!("id = {id}")).await.remove(&key).unwrap();
            let before = current.insert(key, after.clone()).unwrap();
            let changed: Vec<usize> = (0..after.len()).filter(|&i| before[i] != after[i]).collect();
            assert_eq!(changed, vec![*index], "{sql} changes exactly its column");
            expected.push(Expect { op: "UPDATE", table: ti, id: *id, before: Some(before), after: Some(after) });
        }
    }
    for (ti, t) in tables.iter().enumerate() {
        c.query_drop(format!("DELETE FROM `{db}`.`{}`", t.name)).await.unwrap();
        for id in 1..=t.row_count() as i64 {
            let before = current[&(t.name.clone(), id)].clone();
            expected.push(Expect { op: "DELETE", table: ti, id, before: Some(before), after: None });
        }
    }
    (db, start, expected)
}

/// Streams `tables` through sluice and checks every record against the source's snapshots.
/// Returns the binlog position the statements started at.
async fn torture(server: &Server, tables: &[Table], prefix: &str, session: &[&str]) -> String {
    torture_with(server, tables, prefix, session, false).await
}

async fn torture_with(server: &Server, tables: &[Table], prefix: &str, session: &[&str], ddl_in_stream: bool) -> String {
    let (db, start, expected) = run_statements(server, tables, prefix, session, ddl_in_stream).await;
    let topic = unique(prefix);
    create_topic(&server.brokers, &topic, 1).await;
    let sluice = Sluice::start(&server.task(&topic, &format!("{db}.*"), &start));
    let (brokers, topic2, n) = (server.brokers.clone(), topic.clone(), expected.len());
    let log = sluice.dir().join("stderr.log");
    let consumed = tokio::task::spawn_blocking(move || consume_while_running(&brokers, &topic2, n, &log)).await;
    let stderr = sluice.stderr();
    let consumed = consumed.unwrap_or_else(|e| panic!("{e}; sluice stderr:\n{stderr}"));
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "sluice exits cleanly; stderr:\n{stderr}");

    let schemata = record_schema();
    let mut failures = Vec::new();
    let (mut cells, mut nulls) = (0usize, 0usize);
    for (n, (m, exp)) in consumed.iter().zip(&expected).enumerate() {
        let r = decode(&schemata, &m.value);
        let t = &tables[exp.table];
        let ctx = format!("record {n} ({} {}.{} id {})", exp.op, db, t.name, exp.id);
        assert_eq!(field(&r, "objectName"), &Avro::Union(1, Box::new(Avro::String(format!("{db}.{}", t.name)))), "{ctx}");
        let Avro::Enum(_, op) = field(&r, "operation") else { panic!("{ctx}: operation") };
        assert_eq!(op, exp.op, "{ctx}");
        // Fields: id, then the table's columns with their DTS type numbers.
        let mut want_fields = vec![("id".to_string(), 3)];
        want_fields.extend(t.cols.iter().map(|c| (c.name.to_string(), c.type_number)));
        let Avro::Union(2, fields) = field(&r, "fields") else { panic!("{ctx}: fields") };
        let Avro::Array(fields) = &**fields else { panic!() };
        let got_fields: Vec<(String, i32)> = fields
            .iter()
            .map(|f| match f {
                Avro::Record(f) => match (&f[0].1, &f[1].1) {
                    (Avro::String(n), Avro::Int(t)) => (n.clone(), *t),
                    _ => panic!("{ctx}: field {f:?}"),
                },
                _ => panic!("{ctx}: field {f:?}"),
            })
            .collect();
        assert_eq!(got_fields, want_fields, "{ctx}: fields");

        for (image_name, want) in [("beforeImages", &exp.before), ("afterImages", &exp.after)] {
            let image = field(&r, image_name);
            let Some(want) = want else {
                assert_eq!(image, &Avro::Union(0, Box::new(Avro::Null)), "{ctx}: {image_name}");
                continue;
            };
            let Avro::Union(2, values) = image else { panic!("{ctx}: {image_name} {image:?}") };
            let Avro::Array(values) = &**values else { panic!() };
            assert_eq!(values.len(), t.cols.len() + 1, "{ctx}: {image_name} length");
            assert_eq!(Canon::Int(4).of_avro(&values[0]), Ok(Some(exp.id.to_string())), "{ctx}: id");
            for ((col, value), want) in t.cols.iter().zip(&values[1..]).zip(want) {
                let got = col.canon.of_avro(value);
                cells += 1;
                nulls += usize::from(want.is_none());
                if got.as_ref() != Ok(want) {
                    let short = |s: &str| if s.len() > 300 { format!("{}…({} chars)", &s[..300], s.len()) } else { s.to_string() };
                    failures.push(format!(
                        "{ctx} {image_name} column {} {}: got {:?}, source says {:?}",
                        col.name,
                        col.sql_type,
                        got.map(|g| g.map(|s| short(&s))),
                        want.as_deref().map(short)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(consumed.len(), expected.len());
    eprintln!("{prefix}: {} records, {cells} column values ({nulls} NULL) equal to the source's", consumed.len());
    let mut c = server.admin().await;
    c.query_drop(format!("DROP DATABASE `{db}`")).await.unwrap();
    start
}

/// How many events of `event_type` (as SHOW BINLOG EVENTS names it) the source's binlog holds
/// from `start` (`file:pos`) on, over every later file too.
async fn count_binlog_events(server: &Server, start: &str, event_type: &str) -> usize {
    let mut c = server.admin().await;
    let (file, pos) = start.split_once(':').unwrap();
    let logs: Vec<mysql_async::Row> = c.query("SHOW BINARY LOGS").await.unwrap();
    let mut n = 0;
    for log in logs {
        let name: String = log.get(0).unwrap();
        if name.as_str() < file {
            continue;
        }
        let from = if name == file { pos } else { "4" };
        let events: Vec<mysql_async::Row> = c.query(format!("SHOW BINLOG EVENTS IN '{name}' FROM {from}")).await.unwrap();
        n += events.iter().filter(|e| e.get::<String, _>(2).as_deref() == Some(event_type)).count();
    }
    n
}

/// Reads `count` records of the single partition of `topic`, giving up early when sluice logged
/// a fatal error to `stderr_log` (and after a generous hang guard).
fn consume_while_running(brokers: &str, topic: &str, count: usize, stderr_log: &std::path::Path) -> Vec<Consumed> {
    use rdkafka::{
        consumer::{BaseConsumer, Consumer},
        ClientConfig, Message, Offset, TopicPartitionList,
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("types"))
        .set("enable.auto.commit", "false")
        .set("fetch.message.max.bytes", "4000000")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(300);
    let mut out = Vec::new();
    while out.len() < count {
        assert!(std::time::Instant::now() < end, "only {} of {count} records arrived in topic {topic}", out.len());
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(Consumed {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().unwrap_or_default().to_vec(),
                value: m.payload().unwrap_or_default().to_vec(),
            }),
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {
                let log = std::fs::read_to_string(stderr_log).unwrap_or_default();
                assert!(!log.contains("sluice: error:"), "sluice stopped after {} of {count} records", out.len());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The torture tests

#[tokio::test]
async fn torture_mariadb() {
    let server = Server::mariadb();
    torture(&server, &torture_tables(Flavor::MariaDb), "types", &[]).await;
}

/// MariaDB's old temporal encodings: with `mysql56_temporal_format=OFF`, TIME, DATETIME and
/// TIMESTAMP are written with the old type codes (11, 12, 7): the pre-5.6.4 formats for fsp 0
/// and MariaDB's own high-resolution formats, whose fsp only the schema knows, for fsp 1-6.
#[tokio::test]
async fn torture_mariadb_old_temporal_encodings() {
    let (server, _guard) = Server::temp_mariadb(&["--mysql56-temporal-format=OFF", "--binlog-row-metadata=FULL"]);
    let mut c = server.admin().await;
    let format: i64 = c.query_first("SELECT @@mysql56_temporal_format").await.unwrap().unwrap();
    assert_eq!(format, 0, "the server writes the old temporal formats");
    torture(&server, &[times(), datetimes(), timestamps(), dates()], "oldtemporal", &[]).await;
    // Tables created in the stream: the fsp comes from the CREATE TABLE statement.
    torture_with(&server, &[times(), datetimes(), timestamps()], "oldtemporalddl", &[], true).await;
}

/// The same, with the tables created after the stream's start: their shapes come from the
/// CREATE TABLE statements in the binlog.
#[tokio::test]
async fn torture_mariadb_tables_created_in_stream() {
    let server = Server::mariadb();
    torture_with(&server, &torture_tables(Flavor::MariaDb), "typesddl", &[], true).await;
}

#[tokio::test]
async fn torture_mysql_tables_created_in_stream() {
    let Some(server) = mysql_or_skip("torture_mysql_tables_created_in_stream") else { return };
    torture_with(&server, &torture_tables(Flavor::MySql), "typesddl", &[], true).await;
}

#[tokio::test]
async fn torture_mysql() {
    let Some(server) = mysql_or_skip("torture_mysql") else { return };
    torture(&server, &torture_tables(Flavor::MySql), "types", &[]).await;
}

/// MySQL's TRANSACTION_PAYLOAD: every transaction compressed (ZSTD), partial JSON on too.
#[tokio::test]
async fn torture_mysql_compressed_transactions() {
    let Some(server) = mysql_or_skip("torture_mysql_compressed_transactions") else { return };
    let session = ["SET SESSION binlog_transaction_compression = ON", "SET SESSION binlog_row_value_options = 'PARTIAL_JSON'"];
    let mut tables = torture_tables(Flavor::MySql);
    tables.push(partial_json());
    let start = torture(&server, &tables, "compressed", &session).await;
    // One compressed transaction per INSERT, UPDATE and DELETE statement (others may add theirs).
    let statements: usize = tables.iter().map(|t| t.row_count() + t.updates.len() + 1).sum();
    let payloads = count_binlog_events(&server, &start, "Transaction_payload").await;
    assert!(payloads >= statements, "{statements} statements wrote {payloads} TRANSACTION_PAYLOAD events");
}

/// MySQL's PARTIAL_UPDATE_ROWS (`binlog_row_value_options=PARTIAL_JSON`): JSON_SET,
/// JSON_REPLACE and JSON_REMOVE updates arrive as diffs, which sluice applies to the before
/// image; every after image must equal the document MySQL then selects.
#[tokio::test]
async fn torture_mysql_partial_json() {
    let Some(server) = mysql_or_skip("torture_mysql_partial_json") else { return };
    let session = ["SET SESSION binlog_row_value_options = 'PARTIAL_JSON'"];
    let start = torture(&server, &[partial_json(), json(Flavor::MySql)], "partialjson", &session).await;
    // Every JSON_SET/JSON_REPLACE/JSON_REMOVE update is a partial one.
    let partial = count_binlog_events(&server, &start, "Update_rows_partial").await;
    eprintln!("partial events: {partial}");
    assert!(partial >= 15, "the statements wrote {partial} PARTIAL_UPDATE_ROWS events");
}

/// JSON updated in place with JSON_SET / JSON_REPLACE / JSON_REMOVE, several times per row.
fn partial_json() -> Table {
    let j = |name| col(name, "JSON", Canon::JsonBinary, 245);
    Table::new("partial_json", vec![j("j"), j("k"), col("n", "INT", Canon::Int(4), 3)])
        .row(&[&lit(r#"{"a": [1, 2, {"b": "x"}], "c": 1.5, "zz": null}"#), "'[1, 2, 3]'", "0"])
        .row(&[&lit(r#"{"name": "n", "list": ["p", "q"], "ü": {"deep": {"er": [true]}}}"#), "'{}'", "0"])
        .row(&[&lit(&big_json()), "'[1]'", "0"])
        .row(&["'1'", "'\"scalar\"'", "0"])
        .update(2, "j", "JSON_SET(j, '$.a[2].b', 'yy', '$.d', TRUE)")
        .update(2, "j", "JSON_REMOVE(j, '$.c')")
        .update(2, "k", "JSON_SET(k, '$[1]', 20, '$[9]', 6)")
        .update(2, "j", "JSON_REPLACE(j, '$.a[0]', JSON_OBJECT('deep', JSON_ARRAY(1.25, 'two', CAST('2024-01-02' AS DATE))))")
        .update(2, "k", "JSON_SET(k, '$[last]', 'last', '$[0]', 0.5)")
        .update(2, "n", "7")
        .update(3, "j", r#"JSON_SET(j, '$."key with space"', 'v', '$.ab', 'mid', '$.b', 'short')"#)
        .update(3, "j", "JSON_REMOVE(j, '$.list[0]')")
        .update(3, "j", r#"JSON_SET(j, '$."ü".deep.er[0]', FALSE, '$."ü".deep.new', JSON_OBJECT())"#)
        .update(3, "k", "JSON_SET(k, '$.x', 1, '$.y', 'two')")
        .update(4, "j", "JSON_SET(j, '$.key01000[1]', 'changed in a large document')")
        .update(4, "j", "JSON_REMOVE(j, '$.key00000', '$.key02999')")
        .update(4, "k", "JSON_REPLACE(k, '$[0]', REPEAT('w', 70000))")
        .update(5, "j", "JSON_SET(j, '$', JSON_ARRAY(1, 2))")
        .update(5, "k", "JSON_SET(k, '$', 'other')")
}

// ---------------------------------------------------------------------------------------------
// MySQL GTIDs

/// Every record of a MySQL transaction carries its GTID: `uuid:n`, and `uuid:tag:n` for tagged
/// GTIDs (MySQL 8.4+, GTID_TAGGED_LOG_EVENT), automatic or explicit.
#[tokio::test]
async fn mysql_gtid_and_tagged_gtid_tags() {
    let Some(server) = mysql_or_skip("mysql_gtid_and_tagged_gtid_tags") else { return };
    let mut c = server.admin().await;
    let db = unique("gtid");
    c.query_drop(format!("CREATE DATABASE `{db}`")).await.unwrap();
    c.query_drop(format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY)")).await.unwrap();
    let uuid: String = c.query_first("SELECT @@server_uuid").await.unwrap().unwrap();
    let start = binlog_end(&mut c).await;
    // A tag unique to this run (tags: [a-z_][a-z0-9_]{0,31}).
    let tag = format!("t{}", unique("g").replace('_', "x")).to_ascii_lowercase();
    let tag = &tag[..tag.len().min(32)];
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (1)")).await.unwrap();
    c.query_drop(format!("SET gtid_next = 'AUTOMATIC:{tag}'")).await.unwrap();
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (2)")).await.unwrap();
    c.query_drop(format!("SET gtid_next = '{uuid}:{tag}:1000'")).await.unwrap();
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (3), (4)")).await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    c.query_drop("SET gtid_next = 'AUTOMATIC'").await.unwrap();

    let records = stream(&server, &db, &start, 4).await;
    let gtid = |r: &[(String, Avro)]| match field(r, "tags") {
        Avro::Map(tags) => match tags.get("GTID") {
            Some(Avro::String(g)) => g.clone(),
            other => panic!("GTID tag {other:?} in {tags:?}"),
        },
        other => panic!("tags {other:?}"),
    };
    let plain = gtid(&records[0]);
    let (u, n) = plain.rsplit_once(':').unwrap();
    assert_eq!(u, uuid, "untagged GTID {plain}");
    assert!(n.parse::<u64>().is_ok(), "untagged GTID {plain}");
    let tagged = gtid(&records[1]);
    let (prefix, n) = tagged.rsplit_once(':').unwrap();
    assert_eq!(prefix, format!("{uuid}:{tag}"), "automatic tagged GTID {tagged}");
    assert!(n.parse::<u64>().unwrap() >= 1);
    assert_eq!(gtid(&records[2]), format!("{uuid}:{tag}:1000"));
    assert_eq!(gtid(&records[3]), format!("{uuid}:{tag}:1000"), "both rows of the transaction");
    c.query_drop(format!("DROP DATABASE `{db}`")).await.unwrap();
}

/// Streams `db.*` from `start` and returns the first `n` records, decoded.
async fn stream(server: &Server, db: &str, start: &str, n: usize) -> Vec<Vec<(String, Avro)>> {
    let topic = unique("types");
    create_topic(&server.brokers, &topic, 1).await;
    let sluice = Sluice::start(&server.task(&topic, &format!("{db}.*"), start));
    let (brokers, topic2) = (server.brokers.clone(), topic.clone());
    let log = sluice.dir().join("stderr.log");
    let consumed = tokio::task::spawn_blocking(move || consume_while_running(&brokers, &topic2, n, &log)).await;
    let stderr = sluice.stderr();
    let consumed = consumed.unwrap_or_else(|e| panic!("{e}; sluice stderr:\n{stderr}"));
    let (code, stderr) = sluice.stop();
    assert_eq!(code, 0, "sluice exits cleanly; stderr:\n{stderr}");
    let schemata = record_schema();
    consumed.iter().map(|m| decode(&schemata, &m.value)).collect()
}

// ---------------------------------------------------------------------------------------------
// Regressions: known traps of binlog decoding (see the spike notes)

/// The image values of a record (`beforeImages` or `afterImages`).
fn image<'r>(r: &'r [(String, Avro)], name: &str) -> &'r [Avro] {
    match field(r, name) {
        Avro::Union(2, values) => match &**values {
            Avro::Array(values) => values,
            other => panic!("{name}: {other:?}"),
        },
        other => panic!("{name}: {other:?}"),
    }
}

fn dt(parts: [Option<i32>; 7]) -> Avro {
    let names = ["year", "month", "day", "hour", "minute", "second", "millis"];
    let opt = |v: Option<i32>| match v {
        Some(v) => Avro::Union(1, Box::new(Avro::Int(v))),
        None => Avro::Union(0, Box::new(Avro::Null)),
    };
    Avro::Union(6, Box::new(Avro::Record(names.iter().zip(parts).map(|(n, v)| (n.to_string(), opt(v))).collect())))
}

fn integer(precision: i32, value: &str) -> Avro {
    Avro::Union(
        1,
        Box::new(Avro::Record(vec![("precision".into(), Avro::Int(precision)), ("value".into(), Avro::String(value.into()))])),
    )
}

fn text_object(kind: &str, value: &str) -> Avro {
    Avro::Union(11, Box::new(Avro::Record(vec![("type".into(), Avro::String(kind.into())), ("value".into(), Avro::String(value.into()))])))
}

/// Signedness comes from the schema, not from the TABLE_MAP's optional metadata, which MariaDB
/// does not write by default (`binlog_row_metadata=NO_LOG`): without it a decoder that trusts
/// the binlog reads BIGINT UNSIGNED 18446744073709551615 as -1.
#[tokio::test]
async fn regression_unsigned_from_schema_without_row_metadata() {
    let (server, _guard) = Server::temp_mariadb(&["--binlog-row-metadata=NO_LOG"]);
    let mut c = server.admin().await;
    let metadata: String = c.query_first("SELECT @@binlog_row_metadata").await.unwrap().unwrap();
    assert_eq!(metadata, "NO_LOG");
    let db = unique("unsigned");
    c.query_drop(format!("CREATE DATABASE `{db}`")).await.unwrap();
    c.query_drop(format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, bu BIGINT UNSIGNED, tu TINYINT UNSIGNED, iu INT UNSIGNED, mu MEDIUMINT UNSIGNED, b BIGINT)"
    ))
    .await
    .unwrap();
    let start = binlog_end(&mut c).await;
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (1, 18446744073709551615, 255, 4294967295, 16777215, -1)")).await.unwrap();
    let records = stream(&server, &db, &start, 1).await;
    assert_eq!(
        image(&records[0], "afterImages"),
        &[
            integer(4, "1"),
            integer(8, "18446744073709551615"),
            integer(1, "255"),
            integer(4, "4294967295"),
            integer(3, "16777215"),
            integer(8, "-1"),
        ]
    );
    // And the whole integer family through the torture comparison.
    torture(&server, &[integers()], "unsigned", &[]).await;
}

/// mysql_common decodes negative TIME(1)/TIME(2) with a fraction wrongly (and panics in debug
/// builds), and YEAR 0000 as 1900. Exact DTS values: every part of a negative TIME negated,
/// YEAR 0 as year 0.
async fn negative_time_fractions_and_year_zero(server: &Server) {
    let mut c = server.admin().await;
    let db = unique("timeyear");
    c.query_drop(format!("CREATE DATABASE `{db}`")).await.unwrap();
    c.query_drop(format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY, t1 TIME(1), t2 TIME(2), y YEAR)")).await.unwrap();
    let start = binlog_end(&mut c).await;
    c.query_drop(format!(
        "INSERT INTO `{db}`.t VALUES (1, '-00:00:01.5', '-00:00:00.01', '0000'), (2, '-838:59:58.9', '-01:02:03.99', 2155), \
         (3, '-12:34:56.7', '-838:59:58.99', 1901)"
    ))
    .await
    .unwrap();
    let records = stream(server, &db, &start, 3).await;
    let time = |h, m, s, us| dt([None, None, None, Some(h), Some(m), Some(s), Some(us)]);
    let year = |y| dt([Some(y), None, None, None, None, None, None]);
    assert_eq!(image(&records[0], "afterImages")[1..], [time(0, 0, -1, -500_000), time(0, 0, 0, -10_000), year(0)]);
    assert_eq!(image(&records[1], "afterImages")[1..], [time(-838, -59, -58, -900_000), time(-1, -2, -3, -990_000), year(2155)]);
    assert_eq!(image(&records[2], "afterImages")[1..], [time(-12, -34, -56, -700_000), time(-838, -59, -58, -990_000), year(1901)]);
    c.query_drop(format!("DROP DATABASE `{db}`")).await.unwrap();
}

#[tokio::test]
async fn regression_negative_time_fractions_and_year_zero_mariadb() {
    negative_time_fractions_and_year_zero(&Server::mariadb()).await;
}

#[tokio::test]
async fn regression_negative_time_fractions_and_year_zero_mysql() {
    let Some(server) = mysql_or_skip("regression_negative_time_fractions_and_year_zero_mysql") else { return };
    negative_time_fractions_and_year_zero(&server).await;
}

/// JSON as each server writes it: MariaDB's JSON is a LONGTEXT (binlog type BLOB) holding the
/// text exactly as inserted, known to be JSON only by its CHECK (json_valid(...)); MySQL's is
/// binary JSON (type 245), printed compactly. Both are `TextObject` JSON, dataTypeNumber 245.
async fn json_as_the_server_writes_it(server: &Server) {
    let mut c = server.admin().await;
    let db = unique("jsonkind");
    c.query_drop(format!("CREATE DATABASE `{db}`")).await.unwrap();
    c.query_drop(format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY, j JSON, lt LONGTEXT)")).await.unwrap();
    let start = binlog_end(&mut c).await;
    let doc = r#"{"b":  [1, 2.50],   "a": "x"}"#;
    c.query_drop(format!("INSERT INTO `{db}`.t VALUES (1, {}, {})", lit(doc), lit(doc))).await.unwrap();
    let records = stream(server, &db, &start, 1).await;
    let fields = match field(&records[0], "fields") {
        Avro::Union(2, f) => match &**f {
            Avro::Array(f) => f.clone(),
            _ => unreachable!(),
        },
        other => panic!("fields {other:?}"),
    };
    let numbers: Vec<Avro> = fields
        .iter()
        .map(|f| match f {
            Avro::Record(f) => f[1].1.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(numbers, [Avro::Int(3), Avro::Int(245), Avro::Int(252)]);
    let after = image(&records[0], "afterImages");
    let want = match server.flavor {
        Flavor::MariaDb => doc.to_string(),
        // Binary JSON: keys sorted (length, then bytes), numbers as stored, no spaces.
        Flavor::MySql => r#"{"a":"x","b":[1,2.5]}"#.to_string(),
    };
    assert_eq!(after[1], text_object("JSON", &want));
    // The LONGTEXT without the check stays text.
    assert_eq!(
        after[2],
        Avro::Union(10, Box::new(Avro::Record(vec![("type".into(), Avro::String("TEXT".into())), ("value".into(), Avro::Bytes(doc.as_bytes().to_vec()))])))
    );
    c.query_drop(format!("DROP DATABASE `{db}`")).await.unwrap();
}

#[tokio::test]
async fn regression_mariadb_json_is_text() {
    json_as_the_server_writes_it(&Server::mariadb()).await;
}

#[tokio::test]
async fn regression_mysql_json_is_binary() {
    let Some(server) = mysql_or_skip("regression_mysql_json_is_binary") else { return };
    json_as_the_server_writes_it(&server).await;
}
