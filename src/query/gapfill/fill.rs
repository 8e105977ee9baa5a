//! Filling one series: the rows of one combination of the non-time GROUP BY
//! columns, in time order, become one row per bucket of the time range.
//!
//! Buckets that had rows keep them; the others get the series' key, the
//! bucket's start time, each aggregate's gap value (null, or 0 for `count`),
//! and for fill columns the last non-null value (`locf`) or the value on the
//! line between the surrounding non-null buckets (`interpolate`). Fill
//! functions treat a null aggregate in a bucket that had rows like a missing
//! bucket, as InfluxDB 3 does.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, RecordBatch, TimestampNanosecondArray, UInt32Array,
};
use arrow::compute::{cast, interleave, take};
use arrow::datatypes::{DataType, Float64Type, SchemaRef, TimeUnit, TimestampNanosecondType};
use datafusion::common::{Result, ScalarValue, exec_err, internal_err};

use super::functions::FillStrategy;

/// `date_bin`'s bucket for `ts`: the latest `origin + k * stride` not after it.
pub fn bucket_start(ts: i64, stride: i64, origin: i64) -> Option<i64> {
    let offset = (i128::from(ts) - i128::from(origin)).div_euclid(i128::from(stride));
    i64::try_from(i128::from(origin) + offset * i128::from(stride)).ok()
}

/// The buckets of a time range: `count` starts, `stride` nanoseconds apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub first: i64,
    pub stride: i64,
    pub count: u64,
}

impl Buckets {
    /// The buckets that hold the instants `first_ns..=last_ns`.
    pub fn covering(first_ns: i64, last_ns: i64, stride: i64, origin: i64) -> Result<Self> {
        if stride <= 0 {
            return exec_err!("date_bin_gapfill needs a positive interval");
        }
        let (Some(first), Some(last)) = (
            bucket_start(first_ns, stride, origin),
            bucket_start(last_ns, stride, origin),
        ) else {
            return exec_err!("date_bin_gapfill's time range is out of the timestamp range");
        };
        let count = if last < first {
            0
        } else {
            ((i128::from(last) - i128::from(first)) / i128::from(stride) + 1) as u64
        };
        Ok(Self {
            first,
            stride,
            count,
        })
    }

    fn start(&self, index: u64) -> i64 {
        self.first + index as i64 * self.stride
    }
}

/// What fills one series: column positions in the aggregate's output.
#[derive(Debug, Clone)]
pub struct FillSpec {
    pub series: Vec<usize>,
    pub time: usize,
    pub buckets: Buckets,
    /// Aggregate columns and their value in buckets without rows.
    pub aggregates: Vec<(usize, ScalarValue)>,
    /// Extra output columns, appended in this order.
    pub filled: Vec<(usize, FillStrategy)>,
}

/// One output row: an input row, or the start of a bucket without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Row(usize),
    Gap(i64),
}

/// The time column of `series` in nanoseconds.
pub fn times_ns(series: &RecordBatch, spec: &FillSpec) -> Result<TimestampNanosecondArray> {
    let column = series.column(spec.time);
    let DataType::Timestamp(_, tz) = column.data_type() else {
        return internal_err!(
            "gap filling needs a timestamp bucket column, got {}",
            column.data_type()
        );
    };
    let ns = cast(
        column,
        &DataType::Timestamp(TimeUnit::Nanosecond, tz.clone()),
    )?;
    Ok(ns.as_primitive::<TimestampNanosecondType>().clone())
}

