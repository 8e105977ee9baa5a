#!/usr/bin/env python3
"""Two lotline binaries on copies of one data directory, asked the same
queries in turn, in one run: an A/B of a change that timings of separate
runs cannot show (this machine's run-to-run spread is larger than a
millisecond).

```sh
python benches/compare/ab.py --a old/lotline --b target/release/lotline \
    --rows 10000000 --tags 5000 --tag-names isa95
```

Binary A takes compare.py's data (4 ADBC writers) and flushes it; then each
binary serves its own copy of that directory. Query `i` goes to A
then B (B then A on odd `i`), the tag rotating as in compare.py; the report
gives p50/p95 per binary, their ratio, and each server's
`lotline_statements_planned_total` per query where it has one.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import compare as cmp


def planned(server: cmp.Server) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("lotline_statements_planned_total "):
                return float(line.split()[1])
    return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--a", type=Path, required=True, help="the first binary (e.g. before a change)")
    p.add_argument("--b", type=Path, required=True, help="the second binary")
    p.add_argument("--tags", type=int, default=5000)
    p.add_argument("--tag-names", choices=["short", "isa95"], default="short")
    p.add_argument("--queries", type=int, default=400)
    args = p.parse_args()
    cmp.TAG_NAMES = args.tag_names
    work = Path(tempfile.mkdtemp(prefix="lotline-ab-"))
    servers = {}
    try:
        maker = cmp.Server(args.a.resolve(), work / "A", work / "make.log", [])
        maker.start()
        batches = cmp.make_batches(args.rows, args.tags, 50_000)
        cmp.parallel_ingest(batches, 4, cmp.lotline_writer(maker))
        maker.flush()
        maker.stop()
        del batches
        shutil.copytree(work / "A", work / "B", ignore=shutil.ignore_patterns("LOCK"))
        for name, binary in (("A", args.a), ("B", args.b)):
            server = cmp.Server(binary.resolve(), work / name, work / f"{name}.log", [])
            server.password = maker.password  # the users file is the maker's
            server.start()
            servers[name] = (server, server.connect())
        t0, t1 = cmp.HOUR_START.replace(" ", "T") + "Z", cmp.HOUR_END.replace(" ", "T") + "Z"
        times = {"A": [], "B": []}
        plans_before = {name: planned(s) for name, (s, _) in servers.items()}
        for q in range(-10, args.queries):
            sql = cmp.ONE_TAG_SQL.format(
                src="samples", tag=cmp.tag_name((q * 7919) % args.tags), t0=f"TIMESTAMP '{t0}'", t1=f"TIMESTAMP '{t1}'"
            )
            order = ("A", "B") if q % 2 == 0 else ("B", "A")
            for name in order:
                conn = servers[name][1]
                start = time.perf_counter()
                with conn.cursor() as cursor:
                    cursor.execute(sql)
                    cursor.fetch_arrow_table()
                if q >= 0:
                    times[name].append(time.perf_counter() - start)
        for name, (server, _) in servers.items():
            p50 = statistics.median(times[name]) * 1e3
            p95 = statistics.quantiles(times[name], n=20)[18] * 1e3
            after = planned(server)
            per_query = None if after is None or plans_before[name] is None else (after - plans_before[name]) / (args.queries + 10)
            binary = args.a if name == "A" else args.b
            print(f"{name} {binary}: one tag, one hour p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
                  f"statements planned per query {'-' if per_query is None else f'{per_query:.2f}'}")
        ratio = statistics.median(times["B"]) / statistics.median(times["A"])
        print(f"B / A (p50): {ratio:.3f}; {args.queries} queries each, alternating; machine: {cmp.machine_info(work)}")
    finally:
        for server, conn in servers.values():
            try:
                conn.close()
            except Exception:
                pass
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
