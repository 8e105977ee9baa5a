//! The synthetic demo plant behind `lotline serve --demo`: site `plant1` with
//! three lines (`line1`..`line3`), each with a mixer, an oven, a filler and a
//! packer, 100 tags per line (300 in all) and one hour of 1 s samples. Signals
//! look like a real plant's: analog values drift slowly with noise and are
//! quantized to 0.01, process values follow recipe setpoints that step at each
//! work order, `running` flags and text `state`s follow changeovers and random
//! stops, counters only ever increase, and a few tags have a short Uncertain or
//! Bad quality burst or a communication gap. Each line runs work orders back
//! to back (about 20 minutes each, `WO-1001`.. with lots `L-1001`..), and
//! every sample carries the equipment, work order and lot active on its line.
//! Everything is a pure function of the seed: same seed, same batches.

use std::f64::consts::TAU;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, Float64Builder, StringBuilder, TimestampNanosecondBuilder,
    UInt8Builder, UInt32Builder, new_null_array,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::catalog::{Signal, TagSpec, interpolation, unit_specs, value_type};

pub const SITE: &str = "plant1";
pub const LINES: [&str; 3] = ["line1", "line2", "line3"];
pub const UNITS: [&str; 4] = ["mixer", "oven", "filler", "packer"];
/// Rows per samples batch (the last one is shorter).
pub const BATCH_ROWS: usize = 50_000;
pub const QUALITY_GOOD: u32 = 0;
pub const QUALITY_UNCERTAIN: u32 = 0x4000_0000;
pub const QUALITY_BAD: u32 = 0x8000_0000;
const HOUR_SECS: u32 = 3600;
const NANOS: i64 = 1_000_000_000;
const MATERIALS: [&str; 4] = [
    "cookie-choc",
    "cookie-plain",
    "wafer-vanilla",
    "cracker-salt",
];

/// The generated plant. `work_orders[i]` produced `lots[i]`; `runs` says when
/// and on which line.
#[derive(Debug, Clone)]
pub struct DemoPlant {
    pub tags: RecordBatch,
    pub samples: Vec<RecordBatch>,
    pub work_orders: Vec<String>,
    pub lots: Vec<String>,
    pub runs: Vec<DemoRun>,
}

/// One production run: a line working one work order, producing one lot.
/// The first run of each line starts before the hour, the last ends after it.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoRun {
    pub line: String,
    pub work_order: String,
    pub lot: String,
    pub material: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// One hour of plant data from `start`, built to the given schemas (columns
/// are matched by name; unknown nullable columns are left null).
pub fn demo_plant(
    seed: u64,
    start: DateTime<Utc>,
    samples_schema: SchemaRef,
    tags_schema: SchemaRef,
) -> DemoPlant {
    demo_plant_for(seed, start, HOUR_SECS, samples_schema, tags_schema)
}

