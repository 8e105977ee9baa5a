//! Compaction of every table: merges runs of small segments (one per flush)
//! into few large ones per date partition, so a query or a start opens few
//! files, and stamps the `samples` rows it rewrites, so stamping converges
//! as segments are merged.
//!
//! Which segments merge is [`crate::storage::compaction`]'s policy; the
//! streaming merge is [`crate::storage::merge`]. This module runs them
//! against the engine: the plan is taken and its segment ids reserved under
//! the flush lock, the merge runs without it (flushes go on), and all
//! replacements of one compaction go live in one manifest store under the
//! flush lock again. A crash before that store leaves the old segments live
//! (the new files are orphans, removed on start); after it, the new ones
//! (the old files are the orphans). The replaced files are deleted when the
//! last query that planned with them is done. Tables that resolve rows by
//! their order (versioned tables: the last version wins; `audit_log`: the
//! chain head is the last row) stay correct because the policy merges only
//! consecutive segments and the merge keeps equal keys in manifest order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::info;

use super::{Engine, IngestError};
use crate::model::{self, TableDef};
use crate::storage::compaction::{self, CompactionPolicy, MergeGroup};
use crate::storage::merge::merge_segments;
use crate::storage::{Manifest, SegmentMeta};

/// Settings of compaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionConfig {
    /// Compact in the background when a partition crosses the policy's
    /// threshold (`--no-compaction` turns it off; `lotline compact` still works).
    pub background: bool,
    pub policy: CompactionPolicy,
    /// How often the background task checks the policy.
    pub interval: Duration,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            background: true,
            policy: CompactionPolicy::default(),
            interval: Duration::from_secs(30),
        }
    }
}

/// What one compaction did, over all tables.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactReport {
    /// Date partitions (of any table) that had segments merged.
    pub partitions: usize,
    /// Live segments of all tables before and after.
    pub segments_before: usize,
    pub segments_after: usize,
    pub segments_merged: usize,
    pub segments_written: usize,
    /// Rows rewritten (every row of the merged segments, exactly once).
    pub rows: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Rewritten `samples` rows that got their work order and lot (or equipment) now.
    pub rows_stamped: u64,
    pub seconds: f64,
    /// The same counts per table that had segments merged.
    pub tables: BTreeMap<&'static str, TableCompaction>,
}

/// What one compaction did to one table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableCompaction {
    pub segments_before: usize,
    pub segments_after: usize,
    pub segments_merged: usize,
    pub segments_written: usize,
    pub rows: u64,
}

/// The merges of one compaction: per merge its table, its inputs and its
/// outputs.
type Merges = Vec<(&'static TableDef, Vec<SegmentMeta>, Vec<SegmentMeta>)>;

/// What the policy selects in `manifest`: the merge groups of each table
/// that has any.
fn plan(
    manifest: &Manifest,
    policy: &CompactionPolicy,
) -> Vec<(&'static TableDef, Vec<MergeGroup>)> {
    model::tables()
        .into_iter()
        .map(|def| (def, compaction::plan(manifest.segments(def.name), policy)))
        .filter(|(_, groups)| !groups.is_empty())
        .collect()
}

/// Live segments of all tables.
fn live_segments(manifest: &Manifest) -> usize {
    manifest.tables.values().map(Vec::len).sum()
}

/// Totals since start, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    runs: AtomicU64,
    segments_merged: AtomicU64,
    segments_written: AtomicU64,
    rows: AtomicU64,
    bytes_written: AtomicU64,
    failures: AtomicU64,
    /// Set on shutdown: a running merge gives up at its next batch.
    stop: Arc<AtomicBool>,
}

/// Compaction totals since the server started.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CompactionTotals {
    /// Compactions that merged anything.
    pub runs: u64,
    pub segments_merged: u64,
    pub segments_written: u64,
    pub rows: u64,
    pub bytes_written: u64,
    pub failures: u64,
}

impl Engine {
    /// Whether the live segments of any table call for a compaction.
    pub fn needs_compaction(&self) -> bool {
        let state = self.state.read().expect("state lock");
        !plan(&state.manifest, &self.config.compaction.policy).is_empty()
    }

