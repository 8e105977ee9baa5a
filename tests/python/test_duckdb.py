"""The on-disk layout is open: DuckDB reads the flushed segments as
Hive-partitioned Parquet and sees exactly what lotline serves."""

from __future__ import annotations

import collections

import duckdb
import pyarrow as pa

from lotline_testlib import MANUAL_FLUSH, NS_PER_S, day_of, manifest_files, ns, samples_table

T0 = ns(2024, 2, 28, 22)  # three days from 22:00: four dates, one of them a leap day
STEP_S = 60
N_STEPS = 3 * 24 * 60  # three days of minutes
N_TAGS = 20
BAD = 0x80000000


def make_rows():
    """Deterministic plant-like rows; values are multiples of 0.25 so sums are exact."""
    rows = []
    for step in range(N_STEPS):
        ts = T0 + step * STEP_S * NS_PER_S
        for t in range(N_TAGS):
            g = step * N_TAGS + t
            tag = f"area2.line{t % 4}.tag{t:02d}"
            if t == 7:  # a state tag: text, no value
                rows.append((tag, ts, None, "RUN" if (step // 90) % 2 == 0 else "STOP", 0))
            elif g % 97 == 0:  # a bad sample without value
                rows.append((tag, ts, None, None, BAD))
            else:
                rows.append((tag, ts, ((g * 37) % 40_000) / 4 - 2_500.0, None, 0))
    return rows


def to_table(rows, lot_of) -> pa.Table:
    tags, ts, values, text, quality = map(list, zip(*rows))
    return samples_table(
        tags,
        ts,
        values,
        text=text,
        quality=quality,
        equipment=[tag.split(".")[1] for tag in tags],
        work_order=[f"WO-{day_of(t)}" for t in ts],
        lot=[lot_of(t) for t in ts],
    )


def test_duckdb_reads_segments(server_factory):
    server = server_factory(*MANUAL_FLUSH)
    rows = make_rows()
    lot_of = lambda t: f"LOT-{(t - T0) // (6 * 3600 * NS_PER_S)}"  # one lot per 6 h
    client = server.client
    # three requests, interleaved in time so segments must be sorted by the server
    for part in range(3):
        client.ingest(to_table(rows[part::3], lot_of))

    expected = {
        "n": len(rows),
        "sum_value": sum(r[2] for r in rows if r[2] is not None),
        "n_value": sum(1 for r in rows if r[2] is not None),
        "n_text": sum(1 for r in rows if r[3] is not None),
        "n_tags": N_TAGS,
        "sum_quality": sum(r[4] for r in rows),
        "n_lots": len({lot_of(r[1]) for r in rows}),
    }
    stats_sql = (
        "SELECT count(*) AS n, sum(value) AS sum_value, count(value) AS n_value, count(text) AS n_text, "
        "count(DISTINCT tag) AS n_tags, sum(CAST(quality AS BIGINT)) AS sum_quality, "
        "count(DISTINCT lot) AS n_lots FROM {src}"
    )

    def lotline_stats():
        got = client.query(stats_sql.format(src="samples")).to_pylist()[0]
        return {k: (int(v) if k != "sum_value" else v) for k, v in got.items()}

    assert lotline_stats() == expected
    result = server.flush()
    assert result["segments_written"] >= 4, f"four dates should give at least four segments: {result}"
    assert lotline_stats() == expected

    files = manifest_files(server.data_dir)
    days = sorted({day_of(r[1]) for r in rows})
    assert days == ["2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02"]
    assert {f.split("/")[2] for f in files} == {f"date={d}" for d in days}

    glob = str(server.data_dir / "tables" / "samples" / "**" / "*.parquet")
    src = f"read_parquet('{glob}', hive_partitioning = true)"
    con = duckdb.connect()
    try:
        names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
        for col in ["tag", "ts", "value", "text", "quality", "equipment", "work_order", "lot", "date"]:
            assert col in names, f"DuckDB does not see column {col}: {names}"
        cur = con.execute(stats_sql.format(src=src))
        got = dict(zip([d[0] for d in cur.description], cur.fetchone()))
        got = {k: (int(v) if k != "sum_value" else v) for k, v in got.items()}
        assert got == expected == lotline_stats()

        # the Hive partition column agrees with the UTC day of every ts
        per_day = dict(
            con.execute(
                f"SELECT CAST(date AS VARCHAR), count(*) FROM {src} "
                "WHERE CAST(floor(epoch(ts) / 86400) AS BIGINT) = CAST(epoch(CAST(date AS DATE)) / 86400 AS BIGINT) "
                "GROUP BY 1"
            ).fetchall()
        )
        assert per_day == dict(collections.Counter(day_of(r[1]) for r in rows))

        # and a row-level spot check of one tag in one hour
        lo, hi = T0 + 24 * 3600 * NS_PER_S, T0 + 25 * 3600 * NS_PER_S
        tag = "area2.line1.tag05"
        want = [(r[1], r[2]) for r in rows if r[0] == tag and lo <= r[1] < hi]
        got_rows = con.execute(
            f"SELECT epoch_ns(ts), value FROM {src} WHERE tag = ? AND epoch_ns(ts) >= ? AND epoch_ns(ts) < ? ORDER BY ts",
            [tag, lo, hi],
        ).fetchall()
        assert got_rows == want
    finally:
        con.close()