/// Merges a series' rows (in time order) with the buckets. Rows outside the
/// buckets, off their grid or without a time are kept where they fall.
pub fn plan_slots(times: &TimestampNanosecondArray, buckets: &Buckets) -> Result<Vec<Slot>> {
    let mut slots = Vec::with_capacity(buckets.count as usize + times.len());
    let mut next_bucket = 0;
    let mut previous = None;
    for row in 0..times.len() {
        if times.is_null(row) {
            slots.push(Slot::Row(row));
            continue;
        }
        let ts = times.value(row);
        if previous.is_some_and(|previous| ts < previous) {
            return internal_err!("gap filling needs each series in time order");
        }
        previous = Some(ts);
        while next_bucket < buckets.count && buckets.start(next_bucket) < ts {
            slots.push(Slot::Gap(buckets.start(next_bucket)));
            next_bucket += 1;
        }
        if next_bucket < buckets.count && buckets.start(next_bucket) == ts {
            next_bucket += 1;
        }
        slots.push(Slot::Row(row));
    }
    slots.extend((next_bucket..buckets.count).map(|index| Slot::Gap(buckets.start(index))));
    Ok(slots)
}

/// The output rows of one series for `slots` (see [`plan_slots`]).
pub fn fill_series(
    spec: &FillSpec,
    schema: &SchemaRef,
    series: &RecordBatch,
    times: &TimestampNanosecondArray,
    slots: &[Slot],
) -> Result<RecordBatch> {
    let slot_times: Vec<Option<i64>> = slots
        .iter()
        .map(|slot| match *slot {
            Slot::Row(row) => times.is_valid(row).then(|| times.value(row)),
            Slot::Gap(start) => Some(start),
        })
        .collect();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (index, column) in series.columns().iter().enumerate() {
        let filled = if index == spec.time {
            let time = TimestampNanosecondArray::from(slot_times.clone())
                .with_timezone_opt(times.timezone());
            cast(&time, column.data_type())?
        } else if spec.series.contains(&index) {
            // Every row of a series has the same key: repeat the first.
            take(column, &UInt32Array::from(vec![0; slots.len()]), None)?
        } else if let Some((_, gap_value)) = spec.aggregates.iter().find(|(i, _)| *i == index) {
            with_gap_value(column, gap_value, slots)?
        } else {
            take(column, &row_indices(slots), None)?
        };
        columns.push(filled);
    }
    for (source, strategy) in &spec.filled {
        let column = series.column(*source);
        columns.push(match strategy {
            FillStrategy::Locf => last_observation_carried_forward(column, slots)?,
            FillStrategy::Interpolate => interpolate(column, slots, &slot_times)?,
        });
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The input row of each slot; null for gaps.
fn row_indices(slots: &[Slot]) -> UInt32Array {
    slots
        .iter()
        .map(|slot| match *slot {
            Slot::Row(row) => Some(row as u32),
            Slot::Gap(_) => None,
        })
        .collect()
}

fn with_gap_value(column: &ArrayRef, gap_value: &ScalarValue, slots: &[Slot]) -> Result<ArrayRef> {
    let mut gap = gap_value.to_array_of_size(1)?;
    if gap.data_type() != column.data_type() {
        gap = cast(&gap, column.data_type())?;
    }
    let indices: Vec<(usize, usize)> = slots
        .iter()
        .map(|slot| match *slot {
            Slot::Row(row) => (0, row),
            Slot::Gap(_) => (1, 0),
        })
        .collect();
    Ok(interleave(&[column.as_ref(), gap.as_ref()], &indices)?)
}

/// Each slot takes the last non-null value at or before it; null before the first.
fn last_observation_carried_forward(column: &ArrayRef, slots: &[Slot]) -> Result<ArrayRef> {
    let mut last = None;
    let indices: UInt32Array = slots
        .iter()
        .map(|slot| {
            if let Slot::Row(row) = *slot
                && column.is_valid(row)
            {
                last = Some(row as u32);
            }
            last
        })
        .collect();
    Ok(take(column, &indices, None)?)
}

/// Slots without a value lie on the line between the nearest slots with one
/// on either side; with none on one side they stay null (no extrapolation).
/// Integer aggregates are computed in f64 and cast back (toward zero).
fn interpolate(column: &ArrayRef, slots: &[Slot], slot_times: &[Option<i64>]) -> Result<ArrayRef> {
    let values = cast(column, &DataType::Float64)?;
    let values = values.as_primitive::<Float64Type>();
    let known: Vec<Option<(i64, f64)>> = slots
        .iter()
        .zip(slot_times)
        .map(|(slot, time)| match (*slot, *time) {
            (Slot::Row(row), Some(time)) if values.is_valid(row) => Some((time, values.value(row))),
            _ => None,
        })
        .collect();
    let mut next_known = vec![None; slots.len()];
    let mut upcoming = None;
    for (index, point) in known.iter().enumerate().rev() {
        next_known[index] = upcoming;
        upcoming = point.or(upcoming);
    }
    let mut previous = None;
    let mut computed = Vec::new();
    let mut indices = Vec::with_capacity(slots.len());
    for (index, slot) in slots.iter().enumerate() {
        if let (Slot::Row(row), Some(point)) = (*slot, known[index]) {
            indices.push((0, row));
            previous = Some(point);
            continue;
        }
        let value = match (previous, next_known[index], slot_times[index]) {
            (Some((t0, v0)), Some((t1, v1)), Some(t)) if t1 > t0 => {
                Some(v0 + (v1 - v0) * ((t - t0) as f64 / (t1 - t0) as f64))
            }
            _ => None,
        };
        indices.push((1, computed.len()));
        computed.push(value);
    }
    let computed: ArrayRef = Arc::new(Float64Array::from(computed));
    let computed = cast(&computed, column.data_type())?;
    Ok(interleave(&[column.as_ref(), computed.as_ref()], &indices)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    const TZ: &str = "UTC";

    fn input_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("tag", DataType::Utf8, true),
            Field::new(
                "minute",
                DataType::Timestamp(TimeUnit::Nanosecond, Some(TZ.into())),
                true,
            ),
            Field::new("avg", DataType::Float64, true),
            Field::new("count", DataType::Int64, false),
        ]))
    }

    fn output_schema() -> SchemaRef {
        let mut fields: Vec<Field> = input_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        fields.push(Field::new("locf", DataType::Float64, true));
        fields.push(Field::new("interpolate", DataType::Float64, true));
        fields.push(Field::new("interpolate_count", DataType::Int64, true));
        Arc::new(Schema::new(fields))
    }

    /// Buckets 0, 10, ..., 50 (6 of them).
    fn spec() -> FillSpec {
        FillSpec {
            series: vec![0],
            time: 1,
            buckets: Buckets::covering(0, 59, 10, 0).unwrap(),
            aggregates: vec![
                (2, ScalarValue::Float64(None)),
                (3, ScalarValue::Int64(Some(0))),
            ],
            filled: vec![
                (2, FillStrategy::Locf),
                (2, FillStrategy::Interpolate),
                (3, FillStrategy::Interpolate),
            ],
        }
    }

    fn series(rows: &[(i64, Option<f64>, i64)]) -> RecordBatch {
        let times: TimestampNanosecondArray = rows.iter().map(|r| Some(r.0)).collect();
        RecordBatch::try_new(
            input_schema(),
            vec![
                Arc::new(StringArray::from(vec!["a"; rows.len()])),
                Arc::new(times.with_timezone(TZ)),
                Arc::new(rows.iter().map(|r| r.1).collect::<Float64Array>()),
                Arc::new(rows.iter().map(|r| r.2).collect::<Int64Array>()),
            ],
        )
        .unwrap()
    }

    fn fill(rows: &[(i64, Option<f64>, i64)]) -> RecordBatch {
        let spec = spec();
        let batch = series(rows);
        let times = times_ns(&batch, &spec).unwrap();
        let slots = plan_slots(&times, &spec.buckets).unwrap();
        fill_series(&spec, &output_schema(), &batch, &times, &slots).unwrap()
    }

    fn floats(batch: &RecordBatch, column: &str) -> Vec<Option<f64>> {
        let column = batch.column_by_name(column).unwrap();
        column.as_primitive::<Float64Type>().iter().collect()
    }

    fn ints(batch: &RecordBatch, column: &str) -> Vec<Option<i64>> {
        let column = batch.column_by_name(column).unwrap();
        column
            .as_primitive::<arrow::datatypes::Int64Type>()
            .iter()
            .collect()
    }

    #[test]
    fn buckets_align_to_the_origin() {
        assert_eq!(bucket_start(-5, 10, 0), Some(-10));
        assert_eq!(bucket_start(25, 10, 3), Some(23));
        let buckets = Buckets::covering(7, 34, 10, 3).unwrap();
        assert_eq!((buckets.first, buckets.count), (3, 4));
        assert_eq!(Buckets::covering(10, 9, 10, 0).unwrap().count, 0);
        assert!(Buckets::covering(0, 10, 0, 0).is_err());
    }

    #[test]
    fn irregular_gaps_are_filled_per_strategy() {
        let out = fill(&[(10, Some(1.0), 2), (40, Some(4.0), 5)]);
        let minutes: Vec<_> = out
            .column(1)
            .as_primitive::<TimestampNanosecondType>()
            .values()
            .to_vec();
        assert_eq!(minutes, vec![0, 10, 20, 30, 40, 50]);
        assert_eq!(
            out.column(1).data_type(),
            input_schema().field(1).data_type()
        );
        let tags = out.column(0).as_string::<i32>();
        assert!(tags.iter().all(|t| t == Some("a")));
        assert_eq!(
            floats(&out, "avg"),
            vec![None, Some(1.0), None, None, Some(4.0), None]
        );
        assert_eq!(
            ints(&out, "count"),
            vec![Some(0), Some(2), Some(0), Some(0), Some(5), Some(0)]
        );
        assert_eq!(
            floats(&out, "locf"),
            vec![None, Some(1.0), Some(1.0), Some(1.0), Some(4.0), Some(4.0)]
        );
        assert_eq!(
            floats(&out, "interpolate"),
            vec![None, Some(1.0), Some(2.0), Some(3.0), Some(4.0), None]
        );
        // Integers are interpolated in f64 and truncated: 2 + 3 * 1/3, 2 + 3 * 2/3.
        assert_eq!(
            ints(&out, "interpolate_count"),
            vec![None, Some(2), Some(3), Some(4), Some(5), None]
        );
    }

    #[test]
    fn locf_leaves_nulls_before_the_first_value_and_carries_over_null_rows() {
        let out = fill(&[(20, None, 1), (30, Some(3.0), 1), (40, None, 1)]);
        assert_eq!(
            floats(&out, "avg"),
            vec![None, None, None, Some(3.0), None, None]
        );
        assert_eq!(
            floats(&out, "locf"),
            vec![None, None, None, Some(3.0), Some(3.0), Some(3.0)]
        );
    }

    #[test]
    fn interpolate_does_not_extrapolate_and_bridges_null_rows() {
        let out = fill(&[(10, Some(10.0), 1), (20, None, 1), (50, Some(40.0), 1)]);
        assert_eq!(
            floats(&out, "interpolate"),
            vec![
                None,
                Some(10.0),
                Some(17.5),
                Some(25.0),
                Some(32.5),
                Some(40.0)
            ]
        );
        let single = fill(&[(30, Some(7.0), 1)]);
        assert_eq!(
            floats(&single, "interpolate"),
            vec![None, None, None, Some(7.0), None, None]
        );
    }

    #[test]
    fn rows_off_the_grid_are_kept_in_order_and_unsorted_input_is_refused() {
        let out = fill(&[(-10, Some(1.0), 1), (25, Some(2.0), 1)]);
        let minutes: Vec<_> = out
            .column(1)
            .as_primitive::<TimestampNanosecondType>()
            .values()
            .to_vec();
        assert_eq!(minutes, vec![-10, 0, 10, 20, 25, 30, 40, 50]);
        let spec = spec();
        let batch = series(&[(30, Some(1.0), 1), (10, Some(2.0), 1)]);
        let times = times_ns(&batch, &spec).unwrap();
        assert!(plan_slots(&times, &spec.buckets).is_err());
    }
}
