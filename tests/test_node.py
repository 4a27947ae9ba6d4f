"""Nodes back to back and across a relay, through the real link sessions."""

from __future__ import annotations

from mesh.core.events import MessageQueued, SendFailed, SendMessage
from mesh.core.node import NodeConfig
from tests.netsim import Net


def send(net: Net, a: int, b: int, text: bytes) -> bytes:
    return net.send(a, b, text)


def test_two_nodes_direct() -> None:
    net = Net(seed=1)
    a, b = net.add(), net.add()
    net.introduce_all()
    mid = send(net, a, b, b"hello bob")
    net.connect(a, b)
    net.run(5)
    got = net.delivered[b]
    assert [m.body for m in got] == [b"hello bob"]
    assert got[0].sender == net.nodes[a].identity.sign_public
    assert got[0].msg_id == mid
    assert net.delivered[a] == []
    net.run(60)  # the receipt is released after a random delay
    assert net.acked[a] == [mid]


def test_message_sent_while_linked_is_pushed() -> None:
    net = Net(seed=2)
    a, b = net.add(), net.add()
    net.introduce_all()
    net.connect(a, b)
    net.run(3)
    send(net, a, b, b"live")
    net.run(3)
    assert [m.body for m in net.delivered[b]] == [b"live"]


def test_store_and_forward_through_relay_and_receipt_purges_relay() -> None:
    net = Net(seed=3)
    a, r, b = net.add(), net.add(), net.add()
    net.introduce_all()
    send(net, a, b, b"via relay")
    la, _ = net.connect(a, r)
    net.run(5)
    net.disconnect(a, la)
    relay_store = net.nodes[r].store
    assert relay_store.count() == 1
    lr, _ = net.connect(r, b)
    net.run(5)
    assert [m.body for m in net.delivered[b]] == [b"via relay"]
    net.run(60)
    assert relay_store.count() == 0, "the receipt purged the relay's copy"
    assert net.nodes[r].stats.get("purged_by_receipt") == 1
    net.disconnect(r, lr)
    net.connect(a, r)
    net.run(5)
    assert len(net.acked[a]) == 1


def test_exactly_once_even_if_offered_again() -> None:
    net = Net(seed=4)
    a, r, b = net.add(), net.add(), net.add()
    net.introduce_all()
    send(net, a, b, b"once")
    net.connect(a, r)
    net.connect(a, b)
    net.run(5)
    net.connect(r, b)
    net.run(200)
    assert len(net.delivered[b]) == 1


def test_send_without_prekey_fails_cleanly() -> None:
    net = Net(seed=5)
    a, b = net.add(), net.add()
    node = net.nodes[a]
    out = node.handle(SendMessage(net.nodes[b].identity.sign_public, b"x"), int(net.now))
    assert isinstance(out[0], SendFailed)
    node.add_contact(net.nodes[b].identity.public())
    out = node.handle(SendMessage(net.nodes[b].identity.sign_public, b"x"), int(net.now))
    assert isinstance(out[0], SendFailed)
    assert "prekey" in out[0].reason


def test_prekey_learned_from_the_mesh() -> None:
    net = Net(seed=6)
    a, b = net.add(), net.add()
    net.nodes[a].add_contact(net.nodes[b].identity.public())  # card only, no prekey
    net.apply(b, net.nodes[b].publish_prekey(int(net.now)))
    net.connect(a, b)
    net.run(5)
    assert net.nodes[a].contacts[net.nodes[b].identity.sign_public].prekey is not None
    send(net, a, b, b"after prekey")
    net.run(5)
    assert [m.body for m in net.delivered[b]] == [b"after prekey"]


def test_small_mtu_link() -> None:
    net = Net(seed=7)
    a, b = net.add(), net.add()
    net.introduce_all()
    send(net, a, b, b"over BLE")
    net.connect(a, b, mtu=20)
    net.run(10)
    assert [m.body for m in net.delivered[b]] == [b"over BLE"]


def test_direct_delivery_strategy_never_uses_relay() -> None:
    cfg = NodeConfig(strategy="direct", mint_difficulty=4, base_difficulty=4)
    net = Net(seed=8)
    a, r, b = net.add(cfg), net.add(cfg), net.add(cfg)
    net.introduce_all()
    send(net, a, b, b"direct only")
    la, _ = net.connect(a, r)
    net.run(5)
    assert net.nodes[r].store.count() == 0
    net.disconnect(a, la)
    net.connect(a, b)
    net.run(5)
    assert [m.body for m in net.delivered[b]] == [b"direct only"]


