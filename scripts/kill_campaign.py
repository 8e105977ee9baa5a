"""A long SIGKILL campaign (issue 14, test 6; not in CI): the server is
killed again and again while, at once,

- a writer streams batches of samples (each batch its own tag, ROWS rows;
  the writer of tests/python/test_crash.py),
- a maintainer runs `lotline flush`, `lotline compact` and `lotline
  restamp` against it at random (background compaction is on as well, and
  flushes are frequent: small flush thresholds),
- an editor makes versioned writes: `UPDATE lots SET quantity = k` with a
  reason, k counting up, remembering the last k acknowledged.

After every restart: every acknowledged batch has exactly ROWS rows, a
failed one 0 or ROWS and never changes its mind later, no row was never
sent, every segment the manifest lists is readable Parquet, the lot's
quantity is at least the last acknowledged k and at most the last sent, and
every 50 kills (and at the end) `lotline verify-audit` passes on the
directory. The figures go to stdout as JSON at the end.

usage: python scripts/kill_campaign.py --lotline target/release/lotline [--kills 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

import pyarrow.parquet as pq  # noqa: E402

from lotline_testlib import Client, LotlineServer, manifest_files  # noqa: E402
from test_crash import ROWS, Writer, check_batches  # noqa: E402


def check_new_segments(data_dir: Path, checked: set[str]) -> int:
    """Every segment the manifest lists exists; those not read before are
    read whole (segments never change once written, so each is read once:
    the campaign does not slow down as the directory grows)."""
    files = manifest_files(data_dir)
    for rel in files:
        path = data_dir / rel
        assert path.is_file(), f"manifest.json lists {rel} but it does not exist"
        if rel not in checked:
            assert pq.read_table(path).num_rows > 0, f"segment {rel} has no rows"
            checked.add(rel)
    return len(files)


class Editor(threading.Thread):
    """Versioned writes of one lot's quantity, 1, 2, 3, ..."""

    def __init__(self, server: LotlineServer):
        super().__init__(name="editor", daemon=True)
        self.server = server
        self.sent = 0
        self.acknowledged = 0
        self.stop_requested = threading.Event()
        self.hold = threading.Event()

    def run(self):
        conn = None
        while not self.stop_requested.is_set():
            if self.hold.is_set():
                if conn is not None:
                    conn.close()
                    conn = None
                time.sleep(0.01)
                continue
            try:
                if conn is None:
                    conn = Client(self.server.uri, self.server.password)
                    conn.set_reason("kill campaign: quantity counted")
                k = self.sent + 1
                self.sent = k
                conn.execute(f"UPDATE lots SET quantity = {k} WHERE id = 'KC-1'")
                self.acknowledged = k
            except Exception:
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
            time.sleep(0.02)


def maintain(server: LotlineServer, rng: random.Random, stop: threading.Event, counts: dict):
    """Runs flush, compact and restamp through the CLI at random."""
    while not stop.is_set():
        time.sleep(rng.uniform(0.1, 0.6))
        what = rng.choice(["flush", "compact", "restamp"])
        try:
            subprocess.run(
                [str(server.binary), what, "--endpoint", server.uri, "--password", server.password],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
            counts[what] = counts.get(what, 0) + 1
        except (subprocess.TimeoutExpired, OSError):
            pass


def verify_audit(server: LotlineServer) -> None:
    result = subprocess.run([str(server.binary), "verify-audit", "--data-dir", str(server.data_dir)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"verify-audit failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lotline", type=Path, required=True)
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="lotline-kills-"))
    server = LotlineServer(args.lotline.resolve(), work / "data", work / "lotline.log",
                           args=["--flush-rows", "20000", "--flush-age-secs", "1"], background_compaction=True)
    server.start()
    setup = Client(server.uri, server.password)
    setup.execute("INSERT INTO lots (id, material, quantity, status) VALUES ('KC-1', 'dough', 0, 'released')")
    setup.close()
    writer, editor = Writer(server), Editor(server)
    stop_maintaining = threading.Event()
    maintenance: dict[str, int] = {}
    maintainer = threading.Thread(target=maintain, args=(server, random.Random(args.seed + 1), stop_maintaining,
                                                         maintenance), daemon=True)
    writer.start()
    editor.start()
    maintainer.start()
    decided: set[int] = set()
    absent: set[int] = set()
    started = time.monotonic()
    audits = 0
    checked: set[str] = set()
    try:
        for round_no in range(1, args.kills + 1):
            time.sleep(rng.uniform(0.2, 1.5))
            server.kill()
            editor.hold.set()
            writer.pause()
            acknowledged, sent = editor.acknowledged, editor.sent
            server.start()
            segments = check_new_segments(server.data_dir, checked)
            n_ok, n_failed, n_present = check_batches(server, writer, decided, absent, round_no)
            quantity = server.client.scalar("SELECT quantity FROM lots WHERE id = 'KC-1'")
            assert acknowledged <= quantity <= sent, \
                f"round {round_no}: quantity {quantity}, acknowledged {acknowledged}, sent {sent}"
            editor.sent = editor.acknowledged = int(quantity)
            if round_no % 50 == 0:
                verify_audit(server)
                audits += 1
            print(f"kill {round_no}: {n_ok} batches acknowledged, {n_failed} failed, {n_present} present, "
                  f"{segments} segments, quantity {quantity}, {time.monotonic() - started:.0f} s", flush=True)
            writer.resume()
            editor.hold.clear()
    finally:
        stop_maintaining.set()
        editor.stop_requested.set()
        writer.stop_requested.set()
        writer.resume()
        writer.join(60)
    if writer.crash:
        raise writer.crash
    server.flush()
    server.restart()
    check_batches(server, writer, decided, absent, args.kills + 1)
    verify_audit(server)
    audits += 1
    with writer.lock:
        acknowledged = set(writer.ok)
    counts = {int(r["tag"][1:]): r["n"] for r in
              server.query("SELECT tag, count(*) AS n FROM samples GROUP BY tag").to_pylist()}
    report = {
        "kills": args.kills,
        "seed": args.seed,
        "batches_acknowledged": len(acknowledged),
        "rows_acknowledged_checked": len(acknowledged) * ROWS,
        "rows_lost": sum(max(0, ROWS - counts.get(b, 0)) for b in acknowledged),
        "rows_duplicated": sum(max(0, n - ROWS) for n in counts.values()),
        "versioned_writes_acknowledged": editor.acknowledged,
        "maintenance_runs": maintenance,
        "verify_audit_runs": audits,
        "seconds": round(time.monotonic() - started),
    }
    print(json.dumps(report, indent=2))
    server.stop()


if __name__ == "__main__":
    main()
