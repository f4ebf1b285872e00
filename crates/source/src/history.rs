//! The versioned schema history: for every table sluice has seen, the shape it had from each
//! binlog position on, so that an event is always decoded with the schema its table had *at that
//! event*, also when a restart replays binlog written before later DDL.
//!
//! Versions come from three places: a **seed** read from `information_schema` when capture of a
//! table starts, **DDL** applied as it streams by ([`crate::ddl`] turns the statement into
//! effects), and a **live** re-read when a TABLE_MAP proved the live definition right for an
//! event the history could not describe. Each version is an [`Entry`] at the position from which
//! it holds (a DDL's entry sits at the end of its QUERY event). Entries are written to a redb
//! file in the task's data directory before the position they belong to can become a
//! checkpoint, so the history always covers everything a restart can replay.
//!
//! Replays re-apply DDL at the same positions: applying is computed from the versions strictly
//! before the DDL and overwrites the entry at its position, so a replay reproduces the history
//! it already has.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::{json, Value as Json};
use sluice_event::{ColumnSchema, DataType, KeyInfo, TableSchema};

use crate::{
    ddl::{AlterOp, ColumnDef, CreateDef, Effect, KeyDef, Position, TableRef},
    Flavor,
};

/// Entries: (epoch, file index, offset, "db\0table") → JSON.
const ENTRIES: TableDefinition<(u32, u64, u64, &str), &[u8]> = TableDefinition::new("schema_versions");
/// Database default character sets: db → charset.
const DATABASES: TableDefinition<&str, &str> = TableDefinition::new("database_charsets");
/// Single values: the current epoch.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// A point of the binlog. `epoch` grows each time the stream moves to a server whose positions
/// are not comparable with the previous ones (a start by GTID); everything of an older epoch is
/// before everything of a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub epoch: u32,
    pub file_index: u64,
    pub offset: u64,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.offset, self.file_index)
    }
}

/// A table's definition as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub schema: Arc<TableSchema>,
    /// The table's default character set (for columns added later without one).
    pub charset: Option<String>,
}

/// What the history knows of a table from some position on.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Known(Arc<TableDef>),
    /// The table does not exist.
    Dropped,
    /// A DDL changed the table in a way sluice could not follow: its shape must be proven from
    /// the binlog (TABLE_MAP column names) before any row of it is decoded.
    Unknown,
    /// The table exists but its columns were never spelled out (CREATE … SELECT, a rename from a
    /// table sluice never saw): read them from the server when first needed, as for a seed.
    Unseeded,
}

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `information_schema`, when capture started.
    Seed,
    /// A DDL statement in the binlog.
    Ddl,
    /// `information_schema`, proven right by a TABLE_MAP.
    Live,
}

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Origin::Seed => "seed",
            Origin::Ddl => "ddl",
            Origin::Live => "live",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "seed" => Origin::Seed,
            "ddl" => Origin::Ddl,
            "live" => Origin::Live,
            _ => return None,
        })
    }
}

/// One version of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub pos: Pos,
    pub state: State,
    pub origin: Origin,
    /// GTID of the DDL's transaction, when the source has GTIDs.
    pub gtid: Option<String>,
    /// The statement (for DDL versions), as the binlog has it.
    pub sql: Option<Arc<str>>,
    /// Why the version is [`State::Unknown`].
    pub note: Option<String>,
}

impl Entry {
    /// How the entry came about, for error messages: "after `ALTER …` at 1234@3".
    pub fn describe(&self) -> String {
        match (self.origin, &self.sql) {
            (Origin::Ddl, Some(sql)) => format!("after `{}` at {}", one_line(sql, 200), self.pos),
            (Origin::Seed, _) => format!("as read from information_schema when capture started at {}", self.pos),
            (Origin::Live, _) => format!("as read from information_schema at {}", self.pos),
            (Origin::Ddl, None) => format!("after a DDL at {}", self.pos),
        }
    }
}

fn one_line(s: &str, max: usize) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

/// What sluice must know of the server to turn column definitions into schemas.
#[derive(Debug, Clone)]
pub struct ServerContext {
    pub flavor: Flavor,
    /// How the server names the 3-byte UTF-8 charset (`utf8mb3` on MariaDB ≥ 10.6 and MySQL ≥
    /// 8.0.30, `utf8` before).
    pub utf8: String,
    /// `@@character_set_server`: the default of databases created without one.
    pub server_charset: String,
    /// `lower_case_table_names` ≠ 0: table and database names compare case-insensitively.
    pub lower_case_names: bool,
}

impl Default for ServerContext {
    fn default() -> Self {
        Self { flavor: Flavor::MariaDb, utf8: "utf8mb3".into(), server_charset: "utf8mb4".into(), lower_case_names: false }
    }
}

impl ServerContext {
    /// The context for a server of this version string (`SELECT VERSION()`).
    pub fn for_version(flavor: Flavor, version: &str, server_charset: &str, lower_case_table_names: u32) -> Self {
        let nums: Vec<u32> = version
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .take(3)
            .map(|s| s.parse().unwrap_or(0))
            .collect();
        let v = (nums.first().copied().unwrap_or(0), nums.get(1).copied().unwrap_or(0), nums.get(2).copied().unwrap_or(0));
        let mb3 = match flavor {
            Flavor::MariaDb => v >= (10, 6, 0),
            Flavor::MySql => v >= (8, 0, 30),
        };
        Self {
            flavor,
            utf8: if mb3 { "utf8mb3".into() } else { "utf8".into() },
            server_charset: if server_charset.is_empty() { "utf8mb4".into() } else { server_charset.to_ascii_lowercase() },
            lower_case_names: lower_case_table_names != 0,
        }
    }

    /// A charset name as the server reports it (`utf8` → `utf8mb3` where that is its name).
    pub fn canonical_charset(&self, cs: &str) -> String {
        let cs = cs.to_ascii_lowercase();
        if cs == "utf8" || cs == "utf8mb3" {
            self.utf8.clone()
        } else {
            cs
        }
    }

    /// The character set of a collation name, if the name says it.
    pub fn charset_of_collation(&self, collation: &str) -> Option<String> {
        let c = collation.to_ascii_lowercase();
        if c == "binary" {
            return Some("binary".into());
        }
        let prefix = CHARSETS
            .iter()
            .filter(|cs| c.len() > cs.len() && c.starts_with(*cs) && c.as_bytes()[cs.len()] == b'_')
            .max_by_key(|cs| cs.len())?;
        Some(self.canonical_charset(prefix))
    }
}

