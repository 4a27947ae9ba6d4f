"""Flood-control layers, bulletins through sync, and resuming an interrupted contact."""

from __future__ import annotations

from crypto.bulletin import Bulletin
from mesh.core import envelope as E
from mesh.core import messages as M
from mesh.core.events import BulletinStored, SendMessage
from mesh.core.flood import TokenBucket
from tests.netsim import CarelessSender, Net


def test_token_bucket() -> None:
    b = TokenBucket(rate=2, burst=3)
    assert [b.take(0) for _ in range(4)] == [True, True, True, False]
    assert b.take(0.5)
    assert not b.take(0.5)


def _inject(net: Net, idx: int, env: E.Envelope) -> None:
    net.apply(idx, net.nodes[idx].publish_envelope(env, int(net.now)))


def _bulletin_env(net: Net, seq: int, body: bytes, *, forge: bool = False) -> E.Envelope:
    b = Bulletin.create(
        b"p" * 32,
        type="notice",
        key="water",
        sequence=seq,
        created=int(net.now),
        expiry=int(net.now) + 7200,
        body=body,
    )
    if forge:
        from dataclasses import replace

        b = replace(b, body=b"the water is poisoned")
    return M.stamped(M.bulletin_envelope(b), 4, net.rng.randbytes)


def test_bulletins_flow_and_forgeries_are_dropped_by_relays() -> None:
    net = Net(seed=41)
    a, r, c = net.add(), net.add(), net.add()
    _inject(net, a, _bulletin_env(net, 1, b"water at school 12"))
    _inject(net, a, _bulletin_env(net, 2, b"clinic open", forge=True))
    net.connect(a, r)
    net.run(5)
    assert net.nodes[r].stats.get("rejected_bad_signature") == 1
    net.connect(r, c)
    net.run(5)
    bodies = []
    for i in net.nodes[c].store.ids_in_range(b"", None):
        frame = net.nodes[c].store.get(i)
        assert frame is not None
        got = M.read_bulletin_envelope(E.decode(frame))
        got.verify(int(net.now))
        bodies.append(got.body)
    assert bodies == [b"water at school 12"]


