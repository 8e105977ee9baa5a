"""The Modbus TCP collector against a real Modbus server (pymodbus, issue 16).

`lotline serve --collectors plant.toml` polls a pymodbus device holding
values of every data type and byte order: each lands in `samples` exactly
(scaling applied, equipment from the mapping, tags upserted with their
unit), a value changed on the device shows up, `collector_status`,
`/metrics` and `audit_log` tell the collector's state; a stopped device
gives one BadNoCommunication sample per tag and a restarted one good values
again. Bad mapping files stop the start naming file and line.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lotline_testlib import eventually, free_port, http_request
from modbus_peer import COILS, DISCRETE, VALUES, WRITABLE

PEER = Path(__file__).with_name("modbus_peer.py")
BAD_NO_COMMUNICATION = 0x80310000
PREFIX = "site1.area1.line2.press1"
EQUIPMENT = "site1.area1.line2.press1"
SCALED = (26, 0.5, -10.0)  # holding 26: raw * 0.5 - 10


class PeerProcess:
    """A protocol peer (a Python script taking its port), stoppable and
    restartable on one port; stopped with SIGKILL, as a machine that goes
    away."""

    script: Path

    def __init__(self, port: int, log: Path, *args: str):
        self.port, self.log, self.args, self.proc = port, log, args, None

    def start(self):
        with open(self.log, "ab") as log:
            command = [sys.executable, str(self.script), str(self.port), *self.args]
            self.proc = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, f"{self.script.name} did not start"
                time.sleep(0.1)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @classmethod
    def serve(cls, tmp_path: Path):
        """A fixture's body: a started peer on a free port, stopped after."""
        peer = cls(free_port(), tmp_path / f"{cls.script.stem}.log")
        peer.start()
        try:
            yield peer
        finally:
            peer.stop()


class Peer(PeerProcess):
    """The pymodbus device."""

    script = PEER

    def write_register(self, address: int, value: int):
        from pymodbus.client import ModbusTcpClient

        client = ModbusTcpClient("127.0.0.1", port=self.port)
        assert client.connect()
        try:
            assert not client.write_register(address, value, device_id=1).isError()
        finally:
            client.close()


@pytest.fixture
def peer(tmp_path):
    yield from Peer.serve(tmp_path)


def tag_for(table: str, address: int, data_type: str, order: str) -> str:
    return f"{PREFIX}.{table}{address}_{data_type}_{order}"


def expected_values() -> dict[str, float]:
    expected = {tag_for(t, a, d, o): float(v) for t, a, d, o, v in VALUES}
    address, scale, offset = SCALED
    raw = next(v for t, a, _, _, v in VALUES if (t, a) == ("holding", address))
    expected[f"{PREFIX}.scaled"] = raw * scale + offset
    for address, bit in COILS.items():
        expected[f"{PREFIX}.coil{address}"] = float(bit)
    for address, bit in DISCRETE.items():
        expected[f"{PREFIX}.discrete{address}"] = float(bit)
    expected[f"{PREFIX}.writable"] = 0.0
    return expected


def mapping(port: int) -> str:
    lines = [
        "[[collector]]",
        'name = "press1"',
        'kind = "modbus"',
        f'endpoint = "127.0.0.1:{port}"',
        "poll_interval_ms = 100",
        f'equipment = "{EQUIPMENT}"',
    ]

    def entry(source: str, tag: str, *extra: str):
        lines.extend(["", "[[collector.map]]", f'source = "{source}"', f'tag = "{tag}"', *extra])

    for table, address, data_type, order, _ in VALUES:
        entry(f"{table}:{address}:{data_type}:{order}", tag_for(table, address, data_type, order))
    address, scale, offset = SCALED
    entry(f"holding:{address}", f"{PREFIX}.scaled", f"scale = {scale}", f"offset = {offset}", 'unit = "Cel"',
          'description = "platen temperature"')
    for address in COILS:
        entry(f"coil:{address}", f"{PREFIX}.coil{address}")
    for address in DISCRETE:
        entry(f"discrete:{address}", f"{PREFIX}.discrete{address}")
    entry(f"holding:{WRITABLE}", f"{PREFIX}.writable")
    return "\n".join(lines) + "\n"


