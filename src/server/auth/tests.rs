//! Logins, tokens, user management and its persistence, through [`Auth`].

use super::clock::ManualClock;
use super::*;

const TTL: Duration = Duration::from_secs(60);

/// Changes in these tests need no audit trail.
const NO_AUDIT: RecordChange<'static> = &|_| Ok(());

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn admin() -> Principal {
    Principal {
        user: BOOTSTRAP_ADMIN.into(),
        role: Role::Admin,
    }
}

/// A fresh store whose admin password is `s3cret-admin`; keep the directory alive.
fn opened() -> (tempfile::TempDir, Auth) {
    let dir = tempfile::tempdir().unwrap();
    let (auth, _) = Auth::open(dir.path(), Some("s3cret-admin"), TTL).unwrap();
    (dir, auth)
}

#[test]
fn login_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, boot) = Auth::open(dir.path(), Some("s3cret"), TTL).unwrap();
    assert!(matches!(boot, AdminBootstrap::FromEnv));
    let (token, p) = auth
        .login_basic(Some(&basic("admin", "s3cret")), None)
        .unwrap();
    assert_eq!(p.role, Role::Admin);
    assert_eq!(auth.check_bearer(Some(&bearer(&token))).unwrap(), p);
    assert!(matches!(
        auth.check_bearer(Some("Bearer nope")),
        Err(AuthError::BadToken)
    ));
    assert!(matches!(
        auth.login_basic(Some(&basic("admin", "nope")), None),
        Err(AuthError::BadCredentials)
    ));
    let stored = std::fs::read_to_string(dir.path().join(USERS_FILE)).unwrap();
    assert!(!stored.contains("s3cret") && stored.contains("argon2"));
    // A second open keeps the stored password, whatever the environment says.
    let (again, boot) = Auth::open(dir.path(), Some("other"), TTL).unwrap();
    assert!(matches!(boot, AdminBootstrap::Existing));
    assert!(
        again
            .login_basic(Some(&basic("admin", "s3cret")), None)
            .is_ok()
    );
}

#[test]
fn tokens_expire_after_the_configured_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::default());
    let (auth, _) = Auth::open_with_clock(
        dir.path(),
        Some("s3cret"),
        Duration::from_secs(300),
        clock.clone(),
    )
    .unwrap();
    let (token, _) = auth
        .login_basic(Some(&basic("admin", "s3cret")), None)
        .unwrap();
    clock.advance(Duration::from_secs(299));
    assert!(auth.check_bearer(Some(&bearer(&token))).is_ok());
    clock.advance(Duration::from_secs(1));
    assert!(matches!(
        auth.check_bearer(Some(&bearer(&token))),
        Err(AuthError::BadToken)
    ));
}

#[test]
fn generated_password_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (_, boot) = Auth::open(dir.path(), None, TTL).unwrap();
    let AdminBootstrap::Generated { file, password } = boot else {
        panic!("expected a generated password")
    };
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), password);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn users_persist_with_roles_across_restarts() {
    let (dir, auth) = opened();
    auth.add_user(&admin(), "rita", "reader-pass", Role::Reader, NO_AUDIT)
        .unwrap();
    auth.add_user(&admin(), "wim", "writer-pass", Role::Writer, NO_AUDIT)
        .unwrap();
    assert!(matches!(
        auth.add_user(&admin(), "wim", "another-pass", Role::Admin, NO_AUDIT),
        Err(AuthError::UserExists(_))
    ));
    let (reopened, _) = Auth::open(dir.path(), None, TTL).unwrap();
    let listed = reopened.list_users(&admin()).unwrap();
    let roles: Vec<_> = listed.iter().map(|u| (u.name.as_str(), u.role)).collect();
    assert_eq!(
        roles,
        [
            ("admin", Role::Admin),
            ("rita", Role::Reader),
            ("wim", Role::Writer)
        ]
    );
    let (_, rita) = reopened
        .login_basic(Some(&basic("rita", "reader-pass")), None)
        .unwrap();
    assert_eq!(rita.role, Role::Reader);
}

