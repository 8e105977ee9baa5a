//! Validation and normalisation of incoming batches against a [`TableDef`].
//!
//! A writer may send any column order, omit nullable columns, and use wider or
//! narrower compatible types (timestamps in any unit, integers for floats); the
//! result is a batch with exactly the table's schema. Anything else is an error
//! naming the row, column and value, and the caller rejects the whole request.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array, new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Float64Type, TimestampNanosecondType};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::{MAX_NAME_BYTES, Rule, TableDef, is_good, units};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValidationError {
    #[error("table '{table}' has no column '{column}' (columns: {known})")]
    UnknownColumn {
        table: String,
        column: String,
        known: String,
    },
    #[error("table '{table}': required column '{column}' is missing")]
    MissingColumn { table: String, column: String },
    #[error("column '{column}' has type {found}, expected {expected}")]
    WrongType {
        column: String,
        found: String,
        expected: String,
    },
    #[error("row {row}, column '{column}': value {value} {problem}")]
    BadValue {
        row: usize,
        column: String,
        value: String,
        problem: String,
    },
    #[error("row {row}, column '{column}': null in a non-nullable column")]
    Null { row: usize, column: String },
    #[error("table '{table}': column '{column}' is sent more than once; send each column once")]
    DuplicateColumn { table: String, column: String },
}

