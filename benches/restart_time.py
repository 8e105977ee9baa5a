"""Start-up time after a crash with a large WAL (issue 14: under 10 s with
1 GiB of WAL).

`lotline serve` runs with flushing held off (flush thresholds and buffer
limits far above the workload), so every ingested sample stays in the WAL
only; two ADBC writers ingest batches of 200 000 samples (ISA-95 tag names
of 36-38 characters, 10 000 tags; durable, acknowledged) until the WAL holds
`--wal-gib`; the server is SIGKILLed and started again, and the script
reports the time from the new process to the first accepted handshake
(the WAL replayed, the server serving), the WAL size and files, the server's
peak memory after the replay, and checks that every acknowledged sample is
there once.

usage: python benches/restart_time.py --lotline target/release/lotline [--wal-gib 1.0]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).with_name("compare")))
from compare import Server, dir_bytes  # noqa: E402

HUGE = str(1 << 50)
BATCH_ROWS = 200_000
TAGS = 10_000
T0_NS = 1_790_000_000 * 1_000_000_000


def batch(writer: int, step: int) -> pa.Table:
    """BATCH_ROWS samples: every tag, 50 timestamps a tag, each step later."""
    i = np.arange(BATCH_ROWS)
    tag_index = i % TAGS
    names = np.array([f"site1.area2.line{t % 20:02d}.cell{t % 7}.TT{t:05d}.PV" for t in range(TAGS)])
    ts = T0_NS + ((step * (BATCH_ROWS // TAGS) + i // TAGS) * 2 + writer) * 1_000_000_000
    return pa.table({
        "tag": pa.array(names[tag_index]),
        "ts": pa.array(ts, type=pa.timestamp("ns", tz="UTC")),
        "value": pa.array((i % 1000) / 10.0),
        "quality": pa.array(np.zeros(BATCH_ROWS, dtype=np.uint32)),
    })


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lotline", type=Path, required=True)
    parser.add_argument("--wal-gib", type=float, default=1.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lotline-restart-"))
    held = ["--flush-rows", HUGE, "--flush-bytes", HUGE, "--flush-age-secs", str(1 << 40),
            "--max-buffered-rows", HUGE, "--max-buffered-bytes", HUGE]
    server = Server(args.lotline, work / "data", work / "lotline.log", held)
    server.start()
    wal_dir = work / "data" / "wal"
    target = args.wal_gib * (1 << 30)
    acknowledged = [0, 0]
    try:
        def write(writer: int):
            conn = server.connect()
            cursor = conn.cursor()
            step = 0
            while dir_bytes(wal_dir)[0] < target:
                cursor.adbc_ingest("samples", batch(writer, step), mode="append")
                acknowledged[writer] += BATCH_ROWS
                step += 1
            cursor.close()
            conn.close()

        threads = [threading.Thread(target=write, args=(w,)) for w in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ingested = sum(acknowledged)
        wal_bytes, wal_files = dir_bytes(wal_dir)
        segments = dir_bytes(work / "data", ".parquet")[1]
        server.kill()

        began = time.monotonic()
        server.start()
        ready_s = time.monotonic() - began
        peak = peak_rss_bytes(server.proc.pid)
        count = server.querier()("SELECT count(*) FROM samples").column(0)[0].as_py()
        report = {
            "wal_bytes": wal_bytes,
            "wal_files": wal_files,
            "segments_before_kill": segments,
            "samples_acknowledged": ingested,
            "samples_after_restart": count,
            "restart_to_ready_s": round(ready_s, 2),
            "peak_rss_after_replay_bytes": peak,
        }
        print(json.dumps(report, indent=2))
        assert count == ingested, f"{count} samples after the restart, {ingested} acknowledged"
    finally:
        server.stop()


if __name__ == "__main__":
    main()
