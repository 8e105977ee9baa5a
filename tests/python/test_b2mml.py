"""B2MML V0701 in and out through the real binary (docs/INTEGRATION.md):
documents posted to /api/v1/b2mml and sent by `lotline load --format
b2mml` land in the versioned tables exactly as an independent reading of
the XML says; the same document twice changes nothing; an invalid document
or one naming an unknown record is refused whole with a ConfirmBOD naming
the element; aliases of two systems resolve to one record; the
ShowOperationsPerformance of a demo work order is valid against the
official schema and its materials and time-weighted averages equal SQL's.
Every ConfirmBOD and performance document is checked with PyPI xmlschema
against ../shared/b2mml/AllSchemas.xsd.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest

from lotline_testlib import ADMIN_USER, DEFAULT_PASSWORD, http_request

FIXTURES = Path(__file__).resolve().parent / "b2mml"
ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT.parent / "shared" / "b2mml" / "AllSchemas.xsd"
B = "{http://www.mesa.org/xml/B2MML}"
ADMIN = {"Authorization": "Basic " + base64.b64encode(f"{ADMIN_USER}:{DEFAULT_PASSWORD}".encode()).decode()}
READER, READER_PW = "rita", "reader-Pass-1"
VERSIONED = ["equipment", "materials", "lots", "work_orders", "work_order_segments", "work_order_materials",
             "work_order_parameters", "aliases", "systems", "drafts"]


@pytest.fixture(scope="module")
def schema():
    if not SCHEMAS.exists():
        pytest.skip(f"the official B2MML schemas are not beside the project ({SCHEMAS.relative_to(ROOT.parent)})")
    import xmlschema

    return xmlschema.XMLSchema(str(SCHEMAS))


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory()


def post(server, xml: bytes, headers: dict | None = None):
    all_headers = {"content-type": "application/xml", **ADMIN, **(headers or {})}
    return http_request(server.http_url + "/api/v1/b2mml", method="POST", body=xml, headers=all_headers)


def confirm(schema, reply) -> ET.Element:
    """The ConfirmBOD of a reply, checked against the official schema."""
    schema.validate(reply.body.decode())
    root = ET.fromstring(reply.body)
    assert root.tag == f"{B}ConfirmBOD", reply.body[:200]
    return root


def action_code(bod: ET.Element) -> str:
    return bod.find(f"{B}DataArea/{B}Confirm/{B}ResponseCriteria/{B}ResponseExpression").get("actionCode")


def description(bod: ET.Element) -> str:
    return bod.findtext(f"{B}DataArea/{B}BOD/{B}Description") or ""


def note(bod: ET.Element) -> str:
    return bod.findtext(f"{B}DataArea/{B}BOD/{B}Note") or ""


def ns_of(text: str | None):
    if text is None:
        return None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()) * 1_000_000_000


def table_state(client) -> dict:
    """Every versioned table's full history, to tell that nothing changed."""
    return {t: client.query(f"SELECT * FROM {t}_history").num_rows for t in VERSIONED} | {
        "audit": client.scalar("SELECT count(*) FROM audit_log")
    }


def load_master_data(server, schema):
    for name in ["equipment.xml", "material_definitions.xml", "material_lots.xml"]:
        reply = post(server, (FIXTURES / name).read_bytes())
        assert reply.status == 200, reply
        assert action_code(confirm(schema, reply)) == "Accepted"


def expected_parameters(path: Path) -> dict:
    """work_order_parameters rows as an independent reading gives them: a
    child parameter's id is its path under its parent."""
    rows = {}

    def walk(wo, sid, parameter, parent):
        pid = parameter.findtext(f"{B}ID") if parent is None else f"{parent}/{parameter.findtext(f'{B}ID')}"
        rows[(wo, sid, pid)] = {
            "value": parameter.findtext(f"{B}Value/{B}ValueString"),
            "data_type": parameter.findtext(f"{B}Value/{B}DataType"),
            "uom": parameter.findtext(f"{B}Value/{B}UnitOfMeasure"),
            "description": parameter.findtext(f"{B}Description"),
        }
        for child in parameter.findall(f"{B}ParameterChild"):
            walk(wo, sid, child, pid)

    for request in ET.parse(path).getroot().iter(f"{B}OperationsRequest"):
        for seg in request.findall(f"{B}SegmentRequirement"):
            for parameter in seg.findall(f"{B}SegmentParameter"):
                walk(request.findtext(f"{B}ID"), seg.findtext(f"{B}ID"), parameter, None)
    return rows


