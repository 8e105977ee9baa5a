//! InfluxDB-compatible HTTP endpoints, so InfluxDB clients, Telegraf and
//! gateways that speak InfluxDB write into lotline unchanged:
//!
//! - `GET|HEAD /ping`: 204 with `X-Influxdb-Version`, as InfluxDB 1 and 2;
//! - `GET /ready`: 200 `{"status": "ready", "started": …, "up": …}`, as InfluxDB 2;
//! - line protocol into `samples` ([`crate::connect::line_samples`]) on three
//!   paths, one parser, differing only in their parameters and error shape:
//!   - `POST /write?precision=n|u|ms|s|m|h` (InfluxDB 1; `db`, `rp` ignored;
//!     errors `{"error": "…"}`),
//!   - `POST /api/v2/write?precision=ns|us|ms|s` (InfluxDB 2, Telegraf; `org`,
//!     `bucket` ignored; errors `{"code": "invalid", "message": "line 3, column 5: …"}`),
//!   - `POST /api/v3/write_lp?precision=auto|nanosecond|microsecond|millisecond|second`
//!     (InfluxDB 3; `db` ignored; errors `{"error": "…", "data": null}`).
//!     lotline accepts or rejects a request whole: `accept_partial` is ignored.
//!
//! Bodies are plain or `Content-Encoding: gzip`. Credentials: `Authorization:
//! Token <t>` or `Bearer <t>`, where `<t>` is a bearer token from a Flight SQL
//! handshake or `user:password` (Telegraf cannot do a handshake); `Basic
//! <base64 user:password>`; or, for `/write`, InfluxDB 1's `u` and `p` query
//! parameters. The user needs role `writer` or `admin` (403 otherwise). One
//! request is one durable write, accepted whole (204) or rejected whole.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use super::auth::{Permission, Principal};
use super::http::HttpState;
use super::metrics::Metrics;
use crate::connect::line_protocol::{self, Precision};
use crate::connect::line_samples;
use crate::ingest::{IngestError, WriteContext};
use crate::model;

/// The `interface` label of line-protocol writes in the metrics.
const INTERFACE: &str = "line_protocol";

/// The write paths of InfluxDB 1, 2 and 3.
pub const V1_WRITE: &str = "/write";
pub const V2_WRITE: &str = "/api/v2/write";
pub const V3_WRITE: &str = "/api/v3/write_lp";

/// Which InfluxDB API a write came through: its precision values and error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V1,
    V2,
    V3,
}

impl Api {
    /// The request's precision; each API has its own names and default.
    fn precision(self, param: Option<&str>) -> Result<Precision, WriteError> {
        let (parsed, valid) = match self {
            Api::V1 => (param.map(Precision::from_v1_param), "n, u, ms, s, m, h"),
            Api::V2 => (param.map(Precision::from_param), "ns, us, ms, s"),
            Api::V3 => (
                param.map(Precision::from_v3_param),
                "auto, nanosecond, microsecond, millisecond, second",
            ),
        };
        match parsed {
            None if self == Api::V3 => Ok(Precision::Auto),
            None => Ok(Precision::Ns),
            Some(Some(p)) => Ok(p),
            Some(None) => Err(WriteError::Invalid(format!(
                "precision '{}' is not one of {valid}",
                param.unwrap_or_default()
            ))),
        }
    }

    fn source(self) -> &'static str {
        match self {
            Api::V1 => "http.influxdb_v1",
            Api::V2 => "http.line_protocol",
            Api::V3 => "http.influxdb_v3",
        }
    }
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
            Self::Ingest(e) if e.is_unavailable() => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            Self::Ingest(e) if e.is_resource_exhausted() => {
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient storage")
            }
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

impl WriteError {
    /// The error as `api`'s clients expect it.
    fn into_response_for(self, api: Api) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.to_string();
        let body = match api {
            Api::V1 => json!({ "error": message }),
            Api::V2 => json!({ "code": code, "message": message }),
            Api::V3 => json!({ "error": message, "data": null }),
        };
        (status, axum::Json(body)).into_response()
    }
}
/// Query parameters of the write endpoints; `db`, `rp`, `org`, `bucket`,
/// `accept_partial`, `no_sync` and any others are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct WriteParams {
    precision: Option<String>,
    /// InfluxDB 1's user name and password parameters (`/write` only).
    u: Option<String>,
    p: Option<String>,
}

/// `/ping`: alive, and which version answers (InfluxDB clients read the header).
pub async fn ping() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            ("X-Influxdb-Version", env!("CARGO_PKG_VERSION")),
            ("X-Influxdb-Build", "lotline"),
        ],
    )
        .into_response()
}

/// `/ready`: InfluxDB 2's readiness answer.
pub async fn ready(State(state): State<Arc<HttpState>>) -> Response {
    let started: chrono::DateTime<chrono::Utc> = state.started_at().into();
    let up = state.started.elapsed();
    axum::Json(json!({
        "status": "ready",
        "started": started.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "up": format!("{:.3}s", up.as_secs_f64()),
    }))
    .into_response()
}

/// The three write endpoints; the path tells which API the client speaks.
pub async fn write(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    Query(mut params): Query<WriteParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let api = match uri.path() {
        V1_WRITE => Api::V1,
        V3_WRITE => Api::V3,
        _ => Api::V2,
    };
    if api != Api::V1 {
        // `u` and `p` are InfluxDB 1's; elsewhere they are just unknown parameters.
        (params.u, params.p) = (None, None);
    }
    match write_request(&state, api, params, &headers, body, peer.ip()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            e.count(&state.metrics);
            let (status, _) = e.status_and_code();
            if status.is_server_error() {
                tracing::error!("line protocol write failed: {e}");
            }
            e.into_response_for(api)
        }
    }
}

async fn write_request(
    state: &HttpState,
    api: Api,
    params: WriteParams,
    headers: &HeaderMap,
    body: Body,
    peer: IpAddr,
) -> Result<(), WriteError> {
    let principal = authenticate(state, headers, params.u.zip(params.p), peer).await?;
    let reason = super::reason::decode(
        headers
            .get(crate::ingest::REASON_HEADER)
            .map(|v| v.as_bytes()),
    )
    .map_err(|e| WriteError::Invalid(e.to_string()))?;
    let request_id = headers
        .get(crate::ingest::REQUEST_ID_HEADER)
        .map(|v| v.to_str().map(str::to_string))
        .transpose()
        .map_err(|_| WriteError::Invalid("the x-lotline-request-id header is not ASCII".into()))?;
    let who = WriteContext::new(&principal.user, api.source())
        .with_reason(reason)
        .with_request_id(request_id)
        .map_err(|e| WriteError::Invalid(e.to_string()))?;
    let samples = model::samples();
    principal
        .require(Permission::Write {
            table: samples.name,
        })
        .map_err(|e| {
            warn!("refused line protocol write: {e}");
            WriteError::Forbidden(e.to_string())
        })?;
    let precision = api.precision(params.precision.as_deref())?;
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

async fn authenticate(
    state: &HttpState,
    headers: &HeaderMap,
    query_user: Option<(String, String)>,
    peer: IpAddr,
) -> Result<Principal, WriteError> {
    super::http_auth::principal(state, headers, query_user, peer)
        .await
        .map_err(|e| {
            warn!("refused line protocol write: {e}");
            WriteError::Unauthorized(e)
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
