"""Strict canonical msgpack (crypto.wire): the gate every untrusted structure passes."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import DecodeError
from crypto.wire import pack, strict_unpack


def test_round_trip_of_allowed_values() -> None:
    value = [1, -5, 2**40, b"bytes", "text", {"k": [True, None]}, []]
    assert strict_unpack(pack(value), max_size=1000) == value


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x82\xa1a\x01\xa1a\x02", "duplicate"),  # {"a": 1, "a": 2}
        (b"\xcc\x01", "non-canonical"),  # 1 as uint8 instead of fixint
        (b"\xd9\x01a", "non-canonical"),  # "a" as str8 instead of fixstr
        (b"\xca\x3f\x80\x00\x00", "non-canonical"),  # float32 1.0
        (b"\xd4\x01\x00", "malformed"),  # ext type
        (b"\x01\x02", "malformed"),  # trailing data
        (b"\x92\x01", "malformed"),  # truncated array
        (b"\x81\x01\x02", "malformed"),  # integer map key
        (b"\xc1", "malformed"),  # reserved byte
        (b"\xa2\xff\xfe", "malformed"),  # invalid UTF-8
    ],
)
def test_rejections(raw: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        strict_unpack(raw, max_size=1000)


def test_limits() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        strict_unpack(pack(b"x" * 100), max_size=50)
    with pytest.raises(DecodeError):
        strict_unpack(pack(list(range(100))), max_size=1000, max_array_len=10)
    with pytest.raises(DecodeError):
        strict_unpack(pack("y" * 300), max_size=1000, max_str_len=256)
    with pytest.raises(DecodeError):
        strict_unpack(pack(b"z" * 300), max_size=1000, max_bin_len=100)
    with pytest.raises(DecodeError):
        strict_unpack(pack({str(i): i for i in range(40)}), max_size=1000)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(DecodeError):
        strict_unpack(b"\x91" * 100000 + b"\x00", max_size=200000)


@settings(max_examples=2000)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_decode_error(raw: bytes) -> None:
    try:
        value = strict_unpack(raw, max_size=1000)
    except DecodeError:
        return
    assert msgpack.packb(value, use_bin_type=True) == raw
