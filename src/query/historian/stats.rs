//! StandardDeviationSample, VarianceSample, StandardDeviationPopulation and
//! VariancePopulation (5.4.3.37-40): spread of the Good raw values of the
//! interval. A single value has no spread (0, also for the sample forms).
//! `Good, Calculated`, or `Uncertain_DataSubNormal, Calculated` when any
//! non-Good sample was ignored — these clauses do not apply PercentDataGood /
//! PercentDataBad (Annex A, Historian3 [12:01:00, 12:01:20) is Uncertain
//! although half its samples are Good and PercentDataGood is 50).

use super::status::{self, CALCULATED, GOOD, UNCERTAIN_DATA_SUB_NORMAL};
use super::{Aggregate, Computed, Data, Interval, good_values};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spread {
    StandardDeviationSample,
    VarianceSample,
    StandardDeviationPopulation,
    VariancePopulation,
}

impl Spread {
    pub(super) fn of(aggregate: Aggregate) -> Self {
        match aggregate {
            Aggregate::StandardDeviationSample => Spread::StandardDeviationSample,
            Aggregate::VarianceSample => Spread::VarianceSample,
            Aggregate::StandardDeviationPopulation => Spread::StandardDeviationPopulation,
            Aggregate::VariancePopulation => Spread::VariancePopulation,
            other => unreachable!("{} is not a spread", other.name()),
        }
    }
}

pub(super) fn spread(data: &Data, window: Interval, kind: Spread) -> Computed {
    let samples = data.raw(window);
    let values = good_values(samples);
    if values.is_empty() {
        return Computed::no_data();
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let squares: f64 = values.iter().map(|value| (value - mean).powi(2)).sum();
    let population = squares / n;
    let sample = if values.len() > 1 {
        squares / (n - 1.0)
    } else {
        0.0
    };
    let result = match kind {
        Spread::StandardDeviationSample => sample.sqrt(),
        Spread::VarianceSample => sample,
        Spread::StandardDeviationPopulation => population.sqrt(),
        Spread::VariancePopulation => population,
    };
    let code = if values.len() < samples.len() {
        UNCERTAIN_DATA_SUB_NORMAL
    } else {
        GOOD
    };
    Computed::new(result, status::with_historian_bits(code, CALCULATED))
}