/// Character set names, for reading a collation's prefix.
const CHARSETS: &[&str] = &[
    "armscii8", "ascii", "big5", "binary", "cp1250", "cp1251", "cp1256", "cp1257", "cp850", "cp852", "cp866", "cp932",
    "dec8", "eucjpms", "euckr", "gb18030", "gb2312", "gbk", "geostd8", "greek", "hebrew", "hp8", "keybcs2", "koi8r",
    "koi8u", "latin1", "latin2", "latin5", "latin7", "macce", "macroman", "sjis", "swe7", "tis620", "ucs2", "ujis",
    "utf16", "utf16le", "utf32", "utf8", "utf8mb3", "utf8mb4", "filename",
];

/// Bytes per character at most.
fn max_len(charset: &str) -> u64 {
    match charset {
        "utf8mb4" | "utf16" | "utf16le" | "utf32" | "gb18030" => 4,
        "utf8" | "utf8mb3" | "eucjpms" | "ujis" => 3,
        "ucs2" | "big5" | "cp932" | "euckr" | "gb2312" | "gbk" | "sjis" => 2,
        _ => 1,
    }
}

/// The smallest TEXT (or BLOB) type holding `bytes` bytes.
fn text_type_for(bytes: u64, blob: bool) -> DataType {
    use DataType::*;
    match (bytes, blob) {
        (0..=255, false) => TinyText,
        (0..=255, true) => TinyBlob,
        (256..=65535, false) => Text,
        (256..=65535, true) => Blob,
        (65536..=16_777_215, false) => MediumText,
        (65536..=16_777_215, true) => MediumBlob,
        (_, false) => LongText,
        (_, true) => LongBlob,
    }
}

fn text_capacity(t: DataType) -> u64 {
    use DataType::*;
    match t {
        TinyText | TinyBlob => 255,
        Text | Blob => 65535,
        MediumText | MediumBlob => 16_777_215,
        _ => 4_294_967_295,
    }
}

fn to_blob(t: DataType) -> DataType {
    use DataType::*;
    match t {
        Char => Binary,
        VarChar => VarBinary,
        TinyText => TinyBlob,
        Text => Blob,
        MediumText => MediumBlob,
        LongText => LongBlob,
        other => other,
    }
}

fn is_character(t: DataType) -> bool {
    matches!(t, DataType::Char | DataType::VarChar | DataType::Enum | DataType::Set) || t.is_text_family()
}

fn type_name(t: DataType) -> &'static str {
    use DataType::*;
    match t {
        TinyInt => "tinyint",
        SmallInt => "smallint",
        MediumInt => "mediumint",
        Int => "int",
        BigInt => "bigint",
        Decimal => "decimal",
        Float => "float",
        Double => "double",
        Bit => "bit",
        Year => "year",
        Date => "date",
        Time => "time",
        DateTime => "datetime",
        Timestamp => "timestamp",
        Char => "char",
        VarChar => "varchar",
        Binary => "binary",
        VarBinary => "varbinary",
        TinyText => "tinytext",
        Text => "text",
        MediumText => "mediumtext",
        LongText => "longtext",
        TinyBlob => "tinyblob",
        Blob => "blob",
        MediumBlob => "mediumblob",
        LongBlob => "longblob",
        Enum => "enum",
        Set => "set",
        Json => "json",
        Geometry => "geometry",
        Other => "other",
    }
}

/// A column definition → the column schema `information_schema` would show for it, in a table
/// whose default character set is `table_charset`.
pub fn column_schema(d: &ColumnDef, table_charset: &str, ctx: &ServerContext) -> ColumnSchema {
    use DataType::*;
    let explicit = match d.charset.as_deref() {
        Some("default") => None,
        Some(cs) => Some(ctx.canonical_charset(cs)),
        None => None,
    };
    let charset = explicit
        .or_else(|| d.collation.as_deref().and_then(|c| ctx.charset_of_collation(c)))
        .or_else(|| d.national.then(|| ctx.utf8.clone()))
        .unwrap_or_else(|| ctx.canonical_charset(table_charset));
    let mut data_type = d.data_type;
    if matches!(data_type, Text | Blob) {
        if let Some(&m) = d.args.first() {
            let per_char = if data_type == Blob { 1 } else { max_len(&charset) };
            data_type = text_type_for(m * per_char, data_type == Blob);
        }
    }
    if data_type == Float && d.args.len() == 1 && d.args[0] > 24 {
        data_type = Double;
    }
    let character = is_character(data_type);
    if character && charset == "binary" {
        data_type = to_blob(data_type);
    }
    let mariadb = ctx.flavor == Flavor::MariaDb;
    if mariadb && data_type == LongText && d.json_check {
        data_type = Json;
    }
    let column_charset = if is_character(data_type) {
        Some(charset)
    } else if matches!(data_type, Binary | VarBinary) || data_type.is_blob_family() {
        Some("binary".to_string())
    } else if data_type == Json {
        Some(if mariadb { "utf8mb4".to_string() } else { "binary".to_string() })
    } else if data_type == Other && matches!(d.type_name.as_str(), "inet4" | "inet6" | "uuid") {
        Some("ascii".to_string())
    } else {
        None
    };
    let numeric = data_type.is_integer() || matches!(data_type, Decimal | Float | Double);
    let unsigned = numeric && (d.unsigned || d.zerofill);
    let (precision, scale) = match data_type {
        TinyInt => (Some(3), Some(0)),
        SmallInt => (Some(5), Some(0)),
        MediumInt => (Some(if unsigned { 8 } else { 7 }), Some(0)),
        Int => (Some(10), Some(0)),
        BigInt => (Some(if unsigned { 20 } else { 19 }), Some(0)),
        Decimal => (Some(d.args.first().copied().unwrap_or(10) as u32), Some(d.args.get(1).copied().unwrap_or(0) as u32)),
        Float | Double if d.args.len() == 2 => (Some(d.args[0] as u32), Some(d.args[1] as u32)),
        Float => (Some(12), None),
        Double => (Some(22), None),
        Bit => (Some(d.args.first().copied().unwrap_or(1) as u32), None),
        _ => (None, None),
    };
    let fsp = matches!(data_type, Time | DateTime | Timestamp).then(|| d.args.first().copied().unwrap_or(0) as u8);
    let mut column_type = match data_type {
        Other | Geometry => d.type_name.clone(),
        Json if mariadb => "longtext".into(),
        t => type_name(t).to_string(),
    };
    if matches!(data_type, Enum | Set) {
        let labels: Vec<String> = d.labels.iter().map(|l| format!("'{}'", l.replace('\'', "''"))).collect();
        column_type.push_str(&format!("({})", labels.join(",")));
    } else if !d.args.is_empty() && !data_type.is_text_family() && !data_type.is_blob_family() && data_type != Double {
        let args: Vec<String> = d.args.iter().map(|a| a.to_string()).collect();
        column_type.push_str(&format!("({})", args.join(",")));
    }
    if unsigned {
        column_type.push_str(" unsigned");
    }
    if d.zerofill {
        column_type.push_str(" zerofill");
    }
    ColumnSchema {
        name: d.name.clone(),
        data_type,
        column_type,
        unsigned,
        nullable: !(d.not_null || d.primary_key),
        charset: column_charset,
        precision,
        scale,
        fsp,
        labels: if matches!(data_type, Enum | Set) { d.labels.clone() } else { Vec::new() },
    }
}

