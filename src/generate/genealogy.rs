//! Lots and their genealogy, sized by the plant's `edges` and streamed.
//!
//! Material flows through `genealogy_levels` steps: raw lots (`R-n`, level
//! 0, received from suppliers) are transformed through intermediate levels
//! (`I1-n` … `I9-n` with ten levels: premix, dough, …) into the finished lots
//! the lines make (`L-n`, one per production run, the lots stamped on the
//! samples). Each lot consumes one to four lots of the level below (merges);
//! neighbouring lots draw on overlapping inputs, so one input feeds several
//! outputs (splits); a finished lot sometimes takes in the previous lot of
//! its line as rework, so tracing back from a finished lot reaches other
//! finished lots and their process data. Every path from a finished lot back
//! to a raw lot is `genealogy_levels` edges long, and a lot is always made
//! after its inputs.
//!
//! Lot `i` of a level and its inputs are pure functions of the seed and
//! `(level, i)`, so lots and edges stream level by level with nothing kept
//! but a few counters. The edge count is exactly `edges`: the levels share
//! what the finished lots leave, and the last intermediate level stops when
//! the count is reached.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Builder, StringBuilder, TimestampNanosecondBuilder};
use arrow::record_batch::RecordBatch;

use super::GenerateError;
use super::plant::{MATERIALS, Plant, lot_id, work_order_id};
use super::rng::{between, key, mix, unit};
use super::tables::{NANOS_PER_SEC, assemble, run_quantity, schema, timestamps, yield_of};

const RAW: [&str; 8] = [
    "flour",
    "sugar",
    "butter",
    "cocoa",
    "salt",
    "milk-powder",
    "vanilla",
    "film",
];
const STAGES: [&str; 9] = [
    "premix", "dough", "sheet", "formed", "baked", "cooled", "filled", "coated", "sorted",
];
/// Inputs of a lot are drawn from this many lots below its position.
const SPREAD: u64 = 6;
const HOUR_NS: i64 = 3_600 * NANOS_PER_SEC;
/// Most inputs a lot can have: 5 for finished lots, plus one rework lot.
pub const MAX_FAN_IN: u64 = 6;

/// Inputs of intermediate lots: 1 (45 %), 2 (30 %), 3 (17 %), 4 (8 %).
fn fan_in(h: u64) -> u64 {
    match unit(h) {
        u if u < 0.45 => 1,
        u if u < 0.75 => 2,
        u if u < 0.92 => 3,
        _ => 4,
    }
}

/// How many lots each level holds and where the edge budget runs out.
#[derive(Debug, Clone, PartialEq)]
pub struct GenealogyPlan {
    pub levels: u64,
    /// Lots per level, `sizes[0]` raw … `sizes[levels]` finished (= runs).
    pub sizes: Vec<u64>,
    /// Inputs of the last lot of level `levels - 1` (cut to hit the count).
    pub last_fan_in: u64,
    pub edges: u64,
}

/// Lots, genealogy edges and their plan for one plant.
pub struct Genealogy {
    plant: Arc<Plant>,
    pub plan: GenealogyPlan,
    lag_ns: i64,
}

impl Genealogy {
    pub fn new(plant: Arc<Plant>) -> Result<Self, GenerateError> {
        let plan = plan(&plant)?;
        let lag_ns = HOUR_NS.max(plant.def.run_minutes[1] as i64 * 60 * NANOS_PER_SEC);
        Ok(Genealogy {
            plant,
            plan,
            lag_ns,
        })
    }

    fn seed(&self) -> u64 {
        self.plant.seed
    }

    fn has_graph(&self) -> bool {
        self.plan.edges > 0
    }

    /// Inputs of lot `i` of `level` (≥ 1) as (level, index) pairs.
    fn inputs(&self, level: u64, i: u64, out: &mut Vec<(u64, u64)>) {
        out.clear();
        let top = self.plan.levels;
        let below = self.plan.sizes[level as usize - 1];
        let h = key(self.seed(), &[60, level, i]);
        let (f, center) = if level == top {
            let run = &self.plant.runs[i as usize];
            let span = self.plant.duration_ms as f64 / 1000.0;
            let frac = (run.start as f64 / span).clamp(0.0, 1.0);
            (1 + fan_in(h), ((frac * below as f64) as u64).min(below - 1))
        } else {
            let mut f = fan_in(h);
            if level == top - 1 && i + 1 == self.plan.sizes[level as usize] {
                f = self.plan.last_fan_in;
            }
            (f, i * below / self.plan.sizes[level as usize])
        };
        let f = f.min(below);
        let first = center
            .saturating_sub(between(mix(h), 0, SPREAD - 1))
            .saturating_sub(f - 1);
        out.extend((first..first + f).map(|j| (level - 1, j)));
        if level == top && rework(self.seed(), i) && self.plant.runs_before(i as usize) {
            out.push((top, i - 1));
        }
    }

