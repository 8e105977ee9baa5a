"""TLS on both listeners (`--tls-cert` / `--tls-key`) with a certificate made
in the test: ADBC over grpc+tls:// trusting it, raw Flight, HTTPS for
/health and line protocol, and `lotline sql --tls-ca`; plain clients and
clients that do not trust the certificate are refused; bad TLS settings stop
the server at startup with a message that names the problem."""

from __future__ import annotations

import http.client
import subprocess

import adbc_driver_manager
import pyarrow.flight as flight
import pytest

from lotline_testlib import (
    ADMIN_USER,
    DEFAULT_PASSWORD,
    Client,
    batch_for_tag,
    flight_client,
    http_request,
    ns,
    self_signed_cert,
)

T0 = ns(2026, 5, 1)


@pytest.fixture
def tls_server(server_factory, tmp_path):
    return server_factory(tls=self_signed_cert(tmp_path / "tls"))


def test_adbc_flight_and_cli_over_tls(tls_server, tmp_path):
    server = tls_server
    assert server.uri.startswith("grpc+tls://")
    # ADBC over grpc+tls://, trusting the test's certificate: write and read.
    server.client.ingest(batch_for_tag("tls.tag", 7, T0))
    assert server.client.count("tag = 'tls.tag'") == 7
    # Raw Flight over TLS: the flush action.
    assert server.flush()["segments_written"] >= 1
    # The CLI with --tls-ca.
    out = server.cli("sql", "--format", "csv", "SELECT count(*) AS n FROM samples WHERE tag = 'tls.tag'")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["n", "7"], out.stdout

    # The CLI without --tls-ca does not trust a self-signed certificate.
    untrusted = subprocess.run(
        [str(server.binary), "sql", "--endpoint", server.uri, "--password", DEFAULT_PASSWORD, "SELECT 1"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr.lower(), untrusted.stderr

    # A certificate that is not the server's is no anchor either.
    other_ca, _ = self_signed_cert(tmp_path / "other")
    with pytest.raises(adbc_driver_manager.Error):
        Client(server.uri, DEFAULT_PASSWORD, tls_ca=other_ca).query("SELECT 1")


def test_plain_clients_are_refused(tls_server):
    server = tls_server
    plain = flight_client(server.port)
    try:
        with pytest.raises(flight.FlightError):
            plain.authenticate_basic_token(ADMIN_USER, DEFAULT_PASSWORD, flight.FlightCallOptions(timeout=10))
    finally:
        plain.close()
    with pytest.raises(adbc_driver_manager.Error):
        Client(f"grpc://127.0.0.1:{server.port}", DEFAULT_PASSWORD).query("SELECT 1")
    # Plain HTTP to the HTTPS listener gets no HTTP answer (a TLS alert at most).
    with pytest.raises((OSError, http.client.HTTPException)):
        http_request(f"http://127.0.0.1:{server.http_port}/health", timeout=10)


def test_https_health_and_line_protocol(tls_server):
    server = tls_server
    assert server.http_url.startswith("https://")
    health = server.http("/health")
    assert health.status == 200, health
    assert health.json()["status"] == "pass"
    token = {"Authorization": f"Token {ADMIN_USER}:{DEFAULT_PASSWORD}"}
    reply = server.http("/api/v2/write?precision=s", "POST", f"oven temp=200.5 {T0 // 10**9}\n".encode(), token)
    assert reply.status == 204, reply
    assert server.client.count("tag = 'oven.temp'") == 1
    # urllib checks the certificate: without the CA, no request gets through.
    with pytest.raises(OSError):
        http_request(f"{server.http_url}/health", timeout=10)


def serve_fails(lotline_bin, tmp_path, *args: str) -> str:
    """Starts `lotline serve` with `args`, which must stop it; returns its output."""
    proc = subprocess.run(
        [str(lotline_bin), "serve", "--data-dir", str(tmp_path / "data"),
         "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={"LOTLINE_ADMIN_PASSWORD": DEFAULT_PASSWORD, "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode != 0, f"serve {args} started:\n{proc.stdout}\n{proc.stderr}"
    return proc.stderr


def test_bad_tls_settings_stop_the_server(lotline_bin, tmp_path):
    cert, key = self_signed_cert(tmp_path / "a")
    _, other_key = self_signed_cert(tmp_path / "b")
    err = serve_fails(lotline_bin, tmp_path, "--tls-cert", str(cert))
    assert "tls_key" in err and "needs both" in err, err
    err = serve_fails(lotline_bin, tmp_path, "--tls-key", str(key))
    assert "tls_cert" in err and "needs both" in err, err
    err = serve_fails(lotline_bin, tmp_path, "--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(key))
    assert "--tls-cert" in err and "missing.pem" in err and "cannot read" in err, err
    err = serve_fails(lotline_bin, tmp_path, "--tls-cert", str(key), "--tls-key", str(key))
    assert "--tls-cert" in err and "no PEM CERTIFICATE" in err, err
    err = serve_fails(lotline_bin, tmp_path, "--tls-cert", str(cert), "--tls-key", str(cert))
    assert "--tls-key" in err and "private key" in err, err
    err = serve_fails(lotline_bin, tmp_path, "--tls-cert", str(cert), "--tls-key", str(other_key))
    assert "--tls-cert" in err and "is not the private key of" in err, err
