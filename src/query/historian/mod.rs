//! OPC UA Part 13 (Aggregates) kernels: pure functions from the raw samples of
//! one tag to one processed value per interval, with the StatusCode Part 13
//! prescribes. No DataFusion and no I/O here; the `history_interpolated` and
//! `history_aggregate` table functions load a [`Series`] and call
//! [`aggregate`] / [`interpolate`].
//!
//! Clause numbers are those of OPC 10000-13 1.05. The reference for every
//! detail the text leaves open is the set of Annex A example tables
//! (`tests/fixtures/part13`, 1.05 generator output); `tests::conformance`
//! runs all of them.
//!
//! # Data model
//!
//! * Intervals are `[start + k·interval, start + (k+1)·interval)`, the last
//!   one cut at `end` (5.4.2.2). Every result carries the interval start as
//!   its timestamp; the *ActualTime aggregates also report the source time.
//! * A sample "counts as good" when it has a value and its severity is Good,
//!   or Uncertain while `treat_uncertain_as_bad` is false (4.2.1.2). Bounding
//!   values (3.1.8, 3.1.9) and the ...2 aggregates use that rule; the
//!   raw-value aggregates of 5.4.3.5, 5.4.3.21, 5.4.3.37-40 use only samples
//!   whose severity is Good, as the Annex A tables do.
//! * Data exist from the first stored sample to the last one. Intervals that
//!   end at or before the first sample or start after the last one are
//!   `Bad_NoData` (except Interpolative, which extrapolates); an interval
//!   that holds the first sample after its start, or the last sample, is
//!   `Partial` (5.3.3.2) — except for Interpolative and Average, whose
//!   tables never set it.
//! * The last sample is taken to last 1 ms where a region would otherwise
//!   run into "no data" (the Annex A durations 10001 / 7001 ms and the Total2
//!   of 0.09 over a lone last sample pin this down).
//!
//! # "Point created" samples
//!
//! A sample whose status is exactly `Bad_NoData` and which has no value is a
//! placeholder (Part 13's "First archive entry, Point created" or an "end of
//! data" marker), not a measurement: every kernel drops it before it looks at
//! the data. Counting it as a Bad raw value would contradict the Annex A
//! tables, which were generated without it (Average Historian2
//! [12:00:00, 12:00:05) is `Good`, WorstQuality Historian1 [12:00:00,
//! 12:00:16) is `Good`, the first intervals are `Partial`). Ordinary Bad
//! samples — with or without a value — remain Bad raw values, and a sample
//! without a value (e.g. a text-only sample) is Bad whatever its status says.
//!
//! # StatusCodes
//!
//! See [`status`]: the historian bits (Calculated, Interpolated, Partial,
//! MultiValue) live in the low bits with InfoType `DataValue`, which is set
//! only together with a non-zero historian bit, exactly as the Annex A data
//! encode them.

mod averages;
mod bounds;
mod counts;
mod durations;
mod extremes;
mod interpolative;
mod regions;
mod start_end;
mod stats;
pub mod status;

#[cfg(test)]
mod tests;

pub use counts::annotation_count;

use status::{BAD_NO_DATA, PARTIAL};

/// One raw sample. `value` None for Bad samples without a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawPoint {
    /// Source timestamp, ns since the Unix epoch.
    pub ts: i64,
    pub value: Option<f64>,
    /// OPC UA StatusCode of the sample (0 = Good).
    pub status: u32,
}

/// Per-tag settings: Part 13's AggregateConfiguration (4.2.1.2) plus the
/// interpolation of the variable (`stepped`, 3.1.6). Boolean and other
/// discrete data must be `stepped` (Annex A.1.4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Stepped instead of sloped interpolation between samples.
    pub stepped: bool,
    /// Uncertain samples count as Bad (true) or as Good (false).
    pub treat_uncertain_as_bad: bool,
    /// Minimum share of Good data (0–100) for a Good result.
    pub percent_data_good: u8,
    /// Minimum share of Bad data (0–100) for a Bad result.
    pub percent_data_bad: u8,
    /// Extrapolate past the last sample along the line through the last two
    /// good samples instead of holding the last value.
    pub use_sloped_extrapolation: bool,
}

/// The Part 13 defaults. OPC 10000-13 4.2.1.2 (AggregateConfigurationType)
/// says of TreatUncertainAsBad "The default value is True". PercentDataGood =
/// PercentDataBad = 100 and UseSlopedExtrapolation = False are the defaults of
/// the OPC Foundation's reference server (UA-.NETStandard `AggregateManager`)
/// and of the Annex A data sets; the 4.2.1.2 sentences on those three were not
/// available to check when this was written. `stepped` is not part of the
/// AggregateConfiguration: analog data default to sloped interpolation.
impl Default for Config {
    fn default() -> Self {
        Self {
            stepped: false,
            treat_uncertain_as_bad: true,
            percent_data_good: 100,
            percent_data_bad: 100,
            use_sloped_extrapolation: false,
        }
    }
}

