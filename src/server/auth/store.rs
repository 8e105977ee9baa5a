//! The user file `<data-dir>/users.json`: names, argon2id password hashes and
//! roles, readable by the server's user only (0600).
//!
//! Every change rewrites the whole file through a temporary file and a rename,
//! so a crash leaves either the old or the new set of users, never half.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{AuthError, Role};

pub const USERS_FILE: &str = "users.json";

/// The user that first start creates.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// One user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub password_hash: String,
    pub role: Role,
}

/// The file's shape. `role` is optional so that files written before roles
/// existed still load (see [`load`]).
#[derive(Debug, Default, Serialize, Deserialize)]
struct UserFile {
    users: Vec<StoredUser>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredUser {
    name: String,
    password_hash: String,
    #[serde(default)]
    role: Option<Role>,
}

fn store_err(path: &Path, e: impl ToString) -> AuthError {
    AuthError::Store {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Reads the user file; `None` if there is none yet. A user without a role
/// is `admin` if it is the bootstrap admin and `reader` otherwise, so an old
/// file keeps its administrator and grants nobody more than before.
pub fn load(path: &Path) -> Result<Option<BTreeMap<String, User>>, AuthError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(store_err(path, e)),
    };
    let file: UserFile = serde_json::from_slice(&bytes).map_err(|e| store_err(path, e))?;
    let users = file
        .users
        .into_iter()
        .map(|u| {
            let default = if u.name == BOOTSTRAP_ADMIN {
                Role::Admin
            } else {
                Role::Reader
            };
            let user = User {
                password_hash: u.password_hash,
                role: u.role.unwrap_or(default),
            };
            (u.name, user)
        })
        .collect();
    Ok(Some(users))
}

/// Replaces the user file atomically: temporary file (0600, synced), rename,
/// then a sync of the directory so the rename itself survives a power cut.
pub fn save(path: &Path, users: &BTreeMap<String, User>) -> Result<(), AuthError> {
    let file = UserFile {
        users: users
            .iter()
            .map(|(name, u)| StoredUser {
                name: name.clone(),
                password_hash: u.password_hash.clone(),
                role: Some(u.role),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&file).expect("users serialize");
    let tmp = temp_path(path);
    write_private(&tmp, &bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| store_err(path, e))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| store_err(dir, e))?;
    }
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes a file readable by its owner only (mode 0600), durably.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AuthError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| store_err(path, e))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| store_err(path, e))
}

/// An argon2id hash in PHC string form. Slow on purpose.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16-byte salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing")
        .to_string()
}

/// Checks a password against a stored hash. Slow on purpose.
pub fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_without_roles_keeps_its_admin_and_grants_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(USERS_FILE);
        std::fs::write(
            &path,
            r#"{"users": [{"name": "admin", "password_hash": "h1"},
                          {"name": "plc", "password_hash": "h2"}]}"#,
        )
        .unwrap();
        let users = load(&path).unwrap().unwrap();
        assert_eq!(users["admin"].role, Role::Admin);
        assert_eq!(users["plc"].role, Role::Reader);
        // Saving writes the roles out, and loading gives the same users back.
        save(&path, &users).unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("\"reader\"")
        );
        assert_eq!(load(&path).unwrap().unwrap(), users);
    }

    #[test]
    fn save_is_private_and_leaves_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(USERS_FILE);
        let users = BTreeMap::from([(
            "w".to_string(),
            User {
                password_hash: hash_password("pw"),
                role: Role::Writer,
            },
        )]);
        save(&path, &users).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(USERS_FILE)]);
        assert!(password_matches(&users["w"].password_hash, "pw"));
        assert!(!password_matches(&users["w"].password_hash, "pW"));
    }

    #[test]
    fn unknown_role_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(USERS_FILE);
        std::fs::write(
            &path,
            r#"{"users": [{"name": "a", "password_hash": "h", "role": "root"}]}"#,
        )
        .unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains(USERS_FILE) && err.contains("root"), "{err}");
    }
}