def expected_schedule(path: Path):
    """work_orders, work_order_segments and work_order_materials rows as an
    independent reading of the document gives them."""
    root = ET.parse(path).getroot()
    orders, segments, materials = {}, {}, {}
    for request in root.iter(f"{B}OperationsRequest"):
        wo = request.findtext(f"{B}ID")
        produced = (None, None, None)
        for seg in request.findall(f"{B}SegmentRequirement"):
            sid = seg.findtext(f"{B}ID")
            segments[(wo, sid)] = {
                "process_segment": seg.findtext(f"{B}ProcessSegmentID"),
                "equipment": seg.findtext(f"{B}EquipmentRequirement/{B}EquipmentID"),
                "earliest_start": ns_of(seg.findtext(f"{B}EarliestStartTime")),
                "latest_end": ns_of(seg.findtext(f"{B}LatestEndTime")),
            }
            for req in seg.findall(f"{B}MaterialRequirement"):
                quantity = req.findtext(f"{B}Quantity/{B}QuantityString")
                row = {
                    "material_use": req.findtext(f"{B}MaterialUse"),
                    "material": req.findtext(f"{B}MaterialDefinitionID"),
                    "lot": req.findtext(f"{B}MaterialLotID"),
                    "quantity": None if quantity is None else float(quantity),
                    "uom": req.findtext(f"{B}Quantity/{B}UnitOfMeasure"),
                }
                materials[(wo, sid, req.findtext(f"{B}ID"))] = row
                if row["material_use"] == "Produced":
                    produced = (row["material"], row["quantity"], row["uom"])
        orders[wo] = {
            "material": produced[0],
            "quantity": produced[1],
            "uom": produced[2],
            "status": request.findtext(f"{B}RequestState"),
            "planned_start": ns_of(request.findtext(f"{B}StartTime")),
            "planned_end": ns_of(request.findtext(f"{B}EndTime")),
        }
    return orders, segments, materials


def rows_by_key(client, sql: str, key: list[str]) -> dict:
    table = client.query(sql).to_pylist()
    out = {}
    for row in table:
        for column, value in row.items():
            if isinstance(value, datetime):
                row[column] = int(value.timestamp()) * 1_000_000_000
        k = tuple(row.pop(c) for c in key)
        out[k[0] if len(k) == 1 else k] = row
    return out


def test_schedule_imports_exactly_and_twice_changes_nothing(server, schema):
    load_master_data(server, schema)
    client = server.client
    document = (FIXTURES / "schedule.xml").read_bytes()
    reply = post(server, document)
    assert reply.status == 200, reply
    bod = confirm(schema, reply)
    assert action_code(bod) == "Accepted"
    orders, segments, materials = expected_schedule(FIXTURES / "schedule.xml")
    columns = "id, material, quantity, uom, status, planned_start, planned_end"
    assert rows_by_key(client, f"SELECT {columns} FROM work_orders", ["id"]) == orders
    got_segments = rows_by_key(
        client,
        "SELECT work_order, segment, process_segment, equipment, earliest_start, latest_end FROM work_order_segments",
        ["work_order", "segment"],
    )
    assert got_segments == segments
    got_materials = rows_by_key(
        client,
        "SELECT work_order, segment, requirement, material_use, material, lot, quantity, uom FROM work_order_materials",
        ["work_order", "segment", "requirement"],
    )
    assert got_materials == materials
    parameters = expected_parameters(FIXTURES / "schedule.xml")
    assert len(parameters) == 3 and ("WO-3001", "20", "BAKE_TEMPERATURE/ZONE1") in parameters, parameters
    got_parameters = rows_by_key(
        client,
        "SELECT work_order, segment, parameter, value, data_type, uom, description FROM work_order_parameters",
        ["work_order", "segment", "parameter"],
    )
    assert got_parameters == parameters
    # Audited as one write per table, with the document's identity as reason.
    reasons = client.query(
        "SELECT DISTINCT reason FROM audit_log WHERE table_name = 'work_order_materials'"
    ).column(0).to_pylist()
    assert reasons == ["B2MML ProcessOperationsSchedule 7c0e3a52-2f4b-4d7e-9a61-0b5d2c8e4f10 from SAP-PRD (OS-2026-W49)"]

    before = table_state(client)
    again = post(server, document)
    assert again.status == 200, again
    text = description(confirm(schema, again))
    assert "nothing changed" in text, text
    assert table_state(client) == before

    # What the MES recorded (actual times) survives a new plan from the ERP.
    client.set_reason("started")
    client.execute("UPDATE work_orders SET actual_start = TIMESTAMP '2026-12-01T06:05:00Z' WHERE id = 'WO-3001'")
    moved = document.replace(b"<RequestState>Released</RequestState>", b"<RequestState>Running</RequestState>", 1)
    assert post(server, moved).status == 200
    row = client.query("SELECT status, actual_start FROM work_orders WHERE id = 'WO-3001'").to_pylist()[0]
    assert row["status"] == "Running" and row["actual_start"] is not None


