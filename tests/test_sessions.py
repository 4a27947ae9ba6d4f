"""After first contact: ratchet sessions, per-message rotating tags, replies."""

from __future__ import annotations

import random

import pytest

from crypto.errors import DecodeError
from mesh.core import envelope as E
from mesh.core.node import Node, NodeConfig
from mesh.core.session import WINDOW, Session
from tests.netsim import Net


def send(net: Net, a: int, b: int, text: bytes) -> bytes:
    return net.send(a, b, text)


def kinds_and_tags(net: Net, idx: int) -> list[tuple[E.Kind, bytes]]:
    store = net.nodes[idx].store
    out = []
    for i in store.ids_in_range(b"", None):
        frame = store.get(i)
        assert frame is not None
        env = E.decode(frame)
        out.append((env.kind, env.tag))
    return out


def test_conversation_uses_ratchet_sessions_with_unlinkable_tags() -> None:
    net = Net(seed=31)
    a, r, b = net.add(), net.add(), net.add()
    net.introduce_all()
    for k in range(5):
        send(net, a, b, b"a->b %d" % k)
    la, _ = net.connect(a, r)
    net.run(5)
    net.disconnect(a, la)
    seen = kinds_and_tags(net, r)
    kinds = sorted(k for k, _t in seen)
    assert kinds.count(E.Kind.FIRST_CONTACT) == 1
    assert kinds.count(E.Kind.SESSION) == 4
    tags = [t for k, t in seen if k is E.Kind.SESSION]
    assert len(set(tags)) == 4, "every session envelope carries a different tag"
    assert all(len(t) == 8 for t in tags)
    lr, _ = net.connect(r, b)
    net.run(5)
    assert sorted(m.body for m in net.delivered[b]) == sorted(b"a->b %d" % k for k in range(5))
    # Bob answers through the session (no prekey of Alice's needed).
    net.nodes[b].contacts[net.nodes[a].identity.sign_public].prekey = None
    before = set(kinds_and_tags(net, b))  # what Bob received: carried until receipts go out
    send(net, b, a, b"b->a")
    assert [k for k, _t in set(kinds_and_tags(net, b)) - before] == [E.Kind.SESSION]
    net.run(5)
    net.disconnect(r, lr)
    net.connect(r, a)
    net.run(5)
    assert [m.body for m in net.delivered[a]] == [b"b->a"]
    assert net.delivered[a][0].sender == net.nodes[b].identity.sign_public


def _frames(net: Net, idx: int) -> list[bytes]:
    store = net.nodes[idx].store
    return [f for i in store.ids_in_range(b"", None) if (f := store.get(i)) is not None]


def test_session_messages_before_first_contact_wait_and_then_deliver() -> None:
    net = Net(seed=32)
    a, b = net.add(), net.add()
    net.introduce_all()
    for k in range(3):
        send(net, a, b, b"%d" % k)
    # Hand Bob the session envelopes first (a bundle), then the first contact.
    frames = [f for f in _frames(net, a) if E.decode(f).kind is E.Kind.SESSION]
    frames += [f for f in _frames(net, a) if E.decode(f).kind is E.Kind.FIRST_CONTACT]
    node_b = net.nodes[b]
    net.apply(b, node_b.courier.import_frames(frames[:2], b"file", int(net.now)))
    assert net.delivered[b] == []
    net.apply(b, node_b.courier.import_frames(frames[2:], b"file", int(net.now)))
    assert sorted(m.body for m in net.delivered[b]) == [b"0", b"1", b"2"]


def test_tags_differ_per_counter_and_key() -> None:
    key = b"k" * 32
    assert Session.tag(key, 0) != Session.tag(key, 1)
    assert Session.tag(key, 0) != Session.tag(b"j" * 32, 0)


