"""The node: the sans-I/O protocol core that both the daemon and the simulator drive.

Theory of operation
-------------------
``Node.handle(event, now) -> list[Action]`` and ``Node.next_deadline()`` are the whole API.
The driver owns sockets, radios and clocks; it reports :mod:`mesh.core.events` and carries
out the returned actions (transmit a frame on a link, close a link, show a message).

This module is a facade over the node's parts (private modules, one concern each, all
sharing one :class:`~mesh.core._context.Context`):

- :mod:`mesh.core._peer`: per link, a :class:`~mesh.core.link.LinkSession` (Noise XX,
  records padded to the MTU) and the peer's phase with the messages legal in it;
- :mod:`mesh.core._trade`: reconciliation (rateless IBLT) and TRADE: each side offers
  what the other lacks, asks only for what it wants, within the link's token bucket; the
  routing strategy decides each handover. Envelopes travel in the configured
  ``offer_order`` and are committed to the store on arrival, so a contact that ends half
  way costs nothing;
- :mod:`mesh.core._admission`: every arriving envelope is checked before it is stored
  (strict decode, stamp with difficulty rising with store load, expiry and budget
  clamps, the kind's own checks from :mod:`mesh.core._kinds`, quotas, token buckets);
  unsolicited or malformed input is counted in :attr:`Node.stats`, and a peer that
  breaks the protocol loses the link;
- :mod:`mesh.core._index`: the store plus our own prekey envelope, ranked by public facts;
- :mod:`mesh.core._delivery`: sessions and the tags they expect; a message for us is
  delivered once and its receipt secret released after a random delay;
- :mod:`mesh.core._receipts`: receipts as anti-packets (a receipt purges the copies it
  answers unless ``purge_delivered`` is off; one that matches nothing is ignored);
- :mod:`mesh.core._outbox`: what we originate (messages, our prekey, bulletins).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from crypto.bulletin import Bulletin
from crypto.errors import DecodeError
from crypto.identity import Identity, PublicIdentity
from crypto.prekeys import PrekeyRecord, PrekeyRing
from crypto.primitives import Rng
from mesh.core._admission import Admission
from mesh.core._context import ContactKeys, Context, Observer
from mesh.core._delivery import Delivery
from mesh.core._index import EnvelopeIndex
from mesh.core._outbox import Outbox
from mesh.core._peer import Peer, Peers
from mesh.core._receipts import Receipts
from mesh.core._trade import Trader
from mesh.core.config import (
    ASK_TIMEOUT,
    EMPTY_TEXT,
    MAX_BODY,
    OFFER_ORDERS,
    NodeConfig,
    hint_for,
)
from mesh.core.durable import Durable, rows_from_blob
from mesh.core.envelope import Envelope
from mesh.core.events import (
    Action,
    Event,
    FrameReceived,
    LinkDown,
    LinkUp,
    MessageAcked,
    SendMessage,
    Tick,
)
from mesh.core.routing import Strategy, by_name
from mesh.core.session import Session
from mesh.core.stats import ImportResult
from mesh.core.store import PolicyStore

__all__ = (
    "ASK_TIMEOUT",
    "EMPTY_TEXT",
    "MAX_BODY",
    "OFFER_ORDERS",
    "ContactKeys",
    "ImportResult",
    "Node",
    "NodeConfig",
    "hint_for",
)

log = logging.getLogger(__name__)


class Node:
    def __init__(
        self,
        identity: Identity,
        ring: PrekeyRing,
        store: PolicyStore,
        rng: Rng,
        config: NodeConfig | None = None,
    ) -> None:
        cfg = config or NodeConfig()
        self.contacts: dict[bytes, ContactKeys] = {}
        # What must survive a restart besides the store (sessions, receipts, the
        # exactly-once guard, bulletin slots), as rows a driver saves by change.
        state = Durable(self._prekey_of, cfg.max_ttl)
        strategy = by_name(cfg.strategy, **dict(cfg.strategy_args))
        ctx = Context(identity, ring, store, rng, cfg, strategy, state, contacts=self.contacts)
        self._ctx = ctx
        self.stats: dict[str, int] = ctx.stats.values
        self._index = EnvelopeIndex(ctx)
        self._receipts = Receipts(ctx)
        self._delivery = Delivery(ctx, self._receipts)
        self._trader = Trader(ctx, self._index, self._delivery.is_mine)
        self._admission = Admission(ctx, self._index, self._delivery, self._trader)
        self._peers = Peers(
            ctx,
            self._admission,
            self._trader,
            self._delivery.receive_keys,
            self._admission.arrive,
            self._take_receipts,
        )
        self._outbox = Outbox(ctx, self._index, self._delivery, self._receipts, self._trader)
        self._next_sweep = 0
        self._now = 0  # the time of the event being handled
        self._dispatch: Mapping[type, Callable[[Any, int], list[Action]]] = MappingProxyType(
            {
                LinkUp: self._peers.link_up,
                LinkDown: self._peers.link_down,
                FrameReceived: self._peers.frame,
                SendMessage: self._outbox.send,
                Tick: self._tick,
            }
        )

    # ---- what drivers may replace ----------------------------------------------------
    @property
    def identity(self) -> Identity:
        return self._ctx.identity

    @identity.setter
    def identity(self, identity: Identity) -> None:
        self._ctx.identity = identity

    @property
    def ring(self) -> PrekeyRing:
        return self._ctx.ring

    @ring.setter
    def ring(self, ring: PrekeyRing) -> None:
        self._ctx.ring = ring

    @property
    def store(self) -> PolicyStore:
        return self._ctx.store

    @property
    def rng(self) -> Rng:
        return self._ctx.rng

    @property
    def strategy(self) -> Strategy:
        return self._ctx.strategy

    @strategy.setter
    def strategy(self, strategy: Strategy) -> None:
        self._ctx.strategy = strategy

    @property
    def config(self) -> NodeConfig:
        return self._ctx.config

    @config.setter
    def config(self, config: NodeConfig) -> None:
        self._ctx.config = config

    @property
    def observer(self) -> Observer | None:
        """Instrumentation for the simulator: called (event, envelope id, link, frame) with
        event "sent" (handed to a link) or "received" (arrived whole from a link)."""
        return self._ctx.observer

    @observer.setter
    def observer(self, observer: Observer | None) -> None:
        self._ctx.observer = observer

    @property
    def links(self) -> Mapping[int, Peer]:
        """The open links' peers by link id (read-only: their phase, HELLO, session)."""
        return self._peers.links

    # ---- events -----------------------------------------------------------------------
    def handle(self, event: Event, now: int) -> list[Action]:
        self._now = now
        return self._peers.flush(self._dispatch[type(event)](event, now))

    def next_deadline(self) -> int | None:
        times = [self._next_sweep] if self._next_sweep else []
        release = self._receipts.next_deadline()
        if release is not None:
            times.append(release)
        times += self._peers.next_deadline(self._now)
        untried = self._delivery.next_deadline(self._now)
        if untried is not None:
            times.append(untried)
        return min(times) if times else None

    def _tick(self, _ev: Tick, now: int) -> list[Action]:
        actions = self._peers.tick(now)
        actions += self._delivery.tick(now)
        due = self._receipts.tick(now)
        if due:
            self._peers.pass_receipts(due)
        if now >= self._next_sweep:
            self.store.sweep(now)
            self._receipts.expire(now)
            actions += self._delivery.expire(now)
            self._next_sweep = now + self.config.sweep_every
            if self.ring.rotate(self.identity, now, self.rng) is not None:
                actions += self.publish_prekey(now)
            self.ring.prune(now)
        return actions

    def _take_receipts(self, secrets: Iterable[bytes], link: int, now: int) -> list[Action]:
        """Released receipts from a neighbour (or a bundle, ``link`` -1): purge what they
        answer, tell the user about their own mail, pass the new ones on."""
        actions, fresh = self._receipts.take(secrets, now)
        if fresh:  # pass validated receipts on at once: relays purge early
            self._peers.pass_receipts(fresh, but=link)
        return actions

    # ---- contacts ---------------------------------------------------------------------
    def add_contact(self, identity: PublicIdentity, prekey: PrekeyRecord | None = None) -> None:
        identity.verify()
        if prekey is None:  # someone added from a message: their prekey may be stored
            prekey = self._index.newest_prekey(identity.sign_public, self._now)
        self.contacts[identity.sign_public] = ContactKeys(identity, prekey)
        self._ctx.state.touch_prekey(identity.sign_public)
        self._ctx.state.forget_stranger(identity.sign_public)

    def remove_contact(self, identity_key: bytes) -> None:
        """Forget a contact (say its key was replaced): nothing is sealed to that key any
        more. Its sessions stay, counted as a stranger's, so what it still sends arrives
        as from that key."""
        self.contacts.pop(identity_key, None)
        self._ctx.state.touch_prekey(identity_key)
        self._delivery.bound_stranger_sessions()

    def stranger(self, identity_key: bytes) -> PublicIdentity | None:
        """The identity of someone who is not a contact but opened a session with us
        (their first contact's seal proved they hold it), while that session is kept."""
        return self._ctx.state.strangers.get(identity_key)

    def strangers(self) -> list[PublicIdentity]:
        return list(self._ctx.state.strangers.values())

    def _prekey_of(self, key: bytes) -> PrekeyRecord | None:
        contact = self.contacts.get(key)
        return None if contact is None else contact.prekey

    def can_write(self, peer: bytes, now: int) -> bool:
        """Could a message to this contact be sealed now (a session, or a live prekey)?"""
        return self._outbox.can_write(peer, now)

    # ---- publishing and reading -------------------------------------------------------
    def publish_prekey(self, now: int) -> list[Action]:
        """Our newest prekey record as a PREKEY envelope, offered to peers."""
        return self._peers.flush(self._outbox.publish_prekey(now))

    def publish_envelope(self, env: Envelope, now: int) -> list[Action]:
        """Store an envelope this node originates (protected, like its own messages) and
        offer it on every open link."""
        return self._peers.flush(self._outbox.publish_envelope(env, now))

    def publish_bulletin(self, bulletin: Bulletin, now: int) -> list[Action]:
        """Store a signed bulletin as a BULLETIN envelope and offer it to every peer; a
        post with no visible text is refused (:class:`SendFailed` to its persona)."""
        actions, env = self._outbox.publish_bulletin(bulletin, now)
        if env is not None:
            self._admission.supersede(env, env.id(), now)  # our own earlier post on this topic
        return self._peers.flush(actions)

    def bulletins(self, now: int) -> list[Bulletin]:
        """The bulletins this node holds that verify and have not expired, only the newest
        of each ``(persona, type, key)``, newest first."""
        return self._index.bulletins(now)

    def offer(self, ids: list[bytes], now: int) -> list[Action]:
        """Offer envelopes put into the store from outside to every open link now."""
        return self._peers.flush(self._trader.offer_everywhere(ids))

    def my_hints(self) -> frozenset[bytes]:
        return self._delivery.my_hints()

    def is_mine(self, tag: bytes) -> bool:
        """Is an envelope with this routing tag addressed to us (a session tag we expect),
        or maybe (one of our 1-byte first-contact hints)?"""
        return self._delivery.is_mine(tag)

    # ---- introspection (tests, status) ------------------------------------------------
    def awaited_receipts(self) -> dict[bytes, bytes]:
        """Receipt hash -> message id of our own mail not yet acknowledged."""
        return self._receipts.awaited()

    def expected_tags(self) -> int:
        """How many session tags this node expects (bounded by its sessions' windows)."""
        return self._delivery.expected_tags()

    def required_difficulty(self) -> int:
        """The stamp bits this node demands of strangers' envelopes now (in its HELLO)."""
        return self._admission.required_difficulty()

    def published_ids(self) -> list[bytes]:
        """The ids of our own prekey envelopes, kept in memory beside the store."""
        return list(self._index.published)

    # ---- persistence ------------------------------------------------------------------
    @property
    def sessions(self) -> Mapping[bytes, Session]:
        return self._ctx.state.sessions

    def forget_sessions(self) -> None:
        """Drop every end-to-end session from memory (a panic; the next message to each
        contact is a first contact again)."""
        self._delivery.forget_sessions()

    def track_state_changes(self) -> None:
        """Start marking changes to the durable state, for :meth:`take_state_changes`."""
        self._ctx.state.track()

    def take_state_changes(self) -> dict[bytes, bytes | None]:
        """The rows of the durable state changed since the last call (after
        :meth:`track_state_changes`): key -> value, ``None`` for a deleted row. A driver
        that saves them before carrying out the step's actions keeps "commit before
        acknowledge" at a cost that grows with the change, not with the state."""
        return self._ctx.state.take_changes()

    def state_rows(self) -> dict[bytes, bytes]:
        """Every row of the durable state (a first save, a migration)."""
        return self._ctx.state.rows(self.contacts)

    def export_state(self) -> bytes:
        """Everything besides the store that must survive a restart, as one blob:
        end-to-end sessions, learned prekeys, receipts (ours, released, pending), the
        exactly-once guard and bulletin slots. It holds secrets: keep it encrypted.
        Routing-strategy tables are not kept (they rebuild from new contacts)."""
        return self._ctx.state.export(self.contacts)

    def restore_state(self, data: bytes, now: int) -> None:
        """Load :meth:`export_state` output (this version's or the one before). Raises
        :class:`~crypto.errors.DecodeError` if the state is malformed."""
        self.restore_rows(rows_from_blob(data), now)

    def restore_rows(self, rows: Mapping[bytes, bytes], now: int) -> None:
        """Load saved rows (after adding contacts) and re-index the store. Raises
        :class:`~crypto.errors.DecodeError` if a row is malformed."""
        for key, rec in self._ctx.state.load(rows):
            contact = self.contacts.get(key)
            if contact is not None:
                try:
                    learned = PrekeyRecord.decode(rec)
                except DecodeError:  # learned before the decoder refused its kind: forget it
                    log.warning("forgetting a learned prekey that no longer decodes")
                    continue
                if contact.prekey is None or learned.created >= contact.prekey.created:
                    contact.prekey = learned  # a newer one from the card stays
        self.index_store(now)

    def index_store(self, now: int) -> None:
        """After a start: which stored envelopes are ours or for us (kept in memory only,
        so the store file does not say), from the saved state and the store's indexes."""
        self._delivery.index_store(now)  # wakes stored session envelopes that are for us
        self._receipts.protect_stored()
        self._delivery.find_first_contacts()

    def deliver_stored(self, now: int) -> list[Action]:
        """Open and deliver envelopes for us that are still in the store (after a restart:
        a crash may have come between storing and delivering); call :meth:`index_store`
        (or :meth:`restore_state`) first. The exactly-once guard keeps anything delivered
        before from being delivered again."""
        return self._peers.flush(self._delivery.deliver_stored(now))

    # ---- bundles (sneakernet) ---------------------------------------------------------
    def import_frames(self, frames: list[bytes], source: bytes, now: int) -> list[Action]:
        """Envelopes from a file bundle: the same checks and quotas as from a network peer
        (strict decoding, stamp, expiry, signatures, per-source and global quotas), then
        delivered if ours and offered to open links."""
        return self._peers.flush(self._admission.import_frames(frames, source, now, ImportResult()))

    def import_bundle(
        self, frames: list[bytes], receipts: list[bytes], source: bytes, now: int
    ) -> tuple[list[Action], ImportResult]:
        """A file bundle: its receipts first (so what they answer is not stored again),
        then its envelopes as :meth:`import_frames`. Returns the actions and what the
        bundle did (:class:`~mesh.core.stats.ImportResult`)."""
        result = ImportResult()
        actions = self._take_receipts(receipts, -1, now)
        result.acked = sum(isinstance(a, MessageAcked) for a in actions)
        actions += self._peers.flush(self._admission.import_frames(frames, source, now, result))
        result.stored = max(0, result.stored - result.delivered)  # stored first
        result.receipts = self._receipts.held(receipts)
        return actions, result

    def export_receipts(self, now: int) -> tuple[list[bytes], int]:
        """The released receipts this node passes on, for a bundle, and the latest expiry
        among them (a receipt is kept as long as what it answers can be alive)."""
        live = self._receipts.live(now)
        return [s for s, _e in live], max((e for _s, e in live), default=0)

    def export_frames(self, max_bytes: int, now: int) -> tuple[list[bytes], int]:
        """Stored, unexpired envelopes for a bundle, highest priority and soonest expiry
        first, up to ``max_bytes`` of frames; and the latest expiry among them."""
        return self._index.export_frames(max_bytes, now)
