"""Shared helpers for the lotline end-to-end tests.

Everything here talks to a real `lotline serve` process over its public
interfaces only: Flight SQL through the ADBC driver, plain Arrow Flight
(pyarrow.flight) for the admin action, and the files in the data directory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable, Optional, Sequence

import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
from adbc_driver_flightsql import dbapi as flight_sql

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_USER = "admin"
DEFAULT_PASSWORD = "lotline-test-Secret-42"
READY_TIMEOUT_S = float(os.environ.get("LOTLINE_READY_TIMEOUT", "60"))
STOP_TIMEOUT_S = 20.0
LOG_TAIL_CHARS = 20_000

# Servers that are running right now; conftest attaches their stderr to the
# report of a failing test.
ACTIVE_SERVERS: list["LotlineServer"] = []

NS_PER_S = 1_000_000_000

# Server flags that leave flushing to the test (the `lotline.flush` action).
MANUAL_FLUSH = ("--flush-rows", "1000000000", "--flush-age-secs", "86400")


# ---------------------------------------------------------------------------
# binary, ports, time
# ---------------------------------------------------------------------------


def binary_path() -> Path:
    env = os.environ.get("LOTLINE_BIN")
    if env:
        return Path(env).expanduser().resolve()
    target = os.environ.get("CARGO_TARGET_DIR") or str(
        Path.home() / ".cache" / "lotline" / "target"
    )
    target_path = Path(target).expanduser()
    if not target_path.is_absolute():
        # cargo resolves a relative CARGO_TARGET_DIR against its working
        # directory, which for our scripts is the repository root.
        target_path = REPO_ROOT / target_path
    return (target_path / "debug" / "lotline").resolve()


def eventually(check, timeout: float = 30.0, what: str = "condition", every: float = 0.1):
    """`check()`'s first truthy result, asked every `every` seconds; fails
    naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """UTC wall-clock time -> nanoseconds since the epoch."""
    t = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.timezone.utc)
    return int(t.timestamp()) * NS_PER_S


def sql_ts(ts_ns: int) -> str:
    """A SQL timestamp literal (UTC) for DataFusion."""
    secs, frac = divmod(ts_ns, NS_PER_S)
    t = dt.datetime.fromtimestamp(secs, tz=dt.timezone.utc)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += f".{frac:09d}"
    return f"TIMESTAMP '{text}Z'"


