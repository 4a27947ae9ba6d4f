"""The order a node hands envelopes over in (NodeConfig.offer_order) and whether delivery
receipts purge relays' copies (NodeConfig.purge_delivered)."""

from __future__ import annotations

import random

import pytest

from mesh.core import envelope as E
from mesh.core import messages as M
from mesh.core.events import MessageQueued, SendMessage
from mesh.core.node import NodeConfig
from tests.netsim import T0, Net

N = 24


def _foreign(rnd: random.Random) -> list[bytes]:
    """Carried envelopes of strangers, with expiries in no particular order."""
    hours = list(range(T0 // 3600 + 5, T0 // 3600 + 5 + N))
    rnd.shuffle(hours)
    frames = []
    for hour in hours:
        env = E.make(E.Kind.SESSION, hour, rnd.randbytes(8), rnd.randbytes(512), 8)
        frames.append(E.encode(M.stamped(env, 4, rnd.randbytes)))
    return frames


def _sent_order(order: str, seed: int = 1) -> tuple[list[bytes], list[bytes]]:
    """Import N envelopes into a node, connect it to an empty one; (import order of the
    ids, the order they went on the air)."""
    net = Net(seed=seed)
    cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, offer_order=order)
    a, b = net.add(cfg), net.add()
    frames = _foreign(random.Random(7))
    node = net.nodes[a]
    node.courier.import_frames(frames, b"usb", int(net.now))
    sent: list[bytes] = []
    node.observer = lambda ev, eid, _link, _frame: sent.append(eid) if ev == "sent" else None
    net.connect(a, b)
    net.run(10)
    assert net.nodes[b].store.count() == N
    return [E.decode(f).id() for f in frames], sent


def test_fifo_hands_over_in_the_order_envelopes_were_stored() -> None:
    imported, sent = _sent_order("fifo")
    assert sent == imported


def test_priority_hands_over_soonest_expiry_first_among_equals() -> None:
    imported, sent = _sent_order("priority")
    envs = [E.decode(f) for f in _foreign(random.Random(7))]
    expiry = {env.id(): env.expiry for env in envs}
    assert sent == sorted(imported, key=lambda i: expiry[i])
    assert sent != imported


def test_random_order_is_a_permutation_reproducible_by_seed() -> None:
    imported, sent = _sent_order("random", seed=1)
    assert sorted(sent) == sorted(imported)
    assert sent != imported
    _, fifo = _sent_order("fifo")
    _, prio = _sent_order("priority")
    assert sent not in (fifo, prio)
    assert _sent_order("random", seed=1)[1] == sent
    assert _sent_order("random", seed=2)[1] != sent


def test_unknown_offer_order_is_refused() -> None:
    with pytest.raises(ValueError, match="offer_order"):
        NodeConfig(offer_order="lifo")


@pytest.mark.parametrize("purge", [True, False])
def test_receipts_purge_relay_copies_only_when_asked(purge: bool) -> None:
    net = Net(seed=3)
    relay_cfg = NodeConfig(
        mint_difficulty=4, base_difficulty=4, receipt_delay=(5, 30), purge_delivered=purge
    )
    a, r, b = net.add(), net.add(relay_cfg), net.add()
    net.introduce_all()
    net.send(a, b, b"via relay")
    la, _ = net.connect(a, r)
    net.run(5)
    net.disconnect(a, la)
    relay = net.nodes[r]
    assert relay.store.count() == 1
    lr, _ = net.connect(r, b)
    net.run(60)
    assert [m.body for m in net.delivered[b]] == [b"via relay"]
    assert relay.store.count() == (0 if purge else 1)
    assert relay.stats.get("purged_by_receipt", 0) == (1 if purge else 0)
    net.disconnect(r, lr)
    net.connect(a, r)
    net.run(5)
    assert len(net.acked[a]) == 1, "the relay passes the receipt on either way"


def _direct_position(direct_first: bool) -> tuple[int, int]:
    """A relay holding N strangers' envelopes (fifo: stored first) and, stored last, one
    for the peer it now meets: (where that one went in the relay's hand-overs, of how
    many)."""
    net = Net(seed=3)
    cfg = NodeConfig(
        mint_difficulty=4, base_difficulty=4, offer_order="fifo", direct_first=direct_first
    )
    relay, bob, carol = net.add(cfg), net.add(cfg), net.add(cfg)
    net.introduce_all()
    net.nodes[relay].courier.import_frames(_foreign(random.Random(7)), b"usb", int(net.now))
    la, _ = net.connect(carol, relay)
    net.run(5)
    to_bob = SendMessage(net.nodes[bob].identity.sign_public, b"for bob")
    actions = net.nodes[carol].handle(to_bob, int(net.now))
    net.apply(carol, actions)
    [for_bob] = [a.envelope_id for a in actions if isinstance(a, MessageQueued)]
    net.run(5)
    assert net.nodes[relay].store.has(for_bob)
    net.disconnect(carol, la)
    sent: list[bytes] = []
    net.nodes[relay].observer = lambda ev, eid, _l, _f: sent.append(eid) if ev == "sent" else None
    net.connect(relay, bob)
    net.run(10)
    assert [d.body for d in net.delivered[bob]] == [b"for bob"]
    return sent.index(for_bob), len(sent)


def test_direct_delivery_first_hands_the_peer_its_own_before_anything_else() -> None:
    position, count = _direct_position(direct_first=True)
    assert count >= N  # everything went over, the peer's own first
    assert position == 0
    position, count = _direct_position(direct_first=False)
    assert position == count - 1  # fifo without it: stored last, handed over last
