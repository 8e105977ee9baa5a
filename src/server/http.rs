//! The HTTP listener (`--http-listen`, default 127.0.0.1:8086), beside Flight SQL:
//!
//! - `GET /health`: 200 with a JSON summary in InfluxDB 2's shape (`name`,
//!   `status` "pass", `message`, `version`, `commit`, `checks`) plus lotline's
//!   own figures (uptime, buffered rows, segments); no authentication, for load
//!   balancers, probes and InfluxDB clients;
//! - `GET /metrics`: Prometheus text ([`super::metrics`]); no authentication;
//! - the InfluxDB-compatible endpoints of [`super::influx`]: `/ping`, `/ready`
//!   and the line-protocol writes `/write` (v1), `/api/v2/write` and
//!   `/api/v3/write_lp`;
//! - the web console at `/` and its JSON API under `/api/v1/`
//!   ([`super::console`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde_json::json;

use super::auth::Auth;
use super::influx;
use super::metrics::{self, Metrics};
use crate::ingest::Engine;

/// What the HTTP handlers share.
pub struct HttpState {
    pub engine: Arc<Engine>,
    /// `None`: authentication is off (`--without-auth`).
    pub auth: Option<Arc<Auth>>,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    pub console: super::console::Console,
}

impl HttpState {
    /// When the server started, by the wall clock.
    pub fn started_at(&self) -> SystemTime {
        SystemTime::now() - self.started.elapsed()
    }
}

/// The source revision the binary was built from, when the build knew it.
pub const COMMIT: &str = match option_env!("LOTLINE_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .route("/ping", get(influx::ping).head(influx::ping))
        .route("/ready", get(influx::ready))
        .route(influx::V1_WRITE, post(influx::write))
        .route(influx::V2_WRITE, post(influx::write))
        .route(influx::V3_WRITE, post(influx::write))
        .merge(super::console::routes(state.clone()))
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
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    // Tapped (with nothing) so that handlers learn the peer's address
    // (`ConnectInfo`), whatever the listener: refused logins are throttled
    // per source.
    let listener = listener.tap_io(|_| {});
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn health(State(state): State<Arc<HttpState>>) -> Response {
    let (failing, body) = health_summary(&state);
    // 503 as InfluxDB answers when unhealthy: load balancers take writers elsewhere.
    let code = if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, axum::Json(body)).into_response()
}

/// Whether the server is failing, and `/health`'s JSON body.
pub fn health_summary(state: &HttpState) -> (bool, serde_json::Value) {
    let usage = state.engine.buffer_usage();
    let manifest = state.engine.manifest();
    let segments = manifest.tables.values().flatten();
    let stopped = state.engine.wal_stopped();
    let (rows, bytes) = state.engine.total_buffered();
    let config = state.engine.config();
    let full = rows >= config.max_buffered_rows || bytes >= config.max_buffered_bytes;
    let disk = state.engine.check_free_space().err();
    let (status, message) = match (&stopped, state.engine.flush_failure()) {
        (Some(reason), _) => ("fail", format!("queries only: writes stopped: {reason}")),
        (None, _) if disk.is_some() => ("fail", disk.expect("checked").to_string()),
        (None, Some(f)) => (
            if full { "fail" } else { "warn" },
            format!(
                "flushing has failed for {} s ({} attempts): {}; {}",
                f.failing_for.as_secs(),
                f.attempts,
                f.error,
                if full {
                    "the write buffers are full, writes are refused until a flush succeeds"
                } else {
                    "writes are taken until the write buffers are full"
                }
            ),
        ),
        (None, None) => ("pass", "ready for queries and writes".to_string()),
    };
    let body = json!({
        "name": "lotline",
        "status": status,
        "message": message,
        "checks": [],
        "version": env!("CARGO_PKG_VERSION"),
        "commit": COMMIT,
        "uptime_secs": state.started.elapsed().as_secs(),
        "buffered_rows": usage.iter().map(|u| u.rows).sum::<usize>(),
        "buffered_bytes": usage.iter().map(|u| u.bytes).sum::<usize>(),
        "segments": segments.clone().count(),
        "segment_bytes": segments.map(|s| s.bytes).sum::<u64>(),
        "authentication": state.auth.is_some(),
    });
    (status == "fail", body)
}

async fn render_metrics(State(state): State<Arc<HttpState>>) -> Response {
    let text = state.metrics.render(&state.engine);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}
