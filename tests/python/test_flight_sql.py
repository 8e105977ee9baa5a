"""Flight SQL beyond plain statements: prepared statements with bound
parameters (queries and INSERTs, through ADBC and raw pyarrow.flight),
GetPrimaryKeys, GetXdbcTypeInfo, SqlInfo capabilities, CancelFlightInfo, and
the clear `Unimplemented` answers for what lotline does not do (transactions,
Substrait).

The raw calls encode Flight SQL commands by hand (protobuf wire format), as a
client without a Flight SQL library would.
"""

from __future__ import annotations

import datetime as dt

import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from lotline_testlib import (
    NS_PER_S,
    TS_TYPE,
    error_text,
    flight_get,
    ns,
    pb_any,
    pb_len_field,
    pb_varint,
    raw_flight,
    samples_table,
)

T0 = ns(2024, 5, 1, 6)
TAGS = ["fsq.oven1.temp", "fsq.oven2.temp", "fsq.press.force"]
N_PER_TAG = 60


def value_of(tag_idx: int, i: int) -> float:
    return tag_idx * 1000 + i * 0.5  # exact in float64


def expected_rows() -> list[tuple[str, int, float]]:
    return [(tag, T0 + i * NS_PER_S, value_of(t, i)) for t, tag in enumerate(TAGS) for i in range(N_PER_TAG)]


def utc(ts_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_ns / NS_PER_S, tz=dt.timezone.utc)


# ---------------------------------------------------------------------------
# protobuf by hand
# ---------------------------------------------------------------------------


def pb_decode(buf: bytes) -> dict[int, list]:
    """Fields of a protobuf message: number -> [values] (varints as int, the rest as bytes)."""
    fields: dict[int, list] = {}
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while pos < len(buf):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire == 2:
            length = varint()
            value = buf[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value = buf[pos : pos + size]
            pos += size
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def unpack_any(buf: bytes, type_name: str) -> dict[int, list]:
    fields = pb_decode(buf)
    assert fields[1][0].decode().endswith("." + type_name), fields[1][0]
    return pb_decode(fields.get(2, [b""])[0])


def cmd_prepared_query(handle: bytes) -> bytes:
    return pb_any("CommandPreparedStatementQuery", pb_len_field(1, handle))


def read_ipc_schema(message: bytes) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(message))


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


def load(server):
    rows = expected_rows()
    server.client.ingest(
        samples_table([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], quality=[0] * len(rows))
    )


@pytest.fixture(scope="module")
def fs_server(module_server_factory):
    """One server with known samples; tests that write use their own tags."""
    server = module_server_factory()
    load(server)
    return server


@pytest.fixture
def conn(fs_server):
    return fs_server.client.conn


@pytest.fixture
def raw(fs_server):
    with raw_flight(fs_server) as pair:
        yield pair


def flight_table(client, command: bytes, options) -> pa.Table:
    return flight_get(client, command, options)[1]


# ---------------------------------------------------------------------------
# ADBC: prepared queries
# ---------------------------------------------------------------------------

QUERY_TAG_SINCE = "SELECT ts, value FROM samples WHERE tag = ? AND ts >= ? ORDER BY ts"


def test_prepared_query_binds_several_parameters(conn):
    with conn.cursor() as cur:
        schema = cur.adbc_prepare(QUERY_TAG_SINCE)
        assert schema is not None, "no parameter schema"
        assert [f.type for f in schema] == [pa.utf8(), TS_TYPE], schema
        for t, tag in enumerate(TAGS[:2]):
            since = 45 - 10 * t
            cur.execute(QUERY_TAG_SINCE, (tag, utc(T0 + since * NS_PER_S)))
            got = cur.fetch_arrow_table()
            want = [(ts, v) for tg, ts, v in expected_rows() if tg == tag and ts >= T0 + since * NS_PER_S]
            assert len(want) == N_PER_TAG - since
            assert list(zip(got.column("ts").cast(pa.int64()).to_pylist(), got.column("value").to_pylist())) == want


