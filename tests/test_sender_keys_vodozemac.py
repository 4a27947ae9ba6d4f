"""crypto/megolm.py against vodozemac (matrix-org's Megolm in Rust, via its Python binding):
the sender chains of crypto/sender_keys.py are Megolm ratchets, so vodozemac's
``export_at(n)`` must hold exactly the ratchet value our code computes at index ``n``.

Session key layouts (vodozemac's ``megolm/session_keys.rs``): a session key is version 2,
index (4 bytes big-endian), ratchet (128), Ed25519 key (32), signature (64); an exported
key is version 1, index, ratchet, Ed25519 key. Both in unpadded base64.
"""

from __future__ import annotations

import base64
import random

import pytest
import vodozemac

from crypto import primitives as p
from crypto.megolm import MegolmRatchet
from tests.sender_keys_helpers import make_group

INDICES = [0, 1, 2, 254, 255, 256, 257, 511, 65535, 65536, 65537, 70000, 2**24 - 1, 2**24]
INDICES += [2**24 + 255, 2**24 + 65536 + 3, 2**31 + 12345, 2**32 - 2]


# RFC 4231 test cases 1, 2 and 6 (a key longer than SHA-256's block): the HMAC the ratchet
# rehashes with, as crypto.primitives gives it.
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
]


@pytest.mark.parametrize(("key", "data", "mac"), RFC4231)
def test_hmac_sha256_rfc4231(key: bytes, data: bytes, mac: str) -> None:
    assert p.hmac_sha256(key, data).hex() == mac


def _b64decode(s: str) -> bytes:
    return base64.b64decode(s + "=" * (-len(s) % 4))


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _theirs(exported: vodozemac.ExportedSessionKey | None) -> MegolmRatchet:
    assert exported is not None
    raw = _b64decode(exported.to_base64())
    assert raw[0] == 1
    assert len(raw) == 165
    return MegolmRatchet(int.from_bytes(raw[1:5], "big"), raw[5:133])


@pytest.fixture(scope="module")
def outbound() -> tuple[vodozemac.InboundGroupSession, MegolmRatchet]:
    session = vodozemac.GroupSession()
    raw = _b64decode(session.session_key.to_base64())
    assert raw[0] == 2
    assert len(raw) == 229
    start = MegolmRatchet(int.from_bytes(raw[1:5], "big"), raw[5:133])
    assert start.index == 0
    return vodozemac.InboundGroupSession(session.session_key), start


@pytest.mark.parametrize("n", INDICES)
def test_jump_matches_vodozemac(
    outbound: tuple[vodozemac.InboundGroupSession, MegolmRatchet], n: int
) -> None:
    inbound, start = outbound
    assert start.advanced_to(n) == _theirs(inbound.export_at(n))


def test_steps_match_vodozemac_and_the_jump(
    outbound: tuple[vodozemac.InboundGroupSession, MegolmRatchet],
) -> None:
    inbound, r = outbound
    for n in range(1, 600):  # crosses the R(2) boundaries at 256 and 512
        r = r.advanced()
        assert r == _theirs(inbound.export_at(n))
    rnd = random.Random(5)
    for n in sorted(rnd.randrange(600, 2**20) for _ in range(20)):
        assert r.advanced_to(n) == _theirs(inbound.export_at(n))


def test_vodozemac_continues_our_sender_chain() -> None:
    """Our group's sender key, imported into vodozemac, ratchets to what our sender uses."""
    a, _b = make_group(2)
    key = a.sender_key()
    exported = bytes([1]) + key.index.to_bytes(4, "big") + key.ratchet + key.signing_public
    inbound = vodozemac.InboundGroupSession.import_session(
        vodozemac.ExportedSessionKey(_b64encode(exported))
    )
    for _ in range(300):
        a.seal(b"x")
    now = a.sender_key()  # our chain after 300 messages
    assert now.index == 300
    assert _theirs(inbound.export_at(300)).data == now.ratchet
    assert _theirs(inbound.export_at(299)).data != now.ratchet
