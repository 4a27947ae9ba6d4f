"""Routing strategies between real nodes, back to back (tests/netsim.py): PRoPHET carries
session messages through relays, a node that shares the destination's first-contact hint
is never taken for the destination, and PRoPHET's tables stay bounded against hostile
neighbours."""

from __future__ import annotations

import random
from collections import Counter

from crypto.prekeys import PrekeyRing
from mesh.core import envelope as E
from mesh.core.config import hint_for
from mesh.core.node import Node, NodeConfig
from mesh.core.routing import Prophet
from mesh.core.wirecodec import pack_routing
from tests.netsim import Net

DAY = 86400


def config(strategy: str, **args: int) -> NodeConfig:
    return NodeConfig(
        strategy=strategy,
        strategy_args=tuple(args.items()),
        mint_difficulty=4,
        base_difficulty=4,
        receipt_delay=(5, 30),
    )


def meet(net: Net, a: int, b: int, seconds: float = 10) -> None:
    """One contact between ``a`` and ``b``, long enough to sync and trade."""
    la, _ = net.connect(a, b)
    net.run(seconds)
    net.disconnect(a, la)


class Transfers:
    """Counts, per envelope id, the copies that arrived whole at any node."""

    def __init__(self, net: Net) -> None:
        self.count: Counter[bytes] = Counter()
        for node in net.nodes:
            node.observer = self._seen

    def _seen(self, event: str, envelope_id: bytes, link: int, frame: bytes) -> None:
        if event == "received":
            self.count[envelope_id] += 1


def share_hint(net: Net, idx: int, other: int, seed: int) -> None:
    """Give node ``idx`` a prekey whose 1-byte first-contact hint is node ``other``'s."""
    node = net.nodes[idx]
    target = hint_for(net.nodes[other].ring.keys[-1].record.public)
    r = random.Random(seed)
    while True:
        ring = PrekeyRing()
        key = ring.create(node.identity, int(net.now), r.randbytes)
        if hint_for(key.record.public) == target:
            break
    assert node.store.count() == 0  # nothing of the node it replaces is lost
    net.nodes[idx] = Node(node.identity, ring, node.store, node.rng, node.config)


def delivered(net: Net, idx: int) -> list[bytes]:
    return [m.msg_id for m in net.delivered[idx]]


# ---- spray-and-wait and direct delivery: a hint match is a guess ------------------------
def test_spray_a_node_sharing_the_hint_is_not_the_destination() -> None:
    """With L = 2 a first contact may be handed over twice in all. The old rule gave the
    node that shares the destination's hint a free copy, as if it were the destination,
    and the sender went on spraying: three transfers."""
    net = Net(seed=11)
    a, b, twin, x = (net.add(config("spray", copies=2)) for _ in range(4))
    share_hint(net, twin, b, seed=1)
    net.introduce_all()
    transfers = Transfers(net)
    mid = net.send(a, b, b"hello")  # no session yet: a first contact with b's hint
    for p, q in [(a, twin), (a, x), (a, b), (twin, b), (x, b), (twin, x)]:
        meet(net, p, q)
    assert delivered(net, b) == [mid]
    assert delivered(net, twin) == []
    assert sum(transfers.count.values()) <= 2, transfers.count
    assert max(transfers.count.values()) <= 2


def test_spray_bound_holds_in_a_crowd_of_colliding_hints() -> None:
    """Eight nodes, three of them sharing the destination's hint, meeting at random: no
    envelope (first contact or session message) is handed over more than L times."""
    copies = 4
    net = Net(seed=12)
    nodes = [net.add(config("spray", copies=copies)) for _ in range(8)]
    b, senders, twins = nodes[0], nodes[1:4], nodes[4:7]
    for i, twin in enumerate(twins):
        share_hint(net, twin, b, seed=i)
    net.introduce_all()
    transfers = Transfers(net)
    r = random.Random(3)
    for s in senders:
        net.send(s, b, b"first")
    for round_ in range(40):
        p, q = r.sample(nodes, 2)
        meet(net, p, q)
        if round_ == 20:
            for s in senders:
                net.send(s, b, b"second")
    assert len(transfers.count) >= 4
    assert max(transfers.count.values()) <= copies, transfers.count
    assert all(delivered(net, t) == [] for t in twins)


def test_direct_a_colliding_hint_costs_a_transfer_never_the_message() -> None:
    net = Net(seed=13)
    a, b, twin = (net.add(config("direct")) for _ in range(3))
    share_hint(net, twin, b, seed=2)
    net.introduce_all()
    transfers = Transfers(net)
    mid = net.send(a, b, b"hello")
    meet(net, a, twin)  # twin gets a copy with no budget: it cannot open it, nor pass it on
    meet(net, twin, b)
    assert delivered(net, b) == []
    meet(net, a, b)
    assert delivered(net, b) == [mid]
    assert sum(transfers.count.values()) == 2


