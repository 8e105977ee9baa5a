"""InfluxDB line protocol over HTTP (`POST /api/v2/write`), as Telegraf sends it.

Every write goes through the real server and is read back with SQL over ADBC,
so these tests pin the documented mapping (README, docs/INTERFACES.md): one
sample per field, tag = measurement[.key=value...][.field], context tag keys
to columns, strings to `text`, whole requests accepted (204) or refused.
"""

from __future__ import annotations

import gzip
import time

import pyarrow.flight as flight
import pytest

from lotline_testlib import (
    ADMIN_USER,
    DEFAULT_PASSWORD,
    NS_PER_S,
    flight_client,
    http_request,
    ns,
)

TOKEN = {"Authorization": f"Token {ADMIN_USER}:{DEFAULT_PASSWORD}"}
T0 = ns(2026, 3, 1, 8, 0, 0)

# ts as integer nanoseconds: exact, whatever Python's datetime can hold.
SAMPLE_COLUMNS = "tag, CAST(ts AS BIGINT) AS ts, value, text, quality, equipment, work_order, lot"


def write(server, body, *, query: str = "", headers=None, gzip_body: bool = False):
    data = body.encode() if isinstance(body, str) else body
    hdrs = dict(TOKEN if headers is None else headers)
    hdrs["Content-Type"] = "text/plain; charset=utf-8"
    if gzip_body:
        data = gzip.compress(data)
        hdrs["Content-Encoding"] = "gzip"
    return http_request(f"{server.http_url}/api/v2/write{query}", "POST", data, hdrs)


def rows(server, where: str = "") -> list[tuple]:
    sql = f"SELECT {SAMPLE_COLUMNS} FROM samples {where} ORDER BY tag, ts"
    table = server.query(sql)
    return [tuple(r.values()) for r in table.to_pylist()]


TELEGRAF_PAYLOAD = f"""\
cpu,cpu=cpu0,host=plc1 usage_idle=98.5,usage_user=1.25 {T0}
cpu,host=plc1,cpu=cpu1 usage_idle=97i {T0}
oven,equipment=line1.oven,work_order=WO-7,lot=L-1001 temperature=198.4,door_open=false,state="heating up",cycles=42u {T0 + NS_PER_S}
press,equipment=line2.press,quality=0x40000000 value=12.5 {T0 + 2 * NS_PER_S}
gateway\\ 1,site=Plant\\,North uptime=T,note="says \\"hi\\"" {T0 + 3 * NS_PER_S}
"""

EXPECTED = sorted([
    ("cpu.cpu=cpu0.host=plc1.usage_idle", T0, 98.5, None, 0, None, None, None),
    ("cpu.cpu=cpu0.host=plc1.usage_user", T0, 1.25, None, 0, None, None, None),
    ("cpu.cpu=cpu1.host=plc1.usage_idle", T0, 97.0, None, 0, None, None, None),
    ("oven.temperature", T0 + NS_PER_S, 198.4, None, 0, "line1.oven", "WO-7", "L-1001"),
    ("oven.door_open", T0 + NS_PER_S, 0.0, None, 0, "line1.oven", "WO-7", "L-1001"),
    ("oven.state", T0 + NS_PER_S, None, "heating up", 0, "line1.oven", "WO-7", "L-1001"),
    ("oven.cycles", T0 + NS_PER_S, 42.0, None, 0, "line1.oven", "WO-7", "L-1001"),
    ("press", T0 + 2 * NS_PER_S, 12.5, None, 0x40000000, "line2.press", None, None),
    ("gateway 1.site=Plant,North.uptime", T0 + 3 * NS_PER_S, 1.0, None, 0, None, None, None),
    ("gateway 1.site=Plant,North.note", T0 + 3 * NS_PER_S, None, 'says "hi"', 0, None, None, None),
])


@pytest.mark.parametrize("gzip_body", [False, True], ids=["plain", "gzip"])
def test_telegraf_payload_lands_as_documented(server, gzip_body):
    reply = write(server, TELEGRAF_PAYLOAD, query="?org=plant&bucket=samples", gzip_body=gzip_body)
    assert reply.status == 204, reply
    assert reply.body == b""
    assert rows(server) == EXPECTED


def test_acknowledged_write_survives_sigkill(server):
    assert write(server, TELEGRAF_PAYLOAD).status == 204
    server.kill()
    server.start()
    assert rows(server) == EXPECTED


