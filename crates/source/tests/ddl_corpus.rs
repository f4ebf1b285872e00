//! The DDL regression corpus: one test per statement shape, named for what it covers. Each
//! parses the statement (both parsers must agree wherever sqlparser accepts it), applies it to a
//! schema history and checks the table's shape afterwards: column names and order, types, the
//! attributes the records carry (charset, signedness, labels, precision), and the row key.
//! A statement sluice cannot follow must leave the table `Unknown`, never a guessed shape.

use std::sync::Arc;

use sluice_event::{DataType, TableSchema};
use sluice_source::{
    ddl::{self, AlterOp, ColumnDef, Effect, KeyDef, Position, TableRef, Via},
    history::{Origin, Pos, SchemaHistory, ServerContext, State, TableDef},
    Flavor,
};

const DB: &str = "shop";

/// The effects of `sql` (default database `shop`); where sqlparser accepts the statement, its
/// reading and the fallback parser's must be the same.
fn effects(sql: &str) -> Vec<Effect> {
    let fallback = ddl::parse_fallback_only(sql, DB);
    if let Some(via_sqlparser) = ddl::parse_sqlparser_only(sql, DB) {
        assert_eq!(via_sqlparser, fallback, "sqlparser and the fallback parser disagree on: {sql}");
    }
    assert_eq!(ddl::parse(sql, DB), fallback, "{sql}");
    fallback
}

fn t(table: &str) -> TableRef {
    TableRef::new(DB, table)
}

/// A history that statements are applied to at growing positions.
struct H {
    h: SchemaHistory,
    offset: u64,
}

impl H {
    fn new() -> Self {
        Self::with(ServerContext::for_version(Flavor::MariaDb, "10.11.6-MariaDB-0+deb12u1-log", "utf8mb4", 0))
    }

    fn mysql() -> Self {
        Self::with(ServerContext::for_version(Flavor::MySql, "8.4.2", "utf8mb4", 0))
    }

    fn with(ctx: ServerContext) -> Self {
        let h = SchemaHistory::in_memory();
        h.set_context(ctx);
        H { h, offset: 0 }
    }

    fn next_pos(&mut self) -> Pos {
        self.offset += 100;
        Pos { epoch: 0, file_index: 1, offset: self.offset }
    }

    /// Applies `sql` (default database `shop`) at the next position.
    fn run(&mut self, sql: &str) -> Pos {
        let pos = self.next_pos();
        self.h.apply(&effects(sql), pos, None, sql).unwrap();
        pos
    }

    fn state(&self, table: &str) -> Option<State> {
        self.h.at(DB, table, Pos { epoch: u32::MAX, file_index: 0, offset: 0 }).map(|e| e.state)
    }

    fn schema(&self, table: &str) -> Arc<TableSchema> {
        match self.state(table) {
            Some(State::Known(d)) => d.schema.clone(),
            other => panic!("{table}: expected a known shape, found {other:?}"),
        }
    }

    fn def(&self, table: &str) -> Arc<TableDef> {
        match self.state(table) {
            Some(State::Known(d)) => d,
            other => panic!("{table}: expected a known shape, found {other:?}"),
        }
    }

    /// `name Type` per column.
    fn cols(&self, table: &str) -> Vec<String> {
        self.schema(table).columns.iter().map(|c| format!("{} {:?}", c.name, c.data_type)).collect()
    }

    /// `NAME(col,…)` per key.
    fn keys(&self, table: &str) -> Vec<String> {
        let s = self.schema(table);
        s.keys
            .iter()
            .map(|k| format!("{}({})", k.name, k.columns.iter().map(|&i| s.columns[i].name.as_str()).collect::<Vec<_>>().join(",")))
            .collect()
    }

    fn charsets(&self, table: &str) -> Vec<Option<String>> {
        self.schema(table).columns.iter().map(|c| c.charset.clone()).collect()
    }
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ------------------------------------------------------------------------------------------
// CREATE TABLE

#[test]
fn create_table_every_column_type() {
    let mut h = H::new();
    h.run(
        "CREATE TABLE t (a TINYINT, b SMALLINT UNSIGNED, c MEDIUMINT, d INT(11) ZEROFILL, e BIGINT, f DECIMAL(10,2), \
         g FLOAT, h DOUBLE, i BIT(5), j YEAR, k DATE, l TIME(3), m DATETIME(6), n TIMESTAMP(2) NULL, o CHAR(3), \
         p VARCHAR(64), q BINARY(16), r VARBINARY(8), s TINYTEXT, u TEXT, w MEDIUMTEXT, x LONGTEXT, y TINYBLOB, \
         z BLOB, aa MEDIUMBLOB, ab LONGBLOB, ac ENUM('x','y''s'), ad SET('r','w'), ae JSON, af GEOMETRY, ag POINT, \
         ah INET6, ai UUID, aj INET4)",
    );
    let cols = h.cols("t");
    assert_eq!(
        cols,
        v(&[
            "a TinyInt", "b SmallInt", "c MediumInt", "d Int", "e BigInt", "f Decimal", "g Float", "h Double", "i Bit", "j Year",
            "k Date", "l Time", "m DateTime", "n Timestamp", "o Char", "p VarChar", "q Binary", "r VarBinary", "s TinyText",
            "u Text", "w MediumText", "x LongText", "y TinyBlob", "z Blob", "aa MediumBlob", "ab LongBlob", "ac Enum", "ad Set",
            "ae Json", "af Geometry", "ag Geometry", "ah Other", "ai Other", "aj Other",
        ])
    );
    let s = h.schema("t");
    let col = |n: &str| s.columns.iter().find(|c| c.name == n).unwrap().clone();
    assert!(col("b").unsigned && col("d").unsigned && !col("a").unsigned, "UNSIGNED and ZEROFILL");
    assert_eq!((col("f").precision, col("f").scale), (Some(10), Some(2)));
    assert_eq!((col("g").precision, col("g").scale), (Some(12), None));
    assert_eq!((col("h").precision, col("h").scale), (Some(22), None));
    assert_eq!(col("i").precision, Some(5));
    assert_eq!((col("l").fsp, col("m").fsp, col("n").fsp, col("k").fsp), (Some(3), Some(6), Some(2), None));
    assert_eq!(col("ac").labels, v(&["x", "y's"]));
    assert_eq!(col("ad").labels, v(&["r", "w"]));
    assert_eq!(col("o").charset.as_deref(), Some("utf8mb4"), "the server default");
    assert_eq!(col("q").charset.as_deref(), Some("binary"));
    assert_eq!(col("z").charset.as_deref(), Some("binary"));
    assert_eq!(col("ae").charset.as_deref(), Some("utf8mb4"), "MariaDB's JSON is utf8mb4 text");
    assert_eq!(col("ah").column_type, "inet6");
    assert_eq!(col("ah").charset.as_deref(), Some("ascii"));
    assert_eq!(col("a").charset, None);
}

#[test]
fn create_table_type_synonyms() {
    let mut h = H::new();
    h.run(
        "CREATE TABLE t (a BOOL, b INTEGER, c INT1, d INT8, e MIDDLEINT, f DEC(5), g NUMERIC, h FIXED(4,1), i REAL, \
         j DOUBLE PRECISION, k FLOAT(30), l FLOAT(7,3), m CHARACTER VARYING(5), n NATIONAL CHAR(2), o NCHAR VARCHAR(3), \
         p NVARCHAR(4), q LONG, r LONG VARBINARY, s TEXT(100), t2 BLOB(300), u CHAR(3) BYTE, w SERIAL)",
    );
    assert_eq!(
        h.cols("t"),
        v(&[
            "a TinyInt", "b Int", "c TinyInt", "d BigInt", "e MediumInt", "f Decimal", "g Decimal", "h Decimal", "i Double",
            "j Double", "k Double", "l Float", "m VarChar", "n Char", "o VarChar", "p VarChar", "q MediumText", "r MediumBlob",
            "s Text", "t2 Blob", "u Binary", "w BigInt",
        ])
    );
    let s = h.schema("t");
    assert_eq!((s.columns[5].precision, s.columns[5].scale), (Some(5), Some(0)), "DEC(5)");
    assert_eq!((s.columns[6].precision, s.columns[6].scale), (Some(10), Some(0)), "NUMERIC defaults");
    assert_eq!((s.columns[11].precision, s.columns[11].scale), (Some(7), Some(3)), "FLOAT(7,3)");
    assert_eq!(s.columns[13].charset.as_deref(), Some("utf8mb3"), "NATIONAL is utf8mb3");
    assert!(s.columns[21].unsigned && !s.columns[21].nullable, "SERIAL is BIGINT UNSIGNED NOT NULL");
    assert_eq!(h.keys("t"), v(&["w(w)"]), "SERIAL adds a unique key named after the column");
}

#[test]
fn create_table_text_length_picks_the_smallest_type_for_the_charset() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a TEXT(50) CHARACTER SET latin1, b TEXT(100) CHARACTER SET utf8mb4, c TEXT(20000) CHARACTER SET utf8mb4, d BLOB(255))");
    assert_eq!(h.cols("t"), v(&["a TinyText", "b Text", "c MediumText", "d TinyBlob"]));
}

