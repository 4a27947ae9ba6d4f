"""Shared test fixtures built from the real code: identities, prekeys, sealed envelopes."""

from __future__ import annotations

import random
from dataclasses import dataclass

from crypto.identity import Identity
from crypto.prekeys import PrekeyRing
from crypto.seal import seal_first_contact
from mesh.core import envelope as E

NOW = 1_700_000_000


def seeded(seed: int) -> random.Random:
    return random.Random(seed)


@dataclass
class Party:
    identity: Identity
    ring: PrekeyRing


def party(seed: int, now: int = NOW) -> Party:
    r = seeded(seed)
    ident = Identity.generate(r.randbytes)
    ring = PrekeyRing()
    ring.create(ident, now, r.randbytes)
    return Party(ident, ring)


def sealed_envelope(
    sender: Party, recipient: Party, body: bytes, *, seed: int = 0, now: int = NOW, ttl: int = 86400
) -> E.Envelope:
    r = seeded(seed)
    expiry_hour = E.coarse_expiry(now, ttl)
    header = E.header_bytes(E.Kind.FIRST_CONTACT, expiry_hour, b"")
    prekey = recipient.ring.keys[-1].record
    sealed = seal_first_contact(
        sender.identity,
        recipient.identity.public(),
        prekey,
        body,
        now=now,
        msg_id=r.randbytes(16),
        content_type=1,
        header_ad=header,
        rng=r.randbytes,
    )
    return E.make(E.Kind.FIRST_CONTACT, expiry_hour, b"", sealed, 8)