def day_of(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns // NS_PER_S, tz=dt.timezone.utc).strftime("%Y-%m-%d")


# ---------------------------------------------------------------------------
# building sample tables
# ---------------------------------------------------------------------------

TS_TYPE = pa.timestamp("ns", tz="UTC")


def samples_table(
    tags: Sequence[str],
    ts_ns: Sequence[int],
    values: Optional[Sequence[Optional[float]]] = None,
    *,
    quality: Optional[Sequence[int]] = None,
    text: Optional[Sequence[Optional[str]]] = None,
    equipment: Optional[Sequence[Optional[str]]] = None,
    work_order: Optional[Sequence[Optional[str]]] = None,
    lot: Optional[Sequence[Optional[str]]] = None,
    chunk_rows: Optional[int] = None,
) -> pa.Table:
    """Build an ingest table for `samples` with the columns that are given.

    `chunk_rows` splits the table into several record batches, which are sent
    as one ingest request (one stream) by ADBC.
    """
    cols = {
        "tag": pa.array(tags, pa.utf8()),
        "ts": pa.array(ts_ns, TS_TYPE),
    }
    if values is not None:
        cols["value"] = pa.array(values, pa.float64())
    if text is not None:
        cols["text"] = pa.array(text, pa.utf8())
    if quality is not None:
        cols["quality"] = pa.array(quality, pa.uint32())
    if equipment is not None:
        cols["equipment"] = pa.array(equipment, pa.utf8())
    if work_order is not None:
        cols["work_order"] = pa.array(work_order, pa.utf8())
    if lot is not None:
        cols["lot"] = pa.array(lot, pa.utf8())
    table = pa.table(cols)
    if chunk_rows:
        table = pa.Table.from_batches(table.to_batches(max_chunksize=chunk_rows))
    return table


def batch_for_tag(tag: str, rows: int, start_ns: int, step_ns: int = NS_PER_S, value_base: float = 0.0) -> pa.Table:
    """`rows` samples of one tag, values value_base + i (exact in float64)."""
    return samples_table(
        [tag] * rows,
        [start_ns + i * step_ns for i in range(rows)],
        [value_base + i for i in range(rows)],
        quality=[0] * rows,
    )


# ---------------------------------------------------------------------------
# data directory
# ---------------------------------------------------------------------------


def read_manifest(data_dir: Path) -> dict:
    path = Path(data_dir) / "manifest.json"
    if not path.exists():
        return {"tables": {}}
    with open(path, "rb") as f:
        return json.load(f)


def manifest_files(data_dir: Path, table: str = "samples") -> list[str]:
    """Relative paths of the live segments of `table` listed in the manifest."""
    entries = read_manifest(data_dir).get("tables", {}).get(table, []) or []
    files = []
    for entry in entries:
        assert isinstance(entry, dict) and "file" in entry, f"bad manifest entry: {entry!r}"
        files.append(entry["file"])
    return files


def wal_number(path: Path) -> int:
    nums = re.findall(r"\d+", path.stem)
    return int(nums[-1]) if nums else -1


def wal_files(data_dir: Path) -> list[Path]:
    """The WAL files, oldest first."""
    files = [p for p in (Path(data_dir) / "wal").glob("*.wal") if p.is_file()]
    return sorted(files, key=lambda p: (wal_number(p), p.stat().st_mtime_ns, p.name))


def wal_sizes(data_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in wal_files(data_dir)}


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------


def error_text(exc: BaseException) -> str:
    """Everything an exception says, including ADBC's details."""
    parts = [f"{type(exc).__name__}: {exc}"]
    for attr in ("status_code", "vendor_code", "sqlstate"):
        val = getattr(exc, attr, None)
        if val is not None:
            parts.append(f"{attr}={val}")
    details = getattr(exc, "details", None)
    if details:
        for item in details:
            try:
                key, value = item
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "replace")
                parts.append(f"{key}={value}")
            except Exception:  # pragma: no cover - diagnostics only
                parts.append(repr(item))
    return "\n".join(parts)


REASON_OPTION = "adbc.flight.sql.rpc.call_header.x-lotline-reason"


class Client:
    """An ADBC Flight SQL connection with small conveniences.

    `tls_ca`: a PEM file the driver trusts for a grpc+tls:// `uri`.
    """

    def __init__(self, uri: str, password: str, user: str = ADMIN_USER, tls_ca: Optional[Path] = None):
        self.uri = uri
        db_kwargs = {"username": user, "password": password}
        if tls_ca is not None:
            db_kwargs["adbc.flight.sql.client_option.tls_root_certs"] = Path(tls_ca).read_text()
        self.conn = flight_sql.connect(uri, db_kwargs=db_kwargs, autocommit=True)

    def query(self, sql: str) -> pa.Table:
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetch_arrow_table()

    def scalar(self, sql: str):
        table = self.query(sql)
        assert table.num_rows == 1, f"expected one row from {sql!r}, got {table.num_rows}"
        return table.column(0)[0].as_py()

    def count(self, where: str = "", table: str = "samples") -> int:
        sql = f"SELECT count(*) FROM {table}"
        if where:
            sql += f" WHERE {where}"
        return int(self.scalar(sql))

    def execute(self, sql: str) -> pa.Table:
        """Run a statement (INSERT ...) and drain its result."""
        return self.query(sql)

    def ingest(self, data, table: str = "samples"):
        with self.conn.cursor() as cur:
            return cur.adbc_ingest(table, data, mode="append")

    def set_reason(self, reason: str):
        """Sends `reason` as the x-lotline-reason header on every later call
        (needed to change existing records and to write corrections)."""
        self.conn.adbc_connection.set_options(**{REASON_OPTION: reason})

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


