//! Group commit: one thread owns the open WAL file. It takes every request
//! waiting in its queue, appends their records, fsyncs once, applies the rows
//! to the write buffer and only then acknowledges each request. Because the
//! same thread applies rows and rotates the WAL, a rotation point splits the
//! buffer exactly where it splits the log.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use tokio::sync::oneshot;

use super::State;
use super::wal::{WalError, WalFile};

pub(crate) enum Command {
    /// Append one encoded record and, once durable, its rows to the buffer of
    /// table `table`.
    Append {
        table: usize,
        record: Vec<u8>,
        batches: Vec<RecordBatch>,
        reply: oneshot::Sender<Result<(), WalError>>,
    },
    /// Start a new WAL file and freeze every table's buffer; replies with the
    /// new file's number (every row before it is now frozen).
    Rotate {
        reply: oneshot::Sender<Result<u64, WalError>>,
    },
    /// Metrics hook: from now on, call this with the duration of each group's
    /// append (write and, per the sync policy, fsync).
    Observe(WalObserver),
}

/// Receives the duration of every WAL group commit, on the WAL thread.
pub type WalObserver = Box<dyn Fn(Duration) + Send>;

pub(crate) fn spawn(
    wal_dir: std::path::PathBuf,
    file: WalFile,
    fsync: bool,
    state: Arc<RwLock<State>>,
) -> Sender<Command> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("lotline-wal".into())
        .spawn(move || run(rx, wal_dir, file, fsync, state))
        .expect("spawn WAL thread");
    tx
}

struct Pending {
    table: usize,
    record: Vec<u8>,
    batches: Vec<RecordBatch>,
    reply: oneshot::Sender<Result<(), WalError>>,
}

fn run(
    rx: Receiver<Command>,
    wal_dir: std::path::PathBuf,
    mut file: WalFile,
    fsync: bool,
    state: Arc<RwLock<State>>,
) {
    let mut pending: Vec<Pending> = Vec::new();
    let mut observer: Option<WalObserver> = None;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(command) = next.take().or_else(|| rx.try_recv().ok()) {
            match command {
                Command::Append {
                    table,
                    record,
                    batches,
                    reply,
                } => pending.push(Pending {
                    table,
                    record,
                    batches,
                    reply,
                }),
                Command::Rotate { reply } => {
                    commit(&mut file, fsync, &state, &mut pending, observer.as_ref());
                    let _ = reply.send(rotate(&wal_dir, &mut file, &state));
                }
                Command::Observe(f) => observer = Some(f),
            }
        }
        commit(&mut file, fsync, &state, &mut pending, observer.as_ref());
    }
    let _ = file.sync();
}

fn commit(
    file: &mut WalFile,
    fsync: bool,
    state: &RwLock<State>,
    pending: &mut Vec<Pending>,
    observer: Option<&WalObserver>,
) {
    if pending.is_empty() {
        return;
    }
    let records: Vec<&[u8]> = pending.iter().map(|p| p.record.as_slice()).collect();
    let started = Instant::now();
    let result = file.append_group(&records, fsync);
    // Metrics hook (WAL fsync latency): only timing, no effect on the commit.
    if let Some(observe) = observer {
        observe(started.elapsed());
    }
    match result {
        Ok(()) => {
            let mut state = state.write().expect("state lock");
            let mut replies = Vec::with_capacity(pending.len());
            for p in pending.drain(..) {
                state.buffers[p.table].append(p.batches);
                replies.push(p.reply);
            }
            drop(state);
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(
                "WAL append failed, rejecting {} request(s): {e}",
                pending.len()
            );
            let message = e.to_string();
            for p in pending.drain(..) {
                let _ = p.reply.send(Err(WalError::GroupFailed(message.clone())));
            }
        }
    }
}

fn rotate(
    wal_dir: &std::path::Path,
    file: &mut WalFile,
    state: &RwLock<State>,
) -> Result<u64, WalError> {
    file.sync()?;
    let next = WalFile::create(wal_dir, file.seq + 1)?;
    *file = next;
    let mut state = state.write().expect("state lock");
    for buffer in &mut state.buffers {
        buffer.freeze();
    }
    Ok(file.seq)
}