/// Like [`demo_plant`] for `seconds` seconds of data (tests use less).
pub fn demo_plant_for(
    seed: u64,
    start: DateTime<Utc>,
    seconds: u32,
    samples_schema: SchemaRef,
    tags_schema: SchemaRef,
) -> DemoPlant {
    let secs = seconds.max(1) as usize;
    let runs = plan_runs(seed, secs);
    // run_at[line][s]: index into `runs` of the run active on `line` at second s.
    let mut run_at = vec![vec![0usize; secs]; LINES.len()];
    for (i, run) in runs.iter().enumerate() {
        let from = run.start.max(0) as usize;
        let to = (run.end.max(0) as usize).min(secs);
        run_at[run.line][from.min(to)..to].fill(i);
    }
    let timelines: Vec<Timeline> = (0..LINES.len() * UNITS.len())
        .map(|i| {
            timeline(
                seed,
                i / UNITS.len(),
                i % UNITS.len(),
                &runs,
                &run_at[i / UNITS.len()],
                secs,
            )
        })
        .collect();

    let mut defs: Vec<(String, usize, usize, TagSpec)> = Vec::new();
    for line in 0..LINES.len() {
        for unit in 0..UNITS.len() {
            for spec in unit_specs(unit) {
                defs.push((
                    format!("{}.{}.{}", LINES[line], UNITS[unit], spec.name),
                    line,
                    unit,
                    spec,
                ));
            }
        }
    }
    defs.sort_by(|a, b| a.0.cmp(&b.0));

    let start_ns = start
        .timestamp_nanos_opt()
        .expect("demo start fits in i64 nanoseconds");
    let mut sink = SampleSink::new(samples_schema);
    for (index, (name, line, unit, spec)) in defs.iter().enumerate() {
        let equipment = format!("{}.{}", LINES[*line], UNITS[*unit]);
        let tl = &timelines[line * UNITS.len() + unit];
        let ctx = TagCtx {
            seed,
            index,
            name: name.as_str(),
            equipment: equipment.as_str(),
            tl,
            runs: runs.as_slice(),
            run_at: run_at[*line].as_slice(),
        };
        generate_tag(&ctx, spec, start_ns, secs, &mut sink);
    }
    sink.flush();

    let tags = tags_batch(&tags_schema, &defs);
    let demo_runs = runs
        .iter()
        .map(|r| DemoRun {
            line: LINES[r.line].to_string(),
            work_order: r.work_order.clone(),
            lot: r.lot.clone(),
            material: r.material.to_string(),
            start: start + TimeDelta::seconds(r.start),
            end: start + TimeDelta::seconds(r.end),
        })
        .collect();
    DemoPlant {
        tags,
        samples: sink.batches,
        work_orders: runs.iter().map(|r| r.work_order.clone()).collect(),
        lots: runs.iter().map(|r| r.lot.clone()).collect(),
        runs: demo_runs,
    }
}

// ---------------------------------------------------------------- hashing

