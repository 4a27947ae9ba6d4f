"""Double Ratchet: in order, out of order, duplicates, forgeries, bounds, forward secrecy."""

from __future__ import annotations

import random

import pytest

from crypto import ratchet as R
from crypto.errors import CryptoError
from crypto.noise import KeyPair

NOW = 1_700_000_000
AD = b"ad"


def pair(seed: int = 1) -> tuple[R.Ratchet, R.Ratchet, random.Random]:
    r = random.Random(seed)
    sk = r.randbytes(32)
    bob_kp = KeyPair.generate(r.randbytes)
    alice = R.Ratchet.init_alice(sk, bob_kp.public, r.randbytes)
    bob = R.Ratchet.init_bob(sk, bob_kp)
    return alice, bob, r


def test_conversation_both_ways() -> None:
    alice, bob, r = pair()
    for i in range(5):
        assert bob.decrypt(alice.encrypt(b"a%d" % i, AD), AD, NOW, r.randbytes) == b"a%d" % i
        assert alice.decrypt(bob.encrypt(b"b%d" % i, AD), AD, NOW, r.randbytes) == b"b%d" % i


def test_bob_cannot_send_before_first_message() -> None:
    _, bob, _ = pair()
    with pytest.raises(CryptoError):
        bob.encrypt(b"x", AD)


def test_out_of_order_and_across_ratchet_steps() -> None:
    alice, bob, r = pair()
    m = [alice.encrypt(b"%d" % i, AD) for i in range(5)]
    assert bob.decrypt(m[3], AD, NOW, r.randbytes) == b"3"
    assert bob.decrypt(m[0], AD, NOW, r.randbytes) == b"0"
    reply = bob.encrypt(b"r", AD)
    assert alice.decrypt(reply, AD, NOW, r.randbytes) == b"r"
    late = alice.encrypt(b"new chain", AD)
    assert bob.decrypt(late, AD, NOW, r.randbytes) == b"new chain"
    assert bob.decrypt(m[4], AD, NOW, r.randbytes) == b"4"
    assert bob.decrypt(m[1], AD, NOW, r.randbytes) == b"1"
    assert bob.decrypt(m[2], AD, NOW, r.randbytes) == b"2"
    assert bob.skipped == {}


def test_duplicate_is_refused_and_state_unchanged() -> None:
    alice, bob, r = pair()
    m = alice.encrypt(b"once", AD)
    assert bob.decrypt(m, AD, NOW, r.randbytes) == b"once"
    snapshot = (bob.rk, bob.ckr, bob.nr, dict(bob.skipped))
    with pytest.raises(CryptoError):
        bob.decrypt(m, AD, NOW, r.randbytes)
    assert (bob.rk, bob.ckr, bob.nr, dict(bob.skipped)) == snapshot


def test_tampered_message_and_wrong_ad_leave_state_untouched() -> None:
    alice, bob, r = pair()
    m = bytearray(alice.encrypt(b"secret", AD))
    m[-1] ^= 1
    with pytest.raises(CryptoError):
        bob.decrypt(bytes(m), AD, NOW, r.randbytes)
    assert bob.ckr is None
    assert bob.skipped == {}
    good = alice.encrypt(b"next", AD)
    with pytest.raises(CryptoError):
        bob.decrypt(good, b"other", NOW, r.randbytes)
    assert bob.decrypt(good, AD, NOW, r.randbytes) == b"next"


def test_forged_header_with_huge_counter_is_refused() -> None:
    alice, bob, r = pair()
    bob.decrypt(alice.encrypt(b"hi", AD), AD, NOW, r.randbytes)
    header = R.Header(alice.dhs.public, 0, R.MAX_SKIP + 5).encode()
    forged = bytes([len(header)]) + header + bytes(40)
    with pytest.raises(CryptoError):
        bob.decrypt(forged, AD, NOW, r.randbytes)
    assert len(bob.skipped) == 0


def test_skipped_keys_bounded_in_number_and_age(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(R, "MAX_STORED_SKIPPED", 10)
    alice, bob, r = pair()
    msgs = [alice.encrypt(b"%d" % i, AD) for i in range(30)]
    bob.decrypt(msgs[29], AD, NOW, r.randbytes)
    assert len(bob.skipped) == 10
    with pytest.raises(CryptoError):
        bob.decrypt(msgs[0], AD, NOW, r.randbytes)  # its key was dropped
    assert bob.decrypt(msgs[28], AD, NOW, r.randbytes) == b"28"
    bob.decrypt(alice.encrypt(b"tick", AD), AD, NOW + R.MAX_SKIPPED_AGE + 1, r.randbytes)
    assert bob.skipped == {}


def test_forward_secrecy_old_state_keys_do_not_open_new_and_new_do_not_open_old() -> None:
    alice, bob, r = pair()
    first = alice.encrypt(b"before", AD)
    bob.decrypt(first, AD, NOW, r.randbytes)
    # Seize Bob's state now: the key of the message already read is gone.
    seized = bob._copy()
    with pytest.raises(CryptoError):
        seized.decrypt(first, AD, NOW, r.randbytes)


def test_malformed_inputs() -> None:
    _, bob, r = pair()
    for bad in [b"", b"\x05abc", b"\xff" + bytes(300), b"\x03" + b"\xc1\xc1\xc1" + bytes(20)]:
        with pytest.raises(CryptoError):
            bob.decrypt(bad, AD, NOW, r.randbytes)