def test_prepared_query_dollar_placeholders_and_one_parameter(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n, sum(value) AS s FROM samples WHERE tag = $1", (TAGS[2],))
        n, s = cur.fetchone()
    rows = [v for tg, _, v in expected_rows() if tg == TAGS[2]]
    assert (n, s) == (len(rows), sum(rows))


def test_prepared_query_named_placeholders_bind_by_column_name(conn):
    """`$name` placeholders take the bound column of that name, in any order."""
    since = 50
    params = pa.record_batch(
        [pa.array([T0 + since * NS_PER_S], TS_TYPE), pa.array([TAGS[1]])], names=["since", "tag"]
    )
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM samples WHERE tag = $tag AND ts >= $since", params)
        (n,) = cur.fetchone()
    assert n == sum(1 for tg, ts, _ in expected_rows() if tg == TAGS[1] and ts >= T0 + since * NS_PER_S)


def test_prepared_query_casts_parameters_to_the_inferred_types(conn):
    """An int for a float column and a string for a timestamp convert."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM samples WHERE value >= ? AND ts < ?",
            (1000, "2024-05-01T06:00:10Z"),
        )
        (n,) = cur.fetchone()
    want = sum(1 for _, ts, v in expected_rows() if v >= 1000 and ts < T0 + 10 * NS_PER_S)
    assert n == want and n > 0


def test_prepared_query_runs_once_per_parameter_row(conn):
    """A bound batch of three rows: three runs, results in row order."""
    seconds = [57, 58, 59]
    tags = [TAGS[0], TAGS[1], TAGS[0]]
    params = pa.record_batch(
        [pa.array(tags), pa.array([utc(T0 + s * NS_PER_S) for s in seconds], pa.timestamp("us", tz="UTC"))],
        names=["0", "1"],
    )
    with conn.cursor() as cur:
        cur.execute("SELECT tag, value FROM samples WHERE tag = ? AND ts >= ? ORDER BY ts LIMIT 1", params)
        got = cur.fetch_arrow_table().to_pylist()
    assert [(r["tag"], r["value"]) for r in got] == [
        (tag, value_of(TAGS.index(tag), s)) for tag, s in zip(tags, seconds)
    ]


def test_plain_statement_without_parameters_still_works(conn, fs_server):
    assert fs_server.client.count(f"tag = '{TAGS[0]}'") == N_PER_TAG


# ---------------------------------------------------------------------------
# ADBC: prepared INSERT
# ---------------------------------------------------------------------------

INSERT = "INSERT INTO samples (tag, ts, value, quality, lot) VALUES (?, ?, ?, ?, ?)"


def test_prepared_insert_executemany(fs_server):
    client = fs_server.client
    rows = [("fsq.ins.many", utc(T0 + i * NS_PER_S), 10.0 + i, 0, f"L-{i % 3}") for i in range(150)]
    with client.conn.cursor() as cur:
        cur.executemany(INSERT, rows)
        assert cur.rowcount == len(rows)
    got = client.query("SELECT ts, value, quality, lot FROM samples WHERE tag = 'fsq.ins.many' ORDER BY ts")
    assert got.column("ts").cast(pa.int64()).to_pylist() == [T0 + i * NS_PER_S for i in range(150)]
    assert got.column("value").to_pylist() == [r[2] for r in rows]
    assert got.column("lot").to_pylist() == [r[4] for r in rows]
    assert set(got.column("quality").to_pylist()) == {0}


def test_prepared_insert_select_form_executemany(fs_server):
    """INSERT … SELECT with placeholders: not the VALUES shape, same result."""
    client = fs_server.client
    rows = [("fsq.ins.select", utc(T0 + i * NS_PER_S), i * 1.5) for i in range(4)]
    with client.conn.cursor() as cur:
        cur.executemany("INSERT INTO samples (tag, ts, value) SELECT ?, ?, ?", rows)
        assert cur.rowcount == len(rows)
    got = client.query("SELECT value FROM samples WHERE tag = 'fsq.ins.select' ORDER BY ts")
    assert got.column(0).to_pylist() == [r[2] for r in rows]


def test_prepared_insert_execute_with_parameters(fs_server):
    client = fs_server.client
    with client.conn.cursor() as cur:
        cur.execute(INSERT, ("fsq.ins.one", utc(T0), 42.5, 1073741824, "L-9"))
        cur.fetchall()
        # the same prepared statement, bound again
        cur.execute(INSERT, ("fsq.ins.one", utc(T0 + NS_PER_S), 43.5, 0, None))
        cur.fetchall()
    got = client.query("SELECT value, quality, lot FROM samples WHERE tag = 'fsq.ins.one' ORDER BY ts").to_pylist()
    assert got == [
        {"value": 42.5, "quality": 1073741824, "lot": "L-9"},
        {"value": 43.5, "quality": 0, "lot": None},
    ]


def test_prepared_insert_of_many_rows_is_all_or_nothing(fs_server):
    client = fs_server.client
    rows = [("fsq.ins.atomic", utc(T0 + i * NS_PER_S), float(i), 0, None) for i in range(5)]
    rows.append(("fsq.ins.atomic", utc(-NS_PER_S), 1.0, 0, None))  # before the epoch: refused
    with client.conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.executemany(INSERT, rows)
    assert "1970" in error_text(err.value), error_text(err.value)
    assert client.count("tag = 'fsq.ins.atomic'") == 0


# ---------------------------------------------------------------------------
# bad parameters: clear errors, the server goes on
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql, params, expect",
    [
        pytest.param(QUERY_TAG_SINCE, (TAGS[0],), ["2 parameter(s)", "1 column"], id="too-few"),
        pytest.param(QUERY_TAG_SINCE, (TAGS[0], utc(T0), 3), ["2 parameter(s)", "3 column"], id="too-many"),
        pytest.param("SELECT count(*) FROM samples WHERE value > ?", ("hot",), ["$1", "Float64", "hot"], id="type"),
        pytest.param(INSERT, ("fsq.bad", "not a time", 1.0, 0, None), ["$2", "Timestamp"], id="insert-type"),
    ],
)
def test_bad_parameters_are_refused_clearly(fs_server, sql, params, expect):
    client = fs_server.client
    with client.conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.execute(sql, params)
            cur.fetchall()
    text = error_text(err.value)
    for word in expect:
        assert word in text, text
    assert "INVALID_ARGUMENT" in text.upper().replace(" ", "_") or "invalid" in text.lower(), text
    # the server keeps serving, on the same connection
    assert client.count(f"tag = '{TAGS[1]}'") == N_PER_TAG
    assert client.count("tag = 'fsq.bad'") == 0


# ---------------------------------------------------------------------------
# raw pyarrow.flight: the prepared-statement protocol and its stateless handle
# ---------------------------------------------------------------------------


def create_prepared(client, options, sql: str) -> tuple[bytes, pa.Schema, pa.Schema]:
    body = pb_any("ActionCreatePreparedStatementRequest", pb_len_field(1, sql.encode()))
    results = list(client.do_action(flight.Action("CreatePreparedStatement", body), options))
    assert len(results) == 1
    fields = unpack_any(results[0].body.to_pybytes(), "ActionCreatePreparedStatementResult")
    return fields[1][0], read_ipc_schema(fields[2][0]), read_ipc_schema(fields[3][0])


def bind(client, options, handle: bytes, params: pa.RecordBatch) -> bytes:
    descriptor = flight.FlightDescriptor.for_command(cmd_prepared_query(handle))
    writer, reader = client.do_put(descriptor, params.schema, options)
    writer.write_batch(params)
    writer.done_writing()
    metadata = reader.read()
    writer.close()
    assert metadata is not None, "DoPut returned no DoPutPreparedStatementResult"
    return pb_decode(metadata.to_pybytes())[1][0]


def test_raw_prepared_handle_is_stateless(fs_server, server_factory):
    """Prepare and bind on one server, run the handle on another with the same
    data: the handle carries everything (as statement tickets do)."""
    other = server_factory()
    load(other)
    with raw_flight(fs_server) as (a, opts_a), raw_flight(other) as (b, opts_b):
        handle, dataset, parameters = create_prepared(
            a, opts_a, "SELECT ts, value FROM samples WHERE tag = $1 AND ts < $2 ORDER BY ts"
        )
        assert dataset.names == ["ts", "value"] and dataset.field("ts").type == TS_TYPE
        assert [f.type for f in parameters] == [pa.utf8(), TS_TYPE]

        # Not bound yet: a clear error, not an empty result.
        with pytest.raises((flight.FlightError, pa.ArrowInvalid), match="2 parameter.*none are bound"):
            flight_table(b, cmd_prepared_query(handle), opts_b)

        params = pa.record_batch(
            [pa.array([TAGS[1]]), pa.array([T0 + 3 * NS_PER_S], TS_TYPE)], names=["tag", "before"]
        )
        bound = bind(a, opts_a, handle, params)
        assert bound != handle
        table = flight_table(b, cmd_prepared_query(bound), opts_b)
        assert table.column("value").to_pylist() == [value_of(1, i) for i in range(3)]

        # Closing frees nothing on the server: the handle still works after it.
        close = pb_any("ActionClosePreparedStatementRequest", pb_len_field(1, bound))
        assert list(a.do_action(flight.Action("ClosePreparedStatement", close), opts_a)) == []
        assert flight_table(a, cmd_prepared_query(bound), opts_a).num_rows == 3


def test_raw_prepared_update_counts_rows(fs_server, raw):
    client, opts = raw
    handle, _, parameters = create_prepared(client, opts, "INSERT INTO samples (tag, ts, value) VALUES (?, ?, ?)")
    assert [f.type for f in parameters] == [pa.utf8(), TS_TYPE, pa.float64()]
    params = pa.record_batch(
        [
            pa.array(["fsq.raw.upd"] * 4),
            pa.array([T0 + i * NS_PER_S for i in range(4)], TS_TYPE),
            pa.array([0.25 * i for i in range(4)]),
        ],
        names=["a", "b", "c"],
    )
    descriptor = flight.FlightDescriptor.for_command(
        pb_any("CommandPreparedStatementUpdate", pb_len_field(1, handle))
    )
    writer, reader = client.do_put(descriptor, params.schema, opts)
    writer.write_batch(params)
    writer.done_writing()
    result = pb_decode(reader.read().to_pybytes())  # DoPutUpdateResult
    writer.close()
    assert result[1][0] == 4
    assert fs_server.client.query(
        "SELECT value FROM samples WHERE tag = 'fsq.raw.upd' ORDER BY ts"
    ).column(0).to_pylist() == [0.25 * i for i in range(4)]


# ---------------------------------------------------------------------------
# metadata: primary keys, XDBC types, SqlInfo
# ---------------------------------------------------------------------------


def cmd_primary_keys(table: str, catalog: str | None = None, db_schema: str | None = None) -> bytes:
    inner = b""
    if catalog is not None:
        inner += pb_len_field(1, catalog.encode())
    if db_schema is not None:
        inner += pb_len_field(2, db_schema.encode())
    inner += pb_len_field(3, table.encode())
    return pb_any("CommandGetPrimaryKeys", inner)


def test_raw_get_primary_keys(raw):
    client, opts = raw
    table = flight_table(client, cmd_primary_keys("samples"), opts)
    assert table.schema.names == ["catalog_name", "db_schema_name", "table_name", "column_name", "key_name", "key_sequence"]
    assert table.schema.field("key_sequence").type == pa.int32()
    assert [(r["table_name"], r["column_name"], r["key_sequence"]) for r in table.to_pylist()] == [
        ("samples", "tag", 1),
        ("samples", "ts", 2),
    ]
    assert {(r["catalog_name"], r["db_schema_name"]) for r in table.to_pylist()} == {("lotline", "public")}
    tags = flight_table(client, cmd_primary_keys("tags", "lotline", "public"), opts)
    assert tags.column("column_name").to_pylist() == ["tag"]
    for cmd in (cmd_primary_keys("nope"), cmd_primary_keys("samples", catalog="other")):
        assert flight_table(client, cmd, opts).num_rows == 0


def cmd_xdbc(data_type: int | None = None) -> bytes:
    inner = b"" if data_type is None else pb_varint(1 << 3) + pb_varint(data_type & 0xFFFFFFFFFFFFFFFF)
    return pb_any("CommandGetXdbcTypeInfo", inner)


def test_raw_get_xdbc_type_info_covers_the_table_types(raw, conn):
    client, opts = raw
    table = flight_table(client, cmd_xdbc(), opts)
    rows = table.to_pylist()
    assert table.schema.field("type_name").type == pa.utf8()
    assert [r["data_type"] for r in rows] == sorted(r["data_type"] for r in rows)
    by_arrow = {r["local_type_name"]: r for r in rows}
    # every column type of every table is described
    for name in ("samples", "tags"):
        for field in conn.adbc_get_table_schema(name):
            arrow_name = {
                pa.utf8(): "Utf8",
                pa.float64(): "Float64",
                pa.uint32(): "UInt32",
                pa.uint8(): "UInt8",
                pa.bool_(): "Boolean",
                TS_TYPE: 'Timestamp(ns, "UTC")',
            }[field.type]
            assert arrow_name in by_arrow, (name, field, sorted(by_arrow))
    assert by_arrow["UInt32"]["unsigned_attribute"] is True
    assert by_arrow["Utf8"]["literal_prefix"] == "'" and by_arrow["Utf8"]["case_sensitive"] is True
    # the type names are real SQL: each casts in lotline's SQL to its Arrow type
    arrow_types = {
        # DataFusion casts to VARCHAR give Utf8View, the same strings in another layout
        "Utf8": pa.string_view(),
        "Boolean": pa.bool_(),
        "UInt8": pa.uint8(),
        "UInt32": pa.uint32(),
        "Int32": pa.int32(),
        "Int64": pa.int64(),
        "UInt64": pa.uint64(),
        "Float64": pa.float64(),
    }
    for arrow_name, arrow_type in arrow_types.items():
        with conn.cursor() as cur:
            cur.execute(f"SELECT CAST(1 AS {by_arrow[arrow_name]['type_name']}) AS x")
            assert cur.fetch_arrow_table().schema.field("x").type == arrow_type, arrow_name
    # filter by data type (XDBC_BIGINT = -5)
    bigint = flight_table(client, cmd_xdbc(-5), opts).to_pylist()
    assert sorted(r["type_name"] for r in bigint) == ["BIGINT", "BIGINT UNSIGNED"]


# SqlInfo ids and union type codes (FlightSql.proto)
SQL_INFO = {
    "FLIGHT_SQL_SERVER_SQL": 4,
    "FLIGHT_SQL_SERVER_SUBSTRAIT": 5,
    "FLIGHT_SQL_SERVER_TRANSACTION": 8,
    "FLIGHT_SQL_SERVER_CANCEL": 9,
    "SQL_IDENTIFIER_QUOTE_CHAR": 504,
    "SQL_TRANSACTIONS_SUPPORTED": 563,
    "SQL_BATCH_UPDATES_SUPPORTED": 572,
    "SQL_SAVEPOINTS_SUPPORTED": 573,
}


def test_raw_get_sql_info_capabilities(raw):
    client, opts = raw
    ids = list(SQL_INFO.values())
    table = flight_table(client, pb_any("CommandGetSqlInfo", pb_len_field(1, b"".join(pb_varint(i) for i in ids))), opts)
    values = dict(zip(table.column("info_name").to_pylist(), table.column("value").to_pylist()))
    assert values == {
        4: True,  # SQL
        5: False,  # no Substrait
        8: 0,  # SQL_SUPPORTED_TRANSACTION_NONE
        9: False,  # no CancelQuery
        504: '"',
        563: False,
        572: True,
        573: False,
    }


def test_adbc_get_info_matches_raw_sql_info(conn, raw):
    client, opts = raw
    table = flight_table(client, pb_any("CommandGetSqlInfo", pb_len_field(1, pb_varint(0) + pb_varint(1) + pb_varint(2))), opts)
    raw_info = dict(zip(table.column("info_name").to_pylist(), table.column("value").to_pylist()))
    info = conn.adbc_get_info()
    assert (info["vendor_name"], info["vendor_version"], info["vendor_arrow_version"]) == (
        raw_info[0],
        raw_info[1],
        raw_info[2],
    )
    assert raw_info[0] == "lotline" and raw_info[1], raw_info


# ---------------------------------------------------------------------------
# not supported: clear answers
# ---------------------------------------------------------------------------


def test_transactions_are_unimplemented_with_a_reason(raw, fs_server):
    client, opts = raw
    body = pb_any("ActionBeginTransactionRequest", b"")
    with pytest.raises(NotImplementedError) as err:
        list(client.do_action(flight.Action("BeginTransaction", body), opts))
    text = str(err.value)
    assert "transactions" in text and "autocommit" in text, text
    # A statement that names a transaction is refused the same way.
    query = pb_any("CommandStatementQuery", pb_len_field(1, b"SELECT 1") + pb_len_field(2, b"txn-1"))
    with pytest.raises(NotImplementedError, match="transactions"):
        client.get_flight_info(flight.FlightDescriptor.for_command(query), opts)
    # ADBC: turning autocommit off is refused too, and the connection goes on.
    conn = fs_server.connect()
    with pytest.raises(adbc_driver_manager.Error) as err:
        conn.conn.adbc_connection.set_autocommit(False)
    assert "transaction" in error_text(err.value).lower(), error_text(err.value)
    assert conn.count(f"tag = '{TAGS[0]}'") == N_PER_TAG


def test_substrait_is_unimplemented_with_a_reason(raw):
    client, opts = raw
    plan = pb_any("CommandStatementSubstraitPlan", pb_len_field(1, pb_len_field(1, b"\x00")))
    with pytest.raises(NotImplementedError, match="Substrait plans are not supported: send SQL"):
        client.get_flight_info(flight.FlightDescriptor.for_command(plan), opts)


def test_cancel_flight_info_answers_not_cancellable(raw):
    client, opts = raw
    info = client.get_flight_info(
        flight.FlightDescriptor.for_command(pb_any("CommandStatementQuery", pb_len_field(1, b"SELECT 1"))), opts
    )
    body = pb_len_field(1, info.serialize())
    results = list(client.do_action(flight.Action("CancelFlightInfo", body), opts))
    assert len(results) == 1
    assert pb_decode(results[0].body.to_pybytes()).get(1) == [3]  # CANCEL_STATUS_NOT_CANCELLABLE
    # the FlightInfo's ticket still answers
    assert client.do_get(info.endpoints[0].ticket, opts).read_all().num_rows == 1
