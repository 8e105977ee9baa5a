//! Average (5.4.3.5), TimeAverage (5.4.3.6), TimeAverage2 (5.4.3.7), Total
//! (5.4.3.8) and Total2 (5.4.3.9).
//!
//! * Average: mean of the Good raw values, StatusCode by counting values.
//! * TimeAverage / Total: interpolated bounding values, the area under the
//!   line through the bounds and every good sample (Bad samples are bridged
//!   and make the result Uncertain). TimeAverage divides by the time covered
//!   by data; Total is the area in value x seconds. The Annex A tables
//!   compute TimeAverage with sloped lines whatever the interpolation of the
//!   variable (Historian3's TimeAverage equals Historian2's), but Total with
//!   the variable's own (Historian3's Total is stepped: 30 for
//!   [12:00:00, 12:00:05) = 10 x 3 s).
//! * TimeAverage2 / Total2: simple bounding values, the variable's
//!   interpolation, Bad regions left out of both the area and the covered
//!   time, time-weighted StatusCode. Total2 = TimeAverage2 x seconds of
//!   non-Bad data (1.05).

use super::regions::{self, Shape};
use super::status::{self, CALCULATED, GOOD, UNCERTAIN_DATA_SUB_NORMAL};
use super::{Aggregate, Computed, Data, Interval, good_values};

/// Mean of the Good raw values.
pub(super) fn average(data: &Data, window: Interval) -> Computed {
    let samples = data.raw(window);
    let values = good_values(samples);
    if values.is_empty() {
        return Computed::no_data();
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    Computed::new(mean, status::counted(samples, CALCULATED, data.config))
}

/// The time-weighted aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimeWeighted {
    Average,
    Total,
    Average2,
    Total2,
}

impl TimeWeighted {
    pub(super) fn of(aggregate: Aggregate) -> Self {
        match aggregate {
            Aggregate::TimeAverage => TimeWeighted::Average,
            Aggregate::Total => TimeWeighted::Total,
            Aggregate::TimeAverage2 => TimeWeighted::Average2,
            Aggregate::Total2 => TimeWeighted::Total2,
            other => unreachable!("{} is not time-weighted", other.name()),
        }
    }

    fn uses_simple_bounds(self) -> bool {
        matches!(self, TimeWeighted::Average2 | TimeWeighted::Total2)
    }

    fn is_total(self) -> bool {
        matches!(self, TimeWeighted::Total | TimeWeighted::Total2)
    }
}

pub(super) fn time_weighted(data: &Data, window: Interval, kind: TimeWeighted) -> Computed {
    let config = data.config;
    let (values, shape) = if kind.uses_simple_bounds() {
        let shape = Shape {
            bridge_bad: false,
            stepped: config.stepped,
        };
        (data.with_simple_bounds(window), shape)
    } else {
        let stepped = kind == TimeWeighted::Total && config.stepped;
        let shape = Shape {
            bridge_bad: true,
            stepped,
        };
        (data.with_interpolated_bounds(window, stepped), shape)
    };
    let regions = regions::regions(&values, config, shape);
    let usable = regions
        .iter()
        .filter(|region| !status::is_bad(region.status));
    let area: f64 = usable.clone().map(|region| region.area()).sum();
    let covered: i64 = usable.map(|region| region.duration).sum();
    if covered == 0 {
        return Computed::no_data();
    }
    let value = if kind.is_total() {
        area
    } else {
        area / regions::seconds(covered)
    };
    let status = if kind.uses_simple_bounds() {
        regions::time_weighted_status(&regions, config, CALCULATED)
    } else if regions.iter().all(|region| status::is_good(region.status)) {
        status::with_historian_bits(GOOD, CALCULATED)
    } else {
        status::with_historian_bits(UNCERTAIN_DATA_SUB_NORMAL, CALCULATED)
    };
    Computed::new(value, status)
}
