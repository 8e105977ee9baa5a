//! Catalog metadata for Flight SQL clients: tables and views with their Arrow schemas,
//! primary keys, the SQL types lotline uses (XDBC type info), and the SqlInfo
//! the server reports about itself.

use std::sync::{Arc, LazyLock};

use arrow::array::{Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    CommandGetPrimaryKeys, CommandGetTables, Nullable, Searchable, SqlInfo, SqlNullOrdering,
    SqlOuterJoinsSupportLevel, SqlSupportedCaseSensitivity, SqlSupportedTransaction,
    SqlSupportedUnions, XdbcDataType, XdbcDatetimeSubcode,
};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::TableType;
use datafusion::prelude::SessionContext;

use crate::{model, query};

/// Flight SQL's name for a base table.
pub const TABLE_TYPE: &str = "TABLE";
/// Flight SQL's name for a view (`X_history`, `samples_raw`, `last_values`).
pub const VIEW_TYPE: &str = "VIEW";

/// The table types GetTables reports, for GetTableTypes.
pub const TABLE_TYPES: [&str; 2] = [TABLE_TYPE, VIEW_TYPE];

/// The Flight SQL table type of a DataFusion table provider.
fn table_type_name(table_type: TableType) -> &'static str {
    match table_type {
        TableType::Base => TABLE_TYPE,
        TableType::View => VIEW_TYPE,
        TableType::Temporary => "LOCAL TEMPORARY",
    }
}

/// The tables matching a GetTables request (the builder applies the filters):
/// every table `session` can query, read from its catalog, the same list
/// `information_schema.tables` shows for schema `public`.
pub async fn tables(
    query: CommandGetTables,
    session: &SessionContext,
) -> Result<RecordBatch, FlightError> {
    let external = |e: DataFusionError| FlightError::ExternalError(Box::new(e));
    let schema = session
        .catalog(query::CATALOG)
        .and_then(|catalog| catalog.schema(query::SCHEMA))
        .expect("every session has lotline's catalog and schema");
    let mut builder = query.into_builder();
    for name in schema.table_names() {
        let Some(table) = schema.table(&name).await.map_err(external)? else {
            continue;
        };
        let read_only = table.table_type() != TableType::Base;
        builder.append(
            query::CATALOG,
            query::SCHEMA,
            &name,
            table_type_name(table.table_type()),
            &with_column_metadata(&table.schema(), &name, read_only),
        )?;
    }
    builder.build()
}

static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "lotline");
    builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    // Arrow IPC format version the server speaks.
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
    builder.append(SqlInfo::FlightSqlServerReadOnly, false);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    // No CancelQuery: see CancelFlightInfo in docs/INTERFACES.md.
    builder.append(SqlInfo::FlightSqlServerCancel, false);
    builder.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    builder.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    // 0: statements have no server-side timeout.
    builder.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    builder.append(SqlInfo::SqlDdlCatalog, false);
    builder.append(SqlInfo::SqlDdlSchema, false);
    builder.append(SqlInfo::SqlDdlTable, false);
    // DataFusion folds unquoted names to lower case; quoted ones keep theirs.
    builder.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.append(SqlInfo::SqlAllTablesAreSelectable, true);
    // DataFusion's default ordering `nulls_max`: last ascending, first descending.
    builder.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    builder.append(SqlInfo::SqlSearchStringEscape, "\\");
    builder.append(SqlInfo::SqlSupportsColumnAliasing, true);
    builder.append(SqlInfo::SqlNullPlusNullIsNull, true);
    builder.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    builder.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    builder.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    builder.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    builder.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    builder.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
    );
    builder.append(SqlInfo::SqlCatalogTerm, "catalog");
    builder.append(SqlInfo::SqlSchemaTerm, "schema");
    builder.append(SqlInfo::SqlCatalogAtStart, true);
    builder.append(SqlInfo::SqlSelectForUpdateSupported, false);
    builder.append(SqlInfo::SqlStoredProceduresSupported, false);
    builder.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    builder.append(
        SqlInfo::SqlSupportedUnions,
        (1 << SqlSupportedUnions::SqlUnion as i32) | (1 << SqlSupportedUnions::SqlUnionAll as i32),
    );
    builder.append(SqlInfo::SqlTransactionsSupported, false);
    builder.append(
        SqlInfo::SqlDefaultTransactionIsolation,
        SqlSupportedTransaction::None as i64,
    );
    builder.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0i32);
    // A prepared INSERT with many parameter rows runs as one request.
    builder.append(SqlInfo::SqlBatchUpdatesSupported, true);
    builder.append(SqlInfo::SqlSavepointsSupported, false);
    builder.append(SqlInfo::SqlNamedParametersSupported, true);
    builder.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    builder.build().expect("static SqlInfo builds")
});

