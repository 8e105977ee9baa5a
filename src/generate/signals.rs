//! Samples, streamed by time chunks so that days of 50 k tags never sit in
//! memory. Per chunk the stream works out what every unit is doing (running
//! or stopped, its state text, the run of its line), then walks every tag
//! through the chunk in name order, carrying each tag's signal state (noise
//! stream, drift, lag, counters) from one chunk to the next. The values are
//! therefore the same whatever the chunk or batch size; only the row order
//! (tag-major within a chunk) follows the chunking, which itself depends on
//! the definition alone.
//!
//! Signals look like a real plant's: analog values drift slowly with noise
//! and are quantized to 0.01, process values follow recipe setpoints that
//! step at each work order, `running` flags and `state` texts follow
//! changeovers and random stops, counters only ever increase, and every hour
//! a few tags have a short Uncertain or Bad quality burst or a communication
//! gap. Every sample carries the equipment, work order and lot active on its
//! line.

use std::collections::VecDeque;
use std::f64::consts::TAU;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, StringBuilder, TimestampNanosecondBuilder, UInt32Builder,
};
use arrow::record_batch::RecordBatch;

use super::catalog::Signal;
use super::plant::{Plant, lot_id, work_order_id};
use super::rng::{Rng, between, key, mix, str_hash, unit};
use super::tables::{assemble, schema, timestamps};

pub const QUALITY_GOOD: u32 = 0;
/// UncertainLastUsableValue: the sensor holds its last good value.
pub const QUALITY_UNCERTAIN: u32 = 0x4090_0000;
pub const QUALITY_BAD: u32 = 0x8000_0000;
const HOUR_MS: i64 = 3_600_000;

/// The unit states: 0 = stopped, 1 = changeover, 2.. = running states, and
/// for fillers and packers 3 = "fault" (stopped on a fault).
fn unit_states(kind: usize) -> &'static [&'static str] {
    match kind {
        0 => &["idle", "cleaning", "filling", "mixing", "discharging"],
        1 => &["idle", "preheating", "baking"],
        2 => &["idle", "cip", "filling", "fault"],
        _ => &["idle", "changeover", "packing", "fault"],
    }
}

/// What every unit and line does at each sample time of one chunk.
struct Frame {
    first: u64,
    len: usize,
    /// `[line * len + j]`: the run active on the line at sample j.
    run_at: Vec<u32>,
    /// `[unit * len + j]`.
    running: Vec<bool>,
    state: Vec<u8>,
}

fn frame(plant: &Plant, first: u64, len: usize) -> Frame {
    let p = plant.period_ms as i64;
    let t_of = |j: usize| (first as i64 + j as i64) * p;
    let mut run_at = Vec::with_capacity(plant.lines.len() * len);
    for (l, line) in plant.lines.iter().enumerate() {
        let mut r = plant.run_at(l, t_of(0));
        for j in 0..len {
            while r + 1 < line.runs.end && plant.runs[r + 1].start * 1000 <= t_of(j) {
                r += 1;
            }
            run_at.push(r as u32);
        }
    }
    let per_line = plant.def.units_per_line as usize;
    let (mut running, mut state) = (Vec::with_capacity(plant.units.len() * len), Vec::new());
    state.reserve(plant.units.len() * len);
    for (u, unit_def) in plant.units.iter().enumerate() {
        let position = (u % per_line) as u64;
        let can_fault = unit_states(unit_def.kind).len() == 4;
        let stops = stops(
            plant.seed,
            u as u64,
            can_fault,
            t_of(0) - 240_000,
            t_of(len - 1),
        );
        for j in 0..len {
            let t = t_of(j);
            let r = run_at[unit_def.line * len + j] as usize;
            let since = t - plant.runs[r].start * 1000;
            let changeover = (60 + key(plant.seed, &[20, r as u64, position]) % 121) as i64 * 1000;
            let (mut on, mut s) = if since < changeover {
                (false, 1u8)
            } else if unit_def.kind == 0 {
                // The mixer cycles fill (60 s), mix (240 s), discharge (60 s).
                let phase = ((since - changeover) / 1000) % 360;
                (
                    true,
                    if phase < 60 {
                        2
                    } else if phase < 300 {
                        3
                    } else {
                        4
                    },
                )
            } else {
                (true, 2)
            };
            if on && let Some(&(_, _, fault)) = stops.iter().find(|(a, b, _)| (*a..*b).contains(&t))
            {
                on = false;
                s = if fault { 3 } else { 0 };
            }
            running.push(on);
            state.push(s);
        }
    }
    Frame {
        first,
        len,
        run_at,
        running,
        state,
    }
}

