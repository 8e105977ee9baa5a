//! Sample corrections: samples are immutable, so a fix is a row of
//! `sample_corrections` (new value, text, quality; who, why, when). The write
//! path stamps who and when, requires a why, and keeps the newest correction
//! per (tag, ts) in memory — corrections are rare, so `samples` can apply
//! them to raw rows as they stream by without reading the corrections table.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray,
    UInt32Array,
};
use arrow::datatypes::{Float64Type, TimestampNanosecondType, UInt32Type};

use super::buffer::TableBuffer;
use super::{IngestError, WriteContext};
use crate::model::columns::{self, ColumnError};
use crate::model::{self, Cache, TableDef, UTC};
use crate::storage::Manifest;

/// What a correction sets for one (tag, ts).
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    pub value: Option<f64>,
    pub text: Option<String>,
    pub quality: u32,
}

/// The columns of a reading in a batch of `samples` or `sample_corrections`
/// (or a projection of either with these five): for comparing readings
/// (one row per (tag, ts)) and for the corrections map.
pub struct Readings<'a> {
    pub tag: &'a StringArray,
    pub ts: &'a [i64],
    value: &'a Float64Array,
    text: &'a StringArray,
    quality: &'a UInt32Array,
}

/// The columns [`Readings`] reads.
pub const READING_COLUMNS: [&str; 5] = ["tag", "ts", "value", "text", "quality"];

impl<'a> Readings<'a> {
    pub fn of(table: &'static str, batch: &'a RecordBatch) -> Result<Self, ColumnError> {
        Ok(Self {
            tag: columns::strings(batch, table, "tag")?,
            ts: columns::primitives::<TimestampNanosecondType>(batch, table, "ts")?.values(),
            value: columns::primitives(batch, table, "value")?,
            text: columns::strings(batch, table, "text")?,
            quality: columns::primitives::<UInt32Type>(batch, table, "quality")?,
        })
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    fn value(&self, i: usize) -> Option<f64> {
        self.value.is_valid(i).then(|| self.value.value(i))
    }

    fn text(&self, i: usize) -> Option<&'a str> {
        self.text.is_valid(i).then(|| self.text.value(i))
    }