fn mix(mut z: u64) -> u64 {
    // splitmix64 finalizer
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn key(seed: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(mix(seed), |h, &p| mix(h ^ p))
}

fn str_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn gauss(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

fn quantize(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

// ---------------------------------------------------------------- runs and timelines

struct Run {
    line: usize,
    /// Seconds from the demo start (the first run of a line starts before 0).
    start: i64,
    end: i64,
    work_order: String,
    lot: String,
    material: &'static str,
}

fn plan_runs(seed: u64, secs: usize) -> Vec<Run> {
    let mut runs = Vec::new();
    for line in 0..LINES.len() {
        // Lines are staggered so their changeovers do not coincide.
        let mut at = -(line as i64) * 420;
        let mut k = 0u64;
        while at < secs as i64 {
            let h = key(seed, &[10, line as u64, k]);
            let len = 1200 + (h % 361) as i64 - 180; // 17..23 minutes
            let n = 1001 + runs.len();
            runs.push(Run {
                line,
                start: at,
                end: at + len,
                work_order: format!("WO-{n}"),
                lot: format!("L-{n}"),
                material: MATERIALS[((h >> 20) % MATERIALS.len() as u64) as usize],
            });
            at += len;
            k += 1;
        }
    }
    runs
}

/// What a unit is doing each second: running or not, and its state text.
struct Timeline {
    running: Vec<bool>,
    state: Vec<u8>,
    states: &'static [&'static str],
}

fn unit_states(unit: usize) -> &'static [&'static str] {
    // 0 = stopped, 1 = changeover, 2.. = running states, "fault" = stopped on a fault.
    match unit {
        0 => &["idle", "cleaning", "filling", "mixing", "discharging"],
        1 => &["idle", "preheating", "baking"],
        2 => &["idle", "cip", "filling", "fault"],
        _ => &["idle", "changeover", "packing", "fault"],
    }
}

fn timeline(
    seed: u64,
    line: usize,
    unit: usize,
    runs: &[Run],
    run_at: &[usize],
    secs: usize,
) -> Timeline {
    let states = unit_states(unit);
    let mut running = vec![true; secs];
    let mut state = vec![2u8; secs];
    for s in 0..secs {
        let r = run_at[s];
        let since = s as i64 - runs[r].start;
        let changeover = 60 + (key(seed, &[20, r as u64, unit as u64]) % 121) as i64;
        if since < changeover {
            running[s] = false;
            state[s] = 1;
        } else if unit == 0 {
            // The mixer cycles fill (60 s), mix (240 s), discharge (60 s).
            let phase = (since - changeover) % 360;
            state[s] = if phase < 60 {
                2
            } else if phase < 300 {
                3
            } else {
                4
            };
        }
    }
    let mut rng = StdRng::seed_from_u64(key(seed, &[21, line as u64, unit as u64]));
    let stops = rng.random_range(1..=3);
    for _ in 0..stops {
        let at = rng.random_range(0..secs);
        let len = rng.random_range(20..=240usize);
        let fault = states.len() == 4 && rng.random_bool(0.4);
        for s in at..(at + len).min(secs) {
            if running[s] {
                running[s] = false;
                state[s] = if fault { 3 } else { 0 };
            }
        }
    }
    Timeline {
        running,
        state,
        states,
    }
}

fn tags_batch(schema: &SchemaRef, defs: &[(String, usize, usize, TagSpec)]) -> RecordBatch {
    let n = defs.len();
    let mut name = StringBuilder::with_capacity(n, n * 32);
    let mut description = StringBuilder::with_capacity(n, n * 40);
    let mut unit = StringBuilder::with_capacity(n, n * 8);
    let mut equipment = StringBuilder::with_capacity(n, n * 16);
    let mut vtype = StringBuilder::with_capacity(n, n * 6);
    let mut interp = StringBuilder::with_capacity(n, n * 6);
    let mut low = Float64Builder::with_capacity(n);
    let mut high = Float64Builder::with_capacity(n);
    for (tag, line, u, spec) in defs {
        name.append_value(tag);
        description.append_value(format!(
            "Line {} {} {}",
            line + 1,
            UNITS[*u],
            spec.description
        ));
        unit.append_option((!spec.unit.is_empty()).then_some(spec.unit));
        equipment.append_value(format!("{}.{}", LINES[*line], UNITS[*u]));
        vtype.append_value(value_type(&spec.signal));
        interp.append_value(interpolation(&spec.signal));
        low.append_option(spec.low);
        high.append_option(spec.high);
    }
    // Aggregate configuration left null: the server's OPC UA defaults apply.
    let mut none_bool = BooleanBuilder::with_capacity(n);
    let mut none_u8 = UInt8Builder::with_capacity(n);
    none_bool.append_nulls(n);
    none_u8.append_nulls(n);
    let none_bool: ArrayRef = Arc::new(none_bool.finish());
    let none_u8: ArrayRef = Arc::new(none_u8.finish());
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("tag", Arc::new(name.finish()) as ArrayRef),
        ("description", Arc::new(description.finish()) as ArrayRef),
        ("unit", Arc::new(unit.finish()) as ArrayRef),
        ("equipment", Arc::new(equipment.finish()) as ArrayRef),
        ("value_type", Arc::new(vtype.finish()) as ArrayRef),
        ("interpolation", Arc::new(interp.finish()) as ArrayRef),
        ("eng_low", Arc::new(low.finish()) as ArrayRef),
        ("eng_high", Arc::new(high.finish()) as ArrayRef),
        ("treat_uncertain_as_bad", none_bool.clone()),
        ("percent_data_good", none_u8.clone()),
        ("percent_data_bad", none_u8),
        ("use_sloped_extrapolation", none_bool),
    ];
    assemble(schema, columns, n)
}

