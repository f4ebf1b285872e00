//! One DDL statement → the effects it has on table shapes, as a small IR the schema history
//! applies ([`crate::history`]).
//!
//! Two parsers stand behind [`parse`]: `sqlparser` (MySQL dialect) gives the statement's
//! structure where it understands it, and a tolerant hand-written parser covers what `sqlparser`
//! rejects (MariaDB's `IF [NOT] EXISTS` on columns, `CONVERT TO CHARACTER SET`, table options,
//! partition maintenance, executable comments …). Column definitions, key definitions and table
//! options are always read by the same fragment parsers here, so both paths agree on what a
//! column *is*; the corpus tests check that they agree on every statement both accept.
//!
//! Nothing here guesses: a statement (or an ALTER clause) that is not understood becomes
//! [`Effect::Unknown`] naming the tables it mentions, and the history then refuses to decode
//! those tables by its old shape.

use sluice_event::DataType;
use sqlparser::{ast, dialect::MySqlDialect, parser::Parser};

/// A table with its database resolved (from the statement, else the statement's default db).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef {
    pub db: String,
    pub table: String,
}

impl TableRef {
    pub fn new(db: impl Into<String>, table: impl Into<String>) -> Self {
        Self { db: db.into(), table: table.into() }
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.db, self.table)
    }
}

/// What one DDL statement does to table shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `CREATE [OR REPLACE] TABLE t (…)`.
    CreateTable { table: TableRef, if_not_exists: bool, def: CreateDef },
    /// `CREATE TABLE t LIKE src`.
    CreateLike { table: TableRef, like: TableRef, if_not_exists: bool },
    /// A table created without spelling out its columns (`CREATE TABLE … SELECT`, `CREATE
    /// SEQUENCE`, system-versioned tables): it exists, its shape must be read from the server.
    CreateOpaque { table: TableRef, if_not_exists: bool },
    /// `ALTER TABLE`, `CREATE [UNIQUE] INDEX`, `DROP INDEX`: clauses in statement order.
    Alter { table: TableRef, ops: Vec<AlterOp> },
    /// `RENAME TABLE a TO b, c TO d` (applied in order, so swaps through a temporary name work).
    Rename { renames: Vec<(TableRef, TableRef)> },
    /// `DROP TABLE a, b` (not temporary tables).
    Drop { tables: Vec<TableRef> },
    /// `TRUNCATE [TABLE] t`: the shape stays.
    Truncate { table: TableRef },
    CreateDatabase { db: String, charset: Option<String>, collation: Option<String> },
    AlterDatabase { db: String, charset: Option<String>, collation: Option<String> },
    DropDatabase { db: String },
    /// A statement that may change these tables in a way sluice cannot follow.
    Unknown { tables: Vec<TableRef>, reason: String },
}

impl Effect {
    /// Every table the effect names (old and new names for renames).
    pub fn tables(&self) -> Vec<&TableRef> {
        match self {
            Effect::CreateTable { table, .. }
            | Effect::CreateOpaque { table, .. }
            | Effect::Truncate { table } => vec![table],
            Effect::CreateLike { table, like, .. } => vec![table, like],
            Effect::Alter { table, ops } => {
                let mut v = vec![table];
                for op in ops {
                    if let AlterOp::RenameTable { to } = op {
                        v.push(to);
                    }
                }
                v
            }
            Effect::Rename { renames } => renames.iter().flat_map(|(a, b)| [a, b]).collect(),
            Effect::Drop { tables } | Effect::Unknown { tables, .. } => tables.iter().collect(),
            Effect::CreateDatabase { .. } | Effect::AlterDatabase { .. } | Effect::DropDatabase { .. } => vec![],
        }
    }
}

/// The body of a `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateDef {
    pub columns: Vec<ColumnDef>,
    /// Primary and unique keys (other indexes do not matter to sluice).
    pub keys: Vec<KeyDef>,
    /// Columns named by a table-level ``CHECK (json_valid(`c`))`` (MariaDB's JSON).
    pub json_checks: Vec<String>,
    /// Table default character set / collation (`DEFAULT CHARSET=…`, `COLLATE=…`).
    pub charset: Option<String>,
    pub collation: Option<String>,
}

/// One column definition, as written (character set resolution happens in the history, which
/// knows the table's and the database's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub data_type: DataType,
    /// The type word as written, lower case (`varchar`, `inet6`, `mediumint`, …).
    pub type_name: String,
    /// Numbers inside the type's parentheses (`decimal(10,2)` → [10, 2]).
    pub args: Vec<u64>,
    /// ENUM / SET labels.
    pub labels: Vec<String>,
    pub unsigned: bool,
    pub zerofill: bool,
    /// `NOT NULL` given (or implied by PRIMARY KEY / SERIAL).
    pub not_null: bool,
    /// Explicit `CHARACTER SET` (lower case; `default` means the table's).
    pub charset: Option<String>,
    pub collation: Option<String>,
    /// NCHAR / NATIONAL VARCHAR (utf8mb3).
    pub national: bool,
    /// The `BINARY` attribute of a character type (a binary collation, not the binary charset).
    pub binary_collation: bool,
    pub primary_key: bool,
    pub unique_key: bool,
    /// An inline ``CHECK (json_valid(`this column`))``.
    pub json_check: bool,
}

impl ColumnDef {
    /// A column of the given type with nothing else set.
    pub fn new(name: &str, data_type: DataType, type_name: &str) -> Self {
        Self {
            name: name.into(),
            data_type,
            type_name: type_name.into(),
            args: Vec::new(),
            labels: Vec::new(),
            unsigned: false,
            zerofill: false,
            not_null: false,
            charset: None,
            collation: None,
            national: false,
            binary_collation: false,
            primary_key: false,
            unique_key: false,
            json_check: false,
        }
    }
}

/// A primary or unique key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDef {
    /// The index name given (for UNIQUE: the index name, else the constraint symbol); `None`
    /// lets the server name it after its first column.
    pub name: Option<String>,
    pub primary: bool,
    /// Column names in key order (functional key parts are not columns and are left out).
    pub columns: Vec<String>,
}

/// Where an added or moved column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    Last,
    First,
    After(String),
}

/// One clause of an ALTER TABLE that matters to the table's shape or keys.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterOp {
    AddColumn { column: ColumnDef, position: Position, if_not_exists: bool },
    DropColumn { name: String, if_exists: bool },
    /// `CHANGE old new …` and `MODIFY name …` (then `old` is the column's own name).
    ChangeColumn { old: String, column: ColumnDef, position: Position, if_exists: bool, modify: bool },
    RenameColumn { old: String, new: String },
    AddKey(KeyDef),
    DropKey { name: String, if_exists: bool },
    DropPrimaryKey,
    RenameKey { old: String, new: String },
    /// ``ADD CHECK (json_valid(`c`))``.
    JsonCheck { column: String },
    /// `DROP CONSTRAINT name` / `DROP CHECK name`: a unique key or a check of that name.
    DropConstraint { name: String },
    RenameTable { to: TableRef },
    /// `[DEFAULT] CHARACTER SET x [COLLATE y]`: the default for columns added later.
    DefaultCharset { charset: Option<String>, collation: Option<String> },
    /// `CONVERT TO CHARACTER SET x [COLLATE y]`: every character column converted.
    ConvertCharset { charset: String, collation: Option<String> },
}

/// Which parser produced a result (for tests and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    SqlParser,
    Fallback,
}

/// Whether `sql` is a DDL statement at all (its first keyword).
pub fn is_ddl(sql: &str) -> bool {
    let toks = tokenize(sql);
    matches!(toks.first(), Some(Tok::Word(w)) if ["ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE"].iter().any(|k| w.eq_ignore_ascii_case(k)))
}

