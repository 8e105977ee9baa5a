"""The OPC UA collector against a real OPC UA server (asyncua, issue 16).

`lotline serve --collectors plant.toml` subscribes to variables of an
asyncua server: values, source timestamps and StatusCodes land in
`samples` exactly (strings in `text`), a Bad status passes through, a
stopped server gives one BadNoCommunication sample per tag and the
restarted server's values come again; browse paths resolve, and an outage
is backfilled from the server's history without a sample twice.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lotline_testlib import free_port
from test_collectors_modbus import PeerProcess, eventually

PEER = Path(__file__).with_name("opcua_peer.py")
BAD_NO_COMMUNICATION = 0x80310000
PREFIX = "site1.area1.line2.press1"


class Peer(PeerProcess):
    """The asyncua server."""

    script = PEER

    @property
    def url(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/"

    def write(self, name: str, value, variant, status=None, source_time=None):
        from asyncua import Client, ua

        async def write():
            async with Client(self.url) as client:
                node = client.get_node(ua.NodeId(name, 2))
                data = ua.DataValue(
                    ua.Variant(value, variant),
                    StatusCode=ua.StatusCode(status) if status is not None else ua.StatusCode(0),
                    SourceTimestamp=source_time,
                )
                await node.write_value(data)

        asyncio.run(write())


@pytest.fixture
def peer(tmp_path):
    yield from Peer.serve(tmp_path)


def mapping(url: str, pki: Path, *settings: str) -> str:
    entries = [
        ("Press1.Temperature", "temperature", 'unit = "Cel"'),
        ("Press1.Pressure", "pressure", ""),
        ("Press1.Count", "count", ""),
        ("Press1.Running", "running", ""),
        ("Press1.State", "state", ""),
    ]
    lines = [
        "[[collector]]",
        'name = "press1-ua"',
        'kind = "opcua"',
        f'endpoint = "{url}"',
        "publishing_interval_ms = 100",
        f'pki_dir = "{pki}"',
        f'equipment = "{PREFIX}"',
        *settings,
    ]
    for node, tag, extra in entries:
        lines += ["", "[[collector.map]]", f'source = "ns=2;s={node}"', f'tag = "{PREFIX}.{tag}"']
        if extra:
            lines.append(extra)
    return "\n".join(lines) + "\n"


def latest(server) -> dict[str, tuple]:
    rows = server.query(
        f"SELECT tag, value, text, quality, CAST(ts AS BIGINT) AS ts FROM last_values WHERE tag LIKE '{PREFIX}.%'"
    ).to_pylist()
    return {r["tag"].rsplit(".", 1)[1]: (r["value"], r["text"], r["quality"], r["ts"]) for r in rows}


def test_opcua_values_status_and_outages(server_factory, peer, tmp_path):
    from asyncua import ua

    plant = tmp_path / "plant.toml"
    plant.write_text(mapping(peer.url, tmp_path / "pki"))
    server = server_factory("--collectors", str(plant))

    eventually(lambda: len(latest(server)) == 5, timeout=60, what="a sample of every node")
    got = latest(server)
    assert got["temperature"][:3] == (21.5, None, 0)
    assert got["pressure"][:3] == (3.25, None, 0)
    assert got["count"][:3] == (42.0, None, 0)
    assert got["running"][:3] == (1.0, None, 0)
    assert got["state"][:3] == (None, "RUNNING", 0)
    status = server.query("SELECT kind, state FROM collector_status").to_pylist()
    assert status == [{"kind": "opcua", "state": "connected"}]

    # A value with its own source time and an Uncertain status, then a Bad one.
    source = datetime(2026, 11, 30, 8, 15, 0, 250000, tzinfo=timezone.utc)
    peer.write("Press1.Temperature", 198.25, ua.VariantType.Double, 0x40900000, source)
    expected_ts = int(source.timestamp()) * 1_000_000_000 + 250_000_000
    # Older than the first sample, so not the last value: found by its time.
    written = lambda: server.query(  # noqa: E731
        f"SELECT value, quality FROM samples WHERE tag = '{PREFIX}.temperature' "
        f"AND CAST(ts AS BIGINT) = {expected_ts}"
    ).to_pylist()
    eventually(written, what="the written value at its source time")
    assert written() == [{"value": 198.25, "quality": 0x40900000}]
    peer.write("Press1.Pressure", 0.0, ua.VariantType.Float, 0x80000000)
    eventually(lambda: latest(server)["pressure"][2] == 0x80000000, what="a Bad status")

    # The server goes away: BadNoCommunication for every tag, once.
    peer.stop()
    eventually(lambda: {q for _, _, q, _ in latest(server).values()} == {BAD_NO_COMMUNICATION},
               timeout=60, what="BadNoCommunication samples")
    eventually(lambda: server.query("SELECT state FROM collector_status").column(0)[0].as_py() == "disconnected",
               what="the disconnected state")
    time.sleep(2)
    bad = server.query(
        f"SELECT count(*) AS n FROM samples WHERE tag LIKE '{PREFIX}.%' AND quality = {BAD_NO_COMMUNICATION}"
    ).column(0)[0].as_py()
    assert bad == 5, bad

    # Back: the subscription is made again and values come.
    peer.start()
    eventually(lambda: {q for _, _, q, _ in latest(server).values()} == {0}, timeout=90, what="good values again")
    assert latest(server)["temperature"][0] == 21.5  # a new server: its initial value
    assert server.query("SELECT state FROM collector_status").column(0)[0].as_py() == "connected"


def test_opcua_over_basic256sha256_with_a_user_and_password(server_factory, tmp_path):
    """SignAndEncrypt with certificates both ways, a user and password; a
    wrong password is refused by the server and shown in collector_status."""
    from opcua_peer import PASSWORD, USER

    peer = Peer(free_port(), tmp_path / "opcua_peer.log", "--secure", str(tmp_path))
    peer.start()
    try:
        plant = tmp_path / "plant.toml"
        security = ('security_policy = "Basic256Sha256"', 'security_mode = "SignAndEncrypt"', f'user = "{USER}"')
        plant.write_text(mapping(peer.url, tmp_path / "pki", *security, f'password = "{PASSWORD}"'))
        wrong = tmp_path / "wrong.toml"
        wrong.write_text(mapping(peer.url, tmp_path / "pki-2", *security, 'password = "not-it"').replace("press1-ua", "press1-ua-wrong").replace(PREFIX, PREFIX + "x"))
        server = server_factory("--collectors", str(plant))
        eventually(lambda: len(latest(server)) == 5, timeout=60, what="values over a secure channel")
        assert latest(server)["temperature"][:3] == (21.5, None, 0)
        other = server_factory("--collectors", str(wrong))
        eventually(
            lambda: (other.query("SELECT errors, last_error FROM collector_status").to_pylist() or [{}])[0].get("errors", 0) > 0,
            timeout=60, what="the refused login in collector_status",
        )
        status = other.query("SELECT state, last_error FROM collector_status").to_pylist()[0]
        assert status["state"] != "connected" and "Bad" in status["last_error"], status
    finally:
        peer.stop()


OVEN = "site1.area1.line2.oven1.temperature"


def oven_counts(server) -> list[tuple[int, float]]:
    """The oven counter's Good samples as (ts, value), in time order."""
    rows = server.query(
        f"SELECT CAST(ts AS BIGINT) AS ts, value FROM samples WHERE tag = '{OVEN}' AND quality = 0 ORDER BY ts"
    ).to_pylist()
    return [(r["ts"], r["value"]) for r in rows]


