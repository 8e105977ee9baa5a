"""The hash-chained audit trail (`audit_log`), `lotline verify-audit` and
`verify_audit()` (issue 6, test 5).

* writes through every interface (Flight SQL ingest, INSERT, gRPC, HTTP line
  protocol), refused logins and user changes each append one entry naming
  the actor, table and row count; clients cannot write `audit_log`;
* untouched data verifies; one changed audit entry is named by its seq, one
  flipped byte in a sample segment by its path, by the CLI and by SQL;
* after SIGKILLs with writes in flight the chain verifies and holds exactly
  one entry per write whose rows are present.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from lotline_testlib import (
    ADMIN_USER,
    DEFAULT_PASSWORD,
    MANUAL_FLUSH,
    NS_PER_S,
    error_text,
    flight_client,
    http_request,
    manifest_files,
    ns,
    read_manifest,
    samples_table,
)
from test_grpc_ingest import Api, pb, request, sample  # noqa: F401 (pb is a fixture)
from test_crash import ROWS, Writer

T0 = ns(2026, 5, 1, 6, 0, 0)
REASON = "x-lotline-reason"


def verify_cli(server, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(server.binary), "verify-audit", "--data-dir", str(server.data_dir), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


def entries(server, where: str = "") -> list[dict]:
    sql = "SELECT seq, actor, action, table_name, row_count, detail, reason FROM audit_log"
    if where:
        sql += f" WHERE {where}"
    return server.query(sql + " ORDER BY seq").to_pylist()


def line_write(server, body: str, user=ADMIN_USER, password=DEFAULT_PASSWORD, headers=None):
    hdrs = {"Authorization": f"Token {user}:{password}", **(headers or {})}
    return http_request(f"{server.http_url}/api/v2/write", "POST", body.encode(), hdrs)


@pytest.fixture
def server(server_factory):
    return server_factory(*MANUAL_FLUSH)


def test_every_interface_and_event_is_audited(server, pb):  # noqa: F811
    server.client.ingest(samples_table(["a.flight"] * 3, [T0 + i * NS_PER_S for i in range(3)], [1.0, 2.0, 3.0]))
    server.client.execute(
        "INSERT INTO samples (tag, ts, value, quality) VALUES "
        "('a.sql', TIMESTAMP '2026-05-01T06:00:00Z', 1.0, 0), ('a.sql', TIMESTAMP '2026-05-01T06:00:01Z', 2.0, 0)"
    )
    reply = line_write(server, f"m,tag=x v=1 {T0}\nm,tag=x v=2 {T0 + NS_PER_S}\n", headers={REASON: "calibration"})
    assert reply.status == 204, reply
    api = Api(pb, server)
    try:
        api.write(
            [request(pb, [sample(pb, "a.grpc", T0 + i, 1.0) for i in range(4)])],
            metadata=api.auth + [(REASON, "line 2 restart")],
        )
    finally:
        api.close()

    # Refused logins: HTTP, Flight handshake, gRPC Basic.
    assert line_write(server, f"m v=1 {T0}\n", password="wrong-password").status == 401
    client = flight_client(server.port)
    try:
        with pytest.raises(flight.FlightError):
            client.authenticate_basic_token("mallory", "not-the-password", flight.FlightCallOptions(timeout=10))
    finally:
        client.close()

    out = server.cli("user", "add", "auditee", "--role", "writer", "--password-stdin", input="auditee-Pass-1\n")
    assert out.returncode == 0, out.stderr
    out = server.cli("user", "remove", "auditee")
    assert out.returncode == 0, out.stderr

    # Clients cannot write the audit trail, by ingest, INSERT, UPDATE or
    # DELETE; nothing suggests they could write it some other way.
    forged = server.query("SELECT * FROM audit_log LIMIT 1")
    with pytest.raises(Exception) as err:
        server.client.ingest(forged, table="audit_log")
    assert "written by lotline only" in error_text(err.value)
    for sql in (
        "INSERT INTO audit_log SELECT * FROM audit_log",
        "UPDATE audit_log SET actor = 'nobody'",
        "DELETE FROM audit_log WHERE seq = 1",
    ):
        with pytest.raises(Exception) as err:
            server.client.execute(sql)
        text = error_text(err.value)
        assert "written by lotline only" in text and "correction" not in text, (sql, text)

    rows = entries(server)
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1)), "seq is gap-free from 1"
    writes = [(r["actor"], r["table_name"], r["row_count"], r["detail"], r["reason"]) for r in rows if r["action"] == "write"]
    # Each write names the SHA-256 of its rows' WAL record (test_wal_forgery.py).
    assert all(re.fullmatch(r"interface=\S+ rows_sha256=[0-9a-f]{64}", w[3]) for w in writes), writes
    writes = [(a, t, n, d.split(" rows_sha256=")[0], why) for a, t, n, d, why in writes]
    assert writes == [
        ("admin", "samples", 3, "interface=flight_sql.ingest", None),
        ("admin", "samples", 2, "interface=flight_sql.dml", None),
        ("admin", "samples", 2, "interface=http.line_protocol", "calibration"),
        ("admin", "samples", 4, "interface=grpc.ingest", "line 2 restart"),
    ]
    refused = [(r["actor"], r["detail"]) for r in rows if r["action"] == "login.refused"]
    assert ("admin", "interface=http; invalid user name or password") in refused
    assert ("mallory", "interface=flight_sql.handshake; invalid user name or password") in refused
    users = [(r["actor"], r["action"], r["detail"]) for r in rows if r["action"].startswith("user.")]
    assert users == [("admin", "user.add", "user=auditee role=writer"), ("admin", "user.remove", "user=auditee")]

    # Untouched: the CLI (beside the running server) and SQL both pass; the
    # flush added one entry, the segments it wrote.
    server.flush()
    out = verify_cli(server)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith(f"audit OK: {len(rows) + 1} audit entries checked"), out.stdout
    summary = server.query("SELECT * FROM verify_audit()").to_pylist()
    assert summary[0]["check"] == "summary" and summary[0]["ok"], summary
    assert summary[0]["entries_checked"] == len(rows) + 1


def rewrite_audit_entry(path: Path, seq: int):
    """Changes row_count of entry `seq` in an audit_log segment, keeping the schema."""
    table = pq.read_table(path)
    seqs = table.column("seq").to_pylist()
    i = seqs.index(seq)
    counts = table.column("row_count").to_pylist()
    counts[i] = (counts[i] or 0) + 1
    table = table.set_column(table.schema.get_field_index("row_count"), table.schema.field("row_count"),
                             pa.array(counts, pa.uint64()))
    pq.write_table(table, path)


def flip_byte(path: Path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def set_manifest_hash(data_dir: Path, rel: str, sha: str):
    manifest = read_manifest(data_dir)
    for segs in manifest["tables"].values():
        for seg in segs:
            if seg["file"] == rel:
                seg["sha256"] = sha
    (data_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))


def sql_findings(server) -> list[dict]:
    return server.query("SELECT check, ok, seq, file FROM verify_audit()").to_pylist()


def test_tampering_is_named_exactly(server):
    for i in range(5):
        server.client.ingest(samples_table([f"t{i}"] * 10, [T0 + k * NS_PER_S for k in range(10)], [float(k) for k in range(10)]))
    server.flush()
    server.stop()
    data_dir = server.data_dir
    # The first audit segment holds the 5 writes; the second, written by the
    # shutdown flush, the first flush's segment lineage entry.
    audit_rel, _ = manifest_files(data_dir, "audit_log")
    [sample_rel] = manifest_files(data_dir, "samples")
    audit_path, sample_path = data_dir / audit_rel, data_dir / sample_rel
    original_audit, original_sample = audit_path.read_bytes(), sample_path.read_bytes()
    original_audit_sha = read_manifest(data_dir)["tables"]["audit_log"][0]["sha256"]

    out = verify_cli(server)
    assert out.returncode == 0 and "audit OK: 7 audit entries checked, 3 segment files checked" in out.stdout, out.stdout

    # 1. One audit entry changed (row_count of seq 3); the file's hash in the
    #    manifest is "fixed" too, so only the chain can tell: the entry, and
    #    the hash the lineage entry of the flush recorded for the file.
    rewrite_audit_entry(audit_path, 3)
    set_manifest_hash(data_dir, audit_rel, hashlib.sha256(audit_path.read_bytes()).hexdigest())
    out = verify_cli(server)
    assert out.returncode != 0, out.stdout
    assert "BROKEN entry seq 3:" in out.stdout and "BROKEN file" not in out.stdout, out.stdout
    assert f"BROKEN lineage {audit_rel}: sha256" in out.stdout, out.stdout
    server.start()
    found = sql_findings(server)
    assert found[0]["check"] == "summary" and not found[0]["ok"] and found[0]["seq"] == 3, found
    assert [(f["check"], f["seq"], f["file"]) for f in found[1:]] == [("chain", 3, None), ("lineage", None, audit_rel)], found
    server.stop()

    # ... and without fixing the manifest, the file is named as well.
    # (The server's shutdown flushes rewrote the manifest: restore just the hash.)
    set_manifest_hash(data_dir, audit_rel, original_audit_sha)
    out = verify_cli(server)
    assert "BROKEN entry seq 3:" in out.stdout and f"BROKEN file {audit_rel}:" in out.stdout, out.stdout
    audit_path.write_bytes(original_audit)

    # 2. One byte flipped in the sample segment: exactly that file, no entry.
    flip_byte(sample_path)
    out = verify_cli(server, "--json")
    assert out.returncode != 0
    report = json.loads(out.stdout)
    assert report["first_broken_seq"] is None, report
    assert [f["file"] for f in report["bad_files"]] == [sample_rel], report
    server.start()
    found = sql_findings(server)
    assert [(f["check"], f["file"]) for f in found[1:]] == [("segment", sample_rel)], found
    assert found[0]["file"] == sample_rel and found[0]["seq"] is None and not found[0]["ok"]
    server.stop()

    sample_path.write_bytes(original_sample)
    out = verify_cli(server)
    assert out.returncode == 0, out.stdout


def test_chain_holds_exactly_the_writes_after_sigkill(server_factory):
    server = server_factory("--flush-rows", "5000")
    writer = Writer(server)
    writer.start()
    try:
        for _ in range(3):
            time.sleep(1.0)
            server.kill()
            writer.pause()
            server.start()
            # Beside the running server, while nothing writes.
            out = verify_cli(server)
            assert out.returncode == 0, out.stdout + out.stderr
            writer.resume()
        writer.pause()
    finally:
        writer.stop_requested.set()
        writer.resume()
        writer.join(60)
    if writer.crash:
        raise writer.crash
    with writer.lock:
        ok = set(writer.ok)
    present = {int(r["tag"][1:]) for r in server.query("SELECT DISTINCT tag FROM samples").to_pylist()}
    assert ok <= present
    writes = server.query(
        "SELECT count(*) AS n, sum(row_count) AS rows, min(row_count) AS lo, max(row_count) AS hi "
        "FROM audit_log WHERE action = 'write' AND table_name = 'samples'"
    ).to_pylist()[0]
    # One entry per batch whose rows survived (acknowledged or not), none for any other.
    assert writes["n"] == len(present) and writes["lo"] == writes["hi"] == ROWS, (writes, len(present))
    assert writes["rows"] == server.client.count()
    n, top = server.query("SELECT count(*) AS n, max(seq) AS top FROM audit_log").to_pylist()[0].values()
    assert n == top, "seq is gap-free"
    found = sql_findings(server)
    assert found[0]["ok"], found


def user_entries(server) -> list[tuple[str, str, str]]:
    return [(r["actor"], r["action"], r["detail"]) for r in entries(server, "action LIKE 'user.%'")]


def user_names(server) -> set[str]:
    out = server.cli("user", "list", "--json")
    assert out.returncode == 0, out.stderr
    return {u["name"] for u in json.loads(out.stdout)["users"]}


def test_user_changes_are_audited_before_they_take_effect(server_factory, monkeypatch):
    server = server_factory(*MANUAL_FLUSH)
    for args, stdin in (
        (("add", "ursula", "--role", "reader", "--password-stdin"), "ursula-Pass-1\n"),
        (("passwd", "ursula", "--password-stdin"), "ursula-Pass-2\n"),
        (("remove", "ursula"), None),
    ):
        out = server.cli("user", *args, input=stdin)
        assert out.returncode == 0, out.stderr
    assert user_entries(server) == [
        (ADMIN_USER, "user.add", "user=ursula role=reader"),
        (ADMIN_USER, "user.passwd", "user=ursula"),
        (ADMIN_USER, "user.remove", "user=ursula"),
    ]

    # A crash after the entry is durable and before users.json is saved (a
    # debug-build hook aborts there): the entry survives, the change does not
    # take effect; no crash point leaves a change without its entry.
    server.stop()
    monkeypatch.setenv("LOTLINE_TEST_ABORT_AT", "user-change-recorded")
    server.start()
    out = server.cli("user", "add", "crashy", "--role", "writer", "--password-stdin", input="crashy-Pass-1\n")
    assert out.returncode != 0, out.stdout
    assert server.proc.wait(timeout=30) != 0
    server.kill()  # already dead: marks the exit expected and drops stale clients
    assert "LOTLINE_TEST_ABORT_AT=user-change-recorded: aborting" in server.run_log()
    monkeypatch.delenv("LOTLINE_TEST_ABORT_AT")
    server.start()
    assert user_names(server) == {ADMIN_USER}
    assert user_entries(server)[-1] == (ADMIN_USER, "user.add", "user=crashy role=writer")
    # The change can be made again, with an entry of its own.
    out = server.cli("user", "add", "crashy", "--role", "writer", "--password-stdin", input="crashy-Pass-1\n")
    assert out.returncode == 0, out.stderr
    assert user_names(server) == {ADMIN_USER, "crashy"}
    assert [e[1] for e in user_entries(server)[-2:]] == ["user.add", "user.add"]


# ---------------------------------------------------------------------------
# segment lineage
# ---------------------------------------------------------------------------

DAY = 24 * 3600 * NS_PER_S


def lineage_entries(server) -> list[dict]:
    rows = entries(server, "action = 'segments'")
    for r in rows:
        assert r["actor"] == "lotline", r
    return [dict(json.loads(r["detail"]), seq=r["seq"]) for r in rows]


def live_segments(data_dir: Path) -> dict[str, str]:
    return {s["file"]: s["sha256"] for segs in read_manifest(data_dir)["tables"].values() for s in segs}


def remove_from_manifest(data_dir: Path, rel: str):
    manifest = read_manifest(data_dir)
    for table, segs in manifest["tables"].items():
        manifest["tables"][table] = [s for s in segs if s["file"] != rel]
    (data_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_segment_lineage_names_deleted_and_unrecorded_segments(server_factory):
    server = server_factory(*MANUAL_FLUSH)
    # Two days: two samples segments in one flush.
    server.client.ingest(samples_table(["l.a"] * 3 + ["l.b"] * 3, [T0 + i * NS_PER_S for i in range(3)] + [T0 + DAY + i for i in range(3)], [1.0] * 6))
    server.flush()
    live = live_segments(server.data_dir)
    [flush] = lineage_entries(server)
    assert flush["action"] == "flush" and flush["removed"] == []
    assert {a["file"]: a["sha256"] for a in flush["added"]} == live, "every file of the flush, with its hash"
    assert len([f for f in live if "/samples/" in f]) == 2
    server.stop()
    out = verify_cli(server)
    assert out.returncode == 0, out.stdout + out.stderr

    # A samples segment deleted together with its manifest entry: the chain still has it.
    data_dir = server.data_dir
    gone = sorted(f for f in live if "/samples/" in f)[0]
    (data_dir / gone).unlink()
    remove_from_manifest(data_dir, gone)
    out = verify_cli(server)
    assert out.returncode != 0, out.stdout
    assert f"BROKEN lineage {gone}: added by audit entry seq {flush['seq']}, but not live and removed by no later entry" in out.stdout, out.stdout
    assert "BROKEN file" not in out.stdout and "BROKEN entry" not in out.stdout, out.stdout

    # A segment slipped in with a manifest entry (and a right hash): no entry added it.
    kept = sorted(f for f in live if "/samples/" in f)[1]
    foreign = str(Path(kept).with_name("9999999999999999.parquet"))
    (data_dir / foreign).write_bytes((data_dir / kept).read_bytes())
    manifest = read_manifest(data_dir)
    [entry] = [dict(s) for s in manifest["tables"]["samples"] if s["file"] == kept]
    manifest["tables"]["samples"].append(dict(entry, file=foreign, id=9999999999999999))
    (data_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    report = json.loads(verify_cli(server, "--json").stdout)
    assert sorted((f["file"], f["reason"].split(",")[0]) for f in report["lineage"]) == sorted(
        [(gone, f"added by audit entry seq {flush['seq']}"), (foreign, "live in the manifest")]
    ), report
    assert report["bad_files"] == [], report


def test_rows_deleted_while_stopped_are_reported_as_lost(server_factory):
    """A segment deleted with its manifest entry while the server is stopped:
    the start records the difference, names the rows as lost (nothing
    replaced them, unlike a compaction cut short), and verification fails on
    it from then on, online and offline."""
    server = server_factory(*MANUAL_FLUSH)
    server.client.ingest(samples_table(["lost.a"] * 3 + ["lost.b"] * 4, [T0 + i * NS_PER_S for i in range(3)] + [T0 + DAY + i for i in range(4)], [1.0] * 7))
    server.flush()
    [flush] = lineage_entries(server)
    rows = {a["file"]: a["rows"] for a in flush["added"]}
    gone = sorted(f for f in rows if "/samples/" in f)[0]
    assert rows[gone] == 3, flush
    server.stop()
    (server.data_dir / gone).unlink()
    remove_from_manifest(server.data_dir, gone)

    server.start()
    assert "rows lost between the last stop and this start" in server.log_text()
    [recovered] = [e for e in lineage_entries(server) if e["action"] == "recovered at start"]
    assert recovered["removed"] == [gone] and recovered["lost"] == [{"file": gone, "rows": 3}], recovered
    assert server.client.count() == 4, "the server serves what is left"
    found = [f for f in sql_findings(server) if not f["ok"] and f["check"] != "summary"]
    assert [(f["check"], f["file"]) for f in found] == [("lineage", gone)], found
    server.stop()
    out = verify_cli(server)
    assert out.returncode != 0, out.stdout
    assert f"BROKEN lineage {gone}: rows lost between a stop and a start: its 3 row(s) of table 'samples'" in out.stdout, out.stdout
    assert f"recorded at start by audit entry seq {recovered['seq']}" in out.stdout, out.stdout


def test_a_crash_between_manifest_and_entry_is_recorded_at_start(server_factory, monkeypatch):
    server = server_factory(*MANUAL_FLUSH)
    server.client.ingest(samples_table(["c.a"] * 3, [T0 + i * NS_PER_S for i in range(3)], [1.0] * 3))
    server.stop()
    # The shutdown flush recorded its segments; the next flush dies after its
    # manifest commit, before its entry (a debug-build hook aborts there).
    monkeypatch.setenv("LOTLINE_TEST_ABORT_AT", "segments-committed")
    server.start()
    server.client.ingest(samples_table(["c.b"] * 3, [T0 + i * NS_PER_S for i in range(3)], [2.0] * 3))
    with pytest.raises(Exception):
        server.flush()
    assert server.proc.wait(timeout=30) != 0
    server.kill()  # already dead: marks the exit expected and drops stale clients
    assert "LOTLINE_TEST_ABORT_AT=segments-committed: aborting" in server.run_log()
    out = verify_cli(server)
    assert out.returncode != 0 and "no audit entry added it" in out.stdout, out.stdout

    monkeypatch.delenv("LOTLINE_TEST_ABORT_AT")
    server.start()
    recovered = [e for e in lineage_entries(server) if e["action"] == "recovered at start"]
    assert len(recovered) == 1, lineage_entries(server)
    unrecorded = {a["file"] for a in recovered[0]["added"]}
    assert unrecorded and unrecorded <= set(live_segments(server.data_dir)), recovered
    assert any("/samples/" in f for f in unrecorded), recovered
    assert server.client.count("tag = 'c.b'") == 3
    found = sql_findings(server)
    assert found[0]["ok"], found
    notes = server.query("SELECT detail FROM verify_audit() WHERE check = 'note'").column(0).to_pylist()
    assert any(f"seq {recovered[0]['seq']} recorded at start" in n for n in notes), notes
    server.stop()
    out = verify_cli(server)
    assert out.returncode == 0 and f"note: audit entry seq {recovered[0]['seq']} recorded at start" in out.stdout, out.stdout


def test_lineage_entries_alone_do_not_make_a_flush_due(server_factory):
    server = server_factory("--flush-rows", "1000000000", "--flush-age-secs", "1")
    server.client.ingest(samples_table(["age.a"] * 2, [T0, T0 + NS_PER_S], [1.0, 2.0]))
    deadline = time.monotonic() + 60
    while not manifest_files(server.data_dir, "samples"):
        assert time.monotonic() < deadline, "the age flush never came"
        time.sleep(0.2)
    deadline = time.monotonic() + 60
    while not lineage_entries(server):
        assert time.monotonic() < deadline, "the flush recorded no lineage"
        time.sleep(0.2)
    audit_segments = manifest_files(server.data_dir, "audit_log")
    # Several flush ages later the flush's own entry is still only buffered:
    # it made no flush, which would have recorded another entry, and so on.
    time.sleep(4)
    assert manifest_files(server.data_dir, "audit_log") == audit_segments
    assert len(lineage_entries(server)) == 1
