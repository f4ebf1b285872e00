//! The Alibaba Cloud DTS Avro format: one change becomes the plain Avro binary encoding of one
//! `com.alibaba.dts.formats.avro.Record` ([`record_schema_text`]), with no container header and
//! no magic byte.
//!
//! The encoder is hand-written and appends to a caller-owned buffer. Numbers are formatted on the
//! stack and strings are written straight into the buffer; the parts that depend only on the
//! table (`objectName`, `fields`, the `pk_uk_info` tag) are encoded once per table schema.
//! Rows whose schema comes in an `Arc` find those parts by address
//! ([`DtsAvroEncoder::encode_row_shared`]).
//!
//! [`decode_to_json`] reads a record back as JSON for people (see [`decode`]).
//!
//! How the fields are filled (where DTS's behaviour is unknown, this is sluice's choice):
//!
//! * `version` 0; `id`, `sourceTimestamp` (UNIX seconds) from [`ChangeMeta`]; `sourcePosition`
//!   and `safeSourcePosition` as `offset@fileIndex`; `sourceTxid` `"0"`; `source` is MySQL with
//!   the server's `VERSION()`; `processTimestamps` null; `bornTimestamp` = `sourceTimestamp`
//!   (seconds, as in the published DTS sample, although the schema says milliseconds).
//! * `objectName` is `db.table` with a literal `.` in either name escaped as `\u002E`. DDL uses
//!   `db` or `db.table` (when the table is known), and null when there is no default database.
//! * `tags`, in this order, DML: `pk_uk_info` (only for tables with keys, e.g.
//!   `{"PRIMARY":["id"]}`), `readerThroughoutTime`, `server_id`, `thread_id` and `GTID` (when
//!   known), then `initial_load` = `"true"` on the rows (and CREATE TABLE records) of the
//!   initial load, which are INSERTs. DDL: the same without `pk_uk_info`, then
//!   `commitTimestamp` (seconds).
//! * DML: `fields` lists every column with its binlog type code; INSERT has a null before-image,
//!   DELETE a null after-image, UPDATE both images in full. DDL: `fields` and `beforeImages`
//!   null, `afterImages` the SQL text (string branch).
//! * Values: SQL NULL is the null branch, a column missing from the image is `EmptyObject.NONE`.
//!   Integers are `Integer` with the storage size as precision (TINYINT 1 … BIGINT 8) and decimal
//!   text; BIT is `Integer` with the bit width as precision. DECIMAL keeps MySQL's text with the
//!   precision and scale *of that text* (`1050.00` → 6, 2). FLOAT is widened through its shortest
//!   decimal text (1.1 stays 1.1); `Float` precision and scale are the column's, else 0.
//!   TIMESTAMP is seconds plus microseconds (in the field DTS calls `millis`); DATETIME, DATE, TIME
//!   and YEAR are `DateTime` with only their own parts set, `millis` again in microseconds, and
//!   every part of a negative TIME negated. CHAR/VARCHAR/BINARY/VARBINARY are `Character` with
//!   the column charset (`binary` when unknown); TEXT and BLOB are `BinaryObject` typed `TEXT` or
//!   `BLOB`; JSON, ENUM (the label) and SET (labels joined by `,`) are `TextObject`; geometry is
//!   `BinaryGeometry` holding the WKB without MySQL's SRID prefix, typed by its WKB type name.
//!   A value that does not fit its column gets the mapping of its own kind.

pub mod decode;

pub use decode::{decode_to_json, DecodeError, DecodeErrorKind};

use std::borrow::Cow;
use std::collections::HashMap;
use std::ptr;
use std::sync::Arc;

use sluice_event::{
    ChangeMeta, ColumnSchema, DataType, DdlChange, RowChange, RowOp, TableSchema, Value,
};

/// The DTS `Record.avsc`, byte for byte: a JSON array of named types whose last one is `Record`.
pub fn record_schema_text() -> &'static str {
    include_str!("../schema/Record.avsc")
}

/// Escapes a database or table name for `objectName`: each `.` becomes the six characters
/// `\u002E`, so that readers can split the joined name on `.`.
pub fn escape_name(name: &str) -> Cow<'_, str> {
    if name.contains('.') {
        Cow::Owned(name.replace('.', "\\u002E"))
    } else {
        Cow::Borrowed(name)
    }
}

// Ordinals of the `Operation` enum.
const OP_INSERT: i64 = 0;
const OP_UPDATE: i64 = 1;
const OP_DELETE: i64 = 2;
const OP_DDL: i64 = 3;

/// Ordinal of `SourceType.MySQL`.
const SOURCE_MYSQL: i64 = 0;

// Branches of the nullable unions: `objectName` and `processTimestamps` (`[null, string]`,
// `[null, array]`), `fields` and the images (`[null, string, array]`), the parts of `DateTime`
// (`[null, int]`).
const NULL: i64 = 0;
const STRING: i64 = 1;
const ARRAY: i64 = 2;
const INT: i64 = 1;