def assert_no_hole_and_no_repeat(server):
    counts = oven_counts(server)
    values = [v for _, v in counts]
    assert len({ts for ts, _ in counts}) == len(counts), "a (tag, ts) written twice"
    assert values == [float(v) for v in range(int(values[0]), int(values[-1]) + 1)], (
        f"not every count once, in order: {values}"
    )
    twice = server.query(
        "SELECT tag, ts, count(*) AS n FROM samples GROUP BY tag, ts HAVING count(*) > 1"
    ).to_pylist()
    assert twice == [], twice
    return values


def test_opcua_browse_paths_and_outages_backfilled_from_history(server_factory, peer, tmp_path):
    """The oven counter (historized, +1 every 100 ms) is mapped by browse
    path. The server's endpoint goes down for a few seconds while the plant
    goes on counting: BadNoCommunication marks the outage, and HistoryRead
    fills it, so every count is stored exactly once. The same holds across a
    restart of lotline itself. A browse path that names nothing gets one
    BadNoMatch sample and an error; the other tags are collected."""
    plant = tmp_path / "plant.toml"
    plant.write_text(
        mapping(peer.url, tmp_path / "pki")
        + f'\n[[collector.map]]\nsource = "/2:Line2/2:Oven/2:Temperature"\ntag = "{OVEN}"\nequipment = "site1.area1.line2.oven1"\n'
        + f'\n[[collector.map]]\nsource = "/2:Line2/2:Oven/2:NoSuchThing"\ntag = "{PREFIX}.missing"\n'
    )
    server = server_factory("--collectors", str(plant))
    eventually(lambda: len(oven_counts(server)) >= 10, timeout=60, what="oven counts through the browse path")
    missing = server.query(f"SELECT value, quality FROM samples WHERE tag = '{PREFIX}.missing'").to_pylist()
    assert missing == [{"value": None, "quality": 0x806F0000}], missing  # BadNoMatch
    status = server.query("SELECT state, errors, last_error FROM collector_status").to_pylist()[0]
    assert status["state"] == "connected" and status["errors"] >= 1, status
    assert "/2:Line2/2:Oven/2:NoSuchThing" in status["last_error"], status
    assert latest(server)["temperature"][:3] == (21.5, None, 0)

    # The endpoint goes down; the plant goes on.
    peer.proc.send_signal(signal.SIGUSR1)
    outage = lambda: server.query(  # noqa: E731
        f"SELECT count(*) FROM samples WHERE tag = '{OVEN}' AND quality = {BAD_NO_COMMUNICATION}"
    ).column(0)[0].as_py()
    eventually(lambda: outage() == 1, timeout=60, what="the outage marked BadNoCommunication")
    before = oven_counts(server)[-1][1]
    time.sleep(3)
    peer.proc.send_signal(signal.SIGUSR2)
    eventually(lambda: oven_counts(server)[-1][1] > before + 35, timeout=90, what="counts after the outage")
    values = assert_no_hole_and_no_repeat(server)
    assert outage() == 1
    assert server.query("SELECT state FROM collector_status").column(0)[0].as_py() == "connected"

    # lotline itself is killed and away for a while: the restart backfills
    # from the newest sample stored.
    server.kill()
    time.sleep(3)
    server.start()
    eventually(lambda: oven_counts(server)[-1][1] > values[-1] + 35, timeout=90, what="counts after the restart")
    assert_no_hole_and_no_repeat(server)