/// The raw data of one tag around a query window, sorted by ts, no duplicate ts.
/// `points` hold every sample in [start, end) plus samples before start back to (at least) the
/// latest non-Bad one and after end up to (at least) the earliest non-Bad one, when they exist.
/// `data_starts_at_first`: the first point is the first sample ever stored for the tag (so
/// intervals before it have no data); `data_ends_at_last`: the last point is the newest sample stored.
///
/// With `use_sloped_extrapolation`, a window that starts after the newest
/// sample needs the two latest good samples before it; with
/// `treat_uncertain_as_bad`, bounding values look back to the latest sample
/// whose severity is Good. Samples missing for either fall back to stepped
/// extrapolation or `Bad_NoData`.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub points: &'a [RawPoint],
    pub data_starts_at_first: bool,
    pub data_ends_at_last: bool,
}

/// The aggregates of OPC 10000-13 5.4.3 that lotline computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Interpolative,
    Average,
    TimeAverage,
    TimeAverage2,
    Total,
    Total2,
    Minimum,
    Maximum,
    MinimumActualTime,
    MaximumActualTime,
    Range,
    Minimum2,
    Maximum2,
    MinimumActualTime2,
    MaximumActualTime2,
    Range2,
    Count,
    DurationInStateZero,
    DurationInStateNonZero,
    NumberOfTransitions,
    Start,
    End,
    StartBound,
    EndBound,
    Delta,
    DeltaBounds,
    DurationGood,
    DurationBad,
    PercentGood,
    PercentBad,
    WorstQuality,
    WorstQuality2,
    StandardDeviationSample,
    VarianceSample,
    StandardDeviationPopulation,
    VariancePopulation,
}

impl Aggregate {
    const ALL: [Aggregate; 36] = [
        Aggregate::Interpolative,
        Aggregate::Average,
        Aggregate::TimeAverage,
        Aggregate::TimeAverage2,
        Aggregate::Total,
        Aggregate::Total2,
        Aggregate::Minimum,
        Aggregate::Maximum,
        Aggregate::MinimumActualTime,
        Aggregate::MaximumActualTime,
        Aggregate::Range,
        Aggregate::Minimum2,
        Aggregate::Maximum2,
        Aggregate::MinimumActualTime2,
        Aggregate::MaximumActualTime2,
        Aggregate::Range2,
        Aggregate::Count,
        Aggregate::DurationInStateZero,
        Aggregate::DurationInStateNonZero,
        Aggregate::NumberOfTransitions,
        Aggregate::Start,
        Aggregate::End,
        Aggregate::StartBound,
        Aggregate::EndBound,
        Aggregate::Delta,
        Aggregate::DeltaBounds,
        Aggregate::DurationGood,
        Aggregate::DurationBad,
        Aggregate::PercentGood,
        Aggregate::PercentBad,
        Aggregate::WorstQuality,
        Aggregate::WorstQuality2,
        Aggregate::StandardDeviationSample,
        Aggregate::VarianceSample,
        Aggregate::StandardDeviationPopulation,
        Aggregate::VariancePopulation,
    ];

