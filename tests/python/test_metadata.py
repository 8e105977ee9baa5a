"""Clients can browse lotline: Flight SQL catalog metadata and SqlInfo.

Through the ADBC Flight SQL driver (GetCatalogs / GetDbSchemas / GetTables /
GetTableTypes / GetSqlInfo behind adbc_get_objects, adbc_get_table_schema,
adbc_get_table_types, adbc_get_info) and through raw pyarrow.flight with the
Flight SQL commands encoded by hand, as a client without a Flight SQL library
would send them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from lotline_testlib import TS_TYPE, flight_client, flight_get, pb_any, pb_len_field, pb_varint, raw_flight

CARGO_TOML = Path(__file__).resolve().parents[2] / "Cargo.toml"

CATALOG = "lotline"
DB_SCHEMA = "public"

SAMPLES_SCHEMA = pa.schema(
    [
        pa.field("tag", pa.utf8(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("value", pa.float64()),
        pa.field("text", pa.utf8()),
        pa.field("quality", pa.uint32(), nullable=False),
        pa.field("equipment", pa.utf8()),
        pa.field("work_order", pa.utf8()),
        pa.field("lot", pa.utf8()),
    ]
)

SAMPLES_COLUMNS = ["tag", "ts", "value", "text", "quality", "equipment", "work_order", "lot"]
TAGS_COLUMNS = [
    "tag",
    "description",
    "unit",
    "equipment",
    "value_type",
    "interpolation",
    "eng_low",
    "eng_high",
    "treat_uncertain_as_bad",
    "percent_data_good",
    "percent_data_bad",
    "use_sloped_extrapolation",
]
# The context tables of ARCHITECTURE.md's data model, in column order.
CONTEXT_COLUMNS = {
    "equipment": ["id", "name", "parent_id", "level"],
    "genealogy": ["input_lot", "output_lot", "quantity", "uom", "ts", "work_order", "equipment"],
    "lots": ["id", "material", "quantity", "uom", "status", "work_order", "created_at"],
    "production_runs": ["equipment", "work_order", "lot", "operation", "start_ts", "end_ts"],
    "work_orders": [
        "id", "material", "quantity", "uom", "status", "planned_start", "planned_end", "actual_start", "actual_end",
    ],
    # Master data and plans from Level 4 (B2MML).
    "materials": ["id", "description", "material_class", "uom"],
    "work_order_segments": ["work_order", "segment", "process_segment", "equipment", "earliest_start", "latest_end"],
    "work_order_materials": ["work_order", "segment", "requirement", "material_use", "material", "lot", "quantity", "uom"],
    "aliases": ["system", "kind", "external_id", "key"],
    "systems": ["system", "description", "unknown_ids"],
    "drafts": ["kind", "key", "system", "external_id", "source"],
    "work_order_parameters": ["work_order", "segment", "parameter", "value", "data_type", "uom", "description"],
}
CORRECTIONS_COLUMNS = ["tag", "ts", "value", "text", "quality", "corrected_by", "reason", "corrected_at"]
AUDIT_COLUMNS = [
    "seq", "ts", "actor", "action", "table_name", "row_count", "detail", "reason", "prev_hash", "hash",
]
BASE_TABLES = sorted(["samples", "tags", "sample_corrections", "audit_log", *CONTEXT_COLUMNS])
# Views: every versioned table's history, samples without corrections, the last values.
VERSIONED = ["tags", *CONTEXT_COLUMNS]
VIEWS = sorted([f"{name}_history" for name in VERSIONED] + ["samples_raw", "last_values"])
ALL_TABLES = sorted(BASE_TABLES + VIEWS)
TABLE_TYPE = {**{name: "TABLE" for name in BASE_TABLES}, **{name: "VIEW" for name in VIEWS}}

# SqlInfo ids (FlightSql.proto).
FLIGHT_SQL_SERVER_NAME = 0
FLIGHT_SQL_SERVER_VERSION = 1
FLIGHT_SQL_SERVER_READ_ONLY = 3
FLIGHT_SQL_SERVER_TRANSACTION = 8
FLIGHT_SQL_SERVER_BULK_INGESTION = 10
# SqlInfo value union type codes (FlightSql.proto, CommandGetSqlInfo).
UNION_STRING = 0
UNION_BOOL = 1
UNION_INT32_BITMASK = 3
SQL_SUPPORTED_TRANSACTION_NONE = 0


def cargo_version() -> str:
    with open(CARGO_TOML, "rb") as f:
        return tomllib.load(f)["package"]["version"]


# ---------------------------------------------------------------------------
# hand-encoded Flight SQL commands (protobuf wire format, wrapped in Any)
# ---------------------------------------------------------------------------


def _varint_field(number: int, value: int) -> bytes:
    return pb_varint((number << 3) | 0) + pb_varint(value)


def cmd_get_tables(
    catalog: str | None = None,
    db_schema_filter_pattern: str | None = None,
    table_name_filter_pattern: str | None = None,
    table_types: list[str] = (),
    include_schema: bool = False,
) -> bytes:
    inner = b""
    if catalog is not None:
        inner += pb_len_field(1, catalog.encode())
    if db_schema_filter_pattern is not None:
        inner += pb_len_field(2, db_schema_filter_pattern.encode())
    if table_name_filter_pattern is not None:
        inner += pb_len_field(3, table_name_filter_pattern.encode())
    for table_type in table_types:
        inner += pb_len_field(4, table_type.encode())
    if include_schema:
        inner += _varint_field(5, 1)
    return pb_any("CommandGetTables", inner)


def cmd_get_sql_info(info: list[int]) -> bytes:
    inner = pb_len_field(1, b"".join(pb_varint(i) for i in info)) if info else b""
    return pb_any("CommandGetSqlInfo", inner)


def test_hand_encoder_matches_protobuf_bytes():
    """Guard the encoder itself against known-good protobuf serializations."""
    assert cmd_get_sql_info([0, 1, 3]) == (
        b"\x0a\x3ftype.googleapis.com/arrow.flight.protocol.sql.CommandGetSqlInfo"
        b"\x12\x05\x0a\x03\x00\x01\x03"
    )
    inner = b"\x0a\x07lotline\x1a\x04sam%\x22\x05TABLE\x28\x01"
    assert cmd_get_tables("lotline", None, "sam%", ["TABLE"], True) == (
        b"\x0a\x3etype.googleapis.com/arrow.flight.protocol.sql.CommandGetTables"
        + b"\x12" + bytes([len(inner)]) + inner
    )


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def md_server(module_server_factory):
    """One server for the whole module: metadata calls do not change state."""
    return module_server_factory()


@pytest.fixture(scope="module")
def conn(md_server):
    return md_server.client.conn


@pytest.fixture
def raw(md_server):
    """(pyarrow FlightClient, bearer call options)."""
    with raw_flight(md_server) as pair:
        yield pair


# ---------------------------------------------------------------------------
# ADBC
# ---------------------------------------------------------------------------


def objects_tree(objects: pa.Table) -> list:
    """[(catalog, [(schema, [(table, type, [column names in ordinal order])])])]."""
    tree = []
    for cat in objects.to_pylist():
        schemas = []
        for sch in cat["catalog_db_schemas"] or []:
            tables = []
            for tbl in sch["db_schema_tables"] or []:
                cols = sorted(tbl["table_columns"] or [], key=lambda c: c["ordinal_position"])
                tables.append((tbl["table_name"], tbl["table_type"], [c["column_name"] for c in cols]))
            schemas.append((sch["db_schema_name"], sorted(tables)))
        tree.append((cat["catalog_name"], schemas))
    return tree


def test_adbc_get_objects_lists_catalog_schema_tables_columns(conn):
    objects = conn.adbc_get_objects(depth="all", table_types_filter=["TABLE"]).read_all()
    assert objects_tree(objects) == [
        (
            CATALOG,
            [
                (
                    DB_SCHEMA,
                    sorted(
                        [("samples", "TABLE", SAMPLES_COLUMNS), ("tags", "TABLE", TAGS_COLUMNS)]
                        + [("sample_corrections", "TABLE", CORRECTIONS_COLUMNS)]
                        + [("audit_log", "TABLE", AUDIT_COLUMNS)]
                        + [(name, "TABLE", cols) for name, cols in CONTEXT_COLUMNS.items()]
                    ),
                )
            ],
        )
    ]
    # ordinal positions are 1..n in column order
    for cat in objects.to_pylist():
        for sch in cat["catalog_db_schemas"]:
            for tbl in sch["db_schema_tables"]:
                positions = [c["ordinal_position"] for c in tbl["table_columns"]]
                assert positions == list(range(1, len(positions) + 1)), (tbl["table_name"], positions)


def test_adbc_get_objects_table_name_filter(conn):
    objects = conn.adbc_get_objects(depth="all", table_name_filter="samples").read_all()
    assert objects_tree(objects) == [(CATALOG, [(DB_SCHEMA, [("samples", "TABLE", SAMPLES_COLUMNS)])])]


def test_adbc_get_objects_shallow_depths(conn):
    catalogs = conn.adbc_get_objects(depth="catalogs").read_all().to_pylist()
    assert [c["catalog_name"] for c in catalogs] == [CATALOG]
    schemas = conn.adbc_get_objects(depth="db_schemas").read_all().to_pylist()
    assert [(c["catalog_name"], [s["db_schema_name"] for s in c["catalog_db_schemas"]]) for c in schemas] == [
        (CATALOG, [DB_SCHEMA])
    ]
    tables = conn.adbc_get_objects(depth="tables").read_all()
    assert [
        (c["catalog_name"], [(s["db_schema_name"], sorted(t["table_name"] for t in s["db_schema_tables"])) for s in c["catalog_db_schemas"]])
        for c in tables.to_pylist()
    ] == [(CATALOG, [(DB_SCHEMA, ALL_TABLES)])]


def test_adbc_get_table_schema_samples(conn):
    schema = conn.adbc_get_table_schema("samples")
    assert schema == SAMPLES_SCHEMA, f"got:\n{schema}\nexpected:\n{SAMPLES_SCHEMA}"
    # pa.Schema == compares nullability too, but say it explicitly
    assert [(f.name, f.nullable) for f in schema] == [(f.name, f.nullable) for f in SAMPLES_SCHEMA]


def test_adbc_get_table_types(conn):
    assert conn.adbc_get_table_types() == ["TABLE", "VIEW"]


def information_schema(conn) -> dict[str, tuple[str, list[str]]]:
    """{table: (Flight SQL table type, [column names in order])} of schema public."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT t.table_name, t.table_type, c.column_name FROM information_schema.tables t "
            "JOIN information_schema.columns c ON c.table_name = t.table_name AND c.table_schema = t.table_schema "
            f"WHERE t.table_schema = '{DB_SCHEMA}' ORDER BY t.table_name, c.ordinal_position"
        )
        rows = cur.fetch_arrow_table().to_pylist()
    out: dict[str, tuple[str, list[str]]] = {}
    for r in rows:
        flight_type = {"BASE TABLE": "TABLE", "VIEW": "VIEW"}[r["table_type"]]
        out.setdefault(r["table_name"], (flight_type, []))[1].append(r["column_name"])
    return out


