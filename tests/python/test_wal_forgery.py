"""The audit proves the data (issue 14): a write's audit entry carries the
SHA-256 of the WAL record that holds its rows, sealed into the chain. Here a
value in an acknowledged WAL record is rewritten with every checksum
recomputed (the record's and its group's CRC32, a valid zstd frame and Arrow
IPC stream): `verify-audit` names the file and offset, the server refuses to
start rather than serve or flush the forged rows (also when the forged group
is the last one, which is never mistaken for a torn tail), and salvage keeps
every write that verifies and drops the forged one.
"""

from __future__ import annotations

import re
import struct
import subprocess
import zlib

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pytest

from lotline_testlib import MANUAL_FLUSH, NS_PER_S, ServerDied, batch_for_tag, ns, wal_sizes

T0 = ns(2026, 7, 8, 9)
HEADER = struct.Struct("<III")
RECORD, GROUP = b"LLW1", b"LLWG"


def tag_of(k: int) -> str:
    return f"site1.area4.line2.oven{k}.zone1.temperature.pv"


def zstd_content_size(frame: bytes) -> int:
    """The decompressed size a zstd frame header declares (RFC 8878 3.1.1.1)."""
    assert frame[:4] == b"\x28\xb5\x2f\xfd", "a zstd frame"
    descriptor = frame[4]
    fcs_flag, single_segment, dict_flag = descriptor >> 6, (descriptor >> 5) & 1, descriptor & 3
    at = 5 + (0 if single_segment else 1) + [0, 1, 2, 4][dict_flag]
    size = [1 if single_segment else 0, 2, 4, 8][fcs_flag]
    assert size, "lotline's WAL frames declare their size"
    value = int.from_bytes(frame[at:at + size], "little")
    return value + 256 if size == 2 else value


def frame(magic: bytes, payload: bytes) -> bytes:
    return magic + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def records_of(payload: bytes) -> list[tuple[bytes, bytes]]:
    """(magic, payload) of each whole record in `payload`."""
    out, at = [], 0
    while at < len(payload):
        magic = payload[at:at + 4]
        length, _crc = struct.unpack_from("<II", payload, at + 4)
        out.append((magic, payload[at + 12:at + 12 + length]))
        at += 12 + length
    return out


def forge_group(path, start: int, end: int, table_id: int):
    """Multiplies every value of table `table_id`'s record in the group at
    [start, end) of WAL file `path` by 10, with every checksum made right."""
    image = path.read_bytes()
    magic, group_payload = records_of(image[start:end])[0]
    assert magic == GROUP
    inner = []
    forged = False
    for magic, payload in records_of(group_payload):
        raw = pa.decompress(payload, zstd_content_size(payload), codec="zstd", asbytes=True)
        if raw[0] == table_id:
            table = pa.ipc.open_stream(raw[1:]).read_all()
            values = pa.compute.multiply(table.column("value"), 10.0)
            table = table.set_column(table.schema.get_field_index("value"), table.schema.field("value"), values)
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            raw = raw[:1] + sink.getvalue().to_pybytes()
            payload = pa.compress(raw, codec="zstd", asbytes=True)
            forged = True
        inner.append(frame(magic, payload))
    assert forged, "the group holds a record of the table"
    path.write_bytes(image[:start] + frame(GROUP, b"".join(inner)) + image[end:])


def counts(server) -> dict[str, int]:
    rows = server.client.query("SELECT tag, count(*) AS n FROM samples GROUP BY tag").to_pylist()
    return {r["tag"]: r["n"] for r in rows}


def verify_offline(server) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(server.binary), "verify-audit", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("forged_write", [1, 2], ids=["a-middle-write", "the-last-write"])
def test_a_forged_wal_value_fails_verify_audit_and_start_up(server_factory, forged_write):
    server = server_factory(*MANUAL_FLUSH)
    spans = []
    for k in range(3):
        before = wal_sizes(server.data_dir)
        server.client.ingest(batch_for_tag(tag_of(k), 50 + k, T0 + k * 3600 * NS_PER_S, value_base=k * 100))
        grown = [(n, before.get(n, 0), s) for n, s in wal_sizes(server.data_dir).items() if s != before.get(n, 0)]
        assert len(grown) == 1, grown
        spans.append(grown[0])
    digests = server.client.query(
        "SELECT detail FROM audit_log WHERE action = 'write' AND table_name = 'samples' ORDER BY seq"
    ).column("detail").to_pylist()
    assert len(digests) == 3 and all(re.search(r" rows_sha256=[0-9a-f]{64}( |$)", d) for d in digests), digests
    samples_id = 0  # the first table of the model
    server.kill()
    clean = verify_offline(server)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    name, start, end = spans[forged_write]
    path = server.data_dir / "wal" / name
    forge_group(path, start, end, samples_id)

    verify = verify_offline(server)
    out = verify.stdout + verify.stderr
    assert verify.returncode != 0, out
    assert f"BROKEN file wal/{name}: offset {start}: group fails its audit check" in out, out
    assert "a record of table 'samples'" in out and "matches no audit entry of its group" in out, out

    forged_size = path.stat().st_size
    with pytest.raises(ServerDied):
        server.start()
    log = server.run_log()
    assert f"wal/{name} is damaged at offset {start} (group fails its audit check" in log, log[-3000:]
    assert path.stat().st_size == forged_size, "a refused start leaves the WAL as it was"

    server.args += ["--wal-recovery", "salvage"]
    server.start()
    expected = {tag_of(k): 50 + k for k in range(3) if k != forged_write}
    assert counts(server) == expected, "the forged write is dropped, never served"
    detail = server.client.scalar("SELECT detail FROM audit_log WHERE action = 'wal.salvage'")
    assert f"at offset {start} (group fails its audit check" in detail, detail
