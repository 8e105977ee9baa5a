"""Compaction against the real binary: many small flushes are merged per
date partition by `lotline.compact` (Flight action, CLI, gRPC) and by the
background compactor; every query answers exactly as before, a
one-tag-one-hour query opens fewer files, samples written before their
production run get stamped, a compaction killed at any point is all or
nothing, and a query that started before a compaction finishes with the
files it planned. The small tables (`audit_log`, versioned context tables)
are merged too, with their chain and their latest versions intact.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.flight as flight

from lotline_testlib import (
    MANUAL_FLUSH,
    NS_PER_S,
    bearer_options,
    flight_client,
    flight_sql_command,
    manifest_files,
    ns,
    raw_flight,
    read_manifest,
    samples_table,
    sql_ts,
)
from test_grpc_ingest import Api, pb  # noqa: F401  (pb is a fixture)
from test_pruning import explain_analyze, scanned_files
from test_stamping import RUNS_EARLY, RUNS_LATE, TAGS, ingest_rows, reference, runs_table, sample_rows, stored

S = NS_PER_S
T0 = ns(2026, 6, 1, 10)
DAY2 = ns(2026, 6, 2, 10)
TAG_COUNT = 40
STEP_S = 10
FLUSH_SPAN_S = 300  # each flush holds 5 minutes of every tag
# Small enough that the test data makes several outputs per merge.
POLICY = ("--compaction-target-rows", "6000", "--compaction-min-segments", "4", "--compaction-max-inputs", "8")
# Replaced files go as soon as their last reader does (tests that count files).
NO_GRACE = ("--retired-file-grace-secs", "0")


def tag(k: int) -> str:
    return f"c.t{k:02d}"


def flush_window(client, start_ns: int, salt: float, late_after: int | None = None):
    """One flush worth of samples: every tag every STEP_S over FLUSH_SPAN_S;
    optionally one late row of tag 0 in an earlier window (1 ns after
    `late_after`, a new key: a resend of a written key would not be
    written again), which widens this flush's time range."""
    tags, ts, values = [], [], []
    for k in range(TAG_COUNT):
        for i in range(FLUSH_SPAN_S // STEP_S):
            tags.append(tag(k))
            ts.append(start_ns + i * STEP_S * S)
            values.append(salt + k * 1000 + i)
    if late_after is not None:
        tags.append(tag(0))
        ts.append(late_after + 1)
        values.append(-salt)
    client.ingest(samples_table(tags, ts, values, quality=[0] * len(tags)))


def fill(server, day1_flushes: int = 16, day2_flushes: int = 5) -> int:
    """Small flushes over two days, late rows included; returns the rows."""
    client = server.client
    rows = 0
    for f in range(day1_flushes):
        start = T0 + f * FLUSH_SPAN_S * S
        flush_window(client, start, float(f), late_after=start - FLUSH_SPAN_S * S if f else None)
        rows += TAG_COUNT * FLUSH_SPAN_S // STEP_S + (1 if f else 0)
        server.flush()
    for f in range(day2_flushes):
        flush_window(client, DAY2 + f * FLUSH_SPAN_S * S, 100.0 + f)
        rows += TAG_COUNT * FLUSH_SPAN_S // STEP_S
        server.flush()
    return rows


def answers(client) -> dict:
    """Everything compaction must leave unchanged."""
    hour = f"ts >= {sql_ts(T0)} AND ts < {sql_ts(T0 + 3600 * S)}"
    return {
        "dump": client.query(
            "SELECT tag, CAST(ts AS BIGINT) AS ts, value, quality FROM samples ORDER BY tag, ts, value"
        ).to_pylist(),
        "count": client.count(),
        "per_tag": client.query("SELECT tag, count(*) AS n FROM samples GROUP BY tag ORDER BY tag").to_pylist(),
        "last_values": client.query(
            "SELECT tag, CAST(ts AS BIGINT) AS ts, value FROM last_values ORDER BY tag"
        ).to_pylist(),
        "history": client.query(
            f"SELECT CAST(ts AS BIGINT) AS ts, value FROM history_aggregate('{tag(5)}', 'Average', "
            f"{sql_ts(T0)}, {sql_ts(T0 + 3600 * S)}, INTERVAL '10 minutes') ORDER BY ts"
        ).to_pylist(),
        "hour": client.query(
            f"SELECT CAST(ts AS BIGINT) AS ts, value FROM samples WHERE tag = '{tag(5)}' AND {hour} ORDER BY ts"
        ).to_pylist(),
    }


def compact(server) -> dict:
    with raw_flight(server, timeout=300) as (client, options):
        results = list(client.do_action(flight.Action("lotline.compact", b""), options))
    assert len(results) == 1
    return json.loads(results[0].body.to_pybytes())


def one_tag_one_hour_candidates(server) -> set[str]:
    """Segments whose manifest time and tag ranges admit tag 5's first hour:
    what a scan must open (the plan display lists at most 5 files a group)."""
    lo, hi = T0, T0 + 3600 * S - 1
    return {
        PurePosixPath(e["file"]).name
        for e in read_manifest(server.data_dir)["tables"]["samples"]
        if e["min_time"] <= hi and e["max_time"] >= lo and e["min_key"] <= tag(5) <= e["max_key"]
    }


def one_tag_one_hour_files(server) -> set[str]:
    sql = (
        f"SELECT ts, value FROM samples WHERE tag = '{tag(5)}' "
        f"AND ts >= {sql_ts(T0)} AND ts < {sql_ts(T0 + 3600 * S)}"
    )
    plan = explain_analyze(server.client, sql)
    return {PurePosixPath(p.split(":")[0]).name for p in scanned_files(plan)}


def parquet_on_disk(data_dir: Path) -> set[str]:
    return {str(p.relative_to(data_dir)) for p in (data_dir / "tables" / "samples").rglob("*.parquet*")}


def test_compaction_keeps_every_answer_and_merges_files(server_factory, pb):  # noqa: F811
    server = server_factory(*MANUAL_FLUSH, *POLICY, *NO_GRACE)
    rows = fill(server)
    before = answers(server.client)
    assert before["count"] == rows
    assert len(before["hour"]) == 3600 // STEP_S
    files_before = manifest_files(server.data_dir)
    assert len(files_before) == 21
    scanned_before = one_tag_one_hour_candidates(server)
    # 12 five-minute flushes, and the next one for its late row.
    assert len(scanned_before) == 13, scanned_before

    report = compact(server)
    merged = report["tables"]["samples"]
    assert merged["segments_before"] == 21 and merged["segments_merged"] == 21
    # Day 1: two merges of 8 (about 9 600 rows: 2 outputs each); day 2: 5 -> 1.
    assert merged["segments_written"] == 5 and merged["segments_after"] == 5
    assert merged["rows"] == rows
    # The flushes' audit_log segments (one partition) were merged as well.
    assert report["partitions"] == 3 and set(report["tables"]) == {"samples", "audit_log"}
    assert report["bytes_after"] > 0

    files_after = manifest_files(server.data_dir)
    assert len(files_after) == 5
    assert not set(files_after) & set(files_before)
    # Nothing was reading the old files: they are gone, and no temporary is left.
    assert parquet_on_disk(server.data_dir) == set(files_after)
    entries = read_manifest(server.data_dir)["tables"]["samples"]
    assert all(len(e.get("sha256", "")) == 64 for e in entries)
    assert answers(server.client) == before

    scanned_after = one_tag_one_hour_files(server)
    assert scanned_after == one_tag_one_hour_candidates(server)
    assert len(scanned_after) <= 3, f"{scanned_after} scanned after compaction, {len(scanned_before)} before"

    # Nothing left to merge; the CLI and gRPC speak the same call.
    out = server.cli("compact")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["segments_merged"] == 0
    api = Api(pb, server)
    try:
        reply = api.admin.Compact(pb.admin.CompactRequest(), metadata=api.auth, timeout=60)
    finally:
        api.close()
    assert reply.segments_merged == 0 and reply.segments_after == report["segments_after"]

    # The per-segment hashes in the manifest match the new files.
    verify_audit(server)

    server.restart(kill=True)
    assert answers(server.client) == before


def test_compact_needs_the_admin_role(server_factory):
    server = server_factory(*MANUAL_FLUSH)
    out = server.cli("user", "add", "wr", "--role", "writer", "--password-stdin", input="wr-Secret-Pass-1\n")
    assert out.returncode == 0, out.stderr
    out = server.cli("compact", user="wr", password="wr-Secret-Pass-1")
    assert out.returncode != 0
    assert "compact" in out.stderr and "admin" in out.stderr, out.stderr


def test_background_compaction_merges_without_being_asked(server_factory):
    # Filled without the compactor, which could otherwise merge part of the
    # flushes before the last one lands; then served with it.
    filler = server_factory(*MANUAL_FLUSH, *POLICY)
    rows = fill(filler, day1_flushes=8, day2_flushes=0)
    before = answers(filler.client)
    audit_segments = len(manifest_files(filler.data_dir, "audit_log"))
    assert len(manifest_files(filler.data_dir)) == 8 and audit_segments >= 8
    filler.stop()
    server = server_factory(
        *MANUAL_FLUSH, *POLICY, "--compaction-interval-secs", "1", background_compaction=True, name=filler.data_dir.name
    )

    def merged() -> int:
        metrics = server.http("/metrics").body.decode()
        found = re.search(r'lotline_compaction\{what="segments_merged"\} (\d+)', metrics)
        assert found, metrics
        return int(found.group(1))

    # One run merges the 8 samples segments and the flushes' audit_log ones.
    deadline = time.monotonic() + 60
    while merged() <= 8:
        assert time.monotonic() < deadline, f"the background compactor merged {merged()} segments"
        time.sleep(0.2)
    assert len(manifest_files(server.data_dir)) == 2
    assert len(manifest_files(server.data_dir, "audit_log")) < audit_segments
    assert answers(server.client) == before
    assert before["count"] == rows


def test_compaction_stamps_samples_written_before_their_run(server_factory):
    server = server_factory(*MANUAL_FLUSH, "--compaction-min-segments", "4")
    client = server.client
    client.ingest(TAGS, table="tags")
    client.ingest(runs_table(RUNS_EARLY), table="production_runs")
    rows = []
    for i in range(10):
        part = sample_rows(i * 40, i * 40 + 40)
        ingest_rows(client, part)
        rows += part
        server.flush()
    client.ingest(runs_table(RUNS_LATE), table="production_runs")
    server.flush()
    tag_eq = {"l1.temp": "line1.oven", "l2.press": "line2.oven"}
    want = reference(rows, RUNS_EARLY + RUNS_LATE, tag_eq)
    assert stored(client) != want, "the late runs must not be applied before compaction"

    report = compact(server)
    merged = report["tables"]["samples"]
    assert merged["segments_merged"] == 10 and merged["segments_written"] == 1
    assert report["rows_stamped"] > 0
    assert stored(client) == want
    server.restart(kill=True)
    assert stored(server.client) == want


def contents(client):
    table = client.query("SELECT tag, CAST(ts AS BIGINT) AS ts, value FROM samples ORDER BY tag, ts, value")
    return list(zip(*table.to_pydict().values()))


def test_compaction_killed_at_any_point_is_all_or_nothing(server_factory):
    # 48 small segments merged 4 at a time: 12 merges, one output each
    # (4 800 rows: not small at this target, so done after one pass).
    policy = ("--compaction-target-rows", "9000", "--compaction-min-segments", "2", "--compaction-max-inputs", "4")
    server = server_factory(*MANUAL_FLUSH, *policy)
    segments, after = 48, 12
    for f in range(segments):
        flush_window(server.client, T0 + f * FLUSH_SPAN_S * S, float(f))
        server.flush()
    before = contents(server.client)
    assert len(before) == segments * TAG_COUNT * FLUSH_SPAN_S // STEP_S

    interrupted, delay = 0, 0.1
    while True:
        proc = subprocess.Popen(
            [str(server.binary), "compact", "--endpoint", server.uri, "--password", server.password],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        server.kill()
        proc.wait(timeout=60)
        orphans_before = server.log_text().count("not in the manifest")
        server.start()
        interrupted += server.log_text().count("not in the manifest") > orphans_before
        assert contents(server.client) == before, f"rows changed by a compaction killed after {delay:.2f} s"
        files = manifest_files(server.data_dir)
        assert all((server.data_dir / f).is_file() for f in files)
        assert parquet_on_disk(server.data_dir) == set(files), "orphans of the killed compaction are removed on start"
        assert len(files) in (segments, after), f"half a compaction is live: {len(files)} segments"
        if len(files) == after:
            break
        assert delay < 30, "compaction never completed"
        delay += 0.05
    assert interrupted > 0, "no kill landed inside a compaction: make it slower (more segments)"
    # Nothing left of samples to merge (the restarts' audit_log segments may be).
    assert "samples" not in compact(server)["tables"]


def test_query_started_before_compaction_finishes_with_its_files(server_factory):
    policy = ("--compaction-target-rows", "200000", "--compaction-min-segments", "2", "--compaction-max-inputs", "64")
    server = server_factory(*MANUAL_FLUSH, *policy, *NO_GRACE)
    segments = 48
    for f in range(segments):
        flush_window(server.client, T0 + f * FLUSH_SPAN_S * S, float(f))
        server.flush()
    old_files = set(manifest_files(server.data_dir))
    expected = sorted(contents(server.client))

    client = flight_client(server.port)
    try:
        options = bearer_options(client, server.password)
        info = client.get_flight_info(
            flight.FlightDescriptor.for_command(
                # Wide rows (about 25 MB in all), so the result cannot sit
                # in network buffers: the scan is still running.
                flight_sql_command(
                    "SELECT tag, CAST(ts AS BIGINT) AS ts, value, repeat('x', 400) AS pad FROM samples"
                )
            ),
            options,
        )
        reader = client.do_get(info.endpoints[0].ticket, options)
        first = reader.read_chunk().data
        assert 0 < first.num_rows < len(expected), "the result must stream in several batches"

        report = compact(server)["tables"]["samples"]
        assert report["segments_merged"] == segments and report["segments_after"] == 1
        assert not old_files & set(manifest_files(server.data_dir))
        still = {f for f in old_files if (server.data_dir / f).exists()}
        assert still, "the running query's files were deleted under it"

        rest = reader.read_all()
    finally:
        client.close()
    got = pa.concat_tables([pa.Table.from_batches([first]), rest]).drop_columns(["pad"])
    assert sorted(zip(*got.to_pydict().values())) == expected

    # Once the query is done its files go (the last pin is dropped).
    deadline = time.monotonic() + 30
    while parquet_on_disk(server.data_dir) != set(manifest_files(server.data_dir)):
        assert time.monotonic() < deadline, "replaced files stayed after the last reader finished"
        time.sleep(0.1)


def small_table_answers(client, last_seq: int) -> dict:
    """What compacting audit_log and production_runs must leave unchanged:
    the entries up to `last_seq` (compaction adds its own) and every
    version of the runs, the current one of each key among them."""
    runs = "equipment, CAST(start_ts AS BIGINT) AS start_ts, CAST(end_ts AS BIGINT) AS end_ts, work_order, lot"
    return {
        "audit": client.query(
            f"SELECT seq, actor, action, table_name, row_count, detail, hash FROM audit_log WHERE seq <= {last_seq} ORDER BY seq"
        ).to_pylist(),
        "runs": client.query(f"SELECT {runs} FROM production_runs ORDER BY start_ts").to_pylist(),
        "history": client.query(f"SELECT {runs}, op, reason FROM production_runs_history ORDER BY start_ts, op").to_pylist(),
    }


def verify_audit(server):
    """`lotline verify-audit` on the server's data directory passes."""
    verify = subprocess.run(
        [str(server.binary), "verify-audit", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_small_tables_are_compacted_with_their_chain_and_versions(server_factory):
    server = server_factory(*MANUAL_FLUSH, "--compaction-min-segments", "4")
    client = server.client
    client.set_reason("shift log")
    flushes = 10
    for f in range(flushes):
        # A run starts; the one before it ends: a new version of its key,
        # in another segment than the first.
        start = T0 + f * 3600 * S
        runs = [("line1.oven", start, None, f"WO-{f}", f"L-{f}")]
        if f:
            runs.append(("line1.oven", start - 3600 * S, start, f"WO-{f - 1}", f"L-{f - 1}"))
        client.ingest(runs_table(runs), table="production_runs")
        server.flush()
    last_seq = client.scalar("SELECT max(seq) FROM audit_log")
    before = small_table_answers(client, last_seq)
    assert len(before["runs"]) == flushes and len(before["history"]) == 2 * flushes - 1
    audit_segments = len(manifest_files(server.data_dir, "audit_log"))
    assert len(manifest_files(server.data_dir, "production_runs")) == flushes and audit_segments >= flushes

    out = server.cli("compact")
    assert out.returncode == 0, out.stderr
    assert len(manifest_files(server.data_dir, "production_runs")) == 1
    audit_after = len(manifest_files(server.data_dir, "audit_log"))
    assert audit_after < audit_segments
    report = json.loads(out.stdout)["tables"]
    assert report["audit_log"]["segments_after"] == audit_after
    assert report["production_runs"]["segments_merged"] == flushes
    assert small_table_answers(client, last_seq) == before
    verify_audit(server)

    # After a restart the chain goes on from the merged segments' last entry.
    server.restart(kill=True)
    assert small_table_answers(server.client, last_seq) == before
    server.client.ingest(runs_table([("line2.press", T0, None, "WO-x", "L-x")]), table="production_runs")
    server.flush()
    verify_audit(server)
    assert server.client.count(table="production_runs") == flushes + 1
