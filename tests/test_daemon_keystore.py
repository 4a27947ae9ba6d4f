"""The running daemon owns the keystore (issue 11, section 1): the prekeys its node rotates
are saved at once, so a prekey the mesh already knows still opens mail after a restart,
and a pruned private prekey leaves the keystore file. Both used to live in memory only:
the daemon never wrote the keystore."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from crypto import keystore
from crypto.identity import ContactCard, safety_digits
from crypto.prekeys import DEFAULT_GRACE, DEFAULT_ROTATE
from mesh import ipc
from mesh.core import bundle
from mesh.core.events import MessageQueued, SendMessage, Tick
from mesh.core.memory_store import MemoryStore
from mesh.core.node import Node
from mesh.daemon.daemon import Daemon
from mesh.daemon.lock import lock_profile, unlock_profile
from mesh.profile import KEYSTORE, Profile, create_profile, new_profile, open_profile
from tests.daemon_helpers import loopback_config
from tests.test_daemon import Running

FAST = keystore.KdfParams.named("interactive")
PASS = b"keystore owner passphrase"


async def start(nursery: trio.Nursery, profile: Profile, clock: Callable[[], float]) -> Running:
    r = Running(
        Daemon(profile, loopback_config(lan=False), profile.path, handle_signals=False, clock=clock)
    )
    await nursery.start(r._run)
    return r


def sealed_bundle(tmp: Path, bob: Profile, prekey_index: int, now: int, text: str) -> Path:
    """A first contact from a stranger, Alice, sealed to one of Bob's published prekeys,
    carried by USB (a bundle file)."""
    alice = new_profile(tmp / "alice", "Alice", now, os.urandom)
    node = Node(alice.identity, alice.ring, MemoryStore(), os.urandom)
    node.add_contact(bob.identity.public(), bob.ring.keys[prekey_index].record)
    acts = node.handle(SendMessage(bob.identity.sign_public, text.encode(), 86400), now)
    assert any(isinstance(a, MessageQueued) for a in acts)
    frames, latest = node.courier.export_frames(1 << 20, now)
    path = tmp / "from-alice.bundle"
    path.write_bytes(bundle.Bundle(now, latest, frames, []).encode())
    return path


def test_a_rotated_prekey_survives_a_restart_and_a_pruned_one_leaves_the_keystore(
    tmp_path: Path,
) -> None:
    t0 = int(time.time())
    bob = create_profile(tmp_path / "bob", "Bob", PASS, FAST, t0, os.urandom)
    first = bob.ring.keys[0]
    offset = [0]

    def clock() -> float:
        return t0 + offset[0]

    async def main() -> None:
        async with trio.open_nursery() as n:
            r = await start(n, bob, clock)
            offset[0] = DEFAULT_ROTATE + 60  # two days on: the node's sweep rotates
            r.daemon.feed(Tick())
            assert bob.ring.keys[0].prekey_id == first.prekey_id
            assert len(bob.ring.keys) == 2, "the node rotated its prekey"
            rotated = bob.ring.keys[1]
            # Saved at once, before anything else happens (a kill -9 now loses nothing).
            on_disk = open_profile(bob.path, PASS).ring
            assert [k.prekey_id for k in on_disk.keys] == [first.prekey_id, rotated.prekey_id]
            mail = sealed_bundle(tmp_path, bob, 1, int(clock()), "to your new prekey")
            await r.stop()

            again = open_profile(bob.path, PASS)  # the restart
            r2 = await start(n, again, clock)
            got = r2.daemon.ops.import_(str(mail))
            assert got["delivered"] == 1
            texts = [m.text for m in r2.daemon.history.messages()]
            assert texts == ["to your new prekey"]

            # The first prekey expired a grace period ago: pruned, and gone from the file.
            offset[0] = first.record.expires + DEFAULT_GRACE + 60 - t0
            r2.daemon.feed(Tick())
            assert first.prekey_id not in [k.prekey_id for k in again.ring.keys]
            _key, secrets = keystore.unlock((bob.path / KEYSTORE).read_bytes(), PASS)
            assert first.private not in secrets
            assert rotated.private in secrets  # still live: kept
            n.cancel_scope.cancel()

    trio.run(main)


def test_contact_ops_refuse_bad_input_in_one_line_and_change_nothing(tmp_path: Path) -> None:
    """The local API's contact ops: a damaged card, an unknown name, or a safety number
    compared for a key that has since been replaced is refused and nothing changes."""
    t0 = int(time.time())
    me = create_profile(tmp_path / "me", "Me", PASS, FAST, t0, os.urandom)
    carol = new_profile(tmp_path / "carol", "Carol", t0, os.urandom)
    other = new_profile(tmp_path / "other", "Carol", t0, os.urandom)
    d = Daemon(me, loopback_config(lan=False), me.path, handle_signals=False)
    try:
        with pytest.raises(ipc.IpcError, match="not a valid contact card"):
            d.ops.contact_add("STEPPE1:AAAA")
        row = d.ops.contact_add(carol.card.encode())
        assert row.name == "Carol"
        assert not row.key_changed
        assert carol.identity.sign_public in d.node.contacts
        shown = carol.identity.public().fingerprint.hex()
        with pytest.raises(ipc.IpcError, match="already a contact with a different key"):
            d.ops.contact_add(other.card.encode())
        d.ops.contact_add(other.card.encode(), replace=True)
        assert carol.identity.sign_public not in d.node.contacts
        with pytest.raises(ipc.IpcError, match="key changed since the safety number was shown"):
            d.ops.contact_verify("Carol", shown)
        with pytest.raises(ipc.IpcError, match="no contact named"):
            d.ops.contact_verify("Mallory", shown)
        saved = open_profile(me.path, PASS).contacts
        assert [(c.name, c.verified, c.key_changed) for c in saved] == [("Carol", False, True)]
        assert saved[0].identity.sign_public == other.identity.sign_public
        assert other.identity.sign_public not in d.node.contacts  # frozen until verified
        d.ops.contact_verify("Carol", other.identity.public().fingerprint.hex())
        assert other.identity.sign_public in d.node.contacts
        assert open_profile(me.path, PASS).contacts[0].verified
    finally:
        d.close()


def test_a_starting_daemon_waits_for_a_command_and_reads_what_it_wrote(tmp_path: Path) -> None:
    """A contact command writing the keystore (under daemon.lock) while a daemon starts:
    the daemon waits for the lock, then works from the keystore as the command left it,
    not from the copy it opened before (which its next save would have written back)."""
    t0 = int(time.time())
    me = create_profile(tmp_path / "me", "Me", PASS, FAST, t0, os.urandom)
    carol = new_profile(tmp_path / "carol", "Carol", t0, os.urandom)
    opened = open_profile(me.path, PASS)  # what 'steppe daemon' read before taking the lock
    lock = lock_profile(me.path)  # a contact command, in the middle of its write
    me.add_contact(carol.card, t0)
    me.save(os.urandom)
    threading.Timer(0.3, unlock_profile, (lock, me.path)).start()
    d = Daemon(opened, loopback_config(lan=False), opened.path, handle_signals=False)
    try:
        assert [c.name for c in d.profile.contacts] == ["Carol"]
        assert carol.identity.sign_public in d.node.contacts
    finally:
        d.close()
    assert not (me.path / "daemon.lock").exists()


def test_the_card_and_safety_number_ops_agree_with_both_sides(tmp_path: Path) -> None:
    """`me` gives the profile's own card (one another profile can add); `safety_number`
    gives the number both sides compute alike, for the key it was made with."""
    t0 = int(time.time())
    me = create_profile(tmp_path / "me", "Me", PASS, FAST, t0, os.urandom)
    carol = new_profile(tmp_path / "carol", "Carol", t0, os.urandom)
    d = Daemon(me, loopback_config(lan=False), me.path, handle_signals=False)
    try:
        card = d.ops.me()
        assert (card.name, card.fingerprint) == ("Me", me.identity.public().fingerprint.hex())
        assert ContactCard.decode(card.text).identity.sign_public == me.identity.sign_public
        assert len(card.words.split()) == 8
        d.ops.contact_add(carol.card.encode())
        mine = d.ops.safety_number("Carol")
        assert mine.fingerprint == carol.identity.public().fingerprint.hex()
        theirs = safety_digits(carol.identity.sign_public, me.identity.sign_public)
        assert mine.digits == theirs  # what Carol's screen shows
        assert len(mine.digits.replace(" ", "")) == 60
        with pytest.raises(ipc.IpcError, match="no contact named"):
            d.ops.safety_number("Mallory")
    finally:
        d.close()
