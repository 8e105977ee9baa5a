//! The change feed (`GET /api/v1/changes`, docs/INTEGRATION.md): every
//! committed write, update and delete of the versioned tables (context and
//! master data), in `audit_log` order, each with the version rows it made.
//! The audit seq is the cursor: seqs have no gaps and an entry is visible
//! together with its rows, so a consumer that stores the last seq it
//! handled and asks `after=` it again gets every change once, after a
//! restart of either side.
//!
//! Long-poll as JSON (`wait=` seconds until something comes), or Server-Sent
//! Events when the request accepts `text/event-stream` (each event's `id` is
//! its seq; `Last-Event-ID` resumes).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiError;
use crate::ingest::version_in;
use crate::model::{self, HISTORY_SUFFIX};
use crate::query::sql_literal;
use crate::server::auth::Principal;
use crate::server::http::HttpState;

/// Longest a long-poll waits for a change.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// A stream ends after this long; its client reconnects with
/// `Last-Event-ID` (EventSource does so by itself), and the reconnection
/// checks the credentials again, so a removed user stops receiving.
const MAX_STREAM: Duration = Duration::from_secs(15 * 60);

/// Most event streams open at once: each runs queries as changes commit.
const MAX_STREAMS: usize = 64;

static STREAMS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(MAX_STREAMS)));

#[derive(Deserialize)]
pub struct ChangeParams {
    /// The seq of the last change handled (0: from the start).
    #[serde(default)]
    after: u64,
    /// Versioned tables, comma-separated (default: all of them).
    table: Option<String>,
    limit: Option<usize>,
    /// Seconds to wait for a change when there is none yet (long-poll).
    #[serde(default)]
    wait: f64,
}

/// The versioned tables a `table=` parameter names (all without one).
fn tables(param: Option<&str>) -> Result<Vec<&'static str>, ApiError> {
    let versioned: Vec<&'static str> = model::tables()
        .into_iter()
        .filter(|t| t.is_versioned())
        .map(|t| t.name)
        .collect();
    let Some(param) = param.filter(|p| !p.trim().is_empty()) else {
        return Ok(versioned);
    };
    super::api::listed(param)
        .into_iter()
        .map(|name| {
            versioned
                .iter()
                .find(|v| v.eq_ignore_ascii_case(name))
                .copied()
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "table={name:?} is not a table the feed carries (context and master data: {})",
                        versioned.join(", ")
                    ))
                })
        })
        .collect()
}

/// `GET /api/v1/changes?after=&table=&limit=&wait=`.
pub async fn changes(
    State(state): State<Arc<HttpState>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Query(params): Query<ChangeParams>,
) -> Result<Response, ApiError> {
    let tables = tables(params.table.as_deref())?;
    let limit = super::api::limit(params.limit, 100, 1000);
    let streams = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if streams {
        let resume = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let after = resume.unwrap_or(params.after);
        let permit = STREAMS.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_STREAMS} change streams are open, the most this server keeps; long-poll instead, or try later"),
            )
        })?;
        let events = stream(state, principal, tables, after, limit, permit);
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    if !(0.0..=MAX_WAIT.as_secs_f64()).contains(&params.wait) {
        return Err(ApiError::bad_request(format!(
            "wait={} is not 0 to {} seconds",
            params.wait,
            MAX_WAIT.as_secs()
        )));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(params.wait);
    let mut committed = state.engine.committed_seq();
    loop {
        let head = *committed.borrow_and_update();
        let (changes, next) = page(&state, &principal, &tables, params.after, limit, head).await?;
        if !changes.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(
                Json(json!({ "changes": changes, "next": next, "head": head })).into_response(),
            );
        }
        // Something newer than what the page saw, or the deadline.
        let _ = tokio::time::timeout_at(deadline, committed.changed()).await;
    }
}

