//! Bounding values (3.1.7-3.1.9): the value of a series at an instant that
//! need not hold a sample, and the value lists of an interval with its bounds.
//!
//! * Interpolated bounding values (3.1.8) skip every sample that does not
//!   count as good and interpolate between the good ones around the instant,
//!   extrapolating past the last one; Interpolative, TimeAverage and Total
//!   use them.
//! * Simple bounding values (3.1.9) look only at the samples immediately
//!   before and after the instant, Bad ones included; the ...2 aggregates,
//!   the Duration* aggregates, StartBound, EndBound, DeltaBounds and
//!   WorstQuality2 use them.
//!
//! A bound that is not a raw sample carries the Interpolated bit.

use super::status::{
    self, BAD_NO_DATA, GOOD, INTERPOLATED, UNCERTAIN_DATA_SUB_NORMAL, counts_as_good,
};
use super::{Config, Data, Interval, RawPoint};

/// Where the samples that count as good are, precomputed once per series so
/// that every interpolated bound is a binary search plus two lookups, even
/// across long stretches of Bad or valueless samples (a string tag has no
/// good value at all: a scan per bound made a week at 1 min quadratic).
#[derive(Debug, Default)]
pub(super) struct GoodIndex {
    /// `last_before[i]`: index of the last good sample before `i`, for `i` in `0..=len`.
    last_before: Vec<u32>,
    /// `first_from[i]`: index of the first good sample at or after `i`, for `i` in `0..=len`.
    first_from: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl GoodIndex {
    pub(super) fn new(points: &[RawPoint], config: &Config) -> Self {
        assert!(
            points.len() < NONE as usize,
            "a series of more than 4 G samples"
        );
        let mut last_before = Vec::with_capacity(points.len() + 1);
        let mut last = NONE;
        for (index, point) in points.iter().enumerate() {
            last_before.push(last);
            if counts_as_good(point, config) {
                last = index as u32;
            }
        }
        last_before.push(last);
        let mut first_from = vec![NONE; points.len() + 1];
        for index in (0..points.len()).rev() {
            first_from[index] = if counts_as_good(&points[index], config) {
                index as u32
            } else {
                first_from[index + 1]
            };
        }
        Self {
            last_before,
            first_from,
        }
    }

    pub(super) fn last_before(&self, index: usize) -> Option<usize> {
        Some(self.last_before[index])
            .filter(|&i| i != NONE)
            .map(|i| i as usize)
    }

    pub(super) fn first_from(&self, index: usize) -> Option<usize> {
        Some(self.first_from[index])
            .filter(|&i| i != NONE)
            .map(|i| i as usize)
    }
}

/// A bound without a value: no data to derive one from.
fn no_data(ts: i64) -> RawPoint {
    RawPoint {
        ts,
        value: None,
        status: BAD_NO_DATA,
    }
}

/// An interpolated or extrapolated bound.
fn derived(ts: i64, value: f64, uncertain: bool) -> RawPoint {
    let code = if uncertain {
        UNCERTAIN_DATA_SUB_NORMAL
    } else {
        GOOD
    };
    RawPoint {
        ts,
        value: Some(value),
        status: status::with_historian_bits(code, INTERPOLATED),
    }
}

fn value_of(point: &RawPoint) -> f64 {
    point
        .value
        .expect("bounds are derived from samples that count as good, which have values")
}

/// The value at `ts` on the line through two samples.
fn on_line(ts: i64, first: &RawPoint, second: &RawPoint) -> f64 {
    debug_assert!(first.ts < second.ts);
    let (first_value, second_value) = (value_of(first), value_of(second));
    let span = (second.ts - first.ts) as f64;
    first_value + (second_value - first_value) * ((ts - first.ts) as f64 / span)
}

/// The sloped bound between `before` and `after`: Uncertain when either is
/// not Good.
fn sloped(ts: i64, before: &RawPoint, after: &RawPoint) -> RawPoint {
    let uncertain = !status::is_good(before.status) || !status::is_good(after.status);
    derived(ts, on_line(ts, before, after), uncertain)
}

/// The interpolated bounding value at `ts` (3.1.8): the good sample at `ts`
/// as it is; else the line between the good samples around `ts` (Uncertain
/// when samples were skipped between them or either is Uncertain), or with
/// `stepped` the value of the one before (Uncertain when a skipped sample lies
/// between it and `ts`, `ts` included); past the last good sample an
/// extrapolation, always Uncertain; `Bad_NoData` without a good sample before
/// `ts`.
pub(super) fn interpolated(data: &Data, ts: i64, stepped: bool) -> RawPoint {
    let (points, config, good) = (&data.points, data.config, &data.good);
    let at = points.partition_point(|point| point.ts < ts);
    let exact = points.get(at).filter(|point| point.ts == ts);
    if let Some(point) = exact.filter(|point| counts_as_good(point, config)) {
        return *point;
    }
    let Some(before_index) = good.last_before(at) else {
        return no_data(ts);
    };
    let before = &points[before_index];
    let after_start = at + usize::from(exact.is_some());
    let after = good.first_from(after_start).map(|index| &points[index]);
    if !stepped {
        if let Some(after) = after {
            let mut bound = sloped(ts, before, after);
            let skipped_between = points[before_index + 1].ts != after.ts;
            if skipped_between {
                bound.status = status::with_historian_bits(UNCERTAIN_DATA_SUB_NORMAL, INTERPOLATED);
            }
            return bound;
        }
        if config.use_sloped_extrapolation
            && let Some(earlier) = good.last_before(before_index).map(|index| &points[index])
        {
            return derived(ts, on_line(ts, earlier, before), true);
        }
    }
    let extrapolated = after.is_none();
    let skipped = points[before_index + 1..]
        .first()
        .is_some_and(|next| next.ts <= ts);
    let uncertain = extrapolated || skipped || !status::is_good(before.status);
    derived(ts, value_of(before), uncertain)
}

/// The simple bounding value at `ts` (3.1.9): the sample at `ts` as it is,
/// even Bad; else from the samples immediately before and after `ts`:
/// `Bad_NoData` when the one before is missing or does not count as good, or
/// when there is none after (end of data); sloped when the one after counts as
/// good, otherwise stepped and Uncertain (sloped interpolation was wanted but
/// impossible); stepped data take the value before.
pub(super) fn simple(points: &[RawPoint], ts: i64, config: &Config) -> RawPoint {
    let at = points.partition_point(|point| point.ts < ts);
    if let Some(point) = points.get(at).filter(|point| point.ts == ts) {
        return *point;
    }
    let Some(before) = at.checked_sub(1).map(|index| &points[index]) else {
        return no_data(ts);
    };
    if !counts_as_good(before, config) {
        return no_data(ts);
    }
    let Some(after) = points.get(at) else {
        return no_data(ts);
    };
    if config.stepped {
        derived(ts, value_of(before), !status::is_good(before.status))
    } else if counts_as_good(after, config) {
        sloped(ts, before, after)
    } else {
        derived(ts, value_of(before), true)
    }
}

impl Data<'_> {
    /// The samples strictly inside the interval.
    fn interior(&self, window: Interval) -> &[RawPoint] {
        let from = window.start.saturating_add(1);
        self.samples_in(from, window.end)
    }