def test_get_objects_and_information_schema_agree_on_every_queryable_table(conn):
    """Views (X_history, samples_raw, last_values) are listed too, as VIEW."""
    objects = conn.adbc_get_objects(depth="all").read_all()
    [(catalog, [(schema, tables)])] = objects_tree(objects)
    assert (catalog, schema) == (CATALOG, DB_SCHEMA)
    listed = {name: (table_type, columns) for name, table_type, columns in tables}
    assert listed == information_schema(conn)
    assert {name: t for name, (t, _) in listed.items()} == TABLE_TYPE
    views = conn.adbc_get_objects(depth="tables", table_types_filter=["VIEW"]).read_all().to_pylist()
    assert sorted(t["table_name"] for t in views[0]["catalog_db_schemas"][0]["db_schema_tables"]) == VIEWS


@pytest.mark.parametrize("table", ["equipment_history", "samples_raw", "last_values"])
def test_adbc_get_table_schema_of_views_is_what_a_query_returns(conn, table):
    schema = conn.adbc_get_table_schema(table)
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {table} LIMIT 0")
        queried = cur.fetch_arrow_table().schema
    assert schema.names == queried.names
    assert [f.type for f in schema] == [f.type for f in queried]


def test_adbc_get_info_vendor(conn):
    info = conn.adbc_get_info()
    assert info.get("vendor_name") == "lotline", info
    version = cargo_version()
    assert version, "no version in Cargo.toml"
    assert info.get("vendor_version") == version, (info, version)


