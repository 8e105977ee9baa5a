//! `lotline inspect`: what is in a data directory — live segments per table,
//! WAL files and their records — read-only, safe beside a running server.

use std::path::Path;

use serde::Serialize;

use crate::model;
use crate::storage::wal;
use crate::storage::{Manifest, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Wal(#[from] wal::WalError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, Serialize)]
pub struct WalFileReport {
    pub file: String,
    pub bytes: u64,
    pub records: usize,
    pub rows: usize,
    /// Present when the file ends in a torn or corrupt record.
    pub damaged_tail: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub manifest: Manifest,
    pub wal: Vec<WalFileReport>,
}

pub fn inspect(data_dir: &Path) -> Result<Report, InspectError> {
    let manifest = Manifest::load(data_dir)?;
    let wal_dir = data_dir.join("wal");
    let mut files = Vec::new();
    let seqs = if wal_dir.exists() {
        wal::list_files(&wal_dir)?
    } else {
        Vec::new()
    };
    for seq in seqs {
        let path = wal_dir.join(wal::file_name(seq));
        let image = std::fs::read(&path).map_err(|e| InspectError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let (records, cut) = wal::decode_records(&image);
        files.push(WalFileReport {
            file: wal::file_name(seq),
            bytes: image.len() as u64,
            records: records.len(),
            rows: records
                .iter()
                .flat_map(|r| &r.batches)
                .map(|b| b.num_rows())
                .sum(),
            damaged_tail: cut
                .map(|c| format!("{} byte(s) at offset {}: {}", c.bytes, c.offset, c.reason)),
        });
    }
    Ok(Report {
        manifest,
        wal: files,
    })
}

fn fmt_time(ns: Option<i64>) -> String {
    ns.map(|n| {
        chrono::DateTime::from_timestamp_nanos(n)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    })
    .unwrap_or_else(|| "-".into())
}

/// A human-readable rendering of a report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.manifest;
    out += &format!(
        "manifest: format {}, next segment id {}, WAL replays from file {}\n",
        m.format_version, m.next_segment_id, m.wal_replay_from
    );
    for def in model::tables() {
        let segments = m.segments(def.name);
        let bytes: u64 = segments.iter().map(|s| s.bytes).sum();
        let rows = m.total_rows(def.name);
        let per_row = if rows > 0 {
            format!(", {:.2} bytes/row", bytes as f64 / rows as f64)
        } else {
            String::new()
        };
        out += &format!(
            "table {}: {} segment(s), {} rows, {} bytes{}\n",
            def.name,
            segments.len(),
            rows,
            bytes,
            per_row
        );
        for s in segments {
            out += &format!(
                "  {}  rows={} bytes={} time=[{} .. {}] {}=[{} .. {}]\n",
                s.file,
                s.rows,
                s.bytes,
                fmt_time(s.min_time),
                fmt_time(s.max_time),
                def.range_column,
                s.min_key.as_deref().unwrap_or("-"),
                s.max_key.as_deref().unwrap_or("-"),
            );
        }
    }
    out += &format!("wal: {} file(s)\n", report.wal.len());
    for w in &report.wal {
        out += &format!(
            "  {}  bytes={} records={} rows={}",
            w.file, w.bytes, w.records, w.rows
        );
        if let Some(d) = &w.damaged_tail {
            out += &format!("  DAMAGED TAIL: {d}");
        }
        out += "\n";
    }
    out
}
