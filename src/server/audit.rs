//! What the interfaces tell the audit trail: the write context of a call
//! (caller, interface, `x-lotline-reason`), user changes and refused logins.
//! Writes themselves are audited by the engine; this is the network side.

use tracing::warn;

use super::auth::{AuthError, Principal, basic_credentials};
use crate::audit::Event;
use crate::ingest::{Engine, REASON_HEADER, WriteContext};

/// The reason a call carries in its `x-lotline-reason` header, if any.
pub fn reason(metadata: &tonic::metadata::MetadataMap) -> Option<String> {
    metadata
        .get(REASON_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The write context of a gRPC or Flight call by `principal`.
pub fn write_context(
    principal: &Principal,
    interface: &'static str,
    metadata: &tonic::metadata::MetadataMap,
) -> WriteContext {
    WriteContext::new(&principal.user, interface).with_reason(reason(metadata))
}

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

/// Records a user change `action` (`user.add`, `user.remove`, `user.passwd`)
/// made by `by`. Durable when this returns `Ok`.
pub async fn user_change(
    engine: &Engine,
    by: &Principal,
    action: &str,
    detail: String,
) -> Result<(), crate::ingest::IngestError> {
    engine
        .audit(Event::new(&by.user, action).detail(detail))
        .await
        .map(|_| ())
}
