"""The envelope index of a node (private to :mod:`mesh.core.node`): the store, plus our
own prekey envelope kept in memory beside it, and the one place an envelope is ranked
and registered (:meth:`EnvelopeIndex.register`).

The rank a store row carries is public facts only: the class of its kind (signed public
records above the rest, :data:`mesh.core._kinds.POLICY`), then the stamp work it carries
(junk with cheap stamps goes first). Whose envelopes are whose is known in memory only
(``PolicyStore.protect``). Our own prekey envelope holds our identity key, so it is never
a row (a seized device's store would name its owner): it lives in :attr:`published`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from crypto.bulletin import Bulletin
from crypto.errors import CryptoError
from crypto.prekeys import PrekeyRecord
from crypto.primitives import blake2b
from crypto.stamp import leading_zero_bits
from mesh.core._context import Context
from mesh.core._kinds import POLICY
from mesh.core.envelope import Envelope, EnvelopeError, Kind, decode, encode
from mesh.core.messages import read_bulletin_envelope, read_prekey_envelope
from mesh.core.riblt import Symbols, encode_set
from mesh.core.store import PUBLIC_RANK, Meta, PutResult, PutStatus, StoreItem
from mesh.core.sync import Range

PRIO_OTHER, PRIO_PUBLIC = 0, PUBLIC_RANK


class EnvelopeIndex:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.store = ctx.store
        # Our own prekey envelope: id -> (frame, expiry)
        self.published: dict[bytes, tuple[bytes, int]] = {}

    # ---- registering ------------------------------------------------------------------
    @staticmethod
    def rank(env: Envelope, eid: bytes) -> int:
        """Public facts only: signed public records above the rest, then stamp work."""
        cls = PRIO_PUBLIC if POLICY[env.kind].public else PRIO_OTHER
        return cls + min(255, leading_zero_bits(eid, env.stamp))

    def register(
        self, env: Envelope, eid: bytes, frame: bytes, source: bytes, protected: bool, now: int
    ) -> PutResult:
        """Store an envelope: ``frame`` is its canonical encoding, ``source`` whom the
        per-source quotas count it against, ``protected`` ours (kept longest)."""
        item = StoreItem(
            eid, frame, env.expiry, self.rank(env, eid), source, env.tag, env.receipt, env.budget
        )
        return self.store.put(replace(item, protected=protected), now)

    def store_local(self, env: Envelope, now: int) -> PutStatus:
        """Store an envelope we originate: protected (ahead of everything relayed, outside
        the per-source quotas), under a random source label and a public rank, so its row
        looks like any relayed one."""
        eid = env.id()
        return self.register(env, eid, encode(env), self._ctx.rng(16), True, now).status

    def publish(self, env: Envelope, now: int) -> None:
        """Keep our own prekey envelope (in memory only); drop expired ones."""
        self.published = {i: v for i, v in self.published.items() if v[1] > now}
        self.published[env.id()] = (encode(env), env.expiry)

    # ---- reading ----------------------------------------------------------------------
    def ours(self, envelope_id: bytes) -> bool:
        return envelope_id in self.published or self.store.is_protected(envelope_id)

    def lacks(self, envelope_id: bytes, now: int) -> bool:
        """Not held: not stored, not ours in memory, not delivered or purged."""
        return (
            envelope_id not in self.published
            and not self.store.has(envelope_id)
            and not self.store.is_seen(envelope_id, now)
        )

    def header(self, envelope_id: bytes) -> tuple[bytes, int] | None:
        """(tag, budget) of a held envelope, or None if it is not held."""
        if envelope_id in self.published:
            return b"", decode(self.published[envelope_id][0]).budget
        return self.store.header(envelope_id)

    def frame_of(self, envelope_id: bytes) -> bytes | None:
        published = self.published.get(envelope_id)
        return published[0] if published else self.store.get(envelope_id)

    def set_frame(self, envelope_id: bytes, frame: bytes, budget: int, expiry: int) -> None:
        """Replace a held envelope's frame (a new budget, a new stamp)."""
        if envelope_id in self.published:
            self.published[envelope_id] = (frame, expiry)
        else:
            self.store.replace_data(envelope_id, frame, budget)

    def stamp_bits(self, envelope_id: bytes) -> int:
        meta = self.store.meta(envelope_id)
        return 0 if meta is None else meta.priority % PRIO_PUBLIC  # see rank

    def ranked(self, ids: list[bytes], now: int) -> list[tuple[bytes, int]]:
        """``(id, expiry)`` of the held, unexpired ones among ``ids``, in the order this
        node offers and hands them over (:attr:`NodeConfig.offer_order`; "priority": its
        own and its contacts' first, then public records, then soonest expiry)."""
        order = self._ctx.config.offer_order
        salt = self._ctx.rng(8) if order == "random" else b""
        keyed: list[tuple[Any, int, bytes]] = []
        for i in ids:
            meta = self.store.meta(i)
            if i in self.published:  # ours: ahead of all, like our own messages
                meta = Meta(self.published[i][1], PRIO_PUBLIC, 0)
            if meta is None or meta.expiry <= now:
                continue
            if order == "fifo":
                key: Any = meta.seq
            elif order == "random":
                key = blake2b(salt + i, digest_size=8)
            else:
                ours = i in self.published or self.store.is_protected(i)
                key = (not ours, -(meta.priority // PRIO_PUBLIC))
            keyed.append((key, meta.expiry, i))
        keyed.sort()
        return [(i, expiry) for _k, expiry, i in keyed]

    def public(self, kind: Kind) -> Iterator[Envelope]:
        """The stored public envelopes of one kind (bulletins, prekeys), in id order."""
        for eid in self.store.ids_in_range(b"", None):
            meta = self.store.meta(eid)
            frame = self.store.get(eid) if meta and meta.priority >= PRIO_PUBLIC else None
            env = decode(frame) if frame is not None else None
            if env is not None and env.kind is kind:
                yield env

    def bulletins(self, now: int) -> list[Bulletin]:
        """The stored bulletins that verify and have not expired, only the newest of each
        ``(persona, type, key)``, newest first."""
        latest: dict[tuple[bytes, str, str], Bulletin] = {}
        for env in self.public(Kind.BULLETIN):
            try:
                b = read_bulletin_envelope(env)
                b.verify(now)
            except (CryptoError, EnvelopeError):
                continue
            slot = (b.persona, b.type, b.key)
            if slot not in latest or b.supersedes(latest[slot]):
                latest[slot] = b
        return sorted(latest.values(), key=lambda b: (-b.created, b.persona, b.key))

    def newest_prekey(self, identity_key: bytes, now: int) -> PrekeyRecord | None:
        """The newest live prekey record of ``identity_key`` among the stored public
        envelopes (a record that arrived before it was a contact was not learned)."""
        best: PrekeyRecord | None = None
        for env in self.public(Kind.PREKEY):
            try:
                rec = read_prekey_envelope(env)
                if rec.identity_key != identity_key:
                    continue
                rec.verify(identity_key, now)
            except (CryptoError, EnvelopeError):
                continue
            if best is None or rec.created > best.created:
                best = rec
        return best

    def export_frames(self, max_bytes: int, now: int) -> tuple[list[bytes], int]:
        """Held, unexpired envelopes for a bundle, highest priority and soonest expiry
        first, up to ``max_bytes`` of frames; and the latest expiry among them."""
        ranked = []
        for eid in self.store.ids_in_range(b"", None):
            meta = self.store.meta(eid)
            if meta is not None and meta.expiry > now:
                ranked.append((-meta.priority, meta.expiry, eid))
        ranked += [(-PRIO_PUBLIC, exp, i) for i, (_f, exp) in self.published.items() if exp > now]
        out: list[bytes] = []
        total = latest = 0
        for _p, expiry, eid in sorted(ranked):
            frame = self.frame_of(eid)
            if frame is None or total + len(frame) > max_bytes:
                continue
            out.append(frame)
            total += len(frame)
            latest = max(latest, expiry)
        return out, latest

    # ---- reconciliation ---------------------------------------------------------------
    def symbols(self, rng: Range, count: int, at: int | None = None) -> Symbols | None:
        """Symbols of the held ids in ``rng`` (as of store mark ``at``; None if the
        changes since are forgotten)."""
        syms = self.store.symbols(count, *rng.bounds(), at=at)
        lo, hi = rng.bounds()
        extra = [i for i in self.published if lo <= i and (hi is None or i < hi)]
        if syms is not None and extra:
            syms.xor_in(encode_set(extra, count), 1)
        return syms

    def current_symbols(self, rng: Range, count: int) -> Symbols:
        syms = self.symbols(rng, count)
        assert syms is not None  # the present is always known
        return syms
