"""Noise handshakes against the public cacophony test vectors, plus adversarial cases."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from crypto.errors import AuthenticationError, DecodeError
from crypto.noise import HandshakeState, KeyPair

VECTORS = Path(__file__).parent / "vectors"


def _no_rng(n: int) -> bytes:
    raise AssertionError("vector test must not draw randomness")


def _load(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((VECTORS / f"{name}.json").read_text())
    return data


def test_noise_x_vector() -> None:
    v = _load("noise_X_25519_ChaChaPoly_BLAKE2b")
    h = bytes.fromhex
    init = HandshakeState(
        "X",
        True,
        h(str(v["init_prologue"])),
        rng=_no_rng,
        s=KeyPair.from_private(h(str(v["init_static"]))),
        e=KeyPair.from_private(h(str(v["init_ephemeral"]))),
        rs=h(str(v["init_remote_static"])),
    )
    resp = HandshakeState(
        "X",
        False,
        h(str(v["resp_prologue"])),
        rng=_no_rng,
        s=KeyPair.from_private(h(str(v["resp_static"]))),
    )
    messages = v["messages"]
    assert isinstance(messages, list)
    first = messages[0]
    ct = init.write_message(h(first["payload"]))
    assert ct.hex() == first["ciphertext"]
    assert resp.read_message(ct) == h(first["payload"])
    assert resp.rs == KeyPair.from_private(h(str(v["init_static"]))).public
    send, _ = init.split()
    _, recv = resp.split()
    # One-way pattern: every later message flows initiator -> responder.
    for msg in messages[1:]:
        ct = send.encrypt_with_ad(b"", h(msg["payload"]))
        assert ct.hex() == msg["ciphertext"]
        assert recv.decrypt_with_ad(b"", ct) == h(msg["payload"])


def _pair(pattern: str) -> tuple[HandshakeState, HandshakeState]:
    a_s, b_s = KeyPair.generate(os.urandom), KeyPair.generate(os.urandom)
    rs = b_s.public if pattern == "X" else None
    a = HandshakeState(pattern, True, b"p", rng=os.urandom, s=a_s, rs=rs)
    b = HandshakeState(pattern, False, b"p", rng=os.urandom, s=b_s)
    return a, b


def test_xx_round_trip_and_transport() -> None:
    a, b = _pair("XX")
    assert b.read_message(a.write_message(b"hello")) == b"hello"
    assert a.read_message(b.write_message(b"")) == b""
    assert b.read_message(a.write_message(b"done")) == b"done"
    assert a.finished
    assert b.finished
    assert a.handshake_hash == b.handshake_hash
    assert a.rs == b.s.public if b.s else False
    a_send, a_recv = a.split()
    b_send, b_recv = b.split()
    assert b_recv.decrypt_with_ad(b"", a_send.encrypt_with_ad(b"", b"x")) == b"x"
    assert a_recv.decrypt_with_ad(b"", b_send.encrypt_with_ad(b"", b"y")) == b"y"


def test_tampered_handshake_is_rejected() -> None:
    a, b = _pair("X")
    msg = bytearray(a.write_message(b"payload"))
    msg[40] ^= 1
    with pytest.raises(AuthenticationError):
        b.read_message(bytes(msg))


def test_truncated_handshake_is_rejected() -> None:
    a, b = _pair("X")
    msg = a.write_message(b"")
    with pytest.raises(DecodeError):
        b.read_message(msg[:20])


def test_different_prologue_fails() -> None:
    a_s, b_s = KeyPair.generate(os.urandom), KeyPair.generate(os.urandom)
    a = HandshakeState("X", True, b"one", rng=os.urandom, s=a_s, rs=b_s.public)
    b = HandshakeState("X", False, b"two", rng=os.urandom, s=b_s)
    with pytest.raises(AuthenticationError):
        b.read_message(a.write_message(b"x"))


def test_low_order_ephemeral_is_rejected() -> None:
    _, b = _pair("X")
    with pytest.raises(AuthenticationError):
        b.read_message(bytes(32) + bytes(64))


def test_replayed_transport_frame_fails() -> None:
    a, b = _pair("X")
    b.read_message(a.write_message(b""))
    send, _ = a.split()
    _, recv = b.split()
    frame = send.encrypt_with_ad(b"", b"once")
    assert recv.decrypt_with_ad(b"", frame) == b"once"
    with pytest.raises(AuthenticationError):
        recv.decrypt_with_ad(b"", frame)


def test_rekey_changes_key_on_both_sides() -> None:
    a, b = _pair("X")
    b.read_message(a.write_message(b""))
    send, _ = a.split()
    _, recv = b.split()
    old = send.k
    send.rekey()
    recv.rekey()
    assert send.k != old
    assert recv.decrypt_with_ad(b"", send.encrypt_with_ad(b"", b"z")) == b"z"


def test_noise_xx_vector() -> None:
    v = _load("noise_XX_25519_ChaChaPoly_BLAKE2b")
    h = bytes.fromhex
    init = HandshakeState(
        "XX",
        True,
        h(str(v["init_prologue"])),
        rng=_no_rng,
        s=KeyPair.from_private(h(str(v["init_static"]))),
        e=KeyPair.from_private(h(str(v["init_ephemeral"]))),
    )
    resp = HandshakeState(
        "XX",
        False,
        h(str(v["resp_prologue"])),
        rng=_no_rng,
        s=KeyPair.from_private(h(str(v["resp_static"]))),
        e=KeyPair.from_private(h(str(v["resp_ephemeral"]))),
    )
    messages = v["messages"]
    assert isinstance(messages, list)
    sides = [(init, resp), (resp, init), (init, resp)]
    for (writer, reader), msg in zip(sides, messages[:3], strict=True):
        ct = writer.write_message(h(msg["payload"]))
        assert ct.hex() == msg["ciphertext"]
        assert reader.read_message(ct) == h(msg["payload"])
    i_send, i_recv = init.split()
    r_send, r_recv = resp.split()
    # Transport messages keep alternating: responder, initiator, responder.
    for n, msg in enumerate(messages[3:]):
        send, recv = (r_send, i_recv) if n % 2 == 0 else (i_send, r_recv)
        ct = send.encrypt_with_ad(b"", h(msg["payload"]))
        assert ct.hex() == msg["ciphertext"]
        assert recv.decrypt_with_ad(b"", ct) == h(msg["payload"])
