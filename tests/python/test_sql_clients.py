"""Flight SQL through clients nobody here wrote, on what they found wrong:
ADBC (bound parameters that must not be truncated, writes on the query path
that must take effect before their result is read, `execute_schema`, column
metadata in `adbc_get_objects`, parameters in table-function arguments),
flightsql-dbapi under SQLAlchemy 1.4 (it keeps the handle it prepared and
ignores the one a binding returns) and raw pyarrow.flight (GetSchema, a
ticket that is not Flight SQL, GetFlightInfo of an INSERT without DoGet).
"""

from __future__ import annotations

import datetime as dt

import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest
import sqlalchemy
from sqlalchemy import text

from lotline_testlib import (
    NS_PER_S,
    error_text,
    flight_sql_command,
    ns,
    raw_flight,
    samples_table,
    sql_ts,
)

T0 = ns(2024, 9, 1, 6)
TAG = "site1.area2.line3.oven4.TT0042.PV"
VALUES = [190.0 + i * 0.5 for i in range(120)]  # 190.0 .. 249.5, one per second


def utc(ts_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_ns / NS_PER_S, tz=dt.timezone.utc)


@pytest.fixture(scope="module")
def srv(module_server_factory):
    server = module_server_factory()
    server.client.ingest(samples_table([TAG] * len(VALUES), [T0 + i * NS_PER_S for i in range(len(VALUES))], VALUES))
    return server


@pytest.fixture(scope="module")
def conn(srv):
    return srv.client.conn


def count(srv, tag: str) -> int:
    return srv.client.count(f"tag = '{tag}'")


def refused(cur, sql: str, parameters) -> str:
    with pytest.raises(adbc_driver_manager.Error) as err:
        cur.execute(sql, parameters=parameters)
        cur.fetch_arrow_table()
    return error_text(err.value)


# -- bound parameters keep their value -----------------------------------------


def test_a_fractional_parameter_is_refused_where_it_would_be_truncated(srv, conn):
    with conn.cursor() as cur:
        message = refused(cur, "SELECT ? + 1", (1.25,))
        assert "$1" in message and "1.25" in message and "would become 1" in message, message
        message = refused(cur, f"SELECT count(*) FROM samples WHERE tag = '{TAG}' AND value > ? + 0", (198.5,))
        assert "198.5" in message, message
        # Said as meant, the same values answer exactly.
        cur.execute("SELECT CAST(? AS DOUBLE) + 1", parameters=(1.25,))
        assert cur.fetchone()[0] == 2.25
        cur.execute(
            f"SELECT count(*) FROM samples WHERE tag = '{TAG}' AND value > CAST(? AS DOUBLE) + 0", parameters=(198.5,)
        )
        assert cur.fetchone()[0] == sum(v > 198.5 for v in VALUES)
        # A whole number bound as a float converts without loss.
        cur.execute("SELECT ? + 1", parameters=(41.0,))
        assert cur.fetchone()[0] == 42

        tag = "clients.lossy.quality"
        insert = "INSERT INTO samples (tag, ts, value, quality) VALUES (?, ?, ?, ?)"
        message = refused(cur, insert, (tag, utc(T0), 1.0, 1.9))
        assert "$4" in message and "1.9" in message, message
    assert count(srv, tag) == 0, "nothing of a refused statement is written"


# -- writes on the query path ----------------------------------------------------


def test_an_insert_sent_as_a_query_is_durable_before_getflightinfo_returns(srv):
    tag = "clients.write.flightinfo"
    sql = f"INSERT INTO samples (tag, ts, value) VALUES ('{tag}', {sql_ts(T0)}, 1.5)"
    with raw_flight(srv) as (client, options):
        info = client.get_flight_info(flight.FlightDescriptor.for_command(flight_sql_command(sql)), options)
        # No DoGet: the write happened all the same, exactly once.
        assert count(srv, tag) == 1
        result = client.do_get(info.endpoints[0].ticket, options).read_all()
        assert result.to_pydict() == {"count": [1]}
        assert client.do_get(info.endpoints[0].ticket, options).read_all().to_pydict() == {"count": [1]}
    assert count(srv, tag) == 1, "reading the result does not write again"


