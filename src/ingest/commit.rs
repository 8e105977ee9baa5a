//! Group commit: one thread owns the open WAL file. It takes every request
//! waiting in its queue, appends their records, fsyncs once, applies the rows
//! to the write buffer and only then acknowledges each request. Because the
//! same thread applies rows and rotates the WAL, a rotation point splits the
//! buffer exactly where it splits the log.
//!
//! The same thread seals the group's audit entries (a request's events, in
//! queue order; see [`super::audit`]) and writes the group's data records
//! and their audit record as one WAL group record. A request may carry
//! records of several tables: they are always in the same group.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use tokio::sync::oneshot;

use super::State;
use super::wal::{self, WalError, WalFile};
use crate::audit::{Chain, Event};

/// One table's part of a request: its encoded WAL record and the rows
/// (stored schema) that go to the buffer of table `table` once durable.
pub(crate) struct Part {
    pub table: usize,
    pub record: Vec<u8>,
    pub batches: Vec<RecordBatch>,
    /// SHA-256 of `record`: its audit entry's `rows_sha256`.
    sha256: [u8; 32],
}

impl Part {
    /// The rows `batches` of table `table`, encoded as `record`.
    pub fn new(table: usize, record: Vec<u8>, batches: Vec<RecordBatch>) -> Self {
        let sha256 = crate::audit::sha256(&record);
        Self {
            table,
            record,
            batches,
            sha256,
        }
    }
}

pub(crate) enum Command {
    /// Append the records of `parts` (none: audit events alone) and an audit
    /// entry per event; once durable, the parts' rows to their buffers.
    /// Replies with the seq of the first event's entry.
    Append {
        parts: Vec<Part>,
        events: Vec<Event>,
        reply: oneshot::Sender<Result<u64, WalError>>,
    },
    /// Start a new WAL file and freeze every table's buffer; replies with the
    /// new file's number (every row before it is now frozen).
    Rotate {
        reply: oneshot::Sender<Result<u64, WalError>>,
    },
    /// Replies once every command sent before it is done: their rows are in
    /// the buffers, or their requests were refused.
    Barrier { reply: oneshot::Sender<()> },
    /// Metrics hook: from now on, call this with the duration of each group's
    /// append (write and, per the sync policy, fsync).
    Observe(WalObserver),
}

/// Receives the duration of every WAL group commit, on the WAL thread.
pub type WalObserver = Box<dyn Fn(Duration) + Send>;

/// The WAL thread's own state: the file it appends to and the chain head.
pub(crate) struct Writer {
    pub disk: Arc<dyn crate::storage::Disk>,
    pub wal_dir: std::path::PathBuf,
    pub file: WalFile,
    pub fsync: bool,
    /// The newest sealed audit entry; moves only when a group is durable.
    pub head: Chain,
    /// Set by the first I/O error of the WAL: from then on every request and
    /// rotation is refused (fail-stop, as Postgres and TigerBeetle treat a
    /// failed fsync: the file's state after it is unknown).
    pub stopped: Option<String>,
}

pub(crate) fn spawn(writer: Writer, state: Arc<RwLock<State>>) -> Sender<Command> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("lotline-wal".into())
        .spawn(move || run(rx, writer, state))
        .expect("spawn WAL thread");
    tx
}

struct Pending {
    parts: Vec<Part>,
    events: Vec<Event>,
    reply: oneshot::Sender<Result<u64, WalError>>,
}

fn run(rx: Receiver<Command>, mut writer: Writer, state: Arc<RwLock<State>>) {
    let mut pending: Vec<Pending> = Vec::new();
    let mut observer: Option<WalObserver> = None;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(command) = next.take().or_else(|| rx.try_recv().ok()) {
            match command {
                Command::Append {
                    parts,
                    events,
                    reply,
                } => pending.push(Pending {
                    parts,
                    events,
                    reply,
                }),
                Command::Rotate { reply } => {
                    commit(&mut writer, &state, &mut pending, observer.as_ref());
                    let _ = reply.send(rotate(&mut writer, &state));
                }
                Command::Barrier { reply } => {
                    commit(&mut writer, &state, &mut pending, observer.as_ref());
                    let _ = reply.send(());
                }
                Command::Observe(f) => observer = Some(f),
            }
        }
        commit(&mut writer, &state, &mut pending, observer.as_ref());
    }
    let _ = writer.file.sync();
}

