//! B2MML over lotline's interfaces (docs/INTEGRATION.md): an import answered
//! with a `ConfirmBOD`, and `ShowOperationsPerformance` gathered by SQL for
//! the caller (planned like any statement of theirs, so roles apply).
//! Served on the HTTP listener (`POST /api/v1/b2mml`, `GET
//! /api/v1/b2mml/operations-performance`) and as the Flight actions
//! [`IMPORT_ACTION`] and [`PERFORMANCE_ACTION`] (what `lotline load
//! --format b2mml` and `lotline export --format b2mml` send).

use std::collections::HashMap;

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;
use tonic::Status;

use super::auth::{Permission, Principal};
use super::statement::Planner;
use crate::ingest::WriteContext;
use crate::integrate::b2mml::performance::{self, Material, Run, TagSummary, WorkOrder};
use crate::integrate::b2mml::{self, B2mmlError};
use crate::query::sql_literal;

pub const IMPORT_ACTION: &str = "lotline.b2mml.import";
pub const PERFORMANCE_ACTION: &str = "lotline.b2mml.performance";

/// Imports `xml` for `principal` (role writer: it writes context and master
/// data) with `who`'s reason, if any.
pub async fn import(
    planner: &Planner,
    principal: &Principal,
    who: WriteContext,
    xml: &[u8],
) -> Result<b2mml::Answer, Status> {
    principal
        .require(Permission::WriteContext)
        .map_err(|e| Status::permission_denied(e.to_string()))?;
    let answer = b2mml::import(&planner.engine, who, xml).await;
    match &answer.outcome {
        Ok(imported) => tracing::info!(
            "B2MML {} from {} imported by {}: {:?}, {} unchanged",
            imported.root,
            imported.system,
            principal.user,
            imported.written,
            imported.unchanged
        ),
        Err(e) => tracing::warn!("B2MML document of {} refused: {e}", principal.user),
    }
    Ok(answer)
}

/// The status of a refused import, for every interface: the document's
/// fault is `InvalidArgument`, a refused write keeps its own code
/// (`Unavailable`, `ResourceExhausted`, ...).
pub fn refusal(error: &B2mmlError) -> Status {
    match error {
        B2mmlError::Write(e) => Status::new(super::flight_data::ingest_code(e), e.to_string()),
        e if e.is_document_error() => Status::invalid_argument(e.to_string()),
        e => Status::internal(e.to_string()),
    }
}

/// Which work orders a performance document covers: the ones named, or
/// those with a run overlapping [start, end).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PerformanceRequest {
    #[serde(default)]
    pub work_orders: Vec<String>,
    /// Nanoseconds since 1970.
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// Who the document goes to (`ApplicationArea/Receiver`).
    pub receiver: Option<String>,
}

/// Statements of the performance document, run for one caller, each in
/// one of the places for statements (`--max-concurrent-queries`) and
/// within the statement timeout, like any other statement.
struct Sql<'a> {
    planner: &'a Planner,
    principal: &'a Principal,
    slots: &'a Semaphore,
}

impl Sql<'_> {
    async fn rows(&self, sql: &str) -> Result<Vec<Value>, Status> {
        let who = WriteContext::new(&self.principal.user, "b2mml.performance");
        let frame = self.planner.plan(sql, self.principal, who, None).await?;
        let _slot = self.slots.acquire().await.expect("never closed");
        let run = frame.collect();
        let batches: Vec<RecordBatch> = match self.planner.options.statement_timeout {
            Some(limit) => tokio::time::timeout(limit, run).await.map_err(|_| {
                Status::deadline_exceeded(format!(
                    "a query of the performance document ran longer than the statement timeout ({limit:?})"
                ))
            })?,
            None => run.await,
        }
        .map_err(super::execute::df_status)?;
        Ok(super::console::json::objects(&batches, usize::MAX).0)
    }
}

fn text(row: &Value, column: &str) -> Option<String> {
    row[column].as_str().map(str::to_string)
}

