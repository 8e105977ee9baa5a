"""A WAL that fails is fail-stop: the request in flight is refused (never
acknowledged), every later write is refused with UNAVAILABLE and the reason
until a restart, no retry creates WAL files, `/health` answers 503 saying
why, queries keep working, and after the cause is fixed a restart has every
acknowledged row exactly once.

The fault is real: the next WAL file the server will open is a symbolic link
to /dev/full, so its first append fails with ENOSPC, as on a full disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lotline_testlib import MANUAL_FLUSH, NS_PER_S, http_request, ns, samples_table, wal_files

T0 = ns(2025, 6, 1)
TAG = "faults.acked"


def rows(tag: str, start: int, n: int):
    return samples_table([tag] * n, [T0 + (start + i) * NS_PER_S for i in range(n)], [float(start + i) for i in range(n)])


def test_a_failed_wal_append_stops_writes_until_restart(server_factory):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    server = server_factory(*MANUAL_FLUSH)
    server.client.ingest(rows(TAG, 0, 10))
    current = max(int(p.stem) for p in wal_files(server.data_dir))
    trap = server.data_dir / "wal" / f"{current + 1:020}.wal"
    os.symlink("/dev/full", trap)
    server.flush()  # rotates onto the trap

    with pytest.raises(Exception) as err:
        server.client.ingest(rows(TAG, 10, 5))
    assert "No space left on device" in str(err.value) or "os error 28" in str(err.value), err.value
    with pytest.raises(Exception) as err:
        server.client.ingest(rows(TAG, 20, 5))
    message = str(err.value)
    assert "writes are stopped" in message and "UNAVAILABLE" in message.upper(), message

    health = http_request(f"{server.http_url}/health")
    assert health.status == 503 and health.json()["status"] == "fail", health
    assert "writes stopped" in health.json()["message"], health
    files_before = len(list((server.data_dir / "wal").iterdir()))
    for _ in range(3):
        with pytest.raises(Exception):
            server.flush()
    assert len(list((server.data_dir / "wal").iterdir())) == files_before, "no WAL files from failed retries"
    assert server.client.count(f"tag = '{TAG}'") == 10, "queries keep working"

    server.kill()
    trap.unlink()
    server.start()
    assert server.client.count(f"tag = '{TAG}'") == 10, "every acknowledged row, once"
    server.client.ingest(rows(TAG, 30, 5))
    assert server.client.count(f"tag = '{TAG}'") == 15
    assert http_request(f"{server.http_url}/health").json()["status"] == "pass"
