"""The Sparkplug B collector against a real MQTT broker (mosquitto) and
Sparkplug edge nodes written with paho-mqtt (issue 17).

`lotline serve --collectors plant.toml` joins the broker as a Sparkplug host
application (user and password): its STATE is published retained and its
will turns it offline when it is killed; births teach it names, aliases,
data types and units; data by alias lands at the metric's timestamp with
its quality; historical metrics are stored and counted apart, transient
ones are not stored; a `seq` gap or an unknown alias gets a rebirth
request, counted; deaths (DDEATH, the broker's NDEATH will) write
BadNoCommunication; a template names a namespace of thousands of metrics
without a line each.
"""

from __future__ import annotations

import json
import time

import pytest

from lotline_testlib import eventually, free_port, http_request, self_signed_cert
from sparkplug_peer import (
    BOOLEAN, DATETIME, DOUBLE, FLOAT, INT32, STRING, UINT16,
    Broker, Device, EdgeNode, Listener, Metric, payload_module,
)

USER, PASSWORD = "lotline", "s3cret-broker"
HOST_ID = "lotline-test"
BAD = 0x80000000
BAD_NO_COMMUNICATION = 0x80310000
UNCERTAIN_LAST_USABLE = 0x40900000
MAPPED = "site1.line2.press7.axis_x.position"
STARTED_MS = 1_790_000_000_123


@pytest.fixture(scope="module")
def pb():
    return payload_module()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mosquitto")
    cert, key = self_signed_cert(directory)
    broker = Broker(directory, free_port(), USER, PASSWORD, tls=(free_port(), cert, key)).start()
    yield broker
    broker.stop()


def mapping(broker: Broker, *map_entries: str, tls: bool = False, mqtt5: bool = False) -> str:
    endpoint = f"mqtts://127.0.0.1:{broker.tls[0]}" if tls else f"127.0.0.1:{broker.port}"
    return "\n".join([
        "[[collector]]",
        'name = "uns"',
        'kind = "sparkplug"',
        f'endpoint = "{endpoint}"',
        *([f'tls_ca = "{broker.tls[1]}"'] if tls else []),
        *(["mqtt_version = 5"] if mqtt5 else []),
        'groups = ["plant1"]',
        f'host_id = "{HOST_ID}"',
        f'user = "{USER}"',
        f'password = "{PASSWORD}"',
        'tag_template = "site1.{group}.{node}.{device}.{metric}"',
        *map_entries,
    ]) + "\n"


def status(server) -> dict:
    rows = server.query("SELECT * FROM collector_status").to_pylist()
    assert [r["name"] for r in rows] == ["uns"], rows
    return rows[0]


def latest(server, prefix: str = "site1.") -> dict[str, tuple]:
    rows = server.query(
        f"SELECT tag, value, text, quality FROM last_values WHERE tag LIKE '{prefix}%'"
    ).to_pylist()
    return {r["tag"]: (r["value"], r["text"], r["quality"]) for r in rows}


def samples_of(server, tag: str) -> list[tuple]:
    rows = server.query(
        f"SELECT CAST(ts AS BIGINT) AS ts, value, text, quality FROM samples WHERE tag = '{tag}' ORDER BY ts"
    ).to_pylist()
    return [(r["ts"], r["value"], r["text"], r["quality"]) for r in rows]


def host_state(listener: Listener) -> dict:
    topic = f"spBv1.0/STATE/{HOST_ID}"
    states = [(json.loads(p), retained) for t, p, retained in listener.messages if t == topic]
    return states[-1][0] if states else {}


def connected_server(server_factory, tmp_path, text: str):
    plant = tmp_path / "plant.toml"
    plant.write_text(text)
    server = server_factory("--collectors", str(plant))
    eventually(lambda: status(server)["state"] == "connected", what="the broker connection")
    return server


def press(pb_started_ms: int = STARTED_MS) -> Device:
    return Device("press7", [
        Metric("Axis/X/Position", FLOAT, 0.25, alias=10),
        Metric("Temperature", DOUBLE, 180.5, alias=11, unit="Cel"),
        Metric("Running", BOOLEAN, True, alias=12),
        Metric("Count", INT32, -5, alias=13),
        Metric("Mode", STRING, "AUTO", alias=14),
        Metric("Started", DATETIME, pb_started_ms, alias=15),
        Metric("Pressure", UINT16, 300, alias=16, unit="bar"),
    ])


