#!/usr/bin/env python3
"""Side-by-side benchmark: lotline against DuckDB, same machine, same data, one run.

Both engines get the same deterministic plant-like batches (the generator of
`lotline bench`, vectorized with pyarrow.compute), then:

  ingest     lotline: W threads, each with its own ADBC Flight SQL connection,
             one `adbc_ingest` call (one durable, acknowledged request) per
             batch. DuckDB: a file database, autocommit, one
             `INSERT INTO samples SELECT ... FROM <registered arrow table>` per
             batch (each commit writes and fsyncs DuckDB's WAL).
  storage    lotline: `lotline.flush`, then the Parquet segments on disk.
             DuckDB: `CHECKPOINT`, then the database file (+ WAL, if any).
  queries    last value of every tag, one tag one hour, bulk export of all
             values: lotline over Flight SQL (ADBC), DuckDB over lotline's own
             Parquet files (equal storage) and over its native table.

Prints a table of metric | lotline | DuckDB | lotline/DuckDB ratio, plus
machine, versions and the command line; --json-out writes everything as JSON.
See README.md next to this file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
from adbc_driver_flightsql import dbapi as flight_sql

START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
NS_PER_S = 1_000_000_000
GOLDEN = 0x9E37_79B9_7F4A_7C15  # same noise hash as `lotline bench`
TS_TYPE = pa.timestamp("ns", tz="UTC")
ADMIN = "admin"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0

# The hour every one-tag query asks for (all generated data lies inside it
# unless rows / tags > 3600).
HOUR_START = "2026-01-01 00:00:00"
HOUR_END = "2026-01-01 01:00:00"


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


# `--tag-names`: "short" (`bench.t00042`, as `lotline bench` names them) or
# "isa95" (`site1.area3.line10.unit10.TT00042.PV`, 36 characters: how a
# plant names tags, and what makes per-row string work show).
TAG_NAMES = "short"


def tag_name(t: int) -> str:
    if TAG_NAMES == "isa95":
        return f"site{1 + t % 3}.area{1 + t // 3 % 8}.line{1 + t // 24 % 12:02}.unit{1 + t // 288 % 20:02}.TT{t:05}.PV"
    return f"bench.t{t:05}"


def make_batch(first: int, rows: int, tags: int, tag_names: pa.Array) -> pa.Table:
    """Rows first .. first+rows of the run, exactly like `lotline bench`:
    row g is tag g % tags at second g // tags; value a slow wave per tag plus
    deterministic noise, quantized to 0.01 like a sensor's resolution."""
    g = pa.array(range(first, first + rows), pa.int64())
    tag = pc.modulo(g, tags)
    second = pc.divide(g, tags)  # integer division on int64
    ts = pc.add(pc.multiply(second, NS_PER_S), START_NS).cast(pa.int64()).view(TS_TYPE)
    # noise = ((g * GOLDEN mod 2^64) >> 54) / 1024 - 0.5   (uint64 multiply wraps)
    hashed = pc.shift_right(pc.multiply(g.cast(pa.uint64()), pa.scalar(GOLDEN, pa.uint64())), pa.scalar(54, pa.uint64()))
    noise = pc.subtract(pc.divide(hashed.cast(pa.float64()), 1024.0), 0.5)
    wave = pc.multiply(
        pc.sin(pc.add(pc.divide(second.cast(pa.float64()), 600.0), tag.cast(pa.float64()))), 5.0
    )
    raw = pc.add(pc.add(pc.add(pc.modulo(tag, 100).cast(pa.float64()), 50.0), wave), noise)
    # values are always positive, so half_up == Rust's f64::round (half away from zero)
    value = pc.divide(pc.round(pc.multiply(raw, 100.0), round_mode="half_up"), 100.0)
    return pa.table(
        {
            "tag": pc.take(tag_names, tag),
            "ts": ts,
            "value": value,
            "quality": pa.repeat(pa.scalar(0, pa.uint32()), rows),
        }
    )