#[test]
fn only_admins_manage_users_and_anyone_sets_their_own_password() {
    let (_dir, auth) = opened();
    auth.add_user(&admin(), "wim", "writer-pass", Role::Writer, NO_AUDIT)
        .unwrap();
    let wim = auth.verify("wim", "writer-pass").unwrap();
    for refused in [
        auth.add_user(&wim, "eve", "whatever-pass", Role::Admin, NO_AUDIT),
        auth.remove_user(&wim, "admin", NO_AUDIT),
        auth.list_users(&wim).map(|_| ()),
        auth.set_password(&wim, "admin", "taken-over", NO_AUDIT),
    ] {
        assert!(
            matches!(refused, Err(AuthError::PermissionDenied(_))),
            "{refused:?}"
        );
    }
    assert!(matches!(
        auth.verify("eve", "whatever-pass"),
        Err(AuthError::BadCredentials)
    ));
    assert!(auth.verify("admin", "s3cret-admin").is_ok());
    // Their own password, with the old tokens ended.
    let (token, _) = auth
        .login_basic(Some(&basic("wim", "writer-pass")), None)
        .unwrap();
    auth.set_password(&wim, "wim", "new-writer-pass", NO_AUDIT)
        .unwrap();
    assert!(auth.check_bearer(Some(&bearer(&token))).is_err());
    assert!(auth.verify("wim", "writer-pass").is_err());
    assert!(auth.verify("wim", "new-writer-pass").is_ok());
    assert!(matches!(
        auth.set_password(&wim, "wim", "short", NO_AUDIT),
        Err(AuthError::Invalid(_))
    ));
}

#[test]
fn removal_ends_tokens_and_spares_the_last_admin() {
    let (dir, auth) = opened();
    auth.add_user(&admin(), "rita", "reader-pass", Role::Reader, NO_AUDIT)
        .unwrap();
    let (token, _) = auth
        .login_basic(Some(&basic("rita", "reader-pass")), None)
        .unwrap();
    auth.remove_user(&admin(), "rita", NO_AUDIT).unwrap();
    assert!(matches!(
        auth.check_bearer(Some(&bearer(&token))),
        Err(AuthError::BadToken)
    ));
    assert!(auth.verify("rita", "reader-pass").is_err());
    assert!(matches!(
        auth.remove_user(&admin(), "rita", NO_AUDIT),
        Err(AuthError::NoSuchUser(_))
    ));
    let err = auth.remove_user(&admin(), "admin", NO_AUDIT).unwrap_err();
    assert!(matches!(err, AuthError::LastAdmin(_)), "{err}");
    // The refused removal changed nothing, in memory or on disk.
    let (reopened, _) = Auth::open(dir.path(), None, TTL).unwrap();
    assert!(reopened.verify("admin", "s3cret-admin").is_ok());
    // With a second admin the first can go.
    auth.add_user(&admin(), "ada", "admin-pass-2", Role::Admin, NO_AUDIT)
        .unwrap();
    auth.remove_user(&admin(), "admin", NO_AUDIT).unwrap();
    let (reopened, _) = Auth::open(dir.path(), None, TTL).unwrap();
    assert!(reopened.verify("admin", "s3cret-admin").is_err());
    assert_eq!(
        reopened.verify("ada", "admin-pass-2").unwrap().role,
        Role::Admin
    );
}

#[test]
fn names_and_passwords_are_checked() {
    let (_dir, auth) = opened();
    for name in ["", "a:b", "with space", &"x".repeat(65)] {
        assert!(
            matches!(
                auth.add_user(&admin(), name, "long-enough", Role::Reader, NO_AUDIT),
                Err(AuthError::Invalid(_))
            ),
            "{name:?}"
        );
    }
    assert!(matches!(
        auth.add_user(&admin(), "ok", "short", Role::Reader, NO_AUDIT),
        Err(AuthError::Invalid(_))
    ));
}

#[test]
fn a_change_is_recorded_before_it_is_saved_and_not_saved_if_recording_fails() {
    let (dir, auth) = opened();
    let file = dir.path().join(USERS_FILE);
    let record = |change: &UserChange| {
        // At this point the file must not hold the change yet.
        let saved = std::fs::read_to_string(&file).unwrap();
        assert!(!saved.contains("\"rita\""), "saved before recorded");
        assert_eq!(change.action, "user.add");
        assert_eq!(change.detail, "user=rita role=reader");
        Ok(())
    };
    auth.add_user(&admin(), "rita", "reader-pass", Role::Reader, &record)
        .unwrap();
    assert!(std::fs::read_to_string(&file).unwrap().contains("\"rita\""));

    let before = std::fs::read(&file).unwrap();
    let failing: RecordChange<'_> = &|_| Err("audit log is full".into());
    let err = auth
        .remove_user(&admin(), "rita", failing)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("audit log is full") && err.contains("nothing changed"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert!(auth.verify("rita", "reader-pass").is_ok());
}
