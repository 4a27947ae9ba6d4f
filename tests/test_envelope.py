"""Envelope codec: table-driven cases and hypothesis properties."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import CryptoError
from crypto.padding import BUCKETS
from crypto.seal import open_first_contact
from mesh.core import envelope as E
from tests.helpers import NOW, party, sealed_envelope

ALICE, BOB = party(1), party(2)
SEALED = [sealed_envelope(ALICE, BOB, b"hello bob", seed=s) for s in range(3)]
SEALED_BIG = sealed_envelope(ALICE, BOB, b"x" * 2000, seed=9)


def _open(env: E.Envelope) -> bytes:
    return open_first_contact(
        BOB.identity, BOB.ring, env.body, header_ad=env.header(), now=NOW
    ).body


envelopes = st.builds(
    E.make,
    st.sampled_from(list(E.Kind)),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=16),
    st.sampled_from(BUCKETS).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    st.integers(0, 255),
    st.binary(min_size=8, max_size=8),
    st.sampled_from([b"", b"r" * 16]),
)


@settings(max_examples=200)
@given(envelopes)
def test_round_trip(env: E.Envelope) -> None:
    data = E.encode(env)
    assert E.decode(data) == env
    assert E.decode(data).id() == env.id()


@settings(max_examples=200)
@given(envelopes, st.data())
def test_any_truncation_is_rejected(env: E.Envelope, data: st.DataObject) -> None:
    raw = E.encode(env)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(E.EnvelopeError):
        E.decode(raw[:cut])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([*SEALED, SEALED_BIG]), st.data())
def test_any_bit_flip_in_sealed_body_is_rejected(env: E.Envelope, data: st.DataObject) -> None:
    bit = data.draw(st.integers(0, len(env.body) * 8 - 1))
    body = bytearray(env.body)
    body[bit // 8] ^= 1 << (bit % 8)
    tampered = E.make(env.kind, env.expiry_hour, env.tag, bytes(body), env.budget, env.stamp)
    assert tampered.id() != env.id()
    with pytest.raises(CryptoError):
        _open(tampered)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(SEALED),
    st.sampled_from(SEALED),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=16),
)
def test_header_spliced_onto_another_body_is_rejected(
    a: E.Envelope, b: E.Envelope, hour: int, tag: bytes
) -> None:
    spliced = E.make(E.Kind.FIRST_CONTACT, hour, tag, b.body, a.budget, a.stamp)
    if spliced.header() == b.header():
        return  # identical header: not a splice
    with pytest.raises(CryptoError):
        _open(spliced)


def test_original_opens() -> None:
    assert _open(SEALED[0]) == b"hello bob"
    assert _open(SEALED_BIG) == b"x" * 2000
    assert len(SEALED_BIG.body) == 8192


def test_budget_is_not_covered_by_id() -> None:
    env = SEALED[0]
    assert env.with_budget(1).id() == env.id()
    assert _open(env.with_budget(1)) == b"hello bob"


@settings(max_examples=2000)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_envelope_error(data: bytes) -> None:
    try:
        env = E.decode(data)
    except E.EnvelopeError:
        return
    assert E.encode(env) == data


@settings(max_examples=500)
@given(envelopes, st.data())
def test_mutated_encodings_never_crash(env: E.Envelope, data: st.DataObject) -> None:
    raw = bytearray(E.encode(env))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        out = E.decode(bytes(raw))
    except E.EnvelopeError:
        return
    assert E.encode(out) == bytes(raw)


GOOD = [1, 1, 500000, b"", b"", bytes(512), 3, bytes(8)]


def _packed(fields: object) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)  # type: ignore[no-any-return]


def _with(index: int, value: object) -> bytes:
    fields = list(GOOD)
    fields[index] = value
    return _packed(fields)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (_with(0, 2), E.UnknownVersion),
        (_with(1, 99), E.UnknownKind),
        (_packed(GOOD[:7]), E.MalformedEnvelope),
        (_packed([*GOOD, 0]), E.MalformedEnvelope),
        (_with(3, b"x" * 17), E.MalformedEnvelope),
        (_with(4, b"r" * 15), E.MalformedEnvelope),
        (_with(5, bytes(255)), E.MalformedEnvelope),
        (_with(6, 256), E.MalformedEnvelope),
        (_with(7, bytes(7)), E.MalformedEnvelope),
        (_with(2, -1), E.MalformedEnvelope),
        (_with(3, "text"), E.MalformedEnvelope),
        (_with(0, True), E.MalformedEnvelope),
        (_packed({"version": 1}), E.MalformedEnvelope),
        (_packed(GOOD) + b"\x00", E.MalformedEnvelope),
        (b"\xd4\x01\x00", E.MalformedEnvelope),  # ext type
        (b"\x98\xcc\x01" + _packed(GOOD)[2:], E.MalformedEnvelope),  # non-canonical int
        (b"\x98" + b"\x91" * 5000, E.MalformedEnvelope),  # deep nesting
        (b"", E.MalformedEnvelope),
    ],
)
def test_table_of_bad_frames(raw: bytes, error: type[E.EnvelopeError]) -> None:
    with pytest.raises(error):
        E.decode(raw)


def test_good_frame_in_table_decodes() -> None:
    assert E.decode(_packed(GOOD)).kind is E.Kind.FIRST_CONTACT


def test_size_limit_is_checked_before_parsing() -> None:
    huge = b"\xc6" + (2**31).to_bytes(4, "big")  # claims a 2 GiB bin
    with pytest.raises(E.MalformedEnvelope):
        E.decode(huge)
    with pytest.raises(E.MalformedEnvelope, match="exceeds"):
        E.decode(bytes(E.MAX_FRAME + 1))


def test_second_decoder_agrees() -> None:
    """Interop: a plain msgpack decoder reads our frames as the documented array."""
    env = SEALED[0]
    fields = msgpack.unpackb(E.encode(env), raw=False)
    assert fields == [1, 1, env.expiry_hour, b"", b"", env.body, 8, env.stamp]


def test_rebudget_equals_decode_with_budget_encode() -> None:
    env = E.make(E.Kind.SESSION, 500_000, b"t" * 8, bytes(512), 200, receipt=b"r" * 16)
    frame = E.encode(env)
    for budget in (0, 1, 127, 128, 255):
        again = E.rebudget(frame, budget)
        assert again == E.encode(env.with_budget(budget))
        assert E.decode(again).id() == env.id()
    with pytest.raises(E.MalformedEnvelope):
        E.rebudget(frame, 256)
    with pytest.raises(E.MalformedEnvelope):
        E.rebudget(frame[:-1], 3)