def make_batches(rows: int, tags: int, batch_rows: int) -> list[pa.Table]:
    tag_names = pa.array([tag_name(t) for t in range(tags)], pa.utf8())
    return [
        make_batch(first, min(batch_rows, rows - first), tags, tag_names)
        for first in range(0, rows, batch_rows)
    ]


# ---------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------


def latency(samples_s: list[float]) -> dict:
    """Nearest-rank percentiles in milliseconds (the same rule as `lotline bench`)."""
    s = sorted(samples_s)
    if not s:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}

    def at(q: float) -> float:
        i = min(max(math.ceil(len(s) * q), 1), len(s)) - 1
        return s[i] * 1e3

    return {"count": len(s), "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": at(1.0)}


def follow_last_values(query, sql: str, seconds: float, pause: float = 0.0) -> tuple[list[float], list[float]]:
    """Polls `sql` (tag, ts in ns, e.g. over `last_values`) for `seconds`;
    for each new ts of a tag, (end of the first poll that returned it) - ts:
    an upper bound of the latency to queryable. Returns (latencies, poll
    durations) in seconds."""
    seen: dict[str, int] = {}
    latencies: list[float] = []
    polls: list[float] = []
    start = time.time()
    while time.time() - start < seconds:
        began = time.time()
        table = query(sql)
        ended = time.time()
        polls.append(ended - began)
        for tag, ts in zip(table.column("tag").to_pylist(), table.column("ts").to_pylist()):
            if seen.get(tag) not in (None, ts):
                latencies.append(ended - ts / 1e9)
            seen[tag] = ts
        time.sleep(pause)
    return latencies, polls


def dir_bytes(path: Path, suffix: str = "") -> tuple[int, int]:
    """(total bytes, file count) of the files below `path` ending in `suffix`."""
    total = count = 0
    for p in path.rglob(f"*{suffix}"):
        if p.is_file():
            total += p.stat().st_size
            count += 1
    return total, count


