//! Which tables are captured, and their shape as `information_schema` describes it now.

use std::{collections::HashMap, sync::Arc};

use mysql_async::{prelude::Queryable, Conn};
use sluice_event::{ColumnSchema, DataType, KeyInfo, TableSchema};

use crate::{history::TableDef, Flavor, SourceError, SourceOptions};

/// The sync objects: `db.table` patterns where `*` matches any run of characters and `?` one
/// character, in each part separately (`shop.*`, `shop.order_*`, `*.users`).
#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    include: Vec<(String, String)>,
    exclude: Vec<(String, String)>,
}

impl TableFilter {
    /// Builds a filter; each pattern must have exactly one unescaped `.` between db and table.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, String> {
        let split = |p: &String| -> Result<(String, String), String> {
            match p.split_once('.') {
                Some((db, t)) if !db.is_empty() && !t.is_empty() && !t.contains('.') => {
                    Ok((db.to_string(), t.to_string()))
                }
                _ => Err(format!("'{p}' is not of the form db.table (wildcards * and ? allowed)")),
            }
        };
        Ok(Self {
            include: include.iter().map(split).collect::<Result<_, _>>()?,
            exclude: exclude.iter().map(split).collect::<Result<_, _>>()?,
        })
    }

    pub fn matches(&self, db: &str, table: &str) -> bool {
        let hit = |(d, t): &(String, String)| glob(d, db) && glob(t, table);
        self.include.iter().any(hit) && !self.exclude.iter().any(hit)
    }

    /// Whether some table of database `db` may be a sync object.
    pub fn matches_db(&self, db: &str) -> bool {
        self.include.iter().any(|(d, _)| glob(d, db))
    }

    /// Whether `db.table` is the shadow table of an online schema change of a sync object:
    /// gh-ost's `_t_gho` (new shape), `_t_ghc` (changelog), `_t_del` (the old table after the
    /// swap), pt-online-schema-change's `_t_new` and `_t_old` (more leading underscores when
    /// those names were taken). Their rows are copies of the original table's and are not synced;
    /// the original table's stream carries every change, in its new shape after the final rename.
    pub fn is_shadow(&self, db: &str, table: &str) -> bool {
        shadow_base(table).is_some_and(|base| self.matches(db, base))
    }
}

/// The table an online-schema-change shadow name belongs to (`_orders_gho` → `orders`).
pub fn shadow_base(table: &str) -> Option<&str> {
    let stem = ["_gho", "_ghc", "_del", "_new", "_old"].iter().find_map(|s| table.strip_suffix(s))?;
    let base = stem.strip_prefix('_')?;
    // pt-osc prefixes more underscores while the name is taken.
    let base = base.trim_start_matches('_');
    (!base.is_empty()).then_some(base)
}

