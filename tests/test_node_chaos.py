"""N nodes over a terrible network (trio's test_handshake_over_terrible_network, STYLE 8):
seeded drops, duplicates, reordering, delays and links cut mid-transfer. Every message is
delivered exactly once to its recipient, and nobody else can open it."""

from __future__ import annotations

import random

import pytest

from crypto.errors import CryptoError
from mesh.core import envelope as E
from mesh.core import messages as M
from mesh.core.events import MessageQueued, SendMessage
from tests.netsim import Chaos, Net


@pytest.mark.parametrize("seed", [11, 12])
def test_chaos_every_message_exactly_once(seed: int) -> None:
    rnd = random.Random(seed)
    net = Net(seed=seed, chaos=Chaos(drop=0.01, dup=0.005, reorder=0.005, delay=(0.0, 0.2)))
    n = 8
    for _ in range(n):
        net.add()
    net.introduce_all()
    sent: dict[bytes, tuple[int, int, bytes]] = {}
    for k in range(24):
        a, b = rnd.sample(range(n), 2)
        body = f"message {k} from {a} to {b}".encode()
        actions = net.nodes[a].handle(
            SendMessage(net.nodes[b].identity.sign_public, body), int(net.now)
        )
        net.apply(a, actions)
        mid = next(x.msg_id for x in actions if isinstance(x, MessageQueued))
        sent[mid] = (a, b, body)
    # Chaotic phase: random short contacts, cut at random moments.
    for _ in range(120):
        a, b = rnd.sample(range(n), 2)
        la, _ = net.connect(a, b, mtu=rnd.choice([64, 244, 1400]))
        net.run(rnd.uniform(0.2, 4.0), tick=0.5)
        if la in net.links_of(a):
            net.disconnect(a, la)
    during_chaos = sum(len(v) for v in net.delivered.values())
    assert during_chaos >= len(sent) // 2, "the chaotic phase should still deliver most"
    # Calm phase: the chaos stops; nodes keep meeting (as people do).
    net.chaos = Chaos()
    for _ in range(60):
        a, b = rnd.sample(range(n), 2)
        la, _ = net.connect(a, b)
        net.run(3)
        if la in net.links_of(a):
            net.disconnect(a, la)
    delivered: dict[bytes, list[int]] = {}
    for idx, msgs in net.delivered.items():
        for m in msgs:
            delivered.setdefault(m.msg_id, []).append(idx)
            a, b, body = sent[m.msg_id]
            assert (idx, m.body, m.sender) == (b, body, net.nodes[a].identity.sign_public)
    assert {mid: len(who) for mid, who in delivered.items()} == dict.fromkeys(sent, 1)
    # The chaos really happened: links were closed by decryption failures.
    assert any("decryption failed" in reason for _i, reason in net.closes)
    # Nobody but the recipient can open any envelope still lying around.
    for idx, node in enumerate(net.nodes):
        for eid in node.store.ids_in_range(b"", None):
            frame = node.store.get(eid)
            assert frame is not None
            env = E.decode(frame)
            if env.kind is not E.Kind.FIRST_CONTACT:
                continue
            with pytest.raises(CryptoError):
                M.open_first_contact_envelope(node.identity, node.ring, env, int(net.now))
            _ = idx
