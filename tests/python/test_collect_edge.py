"""`lotline collect` at the edge: store-and-forward (issue 16, test 3).

The edge collector polls a pymodbus device while the server is down: its
samples wait in the queue on disk. The server starts: every queued sample
arrives, in order, once. The collector is SIGKILLed and restarted mid-way:
nothing it had queued is lost and nothing is written twice (each queued
batch carries a request id; a batch resent after a lost acknowledgement is
not written again).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest

from lotline_testlib import free_port
from test_collectors_modbus import Peer, eventually, peer  # noqa: F401  (peer is a fixture)

TAG = "site1.area1.line2.press1.platen.temperature"
POLL_MS = 50


def mapping(port: int) -> str:
    return f"""
[[collector]]
name = "edge-press1"
kind = "modbus"
endpoint = "127.0.0.1:{port}"
poll_interval_ms = {POLL_MS}
equipment = "site1.area1.line2.press1"

[[collector.map]]
source = "holding:0:f32:abcd"
tag = "{TAG}"
"""


class Edge:
    def __init__(self, binary, server, plant, queue, log):
        self.cmd = [
            str(binary), "collect", "--collectors", str(plant), "--buffer-dir", str(queue),
            "--endpoint", f"grpc://127.0.0.1:{server.port}", "--password", server.password,
        ]
        self.log, self.proc = log, None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=log, cwd=self.log.parent)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        return self.proc.returncode


def samples(server) -> list[int]:
    table = server.query(f"SELECT CAST(ts AS BIGINT) AS ts FROM samples WHERE tag = '{TAG}' ORDER BY ts")
    return table.column("ts").to_pylist()


def test_the_edge_queues_while_the_server_is_down_and_forwards_once(server_factory, peer, tmp_path):  # noqa: F811
    plant = tmp_path / "plant.toml"
    plant.write_text(mapping(peer.port))
    server = server_factory(start=False)
    server.port = free_port()
    queue = tmp_path / "queue"
    edge = Edge(server.binary, server, plant, queue, tmp_path / "edge.log")
    edge.start()
    try:
        # The server is down: batches pile up in the queue on disk.
        eventually(lambda: len(list(queue.glob("*.queue"))) > 0 and sum(f.stat().st_size for f in queue.glob("*.queue")) > 4000,
                   what="queued batches")
        time.sleep(1.0)
        assert edge.proc.poll() is None, edge.log.read_text()
        before_server = time.time_ns()

        server.start()
        eventually(lambda: samples(server) and samples(server)[-1] > before_server, what="forwarded samples")
        first = samples(server)
        assert first[0] < before_server, "samples polled while the server was down arrived"

        # Killed mid-way and restarted: the queue resumes, no duplicates.
        edge.kill()
        edge.start()
        killed_at = time.time_ns()
        eventually(lambda: samples(server)[-1] > killed_at + 500_000_000, what="samples after the restart")
        eventually(lambda: "tag(s) of the mapping into tags" in edge.log.read_text(), timeout=30,
                   what="the tags upsert from the edge")
        assert edge.stop() == 0, edge.log.read_text()
    finally:
        edge.kill()

    # The edge wrote the mapped tag's metadata into the server's tags.
    tags = server.query(f"SELECT equipment FROM tags WHERE tag = '{TAG}'").to_pylist()
    assert tags == [{"equipment": "site1.area1.line2.press1"}], tags
    reasons = server.query(f"SELECT reason FROM tags_history WHERE tag = '{TAG}'").to_pylist()
    assert reasons == [{"reason": f"collector mapping {plant}"}], reasons
    ts = samples(server)
    assert len(ts) == len(set(ts)), "a sample was written twice"
    assert ts == sorted(ts)
    # Every poll of the edge's life is there: no gap longer than a few polls
    # except the moment the edge itself was dead.
    gaps = sorted((b - a for a, b in zip(ts, ts[1:])), reverse=True)
    assert gaps[1] < 20 * POLL_MS * 1_000_000, gaps[:5]
    log = edge.log.read_text()
    assert "server unreachable, samples wait in the queue" in log, log
    assert not re.search(r"\((?!0 )\d+ dropped", log), log
