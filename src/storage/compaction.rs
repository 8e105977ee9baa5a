//! Compaction planning: which segments of a table get merged into which
//! new ones, and how the manifest's segment list changes when they do.
//!
//! The policy works per date partition, on the partition's segments in
//! manifest order. A segment is *small* when it holds fewer than half of
//! `target_rows`. Every run of at least `min_segments` consecutive small
//! segments is merged, at most `max_inputs` at a time, into
//! `ceil(rows / target_rows)` outputs of equal size (so each output holds
//! more than half of `target_rows` unless the whole run is smaller, and is
//! not small again). Only consecutive segments are merged and the outputs
//! take the place of the first input, so the relative order of a partition's
//! rows with equal keys is kept: tables that read latest-wins by segment
//! order stay correct, and a time range is covered by few outputs because
//! flushes append in time order.

use std::collections::{BTreeMap, HashMap};

use super::SegmentMeta;
use super::segment::partition_dir;

/// When and how far to merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// Rows an output segment aims at; segments below half of it are small.
    pub target_rows: u64,
    /// Consecutive small segments a partition needs before they are merged.
    pub min_segments: usize,
    /// Most segments merged into one set of outputs (bounds open files and
    /// memory: one batch per input).
    pub max_inputs: usize,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self {
            target_rows: 16_000_000,
            min_segments: 8,
            max_inputs: 32,
        }
    }
}

/// Segments to merge into `outputs` new ones (one partition).
#[derive(Debug, Clone, PartialEq)]
pub struct MergeGroup {
    /// Consecutive segments of one partition, in manifest order.
    pub inputs: Vec<SegmentMeta>,
    pub outputs: usize,
}

impl MergeGroup {
    pub fn rows(&self) -> u64 {
        self.inputs.iter().map(|m| m.rows).sum()
    }

    pub fn partition(&self) -> &str {
        partition_dir(&self.inputs[0])
    }
}

/// The merges `policy` asks for on `segments` (one table's live segments,
/// in manifest order). Empty when nothing needs compaction.
pub fn plan(segments: &[SegmentMeta], policy: &CompactionPolicy) -> Vec<MergeGroup> {
    let small = |m: &SegmentMeta| m.rows < policy.target_rows / 2;
    let mut partitions: BTreeMap<&str, Vec<&SegmentMeta>> = BTreeMap::new();
    for meta in segments {
        partitions
            .entry(partition_dir(meta))
            .or_default()
            .push(meta);
    }
    let min_segments = policy.min_segments.max(2);
    let mut groups = Vec::new();
    for metas in partitions.values() {
        for run in metas.split(|m| !small(m)) {
            if run.len() < min_segments {
                continue;
            }
            for chunk in run.chunks(policy.max_inputs.max(2)) {
                if chunk.len() < min_segments {
                    continue;
                }
                let inputs: Vec<SegmentMeta> = chunk.iter().map(|m| (*m).clone()).collect();
                let rows: u64 = inputs.iter().map(|m| m.rows).sum();
                let outputs = rows.div_ceil(policy.target_rows.max(1)).max(1) as usize;
                groups.push(MergeGroup { inputs, outputs });
            }
        }
    }
    groups
}

/// Why a merge cannot be applied to the current segment list.
#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    #[error(
        "segment {file} merged by compaction is no longer live (the segment list changed under it); nothing was replaced"
    )]
    InputGone { file: String },
}