NODE_METRICS = [
    Metric("Line/Speed", DOUBLE, 12.5, alias=1, unit="m/min"),
    Metric("Line/Recipe", STRING, "R-17", alias=2),
]
T = "site1.plant1.edge1"  # the template's prefix for edge1


def test_sparkplug_births_data_qualities_rebirths_and_deaths(server_factory, broker, pb, tmp_path):
    server = connected_server(server_factory, tmp_path, mapping(
        broker,
        "[[collector.map]]",
        'source = "plant1/edge1/press7/Axis/X/Position"',
        f'tag = "{MAPPED}"',
        'equipment = "site1.line2.press7"',
        'unit = "mm"',
        "scale = 1000.0",
    ))
    listener = Listener(broker, f"spBv1.0/STATE/{HOST_ID}", "spBv1.0/plant1/NCMD/#")
    try:
        eventually(lambda: host_state(listener).get("online") is True, what="STATE online")
        assert {"online", "timestamp"} <= set(host_state(listener)), host_state(listener)

        edge = EdgeNode(pb, broker, "plant1", "edge1", NODE_METRICS, [press()]).connect()
        births = {
            MAPPED: (250.0, None, 0),
            f"{T}.press7.Temperature": (180.5, None, 0),
            f"{T}.press7.Running": (1.0, None, 0),
            f"{T}.press7.Count": (-5.0, None, 0),
            f"{T}.press7.Mode": (None, "AUTO", 0),
            f"{T}.press7.Started": (None, "2026-09-21T14:13:20.123Z", 0),
            f"{T}.press7.Pressure": (300.0, None, 0),
            f"{T}.Line.Speed": (12.5, None, 0),
            f"{T}.Line.Recipe": (None, "R-17", 0),
        }
        eventually(lambda: latest(server) == births, what=f"the births' values, have {latest(server)}")
        units = {r["tag"]: (r["unit"], r["equipment"]) for r in server.query(
            "SELECT tag, unit, equipment FROM tags WHERE tag LIKE 'site1.%'").to_pylist()}
        # Stored as UN/ECE Recommendation 20 codes: mm, Cel and m/min.
        assert units[MAPPED] == ("MMT", "site1.line2.press7"), units
        assert units[f"{T}.press7.Temperature"] == ("CEL", None), units
        assert units[f"{T}.Line.Speed"] == ("2X", None), units
        assert units[f"{T}.press7.Mode"] == (None, None), units
        assert not any("bdSeq" in t or "Node Control" in t for t in units), units

        # Data by alias, at the metric's own timestamp, with its quality;
        # after the births (lotline has them: they are older).
        t0 = int(time.time() * 1000)
        edge.data({"Temperature": 181.25, "Axis/X/Position": 0.5}, device="press7", ts_ms=t0)
        edge.data({"Temperature": 182.0}, device="press7", ts_ms=t0 + 100, quality=500)
        edge.data({"Temperature": 0.0}, device="press7", ts_ms=t0 + 200, quality=0)
        edge.data({"Temperature": None}, device="press7", ts_ms=t0 + 300, is_null=True)
        edge.data({"Line/Speed": 13.0}, ts_ms=t0 + 300, by_name=True)
        edge.data({"Pressure": 999}, device="press7", ts_ms=t0 + 400, is_transient=True)
        edge.data({"Temperature": 170.0}, device="press7", ts_ms=t0 - 3_600_000, is_historical=True)
        edge.data({"Temperature": 183.5}, device="press7", ts_ms=t0 + 500)
        temperature = f"{T}.press7.Temperature"
        eventually(lambda: latest(server)[temperature] == (183.5, None, 0), what="the last Temperature")
        got = samples_of(server, temperature)
        ms = 1_000_000
        assert got[0] == ((t0 - 3_600_000) * ms, 170.0, None, 0), got
        assert got[1][1:] == (180.5, None, 0) and got[1][0] < t0 * ms, got  # the birth
        assert got[2:] == [
            (t0 * ms, 181.25, None, 0),
            ((t0 + 100) * ms, 182.0, None, UNCERTAIN_LAST_USABLE),
            ((t0 + 200) * ms, 0.0, None, BAD),
            ((t0 + 300) * ms, None, None, BAD),
            ((t0 + 500) * ms, 183.5, None, 0),
        ], got
        assert samples_of(server, MAPPED)[-1] == (t0 * ms, 500.0, None, 0)
        assert samples_of(server, f"{T}.Line.Speed")[-1] == ((t0 + 300) * ms, 13.0, None, 0)
        assert [s[1] for s in samples_of(server, f"{T}.press7.Pressure")] == [300.0], "transient stored"
        state = status(server)
        assert (state["kind"], state["historical_samples"], state["resync_requests"], state["errors"]) == \
            ("sparkplug", 1, 0, 0), state
        assert state["last_sample"].timestamp() * 1000 >= t0, "a historical sample moved last_sample back"

        # A seq gap: the node is asked for a rebirth, answers with births,
        # and data after them is stored.
        edge.data({"Temperature": 190.0}, device="press7", ts_ms=t0 + 1000, skip_seq=True)
        eventually(lambda: edge.rebirth_requests == 1, what="the rebirth request after a seq gap")
        eventually(lambda: status(server)["resync_requests"] == 1, what="the counted rebirth request")
        time.sleep(0.5)  # the births are answered from another thread
        edge.data({"Temperature": 191.0}, device="press7", ts_ms=t0 + 1100)
        eventually(lambda: ((t0 + 1100) * ms, 191.0, None, 0) in samples_of(server, temperature),
                   what="data after the rebirth")
        commands = [t for t, _, _ in listener.messages if t.startswith("spBv1.0/plant1/NCMD/")]
        assert commands == ["spBv1.0/plant1/NCMD/edge1"], commands

        # A second node that sends an alias its birth did not declare.
        edge2 = EdgeNode(pb, broker, "plant1", "edge2", [Metric("Flow", DOUBLE, 3.0, alias=1)], []).connect()
        eventually(lambda: latest(server).get("site1.plant1.edge2.Flow") == (3.0, None, 0), what="edge2's birth")
        unknown = pb.Payload(timestamp=int(time.time() * 1000))
        unknown.metrics.add(alias=99, timestamp=unknown.timestamp, double_value=1.0)
        edge2.raw_data(unknown)
        eventually(lambda: edge2.rebirth_requests == 1, what="the rebirth request after an unknown alias")
        eventually(lambda: status(server)["resync_requests"] == 2, what="the second counted rebirth request")
        metrics = http_request(f"{server.http_url}/metrics").body.decode()
        for what, value in [("connected", 1), ("historical_samples", 1), ("resync_requests", 2), ("errors", 0)]:
            line = f'lotline_collector{{collector="uns",kind="sparkplug",what="{what}"}} {value}'
            assert line in metrics, (line, [m for m in metrics.splitlines() if "collector" in m])
        actions = [r["action"] for r in server.query(
            "SELECT action FROM audit_log WHERE actor = 'collector:uns' AND action LIKE 'collector.%'").to_pylist()]
        assert actions == ["collector.connect"], actions

        # DDEATH: the device's metrics lose communication; the node's do not.
        # (Its time, now, must come after the samples sent ahead of the clock.)
        while time.time() * 1000 <= t0 + 1200:
            time.sleep(0.05)
        edge.device_death("press7")
        eventually(lambda: latest(server)[temperature][2] == BAD_NO_COMMUNICATION, what="DDEATH")
        after = latest(server)
        device_tags = [t for t in births if ".press7." in t or t == MAPPED]
        assert {after[t][2] for t in device_tags} == {BAD_NO_COMMUNICATION}, after
        assert after[f"{T}.Line.Speed"] == (13.0, None, 0), after

        # The node drops off the network: the broker's will (NDEATH) marks
        # the node's metrics; edge2 stays good.
        edge.die()
        eventually(lambda: latest(server)[f"{T}.Line.Speed"][2] == BAD_NO_COMMUNICATION, what="NDEATH")
        after = latest(server)
        assert {after[t][2] for t in births} == {BAD_NO_COMMUNICATION}, after
        assert after["site1.plant1.edge2.Flow"] == (3.0, None, 0), after
        bad = server.query(
            f"SELECT tag, count(*) AS n FROM samples WHERE tag LIKE 'site1.%' AND quality = {BAD_NO_COMMUNICATION} GROUP BY tag"
        ).to_pylist()
        assert {r["tag"]: r["n"] for r in bad} == {t: 1 for t in births}, bad
        edge2.close()
    finally:
        listener.close()


