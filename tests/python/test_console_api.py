"""The web console's JSON API (/api/v1/) against the real binary, as a
script would use it: every documented route refuses a caller without
credentials; plot values for 10 M samples of one tag are at most two
points per pixel column and carry exactly SQL's min and max per column;
the session cookie's flags and CSRF rule; roles apply as over Flight SQL;
the lot trace returns the genealogy written.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from lotline_testlib import ADMIN_USER, DEFAULT_PASSWORD, TS_TYPE, http_request

NS = 1_000_000_000
T0 = 1_780_000_000 * NS  # 2026-05-28
TAG = "site1.area3.line10.unit10.TT00010.PV"
ROWS = 10_000_000
WIDTH = 1000
READER, READER_PW = "rita", "reader-Pass-1"
WRITER, WRITER_PW = "wim", "writer-Pass-1"
INTERFACES = Path(__file__).resolve().parents[2] / "docs" / "INTERFACES.md"


def basic(user: str, password: str) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = basic(ADMIN_USER, DEFAULT_PASSWORD)


def add_user(server, name: str, role: str, password: str):
    out = server.cli("user", "add", name, "--role", role, "--password-stdin", input=password + "\n")
    assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def server(module_server_factory):
    server = module_server_factory()
    add_user(server, READER, "reader", READER_PW)
    add_user(server, WRITER, "writer", WRITER_PW)
    return server


def api(server, path: str, method: str = "GET", body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"content-type": "application/json"} if body is not None else {}
    all_headers.update(headers or {})
    return http_request(server.http_url + path, method=method, body=data, headers=all_headers)


def documented_routes() -> list[tuple[str, str]]:
    """(method, path) of every console API route INTERFACES.md lists."""
    text = INTERFACES.read_text()
    routes = re.findall(r"^\| `(GET|POST|DELETE) (/api/v1/[^` ]*)`", text, re.M)
    assert len(routes) >= 12, f"INTERFACES.md lists {len(routes)} console routes"
    return routes


def test_every_documented_route_refuses_a_caller_without_credentials(server):
    # Wrong passwords count towards the login throttle (10 a minute from one
    # address), so they are tried on two routes; forged tokens on all.
    for index, (method, path) in enumerate(documented_routes()):
        concrete = path.replace("{id}", "L-1").split("?")[0]
        body = {"user": "nobody", "password": "wrong"} if concrete.endswith("/login") else {}
        attempts = [{}, {"Cookie": "lotline_session=forged"}, {"Authorization": "Bearer forged"}]
        if index < 2:
            attempts.append(basic("nobody", "not-a-password"))
        for headers in attempts:
            reply = api(server, concrete, method=method, body=body if method == "POST" else None, headers=headers)
            assert reply.status == 401, (method, concrete, headers, reply)
            assert reply.json()["error"], reply


def ingest_ten_million(server) -> np.ndarray:
    """10 M samples of TAG at 1 ms: a sine with a spike every 100 003 rows
    and a run of Bad samples; returns the values written."""
    client = server.client
    step = 1_000_000  # 1 ms
    values = np.sin(np.arange(ROWS) / 5000.0) * 50 + 400
    values[::100_003] += 250
    quality = np.zeros(ROWS, dtype=np.uint32)
    quality[4_000_000:4_050_000] = 0x80000000
    chunk = 200_000  # a Flight message of about 12 MB, under the client's 16 MB
    for start in range(0, ROWS, chunk):
        end = start + chunk
        ts = T0 + np.arange(start, end, dtype=np.int64) * step
        client.ingest(pa.table({
            "tag": pa.array([TAG] * chunk, pa.string()),
            "ts": pa.array(ts, TS_TYPE),
            "value": pa.array(values[start:end], pa.float64()),
            "quality": pa.array(quality[start:end], pa.uint32()),
        }))
    return values


def test_plot_values_for_ten_million_samples_match_sql_per_column(server):
    ingest_ten_million(server)
    start, end = T0, T0 + ROWS * 1_000_000
    reply = api(server, f"/api/v1/history?tag={TAG}&from={start // 1_000_000}&to={end // 1_000_000}&width={WIDTH}", headers=ADMIN)
    assert reply.status == 200, reply
    answer = reply.json()
    plot = answer["plot"]
    assert plot["samples"] == ROWS
    assert len(plot["t"]) <= 2 * WIDTH
    assert len(plot["t"]) == len(plot["v"]) == len(plot["c"])
    step = plot["step_ns"]
    assert step == (end - start + WIDTH - 1) // WIDTH
    expected = server.client.query(
        f"SELECT CAST((CAST(ts AS BIGINT) - {start}) / {step} AS BIGINT) AS c, "
        f"min(value) AS lo, max(value) AS hi, max(quality) AS worst FROM samples "
        f"WHERE tag = '{TAG}' GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    columns: dict[int, list[float]] = {}
    for c, t, v in zip(plot["c"], plot["t"], plot["v"]):
        columns.setdefault(c, []).append(v)
        # Each point lies in its own column.
        assert start + c * step <= t * 1e6 + 1000 and t * 1e6 - 1000 < start + (c + 1) * step
    assert sorted(columns) == [row["c"] for row in expected]
    for row in expected:
        drawn = columns[row["c"]]
        assert min(drawn) == row["lo"] and max(drawn) == row["hi"], (row, drawn)
    # Compressed for a client that takes gzip (every browser), the same answer.
    url = f"/api/v1/history?tag={TAG}&from={start // 1_000_000}&to={end // 1_000_000}&width={WIDTH}"
    zipped = api(server, url, headers={**ADMIN, "Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert len(zipped.body) < len(reply.body) * 0.7
    assert json.loads(gzip.decompress(zipped.body)) == answer
    bad = {row["c"] for row in expected if row["worst"] >= 0x80000000}
    shaded = {c for first, last, severity in plot["quality"] if severity == 2 for c in range(first, last + 1)}
    assert shaded == bad and bad


def login(server, user: str, password: str):
    return api(server, "/api/v1/session/login", method="POST", body={"user": user, "password": password})


def cookie_of(reply) -> str:
    header = reply.headers["Set-Cookie"]
    return header.split(";", 1)[0]


def test_the_session_cookie_is_httponly_strict_expiring_and_changes_need_the_csrf_token(server):
    reply = login(server, ADMIN_USER, DEFAULT_PASSWORD)
    assert reply.status == 200, reply
    flags = [f.strip() for f in reply.headers["Set-Cookie"].split(";")]
    assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Path=/" in flags
    assert any(f.startswith("Max-Age=") and int(f.split("=")[1]) > 0 for f in flags), flags
    cookie, csrf = cookie_of(reply), reply.json()["csrf"]
    assert reply.json()["role"] == "admin" and len(csrf) == 32
    query = {"sql": "SELECT 1 AS one"}
    # A cookie alone (what another site's form could send) cannot change anything.
    refused = api(server, "/api/v1/sql", method="POST", body=query, headers={"Cookie": cookie})
    assert refused.status == 403 and "x-lotline-csrf" in refused.json()["error"], refused
    wrong = api(server, "/api/v1/sql", method="POST", body=query, headers={"Cookie": cookie, "x-lotline-csrf": "0" * 32})
    assert wrong.status == 403, wrong
    ok = api(server, "/api/v1/sql", method="POST", body=query, headers={"Cookie": cookie, "x-lotline-csrf": csrf})
    assert ok.status == 200 and ok.json()["rows"] == [[1]], ok
    # Reads need no CSRF token; after the logout the cookie is worth nothing.
    assert api(server, "/api/v1/session", headers={"Cookie": cookie}).json()["csrf"] == csrf
    out = api(server, "/api/v1/session", method="DELETE", headers={"Cookie": cookie, "x-lotline-csrf": csrf})
    assert out.status == 204 and "Max-Age=0" in out.headers["Set-Cookie"]
    assert api(server, "/api/v1/tags?q=x", headers={"Cookie": cookie}).status == 401


def test_a_wrong_password_is_refused_and_audited(server):
    reply = login(server, READER, "not-her-password")
    assert reply.status == 401 and "Set-Cookie" not in reply.headers, reply
    refused = server.client.query(
        f"SELECT detail FROM audit_log WHERE action = 'login.refused' AND actor = '{READER}'"
    ).to_pylist()
    assert any("http.console" in r["detail"] for r in refused), refused


def test_roles_apply_as_over_flight_sql(server):
    insert = (
        "INSERT INTO samples (tag, ts, value, quality) "
        "VALUES ('console.roles', TIMESTAMP '2026-06-01T00:00:00Z', 1.0, 0)"
    )
    reader = api(server, "/api/v1/sql", method="POST", body={"sql": insert}, headers=basic(READER, READER_PW))
    assert reader.status == 403, reader
    assert "user 'rita' (role reader) may not write to table 'samples'" in reader.json()["error"]
    assert api(server, "/api/v1/sql", method="POST", body={"sql": "SELECT 2 AS two"}, headers=basic(READER, READER_PW)).status == 200
    writer = api(server, "/api/v1/sql", method="POST", body={"sql": insert, "reason": "console roles test"}, headers=basic(WRITER, WRITER_PW))
    assert writer.status == 200, writer
    assert server.client.count("tag = 'console.roles'") == 1
    entries = api(server, f"/api/v1/audit?actor={WRITER}&table=samples", headers=basic(READER, READER_PW)).json()["entries"]
    assert entries and entries[0]["reason"] == "console roles test" and entries[0]["row_count"] == 1, entries


def test_the_lot_trace_returns_the_genealogy_written(server):
    # R1, R2 -> I1; I1, R3 -> F1; F1 -> P1; and R9 -> X1, which F1's trace never reaches.
    edges = [("R1", "I1"), ("R2", "I1"), ("I1", "F1"), ("R3", "F1"), ("F1", "P1"), ("R9", "X1")]
    server.client.ingest(pa.table({
        "input_lot": [a for a, _ in edges],
        "output_lot": [b for _, b in edges],
        "quantity": pa.array([1.0] * len(edges)),
        "ts": pa.array([T0 + i * NS for i in range(len(edges))], TS_TYPE),
    }), table="genealogy")
    trace = api(server, "/api/v1/lots/F1/trace?depth=5", headers=ADMIN).json()
    assert {n["lot"]: n["depth"] for n in trace["nodes"]} == {"R1": -2, "R2": -2, "I1": -1, "R3": -1, "F1": 0, "P1": 1}
    assert {(e["input_lot"], e["output_lot"]) for e in trace["edges"]} == set(edges[:5])
    shallow = api(server, "/api/v1/lots/F1/trace?depth=1&direction=backward", headers=ADMIN).json()
    assert {n["lot"] for n in shallow["nodes"]} == {"I1", "R3", "F1"}
    assert api(server, "/api/v1/lots/F1/trace?direction=sideways", headers=ADMIN).status == 400
    missing = api(server, "/api/v1/lots/NO-SUCH-LOT", headers=ADMIN)
    assert missing.status == 404 and "NO-SUCH-LOT" in missing.json()["error"]


def test_names_with_quotes_and_backslashes_stay_one_value(server):
    import urllib.parse

    odd = "site1.odd'tag\\name.PV"
    server.client.ingest(pa.table({
        "tag": [odd], "ts": pa.array([T0], TS_TYPE), "value": [7.0], "quality": pa.array([0], pa.uint32()),
    }))
    server.client.ingest(pa.table({"tag": [odd], "unit": ["bar"]}), table="tags")
    found = api(server, "/api/v1/tags?q=" + urllib.parse.quote("odd'tag\\"), headers=ADMIN).json()["tags"]
    assert [t["tag"] for t in found] == [odd]
    plot = api(server, f"/api/v1/history?tag={urllib.parse.quote(odd)}&from={T0 // 10**6}&to={T0 // 10**6 + 1}",
               headers=ADMIN).json()["plot"]
    assert plot["v"] == [7.0] and plot["samples"] == 1
    # A quote that would end the literal early finds nothing instead of everything.
    assert api(server, "/api/v1/tags?q=" + urllib.parse.quote("' OR true --"), headers=ADMIN).json()["tags"] == []


def test_collector_status_comes_through_the_api(server, server_factory, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on: the collector keeps trying
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    plant = tmp_path / "plant.toml"
    plant.write_text("\n".join([
        "[[collector]]", 'name = "press7"', 'kind = "modbus"', f'endpoint = "127.0.0.1:{port}"',
        "poll_interval_ms = 200", "", "[[collector.map]]", 'source = "holding:0"',
        'tag = "site1.area1.press7.PT00001.PV"',
    ]))
    with_collectors = server_factory("--collectors", str(plant))
    rows = api(with_collectors, "/api/v1/collectors", headers=ADMIN).json()["collectors"]
    assert [r["name"] for r in rows] == ["press7"], rows
    assert rows[0]["kind"] == "modbus" and rows[0]["state"] != "connected", rows
    assert api(server, "/api/v1/collectors", headers=ADMIN).json()["collectors"] == []


def test_times_outside_lotlines_range_are_refused_not_crashed_on(server):
    for params in ("from=0&to=1e16", "from=-1&to=5", "from=1e300&to=1e301", "from=5&to=5", "from=x&to=5",
                   "from=0&to=5&width=abc", "from=0"):
        reply = api(server, f"/api/v1/history?tag={TAG}&{params}", headers=ADMIN)
        assert reply.status == 400 and reply.json()["error"], (params, reply)
    # The widest range lotline holds, in one column: still an answer.
    whole = api(server, f"/api/v1/history?tag={TAG}&from=0&to=9223372036854&width=1", headers=ADMIN)
    assert whole.status == 200 and len(whole.json()["plot"]["v"]) <= 2, whole
