//! Users, roles and bearer tokens. Users live in `<data-dir>/users.json`
//! ([`store`]: argon2id hashes and a role each); a successful basic-auth
//! login returns a random bearer token ([`tokens`]) that every other call
//! carries until it expires; [`roles`] decides what each role may do.
//!
//! User management goes through [`Auth`] methods that take the caller and
//! check it themselves, so no interface can forget the check.

pub mod clock;
mod roles;
mod store;
pub mod throttle;
mod tokens;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use clock::{Clock, SystemClock};
pub use roles::{Permission, Principal, Role};
use store::User;
pub use store::{BOOTSTRAP_ADMIN, USERS_FILE, hash_password};
use throttle::LoginThrottle;
use tokens::{Tokens, random_token};

pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// Shortest password `lotline user add` and `passwd` accept.
pub const MIN_PASSWORD_CHARS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid user name or password")]
    BadCredentials,
    #[error("too many refused logins for this user or from this address; try again in {seconds} s")]
    Throttled { seconds: u64 },
    #[error("missing or malformed authorization header; expected {0}")]
    Malformed(&'static str),
    #[error("invalid or expired token; authenticate with a handshake first")]
    BadToken,
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Invalid(String),
    #[error("user '{0}' already exists")]
    UserExists(String),
    #[error("no user '{0}'")]
    NoSuchUser(String),
    #[error("user '{0}' is the last admin; add another admin before removing it")]
    LastAdmin(String),
    #[error("recording the user change in the audit trail failed, nothing changed: {0}")]
    Audit(String),
    #[error("user store {path}: {reason}")]
    Store { path: PathBuf, reason: String },
}

/// A user as `lotline user list` shows it: no hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
}

pub struct Auth {
    path: PathBuf,
    /// Held while a change is checked, recorded and saved, so changes apply
    /// in order; the users themselves are locked only to copy and replace.
    changing: Mutex<()>,
    users: Mutex<BTreeMap<String, User>>,
    tokens: Tokens,
    throttle: LoginThrottle,
    clock: Arc<dyn Clock>,
}

/// What a login for a user that does not exist is checked against, so that
/// it costs the same argon2 hash as a wrong password: the time of a refusal
/// does not tell which user names exist.
static NO_SUCH_USER_HASH: LazyLock<String> = LazyLock::new(|| hash_password(&random_token(18)));

/// A user change as the audit trail records it: action (`user.add`,
/// `user.remove`, `user.passwd`) and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserChange {
    pub action: &'static str,
    pub detail: String,
}

/// Makes a user change durable in the audit trail. [`Auth`] calls it once
/// the change is checked and before it is saved: a change takes effect only
/// after its entry is durable, and an error here leaves the users unchanged.
pub type RecordChange<'a> = &'a (dyn Fn(&UserChange) -> Result<(), String> + Sync);

/// What first start did about the admin password.
pub enum AdminBootstrap {
    Existing,
    FromEnv,
    /// Generated; the caller prints it once. Also written to this file.
    Generated {
        password: String,
        file: PathBuf,
    },
}

/// A password for `admin` on first start. Never starting with '-', so that
/// `--password "$(cat lotline-data/admin-password)"` is not read as a flag.
fn generated_password() -> String {
    loop {
        let password = random_token(18);
        if password.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return password;
        }
    }
}

/// User names go into `user:password` credentials and log lines: keep them plain.
fn check_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "user name '{name}' must be 1 to 64 characters of A-Z a-z 0-9 . _ - @"
        )))
    }
}

