//! Plot values: a time range cut into one column per pixel, and for each
//! column the lowest and the highest sample (as PI's plot values and
//! Canary's min/max decimation do), so a line drawn through them shows every
//! spike a full-resolution trend would, from at most two points per pixel.
//! Each column also keeps the worst quality seen in it, for shading.

use serde::Serialize;

/// What one column has seen.
#[derive(Debug, Clone, Copy)]
struct Column {
    /// Lowest value, and the earliest time it was seen.
    low: (f64, i64),
    /// Highest value, and the earliest time it was seen.
    high: (f64, i64),
    /// Samples with a drawable value (not null, not NaN).
    values: u64,
    /// Worst quality severity: 0 Good, 1 Uncertain, 2 Bad.
    worst: u8,
    /// Severity of the column's newest sample (the worst on a tie): the
    /// quality that holds over the empty columns after it.
    last_severity: u8,
    first_ts: i64,
    last_ts: i64,
}

/// Cuts `[from_ns, to_ns)` into `width` columns and folds samples into them,
/// in any order.
#[derive(Debug)]
pub struct Decimator {
    from_ns: i64,
    to_ns: i64,
    /// Nanoseconds per column (at least 1), wider than i64 for a range
    /// of i64::MIN..i64::MAX in few columns.
    step: i128,
    columns: Vec<Option<Column>>,
    samples: u64,
}

/// The severity of an OPC UA StatusCode: its top two bits (0 Good,
/// 1 Uncertain, 2 Bad; the reserved 3 counts as Bad).
pub fn severity(quality: u32) -> u8 {
    ((quality >> 30) as u8).min(2)
}

/// The decimated series, in columns' and time order.
#[derive(Debug, Serialize, PartialEq)]
pub struct PlotValues {
    /// Nanoseconds per column.
    pub step_ns: i64,
    /// Samples in the range (drawable or not).
    pub samples: u64,
    /// Column of each point.
    pub c: Vec<u32>,
    /// Time of each point, milliseconds since the epoch (fractional).
    pub t: Vec<f64>,
    /// Value of each point.
    pub v: Vec<f64>,
    /// Runs of columns shaded Uncertain (1) or Bad (2): `[first column,
    /// last column, severity]`. A column is shaded with the worst quality of
    /// its samples; the columns after it without samples with the quality
    /// of its newest sample, which holds until the next sample (to the end
    /// of the range after the last one).
    pub quality: Vec<[u32; 3]>,
}

impl Decimator {
    /// `width` is clamped to 1..=`max_width`; `to_ns` must be after
    /// `from_ns` (any two i64 times: the arithmetic is done in i128).
    pub fn new(from_ns: i64, to_ns: i64, width: u32, max_width: u32) -> Self {
        assert!(to_ns > from_ns, "an empty or reversed time range");
        let width = i128::from(width.clamp(1, max_width));
        let span = i128::from(to_ns) - i128::from(from_ns);
        let step = (span + width - 1) / width;
        let columns = usize::try_from((span + step - 1) / step).expect("at most max_width");
        Self {
            from_ns,
            to_ns,
            step,
            columns: vec![None; columns],
            samples: 0,
        }
    }

    /// Folds one sample in; one outside the range is ignored.
    pub fn add(&mut self, ts: i64, value: Option<f64>, quality: u32) {
        if ts < self.from_ns || ts >= self.to_ns {
            return;
        }
        self.samples += 1;
        let index = ((i128::from(ts) - i128::from(self.from_ns)) / self.step) as usize;
        // ±inf cannot be drawn (nor said in JSON); NaN is no value.
        let value = value.filter(|v| v.is_finite());
        let worst = severity(quality);
        let column = self.columns[index].get_or_insert(Column {
            low: (f64::INFINITY, i64::MAX),
            high: (f64::NEG_INFINITY, i64::MAX),
            values: 0,
            worst,
            last_severity: worst,
            first_ts: ts,
            last_ts: ts,
        });
        column.worst = column.worst.max(worst);
        column.first_ts = column.first_ts.min(ts);
        if ts > column.last_ts {
            column.last_severity = worst;
        } else if ts == column.last_ts {
            column.last_severity = column.last_severity.max(worst);
        }
        column.last_ts = column.last_ts.max(ts);
        if let Some(v) = value {
            column.values += 1;
            if v < column.low.0 || (v == column.low.0 && ts < column.low.1) {
                column.low = (v, ts);
            }
            if v > column.high.0 || (v == column.high.0 && ts < column.high.1) {
                column.high = (v, ts);
            }
        }
    }

    /// The plot values: per column its low and high point in time order
    /// (one point where they are the same sample).
    pub fn finish(self) -> PlotValues {
        let mut out = PlotValues {
            step_ns: i64::try_from(self.step).unwrap_or(i64::MAX),
            samples: self.samples,
            c: Vec::new(),
            t: Vec::new(),
            v: Vec::new(),
            quality: Vec::new(),
        };
        // The quality held by the newest sample so far, and where it began.
        let mut held: (u32, Option<u32>) = (0, None);
        for (index, column) in self.columns.iter().enumerate() {
            let Some(column) = column else { continue };
            let index = index as u32;
            if let (severity @ 1.., Some(previous)) = held {
                if index > previous + 1 {
                    shade(&mut out.quality, previous + 1, index - 1, severity);
                }
            }
            if column.worst > 0 {
                shade(&mut out.quality, index, index, u32::from(column.worst));
            }
            held = (u32::from(column.last_severity), Some(index));
            if column.values == 0 {
                continue;
            }
            let (first, second) = if column.low.1 <= column.high.1 {
                (column.low, column.high)
            } else {
                (column.high, column.low)
            };
            let same = first.1 == second.1 && first.0 == second.0;
            for (v, ts) in std::iter::once(first).chain((!same).then_some(second)) {
                out.c.push(index);
                out.t.push(ts as f64 / 1e6);
                out.v.push(v);
            }
        }
        if let (severity @ 1.., Some(previous)) = held {
            let last = self.columns.len() as u32 - 1;
            if previous < last {
                shade(&mut out.quality, previous + 1, last, severity);
            }
        }
        out
    }
}

