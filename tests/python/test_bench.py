"""`lotline generate` and `lotline bench` end to end, on a tiny plant.

The generator streams the demo plant (2 minutes of it) into a real server
and writes CSV files that `lotline load` reads back; then `lotline bench`
runs its ingest, query mix and a short soak against the same server with
small sizes and `--json`; and its ingest once more through Flight SQL, gRPC
and line protocol side by side. These check the plumbing and that the
counts add up, never timings.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.csv as pa_csv

from lotline_testlib import DEFAULT_PASSWORD, NS_PER_S, sql_ts

PLANT_TAGS = 300  # the demo plant: 3 lines x 4 units x 25 tags
BENCH_TAGS = 50
BENCH_ROWS = 20_000
TIMEOUT_S = 300


def run_cli(binary: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"lotline {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
    return proc.stdout


def connect_args(server) -> list[str]:
    return ["--endpoint", f"http://127.0.0.1:{server.port}", "--password", DEFAULT_PASSWORD]


def test_generate_then_bench(server_factory, lotline_bin, tmp_path):
    # The interpolation of the mix (100 tags x 7 d at 1 min = 1,008,000 rows)
    # is just above the server's default limit on history_* rows.
    server = server_factory("--max-history-intervals", "2000000")
    client = server.client

    # 1. Stream a tiny plant into the server.
    report = json.loads(
        run_cli(lotline_bin, "generate", *connect_args(server), "--duration", "2m", "--edges", "600", "--json")
    )
    rows = {t["table"]: t["rows"] for t in report["tables"]}
    assert rows["tags"] == PLANT_TAGS
    assert PLANT_TAGS * 100 < rows["samples"] <= PLANT_TAGS * 120
    assert report["skipped_tables"] == []
    for table in ("equipment", "work_orders", "production_runs", "lots", "genealogy"):
        assert rows[table] > 0 and client.count(table=table) == rows[table], table
    assert rows["genealogy"] == 600
    assert client.count() == rows["samples"]
    assert client.count(table="tags") == PLANT_TAGS
    assert client.count("work_order IS NULL OR lot IS NULL OR equipment IS NULL") == 0
    assert client.count("quality <> 0") > 0

    # 2. Files: every table, and `lotline load` takes the CSV samples as they are.
    out = tmp_path / "plant-csv"
    files = json.loads(
        run_cli(
            lotline_bin, "generate", "--out", str(out), "--format", "csv", "--duration", "1m",
            "--start", "2026-02-01T00:00:00Z", "--edges", "600", "--json",
        )
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"{t}.csv" for t in ("equipment", "tags", "work_orders", "production_runs", "lots", "genealogy", "samples")
    )
    generated = {t["table"]: t["rows"] for t in files["tables"]}
    assert generated["genealogy"] == 600
    run_cli(lotline_bin, "load", *connect_args(server), "--table", "samples", str(out / "samples.csv"))
    # Context tables load from the same files again: equal keys become new
    # versions, which needs a reason.
    for table in ("equipment", "lots"):
        before = set(client.query(f"SELECT id FROM {table}").column("id").to_pylist())
        in_file = set(pa_csv.read_csv(out / f"{table}.csv").column("id").to_pylist())
        run_cli(
            lotline_bin, "load", *connect_args(server), "--reason", "reload from the generator",
            "--table", table, str(out / f"{table}.csv"),
        )
        assert client.count(table=table) == len(before | in_file) >= generated[table], table
    assert client.count(table="equipment") == rows["equipment"]
    assert client.count("ts >= TIMESTAMP '2026-02-01T00:00:00Z'") == generated["samples"]
    total = client.count()

    # 3. The benchmark: ingest, query mix, soak.
    bench = json.loads(
        run_cli(
            lotline_bin, "bench", *connect_args(server),
            "--rows", str(BENCH_ROWS), "--tags", str(BENCH_TAGS), "--batch-rows", "5000", "--writers", "2",
            "--queries", "3", "--heavy-queries", "1",
            "--soak", "4", "--soak-rate", "2000",
            "--data-dir", str(server.data_dir), "--json",
        )
    )
    assert len(bench["ingest"]) == 1
    ingest = bench["ingest"][0]
    assert ingest["protocol"] == "flight"
    assert ingest["rows"] == BENCH_ROWS and ingest["writers"] == 2
    assert ingest["ack"]["count"] == BENCH_ROWS // 5000
    assert ingest["samples_per_second"] > 0
    assert 0 < ingest["bytes_per_sample"] < 100

    queries = {q["name"]: q for q in bench["queries"]}
    assert len(queries) == 7
    for q in queries.values():
        assert q["status"] in ("ok", "skipped"), q
        if q["status"] == "ok":
            lat = q["latency"]
            assert lat["count"] >= 1 and 0 <= lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        else:
            assert q["detail"].startswith("skipped"), q
    # Plant tags, bench tags and nothing else had samples before the soak.
    assert queries["last values, all tags"]["rows_per_run"] == PLANT_TAGS + BENCH_TAGS
    assert queries["one tag, one hour"]["rows_per_run"] > 0
    export = queries["bulk export (tag, ts, value)"]
    assert export["rows_per_run"] == total + BENCH_ROWS
    assert export["values_per_second"] > 0
    # The last finished lot traces back through all genealogy levels.
    trace = queries["trace_backward, depth 10"]
    assert trace["status"] == "ok" and trace["rows_per_run"] > 10, trace
    assert queries["genealogy join lot_samples"]["status"] == "ok"

    soak = bench["soak"]
    assert soak["errors"] == 0, soak["first_errors"]
    assert soak["writers"] == 8 and soak["readers"] == 4
    assert soak["write_requests"] > 0 and soak["reads"] > 0
    assert soak["server_pid"] == server.proc.pid
    assert soak["rss"]["max_mib"] > 0


def test_bench_ingest_protocols_side_by_side(server, lotline_bin):
    rows, tags = 6_000, 20
    bench = json.loads(
        run_cli(
            lotline_bin, "bench", *connect_args(server), "--http-endpoint", server.http_url,
            "--protocols", "flight,grpc,line", "--rows", str(rows), "--tags", str(tags),
            "--batch-rows", "1000", "--writers", "2", "--no-queries",
            "--data-dir", str(server.data_dir), "--json",
        )
    )
    reports = bench["ingest"]
    assert [r["protocol"] for r in reports] == ["flight", "grpc", "line"]
    for r in reports:
        assert r["rows"] == rows and r["writers"] == 2
        assert r["ack"]["count"] == rows // 1000
        assert r["samples_per_second"] > 0 and 0 < r["bytes_per_sample"] < 100

    # Each protocol wrote the same samples into its own time range: per range,
    # the same tags with the same counts and sums, and nothing twice.
    client = server.client
    assert client.count() == 3 * rows
    span_ns = reports[1]["start_ns"] - reports[0]["start_ns"]
    assert span_ns >= rows // tags * NS_PER_S
    per_protocol = []
    for r in reports:
        start = r["start_ns"]
        table = client.query(
            "SELECT tag, count(*) AS n, sum(value) AS total, min(CAST(ts AS BIGINT)) - "
            f"{start} AS first FROM samples WHERE ts >= {sql_ts(start)} AND ts < {sql_ts(start + span_ns)} "
            "GROUP BY tag ORDER BY tag"
        )
        per_protocol.append([(t, n, round(total, 6), first) for t, n, total, first in (tuple(x.values()) for x in table.to_pylist())])
    assert len(per_protocol[0]) == tags and sum(n for _, n, _, _ in per_protocol[0]) == rows
    assert per_protocol[0] == per_protocol[1] == per_protocol[2]


def test_bench_stamping_compare(server, lotline_bin):
    """`--stamping-compare`: the same samples once stamped, once not; every
    row of the stamped series carries the bench run's lot, none of the other."""
    rows = 4_000
    bench = json.loads(
        run_cli(
            lotline_bin, "bench", *connect_args(server), "--rows", str(rows), "--tags", "10",
            "--batch-rows", "1000", "--writers", "2", "--no-queries", "--stamping-compare", "--json",
        )
    )
    s = bench["stamping"]
    assert s["unstamped"]["equipment"] == "bench.stamp.off"
    assert s["stamped"]["equipment"] == "bench.stamp.on"
    for series in (s["unstamped"], s["stamped"]):
        assert series["rows"] == rows and series["samples_per_second"] > 0
    assert s["stamped_rows"] == rows
    assert "overhead_percent" in s
    client = server.client
    assert client.count() == 3 * rows  # the plain ingest and both series
    assert client.count("equipment = 'bench.stamp.on' AND lot = 'BENCH-LOT' AND work_order = 'BENCH-WO'") == rows
    assert client.count("equipment = 'bench.stamp.off' AND lot IS NULL AND work_order IS NULL") == rows
    assert client.count("equipment IS NULL AND lot IS NULL") == rows
