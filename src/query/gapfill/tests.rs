//! Gap filling through SQL on an in-memory `samples` table: the rule, the
//! planner and the operator together, without a server.

use std::sync::Arc;

use arrow::array::{Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::util::pretty::pretty_format_batches;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

const MINUTE_NS: i64 = 60_000_000_000;
/// 2026-01-01T00:00:00Z
const T0: i64 = 1_767_225_600_000_000_000;

/// Tag `a`: 1.0 @ 00:01:10, 3.0 @ 00:01:50, 9.0 @ 00:04:00;
/// tag `b`: 10.0 @ 00:02:30, NULL @ 00:03:00; tag `c` outside the WHERE clause.
fn session(max_rows: u64) -> SessionContext {
    // tag, ts, value of the real table.
    let schema = Arc::new(crate::model::samples().schema.project(&[0, 1, 2]).unwrap());
    let rows: [(&str, i64, Option<f64>); 6] = [
        ("a", T0 + MINUTE_NS + 10_000_000_000, Some(1.0)),
        ("a", T0 + MINUTE_NS + 50_000_000_000, Some(3.0)),
        ("a", T0 + 4 * MINUTE_NS, Some(9.0)),
        ("b", T0 + 2 * MINUTE_NS + 30_000_000_000, Some(10.0)),
        ("b", T0 + 3 * MINUTE_NS, None),
        ("c", T0 + 2 * MINUTE_NS, Some(5.0)),
    ];
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.1))
                    .collect::<TimestampNanosecondArray>()
                    .with_timezone("UTC"),
            ),
            Arc::new(rows.iter().map(|r| r.2).collect::<Float64Array>()),
        ],
    )
    .unwrap();
    // Two partitions, so the operator's single sorted input has to be arranged.
    let table = MemTable::try_new(
        schema,
        vec![vec![batch.slice(0, 3)], vec![batch.slice(3, 3)]],
    )
    .unwrap();
    let builder = SessionStateBuilder::new()
        .with_config(SessionConfig::new().with_target_partitions(4))
        .with_default_features();
    let ctx = SessionContext::new_with_state(super::enable(builder, max_rows).build());
    ctx.register_table("samples", Arc::new(table)).unwrap();
    ctx
}

const RANGE: &str =
    "ts >= TIMESTAMP '2026-01-01T00:00:00Z' AND ts < TIMESTAMP '2026-01-01T00:05:00Z'";

async fn run(ctx: &SessionContext, sql: &str) -> datafusion::common::Result<String> {
    let batches = ctx.sql(sql).await?.collect().await?;
    Ok(pretty_format_batches(&batches)?.to_string())
}

async fn error_of(ctx: &SessionContext, sql: &str) -> String {
    match run(ctx, sql).await {
        Ok(table) => panic!("expected an error from {sql}, got\n{table}"),
        Err(error) => error.to_string(),
    }
}

fn lines(table: &str) -> Vec<&str> {
    table.lines().collect()
}

#[tokio::test]
async fn plain_locf_and_interpolate_per_series() {
    let ctx = session(1000);
    let sql = format!(
        "SELECT date_bin_gapfill(INTERVAL '1 minute', ts) AS minute, tag, avg(value) AS v, \
         locf(avg(value)) AS l, interpolate(avg(value)) AS i, count(value) AS n \
         FROM samples WHERE tag IN ('a', 'b') AND {RANGE} GROUP BY 1, tag ORDER BY tag, minute"
    );
    let table = run(&ctx, &sql).await.unwrap();
    assert_eq!(
        lines(&table),
        vec![
            "+----------------------+-----+------+------+-------------------+---+",
            "| minute               | tag | v    | l    | i                 | n |",
            "+----------------------+-----+------+------+-------------------+---+",
            "| 2026-01-01T00:00:00Z | a   |      |      |                   | 0 |",
            "| 2026-01-01T00:01:00Z | a   | 2.0  | 2.0  | 2.0               | 2 |",
            "| 2026-01-01T00:02:00Z | a   |      | 2.0  | 4.333333333333333 | 0 |",
            "| 2026-01-01T00:03:00Z | a   |      | 2.0  | 6.666666666666666 | 0 |",
            "| 2026-01-01T00:04:00Z | a   | 9.0  | 9.0  | 9.0               | 1 |",
            "| 2026-01-01T00:00:00Z | b   |      |      |                   | 0 |",
            "| 2026-01-01T00:01:00Z | b   |      |      |                   | 0 |",
            "| 2026-01-01T00:02:00Z | b   | 10.0 | 10.0 | 10.0              | 1 |",
            "| 2026-01-01T00:03:00Z | b   |      | 10.0 |                   | 0 |",
            "| 2026-01-01T00:04:00Z | b   |      | 10.0 |                   | 0 |",
            "+----------------------+-----+------+------+-------------------+---+",
        ]
    );
}

#[tokio::test]
async fn origin_between_and_subquery_bounds() {
    let ctx = session(1000);
    // Buckets at hh:mm:30 from the one holding 00:01:00 (00:00:30) to 00:02:59.
    let sql = "SELECT date_bin_gapfill(INTERVAL '1 minute', ts, TIMESTAMP '1970-01-01T00:00:30Z') \
               AS minute, sum(value) AS s FROM (SELECT * FROM samples WHERE tag = 'a') AS x \
               WHERE ts BETWEEN TIMESTAMP '2026-01-01T00:01:00Z' AND TIMESTAMP '2026-01-01T00:02:59Z' \
               GROUP BY 1 ORDER BY 1";
    let table = run(&ctx, sql).await.unwrap();
    assert_eq!(
        lines(&table)[3..6],
        [
            "| 2026-01-01T00:00:30Z | 1.0 |",
            "| 2026-01-01T00:01:30Z | 3.0 |",
            "| 2026-01-01T00:02:30Z |     |",
        ]
    );
    assert_eq!(lines(&table).len(), 7);
}