/// `live` with each merge's inputs replaced by its outputs, placed where
/// its first input was. `live` may have gained segments since the plan
/// (flushes append); every input must still be in it.
pub fn apply(
    live: &[SegmentMeta],
    merges: &[(Vec<SegmentMeta>, Vec<SegmentMeta>)],
) -> Result<Vec<SegmentMeta>, CompactionError> {
    // Per live segment id: the outputs it becomes (first input) or nothing.
    let mut replaced: HashMap<u64, Option<&[SegmentMeta]>> = HashMap::new();
    for (inputs, outputs) in merges {
        for (i, input) in inputs.iter().enumerate() {
            if !live.iter().any(|m| m.id == input.id) {
                return Err(CompactionError::InputGone {
                    file: input.file.clone(),
                });
            }
            replaced.insert(input.id, (i == 0).then_some(outputs.as_slice()));
        }
    }
    let mut out = Vec::with_capacity(live.len());
    for meta in live {
        match replaced.get(&meta.id) {
            None => out.push(meta.clone()),
            Some(Some(outputs)) => out.extend(outputs.iter().cloned()),
            Some(None) => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(id: u64, date: &str, rows: u64) -> SegmentMeta {
        SegmentMeta {
            id,
            file: format!("tables/samples/date={date}/{id:016}.parquet"),
            rows,
            bytes: rows * 10,
            min_time: None,
            max_time: None,
            min_key: None,
            max_key: None,
            sha256: None,
        }
    }

    fn ids(group: &MergeGroup) -> Vec<u64> {
        group.inputs.iter().map(|m| m.id).collect()
    }

    fn policy() -> CompactionPolicy {
        CompactionPolicy {
            target_rows: 100,
            min_segments: 3,
            max_inputs: 4,
        }
    }

    #[test]
    fn merges_runs_of_small_segments_per_partition() {
        let a = "2026-01-01";
        let b = "2026-01-02";
        let segments = vec![
            seg(1, a, 10),
            seg(2, b, 10),
            seg(3, a, 10),
            seg(4, a, 10),
            seg(5, b, 10),
            seg(6, a, 60), // large (>= 50): splits the run of day a
            seg(7, a, 10),
            seg(8, a, 10),
        ];
        let groups = plan(&segments, &policy());
        // Day a: the run 1,3,4 (3 small) merges; 7,8 is too short.
        // Day b: only two small segments.
        assert_eq!(groups.len(), 1);
        assert_eq!(ids(&groups[0]), vec![1, 3, 4]);
        assert_eq!(groups[0].outputs, 1);
        assert_eq!(groups[0].partition(), format!("tables/samples/date={a}"));
    }

    #[test]
    fn long_runs_split_by_max_inputs_and_outputs_by_target() {
        let d = "2026-01-01";
        let segments: Vec<_> = (1..=10).map(|id| seg(id, d, 45)).collect();
        let groups = plan(&segments, &policy());
        // 10 small: chunks of 4, 4 and 2; the last is below min_segments.
        assert_eq!(
            groups.iter().map(ids).collect::<Vec<_>>(),
            vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]]
        );
        // 180 rows at a target of 100: two outputs of 90 (not small again).
        assert!(groups.iter().all(|g| g.outputs == 2 && g.rows() == 180));
    }

    #[test]
    fn nothing_to_do_below_the_threshold() {
        let segments: Vec<_> = (1..=2).map(|id| seg(id, "2026-01-01", 1)).collect();
        assert!(plan(&segments, &policy()).is_empty());
        let large: Vec<_> = (1..=9).map(|id| seg(id, "2026-01-01", 50)).collect();
        assert!(plan(&large, &policy()).is_empty());
    }

    #[test]
    fn apply_puts_outputs_at_the_first_input_and_keeps_later_segments() {
        let d = "2026-01-01";
        let live = vec![seg(1, d, 1), seg(2, d, 1), seg(3, d, 1), seg(4, d, 1)];
        let merges = vec![(
            vec![seg(2, d, 1), seg(3, d, 1)],
            vec![seg(10, d, 1), seg(11, d, 1)],
        )];
        // Segment 4 stands for one a flush appended after the plan.
        let after = apply(&live, &merges).unwrap();
        assert_eq!(
            after.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![1, 10, 11, 4]
        );
        let gone = apply(&live[..2], &merges).unwrap_err();
        assert!(gone.to_string().contains("0000000000000003"), "{gone}");
    }
}
