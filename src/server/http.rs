//! The HTTP listener (`--http-listen`, default 127.0.0.1:8086), beside Flight SQL:
//!
//! - `GET /health`: 200 with a JSON summary (version, uptime, buffered rows,
//!   segments); no authentication, for load balancers and probes;
//! - `GET /metrics`: Prometheus text ([`super::metrics`]); no authentication;
//! - `POST /api/v2/write?precision=ns|us|ms|s`: InfluxDB line protocol as
//!   Telegraf sends it (`org` and `bucket` are accepted and ignored), plain or
//!   `Content-Encoding: gzip`, into `samples` as [`crate::connect::line_samples`]
//!   maps it. Authorization `Token <t>` or `Bearer <t>`, where `<t>` is a
//!   bearer token from a Flight SQL handshake or `user:password` (Telegraf
//!   cannot do a handshake); the user needs role `writer` or `admin` (403
//!   otherwise). One request is one durable write, accepted whole
//!   (204) or rejected whole with InfluxDB's error shape
//!   `{"code": "invalid", "message": "line 3, column 5: ..."}`.

use std::future::Future;
use std::io::Read;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use super::auth::{Auth, Permission, Principal};
use super::metrics::{self, Metrics};
use crate::connect::line_protocol::{self, Precision};
use crate::connect::line_samples;
use crate::ingest::{Engine, IngestError, WriteContext};
use crate::model;

/// The `interface` label of line-protocol writes in the metrics.
const INTERFACE: &str = "line_protocol";

/// What the HTTP handlers share.
pub struct HttpState {
    pub engine: Arc<Engine>,
    /// `None`: authentication is off (`--without-auth`).
    pub auth: Option<Arc<Auth>>,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
}

/// Why a write was refused; each maps to InfluxDB's status and error code.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "request body exceeds the limit of {limit} bytes (max_request_bytes), compressed or not; send fewer lines per request"
    )]
    TooLarge { limit: usize },
    #[error("unsupported Content-Encoding '{0}'; send the body plain or gzip-compressed")]
    Encoding(String),
    #[error("{0}")]
    Ingest(#[from] IngestError),
    #[error("internal: {0}")]
    Internal(String),
}

impl WriteError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            Self::TooLarge { .. } | Self::Ingest(IngestError::TooLarge { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "request too large")
            }
            Self::Encoding(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported media type"),
            Self::Ingest(e) if e.is_client_error() => (StatusCode::BAD_REQUEST, "invalid"),
            Self::Ingest(_) | Self::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }

    /// Counts the failure (ingest outcomes are counted where they happen).
    fn count(&self, metrics: &Metrics) {
        match self {
            Self::Unauthorized(_) => metrics.rejected(INTERFACE, "unauthenticated"),
            Self::Forbidden(_) => metrics.rejected(INTERFACE, "permission_denied"),
            Self::Invalid(_) => metrics.rejected(INTERFACE, "invalid"),
            Self::TooLarge { .. } => metrics.rejected(INTERFACE, "too_large"),
            Self::Encoding(_) => metrics.rejected(INTERFACE, "unsupported_encoding"),
            Self::Ingest(_) => {}
            Self::Internal(_) => metrics.error("internal"),
        }
    }
}

impl IntoResponse for WriteError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = json!({ "code": code, "message": self.to_string() });
        (status, axum::Json(body)).into_response()
    }
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .route("/api/v2/write", post(write))
        .with_state(state)
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
/// `listener` is plain TCP or [`super::tls::TlsListener`].
pub async fn serve<L>(
    listener: L,
    state: Arc<HttpState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn health(State(state): State<Arc<HttpState>>) -> Response {
    let usage = state.engine.buffer_usage();
    let manifest = state.engine.manifest();
    let segments = manifest.tables.values().flatten();
    let body = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started.elapsed().as_secs(),
        "buffered_rows": usage.iter().map(|u| u.rows).sum::<usize>(),
        "buffered_bytes": usage.iter().map(|u| u.bytes).sum::<usize>(),
        "segments": segments.clone().count(),
        "segment_bytes": segments.map(|s| s.bytes).sum::<u64>(),
        "authentication": state.auth.is_some(),
    });
    axum::Json(body).into_response()
}