/// A table being changed by DDL: columns, and keys by column name.
struct Work {
    db: String,
    table: String,
    columns: Vec<ColumnSchema>,
    /// (name, column names); the primary key is named PRIMARY.
    keys: Vec<(String, Vec<String>)>,
    charset: String,
}

impl Work {
    fn from_def(def: &TableDef, default_charset: &str) -> Self {
        let s = &def.schema;
        Work {
            db: s.db.clone(),
            table: s.table.clone(),
            columns: s.columns.clone(),
            keys: s
                .keys
                .iter()
                .map(|k| (k.name.clone(), k.columns.iter().filter_map(|&i| s.columns.get(i).map(|c| c.name.clone())).collect()))
                .collect(),
            charset: def.charset.clone().unwrap_or_else(|| default_charset.to_string()),
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name.eq_ignore_ascii_case(name))
    }

    fn into_def(mut self) -> TableDef {
        // The primary key first, then unique keys by name (as information_schema lists them).
        self.keys.sort_by_key(|(name, _)| (name != "PRIMARY", name.to_lowercase()));
        let keys = self
            .keys
            .iter()
            .filter_map(|(name, cols)| {
                let columns: Vec<usize> = cols.iter().filter_map(|c| self.find(c)).collect();
                (!columns.is_empty()).then(|| KeyInfo { name: name.clone(), columns })
            })
            .collect();
        TableDef {
            schema: Arc::new(TableSchema { db: self.db, table: self.table, columns: self.columns, keys }),
            charset: Some(self.charset),
        }
    }

    fn insert_at(&mut self, column: ColumnSchema, position: &Position) -> Result<(), String> {
        let at = match position {
            Position::Last => self.columns.len(),
            Position::First => 0,
            Position::After(name) => self.find(name).ok_or_else(|| format!("AFTER names column {name}, which the table does not have"))? + 1,
        };
        self.columns.insert(at, column);
        Ok(())
    }

    fn rename_in_keys(&mut self, old: &str, new: &str) {
        for (_, cols) in &mut self.keys {
            for c in cols.iter_mut() {
                if c.eq_ignore_ascii_case(old) {
                    *c = new.to_string();
                }
            }
        }
    }

    fn add_key(&mut self, k: &KeyDef) -> Result<(), String> {
        let mut columns = Vec::new();
        for c in &k.columns {
            let i = self.find(c).ok_or_else(|| format!("key on column {c}, which the table does not have"))?;
            columns.push(self.columns[i].name.clone());
        }
        if columns.is_empty() {
            return Ok(());
        }
        if k.primary {
            for c in &columns {
                if let Some(i) = self.find(c) {
                    self.columns[i].nullable = false;
                }
            }
            self.keys.retain(|(n, _)| n != "PRIMARY");
            self.keys.push(("PRIMARY".into(), columns));
            return Ok(());
        }
        let taken = |keys: &[(String, Vec<String>)], n: &str| keys.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        let name = match &k.name {
            Some(n) => n.clone(),
            None => {
                let base = columns[0].clone();
                let mut name = base.clone();
                let mut i = 2;
                while taken(&self.keys, &name) {
                    name = format!("{base}_{i}");
                    i += 1;
                }
                name
            }
        };
        self.keys.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.keys.push((name, columns));
        Ok(())
    }