#[test]
fn create_table_primary_and_unique_keys_inline_and_table_level() {
    let mut h = H::new();
    h.run(
        "CREATE TABLE t (id BIGINT NOT NULL AUTO_INCREMENT, a INT UNIQUE, b INT, c VARCHAR(10), \
         PRIMARY KEY (id), UNIQUE KEY uk_bc (b, c(5)), UNIQUE (c), CONSTRAINT sym UNIQUE (b), KEY plain (a), \
         INDEX (b), FULLTEXT KEY ft (c), FOREIGN KEY (b) REFERENCES o (id) ON DELETE SET NULL, UNIQUE ((a + 1)))",
    );
    assert_eq!(h.keys("t"), v(&["PRIMARY(id)", "a(a)", "c(c)", "sym(b)", "uk_bc(b,c)"]));
    let s = h.schema("t");
    assert!(!s.columns[0].nullable);
    assert!(s.columns[1].nullable, "ON DELETE SET NULL of a foreign key is not the column's NULL");
}

#[test]
fn create_table_inline_primary_key_and_key_shorthand() {
    let mut h = H::new();
    h.run("CREATE TABLE a (id INT PRIMARY KEY, v INT)");
    h.run("CREATE TABLE b (id INT KEY, v INT)");
    assert_eq!(h.keys("a"), v(&["PRIMARY(id)"]));
    assert_eq!(h.keys("b"), v(&["PRIMARY(id)"]));
}

#[test]
fn create_table_unique_key_names_are_deduplicated_like_the_server() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a INT, b INT, UNIQUE (a), UNIQUE KEY (a), UNIQUE (b, a))");
    assert_eq!(h.keys("t"), v(&["a(a)", "a_2(a)", "b(b,a)"]));
}

#[test]
fn create_table_charset_from_table_default_column_and_collation() {
    let mut h = H::new();
    h.run(
        "CREATE TABLE t (a VARCHAR(5), b VARCHAR(5) CHARACTER SET utf8mb4, c TEXT COLLATE utf8mb4_bin, \
         d CHAR(2) CHARSET utf8, e VARCHAR(5) CHARACTER SET binary, f TEXT CHARACTER SET binary, g ENUM('a') , \
         h CHAR(1) BINARY, i VARCHAR(3) ASCII) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci",
    );
    assert_eq!(
        h.charsets("t"),
        vec![
            Some("latin1".into()),
            Some("utf8mb4".into()),
            Some("utf8mb4".into()),
            Some("utf8mb3".into()),
            Some("binary".into()),
            Some("binary".into()),
            Some("latin1".into()),
            Some("latin1".into()),
            Some("latin1".into()),
        ]
    );
    assert_eq!(h.cols("t")[4], "e VarBinary", "VARCHAR CHARACTER SET binary is VARBINARY");
    assert_eq!(h.cols("t")[5], "f Blob", "TEXT CHARACTER SET binary is BLOB");
    assert_eq!(h.def("t").charset.as_deref(), Some("latin1"));
}

#[test]
fn create_table_charset_from_table_collation_only() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a VARCHAR(5)) COLLATE = latin1_bin");
    assert_eq!(h.charsets("t"), vec![Some("latin1".into())]);
}

#[test]
fn create_table_charset_from_the_database_default() {
    let mut h = H::new();
    h.run("CREATE DATABASE shop CHARACTER SET latin1");
    h.run("CREATE TABLE t (a VARCHAR(5))");
    assert_eq!(h.charsets("t"), vec![Some("latin1".into())]);
    h.run("ALTER DATABASE shop DEFAULT CHARACTER SET = utf8mb4");
    h.run("CREATE TABLE t2 (a VARCHAR(5))");
    assert_eq!(h.charsets("t2"), vec![Some("utf8mb4".into())]);
}

#[test]
fn create_table_show_create_output_of_mariadb() {
    // pt-online-schema-change creates its copy from SHOW CREATE TABLE output.
    let mut h = H::new();
    h.run(
        "CREATE TABLE `_t_new` (\n  `id` bigint(20) NOT NULL,\n  `doc` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`doc`)),\n  \
         `note` varchar(64) DEFAULT 'a,b' COMMENT 'x, (y)',\n  `ts` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),\n  \
         PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
    );
    assert_eq!(h.cols("_t_new"), v(&["id BigInt", "doc Json", "note VarChar", "ts Timestamp"]));
    assert_eq!(h.keys("_t_new"), v(&["PRIMARY(id)"]));
}

#[test]
fn create_table_json_by_table_level_check() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a LONGTEXT, b LONGTEXT, CONSTRAINT `a` CHECK (json_valid(`a`)))");
    assert_eq!(h.cols("t"), v(&["a Json", "b LongText"]));
}

