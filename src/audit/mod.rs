//! The tamper-evident audit trail: entries of `audit_log`, their canonical
//! encoding and SHA-256 hash chain, and chain verification.
//!
//! Each entry's `hash` is SHA-256 over [`canonical_bytes`]: every field but
//! `hash`, in a fixed order, ending with `prev_hash` (the previous entry's
//! `hash`; [`GENESIS`], 32 zero bytes, for seq 1). Changing any stored byte of
//! an entry breaks its own hash; removing or reordering entries breaks a
//! `prev_hash` link or the gap-free `seq`. docs/AUDIT.md documents the format
//! so that anyone can re-verify a chain without lotline.
//!
//! This module is pure (no files, no network): the write path seals entries
//! with [`Chain::seal`], [`verify`] reads a data directory and checks it.

pub mod lineage;
pub mod rows_digest;
pub mod verify;

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, RecordBatch, StringArray, TimestampNanosecondArray,
    UInt64Array,
};
use arrow::datatypes::{TimestampNanosecondType, UInt64Type};

use crate::model;
pub use crate::storage::digest::{hex, sha256};

/// `prev_hash` of the first entry (seq 1).
pub const GENESIS: [u8; 32] = [0; 32];

/// First bytes of the canonical encoding: names the format version, so a
/// future encoding can never produce the same bytes as this one.
pub const ENCODING_TAG: &[u8; 4] = b"LLA1";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit_log batch: {0}")]
    Shape(String),
    #[error("{0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("{0}")]
    Wal(#[from] crate::storage::wal::WalError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Something to audit, before it has a place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The authenticated user, "anonymous" without authentication, or the
    /// user name a refused login claimed.
    pub actor: String,
    /// `write`, `user.add`, `user.remove`, `user.passwd`, `login.refused`.
    pub action: String,
    pub table_name: Option<String>,
    pub row_count: Option<u64>,
    /// Free text: the interface, and what changed.
    pub detail: Option<String>,
    /// The caller's reason (`x-lotline-reason`), if given.
    pub reason: Option<String>,
}

impl Event {
    pub fn new(actor: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            table_name: None,
            row_count: None,
            detail: None,
            reason: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn reason(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }
}

/// One row of `audit_log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    /// Nanoseconds since the epoch (UTC), when the entry was sealed.
    pub ts: i64,
    pub event: Event,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

fn put_present(out: &mut Vec<u8>) {
    out.push(1);
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    put_present(out);
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, v: &[u8]) {
    put_present(out);
    let len = u32::try_from(v.len()).expect("audit field under 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(v);
}

fn put_opt_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => put_bytes(out, s.as_bytes()),
        None => out.push(0),
    }
}

/// The canonical encoding an entry's hash covers (docs/AUDIT.md):
///
/// ```text
/// "LLA1" seq ts actor action table_name row_count detail reason prev_hash
/// ```
///
/// Each field starts with a marker byte: 0x00 null (nothing follows) or 0x01
/// present. A present integer is 8 bytes big-endian (`ts` as two's-complement
/// i64 nanoseconds); a present string (UTF-8) or byte string is a u32
/// big-endian length and the bytes. So null and "" differ, and no field can
/// bleed into the next.
pub fn canonical_bytes(seq: u64, ts: i64, event: &Event, prev_hash: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(ENCODING_TAG);
    put_u64(&mut out, seq);
    put_u64(&mut out, ts as u64);
    put_bytes(&mut out, event.actor.as_bytes());
    put_bytes(&mut out, event.action.as_bytes());
    put_opt_str(&mut out, event.table_name.as_deref());
    match event.row_count {
        Some(n) => put_u64(&mut out, n),
        None => out.push(0),
    }
    put_opt_str(&mut out, event.detail.as_deref());
    put_opt_str(&mut out, event.reason.as_deref());
    put_bytes(&mut out, prev_hash);
    out
}

impl Entry {
    /// The hash this entry's fields call for (compare with `hash`).
    pub fn expected_hash(&self) -> [u8; 32] {
        sha256(&canonical_bytes(
            self.seq,
            self.ts,
            &self.event,
            &self.prev_hash,
        ))
    }
}

/// The head of the chain: the last sealed entry's seq and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    /// 0 before the first entry.
    pub seq: u64,
    pub hash: [u8; 32],
}

impl Default for Chain {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS,
        }
    }
}

impl Chain {
    /// Gives `event` the next seq and links it to the head; the head moves on.
    pub fn seal(&mut self, event: Event, ts: i64) -> Entry {
        let seq = self.seq + 1;
        let prev_hash = self.hash.to_vec();
        let hash = sha256(&canonical_bytes(seq, ts, &event, &prev_hash));
        self.seq = seq;
        self.hash = hash;
        Entry {
            seq,
            ts,
            event,
            prev_hash,
            hash: hash.to_vec(),
        }
    }

    /// The head after `entry` (the newest entry read back on recovery).
    pub fn after(entry: &Entry) -> Self {
        let hash = entry.hash.as_slice().try_into().unwrap_or(GENESIS);
        Self {
            seq: entry.seq,
            hash,
        }
    }
}

