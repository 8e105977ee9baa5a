"""The README's first run, as a new user types it: `lotline demo` in a fresh
directory with the default, relative data directory (`./lotline-data`), then
the demo's printed example queries, the README's SQL and its Python (ADBC)
example, typed into `lotline sql` with the password read from the relative
`lotline-data/admin-password`. All of it must answer while the demo's rows
are buffered, after `lotline flush` has written them to Parquet, and after a
restart of `lotline demo` on the same directory.

Only the listen ports differ from the README (a free port each, so the test
never collides with another server); every path is relative to the fresh
working directory.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from lotline_testlib import REPO_ROOT, free_port

README = (REPO_ROOT / "README.md").read_text()
DEMO_TIMEOUT_S = 300


def clean_env(home: Path) -> dict[str, str]:
    """The environment of a new user: no LOTLINE_* settings, a fresh HOME
    (the shell's history file goes there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOTLINE_")}
    env["HOME"] = str(home)
    return env


def sql_blocks(for_duckdb: bool) -> list[str]:
    """The statements of the README's ```sql blocks: lotline's, or those it
    gives for DuckDB reading the segment files (`read_parquet`)."""
    statements = []
    for block in re.findall(r"```sql\n(.*?)```", README, re.S):
        if ("read_parquet(" in block) != for_duckdb:
            continue
        text = "\n".join(line for line in block.splitlines() if not line.strip().startswith("--"))
        statements += [s.strip() + ";" for s in text.split(";") if s.strip()]
    return statements


def readme_sql() -> list[str]:
    """lotline's statements in the README, and the one typed at its `lotline>` prompt."""
    statements = sql_blocks(for_duckdb=False)
    statements += [m.strip() for m in re.findall(r"^lotline> (.*;)$", README, re.M)]
    assert len(statements) >= 10, statements
    return statements


def run_readme_duckdb(cwd: Path) -> int:
    """The README's DuckDB queries over the segments, run where the user is;
    returns the first query's first value (a row count)."""
    import duckdb

    statements = sql_blocks(for_duckdb=True)
    assert statements, "the README shows DuckDB reading the segments"
    con = duckdb.connect()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        results = [con.execute(sql).fetchall() for sql in statements]
    finally:
        os.chdir(previous)
    return results[0][0][0]


def readme_python() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks, "the README has a Python example"
    return blocks[0]


class Demo:
    """`lotline demo` started in `cwd` as the README says, on free ports."""

    def __init__(self, binary: Path, cwd: Path, env: dict[str, str]):
        self.binary, self.cwd, self.env = binary, cwd, env
        self.port, self.http_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        self.log = cwd.parent / "demo.log"

    @property
    def endpoint(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Starts the demo and returns what it printed once it listens."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "demo",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--http-listen",
                f"127.0.0.1:{self.http_port}",
            ],
            cwd=self.cwd,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        out.close()
        deadline = time.monotonic() + DEMO_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"lotline demo exited:\n{self.output(offset)}"
            if "lotline listening on" in self.output(offset) and self.healthy():
                return self.output(offset)
            time.sleep(0.2)
        raise AssertionError(f"lotline demo did not start:\n{self.output(offset)}")

    def output(self, offset: int = 0) -> str:
        return self.log.read_bytes()[offset:].decode(errors="replace")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        assert self.proc is None or self.proc.returncode == 0, self.output()[-4000:]

    def shell(self, command: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """`command` as typed in a POSIX shell in the demo's directory; `lotline`
        is the binary under test."""
        command = command.replace("lotline ", f"{shlex.quote(str(self.binary))} ", 1)
        return subprocess.run(
            command,
            shell=True,
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def sql_session(self, statements: list[str]) -> str:
        """Types `statements` into `lotline sql` as the README shows; returns
        what it printed, failing on any error."""
        run = self.shell(
            f'lotline sql --endpoint {self.endpoint} --password "$(cat lotline-data/admin-password)"',
            stdin="\n".join(statements) + "\n\\q\n",
        )
        assert run.returncode == 0, run.stderr
        errors = [line for line in run.stderr.splitlines() if line.startswith("error")]
        assert not errors, "\n".join(errors) + "\n\n" + run.stdout[-4000:]
        return run.stdout

    def count(self, sql: str) -> int:
        run = self.shell(
            f'lotline sql --endpoint {self.endpoint} --password "$(cat lotline-data/admin-password)" '
            f"--format csv {shlex.quote(sql)}"
        )
        assert run.returncode == 0, run.stderr
        return int(run.stdout.strip().splitlines()[-1])


def printed_queries(output: str) -> list[str]:
    """The example queries `lotline demo` prints under `Try:`."""
    block = output.split("Try:\n", 1)[1].split("\n\n", 1)[0]
    queries = [line.strip() for line in block.splitlines() if line.strip()]
    assert len(queries) >= 3, output
    return queries


def run_readme_python(demo: Demo):
    password = (demo.cwd / "lotline-data" / "admin-password").read_text().strip()
    code = readme_python()
    code = code.replace('"password": "..."', f'"password": {password!r}')
    code = code.replace("grpc://127.0.0.1:50051", demo.endpoint)
    run = subprocess.run(
        [os.sys.executable, "-c", code], cwd=demo.cwd, env=demo.env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "oven_temp" in run.stdout, run.stdout


def check_console(demo: Demo, output: str):
    """The web console the demo points to answers, and the saved admin
    password logs in to it and finds the demo's tags."""
    url = output.split("Open the web console", 1)[1].splitlines()[1].split()[0]
    assert url == f"http://127.0.0.1:{demo.http_port}/", url
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200 and b"<title>lotline</title>" in r.read()
    password = (demo.cwd / "lotline-data" / "admin-password").read_text().strip()
    login = urllib.request.Request(
        url + "api/v1/session/login",
        data=json.dumps({"user": "admin", "password": password}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(login, timeout=30) as r:
        cookie = r.headers["Set-Cookie"].split(";", 1)[0]
        assert json.loads(r.read())["role"] == "admin"
    tags = urllib.request.Request(url + "api/v1/tags?q=line1.oven", headers={"Cookie": cookie})
    with urllib.request.urlopen(tags, timeout=30) as r:
        assert len(json.loads(r.read())["tags"]) >= 5


@pytest.mark.timeout(1500)
def test_the_readme_first_run_works_from_a_fresh_directory(lotline_bin, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    cwd = tmp_path / "fresh"
    cwd.mkdir()
    demo = Demo(lotline_bin, cwd, clean_env(home))
    output = demo.start()
    try:
        assert (cwd / "lotline-data" / "admin-password").is_file(), "the data dir is relative to the cwd"
        queries = printed_queries(output) + readme_sql()
        samples_sql = "SELECT count(*) FROM samples WHERE tag LIKE 'line1.oven.%'"

        # 1. Right after the demo loaded: rows in memory (and maybe some flushed).
        demo.sql_session(queries)
        check_console(demo, output)
        buffered = demo.count(samples_sql)
        assert buffered > 0

        # 2. Everything in Parquet segments, read through their stored paths.
        flushed = demo.shell(
            f'lotline flush --endpoint {demo.endpoint} --password "$(cat lotline-data/admin-password)"'
        )
        assert flushed.returncode == 0, flushed.stderr
        assert list((cwd / "lotline-data" / "tables" / "samples").rglob("*.parquet"))
        printed = demo.sql_session(queries)
        assert "line1.oven." in printed and "L-1003" in printed, printed[-3000:]
        assert demo.count(samples_sql) >= buffered
        run_readme_python(demo)
        after_flush = demo.count(samples_sql)
        flushed = demo.shell(
            f'lotline flush --endpoint {demo.endpoint} --password "$(cat lotline-data/admin-password)"'
        )
        assert flushed.returncode == 0, flushed.stderr
        assert run_readme_duckdb(cwd) == demo.count("SELECT count(*) FROM samples_raw")

        # 3. Restarted on the same relative directory: the demo is not loaded
        # again, and every query still answers from the segments.
        demo.stop()
        restarted = demo.start()
        assert "Created user 'admin'" not in restarted, "the admin password is kept"
        assert demo.count(samples_sql) == after_flush, "nothing lost, nothing loaded twice"
        demo.sql_session(queries)
    finally:
        demo.stop()