#[test]
fn create_table_json_on_mysql_is_binary_json() {
    let mut h = H::mysql();
    h.run("CREATE TABLE t (a JSON, b CHAR(3) CHARSET utf8)");
    let s = h.schema("t");
    assert_eq!((s.columns[0].data_type, s.columns[0].charset.as_deref()), (DataType::Json, Some("binary")));
    assert_eq!(s.columns[1].charset.as_deref(), Some("utf8mb3"), "MySQL 8.4 names utf8 utf8mb3");
    let old = ServerContext::for_version(Flavor::MySql, "5.7.44-log", "latin1", 0);
    assert_eq!(old.canonical_charset("utf8mb3"), "utf8");
}

#[test]
fn create_table_generated_and_invisible_columns() {
    let mut h = H::new();
    h.run(
        "CREATE TABLE t (a INT, b INT AS (a + 1) VIRTUAL, c INT GENERATED ALWAYS AS (a * 2) STORED, \
         d INT INVISIBLE, e VARCHAR(3) AS (concat('x', 'y')) PERSISTENT)",
    );
    assert_eq!(h.cols("t"), v(&["a Int", "b Int", "c Int", "d Int", "e VarChar"]));
}

#[test]
fn create_table_defaults_that_look_like_attributes() {
    let mut h = H::new();
    h.run(
        "CREATE TABLE t (a VARCHAR(9) DEFAULT 'NOT NULL', b INT DEFAULT NULL, c INT DEFAULT -1 NOT NULL, \
         d VARBINARY(2) DEFAULT X'00ff', e VARCHAR(3) DEFAULT _utf8mb4'x' COLLATE utf8mb4_bin, \
         f DATETIME(3) DEFAULT (now(3) + INTERVAL 1 DAY), g INT COMMENT 'PRIMARY KEY')",
    );
    let s = h.schema("t");
    assert!(s.columns[0].nullable, "'NOT NULL' is a default value");
    assert!(s.columns[1].nullable && !s.columns[2].nullable);
    assert_eq!(s.columns[4].charset.as_deref(), Some("utf8mb4"));
    assert_eq!(s.columns[5].fsp, Some(3));
    assert!(h.keys("t").is_empty(), "a comment is not a key");
}

#[test]
fn create_table_quoted_names_with_backticks_and_dots() {
    let mut h = H::new();
    h.run("CREATE TABLE `we``ird.name` (`col``1` INT, `a.b` INT, PRIMARY KEY (`col``1`))");
    assert_eq!(h.cols("we`ird.name"), v(&["col`1 Int", "a.b Int"]));
    assert_eq!(h.keys("we`ird.name"), v(&["PRIMARY(col`1)"]));
}

#[test]
fn create_table_in_another_database() {
    let e = effects("CREATE TABLE crm.users (id INT)");
    assert!(matches!(&e[..], [Effect::CreateTable { table, .. }] if *table == TableRef::new("crm", "users")));
}

#[test]
fn create_table_if_not_exists_keeps_the_existing_table() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a INT)");
    h.run("CREATE TABLE IF NOT EXISTS t (x BIGINT, y BIGINT)");
    assert_eq!(h.cols("t"), v(&["a Int"]));
}

#[test]
fn create_or_replace_table_replaces() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a INT)");
    h.run("CREATE OR REPLACE TABLE t (x BIGINT, y BIGINT)");
    assert_eq!(h.cols("t"), v(&["x BigInt", "y BigInt"]));
}

#[test]
fn create_table_like_copies_the_shape() {
    let mut h = H::new();
    h.run("CREATE TABLE src (id INT PRIMARY KEY, v VARCHAR(3) CHARACTER SET latin1)");
    h.run("CREATE TABLE copy LIKE src");
    h.run("CREATE TABLE IF NOT EXISTS `shop`.`copy2` (LIKE `shop`.`src`)");
    assert_eq!(h.cols("copy"), h.cols("src"));
    assert_eq!(h.keys("copy2"), v(&["PRIMARY(id)"]));
    assert_eq!(h.schema("copy").table, "copy");
    assert_eq!(h.charsets("copy2"), h.charsets("src"));
}

#[test]
fn create_table_like_of_an_unknown_table_is_read_from_the_server() {
    let mut h = H::new();
    h.run("CREATE TABLE copy LIKE never_seen");
    assert_eq!(h.state("copy"), Some(State::Unseeded));
}

#[test]
fn create_table_select_is_read_from_the_server() {
    let mut h = H::new();
    h.run("CREATE TABLE t AS SELECT 1 AS a");
    assert_eq!(h.state("t"), Some(State::Unseeded));
    h.run("CREATE TABLE t2 (extra INT) SELECT * FROM src");
    assert_eq!(h.state("t2"), Some(State::Unseeded));
}

#[test]
fn create_table_mysql_atomic_ctas_start_transaction() {
    let sql = "CREATE TABLE `t` (\n  `a` int NOT NULL\n) START TRANSACTION";
    let mut h = H::mysql();
    h.run(sql);
    assert_eq!(h.cols("t"), v(&["a Int"]));
    assert!(ddl::opens_transaction(sql));
    assert!(!ddl::opens_transaction("CREATE TABLE t (a int)"));
}

#[test]
fn create_table_partitioned_in_executable_comment() {
    let mut h = H::new();
    h.run("CREATE TABLE t (id INT, d DATE, PRIMARY KEY (id, d))\n/*!50100 PARTITION BY RANGE (year(d))\n(PARTITION p0 VALUES LESS THAN (2000) ENGINE = InnoDB, PARTITION p1 VALUES LESS THAN MAXVALUE ENGINE = InnoDB) */");
    assert_eq!(h.cols("t"), v(&["id Int", "d Date"]));
    assert_eq!(h.keys("t"), v(&["PRIMARY(id,d)"]));
}

#[test]
fn create_table_system_versioned_is_read_from_the_server() {
    // MariaDB adds hidden row_start/row_end columns, which the binlog carries.
    let mut h = H::new();
    h.run("CREATE TABLE t (a INT) WITH SYSTEM VERSIONING");
    assert_eq!(h.state("t"), Some(State::Unseeded));
}

#[test]
fn create_temporary_table_changes_nothing() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a INT)");
    assert!(effects("CREATE TEMPORARY TABLE t (x INT, y INT)").is_empty());
    assert!(effects("DROP TEMPORARY TABLE IF EXISTS t").is_empty());
    assert_eq!(h.cols("t"), v(&["a Int"]));
}

#[test]
fn create_sequence_is_read_from_the_server() {
    let mut h = H::new();
    h.run("CREATE SEQUENCE s START WITH 10");
    assert_eq!(h.state("s"), Some(State::Unseeded));
    h.run("DROP SEQUENCE s");
    assert_eq!(h.state("s"), Some(State::Dropped));
}

// ------------------------------------------------------------------------------------------
// ALTER TABLE: columns

