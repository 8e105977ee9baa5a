//! OPC UA Part 13 Annex A conformance: every expected table of
//! `tests/fixtures/part13/expected.json` (Historian1..4, 1.05 generator
//! output) run through [`aggregate`] on the raw samples of
//! `datasets.json` (without the "Point created" entry; data starts at the
//! first sample and ends at the last). Values must match within 1e-3 (null =
//! null), StatusCodes and ActualTime timestamps exactly. Rows the fixtures
//! mark `suspect` (the 1.05 generator contradicts itself there, see the
//! fixtures' README) must match either the 1.05 or the 1.04 value; which one
//! is reported. A per-aggregate summary is printed (`cargo test --
//! --nocapture`).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/part13");
const TOLERANCE: f64 = 1e-3;

fn load(file: &str) -> Value {
    let path = format!("{FIXTURES}/{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn nanos(ts: &Value) -> i64 {
    let text = ts.as_str().expect("timestamp string");
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .timestamp_nanos_opt()
        .expect("timestamp in range")
}

fn status_code(status: &Value) -> u32 {
    let text = status["code"].as_str().expect("status code string");
    u32::from_str_radix(text.trim_start_matches("0x"), 16).expect("hex status code")
}

fn config(value: &Value) -> Config {
    let flag = |name: &str| value[name].as_bool().expect(name);
    let percent = |name: &str| u8::try_from(value[name].as_u64().expect(name)).expect(name);
    Config {
        stepped: flag("stepped"),
        treat_uncertain_as_bad: flag("treat_uncertain_as_bad"),
        percent_data_good: percent("percent_data_good"),
        percent_data_bad: percent("percent_data_bad"),
        use_sloped_extrapolation: flag("use_sloped_extrapolation"),
    }
}

struct Historian {
    points: Vec<RawPoint>,
    annotations: Vec<i64>,
    config: Config,
}

fn historians() -> HashMap<String, Historian> {
    let datasets = load("datasets.json");
    let datasets = datasets["datasets"].as_object().expect("datasets");
    datasets
        .iter()
        .map(|(name, dataset)| {
            let points = dataset["samples"]
                .as_array()
                .expect("samples")
                .iter()
                .map(|sample| RawPoint {
                    ts: nanos(&sample["ts"]),
                    value: sample["value"].as_f64(),
                    status: status_code(&sample["status"]),
                })
                .collect();
            let annotations = dataset["annotations"]
                .as_array()
                .map(|list| list.iter().map(|note| nanos(&note["ts"])).collect())
                .unwrap_or_default();
            let historian = Historian {
                points,
                annotations,
                config: config(&dataset["config"]),
            };
            (name.clone(), historian)
        })
        .collect()
}

/// One expected row, or one alternative of it.
#[derive(Debug, Clone, Copy)]
struct Expected {
    value: Option<f64>,
    status: u32,
}

impl Expected {
    fn of(row: &Value) -> Option<Self> {
        let status = row.get("status").filter(|status| status.is_object())?;
        Some(Self {
            value: row["value"].as_f64(),
            status: status_code(status),
        })
    }

    fn matches(&self, output: &Output) -> bool {
        let value_matches = match (self.value, output.value) {
            (None, None) => true,
            (Some(expected), Some(actual)) => (expected - actual).abs() <= TOLERANCE,
            _ => false,
        };
        value_matches && self.status == output.status
    }
}

#[derive(Debug, Default)]
struct Tally {
    tables: usize,
    tables_passed: usize,
    rows: usize,
    rows_failed: usize,
    suspect_rows: usize,
    suspect_matching_primary: usize,
    suspect_matching_v104: usize,
    failures: Vec<String>,
}

fn describe(value: Option<f64>, status: u32, actual_ts: Option<i64>) -> String {
    let value = value.map_or("null".to_owned(), |value| format!("{value:.4}"));
    let actual = actual_ts.map_or(String::new(), |ts| format!(" at {ts}"));
    format!("{value} {status:#010x}{actual}")
}

/// The outputs of one table, computed the way a client would request it.
fn run(table: &Value, historian: &Historian) -> Vec<Output> {
    let start = nanos(&table["start"]);
    let end = nanos(&table["end"]);
    let interval = i64::try_from(table["processing_interval_ms"].as_u64().expect("interval"))
        .expect("interval fits")
        * 1_000_000;
    let name = table["aggregate"].as_str().expect("aggregate name");
    if name == "AnnotationCount" {
        return annotation_count(&historian.annotations, start, end, interval);
    }
    let aggregate_kind =
        Aggregate::parse(name).unwrap_or_else(|| panic!("unknown aggregate {name}"));
    let series = Series {
        points: &historian.points,
        data_starts_at_first: true,
        data_ends_at_last: true,
    };
    aggregate(
        aggregate_kind,
        &series,
        start,
        end,
        interval,
        &historian.config,
    )
}

/// Runs every table; returns the tally per aggregate name.
fn run_all() -> BTreeMap<String, Tally> {
    let historians = historians();
    let expected = load("expected.json");
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for table in expected["tables"].as_array().expect("tables") {
        let name = table["aggregate"].as_str().expect("aggregate").to_owned();
        let dataset = table["dataset"].as_str().expect("dataset");
        let historian = &historians[dataset];
        assert_eq!(
            config(&table["config"]),
            historian.config,
            "{name} {dataset}: table and dataset configurations differ"
        );
        let outputs = run(table, historian);
        let rows = table["rows"].as_array().expect("rows");
        let tally = tallies.entry(name.clone()).or_default();
        tally.tables += 1;
        assert_eq!(
            outputs.len(),
            rows.len(),
            "{name} {dataset}: number of intervals"
        );
        let mut table_passed = true;
        for (row, output) in rows.iter().zip(&outputs) {
            tally.rows += 1;
            let primary = Expected::of(row).expect("primary value and status");
            let v104 = row.get("v104").and_then(Expected::of);
            let expected_actual = row.get("actual_ts").map(nanos);
            let ts_matches = output.ts == nanos(&row["ts"])
                && expected_actual.is_none_or(|actual| output.actual_ts == Some(actual));
            let matches_primary = ts_matches && primary.matches(output);
            let suspect = row.get("suspect").is_some_and(|note| !note.is_null());
            if suspect {
                let matches_v104 = ts_matches && v104.is_some_and(|v104| v104.matches(output));
                tally.suspect_rows += 1;
                tally.suspect_matching_primary += usize::from(matches_primary);
                tally.suspect_matching_v104 += usize::from(matches_v104);
                if !matches_primary && !matches_v104 {
                    tally.failures.push(format!(
                        "{name} {dataset} {} (suspect): matches neither 1.05 nor 1.04, got {}",
                        row["ts"].as_str().unwrap_or_default(),
                        describe(output.value, output.status, output.actual_ts),
                    ));
                }
                continue;
            }
            if !matches_primary {
                table_passed = false;
                tally.rows_failed += 1;
                tally.failures.push(format!(
                    "{name} {dataset} {}: expected {}, got {}",
                    row["ts"].as_str().unwrap_or_default(),
                    describe(primary.value, primary.status, expected_actual),
                    describe(output.value, output.status, output.actual_ts),
                ));
            }
        }
        tally.tables_passed += usize::from(table_passed);
    }
    tallies
}

#[test]
fn annex_a_tables() {
    let tallies = run_all();
    let mut failures = Vec::new();
    let (mut tables, mut passed) = (0, 0);
    println!(
        "Part 13 Annex A conformance (aggregate: tables passed / tables, failed rows, suspect rows)"
    );
    for (name, tally) in &tallies {
        tables += tally.tables;
        passed += tally.tables_passed;
        let verdict = if tally.rows_failed == 0 {
            "pass"
        } else {
            "FAIL"
        };
        let suspect = if tally.suspect_rows == 0 {
            String::new()
        } else {
            format!(
                ", {} suspect rows ({} match 1.05, {} match 1.04)",
                tally.suspect_rows, tally.suspect_matching_primary, tally.suspect_matching_v104
            )
        };
        println!(
            "  {verdict} {name}: {}/{} tables, {} of {} rows failed{suspect}",
            tally.tables_passed, tally.tables, tally.rows_failed, tally.rows
        );
        failures.extend(tally.failures.iter().cloned());
    }
    println!("  total: {passed}/{tables} tables");
    assert_eq!(tables, 120, "expected.json holds 120 tables");
    assert!(
        failures.is_empty(),
        "{} rows differ from Annex A:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
