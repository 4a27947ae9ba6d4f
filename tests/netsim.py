"""A tiny in-test network for node tests: real Nodes, fake links, a virtual clock.

Not the simulator (that is issue 4's engine): just enough to wire cores back to back
(STYLE.md 5) and to inject chaos (STYLE.md 8): seeded drops, duplicates, reordering,
delays and links cut mid-transfer.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from crypto.identity import Identity
from crypto.prekeys import PrekeyRing
from mesh.core import envelope as E
from mesh.core._trade import Trader
from mesh.core.driver import carry_out
from mesh.core.events import (
    Action,
    BulletinStored,
    CloseLink,
    Event,
    FileAction,
    FrameReceived,
    GroupAction,
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
from mesh.core.memory_store import MemoryStore
from mesh.core.node import Node, NodeConfig
from mesh.core.store import Quotas

T0 = 1_700_000_000


@dataclass
class Chaos:
    drop: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    delay: tuple[float, float] = (0.0, 0.0)


@dataclass
class Net:
    seed: int = 1
    chaos: Chaos = field(default_factory=Chaos)
    now: float = T0
    nodes: list[Node] = field(default_factory=list)
    delivered: dict[int, list[MessageDelivered]] = field(default_factory=dict)
    acked: dict[int, list[bytes]] = field(default_factory=dict)
    bulletins: dict[int, list[BulletinStored]] = field(default_factory=dict)
    files: dict[int, list[FileAction]] = field(default_factory=dict)
    groups: dict[int, list[GroupAction]] = field(default_factory=dict)
    closes: list[tuple[int, str]] = field(default_factory=list)
    frames: int = 0
    bandwidth: float | None = None  # bytes per second per link direction (None: instant)
    wire_bytes: int = 0
    sent_bytes: dict[int, int] = field(default_factory=dict)  # per node

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._queue: list[tuple[float, int, int, int, bytes]] = []  # (t, seq, node, link, data)
        self._seq = 0
        self._links: dict[tuple[int, int], tuple[int, int]] = {}  # (node, link) -> peer end
        self._next_link = 1
        self._last: dict[tuple[int, int], float] = {}

    def add(
        self,
        config: NodeConfig | None = None,
        quotas: Quotas | None = None,
        kind: type[Node] = Node,
    ) -> int:
        """A node; ``kind``: a Node subclass to model a peer running modified code."""
        r = random.Random(self.rng.getrandbits(64))
        ident = Identity.generate(r.randbytes)
        ring = PrekeyRing()
        ring.create(ident, int(self.now), r.randbytes)
        node = kind(
            ident,
            ring,
            MemoryStore(quotas),
            r.randbytes,
            config or NodeConfig(mint_difficulty=4, base_difficulty=4, receipt_delay=(5, 30)),
        )
        self.nodes.append(node)
        idx = len(self.nodes) - 1
        self.delivered[idx] = []
        self.acked[idx] = []
        self.bulletins[idx] = []
        self.files[idx] = []
        self.groups[idx] = []
        return idx

    def introduce_all(self) -> None:
        """Everyone has everyone's card and current prekey (met in person earlier)."""
        for a in self.nodes:
            for b in self.nodes:
                if a is not b:
                    a.add_contact(b.identity.public(), b.ring.keys[-1].record)

    def apply(self, idx: int, actions: list[Action]) -> None:
        carry_out(actions, _NodeActions(self, idx))

    def transmit(self, idx: int, link: int, data: bytes) -> None:
        peer = self._links.get((idx, link))
        if peer is None:
            return
        self.frames += 1
        self.wire_bytes += len(data)
        self.sent_bytes[idx] = self.sent_bytes.get(idx, 0) + len(data)
        self._schedule(peer, data)

    def close(self, idx: int, link: int, reason: str) -> None:
        self.closes.append((idx, reason))
        self._cut_end(idx, link)

    def _schedule(self, peer: tuple[int, int], data: bytes) -> None:
        c = self.chaos
        if self.rng.random() < c.drop:
            return
        copies = 2 if self.rng.random() < c.dup else 1
        for _ in range(copies):
            at = self.now + self.rng.uniform(*c.delay)
            if self.rng.random() < c.reorder:
                at = max(self.now, at - self.rng.uniform(0.0, 0.5))  # overtakes others
            else:
                at = max(at, self._last.get(peer, 0.0))  # links deliver in order
                if self.bandwidth:
                    at += len(data) / self.bandwidth
                self._last[peer] = at
            self._seq += 1
            heapq.heappush(self._queue, (at, self._seq, peer[0], peer[1], data))

    def _cut_end(self, idx: int, link: int) -> None:
        peer = self._links.pop((idx, link), None)
        if peer is not None and peer in self._links:
            self._links.pop(peer, None)
            self.event(peer[0], LinkDown(peer[1]))

    def event(self, idx: int, ev: Event) -> None:
        self.apply(idx, self.nodes[idx].handle(ev, int(self.now)))

    def connect(
        self, a: int, b: int, mtu: int = 1400, stream: bool = False, source: bytes = b""
    ) -> tuple[int, int]:
        """Link ``a`` (initiator) to ``b``; ``source``: the label ``b``'s driver gives the
        link (as a daemon labels a remote address; ``a`` gets ``b``'s index)."""
        la, lb = self._next_link, self._next_link + 1
        self._next_link += 2
        self._links[(a, la)] = (b, lb)
        self._links[(b, lb)] = (a, la)
        self.event(b, LinkUp(lb, initiator=False, mtu=mtu, stream=stream, source=source))
        self.event(a, LinkUp(la, initiator=True, mtu=mtu, stream=stream))
        return la, lb

    def disconnect(self, a: int, la: int) -> None:
        peer = self._links.pop((a, la), None)
        self.event(a, LinkDown(la))
        if peer is not None:
            self._links.pop(peer, None)
            self.event(peer[0], LinkDown(peer[1]))

    def run(self, seconds: float, tick: float = 1.0) -> None:
        end = self.now + seconds
        next_tick = self.now
        while self.now < end:
            if self._queue and self._queue[0][0] <= min(next_tick, end):
                t, _s, idx, link, data = heapq.heappop(self._queue)
                self.now = max(self.now, t)
                if (idx, link) in self._links:
                    self.event(idx, FrameReceived(link, data))
                continue
            self.now = min(next_tick, end)
            for i in range(len(self.nodes)):
                self.event(i, Tick())
            next_tick = self.now + tick

    def send(self, a: int, b: int, text: bytes, ttl: int = 3 * 86400) -> bytes:
        """Node ``a`` sends ``text`` to node ``b``; returns the message id."""
        actions = self.nodes[a].handle(
            SendMessage(self.nodes[b].identity.sign_public, text, ttl), int(self.now)
        )
        self.apply(a, actions)
        queued = [x for x in actions if isinstance(x, MessageQueued)]
        assert queued, actions
        return queued[0].msg_id

    def links_of(self, idx: int) -> list[int]:
        return [link for (n, link) in self._links if n == idx]