@pytest.mark.parametrize(
    "mutate, element, words",
    [
        (None, "OperationsRequest[2]", "<ID> is required"),
        (lambda d: d.replace(b"<ProcessSegmentID>BAKE</ProcessSegmentID>", b"<ProcessSegmentId>BAKE</ProcessSegmentId>", 1), "ProcessSegmentId", "not an element of <SegmentRequirement>"),
        (lambda d: d.replace(b"site1.area1.line1.oven", b"site9.unknown.oven", 1), "EquipmentID", "equipment 'site9.unknown.oven' is not known"),
        (lambda d: d.replace(b"<QuantityString>560.0", b"<QuantityString>lots", 1), "QuantityString", "'lots' is not a number"),
        (lambda d: d.replace(b"<MaterialUse>Consumed", b"<MaterialUse>Eaten", 1), "work_order_materials", "Eaten"),
        (lambda d: d.replace(b"</OperationsSchedule>", b"", 1), None, "not well-formed"),
        (lambda d: d.replace(b"<Description>oven setpoint", b"<Value><ValueString>1</ValueString></Value><Description>oven setpoint", 1),
         "Value[2]", "more than one <Value>"),
        (lambda d: d.replace(b"<ID>BAKE_TIME", b"<ID>BAKE/TIME", 1), "SegmentParameter[2]/ID", "holds '/'"),
    ],
)
def test_a_bad_document_is_refused_whole_naming_the_element(server, schema, mutate, element, words):
    load_master_data(server, schema)
    if mutate is None:
        document = (FIXTURES / "schedule_invalid.xml").read_bytes()
    else:
        document = mutate((FIXTURES / "schedule.xml").read_bytes().replace(b"WO-300", b"WO-900"))
    before = table_state(server.client)
    reply = post(server, document)
    assert reply.status == 400, reply
    bod = confirm(schema, reply)
    assert action_code(bod) == "Rejected"
    assert words in note(bod), note(bod)
    if element:
        assert element in note(bod), note(bod)
    assert table_state(server.client) == before
    assert server.client.scalar("SELECT count(*) FROM work_orders WHERE id LIKE 'WO-900%'") == 0


