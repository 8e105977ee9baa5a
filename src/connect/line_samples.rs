//! Line-protocol points → rows of `samples`, one row per field:
//!
//! - `tag` = the measurement, then every other tag key in sorted order as
//!   `.key=value`, then `.field` — except a field named `value`, which adds
//!   nothing: `oven,line=1 temperature=198.4` → `oven.line=1.temperature`,
//!   `oven.temperature value=198.4` → `oven.temperature`;
//! - `value` = the field as float64 (integers converted, beyond ±2^53 to the
//!   nearest float64; booleans 1.0/0.0); a string field goes to `text` with
//!   `value` null;
//! - tag keys `equipment`, `work_order` and `lot` fill those columns and
//!   `quality` (decimal or `0x` hex) the OPC UA StatusCode (default 0, Good);
//!   they are context, not part of the tag name;
//! - `ts` = the point's timestamp.
//!
//! Other tag keys stay in the name because they identify the series: dropping
//! them would interleave `cpu=cpu0` and `cpu=cpu1` in one historian tag and
//! corrupt every time-weighted aggregate. Sorting makes the name independent
//! of the order a writer sends tags in, and `key=` keeps it self-describing.

use arrow::array::RecordBatch;

use super::line_protocol::{FieldValue, LineError, Point};
use crate::model::{self, SampleRow, SampleRows};

/// Tag keys that fill a context column of `samples` instead of naming the tag.
pub const CONTEXT_TAGS: [&str; 3] = model::CONTEXT_COLUMNS;
/// Tag key that carries the OPC UA StatusCode.
pub const QUALITY_TAG: &str = "quality";
/// Field key that names no suffix: its tag is the measurement (plus tags).
pub const VALUE_FIELD: &str = "value";