def latest(server) -> dict[str, tuple]:
    rows = server.query(
        f"SELECT tag, value, quality, equipment FROM last_values WHERE tag LIKE '{PREFIX}.%'"
    ).to_pylist()
    return {r["tag"]: (r["value"], r["quality"], r["equipment"]) for r in rows}


def status(server) -> dict:
    rows = server.query("SELECT * FROM collector_status").to_pylist()
    assert [r["name"] for r in rows] == ["press1"], rows
    return rows[0]


def test_modbus_values_outages_and_status(server_factory, peer, tmp_path):
    plant = tmp_path / "plant.toml"
    plant.write_text(mapping(peer.port))
    server = server_factory("--collectors", str(plant))
    expected = expected_values()

    eventually(lambda: len(latest(server)) == len(expected), what="a sample of every mapped tag")
    got = latest(server)
    assert {tag: value for tag, (value, _, _) in got.items()} == expected
    assert {quality for _, quality, _ in got.values()} == {0}
    assert {equipment for _, _, equipment in got.values()} == {EQUIPMENT}
    tag = server.query(f"SELECT unit, description, equipment FROM tags WHERE tag = '{PREFIX}.scaled'").to_pylist()
    assert tag == [{"unit": "CEL", "description": "platen temperature", "equipment": EQUIPMENT}]

    state = status(server)
    assert (state["kind"], state["state"], state["errors"]) == ("modbus", "connected", 0), state
    assert state["samples_written"] >= len(expected) and state["last_sample"] is not None

    peer.write_register(WRITABLE, 4321)
    eventually(lambda: latest(server)[f"{PREFIX}.writable"][0] == 4321.0, what="the changed register")

    metrics = http_request(f"{server.http_url}/metrics").body.decode()
    assert 'lotline_collector{collector="press1",kind="modbus",what="connected"} 1' in metrics, metrics[-2000:]

    # The device goes away: one BadNoCommunication sample per tag, once.
    peer.stop()
    eventually(lambda: {q for _, q, _ in latest(server).values()} == {BAD_NO_COMMUNICATION}, what="Bad samples")
    eventually(lambda: status(server)["state"] == "disconnected", what="the disconnected state")
    time.sleep(2)  # a few reconnect attempts
    bad = server.query(
        f"SELECT tag, count(*) AS n FROM samples WHERE tag LIKE '{PREFIX}.%' AND quality = {BAD_NO_COMMUNICATION} GROUP BY tag"
    ).to_pylist()
    assert {r["tag"] for r in bad} == set(expected) and {r["n"] for r in bad} == {1}, bad
    assert latest(server)[f"{PREFIX}.writable"][0] is None
    assert status(server)["last_error"], status(server)

    # Back again: good values, newer than the Bad ones.
    peer.start()
    eventually(lambda: {q for _, q, _ in latest(server).values()} == {0}, what="good samples after the restart")
    assert {tag: value for tag, (value, _, _) in latest(server).items()} == expected  # a new device: register 30 is 0
    assert status(server)["state"] == "connected"

    events = server.query(
        "SELECT actor, action, detail FROM audit_log WHERE action LIKE 'collector.%' ORDER BY seq"
    ).to_pylist()
    actions = [e["action"] for e in events]
    assert actions[0] == "collector.mapping" and str(plant) in events[0]["detail"], events
    assert actions[1:] == ["collector.connect", "collector.disconnect", "collector.connect"], actions
    assert {e["actor"] for e in events[1:]} == {"collector:press1"}


BAD_FILES = [
    ('kind = "modbus"', 'kind = "profibus"', 3, "unknown kind 'profibus'"),
    ('source = "holding:0:f32:abcd"', 'source = "holding:0:f32:abca"', 10, "byte order 'abca'"),
    ('source = "coil:1"', 'source = "coil:1:f32"', 14, "bits: type bool only"),
    ('tag = "a.b.second"', 'tag = "a.b.first"', 15, "tag 'a.b.first' is mapped twice"),
    ('endpoint = "127.0.0.1:1"', 'endpont = "127.0.0.1:1"', 4, "endpont"),
]
GOOD = """[[collector]]
name = "press1"
kind = "modbus"
endpoint = "127.0.0.1:1"
unit_id = 1

[[collector.map]]
tag = "a.b.first"
unit = "bar"
source = "holding:0:f32:abcd"

[[collector.map]]
unit = "bar"
source = "coil:1"
tag = "a.b.second"
"""