fn base() -> H {
    let mut h = H::new();
    h.run("CREATE TABLE t (id BIGINT NOT NULL, a INT, b VARCHAR(10), c DATETIME, PRIMARY KEY (id), UNIQUE KEY ub (b))");
    h
}

#[test]
fn alter_add_column_at_the_end() {
    let mut h = base();
    h.run("ALTER TABLE t ADD COLUMN d INT UNSIGNED");
    assert_eq!(h.cols("t"), v(&["id BigInt", "a Int", "b VarChar", "c DateTime", "d Int"]));
    assert!(h.schema("t").columns[4].unsigned);
    h.run("ALTER TABLE t ADD e TEXT");
    assert_eq!(h.cols("t").last().unwrap(), "e Text");
}

#[test]
fn alter_add_column_first_and_after() {
    let mut h = base();
    h.run("ALTER TABLE t ADD COLUMN z INT FIRST, ADD y INT AFTER `a`");
    assert_eq!(h.cols("t"), v(&["z Int", "id BigInt", "a Int", "y Int", "b VarChar", "c DateTime"]));
    assert_eq!(h.keys("t"), v(&["PRIMARY(id)", "ub(b)"]), "keys follow their columns");
}

#[test]
fn alter_add_several_columns_in_parentheses() {
    let mut h = base();
    h.run("ALTER TABLE t ADD COLUMN (p INT, q VARCHAR(3), UNIQUE KEY uq (q))");
    assert_eq!(h.cols("t")[4..], v(&["p Int", "q VarChar"])[..]);
    assert_eq!(h.keys("t"), v(&["PRIMARY(id)", "ub(b)", "uq(q)"]));
}

#[test]
fn alter_add_column_if_not_exists_mariadb() {
    let mut h = base();
    h.run("ALTER TABLE t ADD COLUMN IF NOT EXISTS a BIGINT, ADD COLUMN IF NOT EXISTS d INT");
    assert_eq!(h.cols("t"), v(&["id BigInt", "a Int", "b VarChar", "c DateTime", "d Int"]), "existing a untouched");
}

#[test]
fn alter_add_column_with_inline_unique_and_primary_key() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a INT)");
    h.run("ALTER TABLE t ADD COLUMN id INT NOT NULL PRIMARY KEY FIRST, ADD u INT UNIQUE");
    assert_eq!(h.cols("t"), v(&["id Int", "a Int", "u Int"]));
    assert_eq!(h.keys("t"), v(&["PRIMARY(id)", "u(u)"]));
}

#[test]
fn alter_drop_column() {
    let mut h = base();
    h.run("ALTER TABLE t DROP COLUMN a");
    assert_eq!(h.cols("t"), v(&["id BigInt", "b VarChar", "c DateTime"]));
    h.run("ALTER TABLE t DROP c");
    assert_eq!(h.cols("t"), v(&["id BigInt", "b VarChar"]));
}

#[test]
fn alter_drop_column_if_exists_mariadb() {
    let mut h = base();
    h.run("ALTER TABLE t DROP COLUMN IF EXISTS nope, DROP COLUMN IF EXISTS a");
    assert_eq!(h.cols("t"), v(&["id BigInt", "b VarChar", "c DateTime"]));
}

#[test]
fn alter_drop_column_removes_it_from_keys() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a INT, b INT, c INT, UNIQUE KEY abc (a, b), UNIQUE KEY cc (c))");
    h.run("ALTER TABLE t DROP COLUMN b, DROP COLUMN c");
    assert_eq!(h.keys("t"), v(&["abc(a)"]));
}

#[test]
fn alter_modify_column_retypes() {
    let mut h = base();
    h.run("ALTER TABLE t MODIFY a BIGINT UNSIGNED NOT NULL, MODIFY COLUMN b VARCHAR(200) CHARACTER SET latin1");
    assert_eq!(h.cols("t"), v(&["id BigInt", "a BigInt", "b VarChar", "c DateTime"]));
    let s = h.schema("t");
    assert!(s.columns[1].unsigned && !s.columns[1].nullable);
    assert_eq!(s.columns[2].charset.as_deref(), Some("latin1"));
}

#[test]
fn alter_modify_column_takes_the_table_default_charset() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a VARCHAR(5) CHARACTER SET latin1) DEFAULT CHARSET=utf8mb4");
    h.run("ALTER TABLE t MODIFY a VARCHAR(10)");
    assert_eq!(h.charsets("t"), vec![Some("utf8mb4".into())]);
}

#[test]
fn alter_modify_column_reorders_first_and_after() {
    let mut h = base();
    h.run("ALTER TABLE t MODIFY c DATETIME(3) FIRST");
    assert_eq!(h.cols("t"), v(&["c DateTime", "id BigInt", "a Int", "b VarChar"]));
    h.run("ALTER TABLE t MODIFY COLUMN c DATETIME(3) AFTER b");
    assert_eq!(h.cols("t"), v(&["id BigInt", "a Int", "b VarChar", "c DateTime"]));
    h.run("ALTER TABLE t MODIFY id BIGINT NOT NULL AFTER a");
    assert_eq!(h.cols("t"), v(&["a Int", "id BigInt", "b VarChar", "c DateTime"]));
    assert_eq!(h.keys("t"), v(&["PRIMARY(id)", "ub(b)"]));
    assert_eq!(h.schema("t").columns[3].fsp, Some(3));
}

#[test]
fn alter_modify_if_exists_mariadb() {
    let mut h = base();
    h.run("ALTER TABLE t MODIFY IF EXISTS nope INT, MODIFY COLUMN IF EXISTS a TINYINT");
    assert_eq!(h.cols("t")[1], "a TinyInt");
}

#[test]
fn alter_change_column_renames_and_retypes() {
    let mut h = base();
    h.run("ALTER TABLE t CHANGE b bee VARCHAR(20) NOT NULL, CHANGE COLUMN a `A2` DECIMAL(8,3) FIRST");
    assert_eq!(h.cols("t"), v(&["A2 Decimal", "id BigInt", "bee VarChar", "c DateTime"]));
    assert_eq!(h.keys("t"), v(&["PRIMARY(id)", "ub(bee)"]), "keys follow renamed columns");
}

#[test]
fn alter_change_column_if_exists_mariadb() {
    let mut h = base();
    h.run("ALTER TABLE t CHANGE COLUMN IF EXISTS nope x INT");
    assert_eq!(h.cols("t"), base().cols("t"));
}

#[test]
fn alter_rename_column() {
    let mut h = base();
    h.run("ALTER TABLE t RENAME COLUMN a TO alpha, RENAME COLUMN b TO beta");
    assert_eq!(h.cols("t"), v(&["id BigInt", "alpha Int", "beta VarChar", "c DateTime"]));
    assert_eq!(h.keys("t"), v(&["PRIMARY(id)", "ub(beta)"]));
}

#[test]
fn alter_rename_columns_swapping_names() {
    let mut h = base();
    h.run("ALTER TABLE t RENAME COLUMN a TO tmp, RENAME COLUMN c TO a, RENAME COLUMN tmp TO c");
    assert_eq!(h.cols("t"), v(&["id BigInt", "c Int", "b VarChar", "a DateTime"]));
}

