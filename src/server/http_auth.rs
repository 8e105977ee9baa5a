//! Who an HTTP request comes from, by its `Authorization` header: the one
//! reading of HTTP credentials shared by the InfluxDB write endpoints and the
//! web console's API (for scripts; the console's pages use a session
//! cookie, `console::session`).

use std::net::IpAddr;

use axum::http::{HeaderMap, header};

use super::auth::{self, Principal};
use super::http::HttpState;

/// Checks `Authorization: Token|Bearer <bearer token | user:password>`,
/// `Basic <base64 user:password>`, or, without that header, `query_user`
/// (InfluxDB 1's `u`/`p` parameters). A refused password is audited and
/// throttled ([`super::access_audit::check_password`]). `Err` is the refusal's
/// text for the caller.
pub async fn principal(
    state: &HttpState,
    headers: &HeaderMap,
    query_user: Option<(String, String)>,
    peer: IpAddr,
) -> Result<Principal, String> {
    let Some(auth) = state.auth.as_ref() else {
        return Ok(Principal::anonymous());
    };
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = header
        .and_then(|h| {
            h.strip_prefix("Token ")
                .or_else(|| h.strip_prefix("Bearer "))
        })
        .map(str::trim);
    let user_password = match (header, token) {
        (Some(h), _) if h.starts_with("Basic ") => {
            Some(auth::basic_credentials(Some(h)).map_err(|e| e.to_string())?)
        }
        (_, Some(t)) => t
            .split_once(':')
            .map(|(u, p)| (u.to_string(), p.to_string())),
        (None, None) => query_user,
        (Some(_), None) => None,
    };
    let outcome = match (user_password, token) {
        (Some(credentials), _) => {
            super::access_audit::check_password(
                auth,
                &state.engine,
                credentials,
                Some(peer),
                "http",
            )
            .await
        }
        (None, Some(token)) => auth.check_token(token),
        (None, None) => {
            return Err(
                "missing or malformed Authorization header; send 'Token <user>:<password>', \
                 'Token <bearer token>' or 'Basic <base64 user:password>'"
                    .into(),
            );
        }
    };
    outcome.map_err(|e| e.to_string())
}