    /// The aggregate with this Part 13 name, ignoring ASCII case.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|aggregate| aggregate.name().eq_ignore_ascii_case(name))
    }

    /// The Part 13 BrowseName, e.g. `"TimeAverage2"`.
    pub fn name(&self) -> &'static str {
        match self {
            Aggregate::Interpolative => "Interpolative",
            Aggregate::Average => "Average",
            Aggregate::TimeAverage => "TimeAverage",
            Aggregate::TimeAverage2 => "TimeAverage2",
            Aggregate::Total => "Total",
            Aggregate::Total2 => "Total2",
            Aggregate::Minimum => "Minimum",
            Aggregate::Maximum => "Maximum",
            Aggregate::MinimumActualTime => "MinimumActualTime",
            Aggregate::MaximumActualTime => "MaximumActualTime",
            Aggregate::Range => "Range",
            Aggregate::Minimum2 => "Minimum2",
            Aggregate::Maximum2 => "Maximum2",
            Aggregate::MinimumActualTime2 => "MinimumActualTime2",
            Aggregate::MaximumActualTime2 => "MaximumActualTime2",
            Aggregate::Range2 => "Range2",
            Aggregate::Count => "Count",
            Aggregate::DurationInStateZero => "DurationInStateZero",
            Aggregate::DurationInStateNonZero => "DurationInStateNonZero",
            Aggregate::NumberOfTransitions => "NumberOfTransitions",
            Aggregate::Start => "Start",
            Aggregate::End => "End",
            Aggregate::StartBound => "StartBound",
            Aggregate::EndBound => "EndBound",
            Aggregate::Delta => "Delta",
            Aggregate::DeltaBounds => "DeltaBounds",
            Aggregate::DurationGood => "DurationGood",
            Aggregate::DurationBad => "DurationBad",
            Aggregate::PercentGood => "PercentGood",
            Aggregate::PercentBad => "PercentBad",
            Aggregate::WorstQuality => "WorstQuality",
            Aggregate::WorstQuality2 => "WorstQuality2",
            Aggregate::StandardDeviationSample => "StandardDeviationSample",
            Aggregate::VarianceSample => "VarianceSample",
            Aggregate::StandardDeviationPopulation => "StandardDeviationPopulation",
            Aggregate::VariancePopulation => "VariancePopulation",
        }
    }

    /// Every aggregate, in Part 13 order.
    pub fn all() -> &'static [Aggregate] {
        &Self::ALL
    }

    /// Whether results carry the source time of the returned value.
    pub fn reports_actual_time(&self) -> bool {
        matches!(
            self,
            Aggregate::MinimumActualTime
                | Aggregate::MaximumActualTime
                | Aggregate::MinimumActualTime2
                | Aggregate::MaximumActualTime2
        )
    }

    /// Interpolative and Average never set the Partial bit (5.4.3.4, and the
    /// Average tables of Annex A).
    fn sets_partial(&self) -> bool {
        !matches!(self, Aggregate::Interpolative | Aggregate::Average)
    }
}

/// One processed value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Output {
    /// Interval start, ns since the Unix epoch.
    pub ts: i64,
    /// None whenever `status` is Bad.
    pub value: Option<f64>,
    pub status: u32,
    /// Source time of the value for the *ActualTime aggregates (the interval
    /// start when there is no value); None for every other aggregate.
    pub actual_ts: Option<i64>,
}

/// One Output per interval [start + k*interval, min(start+(k+1)*interval, end)).
///
/// # Panics
/// If `start >= end` or `interval <= 0`: callers validate their arguments.
pub fn aggregate(
    agg: Aggregate,
    series: &Series,
    start: i64,
    end: i64,
    interval: i64,
    config: &Config,
) -> Vec<Output> {
    let data = Data::new(series, config);
    intervals(start, end, interval)
        .map(|window| data.output(agg, window))
        .collect()
}

/// Interpolative at each interval start (same as aggregate(Interpolative, ..)).
pub fn interpolate(
    series: &Series,
    start: i64,
    end: i64,
    interval: i64,
    config: &Config,
) -> Vec<Output> {
    aggregate(
        Aggregate::Interpolative,
        series,
        start,
        end,
        interval,
        config,
    )
}

/// One processing interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interval {
    start: i64,
    end: i64,
}

/// The intervals of a request, the last one cut at `end`.
fn intervals(start: i64, end: i64, interval: i64) -> impl Iterator<Item = Interval> {
    assert!(start < end, "empty or reversed window");
    assert!(interval > 0, "processing interval must be positive");
    std::iter::successors(Some(start), move |&previous| {
        previous.checked_add(interval).filter(|&next| next < end)
    })
    .map(move |interval_start| Interval {
        start: interval_start,
        end: interval_start.saturating_add(interval).min(end),
    })
}

/// What a kernel computes for one interval, before the rules every aggregate
/// shares (no data, Partial, no value when Bad) are applied.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Computed {
    value: Option<f64>,
    status: u32,
    actual_ts: Option<i64>,
}

impl Computed {
    fn new(value: f64, status: u32) -> Self {
        Self {
            value: Some(value),
            status,
            actual_ts: None,
        }
    }

    fn no_data() -> Self {
        Self {
            value: None,
            status: BAD_NO_DATA,
            actual_ts: None,
        }
    }

    /// A raw sample or bounding value returned as it is.
    fn sample(point: RawPoint) -> Self {
        Self {
            value: point.value,
            status: point.status,
            actual_ts: None,
        }
    }
}

/// The values of the samples whose severity is Good (the "Good raw values"
/// of Average and the statistics aggregates).
fn good_values(samples: &[RawPoint]) -> Vec<f64> {
    samples
        .iter()
        .filter(|point| status::is_good(point.status))
        .filter_map(|point| point.value)
        .collect()
}

/// A series prepared for the kernels: placeholders dropped, data range known.
struct Data<'a> {
    points: Vec<RawPoint>,
    config: &'a Config,
    /// Time of the first sample ever stored, when the series holds it.
    first_sample: Option<i64>,
    /// Time of the newest sample stored, when the series holds it.
    last_sample: Option<i64>,
    good: bounds::GoodIndex,
}

