#!/usr/bin/env python3
"""lotline's historian functions beside hand-written DuckDB SQL, same Parquet, one run.

Three questions a historian is asked all day, each answered twice on the same
machine from the same files:

  last values     `SELECT * FROM last_values` (kept by lotline's write path)
                  against DuckDB computing the newest row per tag from the
                  Parquet segments (two formulations: DISTINCT ON, arg_max).
                  Data: the `lotline bench` signal for --lv-tags tags.
  interpolated    history_interpolated(100 tags, 7 days, '1m') against an
                  ASOF-join interpolation in DuckDB (sloped or stepped per
                  the tags table's `interpolation`, Good samples only).
  TimeAverage     history_aggregate(100 tags, 'TimeAverage', 30 days, '1h')
                  against a DuckDB query that adds interpolated bounding
                  points at every hour edge and sums trapezoids per hour
                  (Part 13's TimeAverage draws sloped lines between points
                  whatever the tag's interpolation; its Annex A tables do).
                  Data for both: `lotline generate --plant history` (100 tags,
                  30 d at 10 s, ~26 M samples, with Bad/Uncertain bursts and gaps).

The DuckDB queries are what an engineer would write by hand: they return the
values, not Part 13's StatusCodes, and skip non-Good samples the way Part 13's
defaults (TreatUncertainAsBad) do. The script reports how many of lotline's
values agree with DuckDB's to 1e-6 (they differ where Part 13 rules apply,
e.g. an interval whose bounding value is Bad), so nobody times two different
answers without knowing it.

Uses compare.py's server harness and statistics. See README.md next to this file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare as cmp  # noqa: E402

US_PER_MIN = 60_000_000
US_PER_HOUR = 3_600_000_000
US_PER_DAY = 86_400_000_000
GOOD_LIMIT = 0x4000_0000  # StatusCode severity bits 00 = Good
LOOKAROUND_US = US_PER_DAY  # how far the hand-written SQL looks for bounding values

LAST_VALUES_LOTLINE = "SELECT tag, ts, value, quality FROM last_values"
LAST_VALUES_DISTINCT_ON = (
    "SELECT DISTINCT ON (tag) tag, ts, value, quality FROM {src} ORDER BY tag, ts DESC"
)
LAST_VALUES_ARG_MAX = (
    "SELECT tag, max(ts) AS ts, arg_max(value, ts) AS value, arg_max(quality, ts) AS quality "
    "FROM {src} GROUP BY tag"
)

# Shared by both DuckDB historian queries: the tags asked for with their
# interpolation, and their Good samples near the window as (tag, t µs, v).
DUCK_INPUTS = """
tag_settings AS (
  SELECT tag, coalesce(interpolation, 'linear') AS interp FROM {tags_src} WHERE tag IN ({tag_list})
),
good AS (
  SELECT tag, epoch_us(ts::TIMESTAMPTZ) AS t, value AS v FROM {samples_src}
  WHERE tag IN ({tag_list}) AND ts >= make_timestamptz({lo}) AND ts < make_timestamptz({hi})
    AND quality < {good_limit} AND value IS NOT NULL
)"""

# Value at each (tag, t) of `points`: the prior and next Good samples by ASOF
# join, then sloped or stepped (and stepped past the last sample).
DUCK_BOUNDED = """
prior AS (
  SELECT p.*, g.t AS pt, g.v AS pv FROM {points} p ASOF LEFT JOIN good g ON p.tag = g.tag AND p.t >= g.t
),
bounded AS (
  SELECT b.tag, b.interp, b.t,
    CASE WHEN b.pt IS NULL THEN NULL
         WHEN b.interp = 'step' OR g.t IS NULL OR b.pt = b.t THEN b.pv
         ELSE b.pv + (g.v - b.pv) * (b.t - b.pt) / (g.t - b.pt) END AS v
  FROM prior b ASOF LEFT JOIN good g ON b.tag = g.tag AND b.t <= g.t
)"""

DUCK_INTERPOLATED = (
    "WITH" + DUCK_INPUTS + """,
grid AS (SELECT s.tag, s.interp, r.range AS t FROM tag_settings s CROSS JOIN range({t0}, {t1}, {step}) r),"""
    + DUCK_BOUNDED.replace("{points}", "grid")
    + "\nSELECT tag, t, v AS value FROM bounded"
)

DUCK_TIME_AVERAGE = (
    "WITH" + DUCK_INPUTS + """,