/// Values of a table's current rows that its rules refuse today (a unit
/// written before units were codes), by (key, column, value): a write may
/// carry such a value on unchanged (an update of another column, a
/// delete), never set it anew.
#[derive(Debug, Default)]
pub struct Grandfathered(HashSet<(String, &'static str, String)>);

impl Grandfathered {
    /// The refused values of `current` (rows of `def`, user schema).
    pub fn of(def: &TableDef, current: &RecordBatch) -> Self {
        let mut kept = HashSet::new();
        for rule in def.rules {
            let Rule::UnitCode(name) = *rule else {
                continue;
            };
            let Ok(at) = current.schema().index_of(name) else {
                continue;
            };
            let Some(units) = current.column(at).as_string_opt::<i32>() else {
                continue;
            };
            for (row, unit) in units.iter().enumerate() {
                if let Some(unit) = unit.filter(|u| units::code_of(u).is_err()) {
                    kept.insert((row_key(def, current.columns(), row), name, unit.to_string()));
                }
            }
        }
        Self(kept)
    }

    fn keeps(&self, key: String, column: &'static str, value: &str) -> bool {
        !self.0.is_empty() && self.0.contains(&(key, column, value.to_string()))
    }
}

/// The key of row `row` of `columns` (in `def`'s column order) as text.
fn row_key(def: &TableDef, columns: &[ArrayRef], row: usize) -> String {
    def.key
        .iter()
        .map(|k| {
            let column = columns[def.column_index(k).expect("key column")].as_ref();
            ArrayFormatter::try_new(column, &FormatOptions::default())
                .map(|f| f.value(row).to_string())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// Returns `batch` converted to `def.schema`, or the first problem found.
/// `row_offset` is added to row numbers in errors (rows of earlier batches of
/// the same request).
pub fn normalize_batch(
    def: &TableDef,
    batch: &RecordBatch,
    row_offset: usize,
) -> Result<RecordBatch, ValidationError> {
    normalize_batch_keeping(def, batch, row_offset, &Grandfathered::default())
}

/// [`normalize_batch`] that lets the values `kept` names through.
pub fn normalize_batch_keeping(
    def: &TableDef,
    batch: &RecordBatch,
    row_offset: usize,
    kept: &Grandfathered,
) -> Result<RecordBatch, ValidationError> {
    let input = batch.schema();
    for (i, field) in input.fields().iter().enumerate() {
        // Columns are taken by name: a second one of a name would be dropped unseen.
        if input.fields()[..i].iter().any(|f| f.name() == field.name()) {
            return Err(ValidationError::DuplicateColumn {
                table: def.name.into(),
                column: field.name().clone(),
            });
        }
        if def.schema.index_of(field.name()).is_err() {
            return Err(ValidationError::UnknownColumn {
                table: def.name.into(),
                column: field.name().clone(),
                known: column_names(def),
            });
        }
    }
    let rows = batch.num_rows();
    let mut columns = Vec::with_capacity(def.schema.fields().len());
    for target in def.schema.fields() {
        let name = target.name();
        let column = match input.index_of(name) {
            Ok(i) => convert(batch.column(i), target.data_type(), name, row_offset)?,
            Err(_) if target.is_nullable() => new_null_array(target.data_type(), rows),
            Err(_) if defaults_to_zero(def, name) => Arc::new(UInt32Array::from(vec![0; rows])),
            Err(_) => {
                return Err(ValidationError::MissingColumn {
                    table: def.name.into(),
                    column: name.clone(),
                });
            }
        };
        if !target.is_nullable() && column.null_count() > 0 {
            let row = (0..rows).find(|&r| column.is_null(r)).unwrap_or(0);
            return Err(ValidationError::Null {
                row: row + row_offset,
                column: name.clone(),
            });
        }
        columns.push(column);
    }
    for rule in def.rules {
        if let Rule::UnitCode(name) = *rule {
            let at = def.column_index(name).expect("rule names a table column");
            columns[at] = unit_codes(def, &columns, at, name, row_offset, kept)?;
        }
    }
    let normalized = RecordBatch::try_new(def.schema.clone(), columns)
        .expect("columns were built to match the table schema");
    for rule in def.rules {
        check_rule(def, rule, &normalized, row_offset)?;
    }
    check_name_lengths(def, &normalized, row_offset)?;
    Ok(normalized)
}

/// Column `at` of `columns` (units) with every symbol replaced by its
/// Recommendation 20 code; a refused value `kept` names stays as it is.
fn unit_codes(
    def: &TableDef,
    columns: &[ArrayRef],
    at: usize,
    column: &'static str,
    row_offset: usize,
    kept: &Grandfathered,
) -> Result<ArrayRef, ValidationError> {
    let units = columns[at].as_string::<i32>();
    let codes = units
        .iter()
        .enumerate()
        .map(|(row, unit)| {
            let Some(unit) = unit else {
                return Ok(None);
            };
            match units::code_of(unit) {
                Ok(code) => Ok(Some(code)),
                Err(_) if kept.keeps(row_key(def, columns, row), column, unit) => Ok(Some(unit)),
                Err(problem) => Err(ValidationError::BadValue {
                    row: row + row_offset,
                    column: column.into(),
                    value: quoted(unit).into_owned(),
                    problem: problem.to_string(),
                }),
            }
        })
        .collect::<Result<StringArray, _>>()?;
    Ok(Arc::new(codes))
}

fn column_names(def: &TableDef) -> String {
    def.schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn defaults_to_zero(def: &TableDef, column: &str) -> bool {
    def.rules
        .iter()
        .any(|r| matches!(r, Rule::DefaultsToZero(c) if *c == column))
}

/// Which source types may be converted to a target type without losing meaning.
fn castable(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let stringy = |t: &DataType| match t {
        Utf8 | LargeUtf8 | Utf8View => true,
        Dictionary(_, v) => matches!(v.as_ref(), Utf8 | LargeUtf8 | Utf8View),
        _ => false,
    };
    match to {
        Utf8 => stringy(from),
        Timestamp(_, _) => matches!(from, Timestamp(_, _)),
        Float64 => {
            from.is_numeric()
                && !matches!(
                    from,
                    Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..)
                )
        }
        UInt32 | UInt8 => from.is_integer(),
        Boolean => matches!(from, Boolean),
        _ => from == to,
    }
}

fn convert(
    column: &ArrayRef,
    target: &DataType,
    name: &str,
    row_offset: usize,
) -> Result<ArrayRef, ValidationError> {
    if column.data_type() == target {
        return Ok(column.clone());
    }
    if matches!(column.data_type(), DataType::Null) {
        return Ok(new_null_array(target, column.len()));
    }
    if !castable(column.data_type(), target) {
        return Err(ValidationError::WrongType {
            column: name.into(),
            found: column.data_type().to_string(),
            expected: target.to_string(),
        });
    }
    // A safe cast turns unrepresentable values into nulls; the first new null
    // is the offending row.
    let options = CastOptions {
        safe: true,
        ..Default::default()
    };
    let converted =
        cast_with_options(column, target, &options).map_err(|e| ValidationError::WrongType {
            column: name.into(),
            found: format!("{} ({e})", column.data_type()),
            expected: target.to_string(),
        })?;
    if converted.null_count() != column.null_count() {
        let row = (0..column.len())
            .find(|&r| converted.is_null(r) && !column.is_null(r))
            .expect("null counts differ");
        return Err(ValidationError::BadValue {
            row: row + row_offset,
            column: name.into(),
            value: display(column, row),
            problem: format!("does not fit {target}"),
        });
    }
    Ok(converted)
}

/// Characters of a value an error quotes: enough to recognise it, while a
/// runaway value (a 50 MiB tag name) does not become a 50 MiB message.
const QUOTED_CHARS: usize = 64;

/// `text` as an error quotes it: its first [`QUOTED_CHARS`] characters.
pub fn quoted(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]).into(),
        None => text.into(),
    }
}

fn display(column: &dyn Array, row: usize) -> String {
    let text = ArrayFormatter::try_new(column, &FormatOptions::default())
        .map(|f| f.value(row).to_string())
        .unwrap_or_else(|_| "?".into());
    quoted(&text).into_owned()
}

/// Every name (see [`TableDef::name_columns`]) is at most [`MAX_NAME_BYTES`].
fn check_name_lengths(
    def: &TableDef,
    batch: &RecordBatch,
    row_offset: usize,
) -> Result<(), ValidationError> {
    for name in def.name_columns() {
        let column = batch.column(def.column_index(name).expect("name column"));
        let strings = column.as_string::<i32>();
        let too_long = |r: usize| strings.is_valid(r) && strings.value(r).len() > MAX_NAME_BYTES;
        if let Some(row) = (0..strings.len()).find(|&r| too_long(r)) {
            return Err(ValidationError::BadValue {
                row: row + row_offset,
                column: name.into(),
                value: display(column, row),
                problem: format!(
                    "is {} bytes long; names are limited to {MAX_NAME_BYTES} bytes",
                    strings.value(row).len()
                ),
            });
        }
    }
    Ok(())
}

fn check_rule(
    def: &TableDef,
    rule: &Rule,
    batch: &RecordBatch,
    row_offset: usize,
) -> Result<(), ValidationError> {
    let col = |name: &str| batch.column(def.column_index(name).expect("rule names a table column"));
    let bad = |row: usize, column: &str, problem: String| ValidationError::BadValue {
        row: row + row_offset,
        column: column.into(),
        value: display(col(column).as_ref(), row),
        problem,
    };
    match *rule {
        Rule::NotBeforeEpoch(name) => {
            let ts = col(name);
            let ts = ts.as_primitive::<TimestampNanosecondType>();
            if let Some(row) = (0..ts.len()).find(|&r| ts.is_valid(r) && ts.value(r) < 0) {
                return Err(bad(row, name, "is before 1970-01-01T00:00:00Z".into()));
            }
        }
        Rule::FiniteWhenGood { value, quality } => {
            let values = col(value);
            let values = values.as_primitive::<Float64Type>();
            let qualities = col(quality);
            let qualities = qualities.as_primitive::<arrow::datatypes::UInt32Type>();
            let found = (0..values.len()).find(|&r| {
                values.is_valid(r) && !values.value(r).is_finite() && is_good(qualities.value(r))
            });
            if let Some(row) = found {
                return Err(bad(
                    row,
                    value,
                    format!(
                        "is not finite while {quality} is Good (0x{:08X}); write it with a Bad or Uncertain quality",
                        qualities.value(row)
                    ),
                ));
            }
        }
        Rule::NotEmpty(name) => {
            let strings = col(name);
            let strings = strings.as_string::<i32>();
            if let Some(row) =
                (0..strings.len()).find(|&r| strings.is_valid(r) && strings.value(r).is_empty())
            {
                return Err(bad(row, name, "is empty".into()));
            }
        }
        Rule::OneOf(name, allowed) => {
            let strings = col(name);
            let strings = strings.as_string::<i32>();
            if let Some(row) = (0..strings.len())
                .find(|&r| strings.is_valid(r) && !allowed.contains(&strings.value(r)))
            {
                return Err(bad(
                    row,
                    name,
                    format!("is not one of {}", allowed.join(", ")),
                ));
            }
        }
        Rule::AtMost(name, max) => {
            let ints = cast_with_options(col(name), &DataType::UInt64, &CastOptions::default())
                .expect("integer column widens to u64");
            let ints = ints.as_primitive::<arrow::datatypes::UInt64Type>();
            if let Some(row) = (0..ints.len()).find(|&r| ints.is_valid(r) && ints.value(r) > max) {
                return Err(bad(row, name, format!("is above {max}")));
            }
        }
        Rule::NonNegative(name) => {
            let values = col(name);
            let values = values.as_primitive::<Float64Type>();
            // `!(v >= 0)` also catches NaN.
            if let Some(row) =
                (0..values.len()).find(|&r| values.is_valid(r) && !(values.value(r) >= 0.0))
            {
                return Err(bad(row, name, "is negative or not a number".into()));
            }
        }
        Rule::NotBefore { later, earlier } => {
            let (hi, lo) = (col(later), col(earlier));
            let (hi, lo) = (
                hi.as_primitive::<TimestampNanosecondType>(),
                lo.as_primitive::<TimestampNanosecondType>(),
            );
            if let Some(row) = (0..hi.len())
                .find(|&r| hi.is_valid(r) && lo.is_valid(r) && hi.value(r) < lo.value(r))
            {
                let start = display(lo, row);
                return Err(bad(row, later, format!("is before {earlier} ({start})")));
            }
        }
        // Applied while the columns are built (it rewrites symbols).
        Rule::DefaultsToZero(_) | Rule::UnitCode(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;
    use arrow::array::{Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};

    fn batch(fields: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let schema = Schema::new(
            fields
                .iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        RecordBatch::try_new(
            Arc::new(schema),
            fields.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap()
    }

    #[test]
    fn widens_units_and_fills_defaults() {
        let b = batch(vec![
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(vec![1_000, 2_000])),
            ),
            ("tag", Arc::new(StringArray::from(vec!["a", "b"]))),
            ("value", Arc::new(Int64Array::from(vec![1, 2]))),
        ]);
        let out = normalize_batch(model::samples(), &b, 0).unwrap();
        assert_eq!(out.schema(), model::samples().schema);
        let ts = out.column(1).as_primitive::<TimestampNanosecondType>();
        assert_eq!(ts.value(1), 2_000_000);
        assert_eq!(
            out.column(4)
                .as_primitive::<arrow::datatypes::UInt32Type>()
                .value(0),
            0
        );
    }

    #[test]
    fn rejects_with_row_and_column() {
        let nan = batch(vec![
            ("tag", Arc::new(StringArray::from(vec!["a", "b"]))),
            ("ts", Arc::new(TimestampMicrosecondArray::from(vec![1, 2]))),
            ("value", Arc::new(Float64Array::from(vec![1.0, f64::NAN]))),
        ]);
        let err = normalize_batch(model::samples(), &nan, 10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("row 11") && err.contains("'value'") && err.contains("NaN"),
            "{err}"
        );

        let early = batch(vec![
            ("tag", Arc::new(StringArray::from(vec!["a"]))),
            ("ts", Arc::new(TimestampMicrosecondArray::from(vec![-5]))),
        ]);
        let err = normalize_batch(model::samples(), &early, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("before 1970"), "{err}");

        let empty_tag = batch(vec![
            ("tag", Arc::new(StringArray::from(vec!["a", ""]))),
            ("ts", Arc::new(TimestampMicrosecondArray::from(vec![1, 2]))),
        ]);
        let err = normalize_batch(model::samples(), &empty_tag, 0).unwrap_err();
        assert!(
            matches!(&err, ValidationError::BadValue { row: 1, column, .. } if column == "tag"),
            "{err}"
        );

        let no_tag = batch(vec![(
            "ts",
            Arc::new(TimestampMicrosecondArray::from(vec![1])),
        )]);
        let err = normalize_batch(model::samples(), &no_tag, 0).unwrap_err();
        assert!(
            matches!(err, ValidationError::MissingColumn { .. }),
            "{err}"
        );

        let wrong = batch(vec![
            ("tag", Arc::new(StringArray::from(vec!["a"]))),
            ("ts", Arc::new(TimestampMicrosecondArray::from(vec![1]))),
            ("value", Arc::new(StringArray::from(vec!["x"]))),
        ]);
        let err = normalize_batch(model::samples(), &wrong, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'value'") && err.contains("Utf8"), "{err}");

        let far = batch(vec![
            ("tag", Arc::new(StringArray::from(vec!["a"]))),
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(vec![i64::MAX / 10])),
            ),
        ]);
        let err = normalize_batch(model::samples(), &far, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'ts'") && err.contains("does not fit"),
            "{err}"
        );
    }

    #[test]
    fn a_unit_written_before_codes_passes_unchanged_on_its_own_tag_only() {
        let tags = model::tags();
        let rows = |tag: &str, unit: &str| {
            let tag: ArrayRef = Arc::new(StringArray::from(vec![tag]));
            batch(vec![
                ("tag", tag),
                ("unit", Arc::new(StringArray::from(vec![unit]))),
            ])
        };
        let current = normalize_batch(tags, &rows("line1.speed", "C94"), 0).unwrap();
        let mut legacy = current.columns().to_vec();
        legacy[tags.column_index("unit").unwrap()] =
            Arc::new(StringArray::from(vec!["bottles/min"]));
        let current = RecordBatch::try_new(current.schema(), legacy).unwrap();
        let kept = Grandfathered::of(tags, &current);

        let same =
            normalize_batch_keeping(tags, &rows("line1.speed", "bottles/min"), 0, &kept).unwrap();
        let unit = same
            .column(tags.column_index("unit").unwrap())
            .as_string::<i32>();
        assert_eq!(unit.value(0), "bottles/min", "carried on unchanged");
        for (tag, unit) in [("line2.speed", "bottles/min"), ("line1.speed", "packs/min")] {
            let err = normalize_batch_keeping(tags, &rows(tag, unit), 0, &kept).unwrap_err();
            assert!(
                err.to_string().contains("neither a UN/ECE"),
                "{tag} {unit}: {err}"
            );
        }
        let symbol = normalize_batch_keeping(tags, &rows("line1.speed", "degC"), 0, &kept).unwrap();
        let unit = symbol
            .column(tags.column_index("unit").unwrap())
            .as_string::<i32>();
        assert_eq!(unit.value(0), "CEL", "a new unit is a code");
    }

    #[test]
    fn names_are_limited_and_quoted_by_a_prefix() {
        let limit = "t".repeat(MAX_NAME_BYTES);
        let over = "x".repeat(50 << 20);
        let tags = |tag: &str| {
            batch(vec![
                (
                    "tag",
                    Arc::new(StringArray::from(vec!["a", tag])) as ArrayRef,
                ),
                ("ts", Arc::new(TimestampMicrosecondArray::from(vec![1, 2]))),
            ])
        };
        normalize_batch(model::samples(), &tags(&limit), 0).unwrap();
        let err = normalize_batch(model::samples(), &tags(&over), 7).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("row 8, column 'tag': value xxx")
                && message.contains("is 52428800 bytes long; names are limited to 1024 bytes"),
            "{message:.300}"
        );
        assert!(message.len() < 300, "the value is quoted by a prefix");

        // Every key and looked-up name, in every table: a lot of a sample,
        // the id of a lot.
        let lot = batch(vec![
            ("tag", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
            ("ts", Arc::new(TimestampMicrosecondArray::from(vec![1]))),
            ("lot", Arc::new(StringArray::from(vec![over.as_str()]))),
        ]);
        let err = normalize_batch(model::samples(), &lot, 0).unwrap_err();
        assert!(matches!(&err, ValidationError::BadValue { column, .. } if column == "lot"));
        let id = batch(vec![(
            "id",
            Arc::new(StringArray::from(vec![over.as_str()])) as ArrayRef,
        )]);
        let err = normalize_batch(model::table("lots").unwrap(), &id, 0).unwrap_err();
        assert!(matches!(&err, ValidationError::BadValue { column, .. } if column == "id"));
        // Other text is not a name.
        let text = batch(vec![
            ("tag", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
            ("ts", Arc::new(TimestampMicrosecondArray::from(vec![1]))),
            ("text", Arc::new(StringArray::from(vec![over.as_str()]))),
        ]);
        normalize_batch(model::samples(), &text, 0).unwrap();
    }
}
