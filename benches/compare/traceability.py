#!/usr/bin/env python3
"""lotline's traceability functions beside hand-written DuckDB SQL, same Parquet, one run.

The two questions a quality engineer asks when a finished lot is in doubt,
each answered twice on the same machine from the same data:

  trace           `trace_backward(lot, 10)` (served from lotline's in-memory
                  genealogy index) against a `WITH RECURSIVE` walk in DuckDB
                  over the `genealogy` edges, each lot once at its smallest
                  depth (UNION, so cycles and diamonds end).
  process data    the oven temperature of every lot in that genealogy:
                  lotline's one query, `trace_backward` joined with
                  `lot_samples`, against DuckDB joining its walk with
                  `production_runs` and `samples` on equipment and run time
                  (a sample without equipment takes its tag's from `tags`,
                  as `lot_samples` does).

Data: `lotline generate --plant small` (1 000 tags, 1 h at 1 s, genealogy
edges per --edges), streamed into a fresh server and flushed.

DuckDB reads lotline's own Parquet segments in two ways: straight from the
files (a view), and from tables loaded once from those files (the load is
timed and reported, as lotline's index is built by its write path). The
context tables are versioned, so DuckDB keeps the newest version of each key
(the last in write order: `recorded_at`, then file order) and drops
tombstones, exactly what lotline's `genealogy` and `production_runs` show.

Every answer is checked: the (lot, depth) sets of both walks must be equal,
and per lot the sample count and mean temperature must agree to 1e-9.

Uses compare.py's server harness and statistics. See README.md next to this file.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare as cmp  # noqa: E402
import historian as hist  # noqa: E402

GENEALOGY_KEY = "input_lot, output_lot, ts"
RUNS_KEY = "equipment, start_ts"

# Newest version of each key of a versioned table's Parquet files, without
# tombstones. `file_row_number` keeps write order inside one timestamp.
CURRENT_VERSIONS = """
SELECT * EXCLUDE (recorded_at, recorded_by, reason, op, rn) FROM (
  SELECT *, row_number() OVER (PARTITION BY {key}
                               ORDER BY recorded_at DESC, filename DESC, file_row_number DESC) AS rn
  FROM read_parquet('{glob}', hive_partitioning = true, filename = true, file_row_number = true)
) WHERE rn = 1 AND op <> 'delete'"""

DUCK_WALK = """
WITH RECURSIVE walk(lot, depth) AS (
  SELECT {lot}::VARCHAR, 0
  UNION
  SELECT g.input_lot, w.depth + 1 FROM walk w JOIN {genealogy} g ON g.output_lot = w.lot
  WHERE w.depth < {max_depth}
),
reached AS (SELECT lot, min(depth) AS depth FROM walk GROUP BY lot)"""

DUCK_TRACE = DUCK_WALK + "\nSELECT lot, depth FROM reached"

DUCK_PROCESS = DUCK_WALK + """,
runs AS (
  SELECT r.* FROM {runs} r JOIN reached USING (lot)
)
SELECT r.lot, count(*) AS samples, avg(s.value) AS mean
FROM runs r
JOIN {samples} s
  ON s.ts >= r.start_ts AND s.ts < coalesce(r.end_ts, now())
 AND s.tag LIKE '{tag_like}'
