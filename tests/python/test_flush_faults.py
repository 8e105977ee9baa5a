"""Flushes that keep failing never leave a writer without an answer, and a
free-space reserve refuses writes before the disk is full (issue 14).

The segment directory (`tables/`) is its own small tmpfs inside the data
directory, so the WAL keeps appending while every flush fails: full
(ENOSPC) or remounted read-only (EROFS). Writes are taken until the buffers
are full, then refused after the bounded wait with UNAVAILABLE naming the
flush error; `/health` says why; failed retries create no WAL files; once
the filesystem has room again flushes succeed on their own, writes resume,
and every acknowledged row is there once, also after a SIGKILL.

With the whole data directory on a small tmpfs and a reserve
(`--min-free-bytes`), writes are refused up front with RESOURCE_EXHAUSTED
(HTTP 507) and the figures before anything fails; the WAL never hits ENOSPC,
and writes resume by themselves once space is freed.

Needs root (mount); skipped otherwise.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from lotline_testlib import NS_PER_S, http_request, ns, samples_table, wal_files

T0 = ns(2025, 7, 1)
BATCH = 2_000
TAG = "site1.area1.line4.oven2.zone3.temperature.pv"


def mount(*args: str):
    subprocess.run(["mount", *args], check=True, capture_output=True)


def mount_tmpfs(path, size: str):
    """Mounts a tmpfs of `size` at `path`, or skips the test saying why
    (not root, or a container without the right to mount)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture
def tables_mount(tmp_path):
    data_dir = tmp_path / "data0"
    tables = data_dir / "tables"
    tables.mkdir(parents=True)
    mount_tmpfs(tables, "16m")
    yield tables
    subprocess.run(["umount", "-l", str(tables)], capture_output=True)


def fill(path):
    """Fills the filesystem at `path` to the last byte."""
    with open(path / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
        except OSError:
            pass


def rows(start: int):
    return samples_table([TAG] * BATCH, [T0 + (start + i) * NS_PER_S for i in range(BATCH)], [float(start + i) for i in range(BATCH)])


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_failing_flushes_refuse_writes_after_a_bounded_wait(server_factory, tables_mount, fault):
    server = server_factory(
        "--flush-rows", str(BATCH), "--max-buffered-rows", str(4 * BATCH),
        "--flush-age-secs", "86400", "--max-write-wait-secs", "2", "--min-free-bytes", "0",
        name="data0",
    )
    if fault == "full":
        fill(tables_mount)
    else:
        mount("-o", "remount,ro", str(tables_mount))

    acknowledged = 0
    started = time.monotonic()
    with pytest.raises(Exception) as refused:
        for _ in range(50):
            server.client.ingest(rows(acknowledged))
            acknowledged += BATCH
    took = time.monotonic() - started
    message = str(refused.value)
    assert "UNAVAILABLE" in message.upper() and "write buffers are full" in message, message
    assert "flushing has failed" in message, message
    expected_error = "No space left on device" if fault == "full" else "Read-only file system"
    assert expected_error in message, message
    assert acknowledged >= 3 * BATCH, "writes are taken until the buffers are full"
    assert took < 30, f"refused only after {took:.0f} s"

    health = http_request(f"{server.http_url}/health")
    assert health.status == 503 and health.json()["status"] == "fail", health
    assert "flushing has failed" in health.json()["message"], health
    wal_count = len(wal_files(server.data_dir))
    time.sleep(2)
    assert len(wal_files(server.data_dir)) == wal_count <= 3, "failed retries create no WAL files"
    assert server.client.count(f"tag = '{TAG}'") == acknowledged, "queries keep working"

    # Room again: flushes succeed by themselves (backoff stays short here).
    if fault == "full":
        (tables_mount / "filler").unlink()
    else:
        mount("-o", "remount,rw", str(tables_mount))
    deadline = time.monotonic() + 30
    while http_request(f"{server.http_url}/health").json()["status"] != "pass":
        assert time.monotonic() < deadline, http_request(f"{server.http_url}/health").json()
        time.sleep(0.2)
    server.client.ingest(rows(acknowledged))
    acknowledged += BATCH
    assert server.client.count(f"tag = '{TAG}'") == acknowledged
    assert list(tables_mount.glob("samples/**/*.parquet")), "the buffered rows were flushed"

    server.kill()
    server.start()
    assert server.client.count(f"tag = '{TAG}'") == acknowledged, "every acknowledged row, once"
    assert server.client.query(f"SELECT count(DISTINCT ts) AS n FROM samples WHERE tag = '{TAG}'").column(0)[0].as_py() == acknowledged


@pytest.fixture
def data_mount(tmp_path):
    data_dir = tmp_path / "data0"
    data_dir.mkdir()
    mount_tmpfs(data_dir, "48m")
    yield data_dir
    subprocess.run(["umount", "-l", str(data_dir)], capture_output=True)


def test_a_free_space_reserve_refuses_writes_before_the_disk_fills(server_factory, data_mount):
    reserve = 16 << 20
    server = server_factory(
        *("--flush-rows", "1000000000", "--flush-age-secs", "86400"),
        "--min-free-bytes", str(reserve), name="data0",
    )
    ballast = data_mount / "ballast"
    ballast.write_bytes(b"\x5a" * (30 << 20))
    line_protocol = "\n".join(
        f"{TAG},equipment=line4.oven2 value={i}.5 {T0 + i * NS_PER_S}" for i in range(BATCH)
    ).encode()

    acknowledged = 0
    with pytest.raises(Exception) as refused:
        for _ in range(2000):
            server.client.ingest(rows(acknowledged))
            acknowledged += BATCH
    message = str(refused.value)
    # ADBC names the gRPC code in parentheses (and files it under INTERNAL).
    assert "ResourceExhausted" in message or "RESOURCE_EXHAUSTED" in message, message
    assert f"below the reserve of {reserve} bytes" in message and "--min-free-bytes" in message, message
    assert acknowledged > 0
    reply = http_request(f"{server.http_url}/api/v2/write?bucket=plant&precision=ns", "POST", line_protocol,
                         {"Authorization": f"Token admin:{server.password}"})
    assert reply.status == 507, reply
    health = http_request(f"{server.http_url}/health")
    assert health.status == 503 and "below the reserve" in health.json()["message"], health
    assert server.client.count(f"tag = '{TAG}'") == acknowledged, "queries keep working"
    assert "stopped" not in http_request(f"{server.http_url}/health").json()["message"], "the WAL never failed"

    ballast.unlink()
    server.client.ingest(rows(acknowledged))
    acknowledged += BATCH
    assert http_request(f"{server.http_url}/health").json()["status"] == "pass"
    server.kill()
    server.start()
    assert server.client.count(f"tag = '{TAG}'") == acknowledged, "every acknowledged row, once"
