//! The write path of versioned tables (context and master data; see
//! `model::versioned` for the storage): every accepted row becomes a version
//! stamped with server time, user, reason and op; a change to an existing
//! key needs a reason; SQL `UPDATE`/`DELETE` become appended versions and
//! tombstones computed from the current rows.
//!
//! Which keys are current is kept in memory (a set of 64-bit key hashes per
//! table, rebuilt on start from the key and `op` columns), so a write never
//! reads segments to learn whether its keys exist. All versioned writes go
//! through one lock: deciding insert-or-update and appending must not
//! interleave with another writer of the same key.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use arrow::array::{AsArray, RecordBatch};

use super::buffer::TableBuffer;
use super::genealogy_index::GenealogyIndex;
use super::{
    Engine, IngestError, REASON_HEADER, TableSnapshot, WriteContext, commit, replay_table,
    table_id, wal,
};
use crate::model::{self, Op, Stamp, TableDef};
use crate::storage::{Manifest, segment};

/// How a client gives a reason; every refusal for a missing one says it.
pub fn reason_hint() -> String {
    format!(
        "give a reason with the Flight SQL call header '{REASON_HEADER}' (ADBC: connection \
         option 'adbc.flight.sql.rpc.call_header.{REASON_HEADER}'), or start the SQL \
         statement with SET lotline.reason = '...';"
    )
}

/// A user function computing new rows (user schema) from the current rows of
/// a table: the `UPDATE` assignments or the `DELETE` selection.
pub type ChangeFn = Box<dyn FnOnce(RecordBatch) -> Result<RecordBatch, String> + Send>;

/// Current keys of every versioned table, and the version clock.
#[derive(Debug, Default)]
pub(crate) struct Versions {
    /// Last `recorded_at` handed out: versions get strictly increasing times.
    clock: i64,
    /// Per table id: hashes of the keys whose newest version is not a tombstone.
    live: Vec<Option<HashSet<u64>>>,
    /// Per table id: whether any tombstone was seen on recovery.
    tombstones: Vec<bool>,
}

/// 64-bit hashes of the keys of `batch`'s rows. A collision between two
/// distinct keys (odds about n²/2⁶⁵) would make a new key look existing and
/// need a reason; it can never hide a change.
fn key_hashes(def: &TableDef, batch: &RecordBatch) -> Result<Vec<u64>, IngestError> {
    let rows = model::key_rows(def, batch).map_err(|e| IngestError::Internal(e.to_string()))?;
    Ok(rows
        .iter()
        .map(|row| {
            let mut hasher = DefaultHasher::new();
            row.as_ref().hash(&mut hasher);
            hasher.finish()
        })
        .collect())
}

impl Versions {
    /// Rebuilds the live key sets from segments (manifest order) and the
    /// replayed buffers: rows arrive in write order, so the last op wins.
    pub(crate) fn recover(
        data_dir: &Path,
        manifest: &Manifest,
        buffers: &[TableBuffer],
    ) -> Result<Self, IngestError> {
        let mut versions = Versions::default();
        for (id, def) in model::tables().into_iter().enumerate() {
            if !def.is_versioned() {
                versions.live.push(None);
                versions.tombstones.push(false);
                continue;
            }
            let mut live = HashSet::new();
            let mut tombstones = false;
            let mut columns: Vec<&str> = def.key.to_vec();
            columns.extend(["recorded_at", "op"]);
            replay_table(data_dir, manifest, buffers, id, &columns, |batch| {
                let at = batch.column_by_name("recorded_at").expect("recorded_at");
                let at = at.as_primitive::<arrow::datatypes::TimestampNanosecondType>();
                for (i, hash) in key_hashes(def, batch)?.into_iter().enumerate() {
                    versions.clock = versions.clock.max(at.value(i));
                    if model::is_tombstone(batch, i) {
                        tombstones = true;
                        live.remove(&hash);
                    } else {
                        live.insert(hash);
                    }
                }
                Ok(())
            })?;
            versions.live.push(Some(live));
            versions.tombstones.push(tombstones);
        }
        Ok(versions)
    }

    pub(crate) fn had_tombstones(&self, id: usize) -> bool {
        self.tombstones[id]
    }

    fn next_time(&mut self) -> i64 {
        let now = chrono::Utc::now()
            .timestamp_nanos_opt()
            .expect("now fits in nanoseconds");
        self.clock = now.max(self.clock + 1);
        self.clock
    }
}