/// The changes after `after` (at most `limit`), and the cursor to ask
/// with next: the last change's seq, or, when the page is not full,
/// `head` (every entry up to it was visible to the query, so those
/// filtered out need not be read again).
async fn page(
    state: &HttpState,
    principal: &Principal,
    tables: &[&'static str],
    after: u64,
    limit: usize,
    head: u64,
) -> Result<(Vec<Value>, u64), ApiError> {
    let sql = format!(
        "SELECT seq, ts, actor, action, table_name, row_count, detail, reason FROM audit_log \
         WHERE seq > {after} AND seq <= {head} AND action IN ('write', 'update', 'delete') \
         AND table_name IN {} ORDER BY seq LIMIT {}",
        sql_literal::strings(tables.iter().copied()),
        limit + 1
    );
    let (entries, full) = state.console.rows(principal, &sql, limit).await?;
    let mut versions: HashMap<&str, Vec<i64>> = HashMap::new();
    for entry in &entries {
        if let (Some(table), Some(version)) = (entry["table_name"].as_str(), version(entry)) {
            versions.entry(table).or_default().push(version);
        }
    }
    let mut rows: HashMap<(String, i64), Vec<Value>> = HashMap::new();
    for (table, versions) in &versions {
        let list: Vec<String> = versions.iter().map(i64::to_string).collect();
        let sql = format!(
            "SELECT *, CAST(recorded_at AS BIGINT) AS lotline_version FROM {table}{HISTORY_SUFFIX} \
             WHERE CAST(recorded_at AS BIGINT) IN ({})",
            list.join(", ")
        );
        let (found, _) = state.console.rows(principal, &sql, usize::MAX).await?;
        for mut row in found {
            let Some(version) = row["lotline_version"].as_i64() else {
                continue;
            };
            row.as_object_mut()
                .expect("rows are objects")
                .remove("lotline_version");
            rows.entry((table.to_string(), version))
                .or_default()
                .push(row);
        }
    }
    let next = match entries.last() {
        Some(last) if full => last["seq"].as_u64().unwrap_or(after),
        _ => head.max(after),
    };
    let changes = entries
        .into_iter()
        .map(|entry| {
            let detail = entry["detail"].as_str().unwrap_or_default();
            let interface = detail
                .split(' ')
                .find_map(|part| part.strip_prefix("interface="))
                .map(str::to_string);
            let rows = match (entry["table_name"].as_str(), version(&entry)) {
                (Some(table), Some(version)) => json!(
                    rows.remove(&(table.to_string(), version))
                        .unwrap_or_default()
                ),
                // Written before lotline named the rows of an entry.
                _ => Value::Null,
            };
            json!({
                "seq": entry["seq"],
                "ts": entry["ts"],
                "table": entry["table_name"],
                "action": entry["action"],
                "actor": entry["actor"],
                "reason": entry["reason"],
                "interface": interface,
                "row_count": entry["row_count"],
                "rows": rows,
            })
        })
        .collect();
    Ok((changes, next))
}

fn version(entry: &Value) -> Option<i64> {
    entry["detail"].as_str().and_then(version_in)
}

/// What the event stream keeps between events.
struct Cursor {
    state: Arc<HttpState>,
    principal: Principal,
    tables: Vec<&'static str>,
    after: u64,
    limit: usize,
    ready: VecDeque<Event>,
    committed: tokio::sync::watch::Receiver<u64>,
    failed: bool,
    /// When the stream ends (see [`MAX_STREAM`]).
    until: tokio::time::Instant,
    _permit: OwnedSemaphorePermit,
}

/// The changes after `after` as Server-Sent Events, then each new one as
/// it commits; an error ends the stream with an `error` event.
fn stream(
    state: Arc<HttpState>,
    principal: Principal,
    tables: Vec<&'static str>,
    after: u64,
    limit: usize,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let committed = state.engine.committed_seq();
    let cursor = Cursor {
        state,
        principal,
        tables,
        after,
        limit,
        ready: VecDeque::new(),
        committed,
        failed: false,
        until: tokio::time::Instant::now() + MAX_STREAM,
        _permit: permit,
    };
    futures::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.ready.pop_front() {
                return Some((Ok(event), cursor));
            }
            if cursor.failed || tokio::time::Instant::now() >= cursor.until {
                return None;
            }
            let head = *cursor.committed.borrow_and_update();
            if head <= cursor.after {
                match tokio::time::timeout_at(cursor.until, cursor.committed.changed()).await {
                    Ok(Ok(())) => continue,
                    _ => return None,
                }
            }
            let read = page(
                &cursor.state,
                &cursor.principal,
                &cursor.tables,
                cursor.after,
                cursor.limit,
                head,
            )
            .await;
            match read {
                Ok((changes, next)) => {
                    for change in changes {
                        let seq = change["seq"].as_u64().unwrap_or_default();
                        let event = Event::default()
                            .id(seq.to_string())
                            .event("change")
                            .data(change.to_string());
                        cursor.ready.push_back(event);
                    }
                    cursor.after = next;
                }
                Err(e) => {
                    cursor.failed = true;
                    let message = json!({ "error": e.message }).to_string();
                    cursor
                        .ready
                        .push_back(Event::default().event("error").data(message));
                }
            }
        }
    })
}
