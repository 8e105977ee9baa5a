"""Context events over gRPC (`IngestService.WriteContext`), as an MES adapter
sends them with stubs generated from proto/: equipment, work orders, lots,
production runs and genealogy edges land in the context tables (read back
over Flight SQL with ADBC, with `X_history` and `audit_log`); one request is
atomic across tables; a rewrite needs a reason (request field or
`x-lotline-reason` metadata); a bad event rejects its whole request, naming
event, field and value, while the stream goes on; readers are refused;
acknowledged events survive SIGKILL; edges feed trace_backward and runs stamp
samples written over gRPC afterwards.
"""

from __future__ import annotations

import base64

import grpc
import pytest

from lotline_testlib import ADMIN_USER, MANUAL_FLUSH, NS_PER_S, check_across_restarts, ns
from test_grpc_ingest import TIMEOUT_S, Api, pb  # noqa: F401 - pb is a fixture

T0 = ns(2026, 7, 1, 6, 0, 0)
MIN = 60 * NS_PER_S
REASON_METADATA = "x-lotline-reason"


@pytest.fixture
def server(server_factory):
    return server_factory(*MANUAL_FLUSH)


@pytest.fixture
def api(pb, server):  # noqa: F811 - pb is the imported fixture
    a = Api(pb, server)
    yield a
    a.close()


def event(pb, **one):
    """A ContextEvent with one kind set: event(pb, lot=pb.ingest.Lot(...))."""
    return pb.ingest.ContextEvent(**one)


def context_request(pb, events, reason=None):
    req = pb.ingest.ContextRequest(events=events)
    if reason is not None:
        req.reason = reason
    return req


def write_context(api, requests, metadata=None):
    metadata = api.auth if metadata is None else metadata
    return api.ingest.WriteContext(iter(requests), metadata=metadata, timeout=TIMEOUT_S)


def run(pb, **fields):
    fields.setdefault("equipment", "line1.oven")
    fields.setdefault("work_order", "WO-17")
    fields.setdefault("lot", "LOT-9")
    fields.setdefault("operation", "bake")
    return event(pb, production_run=pb.ingest.ProductionRun(**fields))


def plant_requests(pb):
    """An MES day: the equipment tree and a released work order; the run
    started on the oven; the lot created from two inputs (lot + 2 edges)."""
    Equipment = pb.ingest.Equipment
    tree = [
        ("acme", None, "enterprise"),
        ("site1", "acme", "site"),
        ("line1", "site1", "work_center"),
        ("line1.oven", "line1", "work_unit"),
    ]
    setup = [event(pb, equipment=Equipment(id=i, name=i.upper(), parent_id=p, level=lvl)) for i, p, lvl in tree]
    setup.append(
        event(
            pb,
            work_order=pb.ingest.WorkOrder(
                id="WO-17", material="cookie", quantity=100.0, uom="pcs", status="released",
                planned_start_ns=T0, planned_end_ns=T0 + 60 * MIN,
            ),
        )
    )
    started = [run(pb, start_ts_ns=T0)]
    lot = [
        event(pb, lot=pb.ingest.Lot(id="LOT-9", material="cookie", quantity=98.0, uom="pcs", work_order="WO-17", created_at_ns=T0)),
        event(pb, genealogy_edge=pb.ingest.GenealogyEdge(input_lot="FLOUR-1", output_lot="LOT-9", quantity=20.5, uom="kg", ts_ns=T0, work_order="WO-17")),
        event(pb, genealogy_edge=pb.ingest.GenealogyEdge(input_lot="SUGAR-3", output_lot="LOT-9", quantity=4.0, uom="kg", ts_ns=T0)),
    ]
    return [context_request(pb, setup), context_request(pb, started), context_request(pb, lot)]


def audit(client, tables=("equipment", "work_orders", "lots", "production_runs", "genealogy")):
    names = ", ".join(f"'{t}'" for t in tables)
    return client.query(
        "SELECT seq, actor, action, table_name, row_count, detail, reason FROM audit_log "
        f"WHERE table_name IN ({names}) ORDER BY seq"
    ).to_pylist()


