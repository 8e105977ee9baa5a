"""lotline as InfluxDB clients see it: the official InfluxDB 2 Python client
(`influxdb-client`) checks health, readiness and ping and writes line
protocol; InfluxDB 1's `/write` (precision `m`, `h`; `u`/`p` or Basic
credentials) and InfluxDB 3's `/api/v3/write_lp` (`precision=auto`) write
through the same parser, each answering errors in its own API's shape."""

from __future__ import annotations

import base64

import pytest
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from lotline_testlib import NS_PER_S, http_request, ns

T0 = ns(2026, 1, 1, 0)


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory()


@pytest.fixture(scope="module")
def influx(srv):
    client = InfluxDBClient(url=srv.http_url, token=f"admin:{srv.password}", org="plant", timeout=30_000)
    yield client
    client.close()


def rows(srv, tag: str) -> list[tuple[int, float]]:
    table = srv.client.query(f"SELECT CAST(ts AS BIGINT) AS ts, value FROM samples WHERE tag = '{tag}' ORDER BY ts")
    return list(zip(table.column("ts").to_pylist(), table.column("value").to_pylist()))


def test_the_influxdb_client_sees_a_healthy_ready_server(srv, influx):
    health = influx.health()
    assert health.status == "pass", health
    assert health.name and health.version, health
    assert influx.ping() is True
    assert influx.version() != "unknown"
    ready = influx.ready()
    assert ready.status == "ready" and ready.started is not None, ready
    # The header InfluxDB clients read off /ping.
    reply = http_request(f"{srv.http_url}/ping")
    assert reply.status == 204 and reply.headers["X-Influxdb-Version"], reply


def test_the_influxdb_client_writes_and_is_refused_whole(srv, influx):
    write = influx.write_api(write_options=SYNCHRONOUS)
    seconds = T0 // NS_PER_S
    write.write(
        bucket="b", record=[f"ic,equipment=line1.oven temp=198.5 {seconds}", f"ic temp=199 {seconds + 1}"],
        write_precision=WritePrecision.S,
    )
    assert rows(srv, "ic.temp") == [(T0, 198.5), (T0 + NS_PER_S, 199.0)]
    with pytest.raises(Exception) as err:
        write.write(bucket="b", record=[f"ic temp=1 {seconds + 2}", "ic temp= 3"], write_precision=WritePrecision.S)
    assert "line 2" in str(err.value), err.value
    assert len(rows(srv, "ic.temp")) == 2


def test_influxdb_1_write_with_its_precisions_and_credentials(srv):
    minutes = T0 // (60 * NS_PER_S)
    url = f"{srv.http_url}/write?db=plant&precision=m&u=admin&p={srv.password}"
    reply = http_request(url, "POST", f"v1 temp=5 {minutes}".encode())
    assert reply.status == 204, reply
    basic = base64.b64encode(f"admin:{srv.password}".encode()).decode()
    hours = T0 // (3600 * NS_PER_S)
    reply = http_request(
        f"{srv.http_url}/write?db=plant&precision=h", "POST", f"v1 temp=6 {hours + 1}".encode(),
        headers={"Authorization": f"Basic {basic}"},
    )
    assert reply.status == 204, reply
    assert rows(srv, "v1.temp") == [(T0, 5.0), (T0 + 3600 * NS_PER_S, 6.0)]
    reply = http_request(f"{srv.http_url}/write?precision=fortnight&u=admin&p={srv.password}", "POST", b"v1 temp=7")
    assert reply.status == 400 and "fortnight" in reply.json()["error"], reply
    reply = http_request(f"{srv.http_url}/write?u=admin&p=wrong", "POST", b"v1 temp=7")
    assert reply.status == 401 and "error" in reply.json(), reply


def test_influxdb_3_write_lp_guesses_each_timestamps_unit(srv):
    seconds = T0 // NS_PER_S
    body = "\n".join(
        [f"v3 temp=1 {seconds}", f"v3 temp=2 {seconds * 1000 + 1}", f"v3 temp=3 {(seconds + 2) * 1_000_000}"]
    )
    headers = {"Authorization": f"Token admin:{srv.password}"}
    reply = http_request(f"{srv.http_url}/api/v3/write_lp?db=plant", "POST", body.encode(), headers=headers)
    assert reply.status == 204, reply
    assert rows(srv, "v3.temp") == [(T0, 1.0), (T0 + 1_000_000, 2.0), (T0 + 2 * NS_PER_S, 3.0)]
    reply = http_request(
        f"{srv.http_url}/api/v3/write_lp?db=plant&precision=second", "POST", b"v3 temp=x 1", headers=headers
    )
    assert reply.status == 400, reply
    assert "line 1" in reply.json()["error"], reply
