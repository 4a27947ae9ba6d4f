"""Small canonical encodings shared by core modules.

Routing info (PRoPHET, :mod:`mesh.core.routing.prophet`) is ``[own, table]``: ``own`` the
route keys the sender receives on, ``table`` ``[[route key, q], ...]`` its delivery
predictabilities, each as ``q = round(-log2(p) * LOG_SCALE)``. A logarithmic fixed point
keeps aged predictabilities (down to about 1e-10) comparable between nodes, where a
linear one would round them to zero; it is an integer, so the encoding is canonical.
"""

from __future__ import annotations

import math
from typing import Any

from crypto.wire import pack
from mesh.core.errors import ConfigError, MalformedInput
from mesh.core.session import ROUTE_KEY_LEN

LOG_SCALE = 4096
MAX_Q = 1 << 20  # p >= 2 ** -256: far below any predictability a table keeps


def encode_p(p: float) -> int:
    """A predictability in (0, 1] as its logarithmic fixed point."""
    if not 0.0 < p <= 1.0:
        raise ConfigError("predictability out of (0, 1]")
    return min(MAX_Q, round(-math.log2(p) * LOG_SCALE))


def decode_p(q: int) -> float:
    return float(2.0 ** (-q / LOG_SCALE))


def pack_routing(own: list[bytes], table: list[tuple[bytes, float]]) -> bytes:
    """Routing info: own route keys and a predictability table."""
    return pack([own, [[k, encode_p(p)] for k, p in table]])


def _key(obj: Any) -> bytes:
    if not isinstance(obj, bytes) or len(obj) != ROUTE_KEY_LEN:
        raise MalformedInput(f"routing info: route keys are {ROUTE_KEY_LEN} bytes")
    return obj


def unpack_routing(
    obj: Any, max_own: int, max_table: int
) -> tuple[list[bytes], dict[bytes, float]]:
    """Check a decoded ``[own, table]``; raises :class:`MalformedInput` for anything else, including
    more than ``max_own`` own keys or ``max_table`` entries."""
    if not isinstance(obj, list) or len(obj) != 2:
        raise MalformedInput("routing info: expected [own, table]")
    own, table = obj
    if not isinstance(own, list) or len(own) > max_own:
        raise MalformedInput("routing info: own keys")
    if not isinstance(table, list) or len(table) > max_table:
        raise MalformedInput("routing info: table")
    out: dict[bytes, float] = {}
    for entry in table:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or type(entry[1]) is not int
            or not 0 <= entry[1] <= MAX_Q
        ):
            raise MalformedInput("routing info: table entry")
        out[_key(entry[0])] = decode_p(entry[1])
    return [_key(k) for k in own], out
