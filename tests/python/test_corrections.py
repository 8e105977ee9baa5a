"""Sample corrections (issue 6, test 6): samples stay immutable; a row of
`sample_corrections` makes `samples` (and last_values, and the historian
functions that read `samples`) show the new value and quality while
`samples_raw` keeps the original. Correction rows hold who and why; a
correction without a reason is refused. All of it survives SIGKILL and flush.
"""

from __future__ import annotations

import adbc_driver_manager
import pyarrow as pa
import pytest

from lotline_testlib import ADMIN_USER, check_across_restarts, TS_TYPE, error_text, ingest_error, ns, sql_ts

T0 = ns(2026, 5, 1)
S = 1_000_000_000


@pytest.fixture
def server(server_factory):
    return server_factory("--flush-rows", "1000000000", "--flush-age-secs", "86400")


def values(client, table: str, where: str = "") -> list[tuple]:
    sql = f"SELECT tag, CAST(ts AS BIGINT) AS t, value, quality FROM {table} {where} ORDER BY tag, ts"
    return [(r["tag"], r["t"], r["value"], r["quality"]) for r in client.query(sql).to_pylist()]


def test_corrections_show_in_samples_and_keep_the_raw_rows(server):
    c = server.client
    raw = pa.table(
        {
            "tag": ["oven.temp"] * 4 + ["mixer.rpm"],
            "ts": pa.array([T0, T0 + S, T0 + 2 * S, T0 + 3 * S, T0], TS_TYPE),
            "value": [180.0, 999.0, 182.0, 183.0, 60.0],
            "quality": [0, 0, 0, 0, 0],
        }
    )
    c.ingest(raw)
    original = values(c, "samples")

    # Without a reason: refused whole, nothing changes.
    fix = pa.table({"tag": ["oven.temp"], "ts": pa.array([T0 + S], TS_TYPE), "value": [181.0]})
    text = ingest_error(c, fix, table="sample_corrections")
    assert "needs a reason" in text and "tag='oven.temp'" in text and "x-lotline-reason" in text, text
    with pytest.raises(adbc_driver_manager.Error) as exc:
        c.execute(f"INSERT INTO sample_corrections (tag, ts, value) VALUES ('oven.temp', {sql_ts(T0 + S)}, 181)")
    assert "needs a reason" in error_text(exc.value)
    assert c.count(table="sample_corrections") == 0 and values(c, "samples") == original

    # A reason per row (a forged corrected_by is overwritten), by header, and by statement prefix.
    c.ingest(
        pa.table({"tag": ["oven.temp"], "ts": pa.array([T0 + S], TS_TYPE), "value": [150.0], "reason": ["spike"], "corrected_by": ["mallory"]}),
        table="sample_corrections",
    )
    c.execute(
        "SET lotline.reason = 'sensor swap'; INSERT INTO sample_corrections (tag, ts, value, quality) "
        f"VALUES ('oven.temp', {sql_ts(T0 + 3 * S)}, 184, 1083441152)"
    )
    c.set_reason("calibration drift")
    c.ingest(fix, table="sample_corrections")  # newer correction of T0+1s wins

    def check():
        c = server.client
        expected = [
            ("mixer.rpm", T0, 60.0, 0),
            ("oven.temp", T0, 180.0, 0),
            ("oven.temp", T0 + S, 181.0, 0),
            ("oven.temp", T0 + 2 * S, 182.0, 0),
            ("oven.temp", T0 + 3 * S, 184.0, 1083441152),
        ]
        assert values(c, "samples") == expected
        assert values(c, "samples_raw") == original
        # Filters see corrected values (not pruned by the raw ones).
        assert values(c, "samples", "WHERE value = 181") == [expected[2]]
        assert values(c, "samples", "WHERE value > 900") == []
        assert c.scalar("SELECT value FROM samples_raw WHERE value > 900") == 999.0
        assert c.scalar("SELECT value FROM last_values WHERE tag = 'oven.temp'") == 184.0
        avg = c.scalar(
            "SELECT value FROM history_aggregate('oven.temp', 'Maximum', "
            f"{sql_ts(T0)}, {sql_ts(T0 + 3 * S)}, INTERVAL '3 seconds')"
        )
        assert avg == 182.0, "the historian reads corrected samples (999 is gone)"
        rows = c.query(
            "SELECT CAST(ts AS BIGINT) AS t, value, corrected_by, reason, CAST(corrected_at AS BIGINT) AS corrected_at FROM sample_corrections ORDER BY corrected_at"
        ).to_pylist()
        assert [(r["t"], r["value"], r["corrected_by"], r["reason"]) for r in rows] == [
            (T0 + S, 150.0, ADMIN_USER, "spike"),
            (T0 + 3 * S, 184.0, ADMIN_USER, "sensor swap"),
            (T0 + S, 181.0, ADMIN_USER, "calibration drift"),
        ]
        assert all(r["corrected_at"] is not None for r in rows)

    check_across_restarts(server, check)
