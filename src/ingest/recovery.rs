//! Rebuilding the write path's state on start: the WAL replayed into the
//! buffers, and the in-memory indexes (last values, genealogy, stamping)
//! from the live segments and the replayed rows, in write order.

use std::path::Path;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{TimestampNanosecondType, UInt64Type};
use tracing::{info, warn};

use super::buffer::TableBuffer;
use super::genealogy_index::{self, GenealogyIndex};
use super::last_value_cache::LastValues;
use super::stamping::{self, StampIndex};
use super::{IngestError, wal};
use crate::audit::Event;
use crate::model::{self, Cache};
use crate::storage::segment;
use crate::storage::{Disk, Manifest, StorageError, disk};

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
        |batch| Ok(index.load_batch(batch)?),
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

/// Remembers the request ids of the writes of the last window, from the
/// `audit_log` segments that reach into it and the replayed entries.
pub(super) fn recover_request_ids(
    data_dir: &Path,
    manifest: &Manifest,
    buffers: &[TableBuffer],
    ids: &super::requests::RequestIds,
) -> Result<(), IngestError> {
    let def = model::audit_log();
    let id = super::table_id(def);
    let columns = ["ts", "action", "detail", "row_count"];
    let remember = |batch: &RecordBatch| -> Result<(), IngestError> {
        let ts = model::columns::primitives::<TimestampNanosecondType>(batch, def.name, "ts")?;
        let action = model::columns::strings(batch, def.name, "action")?;
        let detail = model::columns::strings(batch, def.name, "detail")?;
        let rows = model::columns::primitives::<UInt64Type>(batch, def.name, "row_count")?;
        for row in 0..batch.num_rows() {
            if action.value(row) == "write" && detail.is_valid(row) {
                ids.recover(ts.value(row), detail.value(row), rows.value(row) as usize);
            }
        }
        Ok(())
    };
    let recent = manifest
        .segments(def.name)
        .iter()
        .filter(|s| s.max_time.is_none_or(|t| t >= ids.cutoff()));
    let mut failed = None;
    for meta in recent {
        segment::scan_parquet_columns(&data_dir.join(&meta.file), &columns, |batch| {
            if failed.is_none() {
                failed = remember(&batch).err();
            }
        })?;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    buffers[id].batches().iter().try_for_each(remember)
}

/// What WAL recovery found beyond the records it replayed.
#[derive(Debug, Default)]
pub(super) struct WalRecovered {
    /// The highest WAL file number seen.
    pub last_seq: Option<u64>,
    /// One audit event per damaged file salvaged, for `audit_log`.
    pub salvaged: Vec<Event>,
}

/// Replays WAL files numbered `from` and up into `buffers`; removes older
/// ones. A record that does not verify is cut only when it is a torn tail:
/// nothing that verifies follows it in its file or any later one (the last
/// write, never acknowledged). Anything else is damage to acknowledged
/// records: start-up stops with [`IngestError::WalDamaged`], unless
/// `salvage`, which keeps every group record that verifies, moves a copy of
/// the damaged file to `wal/quarantine/` and reports an audit event.
pub(super) fn recover(
    disk: &dyn Disk,
    wal_dir: &Path,
    from: u64,
    buffers: &mut [TableBuffer],
    salvage: bool,
) -> Result<WalRecovered, IngestError> {
    let seqs = wal::list_files(wal_dir)?;
    remove_wal_before(disk, wal_dir, from)?;
    let seqs: Vec<u64> = seqs.into_iter().filter(|&s| s >= from).collect();
    let sizes = seqs
        .iter()
        .map(|&seq| wal::file_len(&wal_dir.join(wal::file_name(seq))))
        .collect::<Result<Vec<u64>, _>>()?;
    let mut recovered = WalRecovered {
        last_seq: seqs.last().copied(),
        ..WalRecovered::default()
    };
    let (mut records, mut rows) = (0usize, 0usize);
    for (i, &seq) in seqs.iter().enumerate() {
        let name = wal::file_name(seq);
        let path = wal_dir.join(&name);
        let Some(image) = wal::map(&path)? else {
            continue;
        };
        let check = &crate::audit::rows_digest::check_group;
        let (mut replayed, cut) = wal::decode_records_checked(&image, check);
        if let Some(cut) = cut {
            let after = wal::records_after(&image, &cut);
            let later = sizes[i + 1..].iter().filter(|&&len| len > 0).count();
            if after == 0 && later == 0 && !cut.failed_check() {
                drop(image);
                wal::truncate(disk, &path, cut.offset)?;
                warn!(
                    "WAL recovery: cut a torn tail of {} byte(s) at offset {} in wal/{name}: {} (the last write, never acknowledged; {} whole record(s) before it kept)",
                    cut.bytes,
                    cut.offset,
                    cut.reason,
                    replayed.len()
                );
            } else if !salvage {
                return Err(IngestError::WalDamaged {
                    file: format!("wal/{name}"),
                    offset: cut.offset,
                    reason: cut.reason,
                    records_after: after,
                    later_files: later,
                });
            } else {
                let kept = wal::salvage(&image, check);
                drop(image);
                let copy = quarantine(disk, wal_dir, &name, &path)?;
                wal::replace(disk, &path, &kept.image)?;
                let skipped: Vec<String> = kept
                    .skipped
                    .iter()
                    .map(|c| format!("{} byte(s) at offset {} ({})", c.bytes, c.offset, c.reason))
                    .collect();
                warn!(
                    "WAL recovery (salvage): wal/{name}: kept {} record(s), skipped {}; the damaged file is kept as {copy}",
                    kept.records.len(),
                    skipped.join(", ")
                );
                let mut event = Event::new("lotline", "wal.salvage");
                event.detail = Some(format!(
                    "wal/{name}: kept {} record(s), skipped {}; damaged file kept as {copy}",
                    kept.records.len(),
                    skipped.join(", ")
                ));
                event.reason = Some("serve --wal-recovery salvage".into());
                recovered.salvaged.push(event);
                replayed = kept.records;
            }
        }
        for record in replayed {
            let buffer = buffers.get_mut(record.table_id as usize).ok_or_else(|| {
                IngestError::Internal(format!(
                    "wal/{name} names unknown table id {}",
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
    Ok(recovered)
}

/// Copies a damaged WAL file to `wal/quarantine/` (durably, before the
/// file is replaced) and returns the copy's name relative to the data dir.
fn quarantine(
    disk: &dyn Disk,
    wal_dir: &Path,
    name: &str,
    path: &Path,
) -> Result<String, IngestError> {
    let dir = wal_dir.join("quarantine");
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let copy = dir.join(format!("{name}.{stamp}"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StorageError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    // Streamed: a damaged file can be large, and the salvaged image is in memory.
    let copied = disk::replace_with(disk, &copy, &copy.with_extension("tmp"), |file| {
        let mut damaged = std::fs::File::open(path)?;
        std::io::copy(&mut damaged, file).map(|_| ())
    });
    copied.map_err(io(&copy))?;
    Ok(format!(
        "wal/quarantine/{}",
        copy.file_name().expect("named").to_string_lossy()
    ))
}

pub(super) fn remove_wal_before(
    disk: &dyn Disk,
    wal_dir: &Path,
    seq: u64,
) -> Result<usize, IngestError> {
    let mut removed = 0;
    for old in wal::list_files(wal_dir)?.into_iter().filter(|&s| s < seq) {
        let path = wal_dir.join(wal::file_name(old));
        disk.remove(&path)
            .map_err(|e| StorageError::Io { path, source: e })?;
        removed += 1;
    }
    if removed > 0 {
        wal::sync_dir(disk, wal_dir)?;
    }
    Ok(removed)
}
