"""Context stamping: samples without work_order/lot get those of the
production run active on their equipment (given in the row, or from
tags.equipment) at their ts; explicit values are never overwritten; samples
written before their run was recorded are stamped by `lotline restamp` —
checked against a reference computed in Python from the same runs, across a
SIGKILL restart, and with restamps interrupted by SIGKILL (no row lost or
doubled, the rewrite is all or nothing).
"""

from __future__ import annotations

import json
import subprocess
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from lotline_testlib import (
    NS_PER_S,
    TS_TYPE,
    ns,
    raw_flight,
    read_manifest,
    samples_table,
)

T0 = ns(2026, 5, 4)
S = NS_PER_S
QUIET = ("--flush-rows", "1000000000", "--flush-age-secs", "86400")

TAGS = pa.table(
    {
        "tag": ["l1.temp", "l2.press", "free.tag"],
        "equipment": ["line1.oven", "line2.oven", None],
    }
)

# (equipment, start, end or None, work_order, lot)
RUNS_EARLY = [
    ("line1.oven", T0, T0 + 100 * S, "WO-1", "L-1"),
    ("line1.oven", T0 + 100 * S, T0 + 200 * S, "WO-2", "L-2"),
    ("line1.oven", T0 + 300 * S, None, "WO-3", "L-3"),
    ("line2.oven", T0, T0 + 150 * S, "WO-4", "L-4"),
    # Overlaps the end of WO-4: the latest start wins.
    ("line2.oven", T0 + 120 * S, T0 + 130 * S, "WO-7", "L-7"),
]
# Recorded after the samples they cover.
RUNS_LATE = [
    ("line1.oven", T0 + 200 * S, T0 + 300 * S, "WO-6", "L-6"),
    ("line2.oven", T0 + 150 * S, T0 + 250 * S, "WO-5", "L-5"),
]


def runs_table(runs) -> pa.Table:
    return pa.table(
        {
            "equipment": [r[0] for r in runs],
            "work_order": [r[3] for r in runs],
            "lot": [r[4] for r in runs],
            "start_ts": pa.array([r[1] for r in runs], TS_TYPE),
            "end_ts": pa.array([r[2] for r in runs], TS_TYPE),
        }
    )


def reference(rows, runs, tag_equipment):
    """(tag, ts) -> (equipment, work_order, lot) as stamping must leave it."""
    by_key = {(r[0], r[1]): r for r in runs}  # latest write of a key wins
    out = {}
    for tag, ts, equipment, work_order, lot in rows:
        eq = equipment or tag_equipment.get(tag)
        if work_order is None and lot is None and eq is not None:
            covering = [r for r in by_key.values() if r[0] == eq and r[1] <= ts and (r[2] is None or ts < r[2])]
            if covering:
                run = max(covering, key=lambda r: r[1])
                work_order, lot = run[3], run[4]
        out[(tag, ts)] = (eq, work_order, lot)
    return out


def sample_rows(first_s: int, last_s: int):
    """(tag, ts, equipment, work_order, lot) rows every 10 s over [first, last)."""
    rows = []
    for s in range(first_s, last_s, 10):
        ts = T0 + s * S
        rows.append(("l1.x", ts, "line1.oven", None, None))  # equipment in the row
        rows.append(("l1.temp", ts, None, None, None))  # equipment from tags
        rows.append(("l2.press", ts, None, None, None))
        rows.append(("free.tag", ts, None, None, None))  # no equipment at all
        rows.append(("l2.given", ts, "line2.oven", "WO-X", "L-X"))  # never overwritten
        rows.append(("l2.half", ts, "line2.oven", None, "L-H"))  # lot given: left alone
    return rows


def ingest_rows(client, rows):
    client.ingest(
        samples_table(
            [r[0] for r in rows],
            [r[1] for r in rows],
            [float(i) for i in range(len(rows))],
            quality=[0] * len(rows),
            equipment=[r[2] for r in rows],
            work_order=[r[3] for r in rows],
            lot=[r[4] for r in rows],
        )
    )


