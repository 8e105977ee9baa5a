//! The write path's side of the audit trail: who writes ([`WriteContext`]),
//! sealing entries on the WAL thread in commit order, and rebuilding the
//! chain head on start.
//!
//! Entries are sealed by the one thread that orders the WAL, so seq order is
//! commit order and seq has no gaps; each group commit's data records and
//! the audit record of their entries go to the WAL as one group record, so
//! after a crash a write and its entry are both there or both gone.

use std::path::Path;

use arrow::array::RecordBatch;

use super::IngestError;
use super::buffer::TableBuffer;
use crate::audit::{self, Chain, Entry, Event};
use crate::model;
use crate::storage::{Manifest, segment};

/// Who is writing, over which interface, and why: what the audit entry of a
/// write names and what versioned tables and corrections record as
/// `recorded_by`/`corrected_by` and `reason`. Built by each interface from
/// the authenticated caller; the one context of [`super::Engine::write_as`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteContext {
    /// The authenticated user, or "anonymous" without authentication.
    pub actor: String,
    /// e.g. `flight_sql.ingest`, `flight_sql.dml`, `grpc.ingest`, `grpc.context`,
    /// `http.line_protocol`.
    pub interface: &'static str,
    /// The caller's `x-lotline-reason` (or `SET lotline.reason` prefix), if
    /// any; trimmed, never empty. A change to an existing versioned record
    /// is refused without one.
    pub reason: Option<String>,
    /// The client's id of this request, if it gave one: a resend with the
    /// same id is not written again ([`super::requests`]).
    pub request_id: Option<String>,
}

/// The call header that carries a client's request id (Flight ingest, HTTP).
pub const REQUEST_ID_HEADER: &str = "x-lotline-request-id";

/// The call header that carries a reason for a write (Flight, gRPC, HTTP).
pub const REASON_HEADER: &str = "x-lotline-reason";

impl WriteContext {
    pub fn new(actor: impl Into<String>, interface: &'static str) -> Self {
        Self {
            actor: actor.into(),
            interface,
            reason: None,
            request_id: None,
        }
    }

    /// The request's id (checked: it becomes part of the audit entry).
    pub fn with_request_id(mut self, id: Option<String>) -> Result<Self, IngestError> {
        if let Some(id) = &id {
            super::requests::validate(id)?;
        }
        self.request_id = id;
        Ok(self)
    }

    pub fn with_reason(mut self, reason: Option<String>) -> Self {
        self.reason = reason
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        self
    }

    /// Writes lotline makes itself (the demo plant). Without a reason, it
    /// can insert new versioned keys only.
    pub fn internal() -> Self {
        Self::new("lotline", "internal")
    }

    /// The audit event of an accepted write of `rows` rows into `table`.
    pub fn write_event(&self, table: &str, rows: usize) -> Event {
        self.event("write", table, rows)
    }

    /// The audit event of an accepted `action` (`write`, or `update` and
    /// `delete` of versioned records) of `rows` rows in `table`.
    pub fn event(&self, action: &str, table: &str, rows: usize) -> Event {
        self.event_with(action, table, rows, format!("interface={}", self.interface))
    }

    /// The audit event of `rows` version rows of a versioned `table`, all
    /// stamped `recorded_at`: the detail names that time, so the entry
    /// leads to exactly its rows in `X_history` (the change feed reads them
    /// so; a table's versions never share a `recorded_at`).
    pub fn version_event(&self, action: &str, table: &str, rows: usize, recorded_at: i64) -> Event {
        let detail = format!("interface={}{VERSION_MARKER}{recorded_at}", self.interface);
        self.event_with(action, table, rows, detail)
    }

    fn event_with(&self, action: &str, table: &str, rows: usize, detail: String) -> Event {
        Event {
            actor: self.actor.clone(),
            action: action.into(),
            table_name: Some(table.to_string()),
            row_count: Some(rows as u64),
            detail: Some(super::requests::detail_with(
                detail,
                self.request_id.as_deref(),
            )),
            reason: self.reason.clone(),
        }
    }
}

/// Marks the `recorded_at` of a versioned write in its audit `detail`
/// (before any request id, which comes last).
const VERSION_MARKER: &str = " version=";

/// The `recorded_at` of the version rows a write's audit `detail` names,
/// if it names one (entries written before lotline recorded it do not).
pub fn version_in(detail: &str) -> Option<i64> {
    let (_, rest) = detail.split_once(VERSION_MARKER)?;
    rest.split(' ').next()?.parse().ok()
}

/// Seals `events` after `head` (stamped now) and returns the entries, the
/// batch for the `audit_log` buffer and its encoded WAL record. `head` moves
/// only when the caller commits it, so a failed WAL append reuses the seqs.
pub(crate) fn seal(
    head: &Chain,
    events: Vec<Event>,
) -> Result<(Chain, RecordBatch, Vec<u8>), IngestError> {
    let mut chain = *head;
    let ts = chrono::Utc::now()
        .timestamp_nanos_opt()
        .expect("clock within the nanosecond range");
    let entries: Vec<Entry> = events.into_iter().map(|e| chain.seal(e, ts)).collect();
    let batch = audit::to_batch(&entries);
    let record = super::wal::encode_record(audit_table_id(), std::slice::from_ref(&batch))?;
    Ok((chain, batch, record))
}

pub(crate) fn audit_table_id() -> u8 {
    let id = super::table_id(model::audit_log());
    u8::try_from(id).expect("table ids fit the WAL's byte")
}

/// The chain head after recovery: the newest entry in the replayed WAL, or
/// else the last row of the last `audit_log` segment (segments are written
/// one per flush, in seq order), or the genesis head.
pub(crate) fn recover_head(
    data_dir: &Path,
    manifest: &Manifest,
    buffer: &TableBuffer,
) -> Result<Chain, IngestError> {
    let last_of = |batches: &[RecordBatch]| -> Result<Option<Chain>, IngestError> {
        let Some(batch) = batches.iter().rev().find(|b| b.num_rows() > 0) else {
            return Ok(None);
        };
        let entries = audit::from_batch(&batch.slice(batch.num_rows() - 1, 1))
            .map_err(|e| IngestError::Internal(e.to_string()))?;
        Ok(entries.last().map(Chain::after))
    };
    if let Some(head) = last_of(&buffer.batches())? {
        return Ok(head);
    }
    if let Some(meta) = manifest.segments(model::audit_log().name).last() {
        let batches = segment::read_parquet(&data_dir.join(&meta.file))?;
        if let Some(head) = last_of(&batches)? {
            return Ok(head);
        }
    }
    Ok(Chain::default())
}
