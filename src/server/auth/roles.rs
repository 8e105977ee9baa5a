//! Roles and the one place that decides what a role may do.
//!
//! Every refused call goes through [`Principal::require`], so the rules and
//! the wording of a refusal ("user 'x' (role reader) may not ...") are the
//! same on Flight SQL, HTTP and the user actions.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::AuthError;

/// What a user may do; each role includes the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Queries and catalog browsing.
    Reader,
    /// A reader that may also write (ingest, INSERT, line protocol, flush).
    Writer,
    /// A writer that may also manage users.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Reader, Role::Writer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a call wants to do that not every role may.
#[derive(Debug, Clone, Copy)]
pub enum Permission<'a> {
    /// Run a query or browse the catalog.
    Query,
    /// Write rows into a table (bulk ingest, INSERT, line protocol).
    Write { table: &'a str },
    /// Write context events over gRPC (`IngestService.WriteContext`): rows
    /// of any of the context tables, which a request may mix.
    WriteContext,
    /// Flush write buffers to segments. A writer's business: it changes
    /// storage, and a writer can force the same by writing anyway.
    Flush,
    /// Rewrite segments so samples carry the context of runs recorded after
    /// them (`lotline restamp`): storage maintenance, like a flush.
    Restamp,
    /// Merge small segments now (`lotline compact`): rewrites the whole
    /// history's files and costs I/O for minutes, so an administrator's call.
    Compact,
    /// Add, list or remove users, or set another user's password.
    ManageUsers,
    /// Set the password of `user` (anyone may set their own).
    SetPassword { user: &'a str },
}

impl Permission<'_> {
    /// The least role that is granted this permission on any user.
    fn least_role(&self) -> Role {
        match self {
            Permission::Query => Role::Reader,
            Permission::Write { .. }
            | Permission::WriteContext
            | Permission::Flush
            | Permission::Restamp => Role::Writer,
            Permission::Compact | Permission::ManageUsers | Permission::SetPassword { .. } => {
                Role::Admin
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Permission::Query => "run queries".into(),
            Permission::Write { table } => format!("write to table '{table}'"),
            Permission::WriteContext => "write context events (equipment, work orders, lots, \
                 production runs, genealogy)"
                .into(),
            Permission::Flush => "flush write buffers".into(),
            Permission::Restamp => "restamp samples".into(),
            Permission::Compact => "compact segments".into(),
            Permission::ManageUsers => "manage users".into(),
            Permission::SetPassword { user } => format!("set the password of user '{user}'"),
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub role: Role,
}

impl Principal {
    /// The caller when authentication is off (`--without-auth`): may do anything.
    pub fn anonymous() -> Self {
        Principal {
            user: "anonymous".into(),
            role: Role::Admin,
        }
    }

    /// Refuses what the caller's role does not allow, saying who, as what,
    /// was refused what, and which roles would do.
    pub fn require(&self, permission: Permission<'_>) -> Result<(), AuthError> {
        let own_password =
            matches!(permission, Permission::SetPassword { user } if user == self.user);
        let least = permission.least_role();
        if own_password || self.role >= least {
            return Ok(());
        }
        let roles: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|r| *r >= least)
            .map(Role::as_str)
            .collect();
        Err(AuthError::PermissionDenied(format!(
            "user '{}' (role {}) may not {}; that needs role {}",
            self.user,
            self.role,
            permission.describe(),
            roles.join(" or "),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role) -> Principal {
        Principal {
            user: "u".into(),
            role,
        }
    }

    #[test]
    fn each_role_gets_exactly_its_permissions() {
        let write = Permission::Write { table: "samples" };
        let other_password = Permission::SetPassword { user: "v" };
        let cases = [
            (Permission::Query, [true, true, true]),
            (write, [false, true, true]),
            (Permission::WriteContext, [false, true, true]),
            (Permission::Flush, [false, true, true]),
            (Permission::Restamp, [false, true, true]),
            (Permission::Compact, [false, false, true]),
            (Permission::ManageUsers, [false, false, true]),
            (other_password, [false, false, true]),
            (Permission::SetPassword { user: "u" }, [true, true, true]),
        ];
        for (permission, allowed) in cases {
            for (role, allowed) in Role::ALL.into_iter().zip(allowed) {
                assert_eq!(
                    who(role).require(permission).is_ok(),
                    allowed,
                    "{role} {permission:?}"
                );
            }
        }
    }

    #[test]
    fn refusal_names_user_role_and_action() {
        let err = who(Role::Reader)
            .require(Permission::Write { table: "samples" })
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "permission denied: user 'u' (role reader) may not write to table 'samples'; that needs role writer or admin"
        );
        let err = who(Role::Writer)
            .require(Permission::ManageUsers)
            .unwrap_err()
            .to_string();
        assert!(err.contains("(role writer) may not manage users"), "{err}");
    }

    #[test]
    fn roles_round_trip_as_lowercase_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{role}\""));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
