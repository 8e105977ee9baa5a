//! The console's JSON API (`/api/v1/`): each route is one or a few SQL
//! statements over lotline's own tables and functions, planned for the
//! caller ([`Console::plan`]), answered as JSON. The routes and their
//! parameters are documented in docs/INTERFACES.md.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::DateTime;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Console, INTERFACE, json as to_json};
use crate::ingest::WriteContext;
use crate::model::units;
use crate::query::sql_literal;
use crate::server::auth::Principal;
use crate::server::http::HttpState;

type Answer = Result<Json<Value>, ApiError>;

pub fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/api/v1/tags", get(tags))
        .route("/api/v1/history", get(super::history::history))
        .route("/api/v1/last", get(last))
        .route("/api/v1/lots/{id}", get(super::lots::lot))
        .route("/api/v1/lots/{id}/trace", get(super::lots::trace))
        .route("/api/v1/lots/{id}/samples", get(super::lots::samples))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/verify", get(verify))
        .route("/api/v1/collectors", get(collectors))
        .route("/api/v1/server", get(server))
        .route("/api/v1/sql", post(sql))
        .route("/api/v1/changes", get(super::changes::changes))
        .route(
            "/api/v1/b2mml",
            post(super::integration::import).layer(axum::extract::DefaultBodyLimit::max(
                crate::integrate::b2mml::MAX_DOCUMENT_BYTES,
            )),
        )
        .route(
            "/api/v1/b2mml/operations-performance",
            get(super::integration::performance),
        )
}

/// A time parameter: milliseconds since the epoch, or RFC 3339 text.
pub fn parse_time(name: &str, text: &str) -> Result<i64, ApiError> {
    let text = text.trim();
    // lotline's times: 1970 to the end of i64 nanoseconds (2262-04-11).
    const MAX_MS: f64 = (i64::MAX / 1_000_000) as f64;
    let parsed = match text.parse::<f64>() {
        Ok(ms) if (0.0..=MAX_MS).contains(&ms) => Some((ms * 1e6) as i64),
        Ok(_) => None,
        Err(_) => DateTime::parse_from_rfc3339(text)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .filter(|ns| *ns >= 0),
    };
    parsed.ok_or_else(|| {
        ApiError::bad_request(format!(
            "{name}={text:?} is not a time lotline holds: send milliseconds since 1970 or \
             RFC 3339 (2026-01-01T08:00:00Z), from 1970 to 2262-04-11"
        ))
    })
}

/// The names of a comma-separated parameter (`tags=a,b`), blanks left out.
pub fn listed(param: &str) -> Vec<&str> {
    param
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect()
}

/// A `limit` parameter: `default` when absent, at most `max`.
pub fn limit(value: Option<usize>, default: usize, max: usize) -> usize {
    value.unwrap_or(default).clamp(1, max)
}