    /// Applies one ALTER clause. `Err` means the history cannot say what the table looks like.
    fn apply(&mut self, op: &AlterOp, ctx: &ServerContext) -> Result<(), String> {
        match op {
            AlterOp::AddColumn { column, position, if_not_exists } => {
                if self.find(&column.name).is_some() {
                    return if *if_not_exists { Ok(()) } else { Err(format!("ADD COLUMN {}: the column already exists", column.name)) };
                }
                let schema = column_schema(column, &self.charset, ctx);
                self.insert_at(schema, position)?;
                if column.primary_key {
                    self.add_key(&KeyDef { name: None, primary: true, columns: vec![column.name.clone()] })?;
                }
            }
            AlterOp::DropColumn { name, if_exists } => {
                let Some(i) = self.find(name) else {
                    return if *if_exists { Ok(()) } else { Err(format!("DROP COLUMN {name}: no such column")) };
                };
                self.columns.remove(i);
                for (_, cols) in &mut self.keys {
                    cols.retain(|c| !c.eq_ignore_ascii_case(name));
                }
                self.keys.retain(|(_, cols)| !cols.is_empty());
            }
            AlterOp::ChangeColumn { old, column, position, if_exists, .. } => {
                let Some(i) = self.find(old) else {
                    return if *if_exists { Ok(()) } else { Err(format!("CHANGE/MODIFY {old}: no such column")) };
                };
                if let Some(j) = self.find(&column.name) {
                    if j != i {
                        return Err(format!("CHANGE {old} to {}: that column already exists", column.name));
                    }
                }
                let old_name = self.columns[i].name.clone();
                let mut schema = column_schema(column, &self.charset, ctx);
                // A key keeps its columns NOT NULL whatever the new definition says.
                if self.keys.iter().any(|(n, cols)| n == "PRIMARY" && cols.iter().any(|c| c.eq_ignore_ascii_case(&old_name))) {
                    schema.nullable = false;
                }
                self.rename_in_keys(&old_name, &column.name);
                if *position == Position::Last {
                    self.columns[i] = schema;
                } else {
                    self.columns.remove(i);
                    self.insert_at(schema, position)?;
                }
            }
            AlterOp::RenameColumn { old, new } => {
                let i = self.find(old).ok_or_else(|| format!("RENAME COLUMN {old}: no such column"))?;
                if let Some(j) = self.find(new) {
                    if j != i {
                        return Err(format!("RENAME COLUMN {old} TO {new}: that column already exists"));
                    }
                }
                let old_name = std::mem::replace(&mut self.columns[i].name, new.clone());
                self.rename_in_keys(&old_name, new);
            }
            AlterOp::AddKey(k) => self.add_key(k)?,
            AlterOp::DropKey { name, .. } => {
                // Non-unique indexes are not tracked: dropping one changes nothing here.
                self.keys.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            }
            AlterOp::DropPrimaryKey => self.keys.retain(|(n, _)| n != "PRIMARY"),
            AlterOp::RenameKey { old, new } => {
                for (n, _) in &mut self.keys {
                    if n.eq_ignore_ascii_case(old) {
                        *n = new.clone();
                    }
                }
            }
            AlterOp::JsonCheck { column } => {
                if ctx.flavor == Flavor::MariaDb {
                    if let Some(i) = self.find(column) {
                        if self.columns[i].data_type == DataType::LongText {
                            self.columns[i].data_type = DataType::Json;
                        }
                    }
                }
            }
            AlterOp::DropConstraint { name } => {
                let before = self.keys.len();
                self.keys.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                // MariaDB names a JSON column's json_valid check after the column.
                if before == self.keys.len() && ctx.flavor == Flavor::MariaDb {
                    if let Some(i) = self.find(name) {
                        if self.columns[i].data_type == DataType::Json {
                            self.columns[i].data_type = DataType::LongText;
                        }
                    }
                }
            }
            AlterOp::RenameTable { .. } => {}
            AlterOp::DefaultCharset { charset, collation } => {
                if let Some(cs) = resolve_charset(charset.as_deref(), collation.as_deref(), ctx) {
                    self.charset = cs;
                }
            }
            AlterOp::ConvertCharset { charset, collation } => {
                let cs = resolve_charset(Some(charset), collation.as_deref(), ctx).unwrap_or_else(|| self.charset.clone());
                for c in &mut self.columns {
                    let convertible = is_character(c.data_type) || (c.data_type == DataType::Json && ctx.flavor == Flavor::MariaDb);
                    if !convertible {
                        continue;
                    }
                    let old_cs = c.charset.clone().unwrap_or_else(|| self.charset.clone());
                    if cs == "binary" {
                        if c.data_type != DataType::Json {
                            c.data_type = to_blob(c.data_type);
                        }
                        c.charset = Some("binary".into());
                        continue;
                    }
                    if c.data_type.is_text_family() {
                        let chars = text_capacity(c.data_type) / max_len(&old_cs);
                        let needed = text_type_for(chars * max_len(&cs), false);
                        if text_capacity(needed) > text_capacity(c.data_type) {
                            c.data_type = needed;
                            c.column_type = type_name(needed).into();
                        }
                    }
                    if c.data_type != DataType::Json {
                        c.charset = Some(cs.clone());
                    }
                }
                self.charset = cs;
            }
        }
        Ok(())
    }
}

/// `CHARACTER SET x` / `COLLATE y` → the charset meant (`None` for `DEFAULT` or nothing).
fn resolve_charset(charset: Option<&str>, collation: Option<&str>, ctx: &ServerContext) -> Option<String> {
    match charset {
        Some("default") | None => collation.and_then(|c| ctx.charset_of_collation(c)),
        Some(cs) => Some(ctx.canonical_charset(cs)),
    }
}

/// A CREATE TABLE body → the table's definition.
pub fn table_def(table: &TableRef, def: &CreateDef, db_charset: &str, ctx: &ServerContext) -> Result<TableDef, String> {
    let charset = resolve_charset(def.charset.as_deref(), def.collation.as_deref(), ctx).unwrap_or_else(|| ctx.canonical_charset(db_charset));
    let mut work = Work { db: table.db.clone(), table: table.table.clone(), columns: Vec::new(), keys: Vec::new(), charset };
    for c in &def.columns {
        if work.find(&c.name).is_some() {
            return Err(format!("column {} defined twice", c.name));
        }
        work.columns.push(column_schema(c, &work.charset, ctx));
    }
    for c in &def.columns {
        if c.primary_key {
            work.add_key(&KeyDef { name: None, primary: true, columns: vec![c.name.clone()] })?;
        }
    }
    for k in &def.keys {
        work.add_key(k)?;
    }
    // Column-level UNIQUE keys are named after their column once the table's keys are known.
    for c in &def.columns {
        if c.unique_key {
            work.add_key(&KeyDef { name: None, primary: false, columns: vec![c.name.clone()] })?;
        }
    }
    for name in &def.json_checks {
        work.apply(&AlterOp::JsonCheck { column: name.clone() }, ctx)?;
    }
    Ok(work.into_def())
}

type Key = (String, String);

/// Errors of the history's file.
#[derive(Debug, thiserror::Error)]
#[error("the schema history {path} cannot be used: {reason}")]
pub struct HistoryError {
    pub path: String,
    pub reason: String,
}

struct Inner {
    tables: HashMap<Key, Vec<Entry>>,
    databases: HashMap<String, String>,
    db: Option<Database>,
    path: PathBuf,
    ctx: ServerContext,
    epoch: u32,
}

/// The schema history of one task; cheap to clone (a shared handle), so the pipeline can keep it
/// across reconnects while each reader uses it.
#[derive(Clone)]
pub struct SchemaHistory(Arc<Mutex<Inner>>);

/// What applying one statement changed.
#[derive(Debug, Default)]
pub struct Applied {
    /// Tables whose version changed at this position (old and new names of renames).
    pub tables: Vec<TableRef>,
}

impl SchemaHistory {
    /// A history kept in memory only (tests, tools).
    pub fn in_memory() -> Self {
        Self::with(None, PathBuf::new())
    }

    fn with(db: Option<Database>, path: PathBuf) -> Self {
        SchemaHistory(Arc::new(Mutex::new(Inner {
            tables: HashMap::new(),
            databases: HashMap::new(),
            db,
            path,
            ctx: ServerContext::default(),
            epoch: 0,
        })))
    }

