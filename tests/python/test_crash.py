"""SIGKILL the server again and again while a writer streams batches.

Each batch carries a unique id in its tag (`b{id}`) and has exactly ROWS rows.
After every restart:
  * every batch whose ingest call returned OK has exactly ROWS rows,
  * every batch whose call failed has 0 or ROWS rows (never partial), and once
    it has been seen it must stay,
  * no rows appear that were never sent, and no batch is doubled (e.g. by
    replaying WAL records that were already flushed to a segment),
  * every segment listed in manifest.json exists and is readable Parquet.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq

from lotline_testlib import NS_PER_S, Client, manifest_files, ns, samples_table

KILLS = 20
ROWS = 500
FLUSH_ROWS = 20_000
SEED = 20240601
# Pace the writer (~100 requests/s at most) so the data stays small enough
# for a debug build to re-check after each of the restarts.
PAUSE_BETWEEN_BATCHES_S = 0.005
T0 = ns(2024, 5, 1)


def make_batch(batch_id: int):
    start = T0 + batch_id * ROWS * NS_PER_S
    return samples_table(
        [f"b{batch_id}"] * ROWS,
        [start + i * NS_PER_S for i in range(ROWS)],
        [batch_id + i / 4 for i in range(ROWS)],
        quality=[0] * ROWS,
        equipment=["press-3"] * ROWS,
    )


class Writer(threading.Thread):
    """Streams batches; records which calls returned OK and which failed."""

    def __init__(self, server):
        super().__init__(name="crash-writer", daemon=True)
        self.server = server
        self.lock = threading.Lock()
        self.ok: set[int] = set()
        self.failed: set[int] = set()
        self.next_id = 0
        self.pause_requested = threading.Event()
        self.paused = threading.Event()
        self.stop_requested = threading.Event()
        self.crash: BaseException | None = None
        self.last_error = ""

    def run(self):
        try:
            self._run()
        except BaseException as exc:  # surfaced by the main thread
            self.crash = exc
            self.paused.set()

    def _run(self):
        conn: Client | None = None
        while not self.stop_requested.is_set():
            if self.pause_requested.is_set():
                # re-announced every turn, so a pause() right after resume()
                # cannot miss it
                if conn is not None:
                    conn.close()
                    conn = None
                self.paused.set()
                time.sleep(0.01)
                continue
            if conn is None:
                try:
                    conn = Client(self.server.uri, self.server.password)
                except Exception as exc:
                    self.last_error = repr(exc)
                    time.sleep(0.05)
                    continue
            batch_id = self.next_id
            self.next_id += 1
            batch = make_batch(batch_id)
            try:
                conn.ingest(batch)
            except Exception as exc:
                self.last_error = repr(exc)
                with self.lock:
                    self.failed.add(batch_id)
                conn.close()
                conn = None
                time.sleep(0.02)
            else:
                with self.lock:
                    self.ok.add(batch_id)
                time.sleep(PAUSE_BETWEEN_BATCHES_S)
        if conn is not None:
            conn.close()

    def pause(self):
        self.paused.clear()
        self.pause_requested.set()
        assert self.paused.wait(60), "writer did not pause within 60s (ingest call hung?)"
        if self.crash:
            raise self.crash

    def resume(self):
        self.pause_requested.clear()


def check_segments(data_dir: Path) -> int:
    files = manifest_files(data_dir)
    for rel in files:
        path = data_dir / rel
        assert path.is_file(), f"manifest.json lists {rel} but it does not exist"
        table = pq.read_table(path)  # raises on a torn or corrupt file
        assert table.num_rows > 0, f"segment {rel} has no rows"
        assert {"tag", "ts"} <= set(table.column_names), rel
    return len(files)


def check_batches(server, writer: Writer, decided: set[int], absent: set[int], round_no: int):
    """`decided`: batches seen present at an earlier restart (must stay);
    `absent`: failed batches seen missing at an earlier restart (must stay missing)."""
    with writer.lock:
        ok = set(writer.ok)
        failed = set(writer.failed)
        sent = writer.next_id
    counts = {
        r["tag"]: r["n"]
        for r in server.query("SELECT tag, count(*) AS n FROM samples GROUP BY tag").to_pylist()
    }
    problems = []
    present = set()
    for tag, n in counts.items():
        assert tag.startswith("b") and tag[1:].isdigit(), f"unexpected tag {tag!r}"
        bid = int(tag[1:])
        if bid >= sent:
            problems.append(f"batch {bid} present but never sent")
        elif n != ROWS:
            kind = "acknowledged" if bid in ok else "failed"
            problems.append(f"{kind} batch {bid} has {n} rows, expected {ROWS}")
        present.add(bid)
    for bid in sorted(ok - present):
        problems.append(f"acknowledged batch {bid} is missing after restart")
    for bid in sorted(decided - present):
        problems.append(f"batch {bid} was present after an earlier restart and is gone now")
    for bid in sorted(absent & present):
        problems.append(f"failed batch {bid} was missing after an earlier restart and has appeared now")
    assert not problems, f"after restart #{round_no}: " + "; ".join(problems[:20])
    assert sum(counts.values()) == ROWS * len(present)
    decided |= present
    absent |= failed - present
    return len(ok), len(failed), len(present)


def test_sigkill_during_ingest(server_factory):
    rng = random.Random(SEED)
    server = server_factory("--flush-rows", str(FLUSH_ROWS))
    writer = Writer(server)
    writer.start()
    decided: set[int] = set()
    absent: set[int] = set()
    started = time.monotonic()
    try:
        for round_no in range(1, KILLS + 1):
            time.sleep(rng.uniform(0.2, 1.5))
            server.kill()
            writer.pause()
            server.start()
            n_segments = check_segments(server.data_dir)
            n_ok, n_failed, n_present = check_batches(server, writer, decided, absent, round_no)
            print(
                f"round {round_no}: {n_ok} ok, {n_failed} failed, {n_present} present, "
                f"{n_segments} segments, {time.monotonic() - started:.1f}s"
            )
            writer.resume()
        writer.pause()
    finally:
        writer.stop_requested.set()
        writer.resume()
        writer.join(60)
    if writer.crash:
        raise writer.crash

    with writer.lock:
        n_ok = len(writer.ok)
    assert n_ok >= KILLS, f"writer got only {n_ok} batches acknowledged; last error: {writer.last_error}"
    # flushes must have happened during the run, so recovery was exercised
    # across segments and WAL together
    assert manifest_files(server.data_dir), "no segment was ever flushed during the run"

    # A clean flush and a graceful restart keep every row exactly once.
    server.flush()
    check_segments(server.data_dir)
    server.restart()
    check_batches(server, writer, decided, absent, KILLS + 1)
    assert server.client.count() == ROWS * len(decided)
