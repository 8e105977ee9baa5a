//! The custom Flight actions: `lotline.flush`, `lotline.restamp`, `lotline.compact` and user management
//! (`lotline.user.add|list|remove|passwd`, what `lotline user` sends).
//!
//! Bodies and results are JSON (the types below, shared with the client), so
//! any Flight client can call them. Who may do what is decided by
//! [`Principal::require`] (flush) and by the [`Auth`] methods (users).

use std::sync::Arc;

use arrow_flight::{Action, ActionType};
use serde::{Deserialize, Serialize};
use tonic::Status;
use tracing::info;

use super::auth::{
    Auth, AuthError, Permission, Principal, RecordChange, Role, UserChange, UserInfo,
};
use super::flight::ingest_status;
use super::metrics::Metrics;
use crate::ingest::Engine;

pub const FLUSH_ACTION: &str = "lotline.flush";
pub const RESTAMP_ACTION: &str = "lotline.restamp";
pub const COMPACT_ACTION: &str = "lotline.compact";
pub const USER_ADD: &str = "lotline.user.add";
pub const USER_LIST: &str = "lotline.user.list";
pub const USER_REMOVE: &str = "lotline.user.remove";
pub const USER_PASSWD: &str = "lotline.user.passwd";

/// Body of `lotline.user.add`.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserAdd {
    pub name: String,
    pub password: String,
    pub role: Role,
}

/// Body of `lotline.user.remove`; also the answer of `lotline.user.passwd`.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserRemove {
    pub name: String,
}

/// Body of `lotline.user.passwd`; without `name`, the caller's own password.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserPasswd {
    #[serde(default)]
    pub name: Option<String>,
    pub password: String,
}

/// Result of `lotline.user.list`, `add` and `remove`: the users after the
/// call. (`passwd` answers `{"name"}` of the user whose password was set.)
#[derive(Debug, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserInfo>,
}

/// What `ListActions` reports beside the Flight SQL actions.
pub fn action_types() -> Vec<ActionType> {
    [
        (
            FLUSH_ACTION,
            "Flush every write buffer to Parquet segments now (writer or admin); returns a JSON report",
        ),
        (
            RESTAMP_ACTION,
            "Stamp samples written before their production run (or their tag's equipment) was \
             recorded: flush, then rewrite the segments concerned (writer or admin); returns a JSON report",
        ),
        (
            COMPACT_ACTION,
            "Merge small segments of every table per date partition now (admin); returns a JSON report \
             once the merged segments are live",
        ),
        (
            USER_ADD,
            "Add a user (admin): {\"name\", \"password\", \"role\": reader|writer|admin}",
        ),
        (
            USER_LIST,
            "List users and their roles (admin); returns {\"users\": [{\"name\", \"role\"}]}",
        ),
        (USER_REMOVE, "Remove a user and end its tokens (admin): {\"name\"}"),
        (
            USER_PASSWD,
            "Set a password: your own, or anyone's as admin: {\"name\"?, \"password\"}",
        ),
    ]
    .into_iter()
    .map(|(name, description)| ActionType {
        r#type: name.into(),
        description: description.into(),
    })
    .collect()
}

/// Refuses what `principal`'s role may not do over `interface`: logs it,
/// counts it in the metrics and answers `PermissionDenied`.
pub fn require(
    metrics: &Metrics,
    interface: &'static str,
    principal: &Principal,
    permission: Permission<'_>,
) -> Result<(), Status> {
    principal.require(permission).map_err(|e| {
        tracing::warn!("{e}");
        metrics.rejected(interface, "permission_denied");
        auth_status(e)
    })
}

/// The gRPC status of an authentication or authorization failure.
pub fn auth_status(e: AuthError) -> Status {
    let text = e.to_string();
    match e {
        AuthError::BadCredentials
        | AuthError::Throttled { .. }
        | AuthError::Malformed(_)
        | AuthError::BadToken => Status::unauthenticated(text),
        AuthError::PermissionDenied(_) => Status::permission_denied(text),
        AuthError::Invalid(_) => Status::invalid_argument(text),
        AuthError::UserExists(_) => Status::already_exists(text),
        AuthError::NoSuchUser(_) => Status::not_found(text),
        AuthError::LastAdmin(_) => Status::failed_precondition(text),
        AuthError::Store { .. } | AuthError::Audit(_) => Status::internal(text),
    }
}

