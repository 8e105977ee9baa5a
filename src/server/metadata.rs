//! Catalog metadata for Flight SQL clients: tables with their Arrow schemas,
//! and the SqlInfo the server reports about itself.

use std::sync::LazyLock;

use arrow::array::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{CommandGetTables, SqlInfo};

use crate::{model, query};

pub const TABLE_TYPE: &str = "TABLE";

/// The tables matching a GetTables request (the builder applies the filters).
pub fn tables(query: CommandGetTables) -> Result<RecordBatch, FlightError> {
    let mut builder = query.into_builder();
    for def in model::tables() {
        builder.append(
            query::CATALOG,
            query::SCHEMA,
            def.name,
            TABLE_TYPE,
            &def.schema,
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
    builder.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    builder.append(SqlInfo::FlightSqlServerCancel, false);
    builder.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    builder.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    builder.append(SqlInfo::SqlDdlCatalog, false);
    builder.append(SqlInfo::SqlDdlSchema, false);
    builder.append(SqlInfo::SqlDdlTable, false);
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.append(SqlInfo::SqlTransactionsSupported, false);
    builder.build().expect("static SqlInfo builds")
});

pub fn sql_info() -> &'static SqlInfoData {
    &SQL_INFO
}
