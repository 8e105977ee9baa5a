//! Context stamping: a sample written without `work_order` and `lot` but
//! with an equipment gets the work order and lot of the `production_runs`
//! row active on that equipment at its `ts` (ARCHITECTURE.md, "Context
//! stamping").
//!
//! The rules, decided here once for ingest, flush and `restamp`:
//! - A row is stamped only when both `work_order` and `lot` are null. A row
//!   that names either was given its context by the writer and is never
//!   changed (filling the other half could pair a given order with the lot
//!   of a different run).
//! - Its equipment is the row's `equipment`, else `tags.equipment` of its
//!   tag. Every row without equipment whose tag has one gets that equipment
//!   filled in, run or not and context given or not: a quality engineer
//!   filtering by equipment expects the sample there. An explicit equipment
//!   is never replaced; a later change of `tags.equipment` does not move
//!   samples already written.
//! - A run is active at `ts` when `start_ts <= ts < end_ts` (`end_ts` null:
//!   still running). Where runs on one equipment overlap, the one with the
//!   latest `start_ts` wins (a new run recorded without closing the last one
//!   supersedes it).
//!
//! [`StampIndex`] is kept like the last-value cache and the genealogy index:
//! the write path merges every accepted `production_runs` and `tags` batch
//! after its WAL commit, and on start it is rebuilt from the live segments
//! (oldest first) and the replayed WAL. Merging follows the tables' key
//! (latest write of a key wins), so the rebuilt index equals the one before a
//! crash.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::TimestampNanosecondType;

use crate::model::{self, TableDef};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The end of a run that is still going on.
const OPEN: i64 = i64::MAX;

#[derive(Debug, thiserror::Error)]
pub enum StampError {
    #[error("stamping: {0}")]
    Column(#[from] model::columns::ColumnError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// The context a run gives the samples recorded during it.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub work_order: Option<Arc<str>>,
    pub lot: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
struct Run {
    start: i64,
    /// Exclusive; [`OPEN`] while running.
    end: i64,
    context: Context,
}

/// The runs of one equipment, sorted by start, with the running maximum of
/// their ends so a lookup stops as soon as no earlier run can reach `ts`.
#[derive(Debug, Default)]
struct Runs {
    runs: Vec<Run>,
    /// `max_end[i]` = max end of `runs[..=i]`.
    max_end: Vec<i64>,
}

impl Runs {
    /// Inserts `run`, replacing the run with the same start (the key).
    fn upsert(&mut self, run: Run) {
        let at = self.runs.partition_point(|r| r.start < run.start);
        if self.runs.get(at).is_some_and(|r| r.start == run.start) {
            self.runs[at] = run;
        } else {
            self.runs.insert(at, run);
            self.max_end.insert(at, 0);
        }
        self.recompute_max_end(at);
        debug_assert!(self.runs.windows(2).all(|w| w[0].start < w[1].start));
    }

    /// Runs are few per equipment and written rarely: recompute the suffix
    /// of `max_end` from `at` on.
    fn recompute_max_end(&mut self, at: usize) {
        let mut max = if at == 0 {
            i64::MIN
        } else {
            self.max_end[at - 1]
        };
        for i in at..self.runs.len() {
            max = max.max(self.runs[i].end);
            self.max_end[i] = max;
        }
    }

    /// Removes the run starting at `start` (a deleted key), if any.
    fn remove(&mut self, start: i64) {
        let at = self.runs.partition_point(|r| r.start < start);
        if self.runs.get(at).is_none_or(|r| r.start != start) {
            return;
        }
        self.runs.remove(at);
        self.max_end.remove(at);
        self.recompute_max_end(at);
    }

    /// The run active at `ts`; of overlapping ones, the latest start.
    fn active_at(&self, ts: i64) -> Option<&Run> {
        let candidates = self.runs.partition_point(|r| r.start <= ts);
        for i in (0..candidates).rev() {
            if self.max_end[i] <= ts {
                return None;
            }
            if self.runs[i].end > ts {
                return Some(&self.runs[i]);
            }
        }
        None
    }
}

/// What stamping a batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StampCounts {
    /// Rows that got a work order and lot from a run.
    pub stamped: u64,
    /// Rows that got their equipment from `tags.equipment`.
    pub equipment_filled: u64,
}

impl StampCounts {
    pub fn add(&mut self, other: StampCounts) {
        self.stamped += other.stamped;
        self.equipment_filled += other.equipment_filled;
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Runs per equipment and equipment per tag, as the tables are now.
#[derive(Debug, Default)]
pub struct StampIndex {
    runs: FastMap<Arc<str>, Runs>,
    tag_equipment: FastMap<Arc<str>, Arc<str>>,
}

fn strings<'a>(
    batch: &'a RecordBatch,
    table: &'static str,
    name: &'static str,
) -> Result<&'a StringArray, StampError> {
    Ok(model::columns::strings(batch, table, name)?)
}

fn times<'a>(
    batch: &'a RecordBatch,
    table: &'static str,
    name: &'static str,
) -> Result<&'a TimestampNanosecondArray, StampError> {
    Ok(model::columns::primitives::<TimestampNanosecondType>(
        batch, table, name,
    )?)
}

