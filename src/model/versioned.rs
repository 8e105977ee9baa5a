//! Versioned tables (context and master data): rows are never overwritten.
//!
//! Storage: a versioned table's segments, WAL records and write buffer hold
//! the user columns of [`TableDef::schema`] followed by four hidden version
//! columns, [`VERSION_COLUMNS`]: `recorded_at` (server time of the write),
//! `recorded_by` (the authenticated user), `reason` (null for a first insert)
//! and `op` (`insert`, `update` or `delete`; a delete is a tombstone that
//! repeats the deleted row's values). Rows are kept in write order (segments
//! in manifest order, each sorted stably by key, then the buffer), so the
//! newest version of a key is simply its last row: `X` shows that row unless
//! it is a tombstone, `X_history` shows every row with the version columns.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampNanosecondArray, UInt32Array,
};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::row::{RowConverter, Rows, SortField};

use super::{KeyPolicy, TableDef, UTC, ts_type};

/// The hidden columns every version row carries, after the user columns.
pub const VERSION_COLUMNS: [&str; 4] = ["recorded_at", "recorded_by", "reason", "op"];

/// Suffix of the table that shows every version of a versioned table.
pub const HISTORY_SUFFIX: &str = "_history";

/// What a version row did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The key had no current version.
    Insert,
    /// The key had one; this row replaces it.
    Update,
    /// Tombstone: the key has no current version after this row.
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    /// Whether this op changes a record that existed, and so needs a reason.
    pub fn needs_reason(self) -> bool {
        self != Op::Insert
    }
}

/// Who made a set of version rows, when and why.
#[derive(Debug, Clone)]
pub struct Stamp<'a> {
    pub recorded_at: i64,
    pub recorded_by: &'a str,
    pub reason: Option<&'a str>,
}

impl TableDef {
    pub fn is_versioned(&self) -> bool {
        self.key_policy == KeyPolicy::Versioned
    }
}

fn version_fields() -> [Field; 4] {
    [
        Field::new("recorded_at", ts_type(), false),
        Field::new("recorded_by", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, true),
        Field::new("op", DataType::Utf8, false),
    ]
}

static STORED: LazyLock<HashMap<&'static str, SchemaRef>> = LazyLock::new(|| {
    super::tables()
        .into_iter()
        .map(|def| {
            let schema = if def.is_versioned() {
                for name in VERSION_COLUMNS {
                    assert!(
                        def.schema.index_of(name).is_err(),
                        "{}.{name} clashes with a version column",
                        def.name
                    );
                }
                let mut fields: Vec<Field> = def
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone())
                    .collect();
                fields.extend(version_fields());
                Arc::new(Schema::new(fields))
            } else {
                def.schema.clone()
            };
            (def.name, schema)
        })
        .collect()
});

/// The schema rows of `def` have in the WAL, the buffer and segments: the
/// user columns, plus [`VERSION_COLUMNS`] for a versioned table.
pub fn stored_schema(def: &TableDef) -> SchemaRef {
    STORED
        .get(def.name)
        .cloned()
        .expect("every table has a stored schema")
}

/// Appends the version columns to `batch` (which has `def.schema`).
pub fn stamp(
    def: &TableDef,
    batch: &RecordBatch,
    ops: &[Op],
    stamp: &Stamp<'_>,
) -> Result<RecordBatch, ArrowError> {
    assert!(def.is_versioned(), "{} is not versioned", def.name);
    assert_eq!(ops.len(), batch.num_rows(), "one op per row");
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(
        TimestampNanosecondArray::from(vec![stamp.recorded_at; n]).with_timezone(UTC),
    ));
    columns.push(Arc::new(StringArray::from(vec![stamp.recorded_by; n])));
    columns.push(Arc::new(StringArray::from(vec![stamp.reason; n])));
    columns.push(Arc::new(StringArray::from_iter_values(
        ops.iter().map(|op| op.as_str()),
    )));
    RecordBatch::try_new(stored_schema(def), columns)
}

/// The key columns of `batch` (user or stored schema) as comparable rows.
pub fn key_rows(def: &TableDef, batch: &RecordBatch) -> Result<Rows, ArrowError> {
    let columns: Vec<ArrayRef> = def
        .key
        .iter()
        .map(|k| batch.column_by_name(k).expect("key column").clone())
        .collect();
    let converter = RowConverter::new(
        columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )?;
    converter.convert_columns(&columns)
}

