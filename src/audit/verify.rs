//! `lotline verify-audit` and `verify_audit()`: checks the audit chain
//! (every entry's hash, every `prev_hash` link, seq gap-free from 1) and
//! every live segment file's SHA-256 against the manifest, and names the
//! first broken entry (seq) and every file that does not match (path). It
//! also replays the chain's segment lineage ([`super::lineage`]) and names
//! every file where the manifest and the chain disagree.
//!
//! Offline ([`verify_data_dir`]) it reads the files directly: the manifest,
//! the immutable segments it lists, and the WAL read-only. That is safe
//! beside a running server: segments never change once written, and if a
//! flush removes a WAL file while it is read, the check starts over from the
//! new manifest. Online ([`verify_parts`]) the server passes its manifest and
//! its buffered audit rows instead of the WAL.

use std::path::Path;

use arrow::array::RecordBatch;
use serde::Serialize;

use super::lineage::Lineage;
use super::{AuditError, Break, ChainCheck, from_batch};
use crate::model;
use crate::storage::wal;
use crate::storage::{Manifest, StorageError, digest, segment};

/// A segment file whose bytes do not match the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadFile {
    /// Path relative to the data directory, as the manifest lists it.
    pub file: String,
    pub reason: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub entries_checked: u64,
    pub segments_checked: u64,
    /// The seq of the first entry that breaks the chain, and why.
    pub first_broken_seq: Option<u64>,
    pub broken_reason: Option<String>,
    pub bad_files: Vec<BadFile>,
    /// Segments where the manifest and the chain's lineage entries disagree.
    pub lineage: Vec<BadFile>,
    /// Things worth knowing that are not failures (a torn WAL tail: an
    /// unacknowledged write that recovery will drop).
    pub notes: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.first_broken_seq.is_none() && self.bad_files.is_empty() && self.lineage.is_empty()
    }

    /// One line: what was checked and whether it passed.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} audit entries checked, {} segment files checked{}",
            if self.ok() {
                "audit OK"
            } else {
                "audit FAILED"
            },
            self.entries_checked,
            self.segments_checked,
            match (
                self.first_broken_seq,
                self.bad_files.len(),
                self.lineage.len()
            ) {
                (None, 0, 0) => String::new(),
                (seq, files, lineage) => format!(
                    "; first broken entry: {}; files not matching the manifest: {files}; \
                     segments not matching the audit chain: {lineage}",
                    seq.map_or("none".to_string(), |s| format!("seq {s}"))
                ),
            }
        )
    }

    fn broke(&mut self, b: Break) {
        self.first_broken_seq = Some(b.seq);
        self.broken_reason = Some(b.reason);
    }
}

