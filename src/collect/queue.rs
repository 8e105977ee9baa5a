//! The edge's store-and-forward queue: every batch of samples a collector
//! reads is appended to a file in the queue directory and fsynced before the
//! collector goes on, and leaves the queue only when the server acknowledged
//! it. A server or network outage of hours loses nothing that fits
//! `max_bytes`; a killed collector resumes from the queue.
//!
//! Files: `NNNNNNNNNNNNNNNNNNNN.queue` (the number of its first record),
//! records framed as WAL records (length, checksum, zstd Arrow IPC; a torn
//! last record is cut on open); `acked` holds the number of the first record
//! not yet acknowledged (replaced atomically); `instance` a random id that
//! makes the request ids of this queue unique, so a record resent after a
//! lost acknowledgement is not written twice by the server.
//!
//! When the files exceed `max_bytes`, the oldest file is dropped whole
//! (counted and logged): the newest data is worth more than the oldest.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use tokio::sync::Notify;

use crate::storage::{Disk, DiskFile, disk, wal};

/// A file is closed and a new one started past this size.
const FILE_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("queue: {0}")]
    Wal(#[from] wal::WalError),
    #[error(
        "the store-and-forward queue stopped taking batches after an I/O error ({0}); \
         restart `lotline collect` (what it acknowledged is kept)"
    )]
    Stopped(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> QueueError + '_ {
    move |source| QueueError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug)]
struct QueueFile {
    first: u64,
    path: PathBuf,
    bytes: u64,
    records: u64,
}

#[derive(Debug)]
struct Inner {
    files: VecDeque<QueueFile>,
    writer: Box<dyn DiskFile>,
    /// Number of the next record appended.
    next: u64,
    /// Records before this one are acknowledged.
    acked: u64,
    /// Records dropped because the queue was full.
    dropped: u64,
    /// The decoded records of the file being forwarded: (its first, records).
    reading: Option<(u64, Vec<RecordBatch>)>,
    /// Set by a failed append: the file's end is unknown, so nothing more
    /// is appended until a restart cuts it (fail-stop, as the WAL).
    stopped: Option<String>,
}

/// A durable FIFO of sample batches on disk.
#[derive(Debug)]
pub struct Queue {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    max_bytes: u64,
    /// Makes this queue's request ids unique.
    pub instance: String,
    inner: Mutex<Inner>,
    pushed: Notify,
}

fn file_name(first: u64) -> String {
    format!("{first:020}.queue")
}

