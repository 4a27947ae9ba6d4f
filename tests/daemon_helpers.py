"""Helpers for daemon tests: profiles without the Argon2id cost, daemons on loopback."""

from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path

from crypto.identity import ContactCard
from mesh.daemon.config import Config
from mesh.profile import Profile, new_profile

T0 = 1_767_225_600


def make_profile(root: Path, name: str, now: int) -> Profile:
    return new_profile(root / name.lower(), name, now, os.urandom)


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