/// Shell-style match of `*` and `?` (byte-wise; names are compared exactly as the server stores them).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, usize::MAX, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = pi;
            mark = ti;
            pi += 1;
        } else if star != usize::MAX {
            pi = star + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Reads table definitions from `information_schema` over its own connection, and caches them
/// until a DDL statement invalidates them.
pub struct SchemaCache {
    conn: Conn,
    opts: SourceOptions,
    flavor: Flavor,
    cache: HashMap<(String, String), Arc<TableSchema>>,
}

impl SchemaCache {
    pub fn new(conn: Conn, opts: SourceOptions, flavor: Flavor) -> Self {
        Self { conn, opts, flavor, cache: HashMap::new() }
    }

    pub fn invalidate(&mut self) {
        self.cache.clear();
    }

    /// The current definition of `db.table`, from the cache or the server.
    pub async fn get(&mut self, db: &str, table: &str) -> Result<Arc<TableSchema>, SourceError> {
        if let Some(s) = self.cache.get(&(db.to_string(), table.to_string())) {
            return Ok(s.clone());
        }
        let schema = Arc::new(self.load(db, table).await?);
        self.cache.insert((db.to_string(), table.to_string()), schema.clone());
        Ok(schema)
    }

    /// The live definition of `db.table` with its default character set (not cached).
    pub async fn load_def(&mut self, db: &str, table: &str) -> Result<TableDef, SourceError> {
        let schema = self.load(db, table).await?;
        let name = format!("{db}.{table}");
        let collation: Option<Option<String>> = self
            .conn
            .exec_first(
                "SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (db, table),
            )
            .await
            .map_err(|e| SourceError::from_mysql(e, &self.opts.addr(), &self.opts.user, &format!("reading the definition of {name}")))?;
        let charset = collation.flatten().and_then(|c| {
            let cs = c.split('_').next().unwrap_or_default().to_ascii_lowercase();
            (!cs.is_empty()).then_some(cs)
        });
        Ok(TableDef { schema: Arc::new(schema), charset })
    }

    /// The base tables of the server (not the system schemas), as `(db, table)`.
    pub async fn list_tables(&mut self) -> Result<Vec<(String, String)>, SourceError> {
        self.conn
            .query(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') \
                 AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')",
            )
            .await
            .map_err(|e| SourceError::from_mysql(e, &self.opts.addr(), &self.opts.user, "listing the tables"))
    }

    /// A database's default character set, if the database exists.
    pub async fn db_charset(&mut self, db: &str) -> Result<Option<String>, SourceError> {
        self.conn
            .exec_first("SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", (db,))
            .await
            .map_err(|e| SourceError::from_mysql(e, &self.opts.addr(), &self.opts.user, &format!("reading the character set of database {db}")))
    }

    /// `@@character_set_server`.
    pub async fn server_charset(&mut self) -> Result<String, SourceError> {
        let cs: Option<String> = self
            .conn
            .query_first("SELECT @@character_set_server")
            .await
            .map_err(|e| SourceError::from_mysql(e, &self.opts.addr(), &self.opts.user, "reading @@character_set_server"))?;
        Ok(cs.unwrap_or_default())
    }

    async fn load(&mut self, db: &str, table: &str) -> Result<TableSchema, SourceError> {
        let name = format!("{db}.{table}");
        let err = |e| SourceError::from_mysql(e, &self.opts.addr(), &self.opts.user, &format!("reading the definition of {name}"));
        type ColumnRow = (String, String, String, String, Option<String>, Option<u64>, Option<u64>, Option<u64>);
        let rows: Vec<ColumnRow> = self
            .conn
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, \
                 NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 ORDER BY ORDINAL_POSITION",
                (db, table),
            )
            .await
            .map_err(err)?;
        if rows.is_empty() {
            return Err(SourceError::Schema {
                table: name,
                reason: format!(
                    "information_schema shows no columns (the table is gone, or user '{}' lacks SELECT on it). Fix: GRANT SELECT ON `{db}`.* TO '{}'@'<client host>';",
                    self.opts.user, self.opts.user
                ),
            });
        }
        let mut columns: Vec<ColumnSchema> = rows
            .into_iter()
            .map(|(name, data_type, column_type, nullable, charset, precision, scale, fsp)| {
                column_schema(name, &data_type, column_type, nullable == "YES", charset, precision, scale, fsp)
            })
            .collect();

        if self.flavor == Flavor::MariaDb && columns.iter().any(|c| c.data_type == DataType::LongText) {
            // MariaDB's JSON is a LONGTEXT that information_schema cannot tell from any other;
            // the column-level CHECK (json_valid(`col`)) that the JSON type adds is what marks it.
            let clauses: Vec<String> = self
                .conn
                .exec(
                    "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                     WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
                    (db, table),
                )
                .await
                .map_err(err)?;
            for name in clauses.iter().filter_map(|c| json_valid_column(c)) {
                if let Some(c) = columns.iter_mut().find(|c| c.data_type == DataType::LongText && c.name == name) {
                    c.data_type = DataType::Json;
                }
            }
        }

        let key_rows: Vec<(String, String)> = self
            .conn
            .exec(
                "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
                 ORDER BY INDEX_NAME <> 'PRIMARY', INDEX_NAME, SEQ_IN_INDEX",
                (db, table),
            )
            .await
            .map_err(err)?;
        let mut keys: Vec<KeyInfo> = Vec::new();
        for (index, column) in key_rows {
            let Some(pos) = columns.iter().position(|c| c.name.eq_ignore_ascii_case(&column)) else {
                continue; // a functional key part: not a column
            };
            match keys.last_mut() {
                Some(k) if k.name == index => k.columns.push(pos),
                _ => keys.push(KeyInfo { name: index, columns: vec![pos] }),
            }
        }
        Ok(TableSchema { db: db.to_string(), table: table.to_string(), columns, keys })
    }
}