/// Describes row `row`'s key for messages: `id='E1'`, `equipment='u1', start_ts=…`.
pub fn describe_key(def: &TableDef, batch: &RecordBatch, row: usize) -> String {
    def.key
        .iter()
        .map(|k| {
            let column = batch.column(def.column_index(k).expect("key column"));
            let value = arrow::util::display::array_value_to_string(column, row)
                .unwrap_or_else(|_| "?".into());
            format!("{k}='{value}'")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether row `row` of a stored batch is a tombstone.
pub fn is_tombstone(batch: &RecordBatch, row: usize) -> bool {
    op_column(batch).value(row) == Op::Delete.as_str()
}

fn op_column(batch: &RecordBatch) -> &StringArray {
    batch
        .column_by_name("op")
        .expect("stored versioned batch has an op column")
        .as_string::<i32>()
}

/// The current version of every key: the last row per key of `batches`
/// (stored schema, in write order), tombstoned keys left out, projected to
/// the user columns (`def.schema`), in write order of those last rows.
pub fn resolve_current(def: &TableDef, batches: &[RecordBatch]) -> Result<RecordBatch, ArrowError> {
    assert!(def.is_versioned(), "{} is not versioned", def.name);
    let all = concat_batches(&stored_schema(def), batches)?;
    let keys = key_rows(def, &all)?;
    let ops = op_column(&all);
    let mut seen = std::collections::HashSet::with_capacity(all.num_rows());
    // Walk backwards: the first row met per key is its newest version.
    let mut keep: Vec<u32> = (0..all.num_rows())
        .rev()
        .filter(|&i| seen.insert(keys.row(i)) && ops.value(i) != Op::Delete.as_str())
        .map(|i| i as u32)
        .collect();
    keep.reverse();
    let current = take_record_batch(&all, &UInt32Array::from(keep))?;
    let user: Vec<usize> = (0..def.schema.fields().len()).collect();
    let projected = current.project(&user)?;
    RecordBatch::try_new(def.schema.clone(), projected.columns().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{self, normalize_batch};

    fn equipment(ids: &[&str], names: &[&str]) -> RecordBatch {
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(StringArray::from(ids.to_vec())) as ArrayRef),
            (
                "name",
                Arc::new(StringArray::from(names.to_vec())) as ArrayRef,
            ),
        ])
        .unwrap();
        normalize_batch(model::table("equipment").unwrap(), &batch, 0).unwrap()
    }

    fn write(ids: &[&str], names: &[&str], op: Op, at: i64) -> RecordBatch {
        let def = model::table("equipment").unwrap();
        let stamp_ = Stamp {
            recorded_at: at,
            recorded_by: "alice",
            reason: op.needs_reason().then_some("fix"),
        };
        stamp(def, &equipment(ids, names), &vec![op; ids.len()], &stamp_).unwrap()
    }

    fn names(batch: &RecordBatch) -> Vec<(String, String)> {
        let ids = batch.column(0).as_string::<i32>();
        let names = batch.column(1).as_string::<i32>();
        (0..batch.num_rows())
            .map(|i| (ids.value(i).to_string(), names.value(i).to_string()))
            .collect()
    }

    #[test]
    fn newest_version_wins_and_tombstones_hide_keys() {
        let def = model::table("equipment").unwrap();
        let batches = [
            write(&["a", "b", "c"], &["A1", "B1", "C1"], Op::Insert, 1),
            write(&["a"], &["A2"], Op::Update, 2),
            write(&["b"], &["B1"], Op::Delete, 3),
            write(&["a"], &["A3"], Op::Update, 4),
        ];
        let current = resolve_current(def, &batches).unwrap();
        assert_eq!(current.schema(), def.schema, "user columns only");
        let mut got = names(&current);
        got.sort();
        assert_eq!(got, [("a".into(), "A3".into()), ("c".into(), "C1".into())]);
    }

    #[test]
    fn a_key_deleted_and_inserted_again_is_current() {
        let def = model::table("equipment").unwrap();
        let batches = [
            write(&["a"], &["A1"], Op::Insert, 1),
            write(&["a"], &["A1"], Op::Delete, 2),
            write(&["a"], &["A9"], Op::Insert, 3),
        ];
        assert_eq!(
            names(&resolve_current(def, &batches).unwrap()),
            [("a".into(), "A9".into())]
        );
        let gone = resolve_current(def, &batches[..2]).unwrap();
        assert_eq!(gone.num_rows(), 0);
    }

    #[test]
    fn within_one_batch_the_later_row_wins() {
        let def = model::table("equipment").unwrap();
        let batch = stamp(
            def,
            &equipment(&["a", "a"], &["first", "second"]),
            &[Op::Insert, Op::Update],
            &Stamp {
                recorded_at: 1,
                recorded_by: "bob",
                reason: Some("r"),
            },
        )
        .unwrap();
        assert_eq!(
            names(&resolve_current(def, &[batch.clone()]).unwrap()),
            [("a".into(), "second".into())]
        );
        assert!(!is_tombstone(&batch, 1));
        assert_eq!(describe_key(def, &batch, 0), "id='a'");
    }

    #[test]
    fn stored_schema_is_user_columns_then_version_columns() {
        for def in model::tables() {
            let stored = stored_schema(def);
            let n = def.schema.fields().len();
            assert_eq!(&stored.fields()[..n], &def.schema.fields()[..]);
            let extra: Vec<&str> = stored.fields()[n..]
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            if def.is_versioned() {
                assert_eq!(extra, VERSION_COLUMNS);
            } else {
                assert!(extra.is_empty());
            }
        }
    }
}