def stored(client) -> dict:
    table = client.query("SELECT tag, ts, equipment, work_order, lot FROM samples")
    d = table.to_pydict()
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    got = {}
    for i, tag in enumerate(d["tag"]):
        assert (tag, ts[i]) not in got, f"duplicate sample {(tag, ts[i])}"
        got[(tag, ts[i])] = (d["equipment"][i], d["work_order"][i], d["lot"][i])
    return got


def restamp(server) -> dict:
    with raw_flight(server, timeout=300) as (client, options):
        results = list(client.do_action(flight.Action("lotline.restamp", b""), options))
    assert len(results) == 1
    return json.loads(results[0].body.to_pybytes())


def verify_ok(client) -> bool:
    return client.query("SELECT ok FROM verify_audit() WHERE check = 'summary'").column(0)[0].as_py()


def test_samples_carry_their_run_after_restamp(server_factory):
    server = server_factory(*QUIET)
    client = server.client
    client.ingest(TAGS, table="tags")
    client.ingest(runs_table(RUNS_EARLY), table="production_runs")
    tag_eq = {"l1.temp": "line1.oven", "l2.press": "line2.oven"}

    # Some samples go to segments, some stay in the write buffer.
    first, second = sample_rows(-20, 200), sample_rows(200, 400)
    ingest_rows(client, first)
    server.flush()
    ingest_rows(client, second)
    rows = first + second

    # Stamped at ingest from the runs known then.
    want_early = reference(rows, RUNS_EARLY, tag_eq)
    assert stored(client) == want_early
    assert want_early[("l1.temp", T0 + 50 * S)] == ("line1.oven", "WO-1", "L-1")
    # Overlapping runs: the latest start wins while it lasts.
    assert want_early[("l2.press", T0 + 120 * S)][2] == "L-7"
    assert want_early[("l2.press", T0 + 130 * S)][2] == "L-4"
    assert want_early[("l1.x", T0 + 250 * S)] == ("line1.oven", None, None)  # run not recorded yet

    client.ingest(runs_table(RUNS_LATE), table="production_runs")
    assert stored(client) == want_early  # nothing moves until a restamp or flush
    report = restamp(server)
    want = reference(rows, RUNS_EARLY + RUNS_LATE, tag_eq)
    assert stored(client) == want
    # Every row that qualifies carries its run now.
    late = [k for k in want if want[k] != want_early[k]]
    assert late and all(want[k][2] in ("L-5", "L-6") for k in late)
    in_segments = sum(1 for k in late if k[1] < T0 + 200 * S)
    assert report["rows_restamped"] == in_segments
    assert report["flush"]["rows_stamped"] == len(late) - in_segments
    assert report["segments_rewritten"] >= 1
    assert want[("l2.given", T0)] == ("line2.oven", "WO-X", "L-X")
    assert want[("l2.half", T0)] == ("line2.oven", None, "L-H")
    assert want[("free.tag", T0)] == (None, None, None)
    assert want[("l1.x", T0 - 10 * S)] == ("line1.oven", None, None)  # before any run

    # A second restamp has nothing to do.
    again = restamp(server)
    assert again["rows_restamped"] == 0 and again["segments_rewritten"] == 0

    # The rewrite is in the audit chain's segment lineage, which verifies.
    lineage = client.query("SELECT detail FROM audit_log WHERE action = 'segments' ORDER BY seq").column(0).to_pylist()
    [rewrite] = [d for d in map(json.loads, lineage) if d["action"] == "restamp"]
    assert len(rewrite["removed"]) == len(rewrite["added"]) == report["segments_rewritten"]
    assert verify_ok(client)

    # Survives a SIGKILL; the index is rebuilt, so new samples are stamped too.
    server.restart(kill=True)
    assert stored(server.client) == want
    more = sample_rows(400, 420)
    ingest_rows(server.client, more)
    assert stored(server.client) == reference(rows + more, RUNS_EARLY + RUNS_LATE, tag_eq)
    assert stored(server.client)[("l1.temp", T0 + 410 * S)] == ("line1.oven", "WO-3", "L-3")

    # The CLI speaks the same action; a reader may not.
    out = server.cli("restamp")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows_restamped"] == 0