fn check_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::Invalid(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

impl Auth {
    /// Loads the user store, creating user `admin` on first start with
    /// `admin_password` or a generated password.
    pub fn open(
        data_dir: &Path,
        admin_password: Option<&str>,
        token_ttl: Duration,
    ) -> Result<(Self, AdminBootstrap), AuthError> {
        Self::open_with_clock(data_dir, admin_password, token_ttl, Arc::new(SystemClock))
    }

    /// [`Auth::open`] with token expiry and throttling read from `clock`.
    pub fn open_with_clock(
        data_dir: &Path,
        admin_password: Option<&str>,
        token_ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, AdminBootstrap), AuthError> {
        let path = data_dir.join(USERS_FILE);
        let (users, bootstrap) = match store::load(&path)? {
            Some(users) => (users, AdminBootstrap::Existing),
            None => {
                let (password, bootstrap) = match admin_password {
                    Some(p) if !p.is_empty() => (p.to_string(), AdminBootstrap::FromEnv),
                    _ => {
                        let password = generated_password();
                        let file = data_dir.join(ADMIN_PASSWORD_FILE);
                        store::write_private(&file, format!("{password}\n").as_bytes())?;
                        (
                            password.clone(),
                            AdminBootstrap::Generated { password, file },
                        )
                    }
                };
                let admin = User {
                    password_hash: hash_password(&password),
                    role: Role::Admin,
                };
                let users = BTreeMap::from([(BOOTSTRAP_ADMIN.to_string(), admin)]);
                store::save(&path, &users)?;
                (users, bootstrap)
            }
        };
        let auth = Self {
            path,
            changing: Mutex::new(()),
            users: Mutex::new(users),
            tokens: Tokens::new(token_ttl, clock.clone()),
            throttle: LoginThrottle::default(),
            clock,
        };
        Ok((auth, bootstrap))
    }

    /// A bearer token for a caller whose credentials were checked.
    pub fn issue_token(&self, principal: &Principal) -> String {
        self.tokens.issue(&principal.user)
    }

    /// Checks an `Authorization: Basic ...` header from `source` and issues
    /// a token, on the calling thread (the servers go through
    /// `server::access_audit::check_password`, which also audits a refusal).
    pub fn login_basic(
        &self,
        header: Option<&str>,
        source: Option<IpAddr>,
    ) -> Result<(String, Principal), AuthError> {
        let (user, password) = basic_credentials(header)?;
        let principal = self.verify_from(&user, &password, source)?;
        Ok((self.issue_token(&principal), principal))
    }

    fn user(&self, name: &str) -> Option<User> {
        self.users.lock().expect("users lock").get(name).cloned()
    }

    /// Checks a user name and password without issuing a token (HTTP writers
    /// such as Telegraf send them with every request). argon2 is slow on
    /// purpose: call it off the async workers.
    pub fn verify(&self, user: &str, password: &str) -> Result<Principal, AuthError> {
        self.verify_from(user, password, None)
    }

    /// [`Self::verify`] for a caller at `source`: refused at once, without a
    /// hash, while the user name or the source has had too many refusals
    /// ([`throttle`]). A missing user costs the same hash as a wrong password.
    pub fn verify_from(
        &self,
        user: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        let user_key = format!("user:{user}");
        let mut keys = vec![user_key.clone()];
        keys.extend(source.map(|ip| format!("source:{ip}")));
        let now = self.clock.now();
        if let Err(wait) = self.throttle.check(&keys, now) {
            return Err(AuthError::Throttled {
                seconds: wait.as_secs().max(1),
            });
        }
        // Clone the record so the slow check runs without the lock.
        let record = self.user(user);
        let hash = record
            .as_ref()
            .map_or(NO_SUCH_USER_HASH.as_str(), |r| r.password_hash.as_str());
        let matches = store::password_matches(hash, password);
        match record {
            Some(record) if matches => {
                self.throttle.succeeded(&user_key);
                Ok(Principal {
                    user: user.to_string(),
                    role: record.role,
                })
            }
            _ => {
                self.throttle.refused(&keys, now);
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// How long a bearer token lives.
    pub fn token_ttl(&self) -> std::time::Duration {
        self.tokens.ttl()
    }

    /// Ends a bearer token before its time (the web console's logout).
    pub fn end_token(&self, token: &str) {
        self.tokens.revoke(token)
    }

    /// Checks an `Authorization: Bearer ...` header. The role is the user's
    /// current one; a removed user's token fails.
    pub fn check_bearer(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(AuthError::Malformed("Bearer <token>"))?;
        self.check_token(token)
    }

    /// Checks a bearer token itself (from a header, or the web console's
    /// session cookie).
    pub fn check_token(&self, token: &str) -> Result<Principal, AuthError> {
        let user = self
            .tokens
            .user_of(token.trim())
            .ok_or(AuthError::BadToken)?;
        let record = self.user(&user).ok_or(AuthError::BadToken)?;
        Ok(Principal {
            user,
            role: record.role,
        })
    }

    /// Applies `change` to a copy of the users, records `what` in the audit
    /// trail ([`RecordChange`]), then saves the copy; the live set is replaced
    /// only once the file is safely written. A crash after the record and
    /// before the save leaves an entry for a change that did not happen,
    /// never a change without an entry.
    fn change(
        &self,
        record: RecordChange<'_>,
        what: UserChange,
        change: impl FnOnce(&mut BTreeMap<String, User>) -> Result<(), AuthError>,
    ) -> Result<(), AuthError> {
        let _changing = self.changing.lock().expect("user change lock");
        let mut next = self.users.lock().expect("users lock").clone();
        change(&mut next)?;
        record(&what).map_err(AuthError::Audit)?;
        crate::storage::crash_point("user-change-recorded");
        store::save(&self.path, &next)?;
        *self.users.lock().expect("users lock") = next;
        Ok(())
    }

    pub fn list_users(&self, caller: &Principal) -> Result<Vec<UserInfo>, AuthError> {
        caller.require(Permission::ManageUsers)?;
        let users = self.users.lock().expect("users lock");
        Ok(users
            .iter()
            .map(|(name, u)| UserInfo {
                name: name.clone(),
                role: u.role,
            })
            .collect())
    }

    /// Adds a user. Hashes the password (slow): call off the async workers.
    pub fn add_user(
        &self,
        caller: &Principal,
        name: &str,
        password: &str,
        role: Role,
        record: RecordChange<'_>,
    ) -> Result<(), AuthError> {
        caller.require(Permission::ManageUsers)?;
        check_name(name)?;
        check_password(password)?;
        let user = User {
            password_hash: hash_password(password),
            role,
        };
        let what = UserChange {
            action: "user.add",
            detail: format!("user={name} role={role}"),
        };
        self.change(record, what, |users| {
            if users.contains_key(name) {
                return Err(AuthError::UserExists(name.to_string()));
            }
            users.insert(name.to_string(), user);
            Ok(())
        })
    }

    /// Removes a user and ends its tokens; the last admin stays.
    pub fn remove_user(
        &self,
        caller: &Principal,
        name: &str,
        record: RecordChange<'_>,
    ) -> Result<(), AuthError> {
        caller.require(Permission::ManageUsers)?;
        let what = UserChange {
            action: "user.remove",
            detail: format!("user={name}"),
        };
        self.change(record, what, |users| {
            let removed = users
                .remove(name)
                .ok_or_else(|| AuthError::NoSuchUser(name.to_string()))?;
            if removed.role == Role::Admin && !users.values().any(|u| u.role == Role::Admin) {
                return Err(AuthError::LastAdmin(name.to_string()));
            }
            Ok(())
        })?;
        self.tokens.revoke_user(name);
        Ok(())
    }

    /// Sets a password (one's own, or anyone's as admin) and ends the user's
    /// tokens, so whoever knew the old password is logged out. Slow: call off
    /// the async workers.
    pub fn set_password(
        &self,
        caller: &Principal,
        name: &str,
        password: &str,
        record: RecordChange<'_>,
    ) -> Result<(), AuthError> {
        caller.require(Permission::SetPassword { user: name })?;
        check_password(password)?;
        let hash = hash_password(password);
        let what = UserChange {
            action: "user.passwd",
            detail: format!("user={name}"),
        };
        self.change(record, what, |users| {
            let user = users
                .get_mut(name)
                .ok_or_else(|| AuthError::NoSuchUser(name.to_string()))?;
            user.password_hash = hash;
            Ok(())
        })?;
        self.tokens.revoke_user(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests;

/// User name and password of an `Authorization: Basic ...` header.
pub fn basic_credentials(header: Option<&str>) -> Result<(String, String), AuthError> {
    let malformed = || AuthError::Malformed("Basic <base64 user:password>");
    let encoded = header
        .and_then(|h| h.strip_prefix("Basic "))
        .ok_or_else(malformed)?;
    // Some clients (the Go ADBC driver) send unpadded base64.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = lenient
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(malformed)?;
    let (user, password) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok((user.to_string(), password.to_string()))
}
