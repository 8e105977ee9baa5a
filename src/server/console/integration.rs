//! The Level 4 routes of the API (docs/INTEGRATION.md): `POST
//! /api/v1/b2mml` imports a B2MML document and answers its `ConfirmBOD`
//! (200 accepted, 400 refused with the element and the problem, 5xx when
//! lotline could not write); `GET /api/v1/b2mml/operations-performance`
//! answers `ShowOperationsPerformance` for `work_order=` (comma-separated)
//! or `start=`/`end=`.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::ApiError;
use super::api::{listed, parse_time};
use crate::ingest::{REASON_HEADER, WriteContext};
use crate::server::auth::Principal;
use crate::server::b2mml::{self, PerformanceRequest};
use crate::server::http::HttpState;
use crate::server::reason;

const XML: &str = "application/xml";

/// The interface a B2MML import's audit entries name.
pub const B2MML_INTERFACE: &str = "http.b2mml";

pub async fn import(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let reason = reason::decode(headers.get(REASON_HEADER).map(|v| v.as_bytes()))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let who = WriteContext::new(&principal.user, B2MML_INTERFACE).with_reason(reason);
    let answer = b2mml::import(&state.console.planner, &principal, who, &body).await?;
    // The same codes as the Flight action's refusals, said in HTTP.
    let status = match &answer.outcome {
        Ok(_) => StatusCode::OK,
        Err(refused) => ApiError::from(b2mml::refusal(refused)).status,
    };
    Ok((status, [(header::CONTENT_TYPE, XML)], answer.confirm_bod).into_response())
}

#[derive(Deserialize)]
pub struct PerformanceParams {
    work_order: Option<String>,
    start: Option<String>,
    end: Option<String>,
    receiver: Option<String>,
}

pub async fn performance(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<PerformanceParams>,
) -> Result<Response, ApiError> {
    let time = |name: &str, value: &Option<String>| {
        value.as_deref().map(|v| parse_time(name, v)).transpose()
    };
    let request = PerformanceRequest {
        work_orders: listed(params.work_order.as_deref().unwrap_or_default())
            .into_iter()
            .map(str::to_string)
            .collect(),
        start: time("start", &params.start)?,
        end: time("end", &params.end)?,
        receiver: params.receiver,
    };
    let console = &state.console;
    let xml = b2mml::performance(&console.planner, &principal, &console.slots, &request).await?;
    Ok(([(header::CONTENT_TYPE, XML)], xml).into_response())
}