# ---- PRoPHET ----------------------------------------------------------------------------
def _session_between(net: Net, a: int, r: int, b: int) -> bytes:
    """``a`` first-contacts ``b`` through relay ``r``; then ``r`` meets ``b`` again, now
    that ``b`` receives in a session."""
    first = net.send(a, b, b"hello")
    meet(net, a, r)
    meet(net, r, b)
    assert delivered(net, b) == [first]
    meet(net, r, b)
    return first


def _sessions_in(node: Node) -> list[E.Envelope]:
    frames = [node.store.get(i) for i in node.store.ids_in_range(b"", None)]
    envs = [E.decode(f) for f in frames if f is not None]
    return [e for e in envs if e.kind is E.Kind.SESSION]


def test_prophet_delivers_session_messages_through_relays() -> None:
    net = Net(seed=21)
    a, r, idle, b = (net.add(config("prophet")) for _ in range(4))
    net.introduce_all()
    first = _session_between(net, a, r, b)
    batch = [net.send(a, b, f"message {i}".encode()) for i in range(3)]
    meet(net, a, r)  # r has met b: a hands the session messages to r (and learns of b)
    carried = _sessions_in(net.nodes[r])
    assert len(carried) == 3
    assert {len(e.tag) for e in carried} == {16}  # per-message tag + the day's route key
    assert len({e.tag[8:] for e in carried}) == 1
    more = [net.send(a, b, f"more {i}".encode()) for i in range(2)]
    meet(net, a, idle)  # idle knows nothing of b: a worse carrier than a, who now does
    assert _sessions_in(net.nodes[idle]) == []
    assert net.nodes[a].stats["withheld"] >= 2
    meet(net, a, r)
    meet(net, r, b)
    assert delivered(net, b)[0] == first
    assert sorted(delivered(net, b)[1:]) == sorted(batch + more)


def test_prophet_messages_written_right_after_a_first_contact_travel_with_it() -> None:
    """Nobody knows the new session's route key yet (its recipient announces it once the
    first contact has reached it): the messages go on as by epidemic, and the recipient
    opens any that arrive before the first contact once it does."""
    net = Net(seed=23)
    a, r, b = (net.add(config("prophet")) for _ in range(3))
    net.introduce_all()
    sent = [net.send(a, b, f"message {i}".encode()) for i in range(4)]
    meet(net, a, r)
    assert len(_sessions_in(net.nodes[r])) == 3
    meet(net, r, b)
    assert sorted(delivered(net, b)) == sorted(sent)


def test_prophet_delivers_a_message_sealed_days_earlier() -> None:
    """Only today's route keys are announced; an envelope that waited five days in a
    relay still reaches its recipient, which marks it by its per-message tag."""
    net = Net(seed=22)
    a, r, b = (net.add(config("prophet")) for _ in range(3))
    net.introduce_all()
    _session_between(net, a, r, b)
    mid = net.send(a, b, b"before the cut", ttl=7 * DAY)
    meet(net, a, r)
    net.run(5 * DAY, tick=3600)
    meet(net, r, b)
    assert delivered(net, b)[-1] == mid


class HostileProphet(Prophet):
    """An adversary: at every contact it announces as many fresh route keys as a peer
    reads, and as many fresh predictabilities, all 1."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.r = random.Random(seed)

    def routing_info(self, receive_keys: list[bytes], now: int) -> bytes:
        own = [self.r.randbytes(8) for _ in range(256)]
        return pack_routing(own, [(self.r.randbytes(8), 1.0) for _ in range(256)])


def test_prophet_tables_stay_bounded_against_hostile_neighbours() -> None:
    net = Net(seed=31)
    victim = net.add(config("prophet"))
    hostile = net.add(config("prophet"))
    net.nodes[hostile].strategy = HostileProphet(1)
    s = net.nodes[victim].strategy
    assert isinstance(s, Prophet)
    for _ in range(100):  # a fresh link key at every contact
        meet(net, hostile, victim, seconds=2)
    assert 0 < len(s.table) <= 1024
    assert len(s.last_seen) <= len(s.table)
    crowd = [net.add(config("prophet")) for _ in range(40)]
    for i, h in enumerate(crowd):  # forty hostile contacts open at once
        net.nodes[h].strategy = HostileProphet(100 + i)
        net.connect(h, victim)
    net.run(5)
    assert len(net.links_of(victim)) == 40
    assert len(s.peer_tables) <= 32
    assert len(s.table) <= 1024
    for link in net.links_of(victim):
        net.disconnect(victim, link)
    net.run(8 * DAY + 3600, tick=3600)  # nobody refreshes those keys for eight days
    friend = net.add(config("prophet"))
    meet(net, friend, victim)
    assert s.table == {}