def test_every_event_kind_lands_versioned_audited_and_durable(pb, server, api):
    reply = write_context(api, plant_requests(pb))
    assert (reply.requests, reply.accepted_requests, reply.accepted_events, reply.rejected_events) == (3, 3, 9, 0)
    assert list(reply.errors) == []

    # A sample over gRPC Write on the oven during the run gets its work order and lot.
    sample = pb.ingest.Sample(tag="line1.oven.temp", ts_ns=T0 + 5 * MIN, value=181.5)
    written = api.write([pb.ingest.WriteRequest(samples=[sample], context=pb.ingest.Context(equipment="line1.oven"))])
    assert written.accepted_rows == 1

    # "Run ended" is a rewrite of the run: refused without a reason (hint
    # named, nothing written), accepted with the request's reason; a status
    # change with the reason in the call metadata.
    ended = run(pb, start_ts_ns=T0, end_ts_ns=T0 + 30 * MIN)
    reply = write_context(api, [context_request(pb, [ended]), context_request(pb, [ended], reason="run ended")])
    assert (reply.requests, reply.accepted_requests, reply.accepted_events, reply.rejected_events) == (2, 1, 1, 1)
    (error,) = reply.errors
    assert (error.request, error.event, error.kind) == (0, 0, "production_run")
    for needle in ("needs a reason", "production_runs", "line1.oven", "ContextRequest.reason", REASON_METADATA):
        assert needle in error.reason, (needle, error.reason)
    released = event(pb, lot=pb.ingest.Lot(id="LOT-9", material="cookie", quantity=98.0, uom="pcs", status="released", work_order="WO-17", created_at_ns=T0))
    reply = write_context(api, [context_request(pb, [released])], metadata=api.auth + [(REASON_METADATA, "QA release")])
    assert (reply.accepted_requests, reply.accepted_events) == (1, 1)

    def check():
        c = server.client
        assert c.query("SELECT id, parent_id, level FROM equipment ORDER BY id").to_pylist() == [
            {"id": "acme", "parent_id": None, "level": "enterprise"},
            {"id": "line1", "parent_id": "site1", "level": "work_center"},
            {"id": "line1.oven", "parent_id": "line1", "level": "work_unit"},
            {"id": "site1", "parent_id": "acme", "level": "site"},
        ]
        wo = c.query("SELECT id, status, quantity, CAST(planned_end AS BIGINT) AS planned_end FROM work_orders").to_pylist()
        assert wo == [{"id": "WO-17", "status": "released", "quantity": 100.0, "planned_end": T0 + 60 * MIN}]
        runs = c.query(
            "SELECT equipment, work_order, lot, operation, CAST(start_ts AS BIGINT) AS s, CAST(end_ts AS BIGINT) AS e FROM production_runs"
        ).to_pylist()
        assert runs == [{"equipment": "line1.oven", "work_order": "WO-17", "lot": "LOT-9", "operation": "bake", "s": T0, "e": T0 + 30 * MIN}]
        assert c.query("SELECT id, status, work_order FROM lots").to_pylist() == [{"id": "LOT-9", "status": "released", "work_order": "WO-17"}]
        edges = c.query("SELECT input_lot, output_lot, quantity, work_order FROM genealogy ORDER BY input_lot").to_pylist()
        assert edges == [
            {"input_lot": "FLOUR-1", "output_lot": "LOT-9", "quantity": 20.5, "work_order": "WO-17"},
            {"input_lot": "SUGAR-3", "output_lot": "LOT-9", "quantity": 4.0, "work_order": None},
        ]

        # Versions: who and why; the lot and its edges share one version time.
        run_history = c.query("SELECT op, reason, recorded_by, end_ts FROM production_runs_history ORDER BY recorded_at").to_pylist()
        assert [(r["op"], r["reason"], r["recorded_by"], r["end_ts"] is None) for r in run_history] == [
            ("insert", None, ADMIN_USER, True),
            ("update", "run ended", ADMIN_USER, False),
        ]
        lot_history = c.query("SELECT op, reason, status, CAST(recorded_at AS BIGINT) AS at FROM lots_history ORDER BY recorded_at").to_pylist()
        assert [(r["op"], r["reason"], r["status"]) for r in lot_history] == [("insert", None, None), ("update", "QA release", "released")]
        edge_times = {r["at"] for r in c.query("SELECT CAST(recorded_at AS BIGINT) AS at FROM genealogy_history").to_pylist()}
        assert edge_times == {lot_history[0]["at"]}

        # One audit entry per table and request, over interface grpc.context;
        # the lot and its edges were sealed together (consecutive seqs).
        got = audit(c)
        assert [(r["table_name"], r["row_count"], r["reason"]) for r in got] == [
            ("equipment", 4, None),
            ("work_orders", 1, None),
            ("production_runs", 1, None),
            ("lots", 1, None),
            ("genealogy", 2, None),
            ("production_runs", 1, "run ended"),
            ("lots", 1, "QA release"),
        ]
        # Each entry names the recorded_at of its version rows (the change feed's link).
        details = {(r["actor"], r["action"], r["detail"].split(" ")[0]) for r in got}
        assert details == {(ADMIN_USER, "write", "interface=grpc.context")}
        for r in got:
            version = int(r["detail"].split(" version=")[1])
            stamped = c.scalar(
                f"SELECT count(*) FROM {r['table_name']}_history WHERE CAST(recorded_at AS BIGINT) = {version}"
            )
            assert stamped == r["row_count"], r
        assert got[4]["seq"] == got[3]["seq"] + 1

        back = c.query("SELECT lot, depth FROM trace_backward('LOT-9') ORDER BY depth, lot").to_pylist()
        assert [(r["lot"], r["depth"]) for r in back] == [("LOT-9", 0), ("FLOUR-1", 1), ("SUGAR-3", 1)]
        stamped = c.query("SELECT equipment, work_order, lot FROM samples WHERE tag = 'line1.oven.temp'").to_pylist()
        assert stamped == [{"equipment": "line1.oven", "work_order": "WO-17", "lot": "LOT-9"}]

    check_across_restarts(server, check)

    # After the restarts the server still knows which keys exist.
    fresh = Api(pb, server)
    try:
        reply = write_context(fresh, [context_request(pb, [event(pb, equipment=pb.ingest.Equipment(id="acme", level="enterprise"))])])
    finally:
        fresh.close()
    assert reply.accepted_requests == 0 and "needs a reason" in reply.errors[0].reason


