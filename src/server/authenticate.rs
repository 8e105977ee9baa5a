//! Authentication as one layer in front of every gRPC service (Flight SQL
//! and `lotline.v1`): a call reaches a service only with a verified caller,
//! which the layer puts in the request and the service reads with
//! [`caller`]. A service method cannot forget the check, and a call without
//! valid credentials is refused before the service reads anything of it (a
//! DoPut's first message may be a whole request). Two calls pass without a
//! caller: Flight's Handshake, which is the login, and
//! `AdminService.Health`, for probes (like HTTP `/health`).
//!
//! Credentials: `authorization: Bearer <token>` (from a Flight SQL
//! handshake) or `Basic <base64 user:password>`, checked now (throttled,
//! and a refusal audited, by [`super::access_audit::check_password`]).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use tonic::body::Body;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::{Request, Status};

use super::auth::{self, Auth, Principal};
use super::metrics::Metrics;
use crate::ingest::Engine;

/// The calls that need no caller.
const OPEN: [&str; 2] = [
    "/arrow.flight.protocol.FlightService/Handshake",
    "/lotline.v1.AdminService/Health",
];
const FLIGHT_PREFIX: &str = "/arrow.flight.protocol.FlightService/";

/// What checking a call's credentials needs.
pub struct Gate {
    /// `None`: authentication is off (`--without-auth`); every caller is
    /// [`Principal::anonymous`].
    pub auth: Option<Arc<Auth>>,
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
}

impl Gate {
    /// The verified caller of a call with these headers from `source`.
    async fn principal(
        &self,
        headers: &http::HeaderMap,
        source: Option<IpAddr>,
        interface: &'static str,
    ) -> Result<Principal, Status> {
        let Some(auth) = &self.auth else {
            return Ok(Principal::anonymous());
        };
        let header = headers.get("authorization").and_then(|v| v.to_str().ok());
        let outcome = match header {
            Some(h) if h.starts_with("Basic ") => match auth::basic_credentials(Some(h)) {
                Ok(credentials) => {
                    super::access_audit::check_password(
                        auth,
                        &self.engine,
                        credentials,
                        source,
                        interface,
                    )
                    .await
                }
                Err(e) => Err(e),
            },
            _ => auth.check_bearer(header),
        };
        outcome.map_err(|e| {
            self.metrics.rejected(interface, "unauthenticated");
            tracing::warn!("refused a {interface} call: {e}");
            Status::unauthenticated(format!(
                "{e} (send 'authorization: Bearer <token from a Flight SQL handshake>' or \
                 'Basic <base64 user:password>')"
            ))
        })
    }
}

/// A gRPC service behind the [`Gate`].
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S> Authenticated<S> {
    pub fn new(inner: S, gate: Arc<Gate>) -> Self {
        Self { inner, gate }
    }
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

/// The peer's address, as tonic records it for plain TCP and for TLS.
fn source(request: &http::Request<Body>) -> Option<IpAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|tls| tls.get_ref().remote_addr())
        })
        .map(|addr| addr.ip())
}

impl<S> Service<http::Request<Body>> for Authenticated<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The service that was polled ready takes the call; a clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            let path = request.uri().path();
            if OPEN.contains(&path) {
                return inner.call(request).await;
            }
            let interface = if path.starts_with(FLIGHT_PREFIX) {
                "flight_sql"
            } else {
                "grpc"
            };
            let source = source(&request);
            match gate.principal(request.headers(), source, interface).await {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

/// The caller the [`Gate`] verified for `request`. Fails closed: a request
/// that did not come through the gate has no caller.
pub fn caller<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}
