"""The `lotline.v1` gRPC API (proto/lotline/v1/) from Python, as a gateway uses it.

Stubs are generated from the repository's .proto files with grpcio-tools
into pytest's tmp dir, so these tests pin the published contract: a
client-streaming `IngestService.Write` whose requests are each one atomic
batch (a bad one is listed in the response's errors and nothing of it lands,
the others do), and `AdminService` Flush, Stats and Health. Every write is
read back with SQL over ADBC.
"""

from __future__ import annotations

import base64
import importlib
import math
import sys

import grpc
import pytest
from grpc_tools import protoc

from lotline_testlib import (
    ADMIN_USER,
    DEFAULT_PASSWORD,
    MANUAL_FLUSH,
    NS_PER_S,
    REPO_ROOT,
    bearer_options,
    flight_client,
    http_request,
    ns,
)

T0 = ns(2026, 4, 1, 6, 0, 0)
UNCERTAIN = 0x40000000
BAD = 0x80000000
SAMPLE_COLUMNS = "tag, CAST(ts AS BIGINT) AS ts, value, text, quality, equipment, work_order, lot"
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    """The generated modules: pb.ingest, pb.ingest_grpc, pb.admin, pb.admin_grpc."""
    out = tmp_path_factory.mktemp("grpc_stubs")
    proto_root = REPO_ROOT / "proto"
    files = [str(p.relative_to(proto_root)) for p in sorted((proto_root / "lotline" / "v1").glob("*.proto"))]
    assert files, "no .proto files under proto/lotline/v1"
    rc = protoc.main(
        ["grpc_tools.protoc", f"-I{proto_root}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    )
    assert rc == 0, f"grpc_tools.protoc failed ({rc})"
    sys.path.insert(0, str(out))
    try:
        modules = {
            name: importlib.import_module(f"lotline.v1.{name}")
            for name in ("ingest_pb2", "ingest_pb2_grpc", "admin_pb2", "admin_pb2_grpc")
        }
    finally:
        sys.path.remove(str(out))

    class Modules:
        ingest = modules["ingest_pb2"]
        ingest_grpc = modules["ingest_pb2_grpc"]
        admin = modules["admin_pb2"]
        admin_grpc = modules["admin_pb2_grpc"]

    return Modules


class Api:
    """Stubs on one channel to a server, with its bearer token."""

    def __init__(self, pb, server):
        self.pb = pb
        self.channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        self.ingest = pb.ingest_grpc.IngestServiceStub(self.channel)
        self.admin = pb.admin_grpc.AdminServiceStub(self.channel)
        client = flight_client(server.port)
        try:
            key, value = bearer_options(client, server.password).headers[0]
        finally:
            client.close()
        self.auth = [(key.decode().lower(), value.decode())]

    def write(self, requests, metadata=None):
        return self.ingest.Write(iter(requests), metadata=self.auth if metadata is None else metadata, timeout=TIMEOUT_S)

    def close(self):
        self.channel.close()


@pytest.fixture
def api(pb, server):
    a = Api(pb, server)
    yield a
    a.close()


def sample(pb, tag, ts, value=None, *, text=None, quality=0, **context):
    s = pb.ingest.Sample(tag=tag, ts_ns=ts, quality=quality)
    if value is not None:
        s.value = value
    if text is not None:
        s.text = text
    if context:
        s.context.CopyFrom(pb.ingest.Context(**context))
    return s


def request(pb, samples, **context):
    req = pb.ingest.WriteRequest(samples=samples)
    if context:
        req.context.CopyFrom(pb.ingest.Context(**context))
    return req


def rows(server, where: str = "") -> list[tuple]:
    table = server.query(f"SELECT {SAMPLE_COLUMNS} FROM samples {where} ORDER BY tag, ts")
    out = []
    for r in table.to_pylist():
        # NaN never equals itself: compare it as text.
        if isinstance(r["value"], float) and math.isnan(r["value"]):
            r["value"] = "NaN"
        out.append(tuple(r.values()))
    return out


def stream_with_context(pb):
    """Three requests: request context, text and qualities, per-sample overrides."""
    oven = [sample(pb, "line1.oven.temp", T0 + i * NS_PER_S, 180.0 + i / 4) for i in range(4)]
    states = [
        sample(pb, "line1.oven.state", T0, text="heating"),
        sample(pb, "line1.oven.state", T0 + NS_PER_S, 2.0, text="running", quality=UNCERTAIN),
        sample(pb, "line1.oven.flow", T0, float("nan"), quality=BAD),
        sample(pb, "line1.oven.flow", T0 + NS_PER_S, quality=BAD | 0x000A0000),
    ]
    press = [
        sample(pb, "line2.press.force", T0, 12.5, equipment="line2.press", lot="L-2"),
        sample(pb, "line2.press.force", T0 + NS_PER_S, 12.75, lot="L-3"),
        sample(pb, "line2.press.force", T0 + 2 * NS_PER_S, 13.0),
    ]
    return [
        request(pb, oven, equipment="line1.oven", work_order="WO-1", lot="L-1"),
        request(pb, states, equipment="line1.oven"),
        request(pb, press, equipment="line2.mixer", work_order="WO-2"),
    ]


EXPECTED = sorted(
    [("line1.oven.temp", T0 + i * NS_PER_S, 180.0 + i / 4, None, 0, "line1.oven", "WO-1", "L-1") for i in range(4)]
    + [
        ("line1.oven.state", T0, None, "heating", 0, "line1.oven", None, None),
        ("line1.oven.state", T0 + NS_PER_S, 2.0, "running", UNCERTAIN, "line1.oven", None, None),
        ("line1.oven.flow", T0, "NaN", None, BAD, "line1.oven", None, None),
        ("line1.oven.flow", T0 + NS_PER_S, None, None, BAD | 0x000A0000, "line1.oven", None, None),
        ("line2.press.force", T0, 12.5, None, 0, "line2.press", "WO-2", "L-2"),
        ("line2.press.force", T0 + NS_PER_S, 12.75, None, 0, "line2.mixer", "WO-2", "L-3"),
        ("line2.press.force", T0 + 2 * NS_PER_S, 13.0, None, 0, "line2.mixer", "WO-2", None),
    ]
)


def test_stream_lands_exactly_and_durably(pb, server, api):
    reply = api.write(stream_with_context(pb))
    assert (reply.requests, reply.accepted_requests, reply.accepted_rows, reply.rejected_rows) == (3, 3, 11, 0)
    assert list(reply.errors) == []
    assert rows(server) == EXPECTED

    # Acknowledged means in the WAL: a SIGKILL loses nothing.
    server.restart(kill=True)
    assert rows(server) == EXPECTED

    # Counters start anew with the process: one more sample shows in them.
    fresh = Api(pb, server)
    try:
        fresh.write([request(pb, [sample(pb, "after.restart", T0, 1.0)])])
    finally:
        fresh.close()
    metrics = http_request(f"{server.http_url}/metrics").body.decode()
    assert 'lotline_rows_ingested_total{table="samples",interface="grpc"} 1' in metrics, metrics


def test_bad_request_is_rejected_whole_and_the_others_land(pb, server, api):
    good = lambda tag: [sample(pb, tag, T0 + i * NS_PER_S, float(i)) for i in range(3)]  # noqa: E731
    nan_when_good = good("bad.nan")
    nan_when_good[2] = sample(pb, "bad.nan", T0 + 2 * NS_PER_S, float("nan"))
    before_epoch = good("bad.epoch")
    before_epoch[0] = sample(pb, "bad.epoch", -5, 1.0)
    empty_tag = good("bad.tag")
    empty_tag[1] = sample(pb, "", T0, 1.0)
    reply = api.write(
        [
            request(pb, good("ok.first")),
            request(pb, nan_when_good),
            request(pb, good("ok.second")),
            request(pb, before_epoch),
            request(pb, empty_tag),
            request(pb, []),
        ]
    )
    assert (reply.requests, reply.accepted_requests, reply.accepted_rows, reply.rejected_rows) == (6, 3, 6, 9)
    errors = [(e.request, e.row if e.HasField("row") else None, e.column, e.value) for e in reply.errors]
    assert errors[0] == (1, 2, "value", "NaN")
    assert errors[1][:3] == (3, 0, "ts") and errors[1][3].startswith("1969-12-31T23:59:59.999999995")
    assert errors[2] == (4, 1, "tag", "")
    assert "Good" in reply.errors[0].reason and "1970" in reply.errors[1].reason
    assert "empty" in reply.errors[2].reason

    # Nothing of a rejected request landed, everything of the others did.
    assert server.client.count() == 6
    assert server.client.count("tag LIKE 'bad.%' OR tag = ''") == 0
    assert {r[0] for r in rows(server)} == {"ok.first", "ok.second"}


def test_authentication(pb, server, api):
    one = [request(pb, [sample(pb, "auth.t", T0, 1.0)])]
    for metadata in ([], [("authorization", "Bearer not-a-token")], [("authorization", "Basic !!")]):
        with pytest.raises(grpc.RpcError) as err:
            api.write(one, metadata=metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, err.value
    with pytest.raises(grpc.RpcError) as err:
        api.admin.Stats(api.pb.admin.StatsRequest(), timeout=TIMEOUT_S)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Bearer" in err.value.details()
    wrong = base64.b64encode(f"{ADMIN_USER}:nope".encode()).decode()
    with pytest.raises(grpc.RpcError) as err:
        api.write(one, metadata=[("authorization", f"Basic {wrong}")])
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert server.client.count() == 0

    # Basic credentials work on the call itself, without a Flight handshake.
    basic = base64.b64encode(f"{ADMIN_USER}:{DEFAULT_PASSWORD}".encode()).decode()
    reply = api.write(one, metadata=[("authorization", f"Basic {basic}")])
    assert reply.accepted_rows == 1
    assert server.client.count() == 1

    # Health answers without a token, like HTTP /health.
    health = api.admin.Health(api.pb.admin.HealthRequest(), timeout=TIMEOUT_S)
    assert health.status == "ok" and health.authentication and health.version


def test_admin_flush_and_stats(pb, server_factory):
    server = server_factory(*MANUAL_FLUSH)
    api = Api(pb, server)
    try:
        reply = api.write(stream_with_context(pb))
        assert reply.accepted_rows == 11

        def samples_stats():
            stats = api.admin.Stats(pb.admin.StatsRequest(), metadata=api.auth, timeout=TIMEOUT_S)
            table = {t.table: t for t in stats.tables}["samples"]
            return stats, table

        stats, table = samples_stats()
        assert (table.buffered_rows, table.segments, table.segment_rows, table.rows) == (11, 0, 0, 11)
        assert table.buffered_bytes > 0 and stats.wal_bytes > 0 and stats.wal_files >= 1
        assert stats.version

        flushed = api.admin.Flush(pb.admin.FlushRequest(), metadata=api.auth, timeout=TIMEOUT_S)
        # 11 samples and the audit_log entries of the three requests.
        assert flushed.rows_written == 11 + 3 and flushed.segments_written >= 2

        stats, table = samples_stats()
        assert table.buffered_rows == 0 and table.rows == 11 and table.segment_rows == 11
        # (The flush also wrote one audit_log segment.)
        assert table.segments == flushed.segments_written - 1 and table.segment_bytes > 0
        assert rows(server) == EXPECTED
    finally:
        api.close()


# A broken message must end its call at once; this deadline only bounds how
# long a server that hangs on one keeps the test waiting.
BROKEN_CALL_DEADLINE_S = 20


def raw_stream_call(server, method: str, messages: list[bytes], auth) -> grpc.RpcError:
    """Calls client-streaming `IngestService/<method>` with raw message bytes
    (no serializer: what a buggy gateway puts on the wire); returns the error
    it must end with."""
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        call = channel.stream_unary(f"/lotline.v1.IngestService/{method}")
        with pytest.raises(grpc.RpcError) as err:
            call(iter(messages), metadata=auth, timeout=BROKEN_CALL_DEADLINE_S)
        return err.value
    finally:
        channel.close()


def not_utf8(message, placeholder: str) -> bytes:
    """`message` serialized, with the string `placeholder` turned into as
    many bytes that are not UTF-8."""
    raw = message.SerializeToString()
    assert raw.count(placeholder.encode()) == 1
    return raw.replace(placeholder.encode(), b"\xff" * len(placeholder))


def assert_still_serving(server, samples: int):
    assert http_request(f"{server.http_url}/health").json()["status"] == "pass"
    assert server.client.count() == samples


def test_a_message_that_does_not_decode_ends_its_call_and_the_server_serves_on(pb, server, api):
    placeholder = "PLACEHOLDER"
    good = request(pb, [sample(pb, "ok.before", T0, 1.0)])
    broken = not_utf8(request(pb, [sample(pb, placeholder, T0, 2.0)]), placeholder)
    after = request(pb, [sample(pb, "ok.after", T0, 3.0)])
    error = raw_stream_call(server, "Write", [good.SerializeToString(), broken, after.SerializeToString()], api.auth)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    # Which request, which field, what is wrong with it, and what was kept.
    details = error.details()
    assert "request 1" in details and "Sample.tag" in details and "UTF-8" in details, details
    assert "1 of the stream's 1 request(s) (1 samples) were written durably" in details, details
    assert_still_serving(server, samples=1)

    lot = pb.ingest.ContextEvent(lot=pb.ingest.Lot(id=placeholder))
    broken = not_utf8(pb.ingest.ContextRequest(events=[lot]), placeholder)
    error = raw_stream_call(server, "WriteContext", [broken], api.auth)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "request 0" in error.details() and "Lot.id" in error.details(), error.details()
    assert_still_serving(server, samples=1)
    assert server.client.count(table="lots") == 0


def test_a_message_over_the_size_limit_ends_its_call_and_the_server_serves_on(pb, server_factory):
    # Messages may be up to max_request_bytes + 1 MiB.
    server = server_factory("--max-request-bytes", "100000")
    api = Api(pb, server)
    try:
        huge = request(pb, [sample(pb, "too.big", T0, text="x" * ((1 << 20) + 200_000))])
        error = raw_stream_call(server, "Write", [huge.SerializeToString()], api.auth)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        assert "request 0" in error.details() and "limit" in error.details(), error.details()
        assert api.write([request(pb, [sample(pb, "ok.after", T0, 1.0)])]).accepted_rows == 1
        assert_still_serving(server, samples=1)
    finally:
        api.close()
