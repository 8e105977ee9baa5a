//! `restamp`: stamps the samples that were written before their production
//! run (or their tag's equipment) was recorded, in every segment at once.
//! Compaction stamps the rows it merges as well (see [`super::compact`]),
//! so stamping also converges as segments are compacted.
//!
//! First a flush, which stamps the buffered samples as it writes them; then
//! every live `samples` segment whose Parquet statistics show rows that may
//! need context (null `work_order`/`lot`, or null `equipment`) is read,
//! stamped with the current [`StampIndex`](super::stamping::StampIndex) and,
//! if any row changed, written as a new segment. All replacements go live in
//! one manifest switch; the old files are removed after it, once no running
//! query reads them (see [`crate::storage::pins`]). A crash before
//! the switch leaves the old segments live (the new files are orphans,
//! removed on start); after it, the new ones (the old files are the
//! orphans). Never both, never half.

use serde::Serialize;
use tracing::info;

use super::{Engine, FlushReport, IngestError};
use crate::model;
use crate::storage::{SegmentMeta, segment};

/// What a restamp did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestampReport {
    /// The flush that ran first (its `rows_stamped`: buffered samples stamped).
    pub flush: FlushReport,
    pub segments_scanned: usize,
    /// Segments whose statistics showed rows that might need context.
    pub segments_read: usize,
    pub segments_rewritten: usize,
    /// Rows in segments that got a work order and lot.
    pub rows_restamped: u64,
    /// Rows in segments that got their equipment from `tags.equipment`.
    pub equipment_filled: u64,
}

/// Whether the statistics of a segment allow rows that stamping changes.
fn may_need_stamping(path: &std::path::Path) -> Result<bool, IngestError> {
    let nulls = |c| segment::null_count(path, c);
    let context_missing = nulls("work_order")? != Some(0) && nulls("lot")? != Some(0);
    Ok(context_missing || nulls("equipment")? != Some(0))
}

impl Engine {
    /// Flushes, then rewrites every `samples` segment with rows that the
    /// current runs and tags now stamp. When this returns `Ok`, those rows
    /// carry their work order and lot in the live segments (durably: the
    /// manifest is stored); the replaced files are gone, or go when the last
    /// query that planned with them finishes. On error nothing
    /// changed. Writes and queries go on meanwhile; flushes wait.
    pub async fn restamp(&self) -> Result<RestampReport, IngestError> {
        let flush = self.flush().await?;
        let _rewrite = self.rewrite_lock.lock().await;
        // Only a flush changes the manifest otherwise: holding its lock keeps
        // the base of this rewrite current until the switch.
        let _guard = self.flush_lock.lock().await;
        let manifest = self.manifest();
        let before = manifest.clone();
        let data_dir = self.config.data_dir.clone();
        let disk = self.config.disk.clone();
        let options = self.config.segment.clone();
        let index = self.stamp_index.clone();
        let (manifest, replaced, mut report) =
            tokio::task::spawn_blocking(move || -> Result<_, IngestError> {
                let def = model::samples();
                let mut manifest = manifest;
                let mut report = RestampReport::default();
                let mut live: Vec<SegmentMeta> = manifest.segments(def.name).to_vec();
                let mut replaced = Vec::new();
                let mut written: Vec<SegmentMeta> = Vec::new();
                let result = (|| {
                    for slot in live.iter_mut() {
                        report.segments_scanned += 1;
                        if !may_need_stamping(&data_dir.join(&slot.file))? {
                            continue;
                        }
                        report.segments_read += 1;
                        let batches = segment::read_segment(&data_dir, slot)?;
                        let (stamped, counts) =
                            index.read().expect("stamp index lock").stamp_all(batches)?;
                        if counts.is_empty() {
                            continue;
                        }
                        let mut metas = segment::write_segments(
                            &data_dir,
                            def,
                            &stamped,
                            &mut manifest.next_segment_id,
                            &options,
                        )?;
                        // A segment lies in one date partition and stamping
                        // keeps its rows and keys.
                        assert_eq!(metas.len(), 1, "one segment in, one out");
                        let new = metas.pop().expect("one segment");
                        written.push(new.clone());
                        assert_eq!(new.rows, slot.rows, "restamp keeps every row");
                        replaced.push(std::mem::replace(slot, new));
                        report.rows_restamped += counts.stamped;
                        report.equipment_filled += counts.equipment_filled;
                    }
                    if !written.is_empty() {
                        manifest.tables.insert(def.name.to_string(), live);
                        manifest.store(&*disk, &data_dir)?;
                    }
                    Ok::<_, IngestError>(())
                })();
                if let Err(e) = result {
                    crate::storage::remove_uncommitted(&*disk, &data_dir, &written);
                    return Err(e);
                }
                report.segments_rewritten = written.len();
                Ok((manifest, replaced, report))
            })
            .await
            .map_err(|e| IngestError::Internal(e.to_string()))??;
        if !replaced.is_empty() {
            // After the switch the replaced files are retired: deleted when
            // the last query that planned with them is done (a crash from
            // here on leaves them as orphans, which the next start removes).
            let retired = self
                .state
                .write()
                .expect("state lock")
                .set_manifest(manifest.clone(), &self.config.data_dir);
            assert_eq!(
                retired.len(),
                replaced.len(),
                "restamp retires what it replaced"
            );
            drop(retired);
            self.record_segments(&before, &manifest, "restamp").await;
        }
        report.flush = flush;
        info!(
            "restamp: {} row(s) in {} of {} segment(s) rewritten, {} buffered row(s) stamped by the flush",
            report.rows_restamped,
            report.segments_rewritten,
            report.segments_scanned,
            report.flush.rows_stamped
        );
        Ok(report)
    }
}
