"""A fixture MTConnect agent for the collector tests: an HTTP server on a
free loopback port that answers `/probe`, `/current` and
`/sample?from=N&count=C` with documents of the MTConnect standard's
structure (MTConnectDevices, MTConnectStreams, MTConnectError), from a
ring buffer of numbered observations with an `instanceId`, as a real agent
(cppagent) does. The test drives it: `add` observations, `restart` (a new
instance, sequences from 1), `stop`/`start` the HTTP side (an outage while
the buffer keeps filling), and a small buffer makes overruns easy.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape, quoteattr

DEVICE = "VMC-3Axis"


@dataclass(frozen=True)
class Item:
    id: str
    name: Optional[str]
    category: str  # SAMPLE | EVENT | CONDITION
    type: str
    component: tuple[str, str, str]  # (element, id, name) of its component
    units: Optional[str] = None


ITEMS = [
    Item("avail", None, "EVENT", "AVAILABILITY", ("Device", "d1", DEVICE)),
    Item("Xact", "Xact", "SAMPLE", "POSITION", ("Linear", "x", "X"), "MILLIMETER"),
    Item("Zact", "Zact", "SAMPLE", "POSITION", ("Linear", "z", "Z"), "MILLIMETER"),
    Item("Sspeed", "Sspeed", "SAMPLE", "ROTARY_VELOCITY", ("Rotary", "c", "C"), "REVOLUTION/MINUTE"),
    Item("exec", "execution", "EVENT", "EXECUTION", ("Path", "path1", "path")),
    Item("pcount", "part_count", "EVENT", "PART_COUNT", ("Path", "path1", "path")),
    Item("logic", "logic_cond", "CONDITION", "LOGIC_PROGRAM", ("Controller", "ctl", "controller")),
]


def iso(ts_ns: int) -> str:
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns // 1000:06d}Z"


def camel(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.split("_"))


@dataclass
class Observation:
    sequence: int
    item: Item
    ts_ns: int
    text: str
    state: Optional[str] = None  # conditions: Normal | Warning | Fault | Unavailable

    def xml(self) -> str:
        element = self.state if self.item.category == "CONDITION" else camel(self.item.type)
        attributes = (f'dataItemId="{self.item.id}" timestamp="{iso(self.ts_ns)}" sequence="{self.sequence}"'
                      + (f' name="{self.item.name}"' if self.item.name else ""))
        if self.item.category == "CONDITION":
            attributes += f' type="{self.item.type}"'
        return f"<{element} {attributes}>{escape(self.text)}</{element}>" if self.text else f"<{element} {attributes}/>"


class Agent:
    def __init__(self, port: int, buffer_size: int = 64):
        self.port, self.buffer_size = port, buffer_size
        self.lock = threading.Lock()
        self.items = {item.id: item for item in ITEMS}
        self.server: Optional[ThreadingHTTPServer] = None
        self.requests: list[str] = []
        self._reset(1_700_000_000)

    def _reset(self, instance_id: int, now: Optional[int] = None):
        self.instance_id = instance_id
        self.next_sequence = 1
        self.buffer: deque[Observation] = deque(maxlen=self.buffer_size)
        self.current: dict[str, Observation] = {}
        now = now or time.time_ns()
        for item in ITEMS:  # an agent starts with every item UNAVAILABLE
            if item.category == "CONDITION":
                self._add(item, now, "", "Unavailable")
            else:
                self._add(item, now, "UNAVAILABLE")

    def _add(self, item: Item, ts_ns: int, text: str, state: Optional[str] = None) -> Observation:
        observation = Observation(self.next_sequence, item, ts_ns, text, state)
        self.next_sequence += 1
        self.buffer.append(observation)
        self.current[item.id] = observation
        return observation

    def add(self, item_id: str, text: str, ts_ns: Optional[int] = None, state: Optional[str] = None) -> int:
        """Adds an observation; returns its sequence."""
        with self.lock:
            return self._add(self.items[item_id], ts_ns or time.time_ns(), text, state).sequence

    def add_many(self, observations: list[tuple[str, str, int]]):
        """Adds (item id, text, ts) observations at once (no request sees half)."""
        with self.lock:
            for item_id, text, ts_ns in observations:
                self._add(self.items[item_id], ts_ns, text)

    def restart(self, at_ns: int, values: dict[str, tuple[str, int]]):
        """A new agent process: a new instanceId, sequences from 1, every
        item UNAVAILABLE at `at_ns`, then `values` (item id: (text, ts)),
        all at once."""
        with self.lock:
            self._reset(self.instance_id + 1, at_ns)
            for item_id, (text, ts_ns) in values.items():
                self._add(self.items[item_id], ts_ns, text)

    # -- documents ---------------------------------------------------------

    def header(self) -> str:
        first = self.buffer[0].sequence if self.buffer else self.next_sequence
        return (f'<Header creationTime="{iso(time.time_ns())}" sender="fixture" instanceId="{self.instance_id}" '
                f'version="2.0.0" bufferSize="{self.buffer_size}" nextSequence="{self.next_sequence}" '
                f'firstSequence="{first}" lastSequence="{self.next_sequence - 1}"/>')

    def probe(self) -> str:
        components: dict[tuple, list[Item]] = {}
        for item in ITEMS:
            components.setdefault(item.component, []).append(item)

        def data_items(items):
            rows = []
            for i in items:
                name = f" name={quoteattr(i.name)}" if i.name else ""
                units = f" units={quoteattr(i.units)}" if i.units else ""
                rows.append(f'<DataItem category="{i.category}" id="{i.id}"{name} type="{i.type}"{units}/>')
            return "<DataItems>" + "".join(rows) + "</DataItems>"

        inner = "".join(
            f'<{element} id="{cid}" name="{name}">{data_items(items)}</{element}>'
            for (element, cid, name), items in components.items() if element != "Device"
        )
        own = data_items(components[("Device", "d1", DEVICE)])
        return ('<?xml version="1.0" encoding="UTF-8"?>'
                '<MTConnectDevices xmlns="urn:mtconnect.org:MTConnectDevices:2.0">'
                f'{self.header()}<Devices><Device id="d1" name="{DEVICE}" uuid="vmc-0001">{own}'
                f'<Components><Axes id="axes" name="base"><Components>{inner}</Components></Axes></Components>'
                '</Device></Devices></MTConnectDevices>')

    def streams(self, observations: list[Observation]) -> str:
        by_component: dict[tuple, dict[str, list[str]]] = {}
        for o in observations:
            section = {"SAMPLE": "Samples", "EVENT": "Events", "CONDITION": "Condition"}[o.item.category]
            by_component.setdefault(o.item.component, {}).setdefault(section, []).append(o.xml())
        streams = "".join(
            f'<ComponentStream component="{element}" componentId="{cid}" name="{name}">'
            + "".join(f"<{section}>{''.join(rows)}</{section}>" for section, rows in sections.items())
            + "</ComponentStream>"
            for (element, cid, name), sections in by_component.items()
        )
        return ('<?xml version="1.0" encoding="UTF-8"?>'
                '<MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:2.0">'
                f'{self.header()}<Streams><DeviceStream name="{DEVICE}" uuid="vmc-0001">{streams}'
                '</DeviceStream></Streams></MTConnectStreams>')

    def error(self, code: str, message: str) -> str:
        return ('<?xml version="1.0" encoding="UTF-8"?>'
                '<MTConnectError xmlns="urn:mtconnect.org:MTConnectError:2.0">'
                f'{self.header()}<Errors><Error errorCode="{code}">{escape(message)}</Error></Errors></MTConnectError>')

    def answer(self, path: str, query: dict) -> tuple[int, str]:
        with self.lock:
            self.requests.append(path)
            if path == "/probe":
                return 200, self.probe()
            if path == "/current":
                return 200, self.streams(sorted(self.current.values(), key=lambda o: o.sequence))
            if path == "/sample":
                first = self.buffer[0].sequence if self.buffer else self.next_sequence
                start = int(query.get("from", [first])[0])
                count = int(query.get("count", ["100"])[0])
                if start < first or start > self.next_sequence:
                    return 400, self.error(
                        "OUT_OF_RANGE", f"'from' must be between {first} and {self.next_sequence}")
                chosen = [o for o in self.buffer if o.sequence >= start][:count]
                next_sequence = chosen[-1].sequence + 1 if chosen else self.next_sequence
                document = self.streams(chosen).replace(
                    f'nextSequence="{self.next_sequence}"', f'nextSequence="{next_sequence}"', 1)
                return 200, document
            return 404, self.error("UNSUPPORTED", f"no request {path}")

    # -- HTTP --------------------------------------------------------------

    def start(self) -> "Agent":
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                status, body = agent.answer(url.path, parse_qs(url.query))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