#[test]
fn alter_column_defaults_and_visibility_change_no_shape() {
    let mut h = base();
    let before = h.schema("t");
    h.run("ALTER TABLE t ALTER COLUMN a SET DEFAULT 5, ALTER b DROP DEFAULT");
    h.run("ALTER TABLE t ALTER COLUMN c SET INVISIBLE");
    assert_eq!(h.schema("t"), before);
}

#[test]
fn alter_column_names_are_case_insensitive() {
    let mut h = base();
    h.run("ALTER TABLE t MODIFY A SMALLINT, DROP COLUMN C");
    assert_eq!(h.cols("t"), v(&["id BigInt", "A SmallInt", "b VarChar"]), "MODIFY takes the name as written");
}

// ------------------------------------------------------------------------------------------
// ALTER TABLE: keys, charsets, options

#[test]
fn alter_primary_key_changes() {
    let mut h = base();
    h.run("ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (id, a)");
    assert_eq!(h.keys("t"), v(&["PRIMARY(id,a)", "ub(b)"]));
    assert!(!h.schema("t").columns[1].nullable, "primary key columns are NOT NULL");
    h.run("ALTER TABLE t DROP PRIMARY KEY");
    assert_eq!(h.keys("t"), v(&["ub(b)"]));
    h.run("ALTER TABLE t ADD CONSTRAINT pk PRIMARY KEY USING BTREE (a)");
    assert_eq!(h.keys("t"), v(&["PRIMARY(a)", "ub(b)"]));
}

#[test]
fn alter_unique_keys_add_drop_rename() {
    let mut h = base();
    h.run("ALTER TABLE t ADD UNIQUE INDEX u2 (c), ADD CONSTRAINT named UNIQUE (a), ADD INDEX plain (a)");
    assert_eq!(h.keys("t"), v(&["PRIMARY(id)", "named(a)", "u2(c)", "ub(b)"]));
    h.run("ALTER TABLE t DROP INDEX u2, DROP KEY plain");
    assert_eq!(h.keys("t"), v(&["PRIMARY(id)", "named(a)", "ub(b)"]));
    h.run("ALTER TABLE t RENAME INDEX named TO na");
    h.run("ALTER TABLE t RENAME KEY ub TO zz");
    assert_eq!(h.keys("t"), v(&["PRIMARY(id)", "na(a)", "zz(b)"]));
    h.run("ALTER TABLE t DROP CONSTRAINT na");
    assert_eq!(h.keys("t"), v(&["PRIMARY(id)", "zz(b)"]));
}

#[test]
fn create_and_drop_index_statements() {
    let mut h = base();
    h.run("CREATE UNIQUE INDEX ua ON t (a)");
    h.run("CREATE INDEX ia ON t (a, b)");
    assert_eq!(h.keys("t"), v(&["PRIMARY(id)", "ua(a)", "ub(b)"]));
    h.run("DROP INDEX ua ON t");
    h.run("DROP INDEX `PRIMARY` ON t");
    assert_eq!(h.keys("t"), v(&["ub(b)"]));
}

#[test]
fn alter_default_charset_affects_columns_added_later_only() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a VARCHAR(5)) DEFAULT CHARSET=utf8mb4");
    h.run("ALTER TABLE t DEFAULT CHARSET=latin1");
    h.run("ALTER TABLE t ADD b VARCHAR(5)");
    h.run("ALTER TABLE t CHARACTER SET = utf8mb3, ADD c CHAR(1)");
    h.run("ALTER TABLE t COLLATE utf8mb4_bin");
    h.run("ALTER TABLE t ADD d TEXT");
    assert_eq!(h.charsets("t"), vec![Some("utf8mb4".into()), Some("latin1".into()), Some("utf8mb3".into()), Some("utf8mb4".into())]);
}

#[test]
fn alter_default_charset_applies_before_columns_added_in_the_same_statement() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a VARCHAR(5)) DEFAULT CHARSET=latin1");
    h.run("ALTER TABLE t ADD b VARCHAR(3), DEFAULT CHARSET = utf8mb4");
    h.run("ALTER TABLE t ADD c VARCHAR(3), CONVERT TO CHARACTER SET ucs2, ADD d CHAR(1) CHARACTER SET latin1");
    assert_eq!(h.charsets("t"), vec![Some("ucs2".into()); 4], "CONVERT TO converts the finished column set");
}

#[test]
fn alter_convert_to_character_set_converts_every_text_column() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a VARCHAR(5), b TEXT, c ENUM('x'), d VARBINARY(3), e INT, f CHAR(2) CHARACTER SET utf8mb4) DEFAULT CHARSET latin1");
    h.run("ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
    assert_eq!(
        h.charsets("t"),
        vec![Some("utf8mb4".into()), Some("utf8mb4".into()), Some("utf8mb4".into()), Some("binary".into()), None, Some("utf8mb4".into())]
    );
    assert_eq!(h.cols("t")[1], "b MediumText", "a latin1 TEXT grows to MEDIUMTEXT to keep its length in utf8mb4");
    assert_eq!(h.def("t").charset.as_deref(), Some("utf8mb4"));
    h.run("ALTER TABLE t ADD g VARCHAR(1)");
    assert_eq!(h.charsets("t")[6].as_deref(), Some("utf8mb4"));
}

#[test]
fn alter_convert_to_charset_binary_makes_binary_columns() {
    let mut h = H::new();
    h.run("CREATE TABLE t (a CHAR(5), b VARCHAR(5), c TEXT)");
    h.run("ALTER TABLE t CONVERT TO CHARSET binary");
    assert_eq!(h.cols("t"), v(&["a Binary", "b VarBinary", "c Blob"]));
}

#[test]
fn alter_table_options_only_change_nothing() {
    let mut h = base();
    let before = h.schema("t");
    for sql in [
        "ALTER TABLE t ENGINE=InnoDB",
        "ALTER TABLE t ENGINE = InnoDB ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=8",
        "ALTER TABLE t AUTO_INCREMENT = 1000, COMMENT 'it''s, a comment'",
        "ALTER TABLE t FORCE",
        "ALTER TABLE t ALGORITHM=INPLACE, LOCK=NONE",
        "ALTER TABLE t ORDER BY a, b",
        "ALTER TABLE t DISABLE KEYS",
        "/*!40000 ALTER TABLE `t` ENABLE KEYS */",
        "ALTER TABLE t STATS_PERSISTENT=0, PAGE_COMPRESSED=1",
        "ALTER TABLE t ADD INDEX (a), ADD FULLTEXT KEY ft (b), ADD SPATIAL INDEX sp (c)",
        "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES o (id) ON DELETE SET NULL",
        "ALTER TABLE t DROP FOREIGN KEY fk",
        "ALTER TABLE t ADD CONSTRAINT chk CHECK (a > 0)",
        "ALTER TABLE t DROP CHECK chk",
    ] {
        h.run(sql);
        assert_eq!(h.schema("t"), before, "{sql}");
    }
}

