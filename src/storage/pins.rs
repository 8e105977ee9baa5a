//! Reference-counted segment files, so a rewrite (compaction, restamp) can
//! replace segments under running queries.
//!
//! Every live segment has one [`SegmentFile`] handle, held by the engine's
//! state. A snapshot clones the handles of the segments it lists into its
//! [`Pins`]; whoever reads those files keeps the pins until it has finished
//! reading. A rewrite that takes a segment out of the manifest calls
//! [`SegmentFile::retire`] and drops the state's handle; when the last handle
//! goes, that is when the last reader that planned with it lets go, the file
//! goes to the [`Graveyard`], which deletes it after a grace period for
//! readers of the directory. The guarantee: a reader that took its snapshot
//! before a rewrite finishes with the files it planned. A retired file that a crash
//! left behind is not in the manifest and is removed on start like any orphan.

use super::disk::Disk;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One segment file on disk; handed to the [`Graveyard`] on drop once retired.
#[derive(Debug)]
pub struct SegmentFile {
    path: PathBuf,
    retired: AtomicBool,
    graveyard: Arc<Graveyard>,
}

impl SegmentFile {
    pub fn new(path: PathBuf, graveyard: Arc<Graveyard>) -> Arc<Self> {
        Arc::new(Self {
            path,
            retired: AtomicBool::new(false),
            graveyard,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Marks the file as no longer live: it goes to the graveyard when the
    /// last handle (the last reader's pin) is dropped.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        if self.retired.load(Ordering::Acquire) {
            self.graveyard.bury(std::mem::take(&mut self.path));
        }
    }
}

/// Retired segment files wait here for a grace period before they are
/// deleted: programs that read the directory themselves (DuckDB, Spark)
/// may have listed a file just before lotline replaced it, and must not
/// fail mid-query. A file is deleted at the first sweep after its grace
/// (sweeps run whenever a file is buried and after every flush); one a
/// stop left here is not in the manifest and is removed on start.
#[derive(Debug)]
pub struct Graveyard {
    disk: Arc<dyn Disk>,
    grace: Duration,
    /// Files and when they may go, oldest first.
    due: Mutex<VecDeque<(Instant, PathBuf)>>,
}

impl Graveyard {
    pub fn new(disk: Arc<dyn Disk>, grace: Duration) -> Arc<Self> {
        Arc::new(Self {
            disk,
            grace,
            due: Mutex::default(),
        })
    }

    fn bury(&self, path: PathBuf) {
        self.due
            .lock()
            .expect("graveyard lock")
            .push_back((Instant::now() + self.grace, path));
        self.sweep();
    }

    /// Deletes every file whose grace has passed; returns how many.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let gone: Vec<PathBuf> = {
            let mut due = self.due.lock().expect("graveyard lock");
            let ready = due.iter().take_while(|(at, _)| *at <= now).count();
            due.drain(..ready).map(|(_, path)| path).collect()
        };
        for path in &gone {
            match self.disk.remove(path) {
                Ok(()) => tracing::debug!("removed replaced segment {}", path.display()),
                // Not fatal: the file is no longer in the manifest, so the
                // next start removes it as an orphan.
                Err(e) => tracing::warn!(
                    "could not remove replaced segment {} (removed on next start): {e}",
                    path.display()
                ),
            }
        }
        gone.len()
    }

    /// Retired files still kept for readers of the directory.
    pub fn len(&self) -> usize {
        self.due.lock().expect("graveyard lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let graveyard = Graveyard::new(crate::storage::disk::real(), Duration::ZERO);
        let live = SegmentFile::new(path.clone(), graveyard.clone());
        let pins = Pins::new(vec![live.clone()]);
        live.retire();
        drop(live);
        assert!(path.exists(), "a reader still pins it");
        drop(pins);
        assert!(!path.exists(), "removed with the last pin");

        // Not retired: dropping every handle keeps the file.
        std::fs::write(&path, b"x").unwrap();
        drop(SegmentFile::new(path.clone(), graveyard));
        assert!(path.exists());
    }

    #[test]
    fn a_retired_file_outlives_its_last_pin_by_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.parquet");
        std::fs::write(&path, b"x").unwrap();
        let graveyard = Graveyard::new(crate::storage::disk::real(), Duration::from_millis(200));
        let file = SegmentFile::new(path.clone(), graveyard.clone());
        file.retire();
        drop(file);
        assert_eq!((path.exists(), graveyard.len()), (true, 1));
        assert_eq!(graveyard.sweep(), 0, "still within its grace");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(graveyard.sweep(), 1);
        assert!(!path.exists());
    }
}
