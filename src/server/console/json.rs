//! Query results as JSON for the console's API: a value per cell with the
//! JSON type a script expects (numbers, booleans, strings, arrays for
//! lists), timestamps as RFC 3339 text in UTC.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Number, Value};

/// Rows of `batches` as JSON objects keyed by column name, at most `limit`.
/// Also returns whether rows were left out.
pub fn objects(batches: &[RecordBatch], limit: usize) -> (Vec<Value>, bool) {
    let mut rows = Vec::new();
    let mut truncated = false;
    for batch in batches {
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for row in 0..batch.num_rows() {
            if rows.len() == limit {
                truncated = true;
                break;
            }
            let mut object = Map::new();
            for (name, column) in names.iter().zip(batch.columns()) {
                object.insert(name.clone(), cell(column, row));
            }
            rows.push(Value::Object(object));
        }
    }
    (rows, truncated)
}

/// Rows of `batches` as arrays in column order, at most `limit`, with the
/// column names; for a result table whose columns a client does not know.
pub fn table(batches: &[RecordBatch], limit: usize) -> (Vec<String>, Vec<Value>, bool) {
    let columns = batches.first().map_or_else(Vec::new, |b| {
        b.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    });
    let mut rows = Vec::new();
    let mut truncated = false;
    'batches: for batch in batches {
        for row in 0..batch.num_rows() {
            if rows.len() == limit {
                truncated = true;
                break 'batches;
            }
            rows.push(Value::Array(
                batch.columns().iter().map(|c| cell(c, row)).collect(),
            ));
        }
    }
    (columns, rows, truncated)
}

/// One cell as JSON. Non-finite floats become the strings `NaN`, `inf`,
/// `-inf` (JSON has no number for them).
pub fn cell(column: &ArrayRef, row: usize) -> Value {
    if column.is_null(row) {
        return Value::Null;
    }
    match column.data_type() {
        DataType::Boolean => Value::Bool(column.as_boolean().value(row)),
        DataType::Float64 => float(column.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => float(f64::from(column.as_primitive::<Float32Type>().value(row))),
        t if t.is_integer() => formatted(column, row)
            .parse::<Number>()
            .map_or_else(|_| Value::String(formatted(column, row)), Value::Number),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let values = match column.data_type() {
                DataType::List(_) => column.as_list::<i32>().value(row),
                DataType::LargeList(_) => column.as_list::<i64>().value(row),
                _ => column.as_fixed_size_list().value(row),
            };
            Value::Array((0..values.len()).map(|i| cell(&values, i)).collect())
        }
        _ => Value::String(formatted(column, row)),
    }
}

fn float(x: f64) -> Value {
    Number::from_f64(x).map_or_else(|| Value::String(x.to_string()), Value::Number)
}

fn formatted(column: &ArrayRef, row: usize) -> String {
    let options = FormatOptions::default();
    ArrayFormatter::try_new(column.as_ref(), &options)
        .map(|f| f.value(row).to_string())
        .unwrap_or_else(|e| format!("<{e}>"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        BooleanArray, Float64Array, ListArray, StringArray, TimestampNanosecondArray, UInt32Array,
    };
    use arrow::datatypes::Int32Type;
    use serde_json::json;

    use super::*;

    #[test]
    fn cells_keep_their_json_types() {
        let ts: ArrayRef = Arc::new(
            TimestampNanosecondArray::from(vec![1_700_000_000_123_456_789]).with_timezone("UTC"),
        );
        assert_eq!(cell(&ts, 0), json!("2023-11-14T22:13:20.123456789Z"));
        let v: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.5), Some(f64::NAN), None]));
        assert_eq!(cell(&v, 0), json!(1.5));
        assert_eq!(cell(&v, 1), json!("NaN"));
        assert_eq!(cell(&v, 2), Value::Null);
        let q: ArrayRef = Arc::new(UInt32Array::from(vec![0x8000_0000u32]));
        assert_eq!(cell(&q, 0), json!(2_147_483_648u64));
        let b: ArrayRef = Arc::new(BooleanArray::from(vec![true]));
        assert_eq!(cell(&b, 0), json!(true));
        let s: ArrayRef = Arc::new(StringArray::from(vec!["L-1"]));
        assert_eq!(cell(&s, 0), json!("L-1"));
        let l: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
        ]));
        assert_eq!(cell(&l, 0), json!([1, null]));
    }

    #[test]
    fn a_limit_leaves_rows_out_and_says_so() {
        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])) as ArrayRef,
        )])
        .unwrap();
        let (rows, truncated) = objects(std::slice::from_ref(&batch), 2);
        assert_eq!(rows, vec![json!({"x": 1.0}), json!({"x": 2.0})]);
        assert!(truncated);
        let (columns, rows, truncated) = table(&[batch], 10);
        assert_eq!(columns, vec!["x"]);
        assert_eq!(rows.len(), 3);
        assert!(!truncated);
    }
}
