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
- :mod:`mesh.core._outbox`: what we originate (messages, our prekey, bulletins);
- :mod:`mesh.core._contacts`: contacts and strangers with a session;
- :mod:`mesh.core._groups`: groups (sender keys): their events, the control records
  that travel over pairwise sessions, and group messages.

Two public facets group what drivers do besides handling events: ``node.saved``
(:mod:`mesh.core.saved`: the durable state as rows, tracked by change, and loading it)
and ``node.courier`` (:mod:`mesh.core.courier`: bundles in and out).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from crypto.bulletin import Bulletin
from crypto.identity import Identity, PublicIdentity
from crypto.prekeys import PrekeyRecord, PrekeyRing
from crypto.primitives import Rng
from mesh.core._admission import Admission
from mesh.core._contacts import Contacts
from mesh.core._context import ContactKeys, Context, Observer
from mesh.core._delivery import Delivery
from mesh.core._groups import Groups
from mesh.core._index import EnvelopeIndex
from mesh.core._outbox import Outbox
from mesh.core._peer import Peer, Peers
from mesh.core._receipts import Receipts
from mesh.core._trade import Trader
from mesh.core.attachments import Incoming
from mesh.core.config import NodeConfig
from mesh.core.courier import Courier
from mesh.core.durable import Durable
from mesh.core.envelope import Envelope
from mesh.core.events import (
    Action,
    CreateGroup,
    Event,
    FrameReceived,
    InviteMember,
    LeaveGroup,
    LinkDown,
    LinkUp,
    RemoveMembers,
    SendFile,
    SendGroupMessage,
    SendMessage,
    Tick,
)
from mesh.core.groups import GroupView
from mesh.core.routing import Strategy, by_name
from mesh.core.saved import SavedState
from mesh.core.store import PolicyStore

__all__ = ("Node", "NodeConfig")

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
        self._groups = Groups(ctx, self._index)
        self._delivery = Delivery(ctx, self._receipts, self._groups)
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
        self._groups.bind(self._outbox.send_control, self._trader.offer_everywhere)
        self._contacts = Contacts(
            ctx, self._index.newest_prekey, self._delivery.bound_stranger_sessions
        )
        self.courier = Courier(
            self._admission, self._index, self._receipts, self._take_receipts, self._peers.flush
        )
        self.saved = SavedState(state, self._contact_keys, self._loaded, self._index_store)
        self._next_sweep = 0
        self._now = 0  # the time of the event being handled
        self._dispatch: Mapping[type, Callable[[Any, int], list[Action]]] = MappingProxyType(
            {
                LinkUp: self._peers.link_up,
                LinkDown: self._peers.link_down,
                FrameReceived: self._peers.frame,
                SendMessage: self._outbox.send,
                SendFile: self._outbox.send_file,
                CreateGroup: self._groups.create,
                InviteMember: self._groups.invite,
                RemoveMembers: self._groups.remove,
                LeaveGroup: self._groups.leave,
                SendGroupMessage: self._groups.send,
                Tick: self._tick,
            }
        )

    # ---- what the node runs with (a driver may replace strategy and observer) ---------
    @property
    def identity(self) -> Identity:
        return self._ctx.identity

    @property
    def ring(self) -> PrekeyRing:
        return self._ctx.ring

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
            actions += self._delivery.files.expire(now)
            actions += self._groups.expire(now)
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
        """Seal to this identity from now on (``prekey``: theirs, else the newest stored)."""
        self._contacts.add(identity, prekey, self._now)

    def remove_contact(self, identity_key: bytes) -> None:
        """Forget a contact (say its key was replaced): nothing is sealed to that key any
        more. Its sessions stay, counted as a stranger's, so what it still sends arrives
        as from that key."""
        self._contacts.remove(identity_key)

    def stranger(self, identity_key: bytes) -> PublicIdentity | None:
        """The identity of someone who is not a contact but opened a session with us
        (their first contact's seal proved they hold it), while that session is kept."""
        return self._contacts.stranger(identity_key)

    def strangers(self) -> list[PublicIdentity]:
        return self._contacts.strangers()

    def _prekey_of(self, key: bytes) -> PrekeyRecord | None:
        return self._contacts.prekey_of(key)

    def _contact_keys(self) -> list[bytes]:
        return list(self.contacts)

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
        if env is not None:  # our own earlier post on this topic goes
            actions += self._admission.supersede(env, env.id(), now)
        return self._peers.flush(actions)

    def bulletins(self, now: int) -> list[Bulletin]:
        """The bulletins this node holds that verify and have not expired, only the newest
        of each ``(persona, type, key)``, newest first."""
        return self._index.bulletins(now)

    # ---- introspection (tests, status) ------------------------------------------------
    def awaited_receipts(self) -> dict[bytes, bytes]:
        """Receipt hash -> message id of our own mail not yet acknowledged."""
        return self._receipts.awaited()

    def groups(self) -> list[GroupView]:
        """The groups we are in or left (:mod:`mesh.core.groups`)."""
        return self._groups.views()

    def files_in_progress(self) -> list[Incoming]:
        """The attachments being received, with the chunks that have come."""
        return self._delivery.files.in_progress()

    def expected_tags(self) -> int:
        """How many session tags this node expects (bounded by its sessions' windows)."""
        return self._delivery.expected_tags()

    def required_difficulty(self) -> int:
        """The stamp bits this node demands of strangers' envelopes now (in its HELLO)."""
        return self._admission.required_difficulty()

    def published_ids(self) -> list[bytes]:
        """The ids of our own prekey envelopes, kept in memory beside the store."""
        return list(self._index.published)

    # ---- persistence (node.saved holds the rest) ----------------------------------------
    def forget_sessions(self) -> None:
        """Drop every end-to-end session from memory (a panic; the next message to each
        contact is a first contact again)."""
        self._delivery.forget_sessions()

    def _loaded(self, prekeys: list[tuple[bytes, bytes]], now: int) -> None:
        self._contacts.learned(prekeys)
        self._index_store(now)

    def _index_store(self, now: int) -> None:
        self._delivery.index_store(now)  # wakes stored session envelopes that are for us
        self._receipts.protect_stored()
        self._delivery.find_first_contacts()

    def deliver_stored(self, now: int) -> list[Action]:
        """Open and deliver envelopes for us that are still in the store (after a restart:
        a crash may have come between storing and delivering); load ``saved`` (or
        index the store) first. The exactly-once guard keeps anything delivered
        before from being delivered again."""
        return self._peers.flush(self._delivery.deliver_stored(now))
