"""What a node remembers about bulletins beyond the ones it stores: the newest sequence of
every (persona, type, key) it has seen, and how fast each persona key is posting.

Theory of operation
-------------------
A bulletin is superseded by a newer post (a higher sequence) from the same persona, type
and key. Once a node has seen the newer one it must never store, relay or show the older
one again, also after the newer one has expired and left the store: otherwise a relay
that kept the old post could bring it back. So the slot's highest sequence is kept
(:class:`BulletinSlots`) until no older post of it can still be alive: the later of the
newest post's expiry and the latest expiry any envelope admitted now may carry
(``now + max_ttl``, plus the hour expiry is rounded to). The stored copy of a superseded
post is deleted at once (its id enters the seen-set).

Anyone can mint persona keys, so validly signed junk from throwaway keys is bounded by
the store's separate share for public records (:mod:`mesh.core.store`), not here; this
module adds a per-key rate (:data:`RATE` per second after a burst of :data:`BURST`), so
one key cannot fill that share alone, and bounds its own memory (:data:`MAX_SLOTS`,
:data:`MAX_KEYS`, oldest forgotten first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crypto.bulletin import Bulletin
from crypto.errors import DecodeError
from crypto.wire import (
    expect_bytes,
    expect_int,
    expect_list,
    expect_seq,
    expect_str,
    pack,
    strict_unpack,
)
from mesh.core.flood import TokenBucket

RATE = 10 / 3600  # bulletins per second per persona key...
BURST = 20.0  # ...after a burst of this many
MAX_SLOTS = 100_000
MAX_KEYS = 10_000

Slot = tuple[bytes, str, str]  # persona, type, key


@dataclass(slots=True)
class _Newest:
    sequence: int
    keep_until: int
    envelope_id: bytes  # the stored copy, if still stored


def _slot_id(slot: Slot) -> bytes:
    return pack(list(slot))


def _slot_of(ident: bytes) -> Slot:
    p, t, k = expect_list(_unpack(ident), 3, "bulletin slot")
    return expect_bytes(p, "persona", size=32), expect_str(t, "type"), expect_str(k, "key")


def _unpack(data: bytes) -> object:
    return strict_unpack(data, max_size=len(data), max_array_len=8, max_map_len=0)


class BulletinSlots:
    """``touch(slot id)`` is told of every slot that changed (each is a durable row)."""

    def __init__(self, max_ttl: int, touch: Callable[[bytes], None]) -> None:
        self.max_ttl = max_ttl
        self._slots: dict[Slot, _Newest] = {}
        self._rates: dict[bytes, TokenBucket] = {}
        self._touch = touch

    def refuse(self, b: Bulletin, now: int) -> str:
        """Why a verified bulletin must not be stored ("" if it may)."""
        newest = self._slots.get((b.persona, b.type, b.key))
        if newest is not None and b.sequence <= newest.sequence:
            return "superseded"
        bucket = self._rates.pop(b.persona, None) or TokenBucket(RATE, BURST)
        self._rates[b.persona] = bucket  # most recently used last
        while len(self._rates) > MAX_KEYS:
            del self._rates[next(iter(self._rates))]
        return "" if bucket.take(now) else "bulletin_rate"

    def stored(self, b: Bulletin, envelope_id: bytes, now: int) -> bytes | None:
        """Record a stored bulletin as its slot's newest; returns the id of the stored
        post it supersedes (the caller deletes it), if any."""
        slot = (b.persona, b.type, b.key)
        old = self._slots.pop(slot, None)
        keep = max(b.expiry, now + self.max_ttl + 3600)
        self._slots[slot] = _Newest(b.sequence, keep, envelope_id)
        self._touch(_slot_id(slot))
        while len(self._slots) > MAX_SLOTS:
            gone = next(iter(self._slots))
            del self._slots[gone]
            self._touch(_slot_id(gone))
        return old.envelope_id if old is not None else None

    def expire(self, now: int) -> None:
        for slot in [s for s, n in self._slots.items() if n.keep_until <= now]:
            del self._slots[slot]
            self._touch(_slot_id(slot))

    def __len__(self) -> int:
        return len(self._slots)

    def row_ids(self) -> list[bytes]:
        return [_slot_id(slot) for slot in self._slots]

    def row(self, ident: bytes) -> bytes | None:
        n = self._slots.get(_slot_of(ident))
        return None if n is None else pack([n.sequence, n.keep_until, n.envelope_id])

    def load_row(self, ident: bytes, obj: object) -> None:
        seq, keep, eid = expect_list(obj, 3, "bulletin slot")
        if len(self._slots) >= MAX_SLOTS:
            raise DecodeError("too many bulletin slots")
        self._slots[_slot_of(ident)] = _Newest(
            expect_int(seq, "sequence"), expect_int(keep, "keep until"), expect_bytes(eid, "id")
        )

    def to_list(self) -> list[object]:
        return [
            [p, t, k, n.sequence, n.keep_until, n.envelope_id]
            for (p, t, k), n in self._slots.items()
        ]

    def load(self, obj: object) -> None:
        self._slots = {}
        for raw in expect_seq(obj, "bulletin slots", MAX_SLOTS):
            p, t, k, seq, keep, eid = expect_list(raw, 6, "bulletin slot")
            slot = (
                expect_bytes(p, "persona", size=32),
                expect_str(t, "type"),
                expect_str(k, "key"),
            )
            self._slots[slot] = _Newest(
                expect_int(seq, "sequence"), expect_int(keep, "keep until"), expect_bytes(eid, "id")
            )