@pytest.mark.parametrize("old,new,line,reason", BAD_FILES, ids=[b[3] for b in BAD_FILES])
def test_a_bad_mapping_file_stops_the_start_naming_its_line(lotline_bin, tmp_path, old, new, line, reason):
    assert old in GOOD
    plant = tmp_path / "bad.toml"
    plant.write_text(GOOD.replace(old, new))
    run = subprocess.run(
        [str(lotline_bin), "serve", "--collectors", str(plant), "--data-dir", str(tmp_path / "data"),
         "--listen", f"127.0.0.1:{free_port()}", "--http-listen", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode != 0, run.stdout + run.stderr
    assert f"{plant}:{line}: " in run.stderr and reason in run.stderr, run.stderr
    assert not (tmp_path / "data").exists(), "nothing is opened before the mapping is valid"


def collector(name: str, port: int, *entries: tuple[str, str]) -> str:
    lines = ["[[collector]]", f'name = "{name}"', 'kind = "modbus"', f'endpoint = "127.0.0.1:{port}"',
             "poll_interval_ms = 100"]
    for source, tag in entries:
        lines += ["[[collector.map]]", f'source = "{source}"', f'tag = "{tag}"']
    return "\n".join(lines) + "\n\n"


def test_sighup_reloads_the_mapping_keeping_unchanged_collectors(server_factory, peer, tmp_path):
    """SIGHUP to `lotline serve` applies the mapping file again: a new
    collector starts, an unchanged one keeps running (its status row goes
    on counting), a removed one stops; a file with an error changes nothing
    and is recorded in audit_log with its line."""
    a = collector("press-a", peer.port, ("holding:26", f"{PREFIX}.a"))
    b = collector("press-b", peer.port, ("input:0", f"{PREFIX}.b"))
    plant = tmp_path / "plant.toml"
    plant.write_text(a)
    server = server_factory("--collectors", str(plant))
    status = lambda: {r["name"]: r for r in server.query(  # noqa: E731
        "SELECT name, state, connected_since, samples_written FROM collector_status").to_pylist()}
    count = lambda tag: server.query(  # noqa: E731
        f"SELECT count(*) FROM samples WHERE tag = '{PREFIX}.{tag}'").column(0)[0].as_py()
    audit = lambda action: server.query(  # noqa: E731
        f"SELECT detail FROM audit_log WHERE action = '{action}' ORDER BY seq").column(0).to_pylist()
    eventually(lambda: count("a") >= 3, what="press-a's samples")
    before = status()["press-a"]

    plant.write_text(a + b)
    server.proc.send_signal(signal.SIGHUP)
    eventually(lambda: count("b") >= 3, what="press-b's samples after the reload")
    after = status()
    assert after["press-a"]["connected_since"] == before["connected_since"], (before, after)
    assert after["press-a"]["samples_written"] > before["samples_written"]
    assert after["press-b"]["state"] == "connected"
    assert [d.rsplit(" ", 3)[1:] for d in audit("collector.reload")] == [["kept=1", "started=1", "stopped=0"]]
    assert server.query(f"SELECT count(*) FROM tags WHERE tag = '{PREFIX}.b'").column(0)[0].as_py() == 1

    # The same tag twice: refused with its line, both collectors go on.
    plant.write_text(a + b + collector("press-c", peer.port, ("holding:0", f"{PREFIX}.a")))
    server.proc.send_signal(signal.SIGHUP)
    eventually(lambda: audit("collector.reload_refused"), what="the refused reload in audit_log")
    refused = audit("collector.reload_refused")[0]
    assert "plant.toml:" in refused and f"{PREFIX}.a" in refused, refused
    running = count("b")
    eventually(lambda: count("b") > running + 2, what="press-b going on after a refused reload")
    assert set(status()) == {"press-a", "press-b"}

    # press-a removed: it stops.
    plant.write_text(b)
    server.proc.send_signal(signal.SIGHUP)
    eventually(lambda: set(status()) == {"press-b"}, what="press-a gone from collector_status")
    time.sleep(0.5)
    stopped_at = count("a")
    time.sleep(1)
    assert count("a") == stopped_at
    assert audit("collector.reload")[-1].endswith("kept=1 started=0 stopped=1")