def test_aliases_of_two_systems_name_one_record(server, schema):
    load_master_data(server, schema)
    client = server.client
    client.execute(
        "INSERT INTO aliases VALUES "
        "('SAP-PRD', 'equipment', '10004711', 'site1.area1.line1.mixer'), "
        "('MES-1', 'equipment', 'MIX-01', 'site1.area1.line1.mixer'), "
        "('MES-1', 'material', 'M-FLOUR', 'FLOUR-T55')"
    )
    template = (FIXTURES / "schedule.xml").read_bytes()
    sap = template.replace(b"WO-300", b"WO-700").replace(b"site1.area1.line1.mixer", b"10004711")
    mes = (
        template.replace(b"WO-300", b"WO-800")
        .replace(b"<LogicalID>SAP-PRD", b"<LogicalID>MES-1")
        .replace(b"site1.area1.line1.mixer", b"MIX-01")
        .replace(b"<MaterialDefinitionID>FLOUR-T55", b"<MaterialDefinitionID>M-FLOUR")
    )
    for document in (sap, mes):
        reply = post(server, document)
        assert reply.status == 200, reply.body.decode()
    mixers = client.query(
        "SELECT DISTINCT equipment FROM work_order_segments WHERE process_segment = 'MIX' "
        "AND (work_order LIKE 'WO-700%' OR work_order LIKE 'WO-800%')"
    ).column(0).to_pylist()
    assert mixers == ["site1.area1.line1.mixer"]
    flour = client.query(
        "SELECT DISTINCT material FROM work_order_materials WHERE work_order = 'WO-8001' AND segment = '10' AND requirement = 'MR-1'"
    ).column(0).to_pylist()
    assert flour == ["FLOUR-T55"]
    # An alias of a record lotline does not have is refused as such.
    client.execute("INSERT INTO aliases VALUES ('SAP-PRD', 'equipment', '10009999', 'site9.gone')")
    gone = template.replace(b"WO-300", b"WO-760").replace(b"site1.area1.line1.mixer", b"10009999")
    reply = post(server, gone)
    assert reply.status == 400
    assert "is an alias of 'site9.gone'" in note(confirm(schema, reply))
    # An id of SAP's that only MES has an alias for is unknown to SAP.
    cross = template.replace(b"WO-300", b"WO-750").replace(b"site1.area1.line1.mixer", b"MIX-01")
    reply = post(server, cross)
    assert reply.status == 400
    assert "equipment 'MIX-01' is not known" in note(confirm(schema, reply))
    assert "system 'SAP-PRD'" in note(confirm(schema, reply))


def test_unknown_ids_of_a_system_set_to_draft_become_records_for_review(server, schema):
    """`systems.unknown_ids = 'draft'`: an id the system sends that names no
    record becomes one (key = the id), with an alias and a row of `drafts`
    naming where it came from; the same document again changes nothing;
    deleting the draft row (with a reason) is the review. A system without
    a row refuses, as before."""
    load_master_data(server, schema)
    client = server.client
    document = (
        (FIXTURES / "schedule.xml").read_bytes()
        .replace(b"<LogicalID>SAP-PRD", b"<LogicalID>ERP-NEW")
        .replace(b"WO-300", b"WO-900")
        .replace(b"site1.area1.line1.mixer", b"MX-4711")
        .replace(b"<MaterialDefinitionID>FLOUR-T55", b"<MaterialDefinitionID>MAT-0815")
    )
    before = table_state(client)
    reply = post(server, document)
    assert reply.status == 400
    assert "equipment 'MX-4711' is not known" in note(confirm(schema, reply))
    assert table_state(client) == before

    with pytest.raises(Exception, match="is not one of refuse, draft"):
        client.execute("INSERT INTO systems VALUES ('ERP-NEW', 'the new ERP', 'create')")
    client.execute("INSERT INTO systems (system, description, unknown_ids) VALUES ('ERP-NEW', 'the new ERP', 'draft')")
    reply = post(server, document)
    assert reply.status == 200, reply.body.decode()
    bod = confirm(schema, reply)
    summary = description(bod)
    assert action_code(bod) == "Accepted" and "drafts: 2" in summary, summary

    assert client.scalar("SELECT count(*) FROM equipment WHERE id = 'MX-4711'") == 1
    assert client.scalar("SELECT count(*) FROM materials WHERE id = 'MAT-0815'") == 1
    aliases = client.query(
        "SELECT kind, external_id, key FROM aliases WHERE system = 'ERP-NEW' ORDER BY kind").to_pylist()
    assert aliases == [
        {"kind": "equipment", "external_id": "MX-4711", "key": "MX-4711"},
        {"kind": "material", "external_id": "MAT-0815", "key": "MAT-0815"},
    ], aliases
    drafts = client.query("SELECT kind, key, system, external_id, source FROM drafts ORDER BY kind").to_pylist()
    assert [(d["kind"], d["key"], d["system"], d["external_id"]) for d in drafts] == [
        ("equipment", "MX-4711", "ERP-NEW", "MX-4711"),
        ("material", "MAT-0815", "ERP-NEW", "MAT-0815"),
    ], drafts
    assert drafts[0]["source"].startswith("B2MML ProcessOperationsSchedule 7c0e3a52-"), drafts
    assert "EquipmentID[1] (line 39)" in drafts[0]["source"], drafts
    assert "MaterialDefinitionID[1] (line 48)" in drafts[1]["source"], drafts
    mixers = client.query(
        "SELECT DISTINCT equipment FROM work_order_segments WHERE work_order = 'WO-9001' AND process_segment = 'MIX'"
    ).column(0).to_pylist()
    assert mixers == ["MX-4711"]

    settled = table_state(client)
    assert "nothing changed" in description(confirm(schema, post(server, document)))
    assert table_state(client) == settled, "the same document twice drafts nothing new"

    client.execute("SET lotline.reason = 'checked against the ERP: a new mixer'; "
                   "DELETE FROM drafts WHERE kind = 'equipment' AND key = 'MX-4711'")
    assert client.query("SELECT key FROM drafts").column(0).to_pylist() == ["MAT-0815"]
    reviewed = client.query(
        "SELECT op, reason FROM drafts_history WHERE key = 'MX-4711' ORDER BY recorded_at").to_pylist()
    assert reviewed[-1] == {"op": "delete", "reason": "checked against the ERP: a new mixer"}, reviewed