def test_template_namespace_and_host_restart(server_factory, broker, pb, tmp_path):
    """Over TLS to the broker: a device with 2 000 metrics needs no mapping
    line; lotline killed goes offline by its will; back, it asks the node it
    does not know for a rebirth and collects again."""
    server = connected_server(server_factory, tmp_path, mapping(broker, tls=True))
    many = Device("cnc4", [Metric(f"Spindle/Zone{i:04d}/Load", DOUBLE, float(i), alias=100 + i, unit="%")
                           for i in range(2000)])
    edge = EdgeNode(pb, broker, "plant1", "edge3", [], [many]).connect()
    prefix = "site1.plant1.edge3.cnc4."
    eventually(lambda: len(latest(server, prefix)) == 2000, what="2000 templated tags")
    edge.data({m.name: m.value + 0.5 for m in many.metrics}, device="cnc4")
    eventually(lambda: server.client.count(f"tag LIKE '{prefix}%'") == 4000, what="2000 data samples")
    assert server.client.scalar(f"SELECT count(*) FROM tags WHERE tag LIKE '{prefix}%' AND unit = 'P1'") == 2000
    assert latest(server, prefix)[f"{prefix}Spindle.Zone1999.Load"] == (1999.5, None, 0)

    listener = Listener(broker, f"spBv1.0/STATE/{HOST_ID}")
    try:
        eventually(lambda: host_state(listener).get("online") is True, what="STATE online")
        server.kill()
        eventually(lambda: host_state(listener).get("online") is False, what="STATE offline by the will")

        # Data sent while lotline is away is not seen (no session); the node
        # keeps publishing, and lotline back asks it for a rebirth.
        edge.data({"Spindle/Zone0000/Load": 7.0}, device="cnc4")
        server.start()
        eventually(lambda: host_state(listener).get("online") is True, what="STATE online again")
        eventually(lambda: status(server)["state"] == "connected", what="the reconnection")
        edge.data({"Spindle/Zone0000/Load": 8.0}, device="cnc4")
        eventually(lambda: edge.rebirth_requests >= 1, what="a rebirth request to the unknown node")
        time.sleep(0.5)
        edge.data({"Spindle/Zone0000/Load": 9.0}, device="cnc4")
        eventually(lambda: latest(server, prefix)[f"{prefix}Spindle.Zone0000.Load"][0] == 9.0,
                   what="data after the rebirth")
        assert status(server)["resync_requests"] >= 1
    finally:
        listener.close()
        edge.close()