#[allow(clippy::too_many_arguments)]
fn column_schema(
    name: String,
    data_type: &str,
    column_type: String,
    nullable: bool,
    charset: Option<String>,
    precision: Option<u64>,
    scale: Option<u64>,
    fsp: Option<u64>,
) -> ColumnSchema {
    let data_type = DataType::from_information_schema(data_type);
    let lower = column_type.to_ascii_lowercase();
    let stringy = matches!(
        data_type,
        DataType::Char | DataType::VarChar | DataType::Binary | DataType::VarBinary | DataType::Enum | DataType::Set
    ) || data_type.is_text_family()
        || data_type.is_blob_family()
        || data_type == DataType::Json;
    // MariaDB's INET4, INET6 and UUID are decoded to their (ASCII) text form.
    let mariadb_text = data_type == DataType::Other && matches!(lower.as_str(), "inet4" | "inet6" | "uuid");
    ColumnSchema {
        name,
        data_type,
        unsigned: lower.contains(" unsigned"),
        nullable,
        charset: charset
            .or_else(|| stringy.then(|| "binary".to_string()))
            .or_else(|| mariadb_text.then(|| "ascii".to_string())),
        precision: precision.map(|p| p as u32),
        scale: scale.map(|s| s as u32),
        fsp: fsp.map(|f| f as u8),
        labels: if matches!(data_type, DataType::Enum | DataType::Set) { parse_labels(&column_type) } else { Vec::new() },
        column_type,
    }
}

/// The column named by a CHECK clause of exactly the form ``json_valid(`col`)`` (as MariaDB
/// prints the constraint its JSON type adds), with doubled backticks undone.
fn json_valid_column(clause: &str) -> Option<String> {
    let inner = clause.trim().strip_prefix("json_valid(`")?.strip_suffix("`)")?;
    let name = inner.replace("``", "`");
    // A lone backtick left means the clause was not one quoted identifier.
    (name.matches('`').count() * 2 == inner.matches('`').count()).then_some(name)
}

/// Labels of `enum('a','b''c')` / `set(...)` as information_schema prints them.
fn parse_labels(column_type: &str) -> Vec<String> {
    let Some(inner) = column_type.find('(').map(|i| &column_type[i + 1..]) else { return Vec::new() };
    let mut labels = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        loop {
            match chars.next() {
                Some('\'') if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                Some('\'') | None => break,
                Some('\\') => {
                    if let Some(n) = chars.next() {
                        label.push(n)
                    }
                }
                Some(c) => label.push(c),
            }
        }
        labels.push(label);
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches() {
        assert!(glob("*", "anything"));
        assert!(glob("order_*", "order_2024"));
        assert!(!glob("order_*", "orders"));
        assert!(glob("t?", "t1"));
        assert!(!glob("t?", "t12"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
    }

    #[test]
    fn filter_include_exclude() {
        let f = TableFilter::new(&["shop.*".into(), "crm.users".into()], &["shop.tmp_*".into()]).unwrap();
        assert!(f.matches("shop", "orders"));
        assert!(!f.matches("shop", "tmp_x"));
        assert!(f.matches("crm", "users"));
        assert!(!f.matches("crm", "leads"));
        assert!(TableFilter::new(&["nodot".into()], &[]).is_err());
    }

    #[test]
    fn shadow_tables_of_online_schema_change_tools() {
        let f = TableFilter::new(&["shop.*".into()], &[]).unwrap();
        for name in ["_orders_gho", "_orders_ghc", "_orders_del", "_orders_new", "_orders_old", "__orders_new"] {
            assert!(f.is_shadow("shop", name), "{name}");
            assert_eq!(shadow_base(name), Some("orders"));
        }
        assert!(!f.is_shadow("shop", "orders_new"), "no leading underscore");
        assert!(!f.is_shadow("other", "_orders_gho"), "base not a sync object");
        assert!(!TableFilter::new(&["shop.orders".into()], &[]).unwrap().is_shadow("shop", "_items_gho"));
        assert!(f.matches_db("shop") && !f.matches_db("crm"));
    }

    #[test]
    fn json_check_clauses() {
        assert_eq!(json_valid_column("json_valid(`doc`)").as_deref(), Some("doc"));
        assert_eq!(json_valid_column(" json_valid(`a``b`) ").as_deref(), Some("a`b"));
        assert_eq!(json_valid_column("json_valid(`a`) and `b` > 0"), None);
        assert_eq!(json_valid_column("json_valid(`a`) or json_valid(`b`)"), None);
        assert_eq!(json_valid_column("`a` > 0"), None);
    }

    #[test]
    fn mariadb_types_are_ascii_text() {
        let c = column_schema("ip".into(), "inet6", "inet6".into(), true, None, None, None, None);
        assert_eq!((c.data_type, c.charset.as_deref()), (DataType::Other, Some("ascii")));
        let c = column_schema("b".into(), "binary", "binary(4)".into(), true, None, None, None, None);
        assert_eq!(c.charset.as_deref(), Some("binary"));
    }

    #[test]
    fn enum_labels_with_quotes() {
        assert_eq!(parse_labels("enum('a','it''s','x,y')"), vec!["a", "it's", "x,y"]);
        assert_eq!(parse_labels("set('')"), vec![""]);
    }
}
