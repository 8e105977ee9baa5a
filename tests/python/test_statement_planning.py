"""Statements are planned once (issue 20): a query over ADBC (GetFlightInfo,
then DoGet of its ticket) is planned once, counted by
`lotline_statements_planned_total`; the DoGet still sees rows written after
the GetFlightInfo, as a DoGet that planned again would; a ticket planned
for one user is planned afresh for another; a plain SQL ticket (as clients
that build tickets themselves send) still works.
"""

from __future__ import annotations

import pyarrow as pa

from lotline_testlib import (
    ADMIN_USER,
    TS_TYPE,
    bearer_options,
    flight_client,
    flight_sql_command,
    raw_flight,
)
from test_metrics import scrape, value

T0 = 1_800_000_000_000_000_000


def planned(server) -> float:
    return value(scrape(server), "lotline_statements_planned_total")


def rows(n: int, first: int = 0) -> pa.Table:
    return pa.table({
        "tag": ["plan.tag"] * n,
        "ts": pa.array([T0 + (first + i) * 1_000_000_000 for i in range(n)], TS_TYPE),
        "value": [float(first + i) for i in range(n)],
    })


def test_a_query_is_planned_once(server):
    """ADBC's Python driver prepares every statement (CreatePreparedStatement,
    then GetFlightInfo and DoGet of the handle): one plan for all three, and
    none for the same text again while its plan is kept; each run still
    reads the rows there are when it runs."""
    client = server.client
    client.ingest(rows(10))
    before = planned(server)
    for n in range(5):
        assert client.scalar(f"SELECT count(*) FROM samples WHERE tag = 'plan.tag' AND value >= {n}") == 10 - n
    assert planned(server) - before == 5
    client.ingest(rows(4, first=10))
    assert client.scalar("SELECT count(*) FROM samples WHERE tag = 'plan.tag' AND value >= 0") == 14
    with client.conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM samples WHERE tag = ? AND value >= ?", ("plan.tag", 12))
        assert cursor.fetchone()[0] == 2
        cursor.execute("SELECT count(*) FROM samples WHERE tag = ? AND value >= ?", ("plan.tag", 3))
        assert cursor.fetchone()[0] == 11
    assert planned(server) - before == 6, "the bound statement was planned once for both runs"


def test_a_kept_plan_takes_the_time_of_its_run(server):
    import time

    client = server.client
    sql = "SELECT CAST(now() AS BIGINT)"
    first = client.scalar(sql)
    time.sleep(1.1)
    before = planned(server)
    second = client.scalar(sql)
    assert planned(server) == before, "the same text ran its kept plan"
    assert second - first >= 1_000_000_000, (first, second)


def test_the_kept_plan_reads_what_is_there_when_it_runs(server):
    server.client.ingest(rows(3))
    with raw_flight(server) as (flight, options):
        descriptor = pa.flight.FlightDescriptor.for_command(
            flight_sql_command("SELECT value FROM samples WHERE tag = 'plan.tag' ORDER BY ts"))
        info = flight.get_flight_info(descriptor, options)
        server.client.ingest(rows(2, first=3))
        before = planned(server)
        table = flight.do_get(info.endpoints[0].ticket, options).read_all()
        assert table.column(0).to_pylist() == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert planned(server) == before, "the DoGet ran the kept plan"
        # The ticket's plan was taken: a second DoGet plans its text again.
        again = flight.do_get(info.endpoints[0].ticket, options).read_all()
        assert again.num_rows == 5
        assert planned(server) == before + 1

    # Another user's DoGet of that ticket plans it for that user.
    out = server.cli("user", "add", "rita", "--role", "reader", "--password-stdin", input="reader-Pass-1\n")
    assert out.returncode == 0, out.stderr
    with raw_flight(server) as (flight, options):
        info = flight.get_flight_info(pa.flight.FlightDescriptor.for_command(
            flight_sql_command("SELECT count(*) FROM samples")), options)
        other = flight_client(server.port)
        try:
            theirs = bearer_options(other, "reader-Pass-1", user="rita")
            before = planned(server)
            assert other.do_get(info.endpoints[0].ticket, theirs).read_all().column(0)[0].as_py() == 5
            assert planned(server) == before + 1
        finally:
            other.close()
    assert ADMIN_USER != "rita"