/// A unit's random stops (1 to 3 an hour, 20 s to 4 min each) that overlap
/// `[from, to]` (ms): (start, end, on a fault).
fn stops(seed: u64, unit_index: u64, can_fault: bool, from: i64, to: i64) -> Vec<(i64, i64, bool)> {
    let mut out = Vec::new();
    for h in from.max(0) / HOUR_MS..=to.max(0) / HOUR_MS {
        let count = between(key(seed, &[21, unit_index, h as u64]), 1, 3);
        for k in 0..count {
            let hk = key(seed, &[22, unit_index, h as u64, k]);
            let at = h * HOUR_MS + between(hk, 0, 3599) as i64 * 1000;
            let len = between(mix(hk), 20, 240) as i64 * 1000;
            let fault = can_fault && unit(mix(mix(hk))) < 0.4;
            if at + len > from && at <= to {
                out.push((at, at + len, fault));
            }
        }
    }
    out
}

/// A tag's disturbances overlapping `[from, to]` (ms): (start, end, quality),
/// quality 0 meaning a gap (no samples at all).
fn disturbances(seed: u64, name: u64, period_ms: i64, from: i64, to: i64) -> Vec<(i64, i64, u32)> {
    let mut out = Vec::new();
    for h in (from - HOUR_MS).max(0) / HOUR_MS..=to / HOUR_MS {
        let hb = key(seed, &[41, name, h as u64]);
        if unit(hb) < 0.12 {
            let at = h * HOUR_MS + between(mix(hb), 0, 3_599_999) as i64;
            let len = (between(mix(hb ^ 1), 3, 8) as i64 * period_ms).min(HOUR_MS);
            let code = if unit(mix(hb ^ 2)) < 0.6 {
                QUALITY_UNCERTAIN
            } else {
                QUALITY_BAD
            };
            out.push((at, at + len, code));
        }
        let hg = key(seed, &[42, name, h as u64]);
        if unit(hg) < 0.05 {
            let at = h * HOUR_MS + between(mix(hg), 0, 3_599_999) as i64;
            out.push((at, at + between(mix(hg ^ 1), 30, 120) as i64 * 1000, 0));
        }
    }
    out.retain(|&(a, b, _)| b > from && a <= to);
    out
}

/// A tag's signal state, carried from chunk to chunk.
struct TagState {
    name_hash: u64,
    rng: Rng,
    phase: f64,
    walk: f64,
    activity: Option<f64>,
    level: Option<f64>,
    toggle_on: bool,
    toggle_left: f64,
    counter: f64,
    fraction: f64,
    last_good: Option<f64>,
}

impl TagState {
    fn new(seed: u64, name: &str) -> Self {
        let name_hash = str_hash(name);
        let mut rng = Rng::new(key(seed, &[40, name_hash]));
        let phase = rng.f64() * TAU;
        let toggle_on = rng.chance(0.5);
        let counter = (10_000 + rng.next_u64() % 990_000) as f64;
        TagState {
            name_hash,
            rng,
            phase,
            walk: 0.0,
            activity: None,
            level: None,
            toggle_on,
            toggle_left: 0.0,
            counter,
            fraction: 0.0,
            last_good: None,
        }
    }
}

