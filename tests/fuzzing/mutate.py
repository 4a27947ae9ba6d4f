"""Mutators: bytes (truncate, extend, bit flips, interesting bytes, splices) and msgpack
trees (replace a node by a near or random value, drop, duplicate, grow lists), plus a
packer that picks wider, non-canonical msgpack forms on purpose.

All take a seeded :class:`random.Random`, so a case reproduces from its seed.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable, Sequence
from typing import Any

import msgpack

INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x90, 0xC0, 0xC1, 0xC4, 0xC7, 0xD4, 0xDC, 0xDE)
INTERESTING_INTS = (
    *(0, 1, 2, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1023, 1024, 1025),
    *(65535, 65536, (1 << 20), (1 << 20) + 1, 2**31 - 1, 2**32 - 1, 2**32, 2**63 - 1),
    *(2**64 - 1, -1, -32, -33, -128, -129, -(2**31), -(2**63)),
)
INTERESTING_LENGTHS = (0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 39, 40, 41, 64, 255, 256, 1024)


# ---- bytes ------------------------------------------------------------------------------


def truncate(data: bytes, r: random.Random) -> bytes:
    return data[: r.randrange(len(data))] if data else data


def extend(data: bytes, r: random.Random) -> bytes:
    return data + r.randbytes(r.choice((1, 2, 16, r.randrange(1, 300))))


def flip_bits(data: bytes, r: random.Random) -> bytes:
    if not data:
        return b"\x01"
    out = bytearray(data)
    for _ in range(r.choice((1, 1, 2, 3, 8))):
        i = r.randrange(len(out) * 8)
        out[i // 8] ^= 1 << (i % 8)
    return bytes(out)


def set_bytes(data: bytes, r: random.Random) -> bytes:
    if not data:
        return bytes([r.choice(INTERESTING_BYTES)])
    out = bytearray(data)
    for _ in range(r.choice((1, 2, 4))):
        out[r.randrange(len(out))] = r.choice(INTERESTING_BYTES)
    return bytes(out)


def insert_delete(data: bytes, r: random.Random) -> bytes:
    i = r.randrange(len(data) + 1)
    if r.random() < 0.5 and data:
        return data[:i] + data[i + r.randrange(1, 9) :]
    return data[:i] + r.randbytes(r.randrange(1, 9)) + data[i:]


def splice(a: bytes, b: bytes, r: random.Random) -> bytes:
    return a[: r.randrange(len(a) + 1)] + b[r.randrange(len(b) + 1) :]


BYTE_MUTATORS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncate": truncate,
    "extend": extend,
    "bitflip": flip_bits,
    "bytes": set_bytes,
    "insdel": insert_delete,
}


def mutate_bytes(data: bytes, r: random.Random, corpus: Sequence[bytes]) -> tuple[str, bytes]:
    """One byte-level mutation (or a splice with a corpus entry); its name and result."""
    if corpus and r.random() < 0.15:
        return "splice", splice(data, r.choice(corpus), r)
    name = r.choice(tuple(BYTE_MUTATORS))
    return name, BYTE_MUTATORS[name](data, r)


# ---- msgpack trees ------------------------------------------------------------------------


def random_value(r: random.Random, depth: int = 0) -> Any:
    choice = r.randrange(11 if depth < 2 else 8)
    if choice == 0:
        return None
    if choice == 1:
        return r.random() < 0.5
    if choice == 2:
        return r.choice((0.5, -0.0, math.inf, math.nan))
    if choice in (3, 4):
        return r.choice(INTERESTING_INTS)
    if choice in (5, 6):
        return _bytes_of(r, r.choice(INTERESTING_LENGTHS))
    if choice == 7:
        return "x" * r.choice((0, 1, 31, 32, 33, 128, 129, 256, 257)) + r.choice(("", "\u00e9"))
    if choice == 8:
        return [random_value(r, depth + 1) for _ in range(r.randrange(4))]
    if choice == 9:
        return {r.choice(("", "k", "version")): random_value(r, depth + 1)}
    return [r.randbytes(32) for _ in range(r.choice((0, 1, 2, 1025)))]


def _bytes_of(r: random.Random, n: int) -> bytes:
    kind = r.randrange(3)
    return bytes(n) if kind == 0 else (b"\xff" * n if kind == 1 else r.randbytes(n))


def near_value(value: Any, r: random.Random) -> Any:
    """A value close to ``value`` (same type, edge sizes), or sometimes a random one."""
    if r.random() < 0.25:
        return random_value(r)
    if isinstance(value, bool) or value is None:
        return r.choice((True, False, None, 0, 1))
    if isinstance(value, int):
        return r.choice((value + 1, value - 1, value * 2, -value, *INTERESTING_INTS))
    if isinstance(value, bytes):
        n = r.choice((0, len(value) - 1, len(value) + 1, *INTERESTING_LENGTHS))
        if r.random() < 0.5 and value:
            return flip_bits(value, r)
        return (value + bytes(max(0, n)))[: max(0, n)]
    if isinstance(value, str):
        return r.choice(("", value + "x", value[:-1], "x" * 33, "x" * 257, "\u00e9" * 40))
    if isinstance(value, list):
        return _near_list(value, r)
    return random_value(r)


def _near_list(value: list[Any], r: random.Random) -> Any:
    op = r.randrange(6)
    if op == 0 and value:
        i = r.randrange(len(value))
        return value[:i] + value[i + 1 :]
    if op == 1 and value:
        return [*value, r.choice(value)]
    if op == 2:
        return [*value, random_value(r)]
    if op == 3:
        return value[: r.randrange(len(value) + 1)]
    if op == 4 and value:
        return value * r.choice((2, 3, 1025 // len(value) + 1))
    return [value] if r.random() < 0.5 else {}


def _paths(obj: Any, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    out = [path]
    if isinstance(obj, list):
        for i, item in enumerate(obj[:64]):
            out += _paths(item, (*path, i))
    return out


def _replace(obj: Any, path: tuple[int, ...], new: Any) -> Any:
    if not path:
        return new
    copy = list(obj)
    copy[path[0]] = _replace(obj[path[0]], path[1:], new)
    return copy


def _get(obj: Any, path: tuple[int, ...]) -> Any:
    for i in path:
        obj = obj[i]
    return obj


def mutate_tree(obj: Any, r: random.Random, rounds: int = 0) -> Any:
    """``obj`` with 1-3 nodes replaced by near or random values."""
    for _ in range(rounds or r.choice((1, 1, 2, 3))):
        paths = _paths(obj)
        path = r.choice(paths[1:] if len(paths) > 1 and r.random() < 0.9 else paths)
        obj = _replace(obj, path, near_value(_get(obj, path), r))
    return obj


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


# Bytes of a packed mutation that are built: above every limit the harness decodes anything
# under (a link record, 64 KiB; a bundle, 1 MiB). A list grown three times over
# (``_near_list``) is cheap as a tree of shared references but may pack to gigabytes.
MAX_PACKED = 2 << 20
_PACKER = msgpack.Packer(use_bin_type=True)
_NEST_LIMIT = 511  # msgpack's own


def pack_or(obj: Any, fallback: bytes, limit: int = MAX_PACKED) -> bytes:
    """The canonical encoding of ``obj``, only its first ``limit`` bytes; ``fallback`` when
    msgpack cannot encode what was packed of it."""
    out = bytearray()
    try:
        _pack_into(obj, out, limit, 0)
    except (OverflowError, TypeError, ValueError):
        return fallback
    return bytes(out[:limit])


def _pack_into(obj: Any, out: bytearray, limit: int, depth: int) -> None:
    """Append what ``msgpack.packb`` would write for ``obj``, stopping past ``limit``."""
    if depth > _NEST_LIMIT:
        raise ValueError("recursion limit exceeded")
    if isinstance(obj, list | tuple):
        out += _PACKER.pack_array_header(len(obj))
        for item in obj:
            if len(out) >= limit:
                return
            _pack_into(item, out, limit, depth + 1)
    elif isinstance(obj, dict):
        out += _PACKER.pack_map_header(len(obj))
        for key, value in obj.items():
            if len(out) >= limit:
                return
            _pack_into(key, out, limit, depth + 1)
            _pack_into(value, out, limit, depth + 1)
    else:
        out += _PACKER.pack(obj)


# ---- a packer that may pick non-canonical forms -------------------------------------------


def _int_forms(v: int) -> list[bytes]:
    forms = []
    if 0 <= v < 128:
        forms.append(bytes([v]))
    if -32 <= v < 0:
        forms.append(struct.pack(">b", v))
    for code, fmt, lo, hi in (
        (0xCC, ">B", 0, 2**8),
        (0xCD, ">H", 0, 2**16),
        (0xCE, ">I", 0, 2**32),
        (0xCF, ">Q", 0, 2**64),
        (0xD0, ">b", -(2**7), 2**7),
        (0xD1, ">h", -(2**15), 2**15),
        (0xD2, ">i", -(2**31), 2**31),
        (0xD3, ">q", -(2**63), 2**63),
    ):
        if lo <= v < hi:
            forms.append(bytes([code]) + struct.pack(fmt, v))
    return forms


def _len_forms(n: int, fix: tuple[int, int] | None, codes: tuple[int, int, int]) -> list[bytes]:
    forms = [bytes([fix[0] | n])] if fix is not None and n < fix[1] else []
    for code, size in zip(codes, (1, 2, 4), strict=True):
        if code and n < 256**size:
            forms.append(bytes([code]) + n.to_bytes(size, "big"))
    return forms


def pack_loose(obj: Any, r: random.Random, wide: float = 0.3) -> bytes:
    """A valid msgpack encoding of ``obj`` that, with probability ``wide`` per value, uses
    a longer form than the canonical one (or float32, or str for bytes)."""

    def pick(forms: list[bytes]) -> bytes:
        return forms[0] if len(forms) == 1 or r.random() >= wide else r.choice(forms[1:])

    if obj is None:
        return b"\xc0"
    if isinstance(obj, bool):
        return b"\xc3" if obj else b"\xc2"
    if isinstance(obj, int):
        forms = _int_forms(obj)
        return pick(forms) if forms else b"\xc0"
    if isinstance(obj, float):
        f32 = b"\xca" + struct.pack(">f", obj)
        return pick([b"\xcb" + struct.pack(">d", obj), f32])
    if isinstance(obj, bytes):
        if r.random() < wide / 4:  # the str type for bytes
            return pick(_len_forms(len(obj), (0xA0, 32), (0xD9, 0xDA, 0xDB))) + obj
        return pick(_len_forms(len(obj), None, (0xC4, 0xC5, 0xC6))) + obj
    if isinstance(obj, str):
        raw = obj.encode()
        return pick(_len_forms(len(raw), (0xA0, 32), (0xD9, 0xDA, 0xDB))) + raw
    if isinstance(obj, list):
        head = pick(_len_forms(len(obj), (0x90, 16), (0, 0xDC, 0xDD)))
        return head + b"".join(pack_loose(x, r, wide) for x in obj)
    if isinstance(obj, dict):
        head = pick(_len_forms(len(obj), (0x80, 16), (0, 0xDE, 0xDF)))
        body = b"".join(pack_loose(k, r, wide) + pack_loose(v, r, wide) for k, v in obj.items())
        return head + body
    return b"\xc1"  # never used by msgpack: a reserved byte


_UNPACK_ERRORS = (
    ValueError,
    TypeError,  # a map keyed by an array
    msgpack.ExtraData,
    msgpack.FormatError,
    msgpack.StackError,
    RecursionError,
)


def mutate_encoded(data: bytes, r: random.Random, corpus: Sequence[bytes]) -> tuple[str, bytes]:
    """A msgpack document mutated as a tree (most often), loosely re-packed, or as bytes
    (always as bytes if it does not parse: it may be the product of an earlier mutation)."""
    roll = r.random()
    if roll >= 0.75:
        return mutate_bytes(data, r, corpus)
    try:
        tree = unpack(data)
    except _UNPACK_ERRORS:
        return mutate_bytes(data, r, corpus)
    try:
        if roll < 0.6:
            return "tree", pack_or(mutate_tree(tree, r), data)
        return "loose", pack_loose(tree, r)
    except RecursionError:  # nested deeper than our recursive walks go
        return mutate_bytes(data, r, corpus)