/// Whether a DDL statement opens a transaction its rows and XID complete (MySQL's atomic
/// `CREATE TABLE … SELECT`, logged as `CREATE TABLE … START TRANSACTION`).
pub fn opens_transaction(sql: &str) -> bool {
    let toks = tokenize(sql);
    let toks: Vec<&Tok> = toks.iter().filter(|t| **t != Tok::Punct(';')).collect();
    toks.len() >= 2 && word_is(Some(toks[toks.len() - 2]), "START") && word_is(Some(toks[toks.len() - 1]), "TRANSACTION")
}

/// The effects of one statement; `default_db` is the QUERY event's current database. Statements
/// that change no table (views, routines, users, temporary tables, DML) give an empty list.
pub fn parse(sql: &str, default_db: &str) -> Vec<Effect> {
    parse_via(sql, default_db).0
}

/// [`parse`], telling which parser produced the result.
pub fn parse_via(sql: &str, default_db: &str) -> (Vec<Effect>, Via) {
    let toks = tokenize(sql);
    if toks.is_empty() {
        return (Vec::new(), Via::Fallback);
    }
    // sqlparser reads comments as comments, including MySQL's executable /*! … */ ones that
    // the server does run; only statements without them go to sqlparser.
    if !sql.contains("/*!") && !sql.contains("/*M!") {
        if let Some(effects) = parse_with_sqlparser(sql, default_db) {
            return (effects, Via::SqlParser);
        }
    }
    (parse_fallback(&toks, default_db), Via::Fallback)
}

/// The tolerant parser alone (exposed for the corpus parity tests).
pub fn parse_fallback_only(sql: &str, default_db: &str) -> Vec<Effect> {
    parse_fallback(&tokenize(sql), default_db)
}

/// [`parse_with_sqlparser`] alone: `None` where sqlparser rejects the statement or its AST holds
/// something the conversion does not handle.
pub fn parse_sqlparser_only(sql: &str, default_db: &str) -> Option<Vec<Effect>> {
    parse_with_sqlparser(sql, default_db)
}

// ------------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// Unquoted word (identifier or keyword), as written.
    Word(String),
    /// `backquoted` identifier, unescaped.
    Quoted(String),
    /// 'string' or "string", unescaped.
    Str(String),
    Num(String),
    Punct(char),
}