    fn lot_name(&self, level: u64, i: u64) -> String {
        match level {
            0 => format!("R-{}", i + 1),
            l if l == self.plan.levels => lot_id(i as usize),
            l => format!("I{l}-{}", i + 1),
        }
    }

    /// When lot `i` of `level` was made.
    fn made_at(&self, level: u64, i: u64) -> i64 {
        if level == self.plan.levels {
            return self.plant.start_ns + self.plant.runs[i as usize].start * NANOS_PER_SEC;
        }
        let span = self.plant.duration_ms as i64 * 1_000_000;
        let step = span / self.plan.sizes[level as usize] as i64;
        self.plant.start_ns - (self.plan.levels - level) as i64 * self.lag_ns + i as i64 * step
    }

    fn quantity(&self, level: u64, i: u64) -> f64 {
        if level == self.plan.levels {
            let run = i as usize;
            return (run_quantity(&self.plant, run) * yield_of(&self.plant, run)).round();
        }
        let h = key(self.seed(), &[61, level, i]);
        between(h, 200, 2000) as f64
    }

    /// The `lots` table: raw and intermediate lots (when there is a
    /// genealogy), then one finished lot per run.
    pub fn lots(self: Arc<Self>, batch_rows: usize) -> impl Iterator<Item = RecordBatch> {
        let top = self.plan.levels;
        let first_level = if self.has_graph() { 0 } else { top };
        let mut cursor = Cursor::new(first_level, top, batch_rows);
        std::iter::from_fn(move || {
            let mut b = LotBuilder::default();
            while b.rows < cursor.batch_rows {
                let Some((level, i)) = cursor.next(&self.plan.sizes) else {
                    break;
                };
                b.push(&self, level, i);
            }
            (b.rows > 0).then(|| b.finish())
        })
    }

    /// The `genealogy` table: every edge, level by level (at most
    /// `batch_rows + MAX_FAN_IN` rows a batch).
    pub fn edges(self: Arc<Self>, batch_rows: usize) -> impl Iterator<Item = RecordBatch> {
        let top = self.plan.levels;
        let mut cursor = Cursor::new(1, if self.has_graph() { top } else { 0 }, batch_rows);
        let mut inputs = Vec::new();
        std::iter::from_fn(move || {
            let mut b = EdgeBuilder::default();
            while b.rows < cursor.batch_rows {
                let Some((level, i)) = cursor.next(&self.plan.sizes) else {
                    break;
                };
                self.inputs(level, i, &mut inputs);
                b.push(&self, level, i, &inputs);
            }
            (b.rows > 0).then(|| b.finish())
        })
    }
}

fn rework(seed: u64, run: u64) -> bool {
    unit(key(seed, &[62, run])) < 0.1
}

/// Walks (level, index) over levels `from..=to` in order.
struct Cursor {
    level: u64,
    index: u64,
    to: u64,
    batch_rows: usize,
}

impl Cursor {
    fn new(from: u64, to: u64, batch_rows: usize) -> Self {
        Cursor {
            level: from,
            index: 0,
            to,
            batch_rows: batch_rows.max(1),
        }
    }

    fn next(&mut self, sizes: &[u64]) -> Option<(u64, u64)> {
        while self.level <= self.to && self.index >= sizes[self.level as usize] {
            self.level += 1;
            self.index = 0;
        }
        (self.level <= self.to).then(|| {
            self.index += 1;
            (self.level, self.index - 1)
        })
    }
}

fn plan(plant: &Plant) -> Result<GenealogyPlan, GenerateError> {
    let def = &plant.def;
    let levels = def.genealogy_levels as u64;
    let runs = plant.runs.len() as u64;
    let seed = plant.seed;
    let mut sizes = vec![0u64; levels as usize + 1];
    sizes[levels as usize] = runs;
    if def.edges == 0 {
        return Ok(GenealogyPlan {
            levels,
            sizes,
            last_fan_in: 0,
            edges: 0,
        });
    }
    // The finished lots' inputs come first: they are fixed by the schedule
    // (at most 5 each, plus rework).
    let run_edges: u64 = (0..runs)
        .map(|r| {
            let f = 1 + fan_in(key(seed, &[60, levels, r]));
            f + u64::from(rework(seed, r) && plant.runs_before(r as usize))
        })
        .sum();
    // Room for every intermediate level and for at least five lots (the most
    // inputs a finished lot takes) in the last one.
    let floor = run_edges + 4 * (levels - 2) + 20;
    if def.edges < floor {
        return Err(GenerateError::Definition {
            source_name: def.name.clone(),
            message: format!(
                "edges = {} is too few for {runs} production runs and {levels} levels: use 0 or at least {floor}",
                def.edges
            ),
        });
    }
    let target = def.edges - run_edges;
    let sum = |level: u64, n: u64, below: u64| -> u64 {
        (0..n)
            .map(|i| fan_in(key(seed, &[60, level, i])).min(below))
            .sum()
    };
    let mut n = ((target as f64 / ((levels - 1) as f64 * 1.88)) as u64).max(1);
    let lower = loop {
        let lower: u64 = (1..levels - 1).map(|l| sum(l, n, n)).sum();
        if lower + 20 <= target || n == 1 {
            break lower;
        }
        n = (n * 9 / 10).max(1);
    };
    // The last intermediate level takes what is left, lot by lot.
    let mut left = target - lower;
    let mut count = 0;
    let mut last = 0;
    while left > 0 {
        let f = fan_in(key(seed, &[60, levels - 1, count])).min(n);
        last = f.min(left);
        left -= last;
        count += 1;
    }
    sizes[..levels as usize - 1].fill(n);
    sizes[levels as usize - 1] = count;
    Ok(GenealogyPlan {
        levels,
        sizes,
        last_fan_in: last,
        edges: def.edges,
    })
}