#[tokio::test]
async fn misuse_is_a_clear_planning_error() {
    let ctx = session(1000);
    let no_upper = "SELECT date_bin_gapfill(INTERVAL '1 minute', ts), avg(value) FROM samples \
                    WHERE ts >= TIMESTAMP '2026-01-01T00:00:00Z' GROUP BY 1";
    let error = error_of(&ctx, no_upper).await;
    assert!(
        error
            .contains("date_bin_gapfill requires a WHERE clause with lower and upper bounds on ts"),
        "{error}"
    );
    assert!(error.contains("the upper bound is missing"), "{error}");
    let no_where =
        "SELECT date_bin_gapfill(INTERVAL '1 minute', ts), avg(value) FROM samples GROUP BY 1";
    assert!(
        error_of(&ctx, no_where)
            .await
            .contains("(both are missing)")
    );

    let locf_alone = "SELECT tag, locf(avg(value)) FROM samples GROUP BY tag";
    let error = error_of(&ctx, locf_alone).await;
    assert!(
        error.contains("locf() can only be used on an aggregate"),
        "{error}"
    );
    let interpolate_alone = format!("SELECT interpolate(value) FROM samples WHERE {RANGE}");
    let error = error_of(&ctx, &interpolate_alone).await;
    assert!(error.contains("interpolate() can only be used"), "{error}");
    let locf_of_tag = format!(
        "SELECT date_bin_gapfill(INTERVAL '1 minute', ts), locf(tag) FROM samples \
         WHERE {RANGE} GROUP BY 1, tag"
    );
    let error = error_of(&ctx, &locf_of_tag).await;
    assert!(
        error.contains("locf() must be applied to an aggregate"),
        "{error}"
    );
    let outside_group_by =
        format!("SELECT date_bin_gapfill(INTERVAL '1 minute', ts) FROM samples WHERE {RANGE}");
    let error = error_of(&ctx, &outside_group_by).await;
    assert!(
        error.contains("can only be used as a GROUP BY expression"),
        "{error}"
    );
    let months = format!(
        "SELECT date_bin_gapfill(INTERVAL '1 month', ts), avg(value) FROM samples WHERE {RANGE} GROUP BY 1"
    );
    assert!(error_of(&ctx, &months).await.contains("months or years"));
}

#[tokio::test]
async fn bucket_and_row_limits() {
    let sql = format!(
        "SELECT date_bin_gapfill(INTERVAL '1 second', ts), tag, avg(value) FROM samples \
         WHERE {RANGE} GROUP BY 1, tag"
    );
    // 300 buckets per series.
    let error = error_of(&session(299), &sql).await;
    assert!(error.contains("300 buckets per series"), "{error}");
    assert!(error.contains("max_history_intervals"), "{error}");
    // Three series of 300 rows.
    let error = error_of(&session(899), &sql).await;
    assert!(error.contains("more than 899 rows"), "{error}");
    assert!(run(&session(900), &sql).await.is_ok());
}

#[tokio::test]
async fn explain_shows_the_gap_fill_operator() {
    let ctx = session(1000);
    let sql = format!(
        "EXPLAIN SELECT date_bin_gapfill(INTERVAL '1 minute', ts) AS minute, tag, \
         locf(max(value)) FROM samples WHERE {RANGE} GROUP BY 1, tag ORDER BY tag, minute"
    );
    let table = run(&ctx, &sql).await.unwrap();
    assert!(table.contains("GapFill: series=[samples.tag]"), "{table}");
    assert!(table.contains("fills=[locf("), "{table}");
    assert!(table.contains("GapFillExec: series=[tag]"), "{table}");
    // Its input is sorted for it, and its output already is in ORDER BY's order.
    assert_eq!(table.matches("SortExec:").count(), 1, "{table}");
    assert!(
        table.contains("buckets=5 x 60s from 2026-01-01T00:00:00+00:00"),
        "{table}"
    );
}

#[tokio::test]
async fn bounds_may_be_constant_expressions_and_the_tightest_wins() {
    let ctx = session(100_000);
    // No series has rows in the last day: nothing to fill, but it plans and runs.
    let relative = "SELECT date_bin_gapfill(INTERVAL '1 hour', ts) AS hour, count(*) AS n \
                    FROM samples WHERE ts > now() - INTERVAL '1 day' AND ts <= now() GROUP BY 1";
    assert_eq!(lines(&run(&ctx, relative).await.unwrap()).len(), 2);
    let narrowed = format!(
        "SELECT date_bin_gapfill(INTERVAL '1 minute', ts) AS minute, count(*) AS n FROM samples \
         WHERE {RANGE} AND ts >= TIMESTAMP '2026-01-01T00:00:00Z' + INTERVAL '2 minutes' \
         AND ts <= '2026-01-01T00:03:00Z' GROUP BY 1 ORDER BY 1"
    );
    let table = run(&ctx, &narrowed).await.unwrap();
    assert_eq!(
        lines(&table)[3..],
        [
            "| 2026-01-01T00:02:00Z | 2 |",
            "| 2026-01-01T00:03:00Z | 1 |",
            "+----------------------+---+",
        ]
    );
}
