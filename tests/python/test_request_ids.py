"""A resent request with the same client request id is not written twice
(issue 14): gRPC `WriteRequest.request_id`, the `x-lotline-request-id`
header of a Flight SQL (ADBC) ingest and of an InfluxDB line-protocol POST.
The ids survive a SIGKILL (they are in the write's WAL group, with its audit
entry) and a flush and restart (in the audit_log segments); a different id
writes again; a bad id is refused naming the problem.
"""

from __future__ import annotations

import pytest

from lotline_testlib import NS_PER_S, batch_for_tag, http_request, ns
from test_grpc_ingest import Api, pb, request, sample  # noqa: F401  (pb is a fixture)

T0 = ns(2026, 3, 4, 5)
HEADER = "x-lotline-request-id"
ADBC_HEADER = f"adbc.flight.sql.rpc.call_header.{HEADER}"


def count(server, tag: str) -> int:
    return server.client.count(f"tag = '{tag}'")


def writes_with_id(server, request_id: str) -> int:
    return server.client.scalar(
        f"SELECT count(*) FROM audit_log WHERE action = 'write' AND detail LIKE '% request_id={request_id}'"
    )


def test_resends_with_one_request_id_are_written_once(server_factory, pb):  # noqa: F811
    server = server_factory()
    tag_grpc = "site1.area3.line10.unit10.TT00010.PV"
    batch = [sample(pb, tag_grpc, T0 + i * NS_PER_S, float(i)) for i in range(50)]

    def grpc_write(request_id: str):
        api = Api(pb, server)
        try:
            req = request(pb, batch)
            req.request_id = request_id
            return api.write([req, req])  # the same request twice on one stream, too
        finally:
            api.close()

    reply = grpc_write("gw7-000001")
    assert (reply.accepted_requests, reply.accepted_rows) == (2, 100), reply
    reply = grpc_write("gw7-000001")
    assert (reply.accepted_requests, reply.accepted_rows) == (2, 100), "a resend answers as the first write"
    assert count(server, tag_grpc) == 50
    assert writes_with_id(server, "gw7-000001") == 1

    # ADBC ingest with the header, three times.
    tag_flight = "site1.area3.line10.unit11.PT00011.PV"
    client = server.client
    client.conn.adbc_connection.set_options(**{ADBC_HEADER: "adbc-batch-17"})
    for _ in range(3):
        assert client.ingest(batch_for_tag(tag_flight, 40, T0)) == 40
    assert count(server, tag_flight) == 40

    # Line protocol with the header, three times; another id writes again.
    tag_line = "site1.area3.line10.unit12.FT00012.PV"
    body = "\n".join(f"{tag_line} value={i}.5 {T0 + i * NS_PER_S}" for i in range(30)).encode()
    # Another id's request: the next 30 s (an exact resend of the first
    # one's readings would not be written again whatever its id).
    later = "\n".join(f"{tag_line} value={i}.5 {T0 + i * NS_PER_S}" for i in range(30, 60)).encode()

    def post(request_id: str):
        reply = http_request(
            f"{server.http_url}/api/v2/write?bucket=plant&precision=ns", "POST",
            later if request_id == "lp-2" else body,
            {"Authorization": f"Token admin:{server.password}", HEADER: request_id},
        )
        assert reply.status == 204, reply

    for _ in range(3):
        post("lp-1")
    assert count(server, tag_line) == 30
    post("lp-2")
    assert count(server, tag_line) == 60, "another request id is another write"

    # The ids survive a crash (WAL) and a flush and restart (audit segments).
    server.kill()
    server.start()
    grpc_write("gw7-000001")
    post("lp-1")
    assert (count(server, tag_grpc), count(server, tag_line)) == (50, 60)
    server.flush()
    server.restart()
    grpc_write("gw7-000001")
    post("lp-2")
    assert (count(server, tag_grpc), count(server, tag_line)) == (50, 60)

    # A bad id is refused, naming the problem; nothing is written.
    reply = grpc_write("has space")
    assert reply.accepted_requests == 0 and "request id 'has space' is not valid" in reply.errors[0].reason, reply
    bad = http_request(
        f"{server.http_url}/api/v2/write?bucket=plant&precision=ns", "POST", body,
        {"Authorization": f"Token admin:{server.password}", HEADER: "x" * 200},
    )
    assert bad.status == 400 and b"is not valid" in bad.body, bad
    assert count(server, tag_line) == 60
