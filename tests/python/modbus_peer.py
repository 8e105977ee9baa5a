"""A Modbus TCP device for the collector tests (pymodbus): known values of
every data type and byte order in holding and input registers, coils and
discrete inputs; register WRITABLE is for the tests to change.

usage: python modbus_peer.py PORT
The layout is VALUES below; the tests import it to know what to expect.
"""

from __future__ import annotations

import asyncio
import struct
import sys

FORMATS = {"u16": ">H", "i16": ">h", "u32": ">I", "i32": ">i", "f32": ">f", "u64": ">Q", "i64": ">q", "f64": ">d"}

# (table, address, type, byte order, value)
VALUES = [
    ("holding", 0, "f32", "abcd", 1234.5),
    ("holding", 2, "f32", "cdab", -2.25),
    ("holding", 4, "f32", "badc", 0.375),
    ("holding", 6, "f32", "dcba", 100.125),
    ("holding", 8, "u16", "ab", 65000),
    ("holding", 9, "i16", "ab", -1234),
    ("holding", 10, "u32", "abcd", 4_000_000_000),
    ("holding", 12, "i32", "cdab", -123_456_789),
    ("holding", 14, "f64", "abcdefgh", 3.141592653589793),
    ("holding", 18, "u64", "abcdefgh", 2**40 + 7),
    ("holding", 22, "i64", "hgfedcba", -5),
    ("holding", 26, "u16", "ab", 2345),
    ("input", 0, "u16", "ab", 42),
    ("input", 1, "i32", "abcd", -7),
]
COILS = {0: True, 1: False, 5: True}
DISCRETE = {0: True}
WRITABLE = 30  # holding register the tests change through a client


def registers(data_type: str, order: str, value) -> list[int]:
    big_endian = struct.pack(FORMATS[data_type], value)
    wire = bytes(big_endian[ord(letter) - ord("a")] for letter in order)
    return [int.from_bytes(wire[i : i + 2], "big") for i in range(0, len(wire), 2)]


def tables() -> dict[str, list[int]]:
    out = {"holding": [0] * 64, "input": [0] * 64}
    for table, address, data_type, order, value in VALUES:
        words = registers(data_type, order, value)
        out[table][address : address + len(words)] = words
    return out


async def main(port: int) -> None:
    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
    from pymodbus.server import StartAsyncTcpServer

    words = tables()
    bits = lambda values: [values.get(i, False) for i in range(16)]  # noqa: E731
    # pymodbus' device context adds 1 to request addresses: blocks start at 1.
    device = ModbusDeviceContext(
        co=ModbusSequentialDataBlock(1, bits(COILS)),
        di=ModbusSequentialDataBlock(1, bits(DISCRETE)),
        hr=ModbusSequentialDataBlock(1, words["holding"]),
        ir=ModbusSequentialDataBlock(1, words["input"]),
    )
    context = ModbusServerContext(devices={1: device}, single=False)

    await StartAsyncTcpServer(context=context, address=("127.0.0.1", port))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
