//! The write path: validate → WAL group commit → write buffer → flush to
//! Parquet segments → atomic manifest → WAL truncation; and recovery, which
//! replays the WAL into the buffer on start.
//!
//! [`Engine`] is the one entry point for every writer (Flight SQL ingest,
//! INSERT, the demo, later gRPC and line protocol) and the source of the
//! consistent table snapshots the query layer reads.

pub mod buffer;
mod commit;
pub mod corrections;
pub mod genealogy_index;
pub mod last_values;
pub mod versions;
pub mod wal;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arrow::array::RecordBatch;
use tokio::sync::{Mutex, oneshot};
use tracing::{info, warn};

use crate::model::{self, Cache, TableDef, ValidationError};
use crate::storage::segment::{self, SegmentOptions};
use crate::storage::{self, Manifest, SegmentMeta, StorageError};
use buffer::TableBuffer;
use genealogy_index::GenealogyIndex;
use last_values::LastValues;
use wal::{WalError, WalFile};

pub use commit::WalObserver;
use versions::Versions;
pub use versions::{ChangeFn, ChangeMeta, REASON_HINT};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    #[error("unknown table '{0}' (writable tables: {names})", names = model::table_names())]
    UnknownTable(String),
    #[error(
        "request of {bytes} bytes exceeds the limit of {limit} bytes (max_request_bytes); split it into smaller batches"
    )]
    TooLarge { bytes: usize, limit: usize },
    #[error("WAL: {0}")]
    Wal(#[from] WalError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("data directory {path} is in use by another lotline process")]
    Locked { path: PathBuf },
    #[error("{op} an existing {table} record ({key}) needs a reason: {REASON_HINT}")]
    ReasonRequired {
        table: &'static str,
        key: String,
        op: &'static str,
    },
    #[error("{0}")]
    Statement(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl IngestError {
    /// True when the client sent something wrong (as opposed to a server fault).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::Invalid(_)
                | Self::UnknownTable(_)
                | Self::TooLarge { .. }
                | Self::ReasonRequired { .. }
                | Self::Statement(_)
        )
    }
}

/// Settings of the write path.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// fsync the WAL before acknowledging (false: acknowledge after write(2)).
    pub wal_fsync: bool,
    pub flush_rows: usize,
    pub flush_age: Duration,
    pub max_request_bytes: usize,
    /// Writers wait while this many rows are buffered (flushes running behind):
    /// memory stays bounded and writers slow down instead of the server failing.
    pub max_buffered_rows: usize,
    pub segment: SegmentOptions,
}

/// Everything readers see, changed only under the lock: live segments and
/// buffered rows move together, so a snapshot never sees a row twice or not at all.
pub(crate) struct State {
    manifest: Manifest,
    buffers: Vec<TableBuffer>,
}

/// A consistent view of one table for a query.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    pub segments: Vec<SegmentMeta>,
    pub buffered: Vec<RecordBatch>,
}

/// One table's write buffer, as [`Engine::buffer_usage`] reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BufferUsage {
    pub table: &'static str,
    pub rows: usize,
    /// Arrow memory of the buffered batches.
    pub bytes: usize,
}

/// What a flush did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FlushReport {
    pub segments_written: usize,
    pub rows_written: u64,
    pub wal_files_removed: usize,
}

pub struct Engine {
    config: EngineConfig,
    state: Arc<RwLock<State>>,
    wal: std::sync::mpsc::Sender<commit::Command>,
    flush_lock: Mutex<()>,
    /// Last-value cache per table (tables with a time column).
    last_values: Vec<Option<std::sync::Mutex<LastValues>>>,
    /// The lot graph, for the table with [`Cache::Genealogy`].
    genealogy: Option<(usize, std::sync::RwLock<GenealogyIndex>)>,
    /// Writers hold it shared from WAL append until their rows are in the
    /// last-value cache; a flush takes it exclusively around the WAL rotation
    /// so its cache snapshot covers every row it moves out of the WAL.
    merge_gate: tokio::sync::RwLock<()>,
    /// The newest correction per sample, for the table with [`Cache::Corrections`].
    corrections: Option<(usize, std::sync::RwLock<Arc<corrections::CorrectionMap>>)>,
    /// Current keys of versioned tables; held across a versioned write.
    versions: Mutex<Versions>,
    _dir_lock: File,
}

