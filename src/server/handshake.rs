//! The Flight handshake: basic credentials in, a bearer token out (in the
//! payload and as an `authorization: Bearer` header). A wrong user name or
//! password is refused and recorded in `audit_log`; too many from one user
//! name or address are refused at once for a while ([`super::auth::throttle`]).

use std::net::IpAddr;
use std::sync::Arc;

use arrow_flight::HandshakeResponse;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Response, Status};
use tracing::{info, warn};

use super::auth::Auth;
use super::flight::BoxStream;
use crate::ingest::Engine;

/// Answers one handshake. Without authentication every caller gets the
/// token "anonymous".
pub(super) async fn handshake(
    engine: &Engine,
    auth: Option<&Arc<Auth>>,
    metadata: &MetadataMap,
    source: Option<IpAddr>,
) -> Result<Response<BoxStream<HandshakeResponse>>, Status> {
    let token = match auth {
        None => "anonymous".to_string(),
        Some(auth) => {
            let header = metadata.get("authorization").and_then(|v| v.to_str().ok());
            // Clients (the ADBC driver among them) repeat the handshake
            // with the token they hold; a valid one is simply confirmed.
            if let Some(bearer) = header.filter(|h| h.starts_with("Bearer ")) {
                auth.check_bearer(Some(bearer))
                    .map_err(|e| Status::unauthenticated(e.to_string()))?;
                return handshake_reply(bearer.trim_start_matches("Bearer ").trim().to_string());
            }
            let outcome = match super::auth::basic_credentials(header) {
                Ok(credentials) => {
                    super::access_audit::check_password(
                        auth,
                        engine,
                        credentials,
                        source,
                        "flight_sql.handshake",
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(principal) => {
                    info!("user '{}' authenticated", principal.user);
                    auth.issue_token(&principal)
                }
                Err(e) => {
                    warn!("refused handshake: {e}");
                    return Err(Status::unauthenticated(e.to_string()));
                }
            }
        }
    };
    handshake_reply(token)
}

/// The handshake's answer: the token in the payload and as `authorization: Bearer` header.
fn handshake_reply(token: String) -> Result<Response<BoxStream<HandshakeResponse>>, Status> {
    let bearer = MetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|e| Status::internal(e.to_string()))?;
    let reply = HandshakeResponse {
        protocol_version: 0,
        payload: token.into_bytes().into(),
    };
    let mut response: Response<BoxStream<HandshakeResponse>> =
        Response::new(Box::pin(futures::stream::once(async { Ok(reply) })));
    response.metadata_mut().insert("authorization", bearer);
    Ok(response)
}