// Branches of the VALUE union inside the image arrays. `TimestampWithTimeZone` (7) and
// `TextGeometry` (9) are never written for MySQL.
const VALUE_NULL: i64 = 0;
const VALUE_INTEGER: i64 = 1;
const VALUE_CHARACTER: i64 = 2;
const VALUE_DECIMAL: i64 = 3;
const VALUE_FLOAT: i64 = 4;
const VALUE_TIMESTAMP: i64 = 5;
const VALUE_DATETIME: i64 = 6;
const VALUE_BINARY_GEOMETRY: i64 = 8;
const VALUE_BINARY_OBJECT: i64 = 10;
const VALUE_TEXT_OBJECT: i64 = 11;
const VALUE_EMPTY_OBJECT: i64 = 12;

/// Ordinal of `EmptyObject.NONE`.
const EMPTY_OBJECT_NONE: i64 = 1;

/// Encodes changes as DTS Avro records. Keeps the table-dependent parts of the record, so reuse
/// one encoder for a stream.
///
/// # The per-table cache
///
/// The parts that depend only on the table are cached by database and table name, together with
/// the schema they were built from. A row whose `table` is that very schema (the same address)
/// reuses them at the cost of a pointer comparison; any other row compares its schema with the
/// cached one in full and rebuilds the parts when they differ.
///
/// An address only identifies a schema while its allocation cannot be freed and reused for
/// another one, so the cache keeps the allocation alive: hand the encoder the `Arc` the schema
/// lives in with [`encode_row_shared`](Self::encode_row_shared) and it holds a clone of it (the
/// last one given for each table name). Rows of that `Arc` then take the fast path, through
/// either method. A schema passed only by reference is copied into the cache, and its rows always
/// take the full comparison: its address could be reused (a schema mutated in place, a new one in
/// the same stack slot or in freed memory), so it proves nothing.
#[derive(Debug, Default)]
pub struct DtsAvroEncoder {
    /// Encoded per-table parts; entries are replaced, never removed.
    tables: Vec<TableParts>,
    /// Indexes into `tables`, by database then table name.
    by_name: HashMap<String, HashMap<String, usize>>,
    /// The index used last, tried first: rows come in runs of one table.
    last: usize,
    /// The encoded `sourceTimestamp` … `fields` of the last row, and what it was built from.
    prefix: Vec<u8>,
    prefix_key: Option<PrefixKey>,
    /// How often the cache compared schemas in full and built parts.
    #[cfg(test)]
    stats: CacheStats,
}

#[cfg(test)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct CacheStats {
    compares: usize,
    builds: usize,
}

/// The parts of a DML record that depend only on the table schema, already encoded.
#[derive(Debug)]
struct TableParts {
    /// The schema the parts were built from: the caller's own allocation when it came as an
    /// `Arc`, else a private copy. Holding it keeps its address from being reused, so a row whose
    /// table is at this address has this very schema.
    schema: Arc<TableSchema>,
    /// `objectName` (string branch).
    object_name: Vec<u8>,
    /// The `pk_uk_info` map entry (key and value), if the table has keys.
    pk_uk_info: Option<Vec<u8>>,
    /// `fields` (array branch).
    fields: Vec<u8>,
    /// Per column, the encoded start of its most common values (see [`ColumnHeads`]).
    heads: Vec<ColumnHeads>,
    /// Distinguishes these parts from earlier parts at the same index (the record prefix cache
    /// must not outlive the parts it was built from).
    generation: u64,
}

/// What every value of one kind in one column starts with, encoded once per table: the union
/// branch and the per-column attributes that follow it.
#[derive(Debug)]
struct ColumnHeads {
    /// `Integer` branch and precision, for `Int` and `UInt` values.
    integer: [u8; 2],
    /// For `Bytes` values: the branch and type name or charset, unless the column is JSON
    /// (whose text is re-checked as UTF-8 on every value).
    bytes: Option<Vec<u8>>,
}

impl ColumnHeads {
    fn new(column: &ColumnSchema) -> Self {
        let mut integer = Vec::with_capacity(2);
        put_long(&mut integer, VALUE_INTEGER);
        put_long(&mut integer, storage_bytes(Some(column.data_type)));
        let mut bytes = Vec::new();
        let t = column.data_type;
        if t.is_text_family() {
            put_long(&mut bytes, VALUE_BINARY_OBJECT);
            put_str(&mut bytes, "TEXT");
        } else if t.is_blob_family() {
            put_long(&mut bytes, VALUE_BINARY_OBJECT);
            put_str(&mut bytes, "BLOB");
        } else if t != DataType::Json {
            put_long(&mut bytes, VALUE_CHARACTER);
            put_str(&mut bytes, column.charset.as_deref().unwrap_or("binary"));
        }
        Self {
            integer: integer.try_into().expect("branch and precision take one byte each"),
            bytes: (t != DataType::Json).then_some(bytes),
        }
    }
}

/// What the record prefix (`sourceTimestamp` through `fields`) of the last row was built from.
/// Every row of one rows event shares it; only `id` and the images differ.
#[derive(Debug, PartialEq)]
struct PrefixKey {
    table: usize,
    generation: u64,
    operation: i64,
    source_timestamp: i64,
    file_index: u64,
    offset: u64,
    safe_file_index: u64,
    safe_offset: u64,
    server_id: u32,
    thread_id: Option<u32>,
    read_time_ms: i64,
    initial_load: bool,
    gtid: Option<String>,
    server_version: String,
}