/// Bytes a request occupies in memory, the measure `max_request_bytes` limits.
pub fn request_bytes(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::get_array_memory_size).sum()
}

fn table_id(def: &TableDef) -> usize {
    model::tables()
        .iter()
        .position(|t| t.name == def.name)
        .expect("registered table")
}

impl Engine {
    /// Opens (or creates) a data directory, recovering acknowledged writes
    /// from the WAL. Every row acknowledged before a crash is queryable when
    /// this returns.
    pub fn open(config: EngineConfig) -> Result<Arc<Self>, IngestError> {
        let dir = &config.data_dir;
        let wal_dir = dir.join("wal");
        for d in [dir.clone(), wal_dir.clone(), dir.join("tables")] {
            std::fs::create_dir_all(&d)
                .map_err(storage::io_err(&d))
                .map_err(IngestError::Storage)?;
        }
        let lock_path = dir.join("LOCK");
        let dir_lock = File::create(&lock_path).map_err(|e| StorageError::Io {
            path: lock_path.clone(),
            source: e,
        })?;
        dir_lock
            .try_lock()
            .map_err(|_| IngestError::Locked { path: dir.clone() })?;

        let manifest = Manifest::load(dir)?;
        for orphan in storage::remove_orphans(dir, &manifest)? {
            warn!(
                "removed {} (not in the manifest: left by an interrupted flush)",
                orphan.display()
            );
        }
        let mut buffers: Vec<TableBuffer> = model::tables()
            .iter()
            .map(|_| TableBuffer::default())
            .collect();
        let last_seq = recover(&wal_dir, manifest.wal_replay_from, &mut buffers)?;
        let first_free = last_seq
            .map_or(0, |s| s + 1)
            .max(manifest.wal_replay_from)
            .max(1);
        let file = WalFile::create(&wal_dir, first_free)?;
        let last_values = recover_last_values(dir, &manifest, &buffers)?;
        let mut genealogy = recover_genealogy(dir, &manifest, &buffers)?;
        let versions = Versions::recover(dir, &manifest, &buffers)?;
        let corrections = corrections::recover(dir, &manifest, &buffers)?
            .map(|(id, map)| (id, std::sync::RwLock::new(Arc::new(map))));
        if let Some((id, index)) = genealogy
            .as_mut()
            .filter(|(id, _)| versions.had_tombstones(*id))
        {
            let def = model::tables()[*id];
            let snapshot = TableSnapshot {
                segments: manifest.segments(def.name).to_vec(),
                buffered: buffers[*id].batches(),
            };
            *index.get_mut().expect("genealogy index lock") =
                versions::genealogy_without_tombstones(dir, def, snapshot)?;
        }
        let state = Arc::new(RwLock::new(State { manifest, buffers }));
        let wal = commit::spawn(wal_dir, file, config.wal_fsync, state.clone());
        Ok(Arc::new(Self {
            config,
            state,
            wal,
            flush_lock: Mutex::new(()),
            last_values,
            genealogy,
            merge_gate: tokio::sync::RwLock::new(()),
            versions: Mutex::new(versions),
            corrections,
            _dir_lock: dir_lock,
        }))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// Validates and writes one request. The request is accepted whole or
    /// rejected whole; durable (per the WAL sync policy) and visible to
    /// queries when this returns `Ok`, with the number of rows written.
    /// Versioned rows are recorded as [`ChangeMeta::unattributed`].
    pub async fn write(
        &self,
        def: &'static TableDef,
        batches: Vec<RecordBatch>,
    ) -> Result<usize, IngestError> {
        self.write_as(def, batches, &ChangeMeta::unattributed())
            .await
    }

    /// [`Self::write`] on behalf of a user: versioned tables record `meta`
    /// with every version, and refuse a rewrite of an existing key without
    /// `meta.reason`.
    pub async fn write_as(
        &self,
        def: &'static TableDef,
        batches: Vec<RecordBatch>,
        meta: &ChangeMeta,
    ) -> Result<usize, IngestError> {
        let bytes = request_bytes(&batches);
        if bytes > self.config.max_request_bytes {
            return Err(IngestError::TooLarge {
                bytes,
                limit: self.config.max_request_bytes,
            });
        }
        let id = table_id(def);
        let versioned = def.is_versioned();
        let correction = def.has_cache(Cache::Corrections).then(|| meta.clone());
        let (normalized, record) =
            tokio::task::spawn_blocking(move || -> Result<_, IngestError> {
                let mut offset = 0;
                let mut normalized = Vec::with_capacity(batches.len());
                let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
                for batch in batches.iter().filter(|b| b.num_rows() > 0) {
                    let mut checked = model::normalize_batch(def, batch, offset)?;
                    if let Some(meta) = &correction {
                        checked = corrections::stamp(def, &checked, meta, now)?;
                    }
                    normalized.push(checked);
                    offset += batch.num_rows();
                }
                // Versioned rows are encoded once stamped, under the version lock.
                if normalized.is_empty() || versioned {
                    return Ok((normalized, Vec::new()));
                }
                let record = wal::encode_record(id as u8, &normalized)?;
                Ok((normalized, record))
            })
            .await
            .map_err(|e| IngestError::Internal(e.to_string()))??;
        if normalized.is_empty() {
            return Ok(0);
        }
        if versioned {
            return self.write_versioned(def, normalized, meta).await;
        }
        self.commit(id, normalized, record).await
    }

    /// Appends an encoded record of `batches` (stored schema) to the WAL and,
    /// once durable, to the buffer and the caches.
    async fn commit(
        &self,
        id: usize,
        normalized: Vec<RecordBatch>,
        record: Vec<u8>,
    ) -> Result<usize, IngestError> {
        let rows = normalized.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            return Ok(0);
        }
        self.wait_for_buffer_room().await;
        let _gate = self.merge_gate.read().await;
        let (reply, done) = oneshot::channel();
        self.wal
            .send(commit::Command::Append {
                table: id,
                record,
                batches: normalized.clone(),
                reply,
            })
            .map_err(|_| WalError::Closed)?;
        done.await.map_err(|_| WalError::Closed)??;
        if let Some(cache) = &self.last_values[id] {
            let mut cache = cache.lock().expect("last values lock");
            for batch in &normalized {
                cache.merge(batch);
            }
        }
        if let Some((_, index)) = self.genealogy.as_ref().filter(|(t, _)| *t == id) {
            let mut index = index.write().expect("genealogy index lock");
            for batch in &normalized {
                index.merge(batch);
            }
        }
        if let Some((_, map)) = self.corrections.as_ref().filter(|(t, _)| *t == id) {
            // Copy on write: queries hold the previous map while they run.
            let mut map = map.write().expect("corrections lock");
            let map = Arc::make_mut(&mut map);
            for batch in &normalized {
                corrections::merge(map, batch);
            }
        }
        Ok(rows)
    }

