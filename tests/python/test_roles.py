"""Users and roles through the running server: `lotline user add|list|
remove|passwd` (admin only, passwd also for oneself), what a reader and a
writer may do on every door (ADBC ingest and INSERT, the flush action, user
management, line protocol over HTTP), tokens of removed users, password
changes, persistence across a restart, and token expiry."""

from __future__ import annotations

import json
import os
import stat
import time

import adbc_driver_manager
import pyarrow.flight as flight
import pytest

from lotline_testlib import (
    ADMIN_USER,
    DEFAULT_PASSWORD,
    batch_for_tag,
    bearer_options,
    error_text,
    flight_sql_command,
    ingest_error,
    ns,
)

T0 = ns(2026, 6, 1)
READER, READER_PW = "rita", "reader-Pass-1"
WRITER, WRITER_PW = "wim", "writer-Pass-1"
INSERT = "INSERT INTO samples (tag, ts, value, quality) VALUES ('roles.sql', TIMESTAMP '2026-06-01T00:00:00Z', 1.0, 0)"


def add_user(server, name: str, role: str, password: str):
    out = server.cli("user", "add", name, "--role", role, "--password-stdin", input=password + "\n")
    assert out.returncode == 0, out.stderr
    assert f"added user '{name}' with role {role}" in out.stdout, out.stdout


def list_users(server, **login) -> dict:
    out = server.cli("user", "list", "--json", **login)
    assert out.returncode == 0, out.stderr
    return {u["name"]: u["role"] for u in json.loads(out.stdout)["users"]}


def denied(text: str, user: str, role: str, what: str):
    """A refusal that says who, as what, and what was refused."""
    assert "PermissionDenied" in text or "permission denied" in text.lower(), text
    assert f"user '{user}' (role {role}) may not {what}" in text, text


def flight_do(server, action: str, body: bytes, user: str, password: str) -> list:
    client = server.flight_client()
    try:
        opts = bearer_options(client, password, timeout=60, user=user)
        return list(client.do_action(flight.Action(action, body), opts))
    finally:
        client.close()


def line_write(server, user: str, password: str, line: str):
    headers = {"Authorization": f"Token {user}:{password}"}
    return server.http("/api/v2/write", "POST", line.encode(), headers)


@pytest.fixture(scope="module")
def roles_server(module_server_factory):
    server = module_server_factory()
    add_user(server, READER, "reader", READER_PW)
    add_user(server, WRITER, "writer", WRITER_PW)
    server.client.ingest(batch_for_tag("roles.base", 10, T0))
    return server


def test_user_list_shows_roles_and_no_secrets(roles_server):
    assert list_users(roles_server) == {ADMIN_USER: "admin", READER: "reader", WRITER: "writer"}
    table = roles_server.cli("user", "list")
    assert table.returncode == 0, table.stderr
    rows = [line.split() for line in table.stdout.splitlines()]
    assert rows == [["name", "role"], [ADMIN_USER, "admin"], [READER, "reader"], [WRITER, "writer"]]
    assert "argon2" not in table.stdout and READER_PW not in table.stdout


def test_reader_queries_and_cannot_write(roles_server):
    server = roles_server
    reader = server.connect(user=READER, password=READER_PW)
    before = server.client.count()
    assert reader.count("tag = 'roles.base'") == 10

    denied(ingest_error(reader, batch_for_tag("roles.reader", 3, T0)), READER, "reader", "write to table 'samples'")
    with pytest.raises(adbc_driver_manager.Error) as insert:
        reader.execute(INSERT)
    denied(error_text(insert.value), READER, "reader", "write to table 'samples'")
    with pytest.raises(flight.FlightUnauthorizedError) as flush:
        flight_do(server, "lotline.flush", b"", READER, READER_PW)
    denied(str(flush.value), READER, "reader", "flush write buffers")
    reply = line_write(server, READER, READER_PW, f"m f=1 {T0}\n")
    assert reply.status == 403, reply
    assert reply.json()["code"] == "forbidden"
    denied(reply.json()["message"], READER, "reader", "write to table 'samples'")
    for args in (("user", "list"), ("user", "remove", WRITER)):
        out = server.cli(*args, user=READER, password=READER_PW)
        assert out.returncode != 0, out.stdout
        denied(out.stderr, READER, "reader", "manage users")
    out = server.cli("user", "add", "eve", "--role", "admin", "--password-stdin",
                     user=READER, password=READER_PW, input="eve-Pass-123\n")
    assert out.returncode != 0
    denied(out.stderr, READER, "reader", "manage users")

    # Nothing of it was written, and no user appeared.
    assert server.client.count() == before
    assert "eve" not in list_users(server)


