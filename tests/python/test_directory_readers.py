"""Programs that read the data directory themselves never fail mid-query
(issue 14): a segment file replaced by compaction stays on disk for the
grace period (`--retired-file-grace-secs`, default 300 s), so DuckDB reading
the files `manifest.json` listed when its query began finishes, with the
same answer, while lotline compacts underneath it."""

from __future__ import annotations

import threading
import time

import duckdb

from lotline_testlib import MANUAL_FLUSH, manifest_files
from test_compaction import POLICY, compact, fill


def duckdb_count(data_dir, files) -> int:
    paths = [str(data_dir / f) for f in files if f.startswith("tables/samples/")]
    return duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [paths]).fetchone()[0]


def test_duckdb_over_the_directory_never_fails_through_a_compaction(server_factory):
    server = server_factory(*MANUAL_FLUSH, *POLICY)
    rows = fill(server)
    listed_before = manifest_files(server.data_dir)
    assert duckdb_count(server.data_dir, listed_before) == rows

    failures: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def reader():
        # Lists the files, waits a moment (a query plans, then reads), reads.
        while not stop.is_set():
            try:
                files = manifest_files(server.data_dir)
                time.sleep(0.05)
                counts.append(duckdb_count(server.data_dir, files))
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                failures.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        report = compact(server)["tables"]["samples"]
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert report["segments_merged"] > 0
    assert not failures, failures[0]
    assert counts and set(counts) == {rows}, set(counts)

    # Nothing reads the replaced files any more, yet they stay for the grace
    # period: a reader that listed them before the compaction still finishes.
    assert not set(listed_before) & set(manifest_files(server.data_dir))
    assert all((server.data_dir / f).exists() for f in listed_before)
    assert duckdb_count(server.data_dir, listed_before) == rows