fn quantize(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn setpoint(seed: u64, run: usize, key_name: &str, choices: &[f64]) -> f64 {
    choices[(key(seed, &[30, run as u64, str_hash(key_name)]) % choices.len() as u64) as usize]
}

/// Streams the plant's samples as batches of `model::samples()`'s schema.
pub struct SampleStream {
    plant: Arc<Plant>,
    states: Vec<TagState>,
    work_orders: Vec<String>,
    lots: Vec<String>,
    next_first: u64,
    next_tag: usize,
    frame: Option<Frame>,
    sink: Sink,
    done: bool,
}

impl SampleStream {
    pub fn new(plant: Arc<Plant>, batch_rows: usize) -> Self {
        let states = plant
            .tags
            .iter()
            .map(|t| TagState::new(plant.seed, &t.name))
            .collect();
        let work_orders = (0..plant.runs.len()).map(work_order_id).collect();
        let lots = (0..plant.runs.len()).map(lot_id).collect();
        SampleStream {
            plant,
            states,
            work_orders,
            lots,
            next_first: 0,
            next_tag: 0,
            frame: None,
            sink: Sink::new(batch_rows.max(1)),
            done: false,
        }
    }

    /// Generates the next tag of the current chunk (starting a chunk first
    /// if needed), or finishes the stream.
    fn advance(&mut self) {
        let plant = self.plant.clone();
        let total = plant.samples_per_tag();
        if self.frame.is_none() {
            if self.next_first >= total {
                self.sink.flush();
                self.done = true;
                return;
            }
            let len = plant.chunk_samples.min(total - self.next_first) as usize;
            self.frame = Some(frame(&plant, self.next_first, len));
            self.next_tag = 0;
        }
        let frame = self.frame.take().expect("frame");
        self.generate_tag(&plant, &frame, self.next_tag);
        self.next_tag += 1;
        if self.next_tag == plant.tags.len() {
            self.next_first += frame.len as u64;
        } else {
            self.frame = Some(frame);
        }
    }

    fn generate_tag(&mut self, plant: &Plant, frame: &Frame, index: usize) {
        let tag = &plant.tags[index];
        let unit_def = &plant.units[tag.unit];
        let st = &mut self.states[index];
        let (seed, p, len) = (plant.seed, plant.period_ms as i64, frame.len);
        let dt = p as f64 / 1000.0;
        let t0 = frame.first as i64 * p;
        let analog_like = matches!(
            tag.spec.signal,
            Signal::Analog { .. } | Signal::Tracking { .. }
        );
        let trouble = if analog_like {
            disturbances(seed, st.name_hash, p, t0, t0 + (len as i64 - 1) * p)
        } else {
            Vec::new()
        };
        let states = unit_states(unit_def.kind);
        for j in 0..len {
            let t = t0 + j as i64 * p;
            let run = frame.run_at[unit_def.line * len + j] as usize;
            let running = frame.running[tag.unit * len + j];
            let on = if running { 1.0 } else { 0.0 };
            let activity = st.activity.get_or_insert(on);
            *activity += (on - *activity) * (1.0 - 0.8f64.powf(dt));
            let activity = *activity;
            let (value, text): (Option<f64>, Option<&str>) = match tag.spec.signal {
                Signal::Analog {
                    base,
                    swing,
                    period,
                    walk,
                    noise,
                    idle,
                } => {
                    st.walk += walk * dt.sqrt() * st.rng.gauss() - st.walk * (0.002 * dt).min(1.0);
                    let secs = t as f64 / 1000.0;
                    let active = base + swing * (TAU * secs / period + st.phase).sin() + st.walk;
                    let v = match idle {
                        Some(i) => i + (active - i) * activity,
                        None => active,
                    };
                    (Some(quantize(v + noise * st.rng.gauss())), None)
                }
                Signal::Setpoint {
                    key,
                    choices,
                    offset,
                } => (
                    Some(quantize(setpoint(seed, run, key, choices) + offset)),
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
                        _ => setpoint(seed, run, key, choices) + offset,
                    };
                    let level = st.level.get_or_insert(target);
                    *level += (target - *level) * (1.0 - (-dt / tau).exp());
                    (Some(quantize(*level + noise * st.rng.gauss())), None)
                }
                Signal::Running => (Some(on), None),
                Signal::Toggle { mean_on, mean_off } => {
                    if st.toggle_left <= 0.0 {
                        st.toggle_on = !st.toggle_on;
                        let mean = if st.toggle_on { mean_on } else { mean_off };
                        st.toggle_left = st.rng.exp(mean) + 1.0;
                    }
                    st.toggle_left -= dt;
                    (Some(if st.toggle_on { 1.0 } else { 0.0 }), None)
                }
                Signal::Counter { rate } => {
                    if running {
                        st.fraction += (rate * dt * (1.0 + 0.2 * st.rng.gauss())).max(0.0);
                        let whole = st.fraction.floor();
                        st.counter += whole;
                        st.fraction -= whole;
                    }
                    (Some(st.counter), None)
                }
                Signal::State => (None, Some(states[frame.state[tag.unit * len + j] as usize])),
            };
            // Transmitters saturate at the ends of their range.
            let value = match (analog_like, tag.spec.low, tag.spec.high) {
                (true, Some(lo), Some(hi)) => value.map(|v| v.clamp(lo, hi)),
                _ => value,
            };
            let hit = trouble
                .iter()
                .find(|(a, b, _)| (*a..*b).contains(&t))
                .map(|d| d.2);
            let (value, quality) = match hit {
                // The signal goes on; the historian just hears nothing.
                Some(0) => continue,
                Some(QUALITY_BAD) => (None, QUALITY_BAD),
                // Uncertain: the sensor holds its last usable value.
                Some(code) => (st.last_good.or(value), code),
                None => {
                    st.last_good = value;
                    (value, QUALITY_GOOD)
                }
            };
            self.sink.push(Row {
                tag: &tag.name,
                ts: plant.start_ns + t * 1_000_000,
                value,
                text,
                quality,
                equipment: &unit_def.id,
                work_order: &self.work_orders[run],
                lot: &self.lots[run],
            });
        }
    }
}

