"""Fixtures that run a real `lotline serve` for the end-to-end tests.

The binary is $LOTLINE_BIN, else ${CARGO_TARGET_DIR:-~/.cache/lotline/target}/debug/lotline.
Every server gets a fresh data directory under pytest's tmp dir, a free port
on 127.0.0.1 and LOTLINE_ADMIN_PASSWORD; its stdout+stderr go to a log file
that is attached to the report of any failing test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lotline_testlib import (
    ACTIVE_SERVERS,
    DEFAULT_PASSWORD,
    LotlineServer,
    binary_path,
)


@pytest.fixture(scope="session")
def lotline_bin() -> Path:
    path = binary_path()
    if not path.is_file():
        pytest.fail(
            f"lotline binary not found at {path}: build it with `cargo build --bin lotline` "
            "or point LOTLINE_BIN at it",
            pytrace=False,
        )
    return path


class ServerFactory:
    """Creates servers in numbered data dirs below `base`; stops them all at the end."""

    def __init__(self, binary: Path, base: Path):
        self.binary = binary
        self.base = base
        self.servers: list[LotlineServer] = []

    def __call__(
        self, *args: str, password: str = DEFAULT_PASSWORD, start: bool = True, name: str = "", **options
    ) -> LotlineServer:
        """`options` go to LotlineServer (e.g. `tls=(cert, key)`)."""
        name = name or f"data{len(self.servers)}"
        server = LotlineServer(
            self.binary,
            self.base / name,
            log_path=self.base / f"{name}.log",
            args=args,
            password=password,
            **options,
        )
        self.servers.append(server)
        if start:
            server.start()
        return server

    def close(self) -> list[str]:
        problems: list[str] = []
        for server in self.servers:
            problems += server.shutdown()
        return problems


@pytest.fixture
def server_factory(lotline_bin, tmp_path):
    factory = ServerFactory(lotline_bin, tmp_path)
    yield factory
    problems = factory.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def module_server_factory(lotline_bin, tmp_path_factory, request):
    base = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    factory = ServerFactory(lotline_bin, base)
    yield factory
    problems = factory.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(server_factory) -> LotlineServer:
    """A running server with default settings on a fresh data dir."""
    return server_factory()


@pytest.fixture
def client(server):
    return server.client


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for server in list(ACTIVE_SERVERS):
            report.sections.append(
                (f"lotline output ({server.data_dir.name}, port {server.port})", server.log_tail())
            )
    return report
