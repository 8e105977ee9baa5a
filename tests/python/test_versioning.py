"""Versioned context and master data (issue 6, test 4): a rewrite, UPDATE or
DELETE of an existing record appends a version or a tombstone with the user,
server time and reason; without a reason it is refused, naming the table,
the key and how to give one, and nothing is written. `X` shows the current
versions and `X_history` all of them — also after SIGKILL and after a flush.
"""

from __future__ import annotations

import time

import adbc_driver_manager
import pyarrow as pa
import pytest

from lotline_testlib import ADMIN_USER, check_across_restarts, error_text, ingest_error

@pytest.fixture
def server(server_factory):
    return server_factory("--flush-rows", "1000000000", "--flush-age-secs", "86400")


def refused(client, sql: str) -> str:
    try:
        client.execute(sql)
    except adbc_driver_manager.Error as exc:
        return error_text(exc)
    raise AssertionError(f"{sql!r} was accepted but must be refused")


def assert_how_to(text: str, table: str, key: str):
    for needle in (table, key, "needs a reason", "x-lotline-reason", "SET lotline.reason"):
        assert needle in text, f"{needle!r} not in {text}"


def history(client, table: str, key: str) -> list[dict]:
    return client.query(
        f"SELECT * EXCLUDE (recorded_at), CAST(recorded_at AS BIGINT) AS at_ns FROM {table}_history WHERE id = '{key}' ORDER BY recorded_at"
    ).to_pylist()


def test_update_delete_and_rewrites_are_versions_with_reasons(server):
    c = server.client
    before = time.time_ns()
    c.ingest(
        pa.table({"id": ["acme", "site1", "site2"], "name": ["Acme", "Site 1", "Site 2"], "parent_id": [None, "acme", "acme"], "level": ["enterprise", "site", "site"]}),
        table="equipment",
    )
    c.execute("INSERT INTO lots (id, material, quantity, status) VALUES ('L-1', 'cookie', 98, 'released'), ('L-2', 'cake', 5, 'released')")

    # Changes without a reason are refused whole and write nothing.
    assert_how_to(refused(c, "UPDATE equipment SET name = 'Site One' WHERE id = 'site1'"), "equipment", "id='site1'")
    assert_how_to(refused(c, "DELETE FROM lots WHERE id = 'L-2'"), "lots", "id='L-2'")
    assert_how_to(
        ingest_error(c, pa.table({"id": ["site3", "site2"], "name": ["new", "Site Two"], "level": ["site", "site"]}), table="equipment"),
        "equipment",
        "id='site2'",
    )
    assert c.count(table="equipment_history") == 3 and c.count(table="lots_history") == 2
    assert c.count(table="equipment") == 3, "a refused request writes none of its rows (site3 neither)"

    # With a reason: in the statement text, and as a call header on every call.
    assert c.execute("SET lotline.reason = 'typo in name'; UPDATE equipment SET name = 'Site One' WHERE id = 'site1'").column(0)[0].as_py() == 1
    c.execute("SET lotline.reason = 'scrapped, it''s burnt'; DELETE FROM lots WHERE id = 'L-2'")
    assert "applies to the statement it prefixes" in refused(c, "SET lotline.reason = 'alone'")
    c.set_reason("renamed by MES")
    c.ingest(pa.table({"id": ["site2"], "name": ["Site Two"], "parent_id": ["acme"], "level": ["site"]}), table="equipment")
    c.execute("UPDATE lots SET quantity = quantity - 1, status = 'on_hold' WHERE material = 'cookie'")
    # UPDATE of a key column is refused: it would be a different record.
    assert "part of the key" in refused(c, "UPDATE lots SET id = 'L-9' WHERE id = 'L-1'")
    after = time.time_ns()

    def check():
        c = server.client
        eq = {r["id"]: r for r in c.query("SELECT * FROM equipment").to_pylist()}
        assert {k: v["name"] for k, v in eq.items()} == {"acme": "Acme", "site1": "Site One", "site2": "Site Two"}
        assert list(eq["acme"]) == ["id", "name", "parent_id", "level"], "X keeps the user-facing schema"
        lots = c.query("SELECT id, quantity, status FROM lots").to_pylist()
        assert lots == [{"id": "L-1", "quantity": 97.0, "status": "on_hold"}], "L-2 is tombstoned"

        site1 = history(c, "equipment", "site1")
        assert [(r["name"], r["op"], r["reason"]) for r in site1] == [("Site 1", "insert", None), ("Site One", "update", "typo in name")]
        assert {r["recorded_by"] for r in site1} == {ADMIN_USER}
        for r in site1:
            assert before <= r["at_ns"] <= after
        assert site1[0]["at_ns"] < site1[1]["at_ns"]
        site2 = history(c, "equipment", "site2")
        assert [(r["name"], r["op"], r["reason"]) for r in site2] == [("Site 2", "insert", None), ("Site Two", "update", "renamed by MES")]
        l2 = history(c, "lots", "L-2")
        assert [(r["op"], r["reason"], r["quantity"]) for r in l2] == [("insert", None, 5.0), ("delete", "scrapped, it's burnt", 5.0)]
        l1 = history(c, "lots", "L-1")
        assert [(r["op"], r["quantity"], r["reason"]) for r in l1] == [("insert", 98.0, None), ("update", 97.0, "renamed by MES")]
        assert c.count(table="equipment_history") == 5 and c.count(table="lots_history") == 4

    check_across_restarts(server, check)

    # After the flush and restart the key index still knows what exists:
    # a rewrite still needs a reason, a deleted key may be inserted anew.
    c = server.client
    assert_how_to(refused(c, "INSERT INTO equipment (id, name) VALUES ('acme', 'ACME')"), "equipment", "id='acme'")
    c.execute("INSERT INTO lots (id, material) VALUES ('L-2', 'cake')")
    assert [r["op"] for r in history(c, "lots", "L-2")] == ["insert", "delete", "insert"]
    assert c.count(table="lots") == 2


