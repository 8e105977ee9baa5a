"""The MTConnect collector against a fixture agent (tests/python/
mtconnect_agent.py: probe, current and sample documents of the standard's
structure, a ring buffer with instanceId and sequences; issue 17).

`lotline serve --collectors plant.toml` probes the agent, seeds from
`/current` and follows `/sample`: samples, events and conditions land at
the agent's timestamps with the documented values, texts and qualities;
UNAVAILABLE is BadNoCommunication; a buffer overrun writes one BadDataLost
marker per item and is counted; an agent restart re-probes; an outage marks
every item and, back, what the agent kept meanwhile is read. The same
mapping drives `lotline collect` at the edge.
"""

from __future__ import annotations

import time

import pytest

from lotline_testlib import eventually, free_port
from mtconnect_agent import Agent

BAD = 0x80000000
UNCERTAIN = 0x40000000
BAD_NO_COMMUNICATION = 0x80310000
BAD_DATA_LOST = 0x809D0000
T = "site1.VMC-3Axis"  # the template's prefix
X = "site1.cell3.vmc.x_position"  # mapped by id
EXECUTION = "site1.cell3.vmc.execution"  # mapped by name


@pytest.fixture
def agent():
    agent = Agent(free_port(), buffer_size=64).start()
    yield agent
    agent.stop()


def mapping(port: int) -> str:
    return f"""
[[collector]]
name = "vmc"
kind = "mtconnect"
endpoint = "http://127.0.0.1:{port}"
poll_interval_ms = 100
equipment = "site1.cell3.vmc"
tag_template = "site1.{{device}}.{{component}}.{{name}}"

[[collector.map]]
source = "Xact"
tag = "{X}"
unit = "mm"
scale = 0.001
offset = 0.0

[[collector.map]]
source = "execution"
tag = "{EXECUTION}"
"""


def now_us() -> int:
    """Now in nanoseconds, to the microsecond (the agent's resolution)."""
    now = time.time_ns()
    return now - now % 1000


def latest(server) -> dict[str, tuple]:
    rows = server.query("SELECT tag, value, text, quality FROM last_values WHERE tag LIKE 'site1.%'").to_pylist()
    return {r["tag"]: (r["value"], r["text"], r["quality"]) for r in rows}


def samples_of(server, tag: str) -> list[tuple]:
    rows = server.query(
        f"SELECT CAST(ts AS BIGINT) AS ts, value, text, quality FROM samples WHERE tag = '{tag}' ORDER BY ts, quality"
    ).to_pylist()
    return [(r["ts"], r["value"], r["text"], r["quality"]) for r in rows]


def status(server) -> dict:
    rows = server.query("SELECT * FROM collector_status").to_pylist()
    assert [r["name"] for r in rows] == ["vmc"], rows
    return rows[0]


TAGS = [X, f"{T}.Z.Zact", f"{T}.C.Sspeed", EXECUTION, f"{T}.path.part_count", f"{T}.controller.logic_cond",
        f"{T}.avail"]