LEFT JOIN {tags} t ON t.tag = s.tag
WHERE coalesce(s.equipment, t.equipment) = r.equipment
GROUP BY r.lot"""

LOTLINE_TRACE = "SELECT lot, depth FROM trace_backward({lot}, {max_depth})"

LOTLINE_PROCESS = """
SELECT t.lot, count(*) AS samples, avg(s.value) AS mean
FROM trace_backward({lot}, {max_depth}) t
JOIN lot_samples((SELECT lot FROM trace_backward({lot}, {max_depth}))) s ON s.lot = t.lot
WHERE s.tag LIKE '{tag_like}'
GROUP BY t.lot"""


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def glob(data_dir: Path, table: str) -> str:
    return str(data_dir / "tables" / table / "**" / "*.parquet").replace("'", "''")


def same_trace(a: pa.Table, b: pa.Table) -> bool:
    key = lambda t: sorted(zip(t.column("lot").to_pylist(), t.column("depth").to_pylist()))
    return key(a) == key(b)


def same_process(a: pa.Table, b: pa.Table) -> bool:
    def rows(t):
        return sorted(zip(t.column("lot").to_pylist(), t.column("samples").to_pylist(), t.column("mean").to_pylist()))

    left, right = rows(a), rows(b)
    return len(left) == len(right) and all(
        l[0] == r[0] and l[1] == r[1] and (l[2] is None) == (r[2] is None)
        and (l[2] is None or abs(l[2] - r[2]) <= 1e-9 * max(1.0, abs(r[2])))
        for l, r in zip(left, right)
    )


def finished_lots(con: duckdb.DuckDBPyConnection, runs: str, count: int) -> list[str]:
    """The lots of the most recently finished runs, as `lotline bench` picks
    its lot: finished lots are what a recall starts from, and in the
    generated plant each has a full genealogy and runs inside the data."""
    sql = f"""
        SELECT lot FROM {runs} WHERE end_ts IS NOT NULL AND lot IS NOT NULL
        GROUP BY lot ORDER BY max(end_ts) DESC, lot LIMIT {count}"""
    return [r[0] for r in con.sql(sql).fetchall()]


def timed_pair(name, lot_sqls, duck_sqls, lot_fetch, duck_fetch, same) -> dict:
    lot_lat, lot_res = cmp.time_query(cmp.Engine("lotline", lot_fetch, "", str), lot_sqls)
    duck_lat, duck_res = cmp.time_query(cmp.Engine("duckdb", duck_fetch, "", str), duck_sqls)
    agree = sum(1 for a, b in zip(lot_res, duck_res) if same(a, b))
    rows = sum(t.num_rows for t in lot_res) / max(1, len(lot_res))
    cmp.log(f"{name}: {agree}/{len(lot_res)} answers agree, {rows:.0f} rows per answer")
    return {"lotline": cmp.latency(lot_lat), "duckdb": cmp.latency(duck_lat),
            "agree": agree, "answers": len(lot_res), "rows_per_answer": rows}


def run(args, binary: Path, workdir: Path, res: dict):
    server = hist.start_server(binary, workdir, "trace", shlex.split(args.serve_args))
    con = duckdb.connect()
    try:
        gen = [str(binary), "generate", "--plant", args.plant, "--edges", str(args.edges),
               "--endpoint", f"http://127.0.0.1:{server.port}", "--password", server.password, "--json"]
        if args.duration:
            gen += ["--duration", args.duration]
        cmp.log(f"generating: {' '.join(gen[2:6])} ...")
        t0 = time.perf_counter()
        res["generate"] = json.loads(subprocess.run(gen, check=True, capture_output=True, text=True).stdout)
        res["generate_s"] = time.perf_counter() - t0
        server.flush()
        data = server.data_dir
        views = {
            "genealogy": CURRENT_VERSIONS.format(key=GENEALOGY_KEY, glob=glob(data, "genealogy")),
            "runs": CURRENT_VERSIONS.format(key=RUNS_KEY, glob=glob(data, "production_runs")),
            "samples": f"read_parquet('{glob(data, 'samples')}', hive_partitioning = true)",
            "tags": f"(SELECT DISTINCT ON (tag) tag, equipment FROM read_parquet('{glob(data, 'tags')}'))",
        }
        con.execute(f"CREATE VIEW genealogy_v AS {views['genealogy']}")
        t0 = time.perf_counter()
        con.execute("CREATE TABLE genealogy_t AS SELECT * FROM genealogy_v")
        con.execute(f"CREATE TABLE runs_t AS {views['runs']}")
        res["duckdb_load_s"] = time.perf_counter() - t0
        edges = con.sql("SELECT count(*) FROM genealogy_t").fetchall()[0][0]
        lots = finished_lots(con, "runs_t", args.lots)
        res["data"] = {"edges": edges, "finished_lots_asked": len(lots)}
        cmp.log(f"{edges} edges; tracing {len(lots)} finished lots x {args.runs} runs")
        asked = [lot for lot in lots for _ in range(args.runs)]

        conn = server.connect()
        try:
            fetch = hist.lotline_fetcher(conn)
            duck = lambda q: cmp.duckdb_fetch(con, q)
            depth = args.max_depth
            lot_trace = [LOTLINE_TRACE.format(lot=quote(l), max_depth=depth) for l in asked]
            for variant, genealogy in (("files", "(" + views["genealogy"] + ")"), ("tables", "genealogy_t")):
                duck_trace = [DUCK_TRACE.format(lot=quote(l), max_depth=depth, genealogy=genealogy) for l in asked]
                res[f"trace_{variant}"] = timed_pair(f"trace vs DuckDB {variant}", lot_trace, duck_trace,
                                                     fetch, duck, same_trace)
            lot_proc = [LOTLINE_PROCESS.format(lot=quote(l), max_depth=depth, tag_like=args.tag_like) for l in asked]
            for variant, genealogy, runs in (("files", "(" + views["genealogy"] + ")", "(" + views["runs"] + ")"),
                                             ("tables", "genealogy_t", "runs_t")):
                duck_proc = [DUCK_PROCESS.format(lot=quote(l), max_depth=depth, genealogy=genealogy, runs=runs,
                                                 samples=views["samples"], tags=views["tags"],
                                                 tag_like=args.tag_like) for l in asked]
                res[f"process_{variant}"] = timed_pair(f"process data vs DuckDB {variant}", lot_proc, duck_proc,
                                                       fetch, duck, same_process)
            res["sql"] = {"lotline_trace": lot_trace[0], "lotline_process": lot_proc[0],
                          "duckdb_trace": DUCK_TRACE.format(lot=quote(lots[0]), max_depth=depth,
                                                            genealogy="genealogy_t"),
                          "duckdb_process": duck_proc[0]}
        finally:
            conn.close()
    finally:
        con.close()
        server.stop()


def report(res: dict) -> list[dict]:
    labels = {
        "trace_files": "trace_backward depth {d}, DuckDB on the files",
        "trace_tables": "trace_backward depth {d}, DuckDB on loaded tables",
        "process_files": "genealogy + oven temperature, DuckDB on the files",
        "process_tables": "genealogy + oven temperature, DuckDB on loaded tables",
    }
    rows = []
    for key, label in labels.items():
        r = res.get(key)
        if r:
            rows.append({"metric": label.format(d=res.get("max_depth", 10)), "lotline": r["lotline"],
                         "duckdb": r["duckdb"],
                         "check": f"{r['agree']}/{r['answers']} answers agree, {r['rows_per_answer']:.0f} rows each",
                         "all_agree": r["agree"] == r["answers"]})
    return rows


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bin", type=Path, default=None, help="lotline binary (default as compare.py)")
    p.add_argument("--plant", default="small", help="plant to generate (datasets/plants/)")
    p.add_argument("--edges", type=int, default=1_000_000, help="genealogy edges to generate")
    p.add_argument("--duration", default=None, help="override the plant's time span, e.g. 10m")
    p.add_argument("--lots", type=int, default=10, help="finished lots to trace")
    p.add_argument("--runs", type=int, default=5, help="timed runs per lot and query")
    p.add_argument("--max-depth", type=int, default=10, help="depth limit of the walk")
    p.add_argument("--tag-like", default="%oven%.temperature", help="the process tag, as a LIKE pattern")
    hist.add_run_args(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    binary = (args.bin or cmp.default_binary()).expanduser().resolve()
    workdir, own = hist.open_workdir(args, "lotline-trace-")
    res: dict = {"max_depth": args.max_depth}
    try:
        run(args, binary, workdir, res)
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = report(res)
    note = f"{res['data']['edges']} genealogy edges; DuckDB loaded its tables in {res['duckdb_load_s']:.2f} s."
    hist.publish(rows, res, binary, args.json_out, (note,))
    return 0 if rows and all(r["all_agree"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
