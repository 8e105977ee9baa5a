//! The write path: validate → WAL group commit → write buffer → flush to
//! Parquet segments → atomic manifest → WAL truncation; and recovery, which
//! replays the WAL into the buffer on start.
//!
//! [`Engine`] is the one entry point for every writer (Flight SQL ingest,
//! INSERT, the demo, gRPC and line protocol) and the source of the
//! consistent table snapshots the query layer reads. Every accepted write,
//! and every event an interface reports with [`Engine::audit`], gets a
//! hash-chained `audit_log` entry that is durable together with it.

pub mod buffer;
mod commit;
mod commit_request;
mod compact;
pub mod corrections;
mod error;
mod flush;
pub mod genealogy_index;
pub mod last_value_cache;
mod lineage_record;
pub mod memory;
mod recovery;
pub mod requests;
mod restamp;
pub mod stamping;
mod unique_keys;
pub mod versions;
mod write_audit;
// The WAL's file format lives in storage (audit reads it too).
pub use crate::storage::wal;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arrow::array::RecordBatch;
use tokio::sync::{Mutex, oneshot};
use tracing::{info, warn};

use crate::model::{self, Cache, TableDef};
use crate::storage::segment::{self, SegmentOptions};
use crate::storage::{self, Graveyard, Manifest, Pins, SegmentFile, SegmentMeta, StorageError};
use buffer::TableBuffer;
use genealogy_index::GenealogyIndex;
use last_value_cache::LastValues;
use recovery::replay_table;
use recovery::{
    recover, recover_genealogy, recover_last_values, recover_stamp_index, remove_wal_before,
};
use stamping::StampIndex;
use wal::{WalError, WalFile};

pub use commit::WalObserver;
pub use compact::{CompactReport, CompactionConfig, CompactionTotals};
pub use error::IngestError;
pub use flush::{FlushFailure, FlushReport};
pub use restamp::RestampReport;
pub use unique_keys::{KeyTotals, SUPERSEDED_REASON};
use versions::Versions;
pub use versions::{ChangeFn, TablePart, reason_hint};
pub use write_audit::{REASON_HEADER, REQUEST_ID_HEADER, WriteContext, version_in};

/// Settings of the write path.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// fsync the WAL before acknowledging (false: acknowledge after write(2)).
    pub wal_fsync: bool,
    pub flush_rows: usize,
    /// Flush a table's buffer once its rows keep this much memory alive
    /// ([`buffer::retained_bytes`]): wide rows reach it before `flush_rows`.
    pub flush_bytes: usize,
    pub flush_age: Duration,
    pub max_request_bytes: usize,
    /// Writers wait while this many rows are buffered (flushes running behind):
    /// memory stays bounded and writers slow down instead of the server failing.
    pub max_buffered_rows: usize,
    /// The same bound in bytes of buffered memory, for wide rows.
    pub max_buffered_bytes: usize,
    pub segment: SegmentOptions,
    /// Stamp samples with the work order and lot of their equipment's run at
    /// ingest and flush (`--no-stamping` turns it off; `restamp` still works).
    pub stamping: bool,
    /// Merging of small segments of every table (background and on demand).
    pub compaction: CompactionConfig,
    /// Start on a damaged WAL by keeping every record that verifies (see
    /// [`recovery::recover`]) instead of refusing to start.
    pub wal_salvage: bool,
    /// Longest a writer waits for buffer room (flushes behind or failing)
    /// before its request is refused.
    pub max_write_wait: Duration,
    /// How long a segment file replaced by compaction or restamp stays on
    /// disk after its last reader, for programs that read the directory.
    pub retired_file_grace: Duration,
    /// Writes are refused while the WAL's or the segments' filesystem has
    /// fewer free bytes, so flushes and compactions can still finish.
    pub min_free_bytes: u64,
    /// How long a client's request id is remembered ([`requests`]).
    pub request_id_window: Duration,
    /// Where the durable file operations of the WAL, segments, snapshots
    /// and the manifest go ([`storage::disk::real`] in production; a
    /// fault-injecting disk in the fault tests). `segment.disk` is set
    /// from it when the engine opens.
    pub disk: Arc<dyn storage::Disk>,
}

