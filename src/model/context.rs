//! Production context and master data (ARCHITECTURE.md, data model):
//! `equipment` (the ISA-95 tree), `work_orders`, `lots`, `production_runs`
//! and `genealogy`. Columns, keys and rules are data; the write path, the
//! segments, the WAL and the query catalog pick them up from here.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema};

use super::{Cache, KeyPolicy, Rule, TableDef, ts_type};

/// How every context table treats a rewrite of an existing key: a new version
/// (`X_history`, reasons, tombstones), never an overwrite.
pub const CONTEXT_KEY_POLICY: KeyPolicy = KeyPolicy::Versioned;

/// ISA-95 equipment hierarchy levels, top down.
pub const ISA95_LEVELS: &[&str] = &["enterprise", "site", "area", "work_center", "work_unit"];

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, ts_type(), nullable)
}

fn quantity() -> Field {
    Field::new("quantity", DataType::Float64, true)
}

pub(super) static EQUIPMENT: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "equipment",
    schema: Arc::new(Schema::new(vec![
        utf8("id", false),
        utf8("name", true),
        utf8("parent_id", true),
        utf8("level", true),
    ])),
    key: &["id"],
    time_column: None,
    range_column: "id",
    bloom_columns: &["id"],
    key_policy: CONTEXT_KEY_POLICY,
    rules: &[Rule::NotEmpty("id"), Rule::OneOf("level", ISA95_LEVELS)],
    caches: &[],
});

pub(super) static WORK_ORDERS: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "work_orders",
    schema: Arc::new(Schema::new(vec![
        utf8("id", false),
        utf8("material", true),
        quantity(),
        utf8("uom", true),
        utf8("status", true),
        ts("planned_start", true),
        ts("planned_end", true),
        ts("actual_start", true),
        ts("actual_end", true),
    ])),
    key: &["id"],
    time_column: None,
    range_column: "id",
    bloom_columns: &["id"],
    key_policy: CONTEXT_KEY_POLICY,
    rules: &[
        Rule::NotEmpty("id"),
        Rule::NonNegative("quantity"),
        Rule::NotBeforeEpoch("planned_start"),
        Rule::NotBeforeEpoch("planned_end"),
        Rule::NotBeforeEpoch("actual_start"),
        Rule::NotBeforeEpoch("actual_end"),
        Rule::NotBefore {
            later: "planned_end",
            earlier: "planned_start",
        },
        Rule::NotBefore {
            later: "actual_end",
            earlier: "actual_start",
        },
    ],
    caches: &[],
});

pub(super) static LOTS: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "lots",
    schema: Arc::new(Schema::new(vec![
        utf8("id", false),
        utf8("material", true),
        quantity(),
        utf8("uom", true),
        utf8("status", true),
        utf8("work_order", true),
        ts("created_at", true),
    ])),
    key: &["id"],
    time_column: None,
    range_column: "id",
    bloom_columns: &["id", "work_order"],
    key_policy: CONTEXT_KEY_POLICY,
    rules: &[
        Rule::NotEmpty("id"),
        Rule::NonNegative("quantity"),
        Rule::NotBeforeEpoch("created_at"),
    ],
    caches: &[],
});

pub(super) static PRODUCTION_RUNS: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "production_runs",
    schema: Arc::new(Schema::new(vec![
        utf8("equipment", false),
        utf8("work_order", true),
        utf8("lot", true),
        utf8("operation", true),
        ts("start_ts", false),
        // Null while the run is going on.
        ts("end_ts", true),
    ])),
    key: &["equipment", "start_ts"],
    time_column: Some("start_ts"),
    range_column: "equipment",
    bloom_columns: &["equipment", "lot", "work_order"],
    key_policy: CONTEXT_KEY_POLICY,
    rules: &[
        Rule::NotEmpty("equipment"),
        Rule::NotBeforeEpoch("start_ts"),
        Rule::NotBeforeEpoch("end_ts"),
        Rule::NotBefore {
            later: "end_ts",
            earlier: "start_ts",
        },
    ],
    caches: &[Cache::Stamping],
});

pub(super) static GENEALOGY: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "genealogy",
    schema: Arc::new(Schema::new(vec![
        utf8("input_lot", false),
        utf8("output_lot", false),
        quantity(),
        utf8("uom", true),
        ts("ts", false),
        utf8("work_order", true),
        utf8("equipment", true),
    ])),
    key: &["input_lot", "output_lot", "ts"],
    time_column: Some("ts"),
    range_column: "input_lot",
    bloom_columns: &["input_lot", "output_lot", "work_order"],
    key_policy: CONTEXT_KEY_POLICY,
    rules: &[
        Rule::NotEmpty("input_lot"),
        Rule::NotEmpty("output_lot"),
        Rule::NonNegative("quantity"),
        Rule::NotBeforeEpoch("ts"),
    ],
    caches: &[Cache::Genealogy],
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{self, normalize_batch};
    use arrow::array::{RecordBatch, StringArray, TimestampNanosecondArray};

    #[test]
    fn rules_name_row_column_and_value() {
        let bad_level = RecordBatch::try_from_iter([
            ("id", Arc::new(StringArray::from(vec!["e", "s"])) as _),
            (
                "level",
                Arc::new(StringArray::from(vec!["enterprise", "plant"])) as _,
            ),
        ])
        .unwrap();
        let err = normalize_batch(&EQUIPMENT, &bad_level, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("row 1") && err.contains("'level'") && err.contains("plant"),
            "{err}"
        );

        let backwards = RecordBatch::try_from_iter([
            (
                "equipment",
                Arc::new(StringArray::from(vec!["u1", "u1"])) as _,
            ),
            (
                "start_ts",
                Arc::new(TimestampNanosecondArray::from(vec![10, 20]).with_timezone("UTC")) as _,
            ),
            (
                "end_ts",
                Arc::new(
                    TimestampNanosecondArray::from(vec![Some(20), Some(19)]).with_timezone("UTC"),
                ) as _,
            ),
        ])
        .unwrap();
        let err = normalize_batch(&PRODUCTION_RUNS, &backwards, 5)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("row 6") && err.contains("'end_ts'") && err.contains("start_ts"),
            "{err}"
        );
    }

    #[test]
    fn wal_ids_of_the_first_tables_never_move() {
        let names: Vec<&str> = model::tables().iter().map(|t| t.name).collect();
        assert_eq!(&names[..2], &["samples", "tags"]);
        for def in model::tables() {
            for key in def.key {
                let field = def.schema.field_with_name(key).expect("key column");
                assert!(!field.is_nullable(), "{}.{key} is a key", def.name);
            }
            if let Some(time) = def.time_column {
                assert!(!def.schema.field_with_name(time).unwrap().is_nullable());
            }
            assert_eq!(def.key[0], def.range_column, "{}", def.name);
        }
    }
}
