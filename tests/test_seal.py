"""First-contact sealing: correctness and adversarial cases."""

from __future__ import annotations

import pytest

from crypto.errors import AuthenticationError, CryptoError, ExpiredError
from crypto.identity import Identity
from crypto.noise import HandshakeState, KeyPair
from crypto.padding import BUCKETS, pad
from crypto.prekeys import PrekeyRing
from crypto.seal import INNER_VERSION, OVERHEAD, PROLOGUE, open_first_contact, seal_first_contact
from crypto.wire import pack
from tests.helpers import NOW, party, seeded

HDR = b"header-bytes"


def seal(
    sender: Identity,
    recipient_party: object,
    body: bytes,
    *,
    seed: int = 5,
    now: int = NOW,
    size: int | None = None,
) -> bytes:
    from tests.helpers import Party

    assert isinstance(recipient_party, Party)
    r = seeded(seed)
    return seal_first_contact(
        sender,
        recipient_party.identity.public(),
        recipient_party.ring.keys[-1].record,
        body,
        now=now,
        msg_id=r.randbytes(16),
        content_type=1,
        header_ad=HDR,
        rng=r.randbytes,
        size=size,
    )


def test_recipient_opens_and_sees_sender() -> None:
    alice, bob = party(1), party(2)
    sealed = seal(alice.identity, bob, b"meet at six")
    opened = open_first_contact(bob.identity, bob.ring, sealed, header_ad=HDR, now=NOW)
    assert opened.body == b"meet at six"
    assert opened.sender.fingerprint == alice.identity.fingerprint
    assert opened.created == NOW
    assert len(sealed) == BUCKETS[0]  # a short first contact fits the smallest bucket


def test_output_is_bucket_sized_and_hides_length() -> None:
    alice, bob = party(1), party(2)
    assert len(seal(alice.identity, bob, b"a")) == len(seal(alice.identity, bob, b"a" * 100))
    assert len(seal(alice.identity, bob, b"a" * 900)) == 2048
    assert len(seal(alice.identity, bob, b"a" * 1800)) == 8192


def test_nothing_in_the_ciphertext_identifies_sender_or_recipient() -> None:
    alice, bob = party(1), party(2)
    sealed = seal(alice.identity, bob, b"x")
    public_bits = [
        alice.identity.sign_public,
        alice.identity.dh_public,
        alice.identity.fingerprint,
        bob.identity.sign_public,
        bob.identity.dh_public,
        bob.identity.fingerprint,
        bob.ring.keys[-1].record.public,
        bob.ring.keys[-1].prekey_id.to_bytes(4, "big"),
    ]
    for bits in public_bits:
        assert bits not in sealed
    # Two seals of the same message by the same people share nothing recognisable.
    again = seal(alice.identity, bob, b"x", seed=6)
    assert sealed[:32] != again[:32]


def test_third_party_cannot_open() -> None:
    alice, bob, eve = party(1), party(2), party(3)
    sealed = seal(alice.identity, bob, b"secret")
    with pytest.raises(AuthenticationError):
        open_first_contact(eve.identity, eve.ring, sealed, header_ad=HDR, now=NOW)


def test_wrong_header_does_not_open() -> None:
    alice, bob = party(1), party(2)
    sealed = seal(alice.identity, bob, b"x")
    with pytest.raises(AuthenticationError):
        open_first_contact(bob.identity, bob.ring, sealed, header_ad=b"other", now=NOW)


def _forge(
    attacker_static: KeyPair,
    claimed_sender: Identity,
    recipient: Identity,
    ring: PrekeyRing,
    body: bytes,
) -> bytes:
    """Build a well-formed X message by hand with chosen inner fields."""
    inner = pack(
        [
            INNER_VERSION,
            [claimed_sender.sign_public, claimed_sender.public().cert],
            recipient.fingerprint,
            NOW,
            bytes(16),
            1,
            body,
            b"",
        ]
    )
    hs = HandshakeState(
        "X",
        True,
        PROLOGUE + HDR,
        rng=seeded(7).randbytes,
        s=attacker_static,
        rs=ring.keys[-1].record.public,
    )
    return hs.write_message(pad(inner, 1024 - OVERHEAD))


