"""The node's durable state as rows saved by change (issue 11: the daemon saved the whole
state on every send and delivery, so both grew with the state), and the history that
keeps them: every row in its place, the set checked against a keyed summary."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from crypto.wire import pack, strict_unpack
from mesh.core.durable import STATE_VERSION, RowKind, rows_from_blob
from mesh.core.memory_store import MemoryStore
from mesh.core.node import Node
from mesh.daemon.daemon import STATE_KEY, Daemon
from mesh.daemon.history import HISTORY, History, HistoryError
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.netsim import Net

KEY = os.urandom(32)


def _kinds(changes: dict[bytes, bytes | None]) -> list[tuple[RowKind, bool]]:
    """(kind, still there) of each changed row."""
    return sorted((RowKind(k[:1]), v is not None) for k, v in changes.items())


def test_a_send_changes_two_rows_however_much_state_there_is() -> None:
    net = Net(seed=91)
    a, b = net.add(), net.add()
    net.introduce_all()
    alice = net.nodes[a]
    alice.saved.track()
    net.send(a, b, b"first contact")
    first = alice.saved.take_changes()
    assert _kinds(first) == sorted([(RowKind.SESSION, True), (RowKind.OWN, True)])
    for k in range(300):
        net.send(a, b, b"%d" % k)
    alice.saved.take_changes()
    assert len(alice.saved.rows()) > 300  # the state the old code saved whole per send
    net.send(a, b, b"one more")
    last = alice.saved.take_changes()
    assert _kinds(last) == sorted([(RowKind.SESSION, True), (RowKind.OWN, True)])
    assert sum(len(v or b"") for v in last.values()) < 1500


def test_delivery_receipt_and_expiry_each_touch_only_their_rows() -> None:
    net = Net(seed=92)
    a, b = net.add(), net.add()
    net.introduce_all()
    alice, bob = net.nodes[a], net.nodes[b]
    alice.saved.track()
    bob.saved.track()
    net.send(a, b, b"hello")
    alice.saved.take_changes()
    net.connect(a, b)
    net.run(2)
    assert [m.body for m in net.delivered[b]] == [b"hello"]
    got = _kinds(bob.saved.take_changes())
    assert (RowKind.SESSION, True) in got
    assert (RowKind.DELIVERED, True) in got
    assert (RowKind.PENDING, True) in got  # the receipt waits for its random delay
    net.run(400)  # receipt released and carried back
    assert (RowKind.PENDING, False) in _kinds(bob.saved.take_changes())
    gone = _kinds(alice.saved.take_changes())
    assert (RowKind.OWN, False) in gone
    assert (RowKind.RECEIPT, True) in gone
    # Far in the future everything has expired: the rows go, as deletions.
    net.run(8 * 86400, tick=3600)
    later = bob.saved.take_changes()
    assert (RowKind.DELIVERED, False) in _kinds(later)
    assert all(v is None for k, v in later.items() if k[:1] != RowKind.SESSION.value)


def _delivered(seed: int, n: int) -> tuple[Net, int]:
    """Two contacts; ``n`` messages from the first delivered to the second (its index)."""
    net = Net(seed=seed)
    a, b = net.add(), net.add()
    net.introduce_all()
    for k in range(n):
        net.send(a, b, b"%d" % k)
    net.connect(a, b)
    net.run(3)
    return net, b


def test_rows_restore_the_same_state_and_the_simulator_keeps_no_change_set() -> None:
    net, b = _delivered(seed=93, n=5)
    bob = net.nodes[b]
    assert bob.saved.take_changes() == {}  # never tracked: nothing accumulates
    rows = bob.saved.rows()
    again = Node(bob.identity, bob.ring, MemoryStore(), random.Random(1).randbytes, bob.config)
    for c in bob.contacts.values():
        again.add_contact(c.identity, c.prekey)
    again.saved.restore_rows(rows, int(net.now))
    assert again.saved.rows() == rows
    assert again.saved.export() == bob.saved.export()


def _v3_blob(rows: dict[bytes, bytes]) -> bytes:
    """The same state in the single-blob format of version 3 (before rows)."""

    def of(kind: RowKind) -> list[tuple[bytes, Any]]:
        return [
            (k[1:], strict_unpack(v, max_size=len(v)))
            for k, v in rows.items()
            if k[:1] == kind.value
        ]

    return pack(
        [
            3,
            [s for _k, s in of(RowKind.SESSION)],
            [[k[1:], v] for k, v in rows.items() if k[:1] == RowKind.PREKEY.value],
            [[h, *x] for h, x in of(RowKind.OWN)],
            [[h, *x] for h, x in of(RowKind.RECEIPT)],
            [[x[0], s, x[1]] for s, x in of(RowKind.PENDING)],
            [[m, e] for m, e in of(RowKind.DELIVERED)],
            [],
        ]
    )


def test_a_state_of_the_previous_version_becomes_the_same_rows() -> None:
    """A daemon upgraded from the single-blob format (version 3) loses nothing."""
    net, b = _delivered(seed=94, n=3)
    rows = net.nodes[b].saved.rows()
    kinds = {k[:1] for k in rows}
    assert {RowKind.PENDING.value, RowKind.DELIVERED.value, RowKind.SESSION.value} <= kinds
    assert rows[RowKind.VERSION.value] == pack(STATE_VERSION)
    assert rows_from_blob(_v3_blob(rows)) == rows


def test_the_daemon_rewrites_an_older_state_as_rows(tmp_path: Path) -> None:
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    d = Daemon(alice, loopback_config(lan=False), alice.path, handle_signals=False)
    d.send_text("Bob", "sealed before the upgrade")
    rows = d.node.saved.rows()
    d.close()
    h = History(alice.path / HISTORY, alice.data_key, os.urandom)
    with h.transaction():  # as a daemon of the previous version left it
        h.save_rows({k: None for k in rows})
        h.delete_state("rows")
        h.save_state(STATE_KEY, _v3_blob(rows))
    h.close()
    d = Daemon(alice, loopback_config(lan=False), alice.path, handle_signals=False)
    assert d.node.saved.rows() == rows
    d.close()
    h = History(alice.path / HISTORY, alice.data_key, os.urandom)
    assert h.load_state(STATE_KEY) is None
    assert h.load_rows() == rows
    h.close()


def _history(tmp_path: Path) -> History:
    return History(tmp_path / HISTORY, KEY, os.urandom)


def _sql(tmp_path: Path, query: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    con = sqlite3.connect(tmp_path / HISTORY)
    try:
        with con:
            return con.execute(query, args).fetchall()
    finally:
        con.close()


def test_history_rows_round_trip_and_refuse_an_older_row(tmp_path: Path) -> None:
    h = _history(tmp_path)
    h.save_rows({b"s1": b"one", b"s2": b"two", b"d3": b"three"})
    h.close()
    old_blob = _sql(tmp_path, "SELECT blob FROM node_rows WHERE key = ?", (b"s1",))[0][0]
    h = _history(tmp_path)
    assert h.load_rows() == {b"s1": b"one", b"s2": b"two", b"d3": b"three"}
    h.save_rows({b"s1": b"one, moved on", b"d3": None})
    h.close()
    h = _history(tmp_path)
    assert h.load_rows() == {b"s1": b"one, moved on", b"s2": b"two"}
    h.close()
    # A ratchet row put back from an older copy: it opens in its place, but the summary
    # says otherwise.
    _sql(tmp_path, "UPDATE node_rows SET blob = ? WHERE key = ?", (old_blob, b"s1"))
    h = _history(tmp_path)
    with pytest.raises(HistoryError, match="do not match their summary"):
        h.load_rows()
    h.close()


@pytest.mark.parametrize(
    "tamper",
    [
        "DELETE FROM node_rows WHERE key = X'7332'",
        "UPDATE node_rows SET key = X'7339' WHERE key = X'7332'",
        "INSERT INTO node_rows SELECT X'7339', blob FROM node_rows WHERE key = X'7332'",
    ],
    ids=["deleted", "moved", "copied"],
)
def test_history_refuses_missing_moved_and_copied_rows(tmp_path: Path, tamper: str) -> None:
    h = _history(tmp_path)
    h.save_rows({b"s1": b"one", b"s2": b"two"})
    h.close()
    _sql(tmp_path, tamper)
    h = _history(tmp_path)
    with pytest.raises(HistoryError, match=r"summary|does not open where it is"):
        h.load_rows()
    h.close()
