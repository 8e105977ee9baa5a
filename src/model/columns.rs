//! Typed access to the columns of stored rows. Rows read back from segments
//! or the WAL are expected to have their table's schema, but a file that was
//! replaced or damaged on disk may not: a wrong or missing column is an
//! error that names the table and column, never a panic.

use arrow::array::{ArrayRef, AsArray, PrimitiveArray, RecordBatch, StringArray};
use arrow::datatypes::ArrowPrimitiveType;

/// A stored batch without a column of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored rows of table '{table}' have no column '{column}' of type {expected}")]
pub struct ColumnError {
    pub table: &'static str,
    pub column: &'static str,
    pub expected: String,
}

/// Column `name` of `batch` as the array type `cast` gives.
fn typed<'a, T: 'a>(
    batch: &'a RecordBatch,
    table: &'static str,
    name: &'static str,
    expected: impl FnOnce() -> String,
    cast: impl FnOnce(&'a ArrayRef) -> Option<&'a T>,
) -> Result<&'a T, ColumnError> {
    batch
        .column_by_name(name)
        .and_then(cast)
        .ok_or_else(|| ColumnError {
            table,
            column: name,
            expected: expected(),
        })
}

/// Column `name` of `batch` as UTF-8 strings.
pub fn strings<'a>(
    batch: &'a RecordBatch,
    table: &'static str,
    name: &'static str,
) -> Result<&'a StringArray, ColumnError> {
    typed(
        batch,
        table,
        name,
        || "Utf8".into(),
        |c| c.as_string_opt::<i32>(),
    )
}

/// Column `name` of `batch` as primitives of type `T`.
pub fn primitives<'a, T: ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    table: &'static str,
    name: &'static str,
) -> Result<&'a PrimitiveArray<T>, ColumnError> {
    typed(
        batch,
        table,
        name,
        || T::DATA_TYPE.to_string(),
        |c| c.as_primitive_opt::<T>(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::Float64Type;

    use super::*;

    #[test]
    fn a_wrong_or_missing_column_is_an_error_naming_it() {
        let batch =
            RecordBatch::try_from_iter([("value", Arc::new(Int64Array::from(vec![1])) as _)])
                .unwrap();
        let error = primitives::<Float64Type>(&batch, "samples", "value").unwrap_err();
        assert_eq!(
            error.to_string(),
            "stored rows of table 'samples' have no column 'value' of type Float64"
        );
        assert!(strings(&batch, "samples", "tag").is_err());
        assert_eq!(
            primitives::<arrow::datatypes::Int64Type>(&batch, "samples", "value")
                .unwrap()
                .len(),
            1
        );
    }
}
