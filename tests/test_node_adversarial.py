"""Hostile neighbours: replayed frames, tampered envelopes, forged receipts, floods,
black holes and link-layer impersonation."""

from __future__ import annotations

from crypto.errors import CryptoError
from mesh.core import envelope as E
from mesh.core import messages as M
from mesh.core import protocol as P
from mesh.core.events import Action, FrameReceived, Transmit
from mesh.core.node import NodeConfig
from mesh.core.routing.base import NO, EnvView, Handoff, Strategy
from mesh.core.store import Quotas, StoreItem
from tests.netsim import CarelessSender, Net


def send(net: Net, a: int, b: int, text: bytes) -> bytes:
    return net.send(a, b, text)


def test_replayed_frame_closes_the_link_and_delivers_nothing_twice() -> None:
    net = Net(seed=21)
    a, b = net.add(), net.add()
    net.introduce_all()
    send(net, a, b, b"one")
    _, lb = net.connect(a, b)
    captured: list[bytes] = []
    original = net.apply

    def spy(idx: int, actions: list[Action]) -> None:
        captured.extend(x.data for x in actions if isinstance(x, Transmit) and idx == a)
        original(idx, actions)

    net.apply = spy  # type: ignore[method-assign]
    net.run(5)
    net.apply = original  # type: ignore[method-assign]
    assert len(net.delivered[b]) == 1
    out = net.nodes[b].handle(FrameReceived(lb, captured[-1]), int(net.now))
    assert any("decryption failed" in getattr(x, "reason", "") for x in out)
    assert len(net.delivered[b]) == 1
    assert net.nodes[b].stats["links_closed_decrypt_failed"] == 1


def test_tampered_envelope_from_a_relay_is_rejected_and_counted() -> None:
    net = Net(seed=22)
    a, r, b = net.add(), net.add(kind=CarelessSender), net.add()
    net.introduce_all()
    send(net, a, b, b"untouched")
    la, _ = net.connect(a, r)
    net.run(5)
    net.disconnect(a, la)
    relay = net.nodes[r].store
    (eid,) = relay.ids_in_range(b"", None)
    frame = relay.get(eid)
    assert frame is not None
    env = E.decode(frame)
    body = bytearray(env.body)
    body[200] ^= 0x40
    bad = E.make(
        env.kind, env.expiry_hour, env.tag, bytes(body), env.budget, env.stamp, env.receipt
    )
    relay.delete(eid, int(net.now))
    item = StoreItem(bad.id(), E.encode(bad), bad.expiry, 0, b"evil", bad.tag, bad.receipt, 8)
    relay.put(item, int(net.now))
    net.connect(r, b)
    net.run(5)
    assert net.delivered[b] == []
    assert net.nodes[b].stats.get("rejected_stamp") == 1


def test_forged_receipts_are_ignored() -> None:
    net = Net(seed=23)
    a, r, m = net.add(), net.add(), net.add()
    net.introduce_all()
    send(net, a, m, b"keep me")
    net.connect(a, r)
    net.run(5)
    before = net.nodes[r].store.count()
    lm, _ = net.connect(m, r)
    net.run(1)
    forged = P.batch([P.encode(P.Receipts([bytes([i]) * 16 for i in range(50)]))])[0]
    link = net.nodes[m].links[lm]
    for f in link.session.send(forged).frames:
        net._schedule((r, net._links[(m, lm)][1]), f)
    net.run(2)
    assert net.nodes[r].store.count() == before
    assert net.nodes[r].stats.get("receipts_unmatched", 0) >= 50
    assert net.nodes[r].stats.get("purged_by_receipt", 0) == 0


