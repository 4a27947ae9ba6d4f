"""Reconciliation and trade on a link in its ``TRADING`` phase (private to the node).

The link initiator pulls rateless-IBLT symbols of the responder's envelope ids (MORE,
SYMBOLS; :mod:`mesh.core.sync`) and peels out the symmetric difference; then both sides
TRADE: each offers ``(id, tag)`` of what the other lacks, each asks only for what it
wants (not held, not in its seen-set, not asked for on another link), and the routing
strategy decides per envelope whether to hand it over and with which budget. A node asks
for no more envelopes than the link's token bucket will take (counting those on their
way) and asks for the rest as tokens return; an ask unanswered for ``ASK_TIMEOUT``
seconds is forgotten.
"""

from __future__ import annotations

from collections.abc import Callable

from crypto.stamp import verify_stamp
from mesh.core._context import Context
from mesh.core._index import EnvelopeIndex
from mesh.core._peer import Peer, queue
from mesh.core.config import ASK_TIMEOUT, MAX_DEFERRED, MAX_MARKS, TRADE_CHUNK
from mesh.core.envelope import MAX_BUDGET, decode, encode, rebudget
from mesh.core.events import Action
from mesh.core.link import LinkState
from mesh.core.messages import stamped
from mesh.core.protocol import (
    MAX_SYMBOLS_PER_MESSAGE,
    EnvelopeMsg,
    Message,
    More,
    SymbolsMsg,
    Trade,
)
from mesh.core.routing import STRATEGIES, EnvView, destination
from mesh.core.stats import Stat
from mesh.core.sync import FULL, Range, Request, SyncError, check_request


