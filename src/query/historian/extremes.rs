//! Minimum, Maximum, MinimumActualTime, MaximumActualTime, Range
//! (5.4.3.10-5.4.3.14) and their ...2 forms with simple bounding values
//! (5.4.3.15-5.4.3.19).
//!
//! Raw forms: Good raw values only; Uncertain_DataSubNormal when samples
//! were left out or an Uncertain value lies beyond the Good extreme;
//! Calculated unless the extreme is the sample at the interval start (then
//! it is a raw result); the ActualTime forms never set Calculated (Annex A)
//! and return the source time of the extreme.
//!
//! ...2 forms: every value that counts as good, bounds included — the end
//! bound only for sloped data, stamped with the EffectiveEndTime when it is
//! the extreme; the result keeps the historian bits of the value it returns
//! (Interpolated for a bound) and takes its severity from the time-weighted
//! StatusCode.
//!
//! Both: MultiValue when the extreme occurs more than once (the oldest one is
//! returned); Range is max - min and always Calculated.

use super::regions::{self, Shape};
use super::status::{
    self, CALCULATED, GOOD, INTERPOLATED, MULTI_VALUE, UNCERTAIN_DATA_SUB_NORMAL, counts_as_good,
};
use super::{Aggregate, Computed, Data, Interval, RawPoint};

/// The ActualTime2 timestamp of an end bound: EffectiveEndTime = interval end
/// minus the resolution of the Annex A timestamps (12:00:15.999).
const EFFECTIVE_END_OFFSET: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Extreme {
    Minimum,
    Maximum,
    Range,
}

impl Extreme {
    pub(super) fn of(aggregate: Aggregate) -> Self {
        use Aggregate::*;
        match aggregate {
            Minimum | MinimumActualTime | Minimum2 | MinimumActualTime2 => Extreme::Minimum,
            Maximum | MaximumActualTime | Maximum2 | MaximumActualTime2 => Extreme::Maximum,
            Range | Range2 => Extreme::Range,
            other => unreachable!("{} is not an extreme", other.name()),
        }
    }
}

/// The oldest sample holding an extreme value so far.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    value: f64,
    ts: i64,
    status: u32,
    repeated: bool,
}

/// Running minimum and maximum of the samples offered.
#[derive(Debug, Default, Clone, Copy)]
struct Extremes {
    minimum: Option<Candidate>,
    maximum: Option<Candidate>,
}

impl Extremes {
    fn offer(&mut self, point: &RawPoint) {
        let Some(value) = point.value else { return };
        let candidate = Candidate {
            value,
            ts: point.ts,
            status: point.status,
            repeated: false,
        };
        keep(&mut self.minimum, candidate, |new, old| new < old);
        keep(&mut self.maximum, candidate, |new, old| new > old);
    }

    /// The value, source time, status and repetition of the chosen extreme;
    /// None before any sample was offered.
    fn pick(&self, which: Extreme) -> Option<Candidate> {
        let (minimum, maximum) = (self.minimum?, self.maximum?);
        Some(match which {
            Extreme::Minimum => minimum,
            Extreme::Maximum => maximum,
            // No single source: never "at the interval start", so Calculated.
            Extreme::Range => Candidate {
                value: maximum.value - minimum.value,
                ts: i64::MIN,
                status: GOOD,
                repeated: false,
            },
        })
    }
}

fn keep(slot: &mut Option<Candidate>, candidate: Candidate, beats: fn(f64, f64) -> bool) {
    match slot {
        None => *slot = Some(candidate),
        Some(held) if beats(candidate.value, held.value) => *slot = Some(candidate),
        Some(held) if candidate.value == held.value => held.repeated = true,
        Some(_) => {}
    }
}

/// The historian bits every extreme shares: Calculated unless the value is
/// the sample at the interval start (or a bound, or an ActualTime result),
/// MultiValue when repeated.
fn extreme_bits(chosen: &Candidate, window: Interval, actual_time: bool, bits: u32) -> u32 {
    let mut bits = bits;
    if !actual_time && chosen.ts != window.start && bits & INTERPOLATED == 0 {
        bits |= CALCULATED;
    }
    if chosen.repeated {
        bits |= MULTI_VALUE;
    }
    bits
}

/// Minimum, Maximum, their ActualTime forms and Range over raw values.
pub(super) fn raw_extreme(
    data: &Data,
    window: Interval,
    which: Extreme,
    actual_time: bool,
) -> Computed {
    let mut good = Extremes::default();
    let mut uncertain = Extremes::default();
    let mut left_out = false;
    for point in data.raw(window) {
        if !counts_as_good(point, data.config) {
            left_out = true;
        } else if status::is_uncertain(point.status) {
            uncertain.offer(point);
        } else {
            good.offer(point);
        }
    }
    let Some(chosen) = good.pick(which) else {
        return Computed::no_data();
    };
    let below = |held: Option<Candidate>, limit: Option<Candidate>| {
        held.zip(limit)
            .is_some_and(|(held, limit)| held.value < limit.value)
    };
    let uncertain_beyond = match which {
        Extreme::Minimum => below(uncertain.minimum, good.minimum),
        Extreme::Maximum => below(good.maximum, uncertain.maximum),
        Extreme::Range => {
            below(uncertain.minimum, good.minimum) || below(good.maximum, uncertain.maximum)
        }
    };
    let code = if left_out || uncertain_beyond {
        UNCERTAIN_DATA_SUB_NORMAL
    } else {
        GOOD
    };
    let bits = extreme_bits(&chosen, window, actual_time, 0);
    Computed {
        value: Some(chosen.value),
        status: status::with_historian_bits(code, bits),
        actual_ts: actual_time.then_some(chosen.ts),
    }
}

/// Minimum2, Maximum2, their ActualTime2 forms and Range2.
pub(super) fn bounded_extreme(
    data: &Data,
    window: Interval,
    which: Extreme,
    actual_time: bool,
) -> Computed {
    let config = data.config;
    let values = data.with_simple_bounds(window);
    let mut extremes = Extremes::default();
    for point in values.iter().filter(|point| counts_as_good(point, config)) {
        if config.stepped && point.ts == window.end {
            break;
        }
        extremes.offer(point);
    }
    let Some(chosen) = extremes.pick(which) else {
        return Computed::no_data();
    };
    let mut bits = extreme_bits(
        &chosen,
        window,
        actual_time,
        status::historian_bits(chosen.status),
    );
    let mut actual_ts = chosen.ts;
    if actual_time && chosen.ts == window.end {
        actual_ts = window.end - EFFECTIVE_END_OFFSET;
        bits |= INTERPOLATED;
    }
    let shape = Shape {
        bridge_bad: false,
        stepped: config.stepped,
    };
    let regions = regions::regions(&values, config, shape);
    Computed {
        value: Some(chosen.value),
        status: regions::time_weighted_status(&regions, config, bits),
        actual_ts: actual_time.then_some(actual_ts),
    }
}
