//! Bearer tokens: random strings handed out by a successful login, each
//! naming its user and expiring after the configured lifetime.
//!
//! A token names a user, not a role: the role is looked up on every call, so
//! removing a user ends its tokens at once and nothing stale is trusted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::RngCore;

use super::clock::Clock;

pub struct Tokens {
    ttl: Duration,
    clock: Arc<dyn Clock>,
    /// token -> (user, expiry)
    live: Mutex<HashMap<String, (String, Instant)>>,
}

/// URL-safe base64 of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

impl Tokens {
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl,
            clock,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// A new token for `user`; expired ones are dropped on the way.
    pub fn issue(&self, user: &str) -> String {
        let token = random_token(32);
        let now = self.clock.now();
        let mut live = self.live.lock().expect("token lock");
        live.retain(|_, (_, expires)| *expires > now);
        live.insert(token.clone(), (user.to_string(), now + self.ttl));
        token
    }

    /// The user of a token that has not expired.
    pub fn user_of(&self, token: &str) -> Option<String> {
        let live = self.live.lock().expect("token lock");
        match live.get(token) {
            Some((user, expires)) if *expires > self.clock.now() => Some(user.clone()),
            _ => None,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Ends one token (a logout); an unknown one is no error.
    pub fn revoke(&self, token: &str) {
        self.live.lock().expect("token lock").remove(token);
    }

    /// Ends every token of `user`.
    pub fn revoke_user(&self, user: &str) {
        let mut live = self.live.lock().expect("token lock");
        live.retain(|_, (owner, _)| owner != user);
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::ManualClock;
    use super::*;

    #[test]
    fn tokens_expire_and_can_be_revoked() {
        let clock = Arc::new(ManualClock::default());
        let tokens = Tokens::new(Duration::from_secs(200), clock.clone());
        let a = tokens.issue("a");
        let b = tokens.issue("b");
        assert_eq!(tokens.user_of(&a).as_deref(), Some("a"));
        tokens.revoke_user("a");
        assert_eq!(tokens.user_of(&a), None);
        assert_eq!(tokens.user_of(&b).as_deref(), Some("b"));
        clock.advance(Duration::from_secs(199));
        assert_eq!(tokens.user_of(&b).as_deref(), Some("b"));
        clock.advance(Duration::from_secs(1));
        assert_eq!(tokens.user_of(&b), None);
        assert_eq!(tokens.user_of("made-up"), None);
    }
}
