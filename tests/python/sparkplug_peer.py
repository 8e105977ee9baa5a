"""Peers of the Sparkplug B tests: a mosquitto broker on a free loopback
port (with a user and password), and a Sparkplug B edge node on paho-mqtt
that publishes births, data by alias, deaths and answers rebirth requests
as the specification (Eclipse Sparkplug 3.0) asks.

The edge node encodes its payloads with the classes PyPI's `pysparkplug`
generated from the Eclipse Tahu schema, not from lotline's own `.proto`
subset, so a wrong field number on either side fails the tests.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import paho.mqtt.client as mqtt

NAMESPACE = "spBv1.0"

# Sparkplug B data types (specification 3.0, 6.4.16).
INT8, INT16, INT32, INT64 = 1, 2, 3, 4
UINT8, UINT16, UINT32, UINT64 = 5, 6, 7, 8
FLOAT, DOUBLE, BOOLEAN, STRING, DATETIME, TEXT = 9, 10, 11, 12, 13, 14


def payload_module():
    """The Tahu schema's generated classes (`Payload`, `Payload.Metric`...)."""
    from pysparkplug import _protobuf

    return _protobuf


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    assert found, "mosquitto is not installed (.ci/run installs it)"
    return found


class Broker:
    """mosquitto on `port`, with `user`/`password` required; with `tls`
    (port, certificate, key) a second listener speaks MQTT over TLS."""

    def __init__(self, directory: Path, port: int, user: str, password: str,
                 tls: Optional[tuple[int, Path, Path]] = None):
        self.directory, self.port, self.user, self.password = directory, port, user, password
        self.tls = tls
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Broker":
        self.directory.mkdir(parents=True, exist_ok=True)
        passwords = self.directory / "passwords"
        passwords.write_text(f"{self.user}:{self.password}\n")
        passwords.chmod(0o600)
        subprocess.run(["mosquitto_passwd", "-U", str(passwords)], check=True)
        config = self.directory / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {passwords}\n"
            "persistence false\n"
            # Run as root, mosquitto would become user `mosquitto`, who cannot
            # read the test's files; it stays who started it.
            f"user {getpass.getuser()}\n"
            "max_keepalive 60\n"
        )
        if self.tls:
            port, cert, key = self.tls
            with open(config, "a") as f:
                f.write(f"listener {port} 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n")
        log = open(self.directory / "mosquitto.log", "ab")
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(config), "-v"], stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                assert self.proc.poll() is None, (self.directory / "mosquitto.log").read_text()
                assert time.monotonic() < deadline, "mosquitto did not start"
                time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_text(self) -> str:
        return (self.directory / "mosquitto.log").read_text(errors="replace")

    def client(self, client_id: str) -> mqtt.Client:
        client = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv311)
        client.username_pw_set(self.user, self.password)
        return client


@dataclass
class Metric:
    """A metric an edge node declares in its births."""

    name: str
    datatype: int
    value: object
    alias: Optional[int] = None
    unit: Optional[str] = None


@dataclass
class Device:
    name: str
    metrics: list[Metric] = field(default_factory=list)


