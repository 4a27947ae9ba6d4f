"""Admission (private to :mod:`mesh.core.node`): the checks every arriving envelope
passes before it is stored, and the flood control around them.

The chain (:meth:`Admission.check`): expiry, expiry cap, already receipted, the stamp's
base work, then the kind's own check (:data:`mesh.core._kinds.POLICY`: bulletin and
prekey signatures, bulletin slots). Under load, whether an envelope gets in is the store's
eviction by rank (stamp work included), never a blanket refusal that would lock honest
mail out too; the work the node demands of strangers (:meth:`required_difficulty`) rises
with what the store would have to evict. Token buckets: one per source label, shared by
its links and kept across reconnects (a flooder that reconnects does not start over).
"""

from __future__ import annotations

from crypto.bulletin import Bulletin
from crypto.errors import CryptoError
from crypto.prekeys import PrekeyRecord
from crypto.stamp import verify_stamp
from mesh.core._context import Context
from mesh.core._delivery import Delivery
from mesh.core._index import PRIO_PUBLIC, EnvelopeIndex
from mesh.core._kinds import POLICY
from mesh.core._trade import Trader
from mesh.core.config import MAX_DEMAND, MAX_SOURCES
from mesh.core.envelope import MAX_FRAME, Envelope, EnvelopeError, decode, encode
from mesh.core.events import Action, BulletinStored, MessageDelivered
from mesh.core.flood import TokenBucket
from mesh.core.messages import read_bulletin_envelope
from mesh.core.stats import (
    PUT,
    PUT_OUTCOME,
    REFUSAL_OUTCOME,
    REFUSED,
    ImportResult,
    Outcome,
    Refusal,
    Stat,
)
from mesh.core.store import PutStatus


