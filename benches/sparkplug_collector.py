"""One Sparkplug B collector under load: metrics/s through mosquitto and the
added latency.

Edge nodes (subprocesses of this script, `--node`, paho-mqtt with the
Tahu classes of PyPI's pysparkplug) each publish one NBIRTH and one DBIRTH
of METRICS metrics with ISA-95 style names, then DDATA by alias, BATCH
metrics a message, every metric with its own timestamp, at QoS 0, at
`--rate` metrics/s each or as fast as they go; they answer rebirth
requests with their births. mosquitto (started here on a free loopback port) forwards them to
`lotline serve --collectors`, whose collector names the tags from a
template (`site1.{group}.{node}.{device}.{metric}`, 40-45 characters).
The script reports over a steady window:

- metrics/s the edge nodes published and samples/s lotline stored (equal:
  the publishers are the limit; fewer stored: the broker or lotline is; the
  CPU of each tells which);
- the latency from a metric's timestamp to the moment a query sees it:
  `last_values` polled for every tag, (end of the first poll that returned
  a new value) - ts, an upper bound; the poll's own duration beside it;
- the CPU of lotline, mosquitto and the edge nodes (1.0 = one core busy).

usage: python benches/sparkplug_collector.py --lotline target/release/lotline
       [--nodes 1] [--metrics 1000] [--batch 100] [--rate 0] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).with_name("compare")))
from compare import Server, follow_last_values, free_port, latency  # noqa: E402
from opcua_collector import cpu_seconds  # noqa: E402

GROUP = "bench"
DOUBLE, INT64, BOOLEAN = 10, 4, 11


def metric_name(i: int) -> str:
    # With the template: site1.bench.edgeN.press.area2/line07/... -> 40-45 chars.
    return f"area2/line{i % 20:02d}/cell{i % 7}/TT{i:05d}/PV"


def node(port: int, index: int, metrics: int, batch: int, rate: float, stats: Path) -> None:
    """One edge node: births (again on a rebirth request), then DDATA at
    `rate` metrics/s (0: as fast as paho publishes)."""
    import threading

    import paho.mqtt.client as mqtt
    from pysparkplug import _protobuf as pb

    client = mqtt.Client(client_id=f"bench-edge{index}", protocol=mqtt.MQTTv311)
    client.max_queued_messages_set(10_000)
    name = f"edge{index}"
    rebirth = threading.Event()
    client.on_message = lambda *args: rebirth.set()
    client.connect("127.0.0.1", port)
    client.subscribe(f"spBv1.0/{GROUP}/NCMD/{name}")
    client.loop_start()

    def births() -> int:
        """Publishes NBIRTH and DBIRTH; the seq that follows."""
        now = int(time.time() * 1000)
        birth = pb.Payload(timestamp=now, seq=0)
        birth.metrics.add(name="bdSeq", datatype=INT64, long_value=0, timestamp=now)
        birth.metrics.add(name="Node Control/Rebirth", datatype=BOOLEAN, boolean_value=False, timestamp=now)
        client.publish(f"spBv1.0/{GROUP}/NBIRTH/{name}", birth.SerializeToString(), qos=0).wait_for_publish()
        dbirth = pb.Payload(timestamp=now, seq=1)
        for i in range(metrics):
            dbirth.metrics.add(name=metric_name(i), alias=i + 1, datatype=DOUBLE, double_value=0.0, timestamp=now)
        client.publish(f"spBv1.0/{GROUP}/DBIRTH/{name}/press", dbirth.SerializeToString(), qos=0).wait_for_publish()
        return 2

    topic = f"spBv1.0/{GROUP}/DDATA/{name}/press"
    # One payload per slice of the metrics, its timestamps and values set anew
    # for each message (upb's setters are C; the loop stays light).
    slices = []
    for start in range(0, metrics, batch):
        payload = pb.Payload()
        for i in range(start, min(start + batch, metrics)):
            payload.metrics.add(alias=i + 1, double_value=0.0, timestamp=0)
        slices.append(payload)
    seq, published, last_report, sweep, rebirths = births(), 0, time.monotonic(), 0, 0
    began = time.monotonic()
    while True:
        sweep += 1
        for payload in slices:
            if rebirth.is_set():
                rebirth.clear()
                rebirths += 1
                seq = births()
            if rate:
                ahead = published / rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
            ts = int(time.time() * 1000)
            payload.timestamp, payload.seq = ts, seq
            for m in payload.metrics:
                m.timestamp, m.double_value = ts, float(sweep)
            info = client.publish(topic, payload.SerializeToString(), qos=0)
            while info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                time.sleep(0.001)
                info = client.publish(topic, payload.SerializeToString(), qos=0)
            seq = (seq + 1) % 256
            published += len(payload.metrics)
        if time.monotonic() - last_report >= 1:
            stats.write_text(json.dumps({"metrics": published, "at": time.time(), "rebirths": rebirths}))
            last_report = time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lotline", type=Path)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--metrics", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=0, help="metrics/s per edge node; 0: as fast as it goes")
    parser.add_argument("--node", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node is not None:
        node(args.port, args.node, args.metrics, args.batch, args.rate, args.stats)
        return

    work = Path(tempfile.mkdtemp(prefix="lotline-sparkplug-bench-"))
    port = free_port()
    (work / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 0\nmax_inflight_messages 0\n")
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = subprocess.Popen([mosquitto, "-c", str(work / "mosquitto.conf")],
                              stdout=open(work / "mosquitto.log", "wb"), stderr=subprocess.STDOUT)
    (work / "plant.toml").write_text(
        "[[collector]]\nname = \"bench-uns\"\nkind = \"sparkplug\"\n"
        f"endpoint = \"127.0.0.1:{port}\"\ngroups = [\"{GROUP}\"]\n"
        "tag_template = \"site1.{group}.{node}.{device}.{metric}\"\n")
    server = Server(args.lotline, work / "data", work / "lotline.log", ["--collectors", str(work / "plant.toml")])
    nodes = []
    try:
        time.sleep(0.5)
        server.start()
        query = server.querier()

        while query("SELECT state FROM collector_status").column(0)[0].as_py() != "connected":
            time.sleep(0.2)
        stats = [work / f"node{i}.json" for i in range(args.nodes)]
        for i in range(args.nodes):
            nodes.append(subprocess.Popen(
                [sys.executable, __file__, "--node", str(i), "--port", str(port), "--metrics", str(args.metrics),
                 "--batch", str(args.batch), "--rate", str(args.rate), "--stats", str(stats[i])],
                stdout=open(work / f"node{i}.log", "wb"), stderr=subprocess.STDOUT))
        total = args.nodes * args.metrics
        like = f"tag LIKE 'site1.{GROUP}.%'"
        deadline = time.monotonic() + 300
        while query(f"SELECT count(*) FROM last_values WHERE {like}").column(0)[0].as_py() < total:
            assert time.monotonic() < deadline, server.log_tail()
            assert all(n.poll() is None for n in nodes), (work / "node0.log").read_text()
            time.sleep(1)
        time.sleep(5)  # past the start-up burst

        def published() -> tuple[int, float]:
            reports = [json.loads(s.read_text()) for s in stats]
            return sum(r["metrics"] for r in reports), max(r["at"] for r in reports)

        def cpu() -> dict[str, float]:
            return {"lotline": cpu_seconds(server.proc.pid), "mosquitto": cpu_seconds(broker.pid),
                    "edge_nodes": sum(cpu_seconds(n.pid) for n in nodes)}

        count_sql = f"SELECT count(*) FROM samples WHERE {like}"
        start_pub, start_rows, start_t, start_cpu = published(), query(count_sql).column(0)[0].as_py(), time.time(), cpu()
        last_sql = f"SELECT tag, CAST(ts AS BIGINT) AS ts FROM last_values WHERE {like}"
        latencies, polls = follow_last_values(query, last_sql, args.seconds, pause=0.05)
        end_pub, end_rows, end_t, end_cpu = published(), query(count_sql).column(0)[0].as_py(), time.time(), cpu()
        window = end_t - start_t
        status = query("SELECT state, samples_written, resync_requests, errors, last_error FROM collector_status")
        report = {
            "edge_nodes": args.nodes,
            "metrics_per_node": args.metrics,
            "metrics_per_message": args.batch,
            "window_s": round(window, 1),
            "rate_asked_per_node": args.rate or "as fast as it goes",
            "published_metrics_per_s": round((end_pub[0] - start_pub[0]) / (end_pub[1] - start_pub[1])),
            "rebirths_answered": sum(json.loads(s.read_text()).get("rebirths", 0) for s in stats),
            "lotline_samples_per_s": round((end_rows - start_rows) / window),
            "cpu_cores": {k: round((end_cpu[k] - start_cpu[k]) / window, 2) for k in end_cpu},
            "latency_ts_to_queryable": latency(latencies),
            "poll_duration": latency(polls),
            "collector_status": status.to_pylist(),
        }
        print(json.dumps(report, indent=2, default=str))
    finally:
        for n in nodes:
            n.kill()
        server.stop()
        broker.kill()


if __name__ == "__main__":
    main()
