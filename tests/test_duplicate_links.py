"""Duplicate links between the same two nodes (both dialled, as over Bluetooth LE) are
found by LINKS proofs and one of them is closed; a link to ourselves is closed; nobody
else's link is touched, and the proofs name nothing across links."""

from __future__ import annotations

from mesh.core._duplicates import tag
from tests.netsim import Net


def _open_links(net: Net, idx: int) -> dict[int, bytes]:
    return {k: p.session.handshake_hash for k, p in net.nodes[idx].links.items()}


def test_two_links_between_the_same_nodes_leave_one_the_same_at_both_ends() -> None:
    for seed in range(4):
        net = Net(seed=60 + seed)
        a, b = net.add(), net.add()
        net.introduce_all()
        la1, lb1 = net.connect(a, b)
        if seed % 2:  # the first link is open before b dials; else both at once
            net.run(1)
            assert len(net.nodes[a].links) == 1
        lb2, la2 = net.connect(b, a)  # b dials too: a second link, fresh keys
        net.run(5)
        assert len(net.nodes[a].links) == len(net.nodes[b].links) == 1
        [(kept_a, h_a)] = _open_links(net, a).items()
        [(kept_b, h_b)] = _open_links(net, b).items()
        assert h_a == h_b  # both ends kept the same link
        assert {kept_a, kept_b} in ({la1, lb1}, {la2, lb2})
        closed = sum(net.nodes[i].stats.get("links_closed_duplicate", 0) for i in (a, b))
        assert closed >= 1
        mid = net.send(a, b, b"after the duplicate went")
        net.run(5)
        assert mid in [m.msg_id for m in net.delivered[b]]


def test_a_link_to_ourselves_is_closed_at_both_ends() -> None:
    net = Net(seed=70)
    a = net.add()
    net.connect(a, a)  # we heard our own advertisement and dialled it
    net.run(3)
    assert net.nodes[a].links == {}
    assert net.nodes[a].stats.get("links_closed_self") == 2


def test_links_to_different_nodes_stay_open() -> None:
    net = Net(seed=71)
    a, b, c, d = net.add(), net.add(), net.add(), net.add()
    net.connect(a, b)
    net.connect(c, a)
    net.connect(a, d)
    net.connect(b, c)
    net.run(5)
    assert len(net.nodes[a].links) == 3
    assert len(net.nodes[b].links) == len(net.nodes[c].links) == 2
    assert not any(n.stats.get("links_closed_duplicate") for n in net.nodes)


def test_a_proof_means_nothing_on_another_link() -> None:
    """The tag of one link differs on every link it is sent on, and is not the link's
    handshake hash: a peer cannot link what it is shown to anything it saw elsewhere."""
    held, here, there = b"\x01" * 64, b"\x02" * 64, b"\x03" * 64
    assert tag(held, here) != tag(held, there)
    assert tag(held, here) not in (held[:8], here[:8])
    assert len(tag(held, here)) == 8