def test_writer_writes_and_cannot_manage_users(roles_server):
    server = roles_server
    writer = server.connect(user=WRITER, password=WRITER_PW)
    before = server.client.count()
    writer.ingest(batch_for_tag("roles.writer", 4, T0))
    writer.execute(INSERT)
    assert line_write(server, WRITER, WRITER_PW, f"m f=1 {T0}\n").status == 204
    report = json.loads(flight_do(server, "lotline.flush", b"", WRITER, WRITER_PW)[0].body.to_pybytes())
    assert report["segments_written"] >= 1
    assert server.client.count() == before + 6
    with pytest.raises(flight.FlightUnauthorizedError) as add:
        body = json.dumps({"name": "eve", "password": "eve-Pass-123", "role": "admin"}).encode()
        flight_do(server, "lotline.user.add", body, WRITER, WRITER_PW)
    denied(str(add.value), WRITER, "writer", "manage users")
    out = server.cli("user", "list", user=WRITER, password=WRITER_PW)
    assert out.returncode != 0
    denied(out.stderr, WRITER, "writer", "manage users")
    # Setting someone else's password is user management too.
    out = server.cli("user", "passwd", READER, "--password-stdin", user=WRITER, password=WRITER_PW, input="taken-Over-1\n")
    assert out.returncode != 0
    denied(out.stderr, WRITER, "writer", f"set the password of user '{READER}'")
    server.connect(user=READER, password=READER_PW).query("SELECT 1")


def test_custom_actions_are_listed(roles_server):
    client = roles_server.flight_client()
    try:
        names = {a.type for a in client.list_actions(bearer_options(client, DEFAULT_PASSWORD, timeout=30))}
    finally:
        client.close()
    for name in ("lotline.flush", "lotline.user.add", "lotline.user.list", "lotline.user.remove", "lotline.user.passwd"):
        assert name in names, names


def authed_call(server, opts):
    """A call that needs a valid token: planning a query."""
    client = server.flight_client()
    try:
        return client.get_flight_info(flight.FlightDescriptor.for_command(flight_sql_command("SELECT 1")), opts)
    finally:
        client.close()


def test_remove_passwd_and_persistence(server):
    add_user(server, "temp", "reader", "temp-Pass-1")
    add_user(server, "ops", "writer", "ops-Pass-12")
    client = server.flight_client()
    try:
        opts = bearer_options(client, "temp-Pass-1", timeout=30, user="temp")
    finally:
        client.close()
    authed_call(server, opts)

    # Removal: the existing token and new logins fail.
    out = server.cli("user", "remove", "temp")
    assert out.returncode == 0 and "removed user 'temp'" in out.stdout, out.stderr
    with pytest.raises(flight.FlightUnauthenticatedError):
        authed_call(server, opts)
    with pytest.raises(adbc_driver_manager.Error):
        server.connect(user="temp", password="temp-Pass-1").query("SELECT 1")
    out = server.cli("user", "remove", "temp")
    assert out.returncode != 0 and "no user 'temp'" in out.stderr, out.stderr

    # The last admin stays.
    out = server.cli("user", "remove", ADMIN_USER)
    assert out.returncode != 0 and "last admin" in out.stderr, out.stderr

    # passwd: one's own (old password out, its tokens ended), then an admin's reset.
    client = server.flight_client()
    try:
        ops_opts = bearer_options(client, "ops-Pass-12", timeout=30, user="ops")
    finally:
        client.close()
    out = server.cli("user", "passwd", "--password-stdin", user="ops", password="ops-Pass-12", input="ops-Pass-new\n")
    assert out.returncode == 0, out.stderr
    with pytest.raises(flight.FlightUnauthenticatedError):
        authed_call(server, ops_opts)
    with pytest.raises(adbc_driver_manager.Error):
        server.connect(user="ops", password="ops-Pass-12").query("SELECT 1")
    server.connect(user="ops", password="ops-Pass-new").query("SELECT 1")
    out = server.cli("user", "passwd", "ops", "--password-stdin", input="ops-Pass-reset\n")
    assert out.returncode == 0, out.stderr
    out = server.cli("user", "passwd", "--password-stdin", user="ops", password="ops-Pass-reset", input="short\n")
    assert out.returncode != 0 and "at least 8 characters" in out.stderr, out.stderr
    # No password source and no terminal: refused before anything is sent.
    out = server.cli("user", "add", "nopw", "--role", "reader")
    assert out.returncode != 0 and "--password-stdin" in out.stderr, out.stderr

    # Everything survives a restart; the file is private and holds only hashes.
    server.restart()
    assert list_users(server) == {ADMIN_USER: "admin", "ops": "writer"}
    writer = server.connect(user="ops", password="ops-Pass-reset")
    writer.ingest(batch_for_tag("ops.tag", 2, T0))
    users_file = server.data_dir / "users.json"
    assert stat.S_IMODE(os.stat(users_file).st_mode) == 0o600
    text = users_file.read_text()
    assert "ops-Pass-reset" not in text and "$argon2id$" in text
    assert not (server.data_dir / "users.json.tmp").exists()


