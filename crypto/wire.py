"""Strict, canonical msgpack: the only way Steppe turns untrusted bytes into structures.

Rules enforced by :func:`strict_unpack`:

- the input length is checked against ``max_size`` *before* any parsing;
- every container and string has a bounded length (``max_bin_len``, ``max_str_len``,
  ``max_array_len``, ``max_map_len``), no ext types are accepted at all;
- map keys must be ``str`` or ``bytes`` and may not repeat;
- the bytes must be the canonical encoding of what they decode to (``packb`` of the result
  gives back exactly the input), so one value has exactly one encoding on the wire and ids
  computed over encodings cannot be malleated;
- trailing bytes after the single top-level object are rejected.

Any violation raises :class:`~crypto.errors.DecodeError` and nothing else.
"""

from __future__ import annotations

from typing import Any

import msgpack

from crypto.errors import DecodeError


def pack(obj: Any) -> bytes:
    """Canonical encoding: bin type for bytes, smallest integer and length forms."""
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


def _pairs_no_duplicates(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise DecodeError("duplicate map key")
    return out


def strict_unpack(
    data: bytes,
    *,
    max_size: int,
    max_bin_len: int | None = None,
    max_str_len: int = 256,
    max_array_len: int = 64,
    max_map_len: int = 32,
) -> Any:
    """Decode one canonical msgpack object under the limits above."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("input is not bytes")
    if len(data) > max_size:
        raise DecodeError(f"{len(data)} bytes exceeds the limit of {max_size}")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            object_pairs_hook=_pairs_no_duplicates,
            max_bin_len=max_size if max_bin_len is None else max_bin_len,
            max_str_len=max_str_len,
            max_array_len=max_array_len,
            max_map_len=max_map_len,
            max_ext_len=0,
            ext_hook=_no_ext,
        )
    except DecodeError:
        raise
    except (
        ValueError,
        TypeError,
        msgpack.ExtraData,
        msgpack.FormatError,
        msgpack.StackError,
        UnicodeDecodeError,
        RecursionError,
    ) as exc:
        raise DecodeError(f"malformed msgpack: {type(exc).__name__}") from exc
    try:
        canonical = pack(obj)
    except (ValueError, TypeError, OverflowError) as exc:  # pragma: no cover - defensive
        raise DecodeError("value cannot be re-encoded") from exc
    if canonical != data:
        raise DecodeError("non-canonical msgpack encoding")
    return obj


def _no_ext(code: int, data: bytes) -> Any:
    raise DecodeError("msgpack ext types are not allowed")


def expect_list(obj: Any, length: int, what: str) -> list[Any]:
    if not isinstance(obj, list) or len(obj) != length:
        raise DecodeError(f"{what}: expected an array of {length} items")
    return obj


def expect_seq(obj: Any, what: str, max_len: int) -> list[Any]:
    """An array of any length up to ``max_len``."""
    if not isinstance(obj, list) or len(obj) > max_len:
        raise DecodeError(f"{what}: expected an array of at most {max_len} items")
    return obj


def expect_bytes(
    obj: Any, what: str, *, size: int | None = None, max_size: int | None = None
) -> bytes:
    if not isinstance(obj, bytes):
        raise DecodeError(f"{what}: expected bytes")
    if size is not None and len(obj) != size:
        raise DecodeError(f"{what}: expected {size} bytes, got {len(obj)}")
    if max_size is not None and len(obj) > max_size:
        raise DecodeError(f"{what}: longer than {max_size} bytes")
    return obj


def expect_int(obj: Any, what: str, *, lo: int = 0, hi: int = 2**64 - 1) -> int:
    if not isinstance(obj, int) or isinstance(obj, bool) or not lo <= obj <= hi:
        raise DecodeError(f"{what}: expected an integer in [{lo}, {hi}]")
    return obj


def expect_str(obj: Any, what: str, *, max_len: int = 256) -> str:
    if not isinstance(obj, str) or len(obj) > max_len:
        raise DecodeError(f"{what}: expected a string of at most {max_len} characters")
    return obj