impl Queue {
    /// Opens (or creates) the queue in `dir`, cutting a torn last record.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, QueueError> {
        Self::open_on(disk::real(), dir, max_bytes)
    }

    /// [`Queue::open`] writing through `disk` (a fault-injecting one in tests).
    pub fn open_on(disk: Arc<dyn Disk>, dir: &Path, max_bytes: u64) -> Result<Self, QueueError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let instance_path = dir.join("instance");
        let instance = match std::fs::read_to_string(&instance_path) {
            Ok(id) => id.trim().to_string(),
            Err(_) => {
                let id = format!("{:032x}", rand::random::<u128>());
                wal::replace(&*disk, &instance_path, id.as_bytes())?;
                id
            }
        };
        let acked = std::fs::read_to_string(dir.join("acked"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let mut firsts: Vec<u64> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".queue")?.parse().ok()
            })
            .collect();
        firsts.sort_unstable();
        let mut files = VecDeque::new();
        let mut next = acked;
        for first in firsts {
            let path = dir.join(file_name(first));
            let image = std::fs::read(&path).map_err(io(&path))?;
            let (records, cut) = wal::decode_records(&image);
            let mut bytes = image.len() as u64;
            if let Some(cut) = cut {
                tracing::warn!(
                    "queue {}: cut a torn record at offset {}: {}",
                    path.display(),
                    cut.offset,
                    cut.reason
                );
                wal::truncate(&*disk, &path, cut.offset)?;
                bytes = cut.offset;
            }
            let records = records.len() as u64;
            if first + records <= acked {
                disk.remove(&path).map_err(io(&path))?;
                continue;
            }
            next = first + records;
            files.push_back(QueueFile {
                first,
                path,
                bytes,
                records,
            });
        }
        let path = dir.join(file_name(next));
        let writer = disk.append(&path).map_err(io(&path))?;
        // The file's creation is durable before a push into it is.
        wal::sync_dir(&*disk, dir)?;
        if files.back().is_none_or(|f| f.first != next) {
            files.push_back(QueueFile {
                first: next,
                path,
                bytes: 0,
                records: 0,
            });
        }
        Ok(Self {
            disk,
            dir: dir.to_path_buf(),
            max_bytes,
            instance,
            inner: Mutex::new(Inner {
                files,
                writer,
                next,
                acked,
                dropped: 0,
                reading: None,
                stopped: None,
            }),
            pushed: Notify::new(),
        })
    }

    /// Appends `batch`; durable when this returns.
    pub fn push(&self, batch: &RecordBatch) -> Result<(), QueueError> {
        let record = wal::encode_record(0, std::slice::from_ref(batch))?;
        let mut inner = self.inner.lock().expect("queue lock");
        if let Some(reason) = &inner.stopped {
            return Err(QueueError::Stopped(reason.clone()));
        }
        if inner.files.back().is_some_and(|f| f.bytes >= FILE_BYTES) {
            let first = inner.next;
            let path = self.dir.join(file_name(first));
            inner.writer = self.disk.append(&path).map_err(io(&path))?;
            wal::sync_dir(&*self.disk, &self.dir)?;
            inner.files.push_back(QueueFile {
                first,
                path,
                bytes: 0,
                records: 0,
            });
        }
        let path = inner.files.back().expect("a file to write").path.clone();
        let appended = inner.writer.write_all(&record);
        if let Err(e) = appended.and_then(|()| inner.writer.sync_data()) {
            inner.stopped = Some(format!("{}: {e}", path.display()));
            return Err(io(&path)(e));
        }
        let file = inner.files.back_mut().expect("a file to write");
        file.bytes += record.len() as u64;
        file.records += 1;
        inner.next += 1;
        self.enforce_limit(&mut inner)?;
        drop(inner);
        self.pushed.notify_one();
        Ok(())
    }

    /// Drops the oldest files while the queue is over its size.
    fn enforce_limit(&self, inner: &mut Inner) -> Result<(), QueueError> {
        while inner.files.len() > 1
            && inner.files.iter().map(|f| f.bytes).sum::<u64>() > self.max_bytes
        {
            let oldest = inner.files.pop_front().expect("more than one file");
            let lost =
                (oldest.first + oldest.records).saturating_sub(inner.acked.max(oldest.first));
            inner.dropped += lost;
            tracing::warn!(
                "store-and-forward queue over {} bytes: dropped its oldest {lost} batch(es) ({} dropped in all)",
                self.max_bytes,
                inner.dropped
            );
            inner.acked = inner.acked.max(oldest.first + oldest.records);
            self.disk.remove(&oldest.path).map_err(io(&oldest.path))?;
            wal::replace(
                &*self.disk,
                &self.dir.join("acked"),
                inner.acked.to_string().as_bytes(),
            )?;
        }
        Ok(())
    }

    /// The oldest record not yet acknowledged, with its number.
    pub fn peek(&self) -> Result<Option<(u64, RecordBatch)>, QueueError> {
        let mut inner = self.inner.lock().expect("queue lock");
        let seq = inner.acked;
        if seq >= inner.next {
            return Ok(None);
        }
        let Some(file) = inner
            .files
            .iter()
            .find(|f| f.first <= seq && seq < f.first + f.records)
        else {
            return Ok(None);
        };
        let (first, path) = (file.first, file.path.clone());
        let index = (seq - first) as usize;
        let cached = inner
            .reading
            .as_ref()
            .is_some_and(|(f, records)| *f == first && index < records.len());
        if !cached {
            let image = std::fs::read(&path).map_err(io(&path))?;
            let records = wal::decode_records(&image).0;
            inner.reading = Some((first, records.into_iter().flat_map(|r| r.batches).collect()));
        }
        let records = &inner.reading.as_ref().expect("read").1;
        Ok(records.get(index).map(|batch| (seq, batch.clone())))
    }

    /// Waits until something is pushed.
    pub async fn pushed(&self) {
        self.pushed.notified().await
    }

    /// Marks record `seq` (the one [`Self::peek`] gave) as acknowledged,
    /// durably; files wholly acknowledged are removed.
    pub fn ack(&self, seq: u64) -> Result<(), QueueError> {
        let mut inner = self.inner.lock().expect("queue lock");
        if seq < inner.acked {
            return Ok(());
        }
        inner.acked = seq + 1;
        wal::replace(
            &*self.disk,
            &self.dir.join("acked"),
            inner.acked.to_string().as_bytes(),
        )?;
        while inner.files.len() > 1 && inner.files[0].first + inner.files[0].records <= inner.acked
        {
            let done = inner.files.pop_front().expect("checked");
            self.disk.remove(&done.path).map_err(io(&done.path))?;
        }
        Ok(())
    }

    /// Records waiting, and records dropped since open.
    pub fn backlog(&self) -> (u64, u64) {
        let inner = self.inner.lock().expect("queue lock");
        (inner.next - inner.acked, inner.dropped)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;

    use super::*;

    fn batch(v: i64) -> RecordBatch {
        RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(vec![v])) as _)]).unwrap()
    }

    fn value(b: &RecordBatch) -> i64 {
        b.column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    }

    #[test]
    fn a_failed_append_stops_the_queue_and_what_it_acknowledged_survives() {
        use crate::storage::faulty::{FaultPlan, FaultyDisk};
        let dir = tempfile::tempdir().unwrap();
        let faulty = FaultyDisk::new(5, FaultPlan::default());
        let queue = Queue::open_on(Arc::new(faulty.clone()), dir.path(), 1 << 30).unwrap();
        for v in 0..3 {
            queue.push(&batch(v)).unwrap();
        }
        let failing = FaultPlan {
            write_fails: 1000,
            ..FaultPlan::default()
        };
        faulty.set_plan(failing);
        assert!(matches!(queue.push(&batch(3)), Err(QueueError::Io { .. })));
        faulty.set_plan(FaultPlan::default());
        // The file's end is unknown: nothing more goes after it.
        let err = queue.push(&batch(4)).unwrap_err();
        assert!(matches!(err, QueueError::Stopped(_)), "{err}");
        drop(queue);
        faulty.crash().unwrap();
        let queue = Queue::open(dir.path(), 1 << 30).unwrap();
        for v in 0..3 {
            let (seq, b) = queue.peek().unwrap().unwrap();
            assert_eq!((seq, value(&b)), (v as u64, v));
            queue.ack(seq).unwrap();
        }
        assert!(
            queue.peek().unwrap().is_none(),
            "the failed push is not there"
        );
        queue.push(&batch(5)).unwrap();
    }

    #[test]
    fn records_leave_in_order_once_acknowledged_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path(), 1 << 30).unwrap();
        for v in 0..5 {
            queue.push(&batch(v)).unwrap();
        }
        let (seq, b) = queue.peek().unwrap().unwrap();
        assert_eq!((seq, value(&b)), (0, 0));
        queue.ack(0).unwrap();
        queue.ack(1).unwrap();
        let instance = queue.instance.clone();
        drop(queue);
        // A crash between an ack and the next: the unacknowledged stay.
        let queue = Queue::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(queue.instance, instance);
        assert_eq!(queue.backlog(), (3, 0));
        let (seq, b) = queue.peek().unwrap().unwrap();
        assert_eq!((seq, value(&b)), (2, 2));
        queue.push(&batch(5)).unwrap();
        let mut seen = Vec::new();
        while let Some((seq, b)) = queue.peek().unwrap() {
            seen.push(value(&b));
            queue.ack(seq).unwrap();
        }
        assert_eq!(seen, [2, 3, 4, 5]);
    }

    #[test]
    fn a_full_queue_drops_its_oldest_file() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path(), 1).unwrap();
        queue.push(&batch(1)).unwrap();
        drop(queue);
        // Reopening starts a new file; pushing to it goes over the limit.
        let queue = Queue::open(dir.path(), 1).unwrap();
        queue.push(&batch(2)).unwrap();
        assert_eq!(queue.backlog(), (1, 1));
        assert_eq!(value(&queue.peek().unwrap().unwrap().1), 2);
    }
}
