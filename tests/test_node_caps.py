"""Caps a stranger within radio range cannot push past (issue 10, part 3): silent links,
trial decryptions of first contacts that carry our public hint, sessions opened by
strangers, reconciliation symbols asked for in one read."""

from __future__ import annotations

import tracemalloc

from mesh.core import protocol as P
from mesh.core.events import CloseLink, FrameReceived, Transmit
from mesh.core.node import NodeConfig
from mesh.core.sync import MAX_SERVE
from tests.netsim import Net


def test_honest_links_outlive_the_idle_timeout() -> None:
    cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, idle_timeout=60, resync_every=20)
    net = Net(seed=81)
    a, b = net.add(cfg), net.add(cfg)
    net.connect(a, b)
    net.run(200)
    assert net.closes == [], "honest peers speak at every resync"


def test_an_opened_link_that_falls_silent_is_closed_after_the_idle_timeout() -> None:
    cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, idle_timeout=60, resync_every=600)
    net = Net(seed=82)
    a, b = net.add(cfg), net.add(cfg)
    la, lb = net.connect(a, b)
    net.run(5)
    assert lb in net.nodes[b].links
    net._links.pop((a, la))  # a keeps the link but stops sending anything
    net.run(70)
    assert lb not in net.nodes[b].links
    assert net.nodes[b].stats.get("links_closed_idle") == 1


def test_trial_decryptions_of_first_contacts_are_rate_limited() -> None:
    """Junk carrying our public 1-byte hint costs a trial decryption each: the node opens
    at most trial_rate per second after a burst, and the rest later, not never."""
    cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, trial_rate=2.0, trial_burst=3.0)
    net = Net(seed=83)
    a, b = net.add(), net.add(cfg)
    net.introduce_all()
    for k in range(10):
        net.nodes[a].contacts[net.nodes[b].identity.sign_public].prekey = (
            net.nodes[b].ring.keys[-1].record
        )
        net.nodes[a].forget_sessions()  # every message a first contact
        net.send(a, b, b"%d" % k)
    store = net.nodes[a].store
    frames = [f for i in store.ids_in_range(b"", None) if (f := store.get(i))]
    node_b = net.nodes[b]
    net.apply(b, node_b.courier.import_frames(frames, b"file", int(net.now)))
    assert len(net.delivered[b]) == 3  # the burst
    assert node_b.stats.get("trials_deferred") == 7
    net.run(5)  # two a second
    assert len(net.delivered[b]) == 10


def test_sessions_opened_by_strangers_are_bounded() -> None:
    cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, stranger_sessions=3)
    net = Net(seed=84)
    b = net.add(cfg)
    strangers = [net.add() for _ in range(6)]
    bob = net.nodes[b]
    for s in strangers:  # each knows Bob's card and prekey; Bob knows none of them
        net.nodes[s].add_contact(bob.identity.public(), bob.ring.keys[-1].record)
        net.send(s, b, b"hello from a stranger")
        frames = [
            f
            for i in net.nodes[s].store.ids_in_range(b"", None)
            if (f := net.nodes[s].store.get(i))
        ]
        net.apply(b, bob.courier.import_frames(frames, b"file", int(net.now)))
        net.now += 10
    assert len(net.delivered[b]) == 6  # their messages still arrive
    assert len(bob.saved.sessions) == 3
    assert bob.stats.get("stranger_sessions_dropped") == 3
    assert bob.expected_tags() <= 3 * 512  # the dropped sessions' tags went with them


def test_symbols_served_for_one_read_are_bounded() -> None:
    """One record may batch up to 1,024 MOREs, each for MAX_SERVE symbols (2.5 MiB of
    SYMBOLS): 16 of them in a 163-byte record made a node build 48 MiB of frames and peak
    at 170 MiB, past a relay's MemoryMax. An honest decoder has one request outstanding,
    so the symbols served for one read are capped at MAX_SERVE and a second big MORE in
    the same read closes the link before anything is computed for it."""
    net = Net(seed=85)
    m, b = net.add(), net.add()
    lm, lb = net.connect(m, b, mtu=4096)
    net.run(2)
    victim = net.nodes[b]
    assert victim.links[lb].hello is not None
    more = P.encode(P.More(0, 0, 0, MAX_SERVE))
    frames = net.nodes[m].links[lm].session.send(P.batch([more] * 16)[0]).frames
    served = victim.stats.get("symbols_sent", 0)
    tracemalloc.start()
    try:
        out = [a for f in frames for a in victim.handle(FrameReceived(lb, f), int(net.now))]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert victim.stats.get("symbols_sent", 0) - served <= MAX_SERVE
    assert sum(len(a.data) for a in out if isinstance(a, Transmit)) < 4 << 20
    assert any(isinstance(a, CloseLink) and "MORE" in a.reason for a in out)
    assert lb not in victim.links
    assert peak < 24 << 20, f"{peak / 2**20:.0f} MiB traced while handling one record"
