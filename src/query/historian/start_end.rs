//! Start, End (5.4.3.25-26), Delta (5.4.3.27), StartBound, EndBound and
//! DeltaBounds (5.4.3.28-30).
//!
//! * Start / End: the first / last raw sample of the interval as it is,
//!   Bad ones included, with its own status.
//! * Delta: last minus first Good raw value; Uncertain_DataSubNormal when
//!   samples were skipped to find them, `Bad_NoData` without a Good value
//!   (Annex A, Historian1 [12:00:32, 12:00:48) and [12:01:04, 12:01:20)).
//! * StartBound / EndBound: the simple bounding value at the interval start
//!   / end; EndBound is stamped with the interval start and, unless Bad,
//!   marked Calculated instead of Interpolated.
//! * DeltaBounds: EndBound minus StartBound, `Bad_NoData` when either is Bad,
//!   Uncertain_DataSubNormal when either is not Good.

use super::status::{self, CALCULATED, GOOD, UNCERTAIN_DATA_SUB_NORMAL};
use super::{Computed, Data, Interval, RawPoint};

pub(super) fn start(data: &Data, window: Interval) -> Computed {
    data.raw(window)
        .first()
        .map_or_else(Computed::no_data, |point| Computed::sample(*point))
}

pub(super) fn end(data: &Data, window: Interval) -> Computed {
    data.raw(window)
        .last()
        .map_or_else(Computed::no_data, |point| Computed::sample(*point))
}

/// The difference `last - first` with its status: Uncertain when `skipped`
/// or either value is not Good, `Bad_NoData` when either has no usable value.
fn difference(first: &RawPoint, last: &RawPoint, skipped: bool) -> Computed {
    let usable = |point: &RawPoint| point.value.filter(|_| !status::is_bad(point.status));
    let (Some(first_value), Some(last_value)) = (usable(first), usable(last)) else {
        return Computed::no_data();
    };
    let uncertain = skipped || !status::is_good(first.status) || !status::is_good(last.status);
    let code = if uncertain {
        UNCERTAIN_DATA_SUB_NORMAL
    } else {
        GOOD
    };
    Computed::new(
        last_value - first_value,
        status::with_historian_bits(code, CALCULATED),
    )
}

pub(super) fn delta(data: &Data, window: Interval) -> Computed {
    let samples = data.raw(window);
    let is_usable = |point: &RawPoint| status::is_good(point.status) && point.value.is_some();
    let (Some(first), Some(last)) = (
        samples.iter().position(is_usable),
        samples.iter().rposition(is_usable),
    ) else {
        return Computed::no_data();
    };
    let skipped = first > 0 || last + 1 < samples.len();
    difference(&samples[first], &samples[last], skipped)
}

pub(super) fn start_bound(data: &Data, window: Interval) -> Computed {
    Computed::sample(data.simple_bound(window.start))
}

pub(super) fn end_bound(data: &Data, window: Interval) -> Computed {
    let bound = data.simple_bound(window.end);
    let status = if status::is_bad(bound.status) {
        bound.status
    } else {
        status::with_historian_bits(bound.status, CALCULATED)
    };
    Computed {
        status,
        ..Computed::sample(bound)
    }
}

pub(super) fn delta_bounds(data: &Data, window: Interval) -> Computed {
    let first = data.simple_bound(window.start);
    let last = data.simple_bound(window.end);
    difference(&first, &last, false)
}
