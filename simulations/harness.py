"""Runs a scenario: one real :class:`mesh.core.node.Node` per simulated device, driven by
the discrete-event engine in virtual time.

The harness only moves bytes and time: it turns radio contacts into ``LinkUp``/``LinkDown``
events, carries the frames each node transmits to the other end after ``size / bitrate``
seconds (one frame at a time per direction, lost if the contact ends first), ticks each
node at its own ``next_deadline()``, and injects traffic as ``SendMessage`` events. Every
protocol decision is the node's. Metrics are read from the actions nodes return, from the
node's observer hook (envelope sent / received) and from the store's removal hook.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from scipy.spatial import cKDTree

from crypto.identity import Identity
from crypto.prekeys import PrekeyRing
from mesh.core.events import (
    Action,
    CloseLink,
    Event,
    FrameReceived,
    LinkDown,
    LinkUp,
    MessageAcked,
    MessageDelivered,
    MessageQueued,
    SendMessage,
    Tick,
    Transmit,
)
from mesh.core.node import Node, NodeConfig
from mesh.core.store import MemoryStore, Quotas
from simulations.engine import Engine
from simulations.metrics import Metrics
from simulations.mobility import Gatherings, Mobility, RandomWaypoint, Static
from simulations.scenario import Group, Scenario

EPOCH0 = 1_767_225_600  # 2026-01-01 00:00 UTC: simulated time 0 (nodes need wall dates)
LINK_MTU = 1400


@dataclass
class _Contact:
    a: int
    b: int
    link_a: int
    link_b: int
    bitrate: float
    loss: float
    up: bool = False  # LinkUp delivered (after the set-up time)
    busy: dict[int, float] = field(default_factory=dict)  # node -> sending until
    in_flight: dict[int, set[bytes]] = field(default_factory=dict)  # sender -> envelope ids


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        progress: Callable[[float, int], None] | None = None,
    ) -> None:
        self.sc = scenario
        self.seed = scenario.seed if seed is None else seed
        self.rng = random.Random(self.seed)
        self.engine = Engine()
        self.progress = progress
        self.metrics = Metrics()
        self.nodes: list[Node] = []
        self.group_of: list[Group] = []
        self.mobility: list[tuple[Mobility, int]] = []  # (model, first node index)
        self.contacts: dict[tuple[int, int], _Contact] = {}
        self.link_owner: dict[int, tuple[int, tuple[int, int]]] = {}  # link id -> (node, pair)
        self._next_link = 1
        self._tick_at: list[float] = []
        self._build()

    # ---- set-up ------------------------------------------------------------------------
    def _build(self) -> None:
        sc = self.sc
        start = 0
        for group in sc.groups:
            for _ in range(group.count):
                self._add_node(group)
            mob_rng = random.Random(self.rng.getrandbits(64))
            model: Mobility
            if group.movement == "static":
                model = Static([p[0] for p in group.positions], [p[1] for p in group.positions])
            elif group.movement == "gatherings":
                model = Gatherings(
                    group.count,
                    sc.width,
                    sc.height,
                    group.speed,
                    group.wait,
                    mob_rng,
                    list(group.squares),
                    group.square_radius,
                    group.p_square,
                    group.square_wait,
                    sc.warmup,
                )
            else:
                model = RandomWaypoint(
                    group.count, sc.width, sc.height, group.speed, group.wait, mob_rng, sc.warmup
                )
            self.mobility.append((model, start))
            start += group.count
        self._tick_at = [float("inf")] * len(self.nodes)
        self.metrics.node_count = len(self.nodes)

    def _add_node(self, group: Group) -> None:
        idx = len(self.nodes)
        r = random.Random(self.rng.getrandbits(64))
        ident = Identity.generate(r.randbytes)
        ring = PrekeyRing(lifetime=30 * 86400, rotate_every=30 * 86400)
        ring.create(ident, EPOCH0, r.randbytes)
        store = MemoryStore(Quotas(max_total_bytes=group.buffer, max_source_bytes=group.buffer))
        args: tuple[tuple[str, int], ...] = (
            (("copies", group.copies),) if (group.strategy == "spray") else ()
        )
        cfg = NodeConfig(
            strategy=group.strategy,
            strategy_args=args,
            mint_difficulty=self.sc.mint_difficulty,
            base_difficulty=min(self.sc.mint_difficulty, 4),
            receipt_delay=(30, 300),
            resync_every=300,
            max_budget=64,
        )
        node = Node(ident, ring, store, r.randbytes, cfg)
        node.observer = lambda ev, eid, link, i=idx: self._observe(i, ev, eid, link)
        store.on_remove = lambda eid, why, i=idx: self.metrics.removed(i, eid, why, self.engine.now)
        self.nodes.append(node)
        self.group_of.append(group)

    # ---- driving nodes -----------------------------------------------------------------
    def _feed(self, idx: int, event: Event) -> None:
        now = self.engine.now
        actions = self.nodes[idx].handle(event, EPOCH0 + int(now))
        self._apply(idx, actions)
        deadline = self.nodes[idx].next_deadline()
        if deadline is not None:
            at = max(float(deadline - EPOCH0), now + 0.001)
            if at < self._tick_at[idx]:
                self._tick_at[idx] = at
                self.engine.at(at, partial(self._tick, idx, at))

    def _tick(self, idx: int, at: float) -> None:
        if self._tick_at[idx] != at:
            return  # superseded by an earlier tick
        self._tick_at[idx] = float("inf")
        self._feed(idx, Tick())

    def _apply(self, idx: int, actions: list[Action]) -> None:
        now = self.engine.now
        for act in actions:
            if isinstance(act, Transmit):
                self._transmit(idx, act.link, act.data)
            elif isinstance(act, CloseLink):
                owner = self.link_owner.get(act.link)
                if owner is not None:
                    self._contact_down(owner[1], by_node=idx)
            elif isinstance(act, MessageQueued):
                self.metrics.queued(act.msg_id, act.envelope_id, idx, now)
            elif isinstance(act, MessageDelivered):
                self.metrics.delivered(act.msg_id, idx, now)
            elif isinstance(act, MessageAcked):
                self.metrics.acked(act.msg_id, idx, now)

    def _observe(self, idx: int, event: str, eid: bytes, link: int) -> None:
        owner = self.link_owner.get(link)
        if owner is None:
            return
        contact = self.contacts.get(owner[1])
        if contact is None:
            return
        other = contact.b if idx == contact.a else contact.a
        if event == "sent":
            contact.in_flight.setdefault(idx, set()).add(eid)
            self.metrics.started(idx, eid)
        else:
            contact.in_flight.get(other, set()).discard(eid)
            self.metrics.relayed(other, idx, eid, self.engine.now)

    # ---- links -------------------------------------------------------------------------
    def _contact_up(self, a: int, b: int) -> None:
        radio = self.sc.radios[self.group_of[a].radio]
        other = self.sc.radios[self.group_of[b].radio]
        bitrate = min(radio.bitrate, other.bitrate)
        la, lb = self._next_link, self._next_link + 1
        self._next_link += 2
        contact = _Contact(a, b, la, lb, bitrate, max(radio.loss, other.loss))
        self.contacts[(a, b)] = contact
        self.link_owner[la] = (a, (a, b))
        self.link_owner[lb] = (b, (a, b))
        self.metrics.contacts += 1
        setup = max(radio.setup, other.setup)
        self.engine.after(setup, lambda: self._link_up(contact))

    def _link_up(self, contact: _Contact) -> None:
        if self.contacts.get((contact.a, contact.b)) is not contact:
            return
        contact.up = True
        self._feed(contact.b, LinkUp(contact.link_b, initiator=False, mtu=LINK_MTU))
        self._feed(contact.a, LinkUp(contact.link_a, initiator=True, mtu=LINK_MTU))

    def _contact_down(self, pair: tuple[int, int], by_node: int | None = None) -> None:
        contact = self.contacts.pop(pair, None)
        if contact is None:
            return
        for ids in contact.in_flight.values():
            self.metrics.aborted += len(ids)
        self.link_owner.pop(contact.link_a, None)
        self.link_owner.pop(contact.link_b, None)
        if contact.up:
            if by_node != contact.a:
                self._feed(contact.a, LinkDown(contact.link_a))
            if by_node != contact.b:
                self._feed(contact.b, LinkDown(contact.link_b))

    def _transmit(self, idx: int, link: int, data: bytes) -> None:
        owner = self.link_owner.get(link)
        if owner is None:
            return
        contact = self.contacts[owner[1]]
        dest, dest_link = (
            (contact.b, contact.link_b) if idx == contact.a else (contact.a, contact.link_a)
        )
        start = max(self.engine.now, contact.busy.get(idx, 0.0))
        done = start + len(data) / contact.bitrate
        contact.busy[idx] = done
        self.metrics.bytes_on_air += len(data)
        if contact.loss and self.rng.random() < contact.loss:
            return
        self.engine.at(done, lambda: self._arrive(contact, dest, dest_link, data))

    def _arrive(self, contact: _Contact, dest: int, link: int, data: bytes) -> None:
        if self.contacts.get((contact.a, contact.b)) is not contact:
            return  # the contact ended while the frame was on the air
        self._feed(dest, FrameReceived(link, data))

    # ---- radio -------------------------------------------------------------------------
    def _positions(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for model, _start in self.mobility:
            x, y = model.positions(t)
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    def _scan(self) -> None:
        t = self.engine.now
        xs, ys = self._positions(t)
        ranges = np.array([self.sc.radios[g.radio].range for g in self.group_of])
        max_range = float(ranges.max())
        tree = cKDTree(np.column_stack((xs, ys)))
        candidates = tree.query_pairs(max_range, output_type="ndarray")
        now_pairs: set[tuple[int, int]] = set()
        if len(candidates):
            i, j = candidates[:, 0], candidates[:, 1]
            d = np.hypot(xs[i] - xs[j], ys[i] - ys[j])
            ok = d <= np.minimum(ranges[i], ranges[j])
            now_pairs = {
                (int(a), int(b)) if a < b else (int(b), int(a))
                for a, b in zip(i[ok], j[ok], strict=True)
            }
        for pair in sorted(set(self.contacts) - now_pairs):
            self._contact_down(pair)
        for pair in sorted(now_pairs - set(self.contacts)):
            self._contact_up(*pair)
        nxt = t + self.sc.update_interval
        if nxt < self.sc.duration:
            self.engine.at(nxt, self._scan)

    # ---- traffic -----------------------------------------------------------------------
    def _new_message(self) -> None:
        tr = self.sc.traffic
        n = len(self.nodes)
        lo, hi = tr.sources or (0, n - 1)
        dlo, dhi = tr.destinations or (0, n - 1)
        src = self.rng.randint(lo, hi)
        dst = self.rng.randint(dlo, dhi)
        while dst == src and dhi > dlo:
            dst = self.rng.randint(dlo, dhi)
        if dst != src:
            size = self.rng.randint(*tr.size)
            sender, recipient = self.nodes[src], self.nodes[dst]
            if recipient.identity.sign_public not in sender.contacts:
                # They met in person before the scenario starts and swapped cards.
                sender.add_contact(recipient.identity.public(), recipient.ring.keys[-1].record)
            self.metrics.creating(src, dst, size, self.engine.now)
            body = self.rng.randbytes(size)
            self._feed(src, SendMessage(recipient.identity.sign_public, body, tr.ttl))
        nxt = self.engine.now + self.rng.uniform(*tr.interval)
        if nxt < (tr.stop if tr.stop is not None else self.sc.duration):
            self.engine.at(nxt, self._new_message)

    # ---- run ---------------------------------------------------------------------------
    def run(self) -> Metrics:
        sc = self.sc
        self.engine.at(0.0, self._scan)
        self.engine.at(sc.traffic.start + self.rng.uniform(*sc.traffic.interval), self._new_message)
        step = max(sc.duration / 200, 1.0)
        t = 0.0
        while t < sc.duration:
            t = min(sc.duration, t + step)
            self.engine.run(t)
            if self.progress is not None:
                self.progress(t, self.engine.events_run)
        self.metrics.finish(sc.duration, self.nodes)
        return self.metrics
