//! Cases Annex A does not cover: no data, one sample, only Bad samples,
//! intervals longer than the window, windows that are not a multiple of the
//! interval, placeholders, names.

use super::super::status::{
    BAD, BAD_NO_DATA, CALCULATED, GOOD, INTERPOLATED, PARTIAL, UNCERTAIN_DATA_SUB_NORMAL,
    with_historian_bits,
};
use super::super::*;

const SECOND: i64 = 1_000_000_000;

fn at(seconds: i64) -> i64 {
    seconds * SECOND
}

fn good(seconds: i64, value: f64) -> RawPoint {
    RawPoint {
        ts: at(seconds),
        value: Some(value),
        status: GOOD,
    }
}

fn bad(seconds: i64) -> RawPoint {
    RawPoint {
        ts: at(seconds),
        value: None,
        status: BAD,
    }
}

fn whole(points: &[RawPoint]) -> Series<'_> {
    Series {
        points,
        data_starts_at_first: true,
        data_ends_at_last: true,
    }
}

fn bits(code: u32, historian_bits: u32) -> u32 {
    with_historian_bits(code, historian_bits)
}

/// (value, status) of each output.
fn results(outputs: &[Output]) -> Vec<(Option<f64>, u32)> {
    outputs
        .iter()
        .map(|output| (output.value, output.status))
        .collect()
}

/// (value, status) per 5 s interval of `[0, end)`.
fn every_5_seconds(
    aggregate_kind: Aggregate,
    series: &Series,
    end: i64,
    config: &Config,
) -> Vec<(Option<f64>, u32)> {
    results(&aggregate(aggregate_kind, series, 0, end, at(5), config))
}

#[test]
fn empty_series_has_no_data_in_every_interval() {
    let series = whole(&[]);
    for &aggregate_kind in Aggregate::all() {
        let outputs = aggregate(
            aggregate_kind,
            &series,
            0,
            at(12),
            at(5),
            &Config::default(),
        );
        assert_eq!(
            outputs.iter().map(|output| output.ts).collect::<Vec<_>>(),
            vec![0, at(5), at(10)],
            "{}",
            aggregate_kind.name()
        );
        for output in &outputs {
            assert_eq!(output.value, None, "{}", aggregate_kind.name());
            assert_eq!(output.status, BAD_NO_DATA, "{}", aggregate_kind.name());
            assert_eq!(
                output.actual_ts.is_some(),
                aggregate_kind.reports_actual_time(),
                "{}",
                aggregate_kind.name()
            );
        }
    }
}

#[test]
fn single_sample() {
    let points = [good(10, 5.0)];
    let series = whole(&points);
    let config = Config::default();
    let run = |aggregate_kind| every_5_seconds(aggregate_kind, &series, at(20), &config);
    let no_data = (None, BAD_NO_DATA);
    let extrapolated = (Some(5.0), bits(UNCERTAIN_DATA_SUB_NORMAL, INTERPOLATED));
    assert_eq!(
        run(Aggregate::Interpolative),
        vec![no_data, no_data, (Some(5.0), GOOD), extrapolated]
    );
    assert_eq!(
        run(Aggregate::Average),
        vec![
            no_data,
            no_data,
            (Some(5.0), bits(GOOD, CALCULATED)),
            no_data
        ]
    );
    let last_interval = |value, code, extra| {
        vec![
            no_data,
            no_data,
            (Some(value), bits(code, CALCULATED | PARTIAL | extra)),
            no_data,
        ]
    };
    assert_eq!(run(Aggregate::Count), last_interval(1.0, GOOD, 0));
    assert_eq!(
        run(Aggregate::TimeAverage),
        last_interval(5.0, UNCERTAIN_DATA_SUB_NORMAL, 0)
    );
    // The lone sample lasts 1 ms before the data end.
    assert_eq!(run(Aggregate::DurationGood), last_interval(1.0, GOOD, 0));
    assert_eq!(run(Aggregate::PercentGood), last_interval(100.0, GOOD, 0));
    // Sloped, TreatUncertainAsBad: the 1 ms region runs into no data and is
    // Uncertain, hence Bad (as TimeAverage2 Historian2 [12:01:30, 12:01:35)).
    assert_eq!(
        run(Aggregate::Total2),
        vec![
            no_data,
            no_data,
            (None, bits(BAD, CALCULATED | PARTIAL)),
            no_data
        ]
    );
    let stepped = Config {
        stepped: true,
        ..config
    };
    let total2 = aggregate(Aggregate::Total2, &series, 0, at(20), at(5), &stepped);
    assert_eq!(total2[2].value, Some(0.005));
    assert_eq!(
        run(Aggregate::StandardDeviationSample),
        last_interval(0.0, GOOD, 0)
    );
    assert_eq!(
        run(Aggregate::Start),
        vec![no_data, no_data, (Some(5.0), bits(GOOD, PARTIAL)), no_data]
    );
}

