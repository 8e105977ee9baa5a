"""The context tables (equipment, work_orders, lots, production_runs,
genealogy) through Flight SQL: ADBC bulk ingest and INSERT accept good rows,
refuse bad ones whole with the row, column and value named, and a rewrite of
a key (with a reason, see test_versioning.py) becomes the current row — also
after a restart and a flush.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from lotline_testlib import TS_TYPE, error_text, ingest_error

NS_PER_S = 1_000_000_000
T0 = int(dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc).timestamp()) * NS_PER_S


def ts(values):
    return pa.array(values, TS_TYPE)


GOOD = {
    "equipment": pa.table(
        {"id": ["acme", "site1"], "name": ["Acme", "Site 1"], "parent_id": [None, "acme"], "level": ["enterprise", "site"]}
    ),
    "work_orders": pa.table(
        {
            "id": ["WO-1", "WO-2"],
            "material": ["cookie", "cake"],
            "quantity": [100.0, 50.0],
            "status": ["completed", "in_progress"],
            "planned_start": ts([T0, T0 + 3600 * NS_PER_S]),
            "planned_end": ts([T0 + 3600 * NS_PER_S, None]),
        }
    ),
    "lots": pa.table(
        {"id": ["L-1", "R-1"], "material": ["cookie", "flour"], "quantity": [98.0, 20.5], "work_order": ["WO-1", None], "created_at": ts([T0, T0 - NS_PER_S])}
    ),
    "production_runs": pa.table(
        {
            "equipment": ["line1.oven", "line1.oven"],
            "work_order": ["WO-1", "WO-2"],
            "lot": ["L-1", "L-2"],
            "operation": ["bake", "bake"],
            "start_ts": ts([T0, T0 + 3600 * NS_PER_S]),
            "end_ts": ts([T0 + 3600 * NS_PER_S, None]),
        }
    ),
    "genealogy": pa.table(
        {"input_lot": ["R-1", "R-2"], "output_lot": ["L-1", "L-1"], "quantity": [20.5, 3.0], "ts": ts([T0, T0]), "work_order": ["WO-1", "WO-1"]}
    ),
}

# (table, bad batch, [substrings of the error]): row numbers count from 0.
BAD = [
    ("equipment", pa.table({"id": ["a", "b"], "level": ["site", "plant"]}), ["row 1", "'level'", "plant", "work_center"]),
    ("equipment", pa.table({"id": ["a", None], "level": ["site", "area"]}), ["row 1", "'id'", "null"]),
    ("lots", pa.table({"id": ["L", ""]}), ["row 1", "'id'", "empty"]),
    ("genealogy", pa.table({"input_lot": ["a"], "output_lot": [""], "ts": ts([T0])}), ["row 0", "'output_lot'", "empty"]),
    ("work_orders", pa.table({"id": ["W"], "quantity": [-1.0]}), ["row 0", "'quantity'", "-1"]),
    (
        "work_orders",
        pa.table({"id": ["W", "V"], "actual_start": ts([T0, T0]), "actual_end": ts([T0, T0 - NS_PER_S])}),
        ["row 1", "'actual_end'", "actual_start"],
    ),
    ("lots", pa.table({"id": ["L"], "created_at": ts([-NS_PER_S])}), ["row 0", "'created_at'", "before 1970"]),
    ("lots", pa.table({"id": ["L"], "colour": ["red"]}), ["no column 'colour'"]),
    (
        "production_runs",
        pa.table({"equipment": ["u", "u", "u"], "start_ts": ts([T0, T0 + 10, T0 + 20]), "end_ts": ts([None, T0 + 10, T0 + 19])}),
        ["row 2", "'end_ts'", "start_ts"],
    ),
    ("production_runs", pa.table({"equipment": ["u"]}), ["'start_ts'", "missing"]),
    ("genealogy", pa.table({"input_lot": ["a"], "output_lot": ["b"], "ts": ts([T0]), "quantity": [float("nan")]}), ["row 0", "'quantity'", "NaN"]),
    ("genealogy", pa.table({"input_lot": ["a"], "output_lot": ["b"], "ts": pa.array(["x"])}), ["'ts'", "Utf8"]),
]

BAD_INSERTS = [
    ("INSERT INTO equipment (id, level) VALUES ('x', 'line')", ["'level'", "line"]),
    (
        "INSERT INTO production_runs (equipment, start_ts, end_ts) VALUES "
        "('u', TIMESTAMP '2026-05-01T10:00:00Z', TIMESTAMP '2026-05-01T09:00:00Z')",
        ["'end_ts'", "start_ts"],
    ),
    ("INSERT INTO genealogy (input_lot, output_lot, ts, quantity) VALUES ('a', 'b', TIMESTAMP '2026-05-01T00:00:00Z', -2)", ["'quantity'"]),
]


@pytest.fixture
def context_server(server_factory):
    return server_factory("--flush-rows", "1000000000", "--flush-age-secs", "86400")


def test_good_rows_by_ingest_and_insert(context_server):
    client = context_server.client
    for table, data in GOOD.items():
        client.ingest(data, table=table)
        assert client.count(table=table) == data.num_rows, table
    client.execute("INSERT INTO equipment (id, name, parent_id, level) VALUES ('area1', 'Area 1', 'site1', 'area')")
    client.execute("INSERT INTO work_orders (id, material, quantity) VALUES ('WO-3', 'pie', 10)")
    client.execute("INSERT INTO lots (id, material, created_at) VALUES ('L-3', 'pie', TIMESTAMP '2026-05-02T00:00:00Z')")
    client.execute(
        "INSERT INTO production_runs (equipment, work_order, lot, operation, start_ts) "
        "VALUES ('line2.oven', 'WO-3', 'L-3', 'bake', TIMESTAMP '2026-05-02T00:00:00Z')"
    )
    client.execute(
        "INSERT INTO genealogy (input_lot, output_lot, quantity, uom, ts) "
        "VALUES ('L-1', 'L-3', 5, 'pcs', TIMESTAMP '2026-05-02T00:00:00Z')"
    )
    expected = {t: d.num_rows + 1 for t, d in GOOD.items()}
    # A rewrite of a key (with a reason) becomes the current row.
    client.set_reason("test rewrite")
    client.ingest(pa.table({"id": ["site1"], "name": ["Site One"], "parent_id": ["acme"], "level": ["site"]}), table="equipment")
    client.execute(
        "INSERT INTO production_runs (equipment, work_order, lot, operation, start_ts, end_ts) VALUES "
        f"('line1.oven', 'WO-2', 'L-2', 'bake', TIMESTAMP '2026-05-01T01:00:00Z', TIMESTAMP '2026-05-01T02:00:00Z')"
    )

    def check():
        for table, n in expected.items():
            assert context_server.client.count(table=table) == n, table
        c = context_server.client
        assert c.scalar("SELECT name FROM equipment WHERE id = 'site1'") == "Site One"
        end = c.scalar("SELECT end_ts FROM production_runs WHERE lot = 'L-2'")
        assert end is not None and int(end.timestamp()) == (T0 + 7200 * NS_PER_S) // NS_PER_S
        back = c.query("SELECT lot, depth FROM trace_backward('L-3') ORDER BY depth, lot").to_pylist()
        assert [(r["lot"], r["depth"]) for r in back] == [("L-3", 0), ("L-1", 1), ("R-1", 2), ("R-2", 2)]
        tables = {r["table_name"] for r in c.query("SELECT table_name FROM information_schema.tables").to_pylist()}
        assert set(GOOD) <= tables

    check()
    context_server.restart(kill=True)
    check()
    context_server.flush()
    context_server.restart()
    check()


def test_bad_rows_are_refused_with_row_column_and_value(context_server):
    client = context_server.client
    for table, data, needles in BAD:
        text = ingest_error(client, data, table=table)
        for needle in needles:
            assert needle in text, (table, needle, text)
    for sql, needles in BAD_INSERTS:
        try:
            client.execute(sql)
        except Exception as exc:  # noqa: BLE001 - any driver error type
            text = error_text(exc)
        else:
            raise AssertionError(f"{sql} was accepted")
        for needle in needles:
            assert needle in text, (sql, needle, text)
    # Nothing of the refused requests was written.
    for table in GOOD:
        assert client.count(table=table) == 0, table
    text = ingest_error(client, GOOD["lots"], table="lot")
    assert "unknown table 'lot'" in text and "production_runs" in text, text
    assert "audit_log" not in text, "the tables listed are the writable ones"