def test_flooding_neighbour_does_not_crowd_out_others() -> None:
    quotas = Quotas(max_total_bytes=60 * 1100, max_source_bytes=20 * 1100)
    cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, receipt_delay=(5, 30))
    net = Net(seed=24)
    a, r, b, f, sink = (
        net.add(cfg),
        net.add(cfg, quotas),
        net.add(cfg),
        net.add(cfg),
        net.add(cfg),
    )
    net.introduce_all()
    for k in range(100):  # the flooder: 10x the normal traffic, valid stamps, junk content
        send(net, f, sink, b"junk %d" % k)
    for k in range(10):
        send(net, a, b, b"real %d" % k)
    net.connect(f, r)
    net.connect(a, r)
    net.run(10)
    relay = net.nodes[r]
    from_f = relay.store.source_bytes(relay_peer_key(net, r, f))
    assert from_f <= quotas.max_source_bytes
    assert relay.stats.get("put_quota", 0) > 0
    net.connect(r, b)
    net.run(10)
    assert sorted(m.body for m in net.delivered[b]) == sorted(b"real %d" % k for k in range(10))


def relay_peer_key(net: Net, r: int, other: int) -> bytes:
    for ln in net.nodes[r].links.values():
        for oln in net.nodes[other].links.values():
            if ln.session.handshake_hash == oln.session.handshake_hash:
                return ln.peer[:16]
    raise AssertionError("no link between the two")


class BlackHole(Strategy):
    NAME = "blackhole"

    def decide(self, env: EnvView, peer: bytes, peer_is_destination: bool, now: int) -> Handoff:
        return NO


def test_black_hole_relay_does_not_stop_delivery() -> None:
    net = Net(seed=25)
    a, hole, good, b = net.add(), net.add(), net.add(), net.add()
    net.nodes[hole].strategy = BlackHole()
    net.introduce_all()
    send(net, a, b, b"around the hole")
    for x, y in [(a, hole), (hole, b)]:
        lx, _ = net.connect(x, y)
        net.run(5)
        net.disconnect(x, lx)
    assert net.delivered[b] == []
    assert net.nodes[hole].stats.get("withheld", 0) >= 1
    for x, y in [(a, good), (good, b)]:
        lx, _ = net.connect(x, y)
        net.run(5)
        net.disconnect(x, lx)
    assert [m.body for m in net.delivered[b]] == [b"around the hole"]


def test_link_peer_claiming_to_be_bob_gets_nothing_it_can_open() -> None:
    """Mallory uses Bob's pinned long-term link key: without the private key the Noise
    handshake fails. With her own key she receives the envelope but cannot open it: the
    end-to-end keys come from Bob's contact card, never from the link."""
    net = Net(seed=26)
    bob_link_key = bytes(range(32))
    cfg_bob = NodeConfig(mint_difficulty=4, base_difficulty=4, long_term_link_key=bob_link_key)
    a, b, mallory = net.add(), net.add(cfg_bob), net.add()
    net.introduce_all()
    send(net, a, b, b"for bob only")
    net.connect(a, mallory)
    net.run(5)
    stored = [
        E.decode(f)
        for i in net.nodes[mallory].store.ids_in_range(b"", None)
        if (f := net.nodes[mallory].store.get(i)) is not None
    ]
    assert stored, "epidemic routing handed Mallory a copy to carry"
    for env in stored:
        try:
            M.open_first_contact_envelope(
                net.nodes[mallory].identity, net.nodes[mallory].ring, env, int(net.now)
            )
        except CryptoError:
            continue
        raise AssertionError("Mallory opened Bob's message")
    assert net.delivered[mallory] == []
    net.connect(mallory, b)
    net.run(5)
    assert [m.body for m in net.delivered[b]] == [b"for bob only"]


def test_protocol_garbage_closes_only_that_link() -> None:
    net = Net(seed=27)
    a, r, b = net.add(), net.add(), net.add()
    net.introduce_all()
    la, _ = net.connect(a, r)
    lb, _ = net.connect(b, r)
    net.run(2)
    link = net.nodes[a].links[la]
    for f in link.session.send(b"\xc1not msgpack").frames:
        net._schedule(net._links[(a, la)], f)
    net.run(2)
    assert net.nodes[r].stats.get("protocol_errors") == 1
    assert lb in net.links_of(b), "the other link keeps working"
    send(net, b, a, b"still works")
    net.run(5)
    assert net.nodes[r].store.count() >= 1