/// Arrange named columns in schema order, casting where the schema's type
/// differs and filling columns we do not generate with nulls.
fn assemble(schema: &SchemaRef, columns: Vec<(&str, ArrayRef)>, rows: usize) -> RecordBatch {
    let arrays: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match columns.iter().find(|(n, _)| f.name() == *n) {
            Some((_, a)) if a.data_type() == f.data_type() => a.clone(),
            Some((_, a)) => arrow::compute::cast(a.as_ref(), f.data_type()).unwrap_or_else(|e| {
                panic!(
                    "demo column '{}' cannot be {}: {e}",
                    f.name(),
                    f.data_type()
                )
            }),
            None => new_null_array(f.data_type(), rows),
        })
        .collect();
    RecordBatch::try_new(schema.clone(), arrays).expect("demo batch matches its schema")
}

// ---------------------------------------------------------------- samples

struct SampleSink {
    schema: SchemaRef,
    tag: StringBuilder,
    ts: TimestampNanosecondBuilder,
    value: Float64Builder,
    text: StringBuilder,
    quality: UInt32Builder,
    equipment: StringBuilder,
    work_order: StringBuilder,
    lot: StringBuilder,
    len: usize,
    batches: Vec<RecordBatch>,
}

impl SampleSink {
    fn new(schema: SchemaRef) -> Self {
        let n = BATCH_ROWS;
        SampleSink {
            schema,
            tag: StringBuilder::with_capacity(n, n * 28),
            ts: TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC"),
            value: Float64Builder::with_capacity(n),
            text: StringBuilder::with_capacity(n, 1024),
            quality: UInt32Builder::with_capacity(n),
            equipment: StringBuilder::with_capacity(n, n * 12),
            work_order: StringBuilder::with_capacity(n, n * 8),
            lot: StringBuilder::with_capacity(n, n * 8),
            len: 0,
            batches: Vec::new(),
        }
    }

    fn push(
        &mut self,
        ctx: &TagCtx,
        ts: i64,
        value: Option<f64>,
        text: Option<&str>,
        quality: u32,
        run: &Run,
    ) {
        self.tag.append_value(ctx.name);
        self.ts.append_value(ts);
        self.value.append_option(value);
        self.text.append_option(text);
        self.quality.append_value(quality);
        self.equipment.append_value(ctx.equipment);
        self.work_order.append_value(&run.work_order);
        self.lot.append_value(&run.lot);
        self.len += 1;
        if self.len == BATCH_ROWS {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("tag", Arc::new(self.tag.finish()) as ArrayRef),
            ("ts", Arc::new(self.ts.finish()) as ArrayRef),
            ("value", Arc::new(self.value.finish()) as ArrayRef),
            ("text", Arc::new(self.text.finish()) as ArrayRef),
            ("quality", Arc::new(self.quality.finish()) as ArrayRef),
            ("equipment", Arc::new(self.equipment.finish()) as ArrayRef),
            ("work_order", Arc::new(self.work_order.finish()) as ArrayRef),
            ("lot", Arc::new(self.lot.finish()) as ArrayRef),
        ];
        self.batches.push(assemble(&self.schema, columns, self.len));
        self.len = 0;
    }
}

struct TagCtx<'a> {
    seed: u64,
    index: usize,
    name: &'a str,
    equipment: &'a str,
    tl: &'a Timeline,
    runs: &'a [Run],
    run_at: &'a [usize],
}

fn setpoint(seed: u64, run: usize, key_name: &str, choices: &[f64]) -> f64 {
    choices[(key(seed, &[30, run as u64, str_hash(key_name)]) % choices.len() as u64) as usize]
}

