//! A document's rows against what lotline has: each row's missing columns
//! ([`Cell::Keep`]) take the current version's values, and a row equal to
//! its current version is left out, so importing the same document twice
//! changes nothing the second time.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow::datatypes::{DataType, Float64Type, TimestampNanosecondType};

use super::B2mmlError;
use super::inbound::{Cell, Part};
use crate::model::{TableDef, UTC};

/// A stored value of the column types master data uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Number(f64),
    Time(i64),
}

/// Current rows of a table by key (key columns joined by a NUL).
pub type Current = HashMap<String, Vec<Value>>;

fn key_text(def: &TableDef, row: &[Value]) -> String {
    let parts: Vec<&str> = def
        .key
        .iter()
        .map(|k| match &row[def.column_index(k).expect("key column")] {
            Value::Text(t) => t.as_str(),
            _ => "",
        })
        .collect();
    parts.join("\0")
}

/// The current rows (user schema) of `def` by key.
pub fn current(def: &TableDef, batch: &RecordBatch) -> Result<Current, B2mmlError> {
    let mut rows = vec![Vec::with_capacity(def.schema.fields().len()); batch.num_rows()];
    for field in def.schema.fields() {
        let column = batch.column_by_name(field.name()).ok_or_else(|| {
            B2mmlError::Internal(format!("{} has no column {}", def.name, field.name()))
        })?;
        for (i, row) in rows.iter_mut().enumerate() {
            row.push(value(column, i)?);
        }
    }
    Ok(rows.into_iter().map(|r| (key_text(def, &r), r)).collect())
}

fn value(column: &ArrayRef, i: usize) -> Result<Value, B2mmlError> {
    if column.is_null(i) {
        return Ok(Value::Null);
    }
    Ok(match column.data_type() {
        DataType::Utf8 => Value::Text(column.as_string::<i32>().value(i).to_string()),
        DataType::Float64 => Value::Number(column.as_primitive::<Float64Type>().value(i)),
        DataType::Timestamp(_, _) => {
            Value::Time(column.as_primitive::<TimestampNanosecondType>().value(i))
        }
        other => {
            return Err(B2mmlError::Internal(format!(
                "a master data column of type {other} is not mapped"
            )));
        }
    })
}

/// The rows of `part` that change `def` (merged with `current`), as a batch
/// in `def`'s user schema; `None` when nothing changes. Two rows of the
/// document with one key are refused.
pub fn changes(
    def: &'static TableDef,
    part: &Part,
    current: &Current,
) -> Result<Option<RecordBatch>, B2mmlError> {
    let fields = def.schema.fields();
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut changed: Vec<Vec<Value>> = Vec::new();
    for row in &part.rows {
        let mut values = vec![None; fields.len()];
        for (column, cell) in &row.cells {
            let at = def.column_index(column).ok_or_else(|| {
                B2mmlError::Internal(format!("{} has no column {column}", def.name))
            })?;
            values[at] = match cell {
                Cell::Keep => None,
                Cell::Text(t) => Some(Value::Text(t.clone())),
                Cell::Number(n) => Some(Value::Number(*n)),
                Cell::Time(t) => Some(Value::Time(*t)),
                Cell::Id(_) => unreachable!("ids are resolved before merging"),
            };
        }
        let key_only: Vec<Value> = values
            .iter()
            .map(|v| v.clone().unwrap_or(Value::Null))
            .collect();
        let key = key_text(def, &key_only);
        if let Some(first) = seen.insert(key.clone(), &row.path) {
            return Err(B2mmlError::Invalid {
                path: row.path.clone(),
                line: row.line,
                problem: format!(
                    "names the same {} record as {first} ({}): one document gives each record once",
                    def.name,
                    key.replace('\0', ", ")
                ),
            });
        }
        let existing = current.get(&key);
        let merged: Vec<Value> = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.unwrap_or_else(|| existing.map_or(Value::Null, |e| e[i].clone())))
            .collect();
        if existing != Some(&merged) {
            changed.push(merged);
        }
    }
    if changed.is_empty() {
        return Ok(None);
    }
    let columns: Vec<ArrayRef> = fields
        .iter()
        .enumerate()
        .map(|(i, field)| column(field.data_type(), changed.iter().map(|r| &r[i])))
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(def.schema.clone(), columns)
        .map(Some)
        .map_err(|e| B2mmlError::Internal(e.to_string()))
}

fn column<'a>(
    data_type: &DataType,
    values: impl Iterator<Item = &'a Value>,
) -> Result<ArrayRef, B2mmlError> {
    let mismatch = |v: &Value| B2mmlError::Internal(format!("{v:?} in a {data_type} column"));
    Ok(match data_type {
        DataType::Utf8 => Arc::new(
            values
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Text(t) => Ok(Some(t.clone())),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<StringArray, _>>()?,
        ),
        DataType::Float64 => Arc::new(
            values
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Number(n) => Ok(Some(*n)),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<Float64Array, _>>()?,
        ),
        DataType::Timestamp(_, _) => Arc::new(
            values
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Time(t) => Ok(Some(*t)),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<TimestampNanosecondArray, _>>()?
                .with_timezone(UTC),
        ),
        other => {
            return Err(B2mmlError::Internal(format!(
                "a {other} column is not mapped"
            )));
        }
    })
}
