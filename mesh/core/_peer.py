"""Per-link protocol state of a node (private to :mod:`mesh.core.node`).

Theory of operation
-------------------
Each link runs a :class:`~mesh.core.link.LinkSession` (Noise XX, records padded to the
MTU) and, above it, a :class:`Peer` whose :class:`PeerPhase` says which protocol messages
are legal, as data in :data:`LEGAL` (per role and phase; a message outside it closes the
link with the phase's :data:`REFUSAL`):

- ``HANDSHAKE``: the link session is not open yet; no messages.
- ``GREETING``: the session is open and our HELLO went out; only the peer's HELLO is legal.
  Both HELLOs travel inside the Noise XX handshake (the responder's in the second
  message, the initiator's in the third), encrypted and before either side has a link
  open, so a contact trades one round trip sooner; the session's first record handed up
  is the peer's HELLO, and a handshake without one closes the link.
- ``TRADING``: both HELLOs are in; reconciliation (SYMBOLS, MORE), TRADE, ENVELOPE,
  RECEIPTS (:mod:`mesh.core._trade`) and LINKS, the proofs that find a second link to
  the same node (:mod:`mesh.core._duplicates`). A second HELLO is illegal.

Both roles accept the same messages in each phase: which side reconciles is the
decoder's business (a MORE or SYMBOLS the decoder does not expect is refused there, as a
:class:`~mesh.core.sync.SyncError`). Messages are queued per link (:func:`queue`) and
leave as batched records when the node's call ends (:meth:`Peers.flush`), so one
event's messages share records. Any :class:`~mesh.core.errors.PeerError` raised while
decoding or handling a record closes that link and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from crypto.noise import KeyPair
from mesh.core._context import Context
from mesh.core._duplicates import tags_for, twin_of
from mesh.core.envelope import Envelope, EnvelopeError, decode
from mesh.core.errors import PeerError
from mesh.core.events import (
    Action,
    CloseLink,
    FrameReceived,
    LinkDown,
    LinkOpened,
    LinkUp,
    Transmit,
)
from mesh.core.flood import TokenBucket
from mesh.core.link import LinkOutput, LinkSession, LinkState
from mesh.core.protocol import (
    BATCH_BYTES,
    MAX_LIST,
    VERSION,
    EnvelopeMsg,
    Hello,
    Links,
    Message,
    More,
    Receipts,
    SymbolsMsg,
    Trade,
    batch,
    decode_record,
    encode,
)
from mesh.core.stats import CLOSED, Stat
from mesh.core.sync import MAX_SERVE, Decoder, Range

if TYPE_CHECKING:
    from mesh.core._admission import Admission
    from mesh.core._trade import Trader

log = logging.getLogger(__name__)


class Role(Enum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


class PeerPhase(Enum):
    HANDSHAKE = "handshake"
    GREETING = "greeting"
    TRADING = "trading"


_TRADING = frozenset({SymbolsMsg, More, Trade, EnvelopeMsg, Receipts, Links})
LEGAL: Mapping[tuple[Role, PeerPhase], frozenset[type]] = MappingProxyType(
    {
        (role, phase): allowed
        for role in Role
        for phase, allowed in (
            (PeerPhase.HANDSHAKE, frozenset()),
            (PeerPhase.GREETING, frozenset({Hello})),
            (PeerPhase.TRADING, _TRADING),
        )
    }
)
REFUSAL: Mapping[PeerPhase, str] = MappingProxyType(
    {
        PeerPhase.HANDSHAKE: "message before HELLO",
        PeerPhase.GREETING: "message before HELLO",
        PeerPhase.TRADING: "second HELLO",
    }
)


@dataclass(slots=True)
class Peer:
    session: LinkSession
    bucket: TokenBucket
    decoder: Decoder
    hello: Hello | None = None
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

    @property
    def role(self) -> Role:
        return Role.INITIATOR if self.session.initiator else Role.RESPONDER

    @property
    def phase(self) -> PeerPhase:
        if self.hello is not None:
            return PeerPhase.TRADING
        return PeerPhase.GREETING if self.session.state is LinkState.OPEN else PeerPhase.HANDSHAKE

    def batch_bytes(self) -> int:
        """How much one record gathers: on a stream all of BATCH_BYTES; on a message link
        (Bluetooth LE) about eight frames, so a contact cut short loses little."""
        if self.session.stream:
            return BATCH_BYTES
        return max(1024, min(BATCH_BYTES, 8 * self.session.mtu))


def queue(ctx: Context, ln: Peer | None, msg: Message) -> None:
    """Queue a message on an open link (sent as batched records by :meth:`Peers.flush`)."""
    if ln is None or ln.session.state is not LinkState.OPEN:
        return
    data = encode(msg)
    ctx.stats.count(Stat.PROTOCOL_BYTES_SENT, len(data))
    ln.outbox.append(data)


def transmit(link: int, out: LinkOutput) -> list[Action]:
    return [Transmit(link, f) for f in out.frames]


# (envelope, id, frame, source, link, now) -> actions: the node's admission of an envelope
Admit = Callable[[Envelope, bytes, bytes, bytes, int, int], list[Action]]
# (secrets, link, now) -> actions: the node taking receipts
TakeReceipts = Callable[[list[bytes], int, int], list[Action]]


class Peers:
    """The links and their peers: lifecycle, message dispatch, records, time."""

    def __init__(
        self,
        ctx: Context,
        admission: Admission,
        trader: Trader,
        receive_keys: Callable[[], list[bytes]],
        admit: Admit,
        take_receipts: TakeReceipts,
    ) -> None:
        self._ctx = ctx
        self._admission = admission
        self._trader = trader
        self._receive_keys = receive_keys
        self._admit = admit
        self._take_receipts = take_receipts
        self.links: dict[int, Peer] = trader.links
        self._handlers: Mapping[type, Callable[[int, Peer, Any, int], list[Action]]] = (
            MappingProxyType(
                {
                    Hello: self._on_hello,
                    SymbolsMsg: trader.on_symbols,
                    More: trader.on_more,
                    Trade: trader.on_trade,
                    EnvelopeMsg: self._on_envelope,
                    Receipts: self._on_receipts,
                    Links: self._on_links,
                }
            )
        )

    # ---- link lifecycle ---------------------------------------------------------------
    def link_up(self, ev: LinkUp, now: int) -> list[Action]:
        if ev.link in self.links:
            return self.close(ev.link, "duplicate link id", now)
        cfg = self._ctx.config
        key = cfg.long_term_link_key
        static = KeyPair.from_private(key) if key else KeyPair.generate(self._ctx.rng)
        hello = batch([encode(self._hello(now))])[0]  # rides in our handshake message
        self._ctx.stats.count(Stat.PROTOCOL_BYTES_SENT, len(hello))
        session = LinkSession(
            initiator=ev.initiator,
            static=static,
            mtu=ev.mtu,
            rng=self._ctx.rng,
            now=now,
            hello=hello,
            stream=ev.stream,
        )
        self.links[ev.link] = Peer(
            session,
            self._admission.bucket_for(ev.source),
            Decoder(cfg.sync_symbols, cfg.initial_symbols),
            label=ev.source,
            last_heard=now,
        )
        return transmit(ev.link, session.start())

    def link_down(self, ev: LinkDown, now: int) -> list[Action]:
        self.forget(ev.link, now)
        return []

    def forget(self, link: int, now: int) -> Peer | None:
        """The one place a link ends: drop its state and tell the strategy."""
        ln = self.links.pop(link, None)
        if ln is not None:
            self._ctx.strategy.on_contact_end(ln.peer, now)
        return ln

    def close(self, link: int, reason: str, now: int) -> list[Action]:
        ln = self.forget(link, now)
        if ln is None:
            return []
        out = ln.session.close()
        return [*transmit(link, out), CloseLink(link, reason)]

    # ---- input ------------------------------------------------------------------------
    def frame(self, ev: FrameReceived, now: int) -> list[Action]:
        ln = self.links.get(ev.link)
        if ln is None:
            return []
        out = ln.session.receive_frame(ev.data, now)
        ln.serve_left = MAX_SERVE
        actions = transmit(ev.link, out)
        if out.closed is not None:
            self.forget(ev.link, now)
            self._ctx.stats.count(CLOSED[out.closed])
            return [*actions, CloseLink(ev.link, out.closed.value)]
        records = out.messages
        if out.opened:  # the peer's HELLO came in its handshake message, ours in ours
            actions.append(LinkOpened(ev.link, ln.peer))
            if not ln.session.peer_hello:
                return [*actions, *self.close(ev.link, "no HELLO in the handshake", now)]
            if self._ourselves_or_proofs(ev.link, ln, now, actions):  # closed both ends
                return actions
            records = [ln.session.peer_hello, *records]
        for raw in records:
            # The parse boundary of the message layer: a PeerError raised while decoding
            # or checking a message closes this link and nothing else. Handlers raise it
            # only before they change any state.
            ln.last_heard = now
            try:
                for msg in decode_record(raw):
                    actions += self._on_message(ev.link, msg, now)
                    if ev.link not in self.links:
                        break
            except PeerError as exc:
                self._ctx.stats.count(Stat.PROTOCOL_ERRORS)
                log.info("link %d: peer broke the protocol: %s", ev.link, exc)
                return [*actions, *self.close(ev.link, f"protocol error: {exc}", now)]
            if ev.link not in self.links:
                break
        return actions

    # ---- duplicate links (mesh.core._duplicates) ---------------------------------------
    def _open_hashes(self, but: int) -> dict[int, bytes]:
        return {
            k: p.session.handshake_hash
            for k, p in self.links.items()
            if k != but and p.session.state is LinkState.OPEN
        }

    def _ourselves_or_proofs(self, link: int, ln: Peer, now: int, actions: list[Action]) -> bool:
        """A link just opened: if its other end is ours too (the same handshake hash on
        another of our links), close both; else send LINKS proofs (on it, of our other
        open links; on each of those, of it)."""
        this, others = ln.session.handshake_hash, self._open_hashes(link)
        twin = next((k for k, h in others.items() if h == this), None)
        if twin is not None:
            self._ctx.stats.count(Stat.LINKS_CLOSED_SELF, 2)
            actions += self.close(twin, "a link to ourselves", now)
            actions += self.close(link, "a link to ourselves", now)
            return True
        queue(self._ctx, ln, Links(tags_for(this, others.values())))
        for k, h in others.items():
            queue(self._ctx, self.links[k], Links(tags_for(h, [this])))
        return False

    def _on_links(self, link: int, ln: Peer, msg: Links, now: int) -> list[Action]:
        this = ln.session.handshake_hash
        others = self._open_hashes(link)
        twin = twin_of(this, msg.tags, others)
        if twin is None:
            return []
        self._ctx.stats.count(Stat.LINKS_CLOSED_DUPLICATE)  # both ends close the same one
        loser = link if this > others[twin] else twin
        return self.close(loser, "a second link to the same node", now)

    def _hello(self, now: int) -> Hello:
        strategy = self._ctx.strategy
        info = strategy.routing_info(self._receive_keys(), now)
        return Hello(VERSION, strategy.NAME, info, self._admission.required_difficulty())

    def _on_message(self, link: int, msg: Message, now: int) -> list[Action]:
        ln = self.links[link]
        phase = ln.phase
        if type(msg) not in LEGAL[ln.role, phase]:
            return self.close(link, REFUSAL[phase], now)
        return self._handlers[type(msg)](link, ln, msg, now)

    def _on_hello(self, link: int, ln: Peer, msg: Hello, now: int) -> list[Action]:
        ln.hello = msg
        self._ctx.strategy.on_contact(ln.peer, msg.routing_info, now)
        self.send_receipts_to(link, now)
        return self._trader.start_sync(link, ln, now)

    def _on_envelope(self, link: int, ln: Peer, msg: EnvelopeMsg, now: int) -> list[Action]:
        stats = self._ctx.stats
        if not ln.bucket.take(now):
            stats.count(Stat.RATE_LIMITED)
            return []
        try:
            env = decode(msg.frame)
        except EnvelopeError:
            stats.count(Stat.BAD_ENVELOPES)
            return self.close(link, "malformed envelope", now)
        eid = env.id()
        observer = self._ctx.observer
        if observer is not None:
            observer("received", eid, link, msg.frame)
        if eid not in ln.asked:
            stats.count(Stat.UNSOLICITED)
            return self.close(link, "unsolicited envelope", now)
        del ln.asked[eid]
        return self._admit(env, eid, bytes(msg.frame), ln.source, link, now)

    def _on_receipts(self, link: int, _ln: Peer, msg: Receipts, now: int) -> list[Action]:
        return self._take_receipts(msg.secrets, link, now)

    # ---- output -----------------------------------------------------------------------
    def pass_receipts(self, secrets: list[bytes], but: int = -1) -> None:
        """Receipts to every open link (``but`` one), in messages of at most ``MAX_LIST``
        (thousands may fall due in one tick, or come in one bundle)."""
        for link, ln in list(self.links.items()):
            if link != but and ln.hello is not None:
                for i in range(0, len(secrets), MAX_LIST):
                    queue(self._ctx, self.links.get(link), Receipts(secrets[i : i + MAX_LIST]))

    def send_receipts_to(self, link: int, now: int) -> None:
        state = self._ctx.state
        secrets = [s for s, exp in state.receipts.values() if exp > now][:MAX_LIST]
        if secrets:
            queue(self._ctx, self.links.get(link), Receipts(secrets))

    def flush(self, actions: list[Action]) -> list[Action]:
        """Append the records that carry every link's queued messages (at the end of each
        call into the node, so one event's messages share records)."""
        for link, ln in self.links.items():
            if not ln.outbox:
                continue
            if ln.session.state is LinkState.OPEN:
                for record in batch(ln.outbox, ln.batch_bytes()):
                    actions += transmit(link, ln.session.send(record))
            ln.outbox = []
        return actions

    # ---- time -------------------------------------------------------------------------
    def next_deadline(self, now: int) -> list[int]:
        cfg = self._ctx.config
        times = []
        for ln in self.links.values():
            d = ln.session.next_deadline()
            if d is not None:
                times.append(d)
            if ln.session.state is LinkState.OPEN and ln.hello is not None:
                times.append(ln.last_sync + cfg.resync_every)
                times.append(ln.last_heard + cfg.idle_timeout)
                if ln.deferred or ln.overflowed:
                    times.append(now + 1)
        return times

    def tick(self, now: int) -> list[Action]:
        cfg, trader = self._ctx.config, self._trader
        actions: list[Action] = []
        for link, ln in list(self.links.items()):
            out = ln.session.tick(now)
            actions += transmit(link, out)
            if out.closed is not None:
                self.forget(link, now)
                actions.append(CloseLink(link, out.closed.value))
            elif ln.hello is not None and now - ln.last_heard >= cfg.idle_timeout:
                self._ctx.stats.count(Stat.LINKS_CLOSED_IDLE)  # an honest peer speaks every resync
                actions += self.close(link, "idle", now)
            elif ln.hello is not None and now >= ln.last_sync + cfg.resync_every:
                if not ln.decoder.active or now >= ln.last_sync + 2 * cfg.resync_every:
                    actions += trader.start_sync(link, ln, now)
                else:
                    ln.last_sync = now  # a large reconciliation is still running
            elif ln.hello is not None and ln.deferred:
                actions += trader.ask_deferred(link, ln, now)
            elif ln.hello is not None and ln.overflowed and not ln.decoder.active:
                # Everything we could hold on to has been asked for: pull a fresh
                # reconciliation for the rest now rather than at the next resync.
                ln.overflowed = False
                actions += trader.request(link, ln.decoder.start())
        self._release_marks(now)
        return actions

    def _release_marks(self, now: int) -> None:
        """Forget served ranges nobody asked about for a resync interval, and the store's
        changes older than every mark still held."""
        oldest: int | None = None
        resync = self._ctx.config.resync_every
        for ln in self.links.values():
            stale = [r for r, (_m, t) in ln.marks.items() if now - t > resync]
            for r in stale:
                del ln.marks[r]
            for m, _t in ln.marks.values():
                oldest = m if oldest is None else min(oldest, m)
        self._ctx.store.release(oldest)