#[test]
fn alter_algorithm_and_lock_with_column_changes() {
    let mut h = base();
    h.run("ALTER TABLE t ALGORITHM=INPLACE, LOCK=NONE, ADD COLUMN w INT");
    h.run("ALTER ONLINE TABLE t ADD x INT");
    h.run("ALTER IGNORE TABLE t ADD y INT");
    h.run("ALTER TABLE IF EXISTS t ADD z INT");
    h.run("ALTER TABLE t WAIT 5 ADD v INT");
    assert_eq!(h.cols("t")[4..], v(&["w Int", "x Int", "y Int", "z Int", "v Int"])[..]);
}

#[test]
fn alter_partition_maintenance_changes_nothing() {
    let mut h = base();
    let before = h.schema("t");
    for sql in [
        "ALTER TABLE t ADD PARTITION (PARTITION p3 VALUES LESS THAN (2000))",
        "ALTER TABLE t DROP PARTITION p0, p1",
        "ALTER TABLE t TRUNCATE PARTITION p0",
        "ALTER TABLE t TRUNCATE PARTITION ALL",
        "ALTER TABLE t COALESCE PARTITION 2",
        "ALTER TABLE t REORGANIZE PARTITION p0 INTO (PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN (20))",
        "ALTER TABLE t EXCHANGE PARTITION p0 WITH TABLE t2 WITHOUT VALIDATION",
        "ALTER TABLE t ANALYZE PARTITION p0",
        "ALTER TABLE t REBUILD PARTITION p0, p1",
        "ALTER TABLE t REMOVE PARTITIONING",
        "ALTER TABLE t PARTITION BY HASH (id) PARTITIONS 4",
        "ALTER TABLE t DISCARD PARTITION p0 TABLESPACE",
    ] {
        h.run(sql);
        assert_eq!(h.schema("t"), before, "{sql}");
    }
}

#[test]
fn alter_json_check_added_and_dropped_mariadb() {
    let mut h = H::new();
    h.run("CREATE TABLE t (doc LONGTEXT)");
    h.run("ALTER TABLE t ADD CONSTRAINT CHECK (json_valid(`doc`))");
    assert_eq!(h.cols("t"), v(&["doc Json"]));
    h.run("ALTER TABLE t DROP CONSTRAINT doc");
    assert_eq!(h.cols("t"), v(&["doc LongText"]));
    h.run("ALTER TABLE t MODIFY doc JSON");
    assert_eq!(h.cols("t"), v(&["doc Json"]));
}

#[test]
fn alter_system_versioning_is_unknown() {
    let mut h = base();
    h.run("ALTER TABLE t ADD SYSTEM VERSIONING");
    assert_eq!(h.state("t"), Some(State::Unknown));
}

#[test]
fn alter_unknown_clause_makes_the_table_unknown() {
    let mut h = base();
    let e = effects("ALTER TABLE t FROBNICATE COLUMN a");
    assert!(matches!(&e[..], [Effect::Unknown { tables, .. }] if *tables == vec![t("t")]));
    h.run("ALTER TABLE t FROBNICATE COLUMN a");
    assert_eq!(h.state("t"), Some(State::Unknown));
    // A later ALTER cannot make the shape known again.
    h.run("ALTER TABLE t ADD z INT");
    assert_eq!(h.state("t"), Some(State::Unknown));
}

#[test]
fn alter_that_contradicts_the_history_makes_the_table_unknown() {
    for sql in [
        "ALTER TABLE t ADD COLUMN a INT",
        "ALTER TABLE t DROP COLUMN nope",
        "ALTER TABLE t MODIFY nope INT",
        "ALTER TABLE t CHANGE nope x INT",
        "ALTER TABLE t RENAME COLUMN nope TO x",
        "ALTER TABLE t RENAME COLUMN a TO b",
        "ALTER TABLE t ADD x INT AFTER nope",
        "ALTER TABLE t ADD UNIQUE KEY (nope)",
    ] {
        let mut h = base();
        h.run(sql);
        assert_eq!(h.state("t"), Some(State::Unknown), "{sql}");
        let entry = h.h.at(DB, "t", Pos { epoch: 0, file_index: 9, offset: 0 }).unwrap();
        assert!(entry.note.is_some(), "the reason is kept: {sql}");
        assert!(entry.describe().contains(sql), "{}", entry.describe());
    }
}

#[test]
fn alter_of_a_table_never_seen_is_left_to_the_server() {
    let mut h = H::new();
    h.run("ALTER TABLE ghost ADD x INT");
    assert_eq!(h.state("ghost"), None);
}

// ------------------------------------------------------------------------------------------
// Renames, drops, truncates, databases

#[test]
fn alter_table_rename_to() {
    let mut h = base();
    h.run("ALTER TABLE t RENAME TO t9");
    assert_eq!(h.state("t"), Some(State::Dropped));
    assert_eq!(h.schema("t9").table, "t9");
    h.run("ALTER TABLE t9 ADD z INT, RENAME AS other.t9");
    assert_eq!(h.state("t9"), Some(State::Dropped));
    let moved = h.h.at("other", "t9", Pos { epoch: 1, file_index: 0, offset: 0 }).unwrap();
    let State::Known(d) = moved.state else { panic!("{moved:?}") };
    assert_eq!((d.schema.db.as_str(), d.schema.columns.len()), ("other", 5));
}

#[test]
fn rename_table_several_at_once() {
    let mut h = H::new();
    h.run("CREATE TABLE a (x INT)");
    h.run("CREATE TABLE b (y INT)");
    h.run("RENAME TABLE a TO a2, shop.b TO crm.b2");
    assert_eq!(h.state("a"), Some(State::Dropped));
    assert_eq!(h.cols("a2"), v(&["x Int"]));
    assert!(h.h.knows("crm", "b2"));
}

#[test]
fn rename_table_swap_through_a_temporary_name() {
    let mut h = H::new();
    h.run("CREATE TABLE a (x INT)");
    h.run("CREATE TABLE b (y INT, z INT)");
    h.run("RENAME TABLE a TO tmp, b TO a, tmp TO b");
    assert_eq!(h.cols("a"), v(&["y Int", "z Int"]));
    assert_eq!(h.cols("b"), v(&["x Int"]));
    assert_eq!(h.state("tmp"), Some(State::Dropped));
}

#[test]
fn rename_table_of_an_unseen_table_is_read_from_the_server() {
    let mut h = H::new();
    h.run("RENAME TABLE outside TO inside");
    assert_eq!(h.state("inside"), Some(State::Unseeded));
    h.run("RENAME TABLE IF EXISTS inside WAIT 2 TO inside2");
    assert_eq!(h.state("inside2"), Some(State::Unseeded));
}