def test_forged_sender_is_rejected() -> None:
    """Mallory claims to be Alice but cannot do the ss DH with Alice's static key."""
    alice, bob, mallory = party(1), party(2), party(3)
    forged = _forge(
        KeyPair(mallory.identity.dh_private, mallory.identity.dh_public),
        alice.identity,
        bob.identity,
        bob.ring,
        b"send money",
    )
    with pytest.raises(AuthenticationError, match="certificate"):
        open_first_contact(bob.identity, bob.ring, forged, header_ad=HDR, now=NOW)


def test_message_resealed_to_someone_else_is_rejected() -> None:
    """Bob takes Alice's inner payload (addressed to Bob) and seals it on to Carol."""
    alice, bob, carol = party(1), party(2), party(3)
    opened = open_first_contact(
        bob.identity, bob.ring, seal(alice.identity, bob, b"hi"), header_ad=HDR, now=NOW
    )
    # Bob can only authenticate as himself, and the inner payload still names Bob as recipient.
    inner = pack(
        [
            INNER_VERSION,
            [alice.identity.sign_public, alice.identity.public().cert],
            bob.identity.fingerprint,
            opened.created,
            opened.msg_id,
            1,
            opened.body,
            b"",
        ]
    )
    hs = HandshakeState(
        "X",
        True,
        PROLOGUE + HDR,
        rng=seeded(8).randbytes,
        s=KeyPair(bob.identity.dh_private, bob.identity.dh_public),
        rs=carol.ring.keys[-1].record.public,
    )
    resealed = hs.write_message(pad(inner, 1024 - OVERHEAD))
    with pytest.raises(AuthenticationError):
        open_first_contact(carol.identity, carol.ring, resealed, header_ad=HDR, now=NOW)
    # Even if Alice herself addressed the inner payload to Bob but sealed it to Carol's prekey:
    forged = _forge(
        KeyPair(alice.identity.dh_private, alice.identity.dh_public),
        alice.identity,
        bob.identity,
        carol.ring,
        b"hi",
    )
    with pytest.raises(AuthenticationError, match="someone else"):
        open_first_contact(carol.identity, carol.ring, forged, header_ad=HDR, now=NOW)


def test_expired_prekey_refused_by_sender() -> None:
    alice, bob = party(1), party(2)
    with pytest.raises(ExpiredError):
        seal(alice.identity, bob, b"x", now=bob.ring.keys[-1].record.expires)


def test_pruned_prekey_no_longer_opens() -> None:
    alice, bob = party(1), party(2)
    sealed = seal(alice.identity, bob, b"old")
    rec = bob.ring.keys[-1].record
    bob.ring.rotate(bob.identity, rec.expires, seeded(3).randbytes)
    assert len(bob.ring.keys) == 2
    # Within the grace period the old prekey still opens.
    open_first_contact(bob.identity, bob.ring, sealed, header_ad=HDR, now=NOW)
    assert bob.ring.prune(rec.expires + bob.ring.grace) == [rec.prekey_id]
    with pytest.raises(AuthenticationError):
        open_first_contact(bob.identity, bob.ring, sealed, header_ad=HDR, now=NOW)


def test_rotation_schedule() -> None:
    bob = party(2)
    first = bob.ring.keys[-1]
    r = seeded(4).randbytes
    assert bob.ring.rotate(bob.identity, NOW + 10, r) is None
    second = bob.ring.rotate(bob.identity, NOW + bob.ring.rotate_every, r)
    assert second is not None
    assert second.prekey_id != first.prekey_id
    assert bob.ring.current(NOW + bob.ring.rotate_every) is second
    second.record.verify(bob.identity.sign_public, NOW + bob.ring.rotate_every)


def test_message_from_the_future_is_rejected() -> None:
    alice, bob = party(1), party(2)
    sealed = seal(alice.identity, bob, b"x", now=NOW + 3 * 86400)
    with pytest.raises(AuthenticationError, match="future"):
        open_first_contact(bob.identity, bob.ring, sealed, header_ad=HDR, now=NOW)


@pytest.mark.parametrize("cut", [0, 1, 32, 96, 97, 200, 255])
def test_truncated_or_garbage_input(cut: int) -> None:
    alice, bob = party(1), party(2)
    sealed = seal(alice.identity, bob, b"x")
    with pytest.raises(CryptoError):
        open_first_contact(bob.identity, bob.ring, sealed[:cut], header_ad=HDR, now=NOW)
    with pytest.raises(CryptoError):
        open_first_contact(bob.identity, bob.ring, bytes(1024), header_ad=HDR, now=NOW)
