"""`tags.unit` holds UN/ECE Recommendation 20 common codes, the vocabulary
OPC UA's EUInformation and B2MML's UnitOfMeasure use: a writer may send
the code or a symbol lotline knows for one (stored as the code); anything
else refuses the whole request naming row, column and value; changing a
tag's unit, like any change of a versioned record, needs a reason.
"""

from __future__ import annotations

import adbc_driver_manager
import pyarrow as pa
import pytest

from lotline_testlib import error_text, ingest_error

TAGS = ["site1.area1.line1.oven.TT0001.PV", "site1.area1.line1.oven.PT0002.PV", "site1.area1.line1.filler.SC0003.PV"]


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory()


def units(server) -> dict[str, str | None]:
    rows = server.query("SELECT tag, unit FROM tags WHERE tag LIKE 'site1.area1.%'").to_pylist()
    return {r["tag"]: r["unit"] for r in rows}


def test_codes_and_symbols_are_stored_as_codes_and_anything_else_is_refused_whole(server):
    c = server.client
    c.ingest(pa.table({"tag": TAGS, "unit": ["degC", "BAR", "1/min"]}), table="tags")
    assert units(server) == dict(zip(TAGS, ["CEL", "BAR", "C94"]))

    other = [t.replace("site1.area1", "site1.area1.b") for t in TAGS]
    for bad, why in [("bottles/min", "neither a UN/ECE Recommendation 20 common code"),
                     ("cel", "neither a UN/ECE Recommendation 20 common code"),
                     ("5K", "deleted (count per minute)")]:
        err = ingest_error(c, pa.table({"tag": other, "unit": ["Cel", bad, "kg"]}), table="tags")
        assert f"row 1, column 'unit': value {bad} " in err and why in err, err
        assert set(units(server)) == set(TAGS), "nothing of a refused request is written"

    # SQL takes the same path.
    c.execute(f"INSERT INTO tags (tag, unit) VALUES ('{other[0]}', 'mbar')")
    assert units(server)[other[0]] == "MBR"
    with pytest.raises(adbc_driver_manager.Error) as info:
        c.execute(f"INSERT INTO tags (tag, unit) VALUES ('{other[1]}', 'psig')")
    assert "value psig is neither" in error_text(info.value), error_text(info.value)


def test_changing_a_unit_needs_a_reason_and_is_kept_in_history(server):
    c = server.client
    tag = "site1.area1.line1.mixer.TT0009.PV"
    c.ingest(pa.table({"tag": [tag], "unit": ["degC"], "description": ["jacket temperature"]}), table="tags")
    with pytest.raises(adbc_driver_manager.Error) as info:
        c.execute(f"UPDATE tags SET unit = 'degF' WHERE tag = '{tag}'")
    assert "needs a reason" in error_text(info.value), error_text(info.value)
    assert units(server)[tag] == "CEL"

    c.execute(f"SET lotline.reason = 'transmitter replaced, ranged in Fahrenheit'; "
              f"UPDATE tags SET unit = 'degF' WHERE tag = '{tag}'")
    history = server.query(
        f"SELECT unit, op, reason FROM tags_history WHERE tag = '{tag}' ORDER BY recorded_at").to_pylist()
    assert history == [
        {"unit": "CEL", "op": "insert", "reason": None},
        {"unit": "FAH", "op": "update", "reason": "transmitter replaced, ranged in Fahrenheit"},
    ], history