class Trader:
    def __init__(self, ctx: Context, index: EnvelopeIndex, is_mine: Callable[[bytes], bool]):
        self._ctx = ctx
        self._index = index
        self._is_mine = is_mine
        self.links: dict[int, Peer] = {}

    def _send(self, link: int, msg: Message) -> None:
        queue(self._ctx, self.links.get(link), msg)

    # ---- reconciliation ---------------------------------------------------------------
    def start_sync(self, link: int, ln: Peer, now: int) -> list[Action]:
        """The link initiator pulls a reconciliation of everything (at HELLO, which came in
        the handshake, and again every ``resync_every`` seconds unless one is running)."""
        ln.last_sync = now
        if not ln.session.initiator:
            return []
        return self.request(link, ln.decoder.start())

    def request(self, link: int, req: Request | None) -> list[Action]:
        if req is not None:
            r = req.range
            self._send(link, More(r.depth, r.prefix, req.start, req.upto))
        return []

    def on_more(self, link: int, ln: Peer, msg: More, now: int) -> list[Action]:
        rng = Range(msg.depth, msg.prefix)
        check_request(rng, msg.start, msg.upto)
        # An honest decoder asks again only once our SYMBOLS are in: one request per read.
        # Up to MAX_SERVE symbols (the most one may ask, if served from 0) per read, so a
        # record batching MOREs cannot make us build gigabytes of SYMBOLS at once.
        if msg.upto > ln.serve_left:
            raise SyncError("MOREs for more than MAX_SERVE symbols in one read")
        ln.serve_left -= msg.upto
        start = msg.start
        mark = ln.marks.get(rng) if start else None
        syms = None if mark is None else self._index.symbols(rng, msg.upto, mark[0])
        if syms is None:  # a new range, or the changes since its mark are forgotten
            start = 0
            if rng == FULL:
                ln.marks.clear()  # a fresh reconciliation: earlier ranges are done
            ln.marks[rng] = (self._ctx.store.mark(), now)
            while len(ln.marks) > MAX_MARKS:
                del ln.marks[next(iter(ln.marks))]
            syms = self._index.current_symbols(rng, msg.upto)
        for lo in range(start, msg.upto, MAX_SYMBOLS_PER_MESSAGE):
            hi = min(msg.upto, lo + MAX_SYMBOLS_PER_MESSAGE)
            blob, counts = syms.encode(lo, hi), syms.counts_slice(lo, hi)
            self._send(link, SymbolsMsg(rng.depth, rng.prefix, lo, blob, counts))
        self._ctx.stats.count(Stat.SYMBOLS_SENT, msg.upto - start)
        return []

    def on_symbols(self, link: int, ln: Peer, msg: SymbolsMsg, now: int) -> list[Action]:
        rng = Range(msg.depth, msg.prefix)
        rounds = ln.decoder.rounds
        diff, req = ln.decoder.on_symbols(
            rng, msg.start, msg.blob, msg.counts, self._index.current_symbols
        )
        self._ctx.stats.count(Stat.SYNC_ROUNDS, ln.decoder.rounds - rounds)
        actions = self.request(link, req)
        if diff is None:
            return actions
        if not ln.decoder.active:
            self._ctx.stats.count(Stat.SYNCS)
        lacking = [i for i in diff.only_remote if self.wanted(i, now)]
        offer = self.offer_items([i for i, _e in self._index.ranked(diff.only_local, now)], ln)
        want: list[bytes] = []
        if _peer_needs_marks(ln) or self._ctx.config.direct_first:
            ask = lacking  # the peer offers them with their tags; we mark ours
        else:  # the peer decides without marks: ask for them outright, saving a round
            ask, (want, _mine) = [], self._take_room(ln, [(i, False) for i in lacking], now)
        if ask or offer or want:
            actions += self._send_trade(link, offer, want, [], ask)
        return actions

    def wanted(self, envelope_id: bytes, now: int) -> bool:
        """Not held, not delivered or purged, not already asked for on some link."""
        return self._index.lacks(envelope_id, now) and not any(
            envelope_id in ln.asked for ln in self.links.values()
        )

    # ---- offering ---------------------------------------------------------------------
    def offer_items(self, ids: list[bytes], ln: Peer) -> list[tuple[bytes, bytes]]:
        """``(id, tag)`` of what we can give this peer: not what it would refuse for want
        of stamp work (our own we stamp up to its demand when we hand them over)."""
        demand = ln.hello.difficulty if ln.hello is not None else 0
        items = []
        for i in ids:
            header = self._index.header(i)
            if header is None:
                continue
            if demand and not self._index.ours(i) and self._stamp_bits(i) < demand:
                self._ctx.stats.count(Stat.WITHHELD_STAMP)
                continue
            items.append((i, header[0]))
        return items

    def _stamp_bits(self, envelope_id: bytes) -> int:
        return self._index.stamp_bits(envelope_id)

    def offer_everywhere(self, ids: list[bytes], skip: int = -1) -> list[Action]:
        actions: list[Action] = []
        for link, ln in list(self.links.items()):
            if link == skip or ln.hello is None or ln.session.state is not LinkState.OPEN:
                continue
            offer = self.offer_items(ids, ln)
            if offer:
                actions += self._send_trade(link, offer, [], [], [])
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
        n = TRADE_CHUNK
        chunks = max(1, -(-max(len(offer), len(want), len(ask)) // n))
        mine_set = set(mine)
        need_dest = self._ctx.strategy.NEEDS_DESTINATION or self._ctx.config.direct_first
        for c in range(chunks):
            w = want[c * n : (c + 1) * n]
            chunk_offer, chunk_ask = offer[c * n : (c + 1) * n], ask[c * n : (c + 1) * n]
            mine_w = [i for i in w if i in mine_set]
            self._send(link, Trade(chunk_offer, need_dest, w, mine_w, chunk_ask))
        return []

    # ---- trading ----------------------------------------------------------------------
    def on_trade(self, link: int, ln: Peer, msg: Trade, now: int) -> list[Action]:
        actions = self._give(link, ln, msg.want, set(msg.mine), now)
        marks = msg.need_dest or self._ctx.config.direct_first
        wanted = [(i, marks and self._is_mine(t)) for i, t in msg.offer if self.wanted(i, now)]
        if self._ctx.config.direct_first:  # ours first, within the room the bucket gives
            wanted.sort(key=lambda w: not w[1])
        want, mine = self._take_room(ln, wanted, now)
        offer = self.offer_items([i for i, _e in self._index.ranked(msg.ask, now)], ln)
        if want or offer:
            actions += self._send_trade(link, offer, want, mine, [])
        return actions

    def _take_room(
        self, ln: Peer, wanted: list[tuple[bytes, bool]], now: int
    ) -> tuple[list[bytes], list[bytes]]:
        """Ask for no more than the link's token bucket will accept, counting what is
        already on its way: the rest waits in `deferred` (see ask_deferred). Returns the
        ids to want now and those among them marked as ours."""
        room = self._room(ln, now)
        ln.deferred += wanted[room:]
        if len(ln.deferred) > MAX_DEFERRED:  # bounded: reconciled again once drained
            del ln.deferred[MAX_DEFERRED:]
            ln.overflowed = True
        want = [i for i, _m in wanted[:room]]
        ln.asked.update(dict.fromkeys(want, now))
        return want, [i for i, m in wanted[:room] if m]

    def _room(self, ln: Peer, now: int) -> int:
        """How many more envelopes this link may be asked for now. An ask unanswered for
        ASK_TIMEOUT seconds (the peer's strategy withheld it, or it was lost) is dropped:
        the id may be asked for again, and arriving late it counts as unsolicited."""
        stale = [i for i, t in ln.asked.items() if now - t > ASK_TIMEOUT]
        for i in stale:
            del ln.asked[i]
        return max(0, int(ln.bucket.available(now)) - len(ln.asked))

    def ask_deferred(self, link: int, ln: Peer, now: int) -> list[Action]:
        room = self._room(ln, now)
        if not room:
            return []
        batch, ln.deferred = ln.deferred[:room], ln.deferred[room:]
        batch = [(i, m) for i, m in batch if self.wanted(i, now)]
        want = [i for i, _m in batch]
        ln.asked.update(dict.fromkeys(want, now))
        mine = [i for i, m in batch if m]
        return self._send_trade(link, [], want, mine, []) if want else []

    def _give(
        self, link: int, ln: Peer, want: list[bytes], mine: set[bytes], now: int
    ) -> list[Action]:
        ctx, index = self._ctx, self._index
        ranked = index.ranked(want, now)
        if ctx.config.direct_first:  # what the peer marked as its own first
            ranked.sort(key=lambda r: r[0] not in mine)
        for i, expiry in ranked:
            header = index.header(i)
            if header is None:
                continue
            tag, budget = header
            is_dest, candidate = destination(tag, i in mine)
            view = EnvView(i, budget, expiry, tag, candidate=candidate)
            handoff = ctx.strategy.decide(view, ln.peer, is_dest, now)
            if not handoff.give:
                ctx.stats.count(Stat.WITHHELD)
                continue
            frame = self._stamped_for(i, ln, budget)
            if frame is None:
                continue
            give = max(0, min(handoff.peer_budget, MAX_BUDGET))
            copy = frame if give == budget else rebudget(frame, give)
            self._send(link, EnvelopeMsg(copy))
            ctx.stats.count(Stat.ENVELOPES_SENT)
            if ctx.observer is not None:
                ctx.observer("sent", i, link, copy)
            if handoff.keep_budget != budget:
                keep = handoff.keep_budget
                index.set_frame(i, rebudget(frame, keep), keep, expiry)
        return []

    def _stamped_for(self, envelope_id: bytes, ln: Peer, budget: int) -> bytes | None:
        """The frame to hand this peer: our own restamped (once, kept) if the peer now
        demands more work than it carries; None for another's that it would refuse."""
        frame = self._index.frame_of(envelope_id)
        demand = ln.hello.difficulty if ln.hello is not None else 0
        if frame is None or not demand:
            return frame
        env = decode(frame)
        if verify_stamp(envelope_id, env.stamp, demand):
            return frame
        if not self._index.ours(envelope_id):
            self._ctx.stats.count(Stat.WITHHELD_STAMP)
            return None
        frame = encode(stamped(env, demand, self._ctx.rng))
        self._ctx.stats.count(Stat.RESTAMPED)
        self._index.set_frame(envelope_id, frame, budget, env.expiry)
        return frame


def _peer_needs_marks(ln: Peer) -> bool:
    """Does the peer's strategy (named in its HELLO) need to know which envelopes are
    addressed to us before it hands them over? Unknown strategies: assume so."""
    cls = STRATEGIES.get(ln.hello.strategy) if ln.hello is not None else None
    return cls is None or cls.NEEDS_DESTINATION
