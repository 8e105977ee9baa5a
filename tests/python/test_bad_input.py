"""Bad ingest requests are rejected whole, with an error that names the
problem, and the server keeps serving."""

from __future__ import annotations

import math
import re

import pyarrow as pa
import pytest

from lotline_testlib import NS_PER_S, TS_TYPE, ingest_error, ns, samples_table

T0 = ns(2024, 6, 3, 8)
ROWS = 5_000
BAD_ROW = 1_234  # 0-based; a message may count from 0 or 1
GOOD_ROWS = 1_000
ROW_RE = re.compile(rf"\b({BAD_ROW}|{BAD_ROW + 1})\b")


def good_columns(rows=ROWS, tag="bad.case"):
    return {
        "tag": pa.array([tag] * rows),
        "ts": pa.array([T0 + i * NS_PER_S for i in range(rows)], TS_TYPE),
        "value": pa.array([float(i) for i in range(rows)]),
        "quality": pa.array([0] * rows, pa.uint32()),
    }


def with_column(name, array):
    cols = good_columns()
    cols[name] = array
    return pa.table(cols)


def without_column(name):
    cols = good_columns()
    del cols[name]
    return pa.table(cols)


def with_bad_row(name, bad_value, quality=0):
    cols = good_columns()
    values = cols[name].to_pylist()
    values[BAD_ROW] = bad_value
    cols[name] = pa.array(values, cols[name].type)
    q = [0] * ROWS
    q[BAD_ROW] = quality
    cols["quality"] = pa.array(q, pa.uint32())
    return pa.table(cols)


# id -> (table name, data, regexes that must all match the error text, row must be named)
CASES = {
    "value-wrong-type": ("samples", lambda: with_column("value", pa.array(["12.5"] * ROWS)), [r"\bvalue\b"], False),
    "quality-wrong-type": ("samples", lambda: with_column("quality", pa.array(["good"] * ROWS)), [r"\bquality\b"], False),
    "ts-wrong-type": (
        "samples",
        lambda: with_column("ts", pa.array(["2024-06-03T08:00:00Z"] * ROWS)),
        [r"\bts\b"],
        False,
    ),
    "tag-missing": ("samples", lambda: without_column("tag"), [r"\btag\b"], False),
    "ts-missing": ("samples", lambda: without_column("ts"), [r"\bts\b"], False),
    "tag-null": ("samples", lambda: with_bad_row("tag", None), [r"\btag\b"], True),
    "ts-before-1970": ("samples", lambda: with_bad_row("ts", -1 * NS_PER_S), [r"\bts\b"], True),
    "ts-long-before-1970": ("samples", lambda: with_bad_row("ts", ns(1969, 7, 20, 20, 17)), [r"\bts\b"], True),
    "nan-good-quality": ("samples", lambda: with_bad_row("value", math.nan), [r"\bvalue\b", r"(?i)\bnan\b"], True),
    "inf-good-quality": ("samples", lambda: with_bad_row("value", math.inf), [r"\bvalue\b", r"(?i)\binf"], True),
    "neg-inf-good-quality": ("samples", lambda: with_bad_row("value", -math.inf), [r"\bvalue\b", r"(?i)\binf"], True),
    "tag-too-long": ("samples", lambda: with_bad_row("tag", "t" * 1025), [r"\btag\b", r"1025 bytes", r"limited to 1024"], True),
    "lot-too-long": ("samples", lambda: with_column("lot", pa.array(["L" * 2000] * ROWS)), [r"\blot\b", r"limited to 1024"], False),
    "unknown-table": ("no_such_table", lambda: pa.table(good_columns()), [r"no_such_table"], False),
}


@pytest.fixture(scope="module")
def bad_input_server(module_server_factory):
    server = module_server_factory()
    server.client.ingest(samples_table(["bad.baseline"] * GOOD_ROWS, [T0 + i * NS_PER_S for i in range(GOOD_ROWS)], [1.0] * GOOD_ROWS))
    return server


@pytest.mark.parametrize("case", list(CASES))
def test_bad_batch_rejected_whole(bad_input_server, case):
    server = bad_input_server
    table_name, make, patterns, names_row = CASES[case]
    before = server.client.count()
    message = ingest_error(server.client, make(), table=table_name)
    for pattern in patterns:
        assert re.search(pattern, message), f"error for {case} should match {pattern!r}:\n{message}"
    if names_row:
        assert ROW_RE.search(message), f"error for {case} should name row {BAD_ROW}:\n{message}"
    # nothing of the batch was committed, and the server still answers
    assert server.client.count() == before
    assert server.client.count("tag = 'bad.case'") == 0
    # a fresh connection works too (the rejected request broke nothing)
    fresh = server.connect()
    assert fresh.count() == before
    fresh.close()


def test_good_batch_after_bad_ones(bad_input_server):
    server = bad_input_server
    before = server.client.count()
    server.client.ingest(samples_table(["bad.recovered"] * 10, [T0 + i * NS_PER_S for i in range(10)], [2.0] * 10))
    assert server.client.count() == before + 10
    server.flush()
    assert server.client.count() == before + 10


def test_nan_with_bad_quality_is_accepted(server):
    """NaN is not rejected when the sample is marked Bad (a sensor fault)."""
    table = samples_table(
        ["bad.sensor"] * 3,
        [T0, T0 + NS_PER_S, T0 + 2 * NS_PER_S],
        [1.0, math.nan, 3.0],
        quality=[0, 0x80000000, 0],
    )
    server.client.ingest(table)
    result = server.client.query("SELECT value, quality FROM samples WHERE tag = 'bad.sensor' ORDER BY ts")
    assert result.num_rows == 3
    assert result.column("quality").to_pylist() == [0, 0x80000000, 0]


def oversized(total_bytes: int, batches: int) -> pa.Table:
    tag = "oversize.line9.a-rather-long-tag-name-to-fill-bytes"
    per_row = len(tag) + 4 + 8 + 8 + 4
    rows = total_bytes // per_row
    table = samples_table(
        [tag] * rows,
        [T0 + i * NS_PER_S for i in range(rows)],
        [float(i % 1000) for i in range(rows)],
        quality=[0] * rows,
    )
    assert table.nbytes >= total_bytes * 0.95
    return pa.Table.from_batches(table.to_batches(max_chunksize=-(-rows // batches)))


def test_request_larger_than_limit_rejected(server_factory):
    server = server_factory("--max-request-bytes", "1000000")
    client = server.client
    small = samples_table(["oversize.ok"] * 100, [T0 + i * NS_PER_S for i in range(100)], [1.0] * 100)
    client.ingest(small)
    assert client.count() == 100

    size_words = re.compile(r"(?i)too large|exceed|limit|maximum|max.request.bytes|request size|larger than")
    # one 5 MB batch, and 5 MB as ten batches of 0.5 MB each in one request
    for batches in (1, 10):
        message = ingest_error(client, oversized(5_000_000, batches))
        assert size_words.search(message), f"oversized request ({batches} batches) error should say why:\n{message}"
        assert server.running, "server died on an oversized request"
        assert client.count() == 100, f"part of an oversized request ({batches} batches) was committed"

    # still serving, on the same and on a fresh connection
    server.client.ingest(samples_table(["oversize.ok2"] * 100, [T0 + i * NS_PER_S for i in range(100)], [1.0] * 100))
    fresh = server.connect()
    assert fresh.count() == 200
    fresh.close()
