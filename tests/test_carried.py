"""'Carried by N neighbours': our undelivered messages count the distinct neighbours they
were handed to, the count only ever rises, survives a restart and stops at 'delivered';
history rows written before carriers were counted still open."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import trio

from crypto import primitives as p
from crypto.wire import pack
from mesh import ipc
from mesh.core.events import MessageAcked, MessageQueued
from mesh.daemon.carried import Carriers
from mesh.daemon.history import HISTORY, History, history_key
from mesh.ipc.events import Event, MessageCarried
from mesh.render import carried_words
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.test_daemon import kinds, start, until

MSG, ENV = b"m" * 16, b"e" * 32


def test_a_neighbour_counts_once_and_delivered_ends_the_count() -> None:
    c = Carriers()
    c.handed(ENV, b"early")  # handed in the very step that queued it
    assert c.step([MessageQueued(MSG, ENV)]) == {MSG: 1}
    c.handed(ENV, b"early")  # the same neighbour again (it reconnected and asked)
    assert c.step([]) == {}
    c.handed(ENV, b"second")
    c.handed(b"x" * 32, b"third")  # someone else's envelope: not ours to count
    assert c.step([]) == {MSG: 2}
    c.handed(ENV, b"fourth")
    assert c.step([MessageAcked(MSG)]) == {}  # the receipt came: no more counting
    c.handed(ENV, b"fifth")
    assert c.step([]) == {}
    assert c.count(MSG) == 0


def test_after_a_restart_the_count_never_claims_more_nor_goes_down(tmp_path: Path) -> None:
    h = History(tmp_path / HISTORY, os.urandom(32), os.urandom)
    h.add(b"B" * 32, True, MSG, 100, "hello", ENV)
    h.carried(MSG, 2)
    c = Carriers()
    c.load(h.awaiting())
    assert c.count(MSG) == 2
    c.handed(ENV, b"one we may have counted before")
    assert c.step([]) == {}  # max(saved 2, 1 since the restart): not 3
    c.handed(ENV, b"another")
    c.handed(ENV, b"and another")
    assert c.step([]) == {MSG: 3}
    h.close()


def test_a_row_written_before_carriers_were_counted_opens(tmp_path: Path) -> None:
    data_key = os.urandom(32)
    h = History(tmp_path / HISTORY, data_key, os.urandom)
    h.add(b"B" * 32, True, b"0" * 16, 90, "new format")
    h.close()
    key, nonce = history_key(data_key), os.urandom(p.XNONCE_LEN)  # sealed as before
    old = [b"B" * 32, True, MSG, 100, "old format", "queued"]
    blob = nonce + p.xchacha_encrypt(key, nonce, pack(old), b"steppe/history/v2|messages|2")
    con = sqlite3.connect(tmp_path / HISTORY)
    con.execute("INSERT INTO messages (id, blob) VALUES (2, ?)", (blob,))
    con.commit()
    con.close()
    h = History(tmp_path / HISTORY, data_key, os.urandom)
    got = h.messages()
    assert [(m.text, m.envelope_id, m.carriers) for m in got] == [
        ("new format", b"", 0),
        ("old format", b"", 0),
    ]
    assert h.awaiting() == []  # no envelope id: nothing to count for it
    assert h.carried(MSG, 1)
    assert h.messages()[1].carriers == 1
    h.close()


def test_carried_words() -> None:
    assert carried_words(1) == "carried by 1 neighbour"
    assert carried_words(3) == "carried by 3 neighbours"


def test_relays_met_one_after_the_other_carry_alices_message(tmp_path: Path) -> None:
    """Real daemons on loopback: Alice's message to an absent Bob is handed to one relay,
    then to another (carried by 1, then 2: saved, and said to subscribers), and Bob's
    receipt makes it delivered."""
    now = int(time.time())
    alice, r1, r2, bob = (make_profile(tmp_path, n, now) for n in ("Alice", "R1", "R2", "Bob"))
    befriend(alice, bob, now)
    cfg = loopback_config()
    told: list[Event] = []

    async def main() -> None:
        async with trio.open_nursery() as n:
            one, b = await start(n, r1, cfg), await start(n, bob, cfg)
            await until("Bob's prekey on R1", lambda: len(kinds(one.daemon)) >= 1)
            await b.stop()
            a = await start(n, alice, cfg)
            bob_key = bob.identity.sign_public
            await until("Bob's prekey", lambda: a.daemon.node.contacts[bob_key].prekey is not None)
            client = await ipc.Client.connect(a.daemon.local_api.path)
            await client.call("subscribe")

            listening = trio.CancelScope()

            async def listen() -> None:
                with listening:
                    while True:
                        told.append(await client.events())

            n.start_soon(listen)
            msg_id = a.daemon.send_text("Bob", "while you are away")
            last = a.daemon.history.messages
            await until("R1 carries it", lambda: last()[-1].carriers == 1)
            await one.stop()
            two = await start(n, r2, cfg)
            await until("R2 carries it too", lambda: last()[-1].carriers == 2)
            await until("both told", lambda: sum(isinstance(e, MessageCarried) for e in told) == 2)
            assert [e for e in told if isinstance(e, MessageCarried)] == [
                MessageCarried(msg_id, 1),
                MessageCarried(msg_id, 2),
            ]
            assert [r.carriers for r in a.daemon.ops.messages("Bob")] == [2]
            listening.cancel()
            await client.aclose()
            await a.stop()
            a2 = await start(n, alice, cfg)  # the count is on disk; R2 is not counted again
            await until("Alice and R2 linked", lambda: bool(a2.daemon.node.links))
            await trio.sleep(1.0)
            assert a2.daemon.history.messages()[-1].carriers == 2
            await a2.stop()
            b2 = await start(n, bob, cfg)
            await until("Bob to receive", lambda: bool(b2.daemon.history.messages()))
            a3 = await start(n, alice, cfg)
            await until("delivered", lambda: a3.daemon.history.messages()[-1].state == "acked")
            assert two.daemon is not None
            n.cancel_scope.cancel()

    trio.run(main)
