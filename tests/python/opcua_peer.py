"""An OPC UA server for the collector tests (asyncua): variables of several
types under ns=2, with values the tests set through a client, and a status
the tests can make Bad.

usage: python opcua_peer.py PORT
"""

from __future__ import annotations

import asyncio
import sys

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


async def main(port: int) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace(NAMESPACE)
    assert idx == 2, idx
    press = await server.nodes.objects.add_object(ua.NodeId("Press1", idx), "Press1")
    for name, (variant, value) in VARIABLES.items():
        node = await press.add_variable(ua.NodeId(name, idx), name, ua.Variant(value, variant))
        await node.set_writable()
    async with server:
        while True:
            await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
