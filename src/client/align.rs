//! Matching a file's columns to a table's: by name (case-insensitive when
//! unambiguous), cast to the table's types, first bad value reported with its
//! row and column.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{FormatOptions, array_value_to_string};

use super::ClientError;

/// Maps file columns onto table columns by name and casts them to the table's
/// types, reporting the first bad value with its row and column.
pub(crate) struct Aligner {
    /// (column index in the file, table field), in table column order.
    plan: Vec<(usize, FieldRef)>,
    schema: SchemaRef,
    file: String,
}

impl Aligner {
    pub(crate) fn new(
        source: &Schema,
        target: &Schema,
        file: &str,
        table: &str,
    ) -> Result<Self, ClientError> {
        let mut pairs: Vec<(usize, usize)> = Vec::new(); // (target index, source index)
        for (si, field) in source.fields().iter().enumerate() {
            let name = field.name();
            let found = target.index_of(name).ok().or_else(|| {
                let mut matches = target
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.name().eq_ignore_ascii_case(name));
                match (matches.next(), matches.next()) {
                    (Some((i, _)), None) => Some(i),
                    _ => None,
                }
            });
            let Some(ti) = found else {
                let known: Vec<&str> = target.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(ClientError::UnknownColumn {
                    file: file.to_string(),
                    column: name.to_string(),
                    table: table.to_string(),
                    known: known.join(", "),
                });
            };
            if pairs.iter().any(|(t, _)| *t == ti) {
                return Err(ClientError::BadFile {
                    file: file.to_string(),
                    message: format!(
                        "column '{}' appears more than once",
                        target.field(ti).name()
                    ),
                });
            }
            pairs.push((ti, si));
        }
        if pairs.is_empty() {
            return Err(ClientError::BadFile {
                file: file.to_string(),
                message: "the file has no columns".to_string(),
            });
        }
        pairs.sort_by_key(|(t, _)| *t);
        let plan: Vec<(usize, FieldRef)> = pairs
            .iter()
            .map(|(t, s)| (*s, target.fields()[*t].clone()))
            .collect();
        let fields: Vec<FieldRef> = plan.iter().map(|(_, f)| f.clone()).collect();
        Ok(Aligner {
            plan,
            schema: Arc::new(Schema::new(fields)),
            file: file.to_string(),
        })
    }

    /// Align one batch whose first row is data row `first_row + 1`.
    pub(crate) fn apply(
        &self,
        batch: &RecordBatch,
        first_row: u64,
    ) -> Result<RecordBatch, ClientError> {
        let strict = CastOptions {
            safe: false,
            format_options: FormatOptions::default(),
        };
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.plan.len());
        for (src, field) in &self.plan {
            let array = batch.column(*src);
            let converted = if array.data_type() == field.data_type() {
                array.clone()
            } else {
                cast_with_options(array.as_ref(), field.data_type(), &strict)
                    .map_err(|e| self.bad_value(array, field, first_row, e))?
            };
            if !field.is_nullable() && converted.null_count() > 0 {
                let i = (0..converted.len())
                    .find(|&i| converted.is_null(i))
                    .unwrap_or(0);
                return Err(ClientError::BadValue {
                    file: self.file.clone(),
                    row: first_row + i as u64 + 1,
                    column: field.name().clone(),
                    message: "a value is required (the column is not nullable)".to_string(),
                });
            }
            columns.push(converted);
        }
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| ClientError::arrow(format!("{}: building a batch", self.file), e))
    }

    /// Find the first value the strict cast rejected by re-running it
    /// leniently: that value is non-null in the input and null in the output.
    fn bad_value(
        &self,
        array: &ArrayRef,
        field: &Field,
        first_row: u64,
        err: ArrowError,
    ) -> ClientError {
        let lenient = CastOptions {
            safe: true,
            format_options: FormatOptions::default(),
        };
        if let Ok(out) = cast_with_options(array.as_ref(), field.data_type(), &lenient) {
            if let Some(i) = (0..array.len()).find(|&i| array.is_valid(i) && out.is_null(i)) {
                let mut shown = array_value_to_string(array.as_ref(), i).unwrap_or_default();
                if shown.chars().count() > 80 {
                    shown = shown.chars().take(77).collect::<String>() + "...";
                }
                return ClientError::BadValue {
                    file: self.file.clone(),
                    row: first_row + i as u64 + 1,
                    column: field.name().clone(),
                    message: format!("cannot convert '{shown}' to {}", field.data_type()),
                };
            }
        }
        ClientError::arrow(format!("{}: column '{}'", self.file, field.name()), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, TimeUnit};

    fn target() -> Schema {
        Schema::new(vec![
            Field::new("tag", DataType::Utf8, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Field::new("value", DataType::Float64, true),
        ])
    }

    fn text_batch(cols: &[(&str, Vec<Option<&str>>)]) -> RecordBatch {
        let fields: Vec<Field> = cols
            .iter()
            .map(|(n, _)| Field::new(*n, DataType::Utf8, true))
            .collect();
        let arrays: Vec<ArrayRef> = cols
            .iter()
            .map(|(_, v)| Arc::new(StringArray::from(v.clone())) as ArrayRef)
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    #[test]
    fn casts_to_table_types_in_table_order() {
        let batch = text_batch(&[
            ("value", vec![Some("1.5"), None]),
            (
                "ts",
                vec![Some("2026-01-01T00:00:00Z"), Some("2026-01-01T00:00:01Z")],
            ),
            ("TAG", vec![Some("a"), Some("b")]),
        ]);
        let aligner = Aligner::new(&batch.schema(), &target(), "f.csv", "samples").unwrap();
        let out = aligner.apply(&batch, 0).unwrap();
        assert_eq!(out.schema().field(0).name(), "tag");
        assert_eq!(out.column(1).data_type(), target().field(1).data_type());
        assert_eq!(out.column(2).null_count(), 1);
    }

    #[test]
    fn names_the_bad_row_and_column() {
        let batch = text_batch(&[
            ("tag", vec![Some("a"), Some("b")]),
            (
                "ts",
                vec![Some("2026-01-01T00:00:00Z"), Some("2026-01-01T00:00:01Z")],
            ),
            ("value", vec![Some("1.5"), Some("oops")]),
        ]);
        let aligner = Aligner::new(&batch.schema(), &target(), "f.csv", "samples").unwrap();
        match aligner.apply(&batch, 10) {
            Err(ClientError::BadValue { row, column, .. }) => {
                assert_eq!(row, 12);
                assert_eq!(column, "value");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_unknown_columns() {
        let batch = text_batch(&[("tag", vec![Some("a")]), ("colour", vec![Some("red")])]);
        let err = Aligner::new(&batch.schema(), &target(), "f.csv", "samples").err();
        assert!(
            matches!(err, Some(ClientError::UnknownColumn { ref column, .. }) if column == "colour")
        );
    }
}