def test_adbc_writes_land_when_the_cursor_moves_on_without_reading(srv, conn):
    plain, bound = "clients.write.adbc", "clients.write.adbc_bound"
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO samples (tag, ts, value) VALUES ('{plain}', {sql_ts(T0)}, 2.5)")
        cur.execute(
            "INSERT INTO samples (tag, ts, value) VALUES (?, ?, ?), (?, ?, ?)",
            parameters=(bound, utc(T0), 1.0, bound, utc(T0 + NS_PER_S), 2.0),
        )
        cur.execute(f"SELECT count(*) FROM samples WHERE tag IN ('{plain}', '{bound}')")
        assert cur.fetchone()[0] == 3
        cur.execute(f"INSERT INTO samples (tag, ts, value) VALUES ('{plain}', {sql_ts(T0 + NS_PER_S)}, 3.5)")
        assert cur.fetch_arrow_table().to_pydict() == {"count": [1]}
    assert count(srv, plain) == 2 and count(srv, bound) == 2


def test_explain_analyze_of_a_write_is_refused_on_the_query_path(srv, conn):
    tag = "clients.write.explain"
    with conn.cursor() as cur:
        message = refused(cur, f"EXPLAIN ANALYZE INSERT INTO samples (tag, ts, value) VALUES ('{tag}', {sql_ts(T0)}, 1)", None)
    assert "EXPLAIN ANALYZE" in message and "update" in message, message
    assert count(srv, tag) == 0


# -- GetSchema -------------------------------------------------------------------


def test_the_schema_of_a_statement_comes_without_running_it(srv, conn):
    with conn.cursor() as cur:
        schema = cur.adbc_execute_schema("SELECT tag, ts, value * 2 AS doubled FROM samples")
    assert schema.names == ["tag", "ts", "doubled"]
    assert schema.field("doubled").type == pa.float64()
    tag = "clients.schema.insert"
    insert = f"INSERT INTO samples (tag, ts, value) VALUES ('{tag}', {sql_ts(T0)}, 1)"
    with raw_flight(srv) as (client, options):
        result = client.get_schema(flight.FlightDescriptor.for_command(flight_sql_command(insert)), options)
        assert result.schema.names == ["count"]
        with pytest.raises(pa.ArrowException) as err:
            client.get_schema(flight.FlightDescriptor.for_command(b"not a command"), options)
        assert "Flight SQL command" in str(err.value)
    assert count(srv, tag) == 0, "asking for a schema writes nothing"


# -- foreign tickets ---------------------------------------------------------------


def test_a_ticket_that_is_not_flight_sql_is_told_what_lotline_takes(srv):
    # What influxdb3-python sends as its DoGet ticket.
    ticket = flight.Ticket(b'{"database": "plant", "sql_query": "SELECT 1", "query_type": "sql"}')
    with raw_flight(srv) as (client, options):
        with pytest.raises(pa.ArrowException) as err:
            client.do_get(ticket, options).read_all()
    message = str(err.value)
    assert "not a Flight SQL ticket" in message and "CommandStatementQuery" in message, message
    assert "DecodeError" not in message


# -- column metadata ----------------------------------------------------------------


def test_get_objects_reports_sql_type_names_and_nullability(conn):
    objects = conn.adbc_get_objects(depth="all", table_name_filter="samples").read_all().to_pylist()
    columns = {
        c["column_name"]: c
        for catalog in objects
        for schema in catalog["catalog_db_schemas"]
        for table in schema["db_schema_tables"]
        for c in table["table_columns"]
    }
    expected = {
        "tag": ("VARCHAR", False),
        "ts": ("TIMESTAMP WITH TIME ZONE", False),
        "value": ("DOUBLE", True),
        "quality": ("INT UNSIGNED", False),
        "lot": ("VARCHAR", True),
    }
    # ADBC's driver (1.13) maps the type name from the column metadata but
    # leaves xdbc_nullable empty; nullability is in the table schema it reads.
    schema = conn.adbc_get_table_schema("samples")
    for name, (type_name, nullable) in expected.items():
        column = columns[name]
        assert column["xdbc_type_name"] == type_name, column
        assert column["xdbc_is_autoincrement"] is False, column
        field = schema.field(name)
        assert field.nullable == nullable, field
        assert field.metadata[b"ARROW:FLIGHT:SQL:TYPE_NAME"] == type_name.encode()
        assert field.metadata[b"ARROW:FLIGHT:SQL:TABLE_NAME"] == b"samples"


