//! The web console: a page a process engineer opens first (trends, lot
//! genealogy, the audit trail, collectors and server figures), served by
//! the HTTP listener at `/` from files embedded in the binary, and the JSON
//! API under `/api/v1/` that the page uses and scripts may use too
//! (docs/INTERFACES.md).
//!
//! Every API route but the login sits behind one guard
//! ([`session::guard`]) that finds the caller; a route cannot be added
//! without it. Every query the API runs is planned by the same
//! [`Planner`] as Flight SQL's statements, so roles apply alike.

mod api;
mod assets;
mod changes;
mod decimate;
mod gzip;
mod history;
mod integration;
pub(crate) mod json;
mod lots;
mod session;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use datafusion::dataframe::DataFrame;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::Semaphore;

use super::auth::Principal;
use super::execute::df_status;
use super::http::HttpState;
use super::statement::Planner;
use crate::ingest::WriteContext;

/// What the console's handlers share beyond [`HttpState`].
pub struct Console {
    pub planner: Planner,
    /// Places for statements at once (`--max-concurrent-queries`).
    pub slots: Arc<Semaphore>,
    pub statement_timeout: Option<Duration>,
    /// Set the cookie's `Secure` attribute (the listener speaks TLS).
    pub secure_cookies: bool,
    /// Whether `collector_status` exists (collectors were configured).
    pub collectors: bool,
}

/// The interface name the console's statements, refusals and audit entries
/// carry.
pub const INTERFACE: &str = "http.console";

impl Console {
    /// `slots`: the places for statements Flight SQL's statements take
    /// too, so `--max-concurrent-queries` bounds both doors together.
    pub fn new(planner: Planner, slots: Arc<Semaphore>, secure_cookies: bool) -> Self {
        let options = &planner.options;
        let collectors = options
            .extra_tables
            .iter()
            .any(|(name, _)| *name == crate::collect::status::TABLE_NAME);
        Self {
            slots,
            statement_timeout: options.statement_timeout,
            secure_cookies,
            collectors,
            planner,
        }
    }

    /// Plans `sql` for `principal` as Flight SQL would.
    async fn plan(
        &self,
        principal: &Principal,
        sql: &str,
        who: Option<WriteContext>,
    ) -> Result<DataFrame, ApiError> {
        let who = who.unwrap_or_else(|| WriteContext::new(&principal.user, INTERFACE));
        Ok(self.planner.plan(sql, principal, who, None).await?)
    }

    /// Runs `frame` in one of the places for statements and, unless it
    /// writes (a write always finishes, as over Flight SQL), within the
    /// statement timeout, handing each batch to `each`; stops early when
    /// `each` says so (`false`).
    async fn run(
        &self,
        frame: DataFrame,
        mut each: impl FnMut(RecordBatch) -> bool,
    ) -> Result<(), ApiError> {
        let writes = !super::execute::Writes::of(frame.logical_plan())
            .tables
            .is_empty();
        let _slot = self.slots.acquire().await.expect("never closed");
        let work = async {
            let mut stream = frame.execute_stream().await.map_err(df_status)?;
            while let Some(batch) = stream.next().await {
                if !each(batch.map_err(df_status)?) {
                    break;
                }
            }
            Ok::<_, ApiError>(())
        };
        match self.statement_timeout.filter(|_| !writes) {
            Some(limit) => tokio::time::timeout(limit, work).await.map_err(|_| {
                ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("the query ran longer than the statement timeout ({limit:?})"),
                )
            })?,
            None => work.await,
        }
    }

    /// Plans and runs a query of the console's own: its rows as JSON
    /// objects, at most `limit`, and whether rows were left out (the query
    /// stops once it has given more).
    async fn rows(
        &self,
        principal: &Principal,
        sql: &str,
        limit: usize,
    ) -> Result<(Vec<serde_json::Value>, bool), ApiError> {
        let frame = self.plan(principal, sql, None).await?;
        let batches = self.first_rows(frame, limit).await?;
        Ok(json::objects(&batches, limit))
    }

    /// Runs `frame` until it has given more than `limit` rows (so a caller
    /// can tell that rows were left out), collecting its batches.
    async fn first_rows(
        &self,
        frame: DataFrame,
        limit: usize,
    ) -> Result<Vec<RecordBatch>, ApiError> {
        let mut batches = Vec::new();
        let mut rows = 0;
        self.run(frame, |batch| {
            rows += batch.num_rows();
            batches.push(batch);
            rows <= limit
        })
        .await?;
        Ok(batches)
    }
}

/// A refusal or failure, answered as `{"error": "..."}` with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        let code = match status.code() {
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                StatusCode::BAD_REQUEST
            }
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::ResourceExhausted => StatusCode::INSUFFICIENT_STORAGE,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(code, status.message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!("console API: {}", self.message);
        }
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

/// Refusals axum's extractors answer by themselves (a missing or malformed
/// parameter, a body that is not the JSON asked for) come as plain text;
/// the API says every refusal as `{"error": "..."}`.
async fn json_refusals(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    if !response.status().is_client_error() || !plain {
        return response;
    }
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    ApiError::new(status, String::from_utf8_lossy(&body).trim().to_string()).into_response()
}

/// The console's routes: the page at `/`, its files under `/console/`, and
/// the API under `/api/v1/`, all but the login behind [`session::guard`].
pub fn routes(state: Arc<HttpState>) -> Router<Arc<HttpState>> {
    let guarded = api::routes()
        .route(
            "/api/v1/session",
            get(session::current).delete(session::logout),
        )
        .route_layer(axum::middleware::from_fn_with_state(state, session::guard))
        .layer(axum::middleware::from_fn(gzip::compress));
    Router::new()
        .route("/api/v1/session/login", axum::routing::post(session::login))
        .merge(guarded)
        .layer(axum::middleware::from_fn(json_refusals))
        .merge(assets::routes())
}