#[derive(Default)]
struct LotBuilder {
    id: StringBuilder,
    material: StringBuilder,
    quantity: Float64Builder,
    uom: StringBuilder,
    status: StringBuilder,
    work_order: StringBuilder,
    created_at: Option<TimestampNanosecondBuilder>,
    rows: usize,
}

impl LotBuilder {
    fn push(&mut self, g: &Genealogy, level: u64, i: u64) {
        let top = g.plan.levels;
        self.id.append_value(g.lot_name(level, i));
        self.quantity.append_value(g.quantity(level, i));
        if level == top {
            let run = &g.plant.runs[i as usize];
            self.material.append_value(MATERIALS[run.material as usize]);
            self.uom.append_value("pcs");
            let open = g.plant.run_open(run);
            self.status
                .append_value(if open { "in_process" } else { "released" });
            self.work_order.append_value(work_order_id(i as usize));
        } else {
            let name = match level {
                0 => RAW[(key(g.seed(), &[63, i]) % RAW.len() as u64) as usize],
                l => STAGES[(l as usize - 1) % STAGES.len()],
            };
            self.material.append_value(name);
            self.uom.append_value("kg");
            self.status.append_value("consumed");
            self.work_order.append_null();
        }
        self.created_at
            .get_or_insert_with(|| timestamps(1024))
            .append_value(g.made_at(level, i));
        self.rows += 1;
    }

    fn finish(mut self) -> RecordBatch {
        let created = self
            .created_at
            .get_or_insert_with(|| timestamps(0))
            .finish();
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("id", Arc::new(self.id.finish())),
            ("material", Arc::new(self.material.finish())),
            ("quantity", Arc::new(self.quantity.finish())),
            ("uom", Arc::new(self.uom.finish())),
            ("status", Arc::new(self.status.finish())),
            ("work_order", Arc::new(self.work_order.finish())),
            ("created_at", Arc::new(created)),
        ];
        assemble(&schema("lots"), columns, self.rows)
    }
}

#[derive(Default)]
struct EdgeBuilder {
    input: StringBuilder,
    output: StringBuilder,
    quantity: Float64Builder,
    uom: StringBuilder,
    ts: Option<TimestampNanosecondBuilder>,
    work_order: StringBuilder,
    equipment: StringBuilder,
    rows: usize,
}

impl EdgeBuilder {
    fn push(&mut self, g: &Genealogy, level: u64, i: u64, inputs: &[(u64, u64)]) {
        let top = g.plan.levels;
        let output = g.lot_name(level, i);
        let at = g.made_at(level, i);
        let (work_order, equipment) = if level == top {
            let run = &g.plant.runs[i as usize];
            let per_line = g.plant.def.units_per_line as usize;
            let mixer = &g.plant.units[run.line as usize * per_line].id;
            (Some(work_order_id(i as usize)), Some(mixer.as_str()))
        } else {
            (None, None)
        };
        let share = g.quantity(level.min(top - 1), i) / inputs.len() as f64;
        let ts = self.ts.get_or_insert_with(|| timestamps(1024));
        for (k, &(l, j)) in inputs.iter().enumerate() {
            self.input.append_value(g.lot_name(l, j));
            self.output.append_value(&output);
            let h = key(g.seed(), &[64, level, i, k as u64]);
            let rework = l == top;
            let q = if rework {
                share * 0.05
            } else {
                share * (0.9 + 0.2 * unit(h))
            };
            self.quantity.append_value((q * 10.0).round() / 10.0);
            self.uom.append_value(if rework { "pcs" } else { "kg" });
            ts.append_value(at);
            self.work_order.append_option(work_order.as_deref());
            self.equipment.append_option(equipment);
            self.rows += 1;
        }
    }

    fn finish(mut self) -> RecordBatch {
        let ts = self.ts.get_or_insert_with(|| timestamps(0)).finish();
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("input_lot", Arc::new(self.input.finish())),
            ("output_lot", Arc::new(self.output.finish())),
            ("quantity", Arc::new(self.quantity.finish())),
            ("uom", Arc::new(self.uom.finish())),
            ("ts", Arc::new(ts)),
            ("work_order", Arc::new(self.work_order.finish())),
            ("equipment", Arc::new(self.equipment.finish())),
        ];
        assemble(&schema("genealogy"), columns, self.rows)
    }
}