/// The `ShowOperationsPerformance` `request` asks for.
pub async fn performance(
    planner: &Planner,
    principal: &Principal,
    slots: &Semaphore,
    request: &PerformanceRequest,
) -> Result<Vec<u8>, Status> {
    let sql = Sql {
        planner,
        principal,
        slots,
    };
    let ids = work_orders(&sql, request).await?;
    let mut orders = Vec::new();
    for id in &ids {
        let runs = runs(&sql, id).await?;
        if !runs.is_empty() {
            orders.push(WorkOrder {
                id: id.clone(),
                runs,
            });
        }
    }
    if orders.is_empty() {
        return Err(Status::not_found(format!(
            "no production run of {} was recorded, so there is no performance to show",
            if request.work_orders.is_empty() {
                "any work order in that time range".to_string()
            } else {
                format!("work order(s) {}", request.work_orders.join(", "))
            }
        )));
    }
    let document_id = match ids.as_slice() {
        [one] => format!("OP-{one}"),
        _ => format!("OP-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")),
    };
    Ok(performance::document(
        &document_id,
        &orders,
        request.receiver.clone(),
    ))
}

async fn work_orders(sql: &Sql<'_>, request: &PerformanceRequest) -> Result<Vec<String>, Status> {
    if !request.work_orders.is_empty() {
        let names = sql_literal::strings(request.work_orders.iter().map(String::as_str));
        let found = sql
            .rows(&format!("SELECT id FROM work_orders WHERE id IN {names}"))
            .await?;
        let found: Vec<String> = found.iter().filter_map(|r| text(r, "id")).collect();
        if let Some(missing) = request.work_orders.iter().find(|w| !found.contains(w)) {
            return Err(Status::not_found(format!("no work order '{missing}'")));
        }
        return Ok(request.work_orders.clone());
    }
    let (Some(start), Some(end)) = (request.start, request.end) else {
        return Err(Status::invalid_argument(
            "name work orders (work_order=) or a time range (start= and end=)",
        ));
    };
    if end <= start {
        return Err(Status::invalid_argument("end must be after start"));
    }
    let rows = sql
        .rows(&format!(
            "SELECT DISTINCT work_order FROM production_runs WHERE work_order IS NOT NULL \
             AND start_ts < {} AND (end_ts IS NULL OR end_ts > {}) ORDER BY work_order",
            sql_literal::timestamp(end),
            sql_literal::timestamp(start)
        ))
        .await?;
    Ok(rows.iter().filter_map(|r| text(r, "work_order")).collect())
}

/// The runs of work order `id` in time order, with materials and figures.
async fn runs(sql: &Sql<'_>, id: &str) -> Result<Vec<Run>, Status> {
    let order = sql_literal::string(id);
    let rows = sql
        .rows(&format!(
            "SELECT equipment, lot, operation, CAST(start_ts AS BIGINT) AS start_ns, \
             CAST(end_ts AS BIGINT) AS end_ns FROM production_runs WHERE work_order = {order} \
             ORDER BY start_ts, equipment"
        ))
        .await?;
    let plan = sql
        .rows(&format!(
            "SELECT segment, equipment FROM work_order_segments WHERE work_order = {order} \
             ORDER BY segment"
        ))
        .await?;
    let mut runs = Vec::with_capacity(rows.len());
    for row in rows {
        let equipment = text(&row, "equipment").unwrap_or_default();
        let lot = text(&row, "lot");
        let start = row["start_ns"].as_i64().unwrap_or_default();
        let end = row["end_ns"].as_i64();
        let segment = plan
            .iter()
            .find(|p| text(p, "equipment").as_deref() == Some(equipment.as_str()))
            .and_then(|p| text(p, "segment"));
        let (consumed, produced) = match &lot {
            Some(lot) => materials(sql, lot, &equipment).await?,
            None => (Vec::new(), Vec::new()),
        };
        let tags = figures(sql, &equipment, start, end).await?;
        runs.push(Run {
            equipment,
            operation: text(&row, "operation"),
            segment,
            start,
            end,
            consumed,
            produced,
            tags,
        });
    }
    Ok(runs)
}