async fn render_metrics(State(state): State<Arc<HttpState>>) -> Response {
    let text = state.metrics.render(&state.engine);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

/// Query parameters of `/api/v2/write`; InfluxDB's `org`, `bucket` and any
/// others are ignored.
#[derive(Debug, Deserialize)]
struct WriteParams {
    precision: Option<String>,
}

async fn write(
    State(state): State<Arc<HttpState>>,
    Query(params): Query<WriteParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match write_request(&state, params, &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            e.count(&state.metrics);
            let (status, _) = e.status_and_code();
            if status.is_server_error() {
                tracing::error!("line protocol write failed: {e}");
            }
            e.into_response()
        }
    }
}

async fn write_request(
    state: &HttpState,
    params: WriteParams,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), WriteError> {
    let principal = authenticate(state, headers).await?;
    let reason = super::reason::decode(
        headers
            .get(crate::ingest::REASON_HEADER)
            .map(|v| v.as_bytes()),
    )
    .map_err(|e| WriteError::Invalid(e.to_string()))?;
    let who = WriteContext::new(&principal.user, "http.line_protocol").with_reason(reason);
    let samples = model::samples();
    principal
        .require(Permission::Write {
            table: samples.name,
        })
        .map_err(|e| {
            warn!("refused line protocol write: {e}");
            WriteError::Forbidden(e.to_string())
        })?;
    let precision = match params.precision.as_deref() {
        None => Precision::Ns,
        Some(p) => Precision::from_param(p).ok_or_else(|| {
            WriteError::Invalid(format!("precision '{p}' is not one of ns, us, ms, s"))
        })?,
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
    {
        None => false,
        Some(e) if e.is_empty() || e == "identity" => false,
        Some(e) if e == "gzip" => true,
        Some(e) => return Err(WriteError::Encoding(e)),
    };
    let limit = state.engine.config().max_request_bytes;
    let raw = read_body(body, limit).await?;
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    // Decompressing and parsing a large body is CPU work: off the async workers.
    let batch = tokio::task::spawn_blocking(move || {
        let bytes = if gzip { gunzip(&raw, limit)? } else { raw };
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            WriteError::Invalid(format!("line {line}: not valid UTF-8"))
        })?;
        let points = line_protocol::parse(text, precision, now_ns)
            .map_err(|e| WriteError::Invalid(e.to_string()))?;
        line_samples::to_samples(&points).map_err(|e| WriteError::Invalid(e.to_string()))
    })
    .await
    .map_err(|e| WriteError::Internal(e.to_string()))??;
    let result = state.engine.write_as(&who, samples, vec![batch]).await;
    state.metrics.record_write(INTERFACE, samples.name, &result);
    result.map(|_| ()).map_err(|e| {
        warn!("rejected line protocol write by {}: {e}", principal.user);
        e.into()
    })
}

/// Checks `Authorization: Token|Bearer <bearer token | user:password>`.
async fn authenticate(state: &HttpState, headers: &HeaderMap) -> Result<Principal, WriteError> {
    let Some(auth) = state.auth.as_ref() else {
        return Ok(Principal::anonymous());
    };
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Token ").or_else(|| h.strip_prefix("Bearer ")))
        .map(str::trim)
        .ok_or_else(|| {
            WriteError::Unauthorized(
                "missing or malformed Authorization header; send 'Token <user>:<password>' or 'Token <bearer token>'"
                    .into(),
            )
        })?;
    let outcome = match credential.split_once(':') {
        Some((user, password)) => {
            let (auth, claimed) = (auth.clone(), user.to_string());
            let (user, password) = (claimed.clone(), password.to_string());
            // argon2 verification is deliberately slow: keep it off the async workers.
            let outcome = tokio::task::spawn_blocking(move || auth.verify(&user, &password))
                .await
                .map_err(|e| WriteError::Internal(e.to_string()))?;
            if let Err(e) = &outcome {
                super::audit::refused_login(&state.engine, &claimed, "http", e).await;
            }
            outcome
        }
        None => auth.check_bearer(Some(&format!("Bearer {credential}"))),
    };
    outcome.map_err(|e| {
        warn!("refused line protocol write: {e}");
        WriteError::Unauthorized(e.to_string())
    })
}

/// Reads the whole body, refusing more than `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, WriteError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| WriteError::Invalid(format!("reading the request body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(WriteError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Decompresses a gzip body, refusing more than `limit` bytes of output.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, WriteError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| WriteError::Invalid(format!("gzip body: {e}")))?;
    if out.len() > limit {
        return Err(WriteError::TooLarge { limit });
    }
    Ok(out)
}
