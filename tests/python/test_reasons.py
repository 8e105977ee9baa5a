"""The reason of a change reaches `X_history.reason` and `audit_log.reason`
on every Flight SQL path that runs DML, wherever the client gives it:

* ADBC `cursor.execute` (GetFlightInfo + DoGet) with a `SET lotline.reason`
  prefix, and with the `x-lotline-reason` call header set as a connection
  option or as a database option;
* ADBC prepared statements with bound parameters, header or prefix;
* raw pyarrow.flight calls that carry the header on one call only: the
  GetFlightInfo of a statement (not its DoGet), CreatePreparedStatement (not
  the DoPut that runs it), the bind (not GetFlightInfo or DoGet).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from adbc_driver_flightsql import dbapi as flight_sql

from lotline_testlib import ADMIN_USER, DEFAULT_PASSWORD, MANUAL_FLUSH, REASON_OPTION, flight_sql_command, raw_flight
from test_flight_sql import bind, cmd_prepared_query, create_prepared, pb_decode
from test_metadata import pb_any, pb_len_field

IDS = [f"e{i}" for i in range(1, 11)]


@pytest.fixture
def server(server_factory):
    server = server_factory(*MANUAL_FLUSH)
    server.client.ingest(
        pa.table({"id": IDS, "name": [f"Unit {i}" for i in IDS], "level": ["work_unit"] * len(IDS)}),
        table="equipment",
    )
    return server


def history_reasons(server) -> dict[str, list[tuple[str, str | None]]]:
    rows = server.query(
        "SELECT id, op, reason FROM equipment_history WHERE op <> 'insert' ORDER BY recorded_at"
    ).to_pylist()
    out: dict[str, list[tuple[str, str | None]]] = {}
    for r in rows:
        out.setdefault(r["id"], []).append((r["op"], r["reason"]))
    return out


def audit_reasons(server) -> list[tuple[str, str | None]]:
    rows = server.query(
        "SELECT action, reason FROM audit_log "
        "WHERE table_name = 'equipment' AND (action <> 'write' OR reason IS NOT NULL) ORDER BY seq"
    ).to_pylist()
    return [(r["action"], r["reason"]) for r in rows]


def test_adbc_statements_and_prepared_statements_record_the_reason(server):
    c = server.client
    # Query path, reason in the text.
    assert c.execute("SET lotline.reason = 'prefix'; UPDATE equipment SET name = 'x' WHERE id = 'e1'").column(0)[0].as_py() == 1
    # Header as a database option, for every call of every connection.
    db_conn = flight_sql.connect(
        server.uri,
        db_kwargs={"username": ADMIN_USER, "password": DEFAULT_PASSWORD, REASON_OPTION: "db option"},
        autocommit=True,
    )
    try:
        with db_conn.cursor() as cur:
            cur.execute("DELETE FROM equipment WHERE id = 'e2'")
            cur.fetch_arrow_table()
    finally:
        db_conn.close()
    # Prepared with bound parameters: reason in the prepared text ...
    with c.conn.cursor() as cur:
        cur.execute("SET lotline.reason = 'prepared prefix'; UPDATE equipment SET name = ? WHERE id = ?", ("y", "e3"))
        assert cur.fetch_arrow_table().column(0)[0].as_py() == 1
    # ... and as a connection option, for a statement and a prepared one.
    c.set_reason("connection option")
    c.execute("UPDATE equipment SET name = 'z' WHERE id = 'e4'")
    with c.conn.cursor() as cur:
        cur.execute("DELETE FROM equipment WHERE id = ?", ("e5",))
        cur.fetch_arrow_table()

    expected = {
        "e1": [("update", "prefix")],
        "e2": [("delete", "db option")],
        "e3": [("update", "prepared prefix")],
        "e4": [("update", "connection option")],
        "e5": [("delete", "connection option")],
    }
    assert history_reasons(server) == expected
    assert audit_reasons(server) == [
        ("update", "prefix"),
        ("delete", "db option"),
        ("update", "prepared prefix"),
        ("update", "connection option"),
        ("delete", "connection option"),
    ]


def with_reason(opts: flight.FlightCallOptions, reason: str) -> flight.FlightCallOptions:
    return flight.FlightCallOptions(headers=list(opts.headers) + [(b"x-lotline-reason", reason.encode())], timeout=30)


def test_raw_flight_reason_on_one_call_reaches_the_write(server):
    with raw_flight(server) as (client, opts):
        reason = lambda text: with_reason(opts, text)  # noqa: E731

        # Statement: header on GetFlightInfo only; DoGet runs the ticket without it.
        for sql, why in (
            ("UPDATE equipment SET name = 'a' WHERE id = 'e6'", "info only"),
            # An INSERT over an existing key is a rewrite: it needs a reason too.
            ("INSERT INTO equipment (id, name, level) VALUES ('e7', 'b', 'work_unit')", "insert info only"),
        ):
            info = client.get_flight_info(flight.FlightDescriptor.for_command(flight_sql_command(sql)), reason(why))
            assert client.do_get(info.endpoints[0].ticket, opts).read_all().column(0)[0].as_py() == 1

        # Prepared update: header on CreatePreparedStatement only, DoPut without it.
        handle, _, _ = create_prepared(client, reason("created with it"), "DELETE FROM equipment WHERE id = ?")
        params = pa.record_batch([pa.array(["e8"])], names=["id"])
        descriptor = flight.FlightDescriptor.for_command(pb_any("CommandPreparedStatementUpdate", pb_len_field(1, handle)))
        writer, reader = client.do_put(descriptor, params.schema, opts)
        writer.write_batch(params)
        writer.done_writing()
        assert pb_decode(reader.read().to_pybytes())[1][0] == 1
        writer.close()

        # Prepared query: header on the bind only; GetFlightInfo and DoGet without it.
        handle, _, _ = create_prepared(client, opts, "UPDATE equipment SET name = ? WHERE id = ?")
        bound = bind(client, reason("bound with it"), handle, pa.record_batch([pa.array(["c"]), pa.array(["e9"])], names=["a", "b"]))
        info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_prepared_query(bound)), opts)
        assert client.do_get(info.endpoints[0].ticket, opts).read_all().column(0)[0].as_py() == 1

        # Header on GetFlightInfo of the prepared query only.
        handle, _, _ = create_prepared(client, opts, "DELETE FROM equipment WHERE id = 'e10'")
        info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_prepared_query(handle)), reason("prepared info only"))
        assert client.do_get(info.endpoints[0].ticket, opts).read_all().column(0)[0].as_py() == 1

        # Without a reason anywhere, a change is still refused.
        with pytest.raises((flight.FlightError, pa.ArrowInvalid), match="needs a reason"):
            sql = "UPDATE equipment SET name = 'none' WHERE id = 'e1'"
            info = client.get_flight_info(flight.FlightDescriptor.for_command(flight_sql_command(sql)), opts)
            client.do_get(info.endpoints[0].ticket, opts).read_all()

    assert history_reasons(server) == {
        "e6": [("update", "info only")],
        "e7": [("update", "insert info only")],
        "e8": [("delete", "created with it")],
        "e9": [("update", "bound with it")],
        "e10": [("delete", "prepared info only")],
    }
    assert audit_reasons(server) == [
        ("update", "info only"),
        ("write", "insert info only"),
        ("delete", "created with it"),
        ("update", "bound with it"),
        ("delete", "prepared info only"),
    ]