@dataclass(frozen=True, slots=True)
class _NodeActions:
    """What one node's actions do in the test network (an ``ActionSink``)."""

    net: Net
    idx: int

    def on_transmit(self, act: Transmit) -> None:
        self.net.transmit(self.idx, act.link, act.data)

    def on_close_link(self, act: CloseLink) -> None:
        self.net.close(self.idx, act.link, act.reason)

    def on_link_opened(self, act: LinkOpened) -> None:
        return  # tests that need the link key read the actions themselves

    def on_message_delivered(self, act: MessageDelivered) -> None:
        self.net.delivered[self.idx].append(act)

    def on_message_queued(self, act: MessageQueued) -> None:
        return  # Net.send reads the message id from the actions it returns

    def on_message_acked(self, act: MessageAcked) -> None:
        self.net.acked[self.idx].append(act.msg_id)

    def on_send_failed(self, act: SendFailed) -> None:
        return  # Net.send asserts the message was queued

    def on_bulletin_stored(self, act: BulletinStored) -> None:
        self.net.bulletins[self.idx].append(act)

    def on_file(self, act: FileAction) -> None:
        self.net.files[self.idx].append(act)

    def on_group(self, act: GroupAction) -> None:
        self.net.groups[self.idx].append(act)


class _CarelessTrader(Trader):
    def _stamped_for(self, envelope_id: bytes, ln: Any, budget: int) -> bytes | None:
        return self._index.frame_of(envelope_id)

    def _stamp_bits(self, envelope_id: bytes) -> int:
        return 255


class CarelessSender(Node):
    """A peer that hands over whatever it holds, ignoring the stamp work its neighbour
    asks for (a hostile or broken implementation): the receiver's own checks must hold.
    Being another implementation, it swaps the node's private trading part for one that
    skips the stamp checks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trader.__class__ = _CarelessTrader


@dataclass(frozen=True, slots=True)
class BulkWire:
    """One bulk run of :func:`bulk_wire_bytes`."""

    envelope: int  # bytes of one session envelope
    uploaded: int  # bytes the sender sent to the relay
    relay_holds: int  # envelopes in the relay's store afterwards
    downloaded: int  # bytes the relay sent to the recipient
    delivered: int  # messages the recipient opened


def bulk_wire_bytes(n: int, seed: int = 53, seconds: float = 60) -> BulkWire:
    """Alice writes a first contact and ``n`` 100-byte session messages to Bob, uploads
    them to a relay on a stream link, and the relay hands them to Bob on another: the
    bytes each way (flood limit lifted: only the wire is measured)."""
    cfg = NodeConfig(mint_difficulty=1, base_difficulty=0, link_rate=1e9, link_burst=1e9)
    net = Net(seed=seed)
    a, r, b = net.add(cfg), net.add(cfg), net.add(cfg)
    net.introduce_all()
    for _ in range(n + 1):  # the first is the first contact
        net.send(a, b, bytes(100))
    store = net.nodes[a].store
    frames = [f for i in store.ids_in_range(b"", None) if (f := store.get(i))]
    envelope = max(len(f) for f in frames if E.decode(f).kind is E.Kind.SESSION)
    net.run(1)
    before = dict(net.sent_bytes)
    la, _ = net.connect(a, r, stream=True)
    net.run(seconds)
    net.disconnect(a, la)
    up = net.sent_bytes.get(a, 0) - before.get(a, 0)
    holds = net.nodes[r].store.count()
    before = dict(net.sent_bytes)
    net.connect(r, b, stream=True)
    net.run(seconds)
    down = net.sent_bytes.get(r, 0) - before.get(r, 0)
    return BulkWire(envelope, up, holds, down, len(net.delivered[b]))