pub fn sql_info() -> &'static SqlInfoData {
    &SQL_INFO
}

/// The primary key columns of the table a GetPrimaryKeys request names: a
/// table's key from its definition ([`model::TableDef::key`]); no rows for a
/// table lotline does not have.
pub fn primary_keys(query: &CommandGetPrimaryKeys) -> Result<RecordBatch, FlightError> {
    let matches = |filter: &Option<String>, name: &str| filter.as_deref().is_none_or(|f| f == name);
    let key = model::tables()
        .into_iter()
        .find(|t| t.name == query.table)
        .filter(|_| {
            matches(&query.catalog, query::CATALOG) && matches(&query.db_schema, query::SCHEMA)
        })
        .map_or(&[][..], |def| def.key);
    let n = key.len();
    let repeat = |value: &str| StringArray::from(vec![value; n]);
    let columns = vec![
        Arc::new(repeat(query::CATALOG)) as _,
        Arc::new(repeat(query::SCHEMA)) as _,
        Arc::new(repeat(&query.table)) as _,
        Arc::new(StringArray::from(key.to_vec())) as _,
        Arc::new(repeat(&format!("{}_pkey", query.table))) as _,
        Arc::new(Int32Array::from_iter_values(1..=n as i32)) as _,
    ];
    Ok(RecordBatch::try_new(PRIMARY_KEYS_SCHEMA.clone(), columns)?)
}

/// GetPrimaryKeys' result schema (FlightSql.proto).
pub static PRIMARY_KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
});

/// One XDBC type row; `size` is the column size (precision for numbers).
fn xdbc(
    name: &str,
    arrow: &str,
    data_type: XdbcDataType,
    size: Option<i32>,
    unsigned: Option<bool>,
) -> XdbcTypeInfo {
    let text = data_type == XdbcDataType::XdbcVarchar;
    XdbcTypeInfo {
        type_name: name.into(),
        data_type,
        column_size: size,
        literal_prefix: text.then(|| "'".into()),
        literal_suffix: text.then(|| "'".into()),
        nullable: Nullable::NullabilityNullable,
        case_sensitive: text,
        // LIKE works on text only.
        searchable: if text {
            Searchable::Full
        } else {
            Searchable::Basic
        },
        unsigned_attribute: unsigned,
        auto_increment: Some(false),
        local_type_name: Some(arrow.into()),
        sql_data_type: data_type,
        num_prec_radix: unsigned.map(|_| 10),
        ..Default::default()
    }
}

/// The SQL types lotline's tables and results use, by their DataFusion SQL
/// names, with the Arrow type each stands for.
static XDBC_TYPE_LIST: LazyLock<Vec<XdbcTypeInfo>> = LazyLock::new(|| {
    let mut builder = Vec::new();
    builder.push(xdbc(
        "VARCHAR",
        "Utf8",
        XdbcDataType::XdbcVarchar,
        None,
        None,
    ));
    builder.push(XdbcTypeInfo {
        // Hex literals: X'00ff'.
        literal_prefix: Some("X'".into()),
        literal_suffix: Some("'".into()),
        ..xdbc("BYTEA", "Binary", XdbcDataType::XdbcVarbinary, None, None)
    });
    builder.push(xdbc(
        "BOOLEAN",
        "Boolean",
        XdbcDataType::XdbcBit,
        Some(1),
        None,
    ));
    builder.push(xdbc(
        "TINYINT UNSIGNED",
        "UInt8",
        XdbcDataType::XdbcTinyint,
        Some(3),
        Some(true),
    ));
    builder.push(xdbc(
        "INT UNSIGNED",
        "UInt32",
        XdbcDataType::XdbcInteger,
        Some(10),
        Some(true),
    ));
    builder.push(xdbc(
        "INT",
        "Int32",
        XdbcDataType::XdbcInteger,
        Some(10),
        Some(false),
    ));
    builder.push(xdbc(
        "BIGINT UNSIGNED",
        "UInt64",
        XdbcDataType::XdbcBigint,
        Some(20),
        Some(true),
    ));
    builder.push(xdbc(
        "BIGINT",
        "Int64",
        XdbcDataType::XdbcBigint,
        Some(19),
        Some(false),
    ));
    builder.push(XdbcTypeInfo {
        num_prec_radix: Some(2),
        ..xdbc(
            "DOUBLE",
            "Float64",
            XdbcDataType::XdbcDouble,
            Some(53),
            None,
        )
    });
    for (name, arrow, subcode) in [
        (
            "TIMESTAMP WITH TIME ZONE",
            "Timestamp(ns, \"UTC\")",
            XdbcDatetimeSubcode::XdbcSubcodeTimestampWithTimezone,
        ),
        (
            "TIMESTAMP",
            "Timestamp(ns)",
            XdbcDatetimeSubcode::XdbcSubcodeTimestamp,
        ),
    ] {
        builder.push(XdbcTypeInfo {
            literal_prefix: Some("TIMESTAMP '".into()),
            literal_suffix: Some("'".into()),
            // Nanoseconds: nine digits of fraction.
            minimum_scale: Some(0),
            maximum_scale: Some(9),
            sql_data_type: XdbcDataType::XdbcDatetime,
            datetime_subcode: Some(subcode),
            ..xdbc(name, arrow, XdbcDataType::XdbcTimestamp, Some(35), None)
        });
    }
    builder
});