#[test]
fn only_bad_samples() {
    let points = [bad(0), bad(5), bad(10)];
    let series = whole(&points);
    let config = Config::default();
    let run = |aggregate_kind| every_5_seconds(aggregate_kind, &series, at(15), &config);
    let no_data = (None, BAD_NO_DATA);
    for aggregate_kind in [
        Aggregate::Interpolative,
        Aggregate::Average,
        Aggregate::TimeAverage,
        Aggregate::TimeAverage2,
        Aggregate::Minimum,
        Aggregate::Maximum2,
        Aggregate::Delta,
        Aggregate::StandardDeviationPopulation,
    ] {
        let never_partial = [Aggregate::Interpolative, Aggregate::Average];
        let expected_last = if never_partial.contains(&aggregate_kind) {
            no_data
        } else {
            (None, bits(BAD_NO_DATA, PARTIAL))
        };
        assert_eq!(
            run(aggregate_kind),
            vec![no_data, no_data, expected_last],
            "{}",
            aggregate_kind.name()
        );
    }
    // Counting aggregates see Bad data, not the absence of data.
    assert_eq!(
        run(Aggregate::Count),
        vec![(None, BAD), (None, BAD), (None, bits(BAD, PARTIAL))]
    );
    let worst = Some(f64::from(BAD));
    assert_eq!(
        run(Aggregate::WorstQuality),
        vec![
            (worst, bits(GOOD, CALCULATED)),
            (worst, bits(GOOD, CALCULATED)),
            (worst, bits(GOOD, CALCULATED | PARTIAL)),
        ]
    );
    assert_eq!(
        run(Aggregate::DurationBad),
        vec![
            (Some(5000.0), bits(GOOD, CALCULATED)),
            (Some(5000.0), bits(GOOD, CALCULATED)),
            // After the last (Bad) sample there is no data, which is Bad too.
            (Some(5000.0), bits(GOOD, CALCULATED | PARTIAL)),
        ]
    );
}

#[test]
fn interval_longer_than_the_window_gives_one_truncated_interval() {
    let points: Vec<RawPoint> = (0..10).map(|second| good(second, second as f64)).collect();
    let series = whole(&points);
    let config = Config::default();
    let outputs = aggregate(Aggregate::Average, &series, 0, at(10), at(60), &config);
    assert_eq!(
        outputs,
        vec![Output {
            ts: 0,
            value: Some(4.5),
            status: bits(GOOD, CALCULATED),
            actual_ts: None,
        }]
    );
    let outputs = aggregate(
        Aggregate::MaximumActualTime,
        &series,
        0,
        at(10),
        at(60),
        &config,
    );
    assert_eq!(outputs.len(), 1);
    assert_eq!(
        (outputs[0].value, outputs[0].actual_ts),
        (Some(9.0), Some(at(9)))
    );
}

