"""Junk that copies what travels in clear: a real envelope's routing tag or receipt hash
(issue 10, part 3). The junk must not displace the real envelope."""

from __future__ import annotations

import random

from crypto.stamp import mint_stamp
from mesh.core import envelope as E
from tests.netsim import Net


def _frames(net: Net, idx: int, kind: E.Kind) -> list[bytes]:
    store = net.nodes[idx].store
    out = []
    for i in store.ids_in_range(b"", None):
        f = store.get(i)
        if f is not None and E.decode(f).kind is kind:
            out.append(f)
    return out


def _junk_like(frame: bytes, rnd: random.Random, *, keep_tag: bool, keep_receipt: bool) -> bytes:
    env = E.decode(frame)
    junk = E.make(
        env.kind,
        env.expiry_hour,
        env.tag if keep_tag else rnd.randbytes(len(env.tag)),
        rnd.randbytes(len(env.body)),
        env.budget,
        receipt=env.receipt if keep_receipt else rnd.randbytes(16),
    )
    return E.encode(junk.with_stamp(mint_stamp(junk.id(), 4)))


def test_junk_with_a_copied_session_tag_does_not_hide_the_real_envelope() -> None:
    net = Net(seed=61)
    a, b = net.add(), net.add()
    net.introduce_all()
    net.send(a, b, b"first")
    for k in range(3):
        net.send(a, b, b"later %d" % k)
    rnd = random.Random(1)
    first = _frames(net, a, E.Kind.FIRST_CONTACT)
    sessions = _frames(net, a, E.Kind.SESSION)
    junk = [_junk_like(f, rnd, keep_tag=True, keep_receipt=False) for f in sessions]
    node_b = net.nodes[b]
    now = int(net.now)
    # The junk and the real session envelopes arrive before the first contact that sets
    # up the session; the junk last.
    net.apply(b, node_b.courier.import_frames(sessions + junk, b"file", now))
    assert net.delivered[b] == []
    net.apply(b, node_b.courier.import_frames(first, b"file", now))
    got = sorted(m.body for m in net.delivered[b])
    assert got == [b"first", b"later 0", b"later 1", b"later 2"]


def test_junk_with_a_copied_receipt_hash_does_not_stop_the_purge() -> None:
    net = Net(seed=62)
    a, r, b = net.add(), net.add(), net.add()
    net.introduce_all()
    net.send(a, b, b"hello")
    (real,) = _frames(net, a, E.Kind.FIRST_CONTACT)
    junk = _junk_like(real, random.Random(2), keep_tag=False, keep_receipt=True)
    relay = net.nodes[r]
    net.apply(r, relay.courier.import_frames([real], b"file", int(net.now)))
    net.apply(r, relay.courier.import_frames([junk], b"file", int(net.now)))  # the junk comes last
    assert relay.store.count() >= 2
    net.connect(r, b)
    net.run(400)  # Bob receives, releases the receipt, the relay purges
    assert [m.body for m in net.delivered[b]] == [b"hello"]
    assert not relay.store.has(E.decode(real).id()), "the real envelope was purged"
    assert not relay.store.has(E.decode(junk).id()), "and so was the junk that copied it"


def _junk(net: Net, idx: int, n: int, rnd: random.Random) -> None:
    now = int(net.now)
    for _ in range(n):
        env = E.make(
            E.Kind.SESSION, E.coarse_expiry(now, 86400), rnd.randbytes(8), rnd.randbytes(512), 8
        )
        env = env.with_stamp(mint_stamp(env.id(), 4))
        net.apply(idx, net.nodes[idx].publish_envelope(env, now))


def test_a_flooder_that_reconnects_does_not_start_over() -> None:
    """Per-source quotas and token buckets count against the driver's label for the
    remote address, not the link key a flooder mints afresh for every connection."""
    from mesh.core.node import NodeConfig
    from mesh.core.store import Quotas

    net = Net(seed=63)
    victim_cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, link_burst=12, link_rate=0.01)
    f = net.add()
    v = net.add(victim_cfg, Quotas(max_source_bytes=20 * 600))
    net.introduce_all()
    _junk(net, f, 60, random.Random(3))
    stored = []
    for _ in range(3):  # the same address, a fresh link (and link key) each time
        lf, _ = net.connect(f, v, source=b"203.0.113.9")
        net.run(10)
        net.disconnect(f, lf)
        stored.append(net.nodes[v].store.count())
    assert stored[0] == 12  # the burst
    assert stored[-1] == stored[0], stored  # reconnecting gave no fresh burst or quota


def test_a_store_full_of_junk_still_admits_honest_mail_stamped_to_its_demand() -> None:
    """A relay full of junk used to demand 12 bits while every honest node stamps 10: all
    honest mail was refused until the junk expired. Now the relay announces in HELLO the
    work it takes to displace its least valuable envelope, and the sender stamps its own
    mail to it; junk with cheaper stamps goes first."""
    from mesh.core.node import NodeConfig
    from mesh.core.store import Quotas

    cfg = NodeConfig(receipt_delay=(5, 30))  # the defaults: mint 10 bits, base 8
    net = Net(seed=64)
    flooder, relay, alice, bob = (
        net.add(cfg),
        net.add(cfg, Quotas(max_total_count=20)),
        net.add(cfg),
        net.add(cfg),
    )
    net.introduce_all()
    rnd = random.Random(5)
    now = int(net.now)
    for _ in range(20):  # junk with more work than honest mail carries
        env = E.make(
            E.Kind.SESSION, E.coarse_expiry(now, 86400), rnd.randbytes(8), rnd.randbytes(512), 8
        )
        net.apply(
            flooder,
            net.nodes[flooder].publish_envelope(env.with_stamp(mint_stamp(env.id(), 11)), now),
        )
    lf, _ = net.connect(flooder, relay)
    net.run(10)
    net.disconnect(flooder, lf)
    assert net.nodes[relay].store.count() == 20
    assert net.nodes[relay].required_difficulty() == 12
    msg = net.send(alice, bob, b"through the flood")
    la, _ = net.connect(alice, relay)
    net.run(10)
    net.disconnect(alice, la)
    assert net.nodes[alice].stats.get("restamped") == 1
    assert net.nodes[relay].store.count() == 20  # one junk envelope made room
    net.connect(relay, bob)
    net.run(10)
    assert [m.msg_id for m in net.delivered[bob]] == [msg]
