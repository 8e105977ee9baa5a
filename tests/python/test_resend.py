"""One row per (tag, ts) in `samples` (issue 14): a writer that lost an
acknowledgement sends again, with no request id (the InfluxDB client's
retries, Telegraf, a store-and-forward buffer), and nothing is counted
twice. An exact resend is not written again, whether the first write is in
the buffer, in a segment or came back from the WAL after a SIGKILL; a
changed reading supersedes the first in `samples` (newest write wins) and
both stay: the first in `samples_raw`, the later one in
`sample_corrections` with who and why. Concurrent resends of one request
store each reading once.
"""

from __future__ import annotations

import threading

import pytest

from lotline_testlib import NS_PER_S, batch_for_tag, http_request, ns, samples_table

T0 = ns(2026, 5, 6, 7)
SUPERSEDED_REASON = "a later write of the same tag and ts with another reading (the newest write wins)"


def line_post(server, body: bytes, headers: dict | None = None):
    reply = http_request(
        f"{server.http_url}/api/v2/write?bucket=plant&precision=ns", "POST", body,
        {"Authorization": f"Token admin:{server.password}", **(headers or {})},
    )
    assert reply.status == 204, reply
    return reply


def readings(server, tag: str, table: str = "samples") -> list[tuple[int, float]]:
    result = server.client.query(
        f"SELECT CAST(ts AS BIGINT) AS ts, value FROM {table} WHERE tag = '{tag}' ORDER BY ts, value"
    )
    return list(zip(result.column("ts").to_pylist(), result.column("value").to_pylist()))


def key_totals(server) -> dict[str, int]:
    text = server.http("/metrics").body.decode()
    totals = {}
    for line in text.splitlines():
        if line.startswith("lotline_sample_keys{"):
            what = line.split('what="')[1].split('"')[0]
            totals[what] = int(float(line.rsplit(" ", 1)[1]))
    return totals


def test_exact_resends_are_not_written_again(server_factory):
    server = server_factory()
    line_tag = "site1.area3.line10.unit10.TT00010.PV"
    body = "\n".join(f"{line_tag} value={i}.5 {T0 + i * NS_PER_S}" for i in range(30)).encode()
    adbc_tag = "site1.area3.line10.unit11.PT00011.PV"
    batch = batch_for_tag(adbc_tag, 40, T0)
    expected_line = [(T0 + i * NS_PER_S, i + 0.5) for i in range(30)]
    expected_adbc = [(T0 + i * NS_PER_S, float(i)) for i in range(40)]

    def send_both(times: int):
        for _ in range(times):
            line_post(server, body)
            assert server.client.ingest(batch) == 40, "a resend is answered as the first write"

    def check(what: str):
        assert readings(server, line_tag) == expected_line, what
        assert readings(server, adbc_tag) == expected_adbc, what
        assert server.client.scalar(f"SELECT avg(value) FROM samples WHERE tag = '{adbc_tag}'") == 19.5, what

    send_both(3)
    check("three sends while the first is in the buffer")
    assert key_totals(server)["resent_rows"] == 2 * 30 + 2 * 40
    # Only the first writes are in the audit trail: the resends wrote nothing.
    assert server.client.scalar(
        "SELECT sum(row_count) FROM audit_log WHERE action = 'write' AND table_name = 'samples'"
    ) == 70

    server.flush()
    send_both(2)
    check("resent once the first write is in a segment")

    server.kill()
    server.start()
    send_both(1)
    check("resent after a SIGKILL (the first write came back from the WAL)")
    server.flush()
    server.restart()
    send_both(1)
    check("resent after a flush and a restart")

    # A resend with new readings after it and a backfill before it: only
    # the new readings are written.
    later = batch_for_tag(adbc_tag, 10, T0 + 40 * NS_PER_S, value_base=40)
    earlier = batch_for_tag(adbc_tag, 5, T0 - 5 * NS_PER_S, value_base=-5)
    import pyarrow as pa

    mixed = pa.concat_tables([later, batch, earlier])
    assert server.client.ingest(mixed) == 55
    assert readings(server, adbc_tag) == [(T0 + i * NS_PER_S, float(i)) for i in range(-5, 50)]
    totals = key_totals(server)
    assert totals["late_rows"] >= 5 and totals["superseding_rows"] == 0, totals


