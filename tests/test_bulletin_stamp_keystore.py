"""Bulletins, hashcash stamps and the passphrase keystore, with forgeries and tampering."""

from __future__ import annotations

import random
from typing import Any

import pytest

from crypto import keystore
from crypto.bulletin import Bulletin
from crypto.errors import (
    AuthenticationError,
    BadPassphrase,
    CryptoError,
    ExpiredError,
    SignatureError,
)
from crypto.stamp import leading_zero_bits, mint_stamp, verify_stamp
from crypto.wire import strict_unpack
from tests.helpers import NOW, seeded

FAST = keystore.KdfParams.named("interactive")


def _bulletin(seq: int = 1, body: bytes = b"Water at School 12") -> Bulletin:
    return Bulletin.create(
        seeded(1).randbytes(32),
        type="notice",
        key="water",
        sequence=seq,
        created=NOW,
        expiry=NOW + 3600,
        body=body,
    )


def test_bulletin_verifies_and_round_trips() -> None:
    b = _bulletin()
    b.verify(NOW)
    assert Bulletin.decode(b.encode()) == b


@pytest.mark.parametrize("field", ["type", "key", "sequence", "created", "expiry", "body"])
def test_bulletin_tampering_breaks_signature(field: str) -> None:
    from dataclasses import replace

    b = _bulletin()
    changes: dict[str, Any] = {
        "type": "alert",
        "key": "food",
        "sequence": 99,
        "created": NOW - 1,
        "expiry": NOW + 99999,
        "body": b"Water poisoned, avoid",
    }
    with pytest.raises(SignatureError):
        replace(b, **{field: changes[field]}).verify(NOW)


def test_bulletin_forged_by_other_persona() -> None:
    from dataclasses import replace

    real, fake = (
        _bulletin(),
        Bulletin.create(
            seeded(2).randbytes(32),
            type="notice",
            key="water",
            sequence=1,
            created=NOW,
            expiry=NOW + 3600,
            body=b"fake",
        ),
    )
    with pytest.raises(SignatureError):
        replace(fake, persona=real.persona).verify(NOW)


def test_bulletin_expiry_and_supersede() -> None:
    with pytest.raises(ExpiredError):
        _bulletin().verify(NOW + 3600)
    assert _bulletin(2).supersedes(_bulletin(1))
    assert not _bulletin(1).supersedes(_bulletin(2))


@pytest.mark.parametrize("raw", [b"", b"\x90", b"\x98" + b"\xc0" * 8, b"\xff" * 20000])
def test_bulletin_malformed(raw: bytes) -> None:
    with pytest.raises(CryptoError):
        Bulletin.decode(raw)


def test_stamp_mint_and_verify() -> None:
    eid = seeded(3).randbytes(32)
    stamp = mint_stamp(eid, 12, start=1000)
    assert verify_stamp(eid, stamp, 12)
    assert leading_zero_bits(eid, stamp) >= 12
    assert verify_stamp(eid, stamp, 0)
    # Bound to the id: a stamp does not move to another envelope.
    other = seeded(4).randbytes(32)
    hits = sum(verify_stamp(other, mint_stamp(eid, 12, start=s), 12) for s in range(0, 40000, 4000))
    assert hits <= 1
    assert not verify_stamp(eid, stamp[:7], 12)


def test_stamp_difficulty_is_real_work() -> None:
    eid = seeded(5).randbytes(32)
    tries = [
        int.from_bytes(mint_stamp(eid, 10, start=s), "big") - s for s in range(0, 10**7, 10**6)
    ]
    assert sum(tries) / len(tries) > 2**10 / 8  # expected ~1024 tries each


def test_keystore_round_trip_and_wrong_passphrase() -> None:
    r = seeded(6).randbytes
    blob, data_key = keystore.create(b"correct horse", b"secret keys", FAST, r)
    assert keystore.unlock(blob, b"correct horse") == (data_key, b"secret keys")
    with pytest.raises(BadPassphrase):
        keystore.unlock(blob, b"wrong")
    assert b"secret keys" not in blob


def test_keystore_replace_secrets_and_wipe() -> None:
    r = seeded(7).randbytes
    blob, data_key = keystore.create(b"pw", b"v1", FAST, r)
    blob2 = keystore.replace_secrets(blob, data_key, b"v2", r)
    assert keystore.unlock(blob2, b"pw")[1] == b"v2"
    wiped = keystore.wipe_slots(blob2, r)
    with pytest.raises(BadPassphrase):
        keystore.unlock(wiped, b"pw")


def test_keystore_tampered_ciphertext() -> None:
    r = seeded(8).randbytes
    blob, _ = keystore.create(b"pw", b"secret", FAST, r)
    flipped = bytearray(blob)
    ciphertext = strict_unpack(blob, max_size=1 << 20, max_array_len=16)[5]
    flipped[blob.index(ciphertext) + 7] ^= 1  # inside the encrypted secrets
    with pytest.raises(AuthenticationError):
        keystore.unlock(bytes(flipped), b"pw")


def test_record_encryption_binds_associated_data() -> None:
    r = seeded(9).randbytes
    key = r(32)
    rec = keystore.encrypt_record(key, b"contact list", b"contacts", r)
    assert keystore.decrypt_record(key, rec, b"contacts") == b"contact list"
    with pytest.raises(AuthenticationError):
        keystore.decrypt_record(key, rec, b"messages")
    with pytest.raises(CryptoError):
        keystore.decrypt_record(key, rec[:10], b"contacts")


def test_empty_passphrase_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        keystore.create(b"", b"x", FAST, seeded(1).randbytes)


def test_mint_finds_the_first_counter_from_start_with_the_work() -> None:
    """The search hashes the id once and copies the state per counter: it must find exactly
    what hashing each candidate from scratch finds."""
    rnd = random.Random(7)
    for difficulty in (0, 1, 6, 9):
        for _ in range(10):
            eid, start = rnd.randbytes(32), rnd.getrandbits(64)
            i = start
            while leading_zero_bits(eid, (i % 2**64).to_bytes(8, "big")) < difficulty:
                i += 1
            assert mint_stamp(eid, difficulty, start=start) == (i % 2**64).to_bytes(8, "big")