impl PrefixKey {
    fn matches(&self, table: usize, generation: u64, operation: i64, meta: &ChangeMeta<'_>) -> bool {
        self.table == table
            && self.generation == generation
            && self.operation == operation
            && self.source_timestamp == meta.source_timestamp
            && self.file_index == meta.file_index
            && self.offset == meta.offset
            && self.safe_file_index == meta.safe_file_index
            && self.safe_offset == meta.safe_offset
            && self.server_id == meta.server_id
            && self.thread_id == meta.thread_id
            && self.read_time_ms == meta.read_time_ms
            && self.initial_load == meta.initial_load
            && self.gtid.as_deref() == meta.gtid
            && self.server_version == meta.server_version
    }
}

impl TableParts {
    /// The parts of `table`; `shared` is the `Arc` that `table` lives in, if known.
    fn new(table: &TableSchema, shared: Option<&Arc<TableSchema>>) -> Self {
        let mut object_name = Vec::new();
        put_long(&mut object_name, STRING);
        put_str(
            &mut object_name,
            &qualified_object_name(&table.db, Some(&table.table)),
        );

        let pk_uk_info = (!table.keys.is_empty()).then(|| {
            let mut entry = Vec::new();
            put_str(&mut entry, "pk_uk_info");
            put_str(&mut entry, &pk_uk_info_json(table));
            entry
        });

        let mut fields = Vec::new();
        put_long(&mut fields, ARRAY);
        put_array(&mut fields, table.columns.iter(), |out, column| {
            put_str(out, &column.name);
            put_long(out, data_type_number(column.data_type));
        });

        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Self {
            schema: shared.map_or_else(|| Arc::new(table.clone()), Arc::clone),
            object_name,
            pk_uk_info,
            fields,
            heads: table.columns.iter().map(ColumnHeads::new).collect(),
            generation: GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

impl DtsAvroEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the record of one row change to `out`.
    ///
    /// `change.table` takes the cache's fast path only when it is a schema that was given to
    /// [`encode_row_shared`](Self::encode_row_shared) (see [the cache](Self#the-per-table-cache)).
    pub fn encode_row(&mut self, change: &RowChange<'_>, out: &mut Vec<u8>) {
        self.encode_row_with(change, None, out);
    }

    /// Appends the record of one row change to `out`, where `schema` is the `Arc` that
    /// `change.table` points into. The encoder keeps a clone of `schema` (one per table name,
    /// until the table's schema changes), so that this and later rows of the same `Arc` are
    /// matched to the cached parts by address alone.
    ///
    /// If `change.table` is not the schema inside `schema`, `schema` is ignored and this is
    /// [`encode_row`](Self::encode_row).
    pub fn encode_row_shared(
        &mut self,
        change: &RowChange<'_>,
        schema: &Arc<TableSchema>,
        out: &mut Vec<u8>,
    ) {
        let shared = ptr::eq(Arc::as_ptr(schema), change.table).then_some(schema);
        self.encode_row_with(change, shared, out);
    }

    fn encode_row_with(
        &mut self,
        change: &RowChange<'_>,
        shared: Option<&Arc<TableSchema>>,
        out: &mut Vec<u8>,
    ) {
        let meta = change.meta;
        let index = self.table_index(change.table, shared);
        let parts = &self.tables[index];
        let operation = match change.op {
            RowOp::Insert => OP_INSERT,
            RowOp::Update => OP_UPDATE,
            RowOp::Delete => OP_DELETE,
        };
        // Everything between `id` and the images depends on the table and on the event, not on
        // the row: build it once per rows event.
        let fresh = self
            .prefix_key
            .as_ref()
            .is_some_and(|k| k.matches(index, parts.generation, operation, meta));
        if !fresh {
            self.prefix.clear();
            put_prefix(&mut self.prefix, meta, operation, parts);
            self.prefix_key = Some(PrefixKey {
                table: index,
                generation: parts.generation,
                operation,
                source_timestamp: meta.source_timestamp,
                file_index: meta.file_index,
                offset: meta.offset,
                safe_file_index: meta.safe_file_index,
                safe_offset: meta.safe_offset,
                server_id: meta.server_id,
                thread_id: meta.thread_id,
                read_time_ms: meta.read_time_ms,
                initial_load: meta.initial_load,
                gtid: meta.gtid.map(str::to_owned),
                server_version: meta.server_version.to_owned(),
            });
        }
        put_long(out, 0); // version
        put_long(out, meta.id);
        out.extend_from_slice(&self.prefix);

        let before = change.before.unwrap_or_default();
        let after = change.after.unwrap_or_default();
        let (before, after) = match change.op {
            RowOp::Insert => (None, Some(after)),
            RowOp::Update => (Some(before), Some(after)),
            RowOp::Delete => (Some(before), None),
        };
        let columns = &change.table.columns;
        put_image(out, before, columns, &parts.heads);
        put_image(out, after, columns, &parts.heads);
        put_long(out, meta.source_timestamp); // bornTimestamp
    }

    /// Appends the record of one DDL statement to `out`.
    pub fn encode_ddl(&mut self, change: &DdlChange<'_>, out: &mut Vec<u8>) {
        let meta = change.meta;
        put_header(out, meta, OP_DDL);
        if change.db.is_empty() {
            put_long(out, NULL);
        } else {
            put_long(out, STRING);
            put_str(out, &qualified_object_name(change.db, change.table));
        }
        put_long(out, NULL); // processTimestamps

        put_long(out, source_tag_count(meta) + 1);
        put_source_tags(out, meta);
        put_str(out, "commitTimestamp");
        put_str(out, itoa::Buffer::new().format(meta.source_timestamp));
        put_long(out, 0);

        put_long(out, NULL); // fields
        put_long(out, NULL); // beforeImages
        put_long(out, STRING); // afterImages: the statement
        put_str(out, change.sql);
        put_long(out, meta.source_timestamp); // bornTimestamp
    }

    /// The index of the cached parts of `table`, built or rebuilt when the cache has no parts
    /// of this schema. `shared`, if given, is the `Arc` that `table` lives in.
    fn table_index(&mut self, table: &TableSchema, shared: Option<&Arc<TableSchema>>) -> usize {
        // An entry holds its schema's allocation alive, so no other schema can be at its address.
        let is_cached = |parts: &TableParts| ptr::eq(Arc::as_ptr(&parts.schema), table);
        if self.tables.get(self.last).is_some_and(is_cached) {
            return self.last;
        }
        let found = self
            .by_name
            .get(&table.db)
            .and_then(|tables| tables.get(&table.table))
            .copied();
        let index = match found {
            Some(index) if is_cached(&self.tables[index]) => index,
            Some(index) => {
                #[cfg(test)]
                {
                    self.stats.compares += 1;
                }
                if *self.tables[index].schema != *table {
                    self.tables[index] = self.build(table, shared);
                } else if let Some(shared) = shared {
                    // The same schema in another allocation: keep the parts, and hold the new
                    // allocation, whose rows will follow.
                    self.tables[index].schema = Arc::clone(shared);
                }
                index
            }
            None => {
                let parts = self.build(table, shared);
                self.tables.push(parts);
                let index = self.tables.len() - 1;
                self.by_name
                    .entry(table.db.clone())
                    .or_default()
                    .insert(table.table.clone(), index);
                index
            }
        };
        self.last = index;
        index
    }

    fn build(&mut self, table: &TableSchema, shared: Option<&Arc<TableSchema>>) -> TableParts {
        #[cfg(test)]
        {
            self.stats.builds += 1;
        }
        TableParts::new(table, shared)
    }
}

/// `version` through `operation`, which every record has in common.
fn put_header(out: &mut Vec<u8>, meta: &ChangeMeta<'_>, operation: i64) {
    put_long(out, 0); // version
    put_long(out, meta.id);
    put_long(out, meta.source_timestamp);
    put_position(out, meta.offset, meta.file_index);
    put_position(out, meta.safe_offset, meta.safe_file_index);
    put_str(out, "0"); // sourceTxid
    put_long(out, SOURCE_MYSQL);
    put_str(out, meta.server_version);
    put_long(out, operation);
}

/// A DML record from `sourceTimestamp` through `fields`: [`put_header`] less `version` and `id`,
/// then `objectName`, `processTimestamps`, `tags` and `fields`.
fn put_prefix(out: &mut Vec<u8>, meta: &ChangeMeta<'_>, operation: i64, parts: &TableParts) {
    put_long(out, meta.source_timestamp);
    put_position(out, meta.offset, meta.file_index);
    put_position(out, meta.safe_offset, meta.safe_file_index);
    put_str(out, "0"); // sourceTxid
    put_long(out, SOURCE_MYSQL);
    put_str(out, meta.server_version);
    put_long(out, operation);
    out.extend_from_slice(&parts.object_name);
    put_long(out, NULL); // processTimestamps

    put_long(
        out,
        i64::from(parts.pk_uk_info.is_some()) + source_tag_count(meta),
    );
    if let Some(entry) = &parts.pk_uk_info {
        out.extend_from_slice(entry);
    }
    put_source_tags(out, meta);
    put_long(out, 0);

    out.extend_from_slice(&parts.fields);
}

/// A binlog position as the string `offset@fileIndex`.
fn put_position(out: &mut Vec<u8>, offset: u64, file_index: u64) {
    let (mut offset_buf, mut index_buf) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (offset, index) = (offset_buf.format(offset), index_buf.format(file_index));
    put_len(out, offset.len() + 1 + index.len());
    out.extend_from_slice(offset.as_bytes());
    out.push(b'@');
    out.extend_from_slice(index.as_bytes());
}

/// How many entries [`put_source_tags`] writes.
fn source_tag_count(meta: &ChangeMeta<'_>) -> i64 {
    2 + i64::from(meta.thread_id.is_some()) + i64::from(meta.gtid.is_some()) + i64::from(meta.initial_load)
}

/// The tags that describe where a change was read: reader time, server, thread and GTID.
fn put_source_tags(out: &mut Vec<u8>, meta: &ChangeMeta<'_>) {
    put_str(out, "readerThroughoutTime");
    put_str(out, itoa::Buffer::new().format(meta.read_time_ms));
    put_str(out, "server_id");
    put_str(out, itoa::Buffer::new().format(meta.server_id));
    if let Some(thread_id) = meta.thread_id {
        put_str(out, "thread_id");
        put_str(out, itoa::Buffer::new().format(thread_id));
    }
    if let Some(gtid) = meta.gtid {
        put_str(out, "GTID");
        put_str(out, gtid);
    }
    if meta.initial_load {
        put_str(out, "initial_load");
        put_str(out, "true");
    }
}

/// `db` or `db.table`, each name escaped.
fn qualified_object_name(db: &str, table: Option<&str>) -> String {
    let mut name = escape_name(db).into_owned();
    if let Some(table) = table {
        name.push('.');
        name.push_str(&escape_name(table));
    }
    name
}

/// The `pk_uk_info` tag: each key's name mapped to its column names, in the schema's key order.
fn pk_uk_info_json(table: &TableSchema) -> String {
    let mut json = String::from("{");
    for (i, key) in table.keys.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        push_json_string(&mut json, &key.name);
        json.push_str(":[");
        let columns = key
            .columns
            .iter()
            .filter_map(|&index| table.columns.get(index));
        for (j, column) in columns.enumerate() {
            if j > 0 {
                json.push(',');
            }
            push_json_string(&mut json, &column.name);
        }
        json.push(']');
    }
    json.push('}');
    json
}

fn push_json_string(json: &mut String, s: &str) {
    json.push('"');
    for c in s.chars() {
        match c {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            '\n' => json.push_str("\\n"),
            '\r' => json.push_str("\\r"),
            '\t' => json.push_str("\\t"),
            c if c < ' ' => json.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => json.push(c),
        }
    }
    json.push('"');
}

/// `Field.dataTypeNumber`: the MySQL binlog type code DTS reports for a column type.
fn data_type_number(data_type: DataType) -> i64 {
    use DataType::*;
    match data_type {
        TinyInt => 1,
        SmallInt => 2,
        Int => 3,
        Float => 4,
        Double => 5,
        Timestamp => 7,
        BigInt => 8,
        MediumInt => 9,
        Date => 10,
        Time => 11,
        DateTime => 12,
        Year => 13,
        Bit => 16,
        Json => 245,
        Decimal => 246,
        Enum => 247,
        Set => 248,
        TinyText | Text | MediumText | LongText | TinyBlob | Blob | MediumBlob | LongBlob => 252,
        VarChar | VarBinary | Other => 253,
        Char | Binary => 254,
        Geometry => 255,
    }
}

/// A row image (array branch), or the null branch when the operation has no such image.
fn put_image(
    out: &mut Vec<u8>,
    image: Option<&[Value<'_>]>,
    columns: &[ColumnSchema],
    heads: &[ColumnHeads],
) {
    let Some(values) = image else {
        return put_long(out, NULL);
    };
    put_long(out, ARRAY);
    put_array(out, values.iter().enumerate(), |out, (i, value)| {
        // The common kinds start with bytes encoded once per column; the rest, and values
        // beyond the schema, take the general path.
        match (value, heads.get(i)) {
            (Value::Int(v), Some(h)) => {
                out.extend_from_slice(&h.integer);
                put_str(out, itoa::Buffer::new().format(*v));
            }
            (Value::UInt(v), Some(h)) => {
                out.extend_from_slice(&h.integer);
                put_str(out, itoa::Buffer::new().format(*v));
            }
            (Value::Bytes(bytes), Some(ColumnHeads { bytes: Some(head), .. })) => {
                out.extend_from_slice(head);
                put_bytes(out, bytes);
            }
            _ => put_value(out, value, columns.get(i)),
        }
    });
}

/// One element of an image: a branch of the VALUE union. `column` is `None` when the image is
/// longer than the schema.
fn put_value(out: &mut Vec<u8>, value: &Value<'_>, column: Option<&ColumnSchema>) {
    let data_type = column.map(|c| c.data_type);
    let labels = column.map_or(&[][..], |c| &c.labels);
    match *value {
        Value::Null => put_long(out, VALUE_NULL),
        Value::Absent => {
            put_long(out, VALUE_EMPTY_OBJECT);
            put_long(out, EMPTY_OBJECT_NONE);
        }
        Value::Int(v) => put_integer(out, storage_bytes(data_type), itoa::Buffer::new().format(v)),
        Value::UInt(v) => put_integer(out, storage_bytes(data_type), itoa::Buffer::new().format(v)),
        Value::Bit(v) => {
            let width = column.and_then(|c| c.precision);
            put_integer(out, attribute(width), itoa::Buffer::new().format(v));
        }
        Value::Decimal(ref text) => put_decimal(out, text),
        Value::Float(v) => put_float(out, widen(v), column),
        Value::Double(v) => put_float(out, v, column),
        Value::Timestamp { secs, micros } => {
            put_long(out, VALUE_TIMESTAMP);
            put_long(out, secs);
            put_long(out, micros.into());
        }
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        } => put_datetime(
            out,
            [
                Some(year.into()),
                Some(month.into()),
                Some(day.into()),
                Some(hour.into()),
                Some(minute.into()),
                Some(second.into()),
                Some(micros.into()),
            ],
        ),
        Value::Date { year, month, day } => put_datetime(
            out,
            [
                Some(year.into()),
                Some(month.into()),
                Some(day.into()),
                None,
                None,
                None,
                None,
            ],
        ),
        Value::Time {
            negative,
            hours,
            minutes,
            seconds,
            micros,
        } => {
            let sign = if negative { -1 } else { 1 };
            put_datetime(
                out,
                [
                    None,
                    None,
                    None,
                    Some(sign * i64::from(hours)),
                    Some(sign * i64::from(minutes)),
                    Some(sign * i64::from(seconds)),
                    Some(sign * i64::from(micros)),
                ],
            )
        }
        Value::Year(year) => {
            put_datetime(out, [Some(year.into()), None, None, None, None, None, None])
        }
        Value::Bytes(ref bytes) => match data_type {
            Some(t) if t.is_text_family() => put_object(out, VALUE_BINARY_OBJECT, "TEXT", bytes),
            Some(t) if t.is_blob_family() => put_object(out, VALUE_BINARY_OBJECT, "BLOB", bytes),
            // MariaDB stores JSON as text.
            Some(DataType::Json) => put_object(
                out,
                VALUE_TEXT_OBJECT,
                "JSON",
                String::from_utf8_lossy(bytes).as_bytes(),
            ),
            _ => {
                put_long(out, VALUE_CHARACTER);
                put_str(
                    out,
                    column
                        .and_then(|c| c.charset.as_deref())
                        .unwrap_or("binary"),
                );
                put_bytes(out, bytes);
            }
        },
        Value::Enum(index) => {
            let label = usize::from(index)
                .checked_sub(1)
                .and_then(|i| labels.get(i));
            put_object(
                out,
                VALUE_TEXT_OBJECT,
                "ENUM",
                label.map_or(&[][..], |l| l.as_bytes()),
            );
        }
        Value::Set(mask) => put_set(out, labels, mask),
        Value::Json(ref text) => put_object(out, VALUE_TEXT_OBJECT, "JSON", text.as_bytes()),
        Value::Geometry(ref bytes) => {
            let wkb = bytes.get(4..).unwrap_or_default();
            put_object(out, VALUE_BINARY_GEOMETRY, wkb_type_name(wkb), wkb);
        }
    }
}

/// `Integer.precision`: the column's storage size in bytes (BIGINT's 8 when unknown).
fn storage_bytes(data_type: Option<DataType>) -> i64 {
    match data_type {
        Some(DataType::TinyInt) => 1,
        Some(DataType::SmallInt) => 2,
        Some(DataType::MediumInt) => 3,
        Some(DataType::Int) => 4,
        _ => 8,
    }
}

/// A column attribute as an Avro int, 0 when unknown.
fn attribute(value: Option<u32>) -> i64 {
    value.map_or(0, |v| v.min(i32::MAX as u32).into())
}

fn put_integer(out: &mut Vec<u8>, precision: i64, digits: &str) {
    put_long(out, VALUE_INTEGER);
    put_long(out, precision);
    put_str(out, digits);
}

/// `Decimal`: the text as given, with the precision and scale of that text (all its digits,
/// and those after the point).
fn put_decimal(out: &mut Vec<u8>, text: &str) {
    let digits = |s: &str| s.bytes().filter(u8::is_ascii_digit).count();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let scale = digits(fraction);
    put_long(out, VALUE_DECIMAL);
    put_str(out, text);
    put_len(out, digits(whole) + scale);
    put_len(out, scale);
}

/// A FLOAT as the double of its shortest decimal text, so that 1.1f32 becomes 1.1.
fn widen(value: f32) -> f64 {
    if value.is_finite() {
        ryu::Buffer::new()
            .format_finite(value)
            .parse()
            .unwrap_or(value.into())
    } else {
        value.into()
    }
}

fn put_float(out: &mut Vec<u8>, value: f64, column: Option<&ColumnSchema>) {
    put_long(out, VALUE_FLOAT);
    out.extend_from_slice(&value.to_le_bytes());
    put_long(out, attribute(column.and_then(|c| c.precision)));
    put_long(out, attribute(column.and_then(|c| c.scale)));
}

/// `DateTime`: year, month, day, hour, minute, second, microseconds; `None` is the null branch.
fn put_datetime(out: &mut Vec<u8>, parts: [Option<i64>; 7]) {
    put_long(out, VALUE_DATETIME);
    for part in parts {
        match part {
            Some(v) => {
                put_long(out, INT);
                put_long(out, v);
            }
            None => put_long(out, NULL),
        }
    }
}

/// One of the `{type, value}` records (`BinaryObject`, `TextObject`, `BinaryGeometry`): string
/// and bytes values look the same on the wire.
fn put_object(out: &mut Vec<u8>, branch: i64, type_name: &str, value: &[u8]) {
    put_long(out, branch);
    put_str(out, type_name);
    put_bytes(out, value);
}

/// A SET as a `TextObject`: the labels of the set bits joined by `,` (unlabelled bits dropped).
fn put_set(out: &mut Vec<u8>, labels: &[String], mask: u64) {
    let members = || {
        labels
            .iter()
            .take(64)
            .enumerate()
            .filter(move |&(bit, _)| mask >> bit & 1 == 1)
            .map(|(_, l)| l.as_bytes())
    };
    let (count, len) = members().fold((0_usize, 0), |(count, len), label| {
        (count + 1, len + label.len())
    });
    put_long(out, VALUE_TEXT_OBJECT);
    put_str(out, "SET");
    put_len(out, len + count.saturating_sub(1));
    for (i, label) in members().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(label);
    }
}