def test_mtconnect_values_conditions_gaps_restarts_and_outages(server_factory, agent, tmp_path):
    base = time.time_ns() - 60_000_000_000  # the agent's clock: a minute ago, microseconds
    base -= base % 1000
    seeded = {"Xact": "105.5", "Zact": "-20", "Sspeed": "1200", "exec": "READY", "pcount": "41", "avail": "AVAILABLE"}
    for i, (item, text) in enumerate(seeded.items()):
        agent.add(item, text, ts_ns=base + i * 1000)
    agent.add("logic", "", ts_ns=base + 10_000, state="Normal")

    plant = tmp_path / "plant.toml"
    plant.write_text(mapping(agent.port))
    server = server_factory("--collectors", str(plant))
    expected = {
        X: (0.1055, None, 0), f"{T}.Z.Zact": (-20.0, None, 0), f"{T}.C.Sspeed": (1200.0, None, 0),
        EXECUTION: (None, "READY", 0), f"{T}.path.part_count": (None, "41", 0),
        f"{T}.controller.logic_cond": (None, "NORMAL", 0), f"{T}.avail": (None, "AVAILABLE", 0),
    }
    eventually(lambda: latest(server) == expected, what=f"the seeded values, have {latest(server)}")
    assert samples_of(server, X) == [(base, 0.1055, None, 0)], "seeded from /current: only the newest"
    units = {r["tag"]: (r["unit"], r["equipment"]) for r in server.query(
        "SELECT tag, unit, equipment FROM tags WHERE tag LIKE 'site1.%'").to_pylist()}
    assert units[X] == ("MMT", "site1.cell3.vmc") and units[f"{T}.C.Sspeed"] == ("RPM", None), units
    assert units[EXECUTION] == (None, "site1.cell3.vmc") and set(units) == set(TAGS), units
    state = status(server)
    assert (state["kind"], state["state"], state["errors"], state["data_gaps"]) == ("mtconnect", "connected", 0, 0)

    # Changes at the agent's timestamps: samples, events, conditions, UNAVAILABLE.
    t = now_us()
    agent.add("Xact", "106.25", ts_ns=t)
    agent.add("exec", "ACTIVE", ts_ns=t + 1000)
    agent.add("logic", "Overtravel", ts_ns=t + 2000, state="Fault")
    agent.add("logic", "Low lubrication", ts_ns=t + 3000, state="Warning")
    agent.add("Sspeed", "UNAVAILABLE", ts_ns=t + 4000)
    agent.add("pcount", "42", ts_ns=t + 5000)
    eventually(lambda: latest(server)[f"{T}.path.part_count"] == (None, "42", 0), what="the part count")
    assert samples_of(server, X)[-1] == (t, 0.10625, None, 0)
    assert samples_of(server, EXECUTION)[-1] == (t + 1000, None, "ACTIVE", 0)
    assert samples_of(server, f"{T}.controller.logic_cond")[-2:] == [
        (t + 2000, None, "FAULT: Overtravel", BAD), (t + 3000, None, "WARNING: Low lubrication", UNCERTAIN)]
    assert samples_of(server, f"{T}.C.Sspeed")[-1] == (t + 4000, None, None, BAD_NO_COMMUNICATION)

    # The buffer (64) overruns between two requests: one BadDataLost per
    # item just after the newest observation read, counted; then the
    # current values.
    burst = [("Zact", str(float(i)), t + 10_000 + i * 1000) for i in range(200)]
    agent.add_many(burst)
    eventually(lambda: latest(server)[f"{T}.Z.Zact"] == (199.0, None, 0), what="the value after the overrun")
    assert status(server)["data_gaps"] == 1
    lost = server.query(f"SELECT tag, CAST(ts AS BIGINT) AS ts FROM samples WHERE quality = {BAD_DATA_LOST}").to_pylist()
    assert sorted(r["tag"] for r in lost) == sorted(TAGS) and {r["ts"] for r in lost} == {t + 5001}, lost
    zact = samples_of(server, f"{T}.Z.Zact")
    assert zact[-2:] == [(t + 5001, None, None, BAD_DATA_LOST), (t + 10_000 + 199_000, 199.0, None, 0)], zact[-3:]

    # The agent restarts: a new instance, sequences from 1; probed again.
    # It starts with every item UNAVAILABLE, then has two values.
    restarted = now_us()
    t2 = restarted + 1000
    agent.restart(restarted, {"Xact": ("107", t2), "exec": ("STOPPED", t2 + 1000)})
    eventually(lambda: latest(server)[EXECUTION] == (None, "STOPPED", 0), what="values after the restart")
    assert samples_of(server, X)[-1] == (t2, 0.107, None, 0)
    assert status(server)["resync_requests"] == 1
    assert agent.requests.count("/probe") == 2, agent.requests[:5]

    # An outage: every item marked when it is seen; the agent keeps
    # collecting, and back, lotline reads what it kept.
    agent.stop()
    eventually(lambda: status(server)["state"] == "disconnected", what="the disconnected state")
    eventually(lambda: {q for _, _, q in latest(server).values()} == {BAD_NO_COMMUNICATION}, what="Bad samples")
    during = now_us()
    agent.add("Xact", "108.5", ts_ns=during)
    agent.start()
    eventually(lambda: (during, 0.1085, None, 0) in samples_of(server, X), what="the value kept during the outage")
    assert status(server)["state"] == "connected"
    bad = server.query(
        f"SELECT tag, count(*) AS n FROM samples WHERE quality = {BAD_NO_COMMUNICATION} "
        "AND tag LIKE 'site1.%' GROUP BY tag").to_pylist()
    # Once for the outage; once more for what the restarted agent had not
    # got yet; Sspeed once more for its UNAVAILABLE.
    expected_bad = {tag: 2 for tag in TAGS} | {X: 1, EXECUTION: 1, f"{T}.C.Sspeed": 3}
    assert {r["tag"]: r["n"] for r in bad} == expected_bad, bad
    actions = [r["action"] for r in server.query(
        "SELECT action FROM audit_log WHERE action LIKE 'collector.%' ORDER BY seq").to_pylist()]
    assert actions == ["collector.mapping", "collector.connect", "collector.disconnect", "collector.connect"], actions


def test_the_same_mtconnect_mapping_drives_lotline_collect(server_factory, agent, tmp_path):
    from test_collect_edge import Edge

    plant = tmp_path / "plant.toml"
    plant.write_text(mapping(agent.port))
    server = server_factory()
    edge = Edge(server.binary, server, plant, tmp_path / "queue", tmp_path / "edge.log")
    edge.start()
    try:
        t = now_us()
        agent.add("Xact", "55", ts_ns=t)
        agent.add("exec", "ACTIVE", ts_ns=t + 1000)
        eventually(lambda: (t, 0.055, None, 0) in samples_of(server, X), what="the forwarded sample")
        eventually(lambda: (t + 1000, None, "ACTIVE", 0) in samples_of(server, EXECUTION), what="the forwarded event")
    finally:
        assert edge.stop() == 0, (tmp_path / "edge.log").read_text()[-3000:]
