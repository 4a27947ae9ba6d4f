"""What a node does with each kind of envelope, as one table (private to the node).

:data:`POLICY` maps every :class:`~mesh.core.envelope.Kind` to a :class:`KindPolicy`:

- ``public``: a signed public record, ranked above the rest in the store;
- ``verify``: the kind's own admission check (signatures, bulletin slots), run after the
  checks every envelope passes; it returns a :class:`~mesh.core.stats.Refusal` or None
  and may raise :class:`~crypto.errors.CryptoError` or an envelope error (refused as a
  bad signature);
- ``protect``: is it ours the moment it arrives (mail for a session we expect)?
- ``open``: deliver it if it is for us (a session message, a first contact with our hint);
- ``stored``: what follows storing one (a bulletin supersedes its slot's older post).

A new kind (a group message, an attachment chunk) is one more entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from crypto.bulletin import Bulletin
from crypto.prekeys import PrekeyRecord
from mesh.core.envelope import Envelope, Kind
from mesh.core.events import Action
from mesh.core.messages import read_bulletin_envelope, read_prekey_envelope
from mesh.core.stats import Refusal


class Checks(Protocol):
    """What the kinds' admission checks need (the node's admission part)."""

    def refuse_bulletin(self, b: Bulletin, eid: bytes, expiry: int, now: int) -> Refusal | None: ...

    def learn_prekey(self, rec: PrekeyRecord) -> None: ...

    def supersede(self, env: Envelope, eid: bytes, now: int) -> list[Action]: ...

    def refuse_chunk(self, eid: bytes) -> Refusal | None: ...


class Opener(Protocol):
    """What opening needs (the node's delivery part)."""

    def expects(self, tag: bytes) -> bool: ...

    def open_session(self, env: Envelope, eid: bytes, now: int) -> list[Action]: ...

    def open_first_contact(self, env: Envelope, eid: bytes, now: int) -> list[Action]: ...

    def awaits_chunk(self, eid: bytes) -> bool: ...

    def open_chunk(self, env: Envelope, eid: bytes, now: int) -> list[Action]: ...


Verify = Callable[[Checks, Envelope, bytes, int], Refusal | None]
Open = Callable[[Opener, Envelope, bytes, int], list[Action]]


@dataclass(frozen=True, slots=True)
class KindPolicy:
    public: bool
    verify: Verify
    protect: Callable[[Opener, Envelope, bytes], bool]
    open: Open
    stored: Callable[[Checks, Envelope, bytes, int], list[Action]]


def _no_check(_c: Checks, _env: Envelope, _eid: bytes, _now: int) -> Refusal | None:
    return None


def _verify_bulletin(c: Checks, env: Envelope, eid: bytes, now: int) -> Refusal | None:
    bulletin = read_bulletin_envelope(env)
    bulletin.verify(now)
    return c.refuse_bulletin(bulletin, eid, env.expiry, now)


def _verify_prekey(c: Checks, env: Envelope, _eid: bytes, now: int) -> Refusal | None:
    rec = read_prekey_envelope(env)
    rec.verify(rec.identity_key, now)
    c.learn_prekey(rec)
    return None


def _not_ours(_o: Opener, _env: Envelope, _eid: bytes) -> bool:
    return False


def _expected(o: Opener, env: Envelope, _eid: bytes) -> bool:
    return o.expects(env.tag)


def _awaited_chunk(o: Opener, _env: Envelope, eid: bytes) -> bool:
    return o.awaits_chunk(eid)


def _verify_chunk(c: Checks, _env: Envelope, eid: bytes, _now: int) -> Refusal | None:
    return c.refuse_chunk(eid)


def _open_chunk(o: Opener, env: Envelope, eid: bytes, now: int) -> list[Action]:
    return o.open_chunk(env, eid, now)


def _open_nothing(_o: Opener, _env: Envelope, _eid: bytes, _now: int) -> list[Action]:
    return []


def _open_session(o: Opener, env: Envelope, eid: bytes, now: int) -> list[Action]:
    return o.open_session(env, eid, now)


def _open_first_contact(o: Opener, env: Envelope, eid: bytes, now: int) -> list[Action]:
    return o.open_first_contact(env, eid, now)


def _nothing_after(_c: Checks, _env: Envelope, _eid: bytes, _now: int) -> list[Action]:
    return []


def _supersede(c: Checks, env: Envelope, eid: bytes, now: int) -> list[Action]:
    return c.supersede(env, eid, now)


POLICY: Mapping[Kind, KindPolicy] = MappingProxyType(
    {
        Kind.FIRST_CONTACT: KindPolicy(
            False, _no_check, _not_ours, _open_first_contact, _nothing_after
        ),
        Kind.SESSION: KindPolicy(False, _no_check, _expected, _open_session, _nothing_after),
        Kind.BULLETIN: KindPolicy(True, _verify_bulletin, _not_ours, _open_nothing, _supersede),
        Kind.PREKEY: KindPolicy(True, _verify_prekey, _not_ours, _open_nothing, _nothing_after),
        Kind.CHUNK: KindPolicy(False, _verify_chunk, _awaited_chunk, _open_chunk, _nothing_after),
    }
)