    /// The first of value, text and quality in which row `i` differs from
    /// row `j` of `other`. Values compare by their bits: a resend is the
    /// same number, not a close one.
    pub fn differs(&self, i: usize, other: &Readings<'_>, j: usize) -> Option<&'static str> {
        if self.value(i).map(f64::to_bits) != other.value(j).map(f64::to_bits) {
            Some("value")
        } else if self.text(i) != other.text(j) {
            Some("text")
        } else if self.quality.value(i) != other.quality.value(j) {
            Some("quality")
        } else {
            None
        }
    }

    /// Row `i` as a correction sets it.
    pub fn fix(&self, i: usize) -> Fix {
        Fix {
            value: self.value(i),
            text: self.text(i).map(str::to_string),
            quality: self.quality.value(i),
        }
    }

    /// Whether row `i` reads as `fix` sets it.
    pub fn is(&self, i: usize, fix: &Fix) -> bool {
        self.value(i).map(f64::to_bits) == fix.value.map(f64::to_bits)
            && self.text(i) == fix.text.as_deref()
            && self.quality.value(i) == fix.quality
    }
}

/// The newest correction per (tag, ts).
pub type CorrectionMap = HashMap<(String, i64), Fix>;

/// The table of corrections (the one with [`Cache::Corrections`]).
const TABLE: &str = "sample_corrections";

/// Merges correction rows (in write order: a later row wins).
pub fn merge(map: &mut CorrectionMap, batch: &RecordBatch) -> Result<(), ColumnError> {
    let readings = Readings::of(TABLE, batch)?;
    for i in 0..readings.len() {
        map.insert(
            (readings.tag.value(i).to_string(), readings.ts[i]),
            readings.fix(i),
        );
    }
    Ok(())
}

/// Rebuilds the map of the table with [`Cache::Corrections`] from its
/// segments (manifest order) and replayed rows; `None` if no table has one.
pub(super) fn recover(
    data_dir: &Path,
    manifest: &Manifest,
    buffers: &[TableBuffer],
) -> Result<Option<(usize, CorrectionMap)>, IngestError> {
    let Some(id) = model::tables()
        .iter()
        .position(|t| t.has_cache(Cache::Corrections))
    else {
        return Ok(None);
    };
    let mut map = CorrectionMap::new();
    super::replay_table(data_dir, manifest, buffers, id, &READING_COLUMNS, |batch| {
        Ok(merge(&mut map, batch)?)
    })?;
    Ok(Some((id, map)))
}

/// Sets `corrected_by` and `corrected_at` (the server's word, whatever the
/// writer sent) and fills a missing per-row `reason` from the request; a row
/// left without a reason refuses the whole request.
pub(super) fn stamp(
    def: &'static TableDef,
    batch: &RecordBatch,
    ctx: &WriteContext,
    now: i64,
    row_offset: usize,
) -> Result<RecordBatch, IngestError> {
    let n = batch.num_rows();
    let given = columns::strings(batch, TABLE, "reason")?;
    let mut reasons = Vec::with_capacity(n);
    for i in 0..n {
        let reason = given
            .is_valid(i)
            .then(|| given.value(i).trim())
            .filter(|r| !r.is_empty())
            .or(ctx.reason.as_deref());
        let Some(reason) = reason else {
            return Err(IngestError::ReasonRequired {
                table: def.name,
                key: model::describe_key(def, batch, i),
                op: "correcting a sample in",
                row: row_offset + i,
            });
        };
        reasons.push(reason);
    }
    let replace: [(&str, ArrayRef); 3] = [
        (
            "corrected_by",
            Arc::new(StringArray::from(vec![ctx.actor.as_str(); n])),
        ),
        ("reason", Arc::new(StringArray::from(reasons))),
        (
            "corrected_at",
            Arc::new(TimestampNanosecondArray::from(vec![now; n]).with_timezone(UTC)),
        ),
    ];
    let mut columns = batch.columns().to_vec();
    for (name, array) in replace {
        columns[def.column_index(name).expect("corrections column")] = array;
    }
    RecordBatch::try_new(batch.schema(), columns).map_err(|e| IngestError::Internal(e.to_string()))
}

/// The reasons of stamped correction rows, distinct and in order, joined by
/// `; ` (the first [`AUDITED_REASONS`], then how many more): the reason of
/// the request's audit entry.
pub(super) fn reasons(batches: &[RecordBatch]) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for batch in batches {
        let given = columns::strings(batch, TABLE, "reason");
        for reason in given.iter().flat_map(|reasons| reasons.iter().flatten()) {
            if !seen.contains(&reason) {
                seen.push(reason);
            }
        }
    }
    let more = seen.len().saturating_sub(AUDITED_REASONS);
    let mut joined = seen[..seen.len() - more].join("; ");
    if more > 0 {
        joined.push_str(&format!("; (+{more} more)"));
    }
    (!seen.is_empty()).then_some(joined)
}

/// How many distinct per-row reasons an audit entry names.
const AUDITED_REASONS: usize = 8;

