"""Personas: signing keys for public posts that are not linkable to the identity key.

A bulletin signed with the identity key tells every reader who wrote it (that is the
point of a post by a verified contact). A persona is a separate Ed25519 key made on this
device from the OS CSPRNG and kept only inside the encrypted keystore: a post signed with
it carries the persona's public key and nothing derived from the identity (no
fingerprint, no name, no prekey), so readers and relays cannot tell from the post whose
it is, and two personas of one person cannot be linked by their keys. What it does not
hide: a neighbour that receives a post first from this device (before it has spread) can
guess it was written here, as for any envelope; and a person who posts on the same topic
with both keys, or signs the same words, links them themselves. Readers show a persona's
posts as "unknown key ..." unless their verified contacts endorse them.
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto import primitives as p
from crypto.errors import CryptoError, DecodeError
from crypto.identity import clean_name
from crypto.wire import expect_bytes, expect_list, expect_seq

MAX_PERSONAS = 64


class PersonaError(ValueError):
    """One readable line: a bad or duplicate persona name, or too many."""


@dataclass(frozen=True, slots=True)
class Persona:
    name: str  # local only: never sent
    seed: bytes  # the Ed25519 seed

    @property
    def public(self) -> bytes:
        return p.ed25519_keypair(self.seed)[0]

    def to_list(self) -> list[object]:
        return [self.name, self.seed]

    @classmethod
    def from_list(cls, obj: object) -> Persona:
        name, seed = expect_list(obj, 2, "persona")
        if not isinstance(name, str):
            raise DecodeError("persona: expected a name")
        return cls(name, expect_bytes(seed, "persona seed", size=32))


def personas_from_list(obj: object) -> list[Persona]:
    return [Persona.from_list(x) for x in expect_seq(obj, "personas", MAX_PERSONAS)]


def new_persona(personas: list[Persona], name: str, rng: p.Rng) -> Persona:
    """A fresh persona named ``name`` (unique among ``personas``, case-insensitive)."""
    try:
        name = clean_name(name)
    except CryptoError as exc:
        raise PersonaError(str(exc)) from None
    if any(x.name.casefold() == name.casefold() for x in personas):
        raise PersonaError(f"a persona named {name!r} exists already")
    if len(personas) >= MAX_PERSONAS:
        raise PersonaError(f"at most {MAX_PERSONAS} personas")
    return Persona(name, rng(32))


def persona_named(personas: list[Persona], name: str) -> Persona:
    for x in personas:
        if x.name.casefold() == name.casefold():
            return x
    known = ", ".join(x.name for x in personas) or "none yet"
    raise PersonaError(f"no persona named {name!r} (personas: {known}; make one with "
                       "'steppe persona new NAME')")  # fmt: skip