# -- parameters in table-function arguments --------------------------------------


def test_table_functions_take_bound_parameters(srv, conn):
    start, end = T0 + 10 * NS_PER_S, T0 + 70 * NS_PER_S
    literal = (
        f"SELECT ts, value FROM history_interpolated('{TAG}', {sql_ts(start)}, {sql_ts(end)}, '10s') ORDER BY ts"
    )
    expected = srv.client.query(literal)
    assert expected.num_rows == 6
    with conn.cursor() as cur:
        cur.execute(
            "SELECT ts, value FROM history_interpolated(?, ?, ?, ?) ORDER BY ts",
            parameters=(TAG, utc(start), utc(end), "10s"),
        )
        assert cur.fetch_arrow_table().to_pydict() == expected.to_pydict()
        # Mixed with a parameter outside the function, named by number.
        cur.execute(
            "SELECT count(*) FROM history_aggregate([$1], 'Count', $2, $3, '1m') WHERE value >= $4",
            parameters=(TAG, utc(T0).isoformat(), utc(T0 + 120 * NS_PER_S).isoformat(), 1),
        )
        assert cur.fetchone()[0] == 2
        message = refused(cur, "SELECT * FROM history_interpolated(?, ?, ?, ?)", (TAG, utc(end), utc(start), "10s"))
        assert "must be after start" in message, message


# -- flightsql-dbapi with SQLAlchemy 1.4 --------------------------------------------


@pytest.fixture(scope="module")
def engine(srv):
    url = f"datafusion://admin:{srv.password}@127.0.0.1:{srv.port}?insecure=true"
    engine = sqlalchemy.create_engine(url)
    yield engine
    engine.dispose()


def test_sqlalchemy_binds_parameters_on_the_handle_it_prepared(engine):
    # flightsql-dbapi's dialect renders text() binds as NULL literals, so the
    # parameters go through the driver's own paramstyle (qmark), as
    # exec_driver_sql and the DB-API cursor send them: prepare, bind with a
    # DoPut, then GetFlightInfo on the handle it prepared (not the one the
    # binding returned).
    with engine.connect() as c:
        rows = c.exec_driver_sql(
            "SELECT value FROM samples WHERE tag = ? AND value > ? ORDER BY ts LIMIT 3", (TAG, 200.25)
        ).fetchall()
        assert [r[0] for r in rows] == [200.5, 201.0, 201.5]
        # Bound again on the same statement text: the new values count.
        rows = c.exec_driver_sql("SELECT count(*) FROM samples WHERE tag = ? AND value > ?", (TAG, 240)).fetchall()
        assert rows[0][0] == sum(v > 240 for v in VALUES)
        start, end = utc(T0).isoformat(), utc(T0 + 60 * NS_PER_S).isoformat()
        rows = c.exec_driver_sql(
            "SELECT count(*) FROM history_interpolated(?, ?, ?, '30s')", (TAG, start, end)
        ).fetchall()
        assert rows[0][0] == 2
        # Its INSERT takes the same path and lands once.
        tag = "clients.write.sqlalchemy"
        c.exec_driver_sql("INSERT INTO samples (tag, ts, value) VALUES (?, ?, ?)", (tag, utc(T0).isoformat(), 7.5))
        rows = c.exec_driver_sql("SELECT count(*), sum(value) FROM samples WHERE tag = ?", (tag,)).fetchall()
        assert tuple(rows[0]) == (1, 7.5)
