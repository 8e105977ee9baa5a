"""Gap filling (`date_bin_gapfill`, `locf`, `interpolate`) through a real
server over Flight SQL, against hand-computed rows.

Data (2026-01-01, whole microseconds: Python datetimes cannot hold ns):

    tag gf.a: 00:00:15 1.0, 00:00:45.0005 3.0, 00:02:10 99.0 (Bad), 00:04:30 9.0,
              00:06:00 1000.0 (outside the range)
    tag gf.b: 00:01:05 10.0, 00:01:55 20.0, 00:05:59.999999 30.0
    tag gf.c: 00:03:00 5.0 (not asked for)

Queried over [00:00, 00:06) in 1-minute buckets with Bad samples left out.
"""

from __future__ import annotations

import datetime as dt

import adbc_driver_manager
import pytest

from lotline_testlib import error_text, samples_table

BAD = 0x80000000
# Small enough to hit in a test, large enough for the 12-row queries below.
MAX_ROWS = 20
RANGE = "ts >= TIMESTAMP '2026-01-01T00:00:00Z' AND ts < TIMESTAMP '2026-01-01T00:06:00Z'"
NOT_BAD = "quality_class(quality) <> 'bad'"


def at(minute: int, second: int = 0, micro: int = 0, day: int = 1) -> dt.datetime:
    base = dt.datetime(2026, 1, day, 0, 0, tzinfo=dt.timezone.utc)
    return base + dt.timedelta(minutes=minute, seconds=second, microseconds=micro)


def ns(t: dt.datetime) -> int:
    return (int(t.replace(microsecond=0).timestamp()) * 1_000_000 + t.microsecond) * 1000


@pytest.fixture(scope="module")
def server(module_server_factory):
    server = module_server_factory("--max-history-intervals", str(MAX_ROWS))
    rows = [
        ("gf.a", at(0, 15), 1.0, 0),
        ("gf.a", at(0, 45, 500), 3.0, 0),
        ("gf.a", at(2, 10), 99.0, BAD),
        ("gf.a", at(4, 30), 9.0, 0),
        ("gf.a", at(6), 1000.0, 0),
        ("gf.b", at(1, 5), 10.0, 0),
        ("gf.b", at(1, 55), 20.0, 0),
        ("gf.b", at(5, 59, 999_999), 30.0, 0),
        ("gf.c", at(3), 5.0, 0),
    ]
    tags, times, values, quality = zip(*rows)
    server.client.ingest(
        samples_table(list(tags), [ns(t) for t in times], list(values), quality=list(quality))
    )
    return server


def query_error(server, sql: str) -> str:
    try:
        server.client.query(sql)
    except adbc_driver_manager.Error as exc:
        return error_text(exc)
    raise AssertionError(f"query was accepted but must fail: {sql}")


def test_plain_locf_and_interpolate_for_every_bucket_of_every_series(server):
    rows = server.client.query(
        "SELECT date_bin_gapfill(INTERVAL '1 minute', ts) AS minute, tag, avg(value) AS v, "
        "locf(avg(value)) AS l, interpolate(avg(value)) AS i, count(value) AS n "
        f"FROM samples WHERE tag IN ('gf.a', 'gf.b') AND {NOT_BAD} AND {RANGE} "
        "GROUP BY 1, tag ORDER BY tag, minute"
    ).to_pylist()
    got = [(r["tag"], r["minute"], r["v"], r["l"], r["i"], r["n"]) for r in rows]
    # gf.a: avg 2.0 in minute 0 and 9.0 in minute 4 (the Bad 99.0 in minute 2
    # is filtered out, leaving a gap); the slope between them is 7/4 per minute.
    # gf.b: 15.0 in minute 1, 30.0 in minute 5; slope 15/4 per minute.
    assert got == [
        ("gf.a", at(0), 2.0, 2.0, 2.0, 2),
        ("gf.a", at(1), None, 2.0, 3.75, 0),
        ("gf.a", at(2), None, 2.0, 5.5, 0),
        ("gf.a", at(3), None, 2.0, 7.25, 0),
        ("gf.a", at(4), 9.0, 9.0, 9.0, 1),
        ("gf.a", at(5), None, 9.0, None, 0),  # no extrapolation past the last value
        ("gf.b", at(0), None, None, None, 0),  # nothing before the first value
        ("gf.b", at(1), 15.0, 15.0, 15.0, 2),
        ("gf.b", at(2), None, 15.0, 18.75, 0),
        ("gf.b", at(3), None, 15.0, 22.5, 0),
        ("gf.b", at(4), None, 15.0, 26.25, 0),
        ("gf.b", at(5), 30.0, 30.0, 30.0, 1),
    ]


