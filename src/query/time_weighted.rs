//! `time_weighted_avg(value, ts [, quality] [, 'linear'|'step'])`: the
//! time-weighted average of the samples in a group, for GROUP BY use (per
//! work order, per lot, per hour).
//!
//! Each sample holds (step) or ramps to the next (linear) until the next
//! sample; the average is the area divided by the time from the first to the
//! last sample. Samples with a Bad quality or a null value are gaps: the
//! interval they start (and, for linear, the one they end) counts for neither
//! area nor time. One usable sample averages to its value; none gives null.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, ListArray, TimestampNanosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Field, FieldRef, Float64Type, TimeUnit, TimestampNanosecondType, UInt32Type,
};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::model::is_bad;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interpolation {
    Linear,
    Step,
}

impl Interpolation {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "linear" => Some(Self::Linear),
            "step" | "stepped" => Some(Self::Step),
            _ => None,
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TimeWeightedAvg {
    signature: Signature,
}

impl Default for TimeWeightedAvg {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// Which arguments a call has: quality column position and a literal method.
fn parse_args(types: &[DataType]) -> Result<(Option<usize>, bool)> {
    let usage = "time_weighted_avg(value, ts [, quality] [, 'linear'|'step'])";
    if !(2..=4).contains(&types.len()) {
        return plan_err!("{usage}: expected 2 to 4 arguments, got {}", types.len());
    }
    if !types[0].is_numeric() {
        return plan_err!("{usage}: value must be numeric, got {}", types[0]);
    }
    if !matches!(types[1], DataType::Timestamp(_, _)) {
        return plan_err!("{usage}: ts must be a timestamp, got {}", types[1]);
    }
    let mut quality = None;
    let mut method = false;
    for (i, t) in types.iter().enumerate().skip(2) {
        match t {
            t if t.is_integer() && quality.is_none() && !method => quality = Some(i),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                if !method && i == types.len() - 1 =>
            {
                method = true
            }
            other => return plan_err!("{usage}: unexpected argument {} of type {other}", i + 1),
        }
    }
    Ok((quality, method))
}

impl AggregateUDFImpl for TimeWeightedAvg {
    fn name(&self) -> &str {
        "time_weighted_avg"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        parse_args(arg_types)?;
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let types: Vec<DataType> = args
            .exprs
            .iter()
            .map(|e| e.data_type(args.schema))
            .collect::<Result<_>>()?;
        let (quality, has_method) = parse_args(&types)?;
        let interpolation = if has_method {
            let method = args.exprs.last().expect("method argument");
            let literal = method
                .downcast_ref::<datafusion::physical_expr::expressions::Literal>()
                .and_then(|l| match l.value() {
                    ScalarValue::Utf8(Some(s))
                    | ScalarValue::Utf8View(Some(s))
                    | ScalarValue::LargeUtf8(Some(s)) => Interpolation::parse(s.as_str()),
                    _ => None,
                });
            match literal {
                Some(i) => i,
                None => {
                    return plan_err!(
                        "time_weighted_avg: the method must be the literal 'linear' or 'step'"
                    );
                }
            }
        } else {
            Interpolation::Linear
        };
        Ok(Box::new(TwaAccumulator {
            interpolation,
            quality,
            points: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |name: &str, t: DataType| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                DataType::List(Arc::new(Field::new_list_field(t, true))),
                true,
            ))
        };
        Ok(vec![
            list("ts", DataType::Timestamp(TimeUnit::Nanosecond, None)),
            list("value", DataType::Float64),
            list("usable", DataType::Boolean),
        ])
    }
}

#[derive(Debug)]
struct TwaAccumulator {
    interpolation: Interpolation,
    quality: Option<usize>,
    /// (ts ns, value, usable)
    points: Vec<(i64, f64, bool)>,
}

/// Time-weighted average of points sorted by time (see the module doc).
pub fn time_weighted_average(
    points: &[(i64, f64, bool)],
    interpolation: Interpolation,
) -> Option<f64> {
    let usable: Vec<_> = points.iter().filter(|p| p.2).collect();
    if usable.len() == 1 {
        return Some(usable[0].1);
    }
    let (mut area, mut duration) = (0.0, 0.0);
    for pair in points.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let dt = (b.0 - a.0) as f64;
        let counts = match interpolation {
            Interpolation::Step => a.2,
            Interpolation::Linear => a.2 && b.2,
        };
        if counts && dt > 0.0 {
            area += dt
                * match interpolation {
                    Interpolation::Step => a.1,
                    Interpolation::Linear => (a.1 + b.1) / 2.0,
                };
            duration += dt;
        }
    }
    if duration > 0.0 {
        Some(area / duration)
    } else if !usable.is_empty() {
        // Usable samples all at one instant (or isolated by gaps): their mean.
        Some(usable.iter().map(|p| p.1).sum::<f64>() / usable.len() as f64)
    } else {
        None
    }
}

impl Accumulator for TwaAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let value = cast(&values[0], &DataType::Float64)?;
        let value = value.as_primitive::<Float64Type>();
        let ts = cast(&values[1], &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
        let ts = ts.as_primitive::<TimestampNanosecondType>();
        let quality = match self.quality {
            Some(i) => Some(cast(&values[i], &DataType::UInt32)?),
            None => None,
        };
        let quality = quality.as_ref().map(|q| q.as_primitive::<UInt32Type>());
        for row in 0..value.len() {
            if ts.is_null(row) {
                continue;
            }
            // Uncertain samples count; Bad ones (top bit set) are gaps.
            let bad = quality.is_some_and(|q| q.is_null(row) || is_bad(q.value(row)));
            let usable = value.is_valid(row) && value.value(row).is_finite() && !bad;
            self.points.push((
                ts.value(row),
                if usable { value.value(row) } else { 0.0 },
                usable,
            ));
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.points.sort_by_key(|p| p.0);
        Ok(ScalarValue::Float64(time_weighted_average(
            &self.points,
            self.interpolation,
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.points.capacity() * std::mem::size_of::<(i64, f64, bool)>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let ts = TimestampNanosecondArray::from_iter_values(self.points.iter().map(|p| p.0));
        let values = Float64Array::from_iter_values(self.points.iter().map(|p| p.1));
        let usable = BooleanArray::from_iter(self.points.iter().map(|p| Some(p.2)));
        Ok(vec![
            ScalarValue::List(Arc::new(ListArray::from_iter_primitive::<
                TimestampNanosecondType,
                _,
                _,
            >([Some(
                ts.iter().collect::<Vec<_>>(),
            )]))),
            ScalarValue::List(Arc::new(
                ListArray::from_iter_primitive::<Float64Type, _, _>([Some(
                    values.iter().collect::<Vec<_>>(),
                )]),
            )),
            ScalarValue::List(Arc::new(single_bool_list(usable))),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (ts, values, usable) = (
            states[0].as_list::<i32>(),
            states[1].as_list::<i32>(),
            states[2].as_list::<i32>(),
        );
        for i in 0..ts.len() {
            if ts.is_null(i) {
                continue;
            }
            let (t, v, u) = (ts.value(i), values.value(i), usable.value(i));
            let (t, v, u) = (
                t.as_primitive::<TimestampNanosecondType>(),
                v.as_primitive::<Float64Type>(),
                u.as_boolean(),
            );
            if t.len() != v.len() || t.len() != u.len() {
                return exec_err!("time_weighted_avg: inconsistent partial state");
            }
            for j in 0..t.len() {
                self.points.push((t.value(j), v.value(j), u.value(j)));
            }
        }
        Ok(())
    }
}

fn single_bool_list(values: BooleanArray) -> ListArray {
    let field = Arc::new(Field::new_list_field(DataType::Boolean, true));
    let offsets = arrow::buffer::OffsetBuffer::from_lengths([values.len()]);
    ListArray::new(field, offsets, Arc::new(values), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn irregular_spacing() {
        // 10 for 1 s, 20 for 3 s: step average 17.5 over 4 s.
        let pts = [(0, 10.0, true), (S, 20.0, true), (4 * S, 30.0, true)];
        assert_eq!(
            time_weighted_average(&pts, Interpolation::Step),
            Some((10.0 + 60.0) / 4.0)
        );
        // linear: (15*1 + 25*3)/4 = 22.5
        assert_eq!(
            time_weighted_average(&pts, Interpolation::Linear),
            Some(22.5)
        );
    }

    #[test]
    fn bad_samples_are_gaps() {
        let pts = [
            (0, 10.0, true),
            (S, 0.0, false),
            (2 * S, 30.0, true),
            (4 * S, 30.0, true),
        ];
        // step: [0,1) 10, [1,2) bad, [2,4) 30 → (10 + 60) / 3
        assert_eq!(
            time_weighted_average(&pts, Interpolation::Step),
            Some(70.0 / 3.0)
        );
        // linear: only [2,4) counts → 30
        assert_eq!(
            time_weighted_average(&pts, Interpolation::Linear),
            Some(30.0)
        );
    }

    #[test]
    fn single_and_empty() {
        assert_eq!(
            time_weighted_average(&[(5, 42.0, true)], Interpolation::Linear),
            Some(42.0)
        );
        assert_eq!(
            time_weighted_average(&[(5, 0.0, false)], Interpolation::Linear),
            None
        );
        assert_eq!(time_weighted_average(&[], Interpolation::Step), None);
    }
}
