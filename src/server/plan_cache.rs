//! Statements planned once (issue 20): Flight SQL asks for a query's
//! FlightInfo (which must carry its schema, so the query is planned) and
//! then runs its ticket with DoGet. GetFlightInfo keeps the plan here and
//! puts its number in the ticket; DoGet takes it back instead of planning
//! the text again. The ticket also carries the statement text, so a DoGet
//! that finds no plan (taken, expired, another server, a restart) plans the
//! text as before: the cache saves work, it never decides an answer.
//!
//! A plan is only handed to the user who planned it, for the same text,
//! once; plans wait at most [`TTL`] and at most [`CAPACITY`] wait at once
//! (the oldest go first), so clients that never DoGet cost nothing lasting.
//!
//! Prepared queries (what ADBC's Python driver sends for every statement:
//! create, then GetFlightInfo and DoGet of the handle) keep their unbound
//! plan per user and text for [`TTL`]; each call binds a copy.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use datafusion::dataframe::DataFrame;

/// How long a plan waits for its DoGet.
pub const TTL: Duration = Duration::from_secs(60);

/// Most plans waiting at once.
pub const CAPACITY: usize = 512;

/// Longest statement text whose plan is kept: a plan holds its text, and
/// plans of larger texts are rare and would make the cache's memory
/// the client's to choose.
pub const MAX_KEPT_SQL_BYTES: usize = 64 << 10;

/// Starts a ticket that names a kept plan: NUL (no SQL text starts with
/// it), the marker, the plan's number (8 bytes, little-endian), the text.
const MARKER: &[u8] = b"\0lotline.plan:";

struct Kept {
    user: String,
    sql: String,
    frame: DataFrame,
    at: Instant,
}

#[derive(Default)]
pub struct PlanCache {
    inner: Mutex<Inner>,
    prepared: Mutex<HashMap<(String, String), (DataFrame, Instant)>>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    plans: HashMap<u64, Kept>,
    /// Numbers in the order they were kept (some may be taken already).
    order: VecDeque<u64>,
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.inner.lock().expect("plan cache lock").plans.len();
        f.debug_struct("PlanCache")
            .field("waiting", &waiting)
            .finish()
    }
}

impl PlanCache {
    /// Keeps `frame`, planned from `sql` for `user`; returns the ticket
    /// that names it (the text alone when it is too long to keep).
    pub fn keep(&self, user: &str, sql: &str, frame: DataFrame) -> Vec<u8> {
        if sql.len() > MAX_KEPT_SQL_BYTES {
            return sql.as_bytes().to_vec();
        }
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("plan cache lock");
        inner.expire(now);
        let id = inner.next;
        inner.next += 1;
        inner.plans.insert(
            id,
            Kept {
                user: user.to_string(),
                sql: sql.to_string(),
                frame,
                at: now,
            },
        );
        inner.order.push_back(id);
        while inner.plans.len() > CAPACITY {
            let oldest = inner.order.pop_front().expect("as many numbers as plans");
            inner.plans.remove(&oldest);
        }
        let mut ticket = MARKER.to_vec();
        ticket.extend_from_slice(&id.to_le_bytes());
        ticket.extend_from_slice(sql.as_bytes());
        ticket
    }

    /// The statement text of `ticket`, and the plan kept for it if `user`
    /// planned it and it still waits.
    pub fn take<'t>(&self, ticket: &'t [u8], user: &str) -> (&'t [u8], Option<DataFrame>) {
        let Some(rest) = ticket.strip_prefix(MARKER).filter(|r| r.len() >= 8) else {
            return (ticket, None);
        };
        let (id, sql) = rest.split_at(8);
        let id = u64::from_le_bytes(id.try_into().expect("8 bytes"));
        let mut inner = self.inner.lock().expect("plan cache lock");
        inner.expire(Instant::now());
        let fits = inner
            .plans
            .get(&id)
            .is_some_and(|kept| kept.user == user && kept.sql.as_bytes() == sql);
        let frame = fits.then(|| inner.plans.remove(&id).expect("checked").frame);
        (sql, frame)
    }
}

impl PlanCache {
    /// The unbound plan of the prepared query `sql` that `user` planned
    /// within [`TTL`], if any: prepared statements are planned when created
    /// and their plan serves the calls that bind and run them (and the
    /// same text prepared again). The caller gives the copy a runtime of
    /// its own.
    pub fn prepared(&self, user: &str, sql: &str) -> Option<DataFrame> {
        let mut prepared = self.prepared.lock().expect("plan cache lock");
        let key = (user.to_string(), sql.to_string());
        match prepared.get(&key) {
            Some((frame, at)) if at.elapsed() < TTL => Some(frame.clone()),
            Some(_) => {
                prepared.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Keeps the unbound plan of the prepared query `sql` for `user` (only
    /// queries: a write's plan carries its call's writer).
    pub fn keep_prepared(&self, user: &str, sql: &str, frame: DataFrame) {
        if sql.len() > MAX_KEPT_SQL_BYTES {
            return;
        }
        let mut prepared = self.prepared.lock().expect("plan cache lock");
        if prepared.len() >= CAPACITY {
            prepared.retain(|_, (_, at)| at.elapsed() < TTL);
            if prepared.len() >= CAPACITY {
                prepared.clear();
            }
        }
        prepared.insert((user.to_string(), sql.to_string()), (frame, Instant::now()));
    }
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        while let Some(oldest) = self.order.front() {
            match self.plans.get(oldest) {
                Some(kept) if now.duration_since(kept.at) < TTL => break,
                _ => {
                    let oldest = self.order.pop_front().expect("front exists");
                    self.plans.remove(&oldest);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn frame() -> DataFrame {
        SessionContext::new().sql("SELECT 1").await.unwrap()
    }

    #[tokio::test]
    async fn a_plan_goes_once_to_its_user_for_its_text() {
        let cache = PlanCache::default();
        let ticket = cache.keep("ann", "SELECT 1", frame().await);
        let (sql, other) = cache.take(&ticket, "bob");
        assert_eq!(sql, b"SELECT 1");
        assert!(other.is_none(), "another user plans again");
        assert!(cache.take(&ticket, "ann").1.is_some());
        assert!(cache.take(&ticket, "ann").1.is_none(), "taken once");
        let kept = cache.keep("ann", "SELECT 1", frame().await);
        let mut changed = kept.clone();
        changed.truncate(kept.len() - 1);
        assert!(cache.take(&changed, "ann").1.is_none(), "other text");
        let (text, plan) = cache.take(b"SELECT 2", "ann");
        assert_eq!(text, b"SELECT 2");
        assert!(plan.is_none(), "a plain text ticket");
    }

    #[tokio::test]
    async fn old_and_surplus_plans_go() {
        let cache = PlanCache::default();
        let first = cache.keep("ann", "SELECT 1", frame().await);
        for _ in 0..CAPACITY {
            cache.keep("ann", "SELECT 1", frame().await);
        }
        assert!(cache.take(&first, "ann").1.is_none(), "the oldest went");
        assert_eq!(cache.inner.lock().unwrap().plans.len(), CAPACITY);
    }
}