def test_delivery_in_any_order_far_beyond_the_window() -> None:
    """A relay hands envelopes over in id order, random with respect to the counter: every
    one is delivered, exactly once, even those that arrive far ahead of the window (they
    are kept and opened when the window reaches them). Only those within 64 counters of
    the highest one seen used to be."""
    net = Net(seed=39)
    a, b = net.add(), net.add()
    net.introduce_all()
    n = 3 * WINDOW + 17
    for k in range(n):
        send(net, a, b, b"%d" % k)
    frames = [f for f in _frames(net, a) if E.decode(f).kind is not E.Kind.PREKEY]
    random.Random(4).shuffle(frames)
    node_b = net.nodes[b]
    for k in range(0, len(frames), 50):
        net.apply(b, node_b.courier.import_frames(frames[k : k + 50], b"file", int(net.now)))
    got = [m.body for m in net.delivered[b]]
    assert sorted(got) == sorted(b"%d" % k for k in range(n))


def test_a_message_delayed_five_days_is_delivered() -> None:
    """The January 2022 cut lasted five days: a message that waits that long in a relay
    opens, and so does one sent four days later that reaches Bob first through another
    relay. Tags used to be recognised only for yesterday, today and tomorrow. Two copies
    of each message (spray and wait): Alice keeps one for Bob, each relay carries one."""
    cfg = NodeConfig(
        mint_difficulty=4, base_difficulty=4, strategy="spray", strategy_args=(("copies", 2),)
    )
    net = Net(seed=40)
    a, r1, r2, b = (net.add(cfg) for _ in range(4))
    net.introduce_all()
    send(net, a, b, b"hello")
    la, _ = net.connect(a, b)
    net.run(5)
    net.disconnect(a, la)
    assert [m.body for m in net.delivered[b]] == [b"hello"]
    for text, relay in ((b"during the cut", r1), (b"four days later", r2)):
        net.send(a, b, text, ttl=7 * 86400)
        la, _ = net.connect(a, relay)
        net.run(5)
        net.disconnect(a, la)
        net.now += 4 * 86400 if relay == r1 else 3600
    net.connect(r2, b)
    net.run(5)
    assert [m.body for m in net.delivered[b]] == [b"hello", b"four days later"]
    net.now += 86400
    net.connect(r1, b)
    net.run(5)
    assert [m.body for m in net.delivered[b]][-1] == b"during the cut"


def restart(net: Net, idx: int) -> None:
    """Replace a node by a fresh one with the same keys and store, fed its saved state."""
    old = net.nodes[idx]
    state = old.saved.export()
    fresh = Node(old.identity, old.ring, old.store, old.rng, old.config)
    for key, contact in old.contacts.items():
        fresh.add_contact(contact.identity)  # prekeys come back from the state
        assert key in fresh.contacts
    fresh.saved.restore(state, int(net.now))
    net.nodes[idx] = fresh


def test_sessions_and_receipts_survive_a_restart() -> None:
    net = Net(seed=34)
    a, b = net.add(), net.add()
    net.introduce_all()
    send(net, a, b, b"before")
    net.connect(a, b)
    net.run(5)
    assert [m.body for m in net.delivered[b]] == [b"before"]
    for idx in (a, b):
        restart(net, idx)
    # Alice's next message uses the restored ratchet session (no prekey needed) and Bob's
    # restored session opens it; Bob's reply goes back the same way.
    net.nodes[a].contacts[net.nodes[b].identity.sign_public].prekey = None
    before = set(kinds_and_tags(net, a))
    send(net, a, b, b"after")
    assert [k for k, _t in set(kinds_and_tags(net, a)) - before] == [E.Kind.SESSION]
    net.connect(a, b)
    net.run(400)
    assert [m.body for m in net.delivered[b]] == [b"before", b"after"]
    send(net, b, a, b"reply")
    net.run(400)
    assert [m.body for m in net.delivered[a]] == [b"reply"]
    assert len(net.acked[a]) == 2, "receipts still match Alice's messages after the restart"


def test_corrupt_state_is_refused() -> None:
    net = Net(seed=35)
    a = net.add()
    node = net.nodes[a]
    with pytest.raises(DecodeError):
        node.saved.restore(b"\x93\x01\x02\x03", int(net.now))
    state = bytearray(node.saved.export())
    state[1] ^= 0x7F
    with pytest.raises(DecodeError):
        node.saved.restore(bytes(state), int(net.now))