fn body<T: for<'de> Deserialize<'de>>(action: &Action) -> Result<T, Status> {
    serde_json::from_slice(&action.body)
        .map_err(|e| Status::invalid_argument(format!("body of action '{}': {e}", action.r#type)))
}

/// Runs one custom action for `principal`; returns the JSON result body.
pub async fn run(
    engine: &Arc<Engine>,
    auth: Option<&Arc<Auth>>,
    principal: Principal,
    action: Action,
) -> Result<Vec<u8>, Status> {
    if action.r#type == FLUSH_ACTION {
        principal.require(Permission::Flush).map_err(auth_status)?;
        let report = engine
            .run_to_completion(|e| async move { e.flush().await })
            .await
            .map_err(ingest_status)?;
        info!("flush requested by {}: {report:?}", principal.user);
        return Ok(serde_json::to_vec(&report).expect("report serializes"));
    }
    if action.r#type == RESTAMP_ACTION {
        principal
            .require(Permission::Restamp)
            .map_err(auth_status)?;
        let report = engine
            .run_to_completion(|e| async move { e.restamp().await })
            .await
            .map_err(ingest_status)?;
        info!("restamp requested by {}: {report:?}", principal.user);
        return Ok(serde_json::to_vec(&report).expect("report serializes"));
    }
    if action.r#type == COMPACT_ACTION {
        principal
            .require(Permission::Compact)
            .map_err(auth_status)?;
        let report = engine
            .run_to_completion(|e| async move { e.compact().await })
            .await
            .map_err(ingest_status)?;
        info!("compaction requested by {}: {report:?}", principal.user);
        return Ok(serde_json::to_vec(&report).expect("report serializes"));
    }
    if ![USER_ADD, USER_LIST, USER_REMOVE, USER_PASSWD].contains(&action.r#type.as_str()) {
        let known: Vec<_> = action_types().into_iter().map(|a| a.r#type).collect();
        return Err(Status::invalid_argument(format!(
            "unknown action '{}' (supported: {})",
            action.r#type,
            known.join(", ")
        )));
    }
    let auth = auth.cloned().ok_or_else(|| {
        Status::failed_precondition(
            "user management needs authentication, and this server runs with --without-auth",
        )
    })?;
    // Hashing passwords is slow on purpose: off the async workers. A change
    // takes effect only once its audit entry is durable (`Auth::change`).
    let engine = engine.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let record = |change: &UserChange| {
            runtime
                .block_on(super::access_audit::user_change(
                    &engine, &principal, change,
                ))
                .map_err(|e| e.to_string())
        };
        user_action(&auth, &principal, &action, &record)
    })
    .await
    .map_err(|e| Status::internal(e.to_string()))?
}

/// Runs a user action; returns the JSON answer.
fn user_action(
    auth: &Auth,
    principal: &Principal,
    action: &Action,
    record: RecordChange<'_>,
) -> Result<Vec<u8>, Status> {
    let by = &principal.user;
    match action.r#type.as_str() {
        USER_ADD => {
            let add: UserAdd = body(action)?;
            auth.add_user(principal, &add.name, &add.password, add.role, record)
                .map_err(auth_status)?;
            info!("user '{}' ({}) added by {by}", add.name, add.role);
        }
        USER_REMOVE => {
            let remove: UserRemove = body(action)?;
            auth.remove_user(principal, &remove.name, record)
                .map_err(auth_status)?;
            info!("user '{}' removed by {by}", remove.name);
        }
        USER_PASSWD => {
            let passwd: UserPasswd = body(action)?;
            let name = passwd.name.as_deref().unwrap_or(by);
            auth.set_password(principal, name, &passwd.password, record)
                .map_err(auth_status)?;
            info!("password of user '{name}' set by {by}");
            // Not a user list: a writer may set their own password but not list users.
            return Ok(serde_json::to_vec(&UserRemove { name: name.into() }).expect("serializes"));
        }
        _ => {}
    }
    let users = auth.list_users(principal).map_err(auth_status)?;
    Ok(serde_json::to_vec(&UserList { users }).expect("users serialize"))
}