fn material(row: &Value, lot_column: &str) -> Material {
    Material {
        material: text(row, "material"),
        lot: text(row, lot_column).unwrap_or_default(),
        quantity: row["quantity"].as_f64(),
        uom: text(row, "uom"),
    }
}

/// What a run consumed (the genealogy edges into its lot, on its
/// equipment or on none named) and produced (its lot).
async fn materials(
    sql: &Sql<'_>,
    lot: &str,
    equipment: &str,
) -> Result<(Vec<Material>, Vec<Material>), Status> {
    let lot = sql_literal::string(lot);
    let consumed = sql
        .rows(&format!(
            "SELECT g.input_lot, g.quantity, g.uom, l.material FROM genealogy g \
             LEFT JOIN lots l ON l.id = g.input_lot WHERE g.output_lot = {lot} \
             AND (g.equipment IS NULL OR g.equipment = {}) ORDER BY g.ts, g.input_lot",
            sql_literal::string(equipment)
        ))
        .await?;
    let produced = sql
        .rows(&format!(
            "SELECT id, material, quantity, uom FROM lots WHERE id = {lot}"
        ))
        .await?;
    Ok((
        consumed.iter().map(|r| material(r, "input_lot")).collect(),
        produced.iter().map(|r| material(r, "id")).collect(),
    ))
}

/// The Part 13 aggregates a segment's data carries, by the name B2MML
/// gets.
const FIGURES: [(&str, &str); 4] = [
    ("TimeAverage", "TimeWeightedAverage"),
    ("Minimum", "Minimum"),
    ("Maximum", "Maximum"),
    ("PercentGood", "PercentGood"),
];

/// The numeric tags of `equipment` over [start, end) (now for a run that
/// goes on), each as one interval of `history_aggregate`.
async fn figures(
    sql: &Sql<'_>,
    equipment: &str,
    start: i64,
    end: Option<i64>,
) -> Result<Vec<TagSummary>, Status> {
    let end = end.unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX));
    if end <= start {
        return Ok(Vec::new());
    }
    let tags = sql
        .rows(&format!(
            "SELECT tag, unit FROM tags WHERE equipment = {} \
             AND (value_type IS NULL OR value_type IN ('float', 'int')) ORDER BY tag",
            sql_literal::string(equipment)
        ))
        .await?;
    if tags.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = tags.iter().filter_map(|t| text(t, "tag")).collect();
    let list = format!(
        "[{}]",
        names
            .iter()
            .map(|n| sql_literal::string(n))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // One interval covering the run (the last interval ends at `end`).
    let interval_ms = (end - start + 999_999) / 1_000_000;
    let mut values: HashMap<(String, &str), f64> = HashMap::new();
    for (aggregate, _) in FIGURES {
        let rows = sql
            .rows(&format!(
                "SELECT tag, value FROM history_aggregate({list}, '{aggregate}', {}, {}, '{interval_ms}ms')",
                sql_literal::timestamp(start),
                sql_literal::timestamp(end)
            ))
            .await?;
        for row in rows {
            if let (Some(tag), Some(value)) = (text(&row, "tag"), row["value"].as_f64()) {
                values.insert((tag, aggregate), value);
            }
        }
    }
    Ok(tags
        .iter()
        .filter_map(|t| {
            let tag = text(t, "tag")?;
            let get = |aggregate: &str| values.get(&(tag.clone(), aggregate)).copied();
            Some(TagSummary {
                time_weighted_average: get(FIGURES[0].0),
                minimum: get(FIGURES[1].0),
                maximum: get(FIGURES[2].0),
                percent_good: get(FIGURES[3].0),
                unit: text(t, "unit"),
                tag,
            })
        })
        .collect())
}
