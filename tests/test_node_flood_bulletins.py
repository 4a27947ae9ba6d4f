"""Flood-control layers, bulletins through sync, and resuming an interrupted contact."""

from __future__ import annotations

from crypto.bulletin import Bulletin
from mesh.core import envelope as E
from mesh.core import messages as M
from mesh.core.events import SendMessage
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
