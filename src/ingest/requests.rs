//! Client request ids: a write that carries one is done at most once. A
//! writer that lost an acknowledgement (a network cut, a gateway's
//! store-and-forward buffer, a client library's retry) sends the request
//! again with the same id and gets the first answer back; nothing is written
//! twice.
//!
//! The id is recorded in the write's `audit_log` entry (`detail` ends with
//! ` request_id=<id>`), which goes to the WAL in the same group record as
//! the rows: after a crash the rows and their id are both there or both
//! gone, and [`RequestIds::recover`] rebuilds the ids of the last
//! `window` from the audit trail. Ids older than the window, or beyond the
//! newest [`MAX_REMEMBERED`], are forgotten.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::IngestError;

fn now_ns() -> i64 {
    chrono::Utc::now()
        .timestamp_nanos_opt()
        .expect("clock within the nanosecond range")
}

/// Longest accepted request id, in bytes.
pub const MAX_LEN: usize = 128;

/// Most ids remembered at once (about 100 bytes each).
pub const MAX_REMEMBERED: usize = 1_000_000;

/// What a write's audit `detail` says after its id.
const MARKER: &str = " request_id=";

/// Why a request id is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "request id '{shown}' is not valid: 1 to {MAX_LEN} characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'"
)]
pub struct BadRequestId {
    shown: String,
}

/// Checks a client's request id (it becomes part of an audit entry).
pub fn validate(id: &str) -> Result<(), BadRequestId> {
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if id.is_empty() || id.len() > MAX_LEN || !id.chars().all(fine) {
        return Err(BadRequestId {
            shown: id.chars().take(40).collect(),
        });
    }
    Ok(())
}

/// The audit `detail` of a write with `id`.
pub fn detail_with(detail: String, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{detail}{MARKER}{id}"),
        None => detail,
    }
}

/// The request id a write's audit `detail` records, if any.
pub fn id_in(detail: &str) -> Option<&str> {
    detail.rsplit_once(MARKER).map(|(_, id)| id)
}

#[derive(Debug, Default)]
struct Remembered {
    /// Rows each finished request wrote.
    done: HashMap<String, usize>,
    /// Finished ids with their time (ns), oldest first.
    order: VecDeque<(i64, String)>,
    /// Requests being written now: a resend waits for the first.
    in_flight: HashMap<String, Arc<Notify>>,
}

/// A request being written; its end (however it comes) wakes the resends
/// that wait for it.
struct InFlight<'a> {
    ids: &'a RequestIds,
    id: &'a str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let notify = self
            .ids
            .remembered
            .lock()
            .expect("request ids lock")
            .in_flight
            .remove(self.id);
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }
}

/// The request ids of recent writes.
#[derive(Debug)]
pub struct RequestIds {
    window: Duration,
    remembered: Mutex<Remembered>,
}

