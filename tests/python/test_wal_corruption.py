"""Corruption in the middle of the WAL is not a torn tail (issue 14).

Acknowledged writes after a damaged record must not be cut silently: the
server refuses to start and names the file and offset; `serve
--wal-recovery salvage` starts keeping every record that verifies, copies
the damaged file to wal/quarantine/, records the salvage in audit_log, and
`verify-audit` then reports the entries that are gone.
"""

from __future__ import annotations

import subprocess

import pytest

from lotline_testlib import MANUAL_FLUSH, NS_PER_S, ServerDied, batch_for_tag, ns, wal_sizes

SIZES = [1_200, 2_300, 3_400, 4_500]
T0 = ns(2024, 5, 6, 6)


def tag_of(k: int) -> str:
    return f"site1.area2.line3.press{k}.temperature.pv"


def ingest_records(server) -> list[tuple[str, int, int]]:
    """One ingest per batch; returns (WAL file, start, end) of each record."""
    spans = []
    for k, rows in enumerate(SIZES):
        before = wal_sizes(server.data_dir)
        server.client.ingest(batch_for_tag(tag_of(k), rows, T0 + k * 10**6 * NS_PER_S, value_base=k * 1000))
        grown = [(n, before.get(n, 0), s) for n, s in wal_sizes(server.data_dir).items() if s != before.get(n, 0)]
        assert len(grown) == 1, grown
        spans.append(grown[0])
    return spans


def counts(server) -> dict[str, int]:
    rows = server.client.query("SELECT tag, count(*) AS n FROM samples GROUP BY tag").to_pylist()
    return {r["tag"]: r["n"] for r in rows}


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x10]))


def test_mid_log_corruption_stops_start_up_and_salvage_keeps_what_verifies(server_factory):
    server = server_factory(*MANUAL_FLUSH)
    spans = ingest_records(server)
    server.kill()
    name, start, end = spans[1]
    path = server.data_dir / "wal" / name
    flip(path, start + (end - start) // 2)

    with pytest.raises(ServerDied):
        server.start()
    log = server.run_log()
    assert f"wal/{name} is damaged at offset {start}" in log, log[-3000:]
    assert "checksum mismatch" in log and "--wal-recovery salvage" in log, log[-3000:]
    assert "2 record(s) that verify follow it" in log, log[-3000:]
    assert path.stat().st_size == spans[-1][2], "a refused start must not change the WAL"

    server.args += ["--wal-recovery", "salvage"]
    server.start()
    expected = {tag_of(k): SIZES[k] for k in (0, 2, 3)}
    assert counts(server) == expected
    quarantined = list((server.data_dir / "wal" / "quarantine").iterdir())
    assert [q.name.split(".wal.")[0] for q in quarantined] == [name.removesuffix(".wal")]
    assert quarantined[0].stat().st_size == spans[-1][2], "the quarantine copy is the damaged file as it was"
    salvage = server.client.query(
        "SELECT actor, detail, reason FROM audit_log WHERE action = 'wal.salvage'"
    ).to_pylist()
    assert len(salvage) == 1, salvage
    assert f"wal/{name}: kept 6 record(s)" in salvage[0]["detail"], salvage
    assert f"at offset {start} (checksum mismatch)" in salvage[0]["detail"], salvage
    assert salvage[0]["reason"] == "serve --wal-recovery salvage"

    # The lost write's audit entry is gone with it: verify-audit says so.
    server.stop()
    verify = subprocess.run(
        [str(server.binary), "verify-audit", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=120,
    )
    assert verify.returncode != 0, verify.stdout + verify.stderr

    # The salvaged file is clean: a plain restart replays it, new writes
    # survive a SIGKILL, and nothing is replayed twice.
    server.args = [a for a in server.args if a not in ("--wal-recovery", "salvage")]
    server.start()
    assert counts(server) == expected
    server.client.ingest(batch_for_tag("site1.after.salvage.pv", 77, T0 + 10**8 * NS_PER_S))
    server.kill()
    server.start()
    assert counts(server) == {**expected, "site1.after.salvage.pv": 77}
