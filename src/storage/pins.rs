//! Reference-counted segment files, so a rewrite (compaction, restamp) can
//! replace segments under running queries.
//!
//! Every live segment has one [`SegmentFile`] handle, held by the engine's
//! state. A snapshot clones the handles of the segments it lists into its
//! [`Pins`]; whoever reads those files keeps the pins until it has finished
//! reading. A rewrite that takes a segment out of the manifest calls
//! [`SegmentFile::retire`] and drops the state's handle; the file is deleted
//! when the last handle goes, that is when the last reader that planned with
//! it lets go. The guarantee: a reader that took its snapshot before a
//! rewrite finishes with the files it planned. A retired file that a crash
//! left behind is not in the manifest and is removed on start like any orphan.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One segment file on disk; deleted on drop once retired.
#[derive(Debug)]
pub struct SegmentFile {
    path: PathBuf,
    retired: AtomicBool,
}

impl SegmentFile {
    pub fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            path,
            retired: AtomicBool::new(false),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Marks the file as no longer live: it is deleted when the last handle
    /// (the last reader's pin) is dropped.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        if !self.retired.load(Ordering::Acquire) {
            return;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => tracing::debug!("removed replaced segment {}", self.path.display()),
            // Not fatal: the file is no longer in the manifest, so the next
            // start removes it as an orphan.
            Err(e) => tracing::warn!(
                "could not remove replaced segment {} (removed on next start): {e}",
                self.path.display()
            ),
        }
    }
}

/// The segment files one snapshot lists; cheap to clone. Holding it keeps
/// those files on disk.
#[derive(Debug, Clone, Default)]
pub struct Pins(Arc<Vec<Arc<SegmentFile>>>);

impl Pins {
    pub fn new(files: Vec<Arc<SegmentFile>>) -> Self {
        Self(Arc::new(files))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retired_file_goes_with_the_last_pin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.parquet");
        std::fs::write(&path, b"x").unwrap();
        let live = SegmentFile::new(path.clone());
        let pins = Pins::new(vec![live.clone()]);
        live.retire();
        drop(live);
        assert!(path.exists(), "a reader still pins it");
        drop(pins);
        assert!(!path.exists(), "removed with the last pin");

        // Not retired: dropping every handle keeps the file.
        std::fs::write(&path, b"x").unwrap();
        drop(SegmentFile::new(path.clone()));
        assert!(path.exists());
    }
}
