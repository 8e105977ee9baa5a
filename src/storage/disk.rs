//! The durable file operations behind one interface, [`Disk`]: appending
//! to a log, fsync, truncating, replacing a file atomically (temporary
//! file, fsync, rename, directory fsync), renaming, removing. The WAL,
//! segment files, snapshots and the manifest are written through it
//! (what is not yet: docs/RELIABILITY.md).
//! [`RealDisk`] is the production implementation; `FaultyDisk` (in
//! `faulty.rs`) injects faults deterministically from a seed and simulates
//! a crash that loses everything not yet durable, for the fault tests.
//! Reads do not go through it: after a simulated crash the files on disk
//! are what a real crash would have left.
//!
//! What holds when a call returns `Ok`: [`DiskFile::sync`] makes every byte
//! written to that file before it durable; [`Disk::sync_dir`] makes every
//! create, rename and remove in that directory durable; nothing else is
//! durable until one of them returns. An `Err` leaves the state unknown:
//! the WAL treats it as fatal (TigerBeetle's rule) and stops.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, LazyLock};

/// A file opened for writing through a [`Disk`].
pub trait DiskFile: Write + Send + fmt::Debug {
    /// Makes everything written so far durable (fsync).
    fn sync(&mut self) -> io::Result<()>;
    /// Makes the bytes written so far and the length durable (fdatasync:
    /// cheaper, for appends to a log).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes (not durable until [`DiskFile::sync`]).
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// The file's length now.
    fn len(&self) -> io::Result<u64>;
}

/// The durable file operations (see the module comment for what each
/// guarantees).
pub trait Disk: Send + Sync + fmt::Debug {
    /// Opens `path` for appending, creating it when missing (the creation
    /// is durable after [`Disk::sync_dir`] of its directory).
    fn append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    /// Creates `path` empty (truncating an existing file) for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The process's real file system.
#[derive(Debug, Default)]
pub struct RealDisk;

/// The disk of production code paths.
pub fn real() -> Arc<dyn Disk> {
    static REAL: LazyLock<Arc<dyn Disk>> = LazyLock::new(|| Arc::new(RealDisk));
    REAL.clone()
}

#[derive(Debug)]
struct RealFile(File);

impl Write for RealFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl DiskFile for RealFile {
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl Disk for RealDisk {
    fn append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        Ok(Box::new(RealFile(File::create(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Replaces `path` with what `write` writes, atomically: a temporary file
/// `tmp` beside it is written, fsynced, renamed over `path`, and the
/// directory fsynced. A crash at any point leaves the old file or the new
/// one. Returns `write`'s result and the new file's length.
pub fn replace_with<T>(
    disk: &dyn Disk,
    path: &Path,
    tmp: &Path,
    write: impl FnOnce(&mut dyn DiskFile) -> io::Result<T>,
) -> io::Result<(T, u64)> {
    let mut file = disk.create(tmp)?;
    let written = write(file.as_mut())?;
    file.sync()?;
    let len = file.len()?;
    drop(file);
    disk.rename(tmp, path)?;
    disk.sync_dir(path.parent().expect("a file lives in a directory"))?;
    Ok((written, len))
}

/// [`replace_with`] of a byte string.
pub fn replace(disk: &dyn Disk, path: &Path, tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_with(disk, path, tmp, |file| file.write_all(bytes)).map(|_| ())
}