/// The upper-case name of a WKB geometry's type, `GEOMETRY` when it cannot be read.
fn wkb_type_name(wkb: &[u8]) -> &'static str {
    let code = match *wkb {
        [0, a, b, c, d, ..] => u32::from_be_bytes([a, b, c, d]),
        [1, a, b, c, d, ..] => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    };
    match code {
        1 => "POINT",
        2 => "LINESTRING",
        3 => "POLYGON",
        4 => "MULTIPOINT",
        5 => "MULTILINESTRING",
        6 => "MULTIPOLYGON",
        7 => "GEOMETRYCOLLECTION",
        _ => "GEOMETRY",
    }
}

/// An Avro array as a single block: item count, the items, then the empty block that ends it
/// (an empty array is just that).
fn put_array<I: ExactSizeIterator>(
    out: &mut Vec<u8>,
    items: I,
    mut put_item: impl FnMut(&mut Vec<u8>, I::Item),
) {
    if items.len() > 0 {
        put_len(out, items.len());
        items.for_each(|item| put_item(out, item));
    }
    put_long(out, 0);
}

/// An Avro `int` or `long`: zigzag, then little-endian base-128 groups.
fn put_long(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push(zigzag as u8 | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    put_long(out, len as i64);
}

/// Avro `bytes`, and `string` (its UTF-8 bytes): the length, then the bytes.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn meta() -> ChangeMeta<'static> {
        ChangeMeta {
            id: 1,
            source_timestamp: 2,
            file_index: 3,
            offset: 4,
            safe_file_index: 3,
            safe_offset: 4,
            server_id: 5,
            thread_id: None,
            gtid: None,
            server_version: "8.0",
            read_time_ms: 6,
            initial_load: false,
        }
    }

    fn schema(db: &str, columns: &[&str]) -> TableSchema {
        TableSchema {
            db: db.into(),
            table: "t".into(),
            columns: columns
                .iter()
                .map(|name| ColumnSchema::new(*name, DataType::Int))
                .collect(),
            keys: Vec::new(),
        }
    }

    /// Encodes an INSERT of `table` (through `encode_row_shared` when `shared` is given), and
    /// returns the record and the cache's counters since the previous call.
    fn encode(
        encoder: &mut DtsAvroEncoder,
        table: &TableSchema,
        shared: Option<&Arc<TableSchema>>,
    ) -> (Vec<u8>, CacheStats) {
        let meta = meta();
        let after = vec![Value::Int(1); table.columns.len()];
        let change = RowChange {
            meta: &meta,
            table,
            op: RowOp::Insert,
            before: None,
            after: Some(&after),
        };
        encoder.stats = CacheStats::default();
        let mut out = Vec::new();
        match shared {
            Some(shared) => encoder.encode_row_shared(&change, shared, &mut out),
            None => encoder.encode_row(&change, &mut out),
        }
        (out, encoder.stats)
    }

    /// What a fresh encoder makes of `table`.
    fn fresh(table: &TableSchema) -> Vec<u8> {
        encode(&mut DtsAvroEncoder::new(), table, None).0
    }

    const FAST: CacheStats = CacheStats {
        compares: 0,
        builds: 0,
    };
    const COMPARED: CacheStats = CacheStats {
        compares: 1,
        builds: 0,
    };
    const REBUILT: CacheStats = CacheStats {
        compares: 1,
        builds: 1,
    };
    const NEW: CacheStats = CacheStats {
        compares: 0,
        builds: 1,
    };

    #[test]
    fn rows_of_the_same_arc_skip_the_comparison() {
        let mut encoder = DtsAvroEncoder::new();
        let a = Arc::new(schema("d", &["x"]));
        assert_eq!(encode(&mut encoder, &a, Some(&a)).1, NEW);
        assert_eq!(encode(&mut encoder, &a, Some(&a)), (fresh(&a), FAST));
        // Once held, the same allocation is recognised through `encode_row` too.
        assert_eq!(encode(&mut encoder, &a, None), (fresh(&a), FAST));

        // Another table in between: each is found by its own address.
        let b = Arc::new(schema("e", &["y"]));
        assert_eq!(encode(&mut encoder, &b, Some(&b)).1, NEW);
        assert_eq!(encode(&mut encoder, &a, Some(&a)), (fresh(&a), FAST));
        assert_eq!(encode(&mut encoder, &b, Some(&b)), (fresh(&b), FAST));
    }

    #[test]
    fn a_different_allocation_with_equal_content_reuses_the_entry() {
        let mut encoder = DtsAvroEncoder::new();
        let a = Arc::new(schema("d", &["x"]));
        let b = Arc::new(schema("d", &["x"]));
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(encode(&mut encoder, &a, Some(&a)).1, NEW);
        // Compared once, not rebuilt; the entry now holds `b`, whose rows are then matched by
        // address.
        assert_eq!(encode(&mut encoder, &b, Some(&b)), (fresh(&b), COMPARED));
        assert_eq!(encode(&mut encoder, &b, Some(&b)), (fresh(&b), FAST));
        assert!(Arc::ptr_eq(&encoder.tables[0].schema, &b));
        assert_eq!(encoder.tables.len(), 1);
        // A plain reference with equal content also reuses the entry, after a comparison.
        let c = schema("d", &["x"]);
        assert_eq!(encode(&mut encoder, &c, None), (fresh(&c), COMPARED));
        assert!(Arc::ptr_eq(&encoder.tables[0].schema, &b));
    }

    #[test]
    fn a_changed_schema_in_a_new_arc_is_rebuilt_even_after_the_old_one_is_dropped() {
        let mut encoder = DtsAvroEncoder::new();
        let old = Arc::new(schema("d", &["x"]));
        assert_eq!(encode(&mut encoder, &old, Some(&old)).1, NEW);
        // The source drops its `Arc` and loads the new definition: the encoder still holds the
        // old allocation, so the new one cannot be at its address.
        drop(old);
        let new = Arc::new(schema("d", &["x", "y"]));
        assert_eq!(
            encode(&mut encoder, &new, Some(&new)),
            (fresh(&new), REBUILT)
        );
        assert_eq!(encode(&mut encoder, &new, Some(&new)), (fresh(&new), FAST));
    }

    #[test]
    fn plain_references_are_always_compared() {
        let mut encoder = DtsAvroEncoder::new();
        let mut table = schema("d", &["x"]);
        assert_eq!(encode(&mut encoder, &table, None).1, NEW);
        assert_eq!(
            encode(&mut encoder, &table, None),
            (fresh(&table), COMPARED)
        );
        // The same address with other content: a pointer test alone would serve it stale.
        table.columns[0].name = "renamed".into();
        assert_eq!(encode(&mut encoder, &table, None), (fresh(&table), REBUILT));
    }

    #[test]
    fn an_arc_that_does_not_hold_the_rows_table_is_ignored() {
        let mut encoder = DtsAvroEncoder::new();
        let table = schema("d", &["x"]);
        let unrelated = Arc::new(schema("d", &["x", "y"]));
        assert_eq!(
            encode(&mut encoder, &table, Some(&unrelated)),
            (fresh(&table), NEW)
        );
        assert!(!Arc::ptr_eq(&encoder.tables[0].schema, &unrelated));
        assert_eq!(encode(&mut encoder, &table, Some(&unrelated)).1, COMPARED);
    }

    /// The part of a record shared by the rows of one event is reused only while every field
    /// it holds is the same: each record equals what a fresh encoder writes for it.
    #[test]
    fn the_shared_record_prefix_follows_the_event() {
        let table = Arc::new(TableSchema {
            keys: vec![sluice_event::KeyInfo { name: "PRIMARY".into(), columns: vec![0] }],
            ..schema("d", &["x", "y"])
        });
        let row = [Value::Int(-3), Value::UInt(7)];
        let mut metas = Vec::new();
        for id in 1..=3 {
            metas.push(ChangeMeta { id, ..meta() });
        }
        metas.push(ChangeMeta { id: 4, offset: 99, ..meta() });
        metas.push(ChangeMeta { id: 5, gtid: Some("0-1-2"), ..meta() });
        metas.push(ChangeMeta { id: 6, gtid: Some("0-1-3"), ..meta() });
        metas.push(ChangeMeta { id: 7, thread_id: Some(9), read_time_ms: 8, ..meta() });
        metas.push(ChangeMeta { id: 8, server_version: "8.4", ..meta() });
        metas.push(ChangeMeta { id: 9, initial_load: true, ..meta() });
        let mut encoder = DtsAvroEncoder::new();
        for meta in &metas {
            for op in [RowOp::Insert, RowOp::Update, RowOp::Delete] {
                let change = RowChange { meta, table: &table, op, before: Some(&row), after: Some(&row) };
                let mut cached = Vec::new();
                encoder.encode_row_shared(&change, &table, &mut cached);
                let mut alone = Vec::new();
                DtsAvroEncoder::new().encode_row(&change, &mut alone);
                assert_eq!(cached, alone, "id {} {op:?}", meta.id);
            }
        }
    }
}