/// Adds columns `first..=last` at `severity` to the runs, joining the last
/// run when it touches them at the same severity.
fn shade(runs: &mut Vec<[u32; 3]>, first: u32, last: u32, severity: u32) {
    match runs.last_mut() {
        Some(run) if run[2] == severity && run[1] + 1 >= first => run[1] = run[1].max(last),
        _ => runs.push([first, last, severity]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_column_keeps_its_low_and_high_in_time_order() {
        // 10 s in 5 columns of 2 s.
        let mut d = Decimator::new(0, 10_000_000_000, 5, 4000);
        for (s, v) in [(0, 5.0), (1, 1.0), (3, 9.0), (2, 2.0), (4, 7.0)] {
            d.add(s * 1_000_000_000, Some(v), 0);
        }
        let p = d.finish();
        assert_eq!(p.step_ns, 2_000_000_000);
        assert_eq!(p.samples, 5);
        assert_eq!(p.c, vec![0, 0, 1, 1, 2]);
        assert_eq!(p.t, vec![0.0, 1000.0, 2000.0, 3000.0, 4000.0]);
        assert_eq!(p.v, vec![5.0, 1.0, 2.0, 9.0, 7.0]);
        assert!(p.quality.is_empty());
    }

    #[test]
    fn a_high_before_the_low_comes_first_and_ties_take_the_earliest() {
        let mut d = Decimator::new(0, 100, 1, 4000);
        d.add(50, Some(3.0), 0);
        d.add(10, Some(8.0), 0);
        d.add(20, Some(8.0), 0);
        d.add(60, Some(3.0), 0);
        let p = d.finish();
        assert_eq!(p.t, vec![10.0 / 1e6, 50.0 / 1e6]);
        assert_eq!(p.v, vec![8.0, 3.0]);
    }

    #[test]
    fn bad_and_uncertain_columns_become_runs_and_nan_is_not_drawn() {
        let mut d = Decimator::new(0, 60, 6, 4000);
        d.add(0, Some(1.0), 0);
        d.add(10, Some(f64::NAN), 0x8000_0000);
        d.add(20, None, 0x8034_0000);
        d.add(30, Some(2.0), 0x4000_0000);
        d.add(45, Some(2.0), 0x4000_0000);
        d.add(99, Some(2.0), 0); // outside the range
        let p = d.finish();
        assert_eq!(p.samples, 5);
        // Column 5 has no sample: the Uncertain of the newest one holds.
        assert_eq!(p.quality, vec![[1, 2, 2], [3, 5, 1]]);
        assert_eq!(p.c, vec![0, 3, 4]);
    }

    #[test]
    fn a_bad_run_reaches_the_next_sample_across_empty_columns() {
        let mut d = Decimator::new(0, 100, 10, 4000);
        for (ts, quality) in [(0, 0), (30, 0x8000_0000), (60, 0x8000_0000), (90, 0)] {
            d.add(ts, Some(1.0), quality);
        }
        assert_eq!(d.finish().quality, vec![[3, 8, 2]]);
        let mut d = Decimator::new(0, 100, 10, 4000);
        for (ts, quality) in [(30, 0x8000_0000), (60, 0x4000_0000)] {
            d.add(ts, Some(1.0), quality);
        }
        assert_eq!(d.finish().quality, vec![[3, 5, 2], [6, 9, 1]]);
        // Bad then Good in one column: the column is shaded, the gap after it is not.
        let mut d = Decimator::new(0, 100, 10, 4000);
        d.add(30, Some(1.0), 0x8000_0000);
        d.add(35, Some(1.0), 0);
        d.add(90, Some(1.0), 0);
        assert_eq!(d.finish().quality, vec![[3, 3, 2]]);
    }

    #[test]
    fn extreme_times_and_infinite_values_do_not_break_it() {
        let mut d = Decimator::new(i64::MIN, i64::MAX, 1, 8192);
        d.add(i64::MAX - 1, Some(1.0), 0);
        assert_eq!(d.finish().c, vec![0]);
        let mut d = Decimator::new(i64::MIN, i64::MAX, 4096, 8192);
        d.add(0, Some(f64::INFINITY), 0);
        d.add(1, Some(2.0), 0);
        let p = d.finish();
        assert_eq!((p.samples, p.v.clone()), (2, vec![2.0]));
        let mut d = Decimator::new(0, 3, 10, 8192);
        d.add(2, Some(1.0), 0);
        assert_eq!(d.finish().c, vec![2]);
    }

    #[test]
    fn the_width_is_clamped_and_never_more_than_two_points_per_column() {
        let mut d = Decimator::new(0, 1_000_000, 1_000_000, 100);
        for ts in 0..1_000_000 {
            d.add(ts, Some((ts % 7) as f64), 0);
        }
        let p = d.finish();
        assert_eq!(p.step_ns, 10_000);
        assert!(p.t.len() <= 200);
        assert_eq!(p.samples, 1_000_000);
    }
}