/// `entries` as one batch of the `audit_log` schema.
pub fn to_batch(entries: &[Entry]) -> RecordBatch {
    let strings = |f: &dyn Fn(&Entry) -> Option<&str>| -> ArrayRef {
        Arc::new(entries.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(entries.iter().map(|e| e.seq).collect::<UInt64Array>()),
        Arc::new(
            TimestampNanosecondArray::from_iter_values(entries.iter().map(|e| e.ts))
                .with_timezone(model::UTC),
        ),
        strings(&|e| Some(e.event.actor.as_str())),
        strings(&|e| Some(e.event.action.as_str())),
        strings(&|e| e.event.table_name.as_deref()),
        Arc::new(
            entries
                .iter()
                .map(|e| e.event.row_count)
                .collect::<UInt64Array>(),
        ),
        strings(&|e| e.event.detail.as_deref()),
        strings(&|e| e.event.reason.as_deref()),
        Arc::new(BinaryArray::from_iter_values(
            entries.iter().map(|e| e.prev_hash.as_slice()),
        )),
        Arc::new(BinaryArray::from_iter_values(
            entries.iter().map(|e| e.hash.as_slice()),
        )),
    ];
    RecordBatch::try_new(model::audit_log().schema.clone(), columns)
        .expect("audit entries match the audit_log schema")
}

/// Reads the entries of an `audit_log` batch (from a segment or the WAL).
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<Entry>, AuditError> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| AuditError::Shape(format!("no column '{name}'")))
    };
    let shape = |name: &str| AuditError::Shape(format!("column '{name}' has the wrong type"));
    let u64s = |name: &str| -> Result<_, AuditError> {
        column(name)?
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| shape(name))
    };
    let strings = |name: &str| -> Result<_, AuditError> {
        column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| shape(name))
    };
    let bytes = |name: &str| -> Result<_, AuditError> {
        column(name)?
            .as_binary_opt::<i32>()
            .ok_or_else(|| shape(name))
    };
    let (seq, row_count) = (u64s("seq")?, u64s("row_count")?);
    let ts = column("ts")?
        .as_primitive_opt::<TimestampNanosecondType>()
        .ok_or_else(|| shape("ts"))?;
    let (actor, action, table_name) = (
        strings("actor")?,
        strings("action")?,
        strings("table_name")?,
    );
    let (detail, reason) = (strings("detail")?, strings("reason")?);
    let (prev_hash, hash) = (bytes("prev_hash")?, bytes("hash")?);
    let opt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
    Ok((0..batch.num_rows())
        .map(|i| Entry {
            seq: seq.value(i),
            ts: ts.value(i),
            event: Event {
                actor: actor.value(i).to_string(),
                action: action.value(i).to_string(),
                table_name: opt(table_name, i),
                row_count: row_count.is_valid(i).then(|| row_count.value(i)),
                detail: opt(detail, i),
                reason: opt(reason, i),
            },
            prev_hash: prev_hash.value(i).to_vec(),
            hash: hash.value(i).to_vec(),
        })
        .collect())
}

/// What is wrong with the chain, at the first entry where it goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The seq of the first bad entry (or, for a gap, the seq expected).
    pub seq: u64,
    pub reason: String,
}

/// Checks entries in chain order, one at a time, keeping only the head: so
/// a chain of any length is verified in constant memory.
#[derive(Debug, Default)]
pub struct ChainCheck {
    head: Chain,
    checked: u64,
    first_break: Option<Break>,
}

impl ChainCheck {
    /// Checks the next entry: seq follows the previous one, `prev_hash` is
    /// the previous `hash`, and `hash` matches the entry's fields. After the
    /// first break the rest is only counted (a break is reported once, at
    /// its first entry).
    pub fn push(&mut self, entry: &Entry) {
        self.checked += 1;
        if self.first_break.is_some() {
            return;
        }
        let expected_seq = self.head.seq + 1;
        let reason = if entry.seq != expected_seq {
            Some(format!(
                "seq {} where {expected_seq} was expected (entries missing or out of order)",
                entry.seq
            ))
        } else if entry.prev_hash != self.head.hash {
            Some(format!(
                "prev_hash {} does not match the hash of entry {} ({})",
                hex(&entry.prev_hash),
                self.head.seq,
                hex(&self.head.hash)
            ))
        } else if entry.hash != entry.expected_hash() {
            Some(format!(
                "stored hash {} does not match the entry's contents (expected {})",
                hex(&entry.hash),
                hex(&entry.expected_hash())
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => {
                self.first_break = Some(Break {
                    seq: expected_seq,
                    reason,
                });
            }
            None => self.head = Chain::after(entry),
        }
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The seq the next entry must have (where a hole would break the chain).
    pub fn next_seq(&self) -> u64 {
        self.first_break
            .as_ref()
            .map_or(self.head.seq + 1, |b| b.seq)
    }

    /// The first break, if any.
    pub fn finish(self) -> Option<Break> {
        self.first_break
    }
}

#[cfg(test)]
mod tests;