/// Everything readers see, changed only under the lock: live segments and
/// buffered rows move together, so a snapshot never sees a row twice or not at all.
pub(crate) struct State {
    manifest: Manifest,
    buffers: Vec<TableBuffer>,
    /// One handle per live segment file; snapshots pin them (see [`Pins`]).
    files: HashMap<String, Arc<SegmentFile>>,
    /// Why the WAL stopped taking writes, once it has ([`commit`]).
    wal_stopped: Option<String>,
    /// Where retired segment files wait out their grace period.
    graveyard: Arc<Graveyard>,
    /// The seq of the newest committed audit entry, moved once its entries
    /// and rows are visible: what a change-feed reader waits on.
    committed: tokio::sync::watch::Sender<u64>,
}

impl State {
    fn new(
        manifest: Manifest,
        buffers: Vec<TableBuffer>,
        data_dir: &Path,
        graveyard: Arc<Graveyard>,
        committed_seq: u64,
    ) -> Self {
        let mut state = Self {
            manifest: Manifest::default(),
            buffers,
            files: HashMap::new(),
            wal_stopped: None,
            graveyard,
            committed: tokio::sync::watch::Sender::new(committed_seq),
        };
        let retired = state.set_manifest(manifest, data_dir);
        debug_assert!(retired.is_empty());
        state
    }

    /// Makes `manifest` current: adds handles for the segments it adds and
    /// retires those it no longer lists. Returns the retired handles, to be
    /// dropped after the state lock (a file is deleted with its last handle).
    #[must_use = "drop the retired handles after releasing the state lock"]
    fn set_manifest(&mut self, manifest: Manifest, data_dir: &Path) -> Vec<Arc<SegmentFile>> {
        let live = manifest.files();
        let gone: Vec<String> = self
            .files
            .keys()
            .filter(|f| !live.contains(f.as_str()))
            .cloned()
            .collect();
        let mut retired = Vec::with_capacity(gone.len());
        for file in gone {
            let handle = self.files.remove(&file).expect("listed handle");
            handle.retire();
            retired.push(handle);
        }
        for segment in manifest.tables.values().flatten() {
            self.files.entry(segment.file.clone()).or_insert_with(|| {
                SegmentFile::new(data_dir.join(&segment.file), self.graveyard.clone())
            });
        }
        self.manifest = manifest;
        retired
    }

    fn pins(&self, segments: &[SegmentMeta]) -> Pins {
        Pins::new(
            segments
                .iter()
                .filter_map(|s| self.files.get(&s.file).cloned())
                .collect(),
        )
    }
}

/// A consistent view of one table for a query. Its segment files stay on
/// disk while `pins` (or a clone) is held, even if a compaction or restamp
/// replaces them meanwhile: hold it until the files are read.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    pub segments: Vec<SegmentMeta>,
    pub buffered: Vec<RecordBatch>,
    pub pins: Pins,
}

/// One table's write buffer, as [`Engine::buffer_usage`] reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BufferUsage {
    pub table: &'static str,
    pub rows: usize,
    /// Memory the buffered batches keep alive ([`buffer::retained_bytes`]).
    pub bytes: usize,
}

pub struct Engine {
    /// This engine, for work that must outlive its caller (see `write_as`).
    me: std::sync::Weak<Engine>,
    config: EngineConfig,
    state: Arc<RwLock<State>>,
    wal: std::sync::mpsc::Sender<commit::Command>,
    flush_lock: Mutex<()>,
    /// Held by compaction and restamp for their whole run (one segment
    /// rewrite at a time); taken before `flush_lock`.
    rewrite_lock: Mutex<()>,
    compaction_totals: compact::Counters,
    /// Last-value cache per table (tables with a time column).
    last_values: Vec<Option<std::sync::Mutex<LastValues>>>,
    /// The lot graph, for the table with [`Cache::Genealogy`].
    genealogy: Option<(usize, std::sync::RwLock<GenealogyIndex>)>,
    /// Runs per equipment and equipment per tag, fed by the tables with
    /// [`Cache::Stamping`]; shared with the blocking task that stamps.
    stamp_index: Arc<std::sync::RwLock<StampIndex>>,
    /// Writers hold it shared from WAL append until their rows are in the
    /// last-value cache; a flush takes it exclusively around the WAL rotation
    /// so its cache snapshot covers every row it moves out of the WAL.
    merge_gate: Arc<tokio::sync::RwLock<()>>,
    /// The newest correction per sample, for the table with [`Cache::Corrections`].
    corrections: Option<(usize, std::sync::RwLock<Arc<corrections::CorrectionMap>>)>,
    /// Current keys of versioned tables; held across a versioned write.
    versions: Mutex<Versions>,
    /// Whether flushes are failing, since when and why.
    flush_health: std::sync::Mutex<flush::FlushHealth>,
    /// Ids of recent client requests, so a resend is not written twice.
    request_ids: requests::RequestIds,
    /// Keeps the table with [`model::KeyPolicy::OneRowPerKey`] to one row per key.
    keys: Option<unique_keys::KeyGuard>,
    _dir_lock: File,
}