# ---------------------------------------------------------------------------
# the lotline server
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: Path, data_dir: Path, log_path: Path, extra_args: list[str]):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_args = extra_args
        self.password = "bench-" + secrets.token_hex(12)
        self.port = free_port()
        self.http_port = free_port()
        self.proc: Optional[subprocess.Popen] = None

    @property
    def uri(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            str(self.binary), "serve",
            "--data-dir", str(self.data_dir),
            "--listen", f"127.0.0.1:{self.port}",
            "--http-listen", f"127.0.0.1:{self.http_port}",
            *self.extra_args,
        ]
        setpriv = shutil.which("setpriv")
        if setpriv:  # the server dies with this script even on SIGKILL
            cmd = [setpriv, "--pdeathsig", "KILL", "--", *cmd]
        return cmd

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, LOTLINE_ADMIN_PASSWORD=self.password)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lotline serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            client = flight.FlightClient(self.uri)
            try:
                client.authenticate_basic_token(ADMIN, self.password, flight.FlightCallOptions(timeout=5))
                return
            except flight.FlightUnauthenticatedError:
                raise
            except (flight.FlightError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"lotline serve not ready after {READY_TIMEOUT_S:.0f} s:\n{self.log_tail()}")
            finally:
                client.close()
            time.sleep(0.1)

    def connect(self):
        return flight_sql.connect(
            self.uri, db_kwargs={"username": ADMIN, "password": self.password}, autocommit=True
        )

    def querier(self):
        """A function running one SQL statement on a new connection,
        returning its Arrow table."""
        cursor = self.connect().cursor()

        def query(sql: str):
            cursor.execute(sql)
            return cursor.fetch_arrow_table()

        return query

    def flush(self) -> dict:
        client = flight.FlightClient(self.uri)
        try:
            header = client.authenticate_basic_token(ADMIN, self.password, flight.FlightCallOptions(timeout=10))
            options = flight.FlightCallOptions(headers=[header], timeout=3600)
            results = list(client.do_action(flight.Action("lotline.flush", b""), options))
        finally:
            client.close()
        return json.loads(results[0].body.to_pybytes()) if results else {}

    def kill(self):
        """SIGKILL, as a power cut for the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)

    def stop(self) -> Optional[int]:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print(f"lotline did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM; killing it", file=sys.stderr)
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# ---------------------------------------------------------------------------
# ingest
# ---------------------------------------------------------------------------


def parallel_ingest(batches: list[pa.Table], writers: int, open_writer: Callable[[], tuple[Callable, Callable]]) -> dict:
    """Run `writers` threads; thread w sends batches w, w+W, ... through its own
    connection. open_writer() -> (send(batch), close()). Connections are opened
    before the clock starts. Returns wall time and per-call latencies."""
    writers = max(1, min(writers, len(batches)))
    conns = [open_writer() for _ in range(writers)]
    lat: list[list[float]] = [[] for _ in range(writers)]
    errors: list[BaseException] = []
    gate = threading.Barrier(writers + 1)

    def work(w: int):
        send = conns[w][0]
        gate.wait()
        try:
            for batch in batches[w::writers]:
                t0 = time.perf_counter()
                send(batch)
                lat[w].append(time.perf_counter() - t0)
        except BaseException as exc:  # reported after join
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(writers)]
    for t in threads:
        t.start()
    gate.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    for _, close in conns:
        close()
    if errors:
        raise errors[0]
    rows = sum(b.num_rows for b in batches)
    return {
        "writers": writers,
        "requests": len(batches),
        "seconds": seconds,
        "samples_per_second": rows / seconds,
        "ack": latency([x for per in lat for x in per]),
    }


def lotline_writer(server: Server):
    def open_writer():
        conn = server.connect()
        cur = conn.cursor()

        def send(batch: pa.Table):
            cur.adbc_ingest("samples", batch, mode="append")

        def close():
            cur.close()
            conn.close()

        return send, close

    return open_writer


DUCKDB_DDL = """CREATE TABLE samples (
    tag VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    value DOUBLE,
    text VARCHAR,
    quality UINTEGER NOT NULL,
    equipment VARCHAR,
    work_order VARCHAR,
    lot VARCHAR
)"""


def duckdb_writer(con: duckdb.DuckDBPyConnection):
    counter = iter(range(1 << 62))
    lock = threading.Lock()

    def open_writer():
        cur = con.cursor()  # its own connection to the same database

        def send(batch: pa.Table):
            with lock:
                name = f"bench_batch_{next(counter)}"
            cur.register(name, batch)
            try:
                # autocommit: one transaction per batch, WAL written + fsynced on commit
                cur.execute(
                    f"INSERT INTO samples (tag, ts, value, quality) SELECT tag, ts, value, quality FROM {name}"
                )
            finally:
                cur.unregister(name)

        return send, cur.close

    return open_writer


# ---------------------------------------------------------------------------
# queries
# ---------------------------------------------------------------------------

LAST_VALUE_SQL = (
    "SELECT s.tag, s.ts, s.value FROM {src} s "
    "JOIN (SELECT tag, max(ts) AS ts FROM {src} GROUP BY tag) m "
    "ON s.tag = m.tag AND s.ts = m.ts"
)
ONE_TAG_SQL = "SELECT ts, value, quality FROM {src} WHERE tag = '{tag}' AND ts >= {t0} AND ts < {t1}"
EXPORT_SQL = "SELECT tag, ts, value FROM {src}"


def lotline_ts(text: str) -> str:
    return f"TIMESTAMP '{text.replace(' ', 'T')}Z'"


def duckdb_ts(text: str) -> str:
    return f"TIMESTAMPTZ '{text}+00'"


def duckdb_fetch(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    rel = con.sql(sql)
    if hasattr(rel, "to_arrow_table"):
        return rel.to_arrow_table()
    out = rel.arrow()
    return out.read_all() if isinstance(out, pa.RecordBatchReader) else out


class Engine:
    def __init__(self, name: str, fetch: Callable[[str], pa.Table], src: str, ts: Callable[[str], str]):
        self.name, self.fetch, self.src, self.ts = name, fetch, src, ts


def time_query(engine: Engine, sqls: list[str]) -> tuple[list[float], list[pa.Table]]:
    """Runs sqls[0] once untimed (warm-up), then every sql timed."""
    engine.fetch(sqls[0])
    times, results = [], []
    for sql in sqls:
        t0 = time.perf_counter()
        table = engine.fetch(sql)
        times.append(time.perf_counter() - t0)
        results.append(table)
    return times, results


def run_queries(engine: Engine, args, rows: int, checks: dict) -> dict:
    out = {}
    src = engine.src

    # (a) last value of every tag
    times, results = time_query(engine, [LAST_VALUE_SQL.format(src=src)] * args.queries)
    out["last_value_every_tag"] = latency(times)
    last = results[0]
    checks.setdefault("last_value_rows", {})[engine.name] = last.num_rows
    checks.setdefault("last_value_sum", {})[engine.name] = pc.sum(last.column("value")).as_py()
    del results

    # (b) one tag, one hour; the tag rotates like `lotline bench`
    t0, t1 = engine.ts(HOUR_START), engine.ts(HOUR_END)
    sqls = [
        ONE_TAG_SQL.format(src=src, tag=tag_name((q * 7919) % args.tags), t0=t0, t1=t1)
        for q in range(args.queries)
    ]
    times, results = time_query(engine, sqls)
    out["one_tag_one_hour"] = latency(times)
    out["one_tag_one_hour_rows"] = sum(t.num_rows for t in results) / max(1, len(results))
    checks.setdefault("one_tag_rows", {})[engine.name] = sum(t.num_rows for t in results)
    del results

    # (c) bulk export of (tag, ts, value) of every sample
    sql = EXPORT_SQL.format(src=src)
    engine.fetch(sql)  # warm-up
    times = []
    for i in range(args.export_runs):
        t0_ = time.perf_counter()
        table = engine.fetch(sql)
        times.append(time.perf_counter() - t0_)
        if i == 0:
            checks.setdefault("export_rows", {})[engine.name] = table.num_rows
            checks.setdefault("export_sum", {})[engine.name] = pc.sum(table.column("value")).as_py()
        del table
    export = latency(times)
    export["values_per_second"] = rows / (export["p50_ms"] / 1e3)
    export["best_values_per_second"] = rows / min(times)
    out["export"] = export
    return out


# ---------------------------------------------------------------------------
# machine and versions
# ---------------------------------------------------------------------------


def machine_info(workdir: Path) -> dict:
    info = {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": None,
        "ram_gib": None,
        "kernel": platform.release(),
        "workdir_fs": None,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    try:  # fsync on tmpfs costs nothing: worth knowing when reading ingest numbers
        best = ""
        target = str(workdir.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mnt, fstype = parts[1], parts[2]
            if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, info["workdir_fs"] = mnt, fstype
    except OSError:
        pass
    return info


def versions(binary: Path) -> dict:
    import adbc_driver_flightsql

    try:
        lotline = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError as exc:
        lotline = f"unknown ({exc})"
    return {
        "lotline": lotline,
        "lotline_build": binary.parent.name,  # release or debug
        "duckdb": duckdb.__version__,
        "pyarrow": pa.__version__,
        "adbc_driver_flightsql": getattr(adbc_driver_flightsql, "__version__", "?"),
        "python": platform.python_version(),
    }


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def fmt(v, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "/s":
        return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.1f} k/s"
    if unit == "ms":
        return f"{v:.2f} ms" if v < 100 else f"{v:.0f} ms"
    if unit == "s":
        return f"{v:.2f} s"
    if unit == "B":
        return f"{v:.2f} B"
    return str(v)


def ratio(a, b) -> Optional[float]:
    return None if a is None or b is None or b == 0 else a / b


def build_rows(res: dict) -> list[dict]:
    """(metric, unit, better, lotline, duckdb over lotline's parquet, duckdb native)."""
    L, P, N = res["lotline"], res["duckdb_parquet"], res["duckdb_native"]
    LI, DI = res["lotline_ingest"], res["duckdb_ingest"]
    rows = [
        ("ingest samples/s", "/s", "higher", LI["samples_per_second"], None, DI["samples_per_second"]),
        ("ingest ack p50", "ms", "lower", LI["ack"]["p50_ms"], None, DI["ack"]["p50_ms"]),
        ("ingest ack p99", "ms", "lower", LI["ack"]["p99_ms"], None, DI["ack"]["p99_ms"]),
        ("flush / CHECKPOINT", "s", "lower", res["lotline_flush_seconds"], None, res["duckdb_checkpoint_seconds"]),
        ("bytes/sample on disk", "B", "lower", res["lotline_bytes_per_sample"], res["lotline_bytes_per_sample"], res["duckdb_bytes_per_sample"]),
    ]
    for key, label in (("last_value_every_tag", "last value/tag"), ("one_tag_one_hour", "1 tag 1 hour")):
        for p in ("p50", "p95", "p99"):
            rows.append((f"{label} {p}", "ms", "lower", L[key][f"{p}_ms"], P[key][f"{p}_ms"], N[key][f"{p}_ms"]))
    rows.append(("export values/s (p50)", "/s", "higher", L["export"]["values_per_second"], P["export"]["values_per_second"], N["export"]["values_per_second"]))
    rows.append(("export p50", "ms", "lower", L["export"]["p50_ms"], P["export"]["p50_ms"], N["export"]["p50_ms"]))
    out = []
    for metric, unit, better, lv, pv, nv in rows:
        out.append(
            {
                "metric": metric, "unit": unit, "better": better,
                "lotline": lv, "duckdb_parquet": pv, "duckdb_native": nv,
                "ratio_vs_parquet": ratio(lv, pv), "ratio_vs_native": ratio(lv, nv),
            }
        )
    return out


def verdict(r: Optional[float], better: str) -> str:
    if r is None:
        return ""
    if 0.95 <= r <= 1.05:
        return "~"
    good = r > 1 if better == "higher" else r < 1
    return "+" if good else "-"


def render_table(table_rows: list[dict]) -> str:
    head = ["metric", "better", "lotline", "DuckDB/lotline-parquet", "ratio", "DuckDB/native", "ratio"]
    body = []
    for r in table_rows:
        rp, rn = r["ratio_vs_parquet"], r["ratio_vs_native"]
        body.append(
            [
                r["metric"], r["better"], fmt(r["lotline"], r["unit"]),
                fmt(r["duckdb_parquet"], r["unit"]),
                "-" if rp is None else f"{rp:.2f}x {verdict(rp, r['better'])}",
                fmt(r["duckdb_native"], r["unit"]),
                "-" if rn is None else f"{rn:.2f}x {verdict(rn, r['better'])}",
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(head), sep, *(line(b) for b in body)])


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def default_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "lotline" / "target")
    release = target / "release" / "lotline"
    return release if release.is_file() else target / "debug" / "lotline"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="lotline vs DuckDB on the same machine, same data, one run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--bin", type=Path, default=None,
                   help="lotline binary (default: $CARGO_TARGET_DIR or ~/.cache/lotline/target: release if built, else debug)")
    p.add_argument("--rows", type=int, default=5_000_000, help="samples in all")
    p.add_argument("--tags", type=int, default=50_000, help="distinct tags; rows cycle through them")
    p.add_argument("--tag-names", choices=["short", "isa95"], default="short",
                   help="short: bench.t00042 (lotline bench's); isa95: site1.area3.line10.unit10.TT00042.PV (36 characters)")
    p.add_argument("--batch-rows", type=int, default=50_000, help="rows per ingest request / INSERT")
    p.add_argument("--writers", type=int, default=4, help="concurrent lotline writers (own ADBC connection each)")
    p.add_argument("--duckdb-writers", type=int, default=1,
                   help="concurrent DuckDB writers (own connection each, same database)")
    p.add_argument("--queries", type=int, default=100, help="timed runs of each point/aggregate query")
    p.add_argument("--export-runs", type=int, default=None,
                   help="timed runs of the bulk export (default: min(queries, 10))")
    p.add_argument("--serve-args", default="", help="extra arguments for `lotline serve`, one shell-quoted string")
    p.add_argument("--workdir", type=Path, default=None, help="where data goes (default: a new temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the data in the workdir afterwards")
    p.add_argument("--json-out", type=Path, default=None, help="also write all results as JSON here")
    args = p.parse_args(argv)
    if args.export_runs is None:
        args.export_runs = min(args.queries, 10)
    for name in ("rows", "tags", "batch_rows", "writers", "duckdb_writers", "queries", "export_runs"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    global TAG_NAMES
    args = parse_args(argv)
    TAG_NAMES = args.tag_names
    binary = (args.bin or default_binary()).expanduser().resolve()
    if not binary.is_file():
        print(f"lotline binary not found: {binary} (build it or pass --bin)", file=sys.stderr)
        return 2
    if args.rows // args.tags >= 3600:
        log("note: rows/tags >= 3600, so the one-hour query window does not cover all data")

    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="lotline-compare-")) if own_workdir else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "lotline-data"
    duck_path = workdir / "duckdb" / "bench.duckdb"
    log_path = workdir / "lotline.log"
    ours = [data_dir, duck_path.parent, log_path]
    clash = [p for p in ours if p.exists()]
    if clash:
        print(f"refusing to reuse existing {', '.join(map(str, clash))}: pick a fresh --workdir", file=sys.stderr)
        return 2

    machine = machine_info(workdir)
    server = Server(binary, data_dir, log_path, shlex.split(args.serve_args))
    con: Optional[duckdb.DuckDBPyConnection] = None
    lot_conn = None
    res: dict = {}
    checks: dict = {}
    try:
        t0 = time.perf_counter()
        batches = make_batches(args.rows, args.tags, args.batch_rows)
        rows = sum(b.num_rows for b in batches)
        log(f"generated {rows} rows in {len(batches)} batches over {args.tags} tags in {time.perf_counter() - t0:.2f} s")

        # ---- lotline ingest, flush, size
        server.start()
        log(f"lotline serve ready ({binary.parent.name} build); ingesting with {args.writers} writer(s) ...")
        res["lotline_ingest"] = parallel_ingest(batches, args.writers, lotline_writer(server))
        log(f"lotline ingest: {res['lotline_ingest']['samples_per_second']:.0f} samples/s")
        t0 = time.perf_counter()
        res["lotline_flush"] = server.flush()
        res["lotline_flush_seconds"] = time.perf_counter() - t0
        seg_root = data_dir / "tables" / "samples"
        seg_bytes, seg_files = dir_bytes(seg_root, ".parquet")
        res["lotline_segment_files"] = seg_files
        res["lotline_segment_bytes"] = seg_bytes
        res["lotline_bytes_per_sample"] = seg_bytes / rows if seg_bytes else None

        # ---- DuckDB ingest, checkpoint, size
        duck_path.parent.mkdir(parents=True)
        con = duckdb.connect(str(duck_path))
        con.execute(DUCKDB_DDL)
        log(f"DuckDB: ingesting with {args.duckdb_writers} writer(s) ...")
        res["duckdb_ingest"] = parallel_ingest(batches, args.duckdb_writers, duckdb_writer(con))
        log(f"DuckDB ingest: {res['duckdb_ingest']['samples_per_second']:.0f} samples/s")
        t0 = time.perf_counter()
        con.execute("CHECKPOINT")
        res["duckdb_checkpoint_seconds"] = time.perf_counter() - t0
        duck_bytes, _ = dir_bytes(duck_path.parent)  # database file + WAL (empty after CHECKPOINT)
        res["duckdb_file_bytes"] = duck_bytes
        res["duckdb_bytes_per_sample"] = duck_bytes / rows
        del batches

        # ---- row counts must agree before anything is timed
        lot_conn = server.connect()

        def lotline_fetch(sql: str) -> pa.Table:
            with lot_conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetch_arrow_table()

        glob = str(seg_root / "**" / "*.parquet").replace("'", "''")
        parquet_src = f"read_parquet('{glob}', hive_partitioning = true)"
        engines = [
            Engine("lotline", lotline_fetch, "samples", lotline_ts),
            Engine("duckdb_parquet", lambda sql: duckdb_fetch(con, sql), parquet_src, duckdb_ts),
            Engine("duckdb_native", lambda sql: duckdb_fetch(con, sql), "samples", duckdb_ts),
        ]
        counts = {e.name: e.fetch(f"SELECT count(*) AS n FROM {e.src}").column(0)[0].as_py() for e in engines}
        checks["count"] = counts
        if any(c != rows for c in counts.values()):
            raise RuntimeError(f"row counts disagree (generated {rows}): {counts}")

        # ---- queries
        for e in engines:
            log(f"queries on {e.name}: {args.queries} x 2 + {args.export_runs} exports ...")
            res[e.name] = run_queries(e, args, rows, checks)
    finally:
        if lot_conn is not None:
            try:
                lot_conn.close()
            except Exception:
                pass
        if con is not None:
            con.close()
        code = server.stop()
        res["lotline_exit_code"] = code
        if "lotline_ingest" in res and "lotline" not in res:  # failed part-way: show why
            tail = server.log_tail()
            if tail:
                print(f"--- lotline log tail ---\n{tail}", file=sys.stderr)
        if not args.keep:
            if own_workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                for p in ours:
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    elif p.exists():
                        p.unlink()

    # ---- consistency of what the engines returned
    problems = []
    for key, per in checks.items():
        vals = list(per.values())
        if key.endswith("_sum"):
            same = all(abs(v - vals[0]) <= 1e-6 * max(1.0, abs(vals[0])) for v in vals)
        else:
            same = len(set(vals)) == 1
        if not same:
            problems.append(f"{key} differs between engines: {per}")
    if code not in (0, None):
        problems.append(f"lotline serve exited with code {code} after SIGTERM")

    table_rows = build_rows(res)
    vers = versions(binary)
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    LI, DI = res["lotline_ingest"], res["duckdb_ingest"]

    print()
    print(f"lotline vs DuckDB: {rows} samples, {args.tags} tags, {args.batch_rows} rows/request; "
          f"lotline {LI['writers']} writer(s) over ADBC Flight SQL, DuckDB {DI['writers']} writer(s) in-process")
    print(f"queries: {args.queries} timed runs each (+1 warm-up), export {args.export_runs} runs (+1 warm-up); "
          f"lotline segments: {res['lotline_segment_files']} Parquet file(s)")
    print()
    print(render_table(table_rows))
    print()
    print("ratio = lotline / DuckDB. 'better' says which direction of the raw number is better;")
    print("'+' lotline better, '-' DuckDB better, '~' within 5%.")
    print()
    print(f"machine:  nproc {machine['nproc']}, {machine['cpu_model']}, {machine['ram_gib']} GiB RAM, "
          f"kernel {machine['kernel']}, workdir on {machine['workdir_fs']}")
    print(f"versions: {vers['lotline']} ({vers['lotline_build']} build), duckdb {vers['duckdb']}, "
          f"pyarrow {vers['pyarrow']}, adbc-driver-flightsql {vers['adbc_driver_flightsql']}, python {vers['python']}")
    print(f"command:  {command}")
    for p in problems:
        print(f"WARNING: {p}")

    if args.json_out:
        doc = {
            "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command,
            "config": {
                "rows": rows, "tags": args.tags, "batch_rows": args.batch_rows,
                "writers": LI["writers"], "duckdb_writers": DI["writers"],
                "queries": args.queries, "export_runs": args.export_runs,
                "serve_args": args.serve_args,
            },
            "machine": machine,
            "versions": vers,
            "table": table_rows,
            "results": res,
            "checks": checks,
            "problems": problems,
        }
        args.json_out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        log(f"wrote {args.json_out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