fn now_or_internal<T>(r: Result<T, arrow::error::ArrowError>) -> Result<T, IngestError> {
    r.map_err(|e| IngestError::Internal(e.to_string()))
}

/// One table's rows of a request.
pub type TablePart = (&'static TableDef, Vec<RecordBatch>);

impl Versions {
    /// The op of every row of `normalized` (validated rows of `def`): an
    /// update when its key is current or appears earlier in the same rows,
    /// which needs `ctx.reason`. Returns the ops per batch and the hashes of
    /// the keys that become current.
    fn plan(
        &self,
        def: &'static TableDef,
        normalized: &[RecordBatch],
        ctx: &WriteContext,
    ) -> Result<(Vec<Vec<Op>>, HashSet<u64>), IngestError> {
        let live = self.live[table_id(def)]
            .as_ref()
            .expect("versioned table has keys");
        let mut fresh: HashSet<u64> = HashSet::new();
        let mut planned = Vec::with_capacity(normalized.len());
        let mut offset = 0;
        for batch in normalized {
            let mut ops = Vec::with_capacity(batch.num_rows());
            for (row, hash) in key_hashes(def, batch)?.into_iter().enumerate() {
                let exists = live.contains(&hash) || !fresh.insert(hash);
                if exists && ctx.reason.is_none() {
                    return Err(IngestError::ReasonRequired {
                        table: def.name,
                        key: model::describe_key(def, batch, row),
                        op: "rewriting",
                        row: offset + row,
                    });
                }
                ops.push(if exists { Op::Update } else { Op::Insert });
            }
            offset += batch.num_rows();
            planned.push(ops);
        }
        Ok((planned, fresh))
    }
}

impl Engine {
    /// Validates and writes rows of several versioned tables (`parts`, each
    /// table at most once) for `ctx`'s caller as one atomic request: the
    /// rules of [`Engine::write_as`] apply per table (validation; a reason
    /// for rows whose key is current or earlier in the same part).
    ///
    /// On `Ok` (rows written per part) every part is durable (per the WAL
    /// sync policy) in one WAL group record, so after a crash all parts are
    /// there or none; all rows carry the same `recorded_at`; each table got
    /// one `audit_log` entry; and all of it is visible to queries and in the
    /// caches (genealogy, stamping). On `Err` nothing was written; a problem
    /// with one part's rows is [`IngestError::InPart`], naming the part.
    pub async fn write_tables_as(
        &self,
        ctx: &WriteContext,
        parts: Vec<TablePart>,
    ) -> Result<Vec<usize>, IngestError> {
        let normalized = self.checked_parts(parts).await?;
        let mut versions = self.versions.lock().await;
        self.write_versioned_locked(&mut versions, ctx, normalized)
            .await
    }

    /// [`Engine::write_tables_as`] of the parts `compute` makes from the
    /// current rows (user schema) of the tables `read`, under the version
    /// lock: no other versioned write lands between the read and the write
    /// (a read-modify-write such as a B2MML import that keeps the columns a
    /// document leaves out). `compute`'s own refusal comes back as the
    /// inner `Err`, with nothing written.
    pub async fn write_tables_from_current<E>(
        &self,
        ctx: &WriteContext,
        read: &[&'static TableDef],
        compute: impl FnOnce(&HashMap<&'static str, RecordBatch>) -> Result<Vec<TablePart>, E>,
    ) -> Result<Result<Vec<usize>, E>, IngestError> {
        let mut versions = self.versions.lock().await;
        let mut current = HashMap::new();
        for def in read {
            current.insert(def.name, self.current_rows(def).await?);
        }
        let parts = match compute(&current) {
            Ok(parts) if parts.is_empty() => return Ok(Ok(Vec::new())),
            Ok(parts) => parts,
            Err(refused) => return Ok(Err(refused)),
        };
        let normalized = self.checked_parts(parts).await?;
        let written = self
            .write_versioned_locked(&mut versions, ctx, normalized)
            .await?;
        Ok(Ok(written))
    }

    /// The parts of a multi-table write checked (each versioned table once,
    /// writable, within the request size) and validated.
    async fn checked_parts(&self, parts: Vec<TablePart>) -> Result<Vec<TablePart>, IngestError> {
        let mut seen = HashSet::new();
        if let Some((def, _)) = parts
            .iter()
            .find(|(def, _)| !def.is_versioned() || !seen.insert(def.name))
        {
            return Err(IngestError::Internal(format!(
                "a multi-table write takes each versioned table once, not '{}' here",
                def.name
            )));
        }
        for (part, (def, _)) in parts.iter().enumerate() {
            if !model::client_writable(def) {
                return Err(IngestError::ReadOnly(def.name).in_part(part, def));
            }
        }
        let bytes = parts.iter().map(|(_, b)| super::request_bytes(b)).sum();
        if bytes > self.config.max_request_bytes {
            return Err(IngestError::TooLarge {
                bytes,
                limit: self.config.max_request_bytes,
            });
        }
        let mut kept = Vec::with_capacity(parts.len());
        for (def, _) in &parts {
            kept.push(self.grandfathered(def).await?);
        }
        let normalized = tokio::task::spawn_blocking(move || {
            parts
                .into_iter()
                .zip(kept)
                .enumerate()
                .map(|(part, ((def, batches), kept))| {
                    super::normalize_request(def, &batches, None, &kept)
                        .map(|rows| (def, rows))
                        .map_err(|e| e.in_part(part, def))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| IngestError::Internal(e.to_string()))??;
        Ok(normalized)
    }

    /// Writes validated rows of versioned tables as one atomic request: every
    /// row becomes a version stamped with one server time, `ctx`'s user and
    /// reason; the request is refused whole if a row needs a reason it lacks
    /// ([`IngestError::InPart`]). Audited as a `write` per table (inserts
    /// and updates alike).
    pub(super) async fn write_versioned(
        &self,
        ctx: &WriteContext,
        parts: Vec<TablePart>,
    ) -> Result<Vec<usize>, IngestError> {
        let mut versions = self.versions.lock().await;
        self.write_versioned_locked(&mut versions, ctx, parts).await
    }

    /// [`Engine::write_versioned`] with the version lock held by the caller.
    async fn write_versioned_locked(
        &self,
        versions: &mut Versions,
        ctx: &WriteContext,
        parts: Vec<TablePart>,
    ) -> Result<Vec<usize>, IngestError> {
        let mut planned = Vec::with_capacity(parts.len());
        for (part, (def, normalized)) in parts.into_iter().enumerate() {
            let (ops, fresh) = versions
                .plan(def, &normalized, ctx)
                .map_err(|e| e.in_part(part, def))?;
            planned.push((def, normalized, ops, fresh));
        }
        let stamp = Stamp {
            recorded_at: versions.next_time(),
            recorded_by: &ctx.actor,
            reason: ctx.reason.as_deref(),
        };
        let (mut commits, mut events, mut written) = (Vec::new(), Vec::new(), Vec::new());
        for (def, normalized, ops, _) in &planned {
            let stored = normalized
                .iter()
                .zip(ops)
                .map(|(batch, ops)| now_or_internal(model::stamp(def, batch, ops, &stamp)))
                .collect::<Result<Vec<_>, _>>()?;
            let rows: usize = stored.iter().map(RecordBatch::num_rows).sum();
            written.push(rows);
            if rows == 0 {
                continue;
            }
            let id = table_id(def);
            let record = wal::encode_record(id as u8, &stored)?;
            events.push(ctx.version_event("write", def.name, rows, stamp.recorded_at));
            commits.push(commit::Part::new(id, record, stored));
        }
        if !commits.is_empty() {
            self.commit_parts(commits, events).await?;
        }
        for (def, _, _, fresh) in planned {
            versions.live[table_id(def)]
                .as_mut()
                .expect("versioned table has keys")
                .extend(fresh);
        }
        Ok(written)
    }

    /// What the current rows of `def` hold that its rules refuse today, for
    /// writes that carry it on unchanged ([`model::Grandfathered`]); read
    /// only for tables with such a rule.
    pub(super) async fn grandfathered(
        &self,
        def: &'static TableDef,
    ) -> Result<model::Grandfathered, IngestError> {
        if !def
            .rules
            .iter()
            .any(|r| matches!(r, model::Rule::UnitCode(_)))
        {
            return Ok(model::Grandfathered::default());
        }
        Ok(model::Grandfathered::of(
            def,
            &self.current_rows(def).await?,
        ))
    }

    /// `UPDATE` (op Update) or `DELETE` (op Delete, tombstones) of a versioned
    /// table: `change` maps the current rows to the rows to append. Runs under
    /// the version lock, so the current rows cannot change meanwhile.
    /// Audited as an `update` or `delete` with `ctx`'s user and reason.
    pub async fn change(
        &self,
        ctx: &WriteContext,
        def: &'static TableDef,
        op: Op,
        change: ChangeFn,
    ) -> Result<usize, IngestError> {
        assert!(
            def.is_versioned() && op.needs_reason(),
            "{op:?} on {}",
            def.name
        );
        let id = table_id(def);
        let mut versions = self.versions.lock().await;
        let current = self.current_rows(def).await?;
        let kept = model::Grandfathered::of(def, &current);
        let rows = change(current).map_err(IngestError::Statement)?;
        if rows.num_rows() == 0 {
            return Ok(0);
        }
        let rows = model::normalize_batch_keeping(def, &rows, 0, &kept)?;
        if ctx.reason.is_none() {
            return Err(IngestError::ReasonRequired {
                table: def.name,
                key: model::describe_key(def, &rows, 0),
                op: if op == Op::Delete {
                    "deleting"
                } else {
                    "updating"
                },
                row: 0,
            });
        }
        let hashes = key_hashes(def, &rows)?;
        let live = versions.live[id]
            .as_ref()
            .expect("versioned table has keys");
        assert!(
            hashes.iter().all(|h| live.contains(h)),
            "changes apply to current rows only"
        );
        let stamp = Stamp {
            recorded_at: versions.next_time(),
            recorded_by: &ctx.actor,
            reason: ctx.reason.as_deref(),
        };
        let ops = vec![op; rows.num_rows()];
        let stored = now_or_internal(model::stamp(def, &rows, &ops, &stamp))?;
        let record = wal::encode_record(id as u8, std::slice::from_ref(&stored))?;
        let written = self
            .commit(id, vec![stored], record, |rows| {
                ctx.version_event(op.as_str(), def.name, rows, stamp.recorded_at)
            })
            .await?;
        if op == Op::Delete {
            let live = versions.live[id]
                .as_mut()
                .expect("versioned table has keys");
            for hash in &hashes {
                live.remove(hash);
            }
            self.reload_genealogy_if(id).await?;
        }
        Ok(written)
    }

    /// Every stored row of `def` (stored schema), in write order: segments
    /// in manifest order, then the buffer.
    pub async fn all_versions(
        &self,
        def: &'static TableDef,
    ) -> Result<Vec<RecordBatch>, IngestError> {
        let snapshot = self.snapshot(def);
        let data_dir = self.data_dir().to_path_buf();
        tokio::task::spawn_blocking(move || read_versions(&data_dir, snapshot))
            .await
            .map_err(|e| IngestError::Internal(e.to_string()))?
    }

    /// The current version of every key of a versioned table (user schema).
    pub async fn current_rows(&self, def: &'static TableDef) -> Result<RecordBatch, IngestError> {
        let all = self.all_versions(def).await?;
        now_or_internal(model::resolve_current(def, &all))
    }

    /// Rebuilds the genealogy index from current rows when `id` is its
    /// table: the index has no removal, and deletes are rare.
    pub(super) async fn reload_genealogy_if(&self, id: usize) -> Result<(), IngestError> {
        let Some((table, index)) = self.genealogy.as_ref().filter(|(t, _)| *t == id) else {
            return Ok(());
        };
        let current = self.current_rows(model::tables()[*table]).await?;
        let rebuilt = GenealogyIndex::load([&current])?;
        *index.write().expect("genealogy index lock") = rebuilt;
        Ok(())
    }
}

/// Reads a snapshot's segments (in manifest order) and buffered rows.
pub(super) fn read_versions(
    data_dir: &Path,
    snapshot: TableSnapshot,
) -> Result<Vec<RecordBatch>, IngestError> {
    let mut all = Vec::new();
    for meta in &snapshot.segments {
        all.extend(segment::read_segment(data_dir, meta)?);
    }
    all.extend(snapshot.buffered);
    Ok(all)
}

/// The genealogy index over current rows only, for a table that has
/// tombstones (the streaming rebuild on start would keep deleted edges).
pub(super) fn genealogy_without_tombstones(
    data_dir: &Path,
    def: &TableDef,
    snapshot: TableSnapshot,
) -> Result<GenealogyIndex, IngestError> {
    let all = read_versions(data_dir, snapshot)?;
    let current = now_or_internal(model::resolve_current(def, &all))?;
    Ok(GenealogyIndex::load([&current])?)
}
