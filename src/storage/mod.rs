//! Files on disk: Parquet segments, the manifest, compaction's planning and
//! merging, the reference counts that keep replaced files until their last
//! reader is done, and clean-up of anything a crash left behind. Knows
//! nothing of the network or of SQL.

pub mod compaction;
pub mod digest;
pub mod disk;
pub mod faulty;
pub mod manifest;
pub mod merge;
pub mod pins;
pub mod segment;
pub mod wal;

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub use disk::{Disk, DiskFile};
pub use manifest::{Manifest, SegmentMeta};
pub use pins::{Graveyard, Pins, SegmentFile};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "data directory {dir} has format version {found}, and this lotline reads format \
         {supported} only. Export its tables with the lotline that wrote it (its segments \
         under tables/ are Parquet that DuckDB or pyarrow read directly; flush first so the \
         WAL is in them), then load them into a new data directory with \
         `lotline load FILE.parquet --table TABLE`",
        dir = dir.display()
    )]
    Format {
        dir: PathBuf,
        found: String,
        supported: u32,
    },
    #[error("manifest {path} is unreadable: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("parquet {path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Test hook, compiled into debug builds only: `LOTLINE_TEST_ABORT_AT=<point>`
/// aborts the process at `point`, to show what a crash there leaves behind.
pub fn crash_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("LOTLINE_TEST_ABORT_AT").is_ok_and(|p| p == point) {
        eprintln!("LOTLINE_TEST_ABORT_AT={point}: aborting");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Makes a directory entry change (create, rename, delete) durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Deletes the segment files of a manifest switch that failed, except any
/// the manifest on disk lists: a store can fail after its rename (the
/// directory fsync), and then the files are live. When the manifest cannot
/// be read, nothing is deleted; what is left over is an orphan the next
/// start removes. Best effort: errors are ignored for the same reason.
pub fn remove_uncommitted(disk: &dyn Disk, data_dir: &Path, written: &[SegmentMeta]) {
    let Ok(on_disk) = Manifest::load(data_dir) else {
        return;
    };
    let live = on_disk.files();
    for meta in written.iter().filter(|m| !live.contains(m.file.as_str())) {
        let _ = disk.remove(&data_dir.join(&meta.file));
    }
}

/// Deletes files under `data_dir/tables` that the manifest does not list:
/// segments a crash left between writing and the manifest commit, and
/// temporary files. Returns what it removed.
/// Bytes free for unprivileged writers on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a buffer statvfs fills on success.
    if unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

pub fn remove_orphans(
    disk: &dyn Disk,
    data_dir: &Path,
    manifest: &Manifest,
) -> Result<Vec<PathBuf>, StorageError> {
    let live: HashSet<PathBuf> = manifest.files().iter().map(|f| data_dir.join(f)).collect();
    let mut removed = Vec::new();
    let mut stack = vec![data_dir.join("tables")];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for entry in entries {
            let path = entry.map_err(io_err(&dir))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if !live.contains(&path) {
                disk.remove(&path).map_err(io_err(&path))?;
                removed.push(path);
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_switch_keeps_the_files_the_manifest_on_disk_lists() {
        let dir = tempfile::tempdir().unwrap();
        let live = SegmentMeta::named("tables/t/1.parquet");
        let lost = SegmentMeta::named("tables/t/2.parquet");
        std::fs::create_dir_all(dir.path().join("tables/t")).unwrap();
        for s in [&live, &lost] {
            std::fs::write(dir.path().join(&s.file), b"x").unwrap();
        }
        // The store renamed its manifest, then failed (e.g. the directory fsync).
        let mut manifest = Manifest::default();
        manifest.tables.insert("t".into(), vec![live.clone()]);
        manifest.store(&*disk::real(), dir.path()).unwrap();
        remove_uncommitted(&*disk::real(), dir.path(), &[live.clone(), lost.clone()]);
        assert!(dir.path().join(&live.file).exists());
        assert!(!dir.path().join(&lost.file).exists());
    }
}
