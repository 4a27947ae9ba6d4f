"""What the node keeps, and what its store says about its owner (issue 10, parts 4 and 5):
its own mail is never reported queued when it was not stored, the recipient carries what
it received until its receipt is out, and no store row tells whose envelopes are whose."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mesh.core import envelope as E
from mesh.core.events import MessageQueued, SendFailed, SendMessage
from mesh.core.node import Node, NodeConfig
from mesh.core.store import Quotas
from mesh.daemon.sqlite_store import SQLiteStore
from tests.netsim import Net


def test_a_message_the_store_cannot_hold_fails_instead_of_being_reported_queued() -> None:
    net = Net(seed=71)
    a = net.add(quotas=Quotas(max_total_count=3))
    b = net.add()
    net.introduce_all()
    bob = net.nodes[b].identity.sign_public
    results = []
    for k in range(5):
        out = net.nodes[a].handle(SendMessage(bob, b"m%d" % k), int(net.now))
        results += [x for x in out if isinstance(x, MessageQueued | SendFailed)]
    assert [type(x) for x in results] == [MessageQueued] * 3 + [SendFailed] * 2
    assert all("full" in x.reason for x in results if isinstance(x, SendFailed))
    assert net.nodes[a].store.count() == 3  # every queued one is really stored
    net.connect(a, b)
    net.run(5)
    assert sorted(m.body for m in net.delivered[b]) == [b"m0", b"m1", b"m2"]


def test_own_mail_evicts_strangers() -> None:
    net = Net(seed=72)
    a = net.add(quotas=Quotas(max_total_count=4))
    b, c = net.add(), net.add()
    net.introduce_all()
    for k in range(4):  # Carol's mail for Bob fills Alice's store as a relay
        net.send(c, b, b"c%d" % k)
    lc, _ = net.connect(c, a)
    net.run(5)
    net.disconnect(c, lc)
    assert net.nodes[a].store.count() == 4
    for k in range(4):
        net.send(a, b, b"a%d" % k)
    store = net.nodes[a].store
    assert store.count() == 4
    assert store.protected_count() == 4


def test_the_recipient_keeps_carrying_until_its_receipt_is_released() -> None:
    """A neighbour syncing with Bob must not see an envelope vanish the moment Bob got it
    (that would tell it Bob was the recipient); Bob drops it with the receipt, as a relay
    does."""
    cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, receipt_delay=(200, 200))
    net = Net(seed=73)
    a, b, n = net.add(cfg), net.add(cfg), net.add(cfg)
    net.introduce_all()
    net.send(a, b, b"for bob")
    (eid,) = [i for i in net.nodes[a].store.ids_in_range(b"", None)]
    la, _ = net.connect(a, b)
    net.run(5)
    net.disconnect(a, la)
    assert [m.body for m in net.delivered[b]] == [b"for bob"]
    assert net.nodes[b].store.has(eid), "delivered, and still carried"
    net.connect(n, b)
    net.run(5)
    assert net.nodes[n].store.has(eid), "a neighbour gets it from Bob like from a relay"
    net.run(300)  # the receipt goes out: every copy is purged, Bob's too
    assert not net.nodes[b].store.has(eid)
    assert not net.nodes[n].store.has(eid)


def _rows(path: Path) -> list[tuple[bytes, int, int, int]]:
    db = sqlite3.connect(path)
    rows = [
        (bytes(i), int(p), len(s), int(e))
        for i, p, s, e in db.execute("SELECT id, priority, source, expiry FROM envelopes")
    ]
    db.close()
    return rows


def test_no_store_row_tells_whose_envelopes_are_whose(tmp_path: Path) -> None:
    """envelopes.db used to mark the owner's rows (priority 'own', source b'self') and to
    hold the owner's prekey envelope, which carries their identity key."""
    net = Net(seed=74)
    a, r, b = net.add(), net.add(), net.add()
    net.introduce_all()
    old = net.nodes[a]
    store = SQLiteStore(tmp_path / "envelopes.db")
    net.nodes[a] = Node(old.identity, old.ring, store, old.rng, old.config)
    for key, contact in old.contacts.items():
        net.nodes[a].add_contact(contact.identity, contact.prekey)
        assert key in net.nodes[a].contacts
    for idx in (a, r, b):
        net.apply(idx, net.nodes[idx].publish_prekey(int(net.now)))
    own_prekeys = set(net.nodes[a].published_ids())  # what the node keeps out of rows
    for k in range(3):
        net.send(a, b, b"own %d" % k)  # Alice's own mail
        net.send(b, a, b"for alice %d" % k)  # mail Alice will receive
        net.send(b, r, b"relayed %d" % k)  # mail Alice only carries
    for other in (b, r):
        link, _ = net.connect(other, a)
        net.run(5)
        net.disconnect(other, link)
    assert len(net.delivered[a]) == 3
    rows = _rows(tmp_path / "envelopes.db")
    kinds = {i: E.decode(store.get(i) or b"").kind for i, *_ in rows}
    assert own_prekeys
    assert not own_prekeys & set(kinds)
    prekeys = [r for r in rows if kinds[r[0]] is E.Kind.PREKEY]
    assert len(prekeys) == 2  # Bob's and the relay's, not Alice's own
    mail = [r for r in rows if kinds[r[0]] is not E.Kind.PREKEY]
    assert len(mail) == 9  # own, received (kept until the receipt), carried
    assert {length for _i, _p, length, _e in mail} == {16}  # one source label format
    assert all(p < 256 for _i, p, _l, _e in mail)  # rank: kind class and stamp work only
    assert store.protected_count() == 6  # Alice's own and hers, known in memory only
    store.close()
