"""An OPC UA server for the collector tests (asyncua): variables of several
types under ns=2, with values the tests set through a client, and a status
the tests can make Bad.

usage: python opcua_peer.py PORT [--secure DIR | --bulk N]

With --secure, the server offers only Basic256Sha256 / SignAndEncrypt with a
self-signed certificate made in DIR, and only user USER with password
PASSWORD may log in.

Line2/Oven/Temperature (ns=2;s=Line2.Oven.Temperature) counts up by one
every 100 ms with the time as its source timestamp, and the server keeps its
history (HistoryRead raw). SIGUSR1 takes the network endpoint down (every
connection closed, no new ones) while the plant goes on counting and
historizing; SIGUSR2 brings it back.

With --bulk N, N more variables (ns=2;s=Bulk.<i>) all change every 500 ms,
so one publish response carries more than a thousand changes.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

from asyncua import Server, ua

# node name -> (variant type, initial value)
VARIABLES = {
    "Press1.Temperature": (ua.VariantType.Double, 21.5),
    "Press1.Pressure": (ua.VariantType.Float, 3.25),
    "Press1.Count": (ua.VariantType.Int32, 42),
    "Press1.Running": (ua.VariantType.Boolean, True),
    "Press1.State": (ua.VariantType.String, "RUNNING"),
}
NAMESPACE = "urn:lotline:test:press"
USER, PASSWORD = "historian", "s3cret-Pa55"
APP_URI = "urn:lotline:test:opcua-peer"


class OnlyOurUser:
    def get_user(self, iserver, username=None, password=None, certificate=None):
        from asyncua.crypto.permission_rules import User, UserRole

        if username == USER and password == PASSWORD:
            return User(role=UserRole.User, name=username)
        return None


async def secure(server: Server, directory: Path) -> None:
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key, cert = directory / "peer-key.pem", directory / "peer-cert.der"
    await setup_self_signed_certificate(
        key, cert, APP_URI, "127.0.0.1",
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "lotline test peer"},
    )
    await server.set_application_uri(APP_URI)
    await server.load_certificate(cert)
    await server.load_private_key(key)
    server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])


async def bulk(server: Server, idx: int, count: int) -> None:
    folder = await server.nodes.objects.add_object(ua.NodeId("Bulk", idx), "Bulk")
    nodes = [(await folder.add_variable(ua.NodeId(f"Bulk.{i}", idx), f"Bulk.{i}", 0.0)).nodeid for i in range(count)]
    sweep = 0
    while True:
        await asyncio.sleep(0.5)
        sweep += 1
        for node in nodes:
            await server.write_attribute_value(node, ua.DataValue(ua.Variant(float(sweep), ua.VariantType.Double)))


async def main(port: int, secure_dir: Path | None, bulk_count: int = 0) -> None:
    server = Server(user_manager=OnlyOurUser() if secure_dir else None)
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    if secure_dir:
        await secure(server, secure_dir)
    else:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace(NAMESPACE)
    assert idx == 2, idx
    press = await server.nodes.objects.add_object(ua.NodeId("Press1", idx), "Press1")
    for name, (variant, value) in VARIABLES.items():
        node = await press.add_variable(ua.NodeId(name, idx), name, ua.Variant(value, variant))
        await node.set_writable()
    line2 = await server.nodes.objects.add_object(ua.NodeId("Line2", idx), ua.QualifiedName("Line2", idx))
    oven = await line2.add_object(ua.NodeId("Line2.Oven", idx), ua.QualifiedName("Oven", idx))
    counter = await oven.add_variable(
        ua.NodeId("Line2.Oven.Temperature", idx), ua.QualifiedName("Temperature", idx), ua.Variant(0.0, ua.VariantType.Double)
    )
    async with server:
        await server.historize_node_data_change(counter, period=None, count=0)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(server.bserver.stop()))
        loop.add_signal_handler(signal.SIGUSR2, lambda: asyncio.ensure_future(server.bserver.start()))
        if bulk_count:
            asyncio.ensure_future(bulk(server, idx, bulk_count))
        count = 0
        while True:
            count += 1
            now = datetime.now(timezone.utc)
            await counter.write_value(
                ua.DataValue(ua.Variant(float(count), ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now)
            )
            await asyncio.sleep(0.1)


if __name__ == "__main__":
    option = sys.argv[2] if len(sys.argv) > 3 else None
    secure_dir = Path(sys.argv[3]) if option == "--secure" else None
    asyncio.run(main(int(sys.argv[1]), secure_dir, int(sys.argv[3]) if option == "--bulk" else 0))
