//! Logging in to the web console, and who each API request comes from.
//!
//! A login (`POST /api/v1/session/login` with a lotline user and password) sets a
//! session cookie holding a bearer token of the same kind Flight SQL's
//! handshake issues: `HttpOnly` (scripts on the page cannot read it),
//! `SameSite=Strict` (other sites' pages cannot send it), `Secure` behind
//! TLS, and expiring with the token's lifetime. The role is looked up on
//! every request, so a removed user is out at once. Requests that change
//! something (anything but GET and HEAD) with the cookie must also carry the
//! session's CSRF token in `x-lotline-csrf`, which only a page of our own
//! origin can have read from the login answer.
//!
//! Scripts may instead send an `Authorization` header, as for the InfluxDB
//! endpoints ([`super::super::http_auth`]); no cookie, no CSRF token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use crate::server::auth::Principal;
use crate::server::http::HttpState;
use crate::storage::digest;

pub const COOKIE: &str = "lotline_session";
pub const CSRF_HEADER: &str = "x-lotline-csrf";

/// The CSRF token of a session: derived from its session token, so it needs
/// no store of its own, and tells nothing about the session token.
fn csrf_of(token: &str) -> String {
    let mut input = b"lotline console csrf\0".to_vec();
    input.extend_from_slice(token.as_bytes());
    digest::hex(&digest::sha256(&input)[..16])
}

/// The session token of a request's `Cookie` header, if any.
fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

fn cookie(state: &HttpState, token: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if state.console.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .expect("a token is URL-safe base64")
}

fn session_body(
    principal: &Principal,
    csrf: String,
    authentication: bool,
) -> Json<serde_json::Value> {
    Json(json!({
        "user": principal.user,
        "role": principal.role.as_str(),
        "csrf": csrf,
        "authentication": authentication,
    }))
}

#[derive(Deserialize)]
pub struct Login {
    user: String,
    password: String,
}

/// `POST /api/v1/session/login`: checks the password (audited and throttled like
/// every other door) and sets the session cookie.
pub async fn login(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(login): Json<Login>,
) -> Response {
    let Some(auth) = &state.auth else {
        return session_body(&Principal::anonymous(), String::new(), false).into_response();
    };
    let credentials = (login.user, login.password);
    let checked = crate::server::access_audit::check_password(
        auth,
        &state.engine,
        credentials,
        Some(peer.ip()),
        "http.console",
    )
    .await;
    match checked {
        Ok(principal) => {
            let token = auth.issue_token(&principal);
            let mut response = session_body(&principal, csrf_of(&token), true).into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                cookie(&state, &token, auth.token_ttl().as_secs()),
            );
            response
        }
        Err(e) => ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
    }
}

/// `DELETE /api/v1/session`: ends the session's token and clears the cookie.
pub async fn logout(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if let (Some(auth), Some(token)) = (&state.auth, session_token(&headers)) {
        auth.end_token(token);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, "", 0));
    response
}

/// `GET /api/v1/session`: who the caller is, and the CSRF token of its
/// session (so a reloaded page can go on without logging in again).
pub async fn current(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Response {
    let csrf = session_token(&headers).map(csrf_of).unwrap_or_default();
    session_body(&principal, csrf, state.auth.is_some()).into_response()
}

/// The guard in front of every API route but the login: finds who the
/// request comes from and hands the handlers a [`Principal`] (as a request
/// extension), or refuses with 401 (no or bad credentials) or 403 (a
/// cookie-authenticated change without the CSRF token).
pub async fn guard(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    match principal(&state, request.headers(), request.method(), peer).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(e) => {
            state.metrics.rejected(
                "http.console",
                match e.status {
                    StatusCode::FORBIDDEN => "csrf",
                    _ => "unauthenticated",
                },
            );
            e.into_response()
        }
    }
}

async fn principal(
    state: &HttpState,
    headers: &HeaderMap,
    method: &Method,
    peer: SocketAddr,
) -> Result<Principal, ApiError> {
    let Some(auth) = &state.auth else {
        return Ok(Principal::anonymous());
    };
    let unauthorized = |text: String| ApiError::new(StatusCode::UNAUTHORIZED, text);
    if headers.contains_key(header::AUTHORIZATION) {
        return crate::server::http_auth::principal(state, headers, None, peer.ip())
            .await
            .map_err(unauthorized);
    }
    let token = session_token(headers).ok_or_else(|| {
        unauthorized("not logged in: log in at / or send an Authorization header".into())
    })?;
    let principal = auth
        .check_token(token)
        .map_err(|_| unauthorized("the session has ended; log in again".into()))?;
    let safe = matches!(*method, Method::GET | Method::HEAD);
    let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !safe && csrf != Some(csrf_of(token).as_str()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("a change through the session cookie needs the session's {CSRF_HEADER} header"),
        ));
    }
    Ok(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; lotline_session=tok; b=2"),
        );
        assert_eq!(session_token(&headers), Some("tok"));
        let mut other = HeaderMap::new();
        other.append(
            header::COOKIE,
            HeaderValue::from_static("lotline_session_x=1"),
        );
        assert_eq!(session_token(&other), None);
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_are_not_the_session_token() {
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a"), csrf_of("a"));
        assert_eq!(csrf_of("a").len(), 32);
    }
}
