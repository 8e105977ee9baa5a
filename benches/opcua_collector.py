"""One OPC UA collector under load: samples/s and the added latency.

An asyncua server (a subprocess of this script, `--peer`) holds ITEMS
Double variables and changes them in sweeps, each with its source time;
`lotline serve --collectors` monitors every one of them (one session, one
subscription). The script reports, over a steady window:

- the changes/s the peer made and the samples/s lotline stored (if the two
  are equal, the peer is the limit; if lotline stores fewer, lotline is);
- the latency from a value's source timestamp to the moment a query sees
  it: the script polls `last_values` for every mapped tag and, for each
  change it sees, takes (end of the first poll that returned it) - ts.
  That is an upper bound; the poll's own duration is reported beside it;
- the CPU both processes used over the window (1.0 = one core busy).

usage: python benches/opcua_collector.py --lotline target/release/lotline
       [--items 10000] [--seconds 60] [--publishing-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).with_name("compare")))
from compare import Server, follow_last_values, free_port, latency  # noqa: E402


def tag_name(i: int) -> str:
    # ISA-95 style, 36-38 characters.
    return f"site1.area2.line{i % 20:02d}.cell{i % 7}.TT{i:05d}.PV"


async def peer(port: int, items: int, stats: Path) -> None:
    """The OPC UA server: ITEMS variables changed in sweeps, as fast as
    asyncua goes; the number of changes made is written to STATS every
    second."""
    from asyncua import Server as UaServer, ua

    server = UaServer()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace("urn:lotline:bench")
    folder = await server.nodes.objects.add_object(ua.NodeId("Bench", idx), "Bench")
    nodes = [
        (await folder.add_variable(ua.NodeId(f"I{i}", idx), f"I{i}", 0.0)).nodeid for i in range(items)
    ]
    changes, last_report = 0, time.monotonic()
    async with server:
        sweep = 0
        while True:
            sweep += 1
            for node in nodes:
                now = datetime.now(timezone.utc)
                value = ua.DataValue(ua.Variant(float(sweep), ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now)
                await server.write_attribute_value(node, value)
                changes += 1
                if changes % 1000 == 0:
                    await asyncio.sleep(0)
                    if time.monotonic() - last_report >= 1:
                        stats.write_text(json.dumps({"changes": changes, "at": time.time()}))
                        last_report = time.monotonic()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mapping(port: int, items: int, publishing_ms: int, pki: Path) -> str:
    lines = [
        "[[collector]]",
        'name = "bench-ua"',
        'kind = "opcua"',
        f'endpoint = "opc.tcp://127.0.0.1:{port}/"',
        f"publishing_interval_ms = {publishing_ms}",
        f'pki_dir = "{pki}"',
        "backfill_max_secs = 0",
    ]
    for i in range(items):
        lines += ["[[collector.map]]", f'source = "ns=2;s=I{i}"', f'tag = "{tag_name(i)}"']
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lotline", type=Path, required=False)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--publishing-ms", type=int, default=100)
    parser.add_argument("--peer", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        asyncio.run(peer(args.peer, args.items, args.stats))
        return
    import subprocess

    work = Path(tempfile.mkdtemp(prefix="lotline-opcua-bench-"))
    port, stats = free_port(), work / "peer-stats.json"
    peer_proc = subprocess.Popen(
        [sys.executable, __file__, "--peer", str(port), "--items", str(args.items), "--stats", str(stats)],
        stdout=open(work / "peer.log", "wb"), stderr=subprocess.STDOUT,
    )
    (work / "plant.toml").write_text(mapping(port, args.items, args.publishing_ms, work / "pki"))
    server = Server(args.lotline, work / "data", work / "lotline.log", ["--collectors", str(work / "plant.toml")])
    try:
        while not stats.exists():
            assert peer_proc.poll() is None, (work / "peer.log").read_text()
            time.sleep(0.5)
        server.start()
        query = server.querier()

        count_sql = "SELECT count(*) AS n FROM samples WHERE tag LIKE 'site1.area2.%'"
        # Wait until every item has a sample: the subscription is complete.
        deadline = time.monotonic() + 300
        while query("SELECT count(*) FROM last_values WHERE tag LIKE 'site1.area2.%'").column(0)[0].as_py() < args.items:
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(1)
        time.sleep(5)  # past the start-up burst
        start_peer = json.loads(stats.read_text())
        start_rows, start_t = query(count_sql).column(0)[0].as_py(), time.time()
        start_cpu = (cpu_seconds(server.proc.pid), cpu_seconds(peer_proc.pid))
        last_sql = "SELECT tag, CAST(ts AS BIGINT) AS ts FROM last_values WHERE tag LIKE 'site1.area2.%'"
        latencies, polls = follow_last_values(query, last_sql, args.seconds)
        end_rows, end_t = query(count_sql).column(0)[0].as_py(), time.time()
        end_cpu = (cpu_seconds(server.proc.pid), cpu_seconds(peer_proc.pid))
        end_peer = json.loads(stats.read_text())
        stored = (end_rows - start_rows) / (end_t - start_t)
        made = (end_peer["changes"] - start_peer["changes"]) / (end_peer["at"] - start_peer["at"])
        status = query("SELECT state, samples_written, errors, last_error FROM collector_status").to_pylist()
        report = {
            "items": args.items,
            "publishing_interval_ms": args.publishing_ms,
            "window_s": round(end_t - start_t, 1),
            "peer_changes_per_s": round(made),
            "lotline_samples_per_s": round(stored),
            # CPU cores busy over the window (1.0 = one core all the time).
            "lotline_cpu_cores": round((end_cpu[0] - start_cpu[0]) / (end_t - start_t), 2),
            "peer_cpu_cores": round((end_cpu[1] - start_cpu[1]) / (end_t - start_t), 2),
            "latency_source_to_queryable": latency(latencies),
            "poll_duration": latency(polls),
            "collector_status": status,
        }
        print(json.dumps(report, indent=2, default=str))
    finally:
        server.stop()
        peer_proc.kill()


if __name__ == "__main__":
    main()