/// Maps points to one `samples` batch (in the table's schema). Fails on the
/// first point that cannot be stored, naming its line.
pub fn to_samples(points: &[Point<'_>]) -> Result<RecordBatch, LineError> {
    let rows: usize = points.iter().map(|p| p.fields.len()).sum();
    let mut out = SampleRows::with_capacity(rows);
    for point in points {
        let fail = |reason: String| LineError {
            line: point.line,
            column: None,
            reason,
        };
        if point.time_ns < 0 {
            return Err(fail(format!(
                "timestamp {} ns is before 1970-01-01, the earliest time lotline stores",
                point.time_ns
            )));
        }
        let mut point_quality = 0;
        let mut point_context: [Option<&str>; 3] = [None; 3];
        let mut name_tags = Vec::with_capacity(point.tags.len());
        for (key, val) in &point.tags {
            if let Some(i) = CONTEXT_TAGS.iter().position(|c| c == key) {
                point_context[i] = Some(val);
            } else if key == QUALITY_TAG {
                point_quality = parse_quality(val).ok_or_else(|| {
                    fail(format!(
                        "tag 'quality' must be an OPC UA StatusCode (0 to 4294967295, or 0x hex), got '{val}'"
                    ))
                })?;
            } else {
                name_tags.push((key.as_ref(), val.as_ref()));
            }
        }
        name_tags.sort_unstable();
        let mut base = point.measurement.to_string();
        for (key, val) in name_tags {
            base.push('.');
            base.push_str(key);
            base.push('=');
            base.push_str(val);
        }
        for (key, field) in &point.fields {
            let suffixed;
            let tag = if key == VALUE_FIELD {
                base.as_str()
            } else {
                suffixed = format!("{base}.{key}");
                suffixed.as_str()
            };
            // Checked here too, to name the line (validation names rows).
            if tag.len() > model::MAX_NAME_BYTES {
                return Err(fail(format!(
                    "tag name '{}' (measurement, name tags and field) is {} bytes long; names are limited to {} bytes",
                    model::quoted(tag),
                    tag.len(),
                    model::MAX_NAME_BYTES
                )));
            }
            out.push(SampleRow {
                tag,
                ts_ns: point.time_ns,
                value: number(field),
                text: match field {
                    FieldValue::Str(s) => Some(s.as_ref()),
                    _ => None,
                },
                quality: point_quality,
                context: point_context,
            });
        }
    }
    Ok(out.finish())
}

/// The `value` of a field: numbers and booleans as float64, strings none.
fn number(field: &FieldValue<'_>) -> Option<f64> {
    match field {
        FieldValue::Float(v) => Some(*v),
        FieldValue::Int(v) => Some(*v as f64),
        FieldValue::UInt(v) => Some(*v as f64),
        FieldValue::Bool(v) => Some(f64::from(u8::from(*v))),
        FieldValue::Str(_) => None,
    }
}

fn parse_quality(text: &str) -> Option<u32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, TimestampNanosecondType, UInt32Type};

    use super::*;
    use crate::connect::line_protocol::{Precision, parse};

    fn rows(body: &str) -> RecordBatch {
        to_samples(&parse(body, Precision::S, 7).unwrap()).unwrap()
    }

    fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
        let array = batch.column_by_name(column).unwrap().as_string::<i32>();
        array.iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn one_row_per_field_with_documented_names() {
        let batch = rows(concat!(
            "oven,lot=L-1,work_order=WO-9,equipment=line1.oven,zone=b,line=1 temperature=198.5,on=true,count=3i,state=\"heating\" 100\n",
            "press value=2.5,max=4u\n",
        ));
        assert_eq!(batch.schema(), model::samples().schema);
        assert_eq!(
            strings(&batch, "tag"),
            [
                "oven.line=1.zone=b.temperature",
                "oven.line=1.zone=b.on",
                "oven.line=1.zone=b.count",
                "oven.line=1.zone=b.state",
                "press",
                "press.max",
            ]
            .map(|s| Some(s.to_string()))
        );
        let value = batch.column(2).as_primitive::<Float64Type>();
        assert_eq!(value.value(0), 198.5);
        assert_eq!(value.value(1), 1.0);
        assert_eq!(value.value(2), 3.0);
        assert!(value.is_null(3));
        assert_eq!(value.value(4), 2.5);
        assert_eq!(strings(&batch, "text")[3].as_deref(), Some("heating"));
        assert_eq!(strings(&batch, "lot")[0].as_deref(), Some("L-1"));
        assert_eq!(strings(&batch, "work_order")[3].as_deref(), Some("WO-9"));
        assert_eq!(
            strings(&batch, "equipment")[2].as_deref(),
            Some("line1.oven")
        );
        assert_eq!(strings(&batch, "equipment")[4], None);
        let ts = batch.column(1).as_primitive::<TimestampNanosecondType>();
        assert_eq!(ts.value(0), 100_000_000_000);
        assert_eq!(ts.value(5), 7, "no timestamp: the default time");
    }

    #[test]
    fn quality_tag_and_tag_order_independence() {
        let a = rows("m,b=2,a=1,quality=0x80000000 v=1 1");
        let b = rows("m,a=1,quality=2147483648,b=2 v=1 1");
        assert_eq!(strings(&a, "tag"), strings(&b, "tag"));
        assert_eq!(strings(&a, "tag")[0].as_deref(), Some("m.a=1.b=2.v"));
        for batch in [&a, &b] {
            assert_eq!(
                batch.column(4).as_primitive::<UInt32Type>().value(0),
                0x8000_0000
            );
        }
    }

    #[test]
    fn unstorable_points_name_their_line() {
        let points = parse("m v=1 1\nm,quality=bad v=1 2", Precision::S, 0).unwrap();
        let e = to_samples(&points).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("quality"), "{e}");
        let points = parse("m v=1 1\n\nm v=1 -5", Precision::S, 0).unwrap();
        let e = to_samples(&points).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.reason.contains("before 1970"), "{e}");
    }
}