@pytest.mark.parametrize(
    "precision,stamp",
    [("ns", T0), ("us", T0 // 1_000), ("ms", T0 // 1_000_000), ("s", T0 // NS_PER_S)],
)
def test_precision(server, precision, stamp):
    reply = write(server, f"prec,p={precision} value=1 {stamp}\n", query=f"?precision={precision}&bucket=x")
    assert reply.status == 204, reply
    assert [(r[0], r[1]) for r in rows(server)] == [(f"prec.p={precision}", T0)]


def test_missing_timestamp_gets_server_receive_time(server):
    before = time.time_ns()
    assert write(server, "clock value=1\nclock.other value=2").status == 204
    after = time.time_ns()
    got = rows(server)
    assert len(got) == 2
    assert got[0][1] == got[1][1], "one receive time for the whole request"
    assert before - NS_PER_S <= got[0][1] <= after + NS_PER_S


GOOD = f"ok value=1 {T0}\n"

MALFORMED = [
    # (body, line, fragment of the reason)
    (GOOD * 2 + f"bad value=oops {T0}\n" + GOOD, 3, "field 'value'"),
    (GOOD + "no_fields\n" + GOOD, 2, "field set"),
    (GOOD * 3 + f'm s="never closed {T0}\n', 4, "no closing"),
    (GOOD + f"m,quality=good value=1 {T0}\n", 2, "quality"),
    (GOOD + f"m value=1 -5000000000\n", 2, "before 1970"),
    (GOOD + f"m value=1 {T0} trailing\n", 2, "after the timestamp"),
    (GOOD + f"m,t=1,t=2 value=1 {T0}\n", 2, "appears twice"),
    (GOOD + f"m value=NaN {T0}\n", 2, "invalid value 'NaN'"),
    (GOOD + f"{'m' * 1020},site=a value=1 {T0}\n", 2, "is 1027 bytes long; names are limited to 1024 bytes"),
]


@pytest.mark.parametrize("body,line,reason", MALFORMED, ids=[f"line{m[1]}-{i}" for i, m in enumerate(MALFORMED)])
def test_malformed_request_is_rejected_whole(server, body, line, reason):
    reply = write(server, body)
    assert reply.status == 400, reply
    err = reply.json()
    assert err["code"] == "invalid", err
    assert err["message"].startswith(f"line {line}"), err
    assert reason in err["message"], err
    assert server.client.count() == 0, "nothing of a rejected request may be written"
    # The same lines without the bad one are accepted.
    assert write(server, GOOD).status == 204
    assert server.client.count() == 1


def test_invalid_utf8_precision_and_encoding(server):
    reply = write(server, GOOD.encode() + b"m,t=\xff value=1\n")
    assert (reply.status, reply.json()["code"]) == (400, "invalid"), reply
    assert reply.json()["message"].startswith("line 2: not valid UTF-8")
    reply = write(server, GOOD, query="?precision=h")
    assert reply.status == 400 and "precision 'h'" in reply.json()["message"], reply
    reply = write(server, GOOD, headers={**TOKEN, "Content-Encoding": "br"})
    assert reply.status == 415 and reply.json()["code"] == "unsupported media type", reply
    reply = write(server, b"not gzip at all", headers={**TOKEN, "Content-Encoding": "gzip"})
    assert reply.status == 400 and "gzip" in reply.json()["message"], reply
    assert server.client.count() == 0


def test_authentication(server):
    for headers in [
        {},
        {"Authorization": f"Token {ADMIN_USER}:wrong"},
        {"Authorization": "Token not-a-token"},
        {"Authorization": f"Basic {ADMIN_USER}:{DEFAULT_PASSWORD}"},
    ]:
        reply = write(server, GOOD, headers=headers)
        assert reply.status == 401, (headers, reply)
        assert reply.json()["code"] == "unauthorized", reply
    assert server.client.count() == 0

    # A bearer token from the Flight SQL handshake works, as Token or Bearer.
    client = flight_client(server.port)
    try:
        key, value = client.authenticate_basic_token(ADMIN_USER, DEFAULT_PASSWORD, flight.FlightCallOptions(timeout=10))
    finally:
        client.close()
    token = value.decode().removeprefix("Bearer ")
    # Three readings (one per (tag, ts): a resend would not be written again).
    for k, authorization in enumerate([f"Token {token}", f"Bearer {token}", f"Bearer {ADMIN_USER}:{DEFAULT_PASSWORD}"]):
        body = f"ok value=1 {T0 + k}\n"
        assert write(server, body, headers={"Authorization": authorization}).status == 204
    assert server.client.count() == 3


def test_without_auth_needs_no_token(server_factory):
    server = server_factory("--without-auth", password=None)
    assert write(server, GOOD, headers={}).status == 204
    health = http_request(f"{server.http_url}/health").json()
    # The sample and the write's audit_log entry.
    assert health["authentication"] is False and health["buffered_rows"] == 1 + 1


def test_request_size_limit_compressed_and_decompressed(server_factory):
    server = server_factory("--max-request-bytes", "100000")
    big = "".join(f"m value={i} {T0 + i}\n" for i in range(10_000))  # ~300 kB, compresses well
    assert len(big) > 100_000 and len(gzip.compress(big.encode())) < 100_000
    reply = write(server, big)
    assert reply.status == 413 and reply.json()["code"] == "request too large", reply
    reply = write(server, big, gzip_body=True)
    assert reply.status == 413, reply
    assert "max_request_bytes" in reply.json()["message"]
    assert server.client.count() == 0
    small = "".join(f"m value={i} {T0 + i}\n" for i in range(500))
    assert write(server, small, gzip_body=True).status == 204
    assert server.client.count() == 500
