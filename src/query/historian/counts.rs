//! Count (5.4.3.21), AnnotationCount (5.4.3.20), DurationInStateZero /
//! DurationInStateNonZero (5.4.3.22-23) and NumberOfTransitions (5.4.3.24).
//!
//! * Count: the number of Good raw values, StatusCode by counting values.
//! * DurationInState*: milliseconds during which the value held (stepped
//!   regions over simple bounding values) zero / non-zero, counting only
//!   regions that start at a Good value; time-weighted StatusCode.
//! * NumberOfTransitions: how often consecutive good values differ, starting
//!   from the last good value before the interval; with no good value before,
//!   the first one counts as a transition out of "no data" (Annex A:
//!   Historian1 [12:00:00, 12:00:16) holds one sample and shows 1).
//! * AnnotationCount counts annotations, which are not samples: see
//!   [`annotation_count`].

use super::durations::held_regions;
use super::regions::{self, milliseconds};
use super::status::{self, CALCULATED, GOOD, counts_as_good};
use super::{Computed, Data, Interval, Output, intervals};

pub(super) fn count(data: &Data, window: Interval) -> Computed {
    let samples = data.raw(window);
    let good = samples
        .iter()
        .filter(|point| status::is_good(point.status))
        .count();
    Computed::new(
        good as f64,
        status::counted(samples, CALCULATED, data.config),
    )
}

pub(super) fn duration_in_state(data: &Data, window: Interval, non_zero: bool) -> Computed {
    let regions = held_regions(data, window);
    let held: i64 = regions
        .iter()
        .filter(|region| status::is_good(region.status) && (region.start_value != 0.0) == non_zero)
        .map(|region| region.duration)
        .sum();
    Computed::new(
        milliseconds(held),
        regions::time_weighted_status(&regions, data.config, CALCULATED),
    )
}

pub(super) fn number_of_transitions(data: &Data, window: Interval) -> Computed {
    let config = data.config;
    let at = data.points.partition_point(|point| point.ts < window.start);
    let before = data
        .good
        .last_before(at)
        .and_then(|index| data.points[index].value);
    let samples = data.raw(window);
    let mut previous = before;
    let mut transitions = 0_u32;
    for value in samples
        .iter()
        .filter(|point| counts_as_good(point, config))
        .filter_map(|point| point.value)
    {
        if previous != Some(value) {
            transitions += 1;
        }
        previous = Some(value);
    }
    Computed::new(
        f64::from(transitions),
        status::counted(samples, CALCULATED, config),
    )
}

/// AnnotationCount (5.4.3.20): the number of annotations per interval, always
/// `Good, Calculated` (Annex A). `annotations` are their timestamps in any
/// order. Annotations are not samples, so this is not an [`super::Aggregate`].
///
/// # Panics
/// If `start >= end` or `interval <= 0`.
pub fn annotation_count(annotations: &[i64], start: i64, end: i64, interval: i64) -> Vec<Output> {
    let mut sorted = annotations.to_vec();
    sorted.sort_unstable();
    intervals(start, end, interval)
        .map(|window| {
            let from = sorted.partition_point(|&ts| ts < window.start);
            let to = sorted.partition_point(|&ts| ts < window.end);
            Output {
                ts: window.start,
                value: Some((to - from) as f64),
                status: status::with_historian_bits(GOOD, CALCULATED),
                actual_ts: None,
            }
        })
        .collect()
}