class Admission:
    def __init__(
        self, ctx: Context, index: EnvelopeIndex, delivery: Delivery, trader: Trader
    ) -> None:
        self._ctx = ctx
        self._index = index
        self._delivery = delivery
        self._trader = trader
        self._buckets: dict[bytes, TokenBucket] = {}  # source label -> bucket (LRU order)

    # ---- arrival ----------------------------------------------------------------------
    def arrive(
        self, env: Envelope, eid: bytes, frame: bytes, source: bytes, link: int, now: int
    ) -> list[Action]:
        """An envelope from a peer (asked for on ``link``)."""
        return self._arrive(env, eid, frame, source, link, now)[0]

    def _arrive(
        self, env: Envelope, eid: bytes, frame: bytes, source: bytes, link: int, now: int
    ) -> tuple[list[Action], Outcome]:
        """Validate, store, deliver if ours, offer on the other links. ``frame`` is the
        canonical encoding of ``env`` (strict decoding guarantees it). Mail for one of our
        sessions is protected at once; a first contact only once it opens (junk can carry
        anyone's public 1-byte hint)."""
        ours = POLICY[env.kind].protect(self._delivery, env, eid)
        outcome, stored, actions = self.admit(env, eid, frame, source, ours, now)
        if stored is None:
            return [], outcome
        actions += self._delivery.maybe_deliver(stored, eid, now)
        if self._ctx.store.has(eid):  # carried for others: offer it on our other links now
            actions += self._trader.offer_everywhere([eid], skip=link)
        return actions, outcome

    def import_frames(
        self, frames: list[bytes], source: bytes, now: int, result: ImportResult
    ) -> list[Action]:
        """Envelopes from a file bundle, as from a network peer; ``result`` counts what
        became of them."""
        actions: list[Action] = []
        for frame in frames:
            try:
                env = decode(frame)
            except EnvelopeError:
                self._ctx.stats.count(Stat.BAD_ENVELOPES)
                result.add(Outcome.INVALID)
                continue
            arrived, outcome = self._arrive(env, env.id(), frame, source, -1, now)
            result.add(outcome)
            result.delivered += sum(isinstance(a, MessageDelivered) for a in arrived)
            actions += arrived
        return actions

    # ---- the check chain --------------------------------------------------------------
    def check(self, env: Envelope, eid: bytes, now: int) -> Refusal | None:
        """Why an arriving envelope is refused (None if it is not)."""
        cfg, store = self._ctx.config, self._ctx.store
        if env.expiry <= now:
            return Refusal.EXPIRED
        if env.expiry > now + cfg.max_ttl + 3600:
            return Refusal.EXPIRY_TOO_FAR
        if env.receipt and env.receipt in self._ctx.state.receipts and cfg.purge_delivered:
            store.mark_seen(eid, env.expiry, now)
            return Refusal.ALREADY_RECEIPTED
        if not verify_stamp(eid, env.stamp, cfg.base_difficulty):  # eid = env.id()
            return Refusal.STAMP
        try:
            return POLICY[env.kind].verify(self, env, eid, now)
        except (CryptoError, EnvelopeError):
            return Refusal.BAD_SIGNATURE

    def admit(
        self, env: Envelope, eid: bytes, frame: bytes, source: bytes, ours: bool, now: int
    ) -> tuple[Outcome, Envelope | None, list[Action]]:
        """Check and store an arriving envelope (``frame`` its canonical encoding; ``ours``
        protected at once); returns what became of it, if stored the envelope as stored
        (its budget clamped), and what its kind does once stored."""
        reason = self.check(env, eid, now)
        if reason is not None:
            self._ctx.stats.count(REFUSED[reason])
            return REFUSAL_OUTCOME[reason], None, []
        max_budget = self._ctx.config.max_budget
        if env.budget > max_budget:
            env = env.with_budget(max_budget)
            frame = encode(env)
        result = self._index.register(env, eid, frame, source, ours, now)
        self._ctx.stats.count(PUT[result.status])
        if result.status is not PutStatus.STORED:
            return PUT_OUTCOME[result.status], None, []
        self._ctx.stats.count(Stat.EVICTED, len(result.evicted))
        return Outcome.STORED, env, POLICY[env.kind].stored(self, env, eid, now)

    # ---- the kinds' checks (mesh.core._kinds.Checks) ---------------------------------
    def refuse_bulletin(self, b: Bulletin, eid: bytes, expiry: int, now: int) -> Refusal | None:
        why = self._ctx.state.slots.refuse(b, now)
        if not why:
            return None
        self._ctx.store.mark_seen(eid, expiry, now)
        return Refusal(why)

    def refuse_chunk(self, eid: bytes) -> Refusal | None:
        return self._delivery.files.refuse(eid)

    def learn_prekey(self, rec: PrekeyRecord) -> None:
        contact = self._ctx.contacts.get(rec.identity_key)
        if contact is not None and (
            contact.prekey is None or rec.created >= contact.prekey.created
        ):
            contact.prekey = rec
            self._ctx.state.touch_prekey(rec.identity_key)

    def supersede(self, env: Envelope, eid: bytes, now: int) -> list[Action]:
        """A bulletin was stored: it is its slot's newest; delete the post it replaces."""
        bulletin = read_bulletin_envelope(env)
        old = self._ctx.state.slots.stored(bulletin, eid, now)
        if old is not None and old != eid and self._ctx.store.delete(old, now):
            self._ctx.stats.count(Stat.BULLETINS_SUPERSEDED)
        return [BulletinStored(eid, bulletin)]

    # ---- flood control ----------------------------------------------------------------
    def required_difficulty(self) -> int:
        """The stamp work an unprotected envelope needs to get in now, announced in HELLO:
        the base while there is room; once the store is full, one bit more than the least
        valuable envelope it would have to evict (lowest rank first), so the cost of a
        flood grows with the work the flooder already spent and honest senders, told the
        figure, stamp their own mail to it. Mail for us needs only the base."""
        base = self._ctx.config.base_difficulty
        lowest = self._ctx.store.lowest_rank(MAX_FRAME)
        if lowest is None or lowest >= PRIO_PUBLIC:
            return base
        return min(MAX_DEMAND, max(base, lowest % PRIO_PUBLIC + 1))

    def new_bucket(self) -> TokenBucket:
        return TokenBucket(self._ctx.config.link_rate, self._ctx.config.link_burst)

    def bucket_for(self, source: bytes) -> TokenBucket:
        """One token bucket per source label, shared by its links and kept across
        reconnects; a link without a label gets its own."""
        if not source:
            return self.new_bucket()
        bucket = self._buckets.pop(source, None) or self.new_bucket()
        self._buckets[source] = bucket  # most recently used last
        while len(self._buckets) > MAX_SOURCES:
            del self._buckets[next(iter(self._buckets))]
        return bucket