#[test]
fn window_not_a_multiple_of_the_interval_ends_with_a_short_interval() {
    let points: Vec<RawPoint> = (0..=20).map(|second| good(second, second as f64)).collect();
    let series = whole(&points);
    let config = Config::default();
    let outputs = aggregate(Aggregate::TimeAverage, &series, 0, at(12), at(5), &config);
    assert_eq!(
        outputs.iter().map(|output| output.ts).collect::<Vec<_>>(),
        vec![0, at(5), at(10)]
    );
    assert_eq!(outputs[2].value, Some(11.0));
    assert_eq!(outputs[2].status, bits(GOOD, CALCULATED));
    let total = aggregate(Aggregate::Total, &series, 0, at(12), at(5), &config);
    assert_eq!(total[2].value, Some(22.0));
    let percent = aggregate(Aggregate::PercentGood, &series, 0, at(12), at(5), &config);
    assert_eq!(percent[2].value, Some(100.0));
    let duration = aggregate(Aggregate::DurationGood, &series, 0, at(12), at(5), &config);
    assert_eq!(duration[2].value, Some(2000.0));
}

#[test]
fn point_created_placeholder_is_not_a_raw_value() {
    let placeholder = RawPoint {
        ts: 0,
        value: None,
        status: BAD_NO_DATA,
    };
    let with_placeholder = [placeholder, good(2, 10.0), good(4, 20.0)];
    let without = [good(2, 10.0), good(4, 20.0)];
    for &aggregate_kind in Aggregate::all() {
        assert_eq!(
            aggregate(
                aggregate_kind,
                &whole(&with_placeholder),
                0,
                at(6),
                at(3),
                &Config::default()
            ),
            aggregate(
                aggregate_kind,
                &whole(&without),
                0,
                at(6),
                at(3),
                &Config::default()
            ),
            "{}",
            aggregate_kind.name()
        );
    }
    // A sample without a value is Bad whatever its status says.
    let text_only = [
        good(2, 10.0),
        RawPoint {
            value: None,
            ..good(3, 0.0)
        },
    ];
    let worst = aggregate(
        Aggregate::WorstQuality,
        &whole(&text_only),
        0,
        at(6),
        at(6),
        &Config::default(),
    );
    assert_eq!(worst[0].value, Some(f64::from(BAD)));
    // A Bad sample that carries a value stays a Bad raw value.
    let bad_with_value = [
        good(2, 10.0),
        RawPoint {
            value: Some(99.0),
            ..bad(3)
        },
        good(4, 20.0),
    ];
    let maximum = aggregate(
        Aggregate::Maximum,
        &whole(&bad_with_value),
        0,
        at(6),
        at(6),
        &Config::default(),
    );
    assert_eq!(maximum[0].value, Some(20.0));
    assert_eq!(
        maximum[0].status,
        bits(UNCERTAIN_DATA_SUB_NORMAL, CALCULATED | PARTIAL)
    );
}

#[test]
fn data_before_the_series_is_unknown_not_missing() {
    let points = [good(10, 1.0)];
    let series = Series {
        points: &points,
        data_starts_at_first: false,
        data_ends_at_last: false,
    };
    let outputs = aggregate(
        Aggregate::Count,
        &series,
        0,
        at(20),
        at(5),
        &Config::default(),
    );
    assert_eq!(
        results(&outputs),
        vec![
            (Some(0.0), bits(GOOD, CALCULATED)),
            (Some(0.0), bits(GOOD, CALCULATED)),
            (Some(1.0), bits(GOOD, CALCULATED)),
            (Some(0.0), bits(GOOD, CALCULATED)),
        ]
    );
}

#[test]
fn sloped_extrapolation_follows_the_last_two_good_samples() {
    let points = [good(0, 0.0), good(10, 10.0)];
    let sloped = Config {
        use_sloped_extrapolation: true,
        ..Config::default()
    };
    let outputs = interpolate(&whole(&points), at(10), at(30), at(10), &sloped);
    assert_eq!(
        results(&outputs),
        vec![
            (Some(10.0), GOOD),
            (Some(20.0), bits(UNCERTAIN_DATA_SUB_NORMAL, INTERPOLATED)),
        ]
    );
    let held = interpolate(&whole(&points), at(10), at(30), at(10), &Config::default());
    assert_eq!(held[1].value, Some(10.0));
}