# ---------------------------------------------------------------------------
# raw pyarrow.flight
# ---------------------------------------------------------------------------

GET_TABLES_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.utf8()),
        pa.field("db_schema_name", pa.utf8()),
        pa.field("table_name", pa.utf8(), nullable=False),
        pa.field("table_type", pa.utf8(), nullable=False),
    ]
)


def test_raw_get_tables_without_schema(raw):
    client, opts = raw
    info, table = flight_get(client, cmd_get_tables(), opts)
    assert table.schema == GET_TABLES_SCHEMA, table.schema
    assert info.schema == table.schema
    rows = sorted(
        zip(*(table.column(n).to_pylist() for n in ("catalog_name", "db_schema_name", "table_name", "table_type")))
    )
    assert rows == [(CATALOG, DB_SCHEMA, name, TABLE_TYPE[name]) for name in ALL_TABLES]


def test_raw_get_tables_with_schema_of_a_view(raw):
    client, opts = raw
    cmd = cmd_get_tables(table_name_filter_pattern="%_history", table_types=["VIEW"], include_schema=True)
    _, table = flight_get(client, cmd, opts)
    rows = table.to_pylist()
    assert sorted(r["table_name"] for r in rows) == sorted(f"{name}_history" for name in VERSIONED)
    lots = next(r for r in rows if r["table_name"] == "lots_history")
    schema = pa.ipc.read_schema(pa.py_buffer(lots["table_schema"]))
    assert schema.names == CONTEXT_COLUMNS["lots"] + ["recorded_at", "recorded_by", "reason", "op"]