fn commit(
    writer: &mut Writer,
    state: &RwLock<State>,
    pending: &mut Vec<Pending>,
    observer: Option<&WalObserver>,
) {
    if pending.is_empty() {
        return;
    }
    if let Some(reason) = &writer.stopped {
        for p in pending.drain(..) {
            let _ = p.reply.send(Err(WalError::Stopped(reason.clone())));
        }
        return;
    }
    for p in pending.iter_mut().filter(|p| !p.parts.is_empty()) {
        // Each write names the digest of its rows' record in its entry.
        assert_eq!(p.parts.len(), p.events.len(), "one audit event per part");
        for (part, event) in p.parts.iter().zip(&mut p.events) {
            if let Some(detail) = event.detail.as_mut().filter(|_| !part.record.is_empty()) {
                *detail = crate::audit::rows_digest::with_rows_digest(detail, &part.sha256);
            }
        }
    }
    let events: Vec<Event> = pending
        .iter()
        .flat_map(|p| p.events.iter().cloned())
        .collect();
    let entries = events.len() as u64;
    let started = Instant::now();
    let result = super::write_audit::seal(&writer.head, events)
        .map_err(|e| WalError::Encode(format!("audit entry: {e}")))
        .and_then(|(head, audit_batch, audit_record)| {
            let mut records: Vec<&[u8]> = pending
                .iter()
                .flat_map(|p| &p.parts)
                .map(|p| p.record.as_slice())
                .filter(|r| !r.is_empty())
                .collect();
            records.push(&audit_record);
            let group = wal::frame_group(&records);
            writer.file.append_group(&[&group], writer.fsync)?;
            Ok((head, audit_batch))
        });
    // Metrics hook (WAL fsync latency): only timing, no effect on the commit.
    if let Some(observe) = observer {
        observe(started.elapsed());
    }
    match result {
        Ok((head, audit_batch)) => {
            let first_seq = writer.head.seq + 1;
            assert_eq!(
                head.seq,
                writer.head.seq + entries,
                "one audit entry per event"
            );
            writer.head = head;
            let mut state = state.write().expect("state lock");
            let mut replies = Vec::with_capacity(pending.len());
            let mut seq = first_seq;
            for p in pending.drain(..) {
                for part in p.parts {
                    if !part.batches.is_empty() {
                        state.buffers[part.table].append(part.batches);
                    }
                }
                replies.push((p.reply, seq));
                seq += p.events.len() as u64;
            }
            let audit_id = super::write_audit::audit_table_id() as usize;
            state.buffers[audit_id].append(vec![audit_batch]);
            state.committed.send_replace(writer.head.seq);
            drop(state);
            for (reply, seq) in replies {
                let _ = reply.send(Ok(seq));
            }
        }
        Err(e) => {
            tracing::error!(
                "WAL append failed, rejecting {} request(s): {e}",
                pending.len()
            );
            let message = e.to_string();
            if matches!(e, WalError::Io { .. }) {
                stop(writer, state, message.clone());
            }
            for p in pending.drain(..) {
                let _ = p.reply.send(Err(WalError::GroupFailed(message.clone())));
            }
        }
    }
}

/// Stops the WAL for good (until restart) and tells the engine why.
fn stop(writer: &mut Writer, state: &RwLock<State>, reason: String) {
    tracing::error!("WAL stopped: no more writes are acknowledged until restart: {reason}");
    state.write().expect("state lock").wal_stopped = Some(reason.clone());
    writer.stopped = Some(reason);
}

fn rotate(writer: &mut Writer, state: &RwLock<State>) -> Result<u64, WalError> {
    if let Some(reason) = &writer.stopped {
        return Err(WalError::Stopped(reason.clone()));
    }
    let rotated = rotate_file(&*writer.disk, &writer.wal_dir, &mut writer.file, state);
    if let Err(e @ WalError::Io { .. }) = &rotated {
        stop(writer, state, e.to_string());
    }
    rotated
}

fn rotate_file(
    disk: &dyn crate::storage::Disk,
    wal_dir: &std::path::Path,
    file: &mut WalFile,
    state: &RwLock<State>,
) -> Result<u64, WalError> {
    // An empty file holds no row of the buffers: they are frozen as they
    // are, and a flush that failed and retries adds no file.
    if !file.is_empty() {
        file.sync()?;
        let next = WalFile::create(disk, wal_dir, file.seq + 1)?;
        *file = next;
    }
    let mut state = state.write().expect("state lock");
    for buffer in &mut state.buffers {
        buffer.freeze();
    }
    Ok(file.seq)
}