def test_a_changed_reading_supersedes_and_both_are_kept(server_factory):
    server = server_factory()
    tag = "site1.area3.line10.unit12.FT00012.PV"
    server.client.ingest(batch_for_tag(tag, 10, T0))
    ts5 = T0 + 5 * NS_PER_S
    changed = samples_table([tag], [ts5], [99.5], quality=[0])
    assert server.client.ingest(changed) == 1

    def check(what: str):
        assert server.client.count(f"tag = '{tag}'") == 10, what
        assert dict(readings(server, tag))[ts5] == 99.5, f"the newest write wins: {what}"
        assert server.client.scalar(f"SELECT avg(value) FROM samples WHERE tag = '{tag}'") == (45 - 5 + 99.5) / 10
        assert dict(readings(server, tag, "samples_raw"))[ts5] == 5.0, f"the first reading stays: {what}"
        kept = server.client.query(
            f"SELECT value, corrected_by, reason FROM sample_corrections WHERE tag = '{tag}'"
        ).to_pylist()
        assert kept == [{"value": 99.5, "corrected_by": "admin", "reason": SUPERSEDED_REASON}], what

    check("in the buffer")
    # Resending either reading changes nothing: both were written.
    server.client.ingest(changed)
    server.client.ingest(batch_for_tag(tag, 10, T0))
    check("after resends of both readings")
    server.flush()
    server.kill()
    server.start()
    server.client.ingest(changed)
    check("after a flush and a SIGKILL")

    # A change with a reason keeps the writer's reason; line protocol too.
    line_post(server, f"{tag} value=7.25 {T0 + 7 * NS_PER_S}".encode(), {"x-lotline-reason": "gateway re-read"})
    reasons = server.client.query(
        f"SELECT reason FROM sample_corrections WHERE tag = '{tag}' AND value = 7.25"
    ).column("reason").to_pylist()
    assert reasons == ["gateway re-read"]
    assert dict(readings(server, tag))[T0 + 7 * NS_PER_S] == 7.25
    assert key_totals(server)["superseding_rows"] == 1  # since this start


def test_one_request_holds_one_reading_per_key(server_factory):
    server = server_factory()
    tag = "site1.area3.line10.unit13.LT00013.PV"
    twice = samples_table([tag] * 4, [T0, T0 + NS_PER_S, T0, T0 + 2 * NS_PER_S], [1.0, 2.0, 1.0, 3.0])
    assert server.client.ingest(twice) == 4
    assert readings(server, tag) == [(T0, 1.0), (T0 + NS_PER_S, 2.0), (T0 + 2 * NS_PER_S, 3.0)]

    # Two readings of one key in one request (a Sparkplug birth and the
    # first data in one millisecond): the later one wins, nothing is refused.
    conflicting = samples_table([tag] * 3, [T0 + 10 * NS_PER_S, T0 + 11 * NS_PER_S, T0 + 10 * NS_PER_S], [1.0, 2.0, 4.0])
    assert server.client.ingest(conflicting) == 3
    assert readings(server, tag)[3:] == [(T0 + 10 * NS_PER_S, 4.0), (T0 + 11 * NS_PER_S, 2.0)]
    assert server.running, "the server keeps serving"

    # A repeat before another tag's first row: that tag's times are still
    # admitted (so its resend is known as one).
    other = "site1.area3.line10.unit13.LT00014.PV"
    mixed = samples_table([tag, tag, other], [T0 + 20 * NS_PER_S] * 3, [5.0, 5.0, 6.0])
    assert server.client.ingest(mixed) == 3
    resent_before = key_totals(server)["resent_rows"]
    server.client.ingest(samples_table([other], [T0 + 20 * NS_PER_S], [6.0]))
    assert readings(server, other) == [(T0 + 20 * NS_PER_S, 6.0)]
    assert key_totals(server)["resent_rows"] == resent_before + 1


def test_concurrent_resends_store_each_reading_once(server_factory):
    server = server_factory("--flush-rows", "500")
    tags = [f"site1.area3.line10.unit{u:02d}.TT000{u:02d}.PV" for u in range(4)]
    import pyarrow as pa

    rounds = 6
    requests = [
        pa.concat_tables([batch_for_tag(tag, 300, T0 + r * 200 * NS_PER_S, value_base=r * 200) for tag in tags])
        for r in range(rounds)
    ]  # each round overlaps the previous one by 100 s
    errors = []

    def writer(k: int):
        client = server.connect()
        try:
            for r in range(rounds):
                for _ in range(2):
                    client.ingest(requests[(r + k) % rounds])
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)
        finally:
            client.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    server.flush()
    for t in threads:
        t.join()
    assert not errors, errors
    span = (rounds - 1) * 200 + 300
    for tag in tags:
        got = readings(server, tag)
        assert got == [(T0 + i * NS_PER_S, float(i)) for i in range(span)], f"{tag}: {len(got)} rows, {span} keys"
    assert server.client.count("", "sample_corrections") == 0