impl RequestIds {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            remembered: Mutex::default(),
        }
    }

    /// Remembers a write recovered from the audit trail: its time, `detail`
    /// and rows. Entries without an id, or older than the window, are skipped.
    pub fn recover(&self, ts_ns: i64, detail: &str, rows: usize) {
        if let Some(id) = id_in(detail) {
            if ts_ns >= self.cutoff() {
                self.finish(id, ts_ns, rows);
            }
        }
    }

    /// Runs `write` unless a request with `id` was written already (then
    /// answers with its rows) or is being written (then waits for it). A
    /// write without an id always runs.
    pub async fn once<F, Fut>(&self, id: Option<&str>, write: F) -> Result<usize, IngestError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<usize, IngestError>>,
    {
        let Some(id) = id else {
            return write().await;
        };
        loop {
            let wait = {
                let mut r = self.remembered.lock().expect("request ids lock");
                if let Some(&rows) = r.done.get(id) {
                    tracing::debug!("request {id} was written already ({rows} rows): not again");
                    return Ok(rows);
                }
                match r.in_flight.get(id) {
                    Some(notify) => {
                        let notify = notify.clone();
                        // Registered before the lock goes: the wake-up cannot be missed.
                        let mut notified = Box::pin(notify.notified_owned());
                        notified.as_mut().enable();
                        notified
                    }
                    None => {
                        r.in_flight.insert(id.to_string(), Arc::new(Notify::new()));
                        break;
                    }
                }
            };
            wait.await;
        }
        // Released however this ends (a panic included), so resends never
        // wait for a write that is gone.
        let guard = InFlight { ids: self, id };
        let result = write().await;
        if let Ok(rows) = result {
            self.finish(id, now_ns(), rows);
        }
        drop(guard);
        result
    }

    /// The oldest time (ns) whose ids are remembered.
    pub fn cutoff(&self) -> i64 {
        now_ns().saturating_sub(self.window.as_nanos().min(i64::MAX as u128) as i64)
    }

    fn finish(&self, id: &str, ts_ns: i64, rows: usize) {
        let cutoff = self.cutoff();
        let mut r = self.remembered.lock().expect("request ids lock");
        if r.done.insert(id.to_string(), rows).is_none() {
            r.order.push_back((ts_ns, id.to_string()));
        }
        while r
            .order
            .front()
            .is_some_and(|(ts, _)| *ts < cutoff || r.done.len() > MAX_REMEMBERED)
        {
            let (_, old) = r.order.pop_front().expect("checked");
            r.done.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn ids_are_short_plain_ascii() {
        assert!(validate("gw7:2026-12-02T10:00:00.123_0042").is_ok());
        for bad in [
            "",
            "has space",
            "quote\"",
            &"x".repeat(MAX_LEN + 1),
            "ümlaut",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        let detail = detail_with("interface=grpc.ingest".into(), Some("a-1"));
        assert_eq!(detail, "interface=grpc.ingest request_id=a-1");
        assert_eq!(id_in(&detail), Some("a-1"));
        assert_eq!(id_in("interface=grpc.ingest"), None);
    }

    #[tokio::test]
    async fn a_resent_request_is_answered_without_writing_again() {
        let ids = Arc::new(RequestIds::new(Duration::from_secs(60)));
        let writes = Arc::new(AtomicUsize::new(0));
        let write = |writes: Arc<AtomicUsize>| async move {
            writes.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(7)
        };
        // Concurrent resends wait for the first and get its answer.
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (ids, writes) = (ids.clone(), writes.clone());
                tokio::spawn(async move { ids.once(Some("r1"), || write(writes)).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), 7);
        }
        assert_eq!(writes.load(Ordering::SeqCst), 1);
        // A failed write is not remembered: its resend runs.
        let failed = ids
            .once(Some("r2"), || async {
                Err(IngestError::Statement("no".into()))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(
            ids.once(Some("r2"), || write(writes.clone()))
                .await
                .unwrap(),
            7
        );
        assert_eq!(writes.load(Ordering::SeqCst), 2);
        // Without an id every write runs.
        ids.once(None, || write(writes.clone())).await.unwrap();
        assert_eq!(writes.load(Ordering::SeqCst), 3);
        // Recovered ids count; those older than the window do not.
        ids.recover(now_ns(), "interface=x request_id=r3", 5);
        ids.recover(0, "interface=x request_id=r4", 5);
        assert_eq!(
            ids.once(Some("r3"), || write(writes.clone()))
                .await
                .unwrap(),
            5
        );
        ids.once(Some("r4"), || write(writes.clone()))
            .await
            .unwrap();
        assert_eq!(writes.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_write_dropped_midway_does_not_hold_up_its_resend() {
        let ids = RequestIds::new(Duration::from_secs(60));
        let stuck = ids.once(Some("r9"), || {
            std::future::pending::<Result<usize, IngestError>>()
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(10), stuck)
                .await
                .is_err()
        );
        let again = ids.once(Some("r9"), || async { Ok(3) });
        let again = tokio::time::timeout(Duration::from_secs(5), again).await;
        assert_eq!(
            again.expect("not waiting for the dropped write").unwrap(),
            3
        );
    }
}
