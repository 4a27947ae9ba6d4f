"""Runs a scenario: one real :class:`mesh.core.node.Node` per simulated device, driven by
the discrete-event engine in virtual time.

The harness only moves bytes and time: it turns radio contacts (or a contact trace) and
internet reachability into ``LinkUp``/``LinkDown`` events, carries the frames a node
transmits to the other end after ``size / bitrate`` seconds (one frame after another per
direction, lost if the contact ends first), ticks each node at its own
``next_deadline()``, and injects traffic as ``SendMessage`` events. Every protocol decision
is the node's. Metrics come from the actions nodes return, the node's observer hook
(envelope sent / received) and the store's removal hook.

Attachments (``traffic.files`` above 0): a message that carries a photo is its text and,
right after it, a ``SendFile`` to the same recipient. Whether a message carries one, the
file's size and its bytes come from a stream of their own, seeded from the run's seed, so
the texts (who, to whom, when, how long) are those of the same run with files off, and
with files off nothing of this runs: a text-only run is what it was before attachments.

Internet: gateway nodes (``gateway = true``) hold an internet link to every other gateway
while both their regions' internet states allow it: ``up``, or ``throttled`` at a reduced
bit rate. ``down`` and ``dpi`` (the Steppe link is blocked, nothing else changes) cut it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from crypto.attachment import file_digest
from crypto.identity import Identity
from crypto.prekeys import PrekeyRing
from mesh.core.driver import carry_out
from mesh.core.events import (
    Action,
    BulletinStored,
    ChunkReceived,
    CloseLink,
    Event,
    FileAction,
    FileDropped,
    FileOffered,
    FileReceived,
    FrameReceived,
    GroupAction,
    LinkDown,
    LinkOpened,
    LinkUp,
    MessageAcked,
    MessageDelivered,
    MessageQueued,
    SendFailed,
    SendFile,
    SendMessage,
    Tick,
    Transmit,
)
from mesh.core.memory_store import MemoryStore
from mesh.core.node import Node, NodeConfig
from mesh.core.store import Quotas
from simulations.adversaries import BlackHole, Observer, flood_once, linkability
from simulations.engine import Engine
from simulations.metrics import Metrics
from simulations.mobility import (
    Gatherings,
    Mobility,
    RandomWaypoint,
    Static,
    TraceEvent,
    read_trace,
)
from simulations.scenario import (
    Group,
    Movement,
    NetState,
    Role,
    Scenario,
    ScenarioError,
    Transfers,
)
from simulations.traffic_file import TrafficFileError, read_traffic

STRICTNESS = (Transfers.FULL, Transfers.HALF, Transfers.ONE_PER_NODE)  # of two radios: the later
EPOCH0 = 1_767_225_600  # 2026-01-01 00:00 UTC: simulated time 0 (nodes need wall dates)
LINK_MTU = 1400
RADIO, NET = "radio", "net"
ContactKey = tuple[int, int, str]
CARRIES = (NetState.UP, NetState.THROTTLED)  # internet states a gateway link runs in
SCAN_REBUILD = 16  # radio updates between KD-tree rebuilds of the candidate pairs


@dataclass
class _Contact:
    key: ContactKey
    link_a: int
    link_b: int
    bitrate: float
    loss: float
    mtu: int = LINK_MTU
    up: bool = False  # LinkUp delivered (after the set-up time)
    transfers: Transfers = Transfers.FULL
    busy: dict[int, float] = field(default_factory=dict)  # node -> sending until
    in_flight: dict[int, set[bytes]] = field(default_factory=dict)  # sender -> envelope ids

    @property
    def a(self) -> int:
        return self.key[0]

    @property
    def b(self) -> int:
        return self.key[1]


class _NodeActions:
    """What the actions of one simulated node do to the world (an ``ActionSink``)."""

    __slots__ = ("idx", "sim")

    def __init__(self, sim: Simulation, idx: int) -> None:
        self.sim = sim
        self.idx = idx

    def on_transmit(self, act: Transmit) -> None:
        self.sim.transmit(self.idx, act.link, act.data)

    def on_close_link(self, act: CloseLink) -> None:
        self.sim.close_link(self.idx, act.link)

    def on_link_opened(self, act: LinkOpened) -> None:
        return  # a link key means nothing to the simulator

    def on_message_delivered(self, act: MessageDelivered) -> None:
        self.sim.metrics.delivered(act.msg_id, self.idx, self.sim.engine.now)

    def on_message_queued(self, act: MessageQueued) -> None:
        self.sim.metrics.queued(act.msg_id, act.envelope_id, self.idx, self.sim.engine.now)

    def on_message_acked(self, act: MessageAcked) -> None:
        self.sim.metrics.acked(act.msg_id, self.idx, self.sim.engine.now)

    def on_send_failed(self, act: SendFailed) -> None:
        self.sim.metrics.send_failed()  # a refused text never was a message; files count

    def on_bulletin_stored(self, act: BulletinStored) -> None:
        return  # bulletins are measured as envelopes (the observer hook)

    def on_group(self, act: GroupAction) -> None:
        return  # no group traffic in scenarios yet

    def on_file(self, act: FileAction) -> None:
        m, idx = self.sim.metrics, self.idx
        if isinstance(act, FileOffered):
            m.file_offered(act.msg_id, act.file_id, idx, act.refused)
        elif isinstance(act, ChunkReceived):
            m.chunk(act.file_id, idx, act.index, act.data)
        elif isinstance(act, FileReceived):
            m.file_received(act.msg_id, idx, self.sim.engine.now)
        elif isinstance(act, FileDropped):
            m.file_dropped(act.file_id, idx)


def quotas(group: Group) -> Quotas:
    """The store quotas of every node of ``group``."""
    return Quotas(
        max_total_bytes=group.buffer,
        max_source_bytes=max(group.buffer // 4, 64 * 1024),
        eviction=group.eviction,
        source_quota=group.source_quota,
    )


def node_config(sc: Scenario, group: Group) -> NodeConfig:
    """The configuration every node of ``group`` runs with (recorded in report.json)."""
    args: tuple[tuple[str, int], ...] = (
        (("copies", group.copies),) if (group.strategy == "spray") else ()
    )
    if group.strategy == "spray" and group.first_contact != "cautious":
        args += (("hint_is_destination", 1),)  # only then: default reports stay as they were
    return NodeConfig(
        strategy=group.strategy,
        strategy_args=args,
        mint_difficulty=sc.mint_difficulty,
        base_difficulty=max(0, sc.mint_difficulty - 2),  # as the daemon: 10 and 8
        receipt_delay=(30, 300),
        resync_every=300,
        max_budget=64,
        offer_order=group.offer_order,
        purge_delivered=group.delivered_copies == "drop",
        direct_first=group.direct_first,
    )


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
        self.metrics = Metrics(files_on=scenario.traffic.files > 0)
        self.photo_rng = random.Random(f"steppe-sim-files:{self.seed}")  # photos' own stream
        self.nodes: list[Node] = []
        self._sinks: list[_NodeActions] = []  # what each node's actions do
        self.group_of: list[Group] = []
        self.mobility: list[Mobility] = []
        self.contacts: dict[ContactKey, _Contact] = {}
        self.link_owner: dict[int, ContactKey] = {}
        self.observers: dict[int, Observer] = {}
        self.gateways: list[int] = []
        self._next_link = 1
        self._node_busy: dict[int, float] = {}  # node -> on the air until (one_per_node)
        self._tick_at: list[float] = []
        self._trace: list[TraceEvent] = []
        self._radio_pairs: set[int] = set()  # a * len(nodes) + b of radio contacts
        self._scans = 0
        self._cand_i = self._cand_j = np.zeros(0, dtype=np.int64)  # candidate pairs
        self._cand_range = np.zeros(0)
        self._build()

    # ---- set-up ------------------------------------------------------------------------
    def _build(self) -> None:
        sc = self.sc
        for group in sc.groups:
            for _ in range(group.count):
                self._add_node(group)
            self.mobility.append(self._mobility(group, random.Random(self.rng.getrandbits(64))))
        self._tick_at = [float("inf")] * len(self.nodes)
        self._ranges = np.array([sc.radios[g.radio].range for g in self.group_of])
        self._vmax = max((m.max_speed for m in self.mobility), default=0.0)
        self.metrics.node_count = len(self.nodes)
        self.metrics.region_of = [g.region for g in self.group_of]
        if sc.trace:
            base = Path(sc.source).parent if sc.source else Path(".")
            self._trace = read_trace((base / sc.trace).read_text())

    def _mobility(self, group: Group, rng: random.Random) -> Mobility:
        if group.movement is Movement.STATIC:
            return Static([p[0] for p in group.positions], [p[1] for p in group.positions])
        x0, y0, x1, y1 = group.area or (0.0, 0.0, self.sc.width, self.sc.height)
        legs = (group.count, x1 - x0, y1 - y0, group.speed, group.wait, rng)
        warmup, origin = self.sc.warmup, (x0, y0)
        if group.movement is Movement.GATHERINGS:
            squares = (list(group.squares), group.square_radius, group.p_square)
            return Gatherings(*legs, *squares, group.square_wait, warmup=warmup, origin=origin)
        return RandomWaypoint(*legs, warmup=warmup, origin=origin)

    def _add_node(self, group: Group) -> None:
        idx = len(self.nodes)
        r = random.Random(self.rng.getrandbits(64))
        ident = Identity.generate(r.randbytes)
        ring = PrekeyRing(lifetime=30 * 86400, rotate_every=30 * 86400)
        ring.create(ident, EPOCH0, r.randbytes)
        store = MemoryStore(quotas(group))
        node = Node(ident, ring, store, r.randbytes, node_config(self.sc, group))
        if group.role is Role.BLACKHOLE:
            node.strategy = BlackHole()
        if group.role is Role.OBSERVER:
            self.observers[idx] = Observer()
        node.observer = partial(self._observe, idx)
        store.on_remove = partial(self._removed, idx)
        if group.gateway:
            self.gateways.append(idx)
        self.nodes.append(node)
        self._sinks.append(_NodeActions(self, idx))
        self.group_of.append(group)

    def _removed(self, idx: int, eid: bytes, why: str) -> None:
        self.metrics.removed(idx, eid, why, self.engine.now)

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
        carry_out(actions, self._sinks[idx])

    def _observe(self, idx: int, event: str, eid: bytes, link: int, frame: bytes) -> None:
        key = self.link_owner.get(link)
        contact = self.contacts.get(key) if key is not None else None
        if contact is None:
            return
        other = contact.b if idx == contact.a else contact.a
        if event == "sent":
            contact.in_flight.setdefault(idx, set()).add(eid)
            self.metrics.started(idx, eid)
        else:
            contact.in_flight.get(other, set()).discard(eid)
            self.metrics.relayed(other, idx, eid, self.engine.now)
            observer = self.observers.get(idx)
            if observer is not None:
                observer.record(frame, self.engine.now, link)

    # ---- links -------------------------------------------------------------------------
    def _contact_up(
        self,
        key: ContactKey,
        bitrate: float,
        loss: float,
        setup: float,
        mtu: int = LINK_MTU,
        transfers: Transfers = Transfers.FULL,
    ) -> None:
        la, lb = self._next_link, self._next_link + 1
        self._next_link += 2
        contact = _Contact(key, la, lb, bitrate, loss, mtu, transfers=transfers)
        self.contacts[key] = contact
        if key[2] == RADIO:
            self._radio_pairs.add(key[0] * len(self.nodes) + key[1])
        self.link_owner[la] = key
        self.link_owner[lb] = key
        self.metrics.contacts += 1
        self.engine.after(setup, partial(self._link_up, contact))

    def _radio_up(self, a: int, b: int) -> None:
        ra = self.sc.radios[self.group_of[a].radio]
        rb = self.sc.radios[self.group_of[b].radio]
        self._contact_up(
            (a, b, RADIO),
            min(ra.bitrate, rb.bitrate),
            max(ra.loss, rb.loss),
            max(ra.setup, rb.setup),
            min(ra.mtu, rb.mtu),
            max(ra.transfers, rb.transfers, key=STRICTNESS.index),
        )

    def _link_up(self, contact: _Contact) -> None:
        if self.contacts.get(contact.key) is not contact:
            return
        contact.up = True
        # The source label a node's driver gives a link is the device at the other end
        # (as the daemon labels a remote address): quotas and buckets follow it.
        a_label, b_label = contact.a.to_bytes(4, "big"), contact.b.to_bytes(4, "big")
        self._feed(contact.b, LinkUp(contact.link_b, False, contact.mtu, source=a_label))
        self._feed(contact.a, LinkUp(contact.link_a, True, contact.mtu, source=b_label))

    def _contact_down(self, key: ContactKey, by_node: int | None = None) -> None:
        contact = self.contacts.pop(key, None)
        if contact is None:
            return
        if key[2] == RADIO:
            self._radio_pairs.discard(key[0] * len(self.nodes) + key[1])
        now = self.engine.now
        for sender, ids in contact.in_flight.items():  # cut on the air: one per direction
            if ids and contact.busy.get(sender, 0.0) > now:
                self.metrics.aborted += 1
        self.link_owner.pop(contact.link_a, None)
        self.link_owner.pop(contact.link_b, None)
        if contact.up:
            if by_node != contact.a:
                self._feed(contact.a, LinkDown(contact.link_a))
            if by_node != contact.b:
                self._feed(contact.b, LinkDown(contact.link_b))

    def close_link(self, idx: int, link: int) -> None:
        """Node ``idx`` closed ``link``: the contact ends (the other end gets ``LinkDown``)."""
        key = self.link_owner.get(link)
        if key is not None:
            self._contact_down(key, by_node=idx)

    def transmit(self, idx: int, link: int, data: bytes) -> None:
        """Node ``idx`` sends ``data`` on ``link``: it arrives after ``size / bitrate``."""
        key = self.link_owner.get(link)
        if key is None:
            return
        contact = self.contacts[key]
        dest, dest_link = (
            (contact.b, contact.link_b) if idx == contact.a else (contact.a, contact.link_a)
        )
        start = max(self.engine.now, contact.busy.get(idx, 0.0))
        if contact.transfers is not Transfers.FULL:  # the other way waits, and so do we
            start = max(start, contact.busy.get(dest, 0.0))
        if contact.transfers is Transfers.ONE_PER_NODE:  # either end busy on another link
            start = max(start, self._node_busy.get(idx, 0.0), self._node_busy.get(dest, 0.0))
        done = start + len(data) / contact.bitrate
        contact.busy[idx] = done
        if contact.transfers is Transfers.ONE_PER_NODE:
            self._node_busy[idx] = self._node_busy[dest] = done
        if key[2] == RADIO:
            self.metrics.bytes_on_air += len(data)
        else:
            self.metrics.bytes_internet += len(data)
        if contact.loss and self.rng.random() < contact.loss:
            return
        self.engine.at(done, partial(self._arrive, contact, dest, dest_link, data))

    def _arrive(self, contact: _Contact, dest: int, link: int, data: bytes) -> None:
        if self.contacts.get(contact.key) is not contact:
            return  # the contact ended while the frame was on the air
        self._feed(dest, FrameReceived(link, data))

    # ---- radio -------------------------------------------------------------------------
    def _positions(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        parts = [m.positions(t) for m in self.mobility]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _scan(self) -> None:
        """Radio contacts at this instant: every pair within both nodes' ranges.

        A KD-tree finds the *candidate* pairs within ``range + 2 * max_speed * horizon`` once
        per ``SCAN_REBUILD`` updates (a Verlet list); no other pair can come into range
        before the next rebuild, so each update only measures the candidates. The result
        is exactly that of querying the tree at every update."""
        t = self.engine.now
        xs, ys = self._positions(t)
        if self._scans % SCAN_REBUILD == 0:
            horizon = self.sc.update_interval * SCAN_REBUILD
            reach = float(self._ranges.max()) + 2 * self._vmax * horizon + 1e-6
            tree = cKDTree(np.column_stack((xs, ys)))
            cand = tree.query_pairs(reach, output_type="ndarray")
            if len(cand) == 0:
                cand = np.zeros((0, 2), dtype=np.int64)
            self._cand_i = np.minimum(cand[:, 0], cand[:, 1]).astype(np.int64)
            self._cand_j = np.maximum(cand[:, 0], cand[:, 1]).astype(np.int64)
            self._cand_range = np.minimum(self._ranges[self._cand_i], self._ranges[self._cand_j])
        self._scans += 1
        i, j = self._cand_i, self._cand_j
        ok = np.hypot(xs[i] - xs[j], ys[i] - ys[j]) <= self._cand_range
        n = len(self.nodes)
        now_pairs = set((i[ok] * n + j[ok]).tolist())
        current = self._radio_pairs
        if now_pairs != current:
            for key in sorted(current - now_pairs):
                self._contact_down((key // n, key % n, RADIO))
            for key in sorted(now_pairs - current):
                self._radio_up(key // n, key % n)
        nxt = t + self.sc.update_interval
        if nxt < self.sc.duration:
            self.engine.at(nxt, self._scan)

    def _trace_event(self, ev: TraceEvent) -> None:
        key = (ev.a, ev.b, RADIO)
        if ev.up and key not in self.contacts:
            self._radio_up(ev.a, ev.b)
        elif not ev.up:
            self._contact_down(key)

    # ---- internet ----------------------------------------------------------------------
    def _net_check(self) -> None:
        sc = self.sc
        t = self.engine.now
        states = {name: r.state(t, sc.start_hour) for name, r in sc.regions.items()}
        wanted: dict[ContactKey, float] = {}
        for x, a in enumerate(self.gateways):
            for b in self.gateways[x + 1 :]:
                sa = states[self.group_of[a].region]
                sb = states[self.group_of[b].region]
                if sa[0] in CARRIES and sb[0] in CARRIES:
                    wanted[(a, b, NET)] = sc.internet_bitrate * min(sa[1], sb[1])
        for key in sorted(k for k in self.contacts if k[2] == NET):
            if key not in wanted or self.contacts[key].bitrate != wanted[key]:
                self._contact_down(key)
        for key in sorted(wanted):
            if key not in self.contacts:
                self._contact_up(key, wanted[key], 0.0, 0.5)
        self.metrics.net_states.append((t, {n: s[0] for n, s in sorted(states.items())}))
        nxt = t + sc.internet_check
        if nxt < sc.duration:
            self.engine.at(nxt, self._net_check)

    # ---- traffic -----------------------------------------------------------------------
    def _new_message(self) -> None:
        tr = self.sc.traffic
        users = self._users
        n = len(self.nodes)
        lo, hi = tr.sources or (0, n - 1)
        dlo, dhi = tr.destinations or (0, n - 1)
        src_pool = [i for i in users if lo <= i <= hi]
        dst_pool = [i for i in users if dlo <= i <= dhi]
        if src_pool and len(dst_pool) > 1:
            src = src_pool[self.rng.randrange(len(src_pool))]
            dst = src
            while dst == src:
                dst = dst_pool[self.rng.randrange(len(dst_pool))]
            self._create(src, dst, self.rng.randint(*tr.size), tr.ttl)
        nxt = self.engine.now + self.rng.uniform(*tr.interval)
        if nxt < (tr.stop if tr.stop is not None else self.sc.duration):
            self.engine.at(nxt, self._new_message)

    def _create(self, src: int, dst: int, size: int, ttl: int) -> None:
        sender, recipient = self.nodes[src], self.nodes[dst]
        if recipient.identity.sign_public not in sender.contacts:
            # They met in person before the scenario starts and swapped cards.
            sender.add_contact(recipient.identity.public(), recipient.ring.keys[-1].record)
        self.metrics.creating(src, dst, size, self.engine.now)
        self._feed(src, SendMessage(recipient.identity.sign_public, self.rng.randbytes(size), ttl))
        tr = self.sc.traffic
        if tr.files > 0 and self.photo_rng.random() < tr.files:
            self._send_photo(src, dst, ttl)

    def _send_photo(self, src: int, dst: int, ttl: int) -> None:
        """A photo from ``src`` to ``dst``: seeded random bytes (a JPEG does not compress
        either) of ``traffic.file_size``."""
        rng = self.photo_rng
        sender, receiver = self.nodes[src], self.nodes[dst]
        if sender.identity.sign_public not in receiver.contacts:
            # Nodes take files from contacts only: these two swapped cards both ways.
            receiver.add_contact(sender.identity.public(), sender.ring.keys[-1].record)
        data = rng.randbytes(rng.randint(*self.sc.traffic.file_size))
        self.metrics.creating(src, dst, len(data), self.engine.now, file_digest(data))
        recipient = self.nodes[dst].identity.sign_public
        name = f"IMG_{len(self.metrics.files):04d}.jpg"
        self._feed(src, SendFile(recipient, name, data, "image/jpeg", ttl))

    def _schedule_traffic(self) -> None:
        sc, tr = self.sc, self.sc.traffic
        if not tr.file:
            self.engine.at(tr.start + self.rng.uniform(*tr.interval), self._new_message)
            return
        path = (Path(sc.source).parent if sc.source else Path(".")) / tr.file
        try:
            created = read_traffic(path.read_text(), len(self.nodes), tr.ttl, tr.size_scale)
        except OSError as exc:
            raise ScenarioError(f"traffic.file: cannot read {path}: {exc.strerror}") from None
        except TrafficFileError as exc:
            raise ScenarioError(f"traffic.file {path}, {exc}") from None
        for c in created:
            if c.time < sc.duration:
                at = partial(self._create, c.source, c.destination, c.size, c.ttl)
                self.engine.at(c.time, at)

    def _flood(self, idx: int) -> None:
        node, group = self.nodes[idx], self.group_of[idx]
        now = EPOCH0 + int(self.engine.now)
        actions = flood_once(node, now, self.sc.traffic.ttl, self.sc.mint_difficulty, node.rng)
        self.metrics.junk += 1
        self._apply(idx, actions)
        nxt = self.engine.now + group.flood_interval
        if nxt < self.sc.duration:
            self.engine.at(nxt, partial(self._flood, idx))

    def _sample(self) -> None:
        self.metrics.sample(self.engine.now, self.nodes)
        nxt = self.engine.now + max(self.sc.duration / 100, 60.0)
        if nxt < self.sc.duration:
            self.engine.at(nxt, self._sample)

    # ---- run ---------------------------------------------------------------------------
    def run(self) -> Metrics:
        sc = self.sc
        self._users = [i for i, g in enumerate(self.group_of) if g.role is Role.USER]
        if self._trace:
            for ev in self._trace:
                if ev.time < sc.duration and max(ev.a, ev.b) < len(self.nodes):
                    self.engine.at(ev.time, partial(self._trace_event, ev))
        else:
            self.engine.at(0.0, self._scan)
        if self.gateways and sc.regions:
            self.engine.at(0.0, self._net_check)
        for i, g in enumerate(self.group_of):
            if g.role is Role.FLOODER:
                self.engine.at(self.rng.uniform(0, g.flood_interval), partial(self._flood, i))
        self._schedule_traffic()
        self.engine.at(0.0, self._sample)
        step = max(sc.duration / 200, 1.0)
        t = 0.0
        while t < sc.duration:
            t = min(sc.duration, t + step)
            self.engine.run(t)
            if self.progress is not None:
                self.progress(t, self.engine.events_run)
        self.metrics.finish(sc.duration, self.nodes)
        if self.observers:
            truth = {m.envelope_id: (m.src, m.dst) for m in self.metrics.messages}
            self.metrics.summary["observer"] = linkability(list(self.observers.values()), truth)
        return self.metrics