impl<'a> Data<'a> {
    fn new(series: &Series, config: &'a Config) -> Self {
        debug_assert!(
            series.points.windows(2).all(|pair| pair[0].ts < pair[1].ts),
            "points must be sorted by ts without duplicates"
        );
        let points: Vec<RawPoint> = series
            .points
            .iter()
            .filter(|point| !status::is_placeholder(point))
            .map(|point| match point.value {
                None if !status::is_bad(point.status) => RawPoint {
                    status: status::BAD,
                    ..*point
                },
                _ => *point,
            })
            .collect();
        let first_sample = points
            .first()
            .filter(|_| series.data_starts_at_first)
            .map(|point| point.ts);
        let last_sample = points
            .last()
            .filter(|_| series.data_ends_at_last)
            .map(|point| point.ts);
        Self {
            good: bounds::GoodIndex::new(&points, config),
            points,
            config,
            first_sample,
            last_sample,
        }
    }

    /// Whether the interval lies entirely before the first sample or after the last.
    fn has_no_data(&self, window: Interval) -> bool {
        self.points.is_empty()
            || self.first_sample.is_some_and(|first| window.end <= first)
            || self.last_sample.is_some_and(|last| window.start > last)
    }

    /// Whether the interval reaches beyond the stored data (5.3.3.2).
    fn is_partial(&self, window: Interval) -> bool {
        self.first_sample
            .is_some_and(|first| window.start < first && first < window.end)
            || self
                .last_sample
                .is_some_and(|last| window.start <= last && last < window.end)
    }

    /// Samples with `from <= ts < to`.
    fn samples_in(&self, from: i64, to: i64) -> &[RawPoint] {
        let begin = self.points.partition_point(|point| point.ts < from);
        let end = self.points.partition_point(|point| point.ts < to);
        &self.points[begin..end.max(begin)]
    }

    /// The raw samples of the interval.
    fn raw(&self, window: Interval) -> &[RawPoint] {
        self.samples_in(window.start, window.end)
    }

    fn output(&self, agg: Aggregate, window: Interval) -> Output {
        let computed = if agg != Aggregate::Interpolative && self.has_no_data(window) {
            Computed::no_data()
        } else {
            self.compute(agg, window)
        };
        let mut status = computed.status;
        if agg.sets_partial() && self.is_partial(window) {
            status = status::add_historian_bits(status, PARTIAL);
        }
        let value = computed.value.filter(|_| !status::is_bad(status));
        debug_assert!(
            value.is_some() || status::is_bad(status),
            "{} returned a non-Bad result without a value",
            agg.name()
        );
        Output {
            ts: window.start,
            value,
            status,
            actual_ts: agg
                .reports_actual_time()
                .then(|| computed.actual_ts.unwrap_or(window.start)),
        }
    }

    fn compute(&self, agg: Aggregate, window: Interval) -> Computed {
        use Aggregate::*;
        let actual_time = agg.reports_actual_time();
        match agg {
            Interpolative => interpolative::interpolative(self, window),
            Average => averages::average(self, window),
            TimeAverage | Total | TimeAverage2 | Total2 => {
                averages::time_weighted(self, window, averages::TimeWeighted::of(agg))
            }
            Minimum | Maximum | MinimumActualTime | MaximumActualTime | Range => {
                extremes::raw_extreme(self, window, extremes::Extreme::of(agg), actual_time)
            }
            Minimum2 | Maximum2 | MinimumActualTime2 | MaximumActualTime2 | Range2 => {
                extremes::bounded_extreme(self, window, extremes::Extreme::of(agg), actual_time)
            }
            Count => counts::count(self, window),
            DurationInStateZero => counts::duration_in_state(self, window, false),
            DurationInStateNonZero => counts::duration_in_state(self, window, true),
            NumberOfTransitions => counts::number_of_transitions(self, window),
            Start => start_end::start(self, window),
            End => start_end::end(self, window),
            Delta => start_end::delta(self, window),
            StartBound => start_end::start_bound(self, window),
            EndBound => start_end::end_bound(self, window),
            DeltaBounds => start_end::delta_bounds(self, window),
            DurationGood => durations::duration(self, window, durations::Of::Good),
            DurationBad => durations::duration(self, window, durations::Of::Bad),
            PercentGood => durations::percent(self, window, durations::Of::Good),
            PercentBad => durations::percent(self, window, durations::Of::Bad),
            WorstQuality => durations::worst_quality(self, window, false),
            WorstQuality2 => durations::worst_quality(self, window, true),
            StandardDeviationSample
            | VarianceSample
            | StandardDeviationPopulation
            | VariancePopulation => stats::spread(self, window, stats::Spread::of(agg)),
        }
    }
}