def test_cheap_stamps_refused_and_clamps_applied() -> None:
    net = Net(seed=42)
    a, r = net.add(kind=CarelessSender), net.add()
    now = int(net.now)
    weak = M.prekey_envelope(net.nodes[a].ring.keys[-1].record)  # no stamp at all
    _inject(net, a, weak if not M.stamp_ok(weak, 4) else weak.with_stamp(bytes(8)))
    far = E.make(E.Kind.BULLETIN, (now + 30 * 86400) // 3600, b"", bytes(512), 3)
    _inject(net, a, M.stamped(far, 4, net.rng.randbytes))
    b = Bulletin.create(
        b"q" * 32, type="t", key="k", sequence=1, created=now, expiry=now + 3600, body=b"x"
    )
    greedy = M.stamped(M.bulletin_envelope(b, budget=200), 4, net.rng.randbytes)
    _inject(net, a, greedy)
    net.connect(a, r)
    net.run(5)
    stats = net.nodes[r].stats
    assert stats.get("rejected_stamp", 0) >= 1 or stats.get("rejected_bad_signature", 0) >= 1
    assert stats.get("rejected_expiry_too_far") == 1
    (kept,) = net.nodes[r].store.ids_in_range(b"", None)
    frame = net.nodes[r].store.get(kept)
    assert frame is not None
    assert E.decode(frame).budget <= net.nodes[r].config.max_budget


def test_contact_cut_mid_transfer_resumes_without_resending() -> None:
    net = Net(seed=43, bandwidth=20_000)
    a, b = net.add(), net.add()
    sink = net.add()
    net.introduce_all()
    for k in range(40):
        net.apply(
            a,
            net.nodes[a].handle(
                SendMessage(net.nodes[sink].identity.sign_public, b"m%d" % k), int(net.now)
            ),
        )
    la, _ = net.connect(a, b, mtu=244)
    net.run(1.0, tick=0.1)  # cut early: part of the envelopes got through
    net.disconnect(a, la)
    first = net.nodes[b].store.count()
    assert 0 < first < 40, first
    sent_before = net.nodes[a].stats.get("envelopes_sent", 0)
    net.connect(a, b)
    net.run(30)
    assert net.nodes[b].store.count() == 40
    resent = net.nodes[a].stats["envelopes_sent"] - sent_before
    assert resent == 40 - first


def test_own_and_contact_traffic_outlives_strangers_under_pressure() -> None:
    from mesh.core.store import Quotas

    net = Net(seed=44)
    quotas = Quotas(max_total_count=12)
    a = net.add()
    b = net.add(quotas=quotas)
    strangers = [net.add() for _ in range(2)]
    net.introduce_all()
    # Strangers' traffic fills b's store first.
    for s in strangers:
        for k in range(10):
            net.apply(
                s,
                net.nodes[s].handle(
                    SendMessage(
                        net.nodes[
                            strangers[0] if s != strangers[0] else strangers[1]
                        ].identity.sign_public,
                        b"s%d" % k,
                    ),
                    int(net.now),
                ),
            )
        ls, _ = net.connect(s, b)
        net.run(3)
        net.disconnect(s, ls)
    assert net.nodes[b].store.count() == 12
    # Bob's own outgoing message (protected) still gets in, evicting a stranger's.
    net.apply(
        b,
        net.nodes[b].handle(SendMessage(net.nodes[a].identity.sign_public, b"mine"), int(net.now)),
    )
    store = net.nodes[b].store
    own = [i for i in store.ids_in_range(b"", None) if store.is_protected(i)]
    assert len(own) == 1
    assert net.nodes[b].store.count() == 12


def _post(net: Net, seed: bytes, seq: int, key: str, hours: int = 2) -> E.Envelope:
    now = int(net.now)
    b = Bulletin.create(
        seed, type="post", key=key, sequence=seq, created=now, expiry=now + 3600 * hours, body=b"x"
    )
    return M.stamped(M.bulletin_envelope(b), 4, net.rng.randbytes)


def test_a_superseded_bulletin_never_comes_back() -> None:
    """Once a newer post on a topic is known, the older one is deleted and never stored,
    relayed or shown again, also after the newer one has expired (a relay that kept the
    old one used to bring it back)."""
    net = Net(seed=45)
    a, r, c = net.add(), net.add(), net.add()
    old, new = _post(net, b"p" * 32, 1, "water", hours=48), _post(net, b"p" * 32, 2, "water")
    _inject(net, a, old)
    la, _ = net.connect(a, c)
    net.run(5)
    net.disconnect(a, la)
    assert [b.sequence for b in net.nodes[c].bulletins(int(net.now))] == [1]
    _inject(net, r, old)  # a relay that keeps the old post
    net.apply(a, net.nodes[a].courier.import_frames([E.encode(new)], b"file", int(net.now)))
    la, _ = net.connect(a, c)
    net.run(5)
    net.disconnect(a, la)
    assert [b.sequence for b in net.nodes[c].bulletins(int(net.now))] == [2]
    assert not net.nodes[c].store.has(old.id()), "the superseded post was deleted"
    net.now += 3 * 3600  # the newer post expires; the old one would still be alive
    net.run(2)
    net.connect(r, c)
    net.run(10)
    assert net.nodes[c].bulletins(int(net.now)) == []
    assert not net.nodes[c].store.has(old.id())


def test_signed_junk_bulletins_do_not_evict_mail() -> None:
    """Validly signed bulletins from throwaway keys used to outrank everyone's relayed
    mail; now public records have their own share of the store."""
    from mesh.core.store import PUBLIC_RANK, Quotas

    net = Net(seed=46)
    a, b, j = net.add(), net.add(), net.add()
    r = net.add(quotas=Quotas(max_total_bytes=40 * 600))
    net.introduce_all()
    for k in range(12):
        net.send(a, b, b"mail %d" % k)
    la, _ = net.connect(a, r)
    net.run(5)
    net.disconnect(a, la)
    assert net.nodes[r].store.count() == 12
    for k in range(60):  # throwaway keys, one post each
        _inject(net, j, _post(net, bytes([k]) * 32, 1, "spam"))
    net.connect(j, r)
    net.run(20)
    store = net.nodes[r].store
    kept = [
        i
        for i in store.ids_in_range(b"", None)
        if (m := store.meta(i)) and m.priority < PUBLIC_RANK
    ]
    assert len(kept) == 12, "no relayed mail was evicted for bulletins"
    assert 0 < store.public_bytes() <= store.quotas.max_public_bytes


def test_one_persona_key_may_post_only_so_fast() -> None:
    from mesh.core.bulletin_slots import BURST

    net = Net(seed=47)
    j, r = net.add(), net.add()
    for k in range(int(BURST) + 10):
        _inject(net, j, _post(net, b"\xee" * 32, k + 1, f"topic {k}"))
    net.connect(j, r)
    net.run(20)
    assert len(net.nodes[r].bulletins(int(net.now))) == int(BURST)
    assert net.nodes[r].stats.get("rejected_bulletin_rate") == 10


def test_the_node_says_which_bulletins_it_stored() -> None:
    """A bulletin stored from a peer, from a bundle or posted by us is one BulletinStored
    action with the verified post (a UI shows it from that); one refused (forged,
    already held, superseded by what is held) is none."""
    net = Net(seed=47)
    a, b = net.add(), net.add()
    now = int(net.now)
    first, second = _post(net, b"p" * 32, 1, "water"), _post(net, b"p" * 32, 2, "water")
    got = net.nodes[a].courier.import_frames([E.encode(second)], b"file", now)
    stored = [x for x in got if isinstance(x, BulletinStored)]
    assert stored == [BulletinStored(second.id(), M.read_bulletin_envelope(second))]
    again = net.nodes[a].courier.import_frames([E.encode(second), E.encode(first)], b"f", now)
    assert not [x for x in again if isinstance(x, BulletinStored)]  # held; superseded
    forged = _bulletin_env(net, 3, b"x", forge=True)
    refused = net.nodes[a].courier.import_frames([E.encode(forged)], b"file", now)
    assert not [x for x in refused if isinstance(x, BulletinStored)]
    mine = Bulletin.create(
        b"q" * 32, type="post", key="", sequence=1, created=now, expiry=now + 3600, body=b"hi"
    )
    posted = net.nodes[b].publish_bulletin(mine, now)
    assert [x.bulletin for x in posted if isinstance(x, BulletinStored)] == [mine]
    net.connect(a, b)
    net.run(5)  # over the link: each learns the other's post, as the actions say
    assert [x.bulletin for x in net.bulletins[a]] == [mine]
    assert [x.envelope_id for x in net.bulletins[b]] == [second.id()]
