"""Queries on one tag / one hour read only the segments that can match.

Twelve ingest+flush rounds each write one day of data for their own range of
tags, so every round lands in its own segment(s). EXPLAIN ANALYZE must show a
DataSourceExec whose file_groups list only the segments of the queried day,
and the query itself must return exactly the rows written.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pytest

from lotline_testlib import MANUAL_FLUSH, NS_PER_S, day_of, manifest_files, ns, samples_table, sql_ts

ROUNDS = 12
TAGS_PER_ROUND = 40
STEP_S = 120
STEPS = 24 * 3600 // STEP_S  # 720 a day
HOUR = 3600 * NS_PER_S

DATA_SOURCE_RE = re.compile(r"DataSourceExec:.*?file_groups=\{(\d+) groups?: \[(.*?)\]\}", re.S)
PARQUET_PATH_RE = re.compile(r"[^\s\[\],]+?\.parquet")


def day_start(r: int) -> int:
    return ns(2024, 1, 1) + r * 24 * HOUR


def tag(r: int, k: int) -> str:
    return f"p{r:02d}.tag{k:02d}"


def value(r: int, k: int, i: int) -> float:
    return r * 100_000 + k * 1_000 + i * 0.25


def round_table(r: int):
    tags, ts, values = [], [], []
    for i in range(STEPS):
        for k in range(TAGS_PER_ROUND):
            tags.append(tag(r, k))
            ts.append(day_start(r) + i * STEP_S * NS_PER_S)
            values.append(value(r, k, i))
    return samples_table(tags, ts, values, quality=[0] * len(tags))


@pytest.fixture(scope="module")
def pruned_server(module_server_factory):
    server = module_server_factory(*MANUAL_FLUSH)
    for r in range(ROUNDS):
        server.client.ingest(round_table(r))
        assert server.flush()["segments_written"] >= 1
    files = manifest_files(server.data_dir)
    assert len(files) >= ROUNDS, f"{ROUNDS} flushes of separate days should give >= {ROUNDS} segments: {files}"
    assert server.client.count() == ROUNDS * STEPS * TAGS_PER_ROUND
    return server


def scanned_files(plan: str) -> list[str]:
    """The .parquet paths in every DataSourceExec's file_groups, deduplicated
    (one file may be split into byte ranges across several groups)."""
    scans = DATA_SOURCE_RE.findall(plan)
    assert scans, f"no DataSourceExec with file_groups in the plan:\n{plan[:6000]}"
    paths = []
    for _n_groups, groups in scans:
        assert "..." not in groups, f"file list truncated, i.e. far too many files scanned:\n{groups[:3000]}"
        for p in PARQUET_PATH_RE.findall(groups):
            if p not in paths:
                paths.append(p)
    return paths


def explain_analyze(client, sql: str) -> str:
    result = client.query("EXPLAIN ANALYZE " + sql)
    assert "plan" in result.column_names, result.column_names
    return "\n".join(str(p) for p in result.column("plan").to_pylist())


def brief(plan: str, limit: int = 6000) -> str:
    """The scan lines of a plan, shortened for assertion messages."""
    lines = [line.strip()[:600] for line in plan.splitlines() if "DataSourceExec" in line]
    text = "\n".join(lines)
    return text if len(text) <= limit else text[:limit] + "\n[...]"


def check_scan(server, sql: str, day_round: int):
    """The plan of `sql` reads only segments of `day_round`'s date."""
    all_files = manifest_files(server.data_dir)
    day = day_of(day_start(day_round))
    day_files = {PurePosixPath(f).name for f in all_files if f"date={day}/" in f}
    assert day_files, f"no segment for {day} in the manifest: {all_files}"

    plan = explain_analyze(server.client, sql)
    scanned = scanned_files(plan)
    names = {PurePosixPath(p.split(":")[0]).name for p in scanned}
    assert names, f"the plan scans no segment at all:\n{brief(plan)}"
    assert names <= day_files, (
        f"scanned segments outside {day}: {len(names - day_files)} of them; "
        f"{len(names)} scanned of {len(all_files)} in the manifest\n{brief(plan)}"
    )
    assert len(names) * 4 <= len(all_files), f"{len(names)} of {len(all_files)} segments scanned\n{brief(plan)}"
    assert "metrics=[" in plan, f"EXPLAIN ANALYZE shows no metrics:\n{brief(plan)}"
    return plan


def test_point_query_tag_and_hour(pruned_server):
    r, k = 7, 13
    lo = day_start(r) + 10 * HOUR
    hi = lo + HOUR
    sql = (
        f"SELECT ts, value FROM samples WHERE tag = '{tag(r, k)}' "
        f"AND ts >= {sql_ts(lo)} AND ts < {sql_ts(hi)} ORDER BY ts"
    )
    check_scan(pruned_server, sql, r)

    result = pruned_server.client.query(sql)
    first = (lo - day_start(r)) // (STEP_S * NS_PER_S)
    steps = range(first, first + HOUR // (STEP_S * NS_PER_S))
    assert result.column("ts").cast("int64").to_pylist() == [day_start(r) + i * STEP_S * NS_PER_S for i in steps]
    assert result.column("value").to_pylist() == [value(r, k, i) for i in steps]


def test_tag_only_query_prunes_by_tag_range(pruned_server):
    r, k = 3, 5
    sql = f"SELECT count(*) AS n, sum(value) AS s FROM samples WHERE tag = '{tag(r, k)}'"
    check_scan(pruned_server, sql, r)
    row = pruned_server.client.query(sql).to_pylist()[0]
    assert row["n"] == STEPS
    assert row["s"] == sum(value(r, k, i) for i in range(STEPS))


def test_time_only_query_prunes_by_time_range(pruned_server):
    r = 10
    lo = day_start(r) + 15 * HOUR
    hi = lo + HOUR
    sql = f"SELECT count(*) AS n, count(DISTINCT tag) AS tags FROM samples WHERE ts >= {sql_ts(lo)} AND ts < {sql_ts(hi)}"
    check_scan(pruned_server, sql, r)
    row = pruned_server.client.query(sql).to_pylist()[0]
    assert row == {"n": TAGS_PER_ROUND * HOUR // (STEP_S * NS_PER_S), "tags": TAGS_PER_ROUND}