def test_opcua_subscription_larger_than_a_thousand_items(server_factory, tmp_path):
    """2500 items changing together: publish responses carry more than the
    client library's default array limit (1000), which used to break the
    connection at the first large response."""
    items = 2500
    peer = Peer(free_port(), tmp_path / "opcua_peer.log", "--bulk", str(items))
    peer.start()
    try:
        lines = ["[[collector]]", 'name = "bulk-ua"', 'kind = "opcua"', f'endpoint = "{peer.url}"',
                 "publishing_interval_ms = 1000", f'pki_dir = "{tmp_path / "pki"}"']
        for i in range(items):
            lines += ["[[collector.map]]", f'source = "ns=2;s=Bulk.{i}"', f'tag = "site1.area9.bulk.TT{i:05d}.PV"']
        plant = tmp_path / "plant.toml"
        plant.write_text("\n".join(lines) + "\n")
        server = server_factory("--collectors", str(plant))
        tags_with = lambda n: server.query(  # noqa: E731
            "SELECT count(*) FROM (SELECT tag FROM samples WHERE tag LIKE 'site1.area9.%' AND quality = 0 "
            f"GROUP BY tag HAVING count(*) >= {n})"
        ).column(0)[0].as_py()
        eventually(lambda: tags_with(3) == items, timeout=120, what="three values of every item")
        status = server.query("SELECT state, errors, last_error FROM collector_status").to_pylist()[0]
        assert status == {"state": "connected", "errors": 0, "last_error": None}, status
    finally:
        peer.stop()


