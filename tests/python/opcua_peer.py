"""An OPC UA server for the collector tests (asyncua): variables of several
types under ns=2, with values the tests set through a client, and a status
the tests can make Bad.

usage: python opcua_peer.py PORT [--secure DIR]

With --secure, the server offers only Basic256Sha256 / SignAndEncrypt with a
self-signed certificate made in DIR, and only user USER with password
PASSWORD may log in.
"""

from __future__ import annotations

import asyncio
import sys
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


async def main(port: int, secure_dir: Path | None) -> None:
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
    async with server:
        while True:
            await asyncio.sleep(3600)


if __name__ == "__main__":
    secure_dir = Path(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--secure" else None
    asyncio.run(main(int(sys.argv[1]), secure_dir))