def flight_client(port: int, tls_ca: Optional[Path] = None) -> flight.FlightClient:
    """A raw Flight client; over TLS trusting `tls_ca` if one is given."""
    if tls_ca is None:
        return flight.FlightClient(f"grpc://127.0.0.1:{port}")
    return flight.FlightClient(f"grpc+tls://127.0.0.1:{port}", tls_root_certs=Path(tls_ca).read_bytes())


def bearer_options(
    client: flight.FlightClient, password: str, timeout: float = 120.0, user: str = ADMIN_USER
) -> flight.FlightCallOptions:
    token = client.authenticate_basic_token(user, password, flight.FlightCallOptions(timeout=10))
    return flight.FlightCallOptions(headers=[token], timeout=timeout)


@contextlib.contextmanager
def raw_flight(server: "LotlineServer", timeout: float = 30.0):
    """(pyarrow FlightClient, bearer call options) for raw calls to `server`."""
    client = flight_client(server.port)
    try:
        yield client, bearer_options(client, server.password, timeout=timeout)
    finally:
        client.close()


def flight_get(client: flight.FlightClient, command: bytes, options: flight.FlightCallOptions) -> tuple[flight.FlightInfo, pa.Table]:
    """GetFlightInfo for a command, then DoGet of every endpoint."""
    info = client.get_flight_info(flight.FlightDescriptor.for_command(command), options)
    assert len(info.endpoints) >= 1, "FlightInfo has no endpoint"
    tables = [client.do_get(ep.ticket, options).read_all() for ep in info.endpoints]
    return info, pa.concat_tables(tables)


def pb_varint(n: int) -> bytes:
    """A protobuf varint."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_len_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (strings, bytes, messages, packed)."""
    return pb_varint((number << 3) | 2) + pb_varint(len(payload)) + payload


def pb_any(type_name: str, inner: bytes) -> bytes:
    """google.protobuf.Any wrapping a Flight SQL command."""
    type_url = f"type.googleapis.com/arrow.flight.protocol.sql.{type_name}".encode()
    return pb_len_field(1, type_url) + pb_len_field(2, inner)


def flight_sql_command(query: str) -> bytes:
    """Serialize Any{CommandStatementQuery{query}} by hand (protobuf wire format)."""
    return pb_any("CommandStatementQuery", pb_len_field(1, query.encode()))


class HttpReply:
    """Status, headers and body of an HTTP response."""

    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"HTTP {self.status}: {self.body[:500]!r}"