    /// Opens (or creates) the history file and loads every version.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        let err = |reason: String| HistoryError { path: path.display().to_string(), reason };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let db = Database::create(path).map_err(|e| err(e.to_string()))?;
        let history = Self::with(None, path.to_path_buf());
        {
            let mut inner = history.lock();
            let txn = db.begin_read().map_err(|e| err(e.to_string()))?;
            match txn.open_table(ENTRIES) {
                Ok(table) => {
                    for row in table.iter().map_err(|e| err(e.to_string()))? {
                        let (k, v) = row.map_err(|e| err(e.to_string()))?;
                        let (epoch, file_index, offset, name) = k.value();
                        let Some((dbn, tn)) = name.split_once('\0') else { continue };
                        let json: Json = serde_json::from_slice(v.value()).map_err(|e| err(format!("unreadable version: {e}")))?;
                        let entry = entry_from_json(Pos { epoch, file_index, offset }, dbn, tn, &json)
                            .ok_or_else(|| err(format!("unreadable version of {dbn}.{tn}")))?;
                        inner.tables.entry((dbn.to_string(), tn.to_string())).or_default().push(entry);
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(err(e.to_string())),
            }
            match txn.open_table(DATABASES) {
                Ok(table) => {
                    for row in table.iter().map_err(|e| err(e.to_string()))? {
                        let (k, v) = row.map_err(|e| err(e.to_string()))?;
                        inner.databases.insert(k.value().to_string(), v.value().to_string());
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(err(e.to_string())),
            }
            match txn.open_table(META) {
                Ok(table) => {
                    if let Some(v) = table.get("epoch").map_err(|e| err(e.to_string()))? {
                        inner.epoch = v.value() as u32;
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(err(e.to_string())),
            }
            drop(txn);
            for entries in inner.tables.values_mut() {
                entries.sort_by_key(|e| e.pos);
            }
            inner.db = Some(db);
        }
        Ok(history)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets what the history must know of the server (once per stream start).
    pub fn set_context(&self, ctx: ServerContext) {
        self.lock().ctx = ctx;
    }

    pub fn context(&self) -> ServerContext {
        self.lock().ctx.clone()
    }

    /// The epoch positions of the current stream belong to.
    pub fn epoch(&self) -> u32 {
        self.lock().epoch
    }

    /// Starts a new epoch: the stream now comes from a server whose positions cannot be compared
    /// with those recorded so far.
    pub fn new_epoch(&self) -> Result<u32, HistoryError> {
        let mut inner = self.lock();
        inner.epoch += 1;
        let epoch = inner.epoch;
        inner.write(|txn| {
            let mut t = txn.open_table(META)?;
            t.insert("epoch", u64::from(epoch))?;
            Ok(())
        })?;
        Ok(epoch)
    }

    /// The version of `db.table` in force at `pos`.
    pub fn at(&self, db: &str, table: &str, pos: Pos) -> Option<Entry> {
        let inner = self.lock();
        let key = inner.key(db, table);
        inner.tables.get(&key).and_then(|v| v.iter().rev().find(|e| e.pos <= pos)).cloned()
    }

    /// Whether the history has any version of `db.table`.
    pub fn knows(&self, db: &str, table: &str) -> bool {
        let inner = self.lock();
        let key = inner.key(db, table);
        inner.tables.contains_key(&key)
    }

    /// Every version of `db.table`, oldest first.
    pub fn versions(&self, db: &str, table: &str) -> Vec<Entry> {
        let inner = self.lock();
        let key = inner.key(db, table);
        inner.tables.get(&key).cloned().unwrap_or_default()
    }

    /// The default character set recorded for a database.
    pub fn db_charset(&self, db: &str) -> Option<String> {
        let inner = self.lock();
        let key = inner.db_key(db);
        inner.databases.get(&key).cloned()
    }

    /// Records a database's default character set if none is recorded yet.
    pub fn learn_db_charset(&self, db: &str, charset: &str) -> Result<(), HistoryError> {
        let mut inner = self.lock();
        let key = inner.db_key(db);
        if inner.databases.contains_key(&key) {
            return Ok(());
        }
        let cs = inner.ctx.canonical_charset(charset);
        inner.set_db_charset(&key, Some(cs))
    }

    /// Records a table's definition read from the server: a seed (capture starts) or a live
    /// re-read proven by a TABLE_MAP.
    pub fn record(&self, def: TableDef, pos: Pos, origin: Origin) -> Result<(), HistoryError> {
        self.record_all(vec![def], pos, origin)
    }

    /// [`record`](Self::record) for many tables in one durable write.
    pub fn record_all(&self, defs: Vec<TableDef>, pos: Pos, origin: Origin) -> Result<(), HistoryError> {
        let mut inner = self.lock();
        let mut rows = Vec::new();
        for mut def in defs {
            def.charset = def.charset.map(|c| inner.ctx.canonical_charset(&c));
            let key = inner.key(&def.schema.db, &def.schema.table);
            let entry = Entry { pos, state: State::Known(Arc::new(def)), origin, gtid: None, sql: None, note: None };
            rows.push((inner.key_name(&key), entry.clone()));
            inner.put(key, entry);
        }
        inner.persist(&rows)
    }

    /// Applies one DDL statement's effects at `pos` (the end of its QUERY event). Idempotent for
    /// replays: the result depends only on the versions before `pos`.
    pub fn apply(&self, effects: &[Effect], pos: Pos, gtid: Option<&str>, sql: &str) -> Result<Applied, HistoryError> {
        let mut inner = self.lock();
        let sql: Arc<str> = Arc::from(sql);
        // The tables' states as this statement goes along.
        let mut work: BTreeMap<Key, (State, Option<String>)> = BTreeMap::new();
        let mut applied = Applied::default();
        let ctx = inner.ctx.clone();
        for effect in effects {
            let mut set = |inner: &Inner, work: &mut BTreeMap<Key, (State, Option<String>)>, t: &TableRef, state: State, note: Option<String>| {
                let key = inner.key(&t.db, &t.table);
                if !applied.tables.iter().any(|x| inner.key(&x.db, &x.table) == key) {
                    applied.tables.push(t.clone());
                }
                work.insert(key, (state, note));
            };
            let current = |inner: &Inner, work: &BTreeMap<Key, (State, Option<String>)>, t: &TableRef| -> Option<State> {
                let key = inner.key(&t.db, &t.table);
                if let Some((s, _)) = work.get(&key) {
                    return Some(s.clone());
                }
                inner.tables.get(&key).and_then(|v| v.iter().rev().find(|e| e.pos < pos)).map(|e| e.state.clone())
            };
            let exists = |s: &Option<State>| matches!(s, Some(State::Known(_) | State::Unknown | State::Unseeded));
            match effect {
                Effect::CreateTable { table, if_not_exists, def } => {
                    if *if_not_exists && exists(&current(&inner, &work, table)) {
                        continue;
                    }
                    let db_cs = inner.databases.get(&inner.db_key(&table.db)).cloned().unwrap_or_else(|| ctx.server_charset.clone());
                    match table_def(table, def, &db_cs, &ctx) {
                        Ok(d) => set(&inner, &mut work, table, State::Known(Arc::new(d)), None),
                        Err(e) => set(&inner, &mut work, table, State::Unknown, Some(e)),
                    }
                }
                Effect::CreateLike { table, like, if_not_exists } => {
                    if *if_not_exists && exists(&current(&inner, &work, table)) {
                        continue;
                    }
                    let state = match current(&inner, &work, like) {
                        Some(State::Known(d)) => State::Known(Arc::new(renamed(&d, table))),
                        Some(State::Unknown) => State::Unknown,
                        Some(State::Dropped) => State::Unknown,
                        Some(State::Unseeded) | None => State::Unseeded,
                    };
                    let note = (state == State::Unknown).then(|| format!("the shape of {like} was not known"));
                    set(&inner, &mut work, table, state, note);
                }
                Effect::CreateOpaque { table, if_not_exists } => {
                    if *if_not_exists && exists(&current(&inner, &work, table)) {
                        continue;
                    }
                    set(&inner, &mut work, table, State::Unseeded, None);
                }
                Effect::Alter { table, ops } => {
                    let rename_to = ops.iter().rev().find_map(|op| match op {
                        AlterOp::RenameTable { to } => Some(to.clone()),
                        _ => None,
                    });
                    let (state, note) = match current(&inner, &work, table) {
                        Some(State::Known(d)) => {
                            let mut w = Work::from_def(&d, &ctx.server_charset);
                            // The server sets the table's default charset before it adds or
                            // changes columns, and converts the finished column set.
                            let rank = |op: &AlterOp| match op {
                                AlterOp::DefaultCharset { .. } => 0,
                                AlterOp::ConvertCharset { .. } => 2,
                                _ => 1,
                            };
                            let mut ordered: Vec<&AlterOp> = ops.iter().collect();
                            ordered.sort_by_key(|op| rank(op));
                            match ordered.into_iter().try_for_each(|op| w.apply(op, &ctx)) {
                                Ok(()) => {
                                    let mut def = w.into_def();
                                    if let Some(to) = &rename_to {
                                        def = renamed(&def, to);
                                    }
                                    (State::Known(Arc::new(def)), None)
                                }
                                Err(e) => (State::Unknown, Some(e)),
                            }
                        }
                        Some(State::Dropped) => (State::Unknown, Some("ALTER of a table the history has as dropped".into())),
                        Some(s @ (State::Unknown | State::Unseeded)) => (s, None),
                        // Never seen: its first use reads it from the server.
                        None if rename_to.is_some() => (State::Unseeded, None),
                        None => continue,
                    };
                    match rename_to {
                        Some(to) if inner.key(&to.db, &to.table) != inner.key(&table.db, &table.table) => {
                            set(&inner, &mut work, table, State::Dropped, None);
                            set(&inner, &mut work, &to, state, note);
                        }
                        _ => set(&inner, &mut work, table, state, note),
                    }
                }
                Effect::Rename { renames } => {
                    for (from, to) in renames {
                        let state = match current(&inner, &work, from) {
                            Some(State::Known(d)) => State::Known(Arc::new(renamed(&d, to))),
                            Some(State::Unknown) | Some(State::Dropped) => State::Unknown,
                            Some(State::Unseeded) | None => State::Unseeded,
                        };
                        set(&inner, &mut work, from, State::Dropped, None);
                        set(&inner, &mut work, to, state, None);
                    }
                }
                Effect::Drop { tables } => {
                    for t in tables {
                        set(&inner, &mut work, t, State::Dropped, None);
                    }
                }
                Effect::Truncate { .. } => {}
                Effect::CreateDatabase { db, charset, collation } | Effect::AlterDatabase { db, charset, collation } => {
                    let cs = resolve_charset(charset.as_deref(), collation.as_deref(), &ctx);
                    let key = inner.db_key(db);
                    let cs = match (cs, effect) {
                        (Some(cs), _) => cs,
                        (None, Effect::CreateDatabase { .. }) => ctx.server_charset.clone(),
                        (None, _) => continue,
                    };
                    inner.set_db_charset(&key, Some(cs))?;
                }
                Effect::DropDatabase { db } => {
                    let key = inner.db_key(db);
                    let in_db: Vec<Key> = inner.tables.keys().filter(|(d, _)| *d == key).cloned().collect();
                    for (d, t) in in_db {
                        if !matches!(current(&inner, &work, &TableRef::new(d.clone(), t.clone())), Some(State::Dropped) | None) {
                            set(&inner, &mut work, &TableRef::new(d, t), State::Dropped, None);
                        }
                    }
                    inner.set_db_charset(&key, None)?;
                }
                Effect::Unknown { tables, reason } => {
                    for t in tables {
                        set(&inner, &mut work, t, State::Unknown, Some(reason.clone()));
                    }
                }
            }
        }
        let mut rows = Vec::new();
        for (key, (state, note)) in work {
            let entry = Entry { pos, state, origin: Origin::Ddl, gtid: gtid.map(String::from), sql: Some(sql.clone()), note };
            rows.push((inner.key_name(&key), entry.clone()));
            inner.put(key, entry);
        }
        inner.persist(&rows)?;
        Ok(applied)
    }
}

fn renamed(def: &TableDef, to: &TableRef) -> TableDef {
    let mut schema = (*def.schema).clone();
    schema.db = to.db.clone();
    schema.table = to.table.clone();
    TableDef { schema: Arc::new(schema), charset: def.charset.clone() }
}

impl Inner {
    fn key(&self, db: &str, table: &str) -> Key {
        if self.ctx.lower_case_names {
            (db.to_lowercase(), table.to_lowercase())
        } else {
            (db.to_string(), table.to_string())
        }
    }

    fn db_key(&self, db: &str) -> String {
        if self.ctx.lower_case_names {
            db.to_lowercase()
        } else {
            db.to_string()
        }
    }

    fn key_name(&self, (db, table): &Key) -> String {
        let (db, table) = self.key(db, table);
        format!("{db}\0{table}")
    }

    /// Inserts or replaces the entry at its position.
    fn put(&mut self, key: Key, entry: Entry) {
        let v = self.tables.entry(key).or_default();
        match v.binary_search_by_key(&entry.pos, |e| e.pos) {
            Ok(i) => v[i] = entry,
            Err(i) => v.insert(i, entry),
        }
    }

    fn set_db_charset(&mut self, key: &str, cs: Option<String>) -> Result<(), HistoryError> {
        match &cs {
            Some(cs) => self.databases.insert(key.to_string(), cs.clone()),
            None => self.databases.remove(key),
        };
        self.write(|txn| {
            let mut t = txn.open_table(DATABASES)?;
            match &cs {
                Some(cs) => {
                    t.insert(key, cs.as_str())?;
                }
                None => {
                    t.remove(key)?;
                }
            }
            Ok(())
        })
    }

    fn persist(&self, rows: &[(String, Entry)]) -> Result<(), HistoryError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write(|txn| {
            let mut t = txn.open_table(ENTRIES)?;
            for (name, e) in rows {
                let bytes = serde_json::to_vec(&entry_to_json(e)).expect("json");
                t.insert((e.pos.epoch, e.pos.file_index, e.pos.offset, name.as_str()), bytes.as_slice())?;
            }
            Ok(())
        })
    }

    /// Runs one durable write transaction (a no-op for an in-memory history).
    fn write(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>) -> Result<(), HistoryError> {
        let Some(db) = &self.db else { return Ok(()) };
        let err = |e: redb::Error| HistoryError { path: self.path.display().to_string(), reason: e.to_string() };
        let txn = db.begin_write().map_err(|e| err(e.into()))?;
        f(&txn).map_err(err)?;
        txn.commit().map_err(|e| err(e.into()))
    }
}

fn entry_to_json(e: &Entry) -> Json {
    let state = match &e.state {
        State::Known(d) => json!({"known": def_to_json(d)}),
        State::Dropped => json!("dropped"),
        State::Unknown => json!("unknown"),
        State::Unseeded => json!("unseeded"),
    };
    json!({
        "state": state,
        "origin": e.origin.name(),
        "gtid": e.gtid,
        "sql": e.sql.as_deref(),
        "note": e.note,
    })
}

fn entry_from_json(pos: Pos, db: &str, table: &str, j: &Json) -> Option<Entry> {
    let state = match &j["state"] {
        Json::String(s) if s == "dropped" => State::Dropped,
        Json::String(s) if s == "unknown" => State::Unknown,
        Json::String(s) if s == "unseeded" => State::Unseeded,
        Json::Object(o) => State::Known(Arc::new(def_from_json(db, table, o.get("known")?)?)),
        _ => return None,
    };
    Some(Entry {
        pos,
        state,
        origin: Origin::parse(j["origin"].as_str()?)?,
        gtid: j["gtid"].as_str().map(String::from),
        sql: j["sql"].as_str().map(Arc::from),
        note: j["note"].as_str().map(String::from),
    })
}

fn def_to_json(d: &TableDef) -> Json {
    let s = &d.schema;
    json!({
        "charset": d.charset,
        "columns": s.columns.iter().map(|c| json!({
            "name": c.name,
            "data_type": type_name(c.data_type),
            "column_type": c.column_type,
            "unsigned": c.unsigned,
            "nullable": c.nullable,
            "charset": c.charset,
            "precision": c.precision,
            "scale": c.scale,
            "fsp": c.fsp,
            "labels": c.labels,
        })).collect::<Vec<_>>(),
        "keys": s.keys.iter().map(|k| json!({"name": k.name, "columns": k.columns})).collect::<Vec<_>>(),
    })
}

fn def_from_json(db: &str, table: &str, j: &Json) -> Option<TableDef> {
    let columns = j["columns"]
        .as_array()?
        .iter()
        .map(|c| {
            let dt = c["data_type"].as_str()?;
            Some(ColumnSchema {
                name: c["name"].as_str()?.to_string(),
                data_type: if dt == "other" { DataType::Other } else { DataType::from_information_schema(dt) },
                column_type: c["column_type"].as_str()?.to_string(),
                unsigned: c["unsigned"].as_bool()?,
                nullable: c["nullable"].as_bool()?,
                charset: c["charset"].as_str().map(String::from),
                precision: c["precision"].as_u64().map(|v| v as u32),
                scale: c["scale"].as_u64().map(|v| v as u32),
                fsp: c["fsp"].as_u64().map(|v| v as u8),
                labels: c["labels"].as_array()?.iter().map(|l| l.as_str().map(String::from)).collect::<Option<_>>()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let keys = j["keys"]
        .as_array()?
        .iter()
        .map(|k| {
            Some(KeyInfo {
                name: k["name"].as_str()?.to_string(),
                columns: k["columns"].as_array()?.iter().map(|i| i.as_u64().map(|v| v as usize)).collect::<Option<_>>()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(TableDef {
        schema: Arc::new(TableSchema { db: db.to_string(), table: table.to_string(), columns, keys }),
        charset: j["charset"].as_str().map(String::from),
    })
}

// ------------------------------------------------------------------------------------------
// Cross-checking a version against a TABLE_MAP

/// What a TABLE_MAP says about its columns beyond their types: names and integer signedness,
/// present with `binlog_row_metadata=FULL`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableMapFacts {
    pub names: Option<Vec<String>>,
    /// One flag per column (false for columns that are not numeric).
    pub unsigned: Option<Vec<bool>>,
}

/// Type codes the server counts as numeric for the SIGNEDNESS bitmap.
fn is_numeric_code(code: u8) -> bool {
    use sluice_binlog::column_type as ct;
    matches!(code, ct::TINY | ct::SHORT | ct::INT24 | ct::LONG | ct::LONGLONG | ct::NEWDECIMAL | ct::FLOAT | ct::DOUBLE)
}

impl TableMapFacts {
    pub fn read(tm: &crate::events::TableMap<'_>) -> Self {
        let names = tm
            .column_names()
            .filter(|n| n.len() == tm.types.len())
            .map(|n| n.into_iter().map(|s| s.into_owned()).collect());
        Self { names, unsigned: signedness(tm.types, tm.optional) }
    }
}

/// The SIGNEDNESS field of a TABLE_MAP's optional metadata, spread over all columns.
fn signedness(types: &[u8], mut optional: &[u8]) -> Option<Vec<bool>> {
    const SIGNEDNESS: u8 = 1;
    fn lenenc(b: &mut &[u8]) -> Option<usize> {
        let (&first, rest) = b.split_first()?;
        *b = rest;
        let n = match first {
            0..=0xfa => return Some(usize::from(first)),
            0xfc => 2,
            0xfd => 3,
            0xfe => 8,
            _ => return None,
        };
        if b.len() < n {
            return None;
        }
        let v = b[..n].iter().rev().fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        *b = &b[n..];
        Some(v)
    }
    while !optional.is_empty() {
        let field = optional[0];
        optional = &optional[1..];
        let len = lenenc(&mut optional)?;
        if optional.len() < len {
            return None;
        }
        let (value, rest) = optional.split_at(len);
        optional = rest;
        if field == SIGNEDNESS {
            let mut out = Vec::with_capacity(types.len());
            let mut bit = 0usize;
            for &t in types {
                if is_numeric_code(t) {
                    let byte = *value.get(bit / 8)?;
                    out.push(byte & (0x80 >> (bit % 8)) != 0);
                    bit += 1;
                } else {
                    out.push(false);
                }
            }
            return Some(out);
        }
    }
    None
}

enum Fit {
    Yes,
    /// The same family in another size (TEXT ↔ MEDIUMTEXT …): the binlog's size is the truth.
    Resized(DataType),
    No,
}

/// Whether a column of `data_type` can be what the binlog describes as `real_type`/`metadata`.
fn fits(data_type: DataType, real_type: u8, metadata: u16) -> Fit {
    use sluice_binlog::column_type as ct;
    use DataType::*;
    let yes = |ok: bool| if ok { Fit::Yes } else { Fit::No };
    match data_type {
        TinyInt => yes(real_type == ct::TINY),
        SmallInt => yes(real_type == ct::SHORT),
        MediumInt => yes(real_type == ct::INT24),
        Int => yes(real_type == ct::LONG),
        BigInt => yes(real_type == ct::LONGLONG),
        Decimal => yes(matches!(real_type, ct::NEWDECIMAL | ct::DECIMAL)),
        Float => yes(real_type == ct::FLOAT),
        Double => yes(real_type == ct::DOUBLE),
        Bit => yes(real_type == ct::BIT),
        Year => yes(real_type == ct::YEAR),
        Date => yes(matches!(real_type, ct::DATE | ct::NEWDATE)),
        Time => yes(matches!(real_type, ct::TIME | ct::TIME2)),
        DateTime => yes(matches!(real_type, ct::DATETIME | ct::DATETIME2)),
        Timestamp => yes(matches!(real_type, ct::TIMESTAMP | ct::TIMESTAMP2)),
        Char | Binary => yes(real_type == ct::STRING),
        VarChar | VarBinary => yes(matches!(real_type, ct::VARCHAR | ct::VAR_STRING)),
        Enum => yes(real_type == ct::ENUM),
        Set => yes(real_type == ct::SET),
        Json => yes(real_type == ct::JSON || (real_type == ct::BLOB && metadata == 4)),
        Geometry => yes(real_type == ct::GEOMETRY),
        Other => yes(matches!(real_type, ct::STRING | ct::VARCHAR | ct::VAR_STRING | ct::BLOB | ct::VECTOR)),
        t if t.is_text_family() || t.is_blob_family() => {
            if real_type != ct::BLOB {
                return Fit::No;
            }
            let sized = text_type_for(
                match metadata {
                    1 => 255,
                    2 => 65535,
                    3 => 16_777_215,
                    _ => u64::MAX,
                },
                t.is_blob_family(),
            );
            if sized == t {
                Fit::Yes
            } else {
                Fit::Resized(sized)
            }
        }
        _ => Fit::No,
    }
}

/// Checks a schema against a TABLE_MAP: column count, each column's type, and (with FULL
/// metadata) each column's name. `Ok(Some(schema))` is the schema refined by what the binlog
/// states exactly (names' letter case, TEXT/BLOB sizes, integer signedness); `Ok(None)` means
/// the schema fits as it is. `Err` says how it does not fit.
pub fn check(schema: &TableSchema, plan: &[sluice_binlog::ColumnPlan], facts: &TableMapFacts) -> Result<Option<TableSchema>, String> {
    use sluice_binlog::column_type::name as code_name;
    if schema.columns.len() != plan.len() {
        return Err(format!("the binlog has {} columns, the schema {}", plan.len(), schema.columns.len()));
    }
    let mut refined: Option<TableSchema> = None;
    for (i, (c, p)) in schema.columns.iter().zip(plan).enumerate() {
        if let Some(names) = &facts.names {
            if !names[i].eq_ignore_ascii_case(&c.name) {
                return Err(format!("column {} is `{}` in the binlog, `{}` in the schema", i + 1, names[i], c.name));
            }
            if names[i] != c.name {
                refined.get_or_insert_with(|| schema.clone()).columns[i].name = names[i].clone();
            }
        }
        match fits(c.data_type, p.real_type(), p.metadata()) {
            Fit::Yes => {}
            Fit::Resized(t) => {
                let col = &mut refined.get_or_insert_with(|| schema.clone()).columns[i];
                col.data_type = t;
                col.column_type = type_name(t).into();
            }
            Fit::No => {
                return Err(format!(
                    "column {} (`{}`) is {} in the binlog but {} in the schema",
                    i + 1,
                    c.name,
                    code_name(p.real_type()),
                    if c.column_type.is_empty() { type_name(c.data_type) } else { &c.column_type }
                ))
            }
        }
        if let Some(unsigned) = &facts.unsigned {
            if c.data_type.is_integer() && unsigned[i] != c.unsigned {
                refined.get_or_insert_with(|| schema.clone()).columns[i].unsigned = unsigned[i];
            }
        }
    }
    Ok(refined)
}

/// `3 columns (id bigint, a varchar(10), b int)`.
pub fn describe_schema(schema: &TableSchema) -> String {
    let cols: Vec<String> = schema
        .columns
        .iter()
        .map(|c| format!("{} {}", c.name, if c.column_type.is_empty() { type_name(c.data_type) } else { &c.column_type }))
        .collect();
    format!("{} columns ({})", cols.len(), cols.join(", "))
}

/// `3 columns (id LONGLONG, a VARCHAR, b LONG)` (names with FULL metadata).
pub fn describe_table_map(plan: &[sluice_binlog::ColumnPlan], facts: &TableMapFacts) -> String {
    use sluice_binlog::column_type::name as code_name;
    let cols: Vec<String> = plan
        .iter()
        .enumerate()
        .map(|(i, p)| match &facts.names {
            Some(n) => format!("{} {}", n[i], code_name(p.real_type())),
            None => code_name(p.real_type()).to_string(),
        })
        .collect();
    format!("{} columns ({})", cols.len(), cols.join(", "))
}
