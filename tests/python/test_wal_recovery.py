"""WAL recovery: a torn or corrupt last record is cut, everything before it kept.

K batches of distinct sizes are ingested as K separate calls (one WAL record
each) with flushing disabled, the server is SIGKILLed, the last record is
damaged on disk, and the restarted server must hold exactly the first K-1
batches, say on stderr that it cut the WAL, and keep accepting writes that
survive a further crash.
"""

from __future__ import annotations

import os
import re

import pytest

from lotline_testlib import MANUAL_FLUSH, NS_PER_S, batch_for_tag, ns, wal_sizes

SIZES = [1_000, 2_500, 4_000, 7_000, 11_000]
T0 = ns(2024, 4, 2, 6)
# "cut" as a word (cut, cuts, cutting), not inside e.g. "execute"
CUT_WORD = re.compile(r"\bcut", re.IGNORECASE)
NO_FLUSH = MANUAL_FLUSH


def tag_of(k: int) -> str:
    return f"wal.batch{k}"


def ingest_batches(server):
    """Ingest the K batches; return (wal file, start, end) of the last record."""
    client = server.client
    last = None
    for k, rows in enumerate(SIZES):
        before = wal_sizes(server.data_dir)
        client.ingest(batch_for_tag(tag_of(k), rows, T0 + k * 10**6 * NS_PER_S, value_base=k * 100_000))
        after = wal_sizes(server.data_dir)
        grown = {name: (before.get(name, 0), size) for name, size in after.items() if size != before.get(name, 0)}
        assert len(grown) == 1, f"ingest #{k} should append one record to one WAL file; changes: {grown}"
        (name, (start, end)), = grown.items()
        assert end > start + 64, f"WAL record for {rows} rows is only {end - start} bytes"
        last = (server.data_dir / "wal" / name, start, end)
    assert client.count() == sum(SIZES)
    return last


def check_contents(client, expected_batches, extra=0):
    counts = {r["tag"]: r["n"] for r in client.query("SELECT tag, count(*) AS n FROM samples GROUP BY tag").to_pylist()}
    expected = {tag_of(k): SIZES[k] for k in expected_batches}
    if extra:
        expected["wal.after"] = extra
    assert counts == expected
    assert client.count() == sum(expected.values())


@pytest.mark.parametrize(
    "damage",
    ["truncate-3-bytes", "truncate-mid-record", "truncate-in-length-prefix", "flip-byte"],
)
def test_damaged_last_record_is_cut(server_factory, damage):
    server = server_factory(*NO_FLUSH)
    path, start, end = ingest_batches(server)
    server.kill()
    assert path.stat().st_size == end, "WAL file changed after the last acknowledged ingest"
    assert not list(server.data_dir.glob("tables/**/*.parquet")), "nothing should have been flushed"

    if damage == "truncate-3-bytes":
        os.truncate(path, end - 3)
    elif damage == "truncate-mid-record":
        os.truncate(path, start + (end - start) // 2)
    elif damage == "truncate-in-length-prefix":
        os.truncate(path, start + 2)
    elif damage == "flip-byte":
        offset = start + (end - start) // 2
        with open(path, "r+b") as f:
            f.seek(offset)
            b = f.read(1)
            f.seek(offset)
            f.write(bytes([b[0] ^ 0xFF]))
    else:  # pragma: no cover
        raise AssertionError(damage)

    server.start()
    check_contents(server.client, range(len(SIZES) - 1))
    log = server.run_log()
    cut_lines = [line for line in log.splitlines() if CUT_WORD.search(line)]
    assert cut_lines, f"restart after a damaged WAL tail logged no line with 'cut':\n{log[-4000:]}"
    assert any(path.name in line for line in cut_lines), f"'cut' line does not name {path.name}: {cut_lines}"
    assert any(str(start) in line for line in cut_lines), f"'cut' line does not give offset {start}: {cut_lines}"

    # New writes are accepted and survive another crash: the damaged tail
    # must really be gone, not left in front of the new records.
    server.client.ingest(batch_for_tag("wal.after", 333, T0 + 10**8 * NS_PER_S))
    check_contents(server.client, range(len(SIZES) - 1), extra=333)
    server.kill()
    server.start()
    check_contents(server.client, range(len(SIZES) - 1), extra=333)

    # and a graceful cycle with a flush keeps them too
    server.flush()
    server.restart()
    check_contents(server.client, range(len(SIZES) - 1), extra=333)


def test_intact_wal_replays_everything(server_factory):
    """Control: with no damage, a SIGKILL loses nothing."""
    server = server_factory(*NO_FLUSH)
    ingest_batches(server)
    server.kill()
    server.start()
    check_contents(server.client, range(len(SIZES)))