/// Whether row `i` of `batch` is a tombstone (false when it has no `op`).
fn tombstones(batch: &RecordBatch) -> impl Fn(usize) -> bool + '_ {
    let has_op = batch.column_by_name("op").is_some();
    move |row| has_op && model::is_tombstone(batch, row)
}

fn text(array: &StringArray, row: usize) -> Option<&str> {
    array.is_valid(row).then(|| array.value(row))
}

/// The columns the index reads of `def` (for reading segments), if it reads any.
pub fn columns(def: &TableDef) -> Option<&'static [&'static str]> {
    if def.name == model::production_runs().name {
        Some(&["equipment", "start_ts", "end_ts", "work_order", "lot", "op"])
    } else if def.name == model::tags().name {
        Some(&["tag", "equipment", "op"])
    } else {
        None
    }
}

impl StampIndex {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.tag_equipment.is_empty()
    }

    pub fn run_count(&self) -> usize {
        self.runs.values().map(|r| r.runs.len()).sum()
    }

    /// Takes the rows of a `production_runs` or `tags` batch (full schema or
    /// just [`columns`]) in write order; other tables are ignored. A
    /// tombstone (`op` = `delete`, see `model::versioned`) removes its key;
    /// a batch without `op` holds no tombstones.
    pub fn merge(&mut self, def: &TableDef, batch: &RecordBatch) -> Result<(), StampError> {
        if def.name == model::production_runs().name {
            self.merge_runs(def.name, batch)
        } else if def.name == model::tags().name {
            self.merge_tags(def.name, batch)
        } else {
            Ok(())
        }
    }

    fn merge_runs(&mut self, table: &'static str, batch: &RecordBatch) -> Result<(), StampError> {
        let deleted = tombstones(batch);
        let equipment = strings(batch, table, "equipment")?;
        let (work_orders, lots) = (
            strings(batch, table, "work_order")?,
            strings(batch, table, "lot")?,
        );
        let (starts, ends) = (
            times(batch, table, "start_ts")?,
            times(batch, table, "end_ts")?,
        );
        for row in 0..batch.num_rows() {
            let Some(eq) = text(equipment, row) else {
                continue;
            };
            if deleted(row) {
                if let Some(runs) = self.runs.get_mut(eq) {
                    runs.remove(starts.value(row));
                    if runs.runs.is_empty() {
                        self.runs.remove(eq);
                    }
                }
                continue;
            }
            let run = Run {
                start: starts.value(row),
                end: if ends.is_valid(row) {
                    ends.value(row)
                } else {
                    OPEN
                },
                context: Context {
                    work_order: text(work_orders, row).map(Arc::from),
                    lot: text(lots, row).map(Arc::from),
                },
            };
            match self.runs.get_mut(eq) {
                Some(runs) => runs.upsert(run),
                None => {
                    let mut runs = Runs::default();
                    runs.upsert(run);
                    self.runs.insert(Arc::from(eq), runs);
                }
            }
        }
        Ok(())
    }

    fn merge_tags(&mut self, table: &'static str, batch: &RecordBatch) -> Result<(), StampError> {
        let deleted = tombstones(batch);
        let (tags, equipment) = (
            strings(batch, table, "tag")?,
            strings(batch, table, "equipment")?,
        );
        for row in 0..batch.num_rows() {
            let Some(tag) = text(tags, row) else { continue };
            // The latest row of a tag wins, also when it clears the equipment;
            // a deleted tag has none.
            match text(equipment, row).filter(|_| !deleted(row)) {
                Some(eq) => {
                    self.tag_equipment.insert(Arc::from(tag), Arc::from(eq));
                }
                None => {
                    self.tag_equipment.remove(tag);
                }
            }
        }
        Ok(())
    }

    /// The context of the run active on `equipment` at `ts`, if any.
    pub fn context_at(&self, equipment: &str, ts: i64) -> Option<&Context> {
        self.runs.get(equipment)?.active_at(ts).map(|r| &r.context)
    }

    /// The equipment `tags` gives `tag`, if any.
    pub fn tag_equipment(&self, tag: &str) -> Option<&str> {
        self.tag_equipment.get(tag).map(|e| &**e)
    }

    /// Stamps a `samples` batch (the table's schema). Returns `None` when no
    /// row changes (the common case of fully given context costs one pass
    /// over the null bitmaps); otherwise the batch with the stamped columns
    /// replaced and what changed. Key columns and row order never change.
    pub fn stamp(
        &self,
        batch: &RecordBatch,
    ) -> Result<Option<(RecordBatch, StampCounts)>, StampError> {
        let table = model::samples().name;
        let work_orders = strings(batch, table, "work_order")?;
        let lots = strings(batch, table, "lot")?;
        let equipment = strings(batch, table, "equipment")?;
        let no_context_missing = work_orders.null_count() == 0 || lots.null_count() == 0;
        if self.is_empty() || (no_context_missing && equipment.null_count() == 0) {
            return Ok(None);
        }
        let tags = strings(batch, table, "tag")?;
        let ts = times(batch, table, "ts")?;

        let mut counts = StampCounts::default();
        // Per row: (equipment filled from tags, context from a run).
        let mut filled: Vec<Option<&str>> = Vec::new();
        let mut contexts: Vec<Option<&Context>> = Vec::new();
        // Consecutive rows mostly share a tag and an equipment: remember the
        // last lookups instead of hashing every row.
        let mut last_tag: Option<(&str, Option<&str>)> = None;
        let mut last_runs: Option<(&str, Option<&Runs>)> = None;
        for row in 0..batch.num_rows() {
            let needs_context = work_orders.is_null(row) && lots.is_null(row);
            if !needs_context && equipment.is_valid(row) {
                continue;
            }
            let eq = match text(equipment, row) {
                Some(eq) => eq,
                None => {
                    let tag = tags.value(row);
                    let eq = match last_tag {
                        Some((t, eq)) if t == tag => eq,
                        _ => {
                            let eq = self.tag_equipment(tag);
                            last_tag = Some((tag, eq));
                            eq
                        }
                    };
                    let Some(eq) = eq else { continue };
                    if filled.is_empty() {
                        filled.resize(batch.num_rows(), None);
                    }
                    filled[row] = Some(eq);
                    counts.equipment_filled += 1;
                    eq
                }
            };
            if !needs_context {
                continue;
            }
            let runs = match last_runs {
                Some((e, runs)) if e == eq => runs,
                _ => {
                    let runs = self.runs.get(eq);
                    last_runs = Some((eq, runs));
                    runs
                }
            };
            if let Some(run) = runs.and_then(|r| r.active_at(ts.value(row))) {
                if contexts.is_empty() {
                    contexts.resize(batch.num_rows(), None);
                }
                contexts[row] = Some(&run.context);
                counts.stamped += 1;
            }
        }
        if counts.is_empty() {
            return Ok(None);
        }
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        let schema = batch.schema();
        let mut replace = |name: &str, array: StringArray| {
            let i = schema.index_of(name).expect("checked above");
            columns[i] = Arc::new(array);
        };
        if counts.equipment_filled > 0 {
            replace(
                "equipment",
                (0..batch.num_rows())
                    .map(|r| filled[r].or_else(|| text(equipment, r)))
                    .collect(),
            );
        }
        if counts.stamped > 0 {
            let pick = |given: &StringArray, get: fn(&Context) -> Option<&str>| -> StringArray {
                (0..batch.num_rows())
                    .map(|r| match contexts[r] {
                        Some(c) => get(c),
                        None => text(given, r),
                    })
                    .collect()
            };
            replace("work_order", pick(work_orders, |c| c.work_order.as_deref()));
            replace("lot", pick(lots, |c| c.lot.as_deref()));
        }
        let stamped = RecordBatch::try_new(schema.clone(), columns)?;
        assert_eq!(stamped.num_rows(), batch.num_rows(), "stamping keeps rows");
        Ok(Some((stamped, counts)))
    }

    /// [`Self::stamp`] over several batches, keeping the unchanged ones.
    pub fn stamp_all(
        &self,
        batches: Vec<RecordBatch>,
    ) -> Result<(Vec<RecordBatch>, StampCounts), StampError> {
        let mut counts = StampCounts::default();
        let mut out = Vec::with_capacity(batches.len());
        for batch in batches {
            match self.stamp(&batch)? {
                Some((stamped, c)) => {
                    counts.add(c);
                    out.push(stamped);
                }
                None => out.push(batch),
            }
        }
        Ok((out, counts))
    }
}

#[cfg(test)]
mod tests;
