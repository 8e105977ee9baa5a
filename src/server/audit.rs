//! What the interfaces tell the audit trail: user changes and refused
//! logins. Writes themselves are audited by the engine with the write
//! context of their call (see `reason`); this is the network side.

use tracing::warn;

use super::auth::{AuthError, Principal, UserChange, basic_credentials};
use crate::audit::Event;
use crate::ingest::Engine;

/// Records a refused login (wrong user name or password) under the user name
/// it claimed. Other refusals (a malformed header, an expired token) are no
/// login attempt and are not recorded. An audit failure is logged, never
/// turned into a different answer for the caller.
pub async fn refused_login(
    engine: &Engine,
    claimed_user: &str,
    interface: &'static str,
    error: &AuthError,
) {
    if !matches!(error, AuthError::BadCredentials) {
        return;
    }
    let event =
        Event::new(claimed_user, "login.refused").detail(format!("interface={interface}; {error}"));
    if let Err(e) = engine.audit(event).await {
        warn!("could not audit a refused login: {e}");
    }
}

/// The user name an `Authorization: Basic` header claims ("unknown" if none).
pub fn claimed_user(authorization: Option<&str>) -> String {
    basic_credentials(authorization)
        .map(|(user, _)| user)
        .unwrap_or_else(|_| "unknown".into())
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
