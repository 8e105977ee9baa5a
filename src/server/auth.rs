//! Users and bearer tokens. Passwords are stored as argon2id hashes in
//! `<data-dir>/users.json`; a successful basic-auth handshake returns a random
//! bearer token that every other call must carry until it expires.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};

pub const USERS_FILE: &str = "users.json";
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid user name or password")]
    BadCredentials,
    #[error("missing or malformed authorization header; expected {0}")]
    Malformed(&'static str),
    #[error("invalid or expired token; authenticate with a handshake first")]
    BadToken,
    #[error("user store {path}: {reason}")]
    Store { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    name: String,
    password_hash: String,
    role: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UserFile {
    users: Vec<User>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: String,
    pub role: String,
}

impl Principal {
    /// Everyone, when authentication is off (`--without-auth`).
    pub fn anonymous() -> Self {
        Self {
            user: "anonymous".into(),
            role: "admin".into(),
        }
    }
}

pub struct Auth {
    users: HashMap<String, User>,
    tokens: Mutex<HashMap<String, (Principal, Instant)>>,
    token_ttl: Duration,
}

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

fn store_err(path: &Path, e: impl ToString) -> AuthError {
    AuthError::Store {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16-byte salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing")
        .to_string()
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

impl Auth {
    /// Loads the user store, creating user `admin` on first start with
    /// `admin_password` or a generated password.
    pub fn open(
        data_dir: &Path,
        admin_password: Option<&str>,
        token_ttl: Duration,
    ) -> Result<(Self, AdminBootstrap), AuthError> {
        let path = data_dir.join(USERS_FILE);
        let (file, bootstrap) = match std::fs::read(&path) {
            Ok(bytes) => (
                serde_json::from_slice::<UserFile>(&bytes).map_err(|e| store_err(&path, e))?,
                AdminBootstrap::Existing,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (password, bootstrap) = match admin_password {
                    Some(p) if !p.is_empty() => (p.to_string(), AdminBootstrap::FromEnv),
                    _ => {
                        let password = random_token(18);
                        let file = data_dir.join(ADMIN_PASSWORD_FILE);
                        write_private(&file, format!("{password}\n").as_bytes())?;
                        (
                            password.clone(),
                            AdminBootstrap::Generated { password, file },
                        )
                    }
                };
                let users = UserFile {
                    users: vec![User {
                        name: "admin".into(),
                        password_hash: hash_password(&password),
                        role: "admin".into(),
                    }],
                };
                write_private(
                    &path,
                    &serde_json::to_vec_pretty(&users).expect("users serialize"),
                )?;
                (users, bootstrap)
            }
            Err(e) => return Err(store_err(&path, e)),
        };
        let users = file
            .users
            .into_iter()
            .map(|u| (u.name.clone(), u))
            .collect();
        Ok((
            Self {
                users,
                tokens: Mutex::new(HashMap::new()),
                token_ttl,
            },
            bootstrap,
        ))
    }

    /// Checks an `Authorization: Basic ...` header and issues a token.
    pub fn login_basic(&self, header: Option<&str>) -> Result<(String, Principal), AuthError> {
        let (user, password) = basic_credentials(header)?;
        let principal = self.verify(&user, &password)?;
        let token = random_token(32);
        let mut tokens = self.tokens.lock().expect("token lock");
        let now = Instant::now();
        tokens.retain(|_, (_, expires)| *expires > now);
        tokens.insert(token.clone(), (principal.clone(), now + self.token_ttl));
        Ok((token, principal))
    }

    /// Checks a user name and password without issuing a token (HTTP writers
    /// such as Telegraf send them with every request). argon2 is slow on
    /// purpose: call it off the async workers.
    pub fn verify(&self, user: &str, password: &str) -> Result<Principal, AuthError> {
        let record = self.users.get(user).ok_or(AuthError::BadCredentials)?;
        let hash =
            PasswordHash::new(&record.password_hash).map_err(|_| AuthError::BadCredentials)?;
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .map_err(|_| AuthError::BadCredentials)?;
        Ok(Principal {
            user: record.name.clone(),
            role: record.role.clone(),
        })
    }

    /// Checks an `Authorization: Bearer ...` header.
    pub fn check_bearer(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(AuthError::Malformed("Bearer <token>"))?;
        let tokens = self.tokens.lock().expect("token lock");
        match tokens.get(token.trim()) {
            Some((principal, expires)) if *expires > Instant::now() => Ok(principal.clone()),
            _ => Err(AuthError::BadToken),
        }
    }
}

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

/// Writes a file readable by its owner only (mode 0600), durably.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AuthError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, boot) = Auth::open(dir.path(), Some("s3cret"), Duration::from_secs(60)).unwrap();
        assert!(matches!(boot, AdminBootstrap::FromEnv));
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("admin:s3cret")
        );
        let (token, p) = auth.login_basic(Some(&header)).unwrap();
        assert_eq!(p.role, "admin");
        assert!(auth.check_bearer(Some(&format!("Bearer {token}"))).is_ok());
        assert!(matches!(
            auth.check_bearer(Some("Bearer nope")),
            Err(AuthError::BadToken)
        ));
        let wrong = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("admin:nope")
        );
        assert!(matches!(
            auth.login_basic(Some(&wrong)),
            Err(AuthError::BadCredentials)
        ));
        let stored = std::fs::read_to_string(dir.path().join(USERS_FILE)).unwrap();
        assert!(!stored.contains("s3cret") && stored.contains("argon2"));
        // A second open keeps the stored password, whatever the environment says.
        let (again, boot) = Auth::open(dir.path(), Some("other"), Duration::from_secs(60)).unwrap();
        assert!(matches!(boot, AdminBootstrap::Existing));
        assert!(again.login_basic(Some(&header)).is_ok());
    }

    #[test]
    fn generated_password_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (_, boot) = Auth::open(dir.path(), None, Duration::from_secs(60)).unwrap();
        let AdminBootstrap::Generated { file, password } = boot else {
            panic!("expected a generated password")
        };
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), password);
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
