//! `GET /api/v1/history?tag=&from=&to=&width=`: one tag's samples in a time
//! range as plot values for a chart `width` pixels wide ([`Decimator`]):
//! the samples stream through once and at most two points per pixel come
//! back, so a year of 1 s data draws from one small answer.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampNanosecondType, UInt32Type};
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::api::parse_time;
use super::decimate::Decimator;
use crate::query::sql_literal;
use crate::server::auth::Principal;
use crate::server::http::HttpState;

/// Widest chart served: two 4K screens side by side.
pub const MAX_WIDTH: u32 = 8192;

#[derive(Deserialize)]
pub struct HistoryParams {
    tag: String,
    from: String,
    to: String,
    /// Chart width in pixels (columns); 1000 when absent.
    width: Option<u32>,
}

pub async fn history(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<Value>, ApiError> {
    let from = parse_time("from", &params.from)?;
    let to = parse_time("to", &params.to)?;
    if to <= from {
        return Err(ApiError::bad_request(format!(
            "to ({}) must be after from ({})",
            params.to, params.from
        )));
    }
    let console = &state.console;
    let (mut definition, _) = console
        .rows(
            &principal,
            &format!(
                "SELECT unit, description, value_type, interpolation, eng_low, eng_high \
                 FROM tags WHERE tag = {}",
                sql_literal::string(&params.tag)
            ),
            1,
        )
        .await?;
    let definition = definition.pop().unwrap_or(Value::Null);
    let sql = format!(
        "SELECT ts, value, quality FROM samples WHERE tag = {} AND ts >= {} AND ts < {}",
        sql_literal::string(&params.tag),
        sql_literal::timestamp(from),
        sql_literal::timestamp(to)
    );
    let frame = console.plan(&principal, &sql, None).await?;
    let mut decimator = Decimator::new(from, to, params.width.unwrap_or(1000), MAX_WIDTH);
    let mut failure = None;
    console
        .run(frame, |batch| match fold(&mut decimator, &batch) {
            Ok(()) => true,
            Err(e) => {
                failure = Some(e);
                false
            }
        })
        .await?;
    if let Some(e) = failure {
        return Err(e);
    }
    let plot = decimator.finish();
    Ok(Json(json!({
        "tag": params.tag,
        "definition": definition,
        "from": from as f64 / 1e6,
        "to": to as f64 / 1e6,
        "plot": plot,
    })))
}

/// Folds a batch of (ts, value, quality) into `decimator`.
fn fold(decimator: &mut Decimator, batch: &RecordBatch) -> Result<(), ApiError> {
    let internal = || {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("samples scan gave columns {:?}", batch.schema()),
        )
    };
    let ts = batch
        .column(0)
        .as_primitive_opt::<TimestampNanosecondType>()
        .ok_or_else(internal)?;
    let values = batch
        .column(1)
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(internal)?;
    let quality = batch
        .column(2)
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(internal)?;
    for row in 0..batch.num_rows() {
        let value = values.is_valid(row).then(|| values.value(row));
        decimator.add(ts.value(row), value, quality.value(row));
    }
    Ok(())
}
