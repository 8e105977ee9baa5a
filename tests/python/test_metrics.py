"""`GET /metrics` (Prometheus text, parsed with the Prometheus Python client's
parser) and `GET /health` on the HTTP listener: counters move when data is
written and queried, gauges follow the buffer and the segments."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from lotline_testlib import (
    ADMIN_USER,
    DEFAULT_PASSWORD,
    NS_PER_S,
    batch_for_tag,
    http_request,
    ns,
)

T0 = ns(2026, 4, 1)
TOKEN = {"Authorization": f"Token {ADMIN_USER}:{DEFAULT_PASSWORD}"}


def scrape(server) -> dict:
    """{(sample name, frozenset of labels): value} of one scrape."""
    reply = http_request(f"{server.http_url}/metrics")
    assert reply.status == 200, reply
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4"), reply.headers
    samples = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        assert family.name.startswith("lotline_"), family.name
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def line_write(server, body: str, headers=TOKEN):
    return http_request(f"{server.http_url}/api/v2/write", "POST", body.encode(), headers)


def test_counters_and_gauges_move_with_writes_and_queries(server):
    before = scrape(server)
    assert value(before, "lotline_rows_ingested_total", table="samples", interface="line_protocol") == 0
    assert value(before, "lotline_buffer_rows", table="samples") == 0
    assert value(before, "lotline_segments", table="samples") == 0

    # Line protocol: 3 fields = 3 rows; Flight SQL bulk ingest: 5; INSERT: 1.
    assert line_write(server, f"m a=1,b=2i,c=true {T0}\n").status == 204
    server.client.ingest(batch_for_tag("flight.tag", 5, T0))
    server.client.execute("INSERT INTO samples (tag, ts, value, quality) VALUES ('sql.tag', TIMESTAMP '2026-04-01T00:00:00Z', 1.5, 0)")
    # Rejections: a bad line and a missing token.
    assert line_write(server, "m a=oops\n").status == 400
    assert line_write(server, "m a=1\n", headers={}).status == 401
    # A query, and one that fails to plan.
    assert server.client.count() == 9
    try:
        server.query("SELECT no_such_column FROM samples")
    except Exception:
        pass
    else:
        raise AssertionError("the bad query must fail")

    after = scrape(server)
    assert value(after, "lotline_rows_ingested_total", table="samples", interface="line_protocol") == 3
    assert value(after, "lotline_rows_ingested_total", table="samples", interface="flight_sql") == 5
    assert value(after, "lotline_rows_ingested_total", table="samples", interface="sql_insert") == 1
    assert value(after, "lotline_requests_rejected_total", interface="line_protocol", reason="invalid") == 1
    assert value(after, "lotline_requests_rejected_total", interface="line_protocol", reason="unauthenticated") == 1
    assert value(after, "lotline_requests_rejected_total", interface="flight_sql", reason="invalid_query") >= 1
    assert value(after, "lotline_queries_total") >= value(before, "lotline_queries_total") + 2
    assert value(after, "lotline_query_duration_seconds_count") >= 1
    assert value(after, "lotline_query_duration_seconds_sum") > 0
    # Three durable writes: at least one WAL group commit each... or shared.
    fsyncs = value(after, "lotline_wal_fsync_seconds_count")
    assert 1 <= fsyncs <= 3, fsyncs
    assert value(after, "lotline_wal_fsync_seconds_bucket", le="+Inf") == fsyncs
    assert value(after, "lotline_buffer_rows", table="samples") == 9
    assert value(after, "lotline_buffer_bytes", table="samples") > 0

    server.flush()
    flushed = scrape(server)
    assert value(flushed, "lotline_buffer_rows", table="samples") == 0
    assert value(flushed, "lotline_buffer_bytes", table="samples") == 0
    assert value(flushed, "lotline_segments", table="samples") >= 1
    assert value(flushed, "lotline_segment_bytes", table="samples") > 0
    # Counters never go back.
    assert value(flushed, "lotline_rows_ingested_total", table="samples", interface="flight_sql") == 5


def test_wal_fsync_histogram_counts_group_commits(server):
    for i in range(4):
        server.client.ingest(batch_for_tag("h.tag", 10, T0 + i * 10 * NS_PER_S))
    samples = scrape(server)
    count = value(samples, "lotline_wal_fsync_seconds_count")
    assert count == 4, "sequential writes commit one group each"
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in samples.items()
        if name == "lotline_wal_fsync_seconds_bucket"
    )
    assert len(buckets) > 5 and buckets[-1] == (float("inf"), count)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), "buckets are cumulative"


def test_health(server):
    reply = http_request(f"{server.http_url}/health")
    assert reply.status == 200, reply
    health = reply.json()
    assert health["status"] == "pass" and health["name"] == "lotline"
    assert health["version"]
    assert health["uptime_secs"] >= 0
    assert health["authentication"] is True
    assert health["buffered_rows"] == 0
    server.client.ingest(batch_for_tag("health.tag", 7, T0))
    health = http_request(f"{server.http_url}/health").json()
    # The 7 samples and the write's audit_log entry.
    assert health["buffered_rows"] == 7 + 1 and health["buffered_bytes"] > 0
    server.flush()
    health = http_request(f"{server.http_url}/health").json()
    # Left: the flush's own segment lineage entry (audit_log), which goes out
    # with the next flush of data.
    assert health["buffered_rows"] == 1
    assert health["segments"] >= 1 and health["segment_bytes"] > 0
    # Unknown paths and methods are refused plainly.
    assert http_request(f"{server.http_url}/nope").status == 404
    assert http_request(f"{server.http_url}/health", "POST", b"").status == 405
