"""Helpers for daemon tests: profiles without the Argon2id cost, daemons on loopback."""

from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path

from crypto.identity import ContactCard, Identity
from crypto.prekeys import PrekeyRing
from mesh.daemon.config import Config
from mesh.profile import Profile

T0 = 1_767_225_600


def make_profile(root: Path, name: str, now: int) -> Profile:
    path = root / name.lower()
    path.mkdir(mode=0o700)
    ident = Identity.generate(os.urandom)
    ring = PrekeyRing()
    ring.create(ident, now, os.urandom)
    return Profile(path, ident, name, now, ring, [], os.urandom(32))


def befriend(a: Profile, b: Profile, now: int) -> None:
    a.add_contact(ContactCard.decode(b.card.encode()), now)
    b.add_contact(ContactCard.decode(a.card.encode()), now)


def loopback_config(**changes: object) -> Config:
    """LAN on loopback only, a random discovery port (tests must not collide)."""
    base = Config(
        listen="127.0.0.1",
        port=0,
        interfaces=("lo",),
        beacon_interval=0.2,
        discovery_port=random.randint(20000, 60000),
        receipt_delay=(1, 2),
    )
    return replace(base, **changes)  # type: ignore[arg-type]