edges AS (SELECT s.tag, s.interp, r.range AS t FROM tag_settings s CROSS JOIN range({t0}, {t1} + 1, {step}) r),"""
    + DUCK_BOUNDED.replace("{points}", "edges")
    + """,
points AS (
  SELECT tag, t, v FROM bounded WHERE v IS NOT NULL
  UNION ALL SELECT tag, t, v FROM good WHERE t > {t0} AND t < {t1}
),
pieces AS (
  SELECT tag, t, v, lead(t) OVER w AS t2, lead(v) OVER w AS v2
  FROM points WINDOW w AS (PARTITION BY tag ORDER BY t)
)
SELECT tag, bucket AS t,
  sum((v + v2) / 2 * (t2 - t)) / sum(t2 - t) AS value
FROM (SELECT *, {t0} + (t - {t0}) // {step} * {step} AS bucket FROM pieces WHERE t2 IS NOT NULL AND t < {t1})
GROUP BY tag, bucket"""
)

# lotline's result against DuckDB's, keyed by (tag, interval start in µs).
AGREEMENT = """
SELECT count(*) AS rows,
  count(*) FILTER (WHERE l.value IS NOT NULL AND r.value IS NOT NULL
                   AND abs(l.value - r.value) <= 1e-6 * greatest(1, abs(r.value))) AS agree,
  count(*) FILTER (WHERE l.value IS NULL AND r.value IS NULL) AS both_null,
  count(*) FILTER (WHERE (l.value IS NULL) <> (r.value IS NULL)) AS null_mismatch,
  max(abs(l.value - r.value)) AS max_abs_diff
FROM (SELECT tag, epoch_us(ts::TIMESTAMPTZ) AS t, value FROM lot) l
FULL JOIN ref r USING (tag, t)"""


def us(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()) * 1_000_000


def lotline_ts(t_us: int) -> str:
    return "TIMESTAMP '" + dt.datetime.fromtimestamp(t_us / 1e6, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") + "'"


def sql_list(names: list[str]) -> str:
    return ", ".join("'" + n.replace("'", "''") + "'" for n in names)


def timed(fetch, sql: str, runs: int) -> tuple[dict, pa.Table]:
    times, results = cmp.time_query(cmp.Engine("", fetch, "", str), [sql] * runs)
    return cmp.latency(times), results[0]


def agreement(con: duckdb.DuckDBPyConnection, lot: pa.Table, ref: pa.Table) -> dict:
    con.register("lot", lot)
    con.register("ref", ref)
    try:
        row = con.sql(AGREEMENT).fetchall()[0]
    finally:
        con.unregister("lot")
        con.unregister("ref")
    keys = ("rows", "agree", "both_null", "null_mismatch", "max_abs_diff")
    return dict(zip(keys, row))


def start_server(binary: Path, workdir: Path, name: str, serve_args: list[str]) -> cmp.Server:
    server = cmp.Server(binary, workdir / f"{name}-data", workdir / f"{name}.log", serve_args)
    server.start()
    return server


def lotline_fetcher(conn):
    def fetch(sql: str) -> pa.Table:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetch_arrow_table()

    return fetch


def parquet_src(data_dir: Path, table: str) -> str:
    glob = str(data_dir / "tables" / table / "**" / "*.parquet").replace("'", "''")
    return f"read_parquet('{glob}', hive_partitioning = true)"


def run_last_values(args, binary: Path, workdir: Path, con, res: dict):
    server = start_server(binary, workdir, "last-values", shlex.split(args.serve_args))
    try:
        rows = args.lv_tags * args.lv_samples_per_tag
        batches = cmp.make_batches(rows, args.lv_tags, 50_000)
        cmp.log(f"last values: ingesting {rows} rows over {args.lv_tags} tags ...")
        cmp.parallel_ingest(batches, 4, cmp.lotline_writer(server))
        del batches
        server.flush()
        conn = server.connect()
        try:
            fetch = lotline_fetcher(conn)
            src = parquet_src(server.data_dir, "samples")
            lot, lot_rows = timed(fetch, LAST_VALUES_LOTLINE, args.lv_queries)
            res["last_values"] = {"tags": args.lv_tags, "rows": rows, "lotline": lot}
            for key, sql in (("duckdb_distinct_on", LAST_VALUES_DISTINCT_ON), ("duckdb_arg_max", LAST_VALUES_ARG_MAX)):
                lat, ref = timed(lambda q: cmp.duckdb_fetch(con, q), sql.format(src=src), args.lv_queries)
                res["last_values"][key] = lat
                same = ref.num_rows == lot_rows.num_rows and (
                    ref.sort_by("tag").column("value").equals(lot_rows.sort_by("tag").column("value"))
                )
                res["last_values"][key + "_same_rows"] = same
        finally:
            conn.close()
    finally:
        server.stop()


def run_history(args, binary: Path, workdir: Path, con, res: dict):
    server = start_server(binary, workdir, "history", shlex.split(args.serve_args))
    try:
        gen = [str(binary), "generate", "--plant", "history", "--endpoint", f"http://127.0.0.1:{server.port}",
               "--password", server.password, "--json"]
        if args.duration:
            gen += ["--duration", args.duration]
        cmp.log(f"history: {' '.join(gen[:4])} ...")
        summary = json.loads(subprocess.run(gen, check=True, capture_output=True, text=True).stdout)
        res["history_generate"] = summary
        server.flush()
        conn = server.connect()
        try:
            fetch = lotline_fetcher(conn)
            span = fetch("SELECT min(ts) AS lo, max(ts) AS hi, count(*) AS n FROM samples").to_pylist()[0]
            tags = fetch("SELECT tag FROM tags ORDER BY tag").column("tag").to_pylist()[: args.tags]
            first = int(span["lo"].timestamp()) * 1_000_000
            end = (int(span["hi"].timestamp()) * 1_000_000 // US_PER_HOUR + 1) * US_PER_HOUR
            res["history_data"] = {"samples": span["n"], "tags": len(tags), "first_us": first, "end_us": end}
            inputs = {
                "tags_src": parquet_src(server.data_dir, "tags"),
                "samples_src": parquet_src(server.data_dir, "samples"),
                "tag_list": sql_list(tags), "good_limit": GOOD_LIMIT,
            }
            shapes = (
                ("interpolated", "history_interpolated({tags}, {start}, {end}, '1m')", DUCK_INTERPOLATED,
                 max(first, end - args.interp_days * US_PER_DAY), US_PER_MIN),
                ("time_average", "history_aggregate({tags}, 'TimeAverage', {start}, {end}, '1h')", DUCK_TIME_AVERAGE,
                 max(first, end - args.average_days * US_PER_DAY) // US_PER_HOUR * US_PER_HOUR, US_PER_HOUR),
            )
            for name, lot_fn, duck_sql, t0, step in shapes:
                lot_sql = "SELECT tag, ts, value, quality FROM " + lot_fn.format(
                    tags="[" + sql_list(tags) + "]", start=lotline_ts(t0), end=lotline_ts(end))
                sql = duck_sql.format(**inputs, t0=t0, t1=end, step=step,
                                      lo=t0 - LOOKAROUND_US, hi=end + LOOKAROUND_US)
                cmp.log(f"{name}: {args.runs} runs each, {(end - t0) // US_PER_DAY} d ...")
                lot_lat, lot = timed(fetch, lot_sql, args.runs)
                duck_lat, ref = timed(lambda q: cmp.duckdb_fetch(con, q), sql, args.runs)
                res[name] = {
                    "days": (end - t0) / US_PER_DAY, "rows": lot.num_rows, "duckdb_rows": ref.num_rows,
                    "lotline": lot_lat, "duckdb": duck_lat, "agreement": agreement(con, lot, ref),
                    "lotline_sql": lot_sql[:300] + " ...", "duckdb_sql": sql,
                }
        finally:
            conn.close()
    finally:
        server.stop()


def report(res: dict) -> list[dict]:
    rows = []
    lv = res.get("last_values")
    if lv:
        for key in ("duckdb_distinct_on", "duckdb_arg_max"):
            rows.append({"metric": f"last_values, {lv['tags']} tags vs {key[7:]}", "lotline": lv["lotline"],
                         "duckdb": lv[key], "check": "same rows" if lv[key + "_same_rows"] else "ROWS DIFFER"})
    for name, label in (("interpolated", "history_interpolated 1 min"), ("time_average", "TimeAverage 1 h")):
        r = res.get(name)
        if r:
            a = r["agreement"]
            rows.append({"metric": f"{label}, {res['history_data']['tags']} tags x {r['days']:.0f} d ({r['rows']} rows)",
                         "lotline": r["lotline"], "duckdb": r["duckdb"],
                         "check": f"{a['agree'] + a['both_null']}/{a['rows']} values agree"})
    return rows


def render(rows: list[dict]) -> str:
    head = ["query", "lotline p50", "p99", "DuckDB p50", "p99", "ratio p50", "check"]
    body = [[r["metric"], cmp.fmt(r["lotline"]["p50_ms"], "ms"), cmp.fmt(r["lotline"]["p99_ms"], "ms"),
             cmp.fmt(r["duckdb"]["p50_ms"], "ms"), cmp.fmt(r["duckdb"]["p99_ms"], "ms"),
             f"{r['lotline']['p50_ms'] / r['duckdb']['p50_ms']:.2f}x", r["check"]] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: " | ".join(str(c).ljust(w) if i in (0, 6) else str(c).rjust(w)
                                    for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(head), "-+-".join("-" * w for w in widths), *(line(b) for b in body)])


def publish(rows: list[dict], res: dict, binary: Path, json_out, notes: tuple[str, ...] = ()):
    """Prints the table, the notes, machine, versions and command; writes
    everything as JSON to `json_out` if given."""
    machine, vers = cmp.machine_info(Path(tempfile.gettempdir())), cmp.versions(binary)
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    print()
    print(render(rows))
    print()
    for note in notes:
        print(note)
    print("ratio = lotline p50 / DuckDB p50 (lower is better for lotline); DuckDB reads lotline's Parquet files.")
    print(f"machine:  nproc {machine['nproc']}, {machine['cpu_model']}, {machine['ram_gib']} GiB RAM")
    print(f"versions: {vers['lotline']} ({vers['lotline_build']} build), duckdb {vers['duckdb']}, "
          f"pyarrow {vers['pyarrow']}, adbc-driver-flightsql {vers['adbc_driver_flightsql']}")
    print(f"command:  {command}")
    if json_out:
        doc = {"generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "command": command,
               "machine": machine, "versions": vers, "table": rows, "results": res}
        json_out.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def add_run_args(p: argparse.ArgumentParser):
    """The options every side-by-side script shares: server flags, where data goes, JSON output."""
    p.add_argument("--serve-args", default="", help="extra arguments for `lotline serve`")
    p.add_argument("--workdir", type=Path, default=None, help="where data goes (default: a new temp dir, removed)")
    p.add_argument("--json-out", type=Path, default=None, help="also write all results as JSON here")


def open_workdir(args, prefix: str) -> tuple[Path, bool]:
    """The run's work directory and whether the script made it (and removes it)."""
    own = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix=prefix)) if own else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir, own


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bin", type=Path, default=None, help="lotline binary (default as compare.py)")
    p.add_argument("--lv-tags", type=int, default=50_000, help="tags for the last-values comparison")
    p.add_argument("--lv-samples-per-tag", type=int, default=60, help="samples per tag for last values")
    p.add_argument("--lv-queries", type=int, default=200, help="timed runs of each last-values query")
    p.add_argument("--duration", default=None, help="override the history plant's 30 d, e.g. 2d for a quick check")
    p.add_argument("--tags", type=int, default=100, help="tags in the historian queries")
    p.add_argument("--interp-days", type=int, default=7, help="days of the interpolated query (1 min)")
    p.add_argument("--average-days", type=int, default=30, help="days of the TimeAverage query (1 h)")
    p.add_argument("--runs", type=int, default=5, help="timed runs of each historian query")
    p.add_argument("--only", choices=["last-values", "history"], default=None, help="run one part")
    add_run_args(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    binary = (args.bin or cmp.default_binary()).expanduser().resolve()
    workdir, own = open_workdir(args, "lotline-historian-")
    con = duckdb.connect()
    res: dict = {}
    try:
        if args.only in (None, "last-values"):
            run_last_values(args, binary, workdir, con, res)
        if args.only in (None, "history"):
            run_history(args, binary, workdir, con, res)
    finally:
        con.close()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = report(res)
    publish(rows, res, binary, args.json_out)
    bad = [r for r in rows if r["check"] == "ROWS DIFFER"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
