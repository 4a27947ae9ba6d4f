"""The node: the sans-I/O protocol core that both the daemon and the simulator drive.

Theory of operation
-------------------
``Node.handle(event, now) -> list[Action]`` and ``Node.next_deadline()`` are the whole API.
The driver owns sockets, radios and clocks; it reports :mod:`mesh.core.events` and carries
out the returned actions (transmit a frame on a link, close a link, show a message).

Per link the node runs a :class:`~mesh.core.link.LinkSession` (Noise XX, records padded to
the MTU). When both sides have said HELLO, the link initiator streams rateless-IBLT symbols
of its envelope ids; the responder peels out the symmetric difference and the two sides
TRADE: each offers ``(id, tag)`` of what the other lacks, each asks only for what it wants
(not stored, not in its seen-set), and the routing strategy decides per envelope whether to
hand it over and with which budget. Envelopes are offered and travel in the configured
``offer_order`` (priority: own and contacts' first, then soonest expiry; or the order
they were stored; or random), each committed to the store on arrival, so a contact that
ends half way costs nothing: the next contact reconciles again and resends only what is
still missing. A delivery receipt purges the copies it answers (unless
``purge_delivered`` is off).
A node asks a peer for no more envelopes than the link's token bucket will take (counting
those on their way) and asks for the rest as tokens return; an ask unanswered for
:data:`ASK_TIMEOUT` seconds is forgotten. An envelope it stores for others is offered on
its other open links at once.

Every envelope that arrives is checked before it is stored: strict decode, stamp
(difficulty rising with store load), expiry and budget clamps, bulletin and prekey
signatures, per-source and global quotas, per-link token bucket. Unsolicited or malformed
input is dropped and counted in :attr:`Node.stats`; a peer that breaks the protocol loses
the link. A first-contact envelope whose 1-byte hint matches one of our prekeys is opened;
a message for us is delivered once, removed from the store (its id stays in the seen-set),
and its receipt secret is released after a random delay, batched with others. A receipt
that matches a stored envelope purges it; one that matches nothing is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from crypto.bulletin import Bulletin
from crypto.errors import CryptoError, DecodeError
from crypto.identity import Identity, PublicIdentity
from crypto.noise import KeyPair
from crypto.prekeys import PrekeyRecord, PrekeyRing
from crypto.primitives import Rng, blake2b
from crypto.receipts import receipt_hash
from crypto.stamp import leading_zero_bits, verify_stamp
from mesh.core import envelope as E
from mesh.core import messages as M
from mesh.core import protocol as P
from mesh.core.durable import Durable, rows_from_blob
from mesh.core.errors import LocalError, PeerError
from mesh.core.events import (
    Action,
    CloseLink,
    Event,
    FrameReceived,
    LinkDown,
    LinkOpened,
    LinkUp,
    MessageAcked,
    MessageDelivered,
    MessageQueued,
    SendFailed,
    SendMessage,
    Tick,
    Transmit,
)
from mesh.core.flood import TokenBucket
from mesh.core.link import LinkOutput, LinkSession, LinkState
from mesh.core.riblt import Symbols, encode_set
from mesh.core.routing import STRATEGIES, EnvView, Strategy, by_name, destination
from mesh.core.session import Session, message_tag
from mesh.core.store import PUBLIC_RANK, Meta, PolicyStore, PutStatus, StoreItem
from mesh.core.sync import FULL, MAX_SERVE, Decoder, Range, Request, SyncError, check_request

log = logging.getLogger(__name__)

# The rank a store row carries is public facts only: the class of its kind, then the stamp
# work it carries (junk with cheap stamps goes first). Whose envelopes are whose is
# known in memory only (PolicyStore.protect).
PRIO_OTHER, PRIO_PUBLIC = 0, PUBLIC_RANK
MAX_DEFERRED = 4096  # offered ids waiting for room in the link's token bucket
MAX_MARKS = 32  # ranges served per link from a marked set (older ones start over)
# What became of each envelope of an imported bundle, by the counter that records it.
IMPORT_OUTCOMES: Mapping[str, str] = MappingProxyType(
    {
        "put_stored": "stored",
        "delivered": "delivered",
        "put_duplicate": "known",
        "put_seen": "known",
        "already_receipted": "known",
        "superseded": "known",
        "expired": "expired",
        "put_expired": "expired",
        "expiry_too_far": "invalid",
        "put_quota": "over_quota",
        "bulletin_rate": "over_quota",
        "bad_envelopes": "invalid",
        "stamp": "invalid",
        "bad_signature": "invalid",
    }
)
MAX_DEMAND = 24  # stamp bits a node may demand (16 M hashes: minutes on a Pi)
MAX_UNTRIED = 4096  # first contacts waiting for a trial decryption
MAX_SOURCES = 4096  # token buckets remembered per source label
TRADE_CHUNK = 256  # entries per list in one TRADE (all four lists full: ~40 KiB)
ASK_TIMEOUT = 60  # seconds an ask may stay unanswered before it is forgotten
MAX_BODY = 12_000  # bytes of message text: fits the largest envelope bucket in every kind
EMPTY_TEXT = "the text is empty (only spaces or invisible characters)"
OFFER_ORDERS = ("priority", "fifo", "random")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    strategy: str = "epidemic"
    strategy_args: tuple[tuple[str, int], ...] = ()
    mint_difficulty: int = 10  # stamp bits on envelopes we originate
    base_difficulty: int = 8  # stamp bits we require when the store is at most half full
    max_ttl: int = 7 * 86400
    max_budget: int = 32
    link_rate: float = 50.0  # envelopes per second accepted per link...
    link_burst: float = 400.0  # ...after a burst of this many
    receipt_delay: tuple[int, int] = (30, 300)
    resync_every: int = 120
    sweep_every: int = 600
    initial_symbols: int = 32
    sync_symbols: int = 4096  # remote symbols a link may hold while reconciling (x 48 B)
    idle_timeout: int = 360  # a link that says nothing for this long is closed
    trial_rate: float = 20.0  # first contacts with one of our hints opened per second...
    trial_burst: float = 100.0  # ...after a burst of this many (each costs X25519 work)
    stranger_sessions: int = 64  # sessions opened by people who are not our contacts
    long_term_link_key: bytes | None = None  # relays: a pinned link key; others: fresh
    # The order envelopes are offered and handed over in on a link (OFFER_ORDERS):
    # "priority" (own and contacts' first, then soonest expiry), "fifo" (the order this
    # node stored them; what it held when it started comes first) or "random".
    offer_order: str = "priority"
    # A delivery receipt purges our copy and keeps the envelope out afterwards (receipts
    # as anti-packets). False: carry delivered copies until they expire, as The ONE's
    # routers do without deleteDelivered; receipts are still passed on.
    purge_delivered: bool = True

    def __post_init__(self) -> None:
        if self.offer_order not in OFFER_ORDERS:
            raise ValueError(f"offer_order: one of {', '.join(OFFER_ORDERS)}")


@dataclass(slots=True)
class Contact:
    identity: PublicIdentity
    prekey: PrekeyRecord | None = None


@dataclass(slots=True)
class _Link:
    session: LinkSession
    bucket: TokenBucket
    decoder: Decoder
    hello: P.Hello | None = None
    asked: dict[bytes, int] = field(default_factory=dict)  # id we asked for -> when
    # (id, is ours) offered by the peer that our token bucket has no room for yet
    deferred: list[tuple[bytes, bool]] = field(default_factory=list)
    overflowed: bool = False  # offers beyond MAX_DEFERRED were dropped: reconcile again
    # Ranges we serve to this peer -> (store mark, when first asked): one set per range.
    marks: dict[Range, tuple[int, int]] = field(default_factory=dict)
    outbox: list[bytes] = field(default_factory=list)  # encoded messages not yet in a record
    last_sync: int = 0
    label: bytes = b""  # the driver's fairness label (LinkUp.source)
    last_heard: int = 0  # when the peer last sent a message
    serve_left: int = 0  # symbols MOREs may still ask for in the read being handled

    @property
    def peer(self) -> bytes:
        return self.session.peer_static or b""

    @property
    def source(self) -> bytes:
        """Whom per-source quotas count this link's envelopes against: the driver's label
        (what a flooder cannot mint for free: the remote address), else the link key."""
        return self.label or self.peer[:16]


def hint_for(prekey_public: bytes) -> bytes:
    """The 1-byte first-contact routing hint of a prekey (1 in 256 nodes share it)."""
    return blake2b(prekey_public, digest_size=1, person=b"steppe-hint")


class Node:
    def __init__(
        self,
        identity: Identity,
        ring: PrekeyRing,
        store: PolicyStore,
        rng: Rng,
        config: NodeConfig | None = None,
    ) -> None:
        self.identity = identity
        self.ring = ring
        self.store = store
        self.rng = rng
        self.config = config or NodeConfig()
        self.strategy: Strategy = by_name(self.config.strategy, **dict(self.config.strategy_args))
        self.contacts: dict[bytes, Contact] = {}
        self.links: dict[int, _Link] = {}
        self.stats: dict[str, int] = {}
        # Optional instrumentation for the simulator: (event, envelope id, link, frame) with
        # event "sent" (handed to a link) or "received" (arrived whole from a link).
        self.observer: Callable[[str, bytes, int, bytes], None] | None = None
        # What must survive a restart besides the store (sessions, receipts, the
        # exactly-once guard, bulletin slots), as rows a driver saves by change.
        self._state = Durable(self._prekey_of, self.config.max_ttl)
        self._next_sweep = 0
        self._now = 0  # the time of the event being handled
        self._tags: dict[bytes, tuple[bytes, int]] = {}  # expected tag -> (sid, counter)
        self._woken: list[bytes] = []  # newly expected tags: stored envelopes may carry one
        self._maybe_mine: list[bytes] = []  # after a start: stored first contacts with our hints
        self._buckets: dict[bytes, TokenBucket] = {}  # source label -> bucket (LRU order)
        # Our own prekey envelope, kept in memory beside the store (it holds our identity
        # key: a row of it would tell a seized device's owner). id -> (frame, expiry)
        self._published: dict[bytes, tuple[bytes, int]] = {}
        self._slots = self._state.slots
        self._trials = TokenBucket(self.config.trial_rate, self.config.trial_burst)
        self._untried: list[bytes] = []  # first contacts with our hint waiting for a trial
        self._hints: frozenset[bytes] = frozenset()
        self._hints_for: tuple[int, ...] | None = None
        self._dispatch: MappingProxyType[type, Callable[[Any, int], list[Action]]] = (
            MappingProxyType(
                {
                    LinkUp: self._link_up,
                    LinkDown: self._link_down,
                    FrameReceived: self._frame,
                    SendMessage: self._send,
                    Tick: self._tick,
                }
            )
        )

    # ---- public API -------------------------------------------------------------------
    def handle(self, event: Event, now: int) -> list[Action]:
        self._now = now
        return self._flush(self._dispatch[type(event)](event, now))

    def next_deadline(self) -> int | None:
        times = [self._next_sweep] if self._next_sweep else []
        release = self._state.next_release()
        if release is not None:
            times.append(release)
        for ln in self.links.values():
            d = ln.session.next_deadline()
            if d is not None:
                times.append(d)
            if ln.session.state is LinkState.OPEN and ln.hello is not None:
                times.append(ln.last_sync + self.config.resync_every)
                times.append(ln.last_heard + self.config.idle_timeout)
                if ln.deferred or ln.overflowed:
                    times.append(self._now + 1)
        if self._untried:
            times.append(self._now + 1)
        return min(times) if times else None

    def add_contact(self, identity: PublicIdentity, prekey: PrekeyRecord | None = None) -> None:
        identity.verify()
        if prekey is None:  # someone added from a message: their prekey may be stored
            prekey = self._stored_prekey(identity.sign_public, self._now)
        self.contacts[identity.sign_public] = Contact(identity, prekey)
        self._state.touch_prekey(identity.sign_public)
        self._state.forget_stranger(identity.sign_public)

    def stranger(self, identity_key: bytes) -> PublicIdentity | None:
        """The identity of someone who is not a contact but opened a session with us
        (their first contact's seal proved they hold it), while that session is kept."""
        return self._state.strangers.get(identity_key)

    def strangers(self) -> list[PublicIdentity]:
        return list(self._state.strangers.values())

    def _stored_prekey(self, identity_key: bytes, now: int) -> PrekeyRecord | None:
        """The newest live prekey record of ``identity_key`` among the public envelopes
        in the store (once, when a contact is added without one: a record that arrived
        before it was a contact was not learned)."""
        best: PrekeyRecord | None = None
        for eid in self.store.ids_in_range(b"", None):
            meta = self.store.meta(eid)
            frame = self.store.get(eid) if meta and meta.priority >= PRIO_PUBLIC else None
            env = E.decode(frame) if frame is not None else None
            if env is None or env.kind is not E.Kind.PREKEY:
                continue
            try:
                rec = M.read_prekey_envelope(env)
                if rec.identity_key != identity_key:
                    continue
                rec.verify(identity_key, now)
            except (CryptoError, E.EnvelopeError):
                continue
            if best is None or rec.created > best.created:
                best = rec
        return best

    def remove_contact(self, identity_key: bytes) -> None:
        """Forget a contact (say its key was replaced): nothing is sealed to that key any
        more. Its sessions stay, counted as a stranger's, so what it still sends arrives
        as from that key."""
        self.contacts.pop(identity_key, None)
        self._state.touch_prekey(identity_key)
        self._bound_stranger_sessions()

    def publish_prekey(self, now: int) -> list[Action]:
        """Store our newest prekey record as a PREKEY envelope and offer it to peers."""
        current = self.ring.current(now)
        if current is None:
            current = self.ring.create(self.identity, now, self.rng)
        env = M.stamped(
            M.prekey_envelope(current.record, self.strategy.INITIAL_BUDGET),
            self.config.mint_difficulty,
            self.rng,
        )
        self._published = {i: v for i, v in self._published.items() if v[1] > now}
        self._published[env.id()] = (E.encode(env), env.expiry)
        return self._flush(self._offer_everywhere([env.id()], now))

    def publish_envelope(self, env: E.Envelope, now: int) -> list[Action]:
        """Store an envelope this node originates (protected, like its own messages) and
        offer it on every open link."""
        if self._store_local(env, now) is not PutStatus.STORED:
            return []
        return self._flush(self._offer_everywhere([env.id()], now))

    def can_write(self, peer: bytes, now: int) -> bool:
        """Could a message to this contact be sealed now (a session, or a live prekey)?"""
        contact = self.contacts.get(peer)
        if contact is None:
            return False
        live_prekey = contact.prekey is not None and contact.prekey.expires > now
        return live_prekey or self._session_for(peer) is not None

    def publish_bulletin(self, bulletin: Bulletin, now: int) -> list[Action]:
        """Store a signed bulletin as a BULLETIN envelope and offer it to every peer; a
        post with no visible text is refused (:class:`SendFailed` to its persona)."""
        bulletin.verify(now)
        if bulletin.type == "post" and M.is_blank(bulletin.body):
            return [SendFailed(bulletin.persona, EMPTY_TEXT)]
        env = M.stamped(
            M.bulletin_envelope(bulletin, self.strategy.INITIAL_BUDGET),
            self.config.mint_difficulty,
            self.rng,
        )
        actions = self.publish_envelope(env, now)
        if self.store.has(env.id()):
            self._superseded(env, env.id(), now)  # our own earlier post on this topic
        return actions

    def bulletins(self, now: int) -> list[Bulletin]:
        """The bulletins this node holds that verify and have not expired, only the newest
        of each ``(persona, type, key)``, newest first."""
        latest: dict[tuple[bytes, str, str], Bulletin] = {}
        for eid in self.store.ids_in_range(b"", None):
            meta = self.store.meta(eid)
            frame = self.store.get(eid) if meta and meta.priority >= PRIO_PUBLIC else None
            if frame is None:
                continue
            env = E.decode(frame)
            if env.kind is not E.Kind.BULLETIN:
                continue
            try:
                b = M.read_bulletin_envelope(env)
                b.verify(now)
            except (CryptoError, E.EnvelopeError):
                continue
            slot = (b.persona, b.type, b.key)
            if slot not in latest or b.supersedes(latest[slot]):
                latest[slot] = b
        return sorted(latest.values(), key=lambda b: (-b.created, b.persona, b.key))

    def offer(self, ids: list[bytes], now: int) -> list[Action]:
        """Offer envelopes put into the store from outside (e.g. an import) to every
        open link now, rather than at the next reconciliation."""
        return self._flush(self._offer_everywhere(ids, now))

    # ---- persistence ------------------------------------------------------------------
    @property
    def sessions(self) -> Mapping[bytes, Session]:
        return self._state.sessions

    @property
    def _own(self) -> Mapping[bytes, tuple[bytes, int]]:
        return self._state.own

    def forget_sessions(self) -> None:
        """Drop every end-to-end session from memory (a panic; the next message to each
        contact is a first contact again)."""
        for sid in list(self._state.sessions):
            self._state.drop_session(sid)
        self._tags = {}

    def _prekey_of(self, key: bytes) -> PrekeyRecord | None:
        contact = self.contacts.get(key)
        return None if contact is None else contact.prekey

    def track_state_changes(self) -> None:
        """Start marking changes to the durable state, for :meth:`take_state_changes`."""
        self._state.track()

    def take_state_changes(self) -> dict[bytes, bytes | None]:
        """The rows of the durable state changed since the last call (after
        :meth:`track_state_changes`): key -> value, ``None`` for a deleted row. A driver
        that saves them before carrying out the step's actions keeps "commit before
        acknowledge" at a cost that grows with the change, not with the state."""
        return self._state.take_changes()

    def state_rows(self) -> dict[bytes, bytes]:
        """Every row of the durable state (a first save, a migration)."""
        return self._state.rows(self.contacts)

    def export_state(self) -> bytes:
        """Everything besides the store that must survive a restart, as one blob:
        end-to-end sessions, learned prekeys, receipts (ours, released, pending), the
        exactly-once guard and bulletin slots. It holds secrets: keep it encrypted.
        Routing-strategy tables are not kept (they rebuild from new contacts)."""
        return self._state.export(self.contacts)

    def restore_state(self, data: bytes, now: int) -> None:
        """Load :meth:`export_state` output (this version's or the one before). Raises
        :class:`~crypto.errors.DecodeError` if the state is malformed."""
        self.restore_rows(rows_from_blob(data), now)

    def restore_rows(self, rows: Mapping[bytes, bytes], now: int) -> None:
        """Load saved rows (after adding contacts) and re-index the store. Raises
        :class:`~crypto.errors.DecodeError` if a row is malformed."""
        for key, rec in self._state.load(rows):
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
        self._rebuild_tags(now)  # wakes stored session envelopes that are for us
        for h in self._state.own:
            for eid in self.store.ids_with_receipt(h):
                self.store.protect(eid)
        for secret in self._state.pending:  # delivered, receipt not yet released
            for eid in self.store.ids_with_receipt(receipt_hash(secret)):
                self.store.protect(eid)
        self._maybe_mine = [eid for h in self.my_hints() for eid in self.store.ids_with_tag(h)]

    def deliver_stored(self, now: int) -> list[Action]:
        """Open and deliver envelopes for us that are still in the store (after a restart:
        a crash may have come between storing and delivering); call :meth:`index_store`
        (or :meth:`restore_state`) first. The exactly-once guard keeps anything delivered
        before from being delivered again."""
        actions = self._deliver_waiting(now)  # session envelopes: woken by index_store
        mine, self._maybe_mine = self._maybe_mine, []
        for eid in mine:
            frame = self.store.get(eid)
            if frame is not None:
                actions += self._maybe_deliver(E.decode(frame), eid, now)
        return self._flush(actions)

    def my_hints(self) -> frozenset[bytes]:
        ids = tuple(k.prekey_id for k in self.ring.keys)
        if ids != self._hints_for:
            self._hints = frozenset(hint_for(k.record.public) for k in self.ring.keys)
            self._hints_for = ids
        return self._hints

    def is_mine(self, tag: bytes) -> bool:
        """Is an envelope with this routing tag addressed to us (a session tag we expect),
        or maybe (one of our 1-byte first-contact hints)?"""
        return message_tag(tag) in self._tags or (len(tag) == 1 and tag in self.my_hints())

    def _receive_keys(self) -> list[bytes]:
        """The tag keys of the sessions we receive in, most recently used first (for the
        routing strategy, which may derive what it announces from them)."""
        ordered = sorted(self.sessions.values(), key=lambda s: (-s.last_used, s.sid))
        return [s.recv_tag_key for s in ordered]

    def _rebuild_tags(self, now: int) -> None:
        """The whole tag table from the sessions' windows (on start)."""
        self._tags = {}
        for sess in self.sessions.values():
            sess.window.expire(now)
            self._expect(sess, sess.expected_tags())

    def _expire_tags(self, now: int) -> None:
        """Stop expecting counters whose messages can no longer be alive (at each sweep)."""
        for sess in self.sessions.values():
            gone, new = sess.window.expire(now)
            if gone or new:
                self._state.touch_session(sess)
            for tag in sess.tags_for(gone):
                self._tags.pop(tag, None)
            self._expect(sess, sess.tags_for(new))

    def _expect(self, sess: Session, tags: dict[bytes, int]) -> None:
        """Add tags a session now expects; stored envelopes carrying one are woken."""
        for tag, counter in tags.items():
            self._tags[tag] = (sess.sid, counter)
            if self.store.ids_with_tag(tag):
                self._woken.append(tag)

    # ---- helpers ----------------------------------------------------------------------
    def _count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    def _transmit(self, link: int, out: LinkOutput) -> list[Action]:
        return [Transmit(link, f) for f in out.frames]

    def _send_msg(self, link: int, msg: P.Message) -> list[Action]:
        ln = self.links.get(link)
        if ln is None or ln.session.state is not LinkState.OPEN:
            return []
        data = P.encode(msg)
        self._count("protocol_bytes_sent", len(data))
        ln.outbox.append(data)  # sent as batched records by _flush
        return []

    @staticmethod
    def _batch_bytes(ln: _Link) -> int:
        """How much one record gathers: on a stream all of BATCH_BYTES; on a message link
        (Bluetooth LE) about eight frames, so a contact cut short loses little."""
        if ln.session.stream:
            return P.BATCH_BYTES
        return max(1024, min(P.BATCH_BYTES, 8 * ln.session.mtu))

    def _flush(self, actions: list[Action]) -> list[Action]:
        """Append the records that carry every link's queued messages (at the end of each
        call into the node, so one event's messages share records)."""
        for link, ln in self.links.items():
            if not ln.outbox:
                continue
            if ln.session.state is LinkState.OPEN:
                for record in P.batch(ln.outbox, self._batch_bytes(ln)):
                    actions += self._transmit(link, ln.session.send(record))
            ln.outbox = []
        return actions

    def _send_trade(
        self,
        link: int,
        offer: list[tuple[bytes, bytes]],
        want: list[bytes],
        mine: list[bytes],
        ask: list[bytes],
    ) -> list[Action]:
        """One or more TRADE messages, each within the protocol's list limit."""
        actions: list[Action] = []
        n = TRADE_CHUNK
        chunks = max(1, -(-max(len(offer), len(want), len(ask)) // n))
        mine_set = set(mine)
        for c in range(chunks):
            w = want[c * n : (c + 1) * n]
            actions += self._send_msg(
                link,
                P.Trade(
                    offer[c * n : (c + 1) * n],
                    self.strategy.NEEDS_DESTINATION,
                    w,
                    [i for i in w if i in mine_set],
                    ask[c * n : (c + 1) * n],
                ),
            )
        return actions

    def _forget_link(self, link: int) -> _Link | None:
        """The one place a link ends: drop its state and tell the strategy."""
        ln = self.links.pop(link, None)
        if ln is not None:
            self.strategy.on_contact_end(ln.peer, self._now)
        return ln

    def _close(self, link: int, reason: str) -> list[Action]:
        ln = self._forget_link(link)
        if ln is None:
            return []
        out = ln.session.close()
        return [*self._transmit(link, out), CloseLink(link, reason)]

    def _required_difficulty(self) -> int:
        """The stamp work an unprotected envelope needs to get in now, announced in HELLO:
        the base while there is room; once the store is full, one bit more than the least
        valuable envelope it would have to evict (lowest rank first), so the cost of a
        flood grows with the work the flooder already spent and honest senders, told the
        figure, stamp their own mail to it. Mail for us needs only the base."""
        base = self.config.base_difficulty
        lowest = self.store.lowest_rank(E.MAX_FRAME)
        if lowest is None or lowest >= PRIO_PUBLIC:
            return base
        return min(MAX_DEMAND, max(base, lowest % PRIO_PUBLIC + 1))

    def _store_local(self, env: E.Envelope, now: int) -> PutStatus:
        """Store an envelope we originate: protected (ahead of everything relayed, outside
        the per-source quotas), under a random source label and a public rank, so its row
        looks like any relayed one."""
        item = self._item(env, env.id(), E.encode(env), self.rng(16))
        return self.store.put(replace(item, protected=True), now).status

    def _item(self, env: E.Envelope, eid: bytes, frame: bytes, source: bytes) -> StoreItem:
        return StoreItem(
            eid,
            frame,
            env.expiry,
            self._rank(env, eid),
            source,
            env.tag,
            env.receipt,
            env.budget,
        )

    @staticmethod
    def _rank(env: E.Envelope, eid: bytes) -> int:
        """Public facts only: signed public records above the rest, then stamp work."""
        cls = PRIO_PUBLIC if env.kind in (E.Kind.BULLETIN, E.Kind.PREKEY) else PRIO_OTHER
        return cls + min(255, leading_zero_bits(eid, env.stamp))

    def _ranked(self, ids: list[bytes]) -> list[tuple[bytes, int]]:
        """``(id, expiry)`` of the stored, unexpired ones among ``ids``, in the order this
        node offers and hands them over (:attr:`NodeConfig.offer_order`; "priority": its
        own and its contacts' first, then public records, then soonest expiry)."""
        order = self.config.offer_order
        salt = self.rng(8) if order == "random" else b""
        keyed: list[tuple[Any, int, bytes]] = []
        for i in ids:
            meta = self.store.meta(i)
            if i in self._published:  # ours: ahead of all, like our own messages
                meta = Meta(self._published[i][1], PRIO_PUBLIC, 0)
            if meta is None or meta.expiry <= self._now:
                continue
            if order == "fifo":
                key: Any = meta.seq
            elif order == "random":
                key = blake2b(salt + i, digest_size=8)
            else:
                ours = i in self._published or self.store.is_protected(i)
                key = (not ours, -(meta.priority // PRIO_PUBLIC))
            keyed.append((key, meta.expiry, i))
        keyed.sort()
        return [(i, expiry) for _k, expiry, i in keyed]

    # ---- links ------------------------------------------------------------------------
    def _link_up(self, ev: LinkUp, now: int) -> list[Action]:
        if ev.link in self.links:
            return self._close(ev.link, "duplicate link id")
        key = self.config.long_term_link_key
        static = KeyPair.from_private(key) if key else KeyPair.generate(self.rng)
        session = LinkSession(
            initiator=ev.initiator,
            static=static,
            mtu=ev.mtu,
            rng=self.rng,
            now=now,
            stream=ev.stream,
        )
        self.links[ev.link] = _Link(
            session,
            self._bucket_for(ev.source) if ev.source else self._new_bucket(),
            Decoder(self.config.sync_symbols, self.config.initial_symbols),
            label=ev.source,
            last_heard=now,
        )
        return self._transmit(ev.link, session.start())

    def _new_bucket(self) -> TokenBucket:
        return TokenBucket(self.config.link_rate, self.config.link_burst)

    def _bucket_for(self, source: bytes) -> TokenBucket:
        """One token bucket per source label, shared by its links and kept across
        reconnects (a flooder that reconnects does not start over)."""
        bucket = self._buckets.pop(source, None) or self._new_bucket()
        self._buckets[source] = bucket  # most recently used last
        while len(self._buckets) > MAX_SOURCES:
            del self._buckets[next(iter(self._buckets))]
        return bucket

    def _link_down(self, ev: LinkDown, now: int) -> list[Action]:
        self._forget_link(ev.link)
        return []

    def _frame(self, ev: FrameReceived, now: int) -> list[Action]:
        ln = self.links.get(ev.link)
        if ln is None:
            return []
        out = ln.session.receive_frame(ev.data, now)
        ln.serve_left = MAX_SERVE
        actions = self._transmit(ev.link, out)
        if out.closed is not None:
            self._forget_link(ev.link)
            self._count("links_closed_" + out.closed.name.lower())
            return [*actions, CloseLink(ev.link, out.closed.value)]
        if out.opened:
            actions.append(LinkOpened(ev.link, ln.peer))
            info = self.strategy.routing_info(self._receive_keys(), now)
            hello = P.Hello(P.VERSION, self.strategy.NAME, info, self._required_difficulty())
            actions += self._send_msg(ev.link, hello)
        for raw in out.messages:
            # The parse boundary of the message layer: a PeerError raised while decoding
            # or checking a message closes this link and nothing else. Handlers raise it
            # only before they change any state.
            ln.last_heard = now
            try:
                for msg in P.decode_record(raw):
                    actions += self._on_message(ev.link, msg, now)
                    if ev.link not in self.links:
                        break
            except PeerError as exc:
                self._count("protocol_errors")
                log.info("link %d: peer broke the protocol: %s", ev.link, exc)
                return [*actions, *self._close(ev.link, f"protocol error: {exc}")]
            if ev.link not in self.links:
                break
        return actions

    def _on_message(self, link: int, msg: P.Message, now: int) -> list[Action]:
        ln = self.links[link]
        if isinstance(msg, P.Hello):
            return self._on_hello(link, ln, msg, now)
        if ln.hello is None:
            return self._close(link, "message before HELLO")
        if isinstance(msg, P.SymbolsMsg):
            return self._on_symbols(link, ln, msg, now)
        if isinstance(msg, P.More):
            return self._on_more(link, ln, msg)
        if isinstance(msg, P.Trade):
            return self._on_trade(link, ln, msg, now)
        if isinstance(msg, P.EnvelopeMsg):
            return self._on_envelope(link, ln, msg, now)
        return self._on_receipts(link, msg, now)

    def _on_hello(self, link: int, ln: _Link, msg: P.Hello, now: int) -> list[Action]:
        if ln.hello is not None:
            return self._close(link, "second HELLO")
        ln.hello = msg
        self.strategy.on_contact(ln.peer, msg.routing_info, now)
        actions = self._send_receipts_to(link, now)
        return actions + self._start_sync(link, ln, now)

    # ---- reconciliation (mesh.core.sync) ------------------------------------------------
    def _start_sync(self, link: int, ln: _Link, now: int) -> list[Action]:
        """The link responder pulls a reconciliation of everything (at HELLO, and again
        every ``resync_every`` seconds unless one is still running)."""
        ln.last_sync = now
        if ln.session.initiator:
            return []
        return self._request(link, ln.decoder.start())

    def _request(self, link: int, req: Request | None) -> list[Action]:
        if req is None:
            return []
        r = req.range
        return self._send_msg(link, P.More(r.depth, r.prefix, req.start, req.upto))

    def _local_symbols(self, rng: Range, count: int, at: int | None = None) -> Symbols | None:
        syms = self.store.symbols(count, *rng.bounds(), at=at)
        lo, hi = rng.bounds()
        extra = [i for i in self._published if lo <= i and (hi is None or i < hi)]
        if syms is not None and extra:
            syms.xor_in(encode_set(extra, count), 1)
        return syms

    def _decoder_symbols(self, rng: Range, count: int) -> Symbols:
        syms = self._local_symbols(rng, count)
        assert syms is not None  # the present is always known
        return syms

    def _on_more(self, link: int, ln: _Link, msg: P.More) -> list[Action]:
        rng = Range(msg.depth, msg.prefix)
        check_request(rng, msg.start, msg.upto)
        # An honest decoder asks again only once our SYMBOLS are in: one request per read.
        # Up to MAX_SERVE symbols (the most one may ask, if served from 0) per read, so a
        # record batching MOREs cannot make us build gigabytes of SYMBOLS at once.
        if msg.upto > ln.serve_left:
            raise SyncError("MOREs for more than MAX_SERVE symbols in one read")
        ln.serve_left -= msg.upto
        start, now = msg.start, self._now
        mark = ln.marks.get(rng) if start else None
        syms = None if mark is None else self._local_symbols(rng, msg.upto, mark[0])
        if syms is None:  # a new range, or the changes since its mark are forgotten
            start = 0
            if rng == FULL:
                ln.marks.clear()  # a fresh reconciliation: earlier ranges are done
            ln.marks[rng] = (self.store.mark(), now)
            while len(ln.marks) > MAX_MARKS:
                del ln.marks[next(iter(ln.marks))]
            syms = self._decoder_symbols(rng, msg.upto)
        actions: list[Action] = []
        for lo in range(start, msg.upto, P.MAX_SYMBOLS_PER_MESSAGE):
            hi = min(msg.upto, lo + P.MAX_SYMBOLS_PER_MESSAGE)
            blob, counts = syms.encode(lo, hi), syms.counts_slice(lo, hi)
            actions += self._send_msg(link, P.SymbolsMsg(rng.depth, rng.prefix, lo, blob, counts))
        self._count("symbols_sent", msg.upto - start)
        return actions

    def _on_symbols(self, link: int, ln: _Link, msg: P.SymbolsMsg, now: int) -> list[Action]:
        rng = Range(msg.depth, msg.prefix)
        rounds = ln.decoder.rounds
        diff, req = ln.decoder.on_symbols(
            rng, msg.start, msg.blob, msg.counts, self._decoder_symbols
        )
        self._count("sync_rounds", ln.decoder.rounds - rounds)
        actions = self._request(link, req)
        if diff is None:
            return actions
        if not ln.decoder.active:
            self._count("syncs")
        lacking = [i for i in diff.only_remote if self._wanted(i, now)]
        offer = self._offer_items([i for i, _e in self._ranked(diff.only_local)], ln)
        want: list[bytes] = []
        if self._peer_needs_marks(ln):
            ask = lacking  # the peer offers them with their tags; we mark ours
        else:  # the peer decides without marks: ask for them outright, saving a round
            ask, (want, _mine) = [], self._take_room(ln, [(i, False) for i in lacking], now)
        if ask or offer or want:
            actions += self._send_trade(link, offer, want, [], ask)
        return actions

    @staticmethod
    def _peer_needs_marks(ln: _Link) -> bool:
        """Does the peer's strategy (named in its HELLO) need to know which envelopes
        are addressed to us before it hands them over? Unknown strategies: assume so."""
        cls = STRATEGIES.get(ln.hello.strategy) if ln.hello is not None else None
        return cls is None or cls.NEEDS_DESTINATION

    def _wanted(self, envelope_id: bytes, now: int) -> bool:
        """Not stored, not delivered or purged, not already asked for on some link."""
        return (
            envelope_id not in self._published
            and not self.store.has(envelope_id)
            and not self.store.is_seen(envelope_id, now)
            and not any(envelope_id in ln.asked for ln in self.links.values())
        )

    def _header(self, envelope_id: bytes) -> tuple[bytes, int] | None:
        """(tag, budget) of a stored envelope, or None if it is not stored."""
        if envelope_id in self._published:
            return b"", E.decode(self._published[envelope_id][0]).budget
        return self.store.header(envelope_id)

    def _offer_items(self, ids: list[bytes], ln: _Link) -> list[tuple[bytes, bytes]]:
        """``(id, tag)`` of what we can give this peer: not what it would refuse for want
        of stamp work (our own we stamp up to its demand when we hand them over)."""
        demand = ln.hello.difficulty if ln.hello is not None else 0
        items = []
        for i in ids:
            header = self._header(i)
            if header is None:
                continue
            if demand and not self._ours(i) and self._stamp_bits(i) < demand:
                self._count("withheld_stamp")
                continue
            items.append((i, header[0]))
        return items

    def _ours(self, envelope_id: bytes) -> bool:
        return envelope_id in self._published or self.store.is_protected(envelope_id)

    def _stamp_bits(self, envelope_id: bytes) -> int:
        meta = self.store.meta(envelope_id)
        return 0 if meta is None else meta.priority % PRIO_PUBLIC  # see _rank

    def _offer_everywhere(self, ids: list[bytes], now: int, skip: int = -1) -> list[Action]:
        actions: list[Action] = []
        for link, ln in list(self.links.items()):
            if link == skip or ln.hello is None or ln.session.state is not LinkState.OPEN:
                continue
            offer = self._offer_items(ids, ln)
            if offer:
                actions += self._send_trade(link, offer, [], [], [])
        return actions

    # ---- trading ----------------------------------------------------------------------
    def _on_trade(self, link: int, ln: _Link, msg: P.Trade, now: int) -> list[Action]:
        actions = self._give(link, ln, msg.want, set(msg.mine), now)
        wanted = [
            (i, msg.need_dest and self.is_mine(t)) for i, t in msg.offer if self._wanted(i, now)
        ]
        want, mine = self._take_room(ln, wanted, now)
        offer = self._offer_items([i for i, _e in self._ranked(msg.ask)], ln)
        if want or offer:
            actions += self._send_trade(link, offer, want, mine, [])
        return actions

    def _take_room(
        self, ln: _Link, wanted: list[tuple[bytes, bool]], now: int
    ) -> tuple[list[bytes], list[bytes]]:
        """Ask for no more than the link's token bucket will accept, counting what is
        already on its way: the rest waits in `deferred` (see _ask_deferred). Returns the
        ids to want now and those among them marked as ours."""
        room = self._room(ln, now)
        ln.deferred += wanted[room:]
        if len(ln.deferred) > MAX_DEFERRED:  # bounded: reconciled again once drained
            del ln.deferred[MAX_DEFERRED:]
            ln.overflowed = True
        want = [i for i, _m in wanted[:room]]
        ln.asked.update(dict.fromkeys(want, now))
        return want, [i for i, m in wanted[:room] if m]

    def _room(self, ln: _Link, now: int) -> int:
        """How many more envelopes this link may be asked for now. An ask unanswered for
        ASK_TIMEOUT seconds (the peer's strategy withheld it, or it was lost) is dropped:
        the id may be asked for again, and arriving late it counts as unsolicited."""
        stale = [i for i, t in ln.asked.items() if now - t > ASK_TIMEOUT]
        for i in stale:
            del ln.asked[i]
        return max(0, int(ln.bucket.available(now)) - len(ln.asked))

    def _ask_deferred(self, link: int, ln: _Link, now: int) -> list[Action]:
        room = self._room(ln, now)
        if not room:
            return []
        batch, ln.deferred = ln.deferred[:room], ln.deferred[room:]
        batch = [(i, m) for i, m in batch if self._wanted(i, now)]
        want = [i for i, _m in batch]
        ln.asked.update(dict.fromkeys(want, now))
        mine = [i for i, m in batch if m]
        return self._send_trade(link, [], want, mine, []) if want else []

    def _give(
        self, link: int, ln: _Link, want: list[bytes], mine: set[bytes], now: int
    ) -> list[Action]:
        actions: list[Action] = []
        for i, expiry in self._ranked(want):
            header = self._header(i)
            if header is None:
                continue
            tag, budget = header
            is_dest, candidate = destination(tag, i in mine)
            view = EnvView(i, budget, expiry, tag, candidate=candidate)
            handoff = self.strategy.decide(view, ln.peer, is_dest, now)
            if not handoff.give:
                self._count("withheld")
                continue
            frame = self._stamped_for(i, ln, budget)
            if frame is None:
                continue
            give = max(0, min(handoff.peer_budget, E.MAX_BUDGET))
            copy = frame if give == budget else E.rebudget(frame, give)
            actions += self._send_msg(link, P.EnvelopeMsg(copy))
            self._count("envelopes_sent")
            if self.observer is not None:
                self.observer("sent", i, link, copy)
            if handoff.keep_budget != budget:
                keep = handoff.keep_budget
                if i in self._published:
                    self._published[i] = (E.rebudget(frame, keep), expiry)
                else:
                    self.store.replace_data(i, E.rebudget(frame, keep), keep)
        return actions

    def _stamped_for(self, envelope_id: bytes, ln: _Link, budget: int) -> bytes | None:
        """The frame to hand this peer: our own restamped (once, kept) if the peer now
        demands more work than it carries; None for another's that it would refuse."""
        frame = self._frame_of(envelope_id)
        demand = ln.hello.difficulty if ln.hello is not None else 0
        if frame is None or not demand:
            return frame
        env = E.decode(frame)
        if verify_stamp(envelope_id, env.stamp, demand):
            return frame
        if not self._ours(envelope_id):
            self._count("withheld_stamp")
            return None
        frame = E.encode(M.stamped(env, demand, self.rng))
        self._count("restamped")
        if envelope_id in self._published:
            self._published[envelope_id] = (frame, env.expiry)
        else:
            self.store.replace_data(envelope_id, frame, budget)
        return frame

    def _frame_of(self, envelope_id: bytes) -> bytes | None:
        published = self._published.get(envelope_id)
        return published[0] if published else self.store.get(envelope_id)

    # ---- arriving envelopes -----------------------------------------------------------
    def _on_envelope(self, link: int, ln: _Link, msg: P.EnvelopeMsg, now: int) -> list[Action]:
        if not ln.bucket.take(now):
            self._count("rate_limited")
            return []
        try:
            env = E.decode(msg.frame)
        except E.EnvelopeError:
            self._count("bad_envelopes")
            return self._close(link, "malformed envelope")
        eid = env.id()
        if self.observer is not None:
            self.observer("received", eid, link, msg.frame)
        if eid not in ln.asked:
            self._count("unsolicited")
            return self._close(link, "unsolicited envelope")
        del ln.asked[eid]
        return self._admit(env, eid, bytes(msg.frame), ln.source, link, now)

    def _admit(
        self, env: E.Envelope, eid: bytes, frame: bytes, source: bytes, link: int, now: int
    ) -> list[Action]:
        """Validate, store, deliver if ours, offer on the other links. ``frame`` is the
        canonical encoding of ``env`` (strict decoding guarantees it)."""
        reason = self._check(env, eid, now)
        if reason:
            self._count("rejected_" + reason)
            return []
        if env.budget > self.config.max_budget:
            env = env.with_budget(self.config.max_budget)
            frame = E.encode(env)
        # Mail for one of our sessions is protected at once; a first contact only once it
        # opens (junk can carry anyone's public 1-byte hint).
        ours = env.kind is E.Kind.SESSION and message_tag(env.tag) in self._tags
        item = replace(self._item(env, eid, frame, source), protected=ours)
        result = self.store.put(item, now)
        self._count("put_" + result.status.value)
        if result.status is not PutStatus.STORED:
            return []
        self._count("evicted", len(result.evicted))
        if env.kind is E.Kind.BULLETIN:
            self._superseded(env, eid, now)
        actions = self._maybe_deliver(env, eid, now)
        if self.store.has(eid):  # carried for others: offer it on our other links now
            actions += self._offer_everywhere([eid], now, skip=link)
        return actions

    def import_frames(self, frames: list[bytes], source: bytes, now: int) -> list[Action]:
        """Envelopes from a file bundle (sneakernet): the same checks and quotas as from a
        network peer (strict decoding, stamp, expiry, signatures, per-source and global
        quotas), then delivered if ours and offered to open links."""
        actions: list[Action] = []
        for frame in frames:
            try:
                env = E.decode(frame)
            except E.EnvelopeError:
                self._count("bad_envelopes")
                continue
            actions += self._admit(env, env.id(), frame, source, -1, now)
        return self._flush(actions)

    def import_bundle(
        self, frames: list[bytes], receipts: list[bytes], source: bytes, now: int
    ) -> tuple[list[Action], dict[str, int]]:
        """A file bundle: its receipts first (so what they answer is not stored again),
        then its envelopes as :meth:`import_frames`. Returns the actions and how many
        envelopes went each way (:data:`IMPORT_OUTCOMES`), and ``receipts`` taken."""
        before = dict(self.stats)
        actions = self._take_receipts(receipts, -1, now)
        acked = sum(isinstance(a, MessageAcked) for a in actions)
        actions += self.import_frames(frames, source, now)
        counts = dict.fromkeys([*dict.fromkeys(IMPORT_OUTCOMES.values()), "other"], 0)
        for key, n in self.stats.items():
            grew = n - before.get(key, 0)
            if grew and key.startswith(("put_", "rejected_", "bad_", "delivered")):
                counts[IMPORT_OUTCOMES.get(key.removeprefix("rejected_"), "other")] += grew
        counts["stored"] = max(0, counts["stored"] - counts["delivered"])  # stored first
        counts["receipts"] = len({r for r in receipts if receipt_hash(r) in self._state.receipts})
        counts["acked"] = acked
        return actions, counts

    def export_receipts(self, now: int) -> tuple[list[bytes], int]:
        """The released receipts this node passes on, for a bundle, and the latest expiry
        among them (a receipt is kept as long as what it answers can be alive)."""
        live = [(s, exp) for s, exp in self._state.receipts.values() if exp > now]
        return [s for s, _e in live], max((e for _s, e in live), default=0)

    def export_frames(self, max_bytes: int, now: int) -> tuple[list[bytes], int]:
        """Stored, unexpired envelopes for a bundle, highest priority and soonest expiry
        first, up to ``max_bytes`` of frames; and the latest expiry among them."""
        ranked = []
        for eid in self.store.ids_in_range(b"", None):
            meta = self.store.meta(eid)
            if meta is not None and meta.expiry > now:
                ranked.append((-meta.priority, meta.expiry, eid))
        ranked += [(-PRIO_PUBLIC, exp, i) for i, (_f, exp) in self._published.items() if exp > now]
        out: list[bytes] = []
        total = latest = 0
        for _p, expiry, eid in sorted(ranked):
            frame = self._frame_of(eid)
            if frame is None or total + len(frame) > max_bytes:
                continue
            out.append(frame)
            total += len(frame)
            latest = max(latest, expiry)
        return out, latest

    def _superseded(self, env: E.Envelope, eid: bytes, now: int) -> None:
        """A bulletin was stored: it is its slot's newest; delete the post it replaces."""
        old = self._slots.stored(M.read_bulletin_envelope(env), eid, now)
        if old is not None and old != eid and self.store.delete(old, now):
            self._count("bulletins_superseded")

    def _check(self, env: E.Envelope, eid: bytes, now: int) -> str:
        """Why an arriving envelope is refused ("" if it is not). The stamp must carry the
        base work; under load, whether it gets in is the store's eviction by rank (stamp
        work included), never a blanket refusal that would lock honest mail out too."""
        if env.expiry <= now:
            return "expired"
        if env.expiry > now + self.config.max_ttl + 3600:
            return "expiry_too_far"
        if env.receipt and env.receipt in self._state.receipts and self.config.purge_delivered:
            self.store.mark_seen(eid, env.expiry, now)
            return "already_receipted"
        if not verify_stamp(eid, env.stamp, self.config.base_difficulty):  # eid = env.id()
            return "stamp"
        try:
            if env.kind is E.Kind.BULLETIN:
                bulletin = M.read_bulletin_envelope(env)
                bulletin.verify(now)
                why = self._slots.refuse(bulletin, now)
                if why:
                    self.store.mark_seen(eid, env.expiry, now)
                    return why
            elif env.kind is E.Kind.PREKEY:
                rec = M.read_prekey_envelope(env)
                rec.verify(rec.identity_key, now)
                self._learn_prekey(rec)
        except (CryptoError, E.EnvelopeError):
            return "bad_signature"
        return ""

    def _learn_prekey(self, rec: PrekeyRecord) -> None:
        contact = self.contacts.get(rec.identity_key)
        if contact is not None and (
            contact.prekey is None or rec.created >= contact.prekey.created
        ):
            contact.prekey = rec
            self._state.touch_prekey(rec.identity_key)

    def _maybe_deliver(self, env: E.Envelope, eid: bytes, now: int) -> list[Action]:
        if env.kind is E.Kind.SESSION and message_tag(env.tag) in self._tags:
            return self._deliver_session(env, eid, now) + self._deliver_waiting(now)
        if env.kind is not E.Kind.FIRST_CONTACT or env.tag not in self.my_hints():
            return []
        if not self._trials.take(now):  # junk can carry our public hint: bound the work
            if len(self._untried) < MAX_UNTRIED:
                self._untried.append(eid)
            self._count("trials_deferred")
            return []
        try:
            opened = M.open_first_contact_envelope(self.identity, self.ring, env, now)
        except (CryptoError, E.EnvelopeError):
            return []  # a hint collision: someone else's message
        key = next((k for k in self.ring.keys if k.prekey_id == opened.prekey_id), None)
        if key is not None and opened.session_secret:
            sess = Session.as_bob(
                opened.session_secret,
                opened.sender.sign_public,
                KeyPair(key.private, key.record.public),
                now,
            )
            if sess.sid not in self.sessions:
                self._state.add_session(sess)
                if opened.sender.sign_public not in self.contacts:
                    self._state.meet_stranger(opened.sender)
                self._expect(sess, sess.expected_tags())
                self._bound_stranger_sessions()
        self.store.protect(eid)
        actions = self._finish_delivery(
            env,
            eid,
            now,
            opened.sender.sign_public,
            opened.created,
            opened.msg_id,
            opened.body,
            opened.receipt_secret,
        )
        return actions + self._deliver_waiting(now)

    def _bound_stranger_sessions(self) -> None:
        """At most ``stranger_sessions`` sessions opened by people who are not our
        contacts: the least recently used goes (its tags with it)."""
        strangers = [x for x in self.sessions.values() if x.peer not in self.contacts]
        excess = len(strangers) - self.config.stranger_sessions
        for sess in sorted(strangers, key=lambda x: x.last_used)[: max(0, excess)]:
            self._state.drop_session(sess.sid)
            self._tags = {t: v for t, v in self._tags.items() if v[0] != sess.sid}
            self._count("stranger_sessions_dropped")
            if not any(x.peer == sess.peer for x in self.sessions.values()):
                self._state.forget_stranger(sess.peer)

    def _try_deferred(self, now: int) -> list[Action]:
        """First contacts that waited for trial-decryption budget, as it returns."""
        actions: list[Action] = []
        while self._untried and self._trials.available(now) >= 1:
            eid = self._untried.pop(0)
            frame = self.store.get(eid)
            if frame is not None:
                actions += self._maybe_deliver(E.decode(frame), eid, now)
        return actions

    def _deliver_waiting(self, now: int) -> list[Action]:
        """Open stored session envelopes whose tags became expected: they arrived before
        the first contact that set up their session, or too far ahead of the window."""
        actions: list[Action] = []
        while self._woken:
            tag = self._woken.pop()
            if tag not in self._tags:
                continue
            for eid in self.store.ids_with_tag(tag):
                frame = self.store.get(eid)
                if frame is None:
                    continue
                actions += self._deliver_session(E.decode(frame), eid, now)
                if tag not in self._tags:
                    break  # opened: other copies with this tag are junk or duplicates
        return actions

    def _deliver_session(self, env: E.Envelope, eid: bytes, now: int) -> list[Action]:
        tag = message_tag(env.tag)
        sid, counter = self._tags[tag]
        sess = self.sessions[sid]
        try:
            inner, fresh = sess.open(env.body, env.header(), counter, now, self.rng)
        except (CryptoError, E.EnvelopeError):
            self._count("session_open_failed")
            return []
        del self._tags[tag]
        self._state.touch_session(sess)
        self._expect(sess, sess.tags_for(fresh))
        self.store.protect(eid)
        return self._finish_delivery(
            env, eid, now, sess.peer, inner.created, inner.msg_id, inner.body, inner.receipt_secret
        )

    def _finish_delivery(
        self,
        env: E.Envelope,
        eid: bytes,
        now: int,
        sender: bytes,
        created: int,
        msg_id: bytes,
        body: bytes,
        secret: bytes,
    ) -> list[Action]:
        """Deliver once. Our copy stays in the store, and is offered like any relayed one,
        until the receipt is released (it then purges every copy, ours too): a neighbour
        must not see it vanish the moment it reaches its recipient."""
        if not self._state.first_delivery(msg_id, env.expiry):
            self.store.delete(eid, now)
            return []
        if secret and receipt_hash(secret) == env.receipt:
            lo, hi = self.config.receipt_delay
            delay = lo + int.from_bytes(self.rng(4), "big") % max(1, hi - lo + 1)
            self._state.hold_receipt(secret, now + delay, env.expiry)
        else:
            self.store.delete(eid, now)  # no receipt to wait for
        self._count("delivered")
        return [MessageDelivered(sender, created, msg_id, body)]

    # ---- receipts ---------------------------------------------------------------------
    def _on_receipts(self, link: int, msg: P.Receipts, now: int) -> list[Action]:
        return self._take_receipts(msg.secrets, link, now)

    def _take_receipts(self, secrets: Iterable[bytes], link: int, now: int) -> list[Action]:
        """Released receipts from a neighbour (or a bundle, ``link`` -1): purge what they
        answer, tell the user about their own mail, pass the new ones on."""
        actions: list[Action] = []
        fresh: list[bytes] = []
        for secret in secrets:
            if secret in self._state.known_secrets:
                continue
            h = receipt_hash(secret)
            if h in self._state.receipts:
                continue
            eids = self.store.ids_with_receipt(h)
            own = self._state.pop_own(h)
            msg_id = own[0] if own else None
            if not eids and msg_id is None:
                self._count("receipts_unmatched")
                continue
            expiry = now + self.config.max_ttl
            if eids:
                metas = [m for m in map(self.store.meta, eids) if m is not None]
                expiry = max((m.expiry for m in metas), default=expiry)
                self._purge(eids, now)
            self._state.add_receipt(h, secret, expiry)
            fresh.append(secret)
            if msg_id is not None:
                actions.append(MessageAcked(msg_id))
        if fresh:  # pass validated receipts on at once: relays purge early
            actions += self._pass_receipts(fresh, but=link)
        return actions

    def _pass_receipts(self, secrets: list[bytes], but: int = -1) -> list[Action]:
        """Receipts to every open link (``but`` one), in messages of at most
        ``P.MAX_LIST`` (thousands may fall due in one tick, or come in one bundle)."""
        actions: list[Action] = []
        for link, ln in list(self.links.items()):
            if link != but and ln.hello is not None:
                for i in range(0, len(secrets), P.MAX_LIST):
                    actions += self._send_msg(link, P.Receipts(secrets[i : i + P.MAX_LIST]))
        return actions

    def _purge(self, eids: list[bytes], now: int) -> None:
        """Drop delivered copies (ours or carried for others), unless configured to keep
        carrying them (``purge_delivered`` off)."""
        if self.config.purge_delivered:
            for eid in eids:
                if self.store.delete(eid, now):
                    self._count("purged_by_receipt")

    def _send_receipts_to(self, link: int, now: int) -> list[Action]:
        secrets = [s for s, exp in self._state.receipts.values() if exp > now][: P.MAX_LIST]
        return self._send_msg(link, P.Receipts(secrets)) if secrets else []

    # ---- sending ----------------------------------------------------------------------
    def _session_for(self, peer: bytes) -> Session | None:
        usable = [s for s in self.sessions.values() if s.peer == peer and s.can_send]
        return max(usable, key=lambda s: s.last_used) if usable else None

    def _send(self, ev: SendMessage, now: int) -> list[Action]:
        contact = self.contacts.get(ev.recipient)
        if contact is None:
            return [SendFailed(ev.recipient, "not a contact")]
        if M.is_blank(ev.body):
            return [SendFailed(ev.recipient, EMPTY_TEXT)]
        if len(ev.body) > MAX_BODY:
            return [
                SendFailed(
                    ev.recipient, f"message too long ({len(ev.body)} bytes, at most {MAX_BODY})"
                )
            ]
        no_prekey = contact.prekey is None or contact.prekey.expires <= now
        if self._session_for(ev.recipient) is None and no_prekey:
            return [SendFailed(ev.recipient, "no current prekey for this contact yet")]
        if not self.store.would_admit_protected(E.MAX_FRAME):
            # Checked before sealing, so no session state moves for a message never sent.
            return [SendFailed(ev.recipient, "the envelope store is full of your own mail")]
        budget = min(self.strategy.INITIAL_BUDGET, self.config.max_budget)
        msg_id = self.rng(16)
        ttl = min(ev.ttl, self.config.max_ttl)
        sess = self._session_for(ev.recipient)
        if sess is not None:
            route = self.strategy.route_for(sess.send_tag_key, now)
            env = M.session_envelope(
                sess,
                ev.body,
                now=now,
                ttl=ttl,
                rng=self.rng,
                msg_id=msg_id,
                budget=budget,
                route=route,
            )
            sess.last_used = now
            self._state.touch_session(sess)
        else:
            assert contact.prekey is not None
            secret: list[bytes] = []
            env = M.first_contact_envelope(
                self.identity,
                contact.identity,
                contact.prekey,
                ev.body,
                now=now,
                ttl=ttl,
                rng=self.rng,
                budget=budget,
                tag=hint_for(contact.prekey.public),
                msg_id=msg_id,
                secret_out=secret,
            )
            new = Session.as_alice(secret[0], ev.recipient, contact.prekey.public, self.rng, now)
            self._state.add_session(new)
            self._expect(new, new.expected_tags())
        env = M.stamped(env, self.config.mint_difficulty, self.rng)
        status = self._store_local(env, now)
        if status is not PutStatus.STORED:  # cannot happen after the room check above
            raise LocalError(f"own envelope not stored: {status.value}")
        self._state.expect_receipt(env.receipt, msg_id, env.expiry)
        return [MessageQueued(msg_id, env.id()), *self._offer_everywhere([env.id()], now)]

    def _forget_expired(self, now: int) -> None:
        """Bound the in-memory indexes: drop what refers to expired or gone envelopes."""
        self._state.expire(now)

    # ---- time -------------------------------------------------------------------------
    def _release_marks(self, now: int) -> None:
        """Forget served ranges nobody asked about for a resync interval, and the store's
        changes older than every mark still held."""
        oldest: int | None = None
        for ln in self.links.values():
            stale = [r for r, (_m, t) in ln.marks.items() if now - t > self.config.resync_every]
            for r in stale:
                del ln.marks[r]
            for m, _t in ln.marks.values():
                oldest = m if oldest is None else min(oldest, m)
        self.store.release(oldest)

    def _tick(self, _ev: Tick, now: int) -> list[Action]:
        actions: list[Action] = []
        for link, ln in list(self.links.items()):
            out = ln.session.tick(now)
            actions += self._transmit(link, out)
            if out.closed is not None:
                self._forget_link(link)
                actions.append(CloseLink(link, out.closed.value))
            elif ln.hello is not None and now - ln.last_heard >= self.config.idle_timeout:
                self._count("links_closed_idle")  # an honest peer speaks every resync
                actions += self._close(link, "idle")
            elif ln.hello is not None and now >= ln.last_sync + self.config.resync_every:
                if not ln.decoder.active or now >= ln.last_sync + 2 * self.config.resync_every:
                    actions += self._start_sync(link, ln, now)
                else:
                    ln.last_sync = now  # a large reconciliation is still running
            elif ln.hello is not None and ln.deferred:
                actions += self._ask_deferred(link, ln, now)
            elif ln.hello is not None and ln.overflowed and not ln.decoder.active:
                # Everything we could hold on to has been asked for: pull a fresh
                # reconciliation for the rest now rather than at the next resync.
                ln.overflowed = False
                actions += self._request(link, ln.decoder.start())
        self._release_marks(now)
        actions += self._try_deferred(now)
        due = self._state.due_receipts(now)
        if due:
            for secret, expiry in due:
                h = receipt_hash(secret)
                self._state.add_receipt(h, secret, expiry)
                self._purge(self.store.ids_with_receipt(h), now)  # our copy, at last
            actions += self._pass_receipts([s for s, _e in due])
        if now >= self._next_sweep:
            self.store.sweep(now)
            self._forget_expired(now)
            self._expire_tags(now)
            actions += self._deliver_waiting(now)
            self._next_sweep = now + self.config.sweep_every
            if self.ring.rotate(self.identity, now, self.rng) is not None:
                actions += self.publish_prekey(now)
            self.ring.prune(now)
        return actions