class EdgeNode:
    """A Sparkplug B edge node on `broker`: NBIRTH with bdSeq and
    `Node Control/Rebirth`, DBIRTHs, data by alias with `seq` 0..255, a
    will (NDEATH with the same bdSeq), and births again on a rebirth
    request."""

    def __init__(self, pb, broker: Broker, group: str, node: str, node_metrics: list[Metric], devices: list[Device]):
        self.pb, self.broker, self.group, self.node = pb, broker, group, node
        self.node_metrics, self.devices = node_metrics, devices
        self.bd_seq = 0
        self.seq = 0
        self.rebirth_requests = 0
        self.lock = threading.Lock()
        self.client: Optional[mqtt.Client] = None

    def topic(self, kind: str, device: Optional[str] = None) -> str:
        return "/".join([NAMESPACE, self.group, kind, self.node] + ([device] if device else []))

    def _next_seq(self) -> int:
        seq, self.seq = self.seq, (self.seq + 1) % 256
        return seq

    def metric(self, m: Metric, *, birth: bool, ts_ms: int, value=None, **flags):
        out = self.pb.Payload.Metric()
        if birth or m.alias is None:
            out.name = m.name
        if m.alias is not None:
            out.alias = m.alias
        out.timestamp = ts_ms
        if birth:
            out.datatype = m.datatype
            if m.unit:
                out.properties.keys.append("engUnit")
                prop = out.properties.values.add()
                prop.type = STRING
                prop.string_value = m.unit
        quality = flags.pop("quality", None)
        if quality is not None:
            out.properties.keys.append("Quality")
            prop = out.properties.values.add()
            prop.type = INT32
            prop.int_value = quality
        for flag, on in flags.items():
            setattr(out, flag, on)
        value = m.value if value is None else value
        if flags.get("is_null"):
            return out
        if m.datatype in (INT8, INT16, INT32, UINT8, UINT16, UINT32):
            out.int_value = value & 0xFFFFFFFF
        elif m.datatype in (INT64, UINT64, DATETIME):
            out.long_value = value & 0xFFFFFFFFFFFFFFFF
        elif m.datatype == FLOAT:
            out.float_value = value
        elif m.datatype == DOUBLE:
            out.double_value = value
        elif m.datatype == BOOLEAN:
            out.boolean_value = value
        else:
            out.string_value = value
        return out

    def _publish(self, topic: str, payload, qos: int = 0):
        info = self.client.publish(topic, payload.SerializeToString(), qos=qos)
        info.wait_for_publish(timeout=10)

    def births(self):
        """NBIRTH and every DBIRTH, seq starting at 0."""
        with self.lock:
            now = int(time.time() * 1000)
            self.seq = 0
            birth = self.pb.Payload(timestamp=now, seq=self._next_seq())
            birth.metrics.append(self.metric(Metric("bdSeq", INT64, self.bd_seq), birth=True, ts_ms=now))
            birth.metrics.append(self.metric(Metric("Node Control/Rebirth", BOOLEAN, False), birth=True, ts_ms=now))
            for m in self.node_metrics:
                birth.metrics.append(self.metric(m, birth=True, ts_ms=now))
            self._publish(self.topic("NBIRTH"), birth)
            for device in self.devices:
                dbirth = self.pb.Payload(timestamp=now, seq=self._next_seq())
                for m in device.metrics:
                    dbirth.metrics.append(self.metric(m, birth=True, ts_ms=now))
                self._publish(self.topic("DBIRTH", device.name), dbirth)

    def _on_message(self, client, userdata, message):
        payload = self.pb.Payload.FromString(message.payload)
        if any(m.name == "Node Control/Rebirth" and m.boolean_value for m in payload.metrics):
            self.rebirth_requests += 1
            # Answered from another thread: paho's callbacks must not block
            # on a publish of their own.
            threading.Thread(target=self.births, daemon=True).start()

    def connect(self) -> "EdgeNode":
        client = self.broker.client(f"edge-{self.group}-{self.node}")
        death = self.pb.Payload(timestamp=int(time.time() * 1000))
        death.metrics.append(self.metric(Metric("bdSeq", INT64, self.bd_seq), birth=True, ts_ms=death.timestamp))
        client.will_set(self.topic("NDEATH"), death.SerializeToString(), qos=1, retain=False)
        client.on_message = self._on_message
        connected = threading.Event()
        client.on_connect = lambda *args: connected.set()
        client.connect("127.0.0.1", self.broker.port, keepalive=30)
        client.loop_start()
        assert connected.wait(10), "the edge node did not connect"
        client.subscribe(self.topic("NCMD"), qos=1)
        self.client = client
        self.births()
        return self

    def data(self, values: dict[str, object], device: Optional[str] = None, ts_ms: Optional[int] = None,
             by_name: bool = False, skip_seq: bool = False, **flags):
        """NDATA (or DDATA of `device`) with `values` by metric name, sent
        by alias unless `by_name`; `skip_seq` leaves a gap before it."""
        metrics = self.node_metrics if device is None else next(d for d in self.devices if d.name == device).metrics
        declared = {m.name: m for m in metrics}
        with self.lock:
            if skip_seq:
                self._next_seq()
            ts = ts_ms if ts_ms is not None else int(time.time() * 1000)
            payload = self.pb.Payload(timestamp=ts, seq=self._next_seq())
            for name, value in values.items():
                m = declared[name]
                if by_name:
                    m = Metric(m.name, m.datatype, m.value)
                payload.metrics.append(self.metric(m, birth=False, ts_ms=ts, value=value, **dict(flags)))
            self._publish(self.topic("NDATA" if device is None else "DDATA", device), payload)

    def raw_data(self, payload, device: Optional[str] = None):
        """Publishes a payload as it is (its seq set to the next)."""
        with self.lock:
            payload.seq = self._next_seq()
            self._publish(self.topic("NDATA" if device is None else "DDATA", device), payload)

    def device_death(self, device: str):
        with self.lock:
            payload = self.pb.Payload(timestamp=int(time.time() * 1000), seq=self._next_seq())
            self._publish(self.topic("DDEATH", device), payload)

    def die(self):
        """Drops the connection without DISCONNECT: the broker publishes the
        will (NDEATH)."""
        client, self.client = self.client, None
        sock = client.socket()
        client.loop_stop()
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.bd_seq = (self.bd_seq + 1) % 256

    def close(self):
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None


class Listener:
    """A plain MQTT client collecting what arrives on `topics`."""

    def __init__(self, broker: Broker, *topics: str):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = broker.client(f"listener-{time.monotonic_ns()}")
        connected = threading.Event()
        self.client.on_connect = lambda *args: connected.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload), bool(m.retain)))
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert connected.wait(10)
        for topic in topics:
            self.client.subscribe(topic, qos=1)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()