/// `batch` (any projection of `samples` that has `tag` and `ts`) with the
/// value, text and quality of corrected rows replaced.
pub fn apply(map: &CorrectionMap, batch: &RecordBatch) -> Result<RecordBatch, IngestError> {
    let (Some(tag), Some(ts)) = (batch.column_by_name("tag"), batch.column_by_name("ts")) else {
        return Ok(batch.clone());
    };
    let tag = tag.as_string::<i32>();
    let ts = ts.as_primitive::<TimestampNanosecondType>();
    let fixes: Vec<Option<&Fix>> = (0..batch.num_rows())
        .map(|i| map.get(&(tag.value(i).to_string(), ts.value(i))))
        .collect();
    if fixes.iter().all(Option::is_none) {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let mut columns = batch.columns().to_vec();
    if let Ok(i) = schema.index_of("value") {
        let old = columns[i].as_primitive::<Float64Type>();
        let new: Float64Array = (0..old.len())
            .map(|r| match fixes[r] {
                Some(fix) => fix.value,
                None => old.is_valid(r).then(|| old.value(r)),
            })
            .collect();
        columns[i] = Arc::new(new);
    }
    if let Ok(i) = schema.index_of("text") {
        let old = columns[i].as_string::<i32>();
        let new: StringArray = (0..old.len())
            .map(|r| match fixes[r] {
                Some(fix) => fix.text.clone(),
                None => old.is_valid(r).then(|| old.value(r).to_string()),
            })
            .collect();
        columns[i] = Arc::new(new);
    }
    if let Ok(i) = schema.index_of("quality") {
        let old = columns[i].as_primitive::<UInt32Type>();
        let new: UInt32Array = (0..old.len())
            .map(|r| Some(fixes[r].map_or(old.value(r), |fix| fix.quality)))
            .collect();
        columns[i] = Arc::new(new);
    }
    RecordBatch::try_new(schema, columns).map_err(|e| IngestError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[(&str, i64, f64)]) -> RecordBatch {
        let batch = RecordBatch::try_from_iter([
            (
                "tag",
                Arc::new(StringArray::from_iter_values(values.iter().map(|v| v.0))) as ArrayRef,
            ),
            (
                "ts",
                Arc::new(
                    TimestampNanosecondArray::from_iter_values(values.iter().map(|v| v.1))
                        .with_timezone(UTC),
                ) as ArrayRef,
            ),
            (
                "value",
                Arc::new(Float64Array::from_iter_values(values.iter().map(|v| v.2))) as ArrayRef,
            ),
        ])
        .unwrap();
        model::normalize_batch(model::samples(), &batch, 0).unwrap()
    }

    fn correction(rows: &[(&str, i64, f64)], reason: Option<&str>) -> RecordBatch {
        let def = model::sample_corrections();
        let raw = samples(rows);
        let mut batch =
            model::normalize_batch(def, &raw.project(&[0, 1, 2, 4]).unwrap(), 0).unwrap();
        if let Some(r) = reason {
            let mut columns = batch.columns().to_vec();
            columns[def.column_index("reason").unwrap()] =
                Arc::new(StringArray::from(vec![r; rows.len()]));
            batch = RecordBatch::try_new(batch.schema(), columns).unwrap();
        }
        batch
    }

    #[test]
    fn newest_correction_wins_and_others_pass_through() {
        let mut map = CorrectionMap::new();
        merge(
            &mut map,
            &correction(&[("a", 1, 10.0), ("a", 2, 20.0)], Some("x")),
        )
        .unwrap();
        merge(&mut map, &correction(&[("a", 1, 11.0)], Some("y"))).unwrap();
        let raw = samples(&[("a", 1, 1.0), ("a", 2, 2.0), ("a", 3, 3.0), ("b", 1, 4.0)]);
        let fixed = apply(&map, &raw).unwrap();
        let values: Vec<f64> = fixed
            .column(2)
            .as_primitive::<Float64Type>()
            .values()
            .to_vec();
        assert_eq!(values, [11.0, 20.0, 3.0, 4.0]);
        assert_eq!(apply(&CorrectionMap::new(), &raw).unwrap(), raw);
    }

    #[test]
    fn stamping_needs_a_reason_and_overrides_who_and_when() {
        let def = model::sample_corrections();
        let meta = WriteContext::new("carol", "test");
        let err = stamp(def, &correction(&[("a", 1, 1.0)], None), &meta, 5, 0).unwrap_err();
        assert!(err.to_string().contains("needs a reason"), "{err}");
        let given = stamp(
            def,
            &correction(&[("a", 1, 1.0)], Some("drift")),
            &meta,
            5,
            0,
        )
        .unwrap();
        let by_request = stamp(
            def,
            &correction(&[("a", 1, 1.0)], None),
            &WriteContext::new("carol", "test").with_reason(Some("calibration".into())),
            5,
            0,
        )
        .unwrap();
        for (batch, why) in [(given, "drift"), (by_request, "calibration")] {
            let col = |n: &str| batch.column_by_name(n).unwrap().clone();
            assert_eq!(col("reason").as_string::<i32>().value(0), why);
            assert_eq!(col("corrected_by").as_string::<i32>().value(0), "carol");
            assert_eq!(
                col("corrected_at")
                    .as_primitive::<TimestampNanosecondType>()
                    .value(0),
                5
            );
        }
    }
}