def test_raw_get_tables_with_schema(raw):
    client, opts = raw
    cmd = cmd_get_tables(
        catalog=CATALOG,
        db_schema_filter_pattern=DB_SCHEMA,
        table_name_filter_pattern="samples",
        table_types=["TABLE"],
        include_schema=True,
    )
    info, table = flight_get(client, cmd, opts)
    assert table.schema.names == ["catalog_name", "db_schema_name", "table_name", "table_type", "table_schema"]
    assert table.schema.field("table_schema").type == pa.binary()
    assert info.schema == table.schema
    rows = table.to_pylist()
    assert [(r["catalog_name"], r["db_schema_name"], r["table_name"], r["table_type"]) for r in rows] == [
        (CATALOG, DB_SCHEMA, "samples", "TABLE")
    ]
    schema = pa.ipc.read_schema(pa.py_buffer(rows[0]["table_schema"]))
    assert schema == SAMPLES_SCHEMA, f"got:\n{schema}\nexpected:\n{SAMPLES_SCHEMA}"


def test_raw_get_tables_filters_exclude(raw):
    client, opts = raw
    for cmd in (
        cmd_get_tables(table_types=["LOCAL TEMPORARY"]),
        cmd_get_tables(table_name_filter_pattern="nope%"),
        cmd_get_tables(db_schema_filter_pattern="other"),
        cmd_get_tables(catalog="other"),
    ):
        _, table = flight_get(client, cmd, opts)
        assert table.num_rows == 0, (cmd, table.to_pylist())


def sql_info_values(table: pa.Table) -> dict[int, tuple[int, object]]:
    names = table.column("info_name").to_pylist()
    assert len(names) == len(set(names)), f"duplicate info ids: {names}"
    values = table.column("value").combine_chunks()
    out = {}
    for i, name in enumerate(names):
        scalar = values[i]
        out[name] = (scalar.type_code, scalar.as_py())
    return out


def test_raw_get_sql_info(raw):
    client, opts = raw
    cmd = cmd_get_sql_info([FLIGHT_SQL_SERVER_NAME, FLIGHT_SQL_SERVER_VERSION, FLIGHT_SQL_SERVER_READ_ONLY])
    info, table = flight_get(client, cmd, opts)
    assert table.schema.names == ["info_name", "value"]
    assert table.schema.field("info_name").type == pa.uint32()
    assert table.schema.field("value").type.mode == "dense"
    assert info.schema == table.schema
    assert sql_info_values(table) == {
        FLIGHT_SQL_SERVER_NAME: (UNION_STRING, "lotline"),
        FLIGHT_SQL_SERVER_VERSION: (UNION_STRING, cargo_version()),
        FLIGHT_SQL_SERVER_READ_ONLY: (UNION_BOOL, False),
    }


def test_raw_get_sql_info_ingest_and_transactions(raw):
    client, opts = raw
    cmd = cmd_get_sql_info([FLIGHT_SQL_SERVER_BULK_INGESTION, FLIGHT_SQL_SERVER_TRANSACTION])
    _, table = flight_get(client, cmd, opts)
    assert sql_info_values(table) == {
        FLIGHT_SQL_SERVER_BULK_INGESTION: (UNION_BOOL, True),
        FLIGHT_SQL_SERVER_TRANSACTION: (UNION_INT32_BITMASK, SQL_SUPPORTED_TRANSACTION_NONE),
    }


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(cmd_get_tables(include_schema=True), id="GetTables"),
        pytest.param(cmd_get_sql_info([FLIGHT_SQL_SERVER_NAME]), id="GetSqlInfo"),
    ],
)
@pytest.mark.parametrize("token", [None, "Bearer not-a-token"], ids=["no-token", "bad-token"])
def test_raw_metadata_needs_token(md_server, command, token):
    client = flight_client(md_server.port)
    try:
        headers = [(b"authorization", token.encode())] if token else []
        opts = flight.FlightCallOptions(headers=headers, timeout=30)
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.get_flight_info(flight.FlightDescriptor.for_command(command), opts)
        # The ticket of these commands is the command itself: do_get must check too.
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.do_get(flight.Ticket(command), opts).read_all()
    finally:
        client.close()