def http_request(
    url: str,
    method: str = "GET",
    body: Optional[bytes] = None,
    headers: Optional[dict] = None,
    timeout: float = 60.0,
    tls_ca: Optional[Path] = None,
) -> HttpReply:
    """One HTTP request with the standard library; error statuses are returned, not raised.

    `tls_ca`: the PEM file to trust for an https:// `url`."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    context = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca is not None else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return HttpReply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        return HttpReply(err.code, err.headers, err.read())


def self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A fresh EC key and self-signed server certificate for `host` (and
    localhost), as PEM files cert.pem and key.pem in `directory`.

    Not a CA (basicConstraints CA:FALSE): rustls refuses a CA certificate as
    a server's own, so a client trusts it as an anchor and a leaf at once."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lotline test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# ---------------------------------------------------------------------------
# the server process
# ---------------------------------------------------------------------------


class ServerDied(RuntimeError):
    pass


class _AddressInUse(RuntimeError):
    pass


class LotlineServer:
    """One `lotline serve` process on a data directory; restartable.

    `tls`: (certificate, key) PEM files to serve both listeners over TLS
    with; the certificate must be self-signed, as clients here trust it as
    their CA (`tls_ca`). Background compaction is off unless
    `background_compaction` (`lotline compact` works either way)."""

    def __init__(
        self,
        binary: Path,
        data_dir: Path,
        log_path: Path,
        args: Iterable[str] = (),
        password: Optional[str] = DEFAULT_PASSWORD,
        tls: Optional[tuple[Path, Path]] = None,
        background_compaction: bool = False,
    ):
        self.binary = Path(binary)
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.args = [str(a) for a in args]
        if not background_compaction:
            # Tests count segments; only test_compaction lets the server
            # merge them on its own.
            self.args.append("--no-compaction")
        self.tls_ca: Optional[Path] = None
        if tls is not None:
            cert, key = tls
            self.args += ["--tls-cert", str(cert), "--tls-key", str(key)]
            self.tls_ca = Path(cert)
        self.password = password
        self.port: Optional[int] = None
        self.http_port: Optional[int] = None  # --http-listen (health, metrics, line protocol)
        self.proc: Optional[subprocess.Popen] = None
        self.run_log_offset = 0  # where the current run's output starts in the log
        self.starts = 0
        self._expected_exit = True
        self._clients: list[Client] = []
        self._client: Optional[Client] = None

    # -- addresses ---------------------------------------------------------

    @property
    def uri(self) -> str:
        scheme = "grpc+tls" if self.tls_ca else "grpc"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        scheme = "https" if self.tls_ca else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    def flight_client(self) -> flight.FlightClient:
        """A raw Flight client for this server (TLS if it serves TLS)."""
        return flight_client(self.port, self.tls_ca)

    def http(self, path: str, method: str = "GET", body: Optional[bytes] = None, headers: Optional[dict] = None) -> HttpReply:
        """A request to this server's HTTP listener (https if it serves TLS)."""
        return http_request(f"{self.http_url}{path}", method, body, headers, tls_ca=self.tls_ca)

    # -- logs --------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def run_log(self) -> str:
        """Output of the current (or last) run only."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.run_log_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        text = self.log_text()
        if len(text) > chars:
            text = "[...]\n" + text[-chars:]
        return text

    # -- lifecycle ---------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [
            str(self.binary),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--http-listen",
            f"127.0.0.1:{self.http_port}",
            *self.args,
        ]
        setpriv = shutil.which("setpriv")
        if setpriv:
            # Die with the test process even if it is killed hard.
            cmd = [setpriv, "--pdeathsig", "KILL", "--", *cmd]
        return cmd

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "LotlineServer":
        assert not self.running, "server already running"
        if self.port is None:
            self.port = free_port()
        if self.http_port is None:
            self.http_port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.password is not None:
            env["LOTLINE_ADMIN_PASSWORD"] = self.password
        env.setdefault("RUST_BACKTRACE", "1")
        last_error: Optional[Exception] = None
        for attempt in range(20):
            self.starts += 1
            with open(self.log_path, "ab") as log:
                banner = (
                    f"\n===== test harness: start #{self.starts} "
                    f"(port {self.port}, attempt {attempt + 1}) at {time.strftime('%H:%M:%S')} =====\n"
                )
                log.write(banner.encode())
                log.flush()
                self.run_log_offset = log.tell()
                self.proc = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=env,
                    cwd=str(self.data_dir.parent),
                )
            self._expected_exit = False
            if self not in ACTIVE_SERVERS:
                ACTIVE_SERVERS.append(self)
            try:
                self._wait_ready()
                return self
            except _AddressInUse as exc:
                # The port of a killed server can linger briefly; retry it.
                # The HTTP port may have been taken by someone else: pick anew.
                last_error = exc
                self.http_port = free_port()
                self._expected_exit = True
                time.sleep(0.5)
        raise ServerDied(f"could not bind port {self.port}: {last_error}")

    def _died_message(self, what: str) -> str:
        return (
            f"lotline {what} (exit code {self.proc.returncode if self.proc else None}); "
            f"command: {' '.join(self.command())}\n--- server output ---\n{self.run_log()[-LOG_TAIL_CHARS:]}"
        )

    def _check_alive(self):
        if self.proc.poll() is not None:
            out = self.run_log().lower()
            if "address already in use" in out or "addrinuse" in out:
                raise _AddressInUse(self.run_log()[-2000:])
            self._expected_exit = True
            raise ServerDied(self._died_message("exited before it was ready"))

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        # 1. TCP accept
        while True:
            self._check_alive()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerDied(self._died_message(f"did not accept TCP within {READY_TIMEOUT_S:.0f}s"))
            time.sleep(0.05)
        # 2. Flight handshake (the port may open before recovery is done)
        if self.password is None:
            return
        while True:
            self._check_alive()
            client = self.flight_client()
            try:
                client.authenticate_basic_token(
                    ADMIN_USER, self.password, flight.FlightCallOptions(timeout=5)
                )
                return
            except flight.FlightUnauthenticatedError as exc:
                raise AssertionError(
                    f"handshake with the test password was refused: {exc}\n{self.run_log()[-4000:]}"
                )
            except (flight.FlightError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise ServerDied(self._died_message(f"handshake kept failing: {exc}"))
            finally:
                client.close()
            time.sleep(0.1)

    def _close_clients(self):
        for c in self._clients:
            c.close()
        self._clients.clear()
        self._client = None

    def kill(self):
        """SIGKILL, like a power cut for the process (page cache survives)."""
        assert self.proc is not None
        self._expected_exit = True
        self._close_clients()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> Optional[int]:
        """Graceful stop (SIGTERM), SIGKILL if it hangs. Returns exit code."""
        self._close_clients()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._expected_exit = True
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=30)
        return self.proc.returncode

    def restart(self, kill: bool = False) -> "LotlineServer":
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def shutdown(self) -> list[str]:
        """Stop for good; return problems seen (unexpected exit, panics)."""
        problems = []
        if self.proc is not None and self.proc.poll() is not None and not self._expected_exit:
            problems.append(self._died_message("exited unexpectedly during the test"))
        self.stop()
        if self in ACTIVE_SERVERS:
            ACTIVE_SERVERS.remove(self)
        log = self.log_text()
        if "panicked at" in log:
            idx = log.index("panicked at")
            problems.append(
                f"lotline panicked (data dir {self.data_dir.name}):\n{log[max(0, idx - 2000): idx + 4000]}"
            )
        return problems

    # -- talking to it -----------------------------------------------------

    def connect(self, password: Optional[str] = None, user: str = ADMIN_USER) -> Client:
        c = Client(self.uri, self.password if password is None else password, user=user, tls_ca=self.tls_ca)
        self._clients.append(c)
        return c

    def cli(
        self,
        *args: str,
        user: str = ADMIN_USER,
        password: Optional[str] = None,
        input: Optional[str] = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess:
        """Runs `lotline <args>` against this server as `user` (the admin by
        default); `input` is its standard input. Returns the finished process
        (text output), whatever its exit code."""
        cmd = [
            str(self.binary),
            *args,
            "--endpoint",
            self.uri,
            "--user",
            user,
            "--password",
            self.password if password is None else password,
        ]
        if self.tls_ca:
            cmd += ["--tls-ca", str(self.tls_ca)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOTLINE_")}
        return subprocess.run(
            cmd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )

    @property
    def client(self) -> Client:
        """A shared connection, renewed after every restart."""
        if self._client is None:
            self._client = self.connect()
        return self._client

    def query(self, sql: str) -> pa.Table:
        return self.client.query(sql)

    def flush(self) -> dict:
        """Run the `lotline.flush` action; returns its JSON body."""
        client = self.flight_client()
        try:
            opts = bearer_options(client, self.password)
            results = list(client.do_action(flight.Action("lotline.flush", b""), opts))
        finally:
            client.close()
        assert len(results) == 1, f"lotline.flush returned {len(results)} results"
        body = json.loads(results[0].body.to_pybytes())
        assert isinstance(body, dict) and "segments_written" in body, f"unexpected flush result {body!r}"
        return body


def check_across_restarts(server: LotlineServer, check) -> None:
    """Runs `check()` now, after SIGKILL (WAL replay), after a flush, and
    after another SIGKILL (from segments)."""
    check()
    server.restart(kill=True)
    check()
    server.flush()
    check()
    server.restart(kill=True)
    check()


def ingest_error(client: Client, data, table: str = "samples") -> str:
    """Ingest that must fail; returns the error text."""
    try:
        client.ingest(data, table=table)
    except adbc_driver_manager.Error as exc:
        return error_text(exc)
    raise AssertionError(f"ingest of {getattr(data, 'num_rows', '?')} rows into {table!r} was accepted but must be rejected")