fn generate_tag(ctx: &TagCtx, spec: &TagSpec, start_ns: i64, secs: usize, sink: &mut SampleSink) {
    let mut rng = StdRng::seed_from_u64(key(ctx.seed, &[40, ctx.index as u64]));
    let seed = ctx.seed;
    // Disturbances (analog tags only): a short quality burst, a comms gap.
    let analog_like = matches!(spec.signal, Signal::Analog { .. } | Signal::Tracking { .. });
    let (has_burst, burst_at, burst_len) = (
        rng.random_bool(0.12),
        rng.random_range(0..secs),
        rng.random_range(3..=8usize),
    );
    let burst_code = if rng.random_bool(0.6) {
        QUALITY_UNCERTAIN
    } else {
        QUALITY_BAD
    };
    let (has_gap, gap_at, gap_len) = (
        rng.random_bool(0.05),
        rng.random_range(0..secs),
        rng.random_range(30..=120usize),
    );
    let burst = (analog_like && has_burst).then_some(burst_at..burst_at + burst_len);
    let gap = (analog_like && has_gap).then_some(gap_at..gap_at + gap_len);

    let phase = rng.random::<f64>() * TAU;
    let mut walk = 0.0;
    let mut activity = if ctx.tl.running[0] { 1.0 } else { 0.0 };
    let mut level: Option<f64> = None;
    let mut toggle_on = rng.random_bool(0.5);
    let mut toggle_left = 0.0;
    let mut counter = rng.random_range(10_000..1_000_000u32) as f64;
    let mut fraction = 0.0;
    let mut last_good: Option<f64> = None;

    for s in 0..secs {
        let run_index = ctx.run_at[s];
        let running = ctx.tl.running[s];
        let on = if running { 1.0 } else { 0.0 };
        activity += (on - activity) * 0.2;
        let (value, text): (Option<f64>, Option<&str>) = match spec.signal {
            Signal::Analog {
                base,
                swing,
                period,
                walk: step,
                noise,
                idle,
            } => {
                walk += step * gauss(&mut rng) - walk * 0.002;
                let active = base + swing * (TAU * s as f64 / period + phase).sin() + walk;
                let v = match idle {
                    Some(i) => i + (active - i) * activity,
                    None => active,
                };
                (Some(quantize(v + noise * gauss(&mut rng))), None)
            }
            Signal::Setpoint {
                key,
                choices,
                offset,
            } => (
                Some(quantize(setpoint(seed, run_index, key, choices) + offset)),
                None,
            ),
            Signal::Tracking {
                key,
                choices,
                offset,
                tau,
                noise,
                idle,
            } => {
                let target = match idle {
                    Some(i) if !running => i,
                    _ => setpoint(seed, run_index, key, choices) + offset,
                };
                let current = level.get_or_insert(target);
                *current += (target - *current) * (1.0 - (-1.0 / tau).exp());
                (Some(quantize(*current + noise * gauss(&mut rng))), None)
            }
            Signal::Running => (Some(if running { 1.0 } else { 0.0 }), None),
            Signal::Toggle { mean_on, mean_off } => {
                if toggle_left <= 0.0 {
                    toggle_on = !toggle_on;
                    let mean = if toggle_on { mean_on } else { mean_off };
                    toggle_left = -mean * (1.0 - rng.random::<f64>()).ln() + 1.0;
                }
                toggle_left -= 1.0;
                (Some(if toggle_on { 1.0 } else { 0.0 }), None)
            }
            Signal::Counter { rate } => {
                if running {
                    fraction += (rate * (1.0 + 0.2 * gauss(&mut rng))).max(0.0);
                    let whole = fraction.floor();
                    counter += whole;
                    fraction -= whole;
                }
                (Some(counter), None)
            }
            Signal::State => (None, Some(ctx.tl.states[ctx.tl.state[s] as usize])),
        };
        if gap.as_ref().is_some_and(|g| g.contains(&s)) {
            continue; // the signal goes on, the historian just hears nothing
        }
        let (value, quality) = match &burst {
            Some(b) if b.contains(&s) && burst_code == QUALITY_BAD => (None, QUALITY_BAD),
            // Uncertain: the sensor holds its last usable value.
            Some(b) if b.contains(&s) => (last_good.or(value), QUALITY_UNCERTAIN),
            _ => {
                last_good = value;
                (value, QUALITY_GOOD)
            }
        };
        let ts = start_ns + s as i64 * NANOS;
        sink.push(ctx, ts, value, text, quality, &ctx.runs[run_index]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Field, Float64Type, Schema, TimeUnit, UInt32Type};
    use chrono::TimeZone;

    fn samples_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("tag", DataType::Utf8, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Field::new("value", DataType::Float64, true),
            Field::new("text", DataType::Utf8, true),
            Field::new("quality", DataType::UInt32, false),
            Field::new("equipment", DataType::Utf8, true),
            Field::new("work_order", DataType::Utf8, true),
            Field::new("lot", DataType::Utf8, true),
        ]))
    }

    fn tags_schema() -> SchemaRef {
        let s = |n: &str| Field::new(n, DataType::Utf8, true);
        Arc::new(Schema::new(vec![
            Field::new("tag", DataType::Utf8, false),
            s("description"),
            s("unit"),
            s("equipment"),
            s("value_type"),
            s("interpolation"),
            Field::new("eng_low", DataType::Float64, true),
            Field::new("eng_high", DataType::Float64, true),
            Field::new("treat_uncertain_as_bad", DataType::Boolean, true),
            Field::new("percent_data_good", DataType::UInt8, true),
            Field::new("percent_data_bad", DataType::UInt8, true),
            Field::new("use_sloped_extrapolation", DataType::Boolean, true),
        ]))
    }

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn same_seed_same_plant() {
        let a = demo_plant_for(7, start(), 300, samples_schema(), tags_schema());
        let b = demo_plant_for(7, start(), 300, samples_schema(), tags_schema());
        assert_eq!(a.tags, b.tags);
        assert_eq!(a.samples, b.samples);
        assert_eq!(a.work_orders, b.work_orders);
        assert_eq!(a.runs, b.runs);
        let c = demo_plant_for(8, start(), 300, samples_schema(), tags_schema());
        assert_ne!(a.samples, c.samples);
    }

    #[test]
    fn one_hour_matches_schemas_and_shape() {
        let plant = demo_plant(1, start(), samples_schema(), tags_schema());
        assert_eq!(plant.tags.schema(), tags_schema());
        assert_eq!(plant.tags.num_rows(), 300);
        let tags = plant.tags.column(0).as_string::<i32>();
        for name in [
            "line1.oven.temperature",
            "line1.oven.setpoint",
            "line2.filler.running",
            "line1.packer.count",
            "line3.mixer.state",
        ] {
            assert!(tags.iter().any(|t| t == Some(name)), "missing {name}");
        }
        let rows: usize = plant.samples.iter().map(|b| b.num_rows()).sum();
        assert!((1_000_000..=1_080_000).contains(&rows), "{rows} rows");
        let mut flagged = 0;
        let mut last_count = f64::MIN;
        for batch in &plant.samples {
            assert_eq!(batch.schema(), samples_schema());
            assert!(batch.num_rows() <= BATCH_ROWS);
            let quality = batch.column(4).as_primitive::<UInt32Type>();
            flagged += quality.iter().filter(|q| *q != Some(QUALITY_GOOD)).count();
            let tag = batch.column(0).as_string::<i32>();
            let value = batch.column(2).as_primitive::<Float64Type>();
            assert_eq!(
                batch.column(6).null_count(),
                0,
                "every sample has a work order"
            );
            for i in 0..batch.num_rows() {
                if tag.value(i) == "line1.packer.count" {
                    assert!(value.value(i) >= last_count, "counter went backwards");
                    last_count = value.value(i);
                }
            }
        }
        assert!(flagged > 0, "some samples should be Uncertain or Bad");
        assert_eq!(plant.work_orders.len(), plant.lots.len());
        assert!(plant.work_orders.len() >= 9);
        assert_eq!(plant.work_orders[0], "WO-1001");
        assert_eq!(plant.lots[0], "L-1001");
    }
}
