//! One row per (tag, ts) in `samples` ([`KeyPolicy::OneRowPerKey`]), so a
//! writer that lost an acknowledgement (a client library's retry, a
//! gateway's store-and-forward buffer, Telegraf) may simply send again: an
//! exact resend of a reading is not written a second time, and a different
//! reading at a written key is kept in `sample_corrections` (who, when,
//! why), where it supersedes the first when `samples` is read: the newest
//! write wins, and nothing written is thrown away (`samples_raw` keeps the
//! first reading).
//!
//! Almost every write only adds new times, so it must stay cheap: the
//! [`KeyGuard`] keeps the times admitted per tag as a few intervals
//! ([`spans`]), and a request whose readings all lie outside their tags'
//! intervals is sent to the WAL at once (its keys cannot exist). A request
//! with a reading inside one (a resend, a backfill into a flushed range,
//! late data) takes the slow path: it
//! waits until every write admitted before it is in the buffer, looks its
//! keys up in the buffer and the segments ([`resolve`]), and writes what is
//! new. Slow paths run one at a time, so two resends of one reading never
//! both find it missing; admitting and sending happen under one lock, so a
//! write the guard admitted is in the WAL's order before any later one.

mod resolve;
mod spans;
mod survey;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use serde::Serialize;

use spans::Spans;
pub(super) use survey::{KeySpan, survey};

use super::corrections;
use super::last_value_cache::LastValues;
use super::{Engine, IngestError, WriteContext, commit, table_id, wal};
use crate::model::{self, Cache, TableDef};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The reason a superseding reading is stored with when its request gave none.
pub const SUPERSEDED_REASON: &str =
    "a later write of the same tag and ts with another reading (the newest write wins)";

/// A tag's name as the guard keys it: 64 bits of a fixed hash, so the map
/// every request reads holds no pointer to chase. Two names with one hash
/// share their intervals, which only sends more requests to the slow path
/// (whose lookup compares names): never a missed repeat.
pub(super) fn tag_hash(tag: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x6c6f_746c_696e_6521).hash_one(tag)
}

/// The times admitted per tag, and the one-at-a-time slow path.
pub(super) struct KeyGuard {
    admitted: Mutex<FastMap<u64, Spans>>,
    slow_path: tokio::sync::Mutex<()>,
    totals: Counters,
}

/// What the guard says of a request.
pub(super) enum Admission<'a> {
    /// No reading can repeat a key: send it while holding this.
    New(#[allow(dead_code)] MutexGuard<'a, FastMap<u64, Spans>>),
    /// A reading lies inside its tag's admitted times: the request takes
    /// the slow path.
    Late,
}

impl KeyGuard {
    /// A guard that knows the newest time of every tag in `last_values`
    /// (every acknowledged row is in it when the engine opens), and takes
    /// every older time as admitted.
    pub fn recover(last_values: &LastValues) -> Self {
        let mut admitted = FastMap::<u64, Spans>::default();
        for (tag, ts) in last_values.newest_times() {
            // Tags that share a hash share their intervals.
            admitted
                .entry(tag_hash(tag))
                .and_modify(|spans| spans.add(i64::MIN, ts))
                .or_insert_with(|| Spans::up_to(ts));
        }
        Self {
            admitted: Mutex::new(admitted),
            slow_path: tokio::sync::Mutex::new(()),
            totals: Counters::default(),
        }
    }

    /// Admits a request's keys: each tag's times join its admitted ones (so
    /// a later resend of any of them is late).
    pub fn admit(&self, span: &KeySpan) -> Admission<'_> {
        let mut admitted = self.admitted.lock().expect("key guard lock");
        let mut late = false;
        for t in &span.tags {
            let spans = admitted.entry(t.hash).or_default();
            late |= spans.overlaps(t.min, t.max);
            spans.add(t.min, t.max);
        }
        if late {
            Admission::Late
        } else {
            Admission::New(admitted)
        }
    }
}

/// How requests fared against the one-row-per-key rule since the start.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct KeyTotals {
    /// Requests that took the slow path (a reading inside its tag's admitted times).
    pub late_requests: u64,
    /// Readings written on the slow path (new keys: backfill, late data).
    pub late_rows: u64,
    /// Readings not written again: exact resends.
    pub resent_rows: u64,
    /// Different readings at written keys, kept as superseding corrections.
    pub superseding_rows: u64,
}

#[derive(Default)]
struct Counters {
    late_requests: AtomicU64,
    late_rows: AtomicU64,
    resent_rows: AtomicU64,
    superseding_rows: AtomicU64,
}

