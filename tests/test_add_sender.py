"""Someone who is not a contact writes: the inbox shows their fingerprint, and the user
can add them from it as an unverified contact and answer (issue 11, section 3). The
node used to keep only the stranger's signing key, so they could not be added or
answered without their card."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crypto.identity import short_fingerprint
from mesh.core.durable import RowKind
from mesh.core.node import NodeConfig
from mesh.profile import open_profile
from tests.netsim import Net
from tests.test_cli_live_contacts import make, output, steppe
from tests.test_daemon_process import free_port
from tests.test_daemon_stop import PASS, lan_off, run, wait_for


def test_the_node_keeps_a_strangers_proven_identity_with_their_session() -> None:
    cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, stranger_sessions=2)
    net = Net(seed=71)
    bob = net.add(cfg)
    writers = [net.add() for _ in range(3)]
    for w in writers:  # each knows Bob; Bob knows none of them
        net.nodes[w].add_contact(
            net.nodes[bob].identity.public(), net.nodes[bob].ring.keys[-1].record
        )
    node = net.nodes[bob]
    node.saved.track()
    first = writers[0]
    net.send(first, bob, b"hello from a stranger")
    la, _ = net.connect(first, bob)
    net.run(3)
    net.disconnect(first, la)
    key = net.nodes[first].identity.sign_public
    assert node.stranger(key) == net.nodes[first].identity.public()
    changed = node.saved.take_changes()
    assert changed[RowKind.STRANGER.value + key] is not None  # saved with the session
    # Two more strangers: the oldest session goes (stranger_sessions=2), its identity too.
    for w in writers[1:]:
        net.send(w, bob, b"me too")
        lw, _ = net.connect(w, bob)
        net.run(3)
        net.disconnect(w, lw)
    assert node.stranger(key) is None
    assert node.saved.take_changes()[RowKind.STRANGER.value + key] is None
    assert {s.sign_public for s in node.strangers()} == {
        net.nodes[w].identity.sign_public for w in writers[1:]
    }


def test_a_stranger_added_as_a_contact_gets_an_answer_sealed_to_their_stored_prekey() -> None:
    net = Net(seed=72)
    bob, alice = net.add(), net.add()
    net.nodes[alice].add_contact(
        net.nodes[bob].identity.public(), net.nodes[bob].ring.keys[-1].record
    )
    net.apply(alice, net.nodes[alice].publish_prekey(int(net.now)))
    net.send(alice, bob, b"it is Alice, we met at the square")
    la, _ = net.connect(alice, bob)
    net.run(3)
    net.disconnect(alice, la)
    node = net.nodes[bob]
    a_key = net.nodes[alice].identity.sign_public
    who = node.stranger(a_key)
    assert who is not None
    assert not node.can_write(a_key, int(net.now))
    node.add_contact(who)  # no card: the prekey comes from the store
    assert node.can_write(a_key, int(net.now))
    assert node.stranger(a_key) is None
    net.send(bob, alice, b"glad you made it")
    net.connect(bob, alice)
    net.run(3)
    assert [m.body for m in net.delivered[alice]] == [b"glad you made it"]


def _fp_of(root: Path, name: str) -> str:
    return short_fingerprint(open_profile(root / name, PASS.encode()).identity.sign_public)


@pytest.mark.parametrize("daemon_runs", [True, False], ids=["through the daemon", "offline"])
def test_add_sender_from_the_inbox_then_answer(tmp_path: Path, daemon_runs: bool) -> None:
    me_card = make(tmp_path, "me", "Me")
    make(tmp_path, "alice", "Alice")
    output(tmp_path, "alice", "contact", "add", me_card)  # Alice has my card; I not hers
    port = free_port()
    me = run(tmp_path, "me", lan_off(port))
    alice = run(tmp_path, "alice", lan_off(0, f'"127.0.0.1:{port}"'))
    try:
        output(tmp_path, "alice", "send", "Me", "this is Alice from the square")
        wait_for(lambda: "from the square" in output(tmp_path, "me", "inbox"), "her message")
        inbox = output(tmp_path, "me", "inbox")
        fp = _fp_of(tmp_path, "alice")
        assert f"from unknown sender {fp}" in inbox
        assert "steppe contact add-sender" in inbox
        code, out = steppe(tmp_path, "me", "contact", "add-sender", "00", "--name", "Alice")
        assert code == 2
        assert "at least 16 hex digits" in out
        code, out = steppe(tmp_path, "me", "contact", "add-sender", "0" * 20, "--name", "A")
        assert code == 2
        assert "no unknown sender with that fingerprint" in out
        if not daemon_runs:
            me.terminate()
            assert me.wait(timeout=20) == 0
        added = output(tmp_path, "me", "contact", "add-sender", fp, "--name", "Alice")
        assert "Added Alice (unverified)" in added
        assert ("The running daemon has the change now" in added) == daemon_runs
        assert re.search(r"Alice\s+unverified", output(tmp_path, "me", "contact", "list"))
        if not daemon_runs:
            me = run(tmp_path, "me", lan_off(port))
        line = next(x for x in output(tmp_path, "me", "inbox").splitlines() if "square" in x)
        assert "from Alice:" in line
        wait_for(
            lambda: steppe(tmp_path, "me", "send", "Alice", "welcome")[0] == 0, "a reply sealed"
        )
        wait_for(lambda: "welcome" in output(tmp_path, "alice", "inbox"), "Alice got it")
        code, out = steppe(tmp_path, "me", "contact", "add-sender", fp, "--name", "Again")
        assert code == 2
        assert "no unknown sender" in out or "already a contact" in out
    finally:
        for proc in (me, alice):
            proc.terminate()
        for proc in (me, alice):
            proc.wait(timeout=20)