def test_tokens_expire(server_factory):
    server = server_factory("--token-ttl-secs", "2")
    client = server.flight_client()
    try:
        opts = bearer_options(client, DEFAULT_PASSWORD, timeout=30)
        authed_call(server, opts)
        time.sleep(2.5)
        with pytest.raises(flight.FlightUnauthenticatedError) as expired:
            authed_call(server, opts)
        assert "expired" in str(expired.value), expired.value
        # A new login gets a new token.
        authed_call(server, bearer_options(client, DEFAULT_PASSWORD, timeout=30))
    finally:
        client.close()


def test_a_password_that_starts_with_a_dash_is_a_value(roles_server):
    # Generated passwords never start with '-', but a chosen one may.
    out = roles_server.cli("user", "add", "dash", "--role", "reader", "--password-stdin", input="-dash-Secret-1\n")
    assert out.returncode == 0, out.stderr
    out = roles_server.cli("sql", "SELECT 41 + 1 AS x", "--format", "csv", user="dash", password="-dash-Secret-1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "42"


FLIGHT_METHODS = ["ListFlights", "GetFlightInfo", "PollFlightInfo", "GetSchema", "DoGet", "DoPut",
                  "DoExchange", "DoAction", "ListActions"]
LOTLINE_METHODS = ["IngestService/Write", "IngestService/WriteContext", "AdminService/Flush",
                   "AdminService/Compact", "AdminService/Stats"]


def test_every_grpc_method_but_the_login_and_health_needs_a_caller(roles_server):
    """One gate in front of all gRPC services: any method, called with no
    credential or a forged one, is refused before its message is read (an
    empty message, not even valid for most of them, gets UNAUTHENTICATED);
    the handshake and Health are reached without one."""
    import grpc

    paths = [f"/arrow.flight.protocol.FlightService/{m}" for m in FLIGHT_METHODS]
    paths += [f"/lotline.v1.{m}" for m in LOTLINE_METHODS]
    with grpc.insecure_channel(f"127.0.0.1:{roles_server.port}") as channel:
        for path in paths:
            call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
            for metadata in ([], [("authorization", "Bearer forged")]):
                with pytest.raises(grpc.RpcError) as err:
                    call(b"", metadata=metadata, timeout=30)
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, (path, err.value)
        health = channel.unary_unary("/lotline.v1.AdminService/Health", request_serializer=None,
                                     response_deserializer=None)
        assert health(b"", timeout=30) is not None
        handshake = channel.unary_unary("/arrow.flight.protocol.FlightService/Handshake",
                                        request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as err:
            handshake(b"", timeout=30)  # reached: refused by the handshake itself, not the gate
        assert "Bearer <token from a Flight SQL handshake>" not in (err.value.details() or "")