    /// Merges the small segments of every table the policy selects. When this
    /// returns `Ok` the merged segments are live and durable (the manifest
    /// is stored) and hold every row of the replaced ones exactly once; the
    /// replaced files are gone, or go when the last query that planned with
    /// them finishes. On error nothing changed. Writes, flushes and queries
    /// go on meanwhile; a restamp waits.
    pub async fn compact(&self) -> Result<CompactReport, IngestError> {
        let started = Instant::now();
        let result = self.compact_inner(started).await;
        let totals = &self.compaction_totals;
        match &result {
            Ok(report) if report.segments_merged > 0 => {
                totals.runs.fetch_add(1, Ordering::Relaxed);
                totals
                    .segments_merged
                    .fetch_add(report.segments_merged as u64, Ordering::Relaxed);
                totals
                    .segments_written
                    .fetch_add(report.segments_written as u64, Ordering::Relaxed);
                totals.rows.fetch_add(report.rows, Ordering::Relaxed);
                totals
                    .bytes_written
                    .fetch_add(report.bytes_after, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(_) => {
                totals.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    async fn compact_inner(&self, started: Instant) -> Result<CompactReport, IngestError> {
        let _rewrite = self.rewrite_lock.lock().await;
        if self.compaction_totals.stop.load(Ordering::Relaxed) {
            return Err(IngestError::Internal(
                "compaction refused: the server is shutting down".into(),
            ));
        }
        let mut report = CompactReport::default();
        // Plan and reserve ids under the flush lock: a flush takes its ids
        // from the manifest after this, so none collide.
        let (plans, first_id, before) = {
            let _flush = self.flush_lock.lock().await;
            let mut state = self.state.write().expect("state lock");
            let plans = plan(&state.manifest, &self.config.compaction.policy);
            let before = state.manifest.clone();
            let first_id = state.manifest.next_segment_id;
            let outputs: u64 = plans
                .iter()
                .flat_map(|(_, groups)| groups)
                .map(|g| g.outputs as u64)
                .sum();
            state.manifest.next_segment_id += outputs;
            (plans, first_id, before)
        };
        report.segments_before = live_segments(&before);
        if plans.is_empty() {
            report.segments_after = report.segments_before;
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        let data_dir = self.config.data_dir.clone();
        let disk = self.config.disk.clone();
        let options = self.config.segment.clone();
        let stamp_index = self.config.stamping.then(|| self.stamp_index.clone());
        let stop = self.compaction_totals.stop.clone();
        let (merges, stamped) = tokio::task::spawn_blocking(move || {
            let mut written: Vec<SegmentMeta> = Vec::new();
            let mut stamped = 0u64;
            let mut merges: Merges = Vec::new();
            let mut next_id = first_id;
            let result = (|| -> Result<(), IngestError> {
                for (def, groups) in &plans {
                    // Only samples are stamped (as a flush does).
                    let stamp_index = stamp_index
                        .as_ref()
                        .filter(|_| def.name == model::samples().name);
                    for group in groups {
                        let ids: Vec<u64> = (next_id..next_id + group.outputs as u64).collect();
                        next_id += group.outputs as u64;
                        let outputs = merge_segments(
                            &data_dir,
                            def,
                            &group.inputs,
                            &ids,
                            &options,
                            &mut written,
                            |batch| match stamp_index {
                                _ if stop.load(Ordering::Relaxed) => Err(IngestError::Internal(
                                    "compaction stopped: the server is shutting down".into(),
                                )),
                                Some(index) => {
                                    let index = index.read().expect("stamp index lock");
                                    Ok::<_, IngestError>(match index.stamp(&batch)? {
                                        Some((batch, counts)) => {
                                            stamped += counts.stamped + counts.equipment_filled;
                                            batch
                                        }
                                        None => batch,
                                    })
                                }
                                None => Ok(batch),
                            },
                        )?;
                        merges.push((*def, group.inputs.clone(), outputs));
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                crate::storage::remove_uncommitted(&*disk, &data_dir, &written);
                return Err(e);
            }
            Ok((merges, stamped))
        })
        .await
        .map_err(|e| IngestError::Internal(e.to_string()))??;
        let after = match self.switch(&merges).await {
            Ok(after) => after,
            Err(e) => {
                let outputs: Vec<SegmentMeta> =
                    merges.into_iter().flat_map(|(_, _, o)| o).collect();
                crate::storage::remove_uncommitted(
                    &*self.config.disk,
                    &self.config.data_dir,
                    &outputs,
                );
                return Err(e);
            }
        };
        // The merge's decoded pages and row groups are free now: give them
        // back, as a flush does (see `super::memory`).
        let _ = tokio::task::spawn_blocking(super::memory::release_after_flush).await;
        let partitions: BTreeSet<&str> = merges
            .iter()
            .map(|(_, inputs, _)| crate::storage::segment::partition_dir(&inputs[0]))
            .collect();
        report.partitions = partitions.len();
        for (def, inputs, outputs) in &merges {
            let rows = inputs.iter().map(|m| m.rows).sum::<u64>();
            report.segments_merged += inputs.len();
            report.segments_written += outputs.len();
            report.rows += rows;
            report.bytes_before += inputs.iter().map(|m| m.bytes).sum::<u64>();
            report.bytes_after += outputs.iter().map(|m| m.bytes).sum::<u64>();
            let table = report
                .tables
                .entry(def.name)
                .or_insert_with(|| TableCompaction {
                    segments_before: before.segments(def.name).len(),
                    segments_after: after.segments(def.name).len(),
                    ..Default::default()
                });
            table.segments_merged += inputs.len();
            table.segments_written += outputs.len();
            table.rows += rows;
        }
        report.rows_stamped = stamped;
        report.segments_after = live_segments(&after);
        report.seconds = started.elapsed().as_secs_f64();
        info!(
            "compaction: {} segment(s) of {} table(s) in {} partition(s) merged into {} ({} rows, {} -> {} bytes, {} stamped) in {:.1}s",
            report.segments_merged,
            report.tables.len(),
            report.partitions,
            report.segments_written,
            report.rows,
            report.bytes_before,
            report.bytes_after,
            report.rows_stamped,
            report.seconds
        );
        Ok(report)
    }

    /// Puts every merge live in one manifest store (under the flush lock,
    /// so no flush switches in between), retires the replaced files and
    /// records the change in the audit chain's segment lineage. Returns the
    /// manifest now live.
    async fn switch(&self, merges: &Merges) -> Result<Manifest, IngestError> {
        let _flush = self.flush_lock.lock().await;
        let mut manifest = self.manifest();
        let before = manifest.clone();
        let mut by_table: BTreeMap<&str, Vec<(Vec<SegmentMeta>, Vec<SegmentMeta>)>> =
            BTreeMap::new();
        for (def, inputs, outputs) in merges {
            by_table
                .entry(def.name)
                .or_default()
                .push((inputs.clone(), outputs.clone()));
        }
        for (table, merges) in by_table {
            let live = compaction::apply(manifest.segments(table), &merges)?;
            manifest.tables.insert(table.to_string(), live);
        }
        let (disk, data_dir) = (self.config.disk.clone(), self.config.data_dir.clone());
        let manifest = tokio::task::spawn_blocking(move || {
            manifest.store(&*disk, &data_dir).map(|()| manifest)
        })
        .await
        .map_err(|e| IngestError::Internal(e.to_string()))??;
        let retired = self
            .state
            .write()
            .expect("state lock")
            .set_manifest(manifest.clone(), &self.config.data_dir);
        drop(retired);
        self.record_segments(&before, &manifest, "compaction").await;
        Ok(manifest)
    }

    /// Compacts in the background whenever the policy finds work (checked
    /// every `compaction.interval`); never at the same time as a restamp,
    /// and switching only between flushes.
    pub fn spawn_compactor(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        self.spawn_periodic(
            self.config.compaction.interval,
            Engine::needs_compaction,
            |e| async move { e.compact().await },
            "background compaction failed (the old segments stay live)",
        )
    }

    /// Makes a running compaction give up (nothing of it goes live) and
    /// later ones refuse: called on shutdown, so stopping does not wait for
    /// a long merge.
    pub fn stop_compaction(&self) {
        self.compaction_totals.stop.store(true, Ordering::Relaxed);
    }

    /// Compaction totals since start.
    pub fn compaction_totals(&self) -> CompactionTotals {
        let t = &self.compaction_totals;
        CompactionTotals {
            runs: t.runs.load(Ordering::Relaxed),
            segments_merged: t.segments_merged.load(Ordering::Relaxed),
            segments_written: t.segments_written.load(Ordering::Relaxed),
            rows: t.rows.load(Ordering::Relaxed),
            bytes_written: t.bytes_written.load(Ordering::Relaxed),
            failures: t.failures.load(Ordering::Relaxed),
        }
    }
}