pub(crate) fn tokenize(sql: &str) -> Vec<Tok> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let n = chars.len();
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii();
    while i < n {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' || (c == '-' && i + 1 < n && chars[i + 1] == '-' && (i + 2 >= n || chars[i + 2].is_whitespace())) {
            while i < n && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && i + 1 < n && chars[i + 1] == '*' {
            // Executable comments (/*!50100 … */, MariaDB /*M!100100 … */) are code.
            let mut j = i + 2;
            if j < n && chars[j] == 'M' && j + 1 < n && chars[j + 1] == '!' {
                j += 1;
            }
            if j < n && chars[j] == '!' {
                j += 1;
                while j < n && chars[j].is_ascii_digit() {
                    j += 1;
                }
                i = j;
            } else {
                i += 2;
                while i < n && !(chars[i] == '*' && i + 1 < n && chars[i + 1] == '/') {
                    i += 1;
                }
                i = (i + 2).min(n);
            }
        } else if c == '*' && i + 1 < n && chars[i + 1] == '/' {
            i += 2; // the end of an executable comment
        } else if c == '`' {
            let mut s = String::new();
            i += 1;
            while i < n {
                if chars[i] == '`' {
                    if i + 1 < n && chars[i + 1] == '`' {
                        s.push('`');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                s.push(chars[i]);
                i += 1;
            }
            out.push(Tok::Quoted(s));
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            while i < n {
                let d = chars[i];
                if d == c {
                    if i + 1 < n && chars[i + 1] == c {
                        s.push(c);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                if d == '\\' && i + 1 < n {
                    let e = chars[i + 1];
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        'b' => '\u{8}',
                        'Z' => '\u{1a}',
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                s.push(d);
                i += 1;
            }
            out.push(Tok::Str(s));
        } else if is_word(c) {
            let start = i;
            while i < n && is_word(chars[i]) {
                i += 1;
            }
            let mut w: String = chars[start..i].iter().collect();
            if w.chars().all(|c| c.is_ascii_digit()) {
                if i + 1 < n && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                    i += 1;
                    w.push('.');
                    while i < n && chars[i].is_ascii_digit() {
                        w.push(chars[i]);
                        i += 1;
                    }
                }
                out.push(Tok::Num(w));
            } else {
                out.push(Tok::Word(w));
            }
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

fn word_is(t: Option<&Tok>, k: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
}

/// A cursor over tokens.
struct Cur<'a> {
    t: &'a [Tok],
    i: usize,
}

impl<'a> Cur<'a> {
    fn new(t: &'a [Tok]) -> Self {
        Self { t, i: 0 }
    }
    fn peek(&self) -> Option<&'a Tok> {
        self.t.get(self.i)
    }
    fn peek_at(&self, k: usize) -> Option<&'a Tok> {
        self.t.get(self.i + k)
    }
    fn next(&mut self) -> Option<&'a Tok> {
        let t = self.t.get(self.i);
        self.i += 1;
        t
    }
    fn done(&self) -> bool {
        self.i >= self.t.len() || self.t[self.i..].iter().all(|t| *t == Tok::Punct(';'))
    }
    fn kw(&self, k: &str) -> bool {
        word_is(self.peek(), k)
    }
    fn eat(&mut self, k: &str) -> bool {
        if self.kw(k) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// Eats the keywords in sequence, or nothing.
    fn eat_seq(&mut self, ks: &[&str]) -> bool {
        if ks.iter().enumerate().all(|(j, k)| word_is(self.peek_at(j), k)) {
            self.i += ks.len();
            true
        } else {
            false
        }
    }
    fn punct(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }
    fn eat_punct(&mut self, c: char) -> bool {
        if self.punct(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// An identifier: a word, a `quoted` name, or (ANSI_QUOTES) a "string".
    fn ident(&mut self) -> Option<String> {
        match self.peek()? {
            Tok::Word(w) => {
                self.i += 1;
                Some(w.clone())
            }
            Tok::Quoted(s) | Tok::Str(s) => {
                self.i += 1;
                Some(s.clone())
            }
            Tok::Num(s) => {
                self.i += 1;
                Some(s.clone())
            }
            Tok::Punct(_) => None,
        }
    }
    /// `[db.]table`.
    fn table(&mut self, default_db: &str) -> Option<TableRef> {
        let first = self.ident()?;
        if self.punct('.') {
            self.i += 1;
            let second = self.ident()?;
            Some(TableRef::new(first, second))
        } else {
            Some(TableRef::new(default_db, first))
        }
    }
    /// Skips a balanced parenthesized group if one starts here; returns its inner tokens.
    fn group(&mut self) -> Option<&'a [Tok]> {
        if !self.punct('(') {
            return None;
        }
        let start = self.i + 1;
        let mut depth = 0usize;
        while let Some(t) = self.next() {
            match t {
                Tok::Punct('(') => depth += 1,
                Tok::Punct(')') => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(&self.t[start..self.i - 1]);
                    }
                }
                _ => {}
            }
        }
        Some(&self.t[start..])
    }
    /// `[=] value`: the value word or string, lower case.
    fn option_value(&mut self) -> Option<String> {
        self.eat_punct('=');
        self.ident().map(|s| s.to_ascii_lowercase())
    }
    fn rest(&self) -> &'a [Tok] {
        &self.t[self.i.min(self.t.len())..]
    }
}

/// Splits tokens at top-level commas.
fn split_commas(t: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, tok) in t.iter().enumerate() {
        match tok {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            Tok::Punct(',') if depth == 0 => {
                out.push(&t[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&t[start..]);
    out.retain(|c| !c.is_empty());
    out
}

// ------------------------------------------------------------------------------------------
// The tolerant parser

fn parse_fallback(toks: &[Tok], db: &str) -> Vec<Effect> {
    let mut c = Cur::new(toks);
    if c.eat("CREATE") {
        create(&mut c, db)
    } else if c.eat("ALTER") {
        alter(&mut c, db)
    } else if c.eat("DROP") {
        drop(&mut c, db)
    } else if c.eat("RENAME") {
        rename(&mut c, db)
    } else if c.eat("TRUNCATE") {
        c.eat("TABLE");
        match c.table(db) {
            Some(table) => vec![Effect::Truncate { table }],
            None => vec![],
        }
    } else {
        vec![]
    }
}

/// The object word after CREATE/ALTER/DROP modifiers, with the cursor left after it.
fn skip_modifiers(c: &mut Cur) {
    loop {
        if c.eat_seq(&["OR", "REPLACE"]) || c.eat("ONLINE") || c.eat("OFFLINE") || c.eat("IGNORE") || c.eat("AGGREGATE") {
            continue;
        }
        if c.kw("DEFINER") {
            c.next();
            c.eat_punct('=');
            // user@host, CURRENT_USER[()]
            c.ident();
            c.group();
            if c.punct('@') {
                c.next();
                c.ident();
            }
            continue;
        }
        if c.kw("ALGORITHM") && matches!(c.peek_at(1), Some(Tok::Punct('='))) {
            c.i += 3;
            continue;
        }
        if c.eat_seq(&["SQL", "SECURITY"]) {
            c.next();
            continue;
        }
        break;
    }
}

fn create(c: &mut Cur, db: &str) -> Vec<Effect> {
    let replace = c.kw("OR") && word_is(c.peek_at(1), "REPLACE");
    skip_modifiers(c);
    let temporary = c.eat("TEMPORARY") | c.eat_seq(&["GLOBAL", "TEMPORARY"]);
    if c.eat("TABLE") {
        if temporary {
            return vec![];
        }
        let if_not_exists = c.eat_seq(&["IF", "NOT", "EXISTS"]);
        let Some(table) = c.table(db) else {
            return vec![unknown_no_table("CREATE TABLE without a readable name")];
        };
        let _ = replace;
        return create_table(c, db, table, if_not_exists);
    }
    if c.eat("DATABASE") || c.eat("SCHEMA") {
        c.eat_seq(&["IF", "NOT", "EXISTS"]);
        let Some(name) = c.ident() else { return vec![] };
        let (charset, collation) = charset_options(c.rest());
        return vec![Effect::CreateDatabase { db: name, charset, collation }];
    }
    if c.eat("SEQUENCE") {
        let if_not_exists = c.eat_seq(&["IF", "NOT", "EXISTS"]);
        return match c.table(db) {
            Some(table) if !temporary => vec![Effect::CreateOpaque { table, if_not_exists }],
            _ => vec![],
        };
    }
    // [UNIQUE|FULLTEXT|SPATIAL] INDEX name [USING x] ON t (parts)
    let unique = c.eat("UNIQUE");
    c.eat("FULLTEXT");
    c.eat("SPATIAL");
    if c.eat("INDEX") {
        c.eat_seq(&["IF", "NOT", "EXISTS"]);
        let name = c.ident();
        while !c.done() && !c.kw("ON") {
            c.next();
        }
        if !c.eat("ON") {
            return vec![];
        }
        let Some(table) = c.table(db) else { return vec![] };
        if !unique {
            return vec![];
        }
        let columns = c.group().map(key_parts).unwrap_or_default();
        return vec![Effect::Alter { table, ops: vec![AlterOp::AddKey(KeyDef { name, primary: false, columns })] }];
    }
    vec![]
}

fn unknown_no_table(reason: &str) -> Effect {
    Effect::Unknown { tables: vec![], reason: reason.into() }
}

fn create_table(c: &mut Cur, db: &str, table: TableRef, if_not_exists: bool) -> Vec<Effect> {
    if c.eat("LIKE") {
        return match c.table(db) {
            Some(like) => vec![Effect::CreateLike { table, like, if_not_exists }],
            None => vec![Effect::Unknown { tables: vec![table], reason: "CREATE TABLE … LIKE without a source".into() }],
        };
    }
    let Some(body) = c.group() else {
        // CREATE TABLE t [options] [AS] SELECT …
        return vec![Effect::CreateOpaque { table, if_not_exists }];
    };
    if word_is(body.first(), "LIKE") {
        let mut b = Cur::new(&body[1..]);
        return match b.table(db) {
            Some(like) => vec![Effect::CreateLike { table, like, if_not_exists }],
            None => vec![Effect::Unknown { tables: vec![table], reason: "CREATE TABLE (LIKE …) without a source".into() }],
        };
    }
    if word_is(body.first(), "SELECT") || word_is(body.first(), "WITH") {
        return vec![Effect::CreateOpaque { table, if_not_exists }];
    }
    let rest = c.rest();
    // Columns come from a query, or the server adds hidden ones: the shape is the server's.
    let opaque = rest.iter().enumerate().any(|(i, t)| {
        word_is(Some(t), "SELECT")
            || (word_is(Some(t), "SYSTEM") && word_is(rest.get(i + 1), "VERSIONING") && i > 0 && word_is(rest.get(i - 1), "WITH"))
    }) || body.windows(3).any(|w| word_is(w.first(), "WITH") && word_is(w.get(1), "SYSTEM") && word_is(w.get(2), "VERSIONING"));
    if opaque {
        return vec![Effect::CreateOpaque { table, if_not_exists }];
    }
    let mut def = CreateDef::default();
    for clause in split_commas(body) {
        match create_clause(clause) {
            Clause::Column(col) => def.columns.push(col),
            Clause::Key(k) => def.keys.push(k),
            Clause::JsonCheck(col) => def.json_checks.push(col),
            Clause::Ignored => {}
            Clause::Bad(reason) => return vec![Effect::Unknown { tables: vec![table], reason }],
        }
    }
    if def.columns.is_empty() {
        return vec![Effect::Unknown { tables: vec![table], reason: "CREATE TABLE without columns".into() }];
    }
    let (charset, collation) = charset_options(rest);
    def.charset = charset;
    def.collation = collation;
    vec![Effect::CreateTable { table, if_not_exists, def }]
}

enum Clause {
    Column(ColumnDef),
    Key(KeyDef),
    JsonCheck(String),
    Ignored,
    Bad(String),
}

/// One element of a CREATE TABLE body: a column, or a key/constraint.
fn create_clause(t: &[Tok]) -> Clause {
    let mut c = Cur::new(t);
    let is_constraint = match c.peek() {
        Some(Tok::Word(w)) => {
            let w = w.to_ascii_uppercase();
            matches!(w.as_str(), "CONSTRAINT" | "PRIMARY" | "INDEX" | "KEY" | "UNIQUE" | "FULLTEXT" | "SPATIAL" | "FOREIGN" | "CHECK")
                || (w == "PERIOD" && word_is(c.peek_at(1), "FOR"))
        }
        _ => false,
    };
    if is_constraint {
        return key_clause(&mut c);
    }
    match column_def(&mut c) {
        Ok(col) => Clause::Column(col),
        Err(e) => Clause::Bad(e),
    }
}

/// A key or constraint clause (CREATE TABLE body, or after ALTER … ADD).
fn key_clause(c: &mut Cur) -> Clause {
    let mut symbol = None;
    if c.eat("CONSTRAINT") && !(c.kw("PRIMARY") || c.kw("UNIQUE") || c.kw("FOREIGN") || c.kw("CHECK")) {
        symbol = c.ident();
    }
    if c.eat_seq(&["PRIMARY", "KEY"]) {
        skip_index_type(c);
        let columns = c.group().map(key_parts).unwrap_or_default();
        return Clause::Key(KeyDef { name: None, primary: true, columns });
    }
    if c.eat("UNIQUE") {
        let _ = c.eat("INDEX") || c.eat("KEY");
        c.eat_seq(&["IF", "NOT", "EXISTS"]);
        let mut name = None;
        if !c.punct('(') && !c.kw("USING") {
            name = c.ident();
        }
        skip_index_type(c);
        let columns = c.group().map(key_parts).unwrap_or_default();
        return Clause::Key(KeyDef { name: name.or(symbol), primary: false, columns });
    }
    if c.eat("CHECK") {
        return match c.group().and_then(json_valid_target) {
            Some(col) => Clause::JsonCheck(col),
            None => Clause::Ignored,
        };
    }
    // INDEX, KEY, FULLTEXT, SPATIAL, FOREIGN KEY, PERIOD FOR: no effect on the row key.
    Clause::Ignored
}

fn skip_index_type(c: &mut Cur) {
    if c.eat("USING") {
        c.next();
    }
}

/// Column names of `(a, b(10) DESC, (expr))`: functional parts are left out.
fn key_parts(t: &[Tok]) -> Vec<String> {
    split_commas(t)
        .into_iter()
        .filter_map(|part| match part.first()? {
            Tok::Word(w) | Tok::Quoted(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

/// ``json_valid(`c`)`` → `c`.
fn json_valid_target(t: &[Tok]) -> Option<String> {
    match t {
        [Tok::Word(f), Tok::Punct('('), Tok::Word(c) | Tok::Quoted(c), Tok::Punct(')')] if f.eq_ignore_ascii_case("json_valid") => {
            Some(c.clone())
        }
        _ => None,
    }
}

/// `CHARACTER SET`, `CHARSET` and `COLLATE` among table (or database) options.
fn charset_options(t: &[Tok]) -> (Option<String>, Option<String>) {
    let mut c = Cur::new(t);
    let (mut charset, mut collation) = (None, None);
    let mut depth = 0i32;
    while let Some(tok) = c.peek() {
        match tok {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            if c.eat_seq(&["CHARACTER", "SET"]) || c.eat("CHARSET") {
                charset = c.option_value();
                continue;
            }
            if c.eat("COLLATE") {
                collation = c.option_value();
                continue;
            }
            // PARTITION BY … ends the table options.
            if c.kw("PARTITION") && word_is(c.peek_at(1), "BY") {
                break;
            }
        }
        c.next();
    }
    (charset, collation)
}

/// `name type [attributes]`.
fn column_def(c: &mut Cur) -> Result<ColumnDef, String> {
    let name = c.ident().ok_or("a column definition without a name")?;
    let mut col = column_type(c, &name)?;
    column_attributes(c, &mut col);
    Ok(col)
}

/// The data type of a column definition, with its arguments.
fn column_type(c: &mut Cur, name: &str) -> Result<ColumnDef, String> {
    use DataType as D;
    let Some(Tok::Word(w)) = c.next() else {
        return Err(format!("column {name} has no type"));
    };
    let mut word = w.to_ascii_lowercase();
    let mut national = false;
    if word == "national" {
        national = true;
        word = match c.ident() {
            Some(w) => w.to_ascii_lowercase(),
            None => return Err(format!("column {name}: NATIONAL without a type")),
        };
    }
    let varying = |c: &mut Cur| c.eat("VARYING");
    let (data_type, type_name) = match word.as_str() {
        "tinyint" | "int1" => (D::TinyInt, "tinyint"),
        "bool" | "boolean" => (D::TinyInt, "tinyint"),
        "smallint" | "int2" => (D::SmallInt, "smallint"),
        "mediumint" | "int3" | "middleint" => (D::MediumInt, "mediumint"),
        "int" | "integer" | "int4" => (D::Int, "int"),
        "bigint" | "int8" => (D::BigInt, "bigint"),
        "serial" => (D::BigInt, "bigint"),
        "decimal" | "dec" | "numeric" | "fixed" => (D::Decimal, "decimal"),
        "float" | "float4" => (D::Float, "float"),
        "double" | "float8" => {
            c.eat("PRECISION");
            (D::Double, "double")
        }
        "real" => (D::Double, "double"),
        "bit" => (D::Bit, "bit"),
        "year" => (D::Year, "year"),
        "date" => (D::Date, "date"),
        "time" => (D::Time, "time"),
        "datetime" => (D::DateTime, "datetime"),
        "timestamp" => (D::Timestamp, "timestamp"),
        "char" | "character" => {
            if varying(c) {
                (D::VarChar, "varchar")
            } else {
                (D::Char, "char")
            }
        }
        "nchar" => {
            national = true;
            if varying(c) || c.eat("VARCHAR") {
                (D::VarChar, "varchar")
            } else {
                (D::Char, "char")
            }
        }
        "varchar" | "varcharacter" | "varchar2" => (D::VarChar, "varchar"),
        "nvarchar" => {
            national = true;
            (D::VarChar, "varchar")
        }
        "binary" => (D::Binary, "binary"),
        "varbinary" => (D::VarBinary, "varbinary"),
        "tinytext" => (D::TinyText, "tinytext"),
        "text" => (D::Text, "text"),
        "mediumtext" => (D::MediumText, "mediumtext"),
        "longtext" => (D::LongText, "longtext"),
        "tinyblob" => (D::TinyBlob, "tinyblob"),
        "blob" => (D::Blob, "blob"),
        "mediumblob" => (D::MediumBlob, "mediumblob"),
        "longblob" => (D::LongBlob, "longblob"),
        "long" => {
            if c.eat("VARBINARY") {
                (D::MediumBlob, "mediumblob")
            } else {
                let _ = c.eat("VARCHAR") || c.eat_seq(&["CHAR", "VARYING"]);
                (D::MediumText, "mediumtext")
            }
        }
        "enum" => (D::Enum, "enum"),
        "set" => (D::Set, "set"),
        "json" => (D::Json, "json"),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring" | "multipolygon"
        | "geometrycollection" | "geomcollection" => (D::Geometry, "geometry"),
        "inet4" | "inet6" | "uuid" | "vector" => (D::Other, word.as_str()),
        // Not a type sluice knows: the column (and so the table's shape) is not known.
        other => return Err(format!("column {name}: unknown type {}{other}", if national { "NATIONAL " } else { "" })),
    };
    let type_name = if data_type == D::Geometry { word.clone() } else { type_name.to_string() };
    let mut col = ColumnDef::new(name, data_type, &type_name);
    col.national = national;
    if word == "serial" {
        col.unsigned = true;
        col.not_null = true;
        col.unique_key = true;
    }
    if word == "bool" || word == "boolean" {
        col.args = vec![1];
    }
    if let Some(args) = c.group() {
        if matches!(data_type, D::Enum | D::Set) {
            col.labels = args.iter().filter_map(|t| if let Tok::Str(s) = t { Some(s.clone()) } else { None }).collect();
        } else {
            col.args = args.iter().filter_map(|t| if let Tok::Num(n) = t { n.parse().ok() } else { None }).collect();
        }
    }
    Ok(col)
}

/// Attributes after the type, in any order. Unknown words are skipped: none of them change the
/// column's type, name or character set.
// Keyword arms consume tokens: their conditions must not become match guards.
#[allow(clippy::collapsible_match)]
fn column_attributes(c: &mut Cur, col: &mut ColumnDef) {
    while let Some(tok) = c.peek() {
        match tok {
            Tok::Word(w) => {
                let w = w.to_ascii_uppercase();
                c.next();
                match w.as_str() {
                    "UNSIGNED" => col.unsigned = true,
                    "SIGNED" => col.unsigned = false,
                    "ZEROFILL" => {
                        col.zerofill = true;
                        col.unsigned = true;
                    }
                    "NOT" => {
                        if c.eat("NULL") {
                            col.not_null = true;
                        }
                    }
                    "NULL" => col.not_null = false,
                    "DEFAULT" => skip_expression(c),
                    "ON" => {
                        if c.eat("UPDATE") {
                            skip_expression(c);
                        }
                    }
                    "COMMENT" | "COLUMN_FORMAT" | "STORAGE" | "SRID" => {
                        c.eat_punct('=');
                        c.next();
                    }
                    "ENGINE_ATTRIBUTE" | "SECONDARY_ENGINE_ATTRIBUTE" => {
                        c.eat_punct('=');
                        c.next();
                    }
                    "PRIMARY" => {
                        c.eat("KEY");
                        col.primary_key = true;
                        col.not_null = true;
                    }
                    "KEY" => {
                        col.primary_key = true;
                        col.not_null = true;
                    }
                    "UNIQUE" => {
                        let _ = c.eat("KEY") || c.eat("INDEX");
                        col.unique_key = true;
                    }
                    "CHARACTER" => {
                        if c.eat("SET") {
                            col.charset = c.ident().map(|s| s.to_ascii_lowercase());
                        }
                    }
                    "CHARSET" => col.charset = c.ident().map(|s| s.to_ascii_lowercase()),
                    "COLLATE" => col.collation = c.ident().map(|s| s.to_ascii_lowercase()),
                    "BINARY" => col.binary_collation = true,
                    "ASCII" => col.charset = Some("latin1".into()),
                    "UNICODE" => col.charset = Some("ucs2".into()),
                    "BYTE" => col.charset = Some("binary".into()),
                    "GENERATED" => {
                        c.eat("ALWAYS");
                    }
                    "AS" => {
                        c.group();
                    }
                    "CONSTRAINT" => {
                        if !c.kw("CHECK") {
                            c.ident();
                        }
                    }
                    "CHECK" => {
                        if let Some(g) = c.group() {
                            if json_valid_target(g).is_some_and(|t| t.eq_ignore_ascii_case(&col.name)) {
                                col.json_check = true;
                            }
                        }
                    }
                    // A foreign key reference: its ON DELETE SET NULL is not about this column.
                    "REFERENCES" => break,
                    _ => {}
                }
            }
            Tok::Punct('(') => {
                c.group();
            }
            _ => {
                c.next();
            }
        }
    }
}

/// Skips one DEFAULT / ON UPDATE expression: a literal, a word, a call or a parenthesized
/// expression, with an optional sign and charset introducer.
fn skip_expression(c: &mut Cur) {
    if c.group().is_some() {
        return;
    }
    while c.eat_punct('-') || c.eat_punct('+') {}
    match c.next() {
        Some(Tok::Word(w)) => {
            // _utf8mb4'x', X'ff', B'01', N'x'
            if (w.starts_with('_') || matches!(w.to_ascii_lowercase().as_str(), "x" | "b" | "n"))
                && matches!(c.peek(), Some(Tok::Str(_)))
            {
                c.next();
            } else {
                c.group();
            }
        }
        Some(Tok::Num(_)) => {
            // 1e5 is Num, Word
            if matches!(c.peek(), Some(Tok::Word(w)) if w.starts_with(['e', 'E']) && w[1..].chars().all(|d| d.is_ascii_digit())) {
                c.next();
            }
        }
        _ => {}
    }
}

fn alter(c: &mut Cur, db: &str) -> Vec<Effect> {
    skip_modifiers(c);
    if c.eat("DATABASE") || c.eat("SCHEMA") {
        // ALTER DATABASE [name] options; without a name it is the default database.
        let name = if c.kw("DEFAULT") || c.kw("CHARACTER") || c.kw("CHARSET") || c.kw("COLLATE") || c.kw("UPGRADE") {
            db.to_string()
        } else {
            c.ident().unwrap_or_else(|| db.to_string())
        };
        let (charset, collation) = charset_options(c.rest());
        return match (charset, collation) {
            (None, None) => vec![],
            (charset, collation) => vec![Effect::AlterDatabase { db: name, charset, collation }],
        };
    }
    if !c.eat("TABLE") {
        return vec![];
    }
    c.eat_seq(&["IF", "EXISTS"]);
    let Some(table) = c.table(db) else {
        return vec![unknown_no_table("ALTER TABLE without a readable name")];
    };
    if c.eat("WAIT") {
        c.next();
    }
    c.eat("NOWAIT");
    let mut ops = Vec::new();
    // `ORDER BY a, b` and `DROP PARTITION p0, p1` take comma lists: a clause that is a bare name
    // after one of those continues it.
    let mut in_list = false;
    for clause in split_commas(c.rest()) {
        let bare_name = matches!(clause, [Tok::Word(_) | Tok::Quoted(_)] | [Tok::Word(_) | Tok::Quoted(_), Tok::Word(_)] if clause.len() == 1 || word_is(clause.get(1), "ASC") || word_is(clause.get(1), "DESC"));
        if in_list && bare_name {
            continue;
        }
        in_list = (word_is(clause.first(), "ORDER") && word_is(clause.get(1), "BY")) || word_is(clause.get(1), "PARTITION");
        match alter_clause(clause, db, &table) {
            Ok(mut more) => ops.append(&mut more),
            Err(reason) => return vec![Effect::Unknown { tables: vec![table], reason }],
        }
    }
    vec![Effect::Alter { table, ops }]
}

/// A column definition followed by FIRST / AFTER x (which column_attributes would swallow).
fn column_def_positioned(t: &[Tok]) -> Result<(ColumnDef, Position), String> {
    // FIRST / AFTER x are the last tokens of the clause.
    let (def, pos) = match t {
        [.., Tok::Word(a), name] if a.eq_ignore_ascii_case("AFTER") && !matches!(name, Tok::Punct(_)) => {
            let name = match name {
                Tok::Word(s) | Tok::Quoted(s) | Tok::Str(s) | Tok::Num(s) => s.clone(),
                Tok::Punct(_) => unreachable!(),
            };
            (&t[..t.len() - 2], Position::After(name))
        }
        [.., Tok::Word(f)] if f.eq_ignore_ascii_case("FIRST") => (&t[..t.len() - 1], Position::First),
        _ => (t, Position::Last),
    };
    let mut c = Cur::new(def);
    let col = column_def(&mut c)?;
    Ok((col, pos))
}

const TABLE_OPTIONS: &[&str] = &[
    "ENGINE", "AUTO_INCREMENT", "AVG_ROW_LENGTH", "CHECKSUM", "COMMENT", "COMPRESSION", "CONNECTION", "DATA",
    "INDEX", "DELAY_KEY_WRITE", "ENCRYPTION", "ENCRYPTED", "ENCRYPTION_KEY_ID", "INSERT_METHOD", "KEY_BLOCK_SIZE",
    "MAX_ROWS", "MIN_ROWS", "PACK_KEYS", "PASSWORD", "ROW_FORMAT", "STATS_AUTO_RECALC", "STATS_PERSISTENT",
    "STATS_SAMPLE_PAGES", "TABLESPACE", "UNION", "PAGE_CHECKSUM", "PAGE_COMPRESSED", "PAGE_COMPRESSION_LEVEL",
    "TRANSACTIONAL", "IETF_QUOTES", "SEQUENCE", "SECONDARY_ENGINE", "SECONDARY_ENGINE_ATTRIBUTE",
    "ENGINE_ATTRIBUTE", "AUTOEXTEND_SIZE", "START",
];

/// Partition maintenance and other clauses that leave columns and keys as they are.
const NO_SHAPE_CLAUSES: &[&str] = &[
    "ALGORITHM", "LOCK", "FORCE", "ORDER", "ENABLE", "DISABLE", "DISCARD", "IMPORT", "WITH", "WITHOUT",
    "COALESCE", "REORGANIZE", "EXCHANGE", "ANALYZE", "CHECK", "OPTIMIZE", "REBUILD", "REPAIR", "REMOVE",
    "PARTITION", "TRUNCATE", "UPGRADE", "SECONDARY_LOAD", "SECONDARY_UNLOAD", "VALIDATION",
];

fn alter_clause(t: &[Tok], db: &str, table: &TableRef) -> Result<Vec<AlterOp>, String> {
    let mut c = Cur::new(t);
    let Some(Tok::Word(first)) = c.peek() else {
        return Err(format!("unexpected ALTER TABLE clause starting {:?}", c.peek()));
    };
    let first = first.to_ascii_uppercase();
    // Table options (possibly several, space-separated, in one clause).
    if first == "DEFAULT" || first == "CHARACTER" || first == "CHARSET" || first == "COLLATE" || TABLE_OPTIONS.contains(&first.as_str()) {
        let is_option_list = first != "INDEX" || matches!(c.peek_at(1), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("DIRECTORY"));
        if is_option_list {
            let (charset, collation) = charset_options(t);
            return Ok(match (charset, collation) {
                (None, None) => vec![],
                (charset, collation) => vec![AlterOp::DefaultCharset { charset, collation }],
            });
        }
    }
    c.next();
    match first.as_str() {
        "ADD" => {
            let explicit_column = c.eat("COLUMN");
            if !explicit_column {
                if c.kw("PARTITION") {
                    return Ok(vec![]);
                }
                if c.kw("SYSTEM") || c.kw("PERIOD") && word_is(c.peek_at(1), "FOR") && word_is(c.peek_at(2), "SYSTEM_TIME") {
                    return Err("ADD SYSTEM VERSIONING adds hidden columns".into());
                }
                let keyish = ["CONSTRAINT", "PRIMARY", "INDEX", "KEY", "UNIQUE", "FULLTEXT", "SPATIAL", "FOREIGN", "CHECK", "PERIOD"]
                    .iter()
                    .any(|k| c.kw(k));
                if keyish {
                    return Ok(match key_clause(&mut c) {
                        Clause::Key(k) => vec![AlterOp::AddKey(k)],
                        Clause::JsonCheck(column) => vec![AlterOp::JsonCheck { column }],
                        _ => vec![],
                    });
                }
            }
            let if_not_exists = c.eat_seq(&["IF", "NOT", "EXISTS"]);
            if c.punct('(') {
                let group = c.group().unwrap_or_default();
                let mut ops = Vec::new();
                for part in split_commas(group) {
                    match create_clause(part) {
                        Clause::Column(column) => ops.push(AlterOp::AddColumn { column, position: Position::Last, if_not_exists }),
                        Clause::Key(k) => ops.push(AlterOp::AddKey(k)),
                        Clause::JsonCheck(column) => ops.push(AlterOp::JsonCheck { column }),
                        Clause::Ignored => {}
                        Clause::Bad(e) => return Err(e),
                    }
                }
                return Ok(ops);
            }
            let (column, position) = column_def_positioned(c.rest())?;
            let mut ops = vec![AlterOp::AddColumn { column: column.clone(), position, if_not_exists }];
            inline_keys(&column, &mut ops);
            Ok(ops)
        }
        "DROP" => {
            if c.eat_seq(&["PRIMARY", "KEY"]) {
                return Ok(vec![AlterOp::DropPrimaryKey]);
            }
            if c.eat("INDEX") || c.eat("KEY") {
                let if_exists = c.eat_seq(&["IF", "EXISTS"]);
                let name = c.ident().ok_or("DROP INDEX without a name")?;
                return Ok(vec![AlterOp::DropKey { name, if_exists }]);
            }
            if c.eat_seq(&["FOREIGN", "KEY"]) || c.kw("PARTITION") {
                return Ok(vec![]);
            }
            if c.eat("CONSTRAINT") || c.eat("CHECK") {
                c.eat_seq(&["IF", "EXISTS"]);
                let name = c.ident().ok_or("DROP CONSTRAINT without a name")?;
                return Ok(vec![AlterOp::DropConstraint { name }]);
            }
            if c.kw("SYSTEM") || c.kw("PERIOD") {
                return Err("DROP SYSTEM VERSIONING removes hidden columns".into());
            }
            c.eat("COLUMN");
            let if_exists = c.eat_seq(&["IF", "EXISTS"]);
            let name = c.ident().ok_or("DROP COLUMN without a name")?;
            // DROP COLUMN a CASCADE / RESTRICT
            Ok(vec![AlterOp::DropColumn { name, if_exists }])
        }
        "CHANGE" | "MODIFY" => {
            c.eat("COLUMN");
            let if_exists = c.eat_seq(&["IF", "EXISTS"]);
            let modify = first == "MODIFY";
            let old = if modify {
                match c.peek() {
                    Some(Tok::Word(w) | Tok::Quoted(w) | Tok::Str(w)) => w.clone(),
                    _ => return Err("MODIFY without a column".into()),
                }
            } else {
                c.ident().ok_or("CHANGE without a column")?
            };
            let (column, position) = column_def_positioned(c.rest())?;
            let mut ops = vec![AlterOp::ChangeColumn { old, column: column.clone(), position, if_exists, modify }];
            inline_keys(&column, &mut ops);
            Ok(ops)
        }
        "RENAME" => {
            if c.eat("COLUMN") {
                let old = c.ident().ok_or("RENAME COLUMN without a name")?;
                if !c.eat("TO") {
                    return Err("RENAME COLUMN without TO".into());
                }
                let new = c.ident().ok_or("RENAME COLUMN without a new name")?;
                return Ok(vec![AlterOp::RenameColumn { old, new }]);
            }
            if c.eat("INDEX") || c.eat("KEY") {
                let old = c.ident().ok_or("RENAME INDEX without a name")?;
                c.eat("TO");
                let new = c.ident().ok_or("RENAME INDEX without a new name")?;
                return Ok(vec![AlterOp::RenameKey { old, new }]);
            }
            let _ = c.eat("TO") || c.eat("AS");
            let to = c.table(db).ok_or("RENAME without a new table name")?;
            Ok(vec![AlterOp::RenameTable { to }])
        }
        "ALTER" => {
            // ALTER [COLUMN] c SET/DROP DEFAULT, SET [IN]VISIBLE; ALTER INDEX i [IN]VISIBLE;
            // ALTER CHECK/CONSTRAINT c [NOT] ENFORCED.
            if c.eat("COLUMN") || !(c.kw("INDEX") || c.kw("KEY") || c.kw("CHECK") || c.kw("CONSTRAINT")) {
                c.ident();
                let ok = c.eat_seq(&["SET", "DEFAULT"]) || c.eat_seq(&["DROP", "DEFAULT"]) || c.eat_seq(&["SET", "VISIBLE"]) || c.eat_seq(&["SET", "INVISIBLE"]);
                if !ok {
                    return Err("an ALTER COLUMN clause sluice does not know".into());
                }
            }
            Ok(vec![])
        }
        "CONVERT" => {
            if !c.eat("TO") {
                return Err("CONVERT without TO".into());
            }
            if !(c.eat_seq(&["CHARACTER", "SET"]) || c.eat("CHARSET")) {
                return Err("CONVERT TO without CHARACTER SET".into());
            }
            let charset = c.ident().ok_or("CONVERT TO CHARACTER SET without a name")?.to_ascii_lowercase();
            let (_, collation) = charset_options(c.rest());
            Ok(vec![AlterOp::ConvertCharset { charset, collation }])
        }
        w if NO_SHAPE_CLAUSES.contains(&w) => {
            if (w == "WITH" || w == "WITHOUT") && c.kw("SYSTEM") {
                return Err("system versioning changes hidden columns".into());
            }
            Ok(vec![])
        }
        _ => {
            let _ = table;
            Err(format!("an ALTER TABLE clause sluice does not know ({first} …)"))
        }
    }
}

/// Keys declared inline on an added or changed column.
fn inline_keys(column: &ColumnDef, ops: &mut Vec<AlterOp>) {
    if column.primary_key {
        ops.push(AlterOp::AddKey(KeyDef { name: None, primary: true, columns: vec![column.name.clone()] }));
    }
    if column.unique_key {
        ops.push(AlterOp::AddKey(KeyDef { name: None, primary: false, columns: vec![column.name.clone()] }));
    }
    if column.json_check {
        ops.push(AlterOp::JsonCheck { column: column.name.clone() });
    }
}

fn drop(c: &mut Cur, db: &str) -> Vec<Effect> {
    let temporary = c.eat("TEMPORARY");
    if c.eat("TABLE") || c.eat("TABLES") {
        if temporary {
            return vec![];
        }
        c.eat_seq(&["IF", "EXISTS"]);
        let mut tables = Vec::new();
        for part in split_commas(c.rest()) {
            let mut p = Cur::new(part);
            if let Some(t) = p.table(db) {
                tables.push(t);
            }
        }
        return if tables.is_empty() { vec![] } else { vec![Effect::Drop { tables }] };
    }
    if c.eat("DATABASE") || c.eat("SCHEMA") {
        c.eat_seq(&["IF", "EXISTS"]);
        return c.ident().map(|db| vec![Effect::DropDatabase { db }]).unwrap_or_default();
    }
    if c.eat("SEQUENCE") {
        c.eat_seq(&["IF", "EXISTS"]);
        let tables: Vec<TableRef> = split_commas(c.rest()).into_iter().filter_map(|p| Cur::new(p).table(db)).collect();
        return if tables.is_empty() { vec![] } else { vec![Effect::Drop { tables }] };
    }
    skip_modifiers(c);
    if c.eat("INDEX") {
        let if_exists = c.eat_seq(&["IF", "EXISTS"]);
        let Some(name) = c.ident() else { return vec![] };
        if !c.eat("ON") {
            return vec![];
        }
        let Some(table) = c.table(db) else { return vec![] };
        let op = if name.eq_ignore_ascii_case("PRIMARY") { AlterOp::DropPrimaryKey } else { AlterOp::DropKey { name, if_exists } };
        return vec![Effect::Alter { table, ops: vec![op] }];
    }
    vec![]
}

fn rename(c: &mut Cur, db: &str) -> Vec<Effect> {
    if !(c.eat("TABLE") || c.eat("TABLES")) {
        return vec![];
    }
    c.eat_seq(&["IF", "EXISTS"]);
    let mut renames = Vec::new();
    for part in split_commas(c.rest()) {
        let mut p = Cur::new(part);
        let Some(from) = p.table(db) else { continue };
        if p.eat("WAIT") {
            p.next();
        }
        p.eat("NOWAIT");
        if !p.eat("TO") {
            return vec![Effect::Unknown { tables: vec![from], reason: "RENAME TABLE without TO".into() }];
        }
        let Some(to) = p.table(db) else {
            return vec![Effect::Unknown { tables: vec![from], reason: "RENAME TABLE without a new name".into() }];
        };
        renames.push((from, to));
    }
    if renames.is_empty() {
        vec![]
    } else {
        vec![Effect::Rename { renames }]
    }
}

// ------------------------------------------------------------------------------------------
// sqlparser front end: statement structure from its AST, fragments through the parsers above.

fn parse_with_sqlparser(sql: &str, db: &str) -> Option<Vec<Effect>> {
    let statements = Parser::parse_sql(&MySqlDialect {}, sql).ok()?;
    let [statement] = statements.as_slice() else { return None };
    from_statement(statement, db)
}

fn ident_text(i: &ast::Ident) -> String {
    i.value.clone()
}

fn object_ref(name: &ast::ObjectName, db: &str) -> Option<TableRef> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(ident_text))
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [t] => Some(TableRef::new(db, t.clone())),
        [d, t] => Some(TableRef::new(d.clone(), t.clone())),
        _ => None,
    }
}

fn from_statement(s: &ast::Statement, db: &str) -> Option<Vec<Effect>> {
    use ast::Statement as S;
    Some(match s {
        S::CreateTable(ct) => {
            if ct.temporary {
                return Some(vec![]);
            }
            let table = object_ref(&ct.name, db)?;
            let if_not_exists = ct.if_not_exists;
            if let Some(like) = &ct.like {
                let like = match like {
                    ast::CreateTableLikeKind::Parenthesized(l) | ast::CreateTableLikeKind::Plain(l) => &l.name,
                };
                return Some(vec![Effect::CreateLike { table, like: object_ref(like, db)?, if_not_exists }]);
            }
            if ct.query.is_some() {
                return Some(vec![Effect::CreateOpaque { table, if_not_exists }]);
            }
            if ct.clone.is_some() || ct.partition_of.is_some() || ct.inherits.is_some() {
                return None;
            }
            let mut def = CreateDef::default();
            for column in &ct.columns {
                let toks = tokenize(&column.to_string());
                def.columns.push(column_def(&mut Cur::new(&toks)).ok()?);
            }
            for constraint in &ct.constraints {
                let toks = tokenize(&constraint.to_string());
                match key_clause(&mut Cur::new(&toks)) {
                    Clause::Key(k) => def.keys.push(k),
                    Clause::JsonCheck(c) => def.json_checks.push(c),
                    Clause::Ignored => {}
                    Clause::Bad(_) | Clause::Column(_) => return None,
                }
            }
            if def.columns.is_empty() {
                return None;
            }
            let options = match &ct.table_options {
                ast::CreateTableOptions::None => String::new(),
                ast::CreateTableOptions::Plain(options) => {
                    options.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(" ")
                }
                _ => return None,
            };
            let (charset, collation) = charset_options(&tokenize(&options));
            def.charset = charset;
            def.collation = collation;
            vec![Effect::CreateTable { table, if_not_exists, def }]
        }
        S::AlterTable(at) => {
            if at.table_type.is_some() || at.location.is_some() || at.on_cluster.is_some() || at.only {
                return None;
            }
            let table = object_ref(&at.name, db)?;
            let mut ops = Vec::new();
            for op in &at.operations {
                ops.extend(alter_op(op, db)?);
            }
            vec![Effect::Alter { table, ops }]
        }
        S::CreateIndex(ci) => {
            let table = object_ref(&ci.table_name, db)?;
            if !ci.unique {
                return Some(vec![]);
            }
            let name = match &ci.name {
                Some(n) => Some(object_ref(n, db)?.table),
                None => None,
            };
            let parts: Vec<String> = ci.columns.iter().map(|c| c.to_string()).collect();
            let columns = key_parts(&tokenize(&parts.join(", ")));
            vec![Effect::Alter { table, ops: vec![AlterOp::AddKey(KeyDef { name, primary: false, columns })] }]
        }
        S::Drop { object_type, if_exists, names, temporary, table, .. } => match object_type {
            ast::ObjectType::Table => {
                if *temporary {
                    return Some(vec![]);
                }
                let tables = names.iter().map(|n| object_ref(n, db)).collect::<Option<Vec<_>>>()?;
                vec![Effect::Drop { tables }]
            }
            ast::ObjectType::Schema | ast::ObjectType::Database => {
                let [name] = names.as_slice() else { return None };
                let [part] = name.0.as_slice() else { return None };
                vec![Effect::DropDatabase { db: ident_text(part.as_ident()?) }]
            }
            ast::ObjectType::Index => {
                let table = object_ref(table.as_ref()?, db)?;
                let [name] = names.as_slice() else { return None };
                let name = object_ref(name, db)?.table;
                let op = if name.eq_ignore_ascii_case("PRIMARY") {
                    AlterOp::DropPrimaryKey
                } else {
                    AlterOp::DropKey { name, if_exists: *if_exists }
                };
                vec![Effect::Alter { table, ops: vec![op] }]
            }
            ast::ObjectType::Sequence => return None,
            _ => vec![],
        },
        S::RenameTable(renames) => {
            let renames = renames
                .iter()
                .map(|r| Some((object_ref(&r.old_name, db)?, object_ref(&r.new_name, db)?)))
                .collect::<Option<Vec<_>>>()?;
            vec![Effect::Rename { renames }]
        }
        S::Truncate(t) => {
            if t.partitions.is_some() {
                return None;
            }
            t.table_names
                .iter()
                .map(|n| object_ref(&n.name, db).map(|table| Effect::Truncate { table }))
                .collect::<Option<Vec<_>>>()?
        }
        S::CreateDatabase { db_name, default_charset, default_collation, .. } => {
            let [part] = db_name.0.as_slice() else { return None };
            vec![Effect::CreateDatabase {
                db: ident_text(part.as_ident()?),
                charset: default_charset.as_ref().map(|s| s.to_ascii_lowercase()),
                collation: default_collation.as_ref().map(|s| s.to_ascii_lowercase()),
            }]
        }
        S::CreateView(_) | S::CreateFunction(_) | S::CreateProcedure { .. } | S::CreateTrigger(_) | S::CreateRole(_) => vec![],
        _ => return None,
    })
}

/// One ALTER TABLE operation from sqlparser's AST; `None` for anything not handled (the
/// fallback parser then reads the whole statement).
fn alter_op(op: &ast::AlterTableOperation, db: &str) -> Option<Vec<AlterOp>> {
    use ast::AlterTableOperation as O;
    let position = |p: &Option<ast::MySQLColumnPosition>| match p {
        None => Position::Last,
        Some(ast::MySQLColumnPosition::First) => Position::First,
        Some(ast::MySQLColumnPosition::After(i)) => Position::After(ident_text(i)),
    };
    let column = |text: String| -> Option<ColumnDef> {
        let toks = tokenize(&text);
        column_def(&mut Cur::new(&toks)).ok()
    };
    let typed_column = |name: &ast::Ident, data_type: &ast::DataType, options: &[ast::ColumnOption]| {
        let mut text = format!("{name} {data_type}");
        for o in options {
            text.push(' ');
            text.push_str(&o.to_string());
        }
        column(text)
    };
    Some(match op {
        O::AddColumn { if_not_exists, column_def, column_position, .. } => {
            // sqlparser reads `ADD SYSTEM VERSIONING` as a column named SYSTEM: a clause keyword
            // as an unquoted column name is left to the fallback parser.
            const CLAUSE_WORDS: &[&str] = &["SYSTEM", "PERIOD", "PARTITION", "CONSTRAINT", "INDEX", "KEY", "UNIQUE", "PRIMARY", "FULLTEXT", "SPATIAL", "FOREIGN", "CHECK", "IF", "COLUMN"];
            if column_def.name.quote_style.is_none() && CLAUSE_WORDS.iter().any(|w| column_def.name.value.eq_ignore_ascii_case(w)) {
                return None;
            }
            let col = column(column_def.to_string())?;
            let mut ops = vec![AlterOp::AddColumn { column: col.clone(), position: position(column_position), if_not_exists: *if_not_exists }];
            inline_keys(&col, &mut ops);
            ops
        }
        O::DropColumn { column_names, if_exists, .. } => column_names
            .iter()
            .map(|n| AlterOp::DropColumn { name: ident_text(n), if_exists: *if_exists })
            .collect(),
        O::ChangeColumn { old_name, new_name, data_type, options, column_position } => {
            let col = typed_column(new_name, data_type, options)?;
            let mut ops = vec![AlterOp::ChangeColumn {
                old: ident_text(old_name),
                column: col.clone(),
                position: position(column_position),
                if_exists: false,
                modify: false,
            }];
            inline_keys(&col, &mut ops);
            ops
        }
        O::ModifyColumn { col_name, data_type, options, column_position } => {
            let col = typed_column(col_name, data_type, options)?;
            let mut ops = vec![AlterOp::ChangeColumn {
                old: ident_text(col_name),
                column: col.clone(),
                position: position(column_position),
                if_exists: false,
                modify: true,
            }];
            inline_keys(&col, &mut ops);
            ops
        }
        O::RenameColumn { old_column_name, new_column_name } => {
            vec![AlterOp::RenameColumn { old: ident_text(old_column_name), new: ident_text(new_column_name) }]
        }
        O::AddConstraint { constraint, .. } => {
            let toks = tokenize(&constraint.to_string());
            match key_clause(&mut Cur::new(&toks)) {
                Clause::Key(k) => vec![AlterOp::AddKey(k)],
                Clause::JsonCheck(column) => vec![AlterOp::JsonCheck { column }],
                Clause::Ignored => vec![],
                _ => return None,
            }
        }
        O::DropPrimaryKey { .. } => vec![AlterOp::DropPrimaryKey],
        O::DropIndex { name } => vec![AlterOp::DropKey { name: ident_text(name), if_exists: false }],
        O::DropConstraint { name, .. } => vec![AlterOp::DropConstraint { name: ident_text(name) }],
        O::DropForeignKey { .. } => vec![],
        O::RenameTable { table_name } => {
            let name = match table_name {
                ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => n,
            };
            vec![AlterOp::RenameTable { to: object_ref(name, db)? }]
        }
        O::AlterColumn { op: ast::AlterColumnOperation::SetDefault { .. } | ast::AlterColumnOperation::DropDefault, .. } => vec![],
        O::Algorithm { .. } | O::Lock { .. } | O::AutoIncrement { .. } => vec![],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = tokenize("ALTER /* c */ TABLE `a``b`.t -- x\n ADD 'it''s' 1.5 #z\n /*!50100 PARTITION */ ;");
        assert_eq!(
            t,
            vec![
                Tok::Word("ALTER".into()),
                Tok::Word("TABLE".into()),
                Tok::Quoted("a`b".into()),
                Tok::Punct('.'),
                Tok::Word("t".into()),
                Tok::Word("ADD".into()),
                Tok::Str("it's".into()),
                Tok::Num("1.5".into()),
                Tok::Word("PARTITION".into()),
                Tok::Punct(';'),
            ]
        );
    }

    #[test]
    fn ddl_keyword() {
        assert!(is_ddl("/* gh-ost */ alter table t add c int"));
        assert!(!is_ddl("INSERT INTO t VALUES (1)"));
    }
}