/// The report as text: the summary, then each finding on its own line.
pub fn render(report: &Report) -> String {
    let mut out = format!("{}\n", report.summary());
    if let (Some(seq), Some(reason)) = (report.first_broken_seq, &report.broken_reason) {
        out.push_str(&format!("BROKEN entry seq {seq}: {reason}\n"));
    }
    for f in &report.bad_files {
        out.push_str(&format!("BROKEN file {}: {}\n", f.file, f.reason));
    }
    for f in &report.lineage {
        out.push_str(&format!("BROKEN lineage {}: {}\n", f.file, f.reason));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// Checks `data_dir` from its files. Fails only when the files cannot be
/// read at all; a broken chain or file is a [`Report`] that is not `ok`.
pub fn verify_data_dir(data_dir: &Path) -> Result<Report, AuditError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let manifest = Manifest::load(data_dir)?;
        match wal_audit_batches(data_dir, manifest.wal_replay_from) {
            Ok(wal) => {
                let mut report = verify_parts(data_dir, &manifest, &wal.batches)?;
                report.notes.extend(wal.notes);
                report.bad_files.extend(wal.bad);
                return Ok(report);
            }
            // A running server's flush removed a WAL file just now: its rows
            // are in segments of a newer manifest. Start over.
            Err(AuditError::Wal(wal::WalError::Io { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound && attempts < 5 => {}
            Err(e) => return Err(e),
        }
    }
}

/// The `audit_log` batches in the WAL from file `from` on, read-only, and
/// what its groups show.
fn wal_audit_batches(data_dir: &Path, from: u64) -> Result<WalAudit, AuditError> {
    let dir = data_dir.join("wal");
    if !dir.exists() {
        return Ok(WalAudit {
            batches: Vec::new(),
            notes: Vec::new(),
            bad: Vec::new(),
        });
    }
    let audit_id = model::tables()
        .iter()
        .position(|t| t.name == model::audit_log().name)
        .expect("audit_log is a table");
    let (mut batches, mut notes, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    for seq in wal::list_files(&dir)?.into_iter().filter(|&s| s >= from) {
        let check = &super::rows_digest::check_group;
        let (records, cut) = wal::read_records(&dir.join(wal::file_name(seq)), check)?;
        if let Some(cut) = cut.as_ref().filter(|c| c.failed_check()) {
            bad.push(BadFile {
                file: format!("wal/{}", wal::file_name(seq)),
                reason: format!("offset {}: {}", cut.offset, cut.reason),
            });
        } else if let Some(cut) = cut {
            notes.push(format!(
                "wal/{} ends in {} unreadable byte(s) at offset {} ({}): an unacknowledged write that recovery drops",
                wal::file_name(seq),
                cut.bytes,
                cut.offset,
                cut.reason
            ));
        }
        batches.extend(
            records
                .into_iter()
                .filter(|r| r.table_id as usize == audit_id)
                .flat_map(|r| r.batches),
        );
    }
    Ok(WalAudit {
        batches,
        notes,
        bad,
    })
}

/// What the WAL holds for verification.
struct WalAudit {
    /// Its `audit_log` batches, in order.
    batches: Vec<RecordBatch>,
    /// A torn tail, which recovery drops.
    notes: Vec<String>,
    /// Groups whose records do not match their audit entries.
    bad: Vec<BadFile>,
}

/// Checks every live segment of `manifest` against its recorded SHA-256,
/// then the chain: the `audit_log` segments in manifest order, then
/// `unflushed` (audit batches not yet in segments, in seq order).
pub fn verify_parts(
    data_dir: &Path,
    manifest: &Manifest,
    unflushed: &[RecordBatch],
) -> Result<Report, AuditError> {
    let mut report = Report::default();
    for meta in manifest.tables.values().flatten() {
        report.segments_checked += 1;
        let path = data_dir.join(&meta.file);
        let reason = match (&meta.sha256, digest::file_sha256(&path)) {
            (None, _) => Some("the manifest records no sha256 for it".to_string()),
            (Some(_), Err(e)) => Some(format!("unreadable: {e}")),
            (Some(want), Ok(got)) if *want != got => {
                Some(format!("sha256 {got} does not match the manifest's {want}"))
            }
            _ => None,
        };
        if let Some(reason) = reason {
            report.bad_files.push(BadFile {
                file: meta.file.clone(),
                reason,
            });
        }
    }
    let mut chain = ChainCheck::default();
    let mut lineage = Lineage::default();
    let mut unreadable: Option<String> = None;
    for meta in manifest.segments(model::audit_log().name) {
        let names: Vec<&str> = model::audit_log()
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let mut shape_error = None;
        let scanned =
            segment::scan_parquet_columns(
                &data_dir.join(&meta.file),
                &names,
                |b| match from_batch(&b) {
                    Ok(entries) => entries.iter().for_each(|e| {
                        chain.push(e);
                        lineage.push(e);
                    }),
                    Err(e) => shape_error = shape_error.take().or(Some(e.to_string())),
                },
            );
        if let Some(why) = scanned
            .err()
            .map(|e: StorageError| e.to_string())
            .or(shape_error)
        {
            // The rest of the chain cannot be linked across a hole.
            unreadable = Some(format!("audit segment {} is unreadable: {why}", meta.file));
            break;
        }
    }
    if unreadable.is_none() {
        for batch in unflushed {
            from_batch(batch)?.iter().for_each(|e| {
                chain.push(e);
                lineage.push(e);
            });
        }
        for (seq, added, removed) in lineage.recovered() {
            report.notes.push(format!(
                "audit entry seq {seq} recorded at start {added} segment(s) added and {removed} removed \
                 that the chain lacked: a crash between a manifest commit and its entry, segments \
                 from before lineage was recorded, or a change made outside lotline"
            ));
        }
        // Without the whole chain, lineage would name files it has not seen.
        report.lineage = lineage
            .check(manifest)
            .into_iter()
            .map(|f| BadFile {
                file: f.file,
                reason: f.reason,
            })
            .collect();
    }
    report.entries_checked = chain.checked();
    let next_seq = chain.next_seq();
    match (chain.finish(), unreadable) {
        (Some(b), _) => report.broke(b),
        (None, Some(reason)) => report.broke(Break {
            seq: next_seq,
            reason,
        }),
        (None, None) => {}
    }
    Ok(report)
}
