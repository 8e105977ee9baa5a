//! The engine's side of segment lineage ([`crate::audit::lineage`]): after
//! every manifest commit that adds or removes segments, one audit entry that
//! names them; on start, one entry for whatever the manifest has that the
//! chain lacks (a crash between a commit and its entry, or segments written
//! before lineage was recorded).

use std::path::Path;

use arrow::array::RecordBatch;
use tracing::warn;

use super::{Engine, IngestError};
use crate::audit::lineage::{self, Lineage, RECOVERED, SegmentChange};
use crate::model;
use crate::storage::{Manifest, Pins, segment};

impl Engine {
    /// What a check of the audit trail reads, taken together: the manifest,
    /// the buffered `audit_log` rows and pins on every live segment. Taken
    /// under `flush_lock`, so no switch sits between its manifest store and
    /// its lineage entry; the pins keep files a later compaction retires
    /// readable until the caller drops them.
    pub async fn audit_view(&self) -> (Manifest, Vec<RecordBatch>, Pins) {
        let _switches = self.flush_lock.lock().await;
        let (manifest, buffered) = self.manifest_and_buffered(model::audit_log());
        let live: Vec<_> = manifest.tables.values().flatten().cloned().collect();
        let pins = self.state.read().expect("state lock").pins(&live);
        (manifest, buffered, pins)
    }

    /// Records in the audit trail the segment files a manifest commit added
    /// and removed (`before` -> `after`), as `action` (`flush`, `restamp`,
    /// `compaction`). Call it right after `after` is stored, still holding
    /// `flush_lock`, so that entries follow commit order. The commit stands
    /// either way: if the entry cannot be written (or the process dies
    /// first), the next start records the difference
    /// ([`Engine::reconcile_segments`]), so this only logs a failure.
    pub async fn record_segments(&self, before: &Manifest, after: &Manifest, action: &str) {
        let before = lineage::live_files(before);
        let Some(change) = lineage::diff(&before, &lineage::live_files(after), action) else {
            return;
        };
        let change = change.with_rows(after);
        if let Err(e) = self.audit(change.event()).await {
            warn!(
                "could not record the segments of this {action} in the audit trail (the next start will): {e}"
            );
        }
    }

    /// Run once on start, before serving: replays the chain's lineage
    /// entries and, if the manifest differs from them, appends one entry with
    /// action [`RECOVERED`] that adds and removes the difference. Returns
    /// it; durable when this returns.
    pub async fn reconcile_segments(&self) -> Result<Option<SegmentChange>, IngestError> {
        let _guard = self.flush_lock.lock().await;
        let (manifest, buffered) = self.manifest_and_buffered(model::audit_log());
        let dir = self.config.data_dir.clone();
        let change = tokio::task::spawn_blocking(move || {
            chain_lineage(&dir, &manifest, &buffered).map(|l| l.recovery(&manifest))
        })
        .await
        .map_err(|e| IngestError::Internal(e.to_string()))??;
        let Some(change) = change else {
            return Ok(None);
        };
        warn!(
            "the audit trail lacked {} added and {} removed segment(s) of the manifest; recorded now as '{RECOVERED}'",
            change.added.len(),
            change.removed.len()
        );
        for lost in &change.lost {
            tracing::error!(
                "rows lost between the last stop and this start: {} ({} rows) is gone with its \
                 manifest entry and nothing replaces it; recorded in the audit trail, and \
                 verify-audit fails on it",
                lost.file,
                lost.rows
            );
        }
        self.audit(change.event()).await?;
        Ok(Some(change))
    }
}

/// The audit chain's lineage entries replayed: those in the `audit_log`
/// segments of `manifest`, then those in the `buffered` rows.
fn chain_lineage(
    dir: &Path,
    manifest: &Manifest,
    buffered: &[RecordBatch],
) -> Result<Lineage, IngestError> {
    let mut lineage = Lineage::default();
    let mut failed = None;
    for meta in manifest.segments(model::audit_log().name) {
        segment::scan_parquet_columns(&dir.join(&meta.file), &["seq", "action", "detail"], |b| {
            if let Err(e) = lineage.push_batch(&b) {
                failed.get_or_insert(e);
            }
        })?;
    }
    for batch in buffered {
        if let Err(e) = lineage.push_batch(batch) {
            failed.get_or_insert(e);
        }
    }
    match failed {
        Some(e) => Err(IngestError::Internal(format!(
            "reading segment lineage from audit_log: {e}"
        ))),
        None => Ok(lineage),
    }
}
