"""The change feed (GET /api/v1/changes, docs/INTEGRATION.md) against the
real binary: a consumer process that is SIGKILLed and restarted at random
points, while lotline itself is SIGKILLed and restarted too, receives every
committed change of the versioned tables exactly once and in audit-log
order, each with exactly the version rows its entry describes; samples are
not in it; Server-Sent Events resume from Last-Event-ID.
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa

from lotline_testlib import ADMIN_USER, DEFAULT_PASSWORD, TS_TYPE, Client, eventually, http_request

AUTH = "Basic " + base64.b64encode(f"{ADMIN_USER}:{DEFAULT_PASSWORD}".encode()).decode()
FIXTURES = Path(__file__).resolve().parent / "b2mml"

# A consumer as an integration would write one: its output file is its
# state (each change one line, written and fsynced before it moves on), so
# after a kill it resumes after the last complete line.
CONSUMER = r'''
import json, os, sys, time, urllib.request, urllib.error
url, auth, out = sys.argv[1], sys.argv[2], sys.argv[3]
cursor = 0
if os.path.exists(out):
    with open(out, "rb") as f:
        data = f.read()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with open(out, "wb") as f:
            f.write(complete)
    for line in complete.splitlines():
        cursor = json.loads(line)["cursor"]
with open(out, "ab") as f:
    while True:
        try:
            request = urllib.request.Request(f"{url}/api/v1/changes?after={cursor}&wait=1&limit=7",
                                             headers={"Authorization": auth})
            with urllib.request.urlopen(request, timeout=30) as reply:
                page = json.load(reply)
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
            continue
        for change in page["changes"]:
            cursor = change["seq"]
            f.write(json.dumps({"cursor": cursor, "change": change}).encode() + b"\n")
            f.flush(); os.fsync(f.fileno())
        if page["next"] > cursor:
            cursor = page["next"]
            f.write(json.dumps({"cursor": cursor}).encode() + b"\n")
            f.flush(); os.fsync(f.fileno())
'''

# Every versioned table: the feed streams them all.
VERSIONED = ["tags", "equipment", "work_orders", "lots", "production_runs", "genealogy", "materials",
             "work_order_segments", "work_order_materials", "aliases", "systems", "drafts", "work_order_parameters"]


def writes(server, stop: threading.Event, rounds: int):
    """Versioned inserts, updates and deletes, a B2MML import and samples,
    through a client that reconnects after each server restart."""
    n = 0
    while n < rounds and not stop.is_set():
        # A connection of this thread's own: a restart closes the server's
        # registered clients, which must not happen under a call in flight.
        client = None
        try:
            client = Client(server.uri, server.password)
            client.set_reason(f"change {n}")
            client.execute(f"INSERT INTO equipment (id, name, level) VALUES ('feed.eq{n}', 'unit {n}', 'work_unit')")
            client.execute(f"UPDATE equipment SET name = 'renamed {n}' WHERE id = 'feed.eq{n}'")
            client.execute(f"INSERT INTO lots (id, material, quantity) VALUES ('feed.L{n}', 'M', {n}.5), ('feed.M{n}', 'M', 1)")
            if n % 3 == 0:
                client.execute(f"DELETE FROM lots WHERE id = 'feed.M{n}'")
            table = pa.table({"tag": ["feed.tag"], "ts": pa.array([1_800_000_000_000_000_000 + n], TS_TYPE), "value": [float(n)]})
            client.ingest(table)
            if n == 5:
                for name in ["equipment.xml", "material_definitions.xml", "material_lots.xml", "schedule.xml"]:
                    reply = http_request(server.http_url + "/api/v1/b2mml", "POST", (FIXTURES / name).read_bytes(),
                                         {"Authorization": AUTH, "content-type": "application/xml"})
                    assert reply.status == 200, reply
            n += 1
        except Exception:  # the server was killed mid-round: the round is redone
            if stop.is_set():
                return
            time.sleep(0.2)
        finally:
            if client is not None:
                client.close()


def expected(server) -> list[dict]:
    listed = ", ".join(f"'{t}'" for t in VERSIONED)
    return server.client.query(
        f"SELECT seq, table_name, action, row_count FROM audit_log WHERE table_name IN ({listed}) "
        "AND action IN ('write', 'update', 'delete') ORDER BY seq"
    ).to_pylist()


def test_a_killed_consumer_gets_every_change_once_in_order(server_factory, tmp_path):
    server = server_factory()
    out = tmp_path / "changes.jsonl"
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)

    def consumer():
        return subprocess.Popen([sys.executable, str(script), server.http_url, AUTH, str(out)])

    stop = threading.Event()
    writer = threading.Thread(target=writes, args=(server, stop, 30), daemon=True)
    writer.start()
    rng = random.Random(7)
    kills = 0
    proc = consumer()
    try:
        deadline = time.time() + 120
        while (writer.is_alive() or kills < 12) and time.time() < deadline:
            time.sleep(rng.uniform(0.05, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            if kills in (4, 9):
                server.restart(kill=True)
            proc = consumer()
        stop.set()
        writer.join(30)
        want = expected(server)
        seqs = [e["seq"] for e in want]

        def caught_up():
            lines = [json.loads(l) for l in out.read_text().splitlines() if l]
            got = [l["change"]["seq"] for l in lines if "change" in l]
            return got if got and got[-1] >= seqs[-1] else None

        got = eventually(caught_up, timeout=60, what="the consumer caught up")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert kills >= 10
    assert got == seqs, f"{len(got)} changes received, {len(seqs)} committed"
    # Each change carries exactly the version rows its entry counts, and
    # those are the table's versions with that entry's recorded_at.
    changes = [json.loads(l)["change"] for l in out.read_text().splitlines() if '"change"' in l]
    for change, entry in zip(changes, want):
        assert (change["table"], change["action"]) == (entry["table_name"], entry["action"])
        assert len(change["rows"]) == entry["row_count"], change
    for change in rng.sample(changes, 10):
        stamp = change["rows"][0]["recorded_at"]
        stored = server.client.query(
            f"SELECT * FROM {change['table']}_history WHERE recorded_at = '{stamp}'"
        ).to_pylist()
        assert len(stored) == len(change["rows"])
        assert {r["op"] for r in stored} == {r["op"] for r in change["rows"]}
    assert {c["table"] for c in changes} >= {"equipment", "lots", "work_orders", "work_order_materials"}
    assert {c["action"] for c in changes} == {"write", "update", "delete"}


def sse_events(server, after: int | None, last_event_id: str | None, count: int) -> list[tuple[str, dict]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    # As browsers' EventSource asks: gzip accepted (a stream is not compressed).
    headers = {"Authorization": AUTH, "Accept": "text/event-stream", "Accept-Encoding": "gzip"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    query = "" if after is None else f"&after={after}"
    connection.request("GET", f"/api/v1/changes?table=equipment{query}", headers=headers)
    reply = connection.getresponse()
    assert reply.status == 200 and reply.getheader("content-type").startswith("text/event-stream")
    assert reply.getheader("content-encoding") is None
    events, fields = [], {}
    while len(events) < count:
        line = reply.readline().decode().rstrip("\n")
        if line == "":
            if "data" in fields:
                events.append((fields.get("id"), json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.lstrip(" ")
    connection.close()
    return events


def test_server_sent_events_resume_from_the_last_event_id(server):
    client = server.client
    client.set_reason("sse")
    for n in range(6):
        client.execute(f"INSERT INTO equipment (id) VALUES ('sse.eq{n}')")
    client.execute("INSERT INTO lots (id) VALUES ('sse.lot')")  # filtered out: another table
    first = sse_events(server, 0, None, 3)
    rest = sse_events(server, None, first[-1][0], 3)
    ids = [int(i) for i, _ in first + rest]
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert [e["rows"][0]["id"] for _, e in first + rest] == [f"sse.eq{n}" for n in range(6)]
    # A change made while a stream is open arrives on it.
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(sse_events(server, ids[-1], None, 1)))
    reader.start()
    time.sleep(0.5)
    client.execute("INSERT INTO equipment (id) VALUES ('sse.live')")
    reader.join(30)
    assert got and got[0][1]["rows"][0]["id"] == "sse.live"
    # A reader may follow; an unknown table is refused by name.
    bad = http_request(server.http_url + "/api/v1/changes?table=samples", headers={"Authorization": AUTH})
    assert bad.status == 400 and "samples" in bad.json()["error"]
