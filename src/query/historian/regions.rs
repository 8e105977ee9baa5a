//! Regions (5.4.3.2.1-5.4.3.2.3): an interval's value list cut at every
//! sample into spans that start at one value and end at the next, each with a
//! status. Time-weighted aggregates integrate over them and time-weighted
//! StatusCodes weigh their durations.
//!
//! Two shapes exist:
//! * *bridging* (TimeAverage, Total): samples that do not count as good are
//!   skipped, the span before them reaches over them to the next good value
//!   and becomes Uncertain;
//! * *splitting* (everything with simple bounds): every value starts a
//!   region; a region starting at a Bad value is Bad.
//!
//! With sloped interpolation a region also becomes Uncertain when it ends in
//! a value that is not Good; with stepped interpolation only its start counts
//! (5.4.3.2.2, 5.4.3.2.3). A region that starts at an Uncertain value that
//! does not count as good (TreatUncertainAsBad) is Bad, unless it is the
//! first region. A region running from the last sample into "no data" lasts
//! [`LAST_SAMPLE_LIFETIME`].

use super::status::{self, BAD_NO_DATA, UNCERTAIN_DATA_SUB_NORMAL, Verdict, counts_as_good};
use super::{Config, RawPoint};

/// How long the newest sample lasts when a region runs from it into the end
/// of data: 1 ms, which is what the Annex A tables show (DurationGood 10001 ms
/// for [12:01:20, 12:01:36), Total2 0.090 = 90 x 1 ms for [12:01:30, 12:01:35)).
pub(super) const LAST_SAMPLE_LIFETIME: i64 = 1_000_000;

/// A span between two consecutive values of an interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Region {
    pub start: i64,
    /// ns
    pub duration: i64,
    pub start_value: f64,
    pub end_value: f64,
    pub status: u32,
}

impl Region {
    fn opened_at(sample: &RawPoint, value: f64, status: u32) -> Self {
        Self {
            start: sample.ts,
            duration: 0,
            start_value: value,
            end_value: value,
            status,
        }
    }

    /// Non-Good data touch the region: Good becomes Uncertain, Bad stays Bad.
    fn degrade(&mut self) {
        if !status::is_bad(self.status) {
            self.status = UNCERTAIN_DATA_SUB_NORMAL;
        }
    }

    /// The area under the region's line, in value x seconds.
    pub(super) fn area(&self) -> f64 {
        (self.start_value + self.end_value) / 2.0 * seconds(self.duration)
    }
}

pub(super) fn seconds(duration_ns: i64) -> f64 {
    duration_ns as f64 / 1e9
}

pub(super) fn milliseconds(duration_ns: i64) -> f64 {
    duration_ns as f64 / 1e6
}

/// How values are cut into regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shape {
    /// Skip samples that do not count as good instead of starting a region.
    pub bridge_bad: bool,
    /// Stepped interpolation: a region holds its start value.
    pub stepped: bool,
}

/// Cuts `values` (sorted, bounds included) into regions.
pub(super) fn regions(values: &[RawPoint], config: &Config, shape: Shape) -> Vec<Region> {
    debug_assert!(values.windows(2).all(|pair| pair[0].ts <= pair[1].ts));
    let mut regions = Vec::with_capacity(values.len());
    let mut open: Option<(Region, RawPoint)> = None;
    for (index, sample) in values.iter().enumerate() {
        let is_last = index + 1 == values.len();
        let good = counts_as_good(sample, config);
        let usable = sample.value.filter(|_| !status::is_bad(sample.status));
        let value = usable
            .or(open.as_ref().map(|(region, _)| region.start_value))
            .unwrap_or(0.0);
        let mut sample_status = sample.status;
        if let Some((mut region, opening)) = open.take() {
            if shape.bridge_bad && !good && !is_last {
                region.degrade();
                open = Some((region, opening));
                continue;
            }
            close(&mut region, sample, value, good, shape);
            let runs_into_end_of_data = !shape.bridge_bad
                && is_last
                && sample.status == BAD_NO_DATA
                && counts_as_good(&opening, config);
            region.duration = if runs_into_end_of_data {
                LAST_SAMPLE_LIFETIME
            } else {
                sample.ts - region.start
            };
            debug_assert!(region.duration >= 0);
            regions.push(region);
            if status::is_uncertain(sample_status) && !good {
                sample_status = BAD_NO_DATA;
            }
        }
        open = Some((Region::opened_at(sample, value, sample_status), *sample));
    }
    regions
}

/// Ends `region` at `sample`, whose usable value is `value`.
fn close(region: &mut Region, sample: &RawPoint, value: f64, good: bool, shape: Shape) {
    if shape.stepped {
        if shape.bridge_bad && !good {
            region.degrade();
        }
        region.end_value = region.start_value;
    } else if good {
        if !status::is_good(sample.status) {
            region.degrade();
        }
        region.end_value = value;
    } else {
        region.degrade();
        if shape.bridge_bad && !status::is_bad(sample.status) {
            region.end_value = value;
        }
    }
}

/// The time-weighted verdict (5.4.3.2.1): Uncertain regions are Good unless
/// TreatUncertainAsBad, in which case they are Bad. None without regions.
pub(super) fn verdict(regions: &[Region], config: &Config) -> Option<Verdict> {
    if regions.is_empty() {
        return None;
    }
    let total: i64 = regions.iter().map(|region| region.duration).sum();
    let duration_where = |keep: &dyn Fn(u32) -> bool| -> i64 {
        regions
            .iter()
            .filter(|region| keep(region.status))
            .map(|region| region.duration)
            .sum()
    };
    let good = duration_where(&|status| {
        status::is_good(status) || (status::is_uncertain(status) && !config.treat_uncertain_as_bad)
    });
    let bad = duration_where(&|status| {
        status::is_bad(status) || (status::is_uncertain(status) && config.treat_uncertain_as_bad)
    });
    Some(status::verdict(
        good as f64,
        bad as f64,
        total as f64,
        config,
    ))
}

/// The StatusCode of a time-weighted aggregate: `Bad_NoData` without regions.
pub(super) fn time_weighted_status(regions: &[Region], config: &Config, bits: u32) -> u32 {
    verdict(regions, config).map_or(BAD_NO_DATA, |verdict| status::time_weighted(verdict, bits))
}