    /// Applies backpressure: returns once the buffers hold fewer than
    /// `max_buffered_rows` rows (the background flusher drains them).
    async fn wait_for_buffer_room(&self) {
        let mut waited = false;
        while self.total_buffered_rows() >= self.config.max_buffered_rows {
            if !waited {
                tracing::debug!("write buffer full; writer waits for a flush");
                waited = true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn total_buffered_rows(&self) -> usize {
        let state = self.state.read().expect("state lock");
        state.buffers.iter().map(TableBuffer::rows).sum()
    }

    /// The newest row of every key of `def` (its last-value cache), or
    /// `None` for tables without a time column.
    pub fn last_values(&self, def: &TableDef) -> Option<RecordBatch> {
        self.last_values[table_id(def)]
            .as_ref()
            .map(|c| c.lock().expect("last values lock").to_batch())
    }

    /// The time of the newest row of `key` in `def` (from the last-value
    /// cache, so no segment is read); `None` if the key has no rows or the
    /// table no time column.
    pub fn newest_ts(&self, def: &TableDef, key: &str) -> Option<i64> {
        self.last_values[table_id(def)]
            .as_ref()
            .and_then(|c| c.lock().expect("last values lock").newest_ts(key))
    }

    /// The newest correction per (tag, ts) of `sample_corrections`.
    pub fn corrections(&self) -> Arc<corrections::CorrectionMap> {
        self.corrections
            .as_ref()
            .map(|(_, map)| map.read().expect("corrections lock").clone())
            .unwrap_or_default()
    }

    /// The in-memory lot graph of `genealogy` (every acknowledged write is in
    /// it), or `None` if no table keeps one.
    pub fn genealogy(&self) -> Option<&std::sync::RwLock<GenealogyIndex>> {
        self.genealogy.as_ref().map(|(_, index)| index)
    }

    /// A consistent view of a table: its live segments and buffered rows.
    pub fn snapshot(&self, def: &TableDef) -> TableSnapshot {
        let state = self.state.read().expect("state lock");
        TableSnapshot {
            segments: state.manifest.segments(def.name).to_vec(),
            buffered: state.buffers[table_id(def)].batches(),
        }
    }

    pub fn manifest(&self) -> Manifest {
        self.state.read().expect("state lock").manifest.clone()
    }

    /// Rows currently buffered (not yet in segments), per table.
    pub fn buffered_rows(&self) -> Vec<(&'static str, usize)> {
        self.buffer_usage()
            .into_iter()
            .map(|u| (u.table, u.rows))
            .collect()
    }

    /// Rows and Arrow memory currently buffered (not yet in segments), per table.
    pub fn buffer_usage(&self) -> Vec<BufferUsage> {
        let state = self.state.read().expect("state lock");
        model::tables()
            .iter()
            .zip(&state.buffers)
            .map(|(t, b)| BufferUsage {
                table: t.name,
                rows: b.rows(),
                bytes: b.bytes(),
            })
            .collect()
    }

    /// Files and bytes of the WAL on disk (rows not yet in segments; the
    /// file being written counts as far as it is written).
    pub fn wal_usage(&self) -> Result<(usize, u64), IngestError> {
        let dir = self.config.data_dir.join("wal");
        let files = wal::list_files(&dir)?;
        let mut bytes = 0;
        for seq in &files {
            let path = dir.join(wal::file_name(*seq));
            // A file removed by a flush since the listing simply no longer counts.
            bytes += std::fs::metadata(&path).map_or(0, |m| m.len());
        }
        Ok((files.len(), bytes))
    }

    /// Metrics hook: `observer` is called on the WAL thread with the duration
    /// of every group commit's append (write and, per the sync policy, fsync).
    pub fn observe_wal_commits(&self, observer: WalObserver) {
        let _ = self.wal.send(commit::Command::Observe(observer));
    }

    fn needs_flush(&self) -> bool {
        let state = self.state.read().expect("state lock");
        state.buffers.iter().any(|b| {
            b.active_rows >= self.config.flush_rows
                || !b.frozen.is_empty()
                || b.active_since
                    .is_some_and(|t| t.elapsed() >= self.config.flush_age)
        })
    }

    /// Writes every buffered row to segments, commits the manifest and
    /// truncates the WAL. Rows stay visible throughout; on error nothing
    /// becomes live and the rows stay buffered and in the WAL for a retry.
    pub async fn flush(&self) -> Result<FlushReport, IngestError> {
        let _guard = self.flush_lock.lock().await;
        let gate = self.merge_gate.write().await;
        let (reply, rotated) = oneshot::channel();
        self.wal
            .send(commit::Command::Rotate { reply })
            .map_err(|_| WalError::Closed)?;
        let replay_from = rotated.await.map_err(|_| WalError::Closed)??;
        let snapshots: Vec<Option<RecordBatch>> = self
            .last_values
            .iter()
            .map(|c| {
                c.as_ref()
                    .map(|c| c.lock().expect("last values lock").to_batch())
            })
            .collect();
        drop(gate);
        let (mut manifest, frozen) = {
            let state = self.state.read().expect("state lock");
            let frozen: Vec<Vec<RecordBatch>> =
                state.buffers.iter().map(|b| b.frozen.clone()).collect();
            (state.manifest.clone(), frozen)
        };
        let data_dir = self.config.data_dir.clone();
        let options = self.config.segment.clone();
        let (manifest, report) = tokio::task::spawn_blocking(move || -> Result<_, IngestError> {
            let mut report = FlushReport::default();
            let mut written: Vec<SegmentMeta> = Vec::new();
            let result = (|| {
                for (def, batches) in model::tables().iter().zip(&frozen) {
                    let metas = segment::write_segments(
                        &data_dir,
                        def,
                        batches,
                        &mut manifest.next_segment_id,
                        &options,
                    )?;
                    written.extend(metas.iter().cloned());
                    manifest
                        .tables
                        .entry(def.name.to_string())
                        .or_default()
                        .extend(metas);
                }
                for (def, snapshot) in model::tables().iter().zip(&snapshots) {
                    if let Some(batch) = snapshot.as_ref().filter(|b| b.num_rows() > 0) {
                        let file = last_values::snapshot_file(def.name, replay_from);
                        last_values::store_snapshot(&data_dir, &file, batch)?;
                        manifest.last_values.insert(def.name.to_string(), file);
                    }
                }
                manifest.wal_replay_from = replay_from;
                manifest.store(&data_dir)
            })();
            if let Err(e) = result {
                for meta in &written {
                    let _ = std::fs::remove_file(data_dir.join(&meta.file));
                }
                return Err(e.into());
            }
            report.segments_written = written.len();
            report.rows_written = written.iter().map(|m| m.rows).sum();
            Ok((manifest, report))
        })
        .await
        .map_err(|e| IngestError::Internal(e.to_string()))??;
        {
            let mut state = self.state.write().expect("state lock");
            state.manifest = manifest;
            for buffer in &mut state.buffers {
                buffer.frozen.clear();
            }
        }
        let mut report = report;
        last_values::remove_stale_snapshots(&self.config.data_dir, &self.manifest())?;
        report.wal_files_removed =
            remove_wal_before(&self.config.data_dir.join("wal"), replay_from)?;
        if report.rows_written > 0 {
            info!(
                "flushed {} rows into {} segment(s); removed {} WAL file(s)",
                report.rows_written, report.segments_written, report.wal_files_removed
            );
        }
        Ok(report)
    }

    /// Flushes in the background whenever a table's buffer reaches
    /// `flush_rows` or its oldest row `flush_age`.
    pub fn spawn_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let Some(engine) = engine.upgrade() else {
                    break;
                };
                if engine.needs_flush() {
                    if let Err(e) = engine.flush().await {
                        tracing::error!(
                            "background flush failed (rows stay in the WAL and buffer): {e}"
                        );
                    }
                }
            }
        })
    }
}

/// Rebuilds the last-value caches: the snapshot the manifest names, then
/// every replayed row over it (merging is idempotent).
fn recover_last_values(
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
fn recover_genealogy(
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
    let def = model::tables()[id];
    let started = std::time::Instant::now();
    let mut index = GenealogyIndex::default();
    for meta in manifest.segments(def.name) {
        segment::scan_parquet_columns(
            &data_dir.join(&meta.file),
            &genealogy_index::COLUMNS,
            |batch| index.load_batch(&batch),
        )?;
    }
    for batch in buffers[id].batches() {
        index.load_batch(&batch);
    }
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

/// Replays WAL files numbered `from` and up into `buffers`; removes older
/// ones. Returns the highest file number seen.
fn recover(
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

fn remove_wal_before(wal_dir: &Path, seq: u64) -> Result<usize, IngestError> {
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
