/// The logical SQL type of a column, as `information_schema.COLUMNS.DATA_TYPE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    TinyInt,
    SmallInt,
    MediumInt,
    Int,
    BigInt,
    Decimal,
    Float,
    Double,
    Bit,
    Year,
    Date,
    Time,
    DateTime,
    Timestamp,
    Char,
    VarChar,
    Binary,
    VarBinary,
    TinyText,
    Text,
    MediumText,
    LongText,
    TinyBlob,
    Blob,
    MediumBlob,
    LongBlob,
    Enum,
    Set,
    Json,
    Geometry,
    /// MariaDB INET4 / INET6 / UUID and anything newer: carried as bytes.
    Other,
}

impl DataType {
    /// Parses `information_schema.COLUMNS.DATA_TYPE` (case-insensitive).
    pub fn from_information_schema(data_type: &str) -> DataType {
        use DataType::*;
        match data_type.to_ascii_lowercase().as_str() {
            "tinyint" | "bool" | "boolean" => TinyInt,
            "smallint" => SmallInt,
            "mediumint" => MediumInt,
            "int" | "integer" => Int,
            "bigint" => BigInt,
            "decimal" | "numeric" => Decimal,
            "float" => Float,
            "double" | "real" | "double precision" => Double,
            "bit" => Bit,
            "year" => Year,
            "date" => Date,
            "time" => Time,
            "datetime" => DateTime,
            "timestamp" => Timestamp,
            "char" => Char,
            "varchar" => VarChar,
            "binary" => Binary,
            "varbinary" => VarBinary,
            "tinytext" => TinyText,
            "text" => Text,
            "mediumtext" => MediumText,
            "longtext" => LongText,
            "tinyblob" => TinyBlob,
            "blob" => Blob,
            "mediumblob" => MediumBlob,
            "longblob" => LongBlob,
            "enum" => Enum,
            "set" => Set,
            "json" => Json,
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => Geometry,
            _ => Other,
        }
    }

    pub fn is_integer(self) -> bool {
        matches!(self, Self::TinyInt | Self::SmallInt | Self::MediumInt | Self::Int | Self::BigInt)
    }

    pub fn is_text_family(self) -> bool {
        matches!(self, Self::TinyText | Self::Text | Self::MediumText | Self::LongText)
    }

    pub fn is_blob_family(self) -> bool {
        matches!(self, Self::TinyBlob | Self::Blob | Self::MediumBlob | Self::LongBlob)
    }
}

/// One column of a captured table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    pub name: String,
    pub data_type: DataType,
    /// Full column type text, e.g. `bigint(20) unsigned`, `enum('a','b')`, `point`.
    pub column_type: String,
    pub unsigned: bool,
    pub nullable: bool,
    /// MySQL character set name (`utf8mb4`, `latin1`, `binary`, …) for string columns; `None`
    /// for columns that carry no text.
    pub charset: Option<String>,
    /// NUMERIC_PRECISION / NUMERIC_SCALE for DECIMAL, BIT width in `precision`.
    pub precision: Option<u32>,
    pub scale: Option<u32>,
    /// DATETIME_PRECISION (fractional-second digits) for TIME/DATETIME/TIMESTAMP.
    pub fsp: Option<u8>,
    /// Labels of an ENUM or SET column, in definition order.
    pub labels: Vec<String>,
}

impl ColumnSchema {
    /// A column of the given type with every optional attribute empty.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        Self {
            name: name.into(),
            data_type,
            column_type: String::new(),
            unsigned: false,
            nullable: true,
            charset: None,
            precision: None,
            scale: None,
            fsp: None,
            labels: Vec::new(),
        }
    }
}

/// A named primary or unique key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// `PRIMARY` for the primary key.
    pub name: String,
    /// Column positions (indexes into `TableSchema::columns`), in key order.
    pub columns: Vec<usize>,
}

/// The shape of a captured table at some point of the binlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub db: String,
    pub table: String,
    pub columns: Vec<ColumnSchema>,
    /// Primary key first (if any), then unique keys, in the server's order.
    pub keys: Vec<KeyInfo>,
}

impl TableSchema {
    /// The key that identifies a row: the primary key, else the first unique key, else none.
    pub fn row_key(&self) -> Option<&KeyInfo> {
        self.keys.first()
    }

    /// `db.table`.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.db, self.table)
    }
}