impl Iterator for SampleStream {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        loop {
            if let Some(batch) = self.sink.ready.pop_front() {
                return Some(batch);
            }
            if self.done {
                return None;
            }
            self.advance();
        }
    }
}

struct Row<'a> {
    tag: &'a str,
    ts: i64,
    value: Option<f64>,
    text: Option<&'a str>,
    quality: u32,
    equipment: &'a str,
    work_order: &'a str,
    lot: &'a str,
}

/// Column builders that cut a batch every `batch_rows` rows.
struct Sink {
    batch_rows: usize,
    tag: StringBuilder,
    ts: TimestampNanosecondBuilder,
    value: Float64Builder,
    text: StringBuilder,
    quality: UInt32Builder,
    equipment: StringBuilder,
    work_order: StringBuilder,
    lot: StringBuilder,
    len: usize,
    ready: VecDeque<RecordBatch>,
}

impl Sink {
    fn new(batch_rows: usize) -> Self {
        let n = batch_rows.min(1 << 20);
        Sink {
            batch_rows,
            tag: StringBuilder::with_capacity(n, n * 28),
            ts: timestamps(n),
            value: Float64Builder::with_capacity(n),
            text: StringBuilder::with_capacity(n, 1024),
            quality: UInt32Builder::with_capacity(n),
            equipment: StringBuilder::with_capacity(n, n * 12),
            work_order: StringBuilder::with_capacity(n, n * 8),
            lot: StringBuilder::with_capacity(n, n * 8),
            len: 0,
            ready: VecDeque::new(),
        }
    }

    fn push(&mut self, row: Row) {
        self.tag.append_value(row.tag);
        self.ts.append_value(row.ts);
        self.value.append_option(row.value);
        self.text.append_option(row.text);
        self.quality.append_value(row.quality);
        self.equipment.append_value(row.equipment);
        self.work_order.append_value(row.work_order);
        self.lot.append_value(row.lot);
        self.len += 1;
        if self.len == self.batch_rows {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("tag", Arc::new(self.tag.finish())),
            ("ts", Arc::new(self.ts.finish())),
            ("value", Arc::new(self.value.finish())),
            ("text", Arc::new(self.text.finish())),
            ("quality", Arc::new(self.quality.finish())),
            ("equipment", Arc::new(self.equipment.finish())),
            ("work_order", Arc::new(self.work_order.finish())),
            ("lot", Arc::new(self.lot.finish())),
        ];
        self.ready
            .push_back(assemble(&schema("samples"), columns, self.len));
        self.len = 0;
    }
}