#[test]
fn drop_table_several_with_server_comment() {
    let mut h = H::new();
    h.run("CREATE TABLE a (x INT)");
    h.run("CREATE TABLE b (x INT)");
    h.run("DROP TABLE IF EXISTS `a`,`b`,`never` /* generated by server */");
    assert_eq!((h.state("a"), h.state("b"), h.state("never")), (Some(State::Dropped), Some(State::Dropped), Some(State::Dropped)));
    h.run("CREATE TABLE a (y BIGINT)");
    assert_eq!(h.cols("a"), v(&["y BigInt"]));
}

#[test]
fn truncate_keeps_the_shape() {
    let mut h = base();
    let before = h.schema("t");
    assert_eq!(effects("TRUNCATE TABLE t"), vec![Effect::Truncate { table: t("t") }]);
    h.run("TRUNCATE t");
    assert_eq!(h.schema("t"), before);
}

#[test]
fn drop_database_drops_its_tables() {
    let mut h = H::new();
    h.run("CREATE DATABASE IF NOT EXISTS shop DEFAULT CHARACTER SET = utf8mb4");
    h.run("CREATE TABLE a (x INT)");
    h.run("CREATE TABLE crm.c (x INT)");
    h.run("DROP DATABASE IF EXISTS shop");
    assert_eq!(h.state("a"), Some(State::Dropped));
    assert!(matches!(h.h.at("crm", "c", Pos { epoch: 9, file_index: 0, offset: 0 }).unwrap().state, State::Known(_)));
    assert_eq!(h.h.db_charset("shop"), None);
}

#[test]
fn database_statements_parse() {
    assert_eq!(
        effects("CREATE SCHEMA d DEFAULT CHARSET = latin1 COLLATE latin1_bin"),
        vec![Effect::CreateDatabase { db: "d".into(), charset: Some("latin1".into()), collation: Some("latin1_bin".into()) }]
    );
    assert_eq!(effects("DROP SCHEMA IF EXISTS d"), vec![Effect::DropDatabase { db: "d".into() }]);
    assert_eq!(
        effects("ALTER DATABASE CHARACTER SET utf8mb4"),
        vec![Effect::AlterDatabase { db: DB.into(), charset: Some("utf8mb4".into()), collation: None }]
    );
}

#[test]
fn statements_that_change_no_table() {
    for sql in [
        "CREATE VIEW v AS SELECT * FROM t",
        "CREATE OR REPLACE ALGORITHM=MERGE DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW v AS SELECT 1",
        "DROP VIEW IF EXISTS v",
        "CREATE DEFINER=`root`@`%` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1",
        "DROP TRIGGER tr",
        "CREATE PROCEDURE p() BEGIN SELECT 1; END",
        "DROP PROCEDURE IF EXISTS p",
        "CREATE FUNCTION f() RETURNS INT RETURN 1",
        "CREATE USER 'u'@'%' IDENTIFIED BY 'x'",
        "DROP USER 'u'@'%'",
        "RENAME USER 'a'@'%' TO 'b'@'%'",
        "ALTER USER 'u'@'%' IDENTIFIED BY 'y'",
        "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t",
        "ALTER EVENT e DISABLE",
        "CREATE ROLE r",
        "GRANT SELECT ON *.* TO 'u'@'%'",
        "INSERT INTO t VALUES (1)",
        "SAVEPOINT s",
    ] {
        assert!(effects(sql).is_empty(), "{sql}: {:?}", effects(sql));
    }
}

// ------------------------------------------------------------------------------------------
// Online schema change tools

#[test]
fn gh_ost_flow_keeps_the_original_table_correct() {
    let mut h = H::new();
    h.run("CREATE TABLE orders (id BIGINT PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(10))");
    // gh-ost: changelog and ghost tables, the ALTER on the ghost, then the atomic swap.
    h.run("create /* gh-ost */ table `shop`.`_orders_ghc` (\n\t\t\tid bigint auto_increment,\n\t\t\tlast_update timestamp not null DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,\n\t\t\thint varchar(64) charset ascii not null,\n\t\t\tvalue varchar(4096) charset ascii not null,\n\t\t\tprimary key(id),\n\t\t\tunique key hint_uidx(hint)\n\t\t) auto_increment=256 comment='gh-ost changelog'");
    h.run("create /* gh-ost */ table `shop`.`_orders_gho` like `shop`.`orders`");
    h.run("alter /* gh-ost */ table `shop`.`_orders_gho` add column currency char(3) not null default 'EUR' after amount, drop column note");
    assert_eq!(h.cols("orders"), v(&["id BigInt", "amount Decimal", "note VarChar"]), "the original is untouched while the copy runs");
    h.run("rename /* gh-ost */ table `shop`.`orders` to `shop`.`_orders_del`, `shop`.`_orders_gho` to `shop`.`orders`");
    assert_eq!(h.cols("orders"), v(&["id BigInt", "amount Decimal", "currency Char"]));
    assert_eq!(h.keys("orders"), v(&["PRIMARY(id)"]));
    assert_eq!(h.schema("orders").table, "orders");
    h.run("drop /* gh-ost */ table if exists `shop`.`_orders_del`");
    h.run("drop /* gh-ost */ table if exists `shop`.`_orders_ghc`");
    assert_eq!(h.state("_orders_del"), Some(State::Dropped));
}

#[test]
fn pt_online_schema_change_flow_keeps_the_original_table_correct() {
    let mut h = H::new();
    h.run("CREATE TABLE `orders` (`id` int NOT NULL, `a` varchar(5) DEFAULT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB DEFAULT CHARSET=latin1");
    h.run("CREATE TABLE `shop`.`_orders_new` (\n  `id` int NOT NULL,\n  `a` varchar(5) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=latin1");
    h.run("ALTER TABLE `shop`.`_orders_new` ADD COLUMN b INT FIRST");
    h.run("RENAME TABLE `shop`.`orders` TO `shop`.`_orders_old`, `shop`.`_orders_new` TO `shop`.`orders`");
    h.run("DROP TABLE IF EXISTS `shop`.`_orders_old`");
    assert_eq!(h.cols("orders"), v(&["b Int", "id Int", "a VarChar"]));
    assert_eq!(h.charsets("orders")[2].as_deref(), Some("latin1"));
}

// ------------------------------------------------------------------------------------------
// The history along positions

