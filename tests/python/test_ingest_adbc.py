"""Bulk ingest through the ADBC Flight SQL driver and reading it back."""

from __future__ import annotations

import time

import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from lotline_testlib import (
    MANUAL_FLUSH,
    NS_PER_S,
    TS_TYPE,
    bearer_options,
    error_text,
    flight_client,
    flight_sql_command,
    manifest_files,
    ns,
    samples_table,
    sql_ts,
)

T0 = ns(2024, 3, 1)
N_TAGS = 200
N_CALLS = 10
ROWS_PER_CALL = 100_000
TOTAL = N_CALLS * ROWS_PER_CALL
TAGS = [f"line1.t{i:03d}" for i in range(N_TAGS)]


def value_of(tag_idx: int, second: int) -> float:
    return tag_idx * 10_000 + second * 0.25  # exact in float64


def make_call(call: int) -> pa.Table:
    """Rows g in [call*100k, (call+1)*100k): tag g % 200 at second g // 200."""
    g0 = call * ROWS_PER_CALL
    gs = range(g0, g0 + ROWS_PER_CALL)
    tags = [TAGS[g % N_TAGS] for g in gs]
    secs = [g // N_TAGS for g in gs]
    return samples_table(
        tags,
        [T0 + s * NS_PER_S for s in secs],
        [value_of(g % N_TAGS, g // N_TAGS) for g in gs],
        quality=[0] * ROWS_PER_CALL,
        lot=[f"L-{call:02d}"] * ROWS_PER_CALL,
        chunk_rows=25_000,  # one request = a stream of several batches
    )


def check_point_query(client, tag_idx=42, first_s=1_400, last_s=1_700):
    """Tag + time-range filter spanning two ingest calls, compared value by value."""
    tag = TAGS[tag_idx]
    lo, hi = T0 + first_s * NS_PER_S, T0 + last_s * NS_PER_S
    result = client.query(
        f"SELECT ts, value, quality, lot FROM samples "
        f"WHERE tag = '{tag}' AND ts >= {sql_ts(lo)} AND ts < {sql_ts(hi)} ORDER BY ts"
    )
    assert result.schema.field("ts").type == TS_TYPE
    got_ts = result.column("ts").cast(pa.int64()).to_pylist()
    expected_s = list(range(first_s, last_s))
    assert got_ts == [T0 + s * NS_PER_S for s in expected_s]
    assert result.column("value").to_pylist() == [value_of(tag_idx, s) for s in expected_s]
    assert set(result.column("quality").to_pylist()) == {0}
    assert result.column("lot").to_pylist() == [f"L-{(s * N_TAGS) // ROWS_PER_CALL:02d}" for s in expected_s]


def check_all(client):
    assert client.count() == TOTAL
    check_point_query(client)
    check_point_query(client, tag_idx=0, first_s=0, last_s=3)
    check_point_query(client, tag_idx=N_TAGS - 1, first_s=4_990, last_s=5_000)
    per_tag = client.query("SELECT tag, count(*) AS n, min(ts) AS lo, max(ts) AS hi FROM samples GROUP BY tag")
    rows = {r["tag"]: r for r in per_tag.to_pylist()}
    assert sorted(rows) == TAGS
    assert {r["n"] for r in rows.values()} == {TOTAL // N_TAGS}
    lo_hi = per_tag.select(["lo", "hi"]).cast(pa.schema([("lo", pa.int64()), ("hi", pa.int64())]))
    assert set(lo_hi.column("lo").to_pylist()) == {T0}
    assert set(lo_hi.column("hi").to_pylist()) == {T0 + (TOTAL // N_TAGS - 1) * NS_PER_S}


def test_bulk_ingest_million_samples(server_factory):
    server = server_factory(*MANUAL_FLUSH)
    client = server.client
    t = time.monotonic()
    for call in range(N_CALLS):
        client.ingest(make_call(call))
        # visible at once, before any flush
        assert client.count() == (call + 1) * ROWS_PER_CALL
    elapsed = time.monotonic() - t
    print(f"ingested {TOTAL} rows in {elapsed:.1f}s ({TOTAL / elapsed:,.0f} rows/s incl. counts)")
    check_all(client)

    result = server.flush()
    assert result["segments_written"] >= 1, result
    files = manifest_files(server.data_dir)
    assert files, "flush wrote segments but manifest.json lists none"
    for rel in files:
        path = server.data_dir / rel
        assert path.is_file(), f"manifest lists missing file {rel}"
        assert rel.startswith("tables/samples/date="), rel
    check_all(client)

    # A second flush with an empty buffer must not lose or duplicate rows.
    server.flush()
    assert client.count() == TOTAL

    # After a restart the flushed rows come from segments only; the WAL must
    # not replay them a second time.
    server.restart()
    check_all(server.client)


def test_wrong_password_refused(server):
    with pytest.raises(adbc_driver_manager.Error) as info:
        bad = server.connect(password="not-the-password")
        bad.query("SELECT 1")
    text = error_text(info.value)
    assert (
        getattr(info.value, "status_code", None) == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED
        or "unauthenticated" in text.lower()
    ), text
    # the right password still works
    assert server.client.count() == 0


def test_flight_calls_need_a_token(server):
    server.client.ingest(samples_table(["auth.t"] * 3, [T0, T0 + NS_PER_S, T0 + 2 * NS_PER_S], [1.0, 2.0, 3.0]))
    client = flight_client(server.port)
    try:
        descriptor = flight.FlightDescriptor.for_command(flight_sql_command("SELECT count(*) AS n FROM samples"))
        with pytest.raises(flight.FlightUnauthenticatedError):
            list(client.do_action(flight.Action("lotline.flush", b"")))
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.get_flight_info(descriptor)
        forged = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer not-a-real-token")])
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.get_flight_info(descriptor, forged)
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.authenticate_basic_token("admin", "wrong-password")

        # Control: the same raw calls work with the bearer token.
        opts = bearer_options(client, server.password)
        info = client.get_flight_info(descriptor, opts)
        assert info.endpoints, "GetFlightInfo returned no endpoints"
        table = pa.concat_tables(client.do_get(ep.ticket, opts).read_all() for ep in info.endpoints)
        assert table.column(0).to_pylist() == [3]
        results = list(client.do_action(flight.Action("lotline.flush", b""), opts))
        assert len(results) == 1
    finally:
        client.close()


def test_insert_into_via_execute(server):
    client = server.client
    client.execute(
        "INSERT INTO samples VALUES "
        f"('ins.oven1.temp', {sql_ts(T0)}, 181.5, NULL, 0, 'oven1', 'WO-7', 'L-77')"
    )
    client.execute(
        "INSERT INTO samples (tag, ts, value, quality) VALUES "
        f"('ins.oven1.temp', {sql_ts(T0 + NS_PER_S)}, 182.25, 0), "
        f"('ins.oven1.temp', {sql_ts(T0 + 2 * NS_PER_S)}, 183.0, 1073741824)"
    )
    result = client.query(
        "SELECT ts, value, quality, equipment, work_order, lot FROM samples "
        "WHERE tag = 'ins.oven1.temp' ORDER BY ts"
    )
    assert result.column("ts").cast(pa.int64()).to_pylist() == [T0, T0 + NS_PER_S, T0 + 2 * NS_PER_S]
    assert result.column("value").to_pylist() == [181.5, 182.25, 183.0]
    assert result.column("quality").to_pylist() == [0, 0, 0x40000000]
    assert result.column("equipment").to_pylist()[0] == "oven1"
    assert result.column("work_order").to_pylist()[0] == "WO-7"
    assert result.column("lot").to_pylist()[0] == "L-77"
    assert client.count() == 3


def test_insert_as_update_statement(server):
    """CommandStatementUpdate (ADBC execute_update) returns the affected row count."""
    client = server.client
    with client.conn.cursor() as cur:
        stmt = cur.adbc_statement
        stmt.set_sql_query(
            "INSERT INTO samples (tag, ts, value) VALUES "
            f"('upd.press', {sql_ts(T0)}, 1.5), ('upd.press', {sql_ts(T0 + NS_PER_S)}, 2.5)"
        )
        assert stmt.execute_update() == 2
        stmt.set_sql_query(f"INSERT INTO samples (tag, ts, value) VALUES ('upd.press', {sql_ts(-NS_PER_S)}, 1.0)")
        with pytest.raises(Exception) as err:
            stmt.execute_update()
    assert "1970" in error_text(err.value)
    assert client.count("tag = 'upd.press'") == 2


def test_ingest_widens_units_and_defaults_quality(server):
    client = server.client
    base_s = T0 // NS_PER_S
    cases = [
        ("w.seconds", pa.timestamp("s", tz="UTC"), [base_s, base_s + 1], pa.int64(), [7, -3]),
        ("w.millis", pa.timestamp("ms", tz="UTC"), [base_s * 1000 + 5, base_s * 1000 + 1250], pa.float32(), [1.5, 2.25]),
        ("w.micros", pa.timestamp("us", tz="UTC"), [base_s * 10**6 + 7, base_s * 10**6 + 9], pa.int32(), [100, 200]),
    ]
    scale = {"s": NS_PER_S, "ms": 10**6, "us": 10**3}
    for tag, ts_type, ts_vals, value_type, values in cases:
        table = pa.table(
            {
                "tag": pa.array([tag] * len(values)),
                "ts": pa.array(ts_vals, ts_type),
                "value": pa.array(values, value_type),
            }
        )  # no quality column: defaults to Good
        client.ingest(table)
        result = client.query(f"SELECT ts, value, quality FROM samples WHERE tag = '{tag}' ORDER BY ts")
        assert result.schema.field("ts").type == TS_TYPE
        assert result.schema.field("value").type == pa.float64()
        assert result.column("ts").cast(pa.int64()).to_pylist() == [v * scale[ts_type.unit] for v in ts_vals], tag
        assert result.column("value").to_pylist() == [float(v) for v in values], tag
        assert result.column("quality").to_pylist() == [0] * len(values), tag
