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
        builder.append(
            query::CATALOG,
            query::SCHEMA,
            &name,
            table_type_name(table.table_type()),
            &table.schema(),
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
static XDBC_TYPES: LazyLock<XdbcTypeInfoData> = LazyLock::new(|| {
    let mut builder = XdbcTypeInfoDataBuilder::new();
    builder.append(xdbc(
        "VARCHAR",
        "Utf8",
        XdbcDataType::XdbcVarchar,
        None,
        None,
    ));
    builder.append(xdbc(
        "BOOLEAN",
        "Boolean",
        XdbcDataType::XdbcBit,
        Some(1),
        None,
    ));
    builder.append(xdbc(
        "TINYINT UNSIGNED",
        "UInt8",
        XdbcDataType::XdbcTinyint,
        Some(3),
        Some(true),
    ));
    builder.append(xdbc(
        "INT UNSIGNED",
        "UInt32",
        XdbcDataType::XdbcInteger,
        Some(10),
        Some(true),
    ));
    builder.append(xdbc(
        "INT",
        "Int32",
        XdbcDataType::XdbcInteger,
        Some(10),
        Some(false),
    ));
    builder.append(xdbc(
        "BIGINT",
        "Int64",
        XdbcDataType::XdbcBigint,
        Some(19),
        Some(false),
    ));
    builder.append(XdbcTypeInfo {
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
        builder.append(XdbcTypeInfo {
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
    builder.build().expect("static XDBC type info builds")
});

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