static XDBC_TYPES: LazyLock<XdbcTypeInfoData> = LazyLock::new(|| {
    let mut builder = XdbcTypeInfoDataBuilder::new();
    for info in XDBC_TYPE_LIST.iter() {
        builder.append(info.clone());
    }
    builder.build().expect("static XDBC type info builds")
});

/// The XDBC type row an Arrow type is reported as (GetXdbcTypeInfo's
/// `local_type_name` is the Arrow type's name).
fn xdbc_type_of(data_type: &DataType) -> Option<&'static XdbcTypeInfo> {
    let data_type = match data_type {
        DataType::Utf8View | DataType::LargeUtf8 => &DataType::Utf8,
        other => other,
    };
    let name = data_type.to_string();
    XDBC_TYPE_LIST
        .iter()
        .find(|t| t.local_type_name.as_deref() == Some(name.as_str()))
}

/// `schema` (of `table`) with Flight SQL's column metadata on every field
/// (`ARROW:FLIGHT:SQL:TYPE_NAME` and the rest, FlightSql.proto), which
/// ADBC reports as `xdbc_*` and JDBC tools as column details.
fn with_column_metadata(schema: &Schema, table: &str, read_only: bool) -> Schema {
    let flag = |on: bool| if on { "1" } else { "0" }.to_string();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let mut metadata = field.metadata().clone();
            let mut put = |key: &str, value: String| {
                metadata.insert(format!("ARROW:FLIGHT:SQL:{key}"), value);
            };
            put("CATALOG_NAME", query::CATALOG.into());
            put("DB_SCHEMA_NAME", query::SCHEMA.into());
            put("TABLE_NAME", table.into());
            put("IS_AUTO_INCREMENT", flag(false));
            put("IS_READ_ONLY", flag(read_only));
            put("IS_SEARCHABLE", flag(true));
            match xdbc_type_of(field.data_type()) {
                Some(t) => {
                    put("TYPE_NAME", t.type_name.clone());
                    put("IS_CASE_SENSITIVE", flag(t.case_sensitive));
                    if let Some(size) = t.column_size {
                        put("PRECISION", size.to_string());
                    }
                    if let Some(scale) = t.maximum_scale {
                        put("SCALE", scale.to_string());
                    }
                }
                // Nested types (arrays) have no XDBC row: their Arrow name.
                None => put("TYPE_NAME", field.data_type().to_string()),
            }
            field.as_ref().clone().with_metadata(metadata)
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

pub fn xdbc_types() -> &'static XdbcTypeInfoData {
    &XDBC_TYPES
}

/// The result schema of GetExportedKeys, GetImportedKeys and
/// GetCrossReference (FlightSql.proto): lotline has no foreign keys, so their
/// answers are this schema with no rows.
pub static FOREIGN_KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("pk_catalog_name", true),
        text("pk_db_schema_name", true),
        text("pk_table_name", false),
        text("pk_column_name", false),
        text("fk_catalog_name", true),
        text("fk_db_schema_name", true),
        text("fk_table_name", false),
        text("fk_column_name", false),
        Field::new("key_sequence", DataType::Int32, false),
        text("fk_key_name", true),
        text("pk_key_name", true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_column_has_a_sql_type_that_type_info_lists() {
        for def in model::tables() {
            let schema = with_column_metadata(&def.schema, def.name, false);
            for field in schema.fields() {
                let meta = field.metadata();
                let name = &meta["ARROW:FLIGHT:SQL:TYPE_NAME"];
                assert!(
                    XDBC_TYPE_LIST.iter().any(|t| &t.type_name == name),
                    "{}.{} ({}) is {name}, which GetXdbcTypeInfo does not list",
                    def.name,
                    field.name(),
                    field.data_type()
                );
                assert_eq!(meta["ARROW:FLIGHT:SQL:TABLE_NAME"], def.name);
            }
        }
    }
}
