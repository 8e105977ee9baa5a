//! Refused logins slow their senders down. Every password check costs an
//! argon2 hash and every refusal an fsynced audit entry, so a client guessing
//! passwords (or cycling through user names) would turn both into a denial of
//! service. After [`MAX_FAILURES`] refusals within [`WINDOW`] for the same
//! user name, or from the same source address, further logins for it are
//! refused at once, without a hash and without an audit entry, for
//! [`LOCKOUT`]; a successful login clears its user name. Memory is bounded:
//! at most [`MAX_TRACKED`] names and addresses are tracked, the stalest go
//! first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refusals tolerated per user name or source within [`WINDOW`].
pub const MAX_FAILURES: u32 = 10;
/// The window refusals are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How long a name or source is refused at once after too many refusals.
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// Names and sources tracked at most.
pub const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

/// Refused logins per key (`user:<name>`, `source:<address>`).
#[derive(Debug, Default)]
pub struct LoginThrottle {
    keys: Mutex<HashMap<String, Failures>>,
}

impl LoginThrottle {
    /// `Err(wait)` while any of `keys` is locked out.
    pub fn check(&self, keys: &[String], now: Instant) -> Result<(), Duration> {
        let tracked = self.keys.lock().expect("throttle lock");
        let wait = keys
            .iter()
            .filter_map(|k| tracked.get(k)?.locked_until)
            .filter(|&until| until > now)
            .map(|until| until - now)
            .max();
        wait.map_or(Ok(()), Err)
    }

    /// Counts a refused login against each of `keys`.
    pub fn refused(&self, keys: &[String], now: Instant) {
        let mut tracked = self.keys.lock().expect("throttle lock");
        for key in keys {
            if !tracked.contains_key(key) && tracked.len() >= MAX_TRACKED {
                tracked.retain(|_, f| {
                    now.duration_since(f.since) < WINDOW || f.locked_until.is_some_and(|u| u > now)
                });
                if tracked.len() >= MAX_TRACKED {
                    let stalest = tracked
                        .iter()
                        .min_by_key(|(_, f)| f.since)
                        .map(|(k, _)| k.clone())
                        .expect("full map has entries");
                    tracked.remove(&stalest);
                }
            }
            let entry = tracked.entry(key.clone()).or_insert(Failures {
                count: 0,
                since: now,
                locked_until: None,
            });
            if now.duration_since(entry.since) >= WINDOW {
                *entry = Failures {
                    count: 0,
                    since: now,
                    locked_until: None,
                };
            }
            entry.count += 1;
            if entry.count >= MAX_FAILURES {
                entry.locked_until = Some(now + LOCKOUT);
                entry.count = 0;
                entry.since = now;
            }
        }
    }

    /// Forgets the refusals of `key` (a successful login).
    pub fn succeeded(&self, key: &str) {
        self.keys.lock().expect("throttle lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_refusals_lock_the_key_for_a_while() {
        let throttle = LoginThrottle::default();
        let keys = vec!["user:eve".to_string(), "source:10.0.0.9".to_string()];
        let start = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.refused(&keys, start);
        }
        assert_eq!(throttle.check(&keys, start), Ok(()));
        throttle.refused(&keys, start);
        assert_eq!(throttle.check(&keys, start), Err(LOCKOUT));
        // Another user from the same source is held back too.
        let other = vec!["user:bob".to_string(), "source:10.0.0.9".to_string()];
        assert!(throttle.check(&other, start).is_err());
        assert_eq!(throttle.check(&other, start + LOCKOUT), Ok(()));
        // A success clears the user's count.
        throttle.refused(&["user:ann".to_string()], start);
        throttle.succeeded("user:ann");
        for _ in 0..MAX_FAILURES - 1 {
            throttle.refused(&["user:ann".to_string()], start);
        }
        assert_eq!(throttle.check(&["user:ann".to_string()], start), Ok(()));
    }

    #[test]
    fn memory_stays_bounded() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..MAX_TRACKED + 100 {
            throttle.refused(&[format!("user:{i}")], now);
        }
        assert!(throttle.keys.lock().unwrap().len() <= MAX_TRACKED);
    }
}
