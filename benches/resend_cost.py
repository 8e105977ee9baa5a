"""What one row per (tag, ts) costs (issue 14): the same samples written as
new data, resent while the first write is in the buffer, resent once it is in
segments, and written as a backfill (new keys older than each tag's newest
time). Only the last three take the slow path (a lookup in the buffer and the
segments); plain ingest pays for reading each request's tags once.

One server (release build, defaults but `--flush-rows`), one ADBC writer,
requests of `--batch-rows` samples of 5 000 ISA-95 tags (36-38 characters).
Each phase's rate is samples acknowledged per second; the script checks
afterwards that every key is stored once.

usage: python benches/resend_cost.py --lotline target/release/lotline [--rows 2000000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).with_name("compare")))
from compare import Server  # noqa: E402

TAGS = 5_000
T0_NS = 1_790_000_000 * 1_000_000_000
NAMES = np.array([f"site1.area2.line{t % 20:02d}.cell{t % 7}.TT{t:05d}.PV" for t in range(TAGS)])


def batch(first_row: int, rows: int, offset_ns: int = 0) -> pa.Table:
    """Rows `first_row..` of the plant: tag i % TAGS at second i // TAGS (times
    two, so a backfill can use the odd seconds)."""
    i = np.arange(first_row, first_row + rows)
    return pa.table({
        "tag": pa.array(NAMES[i % TAGS]),
        "ts": pa.array(T0_NS + (i // TAGS) * 2_000_000_000 + offset_ns, type=pa.timestamp("ns", tz="UTC")),
        "value": pa.array((i % 1000) / 10.0),
        "quality": pa.array(np.zeros(rows, dtype=np.uint32)),
    })


def timed(cursor, rows: int, batch_rows: int, offset_ns: int = 0) -> float:
    started = time.perf_counter()
    for first in range(0, rows, batch_rows):
        cursor.adbc_ingest("samples", batch(first, min(batch_rows, rows - first), offset_ns), mode="append")
    return rows / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lotline", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch-rows", type=int, default=50_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lotline-resend-"))
    # Large enough that the first resend finds everything still buffered.
    server = Server(args.lotline, work / "data", work / "lotline.log",
                    ["--flush-rows", str(args.rows + 1), "--max-buffered-rows", str(4 * args.rows)])
    server.start()
    results = {}
    try:
        cursor = server.connect().cursor()
        results["new samples"] = timed(cursor, args.rows, args.batch_rows)
        results["resent, first write buffered"] = timed(cursor, args.rows, args.batch_rows)
        server.flush()
        results["resent, first write in segments"] = timed(cursor, args.rows, args.batch_rows)
        results["backfill (new keys, older than each tag's newest)"] = timed(
            cursor, args.rows, args.batch_rows, offset_ns=1_000_000_000)
        cursor.execute("SELECT count(*) AS n FROM samples")
        stored = cursor.fetch_arrow_table().to_pylist()[0]["n"]
        cursor.execute("SELECT count(*) AS n FROM (SELECT tag, ts FROM samples GROUP BY tag, ts HAVING count(*) > 1)")
        repeated = cursor.fetch_arrow_table().to_pylist()[0]["n"]
        assert (stored, repeated) == (2 * args.rows, 0), (stored, repeated)
        cursor.close()
    finally:
        if server.proc is not None:
            server.proc.kill()
            server.proc.wait()
    print(json.dumps({"rows": args.rows, "batch_rows": args.batch_rows,
                      "samples_per_s": {k: round(v) for k, v in results.items()}}, indent=2))


if __name__ == "__main__":
    main()