def test_a_bad_event_rejects_its_whole_request_and_the_stream_goes_on(pb, server, api):
    Equipment, Lot, Edge = pb.ingest.Equipment, pb.ingest.Lot, pb.ingest.GenealogyEdge
    requests = [
        [event(pb, equipment=Equipment(id="cell1", level="work_center"))],
        [event(pb, equipment=Equipment(id="cell2", level="area")), event(pb, equipment=Equipment(id="cell3", level="plant"))],
        [event(pb, lot=Lot(id="L-ok")), event(pb, lot=Lot(id="", material="flour"))],
        [run(pb, start_ts_ns=T0, end_ts_ns=T0 - NS_PER_S)],
        [run(pb)],
        [event(pb, lot=Lot(id="L-x")), pb.ingest.ContextEvent()],
        # Atomic across tables: the good lot goes down with its bad edge.
        [event(pb, lot=Lot(id="L-mixed")), event(pb, genealogy_edge=Edge(input_lot="A", output_lot="L-mixed", ts_ns=T0, quantity=-1.0))],
        [event(pb, lot=Lot(id="L-2", created_at_ns=T0))],
    ]
    reply = write_context(api, [context_request(pb, events) for events in requests])
    assert (reply.requests, reply.accepted_requests, reply.accepted_events, reply.rejected_events) == (8, 2, 2, 10)
    errors = [(e.request, e.event if e.HasField("event") else None, e.kind, e.field, e.value) for e in reply.errors]
    assert errors[0] == (1, 1, "equipment", "level", "plant")
    assert errors[1] == (2, 1, "lot", "id", "")
    assert errors[2][:4] == (3, 0, "production_run", "end_ts_ns") and errors[2][4].startswith("2026-07-01T05:59:59")
    assert errors[3] == (4, 0, "production_run", "start_ts_ns", "")
    assert errors[4] == (5, 1, "", "", "")
    assert errors[5] == (6, 1, "genealogy_edge", "quantity", "-1.0")
    reasons = [e.reason for e in reply.errors]
    assert "work_center" in reasons[0] and "empty" in reasons[1] and "start_ts" in reasons[2]
    assert "must be set" in reasons[3] and "genealogy_edge" in reasons[4] and "negative" in reasons[5]

    c = server.client
    assert [r["id"] for r in c.query("SELECT id FROM equipment").to_pylist()] == ["cell1"]
    assert [r["id"] for r in c.query("SELECT id FROM lots").to_pylist()] == ["L-2"]
    assert c.count(table="production_runs") == 0 and c.count(table="genealogy") == 0
    assert [(r["table_name"], r["row_count"]) for r in audit(c)] == [("equipment", 1), ("lots", 1)]


def add_user(server, name, role, password):
    out = server.cli("user", "add", name, "--role", role, "--password-stdin", input=password + "\n")
    assert out.returncode == 0, out.stderr


def basic(user, password):
    return [("authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())]


def test_readers_are_refused_writers_may(pb, server, api):
    add_user(server, "rita", "reader", "reader-Pass-1")
    add_user(server, "wim", "writer", "writer-Pass-1")
    one = [context_request(pb, [event(pb, lot=pb.ingest.Lot(id="L-r"))])]
    with pytest.raises(grpc.RpcError) as err:
        write_context(api, one, metadata=basic("rita", "reader-Pass-1"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "user 'rita' (role reader) may not write context events" in err.value.details()
    assert server.client.count(table="lots") == 0

    reply = write_context(api, one, metadata=basic("wim", "writer-Pass-1"))
    assert reply.accepted_events == 1
    history = server.client.query("SELECT recorded_by FROM lots_history").to_pylist()
    assert history == [{"recorded_by": "wim"}]


def test_requests_of_a_stream_apply_in_order(pb, server, api):
    """A stream of status changes of one lot ends with the last one: the
    requests are not reordered (which a concurrent write could do). The
    request's reason wins over the call's metadata."""
    statuses = [f"step-{i}" for i in range(12)]
    requests = [
        context_request(pb, [event(pb, lot=pb.ingest.Lot(id="LOT-1", status=s))], reason=f"MES {s}" if i % 2 else None)
        for i, s in enumerate(statuses)
    ]
    reply = write_context(api, requests, metadata=api.auth + [(REASON_METADATA, "status sync")])
    assert (reply.accepted_requests, list(reply.errors)) == (12, [])
    history = server.client.query("SELECT status, op, reason FROM lots_history ORDER BY recorded_at").to_pylist()
    assert [r["status"] for r in history] == statuses
    assert [r["op"] for r in history] == ["insert"] + ["update"] * 11
    assert [r["reason"] for r in history] == [f"MES {s}" if i % 2 else "status sync" for i, s in enumerate(statuses)]
    assert server.client.scalar("SELECT status FROM lots") == "step-11"