def test_receipts_are_delayed_and_batched() -> None:
    cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, receipt_delay=(100, 100))
    net = Net(seed=9)
    a, b = net.add(cfg), net.add(cfg)
    net.introduce_all()
    for k in range(3):
        send(net, a, b, b"m%d" % k)
    net.connect(a, b)
    net.run(50)
    assert len(net.delivered[b]) == 3
    assert net.acked[a] == [], "no receipt before the minimum delay"
    sent_before = net.nodes[b].stats.get("protocol_bytes_sent", 0)
    net.run(60)
    assert len(net.acked[a]) == 3
    assert net.nodes[b].stats["protocol_bytes_sent"] > sent_before


def test_more_receipts_due_at_once_than_one_message_holds_all_arrive() -> None:
    """Thousands of deliveries in one contact fall due together: the receipts go out in
    messages of at most MAX_LIST (one message of them all was refused by the peer as a
    protocol error, past ~3,700 it did not fit a record and stopped the daemon)."""
    from mesh.core import protocol as P

    n = P.MAX_LIST + 300
    cfg = NodeConfig(
        mint_difficulty=1,
        base_difficulty=1,
        receipt_delay=(30, 30),
        link_rate=1e9,
        link_burst=1e9,
    )
    net = Net(seed=19)
    a, b = net.add(cfg), net.add(cfg)
    net.introduce_all()
    for k in range(n):
        send(net, a, b, b"m%d" % k)
    net.connect(a, b)
    net.run(20)
    assert len(net.delivered[b]) == n
    net.run(30)
    assert len(net.acked[a]) == n
    assert net.nodes[a].stats.get("protocol_errors", 0) == 0
    assert len(net.links_of(a)) == 1, "the link stayed up"


def test_link_opened_reports_the_peer_link_key() -> None:
    from mesh.core.events import LinkOpened

    relay_key = bytes(range(32))
    net = Net(seed=10)
    a = net.add()
    r = net.add(NodeConfig(long_term_link_key=relay_key))
    opened: list[LinkOpened] = []
    original = net.apply

    def spy(idx: int, actions: list) -> None:  # type: ignore[type-arg]
        opened.extend(x for x in actions if isinstance(x, LinkOpened) and idx == a)
        original(idx, actions)

    net.apply = spy  # type: ignore[method-assign]
    net.connect(a, r)
    net.run(2)
    from crypto.noise import KeyPair

    assert [o.peer_key for o in opened] == [KeyPair.from_private(relay_key).public]


def test_in_memory_indexes_are_bounded_by_expiry() -> None:
    net = Net(seed=12)
    a, b = net.add(), net.add()
    net.introduce_all()
    send(net, a, b, b"short-lived")
    node = net.nodes[a]
    assert len(node.awaited_receipts()) == 1
    net.now += 8 * 86400
    net.run(2)
    assert node.awaited_receipts() == {}
    assert node.store.count() <= 1  # only our own (re-published) prekey, if any


def test_empty_messages_and_bulletins_are_refused() -> None:
    """Nothing visible in the text: refused before anything is sealed, stored or flooded."""
    from crypto.bulletin import Bulletin
    from mesh.core.config import EMPTY_TEXT

    net = Net(seed=7)
    a, b = net.add(), net.add()
    net.introduce_all()
    node, bob = net.nodes[a], net.nodes[b].identity.sign_public
    now = int(net.now)
    sessions_before = dict(node.saved.sessions)
    for body in (b"", b"   ", b" \n\t\r ", "\u200b\u3000\ufeff\u00a0".encode()):
        assert node.handle(SendMessage(bob, body), now) == [SendFailed(bob, EMPTY_TEXT)]
    assert node.store.count() == 0
    assert node.saved.sessions == sessions_before  # no session was opened for nothing
    seed = node.identity.sign_seed

    def post(body: bytes) -> Bulletin:
        return Bulletin.create(
            seed, type="post", key="t", sequence=now, created=now, expiry=now + 3600, body=body
        )

    refused = node.publish_bulletin(post(" \u2028 ".encode()), now)
    assert refused == [SendFailed(node.identity.sign_public, EMPTY_TEXT)]
    assert node.store.count() == 0
    assert node.bulletins(now) == []
    # Text with visible characters around the spaces still goes, and so do bytes the
    # reader will see escaped (NUL, ESC) or that are not text at all.
    for body in (b"  ok  ", b"\x00\x1b", b"\xff\xfe"):
        assert any(isinstance(x, MessageQueued) for x in node.handle(SendMessage(bob, body), now))
    assert node.publish_bulletin(post(b" water at noon "), now) is not None
    assert [x.body for x in node.bulletins(now)] == [b" water at noon "]