def test_a_document_past_the_limits_is_refused(server, schema):
    huge = b"<a>" + b"x" * (17 << 20) + b"</a>"
    reply = post(server, huge)
    assert reply.status == 413, reply
    assert reply.json()["error"]
    many = b'<ProcessEquipment xmlns="http://www.mesa.org/xml/B2MML">' + b"<a/>" * 500_001 + b"</ProcessEquipment>"
    reply = post(server, many)
    assert reply.status == 400, reply
    assert "more than 500000 elements" in note(confirm(schema, reply))
    assert server.client.scalar("SELECT 1") == 1


def test_roles_and_the_command_line(server, schema, tmp_path):
    load_master_data(server, schema)
    out = server.cli("user", "add", READER, "--role", "reader", "--password-stdin", input=READER_PW + "\n")
    assert out.returncode == 0, out.stderr
    reader = {"Authorization": "Basic " + base64.b64encode(f"{READER}:{READER_PW}".encode()).decode()}
    document = (FIXTURES / "schedule.xml").read_bytes()
    refused = http_request(server.http_url + "/api/v1/b2mml", method="POST", body=document, headers=reader)
    assert refused.status == 403, refused
    assert "write context events" in refused.json()["error"]
    # The command line, from a fresh directory with a relative path.
    (tmp_path / "lots.xml").write_bytes((FIXTURES / "material_information.xml").read_bytes())
    import subprocess

    out = subprocess.run(
        [str(server.binary), "load", "--format", "b2mml", "lots.xml", "--endpoint", server.uri,
         "--user", ADMIN_USER, "--password", DEFAULT_PASSWORD],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    schema.validate(out.stdout)
    assert 'actionCode="Accepted"' in out.stdout
    bad = server.cli("load", "--format", "b2mml", str(FIXTURES / "schedule_invalid.xml"))
    assert bad.returncode != 0
    assert "OperationsRequest[2]" in bad.stderr, bad.stderr


@pytest.fixture(scope="module")
def demo(module_server_factory):
    return module_server_factory("--demo", name="demo")


def test_performance_of_a_demo_work_order_is_valid_and_equals_sql(demo, schema, tmp_path):
    client = demo.client
    work_order = client.query(
        "SELECT work_order FROM production_runs WHERE work_order IS NOT NULL AND end_ts IS NOT NULL "
        "AND lot IN (SELECT output_lot FROM genealogy) ORDER BY start_ts LIMIT 1"
    ).column(0)[0].as_py()
    reply = http_request(
        demo.http_url + f"/api/v1/b2mml/operations-performance?work_order={work_order}", headers=ADMIN
    )
    assert reply.status == 200, reply
    schema.validate(reply.body.decode())
    root = ET.fromstring(reply.body)
    responses = root.findall(f"{B}DataArea/{B}OperationsPerformance/{B}OperationsResponse")
    assert [r.findtext(f"{B}OperationsRequestID") for r in responses] == [work_order]
    runs = client.query(
        f"SELECT equipment, lot, start_ts, end_ts FROM production_runs WHERE work_order = '{work_order}' "
        "ORDER BY start_ts, equipment"
    ).to_pylist()
    segments = responses[0].findall(f"{B}SegmentResponse")
    assert len(segments) == len(runs) > 0
    checked_twa = 0
    for run, segment in zip(runs, segments):
        assert segment.findtext(f"{B}EquipmentActual/{B}EquipmentID") == run["equipment"]
        lots = {
            use: sorted(
                m.findtext(f"{B}MaterialLotID")
                for m in segment.findall(f"{B}MaterialActual")
                if m.findtext(f"{B}MaterialUse") == use
            )
            for use in ("Consumed", "Produced")
        }
        consumed = client.query(
            f"SELECT input_lot FROM genealogy WHERE output_lot = '{run['lot']}' "
            f"AND (equipment IS NULL OR equipment = '{run['equipment']}')"
        ).column(0).to_pylist()
        assert lots["Consumed"] == sorted(consumed)
        assert lots["Produced"] == ([run["lot"]] if run["lot"] else [])
        start, end = run["start_ts"].isoformat(), run["end_ts"].isoformat()
        tags = client.query(
            f"SELECT tag FROM tags WHERE equipment = '{run['equipment']}' "
            "AND (value_type IS NULL OR value_type IN ('float', 'int'))"
        ).column(0).to_pylist()
        listed = ", ".join(f"'{t}'" for t in tags)
        twa = {} if not tags else {
            r["tag"]: r["value"]
            for r in client.query(
                f"SELECT tag, value FROM history_aggregate([{listed}], 'TimeAverage', '{start}', '{end}', '1000d')"
            ).to_pylist()
            if r["value"] is not None
        }
        for data in segment.findall(f"{B}SegmentData"):
            for child in data.findall(f"{B}SegmentDataChild"):
                if child.findtext(f"{B}ID") == "TimeWeightedAverage":
                    value = float(child.findtext(f"{B}Value/{B}ValueString"))
                    assert value == pytest.approx(twa[data.findtext(f"{B}ID")], rel=1e-12)
                    checked_twa += 1
        assert {d.findtext(f"{B}ID") for d in segment.findall(f"{B}SegmentData")} >= set(twa)
    assert checked_twa > 0
    # The same document from the command line, into a file.
    out = demo.cli("export", "--format", "b2mml", "--work-order", work_order, "--output", str(tmp_path / "p.xml"))
    assert out.returncode == 0, out.stderr
    schema.validate(str(tmp_path / "p.xml"))
    unknown = http_request(demo.http_url + "/api/v1/b2mml/operations-performance?work_order=NOPE", headers=ADMIN)
    assert unknown.status == 404 and "NOPE" in unknown.json()["error"]


def test_an_import_never_overwrites_a_concurrent_change(server, schema):
    """Imports (which keep the columns a document leaves out) and UPDATEs of
    such a column race: no version an import writes undoes an UPDATE."""
    import threading

    load_master_data(server, schema)
    template = (FIXTURES / "schedule.xml").read_bytes().replace(b"WO-300", b"WO-400")
    assert post(server, template).status == 200
    stop = threading.Event()
    failures = []

    def imports():
        n = 0
        while not stop.is_set():
            state = b"Released" if n % 2 else b"Running"
            document = template.replace(b"<RequestState>Released</RequestState>", b"<RequestState>" + state + b"</RequestState>", 1)
            reply = post(server, document)
            if reply.status != 200:
                failures.append(reply)
            n += 1

    racer = threading.Thread(target=imports)
    racer.start()
    client = server.connect()
    client.set_reason("started")
    try:
        for second in range(30):
            client.execute(
                f"UPDATE work_orders SET actual_start = TIMESTAMP '2026-12-01T06:00:{second:02}Z' WHERE id = 'WO-4001'")
    finally:
        stop.set()
        racer.join(60)
        client.close()
    assert not failures, failures[:1]
    # No version an import wrote changed actual_start (which the document
    # leaves out): each keeps the value of the version before it.
    versions = server.client.query(
        "SELECT actual_start, reason FROM work_orders_history WHERE id = 'WO-4001' ORDER BY recorded_at"
    ).to_pylist()
    imported = 0
    for before, version in zip(versions, versions[1:]):
        if version["reason"].startswith("B2MML"):
            imported += 1
            assert version["actual_start"] == before["actual_start"], (before, version)
    assert imported > 5 and sum(v["reason"] == "started" for v in versions) == 30
