"""The web console's trend, measured in a real browser: time to the first
drawn trend and the bytes it fetched, for one tag over 30 days of 1 s data
(2.6 M samples) and for 10 tags over a week (6 M samples), with ISA-95
style tag names of 36 characters.

A fresh `lotline serve` gets the data through ADBC bulk ingest and a flush;
Debian's chromium (Playwright, `executable_path`) logs in once, then opens
the trend URL `--runs` times as a new page load. "First drawn" is the
page's own mark when the chart has drawn every series, measured from the
navigation's start (HTML, scripts, session check, history requests,
drawing). Bytes are the encoded bodies of the history answers (resource
timing). In the same run, the server's history request alone (urllib) and
DuckDB computing the same min/max per pixel column over lotline's own
Parquet files, so the figures have a reference.

usage: python benches/console_trend.py --lotline target/release/lotline [--runs 5] [--width 1600] [--year]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).with_name("compare")))
from compare import ADMIN, Server, machine_info, versions  # noqa: E402

DAY_S = 86_400
T_END = 1_780_000_000  # 2026-05-28, seconds
CHUNK = 200_000


def tag(i: int) -> str:
    # 36 characters: site1.area3.line10.unit10.TT00010.PV
    return f"site1.area{i % 10}.line{i:02d}.unit{i:02d}.TT{i:05d}.PV"


def ingest(server: Server, tags: list[str], seconds: int) -> int:
    cursor = server.connect().cursor()
    start = (T_END - seconds) * 10**9
    rows = 0
    for i, name in enumerate(tags):
        ts = start + np.arange(seconds, dtype=np.int64) * 10**9
        value = 300 + 40 * np.sin(np.arange(seconds) / (3600 + 97 * i)) + np.random.default_rng(i).normal(0, 1.5, seconds)
        for lo in range(0, seconds, CHUNK):
            hi = min(seconds, lo + CHUNK)
            batch = pa.table({
                "tag": pa.array([name] * (hi - lo), pa.string()),
                "ts": pa.array(ts[lo:hi], pa.timestamp("ns", tz="UTC")),
                "value": pa.array(value[lo:hi], pa.float64()),
                "quality": pa.array(np.zeros(hi - lo, np.uint32), pa.uint32()),
            })
            cursor.adbc_ingest("samples", batch, mode="append")
            rows += hi - lo
    return rows


def median(xs):
    return statistics.median(xs) if xs else None


def login_cookie(server: Server) -> str:
    """A console session, as the page holds one (a Basic header on every
    request would cost an argon2 check each)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}/api/v1/session/login",
        data=json.dumps({"user": ADMIN, "password": server.password}).encode(),
        headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as r:
        return r.headers["Set-Cookie"].split(";", 1)[0]


def api_history(server: Server, cookie: str, name: str, days: int, width: int) -> tuple[float, int]:
    """One history request as a script sends it, gzip accepted: (seconds, body bytes)."""
    url = (f"http://127.0.0.1:{server.http_port}/api/v1/history?tag={name}"
           f"&from={(T_END - days * DAY_S) * 1000}&to={T_END * 1000}&width={width}")
    request = urllib.request.Request(url, headers={"Cookie": cookie, "Accept-Encoding": "gzip"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as r:
        body = r.read()
    return time.perf_counter() - started, len(body)


def duckdb_decimation(data_dir: Path, name: str, days: int, width: int) -> float:
    con = duckdb.connect()
    start = (T_END - days * DAY_S) * 10**9
    step = -(-days * DAY_S * 10**9 // width)
    sql = f"""
        SELECT (epoch_ns(ts) - {start}) // {step} AS c, min(value), max(value),
               arg_min(ts, value), arg_max(ts, value), count(*)
        FROM read_parquet('{data_dir}/tables/samples/**/*.parquet', hive_partitioning = true)
        WHERE tag = '{name}' AND ts >= make_timestamp({start // 1000}) AND ts < make_timestamp({T_END * 10**6})
        GROUP BY 1"""
    started = time.perf_counter()
    rows = con.execute(sql).fetchall()
    elapsed = time.perf_counter() - started
    assert len(rows) <= width
    return elapsed


def browser_runs(server: Server, tags: list[str], days: int, runs: int, width: int) -> dict:
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{server.http_port}/"
    view = f"#/trend?tags={','.join(tags)}&from={(T_END - days * DAY_S) * 1000}&to={T_END * 1000}"
    drawn, fetched, points = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(base)
        page.fill("input[name=user]", ADMIN)
        page.fill("input[name=password]", server.password)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#logout:not([hidden])")
        for _ in range(runs):
            page.goto("about:blank")
            page.goto(base + view)
            deadline = time.monotonic() + 300
            while not page.evaluate(f"!!(window.lotline && window.lotline.trend && window.lotline.trend.series.length === {len(tags)})"):
                assert time.monotonic() < deadline, "the trend was not drawn"
                time.sleep(0.01)
            drawn.append(page.evaluate("window.lotline.trend.drawnAt") / 1000)
            fetched.append(page.evaluate(
                "performance.getEntriesByType('resource').filter(e => e.name.includes('/api/v1/history'))"
                ".reduce((n, e) => n + e.encodedBodySize, 0)"))
            points.append(page.evaluate("window.lotline.trend.series.reduce((n, s) => n + s.t.length, 0)"))
        plot_width = page.evaluate("window.lotline.trend.chart.plotWidth()")
        browser.close()
    return {"first_drawn_s": median(drawn), "runs": drawn, "history_bytes": median(fetched),
            "points_drawn": median(points), "plot_width_px": plot_width}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lotline", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--width", type=int, default=1600, help="browser viewport width")
    parser.add_argument("--year", action="store_true", help="also one tag with 365 days of 1 s data (31.5 M samples)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lotline-console-bench-"))
    server = Server(args.lotline.resolve(), work / "data", work / "lotline.log", [])
    server.start()
    report = {"machine": machine_info(work), "versions": versions(args.lotline.resolve()), "cases": []}
    try:
        month_tag = [tag(1)]
        week_tags = [tag(i) for i in range(100, 110)]
        started = time.perf_counter()
        year_tag = [tag(200)]
        rows = ingest(server, month_tag, 30 * DAY_S) + ingest(server, week_tags, 7 * DAY_S)
        if args.year:
            rows += ingest(server, year_tag, 365 * DAY_S)
        server.flush()
        report["ingest"] = {"rows": rows, "seconds": time.perf_counter() - started}
        cases = [("1 tag, 30 days of 1 s", month_tag, 30), ("10 tags, 7 days of 1 s", week_tags, 7)]
        if args.year:
            cases.append(("1 tag, 365 days of 1 s", year_tag, 365))
        for label, tags, days in cases:
            case = {"case": label, "samples": len(tags) * days * DAY_S}
            case["browser"] = browser_runs(server, tags, days, args.runs, args.width)
            width = case["browser"]["plot_width_px"]
            cookie = login_cookie(server)
            api = [api_history(server, cookie, tags[0], days, width) for _ in range(args.runs)]
            case["api_one_tag_s"] = median([a[0] for a in api])
            case["api_one_tag_bytes"] = api[0][1]
            case["duckdb_one_tag_s"] = median([duckdb_decimation(server.data_dir, tags[0], days, width) for _ in range(args.runs)])
            case["ratio_api_to_duckdb"] = case["api_one_tag_s"] / case["duckdb_one_tag_s"]
            report["cases"].append(case)
            print(json.dumps(case, indent=1), flush=True)
    finally:
        server.stop()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