#[test]
fn versions_are_looked_up_by_position() {
    let mut h = H::new();
    let p1 = h.run("CREATE TABLE t (a INT)");
    let p2 = h.run("ALTER TABLE t ADD b INT");
    let p3 = h.run("ALTER TABLE t RENAME COLUMN a TO z");
    let cols_at = |p: Pos| match h.h.at(DB, "t", p).map(|e| e.state) {
        Some(State::Known(d)) => d.schema.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert!(h.h.at(DB, "t", Pos { offset: p1.offset - 1, ..p1 }).is_none(), "nothing before the CREATE");
    assert_eq!(cols_at(p1), v(&["a"]));
    assert_eq!(cols_at(Pos { offset: p2.offset - 1, ..p2 }), v(&["a"]), "an event before the ALTER");
    assert_eq!(cols_at(p2), v(&["a", "b"]));
    assert_eq!(cols_at(p3), v(&["z", "b"]));
    assert_eq!(cols_at(Pos { epoch: 0, file_index: 2, offset: 4 }), v(&["z", "b"]), "a later binlog file");
    assert_eq!(cols_at(Pos { epoch: 1, file_index: 0, offset: 4 }), v(&["z", "b"]), "a later epoch");
}

#[test]
fn replaying_ddl_reproduces_the_same_history() {
    let mut h = H::new();
    let stmts = ["CREATE TABLE t (a INT, b INT)", "ALTER TABLE t DROP a", "ALTER TABLE t ADD a BIGINT FIRST", "RENAME TABLE t TO u", "CREATE TABLE t (q INT)"];
    let positions: Vec<Pos> = stmts.iter().map(|s| h.run(s)).collect();
    let snapshot = |h: &H| (h.h.versions(DB, "t"), h.h.versions(DB, "u"));
    let first = snapshot(&h);
    // A restart replays from before the first ALTER: the same statements at the same positions.
    for (s, p) in stmts.iter().zip(&positions).skip(1) {
        h.h.apply(&effects(s), *p, None, s).unwrap();
    }
    assert_eq!(snapshot(&h), first);
}

#[test]
fn history_persists_across_reopen() {
    let dir = std::env::temp_dir().join(format!("sluice-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("schema_history.redb");
    let ctx = ServerContext::for_version(Flavor::MariaDb, "10.11.6-MariaDB", "utf8mb4", 0);
    let h = SchemaHistory::open(&path).unwrap();
    h.set_context(ctx.clone());
    let p = |offset| Pos { epoch: 0, file_index: 3, offset };
    let def = TableDef {
        schema: Arc::new(TableSchema { db: DB.into(), table: "t".into(), columns: vec![], keys: vec![] }),
        charset: Some("latin1".into()),
    };
    let mut seeded = def.clone();
    Arc::make_mut(&mut seeded.schema).columns.push(sluice_event::ColumnSchema::new("id", DataType::Int));
    h.record(seeded, p(10), Origin::Seed).unwrap();
    for (i, sql) in ["ALTER TABLE t ADD e ENUM('a','b') CHARACTER SET latin1 AFTER id, ADD UNIQUE KEY ue (e)", "CREATE DATABASE crm CHARACTER SET latin1", "ALTER TABLE t FROBNICATE"]
        .iter()
        .enumerate()
    {
        h.apply(&effects(sql), p(100 + i as u64), Some("0-1-5"), sql).unwrap();
    }
    h.new_epoch().unwrap();
    let before = h.versions(DB, "t");
    drop(h);
    let h = SchemaHistory::open(&path).unwrap();
    h.set_context(ctx);
    assert_eq!(h.versions(DB, "t"), before);
    assert_eq!(before.len(), 3);
    assert_eq!(before[0].origin, Origin::Seed);
    assert_eq!(before[1].gtid.as_deref(), Some("0-1-5"));
    assert_eq!(before[2].state, State::Unknown);
    assert_eq!(h.db_charset("crm").as_deref(), Some("latin1"));
    assert_eq!(h.epoch(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lower_case_table_names_compare_case_insensitively() {
    let mut h = H::with(ServerContext::for_version(Flavor::MySql, "8.0.36", "utf8mb4", 1));
    h.run("CREATE TABLE Orders (a INT)");
    assert!(h.h.knows("shop", "orders") && h.h.knows("SHOP", "ORDERS"));
}

// ------------------------------------------------------------------------------------------
// The parsers themselves

#[test]
fn both_parsers_agree_and_sqlparser_is_used_where_it_can() {
    let (e, via) = ddl::parse_via("ALTER TABLE t ADD COLUMN x INT AFTER a, DROP COLUMN b", DB);
    assert_eq!(via, Via::SqlParser);
    assert_eq!(
        e,
        vec![Effect::Alter {
            table: t("t"),
            ops: vec![
                AlterOp::AddColumn { column: ColumnDef { args: vec![], ..ColumnDef::new("x", DataType::Int, "int") }, position: Position::After("a".into()), if_not_exists: false },
                AlterOp::DropColumn { name: "b".into(), if_exists: false },
            ]
        }]
    );
    let (_, via) = ddl::parse_via("ALTER TABLE t ADD COLUMN IF NOT EXISTS x INT", DB);
    assert_eq!(via, Via::Fallback, "sqlparser rejects MariaDB's IF NOT EXISTS");
    let (_, via) = ddl::parse_via("/*!40000 ALTER TABLE t DISABLE KEYS */", DB);
    assert_eq!(via, Via::Fallback, "executable comments are code: only the fallback reads them");
}

#[test]
fn key_definitions_read_the_same_both_ways() {
    let e = effects("ALTER TABLE t ADD UNIQUE KEY uk (a(10) DESC, b), ADD PRIMARY KEY (id)");
    assert_eq!(
        e,
        vec![Effect::Alter {
            table: t("t"),
            ops: vec![
                AlterOp::AddKey(KeyDef { name: Some("uk".into()), primary: false, columns: v(&["a", "b"]) }),
                AlterOp::AddKey(KeyDef { name: None, primary: true, columns: v(&["id"]) }),
            ]
        }]
    );
}

#[test]
fn truncated_statements_never_panic() {
    let corpus = [
        "CREATE TABLE `_t_new` (`id` bigint(20) NOT NULL, `doc` longtext CHARACTER SET utf8mb4 DEFAULT NULL CHECK (json_valid(`doc`)), PRIMARY KEY (`id`)) ENGINE=InnoDB /*!50100 PARTITION BY HASH (id) */",
        "ALTER TABLE t ADD COLUMN (p INT, q VARCHAR(3) DEFAULT 'a''b', UNIQUE KEY uq (q)), CHANGE b bee ENUM('x','y') FIRST, CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        "RENAME TABLE a TO b, `c`.`d` TO e",
        "DROP TABLE IF EXISTS `a`,`b` /* generated by server */",
        "CREATE UNIQUE INDEX i ON t (a(10) DESC, (b + 1))",
    ];
    for sql in corpus {
        for (i, _) in sql.char_indices() {
            let _ = ddl::parse(&sql[..i], DB);
            let _ = ddl::parse_fallback_only(&sql[..i], DB);
            let mut h = H::new();
            h.run("CREATE TABLE t (a INT, b INT)");
            let _ = h.h.apply(&ddl::parse(&sql[..i], DB), Pos { epoch: 0, file_index: 2, offset: i as u64 }, None, &sql[..i]);
        }
    }
}

#[test]
fn garbage_is_never_a_shape() {
    for sql in ["CREATE TABLE", "CREATE TABLE t (", "ALTER TABLE", "ALTER TABLE t ADD", "RENAME TABLE a", "CREATE TABLE t ()"] {
        for e in effects(sql) {
            assert!(matches!(e, Effect::Unknown { .. }), "{sql}: {e:?}");
        }
    }
}