def test_bad_sample_counts_when_not_filtered(server):
    rows = server.client.query(
        "SELECT date_bin_gapfill(INTERVAL '1 minute', ts) AS minute, avg(value) AS v "
        f"FROM samples WHERE tag = 'gf.a' AND {RANGE} GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    assert [(r["minute"], r["v"]) for r in rows] == [
        (at(0), 2.0), (at(1), None), (at(2), 99.0), (at(3), None), (at(4), 9.0), (at(5), None)
    ]


def test_origin_argument_shifts_the_buckets(server):
    rows = server.client.query(
        "SELECT date_bin_gapfill(INTERVAL '2 minutes', ts, TIMESTAMP '1970-01-01T00:00:30Z') AS b, "
        "max(value) AS v, locf(max(value)) AS l, interpolate(max(value)) AS i "
        f"FROM samples WHERE tag = 'gf.a' AND {NOT_BAD} AND {RANGE} GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    # Buckets :30 past odd minutes; the first holds the lower bound 00:00:00.
    assert [(r["b"], r["v"], r["l"], r["i"]) for r in rows] == [
        (at(-2, 30), 1.0, 1.0, 1.0),
        (at(0, 30), 3.0, 3.0, 3.0),
        (at(2, 30), None, 3.0, 6.0),
        (at(4, 30), 9.0, 9.0, 9.0),
    ]


def test_missing_time_bounds_are_a_planning_error(server):
    message = "date_bin_gapfill requires a WHERE clause with lower and upper bounds on ts"
    no_upper = (
        "SELECT date_bin_gapfill(INTERVAL '1 minute', ts), avg(value) FROM samples "
        "WHERE ts >= TIMESTAMP '2026-01-01T00:00:00Z' GROUP BY 1"
    )
    assert message in query_error(server, no_upper)
    no_where = "SELECT date_bin_gapfill(INTERVAL '1 minute', ts), avg(value) FROM samples GROUP BY 1"
    assert message in query_error(server, no_where)


def test_fill_functions_without_date_bin_gapfill_are_an_error(server):
    error = query_error(server, f"SELECT tag, locf(avg(value)) FROM samples WHERE {RANGE} GROUP BY tag")
    assert "locf() can only be used on an aggregate" in error
    assert "date_bin_gapfill" in error
    error = query_error(server, "SELECT interpolate(value) FROM samples")
    assert "interpolate() can only be used on an aggregate" in error


def test_row_limit_is_max_history_intervals(server):
    # 36 buckets of 10 s per series: refused while planning.
    error = query_error(
        server,
        f"SELECT date_bin_gapfill(INTERVAL '10 seconds', ts), avg(value) FROM samples WHERE {RANGE} GROUP BY 1",
    )
    assert "36 buckets per series" in error and "max_history_intervals" in error
    # 12 buckets of 30 s fit, but not for two series (24 rows).
    thirty_seconds = (
        "SELECT date_bin_gapfill(INTERVAL '30 seconds', ts), tag, avg(value) FROM samples "
        "WHERE tag IN ({tags}) AND {range} GROUP BY 1, tag"
    )
    one = server.client.query(thirty_seconds.format(tags="'gf.a'", range=RANGE))
    assert one.num_rows == 12
    error = query_error(server, thirty_seconds.format(tags="'gf.a', 'gf.b'", range=RANGE))
    assert f"more than {MAX_ROWS} rows" in error and "max_history_intervals" in error