def test_a_relay_forwards_at_once_between_two_open_links() -> None:
    """Envelopes that arrive on one link are offered on the others right away, not at
    the next periodic reconciliation."""
    net = Net(seed=36)
    a, r, b = net.add(), net.add(), net.add()
    net.introduce_all()
    net.connect(a, r)
    net.connect(r, b)
    net.run(5)  # links open, first reconciliation done
    send(net, a, b, b"now")
    net.run(5)  # far less than the resync interval
    assert [m.body for m in net.delivered[b]] == [b"now"]


def test_longest_message_fits_every_kind_and_longer_is_refused() -> None:
    from mesh.core.config import MAX_BODY
    from mesh.core.events import SendFailed, SendMessage

    net = Net(seed=37)
    a, b = net.add(), net.add()
    net.introduce_all()
    send(net, a, b, b"x" * MAX_BODY)  # first contact
    send(net, a, b, b"y" * MAX_BODY)  # session
    net.connect(a, b)
    net.run(5)
    assert [len(m.body) for m in net.delivered[b]] == [MAX_BODY, MAX_BODY]
    bob = net.nodes[b].identity.sign_public
    out = net.nodes[a].handle(SendMessage(bob, b"z" * (MAX_BODY + 1), 3600), int(net.now))
    assert len(out) == 1
    assert isinstance(out[0], SendFailed)
    assert "too long" in out[0].reason


def test_a_rate_limited_link_asks_for_the_rest_as_tokens_return() -> None:
    """More envelopes on offer than the link's token bucket takes: the receiver asks for
    the surplus as tokens come back instead of dropping it until the next resync."""
    from mesh.core.node import NodeConfig

    cfg = NodeConfig(
        mint_difficulty=4, base_difficulty=4, link_rate=5.0, link_burst=10.0, resync_every=3600
    )
    net = Net(seed=38)
    a, b, c = net.add(cfg), net.add(cfg), net.add(cfg)
    net.introduce_all()
    for k in range(40):
        send(net, a, c if k % 2 else b, b"m%d" % k)
    net.connect(a, b)
    net.run(30)  # 40 envelopes at 5/s after a burst of 10: about 6 s
    assert len(net.delivered[b]) == 20
    assert net.nodes[b].stats.get("rate_limited", 0) == 0
    # 20 carried for Carol, and Bob's 20 too until their receipts go out (30-300 s).
    assert net.nodes[b].store.count() == 40
    net.run(300)
    assert net.nodes[b].store.count() == 20


def test_a_missing_counter_is_given_up_only_after_any_envelope_could_live() -> None:
    from mesh.core.session import GAP_LIFETIME, _Window

    w = _Window()
    for c in (1, 2, 5):
        w.receive(c, 1000)
    assert w.expects(0)
    assert w.expects(3)
    assert not w.expects(2)
    assert w.expire(1000 + GAP_LIFETIME) == ([], [])  # not yet: 0 may still be on its way
    gone, new = w.expire(1001 + GAP_LIFETIME)
    assert gone == [0, 3, 4]
    assert new == list(range(WINDOW, WINDOW + 6))
    assert w.low == 6
    assert not w.expects(0)
    assert w.expects(6)


def test_every_short_text_makes_the_same_size_of_envelope() -> None:
    """Size buckets hide length: every text up to 200 bytes, as a first contact or in a
    session, gives a body of the smallest bucket (a 1-byte session message was 256 bytes
    and a 200-byte one 1,024; a first contact was always 1,024)."""
    from crypto.padding import BUCKETS

    net = Net(seed=41)
    a, b = net.add(), net.add()
    net.introduce_all()
    for n in (1, 2, 57, 113, 114, 199, 200):  # (an empty text is refused)
        net.send(a, b, b"x" * n)
    store = net.nodes[a].store
    envs = [E.decode(f) for i in store.ids_in_range(b"", None) if (f := store.get(i))]
    assert {e.kind for e in envs} == {E.Kind.FIRST_CONTACT, E.Kind.SESSION}
    assert {len(e.body) for e in envs} == {BUCKETS[0]}
    sizes = {e.kind: {len(E.encode(x)) for x in envs if x.kind is e.kind} for e in envs}
    assert all(len(v) == 1 for v in sizes.values())  # within a kind, one frame size
