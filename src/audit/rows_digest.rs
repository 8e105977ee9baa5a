//! The audit entry of a write proves its rows: its `detail` carries the
//! SHA-256 of the WAL record that holds them (` rows_sha256=<hex>`), sealed
//! into the chain with the entry. A write's record and its entry are in one
//! WAL group, so a record changed after it was written (its checksums
//! recomputed) matches no entry of its group: [`check_group`] says so, and
//! recovery then treats the group as damaged (it never serves the rows, nor
//! flushes them into a segment that would launder them), and
//! `verify-audit` reports it. Once flushed, rows are in segments whose
//! SHA-256 the chain's lineage entries hold.

use crate::model;
use crate::storage::wal::Record;

use super::{from_batch, hex};

/// Marks the digest in a write's `detail`.
const MARKER: &str = " rows_sha256=";

/// `detail` with the digest of the write's record, right after its first
/// word (`interface=…`), so the markers other readers look for (a version,
/// a request id that must come last) keep their places.
pub fn with_rows_digest(detail: &str, sha256: &[u8; 32]) -> String {
    let at = detail.find(' ').unwrap_or(detail.len());
    format!("{}{MARKER}{}{}", &detail[..at], hex(sha256), &detail[at..])
}

/// The digest a write's `detail` records, if any (entries written before
/// lotline recorded it have none).
pub fn rows_digest_in(detail: &str) -> Option<&str> {
    let (_, rest) = detail.split_once(MARKER)?;
    rest.split(' ').next()
}

/// Checks one WAL group: every data record's SHA-256 is the digest of one
/// of the group's audit entries, and every digest an entry names is one of
/// the group's records. A group whose entries name no digest (written before
/// lotline recorded them) passes.
pub fn check_group(records: &[Record]) -> Result<(), String> {
    let audit_id = model::tables()
        .iter()
        .position(|t| t.name == model::audit_log().name)
        .expect("audit_log is a table") as u8;
    let mut named: Vec<(u64, String)> = Vec::new();
    for record in records.iter().filter(|r| r.table_id == audit_id) {
        for batch in &record.batches {
            let entries = from_batch(batch).map_err(|e| format!("audit record: {e}"))?;
            // Only an entry of rows written names a digest (other entries'
            // details hold free text, such as a collector's error).
            named.extend(entries.into_iter().filter_map(|e| {
                e.event.table_name.as_ref()?;
                let digest = rows_digest_in(e.event.detail.as_deref()?)?;
                Some((e.seq, digest.to_string()))
            }));
        }
    }
    if named.is_empty() {
        return Ok(());
    }
    for record in records.iter().filter(|r| r.table_id != audit_id) {
        let digest = hex(&record.sha256);
        match named.iter().position(|(_, d)| *d == digest) {
            Some(i) => {
                named.swap_remove(i);
            }
            None => {
                let table = model::tables()
                    .get(record.table_id as usize)
                    .map_or("an unknown table", |t| t.name);
                return Err(format!(
                    "a record of table '{table}' (SHA-256 {digest}) matches no audit entry of its \
                     group: changed after it was written"
                ));
            }
        }
    }
    match named.first() {
        Some((seq, digest)) => Err(format!(
            "audit entry seq {seq} names rows with SHA-256 {digest}, which no record of its group has"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_goes_after_the_first_word_and_is_read_back() {
        let sha = [0xab; 32];
        let detail = with_rows_digest("interface=grpc.ingest version=7 request_id=a b", &sha);
        assert_eq!(
            detail,
            format!(
                "interface=grpc.ingest rows_sha256={} version=7 request_id=a b",
                "ab".repeat(32)
            )
        );
        assert_eq!(rows_digest_in(&detail), Some("ab".repeat(32).as_str()));
        assert_eq!(
            with_rows_digest("interface=x", &sha),
            format!("interface=x rows_sha256={}", "ab".repeat(32))
        );
        assert_eq!(rows_digest_in("interface=x"), None);
    }
}
