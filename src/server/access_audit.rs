//! What the interfaces tell the audit trail: user changes and refused
//! logins. Writes themselves are audited by the engine with the write
//! context of their call (see `reason`); this is the network side.

use tracing::warn;

use std::net::IpAddr;
use std::sync::Arc;

use super::auth::{Auth, AuthError, Principal, UserChange};
use crate::audit::Event;
use crate::ingest::Engine;

/// Records a refused login (wrong user name or password) under the user name
/// it claimed. Other refusals (a malformed header, an expired token) are no
/// login attempt and are not recorded. An audit failure is logged, never
/// turned into a different answer for the caller.
/// The one credential check of every door (Flight handshake, gRPC Basic,
/// HTTP): `user` and `password` from `source`, verified off the async workers
/// (argon2 is slow on purpose, and throttled per user and source), a refusal
/// recorded in `audit_log` as coming through `interface`.
pub async fn check_password(
    auth: &Arc<Auth>,
    engine: &Engine,
    (user, password): (String, String),
    source: Option<IpAddr>,
    interface: &'static str,
) -> Result<Principal, AuthError> {
    let (checker, claimed) = (auth.clone(), user.clone());
    let outcome =
        tokio::task::spawn_blocking(move || checker.verify_from(&user, &password, source))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    if let Err(e) = &outcome {
        refused_login(engine, &claimed, interface, e).await;
    }
    outcome
}

pub async fn refused_login(
    engine: &Engine,
    claimed_user: &str,
    interface: &'static str,
    error: &AuthError,
) {
    if !matches!(error, AuthError::BadCredentials) {
        return;
    }
    let event = Event::new(&recorded_actor(claimed_user), "login.refused")
        .detail(format!("interface={interface}; {error}"));
    if let Err(e) = engine.audit(event).await {
        warn!("could not audit a refused login: {e}");
    }
}

/// Longest claimed user name a refused login records (real names are at
/// most 64 characters).
const MAX_RECORDED_ACTOR: usize = 64;

/// A claimed user name as the audit trail records it: anything a client
/// sent, so cut to [`MAX_RECORDED_ACTOR`] characters and with control and
/// non-ASCII characters escaped (`\u{1b}`), marked `…` when cut.
fn recorded_actor(claimed: &str) -> String {
    let mut actor: String = claimed
        .chars()
        .take(MAX_RECORDED_ACTOR)
        .flat_map(|c| {
            let plain = c.is_ascii_graphic() || c == ' ';
            let escaped: Vec<char> = if plain {
                vec![c]
            } else {
                c.escape_unicode().collect()
            };
            escaped
        })
        .collect();
    if claimed.chars().count() > MAX_RECORDED_ACTOR {
        actor.push('…');
    }
    actor
}

/// Records a user change made by `by`. Durable when this returns `Ok`;
/// [`super::auth::Auth`] calls it (through [`super::auth::RecordChange`])
/// before the change takes effect.
pub async fn user_change(
    engine: &Engine,
    by: &Principal,
    change: &UserChange,
) -> Result<(), crate::ingest::IngestError> {
    engine
        .audit(Event::new(&by.user, change.action).detail(change.detail.clone()))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_actors_are_short_and_printable() {
        assert_eq!(recorded_actor("wim"), "wim");
        assert_eq!(recorded_actor("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        let long = "x".repeat(6000);
        let recorded = recorded_actor(&long);
        assert_eq!(recorded, format!("{}…", "x".repeat(MAX_RECORDED_ACTOR)));
    }
}
