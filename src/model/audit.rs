//! `audit_log` (ARCHITECTURE.md, data model): the hash-chained audit trail.
//! Written only by the server (see `crate::audit`); clients read it, and any
//! client write to it is refused by the engine.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema};

use super::{KeyPolicy, TableDef, ts_type};

pub const TABLE_NAME: &str = "audit_log";

pub(super) static AUDIT_LOG: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: TABLE_NAME,
    schema: Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("ts", ts_type(), false),
        Field::new("actor", DataType::Utf8, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, true),
        Field::new("row_count", DataType::UInt64, true),
        Field::new("detail", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("prev_hash", DataType::Binary, false),
        Field::new("hash", DataType::Binary, false),
    ])),
    key: &["seq"],
    // No time partitions: one segment per flush, in seq order, so the chain
    // head after a restart is the last row of the last segment.
    time_column: None,
    range_column: "seq",
    bloom_columns: &[],
    key_policy: KeyPolicy::AppendOnly,
    rules: &[],
    caches: &[],
});
