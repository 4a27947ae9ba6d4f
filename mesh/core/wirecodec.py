"""Small canonical encodings shared by core modules."""

from __future__ import annotations

from typing import Any

from crypto.wire import pack

SCALE = 1_000_000


def pack_routing(own: list[bytes], table: list[tuple[bytes, float]]) -> bytes:
    """Routing info: own tags and a predictability table as fixed-point integers."""
    return pack([own, [[t, round(p * SCALE)] for t, p in table]])


def unpack_routing(obj: Any) -> tuple[list[bytes], dict[bytes, float]]:
    if not isinstance(obj, list) or len(obj) != 2:
        raise ValueError("routing info: expected [own, table]")
    own, table = obj
    if not isinstance(own, list) or not all(isinstance(t, bytes) and len(t) <= 16 for t in own):
        raise ValueError("routing info: own tags")
    out: dict[bytes, float] = {}
    if not isinstance(table, list):
        raise ValueError("routing info: table")
    for entry in table:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], bytes)
            or not isinstance(entry[1], int)
            or not 0 <= entry[1] <= SCALE
        ):
            raise ValueError("routing info: table entry")
        out[entry[0]] = entry[1] / SCALE
    return own, out
