"""The web console in a real browser (Debian's chromium driven by
Playwright) against the real binary serving the demo plant: log in (and a
wrong password refused), trend two demo tags and check what was drawn
against SQL, zoom re-queries, a reader cannot write through the SQL page,
the lot page draws a known lot's genealogy with the right edges, the audit
page lists a write this test made and verifies the chain, the server page
shows live figures. Screenshots of each page go to the test's temp dir.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from lotline_testlib import ADMIN_USER, DEFAULT_PASSWORD, TS_TYPE, eventually

CHROMIUM = os.environ.get("LOTLINE_CHROMIUM", "/usr/bin/chromium")
READER, READER_PW = "rita", "reader-Pass-1"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def server(module_server_factory):
    server = module_server_factory("--demo")
    out = server.cli("user", "add", READER, "--role", "reader", "--password-stdin", input=READER_PW + "\n")
    assert out.returncode == 0, out.stderr
    return server


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no chromium at {CHROMIUM}: install Debian's chromium (.ci/run does)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    path = tmp_path / "screenshots"
    path.mkdir()
    return path


def wait_js(page, expression: str, timeout: float = 30.0):
    """Waits until `expression` is true in the page. (Playwright's
    wait_for_function evaluates strings with eval, which the console's
    content security policy forbids, as it should.)"""
    eventually(lambda: page.evaluate(expression), timeout=timeout, what=expression)


def close(page):
    """Closes a page that raised no script error."""
    assert not getattr(page, "script_errors", []), page.script_errors
    page.close()


def open_page(browser, server, user=ADMIN_USER, password=DEFAULT_PASSWORD, hash_=""):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.script_errors = []
    page.on("pageerror", lambda e: page.script_errors.append(str(e)))
    page.goto(server.http_url + "/" + hash_)
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")
    wait_js(page, "window.lotline && window.lotline.session !== null")
    return page


def test_a_wrong_password_is_refused(browser, server, shots):
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.http_url + "/")
    page.fill("input[name=user]", ADMIN_USER)
    page.fill("input[name=password]", "not-the-password")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:has-text('Login refused')")
    assert page.evaluate("window.lotline.session") is None
    assert page.is_hidden("#logout")
    page.screenshot(path=shots / "login-refused.png")
    close(page)


def demo_tags(server, count: int) -> list[str]:
    rows = server.client.query(
        "SELECT tag FROM samples WHERE tag LIKE '%temperature%' GROUP BY tag ORDER BY tag LIMIT 10"
    ).to_pylist()
    assert len(rows) >= count
    return [r["tag"] for r in rows[:count]]


def sql_columns(server, tag: str, start_ms: float, step_ns: int, end_ms: float) -> dict:
    start_ns, end_ns = round(start_ms * 1e6), round(end_ms * 1e6)
    rows = server.client.query(
        f"SELECT CAST((CAST(ts AS BIGINT) - {start_ns}) / {step_ns} AS BIGINT) AS c, min(value) AS lo, max(value) AS hi "
        f"FROM samples WHERE tag = '{tag}' AND CAST(ts AS BIGINT) >= {start_ns} AND CAST(ts AS BIGINT) < {end_ns} "
        "AND value IS NOT NULL AND NOT isnan(value) GROUP BY 1"
    ).to_pylist()
    return {r["c"]: (r["lo"], r["hi"]) for r in rows}


def check_drawn_against_sql(page, server):
    series = page.evaluate(
        "window.lotline.trend.series.map(s => ({tag: s.tag, c: s.c, v: s.v, t: s.t, stepNs: s.stepNs, from: s.from, to: s.to}))"
    )
    assert series
    for s in series:
        drawn: dict[int, list[float]] = {}
        for c, v in zip(s["c"], s["v"]):
            drawn.setdefault(c, []).append(v)
        expected = sql_columns(server, s["tag"], s["from"], s["stepNs"], s["to"])
        assert expected, s["tag"]
        assert {c: (min(v), max(v)) for c, v in drawn.items()} == expected, s["tag"]
    return series


def pixel_is_series_colour(page, series_index: int, point_index: int) -> bool:
    """Whether the canvas at a drawn point of the series is (close to) its colour."""
    return page.evaluate(
        """([i, k]) => {
            const t = window.lotline.trend;
            const s = t.series[i];
            const [x, y] = t.chart.toPixel(i, s.t[k], s.v[k]);
            const c = t.chart.canvas, dpr = window.devicePixelRatio || 1;
            const g = c.getContext('2d');
            const hex = ['#1f77b4', '#d62728'][i];
            const want = [1, 3, 5].map(o => parseInt(hex.slice(o, o + 2), 16));
            for (let dx = -2; dx <= 2; dx++) for (let dy = -2; dy <= 2; dy++) {
                const p = g.getImageData(Math.round((x + dx) * dpr), Math.round((y + dy) * dpr), 1, 1).data;
                if (p[3] > 0 && want.every((w, j) => Math.abs(w - p[j]) < 60)) return true;
            }
            return false;
        }""",
        [series_index, point_index],
    )


def test_trend_two_demo_tags_drawn_as_sql_says_and_zoom_requeries(browser, server, shots):
    first, second = demo_tags(server, 2)
    bounds = server.client.query(
        f"SELECT min(ts) AS a, max(ts) AS b FROM samples WHERE tag IN ('{first}', '{second}')"
    ).to_pylist()[0]
    start_ms = int(bounds["a"].timestamp() * 1000)
    end_ms = int(bounds["b"].timestamp() * 1000) + 1000
    page = open_page(browser, server, hash_=f"#/trend?from={start_ms}&to={end_ms}")
    # Pick both tags the way a user does: search as you type, choose a result.
    for tag in (first, second):
        page.fill("input[type=search]", tag)
        page.click(f"#tag-results li[data-tag='{tag}']")
    wait_js(page, "window.lotline.trend.series.length === 2")
    assert f"tags={first},{second}" in page.url.replace("%2C", ",")
    series = check_drawn_against_sql(page, server)
    for i, s in enumerate(series):
        top = max(range(len(s["v"])), key=lambda k: s["v"][k])
        assert pixel_is_series_colour(page, i, top), (s["tag"], "highest point not drawn")
    page.screenshot(path=shots / "trend.png")

    # Zoom: drag across a tenth of the plot; the page asks the server again.
    box = page.locator("canvas.chart").bounding_box()
    y = box["y"] + box["height"] / 2
    with page.expect_request(lambda r: "/api/v1/history" in r.url) as asked:
        page.mouse.move(box["x"] + box["width"] * 0.4, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
        page.mouse.up()
    assert "from=" in asked.value.url and "width=" in asked.value.url
    wait_js(page, f"window.lotline.trend.series.length === 2 && window.lotline.trend.chart.to - window.lotline.trend.chart.from < {(end_ms - start_ms) / 3}")
    new_from, new_to = page.evaluate("[window.lotline.trend.chart.from, window.lotline.trend.chart.to]")
    assert start_ms < new_from < new_to < end_ms
    assert f"from={round(new_from)}" in page.url
    wait_js(page, f"window.lotline.trend.series.every(s => Math.abs(s.from - {new_from}) < 1)")
    check_drawn_against_sql(page, server)
    page.screenshot(path=shots / "trend-zoomed.png")

    # From the keyboard: "-" on the focused chart zooms out twice as wide.
    page.focus("canvas.chart")
    with page.expect_request(lambda r: "/api/v1/history" in r.url):
        page.keyboard.press("-")
    wait_js(page, f"Math.abs((window.lotline.trend.chart.to - window.lotline.trend.chart.from) - {2 * (new_to - new_from)}) < 2")
    # And pan: the right arrow moves the view a quarter of its width later.
    before = page.evaluate("window.lotline.trend.chart.from")
    span = page.evaluate("window.lotline.trend.chart.to - window.lotline.trend.chart.from")
    with page.expect_request(lambda r: "/api/v1/history" in r.url):
        page.keyboard.press("ArrowRight")
    wait_js(page, f"Math.abs(window.lotline.trend.chart.from - {before + span / 4}) < 2")
    close(page)


def test_live_mode_appends_new_samples_every_second(browser, server, shots):
    tag = "site1.area1.line1.unit1.TT00001.PV"
    now_ns = time.time_ns()
    write = lambda ts, value: server.client.ingest(pa.table({
        "tag": [tag], "ts": pa.array([ts], TS_TYPE), "value": [value], "quality": pa.array([0], pa.uint32())}))
    write(now_ns - 30 * 10**9, 10.0)
    page = open_page(browser, server, hash_=f"#/trend?tags={tag}&span=60000&live=1")
    wait_js(page, "window.lotline.trend.series.length === 1 && window.lotline.trend.series[0].v.includes(10)")
    assert page.is_checked(".live input")
    write(time.time_ns() - 10**9, 777.0)
    wait_js(page, "window.lotline.trend.series[0].v.includes(777) && window.lotline.trend.appended > 0", timeout=15)
    # The window moved with the clock and the first sample is still in it.
    assert page.evaluate("window.lotline.trend.series[0].v.includes(10)")
    assert page.evaluate("Date.now() - window.lotline.trend.chart.to") < 5000
    page.screenshot(path=shots / "trend-live.png")
    close(page)


def test_bad_samples_are_shaded(browser, server, shots):
    tag = "site1.area1.line1.unit1.PT00002.PV"
    start = 1_790_000_000 * 10**9
    quality = [0x80000000 if 40 <= i < 60 else 0 for i in range(100)]
    server.client.ingest(pa.table({
        "tag": [tag] * 100, "ts": pa.array([start + i * 10**9 for i in range(100)], TS_TYPE),
        "value": [float(i % 10) for i in range(100)], "quality": pa.array(quality, pa.uint32()),
    }))
    start_ms = start // 10**6
    page = open_page(browser, server, hash_=f"#/trend?tags={tag}&from={start_ms}&to={start_ms + 100_000}")
    wait_js(page, "window.lotline.trend.series.length === 1")
    runs = page.evaluate("window.lotline.trend.series[0].quality")
    assert len(runs) == 1 and runs[0][2] == 2, runs
    assert abs(runs[0][0] - (start_ms + 40_000)) < 200 and abs(runs[0][1] - (start_ms + 60_000)) < 200, runs
    # Inside the Bad run, just under the plot's top edge, the canvas is tinted red; outside it is not.
    tint = page.evaluate(
        """([t]) => {
            const c = window.lotline.trend.chart, dpr = window.devicePixelRatio || 1;
            const [x] = c.toPixel(0, t, 0);
            const p = c.canvas.getContext('2d').getImageData(Math.round(x * dpr), Math.round(14 * dpr), 1, 1).data;
            return [p[0], p[1], p[2], p[3]];
        }""",
        [start_ms + 52_500],
    )
    clear = page.evaluate(
        """([t]) => {
            const c = window.lotline.trend.chart, dpr = window.devicePixelRatio || 1;
            const [x] = c.toPixel(0, t, 0);
            return [...c.canvas.getContext('2d').getImageData(Math.round(x * dpr), Math.round(14 * dpr), 1, 1).data];
        }""",
        [start_ms + 20_500],
    )
    assert tint[3] > 0 and tint[0] > tint[1] + 10 and tint[0] > tint[2] + 10, tint
    assert clear[3] == 0 or abs(clear[0] - clear[1]) < 10, clear
    page.screenshot(path=shots / "trend-quality.png")
    close(page)


def test_a_reader_cannot_write_through_the_sql_page(browser, server, shots):
    page = open_page(browser, server, READER, READER_PW, "#/sql")
    assert page.evaluate("window.lotline.session.role") == "reader"
    page.fill(".page.sql textarea", "INSERT INTO samples (tag, ts, value, quality) VALUES ('console.reader', TIMESTAMP '2026-06-01T00:00:00Z', 1.0, 0)")
    page.click(".page.sql button:has-text('Run')")
    page.wait_for_selector(".page.sql .error")
    assert "user 'rita' (role reader) may not write to table 'samples'" in page.inner_text(".page.sql .error")
    assert server.client.count("tag = 'console.reader'") == 0
    page.screenshot(path=shots / "sql-reader-refused.png")
    close(page)


def reference_graph(server, lot: str, depth: int):
    """Lots within `depth` edges of `lot` both ways (breadth-first, here),
    and the genealogy edges among them."""
    edges = {(r["input_lot"], r["output_lot"]) for r in server.client.query(
        "SELECT input_lot, output_lot FROM genealogy").to_pylist()}
    reached = {lot}
    for walk in ((lambda e, l: e[0] if e[1] == l else None), (lambda e, l: e[1] if e[0] == l else None)):
        frontier, seen = {lot}, {lot}
        for _ in range(depth):
            frontier = {n for l in frontier for e in edges if (n := walk(e, l)) is not None} - seen
            seen |= frontier
        reached |= seen
    return reached, {e for e in edges if e[0] in reached and e[1] in reached}


def test_the_lot_page_draws_the_genealogy_of_a_known_lot(browser, server, shots):
    # A lot that was produced in runs and has genealogy both ways.
    lot = server.client.query(
        "SELECT r.lot FROM production_runs r JOIN genealogy g ON g.output_lot = r.lot "
        "GROUP BY r.lot ORDER BY count(*) DESC, r.lot LIMIT 1"
    ).to_pylist()[0]["lot"]
    runs = server.client.count(f"lot = '{lot}'", table="production_runs")
    assert runs > 0
    nodes, edges = reference_graph(server, lot, 2)
    page = open_page(browser, server, hash_=f"#/lot/{lot}?depth=2&direction=both")
    page.wait_for_selector("svg.genealogy")
    drawn_nodes = set(page.eval_on_selector_all("svg.genealogy g.node", "ns => ns.map(n => n.dataset.lot)"))
    drawn_edges = {tuple(e) for e in page.eval_on_selector_all(
        "svg.genealogy path.edge", "es => es.map(e => [e.dataset.from, e.dataset.to])")}
    assert drawn_nodes == nodes
    assert drawn_edges == edges and edges
    page.wait_for_selector(".details h2")
    # Each run shows a trend of its equipment's tags over the run's window.
    wait_js(page, "[...document.querySelectorAll('.run canvas.chart')]"
                  f".filter(c => +c.dataset.drawnPoints > 0).length === {runs}")
    page.screenshot(path=shots / "lot.png", full_page=True)
    # Clicking a lot of the graph goes to that lot.
    other = sorted(nodes - {lot})[0]
    page.click(f"svg.genealogy g.node[data-lot='{other}']")
    wait_js(page, f"location.hash.startsWith('#/lot/{other}')")
    close(page)


def test_the_audit_page_lists_a_write_made_here_and_verifies_the_chain(browser, server, shots):
    reason = f"console audit test {uuid.uuid4()}"
    client = server.client
    client.set_reason(reason)
    client.ingest(pa.table({
        "tag": ["console.audit"], "ts": pa.array([1_780_000_000 * 10**9], TS_TYPE),
        "value": [1.0], "quality": pa.array([0], pa.uint32()),
    }))
    page = open_page(browser, server, hash_="#/audit")
    page.wait_for_selector(f".entries td:has-text('{reason}')")
    page.click("button.verify")
    page.wait_for_selector(".verdict[data-ok]")
    assert page.get_attribute(".verdict", "data-ok") == "true", page.inner_text(".verdict")
    assert "Chain verified" in page.inner_text(".verdict")
    page.screenshot(path=shots / "audit.png", full_page=True)
    close(page)


def test_the_server_page_shows_the_metrics_figures(browser, server, shots):
    page = open_page(browser, server, hash_="#/status")
    page.wait_for_selector(".health strong")
    assert page.inner_text(".health strong") == "PASS"
    figures = dict(zip(page.eval_on_selector_all(".figures dt", "e => e.map(x => x.textContent)"),
                       page.eval_on_selector_all(".figures dd", "e => e.map(x => x.textContent)")))
    assert int(figures["Rows ingested"].replace(",", "")) > 0
    page.screenshot(path=shots / "status.png", full_page=True)
    # Dark and light: the switch changes the page's colours, and is remembered.
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.click("#theme")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark != light
    assert page.evaluate("localStorage.getItem('lotline-theme')") in ("dark", "light")
    page.screenshot(path=shots / "status-other-theme.png", full_page=True)
    # Readable on a phone too: nothing wider than the screen but the tables and charts scroll inside.
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(server.http_url + "/#/trend")
    page.wait_for_selector("canvas.chart")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=shots / "trend-phone.png")
    close(page)