def test_samples_are_not_updatable(server):
    c = server.client
    c.execute("INSERT INTO samples (tag, ts, value) VALUES ('t', TIMESTAMP '2026-05-01T00:00:00Z', 1)")
    text = refused(c, "SET lotline.reason = 'x'; UPDATE samples SET value = 2 WHERE tag = 't'")
    assert "append-only" in text and "sample_corrections" in text
    assert c.scalar("SELECT value FROM samples") == 1.0


def test_changes_and_corrections_are_audited_with_who_and_why(server):
    c = server.client
    c.execute("INSERT INTO equipment (id, name) VALUES ('oven1', 'Oven 1')")
    refused(c, "UPDATE equipment SET name = 'nope' WHERE id = 'oven1'")
    c.execute("SET lotline.reason = 'renamed'; UPDATE equipment SET name = 'Oven One' WHERE id = 'oven1'")
    c.execute("SET lotline.reason = 'decommissioned'; DELETE FROM equipment WHERE id = 'oven1'")
    ts = pa.array([1_777_600_000_000_000_000, 1_777_600_001_000_000_000], pa.timestamp("ns", tz="UTC"))
    c.ingest(pa.table({"tag": ["oven.temp"] * 2, "ts": ts, "value": [180.0, 999.0]}))
    fix = pa.table({"tag": ["oven.temp"], "ts": ts[1:], "value": [181.0], "reason": ["spike"]})
    c.ingest(fix, table="sample_corrections")
    c.set_reason("recalibrated")
    c.ingest(fix.drop_columns(["reason"]), table="sample_corrections")

    got = c.query(
        "SELECT actor, action, table_name, row_count, reason FROM audit_log "
        "WHERE table_name IN ('equipment', 'sample_corrections') ORDER BY seq"
    ).to_pylist()
    assert [(r["action"], r["table_name"], r["row_count"], r["reason"]) for r in got] == [
        ("write", "equipment", 1, None),
        ("update", "equipment", 1, "renamed"),
        ("delete", "equipment", 1, "decommissioned"),
        ("write", "sample_corrections", 1, "spike"),
        ("write", "sample_corrections", 1, "recalibrated"),
    ], "the refused UPDATE is not audited"
    assert {r["actor"] for r in got} == {ADMIN_USER}
    corrected = c.query("SELECT corrected_by, reason FROM sample_corrections ORDER BY corrected_at").to_pylist()
    assert corrected == [{"corrected_by": ADMIN_USER, "reason": "spike"}, {"corrected_by": ADMIN_USER, "reason": "recalibrated"}]