#[derive(Deserialize)]
pub struct TagSearch {
    /// Part of the tag name; names starting with it come first.
    #[serde(default)]
    q: String,
    equipment: Option<String>,
    unit: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/tags?q=&equipment=&unit=&limit=`: tag definitions whose
/// name holds `q` (case-insensitive), prefix matches first.
async fn tags(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
    Query(search): Query<TagSearch>,
) -> Answer {
    let q = search.q.trim();
    let mut filters = vec![format!(
        "strpos(lower(tag), lower({})) > 0",
        sql_literal::string(q)
    )];
    filters.extend(
        search
            .equipment
            .as_deref()
            .map(|e| format!("equipment = {}", sql_literal::string(e))),
    );
    filters.extend(
        search
            .unit
            .as_deref()
            // A symbol finds the tags stored with its code (`degC`: CEL).
            .map(|u| format!("unit = {}", sql_literal::string(units::unece_code(u)))),
    );
    let limit = limit(search.limit, 50, 1000);
    let sql = format!(
        "SELECT tag, description, unit, equipment, value_type, interpolation, eng_low, eng_high \
         FROM tags WHERE {} \
         ORDER BY CASE WHEN starts_with(lower(tag), lower({})) THEN 0 ELSE 1 END, tag LIMIT {}",
        filters.join(" AND "),
        sql_literal::string(q),
        limit + 1
    );
    let (rows, truncated) = state.console.rows(&principal, &sql, limit).await?;
    Ok(Json(json!({ "tags": rows, "truncated": truncated })))
}

#[derive(Deserialize)]
pub struct LastParams {
    /// Tag names, comma-separated.
    tags: String,
}

/// `GET /api/v1/last?tags=a,b`: the newest sample of each tag.
async fn last(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<LastParams>,
) -> Answer {
    let names = listed(&params.tags);
    if names.is_empty() {
        return Err(ApiError::bad_request("tags= names no tag"));
    }
    let sql = format!(
        "SELECT * FROM last_values WHERE tag IN {} ORDER BY tag",
        sql_literal::strings(names.iter().copied())
    );
    let (values, _) = state.console.rows(&principal, &sql, usize::MAX).await?;
    Ok(Json(json!({ "values": values })))
}

#[derive(Deserialize)]
pub struct AuditFilter {
    from: Option<String>,
    to: Option<String>,
    actor: Option<String>,
    table: Option<String>,
    action: Option<String>,
    /// Entries before this sequence number (paging back).
    before: Option<u64>,
    limit: Option<usize>,
}

/// `GET /api/v1/audit?from=&to=&actor=&table=&action=&before=&limit=`: the
/// newest audit entries first.
async fn audit(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
    Query(filter): Query<AuditFilter>,
) -> Answer {
    let mut filters = vec!["TRUE".to_string()];
    if let Some(from) = filter.from.as_deref().filter(|t| !t.is_empty()) {
        filters.push(format!(
            "ts >= {}",
            sql_literal::timestamp(parse_time("from", from)?)
        ));
    }
    if let Some(to) = filter.to.as_deref().filter(|t| !t.is_empty()) {
        filters.push(format!(
            "ts < {}",
            sql_literal::timestamp(parse_time("to", to)?)
        ));
    }
    for (column, value) in [
        ("actor", &filter.actor),
        ("table_name", &filter.table),
        ("action", &filter.action),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            filters.push(format!("{column} = {}", sql_literal::string(value)));
        }
    }
    if let Some(before) = filter.before {
        filters.push(format!("seq < {before}"));
    }
    let limit = limit(filter.limit, 100, 5000);
    let sql = format!(
        "SELECT seq, ts, actor, action, table_name, row_count, detail, reason FROM audit_log \
         WHERE {} ORDER BY seq DESC LIMIT {}",
        filters.join(" AND "),
        limit + 1
    );
    let (rows, truncated) = state.console.rows(&principal, &sql, limit).await?;
    Ok(Json(json!({ "entries": rows, "truncated": truncated })))
}

/// `GET /api/v1/audit/verify`: `verify_audit()` run now: its summary row
/// and findings.
async fn verify(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
) -> Answer {
    let started = Instant::now();
    let (rows, _) = state
        .console
        .rows(&principal, "SELECT * FROM verify_audit()", usize::MAX)
        .await?;
    Ok(Json(json!({
        "rows": rows,
        "elapsed_ms": started.elapsed().as_secs_f64() * 1e3,
    })))
}

/// `GET /api/v1/collectors`: `collector_status`, empty without collectors.
async fn collectors(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
) -> Answer {
    let rows = if state.console.collectors {
        let sql = format!("SELECT * FROM {}", crate::collect::status::TABLE_NAME);
        state.console.rows(&principal, &sql, usize::MAX).await?.0
    } else {
        Vec::new()
    };
    Ok(Json(json!({ "collectors": rows })))
}

/// `GET /api/v1/server`: `/health`'s summary and every series of
/// `/metrics`, parsed, so the page shows the same figures.
async fn server(State(state): State<Arc<HttpState>>) -> Answer {
    let (_, health) = crate::server::http::health_summary(&state);
    let text = state.metrics.render(&state.engine);
    Ok(Json(json!({
        "health": health,
        "metrics": metric_series(&text),
    })))
}

/// `name{labels} value` lines of Prometheus text as `[name, {label: value}, value]`.
fn metric_series(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels: serde_json::Map<String, Value> = labels
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Value::String(v.trim_matches('"').to_string()),
                    )
                })
                .collect();
            Some(json!([name, labels, value]))
        })
        .collect()
}

#[derive(Deserialize)]
pub struct Statement {
    sql: String,
    /// Why, for a write (required to change a versioned record).
    reason: Option<String>,
    limit: Option<usize>,
}

/// `POST /api/v1/sql` `{"sql": ..., "reason": ..., "limit": ...}`: any
/// statement the caller's role allows, as over Flight SQL; rows as arrays.
async fn sql(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
    Json(statement): Json<Statement>,
) -> Answer {
    let console: &Console = &state.console;
    let started = Instant::now();
    let who = WriteContext::new(&principal.user, INTERFACE).with_reason(statement.reason);
    let frame = console.plan(&principal, &statement.sql, Some(who)).await?;
    let limit = limit(statement.limit, 1000, 100_000);
    let batches = console.first_rows(frame, limit).await?;
    let (columns, rows, truncated) = to_json::table(&batches, limit);
    Ok(Json(json!({
        "columns": columns,
        "rows": rows,
        "truncated": truncated,
        "elapsed_ms": started.elapsed().as_secs_f64() * 1e3,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_milliseconds_or_rfc3339() {
        assert_eq!(parse_time("from", "1500").unwrap(), 1_500_000_000);
        assert_eq!(
            parse_time("from", "1970-01-01T00:00:01Z").unwrap(),
            1_000_000_000
        );
        let e = parse_time("from", "yesterday").unwrap_err();
        assert!(e.message.contains("from=\"yesterday\""), "{}", e.message);
        for out_of_range in ["1e16", "-1", "1969-12-31T23:59:59Z", "inf", "NaN"] {
            assert!(parse_time("to", out_of_range).is_err(), "{out_of_range}");
        }
        assert!(parse_time("to", "9223372036854").is_ok());
    }

    #[test]
    fn metric_lines_become_series() {
        let text = "# HELP x y\nlotline_buffer_rows{table=\"samples\"} 12\nlotline_up 1\n";
        assert_eq!(
            metric_series(text),
            vec![
                json!(["lotline_buffer_rows", {"table": "samples"}, 12.0]),
                json!(["lotline_up", {}, 1.0]),
            ]
        );
    }
}
