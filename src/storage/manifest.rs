//! The manifest: which segment files are live, per table, and from which WAL
//! file recovery must replay. It is replaced atomically (write a temporary
//! file, fsync, rename, fsync the directory), so a reader or a restart sees
//! either the old or the new list, never a mix.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::disk::{self, Disk};
use super::{StorageError, io_err};

pub const FILE_NAME: &str = "manifest.json";

/// The data directory layout this lotline reads and writes. Bumped when the
/// files change in a way older data cannot be read as (2: versioned tables
/// store version columns; the WAL's table ids follow the current table list).
/// Format 1 named both the layout before that and the first one with it, so
/// a format 1 directory is refused as a whole.
pub const FORMAT_VERSION: u32 = 2;

/// What [`Manifest::load`] reads first: only the version, so that a manifest
/// of another format is reported as such, not as unparsable.
#[derive(Deserialize)]
struct FormatProbe {
    format_version: Option<u32>,
}

/// One live Parquet segment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SegmentMeta {
    pub id: u64,
    /// Path relative to the data directory.
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    /// Smallest and largest time (ns since epoch), for tables with a time column.
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    /// Smallest and largest value of the table's range column (e.g. `tag`).
    pub min_key: Option<String>,
    pub max_key: Option<String>,
    /// Hex SHA-256 of the file's bytes, computed as they were written
    /// (`lotline verify-audit` checks it). Absent only in manifests written
    /// before lotline recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[cfg(test)]
impl SegmentMeta {
    /// A segment of one row named `file`, for tests of manifest bookkeeping.
    pub fn named(file: &str) -> Self {
        Self {
            id: 0,
            file: file.into(),
            rows: 1,
            bytes: 1,
            min_time: None,
            max_time: None,
            min_key: None,
            max_key: None,
            sha256: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub next_segment_id: u64,
    /// WAL files numbered below this are fully contained in segments.
    pub wal_replay_from: u64,
    /// Live segments per table, oldest first (later segments win for
    /// latest-wins tables).
    pub tables: BTreeMap<String, Vec<SegmentMeta>>,
    /// Per table, the last-value snapshot file (relative path) taken at the
    /// flush that wrote this manifest; the WAL from `wal_replay_from` is
    /// merged over it on start.
    #[serde(default)]
    pub last_values: BTreeMap<String, String>,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            format_version: FORMAT_VERSION,
            next_segment_id: 1,
            wal_replay_from: 0,
            tables: BTreeMap::new(),
            last_values: BTreeMap::new(),
        }
    }
}

impl Manifest {
    /// Loads the manifest of `data_dir`, or an empty one on first start.
    /// A manifest of another format is refused ([`StorageError::Format`]).
    pub fn load(data_dir: &Path) -> Result<Self, StorageError> {
        let path = data_dir.join(FILE_NAME);
        let unreadable = |e: serde_json::Error| StorageError::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let probe: FormatProbe = serde_json::from_slice(&bytes).map_err(unreadable)?;
                if probe.format_version != Some(FORMAT_VERSION) {
                    return Err(StorageError::Format {
                        dir: data_dir.to_path_buf(),
                        found: probe
                            .format_version
                            .map_or("none".into(), |v| v.to_string()),
                        supported: FORMAT_VERSION,
                    });
                }
                serde_json::from_slice(&bytes).map_err(unreadable)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// The manifest of a data directory a server is about to open: as
    /// [`Self::load`], and on first start (no manifest, no WAL, no segments)
    /// a new one stored at once, so that every directory names its format
    /// from the start. Data without a manifest predates that and is refused.
    pub fn open(disk: &dyn Disk, data_dir: &Path) -> Result<Self, StorageError> {
        if data_dir.join(FILE_NAME).exists() {
            return Self::load(data_dir);
        }
        let has_files = |sub: &str| {
            let dir = data_dir.join(sub);
            walk_has_file(&dir).map_err(io_err(&dir))
        };
        if has_files("wal")? || has_files("tables")? {
            return Err(StorageError::Format {
                dir: data_dir.to_path_buf(),
                found: "none (WAL or segments without a manifest)".into(),
                supported: FORMAT_VERSION,
            });
        }
        let manifest = Self::default();
        manifest.store(disk, data_dir)?;
        Ok(manifest)
    }

    /// Atomically replaces the manifest of `data_dir`. Durable when this returns.
    pub fn store(&self, disk: &dyn Disk, data_dir: &Path) -> Result<(), StorageError> {
        let path = data_dir.join(FILE_NAME);
        let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
        let json = serde_json::to_vec_pretty(self).expect("manifest serializes");
        disk::replace(disk, &path, &tmp, &json).map_err(io_err(&path))
    }

    /// The files of every live segment, relative to the data directory.
    pub fn files(&self) -> std::collections::HashSet<&str> {
        self.tables
            .values()
            .flatten()
            .map(|s| s.file.as_str())
            .collect()
    }

    pub fn segments(&self, table: &str) -> &[SegmentMeta] {
        self.tables.get(table).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn total_rows(&self, table: &str) -> u64 {
        self.segments(table).iter().map(|s| s.rows).sum()
    }
}

/// Whether `dir` (missing: no) holds a file at any depth.
fn walk_has_file(dir: &Path) -> std::io::Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() || walk_has_file(&path)? {
            return Ok(true);
        }
    }
    Ok(false)
}