def test_the_same_mapping_drives_lotline_collect(server_factory, broker, pb, tmp_path):
    """`lotline collect` at the edge runs the Sparkplug collector of the
    same mapping file (here in MQTT 5) and forwards what it collects."""
    from test_collect_edge import Edge

    plant = tmp_path / "plant.toml"
    plant.write_text(mapping(broker, "[[collector.map]]", 'source = "plant1/edge9//Line/Speed"',
                             'tag = "site1.line9.speed"', 'equipment = "site1.line9"', mqtt5=True))
    server = server_factory()
    edge_process = Edge(server.binary, server, plant, tmp_path / "queue", tmp_path / "edge.log")
    edge_process.start()
    node = None
    try:
        listener = Listener(broker, f"spBv1.0/STATE/{HOST_ID}")
        eventually(lambda: host_state(listener).get("online") is True, what="the edge's STATE online")
        listener.close()
        # mosquitto -v logs each client's protocol level: p5 is MQTT 5.
        assert f"as lotline-{HOST_ID} (p5," in broker.log_text(), broker.log_text()[-2000:]
        node = EdgeNode(pb, broker, "plant1", "edge9", NODE_METRICS, [press()]).connect()
        # A millisecond after the birth: one (tag, ts) holds one reading.
        t0 = int(time.time() * 1000) + 1
        node.data({"Line/Speed": 14.0}, ts_ms=t0)
        node.data({"Temperature": 185.0}, device="press7", ts_ms=t0)
        ms = 1_000_000
        eventually(lambda: (t0 * ms, 14.0, None, 0) in samples_of(server, "site1.line9.speed"),
                   what="the forwarded sample of the mapped metric")
        eventually(lambda: (t0 * ms, 185.0, None, 0) in samples_of(server, "site1.plant1.edge9.press7.Temperature"),
                   what="the forwarded sample of a templated metric")
        assert [s[1] for s in samples_of(server, "site1.line9.speed")] == [12.5, 14.0]
        equipment = server.query("SELECT DISTINCT equipment FROM samples WHERE tag = 'site1.line9.speed'")
        assert equipment.column(0).to_pylist() == ["site1.line9"]
    finally:
        if node is not None:
            node.close()
        assert edge_process.stop() == 0, (tmp_path / "edge.log").read_text()[-3000:]
