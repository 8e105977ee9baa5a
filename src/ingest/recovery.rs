//! Rebuilding the write path's state on start: the WAL replayed into the
//! buffers, and the in-memory indexes (last values, genealogy, stamping)
//! from the live segments and the replayed rows, in write order.

use std::path::Path;

use arrow::array::RecordBatch;
use tracing::{info, warn};

use super::buffer::TableBuffer;
use super::genealogy_index::{self, GenealogyIndex};
use super::last_values::LastValues;
use super::stamping::{self, StampIndex};
use super::{IngestError, wal};
use crate::model::{self, Cache};
use crate::storage::segment;
use crate::storage::{Manifest, StorageError};

/// Rebuilds the last-value caches: the snapshot the manifest names, then
/// every replayed row over it (merging is idempotent).
pub(super) fn recover_last_values(
    data_dir: &Path,
    manifest: &Manifest,
    buffers: &[TableBuffer],
) -> Result<Vec<Option<std::sync::Mutex<LastValues>>>, IngestError> {
    let mut caches = Vec::new();
    for (def, buffer) in model::tables().iter().zip(buffers) {
        let Some(mut cache) = LastValues::for_table(def) else {
            caches.push(None);
            continue;
        };
        if let Some(file) = manifest.last_values.get(def.name) {
            for batch in segment::read_parquet(&data_dir.join(file))? {
                cache.merge(&batch);
            }
        }
        for batch in buffer.batches() {
            cache.merge(&batch);
        }
        caches.push(Some(std::sync::Mutex::new(cache)));
    }
    Ok(caches)
}

/// Rebuilds the genealogy index from the live segments of its table (oldest
/// first, reading only the columns it keeps) and then the replayed rows.
pub(super) fn recover_genealogy(
    data_dir: &Path,
    manifest: &Manifest,
    buffers: &[TableBuffer],
) -> Result<Option<(usize, std::sync::RwLock<GenealogyIndex>)>, IngestError> {
    let Some(id) = model::tables()
        .iter()
        .position(|t| t.has_cache(Cache::Genealogy))
    else {
        return Ok(None);
    };
    let started = std::time::Instant::now();
    let mut index = GenealogyIndex::default();
    replay_table(
        data_dir,
        manifest,
        buffers,
        id,
        &genealogy_index::COLUMNS,
        |batch| {
            index.load_batch(batch);
            Ok(())
        },
    )?;
    index.finish_load();
    if index.edge_count() > 0 {
        info!(
            "genealogy index: {} edges, {} lots, {} MiB, rebuilt in {:.1} s",
            index.edge_count(),
            index.lot_count(),
            index.memory_bytes() >> 20,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Some((id, std::sync::RwLock::new(index))))
}

/// Rebuilds the stamping index from every table with [`Cache::Stamping`].
pub(super) fn recover_stamp_index(
    data_dir: &Path,
    manifest: &Manifest,
    buffers: &[TableBuffer],
) -> Result<StampIndex, IngestError> {
    let mut index = StampIndex::default();
    for (id, def) in model::tables().into_iter().enumerate() {
        if let Some(columns) = stamping::columns(def).filter(|_| def.has_cache(Cache::Stamping)) {
            replay_table(data_dir, manifest, buffers, id, columns, |batch| {
                index.merge(def, batch).map_err(IngestError::from)
            })?;
        }
    }
    if index.run_count() > 0 {
        info!("stamping index: {} production runs", index.run_count());
    }
    Ok(index)
}

/// Feeds table `id`'s rows as they stand to `load`, in write order (what
/// latest-wins merging needs): its live segments oldest first, reading only
/// `columns`, then the rows replayed from the WAL (all columns).
pub(super) fn replay_table(
    data_dir: &Path,
    manifest: &Manifest,
    buffers: &[TableBuffer],
    id: usize,
    columns: &[&str],
    mut load: impl FnMut(&RecordBatch) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    let def = model::tables()[id];
    let mut failed = None;
    for meta in manifest.segments(def.name) {
        segment::scan_parquet_columns(&data_dir.join(&meta.file), columns, |batch| {
            if failed.is_none() {
                failed = load(&batch).err();
            }
        })?;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    for batch in buffers[id].batches() {
        load(&batch)?;
    }
    Ok(())
}

/// Replays WAL files numbered `from` and up into `buffers`; removes older
/// ones. Returns the highest file number seen.
pub(super) fn recover(
    wal_dir: &Path,
    from: u64,
    buffers: &mut [TableBuffer],
) -> Result<Option<u64>, IngestError> {
    let seqs = wal::list_files(wal_dir)?;
    remove_wal_before(wal_dir, from)?;
    let (mut records, mut rows) = (0usize, 0usize);
    for &seq in seqs.iter().filter(|&&s| s >= from) {
        let path = wal_dir.join(wal::file_name(seq));
        let (replayed, cut) = wal::replay(&path)?;
        if let Some(cut) = cut {
            warn!(
                "WAL recovery: cut {} byte(s) at offset {} in wal/{}: {} ({} whole record(s) before it kept)",
                cut.bytes,
                cut.offset,
                wal::file_name(seq),
                cut.reason,
                replayed.len()
            );
        }
        for record in replayed {
            let buffer = buffers.get_mut(record.table_id as usize).ok_or_else(|| {
                IngestError::Internal(format!(
                    "wal/{} names unknown table id {}",
                    wal::file_name(seq),
                    record.table_id
                ))
            })?;
            records += 1;
            rows += record
                .batches
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>();
            buffer.append(record.batches);
        }
    }
    if records > 0 {
        info!("WAL recovery: replayed {records} record(s), {rows} row(s)");
    }
    Ok(seqs.last().copied())
}

pub(super) fn remove_wal_before(wal_dir: &Path, seq: u64) -> Result<usize, IngestError> {
    let mut removed = 0;
    for old in wal::list_files(wal_dir)?.into_iter().filter(|&s| s < seq) {
        let path = wal_dir.join(wal::file_name(old));
        std::fs::remove_file(&path).map_err(|e| StorageError::Io { path, source: e })?;
        removed += 1;
    }
    if removed > 0 {
        wal::sync_dir(wal_dir)?;
    }
    Ok(removed)
}