def test_map_entries_named_through_aliases(server_factory, peer, tmp_path):
    """A collector with `aliases = SYSTEM` may leave out its entries' tags:
    the aliases table names them (system, 'tag', source); an entry without
    an alias refuses the mapping with its line and source, and the edge,
    which starts without the server, refuses such a file."""
    system = "OPCUA-PRESS1"
    server = server_factory()
    named = {"Press1.Temperature": "oven_temp", "Press1.Pressure": "oven_pressure"}
    rows = ", ".join(f"('{system}', 'tag', 'ns=2;s={node}', '{PREFIX}.{tag}')" for node, tag in named.items())
    server.client.execute(f"INSERT INTO aliases VALUES {rows}")
    head = [
        "[[collector]]", 'name = "press1-aliased"', 'kind = "opcua"', f'endpoint = "{peer.url}"',
        "publishing_interval_ms = 100", f'pki_dir = "{tmp_path / "pki"}"', f'equipment = "{PREFIX}"',
        f'aliases = "{system}"',
    ]
    entries = [line for node in named for line in ("", "[[collector.map]]", f'source = "ns=2;s={node}"')]
    plant = tmp_path / "plant.toml"
    plant.write_text("\n".join(head + entries) + "\n")
    server.args += ["--collectors", str(plant)]
    server.restart()
    eventually(lambda: set(latest(server)) == set(named.values()), timeout=60, what="samples under the aliases' tags")
    assert latest(server)["oven_temp"][:3] == (21.5, None, 0)
    equipment = server.query(f"SELECT DISTINCT equipment FROM tags WHERE tag LIKE '{PREFIX}.oven_%'").column(0).to_pylist()
    assert equipment == [PREFIX]

    # A source no alias names: the reload is refused with its line; collecting goes on.
    plant.write_text("\n".join(head + entries + ["", "[[collector.map]]", 'source = "ns=2;s=Press1.Count"']) + "\n")
    server.proc.send_signal(signal.SIGHUP)
    refused = lambda: server.query(  # noqa: E731
        "SELECT detail FROM audit_log WHERE action = 'collector.reload_refused'").column(0).to_pylist()
    eventually(refused, what="the refused reload")
    detail = refused()[0]
    assert "plant.toml:" in detail and "ns=2;s=Press1.Count" in detail and system in detail, detail
    assert server.query("SELECT state FROM collector_status").column(0).to_pylist() == ["connected"]

    edge = server.cli("collect", "--collectors", str(plant), "--buffer-dir", str(tmp_path / "queue"), timeout=30)
    assert edge.returncode != 0
    assert "needs a tag on every map entry" in edge.stderr, edge.stderr

    # The system set to draft its unknown ids: the same reload is taken, the
    # source is its own tag, and an alias and a row of `drafts` flag it.
    server.client.execute(f"INSERT INTO systems VALUES ('{system}', 'press 1 OPC UA server', 'draft')")
    server.proc.send_signal(signal.SIGHUP)
    count = "ns=2;s=Press1.Count"
    value = lambda: server.query(  # noqa: E731
        f"SELECT value FROM last_values WHERE tag = '{count}'").column(0).to_pylist()
    eventually(lambda: value() == [42.0], timeout=60, what="samples under the drafted tag")
    drafts = server.query("SELECT kind, key, system, external_id, source FROM drafts").to_pylist()
    assert [(d["kind"], d["key"], d["system"], d["external_id"]) for d in drafts] == [("tag", count, system, count)]
    assert "plant.toml:" in drafts[0]["source"], drafts
    alias = server.query(f"SELECT key FROM aliases WHERE system = '{system}' AND external_id = '{count}'")
    assert alias.column(0).to_pylist() == [count]
    assert server.client.scalar(f"SELECT equipment FROM tags WHERE tag = '{count}'") == PREFIX
