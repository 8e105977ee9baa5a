"""The write path's last-value cache (`last_values`), `time_weighted_avg`
and `quality_class`, through a real server over Flight SQL."""

from __future__ import annotations

import datetime as dt
import math

from lotline_testlib import samples_table


def parse_ns(text: str) -> int:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(t.timestamp()) * 1_000_000_000


def to_ns(value: dt.datetime) -> int:
    return (int(value.replace(microsecond=0).timestamp()) * 1_000_000 + value.microsecond) * 1000


def test_last_values_equal_newest_rows_before_and_after_restart(server_factory):
    server = server_factory("--flush-rows", "1000000000", "--flush-age-secs", "86400")
    t0 = parse_ns("2026-03-01T00:00:00Z")
    US = 1000  # whole microseconds: Python datetimes cannot hold nanoseconds
    # Out-of-order arrival across requests, and a rewrite of the newest sample.
    server.client.ingest(samples_table(["a", "b", "a"], [t0 + 5 * US, t0 + 1 * US, t0 + 3 * US], [5.0, 1.0, 3.0]))
    server.client.ingest(samples_table(["a", "b", "c"], [t0 + 4 * US, t0 + 2 * US, t0 + 9 * US], [4.0, 2.0, 9.0]))
    server.client.ingest(samples_table(["a"], [t0 + 5 * US], [5.5]))
    reference = (
        "SELECT tag, ts, value FROM (SELECT tag, ts, value, "
        "row_number() OVER (PARTITION BY tag ORDER BY ts DESC) AS rn FROM samples) WHERE rn = 1 ORDER BY tag"
    )

    def check():
        got = server.client.query("SELECT tag, ts, value FROM last_values ORDER BY tag").to_pylist()
        assert [(r["tag"], to_ns(r["ts"]), r["value"]) for r in got] == [
            ("a", t0 + 5 * US, 5.5), ("b", t0 + 2 * US, 2.0), ("c", t0 + 9 * US, 9.0)
        ]
        want = server.client.query(reference).to_pylist()
        assert [(r["tag"], to_ns(r["ts"])) for r in got] == [(r["tag"], to_ns(r["ts"])) for r in want]

    check()
    server.restart(kill=True)  # from the WAL
    check()
    server.flush()
    server.restart(kill=True)  # from the flushed snapshot
    check()
    server.client.ingest(samples_table(["b"], [t0 + 1 * US], [0.5]))  # older: no change
    check()


def test_time_weighted_avg_and_quality_class(server_factory):
    server = server_factory()
    t0 = parse_ns("2026-03-01T00:00:00Z")
    s = 1_000_000_000
    server.client.ingest(
        samples_table(
            ["wo1", "wo1", "wo1", "wo1", "wo2", "wo3"],
            [t0, t0 + s, t0 + 2 * s, t0 + 4 * s, t0, t0],
            [10.0, 99.0, 30.0, 30.0, 42.0, None],
            quality=[0, 0x80000000, 0x40000000, 0, 0, 0x809B0000],
            work_order=["WO-1", "WO-1", "WO-1", "WO-1", "WO-2", "WO-3"],
        )
    )
    rows = server.client.query(
        "SELECT work_order, time_weighted_avg(value, ts, quality, 'step') AS step, "
        "time_weighted_avg(value, ts, quality, 'linear') AS linear, time_weighted_avg(value, ts) AS plain "
        "FROM samples GROUP BY work_order ORDER BY work_order"
    ).to_pylist()
    # WO-1 step: 10 for 1 s, Bad gap 1 s, 30 for 2 s -> 70/3; linear: only [2 s, 4 s) -> 30.
    assert rows[0]["work_order"] == "WO-1"
    assert math.isclose(rows[0]["step"], 70 / 3) and math.isclose(rows[0]["linear"], 30.0)
    # Without quality the Bad sample's 99 counts: linear (54.5*1 + 64.5*1 + 30*2) / 4.
    assert math.isclose(rows[0]["plain"], (54.5 + 64.5 + 60) / 4)
    assert rows[1]["step"] == 42.0  # single sample
    assert rows[2]["step"] is None  # only a Bad sample
    classes = server.client.query(
        "SELECT quality_class(quality) AS c, count(*) AS n FROM samples GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    assert classes == [{"c": "bad", "n": 2}, {"c": "good", "n": 3}, {"c": "uncertain", "n": 1}]
