"""Traceability over Flight SQL: trace_backward / trace_forward against a
breadth-first reference computed here from the same edges, across a SIGKILL
restart and a flush; and the oven temperature of every lot in the backward
genealogy of a finished lot in one SQL query (lot_samples), against a
reference built from the runs, tags and samples written.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

import pyarrow as pa

from lotline_testlib import TS_TYPE, error_text, samples_table

NS_PER_S = 1_000_000_000
T0 = int(dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc).timestamp()) * NS_PER_S


def to_ns(value) -> int:
    return (int(value.replace(microsecond=0).timestamp()) * 1_000_000 + value.microsecond) * 1000


# ---------------------------------------------------------------------------
# the reference
# ---------------------------------------------------------------------------


def latest(edges):
    """Latest write per key (input, output, ts), as the table keeps them."""
    out = {}
    for e in edges:
        out[(e["input_lot"], e["output_lot"], e["ts"])] = e
    return list(out.values())


def reference_trace(edges, start, direction, max_depth=None):
    """BFS: each lot once at its smallest depth; among parents of the same
    depth the smallest lot id wins, then the earliest edge ts. Rows ordered
    by (depth, lot); an unknown lot gives no rows."""
    near, far = ("output_lot", "input_lot") if direction == "backward" else ("input_lot", "output_lot")
    adjacent = defaultdict(list)
    lots = set()
    for e in edges:
        adjacent[e[near]].append(e)
        lots.update((e["input_lot"], e["output_lot"]))
    if start not in lots:
        return []
    rows = [(start, 0, [start], None, None, None)]
    seen = {start}
    frontier = [rows[0]]
    depth = 0
    while frontier and (max_depth is None or depth < max_depth):
        depth += 1
        best = {}
        for parent in frontier:
            for e in adjacent[parent[0]]:
                nxt = e[far]
                if nxt in seen:
                    continue
                rank = (parent[0], e["ts"])
                if nxt not in best or rank < best[nxt][0]:
                    best[nxt] = (rank, parent, e)
        frontier = []
        for lot in sorted(best):
            _, parent, e = best[lot]
            row = (lot, depth, parent[2] + [lot], e["quantity"], e["work_order"], e["equipment"])
            frontier.append(row)
            seen.add(lot)
        rows += frontier
    return rows


def edges_table(edges) -> pa.Table:
    return pa.table(
        {
            "input_lot": pa.array([e["input_lot"] for e in edges]),
            "output_lot": pa.array([e["output_lot"] for e in edges]),
            "quantity": pa.array([e["quantity"] for e in edges], pa.float64()),
            "uom": pa.array(["kg"] * len(edges)),
            "ts": pa.array([e["ts"] for e in edges], TS_TYPE),
            "work_order": pa.array([e["work_order"] for e in edges]),
            "equipment": pa.array([e["equipment"] for e in edges]),
        }
    )


def edge(rng, inp, out, ts=None):
    return {
        "input_lot": inp,
        "output_lot": out,
        "quantity": rng.choice([None, round(rng.uniform(1, 500), 1)]),
        "ts": ts if ts is not None else T0 + rng.randrange(0, 86_400) * NS_PER_S,
        "work_order": rng.choice([None, f"WO-{rng.randrange(1, 20)}"]),
        "equipment": rng.choice([None, "line1.mixer", "line2.mixer", "line1.oven"]),
    }


def generated_graph(seed: int):
    """Raw → intermediate → finished with splits and merges, parallel edges,
    a diamond, a cycle through a finished lot, a self loop, and a rewrite of
    an existing key (which must replace it)."""
    rng = random.Random(seed)
    raw = [f"R-{i}" for i in range(1, 31)]
    mid = [f"I-{i}" for i in range(1, 41)]
    fin = [f"F-{i}" for i in range(1, 11)]
    edges = []
    for lot in mid:  # merges: 1-3 raw inputs; raws shared between lots (splits)
        for inp in rng.sample(raw, rng.randint(1, 3)):
            edges.append(edge(rng, inp, lot))
    for lot in fin:
        for inp in rng.sample(mid, rng.randint(1, 3)):
            edges.append(edge(rng, inp, lot))
    # Parallel edges: the same pair consumed twice at different times.
    for e in rng.sample(edges, 5):
        edges.append(edge(rng, e["input_lot"], e["output_lot"]))
    # Diamond: S split into D-a and D-b, both merged into F-D.
    edges += [edge(rng, "S", "D-a"), edge(rng, "S", "D-b"), edge(rng, "D-a", "F-D"), edge(rng, "D-b", "F-D")]
    edges += [edge(rng, "R-1", "S")]
    # Cycle: rework C-1 → C-2 → C-3 → C-1, fed from I-1 and feeding F-1; a self loop.
    edges += [edge(rng, "I-1", "C-1"), edge(rng, "C-1", "C-2"), edge(rng, "C-2", "C-3"), edge(rng, "C-3", "C-1")]
    edges += [edge(rng, "C-3", "F-1"), edge(rng, "C-2", "C-2")]
    rng.shuffle(edges)
    # A rewrite of an existing key with other attributes, written later (on
    # a pair without parallel edges, so a depth-1 trace must show it).
    pairs = defaultdict(int)
    for e in edges:
        pairs[(e["input_lot"], e["output_lot"])] += 1
    single = next(e for e in edges if pairs[(e["input_lot"], e["output_lot"])] == 1 and e["input_lot"] != e["output_lot"])
    rewrite = dict(single, quantity=999.5, work_order="WO-rewrite")
    return edges, rewrite


def trace_rows(client, function, lot, max_depth=None):
    args = f"'{lot}'" if max_depth is None else f"'{lot}', {max_depth}"
    got = client.query(
        f"SELECT lot, depth, path, quantity, work_order, equipment FROM {function}({args})"
    ).to_pylist()
    return [(r["lot"], r["depth"], r["path"], r["quantity"], r["work_order"], r["equipment"]) for r in got]


CASES = [
    ("trace_backward", "F-1", None),
    ("trace_backward", "F-1", 2),
    ("trace_backward", "F-D", None),
    ("trace_backward", "C-2", None),
    ("trace_backward", "F-7", 1),
    ("trace_backward", "F-7", 0),
    ("trace_forward", "R-1", None),
    ("trace_forward", "R-1", 2),
    ("trace_forward", "I-1", None),
    ("trace_forward", "C-3", None),
    ("trace_forward", "S", None),
    ("trace_backward", "no-such-lot", None),
]


def test_traces_equal_a_reference_bfs_across_restart_and_flush(server_factory):
    server = server_factory("--flush-rows", "1000000000", "--flush-age-secs", "86400")
    edges, rewrite = generated_graph(seed=6)
    half = len(edges) // 2
    server.client.ingest(edges_table(edges[:half]), table="genealogy")
    server.client.set_reason("rewritten edge")  # the rewrite is a new version
    server.client.ingest(edges_table(edges[half:] + [rewrite]), table="genealogy")
    written = latest(edges + [rewrite])
    assert server.client.count(table="genealogy") == len(written)

    def check(edges_now):
        checked = 0
        for function, lot, depth in CASES:
            direction = function.split("_")[1]
            want = reference_trace(edges_now, lot, direction, depth)
            got = trace_rows(server.client, function, lot, depth)
            assert got == want, (function, lot, depth)
            checked += len(want)
        # The cases are not trivial: the graph was walked for real.
        assert checked > 50
        full = reference_trace(edges_now, "F-1", "backward")
        assert {"C-1", "C-2", "C-3", "I-1"} <= {r[0] for r in full}
        assert [r[1] for r in reference_trace(edges_now, "F-D", "backward") if r[0] in ("S", "R-1")] == [2, 3]

    check(written)
    shown = {r[0]: r for r in trace_rows(server.client, "trace_forward", rewrite["input_lot"], 1)}
    assert shown[rewrite["output_lot"]][3:5] == (999.5, "WO-rewrite")
    server.restart(kill=True)  # index rebuilt from the WAL
    check(written)
    server.flush()
    check(written)
    server.restart(kill=True)  # from segments
    check(written)
    # Writes after the rebuild merge into it.
    rng = random.Random(7)
    more = [edge(rng, "F-1", "P-1"), edge(rng, "F-D", "P-1"), edge(rng, "P-1", "I-1")]
    server.client.set_reason("more edges, maybe rewrites")
    server.client.ingest(edges_table(more), table="genealogy")
    written = latest(written + more)
    check(written)
    assert trace_rows(server.client, "trace_forward", "F-D", None)[1][0] == "P-1"


def test_trace_argument_errors(server):
    for sql, needle in [
        ("SELECT * FROM trace_backward()", "expected 1 or 2 arguments"),
        ("SELECT * FROM trace_backward(42)", "lot must be a string"),
        ("SELECT * FROM trace_forward('a', -1)", "non-negative integer"),
        ("SELECT * FROM trace_forward('a', 1.5)", "non-negative integer"),
        ("SELECT * FROM lot_samples(1, 2)", "expected 1 argument"),
    ]:
        try:
            server.client.query(sql)
        except Exception as exc:  # noqa: BLE001 - any driver error type
            assert needle in error_text(exc), (sql, error_text(exc))
        else:
            raise AssertionError(f"{sql} must fail")


# ---------------------------------------------------------------------------
# process data of a genealogy in one query
# ---------------------------------------------------------------------------

MIN = 60 * NS_PER_S


def plant_context():
    equipment = [
        ("acme", "Acme", None, "enterprise"),
        ("site1", "Site 1", "acme", "site"),
        ("area1", "Area 1", "site1", "area"),
        ("line1", "Line 1", "area1", "work_center"),
        ("line2", "Line 2", "area1", "work_center"),
    ] + [(f"{line}.{unit}", f"{line} {unit}", line, "work_unit") for line in ("line1", "line2") for unit in ("mixer", "oven")]
    # Line 1 makes A1, A2, A3 back to back; line 2 makes B1 and B2 (B2 still running).
    runs = []
    for line, lots in (("line1", ["A1", "A2", "A3"]), ("line2", ["B1", "B2"])):
        for i, lot in enumerate(lots):
            start = T0 + i * 10 * MIN + (3 * MIN if line == "line2" else 0)
            end = None if lot == "B2" else start + 10 * MIN
            for unit, op in (("mixer", "mix"), ("oven", "bake")):
                runs.append((f"{line}.{unit}", f"WO-{lot}", lot, op, start, end))
    # A3 takes back A2 (rework) and intermediate M1, made from B1 and raw R1.
    genealogy = [("A2", "A3"), ("M1", "A3"), ("B1", "M1"), ("R1", "M1"), ("A1", "A2")]
    tags = {
        "line1.oven.temperature": "line1.oven",
        "line2.oven.temperature": "line2.oven",
        "line1.mixer.speed": "line1.mixer",
        "line2.mixer.speed": "line2.mixer",
    }
    return equipment, runs, genealogy, tags


def test_oven_temperature_of_a_backward_genealogy_in_one_query(server):
    client = server.client
    equipment, runs, genealogy, tags = plant_context()
    client.ingest(
        pa.table({k: pa.array(v) for k, v in zip(("id", "name", "parent_id", "level"), zip(*equipment))}),
        table="equipment",
    )
    client.ingest(pa.table({"tag": list(tags), "equipment": list(tags.values())}), table="tags")
    cols = list(zip(*runs))
    client.ingest(
        pa.table(
            {
                "equipment": pa.array(cols[0]),
                "work_order": pa.array(cols[1]),
                "lot": pa.array(cols[2]),
                "operation": pa.array(cols[3]),
                "start_ts": pa.array(cols[4], TS_TYPE),
                "end_ts": pa.array(cols[5], TS_TYPE),
            }
        ),
        table="production_runs",
    )
    rng = random.Random(11)
    edges = [edge(rng, a, b, ts=T0 + i * NS_PER_S) for i, (a, b) in enumerate(genealogy)]
    client.ingest(edges_table(edges), table="genealogy")

    # Samples every 30 s for an hour; every other one without equipment (its
    # tag's equipment applies); a few stamped on a unit that ran nothing.
    rows = []
    for tag, unit in tags.items():
        for k in range(120):
            ts = T0 + k * 30 * NS_PER_S
            eq = unit if k % 2 == 0 else None
            if k % 17 == 0:
                eq = "line9.oven"
            rows.append((tag, ts, round(rng.uniform(150, 220), 2), eq))
    cols = list(zip(*rows))
    client.ingest(samples_table(cols[0], cols[1], cols[2], equipment=cols[3]))

    sql = (
        "SELECT t.lot, s.ts, s.value FROM trace_backward('A3') t "
        "JOIN lot_samples((SELECT lot FROM trace_backward('A3'))) s ON s.lot = t.lot "
        "WHERE s.tag LIKE '%oven%temperature' ORDER BY t.lot, s.ts"
    )
    got = [(r["lot"], to_ns(r["ts"]), r["value"]) for r in client.query(sql).to_pylist()]

    trace = {r[0] for r in reference_trace(edges, "A3", "backward")}
    assert trace == {"A3", "A2", "A1", "M1", "B1", "R1"}
    now = T0 + 10_000 * MIN  # every sample is before the server's now

    def reference_lot_samples(lots):
        out = []
        for unit, _, lot, _, start, end in runs:
            for tag, ts, value, eq in rows:
                on_unit = eq == unit or (eq is None and tags[tag] == unit)
                if lot in lots and on_unit and start <= ts < (end or now):
                    out.append((lot, tag, ts, value))
        return sorted(out)

    want = [(lot, ts, v) for lot, tag, ts, v in reference_lot_samples(trace) if "oven" in tag and tag.endswith("temperature")]
    want.sort()
    assert len(want) > 40 and {w[0] for w in want} == {"A1", "A2", "A3", "B1"}
    assert got == want

    # The per-lot form, with the run's context columns.
    one = client.query(
        "SELECT lot, equipment, work_order, operation, count(*) AS n FROM lot_samples('B1') "
        "GROUP BY 1, 2, 3, 4 ORDER BY 2"
    ).to_pylist()
    assert [(r["equipment"], r["work_order"], r["operation"]) for r in one] == [
        ("line2.mixer", "WO-B1", "mix"), ("line2.oven", "WO-B1", "bake")
    ]
    listed = client.query("SELECT lot, tag, ts, value FROM lot_samples(['A1', 'B1', 'A1']) ORDER BY lot, tag, ts")
    assert [(r["lot"], r["tag"], to_ns(r["ts"]), r["value"]) for r in listed.to_pylist()] == reference_lot_samples({"A1", "B1"})
    # A running run (B2, no end_ts) extends to now.
    b2 = client.query("SELECT lot, tag, ts, value FROM lot_samples('B2') ORDER BY lot, tag, ts").to_pylist()
    assert [(r["lot"], r["tag"], to_ns(r["ts"]), r["value"]) for r in b2] == reference_lot_samples({"B2"})
    assert max(to_ns(r["ts"]) for r in b2) > T0 + 50 * MIN
    assert client.query("SELECT * FROM lot_samples('nobody')").num_rows == 0
