//! DurationGood, DurationBad (5.4.3.31-32), PercentGood, PercentBad
//! (5.4.3.33-34), WorstQuality and WorstQuality2 (5.4.3.35-36).
//!
//! * Duration* / Percent*: stepped regions over simple bounding values; a
//!   region is Good or Bad by the severity of the value it starts at
//!   (Uncertain regions are neither). Durations in milliseconds; percentages
//!   of the time the regions cover (the covered part of a partial interval).
//!   Always `Good, Calculated`.
//! * WorstQuality: the worst StatusCode code among the raw samples (Bad over
//!   Uncertain over Good; the first of that severity), returned as the value;
//!   `Good, Calculated`, MultiValue when that severity occurs more than once.
//!   WorstQuality2 also looks at the simple bounding values.

use super::regions::{self, Region, Shape, milliseconds};
use super::status::{self, CALCULATED, GOOD, MULTI_VALUE};
use super::{Computed, Data, Interval, RawPoint};

/// The regions during which the interval held each value: stepped, split
/// at every sample, over simple bounding values. DurationInState* uses them
/// too.
pub(super) fn held_regions(data: &Data, window: Interval) -> Vec<Region> {
    let shape = Shape {
        bridge_bad: false,
        stepped: true,
    };
    regions::regions(&data.with_simple_bounds(window), data.config, shape)
}

/// Which regions a Duration* / Percent* aggregate adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Of {
    Good,
    Bad,
}

/// Time in the selected regions and time in all regions, ns.
fn selected_and_total(data: &Data, window: Interval, of: Of) -> (i64, i64) {
    let regions = held_regions(data, window);
    let selected = regions
        .iter()
        .filter(|region| match of {
            Of::Good => status::is_good(region.status),
            Of::Bad => status::is_bad(region.status),
        })
        .map(|region| region.duration)
        .sum();
    let total = regions.iter().map(|region| region.duration).sum();
    (selected, total)
}

fn good_calculated(value: f64) -> Computed {
    Computed::new(value, status::with_historian_bits(GOOD, CALCULATED))
}

pub(super) fn duration(data: &Data, window: Interval, of: Of) -> Computed {
    let (selected, _) = selected_and_total(data, window, of);
    good_calculated(milliseconds(selected))
}

pub(super) fn percent(data: &Data, window: Interval, of: Of) -> Computed {
    let (selected, total) = selected_and_total(data, window, of);
    if total == 0 {
        return Computed::no_data();
    }
    good_calculated(selected as f64 / total as f64 * 100.0)
}

/// Orders severities: Good < Uncertain < Bad.
fn badness(status: u32) -> u8 {
    if status::is_bad(status) {
        2
    } else if status::is_uncertain(status) {
        1
    } else {
        0
    }
}

pub(super) fn worst_quality(data: &Data, window: Interval, with_bounds: bool) -> Computed {
    let framed;
    let samples: &[RawPoint] = if with_bounds {
        framed = data.with_simple_bounds(window);
        &framed
    } else {
        data.raw(window)
    };
    let Some(worst) = samples.iter().map(|point| badness(point.status)).max() else {
        return Computed::no_data();
    };
    let mut of_worst = samples
        .iter()
        .filter(|point| badness(point.status) == worst);
    let first = of_worst
        .next()
        .map_or(GOOD, |point| status::code(point.status));
    let repeated = worst > 0 && of_worst.next().is_some();
    let bits = if repeated {
        CALCULATED | MULTI_VALUE
    } else {
        CALCULATED
    };
    Computed::new(f64::from(first), status::with_historian_bits(GOOD, bits))
}