    /// The start bound, the samples strictly inside, the end bound.
    fn framed(&self, window: Interval, bound: impl Fn(i64) -> RawPoint) -> Vec<RawPoint> {
        let interior = self.interior(window);
        let mut values = Vec::with_capacity(interior.len() + 2);
        values.push(bound(window.start));
        values.extend_from_slice(interior);
        values.push(bound(window.end));
        values
    }

    /// The interval's samples framed by its simple bounding values.
    pub(super) fn with_simple_bounds(&self, window: Interval) -> Vec<RawPoint> {
        self.framed(window, |ts| simple(&self.points, ts, self.config))
    }

    /// The interval's samples framed by its interpolated bounding values.
    pub(super) fn with_interpolated_bounds(
        &self,
        window: Interval,
        stepped: bool,
    ) -> Vec<RawPoint> {
        self.framed(window, |ts| interpolated(self, ts, stepped))
    }

    pub(super) fn simple_bound(&self, ts: i64) -> RawPoint {
        simple(&self.points, ts, self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index answers exactly what a linear search would, on a series
    /// mixing Good, Uncertain, Bad and valueless samples.
    #[test]
    fn good_index_matches_a_linear_search() {
        let statuses = [GOOD, 0x4000_0000, status::BAD, GOOD, GOOD, 0x8000_0000];
        let points: Vec<RawPoint> = (0..40)
            .map(|i| RawPoint {
                ts: i * 10,
                value: (i % 7 != 3).then_some(i as f64),
                status: statuses[(i as usize * 5 + i as usize / 3) % statuses.len()],
            })
            .collect();
        for treat_uncertain_as_bad in [true, false] {
            let config = Config {
                treat_uncertain_as_bad,
                ..Config::default()
            };
            let index = GoodIndex::new(&points, &config);
            let good = |p: &RawPoint| counts_as_good(p, &config);
            for at in 0..=points.len() {
                assert_eq!(index.last_before(at), points[..at].iter().rposition(good));
                assert_eq!(
                    index.first_from(at),
                    points[at..].iter().position(good).map(|i| i + at)
                );
            }
        }
        assert_eq!(GoodIndex::new(&[], &Config::default()).last_before(0), None);
    }
}