#[test]
fn annotations_are_counted_per_interval_in_any_order() {
    let outputs = annotation_count(&[at(70), at(5), at(59), at(60)], 0, at(100), at(60));
    assert_eq!(
        results(&outputs),
        vec![
            (Some(2.0), bits(GOOD, CALCULATED)),
            (Some(2.0), bits(GOOD, CALCULATED)),
        ]
    );
}

#[test]
fn names_round_trip_ignoring_case() {
    assert_eq!(Aggregate::all().len(), 36);
    for &aggregate_kind in Aggregate::all() {
        assert_eq!(
            Aggregate::parse(aggregate_kind.name()),
            Some(aggregate_kind)
        );
        assert_eq!(
            Aggregate::parse(&aggregate_kind.name().to_ascii_uppercase()),
            Some(aggregate_kind)
        );
    }
    assert_eq!(
        Aggregate::parse("timeaverage2"),
        Some(Aggregate::TimeAverage2)
    );
    assert_eq!(Aggregate::parse("AnnotationCount"), None);
    assert_eq!(Aggregate::parse("Median"), None);
}

#[test]
fn default_configuration_is_part_13s() {
    assert_eq!(
        Config::default(),
        Config {
            stepped: false,
            treat_uncertain_as_bad: true,
            percent_data_good: 100,
            percent_data_bad: 100,
            use_sloped_extrapolation: false,
        }
    );
}

#[test]
#[should_panic(expected = "processing interval must be positive")]
fn zero_interval_is_refused() {
    aggregate(
        Aggregate::Average,
        &whole(&[]),
        0,
        at(1),
        0,
        &Config::default(),
    );
}

/// xorshift64: deterministic noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, limit: u64) -> u64 {
        self.next() % limit
    }
}

#[test]
fn random_series_keep_the_output_invariants() {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2000 {
        let mut ts = at(noise.below(20) as i64) - at(10);
        let points: Vec<RawPoint> = (0..noise.below(30))
            .map(|_| {
                ts += 1 + noise.below(4 * SECOND as u64) as i64;
                let status = [GOOD, GOOD, GOOD, status::UNCERTAIN, BAD, BAD_NO_DATA]
                    [noise.below(6) as usize];
                let value = (noise.below(5) != 0).then(|| noise.below(100) as f64 - 50.0);
                RawPoint { ts, value, status }
            })
            .collect();
        let config = Config {
            stepped: noise.below(2) == 0,
            treat_uncertain_as_bad: noise.below(2) == 0,
            percent_data_good: [100, 80, 50][noise.below(3) as usize],
            percent_data_bad: [100, 50, 20][noise.below(3) as usize],
            use_sloped_extrapolation: noise.below(2) == 0,
        };
        let series = Series {
            points: &points,
            data_starts_at_first: noise.below(2) == 0,
            data_ends_at_last: noise.below(2) == 0,
        };
        let end = at(1 + noise.below(60) as i64);
        let interval = 1 + noise.below(20 * SECOND as u64) as i64;
        let intervals = usize::try_from((end + interval - 1) / interval).expect("positive");
        for &aggregate_kind in Aggregate::all() {
            let outputs = aggregate(aggregate_kind, &series, 0, end, interval, &config);
            assert_eq!(outputs.len(), intervals, "{}", aggregate_kind.name());
            for (index, output) in outputs.iter().enumerate() {
                assert_eq!(output.ts, index as i64 * interval);
                assert_eq!(output.value.is_none(), status::is_bad(output.status));
                assert!(output.value.is_none_or(f64::is_finite));
                assert_eq!(
                    output.actual_ts.is_some(),
                    aggregate_kind.reports_actual_time()
                );
            }
        }
    }
}
