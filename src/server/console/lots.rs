//! The lot routes of the console's API: a lot with its production runs,
//! work orders, equipment and process tags (`/api/v1/lots/{id}`), its
//! genealogy as a graph (`/trace`), and its process data (`/samples`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::api::limit;
use crate::query::sql_literal;
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
        async move { Ok::<_, ApiError>(console.rows(&principal, &sql, 10_000).await?.0) }
    };
    let lot = query(format!(
        "SELECT * FROM lots WHERE id = {}",
        sql_literal::string(&id)
    ))
    .await?;
    let runs = query(format!(
        "SELECT * FROM production_runs WHERE lot = {} ORDER BY start_ts",
        sql_literal::string(&id)
    ))
    .await?;
    let mut orders = field_values(&runs, "work_order");
    orders.extend(field_values(&lot, "work_order"));
    let equipment_ids = field_values(&runs, "equipment");
    let (work_orders, equipment, tags) = if equipment_ids.is_empty() && orders.is_empty() {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        let list = |set: &BTreeSet<&str>| sql_literal::strings(set.iter().copied());
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
            sql_literal::string(&id)
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
            sql_literal::string(&id),
            MAX_NODES + 1
        );
        let (rows, cut) = console.rows(&principal, &sql, MAX_NODES).await?;
        truncated |= cut;
        for row in rows {
            if let (Some(lot), Some(d)) = (row["lot"].as_str(), row["depth"].as_i64()) {
                depths.entry(lot.to_string()).or_insert(sign * d);
            }
        }
    }
    let lots = sql_literal::strings(depths.keys().map(String::as_str));
    let (edges, _) = console
        .rows(
            &principal,
            &format!(
                "SELECT input_lot, output_lot, quantity, uom, work_order, equipment, ts \
                 FROM genealogy WHERE input_lot IN {lots} AND output_lot IN {lots} \
                 ORDER BY input_lot, output_lot, ts"
            ),
            usize::MAX,
        )
        .await?;
    let (records, _) = console
        .rows(
            &principal,
            &format!("SELECT id, material, quantity, uom, status, work_order FROM lots WHERE id IN {lots}"),
            usize::MAX,
        )
        .await?;
    let records: BTreeMap<String, Value> = records
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
        "edges": edges,
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
    let filter = params.tag.as_deref().map_or_else(String::new, |t| {
        format!("WHERE tag = {}", sql_literal::string(t))
    });
    let sql = format!(
        "SELECT * FROM lot_samples({}) {filter} ORDER BY ts, tag LIMIT {}",
        sql_literal::string(&id),
        limit + 1
    );
    let (rows, truncated) = state.console.rows(&principal, &sql, limit).await?;
    Ok(Json(json!({ "samples": rows, "truncated": truncated })))
}