def test_no_stamping_flag_leaves_ingest_alone(server_factory):
    server = server_factory(*QUIET, "--no-stamping")
    client = server.client
    client.ingest(TAGS, table="tags")
    client.ingest(runs_table(RUNS_EARLY), table="production_runs")
    rows = sample_rows(0, 50)
    ingest_rows(client, rows)
    assert stored(client) == {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}
    restamp(server)  # explicit restamp still stamps
    assert stored(client) == reference(rows, RUNS_EARLY, {"l1.temp": "line1.oven", "l2.press": "line2.oven"})


def contents(client):
    """Every sample's (tag, ts, value), sorted: what a restamp must keep."""
    table = client.query("SELECT tag, CAST(ts AS BIGINT) AS ts, value FROM samples ORDER BY tag, ts")
    return list(zip(*table.to_pydict().values()))


def test_restamp_interrupted_by_sigkill_is_all_or_nothing(server_factory):
    server = server_factory(*QUIET)
    client = server.client
    client.ingest(TAGS, table="tags")
    # Many segments, so a restamp takes long enough to be killed midway.
    segments = 48
    for i in range(segments):
        ingest_rows(client, sample_rows(i * 600, i * 600 + 600))
        server.flush()
    runs = [("line1.oven", T0, None, "WO-A", "L-A"), ("line2.oven", T0, None, "WO-B", "L-B")]
    client.ingest(runs_table(runs), table="production_runs")
    before = contents(client)
    assert client.count("lot IN ('L-A', 'L-B')") == 0
    # Rows a restamp stamps: equipment known (row or tag), no context given.
    qualifying = client.count("tag IN ('l1.x', 'l1.temp', 'l2.press')")

    # Kill restamps later and later until one completes; at least one kill
    # must land inside the rewrite (its new files are orphans on start).
    interrupted, delay = 0, 0.1
    while True:
        proc = subprocess.Popen(
            [str(server.binary), "restamp", "--endpoint", server.uri, "--password", server.password],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        server.kill()
        proc.wait(timeout=60)
        orphans_before = server.log_text().count("interrupted flush or restamp")
        server.start()
        client = server.client
        interrupted += server.log_text().count("interrupted flush or restamp") > orphans_before
        assert contents(client) == before, f"rows changed by a restamp killed after {delay:.2f} s"
        files = read_manifest(server.data_dir)["tables"]["samples"]
        assert all((server.data_dir / f["file"]).is_file() for f in files)
        on_disk = list((server.data_dir / "tables" / "samples").rglob("*.parquet"))
        assert len(on_disk) == len(files), "orphans of the interrupted restamp are removed on start"
        n = client.count("lot IN ('L-A', 'L-B')")
        assert n in (0, qualifying), f"half a restamp is live: {n} of {qualifying}"
        if n == qualifying:
            break
        assert delay < 30, "restamp never completed"
        delay += 0.05
    assert interrupted > 0, "no kill landed inside a restamp: make it slower (more segments)"
    restamp(server)
    assert contents(server.client) == before
    tag_eq = {"l1.temp": "line1.oven", "l2.press": "line2.oven"}
    rows = [r for i in range(segments) for r in sample_rows(i * 600, i * 600 + 600)]
    assert stored(server.client) == reference(rows, runs, tag_eq)
    # Kills between a restamp's manifest commit and its lineage entry are
    # recorded on start: the chain and the manifest agree.
    assert verify_ok(server.client)
