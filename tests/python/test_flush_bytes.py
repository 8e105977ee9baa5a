"""`--flush-bytes`: a buffer flushes once its rows hold that much memory,
whatever their count, and `lotline_buffer_bytes` counts the memory a Flight
request keeps alive once (its columns share one message body)."""

from __future__ import annotations

import time

from lotline_testlib import MANUAL_FLUSH, batch_for_tag, ns
from test_metrics import scrape, value

T0 = ns(2026, 5, 1)
ROWS = 50_000
FLUSH_BYTES = 4_000_000
WAIT_S = 60.0


def test_a_buffer_flushes_when_its_bytes_cross_flush_bytes(server_factory):
    # Rows and age never trigger here: only the byte threshold can.
    server = server_factory(*MANUAL_FLUSH, "--flush-bytes", str(FLUSH_BYTES))
    server.client.ingest(batch_for_tag("bytes.a", ROWS, T0))
    first = scrape(server)
    rows = value(first, "lotline_buffer_rows", table="samples")
    held = value(first, "lotline_buffer_bytes", table="samples")
    assert rows == ROWS, "50 000 narrow rows are under the threshold and stay buffered"
    assert value(first, "lotline_segments", table="samples") == 0
    # tag, ts, value and quality share one body (~33 bytes a row) plus the
    # four all-null columns (~4 bytes each); counting the body once per
    # column, as Arrow's own size does, gives ~150.
    assert 30 <= held / rows <= 80, held / rows

    server.client.ingest(batch_for_tag("bytes.b", ROWS, T0))
    deadline = time.monotonic() + WAIT_S
    while True:
        now = scrape(server)
        if value(now, "lotline_buffer_rows", table="samples") == 0:
            break
        assert time.monotonic() < deadline, f"no flush after crossing {FLUSH_BYTES} bytes: {now}"
        time.sleep(0.2)
    assert value(now, "lotline_segments", table="samples") >= 1
    assert value(now, "lotline_buffer_bytes", table="samples") == 0
    assert server.client.count() == 2 * ROWS