/// Bytes of data a request carries, the measure `max_request_bytes` limits.
/// The bytes its columns' slices cover, not their allocations: columns
/// decoded from one Arrow IPC message all share that message's buffer, which
/// `get_array_memory_size` would count once per column.
pub fn request_bytes(batches: &[RecordBatch]) -> usize {
    batches
        .iter()
        .flat_map(RecordBatch::columns)
        .map(|column| {
            column
                .to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| column.get_array_memory_size())
        })
        .sum()
}

/// A request's batches checked and converted to `def`'s schema (empty ones
/// dropped; row numbers in errors count across the batches), and for
/// corrections stamped with `correction`'s caller and reason.
fn normalize_request(
    def: &'static TableDef,
    batches: &[RecordBatch],
    correction: Option<&WriteContext>,
    kept: &model::Grandfathered,
) -> Result<Vec<RecordBatch>, IngestError> {
    let mut offset = 0;
    let mut normalized = Vec::with_capacity(batches.len());
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        let mut checked = model::normalize_batch_keeping(def, batch, offset, kept)?;
        if let Some(ctx) = correction {
            checked = corrections::stamp(def, &checked, ctx, now, offset)?;
        }
        normalized.push(checked);
        offset += batch.num_rows();
    }
    Ok(normalized)
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
    pub fn open(mut config: EngineConfig) -> Result<Arc<Self>, IngestError> {
        // Segment paths become object-store locations, which are absolute: a
        // relative `--data-dir` would resolve from the filesystem root.
        config.data_dir = std::path::absolute(&config.data_dir)
            .map_err(storage::io_err(&config.data_dir))
            .map_err(IngestError::Storage)?;
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

        let manifest = Manifest::open(&*config.disk, dir)?;
        for orphan in storage::remove_orphans(&*config.disk, dir, &manifest)? {
            warn!(
                "removed {} (not in the manifest: left by an interrupted flush or restamp, or replaced by a compaction or restamp)",
                orphan.display()
            );
        }
        let mut buffers: Vec<TableBuffer> = model::tables()
            .iter()
            .map(|_| TableBuffer::default())
            .collect();
        let disk = config.disk.clone();
        // One disk for all: the segment writers take theirs from here.
        config.segment.disk = disk.clone();
        let recovered = recover(
            &*disk,
            &wal_dir,
            manifest.wal_replay_from,
            &mut buffers,
            config.wal_salvage,
        )?;
        let first_free = recovered
            .last_seq
            .map_or(0, |s| s + 1)
            .max(manifest.wal_replay_from)
            .max(1);
        let file = WalFile::create(&*disk, &wal_dir, first_free)?;
        let last_values = recover_last_values(dir, &manifest, &buffers)?;
        let mut genealogy = recover_genealogy(dir, &manifest, &buffers)?;
        let head = write_audit::recover_head(
            dir,
            &manifest,
            &buffers[write_audit::audit_table_id() as usize],
        )?;
        let stamp_index = Arc::new(std::sync::RwLock::new(recover_stamp_index(
            dir, &manifest, &buffers,
        )?));
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
                pins: Pins::default(),
            };
            *index.get_mut().expect("genealogy index lock") =
                versions::genealogy_without_tombstones(dir, def, snapshot)?;
        }
        let keys = model::tables()
            .iter()
            .position(|t| t.key_policy == model::KeyPolicy::OneRowPerKey)
            .map(|id| {
                let cache = last_values[id]
                    .as_ref()
                    .expect("last values of a one-row-per-key table");
                unique_keys::KeyGuard::recover(&cache.lock().expect("last values lock"))
            });
        let request_ids = requests::RequestIds::new(config.request_id_window);
        recovery::recover_request_ids(dir, &manifest, &buffers, &request_ids)?;
        let graveyard = Graveyard::new(disk.clone(), config.retired_file_grace);
        let state = Arc::new(RwLock::new(State::new(
            manifest, buffers, dir, graveyard, head.seq,
        )));
        let writer = commit::Writer {
            disk: disk.clone(),
            wal_dir,
            file,
            fsync: config.wal_fsync,
            head,
            stopped: None,
        };
        let wal = commit::spawn(writer, state.clone());
        if !recovered.salvaged.is_empty() {
            // Durable before anything else is written: the salvage is the
            // first thing the audit trail says after the damage.
            let (reply, done) = oneshot::channel();
            wal.send(commit::Command::Append {
                parts: Vec::new(),
                events: recovered.salvaged,
                reply,
            })
            .map_err(|_| WalError::Closed)?;
            futures::executor::block_on(done).map_err(|_| WalError::Closed)??;
        }
        Ok(Arc::new_cyclic(|me| Self {
            me: me.clone(),
            config,
            state,
            wal,
            flush_lock: Mutex::new(()),
            rewrite_lock: Mutex::new(()),
            compaction_totals: compact::Counters::default(),
            last_values,
            genealogy,
            stamp_index,
            merge_gate: Arc::new(tokio::sync::RwLock::new(())),
            versions: Mutex::new(versions),
            corrections,
            flush_health: Default::default(),
            request_ids,
            keys,
            _dir_lock: dir_lock,
        }))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The seq of the newest committed `audit_log` entry, changing as
    /// entries commit; an entry and the rows it describes are visible to
    /// queries by the time its seq is seen here.
    pub fn committed_seq(&self) -> tokio::sync::watch::Receiver<u64> {
        self.state.read().expect("state lock").committed.subscribe()
    }

    /// Why writes are refused until restart, if the WAL has failed.
    pub fn wal_stopped(&self) -> Option<String> {
        self.state.read().expect("state lock").wal_stopped.clone()
    }

    /// [`Engine::write_as`] for lotline's own writes ([`WriteContext::internal`]).
    pub async fn write(
        &self,
        def: &'static TableDef,
        batches: Vec<RecordBatch>,
    ) -> Result<usize, IngestError> {
        self.write_as(&WriteContext::internal(), def, batches).await
    }

    /// Validates and writes one request for `ctx`'s caller. The request is
    /// accepted whole or rejected whole; when this returns `Ok` (with the
    /// number of rows written) the rows and their `audit_log` entry are
    /// durable (per the WAL sync policy) and visible to queries. Writes to
    /// tables clients may not write (`audit_log`) are refused. A request
    /// whose `ctx.request_id` was written before (within the window) is not
    /// written again: the answer is the first write's row count.
    pub async fn write_as(
        &self,
        ctx: &WriteContext,
        def: &'static TableDef,
        batches: Vec<RecordBatch>,
    ) -> Result<usize, IngestError> {
        if ctx.request_id.is_none() {
            return self.write_once(ctx, def, batches).await;
        }
        // A write with an id runs in a task of its own: a client that goes
        // away mid-write (its call dropped) does not cancel it, so its id is
        // remembered exactly when its rows are durable, and a resend waits
        // for it instead of writing them again.
        let engine = self.me.upgrade().expect("the engine outlives its calls");
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let id = ctx.request_id.as_deref();
            engine
                .request_ids
                .once(id, || engine.write_once(&ctx, def, batches))
                .await
        })
        .await
        .map_err(|e| IngestError::Internal(format!("write task: {e}")))?
    }

    async fn write_once(
        &self,
        ctx: &WriteContext,
        def: &'static TableDef,
        batches: Vec<RecordBatch>,
    ) -> Result<usize, IngestError> {
        if !model::client_writable(def) {
            return Err(IngestError::ReadOnly(def.name));
        }
        let bytes = request_bytes(&batches);
        if bytes > self.config.max_request_bytes {
            return Err(IngestError::TooLarge {
                bytes,
                limit: self.config.max_request_bytes,
            });
        }
        let id = table_id(def);
        let versioned = def.is_versioned();
        let correction = def.has_cache(Cache::Corrections).then(|| ctx.clone());
        // Stamped before the WAL record is encoded, so the WAL, the buffer
        // and the segments all hold the stamped row.
        let stamp_index = (self.config.stamping && def.name == model::samples().name)
            .then(|| self.stamp_index.clone());
        let one_row_per_key = def.key_policy == model::KeyPolicy::OneRowPerKey;
        let kept = self.grandfathered(def).await?;
        let (normalized, record, span, accepted) =
            tokio::task::spawn_blocking(move || -> Result<_, IngestError> {
                let mut normalized = normalize_request(def, &batches, correction.as_ref(), &kept)?;
                let accepted = normalized.iter().map(RecordBatch::num_rows).sum::<usize>();
                // Versioned rows are encoded once stamped, under the version lock.
                if normalized.is_empty() || versioned {
                    return Ok((normalized, Vec::new(), None, accepted));
                }
                if let Some(index) = stamp_index {
                    let index = index.read().expect("stamp index lock");
                    normalized = index.stamp_all(normalized)?.0;
                }
                let mut span = None;
                if one_row_per_key {
                    let (kept, keys) = unique_keys::survey(def, normalized)?;
                    (normalized, span) = (kept, Some(keys));
                }
                let record = wal::encode_record(id as u8, &normalized)?;
                Ok((normalized, record, span, accepted))
            })
            .await
            .map_err(|e| IngestError::Internal(e.to_string()))??;
        if normalized.is_empty() {
            return Ok(0);
        }
        if let Some(span) = span {
            return self
                .commit_one_row_per_key(ctx, def, normalized, record, span, accepted)
                .await;
        }
        if versioned {
            return self
                .write_versioned(ctx, vec![(def, normalized)])
                .await
                .map(|rows| rows[0])
                .map_err(IngestError::without_part);
        }
        // A correction's audit entry gives the reasons its rows were stored
        // with (their own, else the request's).
        let reason = if def.has_cache(Cache::Corrections) {
            corrections::reasons(&normalized)
        } else {
            ctx.reason.clone()
        };
        self.commit(id, normalized, record, |rows| {
            ctx.write_event(def.name, rows).reason(reason)
        })
        .await
    }

    /// Appends `event` (a user change, a refused login) to `audit_log`.
    /// Durable (per the WAL sync policy) when this returns, with its seq.
    pub async fn audit(&self, event: crate::audit::Event) -> Result<u64, IngestError> {
        let (reply, done) = oneshot::channel();
        self.wal
            .send(commit::Command::Append {
                parts: Vec::new(),
                events: vec![event],
                reply,
            })
            .map_err(|_| WalError::Closed)?;
        Ok(done.await.map_err(|_| WalError::Closed)??)
    }

    /// Rows and bytes in the write buffers, all tables together.
    pub fn total_buffered(&self) -> (usize, usize) {
        let state = self.state.read().expect("state lock");
        state.buffers.iter().fold((0, 0), |(rows, bytes), b| {
            (rows + b.rows(), bytes + b.bytes())
        })
    }

    /// The newest row of every key of `def` (its last-value cache), or
    /// `None` for tables without a time column.
    pub fn last_values(&self, def: &TableDef) -> Option<RecordBatch> {
        self.last_values[table_id(def)]
            .as_ref()
            .map(|c| c.lock().expect("last values lock").batch())
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
        let segments = state.manifest.segments(def.name).to_vec();
        TableSnapshot {
            pins: state.pins(&segments),
            segments,
            buffered: state.buffers[table_id(def)].batches(),
        }
    }

    /// The manifest and `def`'s buffered rows, taken together (no flush in
    /// between: every row is in exactly one of them).
    fn manifest_and_buffered(&self, def: &TableDef) -> (Manifest, Vec<RecordBatch>) {
        let state = self.state.read().expect("state lock");
        (
            state.manifest.clone(),
            state.buffers[table_id(def)].batches(),
        )
    }

    /// Runs `job` (a flush, restamp or compaction) as a task of its own and
    /// waits for it. A manifest switch must not stop half way: if the
    /// caller's future is dropped (a client disconnects, a background loop
    /// is aborted at shutdown), the job still runs to its end holding its
    /// locks, so no other switch can overlap its manifest store.
    pub async fn run_to_completion<T, Fut>(
        self: &Arc<Self>,
        job: impl FnOnce(Arc<Self>) -> Fut,
    ) -> Result<T, IngestError>
    where
        Fut: std::future::Future<Output = Result<T, IngestError>> + Send + 'static,
        T: Send + 'static,
    {
        tokio::spawn(job(self.clone()))
            .await
            .map_err(|e| IngestError::Internal(format!("{e}")))?
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

    /// Rows and memory ([`buffer::retained_bytes`]) currently buffered (not yet in segments), per table.
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
}
