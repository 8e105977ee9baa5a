//! The lot routes of the console's API: a lot with its production runs,
//! work orders, equipment and process tags (`/api/v1/lots/{id}`), its
//! genealogy as a graph (`/trace`), and its process data (`/samples`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{limit, lit, lit_list};
use super::{ApiError, json as to_json};
use crate::server::auth::Principal;
use crate::server::http::HttpState;

type Answer = Result<Json<Value>, ApiError>;

/// Most lots a genealogy graph shows.
const MAX_NODES: usize = 500;

/// Distinct string values of `field` in `rows`.
fn field_values<'a>(rows: &'a [Value], field: &str) -> BTreeSet<&'a str> {
    rows.iter()
        .filter_map(|r| r.get(field).and_then(Value::as_str))
        .collect()
}

/// `GET /api/v1/lots/{id}`: the lot's record, its production runs (oldest
/// first), their work orders and equipment, and the tags of that equipment.
pub async fn lot(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer {
    let console = &state.console;
    let query = |sql: String| {
        let principal = principal.clone();
        async move {
            let batches = console.query(&principal, &sql).await?;
            Ok::<_, ApiError>(to_json::objects(&batches, 10_000).0)
        }
    };
    let lot = query(format!("SELECT * FROM lots WHERE id = {}", lit(&id))).await?;
    let runs = query(format!(
        "SELECT * FROM production_runs WHERE lot = {} ORDER BY start_ts",
        lit(&id)
    ))
    .await?;
    let mut orders = field_values(&runs, "work_order");
    orders.extend(field_values(&lot, "work_order"));
    let equipment_ids = field_values(&runs, "equipment");
    let (work_orders, equipment, tags) = if equipment_ids.is_empty() && orders.is_empty() {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        let list = |set: &BTreeSet<&str>| lit_list(set.iter().copied());
        (
            query(format!(
                "SELECT * FROM work_orders WHERE id IN {}",
                list(&orders)
            ))
            .await?,
            query(format!(
                "SELECT * FROM equipment WHERE id IN {}",
                list(&equipment_ids)
            ))
            .await?,
            query(format!(
                "SELECT tag, unit, description, equipment FROM tags WHERE equipment IN {} \
                 ORDER BY equipment, tag",
                list(&equipment_ids)
            ))
            .await?,
        )
    };
    if lot.is_empty() && runs.is_empty() {
        let known = query(format!(
            "SELECT 1 FROM genealogy WHERE input_lot = {0} OR output_lot = {0} LIMIT 1",
            lit(&id)
        ))
        .await?;
        if known.is_empty() {
            return Err(ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                format!("no lot {id:?}: not in lots, production_runs or genealogy"),
            ));
        }
    }
    Ok(Json(json!({
        "id": id,
        "lot": lot.into_iter().next(),
        "runs": runs,
        "work_orders": work_orders,
        "equipment": equipment,
        "tags": tags,
    })))
}

#[derive(Deserialize)]
pub struct TraceParams {
    /// `backward` (what went in), `forward` (where it went) or `both`.
    direction: Option<String>,
    /// Edges from the lot; 3 when absent, at most 50.
    depth: Option<u32>,
}

/// `GET /api/v1/lots/{id}/trace?direction=&depth=`: the lots reached, with
/// their signed depth (backward negative) and lot records, and every
/// genealogy edge between two of them.
pub async fn trace(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Query(params): Query<TraceParams>,
) -> Answer {
    let console = &state.console;
    let depth = params.depth.unwrap_or(3).min(50);
    let directions: &[(&str, i64)] = match params.direction.as_deref().unwrap_or("both") {
        "backward" => &[("trace_backward", -1)],
        "forward" => &[("trace_forward", 1)],
        "both" => &[("trace_backward", -1), ("trace_forward", 1)],
        other => {
            return Err(ApiError::bad_request(format!(
                "direction={other:?}: use backward, forward or both"
            )));
        }
    };
    let mut depths: BTreeMap<String, i64> = BTreeMap::from([(id.clone(), 0)]);
    let mut truncated = false;
    for (function, sign) in directions {
        let sql = format!(
            "SELECT lot, depth FROM {function}({}, {depth}) ORDER BY depth, lot LIMIT {}",
            lit(&id),
            MAX_NODES + 1
        );
        let batches = console.query(&principal, &sql).await?;
        let (rows, cut) = to_json::objects(&batches, MAX_NODES);
        truncated |= cut;
        for row in rows {
            if let (Some(lot), Some(d)) = (row["lot"].as_str(), row["depth"].as_i64()) {
                depths.entry(lot.to_string()).or_insert(sign * d);
            }
        }
    }
    let lots = lit_list(depths.keys().map(String::as_str));
    let edges = console
        .query(
            &principal,
            &format!(
                "SELECT input_lot, output_lot, quantity, uom, work_order, equipment, ts \
                 FROM genealogy WHERE input_lot IN {lots} AND output_lot IN {lots} \
                 ORDER BY input_lot, output_lot, ts"
            ),
        )
        .await?;
    let records = console
        .query(
            &principal,
            &format!("SELECT id, material, quantity, uom, status, work_order FROM lots WHERE id IN {lots}"),
        )
        .await?;
    let records: BTreeMap<String, Value> = to_json::objects(&records, usize::MAX)
        .0
        .into_iter()
        .filter_map(|r| Some((r["id"].as_str()?.to_string(), r)))
        .collect();
    let nodes: Vec<Value> = depths
        .iter()
        .map(|(lot, depth)| json!({"lot": lot, "depth": depth, "record": records.get(lot)}))
        .collect();
    Ok(Json(json!({
        "lot": id,
        "depth": depth,
        "nodes": nodes,
        "edges": to_json::objects(&edges, usize::MAX).0,
        "truncated": truncated,
    })))
}

#[derive(Deserialize)]
pub struct SamplesParams {
    tag: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/lots/{id}/samples?tag=&limit=`: `lot_samples(id)`, oldest
/// first.
pub async fn samples(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Query(params): Query<SamplesParams>,
) -> Answer {
    let limit = limit(params.limit, 1000, 100_000);
    let filter = params
        .tag
        .as_deref()
        .map_or_else(String::new, |t| format!("WHERE tag = {}", lit(t)));
    let sql = format!(
        "SELECT * FROM lot_samples({}) {filter} ORDER BY ts, tag LIMIT {}",
        lit(&id),
        limit + 1
    );
    let batches = state.console.query(&principal, &sql).await?;
    let (rows, truncated) = to_json::objects(&batches, limit);
    Ok(Json(json!({ "samples": rows, "truncated": truncated })))
}