impl Engine {
    /// Writes a surveyed request of the table kept to one row per key.
    /// `record` encodes `batches`; `accepted` is the request's row count,
    /// the answer when this returns `Ok` whatever was new (every reading
    /// is then durable: written now or before).
    pub(super) async fn commit_one_row_per_key(
        &self,
        ctx: &WriteContext,
        def: &'static TableDef,
        batches: Vec<RecordBatch>,
        record: Vec<u8>,
        span: KeySpan,
        accepted: usize,
    ) -> Result<usize, IngestError> {
        let guard = self.keys.as_ref().expect("a key guard for this table");
        let id = table_id(def);
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let part = commit::Part::new(id, record, batches.clone());
        let event = ctx.write_event(def.name, rows).reason(ctx.reason.clone());
        if self
            .commit_admitted(vec![part], vec![event], Some(&span))
            .await?
        {
            return Ok(accepted);
        }
        let _one_at_a_time = guard.slow_path.lock().await;
        // Every write admitted before this one is now in the buffer (or failed).
        self.wal_barrier().await?;
        let snapshot = self.snapshot(def);
        let fixes = self.corrections();
        let data_dir = self.config.data_dir.clone();
        let resolved = tokio::task::spawn_blocking(move || {
            resolve::resolve(&data_dir, def, snapshot, &fixes, batches)
        })
        .await
        .map_err(|e| IngestError::Internal(e.to_string()))??;
        let counts = [
            (resolved.new_rows(), &guard.totals.late_rows),
            (resolved.resent, &guard.totals.resent_rows),
            (resolved.superseding_rows(), &guard.totals.superseding_rows),
            (1, &guard.totals.late_requests),
        ];
        let (parts, events) = self.superseding_parts(ctx, def, resolved)?;
        if !parts.is_empty() {
            self.commit_parts(parts, events).await?;
        }
        for (n, total) in counts {
            total.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(accepted)
    }

    /// The WAL parts and audit events of a resolved request: its new rows,
    /// and its superseding readings as rows of the corrections table.
    fn superseding_parts(
        &self,
        ctx: &WriteContext,
        def: &'static TableDef,
        resolved: resolve::Resolved,
    ) -> Result<(Vec<commit::Part>, Vec<crate::audit::Event>), IngestError> {
        let mut parts = Vec::new();
        let mut events = Vec::new();
        let new_rows = resolved.new_rows();
        let superseding = resolved.superseding_rows();
        if new_rows > 0 {
            let id = table_id(def);
            let record = wal::encode_record(id as u8, &resolved.new)?;
            parts.push(commit::Part::new(id, record, resolved.new));
            events.push(
                ctx.write_event(def.name, new_rows)
                    .reason(ctx.reason.clone()),
            );
        }
        if superseding > 0 {
            let (cid, cdef) = corrections_table();
            let reason = ctx.reason.as_deref().unwrap_or(SUPERSEDED_REASON);
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
            let rows = resolved
                .superseding
                .iter()
                .map(|b| as_correction(cdef, b, reason))
                .map(|b| corrections::stamp(cdef, &b?, ctx, now, 0))
                .collect::<Result<Vec<_>, _>>()?;
            let record = wal::encode_record(cid as u8, &rows)?;
            parts.push(commit::Part::new(cid, record, rows));
            events.push(
                ctx.write_event(cdef.name, superseding)
                    .reason(Some(reason.to_string())),
            );
        }
        Ok((parts, events))
    }

    /// Requests and readings against the one-row-per-key rule since start.
    pub fn key_totals(&self) -> KeyTotals {
        let Some(guard) = &self.keys else {
            return KeyTotals::default();
        };
        let t = &guard.totals;
        KeyTotals {
            late_requests: t.late_requests.load(Ordering::Relaxed),
            late_rows: t.late_rows.load(Ordering::Relaxed),
            resent_rows: t.resent_rows.load(Ordering::Relaxed),
            superseding_rows: t.superseding_rows.load(Ordering::Relaxed),
        }
    }
}

/// The table superseding readings are kept in (the one with [`Cache::Corrections`]).
fn corrections_table() -> (usize, &'static TableDef) {
    let tables = model::tables();
    let id = tables
        .iter()
        .position(|t| t.has_cache(Cache::Corrections))
        .expect("a corrections table");
    (id, tables[id])
}

/// Readings of `samples` as unstamped rows of the corrections table `cdef`
/// with `reason` ([`corrections::stamp`] sets who and when).
fn as_correction(
    cdef: &'static TableDef,
    batch: &RecordBatch,
    reason: &str,
) -> Result<RecordBatch, IngestError> {
    let n = batch.num_rows();
    let columns: Vec<ArrayRef> = cdef
        .schema
        .fields()
        .iter()
        .map(|field| match field.name().as_str() {
            "reason" => Arc::new(StringArray::from(vec![reason; n])) as ArrayRef,
            name => match batch.column_by_name(name) {
                Some(column) => column.clone(),
                None => arrow::array::new_null_array(field.data_type(), n),
            },
        })
        .collect();
    RecordBatch::try_new(cdef.schema.clone(), columns)
        .map_err(|e| IngestError::Internal(format!("superseding readings: {e}")))
}
